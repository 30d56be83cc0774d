// Elementwise unary ops: neg exp log sqrt abs tanh sigmoid relu leaky_relu clamp.
// Each: an xsimd functor (scalar and batch forms), the forward, and the gradient beside it.
// Gradients that reuse the output (exp, sqrt, tanh, sigmoid) read the saved output in a plain
// backward and recompute it from the input under create_graph, so second derivatives flow.
#include <cmath>
#include <limits>

#include "sorix_autograd/ops_internal.hpp"
#include "unary_map.hpp"
#include "sorix_core/kernels/simd.hpp"

namespace sorix {
namespace {

using autograd::record;
using autograd::SavedTensor;

// The ops' arithmetic lives in the kernel layer (core/internal/sorix_core/kernels/elementwise_ops.hpp), which
// runs it on the active CPU capability.
using kernels::ops::AbsOp;
using kernels::ops::ClampOp;
using kernels::ops::ExpOp;
using kernels::ops::LeakyReluOp;
using kernels::ops::LogOp;
using kernels::ops::NegOp;
using kernels::ops::ReluGradOp;
using kernels::ops::ReluOp;
using kernels::ops::SigmoidOp;
using kernels::ops::SqrtOp;
using kernels::ops::TanhOp;

// Scalar integer forms for the ops that allow integers (uint8 wraps: -x is 256 - x, as PyTorch).
// Negation through the unsigned type: two's complement, no signed-overflow UB at the minimum.
struct NegInt {
  template <class T> T operator()(T x) const {
    using U = std::make_unsigned_t<T>;
    return static_cast<T>(U(0) - static_cast<U>(x));
  }
};
struct AbsInt {
  template <class T> T operator()(T x) const {
    if constexpr (std::is_unsigned_v<T>) return x;
    else return x < 0 ? NegInt{}(x) : x;
  }
};

using detail::map_floating;
using detail::map_integer;
using detail::map_promoted;

template <class Op, class IntOp>
Tensor map_any(const Tensor& x, const char* name) {
  detail::check_defined(x, name);
  if (is_floating(x.dtype())) return map_floating<Op>(x, name);
  check(x.dtype() != Dtype::Bool, name, "not supported for bool tensors (as PyTorch); use logical_not() to invert a mask");
  return map_integer<IntOp>(x, name);
}

// max(x, 0) of an integer (unsigned: x itself).
struct ReluInt {
  template <class T> T operator()(T x) const { return x < T(0) ? T(0) : x; }
};

// min(max(x, lo), hi) of an integer, as PyTorch's clamp (lo > hi gives hi); a missing bound is
// the dtype's extreme.
template <class T>
struct ClampInt {
  T lo, hi;
  T operator()(T x) const { return x < lo ? (lo > hi ? hi : lo) : (x > hi ? hi : x); }
};

// The saved output in a plain backward; recomputed from the input when the backward itself is
// being recorded (create_graph), so the gradient formula stays differentiable.
template <class Recompute>
Tensor output_for_grad(const SavedTensor& out, const SavedTensor& in, const char* op, Recompute recompute) {
  return autograd::grad_enabled() ? recompute(in.unpack(op)) : out.unpack(op);
}

Tensor sign_of(const Tensor& x) { return x.gt(0.0).to(x.dtype()) - x.lt(0.0).to(x.dtype()); }

}  // namespace

Tensor neg(const Tensor& x) {
  Tensor out = map_any<NegOp, NegInt>(x, "neg");
  if (autograd::needs_grad({&x})) {
    record(out, "NegBackward", {x}, [](const Tensor& g) { return std::vector<Tensor>{neg(g)}; });
  }
  return out;
}

Tensor exp(const Tensor& x) {
  Tensor out = map_promoted<ExpOp>(x, "exp");
  if (autograd::needs_grad({&x})) {
    record(out, "ExpBackward", {x}, [in = SavedTensor(x), o = SavedTensor::output(out)](const Tensor& g) {
      return std::vector<Tensor>{g * output_for_grad(o, in, "exp", [](const Tensor& v) { return exp(v); })};
    });
  }
  return out;
}

Tensor log(const Tensor& x) {
  Tensor out = map_promoted<LogOp>(x, "log");
  if (autograd::needs_grad({&x})) {
    record(out, "LogBackward", {x},
           [in = SavedTensor(x)](const Tensor& g) { return std::vector<Tensor>{g / in.unpack("log")}; });
  }
  return out;
}

Tensor sqrt(const Tensor& x) {
  Tensor out = map_promoted<SqrtOp>(x, "sqrt");
  if (autograd::needs_grad({&x})) {
    record(out, "SqrtBackward", {x}, [in = SavedTensor(x), o = SavedTensor::output(out)](const Tensor& g) {
      Tensor y = output_for_grad(o, in, "sqrt", [](const Tensor& v) { return sqrt(v); });
      return std::vector<Tensor>{g / (y * 2.0)};
    });
  }
  return out;
}

Tensor abs(const Tensor& x) {
  Tensor out = map_any<AbsOp, AbsInt>(x, "abs");
  if (autograd::needs_grad({&x})) {
    record(out, "AbsBackward", {x},
           [in = SavedTensor(x)](const Tensor& g) { return std::vector<Tensor>{g * sign_of(in.unpack("abs"))}; });
  }
  return out;
}

Tensor tanh(const Tensor& x) {
  Tensor out = map_promoted<TanhOp>(x, "tanh");
  if (autograd::needs_grad({&x})) {
    record(out, "TanhBackward", {x}, [in = SavedTensor(x), o = SavedTensor::output(out)](const Tensor& g) {
      Tensor y = output_for_grad(o, in, "tanh", [](const Tensor& v) { return tanh(v); });
      return std::vector<Tensor>{g * (1.0 - y * y)};
    });
  }
  return out;
}

Tensor sigmoid(const Tensor& x) {
  Tensor out = map_promoted<SigmoidOp>(x, "sigmoid");
  if (autograd::needs_grad({&x})) {
    record(out, "SigmoidBackward", {x}, [in = SavedTensor(x), o = SavedTensor::output(out)](const Tensor& g) {
      Tensor y = output_for_grad(o, in, "sigmoid", [](const Tensor& v) { return sigmoid(v); });
      return std::vector<Tensor>{g * y * (1.0 - y)};
    });
  }
  return out;
}

Tensor relu(const Tensor& x) {
  detail::check_defined(x, "relu");
  if (!is_floating(x.dtype())) {  // integers keep their dtype (PyTorch's), bool throws
    check(x.dtype() != Dtype::Bool, "relu", "not supported for bool tensors (as PyTorch)");
    return map_integer<ReluInt>(x, "relu");
  }
  Tensor out = map_floating<ReluOp>(x, "relu");
  if (autograd::needs_grad({&x})) {
    // Gradient 0 at x == 0, as PyTorch: g * (x > 0). A plain backward runs it as one fused pass
    // (the same products g * 1 and g * 0, so the same bits); under create_graph it is recorded
    // from differentiable ops.
    record(out, "ReluBackward", {x}, [in = SavedTensor(x)](const Tensor& g) {
      const Tensor xv = in.unpack("relu");
      if (autograd::grad_enabled() || g.dtype() != xv.dtype() || g.shape() != xv.shape() || !g.is_contiguous() ||
          !xv.is_contiguous()) {
        return std::vector<Tensor>{g * xv.gt(0.0)};
      }
      return std::vector<Tensor>{detail::visit_floating(xv.dtype(), "relu", [&](auto tag) {
        using T = typename decltype(tag)::type;
        Tensor gx = detail::make_empty<T>(detail::to_xshape(xv.shape(), "relu"));
        const T* gp = detail::flat<T>(g);
        const T* xp = detail::flat<T>(xv);
        T* op = detail::flat<T>(gx);
        parallel::parallel_for(static_cast<std::size_t>(xv.numel()), parallel::kChunkSize, [&](std::size_t b, std::size_t e) {
          kernels::binary_serial(gp + b, true, xp + b, true, op + b, e - b, ReluGradOp{});
        });
        return gx;
      })};
    });
  }
  return out;
}

Tensor leaky_relu(const Tensor& x, double negative_slope) {
  check(std::isfinite(negative_slope), "leaky_relu", "negative_slope must be finite, got ", negative_slope);
  Tensor out = map_floating<LeakyReluOp>(x, "leaky_relu", LeakyReluOp{negative_slope});
  if (autograd::needs_grad({&x})) {
    record(out, "LeakyReluBackward", {x}, [in = SavedTensor(x), negative_slope](const Tensor& g) {
      Tensor pos = in.unpack("leaky_relu").gt(0.0).to(g.dtype());  // 1/0 in the float dtype
      return std::vector<Tensor>{g * (pos + (1.0 - pos) * negative_slope)};
    });
  }
  return out;
}

namespace detail {

Dtype clamp_result_type(const Tensor& x, const std::optional<Scalar>& min, const std::optional<Scalar>& max) {
  // ScalarKind ranks Bool < Integral < Floating: the higher bound's kind is the numbers' promotion.
  if (!min || !max) return result_type(x, min ? *min : *max);
  return result_type(x, static_cast<int>(max->kind()) > static_cast<int>(min->kind()) ? *max : *min);
}

Tensor clamp_integer(const Tensor& x, Dtype rt, const std::optional<Scalar>& min, const std::optional<Scalar>& max,
                     const char* name) {
  check(rt != Dtype::Bool, name, "not implemented for a bool tensor with bool bounds (as PyTorch)");
  if (min) check_fits(*min, rt, name);
  if (max) check_fits(*max, rt, name);
  const Tensor xi = x.dtype() == rt ? x : x.to(rt);
  return visit_dtype(rt, [&](auto tag) -> Tensor {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
      const ClampInt<T> op{min ? min->to<T>() : std::numeric_limits<T>::lowest(),
                           max ? max->to<T>() : std::numeric_limits<T>::max()};
      return map_integer(xi, name, op);
    } else {
      throw std::logic_error(std::string(name) + ": clamp_integer called with a " + dtype_name(rt) + " result");
    }
  });
}

}  // namespace detail

namespace {
// min <= max, compared exactly when both are integers.
bool bounds_ordered(const Scalar& min, const Scalar& max) {
  if (min.is_integral(true) && max.is_integral(true)) return min.to_long() <= max.to_long();
  return min.to_double() <= max.to_double();
}
}  // namespace

Tensor clamp(const Tensor& x, std::optional<Scalar> min, std::optional<Scalar> max) {
  check(min.has_value() || max.has_value(), "clamp", "at least one of min and max must be given");
  check(!(min && max) || bounds_ordered(*min, *max), "clamp", "min ", min ? min->to_double() : 0.0,
        " is greater than max ", max ? max->to_double() : 0.0);
  detail::check_defined(x, "clamp");
  const Dtype rt = detail::clamp_result_type(x, min, max);
  if (!is_floating(rt)) return detail::clamp_integer(x, rt, min, max, "clamp");
  const double lo = min ? min->to_double() : -std::numeric_limits<double>::infinity();
  const double hi = max ? max->to_double() : std::numeric_limits<double>::infinity();
  Tensor out = map_floating<ClampOp>(x.dtype() == rt ? x : x.to(rt), "clamp", ClampOp{lo, hi});
  if (autograd::needs_grad({&x})) {
    record(out, "ClampBackward", {x}, [in = SavedTensor(x), lo, hi](const Tensor& g) {
      Tensor xv = in.unpack("clamp");
      return std::vector<Tensor>{g * (xv.ge(lo) * xv.le(hi))};
    });
  }
  return out;
}

Tensor operator-(const Tensor& a) { return neg(a); }
Tensor Tensor::neg() const { return sorix::neg(*this); }
Tensor Tensor::exp() const { return sorix::exp(*this); }
Tensor Tensor::log() const { return sorix::log(*this); }
Tensor Tensor::sqrt() const { return sorix::sqrt(*this); }
Tensor Tensor::abs() const { return sorix::abs(*this); }
Tensor Tensor::tanh() const { return sorix::tanh(*this); }
Tensor Tensor::sigmoid() const { return sorix::sigmoid(*this); }
Tensor Tensor::relu() const { return sorix::relu(*this); }
Tensor Tensor::leaky_relu(double s) const { return sorix::leaky_relu(*this, s); }
Tensor Tensor::clamp(std::optional<Scalar> min, std::optional<Scalar> max) const { return sorix::clamp(*this, min, max); }

}  // namespace sorix
