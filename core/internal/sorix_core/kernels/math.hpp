#pragma once
// sorix's own transcendental functions on xsimd batches, the same bits on every architecture.
//
// exp, log, tanh, sigmoid, sin/cos of 2 pi u, sin/cos/tan of any argument, log1p, expm1, erf.
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

#include "sorix_core/kernels/arch.hpp"

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
  sin_v = xsimd::select(neg_sin, negated(sin_v), sin_v);  // the sign bit: -(+0) is -0 on every path
  cos_v = xsimd::select(neg_cos, negated(cos_v), cos_v);
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

/// sin, cos and tan of a general argument. Cody-Waite reduction by pi/2 in three parts, each step
/// one fmadd: k = round(x * 2/pi); r = x - k*P1 is exact (P1 = pi/2 rounded to the type, the fma
/// keeps k*P1 exact, and |r| < 1 needs no more bits than x has), then r -= k*P2, r -= k*P3 (the
/// rest of pi/2). The Cephes polynomials of sincos_2pi on |r| <= pi/4, the quadrant k mod 4 from
/// the bits of k + 1.5*2^p. Accuracy (tests/core/test_kernels.cpp, against long double): a few ulp
/// for |x| <= 2^20 (float) and 2^30 (double) away from the zeros of large arguments, where the
/// reduced argument's absolute error (about ulp(pi/4)) is all that is left. Beyond that the value
/// is still a pure function of x, the same bits everywhere, but not accurate. +-0 give +-0 for sin
/// and tan; +-inf and NaN give NaN.
namespace detail {
template <class V>
struct Reduced {
  V r;                       // x - k pi/2, |r| <~ pi/4
  xsimd::as_integer_t<V> q;  // k mod 4 in the low bits
};
template <class V>
inline Reduced<V> reduce_half_pi(const V& x) {
  using T = typename V::value_type;
  using I = xsimd::as_integer_t<V>;
  constexpr bool f = std::is_same_v<T, float>;
  const V magic(f ? T(12582912.0) : T(6755399441055744.0));
  const V shifted = fmadd(x, V(f ? T(f32(0x3f22f983u)) : T(0.63661977236758134308)), magic);
  const V k = shifted - magic;
  V r = fmadd(-k, V(f ? T(f32(0x3fc90fdbu)) : T(f64(0x3ff921fb54442d18ull))), x);
  r = fmadd(-k, V(f ? T(f32(0xb33bbd2eu)) : T(f64(0x3c91a62633145c07ull))), r);
  r = fmadd(-k, V(f ? T(f32(0xa6f72cedu)) : T(f64(0xb91f1976b7ed8fbcull))), r);
  return {r, xsimd::bitwise_cast<I>(shifted)};  // magic's low mantissa bits are 0: bits = k mod 2^p
}
template <class V>
inline auto lane_bit(const xsimd::as_integer_t<V>& q, int bit) {
  using I = xsimd::as_integer_t<V>;
  return xsimd::bool_cast((q & I(bit)) != I(0));
}
}  // namespace detail

template <class V>
inline V sin(const V& x) {
  const auto red = detail::reduce_half_pi(x);
  const V z = red.r * red.r;
  const V s = detail::sin_poly(z, red.r), c = detail::cos_poly(z);
  V out = xsimd::select(detail::lane_bit<V>(red.q, 1), c, s);
  out = xsimd::select(detail::lane_bit<V>(red.q, 2), -out, out);
  return xsimd::select(x == V(0), x, out);  // sin(-0) = -0 (the polynomial gives +0)
}

template <class V>
inline V cos(const V& x) {
  using I = xsimd::as_integer_t<V>;
  const auto red = detail::reduce_half_pi(x);
  const V z = red.r * red.r;
  const V s = detail::sin_poly(z, red.r), c = detail::cos_poly(z);
  const V out = xsimd::select(detail::lane_bit<V>(red.q, 1), s, c);
  return xsimd::select(detail::lane_bit<V>(red.q + I(1), 2), -out, out);  // quadrants 1, 2
}

/// tan = sin(r) / cos(r), or -cos(r) / sin(r) in odd quadrants (one division: ~2 ulp).
template <class V>
inline V tan(const V& x) {
  const auto red = detail::reduce_half_pi(x);
  const V z = red.r * red.r;
  const V s = detail::sin_poly(z, red.r), c = detail::cos_poly(z);
  const V out = xsimd::select(detail::lane_bit<V>(red.q, 1), -c / s, s / c);
  return xsimd::select(x == V(0), x, out);
}

/// log(1 + x), accurate for small x: with u = 1 + x rounded, log(u) - ((u - 1) - x) / u corrects
/// for the rounding of u (Goldberg's form); x itself where u == 1 (keeps -0), -inf at -1, +inf
/// for +inf, NaN below -1.
template <class V>
inline V log1p(const V& x) {
  using T = typename V::value_type;
  const V u = V(T(1)) + x;
  const V log_u = log(u);
  const V corrected = log_u - ((u - V(T(1))) - x) / u;
  // u == 0 (x == -1: -inf) and u == +inf: log(u) itself (the correction would be NaN).
  const V out = xsimd::select((u == V(T(0))) | (u == V(std::numeric_limits<T>::infinity())), log_u, corrected);
  return xsimd::select(u == V(T(1)), x, out);
}

/// e^x - 1, accurate for small x (Kahan's form): with u = e^x, (u - 1) * x / log(u); x itself where
/// u == 1 (keeps -0), -1 where u - 1 == -1, +inf where u is +inf.
template <class V>
inline V expm1(const V& x) {
  using T = typename V::value_type;
  const V u = exp(x);
  const V um1 = u - V(T(1));
  V out = um1 * (x / log(u));  // (not (um1 * x) / log(u): that overflows near the top of the range)
  out = xsimd::select(u == V(std::numeric_limits<T>::infinity()), u, out);
  out = xsimd::select(um1 == V(T(-1)), um1, out);
  return xsimd::select(u == V(T(1)), x, out);
}

/// The error function. float32: the polynomials of xsimd's generic erf (Boost.SIMD), evaluated in
/// a fixed order with fmadd and sorix's exp: erf(x) = x P(x^2) near 0, else 1 - e^(-x^2)
/// erfc_scaled(|x|) with x's sign (about 2 ulp). Every branch is computed for every lane (no
/// early exits), so a lane's value never depends on its neighbours. erf(+-0) = +-0,
/// erf(+-inf) = +-1, NaN stays NaN.
namespace detail {
/// erfc(x) e^(x^2) for x >= 2/3 (float32; xsimd's polynomial in x / (1 + x) - 0.4).
template <class A>
inline xsimd::batch<float, A> erfc_scaled(const xsimd::batch<float, A>& x) {
  using F = xsimd::batch<float, A>;
  const F z = x / (F(1.0f) + x) - F(0.4f);
  return horner(z, {f32(0x3f0a0e8bu), f32(0xbf918a62u), f32(0x3e243828u), f32(0x3ec4ca6eu), f32(0x3e1175c7u),
                    f32(0x3e2006f0u), f32(0xbfaea865u), f32(0x4050b063u), f32(0xc0cd1a85u), f32(0x40d67e3bu),
                    f32(0xc0283611u)});
}
}  // namespace detail

template <class A>
inline xsimd::batch<float, A> erf(const xsimd::batch<float, A>& self) {
  using F = xsimd::batch<float, A>;
  const F x = xsimd::abs(self);
  const F small = self * horner(x * x, {f32(0x3f906ebau), f32(0xbec0937eu), f32(0x3de70f22u), f32(0xbcdb61f4u),
                                        f32(0x3ba4468du), f32(0xba1fc83bu)});
  F large = fmadd(-exp(-(x * x)), detail::erfc_scaled(x), F(1.0f));
  large = xsimd::select(x == F(std::numeric_limits<float>::infinity()), F(1.0f), large);
  large = large | (self & F(-0.0f));  // x's sign (large >= 0)
  return xsimd::select(x < F(2.0f / 3.0f), small, large);
}

namespace detail {
/// erfc(x) e^(x^2) for x >= 0.65 (float64): five fitted pieces up to 6, then
/// H(1/x^2) / (x sqrt(pi)) with H the degree-10 fit of the asymptotic factor on 1/x^2 in (0, 1/36]
/// (scripts/fit_erf.py; each within 1.1e-16).
template <class A>
inline xsimd::batch<double, A> erfc_scaled(const xsimd::batch<double, A>& x) {
  using D = xsimd::batch<double, A>;
  const D g1 = horner(x - D(0.975), {f64(0x3fdbcf09ca4bc474ull), f64(0xbfd1fd3d5cf6ae9full), f64(0x3fc489dbec1ce3b3ull),
                                     f64(0xbfb5456c22d2a240ull), f64(0x3fa4566e698270a8ull), f64(0xbf922ba8d0fd1f42ull),
                                     f64(0x3f7e9ca8c6139580ull), f64(0xbf687a39b423e23bull), f64(0x3f52ade6c72fff41ull),
                                     f64(0xbf3b53b296bfb7c4ull), f64(0x3f2337b59c3829dbull), f64(0xbf0a194b5bc60230ull),
                                     f64(0x3ef1ca1e1766d63aull), f64(0xbed69d288f42cb35ull)});
  const D g2 = horner(x - D(1.7), {f64(0x3fd2aa9c889874dcull), f64(0xbfc1802bae082729ull), f64(0x3fae53bb3ef29ca8ull),
                                   f64(0xbf989873bc27a4bbull), f64(0x3f82d77e8ad4ea35ull), f64(0xbf6b74bdff4d9242ull),
                                   f64(0x3f5320be621f3442ull), f64(0xbf399805c68bd500ull), f64(0x3f208044849c0539ull),
                                   f64(0xbf0490c04896daaeull), f64(0x3ee8d5b626a07f7eull), f64(0xbecd18ce97f4f2deull),
                                   f64(0x3eb0990c43ec6509ull), f64(0xbe9347ae16c524e8ull), f64(0x3e74dfe644d7f428ull)});
  const D g3 = horner(x - D(2.55), {f64(0x3fca83e723b6f216ull), f64(0xbfb268d8fe461190ull), f64(0x3f98582d62867408ull),
                                    f64(0xbf7ed391b603b097ull), f64(0x3f62c5352d31a832ull), f64(0xbf460fc61d905912ull),
                                    f64(0x3f291957d3aa3aebull), f64(0xbf0bb51bcacf8030ull), f64(0x3eedbdfe8e5b70c5ull),
                                    f64(0xbecf19b5a9efd288ull), f64(0x3eafb539483b7638ull), f64(0xbe8f9be7dbe54736ull),
                                    f64(0x3e700bdaccb5450bull), f64(0xbe4e9a494c315ab5ull)});
  const D g4 = horner(x - D(3.6), {f64(0x3fc35ca94de65becull), f64(0xbfa41b1144cf7cbbull), f64(0x3f8444cf65ed19f2ull),
                                   f64(0xbf63e179b627234full), f64(0x3f4302420ffc474cull), f64(0xbf21beff137baee1ull),
                                   f64(0x3f0032fe49a1b815ull), f64(0xbedcf4221e8ef899ull), f64(0x3eb95c58a226ef34ull),
                                   f64(0xbe95cb0f13dceb78ull), f64(0x3e725ea11d0d4bf2ull), f64(0xbe4e783685fc8248ull),
                                   f64(0x3e2a27d94e82392bull), f64(0xbe04f6a0afe071d2ull)});
  const D g5 = horner(x - D(5.1), {f64(0x3fbbcdeea600daaeull), f64(0xbf950a319bb73471ull), f64(0x3f6f511feee89781ull),
                                   f64(0xbf46f09226a456a0ull), f64(0x3f208cc6537fb536ull), f64(0xbef788be884c38faull),
                                   f64(0x3ed08000af0100b7ull), f64(0xbea6d3923507044aull), f64(0x3e7f2b96ccebfb8full),
                                   f64(0xbe550462d884295aull), f64(0x3e2bffa8d43a7308ull), f64(0xbe026227dde26e2dull),
                                   f64(0x3dd7ee861a56dd7bull), f64(0xbdb0abff8c0639b8ull), f64(0x3d8533117a546350ull)});
  D g = xsimd::select(x < D(4.2), g4, g5);
  g = xsimd::select(x < D(3.0), g3, g);
  g = xsimd::select(x < D(2.1), g2, g);
  g = xsimd::select(x < D(1.3), g1, g);
  const D rx = D(1.0) / x;
  const D g6 = horner(rx * rx, {f64(0x3ff0000000000000ull), f64(0xbfdffffffffffc9eull), f64(0x3fe7fffffff66ecdull),
                                f64(0xbffdfffff5638f9bull), f64(0x401a3ffcf699d7cdull), f64(0xc03d877d20f596beull),
                                f64(0x4064468c8ae84f35ull), f64(0xc090411825ef1c1eull), f64(0x40bc1238680c4d0bull),
                                f64(0xc0e5a44c799cdd4dull), f64(0x4103ebf7355d7d63ull)}) *
                (rx * D(0.56418958354775628695));  // 1 / sqrt(pi)
  g = xsimd::select(x < D(6.0), g, g6);
  return g;
}
}  // namespace detail

/// float64 erf: xsimd's double kernel is off by ~25 ulp (its 2/sqrt(pi) is 12 ulp low) and ~70
/// ulp near 2.2, so its own: below 0.65, x times the Taylor series of erf(x)/x in x^2 (16 terms;
/// the first one left out is below 1e-19); above, 1 - e^(-x^2) g(x) with g = erfc(x) e^(x^2) as
/// five polynomials in x - centre (Chebyshev interpolants rounded to double, each within 1.1e-16
/// of g: scripts/fit_erf.py), and 1 from 6 on (erfc(6) < half an ulp of 1). About 2 ulp.
template <class A>
inline xsimd::batch<double, A> erf(const xsimd::batch<double, A>& self) {
  using D = xsimd::batch<double, A>;
  const D x = xsimd::abs(self);
  const D xx = x * x;
  const D small = self * horner(xx, {f64(0x3ff20dd750429b6dull), f64(0xbfd812746b0379e7ull), f64(0x3fbce2f21a042be2ull),
                                     f64(0xbf9b82ce31288b51ull), f64(0x3f7565bcd0e6a53full), f64(0xbf4c02db40040b86ull),
                                     f64(0x3f1f9a326f9b89b7ull), f64(0xbeef4d25c3e0c2ebull), f64(0x3ebb9e6c9dc651a3ull),
                                     f64(0xbe85f742ec43e71aull), f64(0x3e4fcc5720624c1cull), f64(0xbe151d7181c5d36dull),
                                     f64(0x3dd9e6ad5e55a730ull), f64(0xbd9d8453cb0c46eaull), f64(0x3d5f683ae4a97007ull),
                                     f64(0xbd1f56f071a885cfull)});
  D large = fmadd(-exp(-xx), detail::erfc_scaled(x), D(1.0));
  large = xsimd::select(x >= D(6.0), D(1.0), large);  // (+inf too; NaN compares false and stays NaN)
  large = large | (self & D(-0.0));
  return xsimd::select(x < D(0.65), small, large);
}

/// erfc(x) = 1 - erf(x) without the cancellation for large x: e^(-x^2) erfc_scaled(x) from 2/3
/// (float32) or 0.65 (float64) on, 1 - erf(x) below (at most 1.5 there: no cancellation).
/// erfc(+inf) = 0, erfc(-inf) = 2, NaN stays NaN. (GELU's Phi(x) = erfc(-x / sqrt 2) / 2 keeps
/// its relative accuracy in the left tail this way.)
template <class V>
inline V erfc(const V& x) {
  using T = typename V::value_type;
  const V lim(std::is_same_v<T, float> ? T(2.0 / 3.0) : T(0.65));
  // e^(-x^2) with x^2 = hi + lo split exactly by an fma: e^(-hi) (1 - lo). Rounding x^2 would
  // cost up to x^2 ulp (hundreds in the far tail).
  const V hi = x * x;
  const V lo = fmadd(x, x, -hi);
  const V e = exp(-hi);
  V tail = fmadd(-lo, e, e) * detail::erfc_scaled(x);
  tail = xsimd::select(x == V(std::numeric_limits<T>::infinity()), V(T(0)), tail);
  return xsimd::select(x < lim, V(T(1)) - erf(x), tail);
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
