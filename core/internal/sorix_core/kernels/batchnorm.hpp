#pragma once
// BatchNorm's loops (nn/src/batchnorm.cpp owns the checks, the module and the autograd node):
// per-channel statistics, normalisation, and the fused backward, on raw pointers. Every
// channel's sums are batch sums (sorix/parallel/batch_tree.hpp): each chunk of kBatchChunk images
// summed over (n, l) in order in double from +0, the chunks combined by the batch tree, whatever
// block or group of channels a task takes and whatever the register width, so the bits depend on
// nothing but the inputs (the same on every CPU: exact adds and multiplies in a fixed order,
// -ffp-contract=off), and a rank holding a subtree of the batch computes that node exactly
// (SyncBatchNorm finishes the tree across ranks through a parallel::BatchReducer).
#include <algorithm>
#include <cmath>
#include <cstddef>
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

// Channels per task of the channel reductions. Each channel is reduced over (n, l) in one fixed
// order whatever the block, so this only sets the parallel grain, never the bits.
constexpr std::size_t kChannelBlock = 64;

// Runs body(c0, c1) over fixed channel blocks; inline when the whole input is small.
template <class Body>
void for_channel_blocks(const BnDims& d, Body&& body) {
  parallel::parallel_for(d.C, kChannelBlock, body, parallel::kInlineGrain / std::max<std::size_t>(d.M(), 1));
}

// Runs body(n0, n1) over fixed blocks of batch rows (elementwise passes).
template <class Body>
void for_row_blocks(const BnDims& d, Body&& body) {
  const std::size_t row = std::max<std::size_t>(d.C * d.L, 1);
  parallel::parallel_for(d.N, std::max<std::size_t>(1, parallel::kChunkSize / row), body,
                         parallel::kInlineGrain / row);
}

// body(G, c) for consecutive groups of G channels covering [c0, c1): as many groups of the first
// size as fit, then of the next, ... (G a std::integral_constant). A body sums its G channels side
// by side: independent add chains, where one channel at a time waited on every add's latency.
// Each channel is still summed in its own fixed order, whatever group it falls in.
template <std::size_t... Sizes, class Body>
void for_groups(std::size_t c0, std::size_t c1, Body&& body) {
  std::size_t c = c0;
  const auto run = [&](auto group) {
    for (; c + decltype(group)::value <= c1; c += decltype(group)::value) body(group, c);
  };
  (run(std::integral_constant<std::size_t, Sizes>{}), ...);
}

// [N, C] inputs: groups of 32 channels (four vectors of 8 doubles: four add chains per row), then
// 8, then 1.
template <class Body>
void for_channel_groups(std::size_t c0, std::size_t c1, Body&& body) {
  for_groups<32, 8, 1>(c0, c1, body);
}

// [N, C, L] inputs: groups of 8 channels (planes read side by side), then 1.
template <class Body>
void for_plane_groups(std::size_t c0, std::size_t c1, Body&& body) {
  for_groups<8, 1>(c0, c1, body);
}

// acc[c - c0] = the batch sum of f(x[n, c, l]) (chunks of kBatchChunk images over n then l, the
// chunk partials combined by the batch tree), for the channels of one block.
template <class T, class F>
void accumulate(const T* x, const BnDims& d, std::size_t c0, std::size_t c1, double* acc, F&& f) {
  constexpr std::size_t kChunk = parallel::kBatchChunk;
  if (d.L == 1) {
    for_channel_groups(c0, c1, [&](auto group, std::size_t c) {
      constexpr std::size_t G = decltype(group)::value;
      ChunkTree<double> tree(G);
      for (std::size_t n0 = 0; n0 < d.N; n0 += kChunk) {
        double s[G] = {};
        for (std::size_t n = n0; n < std::min(d.N, n0 + kChunk); ++n) {
          const T* row = x + n * d.C + c;
          for (std::size_t j = 0; j < G; ++j) s[j] += f(row[j], c + j);
        }
        std::copy(s, s + G, tree.next());
        tree.push();
      }
      tree.finish(acc + (c - c0));
    });
    return;
  }
  // [N, C, L]: each channel's chain walks its planes in (n, l) order. G channels advance side by
  // side, so G independent add chains fill the core's adders; one channel at a time waited on
  // every add's latency (4 cycles a value).
  for_plane_groups(c0, c1, [&](auto group, std::size_t c) {
    constexpr std::size_t G = decltype(group)::value;
    ChunkTree<double> tree(G);
    for (std::size_t n0 = 0; n0 < d.N; n0 += kChunk) {
      double s[G] = {};
      for (std::size_t n = n0; n < std::min(d.N, n0 + kChunk); ++n) {
        const T* p = x + (n * d.C + c) * d.L;
        for (std::size_t l = 0; l < d.L; ++l)
          for (std::size_t j = 0; j < G; ++j) s[j] += f(p[j * d.L + l], c + j);
      }
      std::copy(s, s + G, tree.next());
      tree.push();
    }
    tree.finish(acc + (c - c0));
  });
}

// Per-channel statistics the backward needs: fixed at forward time (in eval mode they are a
// snapshot of the running statistics, which later training steps change in place).
struct BnSaved {
  std::vector<double> mean, invstd;
};

/// The batch statistics (two passes: the sum of squared deviations from the mean, no cancellation
/// of a one-pass E[x^2] - E[x]^2). With a reducer (SyncBatchNorm), each pass's sums are this
/// rank's tree nodes, finished across the ranks before they are used; d.count() is then the
/// global count.
template <class T>
void batch_stats(const T* x, const BnDims& d, double eps, BnSaved& s, std::vector<double>& var,
                 parallel::BatchReducer* reducer = nullptr) {
  std::vector<double> sums(d.C, 0.0);
  for_channel_blocks(d, [&](std::size_t c0, std::size_t c1) {
    accumulate(x, d, c0, c1, sums.data() + c0, [](T v, std::size_t) { return static_cast<double>(v); });
  });
  if (reducer != nullptr) reducer->finish(sums.data(), d.C);
  const double inv_m = 1.0 / d.count();
  for (std::size_t c = 0; c < d.C; ++c) s.mean[c] = sums[c] * inv_m;
  // The means go through a restrict pointer so that the [N, C] loop vectorises across channels.
  const double* __restrict mean = s.mean.data();
  for_channel_blocks(d, [&](std::size_t c0, std::size_t c1) {
    accumulate(x, d, c0, c1, sums.data() + c0, [mean](T v, std::size_t c) {
      const double dv = static_cast<double>(v) - mean[c];
      return dv * dv;
    });
  });
  if (reducer != nullptr) reducer->finish(sums.data(), d.C);
  for (std::size_t c = 0; c < d.C; ++c) {
    var[c] = sums[c] * inv_m;
    s.invstd[c] = 1.0 / std::sqrt(var[c] + eps);
  }
}

// y = (x - mean) * (invstd * w) + b.
template <class T>
void normalize(const T* x, T* y, const BnDims& d, const BnSaved& s, const T* w, const T* b) {
  std::vector<T> mean(d.C), scale(d.C), shift(d.C);
  for (std::size_t c = 0; c < d.C; ++c) {
    mean[c] = static_cast<T>(s.mean[c]);
    scale[c] = static_cast<T>(s.invstd[c] * (w != nullptr ? static_cast<double>(w[c]) : 1.0));
    shift[c] = b != nullptr ? b[c] : T(0);
  }
  for_row_blocks(d, [&](std::size_t n0, std::size_t n1) {
    for (std::size_t n = n0; n < n1; ++n) {
      const T* xr = x + n * d.C * d.L;
      T* yr = y + n * d.C * d.L;
      if (d.L == 1) {
        for (std::size_t c = 0; c < d.C; ++c) yr[c] = (xr[c] - mean[c]) * scale[c] + shift[c];
      } else {
        for (std::size_t c = 0; c < d.C; ++c) {
          for (std::size_t l = 0; l < d.L; ++l) yr[c * d.L + l] = (xr[c * d.L + l] - mean[c]) * scale[c] + shift[c];
        }
      }
    }
  });
}

/// The backward's per-channel batch sums: sum_g[c] = sum g, dot[c] = sum g * (x - mean), each
/// by the batch tree in the order of accumulate (both in one walk, the same bits). With a reducer
/// (SyncBatchNorm) they are finished across the ranks.
template <class T>
void backward_sums(const T* g, const T* x, const BnDims& d, const BnSaved& s, double* sum_g, double* dot,
                   parallel::BatchReducer* reducer = nullptr) {
  constexpr std::size_t kChunk = parallel::kBatchChunk;
  if (d.M() > 0) {
    for_channel_blocks(d, [&](std::size_t c0, std::size_t c1) {
      const auto walk = [&](auto group, std::size_t c) {
        constexpr std::size_t G = decltype(group)::value;
        ChunkTree<double> tree(2 * G);  // [sum_g of G channels, dot of G channels]
        double mean[G];
        for (std::size_t j = 0; j < G; ++j) mean[j] = s.mean[c + j];
        for (std::size_t n0 = 0; n0 < d.N; n0 += kChunk) {
          double sum[G] = {}, acc[G] = {};
          for (std::size_t n = n0; n < std::min(d.N, n0 + kChunk); ++n) {
            if (d.L == 1) {
              const T* gr = g + n * d.C + c;
              const T* xr = x + n * d.C + c;
              for (std::size_t j = 0; j < G; ++j) {
                sum[j] += static_cast<double>(gr[j]);
                acc[j] += static_cast<double>(gr[j]) * (static_cast<double>(xr[j]) - mean[j]);
              }
            } else {
              const T* gp = g + (n * d.C + c) * d.L;
              const T* xp = x + (n * d.C + c) * d.L;
              for (std::size_t l = 0; l < d.L; ++l) {
                for (std::size_t j = 0; j < G; ++j) {
                  const double gv = static_cast<double>(gp[j * d.L + l]);
                  sum[j] += gv;
                  acc[j] += gv * (static_cast<double>(xp[j * d.L + l]) - mean[j]);
                }
              }
            }
          }
          double* node = tree.next();
          std::copy(sum, sum + G, node);
          std::copy(acc, acc + G, node + G);
          tree.push();
        }
        double root[2 * G];
        tree.finish(root);
        std::copy(root, root + G, sum_g + c);
        std::copy(root + G, root + 2 * G, dot + c);
      };
      if (d.L == 1) for_channel_groups(c0, c1, walk);
      else for_plane_groups(c0, c1, walk);
    });
  }
  if (reducer != nullptr) {
    reducer->finish(sum_g, d.C);
    reducer->finish(dot, d.C);
  }
}

/// dx = (g - sum_g / M - (x - mean) * k) * invstd * w with k = dot * invstd^2 / M (training), or
/// dx = g * invstd * w (eval).
template <class T>
void backward_dx(const T* g, const T* x, const T* w, const BnDims& d, const BnSaved& s, const double* sum_g,
                 const double* dot, bool training, T* dx) {
  std::vector<T> mean(d.C), scale(d.C), gmean(d.C), k(d.C);
  const double inv_m = d.count() > 0 ? 1.0 / d.count() : 0.0;
  for (std::size_t c = 0; c < d.C; ++c) {
    mean[c] = static_cast<T>(s.mean[c]);
    scale[c] = static_cast<T>(s.invstd[c] * (w != nullptr ? static_cast<double>(w[c]) : 1.0));
    gmean[c] = training ? static_cast<T>(sum_g[c] * inv_m) : T(0);
    k[c] = training ? static_cast<T>(dot[c] * s.invstd[c] * s.invstd[c] * inv_m) : T(0);
  }
  for_row_blocks(d, [&](std::size_t n0, std::size_t n1) {
    const T* __restrict gm = gmean.data();
    const T* __restrict mn = mean.data();
    const T* __restrict kk = k.data();
    const T* __restrict sc = scale.data();
    for (std::size_t n = n0; n < n1; ++n) {
      const std::size_t off = n * d.C * d.L;
      if (d.L == 1) {
        const T* __restrict gr = g + off;
        const T* __restrict xr = x + off;
        T* __restrict dr = dx + off;
        for (std::size_t c = 0; c < d.C; ++c) dr[c] = (gr[c] - gm[c] - (xr[c] - mn[c]) * kk[c]) * sc[c];
        continue;
      }
      for (std::size_t c = 0; c < d.C; ++c) {
        for (std::size_t l = 0; l < d.L; ++l) {
          const std::size_t i = off + c * d.L + l;
          dx[i] = (g[i] - gmean[c] - (x[i] - mean[c]) * k[c]) * scale[c];
        }
      }
    }
  });
}

}  // namespace sorix::kernels::bn
