#pragma once
// sorix::metrics — Python sorix's metrics, with scikit-learn's definitions (sklearn.metrics 1.2;
// zero_division = NaN as in 1.3). Where Python sorix differs from scikit-learn, this follows
// scikit-learn (docs/toolbox.md lists the differences).
//
// Inputs: 1-D tensors of one length (regression metrics also take 2-D [n, outputs] tensors,
// averaged uniformly over the outputs as scikit-learn's multioutput="uniform_average").
//   regression: float32/float64/int64 values, computed in float64;
//   classification: int64 class labels (any values, e.g. 0..9 or -1/1).
// Results are double (0-dim float64 tensors for scores that may be per label).
//
// Errors: std::invalid_argument naming the function and the offending value or shapes for an
// empty input, NaN or infinity, mismatched lengths, a wrong dtype or an unknown option.
//
// Threading and determinism: sums are the library's deterministic reductions (fixed chunks,
// combined in order) and label counts are exact, so every result is bit-identical for any
// thread count and on every CPU capability.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "sorix/core/tensor.hpp"

namespace sorix::metrics {

// ---- regression --------------------------------------------------------------------------------
/// mean((y - p)^2)
double mean_squared_error(const Tensor& y_true, const Tensor& y_pred);
/// sqrt(mean_squared_error) (for 2-D inputs: the mean over outputs of each output's RMSE, as
/// scikit-learn's root_mean_squared_error).
double root_mean_squared_error(const Tensor& y_true, const Tensor& y_pred);
/// mean(|y - p|)
double mean_absolute_error(const Tensor& y_true, const Tensor& y_pred);
/// mean(|y - p| / max(|y|, eps)), eps = 2^-52 (scikit-learn's; a fraction, not a percentage;
/// Python sorix divides by y itself, which is infinite at y = 0).
double mean_absolute_percentage_error(const Tensor& y_true, const Tensor& y_pred);
/// 1 - sum((y - p)^2) / sum((y - mean(y))^2). A constant y gives 1 when the prediction is perfect,
/// else 0 (scikit-learn's force_finite). Fewer than two samples: NaN (as scikit-learn).
double r2_score(const Tensor& y_true, const Tensor& y_pred);
/// Python sorix's table: R2, MAE, MSE, RMSE and MAPE (as a percentage), one per line:
///   Metric |     Score | Range
///   ------------------------------
///   R2     |    0.9876 | [0,   1]
std::string regression_report(const Tensor& y_true, const Tensor& y_pred);

// ---- classification ----------------------------------------------------------------------------
/// How per-label scores are combined (scikit-learn's `average`).
///   Binary:   the score of pos_label only; the labels present must be at most two.
///   Micro:    from the total true positives, false positives and false negatives.
///   Macro:    the unweighted mean of the per-label scores.
///   Weighted: the mean of the per-label scores weighted by each label's support (true count).
///   None:     the per-label scores, float64 [labels], in the order of the labels.
enum class Average { Binary, Micro, Macro, Weighted, None };
/// The value of a score whose denominator is 0 (a label never predicted, for precision; never
/// true, for recall; neither, for F1). Warn: 0 (scikit-learn also warns; sorix stays silent).
/// NaN: NaN, and NaN scores are left out of Macro and Weighted averages (scikit-learn 1.3).
enum class ZeroDivision { Warn, Zero, One, NaN };

/// "binary", "micro", "macro", "weighted", "none"; another name throws std::invalid_argument.
Average parse_average(const std::string& name);
/// "warn", "0", "1", "nan".
ZeroDivision parse_zero_division(const std::string& name);

struct ScoreOptions {
  ScoreOptions() = default;
  ScoreOptions(Average a) : average_(a) {}  // NOLINT: implicit, f1_score(y, p, Average::Macro)
  ScoreOptions& average(Average a) { average_ = a; return *this; }
  ScoreOptions& average(const std::string& name) { average_ = parse_average(name); return *this; }
  /// The positive label for Average::Binary (ignored otherwise, as scikit-learn).
  ScoreOptions& pos_label(std::int64_t l) { pos_label_ = l; return *this; }
  ScoreOptions& zero_division(ZeroDivision z) { zero_division_ = z; return *this; }
  ScoreOptions& zero_division(const std::string& name) { zero_division_ = parse_zero_division(name); return *this; }
  /// The labels to score, in this order (default: every label in y_true or y_pred, sorted). May
  /// name labels that occur in neither; duplicates throw.
  ScoreOptions& labels(std::vector<std::int64_t> l) { labels_ = std::move(l); return *this; }
  Average average() const { return average_; }
  std::int64_t pos_label() const { return pos_label_; }
  ZeroDivision zero_division() const { return zero_division_; }
  const std::optional<std::vector<std::int64_t>>& labels() const { return labels_; }

 private:
  Average average_ = Average::Binary;
  std::int64_t pos_label_ = 1;
  ZeroDivision zero_division_ = ZeroDivision::Warn;
  std::optional<std::vector<std::int64_t>> labels_;
};

/// The fraction of labels predicted exactly.
double accuracy_score(const Tensor& y_true, const Tensor& y_pred);
/// tp / (tp + fp). Returns a 0-dim float64 tensor (item<double>()), or float64 [labels] for
/// Average::None.
Tensor precision_score(const Tensor& y_true, const Tensor& y_pred, const ScoreOptions& options = {});
/// tp / (tp + fn).
Tensor recall_score(const Tensor& y_true, const Tensor& y_pred, const ScoreOptions& options = {});
/// 2 tp / (2 tp + fp + fn) (the harmonic mean of precision and recall).
Tensor f1_score(const Tensor& y_true, const Tensor& y_pred, const ScoreOptions& options = {});

/// Per-label precision, recall, F1 (float64 [labels]) and support (int64 [labels]), as
/// scikit-learn's precision_recall_fscore_support(average=None).
struct PrecisionRecallF1 {
  std::vector<std::int64_t> labels;
  Tensor precision, recall, f1, support;
};
PrecisionRecallF1 precision_recall_fscore_support(const Tensor& y_true, const Tensor& y_pred,
                                                   const ScoreOptions& options = {});

/// The labels scikit-learn's unique_labels gives: every value of y_true and y_pred, sorted.
std::vector<std::int64_t> unique_labels(const Tensor& y_true, const Tensor& y_pred);

/// Normalisation of a confusion matrix: none (counts, int64), over each true row, each predicted
/// column, or all entries (float64; a row or column with no samples stays 0, as scikit-learn).
enum class Normalize { None, True, Pred, All };
struct ConfusionMatrixOptions {
  ConfusionMatrixOptions() = default;
  ConfusionMatrixOptions& labels(std::vector<std::int64_t> l) { labels_ = std::move(l); return *this; }
  ConfusionMatrixOptions& normalize(Normalize n) { normalize_ = n; return *this; }
  /// "true", "pred", "all" or "none".
  ConfusionMatrixOptions& normalize(const std::string& name);
  const std::optional<std::vector<std::int64_t>>& labels() const { return labels_; }
  Normalize normalize() const { return normalize_; }

 private:
  std::optional<std::vector<std::int64_t>> labels_;
  Normalize normalize_ = Normalize::None;
};
/// C[i][j] = samples with true label labels[i] predicted as labels[j]; int64 [L, L] (float64
/// when normalised). Labels default to unique_labels(y_true, y_pred) (Python sorix uses y_true's
/// labels only). Samples whose labels are not listed are not counted.
Tensor confusion_matrix(const Tensor& y_true, const Tensor& y_pred, const ConfusionMatrixOptions& options = {});

struct ClassificationReportOptions {
  ClassificationReportOptions() = default;
  ClassificationReportOptions& labels(std::vector<std::int64_t> l) { labels_ = std::move(l); return *this; }
  /// Row names, one per label (default: the label's number).
  ClassificationReportOptions& target_names(std::vector<std::string> n) { target_names_ = std::move(n); return *this; }
  ClassificationReportOptions& digits(int d) { digits_ = d; return *this; }
  ClassificationReportOptions& zero_division(ZeroDivision z) { zero_division_ = z; return *this; }
  const std::optional<std::vector<std::int64_t>>& labels() const { return labels_; }
  const std::vector<std::string>& target_names() const { return target_names_; }
  int digits() const { return digits_; }
  ZeroDivision zero_division() const { return zero_division_; }

 private:
  std::optional<std::vector<std::int64_t>> labels_;
  std::vector<std::string> target_names_;
  int digits_ = 2;
  ZeroDivision zero_division_ = ZeroDivision::Warn;
};
/// scikit-learn's text report, character for character: a row per label (precision, recall,
/// f1-score, support), then accuracy (or "micro avg" when labels leave some out), "macro avg"
/// and "weighted avg":
///                 precision    recall  f1-score   support
///
///              0       0.83      0.91      0.87        11
///   ...
///       accuracy                           0.80        20
///      macro avg       0.80      0.79      0.79        20
///   weighted avg       0.80      0.80      0.80        20
std::string classification_report(const Tensor& y_true, const Tensor& y_pred,
                                  const ClassificationReportOptions& options = {});

// ---- threshold search --------------------------------------------------------------------------
/// A metric of (y_true, y_pred) to maximise; y_pred is int64 0/1.
using ThresholdMetric = std::function<double(const Tensor& y_true, const Tensor& y_pred)>;
struct ThresholdResult {
  double threshold;
  double score;
};
/// Python sorix's search: for the candidate thresholds t = k / n_thresholds, k = 1 ..
/// n_thresholds - 1, predicts y_pred = (y_score >= t) (1 positive, as scikit-learn's
/// TunedThresholdClassifierCV) and evaluates metric(y_true, y_pred); returns the threshold with
/// the highest score (the lowest such threshold on ties) and that score.
///   y_true: int64 labels [n] (0/1 for the default metric); y_score: float32/float64 [n],
///   the predicted probability of the positive class (NaN or infinity throws).
///   metric: default binary F1 with pos_label 1 and zero_division 0.
/// A candidate whose metric throws is skipped; if every candidate throws, std::runtime_error
/// (the metric is broken). n_thresholds >= 2.
ThresholdResult find_optimal_threshold(const Tensor& y_true, const Tensor& y_score, const ThresholdMetric& metric = {},
                                       std::int64_t n_thresholds = 200);

}  // namespace sorix::metrics
