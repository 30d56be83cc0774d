// Bad input at every entry point of the core module: each call raises a typed exception whose
// message names the function and the offending value or shape, and nothing is changed or
// allocated on the way. (Negative sizes, int64 requires_grad, the basic overflow cases and
// undefined tensors are covered beside their features in test_tensor.cpp.)
#include <sorix/sorix.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>

#include "tests/support/errors.hpp"
#include "tests/support/values.hpp"

using namespace sorix;
using sorix::testing::check_error;
using sorix::testing::values_of;

namespace {

constexpr std::int64_t kBig = std::int64_t{1} << 40;    // kBig * kBig overflows int64
constexpr std::int64_t kHuge = std::int64_t{1} << 61;   // past the 2^60 element limit on its own
const double kNan = std::nan(""), kInf = std::numeric_limits<double>::infinity();

}  // namespace

TEST_CASE("every factory refuses an element count that overflows, naming itself and the shape", "[bad_input]") {
  check_error<std::invalid_argument>([] { full({kBig, kBig}, 1.0); }, {"full", "[1099511627776, 1099511627776]", "overflows"});
  check_error<std::invalid_argument>([] { rand({kBig, kBig}); }, {"[1099511627776, 1099511627776]", "overflows"});
  check_error<std::invalid_argument>([] { randn({kHuge, 16}); }, {"2305843009213693952", "overflows"});
  check_error<std::invalid_argument>([] { randint(0, 5, {kBig, kBig}); }, {"overflows"});
  check_error<std::invalid_argument>([] { ones({(std::int64_t{1} << 62) + 1, 4}); }, {"ones", "overflows"});
  check_error<std::invalid_argument>([] { eye(kHuge, 1); }, {"2305843009213693952", "overflows"});
  // Counts computed from arguments: a count beyond int64 used to be converted without a check
  // (undefined behaviour) or allocated as a wrapped size.
  check_error<std::invalid_argument>([] { arange(0.0, 1e30); }, {"arange", "1e+30", "overflows"});
  check_error<std::invalid_argument>([] { arange(0.0, 1.0, 1e-300); }, {"arange", "overflows"});
  check_error<std::invalid_argument>([] { linspace(0, 1, kHuge); }, {"linspace", "2305843009213693952", "overflows"});
  check_error<std::invalid_argument>([] { randperm(kHuge); }, {"randperm", "2305843009213693952", "overflows"});
  // The generator is not advanced by a refused call.
  Generator g(5);
  const auto before = g.get_state();
  CHECK_THROWS_AS(randperm(kHuge, Dtype::Int64, &g), std::invalid_argument);
  CHECK_THROWS_AS(rand({kBig, kBig}, {}, &g), std::invalid_argument);
  CHECK(g.get_state().offset == before.offset);
}

TEST_CASE("reshape, view, expand and as_strided refuse overflowing or mismatched shapes", "[bad_input]") {
  const Tensor a = ones({2, 3});
  check_error<std::invalid_argument>([&] { a.reshape({kBig, kBig}); }, {"reshape", "[1099511627776, 1099511627776]", "size 6"});
  check_error<std::invalid_argument>([&] { a.view({kBig, kBig}); }, {"view", "[1099511627776, 1099511627776]"});
  check_error<std::invalid_argument>([&] { a.reshape({4, 2}); }, {"reshape", "[4, 2]", "[2, 3]"});
  check_error<std::invalid_argument>([&] { a.reshape({-1, -1}); }, {"reshape", "[-1, -1]"});
  check_error<std::invalid_argument>([&] { a.reshape({kHuge, 0, -1}); }, {"reshape"});
  check_error<std::invalid_argument>([&] { ones({1}).expand({kBig, kBig}); }, {"expand"});
  check_error<std::out_of_range>([&] { a.as_strided({kBig, kBig}, {1, 1}); }, {"as_strided", "storage of 6 elements"});
  check_error<std::out_of_range>([&] { a.as_strided({2, 3}, {100, 1}); }, {"as_strided", "[100, 1]"});
  // An empty tensor keeps its shape rules: -1 cannot be inferred next to a zero.
  check_error<std::invalid_argument>([] { zeros({0, 3}).reshape({0, -1}); }, {"reshape", "[0, -1]"});
  CHECK(values_of<float>(a) == std::vector<float>(6, 1.f));  // untouched
}

TEST_CASE("out-of-range dims and indices raise std::out_of_range naming the op and the value", "[bad_input]") {
  const Tensor a = arange(6.0).reshape({2, 3});
  check_error<std::out_of_range>([&] { a.sum({5}); }, {"sum", "dimension 5", "[-2, 1]"});
  check_error<std::out_of_range>([&] { a.mean({-3}); }, {"mean", "-3"});
  check_error<std::out_of_range>([&] { a.max(2); }, {"max", "2"});
  check_error<std::out_of_range>([&] { a.argmin(-4); }, {"argmin", "-4"});
  check_error<std::out_of_range>([&] { a.softmax(2); }, {"softmax", "dimension 2"});
  check_error<std::out_of_range>([&] { a.log_softmax(-3); }, {"log_softmax", "-3"});
  check_error<std::out_of_range>([&] { a.transpose(0, 5); }, {"transpose", "5"});
  check_error<std::out_of_range>([&] { a.squeeze(4); }, {"squeeze", "4"});
  check_error<std::out_of_range>([&] { a.unsqueeze(4); }, {"unsqueeze", "4"});
  check_error<std::out_of_range>([&] { a.select(0, 2); }, {"select", "index 2", "[-2, 2)"});
  check_error<std::out_of_range>([&] { a[-3]; }, {"select", "-3"});
  check_error<std::out_of_range>([&] { a.narrow(0, 1, 5); }, {"narrow", "5"});
  check_error<std::out_of_range>([&] { a.index_select(0, tensor({std::int64_t{5}})); }, {"index_select", "index 5"});
  check_error<std::out_of_range>([&] { a.gather(1, tensor({std::int64_t{9}}).reshape({1, 1})); }, {"gather", "index 9"});
  check_error<std::out_of_range>([&] { a.index({tensor({std::int64_t{7}})}); }, {"index", "index 7"});
  check_error<std::out_of_range>([&] { a.index({0, 0, 0}); }, {"index", "too many indices"});
  Tensor b = a.clone();
  check_error<std::out_of_range>([&] { b.index_put_({tensor({std::int64_t{-9}})}, 1.0); }, {"index_put_", "-9"});
  CHECK(values_of<float>(b) == values_of<float>(a));  // nothing written before the check
}

TEST_CASE("wrong dtypes name the op and the dtype", "[bad_input]") {
  const Tensor i = arange(6.0, Dtype::Int64).reshape({2, 3});
  // (sqrt, exp, ... of an integer tensor compute in float32, as PyTorch: tests/core/test_dtypes.cpp.)
  check_error<std::invalid_argument>([&] { i.mean(); }, {"mean", "int64"});
  check_error<std::invalid_argument>([&] { i.leaky_relu(); }, {"leaky_relu", "int64"});
  check_error<std::invalid_argument>([&] { i.softmax(0); }, {"softmax", "int64"});
  check_error<std::invalid_argument>([&] { i.matmul(i.t()); }, {"matmul", "int64"});
  check_error<std::invalid_argument>([&] { ones({2, 3}).index_select(0, tensor({1.0})); }, {"index_select", "float64"});
  check_error<std::invalid_argument>([&] { ones({2}).data<double>(); }, {"float64", "float32"});
  check_error<std::invalid_argument>([&] { ones({2}).item<float>(); }, {"item", "[2]"});
}

TEST_CASE("empty tensors: reductions without an identity refuse, the others give PyTorch's values", "[bad_input]") {
  const Tensor e = zeros({0, 3});
  check_error<std::invalid_argument>([&] { e.max(); }, {"max", "[0, 3]"});
  check_error<std::invalid_argument>([&] { e.min(); }, {"min", "[0, 3]"});
  check_error<std::invalid_argument>([&] { e.argmax(); }, {"argmax", "[0, 3]"});
  check_error<std::invalid_argument>([&] { e.max(0); }, {"max", "empty dim 0"});
  check_error<std::invalid_argument>([&] { e.argmin(0); }, {"argmin", "empty dim 0"});
  CHECK(e.sum().item<float>() == 0.f);
  CHECK(std::isnan(e.mean().item<float>()));
  CHECK(std::get<0>(e.max(1)).shape() == Shape{0});  // reducing a non-empty dim of an empty tensor is fine
  CHECK(e.reshape({-1}).shape() == Shape{0});
  check_error<std::invalid_argument>([] { cat({}, 0); }, {"cat", "non-empty"});
}

TEST_CASE("NaN, infinite and out-of-range parameters of random and elementwise ops", "[bad_input]") {
  Tensor a = zeros({4});
  check_error<std::invalid_argument>([&] { a.uniform_(1.0, 0.0); }, {"uniform_", "from=1", "to=0"});
  check_error<std::invalid_argument>([&] { a.uniform_(0.0, kInf); }, {"uniform_", "inf"});
  check_error<std::invalid_argument>([&] { a.normal_(kNan, 1.0); }, {"normal_", "nan"});
  check_error<std::invalid_argument>([&] { a.normal_(0.0, -1.0); }, {"normal_", "std=-1"});
  check_error<std::invalid_argument>([&] { a.bernoulli_(1.5); }, {"bernoulli_", "1.5"});
  check_error<std::invalid_argument>([&] { a.bernoulli_(kNan); }, {"bernoulli_", "nan"});
  check_error<std::invalid_argument>([&] { bernoulli(a, -0.5); }, {"bernoulli", "-0.5"});
  check_error<std::invalid_argument>([] { randint(5, 5, {2}); }, {"randint", "low=5", "high=5"});
  check_error<std::invalid_argument>([] { arange(0.0, kNan); }, {"arange", "nan"});
  check_error<std::invalid_argument>([] { arange(0.0, 1.0, 0.0); }, {"arange", "step", "0"});
  check_error<std::invalid_argument>([&] { a.clamp(2.0, 1.0); }, {"clamp", "2", "1"});
  check_error<std::invalid_argument>([&] { a.clamp(kNan, 1.0); }, {"clamp", "nan"});
  check_error<std::invalid_argument>([&] { a.leaky_relu(kNan); }, {"leaky_relu", "nan"});
  CHECK(values_of<float>(a) == std::vector<float>(4, 0.f));  // every refused call left it alone
}

TEST_CASE("shape mismatches in binary ops name both shapes", "[bad_input]") {
  const Tensor a = ones({2, 3});
  check_error<std::invalid_argument>([&] { (void)(a + ones({4})); }, {"add", "[2, 3]", "[4]"});
  check_error<std::invalid_argument>([&] { a.matmul(ones({4, 2})); }, {"matmul", "[2, 3]", "[4, 2]"});
  check_error<std::invalid_argument>([&] { a.matmul(zeros({})); }, {"matmul", "[]"});
  check_error<std::invalid_argument>([&] { cat({a, ones({2, 4})}, 0); }, {"cat", "[2, 4]"});
  check_error<std::invalid_argument>([&] { stack({a, ones({3, 2})}, 0); }, {"stack", "[3, 2]"});
  check_error<std::invalid_argument>([&] { where(ones({2}, kBool), ones({3}), ones({2})); }, {"where", "[3]", "[2]"});
  check_error<std::invalid_argument>([&] { a.masked_fill(ones({4}, kBool), 1.0); }, {"[4]", "[2, 3]"});
}
