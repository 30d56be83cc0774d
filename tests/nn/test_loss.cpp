// Losses: forward values against plain <cmath> references (extreme logits included), float64
// gradchecks (every reduction, index and probability targets, weights), double backward of the
// fused cross entropy, errors, and thread invariance of the fused kernel.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include <sorix/sorix.hpp>

#include "support/gradcheck.hpp"

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
