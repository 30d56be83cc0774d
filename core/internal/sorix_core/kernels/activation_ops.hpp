#pragma once
// The activations' arithmetic: each forward functor beside its gradient functor (a = g, b = x:
// g * f'(x)), run per CPU capability like every op of elementwise_ops.hpp. The formulas are
// PyTorch's CPU kernels' (so the values agree to rounding), written with fmadd where a multiply
// feeds an add, and sorix's own exp/tanh/erf/log1p/expm1 (math.hpp): the same bits everywhere.
//
// Included by elementwise_ops.hpp (heavy: xsimd).
#include "sorix_core/kernels/elementwise_ops.hpp"

namespace sorix::kernels::ops {

inline constexpr double kSqrt1_2 = 0.70710678118654752440;        // 1 / sqrt(2)
inline constexpr double kInvSqrt2Pi = 0.39894228040143267794;     // 1 / sqrt(2 pi)
inline constexpr double kSqrt2OverPi = 0.79788456080286535588;    // sqrt(2 / pi)
inline constexpr double kGeluKappa = 0.044715;

template <class V>
inline V cst(double v) { return V(static_cast<scalar_t<V>>(v)); }

/// GELU, exact: x Phi(x) = h erfc(-x / sqrt 2), h = x / 2. erfc, not 1 + erf: in the left tail
/// 1 + erf(x / sqrt 2) cancels (at x = -4 it keeps 10 of float32's 24 bits); erfc keeps them.
struct GeluOp {
  static constexpr Unary kind = Unary::Gelu;
  OpParams params() const { return {}; }
  template <class V>
  V operator()(const V& x) const {
    return (x * cst<V>(0.5)) * math::erfc(x * cst<V>(-kSqrt1_2));
  }
};
/// g * (Phi(x) + x phi(x)), Phi = erfc(-x / sqrt 2) / 2, phi = e^(-x^2/2) / sqrt(2 pi).
struct GeluGradOp {
  static constexpr Binary kind = Binary::GeluGrad;
  OpParams params() const { return {}; }
  template <class V>
  V operator()(const V& g, const V& x) const {
    const V cdf = cst<V>(0.5) * math::erfc(x * cst<V>(-kSqrt1_2));
    const V pdf = math::exp(x * x * cst<V>(-0.5)) * cst<V>(kInvSqrt2Pi);
    return g * fmadd(x, pdf, cdf);
  }
};

/// GELU, tanh approximation: h + h * tanh(u), h = x / 2, u = sqrt(2/pi) (x + 0.044715 x^3).
template <class V>
inline V gelu_inner(const V& x) {
  return cst<V>(kSqrt2OverPi) * fmadd(cst<V>(kGeluKappa) * x * x, x, x);
}
struct GeluTanhOp {
  static constexpr Unary kind = Unary::GeluTanh;
  OpParams params() const { return {}; }
  template <class V>
  V operator()(const V& x) const {
    const V h = x * cst<V>(0.5);
    return fmadd(h, math::tanh(gelu_inner(x)), h);
  }
};
/// g * ((1 + t) / 2 + h (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2)), t = tanh(u).
struct GeluTanhGradOp {
  static constexpr Binary kind = Binary::GeluTanhGrad;
  OpParams params() const { return {}; }
  template <class V>
  V operator()(const V& g, const V& x) const {
    const V t = math::tanh(gelu_inner(x));
    const V h = x * cst<V>(0.5);
    const V left = fmadd(cst<V>(0.5), t, cst<V>(0.5));
    const V slope = fmadd(cst<V>(3.0 * kGeluKappa) * x, x, cst<V>(1.0));
    const V right = h * fmadd(-t, t, cst<V>(1.0)) * cst<V>(kSqrt2OverPi);
    return g * fmadd(right, slope, left);
  }
};

/// SiLU: x / (1 + e^-x); gradient g * s (1 + x (1 - s)), s = sigmoid(x).
struct SiluOp {
  static constexpr Unary kind = Unary::Silu;
  OpParams params() const { return {}; }
  template <class V>
  V operator()(const V& x) const { return x / (cst<V>(1.0) + math::exp(-x)); }
};
struct SiluGradOp {
  static constexpr Binary kind = Binary::SiluGrad;
  OpParams params() const { return {}; }
  template <class V>
  V operator()(const V& g, const V& x) const {
    const V s = cst<V>(1.0) / (cst<V>(1.0) + math::exp(-x));
    return g * (s * fmadd(x, cst<V>(1.0) - s, cst<V>(1.0)));
  }
};

/// ELU: x > 0 ? x : alpha * expm1(x) (NaN stays NaN); gradient g for x > 0 (and NaN, as PyTorch),
/// g * alpha * e^x for x <= 0 (so alpha at 0).
struct EluOp {
  static constexpr Unary kind = Unary::Elu;
  double alpha;
  OpParams params() const { return {alpha, 0}; }
  template <class V>
  V operator()(const V& x) const { return choose(x <= V(0), cst<V>(alpha) * math::expm1(x), x); }
};
struct EluGradOp {
  static constexpr Binary kind = Binary::EluGrad;
  double alpha;
  OpParams params() const { return {alpha, 0}; }
  template <class V>
  V operator()(const V& g, const V& x) const { return choose(x <= V(0), g * (cst<V>(alpha) * math::exp(x)), g); }
};

/// Softplus: x where beta x > threshold, else log1p(e^(beta x)) / beta; gradient g there, else
/// g z / (z + 1), z = e^(beta x).
struct SoftplusOp {
  static constexpr Unary kind = Unary::Softplus;
  double beta, threshold;
  OpParams params() const { return {beta, threshold}; }
  template <class V>
  V operator()(const V& x) const {
    const V bx = x * cst<V>(beta);
    return choose(bx > cst<V>(threshold), x, math::log1p(math::exp(bx)) / cst<V>(beta));
  }
};
struct SoftplusGradOp {
  static constexpr Binary kind = Binary::SoftplusGrad;
  double beta, threshold;
  OpParams params() const { return {beta, threshold}; }
  template <class V>
  V operator()(const V& g, const V& x) const {
    const V bx = x * cst<V>(beta);
    const V z = math::exp(bx);
    return choose(bx > cst<V>(threshold), g, (g * z) / (z + cst<V>(1.0)));
  }
};

/// Hardtanh's forward is ClampOp{min_val, max_val}. Gradient g strictly inside (min_val, max_val),
/// 0 at and beyond the bounds (as PyTorch's hardtanh_backward); NaN x passes g.
struct HardtanhGradOp {
  static constexpr Binary kind = Binary::HardtanhGrad;
  double lo, hi;
  OpParams params() const { return {lo, hi}; }
  template <class V>
  V operator()(const V& g, const V& x) const {
    return choose((x <= cst<V>(lo)) | (x >= cst<V>(hi)), V(0), g);
  }
};

}  // namespace sorix::kernels::ops
