// GroupNorm's fused op (group_norm.hpp): forward and backward side by side, on BatchNorm's loops
// (kernels/batchnorm.hpp) with the (sample, group) rows as the statistics' channels and the
// (sample, channel) planes as the elementwise passes' channels, each with its own constants.
#include "group_norm.hpp"

#include <cmath>
#include <memory>
#include <vector>

#include "sorix_autograd/ops_internal.hpp"
#include "sorix_core/kernels/batchnorm.hpp"
#include "sorix/autograd/grad_mode.hpp"
#include "sorix/autograd/node.hpp"
#include "sorix/autograd/ops.hpp"

namespace sorix::nn::detail {

namespace {

namespace bn = kernels::bn;

// Below this many (sample, group) rows the composed ops run instead (normalization.cpp's
// kFusedMinRows: the statistics run a row per task).
constexpr std::int64_t kFusedMinRows = 16;

// x viewed as [N, C, L] in G groups of C / G channels, and each (sample, group)'s statistics.
struct GroupStats {
  std::size_t N, C, G, L;
  std::vector<double> mean, invstd;  // [N * G]
  std::size_t per_group() const { return C / G; }
  std::size_t row_of(std::size_t n, std::size_t c) const { return n * G + c / per_group(); }
  /// The planes [1, N * C, L] as BatchNorm's loops take them: each plane a channel.
  bn::BnDims planes() const { return {1, N * C, L}; }
  /// Each plane's group statistics, as BatchNorm's saved statistics of the planes.
  bn::BnSaved plane_stats() const {
    bn::BnSaved s;
    s.mean.resize(N * C);
    s.invstd.resize(N * C);
    for (std::size_t n = 0; n < N; ++n)
      for (std::size_t c = 0; c < C; ++c) {
        s.mean[n * C + c] = mean[row_of(n, c)];
        s.invstd[n * C + c] = invstd[row_of(n, c)];
      }
    return s;
  }
};

// A per-channel vector repeated for every sample (a plane's weight or bias), or empty for null.
template <class T>
std::vector<T> per_plane(const T* v, std::size_t N, std::size_t C) {
  std::vector<T> out;
  if (v == nullptr) return out;
  out.reserve(N * C);
  for (std::size_t n = 0; n < N; ++n) out.insert(out.end(), v, v + C);
  return out;
}

template <class T>
void forward(const T* x, const T* w, const T* b, GroupStats& s, double eps, T* y) {
  bn::BnSaved rows = bn::row_stats(x, s.N * s.G, s.per_group() * s.L, eps);
  s.mean = std::move(rows.mean);
  s.invstd = std::move(rows.invstd);
  const std::vector<T> wp = per_plane(w, s.N, s.C), bp = per_plane(b, s.N, s.C);
  bn::normalize(x, y, s.planes(), s.plane_stats(), w != nullptr ? wp.data() : nullptr,
                b != nullptr ? bp.data() : nullptr);
}

struct Grads {
  Tensor dx, dw, db;
};

template <class T>
Grads backward(const T* g, const T* x, const T* w, const GroupStats& s, bool gx, bool gw, bool gb, const Shape& xs) {
  const bn::BnDims planes = s.planes();
  const bn::BnSaved ps = s.plane_stats();
  const std::size_t P = s.N * s.C, Cg = s.per_group();
  std::vector<double> sum_g(P, 0.0), dot(P, 0.0);
  bn::backward_sums(g, x, planes, ps, sum_g.data(), dot.data());
  Grads r;
  if (gx) {
    std::vector<T> a(P), gm(P), mean(P), k(P);
    const double inv_m = 1.0 / static_cast<double>(Cg * s.L);
    for (std::size_t n = 0; n < s.N; ++n) {
      for (std::size_t grp = 0; grp < s.G; ++grp) {
        const std::size_t first = n * s.C + grp * Cg;
        double A = 0.0, B = 0.0;  // the group's sums of w * g and w * g * (x - mean), channel order
        for (std::size_t c = 0; c < Cg; ++c) {
          const double wc = w != nullptr ? static_cast<double>(w[grp * Cg + c]) : 1.0;
          A += wc * sum_g[first + c];
          B += wc * dot[first + c];
        }
        const double invstd = s.invstd[n * s.G + grp];
        const T gm_v = static_cast<T>(invstd * (A * inv_m));
        const T k_v = static_cast<T>(invstd * invstd * invstd * (B * inv_m));
        const T mean_v = static_cast<T>(s.mean[n * s.G + grp]);
        for (std::size_t c = 0; c < Cg; ++c) {
          const double wc = w != nullptr ? static_cast<double>(w[grp * Cg + c]) : 1.0;
          a[first + c] = static_cast<T>(invstd * wc);
          gm[first + c] = gm_v;
          mean[first + c] = mean_v;
          k[first + c] = k_v;
        }
      }
    }
    r.dx = empty(xs, dtype_of_v<T>);
    T* dx = sorix::detail::flat<T>(r.dx);
    const auto& kern = kernels::bn_kernels<T>(kernels::active());
    bn::for_elementwise_blocks(planes, [&](std::size_t c0, std::size_t c1, std::size_t n0, std::size_t n1) {
      const std::size_t at = c0 * s.L;
      kern.group_dx(g + at, x + at, dx + at, c1 - c0, s.L, n0, n1, a.data() + c0, gm.data() + c0, mean.data() + c0,
                    k.data() + c0);
    });
  }
  // The parameters' gradients: per channel, the batch sum over the samples' planes.
  const bn::BnDims batch{s.N, s.C, s.L};
  const auto channel_sums = [&](auto term) {
    std::vector<double> acc(s.C, 0.0);
    bn::sum_planes(batch, term, acc.data());
    Tensor out = empty({static_cast<std::int64_t>(s.C)}, dtype_of_v<T>);
    for (std::size_t c = 0; c < s.C; ++c) sorix::detail::flat<T>(out)[c] = static_cast<T>(acc[c]);
    return out;
  };
  if (gw) {
    r.dw = channel_sums([&](std::size_t n, std::size_t c) { return dot[n * s.C + c] * s.invstd[s.row_of(n, c)]; });
  }
  if (gb) r.db = channel_sums([&](std::size_t n, std::size_t c) { return sum_g[n * s.C + c]; });
  return r;
}

// The gradients as recorded ops (create_graph): the statistics recomputed from x, so that they
// carry x's dependence.
Grads composed_backward(const Tensor& g, const Tensor& x, const Tensor& w, const GroupStats& s, double eps, bool gx,
                        bool gw, bool gb, const Shape& xs) {
  const auto N = static_cast<std::int64_t>(s.N), C = static_cast<std::int64_t>(s.C),
             G = static_cast<std::int64_t>(s.G), L = static_cast<std::int64_t>(s.L);
  const std::int64_t M = C / G * L;
  const Tensor xg = reshape(x, {N, G, M});
  const Tensor xc = xg - xg.mean({2}, true);
  const Tensor invstd = 1.0 / sqrt((xc * xc).mean({2}, true) + eps);
  const Tensor xhat = xc * invstd;                 // [N, G, M]
  const Tensor g3 = reshape(g, {N, C, L});
  Grads r;
  if (gx) {
    const Tensor gh = reshape(w.defined() ? g3 * reshape(w, {1, C, 1}) : g3, {N, G, M});
    r.dx = reshape((gh - gh.mean({2}, true) - xhat * (gh * xhat).mean({2}, true)) * invstd, xs);
  }
  if (gw) r.dw = sum(g3 * reshape(xhat, {N, C, L}), {0, 2});
  if (gb) r.db = sum(g3, {0, 2});
  return r;
}

}  // namespace

bool group_norm_fused_applies(std::int64_t rows, std::int64_t values_per_row, std::int64_t numel) {
  return rows >= kFusedMinRows && values_per_row > 1 && numel > 0;
}

Tensor group_norm_fused(const Tensor& x, const Tensor& w, const Tensor& b, std::int64_t groups, double eps) {
  const Shape xs = x.shape();
  auto stats = std::make_shared<GroupStats>();
  stats->N = static_cast<std::size_t>(xs[0]);
  stats->C = static_cast<std::size_t>(xs[1]);
  stats->G = static_cast<std::size_t>(groups);
  stats->L = static_cast<std::size_t>(x.numel() / (xs[0] * xs[1]));
  Tensor y = empty(xs, x.dtype());
  sorix::detail::visit_floating(x.dtype(), "group_norm", [&](auto tag) {
    using T = typename decltype(tag)::type;
    forward<T>(sorix::detail::flat<T>(x), w.defined() ? sorix::detail::flat<T>(w) : nullptr,
               b.defined() ? sorix::detail::flat<T>(b) : nullptr, *stats, eps, sorix::detail::flat<T>(y));
  });
  if (!autograd::needs_grad({&x, &w, &b})) return y;
  const bool gx = x.requires_grad(), gw = w.defined() && w.requires_grad(), gb = b.defined() && b.requires_grad();
  autograd::record(
      y, "GroupNormBackward", {x, w, b},
      [sx = autograd::SavedTensor(x), sw = autograd::SavedTensor(w), stats, eps, gx, gw, gb,
       xs](const Tensor& grad) -> std::vector<Tensor> {
        const Tensor x = sx.unpack("group_norm"), w = sw.unpack("group_norm");
        const Tensor g = (grad.dtype() == x.dtype() ? grad : grad.to(x.dtype())).contiguous();
        Grads r;
        if (autograd::grad_enabled()) {
          r = composed_backward(g, x, w, *stats, eps, gx, gw, gb, xs);
        } else {
          r = sorix::detail::visit_floating(x.dtype(), "group_norm", [&](auto tag) {
            using T = typename decltype(tag)::type;
            return backward<T>(sorix::detail::flat<T>(g), sorix::detail::flat<T>(x),
                               w.defined() ? sorix::detail::flat<T>(w) : nullptr, *stats, gx, gw, gb, xs);
          });
        }
        return {r.dx, r.dw, r.db};
      });
  return y;
}

}  // namespace sorix::nn::detail
