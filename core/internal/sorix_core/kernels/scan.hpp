#pragma once
// Line kernels of the kernel layer for x viewed as [outer, r, inner] (the op's dim in the middle):
// running sums/products (cumsum, cumprod) and stable sorts along r. Each output element has one
// fixed computation: a scan is one chain of adds (or multiplies) in index order along its line (in double for
// floating types),
// a sort is a stable sort of its line (a permutation, no arithmetic). No fma can be formed from a
// lone add or multiply and no lanes are combined, so the bits never depend on the thread count,
// the chunking or the CPU capability. Lines are split into fixed blocks of `inner` (contiguous,
// so the compiler may vectorise across lines: each element still has its own chain).
// autograd/src/scan_ops.cpp and sort_ops.cpp own the ops and their gradients.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <type_traits>
#include <vector>

#include "sorix/parallel/parallel.hpp"

namespace sorix::kernels::scan {

/// Runs body(o, i_begin, i_end) over [outer] x blocks of [inner], in parallel tasks when the work
/// (outer * r * inner elements) is large enough; each element is in exactly one call.
inline constexpr std::size_t kLineBlock = 256;

template <class Body>
void for_line_blocks(std::size_t outer, std::size_t r, std::size_t inner, Body&& body) {
  constexpr std::size_t kBlock = kLineBlock;
  const std::size_t nblk = (inner + kBlock - 1) / kBlock;
  const std::size_t items = outer * nblk;
  const std::size_t per_item = std::max<std::size_t>(1, r * std::min(inner, kBlock));
  const std::size_t chunk = std::max<std::size_t>(1, parallel::kChunkSize / per_item);
  const bool big = items * per_item > parallel::kChunkSize;
  parallel::parallel_for(
      items, chunk,
      [&](std::size_t b, std::size_t e) {
        for (std::size_t t = b; t < e; ++t) {
          const std::size_t o = t / nblk, i0 = (t % nblk) * kBlock;
          body(o, i0, std::min(inner, i0 + kBlock));
        }
      },
      big ? 1 : items);
}

/// y[o, k, i] = x[o, 0, i] op ... op x[o, k, i] (reverse: x[o, k, i] op ... op x[o, r-1, i]),
/// op = + (Product false) or * (Product true), in index order. Floating values accumulate in
/// double (as PyTorch's CPU scans), each partial rounded once to T when stored.
template <bool Product, class T>
void scan_axis(const T* x, T* y, std::size_t outer, std::size_t r, std::size_t inner, bool reverse) {
  if (r == 0 || inner == 0 || outer == 0) return;
  using Acc = std::conditional_t<std::is_floating_point_v<T>, double, T>;
  for_line_blocks(outer, r, inner, [&](std::size_t o, std::size_t ib, std::size_t ie) {
    Acc acc[kLineBlock];
    const std::size_t base = o * r * inner;
    for (std::size_t s = 0; s < r; ++s) {
      const std::size_t k = reverse ? r - 1 - s : s;
      const T* xk = x + base + k * inner;
      T* yk = y + base + k * inner;
      for (std::size_t i = ib; i < ie; ++i) {
        Acc& a = acc[i - ib];
        if (s == 0) {
          a = static_cast<Acc>(xk[i]);
        } else if constexpr (std::is_integral_v<Acc> && !std::is_same_v<Acc, bool>) {
          // Integers wrap in two's complement (PyTorch's), through the unsigned type: a signed
          // overflow would be undefined behaviour.
          using U = std::make_unsigned_t<Acc>;
          const U u = static_cast<U>(a), v = static_cast<U>(xk[i]);
          a = static_cast<Acc>(Product ? static_cast<U>(u * v) : static_cast<U>(u + v));
        } else if constexpr (Product) {
          a = a * static_cast<Acc>(xk[i]);
        } else {
          a = a + static_cast<Acc>(xk[i]);
        }
        yk[i] = static_cast<T>(a);
      }
    }
  });
}

/// Strict weak order of a sort: ascending with NaN the largest, or descending with NaN first
/// (as PyTorch); equal values (and +-0) are ties, kept in input order by the stable sort.
template <class T>
bool sort_before(T a, T b, bool descending) {
  if constexpr (std::is_floating_point_v<T>) {
    const bool na = std::isnan(a), nb = std::isnan(b);
    if (descending) return na ? !nb : (!nb && a > b);
    return !na && (nb || a < b);
  } else {
    return descending ? a > b : a < b;
  }
}

/// Stable sort of every line along r: values (x's dtype) and int64 source indices, both
/// [outer, r, inner]. One task sorts whole lines.
template <class T>
void sort_axis(const T* x, T* values, std::int64_t* indices, std::size_t outer, std::size_t r, std::size_t inner,
               bool descending) {
  if (r == 0 || inner == 0 || outer == 0) return;
  const std::size_t lines = outer * inner;
  const std::size_t chunk = std::max<std::size_t>(1, parallel::kChunkSize / std::max<std::size_t>(1, r));
  parallel::parallel_for(
      lines, chunk,
      [&](std::size_t b, std::size_t e) {
        std::vector<std::int64_t> order(r);
        for (std::size_t t = b; t < e; ++t) {
          const std::size_t o = t / inner, i = t % inner;
          const T* line = x + o * r * inner + i;
          std::iota(order.begin(), order.end(), std::int64_t{0});
          std::stable_sort(order.begin(), order.end(), [&](std::int64_t p, std::int64_t q) {
            return sort_before(line[static_cast<std::size_t>(p) * inner], line[static_cast<std::size_t>(q) * inner],
                               descending);
          });
          for (std::size_t k = 0; k < r; ++k) {
            const std::size_t at = (o * r + k) * inner + i;
            indices[at] = order[k];
            values[at] = line[static_cast<std::size_t>(order[k]) * inner];
          }
        }
      },
      lines * r > parallel::kChunkSize ? 1 : lines);
}

}  // namespace sorix::kernels::scan
