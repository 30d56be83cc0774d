// MinMaxScaler, StandardScaler and RobustScaler (sorix/toolbox/preprocessing.hpp): statistics
// from the library's deterministic reductions and exact selections, per-feature arithmetic in
// double on the [features] vectors, transforms as elementwise ops in float64.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "toolbox/inputs.hpp"
#include "toolbox/state.hpp"
#include "sorix/autograd/grad_mode.hpp"
#include "sorix/autograd/ops.hpp"
#include "sorix/parallel/parallel.hpp"
#include "sorix/toolbox/preprocessing.hpp"

namespace sorix::preprocessing {

using toolbox_detail::float64_scalar;
using toolbox_detail::float64_values;
using toolbox_detail::int64_scalar;
using toolbox_detail::StateReader;
using toolbox_detail::stored;

Tensor Transformer::fit_transform(const Tensor& x) {
  fit(x);
  return transform(x);
}

Tensor Transformer::inverse_transform(const Tensor&) const {
  throw std::logic_error(error_message(name(), "inverse_transform is not available (as in scikit-learn)"));
}

namespace {

std::string where(const char* cls, const char* method) { return std::string(cls) + "." + method; }

// A checked [n, d] input as contiguous float64.
Tensor input64(const Tensor& x, const std::string& w) {
  toolbox_detail::check_matrix(x, w.c_str(), "x");
  return toolbox_detail::to_float64(x, w.c_str(), "x");
}

Dtype output_dtype(const Tensor& x) { return is_floating(x.dtype()) ? x.dtype() : Dtype::Float64; }

// scikit-learn's _handle_zeros_in_scale eps: the input dtype's.
double dtype_eps(const Tensor& x) {
  return x.dtype() == Dtype::Float32 ? static_cast<double>(std::numeric_limits<float>::epsilon())
                                     : std::numeric_limits<double>::epsilon();
}

Tensor vec(const std::vector<double>& v) { return tensor(v, {static_cast<std::int64_t>(v.size())}, Dtype::Float64); }

void check_fitted(bool fitted, const char* cls, const char* method) {
  check<std::runtime_error>(fitted, where(cls, method).c_str(), "this ", cls, " is not fitted yet; call fit() first");
}

void check_features(const Tensor& x, std::int64_t expected, const std::string& w, const char* cls) {
  check(x.size(1) == expected, w.c_str(), "x has ", x.size(1), " features, but this ", cls, " was fitted on ", expected,
        " (x has shape ", shape_string(x.shape()), ")");
}

// numpy's percentile of one sorted run (linear method, numpy's _lerp).
double sorted_percentile(const std::vector<double>& s, double q) {
  const double virt = static_cast<double>(s.size() - 1) * (q / 100.0);
  const double lo_f = std::floor(virt);
  if (virt >= static_cast<double>(s.size() - 1)) return s.back();
  if (virt < 0) return s.front();
  const std::size_t lo = static_cast<std::size_t>(lo_f);
  const double a = s[lo], b = s[lo + 1], t = virt - lo_f, diff = b - a;
  return t >= 0.5 ? b - diff * (1.0 - t) : a + diff * t;
}

double sorted_median(const std::vector<double>& s) {
  const std::size_t n = s.size();
  return n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2.0;
}

// Each column of a checked float64 [n, d] matrix, sorted (sorting is exact: any thread order).
std::vector<std::vector<double>> sorted_columns(const Tensor& x64) {
  const std::size_t n = static_cast<std::size_t>(x64.size(0)), d = static_cast<std::size_t>(x64.size(1));
  const double* p = x64.data_ptr<double>();
  std::vector<std::vector<double>> cols(d, std::vector<double>(n));
  parallel::parallel_for(
      d, 1,
      [&](std::size_t j0, std::size_t j1) {
        for (std::size_t j = j0; j < j1; ++j) {
          for (std::size_t i = 0; i < n; ++i) cols[j][i] = p[i * d + j];
          std::sort(cols[j].begin(), cols[j].end());
        }
      },
      0);
  return cols;
}

// Checks a loaded per-feature vector has the fitted width.
Tensor feature_vector(StateReader& r, const std::string& key, std::int64_t d) {
  return r.tensor(key, Dtype::Float64, {d}, true);
}

}  // namespace

Tensor column_percentile(const Tensor& x, double q) {
  check(q >= 0 && q <= 100, "column_percentile", "q must be in [0, 100], got ", q);
  const auto cols = sorted_columns(input64(x, "column_percentile"));
  std::vector<double> out;
  for (const auto& c : cols) out.push_back(sorted_percentile(c, q));
  return vec(out);
}

Tensor column_median(const Tensor& x) {
  const auto cols = sorted_columns(input64(x, "column_median"));
  std::vector<double> out;
  for (const auto& c : cols) out.push_back(sorted_median(c));
  return vec(out);
}

// ---- MinMaxScaler ------------------------------------------------------------------------------
MinMaxScaler::MinMaxScaler(MinMaxScalerOptions options) : options_(options) {
  const auto [lo, hi] = options_.feature_range();
  check(std::isfinite(lo) && std::isfinite(hi) && lo < hi, "MinMaxScaler",
        "the minimum of feature_range must be smaller than its maximum, got (", lo, ", ", hi, ")");
}

std::int64_t MinMaxScaler::n_features_in() const {
  check_fitted(fitted(), "MinMaxScaler", "n_features_in");
  return data_min_.numel();
}

MinMaxScaler& MinMaxScaler::fit(const Tensor& x) {
  NoGradGuard guard;
  const Tensor x64 = input64(x, "MinMaxScaler.fit");
  const auto mn = float64_values(x64.amin({0})), mx = float64_values(x64.amax({0}));
  const auto [lo, hi] = options_.feature_range();
  const double eps = dtype_eps(x);
  std::vector<double> range(mn.size()), scale(mn.size()), min(mn.size());
  for (std::size_t j = 0; j < mn.size(); ++j) {
    range[j] = mx[j] - mn[j];
    scale[j] = (hi - lo) / (range[j] < 10 * eps ? 1.0 : range[j]);
    min[j] = lo - mn[j] * scale[j];
  }
  data_min_ = vec(mn);
  data_max_ = vec(mx);
  data_range_ = vec(range);
  scale_ = vec(scale);
  min_ = vec(min);
  n_samples_seen_ = x.size(0);
  return *this;
}

Tensor MinMaxScaler::transform(const Tensor& x) const {
  NoGradGuard guard;
  check_fitted(fitted(), "MinMaxScaler", "transform");
  const Tensor x64 = input64(x, "MinMaxScaler.transform");
  check_features(x64, data_min_.numel(), "MinMaxScaler.transform", "MinMaxScaler");
  Tensor y = x64 * scale_ + min_;
  if (options_.clip()) y = y.clamp(options_.feature_range().first, options_.feature_range().second);
  return y.to(output_dtype(x));
}

Tensor MinMaxScaler::inverse_transform(const Tensor& x) const {
  NoGradGuard guard;
  check_fitted(fitted(), "MinMaxScaler", "inverse_transform");
  const Tensor x64 = input64(x, "MinMaxScaler.inverse_transform");
  check_features(x64, data_min_.numel(), "MinMaxScaler.inverse_transform", "MinMaxScaler");
  return ((x64 - min_) / scale_).to(output_dtype(x));
}

StateDict MinMaxScaler::state_dict() const {
  check_fitted(fitted(), "MinMaxScaler", "state_dict");
  const auto [lo, hi] = options_.feature_range();
  return StateDict{{"feature_range.min", float64_scalar(lo)}, {"feature_range.max", float64_scalar(hi)},
                   {"clip", int64_scalar(options_.clip())},   {"n_samples_seen_", int64_scalar(n_samples_seen_)},
                   {"data_min_", stored(data_min_)},          {"data_max_", stored(data_max_)},
                   {"data_range_", stored(data_range_)},      {"scale_", stored(scale_)},
                   {"min_", stored(min_)}};
}

void MinMaxScaler::load_state_dict(const StateDict& state) {
  StateReader r(state, "MinMaxScaler.load_state_dict");
  r.expect("feature_range.min", options_.feature_range().first);
  r.expect("feature_range.max", options_.feature_range().second);
  r.expect("clip", static_cast<std::int64_t>(options_.clip()));
  const std::int64_t seen = r.int64("n_samples_seen_");
  const Tensor dmin = r.tensor("data_min_", Dtype::Float64, {-1}, true);
  const std::int64_t d = dmin.numel();
  check(d > 0, r.where().c_str(), "data_min_ is empty");
  const Tensor dmax = feature_vector(r, "data_max_", d), range = feature_vector(r, "data_range_", d),
               scale = feature_vector(r, "scale_", d), min = feature_vector(r, "min_", d);
  r.finish();
  data_min_ = dmin;
  data_max_ = dmax;
  data_range_ = range;
  scale_ = scale;
  min_ = min;
  n_samples_seen_ = seen;
}

// ---- StandardScaler ----------------------------------------------------------------------------
StandardScaler::StandardScaler(StandardScalerOptions options) : options_(options) {}

std::int64_t StandardScaler::n_features_in() const {
  check_fitted(fitted(), "StandardScaler", "n_features_in");
  return mean_.numel();
}

StandardScaler& StandardScaler::fit(const Tensor& x) {
  NoGradGuard guard;
  const Tensor x64 = input64(x, "StandardScaler.fit");
  const double n = static_cast<double>(x64.size(0));
  const Tensor mean = x64.mean({0});
  // scikit-learn's corrected two-pass variance: (sum d^2 - (sum d)^2 / n) / n, d = x - mean.
  const Tensor dev = x64 - mean;
  const auto m = float64_values(mean), corr = float64_values(dev.sum({0})), sq = float64_values(dev.square().sum({0}));
  const double eps = std::numeric_limits<double>::epsilon();
  std::vector<double> var(m.size()), scale(m.size());
  for (std::size_t j = 0; j < m.size(); ++j) {
    var[j] = (sq[j] - corr[j] * corr[j] / n) / n;
    // scikit-learn's _is_constant_feature: the variance is within rounding of 0.
    const double bound = n * eps * var[j] + (n * m[j] * eps) * (n * m[j] * eps);
    scale[j] = var[j] <= bound ? 1.0 : std::sqrt(var[j]);
  }
  mean_ = mean.contiguous();
  var_ = vec(var);
  scale_ = vec(scale);
  n_samples_seen_ = x.size(0);
  return *this;
}

Tensor StandardScaler::transform(const Tensor& x) const {
  NoGradGuard guard;
  check_fitted(fitted(), "StandardScaler", "transform");
  Tensor y = input64(x, "StandardScaler.transform");
  check_features(y, mean_.numel(), "StandardScaler.transform", "StandardScaler");
  if (options_.with_mean()) y = y - mean_;
  if (options_.with_std()) y = y / scale_;
  return y.to(output_dtype(x));
}

Tensor StandardScaler::inverse_transform(const Tensor& x) const {
  NoGradGuard guard;
  check_fitted(fitted(), "StandardScaler", "inverse_transform");
  Tensor y = input64(x, "StandardScaler.inverse_transform");
  check_features(y, mean_.numel(), "StandardScaler.inverse_transform", "StandardScaler");
  if (options_.with_std()) y = y * scale_;
  if (options_.with_mean()) y = y + mean_;
  return y.to(output_dtype(x));
}

StateDict StandardScaler::state_dict() const {
  check_fitted(fitted(), "StandardScaler", "state_dict");
  return StateDict{{"with_mean", int64_scalar(options_.with_mean())},
                   {"with_std", int64_scalar(options_.with_std())},
                   {"n_samples_seen_", int64_scalar(n_samples_seen_)},
                   {"mean_", stored(mean_)},
                   {"var_", stored(var_)},
                   {"scale_", stored(scale_)}};
}

void StandardScaler::load_state_dict(const StateDict& state) {
  StateReader r(state, "StandardScaler.load_state_dict");
  r.expect("with_mean", static_cast<std::int64_t>(options_.with_mean()));
  r.expect("with_std", static_cast<std::int64_t>(options_.with_std()));
  const std::int64_t seen = r.int64("n_samples_seen_");
  const Tensor mean = r.tensor("mean_", Dtype::Float64, {-1}, true);
  check(mean.numel() > 0, r.where().c_str(), "mean_ is empty");
  const Tensor var = feature_vector(r, "var_", mean.numel()), scale = feature_vector(r, "scale_", mean.numel());
  r.finish();
  mean_ = mean;
  var_ = var;
  scale_ = scale;
  n_samples_seen_ = seen;
}

// ---- RobustScaler ------------------------------------------------------------------------------
RobustScaler::RobustScaler(RobustScalerOptions options) : options_(options) {
  const auto [lo, hi] = options_.quantile_range();
  check(lo >= 0 && lo <= hi && hi <= 100, "RobustScaler", "invalid quantile_range (", lo, ", ", hi,
        "): expected 0 <= q_min <= q_max <= 100");
}

std::int64_t RobustScaler::n_features_in() const {
  check_fitted(fitted(), "RobustScaler", "n_features_in");
  return center_.numel();
}

RobustScaler& RobustScaler::fit(const Tensor& x) {
  NoGradGuard guard;
  const auto cols = sorted_columns(input64(x, "RobustScaler.fit"));
  const auto [lo, hi] = options_.quantile_range();
  const double eps = dtype_eps(x);
  std::vector<double> center, scale;
  for (const auto& c : cols) {
    center.push_back(sorted_median(c));
    const double s = sorted_percentile(c, hi) - sorted_percentile(c, lo);
    scale.push_back(s < 10 * eps ? 1.0 : s);
  }
  center_ = vec(center);
  scale_ = vec(scale);
  return *this;
}

Tensor RobustScaler::transform(const Tensor& x) const {
  NoGradGuard guard;
  check_fitted(fitted(), "RobustScaler", "transform");
  Tensor y = input64(x, "RobustScaler.transform");
  check_features(y, center_.numel(), "RobustScaler.transform", "RobustScaler");
  if (options_.with_centering()) y = y - center_;
  if (options_.with_scaling()) y = y / scale_;
  return y.to(output_dtype(x));
}

Tensor RobustScaler::inverse_transform(const Tensor& x) const {
  NoGradGuard guard;
  check_fitted(fitted(), "RobustScaler", "inverse_transform");
  Tensor y = input64(x, "RobustScaler.inverse_transform");
  check_features(y, center_.numel(), "RobustScaler.inverse_transform", "RobustScaler");
  if (options_.with_scaling()) y = y * scale_;
  if (options_.with_centering()) y = y + center_;
  return y.to(output_dtype(x));
}

StateDict RobustScaler::state_dict() const {
  check_fitted(fitted(), "RobustScaler", "state_dict");
  return StateDict{{"with_centering", int64_scalar(options_.with_centering())},
                   {"with_scaling", int64_scalar(options_.with_scaling())},
                   {"quantile_range.min", float64_scalar(options_.quantile_range().first)},
                   {"quantile_range.max", float64_scalar(options_.quantile_range().second)},
                   {"center_", stored(center_)},
                   {"scale_", stored(scale_)}};
}

void RobustScaler::load_state_dict(const StateDict& state) {
  StateReader r(state, "RobustScaler.load_state_dict");
  r.expect("with_centering", static_cast<std::int64_t>(options_.with_centering()));
  r.expect("with_scaling", static_cast<std::int64_t>(options_.with_scaling()));
  r.expect("quantile_range.min", options_.quantile_range().first);
  r.expect("quantile_range.max", options_.quantile_range().second);
  const Tensor center = r.tensor("center_", Dtype::Float64, {-1}, true);
  check(center.numel() > 0, r.where().c_str(), "center_ is empty");
  const Tensor scale = feature_vector(r, "scale_", center.numel());
  r.finish();
  center_ = center;
  scale_ = scale;
}

}  // namespace sorix::preprocessing
