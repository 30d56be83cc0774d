// Layer benchmark (not a test): one training step's forward and backward of single layers
// (convolutions of common shapes, normalisations, pooling, activations) in sorix and in PyTorch
// (/usr/bin/python3 with python3-torch, or $SORIX_BENCH_PYTHON), same shapes, same thread count,
// measured in the same run as the benchmark protocol (docs/benchmarks.md) asks. A map of where
// sorix stands layer by layer, beyond the models the training benchmark runs.
//
// Each time is the median over repetitions (after two warm-ups) of y = layer(x) then
// y.backward(g) with a fixed g: the input's and the parameters' gradients. "ratio" is PyTorch's
// time over sorix's (> 1: sorix is faster). The two libraries take turns, round after round
// (PyTorch's cases, then sorix's): a machine whose speed drifts for minutes at a time (a shared
// VM) moves both within a round, so each round gives a ratio; the table shows the medians over
// the rounds and the range of the rounds' ratios.
//
//   bench_layers [--threads 1,2] [--reps N] [--rounds R] [--only SUBSTRING] [--no-torch]
// Defaults: threads 1 and all hardware threads, 7 repetitions, 3 rounds.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <sorix/sorix.hpp>

#include "examples/support/cli.hpp"
#include "examples/support/python.hpp"

namespace {

using namespace sorix;
using Clock = std::chrono::steady_clock;

// One layer: its name, the kind and sizes both sides build it from, and the input's shape.
struct LayerCase {
  std::string name;
  std::string kind;                 // conv2d, conv_t2d, conv1d, batchnorm2d, layernorm, groupnorm, gelu, maxpool2d, avgpool_adaptive
  std::vector<std::int64_t> args;   // the kind's sizes (see make_layer / the Python script)
  std::vector<std::int64_t> input;  // x's shape
};

std::vector<LayerCase> layer_cases() {
  return {
      {"conv 3x3, 64 ch, 56x56, batch 8", "conv2d", {64, 64, 3, 1, 1, 1}, {8, 64, 56, 56}},
      {"conv 3x3, 128 ch, 28x28, batch 16", "conv2d", {128, 128, 3, 1, 1, 1}, {16, 128, 28, 28}},
      {"conv 3x3, 256 ch, 14x14, batch 16", "conv2d", {256, 256, 3, 1, 1, 1}, {16, 256, 14, 14}},
      {"conv 3x3, 512 ch, 7x7, batch 16", "conv2d", {512, 512, 3, 1, 1, 1}, {16, 512, 7, 7}},
      {"conv 3x3 stride 2, 64->128, 56x56, batch 8", "conv2d", {64, 128, 3, 2, 1, 1}, {8, 64, 56, 56}},
      {"conv 1x1, 256->64, 56x56, batch 8", "conv2d", {256, 64, 1, 1, 0, 1}, {8, 256, 56, 56}},
      {"conv 5x5, 32->64, 28x28, batch 32", "conv2d", {32, 64, 5, 1, 2, 1}, {32, 32, 28, 28}},
      {"conv 7x7 stride 2, 3->64, 112x112, batch 8", "conv2d", {3, 64, 7, 2, 3, 1}, {8, 3, 112, 112}},
      {"depthwise conv 3x3, 128 ch, 28x28, batch 16", "conv2d", {128, 128, 3, 1, 1, 128}, {16, 128, 28, 28}},
      {"conv 3x3, 16 ch, 32x32, batch 64", "conv2d", {16, 16, 3, 1, 1, 1}, {64, 16, 32, 32}},
      {"conv transposed 4x4 stride 2, 64->32, 28x28, batch 16", "conv_t2d", {64, 32, 4, 2, 1}, {16, 64, 28, 28}},
      {"conv1d k3, 64 ch, length 1000, batch 16", "conv1d", {64, 64, 3, 1}, {16, 64, 1000}},
      {"BatchNorm2d, 64 ch, 56x56, batch 32", "batchnorm2d", {64}, {32, 64, 56, 56}},
      {"BatchNorm2d, 256 ch, 14x14, batch 32", "batchnorm2d", {256}, {32, 256, 14, 14}},
      {"BatchNorm2d, 512 ch, 2x2, batch 32", "batchnorm2d", {512}, {32, 512, 2, 2}},
      {"LayerNorm 768, 4096 rows", "layernorm", {768}, {4096, 768}},
      {"GroupNorm 32 groups, 256 ch, 28x28, batch 8", "groupnorm", {32, 256}, {8, 256, 28, 28}},
      {"GELU, 4096 x 3072", "gelu", {}, {4096, 3072}},
      {"MaxPool2d 3 stride 2 pad 1, 64 ch, 112x112, batch 8", "maxpool2d", {3, 2, 1}, {8, 64, 112, 112}},
      {"AdaptiveAvgPool2d(1), 512 ch, 7x7, batch 32", "avgpool_adaptive", {}, {32, 512, 7, 7}},
  };
}

// The module as a function of x (its parameters kept alive by the closure).
std::function<Tensor(const Tensor&)> make_layer(const LayerCase& c) {
  const auto& a = c.args;
  if (c.kind == "conv2d") {
    auto m = std::make_shared<nn::Conv2d>(nn::Conv2dOptions(a[0], a[1], a[2]).stride(a[3]).padding(a[4]).groups(a[5]));
    return [m](const Tensor& x) { return (*m)(x); };
  }
  if (c.kind == "conv_t2d") {
    auto m = std::make_shared<nn::ConvTranspose2d>(nn::ConvTranspose2dOptions(a[0], a[1], a[2]).stride(a[3]).padding(a[4]));
    return [m](const Tensor& x) { return (*m)(x); };
  }
  if (c.kind == "conv1d") {
    auto m = std::make_shared<nn::Conv1d>(nn::Conv1dOptions(a[0], a[1], a[2]).padding(a[3]));
    return [m](const Tensor& x) { return (*m)(x); };
  }
  if (c.kind == "batchnorm2d") {
    auto m = std::make_shared<nn::BatchNorm2d>(a[0]);
    return [m](const Tensor& x) { return (*m)(x); };
  }
  if (c.kind == "layernorm") {
    auto m = std::make_shared<nn::LayerNorm>(nn::LayerNormOptions({a[0]}));
    return [m](const Tensor& x) { return (*m)(x); };
  }
  if (c.kind == "groupnorm") {
    auto m = std::make_shared<nn::GroupNorm>(nn::GroupNormOptions(a[0], a[1]));
    return [m](const Tensor& x) { return (*m)(x); };
  }
  if (c.kind == "gelu") {
    auto m = std::make_shared<nn::GELU>();
    return [m](const Tensor& x) { return (*m)(x); };
  }
  if (c.kind == "maxpool2d") {
    auto m = std::make_shared<nn::MaxPool2d>(nn::MaxPool2dOptions(a[0]).stride(a[1]).padding(a[2]));
    return [m](const Tensor& x) { return (*m)(x); };
  }
  auto m = std::make_shared<nn::AdaptiveAvgPool2d>(nn::AdaptiveAvgPool2dOptions(1));
  return [m](const Tensor& x) { return (*m)(x); };
}

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double median(std::vector<double> v) {
  if (v.empty()) return -1;
  std::sort(v.begin(), v.end());
  const std::size_t h = v.size() / 2;
  return v.size() % 2 == 1 ? v[h] : (v[h - 1] + v[h]) / 2;
}

double time_sorix(const LayerCase& c, int reps) {
  manual_seed(0);
  const auto layer = make_layer(c);
  Generator gen(1);
  Tensor x = rand(c.input, float32, &gen);
  x.requires_grad_(true);
  Tensor g;
  {
    NoGradGuard no_grad;
    g = rand(layer(x).shape(), float32, &gen);
  }
  std::vector<double> t;
  for (int r = 0; r < reps + 2; ++r) {
    const auto t0 = Clock::now();
    layer(x).backward(g);
    if (r >= 2) t.push_back(seconds_since(t0));
    x.set_grad(Tensor());  // as PyTorch's x.grad = None: no accumulation into the last one
  }
  return median(t);
}

// ---- PyTorch (subprocess) -----------------------------------------------------------------------

const char* kTorchScript = R"PY(
import sys, time, statistics
try:
    import torch
    import torch.nn as nn
except Exception as e:
    print("NO_TORCH", e, flush=True); sys.exit(0)
threads, reps = int(sys.argv[1]), int(sys.argv[2])
torch.set_num_threads(threads)
print("TORCH", torch.__version__, flush=True)
def make(kind, a):
    if kind == "conv2d": return nn.Conv2d(a[0], a[1], a[2], stride=a[3], padding=a[4], groups=a[5])
    if kind == "conv_t2d": return nn.ConvTranspose2d(a[0], a[1], a[2], stride=a[3], padding=a[4])
    if kind == "conv1d": return nn.Conv1d(a[0], a[1], a[2], padding=a[3])
    if kind == "batchnorm2d": return nn.BatchNorm2d(a[0])
    if kind == "layernorm": return nn.LayerNorm(a[0])
    if kind == "groupnorm": return nn.GroupNorm(a[0], a[1])
    if kind == "gelu": return nn.GELU()
    if kind == "maxpool2d": return nn.MaxPool2d(a[0], a[1], a[2])
    return nn.AdaptiveAvgPool2d(1)
for i, case in enumerate(sys.argv[3].split(";")):
    kind, args, shape = case.split("|")
    a = [int(v) for v in args.split(",") if v]
    torch.manual_seed(0)
    m = make(kind, a)
    x = torch.rand([int(v) for v in shape.split(",")], requires_grad=True)
    with torch.no_grad():
        g = torch.rand(m(x).shape)
    t = []
    for r in range(reps + 2):
        t0 = time.perf_counter()
        m(x).backward(g)
        if r >= 2: t.append(time.perf_counter() - t0)
        x.grad = None
    print("RESULT", i, statistics.median(t), flush=True)
)PY";

std::string joined(const std::vector<std::int64_t>& v) {
  std::ostringstream os;
  for (std::size_t i = 0; i < v.size(); ++i) os << (i ? "," : "") << v[i];
  return os.str();
}

// The script's median per case index, or an empty map (with `why`).
std::map<std::size_t, double> run_torch(const std::vector<LayerCase>& cases, int threads, int reps, std::string& why) {
  std::map<std::size_t, double> out;
  std::string spec;  // kind|args|shape;... (digits, letters, commas, '|' and '_': safe in single quotes)
  for (const auto& c : cases) spec += (spec.empty() ? "" : ";") + c.kind + "|" + joined(c.args) + "|" + joined(c.input);
  const std::string python = examples::bench_python();
  const std::string env = "OMP_NUM_THREADS=" + std::to_string(threads) + " MKL_NUM_THREADS=" + std::to_string(threads) +
                          " OPENBLAS_NUM_THREADS=1";
  const auto run = examples::run_python_script(
      kTorchScript, env, std::to_string(threads) + " " + std::to_string(reps) + " '" + spec + "'",
      [&](const std::string& tag, std::istringstream& ls) {
        if (tag == "RESULT") {
          std::size_t i;
          double s;
          if (ls >> i >> s) out[i] = s;
        } else if (tag == "NO_TORCH") {
          why = "python3-torch is not installed (install it with `make deps-bench` or `apt-get install python3-torch`)";
        } else if (tag == "TORCH") {
          std::string version;
          ls >> version;
          std::cout << "PyTorch " << version << " (" << python << "), " << threads << " thread(s)\n";
        } else {
          return false;
        }
        return true;
      });
  if (!run.why.empty()) why = run.why;
  if (out.empty() && why.empty()) why = run.status != 0 ? python + " failed: " + run.last_untagged : "no result from " + python;
  return out;
}

std::string fixed(double v, int prec) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(prec) << v;
  return os.str();
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> threads = {1, static_cast<int>(std::max(1u, std::thread::hardware_concurrency()))};
  int reps = 7, rounds = 3;
  bool torch = true;
  std::string only;
  const char* usage = "usage: bench_layers [--threads 1,2] [--reps N] [--rounds R] [--only SUBSTRING] [--no-torch]\n";
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      if (a == "--threads" && i + 1 < argc) threads = examples::parse_thread_list(argv[++i]);
      else if (a == "--reps" && i + 1 < argc) reps = examples::parse_count(a, argv[++i]);
      else if (a == "--rounds" && i + 1 < argc) rounds = examples::parse_count(a, argv[++i]);
      else if (a == "--only" && i + 1 < argc) only = argv[++i];
      else if (a == "--no-torch") torch = false;
      else throw std::invalid_argument("unknown argument '" + a + "'");
    }
  } catch (const std::exception& e) {
    std::cerr << "bench_layers: " << e.what() << "\n" << usage;
    return 2;
  }
  if (threads.size() == 2 && threads[0] == threads[1]) threads.pop_back();
  std::vector<LayerCase> cases;
  for (const auto& c : layer_cases())
    if (only.empty() || c.name.find(only) != std::string::npos) cases.push_back(c);
  std::cout << "sorix " << cpu_capability() << ", float32, forward + backward (input and parameter gradients), median of "
            << reps << " repetitions per round, " << rounds << " round(s) of PyTorch then sorix\n";
  for (int t : threads) {
    std::string why = torch ? "" : "--no-torch";
    // Per case: each round's sorix and PyTorch medians (PyTorch's missing where it gave none).
    std::vector<std::vector<double>> ours(cases.size()), theirs(cases.size()), ratios(cases.size());
    for (int r = 0; r < rounds; ++r) {
      const auto torch_round = torch && why.empty() && !cases.empty() ? run_torch(cases, t, reps, why)
                                                                      : std::map<std::size_t, double>{};
      parallel::set_num_threads(t);
      for (std::size_t i = 0; i < cases.size(); ++i) {
        const double mine = time_sorix(cases[i], reps);
        ours[i].push_back(mine);
        const auto it = torch_round.find(i);
        if (it == torch_round.end()) continue;
        theirs[i].push_back(it->second);
        ratios[i].push_back(it->second / mine);
      }
    }
    std::cout << "\n" << t << " thread(s)" << (why.empty() ? "" : " (PyTorch: " + why + ")") << "\n\n"
              << "| layer | sorix ms | PyTorch ms | ratio | rounds' ratios |\n|---|--:|--:|--:|--:|\n";
    for (std::size_t i = 0; i < cases.size(); ++i) {
      const bool paired = !ratios[i].empty();
      const auto [lo, hi] = paired ? std::minmax_element(ratios[i].begin(), ratios[i].end())
                                   : std::pair{ratios[i].end(), ratios[i].end()};
      std::cout << "| " << cases[i].name << " | " << fixed(median(ours[i]) * 1e3, 2) << " | "
                << (paired ? fixed(median(theirs[i]) * 1e3, 2) : "n/a") << " | "
                << (paired ? fixed(median(ratios[i]), 2) + "x" : "n/a") << " | "
                << (paired ? fixed(*lo, 2) + "-" + fixed(*hi, 2) + "x" : "n/a") << " |\n";
    }
  }
}
