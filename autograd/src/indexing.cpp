// libtorch-style indexing: Tensor::index, index_put_, masked_fill, masked_select, nonzero and
// where with scalars (the index list types are in sorix/core/indexing.hpp).
//
// index() first applies the basic indices (integers, Slice, None, Ellipsis, true/false) as view
// ops, so with basic indices alone the result is a view. Tensor indices (advanced indexing) then
// pick elements: masks become int64 positions (nonzero), every position tensor broadcasts to one
// shape B, the indexed dims are moved to the front and merged into one, and one index_select
// picks the rows; B replaces the indexed dims where the first of them stood if they were
// adjacent, else at the front (NumPy's rule). Every step is a differentiable op, so gradients
// reach the source through index_select's scatter-add (deterministic, see index.cpp).
//
// index_put_ with tensor indices finds the row-major positions the same index list selects (by
// indexing a tensor of positions), writes the values there in one serial pass (with repeated
// positions the last one in row-major order wins, on every run), and stores the result in place
// (through assign_inplace, so views and autograd behave as for every in-place op).
#include <limits>

#include "sorix_autograd/ops_internal.hpp"
#include "sorix_core/kernels/broadcast.hpp"

namespace sorix {

namespace indexing {
TensorIndex::TensorIndex(const char* s) : kind(Kind::Ellipsis) {
  check(s != nullptr && std::string(s) == "...", "index",
        "a string index must be \"...\" (Ellipsis), got \"", s == nullptr ? "" : s, "\"");
}
}  // namespace indexing

namespace {

using indexing::TensorIndex;
using Kind = TensorIndex::Kind;

// A tensor index with the dim of the (basic-indexed) view it applies to.
struct Advanced {
  std::size_t dim;
  Tensor index;  // int64 positions, or a mask covering mask.dim() dims
  bool mask;
};

struct Basic {
  Tensor view;
  std::vector<Advanced> advanced;
};

// NumPy broadcasting of two shapes: the binary kernels' own rule (and error message).
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  return detail::to_shape(kernels::broadcast_plan(detail::to_xshape(a, op), detail::to_xshape(b, op), op).out_shape);
}

// As PyTorch 1.13: bool (and uint8) tensors are masks, int64 tensors positions; others throw.
bool is_mask(const TensorIndex& i) {
  const Dtype d = i.tensor.dtype();
  check(d == Dtype::Bool || d == Dtype::UInt8 || d == Dtype::Int64, "index",
        "tensors used as indices must be int64 (positions) or bool (masks; uint8 too, as PyTorch 1.13), got ",
        dtype_name(d));
  return d != Dtype::Int64;
}

std::size_t dims_consumed(const TensorIndex& i) {
  switch (i.kind) {
    case Kind::Integer:
    case Kind::Slice:
      return 1;
    case Kind::Tensor:
      return is_mask(i) ? static_cast<std::size_t>(i.tensor.dim()) : 1;
    default:
      return 0;
  }
}

Basic apply_basic(const Tensor& x, const std::vector<TensorIndex>& indices, const char* op) {
  detail::check_defined(x, op);
  std::size_t consumed = 0, ellipses = 0;
  for (const TensorIndex& i : indices) {
    if (i.kind == Kind::Tensor) {
      detail::check_defined(i.tensor, op);
      check(!is_mask(i) || i.tensor.dim() > 0, op, "a 0-dim mask is not supported as an index; use true or false");
    }
    consumed += dims_consumed(i);
    if (i.kind == Kind::Ellipsis) ++ellipses;
  }
  const auto nd = static_cast<std::size_t>(x.dim());
  check(ellipses <= 1, op, "an index can only have a single ellipsis ('...')");
  check<std::out_of_range>(consumed <= nd, op, "too many indices for a tensor of dimension ", nd, " (shape ", x.shape(),
                           "): the index list uses ", consumed);
  Basic b{x, {}};
  std::size_t d = 0;
  for (const TensorIndex& i : indices) {
    switch (i.kind) {
      case Kind::Integer:
        b.view = sorix::select(b.view, static_cast<std::int64_t>(d), i.integer);
        break;
      case Kind::Slice: {
        const auto& s = i.slice;
        check(s.step() >= 1, op, "slice step must be >= 1 (negative steps are not supported), got ", s.step());
        b.view = sorix::slice(b.view, static_cast<std::int64_t>(d), s.start().value_or(0),
                       s.stop().value_or(std::numeric_limits<std::int64_t>::max()), s.step());
        ++d;
        break;
      }
      case Kind::None:
        b.view = sorix::unsqueeze(b.view, static_cast<std::int64_t>(d));
        ++d;
        break;
      case Kind::Boolean:
        b.view = sorix::unsqueeze(b.view, static_cast<std::int64_t>(d));
        if (!i.boolean) b.view = sorix::narrow(b.view, static_cast<std::int64_t>(d), 0, 0);
        ++d;
        break;
      case Kind::Ellipsis:
        d += nd - consumed;
        break;
      case Kind::Tensor:
        b.advanced.push_back({d, i.tensor, is_mask(i)});
        d += dims_consumed(i);
        break;
    }
  }
  return b;
}

// Masks become one int64 position tensor per dim they cover; positions are wrapped (negative
// counts from the end) and checked against the dim's size.
std::vector<Advanced> positions(const Tensor& view, const std::vector<Advanced>& advanced, const char* op) {
  std::vector<Advanced> out;
  const Shape vs = view.shape();
  for (const Advanced& a : advanced) {
    if (a.mask) {
      const Tensor& mask = a.index;
      for (std::int64_t k = 0; k < mask.dim(); ++k) {
        const std::size_t d = a.dim + static_cast<std::size_t>(k);
        check(d < vs.size() && mask.shape()[static_cast<std::size_t>(k)] == vs[d], op, "the mask of shape ",
              a.index.shape(), " does not match the indexed dims of shape ", vs, " starting at dim ", a.dim);
      }
      const Tensor nz = nonzero(mask);  // [count, mask dims]
      for (std::int64_t k = 0; k < mask.dim(); ++k) {
        out.push_back({a.dim + static_cast<std::size_t>(k), sorix::select(nz, 1, k).contiguous(), false});
      }
      continue;
    }
    const std::int64_t n = vs[a.dim];
    Tensor idx = detail::contiguous_copy(a.index);
    std::int64_t* p = detail::flat<std::int64_t>(idx);
    for (std::int64_t k = 0; k < idx.numel(); ++k) {
      check<std::out_of_range>(p[k] >= -n && p[k] < n, op, "index ", p[k], " is out of range for dim ", a.dim,
                               " of size ", n, " (indexed shape ", vs, ")");
      if (p[k] < 0) p[k] += n;
    }
    out.push_back({a.dim, idx, false});
  }
  return out;
}

Tensor advanced_index(const Tensor& view, const std::vector<Advanced>& adv_in, const char* op) {
  const std::vector<Advanced> adv = positions(view, adv_in, op);
  const auto nd = static_cast<std::size_t>(view.dim());
  // The broadcast shape of every position tensor.
  Shape bshape;
  for (const Advanced& a : adv) bshape = broadcast_shapes(bshape, a.index.shape(), op);
  std::vector<bool> indexed(nd, false);
  std::vector<std::int64_t> order;
  for (const Advanced& a : adv) {
    indexed[a.dim] = true;
    order.push_back(static_cast<std::int64_t>(a.dim));
  }
  bool adjacent = true;
  for (std::size_t k = 1; k < adv.size(); ++k) adjacent = adjacent && adv[k].dim == adv[k - 1].dim + 1;
  Shape rest;
  for (std::size_t d = 0; d < nd; ++d) {
    if (!indexed[d]) {
      order.push_back(static_cast<std::int64_t>(d));
      rest.push_back(view.shape()[d]);
    }
  }
  // Row-major position over the indexed dims, then one index_select on the merged dim.
  const Tensor moved = sorix::permute(view, order);
  std::int64_t merged = 1;
  Tensor linear = zeros(bshape, Dtype::Int64);
  for (std::size_t k = adv.size(); k-- > 0;) {
    linear = linear + adv[k].index * merged;  // an integer Scalar: stays int64
    merged *= view.shape()[adv[k].dim];
  }
  Shape flat_shape{merged};
  flat_shape.insert(flat_shape.end(), rest.begin(), rest.end());
  Tensor picked = sorix::index_select(sorix::reshape(moved, flat_shape), 0, sorix::reshape(linear, {-1}));
  Shape out_shape = bshape;
  out_shape.insert(out_shape.end(), rest.begin(), rest.end());
  Tensor out = sorix::reshape(picked, out_shape);
  const std::size_t first = adv.front().dim;
  if (adjacent && first > 0 && !bshape.empty()) {
    // Move B from the front to where the first indexed dim stood.
    std::vector<std::int64_t> perm;
    const std::size_t nb = bshape.size();
    for (std::size_t k = 0; k < first; ++k) perm.push_back(static_cast<std::int64_t>(nb + k));
    for (std::size_t k = 0; k < nb; ++k) perm.push_back(static_cast<std::int64_t>(k));
    for (std::size_t k = nb + first; k < out_shape.size(); ++k) perm.push_back(static_cast<std::int64_t>(k));
    out = sorix::permute(out, perm).contiguous();
  }
  return out;
}

// base with values (broadcast to positions' shape) written at the flat row-major `positions`.
// Gradient: to base, g with those positions zeroed; to values, g at those positions.
Tensor put_values(const Tensor& base, const Tensor& positions, const Tensor& values) {
  const Tensor v = detail::contiguous_copy(sorix::expand(values.to(base.dtype()), positions.shape()));
  Tensor out = detail::contiguous_copy(base);
  const std::int64_t* pos = detail::flat<std::int64_t>(positions);
  const auto n = static_cast<std::size_t>(positions.numel());
  detail::visit_dtype(base.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* src = detail::flat<T>(v);
    T* dst = detail::flat<T>(out);
    for (std::size_t i = 0; i < n; ++i) dst[pos[i]] = src[i];  // serial: the last repeat wins
  });
  if (autograd::needs_grad({&base, &values})) {
    autograd::record(out, "IndexPutBackward", {base, values},
                     [positions, vshape = values.shape()](const Tensor& g) {
                       Tensor gb = put_values(g, positions, zeros({}, g.dtype()));
                       Tensor gv = sum_to(sorix::reshape(g, {-1}).index_select(0, sorix::reshape(positions, {-1})).reshape(
                                              positions.shape()),
                                          vshape);
                       return std::vector<Tensor>{gb, gv};
                     });
  }
  return out;
}

// A mask argument as a bool tensor: bool as it is, uint8 (which PyTorch 1.13 still takes) read
// as nonzero; any other dtype throws, as PyTorch.
Tensor bool_mask(const Tensor& mask, const char* op) {
  detail::check_defined(mask, op);
  check(mask.dtype() == Dtype::Bool || mask.dtype() == Dtype::UInt8, op,
        "expected a bool mask (or uint8, as PyTorch 1.13), got a tensor of dtype ", dtype_name(mask.dtype()),
        "; compare it first (mask.ne(0))");
  return mask.to(Dtype::Bool);
}

}  // namespace

Tensor nonzero(const Tensor& x) {
  detail::check_defined(x, "nonzero");
  const Tensor xc = detail::contiguous_copy_if_needed(x);
  const Shape s = x.shape();
  const auto nd = static_cast<std::int64_t>(s.size());
  std::vector<std::int64_t> coords;
  detail::visit_dtype(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* p = detail::flat<T>(xc);
    std::vector<std::int64_t> idx(s.size(), 0);
    for (std::int64_t i = 0; i < x.numel(); ++i) {
      if (p[i] != T(0)) coords.insert(coords.end(), idx.begin(), idx.end());
      for (std::size_t d = s.size(); d-- > 0;) {
        if (++idx[d] < s[d]) break;
        idx[d] = 0;
      }
    }
  });
  const std::int64_t count = nd == 0 ? static_cast<std::int64_t>(x.to(Dtype::Bool).item<bool>()) : static_cast<std::int64_t>(coords.size()) / nd;
  Tensor out = empty({count, nd}, Dtype::Int64);
  std::copy(coords.begin(), coords.end(), detail::flat<std::int64_t>(out));
  return out;
}

// A scalar takes the dtype the arithmetic operators give it beside the other argument; two
// scalars promote by category alone (two floating numbers: float32, the default dtype).
Tensor where(const Tensor& cond, Scalar a, const Tensor& b) { return sorix::where(cond, detail::scalar_for(b, a, "where"), b); }
Tensor where(const Tensor& cond, const Tensor& a, Scalar b) { return sorix::where(cond, a, detail::scalar_for(a, b, "where")); }
Tensor where(const Tensor& cond, Scalar a, Scalar b) {
  const Dtype dt = promote(default_dtype_of(a.kind()), default_dtype_of(b.kind()));
  return sorix::where(cond, scalar_tensor(a, dt), scalar_tensor(b, dt));
}

Tensor Tensor::index(const std::vector<indexing::TensorIndex>& indices) const {
  Basic b = apply_basic(*this, indices, "index");
  if (b.advanced.empty()) return b.view;
  return advanced_index(b.view, b.advanced, "index");
}

Tensor& Tensor::index_put_(const std::vector<indexing::TensorIndex>& indices, const Tensor& value) {
  detail::check_inplace(*this, "index_put_");
  detail::check_defined(value, "index_put_");
  Basic b = apply_basic(*this, indices, "index_put_");
  if (b.advanced.empty()) {
    b.view.copy_(value);  // a view of this tensor: the copy lands here
    return *this;
  }
  // The row-major positions (in this tensor) of the elements the index list selects.
  Tensor ids;
  {
    NoGradGuard no_grad;
    const Basic bid = apply_basic(arange(static_cast<double>(numel()), Dtype::Int64).view(shape()), indices, "index_put_");
    ids = advanced_index(bid.view, bid.advanced, "index_put_");
  }
  const Shape vs = value.shape(), is = ids.shape();
  bool fits = vs.size() <= is.size();
  for (std::size_t k = 0; fits && k < vs.size(); ++k) {
    const std::int64_t dv = vs[vs.size() - 1 - k], di = is[is.size() - 1 - k];
    fits = dv == di || dv == 1;
  }
  check(fits, "index_put_", "the value of shape ", vs, " cannot be broadcast to the indexed shape ", is);
  return detail::assign_inplace(*this, put_values(*this, ids, value), "index_put_");
}

Tensor& Tensor::index_put_(const std::vector<indexing::TensorIndex>& indices, Scalar value) {
  detail::check_defined(*this, "index_put_");
  return index_put_(indices, scalar_tensor(value, dtype()));
}

Tensor Tensor::masked_fill(const Tensor& mask, const Tensor& value) const {
  detail::check_defined(*this, "masked_fill");
  detail::check_defined(value, "masked_fill");
  check(value.dim() == 0, "masked_fill", "expected a 0-dim value tensor, got shape ", value.shape());
  const Tensor m = bool_mask(mask, "masked_fill");
  check(sorix::expand(m, shape()).shape() == shape(), "masked_fill", "mask of shape ", mask.shape(),
        " does not broadcast to the tensor's shape ", shape());
  return sorix::where(m, value.to(dtype()), *this);
}

Tensor Tensor::masked_fill(const Tensor& mask, Scalar value) const {
  detail::check_defined(*this, "masked_fill");
  return masked_fill(mask, scalar_tensor(value, dtype()));
}

Tensor& Tensor::masked_fill_(const Tensor& mask, const Tensor& value) {
  detail::check_inplace(*this, "masked_fill_");
  return detail::assign_inplace(*this, masked_fill(mask, value), "masked_fill_");
}

Tensor& Tensor::masked_fill_(const Tensor& mask, Scalar value) {
  detail::check_inplace(*this, "masked_fill_");
  return detail::assign_inplace(*this, masked_fill(mask, value), "masked_fill_");
}

Tensor Tensor::masked_select(const Tensor& mask) const {
  detail::check_defined(*this, "masked_select");
  const Tensor m = bool_mask(mask, "masked_select");
  // Both broadcast to one shape (as PyTorch), then the mask picks in row-major order.
  const Shape s = broadcast_shapes(shape(), m.shape(), "masked_select");
  if (s.empty()) return sorix::reshape(m.item<bool>() ? *this : sorix::narrow(sorix::reshape(*this, {1}), 0, 0, 0), {-1});
  return sorix::expand(*this, s).index({sorix::expand(m, s)}).reshape({-1});
}

}  // namespace sorix
