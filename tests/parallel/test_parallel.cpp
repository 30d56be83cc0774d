// sorix::parallel: thread-count control, the fixed-chunk parallel_for, the deterministic
// parallel_reduce, exceptions, nesting.
#include <sorix/parallel/parallel.hpp>

#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace par = sorix::parallel;

namespace {

// Restores the thread count a test started with.
struct ThreadCountGuard {
  int previous = par::get_num_threads();
  ~ThreadCountGuard() { par::set_num_threads(previous); }
};

const std::vector<std::size_t> kSizes = {0, 1, 7, par::kChunkSize - 1, par::kChunkSize, par::kChunkSize + 1,
                                         1000003};
const std::vector<int> kThreads = {1, 2, 3, 8};

std::vector<float> values(std::size_t n) {
  std::vector<float> v(n);
  // Mixed magnitudes and signs so that the summation order changes the bits.
  for (std::size_t i = 0; i < n; ++i)
    v[i] = static_cast<float>(std::sin(0.37 * static_cast<double>(i)) * (1.0 + static_cast<double>(i % 1000)));
  return v;
}

float serial_sum(const float* p, std::size_t b, std::size_t e) {
  float s = 0.0f;
  for (std::size_t i = b; i < e; ++i) s += p[i];
  return s;
}

// Runs the child-process half of a test: this same binary, one hidden test case, with `env`.
int run_self(const std::string& env, const std::string& test_name) {
  char self[4096] = {};
  const ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
  REQUIRE(len > 0);
  const std::string cmd = env + " '" + std::string(self, static_cast<std::size_t>(len)) + "' \"" + test_name +
                          "\" >/dev/null 2>&1";
  const int status = std::system(cmd.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

TEST_CASE("set_num_threads and get_num_threads", "[parallel]") {
  ThreadCountGuard guard;
  CHECK(par::hardware_threads() >= 1);
  for (int n : {1, 2, 3, 8, 1}) {
    par::set_num_threads(n);
    CHECK(par::get_num_threads() == n);
  }
  for (int bad : {0, -1, -100}) {
    try {
      par::set_num_threads(bad);
      FAIL("set_num_threads(" << bad << ") did not throw");
    } catch (const std::invalid_argument& e) {
      const std::string msg = e.what();
      CHECK(msg.find("set_num_threads") != std::string::npos);
      CHECK(msg.find(std::to_string(bad)) != std::string::npos);
    }
  }
  CHECK(par::get_num_threads() == 1);  // a refused call leaves the count alone
}

// Hidden halves run in a child process (the environment is read once, at first use).
TEST_CASE("child: SORIX_NUM_THREADS is the initial thread count", "[.][parallel_child]") {
  const char* expect = std::getenv("SORIX_TEST_EXPECT_THREADS");
  REQUIRE(expect != nullptr);
  REQUIRE(par::get_num_threads() == std::atoi(expect));
}
TEST_CASE("child: an invalid SORIX_NUM_THREADS throws", "[.][parallel_child]") {
  REQUIRE_THROWS_AS(par::get_num_threads(), std::invalid_argument);
}

TEST_CASE("SORIX_NUM_THREADS is honoured and validated", "[parallel]") {
  const std::string ok = "child: SORIX_NUM_THREADS is the initial thread count";
  const std::string bad = "child: an invalid SORIX_NUM_THREADS throws";
  CHECK(run_self("SORIX_NUM_THREADS=3 SORIX_TEST_EXPECT_THREADS=3", ok) == 0);
  CHECK(run_self("SORIX_NUM_THREADS=1 SORIX_TEST_EXPECT_THREADS=1", ok) == 0);
  // The check itself can fail: a wrong expectation makes the child fail.
  CHECK(run_self("SORIX_NUM_THREADS=3 SORIX_TEST_EXPECT_THREADS=4", ok) != 0);
  // Unset: every core.
  CHECK(run_self("env -u SORIX_NUM_THREADS SORIX_TEST_EXPECT_THREADS=" + std::to_string(par::hardware_threads()),
                 ok) == 0);
  for (const char* v : {"0", "-2", "abc", "4x", "99999"}) {
    INFO("SORIX_NUM_THREADS=" << v);
    CHECK(run_self(std::string("SORIX_NUM_THREADS=") + v, bad) == 0);
  }
}

TEST_CASE("parallel_for covers every index exactly once in fixed chunks", "[parallel]") {
  ThreadCountGuard guard;
  for (std::size_t chunk : {std::size_t(1), std::size_t(7), par::kChunkSize}) {
    for (std::size_t n : kSizes) {
      if (chunk == 1 && n > 100000) continue;  // a million one-element tasks adds nothing
      for (int threads : kThreads) {
        for (std::size_t grain : {std::size_t(0), par::kInlineGrain}) {
          par::set_num_threads(threads);
          INFO("n=" << n << " chunk=" << chunk << " threads=" << threads << " grain=" << grain);
          std::vector<std::atomic<int>> hits(n);
          for (auto& h : hits) h.store(0);
          const std::size_t num_chunks = n == 0 ? 0 : (n + chunk - 1) / chunk;
          std::vector<std::pair<std::size_t, std::size_t>> seen(num_chunks, {~std::size_t(0), 0});
          std::atomic<std::size_t> calls{0};
          par::parallel_for(
              n, chunk,
              [&](std::size_t b, std::size_t e) {
                ++calls;
                if (b % chunk == 0 && b / chunk < num_chunks) seen[b / chunk] = {b, e};
                for (std::size_t i = b; i < e; ++i) hits[i].fetch_add(1, std::memory_order_relaxed);
              },
              grain);
          REQUIRE(calls.load() == num_chunks);
          bool all_once = true;
          for (std::size_t i = 0; i < n; ++i) all_once = all_once && hits[i].load() == 1;
          CHECK(all_once);
          bool boundaries = true;
          for (std::size_t c = 0; c < num_chunks; ++c) {
            boundaries = boundaries && seen[c].first == c * chunk && seen[c].second == std::min(n, (c + 1) * chunk);
          }
          CHECK(boundaries);
        }
      }
    }
  }
}

TEST_CASE("parallel_for with chunk 0 is treated as chunk 1", "[parallel]") {
  std::vector<int> hits(10, 0);
  par::parallel_for(10, 0, [&](std::size_t b, std::size_t e) {
    CHECK(e == b + 1);
    ++hits[b];
  });
  CHECK(hits == std::vector<int>(10, 1));
}

TEST_CASE("parallel_for runs on as many threads as set_num_threads asks", "[parallel]") {
  // Every chunk waits (up to a deadline) until `want` chunks run at once, which needs `want`
  // distinct threads. On a machine with fewer cores this checks that the arena is not capped at
  // the core count.
  ThreadCountGuard guard;
  for (int want : {2, 4}) {
    par::set_num_threads(want);
    std::atomic<int> arrived{0};
    std::mutex m;
    std::set<std::thread::id> ids;
    par::parallel_for(
        static_cast<std::size_t>(want), 1,
        [&](std::size_t, std::size_t) {
          {
            std::lock_guard<std::mutex> lock(m);
            ids.insert(std::this_thread::get_id());
          }
          ++arrived;
          // The deadline only ends a failing run: a working arena passes as soon as its threads
          // arrive. 3 s was too short on a loaded 2-core machine (and under ThreadSanitizer), where
          // a worker can wait that long to be scheduled.
          const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
          while (arrived.load() < want && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
        },
        0);
    INFO("threads=" << want);
    CHECK(static_cast<int>(ids.size()) == want);
  }
}

TEST_CASE("parallel_reduce is bit-identical across thread counts and combines chunks in order",
          "[parallel]") {
  ThreadCountGuard guard;
  for (std::size_t n : kSizes) {
    const std::vector<float> v = values(n);
    // The reference: the fixed chunks, each summed serially, combined in chunk order.
    float expected = 0.0f;
    for (std::size_t b = 0; b < n; b += par::kChunkSize)
      expected = expected + serial_sum(v.data(), b, std::min(n, b + par::kChunkSize));
    for (int threads : kThreads) {
      for (std::size_t grain : {std::size_t(0), par::kInlineGrain}) {
        par::set_num_threads(threads);
        const float got = par::parallel_reduce<float>(
            n, par::kChunkSize, 0.0f, [&](std::size_t b, std::size_t e) { return serial_sum(v.data(), b, e); },
            [](float a, float b) { return a + b; }, grain);
        INFO("n=" << n << " threads=" << threads << " grain=" << grain);
        CHECK(std::memcmp(&got, &expected, sizeof(float)) == 0);
      }
    }
  }
  // The identity is returned for n == 0, and combine order is left to right (non-commutative check).
  CHECK(par::parallel_reduce<int>(0, 4, 42, [](std::size_t, std::size_t) { return 1; },
                                  [](int a, int b) { return a + b; }) == 42);
  par::set_num_threads(3);
  const std::string order = par::parallel_reduce<std::string>(
      10, 3, std::string(">"),
      [](std::size_t b, std::size_t e) { return std::to_string(b) + "-" + std::to_string(e) + ";"; },
      [](const std::string& a, const std::string& b) { return a + b; }, 0);
  CHECK(order == ">0-3;3-6;6-9;9-10;");
}

TEST_CASE("parallel_reduce of float sums differs from a naive serial sum (the test can fail)",
          "[parallel]") {
  // Guards the test above: with these values the chunked order really gives other bits than a
  // single serial pass, so equality with the chunked reference is a real check.
  const std::size_t n = 1000003;
  const std::vector<float> v = values(n);
  const float chunked = par::parallel_reduce<float>(
      n, par::kChunkSize, 0.0f, [&](std::size_t b, std::size_t e) { return serial_sum(v.data(), b, e); },
      [](float a, float b) { return a + b; });
  const float naive = serial_sum(v.data(), 0, n);
  CHECK(std::memcmp(&chunked, &naive, sizeof(float)) != 0);
}

TEST_CASE("exceptions thrown in a body reach the caller", "[parallel]") {
  ThreadCountGuard guard;
  for (int threads : {1, 4}) {
    par::set_num_threads(threads);
    INFO("threads=" << threads);
    // Parallel path (grain 0) and inline path (default grain, small n).
    CHECK_THROWS_WITH(par::parallel_for(
                          100000, 1000,
                          [](std::size_t b, std::size_t) {
                            if (b == 57000) throw std::runtime_error("chunk 57 failed");
                          },
                          0),
                      "chunk 57 failed");
    CHECK_THROWS_AS(par::parallel_for(10, 2,
                                      [](std::size_t b, std::size_t) {
                                        if (b == 4) throw std::out_of_range("inline");
                                      }),
                    std::out_of_range);
    CHECK_THROWS_AS(par::parallel_reduce<double>(
                        100000, 1000, 0.0,
                        [](std::size_t b, std::size_t) -> double {
                          if (b == 99000) throw std::invalid_argument("last chunk");
                          return 1.0;
                        },
                        [](double a, double b) { return a + b; }, 0),
                    std::invalid_argument);
    // The arena still works afterwards.
    std::atomic<std::size_t> count{0};
    par::parallel_for(100000, 1000, [&](std::size_t b, std::size_t e) { count += e - b; }, 0);
    CHECK(count.load() == 100000);
  }
}

TEST_CASE("nested parallel_for works and covers everything", "[parallel]") {
  ThreadCountGuard guard;
  for (int threads : {1, 3, 8}) {
    par::set_num_threads(threads);
    const std::size_t outer = 16, inner = 50000;
    std::vector<std::atomic<int>> hits(outer * inner);
    for (auto& h : hits) h.store(0);
    par::parallel_for(
        outer, 1,
        [&](std::size_t o0, std::size_t o1) {
          for (std::size_t o = o0; o < o1; ++o) {
            par::parallel_for(
                inner, 1000,
                [&](std::size_t b, std::size_t e) {
                  for (std::size_t i = b; i < e; ++i) hits[o * inner + i].fetch_add(1, std::memory_order_relaxed);
                },
                0);
          }
        },
        0);
    bool all_once = true;
    for (auto& h : hits) all_once = all_once && h.load() == 1;
    INFO("threads=" << threads);
    CHECK(all_once);
    // A nested reduce inside a parallel_for gives the same bits as at top level.
    const std::vector<float> v = values(200000);
    auto reduce = [&] {
      return par::parallel_reduce<float>(
          v.size(), 1000, 0.0f, [&](std::size_t b, std::size_t e) { return serial_sum(v.data(), b, e); },
          [](float a, float b) { return a + b; }, 0);
    };
    const float top = reduce();
    std::vector<float> nested(8);
    par::parallel_for(8, 1, [&](std::size_t b, std::size_t) { nested[b] = reduce(); }, 0);
    for (float x : nested) CHECK(std::memcmp(&x, &top, sizeof(float)) == 0);
  }
}

TEST_CASE("set_num_threads refuses counts beyond its stated limit", "[parallel]") {
  const int before = sorix::parallel::get_num_threads();
  CHECK_THROWS_WITH(sorix::parallel::set_num_threads(sorix::parallel::kMaxThreads + 1),
                    Catch::Contains("set_num_threads") && Catch::Contains(std::to_string(sorix::parallel::kMaxThreads + 1)));
  CHECK_THROWS_AS(sorix::parallel::set_num_threads(100000), std::invalid_argument);
  CHECK_THROWS_AS(sorix::parallel::set_num_threads(0), std::invalid_argument);
  CHECK(sorix::parallel::get_num_threads() == before);  // unchanged
}
