#pragma once
// sorix::optim::Optimizer — the base of SGD, Adam, AdamW and RMSprop (PyTorch's C++ frontend
// style: the optimizer holds the parameter handles, step() updates them in place).
//
// One parameter group: every parameter shares the options (lr etc.). Parameters whose grad() is
// undefined are skipped by step(). Dtypes: float32 and float64 parameters; a gradient must have
// its parameter's shape and dtype (else std::invalid_argument naming the parameter index).
//
// Updates: each parameter's update is ONE fused kernel over its flat storage, the formulas of
// PyTorch 1.13's single-tensor path in the same operation order (so float64 results agree to
// rounding). It runs on the raw data under no-grad and bumps the parameter's storage version, so
// a graph that saved the old value refuses to backward. Threading/determinism: fixed chunks of
// parallel::kChunkSize elements, each element updated on its own: bit-identical for any thread
// count.
//
// State: state_dict() gives everything as named tensors (clones):
//   "num_params"            int64 0-dim
//   "group.<name>"          float64 0-dim, every hyper-parameter ("group.lr", "group.momentum",
//                           ...; flags such as nesterov as 0/1), so a scheduler's lr survives.
//                           Those that decide which buffers exist (momentum of SGD/RMSprop,
//                           nesterov, amsgrad, centered) must equal this optimizer's on load.
//   "state.<i>.step"        int64 0-dim, for each parameter i that has been stepped
//   "state.<i>.<buffer>"    the parameter's shape and dtype ("state.3.exp_avg", ...)
// load_state_dict validates every entry (count, names, shapes, dtypes, flags equal to this
// optimizer's) before changing anything; the first offending entry is named in a
// std::invalid_argument.
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sorix/core/state_dict.hpp"
#include "sorix/core/tensor.hpp"

namespace sorix::optim {

class Optimizer {
 public:
  /// Every parameter must be defined and float32/float64 (else std::invalid_argument).
  explicit Optimizer(std::vector<Tensor> params);
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  /// Makes every parameter's grad undefined (as PyTorch's set_to_none=True).
  void zero_grad();
  /// One update of every parameter that has a gradient.
  virtual void step() = 0;

  StateDict state_dict() const;
  void load_state_dict(const StateDict& state);

  /// The learning rate (schedulers read and write it).
  virtual double lr() const = 0;
  /// A finite lr >= 0; anything else throws std::invalid_argument naming the optimizer and value.
  virtual void set_lr(double lr) = 0;

  /// PyTorch's group["initial_lr"]: set by the first lr scheduler built on this optimizer (to the
  /// lr then, or OneCycleLR's max_lr / div_factor), read by the later ones as their base lr.
  std::optional<double> initial_lr() const { return initial_lr_; }
  void set_initial_lr(double lr) { initial_lr_ = lr; }

  const std::vector<Tensor>& parameters() const { return params_; }
  /// Number of steps taken for parameter i (0 before its first update).
  std::int64_t step_count(std::size_t i) const { return state_.at(i).step; }

 protected:
  /// Hyper-parameters must be finite and >= 0 (an inf or NaN lr would turn every weight inf/NaN).
  static bool finite_nonnegative(double v) { return std::isfinite(v) && v >= 0; }
  /// lr itself when finite_nonnegative, else throws std::invalid_argument naming op and lr.
  static double checked_lr(double lr, const char* op);
  /// A hyper-parameter as saved: `structural` ones (flags that decide which buffers exist)
  /// must equal this optimizer's when loading; the others are loaded.
  struct HyperParam {
    std::string name;
    double* value;
    bool structural = false;
  };
  /// Per-parameter state: buffers in buffer_names() order, empty until the first step.
  struct ParamState {
    std::int64_t step = 0;
    std::vector<Tensor> buffers;
    bool initialized() const { return step > 0; }
  };

  virtual std::vector<HyperParam> hyper_params() = 0;
  /// Throws std::invalid_argument naming op and the value when an option is out of range (the
  /// constructor calls it, and load_state_dict with the loaded values before it applies them).
  virtual void check_options(const char* op) const = 0;
  /// Names of the per-parameter buffers with the current options ("exp_avg", ...).
  virtual std::vector<std::string> buffer_names() const = 0;
  /// Checks a parameter's gradient (shape, dtype); true when the parameter is to be updated.
  bool has_grad(std::size_t i, const char* op) const;
  /// Called by subclasses after writing a parameter's raw data.
  void bump_version(std::size_t i);
  /// Zero-filled buffers (one per buffer_names()) of parameter i's shape and dtype.
  std::vector<Tensor> zero_buffers(std::size_t i) const;

  std::vector<Tensor> params_;
  std::vector<ParamState> state_;
  std::optional<double> initial_lr_;
};

}  // namespace sorix::optim
