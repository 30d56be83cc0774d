#pragma once
// sorix::model_selection — train_test_split and WalkForwardSplit (time series), with
// scikit-learn's sizes and rules (sklearn.model_selection 1.2).
//
// Randomness: shuffles draw from a sorix Generator (randperm on counter-based streams), so a
// split is bit-reproducible from its seed, at any thread count and on every CPU. It is NOT
// scikit-learn's permutation (numpy's Mersenne Twister): the same random_state gives different
// rows in scikit-learn; the sizes, the order of the outputs and (for stratified splits) the
// per-class counts follow scikit-learn.
//
// Errors: std::invalid_argument naming the function and the value (sizes out of range, arrays of
// different lengths, a class with fewer than two members when stratifying, too many folds ...).
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "sorix/core/generator.hpp"
#include "sorix/core/tensor.hpp"

namespace sorix::model_selection {

/// A split size: a fraction of the samples (a double in (0, 1)) or a count (an integer >= 1).
struct SplitSize {
  SplitSize(double fraction) : is_fraction(true), fraction(fraction) {}                // NOLINT: implicit
  SplitSize(std::int64_t count) : is_fraction(false), count(count) {}                  // NOLINT: implicit
  SplitSize(int count) : is_fraction(false), count(count) {}                           // NOLINT: implicit
  bool is_fraction;
  double fraction = 0;
  std::int64_t count = 0;
};

struct TrainTestSplitOptions {
  TrainTestSplitOptions() = default;
  /// Default: 0.25 when train_size is not given either, else the complement of train_size.
  /// A fraction gives ceil(fraction * n) test samples (scikit-learn's rounding).
  TrainTestSplitOptions& test_size(SplitSize s) { test_size_ = s; return *this; }
  /// Default: the complement of test_size. A fraction gives floor(fraction * n).
  TrainTestSplitOptions& train_size(SplitSize s) { train_size_ = s; return *this; }
  /// false: train is the first rows, test the next ones, in order (no randomness).
  TrainTestSplitOptions& shuffle(bool s) { shuffle_ = s; return *this; }
  /// int64 class labels [n]: each class keeps its proportion in both parts (scikit-learn's
  /// StratifiedShuffleSplit allocation); needs shuffle.
  TrainTestSplitOptions& stratify(Tensor labels) { stratify_ = std::move(labels); return *this; }
  /// The generator to draw from (advanced by the split). Default: a Generator(seed) when a seed
  /// is given, else the default generator.
  TrainTestSplitOptions& generator(Generator* g) { generator_ = g; return *this; }
  TrainTestSplitOptions& seed(std::uint64_t s) { seed_ = s; return *this; }
  const std::optional<SplitSize>& test_size() const { return test_size_; }
  const std::optional<SplitSize>& train_size() const { return train_size_; }
  bool shuffle() const { return shuffle_; }
  const Tensor& stratify() const { return stratify_; }
  Generator* generator() const { return generator_; }
  const std::optional<std::uint64_t>& seed() const { return seed_; }

 private:
  std::optional<SplitSize> test_size_, train_size_;
  bool shuffle_ = true;
  Tensor stratify_;
  Generator* generator_ = nullptr;
  std::optional<std::uint64_t> seed_;
};

/// int64 row indices of the two parts (shuffled: test = perm[0, n_test), train = perm[n_test,
/// n_test + n_train) of a random permutation, as scikit-learn's ShuffleSplit).
struct SplitIndices {
  Tensor train, test;
};
SplitIndices train_test_indices(std::int64_t n_samples, const TrainTestSplitOptions& options = {});

/// Splits every array along dim 0 with the same rows: {a_train, a_test, b_train, b_test, ...}
/// (scikit-learn's order). The arrays must have the same number of rows; results are copies.
std::vector<Tensor> train_test_split(const std::vector<Tensor>& arrays, const TrainTestSplitOptions& options = {});

struct TrainTestSplit {
  Tensor x_train, x_test, y_train, y_test;
};
/// The usual pair:  auto [x_train, x_test, y_train, y_test] = train_test_split(x, y, options);
TrainTestSplit train_test_split(const Tensor& x, const Tensor& y, const TrainTestSplitOptions& options = {});

// ---- time series -------------------------------------------------------------------------------
struct WalkForwardSplitOptions {
  WalkForwardSplitOptions() = default;
  /// Number of folds (>= 1; scikit-learn's TimeSeriesSplit needs >= 2).
  WalkForwardSplitOptions& n_splits(std::int64_t n) { n_splits_ = n; return *this; }
  /// Samples per test window (default n_samples / (n_splits + 1), rounded down).
  WalkForwardSplitOptions& test_size(std::int64_t n) { test_size_ = n; return *this; }
  /// Samples left out between the end of training and the start of the test window.
  WalkForwardSplitOptions& gap(std::int64_t g) { gap_ = g; return *this; }
  /// Sliding window: train on at most the last max_train_size samples before the gap (Python
  /// sorix's rolling window with train_size; scikit-learn's max_train_size). Unset: expanding.
  WalkForwardSplitOptions& max_train_size(std::int64_t n) { max_train_size_ = n; return *this; }
  /// Every fold must train on at least this many samples (default 1): with min == max, every
  /// window has exactly that size (Python sorix's fixed rolling window).
  WalkForwardSplitOptions& min_train_size(std::int64_t n) { min_train_size_ = n; return *this; }
  std::int64_t n_splits() const { return n_splits_; }
  const std::optional<std::int64_t>& test_size() const { return test_size_; }
  std::int64_t gap() const { return gap_; }
  const std::optional<std::int64_t>& max_train_size() const { return max_train_size_; }
  std::int64_t min_train_size() const { return min_train_size_; }

 private:
  std::int64_t n_splits_ = 5;
  std::optional<std::int64_t> test_size_;
  std::int64_t gap_ = 0;
  std::optional<std::int64_t> max_train_size_;
  std::int64_t min_train_size_ = 1;
};

/// One fold: train rows [train_begin, train_end), test rows [test_begin, test_end); training
/// always precedes the test window, gap rows apart.
struct Fold {
  std::int64_t train_begin, train_end, test_begin, test_end;
  std::int64_t train_size() const { return train_end - train_begin; }
  std::int64_t test_size() const { return test_end - test_begin; }
  Tensor train_indices() const;  // int64 [train_size]
  Tensor test_indices() const;
  /// Views of x's rows (x.slice along dim 0; no copy).
  Tensor train(const Tensor& x) const { return x.slice(0, train_begin, train_end); }
  Tensor test(const Tensor& x) const { return x.slice(0, test_begin, test_end); }
};

/// scikit-learn's TimeSeriesSplit: the test windows are the last n_splits * test_size samples,
/// in order (fold k tests [s_k, s_k + test_size), s_k = n - (n_splits - k) * test_size); fold k
/// trains on [0, s_k - gap) (expanding) or its last max_train_size samples (sliding). Throws when
/// the samples cannot hold n_splits folds (n - gap - n_splits * test_size must be at least
/// min_train_size) rather than returning fewer.
class WalkForwardSplit {
 public:
  explicit WalkForwardSplit(WalkForwardSplitOptions options = {});
  std::vector<Fold> split(std::int64_t n_samples) const;
  /// Folds over x's rows (x.size(0)).
  std::vector<Fold> split(const Tensor& x) const;
  std::int64_t get_n_splits() const { return options_.n_splits(); }
  const WalkForwardSplitOptions& options() const { return options_; }

 private:
  WalkForwardSplitOptions options_;
};

}  // namespace sorix::model_selection
