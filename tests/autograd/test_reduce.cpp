// Reductions: sum, mean (autograd/src/reduce.cpp) and max, min, argmax, argmin
// (autograd/src/reduce_minmax.cpp). Values against plain double / long double references,
// dims handling and errors, bit-identical results at 1, 2, 3 and 8 threads, float64 gradchecks.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
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
using sorix::testing::contains;
using sorix::testing::message_of;

namespace {

const std::vector<int> kThreads{1, 2, 3, 8};

// Plain reference: reduces `dims` (non-negative, any order) of a row-major `shape` with
// `init`/`step` in double, element by element. Returns values in row-major order of the
// shape with the reduced dims removed (keepdim gives the same order).
std::vector<double> reference_reduce(const std::vector<double>& x, const Shape& shape, const std::vector<int>& dims,
                                     double init, const std::function<double(double, double)>& step) {
  const std::size_t nd = shape.size();
  std::vector<bool> reduced(nd, false);
  for (int d : dims) reduced[static_cast<std::size_t>(d)] = true;
  std::vector<std::size_t> out_strides(nd, 0);
  std::size_t out_n = 1;
  for (std::size_t k = nd; k-- > 0;) {
    if (!reduced[k]) {
      out_strides[k] = out_n;
      out_n *= static_cast<std::size_t>(shape[k]);
    }
  }
  std::vector<double> out(out_n, init);
  std::vector<std::size_t> idx(nd, 0);
  for (std::size_t flat = 0; flat < x.size(); ++flat) {
    std::size_t rem = flat, o = 0;
    for (std::size_t k = nd; k-- > 0;) {
      idx[k] = rem % static_cast<std::size_t>(shape[k]);
      rem /= static_cast<std::size_t>(shape[k]);
      o += idx[k] * out_strides[k];
    }
    out[o] = step(out[o], x[flat]);
  }
  return out;
}

// Index of the first extreme along dim d (plain loops).
std::vector<double> reference_arg(const std::vector<double>& x, const Shape& shape, int d, bool is_max) {
  std::size_t outer = 1, inner = 1;
  for (int k = 0; k < d; ++k) outer *= static_cast<std::size_t>(shape[static_cast<std::size_t>(k)]);
  for (std::size_t k = static_cast<std::size_t>(d) + 1; k < shape.size(); ++k) inner *= static_cast<std::size_t>(shape[k]);
  const std::size_t r = static_cast<std::size_t>(shape[static_cast<std::size_t>(d)]);
  std::vector<double> out;
  for (std::size_t o = 0; o < outer; ++o) {
    for (std::size_t i = 0; i < inner; ++i) {
      std::size_t best = 0;
      for (std::size_t k = 1; k < r; ++k) {
        const double v = x[(o * r + k) * inner + i], b = x[(o * r + best) * inner + i];
        if (is_max ? v > b : v < b) best = k;
      }
      out.push_back(static_cast<double>(best));
    }
  }
  return out;
}

void check_close(const std::vector<double>& got, const std::vector<double>& want, double tol) {
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i << ": got " << got[i] << ", want " << want[i]);
    CHECK(std::abs(got[i] - want[i]) <= tol * (1.0 + std::abs(want[i])));
  }
}

// float32 or float64 values in [-2, 2] without ties (a sine of the index).
Tensor wave(std::int64_t n, sorix::Dtype dtype) {
  return testing::randn_f64({n}, 3, false).to(dtype);
}

}  // namespace

// ---- sum / mean ---------------------------------------------------------------------------------

TEST_CASE("sum and mean match a double reference over every dim set", "[reduce]") {
  const Shape shape{3, 4, 5};
  for (sorix::Dtype dt : {sorix::float32, sorix::float64}) {
    Tensor x = testing::randn_f64(shape, 1, false).to(dt);
    const std::vector<double> xv = as_doubles(x);
    const double tol = dt == sorix::float32 ? 1e-5 : 1e-13;
    const auto plus = [](double a, double b) { return a + b; };
    INFO("dtype " << sorix::dtype_name(dt));

    Tensor all = x.sum();
    CHECK(all.shape() == Shape{});
    CHECK(all.dtype() == dt);
    check_close(as_doubles(all), reference_reduce(xv, shape, {0, 1, 2}, 0.0, plus), tol);
    check_close(as_doubles(x.mean()), {reference_reduce(xv, shape, {0, 1, 2}, 0.0, plus)[0] / 60.0}, tol);

    const std::vector<std::vector<int>> dim_sets{{0}, {1}, {2}, {0, 1}, {0, 2}, {1, 2}, {0, 1, 2}};
    for (const auto& dims : dim_sets) {
      std::vector<std::int64_t> d64(dims.begin(), dims.end());
      std::vector<double> want = reference_reduce(xv, shape, dims, 0.0, plus);
      std::size_t count = 1;
      Shape kept = shape, dropped;
      for (int d : dims) {
        count *= static_cast<std::size_t>(shape[static_cast<std::size_t>(d)]);
        kept[static_cast<std::size_t>(d)] = 1;
      }
      for (std::size_t k = 0; k < shape.size(); ++k) {
        if (kept[k] == shape[k] || shape[k] == 1) dropped.push_back(shape[k]);
      }
      INFO("dims " << dims.size() << " first " << dims[0]);
      Tensor s = sorix::sum(x, d64);
      Tensor sk = sorix::sum(x, d64, true);
      CHECK(s.shape() == dropped);
      CHECK(sk.shape() == kept);
      check_close(as_doubles(s), want, tol);
      check_close(as_doubles(sk), want, tol);
      std::vector<double> want_mean = want;
      for (double& v : want_mean) v /= static_cast<double>(count);
      Tensor m = x.mean(d64);
      Tensor mk = x.mean(d64, true);
      CHECK(m.shape() == dropped);
      CHECK(mk.shape() == kept);
      check_close(as_doubles(m), want_mean, tol);
      check_close(as_doubles(mk), want_mean, tol);
    }
  }
}

TEST_CASE("sum accepts negative dims and int64 input", "[reduce]") {
  Tensor x = testing::randn_f64({2, 3, 4}, 2, false);
  CHECK(testing::bit_identical(sorix::sum(x, {-1}), sorix::sum(x, {2})));
  CHECK(testing::bit_identical(sorix::sum(x, {-3, -1}, true), sorix::sum(x, {0, 2}, true)));
  CHECK(testing::bit_identical(x.mean({-2}), x.mean({1})));

  Tensor i = sorix::tensor({{1, 2, 3}, {4, 5, 6}});
  Tensor s = i.sum({0});
  CHECK(s.dtype() == sorix::int64);
  CHECK(as_doubles(s) == std::vector<double>{5, 7, 9});
  CHECK(i.sum().item<std::int64_t>() == 21);
  CHECK_THROWS_AS(i.mean(), std::invalid_argument);
}

TEST_CASE("sum and mean of empty tensors and empty dims", "[reduce]") {
  Tensor e = sorix::zeros({0, 3});
  CHECK(e.sum().item<float>() == 0.0f);
  Tensor s0 = e.sum({0});
  CHECK(s0.shape() == Shape{3});
  CHECK(as_doubles(s0) == std::vector<double>{0, 0, 0});
  CHECK(e.sum({1}).shape() == Shape{0});
  CHECK(std::isnan(e.mean().item<float>()));  // 0 / 0, as PyTorch
}

TEST_CASE("sum and mean reject duplicate and out-of-range dims, naming the op", "[reduce]") {
  Tensor x = sorix::ones({2, 3, 4});
  CHECK_THROWS_AS(sorix::sum(x, {1, 1}), std::invalid_argument);
  CHECK_THROWS_AS(sorix::sum(x, {1, -2}), std::invalid_argument);  // -2 is dim 1 again
  CHECK(contains(message_of<std::exception>([&] { sorix::sum(x, {0, -3}); }), "sum"));
  CHECK_THROWS_AS(sorix::mean(x, {2, 2}), std::invalid_argument);

  CHECK_THROWS_AS(sorix::sum(x, {3}), std::out_of_range);
  CHECK_THROWS_AS(sorix::sum(x, {-4}), std::out_of_range);
  CHECK_THROWS_AS(sorix::mean(x, {5}), std::out_of_range);
  const std::string msg = message_of<std::exception>([&] { sorix::sum(x, {3}); });
  CHECK(contains(msg, "sum"));
  CHECK(contains(msg, "3"));
  CHECK(contains(message_of<std::exception>([&] { sorix::mean(x, {7}); }), "mean"));
}

TEMPLATE_TEST_CASE("sum of all elements is deterministic and accurate", "[reduce]", float, double) {
  const sorix::Dtype dt = sorix::dtype_of_v<TestType>;
  const std::size_t K = sorix::parallel::kChunkSize;
  for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{7}, K - 1, K, K + 1, std::size_t{1000003}}) {
    INFO("n = " << n);
    Tensor x = wave(static_cast<std::int64_t>(n), dt);
    auto sums = testing::at_thread_counts(kThreads, [&] { return x.sum(); });
    for (const Tensor& s : sums) CHECK(testing::bit_identical(s, sums[0]));

    // Error bound of the fixed pattern: an element passes through at most K / (4 W) additions
    // in its SIMD accumulator (W >= 4 lanes), a few in the horizontal add and the tail, and one
    // per chunk when the partials are combined; each addition errs by at most eps * sum|x|.
    long double ref = 0, abs_sum = 0;
    const TestType* p = x.data_ptr<TestType>();
    for (std::size_t i = 0; i < n; ++i) {
      ref += p[i];
      abs_sum += std::abs(static_cast<long double>(p[i]));
    }
    const double chain = static_cast<double>(K / 16 + (n + K - 1) / K + 16);
    const double tol = chain * std::numeric_limits<TestType>::epsilon() * static_cast<double>(abs_sum);
    const double got = static_cast<double>(sums[0].template item<TestType>());
    CHECK(std::abs(got - static_cast<double>(ref)) <= tol);

    // Ones sum exactly (every partial is an integer below 2^24): a dropped or doubled chunk shows.
    Tensor ones = sorix::ones({static_cast<std::int64_t>(n)}, dt);
    auto one_sums = testing::at_thread_counts(kThreads, [&] { return ones.sum(); });
    for (const Tensor& s : one_sums) CHECK(s.template item<TestType>() == static_cast<TestType>(n));
  }
}

TEST_CASE("sum over dims is bit-identical across thread counts on large inputs", "[reduce]") {
  for (sorix::Dtype dt : {sorix::float32, sorix::float64}) {
    Tensor x = wave(300 * 1000, dt).reshape({300, 1000});
    Tensor y = wave(3 * 40000, dt).reshape({3, 40000});
    auto rows = testing::at_thread_counts(kThreads, [&] { return x.sum({1}); });
    auto cols = testing::at_thread_counts(kThreads, [&] { return x.sum({0}); });
    auto long_rows = testing::at_thread_counts(kThreads, [&] { return y.sum({1}); });
    auto means = testing::at_thread_counts(kThreads, [&] { return x.mean({0}, true); });
    for (std::size_t i = 1; i < kThreads.size(); ++i) {
      CHECK(testing::bit_identical(rows[i], rows[0]));
      CHECK(testing::bit_identical(cols[i], cols[0]));
      CHECK(testing::bit_identical(long_rows[i], long_rows[0]));
      CHECK(testing::bit_identical(means[i], means[0]));
    }
    // A row longer than a chunk gives the bits of the all-elements sum of that row.
    const std::vector<double> yv = as_doubles(y);
    Tensor row1 = sorix::tensor(std::vector<double>(yv.begin() + 40000, yv.begin() + 80000), {40000}, dt);
    CHECK(as_doubles(long_rows[0])[1] == row1.sum().item<double>());
  }
}

TEST_CASE("gradcheck sum and mean", "[reduce]") {
  using V = std::vector<Tensor>;
  const auto x = [] { return testing::randn_f64({2, 3, 4}, 5); };
  auto ok = [](const testing::TensorFn& f, V in) {
    auto r = testing::gradcheck(f, std::move(in));
    INFO(r.message);
    CHECK(r.ok);
  };
  ok([](const V& in) { return in[0].sum(); }, {x()});
  ok([](const V& in) { return in[0].sum({1}); }, {x()});
  ok([](const V& in) { return in[0].sum({0, 2}, true); }, {x()});
  ok([](const V& in) { return in[0].sum({-1}); }, {x()});
  ok([](const V& in) { return in[0].mean(); }, {x()});
  ok([](const V& in) { return in[0].mean({1}, true); }, {x()});
  ok([](const V& in) { return in[0].mean({0, -1}); }, {x()});
}

// ---- max / min / argmax / argmin ---------------------------------------------------------------

TEST_CASE("max and min match a double reference", "[reduce]") {
  const Shape shape{3, 4, 5};
  const auto mx = [](double a, double b) { return std::max(a, b); };
  const auto mn = [](double a, double b) { return std::min(a, b); };
  const double inf = std::numeric_limits<double>::infinity();
  for (sorix::Dtype dt : {sorix::float32, sorix::float64}) {
    Tensor x = testing::randn_f64(shape, 4, false).to(dt);
    const std::vector<double> xv = as_doubles(x);
    CHECK(as_doubles(x.max()) == reference_reduce(xv, shape, {0, 1, 2}, -inf, mx));
    CHECK(as_doubles(sorix::min(x)) == reference_reduce(xv, shape, {0, 1, 2}, inf, mn));
    CHECK(x.max().shape() == Shape{});
    CHECK(x.max().dtype() == dt);
    for (int d = 0; d < 3; ++d) {
      INFO("dim " << d);
      Shape kept = shape, dropped = shape;
      kept[static_cast<std::size_t>(d)] = 1;
      dropped.erase(dropped.begin() + d);
      Tensor m = std::get<0>(x.max(d)), mk = std::get<0>(sorix::max(x, d, true)), n = std::get<0>(x.min(d - 3)), nk = std::get<0>(x.min(d, true));
      CHECK(m.shape() == dropped);
      CHECK(mk.shape() == kept);
      CHECK(n.shape() == dropped);
      CHECK(as_doubles(m) == reference_reduce(xv, shape, {d}, -inf, mx));
      CHECK(as_doubles(mk) == reference_reduce(xv, shape, {d}, -inf, mx));
      CHECK(as_doubles(n) == reference_reduce(xv, shape, {d}, inf, mn));
      CHECK(as_doubles(nk) == reference_reduce(xv, shape, {d}, inf, mn));
      // argmax/argmin point at the reference extreme.
      Tensor am = x.argmax(d, true), an = sorix::argmin(x, d);
      CHECK(am.dtype() == sorix::int64);
      CHECK(am.shape() == kept);
      CHECK(an.shape() == dropped);
      CHECK(as_doubles(am) == reference_arg(xv, shape, d, true));
      CHECK(as_doubles(an) == reference_arg(xv, shape, d, false));
    }
  }
}

TEST_CASE("argmax and argmin take the first occurrence and treat NaN as the extreme", "[reduce]") {
  Tensor x = sorix::tensor({3.f, 1.f, 7.f, 7.f, 1.f, 0.f, 7.f});
  CHECK(x.argmax().item<std::int64_t>() == 2);
  CHECK(x.argmin().item<std::int64_t>() == 5);
  CHECK(sorix::tensor({1.f, 1.f, 1.f}).argmin().item<std::int64_t>() == 0);

  Tensor m = sorix::tensor({{1.0, 5.0, 5.0}, {2.0, 2.0, 0.0}, {4.0, 4.0, 4.0}});
  CHECK(as_doubles(m.argmax(1)) == std::vector<double>{1, 0, 0});
  CHECK(as_doubles(m.argmin(1)) == std::vector<double>{0, 2, 0});
  CHECK(as_doubles(m.argmax(0)) == std::vector<double>{2, 0, 0});
  CHECK(as_doubles(m.argmin(0)) == std::vector<double>{0, 1, 1});
  CHECK(m.argmax(1, true).shape() == Shape{3, 1});

  const float nan = std::numeric_limits<float>::quiet_NaN();
  Tensor xn = sorix::tensor({1.f, nan, 0.f, nan, 9.f});
  CHECK(xn.argmax().item<std::int64_t>() == 1);
  CHECK(xn.argmin().item<std::int64_t>() == 1);
  CHECK(std::isnan(xn.max().item<float>()));
  CHECK(std::isnan(xn.min().item<float>()));
  Tensor yn = sorix::tensor({{1.f, 5.f, 5.f}, {nan, 2.f, nan}});
  CHECK(as_doubles(yn.argmax(1)) == std::vector<double>{1, 0});
  CHECK(as_doubles(yn.argmin(0)) == std::vector<double>{1, 1, 1});
  CHECK(std::isnan(as_doubles(std::get<0>(yn.max(1)))[1]));
  CHECK(as_doubles(std::get<0>(yn.max(1)))[0] == 5.0);
}

TEST_CASE("max/min/argmax/argmin accept int64 and 0-dim tensors", "[reduce]") {
  Tensor i = sorix::tensor({{4, -2, 9}, {9, 0, -7}});
  CHECK(i.max().dtype() == sorix::int64);
  CHECK(i.max().item<std::int64_t>() == 9);
  CHECK(i.min().item<std::int64_t>() == -7);
  CHECK(i.argmax().item<std::int64_t>() == 2);
  CHECK(i.argmin().item<std::int64_t>() == 5);
  CHECK(as_doubles(std::get<0>(i.max(0))) == std::vector<double>{9, 0, 9});
  CHECK(as_doubles(i.argmax(0)) == std::vector<double>{1, 1, 0});
  CHECK(as_doubles(std::get<0>(i.min(1))) == std::vector<double>{-2, -7});

  Tensor s = sorix::scalar_tensor(2.5, sorix::float64);
  CHECK(std::get<0>(s.max(0)).item<double>() == 2.5);
  CHECK(std::get<0>(s.min(-1, true)).shape() == Shape{});
  CHECK(s.argmax(0).item<std::int64_t>() == 0);
  CHECK(s.argmin().item<std::int64_t>() == 0);
}

TEST_CASE("max/min/argmax/argmin reject empty reductions and bad dims", "[reduce]") {
  Tensor e = sorix::zeros({0, 3});
  CHECK_THROWS_AS(e.max(), std::invalid_argument);
  CHECK_THROWS_AS(e.argmin(), std::invalid_argument);
  const std::string msg = message_of<std::exception>([&] { e.min(); });
  CHECK(contains(msg, "min"));
  CHECK(contains(msg, "[0, 3]"));
  CHECK(contains(message_of<std::exception>([&] { e.argmax(); }), "argmax"));
  CHECK_THROWS_AS(e.max(0), std::invalid_argument);
  CHECK(contains(message_of<std::exception>([&] { e.argmin(0); }), "argmin"));
  // Reducing a non-empty dim of an empty tensor is fine: the output is empty.
  CHECK(std::get<0>(e.max(1)).shape() == Shape{0});
  CHECK(e.argmax(1, true).shape() == Shape{0, 1});

  Tensor x = sorix::ones({2, 3});
  CHECK_THROWS_AS(x.max(2), std::out_of_range);
  CHECK_THROWS_AS(x.argmin(-3), std::out_of_range);
  CHECK(contains(message_of<std::exception>([&] { x.min(5); }), "min"));
}

TEST_CASE("max/min/argmax are bit-identical across thread counts and keep the first tie", "[reduce]") {
  const std::size_t K = sorix::parallel::kChunkSize;
  const std::int64_t n = 5 * static_cast<std::int64_t>(K) + 123;
  for (sorix::Dtype dt : {sorix::float32, sorix::float64}) {
    INFO("dtype " << sorix::dtype_name(dt));
    // Plant the maximum (5) and the minimum (-5) twice each, in chunks 1 and 4: the first must
    // win at every thread count although the later chunk may finish first.
    std::vector<double> v = as_doubles(wave(n, dt));
    v[K + 17] = 5;
    v[4 * K + 3] = 5;
    v[K + 100] = -5;
    v[4 * K + 1] = -5;
    Tensor planted = sorix::tensor(v, {n}, dt);
    auto amax = testing::at_thread_counts(kThreads, [&] { return planted.argmax(); });
    auto amin = testing::at_thread_counts(kThreads, [&] { return planted.argmin(); });
    auto vmax = testing::at_thread_counts(kThreads, [&] { return planted.max(); });
    for (std::size_t i = 0; i < kThreads.size(); ++i) {
      CHECK(amax[i].item<std::int64_t>() == static_cast<std::int64_t>(K + 17));
      CHECK(amin[i].item<std::int64_t>() == static_cast<std::int64_t>(K + 100));
      CHECK(vmax[i].item<double>() == 5.0);
    }
    // A constant tensor: every element ties, the first wins.
    Tensor c = sorix::full({n}, 1.5, dt);
    for (const Tensor& a : testing::at_thread_counts(kThreads, [&] { return c.argmax(); })) {
      CHECK(a.item<std::int64_t>() == 0);
    }

    // Along dims, both kernel layouts (inner == 1 and inner > 1), large enough to go parallel.
    Tensor m = wave(400 * 300, dt).reshape({400, 300});
    const std::vector<double> mv = as_doubles(m);
    for (int d : {0, 1}) {
      INFO("dim " << d);
      auto vals = testing::at_thread_counts(kThreads, [&] { return std::get<0>(m.max(d)); });
      auto mins = testing::at_thread_counts(kThreads, [&] { return std::get<0>(m.min(d)); });
      auto idx = testing::at_thread_counts(kThreads, [&] { return m.argmax(d); });
      for (std::size_t i = 1; i < kThreads.size(); ++i) {
        CHECK(testing::bit_identical(vals[i], vals[0]));
        CHECK(testing::bit_identical(mins[i], mins[0]));
        CHECK(testing::bit_identical(idx[i], idx[0]));
      }
      CHECK(as_doubles(idx[0]) == reference_arg(mv, {400, 300}, d, true));
      CHECK(as_doubles(m.argmin(d)) == reference_arg(mv, {400, 300}, d, false));
    }
  }
}

TEST_CASE("gradcheck max and min (no ties)", "[reduce]") {
  using V = std::vector<Tensor>;
  auto ok = [](const testing::TensorFn& f, int seed) {
    auto r = testing::gradcheck(f, {testing::randn_f64({3, 4, 5}, seed)});
    INFO(r.message);
    CHECK(r.ok);
  };
  ok([](const V& in) { return in[0].max(); }, 6);
  ok([](const V& in) { return in[0].min(); }, 7);
  for (int d : {0, 1, 2, -1}) {
    INFO("dim " << d);
    ok([d](const V& in) { return std::get<0>(in[0].max(d)); }, 8);
    ok([d](const V& in) { return std::get<0>(in[0].max(d, true)); }, 9);
    ok([d](const V& in) { return std::get<0>(in[0].min(d)); }, 10);
    ok([d](const V& in) { return std::get<0>(sorix::min(in[0], d, true)); }, 11);
  }
}

TEST_CASE("max/min gradients with ties follow PyTorch", "[reduce]") {
  // All elements: split evenly among the maximal elements.
  Tensor x = sorix::tensor({1.0, 3.0, 3.0, 2.0}, true);
  x.max().backward();
  CHECK(as_doubles(x.grad()) == std::vector<double>{0, 0.5, 0.5, 0});
  Tensor y = sorix::tensor({-1.0, 4.0, -1.0, -1.0}, true);
  (y.min() * 3.0).backward();
  CHECK(as_doubles(y.grad()) == std::vector<double>{1, 0, 1, 1});
  // Along a dim: all of it to the index argmax picked (the first).
  Tensor z = sorix::tensor({{1.0, 3.0, 3.0}, {2.0, 2.0, 0.0}}, true);
  (std::get<0>(z.max(1)) * sorix::tensor({10.0, 20.0})).sum().backward();
  CHECK(as_doubles(z.grad()) == std::vector<double>{0, 10, 0, 20, 0, 0});
  Tensor w = sorix::tensor({{1.0, 3.0, 3.0}, {1.0, 2.0, 0.0}}, true);
  std::get<0>(w.min(0, true)).sum().backward();
  CHECK(as_doubles(w.grad()) == std::vector<double>{1, 0, 0, 0, 1, 1});
  // int64 results carry no gradient.
  CHECK_FALSE(z.argmax(1).requires_grad());
  CHECK(std::get<0>(z.max(1)).requires_grad());
}

TEST_CASE("max along a dim supports double backward", "[reduce]") {
  // d/dx of sum(max(x, 1)^2) = 2 max at the argmax; its gradient w.r.t. x again is 2 there.
  Tensor x = testing::randn_f64({2, 3}, 12);
  Tensor m = std::get<0>(x.max(1));
  Tensor loss = (m * m).sum();
  auto g = sorix::autograd::grad({loss}, {x}, {}, true);
  REQUIRE(g[0].requires_grad());
  auto gg = sorix::autograd::grad({g[0].sum()}, {x});
  const std::vector<double> idx = as_doubles(x.argmax(1));
  std::vector<double> want(6, 0.0);
  for (int r = 0; r < 2; ++r) want[static_cast<std::size_t>(r * 3 + static_cast<int>(idx[static_cast<std::size_t>(r)]))] = 2.0;
  CHECK(as_doubles(gg[0]) == want);
}
