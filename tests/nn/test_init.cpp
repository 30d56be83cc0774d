// nn::init (nn/src/init.cpp): gains and fans exactly, uniform bounds exactly, normal std within
// a few percent on large tensors, determinism (seed, explicit generators, thread counts).
#include <catch2/catch.hpp>

#include <cmath>
#include <stdexcept>
#include <vector>

#include <sorix/sorix.hpp>

#include "support/gradcheck.hpp"

using sorix::Shape;
using sorix::Tensor;
namespace init = sorix::nn::init;
namespace testing = sorix::testing;

namespace {
struct Moments {
  double mean, std, max_abs;
};
Moments moments(const Tensor& t) {
  Tensor d = t.to(sorix::float64);
  const double* p = d.data_ptr<double>();
  const auto n = static_cast<std::size_t>(d.numel());
  double s = 0, m = 0;
  for (std::size_t i = 0; i < n; ++i) {
    s += p[i];
    m = std::max(m, std::abs(p[i]));
  }
  const double mean = s / static_cast<double>(n);
  double v = 0;
  for (std::size_t i = 0; i < n; ++i) v += (p[i] - mean) * (p[i] - mean);
  return {mean, std::sqrt(v / static_cast<double>(n)), m};
}
}  // namespace

TEST_CASE("init: calculate_gain as torch.nn.init", "[nn][init]") {
  using NL = init::Nonlinearity;
  CHECK(init::calculate_gain(NL::Linear) == 1.0);
  CHECK(init::calculate_gain(NL::Conv2D) == 1.0);
  CHECK(init::calculate_gain(NL::Sigmoid) == 1.0);
  CHECK(init::calculate_gain(NL::Tanh) == 5.0 / 3.0);
  CHECK(init::calculate_gain(NL::ReLU) == std::sqrt(2.0));
  CHECK(init::calculate_gain(NL::SELU) == 0.75);
  CHECK(init::calculate_gain(NL::LeakyReLU) == std::sqrt(2.0 / (1.0 + 0.01 * 0.01)));
  CHECK(init::calculate_gain(NL::LeakyReLU, 0.0) == std::sqrt(2.0));
  CHECK(init::calculate_gain(NL::LeakyReLU, std::sqrt(5.0)) == Approx(std::sqrt(1.0 / 3.0)).epsilon(1e-15));
  CHECK_THROWS_AS(init::calculate_gain(NL::LeakyReLU, std::nan("")), std::invalid_argument);
}

TEST_CASE("init: fans", "[nn][init]") {
  auto [fi, fo] = init::calculate_fan_in_and_fan_out(sorix::zeros({128, 784}));
  CHECK(fi == 784);
  CHECK(fo == 128);
  auto [ci, co] = init::calculate_fan_in_and_fan_out(sorix::zeros({16, 3, 5, 5}));
  CHECK(ci == 75);
  CHECK(co == 400);
  CHECK_THROWS_AS(init::calculate_fan_in_and_fan_out(sorix::zeros({5})), std::invalid_argument);
  Tensor v = sorix::zeros({5});
  CHECK_THROWS_AS(init::xavier_uniform_(v), std::invalid_argument);
  Tensor empty_fan = sorix::zeros({4, 0});
  CHECK_THROWS_AS(init::kaiming_uniform_(empty_fan), std::invalid_argument);
  Tensor ints = sorix::zeros({3, 3}, sorix::int64);
  CHECK_THROWS_AS(init::normal_(ints), std::invalid_argument);
}

TEST_CASE("init: uniform bounds hold exactly; normal std within a few percent", "[nn][init]") {
  sorix::manual_seed(123);
  for (sorix::Dtype dt : {sorix::float32, sorix::float64}) {
    INFO(sorix::dtype_name(dt));
    Tensor w = sorix::empty({400, 500}, dt);  // 200000 values

    init::uniform_(w, -0.3, 0.7);
    Moments m = moments(w);
    CHECK(m.mean == Approx(0.2).margin(0.005));
    double lo = 1, hi = -1;
    const Tensor wd = w.to(sorix::float64);
    for (std::int64_t i = 0; i < wd.numel(); ++i) {
      lo = std::min(lo, wd.data_ptr<double>()[i]);
      hi = std::max(hi, wd.data_ptr<double>()[i]);
    }
    CHECK(lo >= -0.3);
    CHECK(hi <= 0.7);

    const double xb = std::sqrt(6.0 / 900.0) * 2.0;  // gain 2
    init::xavier_uniform_(w, 2.0);
    m = moments(w);
    CHECK(m.max_abs <= xb);
    CHECK(m.max_abs > 0.999 * xb);
    CHECK(m.std == Approx(xb / std::sqrt(3.0)).epsilon(0.02));

    const double kb = std::sqrt(6.0 / 500.0);  // a = 0: gain sqrt(2), fan_in 500
    init::kaiming_uniform_(w);
    m = moments(w);
    CHECK(m.max_abs <= kb);
    CHECK(m.max_abs > 0.999 * kb);

    const double kb_out = std::sqrt(3.0) * init::calculate_gain(init::Nonlinearity::ReLU) / std::sqrt(400.0);
    init::kaiming_uniform_(w, 0.0, init::FanMode::FanOut, init::Nonlinearity::ReLU);
    CHECK(moments(w).max_abs <= kb_out);
    CHECK(moments(w).max_abs > 0.999 * kb_out);

    init::normal_(w, 1.5, 0.25);
    m = moments(w);
    CHECK(m.mean == Approx(1.5).margin(0.005));
    CHECK(m.std == Approx(0.25).epsilon(0.02));

    init::xavier_normal_(w);
    m = moments(w);
    CHECK(std::abs(m.mean) < 0.001);
    CHECK(m.std == Approx(std::sqrt(2.0 / 900.0)).epsilon(0.02));

    init::kaiming_normal_(w, 0.0, init::FanMode::FanOut, init::Nonlinearity::Tanh);
    m = moments(w);
    CHECK(m.std == Approx((5.0 / 3.0) / std::sqrt(400.0)).epsilon(0.02));

    init::kaiming_normal_(w);
    CHECK(moments(w).std == Approx(std::sqrt(2.0 / 500.0)).epsilon(0.02));
  }
}

TEST_CASE("init: constant fills, on parameters that require grad", "[nn][init]") {
  Tensor p = sorix::empty({3, 4}).requires_grad_(true);
  init::constant_(p, 0.25);
  for (float v : std::vector<float>(p.data_ptr<float>(), p.data_ptr<float>() + 12)) CHECK(v == 0.25f);
  init::zeros_(p);
  CHECK(p.sum().item<double>() == 0.0);
  init::ones_(p);
  CHECK(p.sum().item<double>() == 12.0);
  CHECK(p.requires_grad());
  CHECK(p.is_leaf());
  CHECK_FALSE(p.grad_fn());
  // The random fills also work on a leaf requiring grad with grad mode on (they run no-grad).
  CHECK_NOTHROW(init::kaiming_uniform_(p));
  CHECK_FALSE(p.grad_fn());
}

TEST_CASE("init: deterministic for a seed, per explicit generator, and at any thread count", "[nn][init]") {
  auto draw = [](sorix::Generator* gen) {
    Tensor a = sorix::empty({300, 257});
    Tensor b = sorix::empty({300, 257}, sorix::float64);
    init::xavier_uniform_(a, 1.0, gen);
    init::kaiming_normal_(b, 0.0, init::FanMode::FanIn, init::Nonlinearity::ReLU, gen);
    return std::vector<Tensor>{a, b};
  };
  auto runs = testing::at_thread_counts({1, 8, 2, 3}, [&] {
    sorix::manual_seed(99);
    return draw(nullptr);
  });
  for (std::size_t t = 1; t < runs.size(); ++t) {
    CHECK(testing::bit_identical(runs[0][0], runs[t][0]));
    CHECK(testing::bit_identical(runs[0][1], runs[t][1]));
  }
  // An explicit generator with the same seed gives the same values and leaves the default alone.
  sorix::manual_seed(5);
  const auto before = sorix::default_generator().get_state();
  sorix::Generator gen(99);
  auto own = draw(&gen);
  CHECK(sorix::default_generator().get_state() == before);
  CHECK(testing::bit_identical(own[0], runs[0][0]));
  CHECK(testing::bit_identical(own[1], runs[0][1]));
  // And the stream moves on: a second draw differs.
  auto next = draw(&gen);
  CHECK_FALSE(testing::bit_identical(next[0], own[0]));
}
