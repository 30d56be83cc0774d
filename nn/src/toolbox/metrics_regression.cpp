// Regression metrics (sorix/toolbox/metrics.hpp): float64 Tensor ops, so every sum is the
// library's deterministic reduction.
#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>
#include <string>

#include "toolbox/inputs.hpp"
#include "sorix/autograd/grad_mode.hpp"
#include "sorix/autograd/ops.hpp"
#include "sorix/toolbox/metrics.hpp"

namespace sorix::metrics {
namespace {

using toolbox_detail::to_float64;

struct Targets {
  Tensor y, p;  // float64 [n] or [n, outputs]
};

Targets targets(const Tensor& y_true, const Tensor& y_pred, const char* fn) {
  toolbox_detail::check_defined(y_true, fn, "y_true");
  toolbox_detail::check_defined(y_pred, fn, "y_pred");
  check(y_true.dim() == 1 || y_true.dim() == 2, fn, "y_true must be 1-D [n] or 2-D [n, outputs], got shape ",
        shape_string(y_true.shape()));
  check(y_true.shape() == y_pred.shape(), fn, "y_true and y_pred must have the same shape, got ",
        shape_string(y_true.shape()), " and ", shape_string(y_pred.shape()));
  check(y_true.numel() > 0, fn, "empty input (y_true has shape ", shape_string(y_true.shape()), ")");
  return {to_float64(y_true, fn, "y_true"), to_float64(y_pred, fn, "y_pred")};
}

// Per-output mean over the samples (dim 0): 0-dim for 1-D inputs, [outputs] for 2-D.
Tensor per_output_mean(const Tensor& v) { return v.mean({0}); }

}  // namespace

double mean_squared_error(const Tensor& y_true, const Tensor& y_pred) {
  NoGradGuard guard;
  auto [y, p] = targets(y_true, y_pred, "mean_squared_error");
  return per_output_mean((y - p).square()).mean().item<double>();
}

double root_mean_squared_error(const Tensor& y_true, const Tensor& y_pred) {
  NoGradGuard guard;
  auto [y, p] = targets(y_true, y_pred, "root_mean_squared_error");
  return per_output_mean((y - p).square()).sqrt().mean().item<double>();
}

double mean_absolute_error(const Tensor& y_true, const Tensor& y_pred) {
  NoGradGuard guard;
  auto [y, p] = targets(y_true, y_pred, "mean_absolute_error");
  return per_output_mean((y - p).abs()).mean().item<double>();
}

double mean_absolute_percentage_error(const Tensor& y_true, const Tensor& y_pred) {
  NoGradGuard guard;
  auto [y, p] = targets(y_true, y_pred, "mean_absolute_percentage_error");
  const double eps = std::numeric_limits<double>::epsilon();
  return per_output_mean((y - p).abs() / y.abs().clamp_min(eps)).mean().item<double>();
}

double r2_score(const Tensor& y_true, const Tensor& y_pred) {
  NoGradGuard guard;
  auto [y, p] = targets(y_true, y_pred, "r2_score");
  if (y.size(0) < 2) return std::numeric_limits<double>::quiet_NaN();  // as scikit-learn (it warns)
  const auto num = toolbox_detail::float64_values((y - p).square().sum({0}));
  const auto den = toolbox_detail::float64_values((y - y.mean({0}, true)).square().sum({0}));
  double total = 0;
  for (std::size_t j = 0; j < num.size(); ++j) {
    // scikit-learn's force_finite: a constant target scores 1 when predicted exactly, else 0.
    double score = 1.0;
    if (den[j] != 0 && num[j] != 0) score = 1.0 - num[j] / den[j];
    else if (den[j] == 0 && num[j] != 0) score = 0.0;
    total += score;
  }
  return total / static_cast<double>(num.size());
}

std::string regression_report(const Tensor& y_true, const Tensor& y_pred) {
  struct Row {
    const char* name;
    double value;
    const char* range;
  };
  // Python sorix's table (the ranges padded to 8 characters; MAPE as a percentage).
  const Row rows[] = {{"R2", r2_score(y_true, y_pred), "[0,   1]"},
                      {"MAE", mean_absolute_error(y_true, y_pred), "[0,  \u221e) "},
                      {"MSE", mean_squared_error(y_true, y_pred), "[0,  \u221e) "},
                      {"RMSE", root_mean_squared_error(y_true, y_pred), "[0,  \u221e) "},
                      {"MAPE", mean_absolute_percentage_error(y_true, y_pred) * 100, "[0, 100]"}};
  std::ostringstream os;
  char line[128];
  std::snprintf(line, sizeof line, "%-6s | %9s | %8s", "Metric", "Score", "Range");
  const std::string header = line;
  os << header << '\n' << std::string(header.size(), '-');
  for (const Row& r : rows) {
    std::snprintf(line, sizeof line, "\n%-6s | %9.4f | %s", r.name, r.value, r.range);
    os << line;
  }
  return os.str();
}

}  // namespace sorix::metrics
