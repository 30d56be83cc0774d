// Trains the Fashion-MNIST model for a fixed number of steps from one seed at several thread
// counts on every CPU capability this machine runs (sorix/core/cpu.hpp) — first in this process
// (a fresh task arena per count), then each in its own process (SORIX_CPU_CAPABILITY set for it) —
// and prints SHA-256 digests of the final weights, the loss curve, the last gradients and the
// optimizer state. Exits non-zero if any row differs from the first, or from --expect.
//
//   determinism_check [--steps 20] [--threads 1,2,3,4,8,16,64] [--seed 0] [--batch-size 128]
//                     [--data /usr/share/datasets/fashion-mnist] [--no-processes]
//                     [--capabilities scalar,avx2,avx512] [--expect WEIGHTS_DIGEST]
// --expect compares with the weights digest of another run (another machine, or an emulated CPU:
// scripts/check-emulated-cpus.sh).
//
//   determinism_check --ranks 1,2,3,4 [--threads 1,2] [--steps N] ...
// trains in one process, then with nn::DistributedDataParallel at each number of ranks (local
// processes on Gloo over 127.0.0.1, a file store) times each thread count, one row each (every
// rank's digests must agree); exits non-zero on any difference from the single-process row.
// Uses the real training images when present, else a synthetic stand-in of the same shapes.
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <filesystem>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <sorix/sorix.hpp>

#include "examples/support/cli.hpp"
#include "examples/support/fashion_model.hpp"
#include "sorix/nn/distributed/process_group.hpp"

namespace {

struct Args {
  std::int64_t steps = 20;
  std::int64_t batch_size = 128;
  std::vector<int> threads{1, 2, 3, 4, 8, 16, 64};
  std::uint64_t seed = 0;
  std::string data = "/usr/share/datasets/fashion-mnist";
  bool processes = true;
  bool child = false;
  // Every capability the CPU runs, or only the one SORIX_CPU_CAPABILITY forces (checked here).
  std::vector<std::string> capabilities = std::getenv("SORIX_CPU_CAPABILITY") != nullptr
                                              ? std::vector<std::string>{sorix::cpu_capability()}
                                              : sorix::available_cpu_capabilities();
  std::string expect;
  std::vector<int> ranks;  // --ranks: the distributed mode
  // A rank of the distributed mode (started by the parent).
  bool rank_child = false;
  std::string store;
  int rank = 0, world = 1;
};

[[noreturn]] void usage(const std::string& why) {
  std::cerr << "determinism_check: " << why << "\n"
            << "usage: determinism_check [--steps N] [--threads 1,2,4] [--seed N] [--batch-size N] [--data DIR]\n"
            << "                         [--no-processes] [--capabilities scalar,avx2] [--expect DIGEST]\n";
  std::exit(2);
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string f = argv[i];
    if (f == "--no-processes") { a.processes = false; continue; }
    if (f == "--child") { a.child = true; continue; }
    if (f == "--rank-child") { a.rank_child = true; continue; }
    if (i + 1 >= argc) usage("missing value after " + f);
    const std::string v = argv[++i];
    try {
      if (f == "--steps") a.steps = std::stoll(v);
      else if (f == "--threads") a.threads = sorix::examples::parse_thread_list(v);
      else if (f == "--seed") a.seed = std::stoull(v);
      else if (f == "--batch-size") a.batch_size = std::stoll(v);
      else if (f == "--data") a.data = v;
      else if (f == "--capabilities") a.capabilities = sorix::examples::split_list(v);
      else if (f == "--expect") a.expect = v;
      else if (f == "--ranks") a.ranks = sorix::examples::parse_thread_list(v);
      else if (f == "--store") a.store = v;
      else if (f == "--rank") a.rank = std::stoi(v);
      else if (f == "--world") a.world = std::stoi(v);
      else usage("unknown flag " + f);
    } catch (const std::logic_error&) {
      usage("bad value '" + v + "' for " + f);
    }
  }
  if (a.steps < 1 || a.batch_size < 1) usage("--steps and --batch-size must be >= 1");
  return a;
}

struct Row {
  std::string weights, losses, grads, optim;
  bool operator==(const Row&) const = default;
};

std::unique_ptr<sorix::data::Dataset> dataset(const Args& a, bool& real) {
  real = std::filesystem::exists(a.data + "/train-images-idx3-ubyte.gz");
  if (real) return std::make_unique<sorix::data::ImageDataset>(sorix::data::load_fashion_mnist(a.data, true));
  return std::make_unique<sorix::data::TensorDataset>(sorix::examples::synthetic_fashion(4096, 12345));
}

Row run(const sorix::data::Dataset& ds, const Args& a, int threads, const std::string& capability) {
  sorix::set_cpu_capability(capability);
  sorix::parallel::set_num_threads(threads);
  auto rec = sorix::examples::train_steps(ds, a.steps, a.seed, a.batch_size);
  return Row{sorix::sha256_hex(rec.weights), sorix::examples::loss_digest(rec.losses), sorix::sha256_hex(rec.gradients),
             sorix::sha256_hex(rec.optimizer)};
}

Row row_of(const sorix::examples::RunRecord& rec) {
  return Row{sorix::sha256_hex(rec.weights), sorix::examples::loss_digest(rec.losses), sorix::sha256_hex(rec.gradients),
             sorix::sha256_hex(rec.optimizer)};
}

// One rank of the distributed mode: joins the group through the file store, trains, writes its row.
int rank_child(const sorix::data::Dataset& ds, const Args& a) {
  sorix::parallel::set_num_threads(a.threads.front());
  sorix::distributed::InitProcessGroupOptions o;
  o.init_method = "file://" + a.store;
  o.rank = a.rank;
  o.world_size = a.world;
  o.timeout = std::chrono::seconds(300);
  sorix::distributed::init_process_group(o);
  const Row r = row_of(sorix::examples::train_steps_distributed(ds, a.steps, a.seed, a.batch_size));
  sorix::distributed::destroy_process_group();
  std::ofstream(a.store + "/row." + std::to_string(a.rank)) << r.weights << " " << r.losses << " " << r.grads << " "
                                                              << r.optim << "\n";
  return 0;
}

// Trains at `world` ranks (local processes) with `threads` threads each; every rank's row must agree.
bool distributed_row(const Args& a, int world, int threads, Row& out) {
  namespace fs = std::filesystem;
  const fs::path store = fs::temp_directory_path() / ("sorix_determinism_" + std::to_string(::getpid()) + "_" +
                                                      std::to_string(world) + "_" + std::to_string(threads));
  fs::remove_all(store);
  fs::create_directories(store);
  const std::string self = fs::canonical("/proc/self/exe").string();
  std::vector<pid_t> pids;
  for (int r = 0; r < world; ++r) {
    std::vector<std::string> args{self,
                                  "--rank-child",
                                  "--store", store.string(),
                                  "--rank", std::to_string(r),
                                  "--world", std::to_string(world),
                                  "--threads", std::to_string(threads),
                                  "--steps", std::to_string(a.steps),
                                  "--seed", std::to_string(a.seed),
                                  "--batch-size", std::to_string(a.batch_size),
                                  "--data", a.data};
    const pid_t pid = ::fork();
    if (pid == 0) {
      std::vector<char*> argv;
      for (auto& s : args) argv.push_back(s.data());
      argv.push_back(nullptr);
      ::execv(self.c_str(), argv.data());
      ::_exit(127);
    }
    pids.push_back(pid);
  }
  bool ok = true;
  for (pid_t p : pids) {
    int status = 0;
    ::waitpid(p, &status, 0);
    ok = ok && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }
  if (!ok) {
    std::fprintf(stderr, "determinism_check: a rank failed at %d ranks, %d threads\n", world, threads);
    fs::remove_all(store);
    return false;
  }
  for (int r = 0; r < world; ++r) {
    std::ifstream f(store / ("row." + std::to_string(r)));
    Row row;
    f >> row.weights >> row.losses >> row.grads >> row.optim;
    if (r == 0) out = row;
    else if (!(row == out)) {
      std::fprintf(stderr, "determinism_check: rank %d differs from rank 0 at %d ranks\n", r, world);
      ok = false;
    }
  }
  fs::remove_all(store);
  return ok;
}

// The distributed mode: one process, then every (ranks, threads) pair; one row each.
int ranks_mode(const sorix::data::Dataset& ds, const Args& a, bool real) {
  std::printf("determinism_check: %lld steps, seed %llu, %s data, batch %lld, DistributedDataParallel on Gloo\n",
              static_cast<long long>(a.steps), static_cast<unsigned long long>(a.seed),
              real ? "Fashion-MNIST" : "synthetic", static_cast<long long>(a.batch_size));
  std::printf("%-14s %7s  %-16s %-16s %-16s %-16s\n", "mode", "threads", "weights", "loss curve", "gradients",
              "optimizer");
  std::vector<Row> rows;
  auto print = [&](const std::string& mode, int t, const Row& r) {
    std::printf("%-14s %7d  %.16s %.16s %.16s %.16s%s\n", mode.c_str(), t, r.weights.c_str(), r.losses.c_str(),
                r.grads.c_str(), r.optim.c_str(), rows.empty() || r == rows.front() ? "" : "  <-- DIFFERS");
    std::fflush(stdout);
    rows.push_back(r);
  };
  sorix::parallel::set_num_threads(a.threads.front());
  print("one process", a.threads.front(), row_of(sorix::examples::train_steps(ds, a.steps, a.seed, a.batch_size)));
  bool ok = true;
  for (int world : a.ranks) {
    for (int t : a.threads) {
      Row r;
      if (!distributed_row(a, world, t, r)) {
        ok = false;
        continue;
      }
      print(std::to_string(world) + (world == 1 ? " rank" : " ranks"), t, r);
    }
  }
  bool same = ok;
  for (const Row& r : rows) same = same && r == rows.front();
  std::printf("full weights digest: %s\n%s\n", rows.front().weights.c_str(),
              same ? "IDENTICAL: one hash for one process and every number of ranks and threads"
                   : "MISMATCH: results depend on the number of ranks or threads");
  return same ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) try {
  const Args a = parse(argc, argv);
  bool real = false;
  auto ds = dataset(a, real);
  if (a.rank_child) return rank_child(*ds, a);
  if (!a.ranks.empty()) return ranks_mode(*ds, a, real);
  if (a.child) {  // one row for the parent: "weights losses grads optim"
    const Row r = run(*ds, a, a.threads.front(), sorix::cpu_capability());
    std::printf("%s %s %s %s\n", r.weights.c_str(), r.losses.c_str(), r.grads.c_str(), r.optim.c_str());
    return 0;
  }
  std::printf("determinism_check: %lld steps, seed %llu, %s data, batch %lld\n", static_cast<long long>(a.steps),
              static_cast<unsigned long long>(a.seed), real ? "Fashion-MNIST" : "synthetic",
              static_cast<long long>(a.batch_size));
  std::printf("%-9s %-10s %7s  %-16s %-16s %-16s %-16s\n", "mode", "capability", "threads", "weights", "loss curve",
              "gradients", "optimizer");
  std::vector<Row> rows;
  auto print = [&](const char* mode, const std::string& cap, int t, const Row& r) {
    std::printf("%-9s %-10s %7d  %.16s %.16s %.16s %.16s%s\n", mode, cap.c_str(), t, r.weights.c_str(),
                r.losses.c_str(), r.grads.c_str(), r.optim.c_str(),
                rows.empty() || r == rows.front() ? "" : "  <-- DIFFERS");
    std::fflush(stdout);
    rows.push_back(r);
  };
  for (const std::string& cap : a.capabilities)
    for (int t : a.threads) print("arena", cap, t, run(*ds, a, t, cap));
  if (a.processes) {
    const std::string self = std::filesystem::canonical("/proc/self/exe").string();
    for (const std::string& cap : a.capabilities)
    for (int t : a.threads) {
      std::ostringstream cmd;
      cmd << "SORIX_CPU_CAPABILITY=" << cap << " \"" << self << "\" --child --threads " << t << " --steps " << a.steps
          << " --seed " << a.seed
          << " --batch-size " << a.batch_size
          << " --data \"" << a.data << '"';
      std::FILE* p = ::popen(cmd.str().c_str(), "r");
      if (p == nullptr) {
        std::perror("determinism_check: popen");
        return 1;
      }
      char w[80] = {}, l[80] = {}, g[80] = {}, o[80] = {};
      const int got = std::fscanf(p, "%79s %79s %79s %79s", w, l, g, o);
      const int status = ::pclose(p);
      if (got != 4 || status != 0) {
        std::fprintf(stderr, "determinism_check: child with %d threads failed (status %d)\n", t, status);
        return 1;
      }
      print("process", cap, t, Row{w, l, g, o});
    }
  }
  bool same = true;
  for (const Row& r : rows) same = same && r == rows.front();
  const bool expected = a.expect.empty() || a.expect == rows.front().weights;
  std::printf("full digests of row 1:\n  weights    %s\n  loss curve %s\n  gradients  %s\n  optimizer  %s\n",
              rows.front().weights.c_str(), rows.front().losses.c_str(), rows.front().grads.c_str(),
              rows.front().optim.c_str());
  std::printf("%s\n", same ? "IDENTICAL: one hash for every capability, thread count and process"
                           : "MISMATCH: results depend on the capability or the thread count");
  if (!expected) std::printf("MISMATCH: weights differ from --expect %s\n", a.expect.c_str());
  return same && expected ? 0 : 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "determinism_check: %s\n", e.what());
  return 1;
}
