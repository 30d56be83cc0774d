#pragma once
// The elementwise ops' arithmetic, one functor each with a templated operator() for xsimd batches
// (and scalars, where the baseline code needs one). Each names its kind in the dispatch table
// (op_kinds.hpp); the kernel layer instantiates them per CPU capability (elementwise_kernels.hpp),
// and the ops in autograd/ and nn/ pass them to kernels::unary_map / binary_map, which run the
// active capability's instantiation. Every op is exact IEEE arithmetic, a comparison, or sorix's
// own exp/log/tanh (math.hpp), so every capability gives the same bits.
//
// Heavy (xsimd): include only from .cpp files.
#include <type_traits>

#include "core/src/kernels/math.hpp"
#include "core/src/kernels/op_kinds.hpp"

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

// ---- unary -------------------------------------------------------------------------------------
#define SORIX_UNARY(Name, Kind, expr)                                 \
  struct Name {                                                       \
    static constexpr Unary kind = Unary::Kind;                        \
    OpParams params() const { return {}; }                            \
    template <class V>                                                \
    V operator()(const V& x) const { return expr; }                   \
  };
SORIX_UNARY(NegOp, Neg, -x)
SORIX_UNARY(ExpOp, Exp, exp_of(x))
SORIX_UNARY(LogOp, Log, log_of(x))
SORIX_UNARY(SqrtOp, Sqrt, xsimd::sqrt(x))
SORIX_UNARY(AbsOp, Abs, xsimd::abs(x))
SORIX_UNARY(TanhOp, Tanh, math::tanh(x))
SORIX_UNARY(SigmoidOp, Sigmoid, V(1) / (V(1) + exp_of(-x)))
// Select, not max: NaN stays NaN and -0 stays -0 (as PyTorch); xsimd::max(NaN, 0) gives 0.
SORIX_UNARY(ReluOp, Relu, choose(x < V(0), V(0), x))
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
