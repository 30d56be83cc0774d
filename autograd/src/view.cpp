// View ops: results share the input's storage with new sizes, strides and offset (the tensor
// model of sorix/core/tensor.hpp). Each op is one function on a Geometry, applied twice: to the
// input's storage geometry (the view itself) and to the input's own row-major layout (where the
// view's elements sit in the input, which is what its gradient needs).
//
// Gradients: reshapes give the gradient back reshaped, permutations permuted back, expand sums
// (sum_to); every other view scatters the gradient into zeros of the input's shape
// (view_scatter_add; overlapping views such as unfold accumulate on one thread in a fixed order).
//
// In-place ops through views (record_inplace, PyTorch's CopySlices): the base's history is
// replaced by a node that sends the gradient of the overwritten elements to the new values and
// the rest to the base's old history; views of that base rebuild their grad_fn from the base's
// when next asked (refresh_view).
#include <algorithm>
#include <numeric>

#include "sorix_autograd/ops_internal.hpp"
#include "sorix_core/kernels/strided.hpp"

namespace sorix {
namespace {

using autograd::Edge;
using autograd::Node;

struct Geometry {
  Shape sizes, strides;
  std::int64_t offset = 0;
};

Geometry storage_geometry(const Tensor& x) { return {x.shape(), x.stride(), x.storage_offset()}; }
Geometry row_major(const Shape& sizes) { return {sizes, detail::contiguous_strides(sizes), 0}; }

std::vector<std::size_t> to_sizes(const Shape& s) { return std::vector<std::size_t>(s.begin(), s.end()); }

Edge edge_to(const std::shared_ptr<TensorImpl>& impl) {
  Edge e;
  if (!impl->requires_grad) return e;
  if (impl->grad_fn) {
    e.fn = impl->grad_fn;
  } else {
    e.leaf = impl;
  }
  return e;
}

// ---- the gradient ops of views --------------------------------------------------------------------

Tensor view_gather(const Tensor& g, const Geometry& rel);

// zeros(sizes) with g added at the elements `rel` addresses (rel: a geometry in sizes' row-major
// layout). Gradient: view_gather.
Tensor view_scatter_add(const Tensor& g, const Shape& sizes, const Geometry& rel) {
  Tensor out = zeros(sizes, g.dtype());
  const Tensor gc = detail::contiguous_copy_if_needed(g);
  auto target = std::make_shared<TensorImpl>();
  target->storage = out.impl()->storage;
  target->set_geometry(rel.sizes, rel.strides, rel.offset);
  if (!detail::has_internal_overlap(rel.sizes, rel.strides)) {
    detail::copy_into(gc, Tensor(target));
  } else {
    detail::visit_floating(g.dtype(), "view backward", [&](auto tag) {
      using T = typename decltype(tag)::type;
      kernels::add_strided_serial(detail::flat<T>(gc), Tensor(target).data_ptr<T>(), to_sizes(rel.sizes),
                                  to_sizes(rel.strides));
    });
  }
  if (autograd::needs_grad({&g})) {
    autograd::record(out, "ViewScatterBackward", {g},
                     [rel](const Tensor& gg) -> std::vector<Tensor> { return {view_gather(gg, rel)}; });
  }
  return out;
}

// The elements of g at `rel` (a geometry in g's row-major layout), as a contiguous tensor.
// Differentiable: a view of contiguous g, then contiguous().
Tensor view_gather(const Tensor& g, const Geometry& rel) {
  const Tensor gc = g.contiguous();
  return gc.as_strided(rel.sizes, rel.strides, gc.storage_offset() + rel.offset).contiguous();
}

// g with the elements at `rel` set to zero. Linear and its own adjoint.
Tensor zero_region(const Tensor& g, const Geometry& rel) {
  Tensor out = detail::contiguous_copy(g);
  detail::visit_floating(g.dtype(), "view backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    kernels::fill_strided(detail::flat<T>(out) + rel.offset, to_sizes(rel.sizes), to_sizes(rel.strides), T(0));
  });
  if (autograd::needs_grad({&g})) {
    autograd::record(out, "ZeroRegionBackward", {g},
                     [rel](const Tensor& gg) -> std::vector<Tensor> { return {zero_region(gg, rel)}; });
  }
  return out;
}

// ---- making a view --------------------------------------------------------------------------------

enum class Backward { Scatter, Reshape, Permute, Expand };

// A view of x with storage geometry `view` (rel: the same elements in x's row-major layout).
Tensor make_view(const Tensor& x, const Geometry& view, const Geometry& rel, const char* node, Backward kind,
                 std::vector<std::int64_t> inverse = {}) {
  const TensorImpl& xi = *x.impl();
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = xi.storage;
  impl->set_geometry(view.sizes, view.strides, view.offset);
  if (impl->numel == 0) impl->offset = xi.offset;  // an empty view never points past the buffer
  const std::shared_ptr<TensorImpl> base = xi.view_base ? xi.view_base : x.impl_ptr();
  // The view's elements as positions in its base's row-major layout (the base is contiguous):
  // an as_strided view may reach outside the base, and then cannot be tracked.
  const std::int64_t first = impl->offset - base->offset;
  const bool inside = impl->numel == 0 || (first >= 0 && first + static_cast<std::int64_t>(detail::span_of(*impl)) <= base->numel);
  if (xi.untracked_view || !base->contiguous || !inside) {
    impl->untracked_view = true;  // no strided geometry in the base: in-place autograd refused
  } else {
    impl->view_base = base;
  }
  if (impl->view_base) impl->base_generation = impl->view_base->generation;
  Tensor out(impl);
  if (autograd::needs_grad({&x})) {
    const Shape xs = x.shape();
    autograd::BackwardFn backward;
    switch (kind) {
      case Backward::Reshape:
        backward = [xs](const Tensor& g) -> std::vector<Tensor> { return {reshape(g, xs)}; };
        break;
      case Backward::Permute:
        backward = [inverse](const Tensor& g) -> std::vector<Tensor> { return {permute(g, inverse).contiguous()}; };
        break;
      case Backward::Expand:
        backward = [xs](const Tensor& g) -> std::vector<Tensor> { return {sum_to(g, xs)}; };
        break;
      case Backward::Scatter:
        backward = [xs, rel](const Tensor& g) -> std::vector<Tensor> { return {view_scatter_add(g, xs, rel)}; };
        break;
    }
    autograd::record(out, node, {x}, std::move(backward));
  }
  return out;
}

// Applies one geometric transform to both geometries and makes the view.
template <class F>
Tensor view_op(const Tensor& x, const char* node, Backward kind, F&& transform, std::vector<std::int64_t> inverse = {}) {
  const Geometry view = transform(storage_geometry(x));
  const Geometry rel = transform(row_major(x.shape()));
  return make_view(x, view, rel, node, kind, std::move(inverse));
}

// ---- geometric transforms ---------------------------------------------------------------------------

Geometry permuted(const Geometry& g, const std::vector<std::size_t>& perm) {
  Geometry r{Shape(perm.size()), Shape(perm.size()), g.offset};
  for (std::size_t i = 0; i < perm.size(); ++i) {
    r.sizes[i] = g.sizes[perm[i]];
    r.strides[i] = g.strides[perm[i]];
  }
  return r;
}

Geometry sliced(Geometry g, std::size_t d, std::int64_t start, std::int64_t len, std::int64_t step) {
  if (len > 0) g.offset += start * g.strides[d];
  g.sizes[d] = len;
  g.strides[d] *= step;
  return g;
}

Geometry selected(Geometry g, std::size_t d, std::int64_t i) {
  g.offset += i * g.strides[d];
  g.sizes.erase(g.sizes.begin() + static_cast<std::ptrdiff_t>(d));
  g.strides.erase(g.strides.begin() + static_cast<std::ptrdiff_t>(d));
  return g;
}

Geometry unsqueezed(Geometry g, std::size_t d) {
  const std::int64_t stride = d < g.sizes.size() ? g.sizes[d] * g.strides[d] : 1;
  g.sizes.insert(g.sizes.begin() + static_cast<std::ptrdiff_t>(d), 1);
  g.strides.insert(g.strides.begin() + static_cast<std::ptrdiff_t>(d), stride);
  return g;
}

// Strides for viewing (sizes, strides) as `shape` without a copy, or nullopt (PyTorch's
// computeStride: dims merge only where they are contiguous with each other).
std::optional<Shape> view_strides(const Shape& sizes, const Shape& strides, const Shape& shape) {
  if (sizes.empty()) return Shape(shape.size(), 1);
  const std::int64_t numel = std::accumulate(sizes.begin(), sizes.end(), std::int64_t{1}, std::multiplies<>());
  Shape out(shape.size(), 1);
  if (numel == 0) {
    if (sizes == shape) return strides;
    return detail::contiguous_strides(shape);
  }
  std::int64_t view_d = static_cast<std::int64_t>(shape.size()) - 1;
  std::int64_t chunk_stride = strides.back();
  std::int64_t tensor_numel = 1, view_numel = 1;
  for (std::int64_t d = static_cast<std::int64_t>(sizes.size()) - 1; d >= 0; --d) {
    const auto ud = static_cast<std::size_t>(d);
    tensor_numel *= sizes[ud];
    if (d == 0 || (sizes[ud - 1] != 1 && strides[ud - 1] != tensor_numel * chunk_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || shape[static_cast<std::size_t>(view_d)] == 1)) {
        out[static_cast<std::size_t>(view_d)] = view_numel * chunk_stride;
        view_numel *= shape[static_cast<std::size_t>(view_d)];
        --view_d;
      }
      if (view_numel != tensor_numel) return std::nullopt;
      if (d > 0) {
        chunk_stride = strides[ud - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  if (view_d != -1) return std::nullopt;
  return out;
}

Shape infer_shape(const Tensor& x, const Shape& shape, const char* op) {
  Shape out = shape;
  std::int64_t known = 1;
  int infer = -1;
  bool overflow = false;
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (out[i] == -1) {
      check(infer < 0, op, "only one dimension can be -1, got shape ", shape);
      infer = static_cast<int>(i);
    } else {
      check(out[i] >= 0, op, "invalid size ", out[i], " in shape ", shape);
      overflow = overflow || __builtin_mul_overflow(known, out[i], &known);
    }
  }
  const std::int64_t n = x.numel();
  // Found by make test-asan (UBSan): the product was multiplied unchecked. No tensor has a
  // count that overflows, so such a shape fits no input.
  check(!overflow, op, "shape ", shape, " is invalid for input of size ", n, " (shape ", x.shape(),
        "): its element count overflows");
  if (infer >= 0) {
    check(known != 0 && n % known == 0, op, "shape ", shape, " is invalid for input of size ", n, " (shape ",
          x.shape(), ")");
    out[static_cast<std::size_t>(infer)] = n / known;
  }
  check(detail::check_numel(out, op) == n, op, "shape ", shape, " is invalid for input of size ", n, " (shape ",
        x.shape(), ")");
  return out;
}

// The view of x as `target` (already inferred), or an undefined tensor when strides forbid it.
Tensor try_view(const Tensor& x, const Shape& target, const char* node) {
  const auto strides = view_strides(x.shape(), x.stride(), target);
  if (!strides) return Tensor();
  const Geometry view{target, *strides, x.storage_offset()};
  return make_view(x, view, row_major(target), node, Backward::Reshape);
}

std::vector<std::size_t> check_permutation(const Tensor& x, const std::vector<std::int64_t>& dims, const char* op) {
  const std::int64_t nd = x.dim();
  check(static_cast<std::int64_t>(dims.size()) == nd, op, "dims ", dims, " must list each of the ", nd,
        " dims of the input (shape ", x.shape(), ") exactly once");
  std::vector<std::size_t> perm(dims.size());
  std::vector<bool> seen(dims.size(), false);
  for (std::size_t i = 0; i < dims.size(); ++i) {
    perm[i] = static_cast<std::size_t>(detail::wrap_dim(dims[i], nd, op));
    check(!seen[perm[i]], op, "dims ", dims, " is not a permutation: dim ", perm[i],
          " appears more than once (input shape ", x.shape(), ")");
    seen[perm[i]] = true;
  }
  return perm;
}

Tensor permute_impl(const Tensor& x, const std::vector<std::size_t>& perm, const char* node) {
  std::vector<std::int64_t> inverse(perm.size());
  for (std::size_t i = 0; i < perm.size(); ++i) inverse[perm[i]] = static_cast<std::int64_t>(i);
  return view_op(
      x, node, Backward::Permute, [&](const Geometry& g) { return permuted(g, perm); }, inverse);
}

std::size_t dim_of(const Tensor& x, std::int64_t dim, const char* op) {
  detail::check_defined(x, op);
  check(x.dim() > 0, op, "expected a tensor with at least 1 dim, got a 0-dim tensor");
  return static_cast<std::size_t>(detail::wrap_dim(dim, x.dim(), op));
}

}  // namespace

// ---- autograd of views ----------------------------------------------------------------------------

namespace autograd {

void refresh_view(TensorImpl& view) {
  if (!view.view_base || view.base_generation == view.view_base->generation) return;
  const std::shared_ptr<TensorImpl> base = view.view_base;
  view.base_generation = base->generation;
  view.grad_fn = nullptr;
  view.requires_grad = base->requires_grad;
  if (!base->requires_grad) return;
  const Geometry rel{view.sizes, view.strides, view.offset - base->offset};
  const Shape base_sizes = base->sizes;
  view.grad_fn = std::make_shared<Node>(
      "AsStridedBackward", std::vector<Edge>{edge_to(base)},
      [base_sizes, rel](const Tensor& g) -> std::vector<Tensor> { return {view_scatter_add(g, base_sizes, rel)}; });
}

void record_inplace(Tensor& self, const Tensor& result) {
  TensorImpl& impl = *self.impl();
  if (impl.view_base) {
    const std::shared_ptr<TensorImpl> base = impl.view_base;
    const Geometry rel{impl.sizes, impl.strides, impl.offset - base->offset};
    const bool to_base = base->requires_grad, to_result = result.requires_grad();
    Edge result_edge;
    if (to_result) {
      result_edge.fn = result.grad_fn();
      if (!result_edge.fn) result_edge.leaf = result.impl_ptr();
    }
    base->grad_fn = std::make_shared<Node>(
        "CopySlices", std::vector<Edge>{edge_to(base), result_edge},
        [rel, to_base, to_result](const Tensor& g) -> std::vector<Tensor> {
          return {to_base ? zero_region(g, rel) : Tensor(), to_result ? view_gather(g, rel) : Tensor()};
        });
    base->requires_grad = true;
    ++base->generation;
    refresh_view(impl);
    return;
  }
  if (result.requires_grad()) {
    if (result.grad_fn()) {
      impl.grad_fn = result.grad_fn();
    } else {  // a leaf's values copied in: the gradient passes through to it
      impl.grad_fn = std::make_shared<Node>("CopyBackward", std::vector<Edge>{edge_to(result.impl_ptr())},
                                            [](const Tensor& g) -> std::vector<Tensor> { return {g}; });
    }
  } else {  // overwritten by values without history: nothing flows to the old values
    impl.grad_fn = std::make_shared<Node>("OverwriteBackward", std::vector<Edge>{},
                                          [](const Tensor&) -> std::vector<Tensor> { return {}; });
  }
  impl.requires_grad = true;
  ++impl.generation;
}

}  // namespace autograd

// ---- public view ops -----------------------------------------------------------------------------

Tensor view(const Tensor& x, const Shape& shape) {
  detail::check_defined(x, "view");
  const Shape target = infer_shape(x, shape, "view");
  Tensor out = try_view(x, target, "ViewBackward");
  check(out.defined(), "view", "view size ", target, " is not compatible with the input's size ", x.shape(),
        " and stride ", x.stride(), " (at least one dim spans across two contiguous subspaces); use reshape()");
  return out;
}

Tensor reshape(const Tensor& x, const Shape& shape) {
  detail::check_defined(x, "reshape");
  const Shape target = infer_shape(x, shape, "reshape");
  Tensor out = try_view(x, target, "ReshapeBackward");
  if (out.defined()) return out;
  // The strides forbid a view: a contiguous copy in the new shape (not a view of anything).
  out = detail::contiguous_copy(x);
  out.impl()->set_geometry(target, detail::contiguous_strides(target), 0);
  if (autograd::needs_grad({&x})) {
    autograd::record(out, "ReshapeBackward", {x},
                     [xs = x.shape()](const Tensor& g) -> std::vector<Tensor> { return {reshape(g, xs)}; });
  }
  return out;
}

Tensor flatten(const Tensor& x, std::int64_t start_dim, std::int64_t end_dim) {
  detail::check_defined(x, "flatten");
  const std::int64_t nd = x.dim();
  const std::int64_t s = detail::wrap_dim(start_dim, nd, "flatten");
  const std::int64_t e = detail::wrap_dim(end_dim, nd, "flatten");
  check(s <= e, "flatten", "start_dim ", start_dim, " must not come after end_dim ", end_dim, " (input shape ",
        x.shape(), ")");
  if (nd == 0) return reshape(x, {1});  // as PyTorch: a 0-dim tensor flattens to one element
  const Shape xs = x.shape();
  Shape out(xs.begin(), xs.begin() + s);
  out.push_back(std::accumulate(xs.begin() + s, xs.begin() + e + 1, std::int64_t{1}, std::multiplies<>()));
  out.insert(out.end(), xs.begin() + e + 1, xs.end());
  return reshape(x, out);
}

Tensor squeeze(const Tensor& x) {
  detail::check_defined(x, "squeeze");
  std::vector<std::size_t> keep;
  for (std::size_t d = 0; d < x.shape().size(); ++d) {
    if (x.shape()[d] != 1) keep.push_back(d);
  }
  return view_op(x, "SqueezeBackward", Backward::Reshape, [&](const Geometry& g) {
    Geometry r{{}, {}, g.offset};
    for (std::size_t d : keep) {
      r.sizes.push_back(g.sizes[d]);
      r.strides.push_back(g.strides[d]);
    }
    return r;
  });
}

Tensor squeeze(const Tensor& x, std::int64_t dim) {
  detail::check_defined(x, "squeeze");
  const auto d = static_cast<std::size_t>(detail::wrap_dim(dim, x.dim(), "squeeze"));
  // A dim of size other than 1 is left as it is (as PyTorch): the result is a view of all of x.
  const bool drop = x.dim() > 0 && x.shape()[d] == 1;
  return view_op(x, "SqueezeBackward", Backward::Reshape, [&](Geometry g) {
    if (drop) {
      g.sizes.erase(g.sizes.begin() + static_cast<std::ptrdiff_t>(d));
      g.strides.erase(g.strides.begin() + static_cast<std::ptrdiff_t>(d));
    }
    return g;
  });
}

Tensor unsqueeze(const Tensor& x, std::int64_t dim) {
  detail::check_defined(x, "unsqueeze");
  // The new dim may go anywhere in [0, ndim]: wrap against ndim + 1.
  const auto d = static_cast<std::size_t>(detail::wrap_dim(dim, x.dim() + 1, "unsqueeze"));
  return view_op(x, "UnsqueezeBackward", Backward::Reshape, [&](const Geometry& g) { return unsqueezed(g, d); });
}

Tensor permute(const Tensor& x, const std::vector<std::int64_t>& dims) {
  detail::check_defined(x, "permute");
  return permute_impl(x, check_permutation(x, dims, "permute"), "PermuteBackward");
}

Tensor transpose(const Tensor& x, std::int64_t dim0, std::int64_t dim1) {
  detail::check_defined(x, "transpose");
  const std::int64_t nd = x.dim();
  const std::int64_t a = detail::wrap_dim(dim0, nd, "transpose");
  const std::int64_t b = detail::wrap_dim(dim1, nd, "transpose");
  std::vector<std::size_t> perm(static_cast<std::size_t>(nd));
  std::iota(perm.begin(), perm.end(), std::size_t{0});
  if (nd > 0) std::swap(perm[static_cast<std::size_t>(a)], perm[static_cast<std::size_t>(b)]);
  return permute_impl(x, perm, "TransposeBackward");
}

Tensor slice(const Tensor& x, std::int64_t dim, std::int64_t start, std::int64_t end, std::int64_t step) {
  const std::size_t d = dim_of(x, dim, "slice");
  check(step >= 1, "slice", "step must be >= 1 (negative steps are not supported; use flip), got ", step,
        " for dim ", d, " of shape ", x.shape());
  const std::int64_t n = x.shape()[d];
  // Python slicing: negative bounds count from the end, then both are clamped to [0, n].
  auto clamp_bound = [n](std::int64_t b) { return std::clamp(b < 0 ? b + n : b, std::int64_t{0}, n); };
  const std::int64_t b = clamp_bound(start), e = std::max(b, clamp_bound(end));
  const std::int64_t len = e > b ? (e - b - 1) / step + 1 : 0;  // no overflow for a huge step
  return view_op(x, "SliceBackward", Backward::Scatter,
                 [&](const Geometry& g) { return sliced(g, d, b, len, step); });
}

Tensor narrow(const Tensor& x, std::int64_t dim, std::int64_t start, std::int64_t length) {
  const std::size_t d = dim_of(x, dim, "narrow");
  const std::int64_t n = x.shape()[d];
  check<std::out_of_range>(start >= -n && start <= n, "narrow", "start ", start, " is out of range for dim ", d,
                           " of size ", n, " (expected a start in [", -n, ", ", n, "])");
  const std::int64_t s = start < 0 ? start + n : start;
  check<std::out_of_range>(length >= 0 && s + length <= n, "narrow", "start (", s, ") + length (", length,
                           ") exceeds dim ", d, " of size ", n, " (input shape ", x.shape(), ")");
  return view_op(x, "NarrowBackward", Backward::Scatter, [&](const Geometry& g) { return sliced(g, d, s, length, 1); });
}

Tensor select(const Tensor& x, std::int64_t dim, std::int64_t index) {
  const std::size_t d = dim_of(x, dim, "select");
  const std::int64_t n = x.shape()[d];
  check<std::out_of_range>(index >= -n && index < n, "select", "index ", index, " is out of range for dim ", d,
                           " of size ", n, " (input shape ", x.shape(), "); expected an index in [", -n, ", ", n, ")");
  const std::int64_t i = index < 0 ? index + n : index;
  return view_op(x, "SelectBackward", Backward::Scatter, [&](const Geometry& g) { return selected(g, d, i); });
}

Tensor expand(const Tensor& x, const Shape& shape) {
  detail::check_defined(x, "expand");
  const Shape xs = x.shape();
  check(shape.size() >= xs.size(), "expand", "the target shape ", shape, " has fewer dims than the input (shape ",
        xs, ")");
  const std::size_t lead = shape.size() - xs.size();
  Shape target = shape;
  for (std::size_t k = 0; k < shape.size(); ++k) {
    if (k < lead) {
      check(shape[k] >= 0, "expand", "cannot expand shape ", xs, " to ", shape, ": a new leading dim needs a size >= 0");
      continue;
    }
    const std::int64_t have = xs[k - lead];
    if (shape[k] == -1) target[k] = have;
    check(target[k] == have || have == 1, "expand", "cannot expand shape ", xs, " to ", shape, ": dim ", k,
          " has size ", have, " (only size-1 dims can expand)");
    check(target[k] >= 0, "expand", "invalid size ", shape[k], " in ", shape);
  }
  detail::check_numel(target, "expand");  // before the view is built, so the error names expand
  if (target == xs) return x;
  return view_op(x, "ExpandBackward", Backward::Expand, [&](const Geometry& g) {
    Geometry r{target, Shape(target.size(), 0), g.offset};
    for (std::size_t k = lead; k < target.size(); ++k) {
      r.strides[k] = g.sizes[k - lead] == target[k] ? g.strides[k - lead] : 0;
    }
    return r;
  });
}

Tensor unfold(const Tensor& x, std::int64_t dim, std::int64_t size, std::int64_t step) {
  detail::check_defined(x, "unfold");
  const std::int64_t nd = x.dim();
  const auto d = static_cast<std::size_t>(detail::wrap_dim(dim, nd, "unfold"));
  const std::int64_t n = nd == 0 ? 1 : x.shape()[d];
  check(size >= 0 && size <= n, "unfold", "size ", size, " must be in [0, ", n, "] (dim ", d, " of shape ", x.shape(),
        ")");
  check(step >= 1, "unfold", "step must be >= 1, got ", step);
  return view_op(x, "UnfoldBackward", Backward::Scatter, [&](Geometry g) {
    if (g.sizes.empty()) {  // a 0-dim tensor unfolds to [size]
      return Geometry{{size}, {1}, g.offset};
    }
    const std::int64_t inner_stride = g.strides[d];
    g.sizes[d] = (n - size) / step + 1;
    g.strides[d] *= step;
    g.sizes.push_back(size);
    g.strides.push_back(inner_stride);
    return g;
  });
}

Tensor as_strided(const Tensor& x, const Shape& sizes, const Shape& strides, std::optional<std::int64_t> storage_offset) {
  detail::check_defined(x, "as_strided");
  check(sizes.size() == strides.size(), "as_strided", "sizes ", sizes, " and strides ", strides,
        " must have the same length");
  const std::int64_t offset = storage_offset.value_or(x.storage_offset());
  check(offset >= 0, "as_strided", "storage_offset must be >= 0, got ", offset);
  std::int64_t last = offset;
  bool empty = false;
  for (std::size_t k = 0; k < sizes.size(); ++k) {
    check(sizes[k] >= 0, "as_strided", "negative size ", sizes[k], " in ", sizes);
    check(strides[k] >= 0, "as_strided", "negative stride ", strides[k], " in ", strides, " (not supported)");
    if (sizes[k] == 0) empty = true;
    last += (sizes[k] - 1) * strides[k];
  }
  const auto storage_size = static_cast<std::int64_t>(
      std::visit([](const auto& b) { return b.size(); }, x.impl()->storage->data));
  check<std::out_of_range>(empty || last < storage_size, "as_strided", "sizes ", sizes, ", strides ", strides,
                           " and offset ", offset, " reach element ", last, " of a storage of ", storage_size,
                           " elements");
  check(!autograd::needs_grad({&x}) || x.is_contiguous(), "as_strided",
        "the gradient needs a contiguous input (its geometry is in the input's row-major layout); got strides ",
        x.stride(), ": call contiguous() first");
  check(!autograd::needs_grad({&x}) || empty ||
            (offset >= x.storage_offset() && last < x.storage_offset() + x.numel()),
        "as_strided", "with autograd the view must stay inside the input's own elements (storage offsets [",
        x.storage_offset(), ", ", x.storage_offset() + x.numel(), ")); it reaches [", offset, ", ", last, "]");
  const Geometry view{sizes, strides, offset};
  const Geometry rel{sizes, strides, offset - x.storage_offset()};
  return make_view(x, view, rel, "AsStridedBackward", Backward::Scatter);
}

std::vector<Tensor> split(const Tensor& x, std::int64_t split_size, std::int64_t dim) {
  const std::size_t d = dim_of(x, dim, "split");
  const std::int64_t n = x.shape()[d];
  check(split_size > 0 || (split_size == 0 && n == 0), "split",
        "split_size must be >= 1 (0 only for a dim of size 0), got ", split_size, " for dim ", d, " of size ", n);
  if (n == 0) return {narrow(x, static_cast<std::int64_t>(d), 0, 0)};
  std::vector<Tensor> pieces;
  for (std::int64_t s = 0; s < n; s += split_size) {
    pieces.push_back(narrow(x, static_cast<std::int64_t>(d), s, std::min(split_size, n - s)));
  }
  return pieces;
}

std::vector<Tensor> chunk(const Tensor& x, std::int64_t chunks, std::int64_t dim) {
  detail::check_defined(x, "chunk");
  check(chunks >= 1, "chunk", "number of chunks must be >= 1, got ", chunks);
  const std::size_t d = dim_of(x, dim, "chunk");
  const std::int64_t n = x.shape()[d];
  if (n == 0) {  // as PyTorch: `chunks` empty pieces
    std::vector<Tensor> pieces;
    for (std::int64_t c = 0; c < chunks; ++c) pieces.push_back(narrow(x, static_cast<std::int64_t>(d), 0, 0));
    return pieces;
  }
  return split(x, (n + chunks - 1) / chunks, static_cast<std::int64_t>(d));
}

std::vector<Tensor> unbind(const Tensor& x, std::int64_t dim) {
  const std::size_t d = dim_of(x, dim, "unbind");
  std::vector<Tensor> pieces;
  for (std::int64_t i = 0; i < x.shape()[d]; ++i) pieces.push_back(select(x, static_cast<std::int64_t>(d), i));
  return pieces;
}

Tensor Tensor::t() const {
  detail::check_defined(*this, "t");
  check(dim() <= 2, "t", "expects a tensor with <= 2 dims, got shape ", shape(), "; use transpose(dim0, dim1)");
  return dim() < 2 ? sorix::view(*this, shape()) : sorix::transpose(*this, 0, 1);
}

Tensor Tensor::transpose(std::int64_t dim0, std::int64_t dim1) const { return sorix::transpose(*this, dim0, dim1); }
Tensor Tensor::permute(const std::vector<std::int64_t>& dims) const { return sorix::permute(*this, dims); }
Tensor Tensor::reshape(const Shape& shape) const { return sorix::reshape(*this, shape); }
Tensor Tensor::view(const Shape& shape) const { return sorix::view(*this, shape); }
Tensor Tensor::squeeze() const { return sorix::squeeze(*this); }
Tensor Tensor::squeeze(std::int64_t dim) const { return sorix::squeeze(*this, dim); }
Tensor Tensor::unsqueeze(std::int64_t dim) const { return sorix::unsqueeze(*this, dim); }
Tensor Tensor::flatten(std::int64_t start_dim, std::int64_t end_dim) const {
  return sorix::flatten(*this, start_dim, end_dim);
}
Tensor Tensor::slice(std::int64_t dim, std::int64_t start, std::int64_t end, std::int64_t step) const {
  return sorix::slice(*this, dim, start, end, step);
}
Tensor Tensor::narrow(std::int64_t dim, std::int64_t start, std::int64_t length) const {
  return sorix::narrow(*this, dim, start, length);
}
Tensor Tensor::select(std::int64_t dim, std::int64_t index) const { return sorix::select(*this, dim, index); }
Tensor Tensor::operator[](std::int64_t i) const { return sorix::select(*this, 0, i); }
Tensor Tensor::expand(const Shape& shape) const { return sorix::expand(*this, shape); }
Tensor Tensor::expand_as(const Tensor& other) const { return sorix::expand(*this, other.shape()); }
Tensor Tensor::unfold(std::int64_t dim, std::int64_t size, std::int64_t step) const {
  return sorix::unfold(*this, dim, size, step);
}
Tensor Tensor::as_strided(const Shape& sizes, const Shape& strides, std::optional<std::int64_t> storage_offset) const {
  return sorix::as_strided(*this, sizes, strides, storage_offset);
}
std::vector<Tensor> Tensor::split(std::int64_t split_size, std::int64_t dim) const {
  return sorix::split(*this, split_size, dim);
}
std::vector<Tensor> Tensor::chunk(std::int64_t chunks, std::int64_t dim) const { return sorix::chunk(*this, chunks, dim); }
std::vector<Tensor> Tensor::unbind(std::int64_t dim) const { return sorix::unbind(*this, dim); }

}  // namespace sorix
