// Conv2d in Winograd's F(2x2, 3x3) form (conv_winograd.hpp): per image (or run of images whose
// tiles share the rows), every input plane's tiles transformed (the kernel table's
// winograd_input_f32), 16 products per group on the library's product kernel, every output plane
// transformed back (winograd_output_f32); the weight and input gradients as the same
// arithmetic's adjoint from the output gradient's M' tiles (the weight gradient chunk by chunk of
// the batch tree, the input gradient image by image).
#include "conv_winograd.hpp"
#include "conv_tasks.hpp"
#include "thread_scratch.hpp"

#include <algorithm>
#include <memory>
#include <vector>

#include "sorix_autograd/gemm.hpp"
#include "sorix_autograd/ops_internal.hpp"
#include "sorix_core/kernels/table.hpp"
#include "sorix_core/kernels/winograd.hpp"
#include "sorix/parallel/batch_tree.hpp"
#include "sorix/parallel/parallel.hpp"
#include "sorix_core/kernels/batch_tree.hpp"

namespace sorix::nn::detail {
namespace {

// Measured on the CNN's second convolution (32 -> 64 channels of 14 x 14): see docs/architecture.md.
constexpr std::size_t kWinogradMinChannels = 16;

// Images whose tiles share one row of each transformed matrix (images_per_task): when one xi's
// operand of channels by channels outgrows this (the transformed kernels of the forward, the
// weight gradient's partial sums), a product per image would stream it from memory for a few
// tiles (a 512-channel layer on 7 x 7 planes: 1 MB for 16 tiles); together, B images' tiles share
// one pass over it. Every column's chain is its own (the forward), or continues across the images
// in order (the weight gradient): B changes no bit.
constexpr std::size_t kSharedOperandBytes = 256 * 1024;
constexpr std::size_t kBatchedColumns = 64;
constexpr std::size_t kMinChainTiles = 128;  // the weight gradient's tiles a product (B images' side by side)

// Images of `tiles` tiles each that make at least `columns` columns together: 1 to at_most.
std::size_t images_for_columns(std::size_t columns, std::size_t tiles, std::size_t at_most) {
  if (tiles == 0) return 1;  // no tiles: an empty input gradient
  return std::max<std::size_t>(1, std::min((columns + tiles - 1) / tiles, at_most));
}

// B for products whose shared operand holds `operand` floats per xi, over `tiles` tiles an image,
// with at most `at_most` images together.
std::size_t images_per_task(std::size_t operand, std::size_t tiles, std::size_t at_most) {
  if (operand * sizeof(float) <= kSharedOperandBytes) return 1;
  return images_for_columns(kBatchedColumns, tiles, at_most);
}

// One convolution of in [N, Cin, H, W] (padding ph, pw) into out [N, Cout, OH, OW] with the
// transformed kernels u [groups][16][Cin / groups][Cout / groups] (+ bias[o] when bias is non-null).
struct Planes {
  std::size_t N, Cin, H, W, ph, pw, Cout, OH, OW, groups;
};

void winograd_planes(const float* in, const Planes& p, const float* u, const float* bias, float* out) {
  const std::size_t TH = (p.OH + 1) / 2, TW = (p.OW + 1) / 2, tiles = TH * TW;
  const std::size_t Cg = p.Cin / p.groups, OCg = p.Cout / p.groups;
  // B images a task: image b's tiles at columns [b * tiles, (b + 1) * tiles) of every row (a
  // transform's slack past them is overwritten by image b + 1's, the last one's within ld).
  // At most as many images as still give every thread two tasks.
  const std::size_t threads = static_cast<std::size_t>(parallel::get_num_threads());
  const std::size_t B = images_per_task(OCg * Cg, tiles, p.N / (2 * threads));
  const std::size_t ld = kernels::winograd_row_ld(B * tiles);
  // v[xi * vs + c * ld + t]: for each xi, a Cin x (B x tiles) matrix of ld (one product's B per group);
  // m[xi * ms + o * ld + t] likewise. One line more between the xi matrices: their 16 rows of a
  // plane, which the transforms write and read side by side, then fall in 16 cache sets, not one
  // (a power-of-two stride: 8-16 KB here).
  const std::size_t vs = p.Cin * ld + 16, ms = p.Cout * ld + 16, v_size = 16 * vs, m_size = 16 * ms;
  const std::size_t in_scratch = kernels::winograd_input_scratch(TH, TW);
  const auto& table = kernels::active();
  parallel::parallel_for((p.N + B - 1) / B, 1, [&](std::size_t t0, std::size_t t1) {
    float* v = thread_scratch<float>(v_size + m_size + in_scratch);
    float* m = v + v_size;
    float* scratch = m + m_size;
    for (std::size_t t = t0; t < t1; ++t) {
      const std::size_t n0 = t * B, n1 = std::min(p.N, n0 + B), cols = (n1 - n0) * tiles;
      for (std::size_t n = n0; n < n1; ++n)
        for (std::size_t c = 0; c < p.Cin; ++c)
          table.winograd_input_f32(in + (n * p.Cin + c) * p.H * p.W, p.H, p.W, p.ph, p.pw, TH, TW,
                                   v + c * ld + (n - n0) * tiles, vs, scratch);
      for (std::size_t g = 0; g < p.groups; ++g)
        for (std::size_t xi = 0; xi < 16; ++xi)
          kernels::gemm_serial<float>(true, false, OCg, cols, Cg, 1.0f, u + (g * 16 + xi) * OCg * Cg, OCg,
                                      v + xi * vs + g * Cg * ld, ld, 0.0f, m + xi * ms + g * OCg * ld, ld);
      for (std::size_t n = n0; n < n1; ++n)
        for (std::size_t o = 0; o < p.Cout; ++o)
          table.winograd_output_f32(m + o * ld + (n - n0) * tiles, ms, TH, TW, bias != nullptr ? bias + o : nullptr,
                                    out + (n * p.Cout + o) * p.OH * p.OW, p.OH, p.OW);
    }
  }, 0);  // grain 0: every run of B images is a task
}

// The kernels w [OC, Cg, 3, 3] through G (winograd_weight_f32) as the 16 products' operands,
// u[g][xi][k][r]: k = c, r = o for the forward (by_output: k = o, r = c for the input gradient's
// products). Both read it as op(A) = u^T (trans_a), so the few columns of 7 x 7 tiles past whole
// registers are made with vectors along r (GemmKernel::columns).
std::unique_ptr<float[]> transformed_kernels(const Tensor& w, std::size_t groups, std::size_t OCg, std::size_t Cg,
                                             bool by_output) {
  const std::size_t rows = by_output ? Cg : OCg, cols = by_output ? OCg : Cg;
  std::unique_ptr<float[]> u(new float[groups * 16 * rows * cols]);  // every float written below
  const float* pw = sorix::detail::flat<float>(w);
  // Kernel (r, k) goes to u[.. + k * rows + r] at each of its 16 positions, rows * cols floats
  // apart: a run of 64 r is transformed into a buffer first and copied out as 16 runs of
  // consecutive floats (stored one by one, each kernel's 16 stores touched 16 cache lines: 22% of
  // a 512-channel 7 x 7 layer's time). Tasks of (group, k): each kernel's arithmetic is its own.
  constexpr std::size_t kRun = 64;
  parallel::parallel_for(groups * cols, 1, [&](std::size_t t0, std::size_t t1) {
    float run[16 * kRun];
    for (std::size_t t = t0; t < t1; ++t) {
      const std::size_t gi = t / cols, k = t % cols;
      for (std::size_t r0 = 0; r0 < rows; r0 += kRun) {
        const std::size_t r1 = std::min(rows, r0 + kRun);
        for (std::size_t r = r0; r < r1; ++r) {
          const std::size_t o = by_output ? k : r, c = by_output ? r : k;
          kernels::winograd_weight_f32(pw + ((gi * OCg + o) * Cg + c) * 9, run + (r - r0), kRun);
        }
        for (std::size_t xi = 0; xi < 16; ++xi)
          std::copy(run + xi * kRun, run + xi * kRun + (r1 - r0),
                    u.get() + (gi * 16 * cols + k) * rows + xi * rows * cols + r0);
      }
    }
  }, 0);
  return u;
}

// The input gradient of image n's group gi from its M' (winograd.hpp), the output gradient's
// adjoint tiles of the group's OCg channels: m[xi * ms + o * ld + t]. u: transformed_kernels
// by_output. Z[xi] (Cg x tiles) = U[xi]^T M'[xi] (chains over o in order), then each channel's
// plane through the input transform's adjoint into dx [N, C, H, W]. z: z_floats() of scratch,
// adjoint: winograd_input_adjoint_scratch.
struct InputGradOf {
  const float* u;
  std::size_t C, Cg, OCg, H, W, ph, pw, TH, TW;
  float* dx;

  void image(const float* m, std::size_t ms, std::size_t ld, std::size_t n, std::size_t gi, float* z,
             float* adjoint) const {
    const std::size_t tiles = TH * TW, zld = kernels::winograd_row_ld(tiles), zs = Cg * zld + 16;
    const auto& table = kernels::active();
    for (std::size_t xi = 0; xi < 16; ++xi)
      kernels::gemm_serial<float>(true, false, Cg, tiles, OCg, 1.0f, u + (gi * 16 + xi) * OCg * Cg, Cg, m + xi * ms, ld,
                                  0.0f, z + xi * zs, zld);
    for (std::size_t c = 0; c < Cg; ++c)
      table.winograd_input_adjoint_f32(z + c * zld, zs, TH, TW, dx + (n * C + gi * Cg + c) * H * W, H, W, ph, pw,
                                       adjoint);
  }
  std::size_t z_floats() const { return 16 * (Cg * kernels::winograd_row_ld(TH * TW) + 16); }
};

}  // namespace

bool winograd_applies(Dtype dtype, const kernels::ConvGeometry& g, std::size_t in_per_group,
                      std::size_t out_per_group) {
  return dtype == Dtype::Float32 && g.kh == 3 && g.kw == 3 && g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1 &&
         g.ph <= 2 && g.pw <= 2 && in_per_group >= kWinogradMinChannels && out_per_group >= kWinogradMinChannels;
}

Tensor winograd_conv2d(const Tensor& x_in, const Tensor& w_in, const Tensor& b_in, const kernels::ConvGeometry& g,
                       std::size_t groups) {
  const Tensor x = x_in.contiguous(), w = w_in.contiguous();
  const std::size_t OC = static_cast<std::size_t>(w.size(0)), OCg = OC / groups, Cg = g.C / groups;
  const std::unique_ptr<float[]> u = transformed_kernels(w, groups, OCg, Cg, false);
  Tensor out = sorix::detail::make_empty<float>({g.N, OC, g.OH, g.OW});
  const Tensor b = b_in.defined() ? b_in.contiguous() : b_in;
  winograd_planes(sorix::detail::flat<float>(x), Planes{g.N, g.C, g.H, g.W, g.ph, g.pw, OC, g.OH, g.OW, groups},
                  u.get(), b.defined() ? sorix::detail::flat<float>(b) : nullptr, sorix::detail::flat<float>(out));
  return out;
}

namespace {

// The input gradient alone (winograd_conv2d_grads without a weight gradient, or with more tasks
// than batch-tree chunks): tasks of B images, each making its images' M' for every output
// channel, then InputGradOf's products and adjoints.
Tensor input_grad_alone(const Tensor& grad, const float* u, const kernels::ConvGeometry& g, std::size_t OC,
                        std::size_t groups) {
  const std::size_t OCg = OC / groups, Cg = g.C / groups;
  const std::size_t TH = (g.OH + 1) / 2, TW = (g.OW + 1) / 2, tiles = TH * TW, P = g.OH * g.OW;
  Tensor dx = sorix::detail::make_empty<float>({g.N, g.C, g.H, g.W});
  const InputGradOf of{u, g.C, Cg, OCg, g.H, g.W, g.ph, g.pw, TH, TW, sorix::detail::flat<float>(dx)};
  const std::size_t threads = static_cast<std::size_t>(parallel::get_num_threads());
  const std::size_t B = images_per_task(OCg * Cg, tiles, g.N / (2 * threads));
  const std::size_t ld = kernels::winograd_row_ld(B * tiles), ms = OC * ld + 16;
  const std::size_t split = kernels::winograd_input_scratch(TH, TW), adjoint = kernels::winograd_input_adjoint_scratch(TW);
  const float* pg = sorix::detail::flat<float>(grad);
  const auto& table = kernels::active();
  parallel::parallel_for((g.N + B - 1) / B, 1, [&](std::size_t t0, std::size_t t1) {
    float* m = thread_scratch<float>(16 * ms + of.z_floats() + split + adjoint);
    float* z = m + 16 * ms;
    float* scratch = z + of.z_floats();
    for (std::size_t t = t0; t < t1; ++t) {
      const std::size_t n0 = t * B, n1 = std::min(g.N, n0 + B);
      for (std::size_t n = n0; n < n1; ++n)
        for (std::size_t o = 0; o < OC; ++o)
          table.winograd_output_adjoint_f32(pg + (n * OC + o) * P, g.OH, g.OW, TH, TW, m + o * ld + (n - n0) * tiles,
                                            ms, scratch);
      for (std::size_t n = n0; n < n1; ++n)
        for (std::size_t gi = 0; gi < groups; ++gi)
          of.image(m + gi * OCg * ld + (n - n0) * tiles, ms, ld, n, gi, z, scratch + split);
    }
  }, 0);  // grain 0: every run of B images is a task
  return dx;
}

}  // namespace

void winograd_conv2d_grads(const Tensor& grad_in, const Tensor& x_in, const Tensor& w_in, const kernels::ConvGeometry& g,
                           std::size_t groups, bool gx, bool gw, bool gb, Tensor& dx, Tensor& dw, Tensor& db) {
  if (!gx && !gw && !gb) return;
  const Tensor grad = grad_in.contiguous(), w = w_in.contiguous();
  const std::size_t OC = static_cast<std::size_t>(w.size(0)), OCg = OC / groups, Cg = g.C / groups;
  const std::unique_ptr<float[]> u = gx ? transformed_kernels(w, groups, OCg, Cg, true) : nullptr;
  if (!gw && !gb) {
    dx = input_grad_alone(grad, u.get(), g, OC, groups);
    return;
  }
  const Tensor x = x_in.contiguous();
  const std::size_t TH = (g.OH + 1) / 2, TW = (g.OW + 1) / 2, tiles = TH * TW;
  const std::size_t P = g.OH * g.OW, chunk = parallel::kBatchChunk;
  const std::size_t chunks = std::max<std::size_t>(1, (g.N + chunk - 1) / chunk);  // no images: one empty chunk (zeros)
  // A task: (chunk, group, block of output channels), as many blocks as give every thread one
  // task; each task transforms its images' input planes of the group again (blocks change no bit:
  // each output channel's rows are their own chains). One task per thread, not two: the
  // transforms each block repeats cost more than the balance gained (16 channels, batch 64, 2
  // threads: 2.6-2.8 ms in 2 blocks against 3.6-4.5 ms in 4, alternating).
  const std::size_t block = detail::channels_per_task(OCg, chunks, groups, 1), blocks = (OCg + block - 1) / block;
  // The input gradient from the same M' when a task holds every output channel of its group
  // (one block): its own transform of the output gradient is saved (winograd.hpp). Otherwise
  // (more threads than chunks) input_grad_alone makes M' again: the same bits either way.
  const bool fused = gx && blocks == 1;
  if (fused) dx = sorix::detail::make_empty<float>({g.N, g.C, g.H, g.W});
  const InputGradOf of{u.get(), g.C, Cg, OCg, g.H, g.W, g.ph, g.pw, TH, TW, fused ? sorix::detail::flat<float>(dx) : nullptr};
  const std::size_t dx_scratch = fused ? of.z_floats() + kernels::winograd_input_adjoint_scratch(TW) : 0;
  // Chunk i's node: du [groups][16][OCg][Cg + 1], column Cg of xi = 5 the bias: a tile's
  // M'[5] = (g00 + g01) + (g10 + g11) is its sum, so a row of ones under V[5]'s channels makes
  // the bias chain over the tiles' sums a column of the same product (fma(m, 1, acc) = acc + m).
  // With frozen weights (!gw) only that column is made: the same chains, so the same bits.
  const std::size_t Cn = gw ? Cg : 0, cols = Cn + 1, node = groups * 16 * OCg * cols;
  // B images of a chunk at a time, their tiles side by side (the chains over the tiles continue
  // from image to image as before: the same bits), at least kMinChainTiles tiles a product
  // (more than images_per_task's kBatchedColumns, so a block's partial sums go through the cache
  // once per B images too): a product per image of 49 tiles spent a fifth of its time resuming
  // and storing its partial sums and packing V (26 against 30-33 GFMA/s on Zen 3 for 64 x 33
  // with K = 49, 98, 196; the backward of the CNN's 32 -> 64 layer: -0.4 ms).
  static_assert(kMinChainTiles >= kBatchedColumns, "images_per_task's B is never larger");
  const std::size_t B = images_for_columns(kMinChainTiles, tiles, std::min(g.N, chunk));
  const std::size_t ld = kernels::winograd_row_ld(B * tiles);
  std::vector<float> partials(chunks * node);  // zeros: the columns no product writes stay +0
  const std::size_t vs = (Cn + 1) * ld + 16, ms = block * ld + 16;  // one line between xi matrices (winograd_planes)
  const std::size_t scratch_size = kernels::winograd_input_scratch(TH, TW);
  const float* px = sorix::detail::flat<float>(x);
  const float* pg = sorix::detail::flat<float>(grad);
  const auto& table = kernels::active();
  constexpr std::size_t kSumXi = 5;  // the transformed position holding each tile's sum
  parallel::parallel_for(chunks * groups * blocks, 1, [&](std::size_t t0, std::size_t t1) {
    float* v = thread_scratch<float>(16 * vs + 16 * ms + scratch_size + dx_scratch);
    float* m = v + 16 * vs;
    float* scratch = m + 16 * ms;
    float* z = scratch + scratch_size;
    std::fill(v + kSumXi * vs + Cn * ld, v + kSumXi * vs + Cn * ld + B * tiles, 1.0f);  // the transforms never write it
    for (std::size_t t = t0; t < t1; ++t) {
      const std::size_t ci = t / (groups * blocks), gi = t / blocks % groups, blk = t % blocks;
      const std::size_t o0 = gi * OCg + blk * block, o1 = std::min(gi * OCg + OCg, o0 + block), outs = o1 - o0;
      const std::size_t n0 = ci * chunk, n1 = std::min(g.N, n0 + chunk);
      float* node_of_chunk = partials.data() + ci * node;
      for (std::size_t b0 = n0; b0 < n1; b0 += B) {
        const std::size_t b1 = std::min(n1, b0 + B), k = (b1 - b0) * tiles;  // the run's tiles
        for (std::size_t n = b0; n < b1; ++n) {
          const float* gn = pg + (n * OC + o0) * P;  // this block's output planes of image n
          const std::size_t at = (n - b0) * tiles;
          for (std::size_t c = 0; c < Cn; ++c)
            table.winograd_input_f32(px + (n * g.C + gi * Cg + c) * g.H * g.W, g.H, g.W, g.ph, g.pw, TH, TW,
                                     v + c * ld + at, vs, scratch);
          for (std::size_t o = 0; o < outs; ++o)
            table.winograd_output_adjoint_f32(gn + o * P, g.OH, g.OW, TH, TW, m + o * ld + at, ms, scratch);
          // The input gradient at once, while this image's M' is in L2 (after the B images' the
          // run's M' is not: read again for it, the layer's backward took 0.3 ms more).
          if (fused) of.image(m + at, ms, ld, n, gi, z, z + of.z_floats());
        }
        for (std::size_t xi = 0; xi < 16; ++xi) {
          // rows o0.. of [OCg, Cg + 1]: the weights' columns, and the bias column beside xi = 5's
          const std::size_t n_cols = Cn + (gb && xi == kSumXi ? 1 : 0);
          if (n_cols == 0) continue;
          float* du = node_of_chunk + ((gi * 16 + xi) * OCg + (o0 - gi * OCg)) * cols;
          if (b0 == n0)
            kernels::gemm_serial<float>(false, true, outs, n_cols, k, 1.0f, m + xi * ms, ld, v + xi * vs, ld, 0.0f, du,
                                        cols);
          else
            kernels::gemm_serial_resume<float>(false, true, outs, n_cols, k, m + xi * ms, ld, v + xi * vs, ld, du, cols);
        }
      }
    }
  }, 0);  // grain 0: every (chunk, group, block) is a task
  if (gx && !fused) dx = input_grad_alone(grad, u.get(), g, OC, groups);
  const std::vector<float> root = kernels::tree_of_partials(partials.data(), chunks, node);
  if (gw) {
    dw = sorix::detail::make_empty<float>({OC, Cg, std::size_t{3}, std::size_t{3}});
    float* pd = sorix::detail::flat<float>(dw);
    for (std::size_t gi = 0; gi < groups; ++gi)
      for (std::size_t o = 0; o < OCg; ++o)
        for (std::size_t c = 0; c < Cg; ++c)
          kernels::winograd_weight_grad_f32(root.data() + (gi * 16 * OCg + o) * cols + c, OCg * cols,
                                            pd + ((gi * OCg + o) * Cg + c) * 9);
  }
  if (gb) {
    db = sorix::detail::make_empty<float>({OC});
    float* pb = sorix::detail::flat<float>(db);
    for (std::size_t gi = 0; gi < groups; ++gi)
      for (std::size_t o = 0; o < OCg; ++o) pb[gi * OCg + o] = root[((gi * 16 + kSumXi) * OCg + o) * cols + Cn];
  }
}

}  // namespace sorix::nn::detail
