// Elementwise math ops: sin cos tan sign round floor ceil trunc log1p expm1 square rsqrt reciprocal
// erf clamp_min clamp_max. The forwards are kernel-layer functors (elementwise_ops.hpp, math.hpp:
// sorix's own polynomials, the same bits on every capability); the gradients are composed from
// differentiable ops, so they can be differentiated again (create_graph).
#include <cmath>
#include <limits>

#include "sorix_autograd/ops_internal.hpp"
#include "unary_map.hpp"
#include "sorix_core/kernels/simd.hpp"

namespace sorix {
namespace {

using autograd::record;
using autograd::SavedTensor;
namespace kops = kernels::ops;

using detail::map_floating;

/// Records `grad(g, x)` as x's gradient when x requires one.
template <class Grad>
Tensor with_grad(Tensor out, const Tensor& x, const char* node, const char* op, Grad grad) {
  if (autograd::needs_grad({&x})) {
    record(out, node, {x}, [in = SavedTensor(x), op, grad](const Tensor& g) {
      return std::vector<Tensor>{grad(g, in.unpack(op))};
    });
  }
  return out;
}

/// Piecewise-constant ops: gradient zero everywhere, also at the jumps (as PyTorch), even where g
/// is inf or NaN.
template <class Op>
Tensor step_op(const Tensor& x, const char* node, const char* op) {
  return with_grad(map_floating<Op>(x, op), x, node, op, [](const Tensor& g, const Tensor&) { return zeros_like(g); });
}

}  // namespace

Tensor sin(const Tensor& x) {
  return with_grad(map_floating<kops::SinOp>(x, "sin"), x, "SinBackward", "sin",
                   [](const Tensor& g, const Tensor& xv) { return g * cos(xv); });
}
Tensor cos(const Tensor& x) {
  return with_grad(map_floating<kops::CosOp>(x, "cos"), x, "CosBackward", "cos",
                   [](const Tensor& g, const Tensor& xv) { return -(g * sin(xv)); });
}
Tensor tan(const Tensor& x) {
  return with_grad(map_floating<kops::TanOp>(x, "tan"), x, "TanBackward", "tan", [](const Tensor& g, const Tensor& xv) {
    const Tensor y = tan(xv);
    return g * (y * y + 1.0);
  });
}
Tensor sign(const Tensor& x) { return step_op<kops::SignOp>(x, "SignBackward", "sign"); }
Tensor round(const Tensor& x) { return step_op<kops::RoundOp>(x, "RoundBackward", "round"); }
Tensor floor(const Tensor& x) { return step_op<kops::FloorOp>(x, "FloorBackward", "floor"); }
Tensor ceil(const Tensor& x) { return step_op<kops::CeilOp>(x, "CeilBackward", "ceil"); }
Tensor trunc(const Tensor& x) { return step_op<kops::TruncOp>(x, "TruncBackward", "trunc"); }

Tensor log1p(const Tensor& x) {
  return with_grad(map_floating<kops::Log1pOp>(x, "log1p"), x, "Log1pBackward", "log1p",
                   [](const Tensor& g, const Tensor& xv) { return g / (xv + 1.0); });
}
Tensor expm1(const Tensor& x) {
  return with_grad(map_floating<kops::Expm1Op>(x, "expm1"), x, "Expm1Backward", "expm1",
                   [](const Tensor& g, const Tensor& xv) { return g * exp(xv); });
}
Tensor square(const Tensor& x) {
  return with_grad(map_floating<kops::SquareOp>(x, "square"), x, "SquareBackward", "square",
                   [](const Tensor& g, const Tensor& xv) { return g * (xv * 2.0); });
}
Tensor rsqrt(const Tensor& x) {
  // d/dx x^(-1/2) = -1/2 y^3.
  return with_grad(map_floating<kops::RsqrtOp>(x, "rsqrt"), x, "RsqrtBackward", "rsqrt",
                   [](const Tensor& g, const Tensor& xv) {
                     const Tensor y = rsqrt(xv);
                     return g * (y * y * y * -0.5);
                   });
}
Tensor reciprocal(const Tensor& x) {
  return with_grad(map_floating<kops::ReciprocalOp>(x, "reciprocal"), x, "ReciprocalBackward", "reciprocal",
                   [](const Tensor& g, const Tensor& xv) {
                     const Tensor y = reciprocal(xv);
                     return -(g * (y * y));
                   });
}
Tensor erf(const Tensor& x) {
  // d/dx erf = 2 / sqrt(pi) e^(-x^2).
  return with_grad(map_floating<kops::ErfOp>(x, "erf"), x, "ErfBackward", "erf", [](const Tensor& g, const Tensor& xv) {
    return g * (exp(-(xv * xv)) * 1.12837916709551257390);
  });
}

Tensor clamp_min(const Tensor& x, double min) {
  check(!std::isnan(min), "clamp_min", "min must not be NaN, got ", min);
  return with_grad(map_floating<kops::ClampOp>(x, "clamp_min",
                                               kops::ClampOp{min, std::numeric_limits<double>::infinity()}),
                   x, "ClampMinBackward", "clamp_min",
                   [min](const Tensor& g, const Tensor& xv) { return where(xv.ge(min), g, 0.0); });
}
Tensor clamp_max(const Tensor& x, double max) {
  check(!std::isnan(max), "clamp_max", "max must not be NaN, got ", max);
  return with_grad(map_floating<kops::ClampOp>(x, "clamp_max",
                                               kops::ClampOp{-std::numeric_limits<double>::infinity(), max}),
                   x, "ClampMaxBackward", "clamp_max",
                   [max](const Tensor& g, const Tensor& xv) { return where(xv.le(max), g, 0.0); });
}

Tensor Tensor::sin() const { return sorix::sin(*this); }
Tensor Tensor::cos() const { return sorix::cos(*this); }
Tensor Tensor::tan() const { return sorix::tan(*this); }
Tensor Tensor::sign() const { return sorix::sign(*this); }
Tensor Tensor::round() const { return sorix::round(*this); }
Tensor Tensor::floor() const { return sorix::floor(*this); }
Tensor Tensor::ceil() const { return sorix::ceil(*this); }
Tensor Tensor::trunc() const { return sorix::trunc(*this); }
Tensor Tensor::log1p() const { return sorix::log1p(*this); }
Tensor Tensor::expm1() const { return sorix::expm1(*this); }
Tensor Tensor::square() const { return sorix::square(*this); }
Tensor Tensor::rsqrt() const { return sorix::rsqrt(*this); }
Tensor Tensor::reciprocal() const { return sorix::reciprocal(*this); }
Tensor Tensor::erf() const { return sorix::erf(*this); }
Tensor Tensor::clamp_min(double min) const { return sorix::clamp_min(*this, min); }
Tensor Tensor::clamp_max(double max) const { return sorix::clamp_max(*this, max); }

}  // namespace sorix
