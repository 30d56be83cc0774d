// GELU (exact and tanh), SiLU, ELU, Softplus, Hardtanh (nn/src/activation_functions.cpp): modules
// and functional forms against PyTorch 1.13 (tests/data/parity_ops_activations_*.txt,
// scripts/gen_parity_ops.py), exact values and gradients at kinks, float64 gradchecks (first and
// second order), bad options, printing. Bit-identity across capabilities and thread counts:
// tests/core/test_kernels.cpp.
#include <sorix/sorix.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/errors.hpp"
#include "tests/support/gradcheck.hpp"
#include "tests/support/parity.hpp"
#include "tests/support/values.hpp"

using namespace sorix;
namespace F = sorix::nn::functional;
using testing::contains;
using testing::gradcheck;
using testing::message_of;
using testing::randn_f64;
using testing::values_of;

namespace {

using Fn = std::function<Tensor(const Tensor&)>;

// The parity file's cases: module forms and functional forms alternate, so both are covered.
std::vector<std::pair<std::string, Fn>> activations() {
  auto mod = [](auto m) { return Fn([m](const Tensor& x) mutable { return m->forward(x); }); };
  return {
      {"gelu", mod(std::make_shared<nn::GELU>())},
      {"gelu_tanh", [](const Tensor& x) { return F::gelu(x, F::GELUFuncOptions().approximate("tanh")); }},
      {"silu", mod(std::make_shared<nn::SiLU>())},
      {"elu", [](const Tensor& x) { return F::elu(x); }},
      {"elu_alpha", mod(std::make_shared<nn::ELU>(nn::ELUOptions().alpha(0.7)))},
      {"softplus", [](const Tensor& x) { return F::softplus(x); }},
      {"softplus_beta", mod(std::make_shared<nn::Softplus>(nn::SoftplusOptions().beta(2.0).threshold(5.0)))},
      {"hardtanh", mod(std::make_shared<nn::Hardtanh>())},
      {"hardtanh_range", [](const Tensor& x) { return F::hardtanh(x, F::HardtanhFuncOptions().min_val(-0.5).max_val(1.5)); }},
  };
}

std::vector<double> eval(const Fn& f, const std::vector<double>& in, Dtype dt = float64) {
  return values_of<double>(f(tensor(in, {static_cast<std::int64_t>(in.size())}, dt)).to(float64));
}
std::vector<double> grad_of(const Fn& f, const std::vector<double>& in) {
  Tensor x = tensor(in, {static_cast<std::int64_t>(in.size())}, float64).requires_grad_(true);
  f(x).sum().backward();
  return values_of<double>(x.grad());
}

}  // namespace

TEST_CASE("activations: values and gradients match PyTorch", "[nn][activation][parity]") {
  for (Dtype dt : parity::kDtypes) {
    const parity::Case c = parity::load("activations", dt, "parity_ops_");
    for (const auto& [name, f] : activations()) {
      INFO(name << " " << dtype_name(dt));
      Tensor x = parity::param(c.at(name + "_x"));
      Tensor y = f(x);
      parity::check_matches(y, c.at(name + "_y"), name + " y");
      y.backward(c.at(name + "_gy"));
      parity::check_matches(x.grad(), c.at(name + "_dx"), name + " dx");
    }
  }
}

TEST_CASE("activations: exact values and gradients at kinks and special inputs", "[nn][activation]") {
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  const Fn hardtanh = [](const Tensor& x) { return F::hardtanh(x); };
  for (Dtype dt : {float32, float64}) {
    INFO(dtype_name(dt));
    const std::vector<double> h = eval(hardtanh, {-2.0, -1.0, -0.0, 0.0, 1.0, 2.0, inf, -inf, nan}, dt);
    CHECK(std::vector<double>(h.begin(), h.end() - 1) == std::vector<double>{-1, -1, 0, 0, 1, 1, 1, -1});
    CHECK(std::signbit(h[2]));
    CHECK(std::isnan(h.back()));
    // GELU and SiLU: 0 at +-0, x far right, ~0 far left, NaN stays NaN.
    for (const Fn& f : {Fn([](const Tensor& x) { return F::gelu(x); }),
                        Fn([](const Tensor& x) { return F::gelu(x, F::GELUFuncOptions().approximate("tanh")); })}) {
      const std::vector<double> v = eval(f, {0.0, -0.0, 50.0, -50.0, nan}, dt);
      CHECK(v[0] == 0.0);
      CHECK(v[1] == 0.0);
      CHECK(v[2] == 50.0);
      CHECK(v[3] == 0.0);
      CHECK(std::isnan(v[4]));
    }
    const std::vector<double> si = eval([](const Tensor& x) { return F::silu(x); }, {0.0, -0.0, 50.0, -50.0, nan}, dt);
    CHECK(si[0] == 0.0);
    CHECK(std::signbit(si[1]));
    CHECK(si[2] == 50.0);
    CHECK((si[3] < 0.0 && si[3] > -1e-19));
    CHECK(std::isnan(si[4]));
    // ELU: alpha (e^x - 1) saturates at -alpha; softplus is x past the threshold, log 2 at 0.
    const std::vector<double> e = eval([](const Tensor& x) { return F::elu(x, F::ELUFuncOptions().alpha(0.5)); },
                                       {1.0, 0.0, -1000.0, inf, nan}, dt);
    CHECK(e[0] == 1.0);
    CHECK(e[1] == 0.0);
    CHECK(e[2] == -0.5);
    CHECK(e[3] == inf);
    CHECK(std::isnan(e[4]));
    const std::vector<double> s = eval([](const Tensor& x) { return F::softplus(x); }, {0.0, 25.0, -1000.0, inf}, dt);
    CHECK(std::abs(s[0] - std::log(2.0)) <= (dt == float64 ? 1e-16 : 6e-8));
    CHECK(s[1] == 25.0);
    CHECK(s[2] == 0.0);
    CHECK(s[3] == inf);
  }
  // Gradients at the kinks, as PyTorch: Hardtanh 0 at its bounds, ELU alpha at 0.
  CHECK(grad_of(hardtanh, {-2.0, -1.0, 0.0, 1.0, 2.0}) == std::vector<double>{0, 0, 1, 0, 0});
  const std::vector<double> ge = grad_of([](const Tensor& x) { return F::elu(x, F::ELUFuncOptions().alpha(0.5)); },
                                        {-1.0, -0.0, 0.0, 1.0});
  CHECK(std::abs(ge[0] - 0.5 * std::exp(-1.0)) <= 1e-16);
  CHECK(std::vector<double>(ge.begin() + 1, ge.end()) == std::vector<double>{0.5, 0.5, 1.0});
  CHECK(grad_of([](const Tensor& x) { return F::gelu(x); }, {0.0}) == std::vector<double>{0.5});
  CHECK(grad_of([](const Tensor& x) { return F::silu(x); }, {0.0}) == std::vector<double>{0.5});
  CHECK(grad_of([](const Tensor& x) { return F::softplus(x); }, {0.0, 21.0}) == std::vector<double>{0.5, 1.0});
}

TEST_CASE("activations: float64 gradchecks, first and second order", "[nn][activation][gradcheck]") {
  for (const auto& [name, f] : activations()) {
    INFO(name);
    const Tensor x = randn_f64({4, 5}, 11);
    auto r = gradcheck([&f = f](const std::vector<Tensor>& in) { return f(in[0]); }, {x});
    INFO(r.message);
    CHECK(r.ok);
    // Second order: the create_graph path composes the gradient from differentiable ops; it must
    // agree with the kernel gradient and be differentiable itself.
    const Tensor xk = x.detach().clone().requires_grad_(true);
    const Tensor kernel_grad = autograd::grad({f(xk).sum()}, {xk})[0];
    const Tensor graph_grad = autograd::grad({f(xk).sum()}, {xk}, {}, true)[0];
    const std::vector<double> kv = values_of<double>(kernel_grad), gv = values_of<double>(graph_grad.detach());
    for (std::size_t i = 0; i < kv.size(); ++i) CHECK(std::abs(kv[i] - gv[i]) <= 1e-13 * (1 + std::abs(kv[i])));
    // (Hardtanh is piecewise linear: its gradient does not depend on x, so it has no graph.)
    if (name.rfind("hardtanh", 0) == 0) {
      CHECK_FALSE(graph_grad.requires_grad());
      continue;
    }
    auto r2 = gradcheck(
        [&f = f](const std::vector<Tensor>& in) { return autograd::grad({f(in[0]).sum()}, {in[0]}, {}, true)[0]; },
        {x.detach().clone().requires_grad_(true)});
    INFO(r2.message);
    CHECK(r2.ok);
  }
}

TEST_CASE("activations: bad options raise errors naming the module and the value", "[nn][activation]") {
  std::string m = message_of([] { nn::GELU(nn::GELUOptions().approximate("fast")); });
  CHECK(contains(m, "GELU"));
  CHECK(contains(m, "fast"));
  CHECK(contains(message_of([] { F::gelu(zeros({2}), F::GELUFuncOptions().approximate("Tanh")); }), "gelu"));
  m = message_of([] { nn::Hardtanh(nn::HardtanhOptions().min_val(2.0).max_val(1.0)); });
  CHECK(contains(m, "Hardtanh"));
  CHECK(contains(m, "min_val=2"));
  CHECK(contains(m, "max_val=1"));
  CHECK(contains(message_of([] { F::hardtanh(zeros({2}), F::HardtanhFuncOptions().min_val(std::nan(""))); }), "hardtanh"));
  m = message_of([] { nn::Softplus(nn::SoftplusOptions().beta(0.0)); });
  CHECK(contains(m, "Softplus"));
  CHECK(contains(m, "beta"));
  CHECK(contains(message_of([] { nn::Softplus(nn::SoftplusOptions().beta(-1.5)); }), "-1.5"));
  CHECK(contains(message_of([] { F::softplus(zeros({2}), F::SoftplusFuncOptions().threshold(std::nan(""))); }), "softplus"));
  m = message_of([] { nn::ELU(nn::ELUOptions().alpha(std::numeric_limits<double>::infinity())); });
  CHECK(contains(m, "ELU"));
  CHECK(contains(m, "inf"));
  // int64 inputs are not differentiable activations' dtypes.
  CHECK(contains(message_of([] { F::silu(arange(0, 4, 1, int64)); }), "silu"));
  // hardtanh takes integers as PyTorch 1.13 does: the dtype kept, the bounds truncated toward zero
  // into it; bool, uint8 with a negative limit and a bound the dtype cannot hold refuse.
  const Tensor h = F::hardtanh(tensor({-3, 0, 7}), F::HardtanhFuncOptions().min_val(-2.5).max_val(2.5));
  CHECK(h.dtype() == int64);
  CHECK(values_of<std::int64_t>(h) == std::vector<std::int64_t>{-2, 0, 2});
  m = message_of([] { F::hardtanh(zeros({2}, kUInt8)); });
  CHECK(contains(m, "hardtanh"));
  CHECK(contains(m, "uint8"));
  CHECK(contains(message_of([] { F::hardtanh(zeros({2}, kBool)); }), "bool"));
  m = message_of([] { F::hardtanh(zeros({2}, kInt32), F::HardtanhFuncOptions().min_val(0).max_val(1e10)); });
  CHECK(contains(m, "hardtanh"));
  CHECK(contains(m, "int32"));
  CHECK(contains(message_of([] { F::hardtanh(zeros({2}, kInt64), F::HardtanhFuncOptions().min_val(-1e300)); }), "int64"));
}

TEST_CASE("activations: printing as PyTorch's", "[nn][activation]") {
  auto printed = [](const nn::Module& m) {
    std::ostringstream os;
    os << m;
    return os.str();
  };
  CHECK(printed(nn::GELU()) == "GELU(approximate='none')");
  CHECK(printed(nn::GELU(nn::GELUOptions().approximate("tanh"))) == "GELU(approximate='tanh')");
  CHECK(printed(nn::SiLU()) == "SiLU()");
  CHECK(printed(nn::ELU(nn::ELUOptions().alpha(0.5))) == "ELU(alpha=0.5)");
  CHECK(printed(nn::Softplus(nn::SoftplusOptions().beta(2).threshold(10))) == "Softplus(beta=2, threshold=10)");
  CHECK(printed(nn::Hardtanh(nn::HardtanhOptions().min_val(-2).max_val(3))) == "Hardtanh(min_val=-2, max_val=3)");
}
