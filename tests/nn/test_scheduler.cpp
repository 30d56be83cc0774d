// lr schedulers: hand-computed sequences, the cosine recursion against its closed form, plateau
// logic (patience, cooldown, min_lr, modes), state round trips and argument checks.
#include <catch2/catch.hpp>

#include <cmath>
#include <numbers>
#include <vector>

#include <sorix/sorix.hpp>

namespace {

using sorix::Tensor;
namespace O = sorix::optim;

struct Fixture {
  Tensor p = sorix::zeros({1}).requires_grad_(true);
  O::SGD opt{{p}, O::SGDOptions(0.1)};
};

}  // namespace

TEST_CASE("StepLR and ExponentialLR: hand-computed sequences", "[sched]") {
  Fixture f;
  O::StepLR s(f.opt, 3, 0.5);
  CHECK(s.get_last_lr() == 0.1);
  const std::vector<double> want{0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025};
  for (double w : want) {
    s.step();
    CHECK(f.opt.lr() == Approx(w).epsilon(1e-15));
    CHECK(s.get_last_lr() == f.opt.lr());
  }
  CHECK(s.last_epoch() == 7);
  Fixture g;
  O::ExponentialLR e(g.opt, 0.9);
  for (int k = 1; k <= 5; ++k) {
    e.step();
    CHECK(g.opt.lr() == Approx(0.1 * std::pow(0.9, k)).epsilon(1e-14));
  }
}

TEST_CASE("CosineAnnealingLR: recursion equals the closed form, and restarts as PyTorch", "[sched]") {
  Fixture f;
  const double eta = 0.01, base = 0.1;
  const int T = 7;
  O::CosineAnnealingLR c(f.opt, T, eta);
  for (int e = 1; e <= 3 * T; ++e) {
    c.step();
    // PyTorch's closed form; the recursive form agrees with it over every period.
    const double closed = eta + (base - eta) * (1 + std::cos(std::numbers::pi * e / T)) / 2;
    INFO("epoch " << e);
    CHECK(f.opt.lr() == Approx(closed).epsilon(1e-12).margin(1e-15));
  }
}

TEST_CASE("CosineAnnealingLR: reads the optimizer's lr (chainable)", "[sched]") {
  Fixture f;
  O::CosineAnnealingLR c(f.opt, 10);
  c.step();
  const double lr1 = f.opt.lr();
  f.opt.set_lr(lr1 / 2);  // another scheduler (or the user) changed it
  c.step();
  const double ratio = (1 + std::cos(std::numbers::pi * 2 / 10)) / (1 + std::cos(std::numbers::pi / 10));
  CHECK(f.opt.lr() == Approx(ratio * lr1 / 2).epsilon(1e-14));
}

TEST_CASE("ReduceLROnPlateau: patience, cooldown, min_lr, max mode", "[sched]") {
  Fixture f;
  O::ReduceLROnPlateau s(f.opt, O::PlateauMode::Min, 0.5, 2, 0.0, O::ThresholdMode::Rel, 1, 0.03);
  // improvement, then 3 bad epochs -> reduce on the third (num_bad > patience)
  const std::vector<double> metrics{1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0};
  // epoch 5 is in cooldown; epoch 8 is clamped to min_lr; epoch 12 would go below min_lr: no change
  const std::vector<double> want{0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.03, 0.03, 0.03, 0.03, 0.03};
  for (std::size_t k = 0; k < metrics.size(); ++k) {
    s.step(metrics[k]);
    INFO("epoch " << k + 1);
    CHECK(f.opt.lr() == Approx(want[k]).epsilon(1e-15));
  }
  CHECK(s.best() == 1.0);
  Fixture g;
  O::ReduceLROnPlateau m(g.opt, O::PlateauMode::Max, 0.1, 0, 0.5, O::ThresholdMode::Abs);
  m.step(1.0);  // better than -inf
  CHECK(g.opt.lr() == 0.1);
  m.step(1.4);  // not better by 0.5: one bad epoch > patience 0
  CHECK(g.opt.lr() == Approx(0.01).epsilon(1e-15));
  m.step(std::nan(""));  // NaN is never better
  CHECK(g.opt.lr() == Approx(0.001).epsilon(1e-15));
}

TEST_CASE("schedulers: state_dict round trip continues identically", "[sched]") {
  auto sequence = [](auto make, int k, int n) {
    Fixture a;
    auto sa = make(a.opt);
    std::vector<double> full;
    for (int s = 0; s < n; ++s) {
      sa.step();
      full.push_back(a.opt.lr());
    }
    Fixture b;
    auto sb = make(b.opt);
    for (int s = 0; s < k; ++s) sb.step();
    sorix::StateDict osd = b.opt.state_dict(), ssd = sb.state_dict();
    Fixture c;
    auto sc = make(c.opt);
    c.opt.load_state_dict(osd);
    sc.load_state_dict(ssd);
    std::vector<double> resumed(full.begin(), full.begin() + k);
    for (int s = k; s < n; ++s) {
      sc.step();
      resumed.push_back(c.opt.lr());
    }
    return full == resumed;
  };
  CHECK(sequence([](O::Optimizer& o) { return O::StepLR(o, 2, 0.3); }, 3, 9));
  CHECK(sequence([](O::Optimizer& o) { return O::ExponentialLR(o, 0.8); }, 4, 9));
  CHECK(sequence([](O::Optimizer& o) { return O::CosineAnnealingLR(o, 4, 0.001); }, 5, 14));

  Fixture a;
  O::ReduceLROnPlateau pa(a.opt, O::PlateauMode::Min, 0.5, 1);
  for (double m : {3.0, 2.0, 2.5}) pa.step(m);
  Fixture c;
  O::ReduceLROnPlateau pc(c.opt, O::PlateauMode::Min, 0.5, 1);
  pc.load_state_dict(pa.state_dict());
  c.opt.load_state_dict(a.opt.state_dict());
  CHECK(pc.best() == 2.0);
  CHECK(pc.num_bad_epochs() == 1);
  pa.step(2.5);
  pc.step(2.5);
  CHECK(a.opt.lr() == 0.05);
  CHECK(c.opt.lr() == a.opt.lr());

  sorix::StateDict bad;
  bad.insert("last_epoch", sorix::scalar_tensor(1, sorix::float64));
  CHECK_THROWS_WITH(pc.load_state_dict(bad), Catch::Contains("last_epoch"));
  CHECK(pc.last_epoch() == 4);  // unchanged by the failed load
}

TEST_CASE("schedulers: invalid arguments throw", "[sched]") {
  Fixture f;
  CHECK_THROWS_AS(O::StepLR(f.opt, 0), std::invalid_argument);
  CHECK_THROWS_AS(O::CosineAnnealingLR(f.opt, 0), std::invalid_argument);
  CHECK_THROWS_AS(O::ReduceLROnPlateau(f.opt, O::PlateauMode::Min, 1.0), std::invalid_argument);
  CHECK_THROWS_AS(O::ReduceLROnPlateau(f.opt, O::PlateauMode::Min, 0.1, -1), std::invalid_argument);
}
