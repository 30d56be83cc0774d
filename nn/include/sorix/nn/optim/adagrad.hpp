#pragma once
// Adagrad; PyTorch 1.13's single-tensor update, per parameter p with gradient g and step count t
// (incremented first; see optimizer.hpp for threading and state):
//   g = g + weight_decay * p                      (if weight_decay != 0)
//   clr = lr / (1 + (t - 1) * lr_decay)           (in double)
//   sum = sum + g * g                             (sum starts at initial_accumulator_value)
//   p = p + (-clr) * g / (sqrt(sum) + eps)
// Buffers: "sum". The update is one kernel (core/src/kernels/optim_kernels.hpp) of separate IEEE
// multiplies, adds, divides and square roots: the same bits on every capability and thread count.
#include <vector>

#include "sorix/nn/optim/optimizer.hpp"

namespace sorix::optim {

struct AdagradOptions {
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
  /// lr, lr_decay, weight_decay, initial_accumulator_value or eps negative or not finite throws
  /// std::invalid_argument naming "Adagrad" and the value.
  Adagrad(std::vector<Tensor> params, AdagradOptions options = {});
  void step() override;
  double lr() const override { return options_.lr_; }
  void check_options(const char* op) const override;
  void set_lr(double lr) override { options_.lr_ = checked_lr(lr, "Adagrad::set_lr"); }
  const AdagradOptions& options() const { return options_; }

 protected:
  std::vector<HyperParam> hyper_params() override;
  std::vector<std::string> buffer_names() const override { return {"sum"}; }

 private:
  AdagradOptions options_;
};

}  // namespace sorix::optim
