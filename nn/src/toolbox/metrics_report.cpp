// classification_report (scikit-learn's text, character for character) and
// find_optimal_threshold (Python sorix's grid search).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>
#include <string>

#include "toolbox/metrics_internal.hpp"

namespace sorix::metrics {
namespace {

// Characters (UTF-8 code points) of s, as Python's len() counts them for padding.
std::size_t width_of(const std::string& s) {
  std::size_t n = 0;
  for (unsigned char ch : s) n += (ch & 0xC0) != 0x80;
  return n;
}

std::string right(const std::string& s, std::size_t width) {
  const std::size_t w = width_of(s);
  return w >= width ? s : std::string(width - w, ' ') + s;
}

// Python's "{:>9.{digits}f}": NaN prints as "nan" whatever its sign bit.
std::string fixed(double v, int digits, std::size_t width = 9) {
  if (std::isnan(v)) return right("nan", width);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return right(buf, width);
}

}  // namespace

std::string classification_report(const Tensor& y_true, const Tensor& y_pred,
                                  const ClassificationReportOptions& options) {
  const char* fn = "classification_report";
  const auto p = detail::label_pairs(y_true, y_pred, fn);
  check(options.digits() >= 0 && options.digits() <= 20, fn, "digits must be in [0, 20], got ", options.digits());
  const auto present = detail::sorted_union(p);
  const auto labels = options.labels() ? detail::checked_labels(*options.labels(), fn) : present;
  std::vector<std::string> names = options.target_names();
  if (names.empty()) {
    for (std::int64_t l : labels) names.push_back(std::to_string(l));
  }
  check(names.size() == labels.size(), fn, "the number of labels, ", labels.size(),
        ", does not match the number of target_names, ", names.size());
  // The micro average equals the accuracy unless labels leave some label out.
  const std::set<std::int64_t> listed(labels.begin(), labels.end());
  bool micro_is_accuracy = true;
  for (std::int64_t l : present) micro_is_accuracy = micro_is_accuracy && listed.count(l) != 0;

  const auto c = detail::count(p, labels);
  const auto s = detail::per_label(c, options.zero_division());
  const int digits = options.digits();
  std::size_t width = std::string("weighted avg").size();
  for (const auto& n : names) width = std::max(width, width_of(n));
  width = std::max(width, static_cast<std::size_t>(digits));

  std::string out = right("", width) + " ";
  for (const char* h : {"precision", "recall", "f1-score", "support"}) out += " " + right(h, 9);
  out += "\n\n";
  std::int64_t total = 0;
  for (std::size_t i = 0; i < labels.size(); ++i) {
    out += right(names[i], width) + " " + " " + fixed(s.precision[i], digits) + " " + fixed(s.recall[i], digits) + " " +
           fixed(s.f1[i], digits) + " " + right(std::to_string(c.truth[i]), 9) + "\n";
    total += c.truth[i];
  }
  out += "\n";
  const std::string support = right(std::to_string(total), 9);
  for (Average a : {Average::Micro, Average::Macro, Average::Weighted}) {
    const auto avg = detail::average_scores(c, a, options.zero_division());
    if (a == Average::Micro && micro_is_accuracy) {
      out += right("accuracy", width) + " " + " " + right("", 9) + " " + right("", 9) + " " + fixed(avg.f1, digits) +
             " " + support + "\n";
      continue;
    }
    const std::string heading = a == Average::Micro ? "micro avg" : a == Average::Macro ? "macro avg" : "weighted avg";
    out += right(heading, width) + " " + " " + fixed(avg.precision, digits) + " " + fixed(avg.recall, digits) + " " +
           fixed(avg.f1, digits) + " " + support + "\n";
  }
  return out;
}

ThresholdResult find_optimal_threshold(const Tensor& y_true, const Tensor& y_score, const ThresholdMetric& metric,
                                       std::int64_t n_thresholds) {
  const char* fn = "find_optimal_threshold";
  check(n_thresholds >= 2, fn, "n_thresholds must be at least 2, got ", n_thresholds);
  const auto labels = toolbox_detail::int64_values(y_true, fn, "y_true");
  toolbox_detail::check_defined(y_score, fn, "y_score");
  check(y_score.dim() == 1 && is_floating(y_score.dtype()), fn,
        "y_score must be a 1-D float32/float64 tensor of probabilities, got ", dtype_name(y_score.dtype()), " ",
        shape_string(y_score.shape()));
  check(static_cast<std::int64_t>(labels.size()) == y_score.numel(), fn,
        "y_true and y_score must have the same length, got ", labels.size(), " and ", y_score.numel());
  check(!labels.empty(), fn, "empty input (0 samples)");
  const auto score = toolbox_detail::float64_values(toolbox_detail::to_float64(y_score, fn, "y_score"));
  const ThresholdMetric f1 = [](const Tensor& t, const Tensor& p) {
    return f1_score(t, p, ScoreOptions(Average::Binary).zero_division(ZeroDivision::Zero)).item<double>();
  };
  const ThresholdMetric& m = metric ? metric : f1;
  const std::int64_t n = static_cast<std::int64_t>(labels.size());
  bool found = false;
  ThresholdResult best{0.0, 0.0};
  std::string last_error;
  for (std::int64_t k = 1; k < n_thresholds; ++k) {
    const double t = static_cast<double>(k) / static_cast<double>(n_thresholds);
    Tensor pred = empty({n}, Dtype::Int64);
    std::int64_t* q = pred.data_ptr<std::int64_t>();
    for (std::int64_t i = 0; i < n; ++i) q[i] = score[static_cast<std::size_t>(i)] >= t ? 1 : 0;
    double value;
    try {
      value = m(y_true, pred);
    } catch (const std::exception& e) {
      last_error = e.what();  // undefined at this threshold (Python sorix skips it)
      continue;
    }
    if (std::isnan(value)) continue;
    if (!found || value > best.score) {
      best = {t, value};
      found = true;
    }
  }
  if (!found) {
    throw std::runtime_error(error_message(fn, "the metric failed (or gave NaN) at every one of the ", n_thresholds - 1,
                                           " thresholds", last_error.empty() ? "" : "; last error: ", last_error));
  }
  return best;
}

}  // namespace sorix::metrics
