// Logical ops and the float classification tests, all returning bool (no gradient, as PyTorch).
// Each input is first read as bool (nonzero is true, NaN is true: to(bool)); the broadcasting and
// the byte arithmetic are the binary kernels' (compute on uint8 0/1 values), so they are exact and
// the same at any thread count and on every CPU.
#include <cmath>

#include "sorix_autograd/ops_internal.hpp"

namespace sorix {

namespace {
Tensor as_bool(const Tensor& x, const char* op) {
  detail::check_defined(x, op);
  NoGradGuard no_grad;
  return x.to(Dtype::Bool);
}
}  // namespace

// bool + bool is "or" and bool * bool "and" (PyTorch's bool arithmetic); xor is "not equal".
Tensor logical_and(const Tensor& a, const Tensor& b) { return mul(as_bool(a, "logical_and"), as_bool(b, "logical_and")); }
Tensor logical_or(const Tensor& a, const Tensor& b) { return add(as_bool(a, "logical_or"), as_bool(b, "logical_or")); }
Tensor logical_xor(const Tensor& a, const Tensor& b) { return ne(as_bool(a, "logical_xor"), as_bool(b, "logical_xor")); }
Tensor logical_not(const Tensor& x) { return as_bool(x, "logical_not").eq(false); }

// NaN is the one value not equal to itself; +-inf the values whose difference with themselves is
// NaN while they are not NaN. Integers and bool are never NaN or infinite (as PyTorch).
Tensor isnan(const Tensor& x) {
  detail::check_defined(x, "isnan");
  if (!is_floating(x.dtype())) return zeros(x.shape(), Dtype::Bool);
  NoGradGuard no_grad;
  return ne(x, x);
}

Tensor isfinite(const Tensor& x) {
  detail::check_defined(x, "isfinite");
  if (!is_floating(x.dtype())) return ones(x.shape(), Dtype::Bool);
  NoGradGuard no_grad;
  return (x - x).eq(0);  // x - x is 0 for finite x, NaN for +-inf and NaN
}

Tensor isinf(const Tensor& x) {
  detail::check_defined(x, "isinf");
  if (!is_floating(x.dtype())) return zeros(x.shape(), Dtype::Bool);
  NoGradGuard no_grad;
  return logical_and(logical_not(isfinite(x)), eq(x, x));
}

Tensor Tensor::logical_not() const { return sorix::logical_not(*this); }
Tensor Tensor::logical_and(const Tensor& o) const { return sorix::logical_and(*this, o); }
Tensor Tensor::logical_or(const Tensor& o) const { return sorix::logical_or(*this, o); }
Tensor Tensor::logical_xor(const Tensor& o) const { return sorix::logical_xor(*this, o); }
Tensor Tensor::isnan() const { return sorix::isnan(*this); }
Tensor Tensor::isinf() const { return sorix::isinf(*this); }
Tensor Tensor::isfinite() const { return sorix::isfinite(*this); }

}  // namespace sorix
