#pragma once
// RMSprop; PyTorch 1.13's single-tensor update, per parameter p with gradient g (see
// optimizer.hpp for threading and state):
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

struct RMSpropOptions {
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
  /// lr, alpha, eps, weight_decay or momentum < 0 throw std::invalid_argument naming the value.
  RMSprop(std::vector<Tensor> params, RMSpropOptions options = {});
  void step() override;
  double lr() const override { return options_.lr_; }
  void check_options(const char* op) const override;
  void set_lr(double lr) override { options_.lr_ = checked_lr(lr, "RMSprop::set_lr"); }
  const RMSpropOptions& options() const { return options_; }

 protected:
  std::vector<HyperParam> hyper_params() override;
  std::vector<std::string> buffer_names() const override;

 private:
  RMSpropOptions options_;
  double centered_flag_ = 0;
};

}  // namespace sorix::optim
