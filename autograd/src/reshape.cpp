// reshape / view: same elements in row-major order under a new shape (one size may be -1).
// Every sorix tensor is contiguous and owns its storage, so both copy; gradient: reshape back.
#include "autograd/src/ops_internal.hpp"

namespace sorix {

namespace {
Shape infer_shape(const Tensor& x, const Shape& shape, const char* op) {
  Shape out = shape;
  std::int64_t known = 1;
  int infer = -1;
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (out[i] == -1) {
      check(infer < 0, op, "only one dimension can be -1, got shape ", shape);
      infer = static_cast<int>(i);
    } else {
      check(out[i] >= 0, op, "invalid size ", out[i], " in shape ", shape);
      known *= out[i];
    }
  }
  const std::int64_t n = x.numel();
  if (infer >= 0) {
    check(known != 0 && n % known == 0, op, "shape ", shape, " is invalid for input of size ", n,
          " (shape ", x.shape(), ")");
    out[static_cast<std::size_t>(infer)] = n / known;
  }
  check(detail::numel_of(out) == static_cast<std::size_t>(n), op, "shape ", shape, " is invalid for input of size ", n,
        " (shape ", x.shape(), ")");
  return out;
}

Tensor reshape_impl(const Tensor& x, const Shape& shape, const char* op) {
  detail::check_defined(x, op);
  const Shape target = infer_shape(x, shape, op);
  const detail::XShape xs = detail::to_xshape(target, op);
  Tensor out = detail::visit_dtype(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    auto a = xt::xarray<T>::from_shape(xs);
    const T* src = x.data_ptr<T>();
    T* dst = a.data();
    parallel::parallel_for(a.size(), parallel::kChunkSize,
                           [&](std::size_t b, std::size_t e) { std::copy(src + b, src + e, dst + b); });
    return Tensor(std::move(a));
  });
  if (autograd::needs_grad({&x})) {
    autograd::record(out, "ReshapeBackward", {x}, [xshape = x.shape()](const Tensor& g) -> std::vector<Tensor> {
      return {reshape(g, xshape)};
    });
  }
  return out;
}
}  // namespace

Tensor reshape(const Tensor& x, const Shape& shape) { return reshape_impl(x, shape, "reshape"); }
Tensor view(const Tensor& x, const Shape& shape) { return reshape_impl(x, shape, "view"); }
Tensor Tensor::reshape(const Shape& shape) const { return sorix::reshape(*this, shape); }
Tensor Tensor::view(const Shape& shape) const { return sorix::view(*this, shape); }

}  // namespace sorix
