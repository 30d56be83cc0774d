// im2col / col2im as recorded ops (conv_columns.hpp), on the plane kernels of core's kernel layer.
#include "conv_columns.hpp"

#include <algorithm>

#include "sorix_autograd/ops_internal.hpp"

namespace sorix::nn::detail {
namespace {

using kernels::ConvGeometry;

// Runs body(n, c) for every plane as parallel tasks; planes with little work share a task.
template <class Body>
void for_each_plane(const ConvGeometry& g, std::size_t work_per_plane, Body&& body) {
  const std::size_t planes = g.N * g.C;
  const std::size_t per_task = std::max<std::size_t>(1, parallel::kChunkSize / std::max<std::size_t>(1, work_per_plane));
  parallel::parallel_for(planes, per_task, [&](std::size_t p0, std::size_t p1) {
    for (std::size_t p = p0; p < p1; ++p) body(p / g.C, p % g.C);
  }, per_task);
}

// ones_row: one more row of ones after the columns (im2col_with_ones).
Tensor im2col_plain(const Tensor& x_in, const ConvGeometry& g, bool ones_row = false) {
  const Tensor x = x_in.contiguous();
  return sorix::detail::visit_floating(x.dtype(), "im2col", [&](auto tag) {
    using T = typename decltype(tag)::type;
    Tensor cols = sorix::detail::make_empty<T>({g.rows() + (ones_row ? 1 : 0), g.cols()});
    const T* px = sorix::detail::flat<T>(x);
    T* pc = sorix::detail::flat<T>(cols);
    for_each_plane(g, g.rows() / std::max<std::size_t>(1, g.C) * g.positions(), [&](std::size_t n, std::size_t c) {
      kernels::im2col_plane(px + (n * g.C + c) * g.H * g.W, g, n, c, pc);
    });
    if (ones_row) std::fill(pc + g.rows() * g.cols(), pc + (g.rows() + 1) * g.cols(), T(1));
    return cols;
  });
}

}  // namespace

Tensor im2col_with_ones(const Tensor& x, const ConvGeometry& g) { return im2col_plain(x, g, true); }

namespace {

Tensor col2im_plain(const Tensor& cols_in, const ConvGeometry& g) {
  const Tensor cols = cols_in.contiguous();
  return sorix::detail::visit_floating(cols.dtype(), "col2im", [&](auto tag) {
    using T = typename decltype(tag)::type;
    Tensor x = sorix::detail::make_empty<T>({g.N, g.C, g.H, g.W});
    const T* pc = sorix::detail::flat<T>(cols);
    T* px = sorix::detail::flat<T>(x);
    for_each_plane(g, g.taps() * g.positions() + g.H * g.W, [&](std::size_t n, std::size_t c) {
      kernels::col2im_plane(pc, g, n, c, px + (n * g.C + c) * g.H * g.W);
    });
    return x;
  });
}

}  // namespace

Tensor im2col(const Tensor& x, const ConvGeometry& g) {
  Tensor cols = im2col_plain(x, g);
  if (autograd::needs_grad({&x})) {
    autograd::record(cols, "Im2ColBackward", {x}, [g](const Tensor& grad) -> std::vector<Tensor> {
      return {col2im(grad, g)};
    });
  }
  return cols;
}

Tensor col2im(const Tensor& cols, const ConvGeometry& g) {
  Tensor x = col2im_plain(cols, g);
  if (autograd::needs_grad({&cols})) {
    autograd::record(x, "Col2ImBackward", {cols}, [g](const Tensor& grad) -> std::vector<Tensor> {
      return {im2col(grad, g)};
    });
  }
  return x;
}

}  // namespace sorix::nn::detail
