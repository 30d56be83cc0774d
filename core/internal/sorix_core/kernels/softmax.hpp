#pragma once
// softmax / log_softmax of x viewed as [outer, r, inner] along r, and the fused backward, on raw
// pointers (autograd/src/softmax.cpp owns the ops, their checks and their gradients):
//   softmax:     dx = y * (g - sum(g * y, dim))
//   log_softmax: dx = g - exp(y) * sum(g, dim)
// Rows (inner == 1) of at most kChunkSize run the kernel layer's softmax row kernel; longer rows
// run its passes in fixed chunks whose partials combine in chunk order (the bits of
// kernels::sum_all, whether the chunks run inline or in parallel); with inner > 1, each
// [outer, column block] tile belongs to one task and sums in k order (the dispatch table's
// softmax_cols_kernels.hpp). Every exp is sorix's own
// (the tails padded into one more batch), so an element's value does not depend on where a row
// or chunk ends, nor on the CPU capability. Heavy (xsimd): include only from .cpp files.
#include <algorithm>
#include <cstddef>

#include "sorix_core/kernels/reduce.hpp"
#include "sorix_core/kernels/simd.hpp"
#include "sorix/parallel/parallel.hpp"

namespace sorix::kernels::softmax {

using kernels::batch;

// Columns of one [outer, column block] tile when inner > 1: at most kMaxCols, and few enough
// that the tile's input and output (r rows each) stay within about 512 KiB, so the passes over
// the tile after the first hit the cache; at least 64, so each row's run streams. A column's
// result never depends on the tile width (every step is per column), only the speed does.
constexpr std::size_t kMaxCols = kSoftmaxMaxCols;
template <class T>
std::size_t tile_cols(std::size_t r) {
  const std::size_t fit = (std::size_t{512} * 1024) / (2 * sizeof(T) * r);
  return std::clamp<std::size_t>(fit / 16 * 16, 64, kMaxCols);
}

// ---- elementwise ops: the kernel layer's (core/internal/sorix_core/kernels/elementwise_ops.hpp) -------------
using kernels::ops::DivBy;
using kernels::ops::ExpShift;
using kernels::ops::LogShift;
using kernels::ops::LogSoftmaxGrad;
using kernels::ops::SoftmaxGrad;
using Mul = kernels::ops::MulOp;

// Max of x[0..n) (n >= 1). No rounding is involved, so any order gives the same value; a NaN
// may be dropped here, but it reaches the output anyway through its own exp and the row sum.
template <class T>
T max_run(const T* x, std::size_t n) {
  constexpr std::size_t W = batch<T>::size;
  T m = x[0];
  std::size_t i = 0;
  if (n >= W) {
    batch<T> acc = batch<T>::load_unaligned(x);
    for (i = W; i + W <= n; i += W) acc = xsimd::max(acc, batch<T>::load_unaligned(x + i));
    alignas(64) T buf[W];
    acc.store_aligned(buf);
    for (std::size_t k = 0; k < W; ++k) m = std::max(m, buf[k]);
  }
  for (; i < n; ++i) m = std::max(m, x[i]);
  return m;
}

// Max of one row: exact, so the chunking only serves the parallelism of long rows.
template <class T>
T row_max(const T* x, std::size_t r) {
  if (r <= parallel::kChunkSize) return max_run(x, r);
  return parallel::parallel_reduce<T>(
      r, parallel::kChunkSize, x[0], [&](std::size_t b, std::size_t e) { return max_run(x + b, e - b); },
      [](T a, T b) { return std::max(a, b); });
}
// Same bits as kernels::sum_all: 0 + partial[0] + partial[1] + ... in chunk order.
template <class T>
T row_sum(const T* x, std::size_t r) {
  if (r <= parallel::kChunkSize) return kernels::sum_run(x, r);
  return kernels::sum_all(x, r);
}

// Elementwise over one row in fixed chunks (inline when short).
template <class T, class Op>
void row_map(const T* x, T* y, std::size_t r, const Op& op) {
  if (r <= parallel::kChunkSize) return kernels::unary_serial(x, y, r, op);
  kernels::unary_map(x, y, r, op);
}
template <class T, class Op>
void row_map2(const T* a, const T* b, T* y, std::size_t r, const Op& op) {
  if (r <= parallel::kChunkSize) return kernels::binary_serial(a, true, b, true, y, r, op);
  parallel::parallel_for(r, parallel::kChunkSize, [&](std::size_t s, std::size_t e) {
    kernels::binary_serial(a + s, true, b + s, true, y + s, e - s, op);
  });
}

// Runs row(o) for every row o of an [outer, r] tensor, in chunks of about kChunkSize elements.
template <class Row>
void for_rows(std::size_t outer, std::size_t r, Row&& row) {
  parallel::parallel_for(
      outer, std::max<std::size_t>(1, parallel::kChunkSize / r),
      [&](std::size_t o0, std::size_t o1) {
        for (std::size_t o = o0; o < o1; ++o) row(o);
      },
      parallel::kInlineGrain / r + 1);
}

// Runs tile(o, c0, c1) for every [outer, column block] tile of an [outer, r, inner] tensor.
template <class T, class Tile>
void for_tiles(std::size_t outer, std::size_t r, std::size_t inner, Tile&& tile) {
  for_column_tiles(outer, r, inner, tile, tile_cols<T>(r));
}

// ---- forward -----------------------------------------------------------------------------------
template <class T>
void softmax_forward(const T* x, T* y, std::size_t outer, std::size_t r, std::size_t inner, bool log) {
  if (inner == 1 && r >= 1 && r <= parallel::kChunkSize) {  // the kernel layer's softmax row kernel
    parallel::parallel_for(
        outer, std::max<std::size_t>(1, parallel::kChunkSize / r),
        [&](std::size_t o0, std::size_t o1) { kernels::softmax_rows(x + o0 * r, y + o0 * r, o1 - o0, r, log); },
        parallel::kInlineGrain / r + 1);
    return;
  }
  if (inner == 1) {  // long rows: each row's passes in parallel chunks (the same arithmetic)
    for_rows(outer, r, [&](std::size_t o) {
      const T* xr = x + o * r;
      T* yr = y + o * r;
      const T m = row_max(xr, r);
      row_map(xr, yr, r, ExpShift{m});
      const T s = row_sum(yr, r);
      if (log) row_map(xr, yr, r, LogShift{m, kernels::log_of(s)});
      else row_map(yr, yr, r, DivBy{s});
    });
    return;
  }
  const auto& k = softmax_cols_kernels<T>(active());
  for_tiles<T>(outer, r, inner, [&](std::size_t o, std::size_t c0, std::size_t c1) {
    const std::size_t off = o * r * inner + c0;
    k.forward(x + off, y + off, r, inner, c1 - c0, log);
  });
}

// ---- fused backward (plain backward only: not differentiable) ----------------------------------
template <class T>
void softmax_backward(const T* g, const T* y, T* dx, std::size_t outer, std::size_t r, std::size_t inner, bool log) {
  if (inner == 1) {
    for_rows(outer, r, [&](std::size_t o) {
      const T* gr = g + o * r;
      const T* yr = y + o * r;
      T* dr = dx + o * r;
      if (log) {
        row_map2(gr, yr, dr, r, LogSoftmaxGrad{row_sum(gr, r)});
      } else {
        row_map2(gr, yr, dr, r, Mul{});  // dx holds g * y until the dot is known
        row_map2(yr, gr, dr, r, SoftmaxGrad{row_sum(dr, r)});
      }
    });
    return;
  }
  const auto& k = softmax_cols_kernels<T>(active());
  for_tiles<T>(outer, r, inner, [&](std::size_t o, std::size_t c0, std::size_t c1) {
    const std::size_t off = o * r * inner + c0;
    k.backward(g + off, y + off, dx + off, r, inner, c1 - c0, log);
  });
}

}  // namespace sorix::kernels::softmax
