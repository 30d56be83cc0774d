// cumsum, cumprod and prod: each line along dim one add (multiply) chain in index order, lines split
// across tasks (core/internal/sorix_core/kernels/scan.hpp), so the bits never depend on the thread count or the
// CPU. Gradients are composed from differentiable ops (themselves scans), so they differentiate
// again.
#include "sorix_autograd/ops_internal.hpp"
#include "sorix_core/kernels/scan.hpp"

namespace sorix {
namespace {

// The forward of a scan along dim, no graph: x's dtype and shape.
template <bool Product>
Tensor scan_forward(const Tensor& x, std::int64_t dim, bool reverse, const char* op) {
  detail::check_defined(x, op);
  const Tensor xc = detail::contiguous_copy_if_needed(x);
  const detail::XShape xs = detail::to_xshape(x.shape(), op);
  Tensor out = detail::make_empty(x.dtype(), xs);
  if (xs.empty()) {  // a 0-dim tensor is its own scan (as PyTorch); dim must still be valid
    detail::wrap_dim(dim, 1, op);
    return xc.clone().detach();
  }
  const auto d = static_cast<std::size_t>(detail::wrap_dim(dim, x.dim(), op));
  detail::visit_numeric(x.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    kernels::scan::scan_axis<Product>(detail::flat<T>(xc), detail::flat<T>(out), detail::prod(xs, 0, d), xs[d],
                                      detail::prod(xs, d + 1, xs.size()), reverse);
  });
  return out;
}

// cumsum forward (reverse: from the end); the gradient of one direction is the other's scan.
Tensor cumsum_dir(const Tensor& x, std::int64_t dim, bool reverse) {
  Tensor out = scan_forward<false>(x, dim, reverse, "cumsum");
  if (autograd::needs_grad({&x})) {
    autograd::record(out, reverse ? "CumsumReverseBackward" : "CumsumBackward", {x},
                     [dim, reverse](const Tensor& g) { return std::vector<Tensor>{cumsum_dir(g, dim, !reverse)}; });
  }
  return out;
}

// d/dx_k of sum_j g_j y_j with y = cumprod(x), line by line, z the first zero of the line:
//   k < z:  sum_{j >= k} g_j y_j / x_k                  (x_k != 0)
//   k == z: sum_{j >= z} g_j prod_{i <= j, i != z} x_i  (= reverse cumsum of g * cumprod(x, x_z -> 1))
//   k > z:  0                                           (every term keeps the factor x_z = 0)
// as PyTorch's cumprod_backward. The masks are constants; the rest is differentiable.
Tensor cumprod_grad(const Tensor& g, const Tensor& x, std::int64_t dim) {
  Tensor before, at;
  {
    NoGradGuard no_grad;
    const Tensor zero = x.eq(0.0);
    const Tensor seen = cumsum_dir(zero.to(Dtype::Int64), dim, false);  // zeros up to and including k (exact)
    before = seen.eq(0);
    at = logical_and(zero, seen.eq(1));
  }
  const Tensor y = cumprod(x, dim);
  const Tensor term_before = cumsum_dir(g * y, dim, true) / where(before, x, 1.0);
  const Tensor term_at = cumsum_dir(g * cumprod(where(at, 1.0, x), dim), dim, true);
  return where(before, term_before, where(at, term_at, 0.0));
}

}  // namespace

namespace {
// As PyTorch, bool and integer tensors scan in int64.
Tensor scan_input(const Tensor& x, const char* op) {
  detail::check_defined(x, op);
  return is_integral(x.dtype(), true) && x.dtype() != Dtype::Int64 ? x.to(Dtype::Int64) : x;
}
}  // namespace

Tensor cumsum(const Tensor& x, std::int64_t dim) { return cumsum_dir(scan_input(x, "cumsum"), dim, false); }

Tensor cumprod(const Tensor& x_in, std::int64_t dim) {
  const Tensor x = scan_input(x_in, "cumprod");
  Tensor out = scan_forward<true>(x, dim, false, "cumprod");
  if (autograd::needs_grad({&x})) {
    autograd::record(out, "CumprodBackward", {x}, [in = autograd::SavedTensor(x), dim](const Tensor& g) {
      return std::vector<Tensor>{cumprod_grad(g, in.unpack("cumprod"), dim)};
    });
  }
  return out;
}

// prod is the last element of cumprod's line: the same multiply chain in index order (the same
// bits at any thread count), bool and integers in int64 (wrapping), and cumprod's gradient, which
// handles zeros. A line of no elements has the empty product 1 (sum's 0, plus 1: dtype and graph
// as the other lines').
Tensor prod(const Tensor& x, std::int64_t dim, bool keepdim) {
  detail::check_defined(x, "prod");
  if (x.dim() == 0) {  // as PyTorch: dim 0 or -1 of a 0-dim tensor is the tensor itself
    detail::normalize_dims({dim}, 1, "prod");
    return prod(x);
  }
  const std::int64_t d = static_cast<std::int64_t>(detail::normalize_dims({dim}, x.dim(), "prod").front());
  if (x.size(d) == 0) return sum(x, {d}, keepdim) + 1;
  const Tensor last = select(cumprod(x, d), d, -1);
  return keepdim ? unsqueeze(last, d) : last;
}

Tensor prod(const Tensor& x) {
  detail::check_defined(x, "prod");
  return prod(x.reshape({-1}), 0, false);
}

Tensor Tensor::prod() const { return sorix::prod(*this); }
Tensor Tensor::prod(std::int64_t dim, bool keepdim) const { return sorix::prod(*this, dim, keepdim); }
Tensor Tensor::cumsum(std::int64_t dim) const { return sorix::cumsum(*this, dim); }
Tensor Tensor::cumprod(std::int64_t dim) const { return sorix::cumprod(*this, dim); }

}  // namespace sorix
