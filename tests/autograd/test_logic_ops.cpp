// Issue 12's ops without gradients: all, any, allclose, equal, one_hot (autograd/src/reduce_stats.cpp,
// autograd/src/misc_ops.cpp): exact values against PyTorch 1.13's documented semantics (NaN,
// infinities, empty tensors), thread invariance and errors.
#include <sorix/sorix.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include "tests/support/errors.hpp"
#include "tests/support/gradcheck.hpp"
#include "tests/support/values.hpp"

using namespace sorix;
using testing::as_doubles;
using testing::bit_identical;
using testing::contains;
using testing::message_of;

namespace {
constexpr double kInf = std::numeric_limits<double>::infinity();
const double kNaN = std::numeric_limits<double>::quiet_NaN();
}  // namespace

TEST_CASE("all and any: over everything and along dims, NaN nonzero, empty reductions", "[autograd][ops12]") {
  Tensor x = tensor({{1.0, 0.0, 2.0}, {3.0, kNaN, -1.0}});
  CHECK(all(x).item<double>() == 0.0);
  CHECK(any(x).item<double>() == 1.0);
  CHECK(as_doubles(all(x, {0})) == std::vector<double>{1, 0, 1});
  CHECK(as_doubles(all(x, {1})) == std::vector<double>{0, 1});
  CHECK(as_doubles(any(zeros({2, 3}), {1}, true)) == std::vector<double>{0, 0});
  CHECK(any(zeros({2, 3}), {1}, true).shape() == Shape{2, 1});
  CHECK(all(x).dtype() == Dtype::Bool);  // bool, as PyTorch
  CHECK(all(tensor({1, 2, 0}), {0}).dtype() == Dtype::Bool);
  CHECK(all(tensor({1, 2, 3})).item<bool>());
  CHECK(all(zeros({0})).item<double>() == 1.0);  // all of nothing
  CHECK(any(zeros({0})).item<double>() == 0.0);
  CHECK(as_doubles(all(zeros({2, 0}), {1})) == std::vector<double>{1, 1});
  CHECK_THROWS_AS(all(x, {2}), std::out_of_range);
  // Thread invariance on a large input (a count, exact).
  Tensor big = (arange(200000.0) - 150000.0).reshape({400, 500});
  auto runs = testing::at_thread_counts({1, 2, 3}, [&] { return std::vector<Tensor>{all(big), any(big, {1}), all(big, {0})}; });
  for (std::size_t k = 0; k < 3; ++k) {
    CHECK(bit_identical(runs[0][k], runs[1][k]));
    CHECK(bit_identical(runs[0][k], runs[2][k]));
  }
  CHECK(all(big).item<float>() == 0.0f);
}

TEST_CASE("allclose and equal follow PyTorch: tolerances, infinities, NaN, broadcasting, shapes", "[autograd][ops12]") {
  Tensor a = tensor({1.0, 2.0, kInf, -kInf});
  CHECK(allclose(a, a));
  CHECK(allclose(a, tensor({1.0 + 1e-6, 2.0, kInf, -kInf})));
  CHECK_FALSE(allclose(a, tensor({1.0 + 1e-3, 2.0, kInf, -kInf})));
  CHECK(allclose(a, tensor({1.0 + 1e-3, 2.0, kInf, -kInf}), 1e-2));
  CHECK_FALSE(allclose(tensor({1e300}), tensor({kInf}), 1.0, 1.0));  // inf only equals inf
  CHECK_FALSE(allclose(tensor({kInf}), tensor({-kInf})));
  CHECK_FALSE(allclose(tensor({kNaN}), tensor({kNaN})));
  CHECK(allclose(tensor({kNaN, 1.0}), tensor({kNaN, 1.0}), 1e-5, 1e-8, true));
  CHECK(allclose(tensor({{1.0, 1.0}, {1.0, 1.0}}), tensor({1.0f})));  // broadcast, mixed dtypes
  CHECK(allclose(tensor({1e-9}), tensor({0.0})));                    // within atol
  CHECK_FALSE(allclose(tensor({1e-7}), tensor({0.0})));
  CHECK(contains(message_of([&] { allclose(a, a, -1.0); }), "allclose: rtol and atol must be >= 0"));
  CHECK_THROWS(allclose(zeros({2}), zeros({3})));
  CHECK(equal(tensor({1, 2, 3}), tensor({1, 2, 3})));
  CHECK_FALSE(equal(tensor({1, 2, 3}), tensor({1, 2, 4})));
  CHECK_FALSE(equal(zeros({2, 3}), zeros({3, 2})));
  CHECK_FALSE(equal(zeros({1, 3}), zeros({3})));  // no broadcasting
  CHECK_FALSE(equal(tensor({kNaN}), tensor({kNaN})));
  CHECK(equal(zeros({0}), zeros({0})));
}

TEST_CASE("one_hot: int64 [*, C], num_classes inferred, range errors name the index", "[autograd][ops12]") {
  Tensor oh = one_hot(tensor({2, 0, 1}));
  CHECK(oh.dtype() == Dtype::Int64);
  CHECK(oh.shape() == Shape{3, 3});
  CHECK(as_doubles(oh) == std::vector<double>{0, 0, 1, 1, 0, 0, 0, 1, 0});
  Tensor oh2 = one_hot(tensor({{1, 3}}), 5);
  CHECK(oh2.shape() == Shape{1, 2, 5});
  CHECK(as_doubles(oh2) == std::vector<double>{0, 1, 0, 0, 0, 0, 0, 0, 1, 0});
  CHECK(one_hot(zeros({0}, Dtype::Int64), 4).shape() == Shape{0, 4});
  CHECK(one_hot(tensor(std::vector<double>{1}, {}, Dtype::Int64), 3).shape() == Shape{3});
  CHECK(contains(message_of([] { one_hot(tensor({0, 5, 1}), 4); }),
                 "one_hot: index 5 at position 1 is out of range for num_classes 4"));
  CHECK(contains(message_of([] { one_hot(tensor({0, -1})); }), "index -1"));
  CHECK(contains(message_of([] { one_hot(tensor({0.0, 1.0})); }), "one_hot: expected an int64 index tensor, got float64"));
  CHECK(contains(message_of([] { one_hot(zeros({0}, Dtype::Int64)); }), "cannot infer num_classes from an empty"));
  CHECK(contains(message_of([] { one_hot(tensor({0}), -3); }), "num_classes must be -1 (inferred) or >= 0, got -3"));
  // Large: the same bits at any thread count.
  manual_seed(2);
  Tensor idx = randint(0, 13, {100000});
  auto runs = testing::at_thread_counts({1, 2, 3}, [&] { return one_hot(idx, 13); });
  CHECK(bit_identical(runs[0], runs[1]));
  CHECK(bit_identical(runs[0], runs[2]));
  CHECK(equal(runs[0].sum({1}), ones({100000}, Dtype::Int64)));
  CHECK(equal(argmax(runs[0], 1), idx));
}
