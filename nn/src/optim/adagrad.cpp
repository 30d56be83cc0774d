// Adagrad: one fused kernel per parameter (see adagrad.hpp for the formulas, PyTorch 1.13's
// single-tensor order), the kernel layer's (core/internal/sorix_core/kernels/optim_kernels.hpp).
#include "sorix/nn/optim/adagrad.hpp"

#include <type_traits>

#include "sorix_autograd/ops_internal.hpp"
#include "sorix_core/kernels/table.hpp"

namespace sorix::optim {
namespace {

template <class T>
void adagrad_update(T* p, const T* g, T* sum, std::size_t n, const kernels::AdagradStep& s) {
  if constexpr (std::is_same_v<T, float>) kernels::active().adagrad_f32(p, g, sum, n, s);
  else kernels::active().adagrad_f64(p, g, sum, n, s);
}

}  // namespace

Adagrad::Adagrad(std::vector<OptimizerParamGroup> param_groups, AdagradOptions defaults)
    : Optimizer(std::move(param_groups), defaults.clone()) {
  check_groups();
}

Adagrad::Adagrad(std::vector<Tensor> params, AdagradOptions defaults)
    : Adagrad(std::vector<OptimizerParamGroup>{OptimizerParamGroup(std::move(params))}, std::move(defaults)) {}

std::vector<Optimizer::HyperParam> Adagrad::hyper_params(const OptimizerOptions& options) const {
  const auto& o = static_cast<const AdagradOptions&>(options);
  // initial_accumulator_value only matters before the first step; saved so a loaded optimizer
  // fills parameters not yet stepped the same way.
  return {{"lr", o.lr_, false},
          {"lr_decay", o.lr_decay_, false},
          {"weight_decay", o.weight_decay_, false},
          {"initial_accumulator_value", o.initial_accumulator_value_, false},
          {"eps", o.eps_, false}};
}

void Adagrad::set_hyper_params(OptimizerOptions& options, const std::vector<double>& v) const {
  auto& o = static_cast<AdagradOptions&>(options);
  o.lr_ = v.at(0);
  o.lr_decay_ = v.at(1);
  o.weight_decay_ = v.at(2);
  o.initial_accumulator_value_ = v.at(3);
  o.eps_ = v.at(4);
}

void Adagrad::step() {
  NoGradGuard no_grad;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    if (!has_grad(i, "Adagrad::step")) continue;
    const AdagradOptions& o = options_of<AdagradOptions>(i);
    ParamState& st = state_[i];
    // PyTorch fills the sum at construction; filling it at the first step is the same, and keeps
    // the base's "no state before the first step" rule (and so its state dict format).
    if (st.step == 0) st.buffers = {full_like(params_[i], o.initial_accumulator_value_)};
    ++st.step;
    kernels::AdagradStep s{};
    s.weight_decay = o.weight_decay_;
    // PyTorch: clr = lr / (1 + (step - 1) * lr_decay), in Python floats.
    s.neg_clr = -(o.lr_ / (1 + static_cast<double>(st.step - 1) * o.lr_decay_));
    s.eps = o.eps_;
    Tensor& p = params_[i];
    const Tensor g = p.grad();
    detail::visit_floating(p.dtype(), "Adagrad::step", [&](auto tag) {
      using T = typename decltype(tag)::type;
      T* pp = sorix::detail::flat<T>(p);
      const T* gp = sorix::detail::flat<T>(g);
      T* sum = st.buffers[0].data_ptr<T>();
      parallel::parallel_for(static_cast<std::size_t>(p.numel()), parallel::kChunkSize, [&](std::size_t b, std::size_t e) {
        adagrad_update(pp + b, gp + b, sum + b, e - b, s);
      });
    });
    bump_version(i);
  }
}

void Adagrad::check_options(const OptimizerOptions& options, const char* op) const {
  const auto* po = dynamic_cast<const AdagradOptions*>(&options);
  check(po != nullptr, op, "a parameter group's options are not AdagradOptions");
  const AdagradOptions& o = *po;
  check(finite_nonnegative(o.lr_), op, "invalid learning rate ", o.lr_, " (expected a finite value >= 0)");
  check(finite_nonnegative(o.lr_decay_), op, "invalid lr_decay ", o.lr_decay_, " (expected a finite value >= 0)");
  check(finite_nonnegative(o.weight_decay_), op, "invalid weight_decay ", o.weight_decay_,
        " (expected a finite value >= 0)");
  check(finite_nonnegative(o.initial_accumulator_value_), op, "invalid initial_accumulator_value ",
        o.initial_accumulator_value_, " (expected a finite value >= 0)");
  check(finite_nonnegative(o.eps_), op, "invalid eps ", o.eps_, " (expected a finite value >= 0)");
}

}  // namespace sorix::optim
