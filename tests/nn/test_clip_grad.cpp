// clip_grad_norm_ / clip_grad_value_: hand-computed norms of every order, clipping factors,
// skipped parameters, NaN and infinite gradients, bad arguments, and the same bits at 1, 2 and 3
// threads.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include <sorix/sorix.hpp>

#include "support/gradcheck.hpp"

namespace {

using sorix::Tensor;
namespace U = sorix::nn::utils;
using sorix::testing::bit_identical;

// A float64 parameter whose gradient holds `g`.
Tensor with_grad(const std::vector<double>& g, sorix::Dtype dtype = sorix::float64) {
  Tensor p = sorix::zeros({static_cast<std::int64_t>(g.size())}, dtype).requires_grad_(true);
  p.set_grad(sorix::tensor(g, {static_cast<std::int64_t>(g.size())}, dtype));
  return p;
}

std::vector<double> values(const Tensor& t) {
  const Tensor d = t.to(sorix::float64).contiguous();
  return std::vector<double>(d.data_ptr<double>(), d.data_ptr<double>() + d.numel());
}

}  // namespace

TEST_CASE("clip_grad_norm_: norm 2 over all gradients, scaled by max_norm / (total + 1e-6)", "[clip]") {
  Tensor a = with_grad({3, -4}), b = with_grad({12});
  const double total = U::clip_grad_norm_({a, b}, 6.5);
  CHECK(total == 13.0);
  const double coef = 6.5 / (13.0 + 1e-6);
  CHECK(values(a.grad()) == std::vector<double>{3 * coef, -4 * coef});
  CHECK(values(b.grad()) == std::vector<double>{12 * coef});
  // Under the limit nothing changes, bit for bit.
  const Tensor before = a.grad().clone();
  CHECK(U::clip_grad_norm_(a, 100.0) == Approx(5.0 * coef).epsilon(1e-15));
  CHECK(bit_identical(a.grad(), before));
}

TEST_CASE("clip_grad_norm_: orders 1, 3 and infinity; float32 gradients; skipped parameters", "[clip]") {
  const double inf = std::numeric_limits<double>::infinity();
  auto fresh = [] { return std::vector<Tensor>{with_grad({1, -2}), with_grad({-3, 0.5})}; };
  std::vector<Tensor> p = fresh();
  CHECK(U::clip_grad_norm_(p, 100.0, 1.0) == 6.5);
  p = fresh();
  CHECK(U::clip_grad_norm_(p, 100.0, 3.0) == Approx(std::cbrt(1 + 8 + 27 + 0.125)).epsilon(1e-15));
  p = fresh();
  CHECK(U::clip_grad_norm_(p, 1.5, inf) == 3.0);
  CHECK(values(p[1].grad())[0] == -3 * (1.5 / (3.0 + 1e-6)));
  // float32 gradients: widened to float64 (squares exact); the gradients stay float32.
  Tensor f = with_grad({0.1, 0.2, 0.3}, sorix::float32);
  const auto v = values(f.grad());
  CHECK(U::clip_grad_norm_(f, 1e-3) == std::sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]));
  CHECK(f.grad().dtype() == sorix::float32);
  CHECK(values(f.grad())[2] == Approx(0.3 * 1e-3 / std::sqrt(0.14)).epsilon(1e-5));
  // Parameters without a gradient are skipped; none at all gives 0.
  Tensor none = sorix::zeros({3}).requires_grad_(true);
  CHECK(U::clip_grad_norm_({none}, 1.0) == 0.0);
  Tensor g = with_grad({6, 8});
  CHECK(U::clip_grad_norm_({none, g}, 1.0) == 10.0);
  CHECK_FALSE(none.grad().defined());
}

TEST_CASE("clip_grad_norm_: NaN and infinite gradients; error_if_nonfinite", "[clip]") {
  const double nan = std::nan(""), inf = std::numeric_limits<double>::infinity();
  Tensor a = with_grad({1, nan}), b = with_grad({2});
  const Tensor before = b.grad().clone();
  CHECK_THROWS_AS(U::clip_grad_norm_({a, b}, 1.0, 2.0, true), std::runtime_error);
  CHECK(bit_identical(b.grad(), before));  // the check comes before any change
  CHECK(std::isnan(U::clip_grad_norm_({a, b}, 1.0)));
  CHECK(std::isnan(values(b.grad())[0]));  // as PyTorch: scaled by a NaN factor
  // The infinity norm sees a NaN too (a plain max would skip it).
  Tensor c = with_grad({5, nan}), d = with_grad({1});
  CHECK(std::isnan(U::clip_grad_norm_({c, d}, 1.0, inf)));
  Tensor e = with_grad({1, inf});
  CHECK_THROWS_WITH(U::clip_grad_norm_(e, 1.0, 2.0, true), Catch::Contains("clip_grad_norm_") && Catch::Contains("inf"));
}

TEST_CASE("clip_grad_norm_ and clip_grad_value_ refuse bad arguments, naming them", "[clip]") {
  Tensor a = with_grad({1, 2});
  const double nan = std::nan("");
  CHECK_THROWS_WITH(U::clip_grad_norm_(a, -1.0), Catch::Contains("clip_grad_norm_") && Catch::Contains("max_norm"));
  CHECK_THROWS_AS(U::clip_grad_norm_(a, nan), std::invalid_argument);
  CHECK_THROWS_WITH(U::clip_grad_norm_(a, 1.0, 0.0), Catch::Contains("norm_type") && Catch::Contains("0"));
  CHECK_THROWS_AS(U::clip_grad_norm_(a, 1.0, -2.0), std::invalid_argument);
  CHECK_THROWS_AS(U::clip_grad_norm_(a, 1.0, nan), std::invalid_argument);
  CHECK_THROWS_WITH(U::clip_grad_value_(a, -0.5), Catch::Contains("clip_grad_value_") && Catch::Contains("-0.5"));
  CHECK_THROWS_AS(U::clip_grad_value_(a, nan), std::invalid_argument);
  CHECK(values(a.grad()) == std::vector<double>{1, 2});
}

TEST_CASE("clip_grad_value_: clamps every gradient to [-c, c]", "[clip]") {
  const double nan = std::nan("");
  Tensor a = with_grad({-3, 0.25, 2, nan}), b = with_grad({0.5, -0.75}, sorix::float32);
  Tensor none = sorix::zeros({2}).requires_grad_(true);
  U::clip_grad_value_({a, b, none}, 0.5);
  const auto va = values(a.grad());
  CHECK(va[0] == -0.5);
  CHECK(va[1] == 0.25);
  CHECK(va[2] == 0.5);
  CHECK(std::isnan(va[3]));
  CHECK(values(b.grad()) == std::vector<double>{0.5, -0.5});
  CHECK_FALSE(none.grad().defined());
}

TEST_CASE("clip_grad_norm_: the same total and gradients at 1, 2 and 3 threads", "[clip][determinism]") {
  const double inf = std::numeric_limits<double>::infinity();
  for (auto dtype : {sorix::float32, sorix::float64}) {
    for (double order : {2.0, 1.0, 3.0, inf}) {
      INFO(sorix::dtype_name(dtype) << ", norm " << order);
      const std::vector<Tensor> grads{sorix::randn({100003}, dtype), sorix::randn({257, 129}, dtype),
                                      sorix::randn({7}, dtype)};
      struct Result {
        double total;
        std::vector<Tensor> grads;
      };
      auto runs = sorix::testing::at_thread_counts({1, 2, 3}, [&] {
        std::vector<Tensor> params;
        for (const Tensor& g : grads) {
          Tensor p = sorix::zeros_like(g).requires_grad_(true);
          p.set_grad(g.clone());
          params.push_back(p);
        }
        Result r{U::clip_grad_norm_(params, 0.5, order), {}};
        for (const Tensor& p : params) r.grads.push_back(p.grad());
        return r;
      });
      CHECK(runs[0].total > 0.5);
      CHECK_FALSE(bit_identical(runs[0].grads[0], grads[0]));  // clipped
      for (std::size_t t = 1; t < runs.size(); ++t) {
        CHECK(std::memcmp(&runs[t].total, &runs[0].total, sizeof(double)) == 0);
        for (std::size_t k = 0; k < grads.size(); ++k) CHECK(bit_identical(runs[t].grads[k], runs[0].grads[k]));
      }
    }
  }
}
