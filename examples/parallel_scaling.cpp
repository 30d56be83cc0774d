// Parallel scaling of four workloads at 1, 2, 4, ... threads up to every core: Dropout (forward
// and backward, 10^7 float32), tanh (10^7), a large sum (3.2 * 10^7) and a training step of the
// Fashion-MNIST model (batch 512, synthetic data of the real shapes). For each thread count: the
// median time, the speed-up over 1 thread, the efficiency (speed-up / threads), and whether the
// result's bits equal the 1-thread row's (they must: docs/determinism.md). Writes a CSV and an SVG
// plot of speed-up against threads with the ideal line.
//
//   parallel_scaling [--threads 1,2,4,8,16] [--reps 7] [--csv parallel_scaling.csv]
//                    [--svg parallel_scaling.svg]
// Exits non-zero if any row's bits differ from the 1-thread row.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <iomanip>
#include <sstream>
#include <string>
#include <vector>

#include <sorix/sorix.hpp>

#include "examples/support/cli.hpp"
#include "examples/support/fashion_model.hpp"
#include "examples/support/files.hpp"
#include "examples/support/svg_plot.hpp"

namespace {

using Clock = std::chrono::steady_clock;
namespace F = sorix::nn::functional;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// One workload: run() does the work once and returns its results (digested outside the timing).
struct Workload {
  std::string name;
  std::function<std::vector<sorix::Tensor>()> run;
};

std::string digest(const std::vector<sorix::Tensor>& results) {
  std::string d;
  for (const auto& t : results) d += sorix::sha256_hex(t);
  return d;
}

struct Row {
  std::string workload;
  int threads;
  double seconds, speedup, efficiency;
  bool identical;
};

std::vector<int> default_threads() {
  const int hw = sorix::parallel::hardware_threads();
  std::vector<int> t;
  for (int n = 1; n < hw; n *= 2) t.push_back(n);
  t.push_back(hw);
  return t;
}

}  // namespace

int main(int argc, char** argv) try {
  std::vector<int> threads = default_threads();
  int reps = 7;
  std::string csv_path = "parallel_scaling.csv", svg_path = "parallel_scaling.svg";
  for (int i = 1; i < argc; ++i) {
    const std::string f = argv[i];
    if (i + 1 >= argc) throw std::invalid_argument("missing value after " + f);
    const std::string v = argv[++i];
    if (f == "--threads") threads = sorix::examples::parse_thread_list(v);
    else if (f == "--reps") reps = std::max(1, std::stoi(v));
    else if (f == "--csv") csv_path = v;
    else if (f == "--svg") svg_path = v;
    else throw std::invalid_argument("unknown flag " + f +
                                     " (usage: parallel_scaling [--threads 1,2,4] [--reps 7] [--csv F] [--svg F])");
  }
  if (threads.front() != 1) threads.insert(threads.begin(), 1);  // speed-ups are against 1 thread

  sorix::manual_seed(1);
  const sorix::Tensor x = sorix::rand({10000000}).requires_grad_(true);
  const sorix::Tensor g = sorix::rand({10000000});
  const sorix::Tensor big = sorix::randn({32000000});
  const sorix::data::TensorDataset data = sorix::examples::synthetic_fashion(4096, 7);

  std::vector<Workload> workloads = {
      {"dropout fwd+bwd 1e7",
       [&] {
         sorix::Generator gen(3);
         sorix::Tensor y = F::dropout(x, 0.5, true, &gen);
         sorix::Tensor gx = sorix::autograd::grad({y}, {x}, {g})[0];
         return std::vector<sorix::Tensor>{y, gx};
       }},
      {"tanh 1e7", [&] { return std::vector<sorix::Tensor>{sorix::tanh(x.detach())}; }},
      {"sum 3.2e7", [&] { return std::vector<sorix::Tensor>{big.sum()}; }},
      {"training step b512",
       [&] {
         auto rec = sorix::examples::train_steps(data, 2, 11, 512);
         std::vector<sorix::Tensor> out;
         for (const auto& [name, t] : rec.weights) out.push_back(t);
         return out;
       }},
  };

  std::printf("parallel_scaling: %d hardware threads, CPU capability %s, medians of %d\n",
              sorix::parallel::hardware_threads(), sorix::cpu_capability().c_str(), reps);
  std::printf("(the training row times 2 steps of batch 512 with model construction, as one unit)\n");
  std::printf("%-20s %7s %11s %9s %11s %10s\n", "workload", "threads", "time ms", "speed-up", "efficiency", "bits");
  std::vector<Row> rows;
  bool all_same = true;
  for (const Workload& w : workloads) {
    std::string reference;
    double t1 = 0;
    for (int t : threads) {
      sorix::parallel::set_num_threads(t);
      std::string bits = digest(w.run());  // warm-up, and the digest of this thread count
      std::vector<double> times;
      std::vector<sorix::Tensor> last;
      for (int r = 0; r < reps; ++r) {
        const auto t0 = Clock::now();
        last = w.run();
        times.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
      }
      if (digest(last) != bits) bits = "unstable";  // a repetition changed its own result
      if (t == threads.front()) {
        reference = bits;
        t1 = median(times);
      }
      const double sec = median(times), speedup = t1 / sec;
      const bool same = bits == reference;
      all_same = all_same && same;
      rows.push_back({w.name, t, sec, speedup, speedup / t, same});
      std::printf("%-20s %7d %11.3f %8.2fx %10.0f%% %10s\n", w.name.c_str(), t, sec * 1e3, speedup,
                  100.0 * speedup / t, same ? "identical" : "DIFFER");
      std::fflush(stdout);
    }
  }

  std::ostringstream csv;
  csv << "workload,threads,seconds,speedup,efficiency,identical\n";
  for (const Row& r : rows)
    csv << r.workload << ',' << r.threads << ',' << std::setprecision(6) << r.seconds << ',' << r.speedup << ','
        << r.efficiency << ',' << (r.identical ? 1 : 0) << '\n';
  sorix::examples::write_file_atomic(csv_path, csv.str());

  const char* colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd"};
  std::vector<sorix::examples::Series> series;
  sorix::examples::Series ideal{"ideal", "#999999", {}, {}};
  for (int t : threads) ideal.x.push_back(t), ideal.y.push_back(t);
  series.push_back(ideal);
  for (std::size_t k = 0; k < workloads.size(); ++k) {
    sorix::examples::Series s{workloads[k].name, colors[k % 4], {}, {}};
    for (const Row& r : rows)
      if (r.workload == workloads[k].name) s.x.push_back(r.threads), s.y.push_back(r.speedup);
    series.push_back(s);
  }
  const std::string title = "speed-up against threads (" + sorix::cpu_capability() + ", " +
                            std::to_string(sorix::parallel::hardware_threads()) + " hardware threads)";
  sorix::examples::write_file_atomic(
      svg_path, sorix::examples::svg_document(640, 420, sorix::examples::svg_panel(title, series, 0, 0, 640, 420)));
  std::printf("wrote %s and %s\n%s\n", csv_path.c_str(), svg_path.c_str(),
              all_same ? "IDENTICAL: every thread count gives the 1-thread bits"
                       : "MISMATCH: some thread count changed the bits");
  return all_same ? 0 : 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "parallel_scaling: %s\n", e.what());
  return 2;
}
