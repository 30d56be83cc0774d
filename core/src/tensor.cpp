// The Tensor handle: construction, information, dtype conversion, data access.
#include "sorix/core/tensor.hpp"

#include <sstream>
#include <stdexcept>

#include "core/src/internal.hpp"
#include "sorix/autograd/engine.hpp"
#include "sorix/autograd/grad_mode.hpp"
#include "sorix/autograd/node.hpp"

namespace sorix {

namespace detail {

void throw_dtype_mismatch(const char* op, Dtype requested, Dtype actual) {
  throw std::invalid_argument(std::string(op) + ": requested " + dtype_name(requested) +
                              " data from a tensor of dtype " + dtype_name(actual));
}

void throw_undefined(const char* op) {
  throw std::invalid_argument(std::string(op) + ": the tensor is undefined");
}

void check_defined(const Tensor& t, const char* op) {
  if (!t.defined()) throw_undefined(op);
}

XShape to_xshape(const Shape& shape, const char* op) {
  XShape out(shape.size());
  for (std::size_t i = 0; i < shape.size(); ++i) {
    check(shape[i] >= 0, op, "negative size ", shape[i], " in shape ", shape);
    out[i] = static_cast<std::size_t>(shape[i]);
  }
  return out;
}

Shape to_shape(const XShape& shape) { return Shape(shape.begin(), shape.end()); }

std::size_t numel_of(const Shape& s) {
  std::size_t n = 1;
  for (auto d : s) n *= static_cast<std::size_t>(d);
  return n;
}

Tensor make_empty(Dtype dtype, const XShape& shape) {
  return visit_dtype(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    return make_empty<T>(shape);
  });
}

std::int64_t wrap_dim(std::int64_t dim, std::int64_t ndim, const char* op) {
  const std::int64_t lo = ndim == 0 ? -1 : -ndim;
  const std::int64_t hi = ndim == 0 ? 0 : ndim - 1;
  if (dim < lo || dim > hi) {
    throw std::out_of_range(error_message(op, "dimension ", dim, " out of range: expected a dim in [",
                                          lo, ", ", hi, "] for a tensor with ", ndim, " dims"));
  }
  return dim < 0 ? dim + (ndim == 0 ? 1 : ndim) : dim;
}

void check_inplace(const Tensor& t, const char* op) {
  check_defined(t, op);
  if (autograd::grad_enabled() && t.requires_grad() && t.is_leaf()) {
    throw std::runtime_error(error_message(
        op, "a leaf tensor that requires grad is being used in an in-place operation; "
            "wrap the update in a NoGradGuard or use detach()"));
  }
}

Tensor& assign_inplace(Tensor& self, Tensor result, const char* op) {
  check(result.shape() == self.shape(), op, "the result has shape ", result.shape(),
        " but the tensor changed in place has shape ", self.shape());
  if (result.dtype() != self.dtype()) {
    NoGradGuard no_grad;
    result = result.to(self.dtype());
  }
  if (result.impl()->storage.use_count() == 1) {
    self.impl()->storage->data = std::move(result.impl()->storage->data);
  } else {  // the result shares its storage (e.g. it is the source itself): copy, never steal
    self.impl()->storage->data = result.impl()->storage->data;
  }
  ++self.impl()->storage->version;
  if (result.grad_fn()) {
    self.impl()->grad_fn = result.grad_fn();
    self.impl()->requires_grad = true;
  }
  return self;
}

}  // namespace detail

namespace {
template <class T>
std::shared_ptr<TensorImpl> impl_from(xt::xarray<T>&& a, bool requires_grad) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>();
  impl->storage->data = std::move(a);
  if (requires_grad) {
    check(is_floating(dtype_of_v<T>), "Tensor", "only floating tensors can require grad, got int64");
    impl->requires_grad = true;
  }
  return impl;
}
}  // namespace

Tensor::Tensor(xt::xarray<float> a, bool requires_grad) : impl_(impl_from(std::move(a), requires_grad)) {}
Tensor::Tensor(xt::xarray<double> a, bool requires_grad) : impl_(impl_from(std::move(a), requires_grad)) {}
Tensor::Tensor(xt::xarray<std::int64_t> a, bool requires_grad)
    : impl_(impl_from(std::move(a), requires_grad)) {}

Dtype Tensor::dtype() const {
  detail::check_defined(*this, "dtype");
  return static_cast<Dtype>(impl_->storage->data.index());
}

Shape Tensor::shape() const {
  detail::check_defined(*this, "shape");
  return std::visit([](const auto& a) { return detail::shape_of(a.shape()); }, impl_->storage->data);
}

std::int64_t Tensor::dim() const {
  detail::check_defined(*this, "dim");
  return std::visit([](const auto& a) { return static_cast<std::int64_t>(a.dimension()); },
                    impl_->storage->data);
}

std::int64_t Tensor::size(std::int64_t d) const {
  const std::int64_t nd = dim();
  check<std::out_of_range>(nd > 0, "size", "a 0-dim tensor has no dimension ", d);
  return shape()[static_cast<std::size_t>(detail::wrap_dim(d, nd, "size"))];
}

std::int64_t Tensor::numel() const {
  detail::check_defined(*this, "numel");
  return std::visit([](const auto& a) { return static_cast<std::int64_t>(a.size()); },
                    impl_->storage->data);
}

bool Tensor::requires_grad() const { return impl_ && impl_->requires_grad; }

Tensor& Tensor::requires_grad_(bool on) {
  detail::check_defined(*this, "requires_grad_");
  check(!on || is_floating(dtype()), "requires_grad_",
        "only floating tensors can require grad, got ", dtype_name(dtype()));
  check(is_leaf() || on, "requires_grad_",
        "cannot turn off requires_grad of a non-leaf tensor; use detach()");
  impl_->requires_grad = on;
  return *this;
}

bool Tensor::is_leaf() const { return !impl_ || impl_->grad_fn == nullptr; }

Tensor Tensor::grad() const {
  if (!impl_ || !impl_->grad) return Tensor();
  return Tensor(impl_->grad);
}

void Tensor::set_grad(const Tensor& g) {
  detail::check_defined(*this, "set_grad");
  if (g.defined()) {
    check(g.shape() == shape(), "set_grad", "gradient shape ", g.shape(), " does not match tensor shape ",
          shape());
    check(g.dtype() == dtype(), "set_grad", "gradient dtype ", dtype_name(g.dtype()),
          " does not match tensor dtype ", dtype_name(dtype()));
  }
  impl_->grad = g.impl_ptr();
}

std::shared_ptr<autograd::Node> Tensor::grad_fn() const { return impl_ ? impl_->grad_fn : nullptr; }

std::uint64_t Tensor::version() const {
  detail::check_defined(*this, "version");
  return impl_->storage->version;
}

template <class T>
T Tensor::item() const {
  detail::check_defined(*this, "item");
  check(numel() == 1, "item", "expected a tensor with one element, got shape ", shape());
  return std::visit([](const auto& a) { return static_cast<T>(a.data()[0]); }, impl_->storage->data);
}
template float Tensor::item<float>() const;
template double Tensor::item<double>() const;
template std::int64_t Tensor::item<std::int64_t>() const;
template int Tensor::item<int>() const;

Tensor Tensor::detach() const {
  detail::check_defined(*this, "detach");
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = impl_->storage;
  return Tensor(impl);
}

void Tensor::backward(const Tensor& gradient, bool retain_graph, bool create_graph) const {
  detail::check_defined(*this, "backward");
  std::vector<Tensor> grads;
  if (gradient.defined()) grads.push_back(gradient);
  autograd::backward({*this}, grads, retain_graph, create_graph);
}

}  // namespace sorix
