#pragma once
// The elementwise ops' arithmetic, one functor each with a templated operator() for xsimd batches
// (and scalars, where the baseline code needs one). Each names its kind in the dispatch table
// (op_kinds.hpp); the kernel layer instantiates them per CPU capability (elementwise_kernels.hpp),
// and the ops in autograd/ and nn/ pass them to kernels::unary_map / binary_map, which run the
// active capability's instantiation. Every op is exact IEEE arithmetic, a comparison, fmadd, or
// sorix's own exp/log/tanh/sin/cos/tan/log1p/expm1/erf/erfc (math.hpp), so every capability gives
// the same bits. The new math ops (sin ... erf) and the activations (activation_ops.hpp) have only
// the batch form: the table runs them for float and double.
//
// Heavy (xsimd): include only from .cpp files.
#include <type_traits>

#include "sorix_core/kernels/math.hpp"
#include "sorix_core/kernels/op_kinds.hpp"

namespace sorix::kernels::ops {

template <class V>
using scalar_t = std::conditional_t<std::is_arithmetic_v<V>, V, typename V::value_type>;

/// 1 where cond holds, else 0; cond ? a : b (scalar and batch forms).
template <class T>
inline T one_if(bool cond, T) { return cond ? T(1) : T(0); }
template <class T, class A>
inline xsimd::batch<T, A> one_if(const xsimd::batch_bool<T, A>& cond, const xsimd::batch<T, A>&) {
  return xsimd::select(cond, xsimd::batch<T, A>(T(1)), xsimd::batch<T, A>(T(0)));
}
template <class T>
inline T choose(bool cond, T a, T b) { return cond ? a : b; }
template <class T, class A>
inline xsimd::batch<T, A> choose(const xsimd::batch_bool<T, A>& cond, const xsimd::batch<T, A>& a,
                                 const xsimd::batch<T, A>& b) {
  return xsimd::select(cond, a, b);
}

template <class V>
inline V exp_of(const V& x) {
  if constexpr (std::is_arithmetic_v<V>) return math::exp_scalar(x);
  else return math::exp(x);
}
template <class V>
inline V log_of(const V& x) {
  if constexpr (std::is_arithmetic_v<V>) return math::log_scalar(x);
  else return math::log(x);
}

/// Round half to even, exact: |x| + 2^p - 2^p rounds in the FPU's default mode (ties to even) for
/// |x| < 2^p (p = 23 float, 52 double; above it every value is an integer). The sign is copied
/// back from x, so -0.3 rounds to -0 (as PyTorch). NaN and +-inf pass through.
template <class V>
inline V copy_sign_of(const V& magnitude, const V& x) {
  using T = scalar_t<V>;
  return xsimd::abs(magnitude) | (x & V(T(-0.0)));
}
template <class V>
inline V round_even(const V& x) {
  using T = scalar_t<V>;
  const V ax = xsimd::abs(x);
  const V two_p(std::is_same_v<T, float> ? T(8388608.0) : T(4503599627370496.0));
  return copy_sign_of(choose(ax < two_p, (ax + two_p) - two_p, ax), x);
}
/// floor, ceil, trunc from round_even by one exact +-1 step; the sign of a zero result is x's
/// (floor(-0) = -0, ceil(-0.5) = -0, as PyTorch).
template <class V>
inline V floor_of(const V& x) {
  const V r = round_even(x);
  return copy_sign_of(choose(r > x, r - V(1), r), x);
}
template <class V>
inline V ceil_of(const V& x) {
  const V r = round_even(x);
  return copy_sign_of(choose(r < x, r + V(1), r), x);
}
template <class V>
inline V trunc_of(const V& x) {
  return copy_sign_of(floor_of(xsimd::abs(x)), x);
}

/// -x with the sign bit flipped on every path (arch.hpp's negated for batches).
template <class V>
inline V negation_of(const V& x) {
  if constexpr (std::is_arithmetic_v<V>) return -x;
  else return negated(x);
}

// ---- unary -------------------------------------------------------------------------------------
#define SORIX_UNARY(Name, Kind, expr)                                 \
  struct Name {                                                       \
    static constexpr Unary kind = Unary::Kind;                        \
    OpParams params() const { return {}; }                            \
    template <class V>                                                \
    V operator()(const V& x) const { return expr; }                   \
  };
SORIX_UNARY(NegOp, Neg, negation_of(x))
SORIX_UNARY(ExpOp, Exp, exp_of(x))
SORIX_UNARY(LogOp, Log, log_of(x))
SORIX_UNARY(SqrtOp, Sqrt, xsimd::sqrt(x))
SORIX_UNARY(AbsOp, Abs, xsimd::abs(x))
SORIX_UNARY(TanhOp, Tanh, math::tanh(x))
SORIX_UNARY(SigmoidOp, Sigmoid, V(1) / (V(1) + exp_of(-x)))
// Select, not max: NaN stays NaN and -0 stays -0 (as PyTorch); xsimd::max(NaN, 0) gives 0.
SORIX_UNARY(ReluOp, Relu, choose(x < V(0), V(0), x))
SORIX_UNARY(SinOp, Sin, math::sin(x))
SORIX_UNARY(CosOp, Cos, math::cos(x))
SORIX_UNARY(TanOp, Tan, math::tan(x))
// (x > 0) - (x < 0): +0 at +-0 and at NaN (as PyTorch 1.13).
SORIX_UNARY(SignOp, Sign, one_if(x > V(0), x) - one_if(x < V(0), x))
SORIX_UNARY(RoundOp, Round, round_even(x))
SORIX_UNARY(FloorOp, Floor, floor_of(x))
SORIX_UNARY(CeilOp, Ceil, ceil_of(x))
SORIX_UNARY(TruncOp, Trunc, trunc_of(x))
SORIX_UNARY(Log1pOp, Log1p, math::log1p(x))
SORIX_UNARY(Expm1Op, Expm1, math::expm1(x))
SORIX_UNARY(SquareOp, Square, x * x)
// 1 / sqrt(x), two roundings (as PyTorch's CPU kernel; no rsqrt estimate instruction).
SORIX_UNARY(RsqrtOp, Rsqrt, V(1) / xsimd::sqrt(x))
SORIX_UNARY(ReciprocalOp, Reciprocal, V(1) / x)
SORIX_UNARY(ErfOp, Erf, math::erf(x))
#undef SORIX_UNARY

struct LeakyReluOp {
  static constexpr Unary kind = Unary::LeakyRelu;
  double slope;
  OpParams params() const { return {slope, 0}; }
  template <class V>
  V operator()(const V& x) const {
    return choose(x > V(0), x, x * V(static_cast<scalar_t<V>>(slope)));
  }
};
struct ClampOp {
  static constexpr Unary kind = Unary::Clamp;
  double lo, hi;  // +-inf when absent
  OpParams params() const { return {lo, hi}; }
  template <class V>
  V operator()(const V& x) const {
    using T = scalar_t<V>;
    // NaN stays NaN (as PyTorch): select on the comparisons instead of min/max.
    V r = choose(x < V(static_cast<T>(lo)), V(static_cast<T>(lo)), x);
    return choose(r > V(static_cast<T>(hi)), V(static_cast<T>(hi)), r);
  }
};
struct ExpShift {  // exp(x - m)
  static constexpr Unary kind = Unary::ExpShift;
  double m;
  OpParams params() const { return {m, 0}; }
  template <class V> V operator()(const V& x) const { return exp_of(x - V(static_cast<scalar_t<V>>(m))); }
};
struct DivBy {  // x / s
  static constexpr Unary kind = Unary::DivBy;
  double s;
  OpParams params() const { return {s, 0}; }
  template <class V> V operator()(const V& x) const { return x / V(static_cast<scalar_t<V>>(s)); }
};
struct LogShift {  // (x - m) - log_s
  static constexpr Unary kind = Unary::LogShift;
  double m, log_s;
  OpParams params() const { return {m, log_s}; }
  template <class V>
  V operator()(const V& x) const {
    using T = scalar_t<V>;
    return (x - V(static_cast<T>(m))) - V(static_cast<T>(log_s));
  }
};

// ---- binary ------------------------------------------------------------------------------------
#define SORIX_BINARY(Name, Kind, expr)                                \
  struct Name {                                                       \
    static constexpr Binary kind = Binary::Kind;                      \
    OpParams params() const { return {}; }                            \
    template <class V>                                                \
    V operator()(const V& a, const V& b) const { return expr; }       \
  };
SORIX_BINARY(AddOp, Add, a + b)
SORIX_BINARY(SubOp, Sub, a - b)
SORIX_BINARY(MulOp, Mul, a * b)
SORIX_BINARY(DivOp, Div, a / b)
SORIX_BINARY(GtOp, Gt, one_if(a > b, a))
SORIX_BINARY(LtOp, Lt, one_if(a < b, a))
SORIX_BINARY(GeOp, Ge, one_if(a >= b, a))
SORIX_BINARY(LeOp, Le, one_if(a <= b, a))
SORIX_BINARY(EqOp, Eq, one_if(a == b, a))
// Not one_if(a != b): xsimd's != is an ordered compare, false for NaN != NaN (IEEE says true).
SORIX_BINARY(NeOp, Ne, choose(a == b, V(0), V(1)))
SORIX_BINARY(CopyOp, Copy, ((void)b, a))
SORIX_BINARY(MaxOp, Max, xsimd::max(a, b))
SORIX_BINARY(ExpDiff, ExpDiff, exp_of(a - b))
// relu's gradient: g * (x > 0 ? 1 : 0), the product kept (not a select) so that it gives exactly
// what the composite g * x.gt(0) gives (-0 for a negative g, NaN for a NaN g where x <= 0).
SORIX_BINARY(ReluGradOp, ReluGrad, a * choose(b > V(0), V(1), V(0)))
#undef SORIX_BINARY

struct SoftmaxGrad {  // y * (g - dot), a = y, b = g
  static constexpr Binary kind = Binary::SoftmaxGrad;
  double dot;
  OpParams params() const { return {dot, 0}; }
  template <class V> V operator()(const V& y, const V& g) const { return y * (g - V(static_cast<scalar_t<V>>(dot))); }
};
struct LogSoftmaxGrad {  // g - exp(y) * s, a = g, b = y
  static constexpr Binary kind = Binary::LogSoftmaxGrad;
  double s;
  OpParams params() const { return {s, 0}; }
  template <class V>
  V operator()(const V& g, const V& y) const { return g - exp_of(y) * V(static_cast<scalar_t<V>>(s)); }
};

}  // namespace sorix::kernels::ops

#include "sorix_core/kernels/activation_ops.hpp"
