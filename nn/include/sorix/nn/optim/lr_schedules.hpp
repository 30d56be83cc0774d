#pragma once
// More learning-rate schedulers, as PyTorch 1.13's torch.optim.lr_scheduler (constructed with
// last_epoch = -1; scheduler.hpp has the base, state and conventions). Formulas in PyTorch's
// order, in double, so the lr sequences equal PyTorch's:
//   LambdaLR:    lr = base_lr * lambda(epoch), epoch 0 included (the constructor sets it).
//   MultiStepLR: lr *= gamma at each milestone (strictly increasing epochs >= 1).
//   LinearLR:    epoch 0: lr *= start_factor; epochs 1..total_iters:
//                lr *= 1 + (end - start) / (total_iters * start + (epoch - 1) * (end - start)).
//   OneCycleLR:  lr from max_lr / div_factor up to max_lr over pct_start of total_steps, then down
//                to that / final_div_factor (three_phase: up, back down to the initial lr over the
//                same number of steps, then down to the minimum), each phase annealed by
//                cos (end + (start - end) / 2 * (cos(pi pct) + 1)) or linearly
//                ((end - start) * pct + start). The lr only: PyTorch's cycle_momentum is not
//                supported (as cycle_momentum=False).
//   SequentialLR: runs schedulers[0] until milestones[0], then schedulers[1] (started at its
//                closed-form epoch-0 lr), ... (warm-up then decay).
// Invalid options throw std::invalid_argument naming the scheduler and the value.
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "sorix/nn/optim/scheduler.hpp"

namespace sorix::optim {

class LambdaLR : public LRScheduler {
 public:
  /// lr_lambda(epoch) gives the factor of base_lr; it must be callable (else invalid_argument).
  LambdaLR(Optimizer& optimizer, std::function<double(std::int64_t)> lr_lambda);

 protected:
  double compute_lr(double lr, double base_lr) override;

 private:
  std::function<double(std::int64_t)> lr_lambda_;
};

class MultiStepLR : public LRScheduler {
 public:
  /// milestones strictly increasing and >= 1; gamma finite and >= 0.
  MultiStepLR(Optimizer& optimizer, std::vector<std::int64_t> milestones, double gamma = 0.1);

 protected:
  double compute_lr(double lr, double base_lr) override;
  double closed_form_lr(double lr, double base_lr) override;
  std::vector<Field> fields() override;

 private:
  std::int64_t milestones_passed(std::int64_t epoch) const;
  std::vector<std::int64_t> milestones_;
  double gamma_;
};

class LinearLR : public LRScheduler {
 public:
  /// 0 < start_factor <= 1, 0 <= end_factor <= 1, total_iters >= 1.
  LinearLR(Optimizer& optimizer, double start_factor = 1.0 / 3, double end_factor = 1.0, std::int64_t total_iters = 5);

 protected:
  double compute_lr(double lr, double base_lr) override;
  double closed_form_lr(double lr, double base_lr) override;
  std::vector<Field> fields() override;

 private:
  double start_factor_, end_factor_;
  std::int64_t total_iters_;
};

enum class AnnealStrategy { Cos, Linear };

struct OneCycleLROptions {
  OneCycleLROptions(double max_lr, std::int64_t total_steps) : max_lr_(max_lr), total_steps_(total_steps) {}
  OneCycleLROptions& max_lr(double v) { max_lr_ = v; return *this; }
  OneCycleLROptions& total_steps(std::int64_t v) { total_steps_ = v; return *this; }
  OneCycleLROptions& pct_start(double v) { pct_start_ = v; return *this; }
  OneCycleLROptions& anneal_strategy(AnnealStrategy v) { anneal_strategy_ = v; return *this; }
  OneCycleLROptions& div_factor(double v) { div_factor_ = v; return *this; }
  OneCycleLROptions& final_div_factor(double v) { final_div_factor_ = v; return *this; }
  OneCycleLROptions& three_phase(bool v) { three_phase_ = v; return *this; }
  double max_lr() const { return max_lr_; }
  std::int64_t total_steps() const { return total_steps_; }
  double pct_start() const { return pct_start_; }
  AnnealStrategy anneal_strategy() const { return anneal_strategy_; }
  double div_factor() const { return div_factor_; }
  double final_div_factor() const { return final_div_factor_; }
  bool three_phase() const { return three_phase_; }

 private:
  double max_lr_;
  std::int64_t total_steps_;
  double pct_start_ = 0.3;
  AnnealStrategy anneal_strategy_ = AnnealStrategy::Cos;
  double div_factor_ = 25.0;
  double final_div_factor_ = 1e4;
  bool three_phase_ = false;
};

class OneCycleLR : public LRScheduler {
 public:
  /// max_lr finite and >= 0, total_steps >= 1, pct_start in [0, 1], div_factor and
  /// final_div_factor finite and > 0. Sets every group's lr (and initial_lr) to max_lr / div_factor
  /// (one max_lr for every group, as PyTorch's with a single max_lr).
  OneCycleLR(Optimizer& optimizer, const OneCycleLROptions& options);
  // step(): steps 1..total_steps are allowed (as PyTorch's; step total_steps extrapolates past
  // the final lr, which linear annealing can take below 0, and the schedulers refuse that);
  // one more throws std::invalid_argument naming the step and total_steps, and changes nothing.

 protected:
  double compute_lr(double lr, double base_lr) override;
  std::vector<Field> fields() override;

 private:
  struct Phase {
    double end_step, start_lr, end_lr;
  };
  std::vector<Phase> phases() const;
  double initial_lr_, max_lr_, min_lr_;
  std::int64_t total_steps_, three_phase_, linear_;
  double pct_start_;
};

class SequentialLR : public SchedulerBase {
 public:
  /// milestones.size() == schedulers.size() - 1, strictly increasing, >= 1; every scheduler
  /// built on `optimizer` (and kept alive here). Resets every group's lr to its initial_lr and
  /// restarts schedulers[0] at epoch 0, as PyTorch's. The state dict holds every scheduler's state
  /// ("schedulers.<i>.<field>").
  SequentialLR(Optimizer& optimizer, std::vector<std::shared_ptr<LRScheduler>> schedulers,
               std::vector<std::int64_t> milestones);
  void step();

 protected:
  std::vector<Field> fields() override;

 private:
  std::vector<std::shared_ptr<LRScheduler>> schedulers_;
  std::vector<std::int64_t> milestones_;
};

}  // namespace sorix::optim
