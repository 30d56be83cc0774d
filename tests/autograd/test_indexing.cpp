// libtorch-style indexing: Tensor::index with integers, Slice, None, Ellipsis and bool; tensor
// indices (positions and masks) with gradients; index_put_; masked_fill, masked_select; where
// with scalars; operator[]; errors on bad index lists.
#include <catch2/catch.hpp>

#include <stdexcept>
#include <vector>

#include "tests/support/errors.hpp"
#include "tests/support/gradcheck.hpp"
#include "tests/support/values.hpp"

using sorix::Shape;
using sorix::Tensor;
using sorix::tensor;
using sorix::zeros;
using sorix::testing::bit_identical;
using sorix::testing::contains;
using sorix::testing::gradcheck;
using sorix::testing::iota;
using sorix::testing::message_of;
using sorix::testing::randn_f64;
using sorix::testing::values_of;
using namespace sorix::indexing;

TEST_CASE("basic indices give views, as Python's t[1:3, 0, None, ...]", "[indexing]") {
  Tensor t = iota({4, 3, 5}).clone();
  Tensor v = t.index({Slice(1, 3), 0, None, Ellipsis});
  CHECK(v.shape() == Shape{2, 1, 5});
  CHECK(v.impl()->storage == t.impl()->storage);
  CHECK(values_of<float>(v) == std::vector<float>{15, 16, 17, 18, 19, 30, 31, 32, 33, 34});
  CHECK(t.index({Ellipsis, 2}).shape() == Shape{4, 3});
  CHECK(t.index({"...", -1}).stride() == Shape{15, 5});
  CHECK(t.index({Slice(None, None, 2), Slice(1)}).shape() == Shape{2, 2, 5});
  CHECK(t.index({Slice(-2)}).storage_offset() == 30);
  CHECK(t.index({}).is_same(t));
  CHECK(t.index({true}).shape() == Shape{1, 4, 3, 5});
  CHECK(t.index({false}).shape() == Shape{0, 4, 3, 5});
  CHECK(t.index({1, 2, 3}).item<float>() == 28.f);
  CHECK(t[1][2][3].item<float>() == 28.f);
  // A write through a basic index lands in t.
  t.index({Slice(), 1}).fill_(-1);
  CHECK(values_of<float>(t[0][1]) == std::vector<float>(5, -1.f));
}

TEST_CASE("tensor indices pick positions and masks, with gradients", "[indexing]") {
  Tensor t = iota({4, 3});
  CHECK(values_of<float>(t.index({tensor({3, 0, -1})})) == std::vector<float>{9, 10, 11, 0, 1, 2, 9, 10, 11});
  // Two position tensors broadcast together: elementwise pairs.
  Tensor pairs = t.index({tensor({0, 2, 3}), tensor({1, 0, 2})});
  CHECK(pairs.shape() == Shape{3});
  CHECK(values_of<float>(pairs) == std::vector<float>{1, 6, 11});
  Tensor grid = t.index({tensor({0, 3}).unsqueeze(1), tensor({0, 2})});
  CHECK(grid.shape() == Shape{2, 2});
  CHECK(values_of<float>(grid) == std::vector<float>{0, 2, 9, 11});
  // Adjacent tensor indices keep their place; separated ones go first (NumPy's rule).
  Tensor c = iota({2, 3, 4, 5});
  CHECK(c.index({Slice(), tensor({0, 2}), tensor({1, 3})}).shape() == Shape{2, 2, 5});
  CHECK(c.index({tensor({0, 1}), Slice(), tensor({1, 3})}).shape() == Shape{2, 3, 5});
  CHECK(values_of<float>(c.index({Slice(), tensor({2}), Slice(), 4})) ==
        values_of<float>(c.select(3, 4).select(1, 2).unsqueeze(1)));
  // Masks: bool tensors (uint8 too, as PyTorch 1.13); float tensors are refused.
  Tensor m = t.gt(4.5);
  CHECK(values_of<float>(t.index({m})) == std::vector<float>{5, 6, 7, 8, 9, 10, 11});
  CHECK(values_of<float>(t.index({tensor({true, false, false, true})})) == std::vector<float>{0, 1, 2, 9, 10, 11});
  Tensor ti = iota({4}, sorix::int64);
  CHECK(values_of<std::int64_t>(ti.index({ti.gt(1)})) == std::vector<std::int64_t>{2, 3});
  CHECK(values_of<float>(t.index({Slice(), tensor({false, true, true}).to(sorix::kUInt8)})) ==
        std::vector<float>{1, 2, 4, 5, 7, 8, 10, 11});
  CHECK_THROWS_AS(t.index({tensor({1.0f, 0.0f, 0.0f, 1.0f})}), std::invalid_argument);
  // Gradients: repeated positions accumulate.
  auto f = [](const std::vector<Tensor>& in) {
    return in[0].index({tensor({2, 0, 2}), Slice(1, 3)}) * in[0].index({Slice(), tensor({0, 0})}).narrow(0, 0, 3);
  };
  auto r = gradcheck(f, {randn_f64({3, 4}, 1)});
  INFO(r.message);
  CHECK(r.ok);
  auto g = [](const std::vector<Tensor>& in) { return in[0].index({in[0].detach().gt(0.0)}); };
  auto r2 = gradcheck(g, {randn_f64({3, 4}, 2)});
  INFO(r2.message);
  CHECK(r2.ok);
}

TEST_CASE("index_put_ writes through every kind of index", "[indexing]") {
  Tensor t = zeros({3, 4});
  t.index_put_({1}, 5.0);
  t.index_put_({Slice(), 3}, tensor({1.f, 2.f, 3.f}));
  t.index_put_({tensor({0, 2}), tensor({0, 1})}, tensor({7.f, 8.f}));
  t.index_put_({t.gt(4.5).index({Slice(), Slice()})}, -1.0);
  CHECK(values_of<float>(t) == std::vector<float>{-1, 0, 0, 1, -1, -1, -1, 2, 0, -1, 0, 3});
  // Through a view of the tensor: the write lands in the base.
  Tensor base = zeros({2, 4});
  base.t().index_put_({tensor({1, 3})}, tensor({{1.f, 2.f}}));
  CHECK(values_of<float>(base) == std::vector<float>{0, 1, 0, 1, 0, 2, 0, 2});
  // Repeated positions: the last one (in index order) wins, on every run.
  Tensor d = zeros({3});
  d.index_put_({tensor({1, 1, 1})}, tensor({4.f, 5.f, 6.f}));
  CHECK(values_of<float>(d) == std::vector<float>{0, 6, 0});
  // Gradients to the tensor (written positions get none) and to the values.
  auto f = [](const std::vector<Tensor>& in) {
    Tensor y = in[0] * 1.0;
    y.index_put_({tensor({2, 0}), Slice(1, 3)}, in[1]);
    return y;
  };
  auto r = gradcheck(f, {randn_f64({3, 4}, 1), randn_f64({2}, 2)});
  INFO(r.message);
  CHECK(r.ok);
  const std::string m = message_of([&] { zeros({3, 4}).index_put_({tensor({0, 1})}, zeros({3})); });
  CHECK(contains(m, "index_put_"));
  CHECK(contains(m, "[3]"));
}

TEST_CASE("masked_fill, masked_select and where with scalars", "[indexing]") {
  Tensor x = tensor({{1.0, -2.0, 3.0}, {-4.0, 5.0, -6.0}}, true);
  Tensor neg = x.lt(0.0);
  Tensor y = x.masked_fill(neg, 0.0);
  CHECK(values_of<double>(y) == std::vector<double>{1, 0, 3, 0, 5, 0});
  y.sum().backward();
  CHECK(values_of<double>(x.grad()) == std::vector<double>{1, 0, 1, 0, 1, 0});
  // The mask broadcasts to the tensor.
  Tensor z = zeros({2, 3});
  z.masked_fill_(tensor({true, false, true}), 9.0);
  CHECK(values_of<float>(z) == std::vector<float>{9, 0, 9, 9, 0, 9});
  z.t()[1].masked_fill_(tensor({false, true}), tensor(std::vector<double>{-3.0}, {}));
  CHECK(values_of<float>(z) == std::vector<float>{9, 0, 9, 9, -3, 9});
  CHECK_THROWS_AS(z.masked_fill(zeros({3, 3}, sorix::kBool), 1.0), std::invalid_argument);
  CHECK_THROWS_AS(z.masked_fill(zeros({3}, sorix::kBool), zeros({2})), std::invalid_argument);
  CHECK_THROWS_AS(z.masked_fill(zeros({3}), 1.0), std::invalid_argument);  // a float mask
  // masked_select: a 1-D copy in row-major order, both sides broadcast.
  Tensor w = iota({2, 3});
  CHECK(values_of<float>(w.masked_select(w.gt(2.5))) == std::vector<float>{3, 4, 5});
  CHECK(values_of<float>(w.masked_select(tensor({true, false, true}))) == std::vector<float>{0, 2, 3, 5});
  CHECK(w.masked_select(zeros({2, 3}, sorix::kBool)).shape() == Shape{0});
  // where with scalar arguments.
  Tensor c = tensor({true, false, true});
  CHECK(values_of<float>(sorix::where(c, 5.0, iota({3}))) == std::vector<float>{5, 1, 5});
  CHECK(values_of<float>(sorix::where(c, iota({3}), -1.0)) == std::vector<float>{0, -1, 2});
  Tensor both = sorix::where(c, 1.5, 2.5);
  CHECK(both.dtype() == sorix::float32);
  CHECK(values_of<float>(both) == std::vector<float>{1.5, 2.5, 1.5});
  CHECK(bit_identical(sorix::nonzero(tensor({{0.f, 1.f}, {2.f, 0.f}})), tensor({{0, 1}, {1, 0}})));
}

TEST_CASE("bad index lists throw clear errors", "[indexing]") {
  Tensor t = iota({2, 3});
  const std::string m1 = message_of<std::out_of_range>([&] { t.index({0, 1, 2}); });
  CHECK(contains(m1, "too many indices"));
  CHECK(contains(m1, "[2, 3]"));
  CHECK_THROWS_AS(t.index({Ellipsis, 0, Ellipsis}), std::invalid_argument);
  CHECK_THROWS_AS(t.index({"..x"}), std::invalid_argument);
  CHECK_THROWS_AS(t.index({2}), std::out_of_range);
  const std::string m2 = message_of<std::out_of_range>([&] { t.index({Slice(), tensor({3})}); });
  CHECK(contains(m2, "index 3"));
  CHECK(contains(m2, "size 3"));
  const std::string m3 = message_of([&] { t.index({tensor({1.f, 0.f, 1.f})}); });
  CHECK(contains(m3, "mask"));
  CHECK_THROWS_AS(t.index({Slice(0, 2, -1)}), std::invalid_argument);
  CHECK_THROWS_AS(t.index({tensor({0, 1}), tensor({0, 1, 2})}), std::invalid_argument);
  CHECK_THROWS_AS(t.index({Tensor()}), std::invalid_argument);
}
