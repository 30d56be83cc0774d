// Losses: forward values against plain <cmath> references (extreme logits included), float64
// gradchecks (every reduction, index and probability targets, weights), double backward of the
// fused cross entropy, errors, and thread invariance of the fused kernel.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <sorix/sorix.hpp>

#include "support/gradcheck.hpp"
#include "support/parity.hpp"

namespace {

using sorix::Tensor;
using sorix::nn::Reduction;
namespace F = sorix::nn::functional;
using sorix::testing::gradcheck;
using sorix::testing::randn_f64;

const std::vector<Reduction> kAll{Reduction::None, Reduction::Mean, Reduction::Sum};

double at(const Tensor& t, std::int64_t i) { return t.to(sorix::float64).data_ptr<double>()[i]; }

// Reduces per-element references as the loss does.
double reduce_ref(const std::vector<double>& v, Reduction r, double denom) {
  double s = 0;
  for (double x : v) s += x;
  return r == Reduction::Mean ? s / denom : s;
}

// Plain reference of cross entropy with class indices.
std::vector<double> ce_rows_ref(const Tensor& x, const std::vector<std::int64_t>& t, const std::vector<double>& w) {
  const std::int64_t N = x.size(0), C = x.size(1);
  std::vector<double> out;
  for (std::int64_t i = 0; i < N; ++i) {
    double m = -INFINITY;
    for (std::int64_t c = 0; c < C; ++c) m = std::max(m, at(x, i * C + c));
    double s = 0;
    for (std::int64_t c = 0; c < C; ++c) s += std::exp(at(x, i * C + c) - m);
    const double lp = at(x, i * C + t[i]) - m - std::log(s);
    out.push_back(-(w.empty() ? 1.0 : w[t[i]]) * lp);
  }
  return out;
}

}  // namespace

TEST_CASE("mse_loss: values against a scalar reference", "[loss]") {
  Tensor x = randn_f64({3, 4}, 1, false), y = randn_f64({3, 4}, 2, false);
  std::vector<double> ref;
  for (std::int64_t i = 0; i < 12; ++i) ref.push_back((at(x, i) - at(y, i)) * (at(x, i) - at(y, i)));
  Tensor none = F::mse_loss(x, y, Reduction::None);
  REQUIRE(none.shape() == sorix::Shape{3, 4});
  for (std::int64_t i = 0; i < 12; ++i) CHECK(at(none, i) == Approx(ref[i]).epsilon(1e-14));
  CHECK(F::mse_loss(x, y).item<double>() == Approx(reduce_ref(ref, Reduction::Mean, 12)).epsilon(1e-14));
  sorix::nn::MSELoss sum_loss(sorix::nn::MSELossOptions().reduction(Reduction::Sum));
  CHECK(sum_loss(x, y).item<double>() == Approx(reduce_ref(ref, Reduction::Sum, 1)).epsilon(1e-14));
  CHECK(F::mse_loss(x, y).dim() == 0);
  CHECK_THROWS_AS(F::mse_loss(x, randn_f64({4, 3}, 2, false)), std::invalid_argument);
}

TEST_CASE("mse_loss: gradcheck every reduction", "[loss]") {
  for (Reduction r : kAll) {
    auto res = gradcheck([r](const std::vector<Tensor>& in) { return F::mse_loss(in[0], in[1], r); },
                         {randn_f64({3, 4}, 1), randn_f64({3, 4}, 2)});
    INFO(sorix::nn::reduction_name(r) << ": " << res.message);
    CHECK(res.ok);
  }
}

TEST_CASE("bce_with_logits: values, extreme logits stay finite", "[loss]") {
  Tensor x = sorix::tensor({-1000.0, 1000.0, -1000.0, 1000.0, 0.0, 2.5, -3.0, 0.25});
  Tensor y = sorix::tensor({0.0, 1.0, 1.0, 0.0, 0.5, 0.3, 0.9, 1.0});
  Tensor l = F::binary_cross_entropy_with_logits(x, y, Tensor(), Tensor(), Reduction::None);
  for (std::int64_t i = 0; i < 8; ++i) {
    const double xi = at(x, i), yi = at(y, i);
    const double want = std::max(xi, 0.0) - xi * yi + std::log1p(std::exp(-std::abs(xi)));
    INFO("element " << i);
    CHECK(std::isfinite(at(l, i)));
    CHECK(at(l, i) == Approx(want).epsilon(1e-14).margin(1e-15));
  }
  CHECK(at(l, 0) == 0.0);
  CHECK(at(l, 2) == 1000.0);
  // Gradient sigmoid(x) - y: exact 0 / -1 / 1 at the extremes.
  Tensor xg = x.clone().requires_grad_(true);
  F::binary_cross_entropy_with_logits(xg, y, Tensor(), Tensor(), Reduction::Sum).backward();
  CHECK(at(xg.grad(), 0) == 0.0);
  CHECK(at(xg.grad(), 2) == -1.0);
  CHECK(at(xg.grad(), 3) == 1.0);
  CHECK(at(xg.grad(), 5) == Approx(1.0 / (1.0 + std::exp(-2.5)) - 0.3).epsilon(1e-14));
}

TEST_CASE("bce_with_logits: weight and pos_weight against a reference", "[loss]") {
  Tensor x = randn_f64({2, 3}, 3, false), y = sorix::sigmoid(randn_f64({2, 3}, 4, false));
  Tensor w = sorix::tensor({0.5, 2.0, 1.5}), pw = sorix::tensor({3.0, 0.25, 1.0});
  sorix::nn::BCEWithLogitsLoss loss(sorix::nn::BCEWithLogitsLossOptions().weight(w).pos_weight(pw));
  double total = 0;
  for (std::int64_t i = 0; i < 6; ++i) {
    const double xi = at(x, i), yi = at(y, i), p = at(pw, i % 3);
    const double sp_neg = std::log1p(std::exp(-std::abs(xi))) + std::max(-xi, 0.0);  // softplus(-x)
    total += at(w, i % 3) * ((1 - yi) * xi + (1 + (p - 1) * yi) * sp_neg);
  }
  CHECK(loss(x, y).item<double>() == Approx(total / 6).epsilon(1e-13));
}

TEST_CASE("bce_with_logits: gradcheck in every argument and reduction", "[loss]") {
  for (Reduction r : kAll) {
    auto res = gradcheck(
        [r](const std::vector<Tensor>& in) {
          return F::binary_cross_entropy_with_logits(in[0], sorix::sigmoid(in[1]), in[2], in[3], r);
        },
        {randn_f64({3, 4}, 1), randn_f64({3, 4}, 2), sorix::testing::positive_f64({4}, 3),
         sorix::testing::positive_f64({4}, 4)});
    INFO(sorix::nn::reduction_name(r) << ": " << res.message);
    CHECK(res.ok);
  }
  // Broadcast weight [3, 1].
  auto res = gradcheck(
      [](const std::vector<Tensor>& in) {
        return F::binary_cross_entropy_with_logits(in[0], sorix::sigmoid(in[1]), in[2], Tensor(), Reduction::Mean);
      },
      {randn_f64({3, 4}, 5), randn_f64({3, 4}, 6), sorix::testing::positive_f64({3, 1}, 7)});
  INFO(res.message);
  CHECK(res.ok);
}

TEST_CASE("bce_with_logits: errors name the shapes", "[loss]") {
  Tensor x = randn_f64({2, 3}, 1, false);
  CHECK_THROWS_WITH(F::binary_cross_entropy_with_logits(x, randn_f64({3, 2}, 1, false)),
                    Catch::Contains("[3, 2]") && Catch::Contains("[2, 3]"));
  CHECK_THROWS_AS(F::binary_cross_entropy_with_logits(x, x, randn_f64({4}, 1, false)), std::invalid_argument);
  CHECK_THROWS_AS(F::binary_cross_entropy_with_logits(x, x, Tensor(), randn_f64({2}, 1, false)), std::invalid_argument);
}

TEST_CASE("cross_entropy: class indices against a reference, every reduction, weights", "[loss]") {
  Tensor x = randn_f64({5, 4}, 8, false) * 3.0;
  const std::vector<std::int64_t> t{1, 0, 3, 2, 1};
  Tensor target = sorix::tensor({1, 0, 3, 2, 1});
  const std::vector<double> w{0.5, 2.0, 1.0, 3.0};
  Tensor wt = sorix::tensor({0.5, 2.0, 1.0, 3.0});
  for (bool weighted : {false, true}) {
    const auto rows = ce_rows_ref(x, t, weighted ? w : std::vector<double>{});
    double wsum = 0;
    for (auto k : t) wsum += weighted ? w[k] : 1.0;
    Tensor none = F::cross_entropy(x, target, weighted ? wt : Tensor(), Reduction::None);
    REQUIRE(none.shape() == sorix::Shape{5});
    for (int i = 0; i < 5; ++i) CHECK(at(none, i) == Approx(rows[i]).epsilon(1e-13));
    CHECK(F::cross_entropy(x, target, weighted ? wt : Tensor(), Reduction::Sum).item<double>() ==
          Approx(reduce_ref(rows, Reduction::Sum, 1)).epsilon(1e-13));
    // Mean divides by the sum of the targets' weights (PyTorch's nll_loss).
    CHECK(F::cross_entropy(x, target, weighted ? wt : Tensor()).item<double>() ==
          Approx(reduce_ref(rows, Reduction::Mean, wsum)).epsilon(1e-13));
  }
  sorix::nn::CrossEntropyLoss mod(sorix::nn::CrossEntropyLossOptions().weight(wt).reduction(Reduction::Sum));
  CHECK(mod(x, target).item<double>() == F::cross_entropy(x, target, wt, Reduction::Sum).item<double>());
}

TEST_CASE("cross_entropy: probability targets against a reference", "[loss]") {
  Tensor x = randn_f64({3, 4}, 2, false), p = sorix::softmax(randn_f64({3, 4}, 3, false), 1);
  Tensor w = sorix::tensor({0.5, 2.0, 1.0, 3.0});
  double total = 0;
  for (std::int64_t i = 0; i < 3; ++i) {
    double m = -INFINITY, s = 0;
    for (int c = 0; c < 4; ++c) m = std::max(m, at(x, i * 4 + c));
    for (int c = 0; c < 4; ++c) s += std::exp(at(x, i * 4 + c) - m);
    for (int c = 0; c < 4; ++c) total -= at(w, c) * at(p, i * 4 + c) * (at(x, i * 4 + c) - m - std::log(s));
  }
  // Mean divides by N for probability targets (PyTorch).
  CHECK(F::cross_entropy(x, p, w).item<double>() == Approx(total / 3).epsilon(1e-13));
  // One-hot probabilities equal class indices (without weights).
  Tensor onehot = sorix::tensor({{0.0, 1.0, 0.0, 0.0}, {1.0, 0.0, 0.0, 0.0}, {0.0, 0.0, 0.0, 1.0}});
  CHECK(F::cross_entropy(x, onehot).item<double>() ==
        Approx(F::cross_entropy(x, sorix::tensor({1, 0, 3})).item<double>()).epsilon(1e-14));
}

TEST_CASE("cross_entropy: extreme logits are stable", "[loss]") {
  Tensor x = sorix::tensor({{1000.0, -1000.0, 0.0}, {-1000.0, -1000.0, 1000.0}, {1000.0, 1000.0, -1000.0}})
                 .requires_grad_(true);
  Tensor l = F::cross_entropy(x, sorix::tensor({0, 0, 1}), Tensor(), Reduction::None);
  CHECK(at(l, 0) == 0.0);
  CHECK(at(l, 1) == 2000.0);
  CHECK(at(l, 2) == Approx(std::log(2.0)).epsilon(1e-15));
  l.sum().backward();
  const std::vector<double> want{0, 0, 0, -1, 0, 1, 0.5, -0.5, 0};
  for (int i = 0; i < 9; ++i) CHECK(at(x.grad(), i) == Approx(want[i]).margin(1e-15));
  Tensor xf = sorix::tensor({{1000.0f, -1000.0f}, {-1000.0f, 1000.0f}});
  CHECK(F::cross_entropy(xf, sorix::tensor({0, 0})).item<float>() == 1000.0f);
}

TEST_CASE("cross_entropy: gradcheck (indices, probabilities, weights, reductions, unbatched)", "[loss]") {
  Tensor idx = sorix::tensor({2, 0, 3, 3, 1});
  Tensor w = sorix::testing::positive_f64({4}, 9, false);
  for (Reduction r : kAll) {
    for (bool weighted : {false, true}) {
      INFO(sorix::nn::reduction_name(r) << (weighted ? " weighted" : ""));
      auto a = gradcheck([&](const std::vector<Tensor>& in) { return F::cross_entropy(in[0], idx, weighted ? w : Tensor(), r); },
                         {randn_f64({5, 4}, 1)});
      INFO(a.message);
      CHECK(a.ok);
      auto b = gradcheck(
          [&](const std::vector<Tensor>& in) {
            return F::cross_entropy(in[0], sorix::softmax(in[1], 1), weighted ? w : Tensor(), r);
          },
          {randn_f64({5, 4}, 2), randn_f64({5, 4}, 3)});
      INFO(b.message);
      CHECK(b.ok);
    }
  }
  auto u = gradcheck([](const std::vector<Tensor>& in) {
    Tensor t = sorix::tensor({2}).reshape({});
    return F::cross_entropy(in[0], t, Tensor(), Reduction::None);
  }, {randn_f64({4}, 4)});
  INFO(u.message);
  CHECK(u.ok);
}

TEST_CASE("cross_entropy: double backward through the hand-written gradient", "[loss]") {
  Tensor idx = sorix::tensor({2, 0, 3});
  Tensor w = sorix::testing::positive_f64({4}, 9, false);
  for (Reduction r : kAll) {
    INFO(sorix::nn::reduction_name(r));
    // f(x) = d/dx sum(loss * v): its gradient needs the backward of the backward.
    auto res = gradcheck(
        [&](const std::vector<Tensor>& in) {
          Tensor l = F::cross_entropy(in[0], idx, w, r);
          Tensor v = l.dim() == 0 ? sorix::scalar_tensor(1.3, sorix::float64) : randn_f64(l.shape(), 7, false);
          return sorix::autograd::grad({(l * v).sum()}, {in[0]}, {}, true)[0];
        },
        {randn_f64({3, 4}, 1)});
    INFO(res.message);
    CHECK(res.ok);
    auto res2 = gradcheck(
        [&](const std::vector<Tensor>& in) {
          Tensor l = F::cross_entropy(in[0], sorix::softmax(in[1], 1), w, r);
          auto g = sorix::autograd::grad({l.sum()}, {in[0], in[1]}, {}, true);
          return g[0] * g[1];
        },
        {randn_f64({3, 4}, 2), randn_f64({3, 4}, 3)});
    INFO(res2.message);
    CHECK(res2.ok);
  }
}

TEST_CASE("cross_entropy: errors name the index and the shapes", "[loss]") {
  Tensor x = randn_f64({3, 4}, 1, false);
  CHECK_THROWS_AS(F::cross_entropy(x, sorix::tensor({0, 4, 1})), std::out_of_range);
  CHECK_THROWS_WITH(F::cross_entropy(x, sorix::tensor({0, 4, 1})),
                    Catch::Contains("cross_entropy") && Catch::Contains("4") && Catch::Contains("position 1"));
  CHECK_THROWS_AS(F::cross_entropy(x, sorix::tensor({0, -1, 1})), std::out_of_range);
  CHECK_THROWS_WITH(F::cross_entropy(x, sorix::tensor({0, 1})), Catch::Contains("[2]") && Catch::Contains("[3, 4]"));
  CHECK_THROWS_WITH(F::cross_entropy(x, randn_f64({3, 5}, 1, false)), Catch::Contains("[3, 5]"));
  CHECK_THROWS_AS(F::cross_entropy(x, sorix::tensor({0, 1, 1}), sorix::tensor({1.0, 2.0})), std::invalid_argument);
  CHECK_THROWS_AS(F::cross_entropy(randn_f64({2, 3, 4}, 1, false), sorix::tensor({0, 1})), std::invalid_argument);
  CHECK_THROWS_AS(F::cross_entropy(x, sorix::ones({3, 4}, sorix::float32)), std::invalid_argument);
}

TEST_CASE("cross_entropy: float32 agrees with float64, empty batch", "[loss]") {
  Tensor x = randn_f64({6, 5}, 3, false);
  Tensor t = sorix::tensor({4, 0, 1, 2, 3, 4});
  CHECK(F::cross_entropy(x.to(sorix::float32), t).item<float>() ==
        Approx(F::cross_entropy(x, t).item<double>()).epsilon(1e-6));
  Tensor e = sorix::zeros({0, 3}, sorix::float64);
  Tensor et = sorix::zeros({0}, sorix::int64);
  CHECK(std::isnan(F::cross_entropy(e, et).item<double>()));
  CHECK(F::cross_entropy(e, et, Tensor(), Reduction::Sum).item<double>() == 0.0);
}

TEST_CASE("cross_entropy: forward and backward bit-identical at 1, 2, 3, 8 threads", "[loss][determinism]") {
  for (std::int64_t C : {10, 3, 40000}) {
    const std::int64_t N = C == 40000 ? 3 : 30011;  // many rows over the grain, or rows longer than a chunk
    Tensor x = sorix::randn({N, C}, sorix::float32);
    Tensor t = sorix::randint(0, C, {N});
    Tensor w = sorix::rand({C}, sorix::float32);
    for (Reduction r : kAll) {
      auto runs = sorix::testing::at_thread_counts({1, 2, 3, 8}, [&] {
        Tensor xi = x.detach().clone().requires_grad_(true);
        Tensor l = F::cross_entropy(xi, t, w, r);
        (r == Reduction::None ? l.sum() : l).backward();
        return std::make_pair(l.detach(), xi.grad());
      });
      for (std::size_t k = 1; k < runs.size(); ++k) {
        CHECK(sorix::testing::bit_identical(runs[0].first, runs[k].first));
        CHECK(sorix::testing::bit_identical(runs[0].second, runs[k].second));
      }
    }
  }
}

// ---- NLL, L1, smooth L1, Huber, BCE, KL divergence; cross entropy's ignore_index and
// label_smoothing: PyTorch reference data (scripts/gen_parity_layers.py), gradchecks, thread
// invariance, errors and edge cases.

namespace {

using Inputs = std::map<std::string, Tensor>;
using ParityLoss = std::function<Tensor(const Inputs&, const parity::Case&, const std::string& reduction)>;

// Every reduction of tests/data/parity_layers_loss_<name>_<dtype>.txt: values and the gradients
// of the inputs named in `diff`, for float64 and float32. grad_floor: see parity::check_matches.
void check_loss_parity(const std::string& name, const std::vector<std::string>& diff,
                       const std::vector<std::string>& reductions, const ParityLoss& fn, double grad_floor = 1e-3) {
  for (sorix::Dtype dt : parity::kDtypes) {
    const parity::Case c = parity::load("loss_" + name, dt);
    for (const std::string& r : reductions) {
      INFO(name << " " << sorix::dtype_name(dt) << " reduction " << r);
      Inputs in = c.tensors;
      for (const auto& k : diff) in[k] = parity::param(c.at(k));
      Tensor y = fn(in, c, r);
      parity::check_matches(y, c.at("y_" + r), "y_" + r);
      y.backward(c.at("gy_" + r));
      for (const auto& k : diff) {
        parity::check_matches(in.at(k).grad(), c.at("d" + k + "_" + r), "d" + k + "_" + r, grad_floor);
      }
    }
  }
}

const std::vector<std::string> kNames{"none", "mean", "sum"};

double scalar_opt(const parity::Case& c, const char* name) { return c.scalars.at(name); }

}  // namespace

TEST_CASE("l1, smooth_l1, huber: values and gradients match PyTorch", "[loss][parity]") {
  check_loss_parity("l1", {"x", "target"}, kNames, [](const Inputs& in, const parity::Case&, const std::string& r) {
    return sorix::nn::L1Loss(sorix::nn::L1LossOptions().reduction(r))(in.at("x"), in.at("target"));
  });
  for (const char* name : {"smooth_l1", "smooth_l1_beta", "smooth_l1_beta0"}) {
    check_loss_parity(name, {"x", "target"}, kNames, [](const Inputs& in, const parity::Case& c, const std::string& r) {
      return F::smooth_l1_loss(in.at("x"), in.at("target"),
                               F::SmoothL1LossFuncOptions().beta(scalar_opt(c, "beta")).reduction(r));
    });
  }
  for (const char* name : {"huber", "huber_delta", "huber_delta_big"}) {
    check_loss_parity(name, {"x", "target"}, kNames, [](const Inputs& in, const parity::Case& c, const std::string& r) {
      sorix::nn::HuberLoss loss(sorix::nn::HuberLossOptions().delta(scalar_opt(c, "delta")).reduction(r));
      return loss(in.at("x"), in.at("target"));
    });
  }
}

TEST_CASE("binary_cross_entropy: values and gradients match PyTorch", "[loss][parity]") {
  check_loss_parity("bce", {"x", "target"}, kNames, [](const Inputs& in, const parity::Case&, const std::string& r) {
    return F::binary_cross_entropy(in.at("x"), in.at("target"), F::BinaryCrossEntropyFuncOptions().reduction(r));
  });
  check_loss_parity("bce_weight", {"x", "target"}, kNames, [](const Inputs& in, const parity::Case&, const std::string& r) {
    sorix::nn::BCELoss loss(sorix::nn::BCELossOptions().weight(in.at("weight")).reduction(r));
    return loss(in.at("x"), in.at("target"));
  });
}

TEST_CASE("kl_div: every reduction incl. batchmean, log_target, match PyTorch", "[loss][parity]") {
  const std::vector<std::string> reductions{"none", "batchmean", "mean", "sum"};
  for (const char* name : {"kl_div", "kl_div_log_target"}) {
    check_loss_parity(name, {"x", "target"}, reductions, [](const Inputs& in, const parity::Case& c, const std::string& r) {
      sorix::nn::KLDivLoss loss(sorix::nn::KLDivLossOptions().reduction(r).log_target(c.scalars.count("log_target") > 0));
      return loss(in.at("x"), in.at("target"));
    });
  }
}

TEST_CASE("nll_loss: [N, C], weight + ignore_index, [N, C, d1, d2], one sample match PyTorch", "[loss][parity]") {
  for (const char* name : {"nll", "nll_weight_ignore", "nll_kdim", "nll_unbatched"}) {
    check_loss_parity(name, {"x"}, kNames, [](const Inputs& in, const parity::Case& c, const std::string& r) {
      auto o = F::NLLLossFuncOptions().reduction(r);
      if (in.count("weight")) o.weight(in.at("weight"));
      if (c.scalars.count("ignore_index")) o.ignore_index(static_cast<std::int64_t>(scalar_opt(c, "ignore_index")));
      return sorix::nn::NLLLoss(o)(in.at("x"), in.at("target"));
    });
  }
}

TEST_CASE("cross_entropy: ignore_index and label_smoothing match PyTorch", "[loss][parity]") {
  for (const char* name : {"ce_ignore", "ce_smooth_weight_ignore", "ce_kdim"}) {
    check_loss_parity(name, {"x"}, kNames, [](const Inputs& in, const parity::Case& c, const std::string& r) {
      auto o = F::CrossEntropyFuncOptions()
                   .ignore_index(static_cast<std::int64_t>(scalar_opt(c, "ignore_index")))
                   .label_smoothing(scalar_opt(c, "label_smoothing"))
                   .reduction(r);
      if (in.count("weight")) o.weight(in.at("weight"));
      return sorix::nn::CrossEntropyLoss(o)(in.at("x"), in.at("target"));
    });
  }
  // Probability targets (softmax of the stored values, as the generator does). The target's
  // gradient leaves softmax's backward as a difference of terms up to 100x larger than some
  // elements: float32 rounding is relative to those terms (the floor 1e-2).
  check_loss_parity("ce_smooth_probs", {"x", "target"}, kNames,
                    [](const Inputs& in, const parity::Case& c, const std::string& r) {
                      return F::cross_entropy(in.at("x"), sorix::softmax(in.at("target"), 1),
                                              F::CrossEntropyFuncOptions()
                                                  .weight(in.at("weight"))
                                                  .label_smoothing(scalar_opt(c, "label_smoothing"))
                                                  .reduction(r));
                    },
                    1e-2);
  check_loss_parity("ce_kdim_probs", {"x", "target"}, kNames, [](const Inputs& in, const parity::Case&, const std::string& r) {
    return F::cross_entropy(in.at("x"), sorix::softmax(in.at("target"), 1), F::CrossEntropyFuncOptions().reduction(r));
  });
}

TEST_CASE("new losses: float64 gradcheck in every argument and reduction", "[loss]") {
  using sorix::testing::positive_f64;
  auto run = [](const char* what, const sorix::testing::TensorFn& f, std::vector<Tensor> in) {
    auto res = gradcheck(f, std::move(in));
    INFO(what << ": " << res.message);
    CHECK(res.ok);
  };
  for (const std::string& r : kNames) {
    INFO("reduction " << r);
    run("l1", [&](const std::vector<Tensor>& in) { return F::l1_loss(in[0], in[1], F::L1LossFuncOptions().reduction(r)); },
        {randn_f64({3, 4}, 1), randn_f64({3, 4}, 2)});
    for (double beta : {0.0, 0.6, 1.0}) {
      INFO("beta " << beta);
      run("smooth_l1",
          [&](const std::vector<Tensor>& in) {
            return F::smooth_l1_loss(in[0], in[1], F::SmoothL1LossFuncOptions().beta(beta).reduction(r));
          },
          {randn_f64({3, 4}, 1), randn_f64({3, 4}, 2)});
    }
    for (double delta : {0.7, 2.5}) {
      INFO("delta " << delta);
      run("huber",
          [&](const std::vector<Tensor>& in) {
            return F::huber_loss(in[0], in[1], F::HuberLossFuncOptions().delta(delta).reduction(r));
          },
          {randn_f64({3, 4}, 1), randn_f64({3, 4}, 2)});
    }
    Tensor bw = positive_f64({4}, 5, false);
    run("bce",
        [&](const std::vector<Tensor>& in) {
          return F::binary_cross_entropy(sorix::sigmoid(in[0]), sorix::sigmoid(in[1]),
                                         F::BinaryCrossEntropyFuncOptions().weight(bw).reduction(r));
        },
        {randn_f64({3, 4}, 3), randn_f64({3, 4}, 4)});
    for (const std::string& kr : {r, std::string("batchmean")}) {
      for (bool log_target : {false, true}) {
        INFO("kl_div " << kr << (log_target ? " log_target" : ""));
        run("kl_div",
            [&](const std::vector<Tensor>& in) {
              Tensor y = log_target ? sorix::log_softmax(in[1], 1) : sorix::softmax(in[1], 1);
              return F::kl_div(sorix::log_softmax(in[0], 1), y, F::KLDivFuncOptions().reduction(kr).log_target(log_target));
            },
            {randn_f64({3, 4}, 5), randn_f64({3, 4}, 6)});
      }
    }
    Tensor cw = positive_f64({4}, 9, false);
    Tensor t = sorix::tensor({2, 0, 3, 3, 1});
    run("nll",
        [&](const std::vector<Tensor>& in) {
          return F::nll_loss(in[0], t, F::NLLLossFuncOptions().weight(cw).ignore_index(3).reduction(r));
        },
        {randn_f64({5, 4}, 7)});
    Tensor tk = sorix::tensor({2, 0, 3, 1, 1, 0}).reshape({2, 3});
    run("nll [N, C, d]", [&](const std::vector<Tensor>& in) { return F::nll_loss(in[0], tk, F::NLLLossFuncOptions().reduction(r)); },
        {randn_f64({2, 4, 3}, 8)});
    for (double e : {0.0, 0.2}) {
      INFO("label_smoothing " << e);
      run("cross_entropy indices",
          [&](const std::vector<Tensor>& in) {
            return F::cross_entropy(
                in[0], t, F::CrossEntropyFuncOptions().weight(cw).ignore_index(0).label_smoothing(e).reduction(r));
          },
          {randn_f64({5, 4}, 10)});
      run("cross_entropy probabilities",
          [&](const std::vector<Tensor>& in) {
            return F::cross_entropy(in[0], sorix::softmax(in[1], 1),
                                    F::CrossEntropyFuncOptions().weight(cw).label_smoothing(e).reduction(r));
          },
          {randn_f64({5, 4}, 11), randn_f64({5, 4}, 12)});
      run("cross_entropy [N, C, d]",
          [&](const std::vector<Tensor>& in) {
            return F::cross_entropy(in[0], tk, F::CrossEntropyFuncOptions().ignore_index(1).label_smoothing(e).reduction(r));
          },
          {randn_f64({2, 4, 3}, 13)});
    }
  }
}

TEST_CASE("bce and cross entropy with smoothing: double backward through the hand-written gradients", "[loss]") {
  Tensor t = sorix::tensor({2, 0, 3});
  Tensor cw = sorix::testing::positive_f64({4}, 9, false);
  for (const std::string& r : kNames) {
    INFO(r);
    auto a = gradcheck(
        [&](const std::vector<Tensor>& in) {
          Tensor l = F::cross_entropy(in[0], t, F::CrossEntropyFuncOptions().weight(cw).ignore_index(0).label_smoothing(0.2).reduction(r));
          return sorix::autograd::grad({l.sum() * 1.3}, {in[0]}, {}, true)[0];
        },
        {randn_f64({3, 4}, 1)});
    INFO(a.message);
    CHECK(a.ok);
    auto b = gradcheck(
        [&](const std::vector<Tensor>& in) {
          Tensor l = F::cross_entropy(in[0], sorix::softmax(in[1], 1),
                                      F::CrossEntropyFuncOptions().weight(cw).label_smoothing(0.3).reduction(r));
          auto g = sorix::autograd::grad({l.sum()}, {in[0], in[1]}, {}, true);
          return g[0] * g[1];
        },
        {randn_f64({3, 4}, 2), randn_f64({3, 4}, 3)});
    INFO(b.message);
    CHECK(b.ok);
    auto c = gradcheck(
        [&](const std::vector<Tensor>& in) {
          Tensor l = F::binary_cross_entropy(sorix::sigmoid(in[0]), sorix::sigmoid(in[1]),
                                             F::BinaryCrossEntropyFuncOptions().reduction(r));
          auto g = sorix::autograd::grad({l.sum()}, {in[0], in[1]}, {}, true);
          return g[0] * g[1];
        },
        {randn_f64({3, 4}, 4), randn_f64({3, 4}, 5)});
    INFO(c.message);
    CHECK(c.ok);
  }
}

TEST_CASE("new losses: forward and backward bit-identical at 1, 2, 3 threads", "[loss][determinism]") {
  const std::int64_t N = 30011, C = 7;  // rows and elements well over the parallel grain
  Tensor t = sorix::randint(0, C, {N});
  Tensor w = sorix::rand({C}, sorix::float32) + 0.5;
  Tensor a = sorix::randn({N, C}, sorix::float32), b = sorix::randn({N, C}, sorix::float32);
  Tensor q = sorix::rand({N, C}, sorix::float32);
  using Fn = std::function<Tensor(const Tensor&, const std::string&)>;
  const std::vector<std::pair<const char*, Fn>> losses{
      {"l1", [&](const Tensor& x, const std::string& r) { return F::l1_loss(x, b, F::L1LossFuncOptions().reduction(r)); }},
      {"smooth_l1", [&](const Tensor& x, const std::string& r) {
         return F::smooth_l1_loss(x, b, F::SmoothL1LossFuncOptions().beta(0.5).reduction(r));
       }},
      {"huber", [&](const Tensor& x, const std::string& r) {
         return F::huber_loss(x, b, F::HuberLossFuncOptions().delta(0.8).reduction(r));
       }},
      {"bce", [&](const Tensor& x, const std::string& r) {
         return F::binary_cross_entropy(sorix::sigmoid(x), q, F::BinaryCrossEntropyFuncOptions().weight(w).reduction(r));
       }},
      {"kl_div", [&](const Tensor& x, const std::string& r) {
         return F::kl_div(sorix::log_softmax(x, 1), sorix::softmax(b, 1), F::KLDivFuncOptions().reduction(r == "mean" ? "batchmean" : r));
       }},
      {"nll", [&](const Tensor& x, const std::string& r) {
         return F::nll_loss(sorix::log_softmax(x, 1), t, F::NLLLossFuncOptions().weight(w).ignore_index(3).reduction(r));
       }},
      {"cross_entropy", [&](const Tensor& x, const std::string& r) {
         return F::cross_entropy(x, t, F::CrossEntropyFuncOptions().weight(w).ignore_index(3).label_smoothing(0.1).reduction(r));
       }},
  };
  for (const auto& [name, fn] : losses) {
    for (const std::string& r : kNames) {
      INFO(name << " " << r);
      auto runs = sorix::testing::at_thread_counts({1, 2, 3}, [&, fn = fn] {
        Tensor x = a.detach().clone().requires_grad_(true);
        Tensor l = fn(x, r);
        (r == "none" ? l.sum() : l).backward();
        return std::make_pair(l.detach(), x.grad());
      });
      for (std::size_t k = 1; k < runs.size(); ++k) {
        CHECK(sorix::testing::bit_identical(runs[0].first, runs[k].first));
        CHECK(sorix::testing::bit_identical(runs[0].second, runs[k].second));
      }
    }
  }
}

TEST_CASE("new losses: bad inputs and options throw naming the loss and the value", "[loss]") {
  Tensor x = randn_f64({3, 4}, 1, false), y = randn_f64({3, 4}, 2, false);
  Tensor bad = randn_f64({4, 3}, 3, false);
  CHECK_THROWS_WITH(F::l1_loss(x, bad), Catch::Contains("l1_loss") && Catch::Contains("[4, 3]"));
  CHECK_THROWS_WITH(F::smooth_l1_loss(x, bad), Catch::Contains("smooth_l1_loss") && Catch::Contains("[4, 3]"));
  CHECK_THROWS_WITH(F::huber_loss(x, bad), Catch::Contains("huber_loss") && Catch::Contains("[4, 3]"));
  CHECK_THROWS_WITH(F::kl_div(x, bad), Catch::Contains("kl_div") && Catch::Contains("[4, 3]"));
  CHECK_THROWS_WITH(F::l1_loss(x, sorix::zeros({3, 4}, sorix::int64)), Catch::Contains("int64"));
  // beta / delta
  CHECK_THROWS_WITH(F::smooth_l1_loss(x, y, F::SmoothL1LossFuncOptions().beta(-0.5)),
                    Catch::Contains("smooth_l1_loss") && Catch::Contains("-0.5"));
  CHECK_THROWS_WITH(F::huber_loss(x, y, F::HuberLossFuncOptions().delta(0.0)),
                    Catch::Contains("huber_loss") && Catch::Contains("delta"));
  CHECK_THROWS_AS(F::huber_loss(x, y, F::HuberLossFuncOptions().delta(-1.0)), std::invalid_argument);
  // reduction names
  CHECK_THROWS_WITH(sorix::nn::NLLLossOptions().reduction("avg"), Catch::Contains("NLLLoss") && Catch::Contains("'avg'"));
  CHECK_THROWS_WITH(sorix::nn::L1LossOptions().reduction("batchmean"), Catch::Contains("L1Loss"));
  CHECK_THROWS_WITH(sorix::nn::KLDivLossOptions().reduction("Mean"), Catch::Contains("KLDivLoss") && Catch::Contains("'Mean'"));
  CHECK(sorix::nn::KLDivLossOptions().reduction("batchmean").reduction() == sorix::nn::KLDivReduction::BatchMean);
  CHECK(sorix::nn::CrossEntropyLossOptions().reduction("sum").reduction() == Reduction::Sum);
  CHECK_THROWS_AS(F::l1_loss(x, y, F::L1LossFuncOptions(static_cast<Reduction>(7))), std::invalid_argument);
  // BCE: probabilities only, naming the value and its position.
  Tensor p = sorix::tensor({0.2, 1.5, 0.3});
  CHECK_THROWS_WITH(F::binary_cross_entropy(p, sorix::tensor({0.0, 1.0, 1.0})),
                    Catch::Contains("binary_cross_entropy") && Catch::Contains("1.5") && Catch::Contains("position 1"));
  CHECK_THROWS_AS(F::binary_cross_entropy(sorix::tensor({-0.1}), sorix::tensor({0.0})), std::invalid_argument);
  CHECK_THROWS_AS(F::binary_cross_entropy(sorix::tensor({NAN}), sorix::tensor({0.0})), std::invalid_argument);
  CHECK_THROWS_WITH(F::binary_cross_entropy(sorix::tensor({0.5, 0.5}), sorix::tensor({0.0, 1.0}),
                                            F::BinaryCrossEntropyFuncOptions().weight(sorix::tensor({1.0, 2.0, 3.0}))),
                    Catch::Contains("weight shape [3]"));
  // NLL: target dtype, shapes, range (ignore_index allowed), weight.
  Tensor lp = sorix::log_softmax(x, 1);
  CHECK_THROWS_WITH(F::nll_loss(lp, sorix::tensor({0.0, 1.0, 2.0})), Catch::Contains("nll_loss") && Catch::Contains("float64"));
  CHECK_THROWS_WITH(F::nll_loss(lp, sorix::tensor({0, 1})), Catch::Contains("[2]") && Catch::Contains("[3, 4]"));
  CHECK_THROWS_AS(F::nll_loss(lp, sorix::tensor({0, 4, 1})), std::out_of_range);
  CHECK_THROWS_WITH(F::nll_loss(lp, sorix::tensor({0, 1, -1})),
                    Catch::Contains("nll_loss") && Catch::Contains("-1") && Catch::Contains("position 2"));
  CHECK_NOTHROW(F::nll_loss(lp, sorix::tensor({0, -1, 3}), F::NLLLossFuncOptions().ignore_index(-1)));
  CHECK_THROWS_AS(F::nll_loss(lp, sorix::tensor({0, 1, 2}), F::NLLLossFuncOptions().weight(sorix::tensor({1.0, 2.0}))),
                  std::invalid_argument);
  CHECK_THROWS_AS(F::nll_loss(sorix::zeros({3, 4, 2}, sorix::float64), sorix::tensor({0, 1, 2})), std::invalid_argument);
  // Cross entropy: label_smoothing range, ignore_index with probabilities, [N, C, d] shapes.
  Tensor t = sorix::tensor({0, 1, 2});
  CHECK_THROWS_WITH(F::cross_entropy(x, t, F::CrossEntropyFuncOptions().label_smoothing(1.5)),
                    Catch::Contains("cross_entropy") && Catch::Contains("1.5"));
  CHECK_THROWS_AS(F::cross_entropy(x, t, F::CrossEntropyFuncOptions().label_smoothing(-0.1)), std::invalid_argument);
  CHECK_THROWS_WITH(F::cross_entropy(x, sorix::softmax(y, 1), F::CrossEntropyFuncOptions().ignore_index(0)),
                    Catch::Contains("ignore_index 0"));
  CHECK_THROWS_AS(F::cross_entropy(x, sorix::tensor({0, 9, 2}), F::CrossEntropyFuncOptions().ignore_index(2)), std::out_of_range);
  CHECK_THROWS_WITH(F::cross_entropy(sorix::zeros({2, 4, 3}, sorix::float64), sorix::zeros({2, 4}, sorix::int64)),
                    Catch::Contains("[2, 4]") && Catch::Contains("[2, 4, 3]") && Catch::Contains("[2, 3]"));
}

TEST_CASE("nll_loss, cross_entropy: all targets ignored and empty batches as PyTorch", "[loss]") {
  Tensor x = randn_f64({3, 4}, 1);
  Tensor t = sorix::tensor({2, 2, 2});
  for (bool smooth : {false, true}) {
    INFO("label_smoothing " << smooth);
    const auto o = F::CrossEntropyFuncOptions().ignore_index(2).label_smoothing(smooth ? 0.1 : 0.0);
    CHECK(std::isnan(F::cross_entropy(x, t, o).item<double>()));
    CHECK(F::cross_entropy(x, t, F::CrossEntropyFuncOptions(o).reduction(Reduction::Sum)).item<double>() == 0.0);
    Tensor none = F::cross_entropy(x, t, F::CrossEntropyFuncOptions(o).reduction(Reduction::None));
    for (int i = 0; i < 3; ++i) CHECK(at(none, i) == 0.0);
    // Ignored rows get no gradient, even from a NaN mean (PyTorch's zeros).
    Tensor g = sorix::autograd::grad({F::cross_entropy(x, t, o)}, {x})[0];
    for (int i = 0; i < 12; ++i) CHECK(at(g, i) == 0.0);
  }
  Tensor lp = sorix::log_softmax(x, 1);
  const auto n = F::NLLLossFuncOptions().ignore_index(2);
  CHECK(std::isnan(F::nll_loss(lp, t, n).item<double>()));
  CHECK(F::nll_loss(lp, t, F::NLLLossFuncOptions(n).reduction(Reduction::Sum)).item<double>() == 0.0);
  // An ignored -inf log-probability stays out of the value (a product with 0 would be NaN).
  Tensor lpinf = sorix::tensor({{-INFINITY, 0.0}, {-0.5, -1.0}});
  CHECK(F::nll_loss(lpinf, sorix::tensor({0, 1}), F::NLLLossFuncOptions().ignore_index(0)).item<double>() == 1.0);
  // Empty batches: NaN mean, 0 sum, empty per-sample losses.
  Tensor e = sorix::zeros({0, 4}, sorix::float64), et = sorix::zeros({0}, sorix::int64);
  CHECK(std::isnan(F::nll_loss(e, et).item<double>()));
  CHECK(F::nll_loss(e, et, F::NLLLossFuncOptions().reduction(Reduction::Sum)).item<double>() == 0.0);
  CHECK(F::nll_loss(e, et, F::NLLLossFuncOptions().reduction(Reduction::None)).shape() == sorix::Shape{0});
  CHECK(std::isnan(F::cross_entropy(e, et, F::CrossEntropyFuncOptions().label_smoothing(0.1)).item<double>()));
  Tensor e2 = sorix::zeros({0, 3}, sorix::float64);
  CHECK(std::isnan(F::l1_loss(e2, e2).item<double>()));
  CHECK(F::huber_loss(e2, e2, F::HuberLossFuncOptions().reduction(Reduction::Sum)).item<double>() == 0.0);
  CHECK(std::isnan(F::binary_cross_entropy(e2, e2).item<double>()));
  CHECK(std::isnan(F::kl_div(e2, e2, F::KLDivFuncOptions().reduction(sorix::nn::KLDivReduction::BatchMean)).item<double>()));
}

TEST_CASE("cross_entropy: smoothed one-hot probabilities equal smoothed class indices", "[loss]") {
  Tensor x = sorix::randn({64, 10}, sorix::float32);
  Tensor t = sorix::randint(0, 10, {64});
  // Both smooth the same target distribution; without weights both means divide by the rows.
  Tensor onehot = sorix::zeros({64, 10}, sorix::float32);
  for (std::int64_t i = 0; i < 64; ++i) onehot.data_ptr<float>()[i * 10 + t.data_ptr<std::int64_t>()[i]] = 1.0f;
  const auto o = F::CrossEntropyFuncOptions().label_smoothing(0.25);
  CHECK(F::cross_entropy(x, onehot, o).item<float>() == Approx(F::cross_entropy(x, t, o).item<float>()).epsilon(1e-6));
}

TEST_CASE("binary_cross_entropy: 0 and 1 inputs give PyTorch's clamped loss and finite gradients", "[loss]") {
  Tensor x = sorix::tensor({0.0, 1.0, 0.0, 1.0}).requires_grad_(true);
  Tensor y = sorix::tensor({0.0, 1.0, 1.0, 0.0});
  Tensor l = F::binary_cross_entropy(x, y, F::BinaryCrossEntropyFuncOptions().reduction(Reduction::None));
  const std::vector<double> want{0.0, 0.0, 100.0, 100.0};  // log clamped at -100
  for (int i = 0; i < 4; ++i) CHECK(at(l, i) == want[i]);
  l.sum().backward();
  // (x - y) / max(x (1 - x), 1e-12): 0 where right, +-1e12 where wrong, never inf or NaN.
  const std::vector<double> grad{0.0, 0.0, -1e12, 1e12};
  for (int i = 0; i < 4; ++i) CHECK(at(x.grad(), i) == Approx(grad[i]));
}

TEST_CASE("kl_div: a zero target gives a zero loss and zero gradients", "[loss]") {
  Tensor x = sorix::log_softmax(randn_f64({2, 3}, 1, false), 1).requires_grad_(true);
  Tensor y = sorix::tensor({{0.2, 0.0, 0.8}, {0.5, 0.25, 0.25}}).requires_grad_(true);
  Tensor l = F::kl_div(x, y, F::KLDivFuncOptions().reduction(sorix::nn::KLDivReduction::None));
  CHECK(at(l, 1) == 0.0);
  CHECK(at(l, 0) == Approx(0.2 * (std::log(0.2) - at(x, 0))).epsilon(1e-14));
  l.sum().backward();
  // Where y > 0: dx = -y, dy = log y + 1 - x; where y = 0 both are 0 (torch 1.13 gives dy NaN).
  CHECK(at(x.grad(), 1) == 0.0);
  CHECK(at(y.grad(), 1) == 0.0);
  CHECK(at(x.grad(), 0) == Approx(-0.2).epsilon(1e-14));
  CHECK(at(y.grad(), 0) == Approx(std::log(0.2) + 1 - at(x, 0)).epsilon(1e-14));
  // Negative target probabilities have no logarithm: NaN, as PyTorch.
  CHECK(std::isnan(at(F::kl_div(x.detach(), sorix::tensor({{-0.2, 0.4, 0.8}, {0.5, 0.25, 0.25}}),
                                F::KLDivFuncOptions().reduction(sorix::nn::KLDivReduction::None)), 0)));
}
