#pragma once
// Internal (not installed): GroupNorm as one fused op. Its statistics per (sample, group), then
// the normalisation and the per-channel affine as one pass with constants per (sample, channel)
// plane; the backward as one pass of per-plane sums and one pass for the input gradient. The
// composed form (a BatchNorm op for the statistics, another for the affine part) took about four
// passes each way.
#include <cstdint>

#include "sorix/core/tensor.hpp"

namespace sorix::nn::detail {

/// Whether group_norm takes the fused op: at least kFusedMinRows (16) (sample, group) rows, so
/// that the statistics' per-row tasks feed the threads, of more than one value each, and a
/// non-empty input. Depends on the shape alone (never the thread count).
bool group_norm_fused_applies(std::int64_t rows, std::int64_t values_per_row, std::int64_t numel);

/// y = group_norm(x, w, b) for a contiguous float32 or float64 x [N, C, *] (checked by the
/// caller: G divides C, w and b undefined or [C] of x's dtype, contiguous), recorded.
///
/// Forward: each (sample, group)'s mean and biased variance as BatchNorm's statistics of
/// [1, N * G, C / G * L] (double, batch_stats' fixed chains), then y = (x - mean) * scale + shift
/// per (n, c) plane with scale = invstd * w[c], shift = b[c] (BatchNorm's normalisation loop,
/// never fused). Backward: per plane sum_g = sum of g and dot = sum of g * (x - mean) (one
/// chain each, BatchNorm's grad_sums); per group A = sum over its channels of w * sum_g and
/// B = of w * dot, in channel order in double; dx = (g * a - gm) - (x - mean) * k with a =
/// invstd * w, gm = invstd * A / M, k = invstd^3 * B / M (M = C / G * L; the kernel table's
/// group_dx); dw[c] = the batch sum over n of dot * invstd, db[c] of sum_g (chunks of
/// kBatchChunk images in order, then the batch tree). Every sum has a fixed shape and every task
/// is a fixed block of planes: the same bits at any thread count and on every capability. Under
/// create_graph the gradients are the formulas as recorded ops (other bits).
Tensor group_norm_fused(const Tensor& x, const Tensor& w, const Tensor& b, std::int64_t groups, double eps);

}  // namespace sorix::nn::detail
