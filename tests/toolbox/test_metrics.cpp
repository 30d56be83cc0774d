// sorix::metrics against scikit-learn 1.2 (tests/data/toolbox_reference.txt, written by
// scripts/gen_reference_toolbox.py), plus the cases scikit-learn 1.2 cannot produce
// (zero_division = NaN, as 1.3) and the errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include <sorix/sorix.hpp>

#include "tests/support/errors.hpp"
#include "tests/toolbox/reference.hpp"

using sorix::Tensor;
using sorix::testing::contains;
using sorix::testing::message_of;
using toolbox_ref::close;
using toolbox_ref::sk;
using toolbox_ref::scalar;
namespace M = sorix::metrics;

TEST_CASE("regression metrics match scikit-learn", "[toolbox][metrics]") {
  for (const char* name : {"reg1", "reg2", "reg_zero", "reg_const"}) {
    const std::string n = name;
    INFO(n);
    const Tensor y = sk(n + ".y"), p = sk(n + ".p");
    CHECK(close(M::mean_squared_error(y, p), scalar(n + ".mse")));
    CHECK(close(M::root_mean_squared_error(y, p), scalar(n + ".rmse")));
    CHECK(close(M::mean_absolute_error(y, p), scalar(n + ".mae")));
    CHECK(close(M::mean_absolute_percentage_error(y, p), scalar(n + ".mape"), 1e-11));
    CHECK(close(M::r2_score(y, p), scalar(n + ".r2")));
    // float32 inputs are converted to float64 first.
    CHECK(close(M::mean_squared_error(y.to(sorix::float32), p.to(sorix::float32)), scalar(n + ".mse"), 1e-6));
  }
}

TEST_CASE("regression metrics: edge cases and errors", "[toolbox][metrics]") {
  CHECK(std::isnan(M::r2_score(sorix::tensor({1.0}), sorix::tensor({2.0}))));
  CHECK(M::r2_score(sorix::tensor({2.0, 2.0}), sorix::tensor({2.0, 2.0})) == 1.0);
  CHECK(M::mean_squared_error(sorix::tensor({1, 2, 3}), sorix::tensor({1, 2, 5})) == 4.0 / 3.0);
  CHECK(contains(message_of([] { M::mean_squared_error(sorix::tensor({1.0, 2.0}), sorix::tensor({1.0})); }),
                 "mean_squared_error: y_true and y_pred must have the same shape, got [2] and [1]"));
  CHECK(contains(message_of([] { M::r2_score(sorix::zeros({0}), sorix::zeros({0})); }), "r2_score: empty input"));
  const double nan = std::numeric_limits<double>::quiet_NaN();
  CHECK(contains(message_of([&] { M::mean_absolute_error(sorix::tensor({1.0, nan}), sorix::tensor({1.0, 2.0})); }),
                 "mean_absolute_error: y_true contains NaN (element 1"));
  CHECK(contains(message_of([] { M::mean_absolute_error(sorix::zeros({2, 2, 2}), sorix::zeros({2, 2, 2})); }),
                 "must be 1-D [n] or 2-D [n, outputs]"));
  const std::string rep = M::regression_report(sk("reg1.y"), sk("reg1.p"));
  CHECK(contains(rep, "Metric |     Score |    Range\n-----------------------------\nR2     |"));
  CHECK(contains(rep, "\nMAPE   |"));
}

TEST_CASE("classification scores match scikit-learn for every average and zero_division", "[toolbox][metrics]") {
  const std::pair<const char*, M::ZeroDivision> zds[] = {
      {"warn", M::ZeroDivision::Warn}, {"0", M::ZeroDivision::Zero}, {"1", M::ZeroDivision::One}};
  for (const char* name : {"multi", "bin", "signed", "nopred"}) {
    const std::string n = name;
    INFO(n);
    const Tensor t = sk(n + ".y_true"), p = sk(n + ".y_pred");
    CHECK(M::accuracy_score(t, p) == scalar(n + ".accuracy"));
    CHECK(toolbox_ref::same_bits(M::confusion_matrix(t, p), sk(n + ".cm")));
    toolbox_ref::check_close(M::confusion_matrix(t, p, M::ConfusionMatrixOptions().normalize("true")), sk(n + ".cm_true"), "cm true");
    toolbox_ref::check_close(M::confusion_matrix(t, p, M::ConfusionMatrixOptions().normalize("pred")), sk(n + ".cm_pred"), "cm pred");
    toolbox_ref::check_close(M::confusion_matrix(t, p, M::ConfusionMatrixOptions().normalize(M::Normalize::All)), sk(n + ".cm_all"), "cm all");
    std::vector<std::string> avgs{"micro", "macro", "weighted", "none"};
    if (n != "multi" && n != "nopred") avgs.push_back("binary");
    for (const auto& avg : avgs) {
      for (const auto& [zname, zd] : zds) {
        const std::string key = "." + avg + "." + zname;
        INFO(avg << " zero_division " << zname);
        auto o = M::ScoreOptions().average(avg).zero_division(zd).pos_label(n == "signed" ? -1 : 1);
        toolbox_ref::check_close(M::precision_score(t, p, o), sk(n + ".precision" + key), "precision");
        toolbox_ref::check_close(M::recall_score(t, p, o), sk(n + ".recall" + key), "recall");
        toolbox_ref::check_close(M::f1_score(t, p, o), sk(n + ".f1" + key), "f1");
      }
    }
  }
  const Tensor t = sk("multi.y_true"), p = sk("multi.y_pred");
  CHECK(toolbox_ref::same_bits(M::confusion_matrix(t, p, M::ConfusionMatrixOptions().labels({5, 0, 2})), sk("multi.cm_labels")));
  auto o = M::ScoreOptions(M::Average::Macro).labels({5, 0, 2, 9}).zero_division(M::ZeroDivision::Zero);
  toolbox_ref::check_close(M::f1_score(t, p, o), sk("multi.f1.labels.macro"), "f1 labels macro");
  toolbox_ref::check_close(M::f1_score(t, p, o.average(M::Average::None)), sk("multi.f1.labels.none"), "f1 labels none");
}

TEST_CASE("zero_division NaN: NaN per label, left out of the averages (scikit-learn 1.3)", "[toolbox][metrics]") {
  // Label 2 is never predicted (precision 0/0), label 3 never true (recall 0/0).
  const Tensor t = sk("nopred.y_true"), p = sk("nopred.y_pred");
  const auto o = M::ScoreOptions(M::Average::None).zero_division("nan");
  const Tensor prec = M::precision_score(t, p, o), rec = M::recall_score(t, p, o), f1 = M::f1_score(t, p, o);
  REQUIRE(prec.numel() == 4);
  CHECK(std::isnan(prec.data_ptr<double>()[2]));
  CHECK(prec.data_ptr<double>()[3] == 0.0);
  CHECK(std::isnan(rec.data_ptr<double>()[3]));
  CHECK(f1.data_ptr<double>()[2] == 0.0);  // 2 tp + fp + fn = 2: defined
  // Macro precision: mean of labels 0, 1, 3 (1, 2/3, 0) with label 2 left out.
  CHECK(close(M::precision_score(t, p, M::ScoreOptions(M::Average::Macro).zero_division("nan")).item<double>(),
              (1.0 + 2.0 / 3.0 + 0.0) / 3.0));
  // All labels undefined: NaN.
  const Tensor none = M::precision_score(sorix::tensor({0, 0}), sorix::tensor({0, 0}),
                                         M::ScoreOptions().zero_division(M::ZeroDivision::NaN));
  CHECK(std::isnan(none.item<double>()));
}

TEST_CASE("classification_report matches scikit-learn's text", "[toolbox][metrics]") {
  const Tensor t = sk("multi.y_true"), p = sk("multi.y_pred");
  CHECK(M::classification_report(t, p) == toolbox_ref::report("multi"));
  CHECK(M::classification_report(t, p, M::ClassificationReportOptions().digits(4).zero_division(M::ZeroDivision::One)) ==
        toolbox_ref::report("multi_digits4"));
  CHECK(M::classification_report(
            t, p, M::ClassificationReportOptions().labels({0, 1, 2}).target_names({"zero", "one", "a longer name"})) ==
        toolbox_ref::report("multi_labels"));
  CHECK(M::classification_report(sk("bin.y_true"), sk("bin.y_pred")) == toolbox_ref::report("bin"));
  const auto prfs = M::precision_recall_fscore_support(t, p);
  CHECK(prfs.labels == std::vector<std::int64_t>{0, 1, 2, 5, 7});
  toolbox_ref::check_close(prfs.f1, sk("multi.f1.none.warn"), "prfs f1");
}

TEST_CASE("find_optimal_threshold: Python sorix's grid, scikit-learn's F1", "[toolbox][metrics]") {
  const Tensor t = sk("thr.y_true"), s = sk("thr.y_score");
  const auto best = M::find_optimal_threshold(t, s);
  CHECK(best.threshold == scalar("thr.threshold"));
  CHECK(close(best.score, scalar("thr.f1")));
  const auto acc = M::find_optimal_threshold(t, s, M::accuracy_score, 50);
  CHECK(acc.threshold == scalar("thr.acc_threshold"));
  CHECK(close(acc.score, scalar("thr.acc")));
  // Thresholds where the metric throws are skipped: this one refuses fewer than 150 positives.
  auto picky = [](const Tensor& yt, const Tensor& yp) -> double {
    if (yp.sum().item<double>() < 150) throw std::invalid_argument("too few positives");
    return M::f1_score(yt, yp).item<double>();
  };
  const auto skipped = M::find_optimal_threshold(t, s, picky);
  const Tensor at = s.ge(skipped.threshold).to(sorix::int64);
  CHECK(at.sum().item<double>() >= 150);
  CHECK(close(skipped.score, M::f1_score(t, at).item<double>()));
  CHECK(skipped.score <= best.score);
  // A metric that always throws is broken: runtime_error with its message.
  auto broken = [](const Tensor&, const Tensor&) -> double { throw std::invalid_argument("nope"); };
  CHECK(contains(message_of<std::runtime_error>([&] { M::find_optimal_threshold(t, s, broken); }), "last error: nope"));
  CHECK(contains(message_of([&] { M::find_optimal_threshold(t, s, {}, 1); }), "n_thresholds must be at least 2"));
  CHECK(contains(message_of([&] { M::find_optimal_threshold(t, s.slice(0, 0, 5)); }), "same length, got 300 and 5"));
}

TEST_CASE("classification metrics: errors name the function and the value", "[toolbox][metrics]") {
  const Tensor a = sorix::tensor({0, 1, 2}), b = sorix::tensor({0, 1, 1});
  CHECK(contains(message_of([&] { M::f1_score(a, b); }),
                 "f1_score: average=binary needs at most two labels, but y_true and y_pred hold 3: [0, 1, 2]"));
  CHECK(contains(message_of([&] { M::precision_score(sorix::tensor({0, 2}), sorix::tensor({2, 0})); }),
                 "pos_label=1 is not a valid label"));
  CHECK(contains(message_of([&] { M::recall_score(a, sorix::tensor({0, 1})); }), "same length, got 3 and 2"));
  CHECK(contains(message_of([&] { M::accuracy_score(sorix::tensor({0.0, 1.0}), sorix::tensor({0.0, 1.0})); }),
                 "accuracy_score: y_true must hold int64 class labels, got float64"));
  CHECK(contains(message_of([&] { M::accuracy_score(sorix::zeros({0}, sorix::int64), sorix::zeros({0}, sorix::int64)); }),
                 "accuracy_score: empty input"));
  CHECK(contains(message_of([&] { M::f1_score(a, b, M::ScoreOptions().average("mean")); }), "unknown average 'mean'"));
  CHECK(contains(message_of([&] { M::confusion_matrix(a, b, M::ConfusionMatrixOptions().labels({7})); }),
                 "at least one of the labels [7] must occur in y_true"));
  CHECK(contains(message_of([&] { M::f1_score(a, b, M::ScoreOptions(M::Average::Macro).labels({1, 1})); }),
                 "labels must be distinct"));
  CHECK(contains(message_of([&] { M::classification_report(a, b, M::ClassificationReportOptions().target_names({"x"})); }),
                 "does not match the number of target_names, 1"));
}
