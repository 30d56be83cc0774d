// Elementwise ops (autograd/src/unary.cpp, autograd/src/binary.cpp): forward values against a
// plain <cmath> scalar reference, bit-identity across thread counts, broadcasting, dtype
// promotion, comparisons, where, expand, kinks, float64 gradchecks, in-place ops.
//
// Tolerances against the <cmath> reference, in units in the last place of the reference:
//   exact (0 ulp): neg abs sqrt relu leaky_relu clamp add sub mul div pow (pow calls libm per lane);
//   exp, log: 2 ulp; tanh: 4 ulp; sigmoid: 8 ulp (xsimd's exp/log/tanh differ from libm by 1-2
//   ulp, and 1/(1+exp(-x)) amplifies exp's error a little). Measured maxima on 10^6 points:
//   exp 1, log 1, tanh 2, sigmoid 4 (float32) and 2 (float64).
#include <sorix/sorix.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/support/errors.hpp"
#include "tests/support/gradcheck.hpp"
#include "tests/support/values.hpp"

using namespace sorix;
using testing::at_thread_counts;
using testing::contains;
using testing::message_of;
using testing::numel_of;
using testing::values_of;
using testing::bit_identical;
using testing::gradcheck;
using testing::positive_f64;
using testing::randn_f64;

namespace {

const std::vector<std::int64_t> kSizes = {0,
                                          1,
                                          7,
                                          16,
                                          17,
                                          static_cast<std::int64_t>(parallel::kChunkSize) - 1,
                                          static_cast<std::int64_t>(parallel::kChunkSize) + 1,
                                          1000003};
const std::vector<int> kThreads = {1, 2, 3, 8};

// Deterministic values spread over [lo, hi] (a low-discrepancy sequence, no RNG).
template <class T>
Tensor spread(std::int64_t n, double lo, double hi, double phase = 0.0) {
  Tensor t = zeros({n}, dtype_of_v<T>);
  T* p = t.data_ptr<T>();
  for (std::int64_t i = 0; i < n; ++i) {
    const double u = std::fmod(phase + 0.6180339887498949 * static_cast<double>(i), 1.0);
    p[i] = static_cast<T>(lo + (hi - lo) * u);
  }
  return t;
}

// Distance of got from ref in units of ref's last place (0 when both are the same NaN/inf).
template <class T>
double ulps(T got, T ref) {
  if (got == ref || (std::isnan(got) && std::isnan(ref))) return 0.0;
  if (!std::isfinite(got) || !std::isfinite(ref)) return std::numeric_limits<double>::infinity();
  const T a = std::abs(ref);
  const T ulp = a == 0 ? std::numeric_limits<T>::denorm_min() : std::nextafter(a, std::numeric_limits<T>::infinity()) - a;
  return std::abs(static_cast<double>(got) - static_cast<double>(ref)) / static_cast<double>(ulp);
}

// Checks out[i] against ref(in[i]) within max_ulps; reports the worst element.
template <class T, class Ref>
void check_unary(const Tensor& in, const Tensor& out, Ref ref, double max_ulps) {
  REQUIRE(out.dtype() == in.dtype());
  REQUIRE(out.shape() == in.shape());
  const T* x = in.data_ptr<T>();
  const T* y = out.data_ptr<T>();
  double worst = 0.0;
  std::int64_t at = -1;
  for (std::int64_t i = 0; i < in.numel(); ++i) {
    const double u = ulps<T>(y[i], static_cast<T>(ref(x[i])));
    if (u > worst) {
      worst = u;
      at = i;
    }
  }
  INFO("worst " << worst << " ulp at element " << at << " of " << in.numel());
  CHECK(worst <= max_ulps);
}

template <class T, class Ref>
void check_binary(const Tensor& a_in, const Tensor& b_in, const Tensor& out, Ref ref, double max_ulps) {
  REQUIRE(out.shape() == a_in.shape());
  const Tensor a = a_in.contiguous(), b = b_in.contiguous();  // an expanded operand reads as its values
  const T* x = a.data_ptr<T>();
  const T* y = b.data_ptr<T>();
  const T* z = out.data_ptr<T>();
  double worst = 0.0;
  for (std::int64_t i = 0; i < a.numel(); ++i) worst = std::max(worst, ulps<T>(z[i], static_cast<T>(ref(x[i], y[i]))));
  CHECK(worst <= max_ulps);
}

struct UnaryCase {
  const char* name;
  double lo, hi;
  double max_ulps;
  std::function<Tensor(const Tensor&)> op;
  std::function<double(double)> ref64;
  std::function<float(float)> ref32;
};

template <class F>
UnaryCase unary_case(const char* name, double lo, double hi, double max_ulps, std::function<Tensor(const Tensor&)> op,
                     F ref) {
  return {name, lo, hi, max_ulps, std::move(op), [ref](double v) { return ref(v); }, [ref](float v) { return ref(v); }};
}

std::vector<UnaryCase> unary_cases() {
  return {
      unary_case("neg", -10, 10, 0, [](const Tensor& t) { return -t; }, [](auto v) { return -v; }),
      unary_case("exp", -20, 20, 2, [](const Tensor& t) { return t.exp(); }, [](auto v) { return std::exp(v); }),
      unary_case("log", 1e-3, 1e3, 2, [](const Tensor& t) { return t.log(); }, [](auto v) { return std::log(v); }),
      unary_case("sqrt", 0, 100, 0, [](const Tensor& t) { return t.sqrt(); }, [](auto v) { return std::sqrt(v); }),
      unary_case("abs", -10, 10, 0, [](const Tensor& t) { return t.abs(); }, [](auto v) { return std::abs(v); }),
      unary_case("tanh", -10, 10, 4, [](const Tensor& t) { return t.tanh(); }, [](auto v) { return std::tanh(v); }),
      unary_case("sigmoid", -20, 20, 8, [](const Tensor& t) { return t.sigmoid(); },
                 [](auto v) { return decltype(v)(1) / (decltype(v)(1) + std::exp(-v)); }),
      unary_case("relu", -10, 10, 0, [](const Tensor& t) { return t.relu(); },
                 [](auto v) { return v > 0 ? v : decltype(v)(0); }),
      unary_case("leaky_relu", -10, 10, 0, [](const Tensor& t) { return t.leaky_relu(0.1); },
                 [](auto v) { return v > 0 ? v : v * static_cast<decltype(v)>(0.1); }),
      unary_case("clamp", -3, 3, 0, [](const Tensor& t) { return t.clamp(-1.0, 2.0); },
                 [](auto v) { return std::min(std::max(v, decltype(v)(-1)), decltype(v)(2)); }),
      unary_case("pow_scalar", 0.01, 10, 0, [](const Tensor& t) { return t.pow(2.5); },
                 [](auto v) { return std::pow(v, decltype(v)(2.5)); }),
  };
}

struct BinaryCase {
  const char* name;
  double lo_a, hi_a, lo_b, hi_b;
  std::function<Tensor(const Tensor&, const Tensor&)> op;
  std::function<double(double, double)> ref64;
  std::function<float(float, float)> ref32;
};

template <class F>
BinaryCase binary_case(const char* name, double lo_a, double hi_a, double lo_b, double hi_b,
                       std::function<Tensor(const Tensor&, const Tensor&)> op, F ref) {
  return {name, lo_a, hi_a, lo_b, hi_b, std::move(op), [ref](double a, double b) { return ref(a, b); },
          [ref](float a, float b) { return ref(a, b); }};
}

std::vector<BinaryCase> binary_cases() {
  return {
      binary_case("add", -10, 10, -10, 10, [](const Tensor& a, const Tensor& b) { return a + b; },
                  [](auto a, auto b) { return a + b; }),
      binary_case("sub", -10, 10, -10, 10, [](const Tensor& a, const Tensor& b) { return a - b; },
                  [](auto a, auto b) { return a - b; }),
      binary_case("mul", -10, 10, -10, 10, [](const Tensor& a, const Tensor& b) { return a * b; },
                  [](auto a, auto b) { return a * b; }),
      binary_case("div", -10, 10, 0.5, 10, [](const Tensor& a, const Tensor& b) { return a / b; },
                  [](auto a, auto b) { return a / b; }),
      binary_case("pow", 0.01, 10, -3, 3, [](const Tensor& a, const Tensor& b) { return pow(a, b); },
                  [](auto a, auto b) { return std::pow(a, b); }),
  };
}

template <class T>
void unary_forward_all_sizes() {
  for (const UnaryCase& c : unary_cases()) {
    for (std::int64_t n : kSizes) {
      INFO(c.name << " " << dtype_name(dtype_of_v<T>) << " n=" << n);
      Tensor x = spread<T>(n, c.lo, c.hi);
      Tensor y = c.op(x);
      if constexpr (std::is_same_v<T, float>) {
        check_unary<T>(x, y, c.ref32, c.max_ulps);
      } else {
        check_unary<T>(x, y, c.ref64, c.max_ulps);
      }
    }
  }
}

template <class T>
void binary_forward_all_sizes() {
  for (const BinaryCase& c : binary_cases()) {
    for (std::int64_t n : kSizes) {
      INFO(c.name << " " << dtype_name(dtype_of_v<T>) << " n=" << n);
      Tensor a = spread<T>(n, c.lo_a, c.hi_a, 0.1);
      Tensor b = spread<T>(n, c.lo_b, c.hi_b, 0.55);
      Tensor y = c.op(a, b);
      CHECK(y.dtype() == dtype_of_v<T>);
      auto ref = [&c](T u, T v) -> T {
        if constexpr (std::is_same_v<T, float>) {
          return c.ref32(u, v);
        } else {
          return c.ref64(u, v);
        }
      };
      check_binary<T>(a, b, y, ref, 0);
      // Against a broadcast scalar on the right, and on the left.
      Tensor s = full({}, c.lo_b + 0.37 * (c.hi_b - c.lo_b), dtype_of_v<T>);
      Tensor sb = expand(s, {n});
      check_binary<T>(a, sb, c.op(a, s), ref, 0);
      Tensor s2 = full({}, c.lo_a + 0.61 * (c.hi_a - c.lo_a), dtype_of_v<T>);
      check_binary<T>(expand(s2, {n}), b, c.op(s2, b), ref, 0);
    }
  }
}

Tensor grad_of(const Tensor& y, const Tensor& x) { return autograd::grad({y.sum()}, {x})[0]; }

void check_gradcheck(const testing::TensorFn& f, std::vector<Tensor> inputs, const std::string& what) {
  auto r = gradcheck(f, std::move(inputs));
  INFO(what << ": " << r.message);
  CHECK(r.ok);
}

}  // namespace

// ---- forward against <cmath> ---------------------------------------------------------------------

TEST_CASE("unary forward matches <cmath> at every size (float32)", "[elementwise]") {
  unary_forward_all_sizes<float>();
}
TEST_CASE("unary forward matches <cmath> at every size (float64)", "[elementwise]") {
  unary_forward_all_sizes<double>();
}
TEST_CASE("binary forward matches scalar arithmetic at every size (float32)", "[elementwise]") {
  binary_forward_all_sizes<float>();
}
TEST_CASE("binary forward matches scalar arithmetic at every size (float64)", "[elementwise]") {
  binary_forward_all_sizes<double>();
}

TEST_CASE("special values", "[elementwise]") {
  const double inf = std::numeric_limits<double>::infinity();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Tensor x = tensor({-inf, -1.0, -0.0, 0.0, 1.0, inf, nan});
  CHECK(values_of<double>(x.exp())[0] == 0.0);
  CHECK(values_of<double>(x.exp())[5] == inf);
  CHECK(std::isnan(values_of<double>(x.exp())[6]));
  CHECK(values_of<double>(x.log())[3] == -inf);
  CHECK(std::isnan(values_of<double>(x.log())[1]));
  CHECK(values_of<double>(x.tanh())[0] == -1.0);
  CHECK(values_of<double>(x.tanh())[5] == 1.0);
  CHECK(values_of<double>(x.sigmoid())[0] == 0.0);
  CHECK(values_of<double>(x.sigmoid())[5] == 1.0);
  CHECK(values_of<double>(x.sigmoid())[3] == 0.5);
  CHECK(std::isnan(values_of<double>(x.relu())[6]));  // NaN stays NaN (as PyTorch)
  CHECK(std::signbit(values_of<double>(x.relu())[2]));  // relu(-0) = -0 (as PyTorch)
  CHECK(std::isnan(values_of<double>(x.clamp(-1.0, 1.0))[6]));  // NaN stays NaN
  // pow special cases (libm's): 0^0 = 1, 0^-1 = inf, (-2)^3 = -8, (-8)^(1/3) = NaN.
  Tensor p = pow(tensor({0.0, 0.0, -2.0, -8.0, 2.0}), tensor({0.0, -1.0, 3.0, 1.0 / 3.0, 0.5}));
  const auto pv = values_of<double>(p);
  CHECK(pv[0] == 1.0);
  CHECK(pv[1] == inf);
  CHECK(pv[2] == -8.0);
  CHECK(std::isnan(pv[3]));
  CHECK(pv[4] == std::pow(2.0, 0.5));
  CHECK(values_of<float>(tensor({0.f, 3.f}).pow(0.0)) == std::vector<float>{1.f, 1.f});
  // int64 neg and abs stay int64 and exact.
  Tensor i = tensor({-3, 0, 5});
  CHECK((-i).dtype() == int64);
  CHECK(values_of<std::int64_t>(-i) == std::vector<std::int64_t>{3, 0, -5});
  CHECK(values_of<std::int64_t>(i.abs()) == std::vector<std::int64_t>{3, 0, 5});
  // As PyTorch: exp, tanh, ... of an integer tensor compute in float32; ops PyTorch has no integer
  // kernel for refuse int64, naming the op and the dtype.
  CHECK(i.exp().dtype() == float32);
  CHECK(bit_identical(i.tanh(), i.to(float32).tanh()));
  CHECK(contains(message_of([&] { i.leaky_relu(); }), "leaky_relu"));
  CHECK(contains(message_of([&] { softmax(i, 0); }), "int64"));
  CHECK_THROWS_AS(Tensor().exp(), std::invalid_argument);
}

// ---- determinism ---------------------------------------------------------------------------------

TEST_CASE("unary ops are bit-identical at 1, 2, 3, 8 threads", "[elementwise]") {
  for (const UnaryCase& c : unary_cases()) {
    for (Dtype dt : {float32, float64}) {
      for (std::int64_t n : {static_cast<std::int64_t>(3 * parallel::kChunkSize + 5), std::int64_t(1000003)}) {
        Tensor x = (dt == float32 ? spread<float>(n, c.lo, c.hi) : spread<double>(n, c.lo, c.hi));
        auto out = at_thread_counts(kThreads, [&] { return c.op(x); });
        INFO(c.name << " " << dtype_name(dt) << " n=" << n);
        for (std::size_t k = 1; k < out.size(); ++k) CHECK(bit_identical(out[0], out[k]));
      }
    }
  }
}

TEST_CASE("binary ops are bit-identical at 1, 2, 3, 8 threads, with and without broadcasting",
          "[elementwise]") {
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {{1000003}, {1000003}}, {{1000, 1001}, {1001}}, {{1000, 1}, {1, 1001}}, {{3, 1, 40000}, {2, 1}},
      {{1000003}, {}},        {{}, {70001}}};
  for (const BinaryCase& c : binary_cases()) {
    for (const auto& [sa, sb] : shapes) {
      Tensor a = spread<float>(numel_of(sa), c.lo_a, c.hi_a, 0.1).reshape(sa);
      Tensor b = spread<float>(numel_of(sb), c.lo_b, c.hi_b, 0.5).reshape(sb);
      auto out = at_thread_counts(kThreads, [&] { return c.op(a, b); });
      INFO(c.name << " " << shape_string(sa) << " with " << shape_string(sb));
      for (std::size_t k = 1; k < out.size(); ++k) CHECK(bit_identical(out[0], out[k]));
    }
  }
  // where and expand, too.
  Tensor cond = spread<float>(1000, -1, 1).reshape({1000, 1}).gt(0.0);
  Tensor a = spread<double>(1000 * 1001, -5, 5).reshape({1000, 1001});
  Tensor b = spread<double>(1001, -5, 5, 0.3);
  auto w = at_thread_counts(kThreads, [&] { return where(cond, a, b); });
  auto e = at_thread_counts(kThreads, [&] { return expand(b, {1000, 1001}); });
  for (std::size_t k = 1; k < w.size(); ++k) {
    CHECK(bit_identical(w[0], w[k]));
    CHECK(bit_identical(e[0], e[k]));
  }
}

TEST_CASE("elementwise gradients are bit-identical at 1, 2, 3, 8 threads", "[elementwise]") {
  Tensor a = randn_f64({700, 300}, 1);
  Tensor b = randn_f64({300}, 2);
  auto run = [&] {
    a.set_grad(Tensor());
    b.set_grad(Tensor());
    (a * b + a.tanh() * b.exp() - (a / (b.abs() + 1.0)).pow(2.0)).sum().backward();
    return std::vector<Tensor>{a.grad(), b.grad()};
  };
  auto out = at_thread_counts(kThreads, run);
  for (std::size_t k = 1; k < out.size(); ++k) {
    CHECK(bit_identical(out[0][0], out[k][0]));
    CHECK(bit_identical(out[0][1], out[k][1]));
  }
}

// ---- broadcasting ------------------------------------------------------------------------------

TEST_CASE("broadcasting", "[elementwise]") {
  Tensor a23 = tensor({{1.f, 2.f, 3.f}, {4.f, 5.f, 6.f}});
  Tensor r = a23 + tensor({10.f, 20.f, 30.f});
  CHECK(r.shape() == Shape{2, 3});
  CHECK(values_of<float>(r) == std::vector<float>{11, 22, 33, 14, 25, 36});

  Tensor outer = tensor({1.f, 2.f}).reshape({2, 1}) * tensor({1.f, 10.f, 100.f}).reshape({1, 3});
  CHECK(outer.shape() == Shape{2, 3});
  CHECK(values_of<float>(outer) == std::vector<float>{1, 10, 100, 2, 20, 200});

  Tensor a413 = arange(12).reshape({4, 1, 3});
  Tensor b21 = tensor({100.f, 200.f}).reshape({2, 1});
  Tensor d = a413 - b21;
  CHECK(d.shape() == Shape{4, 2, 3});
  {
    const auto v = values_of<float>(d);
    bool ok = true;
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < 2; ++j)
        for (int k = 0; k < 3; ++k) ok = ok && v[(i * 2 + j) * 3 + k] == static_cast<float>(i * 3 + k) - (j == 0 ? 100.f : 200.f);
    CHECK(ok);
  }

  // 0-dim tensors broadcast against anything, and give 0-dim results together.
  Tensor s = full({}, 2.0);
  CHECK((a23 * s).shape() == Shape{2, 3});
  CHECK(values_of<float>(s * a23) == std::vector<float>{2, 4, 6, 8, 10, 12});
  CHECK((s + s).dim() == 0);
  CHECK((s + s).item<float>() == 4.f);
  // A [1] tensor broadcasts too.
  CHECK(values_of<float>(a23 / tensor({2.f})) == std::vector<float>{0.5f, 1, 1.5f, 2, 2.5f, 3});
  // Empty dims broadcast to empty results.
  CHECK((zeros({0, 3}) + tensor({1.f, 2.f, 3.f})).shape() == Shape{0, 3});
  CHECK((zeros({2, 1}) * zeros({0})).shape() == Shape{2, 0});

  // Tensor-scalar and scalar-tensor operators.
  Tensor x = tensor({1.f, 2.f, 4.f});
  CHECK(values_of<float>(x + 1.0) == std::vector<float>{2, 3, 5});
  CHECK(values_of<float>(1.0 + x) == std::vector<float>{2, 3, 5});
  CHECK(values_of<float>(x - 1.0) == std::vector<float>{0, 1, 3});
  CHECK(values_of<float>(1.0 - x) == std::vector<float>{0, -1, -3});
  CHECK(values_of<float>(x * 3.0) == std::vector<float>{3, 6, 12});
  CHECK(values_of<float>(3.0 * x) == std::vector<float>{3, 6, 12});
  CHECK(values_of<float>(x / 2.0) == std::vector<float>{0.5f, 1, 2});
  CHECK(values_of<float>(8.0 / x) == std::vector<float>{8, 4, 2});
  CHECK(values_of<float>(-x) == std::vector<float>{-1, -2, -4});
  // Methods are the same ops.
  CHECK(values_of<float>(x.add(x)) == std::vector<float>{2, 4, 8});
  CHECK(values_of<float>(x.sub(x)) == std::vector<float>{0, 0, 0});
  CHECK(values_of<float>(x.mul(x)) == std::vector<float>{1, 4, 16});
  CHECK(values_of<float>(x.div(x)) == std::vector<float>{1, 1, 1});
  CHECK(values_of<float>(x.pow(x)) == std::vector<float>{1, 4, 256});
  CHECK(values_of<float>(x.neg()) == std::vector<float>{-1, -2, -4});
}

TEST_CASE("broadcasting errors name the op and both shapes", "[elementwise]") {
  Tensor a = zeros({2, 3});
  Tensor b = zeros({4});
  const std::vector<std::pair<std::string, std::function<Tensor()>>> ops = {
      {"add", [&] { return a + b; }},       {"sub", [&] { return a - b; }},
      {"mul", [&] { return a * b; }},       {"div", [&] { return a / b; }},
      {"pow", [&] { return pow(a, b); }},   {"gt", [&] { return a.gt(b); }},
      {"eq", [&] { return a.eq(b); }},      {"where", [&] { return where(b.gt(0), a, a); }},
  };
  for (const auto& [name, f] : ops) {
    const std::string msg = message_of([&] { f(); });
    INFO(msg);
    CHECK(contains(msg, name));
    CHECK(contains(msg, "[2, 3]"));
    CHECK(contains(msg, "[4]"));
  }
  const std::string m = message_of([] { zeros({2, 3, 5}) * zeros({3, 1, 4}); });
  CHECK(contains(m, "[2, 3, 5]"));
  CHECK(contains(m, "[3, 1, 4]"));
}

// ---- dtypes ------------------------------------------------------------------------------------

TEST_CASE("dtype promotion", "[elementwise]") {
  Tensor f = tensor({1.5f, 2.f});
  Tensor d = tensor({0.25, 1.0});
  Tensor i = tensor({3, 4});
  CHECK((f + d).dtype() == float64);
  CHECK(values_of<double>(f + d) == std::vector<double>{1.75, 3.0});
  CHECK((d * f).dtype() == float64);
  CHECK((i + f).dtype() == float32);
  CHECK(values_of<float>(i + f) == std::vector<float>{4.5f, 6.f});
  CHECK((f - i).dtype() == float32);
  CHECK((i + d).dtype() == float64);
  // A number counts by its category, never its value (as PyTorch): an integer keeps int64, a
  // floating number (whole or not) makes it float32.
  CHECK((i * 2).dtype() == int64);
  CHECK(values_of<std::int64_t>(i * 2) == std::vector<std::int64_t>{6, 8});
  CHECK((2 * i).dtype() == int64);
  CHECK((i + i).dtype() == int64);
  CHECK(values_of<std::int64_t>(i - 5) == std::vector<std::int64_t>{-2, -1});
  CHECK((i * 2.0).dtype() == float32);
  CHECK((2.0 * i).dtype() == float32);
  CHECK((i * 2.5).dtype() == float32);
  CHECK(values_of<float>(i * 2.5) == std::vector<float>{7.5f, 10.f});
  // True division: int64 / int64 is float32.
  Tensor q = tensor({7, -7}) / tensor({2, 2});
  CHECK(q.dtype() == float32);
  CHECK(values_of<float>(q) == std::vector<float>{3.5f, -3.5f});
  CHECK((tensor({7}) / 2.0).dtype() == float32);
  CHECK((tensor({7}) / 2.0).item<float>() == 3.5f);
  // A double scalar takes a float32 tensor's dtype.
  CHECK((f * 2.0).dtype() == float32);
  CHECK((f + 0.1).data<float>()(0) == 1.5f + static_cast<float>(0.1));
  // pow of two int64 tensors stays int64 (exact, as PyTorch); a floating exponent makes it float.
  CHECK(pow(i, i).dtype() == int64);
  CHECK(values_of<std::int64_t>(pow(i, i)) == std::vector<std::int64_t>{27, 256});
  CHECK(i.pow(2.0).dtype() == float32);
}

// ---- comparisons, where, expand ------------------------------------------------------------------

TEST_CASE("comparisons give bool, compared in the promoted dtype, and no gradient", "[elementwise]") {
  Tensor a = tensor({1.f, 2.f, 3.f}, true);
  Tensor b = tensor({2.0, 2.0, 2.0});
  struct C {
    const char* name;
    Tensor out;
    std::vector<bool> want;
  };
  const std::vector<C> cases = {{"gt", a.gt(b), {0, 0, 1}}, {"lt", a.lt(b), {1, 0, 0}}, {"ge", a.ge(b), {0, 1, 1}},
                                {"le", a.le(b), {1, 1, 0}}, {"eq", a.eq(b), {0, 1, 0}}, {"ne", a.ne(b), {1, 0, 1}},
                                {"gt fn", gt(a, b), {0, 0, 1}}, {"ne fn", ne(a, b), {1, 0, 1}}};
  for (const C& c : cases) {
    INFO(c.name);
    CHECK(c.out.dtype() == kBool);
    CHECK(values_of<bool>(c.out) == c.want);
    CHECK_FALSE(c.out.requires_grad());
    CHECK(c.out.grad_fn() == nullptr);
  }
  // Against a scalar.
  CHECK(a.gt(2.0).dtype() == kBool);
  CHECK(values_of<bool>(a.gt(2.0)) == std::vector<bool>{0, 0, 1});
  CHECK(values_of<bool>(a.le(2.0)) == std::vector<bool>{1, 1, 0});
  CHECK(values_of<bool>(a.eq(3.0)) == std::vector<bool>{0, 0, 1});
  CHECK(values_of<bool>(a.ne(3.0)) == std::vector<bool>{1, 1, 0});
  CHECK(values_of<bool>(a.lt(1.5)) == std::vector<bool>{1, 0, 0});
  CHECK(values_of<bool>(a.ge(1.5)) == std::vector<bool>{0, 1, 1});
  CHECK_FALSE(a.gt(2.0).requires_grad());
  // int64 compares exactly; an int64 tensor against a fractional number compares as a float.
  Tensor i = tensor({1, 5});
  CHECK(i.gt(tensor({3, 3})).dtype() == kBool);
  CHECK(values_of<bool>(lt(i, tensor({3, 3}))) == std::vector<bool>{1, 0});
  CHECK(values_of<bool>(i.lt(1.5)) == std::vector<bool>{1, 0});
  // NaN compares unequal to everything, itself included.
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Tensor n = tensor({nan, 1.0});
  CHECK(values_of<bool>(n.eq(n)) == std::vector<bool>{0, 1});
  CHECK(values_of<bool>(n.ne(n)) == std::vector<bool>{1, 0});
  CHECK(values_of<bool>(n.gt(0.0)) == std::vector<bool>{0, 1});
  // Broadcasting.
  Tensor m = tensor({1.f, 3.f}).reshape({2, 1}).lt(tensor({2.f, 4.f}));
  CHECK(m.shape() == Shape{2, 2});
  CHECK(values_of<bool>(m) == std::vector<bool>{1, 1, 0, 1});
  // A mask multiplies directly (bool promotes to the other operand's dtype).
  CHECK(values_of<float>(a.detach() * a.gt(1.5)) == std::vector<float>{0, 2, 3});
}

TEST_CASE("where", "[elementwise]") {
  Tensor cond = tensor({1.f, 0.f, 2.f, -1.f}).ne(0);
  Tensor a = tensor({1.0, 2.0, 3.0, 4.0});
  Tensor b = tensor({-1.0, -2.0, -3.0, -4.0});
  Tensor w = where(cond, a, b);
  CHECK(w.dtype() == float64);
  CHECK(values_of<double>(w) == std::vector<double>{1, -2, 3, 4});
  // Broadcasting of all three.
  Tensor w2 = where(tensor({true, false}).reshape({2, 1}), tensor({1.f, 2.f, 3.f}), full({}, 9.0));
  CHECK(w2.shape() == Shape{2, 3});
  CHECK(w2.dtype() == float32);
  CHECK(values_of<float>(w2) == std::vector<float>{1, 2, 3, 9, 9, 9});
  // Operands of different dtypes are promoted.
  CHECK(where(tensor({true}), tensor({1}), tensor({2.5})).dtype() == float64);
  // The condition must be bool (or uint8, as PyTorch 1.13).
  CHECK_THROWS_AS(where(tensor({1.f, 0.f}), a, b), std::invalid_argument);
  // Gradient goes to the picked side only.
  Tensor x = tensor({1.0, 2.0, 3.0}, true);
  Tensor y = tensor({4.0}, true);
  Tensor c = tensor({true, false, true});
  where(c, x * 2.0, y).sum().backward();
  CHECK(values_of<double>(x.grad()) == std::vector<double>{2, 0, 2});
  CHECK(values_of<double>(y.grad()) == std::vector<double>{1});  // summed over the broadcast
  // where with a condition that broadcasts beyond the operands.
  CHECK(where(tensor({true, false}).reshape({2, 1}), tensor({1.f}), tensor({2.f})).shape() == Shape{2, 1});
}

TEST_CASE("expand", "[elementwise]") {
  Tensor x = tensor({1.f, 2.f, 3.f}).reshape({3, 1});
  Tensor e = expand(x, {3, 4});
  CHECK(e.shape() == Shape{3, 4});
  CHECK(values_of<float>(e) == std::vector<float>{1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3});
  Tensor e2 = expand(tensor({1, 2}), {2, 2, 2});
  CHECK(e2.dtype() == int64);
  CHECK(values_of<std::int64_t>(e2) == std::vector<std::int64_t>{1, 2, 1, 2, 1, 2, 1, 2});
  CHECK(values_of<float>(expand(full({}, 7.0), {3})) == std::vector<float>{7, 7, 7});
  CHECK(expand(x, {3, 1}).is_same(x));  // nothing to do: the same tensor
  const std::string m1 = message_of([&] { expand(x, {4, 4}); });
  CHECK(contains(m1, "expand"));
  CHECK(contains(m1, "[3, 1]"));
  CHECK(contains(m1, "[4, 4]"));
  const std::string m2 = message_of([] { expand(zeros({2, 3}), {3}); });
  CHECK(contains(m2, "expand"));
  CHECK(contains(m2, "[2, 3]"));
  CHECK(expand(x, {2, 3, -1}).shape() == Shape{2, 3, 1});  // -1 keeps a size (as PyTorch)
  CHECK_THROWS_AS(expand(x, {-1, 3, 1}), std::invalid_argument);  // but not for a new dim
  // Gradient: summed back.
  Tensor g = tensor({1.0, 2.0}, true);
  (expand(g, {3, 2}) * tensor({{1.0, 10.0}, {2.0, 20.0}, {3.0, 30.0}})).sum().backward();
  CHECK(values_of<double>(g.grad()) == std::vector<double>{6, 60});
}

// ---- kinks -------------------------------------------------------------------------------------

TEST_CASE("clamp at its kinks", "[elementwise]") {
  Tensor x = tensor({-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0}, true);
  Tensor y = x.clamp(-1.0, 1.0);
  CHECK(values_of<double>(y) == std::vector<double>{-1, -1, -0.5, 0, 0.5, 1, 1});
  y.sum().backward();
  // 1 inside and at the bounds (as PyTorch), 0 outside.
  CHECK(values_of<double>(x.grad()) == std::vector<double>{0, 1, 1, 1, 1, 1, 0});
  // One-sided.
  Tensor z = tensor({-1.0, 0.0, 1.0}, true);
  CHECK(values_of<double>(z.clamp(0.0, std::nullopt)) == std::vector<double>{0, 0, 1});
  CHECK(values_of<double>(z.clamp(std::nullopt, 0.0)) == std::vector<double>{-1, 0, 0});
  CHECK(values_of<double>(grad_of(z.clamp(0.0, std::nullopt), z)) == std::vector<double>{0, 1, 1});
  CHECK(values_of<double>(grad_of(z.clamp(std::nullopt, 0.0), z)) == std::vector<double>{1, 1, 0});
  CHECK(values_of<float>(tensor({-1.f, 0.f, 1.f}).clamp(0.0, 0.0)) == std::vector<float>{0, 0, 0});
  CHECK(contains(message_of([&] { z.clamp(1.0, -1.0); }), "clamp"));
  CHECK(contains(message_of([&] { z.clamp(std::nullopt, std::nullopt); }), "clamp"));
  // An integer tensor with floating bounds is float32, with integer bounds it stays int64 (as PyTorch).
  CHECK(tensor({1}).clamp(0.0, 1.0).dtype() == float32);
  CHECK(values_of<std::int64_t>(tensor({-3, 1, 9}).clamp(0, 5)) == std::vector<std::int64_t>{0, 1, 5});
}

TEST_CASE("relu, leaky_relu, abs at their kinks", "[elementwise]") {
  Tensor x = tensor({-1.0, 0.0, 1.0}, true);
  CHECK(values_of<double>(x.relu()) == std::vector<double>{0, 0, 1});
  CHECK(values_of<double>(grad_of(x.relu(), x)) == std::vector<double>{0, 0, 1});  // 0 at 0
  CHECK(values_of<double>(x.leaky_relu(0.1)) == std::vector<double>{-0.1, 0, 1});
  // At 0 the negative side's slope, as PyTorch (its leaky_relu backward tests x > 0).
  CHECK(values_of<double>(grad_of(x.leaky_relu(0.1), x)) == std::vector<double>{0.1, 0.1, 1});
  CHECK(values_of<double>(grad_of(x.leaky_relu(), x)) == std::vector<double>{0.01, 0.01, 1});
  CHECK(values_of<double>(x.abs()) == std::vector<double>{1, 0, 1});
  CHECK(values_of<double>(grad_of(x.abs(), x)) == std::vector<double>{-1, 0, 1});  // 0 at 0
  CHECK(values_of<float>(tensor({-0.f}).relu()) == std::vector<float>{0.f});
  CHECK_THROWS_AS(x.leaky_relu(std::numeric_limits<double>::quiet_NaN()), std::invalid_argument);
  // pow's gradient at 0: d/dx x^1 = 1, d/dx x^2 = 0; d/dy 0^y = 0 (not NaN).
  Tensor z = tensor({0.0}, true);
  CHECK(grad_of(z.pow(1.0), z).item<double>() == 1.0);
  CHECK(grad_of(z.pow(2.0), z).item<double>() == 0.0);
  CHECK(grad_of(z.pow(0.0), z).item<double>() == 0.0);
  Tensor e = tensor({2.0}, true);
  auto g = autograd::grad({pow(z, e).sum()}, {z, e});
  CHECK(g[0].item<double>() == 0.0);
  CHECK(g[1].item<double>() == 0.0);
}

TEST_CASE("relu's fused backward gives the composite g * (x > 0) bit for bit", "[elementwise]") {
  // Signed zeros and NaNs included: g * 0 is -0 for a negative g and NaN for a NaN g.
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (std::int64_t n : {7, 40000}) {  // inline and chunked
    std::vector<double> xs(static_cast<std::size_t>(n)), gs(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) {
      const double xv[] = {-1.0, 0.0, -0.0, 2.0, nan, 3.5, -7.0};
      const double gv[] = {-2.0, 3.0, -0.0, nan, 1.0, -4.0, nan};
      xs[static_cast<std::size_t>(i)] = xv[i % 7];
      gs[static_cast<std::size_t>(i)] = gv[(i / 7) % 7];
    }
    const TensorOptions f32 = TensorOptions(Dtype::Float32);
    Tensor x = tensor(xs, {n}, TensorOptions(Dtype::Float32).requires_grad(true)), g = tensor(gs, {n}, f32);
    const Tensor composite = g * x.detach().gt(0.0);
    auto runs = at_thread_counts({1, 2, 3}, [&] { return autograd::grad({x.relu()}, {x}, {g})[0]; });
    for (const auto& r : runs) CHECK(bit_identical(r, composite));
    // Under create_graph the gradient is itself differentiable (w.r.t. g here) and equal.
    Tensor gg = tensor(gs, {n}, TensorOptions(Dtype::Float32).requires_grad(true));
    Tensor recorded = autograd::grad({x.relu()}, {x}, {gg}, /*create_graph=*/true)[0];
    CHECK(recorded.requires_grad());
    CHECK(bit_identical(recorded.detach(), composite));
  }
}

// ---- gradchecks ----------------------------------------------------------------------------------

TEST_CASE("gradcheck catches a wrong gradient (the checks below can fail)", "[elementwise]") {
  // x * x.detach() has gradient x where the true derivative of x^2 is 2x.
  auto r = gradcheck([](const std::vector<Tensor>& in) { return in[0] * in[0].detach(); }, {randn_f64({4}, 1)});
  CHECK_FALSE(r.ok);
}

TEST_CASE("gradcheck: unary ops (float64)", "[elementwise]") {
  using V = std::vector<Tensor>;
  check_gradcheck([](const V& in) { return -in[0]; }, {randn_f64({3, 4}, 1)}, "neg");
  check_gradcheck([](const V& in) { return in[0].exp(); }, {randn_f64({3, 4}, 2)}, "exp");
  check_gradcheck([](const V& in) { return in[0].log(); }, {positive_f64({3, 4}, 3)}, "log");
  check_gradcheck([](const V& in) { return in[0].sqrt(); }, {positive_f64({3, 4}, 4)}, "sqrt");
  check_gradcheck([](const V& in) { return in[0].abs(); }, {positive_f64({2, 3}, 5) - 3.0}, "abs (negative side)");
  check_gradcheck([](const V& in) { return in[0].abs(); }, {randn_f64({3, 4}, 5)}, "abs");
  check_gradcheck([](const V& in) { return in[0].tanh(); }, {randn_f64({3, 4}, 6)}, "tanh");
  check_gradcheck([](const V& in) { return in[0].sigmoid(); }, {randn_f64({3, 4}, 7)}, "sigmoid");
  check_gradcheck([](const V& in) { return in[0].relu(); }, {randn_f64({3, 4}, 8)}, "relu");
  check_gradcheck([](const V& in) { return in[0].leaky_relu(0.2); }, {randn_f64({3, 4}, 9)}, "leaky_relu");
  check_gradcheck([](const V& in) { return in[0].clamp(-0.5, 0.7); }, {randn_f64({4, 5}, 10)}, "clamp");
  check_gradcheck([](const V& in) { return in[0].clamp(-0.5, std::nullopt); }, {randn_f64({4, 5}, 11)}, "clamp min");
  check_gradcheck([](const V& in) { return in[0].pow(3.0); }, {randn_f64({3, 4}, 12)}, "pow 3");
  check_gradcheck([](const V& in) { return in[0].pow(-1.5); }, {positive_f64({3, 4}, 13)}, "pow -1.5");
  check_gradcheck([](const V& in) { return in[0].pow(0.0); }, {randn_f64({3}, 14)}, "pow 0");
  // An integer exponent on a float tensor is the same float pow (the number's category only
  // matters for integer tensors); a number base: d/dy b^y = b^y log b.
  check_gradcheck([](const V& in) { return in[0].pow(3); }, {randn_f64({3, 4}, 15)}, "pow int 3");
  check_gradcheck([](const V& in) { return pow(2.5, in[0]); }, {randn_f64({3, 4}, 16)}, "pow scalar base");
  check_gradcheck([](const V& in) { return in[0].clone(); }, {randn_f64({3}, 15)}, "clone");
  check_gradcheck([](const V& in) { return expand(in[0], {2, 3, 4}); }, {randn_f64({3, 1}, 16)}, "expand");
  // 0-dim and empty inputs.
  check_gradcheck([](const V& in) { return in[0].tanh() * in[0]; }, {randn_f64({}, 17)}, "0-dim");
  check_gradcheck([](const V& in) { return in[0].exp(); }, {randn_f64({0, 3}, 18)}, "empty");
}

TEST_CASE("gradcheck: binary ops with broadcasting (float64)", "[elementwise]") {
  using V = std::vector<Tensor>;
  const std::vector<std::pair<Shape, Shape>> shapes = {{{2, 3}, {2, 3}}, {{2, 3}, {3}},    {{2, 1}, {1, 3}},
                                                       {{4, 1, 3}, {2, 1}}, {{}, {2, 2}}, {{3}, {}}};
  for (const auto& [sa, sb] : shapes) {
    const std::string where_ = shape_string(sa) + " with " + shape_string(sb);
    check_gradcheck([](const V& in) { return in[0] + in[1]; }, {randn_f64(sa, 1), randn_f64(sb, 2)}, "add " + where_);
    check_gradcheck([](const V& in) { return in[0] - in[1]; }, {randn_f64(sa, 3), randn_f64(sb, 4)}, "sub " + where_);
    check_gradcheck([](const V& in) { return in[0] * in[1]; }, {randn_f64(sa, 5), randn_f64(sb, 6)}, "mul " + where_);
    check_gradcheck([](const V& in) { return in[0] / in[1]; }, {randn_f64(sa, 7), positive_f64(sb, 8)}, "div " + where_);
    check_gradcheck([](const V& in) { return pow(in[0], in[1]); }, {positive_f64(sa, 9), randn_f64(sb, 10)},
                    "pow " + where_);
    check_gradcheck([](const V& in) { return where(in[0].gt(0.3), in[0], in[1]); },
                    {randn_f64(sa, 11), randn_f64(sb, 12)}, "where " + where_);
  }
  // where with a condition that broadcasts against both.
  Tensor cond = tensor({true, false}).reshape({2, 1});
  check_gradcheck([&](const V& in) { return where(cond, in[0], in[1]); }, {randn_f64({3}, 13), randn_f64({2, 3}, 14)},
                  "where broadcast cond");
  // Only one side requires grad.
  check_gradcheck([](const V& in) { return in[0] * in[1]; }, {randn_f64({2, 3}, 15), randn_f64({3}, 16, false)},
                  "mul, one side");
  check_gradcheck([](const V& in) { return in[1] / in[0]; }, {positive_f64({3}, 17), randn_f64({2, 3}, 18, false)},
                  "div, one side");
  // Tensor-scalar operators, both orders.
  check_gradcheck([](const V& in) { return 2.0 - in[0] * 3.0 + 1.0 / in[0] + (in[0] - 0.5) / 4.0 + 5.0 * in[0]; },
                  {positive_f64({5}, 19)}, "scalar operators");
  // The same tensor on both sides, and float32 inside a float64 graph.
  check_gradcheck([](const V& in) { return in[0] * in[0] / (in[0].abs() + 1.0); }, {randn_f64({4}, 20)}, "x*x/(|x|+1)");
  check_gradcheck([](const V& in) { return in[0] * in[1].to(float64) ; }, {randn_f64({3}, 21), randn_f64({3}, 22)},
                  "to");
}

TEST_CASE("gradcheck: in-place ops on non-leaves record the ordinary graph (float64)", "[elementwise]") {
  using V = std::vector<Tensor>;
  check_gradcheck(
      [](const V& in) {
        Tensor y = in[0] * 1.0;
        y.mul_(in[1]);
        y.add_(in[1]);
        y.sub_(0.5);
        y.div_(in[1] + 3.0);
        y.mul_(2.0);
        return y;
      },
      {randn_f64({2, 3}, 1), randn_f64({3}, 2)}, "add_ sub_ mul_ div_");
  check_gradcheck(
      [](const V& in) {
        Tensor y = in[0] * 1.0;
        y.clamp_(-0.5, 0.5);
        return y * in[0];
      },
      {randn_f64({6}, 3)}, "clamp_");
  check_gradcheck(
      [](const V& in) {
        Tensor y = in[0] * 1.0;
        y.pow_(3);
        y.pow_(in[1]);
        Tensor z = in[1] * 1.0;
        z.pow_(z);  // the exponent aliases the base: both keep their values from before
        return y * z;
      },
      {positive_f64({4}, 7), positive_f64({4}, 8)}, "pow_");
  check_gradcheck(
      [](const V& in) {
        Tensor y = zeros({2, 3}, float64);
        y.copy_(in[0]);
        return y * 2.0;
      },
      {randn_f64({3}, 4)}, "copy_ (broadcast source)");
  check_gradcheck(
      [](const V& in) {
        Tensor y = in[0] * 1.0;
        y += in[1];
        y -= 1.0;
        y *= in[1];
        y /= 2.0;
        return y;
      },
      {randn_f64({3}, 5), randn_f64({3}, 6)}, "compound assignment");
}

// ---- in-place ops ------------------------------------------------------------------------------

TEST_CASE("in-place ops: values and the version counter", "[elementwise]") {
  Tensor t = tensor({1.f, -2.f, 3.f});
  std::uint64_t v = t.version();
  auto bumped = [&] {
    const bool ok = t.version() == v + 1;
    v = t.version();
    return ok;
  };
  const void* storage = t.impl()->storage.get();
  t.add_(tensor({1.f, 1.f, 1.f}));
  CHECK(values_of<float>(t) == std::vector<float>{2, -1, 4});
  CHECK(bumped());
  t.sub_(tensor({1.f}));
  CHECK(values_of<float>(t) == std::vector<float>{1, -2, 3});
  CHECK(bumped());
  t.mul_(tensor({2.f, 3.f, 4.f}));
  CHECK(values_of<float>(t) == std::vector<float>{2, -6, 12});
  CHECK(bumped());
  t.div_(tensor({2.f}));
  CHECK(values_of<float>(t) == std::vector<float>{1, -3, 6});
  CHECK(bumped());
  t.add_(1.0);
  CHECK(bumped());
  t.sub_(2.0);
  CHECK(bumped());
  t.mul_(3.0);
  CHECK(bumped());
  t.div_(3.0);
  CHECK(bumped());
  CHECK(values_of<float>(t) == std::vector<float>{0, -4, 5});
  t.clamp_(-1.0, 1.0);
  CHECK(values_of<float>(t) == std::vector<float>{0, -1, 1});
  CHECK(bumped());
  t.fill_(2.5);
  CHECK(values_of<float>(t) == std::vector<float>{2.5f, 2.5f, 2.5f});
  CHECK(bumped());
  t.zero_();
  CHECK(values_of<float>(t) == std::vector<float>{0, 0, 0});
  CHECK(bumped());
  t.copy_(tensor({7.0, 8.0, 9.0}));  // converted to the tensor's dtype
  CHECK(t.dtype() == float32);
  CHECK(values_of<float>(t) == std::vector<float>{7, 8, 9});
  CHECK(bumped());
  t.copy_(full({}, 1.0));  // broadcast source
  CHECK(values_of<float>(t) == std::vector<float>{1, 1, 1});
  CHECK(bumped());
  t += 1.0;
  t -= tensor({1.f});
  t *= 4.0;
  t /= tensor({2.f});
  CHECK(values_of<float>(t) == std::vector<float>{2, 2, 2});
  CHECK(t.version() == v + 4);
  // The storage is the same object throughout: aliases see every change.
  CHECK(t.impl()->storage.get() == storage);
  Tensor alias = t.detach();
  t.add_(1.0);
  CHECK(values_of<float>(alias) == std::vector<float>{3, 3, 3});
  // A result of another shape is refused, naming the op and both shapes.
  const std::string m = message_of([&] { t.add_(zeros({2, 3})); });
  CHECK(contains(m, "add_"));
  CHECK(contains(m, "[2, 3]"));
  CHECK(contains(m, "[3]"));
  CHECK_THROWS_AS(t.copy_(zeros({4})), std::invalid_argument);
  // Large in-place ops are bit-identical across thread counts.
  auto out = at_thread_counts(kThreads, [] {
    Tensor x = spread<float>(1000003, -3, 3);
    x.mul_(1.7);
    x.add_(spread<float>(1000003, -1, 1, 0.2));
    x.clamp_(-2.0, 2.0);
    return x;
  });
  for (std::size_t k = 1; k < out.size(); ++k) CHECK(bit_identical(out[0], out[k]));
}

TEST_CASE("in-place on a leaf that requires grad throws naming the op", "[elementwise]") {
  Tensor x = tensor({1.0, 2.0}, true);
  const std::vector<std::pair<std::string, std::function<void()>>> ops = {
      {"add_", [&] { x.add_(1.0); }},        {"sub_", [&] { x.sub_(x); }},
      {"mul_", [&] { x.mul_(2.0); }},        {"div_", [&] { x.div_(2.0); }},
      {"fill_", [&] { x.fill_(0.0); }},      {"zero_", [&] { x.zero_(); }},
      {"clamp_", [&] { x.clamp_(0.0, 1.0); }}, {"copy_", [&] { x.copy_(tensor({3.0, 4.0})); }},
  };
  for (const auto& [name, f] : ops) {
    const std::string msg = message_of<std::runtime_error>(f);
    INFO(msg);
    // zero_ is fill_(0): either name is clear.
    CHECK((contains(msg, name) || (name == "zero_" && contains(msg, "fill_"))));
    CHECK(contains(msg, "leaf"));
  }
  CHECK(x.version() == 0);
  CHECK(values_of<double>(x) == std::vector<double>{1, 2});
  // Under NoGradGuard it is the usual way to update parameters.
  {
    NoGradGuard guard;
    x.sub_(tensor({0.5, 0.5}));
    x.zero_();
  }
  CHECK(values_of<double>(x) == std::vector<double>{0, 0});
  CHECK(x.is_leaf());
  CHECK(x.requires_grad());
}

TEST_CASE("changing a tensor that backward still needs makes backward throw", "[elementwise]") {
  SECTION("an op's saved output (exp)") {
    Tensor x = tensor({1.0, 2.0}, true);
    Tensor y = x.exp();
    y.add_(1.0);  // y is not a leaf: allowed, but exp's backward needs the old y
    const std::string msg = message_of<std::runtime_error>([&] { y.sum().backward(); });
    CHECK(contains(msg, "in-place"));
    CHECK(contains(msg, "exp"));
  }
  SECTION("a saved input changed under NoGradGuard") {
    Tensor x = tensor({1.0, 2.0}, true);
    Tensor a = x * 1.0;
    Tensor b = tensor({3.0, 4.0}, true);
    Tensor z = a * b;
    {
      NoGradGuard guard;
      a.mul_(2.0);
    }
    CHECK_THROWS_WITH(z.sum().backward(), Catch::Contains("in-place") && Catch::Contains("mul"));
  }
  SECTION("a leaf changed through a detached alias") {
    Tensor x = tensor({1.0, 2.0}, true);
    Tensor z = x * x;
    x.detach().mul_(2.0);
    CHECK_THROWS_WITH(z.sum().backward(), Catch::Contains("in-place"));
  }
  SECTION("a saved input changed in place with grad on") {
    Tensor x = tensor({0.5, 2.0}, true);
    Tensor a = x * 1.0;
    Tensor z = a.tanh() * a.log();  // log saves a
    a.add_(1.0);
    CHECK_THROWS_WITH(z.sum().backward(), Catch::Contains("in-place"));
  }
  SECTION("a change before the op is fine") {
    Tensor x = tensor({1.0, 2.0}, true);
    Tensor a = x * 1.0;
    a.mul_(3.0);
    Tensor z = a * a;
    z.sum().backward();
    CHECK(values_of<double>(x.grad()) == std::vector<double>{18, 36});  // d/dx (3x)^2 = 18x
  }
  SECTION("in-place ops keep the old values their own gradient needs (as PyTorch)") {
    Tensor x = tensor({1.0, 2.0}, true);
    Tensor w = tensor({3.0, 4.0}, true);
    Tensor y = x * 1.0;
    y.mul_(w);  // saves y's old values for w's gradient
    y.add_(1.0);
    y.div_(w);  // saves y's values before this division
    y.clamp_(0.0, 10.0);
    y.sub_(w);
    y.sum().backward();
    // y = (x w + 1) / w - w = x + 1/w - w
    CHECK(values_of<double>(x.grad()) == std::vector<double>{1, 1});
    CHECK(values_of<double>(w.grad())[0] == Approx(-1.0 / 9 - 1).epsilon(1e-15));
    CHECK(values_of<double>(w.grad())[1] == Approx(-1.0 / 16 - 1).epsilon(1e-15));
    Tensor z = x * 1.0;
    z.mul_(z);  // z^2
    z.mul_(z);  // z^4
    z.sum().backward();
    CHECK(values_of<double>(x.grad()) == std::vector<double>{1 + 4, 1 + 32});
  }
  SECTION("fill_ cuts the old history") {
    Tensor x = tensor({1.0, 2.0}, true);
    Tensor y = x * 2.0;
    y.fill_(5.0);
    CHECK(y.requires_grad());
    Tensor l = (y * x).sum();
    l.backward();
    CHECK(values_of<double>(x.grad()) == std::vector<double>{5, 5});  // only through y * x's x
  }
}
