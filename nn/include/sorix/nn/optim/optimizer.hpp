#pragma once
// sorix::optim::Optimizer — the base of SGD, Adam, AdamW, RMSprop and Adagrad (PyTorch's C++
// frontend style: the optimizer holds the parameter handles, step() updates them in place).
//
// Parameter groups (libtorch's OptimizerParamGroup): each group has its parameters and its own
// options (lr, weight decay, ...); a group built without options takes a copy of the
// optimizer's defaults (the options passed to the constructor). A single list of parameters is
// one group. Groups must not be empty and a parameter may be in only one group (else
// std::invalid_argument). param_groups() gives the groups; their options may be changed in
// place (static_cast<SGDOptions&>(group.options()).lr(0.01)), their parameter lists not.
// Parameters whose grad() is undefined are skipped by step(). Dtypes: float32 and float64
// parameters; a gradient must have its parameter's shape and dtype (else std::invalid_argument
// naming the parameter index, counted over all groups in order).
//
// Updates: each parameter's update is ONE fused kernel over its flat storage, the formulas of
// PyTorch 1.13's single-tensor path in the same operation order (so float64 results agree to
// rounding), with its group's options. It runs on the raw data under no-grad and bumps the
// parameter's storage version, so a graph that saved the old value refuses to backward.
// Threading/determinism: fixed chunks of parallel::kChunkSize elements, each element updated on
// its own: bit-identical for any thread count.
//
// State: state_dict() gives everything as named tensors (clones). With one group:
//   "num_params"            int64 0-dim
//   "group.<name>"          float64 0-dim, every hyper-parameter ("group.lr", "group.momentum",
//                           ...; flags such as nesterov as 0/1), so a scheduler's lr survives.
//                           Those that decide which buffers exist (momentum of SGD/RMSprop,
//                           nesterov, amsgrad, centered) must equal this optimizer's on load.
//   "state.<i>.step"        int64 0-dim, for each parameter i that has been stepped
//   "state.<i>.<buffer>"    the parameter's shape and dtype ("state.3.exp_avg", ...)
// With several groups, "num_groups" (int64) and per group k "groups.<k>.num_params" (int64) and
// "groups.<k>.<name>" replace the "group.<name>" entries; i counts over all groups in order.
// load_state_dict validates every entry (counts, names, shapes, dtypes, flags equal to this
// optimizer's, option values) before changing anything; the first offending entry is named in a
// std::invalid_argument.
#include <cmath>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sorix/core/state_dict.hpp"
#include "sorix/core/tensor.hpp"

namespace sorix::optim {

/// The options of one parameter group: every optimizer's options struct (SGDOptions, ...).
class OptimizerOptions {
 public:
  virtual ~OptimizerOptions() = default;
  virtual std::unique_ptr<OptimizerOptions> clone() const = 0;
  virtual double get_lr() const = 0;
  virtual void set_lr(double lr) = 0;
};

/// CRTP base giving an options struct its clone().
template <class Derived>
class OptimizerCloneableOptions : public OptimizerOptions {
 public:
  std::unique_ptr<OptimizerOptions> clone() const override {
    return std::make_unique<Derived>(static_cast<const Derived&>(*this));
  }
};

/// Parameters with their own options (none: the optimizer's defaults). Copies copy the options.
class OptimizerParamGroup {
 public:
  OptimizerParamGroup(std::vector<Tensor> params) : params_(std::move(params)) {}  // NOLINT: implicit, as libtorch's
  OptimizerParamGroup(std::vector<Tensor> params, std::unique_ptr<OptimizerOptions> options)
      : params_(std::move(params)), options_(std::move(options)) {}
  OptimizerParamGroup(const OptimizerParamGroup& other)
      : params_(other.params_), options_(other.options_ ? other.options_->clone() : nullptr) {}
  OptimizerParamGroup& operator=(const OptimizerParamGroup& other) {
    if (this != &other) *this = OptimizerParamGroup(other);
    return *this;
  }
  OptimizerParamGroup(OptimizerParamGroup&&) = default;
  OptimizerParamGroup& operator=(OptimizerParamGroup&&) = default;

  bool has_options() const { return options_ != nullptr; }
  /// The group's options; std::logic_error when it has none.
  OptimizerOptions& options();
  const OptimizerOptions& options() const;
  void set_options(std::unique_ptr<OptimizerOptions> options) { options_ = std::move(options); }
  const std::vector<Tensor>& params() const { return params_; }

 private:
  std::vector<Tensor> params_;
  std::unique_ptr<OptimizerOptions> options_;
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  /// Makes every parameter's grad undefined (as PyTorch's set_to_none=True).
  void zero_grad();
  /// One update of every parameter that has a gradient.
  virtual void step() = 0;

  StateDict state_dict() const;
  void load_state_dict(const StateDict& state);

  /// Adds a group (options: its own, checked, or a copy of the defaults); the checks of the
  /// constructor apply (not empty, no parameter already in a group, float, contiguous).
  void add_param_group(const OptimizerParamGroup& group);
  std::vector<OptimizerParamGroup>& param_groups() { return groups_; }
  const std::vector<OptimizerParamGroup>& param_groups() const { return groups_; }
  const OptimizerOptions& defaults() const { return *defaults_; }

  /// The first group's learning rate.
  double lr() const { return groups_.front().options().get_lr(); }
  /// Sets every group's lr: a finite lr >= 0, else std::invalid_argument naming the optimizer
  /// and the value (nothing changed).
  void set_lr(double lr);
  /// Group k's lr, read and written by the schedulers (set_group_lr checks as set_lr).
  double group_lr(std::size_t k) const { return groups_.at(k).options().get_lr(); }
  void set_group_lr(std::size_t k, double lr);

  /// PyTorch's group["initial_lr"] of group k: set by the first lr scheduler built on this
  /// optimizer (to the lr then, or OneCycleLR's max_lr / div_factor), read by the later ones as
  /// their base lr.
  std::optional<double> initial_lr(std::size_t k = 0) const { return initial_lrs_.at(k); }
  void set_initial_lr(std::size_t k, double lr) { initial_lrs_.at(k) = lr; }

  /// Every parameter, group by group.
  const std::vector<Tensor>& parameters() const { return params_; }
  /// Number of steps taken for parameter i (0 before its first update).
  std::int64_t step_count(std::size_t i) const { return state_.at(i).step; }
  /// "SGD", "Adam", ... (in error messages).
  virtual const char* name() const = 0;

 protected:
  /// The groups as given (those without options get a copy of defaults). Subclass
  /// constructors call check_groups() once they can check options.
  Optimizer(std::vector<OptimizerParamGroup> groups, std::unique_ptr<OptimizerOptions> defaults);
  /// Checks every group's options with check_options (the subclass constructors call it).
  void check_groups() const;

  /// Hyper-parameters must be finite and >= 0 (an inf or NaN lr would turn every weight inf/NaN).
  static bool finite_nonnegative(double v) { return std::isfinite(v) && v >= 0; }
  /// lr itself when finite_nonnegative, else throws std::invalid_argument naming op and lr.
  static double checked_lr(double lr, const char* op);
  /// A hyper-parameter as saved: `structural` ones (flags that decide which buffers exist)
  /// must equal this optimizer's when loading; the others are loaded.
  struct HyperParam {
    std::string name;
    double value;
    bool structural = false;
  };
  /// Per-parameter state: buffers in buffer_names() order, empty until the first step.
  struct ParamState {
    std::int64_t step = 0;
    std::vector<Tensor> buffers;
    bool initialized() const { return step > 0; }
  };

  /// The hyper-parameters of one group's options, and setting them back (same order).
  virtual std::vector<HyperParam> hyper_params(const OptimizerOptions& options) const = 0;
  virtual void set_hyper_params(OptimizerOptions& options, const std::vector<double>& values) const = 0;
  /// Throws std::invalid_argument naming op and the value when an option is out of range, or
  /// when the options are another optimizer's type.
  virtual void check_options(const OptimizerOptions& options, const char* op) const = 0;
  /// Names of the per-parameter buffers with these options ("exp_avg", ...).
  virtual std::vector<std::string> buffer_names(const OptimizerOptions& options) const = 0;

  /// The options of parameter i's group, as the subclass's options type.
  template <class Options>
  const Options& options_of(std::size_t i) const {
    return static_cast<const Options&>(groups_[group_of_[i]].options());
  }
  /// Checks a parameter's gradient (shape, dtype); true when the parameter is to be updated.
  bool has_grad(std::size_t i, const char* op) const;
  /// Called by subclasses after writing a parameter's raw data.
  void bump_version(std::size_t i);
  /// Zero-filled buffers (one per buffer_names()) of parameter i's shape and dtype.
  std::vector<Tensor> zero_buffers(std::size_t i) const;

  std::vector<Tensor> params_;             // every group's, in order
  std::vector<std::size_t> group_of_;      // group index of each parameter
  std::vector<ParamState> state_;

 private:
  void append_group(OptimizerParamGroup group, const char* op);
  std::vector<OptimizerParamGroup> groups_;
  std::unique_ptr<OptimizerOptions> defaults_;
  std::vector<std::optional<double>> initial_lrs_;
};

}  // namespace sorix::optim
