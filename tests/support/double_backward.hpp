#pragma once
// A layer's create_graph gradient against its plain one, and the gradient of that gradient.
#include <catch2/catch.hpp>

#include <cmath>

#include <sorix/sorix.hpp>

namespace sorix::testing {

/// The gradient of sum(layer(x)^2) with respect to x taken with create_graph (the recorded
/// formulas) equals the plain one to `tol` of its largest magnitude, and its own gradient with
/// respect to `param` (a double backward) is defined, finite and not all zero.
template <class Layer>
void check_double_backward(Layer& layer, const Tensor& x, const Tensor& param, double tol = 2e-6) {
  auto max_abs = [](const Tensor& t) { return t.to(float64).abs().max().item<double>(); };
  const Tensor plain = autograd::grad({layer(x).pow(2).sum()}, {x})[0];
  const Tensor recorded = autograd::grad({layer(x).pow(2).sum()}, {x}, {}, /*create_graph=*/true)[0];
  CHECK(max_abs(plain.to(float64) - recorded.detach().to(float64)) <= tol * max_abs(plain));
  const Tensor second = autograd::grad({recorded.pow(2).sum()}, {param})[0];
  REQUIRE(second.defined());
  CHECK(std::isfinite(max_abs(second)));
  CHECK(max_abs(second) > 0);
}

}  // namespace sorix::testing
