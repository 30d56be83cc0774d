#pragma once
// sorix's own transcendental functions on xsimd batches, the same bits on every architecture.
//
// exp, log, tanh, sigmoid and sin/cos of 2 pi u.
//
// libm's results vary with the build and the CPU (glibc picks FMA variants of exp and log at run
// time), and xsimd's vector versions fuse their multiply-adds on some architectures and not on
// others. These use only IEEE-exact operations (+, -, *, /, comparisons, integer bit moves) and
// fmadd() (one rounding on every path), so a value is a pure function of its input.
//
// The polynomials are those of xsimd's generic kernels (Boost.SIMD, from Cephes and fdlibm); the
// evaluation order here is fixed and written out. Accuracy: about 1 ulp on the tested ranges
// (tests/core/test_kernels.cpp compares with long double references).
//
// Heavy: include only from the kernel translation units (via arch.hpp).
#include <bit>
#include <cstdint>
#include <limits>
#include <utility>

#include "core/src/kernels/arch.hpp"

namespace sorix::kernels::math {

static inline float f32(std::uint32_t bits) { return std::bit_cast<float>(bits); }
static inline double f64(std::uint64_t bits) { return std::bit_cast<double>(bits); }

/// c0 + x * (c1 + x * (c2 + ...)), each step one fmadd.
template <class V, class T>
inline V horner(const V& x, std::initializer_list<T> c) {
  const T* p = c.end();
  V y(*--p);
  while (p != c.begin()) y = fmadd(y, x, V(*--p));
  return y;
}

/// Nearest integer, ties to even, for |v| < 2^22 (float) or 2^51 (double): v + 1.5 * 2^p - 1.5 * 2^p.
template <class V>
inline V round_small(const V& v) {
  using T = typename V::value_type;
  const V magic(std::is_same_v<T, float> ? T(12582912.0) : T(6755399441055744.0));
  return (v + magic) - magic;
}

/// Natural logarithm. log(0) = -inf, log(+inf) = +inf, log(x < 0) and log(NaN) = NaN; subnormal
/// inputs are scaled first.
template <class A>
inline xsimd::batch<float, A> log(const xsimd::batch<float, A>& self) {
  using F = xsimd::batch<float, A>;
  using I = xsimd::batch<int32_t, A>;
  const auto tiny = (self < F(f32(0x00800000u))) & (self != F(0.0f));
  const F x0 = xsimd::select(tiny, self * F(8388608.0f), self);
  I k = xsimd::select(xsimd::bool_cast(tiny), I(-23), I(0));
  I ix = xsimd::bitwise_cast<I>(x0);
  ix += I(0x3f800000 - 0x3f3504f3);
  k += (ix >> 23) - I(0x7f);
  ix = (ix & I(0x007fffff)) + I(0x3f3504f3);
  const F f = xsimd::bitwise_cast<F>(ix) - F(1.0f);
  const F s = f / (F(2.0f) + f);
  const F z = s * s;
  const F w = z * z;
  const F t1 = w * horner(w, {f32(0x3eccce13u), f32(0x3e789e26u)});
  const F t2 = z * horner(w, {f32(0x3f2aaaaau), f32(0x3e91e9eeu)});
  const F R = t2 + t1;
  const F hfsq = F(0.5f) * f * f;
  const F dk = xsimd::to_float(k);
  const F lo = fmadd(s, hfsq + R, dk * F(f32(0xb95e8083u)));  // log(2) low part
  const F r = fmadd(dk, F(f32(0x3f318000u)), (lo - hfsq) + f);  // log(2) high part
  const F inf(std::numeric_limits<float>::infinity());
  F out = xsimd::select(self == inf, inf, r);
  out = xsimd::select(self == F(0.0f), -inf, out);
  return xsimd::select(!(self >= F(0.0f)), F(std::numeric_limits<float>::quiet_NaN()), out);
}

template <class A>
inline xsimd::batch<double, A> log(const xsimd::batch<double, A>& self) {
  using D = xsimd::batch<double, A>;
  using I = xsimd::batch<int64_t, A>;
  const auto tiny = (self < D(f64(0x0010000000000000ull))) & (self != D(0.0));
  const D x0 = xsimd::select(tiny, self * D(18014398509481984.0), self);
  const I bits = xsimd::bitwise_cast<I>(x0);
  // Work on the high word (as fdlibm): its exponent gives k, its mantissa the reduced argument.
  I hx = (bits >> 32) + I(0x3ff00000 - 0x3fe6a09e);
  const I k = ((hx >> 20) - I(0x3ff)) - xsimd::select(xsimd::bool_cast(tiny), I(54), I(0));
  hx = (hx & I(0x000fffff)) + I(0x3fe6a09e);
  const D x = xsimd::bitwise_cast<D>((hx << 32) | (bits & I(0xffffffff)));
  // k is a small signed integer: convert through the exact 1.5 * 2^52 trick (no int64 -> double
  // instruction before AVX-512DQ, and it must not matter which is used).
  const D dk = xsimd::bitwise_cast<D>(k + I(0x4338000000000000ll)) - D(6755399441055744.0);
  const D f = x - D(1.0);
  const D hfsq = D(0.5) * f * f;
  const D s = f / (D(2.0) + f);
  const D z = s * s;
  const D w = z * z;
  const D t1 = w * horner(w, {f64(0x3fd999999997fa04ull), f64(0x3fcc71c51d8e78afull), f64(0x3fc39a09d078c69full)});
  const D t2 = z * horner(w, {f64(0x3fe5555555555593ull), f64(0x3fd2492494229359ull), f64(0x3fc7466496cb03deull),
                              f64(0x3fc2f112df3e5244ull)});
  const D R = t2 + t1;
  const D lo = fmadd(s, hfsq + R, dk * D(f64(0x3dea39ef35793c76ull)));
  const D r = fmadd(dk, D(f64(0x3fe62e42fee00000ull)), (lo - hfsq) + f);
  const D inf(std::numeric_limits<double>::infinity());
  D out = xsimd::select(self == inf, inf, r);
  out = xsimd::select(self == D(0.0), -inf, out);
  return xsimd::select(!(self >= D(0.0)), D(std::numeric_limits<double>::quiet_NaN()), out);
}

namespace detail {
template <class A>
inline xsimd::batch<float, A> sin_poly(const xsimd::batch<float, A>& z, const xsimd::batch<float, A>& x) {
  using F = xsimd::batch<float, A>;
  const F y = horner(z, {f32(0xbe2aaaa2u), f32(0x3c08839du), f32(0xb94ca1f9u)});
  return fmadd(y * z, x, x);
}
template <class A>
inline xsimd::batch<float, A> cos_poly(const xsimd::batch<float, A>& z) {
  using F = xsimd::batch<float, A>;
  const F y = horner(z, {f32(0x3d2aaaa5u), f32(0xbab60619u), f32(0x37ccf5ceu)});
  return F(1.0f) + fmadd(z, F(-0.5f), y * z * z);
}
template <class A>
inline xsimd::batch<double, A> sin_poly(const xsimd::batch<double, A>& z, const xsimd::batch<double, A>& x) {
  using D = xsimd::batch<double, A>;
  const D y = horner(z, {f64(0xbfc5555555555548ull), f64(0x3f8111111110f7d0ull), f64(0xbf2a01a019bfdf03ull),
                         f64(0x3ec71de3567d4896ull), f64(0xbe5ae5e5a9291691ull), f64(0x3de5d8fd1fcf0ec1ull)});
  return fmadd(y * z, x, x);
}
template <class A>
inline xsimd::batch<double, A> cos_poly(const xsimd::batch<double, A>& z) {
  using D = xsimd::batch<double, A>;
  const D y = horner(z, {f64(0x3fe0000000000000ull), f64(0xbfa5555555555551ull), f64(0x3f56c16c16c15d47ull),
                         f64(0xbefa01a019ddbcd9ull), f64(0x3e927e4f8e06d9a5ull), f64(0xbe21eea7c1e514d4ull),
                         f64(0x3da8ff831ad9b219ull)});
  return D(1.0) - y * z;
}
}  // namespace detail

/// (sin(2 pi u), cos(2 pi u)) for u in [0, 1) (Box-Muller's angle). The quadrant is taken on u
/// itself, where the reduction r = u - q / 4 is exact, so no Cody-Waite step is needed.
template <class V>
inline std::pair<V, V> sincos_2pi(const V& u) {
  using T = typename V::value_type;
  using I = xsimd::as_integer_t<V>;
  const V q = round_small(u * V(T(4)));
  const V r = u - q * V(T(0.25));  // exact: in [-1/8, 1/8]
  // 2 pi as hi + lo (hi with a short mantissa so that r * hi is nearly exact).
  const V x = std::is_same_v<T, float> ? fmadd(r, V(T(6.28318548202514648438)), r * V(T(-1.74845553e-07)))
                                       : fmadd(r, V(T(6.28318530717958623200)), r * V(T(2.44929359829470635445e-16)));
  const V z = x * x;
  const V s = detail::sin_poly(z, x), c = detail::cos_poly(z);
  const I qi = xsimd::to_int(q);
  const auto odd = xsimd::bool_cast((qi & I(1)) != I(0));
  const auto neg_sin = xsimd::bool_cast((qi & I(2)) != I(0));                   // quadrants 2, 3
  const auto neg_cos = xsimd::bool_cast(((qi + I(1)) & I(2)) != I(0));          // quadrants 1, 2
  V sin_v = xsimd::select(odd, c, s), cos_v = xsimd::select(odd, s, c);
  sin_v = xsimd::select(neg_sin, -sin_v, sin_v);
  cos_v = xsimd::select(neg_cos, -cos_v, cos_v);
  return {sin_v, cos_v};
}

namespace detail {
// 2^k for integral k (as a float value) in [-252, 254] (float) or [-2044, 2046] (double), as two
// normal powers of two whose product the caller applies one after the other (so that a
// subnormal result is rounded once).
template <class V>
inline std::pair<V, V> pow2_split(const V& k) {
  using T = typename V::value_type;
  using I = xsimd::as_integer_t<V>;
  constexpr bool f = std::is_same_v<T, float>;
  const V k1 = round_small(k * V(T(0.5)));
  const V k2 = k - k1;
  const V magic(f ? T(12582912.0) : T(6755399441055744.0));  // 1.5 * 2^23, 1.5 * 2^52
  const I magic_bits = xsimd::bitwise_cast<I>(magic);
  const I bias(f ? 127 : 1023);
  constexpr int shift = f ? 23 : 52;
  const I e1 = (xsimd::bitwise_cast<I>(k1 + magic) - magic_bits + bias) << shift;
  const I e2 = (xsimd::bitwise_cast<I>(k2 + magic) - magic_bits + bias) << shift;
  return {xsimd::bitwise_cast<V>(e1), xsimd::bitwise_cast<V>(e2)};
}
}  // namespace detail

/// e^x. Underflows to +0 below log(smallest subnormal), overflows to +inf above log(max).
template <class A>
inline xsimd::batch<float, A> exp(const xsimd::batch<float, A>& x) {
  using F = xsimd::batch<float, A>;
  const F k = round_small(x * F(1.44269504088896341f));
  F r = fmadd(-k, F(f32(0x3f318000u)), x);  // x - k log(2), in two steps
  r = fmadd(-k, F(f32(0xb95e8083u)), r);
  const F y = horner(r, {f32(0x3f000000u), f32(0x3e2aa9a5u), f32(0x3d2aa957u), f32(0x3c098d8bu), f32(0x3ab778cfu)});
  const F e = F(1.0f) + fmadd(y, r * r, r);
  const auto p = detail::pow2_split(xsimd::min(xsimd::max(k, F(-200.0f)), F(200.0f)));
  F out = (e * p.first) * p.second;
  out = xsimd::select(x <= F(-103.972076f), F(0.0f), out);  // below log(2^-150): +0
  return xsimd::select(x >= F(88.7228394f), F(std::numeric_limits<float>::infinity()), out);
}

template <class A>
inline xsimd::batch<double, A> exp(const xsimd::batch<double, A>& x) {
  using D = xsimd::batch<double, A>;
  const D k = round_small(x * D(1.442695040888963407359924681001892137));
  const D hi = fmadd(-k, D(f64(0x3fe62e42fee00000ull)), x);
  const D lo = k * D(f64(0x3dea39ef35793c76ull));
  const D r = hi - lo;
  const D t = r * r;
  const D h = horner(t, {f64(0x3fc555555555553eull), f64(0xbf66c16c16bebd93ull), f64(0x3f11566aaf25de2cull),
                         f64(0xbebbbd41c5d26bf1ull), f64(0x3e66376972bea4d0ull)});
  const D c = fmadd(-t, h, r);
  const D e = D(1.0) - ((lo - (r * c) / (D(2.0) - c)) - hi);
  const auto p = detail::pow2_split(xsimd::min(xsimd::max(k, D(-1500.0)), D(1500.0)));
  D out = (e * p.first) * p.second;
  out = xsimd::select(x <= D(-745.1332191019412), D(0.0), out);  // below log(2^-1075): +0
  return xsimd::select(x >= D(709.782712893384), D(std::numeric_limits<double>::infinity()), out);
}

/// tanh(x): an odd polynomial (float) or rational function (double) below |x| = 0.625, else
/// 1 - 2 / (1 + e^(2|x|)); the sign is x's.
template <class A>
inline xsimd::batch<float, A> tanh(const xsimd::batch<float, A>& self) {
  using F = xsimd::batch<float, A>;
  const F x = xsimd::abs(self);
  const F sign = self & F(-0.0f);
  const F x2 = x * x;
  const F small = fmadd(horner(x2, {f32(0xbeaaaa99u), f32(0x3e088393u), f32(0xbd5c1e2du), f32(0x3ca9134eu),
                                    f32(0xbbbaf0eau)}) * x2,
                        x, x);
  const F large = fmadd(F(-2.0f), F(1.0f) / (F(1.0f) + exp(x + x)), F(1.0f));
  return xsimd::select(x < F(0.625f), small, large) ^ sign;
}

template <class A>
inline xsimd::batch<double, A> tanh(const xsimd::batch<double, A>& self) {
  using D = xsimd::batch<double, A>;
  const D x = xsimd::abs(self);
  const D sign = self & D(-0.0);
  const D x2 = x * x;
  const D p = horner(x2, {f64(0xc0993ac030580563ull), f64(0xc058d26a0e26682dull), f64(0xbfeedc5baafd6f4bull)});
  const D q = horner(x2, {f64(0x40b2ec102442040cull), f64(0x40a176fa0e5535faull), f64(0x405c33f28a581b86ull), 1.0});
  const D small = fmadd(x2 * p / q, x, x);
  const D large = fmadd(D(-2.0), D(1.0) / (D(1.0) + exp(x + x)), D(1.0));
  return xsimd::select(x < D(0.625), small, large) ^ sign;
}

/// 1 / (1 + e^-x).
template <class V>
inline V sigmoid(const V& x) {
  using T = typename V::value_type;
  return V(T(1)) / (V(T(1)) + exp(-x));
}

/// Scalar forms: lane 0 of the baseline batch function, so that a scalar and a vector evaluation
/// of the same input agree bit for bit.
template <class T>
inline T exp_scalar(T x) {
  alignas(64) T out[xsimd::batch<T, ScalarArch>::size];
  exp(xsimd::batch<T, ScalarArch>(x)).store_aligned(out);
  return out[0];
}
template <class T>
inline T log_scalar(T x) {
  alignas(64) T out[xsimd::batch<T, ScalarArch>::size];
  log(xsimd::batch<T, ScalarArch>(x)).store_aligned(out);
  return out[0];
}

}  // namespace sorix::kernels::math
