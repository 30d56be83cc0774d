// Random ops (core/random.hpp) on counter-based Philox streams: exact agreement with the kernels'
// stream at the generator's offset, bit-identity for any thread count, stream bookkeeping
// (offsets, get_state/set_state, manual_seed), disjoint per-chunk streams, and the distributions.
#include <sorix/sorix.hpp>
#include <sorix/core/philox.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "tests/support/gradcheck.hpp"
#include "tests/support/rng_sweep.hpp"
#include "tests/support/values.hpp"

using sorix::Generator;
using sorix::Tensor;
namespace rng = sorix::rng;
namespace parallel = sorix::parallel;
using sorix::testing::at_thread_counts;
using sorix::testing::bit_identical;
using sorix::testing::distinct_blocks;
using sorix::testing::values_of;

namespace {

constexpr std::size_t kChunk = sorix::testing::kRngChunk;
const std::vector<int>& kThreads = sorix::testing::kRngThreads;
const std::vector<std::int64_t>& kSizes = sorix::testing::kRngSizes;

// Every thread count gives the same bits as the first (1 thread).
template <class Fn>
void check_thread_invariant(Fn&& fn, const std::string& what) {
  auto outs = at_thread_counts(kThreads, fn);
  for (std::size_t i = 1; i < outs.size(); ++i) {
    INFO(what << " at " << kThreads[i] << " threads vs 1 thread");
    CHECK(bit_identical(outs[0], outs[i]));
  }
}

// Pearson chi-square of counts against equal expected counts.
double chi_square_uniform(const std::vector<std::size_t>& counts, double total) {
  const double expected = total / static_cast<double>(counts.size());
  double chi2 = 0;
  for (std::size_t c : counts) chi2 += (static_cast<double>(c) - expected) * (static_cast<double>(c) - expected) / expected;
  return chi2;
}

// A seed is fixed, so these bounds are not flaky; they are wide (about 6 sigma of the chi-square
// with `df` degrees of freedom, both sides) and would catch a broken mapping or a repeated stream.
void check_chi_square(double chi2, double df) {
  const double sd = std::sqrt(2 * df);
  INFO("chi-square " << chi2 << " with " << df << " degrees of freedom");
  CHECK(chi2 < df + 6 * sd);
  CHECK(chi2 > df - 6 * sd);
}

}  // namespace

// ---- exact values: an op is its kernel on the stream starting at the generator's offset -------

TEST_CASE("rand and randn are the Philox kernels on the stream at the generator's offset", "[random]") {
  Generator g(1234);
  g.set_state({1234, 77});
  for (std::int64_t n : {std::int64_t{0}, std::int64_t{5}, std::int64_t{4097}, std::int64_t{100003}}) {
    const std::size_t m = static_cast<std::size_t>(n);
    {
      const std::uint64_t base = g.offset();
      Tensor t = sorix::rand({n}, sorix::float32, &g);
      std::vector<float> ref(m);
      rng::uniform_f32_range(1234, base, 0, ref.data(), m, 0.f, 1.f);
      CHECK(values_of<float>(t) == ref);
      CHECK(g.offset() == base + rng::counters_for_f32(m));
    }
    {
      const std::uint64_t base = g.offset();
      Tensor t = sorix::rand({n}, sorix::float64, &g);
      std::vector<double> ref(m);
      rng::uniform_f64_range(1234, base, 0, ref.data(), m, 0.0, 1.0);
      CHECK(values_of<double>(t) == ref);
      CHECK(g.offset() == base + rng::counters_for_f64(m));
    }
    {
      const std::uint64_t base = g.offset();
      Tensor t = sorix::randn({n}, sorix::float32, &g);
      std::vector<float> ref(m);
      rng::normal_f32_range(1234, base, 0, ref.data(), m, 0.f, 1.f);
      CHECK((m == 0 || std::memcmp(t.data_ptr<float>(), ref.data(), m * sizeof(float)) == 0));  // memcmp of null pointers is undefined even for 0 bytes
      CHECK(g.offset() == base + rng::counters_for_f32(m));
    }
    {
      const std::uint64_t base = g.offset();
      Tensor t = sorix::randn({n}, sorix::float64, &g);
      std::vector<double> ref(m);
      rng::normal_f64_range(1234, base, 0, ref.data(), m, 0.0, 1.0);
      CHECK((m == 0 || std::memcmp(t.data_ptr<double>(), ref.data(), m * sizeof(double)) == 0));
      CHECK(g.offset() == base + rng::counters_for_f64(m));
    }
  }
}

TEST_CASE("bernoulli(p tensor) is word i < round(p[i] * 2^32), exactly", "[random]") {
  const std::int64_t n = 70001;
  Tensor p = sorix::zeros({n}, sorix::float64);
  double* pp = p.data_ptr<double>();
  for (std::int64_t i = 0; i < n; ++i) pp[i] = static_cast<double>(i % 11) / 10.0 > 1.0 ? 1.0 : static_cast<double>(i % 11) / 10.0;
  Generator g(99);
  const std::uint64_t base = g.offset();
  Tensor b = sorix::bernoulli(p, &g);
  CHECK(g.offset() == base + rng::counters_for_u32(static_cast<std::size_t>(n)));
  std::vector<std::uint32_t> words(static_cast<std::size_t>(n));
  rng::fill_u32(99, base, words.data(), words.size());
  const double* pb = b.data_ptr<double>();
  std::size_t mismatches = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const double expect = words[static_cast<std::size_t>(i)] < rng::dropout_threshold(pp[i]) ? 1.0 : 0.0;
    mismatches += pb[i] != expect;
  }
  CHECK(mismatches == 0);
  CHECK(b.dtype() == sorix::float64);
  CHECK(b.shape() == p.shape());
}

// ---- thread-count invariance ---------------------------------------------------------------------

TEST_CASE("rand, randn, randint, randperm, bernoulli are bit-identical at 1..64 threads", "[random]") {
  for (std::int64_t n : kSizes) {
    INFO("n = " << n);
    check_thread_invariant([&] { Generator g(5); return sorix::rand({n}, sorix::float32, &g); }, "rand f32");
    check_thread_invariant([&] { Generator g(5); return sorix::rand({n}, sorix::float64, &g); }, "rand f64");
    check_thread_invariant([&] { Generator g(6); return sorix::randn({n}, sorix::float32, &g); }, "randn f32");
    check_thread_invariant([&] { Generator g(6); return sorix::randn({n}, sorix::float64, &g); }, "randn f64");
    check_thread_invariant([&] { Generator g(7); return sorix::randperm(n, sorix::int64, &g); }, "randperm");
    check_thread_invariant([&] { Generator g(8); return sorix::randint(-3, 1000, {n}, sorix::int64, &g); },
                           "randint");
    check_thread_invariant(
        [&] { Generator g(9); return sorix::bernoulli(sorix::empty({n}), 0.3, &g); }, "bernoulli f32");
  }
}

TEST_CASE("the default generator gives the same draws at any thread count after manual_seed", "[random]") {
  auto outs = at_thread_counts(kThreads, [] {
    sorix::manual_seed(2024);
    std::vector<Tensor> draws;
    draws.push_back(sorix::rand({3, 100003}));
    draws.push_back(sorix::randn({100003}));
    draws.push_back(sorix::randperm(5000));
    draws.push_back(sorix::randint(0, 7, {70001}));
    draws.push_back(sorix::rand({1}));
    return draws;
  });
  for (std::size_t i = 1; i < outs.size(); ++i) {
    for (std::size_t k = 0; k < outs[0].size(); ++k) {
      INFO("draw " << k << " at " << kThreads[i] << " threads");
      CHECK(bit_identical(outs[0][k], outs[i][k]));
    }
  }
}

// ---- streams: offsets, successive calls, seeds, state ------------------------------------------

TEST_CASE("successive calls and different seeds give different draws; the same seed the same", "[random]") {
  Generator g1(1), g2(2), g1b(1);
  Tensor a = sorix::rand({1000}, sorix::float32, &g1);
  Tensor b = sorix::rand({1000}, sorix::float32, &g1);
  Tensor c = sorix::rand({1000}, sorix::float32, &g2);
  Tensor a2 = sorix::rand({1000}, sorix::float32, &g1b);
  CHECK_FALSE(bit_identical(a, b));
  CHECK_FALSE(bit_identical(a, c));
  CHECK(bit_identical(a, a2));
  // Not even one element in common at the same index (2^-24 per element to collide by chance).
  std::size_t same_ab = 0, same_ac = 0;
  for (std::size_t i = 0; i < 1000; ++i) {
    same_ab += a.data_ptr<float>()[i] == b.data_ptr<float>()[i];
    same_ac += a.data_ptr<float>()[i] == c.data_ptr<float>()[i];
  }
  CHECK(same_ab == 0);
  CHECK(same_ac == 0);
}

TEST_CASE("each op advances the offset by the counters it used", "[random]") {
  Generator g(3);
  CHECK(g.offset() == 0);
  sorix::rand({10}, sorix::float32, &g);  // 10 words -> 3 counters
  CHECK(g.offset() == 3);
  sorix::rand({10}, sorix::float64, &g);  // 20 words -> 5 counters
  CHECK(g.offset() == 8);
  sorix::randn({7}, sorix::float32, &g);  // 2
  CHECK(g.offset() == 10);
  sorix::randint(0, 5, {3}, sorix::int64, &g);  // 2 words per element -> 2 counters
  CHECK(g.offset() == 12);
  sorix::randperm(9, sorix::int64, &g);  // 5
  CHECK(g.offset() == 17);
  sorix::bernoulli(sorix::empty({9}), 0.5, &g);  // 3
  CHECK(g.offset() == 20);
  sorix::rand({0}, sorix::float32, &g);
  CHECK(g.offset() == 20);
  CHECK(g.seed() == 3);
}

TEST_CASE("get_state/set_state and manual_seed replay a stream exactly", "[random]") {
  SECTION("an explicit generator") {
    Generator g(11);
    sorix::rand({17}, sorix::float32, &g);
    const Generator::State s = g.get_state();
    Tensor a = sorix::rand({50001}, sorix::float32, &g);
    Tensor b = sorix::randn({333}, sorix::float64, &g);
    Tensor c = sorix::randperm(1000, sorix::int64, &g);
    const Generator::State after = g.get_state();
    g.set_state(s);
    CHECK(g.get_state() == s);
    CHECK(bit_identical(sorix::rand({50001}, sorix::float32, &g), a));
    CHECK(bit_identical(sorix::randn({333}, sorix::float64, &g), b));
    CHECK(bit_identical(sorix::randperm(1000, sorix::int64, &g), c));
    CHECK(g.get_state() == after);
    // A copy carries the state; the two then advance independently.
    g.set_state(s);
    Generator copy = g;
    CHECK(bit_identical(sorix::rand({50001}, sorix::float32, &copy), a));
    CHECK(g.get_state() == s);
  }
  SECTION("the default generator") {
    sorix::manual_seed(77);
    CHECK(sorix::default_generator().get_state() == Generator::State{77, 0});
    Tensor a = sorix::rand({1000});
    Tensor b = sorix::randn({1000});
    const Generator::State mid = sorix::default_generator().get_state();
    Tensor c = sorix::randint(0, 100, {1000});
    sorix::manual_seed(77);
    CHECK(bit_identical(sorix::rand({1000}), a));
    CHECK(bit_identical(sorix::randn({1000}), b));
    sorix::default_generator().set_state(mid);
    CHECK(bit_identical(sorix::randint(0, 100, {1000}), c));
    // manual_seed restarts at offset 0 even when the seed is unchanged.
    sorix::manual_seed(77);
    CHECK(bit_identical(sorix::rand({1000}), a));
  }
  SECTION("an explicit generator leaves the default one alone") {
    sorix::manual_seed(5);
    Generator g(5);
    sorix::rand({100}, sorix::float32, &g);
    CHECK(sorix::default_generator().get_state() == Generator::State{5, 0});
    Generator fresh(5);
    CHECK(bit_identical(sorix::rand({100}), sorix::rand({100}, sorix::float32, &fresh)));
  }
}

TEST_CASE("no two chunks of one call share a stream: every 4096-element block of 10^7 draws differs", "[random]") {
  Generator g(42);
  const std::size_t n = 10000000;
  Tensor r = sorix::rand({static_cast<std::int64_t>(n)}, sorix::float32, &g);
  CHECK(distinct_blocks(r.data_ptr<float>(), n, 4096) == n / 4096);
  // Across calls too: two successive draws share no block.
  Tensor a = sorix::rand({static_cast<std::int64_t>(4 * kChunk)}, sorix::float32, &g);
  Tensor b = sorix::rand({static_cast<std::int64_t>(4 * kChunk)}, sorix::float32, &g);
  Tensor ab = sorix::zeros({static_cast<std::int64_t>(8 * kChunk)});
  std::memcpy(ab.data_ptr<float>(), a.data_ptr<float>(), 4 * kChunk * sizeof(float));
  std::memcpy(ab.data_ptr<float>() + 4 * kChunk, b.data_ptr<float>(), 4 * kChunk * sizeof(float));
  CHECK(distinct_blocks(ab.data_ptr<float>(), 8 * kChunk, 4096) == 8 * kChunk / 4096);
  // And float64 draws (two words per element).
  Tensor d = sorix::rand({static_cast<std::int64_t>(n / 4)}, sorix::float64, &g);
  CHECK(distinct_blocks(d.data_ptr<double>(), n / 4, 4096) == n / 4 / 4096);
}

// ---- distributions --------------------------------------------------------------------------------

TEST_CASE("rand passes a chi-square test (float32 and float64, 256 bins, 10^6 draws)", "[random]") {
  const std::size_t n = 1000000, bins = 256;
  Generator g(2718);
  for (auto dtype : {sorix::float32, sorix::float64}) {
    Tensor t = sorix::rand({static_cast<std::int64_t>(n)}, dtype, &g);
    Tensor d = t.to(sorix::float64);
    const double* p = d.data_ptr<double>();
    std::vector<std::size_t> counts(bins, 0);
    for (std::size_t i = 0; i < n; ++i) {
      REQUIRE(p[i] >= 0.0);
      REQUIRE(p[i] < 1.0);
      ++counts[static_cast<std::size_t>(p[i] * bins)];
    }
    check_chi_square(chi_square_uniform(counts, n), bins - 1);
  }
}

TEST_CASE("randn passes a chi-square test against the normal CDF, mean 0 and variance 1", "[random]") {
  const std::size_t n = 1000000;
  Generator g(31415);
  for (auto dtype : {sorix::float32, sorix::float64}) {
    Tensor d = sorix::randn({static_cast<std::int64_t>(n)}, dtype, &g).to(sorix::float64);
    const double* p = d.data_ptr<double>();
    // 100 equiprobable bins: bin = floor(Phi(z) * 100).
    std::vector<std::size_t> counts(100, 0);
    double sum = 0, sum2 = 0;
    for (std::size_t i = 0; i < n; ++i) {
      REQUIRE(std::isfinite(p[i]));
      const double phi = 0.5 * std::erfc(-p[i] / std::sqrt(2.0));
      ++counts[std::min<std::size_t>(99, static_cast<std::size_t>(phi * 100))];
      sum += p[i];
      sum2 += p[i] * p[i];
    }
    check_chi_square(chi_square_uniform(counts, n), 99);
    const double mean = sum / n, var = sum2 / n - mean * mean;
    CHECK(std::abs(mean) < 5.0 / std::sqrt(double(n)));
    CHECK(std::abs(var - 1.0) < 5.0 * std::sqrt(2.0 / double(n)));
  }
}

TEST_CASE("randint: values in [low, high), int64 unless a dtype is given, every value drawn", "[random]") {
  Generator g(10);
  SECTION("small range, chi-square over its values") {
    Tensor t = sorix::randint(-5, 5, {200000}, sorix::int64, &g);
    CHECK(t.dtype() == sorix::int64);
    CHECK(t.shape() == sorix::Shape{200000});
    std::vector<std::size_t> counts(10, 0);
    for (std::int64_t v : values_of<std::int64_t>(t)) {
      REQUIRE(v >= -5);
      REQUIRE(v < 5);
      ++counts[static_cast<std::size_t>(v + 5)];
    }
    for (std::size_t c : counts) CHECK(c > 0);
    check_chi_square(chi_square_uniform(counts, 200000), 9);
  }
  SECTION("a one-value range and the default generator") {
    sorix::manual_seed(1);
    Tensor t = sorix::randint(7, 8, {2, 3});
    CHECK(t.shape() == sorix::Shape{2, 3});
    for (std::int64_t v : values_of<std::int64_t>(t)) CHECK(v == 7);
  }
  SECTION("a dtype option converts the values") {
    Tensor t = sorix::randint(0, 3, {1000}, sorix::float64, &g);
    CHECK(t.dtype() == sorix::float64);
    for (double v : values_of<double>(t)) CHECK((v == 0.0 || v == 1.0 || v == 2.0));
    Tensor like = sorix::zeros({4, 5}, sorix::float32);
    Tensor r = sorix::randint_like(like, 10, 20, &g);
    CHECK(r.shape() == like.shape());
    CHECK(r.dtype() == sorix::float32);
    for (float v : values_of<float>(r)) CHECK((v >= 10.f && v < 20.f && v == std::floor(v)));
  }
  SECTION("the widest range does not overflow") {
    const std::int64_t lo = std::numeric_limits<std::int64_t>::min(), hi = std::numeric_limits<std::int64_t>::max();
    Tensor t = sorix::randint(lo, hi, {10000}, sorix::int64, &g);
    std::size_t negative = 0;
    for (std::int64_t v : values_of<std::int64_t>(t)) {
      CHECK(v < hi);
      negative += v < 0;
    }
    // Half of a uniform draw over [min, max) is negative.
    CHECK(negative > 4500);
    CHECK(negative < 5500);
  }
  SECTION("low >= high throws naming both") {
    CHECK_THROWS_WITH(sorix::randint(3, 3, {2}), Catch::Contains("randint") && Catch::Contains("low=3") &&
                                                     Catch::Contains("high=3"));
    CHECK_THROWS_AS(sorix::randint(5, 1, {2}), std::invalid_argument);
  }
}

TEST_CASE("randperm is a permutation of 0..n-1", "[random]") {
  Generator g(12);
  for (std::int64_t n : {std::int64_t{0}, std::int64_t{1}, std::int64_t{2}, std::int64_t{5}, std::int64_t{1000},
                         std::int64_t{1000003}}) {
    Tensor t = sorix::randperm(n, sorix::int64, &g);
    CHECK(t.dtype() == sorix::int64);
    CHECK(t.shape() == sorix::Shape{n});
    std::vector<std::int64_t> v = values_of<std::int64_t>(t);
    std::vector<std::int64_t> sorted = v;
    std::sort(sorted.begin(), sorted.end());
    std::vector<std::int64_t> iota(static_cast<std::size_t>(n));
    std::iota(iota.begin(), iota.end(), 0);
    CHECK(sorted == iota);
    if (n >= 1000) {
      // A shuffle, not the identity: few fixed points (about 1 expected).
      std::size_t fixed = 0;
      for (std::size_t i = 0; i < v.size(); ++i) fixed += v[i] == static_cast<std::int64_t>(i);
      CHECK(fixed < 10);
    }
  }
  // Every position takes every value about equally often (n = 4, 24000 draws).
  std::vector<std::size_t> counts(16, 0);
  for (int r = 0; r < 24000; ++r) {
    Tensor t = sorix::randperm(4, sorix::int64, &g);
    for (std::size_t i = 0; i < 4; ++i) ++counts[i * 4 + static_cast<std::size_t>(t.data_ptr<std::int64_t>()[i])];
  }
  for (std::size_t c : counts) {
    CHECK(c > 5700);
    CHECK(c < 6300);
  }
  CHECK(sorix::randperm(10, sorix::float32, &g).dtype() == sorix::float32);
  CHECK_THROWS_WITH(sorix::randperm(-1), Catch::Contains("randperm") && Catch::Contains("-1"));
}

TEST_CASE("bernoulli and bernoulli_ rates, exact at p = 0 and p = 1", "[random]") {
  Generator g(21);
  const std::size_t n = 1000000;
  for (double p : {0.0, 0.1, 0.5, 0.9, 1.0}) {
    for (auto dtype : {sorix::float32, sorix::float64, sorix::int64}) {
      INFO("p = " << p << ", dtype " << sorix::dtype_name(dtype));
      Tensor like = sorix::empty({static_cast<std::int64_t>(n)}, dtype);
      Tensor b = sorix::bernoulli(like, p, &g);
      CHECK(b.dtype() == dtype);
      Tensor c = sorix::zeros({static_cast<std::int64_t>(n)}, dtype);
      sorix::bernoulli_(c, p, &g);
      for (const Tensor& t : {b, c}) {
        Tensor d = t.to(sorix::float64);
        const double* pd = d.data_ptr<double>();
        std::size_t ones = 0, other = 0;
        for (std::size_t i = 0; i < n; ++i) {
          ones += pd[i] == 1.0;
          other += pd[i] != 0.0 && pd[i] != 1.0;
        }
        CHECK(other == 0);
        if (p == 0.0) CHECK(ones == 0);
        else if (p == 1.0) CHECK(ones == n);
        else CHECK(std::abs(static_cast<double>(ones) - p * n) < 5 * std::sqrt(n * p * (1 - p)));
      }
    }
  }
  // The method form, a probability tensor with per-element p, and bad probabilities.
  Tensor t = sorix::zeros({100});
  t.bernoulli_(1.0, &g);
  CHECK(t.sum().item<float>() == 100.f);
  Tensor probs = sorix::tensor({0.0, 1.0, 0.0, 1.0});
  CHECK(values_of<double>(sorix::bernoulli(probs, &g)) == std::vector<double>{0, 1, 0, 1});
  CHECK_THROWS_WITH(sorix::bernoulli(sorix::tensor({0.5, 1.5})), Catch::Contains("bernoulli") && Catch::Contains("1.5"));
  CHECK_THROWS_AS(sorix::bernoulli(sorix::tensor({std::nan("")})), std::invalid_argument);
  CHECK_THROWS_WITH(sorix::bernoulli(sorix::empty({3}), -0.25), Catch::Contains("bernoulli") && Catch::Contains("-0.25"));
  CHECK_THROWS_AS(sorix::bernoulli_(t, std::nan("")), std::invalid_argument);
  CHECK_THROWS_AS(sorix::bernoulli(sorix::tensor({1, 0})), std::invalid_argument);  // int64 probabilities
}

// ---- in-place fills -----------------------------------------------------------------------------

TEST_CASE("uniform_ and normal_ fill in place on the same storage and bump the version", "[random]") {
  Generator g(8);
  Tensor t = sorix::zeros({100003}, sorix::float64);
  Tensor alias = t.detach();
  const std::uint64_t v0 = t.version();
  const std::uint64_t base = g.offset();
  Tensor& r = sorix::uniform_(t, -2.0, 3.0, &g);
  CHECK(&r == &t);
  CHECK(t.version() > v0);
  std::vector<double> ref(100003);
  rng::uniform_f64_range(8, base, 0, ref.data(), ref.size(), -2.0, 3.0);
  CHECK(values_of<double>(alias) == ref);  // the alias sees the new values: same storage
  double lo = 10, hi = -10;
  for (double v : values_of<double>(t)) {
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  CHECK(lo >= -2.0);
  CHECK(lo < -1.99);
  CHECK(hi < 3.0);
  CHECK(hi > 2.99);

  Tensor f = sorix::empty({200000});
  const std::uint64_t v1 = f.version();
  f.normal_(3.0, 0.5, &g);
  CHECK(f.version() > v1);
  const double mean = f.mean().item<double>();
  const double sd = std::sqrt(((f - 3.0f) * (f - 3.0f)).mean().item<double>());
  CHECK(std::abs(mean - 3.0) < 5 * 0.5 / std::sqrt(200000.0));
  CHECK(std::abs(sd - 0.5) < 0.01);

  Tensor u = sorix::empty({1000});
  u.uniform_(0.0, 0.0, &g);  // from == to gives from
  CHECK(u.sum().item<float>() == 0.f);

  CHECK_THROWS_WITH(sorix::uniform_(t, 2.0, 1.0), Catch::Contains("uniform_") && Catch::Contains("from=2") &&
                                                      Catch::Contains("to=1"));
  CHECK_THROWS_AS(sorix::uniform_(t, 0.0, std::numeric_limits<double>::infinity()), std::invalid_argument);
  // The width must be finite in the tensor's dtype.
  Tensor f32 = sorix::zeros({8});
  CHECK_THROWS_WITH(sorix::uniform_(f32, -1e39, 1e39), Catch::Contains("uniform_") && Catch::Contains("float32"));
  CHECK_THROWS_AS(sorix::uniform_(t, -1e308, 1e308), std::invalid_argument);
  CHECK(f32.sum().item<float>() == 0.f);
  CHECK_THROWS_WITH(sorix::normal_(t, 0.0, -1.0), Catch::Contains("normal_") && Catch::Contains("std=-1"));
  Tensor ints = sorix::zeros({3}, sorix::int64);
  CHECK_THROWS_WITH(sorix::uniform_(ints), Catch::Contains("uniform_") && Catch::Contains("int64"));
  CHECK_THROWS_WITH(sorix::normal_(ints), Catch::Contains("normal_") && Catch::Contains("int64"));
}

TEST_CASE("in-place fills are refused on a leaf requiring grad outside NoGradGuard", "[random]") {
  Tensor w = sorix::zeros({4, 4});
  w.requires_grad_(true);
  CHECK_THROWS_WITH(w.uniform_(), Catch::Contains("uniform_"));
  CHECK_THROWS_WITH(w.normal_(), Catch::Contains("normal_"));
  CHECK_THROWS_WITH(w.bernoulli_(), Catch::Contains("bernoulli_"));
  CHECK(w.sum().item<float>() == 0.f);  // untouched
  {
    sorix::NoGradGuard guard;
    w.uniform_(1.0, 2.0);
    CHECK(w.min().item<float>() >= 1.f);
    w.normal_();
    w.bernoulli_(1.0);
    CHECK(w.sum().item<float>() == 16.f);
  }
  CHECK(w.requires_grad());
  CHECK(w.is_leaf());
}

TEST_CASE("random factories: dtypes, shapes, requires_grad, *_like, bad dtypes", "[random]") {
  sorix::manual_seed(3);
  Tensor a = sorix::rand({2, 3, 4});
  CHECK(a.dtype() == sorix::float32);
  CHECK(a.shape() == sorix::Shape{2, 3, 4});
  CHECK_FALSE(a.requires_grad());
  Tensor b = sorix::randn({5}, sorix::TensorOptions(sorix::float64).requires_grad());
  CHECK(b.dtype() == sorix::float64);
  CHECK(b.requires_grad());
  CHECK(b.is_leaf());
  CHECK(sorix::rand_like(b).dtype() == sorix::float64);
  CHECK(sorix::randn_like(a).shape() == a.shape());
  CHECK(sorix::rand({0, 3}).numel() == 0);
  CHECK_THROWS_WITH(sorix::rand({2}, sorix::int64), Catch::Contains("rand") && Catch::Contains("int64"));
  CHECK_THROWS_WITH(sorix::randn({2}, sorix::int64), Catch::Contains("randn") && Catch::Contains("int64"));
  CHECK_THROWS_AS(sorix::rand({-1}), std::invalid_argument);
}
