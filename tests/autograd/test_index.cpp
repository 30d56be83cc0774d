// slice, index_select, gather, cat, stack, split, chunk: values against hand-built references,
// float64 gradchecks (first and second order), error messages, and bit-identical forward and
// gradient results at 1, 2, 3, 8 threads (repeated indices included).
#include <catch2/catch.hpp>

#include <limits>
#include <numeric>
#include <stdexcept>
#include <vector>

#include "tests/support/gradcheck.hpp"
#include "tests/support/values.hpp"

using sorix::Shape;
using sorix::Tensor;
using sorix::testing::at_thread_counts;
using sorix::testing::bit_identical;
using sorix::testing::gradcheck;
using sorix::testing::iota;
using sorix::testing::values_of;
using sorix::testing::randn_f64;
using Catch::Matchers::Contains;
using In = std::vector<Tensor>;

namespace {

Tensor index_of(const std::vector<std::int64_t>& v, const Shape& s) {
  Tensor t = sorix::zeros(s, sorix::int64);
  std::copy(v.begin(), v.end(), t.data_ptr<std::int64_t>());
  return t;
}
Tensor index_of(const std::vector<std::int64_t>& v) { return index_of(v, {static_cast<std::int64_t>(v.size())}); }

void ok(const sorix::testing::GradcheckResult& r) {
  INFO(r.message);
  CHECK(r.ok);
}

// Second-order check of op: f(x) = d/dx sum(op(x)^2 * w), differentiated again by gradcheck.
template <class Op>
void second_order(Op op, const Tensor& x) {
  Tensor w = randn_f64(op(x).shape(), 41, false);
  ok(gradcheck(
      [op, w](const In& in) {
        sorix::AutoGradMode grad_on(true);  // gradcheck evaluates f under NoGradGuard too
        Tensor y = op(in[0]);
        return sorix::autograd::grad({(y * y * w).sum()}, {in[0]}, {}, /*create_graph=*/true)[0];
      },
      {x}));
}

}  // namespace

// ---- slice ---------------------------------------------------------------------------------------

TEST_CASE("slice follows Python slicing", "[index]") {
  struct Case {
    std::int64_t start, end, step;
    std::vector<float> expected;  // list(range(7))[start:end:step], from Python
  };
  const std::vector<Case> cases = {
      {0, 7, 1, {0, 1, 2, 3, 4, 5, 6}}, {2, 6, 2, {2, 4}},   {-3, 100, 1, {4, 5, 6}}, {-100, 3, 1, {0, 1, 2}},
      {5, 2, 1, {}},                    {1, -1, 3, {1, 4}},  {-1, -8, 1, {}},         {100, 200, 1, {}},
      {-8, -1, 2, {0, 2, 4}},           {0, 0, 1, {}},       {6, 7, 5, {6}},          {-7, 7, 3, {0, 3, 6}},
  };
  Tensor x = iota({7});
  for (const Case& c : cases) {
    INFO(c.start << ":" << c.end << ":" << c.step);
    Tensor y = x.slice(0, c.start, c.end, c.step);
    CHECK(y.shape() == Shape{static_cast<std::int64_t>(c.expected.size())});
    CHECK(values_of<float>(y) == c.expected);
  }
  // Along an inner dim: y[i][j][k] = x[i][1 + 2j][k].
  Tensor x3 = iota({3, 6, 4}, sorix::int64);
  Tensor y3 = x3.slice(-2, 1, 6, 2);
  REQUIRE(y3.shape() == Shape{3, 3, 4});
  for (std::int64_t i = 0; i < 3; ++i)
    for (std::int64_t j = 0; j < 3; ++j)
      for (std::int64_t k = 0; k < 4; ++k)
        CHECK(values_of<std::int64_t>(y3)[static_cast<std::size_t>((i * 3 + j) * 4 + k)] == (i * 6 + 1 + 2 * j) * 4 + k);
  Tensor last = iota({2, 5}).slice(1, -2, std::numeric_limits<std::int64_t>::max());
  CHECK(values_of<float>(last) == std::vector<float>{3, 4, 8, 9});
}

TEST_CASE("slice rejects bad steps and dims", "[index]") {
  Tensor x = iota({4, 5});
  CHECK_THROWS_AS(x.slice(0, 0, 4, 0), std::invalid_argument);
  CHECK_THROWS_WITH(x.slice(0, 0, 4, -1), Contains("slice") && Contains("step") && Contains("-1"));
  CHECK_THROWS_AS(x.slice(2, 0, 1), std::out_of_range);
  CHECK_THROWS_WITH(x.slice(-3, 0, 1), Contains("slice") && Contains("-3"));
  CHECK_THROWS_AS(sorix::full({}, 1.0).slice(0, 0, 1), std::invalid_argument);
}

// ---- index_select -----------------------------------------------------------------------------------

TEST_CASE("index_select picks rows along any dim", "[index]") {
  const Shape s{3, 4, 5};
  Tensor x = iota(s);
  const std::vector<std::int64_t> idx{2, 0, 2, 1, 2};
  for (std::int64_t dim : {0, 1, 2, -1, -3}) {
    INFO("dim " << dim);
    const std::size_t d = static_cast<std::size_t>(dim < 0 ? dim + 3 : dim);
    Tensor y = x.index_select(dim, index_of(idx));
    Shape ys = s;
    ys[d] = 5;
    REQUIRE(y.shape() == ys);
    for (std::int64_t a = 0; a < ys[0]; ++a)
      for (std::int64_t b = 0; b < ys[1]; ++b)
        for (std::int64_t c = 0; c < ys[2]; ++c) {
          std::int64_t m[3] = {a, b, c};
          m[d] = idx[static_cast<std::size_t>(m[d])];
          CHECK(y.data_ptr<float>()[(a * ys[1] + b) * ys[2] + c] == static_cast<float>((m[0] * 4 + m[1]) * 5 + m[2]));
        }
  }
  CHECK(x.index_select(1, index_of({})).shape() == Shape{3, 0, 5});
  CHECK(values_of<std::int64_t>(sorix::index_select(iota({4}, sorix::int64), 0, index_of({3, 3, 0}))) ==
        std::vector<std::int64_t>{3, 3, 0});
}

TEST_CASE("index_select rejects bad indices naming op, value and size", "[index]") {
  Tensor x = iota({4, 3});
  CHECK_THROWS_AS(x.index_select(0, index_of({0, 4})), std::out_of_range);
  CHECK_THROWS_WITH(x.index_select(0, index_of({0, 4})),
                    Contains("index_select") && Contains("index 4") && Contains("size 4"));
  CHECK_THROWS_AS(x.index_select(1, index_of({-1})), std::out_of_range);
  CHECK_THROWS_WITH(x.index_select(1, index_of({-1})), Contains("index -1") && Contains("size 3"));
  CHECK_THROWS_AS(x.index_select(0, sorix::tensor({0.f, 1.f})), std::invalid_argument);
  CHECK_THROWS_WITH(x.index_select(0, sorix::tensor({0.f})), Contains("index_select") && Contains("int64"));
  CHECK_THROWS_AS(x.index_select(0, index_of({0, 1}, {1, 2})), std::invalid_argument);
  CHECK_THROWS_AS(x.index_select(2, index_of({0})), std::out_of_range);
}

// ---- gather ----------------------------------------------------------------------------------------

TEST_CASE("gather picks elements along a dim", "[index]") {
  Tensor x = iota({3, 4});  // x[i][j] = 4i + j
  // dim 0: out[i][j] = x[idx[i][j]][j]; the index may be smaller than x in the other dim.
  Tensor i0 = index_of({2, 0, 1, 1, 0, 2}, {2, 3});
  CHECK(values_of<float>(x.gather(0, i0)) == std::vector<float>{8, 1, 6, 4, 1, 10});
  // dim 1 (and -1): out[i][j] = x[i][idx[i][j]], repeated indices.
  Tensor i1 = index_of({3, 3, 0, 1, 2, 1}, {3, 2});
  const std::vector<float> e1{3, 3, 4, 5, 10, 9};
  CHECK(values_of<float>(x.gather(1, i1)) == e1);
  CHECK(values_of<float>(x.gather(-1, i1)) == e1);
  // 3-D, middle dim, against a loop.
  Tensor x3 = iota({3, 5, 4});
  Tensor i3 = index_of({4, 0, 3, 3, 1, 2, 0, 4, 4, 4, 2, 1, 0, 0, 3, 2}, {2, 4, 2});
  Tensor y3 = sorix::gather(x3, 1, i3);
  REQUIRE(y3.shape() == Shape{2, 4, 2});
  for (std::int64_t a = 0; a < 2; ++a)
    for (std::int64_t b = 0; b < 4; ++b)
      for (std::int64_t c = 0; c < 2; ++c) {
        const std::int64_t e = (a * 4 + b) * 2 + c;
        CHECK(y3.data_ptr<float>()[e] == static_cast<float>((a * 5 + i3.data_ptr<std::int64_t>()[e]) * 4 + c));
      }
  // 0-dim input and index.
  CHECK(sorix::full({}, 7.0).gather(0, sorix::zeros({}, sorix::int64)).item<float>() == 7.f);
}

TEST_CASE("gather rejects bad indices and shapes", "[index]") {
  Tensor x = iota({3, 4});
  CHECK_THROWS_AS(x.gather(1, index_of({0, 4}, {1, 2})), std::out_of_range);
  CHECK_THROWS_WITH(x.gather(1, index_of({0, 4}, {1, 2})), Contains("gather") && Contains("index 4") && Contains("size 4"));
  CHECK_THROWS_AS(x.gather(0, index_of({-1}, {1, 1})), std::out_of_range);
  CHECK_THROWS_AS(x.gather(0, index_of({0, 1})), std::invalid_argument);  // 1-D index for 2-D x
  CHECK_THROWS_WITH(x.gather(0, index_of({0, 1})), Contains("gather") && Contains("[3, 4]"));
  CHECK_THROWS_AS(x.gather(0, index_of({0, 0, 0, 0, 0}, {1, 5})), std::invalid_argument);  // 5 > 4 in dim 1
  CHECK_THROWS_AS(x.gather(0, sorix::zeros({1, 1})), std::invalid_argument);
  CHECK_THROWS_AS(x.gather(2, index_of({0}, {1, 1})), std::out_of_range);
}

// ---- cat and stack ------------------------------------------------------------------------------------

TEST_CASE("cat joins along a dim and promotes dtypes", "[index]") {
  Tensor a = iota({2, 3});                          // 0..5
  Tensor b = iota({2, 1}) + 10.0;                   // 10, 11
  Tensor c = iota({2, 2}) + 20.0;                   // 20..23
  CHECK(values_of<float>(sorix::cat({a, b, c}, 1)) == std::vector<float>{0, 1, 2, 10, 20, 21, 3, 4, 5, 11, 22, 23});
  CHECK(values_of<float>(sorix::cat({a, b, c}, -1)) == values_of<float>(sorix::cat({a, b, c}, 1)));
  Tensor r = sorix::cat({a, iota({1, 3}) + 100.0}, 0);
  CHECK(r.shape() == Shape{3, 3});
  CHECK(values_of<float>(r) == std::vector<float>{0, 1, 2, 3, 4, 5, 100, 101, 102});
  Tensor mixed = sorix::cat({iota({2}, sorix::int64), sorix::tensor({0.5f})});
  CHECK(mixed.dtype() == sorix::float32);
  CHECK(values_of<float>(mixed) == std::vector<float>{0, 1, 0.5f});
  CHECK(sorix::cat({iota({2, 0}), iota({2, 3})}, 1).shape() == Shape{2, 3});
  CHECK(sorix::cat({a}, 0).shape() == Shape{2, 3});
}

TEST_CASE("cat and stack reject mismatched inputs", "[index]") {
  Tensor a = iota({2, 3});
  CHECK_THROWS_AS(sorix::cat({a, iota({3, 2})}, 1), std::invalid_argument);
  CHECK_THROWS_WITH(sorix::cat({a, iota({3, 2})}, 1), Contains("cat") && Contains("[2, 3]") && Contains("[3, 2]"));
  CHECK_THROWS_AS(sorix::cat({a, iota({2, 3, 1})}, 0), std::invalid_argument);
  CHECK_THROWS_AS(sorix::cat({}, 0), std::invalid_argument);
  CHECK_THROWS_AS(sorix::cat({sorix::full({}, 1.0), sorix::full({}, 1.0)}, 0), std::invalid_argument);
  CHECK_THROWS_AS(sorix::cat({a, a}, 2), std::out_of_range);
  CHECK_THROWS_AS(sorix::stack({a, iota({2, 2})}, 0), std::invalid_argument);
  CHECK_THROWS_WITH(sorix::stack({a, iota({2, 2})}, 0), Contains("stack") && Contains("[2, 2]"));
  CHECK_THROWS_AS(sorix::stack({a, a}, 3), std::out_of_range);
}

TEST_CASE("stack adds a new dim", "[index]") {
  Tensor a = iota({2, 3});
  Tensor b = iota({2, 3}) + 10.0;
  Tensor s0 = sorix::stack({a, b}, 0);
  CHECK(s0.shape() == Shape{2, 2, 3});
  CHECK(values_of<float>(s0) == std::vector<float>{0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15});
  Tensor s2 = sorix::stack({a, b}, -1);
  CHECK(s2.shape() == Shape{2, 3, 2});
  CHECK(values_of<float>(s2) == std::vector<float>{0, 10, 1, 11, 2, 12, 3, 13, 4, 14, 5, 15});
  Tensor scalars = sorix::stack({sorix::full({}, 1.0), sorix::full({}, 2.0)});
  CHECK(values_of<float>(scalars) == std::vector<float>{1, 2});
}

// ---- split and chunk ----------------------------------------------------------------------------------

TEST_CASE("split and chunk cut a dim as PyTorch does", "[index]") {
  auto sizes = [](const std::vector<Tensor>& pieces, std::size_t d) {
    std::vector<std::int64_t> s;
    for (const Tensor& p : pieces) s.push_back(p.shape()[d]);
    return s;
  };
  Tensor x = iota({7, 2});
  auto sp = x.split(3);
  CHECK(sizes(sp, 0) == std::vector<std::int64_t>{3, 3, 1});
  CHECK(values_of<float>(sp[2]) == std::vector<float>{12, 13});
  CHECK(values_of<float>(sorix::cat(sp, 0)) == values_of<float>(x));
  CHECK(sizes(x.split(1, -1), 1) == std::vector<std::int64_t>{1, 1});
  CHECK(sizes(x.split(10), 0) == std::vector<std::int64_t>{7});
  CHECK(sizes(iota({5}).chunk(4), 0) == std::vector<std::int64_t>{2, 2, 1});  // ceil(5/4) = 2: 3 pieces
  CHECK(sizes(iota({6}).chunk(4), 0) == std::vector<std::int64_t>{2, 2, 2});
  CHECK(sizes(iota({3}).chunk(5), 0) == std::vector<std::int64_t>{1, 1, 1});
  CHECK(sizes(iota({0}).chunk(3), 0) == std::vector<std::int64_t>{0, 0, 0});
  CHECK(sizes(iota({0, 2}).split(0), 0) == std::vector<std::int64_t>{0});
  auto ch = iota({2, 5}).chunk(2, 1);
  CHECK(values_of<float>(ch[1]) == std::vector<float>{3, 4, 8, 9});
  // Each piece is its own slice op, with its own graph node.
  auto pieces = randn_f64({4, 3}, 3).split(2);
  CHECK(pieces[0].grad_fn() != pieces[1].grad_fn());

  CHECK_THROWS_AS(x.split(0), std::invalid_argument);
  CHECK_THROWS_WITH(x.split(-2), Contains("split") && Contains("-2"));
  CHECK_THROWS_AS(x.chunk(0), std::invalid_argument);
  CHECK_THROWS_WITH(x.chunk(0), Contains("chunk"));
  CHECK_THROWS_AS(x.split(2, 2), std::out_of_range);
}

// ---- gradients ------------------------------------------------------------------------------------------

TEST_CASE("indexing ops pass float64 gradchecks", "[index]") {
  ok(gradcheck([](const In& in) { return in[0].slice(1, 1, 5, 2); }, {randn_f64({3, 6}, 1)}));
  ok(gradcheck([](const In& in) { return in[0].slice(-1, -4, -1, 3); }, {randn_f64({2, 3, 7}, 2)}));
  ok(gradcheck([](const In& in) { return in[0].slice(0, -2, 100); }, {randn_f64({4, 2}, 3)}));

  Tensor rep = index_of({2, 0, 2, 2, 1});
  ok(gradcheck([rep](const In& in) { return in[0].index_select(0, rep); }, {randn_f64({3, 4}, 4)}));
  ok(gradcheck([rep](const In& in) { return in[0].index_select(1, rep); }, {randn_f64({2, 3, 2}, 5)}));
  ok(gradcheck([rep](const In& in) { return in[0].index_select(-1, rep); }, {randn_f64({2, 3}, 6)}));

  Tensor g0 = index_of({2, 0, 2, 2, 1, 0}, {2, 3});
  ok(gradcheck([g0](const In& in) { return in[0].gather(0, g0); }, {randn_f64({3, 4}, 7)}));
  ok(gradcheck([g0](const In& in) { return in[0].gather(-1, g0); }, {randn_f64({2, 3}, 8)}));
  Tensor g3 = index_of({1, 1, 0, 2, 2, 2, 0, 1}, {2, 2, 2});
  ok(gradcheck([g3](const In& in) { return in[0].gather(1, g3); }, {randn_f64({3, 3, 2}, 9)}));

  ok(gradcheck([](const In& in) { return sorix::cat({in[0], in[1], in[2]}, 1); },
               {randn_f64({2, 3}, 10), randn_f64({2, 1}, 11), randn_f64({2, 2}, 12)}));
  ok(gradcheck([](const In& in) { return sorix::cat({in[0], in[1]}, -2); },
               {randn_f64({1, 3}, 13), randn_f64({2, 3}, 14, false)}));
  ok(gradcheck([](const In& in) { return sorix::stack({in[0], in[1]}, 0); }, {randn_f64({2, 3}, 15), randn_f64({2, 3}, 16)}));
  ok(gradcheck([](const In& in) { return sorix::stack({in[0], in[1]}, -1); }, {randn_f64({2, 3}, 17), randn_f64({2, 3}, 18)}));

  for (std::size_t p = 0; p < 3; ++p) {
    ok(gradcheck([p](const In& in) { return in[0].split(2, 1)[p]; }, {randn_f64({2, 5}, 19)}));
    ok(gradcheck([p](const In& in) { return in[0].chunk(3, -2)[p]; }, {randn_f64({7, 2}, 20)}));
  }
  // Two pieces used together: their gradients land in disjoint parts of x.
  ok(gradcheck([](const In& in) { auto c = in[0].chunk(2); return c[0] * c[1]; }, {randn_f64({4, 3}, 21)}));
}

TEST_CASE("indexing gradients are differentiable (second order)", "[index]") {
  Tensor rep = index_of({1, 1, 0, 2});
  second_order([](const Tensor& x) { return x.slice(1, -3, 7, 2); }, randn_f64({2, 5}, 31));
  second_order([rep](const Tensor& x) { return x.index_select(0, rep); }, randn_f64({3, 2}, 32));
  second_order([](const Tensor& x) { return x.gather(1, index_of({2, 2, 0, 1}, {2, 2})); }, randn_f64({2, 3}, 33));
}

// ---- determinism ------------------------------------------------------------------------------------

TEST_CASE("index_select and its gradient are bit-identical at 1, 2, 3 and 8 threads", "[index]") {
  // 30000 picks of only 50 distinct rows: each gradient row sums ~600 contributions.
  const std::int64_t rows = 2000, cols = 40, picks = 30000;
  std::vector<std::int64_t> idx(static_cast<std::size_t>(picks));
  for (std::int64_t k = 0; k < picks; ++k) idx[static_cast<std::size_t>(k)] = (k * k * 7 + 3) % 50 * 37 % rows;
  Tensor index = index_of(idx);
  Tensor x = randn_f64({rows, cols}, 51).to(sorix::float32).detach().requires_grad_();
  Tensor g = randn_f64({picks, cols}, 52, false).to(sorix::float32);
  auto runs = at_thread_counts({1, 2, 3, 8}, [&] {
    Tensor y = x.index_select(0, index);
    return std::vector<Tensor>{y, sorix::autograd::grad({y}, {x}, {g})[0]};
  });
  // Reference: the forward copies rows; the gradient adds g's rows in increasing k.
  std::vector<float> ref_y, ref_g(static_cast<std::size_t>(rows * cols), 0.f);
  const float* px = x.data_ptr<float>();
  const float* pg = g.data_ptr<float>();
  for (std::int64_t k = 0; k < picks; ++k) {
    const std::int64_t r = idx[static_cast<std::size_t>(k)];
    ref_y.insert(ref_y.end(), px + r * cols, px + (r + 1) * cols);
    for (std::int64_t c = 0; c < cols; ++c) ref_g[static_cast<std::size_t>(r * cols + c)] += pg[k * cols + c];
  }
  CHECK(values_of<float>(runs[0][0]) == ref_y);
  CHECK(values_of<float>(runs[0][1]) == ref_g);
  for (std::size_t i = 1; i < runs.size(); ++i) {
    CHECK(bit_identical(runs[0][0], runs[i][0]));
    CHECK(bit_identical(runs[0][1], runs[i][1]));
  }
  // Along the last dim, too (inner size 1).
  Tensor xt = x.detach().t().contiguous().requires_grad_();
  Tensor gt = g.t();
  auto runs_t = at_thread_counts({1, 2, 3, 8}, [&] {
    Tensor y = xt.index_select(1, index);
    return std::vector<Tensor>{y, sorix::autograd::grad({y}, {xt}, {gt})[0]};
  });
  CHECK(bit_identical(runs_t[0][0], runs[0][0].t()));
  CHECK(bit_identical(runs_t[0][1], runs[0][1].t()));
  for (std::size_t i = 1; i < runs_t.size(); ++i) {
    CHECK(bit_identical(runs_t[0][0], runs_t[i][0]));
    CHECK(bit_identical(runs_t[0][1], runs_t[i][1]));
  }
}

TEST_CASE("gather, slice and cat are bit-identical at 1, 2, 3 and 8 threads", "[index]") {
  const std::int64_t n = 300, m = 257;
  Tensor x = randn_f64({n, m}, 61).to(sorix::float32).detach().requires_grad_();
  // Many repeats along dim 0 so the scatter-add sums several contributions per element.
  std::vector<std::int64_t> iv(static_cast<std::size_t>(2 * n * m));
  for (std::size_t e = 0; e < iv.size(); ++e) iv[e] = static_cast<std::int64_t>((e * 2654435761u) % 7);
  Tensor index0 = index_of(iv, {2 * n, m});
  Tensor g0 = randn_f64({2 * n, m}, 62, false).to(sorix::float32);
  auto runs = at_thread_counts({1, 2, 3, 8}, [&] {
    Tensor y = x.gather(0, index0);
    Tensor gx = sorix::autograd::grad({y}, {x}, {g0})[0];
    Tensor s = x.slice(1, 3, m, 2);
    Tensor c = sorix::cat({x, s, x.slice(0, 0, n, 1)}, 1);
    return std::vector<Tensor>{y, gx, s, c};
  });
  // Reference gather and scatter-add (in increasing row of the index).
  std::vector<float> ref_y(iv.size()), ref_g(static_cast<std::size_t>(n * m), 0.f);
  for (std::size_t e = 0; e < iv.size(); ++e) {
    const std::size_t col = e % static_cast<std::size_t>(m), target = static_cast<std::size_t>(iv[e]) * static_cast<std::size_t>(m) + col;
    ref_y[e] = x.data_ptr<float>()[target];
    ref_g[target] += g0.data_ptr<float>()[e];
  }
  CHECK(values_of<float>(runs[0][0]) == ref_y);
  CHECK(values_of<float>(runs[0][1]) == ref_g);
  CHECK(runs[0][2].shape() == Shape{n, 127});
  CHECK(runs[0][3].shape() == Shape{n, 2 * m + 127});
  CHECK(runs[0][3].data_ptr<float>()[m + 1] == x.data_ptr<float>()[5]);  // s[0][1] = x[0][3 + 2]
  for (std::size_t i = 1; i < runs.size(); ++i) {
    for (std::size_t k = 0; k < runs[0].size(); ++k) CHECK(bit_identical(runs[0][k], runs[i][k]));
  }

  // 1-D: one long index into a short x (the forward splits the index into blocks).
  Tensor v = randn_f64({1000}, 63).to(sorix::float32).detach().requires_grad_();
  std::vector<std::int64_t> iv1(100000);
  for (std::size_t e = 0; e < iv1.size(); ++e) iv1[e] = static_cast<std::int64_t>((e * e + 11) % 1000);
  Tensor index1 = index_of(iv1);
  Tensor g1 = randn_f64({100000}, 64, false).to(sorix::float32);
  auto runs1 = at_thread_counts({1, 2, 3, 8}, [&] {
    Tensor y = v.gather(0, index1);
    return std::vector<Tensor>{y, sorix::autograd::grad({y}, {v}, {g1})[0]};
  });
  std::vector<float> ref_y1(iv1.size()), ref_g1(1000, 0.f);
  for (std::size_t e = 0; e < iv1.size(); ++e) {
    ref_y1[e] = v.data_ptr<float>()[iv1[e]];
    ref_g1[static_cast<std::size_t>(iv1[e])] += g1.data_ptr<float>()[e];
  }
  CHECK(values_of<float>(runs1[0][0]) == ref_y1);
  CHECK(values_of<float>(runs1[0][1]) == ref_g1);
  for (std::size_t i = 1; i < runs1.size(); ++i) {
    CHECK(bit_identical(runs1[0][0], runs1[i][0]));
    CHECK(bit_identical(runs1[0][1], runs1[i][1]));
  }
}
