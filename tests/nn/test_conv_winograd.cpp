// Conv2d's Winograd F(2x2, 3x3) path (float32, 3 x 3 kernels of stride 1 with 16 or more channels
// per group): the bits of the arithmetic its header defines, agreement with the float64
// convolution, thread invariance, images that do not interact, and double backward.
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <utility>
#include <vector>

#include "support/double_backward.hpp"
#include "support/gradcheck.hpp"
#include "support/values.hpp"
#include "support/winograd_definition.hpp"

#include <sorix/sorix.hpp>

using sorix::Tensor;
namespace nn = sorix::nn;
namespace F = sorix::nn::functional;

namespace {

// One image's input tiles as winograd.hpp defines them: in [Cin][H][W] padded by p; element
// (t * Cin + c) * 16 + xi is B^T d B of tile t = th * TW + tw (rows first, then columns).
std::vector<float> input_tiles(const std::vector<float>& in, std::size_t Cin, std::size_t H, std::size_t W,
                               std::size_t p) {
  const std::size_t TH = (H + 2 * p - 1) / 2, TW = (W + 2 * p - 1) / 2;  // ceil(O / 2), O = H + 2p - 2
  std::vector<float> v(TH * TW * Cin * 16);
  auto at = [&](std::size_t c, std::ptrdiff_t r, std::ptrdiff_t q) {
    if (r < 0 || q < 0 || r >= std::ptrdiff_t(H) || q >= std::ptrdiff_t(W)) return 0.0f;
    return in[(c * H + std::size_t(r)) * W + std::size_t(q)];
  };
  for (std::size_t th = 0; th < TH; ++th)
    for (std::size_t tw = 0; tw < TW; ++tw)
      for (std::size_t c = 0; c < Cin; ++c) {
        float d[4][4], w[4][4];
        for (int i = 0; i < 4; ++i)
          for (int j = 0; j < 4; ++j)
            d[i][j] = at(c, std::ptrdiff_t(2 * th + i) - std::ptrdiff_t(p), std::ptrdiff_t(2 * tw + j) - std::ptrdiff_t(p));
        for (int i = 0; i < 4; ++i) {
          w[i][0] = d[i][0] - d[i][2];
          w[i][1] = d[i][1] + d[i][2];
          w[i][2] = d[i][2] - d[i][1];
          w[i][3] = d[i][1] - d[i][3];
        }
        float* out = v.data() + ((th * TW + tw) * Cin + c) * 16;
        for (int j = 0; j < 4; ++j) {
          out[j] = w[0][j] - w[2][j];
          out[4 + j] = w[1][j] + w[2][j];
          out[8 + j] = w[2][j] - w[1][j];
          out[12 + j] = w[1][j] - w[3][j];
        }
      }
  return v;
}

// One image's output gradient g [Cout][OH][OW] through the output transform's adjoint: element
// (t * Cout + o) * 16 + xi is A g A^T of tile t's 2 x 2 values (0 past the plane), rows first.
std::vector<float> output_adjoint_tiles(const std::vector<float>& g, std::size_t Cout, std::size_t OH, std::size_t OW) {
  const std::size_t TH = (OH + 1) / 2, TW = (OW + 1) / 2;
  std::vector<float> m(TH * TW * Cout * 16);
  for (std::size_t th = 0; th < TH; ++th)
    for (std::size_t tw = 0; tw < TW; ++tw)
      for (std::size_t o = 0; o < Cout; ++o) {
        float r[2][4];
        for (std::size_t a = 0; a < 2; ++a) {
          const std::size_t row = 2 * th + a;
          auto at = [&](std::size_t col) { return row < OH && col < OW ? g[(o * OH + row) * OW + col] : 0.0f; };
          const float g0 = at(2 * tw), g1 = at(2 * tw + 1);
          r[a][0] = g0;
          r[a][1] = g0 + g1;
          r[a][2] = g0 - g1;
          r[a][3] = -g1;
        }
        float* out = m.data() + ((th * TW + tw) * Cout + o) * 16;
        for (int j = 0; j < 4; ++j) {
          out[j] = r[0][j];
          out[4 + j] = r[0][j] + r[1][j];
          out[8 + j] = r[0][j] - r[1][j];
          out[12 + j] = -r[1][j];
        }
      }
  return m;
}

// One image's input gradient as winograd.hpp defines it: Z = the fma chain over output channels o
// in order of U[o][c][xi] * M'[t][o][xi] (M' the output gradient's adjoint tiles), then each
// channel's plane through the input transform's adjoint (support's definition), cropped by p.
// dx [Cin][H][W].
template <class U>
std::vector<float> input_grad_by_definition(const std::vector<float>& g, std::size_t Cout, std::size_t OH,
                                            std::size_t OW, std::size_t Cin, std::size_t H, std::size_t W,
                                            std::size_t p, U u) {
  const std::size_t TH = (OH + 1) / 2, TW = (OW + 1) / 2;
  const std::vector<float> m = output_adjoint_tiles(g, Cout, OH, OW);
  std::vector<float> dx(Cin * H * W);
  for (std::size_t c = 0; c < Cin; ++c) {
    std::vector<float> z(TH * TW * 16);
    for (std::size_t t = 0; t < TH * TW; ++t)
      for (std::size_t xi = 0; xi < 16; ++xi) {
        float acc = 0.0f;
        for (std::size_t o = 0; o < Cout; ++o) acc = std::fma(u(o, c)[xi], m[(t * Cout + o) * 16 + xi], acc);
        z[t * 16 + xi] = acc;
      }
    const std::vector<float> plane = sorix::testing::winograd_input_adjoint_plane(
        [&](std::size_t t, std::size_t xi) { return z[t * 16 + xi]; }, TH, TW, H, W, p, p);
    std::copy(plane.begin(), plane.end(), dx.begin() + std::ptrdiff_t(c * H * W));
  }
  return dx;
}

// One image's convolution as winograd.hpp defines it, tile by tile: in [Cin][H][W] padded by p,
// out [Cout][OH][OW]; u(o, c) gives the 16 transformed values of kernel (o, c).
template <class U>
std::vector<float> by_definition(const std::vector<float>& in, std::size_t Cin, std::size_t H, std::size_t W,
                                 std::size_t p, std::size_t Cout, U u, const float* bias) {
  const std::size_t OH = H + 2 * p - 2, OW = W + 2 * p - 2, TW = (OW + 1) / 2;
  std::vector<float> out(Cout * OH * OW);
  const std::vector<float> tiles = input_tiles(in, Cin, H, W, p);
  for (std::size_t th = 0; 2 * th < OH; ++th)
    for (std::size_t tw = 0; 2 * tw < OW; ++tw) {
      const float* v = tiles.data() + (th * TW + tw) * Cin * 16;
      for (std::size_t o = 0; o < Cout; ++o) {
        float m[16];
        for (int xi = 0; xi < 16; ++xi) {
          float acc = 0.0f;
          for (std::size_t c = 0; c < Cin; ++c) acc = std::fma(u(o, c)[xi], v[c * 16 + std::size_t(xi)], acc);
          m[xi] = acc;
        }
        float z[4][2];
        for (int i = 0; i < 4; ++i) {
          z[i][0] = (m[4 * i] + m[4 * i + 1]) + m[4 * i + 2];
          z[i][1] = (m[4 * i + 1] - m[4 * i + 2]) - m[4 * i + 3];
        }
        for (std::size_t j = 0; j < 2; ++j) {
          float y[2] = {(z[0][j] + z[1][j]) + z[2][j], (z[1][j] - z[2][j]) - z[3][j]};
          for (std::size_t i = 0; i < 2; ++i) {
            if (2 * th + i >= OH || 2 * tw + j >= OW) continue;
            out[(o * OH + 2 * th + i) * OW + 2 * tw + j] = bias != nullptr ? y[i] + bias[o] : y[i];
          }
        }
      }
    }
  return out;
}

double max_abs(const Tensor& t) { return t.to(sorix::float64).abs().max().item<double>(); }
double max_abs_diff(const Tensor& a, const Tensor& b) { return max_abs(a.to(sorix::float64) - b.to(sorix::float64)); }

}  // namespace

TEST_CASE("Conv2d's Winograd forward and gradients have the bits of the arithmetic winograd.hpp defines",
          "[nn][conv][winograd]") {
  // 16 -> 17 channels (a ragged product), a ragged tile grid (7 x 9 outputs), padding 1; the input,
  // weight and bias gradients are the arithmetic's adjoint (from the output gradient's M').
  // 70 -> 80 channels too: more than the 64 kernels the weight transform takes at a time.
  for (const auto& channels : std::vector<std::pair<std::size_t, std::size_t>>{{16, 17}, {70, 80}}) {
    const std::size_t C = channels.first, OC = channels.second, H = 7, W = 9, p = 1;
    INFO(C << " -> " << OC << " channels");
    sorix::manual_seed(31);
    nn::Conv2d conv(nn::Conv2dOptions(C, OC, 3).padding(std::int64_t(p)));
    const Tensor x = sorix::randn({2, std::int64_t(C), std::int64_t(H), std::int64_t(W)}).requires_grad_(true);
    const Tensor gy = sorix::randn({2, std::int64_t(OC), std::int64_t(H), std::int64_t(W)});
    Tensor y = conv(x);
    y.backward(gy);
    const std::vector<float> xs = sorix::testing::values_of<float>(x.detach()), gs = sorix::testing::values_of<float>(gy);
    const std::vector<float> ws = sorix::testing::values_of<float>(conv.weight.detach());
    const std::vector<float> bs = sorix::testing::values_of<float>(conv.bias.detach());
    std::vector<float> u(OC * C * 16);
    for (std::size_t o = 0; o < OC; ++o)
      for (std::size_t c = 0; c < C; ++c)
        sorix::testing::winograd_weight_transform(ws.data() + (o * C + c) * 9, u.data() + (o * C + c) * 16);
    const std::vector<float> got_y = sorix::testing::values_of<float>(y.detach());
    const std::vector<float> got_dx = sorix::testing::values_of<float>(x.grad());
    for (std::size_t n = 0; n < 2; ++n) {
      INFO("image " << n);
      const std::vector<float> in(xs.begin() + std::ptrdiff_t(n * C * H * W), xs.begin() + std::ptrdiff_t((n + 1) * C * H * W));
      const std::vector<float> want_y = by_definition(in, C, H, W, p, OC, [&](std::size_t o, std::size_t c) {
        return u.data() + (o * C + c) * 16;
      }, bs.data());
      CHECK(std::memcmp(got_y.data() + n * OC * H * W, want_y.data(), want_y.size() * sizeof(float)) == 0);
      const std::vector<float> g(gs.begin() + std::ptrdiff_t(n * OC * H * W), gs.begin() + std::ptrdiff_t((n + 1) * OC * H * W));
      const std::vector<float> want_dx = input_grad_by_definition(g, OC, H, W, C, H, W, p, [&](std::size_t o, std::size_t c) {
        return u.data() + (o * C + c) * 16;
      });
      CHECK(std::memcmp(got_dx.data() + n * C * H * W, want_dx.data(), want_dx.size() * sizeof(float)) == 0);
    }
    // The weight gradient: for each transformed position, the fma chain over the images in order
    // and each image's tiles in order of M'[xi][o][t] * V[xi][c][t] (M' the output gradient's
    // adjoint tiles, V the input's tiles), then G^T du G; the bias: the add chain of the tiles' sums
    // M'[5] = (g00 + g01) + (g10 + g11) (one batch-tree chunk here: two images).
    const std::size_t tiles = ((H + 1) / 2) * ((W + 1) / 2);
    std::vector<float> du(OC * C * 16, 0.0f), want_db(OC, 0.0f);
    for (std::size_t n = 0; n < 2; ++n) {
      const std::vector<float> in(xs.begin() + std::ptrdiff_t(n * C * H * W), xs.begin() + std::ptrdiff_t((n + 1) * C * H * W));
      const std::vector<float> g(gs.begin() + std::ptrdiff_t(n * OC * H * W), gs.begin() + std::ptrdiff_t((n + 1) * OC * H * W));
      const std::vector<float> v = input_tiles(in, C, H, W, p), m = output_adjoint_tiles(g, OC, H, W);
      for (std::size_t t = 0; t < tiles; ++t)
        for (std::size_t o = 0; o < OC; ++o) {
          const float* mt = m.data() + (t * OC + o) * 16;
          want_db[o] = want_db[o] + mt[5];
          for (std::size_t c = 0; c < C; ++c)
            for (std::size_t xi = 0; xi < 16; ++xi) {
              float& acc = du[(o * C + c) * 16 + xi];
              acc = std::fma(mt[xi], v[(t * C + c) * 16 + xi], acc);
            }
        }
    }
    std::vector<float> want_dw(OC * C * 9);
    for (std::size_t k = 0; k < OC * C; ++k) sorix::testing::winograd_weight_grad_transform(du.data() + k * 16, want_dw.data() + k * 9);
    const std::vector<float> got_dw = sorix::testing::values_of<float>(conv.weight.grad());
    const std::vector<float> got_db = sorix::testing::values_of<float>(conv.bias.grad());
    CHECK(std::memcmp(got_dw.data(), want_dw.data(), want_dw.size() * sizeof(float)) == 0);
    CHECK(std::memcmp(got_db.data(), want_db.data(), want_db.size() * sizeof(float)) == 0);
  }
}

TEST_CASE("Conv2d's Winograd path agrees with the float64 convolution", "[nn][conv][winograd]") {
  // Paddings 0, 1 ('same') and 2, odd and even grids, 2 groups of 16, with and without bias: y and
  // every gradient within float32 rounding of the float64 layer's (im2col chains), measured
  // against the largest magnitude (a wrong transform is off by the values themselves).
  // The last case's 70 images make three batch-tree chunks (32 + 32 + 6) for the weight and bias
  // gradients.
  struct Case {
    std::int64_t images, in, out, groups, H, W;
    nn::Conv2dOptions options;
  };
  const std::vector<Case> cases = {
      {3, 16, 16, 1, 14, 14, nn::Conv2dOptions(16, 16, 3).padding(1)},
      {3, 32, 64, 1, 7, 7, nn::Conv2dOptions(32, 64, 3).padding(nn::kSame)},
      {3, 16, 24, 1, 9, 6, nn::Conv2dOptions(16, 24, 3).padding(0).bias(false)},
      {3, 32, 32, 2, 5, 8, nn::Conv2dOptions(32, 32, 3).padding(2).groups(2)},
      {3, 16, 16, 1, 3, 3, nn::Conv2dOptions(16, 16, 3).padding({2, 0})},
      {70, 16, 16, 1, 4, 5, nn::Conv2dOptions(16, 16, 3).padding(1)},
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    INFO("case " << i);
    const Case& cs = cases[i];
    sorix::manual_seed(40 + std::uint64_t(i));
    nn::Conv2d c32(cs.options);
    sorix::manual_seed(40 + std::uint64_t(i));
    nn::Conv2d c64(cs.options);  // the same parameters, then in float64
    c64.to(sorix::float64);
    const Tensor x = sorix::randn({cs.images, cs.in, cs.H, cs.W});
    const Tensor x32 = x.clone().requires_grad_(true), x64 = x.to(sorix::float64).requires_grad_(true);
    Tensor y32 = c32(x32), y64 = c64(x64);
    const Tensor gy = sorix::randn(y32.shape());
    y32.backward(gy);
    y64.backward(gy.to(sorix::float64));
    const double tol = 2e-6;
    CHECK(max_abs_diff(y32, y64) <= tol * max_abs(y64));
    CHECK(max_abs_diff(x32.grad(), x64.grad()) <= tol * max_abs(x64.grad()));
    CHECK(max_abs_diff(c32.weight.grad(), c64.weight.grad()) <= tol * max_abs(c64.weight.grad()));
    if (c32.bias.defined()) CHECK(max_abs_diff(c32.bias.grad(), c64.bias.grad()) <= tol * max_abs(c64.bias.grad()));
  }
}

TEST_CASE("Conv2d's Winograd path is bit-identical at any thread count, and images do not interact",
          "[nn][conv][winograd][determinism]") {
  for (std::int64_t groups : {1, 2}) {
    INFO("groups " << groups);
    // 40 images: two chunks of the batch tree (32 + 8) for the weight and bias gradients.
    // Threads past the chunks (3, 8) split the weight gradient's output channels: the input
    // gradient then makes its own M' (frozen parameters too), the same bits as beside them.
    auto run = [groups](std::int64_t images, bool frozen_weight, bool frozen_bias = false) {
      sorix::manual_seed(7);
      nn::Conv2d conv(nn::Conv2dOptions(32, 32, 3).padding(1).groups(groups));
      if (frozen_weight) conv.weight.requires_grad_(false);
      if (frozen_bias) conv.bias.requires_grad_(false);
      const Tensor x = sorix::randn({images, 32, 10, 11}).requires_grad_(true);
      Tensor y = conv(x);
      (y * y).sum().backward();
      return std::vector<Tensor>{y.detach(), x.grad(), frozen_weight ? Tensor() : conv.weight.grad(),
                                 frozen_bias ? Tensor() : conv.bias.grad()};
    };
    const auto runs = sorix::testing::at_thread_counts({1, 2, 3, 8}, [&] { return run(40, false); });
    for (std::size_t r = 1; r < runs.size(); ++r)
      for (std::size_t k = 0; k < runs[0].size(); ++k) {
        INFO("run " << r << " tensor " << k);
        CHECK(sorix::testing::bit_identical(runs[r][k], runs[0][k]));
      }
    // An image alone gives its rows of the batch's output and input gradient.
    const auto one = run(1, false);
    CHECK(sorix::testing::bit_identical(one[0][0], runs[0][0][0]));
    CHECK(sorix::testing::bit_identical(one[1][0], runs[0][1][0]));
    // Frozen weights: the bias gradient alone, with the bits it has beside the weight gradient.
    const auto frozen = run(40, true);
    CHECK(sorix::testing::bit_identical(frozen[3], runs[0][3]));
    CHECK(sorix::testing::bit_identical(frozen[1], runs[0][1]));
    const auto input_only = sorix::testing::at_thread_counts({1, 2}, [&] { return run(40, true, true); });
    for (const auto& r : input_only) CHECK(sorix::testing::bit_identical(r[1], runs[0][1]));
  }
}

TEST_CASE("Conv2d's Winograd path gives the same bits with several images' tiles in one product",
          "[nn][conv][winograd][determinism]") {
  // 400 channels: the transformed kernels (and the weight gradient's partial sums of a block of
  // 200 channels) outgrow the cache, so images share the products: at 1 thread 6 images a task in
  // the forward and input gradient (12 in the weight gradient's chunk), at 2 threads 3 (and the
  // weight gradient's blocks of 100 channels one image at a time), at 3 threads 2, at 8 threads
  // one. Then 2 groups of 272 channels on planes of 3 x 2 tiles (forward and input gradient
  // batched as above). Every tensor is the same at every count.
  for (const auto& shape : std::vector<std::array<std::int64_t, 4>>{{400, 1, 2, 3}, {544, 2, 5, 4}}) {
    const std::int64_t channels = shape[0], groups = shape[1], H = shape[2], W = shape[3];  // lambdas capture variables, not bindings (C++17)
    INFO("channels " << channels << " groups " << groups);
    auto run = [&] {
      sorix::manual_seed(17);
      nn::Conv2d conv(nn::Conv2dOptions(channels, channels, 3).padding(1).groups(groups));
      const Tensor x = sorix::randn({12, channels, H, W}).requires_grad_(true);
      Tensor y = conv(x);
      (y * y).sum().backward();
      return std::vector<Tensor>{y.detach(), x.grad(), conv.weight.grad(), conv.bias.grad()};
    };
    const auto runs = sorix::testing::at_thread_counts({1, 2, 3, 8}, run);
    for (std::size_t r = 1; r < runs.size(); ++r)
      for (std::size_t k = 0; k < runs[0].size(); ++k) {
        INFO("run " << r << " tensor " << k);
        CHECK(sorix::testing::bit_identical(runs[r][k], runs[0][k]));
      }
  }
  // An input gradient of no tiles (planes of height 0, padding 2: a 2-row output) among big kernels.
  nn::Conv2d wide(nn::Conv2dOptions(272, 272, 3).padding(2));
  const Tensor empty = sorix::randn({2, 272, 0, 3}).requires_grad_(true);
  wide(empty).sum().backward();
  CHECK(empty.grad().shape() == empty.shape());
}

TEST_CASE("Conv2d's gradients of an empty batch are zeros, on the Winograd, depthwise and im2col paths",
          "[nn][conv][winograd][depthwise]") {
  for (const auto& options : {nn::Conv2dOptions(16, 16, 3).padding(1), nn::Conv2dOptions(4, 8, 3),
                              nn::Conv2dOptions(4, 4, 3).padding(1).groups(4)}) {
    nn::Conv2d conv(options);
    const Tensor x = sorix::randn({0, options.in_channels(), 6, 6}).requires_grad_(true);
    conv(x).sum().backward();
    REQUIRE(conv.weight.grad().defined());
    CHECK(conv.weight.grad().shape() == conv.weight.shape());
    CHECK(max_abs(conv.weight.grad()) == 0.0);
    CHECK(max_abs(conv.bias.grad()) == 0.0);
    CHECK(x.grad().shape() == x.shape());
  }
}

TEST_CASE("Conv2d's Winograd layer differentiates twice (create_graph takes the im2col formulas)",
          "[nn][conv][winograd]") {
  // The recorded formulas give the same gradient up to rounding, and their own gradient (a double
  // backward) is defined.
  sorix::manual_seed(3);
  nn::Conv2d conv(nn::Conv2dOptions(16, 16, 3).padding(1));
  const Tensor x = sorix::randn({2, 16, 6, 6}).requires_grad_(true);
  sorix::testing::check_double_backward(conv, x, conv.weight);
}
