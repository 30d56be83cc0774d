// The training model's eight matrix products (batch 128: 784 -> 128 -> 64 -> 10, forward and
// backward) on every CPU capability this machine runs, each against the core's multiply-add peak
// measured in the same run on the same path (the kernel layer's fma probe: 12 independent chains
// of one register's lanes). Repetitions interleave the probe and the products, so a change of the
// machine's clock or load falls on both; the table gives medians.
//
//   bench_products [--reps 21] [--threads 1] [--capabilities scalar,avx2,avx512]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <sorix/sorix.hpp>

#include "autograd/src/gemm.hpp"
#include "examples/support/cli.hpp"
#include "core/src/kernels/table.hpp"

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
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_products: %s\n", e.what());
  return 1;
}
