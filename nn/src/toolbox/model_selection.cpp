// train_test_split and WalkForwardSplit (sorix/toolbox/model_selection.hpp): scikit-learn's
// sizes and allocation, permutations from a sorix Generator.
#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "toolbox/inputs.hpp"
#include "sorix/autograd/grad_mode.hpp"
#include "sorix/autograd/ops.hpp"
#include "sorix/core/random.hpp"
#include "sorix/toolbox/model_selection.hpp"

namespace sorix::model_selection {
namespace {

const char* kSplit = "train_test_split";

Tensor index_tensor(const std::vector<std::int64_t>& v) {
  Tensor t = empty({static_cast<std::int64_t>(v.size())}, Dtype::Int64);
  std::copy(v.begin(), v.end(), t.data_ptr<std::int64_t>());
  return t;
}

std::vector<std::int64_t> permutation(std::int64_t n, Generator& gen) {
  const Tensor p = randperm(n, Dtype::Int64, &gen);
  const std::int64_t* q = p.data_ptr<std::int64_t>();
  return std::vector<std::int64_t>(q, q + n);
}

std::string size_string(const SplitSize& s) {
  return s.is_fraction ? std::to_string(s.fraction) : std::to_string(s.count);
}

void check_size(const std::optional<SplitSize>& s, std::int64_t n, const char* what) {
  if (!s) return;
  if (s->is_fraction) {
    check(s->fraction > 0 && s->fraction < 1, kSplit, what, "=", s->fraction,
          " must be a fraction in (0, 1) or a count in [1, n_samples)");
  } else {
    check(s->count > 0 && s->count < n, kSplit, what, "=", s->count, " must be in [1, ", n,
          ") (n_samples = ", n, "), or a fraction in (0, 1)");
  }
}

// scikit-learn's _validate_shuffle_split.
std::pair<std::int64_t, std::int64_t> train_test_sizes(std::int64_t n, const TrainTestSplitOptions& o) {
  check(n > 0, kSplit, "empty input (0 samples)");
  std::optional<SplitSize> test = o.test_size(), train = o.train_size();
  if (!test && !train) test = SplitSize(0.25);
  check_size(test, n, "test_size");
  check_size(train, n, "train_size");
  if (test && train && test->is_fraction && train->is_fraction) {
    check(test->fraction + train->fraction <= 1, kSplit, "test_size + train_size = ", test->fraction + train->fraction,
          " must be at most 1");
  }
  const double dn = static_cast<double>(n);
  std::int64_t n_test = 0, n_train = 0;
  if (test) n_test = test->is_fraction ? static_cast<std::int64_t>(std::ceil(test->fraction * dn)) : test->count;
  if (train) n_train = train->is_fraction ? static_cast<std::int64_t>(std::floor(train->fraction * dn)) : train->count;
  if (!train) n_train = n - n_test;
  if (!test) n_test = n - n_train;
  check(n_train + n_test <= n, kSplit, "train_size (", n_train, ") + test_size (", n_test, ") exceed n_samples = ", n);
  check(n_train > 0, kSplit, "with n_samples=", n, ", test_size=", test ? size_string(*test) : "-", " and train_size=",
        train ? size_string(*train) : "-", " the train set would be empty; adjust the sizes");
  check(n_test > 0, kSplit, "with n_samples=", n, " the test set would be empty; adjust the sizes");
  return {n_train, n_test};
}

// scikit-learn's _approximate_mode: floor(counts / total * n_draws), then one more for the
// largest remainders; equal remainders are broken at random.
std::vector<std::int64_t> approximate_mode(const std::vector<std::int64_t>& counts, std::int64_t n_draws,
                                           Generator& gen) {
  std::int64_t total = 0;
  for (std::int64_t c : counts) total += c;
  std::vector<double> cont(counts.size()), rem(counts.size());
  std::vector<std::int64_t> out(counts.size());
  std::int64_t placed = 0;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    cont[i] = static_cast<double>(counts[i]) / static_cast<double>(total) * static_cast<double>(n_draws);
    out[i] = static_cast<std::int64_t>(std::floor(cont[i]));
    rem[i] = cont[i] - std::floor(cont[i]);
    placed += out[i];
  }
  std::int64_t need = n_draws - placed;
  std::vector<double> values(rem);
  std::sort(values.begin(), values.end(), std::greater<>());
  values.erase(std::unique(values.begin(), values.end()), values.end());
  for (double v : values) {
    if (need <= 0) break;
    std::vector<std::size_t> inds;
    for (std::size_t i = 0; i < rem.size(); ++i) {
      if (rem[i] == v) inds.push_back(i);
    }
    const std::int64_t add = std::min<std::int64_t>(static_cast<std::int64_t>(inds.size()), need);
    const auto pick = permutation(static_cast<std::int64_t>(inds.size()), gen);
    for (std::int64_t k = 0; k < add; ++k) ++out[inds[static_cast<std::size_t>(pick[static_cast<std::size_t>(k)])]];
    need -= add;
  }
  return out;
}

// scikit-learn's StratifiedShuffleSplit (one split), with a sorix generator.
SplitIndices stratified(const std::vector<std::int64_t>& y, std::int64_t n_train, std::int64_t n_test, Generator& gen) {
  std::vector<std::int64_t> classes(y);
  std::sort(classes.begin(), classes.end());
  classes.erase(std::unique(classes.begin(), classes.end()), classes.end());
  const std::size_t C = classes.size();
  std::vector<std::vector<std::int64_t>> members(C);  // sample indices of each class, increasing
  for (std::size_t i = 0; i < y.size(); ++i) {
    const std::size_t c = static_cast<std::size_t>(std::lower_bound(classes.begin(), classes.end(), y[i]) - classes.begin());
    members[c].push_back(static_cast<std::int64_t>(i));
  }
  std::vector<std::int64_t> counts;
  for (std::size_t c = 0; c < C; ++c) {
    check(members[c].size() >= 2, kSplit, "the least populated class in stratify, ", classes[c], ", has only ",
          members[c].size(), " member; every class needs at least 2");
    counts.push_back(static_cast<std::int64_t>(members[c].size()));
  }
  const std::int64_t nc = static_cast<std::int64_t>(C);
  check(n_train >= nc, kSplit, "the train size ", n_train, " must be at least the number of classes, ", nc);
  check(n_test >= nc, kSplit, "the test size ", n_test, " must be at least the number of classes, ", nc);
  const auto n_i = approximate_mode(counts, n_train, gen);
  std::vector<std::int64_t> left(C);
  for (std::size_t c = 0; c < C; ++c) left[c] = counts[c] - n_i[c];
  const auto t_i = approximate_mode(left, n_test, gen);
  std::vector<std::int64_t> train, test;
  for (std::size_t c = 0; c < C; ++c) {
    const auto perm = permutation(counts[c], gen);
    for (std::int64_t k = 0; k < n_i[c] + t_i[c]; ++k) {
      const std::int64_t idx = members[c][static_cast<std::size_t>(perm[static_cast<std::size_t>(k)])];
      (k < n_i[c] ? train : test).push_back(idx);
    }
  }
  const auto ptr = permutation(static_cast<std::int64_t>(train.size()), gen);
  const auto pte = permutation(static_cast<std::int64_t>(test.size()), gen);
  std::vector<std::int64_t> tr, te;
  for (std::int64_t k : ptr) tr.push_back(train[static_cast<std::size_t>(k)]);
  for (std::int64_t k : pte) te.push_back(test[static_cast<std::size_t>(k)]);
  return {index_tensor(tr), index_tensor(te)};
}

}  // namespace

SplitIndices train_test_indices(std::int64_t n_samples, const TrainTestSplitOptions& o) {
  const auto [n_train, n_test] = train_test_sizes(n_samples, o);
  if (!o.shuffle()) {
    check(!o.stratify().defined(), kSplit, "stratify needs shuffle=true (as scikit-learn)");
    return {arange(0.0, static_cast<double>(n_train), 1.0, Dtype::Int64),
            arange(static_cast<double>(n_train), static_cast<double>(n_train + n_test), 1.0, Dtype::Int64)};
  }
  Generator local(o.seed().value_or(Generator::kDefaultSeed));
  Generator& gen = o.generator() ? *o.generator() : o.seed() ? local : default_generator();
  if (o.stratify().defined()) {
    const auto y = toolbox_detail::int64_values(o.stratify(), kSplit, "stratify");
    check(static_cast<std::int64_t>(y.size()) == n_samples, kSplit, "stratify has ", y.size(), " labels for ", n_samples,
          " samples");
    return stratified(y, n_train, n_test, gen);
  }
  const auto perm = permutation(n_samples, gen);
  return {index_tensor(std::vector<std::int64_t>(perm.begin() + n_test, perm.begin() + n_test + n_train)),
          index_tensor(std::vector<std::int64_t>(perm.begin(), perm.begin() + n_test))};
}

std::vector<Tensor> train_test_split(const std::vector<Tensor>& arrays, const TrainTestSplitOptions& options) {
  NoGradGuard guard;
  check(!arrays.empty(), kSplit, "at least one array is needed");
  for (std::size_t i = 0; i < arrays.size(); ++i) {
    toolbox_detail::check_defined(arrays[i], kSplit, "an array");
    check(arrays[i].dim() >= 1, kSplit, "array ", i, " is 0-dim; arrays are split along dim 0");
    check(arrays[i].size(0) == arrays[0].size(0), kSplit, "every array must have the same number of rows: array 0 has ",
          arrays[0].size(0), ", array ", i, " has ", arrays[i].size(0));
  }
  const SplitIndices idx = train_test_indices(arrays[0].size(0), options);
  std::vector<Tensor> out;
  for (const Tensor& a : arrays) {
    out.push_back(a.index_select(0, idx.train));
    out.push_back(a.index_select(0, idx.test));
  }
  return out;
}

TrainTestSplit train_test_split(const Tensor& x, const Tensor& y, const TrainTestSplitOptions& options) {
  auto parts = train_test_split(std::vector<Tensor>{x, y}, options);
  return {parts[0], parts[1], parts[2], parts[3]};
}

// ---- WalkForwardSplit --------------------------------------------------------------------------
Tensor Fold::train_indices() const {
  return arange(static_cast<double>(train_begin), static_cast<double>(train_end), 1.0, Dtype::Int64);
}
Tensor Fold::test_indices() const {
  return arange(static_cast<double>(test_begin), static_cast<double>(test_end), 1.0, Dtype::Int64);
}

WalkForwardSplit::WalkForwardSplit(WalkForwardSplitOptions options) : options_(options) {
  const char* w = "WalkForwardSplit";
  check(options_.n_splits() >= 1, w, "n_splits must be at least 1, got ", options_.n_splits());
  check(!options_.test_size() || *options_.test_size() >= 1, w, "test_size must be at least 1, got ",
        options_.test_size().value_or(0));
  check(options_.gap() >= 0, w, "gap must be >= 0, got ", options_.gap());
  check(!options_.max_train_size() || *options_.max_train_size() >= 1, w, "max_train_size must be at least 1, got ",
        options_.max_train_size().value_or(0));
  check(options_.min_train_size() >= 1, w, "min_train_size must be at least 1, got ", options_.min_train_size());
  check(!options_.max_train_size() || *options_.max_train_size() >= options_.min_train_size(), w, "max_train_size (",
        options_.max_train_size().value_or(0), ") must not be below min_train_size (", options_.min_train_size(), ")");
}

std::vector<Fold> WalkForwardSplit::split(std::int64_t n) const {
  const char* w = "WalkForwardSplit.split";
  const std::int64_t k = options_.n_splits(), gap = options_.gap();
  check(k + 1 <= n, w, "n_splits + 1 = ", k + 1, " folds need at least as many samples, got ", n);
  const std::int64_t test = options_.test_size().value_or(n / (k + 1));
  check(test >= 1, w, "test_size is 0 (n_samples / (n_splits + 1) with n_samples = ", n, ")");
  const std::int64_t first_train = n - gap - k * test;
  check(first_train >= options_.min_train_size(), w, "not enough samples for ", k, " folds: n_samples = ", n,
        ", but n_splits * test_size + gap + min_train_size = ", k, " * ", test, " + ", gap, " + ",
        options_.min_train_size(), " = ", k * test + gap + options_.min_train_size(),
        " are needed; reduce n_splits, test_size or gap");
  std::vector<Fold> folds;
  for (std::int64_t f = 0; f < k; ++f) {
    const std::int64_t test_begin = n - (k - f) * test;
    const std::int64_t train_end = test_begin - gap;
    std::int64_t train_begin = 0;
    if (options_.max_train_size() && *options_.max_train_size() < train_end) train_begin = train_end - *options_.max_train_size();
    folds.push_back({train_begin, train_end, test_begin, test_begin + test});
  }
  return folds;
}

std::vector<Fold> WalkForwardSplit::split(const Tensor& x) const {
  toolbox_detail::check_defined(x, "WalkForwardSplit.split", "x");
  check(x.dim() >= 1, "WalkForwardSplit.split", "x is 0-dim; folds run along dim 0");
  return split(x.size(0));
}

}  // namespace sorix::model_selection
