// The Tensor handle: construction, information, dtype conversion, data access.
#include "sorix/core/tensor.hpp"

#include <algorithm>
#include <sstream>
#include <stdexcept>

#include "sorix_core/internal.hpp"
#include "sorix_core/kernels/strided.hpp"
#include "sorix/core/grad_mode.hpp"

namespace sorix {

namespace detail {

void throw_dtype_mismatch(const char* op, Dtype requested, Dtype actual) {
  throw std::invalid_argument(std::string(op) + ": requested " + dtype_name(requested) +
                              " data from a tensor of dtype " + dtype_name(actual));
}

void throw_not_contiguous(const Tensor& t) {
  throw std::logic_error(error_message("sorix internal error", "a kernel was handed a non-contiguous tensor (shape ",
                                       t.shape(), ", strides ", t.stride(),
                                       "); the op should have called contiguous() first. Please report this."));
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
  check_numel(shape, op);
  return out;
}

std::int64_t check_numel(const Shape& shape, const char* op) {
  // Element counts are multiplied with an overflow check: a wrapped product would make a small
  // buffer for a huge shape. 2^60 elements of 8 bytes is the most a byte count can hold.
  // A zero dim makes the tensor empty, but the strides are still products of the other dims
  // (xtensor computes them in signed arithmetic), so those must fit too: [0, 2^40, 2^40] is refused.
  constexpr std::int64_t kMaxElements = std::int64_t{1} << 60;
  std::int64_t n = 1;
  bool overflow = false, has_zero = false;
  for (std::int64_t d : shape) {
    if (d == 0) has_zero = true;
    overflow = overflow || __builtin_mul_overflow(n, std::max<std::int64_t>(d, 1), &n) || n > kMaxElements;
  }
  check(!overflow, op, "shape ", shape,
        " has more than 2^60 elements, not counting zero dims (the element count overflows)");
  return has_zero ? 0 : n;
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


std::size_t span_of(const TensorImpl& impl) {
  if (impl.numel == 0) return 0;
  std::size_t span = 1;
  for (std::size_t d = 0; d < impl.sizes.size(); ++d) {
    span += static_cast<std::size_t>(impl.sizes[d] - 1) * static_cast<std::size_t>(impl.strides[d]);
  }
  return span;
}

Shape contiguous_strides(const Shape& sizes) {
  Shape strides(sizes.size(), 1);
  // Unsigned: only an empty tensor (whose strides address nothing) can have a product that
  // overflows, and there it must not be undefined behaviour.
  for (std::size_t d = sizes.size(); d-- > 1;) {
    strides[d - 1] = static_cast<std::int64_t>(static_cast<std::uint64_t>(strides[d]) *
                                               static_cast<std::uint64_t>(std::max<std::int64_t>(sizes[d], 1)));
  }
  return strides;
}

bool has_internal_overlap(const Tensor& t) {
  return !t.impl()->contiguous && has_internal_overlap(t.impl()->sizes, t.impl()->strides);
}

bool has_internal_overlap(const Shape& sizes, const Shape& strides) {
  // Conservative, as PyTorch's check: a dim of size > 1 and stride 0 always overlaps; otherwise,
  // sorted by stride, each dim must step past everything the smaller dims span.
  std::vector<std::pair<std::int64_t, std::int64_t>> dims;  // (stride, size)
  for (std::size_t d = 0; d < sizes.size(); ++d) {
    if (sizes[d] == 1) continue;
    if (sizes[d] == 0) return false;
    if (strides[d] == 0) return true;
    dims.emplace_back(strides[d], sizes[d]);
  }
  std::sort(dims.begin(), dims.end());
  std::int64_t span = 1;
  for (const auto& [stride, size] : dims) {
    if (stride < span) return true;
    span = stride * (size - 1) + span;
  }
  return false;
}

namespace {
kernels::StridedPair strided_pair(const Tensor& src, const Tensor& dst) {
  kernels::StridedPair p;
  const TensorImpl& s = *src.impl();
  const TensorImpl& d = *dst.impl();
  for (std::size_t k = 0; k < d.sizes.size(); ++k) {
    p.sizes.push_back(static_cast<std::size_t>(d.sizes[k]));
    p.src_strides.push_back(static_cast<std::size_t>(s.strides[k]));
    p.dst_strides.push_back(static_cast<std::size_t>(d.strides[k]));
  }
  return p;
}
}  // namespace

void copy_into(const Tensor& src, const Tensor& dst) {
  visit_dtype(dst.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    kernels::copy_strided(src.data_ptr<T>(), const_cast<Tensor&>(dst).data_ptr<T>(), strided_pair(src, dst));
  });
}

Tensor contiguous_copy(const Tensor& t) {
  Tensor out = make_empty(t.dtype(), to_xshape(t.shape(), "contiguous"));
  copy_into(t, out);
  return out;
}

void check_writable(const Tensor& t, const char* op) {
  check(!has_internal_overlap(t), op,
        "more than one element of the written-to tensor (shape ", t.shape(), ", strides ", t.stride(),
        ") refers to a single memory location (an expanded view); clone() it before writing");
}

void check_inplace(const Tensor& t, const char* op) {
  check_defined(t, op);
  if (autograd::grad_enabled() && t.requires_grad() && t.is_leaf()) {
    throw std::runtime_error(error_message(
        op, "a leaf tensor that requires grad is being used in an in-place operation; "
            "wrap the update in a NoGradGuard or use detach()"));
  }
  const TensorImpl& impl = *t.impl();
  if (autograd::grad_enabled() && impl.view_base && impl.view_base->requires_grad && !impl.view_base->grad_fn) {
    throw std::runtime_error(error_message(
        op, "a view of a leaf tensor that requires grad is being used in an in-place operation; "
            "wrap the update in a NoGradGuard, or change a clone() of the leaf"));
  }
  if (autograd::grad_enabled() && impl.view_base && impl.view_base->requires_grad && !t.requires_grad()) {
    throw std::runtime_error(error_message(
        op, "a view made in no-grad mode of a tensor that requires grad is being changed in place with grad "
            "mode on (as PyTorch, refused: its gradient would be wrong); make the view with grad mode on, or "
            "change it under a NoGradGuard"));
  }
  check_writable(t, op);
}

void check_inplace_cast(Dtype result, Dtype self, const char* op) {
  if (!can_cast(result, self)) {
    throw std::invalid_argument(std::string(op) + ": result type " + dtype_name(result) +
                                " can't be cast to the desired output type " + dtype_name(self) +
                                " (as PyTorch: an in-place op may not change the category of the tensor's dtype)");
  }
}

Tensor& assign_inplace(Tensor& self, Tensor result, const char* op) {
  check(result.shape() == self.shape(), op, "the result has shape ", result.shape(),
        " but the tensor changed in place has shape ", self.shape());
  check_writable(self, op);
  if (result.dtype() != self.dtype()) {
    check_inplace_cast(result.dtype(), self.dtype(), op);
    result = result.to(self.dtype());
  }
  TensorImpl& impl = *self.impl();
  const bool track = autograd::grad_enabled() && (result.requires_grad() || self.requires_grad() ||
                                                  (impl.view_base && impl.view_base->requires_grad));
  if (track && impl.untracked_view) {
    throw std::runtime_error(error_message(
        op, "in-place operation with autograd on a view of a non-contiguous tensor that is not "
            "itself a view (made by detach() or as_strided): call contiguous() on that tensor first"));
  }
  Storage& storage = *impl.storage;
  // Always written into the existing memory (never a buffer swap, as PyTorch): pointers and
  // data<T>() adaptors taken before an in-place op stay valid.
  if (result.impl()->storage == impl.storage) {
    copy_into(contiguous_copy(result), self);  // source and destination may overlap
  } else {
    copy_into(result, self);
  }
  ++storage.version;
  if (track) autograd::record_inplace(self, result);
  return self;
}

}  // namespace detail

void TensorImpl::set_geometry(Shape new_sizes, Shape new_strides, std::int64_t new_offset) {
  sizes = std::move(new_sizes);
  strides = std::move(new_strides);
  offset = new_offset;
  numel = detail::check_numel(sizes, "view");
  contiguous = true;
  std::int64_t expected = 1;
  for (std::size_t d = sizes.size(); d-- > 0;) {
    if (sizes[d] == 1) continue;
    if (sizes[d] == 0) {
      contiguous = true;
      break;
    }
    if (strides[d] != expected) contiguous = false;
    expected *= sizes[d];
  }
}

namespace {
template <class T>
std::shared_ptr<TensorImpl> impl_from(xt::xarray<T>&& a, bool requires_grad) {
  auto impl = std::make_shared<TensorImpl>();
  Shape sizes(a.shape().begin(), a.shape().end());
  impl->storage = std::make_shared<Storage>();
  impl->storage->data = std::move(a.storage());
  impl->set_geometry(sizes, detail::contiguous_strides(sizes), 0);
  if (requires_grad) {
    check(is_floating(dtype_of_v<T>), "Tensor", "only floating tensors can require grad, got ",
          dtype_name(dtype_of_v<T>));
    impl->requires_grad = true;
  }
  return impl;
}
}  // namespace

Tensor::Tensor(xt::xarray<float> a, bool requires_grad) : impl_(impl_from(std::move(a), requires_grad)) {}
Tensor::Tensor(xt::xarray<double> a, bool requires_grad) : impl_(impl_from(std::move(a), requires_grad)) {}
Tensor::Tensor(xt::xarray<std::int64_t> a, bool requires_grad)
    : impl_(impl_from(std::move(a), requires_grad)) {}
Tensor::Tensor(xt::xarray<bool> a, bool requires_grad) : impl_(impl_from(std::move(a), requires_grad)) {}
Tensor::Tensor(xt::xarray<std::uint8_t> a, bool requires_grad) : impl_(impl_from(std::move(a), requires_grad)) {}
Tensor::Tensor(xt::xarray<std::int32_t> a, bool requires_grad) : impl_(impl_from(std::move(a), requires_grad)) {}

Dtype Tensor::dtype() const {
  detail::check_defined(*this, "dtype");
  return static_cast<Dtype>(impl_->storage->data.index());
}

Shape Tensor::shape() const {
  detail::check_defined(*this, "shape");
  return impl_->sizes;
}

std::int64_t Tensor::dim() const {
  detail::check_defined(*this, "dim");
  return static_cast<std::int64_t>(impl_->sizes.size());
}

Shape Tensor::stride() const {
  detail::check_defined(*this, "stride");
  return impl_->strides;
}

std::int64_t Tensor::stride(std::int64_t d) const {
  const std::int64_t nd = dim();
  check<std::out_of_range>(nd > 0, "stride", "a 0-dim tensor has no dimension ", d);
  return impl_->strides[static_cast<std::size_t>(detail::wrap_dim(d, nd, "stride"))];
}

std::int64_t Tensor::storage_offset() const {
  detail::check_defined(*this, "storage_offset");
  return impl_->offset;
}

bool Tensor::is_contiguous() const {
  detail::check_defined(*this, "is_contiguous");
  return impl_->contiguous;
}

bool Tensor::is_view() const {
  detail::check_defined(*this, "is_view");
  return impl_->view_base != nullptr || impl_->untracked_view;
}

std::int64_t Tensor::size(std::int64_t d) const {
  const std::int64_t nd = dim();
  check<std::out_of_range>(nd > 0, "size", "a 0-dim tensor has no dimension ", d);
  return shape()[static_cast<std::size_t>(detail::wrap_dim(d, nd, "size"))];
}

std::int64_t Tensor::numel() const {
  detail::check_defined(*this, "numel");
  return impl_->numel;
}

bool Tensor::requires_grad() const {
  if (!impl_) return false;
  autograd::refresh_view(*impl_);
  return impl_->requires_grad;
}

Tensor& Tensor::requires_grad_(bool on) {
  detail::check_defined(*this, "requires_grad_");
  check(!on || is_floating(dtype()), "requires_grad_",
        "only floating tensors can require grad, got ", dtype_name(dtype()));
  check(is_leaf() || on, "requires_grad_",
        "cannot turn off requires_grad of a non-leaf tensor; use detach()");
  impl_->requires_grad = on;
  return *this;
}

bool Tensor::is_leaf() const { return grad_fn() == nullptr; }

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

std::shared_ptr<autograd::Node> Tensor::grad_fn() const {
  if (!impl_) return nullptr;
  autograd::refresh_view(*impl_);
  return impl_->grad_fn;
}

std::uint64_t Tensor::version() const {
  detail::check_defined(*this, "version");
  return impl_->storage->version;
}

template <class T>
T Tensor::item() const {
  detail::check_defined(*this, "item");
  check(numel() == 1, "item", "expected a tensor with one element, got shape ", shape());
  return std::visit([&](const auto& a) { return static_cast<T>(a.data()[impl_->offset]); }, impl_->storage->data);
}
template float Tensor::item<float>() const;
template double Tensor::item<double>() const;
template std::int64_t Tensor::item<std::int64_t>() const;
template int Tensor::item<int>() const;
template bool Tensor::item<bool>() const;
template std::uint8_t Tensor::item<std::uint8_t>() const;

Tensor Tensor::detach() const {
  detail::check_defined(*this, "detach");
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = impl_->storage;
  impl->set_geometry(impl_->sizes, impl_->strides, impl_->offset);
  return Tensor(impl);
}

}  // namespace sorix
