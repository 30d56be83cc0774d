#pragma once
// Max pooling's common window, 2 x 2 with a column stride of 2, as a per-capability kernel (the
// dispatch table's max_pool_2x2_*; pool.hpp has the general plane kernels).
//
// A window's four taps are in the general loop's order a = (r0, 2j), b = (r0, 2j + 1),
// c = (r1, 2j), d = (r1, 2j + 1); the winner is replaced only by a strictly larger value or by a
// NaN (the first of equal maxima, the last NaN: PyTorch's rule), and its plane offset is kept.
// Vector form: a register of the window row r0 holds (a, b) pairs side by side; swapping each
// pair's lanes puts b under a, and likewise d under c for r1, so the even lanes run the scalar
// rule on four registers at once. A selection involves no arithmetic: the same values and
// indices as the scalar loop on every capability and at any register width.
#include <cstddef>
#include <cstdint>

#include "sorix_core/kernels/arch.hpp"

namespace sorix::kernels {

template <class A>
struct PoolKernelsOf {
  // Each lane pair (2i, 2i + 1) swapped.
  template <class T>
  static xsimd::batch<T, A> swap_pairs(const xsimd::batch<T, A>& v) {
#if SORIX_X86
    if constexpr (kIsAvx512<A>) {
      if constexpr (std::is_same_v<T, float>) return _mm512_permute_ps(v, 0xB1);
      else return _mm512_permute_pd(v, 0x55);
    } else if constexpr (kIsAvx2<A>) {
      if constexpr (std::is_same_v<T, float>) return _mm256_permute_ps(v, 0xB1);
      else return _mm256_permute_pd(v, 0x5);
    } else if constexpr (kIsSse2<A>) {
      if constexpr (std::is_same_v<T, float>) return _mm_shuffle_ps(v, v, 0xB1);
      else return _mm_shuffle_pd(v, v, 1);
    } else
#endif
    {
      constexpr std::size_t L = xsimd::batch<T, A>::size;
      alignas(64) T in[L], out[L];
      v.store_aligned(in);
      for (std::size_t i = 0; i < L; ++i) out[i] = in[i ^ 1];
      return xsimd::batch<T, A>::load_aligned(out);
    }
  }

  // Windows per block: their maxima and tap codes are staged in stack buffers of 2 * kBlock lanes.
  static constexpr std::size_t kBlock = 256;

  /// y[oh * OW + j] and indices[oh * OW + j] for the windows at rows (oh * sh, oh * sh + 1),
  /// columns (2j, 2j + 1) of the W-wide plane x; every window lies inside the plane.
  template <class T>
  static void max_pool_2x2(const T* x, std::size_t W, std::size_t sh, std::size_t OH, std::size_t OW, T* y,
                           std::int64_t* indices) {
    using B = xsimd::batch<T, A>;
    constexpr std::size_t L = B::size;
    static_assert(L % 2 == 0, "lane pairs");
    alignas(64) T best[2 * kBlock + L], tap[2 * kBlock + L];
    const B one(T(1)), two(T(2)), three(T(3));
    for (std::size_t oh = 0; oh < OH; ++oh) {
      const std::size_t r0 = oh * sh * W;
      for (std::size_t j0 = 0; j0 < OW; j0 += kBlock) {
        const std::size_t n = OW - j0 < kBlock ? OW - j0 : kBlock, len = 2 * n;
        const T* x0 = x + r0 + 2 * j0;
        const T* x1 = x0 + W;
        for (std::size_t i = 0; i < len; i += L) {
          B a, c;
          if (i + L <= len) {
            a = B::load_unaligned(x0 + i);
            c = B::load_unaligned(x1 + i);
          } else {  // the row's last pairs, zero-padded (the padding lanes are never stored)
            a = load_first<A>(x0 + i, len - i);
            c = load_first<A>(x1 + i, len - i);
          }
          const B b = swap_pairs<T>(a), d = swap_pairs<T>(c);
          B v = a, t(T(0));
          auto take = (b > v) | xsimd::isnan(b);
          v = xsimd::select(take, b, v);
          t = xsimd::select(take, one, t);
          take = (c > v) | xsimd::isnan(c);
          v = xsimd::select(take, c, v);
          t = xsimd::select(take, two, t);
          take = (d > v) | xsimd::isnan(d);
          v = xsimd::select(take, d, v);
          t = xsimd::select(take, three, t);
          v.store_aligned(best + i);
          t.store_aligned(tap + i);
        }
        T* yr = y + oh * OW + j0;
        std::int64_t* ir = indices + oh * OW + j0;
        const auto base = static_cast<std::int64_t>(r0 + 2 * j0), w = static_cast<std::int64_t>(W);
        for (std::size_t j = 0; j < n; ++j) {
          const auto code = static_cast<std::int32_t>(tap[2 * j]);  // 0..3: a, b, c, d
          yr[j] = best[2 * j];
          ir[j] = base + static_cast<std::int64_t>(2 * j) + (code & 1) + (code >> 1) * w;
        }
      }
    }
  }
};

}  // namespace sorix::kernels
