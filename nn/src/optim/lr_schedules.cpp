// LambdaLR, MultiStepLR, LinearLR, OneCycleLR and SequentialLR: PyTorch 1.13's formulas in its
// evaluation order (Python floats are doubles, and cos is the same libm's), so the lr sequences
// agree bit for bit.
#include "sorix/nn/optim/lr_schedules.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "sorix_autograd/ops_internal.hpp"

namespace sorix::optim {
namespace {

// Milestones must be strictly increasing epochs >= 1 (a milestone at 0 would never fire).
void check_milestones(const std::vector<std::int64_t>& m, const char* op) {
  for (std::size_t i = 0; i < m.size(); ++i) {
    check(m[i] >= 1, op, "milestones must be >= 1, got ", m[i], " in ", m);
    check(i == 0 || m[i] > m[i - 1], op, "milestones must be strictly increasing, got ", m);
  }
}

}  // namespace

// ---- LambdaLR -----------------------------------------------------------------------------------
LambdaLR::LambdaLR(Optimizer& optimizer, std::function<double(std::int64_t)> lr_lambda)
    : LRScheduler(optimizer), lr_lambda_(std::move(lr_lambda)) {
  check(static_cast<bool>(lr_lambda_), "LambdaLR", "lr_lambda is an empty function");
  initial_step();
}

double LambdaLR::compute_lr(double, double base_lr) { return base_lr * lr_lambda_(last_epoch_); }

// ---- MultiStepLR --------------------------------------------------------------------------------
MultiStepLR::MultiStepLR(Optimizer& optimizer, std::vector<std::int64_t> milestones, double gamma)
    : LRScheduler(optimizer), milestones_(std::move(milestones)), gamma_(gamma) {
  check_milestones(milestones_, "MultiStepLR");
  check(std::isfinite(gamma) && gamma >= 0, "MultiStepLR", "gamma must be finite and >= 0, got ", gamma);
}

std::int64_t MultiStepLR::milestones_passed(std::int64_t epoch) const {
  return std::upper_bound(milestones_.begin(), milestones_.end(), epoch) - milestones_.begin();
}

double MultiStepLR::compute_lr(double lr, double) {
  // PyTorch: lr * gamma ** count with a count of 1 (milestones are distinct here): lr * gamma.
  return std::binary_search(milestones_.begin(), milestones_.end(), last_epoch_) ? lr * gamma_ : lr;
}

double MultiStepLR::closed_form_lr(double, double base_lr) {
  return base_lr * std::pow(gamma_, static_cast<double>(milestones_passed(last_epoch_)));
}

std::vector<SchedulerBase::Field> MultiStepLR::fields() {
  auto f = LRScheduler::fields();
  f.push_back({"gamma", &gamma_, nullptr});
  // The milestones are construction arguments (a vector); they are not saved, as PyTorch's
  // Counter is saved but must equal the constructor's in practice.
  return f;
}

// ---- LinearLR -----------------------------------------------------------------------------------
LinearLR::LinearLR(Optimizer& optimizer, double start_factor, double end_factor, std::int64_t total_iters)
    : LRScheduler(optimizer), start_factor_(start_factor), end_factor_(end_factor), total_iters_(total_iters) {
  const char* op = "LinearLR";
  // start_factor 0 would divide by zero at epoch 1 (PyTorch 1.13 raises ZeroDivisionError there).
  check(start_factor > 0 && start_factor <= 1, op, "start_factor must be in (0, 1], got ", start_factor);
  check(end_factor >= 0 && end_factor <= 1, op, "end_factor must be in [0, 1], got ", end_factor);
  check(total_iters >= 1, op, "total_iters must be >= 1, got ", total_iters);
  initial_step();
}

double LinearLR::compute_lr(double lr, double) {
  if (last_epoch_ == 0) return lr * start_factor_;
  if (last_epoch_ > total_iters_) return lr;
  const double span = end_factor_ - start_factor_;
  return lr * (1. + span / (static_cast<double>(total_iters_) * start_factor_ +
                            static_cast<double>(last_epoch_ - 1) * span));
}

double LinearLR::closed_form_lr(double, double base_lr) {
  const double done = static_cast<double>(std::min(total_iters_, last_epoch_));
  return base_lr * (start_factor_ + (end_factor_ - start_factor_) * done / static_cast<double>(total_iters_));
}

std::vector<SchedulerBase::Field> LinearLR::fields() {
  auto f = LRScheduler::fields();
  f.push_back({"start_factor", &start_factor_, nullptr});
  f.push_back({"end_factor", &end_factor_, nullptr});
  f.push_back({"total_iters", nullptr, &total_iters_});
  return f;
}

// ---- OneCycleLR ---------------------------------------------------------------------------------
OneCycleLR::OneCycleLR(Optimizer& optimizer, const OneCycleLROptions& o)
    : LRScheduler(optimizer),
      total_steps_(o.total_steps()),
      three_phase_(o.three_phase() ? 1 : 0),
      linear_(o.anneal_strategy() == AnnealStrategy::Linear ? 1 : 0),
      pct_start_(o.pct_start()) {
  const char* op = "OneCycleLR";
  check(o.total_steps() >= 1, op, "total_steps must be >= 1, got ", o.total_steps());
  check(o.pct_start() >= 0 && o.pct_start() <= 1, op, "pct_start must be in [0, 1], got ", o.pct_start());
  check(std::isfinite(o.max_lr()) && o.max_lr() >= 0, op, "max_lr must be finite and >= 0, got ", o.max_lr());
  check(std::isfinite(o.div_factor()) && o.div_factor() > 0, op, "div_factor must be finite and > 0, got ",
        o.div_factor());
  check(std::isfinite(o.final_div_factor()) && o.final_div_factor() > 0, op,
        "final_div_factor must be finite and > 0, got ", o.final_div_factor());
  max_lr_ = o.max_lr();
  initial_lr_ = max_lr_ / o.div_factor();
  min_lr_ = initial_lr_ / o.final_div_factor();
  // PyTorch sets group['initial_lr'] itself (not setdefault), so it is the base lr from here on.
  for (std::size_t k = 0; k < base_lrs_.size(); ++k) {
    optimizer.set_initial_lr(k, initial_lr_);
    base_lrs_[k] = initial_lr_;
  }
  initial_step();
}

std::vector<OneCycleLR::Phase> OneCycleLR::phases() const {
  const double total = static_cast<double>(total_steps_);
  if (three_phase_ != 0) {
    return {{pct_start_ * total - 1, initial_lr_, max_lr_},
            {2 * pct_start_ * total - 2, max_lr_, initial_lr_},
            {total - 1, initial_lr_, min_lr_}};
  }
  return {{pct_start_ * total - 1, initial_lr_, max_lr_}, {total - 1, max_lr_, min_lr_}};
}

double OneCycleLR::compute_lr(double, double) {
  const char* op = "OneCycleLR";
  check(last_epoch_ <= total_steps_, op, "step ", last_epoch_, " is past the end of the schedule (total_steps ",
        total_steps_, ")");
  const std::vector<Phase> ph = phases();
  const double step = static_cast<double>(last_epoch_);
  double start_step = 0;
  for (std::size_t i = 0; i < ph.size(); ++i) {
    if (step <= ph[i].end_step || i + 1 == ph.size()) {
      // PyTorch divides by zero here (ZeroDivisionError) when a phase is empty.
      check(ph[i].end_step != start_step, op, "phase ", i, " of the schedule is empty at step ", last_epoch_,
            " (pct_start ", pct_start_, ", total_steps ", total_steps_, ")");
      const double pct = (step - start_step) / (ph[i].end_step - start_step);
      const double start = ph[i].start_lr, end = ph[i].end_lr;
      if (linear_ != 0) return (end - start) * pct + start;
      const double cos_out = std::cos(std::numbers::pi * pct) + 1;
      return end + (start - end) / 2.0 * cos_out;
    }
    start_step = ph[i].end_step;
  }
  return min_lr_;  // not reached: the last phase always matches
}

std::vector<SchedulerBase::Field> OneCycleLR::fields() {
  auto f = LRScheduler::fields();
  f.push_back({"initial_lr", &initial_lr_, nullptr});
  f.push_back({"max_lr", &max_lr_, nullptr});
  f.push_back({"min_lr", &min_lr_, nullptr});
  f.push_back({"total_steps", nullptr, &total_steps_});
  f.push_back({"three_phase", nullptr, &three_phase_});
  f.push_back({"linear", nullptr, &linear_});
  f.push_back({"pct_start", &pct_start_, nullptr});
  return f;
}

// ---- SequentialLR -------------------------------------------------------------------------------
SequentialLR::SequentialLR(Optimizer& optimizer, std::vector<std::shared_ptr<LRScheduler>> schedulers,
                           std::vector<std::int64_t> milestones)
    : SchedulerBase(optimizer), schedulers_(std::move(schedulers)), milestones_(std::move(milestones)) {
  const char* op = "SequentialLR";
  check(!schedulers_.empty(), op, "needs at least one scheduler");
  for (std::size_t i = 0; i < schedulers_.size(); ++i) {
    check(schedulers_[i] != nullptr, op, "scheduler ", i, " is null");
    check(schedulers_[i]->optimizer_ == &optimizer, op, "scheduler ", i, " belongs to another optimizer");
  }
  check(milestones_.size() + 1 == schedulers_.size(), op, "expects one milestone fewer than schedulers, got ",
        schedulers_.size(), " schedulers and ", milestones_.size(), " milestones");
  check_milestones(milestones_, op);
  // As PyTorch: back to the initial lr, undo every scheduler's constructor step, then run the
  // first one's epoch-0 step again.
  for (std::size_t k = 0; k < optimizer.param_groups().size(); ++k) {
    check(optimizer.initial_lr(k).has_value(), op, "parameter group ", k, " has no initial lr");
    optimizer.set_group_lr(k, *optimizer.initial_lr(k));
  }
  for (auto& s : schedulers_) --s->last_epoch_;
  LRScheduler& first = *schedulers_.front();
  first.step_count_ = 0;
  first.step();
  last_epoch_ = 0;
  last_lrs_ = first.get_last_lrs();
}

void SequentialLR::step() {
  check_group_count("SequentialLR::step");
  ++last_epoch_;
  const std::size_t idx = static_cast<std::size_t>(
      std::upper_bound(milestones_.begin(), milestones_.end(), last_epoch_) - milestones_.begin());
  LRScheduler& s = *schedulers_[idx];
  if (idx > 0 && milestones_[idx - 1] == last_epoch_) {
    // PyTorch's scheduler.step(0): epoch 0 by the closed form (from the base lr).
    ++s.step_count_;
    s.last_epoch_ = 0;
    s.apply([&](double lr, double base) { return s.closed_form_lr(lr, base); });
  } else {
    s.step();
  }
  last_lrs_ = s.get_last_lrs();
}

std::vector<SchedulerBase::Field> SequentialLR::fields() {
  auto f = SchedulerBase::fields();
  for (std::size_t i = 0; i < schedulers_.size(); ++i) {
    for (Field sub : schedulers_[i]->fields()) {
      sub.name = "schedulers." + std::to_string(i) + "." + sub.name;
      f.push_back(sub);
    }
  }
  return f;
}

}  // namespace sorix::optim
