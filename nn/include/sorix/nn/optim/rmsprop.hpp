#pragma once
// RMSprop; PyTorch 1.13's single-tensor update, per parameter p with gradient g and its group's
// options (see optimizer.hpp for groups, threading and state):
//   g = g + weight_decay * p                          (if weight_decay != 0)
//   v = alpha * v + (1 - alpha) * g * g
//   centered: a = alpha * a + (1 - alpha) * g;  avg = sqrt(v + (-1) * a * a) + eps
//   else:     avg = sqrt(v) + eps
//   momentum > 0: buf = momentum * buf + g / avg;  p = p - lr * buf
//   else:         p = p + (-lr) * g / avg
// Buffers: "square_avg", "momentum_buffer" (momentum > 0), "grad_avg" (centered).
#include <vector>

#include "sorix/nn/optim/optimizer.hpp"

namespace sorix::optim {

struct RMSpropOptions : OptimizerCloneableOptions<RMSpropOptions> {
  RMSpropOptions(double lr = 1e-2) : lr_(lr) {}  // NOLINT: implicit, as PyTorch's
  RMSpropOptions& lr(double v) { lr_ = v; return *this; }
  RMSpropOptions& alpha(double v) { alpha_ = v; return *this; }
  RMSpropOptions& eps(double v) { eps_ = v; return *this; }
  RMSpropOptions& weight_decay(double v) { weight_decay_ = v; return *this; }
  RMSpropOptions& momentum(double v) { momentum_ = v; return *this; }
  RMSpropOptions& centered(bool v) { centered_ = v; return *this; }
  double lr() const { return lr_; }
  double alpha() const { return alpha_; }
  double eps() const { return eps_; }
  double weight_decay() const { return weight_decay_; }
  double momentum() const { return momentum_; }
  bool centered() const { return centered_; }
  double get_lr() const override { return lr_; }
  void set_lr(double v) override { lr_ = v; }

 private:
  friend class RMSprop;
  double lr_;
  double alpha_ = 0.99;
  double eps_ = 1e-8;
  double weight_decay_ = 0;
  double momentum_ = 0;
  bool centered_ = false;
};

class RMSprop : public Optimizer {
 public:
  /// lr, alpha, eps, weight_decay or momentum < 0 (in the defaults or any group's options) throw
  /// std::invalid_argument naming the value.
  RMSprop(std::vector<OptimizerParamGroup> param_groups, RMSpropOptions defaults = {});
  RMSprop(std::vector<Tensor> params, RMSpropOptions defaults = {});
  void step() override;
  const char* name() const override { return "RMSprop"; }
  /// The defaults (groups without their own options copy them).
  const RMSpropOptions& options() const { return static_cast<const RMSpropOptions&>(defaults()); }

 protected:
  std::vector<HyperParam> hyper_params(const OptimizerOptions& options) const override;
  void set_hyper_params(OptimizerOptions& options, const std::vector<double>& values) const override;
  void check_options(const OptimizerOptions& options, const char* op) const override;
  std::vector<std::string> buffer_names(const OptimizerOptions& options) const override;
};

}  // namespace sorix::optim
