#pragma once
// Selections, gathers, row copies and the one scatter-add (table.hpp's IndexKernels), written once
// for every architecture. Nothing here rounds except the scatter-add's adds, and those run in one
// fixed order per element (+0, then the source rows in their listed order), a lane or a scalar
// doing the same IEEE add: the register width never changes a bit. A selection returns an element
// of the input found by rules that never depend on the width (the first occurrence of the best
// value; the first NaN), so it is exact.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "sorix_core/kernels/arch.hpp"
#include "sorix_core/kernels/table.hpp"

namespace sorix::kernels {

template <class A>
struct IndexKernelsOf {
  template <class T>
  static constexpr bool kVector = std::is_floating_point_v<T> || std::is_same_v<T, std::int64_t>;

  // ---- the scatter-add --------------------------------------------------------------------------
  // Columns in blocks of four registers held across the contributing rows, then one register,
  // then single elements (the same add per element either way).
  template <class T>
  static void scatter_add_rows(const T* src, T* dst, const std::size_t* begin, const std::size_t* order,
                               std::size_t K, std::size_t R, std::size_t inner, std::size_t q0, std::size_t q1,
                               std::size_t c0, std::size_t c1, std::int64_t zero_row) {
    using B = xsimd::batch<T, A>;
    constexpr std::size_t W = B::size;
    for (std::size_t q = q0; q < q1; ++q) {
      const std::size_t o = q / R, r = q % R;
      T* to = dst + q * inner;
      const bool zero = static_cast<std::int64_t>(r) == zero_row;
      const std::size_t p0 = zero ? 0 : begin[r], p1 = zero ? 0 : begin[r + 1];
      const T* base = src + o * K * inner;
      std::size_t c = c0;
      for (; c + 4 * W <= c1; c += 4 * W) {
        B a0(T(0)), a1(T(0)), a2(T(0)), a3(T(0));
        for (std::size_t p = p0; p < p1; ++p) {
          const T* from = base + order[p] * inner + c;
          a0 = a0 + B::load_unaligned(from);
          a1 = a1 + B::load_unaligned(from + W);
          a2 = a2 + B::load_unaligned(from + 2 * W);
          a3 = a3 + B::load_unaligned(from + 3 * W);
        }
        a0.store_unaligned(to + c);
        a1.store_unaligned(to + c + W);
        a2.store_unaligned(to + c + 2 * W);
        a3.store_unaligned(to + c + 3 * W);
      }
      for (; c + W <= c1; c += W) {
        B a(T(0));
        for (std::size_t p = p0; p < p1; ++p) a = a + B::load_unaligned(base + order[p] * inner + c);
        a.store_unaligned(to + c);
      }
      for (; c < c1; ++c) {
        T a = T(0);
        for (std::size_t p = p0; p < p1; ++p) a = wrapping_add(a, base[order[p] * inner + c]);
        to[c] = a;
      }
    }
  }

  // ---- gathers ----------------------------------------------------------------------------------
  template <class T>
  static void gather(const T* src, const std::int64_t* idx, std::size_t stride, const std::size_t* offset, T* dst,
                     std::size_t rows, std::size_t n, std::size_t ld) {
    for (std::size_t k = 0; k < rows; ++k) {
      const std::int64_t* ik = idx + k * ld;
      T* dk = dst + k * ld;
      for (std::size_t i = 0; i < n; ++i) dk[i] = src[static_cast<std::size_t>(ik[i]) * stride + offset[i]];
    }
  }

  template <class T>
  static void scatter_add(const T* src, const std::int64_t* idx, std::size_t stride, const std::size_t* offset, T* dst,
                          std::size_t rows, std::size_t n, std::size_t ld) {
    for (std::size_t k = 0; k < rows; ++k) {
      const std::int64_t* ik = idx + k * ld;
      const T* sk = src + k * ld;
      for (std::size_t i = 0; i < n; ++i) {
        T& to = dst[static_cast<std::size_t>(ik[i]) * stride + offset[i]];
        to = wrapping_add(to, sk[i]);
      }
    }
  }

  static void gather_rows(const unsigned char* src, std::size_t src_row_bytes, const std::int64_t* idx,
                          std::size_t r0, std::size_t r1, unsigned char* dst, std::size_t row_bytes) {
    // Shuffled rows are scattered over the whole dataset: each one starts with a TLB and a cache
    // miss. Touching the rows a few ahead overlaps those misses with the copies.
    constexpr std::size_t kAhead = 4;
    for (std::size_t r = r0; r < r1; ++r) {
      if (r + kAhead < r1) {
        const unsigned char* next = src + static_cast<std::size_t>(idx[r + kAhead]) * src_row_bytes;
        for (std::size_t b = 0; b < src_row_bytes; b += 64) __builtin_prefetch(next + b);
      }
      std::memcpy(dst + r * row_bytes, src + static_cast<std::size_t>(idx[r]) * src_row_bytes, row_bytes);
    }
  }

  // ---- selections -------------------------------------------------------------------------------
  // True when candidate a beats the current best b (strictly: ties keep the earlier one); the
  // first NaN wins for good.
  template <bool IsMax, class T>
  static bool better(T a, T b) {
    if constexpr (std::is_floating_point_v<T>) {
      if (b != b) return false;
      if (a != a) return true;
    }
    if constexpr (IsMax) return a > b;
    else return a < b;
  }

  template <bool IsMax, class T>
  static std::size_t scan_scalar(const T* x, std::size_t n) {
    std::size_t best = 0;
    for (std::size_t i = 1; i < n; ++i) {
      if (better<IsMax>(x[i], x[best])) best = i;
      if constexpr (std::is_floating_point_v<T>) {
        if (x[best] != x[best]) break;  // nothing beats the first NaN
      }
    }
    return best;
  }

  // Floating point: one pass for the best value ignoring NaNs (exact: any order gives the same
  // value up to the sign of a zero, which the second pass does not look at) and whether any NaN
  // is there; a second pass for the first element equal to it (or the first NaN).
  template <bool IsMax, class T>
  static std::size_t arg_best(const T* x, std::size_t n) {
    if constexpr (!std::is_floating_point_v<T>) {
      return scan_scalar<IsMax>(x, n);
    } else {
      using B = xsimd::batch<T, A>;
      constexpr std::size_t W = B::size;
      const T worst = IsMax ? -std::numeric_limits<T>::infinity() : std::numeric_limits<T>::infinity();
      B m0(worst), m1(worst);
      xsimd::batch_bool<T, A> nan0(false), nan1(false);
      std::size_t i = 0;
      for (; i + 2 * W <= n; i += 2 * W) {
        const B v0 = B::load_unaligned(x + i), v1 = B::load_unaligned(x + i + W);
        if constexpr (IsMax) {
          m0 = xsimd::select(v0 > m0, v0, m0);
          m1 = xsimd::select(v1 > m1, v1, m1);
        } else {
          m0 = xsimd::select(v0 < m0, v0, m0);
          m1 = xsimd::select(v1 < m1, v1, m1);
        }
        nan0 = nan0 | xsimd::isnan(v0);
        nan1 = nan1 | xsimd::isnan(v1);
      }
      bool nan = xsimd::any(nan0 | nan1);
      alignas(64) T lanes[2 * W];
      m0.store_aligned(lanes);
      m1.store_aligned(lanes + W);
      T m = worst;
      for (std::size_t l = 0; l < 2 * W; ++l) m = (IsMax ? lanes[l] > m : lanes[l] < m) ? lanes[l] : m;
      for (std::size_t k = i; k < n; ++k) {
        nan = nan || x[k] != x[k];
        m = (IsMax ? x[k] > m : x[k] < m) ? x[k] : m;
      }
      // The first NaN, or the first element equal to m (m is an element unless every element is
      // the worst value or NaN: then the first of those is found the same way).
      std::size_t j = 0;
      const B mb(m);
      for (; j + W <= n; j += W) {
        const B v = B::load_unaligned(x + j);
        if (xsimd::any(nan ? xsimd::isnan(v) : v == mb)) break;
      }
      for (; j < n; ++j)
        if (nan ? x[j] != x[j] : x[j] == m) return j;
      return 0;  // unreachable: some element matched
    }
  }

  template <class T>
  static std::size_t argmax(const T* x, std::size_t n) {
    return arg_best<true>(x, n);
  }
  template <class T>
  static std::size_t argmin(const T* x, std::size_t n) {
    return arg_best<false>(x, n);
  }

  // Column scans: a register of columns is compared with its current best; only where some lane
  // is beaten are that register's lanes updated one by one, by the scalar rules.
  template <bool IsMax, class T>
  static void scan_cols(const T* x, std::size_t r, std::size_t stride, std::size_t n, T* v, std::int64_t* ix) {
    std::copy(x, x + n, v);
    std::fill(ix, ix + n, std::int64_t(0));
    for (std::size_t k = 1; k < r; ++k) {
      const T* row = x + k * stride;
      std::size_t c = 0;
      if constexpr (std::is_floating_point_v<T>) {
        using B = xsimd::batch<T, A>;
        constexpr std::size_t W = B::size;
        for (; c + W <= n; c += W) {
          const B a = B::load_unaligned(row + c), b = B::load_unaligned(v + c);
          const auto beats = IsMax ? a > b : a < b;
          if (!xsimd::any((beats | xsimd::isnan(a)) & !xsimd::isnan(b))) continue;
          for (std::size_t l = c; l < c + W; ++l) {
            if (better<IsMax>(row[l], v[l])) {
              v[l] = row[l];
              ix[l] = static_cast<std::int64_t>(k);
            }
          }
        }
      }
      for (; c < n; ++c) {
        if (better<IsMax>(row[c], v[c])) {
          v[c] = row[c];
          ix[c] = static_cast<std::int64_t>(k);
        }
      }
    }
  }

  template <class T>
  static constexpr IndexKernels<T> kernels() {
    return IndexKernels<T>{&scatter_add_rows<T>, &gather<T>,          &scatter_add<T>,
                           &argmax<T>,           &argmin<T>,          &scan_cols<true, T>,
                           &scan_cols<false, T>};
  }
};

}  // namespace sorix::kernels
