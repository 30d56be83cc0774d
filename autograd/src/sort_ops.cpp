// sort, argsort, topk: a stable sort of every line along dim (core/internal/sorix_core/kernels/scan.hpp; a
// permutation, so exact at any thread count). The values carry the gradient through gather, whose
// backward scatters g back to the source positions.
#include "sorix_autograd/ops_internal.hpp"
#include "sorix_core/kernels/scan.hpp"

namespace sorix {
namespace {

// (values, indices) of the sorted lines; values without a graph.
std::pair<Tensor, Tensor> sort_lines(const Tensor& x, std::int64_t dim, bool descending, const char* op) {
  detail::check_defined(x, op);
  const Tensor xc = detail::contiguous_copy_if_needed(x);
  const detail::XShape xs = detail::to_xshape(x.shape(), op);
  if (xs.empty()) {  // a 0-dim tensor sorts to itself, index 0
    detail::wrap_dim(dim, 1, op);
    return {xc.detach().clone(), zeros({}, Dtype::Int64)};
  }
  const auto d = static_cast<std::size_t>(detail::wrap_dim(dim, x.dim(), op));
  Tensor values = detail::make_empty(x.dtype(), xs);
  Tensor indices = detail::make_empty<std::int64_t>(xs);
  detail::visit_dtype(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    kernels::scan::sort_axis(detail::flat<T>(xc), detail::flat<T>(values), detail::flat<std::int64_t>(indices),
                             detail::prod(xs, 0, d), xs[d], detail::prod(xs, d + 1, xs.size()), descending);
  });
  return {values, indices};
}

// The values at `indices` along dim: the kernel's copy, or (when x needs a gradient) gather's.
Tensor values_at(const Tensor& x, std::int64_t dim, const Tensor& indices, const Tensor& copied) {
  if (!autograd::needs_grad({&x})) return copied;
  return x.dim() == 0 ? x.clone() : gather(x, dim, indices);
}

}  // namespace

std::tuple<Tensor, Tensor> sort(const Tensor& x, std::int64_t dim, bool descending, bool /*stable*/) {
  auto [values, indices] = sort_lines(x, dim, descending, "sort");
  return {values_at(x, dim, indices, values), indices};
}

Tensor argsort(const Tensor& x, std::int64_t dim, bool descending) {
  return sort_lines(x, dim, descending, "argsort").second;
}

std::tuple<Tensor, Tensor> topk(const Tensor& x, std::int64_t k, std::int64_t dim, bool largest, bool /*sorted*/) {
  detail::check_defined(x, "topk");
  const std::int64_t size = x.dim() == 0 ? 1 : x.size(detail::wrap_dim(dim, x.dim(), "topk"));
  check(x.dim() > 0 || k == 1, "topk", "a 0-dim tensor has one element: k must be 1, got ", k);
  check(k >= 0 && k <= size, "topk", "k (", k, ") must be in [0, ", size, "], the size of dim ", dim, " of shape ",
        x.shape());
  auto [values, indices] = sort_lines(x, dim, largest, "topk");
  if (x.dim() > 0) {
    const std::int64_t d = detail::wrap_dim(dim, x.dim(), "topk");
    indices = narrow(indices, d, 0, k).contiguous();
    values = narrow(values, d, 0, k).contiguous();
  }
  return {values_at(x, dim, indices, values), indices};
}

std::tuple<Tensor, Tensor> Tensor::sort(std::int64_t dim, bool descending) const {
  return sorix::sort(*this, dim, descending);
}
Tensor Tensor::argsort(std::int64_t dim, bool descending) const { return sorix::argsort(*this, dim, descending); }
std::tuple<Tensor, Tensor> Tensor::topk(std::int64_t k, std::int64_t dim, bool largest, bool sorted) const {
  return sorix::topk(*this, k, dim, largest, sorted);
}

}  // namespace sorix
