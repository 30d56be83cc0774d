// Gradient clipping (see clip_grad.hpp): per-gradient reductions by the library's fixed-shape
// sums and maxima in float64, combined in parameter order, so the result is thread-invariant.
#include "sorix/nn/utils/clip_grad.hpp"

#include <cmath>
#include <sstream>
#include <stdexcept>

#include "sorix/autograd/grad_mode.hpp"
#include "sorix/core/error.hpp"

namespace sorix::nn::utils {
namespace {

std::vector<Tensor> defined_grads(const std::vector<Tensor>& parameters) {
  std::vector<Tensor> grads;
  for (const Tensor& p : parameters) {
    if (p.defined() && p.grad().defined()) grads.push_back(p.grad());
  }
  return grads;
}

// The float64 part of one gradient: max |g| (inf), else sum |g|^p.
double part(const Tensor& g, double norm_type) {
  if (g.numel() == 0) return 0.0;
  const Tensor d = g.dtype() == Dtype::Float64 ? g : g.to(Dtype::Float64);
  if (std::isinf(norm_type)) return d.abs().max().item<double>();
  if (norm_type == 2.0) return (d * d).sum().item<double>();
  if (norm_type == 1.0) return d.abs().sum().item<double>();
  return d.abs().pow(norm_type).sum().item<double>();
}

}  // namespace

double clip_grad_norm_(const std::vector<Tensor>& parameters, double max_norm, double norm_type,
                       bool error_if_nonfinite) {
  const char* op = "clip_grad_norm_";
  check(!std::isnan(max_norm) && max_norm >= 0, op, "max_norm must be >= 0, got ", max_norm);
  check(norm_type > 0 && !std::isnan(norm_type), op, "norm_type must be > 0 or infinity, got ", norm_type);
  NoGradGuard no_grad;
  const std::vector<Tensor> grads = defined_grads(parameters);
  if (grads.empty()) return 0.0;
  const bool inf = std::isinf(norm_type);
  double acc = 0.0;
  for (const Tensor& g : grads) {
    const double v = part(g, norm_type);
    // std::max would drop a NaN: the norm of gradients holding a NaN is NaN, as PyTorch's.
    if (inf) acc = (std::isnan(v) || v > acc) ? v : acc;
    else acc += v;
    if (std::isnan(acc)) break;
  }
  double total = acc;
  if (!inf) total = norm_type == 2.0 ? std::sqrt(acc) : norm_type == 1.0 ? acc : std::pow(acc, 1.0 / norm_type);
  if (error_if_nonfinite && !std::isfinite(total)) {
    std::ostringstream os;
    os << "clip_grad_norm_: the total norm of order " << norm_type << " of the gradients is " << total
       << ", so it cannot be clipped; pass error_if_nonfinite = false to scale the gradients by it anyway";
    throw std::runtime_error(os.str());
  }
  const double coef = max_norm / (total + 1e-6);
  // PyTorch clamps the factor to at most 1 and multiplies always; a factor of exactly 1 leaves
  // the bits as they are, so it is skipped. A NaN factor is applied (the gradients become NaN).
  if (coef < 1.0 || std::isnan(coef)) {
    for (Tensor g : grads) g.mul_(coef);
  }
  return total;
}

double clip_grad_norm_(std::initializer_list<Tensor> parameters, double max_norm, double norm_type,
                       bool error_if_nonfinite) {
  return clip_grad_norm_(std::vector<Tensor>(parameters), max_norm, norm_type, error_if_nonfinite);
}

double clip_grad_norm_(const Tensor& parameter, double max_norm, double norm_type, bool error_if_nonfinite) {
  return clip_grad_norm_(std::vector<Tensor>{parameter}, max_norm, norm_type, error_if_nonfinite);
}

void clip_grad_value_(const std::vector<Tensor>& parameters, double clip_value) {
  check(!std::isnan(clip_value) && clip_value >= 0, "clip_grad_value_", "clip_value must be >= 0, got ", clip_value);
  NoGradGuard no_grad;
  for (Tensor g : defined_grads(parameters)) g.clamp_(-clip_value, clip_value);
}

void clip_grad_value_(std::initializer_list<Tensor> parameters, double clip_value) {
  clip_grad_value_(std::vector<Tensor>(parameters), clip_value);
}

void clip_grad_value_(const Tensor& parameter, double clip_value) {
  clip_grad_value_(std::vector<Tensor>{parameter}, clip_value);
}

}  // namespace sorix::nn::utils
