// sorix::model_selection: sizes, stratified counts and time-series folds against scikit-learn
// 1.2 (tests/data/toolbox_reference.txt); reproducibility of the shuffles; errors.
#include <catch2/catch.hpp>

#include <algorithm>
#include <set>

#include <sorix/sorix.hpp>

#include "tests/support/errors.hpp"
#include "tests/toolbox/reference.hpp"

using sorix::Tensor;
using sorix::testing::contains;
using sorix::testing::message_of;
using toolbox_ref::same_bits;
using toolbox_ref::sk;
namespace MS = sorix::model_selection;

namespace {
std::vector<std::int64_t> values(const Tensor& t) {
  const Tensor c = t.contiguous();
  return std::vector<std::int64_t>(c.data_ptr<std::int64_t>(), c.data_ptr<std::int64_t>() + c.numel());
}
}  // namespace

TEST_CASE("train_test_split sizes and unshuffled rows match scikit-learn", "[toolbox][model_selection]") {
  struct Case {
    const char* name;
    std::int64_t n;
    MS::TrainTestSplitOptions options;
  };
  const Case cases[] = {
      {"default", 10, MS::TrainTestSplitOptions()},
      {"frac", 37, MS::TrainTestSplitOptions().test_size(0.33)},
      {"count", 37, MS::TrainTestSplitOptions().test_size(7)},
      {"train_frac", 37, MS::TrainTestSplitOptions().train_size(0.6)},
      {"both_frac", 37, MS::TrainTestSplitOptions().train_size(0.5).test_size(0.3)},
      {"both_count", 37, MS::TrainTestSplitOptions().train_size(11).test_size(5)},
      {"train_count", 9, MS::TrainTestSplitOptions().train_size(2)},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    const std::string key = std::string("tts.") + c.name;
    auto o = c.options;
    const auto idx = MS::train_test_indices(c.n, o.shuffle(false));
    CHECK(same_bits(idx.train, sk(key + ".train")));
    CHECK(same_bits(idx.test, sk(key + ".test")));
    // Shuffled: the same sizes, disjoint rows.
    const auto sh = MS::train_test_indices(c.n, c.options);
    CHECK(sh.train.numel() == sk(key + ".train").numel());
    CHECK(sh.test.numel() == sk(key + ".test").numel());
    auto all = values(sh.train);
    const auto te = values(sh.test);
    all.insert(all.end(), te.begin(), te.end());
    CHECK(std::set<std::int64_t>(all.begin(), all.end()).size() == all.size());
    for (std::int64_t v : all) CHECK((v >= 0 && v < c.n));
  }
}

TEST_CASE("train_test_split: one generator, the same rows at any thread count", "[toolbox][model_selection]") {
  const Tensor x = sorix::arange(0.0, 200.0, 1.0, sorix::float64).reshape({100, 2});
  const Tensor y = sorix::arange(0.0, 100.0, 1.0, sorix::int64);
  const int before = sorix::parallel::get_num_threads();
  std::vector<MS::TrainTestSplit> runs;
  for (int threads : {1, 2, 3}) {
    sorix::parallel::set_num_threads(threads);
    runs.push_back(MS::train_test_split(x, y, MS::TrainTestSplitOptions().test_size(0.2).seed(42)));
  }
  sorix::parallel::set_num_threads(before);
  for (const auto& r : runs) {
    CHECK(same_bits(r.x_train, runs[0].x_train));
    CHECK(same_bits(r.y_test, runs[0].y_test));
  }
  CHECK(runs[0].x_train.size(0) == 80);
  // Rows stay paired: x's row i is (2 y_i, 2 y_i + 1).
  toolbox_ref::check_close(runs[0].x_test.select(1, 0), runs[0].y_test.to(sorix::float64) * 2.0, "pairs");
  // A generator is advanced: two draws differ, and replaying its state replays them.
  sorix::Generator g(7);
  const auto a = MS::train_test_indices(50, MS::TrainTestSplitOptions().generator(&g));
  const auto b = MS::train_test_indices(50, MS::TrainTestSplitOptions().generator(&g));
  CHECK_FALSE(same_bits(a.test, b.test));
  sorix::Generator h(7);
  CHECK(same_bits(MS::train_test_indices(50, MS::TrainTestSplitOptions().generator(&h)).test, a.test));
  // Several arrays: {a_train, a_test, b_train, b_test, ...}.
  const auto parts = MS::train_test_split({x, y, y}, MS::TrainTestSplitOptions().test_size(10).seed(1));
  REQUIRE(parts.size() == 6);
  CHECK(same_bits(parts[3], parts[5]));
}

TEST_CASE("stratified train_test_split keeps scikit-learn's per-class counts", "[toolbox][model_selection]") {
  const Tensor y = sk("tts.strat.y");
  const auto idx = MS::train_test_indices(y.numel(), MS::TrainTestSplitOptions().test_size(0.3).stratify(y).seed(3));
  const auto yv = values(y);
  auto counts = [&](const Tensor& rows) {
    std::vector<std::int64_t> c(3, 0);
    for (std::int64_t r : values(rows)) {
      const std::int64_t l = yv[static_cast<std::size_t>(r)];
      ++c[l == 0 ? 0 : l == 4 ? 1 : 2];
    }
    return c;
  };
  CHECK(counts(idx.train) == values(sk("tts.strat.train_counts")));
  CHECK(counts(idx.test) == values(sk("tts.strat.test_counts")));
  CHECK(contains(message_of([&] {
                   MS::train_test_indices(4, MS::TrainTestSplitOptions().test_size(2).stratify(sorix::tensor({0, 0, 0, 1})));
                 }),
                 "the least populated class in stratify, 1, has only 1 member"));
  CHECK(contains(message_of([&] { MS::train_test_indices(4, MS::TrainTestSplitOptions().stratify(sorix::tensor({0, 0, 1, 1})).shuffle(false)); }),
                 "stratify needs shuffle=true"));
}

TEST_CASE("train_test_split: errors name the size and n_samples", "[toolbox][model_selection]") {
  CHECK(contains(message_of([] { MS::train_test_indices(10, MS::TrainTestSplitOptions().test_size(1.5)); }),
                 "train_test_split: test_size=1.5 must be a fraction in (0, 1)"));
  CHECK(contains(message_of([] { MS::train_test_indices(10, MS::TrainTestSplitOptions().test_size(10)); }),
                 "test_size=10 must be in [1, 10)"));
  CHECK(contains(message_of([] { MS::train_test_indices(10, MS::TrainTestSplitOptions().train_size(0.7).test_size(0.5)); }),
                 "must be at most 1"));
  CHECK(contains(message_of([] { MS::train_test_indices(10, MS::TrainTestSplitOptions().train_size(6).test_size(5)); }),
                 "exceed n_samples = 10"));
  CHECK(contains(message_of([] { MS::train_test_indices(2, MS::TrainTestSplitOptions().test_size(0.9)); }),
                 "the train set would be empty"));
  CHECK(contains(message_of([] { MS::train_test_split({sorix::zeros({3, 2}), sorix::zeros({4})}); }),
                 "array 0 has 3, array 1 has 4"));
  CHECK(contains(message_of([] { MS::train_test_indices(0); }), "empty input"));
}

TEST_CASE("WalkForwardSplit matches scikit-learn's TimeSeriesSplit", "[toolbox][model_selection]") {
  struct Case {
    const char* name;
    std::int64_t n;
    MS::WalkForwardSplitOptions options;
  };
  const Case cases[] = {
      {"plain", 20, MS::WalkForwardSplitOptions().n_splits(5)},
      {"gap", 23, MS::WalkForwardSplitOptions().n_splits(3).test_size(4).gap(2)},
      {"sliding", 30, MS::WalkForwardSplitOptions().n_splits(4).max_train_size(8)},
      {"sliding_gap", 30, MS::WalkForwardSplitOptions().n_splits(4).max_train_size(8).gap(1).test_size(3)},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    const auto folds = MS::WalkForwardSplit(c.options).split(c.n);
    REQUIRE(static_cast<std::int64_t>(folds.size()) == c.options.n_splits());
    for (std::size_t k = 0; k < folds.size(); ++k) {
      const std::string key = std::string("tss.") + c.name + "." + std::to_string(k);
      CHECK(same_bits(folds[k].train_indices(), sk(key + ".train")));
      CHECK(same_bits(folds[k].test_indices(), sk(key + ".test")));
    }
  }
  // Views of the rows; a fixed window with min == max.
  const Tensor x = sorix::arange(0.0, 120.0, 1.0, sorix::float64);
  const auto fixed = MS::WalkForwardSplit(MS::WalkForwardSplitOptions().n_splits(5).test_size(20).max_train_size(20).min_train_size(20)).split(x);
  for (const auto& f : fixed) {
    CHECK(f.train(x).numel() == 20);
    CHECK(f.train(x).data_ptr<double>()[19] + 1 == f.test(x).data_ptr<double>()[0]);
  }
  CHECK(contains(message_of([] { MS::WalkForwardSplit(MS::WalkForwardSplitOptions().n_splits(5).test_size(50)).split(100); }),
                 "not enough samples for 5 folds: n_samples = 100, but n_splits * test_size + gap + min_train_size = 5 * 50 + 0 + 1 = 251"));
  CHECK(contains(message_of([] { MS::WalkForwardSplit(MS::WalkForwardSplitOptions().n_splits(9)).split(5); }),
                 "n_splits + 1 = 10 folds need at least as many samples, got 5"));
  CHECK(contains(message_of([] { MS::WalkForwardSplit(MS::WalkForwardSplitOptions().gap(-1)); }), "gap must be >= 0, got -1"));
  CHECK(contains(message_of([] { MS::WalkForwardSplit(MS::WalkForwardSplitOptions().max_train_size(3).min_train_size(4)); }),
                 "max_train_size (3) must not be below min_train_size (4)"));
}
