// Learning-rate schedulers: PyTorch 1.13's formulas, evaluated in the same order (so the lr
// sequences agree bit for bit in float64 in practice, and to rounding always).
#include "sorix/nn/optim/scheduler.hpp"

#include <cmath>
#include <limits>
#include <numbers>

#include "sorix_autograd/ops_internal.hpp"

namespace sorix::optim {

// ---- state -------------------------------------------------------------------------------------
SchedulerBase::SchedulerBase(Optimizer& optimizer) : optimizer_(&optimizer) { record_lrs(); }

void SchedulerBase::record_lrs() {
  last_lrs_.resize(optimizer_->param_groups().size());
  for (std::size_t k = 0; k < last_lrs_.size(); ++k) last_lrs_[k] = optimizer_->group_lr(k);
}

void SchedulerBase::check_group_count(const char* op) const {
  check(optimizer_->param_groups().size() == last_lrs_.size(), op, "the optimizer has ",
        optimizer_->param_groups().size(), " parameter groups but had ", last_lrs_.size(),
        " when the scheduler was built; build the scheduler after add_param_group");
}

void SchedulerBase::add_per_group(std::vector<Field>& f, const std::string& name, std::vector<double>& values) {
  for (std::size_t k = 0; k < values.size(); ++k) {
    f.push_back({k == 0 ? name : name + "." + std::to_string(k), &values[k], nullptr});
  }
}

std::vector<SchedulerBase::Field> SchedulerBase::fields() {
  std::vector<Field> f{{"last_epoch", nullptr, &last_epoch_}};
  add_per_group(f, "last_lr", last_lrs_);
  return f;
}

StateDict SchedulerBase::state_dict() const {
  StateDict sd;
  for (const Field& f : const_cast<SchedulerBase*>(this)->fields()) {
    sd.insert(f.name, f.real ? scalar_tensor(*f.real, Dtype::Float64)
                             : scalar_tensor(static_cast<double>(*f.integer), Dtype::Int64));
  }
  return sd;
}

namespace {

// The values a saved field may hold, by its name (the rules of the constructors): a loaded state
// with a NaN gamma, a factor of 5 or a step_size of 0 is refused like those arguments are.
struct FieldRange {
  double lo, hi;
  bool lo_open, hi_open;
  const char* text;
};

FieldRange field_range(std::string name, bool real) {
  // "schedulers.<i>.gamma" (SequentialLR) and "last_lr.<k>" (group k) follow their base name's rule.
  while (name.rfind("schedulers.", 0) == 0) {
    const auto dot = name.find('.', 11);
    if (dot == std::string::npos) break;
    name = name.substr(dot + 1);
  }
  if (const auto dot = name.rfind('.'); dot != std::string::npos) name = name.substr(0, dot);
  constexpr double inf = std::numeric_limits<double>::infinity();
  constexpr double big = std::numeric_limits<double>::max();
  if (name == "best") return {-inf, inf, false, false, "a number (not NaN)"};
  if (name == "factor") return {0, 1, false, true, "in [0, 1)"};
  if (name == "start_factor") return {0, 1, true, false, "in (0, 1]"};
  if (name == "end_factor" || name == "pct_start") return {0, 1, false, false, "in [0, 1]"};
  if (name == "mode" || name == "threshold_mode" || name == "three_phase" || name == "linear") {
    return {0, 1, false, false, "0 or 1"};
  }
  if (name == "step_size" || name == "T_max" || name == "total_iters" || name == "total_steps") {
    return {1, big, false, false, ">= 1"};
  }
  return {0, big, false, false, real ? "finite and >= 0" : ">= 0"};
}

bool in_range(double v, const FieldRange& r) {
  return (r.lo_open ? v > r.lo : v >= r.lo) && (r.hi_open ? v < r.hi : v <= r.hi);
}

}  // namespace

void SchedulerBase::load_state_dict(const StateDict& sd) {
  const char* op = "LRScheduler::load_state_dict";
  const std::vector<Field> fs = fields();
  for (const Field& f : fs) {
    const Tensor* t = sd.find(f.name);
    check(t != nullptr, op, "entry '", f.name, "' is missing");
    const Dtype want = f.real ? Dtype::Float64 : Dtype::Int64;
    check(t->defined() && t->dim() == 0 && t->dtype() == want, op, "entry '", f.name, "' must be a ",
          dtype_name(want), " 0-dim tensor");
  }
  check(sd.size() == fs.size(), op, "the state has ", sd.size(), " entries; expected ", fs.size());
  for (const Field& f : fs) {
    const Tensor& t = sd.at(f.name);
    const double v = f.real ? t.item<double>() : static_cast<double>(t.item<std::int64_t>());
    const FieldRange r = field_range(f.name, f.real != nullptr);
    check(in_range(v, r), op, "entry '", f.name, "' is ", v, "; expected ", r.text, " (nothing was changed)");
  }
  for (const Field& f : fs) {
    const Tensor& t = sd.at(f.name);
    if (f.real) *f.real = t.item<double>();
    else *f.integer = t.item<std::int64_t>();
  }
}

// ---- epoch-based -------------------------------------------------------------------------------
LRScheduler::LRScheduler(Optimizer& optimizer) : SchedulerBase(optimizer) {
  // PyTorch: group.setdefault('initial_lr', group['lr']); base_lrs are the initial lrs.
  for (std::size_t k = 0; k < optimizer.param_groups().size(); ++k) {
    if (!optimizer.initial_lr(k).has_value()) optimizer.set_initial_lr(k, optimizer.group_lr(k));
    base_lrs_.push_back(*optimizer.initial_lr(k));
  }
  // PyTorch's constructor steps once to epoch 0, where these schedules keep the lr (those that
  // do not call initial_step()).
  last_epoch_ = 0;
}

void LRScheduler::check_lr(double lr, std::size_t group) const {
  check(std::isfinite(lr) && lr >= 0, "LRScheduler::step", "the schedule gives parameter group ", group,
        " the learning rate ", lr, " at epoch ", last_epoch_, " (expected a finite value >= 0)");
}

void LRScheduler::initial_step() {
  apply([&](double lr, double base) { return compute_lr(lr, base); });
}

void LRScheduler::step() {
  check_group_count("LRScheduler::step");
  ++step_count_;
  ++last_epoch_;
  try {
    apply([&](double lr, double base) { return compute_lr(lr, base); });
  } catch (...) {  // a step past a schedule's end (OneCycleLR) changes nothing
    --step_count_;
    --last_epoch_;
    throw;
  }
}

std::vector<SchedulerBase::Field> LRScheduler::fields() {
  auto f = SchedulerBase::fields();
  add_per_group(f, "base_lr", base_lrs_);
  f.push_back({"step_count", nullptr, &step_count_});
  return f;
}

StepLR::StepLR(Optimizer& optimizer, std::int64_t step_size, double gamma)
    : LRScheduler(optimizer), step_size_(step_size), gamma_(gamma) {
  check(step_size >= 1, "StepLR", "step_size must be >= 1, got ", step_size);
  check(std::isfinite(gamma) && gamma >= 0, "StepLR", "gamma must be finite and >= 0, got ", gamma);
}

double StepLR::compute_lr(double lr, double) {
  if (last_epoch_ == 0 || last_epoch_ % step_size_ != 0) return lr;
  return lr * gamma_;
}

double StepLR::closed_form_lr(double, double base_lr) {
  return base_lr * std::pow(gamma_, static_cast<double>(last_epoch_ / step_size_));
}

std::vector<SchedulerBase::Field> StepLR::fields() {
  auto f = LRScheduler::fields();
  f.push_back({"step_size", nullptr, &step_size_});
  f.push_back({"gamma", &gamma_, nullptr});
  return f;
}

ExponentialLR::ExponentialLR(Optimizer& optimizer, double gamma) : LRScheduler(optimizer), gamma_(gamma) {
  check(std::isfinite(gamma) && gamma >= 0, "ExponentialLR", "gamma must be finite and >= 0, got ", gamma);
}

double ExponentialLR::compute_lr(double lr, double) {
  if (last_epoch_ == 0) return lr;
  return lr * gamma_;
}

double ExponentialLR::closed_form_lr(double, double base_lr) { return base_lr * std::pow(gamma_, static_cast<double>(last_epoch_)); }

std::vector<SchedulerBase::Field> ExponentialLR::fields() {
  auto f = LRScheduler::fields();
  f.push_back({"gamma", &gamma_, nullptr});
  return f;
}

CosineAnnealingLR::CosineAnnealingLR(Optimizer& optimizer, std::int64_t T_max, double eta_min)
    : LRScheduler(optimizer), T_max_(T_max), eta_min_(eta_min) {
  check(T_max >= 1, "CosineAnnealingLR", "T_max must be >= 1, got ", T_max);
  check(std::isfinite(eta_min) && eta_min >= 0, "CosineAnnealingLR", "eta_min must be finite and >= 0, got ", eta_min);
}

double CosineAnnealingLR::compute_lr(double lr, double base_lr) {
  constexpr double pi = std::numbers::pi;
  const double e = static_cast<double>(last_epoch_), T = static_cast<double>(T_max_);
  if (last_epoch_ == 0) return lr;
  if ((last_epoch_ - 1 - T_max_) % (2 * T_max_) == 0) {
    return lr + (base_lr - eta_min_) * (1 - std::cos(pi / T)) / 2;
  }
  return (1 + std::cos(pi * e / T)) / (1 + std::cos(pi * (e - 1) / T)) * (lr - eta_min_) + eta_min_;
}

double CosineAnnealingLR::closed_form_lr(double, double base_lr) {
  const double e = static_cast<double>(last_epoch_), T = static_cast<double>(T_max_);
  return eta_min_ + (base_lr - eta_min_) * (1 + std::cos(std::numbers::pi * e / T)) / 2;
}

std::vector<SchedulerBase::Field> CosineAnnealingLR::fields() {
  auto f = LRScheduler::fields();
  f.push_back({"T_max", nullptr, &T_max_});
  f.push_back({"eta_min", &eta_min_, nullptr});
  return f;
}

// ---- plateau -----------------------------------------------------------------------------------
ReduceLROnPlateau::ReduceLROnPlateau(Optimizer& optimizer, PlateauMode mode, double factor, std::int64_t patience,
                                     double threshold, ThresholdMode threshold_mode, std::int64_t cooldown,
                                     double min_lr, double eps)
    : SchedulerBase(optimizer),
      mode_(mode == PlateauMode::Max ? 1 : 0),
      threshold_mode_(threshold_mode == ThresholdMode::Abs ? 1 : 0),
      factor_(factor),
      patience_(patience),
      threshold_(threshold),
      cooldown_(cooldown),
      min_lr_(min_lr),
      eps_(eps) {
  const char* op = "ReduceLROnPlateau";
  check(factor >= 0 && factor < 1, op, "factor must be in [0, 1), got ", factor);
  check(patience >= 0, op, "patience must be >= 0, got ", patience);
  check(cooldown >= 0, op, "cooldown must be >= 0, got ", cooldown);
  check(threshold >= 0, op, "threshold must be >= 0, got ", threshold);
  check(min_lr >= 0, op, "min_lr must be >= 0, got ", min_lr);
  check(eps >= 0, op, "eps must be >= 0, got ", eps);
  best_ = mode_ == 0 ? std::numeric_limits<double>::infinity() : -std::numeric_limits<double>::infinity();
}

bool ReduceLROnPlateau::is_better(double a) const {
  const bool rel = threshold_mode_ == 0;
  if (mode_ == 0) return rel ? a < best_ * (1.0 - threshold_) : a < best_ - threshold_;
  return rel ? a > best_ * (threshold_ + 1.0) : a > best_ + threshold_;
}

void ReduceLROnPlateau::step(double metric) {
  check_group_count("ReduceLROnPlateau::step");
  ++last_epoch_;
  if (is_better(metric)) {
    best_ = metric;
    num_bad_epochs_ = 0;
  } else {
    ++num_bad_epochs_;
  }
  if (cooldown_counter_ > 0) {
    --cooldown_counter_;
    num_bad_epochs_ = 0;  // bad epochs in cooldown do not count
  }
  if (num_bad_epochs_ > patience_) {
    for (std::size_t k = 0; k < last_lrs_.size(); ++k) {
      const double old_lr = optimizer_->group_lr(k);
      const double new_lr = std::max(old_lr * factor_, min_lr_);
      if (old_lr - new_lr > eps_) optimizer_->set_group_lr(k, new_lr);
    }
    cooldown_counter_ = cooldown_;
    num_bad_epochs_ = 0;
  }
  record_lrs();
}

std::vector<SchedulerBase::Field> ReduceLROnPlateau::fields() {
  auto f = SchedulerBase::fields();
  f.push_back({"mode", nullptr, &mode_});
  f.push_back({"threshold_mode", nullptr, &threshold_mode_});
  f.push_back({"factor", &factor_, nullptr});
  f.push_back({"patience", nullptr, &patience_});
  f.push_back({"threshold", &threshold_, nullptr});
  f.push_back({"cooldown", nullptr, &cooldown_});
  f.push_back({"min_lr", &min_lr_, nullptr});
  f.push_back({"eps", &eps_, nullptr});
  f.push_back({"best", &best_, nullptr});
  f.push_back({"num_bad_epochs", nullptr, &num_bad_epochs_});
  f.push_back({"cooldown_counter", nullptr, &cooldown_counter_});
  return f;
}

}  // namespace sorix::optim
