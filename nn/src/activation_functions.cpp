// GELU, SiLU, ELU, Softplus, Hardtanh: the functional forms (forward and gradient kernels side by
// side, core/internal/sorix_core/kernels/activation_ops.hpp) and the modules over them.
#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>

#include "sorix_autograd/ops_internal.hpp"
#include "sorix_core/kernels/simd.hpp"
#include "sorix/nn/activation.hpp"

namespace sorix::nn {
namespace {

using autograd::record;
using autograd::SavedTensor;
namespace kops = kernels::ops;

template <class... Parts>
[[noreturn]] void fail(const char* op, const Parts&... parts) {
  std::ostringstream os;
  os << op << ": ";
  (os << ... << parts);
  throw std::invalid_argument(os.str());
}

/// y = fwd(x) by the forward kernel; the gradient g * f'(x) by the gradient kernel in a plain
/// backward, or `composite(g, x)` (differentiable ops) when the backward is itself recorded.
template <class Fwd, class Bwd, class Composite>
Tensor activation(const Tensor& x, const char* op, const char* node, const Fwd& fwd, const Bwd& bwd,
                  Composite composite) {
  detail::check_defined(x, op);
  Tensor out = detail::visit_floating(x.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const Tensor xc = detail::contiguous_copy_if_needed(x);
    Tensor y = detail::make_empty<T>(detail::to_xshape(x.shape(), op));
    kernels::unary_map(detail::flat<T>(xc), detail::flat<T>(y), static_cast<std::size_t>(x.numel()), fwd);
    return y;
  });
  if (!autograd::needs_grad({&x})) return out;
  record(out, node, {x}, [in = SavedTensor(x), op, bwd, composite](const Tensor& g) {
    const Tensor xv = in.unpack(op);
    if (autograd::grad_enabled() || g.dtype() != xv.dtype() || g.shape() != xv.shape() || !g.is_contiguous() ||
        !xv.is_contiguous()) {
      return std::vector<Tensor>{composite(g, xv)};
    }
    return std::vector<Tensor>{detail::visit_floating(xv.dtype(), op, [&](auto tag) {
      using T = typename decltype(tag)::type;
      Tensor gx = detail::make_empty<T>(detail::to_xshape(xv.shape(), op));
      const T* gp = detail::flat<T>(g);
      const T* xp = detail::flat<T>(xv);
      T* op_out = detail::flat<T>(gx);
      parallel::parallel_for(static_cast<std::size_t>(xv.numel()), parallel::kChunkSize,
                             [&](std::size_t b, std::size_t e) {
                               kernels::binary_serial(gp + b, true, xp + b, true, op_out + b, e - b, bwd);
                             });
      return gx;
    })};
  });
  return out;
}

void check_gelu(const std::string& approximate, const char* who) {
  if (approximate != "none" && approximate != "tanh")
    fail(who, "approximate must be 'none' or 'tanh', got '", approximate, "'");
}
void check_elu(double alpha, const char* who) {
  if (!std::isfinite(alpha)) fail(who, "alpha must be finite, got ", alpha);
}
void check_softplus(const SoftplusOptions& o, const char* who) {
  if (!(o.beta() > 0) || !std::isfinite(o.beta())) fail(who, "beta must be positive and finite, got ", o.beta());
  if (std::isnan(o.threshold())) fail(who, "threshold must not be NaN, got ", o.threshold());
}
void check_hardtanh(const HardtanhOptions& o, const char* who) {
  if (!(o.min_val() <= o.max_val()))
    fail(who, "min_val must be <= max_val (neither NaN), got min_val=", o.min_val(), ", max_val=", o.max_val());
}

// hardtanh of an integer tensor, as PyTorch 1.13: the dtype is kept and the bounds are truncated
// toward zero into it (-2.5 clamps at -2); bool, and a uint8 tensor with a negative limit, throw.
Tensor integer_hardtanh(const Tensor& x, double lo, double hi) {
  if (x.dtype() == Dtype::Bool) fail("hardtanh", "bool inputs are not supported (as PyTorch)");
  if (x.dtype() == Dtype::UInt8 && (lo < 0 || hi < 0)) {
    fail("hardtanh", "cannot do hardtanh on an unsigned type (uint8) with negative limits, got min_val=", lo,
         ", max_val=", hi, " (as PyTorch)");
  }
  auto bound = [&](double v) {
    const double t = std::trunc(v);
    // 2^63 as a double: a bound outside [-2^63, 2^63) has no int64 (nor any narrower) value.
    if (!(t >= -9223372036854775808.0 && t < 9223372036854775808.0)) {
      fail("hardtanh", "bound ", v, " cannot be converted to ", dtype_name(x.dtype()), " without overflow");
    }
    const Scalar s(static_cast<std::int64_t>(t));
    detail::check_fits(s, x.dtype(), "hardtanh");
    return s;
  };
  return sorix::clamp(x, bound(lo), bound(hi));
}

constexpr double kSqrt1_2 = kops::kSqrt1_2, kInvSqrt2Pi = kops::kInvSqrt2Pi, kBeta = kops::kSqrt2OverPi,
                 kKappa = kops::kGeluKappa;

}  // namespace

namespace functional {

Tensor gelu(const Tensor& input, const GELUFuncOptions& options) {
  check_gelu(options.approximate(), "gelu");
  if (options.approximate() == "tanh") {
    return activation(input, "gelu", "GeluBackward", kops::GeluTanhOp{}, kops::GeluTanhGradOp{},
                      [](const Tensor& g, const Tensor& x) {
                        const Tensor t = sorix::tanh((x + x * x * x * kKappa) * kBeta);
                        const Tensor slope = x * x * (3.0 * kKappa) + 1.0;
                        return g * ((t + 1.0) * 0.5 + x * 0.5 * (1.0 - t * t) * kBeta * slope);
                      });
  }
  return activation(input, "gelu", "GeluBackward", kops::GeluOp{}, kops::GeluGradOp{},
                    [](const Tensor& g, const Tensor& x) {
                      const Tensor cdf = (sorix::erf(x * kSqrt1_2) + 1.0) * 0.5;
                      const Tensor pdf = sorix::exp(x * x * -0.5) * kInvSqrt2Pi;
                      return g * (cdf + x * pdf);
                    });
}

Tensor silu(const Tensor& input) {
  return activation(input, "silu", "SiluBackward", kops::SiluOp{}, kops::SiluGradOp{},
                    [](const Tensor& g, const Tensor& x) {
                      const Tensor s = sorix::sigmoid(x);
                      return g * (s * (x * (1.0 - s) + 1.0));
                    });
}

Tensor elu(const Tensor& input, const ELUFuncOptions& options) {
  const double alpha = options.alpha();
  check_elu(alpha, "elu");
  return activation(input, "elu", "EluBackward", kops::EluOp{alpha}, kops::EluGradOp{alpha},
                    [alpha](const Tensor& g, const Tensor& x) { return where(x.le(0.0), g * (sorix::exp(x) * alpha), g); });
}

Tensor softplus(const Tensor& input, const SoftplusFuncOptions& options) {
  check_softplus(options, "softplus");
  const double beta = options.beta(), threshold = options.threshold();
  return activation(input, "softplus", "SoftplusBackward", kops::SoftplusOp{beta, threshold},
                    kops::SoftplusGradOp{beta, threshold}, [beta, threshold](const Tensor& g, const Tensor& x) {
                      const Tensor bx = x * beta;
                      const Tensor z = sorix::exp(bx);
                      return where(bx.gt(threshold), g, (g * z) / (z + 1.0));
                    });
}

Tensor hardtanh(const Tensor& input, const HardtanhFuncOptions& options) {
  check_hardtanh(options, "hardtanh");
  const double lo = options.min_val(), hi = options.max_val();
  detail::check_defined(input, "hardtanh");
  if (!is_floating(input.dtype())) return integer_hardtanh(input, lo, hi);
  return activation(input, "hardtanh", "HardtanhBackward", kops::ClampOp{lo, hi}, kops::HardtanhGradOp{lo, hi},
                    [lo, hi](const Tensor& g, const Tensor& x) { return where(x.le(lo) + x.ge(hi), 0.0, g); });
}

}  // namespace functional

GELU::GELU(const GELUOptions& options) : options_(options) { check_gelu(options_.approximate(), "GELU"); }
Tensor GELU::forward(const Tensor& input) { return functional::gelu(input, options_); }
std::string GELU::extra_repr() const { return "approximate='" + options_.approximate() + "'"; }

Tensor SiLU::forward(const Tensor& input) { return functional::silu(input); }

ELU::ELU(const ELUOptions& options) : options_(options) { check_elu(options_.alpha(), "ELU"); }
Tensor ELU::forward(const Tensor& input) { return functional::elu(input, options_); }
std::string ELU::extra_repr() const {
  std::ostringstream os;
  os << "alpha=" << options_.alpha();
  return os.str();
}

Softplus::Softplus(const SoftplusOptions& options) : options_(options) { check_softplus(options_, "Softplus"); }
Tensor Softplus::forward(const Tensor& input) { return functional::softplus(input, options_); }
std::string Softplus::extra_repr() const {
  std::ostringstream os;
  os << "beta=" << options_.beta() << ", threshold=" << options_.threshold();
  return os.str();
}

Hardtanh::Hardtanh(const HardtanhOptions& options) : options_(options) { check_hardtanh(options_, "Hardtanh"); }
Tensor Hardtanh::forward(const Tensor& input) { return functional::hardtanh(input, options_); }
std::string Hardtanh::extra_repr() const {
  std::ostringstream os;
  os << "min_val=" << options_.min_val() << ", max_val=" << options_.max_val();
  return os.str();
}

}  // namespace sorix::nn
