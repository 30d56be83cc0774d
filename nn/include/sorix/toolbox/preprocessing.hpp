#pragma once
// sorix::preprocessing — Python sorix's scalers, encoder and column transformer, with
// scikit-learn's definitions (sklearn.preprocessing / sklearn.compose 1.2). Where Python sorix
// differs, this follows scikit-learn (docs/toolbox.md lists the differences).
//
// Inputs: 2-D tensors [samples, features]. Scalers take float32/float64 (int64 is read as
// float64) and return the input's floating dtype (float64 for int64); fitted statistics are
// float64 and every transform is computed in float64, then converted. OneHotEncoder takes int64
// category codes (or floating columns holding integers) or string columns.
//
// Errors: std::invalid_argument naming the class, the method and the value for an empty input,
// NaN or infinity (scikit-learn's scalers skip NaN as missing; sorix refuses it), the wrong
// number of features, an unknown category, or a bad option; std::runtime_error for
// transform/inverse_transform/state_dict before fit.
//
// State: state_dict() holds the options and the fitted statistics as tensors ("scale_",
// "mean_", ... as scikit-learn's attributes), so sorix::save(scaler, path) / sorix::load(scaler,
// path) use the library's checkpoint format (sorix/nn/checkpoint.hpp). load_state_dict is strict
// (every entry present, none extra, consistent shapes) and refuses a state saved with other
// options (build the transformer with the same options, then load); it changes nothing unless
// everything matches.
//
// Threading and determinism: statistics are the library's deterministic reductions (or exact
// selections: min, max, sorted quantiles), transforms are elementwise ops: bit-identical for any
// thread count and on every CPU capability.
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "sorix/core/state_dict.hpp"
#include "sorix/core/tensor.hpp"

namespace sorix::preprocessing {

/// What every transformer offers; ColumnTransformer holds them through this interface.
class Transformer {
 public:
  virtual ~Transformer() = default;
  /// Learns the statistics of x [samples, features]; returns *this.
  virtual Transformer& fit(const Tensor& x) = 0;
  virtual Tensor transform(const Tensor& x) const = 0;
  virtual Tensor fit_transform(const Tensor& x);
  /// The inverse map; throws std::logic_error where scikit-learn has none (ColumnTransformer).
  virtual Tensor inverse_transform(const Tensor& x) const;
  virtual bool fitted() const = 0;
  /// Features seen by fit, and produced by transform (std::runtime_error before fit).
  virtual std::int64_t n_features_in() const = 0;
  virtual std::int64_t n_features_out() const = 0;
  virtual StateDict state_dict() const = 0;
  virtual void load_state_dict(const StateDict& state) = 0;
  /// An independent copy (options and fitted state).
  virtual std::shared_ptr<Transformer> clone() const = 0;
  /// "MinMaxScaler", ... (for messages).
  virtual const char* name() const = 0;
};

// ---- scalers -----------------------------------------------------------------------------------
struct MinMaxScalerOptions {
  MinMaxScalerOptions() = default;
  /// The target range [min, max] (min < max).
  MinMaxScalerOptions& feature_range(double min, double max) { range_ = {min, max}; return *this; }
  /// Clip transformed values to the range (data outside the fitted min/max).
  MinMaxScalerOptions& clip(bool c) { clip_ = c; return *this; }
  std::pair<double, double> feature_range() const { return range_; }
  bool clip() const { return clip_; }

 private:
  std::pair<double, double> range_{0.0, 1.0};
  bool clip_ = false;
};

/// x' = x * scale_ + min_, with scale_ = (max - min) / data_range_ and min_ = min - data_min_ *
/// scale_; a constant feature (range below 10 eps of the input dtype) gets range 1, as
/// scikit-learn (Python sorix divides by 1e-9). inverse: (x' - min_) / scale_.
class MinMaxScaler : public Transformer {
 public:
  explicit MinMaxScaler(MinMaxScalerOptions options = {});
  MinMaxScaler& fit(const Tensor& x) override;
  Tensor transform(const Tensor& x) const override;
  Tensor inverse_transform(const Tensor& x) const override;
  bool fitted() const override { return data_min_.defined(); }
  std::int64_t n_features_in() const override;
  std::int64_t n_features_out() const override { return n_features_in(); }
  StateDict state_dict() const override;
  void load_state_dict(const StateDict& state) override;
  std::shared_ptr<Transformer> clone() const override { return std::make_shared<MinMaxScaler>(*this); }
  const char* name() const override { return "MinMaxScaler"; }
  const MinMaxScalerOptions& options() const { return options_; }
  /// float64 [features] (after fit).
  const Tensor& data_min() const { return data_min_; }
  const Tensor& data_max() const { return data_max_; }
  const Tensor& data_range() const { return data_range_; }
  const Tensor& scale() const { return scale_; }
  const Tensor& min() const { return min_; }

 private:
  MinMaxScalerOptions options_;
  Tensor data_min_, data_max_, data_range_, scale_, min_;
  std::int64_t n_samples_seen_ = 0;
};

struct StandardScalerOptions {
  StandardScalerOptions() = default;
  StandardScalerOptions& with_mean(bool b) { with_mean_ = b; return *this; }
  StandardScalerOptions& with_std(bool b) { with_std_ = b; return *this; }
  bool with_mean() const { return with_mean_; }
  bool with_std() const { return with_std_; }

 private:
  bool with_mean_ = true;
  bool with_std_ = true;
};

/// x' = (x - mean_) / scale_ (each step only when enabled); var_ is the population variance
/// (ddof 0), scale_ = sqrt(var_), 1 for a constant feature (scikit-learn's test
/// var <= n eps var + (n mean eps)^2; Python sorix divides by 1e-9). mean_, var_ and scale_ are
/// always computed (scikit-learn leaves the disabled ones None). inverse: x' * scale_ + mean_.
class StandardScaler : public Transformer {
 public:
  explicit StandardScaler(StandardScalerOptions options = {});
  StandardScaler& fit(const Tensor& x) override;
  Tensor transform(const Tensor& x) const override;
  Tensor inverse_transform(const Tensor& x) const override;
  bool fitted() const override { return mean_.defined(); }
  std::int64_t n_features_in() const override;
  std::int64_t n_features_out() const override { return n_features_in(); }
  StateDict state_dict() const override;
  void load_state_dict(const StateDict& state) override;
  std::shared_ptr<Transformer> clone() const override { return std::make_shared<StandardScaler>(*this); }
  const char* name() const override { return "StandardScaler"; }
  const StandardScalerOptions& options() const { return options_; }
  const Tensor& mean() const { return mean_; }
  const Tensor& var() const { return var_; }
  const Tensor& scale() const { return scale_; }

 private:
  StandardScalerOptions options_;
  Tensor mean_, var_, scale_;
  std::int64_t n_samples_seen_ = 0;
};

struct RobustScalerOptions {
  RobustScalerOptions() = default;
  RobustScalerOptions& with_centering(bool b) { with_centering_ = b; return *this; }
  RobustScalerOptions& with_scaling(bool b) { with_scaling_ = b; return *this; }
  /// Percentiles (0 <= q_min <= q_max <= 100) whose difference is the scale.
  RobustScalerOptions& quantile_range(double q_min, double q_max) { range_ = {q_min, q_max}; return *this; }
  bool with_centering() const { return with_centering_; }
  bool with_scaling() const { return with_scaling_; }
  std::pair<double, double> quantile_range() const { return range_; }

 private:
  bool with_centering_ = true;
  bool with_scaling_ = true;
  std::pair<double, double> range_{25.0, 75.0};
};

/// x' = (x - center_) / scale_: center_ the median, scale_ = percentile(q_max) -
/// percentile(q_min), both as numpy's default (linear interpolation between sorted values, its
/// lerp formula); a scale below 10 eps of the input dtype becomes 1. (scikit-learn's
/// unit_variance option is not offered.) inverse: x' * scale_ + center_.
class RobustScaler : public Transformer {
 public:
  explicit RobustScaler(RobustScalerOptions options = {});
  RobustScaler& fit(const Tensor& x) override;
  Tensor transform(const Tensor& x) const override;
  Tensor inverse_transform(const Tensor& x) const override;
  bool fitted() const override { return center_.defined(); }
  std::int64_t n_features_in() const override;
  std::int64_t n_features_out() const override { return n_features_in(); }
  StateDict state_dict() const override;
  void load_state_dict(const StateDict& state) override;
  std::shared_ptr<Transformer> clone() const override { return std::make_shared<RobustScaler>(*this); }
  const char* name() const override { return "RobustScaler"; }
  const RobustScalerOptions& options() const { return options_; }
  const Tensor& center() const { return center_; }
  const Tensor& scale() const { return scale_; }

 private:
  RobustScalerOptions options_;
  Tensor center_, scale_;
};

/// numpy's percentile of each column of x [n, d] (linear interpolation, numpy's lerp: a + (b - a)
/// t below t = 0.5, b - (b - a) (1 - t) from it), q in [0, 100]; float64 [d].
Tensor column_percentile(const Tensor& x, double q);
/// numpy's median of each column (the mean of the two middle values for even n); float64 [d].
Tensor column_median(const Tensor& x);

// ---- one-hot encoding --------------------------------------------------------------------------
/// String categories, one inner vector per column: columns[j][i] is row i of column j.
using StringColumns = std::vector<std::vector<std::string>>;

enum class HandleUnknown { Error, Ignore };

struct OneHotEncoderOptions {
  OneHotEncoderOptions() = default;
  /// Error: an unseen category at transform throws. Ignore: its block of the row is all zeros.
  OneHotEncoderOptions& handle_unknown(HandleUnknown h) { handle_unknown_ = h; return *this; }
  /// "error" or "ignore".
  OneHotEncoderOptions& handle_unknown(const std::string& name);
  /// The output dtype (float64 as scikit-learn, or float32; int64 for 0/1 integers).
  OneHotEncoderOptions& dtype(Dtype d) { dtype_ = d; return *this; }
  HandleUnknown handle_unknown() const { return handle_unknown_; }
  Dtype dtype() const { return dtype_; }

 private:
  HandleUnknown handle_unknown_ = HandleUnknown::Error;
  Dtype dtype_ = Dtype::Float64;
};

/// One 0/1 column per category of each input column, the categories of a column sorted
/// (numbers ascending; strings by bytes, i.e. by code point for UTF-8, as numpy.unique). Output
/// [n, sum of the category counts], blocks in column order. inverse_transform takes each block's
/// first largest entry (scikit-learn's argmax); with HandleUnknown::Ignore an all-zero block
/// (an unknown category) throws, as it has no inverse (scikit-learn returns None). An encoder is
/// fitted either on integer codes or on strings; the other kind of input throws.
class OneHotEncoder : public Transformer {
 public:
  explicit OneHotEncoder(OneHotEncoderOptions options = {});
  /// int64 codes [n, columns] (floating columns must hold integers).
  OneHotEncoder& fit(const Tensor& x) override;
  OneHotEncoder& fit(const StringColumns& columns);
  Tensor transform(const Tensor& x) const override;
  Tensor transform(const StringColumns& columns) const;
  Tensor fit_transform(const Tensor& x) override;
  Tensor fit_transform(const StringColumns& columns);
  /// int64 codes [n, columns] (an encoder fitted on integers).
  Tensor inverse_transform(const Tensor& x) const override;
  /// The strings (an encoder fitted on strings).
  StringColumns inverse_transform_strings(const Tensor& x) const;
  bool fitted() const override { return fitted_; }
  bool fitted_on_strings() const { return strings_; }
  std::int64_t n_features_in() const override;
  std::int64_t n_features_out() const override;
  /// The sorted categories of each column (one of the two, by the kind fitted).
  const std::vector<std::vector<std::int64_t>>& categories() const { return int_categories_; }
  const std::vector<std::vector<std::string>>& string_categories() const { return string_categories_; }
  /// "<input name>_<category>" per output column (input names default to x0, x1, ...).
  std::vector<std::string> get_feature_names_out(const std::vector<std::string>& input_features = {}) const;
  StateDict state_dict() const override;
  void load_state_dict(const StateDict& state) override;
  std::shared_ptr<Transformer> clone() const override { return std::make_shared<OneHotEncoder>(*this); }
  const char* name() const override { return "OneHotEncoder"; }
  const OneHotEncoderOptions& options() const { return options_; }

 private:
  void check_fitted(const char* method) const;
  Tensor encode(const std::vector<std::vector<std::int64_t>>& positions, std::int64_t rows) const;
  OneHotEncoderOptions options_;
  bool fitted_ = false;
  bool strings_ = false;
  std::vector<std::vector<std::int64_t>> int_categories_;
  std::vector<std::vector<std::string>> string_categories_;
};

// ---- column transformer ------------------------------------------------------------------------
/// What happens to the columns no transformer names: dropped, or appended unchanged after the
/// transformed blocks (in their original order), as scikit-learn's remainder.
enum class Remainder { Drop, Passthrough };

/// scikit-learn's ColumnTransformer on one numeric table: each transformer gets the columns
/// it names (x.index_select(1, columns)), and the outputs are concatenated along dim 1 in the
/// order given, then the remainder. Output dtype: x's floating dtype (float64 for int64 x). A
/// column may be named by several transformers. Names: unique, non-empty, no '.'; columns:
/// non-empty, in [0, features). No inverse_transform (as scikit-learn). String categories are
/// encoded with OneHotEncoder directly (a Tensor table is numeric).
///
///   ColumnTransformer ct({{"num", StandardScaler(), {0, 2}}, {"cat", OneHotEncoder(), {1}}},
///                        Remainder::Passthrough);
///   Tensor z = ct.fit_transform(x);
class ColumnTransformer : public Transformer {
 public:
  struct Entry {
    std::string name;
    std::shared_ptr<Transformer> transformer;
    std::vector<std::int64_t> columns;
    Entry(std::string n, std::shared_ptr<Transformer> t, std::vector<std::int64_t> c)
        : name(std::move(n)), transformer(std::move(t)), columns(std::move(c)) {}
    /// A transformer by value (copied into the ColumnTransformer).
    template <class T>
      requires std::is_base_of_v<Transformer, T>
    Entry(std::string n, T t, std::vector<std::int64_t> c)
        : Entry(std::move(n), std::shared_ptr<Transformer>(std::make_shared<T>(std::move(t))), std::move(c)) {}
  };

  explicit ColumnTransformer(std::vector<Entry> transformers, Remainder remainder = Remainder::Drop);
  ColumnTransformer(const ColumnTransformer& other);  // deep copy (clones every transformer)
  ColumnTransformer& operator=(const ColumnTransformer& other);
  ColumnTransformer(ColumnTransformer&&) = default;
  ColumnTransformer& operator=(ColumnTransformer&&) = default;

  ColumnTransformer& fit(const Tensor& x) override;
  Tensor transform(const Tensor& x) const override;
  Tensor fit_transform(const Tensor& x) override;
  bool fitted() const override { return n_features_in_ > 0; }
  std::int64_t n_features_in() const override;
  std::int64_t n_features_out() const override;
  /// The columns passed through (Remainder::Passthrough; after fit).
  const std::vector<std::int64_t>& remainder_columns() const { return remainder_columns_; }
  const std::vector<Entry>& transformers() const { return entries_; }
  /// The transformer called `name` (std::out_of_range otherwise).
  std::shared_ptr<Transformer> named_transformer(const std::string& name) const;
  /// Each transformer's state under "<name>.", plus "n_features_in_", "remainder" and
  /// "columns.<name>". Loading checks the names and columns match this transformer's, and loads
  /// every part or none.
  StateDict state_dict() const override;
  void load_state_dict(const StateDict& state) override;
  std::shared_ptr<Transformer> clone() const override { return std::make_shared<ColumnTransformer>(*this); }
  const char* name() const override { return "ColumnTransformer"; }

 private:
  Tensor select(const Tensor& x, const std::vector<std::int64_t>& columns) const;
  void check_input(const Tensor& x, const char* method, bool fitting) const;
  std::vector<Entry> entries_;
  Remainder remainder_;
  std::int64_t n_features_in_ = 0;
  std::vector<std::int64_t> remainder_columns_;
};

}  // namespace sorix::preprocessing
