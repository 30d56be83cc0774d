// A Sequential's BatchNorm2d stage followed by exactly ReLU and a 2 x 2, stride-2 MaxPool2d runs as
// one fused op (BatchNormNd::forward_relu_pool): the same bits as the three modules run one after
// the other, forward, backward (the pool's winners kept as codes, relu's factor with them),
// running statistics and create_graph, on ties, signed zeros, infinities and NaN.
#include <catch2/catch.hpp>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <sorix/autograd/node.hpp>
#include <sorix/sorix.hpp>

#include "support/batchnorm_fusion.hpp"
#include "support/gradcheck.hpp"

using sorix::Shape;
using sorix::Tensor;
namespace nn = sorix::nn;
using sorix::testing::randn_f64;

namespace {

bool same_bits(const Tensor& a, const Tensor& b) { return sorix::testing::bit_identical(a, b); }

// The same bits, except that a NaN matches any NaN: where two NaNs of opposite signs meet in a sum,
// which one an add keeps is the compiler's choice of operand order (IEEE leaves it open).
bool same_bits_any_nan(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape() || a.dtype() != b.dtype()) return false;
  const Tensor x = a.to(sorix::float64), y = b.to(sorix::float64);
  for (std::int64_t i = 0; i < x.numel(); ++i) {
    const double u = x.data_ptr<double>()[i], v = y.data_ptr<double>()[i];  // widening keeps every non-NaN's bits apart
    if (std::isnan(u) || std::isnan(v) ? !(std::isnan(u) && std::isnan(v))
                                       : std::bit_cast<std::uint64_t>(u) != std::bit_cast<std::uint64_t>(v))
      return false;
  }
  return true;
}

constexpr const char* kFused = "BatchNormReluMaxPoolBackward";

using sorix::testing::grad_fn_name;
using sorix::testing::make_bn;

nn::MaxPool2d pool2() { return nn::MaxPool2d(nn::MaxPool2dOptions(2)); }

Tensor unfused(nn::Module& bn, const Tensor& x) {
  return nn::functional::max_pool2d(sorix::relu(bn.forward(x)), nn::functional::MaxPool2dFuncOptions(2));
}

// Inputs rounded to halves: many windows hold equal maxima (ties), and relu's zeros tie too.
Tensor input(const Shape& shape, int seed, sorix::Dtype dtype) {
  return ((randn_f64(shape, seed, false) * 4.0).round() * 0.5).to(dtype);
}

// seq = Sequential(bn, ReLU, MaxPool2d(2)) against bn2, relu and max_pool2d on a copy.
template <class BN>
void check_fused(const Shape& shape, sorix::Dtype dtype, bool affine) {
  auto bn = make_bn<BN>(shape[1], affine, dtype);
  auto bn2 = make_bn<BN>(shape[1], affine, dtype);
  nn::Sequential seq(bn, nn::ReLU(), pool2());
  const Shape pooled{shape[0], shape[1], shape[2] / 2, shape[3] / 2};
  sorix::testing::check_fused_against_apart(
      seq, *bn, *bn2, [&](const Tensor& x2) { return unfused(*bn2, x2); },
      [&](int seed) { return input(shape, seed, dtype); }, pooled, dtype, affine, kFused);
}

}  // namespace

TEST_CASE("Sequential runs BatchNorm + ReLU + MaxPool2d(2) fused, in the bits of the three modules", "[nn][batchnorm]") {
  for (auto dtype : {sorix::float32, sorix::float64}) {
    for (bool affine : {true, false}) {
      INFO(sorix::dtype_name(dtype) << (affine ? " affine" : " no affine"));
      check_fused<nn::BatchNorm2d>({5, 19, 6, 8}, dtype, affine);   // 16 + 3 channels: lane blocks and rest
      check_fused<nn::BatchNorm2d>({4, 3, 7, 9}, dtype, affine);    // odd sides: a last row and column unpooled
      check_fused<nn::BatchNorm2d>({3, 2, 2, 2}, dtype, affine);    // one window per plane
      check_fused<nn::BatchNorm2d>({2, 8, 5, 37}, dtype, affine);   // rows wider than a register's windows
      check_fused<nn::BatchNorm2d>({3, 4, 28, 28}, dtype, affine);  // the CNN's first block's planes
      check_fused<nn::SyncBatchNorm>({4, 3, 6, 5}, dtype, affine);
    }
  }
}

TEST_CASE("BatchNorm + ReLU + MaxPool2d fused on signed zeros, infinities and NaN", "[nn][batchnorm]") {
  for (auto dtype : {sorix::float32, sorix::float64}) {
    INFO(sorix::dtype_name(dtype));
    const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
    // eval with running mean 0, var 1 and weight 1, bias 0: y is x (up to eps), so the planes
    // reach relu and the pool with the values below.
    auto bn = std::make_shared<nn::BatchNorm2d>(nn::BatchNormOptions(2).eps(0.0), dtype);
    auto bn2 = std::make_shared<nn::BatchNorm2d>(nn::BatchNormOptions(2).eps(0.0), dtype);
    nn::Sequential seq(bn, nn::ReLU(), pool2());
    seq.eval();
    bn2->eval();
    const std::vector<double> vals = {-0.0, 0.0, -1.0, 2.0, inf, -inf, nan, 2.0, 0.0, -0.0, 3.0, 3.0, nan, 1.0,
                                      -2.0, -3.0, 5.0, nan, -0.0, -0.0, 1.0, -inf, inf, inf};
    std::vector<double> xs;
    for (std::size_t i = 0; i < 2 * 2 * 5 * 6; ++i) xs.push_back(vals[(i * 7) % vals.size()]);
    Tensor x = sorix::tensor(xs, {2, 2, 5, 6}, dtype).requires_grad_();
    Tensor x2 = x.detach().clone().requires_grad_();
    Tensor out = seq(x), out2 = unfused(*bn2, x2);
    CHECK(grad_fn_name(out) == kFused);
    CHECK(same_bits(out, out2));
    // the pooled gradient holds signed zeros, infinities and NaN too
    const std::vector<double> gv = {1.5, -0.0, inf, nan, -2.0, 0.0, -inf, 0.25};
    std::vector<double> gs;
    for (std::size_t i = 0; i < 2 * 2 * 2 * 3; ++i) gs.push_back(gv[(i * 3) % gv.size()]);
    const Tensor g = sorix::tensor(gs, {2, 2, 2, 3}, dtype);
    out.backward(g);
    out2.backward(g);
    CHECK(same_bits(x.grad(), x2.grad()));
    CHECK(same_bits_any_nan(bn->weight.grad(), bn2->weight.grad()));
    CHECK(same_bits_any_nan(bn->bias.grad(), bn2->bias.grad()));
  }
}

TEST_CASE("BatchNorm + ReLU + MaxPool2d fused: gradients under create_graph are the composite's", "[nn][batchnorm]") {
  for (auto dtype : {sorix::float32, sorix::float64}) {
    for (bool change_output : {false, true}) {
      INFO(sorix::dtype_name(dtype) << (change_output ? ", output changed in place" : ""));
      auto bn = make_bn<nn::BatchNorm2d>(3, true, dtype);
      auto bn2 = make_bn<nn::BatchNorm2d>(3, true, dtype);
      nn::Sequential seq(bn, nn::ReLU(), pool2());
      Tensor x = input({4, 3, 5, 6}, 31, dtype).requires_grad_();
      Tensor x2 = x.detach().clone().requires_grad_();
      Tensor out = seq(x), out2 = unfused(*bn2, x2);
      CHECK(grad_fn_name(out) == kFused);
      if (change_output) {  // the fused op keeps no output: its winners are codes, its mask comes from x
        out.mul_(3.0);
        out2.mul_(3.0);
      }
      const Tensor gx = sorix::autograd::grad({(out * out).sum()}, {x}, {}, true)[0];
      const Tensor gx2 = sorix::autograd::grad({(out2 * out2).sum()}, {x2}, {}, true)[0];
      CHECK(same_bits(gx, gx2));
      // The second derivatives are the same terms; the order in which the engine adds the paths
      // into x.grad follows the graph's shape (one node here, three there): equal to rounding.
      (gx * gx).sum().backward();
      (gx2 * gx2).sum().backward();
      CHECK(sorix::allclose(x.grad(), x2.grad(), dtype == sorix::float64 ? 1e-12 : 1e-5, 1e-12));
      CHECK(sorix::allclose(bn->weight.grad(), bn2->weight.grad(), dtype == sorix::float64 ? 1e-12 : 1e-5, 1e-12));
    }
  }
}

TEST_CASE("BatchNorm + ReLU + MaxPool2d fused: float64 gradcheck", "[nn][batchnorm]") {
  auto bn = make_bn<nn::BatchNorm2d>(2, true, sorix::float64);
  nn::Sequential seq(bn, nn::ReLU(), pool2());
  // Well-separated values: no tie and no y near 0 moves under the gradcheck's perturbation.
  std::vector<double> xs;
  for (std::size_t i = 0; i < 3 * 2 * 4 * 5; ++i) xs.push_back(0.37 * static_cast<double>((i * 17) % 53) - 9.0);
  Tensor x = sorix::tensor(xs, {3, 2, 4, 5}, sorix::float64).requires_grad_();
  CHECK(grad_fn_name(seq(x)) == kFused);
  const auto r = sorix::testing::gradcheck([&](const std::vector<Tensor>& in) { return seq(in[0]); }, {x});
  INFO(r.message);
  CHECK(r.ok);
}

TEST_CASE("Only BatchNorm2d, exactly ReLU and MaxPool2d(2) with stride 2 are fused with the pool", "[nn][batchnorm]") {
  Tensor x = randn_f64({2, 3, 6, 6}, 41, false).to(sorix::float32).requires_grad_();
  const auto fused_with = [&](nn::MaxPool2dOptions o) {
    return grad_fn_name(nn::Sequential(nn::BatchNorm2d(3), nn::ReLU(), nn::MaxPool2d(o))(x));
  };
  CHECK(fused_with(nn::MaxPool2dOptions(2)) == kFused);
  CHECK(fused_with(nn::MaxPool2dOptions({2, 2}).stride({2, 2})) == kFused);
  CHECK(fused_with(nn::MaxPool2dOptions(3)) != kFused);
  CHECK(fused_with(nn::MaxPool2dOptions(2).stride(1)) != kFused);
  CHECK(fused_with(nn::MaxPool2dOptions(2).padding(1)) != kFused);
  CHECK(fused_with(nn::MaxPool2dOptions(2).dilation(2)) != kFused);
  CHECK(fused_with(nn::MaxPool2dOptions(2).ceil_mode(true)) != kFused);
  CHECK(fused_with(nn::MaxPool2dOptions({2, 1}).stride({2, 1})) != kFused);
  CHECK(grad_fn_name(nn::Sequential(nn::BatchNorm2d(3), nn::LeakyReLU(), pool2())(x)) != kFused);
  CHECK(grad_fn_name(nn::Sequential(nn::BatchNorm2d(3), pool2(), nn::ReLU())(x)) != kFused);
  // A 1-row plane cannot hold a window: the stages run one by one and the pool's own error names it.
  Tensor thin = randn_f64({2, 3, 1, 6}, 42, false).to(sorix::float32);
  CHECK_THROWS_WITH(nn::Sequential(nn::BatchNorm2d(3), nn::ReLU(), pool2())(thin),
                    Catch::Contains("MaxPool2d") && Catch::Contains("too small"));
  // Called directly, forward_relu_pool names what it expects.
  nn::BatchNorm2d bn(3);
  CHECK_THROWS_WITH(bn.forward_relu_pool(thin), Catch::Contains("H, W >= 2"));
}

TEST_CASE("BatchNorm + ReLU + MaxPool2d fused without running statistics, in eval", "[nn][batchnorm]") {
  auto bn = std::make_shared<nn::BatchNorm2d>(nn::BatchNormOptions(5).track_running_stats(false));
  nn::BatchNorm2d bn2(nn::BatchNormOptions(5).track_running_stats(false));
  nn::Sequential seq(bn, nn::ReLU(), pool2());
  seq.eval();
  bn2.eval();
  Tensor x = input({3, 5, 4, 6}, 61, sorix::float32).requires_grad_();
  Tensor x2 = x.detach().clone().requires_grad_();
  Tensor out = seq(x), out2 = unfused(bn2, x2);
  CHECK(grad_fn_name(out) == kFused);
  CHECK(same_bits(out, out2));
  out.sum().backward();
  out2.sum().backward();
  CHECK(same_bits(x.grad(), x2.grad()));
}

TEST_CASE("BatchNorm + ReLU + MaxPool2d fused: no recorded op without gradients", "[nn][batchnorm]") {
  nn::Sequential seq(nn::BatchNorm2d(4), nn::ReLU(), pool2());
  nn::BatchNorm2d bn2(4);
  seq.eval();
  bn2.eval();
  sorix::NoGradGuard no_grad;
  const Tensor x = input({2, 4, 6, 6}, 71, sorix::float32);
  const Tensor out = seq(x);
  CHECK(!out.grad_fn());
  CHECK(same_bits(out, unfused(bn2, x)));
}

TEST_CASE("BatchNorm + ReLU + MaxPool2d fused: the same bits at 1, 2 and 3 threads", "[nn][batchnorm]") {
  const auto results = sorix::testing::at_thread_counts({1, 2, 3}, [] {
    auto bn = make_bn<nn::BatchNorm2d>(19, true, sorix::float32);
    nn::Sequential seq(bn, nn::ReLU(), pool2());
    Tensor x = input({70, 19, 6, 7}, 51, sorix::float32).requires_grad_();  // 3 batch chunks
    Tensor out = seq(x);
    (out * randn_f64({70, 19, 3, 3}, 52, false).to(sorix::float32)).sum().backward();
    return std::vector<Tensor>{out, x.grad(), bn->weight.grad(), bn->bias.grad(), bn->running_var};
  });
  for (std::size_t t = 1; t < results.size(); ++t)
    for (std::size_t k = 0; k < results[0].size(); ++k) CHECK(same_bits(results[t][k], results[0][k]));
}
