// Shape ops: flatten, squeeze, unsqueeze (reshapes, so their gradient is ReshapeBackward) and
// transpose, t, permute (a permuted copy, since every sorix tensor is contiguous and owns its
// storage; gradient: the inverse permutation).
//
// The permutation kernel first simplifies the problem: size-1 dims are dropped and output dims
// that stay adjacent in the input are merged, so e.g. permute({0, 2, 3, 1}) on [N, C, H, W] is a
// batch of [C, H*W] transposes. Then:
//   - the input's innermost dim is still innermost: output rows are contiguous runs of the input,
//     copied chunk by chunk;
//   - otherwise: a batch of 2-D transposes, done in kTile x kTile tiles so that both the reads
//     (down the input's contiguous dim) and the writes (along the output's) stay in cache.
// Work is cut into fixed chunks (of elements, or of tiles) that sorix::parallel runs; a copy is
// exact, so the result is the same for any thread count.
#include <algorithm>
#include <numeric>

#include "autograd/src/ops_internal.hpp"

namespace sorix {
namespace {

using detail::XShape;

// Side of the square tiles of the transpose kernel: a 32 x 32 tile of doubles is 8 KiB, so a
// tile's source and destination lines both fit in L1.
constexpr std::size_t kTile = 32;

// A mixed-radix counter over `size` (last digit fastest) that tracks the matching element offset
// in the input (and, where used, in the output) as it steps.
struct Odometer {
  std::vector<std::size_t> size, in_stride, out_stride, idx;
  std::size_t in = 0, out = 0;

  void seek(std::size_t linear) {
    idx.assign(size.size(), 0);
    in = out = 0;
    for (std::size_t d = size.size(); d-- > 0;) {
      idx[d] = linear % size[d];
      linear /= size[d];
      in += idx[d] * in_stride[d];
      out += idx[d] * out_stride[d];
    }
  }
  void next() {
    for (std::size_t d = size.size(); d-- > 0;) {
      in += in_stride[d];
      out += out_stride[d];
      if (++idx[d] < size[d]) return;
      in -= size[d] * in_stride[d];
      out -= size[d] * out_stride[d];
      idx[d] = 0;
    }
  }
};

// The permutation after dropping size-1 dims and merging output dims that are also adjacent (in
// the same order) in the input: output dim k has size[k] and input stride stride[k].
struct Plan {
  std::vector<std::size_t> size, stride;
};

Plan simplify(const XShape& xs, const std::vector<std::size_t>& perm) {
  std::vector<std::size_t> in_stride(xs.size(), 1);
  for (std::size_t d = xs.size(); d-- > 1;) in_stride[d - 1] = in_stride[d] * xs[d];
  Plan p;
  for (std::size_t k : perm) {
    if (xs[k] == 1) continue;
    if (!p.size.empty() && p.stride.back() == in_stride[k] * xs[k]) {
      p.size.back() *= xs[k];
      p.stride.back() = in_stride[k];
    } else {
      p.size.push_back(xs[k]);
      p.stride.push_back(in_stride[k]);
    }
  }
  return p;
}

// out = x permuted as described by plan (output row-major).
template <class T>
void permute_kernel(const T* in, T* out, const Plan& p) {
  const std::size_t nd = p.size.size();
  const std::size_t total = std::accumulate(p.size.begin(), p.size.end(), std::size_t{1}, std::multiplies<>());
  if (nd <= 1) {  // identity
    parallel::parallel_for(total, parallel::kChunkSize,
                           [&](std::size_t b, std::size_t e) { std::copy(in + b, in + e, out + b); });
    return;
  }
  const std::size_t last = nd - 1;
  const std::size_t L = p.size[last];
  const std::size_t q = static_cast<std::size_t>(std::find(p.stride.begin(), p.stride.end(), 1) - p.stride.begin());

  if (q == last) {
    // Rows of L elements, each contiguous in the input: copy chunks of the flat output.
    Odometer rows{{p.size.begin(), p.size.end() - 1}, {p.stride.begin(), p.stride.end() - 1},
                  std::vector<std::size_t>(last, 0), {}};
    parallel::parallel_for(total, parallel::kChunkSize, [&](std::size_t s, std::size_t e) {
      Odometer o = rows;
      o.seek(s / L);
      std::size_t off = s % L;
      while (s < e) {
        const std::size_t n = std::min(L - off, e - s);
        std::copy(in + o.in + off, in + o.in + off + n, out + s);
        s += n;
        off = 0;
        o.next();
      }
    });
    return;
  }

  // Batch of 2-D transposes between output dims q (contiguous in the input) and last
  // (contiguous in the output). Work unit: one tile; digits are the output dims before `last`
  // with dim q counted in tiles, then the tiles along `last`.
  std::vector<std::size_t> out_stride(nd, 1);
  for (std::size_t d = nd; d-- > 1;) out_stride[d - 1] = out_stride[d] * p.size[d];
  Odometer tiles;
  for (std::size_t d = 0; d < last; ++d) {
    const bool t = d == q;
    tiles.size.push_back(t ? (p.size[d] + kTile - 1) / kTile : p.size[d]);
    tiles.in_stride.push_back(t ? kTile : p.stride[d]);
    tiles.out_stride.push_back(t ? kTile * out_stride[d] : out_stride[d]);
  }
  tiles.size.push_back((L + kTile - 1) / kTile);
  tiles.in_stride.push_back(kTile * p.stride[last]);
  tiles.out_stride.push_back(kTile);
  const std::size_t num_tiles =
      std::accumulate(tiles.size.begin(), tiles.size.end(), std::size_t{1}, std::multiplies<>());
  const std::size_t rows_q = p.size[q], in_col = p.stride[last], out_row = out_stride[q];
  constexpr std::size_t kTilesPerChunk = parallel::kChunkSize / (kTile * kTile);
  constexpr std::size_t kInlineTiles = parallel::kInlineGrain / (kTile * kTile);
  parallel::parallel_for(
      num_tiles, kTilesPerChunk,
      [&](std::size_t s, std::size_t e) {
        Odometer o = tiles;
        o.seek(s);
        for (std::size_t u = s; u < e; ++u, o.next()) {
          const std::size_t ti = std::min(kTile, rows_q - o.idx[q] * kTile);
          const std::size_t tj = std::min(kTile, L - o.idx[last] * kTile);
          const T* src = in + o.in;
          T* dst = out + o.out;
          for (std::size_t i = 0; i < ti; ++i) {
            for (std::size_t j = 0; j < tj; ++j) dst[i * out_row + j] = src[i + j * in_col];
          }
        }
      },
      kInlineTiles);
}

// Validates dims (negative allowed) as a permutation of x's dims; `op` names the caller.
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

Tensor permute_impl(const Tensor& x, const std::vector<std::size_t>& perm, const char* op, const char* node) {
  const XShape xs = detail::to_xshape(x.shape(), op);
  XShape os(perm.size());
  for (std::size_t i = 0; i < perm.size(); ++i) os[i] = xs[perm[i]];
  const Plan plan = simplify(xs, perm);
  Tensor out = detail::visit_dtype(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    Tensor o = detail::make_empty<T>(os);
    if (o.numel() > 0) permute_kernel(x.data_ptr<T>(), o.data_ptr<T>(), plan);
    return o;
  });
  if (autograd::needs_grad({&x})) {
    std::vector<std::int64_t> inverse(perm.size());
    for (std::size_t i = 0; i < perm.size(); ++i) inverse[perm[i]] = static_cast<std::int64_t>(i);
    autograd::record(out, node, {x},
                     [inverse](const Tensor& g) -> std::vector<Tensor> { return {permute(g, inverse)}; });
  }
  return out;
}

}  // namespace

// ---- reshapes: the gradient is reshape's (ReshapeBackward) ---------------------------------------

Tensor flatten(const Tensor& x, std::int64_t start_dim, std::int64_t end_dim) {
  detail::check_defined(x, "flatten");
  const std::int64_t nd = x.dim();
  const std::int64_t s = detail::wrap_dim(start_dim, nd, "flatten");
  const std::int64_t e = detail::wrap_dim(end_dim, nd, "flatten");
  check(s <= e, "flatten", "start_dim ", start_dim, " must not come after end_dim ", end_dim,
        " (input shape ", x.shape(), ")");
  if (nd == 0) return reshape(x, {1});  // as PyTorch: a 0-dim tensor flattens to one element
  const Shape xs = x.shape();
  Shape out(xs.begin(), xs.begin() + s);
  out.push_back(std::accumulate(xs.begin() + s, xs.begin() + e + 1, std::int64_t{1}, std::multiplies<>()));
  out.insert(out.end(), xs.begin() + e + 1, xs.end());
  return reshape(x, out);
}

Tensor squeeze(const Tensor& x) {
  detail::check_defined(x, "squeeze");
  Shape out;
  for (std::int64_t s : x.shape()) {
    if (s != 1) out.push_back(s);
  }
  return reshape(x, out);
}

Tensor squeeze(const Tensor& x, std::int64_t dim) {
  detail::check_defined(x, "squeeze");
  Shape out = x.shape();
  const std::int64_t d = detail::wrap_dim(dim, x.dim(), "squeeze");
  // A dim of size other than 1 is left as it is (as PyTorch): the result is a copy of x.
  if (!out.empty() && out[static_cast<std::size_t>(d)] == 1) out.erase(out.begin() + d);
  return reshape(x, out);
}

Tensor unsqueeze(const Tensor& x, std::int64_t dim) {
  detail::check_defined(x, "unsqueeze");
  // The new dim may go anywhere in [0, ndim]: wrap against ndim + 1.
  const std::int64_t d = detail::wrap_dim(dim, x.dim() + 1, "unsqueeze");
  Shape out = x.shape();
  out.insert(out.begin() + d, 1);
  return reshape(x, out);
}

// ---- permutations: gradient is the inverse permutation -------------------------------------------

Tensor permute(const Tensor& x, const std::vector<std::int64_t>& dims) {
  detail::check_defined(x, "permute");
  return permute_impl(x, check_permutation(x, dims, "permute"), "permute", "PermuteBackward");
}

Tensor transpose(const Tensor& x, std::int64_t dim0, std::int64_t dim1) {
  detail::check_defined(x, "transpose");
  const std::int64_t nd = x.dim();
  const std::int64_t a = detail::wrap_dim(dim0, nd, "transpose");
  const std::int64_t b = detail::wrap_dim(dim1, nd, "transpose");
  std::vector<std::size_t> perm(static_cast<std::size_t>(nd));
  std::iota(perm.begin(), perm.end(), std::size_t{0});
  if (nd > 0) std::swap(perm[static_cast<std::size_t>(a)], perm[static_cast<std::size_t>(b)]);
  return permute_impl(x, perm, "transpose", "TransposeBackward");
}

Tensor Tensor::t() const {
  detail::check_defined(*this, "t");
  check(dim() <= 2, "t", "expects a tensor with <= 2 dims, got shape ", shape(), "; use transpose(dim0, dim1)");
  return dim() < 2 ? sorix::reshape(*this, shape()) : sorix::transpose(*this, 0, 1);
}

Tensor Tensor::transpose(std::int64_t dim0, std::int64_t dim1) const { return sorix::transpose(*this, dim0, dim1); }
Tensor Tensor::permute(const std::vector<std::int64_t>& dims) const { return sorix::permute(*this, dims); }
Tensor Tensor::squeeze() const { return sorix::squeeze(*this); }
Tensor Tensor::squeeze(std::int64_t dim) const { return sorix::squeeze(*this, dim); }
Tensor Tensor::unsqueeze(std::int64_t dim) const { return sorix::unsqueeze(*this, dim); }
Tensor Tensor::flatten(std::int64_t start_dim, std::int64_t end_dim) const {
  return sorix::flatten(*this, start_dim, end_dim);
}

}  // namespace sorix
