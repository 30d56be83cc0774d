// Bad input at the thread-control entry points, and bad input detected inside parallel work: the
// typed exception reaches the caller at every thread count, and the arena stays usable.
// (SORIX_NUM_THREADS values are checked in test_parallel.cpp, in child processes.)
#include <sorix/sorix.hpp>

#include <catch2/catch.hpp>

#include <climits>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "tests/support/errors.hpp"

namespace par = sorix::parallel;
using sorix::testing::check_error;

namespace {

struct ThreadCountGuard {
  int previous = par::get_num_threads();
  ~ThreadCountGuard() { par::set_num_threads(previous); }
};

}  // namespace

TEST_CASE("set_num_threads: zero, negative and beyond-the-limit counts name the value and the limit", "[bad_input]") {
  ThreadCountGuard guard;
  par::set_num_threads(2);
  const std::string limit = "[1, " + std::to_string(par::kMaxThreads) + "]";
  for (int bad : {0, -1, INT_MIN, par::kMaxThreads + 1, INT_MAX}) {
    INFO(bad);
    check_error<std::invalid_argument>([&] { par::set_num_threads(bad); }, {"set_num_threads", std::to_string(bad), limit});
    CHECK(par::get_num_threads() == 2);  // unchanged
  }
}

TEST_CASE("an error found inside parallel work reaches the caller typed, at any thread count", "[bad_input]") {
  ThreadCountGuard guard;
  // Large enough to be split into many chunks; the bad index sits deep inside.
  const std::int64_t n = 200000;
  sorix::Tensor table = sorix::ones({10, 4});
  sorix::Tensor index = sorix::zeros({n}, sorix::Dtype::Int64);
  index.data_ptr<std::int64_t>()[n - 7] = 10;
  for (int threads : {1, 2, 4}) {
    par::set_num_threads(threads);
    INFO("threads=" << threads);
    check_error<std::out_of_range>([&] { table.index_select(0, index); }, {"index_select", "index 10"});
    check_error<std::out_of_range>([&] { sorix::nn::Embedding(10, 4)(index); }, {"embedding", "index 10"});
    // The arena still works, and gives the same bits as before.
    CHECK(sorix::ones({n}).sum().item<float>() == static_cast<float>(n));
  }
}
