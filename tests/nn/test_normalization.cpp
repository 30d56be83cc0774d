// LayerNorm, GroupNorm, Dropout2d (nn/src/normalization.cpp): PyTorch 1.13 parity
// (tests/data/parity_layers_{layernorm,groupnorm}*.txt, scripts/gen_parity_layers.py), float64
// gradchecks (and second order), thread and capability invariance, Dropout2d's channel masks
// exactly, and errors naming the layer and the value.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include <sorix/autograd/node.hpp>
#include <sorix/sorix.hpp>

#include "tests/support/capabilities.hpp"
#include "tests/support/errors.hpp"
#include "tests/support/gradcheck.hpp"
#include "tests/support/parity.hpp"
#include "tests/support/values.hpp"

using namespace sorix;
namespace F = sorix::nn::functional;
using testing::bit_identical;
using testing::contains;
using testing::gradcheck;
using testing::message_of;
using testing::randn_f64;

namespace {

const std::vector<int> kThreads{1, 2, 3};
// dx of a norm is g minus its projections on 1 and xhat (terms of the size of g that cancel): its
// float32 rounding is relative to those terms, so errors are measured against 2% of the largest.
constexpr double kDxFloor = 0.02;

// Forward and gradient of `model` at 1, 2 and 3 threads and on every capability: bit-identical.
void check_invariant(nn::Module& model, const Shape& shape) {
  auto run = [&] {
    manual_seed(5);
    Tensor x = randn(shape).requires_grad_(true);
    model.zero_grad();
    Tensor y = model(x);
    (y * y).sum().backward();
    std::vector<Tensor> out{y, x.grad()};
    for (const Tensor& p : model.parameters()) out.push_back(p.grad());
    return out;
  };
  auto check_all = [](const std::vector<std::vector<Tensor>>& runs) {
    for (std::size_t r = 1; r < runs.size(); ++r) {
      for (std::size_t k = 0; k < runs[0].size(); ++k) CHECK(bit_identical(runs[0][k], runs[r][k]));
    }
  };
  check_all(testing::at_thread_counts(kThreads, run));
  std::vector<std::vector<Tensor>> caps;
  for (auto& [name, r] : testing::at_capabilities(run)) caps.push_back(r);
  check_all(caps);
}

}  // namespace

TEST_CASE("LayerNorm and GroupNorm match PyTorch (forward, input and parameter gradients)", "[nn][parity][norm]") {
  for (Dtype dt : parity::kDtypes) {
    for (const std::string name : {"layernorm", "layernorm_last_noaffine"}) {
      INFO(name << " " << dtype_name(dt));
      parity::Case c = parity::load(name, dt);
      const bool affine = c.tensors.count("weight") > 0;
      const Shape ns = name == "layernorm" ? Shape{4, 5} : Shape{6};
      nn::LayerNorm ln(nn::LayerNormOptions(ns).eps(c.scalars.at("eps")).elementwise_affine(affine), dt);
      if (affine) ln.load_state_dict({{"weight", c.at("weight")}, {"bias", c.at("bias")}});
      Tensor x = parity::param(c.at("x"));
      Tensor y = ln(x);
      parity::check_matches(y, c.at("y"), "y");
      y.backward(c.at("gy"));
      parity::check_matches(x.grad(), c.at("dx"), "dx", kDxFloor);
      if (affine) {
        parity::check_matches(ln.weight.grad(), c.at("dweight"), "dweight");
        parity::check_matches(ln.bias.grad(), c.at("dbias"), "dbias");
      }
    }
    // The last two have 16 (sample, group) rows or more: the fused op.
    const std::vector<std::pair<std::string, std::int64_t>> groupnorms{
        {"groupnorm", 2}, {"groupnorm_3d_eps", 3}, {"groupnorm_noaffine", 1}, {"groupnorm_fused", 4},
        {"groupnorm_fused_2d", 2}};
    for (const auto& [name, G] : groupnorms) {
      INFO(name << " " << dtype_name(dt));
      parity::Case c = parity::load(name, dt);
      const bool affine = c.tensors.count("weight") > 0;
      const std::int64_t C = c.at("x").size(1);
      nn::GroupNorm gn(nn::GroupNormOptions(G, C).eps(c.scalars.at("eps")).affine(affine), dt);
      if (affine) gn.load_state_dict({{"weight", c.at("weight")}, {"bias", c.at("bias")}});
      Tensor x = parity::param(c.at("x"));
      Tensor y = gn(x);
      parity::check_matches(y, c.at("y"), "y");
      y.backward(c.at("gy"));
      parity::check_matches(x.grad(), c.at("dx"), "dx", kDxFloor);
      if (affine) {
        parity::check_matches(gn.weight.grad(), c.at("dweight"), "dweight");
        parity::check_matches(gn.bias.grad(), c.at("dbias"), "dbias");
      }
    }
  }
}

TEST_CASE("layer_norm and group_norm: float64 gradchecks, also of the gradient", "[nn][norm][gradcheck]") {
  using V = std::vector<Tensor>;
  auto ln = [](const V& in) {
    return F::layer_norm(in[0], F::LayerNormFuncOptions({3, 4}).weight(in[1]).bias(in[2]).eps(1e-3));
  };
  auto r = gradcheck(ln, {randn_f64({2, 3, 4}, 1), randn_f64({3, 4}, 2), randn_f64({3, 4}, 3)});
  INFO(r.message);
  CHECK(r.ok);
  auto gn = [](const V& in) {
    return F::group_norm(in[0], F::GroupNormFuncOptions(2).weight(in[1]).bias(in[2]).eps(1e-3));
  };
  r = gradcheck(gn, {randn_f64({2, 4, 3}, 4), randn_f64({4}, 5), randn_f64({4}, 6)});
  INFO(r.message);
  CHECK(r.ok);
  // Second order: the gradient is composed from differentiable ops.
  auto ln_grad = [](const V& in) {
    Tensor y = F::layer_norm(in[0], F::LayerNormFuncOptions({5}).eps(1e-3));
    return autograd::grad({(y * y * y).sum()}, {in[0]}, {}, true, true, false)[0];
  };
  r = gradcheck(ln_grad, {randn_f64({3, 5}, 7)});
  INFO(r.message);
  CHECK(r.ok);
  auto gn_grad = [](const V& in) {
    Tensor y = F::group_norm(in[0], F::GroupNormFuncOptions(3).eps(1e-3));
    return autograd::grad({(y * y * y).sum()}, {in[0]}, {}, true, true, false)[0];
  };
  r = gradcheck(gn_grad, {randn_f64({2, 3, 4}, 8)});
  INFO(r.message);
  CHECK(r.ok);
}

namespace {

// LayerNorm over [rows, L] with weight w and/or bias b against its definition from 16 rows on (the
// fused op): y = fma(xhat, w, b) (xhat * w, xhat + b), xhat being layer_norm's output without
// them; the input's gradient that of xhat for g * w; dw and db each column's chain down the rows
// from +0 (fma(g, xhat, acc), acc + g): the rows fit one chunk of the batch tree.
template <class T>
void check_affine_definition(std::int64_t rows, std::int64_t L, bool weight, bool bias) {
  const Dtype dt = std::is_same_v<T, float> ? Dtype::Float32 : Dtype::Float64;
  INFO("rows " << rows << " L " << L << " weight " << weight << " bias " << bias << " " << dtype_name(dt));
  manual_seed(rows * 7 + L);
  const Tensor x0 = randn({rows, L}, dt), g = randn({rows, L}, dt);
  const Tensor w = weight ? randn({L}, dt).requires_grad_(true) : Tensor();
  const Tensor b = bias ? randn({L}, dt).requires_grad_(true) : Tensor();
  Tensor x = x0.clone().requires_grad_(true);
  Tensor y = F::layer_norm(x, F::LayerNormFuncOptions({L}).weight(w).bias(b));
  y.backward(g);
  Tensor x_plain = x0.clone().requires_grad_(true);
  Tensor xhat = F::layer_norm(x_plain, F::LayerNormFuncOptions({L}));
  xhat.backward(weight ? g * w.detach() : g);
  CHECK(bit_identical(x.grad(), x_plain.grad()));
  const std::vector<T> xh = testing::values_of<T>(xhat), gv = testing::values_of<T>(g), yv = testing::values_of<T>(y);
  const std::vector<T> wv = weight ? testing::values_of<T>(w) : std::vector<T>{};
  const std::vector<T> bv = bias ? testing::values_of<T>(b) : std::vector<T>{};
  std::vector<T> dw(std::size_t(L), T(0)), db(std::size_t(L), T(0));
  bool y_same = true;
  for (std::size_t r = 0; r < std::size_t(rows); ++r)
    for (std::size_t l = 0; l < std::size_t(L); ++l) {
      const std::size_t i = r * std::size_t(L) + l;
      const T want = weight && bias ? std::fma(xh[i], wv[l], bv[l]) : weight ? xh[i] * wv[l] : xh[i] + bv[l];
      y_same = y_same && std::memcmp(&want, &yv[i], sizeof(T)) == 0;
      dw[l] = std::fma(gv[i], xh[i], dw[l]);
      db[l] += gv[i];
    }
  CHECK(y_same);
  if (weight) {
    const std::vector<T> got = testing::values_of<T>(w.grad());
    CHECK(std::memcmp(got.data(), dw.data(), dw.size() * sizeof(T)) == 0);
  }
  if (bias) {
    const std::vector<T> got = testing::values_of<T>(b.grad());
    CHECK(std::memcmp(got.data(), db.data(), db.size() * sizeof(T)) == 0);
  }
}

}  // namespace

TEST_CASE("LayerNorm's fused op from 16 rows on: fma(xhat, w, b) and its gradients' column chains", "[nn][norm]") {
  for (const auto& [rows, L] : std::vector<std::pair<std::int64_t, std::int64_t>>{{16, 37}, {32, 16}, {20, 3}, {24, 100}})
    for (const auto& [weight, bias] : std::vector<std::pair<bool, bool>>{{true, true}, {true, false}, {false, true}}) {
      check_affine_definition<float>(rows, L, weight, bias);
      check_affine_definition<double>(rows, L, weight, bias);
    }
  // More rows (70: three chunks of the batch tree) in float32 against the float64 layer.
  manual_seed(11);
  const Tensor x = randn({70, 2, 45}), g = randn({70, 2, 45}), w = randn({2, 45}), b = randn({2, 45});
  std::vector<std::vector<Tensor>> grads;
  for (Dtype dt : {Dtype::Float32, Dtype::Float64}) {
    Tensor xi = x.clone().to(dt).requires_grad_(true), wi = w.clone().to(dt).requires_grad_(true),
           bi = b.clone().to(dt).requires_grad_(true);
    Tensor y = F::layer_norm(xi, F::LayerNormFuncOptions({2, 45}).weight(wi).bias(bi));
    y.backward(g.to(dt));
    grads.push_back({y.detach(), xi.grad(), wi.grad(), bi.grad()});
  }
  for (std::size_t k = 0; k < 4; ++k) {
    INFO("tensor " << k);
    const Tensor want = grads[1][k];
    const double scale = want.abs().max().item<double>();
    CHECK((grads[0][k].to(Dtype::Float64) - want).abs().max().item<double>() <= 2e-6 * scale * (k == 1 ? 1 / kDxFloor : 1));
  }
  // A normalized shape of two dims: the parameters' gradients keep their shapes (also the bias
  // alone, and under create_graph); a transposed (non-contiguous) weight and bias give the bits
  // of their contiguous copies.
  {
    const Tensor x2 = randn({4, 5, 3, 5}), w2 = randn({5, 3}).t(), b2 = randn({5, 3}).t();
    REQUIRE_FALSE(w2.is_contiguous());
    std::vector<std::vector<Tensor>> results;
    for (bool contiguous : {false, true}) {
      Tensor xi = x2.clone().requires_grad_(true);
      Tensor wi = (contiguous ? w2.contiguous() : w2.clone()).requires_grad_(true);
      Tensor bi = (contiguous ? b2.contiguous() : b2.clone()).requires_grad_(true);
      Tensor y = F::layer_norm(xi, F::LayerNormFuncOptions({3, 5}).weight(wi).bias(bi));
      (y * y).sum().backward();
      CHECK(wi.grad().shape() == Shape{3, 5});
      CHECK(bi.grad().shape() == Shape{3, 5});
      results.push_back({y.detach(), xi.grad(), wi.grad(), bi.grad()});
      const std::vector<Tensor> d = autograd::grad({(F::layer_norm(xi, F::LayerNormFuncOptions({3, 5}).weight(wi).bias(bi))).pow(2).sum()},
                                                   {wi, bi}, {}, true, true);
      CHECK(d[0].shape() == Shape{3, 5});
      CHECK(d[1].shape() == Shape{3, 5});
      CHECK((d[0].detach() - wi.grad()).abs().max().item<float>() <= 1e-4f * wi.grad().abs().max().item<float>());
    }
    for (std::size_t k = 0; k < 4; ++k) CHECK(bit_identical(results[0][k], results[1][k]));
    Tensor bias_only = randn({3, 5}).requires_grad_(true);
    F::layer_norm(x2, F::LayerNormFuncOptions({3, 5}).bias(bias_only)).sum().backward();
    CHECK(bias_only.grad().shape() == Shape{3, 5});
    CHECK(allclose(bias_only.grad(), full({3, 5}, 20.0), 0.0, 0.0));
  }
  // float64 gradchecks of the fused form (20 rows), also of its gradient (create_graph: composed).
  using V = std::vector<Tensor>;
  auto ln = [](const V& in) { return F::layer_norm(in[0], F::LayerNormFuncOptions({6}).weight(in[1]).bias(in[2])); };
  auto r = gradcheck(ln, {randn_f64({4, 5, 6}, 21), randn_f64({6}, 22), randn_f64({6}, 23)});
  INFO(r.message);
  CHECK(r.ok);
  auto ln_grad = [](const V& in) {
    Tensor y = F::layer_norm(in[0], F::LayerNormFuncOptions({6}).weight(in[1]).bias(in[2]));
    const V d = autograd::grad({(y * y * y).sum()}, {in[0], in[1]}, {}, true, true, false);
    return cat({d[0].reshape({-1}), d[1]}, 0);
  };
  r = gradcheck(ln_grad, {randn_f64({4, 5, 6}, 24), randn_f64({6}, 25), randn_f64({6}, 26)});
  INFO(r.message);
  CHECK(r.ok);
}

TEST_CASE("GroupNorm's fused op (16 or more sample-group rows) agrees with the composed ops", "[nn][norm]") {
  // float32 against float64 composed ops ((x - mean) / sqrt(var + eps) per group, then xhat * w + b,
  // their gradients): within rounding; affine with both, weight only, bias only and neither; a
  // weight with zero channels (their input gradient is the group's terms alone); 4-D planes and a
  // 2-D [N, C] input (planes of one value).
  struct Case {
    Shape shape;
    std::int64_t groups;
  };
  for (const Case& cs : {Case{{6, 8, 5, 7}, 4}, Case{{40, 12}, 3}}) {
    const std::int64_t N = cs.shape[0], C = cs.shape[1], G = cs.groups;
    REQUIRE(N * G >= 16);
    manual_seed(12);
    const Tensor x = randn(cs.shape) * 3.0 + 5.0, g = randn(cs.shape), b = randn({C});
    Tensor w = randn({C});
    w.index_put_({1}, 0.0);  // channel 1 of group 0 has weight 0
    for (int form = 0; form < 4; ++form) {
      INFO("shape [" << N << ", " << C << ", ...], form " << form);
      Tensor x32 = x.clone().requires_grad_(true), w32 = w.clone().requires_grad_(true), b32 = b.clone().requires_grad_(true);
      F::GroupNormFuncOptions o(G);
      if (form == 0 || form == 1) o.weight(w32);
      if (form == 0 || form == 2) o.bias(b32);
      Tensor y = F::group_norm(x32, o);
      CHECK(y.grad_fn()->name() == "GroupNormBackward");
      y.backward(g);
      Tensor x64 = x.clone().to(Dtype::Float64).requires_grad_(true);
      Tensor w64 = w.clone().to(Dtype::Float64).requires_grad_(true), b64 = b.clone().to(Dtype::Float64).requires_grad_(true);
      Tensor xr = x64.reshape({N, G, -1});
      Tensor xc = xr - xr.mean({2}, true);
      Shape per_channel(cs.shape.size(), 1);
      per_channel[1] = C;
      Tensor want = (xc / sqrt((xc * xc).mean({2}, true) + 1e-5)).reshape(cs.shape);
      if (form == 0 || form == 1) want = want * w64.reshape(per_channel);
      if (form == 0 || form == 2) want = want + b64.reshape(per_channel);
      want.backward(g.to(Dtype::Float64));
      auto close = [](const Tensor& got, const Tensor& ref, double tol) {
        return (got.to(Dtype::Float64) - ref).abs().max().item<double>() <= tol * ref.abs().max().item<double>();
      };
      CHECK(close(y, want.detach(), 2e-6));
      CHECK(close(x32.grad(), x64.grad(), 2e-6 / kDxFloor));
      if (form == 0 || form == 1) CHECK(close(w32.grad(), w64.grad(), 2e-6));
      if (form == 0 || form == 2) CHECK(close(b32.grad(), b64.grad(), 2e-6));
    }
  }
  // float64 gradchecks on the fused op's shapes, also of the gradient (create_graph).
  using V = std::vector<Tensor>;
  auto gn = [](const V& in) {
    return F::group_norm(in[0], F::GroupNormFuncOptions(4).weight(in[1]).bias(in[2]).eps(1e-3));
  };
  auto r = gradcheck(gn, {randn_f64({4, 8, 3}, 30), randn_f64({8}, 34), randn_f64({8}, 35)});
  INFO(r.message);
  CHECK(r.ok);
  auto gn_grad = [](const V& in) {
    Tensor y = F::group_norm(in[0], F::GroupNormFuncOptions(4).weight(in[1]).bias(in[2]).eps(1e-3));
    const V d = autograd::grad({(y * y * y).sum()}, {in[0], in[1], in[2]}, {}, true, true, false);
    return cat({d[0].reshape({-1}), d[1], d[2]}, 0);
  };
  r = gradcheck(gn_grad, {randn_f64({4, 8, 3}, 31), randn_f64({8}, 32), randn_f64({8}, 33)});
  INFO(r.message);
  CHECK(r.ok);
  // The small composed path (fewer than 16 rows), also of the gradient.
  r = gradcheck(gn_grad, {randn_f64({3, 4, 5}, 36), randn_f64({4}, 37), randn_f64({4}, 38)});
  INFO(r.message);
  CHECK(r.ok);
}

TEST_CASE("LayerNorm and GroupNorm are bit-identical at 1, 2, 3 threads and on every capability", "[nn][norm][determinism]") {
  // Big enough that the reductions and products span several chunks.
  nn::LayerNorm ln(nn::LayerNormOptions({300}));
  check_invariant(ln, {200, 300});
  nn::LayerNorm short_rows(nn::LayerNormOptions({40}));  // rows under 64 values: the two-pass statistics
  check_invariant(short_rows, {700, 40});
  nn::LayerNorm few_rows(nn::LayerNormOptions({5000}));  // fewer than 16 rows: composed ops, each row split
  check_invariant(few_rows, {3, 5000});
  nn::GroupNorm one_group(nn::GroupNormOptions(1, 16));  // GroupNorm(1, C) of 16 images: 16 rows of 16 * 900
  check_invariant(one_group, {16, 16, 30, 30});
  nn::GroupNorm gn(nn::GroupNormOptions(4, 8));
  check_invariant(gn, {6, 8, 40, 40});
  nn::GroupNorm gn_flat(nn::GroupNormOptions(2, 8));  // [N, C]: planes of one value, channels side by side
  check_invariant(gn_flat, {300, 8});
}

TEST_CASE("LayerNorm and GroupNorm: statistics per row / group, module text, state", "[nn][norm]") {
  nn::LayerNorm ln(nn::LayerNormOptions({2, 3}));
  CHECK(ln.extra_repr() == "(2, 3), eps=1e-05, elementwise_affine=True");
  CHECK(nn::LayerNorm(nn::LayerNormOptions({7})).extra_repr() == "(7,), eps=1e-05, elementwise_affine=True");
  CHECK(ln.parameters().size() == 2);
  CHECK(nn::LayerNorm(nn::LayerNormOptions({3}).elementwise_affine(false)).parameters().empty());
  // Each [2, 3] block normalised on its own: mean 0, biased variance 1 - eps-ish.
  Tensor x = arange(12.0, Dtype::Float64).reshape({2, 2, 3}) * 3.0 + 1.0;
  Tensor y = nn::LayerNorm(nn::LayerNormOptions({2, 3}).eps(0.0), Dtype::Float64)(x);
  for (std::int64_t n = 0; n < 2; ++n) {
    CHECK(std::abs(y[n].mean().item<double>()) < 1e-12);
    CHECK(std::abs((y[n] * y[n]).mean().item<double>() - 1.0) < 1e-12);
  }
  nn::GroupNorm gn(nn::GroupNormOptions(2, 4));
  CHECK(gn.extra_repr() == "2, 4, eps=1e-05, affine=True");
  CHECK(nn::GroupNorm(1, 3).parameters().size() == 2);
  CHECK(nn::GroupNorm(nn::GroupNormOptions(1, 3).affine(false)).parameters().empty());
  // GroupNorm with one group per channel on [N, C, L] is instance norm: each (n, c) row normalised.
  Tensor z = randn_f64({2, 3, 5}, 3, false);
  Tensor g1 = F::group_norm(z, F::GroupNormFuncOptions(3).eps(0.0));
  Tensor want = (z - z.mean({2}, true)) / sqrt(((z - z.mean({2}, true)) * (z - z.mean({2}, true))).mean({2}, true));
  CHECK(allclose(g1, want, 1e-12, 1e-12));
  // An empty batch passes through with its shape.
  CHECK(gn(zeros({0, 4, 3})).shape() == Shape{0, 4, 3});
}

TEST_CASE("LayerNorm, GroupNorm: rows of one value, 2-D GroupNorm, views, frozen inputs", "[nn][norm]") {
  // Rows of one value normalise to 0: the output is the bias, the input's gradient 0.
  nn::LayerNorm one(nn::LayerNormOptions({1}), Dtype::Float64);
  {
    NoGradGuard no_grad;
    one.bias.fill_(0.25);
  }
  Tensor x1 = randn_f64({6, 1}, 4, true);
  Tensor y1 = one(x1);
  CHECK(allclose(y1, full({6, 1}, 0.25, Dtype::Float64), 0.0, 0.0));
  (y1 * y1).sum().backward();
  CHECK(allclose(x1.grad(), zeros({6, 1}, Dtype::Float64), 0.0, 0.0));
  // GroupNorm on [N, C]: each sample's groups of C / G channels.
  Tensor z = randn_f64({40, 8}, 5, false);
  Tensor gz = F::group_norm(z, F::GroupNormFuncOptions(2).eps(0.0));
  Tensor zg = z.reshape({40, 2, 4});
  Tensor zc = zg - zg.mean({2}, true);
  CHECK(allclose(gz, (zc / sqrt((zc * zc).mean({2}, true))).reshape({40, 8}), 1e-12, 1e-12));
  // A transposed view gives the bits of its contiguous copy; a frozen input still trains the affine.
  nn::LayerNorm ln(nn::LayerNormOptions({30}));
  Tensor base = randn({30, 50});
  Tensor view = base.transpose(0, 1);  // [50, 30], not contiguous
  CHECK(bit_identical(ln(view), ln(view.contiguous())));
  ln.zero_grad();
  (ln(view) * ln(view)).sum().backward();
  CHECK(ln.weight.grad().defined());
  CHECK(ln.bias.grad().defined());
  CHECK(ln.weight.grad().abs().sum().item<float>() > 0.0f);
}

TEST_CASE("BatchNorm of one image splits its elementwise passes by channels: the same bits", "[nn][norm][determinism]") {
  // N == 1: normalisation and input gradient as tasks of channel blocks (36 000 values a pass).
  nn::BatchNorm2d bn(40);
  check_invariant(bn, {1, 40, 30, 30});
  bn.eval();
  check_invariant(bn, {1, 40, 30, 30});
}

TEST_CASE("LayerNorm, GroupNorm: bad options and inputs throw naming the layer and the value", "[nn][norm][errors]") {
  CHECK(contains(message_of([] { nn::GroupNorm(4, 6); }), "GroupNorm"));
  CHECK(contains(message_of([] { nn::GroupNorm(4, 6); }), "num_groups 4 must divide num_channels 6"));
  CHECK(contains(message_of([] { nn::GroupNorm(0, 6); }), "num_groups must be >= 1, got 0"));
  CHECK(contains(message_of([] { nn::GroupNorm(nn::GroupNormOptions(2, 4).eps(-1)); }), "eps must be >= 0, got -1"));
  CHECK(contains(message_of([] { nn::LayerNorm(nn::LayerNormOptions({})); }), "LayerNorm: normalized_shape must not be empty"));
  CHECK(contains(message_of([] { nn::LayerNorm(nn::LayerNormOptions({3, -2})); }), "normalized_shape sizes must be >= 0"));
  CHECK(contains(message_of([] { nn::LayerNorm(nn::LayerNormOptions({3}).eps(-0.5)); }), "-0.5"));
  nn::LayerNorm ln(nn::LayerNormOptions({4, 5}));
  const std::string m = message_of([&] { ln(zeros({2, 5, 4})); });
  CHECK(contains(m, "layer_norm"));
  CHECK(contains(m, "[2, 5, 4]"));
  CHECK(contains(m, "[4, 5]"));
  CHECK(contains(message_of([&] { ln(zeros({5})); }), "does not end in normalized_shape"));
  CHECK(contains(message_of([&] { ln(zeros({4, 5}, Dtype::Int64)); }), "int64"));
  CHECK(contains(message_of([] { F::layer_norm(zeros({2, 3}), F::LayerNormFuncOptions({3}).weight(ones({4}))); }),
                 "weight must have shape [3]"));
  CHECK(contains(message_of([] {
                   F::layer_norm(zeros({2, 3}), F::LayerNormFuncOptions({3}).bias(ones({3}, Dtype::Float64)));
                 }),
                 "bias dtype float64 does not match input dtype float32"));
  nn::GroupNorm gn(2, 4);
  CHECK(contains(message_of([&] { gn(zeros({2, 6, 3})); }), "GroupNorm: expected input [N, 4, *], got shape [2, 6, 3]"));
  CHECK(contains(message_of([&] { gn(zeros({4})); }), "GroupNorm"));
  CHECK(contains(message_of([] { F::group_norm(zeros({2, 6, 3}), F::GroupNormFuncOptions(4)); }),
                 "group_norm: num_groups 4 must divide the number of channels 6"));
  CHECK(contains(message_of([] { F::group_norm(zeros({2, 6}), F::GroupNormFuncOptions(2).weight(ones({3}))); }),
                 "weight must have shape [6]"));
}

TEST_CASE("Dropout2d zeroes whole channels with the counter-based stream, scales survivors, eval is identity",
          "[nn][dropout2d]") {
  const double p = 0.4;
  manual_seed(11);
  Tensor x = (randn({5, 7, 3, 4}, Dtype::Float64) + 10.0).requires_grad_(true);  // no zeros of its own
  nn::Dropout2d drop(p);
  CHECK(drop.extra_repr() == "p=0.4");
  manual_seed(3);
  Tensor y = drop(x);
  // The mask is exactly F::dropout's on an [N, C] tensor of ones from the same stream.
  manual_seed(3);
  Tensor want_mask = F::dropout(ones({5, 7}, Dtype::Float64), p, true);
  int kept = 0;
  for (std::int64_t n = 0; n < 5; ++n) {
    for (std::int64_t c = 0; c < 7; ++c) {
      const double m = want_mask[n][c].item<double>();
      kept += m != 0.0;
      CHECK(bit_identical(y[n][c], x[n][c].detach() * m));
    }
  }
  CHECK(kept > 0);
  CHECK(kept < 35);
  y.backward(ones_like(y));
  CHECK(bit_identical(x.grad(), want_mask.reshape({5, 7, 1, 1}).expand({5, 7, 3, 4}).contiguous()));
  // Unbatched [C, H, W]: one word per channel.
  manual_seed(3);
  Tensor u = F::dropout2d(ones({7, 2, 2}), F::Dropout2dFuncOptions().p(p));
  manual_seed(3);
  Tensor um = F::dropout(ones({7}), p, true);
  CHECK(bit_identical(u, um.reshape({7, 1, 1}).expand({7, 2, 2}).contiguous()));
  // Eval and p == 0: the input itself; p == 1: zeros.
  drop.eval();
  CHECK(drop(x).is_same(x));
  CHECK(F::dropout2d(x, F::Dropout2dFuncOptions().p(0.0)).is_same(x));
  CHECK(F::dropout2d(x, F::Dropout2dFuncOptions().training(false)).is_same(x));
  CHECK(F::dropout2d(x, F::Dropout2dFuncOptions().p(1.0)).abs().sum().item<double>() == 0.0);
  // A generator of its own gives the same mask as the default one seeded alike.
  Generator gen(3);
  manual_seed(3);
  CHECK(bit_identical(F::dropout2d(x.detach(), F::Dropout2dFuncOptions().p(p).generator(&gen)),
                      F::dropout2d(x.detach(), F::Dropout2dFuncOptions().p(p))));
}

TEST_CASE("Dropout2d is bit-identical at 1, 2, 3 threads; bad p and ranks throw", "[nn][dropout2d]") {
  nn::Dropout2d drop(0.3);
  auto runs = testing::at_thread_counts(kThreads, [&] {
    manual_seed(9);
    Tensor x = randn({64, 300, 2, 2});
    return drop(x);
  });
  CHECK(bit_identical(runs[0], runs[1]));
  CHECK(bit_identical(runs[0], runs[2]));
  CHECK(contains(message_of([] { nn::Dropout2d(1.5); }), "Dropout2d: probability has to be between 0 and 1, but got 1.5"));
  CHECK(contains(message_of([] { F::dropout2d(ones({2, 3, 4, 4}), F::Dropout2dFuncOptions().p(-0.1)); }), "-0.1"));
  CHECK(contains(message_of([&] { drop(ones({2, 3})); }), "dropout2d: expected a 3D (unbatched [C, H, W]) or 4D"));
  CHECK(contains(message_of([&] { drop(ones({2, 3, 4, 4, 1})); }), "got 5D input of shape [2, 3, 4, 4, 1]"));
  CHECK(contains(message_of([&] { drop(ones({2, 3, 4}, Dtype::Int64)); }), "int64"));
}
