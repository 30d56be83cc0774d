// Indexing and joining: slice, index_select, gather, cat, stack, split, chunk.
//
// A tensor seen around dim d is [outer, n, inner] (outer: the product of the dims before d,
// inner: of those after). slice, index_select and cat copy whole rows of `inner` (or more)
// contiguous elements; gather picks single elements. Every kernel is a copy, or a scatter-add
// whose targets are split between tasks so that no two tasks touch the same element and each
// element sums its contributions in index order (never atomics): the bits never depend on the
// thread count. Index values are checked before any parallel work starts.
//
// Gradients are themselves ops (slice <-> slice_scatter, index_select <-> index_add,
// gather <-> scatter_add), each recording the other as its gradient, so second derivatives work.
#include <algorithm>
#include <numeric>
#include <stdexcept>

#include "autograd/src/ops_internal.hpp"
#include "core/src/kernels/scatter.hpp"

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

// For r in [0, rows): copies `width` elements from src_row(r) to dst_row(r). The flat range
// rows * width is cut into fixed chunks, so one long row is split between tasks too.
template <class T, class SrcRow, class DstRow>
void copy_rows(std::size_t rows, std::size_t width, SrcRow src_row, DstRow dst_row) {
  if (width == 0) return;
  parallel::parallel_for(rows * width, parallel::kChunkSize, [&](std::size_t s, std::size_t e) {
    std::size_t r = s / width, off = s % width;
    while (s < e) {
      const std::size_t n = std::min(width - off, e - s);
      const T* from = src_row(r) + off;
      std::copy(from, from + n, dst_row(r) + off);
      s += n;
      off = 0;
      ++r;
    }
  });
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
  const std::int64_t* idx = index.data_ptr<std::int64_t>();
  for (std::int64_t k = 0; k < index.numel(); ++k) {
    if (idx[k] < 0 || static_cast<std::size_t>(idx[k]) >= size) {
      throw std::out_of_range(error_message(op, "index ", idx[k], " is out of range for dimension ", dim,
                                            " with size ", size, " (input shape ", x.shape(),
                                            "); expected an index in [0, ", size, ")"));
    }
  }
}

// ---- slice and its gradient, slice_scatter -----------------------------------------------------
// Positions start, start + step, ... (len of them) along a dim.
struct Range {
  std::size_t start, len, step;
};

Tensor slice_scatter(const Tensor& g, const Shape& xshape, std::size_t dim, Range r);

Tensor slice_impl(const Tensor& x, std::size_t dim, Range r) {
  XShape os = detail::to_xshape(x.shape(), "slice");
  const Around a = around(os, dim);
  os[dim] = r.len;
  Tensor out = detail::visit_dtype(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    Tensor o = detail::make_empty<T>(os);
    const T* src = x.data_ptr<T>();
    T* dst = o.data_ptr<T>();
    copy_rows<T>(
        a.outer * r.len, a.inner,
        [&](std::size_t row) { return src + ((row / r.len) * a.n + r.start + (row % r.len) * r.step) * a.inner; },
        [&](std::size_t row) { return dst + row * a.inner; });
    return o;
  });
  if (autograd::needs_grad({&x})) {
    record(out, "SliceBackward", {x}, [xshape = x.shape(), dim, r](const Tensor& g) -> std::vector<Tensor> {
      return {slice_scatter(g, xshape, dim, r)};
    });
  }
  return out;
}

// Zeros of xshape with g written at the positions slice_impl(., dim, r) reads.
Tensor slice_scatter(const Tensor& g, const Shape& xshape, std::size_t dim, Range r) {
  Tensor out = zeros(xshape, g.dtype());
  const Around a = around(detail::to_xshape(xshape, "slice"), dim);
  detail::visit_dtype(g.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* src = g.data_ptr<T>();
    T* dst = out.data_ptr<T>();
    copy_rows<T>(
        a.outer * r.len, a.inner, [&](std::size_t row) { return src + row * a.inner; },
        [&](std::size_t row) { return dst + ((row / r.len) * a.n + r.start + (row % r.len) * r.step) * a.inner; });
  });
  if (autograd::needs_grad({&g})) {
    record(out, "SliceScatterBackward", {g}, [dim, r](const Tensor& gg) -> std::vector<Tensor> {
      return {slice_impl(gg, dim, r)};
    });
  }
  return out;
}

// ---- index_select and its gradient, index_add ------------------------------------------------------
Tensor index_add(const Tensor& g, const Shape& xshape, std::size_t dim, const Tensor& index);

Tensor index_select_impl(const Tensor& x, std::size_t dim, const Tensor& index) {
  XShape os = detail::to_xshape(x.shape(), "index_select");
  const Around a = around(os, dim);
  const std::size_t K = static_cast<std::size_t>(index.numel());
  os[dim] = K;
  const std::int64_t* idx = index.data_ptr<std::int64_t>();
  Tensor out = detail::visit_dtype(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    Tensor o = detail::make_empty<T>(os);
    const T* src = x.data_ptr<T>();
    T* dst = o.data_ptr<T>();
    copy_rows<T>(
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
  const kernels::RowOrder order(index.data_ptr<std::int64_t>(), K, a.n);
  detail::visit_dtype(g.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* src = g.data_ptr<T>();
    T* dst = out.data_ptr<T>();
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
  // Calls f(index element, x offset) for the elements of unit u, k-major.
  template <class F>
  void for_unit(std::size_t u, const std::int64_t* idx, F&& f) const {
    const std::size_t cb = u % col_blocks, rb = (u / col_blocks) % row_blocks, o = u / col_blocks / row_blocks;
    const std::size_t i0 = cb * cols, i1 = std::min(I, i0 + cols), k0 = rb * rows, k1 = std::min(K, k0 + rows);
    const std::size_t base = offset(o, 0, dim), sd = x_stride[dim];
    for (std::size_t k = k0; k < k1; ++k) {
      const std::size_t row = (o * K + k) * I;
      for (std::size_t i = i0; i < i1; ++i) {
        f(row + i, base + static_cast<std::size_t>(idx[row + i]) * sd + inner_offset[i]);
      }
    }
  }
  template <class F>
  void run(const std::int64_t* idx, F&& f) const {
    const std::size_t units = O * row_blocks * col_blocks;
    if (units == 0 || I == 0) return;
    parallel::parallel_for(
        units, std::max<std::size_t>(1, parallel::kChunkSize / (rows * cols)),
        [&](std::size_t s, std::size_t e) {
          for (std::size_t u = s; u < e; ++u) for_unit(u, idx, f);
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
  const std::int64_t* idx = index.data_ptr<std::int64_t>();
  Tensor out = detail::visit_dtype(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    Tensor o = detail::make_empty<T>(detail::to_xshape(index.shape(), "gather"));
    const T* src = x.data_ptr<T>();
    T* dst = o.data_ptr<T>();
    plan.run(idx, [&](std::size_t e, std::size_t xoff) { dst[e] = src[xoff]; });
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
    const T* src = g.data_ptr<T>();
    T* dst = out.data_ptr<T>();
    plan.run(index.data_ptr<std::int64_t>(), [&](std::size_t e, std::size_t xoff) { dst[xoff] += src[e]; });
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

Tensor slice(const Tensor& x, std::int64_t dim, std::int64_t start, std::int64_t end, std::int64_t step) {
  detail::check_defined(x, "slice");
  check(x.dim() > 0, "slice", "cannot slice a 0-dim tensor");
  check(step >= 1, "slice", "step must be >= 1, got ", step);
  const std::size_t d = static_cast<std::size_t>(detail::wrap_dim(dim, x.dim(), "slice"));
  const std::int64_t n = x.shape()[d];
  // Python slicing: negative bounds count from the end, then both are clamped to [0, n].
  auto clamp_bound = [n](std::int64_t b) { return std::clamp(b < 0 ? b + n : b, std::int64_t{0}, n); };
  const std::int64_t b = clamp_bound(start), e = std::max(b, clamp_bound(end));
  const std::size_t len = static_cast<std::size_t>((e - b + step - 1) / step);
  return slice_impl(x, d, {static_cast<std::size_t>(b), len, static_cast<std::size_t>(step)});
}

Tensor index_select(const Tensor& x, std::int64_t dim, const Tensor& index) {
  detail::check_defined(x, "index_select");
  check_int64_index(index, "index_select");
  check(x.dim() > 0, "index_select", "expected an input with at least 1 dim, got a 0-dim tensor");
  check(index.dim() == 1, "index_select", "expected a 1-D index, got shape ", index.shape());
  const std::size_t d = static_cast<std::size_t>(detail::wrap_dim(dim, x.dim(), "index_select"));
  check_index_values(index, static_cast<std::size_t>(x.shape()[d]), d, x, "index_select");
  return index_select_impl(x, d, index);
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
  return gather_impl(x, d, index);
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
    in.push_back(tensors[t].dtype() == dt ? tensors[t] : tensors[t].to(dt));
    offset.push_back(offset.back() + static_cast<std::size_t>(s[d]));
  }
  XShape os = detail::to_xshape(first, "cat");
  os[d] = offset.back();
  const Around a = around(os, d);
  Tensor out = detail::visit_dtype(dt, [&](auto tag) {
    using T = typename decltype(tag)::type;
    Tensor o = detail::make_empty<T>(os);
    T* dst = o.data_ptr<T>();
    // Each input is `outer` blocks of len * inner contiguous elements, one per output row.
    for (std::size_t t = 0; t < in.size(); ++t) {
      const T* src = in[t].data_ptr<T>();
      const std::size_t width = (offset[t + 1] - offset[t]) * a.inner;
      copy_rows<T>(
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
        if (wants[t]) grads[t] = slice_impl(g, d, {offset[t], offset[t + 1] - offset[t], 1});
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

std::vector<Tensor> split(const Tensor& x, std::int64_t split_size, std::int64_t dim) {
  detail::check_defined(x, "split");
  check(x.dim() > 0, "split", "cannot split a 0-dim tensor");
  const std::size_t d = static_cast<std::size_t>(detail::wrap_dim(dim, x.dim(), "split"));
  const std::int64_t n = x.shape()[d];
  check(split_size > 0 || (split_size == 0 && n == 0), "split", "split_size must be >= 1 (0 only for a dim of size 0), got ",
        split_size, " for dim ", d, " of size ", n);
  if (n == 0) return {slice_impl(x, d, {0, 0, 1})};
  std::vector<Tensor> pieces;
  for (std::int64_t s = 0; s < n; s += split_size) {
    const std::int64_t len = std::min(split_size, n - s);
    pieces.push_back(slice_impl(x, d, {static_cast<std::size_t>(s), static_cast<std::size_t>(len), 1}));
  }
  return pieces;
}

std::vector<Tensor> chunk(const Tensor& x, std::int64_t chunks, std::int64_t dim) {
  detail::check_defined(x, "chunk");
  check(chunks >= 1, "chunk", "number of chunks must be >= 1, got ", chunks);
  check(x.dim() > 0, "chunk", "cannot chunk a 0-dim tensor");
  const std::size_t d = static_cast<std::size_t>(detail::wrap_dim(dim, x.dim(), "chunk"));
  const std::int64_t n = x.shape()[d];
  if (n == 0) {  // as PyTorch: `chunks` empty pieces
    std::vector<Tensor> pieces;
    for (std::int64_t c = 0; c < chunks; ++c) pieces.push_back(slice_impl(x, d, {0, 0, 1}));
    return pieces;
  }
  return split(x, (n + chunks - 1) / chunks, static_cast<std::int64_t>(d));
}

Tensor Tensor::slice(std::int64_t dim, std::int64_t start, std::int64_t end, std::int64_t step) const {
  return sorix::slice(*this, dim, start, end, step);
}
Tensor Tensor::index_select(std::int64_t dim, const Tensor& index) const { return sorix::index_select(*this, dim, index); }
Tensor Tensor::gather(std::int64_t dim, const Tensor& index) const { return sorix::gather(*this, dim, index); }
std::vector<Tensor> Tensor::split(std::int64_t split_size, std::int64_t dim) const {
  return sorix::split(*this, split_size, dim);
}
std::vector<Tensor> Tensor::chunk(std::int64_t chunks, std::int64_t dim) const { return sorix::chunk(*this, chunks, dim); }

}  // namespace sorix
