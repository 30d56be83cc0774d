#pragma once
// Internal (not installed): LayerNorm as one fused op. Its statistics per row, then the
// normalisation and the affine part in one pass; the backward in one walk over the output
// gradient, each row's three short passes in L1. The composed form (BatchNorm's op for the
// normalisation, an affine op after it) took three passes each way.
#include <cstdint>

#include "sorix/core/tensor.hpp"

namespace sorix::nn::detail {

/// Whether layer_norm takes the fused op: at least 16 rows (the statistics run a row per task),
/// of more than one value each, and a non-empty input. Depends on the shape alone.
bool layer_norm_fused_applies(std::int64_t rows, std::int64_t row_length, std::int64_t numel);

/// y = layer_norm(x, w, b) for a contiguous float32 or float64 x viewed as [rows, L] (checked by
/// the caller: w and b undefined or of the normalized shape, L values, x's dtype, contiguous),
/// recorded.
///
/// Forward: each row's mean and biased variance as BatchNorm's statistics of [1, rows, L]
/// (double, batch_stats' fixed chains), then y = fma((x - mean) * invstd, w, b) (the kernel
/// table's layer_norm_rows; mean and invstd rounded to x's dtype). Backward, per chunk of
/// kBatchChunk rows (a task each): dw = fma(g, xhat, dw) and db += g down each column in row
/// order from +0, and dx = ((g * w - gm) - xhat * k) * invstd with gm and k the row's means of
/// g * w and g * w * xhat (16 chains of doubles; layer_norm_grads); the chunks' dw and db added
/// by the batch tree. Every sum has a fixed shape and every task a fixed block of rows: the
/// same bits at any thread count and on every capability. Under create_graph the gradients are
/// the formulas as recorded ops (other bits).
Tensor layer_norm_fused(const Tensor& x, const Tensor& w, const Tensor& b, std::int64_t rows, std::int64_t row_length,
                        double eps);

}  // namespace sorix::nn::detail
