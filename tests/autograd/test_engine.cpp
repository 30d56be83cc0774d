// The backward engine: accumulation, graph shapes, grad modes, freeing, autograd::grad, second
// derivatives, long chains.
#include <sorix/sorix.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "sorix/autograd/leaf_hooks.hpp"
#include "sorix/autograd/node.hpp"
#include "tests/support/errors.hpp"
#include "tests/support/gradcheck.hpp"
#include "tests/support/values.hpp"

using namespace sorix;
using sorix::testing::contains;
using sorix::testing::message_of;
using sorix::testing::values_of;

namespace {


}  // namespace

TEST_CASE("backward accumulates into leaves", "[engine]") {
  Tensor x = tensor({1.0, 2.0, 3.0}, true);
  auto loss = [&] { return (x * x).sum(); };  // d/dx = 2x
  loss().backward();
  CHECK(values_of<double>(x.grad()) == std::vector<double>{2, 4, 6});
  loss().backward();  // a second graph, no zeroing: doubled
  CHECK(values_of<double>(x.grad()) == std::vector<double>{4, 8, 12});
  x.set_grad(Tensor());
  loss().backward();
  CHECK(values_of<double>(x.grad()) == std::vector<double>{2, 4, 6});
  // The accumulated gradient is the leaf's own: changing it does not change later gradients.
  Tensor g = x.grad();
  {
    NoGradGuard guard;
    g.zero_();
  }
  loss().backward();
  CHECK(values_of<double>(x.grad()) == std::vector<double>{2, 4, 6});
  // Leaf gradients carry no graph after a plain backward.
  CHECK_FALSE(x.grad().requires_grad());
  CHECK(x.grad().dtype() == float64);
}

TEST_CASE("a leaf's first gradient becomes grad() without a copy only when nothing else holds it", "[engine]") {
  // Backwards of one op (recorded by hand) returning, for two leaves: the same fresh tensor, a
  // reshaped view of a fresh tensor, a view of part of one, and a view whose base is kept.
  Tensor kept = zeros({6});
  struct Case {
    const char* what;
    bool taken;  // expected: grad() is the returned memory itself
  };
  const Case cases[] = {{"fresh", true}, {"reshaped view", true}, {"part of a buffer", false}, {"kept base", false}};
  for (int form = 0; form < 4; ++form) {
    INFO(cases[form].what);
    Tensor a = zeros({2, 3}).requires_grad_(true);
    const float* returned = nullptr;
    Tensor y = ones({2, 3});
    autograd::record(y, "Probe", {a}, [&](const Tensor&) -> std::vector<Tensor> {
      Tensor g;
      if (form == 0) g = full({2, 3}, 2.0);
      if (form == 1) g = full({6}, 2.0).reshape({2, 3});
      if (form == 2) g = full({12}, 2.0).narrow(0, 0, 6).reshape({2, 3});
      if (form == 3) g = kept.reshape({2, 3});
      returned = g.data_ptr<float>();
      return {g};
    });
    y.backward(ones({2, 3}));
    CHECK((a.grad().data_ptr<float>() == returned) == cases[form].taken);
    CHECK(a.grad().impl()->view_base == nullptr);
    CHECK(a.grad().shape() == Shape{2, 3});
    if (form == 3) {  // the kept tensor is not the gradient: changing one leaves the other
      a.grad().fill_(5.0);
      CHECK(kept.sum().item<float>() == 0.0f);
    }
  }
  // The same tensor for two leaves: the first takes it, the second gets a copy.
  Tensor a = zeros({3}).requires_grad_(true), b = zeros({3}).requires_grad_(true);
  Tensor y = ones({3});
  autograd::record(y, "Probe", {a, b}, [](const Tensor&) -> std::vector<Tensor> {
    Tensor g = full({3}, 1.0);
    return {g, g};
  });
  y.backward(ones({3}));
  CHECK(a.grad().data_ptr<float>() != b.grad().data_ptr<float>());
}

TEST_CASE("a tensor feeding several ops gets the sum of the gradients", "[engine]") {
  Tensor x = tensor({0.5, -1.0, 2.0}, true);
  (x * x + x.exp() + x).sum().backward();
  const auto g = values_of<double>(x.grad());
  const std::vector<double> xs = {0.5, -1.0, 2.0};
  for (std::size_t i = 0; i < xs.size(); ++i) CHECK(g[i] == Approx(2 * xs[i] + std::exp(xs[i]) + 1).epsilon(1e-14));

  // A diamond through a non-leaf: a = 2x; b = 3a; c = 4a; d(b + c)/dx = 14.
  Tensor y = tensor({1.0, 2.0}, true);
  Tensor a = y * 2.0;
  Tensor b = a * 3.0;
  Tensor c = a * 4.0;
  (b + c).sum().backward();
  CHECK(values_of<double>(y.grad()) == std::vector<double>{14, 14});
  // Non-leaves do not keep gradients.
  CHECK_FALSE(a.grad().defined());

  // The same tensor twice in one op (x * x): both edges deliver.
  Tensor z = tensor({3.0}, true);
  (z * z * z).sum().backward();
  CHECK(z.grad().item<double>() == 27.0);
}

TEST_CASE("mixed dtypes: each leaf gets a gradient of its own dtype", "[engine]") {
  Tensor x = tensor({1.f, 2.f}, true);
  Tensor y = tensor({3.0, 4.0}, true);
  Tensor z = x * y;
  CHECK(z.dtype() == float64);
  z.sum().backward();
  CHECK(x.grad().dtype() == float32);
  CHECK(values_of<float>(x.grad()) == std::vector<float>{3, 4});
  CHECK(y.grad().dtype() == float64);
  CHECK(values_of<double>(y.grad()) == std::vector<double>{1, 2});
}

TEST_CASE("NoGradGuard and AutoGradMode", "[engine]") {
  Tensor a = tensor({1.f, 2.f}, true);
  CHECK(autograd::grad_enabled());
  {
    NoGradGuard guard;
    CHECK_FALSE(autograd::grad_enabled());
    Tensor c = a * 2.0f;
    CHECK_FALSE(c.requires_grad());
    CHECK(c.grad_fn() == nullptr);
    CHECK(c.is_leaf());
    {
      NoGradGuard nested;
      CHECK_FALSE(autograd::grad_enabled());
    }
    CHECK_FALSE(autograd::grad_enabled());  // the inner guard restores "off", not "on"
    {
      AutoGradMode on(true);
      CHECK(autograd::grad_enabled());
      CHECK((a * 2.0f).requires_grad());
    }
    CHECK_FALSE(autograd::grad_enabled());
  }
  CHECK(autograd::grad_enabled());
  Tensor d = a * 2.0f;
  CHECK(d.requires_grad());
  CHECK(d.grad_fn() != nullptr);
  CHECK_FALSE(d.is_leaf());
}

TEST_CASE("detach cuts the graph", "[engine]") {
  Tensor x = tensor({2.0, 3.0}, true);
  Tensor d = x.detach();
  CHECK_FALSE(d.requires_grad());
  (d * x).sum().backward();  // only the x path counts: grad = d = x
  CHECK(values_of<double>(x.grad()) == std::vector<double>{2, 3});
  // detach of a non-leaf, then used: no gradient through it.
  Tensor y = tensor({1.0}, true);
  Tensor e = (y * 5.0).detach();
  Tensor loss = (e * y).sum();
  loss.backward();
  CHECK(y.grad().item<double>() == 5.0);
  // Using only a detached value: the result does not require grad and backward refuses.
  Tensor f = (x.detach() * 2.0).sum();
  CHECK_FALSE(f.requires_grad());
  CHECK(contains(message_of<std::runtime_error>([&] { f.backward(); }), "does not require grad"));
}

TEST_CASE("a chain of 100,000 ops backpropagates without recursion", "[engine]") {
  Tensor x = tensor({1.0}, true);
  {
    // Recursion would overflow the stack here; how long it takes is not tested (a busy machine).
    Tensor y = x;
    for (int i = 0; i < 100000; ++i) y = y * 1.0000001;
    y.sum().backward();
    CHECK(x.grad().item<double>() == Approx(std::pow(1.0000001, 100000)).epsilon(1e-9));
  }  // the chain is destroyed here: freeing must not recurse either
  {
    // A long chain dropped without any backward: its saved tensors (input and output) go too.
    Tensor y = x;
    for (int i = 0; i < 100000; ++i) y = y.tanh();
  }
  {
    // And one that keeps its saved tensors (retain_graph) when it goes.
    x.set_grad(Tensor());
    Tensor y = x;
    for (int i = 0; i < 100000; ++i) y = y + x;
    y.sum().backward({}, /*retain_graph=*/true);
    CHECK(x.grad().item<double>() == 100001.0);
  }
  {
    // Through autograd::grad and with create_graph (the gradient graph is another long chain).
    Tensor y = x;
    double v = 1.0, d = 1.0;
    for (int i = 0; i < 100000; ++i) {
      y = y.tanh();
      v = std::tanh(v);
      d *= 1.0 - v * v;
    }
    Tensor g = autograd::grad({y.sum()}, {x}, {}, /*create_graph=*/true)[0];
    CHECK(g.item<double>() == Approx(d).epsilon(1e-9));
    CHECK(g.requires_grad());
  }
}

TEST_CASE("saved tensors are freed after backward; retain_graph keeps them", "[engine]") {
  Tensor x = tensor({1.0, 2.0}, true);
  Tensor y = (x * x).sum();
  y.backward();
  const std::string msg = message_of<std::runtime_error>([&] { y.backward(); });
  CHECK(contains(msg, "second time"));
  CHECK(contains(msg, "retain_graph"));
  CHECK(values_of<double>(x.grad()) == std::vector<double>{2, 4});  // the failed call added nothing

  Tensor x2 = tensor({1.0, 2.0}, true);
  Tensor y2 = (x2 * x2).sum();
  y2.backward({}, /*retain_graph=*/true);
  y2.backward({}, /*retain_graph=*/true);
  CHECK(values_of<double>(x2.grad()) == std::vector<double>{4, 8});
  y2.backward();  // the last one may free
  CHECK(values_of<double>(x2.grad()) == std::vector<double>{6, 12});
  CHECK_THROWS_WITH(y2.backward(), Catch::Contains("second time"));

  // A saved output (exp keeps its result) is freed too.
  Tensor x3 = tensor({0.5}, true);
  Tensor e = x3.exp();
  e.backward();
  CHECK_THROWS_WITH(e.backward(), Catch::Contains("second time"));
  // autograd::grad frees unless asked not to.
  Tensor x4 = tensor({1.0}, true);
  Tensor y4 = x4 * x4;
  autograd::grad({y4}, {x4});
  CHECK_THROWS_WITH(autograd::grad({y4}, {x4}), Catch::Contains("second time"));
  Tensor y5 = x4 * x4;
  autograd::grad({y5}, {x4}, {}, false, /*retain_graph=*/true);
  CHECK(autograd::grad({y5}, {x4})[0].item<double>() == 2.0);
}

TEST_CASE("autograd::grad gives gradients without touching .grad", "[engine]") {
  Tensor x = tensor({1.0, 2.0, 3.0}, true);
  Tensor w = tensor({2.0, 0.5, -1.0}, true);
  Tensor y = (x * w).sum();
  std::vector<Tensor> g = autograd::grad({y}, {x, w});
  REQUIRE(g.size() == 2);
  CHECK(values_of<double>(g[0]) == std::vector<double>{2.0, 0.5, -1.0});
  CHECK(values_of<double>(g[1]) == std::vector<double>{1.0, 2.0, 3.0});
  CHECK_FALSE(x.grad().defined());
  CHECK_FALSE(w.grad().defined());
  CHECK_FALSE(g[0].requires_grad());  // no create_graph: plain values

  // An existing .grad is left as it was.
  x.set_grad(tensor({9.0, 9.0, 9.0}));
  autograd::grad({(x * x).sum()}, {x});
  CHECK(values_of<double>(x.grad()) == std::vector<double>{9, 9, 9});

  // With explicit grad_outputs on a non-scalar output.
  Tensor v = x * 3.0;
  std::vector<Tensor> gv = autograd::grad({v}, {x}, {tensor({1.0, 10.0, 100.0})});
  CHECK(values_of<double>(gv[0]) == std::vector<double>{3, 30, 300});

  // With respect to a non-leaf.
  Tensor a = x * 2.0;
  Tensor b = (a * a).sum();
  std::vector<Tensor> ga = autograd::grad({b}, {a});
  CHECK(values_of<double>(ga[0]) == std::vector<double>{4, 8, 12});

  // Several outputs: gradients summed.
  Tensor z = tensor({1.0}, true);
  std::vector<Tensor> gz = autograd::grad({(z * 2.0).sum(), (z * 5.0).sum()}, {z});
  CHECK(gz[0].item<double>() == 7.0);

  // Several outputs where one is computed from the other: each node runs once, after its consumers.
  Tensor u = tensor({2.0}, true);
  Tensor y1 = u * u;        // du: 2u = 4
  Tensor y2 = y1 * 3.0;     // du: 6u = 12
  CHECK(autograd::grad({y1.sum(), y2.sum()}, {u})[0].item<double>() == 16.0);
  Tensor u2 = tensor({2.0}, true);
  Tensor v1 = u2.exp();
  autograd::backward({v1 * 2.0, v1}, {tensor({1.0}), tensor({10.0})});
  CHECK(u2.grad().item<double>() == Approx(12.0 * std::exp(2.0)).epsilon(1e-15));

  // Inputs that do not require grad are refused.
  CHECK_THROWS_AS(autograd::grad({(x * 2.0).sum()}, {tensor({1.0})}), std::invalid_argument);
}

TEST_CASE("allow_unused", "[engine]") {
  Tensor x = tensor({1.0}, true);
  Tensor unused = tensor({1.0}, true);
  Tensor y = x * 2.0;
  const std::string msg =
      message_of<std::runtime_error>([&] { autograd::grad({y}, {x, unused}, {}, false, true); });
  CHECK(contains(msg, "allow_unused"));
  CHECK(contains(msg, "input 1"));
  std::vector<Tensor> g = autograd::grad({y}, {x, unused}, {}, false, std::nullopt, /*allow_unused=*/true);
  REQUIRE(g.size() == 2);
  CHECK(g[0].item<double>() == 2.0);
  CHECK_FALSE(g[1].defined());
}

TEST_CASE("second derivatives through create_graph", "[engine]") {
  SECTION("x^3 by pow: d2/dx2 = 6x") {
    Tensor x = tensor({-1.5, 0.5, 2.0}, true);
    Tensor y = x.pow(3.0).sum();
    Tensor d1 = autograd::grad({y}, {x}, {}, /*create_graph=*/true)[0];
    CHECK(d1.requires_grad());
    const std::vector<double> xs = {-1.5, 0.5, 2.0};
    for (std::size_t i = 0; i < 3; ++i) CHECK(values_of<double>(d1)[i] == Approx(3 * xs[i] * xs[i]).epsilon(1e-14));
    Tensor d2 = autograd::grad({d1.sum()}, {x}, {}, true)[0];
    for (std::size_t i = 0; i < 3; ++i) CHECK(values_of<double>(d2)[i] == Approx(6 * xs[i]).epsilon(1e-14));
    Tensor d3 = autograd::grad({d2.sum()}, {x})[0];
    CHECK(values_of<double>(d3) == std::vector<double>{6, 6, 6});
    CHECK_FALSE(x.grad().defined());
  }
  SECTION("x*x*x: d2/dx2 = 6x") {
    Tensor x = tensor({1.25, -2.0}, true);
    Tensor d1 = autograd::grad({(x * x * x).sum()}, {x}, {}, true)[0];
    Tensor d2 = autograd::grad({d1.sum()}, {x})[0];
    CHECK(values_of<double>(d2)[0] == Approx(7.5).epsilon(1e-14));
    CHECK(values_of<double>(d2)[1] == Approx(-12.0).epsilon(1e-14));
  }
  SECTION("tanh: d2/dx2 = -2 tanh(x) (1 - tanh^2 x)") {
    const std::vector<double> xs = {-2.0, -0.3, 0.0, 0.7, 1.9};
    Tensor x = tensor({-2.0, -0.3, 0.0, 0.7, 1.9}, true);
    Tensor d1 = autograd::grad({x.tanh().sum()}, {x}, {}, true)[0];
    Tensor d2 = autograd::grad({d1.sum()}, {x})[0];
    for (std::size_t i = 0; i < xs.size(); ++i) {
      const double t = std::tanh(xs[i]);
      CHECK(values_of<double>(d1)[i] == Approx(1 - t * t).epsilon(1e-13).margin(1e-15));
      CHECK(values_of<double>(d2)[i] == Approx(-2 * t * (1 - t * t)).epsilon(1e-12).margin(1e-15));
    }
  }
  SECTION("backward(create_graph) leaves a differentiable .grad") {
    Tensor x = tensor({2.0}, true);
    (x * x * x).sum().backward({}, false, /*create_graph=*/true);
    Tensor g = x.grad();
    CHECK(g.item<double>() == 12.0);
    CHECK(g.requires_grad());
    Tensor d2 = autograd::grad({g.sum()}, {x})[0];
    CHECK(d2.item<double>() == 12.0);
  }
  SECTION("exp, sigmoid, sqrt second derivatives against finite differences of the first") {
    for (int op = 0; op < 3; ++op) {
      auto f = [op](const Tensor& t) { return op == 0 ? t.exp() : op == 1 ? t.sigmoid() : t.sqrt(); };
      auto first = [&](const std::vector<Tensor>& in) {
        AutoGradMode on(true);  // gradcheck evaluates f under NoGradGuard; this f needs a graph
        return autograd::grad({f(in[0]).sum()}, {in[0]}, {}, true)[0];
      };
      auto r = testing::gradcheck(first, {testing::positive_f64({5}, 3 + op)});
      INFO("op " << op << ": " << r.message);
      CHECK(r.ok);
    }
  }
}

TEST_CASE("backward on a non-scalar needs a gradient", "[engine]") {
  Tensor x = tensor({1.0, 2.0}, true);
  Tensor y = x * 2.0;
  const std::string msg = message_of<std::invalid_argument>([&] { y.backward(); });
  CHECK(contains(msg, "backward"));
  CHECK(contains(msg, "[2]"));
  CHECK_FALSE(x.grad().defined());
  // With an explicit gradient it works (and the gradient weights the result).
  y.backward(tensor({1.0, 10.0}));
  CHECK(values_of<double>(x.grad()) == std::vector<double>{2, 20});
  // A gradient of the wrong shape is refused, naming both shapes.
  Tensor z = x * 3.0;
  const std::string bad = message_of<std::invalid_argument>([&] { z.backward(tensor({1.0, 2.0, 3.0})); });
  CHECK(contains(bad, "[3]"));
  CHECK(contains(bad, "[2]"));
  // A gradient of another dtype is converted.
  Tensor w = x * 1.0;
  x.set_grad(Tensor());
  w.backward(tensor({1.f, 1.f}));
  CHECK(x.grad().dtype() == float64);
  CHECK(values_of<double>(x.grad()) == std::vector<double>{1, 1});
  // A one-element non-0-dim output needs none.
  Tensor s = (x.sum() * 1.0).reshape({1, 1});
  x.set_grad(Tensor());
  s.backward();
  CHECK(values_of<double>(x.grad()) == std::vector<double>{1, 1});
  // backward on a leaf that requires grad: its own gradient is the seed.
  Tensor leaf = tensor({5.0}, true);
  leaf.backward();
  CHECK(leaf.grad().item<double>() == 1.0);
}

TEST_CASE("backward through a broadcast is bit-identical across thread counts", "[engine]") {
  // The gradient of a broadcast bias sums over the batch in a fixed order.
  auto run = [] {
    Tensor x = testing::randn_f64({700, 301}, 5, false).to(float32);
    Tensor b = testing::randn_f64({301}, 6).to(float32).detach();
    b.requires_grad_();
    Tensor w = testing::randn_f64({700, 1}, 7).to(float32).detach();
    w.requires_grad_();
    ((x + b) * w).sum().backward();
    return std::vector<Tensor>{b.grad(), w.grad()};
  };
  auto results = testing::at_thread_counts({1, 2, 3, 8}, run);
  for (std::size_t i = 1; i < results.size(); ++i) {
    CHECK(testing::bit_identical(results[0][0], results[i][0]));
    CHECK(testing::bit_identical(results[0][1], results[i][1]));
  }
}

TEST_CASE("backward with create_graph into a leaf that is then dropped frees the leaf and its graph", "[engine]") {
  std::weak_ptr<sorix::TensorImpl> leaf_impl, grad_impl;
  {
    sorix::Tensor x = sorix::tensor({1.0, 2.0, 3.0}, true);
    sorix::Tensor y = (x * x * x).sum();
    y.backward(sorix::Tensor(), false, /*create_graph=*/true);
    REQUIRE(x.grad().defined());
    CHECK(x.grad().grad_fn() != nullptr);  // the gradient has its own graph (second derivatives)
    // It still reaches x: d/dx sum(grad) = sum(6x).
    sorix::Tensor gg = sorix::autograd::grad({x.grad().sum()}, {x})[0];
    CHECK(gg.data_ptr<double>()[2] == 18.0);
    leaf_impl = x.impl_ptr();
    grad_impl = x.grad().impl_ptr();
  }
  // No cycle through the leaf's gradient: both are gone with the last handle.
  CHECK(leaf_impl.expired());
  CHECK(grad_impl.expired());
}

TEST_CASE("on_leaf_gradient_ready reports each leaf once, after its last gradient, in the engine's order", "[engine]") {
  // w is used twice (two edges): it is reported only once both gradients are in its grad().
  sorix::Tensor w = sorix::tensor({1.0, 2.0}, true), b = sorix::tensor({0.5, 0.5}, true);
  sorix::Tensor unused = sorix::tensor({1.0}, true);
  sorix::Tensor h = w * 3.0 + b;
  std::vector<std::string> seen;
  std::vector<double> w_grad_when_ready;
  // A probe node above everything registers the hook (as DistributedDataParallel does).
  sorix::Tensor top = (h * w).detach();
  sorix::autograd::record(top, "Probe", {h * w}, [&](const sorix::Tensor& g) -> std::vector<sorix::Tensor> {
    sorix::autograd::on_leaf_gradient_ready([&](const sorix::Tensor& leaf) {
      if (leaf.impl() == w.impl()) {
        seen.push_back("w");
        w_grad_when_ready = values_of<double>(leaf.grad());
      } else if (leaf.impl() == b.impl()) {
        seen.push_back("b");
      } else {
        seen.push_back("?");
      }
    });
    return {g};
  });
  top.sum().backward();
  REQUIRE(seen.size() == 2);  // unused is not in the graph: not reported
  CHECK(std::count(seen.begin(), seen.end(), "w") == 1);
  CHECK(std::count(seen.begin(), seen.end(), "b") == 1);
  // d/dw sum((3w + b) w) = 6w + b: both edges' gradients were in grad() when w was reported.
  CHECK(w_grad_when_ready == std::vector<double>{6.5, 12.5});
  CHECK(!unused.grad().defined());
  CHECK_THROWS_AS(sorix::autograd::on_leaf_gradient_ready([](const sorix::Tensor&) {}), std::logic_error);
}
