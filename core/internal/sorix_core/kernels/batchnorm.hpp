#pragma once
// BatchNorm's loops (nn/src/batchnorm.cpp owns the checks, the module and the autograd node):
// per-channel statistics, normalisation, and the fused backward, on raw pointers. Every
// channel's sums are batch sums (sorix/parallel/batch_tree.hpp): each chunk of kBatchChunk images
// summed over (n, l) in order in double from +0 (the statistics of [N, C, L] inputs with planes of
// kPlaneMomentsFrom values or more: over n of each plane's moments, themselves fixed chains over
// l), the chunks combined by the batch tree, whatever
// block or group of channels a task takes and whatever the register width, so the bits depend on
// nothing but the inputs (the same on every CPU: exact adds and multiplies in a fixed order,
// -ffp-contract=off), and a rank holding a subtree of the batch computes that node exactly
// (SyncBatchNorm finishes the tree across ranks through a parallel::BatchReducer). The loops over
// one chunk or block of rows are the dispatch table's (bn_kernels.hpp); the parallel loops and the
// trees are here.
#include <algorithm>
#include <cmath>
#include <memory>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "sorix_core/kernels/batch_tree.hpp"
#include "sorix/parallel/batch_tree.hpp"
#include "sorix/parallel/parallel.hpp"

namespace sorix::kernels::bn {

// Input viewed as [N, C, L]; M = N * L values per channel.
struct BnDims {
  std::size_t N, C, L;
  /// Values per channel over the whole batch (SyncBatchNorm: every rank's); 0: this input's M().
  std::size_t m_total = 0;
  std::size_t M() const { return N * L; }
  double count() const { return static_cast<double>(m_total != 0 ? m_total : M()); }
};

// Channels per task of the channel reductions (the statistics of [N, C] inputs and of short
// planes, the backward's gradient sums; the statistics of long planes go by planes instead). Each
// channel is reduced over (n, l) in one fixed order whatever the block, so this only sets the
// parallel grain, never the bits. [N, C] inputs sum channels across vector lanes (wide blocks);
// the gradient sums of [N, C, L] planes, and the statistics of short planes, take 16 or 8
// channels at a time (bn_kernels.hpp), so a block of 16 lets BatchNorm2d's 32 or 64 channels
// feed two or four threads.
constexpr std::size_t kChannelBlock = 64;
constexpr std::size_t kPlaneChannelBlock = 16;

// Runs body(c0, c1) over fixed channel blocks; inline when the whole input is small.
template <class Body>
void for_channel_blocks(const BnDims& d, Body&& body) {
  parallel::parallel_for(d.C, d.L == 1 ? kChannelBlock : kPlaneChannelBlock, body,
                         parallel::kInlineGrain / std::max<std::size_t>(d.M(), 1));
}

// Runs body(n0, n1) over fixed blocks of batch rows (elementwise passes).
template <class Body>
void for_row_blocks(const BnDims& d, Body&& body) {
  const std::size_t row = std::max<std::size_t>(d.C * d.L, 1);
  parallel::parallel_for(d.N, std::max<std::size_t>(1, parallel::kChunkSize / row), body,
                         parallel::kInlineGrain / row);
}

// An elementwise pass over x viewed as [N, C, L]: body(c0, c1, n0, n1) over fixed blocks of
// rows, or, for one row (LayerNorm and GroupNorm run as a BatchNorm of [1, rows, L]), over
// fixed blocks of its channels, so that it still runs as parallel tasks. Each element's value
// is the same whatever the block.
template <class Body>
void for_elementwise_blocks(const BnDims& d, Body&& body) {
  if (d.N == 1 && d.C > 1) {
    const std::size_t plane = std::max<std::size_t>(d.L, 1);
    parallel::parallel_for(
        d.C, std::max<std::size_t>(1, parallel::kChunkSize / plane),
        [&](std::size_t c0, std::size_t c1) { body(c0, c1, std::size_t{0}, std::size_t{1}); },
        parallel::kInlineGrain / plane);
    return;
  }
  for_row_blocks(d, [&](std::size_t n0, std::size_t n1) { body(std::size_t{0}, d.C, n0, n1); });
}

// acc[c - c0] = the batch sum over (n, l) of x[n, c, l] (with `mean`: of (x - mean[c])^2) for
// the channels of one block: each chunk of kBatchChunk images summed by the active capability's
// kernel (bn_kernels.hpp: one chain per channel in (n, l) order from +0), the chunk partials
// combined by the batch tree.
template <class T>
void accumulate(const T* x, const BnDims& d, std::size_t c0, std::size_t c1, const double* mean, double* acc) {
  constexpr std::size_t kChunk = parallel::kBatchChunk;
  const auto& k = bn_kernels<T>(active());
  ChunkTree<double> tree(c1 - c0);
  for (std::size_t n0 = 0; n0 < d.N; n0 += kChunk) {
    k.channel_sums(x, d.C, d.L, n0, std::min(d.N, n0 + kChunk), c0, c1, mean, tree.next());
    tree.push();
  }
  tree.finish(acc);
}

// acc[c] = the batch sum over n of term(n, c) for every channel: each chunk of kBatchChunk
// images summed in n order from +0, the chunk partials combined by the batch tree (the terms are
// one per plane: a few values per image, summed serially).
template <class Term>
void sum_planes(const BnDims& d, Term&& term, double* acc) {
  constexpr std::size_t kChunk = parallel::kBatchChunk;
  ChunkTree<double> tree(d.C);
  for (std::size_t n0 = 0; n0 < d.N; n0 += kChunk) {
    double* node = tree.next();
    std::fill(node, node + d.C, 0.0);
    // Images outer, channels inner: each channel's chain is the same, the terms read in memory order.
    for (std::size_t n = n0; n < std::min(d.N, n0 + kChunk); ++n)
      for (std::size_t c = 0; c < d.C; ++c) node[c] += term(n, c);
    tree.push();
  }
  tree.finish(acc);
}

// Per-channel statistics the backward needs: fixed at forward time (in eval mode they are a
// snapshot of the running statistics, which later training steps change in place).
struct BnSaved {
  std::vector<double> mean, invstd;
  /// With a fused ReLU: the bias the forward normalised with (exact in double), so that the
  /// backward recomputes the forward's y, and its mask, bit for bit.
  std::vector<double> shift;
  /// With a fused pool: the forward's winner codes and the x at each winner, one per window
  /// (table.hpp's BnPool; winner_x holds T values).
  std::unique_ptr<std::uint8_t[]> winners;
  std::unique_ptr<std::byte[]> winner_x;
};

/// A fused pool over H x W planes as the kernels take it, with the winners saved in s (null
/// before they are allocated: a forward that is not recorded keeps none).
template <class T>
BnPool<T> saved_pool(std::size_t H, std::size_t W, const BnSaved& s) {
  return BnPool<T>{H, W, s.winners.get(), reinterpret_cast<T*>(s.winner_x.get())};
}

/// The normalisation's per-channel constants in T: y = (x - mean) * scale + shift.
template <class T>
struct NormalizeConstants {
  std::vector<T> mean, scale, shift;
  BnRelu<T> relu() const { return {mean.data(), scale.data(), shift.data()}; }
};
template <class T>
NormalizeConstants<T> normalize_constants(std::size_t C, const BnSaved& s, const T* w, const T* b) {
  NormalizeConstants<T> k{std::vector<T>(C), std::vector<T>(C), std::vector<T>(C)};
  for (std::size_t c = 0; c < C; ++c) {
    k.mean[c] = static_cast<T>(s.mean[c]);
    k.scale[c] = static_cast<T>(s.invstd[c] * (w != nullptr ? static_cast<double>(w[c]) : 1.0));
    k.shift[c] = b != nullptr ? b[c] : T(0);
  }
  return k;
}

/// Each plane's moments of x viewed as [N * C planes, L] as BnKernels::plane_moments makes them:
/// its sum, and about its own mean the sums of squared deviations and of deviations.
struct PlaneMoments {
  const double *sum, *sq, *dev;
};

/// Planes of at least this many values take the statistics' one-pass form (batch_stats). Below
/// it the per-plane work (three moments stored, a division, two folds of 16 chains) outweighs the
/// memory pass it saves: measured on AVX2 and AVX-512, BatchNorm2d's forward on 2 x 2 to 7 x 7
/// planes took 1.5-3x the two passes' time, on 10 x 10 about the same, on 14 x 14 and 28 x 28
/// planes (the CNN's, read from memory) less.
inline constexpr std::size_t kPlaneMomentsFrom = 64;

/// The batch statistics, without cancellation (no one-pass E[x^2] - E[x]^2). [N, C] inputs and
/// [N, C, L] inputs with L < kPlaneMomentsFrom: two passes, the channel sums, then the sums of
/// squared deviations from the mean (each a chain per channel in (n, l) order). Longer planes:
/// one pass, each plane's moments (its sum s, and about its own mean m = s / L the sums of
/// squared deviations q and of deviations r, the plane read twice while in cache: bn_kernels.hpp),
/// then per channel mean = sum of s / M and var = sum of (q + dm * (2 r + L * dm)) / M with
/// dm = m - mean: the exact identity sum (v - mean)^2 = q + 2 dm r + L dm^2 for any m (r corrects
/// for m's rounding, which would otherwise enter at first order), both sums by the batch tree over
/// the planes. With a reducer (SyncBatchNorm), each sum is this rank's tree node, finished across
/// the ranks before it is used; d.count() is then the global count. `given` (long planes only):
/// every plane's moments, already made by plane_moments (a fused convolution's tasks, as they
/// wrote the planes): x is then not read.
template <class T>
void batch_stats(const T* x, const BnDims& d, double eps, BnSaved& s, std::vector<double>& var,
                 parallel::BatchReducer* reducer = nullptr, const PlaneMoments* given = nullptr) {
  std::vector<double> sums(d.C, 0.0);
  const double inv_m = 1.0 / d.count();
  if (d.L < kPlaneMomentsFrom) {
    for_channel_blocks(d, [&](std::size_t c0, std::size_t c1) {
      accumulate(x, d, c0, c1, nullptr, sums.data() + c0);
    });
    if (reducer != nullptr) reducer->finish(sums.data(), d.C);
    for (std::size_t c = 0; c < d.C; ++c) s.mean[c] = sums[c] * inv_m;
    for_channel_blocks(d, [&](std::size_t c0, std::size_t c1) {
      accumulate(x, d, c0, c1, s.mean.data(), sums.data() + c0);
    });
  } else {
    const std::size_t P = d.N * d.C;
    // Not zeroed: the kernel writes every plane's three moments.
    std::unique_ptr<double[]> made_sum, made_sq, made_dev;
    if (given == nullptr) {
      made_sum.reset(new double[P]);
      made_sq.reset(new double[P]);
      made_dev.reset(new double[P]);
      const auto& k = bn_kernels<T>(active());
      parallel::parallel_for(
          P, std::max<std::size_t>(1, parallel::kChunkSize / d.L),
          [&](std::size_t p0, std::size_t p1) {
            k.plane_moments(x, d.L, p0, p1, made_sum.get() + p0, made_sq.get() + p0, made_dev.get() + p0);
          },
          parallel::kInlineGrain / d.L);
    }
    const double* plane_sum = given != nullptr ? given->sum : made_sum.get();
    const double* plane_sq = given != nullptr ? given->sq : made_sq.get();
    const double* plane_dev = given != nullptr ? given->dev : made_dev.get();
    sum_planes(d, [&](std::size_t n, std::size_t c) { return plane_sum[n * d.C + c]; }, sums.data());
    if (reducer != nullptr) reducer->finish(sums.data(), d.C);
    for (std::size_t c = 0; c < d.C; ++c) s.mean[c] = sums[c] * inv_m;
    const auto L = static_cast<double>(d.L);
    sum_planes(
        d,
        [&](std::size_t n, std::size_t c) {
          const std::size_t p = n * d.C + c;
          const double dm = plane_sum[p] / L - s.mean[c];
          return plane_sq[p] + dm * (2.0 * plane_dev[p] + L * dm);
        },
        sums.data());
  }
  if (reducer != nullptr) reducer->finish(sums.data(), d.C);
  for (std::size_t c = 0; c < d.C; ++c) {
    var[c] = sums[c] * inv_m;
    s.invstd[c] = 1.0 / std::sqrt(var[c] + eps);
  }
}

/// Each row's mean and 1 / sqrt(var + eps) (biased variance) for x viewed as [rows, L]: the
/// batch statistics of [1, rows, L], each row a channel (LayerNorm's and GroupNorm's fused ops).
template <class T>
BnSaved row_stats(const T* x, std::size_t rows, std::size_t L, double eps) {
  BnSaved s;
  s.mean.assign(rows, 0.0);
  s.invstd.assign(rows, 0.0);
  std::vector<double> var(rows, 0.0);
  batch_stats(x, BnDims{1, rows, L}, eps, s, var);
  return s;
}

// y = (x - mean) * (invstd * w) + b; with `relu`, then y < 0 ? 0 : y (relu's own bits); with
// `pool` (and relu), y is [N, C, OH * OW]: the 2 x 2 windows' maxima of those.
template <class T>
void normalize(const T* x, T* y, const BnDims& d, const BnSaved& s, const T* w, const T* b, bool relu = false,
               const BnPool<T>* pool = nullptr) {
  const NormalizeConstants<T> nc = normalize_constants<T>(d.C, s, w, b);
  const auto& k = bn_kernels<T>(active());
  if (relu || pool != nullptr) {  // the fused forms index their constants by the whole C
    for_row_blocks(d, [&](std::size_t n0, std::size_t n1) {
      k.normalize(x, y, d.C, d.L, n0, n1, nc.mean.data(), nc.scale.data(), nc.shift.data(), relu, pool);
    });
    return;
  }
  // A block of channels [c0, c1) of one row is itself an [1, c1 - c0, L] input (N == 1).
  for_elementwise_blocks(d, [&](std::size_t c0, std::size_t c1, std::size_t n0, std::size_t n1) {
    k.normalize(x + c0 * d.L, y + c0 * d.L, c1 - c0, d.L, n0, n1, nc.mean.data() + c0, nc.scale.data() + c0,
                nc.shift.data() + c0, false, nullptr);
  });
}

/// The backward's per-channel batch sums: sum_g[c] = sum g, dot[c] = sum g * (x - mean), each
/// chunk of kBatchChunk images one chain per channel in (n, l) order from +0, the chunks combined
/// by the batch tree (both sums in one walk). With a reducer
/// (SyncBatchNorm) they are finished across the ranks. With `relu` (a fused ReLU), g is first
/// relu's gradient, its mask recomputed from x; with `pool` too, g is the pooled gradient and
/// the pool's backward comes first (table.hpp, BnKernels::grad_sums).
template <class T>
void backward_sums(const T* g, const T* x, const BnDims& d, const BnSaved& s, double* sum_g, double* dot,
                   parallel::BatchReducer* reducer = nullptr, const BnRelu<T>* relu = nullptr,
                   const BnPool<T>* pool = nullptr) {
  constexpr std::size_t kChunk = parallel::kBatchChunk;
  if (d.M() > 0) {
    const auto& k = bn_kernels<T>(active());
    for_channel_blocks(d, [&](std::size_t c0, std::size_t c1) {
      const std::size_t w = c1 - c0;
      ChunkTree<double> tree(2 * w);  // [sum_g of the block's channels, dot of them]
      for (std::size_t n0 = 0; n0 < d.N; n0 += kChunk) {
        double* node = tree.next();
        k.grad_sums(g, x, d.C, d.L, n0, std::min(d.N, n0 + kChunk), c0, c1, s.mean.data(), relu, pool, node,
                    node + w);
        tree.push();
      }
      std::vector<double> root(2 * w);
      tree.finish(root.data());
      std::copy(root.begin(), root.begin() + w, sum_g + c0);
      std::copy(root.begin() + w, root.end(), dot + c0);
    });
  }
  if (reducer != nullptr) {
    reducer->finish(sum_g, d.C);
    reducer->finish(dot, d.C);
  }
}

/// The input gradient's per-channel constants in T: dx = (g - gmean - (x - mean) * k) * scale, with
/// gmean = sum_g / M and k = dot * invstd^2 / M in training (0 in eval), scale = invstd * w.
template <class T>
struct DxConstants {
  std::vector<T> mean, scale, gmean, k;
};
template <class T>
DxConstants<T> dx_constants(const T* w, const BnDims& d, const BnSaved& s, const double* sum_g, const double* dot,
                            bool training) {
  DxConstants<T> c{std::vector<T>(d.C), std::vector<T>(d.C), std::vector<T>(d.C), std::vector<T>(d.C)};
  const double inv_m = d.count() > 0 ? 1.0 / d.count() : 0.0;
  for (std::size_t ch = 0; ch < d.C; ++ch) {
    c.mean[ch] = static_cast<T>(s.mean[ch]);
    c.scale[ch] = static_cast<T>(s.invstd[ch] * (w != nullptr ? static_cast<double>(w[ch]) : 1.0));
    c.gmean[ch] = training ? static_cast<T>(sum_g[ch] * inv_m) : T(0);
    c.k[ch] = training ? static_cast<T>(dot[ch] * s.invstd[ch] * s.invstd[ch] * inv_m) : T(0);
  }
  return c;
}

/// dx = (g - sum_g / M - (x - mean) * k) * invstd * w with k = dot * invstd^2 / M (training), or
/// dx = g * invstd * w (eval); with `relu` (and `pool`), g is first relu's (and the pool's)
/// gradient as in backward_sums.
template <class T>
void backward_dx(const T* g, const T* x, const T* w, const BnDims& d, const BnSaved& s, const double* sum_g,
                 const double* dot, bool training, T* dx, const BnRelu<T>* relu = nullptr,
                 const BnPool<T>* pool = nullptr) {
  const DxConstants<T> c = dx_constants(w, d, s, sum_g, dot, training);
  const auto& kern = bn_kernels<T>(active());
  if (relu != nullptr || pool != nullptr) {  // the fused forms index their constants by the whole C
    for_row_blocks(d, [&](std::size_t n0, std::size_t n1) {
      kern.backward_dx(g, x, dx, d.C, d.L, n0, n1, c.gmean.data(), c.mean.data(), c.k.data(), c.scale.data(), relu,
                       pool);
    });
    return;
  }
  for_elementwise_blocks(d, [&](std::size_t c0, std::size_t c1, std::size_t n0, std::size_t n1) {
    const std::size_t at = c0 * d.L;
    kern.backward_dx(g + at, x + at, dx + at, c1 - c0, d.L, n0, n1, c.gmean.data() + c0, c.mean.data() + c0,
                     c.k.data() + c0, c.scale.data() + c0, nullptr, nullptr);
  });
}

/// backward_dx with a fused pool for image n alone, on the calling thread: its [C, L] gradient
/// into dx_n (the same values as backward_dx's, which makes them image by image too). g is the
/// pooled gradient [N, C, H / 2 * W / 2] and the pool's codes are the forward's.
template <class T>
void pooled_backward_dx_image(const T* g, const T* x, const BnDims& d, const DxConstants<T>& c, const BnPool<T>& pool,
                              std::size_t n, T* dx_n) {
  const std::size_t at = n * d.C * pool.pooled();
  const BnPool<T> image{pool.H, pool.W, pool.winners + at, pool.winner_x != nullptr ? pool.winner_x + at : nullptr};
  bn_kernels<T>(active()).backward_dx(g + at, x + n * d.C * d.L, dx_n, d.C, d.L, 0, 1, c.gmean.data(), c.mean.data(),
                                      c.k.data(), c.scale.data(), nullptr, &image);
}

}  // namespace sorix::kernels::bn
