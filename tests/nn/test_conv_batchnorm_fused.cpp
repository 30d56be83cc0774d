// A Sequential's Conv2d stage followed by exactly BatchNorm2d, ReLU and MaxPool2d(2), in training,
// on an input that does not require grad, runs as one recorded op: the BatchNorm's input
// gradient is made image by image into the convolution's weight and bias gradients and never
// stored. The same bits as the four modules run one after the other (outputs, every gradient,
// running statistics) on each of the convolution's paths, at any thread count; create_graph gives
// the composite's gradients; everything else runs the modules as before.
#include <catch2/catch.hpp>

#include <cstdint>
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
using sorix::testing::bit_identical;
using sorix::testing::grad_fn_name;
using sorix::testing::make_bn;
using sorix::testing::randn_f64;

namespace {

constexpr const char* kFused = "ConvolutionBatchNormReluMaxPoolBackward";

nn::MaxPool2d pool2() { return nn::MaxPool2d(nn::MaxPool2dOptions(2)); }

// Two convolutions with the same parameters (seeded, so that both signs feed relu and the pool).
std::shared_ptr<nn::Conv2d> make_conv(const nn::Conv2dOptions& o, sorix::Dtype dtype) {
  auto conv = std::make_shared<nn::Conv2d>(o, dtype);
  sorix::NoGradGuard no_grad;
  conv->weight.copy_(randn_f64(conv->weight.shape(), 41, false).to(dtype));
  if (conv->bias.defined()) conv->bias.copy_(randn_f64(conv->bias.shape(), 42, false).to(dtype));
  return conv;
}

struct Pair {
  std::shared_ptr<nn::Conv2d> conv, conv2;
  std::shared_ptr<nn::BatchNorm2d> bn, bn2;
};

Pair make_pair(const nn::Conv2dOptions& o, sorix::Dtype dtype) {
  return {make_conv(o, dtype), make_conv(o, dtype), make_bn<nn::BatchNorm2d>(o.out_channels(), true, dtype),
          make_bn<nn::BatchNorm2d>(o.out_channels(), true, dtype)};
}

Tensor apart(const Pair& p, const Tensor& x) {
  const Tensor y = sorix::relu(p.bn2->forward(p.conv2->forward(x)));
  return nn::functional::max_pool2d(y, nn::functional::MaxPool2dFuncOptions(2));
}

void check_grads(const Pair& p) {
  for (const auto& [a, b] : {std::pair{p.conv->weight, p.conv2->weight}, std::pair{p.bn->weight, p.bn2->weight},
                             std::pair{p.bn->bias, p.bn2->bias}}) {
    REQUIRE(a.grad().defined());
    CHECK(bit_identical(a.grad(), b.grad()));
  }
  if (p.conv->bias.defined() && p.conv->bias.requires_grad()) CHECK(bit_identical(p.conv->bias.grad(), p.conv2->bias.grad()));
  CHECK(bit_identical(p.bn->running_mean, p.bn2->running_mean));
  CHECK(bit_identical(p.bn->running_var, p.bn2->running_var));
}

// Two training steps' forward and backward of seq against the modules apart.
void check_against_apart(const nn::Conv2dOptions& o, const Shape& xshape, sorix::Dtype dtype) {
  Pair p = make_pair(o, dtype);
  nn::Sequential seq(p.conv, p.bn, nn::ReLU(), pool2());
  for (int step = 0; step < 2; ++step) {
    INFO("step " << step);
    const Tensor x = randn_f64(xshape, 43 + step, false).to(dtype);
    Tensor out = seq(x);
    Tensor out2 = apart(p, x);
    CHECK(grad_fn_name(out) == kFused);
    REQUIRE(bit_identical(out, out2));
    const Tensor weights = randn_f64(out.shape(), 45 + step, false).to(dtype);
    (out * weights).sum().backward();
    (out2 * weights).sum().backward();
    check_grads(p);
  }
}

// A small float64 Conv2d(2, 3, 3, padding 1) + BatchNorm2d + ReLU + MaxPool2d(2) run fused (out)
// and apart (out2) on the same input: the edge cases' start.
struct BothRuns {
  Pair p;
  Tensor out, out2;
};
BothRuns run_both(int seed) {
  BothRuns r{make_pair(nn::Conv2dOptions(2, 3, 3).padding(1), sorix::float64), Tensor(), Tensor()};
  nn::Sequential seq(r.p.conv, r.p.bn, nn::ReLU(), pool2());
  const Tensor x = randn_f64({3, 2, 6, 6}, seed, false);
  r.out = seq(x);
  r.out2 = apart(r.p, x);
  CHECK(grad_fn_name(r.out) == kFused);
  return r;
}

}  // namespace

TEST_CASE("Sequential runs Conv2d + BatchNorm2d + ReLU + MaxPool2d(2) as one op, in the bits of the modules",
          "[nn][conv][batchnorm]") {
  const int before = sorix::parallel::get_num_threads();
  // 1 thread: every batch goes image by image (each image's planes' moments taken as it is
  // made); 4: batches under 8 images take the batch's columns, without moments.
  for (int threads : {1, 4}) {
    sorix::parallel::set_num_threads(threads);
    for (auto dtype : {sorix::float32, sorix::float64}) {
      INFO(sorix::dtype_name(dtype) << ", " << threads << " threads");
      // The CNN's first layer, small: one input channel, 3 x 3, padding 1 (the direct path).
      check_against_apart(nn::Conv2dOptions(1, 8, 3).padding(1), {6, 1, 12, 10}, dtype);
      // 5 x 5 on more channels, no bias; odd sides (a last row and column the pool leaves out).
      check_against_apart(nn::Conv2dOptions(6, 5, 5).padding(2).bias(false), {3, 6, 9, 11}, dtype);
      // Strided, dilated, grouped.
      check_against_apart(nn::Conv2dOptions(4, 6, 3).stride(2).padding(1), {4, 4, 13, 12}, dtype);
      check_against_apart(nn::Conv2dOptions(4, 6, 3).dilation(2).padding(2).groups(2), {5, 4, 8, 8}, dtype);
      // Many output channels and images: the weight gradient's tasks in blocks and chunks.
      check_against_apart(nn::Conv2dOptions(3, 40, 3).padding(1), {20, 3, 6, 6}, dtype);
      // Enough images for 4 threads' image-by-image path, planes long enough for the moments.
      check_against_apart(nn::Conv2dOptions(1, 4, 3).padding(1), {10, 1, 12, 10}, dtype);
    }
  }
  sorix::parallel::set_num_threads(before);
}

TEST_CASE("Conv2d + BatchNorm2d + ReLU + MaxPool2d fused: the same bits at 1, 2 and 3 threads", "[nn][conv][batchnorm]") {
  const int before = sorix::parallel::get_num_threads();
  std::vector<Tensor> results;
  for (int threads : {1, 2, 3}) {
    sorix::parallel::set_num_threads(threads);
    Pair p = make_pair(nn::Conv2dOptions(2, 16, 3).padding(1), sorix::float32);
    nn::Sequential seq(p.conv, p.bn, nn::ReLU(), pool2());
    const Tensor x = randn_f64({24, 2, 10, 10}, 51, false).to(sorix::float32);
    Tensor out = seq(x);
    CHECK(grad_fn_name(out) == kFused);
    (out * out).sum().backward();
    results.push_back(sorix::cat({out.flatten(), p.conv->weight.grad().flatten(), p.conv->bias.grad().flatten(),
                                  p.bn->weight.grad().flatten(), p.bn->running_var.flatten()}));
  }
  sorix::parallel::set_num_threads(before);
  CHECK(bit_identical(results[0], results[1]));
  CHECK(bit_identical(results[0], results[2]));
}

TEST_CASE("Conv2d + BatchNorm2d + ReLU + MaxPool2d fused: a frozen weight or bias", "[nn][conv][batchnorm]") {
  for (bool freeze_weight : {true, false}) {
    INFO((freeze_weight ? "weight frozen" : "bias frozen"));
    Pair p = make_pair(nn::Conv2dOptions(2, 5, 3).padding(1), sorix::float64);
    for (auto* c : {p.conv.get(), p.conv2.get()}) (freeze_weight ? c->weight : c->bias).requires_grad_(false);
    nn::Sequential seq(p.conv, p.bn, nn::ReLU(), pool2());
    const Tensor x = randn_f64({3, 2, 6, 6}, 61, false);
    Tensor out = seq(x), out2 = apart(p, x);
    CHECK(grad_fn_name(out) == kFused);
    out.sum().backward();
    out2.sum().backward();
    CHECK(bit_identical(p.bn->weight.grad(), p.bn2->weight.grad()));
    if (freeze_weight) {
      CHECK_FALSE(p.conv->weight.grad().defined());
      CHECK(bit_identical(p.conv->bias.grad(), p.conv2->bias.grad()));
    } else {
      CHECK_FALSE(p.conv->bias.grad().defined());
      CHECK(bit_identical(p.conv->weight.grad(), p.conv2->weight.grad()));
    }
  }
}

TEST_CASE("Conv2d + BatchNorm2d + ReLU + MaxPool2d fused: create_graph gives the composite's gradients",
          "[nn][conv][batchnorm]") {
  Pair p = make_pair(nn::Conv2dOptions(2, 3, 3).padding(1), sorix::float64);
  nn::Sequential seq(p.conv, p.bn, nn::ReLU(), pool2());
  const Tensor x = randn_f64({4, 2, 6, 6}, 71, false);
  Tensor out = seq(x), out2 = apart(p, x);
  CHECK(grad_fn_name(out) == kFused);
  const auto g = sorix::autograd::grad({(out * out).sum()}, {p.conv->weight, p.conv->bias, p.bn->weight}, {}, true);
  const auto g2 = sorix::autograd::grad({(out2 * out2).sum()}, {p.conv2->weight, p.conv2->bias, p.bn2->weight}, {}, true);
  for (std::size_t i = 0; i < g.size(); ++i) CHECK(bit_identical(g[i], g2[i]));
  // Second derivatives: the same terms, added in the graph's order (one node here, four there).
  (g[0] * g[0]).sum().backward();
  (g2[0] * g2[0]).sum().backward();
  CHECK(sorix::allclose(p.conv->weight.grad(), p.conv2->weight.grad(), 1e-10, 1e-12));
  CHECK(sorix::allclose(p.bn->weight.grad(), p.bn2->weight.grad(), 1e-10, 1e-12));
}

TEST_CASE("Conv2d + BatchNorm2d + ReLU + MaxPool2d fused: float64 gradcheck of the convolution's weight",
          "[nn][conv][batchnorm]") {
  Pair p = make_pair(nn::Conv2dOptions(1, 2, 3).padding(1), sorix::float64);
  nn::Sequential seq(p.conv, p.bn, nn::ReLU(), pool2());
  // Well-separated values: no tie and no value near relu's 0 moves under the perturbation.
  std::vector<double> xs;
  for (std::size_t i = 0; i < 3 * 5 * 6; ++i) xs.push_back(0.37 * static_cast<double>((i * 17) % 53) - 9.0);
  const Tensor x = sorix::tensor(xs, {3, 1, 5, 6}, sorix::float64);
  CHECK(grad_fn_name(seq(x)) == kFused);
  const auto r = sorix::testing::gradcheck(
      [&](const std::vector<Tensor>& in) {
        p.conv->weight = in[0];  // the handle the module's forward reads
        return seq(x);
      },
      {p.conv->weight.detach().clone().requires_grad_()});
  INFO(r.message);
  CHECK(r.ok);
}

TEST_CASE("Conv2d is fused with BatchNorm2d + ReLU + MaxPool2d only where its gradients allow",
          "[nn][conv][batchnorm]") {
  const Tensor x = randn_f64({4, 2, 6, 6}, 81, false).to(sorix::float32);
  Pair p = make_pair(nn::Conv2dOptions(2, 3, 3).padding(1), sorix::float32);
  nn::Sequential seq(p.conv, p.bn, nn::ReLU(), pool2());
  CHECK(grad_fn_name(seq(x)) == kFused);
  // The input's gradient would need the BatchNorm's whole input gradient: the modules run apart.
  CHECK(grad_fn_name(seq(x.detach().clone().requires_grad_())) == "BatchNormReluMaxPoolBackward");
  {
    sorix::NoGradGuard no_grad;
    CHECK(grad_fn_name(seq(x)) == "(none)");
  }
  seq.eval();
  CHECK(grad_fn_name(seq(x)) == "BatchNormReluMaxPoolBackward");
  seq.train();
  // SyncBatchNorm's mode on a BatchNorm2d (convert_sync_batchnorm): its statistics are the ranks'.
  p.bn->set_sync(true);
  CHECK(grad_fn_name(seq(x)) == "BatchNormReluMaxPoolBackward");
  p.bn->set_sync(false);
  // A 1 x 1 convolution, Winograd's 3 x 3 (float32, enough channels) and a depthwise one keep
  // their own gradients.
  for (const auto& o : {nn::Conv2dOptions(2, 3, 1), nn::Conv2dOptions(32, 32, 3).padding(1),
                        nn::Conv2dOptions(4, 4, 3).padding(1).groups(4)}) {
    Pair q = make_pair(o, sorix::float32);
    nn::Sequential s(q.conv, q.bn, nn::ReLU(), pool2());
    const Tensor xi = randn_f64({2, o.in_channels(), 14, 14}, 82, false).to(sorix::float32);
    CHECK(grad_fn_name(s(xi)) == "BatchNormReluMaxPoolBackward");
  }
  // An output smaller than the pool's window: the modules apart, with their own error.
  Pair r = make_pair(nn::Conv2dOptions(2, 3, 3), sorix::float32);
  nn::Sequential small(r.conv, r.bn, nn::ReLU(), pool2());
  CHECK_THROWS(small(randn_f64({2, 2, 3, 3}, 83, false).to(sorix::float32)));
  // Bad input still gets the convolution's own error.
  CHECK_THROWS_WITH(seq(randn_f64({4, 5, 6, 6}, 84, false).to(sorix::float32)), Catch::Contains("conv2d"));
  // A BatchNorm of the wrong width: the BatchNorm's error.
  Pair w = make_pair(nn::Conv2dOptions(2, 3, 3).padding(1), sorix::float32);
  nn::Sequential wrong(w.conv, std::make_shared<nn::BatchNorm2d>(4), nn::ReLU(), pool2());
  CHECK_THROWS_WITH(wrong(x), Catch::Contains("BatchNorm2d") && Catch::Contains("num_features"));
}

TEST_CASE("Conv2d + BatchNorm2d + ReLU + MaxPool2d fused: an input changed in place before the backward is refused",
          "[nn][conv][batchnorm]") {
  for (bool create_graph : {false, true}) {
    INFO((create_graph ? "create_graph" : "backward"));
    Pair p = make_pair(nn::Conv2dOptions(2, 3, 3).padding(1), sorix::float64);
    nn::Sequential seq(p.conv, p.bn, nn::ReLU(), pool2());
    Tensor x = randn_f64({3, 2, 6, 6}, 91, false);
    Tensor out = seq(x);
    CHECK(grad_fn_name(out) == kFused);
    x.add_(1.0);  // as the convolution's own node would, the fused one refuses to use a changed input
    if (create_graph) {
      CHECK_THROWS_WITH(sorix::autograd::grad({out.sum()}, {p.conv->weight}, {}, true),
                        Catch::Contains("modified by an in-place"));
    } else {
      CHECK_THROWS_WITH(out.sum().backward(), Catch::Contains("modified by an in-place"));
    }
  }
}

TEST_CASE("Conv2d + BatchNorm2d + ReLU + MaxPool2d fused: a weight changed in place is refused as apart",
          "[nn][conv][batchnorm]") {
  BothRuns r = run_both(101);
  {
    sorix::NoGradGuard no_grad;
    r.p.conv->weight.add_(1.0);
    r.p.conv2->weight.add_(1.0);
  }
  CHECK_THROWS_WITH(r.out.sum().backward(), Catch::Contains("modified by an in-place"));
  CHECK_THROWS_WITH(r.out2.sum().backward(), Catch::Contains("modified by an in-place"));
}

TEST_CASE("Conv2d + BatchNorm2d + ReLU + MaxPool2d fused: create_graph after the convolution was frozen",
          "[nn][conv][batchnorm]") {
  BothRuns r = run_both(111);
  for (auto* c : {r.p.conv.get(), r.p.conv2.get()}) {
    c->weight.requires_grad_(false);
    c->bias.requires_grad_(false);
  }
  // Its output made again records no convolution: BatchNorm's gradients alone, the modules' bits.
  const Tensor g = sorix::autograd::grad({(r.out * r.out).sum()}, {r.p.bn->weight}, {}, true)[0];
  const Tensor g2 = sorix::autograd::grad({(r.out2 * r.out2).sum()}, {r.p.bn2->weight}, {}, true)[0];
  CHECK(bit_identical(g, g2));
}
