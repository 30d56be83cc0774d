// Indexing and joining by copy: index_select, gather, cat, stack (the views are in view.cpp).
//
// A tensor seen around dim d is [outer, n, inner] (outer: the product of the dims before d,
// inner: of those after). index_select and cat copy whole rows of `inner` (or more)
// contiguous elements; gather picks single elements. Every kernel is a copy, or a scatter-add
// whose targets are split between tasks so that no two tasks touch the same element and each
// element sums its contributions in index order (never atomics): the bits never depend on the
// thread count. Index values are checked before any parallel work starts.
//
// Gradients are themselves ops (index_select <-> index_add,
// gather <-> scatter_add), each recording the other as its gradient, so second derivatives work.
#include <algorithm>
#include <numeric>
#include <stdexcept>

#include "sorix_autograd/ops_internal.hpp"
#include "sorix_core/kernels/gather.hpp"
#include "sorix_core/kernels/scatter.hpp"

namespace sorix {
namespace {

using autograd::record;
using autograd::SavedTensor;
using detail::XShape;

// Rows of the flattened [outer, n, inner] view around dim d.
struct Around {
  std::size_t outer, n, inner;
};
Around around(const XShape& s, std::size_t d) {
  return {detail::prod(s, 0, d), s[d], detail::prod(s, d + 1, s.size())};
}

// The `grain` argument of parallel_for for a kernel of `units` work units and `work` element
// operations in all: inline when the work is small, whatever the unit count.
std::size_t grain_for(std::size_t units, std::size_t work) {
  return work <= parallel::kInlineGrain ? units : 0;
}

Tensor check_int64_index(const Tensor& index, const char* op) {
  detail::check_defined(index, op);
  check(index.dtype() == Dtype::Int64, op, "expected an int64 index, got ", dtype_name(index.dtype()));
  return index;
}

// Every index value must be in [0, size); the message names op, the value, dim and the shape.
void check_index_values(const Tensor& index, std::size_t size, std::size_t dim, const Tensor& x, const char* op) {
  const std::int64_t* idx = detail::flat<std::int64_t>(index);
  for (std::int64_t k = 0; k < index.numel(); ++k) {
    if (idx[k] < 0 || static_cast<std::size_t>(idx[k]) >= size) {
      throw std::out_of_range(error_message(op, "index ", idx[k], " is out of range for dimension ", dim,
                                            " with size ", size, " (input shape ", x.shape(),
                                            "); expected an index in [0, ", size, ")"));
    }
  }
}

// ---- index_select and its gradient, index_add ------------------------------------------------------
Tensor index_add(const Tensor& g, const Shape& xshape, std::size_t dim, const Tensor& index);

Tensor index_select_impl(const Tensor& x, std::size_t dim, const Tensor& index) {
  XShape os = detail::to_xshape(x.shape(), "index_select");
  const Around a = around(os, dim);
  const std::size_t K = static_cast<std::size_t>(index.numel());
  os[dim] = K;
  const std::int64_t* idx = detail::flat<std::int64_t>(index);
  Tensor out = detail::visit_dtype(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    Tensor o = detail::make_empty<T>(os);
    const T* src = detail::flat<T>(x);
    T* dst = detail::flat<T>(o);
    kernels::copy_rows<T>(
        a.outer * K, a.inner,
        [&](std::size_t row) {
          return src + ((row / K) * a.n + static_cast<std::size_t>(idx[row % K])) * a.inner;
        },
        [&](std::size_t row) { return dst + row * a.inner; });
    return o;
  });
  if (autograd::needs_grad({&x})) {
    record(out, "IndexSelectBackward", {x},
           [xshape = x.shape(), dim, si = SavedTensor(index)](const Tensor& g) -> std::vector<Tensor> {
             return {index_add(g, xshape, dim, si.unpack("index_select"))};
           });
  }
  return out;
}

// Zeros of xshape plus, for every k, g's row k added at row index[k] along dim. Rows of the
// result are split between tasks; each sums its contributions in increasing k (a stable
// counting sort of k by index[k] lists them), so repeated indices give the same bits always.
Tensor index_add(const Tensor& g, const Shape& xshape, std::size_t dim, const Tensor& index) {
  Tensor out = empty(xshape, g.dtype());
  const Around a = around(detail::to_xshape(xshape, "index_select"), dim);
  const std::size_t K = static_cast<std::size_t>(index.numel());
  const kernels::RowOrder order(detail::flat<std::int64_t>(index), K, a.n);
  detail::visit_dtype(g.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* src = detail::flat<T>(g);
    T* dst = detail::flat<T>(out);
    const std::size_t rows = a.outer * a.n, inner = std::max<std::size_t>(a.inner, 1);
    parallel::parallel_for(
        rows, std::max<std::size_t>(1, parallel::kChunkSize / inner),
        [&](std::size_t s, std::size_t e) { kernels::scatter_add_rows(src, dst, order, K, a.n, a.inner, s, e, 0, a.inner); },
        grain_for(rows, a.outer * (a.n + K) * a.inner));
  });
  if (autograd::needs_grad({&g})) {
    record(out, "IndexAddBackward", {g}, [dim, si = SavedTensor(index)](const Tensor& gg) -> std::vector<Tensor> {
      return {index_select_impl(gg, dim, si.unpack("index_select"))};
    });
  }
  return out;
}

// ---- gather and its gradient, scatter_add ------------------------------------------------------------
// Geometry shared by both: the index tensor seen as [O, K, I] around dim; element (o, k, i) of
// the index reads or writes x at offset(o) + index * x_stride[dim] + inner_offset[i].
// Work units are (o, block of k, block of columns i), sized from the shape alone (about
// kChunkSize elements each). scatter_add never splits k: its units then never share a target of
// x, and each target receives its contributions in increasing k.
struct GatherPlan {
  XShape is, x_stride;
  std::size_t dim, O, K, I;
  std::size_t cols, col_blocks, rows, row_blocks;  // unit extent and count along i and along k
  std::vector<std::size_t> inner_offset;

  GatherPlan(const XShape& xs, const XShape& index_shape, std::size_t d, bool scatter) : is(index_shape), dim(d) {
    x_stride.assign(xs.size(), 1);
    for (std::size_t k = xs.size(); k-- > 1;) x_stride[k - 1] = x_stride[k] * xs[k];
    const Around a = around(is, d);
    O = a.outer, K = a.n, I = a.inner;
    const std::size_t chunk = parallel::kChunkSize;
    cols = scatter ? std::clamp<std::size_t>(chunk / std::max<std::size_t>(K, 1), 16, 512) : 512;
    cols = std::max<std::size_t>(1, std::min(cols, I));
    rows = scatter ? K : std::clamp<std::size_t>(chunk / cols, 1, std::max<std::size_t>(K, 1));
    col_blocks = (I + cols - 1) / cols;
    row_blocks = rows == 0 ? 0 : (K + rows - 1) / rows;
    inner_offset.resize(I);
    for (std::size_t i = 0; i < I; ++i) inner_offset[i] = offset(i, d + 1, is.size());
  }
  // x offset of the index coordinates that `linear` numbers over index dims [b, e).
  std::size_t offset(std::size_t linear, std::size_t b, std::size_t e) const {
    std::size_t off = 0;
    for (std::size_t k = e; k-- > b;) {
      off += (linear % is[k]) * x_stride[k];
      linear /= is[k];
    }
    return off;
  }
  // Calls f(first index element, x offset of the unit's o, i0, i1, k1 - k0) for unit u: index
  // rows k0..k1 of elements [i0, i1) each (I apart), reading x at that offset + index *
  // x_stride[dim] + inner_offset[i].
  template <class F>
  void for_unit_block(std::size_t u, F&& f) const {
    const std::size_t cb = u % col_blocks, rb = (u / col_blocks) % row_blocks, o = u / col_blocks / row_blocks;
    const std::size_t i0 = cb * cols, i1 = std::min(I, i0 + cols), k0 = rb * rows, k1 = std::min(K, k0 + rows);
    f((o * K + k0) * I + i0, offset(o, 0, dim), i0, i1, k1 - k0);
  }
  template <class F>
  void run_blocks(F&& f) const {
    const std::size_t units = O * row_blocks * col_blocks;
    if (units == 0 || I == 0) return;
    parallel::parallel_for(
        units, std::max<std::size_t>(1, parallel::kChunkSize / (rows * cols)),
        [&](std::size_t s, std::size_t e) {
          for (std::size_t u = s; u < e; ++u) for_unit_block(u, f);
        },
        grain_for(units, O * K * I));
  }
};

// A 0-dim tensor takes part as a 1-element 1-D one.
XShape as_1d_at_least(const Tensor& t, const char* op) {
  XShape s = detail::to_xshape(t.shape(), op);
  if (s.empty()) s.push_back(1);
  return s;
}

Tensor scatter_add(const Tensor& g, const Shape& xshape, std::size_t dim, const Tensor& index);

Tensor gather_impl(const Tensor& x, std::size_t dim, const Tensor& index) {
  const GatherPlan plan(as_1d_at_least(x, "gather"), as_1d_at_least(index, "gather"), dim, false);
  const std::int64_t* idx = detail::flat<std::int64_t>(index);
  Tensor out = detail::visit_dtype(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    Tensor o = detail::make_empty<T>(detail::to_xshape(index.shape(), "gather"));
    const T* src = detail::flat<T>(x);
    T* dst = detail::flat<T>(o);
    plan.run_blocks([&](std::size_t e, std::size_t base, std::size_t i0, std::size_t i1, std::size_t krows) {
      kernels::gather_block(src + base, idx + e, plan.x_stride[dim], plan.inner_offset.data() + i0, dst + e, krows,
                            i1 - i0, plan.I);
    });
    return o;
  });
  if (autograd::needs_grad({&x})) {
    record(out, "GatherBackward", {x},
           [xshape = x.shape(), dim, si = SavedTensor(index)](const Tensor& g) -> std::vector<Tensor> {
             return {scatter_add(g, xshape, dim, si.unpack("gather"))};
           });
  }
  return out;
}

// Zeros of xshape plus g's elements added where gather would have read them.
Tensor scatter_add(const Tensor& g, const Shape& xshape, std::size_t dim, const Tensor& index) {
  Tensor out = zeros(xshape, g.dtype());
  XShape xs = detail::to_xshape(xshape, "gather");
  if (xs.empty()) xs.push_back(1);
  const GatherPlan plan(xs, as_1d_at_least(index, "gather"), dim, true);
  detail::visit_dtype(g.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* src = detail::flat<T>(g);
    T* dst = detail::flat<T>(out);
    const std::int64_t* idx = detail::flat<std::int64_t>(index);
    plan.run_blocks([&](std::size_t e, std::size_t base, std::size_t i0, std::size_t i1, std::size_t krows) {
      kernels::scatter_add_block(src + e, idx + e, plan.x_stride[dim], plan.inner_offset.data() + i0, dst + base,
                                 krows, i1 - i0, plan.I);
    });
  });
  if (autograd::needs_grad({&g})) {
    record(out, "ScatterAddBackward", {g}, [dim, si = SavedTensor(index)](const Tensor& gg) -> std::vector<Tensor> {
      return {gather_impl(gg, dim, si.unpack("gather"))};
    });
  }
  return out;
}

}  // namespace

// ---- public ops ---------------------------------------------------------------------------------------

Tensor index_select(const Tensor& x, std::int64_t dim, const Tensor& index) {
  detail::check_defined(x, "index_select");
  check_int64_index(index, "index_select");
  check(x.dim() > 0, "index_select", "expected an input with at least 1 dim, got a 0-dim tensor");
  check(index.dim() == 1, "index_select", "expected a 1-D index, got shape ", index.shape());
  const std::size_t d = static_cast<std::size_t>(detail::wrap_dim(dim, x.dim(), "index_select"));
  check_index_values(index, static_cast<std::size_t>(x.shape()[d]), d, x, "index_select");
  return index_select_impl(x.contiguous(), d, index.contiguous());
}

Tensor gather(const Tensor& x, std::int64_t dim, const Tensor& index) {
  detail::check_defined(x, "gather");
  check_int64_index(index, "gather");
  check(index.dim() == x.dim(), "gather", "index (shape ", index.shape(), ") must have as many dims as the input (shape ",
        x.shape(), ")");
  const std::size_t d = static_cast<std::size_t>(detail::wrap_dim(dim, x.dim(), "gather"));
  const Shape xs = x.shape(), is = index.shape();
  for (std::size_t k = 0; k < xs.size(); ++k) {
    check(k == d || is[k] <= xs[k], "gather", "index shape ", is, " must not exceed the input shape ", xs,
          " in dims other than ", d, " (dim ", k, ")");
  }
  check_index_values(index, xs.empty() ? 1 : static_cast<std::size_t>(xs[d]), d, x, "gather");
  return gather_impl(x.contiguous(), d, index.contiguous());
}

Tensor cat(const std::vector<Tensor>& tensors, std::int64_t dim) {
  check(!tensors.empty(), "cat", "expected a non-empty list of tensors");
  Dtype dt = Dtype::Int64;
  for (std::size_t t = 0; t < tensors.size(); ++t) {
    detail::check_defined(tensors[t], "cat");
    check(tensors[t].dim() > 0, "cat", "zero-dimensional tensor (at position ", t, ") cannot be concatenated");
    dt = t == 0 ? tensors[0].dtype() : promote(dt, tensors[t].dtype());
  }
  const Shape first = tensors[0].shape();
  const std::size_t d = static_cast<std::size_t>(detail::wrap_dim(dim, tensors[0].dim(), "cat"));
  std::vector<Tensor> in;
  std::vector<std::size_t> offset{0};
  for (std::size_t t = 0; t < tensors.size(); ++t) {
    Shape s = tensors[t].shape();
    bool same = s.size() == first.size();
    for (std::size_t k = 0; same && k < s.size(); ++k) same = k == d || s[k] == first[k];
    check(same, "cat", "tensors must have the same shape except in dim ", d, ": tensor 0 has shape ", first,
          ", tensor ", t, " has shape ", s);
    in.push_back((tensors[t].dtype() == dt ? tensors[t] : tensors[t].to(dt)).contiguous());
    offset.push_back(offset.back() + static_cast<std::size_t>(s[d]));
  }
  XShape os = detail::to_xshape(first, "cat");
  os[d] = offset.back();
  const Around a = around(os, d);
  Tensor out = detail::visit_dtype(dt, [&](auto tag) {
    using T = typename decltype(tag)::type;
    Tensor o = detail::make_empty<T>(os);
    T* dst = detail::flat<T>(o);
    // Each input is `outer` blocks of len * inner contiguous elements, one per output row.
    for (std::size_t t = 0; t < in.size(); ++t) {
      const T* src = detail::flat<T>(in[t]);
      const std::size_t width = (offset[t + 1] - offset[t]) * a.inner;
      kernels::copy_rows<T>(
          a.outer, width, [&](std::size_t row) { return src + row * width; },
          [&](std::size_t row) { return dst + (row * a.n + offset[t]) * a.inner; });
    }
    return o;
  });
  if (autograd::needs_grad(in)) {
    std::vector<bool> wants(in.size());
    for (std::size_t t = 0; t < in.size(); ++t) wants[t] = in[t].requires_grad();
    record(out, "CatBackward", in, [d, offset, wants](const Tensor& g) {
      std::vector<Tensor> grads(wants.size());
      for (std::size_t t = 0; t < wants.size(); ++t) {
        if (wants[t]) {
          grads[t] = narrow(g, static_cast<std::int64_t>(d), static_cast<std::int64_t>(offset[t]),
                            static_cast<std::int64_t>(offset[t + 1] - offset[t])).contiguous();
        }
      }
      return grads;
    });
  }
  return out;
}

Tensor stack(const std::vector<Tensor>& tensors, std::int64_t dim) {
  check(!tensors.empty(), "stack", "expected a non-empty list of tensors");
  for (const Tensor& t : tensors) detail::check_defined(t, "stack");
  const Shape first = tensors[0].shape();
  for (std::size_t t = 1; t < tensors.size(); ++t) {
    check(tensors[t].shape() == first, "stack", "expected every tensor to have the same shape: tensor 0 has shape ",
          first, ", tensor ", t, " has shape ", tensors[t].shape());
  }
  // The new dim may go anywhere in [0, ndim]: wrap against ndim + 1.
  const std::int64_t d = detail::wrap_dim(dim, tensors[0].dim() + 1, "stack");
  std::vector<Tensor> parts;
  parts.reserve(tensors.size());
  for (const Tensor& t : tensors) parts.push_back(unsqueeze(t, d));
  return cat(parts, d);
}

Tensor Tensor::index_select(std::int64_t dim, const Tensor& index) const { return sorix::index_select(*this, dim, index); }
Tensor Tensor::gather(std::int64_t dim, const Tensor& index) const { return sorix::gather(*this, dim, index); }

}  // namespace sorix
