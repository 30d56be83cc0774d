// Data-parallel training across processes (nn::DistributedDataParallel on Gloo over 127.0.0.1):
// 1 to 4 ranks at 1 to 3 threads give the bits of one process training on the whole batch; a
// missing peer is a clear timeout; a killed rank makes the others fail cleanly. Each rank is a
// process of the worker program (worker_main.cpp), started here with fork/exec. Timeouts only
// bound failures: nothing waits on time to pass.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "sorix/core/hash.hpp"
#include "sorix/nn/data/distributed_sampler.hpp"
#include "sorix/sorix.hpp"

namespace fs = std::filesystem;

namespace {

struct Result {
  int code = -1;  // exit status, or 128 + signal
  std::string err;
};

// A fresh directory for one test's store and outputs.
fs::path fresh_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("sorix_dist_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

// Starts one worker per argument list (threads via SORIX_NUM_THREADS, stderr to a file) and waits
// for all of them, at most `limit` (then kills them: the test fails on their codes).
std::vector<Result> run_workers(const std::vector<std::vector<std::string>>& args, int threads, const fs::path& dir,
                                std::chrono::seconds limit = std::chrono::seconds(300)) {
  std::vector<pid_t> pids;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string err = (dir / ("stderr." + std::to_string(i))).string();
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      const int fd = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) ::dup2(fd, 2);
      ::setenv("SORIX_NUM_THREADS", std::to_string(threads).c_str(), 1);
      std::vector<char*> argv;
      std::string prog = SORIX_DIST_WORKER;
      argv.push_back(prog.data());
      std::vector<std::string> copy = args[i];
      for (auto& a : copy) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(prog.c_str(), argv.data());
      ::_exit(127);
    }
    pids.push_back(pid);
  }
  std::vector<Result> out(pids.size());
  std::vector<bool> done(pids.size(), false);
  const auto deadline = std::chrono::steady_clock::now() + limit;
  std::size_t left = pids.size();
  while (left > 0) {
    for (std::size_t i = 0; i < pids.size(); ++i) {
      if (done[i]) continue;
      int status = 0;
      if (::waitpid(pids[i], &status, WNOHANG) == pids[i]) {
        done[i] = true;
        --left;
        out[i].code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
    }
    if (left > 0 && std::chrono::steady_clock::now() > deadline) {
      for (std::size_t i = 0; i < pids.size(); ++i)
        if (!done[i]) ::kill(pids[i], SIGKILL);
    }
    if (left > 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (std::size_t i = 0; i < pids.size(); ++i) {
    std::ifstream f(dir / ("stderr." + std::to_string(i)));
    std::stringstream ss;
    ss << f.rdbuf();
    out[i].err = ss.str();
  }
  return out;
}

std::string read_file(const fs::path& p) {
  std::ifstream f(p);
  std::string s;
  std::getline(f, s);
  return s;
}

// A port nobody listens on now (the kernel's pick for port 0).
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// The digest of a training run at `world` ranks (0: one process, no process group), meeting
// through a file store, or through the TCP store when tcp.
std::vector<std::string> train(int world, int threads, bool tcp = false, const std::string& mode = "train") {
  const fs::path dir = fresh_dir("train_" + std::to_string(world) + "_" + std::to_string(threads));
  const std::string store = tcp ? "tcp://127.0.0.1:" + std::to_string(free_port()) : (dir / "store").string();
  std::vector<std::vector<std::string>> args;
  const int procs = std::max(world, 1);
  for (int r = 0; r < procs; ++r) {
    args.push_back({mode, store, std::to_string(r), std::to_string(world),
                    (dir / ("out." + std::to_string(r))).string()});
  }
  const auto res = run_workers(args, threads, dir);
  std::vector<std::string> digests;
  for (int r = 0; r < procs; ++r) {
    INFO("world " << world << " threads " << threads << " rank " << r << ": " << res[static_cast<std::size_t>(r)].err);
    REQUIRE(res[static_cast<std::size_t>(r)].code == 0);
    digests.push_back(read_file(dir / ("out." + std::to_string(r))));
  }
  fs::remove_all(dir);
  return digests;
}

}  // namespace

TEST_CASE("1 to 4 ranks at 1 to 3 threads train to the single-process bits", "[distributed]") {
  // 600 samples in batches of 200 (7 chunks of 32 rows, the last one short), 6 optimizer steps, the
  // last two accumulating two batches (no_sync on the first).
  const std::string want = train(0, 1).at(0);
  REQUIRE(want.size() == 129);  // weights and losses digests
  for (int threads : {1, 2, 3}) {
    for (int world : {1, 2, 3, 4}) {
      const auto got = train(world, threads);
      for (std::size_t r = 0; r < got.size(); ++r) {
        INFO("world " << world << " threads " << threads << " rank " << r);
        CHECK(got[r] == want);
      }
    }
  }
  // The same through the TCP store (rank 0 serves it), as env:// and sorixrun use.
  for (const std::string& got : train(3, 1, true)) CHECK(got == want);
  // More ranks than the batch's 7 chunks: the last rank holds no rows and still takes part.
  for (const std::string& got : train(8, 1)) CHECK(got == want);
}

TEST_CASE("a CNN (Conv2d, BatchNorm2d, Dropout) at 1 to 4 ranks trains to the single-process bits", "[distributed]") {
  const std::string want = train(0, 1, false, "train_cnn").at(0);
  CHECK(want != train(0, 1).at(0));  // another model
  for (int world : {1, 2, 3, 4}) {
    for (const std::string& got : train(world, world == 3 ? 2 : 1, false, "train_cnn")) {
      INFO("world " << world);
      CHECK(got == want);
    }
  }
}

TEST_CASE("grouped and transposed convolutions and the other mean losses at 1 to 4 ranks give the single-process bits", "[distributed]") {
  // Grouped Conv2d and ConvTranspose2d weight and bias gradients, MSE, L1, smooth L1, Huber, BCE,
  // BCE with logits, KLDiv 'batchmean' and NLL means: all batch-tree sums.
  const std::string want = train(0, 1, false, "train_mixed").at(0);
  for (int world : {1, 2, 3, 4}) {
    for (const std::string& got : train(world, world == 3 ? 2 : 1, false, "train_mixed")) {
      INFO("world " << world);
      CHECK(got == want);
    }
  }
}

TEST_CASE("small gradient buckets (several per step, reduced during backward) give the same bits", "[distributed]") {
  // The MLP with 1 KiB buckets: each layer's weight and bias in buckets of their own, handed to the
  // communication thread as backward produces them, with SyncBatchNorm's collectives in between.
  const std::string want = train(0, 1).at(0);
  for (int world : {1, 2, 3, 4}) {
    for (const std::string& got : train(world, world == 2 ? 2 : 1, false, "train_buckets")) {
      INFO("world " << world);
      CHECK(got == want);
    }
  }
}

TEST_CASE("buckets are reduced on the communication thread while backward still runs", "[distributed]") {
  // The worker's probe layer blocks backward between the last layer's gradients and the first's
  // until the communication thread has reduced the last layer's buckets, and checks the event log:
  // without the overlap the probe could never return (its bound, 120 s, only turns that into a
  // failure). Same bits as one process, which has no probe to wait on.
  const std::string want = train(0, 1, false, "overlap").at(0);
  for (int world : {1, 2, 3}) {
    for (const std::string& got : train(world, 1, false, "overlap")) {
      INFO("world " << world);
      CHECK(got == want);
    }
  }
}

TEST_CASE("a rank killed while buckets are in flight makes the others fail cleanly", "[distributed]") {
  const fs::path dir = fresh_dir("die_backward");
  std::vector<std::vector<std::string>> args;
  for (int r = 0; r < 3; ++r) args.push_back({"die_backward", (dir / "store").string(), std::to_string(r), "3", "1"});
  const auto res = run_workers(args, 1, dir);
  CHECK(res[1].code == 128 + SIGKILL);
  for (int r : {0, 2}) {
    INFO("rank " << r << ": " << res[static_cast<std::size_t>(r)].err);
    CHECK(res[static_cast<std::size_t>(r)].code == 3);
    // Rethrown on the caller's thread, naming the rank and the collective that failed.
    CHECK_THAT(res[static_cast<std::size_t>(r)].err,
               Catch::Contains("DistributedDataParallel: rank " + std::to_string(r) + " of 3: ") &&
                   Catch::Contains("failed on rank " + std::to_string(r) + " of 3"));
  }
  fs::remove_all(dir);
}

TEST_CASE("barrier, broadcast, all_gather and all_reduce across 3 ranks", "[distributed]") {
  const fs::path dir = fresh_dir("collectives");
  std::vector<std::vector<std::string>> args;
  for (int r = 0; r < 3; ++r) args.push_back({"collectives", (dir / "store").string(), std::to_string(r), "3", "-"});
  const auto res = run_workers(args, 1, dir);
  for (const auto& r : res) {
    INFO(r.err);
    CHECK(r.code == 0);
  }
  fs::remove_all(dir);
}

TEST_CASE("a missing peer is a clear timeout", "[distributed]") {
  const fs::path dir = fresh_dir("missing");
  // Rank 0 of 2 alone; 1.5 s bounds the wait.
  const auto res = run_workers({{"missing", (dir / "store").string(), "0", "2", "1500"}}, 1, dir);
  INFO(res[0].err);
  CHECK(res[0].code == 3);
  CHECK_THAT(res[0].err, Catch::Contains("rank 0 of 2") && Catch::Contains("1500 ms"));
  fs::remove_all(dir);
}

TEST_CASE("a killed rank makes the others fail cleanly", "[distributed]") {
  const fs::path dir = fresh_dir("die");
  std::vector<std::vector<std::string>> args;
  for (int r = 0; r < 3; ++r) args.push_back({"die", (dir / "store").string(), std::to_string(r), "3", "1"});
  const auto res = run_workers(args, 1, dir);
  CHECK(res[1].code == 128 + SIGKILL);
  for (int r : {0, 2}) {
    INFO("rank " << r << ": " << res[static_cast<std::size_t>(r)].err);
    CHECK(res[static_cast<std::size_t>(r)].code == 3);
    CHECK_THAT(res[static_cast<std::size_t>(r)].err, Catch::Contains("failed on rank " + std::to_string(r) + " of 3"));
  }
  fs::remove_all(dir);
}

TEST_CASE("DistributedDataParallel refuses rows off the batch tree and different models", "[distributed]") {
  const fs::path dir = fresh_dir("misuse_rows");
  const auto rows = run_workers({{"misuse", (dir / "store").string(), "0", "2", "rows"},
                                 {"misuse", (dir / "store").string(), "1", "2", "rows"}},
                                1, dir);
  for (const auto& r : rows) {
    INFO(r.err);
    CHECK(r.code == 3);
    CHECK_THAT(r.err, Catch::Contains("rank 0 of 2 must hold rows [0, 128)"));
  }
  fs::remove_all(dir);
  const fs::path dir2 = fresh_dir("misuse_model");
  const auto model = run_workers({{"misuse", (dir2 / "store").string(), "0", "2", "model"},
                                  {"misuse", (dir2 / "store").string(), "1", "2", "model"}},
                                 1, dir2);
  for (const auto& r : model) {
    INFO(r.err);
    CHECK(r.code == 3);
    CHECK_THAT(r.err, Catch::Contains("have different parameters or buffers"));
  }
  fs::remove_all(dir2);
}

TEST_CASE("DistributedSampler gives each rank its tree node of DataLoader's batches, resumably", "[distributed]") {
  namespace data = sorix::data;
  const std::int64_t n = 1000, batch = 200;  // 5 batches of 7 chunks each
  data::TensorDataset ds(sorix::arange(0, static_cast<double>(n), 1, sorix::float32).reshape({n, 1}),
                         sorix::arange(0, static_cast<double>(n), 1, sorix::int64));
  data::DataLoader loader(ds, data::DataLoaderOptions().batch_size(batch).shuffle(true).seed(5));
  std::vector<std::vector<std::int64_t>> want;
  for (int epoch = 0; epoch < 2; ++epoch)
    for (const auto& b : loader) want.emplace_back(b.target.data_ptr<std::int64_t>(), b.target.data_ptr<std::int64_t>() + b.target.numel());
  for (int world : {1, 2, 3, 4}) {
    std::vector<data::DistributedSampler> samplers;
    for (int r = 0; r < world; ++r) samplers.emplace_back(n, data::DistributedSamplerOptions(batch).seed(5), r, world);
    std::size_t k = 0;
    for (int epoch = 0; epoch < 2; ++epoch) {
      for (auto& s : samplers) s.set_epoch(epoch);
      for (std::int64_t b = 0; b < samplers[0].batches_per_epoch(); ++b, ++k) {
        std::vector<std::int64_t> got;
        for (auto& s : samplers) {
          const auto idx = s.next();
          REQUIRE(idx.has_value());
          got.insert(got.end(), idx->data_ptr<std::int64_t>(), idx->data_ptr<std::int64_t>() + idx->numel());
        }
        INFO("world " << world << " batch " << k);
        CHECK(got == want.at(k));
      }
      for (auto& s : samplers) CHECK_FALSE(s.next().has_value());
    }
  }
  // Resuming: the state after two batches continues with the third.
  data::DistributedSampler a(n, data::DistributedSamplerOptions(batch).seed(5), 1, 3);
  a.set_epoch(1);
  a.next();
  a.next();
  const auto state = a.state_dict();
  const auto third = a.next();
  data::DistributedSampler b(n, data::DistributedSamplerOptions(batch).seed(5), 1, 3);
  b.load_state_dict(state);
  const auto resumed = b.next();
  REQUIRE(third.has_value());
  REQUIRE(resumed.has_value());
  CHECK(sorix::sha256_hex(*third) == sorix::sha256_hex(*resumed));
  // A batch with fewer chunks than ranks: one chunk each, the last ranks none.
  data::DistributedSampler last(n, data::DistributedSamplerOptions(40).shuffle(false), 2, 3);
  const auto none = last.next();
  REQUIRE(none.has_value());
  CHECK(none->numel() == 0);
}
