// Depthwise convolutions (groups == input channels) of stride 1, which conv2d runs as direct
// chains per plane (nn/src/conv_depthwise.hpp): the bits of the arithmetic that header defines
// (forward, input gradient, the weight and bias gradients' 16 chains per tap), agreement with
// the same layer computed channel by channel as ordinary convolutions, thread and capability
// invariance, float64 gradients, double backward, and the geometries left to the general path.
#include <catch2/catch.hpp>

#include <cstring>
#include <vector>

#include "support/capabilities.hpp"
#include "support/double_backward.hpp"
#include "support/gradcheck.hpp"
#include "support/values.hpp"

#include <sorix/sorix.hpp>

using sorix::Tensor;
namespace nn = sorix::nn;
namespace F = sorix::nn::functional;

namespace {

struct Case {
  std::int64_t N, C, m, H, W, kh, kw, ph, pw, dh, dw;
  bool bias;
  bool same = false;  // padding 'same': ph, pw are the padding before (span / 2), the rest after
  std::int64_t OH() const { return same ? H : H + 2 * ph - dh * (kh - 1); }
  std::int64_t OW() const { return same ? W : W + 2 * pw - dw * (kw - 1); }
};

// The cases every test below runs: one output per group and several, taps of 1 x 5 to 7 x 7,
// dilations, paddings from 0 to the kernel's whole span, rows shorter and longer than 16 columns
// with every kind of tail, a one-row (Conv1d-like) plane, planes smaller than the kernel, and
// 'same' padding of even kernels (1 before, 2 after: the input gradient's padding is 2 before,
// 1 after).
const std::vector<Case> kCases = {
    {3, 5, 1, 9, 28, 3, 3, 1, 1, 1, 1, true},  {2, 4, 3, 7, 19, 3, 5, 2, 1, 1, 2, false},
    {4, 3, 2, 6, 33, 2, 2, 1, 0, 1, 1, true},  {1, 2, 1, 1, 40, 1, 5, 0, 2, 1, 1, true},
    {5, 8, 1, 17, 17, 7, 7, 3, 3, 1, 1, true}, {2, 6, 1, 5, 16, 3, 3, 2, 2, 1, 1, true},
    {3, 3, 2, 2, 3, 5, 5, 2, 4, 1, 2, true},   {2, 4, 1, 6, 21, 4, 4, 1, 1, 1, 1, true, true},
};

Tensor weight_of(const Case& cs, sorix::Dtype dt) { return sorix::randn({cs.C * cs.m, 1, cs.kh, cs.kw}).to(dt); }

F::Conv2dFuncOptions options_of(const Case& cs, const Tensor& b) {
  F::Conv2dFuncOptions o;
  if (cs.same) o.padding(nn::kSame);
  else o.padding({cs.ph, cs.pw});
  o.dilation({cs.dh, cs.dw}).groups(cs.C);
  if (b.defined()) o.bias(b);
  return o;
}

// x's value at (n, c, r, q) of the plane zero-padded as the case says, or 0 outside it.
template <class T>
T padded(const std::vector<T>& x, const Case& cs, std::int64_t n, std::int64_t c, std::int64_t r, std::int64_t q) {
  const std::int64_t h = r - cs.ph, w = q - cs.pw;
  if (h < 0 || w < 0 || h >= cs.H || w >= cs.W) return T(0);
  return x[std::size_t(((n * cs.C + c) * cs.H + h) * cs.W + w)];
}

struct Results {
  std::vector<Tensor> tensors;  // y, dx, dw, db (db undefined without a bias)
};

// The layer's output and gradients for output gradient gy (as the caller's dtype).
template <class T>
Results run_layer(const Case& cs, const Tensor& x0, const Tensor& w0, const Tensor& b0, const Tensor& gy) {
  const Tensor x = x0.clone().requires_grad_(true), w = w0.clone().requires_grad_(true);
  const Tensor b = b0.defined() ? b0.clone().requires_grad_(true) : Tensor();
  Tensor y = F::conv2d(x, w, options_of(cs, b));
  y.backward(gy);
  return Results{{y.detach(), x.grad(), w.grad(), b.defined() ? b.grad() : Tensor()}};
}

// The arithmetic conv_depthwise.hpp defines, written out: y = +0, fma over the taps in order,
// then + b; dx = +0, fma over (output of the group, rotated tap) in order, the gradient padded by
// span - p before; dw / db: 16 chains per tap by ow % 16 over the images, rows and columns in
// order, folded by halves (one chunk of the batch tree: no more than 32 images).
template <class T>
std::vector<std::vector<T>> definition(const Case& cs, const std::vector<T>& x, const std::vector<T>& w,
                                       const std::vector<T>& b, const std::vector<T>& gy) {
  const std::int64_t OH = cs.OH(), OW = cs.OW(), OC = cs.C * cs.m, taps = cs.kh * cs.kw;
  std::vector<T> y(std::size_t(cs.N * OC * OH * OW)), dx(x.size()), dw(w.size()), db(cs.bias ? std::size_t(OC) : 0);
  for (std::int64_t n = 0; n < cs.N; ++n)
    for (std::int64_t o = 0; o < OC; ++o)
      for (std::int64_t oh = 0; oh < OH; ++oh)
        for (std::int64_t ow = 0; ow < OW; ++ow) {
          T acc = T(0);
          for (std::int64_t ki = 0; ki < cs.kh; ++ki)
            for (std::int64_t kj = 0; kj < cs.kw; ++kj)
              acc = std::fma(w[std::size_t(o * taps + ki * cs.kw + kj)],
                             padded(x, cs, n, o / cs.m, oh + ki * cs.dh, ow + kj * cs.dw), acc);
          y[std::size_t(((n * OC + o) * OH + oh) * OW + ow)] = cs.bias ? acc + b[std::size_t(o)] : acc;
        }
  const std::int64_t th = (cs.kh - 1) * cs.dh - cs.ph, tw = (cs.kw - 1) * cs.dw - cs.pw;
  for (std::int64_t n = 0; n < cs.N; ++n)
    for (std::int64_t c = 0; c < cs.C; ++c)
      for (std::int64_t h = 0; h < cs.H; ++h)
        for (std::int64_t v = 0; v < cs.W; ++v) {
          T acc = T(0);
          for (std::int64_t o = c * cs.m; o < c * cs.m + cs.m; ++o)
            for (std::int64_t a = 0; a < cs.kh; ++a)
              for (std::int64_t e = 0; e < cs.kw; ++e) {
                const std::int64_t oh = h + a * cs.dh - th, ow = v + e * cs.dw - tw;
                const T g = oh >= 0 && ow >= 0 && oh < OH && ow < OW ? gy[std::size_t(((n * OC + o) * OH + oh) * OW + ow)]
                                                                      : T(0);
                acc = std::fma(w[std::size_t(o * taps + (cs.kh - 1 - a) * cs.kw + (cs.kw - 1 - e))], g, acc);
              }
          dx[std::size_t(((n * cs.C + c) * cs.H + h) * cs.W + v)] = acc;
        }
  auto folded = [](T* lanes) {
    for (std::size_t half = 8; half >= 1; half /= 2)
      for (std::size_t j = 0; j < half; ++j) lanes[j] = lanes[j] + lanes[j + half];
    return lanes[0];
  };
  for (std::int64_t o = 0; o < OC; ++o) {
    for (std::int64_t k = 0; k < taps; ++k) {
      T lanes[16] = {};
      for (std::int64_t n = 0; n < cs.N; ++n)
        for (std::int64_t oh = 0; oh < OH; ++oh)
          for (std::int64_t ow = 0; ow < OW; ++ow)
            lanes[ow % 16] = std::fma(padded(x, cs, n, o / cs.m, oh + k / cs.kw * cs.dh, ow + k % cs.kw * cs.dw),
                                      gy[std::size_t(((n * OC + o) * OH + oh) * OW + ow)], lanes[ow % 16]);
      dw[std::size_t(o * taps + k)] = folded(lanes);
    }
    if (!cs.bias) continue;
    T lanes[16] = {};
    for (std::int64_t n = 0; n < cs.N; ++n)
      for (std::int64_t oh = 0; oh < OH; ++oh)
        for (std::int64_t ow = 0; ow < OW; ++ow) lanes[ow % 16] += gy[std::size_t(((n * OC + o) * OH + oh) * OW + ow)];
    db[std::size_t(o)] = folded(lanes);
  }
  return {y, dx, dw, db};
}

template <class T>
void check_against_definition(sorix::Dtype dt) {
  for (std::size_t i = 0; i < kCases.size(); ++i) {
    const Case& cs = kCases[i];
    INFO("case " << i);
    sorix::manual_seed(100 + i);
    const Tensor x = sorix::randn({cs.N, cs.C, cs.H, cs.W}).to(dt), w = weight_of(cs, dt);
    const Tensor b = cs.bias ? sorix::randn({cs.C * cs.m}).to(dt) : Tensor();
    const Tensor gy = sorix::randn({cs.N, cs.C * cs.m, cs.OH(), cs.OW()}).to(dt);
    const Results got = run_layer<T>(cs, x, w, b, gy);
    const auto want = definition<T>(cs, sorix::testing::values_of<T>(x), sorix::testing::values_of<T>(w),
                                    cs.bias ? sorix::testing::values_of<T>(b) : std::vector<T>{},
                                    sorix::testing::values_of<T>(gy));
    const char* names[] = {"y", "dx", "dw", "db"};
    for (std::size_t k = 0; k < (cs.bias ? 4u : 3u); ++k) {
      INFO(names[k]);
      const std::vector<T> g = sorix::testing::values_of<T>(got.tensors[k]);
      REQUIRE(g.size() == want[k].size());
      CHECK(std::memcmp(g.data(), want[k].data(), g.size() * sizeof(T)) == 0);
    }
  }
}

double max_abs(const Tensor& t) { return t.to(sorix::float64).abs().max().item<double>(); }
double max_abs_diff(const Tensor& a, const Tensor& b) { return max_abs(a.to(sorix::float64) - b.to(sorix::float64)); }

// The same layer as C ordinary convolutions of one channel each (groups 1: the general path),
// their outputs and gradients concatenated.
Results channel_by_channel(const Case& cs, const Tensor& x0, const Tensor& w0, const Tensor& b0, const Tensor& gy,
                           std::int64_t stride) {
  const Tensor x = x0.clone().requires_grad_(true), w = w0.clone().requires_grad_(true);
  const Tensor b = b0.defined() ? b0.clone().requires_grad_(true) : Tensor();
  std::vector<Tensor> ys;
  for (std::int64_t c = 0; c < cs.C; ++c) {
    F::Conv2dFuncOptions o;
    if (cs.same) o.padding(nn::kSame);
    else o.padding({cs.ph, cs.pw});
    o.dilation({cs.dh, cs.dw}).stride(stride);
    if (b.defined()) o.bias(b.narrow(0, c * cs.m, cs.m));
    ys.push_back(F::conv2d(x.narrow(1, c, 1), w.narrow(0, c * cs.m, cs.m), o));
  }
  Tensor y = sorix::cat(ys, 1);
  y.backward(gy);
  return Results{{y.detach(), x.grad(), w.grad(), b.defined() ? b.grad() : Tensor()}};
}

}  // namespace

TEST_CASE("Depthwise Conv2d has the bits of the arithmetic conv_depthwise.hpp defines", "[nn][conv][depthwise]") {
  SECTION("float32") { check_against_definition<float>(sorix::float32); }
  SECTION("float64") { check_against_definition<double>(sorix::float64); }
}

TEST_CASE("Depthwise Conv2d agrees with the layer computed channel by channel", "[nn][conv][depthwise]") {
  // Every case, more images (70: three chunks of the batch tree), and the geometries the
  // depthwise path leaves to the general one (stride 2; padding past the kernel's span), in
  // float32 against float64 channel-by-channel convolutions: within float32 rounding.
  std::vector<std::pair<Case, std::int64_t>> cases;
  for (const Case& cs : kCases) cases.push_back({cs, 1});
  cases.push_back({{70, 3, 2, 6, 21, 3, 3, 1, 1, 1, 1, true}, 1});
  cases.push_back({{3, 4, 1, 9, 20, 3, 3, 1, 1, 1, 1, true}, 2});
  cases.push_back({{2, 3, 1, 5, 7, 3, 3, 3, 1, 1, 1, true}, 1});
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const auto& [cs, stride] = cases[i];
    INFO("case " << i);
    sorix::manual_seed(200 + i);
    const Tensor x = sorix::randn({cs.N, cs.C, cs.H, cs.W}), w = weight_of(cs, sorix::float32);
    const Tensor b = cs.bias ? sorix::randn({cs.C * cs.m}) : Tensor();
    F::Conv2dFuncOptions o = options_of(cs, b);
    o.stride(stride);
    const Tensor xg = x.clone().requires_grad_(true), wg = w.clone().requires_grad_(true);
    const Tensor bg = b.defined() ? b.clone().requires_grad_(true) : Tensor();
    if (bg.defined()) o.bias(bg);
    Tensor y = F::conv2d(xg, wg, o);
    const Tensor gy = sorix::randn(y.shape());
    y.backward(gy);
    const Results want = channel_by_channel(cs, x.to(sorix::float64), w.to(sorix::float64),
                                            b.defined() ? b.to(sorix::float64) : Tensor(), gy.to(sorix::float64), stride);
    const double tol = 2e-6;
    CHECK(max_abs_diff(y, want.tensors[0]) <= tol * max_abs(want.tensors[0]));
    CHECK(max_abs_diff(xg.grad(), want.tensors[1]) <= tol * max_abs(want.tensors[1]));
    CHECK(max_abs_diff(wg.grad(), want.tensors[2]) <= tol * max_abs(want.tensors[2]));
    if (bg.defined()) CHECK(max_abs_diff(bg.grad(), want.tensors[3]) <= tol * max_abs(want.tensors[3]));
  }
}

TEST_CASE("Depthwise Conv2d is bit-identical on every capability and thread count", "[nn][conv][depthwise][determinism]") {
  // 40 images: two chunks of the batch tree (32 + 8) for the weight and bias gradients.
  const Case cs{40, 6, 2, 11, 37, 3, 3, 1, 1, 1, 1, true};
  sorix::manual_seed(5);
  const Tensor x = sorix::randn({cs.N, cs.C, cs.H, cs.W}), w = weight_of(cs, sorix::float32);
  const Tensor b = sorix::randn({cs.C * cs.m}), gy = sorix::randn({cs.N, cs.C * cs.m, cs.OH(), cs.OW()});
  const auto runs = sorix::testing::at_capabilities([&] {
    return sorix::testing::at_thread_counts({1, 2, 3, 8}, [&] { return run_layer<float>(cs, x, w, b, gy); });
  });
  const Results& first = runs.front().second.front();
  for (const auto& [capability, by_threads] : runs)
    for (std::size_t t = 0; t < by_threads.size(); ++t)
      for (std::size_t k = 0; k < 4; ++k) {
        INFO(capability << " thread-count run " << t << " tensor " << k);
        CHECK(sorix::testing::bit_identical(by_threads[t].tensors[k], first.tensors[k]));
      }
  // An image alone gives its rows of the batch's output and input gradient.
  const Case one_image{1, cs.C, cs.m, cs.H, cs.W, cs.kh, cs.kw, cs.ph, cs.pw, cs.dh, cs.dw, true};
  const Results one = run_layer<float>(one_image, x.narrow(0, 7, 1), w, b, gy.narrow(0, 7, 1));
  CHECK(sorix::testing::bit_identical(one.tensors[0][0], first.tensors[0][7]));
  CHECK(sorix::testing::bit_identical(one.tensors[1][0], first.tensors[1][7]));
}

TEST_CASE("Depthwise Conv2d's float64 gradients match finite differences", "[nn][conv][depthwise]") {
  const Tensor x = sorix::testing::randn_f64({2, 3, 5, 6}, 1), w = sorix::testing::randn_f64({6, 1, 3, 2}, 2);
  const Tensor b = sorix::testing::randn_f64({6}, 3);
  const auto r = sorix::testing::gradcheck(
      [](const std::vector<Tensor>& in) {
        return F::conv2d(in[0], in[1], F::Conv2dFuncOptions().bias(in[2]).padding({2, 1}).dilation({2, 1}).groups(3));
      },
      {x, w, b});
  INFO(r.message);
  CHECK(r.ok);
  const Tensor x1 = sorix::testing::randn_f64({2, 4, 30}, 4), w1 = sorix::testing::randn_f64({4, 1, 5}, 5);
  const auto r1 = sorix::testing::gradcheck(
      [](const std::vector<Tensor>& in) {
        return F::conv1d(in[0], in[1], F::Conv1dFuncOptions().padding(nn::kSame).groups(4));
      },
      {x1, w1});
  INFO(r1.message);
  CHECK(r1.ok);
}

TEST_CASE("Depthwise Conv2d differentiates twice, and frozen weights keep the bias's bits", "[nn][conv][depthwise]") {
  sorix::manual_seed(9);
  nn::Conv2d conv(nn::Conv2dOptions(8, 16, 3).padding(1).groups(8));
  const Tensor x = sorix::randn({3, 8, 9, 10}).requires_grad_(true);
  sorix::testing::check_double_backward(conv, x, conv.weight);

  conv(x).pow(2).sum().backward();
  const Tensor bias_grad = conv.bias.grad().clone();
  conv.zero_grad();
  conv.weight.requires_grad_(false);
  conv(x.detach()).pow(2).sum().backward();
  CHECK(sorix::testing::bit_identical(conv.bias.grad(), bias_grad));
  CHECK_FALSE(conv.weight.grad().defined());
}
