#pragma once
// Label counting and scikit-learn's score arithmetic, shared by the classification metrics and
// classification_report.
#include <cstdint>
#include <vector>

#include "toolbox/inputs.hpp"
#include "sorix/autograd/ops.hpp"
#include "sorix/toolbox/metrics.hpp"

namespace sorix::metrics::detail {

/// Checked labels: int64, 1-D, one length, not empty.
struct LabelPairs {
  std::vector<std::int64_t> y_true, y_pred;
};
LabelPairs label_pairs(const Tensor& y_true, const Tensor& y_pred, const char* fn);
/// Every label of y_true and y_pred, sorted (scikit-learn's unique_labels).
std::vector<std::int64_t> sorted_union(const LabelPairs& p);
/// Throws for an empty list or duplicates; returns the list unchanged.
std::vector<std::int64_t> checked_labels(const std::vector<std::int64_t>& labels, const char* fn);

/// Per label: true positives, predicted count (tp + fp), true count (tp + fn, the support).
struct Counts {
  std::vector<std::int64_t> labels, tp, pred, truth;
};
Counts count(const LabelPairs& p, const std::vector<std::int64_t>& labels);

struct Scores {
  std::vector<double> precision, recall, f1;
};
Scores per_label(const Counts& c, ZeroDivision z);
struct Averaged {
  double precision, recall, f1;
};
/// Micro, Macro or Weighted.
Averaged average_scores(const Counts& c, Average average, ZeroDivision z);
/// The labels a score with these options covers ([pos_label] for Average::Binary, after
/// scikit-learn's checks).
std::vector<std::int64_t> score_labels(const LabelPairs& p, const ScoreOptions& o, const char* fn);
double zero_division_value(ZeroDivision z);

}  // namespace sorix::metrics::detail
