// Elementwise math ops: sin cos tan sign round floor ceil trunc log1p expm1 square rsqrt reciprocal
// erf clamp_min clamp_max. The forwards are kernel-layer functors (elementwise_ops.hpp, math.hpp:
// sorix's own polynomials, the same bits on every capability); the gradients are composed from
// differentiable ops, so they can be differentiated again (create_graph).
#include <cmath>
#include <limits>
#include <optional>
#include <string>

#include "sorix_autograd/ops_internal.hpp"
#include "unary_map.hpp"
#include "sorix_core/kernels/simd.hpp"

namespace sorix {
namespace {

using autograd::record;
using autograd::SavedTensor;
namespace kops = kernels::ops;

using detail::map_floating;
using detail::map_integer;
using detail::map_promoted;

// The integer forms of the ops that keep an integer dtype (PyTorch's): sign as -1/0/1, the
// roundings as the value itself, square wrapping in two's complement (through the unsigned type:
// no signed-overflow UB).
struct SignInt {
  template <class T> T operator()(T x) const { return static_cast<T>((x > T(0)) - (x < T(0))); }
};
struct SameInt {
  template <class T> T operator()(T x) const { return x; }
};
struct SquareInt {
  template <class T> T operator()(T x) const {
    using U = std::make_unsigned_t<T>;
    return static_cast<T>(static_cast<U>(static_cast<U>(x) * static_cast<U>(x)));
  }
};

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
/// is inf or NaN. Integer tensors keep their dtype (IntOp); bool throws (as PyTorch) unless
/// bool_ok (sign: the value itself).
template <class Op, class IntOp>
Tensor step_op(const Tensor& x, const char* node, const char* op, bool bool_ok = false) {
  detail::check_defined(x, op);
  if (x.dtype() == Dtype::Bool) {
    check(bool_ok, op, "not implemented for bool tensors (as PyTorch)");
    return x.clone();
  }
  if (!is_floating(x.dtype())) return map_integer<IntOp>(x, op);
  return with_grad(map_floating<Op>(x, op), x, node, op, [](const Tensor& g, const Tensor&) { return zeros_like(g); });
}

/// clamp_min / clamp_max: an integer result dtype runs exactly (clamp_integer); a float one on
/// the float kernel with the bound as a double (NaN refused), gradient where `keep` holds.
template <class Keep>
Tensor one_bound(const Tensor& x, std::optional<Scalar> min, std::optional<Scalar> max, const char* node, const char* op,
                 Keep keep) {
  const Scalar& bound = min ? *min : *max;
  check(!std::isnan(bound.to_double()), op, op == std::string("clamp_min") ? "min" : "max", " must not be NaN, got ",
        bound.to_double());
  detail::check_defined(x, op);
  const Dtype rt = detail::clamp_result_type(x, min, max);
  if (!is_floating(rt)) return detail::clamp_integer(x, rt, min, max, op);
  const double b = bound.to_double();
  const kops::ClampOp clamp_op{min ? b : -std::numeric_limits<double>::infinity(),
                               max ? b : std::numeric_limits<double>::infinity()};
  return with_grad(map_floating<kops::ClampOp>(x.dtype() == rt ? x : x.to(rt), op, clamp_op), x, node, op,
                   [keep, b](const Tensor& g, const Tensor& xv) { return where(keep(xv, b), g, 0.0); });
}

}  // namespace

Tensor sin(const Tensor& x) {
  return with_grad(map_promoted<kops::SinOp>(x, "sin"), x, "SinBackward", "sin",
                   [](const Tensor& g, const Tensor& xv) { return g * cos(xv); });
}
Tensor cos(const Tensor& x) {
  return with_grad(map_promoted<kops::CosOp>(x, "cos"), x, "CosBackward", "cos",
                   [](const Tensor& g, const Tensor& xv) { return -(g * sin(xv)); });
}
Tensor tan(const Tensor& x) {
  return with_grad(map_promoted<kops::TanOp>(x, "tan"), x, "TanBackward", "tan", [](const Tensor& g, const Tensor& xv) {
    const Tensor y = tan(xv);
    return g * (y * y + 1.0);
  });
}
Tensor sign(const Tensor& x) { return step_op<kops::SignOp, SignInt>(x, "SignBackward", "sign", /*bool_ok=*/true); }
Tensor round(const Tensor& x) { return step_op<kops::RoundOp, SameInt>(x, "RoundBackward", "round"); }
Tensor floor(const Tensor& x) { return step_op<kops::FloorOp, SameInt>(x, "FloorBackward", "floor"); }
Tensor ceil(const Tensor& x) { return step_op<kops::CeilOp, SameInt>(x, "CeilBackward", "ceil"); }
Tensor trunc(const Tensor& x) { return step_op<kops::TruncOp, SameInt>(x, "TruncBackward", "trunc"); }

Tensor log1p(const Tensor& x) {
  return with_grad(map_promoted<kops::Log1pOp>(x, "log1p"), x, "Log1pBackward", "log1p",
                   [](const Tensor& g, const Tensor& xv) { return g / (xv + 1.0); });
}
Tensor expm1(const Tensor& x) {
  return with_grad(map_promoted<kops::Expm1Op>(x, "expm1"), x, "Expm1Backward", "expm1",
                   [](const Tensor& g, const Tensor& xv) { return g * exp(xv); });
}
Tensor square(const Tensor& x) {
  detail::check_defined(x, "square");
  if (x.dtype() == Dtype::Bool) return map_integer<SquareInt>(x.to(Dtype::Int64), "square");  // as PyTorch: int64
  if (!is_floating(x.dtype())) return map_integer<SquareInt>(x, "square");
  return with_grad(map_floating<kops::SquareOp>(x, "square"), x, "SquareBackward", "square",
                   [](const Tensor& g, const Tensor& xv) { return g * (xv * 2.0); });
}
Tensor rsqrt(const Tensor& x) {
  // d/dx x^(-1/2) = -1/2 y^3.
  return with_grad(map_promoted<kops::RsqrtOp>(x, "rsqrt"), x, "RsqrtBackward", "rsqrt",
                   [](const Tensor& g, const Tensor& xv) {
                     const Tensor y = rsqrt(xv);
                     return g * (y * y * y * -0.5);
                   });
}
Tensor reciprocal(const Tensor& x) {
  return with_grad(map_promoted<kops::ReciprocalOp>(x, "reciprocal"), x, "ReciprocalBackward", "reciprocal",
                   [](const Tensor& g, const Tensor& xv) {
                     const Tensor y = reciprocal(xv);
                     return -(g * (y * y));
                   });
}
Tensor erf(const Tensor& x) {
  // d/dx erf = 2 / sqrt(pi) e^(-x^2).
  return with_grad(map_promoted<kops::ErfOp>(x, "erf"), x, "ErfBackward", "erf", [](const Tensor& g, const Tensor& xv) {
    return g * (exp(-(xv * xv)) * 1.12837916709551257390);
  });
}

Tensor clamp_min(const Tensor& x, Scalar min) {
  return one_bound(x, min, std::nullopt, "ClampMinBackward", "clamp_min",
                   [](const Tensor& xv, double b) { return xv.ge(b); });
}
Tensor clamp_max(const Tensor& x, Scalar max) {
  return one_bound(x, std::nullopt, max, "ClampMaxBackward", "clamp_max",
                   [](const Tensor& xv, double b) { return xv.le(b); });
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
Tensor Tensor::clamp_min(Scalar min) const { return sorix::clamp_min(*this, min); }
Tensor Tensor::clamp_max(Scalar max) const { return sorix::clamp_max(*this, max); }

}  // namespace sorix
