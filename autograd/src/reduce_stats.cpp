// var, std, norm, logsumexp, all, any: composed from sorix's deterministic reductions (sum, mean,
// max/min along a dim) and elementwise ops, so their values are the same bits at any thread count
// and on every capability. The gradients of std and norm are written out (PyTorch's masks where
// the result is 0), with differentiable ops, so they differentiate again.
#include <cmath>
#include <limits>

#include "sorix_autograd/ops_internal.hpp"

namespace sorix {
namespace {

using autograd::record;
using autograd::SavedTensor;

void check_floating(const Tensor& x, const char* op) {
  detail::check_defined(x, op);
  // As PyTorch 1.13 (var, std and norm refuse integer and bool tensors rather than guess a dtype).
  check(is_floating(x.dtype()), op, "expected a float32 or float64 tensor, got ", dtype_name(x.dtype()),
        " (as PyTorch); convert first, e.g. x.to(kFloat32)");
}

std::vector<std::int64_t> as_dims(const std::vector<std::size_t>& d) { return {d.begin(), d.end()}; }

// The number of elements reduced over `dims` (normalized).
std::int64_t reduced_numel(const Tensor& x, const std::vector<std::size_t>& dims) {
  std::int64_t n = 1;
  for (std::size_t d : dims) n *= x.size(static_cast<std::int64_t>(d));
  return n;
}

// The result's shape: x's with the reduced dims as 1 (keepdim) or removed.
Shape reduced_shape(const Tensor& x, const std::vector<std::size_t>& dims, bool keepdim) {
  Shape s;
  std::size_t j = 0;
  for (std::size_t k = 0; k < static_cast<std::size_t>(x.dim()); ++k) {
    const bool reduced = j < dims.size() && dims[j] == k;
    if (reduced) ++j;
    if (!reduced) s.push_back(x.size(static_cast<std::int64_t>(k)));
    else if (keepdim) s.push_back(1);
  }
  return s;
}

// max (or min) over several dims, the dims kept as 1: one dim after another (a selection, exact).
// No gradient.
Tensor extreme_keep(const Tensor& x, const std::vector<std::size_t>& dims, bool is_max) {
  NoGradGuard no_grad;
  Tensor cur = x;
  for (std::size_t d : dims) {
    cur = std::get<0>(is_max ? max(cur, static_cast<std::int64_t>(d), true) : min(cur, static_cast<std::int64_t>(d), true));
  }
  return cur;
}

// Records `grad(g_keep, x)` as x's gradient, where g_keep is g with the reduced dims as 1.
template <class Grad>
Tensor with_reduced_grad(Tensor out, const Tensor& x, const Shape& keep, const char* node, const char* op, Grad grad) {
  if (autograd::needs_grad({&x})) {
    record(out, node, {x}, [in = SavedTensor(x), keep, op, grad](const Tensor& g) {
      return std::vector<Tensor>{grad(reshape(g, keep), in.unpack(op))};
    });
  }
  return out;
}

}  // namespace

Tensor var(const Tensor& x, const std::vector<std::int64_t>& dims_in, std::int64_t correction, bool keepdim) {
  check_floating(x, "var");
  check(correction >= 0, "var", "correction must be >= 0, got ", correction);
  const std::vector<std::size_t> dims = detail::normalize_dims(dims_in, x.dim(), "var");
  const std::int64_t n = reduced_numel(x, dims);
  const Tensor xc = x - mean(x, as_dims(dims), true);
  // A divisor <= 0 gives inf (or NaN for 0 / 0), as PyTorch.
  const double divisor = static_cast<double>(std::max<std::int64_t>(0, n - correction));
  Tensor s = sum(xc * xc, as_dims(dims), true);
  return reshape(s / divisor, reduced_shape(x, dims, keepdim));
}

Tensor std(const Tensor& x, const std::vector<std::int64_t>& dims, std::int64_t correction, bool keepdim) {
  check_floating(x, "std");
  const Tensor v = var(x, dims, correction, keepdim);
  Tensor out;
  {
    NoGradGuard no_grad;
    out = sqrt(v);
  }
  if (autograd::needs_grad({&v})) {
    // d sqrt(v) = g / (2 sqrt(v)), 0 where std is 0 (as PyTorch: a constant has no direction).
    record(out, "StdBackward", {v}, [sv = SavedTensor(v)](const Tensor& g) {
      const Tensor vv = sv.unpack("std");
      const Tensor s = sqrt(vv);
      return std::vector<Tensor>{where(s.eq(0.0), 0.0, g / (s * 2.0))};
    });
  }
  return out;
}

Tensor norm(const Tensor& x, double p, const std::vector<std::int64_t>& dims_in, bool keepdim) {
  check_floating(x, "norm");
  check(!std::isnan(p) && (p >= 0.0 || std::isinf(p)), "norm", "p must be >= 0, +inf or -inf, got ", p);
  const std::vector<std::size_t> dims = detail::normalize_dims(dims_in, x.dim(), "norm");
  const Shape keep = reduced_shape(x, dims, true), out_shape = reduced_shape(x, dims, keepdim);
  const auto ds = as_dims(dims);
  Tensor out;
  {
    NoGradGuard no_grad;
    const Tensor a = abs(x);
    if (std::isinf(p)) out = extreme_keep(a, dims, p > 0);
    else if (p == 0.0) out = sum(x.ne(0.0).to(x.dtype()), ds, true);  // a count, in x's dtype
    else if (p == 1.0) out = sum(a, ds, true);
    else if (p == 2.0) out = sqrt(sum(x * x, ds, true));
    else out = pow(sum(pow(a, p), ds, true), 1.0 / p);
    if (!keepdim) out = reshape(out, out_shape).clone();  // a tensor of its own, not a view, gets the grad_fn
  }
  return with_reduced_grad(out, x, keep, "NormBackward", "norm", [p, ds](const Tensor& g, const Tensor& xv) -> Tensor {
    if (p == 0.0) return zeros_like(xv);
    if (p == 1.0) return sign(xv) * g;
    const Tensor n = norm(xv, p, ds, true);
    if (std::isinf(p)) {
      // Split evenly among the elements at the extreme |x| (as PyTorch).
      Tensor hit;
      {
        NoGradGuard no_grad;
        hit = abs(xv).eq(n);
      }
      return sign(xv) * hit * (g / sum(hit, ds, true));
    }
    const Tensor scale = where(n.eq(0.0), 0.0, g / (p == 2.0 ? n : pow(n, p - 1.0)));
    if (p == 2.0) return xv * scale;
    // sign(x) |x|^(p-1), 0 at x == 0 (where |x|^(p-1) is inf for p < 1).
    const Tensor a = abs(xv);
    return where(xv.eq(0.0), 0.0, sign(xv) * pow(a, p - 1.0)) * scale;
  });
}

Tensor logsumexp(const Tensor& x_in, const std::vector<std::int64_t>& dims_in, bool keepdim) {
  const Tensor x = detail::floating_input(x_in, "logsumexp");  // integers and bool: float32, as PyTorch
  const std::vector<std::size_t> dims = detail::normalize_dims(dims_in, x.dim(), "logsumexp");
  for (std::size_t d : dims) {
    check(x.size(static_cast<std::int64_t>(d)) > 0, "logsumexp", "cannot reduce the empty dim ", d,
          " of a tensor of shape ", x.shape());
  }
  // The max is a constant of the graph: the gradient exp(x - m) / sum(exp(x - m)) = softmax does
  // not depend on it. An infinite max is replaced by 0 (as PyTorch), so +-inf rows give +-inf.
  Tensor m;
  {
    NoGradGuard no_grad;
    m = extreme_keep(x, dims, true);
    m = where(abs(m).eq(std::numeric_limits<double>::infinity()), 0.0, m);
  }
  Tensor out = log(sum(exp(x - m), as_dims(dims), true)) + m;
  return reshape(out, reduced_shape(x, dims, keepdim));
}

Tensor all(const Tensor& x, const std::vector<std::int64_t>& dims, bool keepdim) {
  detail::check_defined(x, "all");
  NoGradGuard no_grad;
  // A count (int64, exact) of zeros is 0 exactly when all are nonzero. bool results, as PyTorch.
  const std::vector<std::size_t> d = detail::normalize_dims(dims, x.dim(), "all");
  return reshape(sum(logical_not(x), as_dims(d), true).eq(0), reduced_shape(x, d, keepdim));
}

Tensor any(const Tensor& x, const std::vector<std::int64_t>& dims, bool keepdim) {
  detail::check_defined(x, "any");
  NoGradGuard no_grad;
  const std::vector<std::size_t> d = detail::normalize_dims(dims, x.dim(), "any");
  return reshape(sum(x.to(Dtype::Bool), as_dims(d), true).gt(0), reduced_shape(x, d, keepdim));
}

Tensor Tensor::var(const std::vector<std::int64_t>& dims, std::int64_t correction, bool keepdim) const {
  return sorix::var(*this, dims, correction, keepdim);
}
Tensor Tensor::std(const std::vector<std::int64_t>& dims, std::int64_t correction, bool keepdim) const {
  return sorix::std(*this, dims, correction, keepdim);
}
Tensor Tensor::norm(double p, const std::vector<std::int64_t>& dims, bool keepdim) const {
  return sorix::norm(*this, p, dims, keepdim);
}
Tensor Tensor::logsumexp(const std::vector<std::int64_t>& dims, bool keepdim) const {
  return sorix::logsumexp(*this, dims, keepdim);
}
Tensor Tensor::all(const std::vector<std::int64_t>& dims, bool keepdim) const { return sorix::all(*this, dims, keepdim); }
Tensor Tensor::any(const std::vector<std::int64_t>& dims, bool keepdim) const { return sorix::any(*this, dims, keepdim); }

}  // namespace sorix
