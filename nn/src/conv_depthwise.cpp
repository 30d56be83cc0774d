// Depthwise convolutions of stride 1 (conv_depthwise.hpp): every plane's output, input gradient
// and gradient sums straight from its zero-padded plane in the thread's scratch, one plane (or
// one chunk of images' planes) per task.
#include "conv_depthwise.hpp"
#include "thread_scratch.hpp"

#include <algorithm>
#include <vector>

#include "sorix_autograd/ops_internal.hpp"
#include "sorix_core/kernels/batch_tree.hpp"
#include "sorix_core/kernels/table.hpp"
#include "sorix/parallel/batch_tree.hpp"
#include "sorix/parallel/parallel.hpp"

namespace sorix::nn::detail {
namespace {

using kernels::ConvGeometry;

// Planes per task: enough work to outweigh a task's cost, few enough to feed every thread.
constexpr std::size_t kPlanesPerTask = 4;

template <class T>
void conv_direct(const T* xp, std::size_t PW, std::size_t plane, std::size_t C, const ConvGeometry& g, const T* w,
                 const T* b, std::size_t outs, T* y) {
  if constexpr (std::is_same_v<T, float>) kernels::active().conv_direct_f32(xp, PW, plane, C, g, w, b, outs, y);
  else kernels::active().conv_direct_f64(xp, PW, plane, C, g, w, b, outs, y);
}

template <class T>
void grad_sums(const T* xp, std::size_t PW, const ConvGeometry& g, const T* dy, bool bias, T* acc) {
  if constexpr (std::is_same_v<T, float>) kernels::active().depthwise_grad_sums_f32(xp, PW, g, dy, bias, acc);
  else kernels::active().depthwise_grad_sums_f64(xp, PW, g, dy, bias, acc);
}

std::size_t span(std::size_t k, std::size_t d) { return (k - 1) * d; }

}  // namespace

bool depthwise_applies(const ConvGeometry& g, std::size_t groups) {
  return groups > 1 && g.C == groups && g.sh == 1 && g.sw == 1 && g.ph <= span(g.kh, g.dh) &&
         g.pw <= span(g.kw, g.dw);
}

Tensor depthwise_conv2d(const Tensor& x_in, const Tensor& w_in, const Tensor& b_in, const ConvGeometry& g) {
  const Tensor x = x_in.contiguous(), w = w_in.contiguous();
  const Tensor b = b_in.defined() ? b_in.contiguous() : b_in;
  return sorix::detail::visit_floating(w.dtype(), "conv2d", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const std::size_t OC = static_cast<std::size_t>(w.size(0)), m = OC / g.C, taps = g.taps(), P = g.positions();
    const std::size_t PH = g.OH + span(g.kh, g.dh), PW = g.OW + span(g.kw, g.dw);
    Tensor out = sorix::detail::make_empty<T>({g.N, OC, g.OH, g.OW});
    const T* px = sorix::detail::flat<T>(x);
    const T* pw = sorix::detail::flat<T>(w);
    const T* pb = b.defined() ? sorix::detail::flat<T>(b) : nullptr;
    T* py = sorix::detail::flat<T>(out);
    parallel::parallel_for(g.N * g.C, kPlanesPerTask, [&](std::size_t i0, std::size_t i1) {
      T* xp = thread_scratch<T>(PH * PW + kernels::kDirectConvSlack);
      for (std::size_t i = i0; i < i1; ++i) {  // plane i = n * C + c: outputs c * m .. c * m + m - 1
        const std::size_t n = i / g.C, c = i % g.C;
        kernels::pad_plane(px + i * g.H * g.W, g.H, g.W, g.ph, g.pw, PH, PW, xp);
        conv_direct(xp, PW, PH * PW, 1, g, pw + c * m * taps, pb != nullptr ? pb + c * m : nullptr, m,
                    py + (n * OC + c * m) * P);
      }
    }, 0);
    return out;
  });
}

Tensor depthwise_conv2d_input_grad(const Tensor& grad, const Tensor& w_in, const ConvGeometry& g) {
  const Tensor gc = grad.contiguous(), w = w_in.contiguous();
  return sorix::detail::visit_floating(w.dtype(), "conv2d", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const std::size_t OC = static_cast<std::size_t>(w.size(0)), m = OC / g.C, taps = g.taps(), P = g.positions();
    // The input gradient's own geometry: the m gradient planes of a group in, one input plane out.
    ConvGeometry t = g;
    t.C = m;
    t.H = g.OH;
    t.W = g.OW;
    t.ph = span(g.kh, g.dh) - g.ph;
    t.pw = span(g.kw, g.dw) - g.pw;
    t.OH = g.H;
    t.OW = g.W;
    const std::size_t PH = g.H + span(g.kh, g.dh), PW = g.W + span(g.kw, g.dw), plane = PH * PW;
    // wr[c][o][a][b] = w[c * m + o][0][kh - 1 - a][kw - 1 - b]: each kernel rotated by 180 degrees.
    const T* pw = sorix::detail::flat<T>(w);
    std::vector<T> wr(OC * taps);
    for (std::size_t o = 0; o < OC; ++o)
      for (std::size_t k = 0; k < taps; ++k) wr[o * taps + k] = pw[o * taps + taps - 1 - k];
    Tensor dx = sorix::detail::make_empty<T>({g.N, g.C, g.H, g.W});
    const T* pg = sorix::detail::flat<T>(gc);
    T* pd = sorix::detail::flat<T>(dx);
    parallel::parallel_for(g.N * g.C, kPlanesPerTask, [&](std::size_t i0, std::size_t i1) {
      T* gp = thread_scratch<T>(m * plane + kernels::kDirectConvSlack);
      for (std::size_t i = i0; i < i1; ++i) {
        const std::size_t n = i / g.C, c = i % g.C;
        for (std::size_t o = 0; o < m; ++o)  // each pad_plane zeros its slack: the next plane overwrites it
          kernels::pad_plane(pg + (n * OC + c * m + o) * P, g.OH, g.OW, t.ph, t.pw, PH, PW, gp + o * plane);
        conv_direct(gp, PW, plane, m, t, wr.data() + c * m * taps, static_cast<const T*>(nullptr), 1,
                    pd + i * g.H * g.W);
      }
    }, 0);
    return dx;
  });
}

void depthwise_conv2d_param_grads(const Tensor& grad, const Tensor& x_in, const Tensor& w, const ConvGeometry& g,
                                  bool gw, bool gb, Tensor& dw, Tensor& db) {
  if (!gw && !gb) return;
  const Tensor x = x_in.contiguous(), gc = grad.contiguous();
  sorix::detail::visit_floating(w.dtype(), "conv2d", [&](auto tag) {
    using T = typename decltype(tag)::type;
    constexpr std::size_t Z = kernels::kDepthwiseLanes;
    const std::size_t OC = static_cast<std::size_t>(w.size(0)), m = OC / g.C, taps = g.taps(), P = g.positions();
    const std::size_t rows = taps + (gb ? 1 : 0);  // a channel's sums: its taps, then its bias
    const std::size_t chunk = parallel::kBatchChunk;
    const std::size_t chunks = std::max<std::size_t>(1, (g.N + chunk - 1) / chunk);  // no images: one empty chunk
    const std::size_t PH = g.OH + span(g.kh, g.dh), PW = g.OW + span(g.kw, g.dw);
    const T* px = sorix::detail::flat<T>(x);
    const T* pg = sorix::detail::flat<T>(gc);
    std::vector<T> partials(chunks * OC * rows);
    // Task (chunk, output channel o): its images in order, each input plane padded in the scratch.
    parallel::parallel_for(chunks * OC, 1, [&](std::size_t t0, std::size_t t1) {
      T* xp = thread_scratch<T>(PH * PW + kernels::kDirectConvSlack);
      std::vector<T> acc(rows * Z);
      for (std::size_t task = t0; task < t1; ++task) {
        const std::size_t ci = task / OC, o = task % OC, c = o / m;
        std::fill(acc.begin(), acc.end(), T(0));
        for (std::size_t n = ci * chunk; n < std::min(g.N, ci * chunk + chunk); ++n) {
          kernels::pad_plane(px + (n * g.C + c) * g.H * g.W, g.H, g.W, g.ph, g.pw, PH, PW, xp);
          grad_sums(xp, PW, g, pg + (n * OC + o) * P, gb, acc.data());
        }
        T* out = partials.data() + (ci * OC + o) * rows;
        for (std::size_t r = 0; r < rows; ++r) {  // the 16 chains folded by halves
          T* a = acc.data() + r * Z;
          for (std::size_t half = Z / 2; half >= 1; half /= 2)
            for (std::size_t j = 0; j < half; ++j) a[j] = a[j] + a[j + half];
          out[r] = a[0];
        }
      }
    }, 0);  // grain 0: every (chunk, output channel) is a task
    const std::vector<T> root = kernels::tree_of_partials(partials.data(), chunks, OC * rows);
    if (gw) {
      dw = sorix::detail::make_empty<T>({OC, std::size_t{1}, g.kh, g.kw});
      T* pd = sorix::detail::flat<T>(dw);
      for (std::size_t o = 0; o < OC; ++o) std::copy(root.data() + o * rows, root.data() + o * rows + taps, pd + o * taps);
    }
    if (gb) {
      db = sorix::detail::make_empty<T>({OC});
      T* pb = sorix::detail::flat<T>(db);
      for (std::size_t o = 0; o < OC; ++o) pb[o] = root[o * rows + taps];
    }
  });
}

}  // namespace sorix::nn::detail
