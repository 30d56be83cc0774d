// Bad input at the autograd entry points (backward, autograd::grad, set_grad, requires_grad_,
// in-place ops on graph tensors): each raises a typed exception naming the function and the
// offending value, shape or dtype. (Backward twice without retain_graph and a non-scalar root
// without a gradient are covered in test_engine.cpp; anomaly mode in test_anomaly.cpp.)
#include <sorix/sorix.hpp>

#include <catch2/catch.hpp>

#include <stdexcept>

#include "tests/support/errors.hpp"
#include "tests/support/values.hpp"

using namespace sorix;
using sorix::testing::check_error;
using sorix::testing::values_of;

TEST_CASE("backward refuses gradients of the wrong shape or dtype, and leaves grads untouched", "[bad_input]") {
  Tensor x = ones({2, 2}, TensorOptions().requires_grad());
  check_error<std::invalid_argument>([&] { (x * 2.0).sum().backward(ones({3})); }, {"backward", "[3]", "[]"});
  check_error<std::invalid_argument>([&] { (x * 2.0).backward(ones({2})); }, {"backward", "[2]", "[2, 2]"});
  // An int64 gradient used to be accepted and truncated into the float graph.
  check_error<std::invalid_argument>([&] { x.sum().backward(scalar_tensor(1.0, Dtype::Int64)); },
                                     {"backward", "int64", "float32"});
  check_error<std::invalid_argument>([&] { autograd::backward({x.sum(), x.sum()}, {ones({})}); },
                                     {"backward", "1 gradients for 2 outputs"});
  check_error<std::invalid_argument>([] { Tensor().backward(); }, {"backward", "undefined"});
  check_error<std::runtime_error>([] { (arange(3.0, Dtype::Int64) * 2).sum().backward(); },
                                  {"backward", "does not require grad"});
  CHECK_FALSE(x.grad().defined());
  // A float64 gradient for a float32 output is converted, as PyTorch does.
  (x * 2.0).sum().backward(scalar_tensor(1.0, Dtype::Float64));
  CHECK(values_of<float>(x.grad()) == std::vector<float>(4, 2.f));
}

TEST_CASE("autograd::grad refuses inputs outside the graph and mismatched gradients", "[bad_input]") {
  Tensor x = ones({2}, TensorOptions().requires_grad());
  check_error<std::invalid_argument>([&] { autograd::grad({x.sum()}, {ones({2})}); }, {"autograd::grad", "input 0"});
  check_error<std::invalid_argument>([&] { autograd::grad({x.sum()}, {x}, {ones({3})}); }, {"[3]"});
  check_error<std::invalid_argument>([&] { autograd::grad({x * 2.0}, {x}); }, {"one-element", "[2]"});
  Tensor unused = ones({2}, TensorOptions().requires_grad());
  CHECK_THROWS_AS(autograd::grad({x.sum()}, {unused}), std::exception);
  CHECK_FALSE(autograd::grad({x.sum()}, {unused}, {}, false, std::nullopt, /*allow_unused=*/true)[0].defined());
}

TEST_CASE("set_grad and requires_grad_ check dtype, shape and leafness", "[bad_input]") {
  Tensor x = ones({2, 2}, TensorOptions().requires_grad());
  check_error<std::invalid_argument>([&] { x.set_grad(ones({2, 2}, Dtype::Float64)); }, {"set_grad", "float64", "float32"});
  check_error<std::invalid_argument>([&] { x.set_grad(ones({4})); }, {"set_grad", "[4]"});
  check_error<std::invalid_argument>([&] { (x * 2.0).requires_grad_(false); }, {"requires_grad_", "non-leaf"});
  check_error<std::invalid_argument>([&] { x.to(Dtype::Int64).requires_grad_(); }, {"requires_grad_", "int64"});
  CHECK_FALSE(x.grad().defined());
}

TEST_CASE("in-place changes that would corrupt a gradient are refused or detected", "[bad_input]") {
  Tensor x = ones({2}, TensorOptions().requires_grad());
  // A leaf, or a view of one, cannot be changed in place while it requires grad.
  check_error<std::runtime_error>([&] { x.mul_(2.0); }, {"mul_", "leaf"});
  check_error<std::runtime_error>([&] { x.view({2}).add_(1.0); }, {"add_", "view of a leaf"});
  CHECK(values_of<float>(x) == std::vector<float>{1.f, 1.f});
  // A saved tensor changed after the forward pass makes backward throw, naming the op.
  Tensor y = x.exp();
  Tensor z = y * 2.0;
  {
    NoGradGuard guard;
    y.mul_(2.0);
  }
  check_error<std::runtime_error>([&] { z.sum().backward(); }, {"modified by an in-place operation", "version 1"});
}
