#pragma once
// Adam and AdamW; PyTorch 1.13's single-tensor update, per parameter p with gradient g and step
// count t (incremented first) and its group's options (see optimizer.hpp for groups, threading and state):
//   Adam:  g = g + weight_decay * p              (L2 penalty, if weight_decay != 0)
//   AdamW: p = p * (1 - lr * weight_decay)       (decoupled decay)
//   m = beta1 * m + (1 - beta1) * g
//   v = beta2 * v + (1 - beta2) * g * g
//   vmax = max(vmax, v); v_hat = amsgrad ? vmax : v
//   denom = sqrt(v_hat) / sqrt(1 - beta2^t) + eps
//   p = p + (-lr / (1 - beta1^t)) * m / denom
// Buffers: "exp_avg", "exp_avg_sq", and "max_exp_avg_sq" with amsgrad.
#include <utility>
#include <vector>

#include "sorix/nn/optim/optimizer.hpp"

namespace sorix::optim {

struct AdamOptions : OptimizerCloneableOptions<AdamOptions> {
  AdamOptions(double lr = 1e-3) : lr_(lr) {}  // NOLINT: implicit, as PyTorch's
  AdamOptions& lr(double v) { lr_ = v; return *this; }
  AdamOptions& betas(std::pair<double, double> v) { betas_ = v; return *this; }
  AdamOptions& eps(double v) { eps_ = v; return *this; }
  AdamOptions& weight_decay(double v) { weight_decay_ = v; return *this; }
  AdamOptions& amsgrad(bool v) { amsgrad_ = v; return *this; }
  double lr() const { return lr_; }
  std::pair<double, double> betas() const { return betas_; }
  double eps() const { return eps_; }
  double weight_decay() const { return weight_decay_; }
  bool amsgrad() const { return amsgrad_; }
  double get_lr() const override { return lr_; }
  void set_lr(double v) override { lr_ = v; }

 protected:
  friend class Adam;
  double lr_;
  std::pair<double, double> betas_{0.9, 0.999};
  double eps_ = 1e-8;
  double weight_decay_ = 0;
  bool amsgrad_ = false;
};

/// As AdamOptions, but weight_decay defaults to 1e-2 (PyTorch's AdamW).
struct AdamWOptions : AdamOptions {
  AdamWOptions(double lr = 1e-3) : AdamOptions(lr) { weight_decay_ = 1e-2; }  // NOLINT: implicit
  AdamWOptions& lr(double v) { AdamOptions::lr(v); return *this; }
  AdamWOptions& betas(std::pair<double, double> v) { AdamOptions::betas(v); return *this; }
  AdamWOptions& eps(double v) { AdamOptions::eps(v); return *this; }
  AdamWOptions& weight_decay(double v) { AdamOptions::weight_decay(v); return *this; }
  AdamWOptions& amsgrad(bool v) { AdamOptions::amsgrad(v); return *this; }
  using AdamOptions::lr;
  using AdamOptions::betas;
  using AdamOptions::eps;
  using AdamOptions::weight_decay;
  using AdamOptions::amsgrad;
};

class Adam : public Optimizer {
 public:
  /// lr < 0, eps < 0, betas outside [0, 1) or weight_decay < 0 (in the defaults or any group's
  /// options) throw std::invalid_argument.
  Adam(std::vector<OptimizerParamGroup> param_groups, AdamOptions defaults = {});
  Adam(std::vector<Tensor> params, AdamOptions defaults = {});
  void step() override;
  const char* name() const override { return decoupled_ ? "AdamW" : "Adam"; }
  /// The defaults (groups without their own options copy them).
  const AdamOptions& options() const { return static_cast<const AdamOptions&>(defaults()); }

 protected:
  Adam(std::vector<OptimizerParamGroup> param_groups, const AdamOptions& defaults, bool decoupled);
  std::vector<HyperParam> hyper_params(const OptimizerOptions& options) const override;
  void set_hyper_params(OptimizerOptions& options, const std::vector<double>& values) const override;
  void check_options(const OptimizerOptions& options, const char* op) const override;
  std::vector<std::string> buffer_names(const OptimizerOptions& options) const override;

 private:
  bool decoupled_ = false;
};

/// Adam with decoupled weight decay (Loshchilov & Hutter): see the formulas above.
class AdamW : public Adam {
 public:
  AdamW(std::vector<OptimizerParamGroup> param_groups, AdamWOptions defaults = {});
  AdamW(std::vector<Tensor> params, AdamWOptions defaults = {});
};

}  // namespace sorix::optim
