// The Tensor handle: factories, shape queries, item/data access, dtype conversion, clone/detach,
// printing, and the input checks of each.
#include <sorix/sorix.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/support/errors.hpp"
#include "tests/support/values.hpp"

using namespace sorix;
using sorix::testing::contains;
using sorix::testing::message_of;
using sorix::testing::values_of;

namespace {


}  // namespace

TEST_CASE("tensor() from initializer lists", "[tensor]") {
  SECTION("1-D float, double, int") {
    Tensor f = tensor({1.5f, -2.0f, 3.25f});
    CHECK(f.dtype() == float32);
    CHECK(f.shape() == Shape{3});
    CHECK(values_of<float>(f) == std::vector<float>{1.5f, -2.0f, 3.25f});
    Tensor d = tensor({1.0, 2.0});
    CHECK(d.dtype() == float64);
    CHECK(values_of<double>(d) == std::vector<double>{1.0, 2.0});
    Tensor i = tensor({1, -2, 3});
    CHECK(i.dtype() == int64);
    CHECK(values_of<std::int64_t>(i) == std::vector<std::int64_t>{1, -2, 3});
    Tensor l = tensor({std::int64_t(1) << 40, std::int64_t(-5)});
    CHECK(l.dtype() == int64);
    CHECK(values_of<std::int64_t>(l) == std::vector<std::int64_t>{std::int64_t(1) << 40, -5});
  }
  SECTION("2-D rows are row-major") {
    Tensor f = tensor({{1.f, 2.f, 3.f}, {4.f, 5.f, 6.f}});
    CHECK(f.dtype() == float32);
    CHECK(f.shape() == Shape{2, 3});
    CHECK(values_of<float>(f) == std::vector<float>{1, 2, 3, 4, 5, 6});
    CHECK(f.data<float>()(1, 0) == 4.f);
    Tensor d = tensor({{1.0, 2.0}, {3.0, 4.0}, {5.0, 6.0}});
    CHECK(d.dtype() == float64);
    CHECK(d.shape() == Shape{3, 2});
    CHECK(d.data<double>()(2, 1) == 6.0);
    Tensor i = tensor({{1, 2}, {3, 4}});
    CHECK(i.dtype() == int64);
    CHECK(values_of<std::int64_t>(i) == std::vector<std::int64_t>{1, 2, 3, 4});
  }
  SECTION("ragged rows are rejected, naming the row") {
    const std::string msg = message_of([] { tensor({{1.f, 2.f}, {3.f}}); });
    CHECK(contains(msg, "tensor"));
    CHECK(contains(msg, "row 1"));
  }
  SECTION("requires_grad") {
    Tensor f = tensor({1.f, 2.f}, true);
    CHECK(f.requires_grad());
    CHECK(f.is_leaf());
    CHECK_FALSE(tensor({1.f}).requires_grad());
  }
  SECTION("from a vector and a shape, in any dtype") {
    Tensor t = tensor({1.0, 2.5, -3.0, 4.0, 5.0, 6.0}, {2, 3}, float64);
    CHECK(t.shape() == Shape{2, 3});
    CHECK(values_of<double>(t) == std::vector<double>{1.0, 2.5, -3.0, 4.0, 5.0, 6.0});
    Tensor i = tensor({1.0, 2.0, 3.0}, {3}, int64);
    CHECK(values_of<std::int64_t>(i) == std::vector<std::int64_t>{1, 2, 3});
    CHECK(tensor({1.0, 2.0}, {2}, TensorOptions().requires_grad()).requires_grad());
    CHECK(contains(message_of([] { tensor(std::vector<double>{1.0, 2.0, 3.0}, Shape{2, 2}); }), "3 values do not fill shape [2, 2]"));
  }
  SECTION("from an xarray (copied)") {
    xt::xarray<float> a = {{1.f, 2.f}, {3.f, 4.f}};
    Tensor t = tensor(a);
    a(0, 0) = 100.f;
    CHECK(t.shape() == Shape{2, 2});
    CHECK(t.data<float>()(0, 0) == 1.f);
    Tensor moved(xt::xarray<double>{1.0, 2.0}, true);
    CHECK(moved.dtype() == float64);
    CHECK(moved.requires_grad());
  }
}

TEST_CASE("filled factories and dtype options", "[tensor]") {
  Tensor z = zeros({2, 3});
  CHECK(z.dtype() == float32);
  CHECK(z.shape() == Shape{2, 3});
  CHECK(values_of<float>(z) == std::vector<float>(6, 0.f));
  CHECK_FALSE(z.requires_grad());

  Tensor o = ones({4}, float64);
  CHECK(o.dtype() == float64);
  CHECK(values_of<double>(o) == std::vector<double>(4, 1.0));

  Tensor f = full({2, 2}, 2.5, TensorOptions().dtype(float64).requires_grad());
  CHECK(f.dtype() == float64);
  CHECK(f.requires_grad());
  CHECK(values_of<double>(f) == std::vector<double>(4, 2.5));

  Tensor fi = full({3}, -7.0, int64);
  CHECK(values_of<std::int64_t>(fi) == std::vector<std::int64_t>(3, -7));

  Tensor e = empty({3, 0, 2}, float64);
  CHECK(e.shape() == Shape{3, 0, 2});
  CHECK(e.numel() == 0);
  CHECK(e.dtype() == float64);

  // Large enough for the parallel fill: every element is written.
  Tensor big = full({1000003}, 3.0);
  bool all = true;
  for (float v : values_of<float>(big)) all = all && v == 3.f;
  CHECK(all);

  // A 0-dim tensor.
  Tensor s = zeros({});
  CHECK(s.dim() == 0);
  CHECK(s.numel() == 1);
  CHECK(s.shape().empty());
}

TEST_CASE("arange, linspace, eye", "[tensor]") {
  CHECK(values_of<float>(arange(5)) == std::vector<float>{0, 1, 2, 3, 4});
  CHECK(arange(5).dtype() == float32);
  CHECK(values_of<std::int64_t>(arange(4, int64)) == std::vector<std::int64_t>{0, 1, 2, 3});
  CHECK(values_of<double>(arange(0, 1, 0.25, float64)) == std::vector<double>{0, 0.25, 0.5, 0.75});
  CHECK(values_of<double>(arange(3, 0, -1, float64)) == std::vector<double>{3, 2, 1});
  CHECK(values_of<float>(arange(1, 2.05, 0.5)) == std::vector<float>{1.f, 1.5f, 2.f});
  CHECK(arange(2, 2).numel() == 0);
  CHECK(contains(message_of([] { arange(0, 1, 0); }), "arange"));
  CHECK(contains(message_of([] { arange(0, 5, -1); }), "arange"));
  CHECK_THROWS_AS(arange(0, std::numeric_limits<double>::infinity()), std::invalid_argument);

  CHECK(values_of<double>(linspace(0, 1, 5, float64)) == std::vector<double>{0, 0.25, 0.5, 0.75, 1});
  CHECK(values_of<float>(linspace(-1, 1, 3)) == std::vector<float>{-1, 0, 1});
  CHECK(values_of<double>(linspace(2, 3, 1, float64)) == std::vector<double>{2});
  CHECK(linspace(0, 1, 0).numel() == 0);
  {
    // The last element is exactly `end` even when the step does not divide evenly.
    Tensor l = linspace(0.1, 0.7, 7, float64);
    CHECK(l.data<double>()(6) == 0.7);
    CHECK(l.data<double>()(0) == 0.1);
    CHECK(l.data<double>()(3) == Approx(0.4).epsilon(1e-15));
  }
  CHECK(contains(message_of([] { linspace(0, 1, -1); }), "linspace"));

  Tensor i3 = eye(3);
  CHECK(i3.shape() == Shape{3, 3});
  CHECK(values_of<float>(i3) == std::vector<float>{1, 0, 0, 0, 1, 0, 0, 0, 1});
  Tensor i23 = eye(2, 3, float64);
  CHECK(i23.dtype() == float64);
  CHECK(values_of<double>(i23) == std::vector<double>{1, 0, 0, 0, 1, 0});
  CHECK(values_of<std::int64_t>(eye(3, 2, int64)) == std::vector<std::int64_t>{1, 0, 0, 1, 0, 0});
  CHECK(eye(0).numel() == 0);
  CHECK(eye(2, TensorOptions().dtype(float64).requires_grad()).requires_grad());
}

TEST_CASE("*_like factories", "[tensor]") {
  Tensor like = ones({2, 3}, TensorOptions().dtype(float64).requires_grad());
  for (const Tensor& t : {empty_like(like), zeros_like(like), ones_like(like), full_like(like, 4.0)}) {
    CHECK(t.shape() == Shape{2, 3});
    CHECK(t.dtype() == float64);
    CHECK_FALSE(t.requires_grad());  // not inherited
    CHECK_FALSE(t.is_same(like));
  }
  CHECK(values_of<double>(zeros_like(like)) == std::vector<double>(6, 0.0));
  CHECK(values_of<double>(ones_like(like)) == std::vector<double>(6, 1.0));
  CHECK(values_of<double>(full_like(like, 4.0)) == std::vector<double>(6, 4.0));
  Tensor i = zeros_like(like, int64);
  CHECK(i.dtype() == int64);
  CHECK(i.shape() == Shape{2, 3});
  Tensor f = full_like(like, 2.0, TensorOptions().dtype(float32).requires_grad());
  CHECK(f.dtype() == float32);
  CHECK(f.requires_grad());
  CHECK(values_of<float>(f) == std::vector<float>(6, 2.f));
  CHECK(ones_like(like, float32).dtype() == float32);
  CHECK(empty_like(like, int64).dtype() == int64);
}

TEST_CASE("negative sizes are rejected naming the op and the shape", "[tensor]") {
  for (auto make : std::vector<std::function<Tensor()>>{
           [] { return zeros({2, -1}); }, [] { return ones({-3}); }, [] { return empty({-1, 2}); },
           [] { return full({-2}, 1.0); }, [] { return tensor(std::vector<double>{1.0}, Shape{-1}); }}) {
    const std::string msg = message_of([&] { make(); });
    CHECK(contains(msg, "negative size"));
    CHECK(contains(msg, "-"));
  }
  CHECK(contains(message_of([] { zeros({2, -1}); }), "zeros: negative size -1 in shape [2, -1]"));
  CHECK(contains(message_of([] { ones({-3}); }), "ones"));
  CHECK(contains(message_of([] { empty({-1, 2}); }), "empty"));
  CHECK_THROWS_AS(eye(-1), std::invalid_argument);
}

TEST_CASE("requires_grad on int64 is rejected", "[tensor]") {
  CHECK(contains(message_of([] { tensor({1, 2}, true); }), "int64"));
  CHECK_THROWS_AS(zeros({2}, TensorOptions().dtype(int64).requires_grad()), std::invalid_argument);
  CHECK_THROWS_AS(Tensor(xt::xarray<std::int64_t>{1, 2}, true), std::invalid_argument);
  Tensor i = arange(3, int64);
  const std::string msg = message_of([&] { i.requires_grad_(); });
  CHECK(contains(msg, "requires_grad_"));
  CHECK(contains(msg, "int64"));
  CHECK_FALSE(i.requires_grad());
  i.requires_grad_(false);  // turning it off is always fine
  Tensor f = zeros({2});
  f.requires_grad_();
  CHECK(f.requires_grad());
  f.requires_grad_(false);
  CHECK_FALSE(f.requires_grad());
  // A non-leaf cannot turn requires_grad off.
  Tensor x = ones({2}, TensorOptions().requires_grad());
  Tensor y = x * 2.0;
  CHECK_THROWS_AS(y.requires_grad_(false), std::invalid_argument);
}

TEST_CASE("shape, numel, dim, size", "[tensor]") {
  Tensor t = zeros({2, 3, 4});
  CHECK(t.shape() == Shape{2, 3, 4});
  CHECK(t.numel() == 24);
  CHECK(t.dim() == 3);
  CHECK(t.size(0) == 2);
  CHECK(t.size(2) == 4);
  CHECK(t.size(-1) == 4);
  CHECK(t.size(-3) == 2);
  CHECK_THROWS_AS(t.size(3), std::out_of_range);
  CHECK_THROWS_AS(t.size(-4), std::out_of_range);
  Tensor s = zeros({});
  CHECK(s.dim() == 0);
  CHECK_THROWS_AS(s.size(0), std::out_of_range);
  Tensor e = zeros({0, 5});
  CHECK(e.numel() == 0);
  CHECK(e.size(1) == 5);
  CHECK(shape_string({2, 3}) == "[2, 3]");
  CHECK(shape_string({}) == "[]");

  Tensor undefined;
  CHECK_FALSE(undefined.defined());
  CHECK_FALSE(undefined.requires_grad());
  CHECK_THROWS_AS(undefined.shape(), std::invalid_argument);
  CHECK_THROWS_AS(undefined.numel(), std::invalid_argument);
  CHECK_THROWS_AS(undefined.dtype(), std::invalid_argument);
}

TEST_CASE("item<T>", "[tensor]") {
  CHECK(tensor({2.5f}).item<float>() == 2.5f);
  CHECK(tensor({2.5f}).item<double>() == 2.5);
  CHECK(tensor({2.75}).item<float>() == 2.75f);
  CHECK(tensor({7}).item<std::int64_t>() == 7);
  CHECK(tensor({7}).item<double>() == 7.0);
  CHECK(tensor({-3.9}).item<int>() == -3);  // truncation toward zero, as static_cast
  CHECK(full({}, 5.0, float64).item<double>() == 5.0);
  CHECK(ones({1, 1, 1}).item<float>() == 1.f);
  const std::string msg = message_of([] { zeros({2}).item<float>(); });
  CHECK(contains(msg, "item"));
  CHECK(contains(msg, "[2]"));
  CHECK_THROWS_AS(zeros({0}).item<float>(), std::invalid_argument);
  CHECK_THROWS_AS(Tensor().item<float>(), std::invalid_argument);
}

TEST_CASE("data<T>() with the wrong T throws naming both dtypes", "[tensor]") {
  Tensor f = zeros({2});
  CHECK(f.data<float>().size() == 2);
  const std::string m1 = message_of([&] { f.data<double>(); });
  CHECK(contains(m1, "float64"));
  CHECK(contains(m1, "float32"));
  const Tensor& cf = f;
  const std::string m2 = message_of([&] { cf.data<std::int64_t>(); });
  CHECK(contains(m2, "int64"));
  CHECK(contains(m2, "float32"));
  Tensor i = zeros({2}, int64);
  const std::string m3 = message_of([&] { i.data_ptr<float>(); });
  CHECK(contains(m3, "float32"));
  CHECK(contains(m3, "int64"));
  CHECK_THROWS_AS(Tensor().data<float>(), std::invalid_argument);
  // data<T>() is the storage itself: writes are seen by the tensor.
  f.data<float>()(1) = 9.f;
  CHECK(f.data_ptr<float>()[1] == 9.f);
}

TEST_CASE("to() converts between every pair of dtypes", "[tensor]") {
  Tensor f = tensor({1.5f, -2.75f, 0.f, 3.f});
  Tensor d = tensor({1.5, -2.75, 0.0, 3.0});
  Tensor i = tensor({1, -2, 0, 3});
  CHECK(f.to(float32).is_same(f));  // same dtype: the same handle
  CHECK(values_of<double>(f.to(float64)) == std::vector<double>{1.5, -2.75, 0.0, 3.0});
  CHECK(values_of<std::int64_t>(f.to(int64)) == std::vector<std::int64_t>{1, -2, 0, 3});  // toward zero
  CHECK(values_of<float>(d.to(float32)) == std::vector<float>{1.5f, -2.75f, 0.f, 3.f});
  CHECK(values_of<std::int64_t>(d.to(int64)) == std::vector<std::int64_t>{1, -2, 0, 3});
  CHECK(values_of<float>(i.to(float32)) == std::vector<float>{1, -2, 0, 3});
  CHECK(values_of<double>(i.to(float64)) == std::vector<double>{1, -2, 0, 3});
  CHECK(d.to(int64).shape() == Shape{4});
  // float64 -> float32 rounds to nearest.
  CHECK(tensor({0.1}).to(float32).item<float>() == 0.1f);
  // Shapes are kept, including 0-dim and empty.
  CHECK(zeros({2, 0, 3}).to(float64).shape() == Shape{2, 0, 3});
  CHECK(zeros({}).to(int64).dim() == 0);
  // Large (parallel) conversions match element by element.
  Tensor big = arange(1000003, float64) * 0.5;
  Tensor bf = big.to(float32);
  const double* pb = big.data_ptr<double>();
  const float* pf = bf.data_ptr<float>();
  bool same = true;
  for (std::int64_t k = 0; k < big.numel(); ++k) same = same && pf[k] == static_cast<float>(pb[k]);
  CHECK(same);
}

TEST_CASE("to() is differentiable between float dtypes; int64 results carry no grad", "[tensor]") {
  Tensor x = tensor({1.0, 2.0, 3.0}, true);
  Tensor y = x.to(float32);
  CHECK(y.requires_grad());
  (y * tensor({1.f, 2.f, 3.f})).sum().backward();
  REQUIRE(x.grad().defined());
  CHECK(x.grad().dtype() == float64);
  CHECK(values_of<double>(x.grad()) == std::vector<double>{1, 2, 3});
  Tensor n = x.to(int64);
  CHECK_FALSE(n.requires_grad());
  CHECK(n.grad_fn() == nullptr);
}

TEST_CASE("clone copies; detach shares storage", "[tensor]") {
  Tensor x = tensor({1.f, 2.f, 3.f}, true);
  Tensor c = x.clone();
  CHECK(values_of<float>(c) == values_of<float>(x));
  CHECK(c.requires_grad());
  CHECK_FALSE(c.is_leaf());
  CHECK(c.impl()->storage != x.impl()->storage);
  {
    NoGradGuard g;
    c.mul_(10.0);
  }
  CHECK(values_of<float>(x) == std::vector<float>{1, 2, 3});  // the clone has its own storage
  // The clone's gradient is the identity.
  Tensor x2 = tensor({1.0, 2.0}, true);
  (x2.clone() * tensor({3.0, 4.0})).sum().backward();
  CHECK(values_of<double>(x2.grad()) == std::vector<double>{3, 4});
  // A clone of an int64 tensor and of a tensor without grad has no history.
  CHECK_FALSE(arange(3, int64).clone().requires_grad());
  CHECK(values_of<std::int64_t>(arange(3, int64).clone()) == std::vector<std::int64_t>{0, 1, 2});

  Tensor d = x.detach();
  CHECK_FALSE(d.requires_grad());
  CHECK(d.is_leaf());
  CHECK(d.grad_fn() == nullptr);
  CHECK_FALSE(d.is_same(x));
  CHECK(d.impl()->storage == x.impl()->storage);
  d.data<float>()(0) = 42.f;
  CHECK(x.data<float>()(0) == 42.f);  // same storage
  const auto v = x.version();
  d.add_(1.0);  // in place through the alias: allowed, and the shared version moves
  CHECK(x.version() == v + 1);
  CHECK(x.data<float>()(1) == 3.f);
  // detach of a non-leaf has no grad_fn
  Tensor y = x * 2.0;
  CHECK(y.grad_fn() != nullptr);
  CHECK(y.detach().grad_fn() == nullptr);
}

TEST_CASE("printing", "[tensor]") {
  CHECK(to_string(tensor({1.f, 2.f})) == "tensor([1., 2.])");
  CHECK(to_string(tensor({1.5f, -2.f})) == "tensor([1.5, -2.])");
  CHECK(to_string(tensor({1.0, 2.0})) == "tensor([1., 2.], dtype=float64)");
  CHECK(to_string(tensor({1, 2, 3})) == "tensor([1, 2, 3])");  // int64 is the default integer type
  CHECK(to_string(tensor({{1.f, 2.f}, {3.f, 4.f}})) == "tensor([[1., 2.],\n        [3., 4.]])");
  CHECK(to_string(full({}, 3.0)) == "tensor(3.)");
  CHECK(to_string(tensor({1.f}, true)) == "tensor([1.], requires_grad=True)");
  CHECK(to_string(tensor({1.0}, true)) == "tensor([1.], dtype=float64, requires_grad=True)");
  Tensor x = tensor({1.f, 2.f}, true);
  CHECK(to_string(x * x) == "tensor([1., 4.], grad_fn=<MulBackward>)");
  {
    NoGradGuard g;
    CHECK(to_string(x * x) == "tensor([1., 4.])");
  }
  CHECK(to_string(zeros({0})) == "tensor([])");
  CHECK(to_string(zeros({0, 3})) == "tensor([], size=(0, 3))");
  CHECK(to_string(Tensor()) == "tensor(undefined)");
  const float inf = std::numeric_limits<float>::infinity();
  CHECK(to_string(tensor({inf, -inf, std::nanf("")})) == "tensor([inf, -inf, nan])");
  CHECK(to_string(tensor({1e10f})) == "tensor([1e+10])");
  // Long dims show their ends only.
  const std::string s = to_string(arange(20));
  CHECK(s == "tensor([0., 1., 2., ..., 17., 18., 19.])");
  std::ostringstream os;
  os << tensor({0.25f});
  CHECK(os.str() == "tensor([0.25])");
}

TEST_CASE("version counter", "[tensor]") {
  Tensor t = zeros({3});
  CHECK(t.version() == 0);
  t.add_(1.0);
  CHECK(t.version() == 1);
  t.fill_(2.0);
  CHECK(t.version() == 2);
  Tensor alias = t;  // a copied handle is the same tensor
  alias.zero_();
  CHECK(t.version() == 3);
  CHECK(values_of<float>(t) == std::vector<float>(3, 0.f));
  CHECK(t.clone().version() == 0);
}

TEST_CASE("grad() is undefined until a gradient arrives; set_grad checks", "[tensor]") {
  Tensor x = tensor({1.f, 2.f}, true);
  CHECK_FALSE(x.grad().defined());
  x.set_grad(tensor({5.f, 6.f}));
  CHECK(values_of<float>(x.grad()) == std::vector<float>{5, 6});
  CHECK_THROWS_AS(x.set_grad(tensor({1.f})), std::invalid_argument);
  CHECK_THROWS_AS(x.set_grad(tensor({1.0, 2.0})), std::invalid_argument);
  x.set_grad(Tensor());
  CHECK_FALSE(x.grad().defined());
}

TEST_CASE("element counts that overflow are refused, never wrapped", "[tensor]") {
  const std::int64_t big = std::int64_t{1} << 40;
  const std::string m = message_of([&] { zeros({big, big}); });
  CHECK(contains(m, "zeros"));
  CHECK(contains(m, "overflows"));
  CHECK_THROWS_AS(zeros({(std::int64_t{1} << 62) + 1, 4}), std::invalid_argument);
  CHECK_THROWS_AS(eye(std::int64_t{1} << 32), std::invalid_argument);
  CHECK_THROWS_AS(ones({1}).expand({big, big}), std::invalid_argument);
  CHECK(zeros({0, big}).numel() == 0);  // a zero dim makes the shape empty...
  // ...but the strides (products of the other dims) must still fit: found by fuzzing checkpoints.
  CHECK_THROWS_AS(zeros({0, big, big}), std::invalid_argument);
  CHECK_THROWS_AS(empty({big, 0, big}), std::invalid_argument);
}
