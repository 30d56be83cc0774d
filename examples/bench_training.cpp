// The Fashion-MNIST recipe (examples/train_fashion_mnist) in sorix and, in the same run, in
// PyTorch (/usr/bin/python3, Debian's python3-torch, or $SORIX_BENCH_PYTHON) with the same model, data, batch order
// (sorix's shuffled orders are handed to PyTorch) and hyper-parameters, at each thread count:
// training time, inference time for the 10,000 test images at batch 4096, test accuracy.
// Both are pinned to the thread count under test (sorix's arena; torch.set_num_threads and
// OPENBLAS/OMP/MKL_NUM_THREADS for PyTorch).
//
// --model cnn runs the CNN of `train_fashion_mnist --model cnn` (Adam) on both sides instead.
//
//   bench_training [--model mlp|cnn] [--epochs 5] [--runs 3] [--threads 1,2] [--data /usr/share/datasets/fashion-mnist] [--no-torch]
//                  [--capabilities scalar,avx2,avx512] (default: the CPU's best)
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <sorix/sorix.hpp>

#include "examples/support/cli.hpp"

#include "examples/support/fashion_model.hpp"
#include "examples/support/python.hpp"

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

const char* kTorchScript = R"PY(
import gzip, sys, time
import numpy as np
import torch, torch.nn as nn
threads, epochs, bs, order_file, data = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
torch.set_num_threads(threads)
torch.manual_seed(0)
def idx(name):
    with gzip.open(f"{data}/{name}", "rb") as f:
        raw = f.read()
    nd = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(nd)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * nd).reshape(dims)
X = torch.from_numpy(idx("train-images-idx3-ubyte.gz").reshape(-1, 784).astype(np.float32) / 255.0)
Y = torch.from_numpy(idx("train-labels-idx1-ubyte.gz").astype(np.int64))
Xt = torch.from_numpy(idx("t10k-images-idx3-ubyte.gz").reshape(-1, 784).astype(np.float32) / 255.0)
Yt = torch.from_numpy(idx("t10k-labels-idx1-ubyte.gz").astype(np.int64))
orders = torch.from_numpy(np.fromfile(order_file, dtype=np.int64).reshape(epochs, -1))
cnn = sys.argv[6] == "cnn"
if cnn:
    model = nn.Sequential(nn.Unflatten(1, (1, 28, 28)), nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.25), nn.Linear(64 * 7 * 7, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
else:
    model = nn.Sequential(nn.Linear(784, 128, bias=False), nn.BatchNorm1d(128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(),
                          nn.Dropout(0.2), nn.Linear(64, 10))
    opt = torch.optim.RMSprop(model.parameters(), lr=1e-3, alpha=0.99)
loss_fn = nn.CrossEntropyLoss()
n = X.shape[0]
t0 = time.perf_counter()
for e in range(epochs):
    model.train()
    order = orders[e]
    for b in range(0, n, bs):
        i = order[b:b + bs]
        loss = loss_fn(model(X[i]), Y[i])
        opt.zero_grad()
        loss.backward()
        opt.step()
train = time.perf_counter() - t0
model.eval()
with torch.no_grad():
    best = 1e9
    for _ in range(5):
        t0 = time.perf_counter()
        preds = torch.cat([model(Xt[b:b + 4096]).argmax(1) for b in range(0, Xt.shape[0], 4096)])
        best = min(best, time.perf_counter() - t0)
acc = (preds == Yt).double().mean().item()
# The step's eight matrix products alone (forward, weight and input gradients; transposes are
# free views), on the same shapes and threads: a floor under any step that calls the same BLAS.
steps = epochs * ((n + bs - 1) // bs)
if cnn:  # no product floor for the CNN: its products are inside the convolutions
    print(f"{train} {best} {acc} 0 {torch.__version__}")
    sys.exit(0)
W1, W2, W3 = model[0].weight.detach(), model[3].weight.detach(), model[6].weight.detach()
xb, h1, h2 = X[:bs].clone(), torch.randn(bs, 128), torch.randn(bs, 64)
g1, g2, g3 = torch.randn(bs, 128), torch.randn(bs, 64), torch.randn(bs, 10)
def products():
    xb @ W1.t(); g1.t() @ xb
    h1 @ W2.t(); g2.t() @ h1; g2 @ W2
    h2 @ W3.t(); g3.t() @ h2; g3 @ W3
for _ in range(50):
    products()
times = []
for _ in range(9):
    t0 = time.perf_counter()
    for _ in range(200):
        products()
    times.append((time.perf_counter() - t0) / 200)
gemm = sorted(times)[4] * steps
print(f"{train} {best} {acc} {gemm} {torch.__version__}")
)PY";

struct Result {
  double train = 0, infer = 0, acc = 0;
  double products = 0;  // PyTorch only: the run's matrix products alone (see the script)
  std::string version;
  bool ok = false;
};

std::vector<int> parse_list(const std::string& s) {
  std::vector<int> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(std::stoi(item));
  return out;
}

// Trains with sorix and writes the epochs' batch orders to order_file for PyTorch.
Result run_sorix(const sorix::data::ImageDataset& train, const sorix::data::ImageDataset& test, int epochs,
                 const std::string& order_file, bool cnn) {
  sorix::manual_seed(0);
  sorix::nn::Sequential model = cnn ? sorix::examples::make_fashion_cnn() : sorix::examples::make_fashion_model();
  std::unique_ptr<sorix::optim::Optimizer> optimizer;
  if (cnn) optimizer = std::make_unique<sorix::optim::Adam>(model.parameters(), sorix::optim::AdamOptions(1e-3));
  else optimizer = std::make_unique<sorix::optim::RMSprop>(model.parameters(), sorix::optim::RMSpropOptions(1e-3).alpha(0.99));
  sorix::optim::Optimizer& opt = *optimizer;
  sorix::nn::CrossEntropyLoss loss_fn;
  sorix::data::DataLoader loader(train, sorix::data::DataLoaderOptions().batch_size(128).shuffle(true).seed(0));
  {  // the loader draws one randperm per epoch from its generator: replay them for PyTorch
    sorix::Generator replay = loader.generator();
    std::ofstream out(order_file, std::ios::binary);
    for (int e = 0; e < epochs; ++e) {
      sorix::Tensor perm = sorix::randperm(train.size(), sorix::int64, &replay);
      out.write(reinterpret_cast<const char*>(perm.data_ptr<std::int64_t>()),
                static_cast<std::streamsize>(perm.numel() * 8));
    }
  }
  Result r;
  const auto t0 = Clock::now();
  model.train();
  for (int e = 0; e < epochs; ++e) {
    for (const auto& batch : loader) {
      sorix::Tensor loss = loss_fn(model(batch.data), batch.target);
      opt.zero_grad();
      loss.backward();
      opt.step();
    }
  }
  r.train = since(t0);
  model.eval();
  sorix::NoGradGuard no_grad;
  const sorix::Tensor xt = test.data();  // converted once, before the timing
  const sorix::Tensor& yt = test.targets();
  r.infer = 1e9;
  double correct = 0;
  for (int rep = 0; rep < 5; ++rep) {
    const auto t1 = Clock::now();
    correct = 0;
    for (std::int64_t b = 0; b < xt.size(0); b += 4096) {
      const std::int64_t e = std::min<std::int64_t>(xt.size(0), b + 4096);
      correct += model(xt.slice(0, b, e)).argmax(1).eq(yt.slice(0, b, e)).sum().item<double>();
    }
    r.infer = std::min(r.infer, since(t1));
  }
  r.acc = correct / static_cast<double>(xt.size(0));
  r.ok = true;
  return r;
}

Result run_torch(int threads, int epochs, const std::string& order_file, const std::string& data, bool cnn) {
  Result r;
  const std::string script = std::filesystem::temp_directory_path() / ("sorix_bench_training_" + std::to_string(::getpid()) + ".py");
  std::ofstream(script) << kTorchScript;
  const std::string t = std::to_string(threads);
  const std::string cmd = "OPENBLAS_NUM_THREADS=" + t + " OMP_NUM_THREADS=" + t + " MKL_NUM_THREADS=" + t +
                          " " + sorix::examples::bench_python() + " " + script + " " + t + " " + std::to_string(epochs) + " 128 " + order_file +
                          " " + data + (cnn ? " cnn" : " mlp") + " 2>/dev/null";
  if (std::FILE* p = ::popen(cmd.c_str(), "r")) {
    char version[64] = {};
    r.ok = std::fscanf(p, "%lf %lf %lf %lf %63s", &r.train, &r.infer, &r.acc, &r.products, version) == 5;
    r.version = version;
    r.ok = ::pclose(p) == 0 && r.ok;
  }
  std::filesystem::remove(script);
  return r;
}

// Medians of each timing over runs (accuracy and version from the first run: every run of a side
// computes the same thing); not ok if any run failed.
Result median_result(const std::vector<Result>& runs) {
  auto median_of = [&](double Result::*field) {
    std::vector<double> v;
    for (const Result& r : runs) v.push_back(r.*field);
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  Result m = runs.front();
  m.train = median_of(&Result::train);
  m.infer = median_of(&Result::infer);
  m.products = median_of(&Result::products);
  for (const Result& r : runs) m.ok = m.ok && r.ok;
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  int epochs = 5;
  std::vector<int> threads{1, sorix::parallel::hardware_threads()};
  std::string data = "/usr/share/datasets/fashion-mnist";
  bool torch = true;
  int runs = 3;
  bool cnn = false;
  // The CPU's best capability unless --capabilities names others (the scalar path's products take
  // ~30x longer, so it is measured only when asked for).
  std::vector<std::string> capabilities = {sorix::cpu_capability()};
  for (int i = 1; i < argc; ++i) {
    const std::string f = argv[i];
    if (f == "--no-torch") { torch = false; continue; }
    if (i + 1 >= argc) { std::fprintf(stderr, "missing value after %s\n", f.c_str()); return 2; }
    const std::string v = argv[++i];
    if (f == "--model" && (v == "cnn" || v == "mlp")) cnn = v == "cnn";
    else if (f == "--epochs") epochs = std::stoi(v);
    else if (f == "--runs") runs = std::max(1, std::stoi(v));
    else if (f == "--threads") threads = parse_list(v);
    else if (f == "--data") data = v;
    else if (f == "--capabilities") capabilities = sorix::examples::split_list(v);
    else {
      std::fprintf(stderr, "usage: bench_training [--model mlp|cnn] [--epochs 5] [--runs 3] [--threads 1,2] [--data DIR] [--no-torch]\n"
                           "                      [--capabilities scalar,avx2,avx512]\n");
      return 2;
    }
  }
  for (const auto& cap : capabilities) {
    try {
      sorix::set_cpu_capability(cap);
    } catch (const std::invalid_argument& e) {
      std::fprintf(stderr, "bench_training: %s\n", e.what());
      return 2;
    }
  }
  if (!std::filesystem::exists(data + "/train-images-idx3-ubyte.gz")) {
    std::fprintf(stderr, "bench_training: no Fashion-MNIST in %s (sudo apt-get install dataset-fashion-mnist)\n",
                 data.c_str());
    return 1;
  }
  if (torch && sorix::examples::bench_python() == "/usr/bin/python3" && !std::filesystem::exists("/usr/bin/python3")) {
    torch = false;
  }
  auto train = sorix::data::load_fashion_mnist(data, true);
  auto test = sorix::data::load_fashion_mnist(data, false);
  const std::string order_file = std::filesystem::temp_directory_path() / ("sorix_orders_" + std::to_string(::getpid()));

  std::printf("Fashion-MNIST %s, %d epochs, batch 128, %s; inference: 10,000 images at batch 4096\n"
              "times: medians of %d runs of each side, the two sides alternating run by run\n",
              cnn ? "CNN (conv-bn-relu-pool x2, dropout, linear)" : "recipe (MLP)", epochs,
              cnn ? "Adam(1e-3)" : "RMSprop(1e-3, alpha 0.99)", runs);
  std::printf("%-6s %7s | %10s %10s %6s | %10s %10s %6s %12s | %11s %11s %8s\n", "cpu", "threads", "sorix train",
              "infer", "acc", "torch train", "infer", "acc", "its products", "train ratio", "infer ratio", "acc diff");
  for (int t : threads) {
    sorix::parallel::set_num_threads(t);
    // Alternate the sides (PyTorch and each capability) run by run so that the machine's drift
    // during the runs falls on all of them.
    std::vector<std::vector<Result>> ours(capabilities.size());
    std::vector<Result> theirs;
    for (int r = 0; r < runs; ++r) {
      for (std::size_t c = 0; c < capabilities.size(); ++c) {
        sorix::set_cpu_capability(capabilities[c]);
        ours[c].push_back(run_sorix(train, test, epochs, order_file, cnn));
      }
      if (torch) theirs.push_back(run_torch(t, epochs, order_file, data, cnn));
    }
    const Result p = theirs.empty() ? Result{} : median_result(theirs);
    for (std::size_t c = 0; c < capabilities.size(); ++c) {
    const Result s = median_result(ours[c]);
    const char* cap = capabilities[c].c_str();
    if (p.ok) {
      std::printf("%-6s %7d | %9.2fs %8.1fms %6.4f | %9.2fs %8.1fms %6.4f %6.2fs %3.0f%% | %10.2fx %10.2fx %+8.4f\n",
                  cap, t, s.train, s.infer * 1e3, s.acc, p.train, p.infer * 1e3, p.acc, p.products,
                  100.0 * p.products / p.train, p.train / s.train, p.infer / s.infer, s.acc - p.acc);
    } else {
      std::printf("%-6s %7d | %9.2fs %8.1fms %6.4f | %10s %10s %6s |  (%s)\n", cap, t, s.train, s.infer * 1e3, s.acc,
                  "n/a", "n/a", "n/a", torch ? "PyTorch failed or is missing: make bench installs python3-torch" : "--no-torch");
    }
    std::fflush(stdout);
    }
  }
  std::filesystem::remove(order_file);
  std::printf("ratios are PyTorch time / sorix time (above 1: sorix is faster); \"its products\": PyTorch's eight\n"
              "matrix products per step alone, times the run's steps, and their share of its training time\n");
  return 0;
}
