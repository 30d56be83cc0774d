// nn::Dropout and nn::functional::dropout: masks tested exactly against the Philox stream at the
// generator's offset, bit-identical at 1..64 threads, exact gradients for both mask modes and
// both dtypes, double backward, and the module/option surface.
#include <sorix/sorix.hpp>
#include <sorix/core/philox.hpp>
#include <sorix/nn/dropout.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <sstream>
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
namespace F = sorix::nn::functional;
namespace rng = sorix::rng;
namespace parallel = sorix::parallel;
using sorix::nn::DropoutMask;
using sorix::testing::at_thread_counts;
using sorix::testing::bit_identical;
using sorix::testing::distinct_blocks;
using sorix::testing::values_of;

namespace {

constexpr std::size_t kChunk = sorix::testing::kRngChunk;
const std::vector<int>& kThreads = sorix::testing::kRngThreads;
const std::vector<std::int64_t>& kSizes = sorix::testing::kRngSizes;
const DropoutMask kModes[] = {DropoutMask::Bits, DropoutMask::Regenerate};

const char* mode_name(DropoutMask m) { return m == DropoutMask::Bits ? "Bits" : "Regenerate"; }

// Non-zero, non-uniform input values, so that an output is 0 exactly where the element dropped.
template <class T>
Tensor input_values(std::int64_t n, bool requires_grad) {
  Tensor t = sorix::testing::positive_f64({n}, 3, false);
  if constexpr (std::is_same_v<T, float>) t = t.to(sorix::float32);
  if (requires_grad) t.requires_grad_(true);
  return t;
}

// The specification (sorix/core/philox.hpp, docs/architecture.md): keep i iff word i >= round(p * 2^32); y = x * (1/(1-p)).
template <class T>
std::vector<T> reference(const Tensor& x, double p, std::uint64_t seed, std::uint64_t base) {
  const std::size_t n = static_cast<std::size_t>(x.numel());
  std::vector<std::uint32_t> words(n);
  rng::fill_u32(seed, base, words.data(), n);
  const std::uint64_t t = rng::dropout_threshold(p);
  const T scale = T(1) / (T(1) - static_cast<T>(p));
  const T* px = x.data_ptr<T>();
  std::vector<T> y(n);
  for (std::size_t i = 0; i < n; ++i) y[i] = words[i] >= t ? px[i] * scale : T(0);
  return y;
}

// Forward and gradient of sum(dropout(x) * w) at the current thread count; x is a fresh leaf
// holding `values`, w a non-uniform upstream gradient.
struct FwdBwd {
  Tensor y, gx;
};
FwdBwd forward_backward(const Tensor& values, const Tensor& w, double p, DropoutMask mode, std::uint64_t seed) {
  Tensor x = values.clone();
  x.requires_grad_(true);
  Generator g(seed);
  Tensor y = F::dropout(x, p, true, &g, mode);
  (y * w).sum().backward();
  return {y.detach(), x.grad().defined() ? x.grad() : sorix::zeros_like(x)};
}

}  // namespace

// ---- exact masks ------------------------------------------------------------------------------

TEMPLATE_TEST_CASE("dropout forward equals the keep test on the stream at the generator's offset", "[dropout]",
                   float, double) {
  for (double p : {0.1, 0.3, 0.5, 0.9}) {
    for (DropoutMask mode : kModes) {
      for (std::int64_t n : {std::int64_t{1}, std::int64_t{5}, std::int64_t{4097}, std::int64_t{100003}}) {
        INFO("p = " << p << ", n = " << n << ", " << mode_name(mode));
        Generator g(404);
        g.set_state({404, 1000});
        Tensor x = input_values<TestType>(n, true);
        Tensor y = F::dropout(x, p, true, &g, mode);
        CHECK(y.dtype() == x.dtype());
        CHECK(y.shape() == x.shape());
        CHECK(values_of<TestType>(y) == reference<TestType>(x, p, 404, 1000));
        CHECK(g.offset() == 1000 + rng::counters_for_u32(static_cast<std::size_t>(n)));
      }
    }
  }
}

TEST_CASE("float32 and float64 draw the same mask from the same stream", "[dropout]") {
  Generator g32(8), g64(8);
  Tensor y32 = F::dropout(sorix::ones({70001}), 0.4, true, &g32);
  Tensor y64 = F::dropout(sorix::ones({70001}, sorix::float64), 0.4, true, &g64);
  std::size_t differ = 0, dropped = 0;
  for (std::size_t i = 0; i < 70001; ++i) {
    const bool d32 = y32.data_ptr<float>()[i] == 0.f, d64 = y64.data_ptr<double>()[i] == 0.0;
    differ += d32 != d64;
    dropped += d32;
  }
  CHECK(differ == 0);
  CHECK(dropped > 0);
  CHECK(g32.get_state() == g64.get_state());
}

// ---- thread-count invariance ------------------------------------------------------------------------

TEST_CASE("dropout masks, outputs and gradients are bit-identical at 1..64 threads", "[dropout]") {
  for (std::int64_t n : kSizes) {
    for (DropoutMask mode : kModes) {
      INFO("n = " << n << ", " << mode_name(mode));
      const Tensor x64 = input_values<double>(n, false), w64 = x64 - 1.0;
      const Tensor x32 = x64.to(sorix::float32), w32 = w64.to(sorix::float32);
      auto f32 = at_thread_counts(kThreads, [&] { return forward_backward(x32, w32, 0.3, mode, 17); });
      auto f64 = at_thread_counts(kThreads, [&] { return forward_backward(x64, w64, 0.3, mode, 17); });
      for (std::size_t i = 1; i < kThreads.size(); ++i) {
        INFO(kThreads[i] << " threads vs 1");
        CHECK(bit_identical(f32[0].y, f32[i].y));
        CHECK(bit_identical(f32[0].gx, f32[i].gx));
        CHECK(bit_identical(f64[0].y, f64[i].y));
        CHECK(bit_identical(f64[0].gx, f64[i].gx));
      }
    }
  }
}

TEST_CASE("nn::Dropout on the default generator is thread-count invariant after manual_seed", "[dropout]") {
  auto outs = at_thread_counts(kThreads, [] {
    sorix::manual_seed(99);
    sorix::nn::Dropout d(0.2);
    std::vector<Tensor> ys;
    ys.push_back(d(sorix::ones({3, 40001})));
    ys.push_back(d(sorix::ones({5})));
    ys.push_back(d(sorix::ones({kChunk + 1}, sorix::float64)));
    return ys;
  });
  for (std::size_t i = 1; i < outs.size(); ++i) {
    for (std::size_t k = 0; k < outs[0].size(); ++k) CHECK(bit_identical(outs[0][k], outs[i][k]));
  }
}

// ---- streams ------------------------------------------------------------------------------------------

TEST_CASE("successive calls and different seeds give different masks; set_state replays", "[dropout]") {
  Tensor x = sorix::ones({10000});
  Generator g(1);
  const Generator::State s0 = g.get_state();
  Tensor a = F::dropout(x, 0.5, true, &g);
  Tensor b = F::dropout(x, 0.5, true, &g);
  Generator other(2);
  Tensor c = F::dropout(x, 0.5, true, &other);
  CHECK_FALSE(bit_identical(a, b));
  CHECK_FALSE(bit_identical(a, c));
  // Masks of independent draws agree on about half the elements, not nearly all.
  const double agree_ab = a.eq(b).to(sorix::float64).mean().item<double>();
  CHECK(agree_ab > 0.45);
  CHECK(agree_ab < 0.55);
  g.set_state(s0);
  CHECK(bit_identical(F::dropout(x, 0.5, true, &g), a));
  CHECK(bit_identical(F::dropout(x, 0.5, true, &g), b));

  sorix::manual_seed(31);
  sorix::nn::Dropout d(0.5);
  Tensor m1 = d(x);
  Tensor m2 = d(x);
  sorix::manual_seed(31);
  CHECK(bit_identical(d(x), m1));
  CHECK(bit_identical(d(x), m2));
  // A call without grad and one with grad (which stores mask bits) draw the same mask.
  sorix::manual_seed(31);
  Tensor xg = sorix::ones({10000});
  xg.requires_grad_(true);
  CHECK(bit_identical(d(xg).detach(), m1));
}

TEST_CASE("no two chunks of one call share a stream: 4096-element blocks of a 10^7 mask all differ", "[dropout]") {
  const std::size_t n = 10000000;
  Generator g(42);
  sorix::NoGradGuard guard;
  Tensor y = F::dropout(sorix::ones({static_cast<std::int64_t>(n)}), 0.5, true, &g);
  CHECK(distinct_blocks(y.data_ptr<float>(), n, 4096) == n / 4096);
}

TEST_CASE("drop rate is within 5 sigma of p at 10^7 elements", "[dropout]") {
  const double n = 1e7;
  Generator g(2025);
  Tensor x = sorix::ones({static_cast<std::int64_t>(n)});
  for (double p : {0.1, 0.3, 0.5, 0.9}) {
    Tensor y = F::dropout(x, p, true, &g);
    const float* py = y.data_ptr<float>();
    const float scale = 1.0f / (1.0f - static_cast<float>(p));
    std::size_t dropped = 0, other = 0;
    for (std::size_t i = 0; i < static_cast<std::size_t>(n); ++i) {
      dropped += py[i] == 0.0f;
      other += py[i] != 0.0f && py[i] != scale;
    }
    INFO("p = " << p << ": dropped " << dropped);
    CHECK(other == 0);
    CHECK(std::abs(static_cast<double>(dropped) - p * n) < 5 * std::sqrt(n * p * (1 - p)));
  }
}

// ---- gradients ----------------------------------------------------------------------------------------------

TEMPLATE_TEST_CASE("backward is exact: grad is 0 where the output is 0, else 1/(1-p), in both mask modes",
                   "[dropout]", float, double) {
  using T = TestType;
  for (double p : {0.1, 0.5, 0.75}) {
    std::vector<Tensor> grads;
    for (DropoutMask mode : kModes) {
      INFO("p = " << p << ", " << mode_name(mode));
      const std::int64_t n = 100003;
      Tensor x = input_values<T>(n, true);
      Generator g(77);
      Tensor y = F::dropout(x, p, true, &g, mode);
      REQUIRE(y.requires_grad());
      y.sum().backward();
      const T scale = T(1) / (T(1) - static_cast<T>(p));
      const T* py = y.data_ptr<T>();
      const T* pg = x.grad().data_ptr<T>();
      std::size_t bad = 0, zeros = 0;
      for (std::int64_t i = 0; i < n; ++i) {
        if (py[i] == T(0)) {
          ++zeros;
          bad += pg[i] != T(0);
        } else {
          bad += pg[i] != scale;
        }
      }
      CHECK(bad == 0);
      CHECK(zeros > 0);
      CHECK(zeros < static_cast<std::size_t>(n));
      grads.push_back(x.grad());
    }
    CHECK(bit_identical(grads[0], grads[1]));  // Bits and Regenerate agree bit for bit
  }
}

TEST_CASE("dropout gradient with an upstream gradient is g * mask / (1-p), exactly", "[dropout]") {
  for (DropoutMask mode : kModes) {
    Tensor x = input_values<double>(4097, true);
    Generator g(5);
    Tensor y = F::dropout(x, 0.3, true, &g, mode);
    Tensor w = sorix::testing::randn_f64({4097}, 4, false);
    auto gx = sorix::autograd::grad({y}, {x}, {w});
    const double scale = 1.0 / (1.0 - 0.3);
    std::size_t bad = 0;
    for (std::size_t i = 0; i < 4097; ++i) {
      const double expect = y.data_ptr<double>()[i] == 0.0 ? 0.0 : w.data_ptr<double>()[i] * scale;
      bad += gx[0].data_ptr<double>()[i] != expect;
    }
    CHECK(bad == 0);
  }
}

TEST_CASE("dropout passes a float64 gradcheck (fixed generator state per evaluation)", "[dropout]") {
  for (DropoutMask mode : kModes) {
    for (double p : {0.2, 0.6}) {
      auto r = sorix::testing::gradcheck(
          [&](const std::vector<Tensor>& in) {
            Generator g(123);  // the same mask on every evaluation
            return F::dropout(in[0], p, true, &g, mode);
          },
          {sorix::testing::randn_f64({3, 7}, 1)});
      INFO(mode_name(mode) << " p=" << p << ": " << r.message);
      CHECK(r.ok);
    }
  }
}

TEST_CASE("create_graph through dropout: first derivative correct, second derivative zero", "[dropout]") {
  for (DropoutMask mode : kModes) {
    INFO(mode_name(mode));
    const double p = 0.4, scale = 1.0 / (1.0 - p);
    Tensor x = input_values<double>(1001, true);
    Tensor w = sorix::testing::randn_f64({1001}, 6, true);
    Generator g(9);
    Tensor y = F::dropout(x, p, true, &g, mode);
    // L = sum(w * dropout(x)):  dL/dx = w * m / (1-p), which does not depend on x.
    auto gx = sorix::autograd::grad({(y * w).sum()}, {x}, {}, /*create_graph=*/true);
    REQUIRE(gx[0].requires_grad());
    std::size_t bad = 0;
    for (std::size_t i = 0; i < 1001; ++i) {
      const double expect = y.data_ptr<double>()[i] == 0.0 ? 0.0 : w.data_ptr<double>()[i] * scale;
      bad += gx[0].data_ptr<double>()[i] != expect;
    }
    CHECK(bad == 0);
    // d/dx sum(dL/dx) = 0: x is unused by the recorded backward (or its gradient is all zeros).
    auto gxx = sorix::autograd::grad({gx[0].sum()}, {x, w}, {}, false, true, /*allow_unused=*/true);
    if (gxx[0].defined()) CHECK(gxx[0].abs().sum().item<double>() == 0.0);
    // d/dw sum(dL/dx) = m / (1-p): the backward was recorded, through the mask.
    bad = 0;
    for (std::size_t i = 0; i < 1001; ++i) {
      const double expect = y.data_ptr<double>()[i] == 0.0 ? 0.0 : scale;
      bad += gxx[1].data_ptr<double>()[i] != expect;
    }
    CHECK(bad == 0);
  }
}

TEST_CASE("double backward through dropout passes a gradcheck of the first derivative", "[dropout]") {
  // f(x) = d/dx [0.5 * sum(dropout(x)^2)] = m * x / (1-p)^2: its own gradient is m / (1-p)^2.
  for (DropoutMask mode : kModes) {
    auto r = sorix::testing::gradcheck(
        [&](const std::vector<Tensor>& in) {
          Generator g(321);
          Tensor y = F::dropout(in[0], 0.3, true, &g, mode);
          if (!sorix::autograd::grad_enabled()) {
            return y * (1.0 / 0.7);  // = m x / (1-p)^2 on the same mask (numerical side, no graph)
          }
          return sorix::autograd::grad({(y * y).sum() * 0.5}, {in[0]}, {}, /*create_graph=*/true)[0];
        },
        {sorix::testing::randn_f64({4, 5}, 2)});
    INFO(mode_name(mode) << ": " << r.message);
    CHECK(r.ok);
  }
}

// ---- edges: eval, p == 0, p == 1, bad p, dtypes -------------------------------------------------------------

TEST_CASE("eval mode, training=false and p == 0 return the input itself", "[dropout]") {
  Tensor x = sorix::rand({3, 4});
  x.requires_grad_(true);
  sorix::nn::Dropout d(0.5);
  d.eval();
  Generator& def = sorix::default_generator();
  const Generator::State s = def.get_state();
  CHECK(d(x).is_same(x));
  CHECK(F::dropout(x, 0.5, false).is_same(x));
  CHECK(F::dropout(x, 0.0, true).is_same(x));
  CHECK(def.get_state() == s);  // no counters drawn
  sorix::nn::Dropout zero(0.0);
  CHECK(zero(x).is_same(x));
  d.train();
  Tensor y = d(x);
  CHECK_FALSE(y.is_same(x));
  CHECK(def.offset() == s.offset + rng::counters_for_u32(12));
}

TEST_CASE("p == 1 gives zeros and zero gradients", "[dropout]") {
  for (DropoutMask mode : kModes) {
    for (auto dtype : {sorix::float32, sorix::float64}) {
      Tensor x = sorix::full({100003}, 3.0, dtype);
      x.requires_grad_(true);
      Tensor y = F::dropout(x, 1.0, true, nullptr, mode);
      CHECK(y.abs().sum().item<double>() == 0.0);
      (y * 2.0).sum().backward();
      CHECK(x.grad().abs().sum().item<double>() == 0.0);
      CHECK_FALSE(std::signbit(x.grad().min().item<double>()));
      sorix::nn::Dropout all(1.0);
      CHECK(all(x).abs().sum().item<double>() == 0.0);
    }
  }
  // A dropped NaN or infinity is 0, not NaN.
  Tensor bad = sorix::tensor({std::nanf(""), std::numeric_limits<float>::infinity()});
  CHECK(F::dropout(bad, 1.0).abs().sum().item<float>() == 0.f);
}

TEST_CASE("p < 0, p > 1 and NaN throw std::invalid_argument naming the value", "[dropout]") {
  Tensor x = sorix::ones({4});
  for (double p : {-0.1, 1.5, std::nan("")}) {
    std::ostringstream value;
    value << p;
    INFO("p = " << value.str());
    CHECK_THROWS_AS(sorix::nn::Dropout(p), std::invalid_argument);
    CHECK_THROWS_WITH(sorix::nn::Dropout(p), Catch::Contains("dropout") && Catch::Contains(value.str()));
    CHECK_THROWS_WITH(sorix::nn::Dropout(sorix::nn::DropoutOptions().p(p)), Catch::Contains(value.str()));
    CHECK_THROWS_AS(F::dropout(x, p), std::invalid_argument);
    CHECK_THROWS_WITH(F::dropout(x, p, true), Catch::Contains("dropout") && Catch::Contains(value.str()));
    // Even where the call would be the identity.
    CHECK_THROWS_WITH(F::dropout(x, p, false), Catch::Contains(value.str()));
  }
  CHECK_NOTHROW(sorix::nn::Dropout(0.0));
  CHECK_NOTHROW(sorix::nn::Dropout(1.0));
  CHECK_THROWS_WITH(F::dropout(sorix::tensor({1, 2}), 0.5), Catch::Contains("dropout") && Catch::Contains("int64"));
  CHECK_THROWS_WITH(F::dropout(Tensor(), 0.5), Catch::Contains("dropout"));
}

TEST_CASE("Dropout module: printing, training flag, options", "[dropout]") {
  sorix::nn::Dropout d(0.3);
  std::ostringstream os;
  os << d;
  CHECK(os.str() == "Dropout(p=0.3)");
  CHECK(d.name() == "Dropout");
  CHECK(d.is_training());  // modules start in training mode
  d.eval();
  CHECK_FALSE(d.is_training());
  d.train();
  CHECK(d.is_training());
  d.train(false);
  CHECK_FALSE(d.is_training());
  CHECK(d.parameters().empty());

  sorix::nn::Dropout def;
  CHECK(def.options().p() == 0.5);
  CHECK(def.options().mask() == DropoutMask::Bits);
  sorix::nn::Dropout regen(sorix::nn::DropoutOptions(0.25).mask(DropoutMask::Regenerate));
  CHECK(regen.options().mask() == DropoutMask::Regenerate);
  CHECK(regen.options().p() == 0.25);

  // Inside a container, train()/eval() reach the Dropout.
  sorix::nn::Sequential seq(sorix::nn::Dropout(0.5));
  seq.eval();
  Tensor x = sorix::ones({8});
  CHECK(seq.forward(x).is_same(x));
  seq.train();
  CHECK_FALSE(seq.forward(x).is_same(x));
}

TEST_CASE("Bits and Regenerate give the same forward; no graph without grad", "[dropout]") {
  Tensor x = sorix::ones({50001});
  Generator g1(3), g2(3);
  CHECK(bit_identical(F::dropout(x, 0.3, true, &g1, DropoutMask::Bits),
                      F::dropout(x, 0.3, true, &g2, DropoutMask::Regenerate)));
  CHECK_FALSE(F::dropout(x, 0.3).requires_grad());
  Tensor xg = sorix::ones({10});
  xg.requires_grad_(true);
  CHECK(F::dropout(xg, 0.3).requires_grad());
  sorix::NoGradGuard guard;
  CHECK_FALSE(F::dropout(xg, 0.3).requires_grad());
}
