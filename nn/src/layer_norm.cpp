// LayerNorm's fused op (layer_norm.hpp): forward and backward side by side, the statistics on
// BatchNorm's (kernels/batchnorm.hpp, each row a channel of [1, rows, L]) and the rows' passes on
// the kernel table's layer_norm_rows_* and layer_norm_grads_* (kernels/layer_norm_rows.hpp).
#include "layer_norm.hpp"

#include <algorithm>
#include <memory>
#include <vector>

#include "sorix_autograd/ops_internal.hpp"
#include "sorix_core/kernels/batch_tree.hpp"
#include "sorix_core/kernels/batchnorm.hpp"
#include "sorix/autograd/grad_mode.hpp"
#include "sorix/autograd/node.hpp"
#include "sorix/autograd/ops.hpp"
#include "sorix/parallel/batch_tree.hpp"
#include "sorix/parallel/parallel.hpp"

namespace sorix::nn::detail {

namespace {

namespace bn = kernels::bn;

constexpr std::int64_t kFusedMinRows = 16;

// Each row's mean and 1 / sqrt(var + eps), in double.
struct RowStats {
  std::size_t rows, L;
  std::vector<double> mean, invstd;
};

// v rounded to T, as the rows' kernels take the statistics.
template <class T>
std::vector<T> rounded(const std::vector<double>& v) {
  return std::vector<T>(v.begin(), v.end());
}

template <class T>
void rows_forward(const T* x, const T* mean, const T* scale, const T* w, const T* b, std::size_t rows, std::size_t L,
                  T* y) {
  if constexpr (std::is_same_v<T, float>) kernels::active().layer_norm_rows_f32(x, mean, scale, w, b, rows, L, y);
  else kernels::active().layer_norm_rows_f64(x, mean, scale, w, b, rows, L, y);
}

template <class T>
void rows_grads(const T* g, const T* x, const T* mean, const T* scale, const T* w, std::size_t rows, std::size_t L,
                T* dx, T* dw, T* db, T* scratch) {
  if constexpr (std::is_same_v<T, float>)
    kernels::active().layer_norm_grads_f32(g, x, mean, scale, w, rows, L, dx, dw, db, scratch);
  else kernels::active().layer_norm_grads_f64(g, x, mean, scale, w, rows, L, dx, dw, db, scratch);
}

template <class T>
void forward(const T* x, const T* w, const T* b, RowStats& s, double eps, T* y) {
  bn::BnSaved saved = bn::row_stats(x, s.rows, s.L, eps);
  s.mean = std::move(saved.mean);
  s.invstd = std::move(saved.invstd);
  const std::vector<T> mean = rounded<T>(s.mean), scale = rounded<T>(s.invstd);
  const std::size_t L = s.L;
  parallel::parallel_for(
      s.rows, std::max<std::size_t>(1, parallel::kChunkSize / L),
      [&](std::size_t r0, std::size_t r1) {
        rows_forward(x + r0 * L, mean.data() + r0, scale.data() + r0, w, b, r1 - r0, L, y + r0 * L);
      },
      parallel::kInlineGrain / L);
}

struct Grads {
  Tensor dx, dw, db;
};

// The gradients in their own shapes (x's, the weight's, the bias's): fresh tensors, not views,
// so that the engine hands each to its leaf's grad() without a copy.
template <class T>
Grads backward(const T* g, const T* x, const T* w, const RowStats& s, bool gx, bool gw, bool gb, const Shape& xs,
               const Shape& wshape, const Shape& bshape) {
  const std::size_t rows = s.rows, L = s.L, chunk = parallel::kBatchChunk;
  const std::size_t chunks = (rows + chunk - 1) / chunk;
  const std::size_t width = (gw ? L : 0) + (gb ? L : 0);  // a chunk's dw chains, then its db chains
  std::vector<T> partials(chunks * width, T(0));
  const std::vector<T> mean = rounded<T>(s.mean), scale = rounded<T>(s.invstd);
  Grads r;
  T* dx = nullptr;
  if (gx) {
    r.dx = empty(xs, dtype_of_v<T>);
    dx = sorix::detail::flat<T>(r.dx);
  }
  parallel::parallel_for(chunks, 1, [&](std::size_t c0, std::size_t c1) {
    std::vector<T> scratch(gx ? 2 * L : 0);
    for (std::size_t c = c0; c < c1; ++c) {
      const std::size_t r0 = c * chunk, n = std::min(rows, r0 + chunk) - r0;
      T* part = partials.data() + c * width;
      rows_grads(g + r0 * L, x + r0 * L, mean.data() + r0, scale.data() + r0, w, n, L,
                 dx != nullptr ? dx + r0 * L : nullptr, gw ? part : nullptr, gb ? part + (gw ? L : 0) : nullptr,
                 scratch.data());
    }
  }, 0);
  if (gw || gb) {
    const std::vector<T> root = kernels::tree_of_partials(partials.data(), chunks, width);
    const auto column = [&](std::size_t at, const Shape& shape) {
      Tensor out = empty(shape, dtype_of_v<T>);
      std::copy(root.begin() + static_cast<std::ptrdiff_t>(at), root.begin() + static_cast<std::ptrdiff_t>(at + L),
                sorix::detail::flat<T>(out));
      return out;
    };
    if (gw) r.dw = column(0, wshape);
    if (gb) r.db = column(gw ? L : 0, bshape);
  }
  return r;
}

// The gradients as recorded ops (create_graph): the statistics recomputed from x, so that they
// carry x's dependence.
Grads composed_backward(const Tensor& g, const Tensor& x, const Tensor& w, const RowStats& s, double eps, bool gx,
                        bool gw, bool gb, const Shape& xs, const Shape& wshape, const Shape& bshape) {
  const auto rows = static_cast<std::int64_t>(s.rows), L = static_cast<std::int64_t>(s.L);
  const Tensor xr = reshape(x, {rows, L}), g2 = reshape(g, {rows, L});
  const Tensor xc = xr - xr.mean({1}, true);
  const Tensor invstd = 1.0 / sqrt((xc * xc).mean({1}, true) + eps);
  const Tensor xhat = xc * invstd;
  Grads r;
  if (gx) {
    const Tensor gh = w.defined() ? g2 * reshape(w, {1, L}) : g2;
    r.dx = reshape((gh - gh.mean({1}, true) - xhat * (gh * xhat).mean({1}, true)) * invstd, xs);
  }
  if (gw) r.dw = reshape((g2 * xhat).sum({0}), wshape);
  if (gb) r.db = reshape(g2.sum({0}), bshape);
  return r;
}

}  // namespace

bool layer_norm_fused_applies(std::int64_t rows, std::int64_t row_length, std::int64_t numel) {
  return rows >= kFusedMinRows && row_length > 1 && numel > 0;
}

Tensor layer_norm_fused(const Tensor& x, const Tensor& w, const Tensor& b, std::int64_t rows, std::int64_t row_length,
                        double eps) {
  auto stats = std::make_shared<RowStats>();
  stats->rows = static_cast<std::size_t>(rows);
  stats->L = static_cast<std::size_t>(row_length);
  Tensor y = empty(x.shape(), x.dtype());
  sorix::detail::visit_floating(x.dtype(), "layer_norm", [&](auto tag) {
    using T = typename decltype(tag)::type;
    forward<T>(sorix::detail::flat<T>(x), w.defined() ? sorix::detail::flat<T>(w) : nullptr,
               b.defined() ? sorix::detail::flat<T>(b) : nullptr, *stats, eps, sorix::detail::flat<T>(y));
  });
  if (!autograd::needs_grad({&x, &w, &b})) return y;
  const bool gx = x.requires_grad(), gw = w.defined() && w.requires_grad(), gb = b.defined() && b.requires_grad();
  const Shape xs = x.shape(), wshape = w.defined() ? w.shape() : Shape{}, bshape = b.defined() ? b.shape() : Shape{};
  autograd::record(
      y, "LayerNormBackward", {x, w, b},
      [sx = autograd::SavedTensor(x), sw = autograd::SavedTensor(w), stats, eps, gx, gw, gb, xs, wshape,
       bshape](const Tensor& grad) -> std::vector<Tensor> {
        const Tensor x = sx.unpack("layer_norm"), w = sw.unpack("layer_norm");
        const Tensor g = (grad.dtype() == x.dtype() ? grad : grad.to(x.dtype())).contiguous();
        Grads r;
        if (autograd::grad_enabled()) {
          r = composed_backward(g, x, w, *stats, eps, gx, gw, gb, xs, wshape, bshape);
        } else {
          r = sorix::detail::visit_floating(x.dtype(), "layer_norm", [&](auto tag) {
            using T = typename decltype(tag)::type;
            return backward<T>(sorix::detail::flat<T>(g), sorix::detail::flat<T>(x),
                               w.defined() ? sorix::detail::flat<T>(w) : nullptr, *stats, gx, gw, gb, xs, wshape,
                               bshape);
          });
        }
        return {r.dx, r.dw, r.db};
      });
  return y;
}

}  // namespace sorix::nn::detail
