// OneHotEncoder (sorix/toolbox/preprocessing.hpp): sorted categories per column; an output row
// is written by positions, so the result is exact at any thread count.
#include <algorithm>
#include <cmath>
#include <functional>
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

// int64 codes [n, c] from an int64 tensor, or a floating one whose values are integers.
std::vector<std::vector<std::int64_t>> code_columns(const Tensor& x, const char* w) {
  toolbox_detail::check_matrix(x, w, "x");
  toolbox_detail::check_finite(x, w, "x");
  const Tensor c = x.to(Dtype::Float64).contiguous();  // exact for |codes| < 2^53
  const Tensor ci = x.dtype() == Dtype::Int64 ? x.contiguous() : Tensor();
  const std::size_t n = static_cast<std::size_t>(x.size(0)), d = static_cast<std::size_t>(x.size(1));
  std::vector<std::vector<std::int64_t>> cols(d, std::vector<std::int64_t>(n));
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < d; ++j) {
      if (ci.defined()) {
        cols[j][i] = ci.data_ptr<std::int64_t>()[i * d + j];
        continue;
      }
      const double v = c.data_ptr<double>()[i * d + j];
      check(v == std::floor(v) && std::abs(v) < 9.007199254740992e15, w, "column ", j, " holds ", v, " in row ", i,
            ", not an integer category; pass int64 codes (or strings)");
      cols[j][i] = static_cast<std::int64_t>(v);
    }
  }
  return cols;
}

void check_string_columns(const StringColumns& cols, const char* w) {
  check(!cols.empty(), w, "no columns given");
  const std::size_t n = cols[0].size();
  check(n > 0, w, "empty input (column 0 has 0 rows)");
  for (std::size_t j = 1; j < cols.size(); ++j) {
    check(cols[j].size() == n, w, "every column must have the same number of rows: column 0 has ", n, ", column ", j,
          " has ", cols[j].size());
  }
}

template <class T>
std::vector<T> sorted_unique(std::vector<T> v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

template <class T>
std::string show(const T& v) {
  if constexpr (std::is_same_v<T, std::string>) return "'" + v + "'";
  else return std::to_string(v);
}

template <class T>
std::string show_list(const std::vector<T>& cats) {
  std::string s = "[";
  for (std::size_t i = 0; i < cats.size() && i < 20; ++i) s += (i ? ", " : "") + show(cats[i]);
  if (cats.size() > 20) s += ", ...";
  return s + "]";
}

// Position of each value in its column's categories (-1: unknown and ignored).
template <class T>
std::vector<std::vector<std::int64_t>> positions(const std::vector<std::vector<T>>& cols,
                                                 const std::vector<std::vector<T>>& cats, HandleUnknown h,
                                                 const char* w) {
  check(cols.size() == cats.size(), w, "x has ", cols.size(), " columns, but this OneHotEncoder was fitted on ",
        cats.size());
  std::vector<std::vector<std::int64_t>> pos(cols.size());
  for (std::size_t j = 0; j < cols.size(); ++j) {
    pos[j].resize(cols[j].size());
    for (std::size_t i = 0; i < cols[j].size(); ++i) {
      const auto it = std::lower_bound(cats[j].begin(), cats[j].end(), cols[j][i]);
      const bool known = it != cats[j].end() && *it == cols[j][i];
      check(known || h == HandleUnknown::Ignore, w, "unknown category ", show(cols[j][i]), " in column ", j, " (row ", i,
            "); known categories: ", show_list(cats[j]),
            "; use handle_unknown(HandleUnknown::Ignore) to encode it as all zeros");
      pos[j][i] = known ? it - cats[j].begin() : -1;
    }
  }
  return pos;
}

}  // namespace

OneHotEncoderOptions& OneHotEncoderOptions::handle_unknown(const std::string& name) {
  if (name == "error") handle_unknown_ = HandleUnknown::Error;
  else if (name == "ignore") handle_unknown_ = HandleUnknown::Ignore;
  else
    throw std::invalid_argument(error_message("OneHotEncoderOptions::handle_unknown", "unknown handle_unknown '", name,
                                              "' (expected error or ignore)"));
  return *this;
}

OneHotEncoder::OneHotEncoder(OneHotEncoderOptions options) : options_(options) {}

void OneHotEncoder::check_fitted(const char* method) const {
  check<std::runtime_error>(fitted_, (std::string("OneHotEncoder.") + method).c_str(),
                            "this OneHotEncoder is not fitted yet; call fit() first");
}

std::int64_t OneHotEncoder::n_features_in() const {
  check_fitted("n_features_in");
  return static_cast<std::int64_t>(strings_ ? string_categories_.size() : int_categories_.size());
}

std::int64_t OneHotEncoder::n_features_out() const {
  check_fitted("n_features_out");
  std::size_t total = 0;
  if (strings_) {
    for (const auto& c : string_categories_) total += c.size();
  } else {
    for (const auto& c : int_categories_) total += c.size();
  }
  return static_cast<std::int64_t>(total);
}

OneHotEncoder& OneHotEncoder::fit(const Tensor& x) {
  auto cols = code_columns(x, "OneHotEncoder.fit");
  int_categories_.clear();
  for (auto& c : cols) int_categories_.push_back(sorted_unique(std::move(c)));
  string_categories_.clear();
  strings_ = false;
  fitted_ = true;
  return *this;
}

OneHotEncoder& OneHotEncoder::fit(const StringColumns& columns) {
  check_string_columns(columns, "OneHotEncoder.fit");
  string_categories_.clear();
  for (const auto& c : columns) string_categories_.push_back(sorted_unique(c));
  int_categories_.clear();
  strings_ = true;
  fitted_ = true;
  return *this;
}

Tensor OneHotEncoder::encode(const std::vector<std::vector<std::int64_t>>& pos, std::int64_t rows) const {
  const std::int64_t width = n_features_out();
  std::vector<double> out(static_cast<std::size_t>(rows * width), 0.0);
  std::int64_t offset = 0;
  for (std::size_t j = 0; j < pos.size(); ++j) {
    for (std::int64_t i = 0; i < rows; ++i) {
      const std::int64_t p = pos[j][static_cast<std::size_t>(i)];
      if (p >= 0) out[static_cast<std::size_t>(i * width + offset + p)] = 1.0;
    }
    offset += static_cast<std::int64_t>(strings_ ? string_categories_[j].size() : int_categories_[j].size());
  }
  return tensor(out, {rows, width}, options_.dtype());
}

Tensor OneHotEncoder::transform(const Tensor& x) const {
  check_fitted("transform");
  check(!strings_, "OneHotEncoder.transform", "this encoder was fitted on strings; pass StringColumns");
  const auto cols = code_columns(x, "OneHotEncoder.transform");
  return encode(positions(cols, int_categories_, options_.handle_unknown(), "OneHotEncoder.transform"), x.size(0));
}

Tensor OneHotEncoder::transform(const StringColumns& columns) const {
  check_fitted("transform");
  check(strings_, "OneHotEncoder.transform", "this encoder was fitted on integer codes; pass a Tensor");
  check_string_columns(columns, "OneHotEncoder.transform");
  return encode(positions(columns, string_categories_, options_.handle_unknown(), "OneHotEncoder.transform"),
                static_cast<std::int64_t>(columns[0].size()));
}

Tensor OneHotEncoder::fit_transform(const Tensor& x) { return fit(x).transform(x); }
Tensor OneHotEncoder::fit_transform(const StringColumns& columns) { return fit(columns).transform(columns); }

namespace {
// For each row and input column: the index of the first largest entry of its block (-1 when the
// block is all zeros and unknown categories were ignored: no inverse).
std::vector<std::vector<std::int64_t>> argmax_blocks(const Tensor& x, const std::vector<std::size_t>& sizes,
                                                     std::int64_t width, HandleUnknown h) {
  const char* w = "OneHotEncoder.inverse_transform";
  toolbox_detail::check_matrix(x, w, "x");
  check(x.size(1) == width, w, "x has ", x.size(1), " columns, but this encoder produces ", width);
  const auto v = toolbox_detail::float64_values(toolbox_detail::to_float64(x, w, "x"));
  const std::size_t n = static_cast<std::size_t>(x.size(0));
  std::vector<std::vector<std::int64_t>> idx(sizes.size(), std::vector<std::int64_t>(n));
  std::size_t offset = 0;
  for (std::size_t j = 0; j < sizes.size(); ++j) {
    for (std::size_t i = 0; i < n; ++i) {
      const double* row = v.data() + i * static_cast<std::size_t>(width) + offset;
      std::size_t best = 0;
      bool nonzero = false;
      for (std::size_t k = 0; k < sizes[j]; ++k) {
        nonzero = nonzero || row[k] != 0;
        if (row[k] > row[best]) best = k;
      }
      check(nonzero || h == HandleUnknown::Error, w, "row ", i, " has all zeros in the block of column ", j,
            " (an unknown category ignored by transform): it has no inverse");
      idx[j][i] = static_cast<std::int64_t>(best);
    }
    offset += sizes[j];
  }
  return idx;
}
}  // namespace

Tensor OneHotEncoder::inverse_transform(const Tensor& x) const {
  check_fitted("inverse_transform");
  check(!strings_, "OneHotEncoder.inverse_transform",
        "this encoder was fitted on strings; use inverse_transform_strings");
  std::vector<std::size_t> sizes;
  for (const auto& c : int_categories_) sizes.push_back(c.size());
  const auto idx = argmax_blocks(x, sizes, n_features_out(), options_.handle_unknown());
  const std::int64_t n = x.size(0), d = static_cast<std::int64_t>(sizes.size());
  Tensor out = empty({n, d}, Dtype::Int64);
  std::int64_t* p = out.data_ptr<std::int64_t>();
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t j = 0; j < d; ++j) p[i * d + j] = int_categories_[static_cast<std::size_t>(j)][static_cast<std::size_t>(idx[static_cast<std::size_t>(j)][static_cast<std::size_t>(i)])];
  }
  return out;
}

StringColumns OneHotEncoder::inverse_transform_strings(const Tensor& x) const {
  check_fitted("inverse_transform_strings");
  check(strings_, "OneHotEncoder.inverse_transform_strings",
        "this encoder was fitted on integer codes; use inverse_transform");
  std::vector<std::size_t> sizes;
  for (const auto& c : string_categories_) sizes.push_back(c.size());
  const auto idx = argmax_blocks(x, sizes, n_features_out(), options_.handle_unknown());
  StringColumns out(sizes.size());
  for (std::size_t j = 0; j < sizes.size(); ++j) {
    for (std::int64_t k : idx[j]) out[j].push_back(string_categories_[j][static_cast<std::size_t>(k)]);
  }
  return out;
}

std::vector<std::string> OneHotEncoder::get_feature_names_out(const std::vector<std::string>& input_features) const {
  check_fitted("get_feature_names_out");
  const std::size_t d = static_cast<std::size_t>(n_features_in());
  check(input_features.empty() || input_features.size() == d, "OneHotEncoder.get_feature_names_out",
        "input_features has ", input_features.size(), " names, but the encoder was fitted on ", d, " columns");
  std::vector<std::string> names;
  for (std::size_t j = 0; j < d; ++j) {
    std::string base = "x";  // (appended, not "x" + ...: GCC 12 warns falsely about that concatenation)
    if (input_features.empty()) base.append(std::to_string(j));
    else base = input_features[j];
    if (strings_) {
      for (const auto& c : string_categories_[j]) names.push_back(base + "_" + c);
    } else {
      for (std::int64_t c : int_categories_[j]) names.push_back(base + "_" + std::to_string(c));
    }
  }
  return names;
}

// Strings are stored as their bytes (int64 [total]) and offsets (int64 [count + 1]).
StateDict OneHotEncoder::state_dict() const {
  check_fitted("state_dict");
  StateDict s{{"handle_unknown", int64_scalar(static_cast<std::int64_t>(options_.handle_unknown()))},
              {"dtype", int64_scalar(static_cast<std::int64_t>(options_.dtype()))},
              {"strings", int64_scalar(strings_)},
              {"n_features_in_", int64_scalar(n_features_in())}};
  for (std::size_t j = 0; j < static_cast<std::size_t>(n_features_in()); ++j) {
    const std::string key = "categories." + std::to_string(j);
    if (!strings_) {
      const auto& c = int_categories_[j];
      Tensor t = empty({static_cast<std::int64_t>(c.size())}, Dtype::Int64);
      std::copy(c.begin(), c.end(), t.data_ptr<std::int64_t>());
      s.insert(key, t);
      continue;
    }
    std::vector<std::int64_t> bytes, offsets{0};
    for (const auto& str : string_categories_[j]) {
      for (unsigned char ch : str) bytes.push_back(ch);
      offsets.push_back(static_cast<std::int64_t>(bytes.size()));
    }
    Tensor b = empty({static_cast<std::int64_t>(bytes.size())}, Dtype::Int64);
    Tensor o = empty({static_cast<std::int64_t>(offsets.size())}, Dtype::Int64);
    std::copy(bytes.begin(), bytes.end(), b.data_ptr<std::int64_t>());
    std::copy(offsets.begin(), offsets.end(), o.data_ptr<std::int64_t>());
    s.insert(key + ".bytes", b);
    s.insert(key + ".offsets", o);
  }
  return s;
}

void OneHotEncoder::load_state_dict(const StateDict& state) {
  StateReader r(state, "OneHotEncoder.load_state_dict");
  r.expect("handle_unknown", static_cast<std::int64_t>(options_.handle_unknown()));
  r.expect("dtype", static_cast<std::int64_t>(options_.dtype()));
  const bool strings = r.int64("strings") != 0;
  const std::int64_t d = r.int64("n_features_in_");
  check(d > 0, r.where().c_str(), "n_features_in_ must be positive, got ", d);
  std::vector<std::vector<std::int64_t>> ints;
  std::vector<std::vector<std::string>> strs;
  for (std::int64_t j = 0; j < d; ++j) {
    const std::string key = "categories." + std::to_string(j);
    if (!strings) {
      const Tensor t = r.tensor(key, Dtype::Int64, {-1}, true);
      const std::int64_t* p = t.data_ptr<std::int64_t>();
      std::vector<std::int64_t> c(p, p + t.numel());
      check(!c.empty() && std::adjacent_find(c.begin(), c.end(), std::greater_equal<>()) == c.end(), r.where().c_str(),
            key, " must be non-empty, sorted and distinct");
      ints.push_back(std::move(c));
      continue;
    }
    const Tensor b = r.tensor(key + ".bytes", Dtype::Int64, {-1}, true);
    const Tensor o = r.tensor(key + ".offsets", Dtype::Int64, {-1}, true);
    const std::int64_t* pb = b.data_ptr<std::int64_t>();
    const std::int64_t* po = o.data_ptr<std::int64_t>();
    check(o.numel() >= 2 && po[0] == 0 && po[o.numel() - 1] == b.numel(), r.where().c_str(), key,
          ".offsets must start at 0 and end at the byte count");
    std::vector<std::string> c;
    for (std::int64_t k = 0; k + 1 < o.numel(); ++k) {
      check(po[k] <= po[k + 1], r.where().c_str(), key, ".offsets must not decrease");
      std::string str;
      for (std::int64_t q = po[k]; q < po[k + 1]; ++q) {
        check(pb[q] >= 0 && pb[q] <= 255, r.where().c_str(), key, ".bytes holds ", pb[q], ", not a byte");
        str.push_back(static_cast<char>(static_cast<unsigned char>(pb[q])));
      }
      c.push_back(std::move(str));
    }
    check(std::adjacent_find(c.begin(), c.end(), std::greater_equal<>()) == c.end(), r.where().c_str(), key,
          " must be sorted and distinct");
    strs.push_back(std::move(c));
  }
  r.finish();
  int_categories_ = std::move(ints);
  string_categories_ = std::move(strs);
  strings_ = strings;
  fitted_ = true;
}

}  // namespace sorix::preprocessing
