// detect_anomaly: backward stops at the first op whose gradient holds NaN or Inf, naming it.
#include <catch2/catch.hpp>
#include <cmath>
#include <sorix/sorix.hpp>
#include <stdexcept>
#include <string>

using sorix::Tensor;

namespace {
// The message backward throws, or "" when it does not throw.
std::string backward_error(const Tensor& root) {
  try {
    root.backward();
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("detect_anomaly names the first op whose gradient holds NaN or Inf", "[engine][anomaly]") {
  REQUIRE_FALSE(sorix::autograd::anomaly_enabled());
  SECTION("off: the non-finite gradient simply arrives") {
    Tensor x = sorix::tensor({1.0f, 0.0f, 4.0f}, /*requires_grad=*/true);
    sorix::log(x).sum().backward();
    CHECK(std::isinf(x.grad().data<float>()(1)));
  }
  SECTION("on: log's gradient 1/x at 0 is inf") {
    sorix::autograd::DetectAnomalyGuard guard;
    Tensor x = sorix::tensor({1.0f, 0.0f, 4.0f}, /*requires_grad=*/true);
    const std::string msg = backward_error((sorix::log(x) * 2.0f).sum());
    CHECK(msg.find("'LogBackward'") != std::string::npos);
    CHECK(msg.find("inf") != std::string::npos);
    CHECK(msg.find("detect_anomaly") != std::string::npos);
    CHECK_FALSE(x.grad().defined());  // stopped before the leaf
  }
  SECTION("on: sqrt of a negative value gives a NaN gradient") {
    sorix::autograd::DetectAnomalyGuard guard;
    Tensor x = sorix::tensor({4.0, -1.0}, /*requires_grad=*/true);
    const std::string msg = backward_error(sorix::sqrt(x).sum());
    CHECK(msg.find("'SqrtBackward'") != std::string::npos);
    CHECK(msg.find("nan") != std::string::npos);
  }
  SECTION("on: a finite graph runs as before") {
    sorix::autograd::DetectAnomalyGuard guard;
    Tensor x = sorix::tensor({1.0f, 2.0f}, /*requires_grad=*/true);
    CHECK(backward_error((x * x).sum()).empty());
    CHECK(x.grad().data<float>()(1) == 4.0f);
  }
  CHECK_FALSE(sorix::autograd::anomaly_enabled());  // each guard restored the setting
}
