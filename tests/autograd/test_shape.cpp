// flatten, squeeze, unsqueeze, transpose, t, permute: values against a plain index-by-index
// reference, float64 gradchecks, error messages, and bit-identical results at 1, 2, 3, 8 threads.
#include <catch2/catch.hpp>

#include <algorithm>
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

namespace {

// Reference permutation, one element at a time: out[m] = x[m'] with m'[perm[i]] = m[i].
template <class T>
std::vector<T> ref_permute(const std::vector<T>& x, const Shape& xs, const std::vector<std::int64_t>& perm) {
  const std::size_t nd = xs.size();
  std::vector<std::int64_t> stride(nd, 1);
  for (std::size_t d = nd; d-- > 1;) stride[d - 1] = stride[d] * xs[d];
  std::vector<T> out(x.size());
  for (std::size_t flat = 0; flat < out.size(); ++flat) {
    std::int64_t rest = static_cast<std::int64_t>(flat), src = 0;
    for (std::size_t i = nd; i-- > 0;) {
      const std::size_t from = static_cast<std::size_t>(perm[i] < 0 ? perm[i] + static_cast<std::int64_t>(nd) : perm[i]);
      src += (rest % xs[from]) * stride[from];
      rest /= xs[from];
    }
    out[flat] = x[static_cast<std::size_t>(src)];
  }
  return out;
}

Shape permuted(const Shape& s, const std::vector<std::int64_t>& perm) {
  Shape out;
  for (std::int64_t p : perm) out.push_back(s[static_cast<std::size_t>(p < 0 ? p + static_cast<std::int64_t>(s.size()) : p)]);
  return out;
}

void check_permute(const Shape& xs, const std::vector<std::int64_t>& perm, sorix::Dtype dt = sorix::float32) {
  INFO("shape " << sorix::shape_string(xs) << " perm " << sorix::shape_string(perm));
  Tensor x = iota(xs, dt);
  Tensor y = sorix::permute(x, perm);
  REQUIRE(y.shape() == permuted(xs, perm));
  REQUIRE(y.dtype() == dt);
  if (dt == sorix::int64) {
    CHECK(values_of<std::int64_t>(y) == ref_permute(values_of<std::int64_t>(x), xs, perm));
  } else if (dt == sorix::float64) {
    CHECK(values_of<double>(y) == ref_permute(values_of<double>(x), xs, perm));
  } else {
    CHECK(values_of<float>(y) == ref_permute(values_of<float>(x), xs, perm));
  }
}

}  // namespace

TEST_CASE("transpose and t match the reference", "[shape]") {
  // Sizes that are not multiples of the 32-wide tiles, a single row/column, and 3-D.
  for (const Shape& s : {Shape{3, 5}, Shape{37, 45}, Shape{1, 70}, Shape{70, 1}, Shape{64, 32}}) {
    Tensor x = iota(s);
    Tensor y = x.transpose(0, 1);
    REQUIRE(y.shape() == Shape{s[1], s[0]});
    for (std::int64_t i = 0; i < s[0]; ++i) {
      for (std::int64_t j = 0; j < s[1]; ++j) {
        REQUIRE(y.contiguous().data_ptr<float>()[j * s[0] + i] == x.data_ptr<float>()[i * s[1] + j]);
      }
    }
    CHECK(bit_identical(x.t(), y));
    CHECK(bit_identical(sorix::transpose(x, -1, -2), y));
  }
  Tensor x3 = iota({4, 6, 5});
  Tensor y3 = x3.transpose(-3, 2);
  REQUIRE(y3.shape() == Shape{5, 6, 4});
  CHECK(values_of<float>(y3) == ref_permute(values_of<float>(x3), {4, 6, 5}, {2, 1, 0}));
  CHECK(bit_identical(x3.transpose(1, 1), x3));
  // t() of 0-D and 1-D tensors is the tensor itself (a copy).
  Tensor v = sorix::tensor({1.f, 2.f, 3.f});
  CHECK(bit_identical(v.t(), v));
  CHECK_FALSE(v.t().is_same(v));
  Tensor s0 = sorix::full({}, 4.0);
  CHECK(bit_identical(s0.t(), s0));
}

TEST_CASE("permute matches the reference for every permutation", "[shape]") {
  // Every permutation of a 4-D shape with and without size-1 dims (which the kernel drops) and
  // with dims that merge; negative dims as well.
  for (const Shape& s : {Shape{2, 3, 4, 5}, Shape{3, 1, 4, 1}, Shape{33, 2, 35, 3}}) {
    std::vector<std::int64_t> perm{0, 1, 2, 3};
    do {
      check_permute(s, perm);
      std::vector<std::int64_t> neg = perm;
      for (auto& p : neg) p -= 4;
      check_permute(s, neg);
    } while (std::next_permutation(perm.begin(), perm.end()));
  }
  check_permute({5, 7, 3}, {2, 0, 1}, sorix::int64);
  check_permute({5, 7, 3}, {1, 2, 0}, sorix::float64);
  check_permute({}, {});
  check_permute({6}, {0});
  // Empty tensors keep their permuted shape.
  Tensor e = sorix::zeros({0, 3, 2});
  CHECK(e.permute({2, 0, 1}).shape() == Shape{2, 0, 3});
}

TEST_CASE("permute and transpose reject bad dims naming the op and shape", "[shape]") {
  Tensor x = sorix::zeros({2, 3, 4});
  CHECK_THROWS_AS(x.permute({0, 1}), std::invalid_argument);
  CHECK_THROWS_WITH(x.permute({0, 1}), Contains("permute") && Contains("[2, 3, 4]"));
  CHECK_THROWS_AS(x.permute({0, 1, 1}), std::invalid_argument);
  CHECK_THROWS_WITH(x.permute({0, 1, 1}), Contains("permute") && Contains("not a permutation"));
  CHECK_THROWS_AS(x.permute({0, 2, -1}), std::invalid_argument);  // -1 is dim 2 again
  CHECK_THROWS_AS(x.permute({0, 1, 3}), std::out_of_range);
  CHECK_THROWS_WITH(x.permute({0, 1, 3}), Contains("permute") && Contains("3"));
  CHECK_THROWS_AS(x.transpose(0, 3), std::out_of_range);
  CHECK_THROWS_WITH(x.transpose(-4, 0), Contains("transpose") && Contains("-4"));
  CHECK_THROWS_AS(x.t(), std::invalid_argument);
  CHECK_THROWS_WITH(x.t(), Contains("t: ") && Contains("[2, 3, 4]"));
  CHECK_THROWS_AS(sorix::permute(Tensor(), {0}), std::invalid_argument);
}

TEST_CASE("flatten, squeeze and unsqueeze give the right shapes and keep the data", "[shape]") {
  Tensor x = iota({2, 3, 4, 5});
  const std::vector<float> flat = values_of<float>(x);
  auto same_data = [&](const Tensor& y) { return values_of<float>(y) == flat; };

  CHECK(x.flatten().shape() == Shape{120});
  CHECK(x.flatten(1, 2).shape() == Shape{2, 12, 5});
  CHECK(x.flatten(-2).shape() == Shape{2, 3, 20});
  CHECK(x.flatten(2, 2).shape() == Shape{2, 3, 4, 5});
  CHECK(same_data(x.flatten(1, -2)));
  CHECK(sorix::full({}, 1.0).flatten().shape() == Shape{1});
  CHECK_THROWS_AS(x.flatten(2, 1), std::invalid_argument);
  CHECK_THROWS_WITH(x.flatten(2, 1), Contains("flatten") && Contains("[2, 3, 4, 5]"));
  CHECK_THROWS_AS(x.flatten(0, 4), std::out_of_range);

  Tensor s = iota({1, 3, 1, 2});
  CHECK(s.squeeze().shape() == Shape{3, 2});
  CHECK(s.squeeze(0).shape() == Shape{3, 1, 2});
  CHECK(s.squeeze(-2).shape() == Shape{1, 3, 2});
  CHECK(s.squeeze(1).shape() == Shape{1, 3, 1, 2});  // not size 1: no-op, as PyTorch
  CHECK_FALSE(s.squeeze(1).is_same(s));
  CHECK(sorix::ones({1, 1}).squeeze().shape() == Shape{});
  CHECK(sorix::full({}, 2.0).squeeze(0).shape() == Shape{});
  CHECK_THROWS_AS(s.squeeze(4), std::out_of_range);
  CHECK_THROWS_WITH(s.squeeze(-5), Contains("squeeze"));

  Tensor u = iota({3, 2});
  CHECK(u.unsqueeze(0).shape() == Shape{1, 3, 2});
  CHECK(u.unsqueeze(1).shape() == Shape{3, 1, 2});
  CHECK(u.unsqueeze(2).shape() == Shape{3, 2, 1});
  CHECK(u.unsqueeze(-1).shape() == Shape{3, 2, 1});
  CHECK(u.unsqueeze(-3).shape() == Shape{1, 3, 2});
  CHECK(sorix::full({}, 2.0).unsqueeze(0).shape() == Shape{1});
  CHECK(same_data(x.unsqueeze(2).squeeze(2)));
  CHECK_THROWS_AS(u.unsqueeze(3), std::out_of_range);
  CHECK_THROWS_AS(u.unsqueeze(-4), std::out_of_range);
  CHECK_THROWS_WITH(u.unsqueeze(3), Contains("unsqueeze") && Contains("3"));
}

TEST_CASE("shape ops pass float64 gradchecks", "[shape]") {
  using In = std::vector<Tensor>;
  auto ok = [](const sorix::testing::GradcheckResult& r) {
    INFO(r.message);
    CHECK(r.ok);
  };
  ok(gradcheck([](const In& in) { return in[0].transpose(0, 1); }, {randn_f64({3, 4}, 1)}));
  ok(gradcheck([](const In& in) { return in[0].transpose(-1, -3); }, {randn_f64({2, 3, 4}, 2)}));
  ok(gradcheck([](const In& in) { return in[0].t(); }, {randn_f64({5, 2}, 3)}));
  ok(gradcheck([](const In& in) { return in[0].t(); }, {randn_f64({4}, 3)}));
  ok(gradcheck([](const In& in) { return in[0].permute({2, 0, 1}); }, {randn_f64({2, 3, 4}, 4)}));
  ok(gradcheck([](const In& in) { return in[0].permute({-1, 1, -4, 2}); }, {randn_f64({2, 3, 1, 4}, 5)}));
  ok(gradcheck([](const In& in) { return in[0].flatten(1); }, {randn_f64({2, 3, 4}, 6)}));
  ok(gradcheck([](const In& in) { return in[0].flatten(-3, -2); }, {randn_f64({2, 3, 4}, 7)}));
  ok(gradcheck([](const In& in) { return in[0].squeeze(); }, {randn_f64({1, 3, 1}, 8)}));
  ok(gradcheck([](const In& in) { return in[0].squeeze(-1); }, {randn_f64({3, 1}, 9)}));
  ok(gradcheck([](const In& in) { return in[0].unsqueeze(-2); }, {randn_f64({3, 2}, 10)}));
  // Chained, so the gradient of a permute feeds another's.
  ok(gradcheck([](const In& in) { return in[0].transpose(0, 2).permute({1, 2, 0}) * in[1]; },
               {randn_f64({2, 3, 4}, 11), randn_f64({3, 2, 4}, 12)}));
}

TEST_CASE("permute's gradient is differentiable (second order)", "[shape]") {
  // f(x) = d/dx sum(permute(x)^2 * w) = 2 x * permute^-1(w): itself a function of x through the
  // recorded gradient graph.
  Tensor w = randn_f64({4, 2, 3}, 13, false);
  auto f = [w](const std::vector<Tensor>& in) {
    sorix::AutoGradMode grad_on(true);  // gradcheck evaluates f under NoGradGuard too
    Tensor y = in[0].permute({2, 0, 1});
    return sorix::autograd::grad({(y * y * w).sum()}, {in[0]}, {}, /*create_graph=*/true)[0];
  };
  auto r = gradcheck(f, {randn_f64({2, 3, 4}, 14)});
  INFO(r.message);
  CHECK(r.ok);
}

TEST_CASE("transpose and permute are bit-identical at 1, 2, 3 and 8 threads", "[shape]") {
  Tensor x = iota({1000, 777});
  Tensor xr = sorix::testing::randn_f64({1000, 777}, 21, true);
  const auto ref = ref_permute(values_of<float>(x), {1000, 777}, {1, 0});
  auto runs = at_thread_counts({1, 2, 3, 8}, [&] {
    Tensor y = x.transpose(0, 1);
    Tensor yr = xr.transpose(1, 0);
    Tensor g = randn_f64({777, 1000}, 22, false);
    Tensor grad = sorix::autograd::grad({yr}, {xr}, {g})[0];
    return std::vector<Tensor>{y, yr, grad, g};
  });
  CHECK(values_of<float>(runs[0][0]) == ref);
  // The gradient of a transpose is the transposed incoming gradient.
  CHECK(bit_identical(runs[0][2], runs[0][3].t()));
  for (std::size_t i = 1; i < runs.size(); ++i) {
    for (std::size_t k = 0; k < 3; ++k) CHECK(bit_identical(runs[0][k], runs[i][k]));
  }

  const Shape s{8, 33, 65, 17};  // 291720 elements, odd sizes
  Tensor x4 = iota(s);
  for (const std::vector<std::int64_t>& perm : {std::vector<std::int64_t>{3, 1, 0, 2}, {0, 2, 1, 3}, {0, 3, 1, 2}}) {
    auto outs = at_thread_counts({1, 2, 3, 8}, [&] { return x4.permute(perm); });
    CHECK(values_of<float>(outs[0]) == ref_permute(values_of<float>(x4), s, perm));
    for (std::size_t i = 1; i < outs.size(); ++i) CHECK(bit_identical(outs[0], outs[i]));
  }
  // A long, thin transpose: the output rows span many chunks.
  Tensor thin = iota({40000, 2});
  auto outs = at_thread_counts({1, 2, 3, 8}, [&] { return thin.t(); });
  CHECK(values_of<float>(outs[0]) == ref_permute(values_of<float>(thin), {40000, 2}, {1, 0}));
  for (std::size_t i = 1; i < outs.size(); ++i) CHECK(bit_identical(outs[0], outs[i]));
}

TEST_CASE("shape ops record no graph under NoGradGuard", "[shape]") {
  Tensor x = randn_f64({2, 3}, 30);
  {
    sorix::NoGradGuard guard;
    CHECK_FALSE(x.t().requires_grad());
    CHECK_FALSE(x.unsqueeze(0).requires_grad());
  }
  CHECK(x.t().requires_grad());
  CHECK(x.permute({1, 0}).grad_fn() != nullptr);
}
