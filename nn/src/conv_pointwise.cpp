// Pointwise convolutions image by image (conv_pointwise.hpp).
#include "conv_pointwise.hpp"
#include "conv_tasks.hpp"

#include <algorithm>
#include <vector>

#include "sorix_autograd/gemm.hpp"
#include "sorix_autograd/ops_internal.hpp"
#include "sorix_core/kernels/batch_tree.hpp"
#include "sorix/autograd/grad_mode.hpp"
#include "sorix/autograd/node.hpp"
#include "sorix/autograd/ops.hpp"
#include "sorix/parallel/batch_tree.hpp"
#include "sorix/parallel/parallel.hpp"

namespace sorix::nn::detail {
namespace {

std::size_t sz(std::int64_t v) { return static_cast<std::size_t>(v); }

struct Shape4 {
  std::size_t N, C, OC, P, G;
  std::size_t Cg() const { return C / G; }
  std::size_t OCg() const { return OC / G; }
};

template <class T>
void forward(const T* px, const T* pw, const T* pb, const Shape4& s, T* py) {
  const T beta = pb != nullptr ? T(1) : T(0);
  parallel::parallel_for(s.N, 1, [&](std::size_t n0, std::size_t n1) {
    for (std::size_t n = n0; n < n1; ++n) {
      T* yn = py + n * s.OC * s.P;
      if (pb != nullptr)  // y_n = b, then fma(1, y_n, W x_n): the bias in the product's epilogue
        for (std::size_t o = 0; o < s.OC; ++o) std::fill(yn + o * s.P, yn + (o + 1) * s.P, pb[o]);
      for (std::size_t g = 0; g < s.G; ++g)
        kernels::gemm_serial<T>(false, false, s.OCg(), s.P, s.Cg(), T(1), pw + g * s.OCg() * s.Cg(), s.Cg(),
                                px + (n * s.C + g * s.Cg()) * s.P, s.P, beta, yn + g * s.OCg() * s.P, s.P);
    }
  }, 0);  // grain 0: every image is a task
}

template <class T>
void input_grad(const T* pg, const T* pw, const Shape4& s, T* pdx) {
  parallel::parallel_for(s.N, 1, [&](std::size_t n0, std::size_t n1) {
    for (std::size_t n = n0; n < n1; ++n)
      for (std::size_t g = 0; g < s.G; ++g)
        kernels::gemm_serial<T>(true, false, s.Cg(), s.P, s.OCg(), T(1), pw + g * s.OCg() * s.Cg(), s.Cg(),
                                pg + (n * s.OC + g * s.OCg()) * s.P, s.P, T(0), pdx + (n * s.C + g * s.Cg()) * s.P, s.P);
  }, 0);
}

// dW^T per group [G, Cg, OCg] (the chains of x_n g_n^T: fma's product commutes, g x^T's bits) and
// db [OC], each chunk's partial a task's, the chunks added by the batch tree.
template <class T>
void param_grads(const T* pg, const T* px, const Shape4& s, bool gw, bool gb, T* dwt, T* db) {
  const std::size_t chunk = parallel::kBatchChunk;
  const std::size_t chunks = std::max<std::size_t>(1, (s.N + chunk - 1) / chunk);  // no images: one empty chunk
  const std::size_t wsize = gw ? s.G * s.Cg() * s.OCg() : 0, node = wsize + (gb ? s.OC : 0);
  // Tasks: (chunk, group, block of input channels) for the weights, as conv2d's other paths cut
  // them (two per thread where the chunks alone do not give that), then one per chunk for the bias.
  const std::size_t block = detail::channels_per_task(s.Cg(), chunks, s.G);
  const std::size_t blocks = gw ? (s.Cg() + block - 1) / block : 0;
  const std::size_t weight_tasks = chunks * s.G * blocks, tasks = weight_tasks + (gb ? chunks : 0);
  std::vector<T> partials(chunks * node);
  parallel::parallel_for(tasks, 1, [&](std::size_t t0, std::size_t t1) {
    for (std::size_t t = t0; t < t1; ++t) {
      if (t >= weight_tasks) {  // chunk ci's bias: each channel's add chain over (image, position)
        const std::size_t ci = t - weight_tasks, n0 = ci * chunk, n1 = std::min(s.N, n0 + chunk);
        T* out = partials.data() + ci * node + wsize;
        constexpr std::size_t kChains = 8;  // channels side by side: independent chains, no latency stall
        for (std::size_t o0 = 0; o0 < s.OC; o0 += kChains) {
          const std::size_t m = std::min(kChains, s.OC - o0);
          T acc[kChains] = {};
          for (std::size_t n = n0; n < n1; ++n) {
            const T* gn = pg + (n * s.OC + o0) * s.P;
            for (std::size_t p = 0; p < s.P; ++p)
              for (std::size_t k = 0; k < m; ++k) acc[k] += gn[k * s.P + p];
          }
          std::copy(acc, acc + m, out + o0);
        }
        continue;
      }
      const std::size_t ci = t / (s.G * blocks), g = t / blocks % s.G, blk = t % blocks;
      const std::size_t c0 = blk * block, c1 = std::min(s.Cg(), c0 + block);
      const std::size_t n0 = ci * chunk, n1 = std::min(s.N, n0 + chunk);
      T* C = partials.data() + ci * node + (g * s.Cg() + c0) * s.OCg();  // rows c0..c1 of [Cg, OCg]
      if (n0 == n1) std::fill(C, C + (c1 - c0) * s.OCg(), T(0));
      for (std::size_t n = n0; n < n1; ++n) {
        const T* xn = px + (n * s.C + g * s.Cg() + c0) * s.P;
        const T* gn = pg + (n * s.OC + g * s.OCg()) * s.P;  // [OCg, P]: op(B) = its transpose
        if (n == n0) kernels::gemm_serial<T>(false, true, c1 - c0, s.OCg(), s.P, T(1), xn, s.P, gn, s.P, T(0), C, s.OCg());
        else kernels::gemm_serial_resume<T>(false, true, c1 - c0, s.OCg(), s.P, xn, s.P, gn, s.P, C, s.OCg());
      }
    }
  }, 0);  // grain 0: every task is a task
  const std::vector<T> root = kernels::tree_of_partials(partials.data(), chunks, node);
  std::copy(root.begin(), root.begin() + static_cast<std::ptrdiff_t>(wsize), dwt);
  if (gb) std::copy(root.begin() + static_cast<std::ptrdiff_t>(wsize), root.end(), db);
}

}  // namespace

Tensor pointwise_conv2d(const Tensor& x_in, const Tensor& w_in, const Tensor& b_in, std::int64_t groups) {
  const Tensor x = x_in.contiguous(), w = w_in.contiguous();
  const Tensor b = b_in.defined() ? b_in.contiguous() : b_in;
  const Shape xs = x.shape();
  const Shape4 s{sz(xs[0]), sz(xs[1]), sz(w.size(0)), sz(xs[2] * xs[3]), sz(groups)};
  Tensor y = sorix::detail::visit_floating(w.dtype(), "conv2d", [&](auto tag) {
    using T = typename decltype(tag)::type;
    Tensor out = sorix::detail::make_empty<T>({s.N, s.OC, sz(xs[2]), sz(xs[3])});
    forward<T>(sorix::detail::flat<T>(x), sorix::detail::flat<T>(w), b.defined() ? sorix::detail::flat<T>(b) : nullptr,
               s, sorix::detail::flat<T>(out));
    return out;
  });
  const bool has_bias = b.defined();
  if (!(has_bias ? autograd::needs_grad({&x_in, &w_in, &b_in}) : autograd::needs_grad({&x_in, &w_in}))) return y;
  const bool gx = x_in.requires_grad(), gw = w_in.requires_grad(), gb = has_bias && b_in.requires_grad();
  std::vector<Tensor> inputs{x_in, w_in};
  if (has_bias) inputs.push_back(b_in);
  autograd::record(
      y, "ConvolutionBackward", inputs,
      [sx = autograd::SavedTensor(x_in), sw = autograd::SavedTensor(w), s, xs, gx, gw, gb,
       has_bias](const Tensor& grad_in) -> std::vector<Tensor> {
        const Tensor x = sx.unpack("conv2d"), w = sw.unpack("conv2d");
        const Tensor g = grad_in.contiguous();
        std::vector<Tensor> out(has_bias ? 3 : 2);
        const auto N = static_cast<std::int64_t>(s.N), G = static_cast<std::int64_t>(s.G),
                   Cg = static_cast<std::int64_t>(s.Cg()), OCg = static_cast<std::int64_t>(s.OCg()),
                   P = static_cast<std::int64_t>(s.P);
        if (autograd::grad_enabled()) {  // create_graph: the batch-columns products' formulas, recorded
          const Tensor g3 = reshape(permute(reshape(g, {N, G, OCg, P}), {1, 2, 0, 3}), {G, OCg, N * P});
          const Tensor w3 = reshape(w, {G, OCg, Cg});
          if (gx) out[0] = reshape(permute(reshape(matmul(transpose(w3, -2, -1), g3), {G, Cg, N, P}), {2, 0, 1, 3}), xs);
          if (gw) {
            const Tensor x3 = reshape(permute(reshape(x, {N, G, Cg, P}), {1, 2, 0, 3}), {G, Cg, N * P});
            out[1] = reshape(matmul(g3, transpose(x3, -2, -1)), w.shape());
          }
          if (gb) out[2] = sum(g, {0, 2, 3});
          return out;
        }
        sorix::detail::visit_floating(w.dtype(), "conv2d", [&](auto tag) {
          using T = typename decltype(tag)::type;
          const T* pg = sorix::detail::flat<T>(g);
          if (gx) {
            out[0] = sorix::detail::make_empty<T>({s.N, s.C, sz(xs[2]), sz(xs[3])});
            input_grad<T>(pg, sorix::detail::flat<T>(w), s, sorix::detail::flat<T>(out[0]));
          }
          if (!gw && !gb) return;
          const Tensor xc = x.contiguous();
          Tensor dwt = sorix::detail::make_empty<T>({s.G, s.Cg(), s.OCg()});
          Tensor db = sorix::detail::make_empty<T>({s.OC});
          param_grads<T>(pg, sorix::detail::flat<T>(xc), s, gw, gb, sorix::detail::flat<T>(dwt), sorix::detail::flat<T>(db));
          if (gw) out[1] = reshape(permute(dwt, {0, 2, 1}), w.shape()).contiguous();
          if (gb) out[2] = db;
        });
        return out;
      });
  return y;
}

}  // namespace sorix::nn::detail
