// The kernel layer (core/src/kernels): choosing a CPU capability, the primitives whose bits must not
// depend on it (fmadd, log, sincos), and every random kernel compared bit for bit across the
// capabilities this machine runs, at 1, 2 and 3 threads. (Products: tests/autograd/test_matmul.cpp;
// a whole training run: examples/determinism_check, run by ctest.)
#include <catch2/catch.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "sorix_core/kernels/math.hpp"
#include "sorix_core/kernels/table.hpp"
#include "sorix/core/philox.hpp"
#include "sorix/sorix.hpp"
#include "support/capabilities.hpp"
#include "support/gradcheck.hpp"

namespace rng = sorix::rng;
namespace kernels = sorix::kernels;
namespace testing = sorix::testing;
namespace F = sorix::nn::functional;

TEST_CASE("cpu_capability names one the CPU runs; bad names are clear errors", "[kernels]") {
  const auto caps = sorix::available_cpu_capabilities();
  REQUIRE(!caps.empty());
  CHECK(caps.front() == sorix::kernels::kBaselineCapability);
  const std::string active = sorix::cpu_capability();
  CHECK(std::find(caps.begin(), caps.end(), active) != caps.end());
  CHECK_THROWS_AS(sorix::set_cpu_capability("avx3"), std::invalid_argument);
  CHECK_THROWS_WITH(sorix::set_cpu_capability("avx3"), Catch::Contains("unknown CPU capability 'avx3'") &&
                                                           Catch::Contains("scalar") && Catch::Contains("avx2"));
  CHECK(sorix::cpu_capability() == active);  // a refused switch changes nothing
  for (const char* name : {"avx2", "avx512"}) {
    if (std::find(caps.begin(), caps.end(), name) == caps.end()) {
      CHECK_THROWS_WITH(sorix::set_cpu_capability(name), Catch::Contains("this CPU cannot run capability"));
    }
  }
  for (const auto& cap : caps) {
    sorix::set_cpu_capability(cap);
    CHECK(sorix::cpu_capability() == cap);
  }
  sorix::set_cpu_capability(active);
}

namespace {
std::vector<float> fma_cases() {
  std::vector<float> v = {0.0f, -0.0f, 1.0f, -1.0f, 0x1p-149f, -0x1p-149f, 0x1p-126f, 0x1.fffffep127f,
                          -0x1.fffffep127f, 1.0f + 0x1p-23f, 1.0f - 0x1p-24f, 3.0f, 0.1f, -0.3f,
                          std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity()};
  std::uint32_t s = 12345;
  for (int i = 0; i < 4000; ++i) {
    s = s * 1664525u + 1013904223u;
    std::uint32_t bits = s;
    // Mostly moderate exponents (where cancellation and ties happen), some anywhere.
    if (i % 4 != 0) bits = (bits & 0x807FFFFFu) | ((100u + (s >> 24) % 56u) << 23);
    const float f = std::bit_cast<float>(bits);
    if (std::isfinite(f)) v.push_back(f);
  }
  return v;
}
}  // namespace

TEST_CASE("fmadd is one correctly rounded fma on the baseline path (exact SSE2 emulation)", "[kernels]") {
  using F = xsimd::batch<float, kernels::ScalarArch>;
  constexpr std::size_t W = F::size;
  const auto v = fma_cases();
  std::size_t bad = 0, checked = 0;
  for (std::size_t i = 0; i + 3 * W <= v.size(); i += 1) {
    alignas(64) float a[W], b[W], c[W], out[W];
    for (std::size_t l = 0; l < W; ++l) {
      a[l] = v[(i + l) % v.size()];
      b[l] = v[(i * 7 + 3 * l + 1) % v.size()];
      // c near -a*b half the time: the cancelling sums where a separate multiply and add differ.
      c[l] = (i + l) % 2 ? -a[l] * b[l] * (1.0f + 0x1p-22f * float(l)) : v[(i * 13 + l + 2) % v.size()];
    }
    kernels::fmadd(F::load_aligned(a), F::load_aligned(b), F::load_aligned(c)).store_aligned(out);
    for (std::size_t l = 0; l < W; ++l) {
      const float want = std::fma(a[l], b[l], c[l]);
      ++checked;
      if (std::isnan(want) ? !std::isnan(out[l]) : std::bit_cast<std::uint32_t>(want) != std::bit_cast<std::uint32_t>(out[l])) {
        ++bad;
        UNSCOPED_INFO("fma(" << a[l] << ", " << b[l] << ", " << c[l] << ") = " << want << ", got " << out[l]);
      }
    }
  }
  CHECK(checked > 10000);
  CHECK(bad == 0);
}

namespace {
template <class T>
double ulp_error(T got, long double want) {
  const long double ulp = std::ldexp(1.0L, std::ilogb(static_cast<T>(want)) - std::numeric_limits<T>::digits + 1);
  return static_cast<double>(std::fabs(static_cast<long double>(got) - want) / ulp);
}

template <class T>
void check_log_and_sincos(double max_ulp) {
  using V = xsimd::batch<T, kernels::ScalarArch>;
  constexpr std::size_t W = V::size;
  double worst_log = 0, worst_sin = 0, worst_cos = 0;
  const std::size_t n = 200000;
  for (std::size_t i = 0; i < n; i += W) {
    alignas(64) T x[W], u[W], lg[W], sn[W], cs[W];
    for (std::size_t l = 0; l < W; ++l) {
      const double t = double(i + l) / double(n);
      x[l] = static_cast<T>(std::exp2(-60.0 + 120.0 * t)) * static_cast<T>(1.0 + 0.37 * t);  // 2^-60 .. 2^60
      u[l] = static_cast<T>(t);                                                                // [0, 1)
    }
    kernels::math::log(V::load_aligned(x)).store_aligned(lg);
    const auto sc = kernels::math::sincos_2pi(V::load_aligned(u));
    sc.first.store_aligned(sn);
    sc.second.store_aligned(cs);
    for (std::size_t l = 0; l < W; ++l) {
      worst_log = std::max(worst_log, ulp_error<T>(lg[l], std::log(static_cast<long double>(x[l]))));
      const long double th = 2.0L * 3.14159265358979323846264338327950288L * static_cast<long double>(u[l]);
      // Absolute error in ulps of 1 (sin and cos cross zero, where relative error means nothing).
      const long double one_ulp = std::ldexp(1.0L, -std::numeric_limits<T>::digits + 1);
      worst_sin = std::max(worst_sin, double(std::fabs(static_cast<long double>(sn[l]) - std::sin(th)) / one_ulp));
      worst_cos = std::max(worst_cos, double(std::fabs(static_cast<long double>(cs[l]) - std::cos(th)) / one_ulp));
    }
  }
  INFO("worst log " << worst_log << " ulp, sin " << worst_sin << ", cos " << worst_cos);
  CHECK(worst_log <= max_ulp);
  CHECK(worst_sin <= max_ulp);
  CHECK(worst_cos <= max_ulp);
  // Special values.
  alignas(64) T s[W], r[W];
  const T specials[] = {T(0), T(1), std::numeric_limits<T>::infinity(), T(-1), std::numeric_limits<T>::denorm_min()};
  for (std::size_t k = 0; k < std::size(specials); ++k) {
    for (std::size_t l = 0; l < W; ++l) s[l] = specials[k];
    kernels::math::log(V::load_aligned(s)).store_aligned(r);
    if (k == 0) CHECK(r[0] == -std::numeric_limits<T>::infinity());
    if (k == 1) CHECK(r[0] == T(0));
    if (k == 2) CHECK(r[0] == std::numeric_limits<T>::infinity());
    if (k == 3) CHECK(std::isnan(r[0]));
    if (k == 4) CHECK(ulp_error<T>(r[0], std::log(static_cast<long double>(s[0]))) <= max_ulp);
  }
}
}  // namespace

TEST_CASE("sorix's own log and sincos(2 pi u) are within 2 ulp, without libm", "[kernels]") {
  check_log_and_sincos<float>(2.0);
  check_log_and_sincos<double>(2.0);
}

namespace {
template <class T>
void check_exp_tanh_sigmoid(double max_ulp) {
  using V = xsimd::batch<T, kernels::ScalarArch>;
  constexpr std::size_t W = V::size;
  const double lo = std::is_same_v<T, float> ? -87.0 : -700.0, hi = -lo;
  double worst_exp = 0, worst_tanh = 0, worst_sig = 0;
  const std::size_t n = 200000;
  for (std::size_t i = 0; i < n; i += W) {
    alignas(64) T x[W], e[W], t[W], sg[W];
    for (std::size_t l = 0; l < W; ++l) x[l] = static_cast<T>(lo + (hi - lo) * double(i + l) / double(n));
    kernels::math::exp(V::load_aligned(x)).store_aligned(e);
    for (std::size_t l = 0; l < W; ++l) x[l] = x[l] / T(8);  // tanh and sigmoid on [-hi/8, hi/8]
    kernels::math::tanh(V::load_aligned(x)).store_aligned(t);
    kernels::math::sigmoid(V::load_aligned(x)).store_aligned(sg);
    for (std::size_t l = 0; l < W; ++l) {
      const long double xe = static_cast<long double>(x[l]) * 8;
      worst_exp = std::max(worst_exp, ulp_error<T>(e[l], std::exp(xe)));
      const long double xt = static_cast<long double>(x[l]);
      if (std::tanh(xt) != 0) worst_tanh = std::max(worst_tanh, ulp_error<T>(t[l], std::tanh(xt)));
      worst_sig = std::max(worst_sig, ulp_error<T>(sg[l], 1.0L / (1.0L + std::exp(-xt))));
    }
  }
  INFO("worst exp " << worst_exp << " ulp, tanh " << worst_tanh << ", sigmoid " << worst_sig);
  CHECK(worst_exp <= max_ulp);
  CHECK(worst_tanh <= max_ulp);
  CHECK(worst_sig <= max_ulp + 1);
  // Limits: overflow to inf, underflow to 0 (through the subnormals), NaN stays NaN.
  alignas(64) T s[W], r[W];
  const T inf = std::numeric_limits<T>::infinity();
  const T cases[] = {T(0), T(1000), T(-1000), inf, -inf, std::numeric_limits<T>::quiet_NaN()};
  const T want_exp[] = {T(1), inf, T(0), inf, T(0), std::numeric_limits<T>::quiet_NaN()};
  const T want_tanh[] = {T(0), T(1), T(-1), T(1), T(-1), std::numeric_limits<T>::quiet_NaN()};
  for (std::size_t k = 0; k < std::size(cases); ++k) {
    for (std::size_t l = 0; l < W; ++l) s[l] = cases[k];
    kernels::math::exp(V::load_aligned(s)).store_aligned(r);
    CHECK((std::isnan(want_exp[k]) ? std::isnan(r[0]) : r[0] == want_exp[k]));
    kernels::math::tanh(V::load_aligned(s)).store_aligned(r);
    CHECK((std::isnan(want_tanh[k]) ? std::isnan(r[0]) : r[0] == want_tanh[k]));
  }
  // A subnormal result: exp(log(min normal) - 3), within 1 subnormal step... of the reference.
  const T x_sub = static_cast<T>(std::log(static_cast<long double>(std::numeric_limits<T>::min())) - 3);
  for (std::size_t l = 0; l < W; ++l) s[l] = x_sub;
  kernels::math::exp(V::load_aligned(s)).store_aligned(r);
  const long double want = std::exp(static_cast<long double>(x_sub));
  CHECK(std::fabs(static_cast<long double>(r[0]) - want) <= static_cast<long double>(std::numeric_limits<T>::denorm_min()));
}
}  // namespace

TEST_CASE("sorix's own exp, tanh and sigmoid are within 2 ulp, with exact limits", "[kernels]") {
  check_exp_tanh_sigmoid<float>(2.0);
  check_exp_tanh_sigmoid<double>(2.0);
}

namespace {
// Every random kernel over ranges with odd starts and ragged ends, appended into one buffer of bytes.
std::vector<unsigned char> random_kernel_outputs() {
  std::vector<unsigned char> bytes;
  auto append = [&](const void* p, std::size_t n) {
    const auto* c = static_cast<const unsigned char*>(p);
    bytes.insert(bytes.end(), c, c + n);
  };
  const std::uint64_t key = 0x0123456789ABCDEFull, base = 0xFFFFFFFFull - 21;  // crosses a 2^32 carry
  for (std::size_t first : {std::size_t(0), std::size_t(1), std::size_t(3), std::size_t(8), std::size_t(64), std::size_t(77)}) {
    for (std::size_t n : {std::size_t(0), std::size_t(1), std::size_t(5), std::size_t(63), std::size_t(64), std::size_t(1000)}) {
      std::vector<std::uint32_t> w(n);
      rng::fill_u32_range(key, base, first, w.data(), n);
      append(w.data(), n * 4);
      std::vector<float> f(n);
      std::vector<double> d(n);
      rng::uniform_f32_range(key, base, first, f.data(), n, -2.0f, 3.0f);
      append(f.data(), n * 4);
      rng::uniform_f64_range(key, base, first, d.data(), n, -2.0, 3.0);
      append(d.data(), n * 8);
      rng::normal_f32_range(key, base, first, f.data(), n, 0.5f, 2.0f);
      append(f.data(), n * 4);
      rng::normal_f64_range(key, base, first, d.data(), n, 0.5, 2.0);
      append(d.data(), n * 8);
      rng::bernoulli_f32_range(key, base, first, f.data(), n, 0.3);
      append(f.data(), n * 4);
      rng::bernoulli_f64_range(key, base, first, d.data(), n, 0.7);
      append(d.data(), n * 8);
      std::vector<float> xf(n), yf(n), gf(n);
      std::vector<double> xd(n), yd(n), gd(n);
      for (std::size_t i = 0; i < n; ++i) xf[i] = float(i) - 7.5f, xd[i] = double(i) * 0.25 - 3.0;
      const std::uint64_t t = rng::dropout_threshold(0.37);
      rng::dropout_backward_regen_f32(key, base, first, xf.data(), yf.data(), n, t, 1.5f);
      append(yf.data(), n * 4);
      rng::dropout_backward_regen_f64(key, base, first, xd.data(), yd.data(), n, t, 1.5);
      append(yd.data(), n * 8);
      if (first % 8 == 0) {
        std::vector<std::uint8_t> mask((n + 7) / 8);
        rng::dropout_forward_f32(key, base, first, xf.data(), yf.data(), n, t, 1.5f, mask.data());
        append(yf.data(), n * 4);
        append(mask.data(), mask.size());
        rng::dropout_backward_bits_f32(xf.data(), mask.data(), gf.data(), n, 1.5f);
        append(gf.data(), n * 4);
        rng::dropout_forward_f64(key, base, first, xd.data(), yd.data(), n, t, 1.5, mask.data());
        append(yd.data(), n * 8);
        append(mask.data(), mask.size());
        rng::dropout_backward_bits_f64(xd.data(), mask.data(), gd.data(), n, 1.5);
        append(gd.data(), n * 8);
      }
    }
  }
  return bytes;
}
}  // namespace

TEST_CASE("every random kernel gives the same bits on every capability", "[kernels][determinism]") {
  const auto runs = testing::at_capabilities(random_kernel_outputs);
  REQUIRE(!runs.empty());
  for (const auto& [cap, bytes] : runs) {
    INFO("capability " << cap << " against " << runs.front().first);
    CHECK(bytes.size() == runs.front().second.size());
    CHECK(bytes == runs.front().second);
  }
}

TEST_CASE("random ops and Dropout give the same bits on every capability at 1, 2 and 3 threads",
          "[kernels][determinism]") {
  auto draw = [] {
    sorix::Generator g(2024);
    std::vector<sorix::Tensor> out;
    out.push_back(sorix::rand({70001}, sorix::TensorOptions(), &g));
    out.push_back(sorix::randn({50003}, sorix::TensorOptions().dtype(sorix::float64), &g));
    out.push_back(sorix::bernoulli(sorix::full({40000}, 0.3), &g));
    sorix::manual_seed(7);
    sorix::nn::Dropout drop(0.4);
    auto x = sorix::rand({100000}, sorix::TensorOptions(), &g).requires_grad_(true);
    auto y = drop(x);
    (y * y).sum().backward();
    out.push_back(y.detach());
    out.push_back(x.grad());
    return out;
  };
  const auto runs = testing::at_capabilities([&] { return testing::at_thread_counts({1, 2, 3}, draw); });
  const auto& reference = runs.front().second.front();
  for (const auto& [cap, per_threads] : runs) {
    for (std::size_t t = 0; t < per_threads.size(); ++t) {
      INFO("capability " << cap << ", thread count #" << t);
      for (std::size_t k = 0; k < reference.size(); ++k) CHECK(testing::bit_identical(per_threads[t][k], reference[k]));
    }
  }
}

namespace {
// Every elementwise op family, forward and backward, on ragged sizes (one SIMD tail each), in
// float32 and float64, with broadcasting; every optimizer's update for three steps.
std::vector<sorix::Tensor> op_family_outputs() {
  std::vector<sorix::Tensor> out;
  for (auto dt : {sorix::float32, sorix::float64}) {
    sorix::Generator g(99);
    const auto opts = sorix::TensorOptions().dtype(dt);
    // Signed zeros among x's values: a path whose negation is 0 - v (xsimd's on AVX-512) gives
    // +0 for -(+0) where the others give -0.
    sorix::Tensor x = sorix::randn({37, 1001}, opts, &g) * 3.0;
    for (std::int64_t i = 0; i < x.numel(); i += 7) {
      const double zero = i % 2 == 0 ? 0.0 : -0.0;
      if (dt == sorix::float32) x.data_ptr<float>()[i] = static_cast<float>(zero);
      else x.data_ptr<double>()[i] = zero;
    }
    x.requires_grad_(true);
    const sorix::Tensor y = sorix::randn({1001}, opts, &g).requires_grad_(true);
    const sorix::Tensor pos = sorix::rand({37, 1001}, opts, &g) + 0.01;
    std::vector<sorix::Tensor> fwd = {
        -x, sorix::exp(x), sorix::log(pos), sorix::sqrt(pos), sorix::abs(x), sorix::tanh(x), sorix::sigmoid(x),
        sorix::relu(x), sorix::leaky_relu(x, 0.2), sorix::clamp(x, -1.0, 0.5), x + y, x - y, x * y, x / y,
        sorix::gt(x, y), sorix::lt(x, y), sorix::ge(x, y), sorix::le(x, y), sorix::eq(x, x), sorix::ne(x, y),
        sorix::softmax(x, 1), sorix::log_softmax(x, 1), sorix::softmax(x, 0), x.sum(), sorix::mean(x),
        sorix::sum(x, {0}), sorix::sum(x, {1}), std::get<0>(sorix::max(x, 1)), sorix::matmul(x, y.reshape({1001, 1})),
        // The math ops and activations of issue 12 (forward here, gradients through `total`).
        sorix::sin(x), sorix::cos(x * 40.0), sorix::tan(sorix::tanh(x)), sorix::sign(x), sorix::round(x),
        sorix::floor(x), sorix::ceil(x), sorix::trunc(x), sorix::log1p(pos), sorix::expm1(x), sorix::square(x),
        sorix::rsqrt(pos), sorix::reciprocal(pos), sorix::erf(x), sorix::clamp_min(x, -0.5), sorix::clamp_max(x, 0.5),
        F::gelu(x), F::gelu(x, F::GELUFuncOptions().approximate("tanh")), F::silu(x),
        F::elu(x, F::ELUFuncOptions().alpha(0.7)), F::softplus(x, F::SoftplusFuncOptions().beta(2.0).threshold(4.0)),
        F::hardtanh(x, F::HardtanhFuncOptions().min_val(-0.5).max_val(2.0))};
    sorix::Tensor total = sorix::zeros({}, opts);
    for (const auto& t : fwd) {
      out.push_back(t.detach());
      if (t.requires_grad()) total = total + (t * t).sum();
    }
    const auto grads = sorix::autograd::grad({total}, {x, y});
    out.insert(out.end(), grads.begin(), grads.end());
    const sorix::Tensor labels = sorix::randint(0, 1001, {37}, sorix::int64, &g);
    sorix::nn::CrossEntropyLoss ce;
    const auto ce_grad = sorix::autograd::grad({ce(x, labels)}, {x});
    out.push_back(ce_grad[0]);
    sorix::nn::BatchNorm1d bn(sorix::nn::BatchNorm1dOptions(1001), dt);
    const auto bn_out = bn(x);
    const auto bn_grad = sorix::autograd::grad({(bn_out * pos).sum()}, {x});
    out.push_back(bn_out.detach());
    out.push_back(bn_grad[0]);
  }
  // Optimizers, three steps each on ragged parameters.
  auto run = [&](auto make_optimizer) {
    sorix::Generator g(5);
    std::vector<sorix::Tensor> params = {sorix::randn({37}, {}, &g).requires_grad_(true),
                                         sorix::randn({20003}, {}, &g).requires_grad_(true)};
    auto opt = make_optimizer(params);
    for (int step = 0; step < 3; ++step) {
      opt.zero_grad();
      sorix::Tensor loss = sorix::zeros({});
      for (const auto& p : params) loss = loss + (p * p * p).sum();
      loss.backward();
      opt.step();
    }
    for (const auto& p : params) out.push_back(p.detach());
  };
  namespace optim = sorix::optim;
  run([](auto& p) { return optim::SGD(p, optim::SGDOptions(0.01).momentum(0.9).nesterov(true).weight_decay(0.1)); });
  run([](auto& p) { return optim::RMSprop(p, optim::RMSpropOptions(0.01).momentum(0.5).centered(true)); });
  run([](auto& p) { return optim::RMSprop(p, optim::RMSpropOptions(0.01).alpha(0.99)); });
  run([](auto& p) { return optim::Adam(p, optim::AdamOptions(0.01).amsgrad(true).weight_decay(0.01)); });
  run([](auto& p) { return optim::AdamW(p, optim::AdamWOptions(0.01)); });
  run([](auto& p) { return optim::Adagrad(p, optim::AdagradOptions(0.01).lr_decay(0.01).weight_decay(0.1).initial_accumulator_value(0.1)); });
  return out;
}
}  // namespace

TEST_CASE("elementwise ops, softmax, the loss and every optimizer give the same bits on every capability",
          "[kernels][determinism]") {
  const auto runs = testing::at_capabilities([] { return testing::at_thread_counts({1, 2, 3}, op_family_outputs); });
  const auto& reference = runs.front().second.front();
  for (const auto& [cap, per_threads] : runs) {
    for (std::size_t t = 0; t < per_threads.size(); ++t) {
      INFO("capability " << cap << ", thread count #" << t);
      REQUIRE(per_threads[t].size() == reference.size());
      for (std::size_t k = 0; k < reference.size(); ++k) {
        INFO("output #" << k);
        CHECK(testing::bit_identical(per_threads[t][k], reference[k]));
      }
    }
  }
}

namespace {
// Rows of values that stress the max and sum trees: ties, +-0, -inf, NaN, huge and tiny values.
template <class T>
std::vector<T> tricky_rows(std::size_t rows, std::size_t n) {
  const T specials[] = {T(0), -T(0), T(1), T(-3.5), T(80), T(-80), T(1e-30), -std::numeric_limits<T>::infinity(),
                        std::numeric_limits<T>::quiet_NaN(), T(7.25), T(7.25)};
  std::vector<T> v(rows * n);
  std::uint32_t s = 12345u;
  for (std::size_t i = 0; i < v.size(); ++i) {
    s = s * 1664525u + 1013904223u;
    v[i] = (s >> 28) < 3 ? specials[(s >> 8) % std::size(specials)] : T(int((s >> 8) % 2001) - 1000) / T(37);
  }
  return v;
}

// Bit for bit, except that any NaN equals any NaN: which NaN an operation on NaNs returns is not
// part of the guarantee (docs/determinism.md); that the result is NaN is.
template <class T>
bool same_bits_or_both_nan(const std::vector<T>& a, const std::vector<T>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) && std::isnan(b[i])) continue;
    if (std::memcmp(&a[i], &b[i], sizeof(T)) != 0) return false;
  }
  return true;
}

// Many rows go through the narrow-row form (rows across lanes); one row at a time through the row
// form. Both must give the same bits, probabilities, log-probabilities, maxima and log-sums.
template <class T, class Kernel>
void check_narrow_rows_match_row_form(Kernel softmax) {
  for (std::size_t n : {1, 2, 3, 5, 10, 15, 16, 17, 31, 32}) {
    for (std::size_t rows : {2, 3, 7, 16, 17, 33}) {
      if (n > 128 / sizeof(T)) continue;
      const std::vector<T> x = tricky_rows<T>(rows, n);
      for (bool log : {false, true}) {
        INFO("n " << n << ", rows " << rows << ", log " << log);
        std::vector<T> many(rows * n), one(rows * n), max_many(rows), max_one(rows), ls_many(rows), ls_one(rows);
        softmax(x.data(), many.data(), rows, n, log, max_many.data(), ls_many.data());
        for (std::size_t i = 0; i < rows; ++i)
          softmax(x.data() + i * n, one.data() + i * n, 1, n, log, max_one.data() + i, ls_one.data() + i);
        CHECK(same_bits_or_both_nan(many, one));
        CHECK(same_bits_or_both_nan(max_many, max_one));
        CHECK(same_bits_or_both_nan(ls_many, ls_one));
      }
    }
  }
}
}  // namespace

TEST_CASE("softmax rows of at most 128 bytes, rows across lanes, give the row form's bits", "[kernels][softmax]") {
  testing::at_capabilities([] {
    check_narrow_rows_match_row_form<float>(sorix::kernels::active().softmax_rows_f32);
    check_narrow_rows_match_row_form<double>(sorix::kernels::active().softmax_rows_f64);
    return 0;
  });
}
