#pragma once
// Adagrad; PyTorch 1.13's single-tensor update, per parameter p with gradient g and step count t
// (incremented first) and its group's options (see optimizer.hpp for groups, threading and state):
//   g = g + weight_decay * p                      (if weight_decay != 0)
//   clr = lr / (1 + (t - 1) * lr_decay)           (in double)
//   sum = sum + g * g                             (sum starts at initial_accumulator_value)
//   p = p + (-clr) * g / (sqrt(sum) + eps)
// Buffers: "sum". The update is one kernel (core/internal/sorix_core/kernels/optim_kernels.hpp) of separate IEEE
// multiplies, adds, divides and square roots: the same bits on every capability and thread count.
#include <vector>

#include "sorix/nn/optim/optimizer.hpp"

namespace sorix::optim {

struct AdagradOptions : OptimizerCloneableOptions<AdagradOptions> {
  AdagradOptions(double lr = 1e-2) : lr_(lr) {}  // NOLINT: implicit, as PyTorch's
  AdagradOptions& lr(double v) { lr_ = v; return *this; }
  AdagradOptions& lr_decay(double v) { lr_decay_ = v; return *this; }
  AdagradOptions& weight_decay(double v) { weight_decay_ = v; return *this; }
  AdagradOptions& initial_accumulator_value(double v) { initial_accumulator_value_ = v; return *this; }
  AdagradOptions& eps(double v) { eps_ = v; return *this; }
  double lr() const { return lr_; }
  double lr_decay() const { return lr_decay_; }
  double weight_decay() const { return weight_decay_; }
  double initial_accumulator_value() const { return initial_accumulator_value_; }
  double eps() const { return eps_; }
  double get_lr() const override { return lr_; }
  void set_lr(double v) override { lr_ = v; }

 private:
  friend class Adagrad;
  double lr_;
  double lr_decay_ = 0;
  double weight_decay_ = 0;
  double initial_accumulator_value_ = 0;
  double eps_ = 1e-10;
};

class Adagrad : public Optimizer {
 public:
  /// lr, lr_decay, weight_decay, initial_accumulator_value or eps negative or not finite (in the
  /// defaults or any group's options) throws std::invalid_argument naming "Adagrad" and the value.
  Adagrad(std::vector<OptimizerParamGroup> param_groups, AdagradOptions defaults = {});
  Adagrad(std::vector<Tensor> params, AdagradOptions defaults = {});
  void step() override;
  const char* name() const override { return "Adagrad"; }
  /// The defaults (groups without their own options copy them).
  const AdagradOptions& options() const { return static_cast<const AdagradOptions&>(defaults()); }

 protected:
  std::vector<HyperParam> hyper_params(const OptimizerOptions& options) const override;
  void set_hyper_params(OptimizerOptions& options, const std::vector<double>& values) const override;
  void check_options(const OptimizerOptions& options, const char* op) const override;
  std::vector<std::string> buffer_names(const OptimizerOptions&) const override { return {"sum"}; }
};

}  // namespace sorix::optim
