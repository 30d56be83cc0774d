#pragma once
// SGD with optional momentum, dampening, weight decay and Nesterov momentum; PyTorch 1.13's
// update, per parameter p with gradient g and its group's options (see optimizer.hpp for groups,
// threading and state):
//   g = g + weight_decay * p                      (if weight_decay != 0)
//   buf = g on the first step, else buf = momentum * buf + (1 - dampening) * g   (if momentum != 0)
//   g = nesterov ? g + momentum * buf : buf       (if momentum != 0)
//   p = p - lr * g
// Buffers: "momentum_buffer" (when momentum != 0).
#include <vector>

#include "sorix/nn/optim/optimizer.hpp"

namespace sorix::optim {

struct SGDOptions : OptimizerCloneableOptions<SGDOptions> {
  SGDOptions(double lr) : lr_(lr) {}  // NOLINT: implicit, as PyTorch's
  SGDOptions& lr(double v) { lr_ = v; return *this; }
  SGDOptions& momentum(double v) { momentum_ = v; return *this; }
  SGDOptions& dampening(double v) { dampening_ = v; return *this; }
  SGDOptions& weight_decay(double v) { weight_decay_ = v; return *this; }
  SGDOptions& nesterov(bool v) { nesterov_ = v; return *this; }
  double lr() const { return lr_; }
  double momentum() const { return momentum_; }
  double dampening() const { return dampening_; }
  double weight_decay() const { return weight_decay_; }
  bool nesterov() const { return nesterov_; }
  double get_lr() const override { return lr_; }
  void set_lr(double v) override { lr_ = v; }

 private:
  friend class SGD;
  double lr_;
  double momentum_ = 0;
  double dampening_ = 0;
  double weight_decay_ = 0;
  bool nesterov_ = false;
};

class SGD : public Optimizer {
 public:
  /// Negative lr, momentum or weight_decay, or nesterov without momentum > 0 and dampening == 0
  /// (in the defaults or any group's options), throws std::invalid_argument naming the value.
  SGD(std::vector<OptimizerParamGroup> param_groups, SGDOptions defaults);
  SGD(std::vector<Tensor> params, SGDOptions defaults);
  void step() override;
  const char* name() const override { return "SGD"; }
  /// The defaults (groups without their own options copy them).
  const SGDOptions& options() const { return static_cast<const SGDOptions&>(defaults()); }

 protected:
  std::vector<HyperParam> hyper_params(const OptimizerOptions& options) const override;
  void set_hyper_params(OptimizerOptions& options, const std::vector<double>& values) const override;
  void check_options(const OptimizerOptions& options, const char* op) const override;
  std::vector<std::string> buffer_names(const OptimizerOptions& options) const override;
};

}  // namespace sorix::optim
