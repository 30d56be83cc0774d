#pragma once
// SGD with optional momentum, dampening, weight decay and Nesterov momentum; PyTorch 1.13's
// update, per parameter p with gradient g (see optimizer.hpp for threading and state):
//   g = g + weight_decay * p                      (if weight_decay != 0)
//   buf = g on the first step, else buf = momentum * buf + (1 - dampening) * g   (if momentum != 0)
//   g = nesterov ? g + momentum * buf : buf       (if momentum != 0)
//   p = p - lr * g
// Buffers: "momentum_buffer" (when momentum != 0).
#include <vector>

#include "sorix/nn/optim/optimizer.hpp"

namespace sorix::optim {

struct SGDOptions {
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
  /// Negative lr, momentum or weight_decay, or nesterov without momentum > 0 and dampening == 0,
  /// throws std::invalid_argument naming the value.
  SGD(std::vector<Tensor> params, SGDOptions options);
  void step() override;
  double lr() const override { return options_.lr_; }
  void check_options(const char* op) const override;
  void set_lr(double lr) override { options_.lr_ = checked_lr(lr, "SGD::set_lr"); }
  const SGDOptions& options() const { return options_; }

 protected:
  std::vector<HyperParam> hyper_params() override;
  std::vector<std::string> buffer_names() const override;

 private:
  SGDOptions options_;
  double nesterov_flag_ = 0;
};

}  // namespace sorix::optim
