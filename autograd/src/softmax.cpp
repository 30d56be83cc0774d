// softmax and log_softmax along one dim: fused kernels over x viewed as [outer, r, inner], each
// numerically stable (the max along the dim is subtracted before exp), with hand-written
// gradients beside them:
//   softmax:     dx = y * (g - sum(g * y, dim))
//   log_softmax: dx = g - exp(y) * sum(g, dim)
// A plain backward runs fused kernels on the saved output; under create_graph the same formulas
// are written with Tensor ops on a recomputed output, so second derivatives flow.
//
// The loops are the kernel layer's (core/internal/sorix_core/kernels/softmax.hpp).
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

#include "sorix_autograd/ops_internal.hpp"
#include "sorix_core/kernels/softmax.hpp"

namespace sorix {
namespace {

using kernels::softmax::softmax_backward;
using kernels::softmax::softmax_forward;

struct Plan {
  std::size_t outer = 1, r = 1, inner = 1;
  std::int64_t dim = 0;  // wrapped
};

Plan plan_of(const Tensor& x, std::int64_t dim, const char* op) {
  Plan p;
  const detail::XShape xs = detail::to_xshape(x.shape(), op);
  p.dim = detail::wrap_dim(dim, x.dim(), op);
  if (xs.empty()) return p;  // a 0-dim tensor is one row of one element (as PyTorch)
  const std::size_t d = static_cast<std::size_t>(p.dim);
  p.outer = detail::prod(xs, 0, d);
  p.r = xs[d];
  p.inner = detail::prod(xs, d + 1, xs.size());
  return p;
}

Tensor forward(const Tensor& x, const Plan& p, bool log, const char* op) {
  return detail::visit_floating(x.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    Tensor y = detail::make_empty<T>(detail::to_xshape(x.shape(), op));
    if (x.numel() > 0) softmax_forward(detail::flat<T>(x), detail::flat<T>(y), p.outer, p.r, p.inner, log);
    return y;
  });
}

Tensor fused_backward(const Tensor& g_in, const Tensor& y, const Plan& p, bool log, const char* op) {
  const Tensor g = g_in.dtype() == y.dtype() ? g_in : g_in.to(y.dtype());
  check(g.shape() == y.shape(), op, "gradient of shape ", g.shape(), " does not match the output shape ", y.shape());
  return detail::visit_floating(y.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    Tensor dx = detail::make_empty<T>(detail::to_xshape(y.shape(), op));
    if (y.numel() > 0) {
      softmax_backward(detail::flat<T>(g), detail::flat<T>(y), detail::flat<T>(dx), p.outer, p.r, p.inner, log);
    }
    return dx;
  });
}

Tensor softmax_impl(const Tensor& x, std::int64_t dim, bool log) {
  const char* op = log ? "log_softmax" : "softmax";
  detail::check_defined(x, op);
  const Plan p = plan_of(x, dim, op);
  Tensor out = forward(x, p, log, op);
  if (autograd::needs_grad({&x})) {
    autograd::record(out, log ? "LogSoftmaxBackward" : "SoftmaxBackward", {x},
                     [in = autograd::SavedTensor(x), o = autograd::SavedTensor::output(out), p, log,
                      op](const Tensor& g) -> std::vector<Tensor> {
                       if (!autograd::grad_enabled()) return {fused_backward(g, o.unpack(op), p, log, op)};
                       // create_graph: the output is recomputed from the input so that it carries
                       // its own graph, and the formula is written with differentiable ops.
                       const Tensor xv = in.unpack(op);
                       const std::vector<std::int64_t> dims{p.dim};
                       if (log) {
                         Tensor y = log_softmax(xv, p.dim);
                         return {g - exp(y) * sum(g, dims, true)};
                       }
                       Tensor y = softmax(xv, p.dim);
                       return {y * (g - sum(g * y, dims, true))};
                     });
  }
  return out;
}

}  // namespace

Tensor softmax(const Tensor& x, std::int64_t dim) { return softmax_impl(detail::contiguous_input(x, "softmax"), dim, false); }
Tensor log_softmax(const Tensor& x, std::int64_t dim) {
  return softmax_impl(detail::contiguous_input(x, "log_softmax"), dim, true);
}
Tensor Tensor::softmax(std::int64_t dim) const { return sorix::softmax(*this, dim); }
Tensor Tensor::log_softmax(std::int64_t dim) const { return sorix::log_softmax(*this, dim); }

}  // namespace sorix
