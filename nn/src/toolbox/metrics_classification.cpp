// Classification metrics (sorix/toolbox/metrics.hpp): exact label counts, then scikit-learn's
// precision_recall_fscore_support arithmetic in double.
#include <algorithm>
#include <cmath>
#include <limits>
#include <unordered_map>

#include "toolbox/metrics_internal.hpp"

namespace sorix::metrics {

using toolbox_detail::int64_values;
using toolbox_detail::list_string;

Average parse_average(const std::string& name) {
  if (name == "binary") return Average::Binary;
  if (name == "micro") return Average::Micro;
  if (name == "macro") return Average::Macro;
  if (name == "weighted") return Average::Weighted;
  if (name == "none") return Average::None;
  throw std::invalid_argument(error_message("parse_average", "unknown average '", name,
                                            "' (expected binary, micro, macro, weighted or none)"));
}

ZeroDivision parse_zero_division(const std::string& name) {
  if (name == "warn") return ZeroDivision::Warn;
  if (name == "0") return ZeroDivision::Zero;
  if (name == "1") return ZeroDivision::One;
  if (name == "nan" || name == "NaN") return ZeroDivision::NaN;
  throw std::invalid_argument(error_message("parse_zero_division", "unknown zero_division '", name,
                                            "' (expected warn, 0, 1 or nan)"));
}

ConfusionMatrixOptions& ConfusionMatrixOptions::normalize(const std::string& name) {
  if (name == "none") normalize_ = Normalize::None;
  else if (name == "true") normalize_ = Normalize::True;
  else if (name == "pred") normalize_ = Normalize::Pred;
  else if (name == "all") normalize_ = Normalize::All;
  else
    throw std::invalid_argument(error_message("ConfusionMatrixOptions::normalize", "unknown normalize '", name,
                                              "' (expected true, pred, all or none)"));
  return *this;
}

namespace detail {

LabelPairs label_pairs(const Tensor& y_true, const Tensor& y_pred, const char* fn) {
  LabelPairs p{int64_values(y_true, fn, "y_true"), int64_values(y_pred, fn, "y_pred")};
  check(p.y_true.size() == p.y_pred.size(), fn, "y_true and y_pred must have the same length, got ",
        p.y_true.size(), " and ", p.y_pred.size());
  check(!p.y_true.empty(), fn, "empty input (y_true and y_pred have 0 samples)");
  return p;
}

std::vector<std::int64_t> sorted_union(const LabelPairs& p) {
  std::vector<std::int64_t> all(p.y_true);
  all.insert(all.end(), p.y_pred.begin(), p.y_pred.end());
  std::sort(all.begin(), all.end());
  all.erase(std::unique(all.begin(), all.end()), all.end());
  return all;
}

std::vector<std::int64_t> checked_labels(const std::vector<std::int64_t>& labels, const char* fn) {
  check(!labels.empty(), fn, "labels must not be empty");
  std::vector<std::int64_t> s(labels);
  std::sort(s.begin(), s.end());
  check(std::adjacent_find(s.begin(), s.end()) == s.end(), fn, "labels must be distinct, got ", list_string(labels));
  return labels;
}

Counts count(const LabelPairs& p, const std::vector<std::int64_t>& labels) {
  Counts c;
  c.labels = labels;
  const std::size_t L = labels.size();
  c.tp.assign(L, 0);
  c.pred.assign(L, 0);
  c.truth.assign(L, 0);
  std::unordered_map<std::int64_t, std::size_t> index;
  for (std::size_t i = 0; i < L; ++i) index.emplace(labels[i], i);
  for (std::size_t i = 0; i < p.y_true.size(); ++i) {
    const auto t = index.find(p.y_true[i]);
    const auto q = index.find(p.y_pred[i]);
    if (t != index.end()) ++c.truth[t->second];
    if (q != index.end()) ++c.pred[q->second];
    if (t != index.end() && p.y_true[i] == p.y_pred[i]) ++c.tp[t->second];
  }
  return c;
}

double zero_division_value(ZeroDivision z) {
  switch (z) {
    case ZeroDivision::One: return 1.0;
    case ZeroDivision::NaN: return std::numeric_limits<double>::quiet_NaN();
    default: return 0.0;
  }
}

double ratio(std::int64_t num, std::int64_t den, ZeroDivision z) {
  return den == 0 ? zero_division_value(z) : static_cast<double>(num) / static_cast<double>(den);
}

Scores per_label(const Counts& c, ZeroDivision z) {
  Scores s;
  for (std::size_t i = 0; i < c.labels.size(); ++i) {
    s.precision.push_back(ratio(c.tp[i], c.pred[i], z));
    s.recall.push_back(ratio(c.tp[i], c.truth[i], z));
    // 2 tp / (2 tp + fp + fn), and 2 tp + fp + fn = predicted + true.
    s.f1.push_back(ratio(2 * c.tp[i], c.pred[i] + c.truth[i], z));
  }
  return s;
}

namespace {

// scikit-learn 1.3's _nanaverage: NaN scores (zero_division = NaN) are left out; NaN if all are.
double nan_average(const std::vector<double>& a, const std::vector<double>* weights) {
  double sum = 0, wsum = 0, plain = 0;
  std::size_t kept = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i])) continue;
    const double w = weights ? (*weights)[i] : 1.0;
    sum += a[i] * w;
    wsum += w;
    plain += a[i];
    ++kept;
  }
  if (kept == 0) return std::numeric_limits<double>::quiet_NaN();
  if (wsum == 0) return plain / static_cast<double>(kept);  // all weights 0: the plain mean
  return sum / wsum;
}

}  // namespace

Averaged average_scores(const Counts& c, Average average, ZeroDivision z) {
  if (average == Average::Micro) {
    std::int64_t tp = 0, pred = 0, truth = 0;
    for (std::size_t i = 0; i < c.labels.size(); ++i) {
      tp += c.tp[i];
      pred += c.pred[i];
      truth += c.truth[i];
    }
    return {ratio(tp, pred, z), ratio(tp, truth, z), ratio(2 * tp, pred + truth, z)};
  }
  const Scores s = per_label(c, z);
  if (average == Average::Weighted) {
    std::vector<double> w(c.truth.begin(), c.truth.end());
    std::int64_t wsum = 0, psum = 0;
    for (std::size_t i = 0; i < c.labels.size(); ++i) {
      wsum += c.truth[i];
      psum += c.pred[i];
    }
    if (wsum == 0) {
      // No listed label occurs in y_true (scikit-learn's special case).
      const double zd = zero_division_value(z);
      if (psum == 0) return {zd, zd, zd};
      return {0.0, zd, 0.0};
    }
    return {nan_average(s.precision, &w), nan_average(s.recall, &w), nan_average(s.f1, &w)};
  }
  return {nan_average(s.precision, nullptr), nan_average(s.recall, nullptr), nan_average(s.f1, nullptr)};
}

// The labels a score covers, with scikit-learn's rules for Average::Binary.
std::vector<std::int64_t> score_labels(const LabelPairs& p, const ScoreOptions& o, const char* fn) {
  if (o.average() == Average::Binary) {
    const auto present = sorted_union(p);
    check(present.size() <= 2, fn, "average=binary needs at most two labels, but y_true and y_pred hold ",
          present.size(), ": ", list_string(present), "; choose average micro, macro, weighted or none");
    const bool has_pos = std::find(present.begin(), present.end(), o.pos_label()) != present.end();
    check(has_pos || present.size() < 2, fn, "pos_label=", o.pos_label(), " is not a valid label: it must be one of ",
          list_string(present));
    return {o.pos_label()};
  }
  return o.labels() ? checked_labels(*o.labels(), fn) : sorted_union(p);
}

}  // namespace detail

namespace {

enum class Which { Precision, Recall, F1 };

Tensor score(const Tensor& y_true, const Tensor& y_pred, const ScoreOptions& o, Which which, const char* fn) {
  const auto p = detail::label_pairs(y_true, y_pred, fn);
  const auto labels = detail::score_labels(p, o, fn);
  const auto c = detail::count(p, labels);
  auto pick = [which](const auto& prf) {
    return which == Which::Precision ? prf.precision : which == Which::Recall ? prf.recall : prf.f1;
  };
  if (o.average() == Average::None || o.average() == Average::Binary) {
    const std::vector<double> v = pick(detail::per_label(c, o.zero_division()));
    if (o.average() == Average::Binary) return scalar_tensor(v[0], Dtype::Float64);
    return tensor(v, {static_cast<std::int64_t>(v.size())}, Dtype::Float64);
  }
  return scalar_tensor(pick(detail::average_scores(c, o.average(), o.zero_division())), Dtype::Float64);
}

}  // namespace

double accuracy_score(const Tensor& y_true, const Tensor& y_pred) {
  const auto p = detail::label_pairs(y_true, y_pred, "accuracy_score");
  std::int64_t hits = 0;
  for (std::size_t i = 0; i < p.y_true.size(); ++i) hits += p.y_true[i] == p.y_pred[i];
  return static_cast<double>(hits) / static_cast<double>(p.y_true.size());
}

Tensor precision_score(const Tensor& y_true, const Tensor& y_pred, const ScoreOptions& options) {
  return score(y_true, y_pred, options, Which::Precision, "precision_score");
}
Tensor recall_score(const Tensor& y_true, const Tensor& y_pred, const ScoreOptions& options) {
  return score(y_true, y_pred, options, Which::Recall, "recall_score");
}
Tensor f1_score(const Tensor& y_true, const Tensor& y_pred, const ScoreOptions& options) {
  return score(y_true, y_pred, options, Which::F1, "f1_score");
}

PrecisionRecallF1 precision_recall_fscore_support(const Tensor& y_true, const Tensor& y_pred,
                                                   const ScoreOptions& options) {
  const char* fn = "precision_recall_fscore_support";
  const auto p = detail::label_pairs(y_true, y_pred, fn);
  const auto labels = options.labels() ? detail::checked_labels(*options.labels(), fn) : detail::sorted_union(p);
  const auto c = detail::count(p, labels);
  const auto s = detail::per_label(c, options.zero_division());
  const std::int64_t L = static_cast<std::int64_t>(labels.size());
  std::vector<double> support(c.truth.begin(), c.truth.end());
  return {labels, tensor(s.precision, {L}, Dtype::Float64), tensor(s.recall, {L}, Dtype::Float64),
          tensor(s.f1, {L}, Dtype::Float64), tensor(support, {L}, Dtype::Int64)};
}

std::vector<std::int64_t> unique_labels(const Tensor& y_true, const Tensor& y_pred) {
  return detail::sorted_union(detail::label_pairs(y_true, y_pred, "unique_labels"));
}

Tensor confusion_matrix(const Tensor& y_true, const Tensor& y_pred, const ConfusionMatrixOptions& options) {
  const char* fn = "confusion_matrix";
  const auto p = detail::label_pairs(y_true, y_pred, fn);
  const auto labels = options.labels() ? detail::checked_labels(*options.labels(), fn) : detail::sorted_union(p);
  const std::size_t L = labels.size();
  std::unordered_map<std::int64_t, std::size_t> index;
  for (std::size_t i = 0; i < L; ++i) index.emplace(labels[i], i);
  bool any_true = false;
  for (std::int64_t t : p.y_true) any_true = any_true || index.count(t) != 0;
  check(any_true, fn, "at least one of the labels ", list_string(labels), " must occur in y_true");
  std::vector<std::int64_t> cm(L * L, 0);
  for (std::size_t i = 0; i < p.y_true.size(); ++i) {
    const auto t = index.find(p.y_true[i]);
    const auto q = index.find(p.y_pred[i]);
    if (t != index.end() && q != index.end()) ++cm[t->second * L + q->second];
  }
  const std::int64_t n = static_cast<std::int64_t>(L);
  if (options.normalize() == Normalize::None) {
    Tensor out = zeros({n, n}, Dtype::Int64);
    std::copy(cm.begin(), cm.end(), out.data_ptr<std::int64_t>());
    return out;
  }
  // Divide by row, column or total counts; 0 / 0 becomes 0 (scikit-learn's nan_to_num).
  std::vector<double> out(L * L);
  std::int64_t total = 0;
  for (std::int64_t v : cm) total += v;
  for (std::size_t i = 0; i < L; ++i) {
    for (std::size_t j = 0; j < L; ++j) {
      std::int64_t den = total;
      if (options.normalize() == Normalize::True) {
        den = 0;
        for (std::size_t k = 0; k < L; ++k) den += cm[i * L + k];
      } else if (options.normalize() == Normalize::Pred) {
        den = 0;
        for (std::size_t k = 0; k < L; ++k) den += cm[k * L + j];
      }
      out[i * L + j] = den == 0 ? 0.0 : static_cast<double>(cm[i * L + j]) / static_cast<double>(den);
    }
  }
  return tensor(out, {n, n}, Dtype::Float64);
}

}  // namespace sorix::metrics
