// Elementwise math ops (autograd/src/unary_math.cpp): values and gradients against PyTorch 1.13
// (tests/data/parity_ops_unary_*.txt, scripts/gen_parity_ops.py), exact values at kinks and
// special inputs (+-0, +-inf, NaN, halves), float64 gradchecks (and second order), errors.
// Bit-identity across capabilities and thread counts: tests/core/test_kernels.cpp.
#include <sorix/sorix.hpp>

#include <catch2/catch.hpp>

#include <bit>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "tests/support/errors.hpp"
#include "tests/support/gradcheck.hpp"
#include "tests/support/parity.hpp"
#include "tests/support/values.hpp"

using namespace sorix;
using testing::contains;
using testing::gradcheck;
using testing::message_of;
using testing::positive_f64;
using testing::randn_f64;
using testing::values_of;

namespace {

using UnaryFn = std::function<Tensor(const Tensor&)>;

const std::vector<std::pair<std::string, UnaryFn>>& unary_ops() {
  static const std::vector<std::pair<std::string, UnaryFn>> ops = {
      {"sin", [](const Tensor& x) { return sorix::sin(x); }},
      {"cos", [](const Tensor& x) { return sorix::cos(x); }},
      {"sin_large", [](const Tensor& x) { return x.sin(); }},
      {"cos_large", [](const Tensor& x) { return x.cos(); }},
      {"tan", [](const Tensor& x) { return sorix::tan(x); }},
      {"sign", [](const Tensor& x) { return sorix::sign(x); }},
      {"round", [](const Tensor& x) { return sorix::round(x); }},
      {"floor", [](const Tensor& x) { return sorix::floor(x); }},
      {"ceil", [](const Tensor& x) { return sorix::ceil(x); }},
      {"trunc", [](const Tensor& x) { return x.trunc(); }},
      {"log1p", [](const Tensor& x) { return sorix::log1p(x); }},
      {"log1p_small", [](const Tensor& x) { return x.log1p(); }},
      {"expm1", [](const Tensor& x) { return sorix::expm1(x); }},
      {"expm1_small", [](const Tensor& x) { return x.expm1(); }},
      {"square", [](const Tensor& x) { return sorix::square(x); }},
      {"rsqrt", [](const Tensor& x) { return sorix::rsqrt(x); }},
      {"reciprocal", [](const Tensor& x) { return sorix::reciprocal(x); }},
      {"erf", [](const Tensor& x) { return sorix::erf(x); }},
      {"erf_wide", [](const Tensor& x) { return x.erf(); }},
      {"clamp_min", [](const Tensor& x) { return sorix::clamp_min(x, 0.5); }},
      {"clamp_max", [](const Tensor& x) { return x.clamp_max(0.5); }},
  };
  return ops;
}

template <class T>
bool same_bits(T a, T b) {
  return std::isnan(a) ? std::isnan(b) : std::bit_cast<std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>>(a) ==
                                             std::bit_cast<std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>>(b);
}

// op(inputs) must give exactly `want` (sign of zero included, any NaN for NaN), in both dtypes.
void check_exact(const std::string& what, const UnaryFn& op, const std::vector<double>& in, const std::vector<double>& want) {
  for (Dtype dt : {float32, float64}) {
    const Tensor y = op(tensor(in, {static_cast<std::int64_t>(in.size())}, dt)).to(float64);
    const std::vector<double> got = values_of<double>(y);
    for (std::size_t i = 0; i < in.size(); ++i) {
      INFO(what << " " << dtype_name(dt) << " of " << in[i] << ": got " << got[i] << ", want " << want[i]);
      CHECK(same_bits(got[i], want[i]));
    }
  }
}

constexpr double kInf = std::numeric_limits<double>::infinity();
const double kNaN = std::numeric_limits<double>::quiet_NaN();

}  // namespace

TEST_CASE("math ops: values and gradients match PyTorch", "[autograd][unary][parity]") {
  for (Dtype dt : parity::kDtypes) {
    const parity::Case c = parity::load("unary", dt, "parity_ops_");
    for (const auto& [name, op] : unary_ops()) {
      INFO(name << " " << dtype_name(dt));
      Tensor x = parity::param(c.at(name + "_x"));
      Tensor y = op(x);
      parity::check_matches(y, c.at(name + "_y"), name + " y");
      y.backward(c.at(name + "_gy"));
      parity::check_matches(x.grad(), c.at(name + "_dx"), name + " dx");
    }
  }
}

TEST_CASE("math ops: exact values at special inputs", "[autograd][unary]") {
  const double z = 0.0, nz = -0.0;
  check_exact("round", [](const Tensor& x) { return round(x); },
              {-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, -0.3, 0.7, z, nz, kInf, -kInf, kNaN, 8388609.0},
              {-2.0, -2.0, nz, z, 2.0, 2.0, nz, 1.0, z, nz, kInf, -kInf, kNaN, 8388609.0});
  check_exact("floor", [](const Tensor& x) { return floor(x); }, {-1.0, -0.5, -0.0, 0.0, 0.5, 1.0, 1.5, -kInf, kNaN},
              {-1.0, -1.0, nz, z, z, 1.0, 1.0, -kInf, kNaN});
  check_exact("ceil", [](const Tensor& x) { return ceil(x); }, {-1.0, -0.5, -0.0, 0.0, 0.5, 1.0, -1.5, kInf, kNaN},
              {-1.0, nz, nz, z, 1.0, 1.0, -1.0, kInf, kNaN});
  check_exact("trunc", [](const Tensor& x) { return trunc(x); }, {-1.0, -0.7, -0.0, 0.0, 0.7, 1.0, 2.9, -kInf, kNaN},
              {-1.0, nz, nz, z, z, 1.0, 2.0, -kInf, kNaN});
  check_exact("sign", [](const Tensor& x) { return sign(x); }, {-1.0, -0.0, 0.0, 1.0, 1e-40, -kInf, kNaN},
              {-1.0, z, z, 1.0, 1.0, -1.0, z});
  check_exact("sin", [](const Tensor& x) { return sin(x); }, {z, nz, kInf, -kInf, kNaN}, {z, nz, kNaN, kNaN, kNaN});
  check_exact("cos", [](const Tensor& x) { return cos(x); }, {z, nz, kInf, kNaN}, {1.0, 1.0, kNaN, kNaN});
  check_exact("tan", [](const Tensor& x) { return tan(x); }, {z, nz, kInf, kNaN}, {z, nz, kNaN, kNaN});
  check_exact("log1p", [](const Tensor& x) { return log1p(x); }, {z, nz, -1.0, -2.0, kInf, kNaN},
              {z, nz, -kInf, kNaN, kInf, kNaN});
  check_exact("expm1", [](const Tensor& x) { return expm1(x); }, {z, nz, -kInf, kInf, 1000.0, -1000.0, kNaN},
              {z, nz, -1.0, kInf, kInf, -1.0, kNaN});
  check_exact("erf", [](const Tensor& x) { return erf(x); }, {z, nz, kInf, -kInf, 30.0, -30.0, kNaN},
              {z, nz, 1.0, -1.0, 1.0, -1.0, kNaN});
  check_exact("square", [](const Tensor& x) { return square(x); }, {-3.0, nz, kInf, kNaN}, {9.0, z, kInf, kNaN});
  check_exact("rsqrt", [](const Tensor& x) { return rsqrt(x); }, {4.0, z, nz, -1.0, kInf, kNaN},
              {0.5, kInf, -kInf, kNaN, z, kNaN});
  check_exact("reciprocal", [](const Tensor& x) { return reciprocal(x); }, {4.0, z, nz, kInf, -kInf, kNaN},
              {0.25, kInf, -kInf, z, nz, kNaN});
  check_exact("clamp_min", [](const Tensor& x) { return clamp_min(x, 0.0); }, {-1.0, nz, z, 1.0, -kInf, kNaN},
              {z, nz, z, 1.0, z, kNaN});
  check_exact("clamp_max", [](const Tensor& x) { return clamp_max(x, 0.0); }, {-1.0, nz, z, 1.0, kInf, kNaN},
              {-1.0, nz, z, z, z, kNaN});
}

TEST_CASE("math ops: gradients at kinks follow PyTorch", "[autograd][unary]") {
  auto grad_at = [](const UnaryFn& op, const std::vector<double>& in) {
    Tensor x = tensor(in, {static_cast<std::int64_t>(in.size())}, float64).requires_grad_(true);
    op(x).sum().backward();
    return values_of<double>(x.grad());
  };
  const std::vector<double> kinks = {-1.0, -0.5, 0.0, 0.5, 1.0};
  // Piecewise-constant ops: 0 everywhere, at the jumps too.
  for (const UnaryFn& op : {UnaryFn([](const Tensor& x) { return sign(x); }), UnaryFn([](const Tensor& x) { return round(x); }),
                           UnaryFn([](const Tensor& x) { return floor(x); }), UnaryFn([](const Tensor& x) { return ceil(x); }),
                           UnaryFn([](const Tensor& x) { return trunc(x); })}) {
    CHECK(grad_at(op, kinks) == std::vector<double>{0, 0, 0, 0, 0});
  }
  // One-sided clamps pass the gradient at the bound itself.
  CHECK(grad_at([](const Tensor& x) { return clamp_min(x, 0.0); }, {-1.0, 0.0, 1.0}) == std::vector<double>{0, 1, 1});
  CHECK(grad_at([](const Tensor& x) { return clamp_max(x, 0.0); }, {-1.0, 0.0, 1.0}) == std::vector<double>{1, 1, 0});
  // A NaN upstream gradient stays out of a clamped-off element (a select, as PyTorch's where).
  Tensor x = tensor({-1.0, 1.0}, {2}, float64).requires_grad_(true);
  clamp_min(x, 0.0).backward(tensor({kNaN, 2.0}, {2}, float64));
  CHECK(values_of<double>(x.grad()) == std::vector<double>{0.0, 2.0});
}

TEST_CASE("math ops: float64 gradchecks, first and second order", "[autograd][unary][gradcheck]") {
  const std::vector<std::pair<std::string, std::function<Tensor(const Tensor&)>>> smooth = {
      {"sin", [](const Tensor& x) { return sin(x * 2.0); }},
      {"cos", [](const Tensor& x) { return cos(x * 2.0); }},
      {"tan", [](const Tensor& x) { return tan(x * 0.6); }},
      {"log1p", [](const Tensor& x) { return log1p(x); }},
      {"expm1", [](const Tensor& x) { return expm1(x); }},
      {"square", [](const Tensor& x) { return square(x); }},
      {"rsqrt", [](const Tensor& x) { return rsqrt(x); }},
      {"reciprocal", [](const Tensor& x) { return reciprocal(x); }},
      {"erf", [](const Tensor& x) { return erf(x); }},
      {"clamp_min", [](const Tensor& x) { return clamp_min(x, 1.0); }},
      {"clamp_max", [](const Tensor& x) { return clamp_max(x, 1.0); }},
      {"sign", [](const Tensor& x) { return sign(x) * x; }},
      {"round", [](const Tensor& x) { return round(x * 3.0) + x; }},
      {"floor", [](const Tensor& x) { return floor(x * 3.0) + x; }},
      {"ceil", [](const Tensor& x) { return ceil(x * 3.0) + x; }},
      {"trunc", [](const Tensor& x) { return trunc(x * 3.0) + x; }},
  };
  for (const auto& [name, f] : smooth) {
    INFO(name);
    // Positive inputs keep log1p, rsqrt and reciprocal in their domains; the step ops are checked
    // through x + step(3x) (the step's zero gradient leaves exactly x's).
    const bool positive = name == "log1p" || name == "rsqrt" || name == "reciprocal";
    const Tensor x = positive ? positive_f64({3, 4}, 3) : randn_f64({3, 4}, 5);
    auto r = gradcheck([&f = f](const std::vector<Tensor>& in) { return f(in[0]); }, {x});
    INFO(r.message);
    CHECK(r.ok);
    // Second order: the gradient's own gradient (create_graph).
    auto r2 = gradcheck(
        [&f = f](const std::vector<Tensor>& in) {
          return autograd::grad({(f(in[0]) * f(in[0])).sum()}, {in[0]}, {}, true, true)[0];
        },
        {x.detach().clone().requires_grad_(true)});
    INFO(r2.message);
    CHECK(r2.ok);
  }
}

TEST_CASE("math ops: bad inputs raise errors naming the op", "[autograd][unary]") {
  const Tensor i = arange(0, 5, 1, int64);
  // Integer tensors as PyTorch (docs/dtypes.md): sin and rsqrt compute in float32, round keeps
  // int64; a bool tensor has no rounding (the message names the op and the dtype).
  CHECK(sin(i).dtype() == float32);
  CHECK(values_of<std::int64_t>(round(i)) == values_of<std::int64_t>(i));
  CHECK(contains(message_of([&] { round(i.gt(2)); }), "round"));
  CHECK(contains(message_of([&] { floor(i.gt(2)); }), "bool"));
  CHECK(rsqrt(i).dtype() == float32);
  const Tensor f = zeros({3});
  CHECK(contains(message_of([&] { clamp_min(f, kNaN); }), "clamp_min"));
  CHECK(contains(message_of([&] { clamp_max(f, kNaN); }), "clamp_max"));
  CHECK(contains(message_of([&] { log1p(Tensor()); }), "log1p"));
}

TEST_CASE("math ops: strided inputs and float32 agree with contiguous ones", "[autograd][unary]") {
  const Tensor x = randn_f64({6, 5}, 7, false).to(float32);
  const Tensor xt = x.t();
  for (const auto& [name, op] : unary_ops()) {
    INFO(name);
    CHECK(testing::bit_identical(op(xt), op(xt.contiguous())));
  }
}
