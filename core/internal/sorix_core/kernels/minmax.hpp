#pragma once
// The max/min scans of the kernel layer (autograd/src/reduce_minmax.cpp owns the ops and their
// gradients): over all elements, or along one dim of x viewed as [outer, r, inner]. Ties keep the
// first occurrence and NaN counts as the extreme (both as PyTorch), so a scan only replaces its
// current best by a strictly better element. A selection involves no arithmetic, so its result is
// exact: the same for any chunking, thread count or CPU. The scans are the dispatch table's
// (index_kernels.hpp); the parallel loops here. Heavy only through reduce.hpp (include from .cpp
// files).
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "sorix_core/kernels/reduce.hpp"
#include "sorix/parallel/parallel.hpp"

namespace sorix::kernels::minmax {

using Index = std::int64_t;
constexpr std::size_t kNone = std::numeric_limits<std::size_t>::max();

template <class T>
bool is_nan(T v) {
  if constexpr (std::is_floating_point_v<T>) {
    return std::isnan(v);
  } else {
    return false;
  }
}

// True when candidate `a` beats the current best `b` (strictly: ties keep the earlier one).
template <bool IsMax, class T>
bool better(T a, T b) {
  if (is_nan(b)) return false;  // the first NaN wins for good
  if (is_nan(a)) return true;
  if constexpr (IsMax) {
    return a > b;
  } else {
    return a < b;
  }
}

template <class T>
struct Best {
  T value{};
  std::size_t index = kNone;  // kNone: no element seen (the identity of the combine)
};

// Scan of x[b..e) (flat indices): the active capability's kernel (index_kernels.hpp) for the
// element types of the table, the same rules in baseline code for any other.
template <bool IsMax, class T>
Best<T> scan_run(const T* x, std::size_t b, std::size_t e) {
  if constexpr (kHasIndexKernels<T>) {
    const auto& k = index_kernels<T>(active());
    const std::size_t i = b + (IsMax ? k.argmax : k.argmin)(x + b, e - b);
    return {x[i], i};
  } else {
    Best<T> best{x[b], b};
    for (std::size_t i = b + 1; i < e; ++i) {
      if (better<IsMax>(x[i], best.value)) best = {x[i], i};
      if (is_nan(best.value)) break;  // nothing beats the first NaN
    }
    return best;
  }
}

template <bool IsMax, class T>
Best<T> scan_all(const T* x, std::size_t n) {
  return parallel::parallel_reduce<Best<T>>(
      n, parallel::kChunkSize, Best<T>{}, [&](std::size_t b, std::size_t e) { return scan_run<IsMax>(x, b, e); },
      [](const Best<T>& acc, const Best<T>& p) {
        // Partials arrive in chunk order: a later chunk replaces only on a strictly better value.
        if (acc.index == kNone) return p;
        return better<IsMax>(p.value, acc.value) ? p : acc;
      });
}

// x viewed as [outer, r, inner] (r >= 1): vals[o, i] and idx[o, i] are the best over k.
template <bool IsMax, class T>
void scan_axis(const T* x, T* vals, Index* idx, std::size_t outer, std::size_t r, std::size_t inner) {
  if (inner == 1) {
    // One contiguous row per output; chunks of whole rows, about kChunkSize elements each.
    parallel::parallel_for(
        outer, std::max<std::size_t>(1, parallel::kChunkSize / r),
        [&](std::size_t o0, std::size_t o1) {
          for (std::size_t o = o0; o < o1; ++o) {
            const Best<T> b = scan_run<IsMax>(x + o * r, 0, r);
            vals[o] = b.value;
            idx[o] = static_cast<Index>(b.index);
          }
        },
        parallel::kInlineGrain / r + 1);
    return;
  }
  // Rows of `inner` compared in k order across each column tile (contiguous reads).
  kernels::for_column_tiles(outer, r, inner, [&](std::size_t o, std::size_t c0, std::size_t c1) {
    const T* src = x + o * r * inner + c0;
    T* v = vals + o * inner + c0;
    Index* ix = idx + o * inner + c0;
    if constexpr (kHasIndexKernels<T>) {
      const auto& k = index_kernels<T>(active());
      (IsMax ? k.max_cols : k.min_cols)(src, r, inner, c1 - c0, v, ix);
    } else {
      std::copy(src, src + (c1 - c0), v);
      std::fill(ix, ix + (c1 - c0), Index(0));
      for (std::size_t k = 1; k < r; ++k) {
        const T* row = src + k * inner;
        for (std::size_t c = 0; c < c1 - c0; ++c) {
          if (better<IsMax>(row[c], v[c])) {
            v[c] = row[c];
            ix[c] = static_cast<Index>(k);
          }
        }
      }
    }
  });
}

}  // namespace sorix::kernels::minmax
