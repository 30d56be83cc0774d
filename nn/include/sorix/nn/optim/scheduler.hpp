#pragma once
// Learning-rate schedulers, as PyTorch 1.13's (torch.optim.lr_scheduler), on an Optimizer's lr:
// every parameter group's, each from its own lr and base lr (as PyTorch's per-group lists). A
// scheduler keeps as many groups as the optimizer had when it was built; stepping after
// add_param_group throws std::invalid_argument (PyTorch would silently skip the new group).
//
// Epoch-based schedulers (StepLR, ExponentialLR, CosineAnnealingLR) behave as PyTorch's
// constructed with last_epoch = -1: the constructor counts epoch 0 (lr unchanged), and each
// step() advances one epoch and sets the optimizer's lr with PyTorch's recursive ("chainable")
// formula, which reads the optimizer's current lr:
//   StepLR:            lr *= gamma whenever epoch % step_size == 0 (epoch > 0)
//   ExponentialLR:     lr *= gamma (epoch > 0)
//   CosineAnnealingLR: lr = (1 + cos(pi e / T)) / (1 + cos(pi (e-1) / T)) * (lr - eta_min) + eta_min,
//                      or lr + (base_lr - eta_min) (1 - cos(pi / T)) / 2 when (e - 1 - T) % 2T == 0
// ReduceLROnPlateau: step(metric) counts epochs without improvement (relative or absolute
// threshold, mode min or max); after more than `patience` of them, lr = max(lr * factor, min_lr)
// (skipped if the change is at most eps), then `cooldown` epochs pass before counting again.
//
// base_lr (per group) is PyTorch's group["initial_lr"]: the optimizer's lr when its first scheduler was
// built (Optimizer::initial_lr), so schedulers built one after another on one optimizer (as
// SequentialLR's) share it. More schedulers (LambdaLR, MultiStepLR, LinearLR, OneCycleLR,
// SequentialLR): lr_schedules.hpp.
//
// get_last_lr() is the first group's lr the last step set, get_last_lrs() every group's.
// state_dict()/load_state_dict() save every field as a
// 0-dim tensor (int64 counters, float64 values); loading checks every entry (present, dtype,
// 0-dim) before changing anything and throws std::invalid_argument naming the offending one. The
// optimizer's lr lives in the optimizer's own state dict.
#include <cstdint>
#include <string>
#include <vector>

#include "sorix/core/state_dict.hpp"
#include "sorix/nn/optim/optimizer.hpp"

namespace sorix::optim {

class SequentialLR;

/// Shared state machinery of the schedulers.
class SchedulerBase {
 public:
  explicit SchedulerBase(Optimizer& optimizer);
  virtual ~SchedulerBase() = default;
  double get_last_lr() const { return last_lrs_.front(); }
  const std::vector<double>& get_last_lrs() const { return last_lrs_; }
  std::int64_t last_epoch() const { return last_epoch_; }
  StateDict state_dict() const;
  void load_state_dict(const StateDict& state);

 protected:
  struct Field {
    std::string name;
    double* real = nullptr;         // saved as float64
    std::int64_t* integer = nullptr;  // saved as int64
  };
  /// Every saved field (subclasses append theirs to the base's).
  virtual std::vector<Field> fields();
  friend class SequentialLR;  // saves its schedulers' fields with its own
  /// One field per group: `name` for group 0 (the single-group name), `name.<k>` for the others.
  static void add_per_group(std::vector<Field>& f, const std::string& name, std::vector<double>& values);
  /// Throws when the optimizer's group count changed since construction.
  void check_group_count(const char* op) const;
  /// last_lrs_ = every group's current lr.
  void record_lrs();

  Optimizer* optimizer_;
  std::int64_t last_epoch_ = 0;
  std::vector<double> last_lrs_;
};

/// Epoch-based schedulers: step() advances one epoch.
class LRScheduler : public SchedulerBase {
 public:
  explicit LRScheduler(Optimizer& optimizer);
  void step();
  double base_lr() const { return base_lrs_.front(); }
  const std::vector<double>& base_lrs() const { return base_lrs_; }

 protected:
  /// A group's lr for last_epoch_ (already advanced), from its current lr and base lr.
  virtual double compute_lr(double lr, double base_lr) = 0;
  /// PyTorch's _get_closed_form_lr (from base_lr and last_epoch_ alone), used when SequentialLR
  /// switches to this scheduler; schedulers without one use compute_lr().
  virtual double closed_form_lr(double lr, double base_lr) { return compute_lr(lr, base_lr); }
  /// PyTorch's constructor step to epoch 0 for schedules that change the lr there (LambdaLR,
  /// LinearLR, OneCycleLR): sets every group's lr to compute_lr(). Called by their constructors.
  void initial_step();
  /// Sets every group's lr to f(lr, base_lr), all computed and checked first (finite, >= 0) so
  /// a throw changes nothing.
  template <class F>
  void apply(F&& f) {
    std::vector<double> lrs(base_lrs_.size());
    for (std::size_t k = 0; k < lrs.size(); ++k) {
      lrs[k] = f(optimizer_->group_lr(k), base_lrs_[k]);
      check_lr(lrs[k], k);
    }
    for (std::size_t k = 0; k < lrs.size(); ++k) optimizer_->set_group_lr(k, lrs[k]);
    last_lrs_ = lrs;
  }
  void check_lr(double lr, std::size_t group) const;
  std::vector<Field> fields() override;
  friend class SequentialLR;
  std::vector<double> base_lrs_;
  std::int64_t step_count_ = 1;
};

class StepLR : public LRScheduler {
 public:
  /// step_size >= 1 (else std::invalid_argument).
  StepLR(Optimizer& optimizer, std::int64_t step_size, double gamma = 0.1);

 protected:
  double compute_lr(double lr, double base_lr) override;
  double closed_form_lr(double lr, double base_lr) override;
  std::vector<Field> fields() override;

 private:
  std::int64_t step_size_;
  double gamma_;
};

class ExponentialLR : public LRScheduler {
 public:
  ExponentialLR(Optimizer& optimizer, double gamma);

 protected:
  double compute_lr(double lr, double base_lr) override;
  double closed_form_lr(double lr, double base_lr) override;
  std::vector<Field> fields() override;

 private:
  double gamma_;
};

class CosineAnnealingLR : public LRScheduler {
 public:
  /// T_max >= 1 (else std::invalid_argument).
  CosineAnnealingLR(Optimizer& optimizer, std::int64_t T_max, double eta_min = 0.0);

 protected:
  double compute_lr(double lr, double base_lr) override;
  double closed_form_lr(double lr, double base_lr) override;
  std::vector<Field> fields() override;

 private:
  std::int64_t T_max_;
  double eta_min_;
};

enum class PlateauMode { Min, Max };
enum class ThresholdMode { Rel, Abs };

class ReduceLROnPlateau : public SchedulerBase {
 public:
  /// factor must be < 1 (and >= 0), patience and cooldown >= 0, threshold, min_lr, eps >= 0
  /// (else std::invalid_argument naming the value).
  explicit ReduceLROnPlateau(Optimizer& optimizer, PlateauMode mode = PlateauMode::Min, double factor = 0.1,
                             std::int64_t patience = 10, double threshold = 1e-4,
                             ThresholdMode threshold_mode = ThresholdMode::Rel, std::int64_t cooldown = 0,
                             double min_lr = 0.0, double eps = 1e-8);
  /// One epoch with this value of the monitored metric (a NaN counts as no improvement).
  void step(double metric);
  double best() const { return best_; }
  std::int64_t num_bad_epochs() const { return num_bad_epochs_; }

 protected:
  std::vector<Field> fields() override;

 private:
  bool is_better(double a) const;
  std::int64_t mode_, threshold_mode_;  // saved as 0/1 so a load can check them
  double factor_;
  std::int64_t patience_;
  double threshold_;
  std::int64_t cooldown_;
  double min_lr_, eps_;
  double best_;
  std::int64_t num_bad_epochs_ = 0;
  std::int64_t cooldown_counter_ = 0;
};

}  // namespace sorix::optim
