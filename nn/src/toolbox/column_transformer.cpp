// ColumnTransformer (sorix/toolbox/preprocessing.hpp): column selections through index_select,
// outputs joined with cat (exact copies).
#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "toolbox/inputs.hpp"
#include "toolbox/state.hpp"
#include "sorix/autograd/grad_mode.hpp"
#include "sorix/autograd/ops.hpp"
#include "sorix/toolbox/preprocessing.hpp"

namespace sorix::preprocessing {

using toolbox_detail::int64_scalar;
using toolbox_detail::StateReader;

namespace {
Tensor index_tensor(const std::vector<std::int64_t>& v) {
  Tensor t = empty({static_cast<std::int64_t>(v.size())}, Dtype::Int64);
  std::copy(v.begin(), v.end(), t.data_ptr<std::int64_t>());
  return t;
}
}  // namespace

ColumnTransformer::ColumnTransformer(std::vector<Entry> transformers, Remainder remainder)
    : entries_(std::move(transformers)), remainder_(remainder) {
  const char* w = "ColumnTransformer";
  check(!entries_.empty(), w, "at least one transformer is needed");
  std::set<std::string> names;
  for (const auto& e : entries_) {
    check(!e.name.empty() && e.name.find('.') == std::string::npos, w, "transformer name '", e.name,
          "' must be non-empty and contain no '.'");
    check(names.insert(e.name).second, w, "transformer name '", e.name, "' is used twice");
    check(e.transformer != nullptr, w, "transformer '", e.name, "' is null");
    check(!e.columns.empty(), w, "transformer '", e.name, "' names no columns");
    for (std::int64_t c : e.columns) check(c >= 0, w, "transformer '", e.name, "' names column ", c, " (must be >= 0)");
  }
}

ColumnTransformer::ColumnTransformer(const ColumnTransformer& other)
    : remainder_(other.remainder_), n_features_in_(other.n_features_in_), remainder_columns_(other.remainder_columns_) {
  for (const auto& e : other.entries_) entries_.emplace_back(e.name, e.transformer->clone(), e.columns);
}

ColumnTransformer& ColumnTransformer::operator=(const ColumnTransformer& other) {
  if (this != &other) *this = ColumnTransformer(other);
  return *this;
}

std::int64_t ColumnTransformer::n_features_in() const {
  check<std::runtime_error>(fitted(), "ColumnTransformer.n_features_in", "not fitted yet; call fit() first");
  return n_features_in_;
}

std::int64_t ColumnTransformer::n_features_out() const {
  check<std::runtime_error>(fitted(), "ColumnTransformer.n_features_out", "not fitted yet; call fit() first");
  std::int64_t total = static_cast<std::int64_t>(remainder_columns_.size());
  for (const auto& e : entries_) total += e.transformer->n_features_out();
  return total;
}

std::shared_ptr<Transformer> ColumnTransformer::named_transformer(const std::string& name) const {
  for (const auto& e : entries_) {
    if (e.name == name) return e.transformer;
  }
  throw std::out_of_range(error_message("ColumnTransformer.named_transformer", "no transformer named '", name, "'"));
}

void ColumnTransformer::check_input(const Tensor& x, const char* method, bool fitting) const {
  const std::string w = std::string("ColumnTransformer.") + method;
  toolbox_detail::check_matrix(x, w.c_str(), "x");
  if (!fitting) {
    check<std::runtime_error>(fitted(), w.c_str(), "not fitted yet; call fit() first");
    check(x.size(1) == n_features_in_, w.c_str(), "x has ", x.size(1), " features, but this ColumnTransformer was fitted on ",
          n_features_in_);
  }
  for (const auto& e : entries_) {
    for (std::int64_t c : e.columns) {
      check(c < x.size(1), w.c_str(), "transformer '", e.name, "' names column ", c, ", but x has ", x.size(1),
            " columns (shape ", shape_string(x.shape()), ")");
    }
  }
}

Tensor ColumnTransformer::select(const Tensor& x, const std::vector<std::int64_t>& columns) const {
  return x.index_select(1, index_tensor(columns));
}

Tensor ColumnTransformer::fit_transform(const Tensor& x) {
  NoGradGuard guard;
  check_input(x, "fit", true);
  const Dtype out = is_floating(x.dtype()) ? x.dtype() : Dtype::Float64;
  std::vector<Tensor> parts;
  for (auto& e : entries_) parts.push_back(e.transformer->fit_transform(select(x, e.columns)).to(out));
  std::set<std::int64_t> used;
  for (const auto& e : entries_) used.insert(e.columns.begin(), e.columns.end());
  remainder_columns_.clear();
  if (remainder_ == Remainder::Passthrough) {
    for (std::int64_t c = 0; c < x.size(1); ++c) {
      if (used.count(c) == 0) remainder_columns_.push_back(c);
    }
    if (!remainder_columns_.empty()) parts.push_back(select(x, remainder_columns_).to(out));
  }
  n_features_in_ = x.size(1);
  return cat(parts, 1);
}

ColumnTransformer& ColumnTransformer::fit(const Tensor& x) {
  fit_transform(x);
  return *this;
}

Tensor ColumnTransformer::transform(const Tensor& x) const {
  NoGradGuard guard;
  check_input(x, "transform", false);
  const Dtype out = is_floating(x.dtype()) ? x.dtype() : Dtype::Float64;
  std::vector<Tensor> parts;
  for (const auto& e : entries_) parts.push_back(e.transformer->transform(select(x, e.columns)).to(out));
  if (!remainder_columns_.empty()) parts.push_back(select(x, remainder_columns_).to(out));
  return cat(parts, 1);
}

StateDict ColumnTransformer::state_dict() const {
  check<std::runtime_error>(fitted(), "ColumnTransformer.state_dict", "not fitted yet; call fit() first");
  StateDict s{{"n_features_in_", int64_scalar(n_features_in_)},
              {"remainder", int64_scalar(static_cast<std::int64_t>(remainder_))}};
  for (const auto& e : entries_) {
    s.insert("columns." + e.name, index_tensor(e.columns));
    s.merge(e.transformer->state_dict(), e.name + ".");
  }
  return s;
}

void ColumnTransformer::load_state_dict(const StateDict& state) {
  StateReader r(state, "ColumnTransformer.load_state_dict");
  r.expect("remainder", static_cast<std::int64_t>(remainder_));
  const std::int64_t d = r.int64("n_features_in_");
  check(d > 0, r.where().c_str(), "n_features_in_ must be positive, got ", d);
  std::set<std::int64_t> used;
  for (const auto& e : entries_) {
    const Tensor cols = r.tensor("columns." + e.name, Dtype::Int64, {-1}, true);
    const std::int64_t* p = cols.data_ptr<std::int64_t>();
    check(std::vector<std::int64_t>(p, p + cols.numel()) == e.columns, r.where().c_str(), "transformer '", e.name,
          "' was saved with columns ", toolbox_detail::list_string(std::vector<std::int64_t>(p, p + cols.numel())),
          ", this one has ", toolbox_detail::list_string(e.columns));
    for (std::int64_t c : e.columns) {
      check(c < d, r.where().c_str(), "column ", c, " of '", e.name, "' is outside n_features_in_ = ", d);
      used.insert(c);
    }
    r.use_prefix(e.name + ".");
  }
  r.finish();
  // All or nothing: every part must load into a copy before any is changed.
  for (const auto& e : entries_) e.transformer->clone()->load_state_dict(state.with_prefix_removed(e.name + "."));
  for (auto& e : entries_) e.transformer->load_state_dict(state.with_prefix_removed(e.name + "."));
  n_features_in_ = d;
  remainder_columns_.clear();
  if (remainder_ == Remainder::Passthrough) {
    for (std::int64_t c = 0; c < d; ++c) {
      if (used.count(c) == 0) remainder_columns_.push_back(c);
    }
  }
}

}  // namespace sorix::preprocessing
