// A deliberate data race between the chunks of one parallel_for, hidden from normal runs ([.]).
// scripts/run-tsan.sh runs it under ThreadSanitizer and requires a race report: proof that the
// TBB suppressions (scripts/tsan.supp) and the happens-before annotations (parallel/src/parallel.cpp)
// do not hide a race in sorix code.
#include <sorix/sorix.hpp>

#include <catch2/catch.hpp>

#include <vector>

namespace par = sorix::parallel;

TEST_CASE("tsan canary: chunks of one parallel_for race on one variable", "[.][tsan_canary]") {
  const int previous = par::get_num_threads();
  par::set_num_threads(4);
  std::vector<double> v(1 << 16, 1.0);
  double shared = 0;  // every chunk adds to it without synchronisation: the race
  par::parallel_for(
      std::size_t{1} << 22, 4096,
      [&](std::size_t b, std::size_t e) {
        double a = 0;
        for (std::size_t i = b; i < e; ++i) a += v[i % v.size()];
        shared += a;
      },
      0);
  par::set_num_threads(previous);
  CHECK(shared > 0);
}
