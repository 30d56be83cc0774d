// Dtype conversion and clone (both differentiable; int64 results carry no gradient).
#include "sorix_autograd/ops_internal.hpp"

namespace sorix {

namespace {
template <class From, class To>
void convert(const From* src, To* dst, std::size_t n) {
  parallel::parallel_for(n, parallel::kChunkSize, [&](std::size_t b, std::size_t e) {
    for (std::size_t i = b; i < e; ++i) dst[i] = detail::convert_element<To>(src[i]);
  });
}
}  // namespace

Tensor Tensor::to(Dtype d) const {
  detail::check_defined(*this, "to");
  if (dtype() == d) return *this;
  const detail::XShape xs = detail::to_xshape(shape(), "to");
  const Tensor src = detail::contiguous_copy_if_needed(*this);
  Tensor out = detail::make_empty(d, xs);
  detail::visit_dtype(dtype(), [&](auto from_tag) {
    using From = typename decltype(from_tag)::type;
    detail::visit_dtype(d, [&](auto to_tag) {
      using To = typename decltype(to_tag)::type;
      convert(detail::flat<From>(src), detail::flat<To>(out), static_cast<std::size_t>(out.numel()));
    });
  });
  if (is_floating(d) && autograd::needs_grad({this})) {
    autograd::record(out, "ToBackward", {*this}, [from = dtype()](const Tensor& g) -> std::vector<Tensor> {
      return {g.to(from)};
    });
  }
  return out;
}

// clone() is the one copy that always makes fresh contiguous storage; contiguous() is clone()
// when a copy is needed. Both strided-copy through the kernel layer; the gradient passes through.
Tensor Tensor::clone() const {
  detail::check_defined(*this, "clone");
  Tensor out = detail::contiguous_copy(*this);
  if (autograd::needs_grad({this})) {
    autograd::record(out, "CloneBackward", {*this}, [](const Tensor& g) -> std::vector<Tensor> { return {g}; });
  }
  return out;
}

Tensor Tensor::contiguous() const {
  detail::check_defined(*this, "contiguous");
  return is_contiguous() ? *this : clone();
}

}  // namespace sorix
