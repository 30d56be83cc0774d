// max / min (differentiable) and argmax / argmin (int64, no gradient), over all elements or
// along one dim. Ties keep the first occurrence and NaN counts as the extreme (both as PyTorch),
// so a scan only replaces its current best by a strictly better element.
//
// Determinism: the dim forms give each output element to exactly one task (fixed chunks of
// outputs, or of [outer, column-block] tiles); the all-element forms reduce fixed chunks and
// combine the per-chunk (value, index) partials in chunk order, keeping the earlier on ties.
// A selection involves no arithmetic, so the result is exact in any case.
#include <algorithm>
#include <cmath>
#include <limits>

#include "sorix_autograd/ops_internal.hpp"
#include "sorix_core/kernels/minmax.hpp"
#include "sorix_core/kernels/reduce.hpp"

namespace sorix {
namespace {

using Index = std::int64_t;
using kernels::minmax::Best;
using kernels::minmax::better;
using kernels::minmax::scan_all;
using kernels::minmax::scan_axis;

void check_nonempty(const Tensor& x, const char* op) {
  check(x.numel() > 0, op, "expected a non-empty tensor, got shape ", x.shape(),
        " (the reduction of zero elements has no identity; reduce along a non-empty dim instead)");
}

// ---- all elements ----------------------------------------------------------------------------

template <bool IsMax>
Tensor extreme_all(const Tensor& x, const char* op, const char* backward_name) {
  detail::check_defined(x, op);
  check_nonempty(x, op);
  Tensor out = detail::visit_dtype(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const Best<T> b = scan_all<IsMax>(detail::flat<T>(x), static_cast<std::size_t>(x.numel()));
    Tensor o = detail::make_empty<T>({});
    detail::flat<T>(o)[0] = b.value;
    return o;
  });
  if (autograd::needs_grad({&x})) {
    // The gradient is split evenly among all elements equal to the result (NaN: among the NaNs),
    // as PyTorch's max()/min() of all elements. The weights are a constant of the backward, so
    // g * weights stays differentiable in g under create_graph.
    autograd::record(out, backward_name, {x},
                     [in = autograd::SavedTensor(x), res = autograd::SavedTensor::output(out), op](const Tensor& g) {
                       Tensor xv = in.unpack(op), rv = res.unpack(op);
                       Tensor w = detail::visit_floating(xv.dtype(), op, [&](auto tag) {
                         using T = typename decltype(tag)::type;
                         const T r = detail::flat<T>(rv)[0];
                         const T* p = detail::flat<T>(xv);
                         const std::size_t n = static_cast<std::size_t>(xv.numel());
                         auto hit = [r](T v) { return std::isnan(r) ? std::isnan(v) : v == r; };
                         const std::size_t count = parallel::parallel_reduce<std::size_t>(
                             n, parallel::kChunkSize, 0,
                             [&](std::size_t b, std::size_t e) {
                               std::size_t c = 0;
                               for (std::size_t i = b; i < e; ++i) c += hit(p[i]) ? 1 : 0;
                               return c;
                             },
                             [](std::size_t a, std::size_t b) { return a + b; });
                         const T share = T(1) / static_cast<T>(count);
                         Tensor wt = detail::make_empty<T>(detail::to_xshape(xv.shape(), op));
                         T* q = detail::flat<T>(wt);
                         parallel::parallel_for(n, parallel::kChunkSize, [&](std::size_t b, std::size_t e) {
                           for (std::size_t i = b; i < e; ++i) q[i] = hit(p[i]) ? share : T(0);
                         });
                         return wt;
                       });
                       return std::vector<Tensor>{g * w};
                     });
  }
  return out;
}

template <bool IsMax>
Tensor arg_all(const Tensor& x, const char* op) {
  detail::check_defined(x, op);
  check_nonempty(x, op);
  return detail::visit_dtype(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const Best<T> b = scan_all<IsMax>(detail::flat<T>(x), static_cast<std::size_t>(x.numel()));
    Tensor o = detail::make_empty<Index>({});
    detail::flat<Index>(o)[0] = static_cast<Index>(b.index);
    return o;
  });
}

// ---- along one dim ---------------------------------------------------------------------------

struct DimPlan {
  std::size_t d = 0, outer = 1, r = 1, inner = 1;
  detail::XShape keep_shape, out_shape;  // with the reduced dim as 1, and as requested
};

DimPlan dim_plan(const Tensor& x, std::int64_t dim, bool keepdim, const char* op) {
  DimPlan p;
  const detail::XShape xs = detail::to_xshape(x.shape(), op);
  p.d = static_cast<std::size_t>(detail::wrap_dim(dim, x.dim(), op));
  if (xs.empty()) return p;  // a 0-dim tensor reduces to itself (as PyTorch)
  check(xs[p.d] > 0, op, "cannot reduce the empty dim ", dim, " of a tensor of shape ", x.shape(),
        " (expected a dim of size >= 1)");
  p.outer = detail::prod(xs, 0, p.d);
  p.r = xs[p.d];
  p.inner = detail::prod(xs, p.d + 1, xs.size());
  p.keep_shape = xs;
  p.keep_shape[p.d] = 1;
  p.out_shape = xs;
  if (keepdim) p.out_shape[p.d] = 1;
  else p.out_shape.erase(p.out_shape.begin() + static_cast<std::ptrdiff_t>(p.d));
  return p;
}

// Values (x's dtype) and int64 indices along the dim, both in p.out_shape.
template <bool IsMax>
std::pair<Tensor, Tensor> extreme_dim(const Tensor& x, const DimPlan& p) {
  return detail::visit_dtype(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    Tensor vals = detail::make_empty<T>(p.out_shape);
    Tensor idx = detail::make_empty<Index>(p.out_shape);
    if (p.outer * p.inner > 0) {
      scan_axis<IsMax>(detail::flat<T>(x), detail::flat<T>(vals), detail::flat<Index>(idx), p.outer, p.r, p.inner);
    }
    return std::make_pair(vals, idx);
  });
}

// (values, indices); the values carry the gradient.
template <bool IsMax>
std::pair<Tensor, Tensor> extreme_along(const Tensor& x, std::int64_t dim, bool keepdim, const char* op,
                                        const char* backward_name) {
  detail::check_defined(x, op);
  const DimPlan p = dim_plan(x, dim, keepdim, op);
  std::pair<Tensor, Tensor> res = extreme_dim<IsMax>(x, p);
  Tensor out = res.first;
  if (autograd::needs_grad({&x})) {
    // The gradient goes to the element the index picked (first occurrence), as PyTorch: a
    // one-hot weight built from the saved indices, a constant of the backward (so g * weight is
    // differentiable in g under create_graph). The returned indices are a copy, so idx is not versioned.
    autograd::record(out, backward_name, {x},
                     [idx = res.second, p, xshape = x.shape(), dtype = x.dtype(), op](const Tensor& g) {
                       Tensor onehot = zeros(xshape, dtype);
                       detail::visit_floating(dtype, op, [&](auto tag) {
                         using T = typename decltype(tag)::type;
                         T* q = detail::flat<T>(onehot);
                         const Index* ix = detail::flat<Index>(idx);
                         parallel::parallel_for(p.outer * p.inner, parallel::kChunkSize, [&](std::size_t b, std::size_t e) {
                           for (std::size_t t = b; t < e; ++t) {
                             const std::size_t o = t / p.inner, i = t % p.inner;
                             q[(o * p.r + static_cast<std::size_t>(ix[t])) * p.inner + i] = T(1);
                           }
                         });
                       });
                       Tensor gk = reshape(g, detail::to_shape(p.keep_shape));
                       return std::vector<Tensor>{expand(gk, xshape) * onehot};
                     });
  }
  // The backward keeps its own indices: the caller may change the returned ones in place.
  return {out, out.requires_grad() ? res.second.clone() : res.second};
}

// Values only over several dims (amax/amin): one exact selection per dim (the result does not
// depend on the order), the gradient split evenly among the elements equal to the result.
template <bool IsMax>
Tensor extreme_dims(const Tensor& x_in, const std::vector<std::int64_t>& dims_in, bool keepdim, const char* op,
                    const char* node) {
  const Tensor x = detail::contiguous_input(x_in, op);
  const std::vector<std::size_t> dims = detail::normalize_dims(dims_in, x.dim(), op);
  Tensor keep;
  {
    NoGradGuard no_grad;
    keep = x.clone();
    for (std::size_t d : dims) keep = extreme_along<IsMax>(keep, static_cast<std::int64_t>(d), true, op, node).first;
  }
  Shape out_shape;
  for (std::size_t k = 0; k < static_cast<std::size_t>(x.dim()); ++k) {
    if (keepdim || !std::binary_search(dims.begin(), dims.end(), k)) out_shape.push_back(keep.size(static_cast<std::int64_t>(k)));
  }
  Tensor out = reshape(keep, out_shape).clone();  // its own storage: the caller may change it in place
  if (autograd::needs_grad({&x})) {
    std::vector<std::int64_t> ds(dims.begin(), dims.end());
    autograd::record(out, node, {x}, [in = autograd::SavedTensor(x), keep, ds, op](const Tensor& g) {
      Tensor hit;
      {
        NoGradGuard no_grad;
        const Tensor xv = in.unpack(op);
        hit = logical_or(xv.eq(keep), logical_and(isnan(xv), isnan(keep)));
      }
      const Tensor w = hit.to(g.dtype()) / sum(hit, ds, true);  // a constant of the backward
      return std::vector<Tensor>{reshape(g, keep.shape()) * w};
    });
  }
  return out;
}

template <bool IsMax>
Tensor arg_along(const Tensor& x, std::int64_t dim, bool keepdim, const char* op) {
  detail::check_defined(x, op);
  return extreme_dim<IsMax>(x, dim_plan(x, dim, keepdim, op)).second;
}

}  // namespace

Tensor max(const Tensor& x) { return extreme_all<true>(detail::contiguous_input(x, "max"), "max", "MaxBackward"); }
Tensor min(const Tensor& x) { return extreme_all<false>(detail::contiguous_input(x, "min"), "min", "MinBackward"); }
std::tuple<Tensor, Tensor> max(const Tensor& x, std::int64_t dim, bool keepdim) {
  auto r = extreme_along<true>(detail::contiguous_input(x, "max"), dim, keepdim, "max", "MaxBackward");
  return {r.first, r.second};
}
std::tuple<Tensor, Tensor> min(const Tensor& x, std::int64_t dim, bool keepdim) {
  auto r = extreme_along<false>(detail::contiguous_input(x, "min"), dim, keepdim, "min", "MinBackward");
  return {r.first, r.second};
}
Tensor amax(const Tensor& x, const std::vector<std::int64_t>& dims, bool keepdim) {
  return extreme_dims<true>(x, dims, keepdim, "amax", "AmaxBackward");
}
Tensor amin(const Tensor& x, const std::vector<std::int64_t>& dims, bool keepdim) {
  return extreme_dims<false>(x, dims, keepdim, "amin", "AminBackward");
}
Tensor argmax(const Tensor& x) { return arg_all<true>(detail::contiguous_input(x, "argmax"), "argmax"); }
Tensor argmin(const Tensor& x) { return arg_all<false>(detail::contiguous_input(x, "argmin"), "argmin"); }
Tensor argmax(const Tensor& x, std::int64_t dim, bool keepdim) { return arg_along<true>(detail::contiguous_input(x, "argmax"), dim, keepdim, "argmax"); }
Tensor argmin(const Tensor& x, std::int64_t dim, bool keepdim) { return arg_along<false>(detail::contiguous_input(x, "argmin"), dim, keepdim, "argmin"); }

Tensor Tensor::max() const { return sorix::max(*this); }
std::tuple<Tensor, Tensor> Tensor::max(std::int64_t dim, bool keepdim) const { return sorix::max(*this, dim, keepdim); }
Tensor Tensor::min() const { return sorix::min(*this); }
std::tuple<Tensor, Tensor> Tensor::min(std::int64_t dim, bool keepdim) const { return sorix::min(*this, dim, keepdim); }
Tensor Tensor::amax(const std::vector<std::int64_t>& dims, bool keepdim) const { return sorix::amax(*this, dims, keepdim); }
Tensor Tensor::amin(const std::vector<std::int64_t>& dims, bool keepdim) const { return sorix::amin(*this, dims, keepdim); }
Tensor Tensor::argmax() const { return sorix::argmax(*this); }
Tensor Tensor::argmax(std::int64_t dim, bool keepdim) const { return sorix::argmax(*this, dim, keepdim); }
Tensor Tensor::argmin() const { return sorix::argmin(*this); }
Tensor Tensor::argmin(std::int64_t dim, bool keepdim) const { return sorix::argmin(*this, dim, keepdim); }

}  // namespace sorix
