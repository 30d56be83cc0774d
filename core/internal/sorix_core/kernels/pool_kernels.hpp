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

  /// The windows of lane pairs: a holds one window row's (a, b) pairs, c the next row's (c, d)
  /// pairs. On the even lanes v gets each window's maximum by the rule above and t its tap (0..3:
  /// a, b, c, d, as T); the odd lanes hold the same rule run on the taps in another order.
  /// kNoNaN: the caller knows that no tap is NaN, so a tap is taken when it is greater alone
  /// (the rule's NaN test is then always false: the same selections, fewer instructions).
  template <class T, bool kNoNaN = false>
  static void window_max(const xsimd::batch<T, A>& a, const xsimd::batch<T, A>& c, xsimd::batch<T, A>& v,
                         xsimd::batch<T, A>& t) {
    xsimd::batch<T, A> unused;
    window_max_carrying<T, kNoNaN>(a, c, a, c, v, t, unused);
  }

  /// window_max, and w gets the winners' values of another pair of registers laid out as a and
  /// c (ca and cc: a value per tap), selected beside v rather than from t afterwards (a shorter
  /// chain of dependent instructions).
  template <class T, bool kNoNaN = false>
  static void window_max_carrying(const xsimd::batch<T, A>& a, const xsimd::batch<T, A>& c,
                                  const xsimd::batch<T, A>& ca, const xsimd::batch<T, A>& cc,
                                  xsimd::batch<T, A>& v, xsimd::batch<T, A>& t, xsimd::batch<T, A>& w) {
    using B = xsimd::batch<T, A>;
    const B b = swap_pairs<T>(a), d = swap_pairs<T>(c);
    const auto takes = [&](const B& tap) {
      if constexpr (kNoNaN) return tap > v;
      else return (tap > v) | xsimd::isnan(tap);
    };
    v = a;
    t = B(T(0));
    w = ca;
    auto take = takes(b);
    v = xsimd::select(take, b, v);
    t = xsimd::select(take, B(T(1)), t);
    w = xsimd::select(take, swap_pairs<T>(ca), w);
    take = takes(c);
    v = xsimd::select(take, c, v);
    t = xsimd::select(take, B(T(2)), t);
    w = xsimd::select(take, cc, w);
    take = takes(d);
    v = xsimd::select(take, d, v);
    t = xsimd::select(take, B(T(3)), t);
    w = xsimd::select(take, swap_pairs<T>(cc), w);
  }

  /// p[0 .. n) with each value in a lane pair (p[k] in lanes 2k and 2k + 1), n <= lanes / 2; +0
  /// in the lanes past 2n (nothing past p + n is read).
  template <class T>
  static xsimd::batch<T, A> duplicate_pairs(const T* p, std::size_t n) {
    using B = xsimd::batch<T, A>;
    constexpr std::size_t L = B::size;
#if SORIX_X86
    if constexpr (kIsAvx512<A> || kIsAvx2<A> || kIsSse2<A>) {
      B v;
      if (n < L / 2) v = load_first<A>(p, n);
      else if constexpr (kIsAvx512<A>) {  // exactly L / 2 values: a half-width load
        if constexpr (std::is_same_v<T, float>) v = _mm512_castps256_ps512(_mm256_loadu_ps(p));
        else v = _mm512_castpd256_pd512(_mm256_loadu_pd(p));
      } else if constexpr (kIsAvx2<A>) {
        if constexpr (std::is_same_v<T, float>) v = _mm256_castps128_ps256(_mm_loadu_ps(p));
        else v = _mm256_castpd128_pd256(_mm_loadu_pd(p));
      } else {
        if constexpr (std::is_same_v<T, float>) v = _mm_castsi128_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
        else v = _mm_load_sd(p);
      }
      if constexpr (kIsAvx512<A>) {
        if constexpr (std::is_same_v<T, float>)
          return _mm512_permutexvar_ps(_mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7), v);
        else return _mm512_permutexvar_pd(_mm512_setr_epi64(0, 0, 1, 1, 2, 2, 3, 3), v);
      } else if constexpr (kIsAvx2<A>) {
        if constexpr (std::is_same_v<T, float>)
          return _mm256_permutevar8x32_ps(v, _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3));
        else return _mm256_permute4x64_pd(v, 0x50);
      } else {
        if constexpr (std::is_same_v<T, float>) return _mm_unpacklo_ps(v, v);
        else return _mm_unpacklo_pd(v, v);
      }
    }
#endif
    alignas(64) T buf[L] = {};
    for (std::size_t k = 0; k < n; ++k) buf[2 * k] = buf[2 * k + 1] = p[k];
    return B::load_aligned(buf);
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
          B v, t;
          window_max<T>(a, c, v, t);
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
