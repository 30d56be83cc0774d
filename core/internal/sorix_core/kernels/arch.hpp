#pragma once
// The per-capability kernel layer's vocabulary: which xsimd architecture each CPU capability
// compiles for, and the few primitives whose result must not depend on it.
//
// Kernels are templates on an xsimd architecture A (`xsimd::batch<T, A>`). Each capability's
// instantiation lives in its own translation unit compiled with that capability's flags
// (cap_scalar.cpp, cap_avx2.cpp, cap_avx512.cpp); an intrinsic appears only inside an
// `if constexpr` branch for its architecture.
//
// Same bits on every path: a kernel's arithmetic never depends on the register width.
//  - fmadd() is one correctly rounded fused multiply-add on every path: the FMA instruction on
//    AVX2 and AVX-512, an exact emulation on baseline x86-64 (SSE2 has no FMA).
//  - negated() flips the sign bit: xsimd's unary minus is 0 - v on AVX-512 (+0 for +0), so a
//    kernel negates with negated(), never with -v, where the sign of a zero can reach a result.
//  - Translation units are compiled with -ffp-contract=off, so a * b + c is never silently fused
//    on one path and not on another.
//
// Every function in these kernel headers is a template on the architecture or `static`: a
// non-template inline function compiled into the AVX2 unit could otherwise be the copy the linker
// keeps for the baseline units too.
//
// Heavy (includes xsimd and immintrin.h): include only from the kernel translation units.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

// g++ 12 reports false -W(maybe-)uninitialized warnings inside its own AVX-512 intrinsic headers
// (_mm512_undefined_*; GCC bug 105593, fixed in 13) once batches are inlined. The warning is raised
// after inlining, where a push/pop around the include no longer applies, so for g++ < 13 it is
// off in the kernel translation units that include this header, and nowhere else.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <xsimd/xsimd.hpp>
#if defined(__x86_64__)
#include <immintrin.h>
#define SORIX_X86 1
#else
#define SORIX_X86 0
#endif

namespace sorix::kernels {

#if SORIX_X86
/// Baseline x86-64 (every x86-64 CPU has SSE2).
using ScalarArch = xsimd::sse2;
/// AVX2 + FMA (Haswell, Zen and later).
using Avx2Arch = xsimd::fma3<xsimd::avx2>;
/// AVX-512 F/CD/BW/DQ/VL. xsimd's own avx512bw kernels (8- and 16-bit lanes, unused here) do not
/// compile at -O0 in xsimd 8.1, so batches use avx512dq; the TU is compiled with BW and VL too.
using Avx512Arch = xsimd::avx512dq;
#else
/// The baseline of other architectures: NEON on arm64 (xsimd's default there).
using ScalarArch = xsimd::default_arch;
#endif

template <class A>
inline constexpr bool kIsAvx512 = SORIX_X86 && std::is_base_of_v<xsimd::avx512f, A>;
template <class A>
inline constexpr bool kIsAvx2 = SORIX_X86 && std::is_base_of_v<xsimd::avx2, A> && !kIsAvx512<A>;
template <class A>
inline constexpr bool kIsSse2 = SORIX_X86 && std::is_same_v<A, xsimd::sse2>;
#if defined(__aarch64__)
template <class A>
inline constexpr bool kIsNeon = std::is_base_of_v<xsimd::neon, A>;
#else
template <class A>
inline constexpr bool kIsNeon = false;
#endif

namespace fma_detail {

#if SORIX_X86
// fma for two float lanes held as doubles: a * b is exact in double (24 + 24 bits); the sum is
// rounded to odd (round toward zero, then set the lowest bit if inexact), which makes the final
// rounding to float correct (53 >= 24 + 2 bits: Boldo and Melquiond, "Emulation of FMA and
// correctly rounded sums", IEEE TC 2008).
static inline __m128d fma_to_odd_pd(__m128d a, __m128d b, __m128d c) {
  const __m128d p = _mm_mul_pd(a, b);
  const __m128d s = _mm_add_pd(p, c);
  // TwoSum: e = (p + c) - s exactly.
  const __m128d bv = _mm_sub_pd(s, p);
  const __m128d e = _mm_add_pd(_mm_sub_pd(p, _mm_sub_pd(s, bv)), _mm_sub_pd(c, bv));
  // Inexact where e != 0 (and not NaN: infinite or NaN sums are left as they are).
  const __m128i inexact = _mm_castpd_si128(_mm_and_pd(_mm_cmpneq_pd(e, _mm_setzero_pd()), _mm_cmpord_pd(e, e)));
  // s was rounded away from zero where e and s have opposite signs: step one ulp toward zero.
  const __m128i sign32 = _mm_srai_epi32(_mm_castpd_si128(_mm_xor_pd(e, s)), 31);
  const __m128i away = _mm_shuffle_epi32(sign32, _MM_SHUFFLE(3, 3, 1, 1));
  const __m128i one = _mm_set_epi32(0, 1, 0, 1);
  __m128i bits = _mm_castpd_si128(s);
  bits = _mm_sub_epi64(bits, _mm_and_si128(_mm_and_si128(away, inexact), one));
  bits = _mm_or_si128(bits, _mm_and_si128(inexact, one));
  return _mm_castsi128_pd(bits);
}

static inline __m128 fma_sse2_ps(__m128 a, __m128 b, __m128 c) {
  const __m128d lo = fma_to_odd_pd(_mm_cvtps_pd(a), _mm_cvtps_pd(b), _mm_cvtps_pd(c));
  const __m128d hi = fma_to_odd_pd(_mm_cvtps_pd(_mm_movehl_ps(a, a)), _mm_cvtps_pd(_mm_movehl_ps(b, b)),
                                   _mm_cvtps_pd(_mm_movehl_ps(c, c)));
  return _mm_movelh_ps(_mm_cvtpd_ps(lo), _mm_cvtpd_ps(hi));
}
#endif

}  // namespace fma_detail

namespace fma_detail {
// Lane by lane with std::fma (correctly rounded by definition, whichever way libm computes it).
template <class T, class A>
inline xsimd::batch<T, A> fma_per_lane(const xsimd::batch<T, A>& a, const xsimd::batch<T, A>& b,
                                       const xsimd::batch<T, A>& c) {
  constexpr std::size_t W = xsimd::batch<T, A>::size;
  alignas(64) T x[W], y[W], z[W];
  a.store_aligned(x);
  b.store_aligned(y);
  c.store_aligned(z);
  for (std::size_t i = 0; i < W; ++i) x[i] = std::fma(x[i], y[i], z[i]);
  return xsimd::batch<T, A>::load_aligned(x);
}
}  // namespace fma_detail

/// a * b + c rounded once (IEEE fusedMultiplyAdd), the same bits on every architecture.
template <class A>
inline xsimd::batch<float, A> fmadd(const xsimd::batch<float, A>& a, const xsimd::batch<float, A>& b,
                                    const xsimd::batch<float, A>& c) {
#if SORIX_X86
  if constexpr (kIsAvx512<A>) {
    return _mm512_fmadd_ps(a, b, c);  // (xsimd 8.1's avx512 fma is a separate multiply and add)
  } else if constexpr (kIsAvx2<A>) {
    return _mm256_fmadd_ps(a, b, c);
  } else if constexpr (kIsSse2<A>) {
    return fma_detail::fma_sse2_ps(a, b, c);
  } else
#endif
  {
    if constexpr (kIsNeon<A>) return xsimd::fma(a, b, c);  // vfmaq_f32: fused
    else return fma_detail::fma_per_lane(a, b, c);
  }
}

template <class A>
inline xsimd::batch<double, A> fmadd(const xsimd::batch<double, A>& a, const xsimd::batch<double, A>& b,
                                     const xsimd::batch<double, A>& c) {
#if SORIX_X86
  if constexpr (kIsAvx512<A>) {
    return _mm512_fmadd_pd(a, b, c);
  } else if constexpr (kIsAvx2<A>) {
    return _mm256_fmadd_pd(a, b, c);
  } else
#endif
  {  // SSE2 has no FMA; float64 products are not this path's strength
    if constexpr (kIsNeon<A>) return xsimd::fma(a, b, c);  // vfmaq_f64: fused
    else return fma_detail::fma_per_lane(a, b, c);
  }
}

/// -v by flipping the sign bit, on every path: xsimd's AVX-512 negation is 0 - v, which gives +0
/// for v = +0 where the SSE2 and AVX2 negations give -0 (and keeps a NaN's sign).
template <class T, class A>
inline xsimd::batch<T, A> negated(const xsimd::batch<T, A>& v) {
  return v ^ xsimd::batch<T, A>(T(-0.0));
}

/// Lanes [lo, hi) of the register whose lane k would be at address base + k * sizeof(T) (only
/// those lanes are read: masked loads on AVX2 and AVX-512, a staged copy elsewhere), +0 in the
/// others. An address, not a pointer: lane 0 may lie before the data.
template <class A, class T>
inline xsimd::batch<T, A> load_lanes(std::uintptr_t base, std::size_t lo, std::size_t hi) {
  using B = xsimd::batch<T, A>;
#if SORIX_X86
  if constexpr (kIsAvx512<A>) {
    const unsigned m = ((1u << hi) - 1u) & ~((1u << lo) - 1u);
    if constexpr (std::is_same_v<T, float>)
      return B(_mm512_maskz_loadu_ps(static_cast<__mmask16>(m), reinterpret_cast<const void*>(base)));
    else return B(_mm512_maskz_loadu_pd(static_cast<__mmask8>(m), reinterpret_cast<const void*>(base)));
  } else if constexpr (kIsAvx2<A>) {
    if constexpr (std::is_same_v<T, float>) {
      const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
      const __m256i m = _mm256_andnot_si256(_mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(lo)), lane),
                                            _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(hi)), lane));
      return B(_mm256_maskload_ps(reinterpret_cast<const float*>(base), m));
    } else {
      const __m256i lane = _mm256_setr_epi64x(0, 1, 2, 3);
      const __m256i m = _mm256_andnot_si256(_mm256_cmpgt_epi64(_mm256_set1_epi64x(static_cast<long long>(lo)), lane),
                                            _mm256_cmpgt_epi64(_mm256_set1_epi64x(static_cast<long long>(hi)), lane));
      return B(_mm256_maskload_pd(reinterpret_cast<const double*>(base), m));
    }
  } else
#endif
  {
    alignas(64) T buf[B::size];
    for (std::size_t k = 0; k < B::size; ++k)
      buf[k] = k >= lo && k < hi ? *reinterpret_cast<const T*>(base + k * sizeof(T)) : T(0);
    return B::load_aligned(buf);
  }
}

/// The first n < lanes values at p, zeros in the other lanes (nothing past p + n is read).
template <class A, class T>
inline xsimd::batch<T, A> load_first(const T* p, std::size_t n) {
  return load_lanes<A, T>(reinterpret_cast<std::uintptr_t>(p), 0, n);
}

/// Stores the first n < lanes lanes of v at p (nothing past p + n is written).
template <class A, class T>
inline void store_first(const xsimd::batch<T, A>& v, T* p, std::size_t n) {
#if SORIX_X86
  if constexpr (kIsAvx512<A>) {
    if constexpr (std::is_same_v<T, float>) _mm512_mask_storeu_ps(p, static_cast<__mmask16>((1u << n) - 1), v);
    else _mm512_mask_storeu_pd(p, static_cast<__mmask8>((1u << n) - 1), v);
    return;
  } else if constexpr (kIsAvx2<A>) {
    if constexpr (std::is_same_v<T, float>) {
      const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
      _mm256_maskstore_ps(p, _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), lane), v);
    } else {
      const __m256i lane = _mm256_setr_epi64x(0, 1, 2, 3);
      _mm256_maskstore_pd(p, _mm256_cmpgt_epi64(_mm256_set1_epi64x(static_cast<long long>(n)), lane), v);
    }
    return;
  } else
#endif
  {
    alignas(64) T buf[xsimd::batch<T, A>::size];
    v.store_aligned(buf);
    for (std::size_t k = 0; k < n; ++k) p[k] = buf[k];
  }
}

/// Scalar fmadd: std::fma (correctly rounded on every CPU).
static inline float fmadd(float a, float b, float c) { return std::fma(a, b, c); }
static inline double fmadd(double a, double b, double c) { return std::fma(a, b, c); }

}  // namespace sorix::kernels
