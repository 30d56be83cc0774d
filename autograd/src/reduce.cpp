// Sum and mean (all elements or over dims) and sum_to, the gradient of broadcasting.
// Deterministic: see core/internal/sorix_core/kernels/reduce.hpp.
#include <algorithm>
#include <limits>

#include "sorix_autograd/ops_internal.hpp"
#include "sorix_core/kernels/reduce.hpp"

namespace sorix {

namespace detail {
std::vector<std::size_t> normalize_dims(const std::vector<std::int64_t>& dims, std::int64_t ndim, const char* op) {
  std::vector<std::size_t> out;
  if (dims.empty()) {
    for (std::int64_t d = 0; d < ndim; ++d) out.push_back(static_cast<std::size_t>(d));
    return out;
  }
  for (std::int64_t d : dims) out.push_back(static_cast<std::size_t>(wrap_dim(d, ndim, op)));
  std::sort(out.begin(), out.end());
  for (std::size_t i = 1; i < out.size(); ++i) {
    check(out[i] != out[i - 1], op, "dim ", out[i], " appears more than once in ", dims);
  }
  if (ndim == 0) out.clear();
  return out;
}
}  // namespace detail

namespace {

// Shape after reducing `dims` (sorted), with or without the reduced dims kept as 1.
detail::XShape reduced_shape(const detail::XShape& s, const std::vector<std::size_t>& dims, bool keepdim) {
  detail::XShape out;
  for (std::size_t k = 0; k < s.size(); ++k) {
    const bool reduced = std::binary_search(dims.begin(), dims.end(), k);
    if (!reduced) out.push_back(s[k]);
    else if (keepdim) out.push_back(1);
  }
  return out;
}

// Forward only: sum over `dims` (sorted), keepdim shape. Adjacent reduced dims form one group;
// groups are reduced one after another from the last, each as [outer, r, inner].
Tensor sum_dims_forward(const Tensor& x, const std::vector<std::size_t>& dims) {
  detail::XShape shape = detail::to_xshape(x.shape(), "sum");
  Tensor cur = x;
  std::size_t k = dims.size();
  while (k > 0) {
    std::size_t hi = dims[k - 1], lo = hi;
    --k;
    while (k > 0 && dims[k - 1] + 1 == lo) lo = dims[--k];
    const std::size_t outer = detail::prod(shape, 0, lo), r = detail::prod(shape, lo, hi + 1),
                      inner = detail::prod(shape, hi + 1, shape.size());
    for (std::size_t d = lo; d <= hi; ++d) shape[d] = 1;
    Tensor next = detail::make_empty(x.dtype(), shape);
    detail::visit_numeric(x.dtype(), "sum", [&](auto tag) {
      using T = typename decltype(tag)::type;
      if (r == 0) {
        std::fill(detail::flat<T>(next), detail::flat<T>(next) + next.numel(), T(0));
      } else {
        kernels::sum_axis(detail::flat<T>(cur), detail::flat<T>(next), outer, r, inner);
      }
    });
    cur = next;
  }
  return cur.defined() && cur.is_same(x) ? x.clone() : cur;
}

Tensor sum_impl(const Tensor& x, const std::vector<std::int64_t>& dims_in, bool keepdim, bool all) {
  detail::check_defined(x, "sum");
  const std::int64_t nd = x.dim();
  const std::vector<std::size_t> dims = all ? detail::normalize_dims({}, nd, "sum") : detail::normalize_dims(dims_in, nd, "sum");
  const detail::XShape xs = detail::to_xshape(x.shape(), "sum");
  const detail::XShape out_shape = reduced_shape(xs, dims, keepdim);
  Tensor out;
  if (all || dims.size() == xs.size()) {
    out = detail::make_empty(x.dtype(), out_shape);
    detail::visit_numeric(x.dtype(), "sum", [&](auto tag) {
      using T = typename decltype(tag)::type;
      detail::flat<T>(out)[0] = kernels::sum_all(detail::flat<T>(x), static_cast<std::size_t>(x.numel()));
    });
  } else {
    out = sum_dims_forward(x, dims);
    if (!keepdim) {
      const Shape s = detail::to_shape(out_shape);
      out.impl()->set_geometry(s, detail::contiguous_strides(s), 0);  // drop the reduced dims
    }
  }
  if (autograd::needs_grad({&x})) {
    detail::XShape keep = reduced_shape(xs, dims, true);
    autograd::record(out, "SumBackward", {x},
                     [xshape = x.shape(), keep = detail::to_shape(keep)](const Tensor& g) -> std::vector<Tensor> {
                       return {expand(reshape(g, keep), xshape)};
                     });
  }
  return out;
}

std::size_t reduced_count(const Tensor& x, const std::vector<std::int64_t>& dims_in, bool all) {
  const auto xs = detail::to_xshape(x.shape(), "mean");
  if (all) return static_cast<std::size_t>(x.numel());
  std::size_t n = 1;
  for (std::size_t d : detail::normalize_dims(dims_in, x.dim(), "mean")) n *= xs[d];
  return n;
}

Tensor mean_impl(const Tensor& x, const std::vector<std::int64_t>& dims, bool keepdim, bool all) {
  detail::check_defined(x, "mean");
  // As PyTorch 1.13 ("mean(): could not infer output dtype"): no silent choice of a float dtype.
  check(is_floating(x.dtype()), "mean", "expected a floating tensor (float32 or float64), got ", dtype_name(x.dtype()),
        " (as PyTorch); convert first, e.g. x.to(kFloat32)");
  const std::size_t n = reduced_count(x, dims, all);
  Tensor s = sum_impl(x, dims, keepdim, all);
  return n == 0 ? s * std::numeric_limits<double>::quiet_NaN() : s / static_cast<double>(n);
}

}  // namespace

namespace {
// As PyTorch, bool and integer tensors sum to int64 (a count of trues, no uint8 overflow).
Tensor sum_input(const Tensor& x) {
  detail::check_defined(x, "sum");
  return (is_integral(x.dtype(), true) ? x.to(Dtype::Int64) : x).contiguous();
}
}  // namespace

Tensor sum(const Tensor& x) { return sum_impl(sum_input(x), {}, false, true); }
Tensor sum(const Tensor& x, const std::vector<std::int64_t>& dims, bool keepdim) {
  return sum_impl(sum_input(x), dims, keepdim, dims.empty());
}
Tensor mean(const Tensor& x) { return mean_impl(detail::contiguous_input(x, "mean"), {}, false, true); }
Tensor mean(const Tensor& x, const std::vector<std::int64_t>& dims, bool keepdim) {
  return mean_impl(detail::contiguous_input(x, "mean"), dims, keepdim, dims.empty());
}

Tensor sum_to(const Tensor& g, const Shape& shape) {
  const Shape gs = g.shape();
  if (gs == shape) return g;
  check(gs.size() >= shape.size(), "sum_to", "cannot sum shape ", gs, " to the larger rank shape ", shape);
  const std::size_t lead = gs.size() - shape.size();
  std::vector<std::int64_t> dims;
  for (std::size_t k = 0; k < gs.size(); ++k) {
    if (k < lead || (shape[k - lead] == 1 && gs[k] != 1)) dims.push_back(static_cast<std::int64_t>(k));
    else check(shape[k - lead] == gs[k] || shape[k - lead] == 1, "sum_to", "shape ", gs, " does not broadcast from ", shape);
  }
  Tensor s = dims.empty() ? g : sum(g, dims, true);
  return reshape(s, shape);
}

Tensor Tensor::sum() const { return sorix::sum(*this); }
Tensor Tensor::sum(const std::vector<std::int64_t>& dims, bool keepdim) const { return sorix::sum(*this, dims, keepdim); }
Tensor Tensor::mean() const { return sorix::mean(*this); }
Tensor Tensor::mean(const std::vector<std::int64_t>& dims, bool keepdim) const { return sorix::mean(*this, dims, keepdim); }

}  // namespace sorix
