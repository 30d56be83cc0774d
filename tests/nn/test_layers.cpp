// nn layers (nn/src/linear.cpp, batchnorm.cpp, embedding.cpp, activation.cpp): forward against
// plain scalar references, float64 gradchecks (and double backward), error messages, and
// bit-identical forward + backward at 1, 2, 3 and 8 threads on inputs large enough to go parallel.
#include <catch2/catch.hpp>

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include <sorix/sorix.hpp>

#include "support/errors.hpp"
#include "support/gradcheck.hpp"
#include "support/values.hpp"

using sorix::Shape;
using sorix::Tensor;
namespace nn = sorix::nn;
namespace F = sorix::nn::functional;
namespace testing = sorix::testing;
using sorix::testing::as_doubles;
using sorix::testing::check_close;
using sorix::testing::message_of;

namespace {

const std::vector<int> kThreads{1, 2, 3, 8};

// Plain reference of y = x W^T + b for x viewed as [rows, in].
std::vector<double> linear_ref(const std::vector<double>& x, const std::vector<double>& w, const std::vector<double>* b,
                               std::size_t in, std::size_t out) {
  const std::size_t rows = in == 0 ? 0 : x.size() / in;
  std::vector<double> y(rows * out);
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t o = 0; o < out; ++o) {
      long double s = b != nullptr ? (*b)[o] : 0.0;
      for (std::size_t i = 0; i < in; ++i) s += static_cast<long double>(x[r * in + i]) * w[o * in + i];
      y[r * out + o] = static_cast<double>(s);
    }
  }
  return y;
}

// Gradients of loss = sum(y * gy) of the above, in long double.
struct LinearRefGrads {
  std::vector<double> dx, dw, db;
};
LinearRefGrads linear_ref_grads(const std::vector<double>& x, const std::vector<double>& w,
                                const std::vector<double>& gy, std::size_t in, std::size_t out) {
  const std::size_t rows = x.size() / in;
  LinearRefGrads r{std::vector<double>(x.size()), std::vector<double>(w.size()), std::vector<double>(out)};
  for (std::size_t row = 0; row < rows; ++row) {
    for (std::size_t i = 0; i < in; ++i) {
      long double s = 0;
      for (std::size_t o = 0; o < out; ++o) s += static_cast<long double>(gy[row * out + o]) * w[o * in + i];
      r.dx[row * in + i] = static_cast<double>(s);
    }
  }
  for (std::size_t o = 0; o < out; ++o) {
    long double sb = 0;
    for (std::size_t row = 0; row < rows; ++row) sb += gy[row * out + o];
    r.db[o] = static_cast<double>(sb);
    for (std::size_t i = 0; i < in; ++i) {
      long double s = 0;
      for (std::size_t row = 0; row < rows; ++row) s += static_cast<long double>(gy[row * out + o]) * x[row * in + i];
      r.dw[o * in + i] = static_cast<double>(s);
    }
  }
  return r;
}

// Gradient of (sum of squares of the gradient d loss / d in[k]) for a second-derivative check:
// f(in) = grad(sum(g(in)^2 * 0.5), in[k], create_graph) with grad mode forced on (gradcheck
// evaluates f under NoGradGuard for its finite differences).
testing::TensorFn grad_of(testing::TensorFn g, std::size_t k) {
  return [g, k](const std::vector<Tensor>& in) {
    sorix::AutoGradMode on(true);
    Tensor y = g(in);
    return sorix::autograd::grad({(y * y).sum() * 0.5}, {in[k]}, {}, /*create_graph=*/true)[0];
  };
}

}  // namespace

// ================================================================================================
// Linear
// ================================================================================================

TEST_CASE("Linear: options, parameters, default init and repr", "[nn][linear]") {
  sorix::manual_seed(7);
  nn::Linear lin(nn::LinearOptions(784, 128).bias(false));
  CHECK(lin.weight.shape() == Shape{128, 784});
  CHECK_FALSE(lin.bias.defined());
  REQUIRE(lin.named_parameters().size() == 1);
  CHECK(lin.named_parameters()[0].first == "weight");
  CHECK(lin.weight.requires_grad());
  CHECK(lin.extra_repr() == "in_features=784, out_features=128, bias=False");

  nn::Linear lin2(300, 40);
  CHECK(lin2.extra_repr() == "in_features=300, out_features=40, bias=True");
  CHECK(lin2.named_parameters()[1].first == "bias");
  CHECK(lin2.named_parameters()[1].second.is_same(lin2.bias));
  // U(-1/sqrt(in), 1/sqrt(in)) for both (kaiming_uniform_ with a = sqrt(5)).
  const double bound = 1.0 / std::sqrt(300.0);
  double wmax = 0, bmax = 0;
  for (double v : as_doubles(lin2.weight)) wmax = std::max(wmax, std::abs(v));
  for (double v : as_doubles(lin2.bias)) bmax = std::max(bmax, std::abs(v));
  CHECK(wmax <= bound);
  CHECK(wmax > 0.99 * bound);  // 12000 draws cover the range
  CHECK(bmax <= bound);
  CHECK(bmax > 0.8 * bound);

  // Same seed, same parameters.
  sorix::manual_seed(7);
  nn::Linear again(nn::LinearOptions(784, 128).bias(false));
  CHECK(testing::bit_identical(again.weight, lin.weight));

  nn::Linear f64(nn::LinearOptions(3, 2), sorix::float64);
  CHECK(f64.weight.dtype() == sorix::float64);
  CHECK(f64.bias.dtype() == sorix::float64);
  CHECK_THROWS_AS(nn::Linear(-1, 3), std::invalid_argument);
}

TEST_CASE("linear: forward matches a scalar reference (1-D, 2-D, 3-D, with/without bias)", "[nn][linear]") {
  const std::size_t in = 5, out = 3;
  Tensor w = testing::randn_f64({3, 5}, 1, false);
  Tensor b = testing::randn_f64({3}, 2, false);
  const std::vector<double> wv = as_doubles(w), bv = as_doubles(b);
  for (const Shape& xs : {Shape{5}, Shape{4, 5}, Shape{2, 3, 5}, Shape{0, 5}}) {
    Tensor x = testing::randn_f64(xs, 3, false);
    Shape ys(xs.begin(), xs.end() - 1);
    ys.push_back(3);
    for (bool with_bias : {true, false}) {
      INFO("x " << sorix::shape_string(xs) << " bias " << with_bias);
      Tensor y = F::linear(x, w, with_bias ? b : Tensor());
      CHECK(y.shape() == ys);
      check_close(as_doubles(y), linear_ref(as_doubles(x), wv, with_bias ? &bv : nullptr, in, out), 1e-14, 1e-13);
      // float32 through the module path
      nn::Linear lin(nn::LinearOptions(5, 3).bias(with_bias));
      {
        sorix::NoGradGuard g;
        lin.weight.copy_(w);
        if (with_bias) lin.bias.copy_(b);
      }
      Tensor y32 = lin(x.to(sorix::float32));
      CHECK(y32.dtype() == sorix::float32);
      check_close(as_doubles(y32), linear_ref(as_doubles(x), wv, with_bias ? &bv : nullptr, in, out), 1e-5, 1e-5);
    }
  }
}

TEST_CASE("linear: float64 gradchecks, 1-D/2-D/3-D input, with and without bias", "[nn][linear][gradcheck]") {
  for (const Shape& xs : {Shape{4}, Shape{3, 4}, Shape{2, 3, 4}}) {
    INFO("x " << sorix::shape_string(xs));
    auto with_bias = testing::gradcheck([](const std::vector<Tensor>& in) { return F::linear(in[0], in[1], in[2]); },
                                        {testing::randn_f64(xs, 1), testing::randn_f64({5, 4}, 2),
                                         testing::randn_f64({5}, 3)});
    INFO(with_bias.message);
    CHECK(with_bias.ok);
    auto no_bias = testing::gradcheck([](const std::vector<Tensor>& in) { return F::linear(in[0], in[1]); },
                                      {testing::randn_f64(xs, 4), testing::randn_f64({2, 4}, 5)});
    INFO(no_bias.message);
    CHECK(no_bias.ok);
    // Only some inputs requiring grad.
    auto only_w = testing::gradcheck([](const std::vector<Tensor>& in) { return F::linear(in[0], in[1], in[2]); },
                                     {testing::randn_f64(xs, 6, false), testing::randn_f64({5, 4}, 7),
                                      testing::randn_f64({5}, 8, false)});
    INFO(only_w.message);
    CHECK(only_w.ok);
    auto only_b = testing::gradcheck([](const std::vector<Tensor>& in) { return F::linear(in[0], in[1], in[2]); },
                                     {testing::randn_f64(xs, 6, false), testing::randn_f64({5, 4}, 7, false),
                                      testing::randn_f64({5}, 8)});
    INFO(only_b.message);
    CHECK(only_b.ok);
  }
}

TEST_CASE("linear: backward matches the reference; double backward (create_graph)", "[nn][linear][gradcheck]") {
  Tensor x = testing::randn_f64({2, 3, 4}, 1);
  Tensor w = testing::randn_f64({5, 4}, 2);
  Tensor b = testing::randn_f64({5}, 3);
  Tensor gy = testing::randn_f64({2, 3, 5}, 4, false);
  F::linear(x, w, b).backward(gy);
  LinearRefGrads r = linear_ref_grads(as_doubles(x), as_doubles(w), as_doubles(gy), 4, 5);
  check_close(as_doubles(x.grad()), r.dx, 1e-13, 1e-12);
  check_close(as_doubles(w.grad()), r.dw, 1e-13, 1e-12);
  check_close(as_doubles(b.grad()), r.db, 1e-13, 1e-12);

  // Second derivatives: d/d(x, w, b) of |dL/dx|^2 and |dL/dw|^2 with L = sum(tanh(linear)).
  auto net = [](const std::vector<Tensor>& in) { return sorix::tanh(F::linear(in[0], in[1], in[2])); };
  for (std::size_t k : {std::size_t{0}, std::size_t{1}}) {
    auto r2 = testing::gradcheck(grad_of(net, k), {testing::randn_f64({3, 4}, 5), testing::randn_f64({2, 4}, 6),
                                                   testing::randn_f64({2}, 7)});
    INFO("wrt input " << k << ": " << r2.message);
    CHECK(r2.ok);
  }
}

TEST_CASE("linear: errors name the shapes", "[nn][linear]") {
  nn::Linear lin(4, 3);
  const std::string m = message_of<std::exception>([&] { lin(sorix::zeros({2, 5})); });
  CHECK(m.find("linear") != std::string::npos);
  CHECK(m.find("[2, 5]") != std::string::npos);
  CHECK(m.find("[3, 4]") != std::string::npos);
  CHECK_THROWS_AS(lin(sorix::zeros({2, 5})), std::invalid_argument);
  CHECK_THROWS_AS(lin(sorix::zeros({}, sorix::float32)), std::invalid_argument);
  CHECK_THROWS_AS(lin(sorix::zeros({2, 4}, sorix::float64)), std::invalid_argument);  // dtype mismatch
  CHECK_THROWS_AS(F::linear(sorix::zeros({2, 4}), sorix::zeros({3, 4}), sorix::zeros({4})), std::invalid_argument);
  CHECK_THROWS_AS(F::linear(sorix::zeros({2, 4}), sorix::zeros({4})), std::invalid_argument);
}

TEST_CASE("linear: forward and backward bit-identical at 1, 2, 3, 8 threads", "[nn][linear][threads]") {
  for (const Shape& xs : {Shape{512, 300}, Shape{4, 130, 300}, Shape{7, 300}}) {
    INFO("x " << sorix::shape_string(xs));
    sorix::manual_seed(3);
    nn::Linear lin(300, 200);
    Tensor x = sorix::randn(xs);
    Shape gs(xs.begin(), xs.end() - 1);
    gs.push_back(200);
    Tensor gy = sorix::randn(gs);
    x.requires_grad_(true);
    auto runs = testing::at_thread_counts(kThreads, [&] {
      lin.zero_grad();
      x.set_grad(Tensor());
      Tensor y = lin(x);
      y.backward(gy);
      return std::vector<Tensor>{y, x.grad(), lin.weight.grad(), lin.bias.grad()};
    });
    for (std::size_t t = 1; t < runs.size(); ++t) {
      for (std::size_t k = 0; k < 4; ++k) {
        INFO("threads " << kThreads[t] << " tensor " << k);
        CHECK(testing::bit_identical(runs[0][k], runs[t][k]));
      }
    }
    // and correct
    LinearRefGrads r = linear_ref_grads(as_doubles(x), as_doubles(lin.weight), as_doubles(gy), 300, 200);
    const std::vector<double> bv = as_doubles(lin.bias);
    check_close(as_doubles(runs[0][0]), linear_ref(as_doubles(x), as_doubles(lin.weight), &bv, 300, 200), 1e-4, 1e-4);
    check_close(as_doubles(runs[0][2]), r.dw, 1e-3, 1e-4);
    check_close(as_doubles(runs[0][3]), r.db, 1e-3, 1e-4);
  }
}

// ================================================================================================
// Activations
// ================================================================================================

TEST_CASE("activation modules match <cmath> (kinks included) and print", "[nn][activation]") {
  Tensor x = sorix::tensor({-2.5, -1.0, 0.0, 1.0, 3.0, -0.0});
  const std::vector<double> xv = as_doubles(x);
  auto each = [&](nn::Module& m, auto ref) {
    std::vector<double> want;
    for (double v : xv) want.push_back(ref(v));
    check_close(as_doubles(m(x)), want, 1e-15, 1e-14);
  };
  nn::ReLU relu;
  each(relu, [](double v) { return v > 0 ? v : 0.0; });
  nn::LeakyReLU leaky(nn::LeakyReLUOptions().negative_slope(0.2));
  each(leaky, [](double v) { return v > 0 ? v : 0.2 * v; });
  nn::LeakyReLU leaky_default;
  each(leaky_default, [](double v) { return v > 0 ? v : 0.01 * v; });
  nn::Sigmoid sig;
  each(sig, [](double v) { return 1.0 / (1.0 + std::exp(-v)); });
  nn::Tanh th;
  each(th, [](double v) { return std::tanh(v); });
  CHECK(leaky.extra_repr() == "negative_slope=0.2");

  // Softmax / LogSoftmax along dim 1 against a plain reference.
  Tensor m = testing::randn_f64({3, 4}, 9, false);
  const std::vector<double> mv = as_doubles(m);
  std::vector<double> sm(12), lsm(12);
  for (int r = 0; r < 3; ++r) {
    double mx = -1e300, s = 0;
    for (int c = 0; c < 4; ++c) mx = std::max(mx, mv[r * 4 + c]);
    for (int c = 0; c < 4; ++c) s += std::exp(mv[r * 4 + c] - mx);
    for (int c = 0; c < 4; ++c) {
      sm[r * 4 + c] = std::exp(mv[r * 4 + c] - mx) / s;
      lsm[r * 4 + c] = mv[r * 4 + c] - mx - std::log(s);
    }
  }
  nn::Softmax softmax(1);
  nn::LogSoftmax log_softmax(nn::LogSoftmaxOptions(-1));
  check_close(as_doubles(softmax(m)), sm, 1e-15, 1e-13);
  check_close(as_doubles(log_softmax(m)), lsm, 1e-14, 1e-13);
  CHECK(softmax.extra_repr() == "dim=1");
  CHECK(log_softmax.extra_repr() == "dim=-1");

  nn::Flatten flatten;
  Tensor img = sorix::zeros({2, 1, 28, 28});
  CHECK(flatten(img).shape() == Shape{2, 784});
  CHECK(nn::Flatten(0)(img).shape() == Shape{1568});
  CHECK(nn::Flatten(nn::FlattenOptions().start_dim(1).end_dim(2))(img).shape() == Shape{2, 28, 28});
  CHECK(flatten.extra_repr() == "start_dim=1, end_dim=-1");
  std::ostringstream os;
  os << nn::Sequential(nn::ReLU(), nn::Sigmoid(), nn::Tanh(), nn::LeakyReLU());
  CHECK(os.str() == "Sequential(\n  (0): ReLU()\n  (1): Sigmoid()\n  (2): Tanh()\n  (3): LeakyReLU(negative_slope=0.01)\n)");
}

TEST_CASE("activation modules: gradients flow (float64 gradcheck)", "[nn][activation][gradcheck]") {
  nn::LeakyReLU leaky(nn::LeakyReLUOptions().negative_slope(0.3));
  nn::Softmax softmax(0);
  nn::LogSoftmax log_softmax(1);
  nn::Sigmoid sig;
  nn::Tanh th;
  nn::Flatten flat;
  std::vector<nn::Module*> mods{&leaky, &softmax, &log_softmax, &sig, &th, &flat};
  for (nn::Module* m : mods) {
    INFO(m->name());
    auto r = testing::gradcheck([m](const std::vector<Tensor>& in) { return (*m)(in[0]); },
                                {testing::randn_f64({3, 4, 2}, 11)});
    INFO(r.message);
    CHECK(r.ok);
  }
}

// ================================================================================================
// BatchNorm1d
// ================================================================================================

namespace {
// Reference batch norm over x viewed as [N, C, L], training statistics; returns y, and the batch
// mean and biased variance per channel.
struct BnRef {
  std::vector<double> y, mean, var;
};
BnRef bn_ref(const std::vector<double>& x, std::size_t N, std::size_t C, std::size_t L, const std::vector<double>* w,
             const std::vector<double>* b, double eps, const std::vector<double>* use_mean = nullptr,
             const std::vector<double>* use_var = nullptr) {
  BnRef r{std::vector<double>(x.size()), std::vector<double>(C), std::vector<double>(C)};
  const double M = static_cast<double>(N * L);
  for (std::size_t c = 0; c < C; ++c) {
    long double s = 0;
    for (std::size_t n = 0; n < N; ++n)
      for (std::size_t l = 0; l < L; ++l) s += x[(n * C + c) * L + l];
    const long double mean = s / M;
    long double v = 0;
    for (std::size_t n = 0; n < N; ++n)
      for (std::size_t l = 0; l < L; ++l) v += (x[(n * C + c) * L + l] - mean) * (x[(n * C + c) * L + l] - mean);
    r.mean[c] = static_cast<double>(mean);
    r.var[c] = static_cast<double>(v / M);
    const long double m_use = use_mean ? (*use_mean)[c] : mean;
    const long double v_use = use_var ? (*use_var)[c] : v / M;
    for (std::size_t n = 0; n < N; ++n)
      for (std::size_t l = 0; l < L; ++l) {
        const std::size_t i = (n * C + c) * L + l;
        r.y[i] = static_cast<double>((x[i] - m_use) / std::sqrt(v_use + eps) * (w ? (*w)[c] : 1.0) + (b ? (*b)[c] : 0.0));
      }
  }
  return r;
}
}  // namespace

TEST_CASE("BatchNorm1d: parameters, buffers, repr", "[nn][batchnorm]") {
  nn::BatchNorm1d bn(128);
  CHECK(bn.extra_repr() == "128, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True");
  auto params = bn.named_parameters();
  REQUIRE(params.size() == 2);
  CHECK(params[0].first == "weight");
  CHECK(params[1].first == "bias");
  for (double v : as_doubles(bn.weight)) CHECK(v == 1.0);
  for (double v : as_doubles(bn.bias)) CHECK(v == 0.0);
  auto bufs = bn.named_buffers();
  REQUIRE(bufs.size() == 3);
  CHECK(bufs[0].first == "running_mean");
  CHECK(bufs[1].first == "running_var");
  CHECK(bufs[2].first == "num_batches_tracked");
  CHECK(bn.num_batches_tracked.dtype() == sorix::int64);
  CHECK(bn.num_batches_tracked.dim() == 0);
  CHECK(bn.num_batches_tracked.item<std::int64_t>() == 0);
  for (double v : as_doubles(bn.running_var)) CHECK(v == 1.0);

  nn::BatchNorm1d plain(nn::BatchNorm1dOptions(4).affine(false).track_running_stats(false).eps(1e-3).momentum(std::nullopt));
  CHECK(plain.named_parameters().empty());
  CHECK(plain.named_buffers().empty());
  CHECK(plain.extra_repr() == "4, eps=0.001, momentum=None, affine=False, track_running_stats=False");
}

TEST_CASE("BatchNorm1d: training forward and running stats match a reference; eval uses them",
          "[nn][batchnorm]") {
  for (const Shape& xs : {Shape{6, 4}, Shape{3, 4, 5}}) {
    INFO("x " << sorix::shape_string(xs));
    const std::size_t N = static_cast<std::size_t>(xs[0]), C = 4, L = xs.size() == 3 ? 5 : 1;
    nn::BatchNorm1d bn(nn::BatchNorm1dOptions(4).momentum(0.3), sorix::float64);
    {
      sorix::NoGradGuard g;
      bn.weight.copy_(sorix::tensor({0.5, -1.5, 2.0, 1.0}));
      bn.bias.copy_(sorix::tensor({0.1, 0.2, -0.3, 0.0}));
    }
    Tensor x = testing::randn_f64(xs, 3, false) * 3.0 + 1.0;
    const std::vector<double> w = as_doubles(bn.weight), b = as_doubles(bn.bias), xv = as_doubles(x);
    BnRef r = bn_ref(xv, N, C, L, &w, &b, 1e-5);
    check_close(as_doubles(bn(x)), r.y, 1e-13, 1e-12);
    CHECK(bn.num_batches_tracked.item<std::int64_t>() == 1);
    std::vector<double> rm(C), rv(C);
    const double M = static_cast<double>(N * L);
    for (std::size_t c = 0; c < C; ++c) {
      rm[c] = 0.7 * 0.0 + 0.3 * r.mean[c];
      rv[c] = 0.7 * 1.0 + 0.3 * r.var[c] * M / (M - 1);  // unbiased variance in the running update
    }
    check_close(as_doubles(bn.running_mean), rm, 1e-14, 1e-13);
    check_close(as_doubles(bn.running_var), rv, 1e-14, 1e-13);

    const std::vector<double> rm_after = as_doubles(bn.running_mean);
    bn.eval();
    Tensor x2 = testing::randn_f64(xs, 4, false);
    BnRef e = bn_ref(as_doubles(x2), N, C, L, &w, &b, 1e-5, &rm, &rv);
    check_close(as_doubles(bn(x2)), e.y, 1e-13, 1e-12);
    CHECK(bn.num_batches_tracked.item<std::int64_t>() == 1);  // eval does not count
    CHECK(as_doubles(bn.running_mean) == rm_after);            // nor update

    // Eval with a single sample is fine (no batch statistics needed).
    CHECK(bn(x2.slice(0, 0, 1)).shape()[0] == 1);

    // float32 path against the same reference.
    nn::BatchNorm1d bn32(4);
    check_close(as_doubles(bn32(x.to(sorix::float32))), bn_ref(xv, N, C, L, nullptr, nullptr, 1e-5).y, 1e-5, 1e-5);
  }
}

TEST_CASE("BatchNorm statistics stay accurate far from zero (no cancellation), [N, C] and [N, C, L]",
          "[nn][batchnorm]") {
  // Values 1e6 (float32) or 1e8 (float64) away from zero with a spread of about 1: a one-pass
  // E[x^2] - E[x]^2 in double would lose the variance's digits past 1e-4 (float32) or all of
  // them (float64); neither the two passes ([N, C], planes shorter than 64 values: 37) nor the
  // planes' moments and their combination (64 values: four blocks of the 16 chains; 100: six and
  // a tail) may.
  for (const Shape& xs : {Shape{40, 3}, Shape{5, 3, 37}, Shape{3, 3, 8, 8}, Shape{4, 3, 100}}) {
    for (const auto dt : {sorix::float32, sorix::float64}) {
      INFO("x " << sorix::shape_string(xs) << " " << sorix::dtype_name(dt));
      const double offset = dt == sorix::float32 ? 1e6 : 1e8;
      Tensor x = (testing::randn_f64(xs, 9, false) + offset).to(dt);
      const std::vector<double> xv = as_doubles(x);  // the values as stored
      const std::size_t N = static_cast<std::size_t>(xs[0]), C = 3, L = xv.size() / (N * C);
      std::shared_ptr<nn::Module> bn;
      Tensor running_mean, running_var;
      if (xs.size() == 4) {
        auto m = std::make_shared<nn::BatchNorm2d>(nn::BatchNorm2dOptions(3).momentum(1.0), dt);
        running_mean = m->running_mean;
        running_var = m->running_var;
        bn = m;
      } else {
        auto m = std::make_shared<nn::BatchNorm1d>(nn::BatchNorm1dOptions(3).momentum(1.0), dt);
        running_mean = m->running_mean;
        running_var = m->running_var;
        bn = m;
      }
      (*bn)(x);
      for (std::size_t c = 0; c < C; ++c) {
        long double sum = 0, sq = 0;
        for (std::size_t n = 0; n < N; ++n)
          for (std::size_t l = 0; l < L; ++l) sum += xv[(n * C + c) * L + l];
        const long double M = static_cast<long double>(N * L), mean = sum / M;
        for (std::size_t n = 0; n < N; ++n)
          for (std::size_t l = 0; l < L; ++l) sq += (xv[(n * C + c) * L + l] - mean) * (xv[(n * C + c) * L + l] - mean);
        const double var = static_cast<double>(sq / (M - 1));  // the running update's unbiased variance
        const double tol = dt == sorix::float32 ? 1e-6 : 1e-12;
        CHECK(as_doubles(running_mean)[c] == Approx(static_cast<double>(mean)).epsilon(tol));
        CHECK(as_doubles(running_var)[c] == Approx(var).epsilon(tol));
        CHECK(var > 0.5);  // the spread survived the offset in the stored values
      }
    }
  }
}

TEST_CASE("BatchNorm1d: momentum nullopt is the cumulative average; no running stats uses batch stats",
          "[nn][batchnorm]") {
  nn::BatchNorm1d bn(nn::BatchNorm1dOptions(3).momentum(std::nullopt), sorix::float64);
  Tensor a = testing::randn_f64({5, 3}, 1, false), b = testing::randn_f64({5, 3}, 2, false);
  bn(a);
  bn(b);
  BnRef ra = bn_ref(as_doubles(a), 5, 3, 1, nullptr, nullptr, 1e-5), rb = bn_ref(as_doubles(b), 5, 3, 1, nullptr, nullptr, 1e-5);
  std::vector<double> want(3);
  for (int c = 0; c < 3; ++c) want[c] = (ra.mean[c] + rb.mean[c]) / 2;
  check_close(as_doubles(bn.running_mean), want, 1e-15, 1e-14);
  CHECK(bn.num_batches_tracked.item<std::int64_t>() == 2);

  nn::BatchNorm1d nostats(nn::BatchNorm1dOptions(3).track_running_stats(false), sorix::float64);
  nostats.eval();
  check_close(as_doubles(nostats(a)), ra.y, 1e-13, 1e-12);
}

TEST_CASE("BatchNorm1d: float64 gradchecks (training affine / not, 3-D, eval) and double backward",
          "[nn][batchnorm][gradcheck]") {
  auto train_affine = [](const std::vector<Tensor>& in) {
    return F::batch_norm(in[0], Tensor(), Tensor(), in[1], in[2], true, 0.1, 1e-5);
  };
  for (const Shape& xs : {Shape{5, 3}, Shape{3, 2, 4}}) {
    INFO("x " << sorix::shape_string(xs));
    const std::int64_t C = xs[1];
    auto r = testing::gradcheck(train_affine, {testing::randn_f64(xs, 1), testing::randn_f64({C}, 2),
                                               testing::randn_f64({C}, 3)});
    INFO(r.message);
    CHECK(r.ok);
    auto r2 = testing::gradcheck(
        [](const std::vector<Tensor>& in) { return F::batch_norm(in[0], Tensor(), Tensor(), Tensor(), Tensor(), true); },
        {testing::randn_f64(xs, 4)});
    INFO(r2.message);
    CHECK(r2.ok);
    // Eval mode (running statistics are constants).
    Tensor rm = testing::randn_f64({C}, 5, false), rv = testing::positive_f64({C}, 6, false);
    auto r3 = testing::gradcheck(
        [rm, rv](const std::vector<Tensor>& in) { return F::batch_norm(in[0], rm, rv, in[1], in[2], false); },
        {testing::randn_f64(xs, 7), testing::randn_f64({C}, 8), testing::randn_f64({C}, 9)});
    INFO(r3.message);
    CHECK(r3.ok);
    // Double backward in training (create_graph path).
    auto net = [](const std::vector<Tensor>& in) {
      return sorix::tanh(F::batch_norm(in[0], Tensor(), Tensor(), in[1], in[2], true));
    };
    for (std::size_t k : {std::size_t{0}, std::size_t{1}}) {
      auto r4 = testing::gradcheck(grad_of(net, k), {testing::randn_f64(xs, 10), testing::randn_f64({C}, 11),
                                                     testing::randn_f64({C}, 12)});
      INFO("double backward wrt " << k << ": " << r4.message);
      CHECK(r4.ok);
    }
  }
  // Through the module, training mode (running stats are updated on each call but unused).
  nn::BatchNorm1d bn(nn::BatchNorm1dOptions(3), sorix::float64);
  auto rm = testing::gradcheck([&bn](const std::vector<Tensor>& in) { return bn(in[0]); }, {testing::randn_f64({4, 3}, 13)});
  INFO(rm.message);
  CHECK(rm.ok);
}

TEST_CASE("BatchNorm1d: errors", "[nn][batchnorm]") {
  nn::BatchNorm1d bn(3);
  const std::string one = message_of<std::exception>([&] { bn(sorix::zeros({1, 3})); });
  CHECK(one.find("Expected more than 1 value per channel when training") != std::string::npos);
  CHECK(one.find("[1, 3]") != std::string::npos);
  CHECK(bn.num_batches_tracked.item<std::int64_t>() == 0);  // a failed step is not counted
  CHECK_THROWS_AS(bn(sorix::zeros({1, 3, 1})), std::invalid_argument);
  const std::string ch = message_of<std::exception>([&] { bn(sorix::zeros({4, 5})); });
  CHECK(ch.find("num_features is 3") != std::string::npos);
  CHECK(ch.find("[4, 5]") != std::string::npos);
  CHECK_THROWS_AS(bn(sorix::zeros({4})), std::invalid_argument);
  CHECK_THROWS_AS(bn(sorix::zeros({2, 3, 2, 2})), std::invalid_argument);
  CHECK_THROWS_AS(bn(sorix::zeros({4, 3}, sorix::float64)), std::invalid_argument);  // dtype mismatch
  CHECK_THROWS_AS(F::batch_norm(sorix::zeros({4, 3}), Tensor(), Tensor()), std::invalid_argument);  // eval needs stats
  bn.eval();
  CHECK_NOTHROW(bn(sorix::zeros({1, 3})));
}

TEST_CASE("BatchNorm1d: forward and backward bit-identical at 1, 2, 3, 8 threads", "[nn][batchnorm][threads]") {
  for (const Shape& xs : {Shape{4096, 96}, Shape{64, 40, 100}, Shape{3, 5}}) {
    INFO("x " << sorix::shape_string(xs));
    sorix::manual_seed(11);
    Tensor x = sorix::randn(xs) * 2.0 + 0.5;
    Tensor gy = sorix::randn(xs);
    x.requires_grad_(true);
    for (bool training : {true, false}) {
      auto runs = testing::at_thread_counts(kThreads, [&] {
        nn::BatchNorm1d bn(xs[1]);
        {
          sorix::NoGradGuard g;
          bn.weight.copy_(sorix::linspace(0.5, 1.5, xs[1]));
          bn.running_var.fill_(2.0);
        }
        if (!training) bn.eval();
        x.set_grad(Tensor());
        Tensor y = bn(x);
        y.backward(gy);
        return std::vector<Tensor>{y, x.grad(), bn.weight.grad(), bn.bias.grad(), bn.running_mean.clone(),
                                   bn.running_var.clone()};
      });
      for (std::size_t t = 1; t < runs.size(); ++t) {
        for (std::size_t k = 0; k < runs[0].size(); ++k) {
          INFO("training " << training << " threads " << kThreads[t] << " tensor " << k);
          CHECK(testing::bit_identical(runs[0][k], runs[t][k]));
        }
      }
    }
  }
}

// ================================================================================================
// Embedding
// ================================================================================================

TEST_CASE("Embedding: forward is a row lookup of any index shape; repr; init", "[nn][embedding]") {
  sorix::manual_seed(5);
  nn::Embedding emb(10, 3);
  CHECK(emb.weight.shape() == Shape{10, 3});
  CHECK(emb.extra_repr() == "10, 3");
  Tensor idx = sorix::tensor({{1, 2, 1}, {9, 0, 4}});
  Tensor y = emb(idx);
  REQUIRE(y.shape() == Shape{2, 3, 3});
  const std::vector<double> w = as_doubles(emb.weight), yv = as_doubles(y);
  const std::vector<int> flat{1, 2, 1, 9, 0, 4};
  for (std::size_t k = 0; k < 6; ++k)
    for (std::size_t d = 0; d < 3; ++d) CHECK(yv[k * 3 + d] == w[static_cast<std::size_t>(flat[k]) * 3 + d]);
  CHECK(emb(sorix::tensor({7})).shape() == Shape{1, 3});
  CHECK(emb(sorix::zeros({0}, sorix::int64)).shape() == Shape{0, 3});
  CHECK(emb(sorix::full({}, 3, sorix::int64)).shape() == Shape{3});

  // N(0, 1) init: sample moments of a large table.
  nn::Embedding big(1000, 200);
  double s = 0, s2 = 0;
  for (double v : as_doubles(big.weight)) {
    s += v;
    s2 += v * v;
  }
  CHECK(std::abs(s / 200000) < 0.01);
  CHECK(std::abs(std::sqrt(s2 / 200000) - 1.0) < 0.01);

  nn::Embedding padded(nn::EmbeddingOptions(5, 4).padding_idx(-1));
  CHECK(padded.options().padding_idx() == 4);
  CHECK(padded.extra_repr() == "5, 4, padding_idx=4");
  for (double v : as_doubles(padded.weight.slice(0, 4, 5))) CHECK(v == 0.0);
}

TEST_CASE("Embedding: out-of-range and negative indices throw std::out_of_range", "[nn][embedding]") {
  nn::Embedding emb(10, 3);
  const std::string m = message_of<std::exception>([&] { emb(sorix::tensor({1, 10, 2})); });
  CHECK(m.find("index 10") != std::string::npos);
  CHECK(m.find("num_embeddings=10") != std::string::npos);
  CHECK_THROWS_AS(emb(sorix::tensor({1, 10, 2})), std::out_of_range);
  CHECK_THROWS_AS(emb(sorix::tensor({-1})), std::out_of_range);
  CHECK(message_of<std::exception>([&] { emb(sorix::tensor({-1})); }).find("index -1") != std::string::npos);
  CHECK_THROWS_AS(emb(sorix::tensor({1.0f})), std::invalid_argument);  // not int64
  CHECK_THROWS_AS(nn::Embedding(nn::EmbeddingOptions(3, 2).padding_idx(3)), std::out_of_range);
}

TEST_CASE("Embedding: gradient sums repeated indices; gradcheck; padding_idx; double backward",
          "[nn][embedding][gradcheck]") {
  Tensor idx = sorix::tensor({{3, 1, 3}, {0, 3, 1}});
  Tensor w = testing::randn_f64({5, 2}, 1);
  Tensor gy = testing::randn_f64({2, 3, 2}, 2, false);
  F::embedding(idx, w).backward(gy);
  const std::vector<double> g = as_doubles(gy), dw = as_doubles(w.grad());
  const std::vector<int> flat{3, 1, 3, 0, 3, 1};
  std::vector<double> want(10, 0.0);
  for (std::size_t k = 0; k < 6; ++k)
    for (std::size_t d = 0; d < 2; ++d) want[static_cast<std::size_t>(flat[k]) * 2 + d] += g[k * 2 + d];
  for (std::size_t i = 0; i < 10; ++i) CHECK(dw[i] == want[i]);  // same order of additions: exact

  auto r = testing::gradcheck([idx](const std::vector<Tensor>& in) { return F::embedding(idx, in[0]); },
                              {testing::randn_f64({5, 2}, 3)});
  INFO(r.message);
  CHECK(r.ok);

  // padding_idx: that row gets no gradient, the lookup still returns it.
  Tensor w2 = testing::randn_f64({5, 2}, 4);
  F::embedding(idx, w2, 3).backward(gy);
  const std::vector<double> dw2 = as_doubles(w2.grad());
  CHECK(dw2[6] == 0.0);
  CHECK(dw2[7] == 0.0);
  CHECK(dw2[2] == want[2]);

  // Double backward through the scatter (create_graph).
  auto r2 = testing::gradcheck(grad_of([idx](const std::vector<Tensor>& in) {
                                 return sorix::tanh(F::embedding(idx, in[0], 1));
                               }, 0),
                               {testing::randn_f64({5, 2}, 5)});
  INFO(r2.message);
  CHECK(r2.ok);
}

TEST_CASE("Embedding: forward and backward bit-identical at 1, 2, 3, 8 threads", "[nn][embedding][threads]") {
  struct Case {
    std::int64_t num, dim, n;
  };
  for (Case c : {Case{1000, 64, 20000}, Case{50, 3000, 40}, Case{7, 5, 9}}) {
    INFO("num " << c.num << " dim " << c.dim << " n " << c.n);
    sorix::manual_seed(2);
    nn::Embedding emb(c.num, c.dim);
    Tensor idx = sorix::randint(0, c.num, {c.n});
    Tensor gy = sorix::randn({c.n, c.dim});
    auto runs = testing::at_thread_counts(kThreads, [&] {
      emb.zero_grad();
      Tensor y = emb(idx);
      y.backward(gy);
      return std::vector<Tensor>{y, emb.weight.grad()};
    });
    for (std::size_t t = 1; t < runs.size(); ++t) {
      INFO("threads " << kThreads[t]);
      CHECK(testing::bit_identical(runs[0][0], runs[t][0]));
      CHECK(testing::bit_identical(runs[0][1], runs[t][1]));
    }
    // The gradient equals the sequential scatter in index order, bit for bit.
    const std::int64_t* pi = idx.data_ptr<std::int64_t>();
    const float* pg = gy.data_ptr<float>();
    std::vector<float> want(static_cast<std::size_t>(c.num * c.dim), 0.0f);
    for (std::int64_t k = 0; k < c.n; ++k)
      for (std::int64_t d = 0; d < c.dim; ++d) want[static_cast<std::size_t>(pi[k] * c.dim + d)] += pg[k * c.dim + d];
    const float* got = runs[0][1].data_ptr<float>();
    bool same = true;
    for (std::size_t i = 0; i < want.size(); ++i) same = same && got[i] == want[i];
    CHECK(same);
  }
}

TEST_CASE("Unflatten splits a dim as torch::nn::Unflatten; Identity passes its input through", "[nn][layers]") {
  nn::Unflatten unflatten(1, {1, 28, 28});
  Tensor x = sorix::arange(2 * 784, sorix::float32).reshape({2, 784}).requires_grad_(true);
  Tensor y = unflatten(x);
  CHECK(y.shape() == Shape{2, 1, 28, 28});
  CHECK(y.is_view());
  CHECK(unflatten.extra_repr() == "dim=1, unflattened_size=(1, 28, 28)");
  CHECK(nn::Unflatten(-1, {-1, 4})(sorix::zeros({3, 8})).shape() == Shape{3, 2, 4});
  y.sum().backward();
  CHECK(x.grad().sum().item<double>() == 2 * 784);
  const std::string m = sorix::testing::message_of([&] { nn::Unflatten(1, {3, 5})(sorix::zeros({2, 784})); });
  CHECK(sorix::testing::contains(m, "Unflatten"));
  CHECK(sorix::testing::contains(m, "784"));
  nn::Identity id;
  Tensor z = sorix::ones({3});
  CHECK(id(z).impl() == z.impl());
}
