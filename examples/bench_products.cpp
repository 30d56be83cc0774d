// The training model's eight matrix products (batch 128: 784 -> 128 -> 64 -> 10, forward and
// backward) on every CPU capability this machine runs, each against the core's multiply-add peak
// measured in the same run on the same path (the kernel layer's fma probe: 12 independent chains
// of one register's lanes). Repetitions interleave the probe and the products, so a change of the
// machine's clock or load falls on both; the table gives medians.
//
// A second table gives the CNN's convolution products as its im2col path runs them against the same
// peak (conv1's; conv2's as they ran before Winograd), a third the second convolution as
// nn::Conv2d runs it now (Winograd: transforms and products timed whole). A fourth gives the cost of the batch tree (sorix/parallel/batch_tree.hpp) on the training
// step: each weight-gradient product restarts its chain every 32 rows and combines the partials in
// a fixed tree (the definition that makes data-parallel training rank-invariant). Each is timed
// against the same product as one chain over the whole batch, interleaved, and the three extra
// times are set against one whole training step of the model (RMSprop, same batch and threads).
//
//   bench_products [--reps 21] [--threads 1] [--capabilities scalar,avx2,avx512]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <sorix/sorix.hpp>

#include "examples/support/cli.hpp"
#include "examples/support/fashion_model.hpp"
#include "sorix_autograd/gemm.hpp"
#include "sorix_core/kernels/im2col.hpp"
#include "sorix_core/kernels/table.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct Product {
  const char* what;
  bool ta, tb;
  std::size_t M, N, K;
};

// y = x W^T (trans_b), dW = g^T x (trans_a), dx = g W: as nn::Linear calls them.
const Product kProducts[] = {
    {"fc1 forward  x W1^T", false, true, 128, 128, 784}, {"fc1 grad W  g^T x", true, false, 128, 784, 128},
    {"fc2 forward", false, true, 128, 64, 128},          {"fc2 grad W", true, false, 64, 128, 128},
    {"fc2 grad x", false, false, 128, 128, 64},         {"fc3 forward", false, true, 128, 10, 64},
    {"fc3 grad W", true, false, 10, 64, 128},           {"fc3 grad x", false, false, 128, 64, 10},
};

// Median time of one training step of the benchmark MLP at this batch size (after a warm-up).
double training_step_seconds(std::int64_t batch, int reps) {
  sorix::manual_seed(0);
  sorix::nn::Sequential model = sorix::examples::make_fashion_model();
  sorix::optim::RMSprop opt(model.parameters(), sorix::optim::RMSpropOptions(1e-3).alpha(0.99));
  sorix::nn::CrossEntropyLoss loss_fn;
  auto data = sorix::examples::synthetic_fashion(batch, 3);
  sorix::data::DataLoader loader(data, sorix::data::DataLoaderOptions().batch_size(batch));
  const sorix::data::Batch b = *loader.begin();
  std::vector<double> t;
  for (int r = -1; r < reps; ++r) {
    const auto t0 = Clock::now();
    sorix::Tensor loss = loss_fn(model(b.data), b.target);
    opt.zero_grad();
    loss.backward();
    opt.step();
    if (r >= 0) t.push_back(seconds_since(t0));
  }
  return median(t);
}

// The batch tree's extra time on the step's three weight-gradient products, and that as a share
// of the whole step, at batch 128 and 512.
void batch_tree_cost(const std::string& cap, int reps) {
  const std::size_t dims[][2] = {{128, 784}, {64, 128}, {10, 64}};  // (out, in) of fc1, fc2, fc3
  for (std::size_t batch : {std::size_t(128), std::size_t(512)}) {
    double extra = 0, tree_total = 0, chain_total = 0;
    for (const auto& d : dims) {
      const std::size_t out = d[0], in = d[1];
      std::vector<float> g(batch * out, 0.01f), x(batch * in, 0.02f), w(out * in);
      std::vector<double> tree, chain;
      for (int r = -1; r < reps; ++r) {
        auto t0 = Clock::now();
        for (int k = 0; k < 10; ++k)
          sorix::kernels::gemm_batch_tree<float>(true, false, out, in, batch, g.data(), out, x.data(), in, w.data(), in,
                                                 sorix::parallel::kBatchChunk);
        const double t_tree = seconds_since(t0) / 10;
        t0 = Clock::now();
        for (int k = 0; k < 10; ++k)
          sorix::kernels::gemm<float>(true, false, out, in, batch, 1.0f, g.data(), out, x.data(), in, 0.0f, w.data(), in);
        const double t_chain = seconds_since(t0) / 10;
        if (r >= 0) {
          tree.push_back(t_tree);
          chain.push_back(t_chain);
        }
      }
      tree_total += median(tree);
      chain_total += median(chain);
      extra += median(tree) - median(chain);
    }
    const double step = training_step_seconds(static_cast<std::int64_t>(batch), reps);
    std::printf("%-6s %6zu %14.1f %14.1f %12.1f %12.1f %9.1f%%\n", cap.c_str(), batch, chain_total * 1e6,
                tree_total * 1e6, extra * 1e6, step * 1e6, 100.0 * extra / step);
  }
}

// The products of the CNN's convolutions (examples/support/fashion_model.hpp, batch 128) as
// nn::Conv2d runs them, every image a task. conv1's forward (9 multiply-adds per output: "D") is
// the direct kernel on the task's zero-padded copy of the image (the copy is timed). Otherwise the
// forward multiplies the image's columns that its
// task has just made in a buffer of its own (in that core's L2): as y_n = W cols_n into the NCHW
// output (its bias filled in first: beta 1), or, where the product kernel's tiles it saves outweigh
// the copy (conv.cpp's rule: the CNN's 196 x 64 x 288 on AVX-512), as y_n^T = cols_n^T W^T into the task's buffer (bias rows
// first) and then copied out transposed (the copy is timed with the product). The columns'
// gradient W^T g_n reads the image's gradient and is written into the task's own buffer (col2im
// then reads it from L2). The weight gradient is made by tasks of (batch-tree chunk of 32
// images, block of input channels: whole layers unless the chunks give a thread fewer than two
// tasks, as conv.cpp chooses): image by image in order, the block's rows of the image's columns
// (remade in the task's buffer; the last block's carry a row of ones, whose chain is the bias
// gradient) times g_n^T, every chain resumed from the previous image's partial
// (gemm_serial_resume); the chunk partials are then added by the tree (a few adds, not timed).
// M x N x K per product; "x 128" marks one per image, "x 128 x B" one per image and channel block.
enum class Scratch { a, b, c };  // the per-image operand that lives in the task's own buffer
struct ConvProduct {
  const char* what;
  std::size_t blocks;  // products per image (the weight gradient's channel blocks)
  bool ta, tb;
  std::size_t M, N, K;
  Scratch scratch;
  bool transposed = false;  // forward only: M x N is the output transposed (P x C_out)
  bool direct = false;      // forward only: the direct kernel on the padded image (M x N x K as W x cols)
};
constexpr std::size_t kConvBatch = 128;
// The forward as Conv2d makes it (3 x 3 taps, stride 1, padding 1; sorix::kernels::conv_forward_path):
// the direct kernel, the transposed product from the padded image's columns read in place, or
// C_out x P from the columns (made untimed in the task's buffer).
ConvProduct conv_forward_product(const char* what, std::size_t out_channels, std::size_t positions, std::size_t K) {
  const std::size_t side = static_cast<std::size_t>(std::lround(std::sqrt(double(positions))));
  const sorix::kernels::ConvGeometry g{1, K / 9, side, side, 3, 3, 1, 1, 1, 1, 1, 1, side, side};
  switch (sorix::kernels::conv_forward_path<float>(g, out_channels, K)) {
    case sorix::kernels::ConvForwardPath::direct:
      return {what, 1, false, false, out_channels, positions, K, Scratch::b, false, true};
    case sorix::kernels::ConvForwardPath::gathered:
      return {what, 1, true, false, positions, out_channels, K, Scratch::b, true};
    default:
      return {what, 1, false, false, out_channels, positions, K, Scratch::b};
  }
}
// The weight gradients' rows are given for one block of the whole layer (blocks 1); weight_blocks
// splits them as conv.cpp does for the thread count (the last block's ones row comes on top).
std::vector<ConvProduct> conv_products_at(int threads) {
  std::vector<ConvProduct> products = {
      conv_forward_product("conv1 forward", 32, 784, 9),
      {"conv1 grad W,b", 1, false, true, 9, 32, 784, Scratch::a},
      conv_forward_product("conv2 forward", 64, 196, 288),
      {"conv2 grad W,b", 1, false, true, 288, 64, 196, Scratch::a},
      {"conv2 grad cols", 1, true, false, 288, 196, 64, Scratch::c},
  };
  const std::size_t chunks = kConvBatch / sorix::parallel::kBatchChunk, taps = 9;
  for (ConvProduct& p : products) {
    if (p.scratch != Scratch::a) continue;
    const std::size_t channels = p.M / taps, wanted = (2 * std::size_t(threads) + chunks - 1) / chunks;
    const std::size_t per_block = std::max<std::size_t>(1, (channels + wanted - 1) / wanted);
    p.blocks = (channels + per_block - 1) / per_block;
    p.M = per_block * taps;  // the last block may have fewer channels: its time is a little overstated
  }
  return products;
}

// Multiply-adds of one row of the table (the weight gradient's ones row included).
double conv_fma(const ConvProduct& p) {
  const double rows = double(p.blocks) * double(p.M) + (p.scratch == Scratch::a ? 1.0 : 0.0);
  return double(kConvBatch) * rows * double(p.N) * double(p.K);
}

// The products of one row of the table on the tasks Conv2d uses (sorix::kernels::gemm_serial and
// gemm_serial_resume inside each task), the scratch operand in a buffer of the thread's own.
// a: the weights (W, or W^T [K, C_out] for a transposed forward); b: the images' B operands (the
// gradient for the weight gradient); c: the outputs (forward) or the chunk partials (weight
// gradient).
void conv_layer_products(const ConvProduct& p, const float* a, const float* b, float* c) {
  const std::size_t chunk = sorix::parallel::kBatchChunk;
  const std::size_t tasks = p.scratch == Scratch::a ? kConvBatch / chunk * p.blocks : kConvBatch;
  sorix::parallel::parallel_for(tasks, 1, [&](std::size_t t0, std::size_t t1) {
    thread_local std::vector<float> scratch;
    thread_local std::vector<std::size_t> gathered_rows, gathered_ks;
    // The padded image: C planes of (side + 2)^2 <= 4 * P values for P >= 4 (P = the positions).
    const std::size_t padded = p.K / 9 * 4 * (p.direct ? p.N : p.M) + sorix::kernels::kDirectConvSlack;
    const std::size_t need = p.scratch == Scratch::a                ? (p.M + 1) * p.K
                             : p.direct                             ? padded
                             : p.transposed                         ? padded + p.M * p.N
                             : p.scratch == Scratch::b              ? p.K * p.N + p.M * p.N
                                                                    : p.M * p.N;
    if (scratch.size() < need) scratch.resize(need, 0.02f);
    for (std::size_t t = t0; t < t1; ++t) {
      if (p.scratch == Scratch::a) {  // C = chunk t / blocks's partial for block t % blocks
        const std::size_t rows = p.M + (t % p.blocks == p.blocks - 1 ? 1 : 0);
        float* partial = c + t * (p.M + 1) * p.N;
        for (std::size_t n = t / p.blocks * chunk, i = 0; i < chunk; ++i, ++n) {
          const float* gn = b + n * p.N * p.K;  // [N, K]: op(B) is its transpose
          if (i == 0) {
            sorix::kernels::gemm_serial<float>(false, true, rows, p.N, p.K, 1.0f, scratch.data(), p.K, gn, p.K, 0.0f,
                                               partial, p.N);
          } else {
            sorix::kernels::gemm_serial_resume<float>(false, true, rows, p.N, p.K, scratch.data(), p.K, gn, p.K,
                                                      partial, p.N);
          }
        }
        continue;
      }
      if (p.direct || p.transposed) {  // image t (its first P values of b, side sqrt(P)) padded by 1 in the buffer
        const std::size_t P = p.direct ? p.N : p.M, OC = p.direct ? p.M : p.N;
        const std::size_t side = static_cast<std::size_t>(std::lround(std::sqrt(double(P)))), C = p.K / 9;
        const std::size_t PW = side + 2, plane = PW * PW;
        float* xp = scratch.data();
        for (std::size_t ch = 0; ch < C; ++ch)
          sorix::kernels::pad_plane(b + t * p.K * P + ch * P, side, side, 1, 1, PW, PW, xp + ch * plane);
        float* out = c + t * P * OC;
        if (p.direct) {
          sorix::kernels::ConvGeometry g{1, C, side, side, 3, 3, 1, 1, 1, 1, 1, 1, side, side};
          sorix::kernels::active().conv_direct_f32(xp, PW, plane, C, g, a, a, OC, out);
          continue;
        }
        // y_n^T [P, C_out] = cols_n^T W^T from the padded planes in place, bias rows first, copied out
        std::vector<std::size_t>& rows = gathered_rows, &ks = gathered_ks;
        rows.resize(P);
        ks.resize(p.K);
        for (std::size_t q = 0; q < P; ++q) rows[q] = q / side * PW + q % side;
        for (std::size_t k = 0; k < p.K; ++k) ks[k] = k / 9 * plane + k % 9 / 3 * PW + k % 3;
        float* yt = xp + C * plane + sorix::kernels::kDirectConvSlack;
        for (std::size_t q = 0; q < P; ++q) std::fill(yt + q * OC, yt + (q + 1) * OC, 0.5f);
        sorix::kernels::gemm_gathered_serial<float>(false, P, OC, p.K, xp, rows.data(), ks.data(), a, OC, 1.0f, yt, OC);
        sorix::kernels::active().transpose_f32(yt, OC, out, P, P, OC);
        continue;
      }
      const float* bn = p.scratch == Scratch::b ? scratch.data() : b + t * p.K * p.N;
      float* cn = p.scratch == Scratch::c ? scratch.data() : c + t * p.M * p.N;
      sorix::kernels::gemm_serial<float>(p.ta, p.tb, p.M, p.N, p.K, 1.0f, a, p.ta ? p.M : p.K, bn, p.N,
                                         p.scratch == Scratch::b ? 1.0f : 0.0f, cn, p.N);
    }
  }, 0);
}

void conv_products(const std::string& cap, int reps, int threads) {
  const auto& table = sorix::kernels::active();
  const std::vector<ConvProduct> products = conv_products_at(threads);
  std::vector<std::vector<float>> a, b, c;
  for (const ConvProduct& p : products) {
    a.emplace_back(p.M * p.K, 0.01f);  // the weights (forward, columns' gradient)
    b.emplace_back(kConvBatch * p.K * p.N, 0.02f);
    c.emplace_back(kConvBatch * p.blocks * (p.M + 1) * p.N, 0.0f);
  }
  // Each product is paired with a probe run just before it: its share of the peak is taken rep by
  // rep against that probe (the machine's speed drifts over seconds), and the table gives the
  // medians of the times and of those shares.
  const std::size_t count = std::size(products);
  std::vector<std::vector<double>> times(count), shares(count);
  std::vector<double> peaks, total_shares;
  volatile double sink = 0;
  for (int r = 0; r < reps; ++r) {
    double rep_time = 0, rep_fma = 0, rep_peak = 0;
    for (std::size_t i = 0; i < count; ++i) {
      const ConvProduct& p = products[i];
      auto t0 = Clock::now();
      sink = sink + table.fma_probe(200000);
      const double peak = 12.0 * double(table.probe_lanes) * 200000.0 / seconds_since(t0) * threads;
      t0 = Clock::now();
      conv_layer_products(p, a[i].data(), b[i].data(), c[i].data());
      const double t = seconds_since(t0);
      const double fma = conv_fma(p);
      times[i].push_back(t);
      shares[i].push_back(fma / t / peak);
      peaks.push_back(peak);
      rep_time += t;
      rep_fma += fma;
      rep_peak += peak * t;  // the peak weighted by the time it stands for
    }
    total_shares.push_back(rep_fma / rep_time / (rep_peak / rep_time));
  }
  double total_fma = 0, total_time = 0;
  for (std::size_t i = 0; i < count; ++i) {
    const ConvProduct& p = products[i];
    const double fma = conv_fma(p), t = median(times[i]);
    total_fma += fma;
    total_time += t;
    char shape[40];
    const std::size_t rows = p.M + (p.scratch == Scratch::a && p.blocks == 1 ? 1 : 0);  // the ones row
    if (p.blocks > 1) std::snprintf(shape, sizeof shape, "%zux%zux%zu x %zu x %zu", p.M, p.N, p.K, kConvBatch, p.blocks);
    else
      std::snprintf(shape, sizeof shape, "%s%zux%zux%zu x %zu", p.direct ? "D " : p.transposed ? "T " : "", rows, p.N, p.K,
                    kConvBatch);
    std::printf("%-6s %-22s %20s %10.1f %11.2f %7.0f%%\n", cap.c_str(), p.what, shape, t * 1e6, fma / t / 1e9,
                100.0 * median(shares[i]));
  }
  std::printf("%-6s %-22s %20s %10.1f %11.2f %7.0f%%   (peak %.2f GFMA/s)\n", cap.c_str(), "all five", "",
              total_time * 1e6, total_fma / total_time / 1e9, 100.0 * median(total_shares), median(peaks) / 1e9);
}

// The CNN's second convolution (32 -> 64 channels of 14 x 14, batch 128) as nn::Conv2d runs it:
// Winograd's F(2x2, 3x3) (docs/architecture.md), whose plane transforms are timed with its
// products. Each pass is timed whole against a probe run just before it; two shares of the peak:
// the multiply-adds of Winograd's 16 products per image, and those of the im2col product it
// replaces (64 x 196 x 288 per image and pass; above 100% means faster than that product at peak).
void conv2_layer(const std::string& cap, int reps, int threads) {
  const auto& table = sorix::kernels::active();
  sorix::manual_seed(1);
  sorix::nn::Conv2d conv(sorix::nn::Conv2dOptions(32, 64, 3).padding(1));
  const sorix::Tensor x = sorix::randn({std::int64_t(kConvBatch), 32, 14, 14}).requires_grad_(true);
  const sorix::Tensor gy = sorix::randn({std::int64_t(kConvBatch), 64, 14, 14});
  const double n = double(kConvBatch), tiles = 7.0 * 7.0, im2col = 64.0 * 196.0 * 288.0 * n;
  const double forward = 16.0 * 64.0 * 32.0 * tiles * n;  // the input gradient's products: the same count
  const double weights = (16.0 * 64.0 * 32.0 + 64.0) * tiles * n;  // 32 channels; the bias column at xi = 5 only
  std::vector<double> times[2], winograd_share[2], im2col_share[2];
  volatile double sink = 0;
  for (int r = 0; r < reps; ++r) {
    for (int pass = 0; pass < 2; ++pass) {
      auto t0 = Clock::now();
      sink = sink + table.fma_probe(200000);
      const double peak = 12.0 * double(table.probe_lanes) * 200000.0 / seconds_since(t0) * threads;
      double t = 0;
      if (pass == 0) {
        sorix::NoGradGuard no_grad;
        t0 = Clock::now();
        const sorix::Tensor y = conv(x);
        t = seconds_since(t0);
      } else {
        const sorix::Tensor y = conv(x);
        t0 = Clock::now();
        const auto g = sorix::autograd::grad({y}, {x, conv.weight, conv.bias}, {gy});
        t = seconds_since(t0);
      }
      const double fma = pass == 0 ? forward : forward + weights;
      times[pass].push_back(t);
      winograd_share[pass].push_back(fma / t / peak);
      im2col_share[pass].push_back((pass == 0 ? im2col : 2 * im2col) / t / peak);
    }
  }
  const char* what[2] = {"conv2 forward", "conv2 dx, dW, db"};
  for (int pass = 0; pass < 2; ++pass)
    std::printf("%-6s %-18s %10.1f %16.0f%% %16.0f%%\n", cap.c_str(), what[pass], median(times[pass]) * 1e6,
                100.0 * median(winograd_share[pass]), 100.0 * median(im2col_share[pass]));
}

}  // namespace

int main(int argc, char** argv) try {
  int reps = 21, threads = 1;
  std::vector<std::string> caps = sorix::available_cpu_capabilities();
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string f = argv[i], v = argv[i + 1];
    if (f == "--reps") reps = std::max(1, std::stoi(v));
    else if (f == "--threads") threads = std::max(1, std::stoi(v));
    else if (f == "--capabilities") caps = sorix::examples::split_list(v);
    else {
      std::fprintf(stderr, "usage: bench_products [--reps 21] [--threads 1] [--capabilities scalar,avx2]\n");
      return 2;
    }
  }
  sorix::parallel::set_num_threads(threads);
  std::printf("The training products (batch 128) against the core's fma peak on each path; %d thread(s), medians of %d\n",
              threads, reps);
  std::printf("%-6s %-22s %16s %10s %11s %8s\n", "cpu", "product", "M x N x K", "time us", "GFMA/s", "% peak");
  for (const std::string& cap : caps) {
    sorix::set_cpu_capability(cap);
    const auto& table = sorix::kernels::active();
    // Operands, filled with values that keep every partial sum finite.
    std::vector<std::vector<float>> a, b, c;
    for (const Product& p : kProducts) {
      a.emplace_back(p.M * p.K, 0.01f);
      b.emplace_back(p.K * p.N, 0.02f);
      c.emplace_back(p.M * p.N, 0.0f);
    }
    const bool slow = cap == "scalar";
    const std::size_t probe_iters = slow ? 20000 : 200000;
    const int inner = slow ? 1 : 10;
    std::vector<double> peak;
    std::vector<std::vector<double>> times(std::size(kProducts));
    volatile double sink = 0;
    for (int r = 0; r < reps; ++r) {
      auto t0 = Clock::now();
      sink = sink + table.fma_probe(probe_iters);
      peak.push_back(12.0 * double(table.probe_lanes) * double(probe_iters) / seconds_since(t0));
      for (std::size_t i = 0; i < std::size(kProducts); ++i) {
        const Product& p = kProducts[i];
        t0 = Clock::now();
        for (int k = 0; k < inner; ++k)
          sorix::kernels::gemm<float>(p.ta, p.tb, p.M, p.N, p.K, 1.0f, a[i].data(), p.ta ? p.M : p.K, b[i].data(),
                                      p.tb ? p.K : p.N, 0.0f, c[i].data(), p.N);
        times[i].push_back(seconds_since(t0) / inner);
      }
    }
    const double peak_rate = median(peak) * threads;
    double total_fma = 0, total_time = 0;
    for (std::size_t i = 0; i < std::size(kProducts); ++i) {
      const Product& p = kProducts[i];
      const double fma = double(p.M) * double(p.N) * double(p.K), t = median(times[i]);
      total_fma += fma;
      total_time += t;
      char shape[32];
      std::snprintf(shape, sizeof shape, "%zux%zux%zu", p.M, p.N, p.K);
      std::printf("%-6s %-22s %16s %10.1f %11.2f %7.0f%%\n", cap.c_str(), p.what, shape, t * 1e6, fma / t / 1e9,
                  100.0 * fma / t / peak_rate);
    }
    std::printf("%-6s %-22s %16s %10.1f %11.2f %7.0f%%   (peak %.2f GFMA/s)\n", cap.c_str(), "all eight", "", total_time * 1e6,
                total_fma / total_time / 1e9, 100.0 * total_fma / total_time / peak_rate, peak_rate / 1e9);
    std::fflush(stdout);
  }
  std::printf("\nThe CNN's convolution products (batch 128) against the same peak; %d thread(s), medians of %d\n",
              threads, reps);
  std::printf("%-6s %-22s %20s %10s %11s %8s\n", "cpu", "product", "M x N x K", "time us", "GFMA/s", "% peak");
  for (const std::string& cap : caps) {
    if (cap == "scalar" && caps.size() > 1) continue;  // seconds per product there
    sorix::set_cpu_capability(cap);
    conv_products(cap, reps, threads);
    std::fflush(stdout);
  }
  std::printf("\nThe CNN's second convolution as Conv2d runs it (Winograd: transforms and products timed together,\n"
              "batch 128) against the same peak; %d thread(s), medians of %d\n", threads, reps);
  std::printf("%-6s %-18s %10s %17s %17s\n", "cpu", "pass", "time us", "Winograd's FMA", "im2col-equiv.");
  for (const std::string& cap : caps) {
    if (cap == "scalar" && caps.size() > 1) continue;
    sorix::set_cpu_capability(cap);
    conv2_layer(cap, reps, threads);
    std::fflush(stdout);
  }
  std::printf("\nThe batch tree's cost: the three weight-gradient products as the tree (chains of %zu rows) against\n"
              "one chain over the batch, and the extra time against one training step; %d thread(s), medians of %d\n",
              sorix::parallel::kBatchChunk, threads, reps);
  std::printf("%-6s %6s %14s %14s %12s %12s %10s\n", "cpu", "batch", "one chain us", "tree us", "extra us", "step us",
              "of step");
  for (const std::string& cap : caps) {
    if (cap == "scalar" && caps.size() > 1) continue;  // minutes per step there; the vector paths are the question
    sorix::set_cpu_capability(cap);
    batch_tree_cost(cap, reps);
    std::fflush(stdout);
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_products: %s\n", e.what());
  return 1;
}
