// LayerNorm, GroupNorm and Dropout2d. Each norm of 16 rows ((sample, group) rows for GroupNorm)
// or more, of more than one value each, is one fused op (layer_norm.hpp, group_norm.hpp).
// Otherwise the normalisation is composed ops for fewer than 16 rows (each row split across the
// threads), or BatchNorm's fused op on the input viewed as [1, rows, L] (normalize_rows), and
// the affine part is broadcast products and sums, or for GroupNorm's non-empty inputs BatchNorm's
// op in eval mode with mean 0 and variance 1. Dropout2d draws its channel mask with F::dropout's fused Philox kernel and multiplies
// it in by broadcasting.
#include "sorix/nn/normalization.hpp"

#include "group_norm.hpp"
#include "layer_norm.hpp"

#include <algorithm>
#include <sstream>
#include <vector>

#include "sorix_autograd/ops_internal.hpp"
#include "sorix/autograd/ops.hpp"
#include "sorix/core/error.hpp"
#include "sorix/nn/batchnorm.hpp"
#include "sorix/nn/init.hpp"

namespace sorix::nn {

namespace {

void check_floating_input(const Tensor& input, const char* op) {
  check(input.defined(), op, "input is undefined");
  check(is_floating(input.dtype()), op, "expected a float32 or float64 input, got ", dtype_name(input.dtype()));
}

void check_affine(const Tensor& t, const char* what, const Shape& shape, const Tensor& input, const char* op) {
  if (!t.defined()) return;
  check(t.shape() == shape, op, what, " must have shape ", shape, ", got ", t.shape());
  check(t.dtype() == input.dtype(), op, what, " dtype ", dtype_name(t.dtype()), " does not match input dtype ",
        dtype_name(input.dtype()));
}

// (x - mean) / sqrt(var + eps) over each row of x viewed as [rows, L] (biased variance) as
// composed ops, for the shapes the fused ops leave (fewer than 16 rows: the composed ops split
// each row across the threads; rows of one value; empty inputs). Rows of one value normalise to 0.
Tensor normalize_rows(const Tensor& x, std::int64_t rows, std::int64_t L, double eps) {
  if (x.numel() == 0 || L <= 1) {
    const Tensor xc = x - x;  // (x - mean) with the mean x itself; its gradient is 0, as PyTorch's
    return xc * rsqrt(xc * xc + eps);
  }
  const Tensor r = reshape(x, {rows, L});
  const Tensor xc = r - r.mean({1}, true);
  return reshape(xc * rsqrt((xc * xc).mean({1}, true) + eps), x.shape());
}

void check_p(double p, const char* op) {
  check(p >= 0.0 && p <= 1.0, op, "probability has to be between 0 and 1, but got ", p);
}

}  // namespace

namespace functional {

Tensor layer_norm(const Tensor& input, const LayerNormFuncOptions& options) {
  check_floating_input(input, "layer_norm");
  const std::vector<std::int64_t>& ns = options.normalized_shape();
  check(!ns.empty(), "layer_norm", "normalized_shape must not be empty");
  check(options.eps() >= 0.0, "layer_norm", "eps must be >= 0, got ", options.eps());
  const Shape xs = input.shape();
  bool match = xs.size() >= ns.size();
  for (std::size_t k = 0; match && k < ns.size(); ++k) match = xs[xs.size() - ns.size() + k] == ns[k];
  check(match, "layer_norm", "input of shape ", xs, " does not end in normalized_shape ", ns,
        " (expected input of shape [*, ", Shape(ns), "])");
  check_affine(options.weight(), "weight", Shape(ns), input, "layer_norm");
  check_affine(options.bias(), "bias", Shape(ns), input, "layer_norm");
  std::int64_t L = 1;
  for (std::int64_t s : ns) L *= s;
  const std::int64_t rows = L > 0 ? input.numel() / L : 0;
  if (detail::layer_norm_fused_applies(rows, L, input.numel())) {
    using sorix::detail::contiguous_or_undefined;
    return detail::layer_norm_fused(input.contiguous(), contiguous_or_undefined(options.weight()),
                                    contiguous_or_undefined(options.bias()), rows, L, options.eps());
  }
  Tensor y = normalize_rows(input, rows, L, options.eps());
  if (!options.weight().defined() && !options.bias().defined()) return y;
  if (options.weight().defined()) y = y * options.weight();
  if (options.bias().defined()) y = y + options.bias();
  return y;
}

Tensor group_norm(const Tensor& input, const GroupNormFuncOptions& options) {
  check_floating_input(input, "group_norm");
  const Shape xs = input.shape();
  check(xs.size() >= 2, "group_norm", "expected an input of at least 2 dims [N, C, *], got shape ", xs);
  const std::int64_t G = options.num_groups(), C = xs[1];
  check(G >= 1, "group_norm", "num_groups must be >= 1, got ", G);
  check(C % G == 0, "group_norm", "num_groups ", G, " must divide the number of channels ", C, " of input ", xs);
  check(options.eps() >= 0.0, "group_norm", "eps must be >= 0, got ", options.eps());
  check_affine(options.weight(), "weight", Shape{C}, input, "group_norm");
  check_affine(options.bias(), "bias", Shape{C}, input, "group_norm");
  const std::int64_t rows = xs[0] * G, per_row = rows > 0 ? input.numel() / rows : 0;
  if (detail::group_norm_fused_applies(rows, per_row, input.numel())) {
    using sorix::detail::contiguous_or_undefined;
    return detail::group_norm_fused(input.contiguous(), contiguous_or_undefined(options.weight()),
                                    contiguous_or_undefined(options.bias()), G, options.eps());
  }
  Tensor y = normalize_rows(input, rows, per_row, options.eps());
  if (!options.weight().defined() && !options.bias().defined()) return y;
  if (y.numel() > 0) {
    // The per-channel weight and bias as BatchNorm in eval mode with mean 0, variance 1 and eps 0
    // (invstd exactly 1): y * w + b in one pass, and its gradients fused (g * w; the sums of g and
    // g * xhat over (N, *) per channel), not four elementwise passes and two reductions.
    const Tensor mean = zeros({C}, input.dtype()), var = ones({C}, input.dtype());
    return functional::batch_norm(y, mean, var, options.weight(), options.bias(), false, 0.0, 0.0);
  }
  Shape per_channel(xs.size(), 1);  // [1, C, 1, ...]: weight/bias broadcast over N and the spatial dims
  per_channel[1] = C;
  if (options.weight().defined()) y = y * reshape(options.weight(), per_channel);
  if (options.bias().defined()) y = y + reshape(options.bias(), per_channel);
  return y;
}

Tensor dropout2d(const Tensor& input, const Dropout2dFuncOptions& options) {
  check_p(options.p(), "dropout2d");
  check_floating_input(input, "dropout2d");
  const Shape xs = input.shape();
  check(xs.size() == 3 || xs.size() == 4, "dropout2d",
        "expected a 3D (unbatched [C, H, W]) or 4D ([N, C, H, W]) input, got ", xs.size(), "D input of shape ", xs);
  if (!options.training() || options.p() == 0.0) return input;
  // One word per channel: the mask (0 or 1/(1-p)) of an [N, C] tensor of ones. It is a constant,
  // so the product's gradient is g * mask, and create_graph differentiates it again.
  const std::size_t lead = xs.size() - 2;  // the channel dims: [N, C] or [C]
  const Shape channels(xs.begin(), xs.begin() + static_cast<std::ptrdiff_t>(lead));
  Tensor mask;
  {
    NoGradGuard no_grad;
    mask = dropout(ones(channels, input.dtype()), options.p(), true, options.generator());
  }
  Shape bshape = channels;
  bshape.push_back(1);
  bshape.push_back(1);
  return input * reshape(mask, bshape);
}

}  // namespace functional

LayerNorm::LayerNorm(const LayerNormOptions& options, Dtype dtype) : options_(options) {
  check(!options.normalized_shape().empty(), "LayerNorm", "normalized_shape must not be empty");
  for (std::int64_t s : options.normalized_shape()) {
    check(s >= 0, "LayerNorm", "normalized_shape sizes must be >= 0, got ", options.normalized_shape());
  }
  check(options.eps() >= 0.0, "LayerNorm", "eps must be >= 0, got ", options.eps());
  check(is_floating(dtype), "LayerNorm", "parameters must be float32 or float64, got ", dtype_name(dtype));
  if (options.elementwise_affine()) {
    const Shape s(options.normalized_shape());
    weight = register_parameter("weight", ones(s, dtype));
    bias = register_parameter("bias", zeros(s, dtype));
  }
}

void LayerNorm::reset_parameters() {
  if (!options_.elementwise_affine()) return;
  init::ones_(weight);
  init::zeros_(bias);
}

Tensor LayerNorm::forward(const Tensor& input) {
  return functional::layer_norm(
      input, functional::LayerNormFuncOptions(options_.normalized_shape()).weight(weight).bias(bias).eps(options_.eps()));
}

std::string LayerNorm::extra_repr() const {
  std::ostringstream os;
  os << "(";
  const auto& ns = options_.normalized_shape();
  for (std::size_t k = 0; k < ns.size(); ++k) os << (k ? ", " : "") << ns[k];
  os << (ns.size() == 1 ? ",)" : ")") << ", eps=" << options_.eps()
     << ", elementwise_affine=" << (options_.elementwise_affine() ? "True" : "False");
  return os.str();
}

GroupNorm::GroupNorm(const GroupNormOptions& options, Dtype dtype) : options_(options) {
  check(options.num_groups() >= 1, "GroupNorm", "num_groups must be >= 1, got ", options.num_groups());
  check(options.num_channels() >= 0, "GroupNorm", "num_channels must be >= 0, got ", options.num_channels());
  check(options.num_channels() % options.num_groups() == 0, "GroupNorm", "num_groups ", options.num_groups(),
        " must divide num_channels ", options.num_channels());
  check(options.eps() >= 0.0, "GroupNorm", "eps must be >= 0, got ", options.eps());
  check(is_floating(dtype), "GroupNorm", "parameters must be float32 or float64, got ", dtype_name(dtype));
  if (options.affine()) {
    weight = register_parameter("weight", ones({options.num_channels()}, dtype));
    bias = register_parameter("bias", zeros({options.num_channels()}, dtype));
  }
}

void GroupNorm::reset_parameters() {
  if (!options_.affine()) return;
  init::ones_(weight);
  init::zeros_(bias);
}

Tensor GroupNorm::forward(const Tensor& input) {
  check(input.defined(), "GroupNorm", "input is undefined");
  check(input.dim() >= 2 && input.size(1) == options_.num_channels(), "GroupNorm", "expected input [N, ",
        options_.num_channels(), ", *], got shape ", input.shape());
  return functional::group_norm(
      input, functional::GroupNormFuncOptions(options_.num_groups()).weight(weight).bias(bias).eps(options_.eps()));
}

std::string GroupNorm::extra_repr() const {
  std::ostringstream os;
  os << options_.num_groups() << ", " << options_.num_channels() << ", eps=" << options_.eps()
     << ", affine=" << (options_.affine() ? "True" : "False");
  return os.str();
}

Dropout2d::Dropout2d(const Dropout2dOptions& options) : options_(options) { check_p(options.p(), "Dropout2d"); }

Tensor Dropout2d::forward(const Tensor& input) {
  return functional::dropout2d(input, functional::Dropout2dFuncOptions().p(options_.p()).training(is_training()));
}

std::string Dropout2d::extra_repr() const {
  std::ostringstream os;
  os << "p=" << options_.p();
  return os.str();
}

}  // namespace sorix::nn
