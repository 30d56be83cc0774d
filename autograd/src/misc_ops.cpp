// allclose, equal, one_hot, repeat, diag, logspace, bmm: composed from sorix's ops (views,
// elementwise ops, reductions, matmul) where they have a gradient; one_hot and diag's 1-D form
// write their few elements directly (a copy, no arithmetic).
#include <cmath>
#include <limits>

#include "sorix_autograd/ops_internal.hpp"

namespace sorix {
namespace {

// 1 where v is finite (v - v is 0), else 0; float64.
Tensor finite_mask(const Tensor& v) { return (v - v).eq(0.0); }

}  // namespace

bool allclose(const Tensor& a, const Tensor& b, double rtol, double atol, bool equal_nan) {
  detail::check_defined(a, "allclose");
  detail::check_defined(b, "allclose");
  check(rtol >= 0.0 && atol >= 0.0, "allclose", "rtol and atol must be >= 0, got rtol ", rtol, " and atol ", atol);
  NoGradGuard no_grad;
  const Tensor x = a.to(Dtype::Float64), y = b.to(Dtype::Float64);
  // isclose as PyTorch: equal (infs included), or both finite and |a - b| <= atol + rtol |b|,
  // or both NaN when equal_nan.
  Tensor ok = x.eq(y) + abs(x - y).le(abs(y) * rtol + atol) * finite_mask(x) * finite_mask(y);
  if (equal_nan) ok = ok + x.ne(x) * y.ne(y);
  return all(ok).item<double>() != 0.0;
}

bool equal(const Tensor& a, const Tensor& b) {
  detail::check_defined(a, "equal");
  detail::check_defined(b, "equal");
  if (a.shape() != b.shape()) return false;
  NoGradGuard no_grad;
  return all(a.eq(b)).item<double>() != 0.0;
}

Tensor one_hot(const Tensor& index, std::int64_t num_classes) {
  detail::check_defined(index, "one_hot");
  check(index.dtype() == Dtype::Int64, "one_hot", "expected an int64 index tensor, got ", dtype_name(index.dtype()));
  check(num_classes >= -1, "one_hot", "num_classes must be -1 (inferred) or >= 0, got ", num_classes);
  const Tensor ic = detail::contiguous_copy_if_needed(index);
  const auto n = static_cast<std::size_t>(ic.numel());
  const std::int64_t* ix = n > 0 ? detail::flat<std::int64_t>(ic) : nullptr;
  if (num_classes == -1) {
    check(n > 0, "one_hot", "cannot infer num_classes from an empty index tensor (give num_classes)");
    num_classes = max(ic).item<std::int64_t>() + 1;
  }
  for (std::size_t k = 0; k < n; ++k) {
    check(ix[k] >= 0 && ix[k] < num_classes, "one_hot", "index ", ix[k], " at position ", k,
          " is out of range for num_classes ", num_classes, " (expected 0 <= index < num_classes)");
  }
  Shape s = index.shape();
  s.push_back(num_classes);
  Tensor out = zeros(s, Dtype::Int64);
  std::int64_t* o = n > 0 && num_classes > 0 ? detail::flat<std::int64_t>(out) : nullptr;
  parallel::parallel_for(o != nullptr ? n : 0, parallel::kChunkSize, [&](std::size_t b, std::size_t e) {
    for (std::size_t k = b; k < e; ++k) o[k * static_cast<std::size_t>(num_classes) + static_cast<std::size_t>(ix[k])] = 1;
  });
  return out;
}

Tensor repeat(const Tensor& x, const std::vector<std::int64_t>& repeats) {
  detail::check_defined(x, "repeat");
  check(repeats.size() >= static_cast<std::size_t>(x.dim()), "repeat", "the number of repeats (", repeats.size(),
        ") must be at least the number of dims of the tensor (", x.dim(), "), got repeats ", repeats);
  for (std::int64_t r : repeats) check(r >= 0, "repeat", "repeats must be >= 0, got ", repeats);
  // [s0, s1, ...] (leading 1s added) viewed as [1, s0, 1, s1, ...], expanded to [r0, s0, r1, s1, ...]
  // and flattened pairwise: the copy's gradient is expand's (a sum over the copies).
  const std::size_t lead = repeats.size() - static_cast<std::size_t>(x.dim());
  Shape paired, expanded, out;
  for (std::size_t k = 0; k < repeats.size(); ++k) {
    const std::int64_t s = k < lead ? 1 : x.size(static_cast<std::int64_t>(k - lead));
    paired.insert(paired.end(), {1, s});
    expanded.insert(expanded.end(), {repeats[k], s});
    out.push_back(repeats[k] * s);
  }
  return reshape(expand(reshape(x, paired), expanded).contiguous(), out);
}

Tensor diag(const Tensor& x, std::int64_t diagonal) {
  detail::check_defined(x, "diag");
  check(x.dim() == 1 || x.dim() == 2, "diag", "expected a 1-D or 2-D tensor, got ", x.dim(), "-D of shape ",
        x.shape());
  if (x.dim() == 2) {
    // The diagonal as a strided view of the contiguous matrix, copied (as PyTorch's diag).
    const Tensor xc = x.contiguous();
    const std::int64_t R = x.size(0), C = x.size(1);
    const std::int64_t len =
        std::max<std::int64_t>(0, diagonal >= 0 ? std::min(R, C - diagonal) : std::min(R + diagonal, C));
    if (len == 0) return narrow(reshape(xc, {-1}), 0, 0, 0).clone();
    const std::int64_t start = diagonal >= 0 ? diagonal : -diagonal * C;
    return as_strided(xc, {len}, {C + 1}, xc.storage_offset() + start).clone();
  }
  const std::int64_t n = x.size(0), m = n + (diagonal >= 0 ? diagonal : -diagonal);
  Tensor out = zeros({m, m}, x.dtype());
  const Tensor xc = detail::contiguous_copy_if_needed(x);
  detail::visit_dtype(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    if (n == 0) return;
    const T* p = detail::flat<T>(xc);
    T* q = detail::flat<T>(out);
    const std::int64_t r0 = diagonal >= 0 ? 0 : -diagonal, c0 = diagonal >= 0 ? diagonal : 0;
    for (std::int64_t i = 0; i < n; ++i) q[(r0 + i) * m + c0 + i] = p[i];
  });
  if (autograd::needs_grad({&x})) {
    autograd::record(out, "DiagBackward", {x},
                     [diagonal](const Tensor& g) { return std::vector<Tensor>{diag(g, diagonal)}; });
  }
  return out;
}

Tensor logspace(double start, double end, std::int64_t steps, double base, TensorOptions options) {
  check(steps >= 0, "logspace", "number of steps must be non-negative, got ", steps);
  // In float64, then converted: base ** exponent on sorix's pow (the same bits on every CPU).
  Tensor out = pow(full({}, base, Dtype::Float64), linspace(start, end, steps, Dtype::Float64)).to(options.dtype_);
  if (options.requires_grad_) out.requires_grad_(true);
  return out;
}

Tensor bmm(const Tensor& a, const Tensor& b) {
  detail::check_defined(a, "bmm");
  detail::check_defined(b, "bmm");
  check(a.dim() == 3 && b.dim() == 3, "bmm", "expected two 3-D tensors [B, n, m] and [B, m, p], got shapes ",
        a.shape(), " and ", b.shape());
  check(a.size(0) == b.size(0), "bmm", "batch sizes differ: ", a.shape(), " and ", b.shape());
  check(a.size(2) == b.size(1), "bmm", "shapes ", a.shape(), " and ", b.shape(),
        " cannot be multiplied (expected [B, n, m] and [B, m, p])");
  check(a.dtype() == b.dtype(), "bmm", "dtypes differ: ", dtype_name(a.dtype()), " and ", dtype_name(b.dtype()));
  return matmul(a, b);
}

bool Tensor::allclose(const Tensor& other, double rtol, double atol, bool equal_nan) const {
  return sorix::allclose(*this, other, rtol, atol, equal_nan);
}
bool Tensor::equal(const Tensor& other) const { return sorix::equal(*this, other); }
Tensor Tensor::repeat(const std::vector<std::int64_t>& repeats) const { return sorix::repeat(*this, repeats); }
Tensor Tensor::diag(std::int64_t diagonal) const { return sorix::diag(*this, diagonal); }
Tensor Tensor::bmm(const Tensor& o) const { return sorix::bmm(*this, o); }

}  // namespace sorix
