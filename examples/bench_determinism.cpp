// What the determinism guarantee costs: fixed-chunk reductions and fixed GEMM blocks
// (parallel::set_deterministic(true), the default) against the fastest non-deterministic
// variants (TBB's plain parallel_reduce with the auto partitioner; one OpenBLAS call on its own
// threads for the products OpenBLAS computes), on a large sum and on the Fashion-MNIST model's
// training step. sorix's own float32 product kernel is deterministic under any split and the
// fastest here, so both modes use it. Prints a table of medians and the cost in percent.
//
//   bench_determinism [--threads 1,2] [--reps 15]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <sorix/sorix.hpp>

#include "examples/support/fashion_model.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double median(std::vector<double> t) {
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// Medians of `reps` timings of f in deterministic mode and of f in the fastest mode, the two
// interleaved repetition by repetition so that the machine's drift (other load, frequency, memory
// placement) falls on both alike. After one warm-up call of each.
template <class F>
std::pair<double, double> interleaved_medians(int reps, F&& f) {
  std::vector<double> det, fast;
  for (int i = -1; i < reps; ++i) {
    for (int mode = 0; mode < 2; ++mode) {
      sorix::parallel::set_deterministic(mode == 0);
      const auto a = Clock::now();
      f(mode);
      const double s = std::chrono::duration<double>(Clock::now() - a).count();
      if (i >= 0) (mode == 0 ? det : fast).push_back(s);
    }
  }
  sorix::parallel::set_deterministic(true);
  return {median(det), median(fast)};
}

std::vector<int> parse_list(const std::string& s) {
  std::vector<int> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(std::stoi(item));
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> threads{1, sorix::parallel::hardware_threads()};
  int reps = 15;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string f = argv[i];
    if (f == "--threads") threads = parse_list(argv[i + 1]);
    else if (f == "--reps") reps = std::stoi(argv[i + 1]);
    else {
      std::fprintf(stderr, "usage: bench_determinism [--threads 1,2] [--reps 15]\n");
      return 2;
    }
  }
  threads.erase(std::unique(threads.begin(), threads.end()), threads.end());

  std::printf("Cost of determinism (medians of %d interleaved runs; cost = deterministic / fastest - 1)\n\n", reps);
  std::printf("%-30s %7s %14s %14s %8s\n", "workload", "threads", "deterministic", "fastest", "cost");
  auto row = [](const std::string& what, int t, double det, double fast, const char* unit, double scale) {
    std::printf("%-30s %7d %11.3f %-2s %11.3f %-2s %+7.1f%%\n", what.c_str(), t, det * scale, unit, fast * scale, unit,
                100.0 * (det / fast - 1.0));
    std::fflush(stdout);
  };

  for (std::int64_t n : {1000000LL, 10000000LL, 64000000LL}) {
    sorix::Generator g(1);
    sorix::Tensor x = sorix::rand({n}, sorix::float32, &g);
    for (int t : threads) {
      sorix::parallel::set_num_threads(t);
      const auto [det, fast] = interleaved_medians(reps, [&](int) { (void)x.sum(); });
      row("sum of " + std::to_string(n) + " float32", t, det, fast, "ms", 1e3);
    }
  }

  auto data = sorix::examples::synthetic_fashion(4096, 3);
  for (std::int64_t batch : {128LL, 512LL}) {
    for (int t : threads) {
      sorix::parallel::set_num_threads(t);
      // One model per mode, both from the same seed, stepping on the same batch.
      struct Run {
        sorix::nn::Sequential model = sorix::examples::make_fashion_model();
        sorix::optim::RMSprop opt{model.parameters(), sorix::optim::RMSpropOptions(1e-3).alpha(0.99)};
      };
      sorix::manual_seed(0);
      Run runs[2];
      sorix::nn::CrossEntropyLoss loss_fn;
      sorix::data::DataLoader loader(data, sorix::data::DataLoaderOptions().batch_size(batch).shuffle(true).seed(1));
      sorix::data::Batch b = *loader.begin();
      const auto [det, fast] = interleaved_medians(reps * 4, [&](int mode) {
        Run& r = runs[mode];
        sorix::Tensor loss = loss_fn(r.model(b.data), b.target);
        r.opt.zero_grad();
        loss.backward();
        r.opt.step();
      });
      row("training step, batch " + std::to_string(batch), t, det, fast, "ms", 1e3);
    }
  }
  return 0;
}
