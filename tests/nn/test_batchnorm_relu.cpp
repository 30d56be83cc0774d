// A Sequential's BatchNorm stage followed by a ReLU stage runs as one fused op
// (BatchNormNd::forward_relu): the same bits as the two modules run one after the other, forward,
// backward (relu's mask recomputed from the input), running statistics and create_graph.
#include <catch2/catch.hpp>

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

using sorix::testing::grad_fn_name;
using sorix::testing::make_bn;

// seq = Sequential(bn, ReLU) against bn2 then relu on a copy.
template <class BN>
void check_fused(const Shape& shape, sorix::Dtype dtype, bool affine) {
  auto bn = make_bn<BN>(shape[1], affine, dtype);
  auto bn2 = make_bn<BN>(shape[1], affine, dtype);
  nn::Sequential seq(bn, nn::ReLU());
  sorix::testing::check_fused_against_apart(
      seq, *bn, *bn2, [&](const Tensor& x2) { return sorix::relu((*bn2)(x2)); },
      [&](int seed) { return (randn_f64(shape, seed, false) * 2.0).to(dtype); }, shape, dtype, affine,
      "BatchNormReluBackward");
}

}  // namespace

TEST_CASE("Sequential runs BatchNorm + ReLU fused, in the bits of the two modules", "[nn][batchnorm]") {
  for (auto dtype : {sorix::float32, sorix::float64}) {
    for (bool affine : {true, false}) {
      INFO(sorix::dtype_name(dtype) << (affine ? " affine" : " no affine"));
      check_fused<nn::BatchNorm1d>({9, 5}, dtype, affine);
      check_fused<nn::BatchNorm1d>({40, 37}, dtype, affine);  // channel lanes: 4 registers, 1, then single
      check_fused<nn::BatchNorm1d>({6, 4, 7}, dtype, affine);
      check_fused<nn::BatchNorm2d>({5, 19, 6, 7}, dtype, affine);  // 16 + 3 channels: lane blocks and rest
      check_fused<nn::BatchNorm3d>({3, 2, 3, 4, 5}, dtype, affine);
      check_fused<nn::SyncBatchNorm>({4, 3, 10}, dtype, affine);
    }
  }
}

TEST_CASE("BatchNorm + ReLU fused: gradients under create_graph are the composite's", "[nn][batchnorm]") {
  for (auto dtype : {sorix::float32, sorix::float64}) {
    for (bool change_output : {false, true}) {
      INFO(sorix::dtype_name(dtype) << (change_output ? ", output changed in place" : ""));
      auto bn = make_bn<nn::BatchNorm2d>(3, true, dtype);
      auto bn2 = make_bn<nn::BatchNorm2d>(3, true, dtype);
      nn::Sequential seq(bn, nn::ReLU());
      Tensor x = randn_f64({4, 3, 5, 5}, 31, false).to(dtype).requires_grad_();
      Tensor x2 = x.detach().clone().requires_grad_();
      Tensor out = seq(x), out2 = sorix::relu((*bn2)(x2));
      if (change_output) {  // the fused op keeps no output to check: its mask comes from x
        out.mul_(3.0);
        out2.mul_(3.0);
      }
      const Tensor gx = sorix::autograd::grad({(out * out).sum()}, {x}, {}, true)[0];
      const Tensor gx2 = sorix::autograd::grad({(out2 * out2).sum()}, {x2}, {}, true)[0];
      CHECK(same_bits(gx, gx2));
      (gx * gx).sum().backward();
      (gx2 * gx2).sum().backward();
      CHECK(same_bits(x.grad(), x2.grad()));
      CHECK(same_bits(bn->weight.grad(), bn2->weight.grad()));
    }
  }
}

TEST_CASE("BatchNorm + ReLU fused without running statistics, in eval", "[nn][batchnorm]") {
  auto bn = std::make_shared<nn::BatchNorm2d>(nn::BatchNormOptions(5).track_running_stats(false));
  nn::BatchNorm2d bn2(nn::BatchNormOptions(5).track_running_stats(false));
  nn::Sequential seq(bn, nn::ReLU());
  seq.eval();
  bn2.eval();
  Tensor x = randn_f64({3, 5, 4, 4}, 61, false).to(sorix::float32).requires_grad_();
  Tensor x2 = x.detach().clone().requires_grad_();
  Tensor out = seq(x), out2 = sorix::relu(bn2(x2));
  CHECK(grad_fn_name(out) == "BatchNormReluBackward");
  CHECK(same_bits(out, out2));
  out.sum().backward();
  out2.sum().backward();
  CHECK(same_bits(x.grad(), x2.grad()));
}

TEST_CASE("Only exactly BatchNorm then exactly ReLU are fused", "[nn][batchnorm]") {
  struct MyBatchNorm : nn::BatchNorm2d {  // may change forward: never fused
    using nn::BatchNorm2d::BatchNorm2d;
    Tensor forward(const Tensor& input) override { return nn::BatchNorm2d::forward(input) * 2.0; }
  };
  Tensor x = randn_f64({2, 3, 4, 4}, 41, false).to(sorix::float32).requires_grad_();
  CHECK(grad_fn_name(nn::Sequential(nn::BatchNorm2d(3), nn::ReLU())(x)) == "BatchNormReluBackward");
  CHECK(grad_fn_name(nn::Sequential(nn::BatchNorm2d(3), nn::LeakyReLU())(x)) != "BatchNormReluBackward");
  CHECK(grad_fn_name(nn::Sequential(nn::ReLU(), nn::BatchNorm2d(3))(x)) == "BatchNormBackward");
  CHECK(grad_fn_name(nn::Sequential(nn::BatchNorm2d(3))(x)) == "BatchNormBackward");
  Tensor mine = nn::Sequential(MyBatchNorm(3), nn::ReLU())(x);
  CHECK(grad_fn_name(mine) != "BatchNormReluBackward");
  CHECK(same_bits(mine, sorix::relu(nn::BatchNorm2d(3)(x) * 2.0)));
}

TEST_CASE("BatchNorm + ReLU fused: the same bits at 1, 2 and 3 threads", "[nn][batchnorm]") {
  const auto results = sorix::testing::at_thread_counts({1, 2, 3}, [] {
    auto bn = make_bn<nn::BatchNorm2d>(19, true, sorix::float32);
    nn::Sequential seq(bn, nn::ReLU());
    Tensor x = (randn_f64({70, 19, 6, 7}, 51, false) * 2.0).to(sorix::float32).requires_grad_();  // 3 batch chunks
    Tensor out = seq(x);
    (out * randn_f64({70, 19, 6, 7}, 52, false).to(sorix::float32)).sum().backward();
    return std::vector<Tensor>{out, x.grad(), bn->weight.grad(), bn->bias.grad(), bn->running_var};
  });
  for (std::size_t t = 1; t < results.size(); ++t)
    for (std::size_t k = 0; k < results[0].size(); ++k) CHECK(same_bits(results[t][k], results[0][k]));
}
