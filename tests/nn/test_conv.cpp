// Convolutions and pooling: PyTorch parity (tests/data, scripts/gen_parity_layers.py), float64
// gradchecks (first and second order), thread invariance, and bad options.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <set>

#include "sorix_autograd/gemm.hpp"
#include "sorix_core/kernels/im2col.hpp"
#include "support/capabilities.hpp"
#include "support/errors.hpp"
#include "support/gradcheck.hpp"
#include "support/parity.hpp"
#include "support/values.hpp"

#include <sorix/sorix.hpp>

using sorix::Shape;
using sorix::Tensor;
using sorix::testing::contains;
using sorix::testing::gradcheck;
using sorix::testing::message_of;
using sorix::testing::randn_f64;
namespace nn = sorix::nn;
namespace F = sorix::nn::functional;
using parity::Case;
using parity::check_matches;
using parity::kDtypes;
using parity::load;
using parity::param;

namespace {

// Convolution outputs are sums of up to ~50 terms that often cancel: float32 errors are measured
// against a tenth of the tensor's largest magnitude (float64 still agrees to 1e-10 of it).
constexpr double kFloor = 0.1;

std::int64_t iv(const Case& c, const char* name) { return static_cast<std::int64_t>(c.scalars.at(name)); }

// Runs `layer` on the case's x with its parameters loaded, checks y, dx and every parameter's gradient.
void check_layer(nn::Module& layer, const Case& c, const std::vector<std::string>& params) {
  sorix::StateDict sd;
  for (const auto& p : params) sd.insert(p, c.at(p));
  if (!params.empty()) layer.load_state_dict(sd, false);
  Tensor x = param(c.at("x"));
  Tensor y = layer(x);
  check_matches(y, c.at("y"), "y", kFloor);
  y.backward(c.at("gy"));
  check_matches(x.grad(), c.at("dx"), "dx", kFloor);
  for (const auto& [name, t] : layer.named_parameters()) check_matches(t.grad(), c.at("d" + name), "d" + name, kFloor);
}

}  // namespace

TEST_CASE("parity: Conv2d (stride, padding, same, dilation, groups, 1x1, unbatched) matches PyTorch", "[nn][parity][conv]") {
  for (sorix::Dtype dt : kDtypes) {
    for (const char* name : {"conv2d_strided", "conv2d_groups", "conv2d_same", "conv2d_pointwise", "conv2d_unbatched"}) {
      INFO(name << " " << sorix::dtype_name(dt));
      Case c = load(name, dt);
      nn::Conv2dOptions o(iv(c, "cin"), iv(c, "cout"), {iv(c, "kh"), iv(c, "kw")});
      o.stride({iv(c, "sh"), iv(c, "sw")}).dilation({iv(c, "dh"), iv(c, "dw")}).groups(iv(c, "groups")).bias(iv(c, "bias") != 0);
      if (iv(c, "same")) o.padding(nn::kSame);
      else o.padding({iv(c, "ph"), iv(c, "pw")});
      nn::Conv2d conv(o, dt);
      std::vector<std::string> params{"weight"};
      if (o.bias()) params.push_back("bias");
      check_layer(conv, c, params);
    }
  }
}

TEST_CASE("parity: Conv1d and ConvTranspose2d match PyTorch", "[nn][parity][conv]") {
  for (sorix::Dtype dt : kDtypes) {
    INFO(sorix::dtype_name(dt));
    Case c = load("conv1d", dt);
    nn::Conv1d conv1(nn::Conv1dOptions(3, 4, 3).stride(2).padding(1), dt);
    check_layer(conv1, c, {"weight", "bias"});
    Case t = load("conv_transpose2d", dt);
    nn::ConvTranspose2d convt(
        nn::ConvTranspose2dOptions(4, 6, {3, 2}).stride({2, 1}).padding({1, 0}).output_padding({1, 0}).groups(2), dt);
    check_layer(convt, t, {"weight", "bias"});
  }
}

TEST_CASE("parity: MaxPool1d/2d (with indices), AvgPool2d, AdaptiveAvgPool2d, BatchNorm2d match PyTorch", "[nn][parity][conv]") {
  for (sorix::Dtype dt : kDtypes) {
    INFO(sorix::dtype_name(dt));
    {
      Case c = load("maxpool2d", dt);
      nn::MaxPool2d pool(nn::MaxPool2dOptions(3).stride(2).padding(1).ceil_mode(true));
      check_layer(pool, c, {});
      auto [y, idx] = pool.forward_with_indices(c.at("x"));
      CHECK(sorix::testing::bit_identical(idx, c.at("indices")));
    }
    {
      Case c = load("maxpool2d_dilated", dt);
      nn::MaxPool2d pool(nn::MaxPool2dOptions(2).stride(1).dilation(2));
      check_layer(pool, c, {});
      CHECK(sorix::testing::bit_identical(pool.forward_with_indices(c.at("x")).second, c.at("indices")));
    }
    {
      Case c = load("maxpool1d", dt);
      nn::MaxPool1d pool(nn::MaxPool1dOptions(3).stride(2).padding(1));
      check_layer(pool, c, {});
      CHECK(sorix::testing::bit_identical(F::max_pool1d_with_indices(c.at("x"), nn::MaxPool1dOptions(3).stride(2).padding(1)).second,
                                          c.at("indices")));
    }
    {
      Case c = load("avgpool2d", dt);
      nn::AvgPool2d pool(nn::AvgPool2dOptions(3).stride(2).padding(1).ceil_mode(true).count_include_pad(false));
      check_layer(pool, c, {});
    }
    {
      Case c = load("avgpool2d_divisor", dt);
      nn::AvgPool2d pool(nn::AvgPool2dOptions(2).stride(2).padding(1).divisor_override(3));
      check_layer(pool, c, {});
    }
    {
      Case c = load("adaptive_avgpool2d", dt);
      nn::AdaptiveAvgPool2d pool(nn::AdaptiveAvgPool2dOptions({3, 2}));
      check_layer(pool, c, {});
    }
    {
      Case c = load("batchnorm2d_4d", dt);
      nn::BatchNorm2d bn(nn::BatchNorm2dOptions(3), dt);
      check_layer(bn, c, {"weight", "bias"});
    }
  }
}

TEST_CASE("conv and pooling gradients pass float64 gradchecks", "[nn][conv][gradcheck]") {
  SECTION("conv2d: stride, padding, dilation, groups, bias") {
    Tensor x = randn_f64({2, 4, 6, 5}, 1), w = randn_f64({6, 2, 3, 2}, 2), b = randn_f64({6}, 3);
    auto r = gradcheck([](const std::vector<Tensor>& in) {
      return F::conv2d(in[0], in[1], F::Conv2dFuncOptions().bias(in[2]).stride({2, 1}).padding({1, 1}).dilation({1, 2}).groups(2));
    }, {x, w, b});
    INFO(r.message);
    CHECK(r.ok);
  }
  SECTION("conv2d same padding with an even kernel, and conv1d") {
    Tensor x = randn_f64({1, 2, 5, 4}, 4), w = randn_f64({3, 2, 2, 3}, 5);
    auto r = gradcheck([](const std::vector<Tensor>& in) {
      return F::conv2d(in[0], in[1], F::Conv2dFuncOptions().padding(nn::kSame));
    }, {x, w});
    INFO(r.message);
    CHECK(r.ok);
    Tensor x1 = randn_f64({2, 3, 8}, 6), w1 = randn_f64({2, 3, 3}, 7), b1 = randn_f64({2}, 8);
    auto r1 = gradcheck([](const std::vector<Tensor>& in) {
      return F::conv1d(in[0], in[1], F::Conv1dFuncOptions().bias(in[2]).stride(2).padding(2).dilation(2));
    }, {x1, w1, b1});
    INFO(r1.message);
    CHECK(r1.ok);
  }
  SECTION("stride 1: the input gradient as a convolution of the output gradient") {
    // Dilation, groups, unequal paddings, an even kernel; then paddings past the dilated kernel's
    // span (its padding d * (k - 1) - p would be negative: col2im instead), and Conv1d.
    Tensor x = randn_f64({2, 4, 7, 6}, 30), w = randn_f64({6, 2, 3, 2}, 31), b = randn_f64({6}, 32);
    auto r = gradcheck([](const std::vector<Tensor>& in) {
      return F::conv2d(in[0], in[1], F::Conv2dFuncOptions().bias(in[2]).padding({2, 0}).dilation({2, 3}).groups(2));
    }, {x, w, b});
    INFO(r.message);
    CHECK(r.ok);
    Tensor x2 = randn_f64({1, 2, 4, 5}, 33), w2 = randn_f64({3, 2, 2, 3}, 34);
    auto r2 = gradcheck([](const std::vector<Tensor>& in) {
      return F::conv2d(in[0], in[1], F::Conv2dFuncOptions().padding({2, 3}));
    }, {x2, w2});
    INFO(r2.message);
    CHECK(r2.ok);
    Tensor x1 = randn_f64({2, 3, 9}, 35), w1 = randn_f64({4, 3, 3}, 36);
    auto r1 = gradcheck([](const std::vector<Tensor>& in) {
      Tensor y = F::conv1d(in[0], in[1], F::Conv1dFuncOptions().padding(1).dilation(2));
      auto g = sorix::autograd::grad({(y * y).sum()}, {in[0], in[1]}, {}, true, true);
      return y.sum() + (g[0] * g[0]).sum() + (g[1] * g[1]).sum();  // first and second order
    }, {x1, w1});
    INFO(r1.message);
    CHECK(r1.ok);
  }
  SECTION("conv_transpose2d with groups, stride and output_padding") {
    Tensor x = randn_f64({2, 4, 3, 3}, 9), w = randn_f64({4, 3, 3, 2}, 10), b = randn_f64({6}, 11);
    auto r = gradcheck([](const std::vector<Tensor>& in) {
      return F::conv_transpose2d(in[0], in[1], F::ConvTranspose2dFuncOptions().bias(in[2]).stride(2).padding({1, 0})
                                                   .output_padding({1, 0}).groups(2));
    }, {x, w, b});
    INFO(r.message);
    CHECK(r.ok);
  }
  SECTION("pooling") {
    Tensor x = randn_f64({2, 2, 7, 6}, 12);
    for (const auto& fn : std::vector<sorix::testing::TensorFn>{
             [](const std::vector<Tensor>& in) { return F::max_pool2d(in[0], nn::MaxPool2dOptions({3, 2}).stride(2).padding(1).ceil_mode(true)); },
             [](const std::vector<Tensor>& in) { return F::avg_pool2d(in[0], nn::AvgPool2dOptions(3).stride(2).padding(1).count_include_pad(false)); },
             [](const std::vector<Tensor>& in) { return F::adaptive_avg_pool2d(in[0], nn::AdaptiveAvgPool2dOptions({4, 4})); },
             [](const std::vector<Tensor>& in) { return F::max_pool1d(in[0].flatten(2), nn::MaxPool1dOptions(4).stride(3)); }}) {
      auto r = gradcheck(fn, {x});
      INFO(r.message);
      CHECK(r.ok);
    }
  }
  SECTION("second order: the gradient of conv2d and of max_pool2d differentiate again") {
    Tensor x = randn_f64({1, 2, 5, 5}, 13), w = randn_f64({3, 2, 3, 3}, 14);
    auto r = gradcheck([](const std::vector<Tensor>& in) {
      Tensor y = F::conv2d(in[0], in[1], F::Conv2dFuncOptions().padding(1).stride(2));
      Tensor p = F::max_pool2d(y * y, nn::MaxPool2dOptions(2).stride(1));
      auto g = sorix::autograd::grad({p.sum()}, {in[0], in[1]}, {}, true, true);
      return (g[0] * g[0]).sum() + (g[1] * g[1]).sum();
    }, {x, w});
    INFO(r.message);
    CHECK(r.ok);
  }
  SECTION("second order: grouped conv2d with bias, and a 1 x 1 kernel (the columns are the input)") {
    Tensor x = randn_f64({2, 4, 4, 4}, 15), w = randn_f64({6, 2, 3, 3}, 16), b = randn_f64({6}, 17);
    Tensor w1 = randn_f64({3, 6, 1, 1}, 18), b1 = randn_f64({3}, 19);
    auto r = gradcheck([](const std::vector<Tensor>& in) {
      Tensor y = F::conv2d(in[0], in[1], F::Conv2dFuncOptions().bias(in[2]).padding(1).groups(2));
      Tensor z = F::conv2d(y * y, in[3], F::Conv2dFuncOptions().bias(in[4]));
      auto g = sorix::autograd::grad({(z * z).sum()}, {in[0], in[1], in[2], in[3], in[4]}, {}, true, true);
      Tensor s = (g[0] * g[0]).sum();
      for (std::size_t i = 1; i < g.size(); ++i) s = s + (g[i] * g[i]).sum();
      return s;
    }, {x, w, b, w1, b1});
    INFO(r.message);
    CHECK(r.ok);
  }
}

TEST_CASE("conv, pooling and their gradients are bit-identical at 1, 2, 3 and 8 threads", "[nn][conv][determinism]") {
  for (sorix::Dtype dt : kDtypes) {
    INFO(sorix::dtype_name(dt));
    auto run = [dt] {
      sorix::manual_seed(5);
      nn::Conv2d conv(nn::Conv2dOptions(3, 16, 3).padding(1), dt);
      nn::ConvTranspose2d up(nn::ConvTranspose2dOptions(16, 4, 2).stride(2), dt);
      Tensor x = sorix::randn({8, 3, 30, 30}, dt).requires_grad_(true);
      Tensor h = F::max_pool2d(sorix::relu(conv(x)), nn::MaxPool2dOptions(2));
      Tensor y = F::avg_pool2d(up(h), nn::AvgPool2dOptions(3).stride(2).padding(1));
      (y * y).sum().backward();
      return std::vector<Tensor>{y, x.grad(), conv.weight.grad(), conv.bias.grad(), up.weight.grad()};
    };
    auto runs = sorix::testing::at_thread_counts({1, 2, 3, 8}, run);
    for (std::size_t i = 1; i < runs.size(); ++i)
      for (std::size_t k = 0; k < runs[0].size(); ++k) {
        INFO("run " << i << " tensor " << k);
        CHECK(sorix::testing::bit_identical(runs[i][k], runs[0][k]));
      }
  }
}

TEST_CASE("Conv2d image by image (each image's columns made in its task) gives the batch-columns path's bits",
          "[nn][conv][determinism]") {
  // 40 images (batch-tree chunks of 32 and 8): at 1 and 3 threads every image is a task (its
  // columns made and multiplied in its task, never the batch's; the weight gradient makes them
  // again, chunk by chunk and image by image); at 24 threads there are too few images for that and
  // the batch's columns are made in one pass first and kept for the weight gradient.
  for (sorix::Dtype dt : kDtypes) {
    INFO(sorix::dtype_name(dt));
    // 20 input channels: the weight gradient's tasks take blocks of 8 (8 + 8 + 4, or 8 + 2 per group).
    // 32 output channels from 20 input channels: on AVX2 and AVX-512 each image's product is made
    // transposed from its columns read in place (kernels::conv_forward_path: "gathered") and
    // copied out; on AVX-512 the float 6-channel cases multiply im2col's columns.
    for (std::int64_t channels : {4, 20}) {
      for (std::int64_t groups : {1, 2}) {
        for (std::int64_t outs : {6, 32})
        for (bool bias : {true, false}) {
          INFO("channels " << channels << " groups " << groups << " out channels " << outs << " bias " << bias);
          auto run = [&] {
            sorix::manual_seed(9);
            nn::Conv2d conv(nn::Conv2dOptions(channels, outs, 3).padding(1).stride({1, 2}).groups(groups).bias(bias), dt);
            const Tensor x = sorix::randn({40, channels, 9, 11}, dt).requires_grad_(true);
            Tensor y = conv(x);
            (y * y).sum().backward();
            Tensor inferred;
            {
              sorix::NoGradGuard no_grad;
              inferred = conv(x);
            }
            std::vector<Tensor> out{y.detach(), inferred, x.grad(), conv.weight.grad()};
            if (bias) out.push_back(conv.bias.grad());
            return out;
          };
          const auto runs = sorix::testing::at_thread_counts({1, 3, 24}, run);
          for (std::size_t i = 0; i < runs.size(); ++i)
            for (std::size_t k = 0; k < runs[i].size(); ++k) {
              INFO("thread count #" << i << " tensor " << k);
              CHECK(sorix::testing::bit_identical(runs[i][k], runs[0][k >= 2 || k == 0 ? k : 0]));
            }
        }
      }
    }
  }
}

TEST_CASE("Pointwise Conv2d image by image (the planes as the products' operands) gives the batch-columns path's bits",
          "[nn][conv][determinism]") {
  // 1 x 1 kernels: at 1 and 3 threads the 40 images are the tasks (nn/src/conv_pointwise.hpp: no
  // permuted copies; the weight gradient's chains continued image by image over chunks of 32 and
  // 8 images, the bias's add chains beside them); at 24 threads the batch's permuted columns and
  // products split across the threads. The same bits, also frozen weights' bias, and the input
  // gradient of the recorded formulas (create_graph).
  // Planes of 63 and of 576 positions (the weight gradient's chains over more than 512 columns
  // an image: its product in K blocks, resumed image by image).
  for (sorix::Dtype dt : kDtypes) {
    INFO(sorix::dtype_name(dt));
    for (std::int64_t groups : {1, 2}) {
      for (std::int64_t outs : {6, 32}) {
        for (bool bias : {true, false})
        for (std::int64_t side : {7, 24}) {
          INFO("groups " << groups << " out channels " << outs << " bias " << bias << " side " << side);
          auto run = [&] {
            sorix::manual_seed(19);
            nn::Conv2d conv(nn::Conv2dOptions(20, outs, 1).groups(groups).bias(bias), dt);
            const Tensor x = sorix::randn({40, 20, side, side + 2}, dt).requires_grad_(true);
            Tensor y = conv(x);
            (y * y).sum().backward();
            std::vector<Tensor> out{y.detach(), x.grad(), conv.weight.grad()};
            if (bias) {
              out.push_back(conv.bias.grad());
              conv.zero_grad();
              conv.weight.requires_grad_(false);
              (conv(x.detach()) * conv(x.detach())).sum().backward();
              out.push_back(conv.bias.grad());
            }
            return out;
          };
          const auto runs = sorix::testing::at_thread_counts({1, 3, 24}, run);
          for (std::size_t i = 0; i < runs.size(); ++i)
            for (std::size_t k = 0; k < runs[i].size(); ++k) {
              INFO("thread count #" << i << " tensor " << k);
              CHECK(sorix::testing::bit_identical(runs[i][k], runs[0][k == 4 ? 3 : k]));
            }
        }
      }
      // The recorded formulas (create_graph) against the image-by-image path (1 thread: 4 images
      // are the tasks), and a Conv1d of kernel 1 (the same path through its 4-D form).
      sorix::manual_seed(23);
      nn::Conv2d conv(nn::Conv2dOptions(20, 8, 1).groups(groups), dt);
      const Tensor x = sorix::randn({4, 20, 6, 5}, dt).requires_grad_(true);
      const Tensor gy = sorix::randn({4, 8, 6, 5}, dt);
      const std::vector<Tensor> wrt{x, conv.weight, conv.bias};
      const auto plain = sorix::testing::at_thread_counts({1}, [&] { return sorix::autograd::grad({(conv(x) * gy).sum()}, wrt); });
      const auto recorded = sorix::autograd::grad({(conv(x) * gy).sum()}, wrt, {}, /*create_graph=*/true);
      // The input and weight gradients are the same chains; the recorded bias gradient is
      // sum()'s reduction (another order): equal to rounding.
      CHECK(sorix::testing::bit_identical(plain[0][0], recorded[0].detach()));
      CHECK(sorix::testing::bit_identical(plain[0][1], recorded[1].detach()));
      CHECK((plain[0][2] - recorded[2].detach()).abs().max().item<double>() <=
            1e-5 * plain[0][2].abs().max().item<double>());
      nn::Conv1d c1(nn::Conv1dOptions(20, 8, 1).groups(groups), dt);
      Tensor x1 = sorix::randn({40, 20, 33}, dt).requires_grad_(true);
      const auto runs1 = sorix::testing::at_thread_counts({1, 24}, [&] {
        c1.zero_grad();
        x1.set_grad(Tensor());
        Tensor y1 = c1(x1);
        (y1 * y1).sum().backward();
        return std::vector<Tensor>{y1.detach(), x1.grad(), c1.weight.grad(), c1.bias.grad()};
      });
      for (std::size_t k = 0; k < 4; ++k) CHECK(sorix::testing::bit_identical(runs1[1][k], runs1[0][k]));
    }
  }
}

TEST_CASE("Conv2d's direct forward (few input channels, rows of stride 1) gives the product's bits",
          "[nn][conv][determinism]") {
  // With every image a task (1 and 3 threads) a layer of 1 to 3 input channels per group and rows
  // of stride 1 is computed straight from its padded input where kernels::conv_forward_path prices
  // that cheapest (every case here on AVX2; on AVX-512, whose 16-lane registers hold a 13-wide
  // row with room to spare, the first float case multiplies im2col's columns); at 24 threads (too
  // few images) by the product over the batch's columns. Geometries: 'same' padding, dilation, a
  // row stride of 2, depthwise groups, a 1 x 5 kernel; with and without bias.
  struct Case {
    std::int64_t in;
    nn::Conv2dOptions options;
  };
  const std::vector<Case> cases = {
      {1, nn::Conv2dOptions(1, 32, 3).padding(1)},
      {3, nn::Conv2dOptions(3, 8, 3).padding(nn::kSame).dilation(2)},
      {3, nn::Conv2dOptions(3, 6, 3).stride({2, 1}).padding(2).groups(3)},
      {2, nn::Conv2dOptions(2, 5, {1, 5}).padding({0, 1})},
      {4, nn::Conv2dOptions(4, 6, 3).padding(1).groups(2)},
  };
  for (sorix::Dtype dt : kDtypes) {
    for (std::size_t i = 0; i < cases.size(); ++i) {
      for (bool bias : {true, false}) {
        INFO(sorix::dtype_name(dt) << " case " << i << " bias " << bias);
        nn::Conv2dOptions options = cases[i].options;
        options.bias(bias);
        const std::int64_t in = cases[i].in;
        auto run = [options, in, dt] {
          sorix::manual_seed(12);
          nn::Conv2d conv(options, dt);
          const Tensor x = sorix::randn({40, in, 9, 13}, dt);
          sorix::NoGradGuard no_grad;
          return conv(x);
        };
        const auto runs = sorix::testing::at_thread_counts({1, 3, 24}, run);
        CHECK(sorix::testing::bit_identical(runs[1], runs[0]));
        CHECK(sorix::testing::bit_identical(runs[2], runs[0]));
      }
    }
    // Conv1d: the same path over a height of 1.
    const auto runs = sorix::testing::at_thread_counts({1, 24}, [dt] {
      sorix::manual_seed(13);
      nn::Conv1d conv(nn::Conv1dOptions(2, 5, 3).padding(2).dilation(2), dt);
      const Tensor x = sorix::randn({40, 2, 17}, dt);
      sorix::NoGradGuard no_grad;
      return conv(x);
    });
    CHECK(sorix::testing::bit_identical(runs[1], runs[0]));
  }
}

TEST_CASE("Conv2d's transposed forward (positions x channels, copied out) gives the product's bits",
          "[nn][conv][determinism]") {
  // 16 output channels of 5 x 5 positions over K = 180: on AVX2 25 x 16 pads the product's tiles
  // less than 16 x 25 (float and double), so with every image a task (1 and 3 threads) each
  // image's product is made transposed, its columns read in place, and copied out; at 24 threads
  // (too few images) as W x the batch's columns. (AVX-512's 32-column float panels make it W x
  // cols there: the bits are the same.)
  // A 1 x 5 kernel over 36 channels: K = 180 without being a 3 x 3 kernel (Winograd's).
  for (sorix::Dtype dt : kDtypes) {
    for (bool bias : {true, false}) {
      INFO(sorix::dtype_name(dt) << " bias " << bias);
      const auto runs = sorix::testing::at_thread_counts({1, 3, 24}, [dt, bias] {
        sorix::manual_seed(14);
        nn::Conv2d conv(nn::Conv2dOptions(36, 16, {1, 5}).padding({0, 2}).bias(bias), dt);
        const Tensor x = sorix::randn({40, 36, 5, 5}, dt);
        sorix::NoGradGuard no_grad;
        return conv(x);
      });
      CHECK(sorix::testing::bit_identical(runs[1], runs[0]));
      CHECK(sorix::testing::bit_identical(runs[2], runs[0]));
    }
  }
}

TEST_CASE("Conv2d's three forward paths (direct, gathered columns, im2col's columns) give the product's bits",
          "[nn][conv][determinism]") {
  // 40 images: at 1 thread every image is a task and its output is made by the path
  // kernels::conv_forward_path prices cheapest for the capability (the direct kernel on the padded
  // planes, the transposed product reading its columns from them in place, or W times the image's
  // im2col columns); at 24 threads there are too few images for that and every output comes from
  // the product over the batch's columns. Each element must be the same fma chain everywhere: the
  // same bits on every path, capability and thread count. No case is a 3 x 3 kernel of stride 1
  // (float32 takes Winograd's transform there). The cases are chosen so that AVX2 takes the direct
  // and the gathered paths and AVX-512 all three.
  struct Case {
    std::int64_t in, height, width;
    nn::Conv2dOptions options;
  };
  const std::vector<Case> cases = {
      {3, 9, 13, nn::Conv2dOptions(3, 8, 3).padding(nn::kSame).dilation(2)},
      {20, 9, 11, nn::Conv2dOptions(20, 32, 3).padding(1).stride({1, 2})},
      {4, 17, 17, nn::Conv2dOptions(4, 6, 3).padding(1).stride(2)},
      {24, 8, 8, nn::Conv2dOptions(24, 16, 5).padding(2).groups(2)},
      {6, 9, 31, nn::Conv2dOptions(6, 12, {1, 3}).padding({0, 3}).dilation({1, 2}).stride({1, 2})},
      {8, 10, 10, nn::Conv2dOptions(8, 16, 4).padding(nn::kSame)},
      {10, 7, 7, nn::Conv2dOptions(10, 24, 3).padding(3).dilation(2)},
      {16, 20, 36, nn::Conv2dOptions(16, 40, 5).padding(2)},
  };
  const char* names[] = {"direct", "gathered", "columns"};
  for (sorix::Dtype dt : kDtypes) {
    std::map<std::string, std::set<std::string>> taken;  // capability -> paths its cases took
    for (std::size_t i = 0; i < cases.size(); ++i) {
      for (bool bias : {true, false}) {
        INFO(sorix::dtype_name(dt) << " case " << i << " bias " << bias);
        nn::Conv2dOptions options = cases[i].options;
        options.bias(bias);
        const Case& c = cases[i];
        auto run = [&] {
          sorix::manual_seed(15);
          nn::Conv2d conv(options, dt);
          const Tensor x = sorix::randn({40, c.in, c.height, c.width}, dt);
          sorix::NoGradGuard no_grad;
          return conv(x);
        };
        const auto per_capability = sorix::testing::at_capabilities([&] {
          const auto runs = sorix::testing::at_thread_counts({1, 24}, run);
          const Shape ys = runs[0].shape();
          sorix::kernels::ConvGeometry g{};
          g.C = static_cast<std::size_t>(c.in);
          g.sw = static_cast<std::size_t>(options.stride()[1]);
          g.OH = static_cast<std::size_t>(ys[2]);
          g.OW = static_cast<std::size_t>(ys[3]);
          const std::size_t groups = static_cast<std::size_t>(options.groups());
          const std::size_t K = g.C / groups * static_cast<std::size_t>(options.kernel_size()[0] *
                                                                         options.kernel_size()[1]);
          const std::size_t outs = static_cast<std::size_t>(options.out_channels()) / groups;
          const auto path = dt == sorix::float32 ? sorix::kernels::conv_forward_path<float>(g, outs, K)
                                                 : sorix::kernels::conv_forward_path<double>(g, outs, K);
          return std::make_pair(names[static_cast<int>(path)], runs);
        });
        for (const auto& [cap, result] : per_capability) {
          INFO("capability " << cap << " path " << result.first);
          taken[cap].insert(result.first);
          CHECK(sorix::testing::bit_identical(result.second[0], result.second[1]));
          CHECK(sorix::testing::bit_identical(result.second[0], per_capability[0].second.second[0]));
        }
      }
    }
    if (dt == sorix::float32) {
      if (taken.count("avx2") != 0) CHECK(taken["avx2"].count("direct") + taken["avx2"].count("gathered") == 2);
      if (taken.count("avx512") != 0) CHECK(taken["avx512"].size() == 3);
    }
  }
}

TEST_CASE("Conv2d's input gradient, made image by image, has the bits of the recorded formulas",
          "[nn][conv][determinism]") {
  // Strided, without create_graph each image's columns' gradient is made by its task and added
  // into its planes at once; create_graph makes the same gradient from recorded ops (matmul over
  // the batch, then col2im): the same chains and the same additions. At stride 1 both make it as
  // a convolution of the output gradient, recorded under create_graph: the same bits again.
  for (sorix::Dtype dt : kDtypes) {
    for (std::int64_t groups : {1, 2}) {
      for (std::int64_t stride : {1, 2}) {
        INFO(sorix::dtype_name(dt) << " groups " << groups << " stride " << stride);
        sorix::manual_seed(21);
        nn::Conv2d conv(nn::Conv2dOptions(20, 8, 3).padding(1).stride(stride).groups(groups), dt);
        const Tensor x = sorix::randn({4, 20, 30, 30}, dt).requires_grad_(true);
        const std::int64_t out = stride == 1 ? 30 : 15;
        const Tensor gy = sorix::randn({4, 8, out, out}, dt);
        const Tensor plain = sorix::autograd::grad({(conv(x) * gy).sum()}, {x})[0];
        const Tensor recorded = sorix::autograd::grad({(conv(x) * gy).sum()}, {x}, {}, /*create_graph=*/true)[0];
        CHECK(sorix::testing::bit_identical(plain, recorded.detach()));
      }
    }
  }
}

TEST_CASE("Conv2d's bias gradient alone (frozen weights) has the bits it has beside the weight gradient",
          "[nn][conv][determinism]") {
  // Beside the weights the bias is the chain of a row of ones in the weight gradient's product;
  // alone it is one add chain per channel: the same additions in the same order.
  for (sorix::Dtype dt : kDtypes) {
    INFO(sorix::dtype_name(dt));
    for (std::int64_t groups : {1, 2}) {
      INFO("groups " << groups);
      auto bias_grad = [&](bool frozen) {
        sorix::manual_seed(4);
        nn::Conv2d conv(nn::Conv2dOptions(4, 32, 3).padding(1).groups(groups), dt);
        if (frozen) conv.weight.requires_grad_(false);
        const Tensor x = sorix::randn({40, 4, 7, 9}, dt);
        Tensor y = conv(x);
        (y * y).sum().backward();
        CHECK(conv.weight.grad().defined() == !frozen);
        return conv.bias.grad();
      };
      // 24 threads: too few images to make them the tasks, the batch's columns kept instead.
      const auto runs = sorix::testing::at_thread_counts({1, 3, 24}, [&] {
        return std::vector<Tensor>{bias_grad(true), bias_grad(false)};
      });
      for (const auto& run : runs) CHECK(sorix::testing::bit_identical(run[0], run[1]));
      CHECK(sorix::testing::bit_identical(runs[1][0], runs[0][0]));
      CHECK(sorix::testing::bit_identical(runs[2][0], runs[0][0]));
    }
  }
}

TEST_CASE("MaxPool2d with padding or dilation follows the rule written out, inside and at the border",
          "[nn][conv][pool]") {
  // Windows inside the plane go branch-free, four outputs side by side; the border's with bounds
  // tests. Both must be the rule: taps in (row, column) order, the first in the plane taken, a
  // later one replacing it when greater or NaN. Values from a small set (ties everywhere),
  // infinities and NaNs; geometries with overhangs (ceil mode), dilation, strides 1 to 3, planes
  // narrower than four outputs.
  struct Geo {
    std::int64_t H, W, kh, kw, sh, sw, ph, pw, dh, dw;
    bool ceil;
  };
  const std::vector<Geo> geos = {{13, 17, 3, 3, 2, 2, 1, 1, 1, 1, false}, {12, 23, 5, 5, 1, 1, 2, 2, 1, 1, false},
                                 {11, 19, 3, 2, 3, 2, 1, 1, 2, 3, true},  {7, 6, 3, 3, 2, 2, 1, 1, 1, 1, true},
                                 {9, 40, 2, 4, 1, 3, 1, 2, 3, 1, false},  {5, 3, 3, 3, 1, 1, 1, 1, 1, 1, false}};
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  const float pool[] = {-inf, -1.0f, 0.0f, 0.0f, 1.0f, 2.0f, 2.0f, inf, nan, -0.0f};
  for (std::size_t gi = 0; gi < geos.size(); ++gi) {
    const Geo& e = geos[gi];
    INFO("geometry " << gi);
    std::vector<float> xs(std::size_t(2 * e.H * e.W));
    std::uint32_t r = 12345u + std::uint32_t(gi);
    for (float& v : xs) {
      r = r * 1664525u + 1013904223u;
      v = pool[(r >> 24) % 10];
    }
    const Tensor x = sorix::tensor(std::vector<double>(xs.begin(), xs.end()), {1, 2, e.H, e.W}, sorix::float32);
    const auto [y, idx] = F::max_pool2d_with_indices(
        x, nn::MaxPool2dOptions({e.kh, e.kw}).stride({e.sh, e.sw}).padding({e.ph, e.pw}).dilation({e.dh, e.dw}).ceil_mode(e.ceil));
    const std::int64_t OH = y.size(2), OW = y.size(3);
    const std::vector<float> got = sorix::testing::values_of<float>(y);
    const std::vector<std::int64_t> got_idx = sorix::testing::values_of<std::int64_t>(idx);
    bool same = true;
    for (std::int64_t c = 0; c < 2; ++c)
      for (std::int64_t oh = 0; oh < OH; ++oh)
        for (std::int64_t ow = 0; ow < OW; ++ow) {
          float best = 0.0f;
          std::int64_t at = -1;
          for (std::int64_t ki = 0; ki < e.kh; ++ki)
            for (std::int64_t kj = 0; kj < e.kw; ++kj) {
              const std::int64_t h = oh * e.sh - e.ph + ki * e.dh, w = ow * e.sw - e.pw + kj * e.dw;
              if (h < 0 || w < 0 || h >= e.H || w >= e.W) continue;
              const float v = xs[std::size_t((c * e.H + h) * e.W + w)];
              if (at < 0 || v > best || std::isnan(v)) {
                best = v;
                at = h * e.W + w;
              }
            }
          const std::size_t o = std::size_t((c * OH + oh) * OW + ow);
          same = same && std::memcmp(&best, &got[o], sizeof(float)) == 0 && at == got_idx[o];
        }
    CHECK(same);
  }
}

TEST_CASE("bad conv and pooling options raise errors naming the layer and the value", "[nn][conv][errors]") {
  CHECK(contains(message_of([] { nn::Conv2d(nn::Conv2dOptions(3, 4, 0)); }), "Conv2d"));
  CHECK(contains(message_of([] { nn::Conv2d(nn::Conv2dOptions(3, 4, 0)); }), "kernel_size must be >= 1, got (0, 0)"));
  CHECK(contains(message_of([] { nn::Conv2d(nn::Conv2dOptions(3, 4, 3).padding(-1)); }), "padding must be >= 0"));
  CHECK(contains(message_of([] { nn::Conv2d(nn::Conv2dOptions(3, 4, 3).groups(2)); }), "in_channels (3) must be divisible by groups (2)"));
  CHECK(contains(message_of([] { nn::Conv2d(nn::Conv2dOptions(4, 3, 3).groups(2)); }), "out_channels (3) must be divisible by groups (2)"));
  CHECK(contains(message_of([] { nn::Conv2d(nn::Conv2dOptions(4, 4, 3).stride(2).padding(nn::kSame)); }), "padding='same'"));
  CHECK(contains(message_of([] { nn::Conv1d(nn::Conv1dOptions(0, 4, 3)); }), "Conv1d: in_channels must be >= 1, got 0"));
  CHECK(contains(message_of([] { nn::ConvTranspose2d(nn::ConvTranspose2dOptions(4, 4, 3).output_padding(1)); }), "output_padding"));
  nn::Conv2d conv(nn::Conv2dOptions(3, 4, 3));
  std::string m = message_of([&] { conv(sorix::zeros({2, 3, 5})); });
  CHECK(contains(m, "conv2d"));
  CHECK(contains(m, "[2, 3, 5]"));
  CHECK(contains(message_of([&] { conv(sorix::zeros({2, 5, 8, 8})); }), "has 5 channels"));
  CHECK(contains(message_of([&] { conv(sorix::zeros({1, 3, 2, 2})); }), "smaller than the dilated kernel"));
  CHECK(contains(message_of([&] { conv(sorix::zeros({1, 3, 5, 5}, sorix::int64)); }), "floating"));
  CHECK(contains(message_of([] { nn::MaxPool2d(nn::MaxPool2dOptions(0)); }), "MaxPool2d: kernel_size must be >= 1"));
  CHECK(contains(message_of([] { nn::MaxPool2d(nn::MaxPool2dOptions(2).padding(2)); }), "at most half the kernel size"));
  CHECK(contains(message_of([] { nn::AvgPool2d(nn::AvgPool2dOptions(2).stride(0)); }), "AvgPool2d: stride must be >= 1"));
  CHECK(contains(message_of([] { nn::AdaptiveAvgPool2d(nn::AdaptiveAvgPool2dOptions({0, 2})); }), "output_size"));
  CHECK(contains(message_of([] { F::max_pool2d(sorix::zeros({4, 4}), nn::MaxPool2dOptions(2)); }), "max_pool2d: expected a 3-D"));
  CHECK(contains(message_of([] { nn::BatchNorm2d(3)(sorix::zeros({2, 3, 4})); }), "BatchNorm2d: expected 4D input"));
  // A failed call leaves the layer usable.
  CHECK(conv(sorix::zeros({1, 3, 5, 5})).shape() == Shape{1, 4, 3, 3});
}

TEST_CASE("conv and pooling modules print as PyTorch's", "[nn][conv]") {
  CHECK(nn::Conv2d(nn::Conv2dOptions(1, 32, 3).padding(1)).extra_repr() == "1, 32, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1)");
  CHECK(nn::Conv1d(nn::Conv1dOptions(2, 4, 5).bias(false).groups(2)).extra_repr() ==
        "2, 4, kernel_size=(5,), stride=(1,), groups=2, bias=False");
  CHECK(nn::Conv2d(nn::Conv2dOptions(2, 2, 3).padding(nn::kSame)).extra_repr() ==
        "2, 2, kernel_size=(3, 3), stride=(1, 1), padding=same");
  CHECK(nn::MaxPool2d(nn::MaxPool2dOptions(2)).extra_repr() ==
        "kernel_size=(2, 2), stride=(2, 2), padding=(0, 0), dilation=(1, 1), ceil_mode=False");
}
