#pragma once
// Deterministic sum kernels. A contiguous run is summed by one fixed pattern (32 float or 16
// double lanes, the padded tail as one more row of lanes, then a fixed tree: the kernel layer's
// sum, the same on every CPU capability), so its bits depend only on the run's length and
// values. Long runs are cut into parallel::kChunkSize chunks whose partial sums are combined in
// chunk order. Heavy: include only from .cpp files.
#include <cstddef>

#include "sorix_core/kernels/simd.hpp"

namespace sorix::kernels {

/// Sum of x[0..n), serial: the active capability's kernel, in one fixed lane layout on every
/// CPU (elementwise_kernels.hpp); int64 in index order, wrapping as PyTorch's (wrapping_add: a
/// signed overflow would be undefined behaviour).
template <class T>
T sum_run(const T* x, std::size_t n) {
  if constexpr (std::is_same_v<T, float>) {
    return active().sum_f32(x, n);
  } else if constexpr (std::is_same_v<T, double>) {
    return active().sum_f64(x, n);
  } else {
    T s = 0;
    for (std::size_t i = 0; i < n; ++i) s = wrapping_add(s, x[i]);
    return s;
  }
}

/// The softmax row kernel of the active capability (table.hpp), serial over `rows` rows of n.
template <class T>
void softmax_rows(const T* x, T* y, std::size_t rows, std::size_t n, bool log, T* row_max = nullptr,
                  T* row_logsum = nullptr) {
  if constexpr (std::is_same_v<T, float>) active().softmax_rows_f32(x, y, rows, n, log, row_max, row_logsum);
  else active().softmax_rows_f64(x, y, rows, n, log, row_max, row_logsum);
}

/// Sum of x[0..n): fixed chunks in parallel, partials combined in chunk order.
template <class T>
T sum_all(const T* x, std::size_t n) {
  return parallel::parallel_reduce<T>(
      n, parallel::kChunkSize, T(0), [&](std::size_t b, std::size_t e) { return sum_run(x + b, e - b); },
      [](T a, T b) { return wrapping_add(a, b); });  // a + b for floats
}

/// For a reduction of x viewed as [outer, r, inner] over k (inner > 1): body(o, c0, c1) for
/// every tile of one o and a block of at most `cols` columns [c0, c1), as parallel tasks (tiles,
/// so that tasks exist even when outer is 1). A body walks the rows k in order across its
/// columns (contiguous reads); no column's result depends on the tiling.
template <class Body>
void for_column_tiles(std::size_t outer, std::size_t r, std::size_t inner, Body&& body, std::size_t cols = 1024) {
  const std::size_t col_blocks = (inner + cols - 1) / cols;
  parallel::parallel_for(
      outer * col_blocks, 1,
      [&](std::size_t t0, std::size_t t1) {
        for (std::size_t t = t0; t < t1; ++t) {
          const std::size_t o = t / col_blocks, c0 = (t % col_blocks) * cols;
          body(o, c0, std::min(inner, c0 + cols));
        }
      },
      std::max<std::size_t>(1, parallel::kInlineGrain / std::max<std::size_t>(r * cols, 1)));
}

/// x viewed as [outer, r, inner]: out[o, i] = sum over k in order of x[o, k, i].
template <class T>
void sum_axis(const T* x, T* out, std::size_t outer, std::size_t r, std::size_t inner) {
  if (inner == 1) {
    if (outer == 1) {
      out[0] = sum_all(x, r);
      return;
    }
    // Each output is one contiguous run; long runs are chunked like sum_all for the same bits.
    parallel::parallel_for(
        outer, std::max<std::size_t>(1, parallel::kChunkSize / std::max<std::size_t>(r, 1)),
        [&](std::size_t o0, std::size_t o1) {
          for (std::size_t o = o0; o < o1; ++o) {
            const T* p = x + o * r;
            T acc = 0;
            for (std::size_t b = 0; b < r; b += parallel::kChunkSize)
              acc = wrapping_add(acc, sum_run(p + b, std::min(r - b, parallel::kChunkSize)));
            out[o] = acc;
          }
        },
        parallel::kInlineGrain / std::max<std::size_t>(r, 1) + 1);
    return;
  }
  // Rows of `inner` added in k order, vectorised across the row, in column tiles (a bias
  // gradient, [batch, features] summed over the batch, has outer 1).
  for_column_tiles(outer, r, inner, [&](std::size_t o, std::size_t c0, std::size_t c1) {
    T* dst = out + o * inner;
    const T* src = x + o * r * inner;
    std::fill(dst + c0, dst + c1, T(0));
    for (std::size_t k = 0; k < r; ++k) {
      const T* row = src + k * inner;
      if constexpr (std::is_integral_v<T>) {
        for (std::size_t c = c0; c < c1; ++c) dst[c] = wrapping_add(dst[c], row[c]);
      } else {
        for (std::size_t c = c0; c < c1; ++c) dst[c] += row[c];
      }
    }
  });
}

}  // namespace sorix::kernels
