// Dropout benchmark (not a test): sorix's fused dropout forward and backward beside two baselines
// measured in the same run, as the benchmark protocol (docs/benchmarks.md) asks:
//   * a STREAM-style copy (same sizes, same thread count, parallel through
//     sorix::parallel::parallel_for): the memory-bandwidth limit of this machine;
//   * PyTorch's torch.nn.functional.dropout (/usr/bin/python3 with python3-torch, or the interpreter
//     named by $SORIX_BENCH_PYTHON; run as a subprocess with the same sizes and thread count).
// Each number is the median of several repetitions after a warm-up. Small sizes run several
// iterations per repetition so that one repetition lasts about a millisecond or more.
//
// Byte accounting (float32):
//   forward  reads x, writes y, and with the default Bits mask also writes n/8 mask bytes;
//   backward reads g (+ n/8 mask bytes with Bits), writes gx;
//   copy     reads src, writes dst.
// Both forward and backward allocate their output (as they do in training); beyond glibc's
// 32 MiB mmap threshold that allocation is fresh memory, whose first touch costs page faults.
// The copy writes into a preallocated buffer; the "copy fresh" column allocates its destination
// each time, the same way, to show what part of the gap that is.
//
// --reuse-memory makes glibc malloc keep freed memory instead of returning it to the kernel
// (mallopt M_MMAP_MAX = 0 and a huge M_TRIM_THRESHOLD here, the same settings through
// GLIBC_TUNABLES for the PyTorch process), the way a caching allocator would: then a repeated
// forward/backward reuses already-touched pages, and the page-fault cost disappears from both.
//
//   bench_dropout [--threads 1,2] [--sizes 10000,1000000] [--reps N] [--p 0.5] [--no-torch] [--reuse-memory]
// Defaults: threads 1 and all hardware threads; sizes 10^4, 10^6, 10^7, 6.4*10^7; 15 repetitions
// (7 from 10^7 elements up).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <malloc.h>
#include <unistd.h>

#include <sorix/sorix.hpp>

#include "examples/support/cli.hpp"

#include "examples/support/python.hpp"

namespace {

using Clock = std::chrono::steady_clock;
namespace F = sorix::nn::functional;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

std::vector<long long> parse_list(const char* s) {
  std::vector<long long> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(static_cast<long long>(std::stod(item)));  // "6.4e7" works
  return out;
}

struct Options {
  std::vector<long long> threads;
  std::vector<long long> sizes = {10000, 1000000, 10000000, 64000000};
  int reps = 0;  // 0: 15, or 7 from 10^7 elements up
  double p = 0.5;
  bool torch = true;
  bool reuse_memory = false;
  std::vector<std::string> capabilities;  // empty: every one this CPU runs
};

int reps_for(const Options& o, long long n) { return o.reps > 0 ? o.reps : (n >= 10000000 ? 7 : 15); }
// Iterations per repetition: about 2*10^6 elements of work, at least one.
int iters_for(long long n) { return static_cast<int>(std::max<long long>(1, 2000000 / std::max<long long>(n, 1))); }

// ---- PyTorch baseline (subprocess) --------------------------------------------------------------

const char* kTorchScript = R"PY(
import sys, time, statistics
try:
    import torch
    import torch.nn.functional as F
except Exception as e:
    print("NO_TORCH", e, flush=True); sys.exit(0)
threads, p = int(sys.argv[1]), float(sys.argv[2])
sizes = [int(s) for s in sys.argv[3].split(",")]
reps_opt = int(sys.argv[4])
torch.set_num_threads(threads)
torch.manual_seed(0)
print("TORCH", torch.__version__, torch.get_num_threads(), flush=True)
for n in sizes:
    reps = reps_opt if reps_opt > 0 else (7 if n >= 10**7 else 15)
    iters = max(1, 2000000 // max(n, 1))
    x = torch.rand(n, requires_grad=True)
    g = torch.rand(n)
    def fwd():
        return F.dropout(x, p, training=True)
    for _ in range(2):  # warm-up
        y = fwd(); torch.autograd.grad(y, x, g); del y
    f, b, fb = [], [], []
    for _ in range(reps):
        t0 = time.perf_counter()
        ys = [fwd() for _ in range(iters)]
        t1 = time.perf_counter()
        for y in ys:
            torch.autograd.grad(y, x, g)
        t2 = time.perf_counter()
        del ys, y
        f.append((t1 - t0) / iters); b.append((t2 - t1) / iters); fb.append((t2 - t0) / iters)
    print("RESULT", n, statistics.median(f), statistics.median(fb), statistics.median(b), flush=True)
)PY";

// Largest trim threshold mallopt accepts (an int): 2 GiB, more than any buffer here.
constexpr int kHugeTrim = 0x7fffffff;

struct TorchTimes {
  double fwd = -1, fwd_bwd = -1, bwd = -1;  // seconds; < 0: not measured
};

// Runs the script for one thread count; returns times by size, or an empty map (with `why`).
std::map<long long, TorchTimes> run_torch(const Options& o, int threads, std::string& why) {
  std::map<long long, TorchTimes> out;
  std::ostringstream sizes;
  for (std::size_t i = 0; i < o.sizes.size(); ++i) sizes << (i ? "," : "") << o.sizes[i];
  const std::string python = sorix::examples::bench_python();
  // Pin every threading runtime PyTorch may use to the same count; BLAS is not involved.
  std::ostringstream env, args;
  if (o.reuse_memory) env << "GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=" << kHugeTrim << " ";
  env << "OMP_NUM_THREADS=" << threads << " MKL_NUM_THREADS=" << threads << " OPENBLAS_NUM_THREADS=1";
  args << threads << " " << o.p << " " << sizes.str() << " " << o.reps;
  const auto run = sorix::examples::run_python_script(
      kTorchScript, env.str(), args.str(), [&](const std::string& tag, std::istringstream& ls) {
        if (tag == "RESULT") {
          long long n;
          TorchTimes t;
          ls >> n >> t.fwd >> t.fwd_bwd >> t.bwd;
          out[n] = t;
        } else if (tag == "NO_TORCH") {
          why = "python3-torch is not installed (install it with `make deps-bench` or `apt-get install python3-torch`)";
        } else if (tag == "TORCH") {
          std::string version;
          ls >> version;
          if (threads == static_cast<int>(o.threads.front())) std::cout << "PyTorch " << version << " (" << python << ")\n";
        } else {
          return false;
        }
        return true;
      });
  if (!run.why.empty()) why = run.why;
  if (out.empty() && why.empty()) {
    why = run.status != 0 ? python + " failed: " + run.last_untagged : "no result from " + python;
  }
  return out;
}

// ---- sorix measurements -----------------------------------------------------------------------

struct SorixTimes {
  double copy = 0, copy_fresh = 0;
  double fwd_bits = 0, bwd_bits = 0, fb_bits = 0;
  double fwd_regen = 0, bwd_regen = 0, fb_regen = 0;
};

void copy_chunks(const float* src, float* dst, std::size_t n) {
  sorix::parallel::parallel_for(n, sorix::parallel::kChunkSize, [&](std::size_t b, std::size_t e) {
    std::memcpy(dst + b, src + b, (e - b) * sizeof(float));
  });
}

// The copies and both dropout variants are interleaved repetition by repetition, so that a change
// in the machine's load during the run affects the baseline and the op alike.
SorixTimes measure_sorix(long long n, int reps) {
  SorixTimes r;
  const int iters = iters_for(n);
  const std::size_t un = static_cast<std::size_t>(n);
  sorix::manual_seed(0);
  sorix::Tensor x = sorix::rand({n});
  x.requires_grad_(true);
  const sorix::Tensor g = sorix::rand({n});
  const float* src = x.data_ptr<float>();
  std::unique_ptr<float[]> dst(new float[un]);
  copy_chunks(src, dst.get(), un);  // warm-up (and first touch of dst)

  const sorix::nn::DropoutMask modes[2] = {sorix::nn::DropoutMask::Bits, sorix::nn::DropoutMask::Regenerate};
  auto fwd = [&](sorix::nn::DropoutMask mode) { return F::dropout(x, 0.5, true, nullptr, mode); };
  for (auto mode : modes) {
    for (int w = 0; w < 2; ++w) sorix::autograd::grad({fwd(mode)}, {x}, {g});  // warm-up
  }
  std::vector<double> tc, tcf, tf[2], tb[2], tfb[2];
  for (int rep = 0; rep < reps; ++rep) {
    // STREAM-style copy into a preallocated buffer, and into a fresh allocation each time.
    auto t0 = Clock::now();
    for (int i = 0; i < iters; ++i) copy_chunks(src, dst.get(), un);
    tc.push_back(seconds_since(t0) / iters);
    t0 = Clock::now();
    for (int i = 0; i < iters; ++i) {
      std::unique_ptr<float[]> fresh(new float[un]);
      copy_chunks(src, fresh.get(), un);
    }
    tcf.push_back(seconds_since(t0) / iters);
    for (int m = 0; m < 2; ++m) {
      std::vector<sorix::Tensor> ys;
      ys.reserve(static_cast<std::size_t>(iters));
      t0 = Clock::now();
      for (int i = 0; i < iters; ++i) ys.push_back(fwd(modes[m]));
      const double f = seconds_since(t0);
      t0 = Clock::now();
      for (const auto& y : ys) sorix::autograd::grad({y}, {x}, {g});
      const double b = seconds_since(t0);
      tf[m].push_back(f / iters);
      tb[m].push_back(b / iters);
      tfb[m].push_back((f + b) / iters);
    }
  }
  r.copy = median(tc);
  r.copy_fresh = median(tcf);
  r.fwd_bits = median(tf[0]), r.bwd_bits = median(tb[0]), r.fb_bits = median(tfb[0]);
  r.fwd_regen = median(tf[1]), r.bwd_regen = median(tb[1]), r.fb_regen = median(tfb[1]);
  return r;
}

// ---- printing --------------------------------------------------------------------------------------

std::string fmt(double v, int prec) {
  std::ostringstream os;
  os << std::fixed << std::setprecision(prec) << v;
  return os.str();
}
std::string ms(double s) { return s < 0 ? "n/a" : fmt(s * 1e3, s * 1e3 < 1 ? 4 : 2); }
std::string gbs(double bytes, double s) { return s <= 0 ? "n/a" : fmt(bytes / s / 1e9, 2); }
std::string ratio(double num, double den) { return num <= 0 || den <= 0 ? "n/a" : fmt(num / den, 1) + "x"; }
std::string pct(double part, double whole) { return part <= 0 || whole <= 0 ? "n/a" : fmt(100 * part / whole, 0) + "%"; }

void print_row(std::ostream& os, const std::vector<std::string>& cells, const std::vector<int>& widths) {
  os << "|";
  for (std::size_t i = 0; i < cells.size(); ++i) os << " " << std::setw(widths[i]) << cells[i] << " |";
  os << "\n";
}

void print_rule(std::ostream& os, const std::vector<int>& widths) {
  os << "|";
  for (int w : widths) os << std::string(static_cast<std::size_t>(w + 1), '-') << ":|";
  os << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc) o.threads = parse_list(argv[++i]);
    else if (a == "--sizes" && i + 1 < argc) o.sizes = parse_list(argv[++i]);
    else if (a == "--reps" && i + 1 < argc) o.reps = std::atoi(argv[++i]);
    else if (a == "--p" && i + 1 < argc) o.p = std::atof(argv[++i]);
    else if (a == "--no-torch") o.torch = false;
    else if (a == "--reuse-memory") o.reuse_memory = true;
    else if (a == "--capabilities" && i + 1 < argc) o.capabilities = sorix::examples::split_list(argv[++i]);
    else {
      std::cerr << "usage: bench_dropout [--threads 1,2] [--sizes 10000,1e6,1e7,6.4e7] [--reps N] [--p 0.5] "
                   "[--no-torch] [--reuse-memory] [--capabilities scalar,avx2]\n";
      return 2;
    }
  }
  if (o.reuse_memory) {
    mallopt(M_MMAP_MAX, 0);
    mallopt(M_TRIM_THRESHOLD, kHugeTrim);
  }
  const int hw = sorix::parallel::hardware_threads();
  if (o.threads.empty()) {
    o.threads = {1};
    if (hw > 1) o.threads.push_back(hw);
  }
  for (long long t : o.threads) {
    if (t < 1) {
      std::cerr << "bench_dropout: thread counts must be >= 1, got " << t << "\n";
      return 2;
    }
  }
  for (long long n : o.sizes) {
    if (n < 1) {
      std::cerr << "bench_dropout: sizes must be >= 1, got " << n << "\n";
      return 2;
    }
  }
  if (o.capabilities.empty()) o.capabilities = sorix::available_cpu_capabilities();
  for (const auto& cap : o.capabilities) {
    try {
      sorix::set_cpu_capability(cap);
    } catch (const std::invalid_argument& e) {
      std::cerr << "bench_dropout: " << e.what() << "\n";
      return 2;
    }
  }
  if (!(o.p > 0 && o.p < 1)) {
    std::cerr << "bench_dropout: --p must be in (0, 1), got " << o.p << "\n";
    return 2;
  }

  std::cout << "Dropout benchmark: float32, p = " << o.p << ", " << hw << " hardware threads; medians of "
            << (o.reps > 0 ? std::to_string(o.reps) : std::string("15 (7 from 10^7 up)"))
            << " repetitions after a warm-up; malloc: "
            << (o.reuse_memory ? "freed memory reused (--reuse-memory, both processes)"
                            : "sorix's allocation policy (core/src/memory.cpp) here, glibc defaults for PyTorch")
            << "\n";

  // PyTorch first for every thread count (its own process), then sorix.
  std::map<long long, std::map<long long, TorchTimes>> torch;
  std::string torch_why = o.torch ? "" : "--no-torch";
  if (o.torch) {
    for (long long t : o.threads) {
      std::string why;
      torch[t] = run_torch(o, static_cast<int>(t), why);
      if (torch[t].empty()) {
        torch_why = why;
        break;
      }
    }
  }
  if (!torch_why.empty()) std::cout << "PyTorch columns: n/a (" << torch_why << ")\n";

  struct Row {
    std::string cap;
    long long threads, n;
    SorixTimes s;
    TorchTimes t;
  };
  std::vector<Row> rows;
  for (const std::string& cap : o.capabilities)
  for (long long t : o.threads) {
    sorix::set_cpu_capability(cap);
    sorix::parallel::set_num_threads(static_cast<int>(t));
    for (long long n : o.sizes) {
      Row row{cap, t, n, measure_sorix(n, reps_for(o, n)), {}};
      auto it = torch.find(t);
      if (it != torch.end()) {
        auto jt = it->second.find(n);
        if (jt != it->second.end()) row.t = jt->second;
      }
      rows.push_back(row);
    }
  }

  // Bytes moved per element (float32): copy 8; forward 8 (+1/8 with Bits); backward 8 (+1/8).
  auto bytes = [](long long n, double per) { return static_cast<double>(n) * per; };
  const double kBits = 8.0 + 1.0 / 8.0, kRegen = 8.0;

  std::cout << "\nForward (training, x requires grad; Bits stores the mask, Regenerate does not)\n";
  const std::vector<int> w1 = {6, 7, 10, 9, 10, 9, 9, 5, 9, 5, 9, 9};
  print_row(std::cout,
            {"cpu", "threads", "elements", "copy GB/s", "copy fresh", "fwd ms", "Gelem/s", "GB/s", "%copy", "regen GB/s",
             "torch ms", "vs torch"},
            w1);
  print_rule(std::cout, w1);
  for (const Row& r : rows) {
    print_row(std::cout,
              {r.cap, std::to_string(r.threads), std::to_string(r.n), gbs(bytes(r.n, 8), r.s.copy),
               gbs(bytes(r.n, 8), r.s.copy_fresh), ms(r.s.fwd_bits), fmt(r.n / r.s.fwd_bits / 1e9, 3),
               gbs(bytes(r.n, kBits), r.s.fwd_bits), pct(bytes(r.n, kBits) / r.s.fwd_bits, bytes(r.n, 8) / r.s.copy),
               gbs(bytes(r.n, kRegen), r.s.fwd_regen), ms(r.t.fwd), ratio(r.t.fwd, r.s.fwd_bits)},
            w1);
  }

  std::cout << "\nBackward (autograd::grad of y with a given g) and forward+backward\n";
  const std::vector<int> w2 = {6, 7, 10, 9, 9, 5, 9, 9, 5, 9, 9, 9, 9};
  print_row(std::cout,
            {"cpu", "threads", "elements", "bits ms", "bits GB/s", "%copy", "regen ms", "regen GB/s", "%copy", "f+b ms",
             "f+b regen", "torch f+b", "vs torch"},
            w2);
  print_rule(std::cout, w2);
  for (const Row& r : rows) {
    const double copy_bw = bytes(r.n, 8) / r.s.copy;
    print_row(std::cout,
              {r.cap, std::to_string(r.threads), std::to_string(r.n), ms(r.s.bwd_bits), gbs(bytes(r.n, kBits), r.s.bwd_bits),
               pct(bytes(r.n, kBits) / r.s.bwd_bits, copy_bw), ms(r.s.bwd_regen),
               gbs(bytes(r.n, kRegen), r.s.bwd_regen), pct(bytes(r.n, kRegen) / r.s.bwd_regen, copy_bw),
               ms(r.s.fb_bits), ms(r.s.fb_regen), ms(r.t.fwd_bwd), ratio(r.t.fwd_bwd, r.s.fb_bits)},
            w2);
  }

  // Scaling: the largest thread count against 1 thread, per size.
  if (o.threads.size() > 1) {
    std::cout << "\nScaling (" << o.threads.back() << " threads vs " << o.threads.front() << ")\n";
    const std::vector<int> w3 = {6, 10, 9, 9, 9, 9};
    print_row(std::cout, {"cpu", "elements", "copy", "fwd", "bwd bits", "f+b bits"}, w3);
    print_rule(std::cout, w3);
    for (const std::string& cap : o.capabilities)
    for (long long n : o.sizes) {
      const Row* a = nullptr;
      const Row* b = nullptr;
      for (const Row& r : rows) {
        if (r.cap == cap && r.n == n && r.threads == o.threads.front()) a = &r;
        if (r.cap == cap && r.n == n && r.threads == o.threads.back()) b = &r;
      }
      if (a == nullptr || b == nullptr) continue;
      print_row(std::cout,
                {cap, std::to_string(n), ratio(a->s.copy, b->s.copy), ratio(a->s.fwd_bits, b->s.fwd_bits),
                 ratio(a->s.bwd_bits, b->s.bwd_bits), ratio(a->s.fb_bits, b->s.fb_bits)},
                w3);
    }
  }
  std::cout << "\ncpu = the CPU capability whose kernels ran (sorix::set_cpu_capability). vs torch = PyTorch time / sorix time (higher: sorix faster). %copy = sorix GB/s as a share of "
               "the copy's GB/s at the same size and threads.\n";
  return 0;
}
