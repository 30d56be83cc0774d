// lr schedulers: hand-computed sequences, the cosine recursion against its closed form, plateau
// logic (patience, cooldown, min_lr, modes), state round trips and argument checks.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
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

TEST_CASE("LambdaLR, MultiStepLR, LinearLR: hand-computed sequences (epoch 0 included)", "[sched]") {
  {
    Fixture f;
    O::LambdaLR s(f.opt, [](std::int64_t e) { return e < 3 ? 0.5 : 2.0; });
    CHECK(f.opt.lr() == 0.1 * 0.5);  // the constructor applies lambda(0)
    for (double factor : {0.5, 0.5, 2.0, 2.0}) {  // epochs 1..4
      s.step();
      CHECK(f.opt.lr() == 0.1 * factor);
    }
  }
  {
    Fixture f;
    O::MultiStepLR s(f.opt, {2, 3, 6}, 0.5);
    CHECK(f.opt.lr() == 0.1);
    std::vector<double> got;
    for (int e = 1; e <= 7; ++e) {
      s.step();
      got.push_back(f.opt.lr());
    }
    CHECK(got == std::vector<double>{0.1, 0.05, 0.025, 0.025, 0.025, 0.0125, 0.0125});
  }
  {
    Fixture f;
    O::LinearLR s(f.opt, 0.5, 1.0, 2);
    CHECK(f.opt.lr() == 0.05);
    s.step();
    CHECK(f.opt.lr() == Approx(0.075).epsilon(1e-15));
    s.step();
    CHECK(f.opt.lr() == Approx(0.1).epsilon(1e-15));
    s.step();
    CHECK(f.opt.lr() == Approx(0.1).epsilon(1e-15));  // past total_iters: unchanged
  }
}

TEST_CASE("OneCycleLR: starts at max_lr / div_factor, peaks at max_lr, ends at the minimum", "[sched]") {
  Fixture f;
  O::OneCycleLR s(f.opt, O::OneCycleLROptions(1.0, 10).pct_start(0.5).div_factor(4).final_div_factor(5));
  CHECK(f.opt.lr() == 0.25);
  CHECK(f.opt.initial_lr() == 0.25);
  double peak = 0;
  for (int e = 1; e <= 9; ++e) {
    s.step();
    peak = std::max(peak, f.opt.lr());
  }
  CHECK(peak == 1.0);  // at step pct_start * total - 1 = 4
  CHECK(f.opt.lr() == Approx(0.05).epsilon(1e-15));
  s.step();  // step total_steps is allowed, as PyTorch's
  CHECK_THROWS_WITH(s.step(), Catch::Contains("OneCycleLR") && Catch::Contains("11") && Catch::Contains("10"));
  CHECK(s.last_epoch() == 10);  // the refused step changed nothing
}

TEST_CASE("SequentialLR: warm-up then decay; schedulers share the initial lr", "[sched]") {
  Fixture f;
  auto warm = std::make_shared<O::LinearLR>(f.opt, 0.5, 1.0, 2);
  auto decay = std::make_shared<O::StepLR>(f.opt, 1, 0.5);
  CHECK(decay->base_lr() == 0.1);  // the initial lr, not the warm-up's 0.05
  O::SequentialLR s(f.opt, {warm, decay}, {2});
  CHECK(f.opt.lr() == 0.05);
  std::vector<double> got;
  for (int e = 1; e <= 4; ++e) {
    s.step();
    got.push_back(f.opt.lr());
  }
  // Epoch 1: warm-up; epoch 2: StepLR restarted at its epoch 0 (base lr); then halving.
  CHECK(got[0] == Approx(0.075).epsilon(1e-15));
  CHECK(got[1] == 0.1);
  CHECK(got[2] == 0.05);
  CHECK(got[3] == 0.025);
  CHECK(s.get_last_lr() == 0.025);
}

TEST_CASE("new schedulers: state_dict round trip continues identically", "[sched]") {
  auto resumes = [](auto make, int k, int n) {
    auto run = [&](Fixture& fx, auto& sched, int steps) {
      std::vector<double> out;
      for (int s = 0; s < steps; ++s) {
        sched.step();
        out.push_back(fx.opt.lr());
      }
      return out;
    };
    Fixture a, b, c;
    auto sa = make(a.opt);
    const std::vector<double> full = run(a, sa, n);
    auto sb = make(b.opt);
    std::vector<double> resumed = run(b, sb, k);
    auto sc = make(c.opt);
    c.opt.load_state_dict(b.opt.state_dict());
    sc.load_state_dict(sb.state_dict());
    const std::vector<double> rest = run(c, sc, n - k);
    resumed.insert(resumed.end(), rest.begin(), rest.end());
    return full == resumed;
  };
  CHECK(resumes([](O::Optimizer& o) { return O::MultiStepLR(o, {2, 4}, 0.5); }, 3, 8));
  CHECK(resumes([](O::Optimizer& o) { return O::LinearLR(o, 0.3, 0.9, 4); }, 2, 7));
  CHECK(resumes([](O::Optimizer& o) { return O::OneCycleLR(o, O::OneCycleLROptions(1.0, 12).three_phase(true)); }, 5, 12));
  CHECK(resumes([](O::Optimizer& o) {
          auto warm = std::make_shared<O::LinearLR>(o, 0.1, 1.0, 3);
          auto decay = std::make_shared<O::ExponentialLR>(o, 0.7);
          return O::SequentialLR(o, {warm, decay}, {3});
        }, 4, 9));
  Fixture f;
  auto warm = std::make_shared<O::LinearLR>(f.opt, 0.1, 1.0, 3);
  auto decay = std::make_shared<O::ExponentialLR>(f.opt, 0.7);
  O::SequentialLR s(f.opt, {warm, decay}, {3});
  const sorix::StateDict sd = s.state_dict();
  CHECK(sd.contains("schedulers.1.gamma"));
  CHECK(sd.contains("schedulers.0.total_iters"));
}

TEST_CASE("new schedulers: invalid arguments throw, naming the scheduler and the value", "[sched]") {
  Fixture f;
  const double nan = std::nan("");
  CHECK_THROWS_WITH(O::MultiStepLR(f.opt, {3, 2}), Catch::Contains("MultiStepLR") && Catch::Contains("[3, 2]"));
  CHECK_THROWS_WITH(O::MultiStepLR(f.opt, {2, 2}), Catch::Contains("strictly increasing"));
  CHECK_THROWS_WITH(O::MultiStepLR(f.opt, {0, 2}), Catch::Contains("MultiStepLR") && Catch::Contains(">= 1"));
  CHECK_THROWS_AS(O::MultiStepLR(f.opt, {1}, nan), std::invalid_argument);
  CHECK_THROWS_WITH(O::LinearLR(f.opt, 0.0), Catch::Contains("LinearLR") && Catch::Contains("start_factor"));
  CHECK_THROWS_WITH(O::LinearLR(f.opt, 0.5, 1.5), Catch::Contains("LinearLR") && Catch::Contains("1.5"));
  CHECK_THROWS_WITH(O::LinearLR(f.opt, 0.5, 1.0, 0), Catch::Contains("total_iters"));
  CHECK_THROWS_AS(O::LambdaLR(f.opt, nullptr), std::invalid_argument);
  CHECK_THROWS_WITH(O::OneCycleLR(f.opt, O::OneCycleLROptions(1.0, 0)),
                    Catch::Contains("OneCycleLR") && Catch::Contains("total_steps") && Catch::Contains("0"));
  CHECK_THROWS_WITH(O::OneCycleLR(f.opt, O::OneCycleLROptions(1.0, 10).pct_start(1.5)), Catch::Contains("pct_start"));
  CHECK_THROWS_AS(O::OneCycleLR(f.opt, O::OneCycleLROptions(nan, 10)), std::invalid_argument);
  CHECK_THROWS_AS(O::OneCycleLR(f.opt, O::OneCycleLROptions(1.0, 10).div_factor(0)), std::invalid_argument);
  auto a = std::make_shared<O::ExponentialLR>(f.opt, 0.9);
  auto b = std::make_shared<O::ExponentialLR>(f.opt, 0.8);
  CHECK_THROWS_WITH(O::SequentialLR(f.opt, {a, b}, {}), Catch::Contains("SequentialLR") && Catch::Contains("milestones"));
  CHECK_THROWS_WITH(O::SequentialLR(f.opt, {a, b}, {0}), Catch::Contains("SequentialLR"));
  Fixture other;
  auto c = std::make_shared<O::ExponentialLR>(other.opt, 0.8);
  CHECK_THROWS_WITH(O::SequentialLR(f.opt, {a, c}, {2}), Catch::Contains("another optimizer"));
}
