// sorix's own sin, cos, tan, log1p, expm1 and erf (core/internal/sorix_core/kernels/math.hpp) against long double
// references: the accuracy the headers document, and their limits. (No libm in the kernels: the
// references here are the test's, not the library's.)
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <limits>
#include <string>

#include "sorix_core/kernels/math.hpp"

namespace kernels = sorix::kernels;

namespace {

template <class T>
long double ulp_of(long double v) {
  const int e = std::ilogb(static_cast<T>(v == 0 ? std::numeric_limits<T>::min() : v));
  return std::ldexp(1.0L, std::max(e, std::numeric_limits<T>::min_exponent - 1) - std::numeric_limits<T>::digits + 1);
}

struct Worst {
  double rel = 0;  // in ulps of the reference
  double abs = 0;  // in ulps of 1 (where the reference crosses zero)
  double at = 0;
};

/// Evaluates f on n points x(t), t in [0, 1), lane by lane through the baseline batch, against ref.
template <class T>
Worst measure(const std::function<xsimd::batch<T, kernels::ScalarArch>(const xsimd::batch<T, kernels::ScalarArch>&)>& f,
              long double (*ref)(long double), const std::function<double(double)>& x_of, std::size_t n,
              double rel_floor) {
  using V = xsimd::batch<T, kernels::ScalarArch>;
  constexpr std::size_t W = V::size;
  Worst w;
  for (std::size_t i = 0; i < n; i += W) {
    alignas(64) T x[W], y[W];
    for (std::size_t l = 0; l < W; ++l) x[l] = static_cast<T>(x_of(double(i + l) / double(n)));
    f(V::load_aligned(x)).store_aligned(y);
    for (std::size_t l = 0; l < W; ++l) {
      const long double want = ref(static_cast<long double>(x[l]));
      const long double err = std::fabs(static_cast<long double>(y[l]) - want);
      const double a = double(err / ulp_of<T>(1.0L));
      w.abs = std::max(w.abs, a);
      if (std::fabs(want) >= rel_floor) {
        const double r = double(err / ulp_of<T>(want));
        if (r > w.rel) w.rel = r, w.at = double(x[l]);
      }
    }
  }
  return w;
}

long double sin_l(long double x) { return std::sin(x); }
long double cos_l(long double x) { return std::cos(x); }
long double tan_l(long double x) { return std::tan(x); }
long double log1p_l(long double x) { return std::log1p(x); }
long double expm1_l(long double x) { return std::expm1(x); }
long double erf_l(long double x) { return std::erf(x); }

template <class T>
void check_accuracy() {
  using V = xsimd::batch<T, kernels::ScalarArch>;
  constexpr bool f32 = std::is_same_v<T, float>;
  const std::size_t n = 200000;
  auto lin = [](double lo, double hi) { return [=](double t) { return lo + (hi - lo) * t; }; };
  // A wide, sparse sweep (large arguments) and a dense one near the origin.
  const double big = f32 ? 1048576.0 : 1073741824.0;  // 2^20, 2^30
  for (const auto& [what, range] : {std::pair<const char*, double>{"near", 10.0}, {"wide", big}}) {
    const Worst s = measure<T>([](const V& x) { return kernels::math::sin(x); }, sin_l, lin(-range, range), n, 0.0625);
    const Worst c = measure<T>([](const V& x) { return kernels::math::cos(x); }, cos_l, lin(-range, range), n, 0.0625);
    const Worst t = measure<T>([](const V& x) { return kernels::math::tan(x); }, tan_l, lin(-range, range), n, 0.0625);
    INFO(what << ": sin " << s.rel << " ulp (at " << s.at << "), abs " << s.abs << "; cos " << c.rel << " (at " << c.at
              << "), abs " << c.abs << "; tan " << t.rel << " (at " << t.at << ")");
    CHECK(s.rel <= 2.0);
    CHECK(c.rel <= 2.0);
    CHECK(t.rel <= 4.0);
    CHECK(s.abs <= 1.0);
    CHECK(c.abs <= 1.0);
  }
  const Worst l1 = measure<T>([](const V& x) { return kernels::math::log1p(x); }, log1p_l,
                              [](double t) { return -0.999 + std::exp2(-40.0 + 50.0 * t) - std::exp2(-40.0); }, n, 0);
  const Worst l2 = measure<T>([](const V& x) { return kernels::math::log1p(x); }, log1p_l,
                              [](double t) { return std::exp2(-60.0 + 120.0 * t); }, n, 0);
  const double lim = f32 ? 88.0 : 709.0;
  const Worst e1 = measure<T>([](const V& x) { return kernels::math::expm1(x); }, expm1_l,
                              [=](double t) { return -lim + 2 * lim * t; }, n, 0);
  const Worst e2 = measure<T>([](const V& x) { return kernels::math::expm1(x); }, expm1_l,
                              [](double t) { return (t < 0.5 ? -1 : 1) * std::exp2(-60.0 + 120.0 * std::fabs(t - 0.5)); }, n, 0);
  const Worst er = measure<T>([](const V& x) { return kernels::math::erf(x); }, erf_l, lin(-7.0, 7.0), n, 0);
  const Worst er0 = measure<T>([](const V& x) { return kernels::math::erf(x); }, erf_l,
                               [](double t) { return std::exp2(-60.0 + 61.0 * t); }, n, 0);
  INFO("log1p " << l1.rel << " (at " << l1.at << "), " << l2.rel << " (at " << l2.at << "); expm1 " << e1.rel << " (at "
                << e1.at << "), " << e2.rel << " (at " << e2.at << "); erf " << er.rel << " (at " << er.at << "), "
                << er0.rel << " (at " << er0.at << ")");
  CHECK(l1.rel <= 2.0);
  CHECK(l2.rel <= 2.0);
  CHECK(e1.rel <= 3.0);
  CHECK(e2.rel <= 3.0);
  CHECK(er.rel <= 3.0);
  CHECK(er0.rel <= 3.0);
}

}  // namespace

TEST_CASE("sorix's own sin, cos, tan, log1p, expm1 and erf are within a few ulp", "[kernels][math]") {
  check_accuracy<float>();
  check_accuracy<double>();
}
