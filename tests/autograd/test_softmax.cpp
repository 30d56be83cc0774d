// softmax and log_softmax (autograd/src/softmax.cpp): values against a plain <cmath> reference,
// stability, edge shapes and errors, float64 gradchecks, double backward, thread invariance.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include <sorix/sorix.hpp>

#include "support/errors.hpp"
#include "support/gradcheck.hpp"
#include "support/values.hpp"

using sorix::Shape;
using sorix::Tensor;
namespace testing = sorix::testing;
using sorix::testing::as_doubles;
using sorix::testing::check_close;
using sorix::testing::message_of;

namespace {

const std::vector<int> kThreads{1, 2, 3, 8};

// Plain reference in long double along dim d of a row-major shape (log: log_softmax).
std::vector<double> reference_softmax(const std::vector<double>& x, const Shape& shape, int d, bool log) {
  std::size_t outer = 1, inner = 1;
  for (int k = 0; k < d; ++k) outer *= static_cast<std::size_t>(shape[static_cast<std::size_t>(k)]);
  for (std::size_t k = static_cast<std::size_t>(d) + 1; k < shape.size(); ++k) inner *= static_cast<std::size_t>(shape[k]);
  const std::size_t r = static_cast<std::size_t>(shape[static_cast<std::size_t>(d)]);
  std::vector<double> out(x.size());
  for (std::size_t o = 0; o < outer; ++o) {
    for (std::size_t i = 0; i < inner; ++i) {
      auto at = [&](std::size_t k) { return (o * r + k) * inner + i; };
      long double m = x[at(0)];
      for (std::size_t k = 1; k < r; ++k) m = std::max<long double>(m, x[at(k)]);
      long double s = 0;
      for (std::size_t k = 0; k < r; ++k) s += std::exp(static_cast<long double>(x[at(k)]) - m);
      for (std::size_t k = 0; k < r; ++k) {
        const long double z = static_cast<long double>(x[at(k)]) - m;
        out[at(k)] = static_cast<double>(log ? z - std::log(s) : std::exp(z) / s);
      }
    }
  }
  return out;
}

Tensor apply(const Tensor& x, int d, bool log) { return log ? sorix::log_softmax(x, d) : sorix::softmax(x, d); }

}  // namespace

TEST_CASE("softmax and log_softmax match a long double reference", "[softmax]") {
  // Shapes cover both kernel layouts: inner == 1 (last dim) and inner > 1, with a column count
  // above one tile and row lengths not divisible by the SIMD width.
  const std::vector<Shape> shapes{{3, 4, 5}, {2, 7, 300}, {1, 1, 1}, {4, 33}};
  for (sorix::Dtype dt : {sorix::float32, sorix::float64}) {
    const double rtol = dt == sorix::float32 ? 2e-6 : 1e-13;
    for (const Shape& shape : shapes) {
      Tensor x = (testing::randn_f64(shape, 1, false) * 3.0).to(dt);
      const std::vector<double> xv = as_doubles(x);
      const int nd = static_cast<int>(shape.size());
      for (int d = -nd; d < nd; ++d) {
        const int dd = d < 0 ? d + nd : d;
        INFO("dtype " << sorix::dtype_name(dt) << " shape " << sorix::shape_string(shape) << " dim " << d);
        Tensor y = x.softmax(d);
        Tensor ly = x.log_softmax(d);
        CHECK(y.dtype() == dt);
        CHECK(y.shape() == shape);
        CHECK(ly.shape() == shape);
        check_close(as_doubles(y), reference_softmax(xv, shape, dd, false), 1e-300, rtol);
        check_close(as_doubles(ly), reference_softmax(xv, shape, dd, true), rtol, rtol);
      }
    }
  }
}

TEST_CASE("softmax rows sum to 1", "[softmax]") {
  for (sorix::Dtype dt : {sorix::float32, sorix::float64}) {
    const double tol = dt == sorix::float32 ? 1e-5 : 1e-13;
    Tensor x = (testing::randn_f64({50, 37}, 2, false) * 5.0).to(dt);
    for (int d : {0, 1}) {
      const std::vector<double> s = as_doubles(x.softmax(d).sum({d}));
      for (double v : s) CHECK(std::abs(v - 1.0) <= tol);
      const std::vector<double> e = as_doubles(x.log_softmax(d).exp().sum({d}));
      for (double v : e) CHECK(std::abs(v - 1.0) <= tol);
    }
  }
}

TEST_CASE("softmax is stable for huge inputs", "[softmax]") {
  for (sorix::Dtype dt : {sorix::float32, sorix::float64}) {
    Tensor x = sorix::tensor({1000.0, -1000.0, 0.0}, {3}, dt);
    CHECK(as_doubles(x.softmax(0)) == std::vector<double>{1, 0, 0});
    CHECK(as_doubles(x.log_softmax(0)) == std::vector<double>{0, -2000, -1000});
    Tensor same = sorix::full({2, 9}, 1000.0, dt);
    for (double v : as_doubles(same.softmax(1))) CHECK(std::abs(v - 1.0 / 9.0) < 1e-6);
    for (double v : as_doubles(same.softmax(0))) CHECK(v == 0.5);
    for (double v : as_doubles((same * -1.0).log_softmax(0))) CHECK(std::abs(v - std::log(0.5)) < 1e-6);
    // Along dim 0 (the inner > 1 kernel), each column independently.
    Tensor cols = sorix::tensor({1000.0, -1000.0, -1000.0, 1000.0}, {2, 2}, dt);
    CHECK(as_doubles(cols.softmax(0)) == std::vector<double>{1, 0, 0, 1});
    CHECK(as_doubles(cols.log_softmax(0)) == std::vector<double>{0, -2000, -2000, 0});
  }
}

TEST_CASE("softmax edge cases: NaN rows, 0-dim, empty, bad input", "[softmax]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Tensor x = sorix::tensor({{1.0, nan, 2.0}, {0.0, 1.0, 2.0}});
  const std::vector<double> y = as_doubles(x.softmax(1));
  for (int i = 0; i < 3; ++i) CHECK(std::isnan(y[static_cast<std::size_t>(i)]));
  for (int i = 3; i < 6; ++i) CHECK_FALSE(std::isnan(y[static_cast<std::size_t>(i)]));

  Tensor s = sorix::scalar_tensor(3.0, sorix::float32);
  CHECK(s.softmax(0).item<float>() == 1.0f);
  CHECK(s.log_softmax(-1).item<float>() == 0.0f);
  CHECK(s.softmax(0).shape() == Shape{});
  CHECK(sorix::zeros({0, 3}).softmax(1).shape() == Shape{0, 3});
  CHECK(sorix::zeros({3, 0}).log_softmax(1).shape() == Shape{3, 0});

  CHECK_THROWS_AS(sorix::tensor({1, 2, 3}).softmax(0), std::invalid_argument);
  CHECK(message_of<std::exception>([] { sorix::tensor({1, 2, 3}).log_softmax(0); }).find("log_softmax") != std::string::npos);
  CHECK_THROWS_AS(sorix::ones({2, 3}).softmax(2), std::out_of_range);
  CHECK(message_of<std::exception>([] { sorix::ones({2, 3}).softmax(-3); }).find("softmax") != std::string::npos);
}

TEST_CASE("gradcheck softmax and log_softmax on 3-D inputs", "[softmax]") {
  using V = std::vector<Tensor>;
  for (const Shape& shape : {Shape{3, 4, 5}, Shape{2, 3, 260}}) {
    for (int d : {0, 1, -1}) {
      for (bool log : {false, true}) {
        INFO("shape " << sorix::shape_string(shape) << " dim " << d << (log ? " log_softmax" : " softmax"));
        auto r = testing::gradcheck([d, log](const V& in) { return apply(in[0], d, log); },
                                    {testing::randn_f64(shape, 3 + d)});
        INFO(r.message);
        CHECK(r.ok);
      }
    }
  }
}

TEST_CASE("the fused backward matches the Tensor-op backward", "[softmax]") {
  // A plain backward runs the fused kernel; create_graph runs the formula with Tensor ops.
  for (int d : {0, 1, 2}) {
    for (bool log : {false, true}) {
      INFO("dim " << d << (log ? " log_softmax" : " softmax"));
      Tensor x = testing::randn_f64({4, 5, 6}, 4);
      Tensor w = testing::randn_f64({4, 5, 6}, 5, false);
      Tensor plain = sorix::autograd::grad({(apply(x, d, log) * w).sum()}, {x})[0];
      Tensor graph = sorix::autograd::grad({(apply(x, d, log) * w).sum()}, {x}, {}, true)[0];
      CHECK_FALSE(plain.requires_grad());
      CHECK(graph.requires_grad());
      check_close(as_doubles(plain), as_doubles(graph), 1e-14, 1e-12);
    }
  }
}

TEST_CASE("softmax and log_softmax double backward", "[softmax]") {
  // first(x) = d/dx sum(f(x) * W) with create_graph; its derivative sum(first(x) * U) w.r.t. x,
  // by a second autograd::grad, against central differences of first(x).
  const Shape shape{2, 3, 4};
  const Tensor w = testing::randn_f64(shape, 6, false);
  const Tensor u = testing::randn_f64(shape, 7, false);
  for (int d : {0, 2}) {
    for (bool log : {false, true}) {
      INFO("dim " << d << (log ? " log_softmax" : " softmax"));
      auto first = [&](const Tensor& x, bool create) {
        return sorix::autograd::grad({(apply(x, d, log) * w).sum()}, {x}, {}, create)[0];
      };
      Tensor x = testing::randn_f64(shape, 8);
      Tensor g = first(x, true);
      REQUIRE(g.requires_grad());
      const std::vector<double> analytic = as_doubles(sorix::autograd::grad({(g * u).sum()}, {x})[0]);
      double* p = x.data_ptr<double>();
      const double eps = 1e-6;
      for (std::size_t e = 0; e < analytic.size(); ++e) {
        const double saved = p[e];
        p[e] = saved + eps;
        const double up = (first(x, false) * u).sum().item<double>();
        p[e] = saved - eps;
        const double down = (first(x, false) * u).sum().item<double>();
        p[e] = saved;
        const double numeric = (up - down) / (2 * eps);
        INFO("element " << e << ": analytic " << analytic[e] << " numeric " << numeric);
        CHECK(std::abs(analytic[e] - numeric) <= 1e-6 + 1e-4 * std::abs(numeric));
      }
    }
  }
}

TEST_CASE("softmax forward and backward are bit-identical across thread counts", "[softmax]") {
  // [300, 1000] goes parallel over rows (dim 1) and over column tiles (dim 0); [2, 50000] has
  // rows longer than a chunk, reduced in chunks inside the row.
  for (sorix::Dtype dt : {sorix::float32, sorix::float64}) {
    for (const Shape& shape : {Shape{300, 1000}, Shape{2, 50000}}) {
      Tensor x = (testing::randn_f64(shape, 9, false) * 4.0).to(dt);
      Tensor w = testing::randn_f64(shape, 10, false).to(dt);
      for (int d : {0, 1}) {
        for (bool log : {false, true}) {
          INFO("dtype " << sorix::dtype_name(dt) << " shape " << sorix::shape_string(shape) << " dim " << d
                        << (log ? " log_softmax" : " softmax"));
          auto run = [&] {
            Tensor xi = x.detach().clone().requires_grad_(true);
            Tensor y = apply(xi, d, log);
            Tensor gx = sorix::autograd::grad({y}, {xi}, {w})[0];
            return std::make_pair(y.detach(), gx);
          };
          auto res = testing::at_thread_counts(kThreads, run);
          for (std::size_t i = 1; i < res.size(); ++i) {
            CHECK(testing::bit_identical(res[i].first, res[0].first));
            CHECK(testing::bit_identical(res[i].second, res[0].second));
          }
        }
      }
    }
    // Many column tiles (dim 0 of [300, 1000]) and a long row reduced in chunks give the
    // reference values.
    Tensor wide = (testing::randn_f64({300, 1000}, 12, false) * 4.0).to(dt);
    check_close(as_doubles(wide.softmax(0)), reference_softmax(as_doubles(wide), {300, 1000}, 0, false), 1e-300,
                dt == sorix::float32 ? 2e-6 : 1e-13);
    Tensor big = (testing::randn_f64({50000}, 11, false) * 4.0).to(dt);
    check_close(as_doubles(big.log_softmax(0)), reference_softmax(as_doubles(big), {50000}, 0, true),
                dt == sorix::float32 ? 1e-5 : 1e-12, dt == sorix::float32 ? 1e-5 : 1e-12);
  }
}
