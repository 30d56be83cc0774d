// Adagrad: one fused kernel per parameter (see adagrad.hpp for the formulas, PyTorch 1.13's
// single-tensor order), the kernel layer's (core/src/kernels/optim_kernels.hpp).
#include "sorix/nn/optim/adagrad.hpp"

#include <type_traits>

#include "autograd/src/ops_internal.hpp"
#include "core/src/kernels/table.hpp"

namespace sorix::optim {
namespace {

template <class T>
void adagrad_update(T* p, const T* g, T* sum, std::size_t n, const kernels::AdagradStep& s) {
  if constexpr (std::is_same_v<T, float>) kernels::active().adagrad_f32(p, g, sum, n, s);
  else kernels::active().adagrad_f64(p, g, sum, n, s);
}

}  // namespace

Adagrad::Adagrad(std::vector<Tensor> params, AdagradOptions options)
    : Optimizer(std::move(params)), options_(options) {
  check_options("Adagrad");
}

std::vector<Optimizer::HyperParam> Adagrad::hyper_params() {
  // initial_accumulator_value only matters before the first step; saved so a loaded optimizer
  // fills parameters not yet stepped the same way.
  return {{"lr", &options_.lr_, false},
          {"lr_decay", &options_.lr_decay_, false},
          {"weight_decay", &options_.weight_decay_, false},
          {"initial_accumulator_value", &options_.initial_accumulator_value_, false},
          {"eps", &options_.eps_, false}};
}

void Adagrad::step() {
  NoGradGuard no_grad;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    if (!has_grad(i, "Adagrad::step")) continue;
    ParamState& st = state_[i];
    // PyTorch fills the sum at construction; filling it at the first step is the same, and keeps
    // the base's "no state before the first step" rule (and so its state dict format).
    if (st.step == 0) st.buffers = {full_like(params_[i], options_.initial_accumulator_value_)};
    ++st.step;
    kernels::AdagradStep s{};
    s.weight_decay = options_.weight_decay_;
    // PyTorch: clr = lr / (1 + (step - 1) * lr_decay), in Python floats.
    s.neg_clr = -(options_.lr_ / (1 + static_cast<double>(st.step - 1) * options_.lr_decay_));
    s.eps = options_.eps_;
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

void Adagrad::check_options(const char* op) const {
  check(finite_nonnegative(options_.lr_), op, "invalid learning rate ", options_.lr_, " (expected a finite value >= 0)");
  check(finite_nonnegative(options_.lr_decay_), op, "invalid lr_decay ", options_.lr_decay_, " (expected a finite value >= 0)");
  check(finite_nonnegative(options_.weight_decay_), op, "invalid weight_decay ", options_.weight_decay_,
        " (expected a finite value >= 0)");
  check(finite_nonnegative(options_.initial_accumulator_value_), op, "invalid initial_accumulator_value ",
        options_.initial_accumulator_value_, " (expected a finite value >= 0)");
  check(finite_nonnegative(options_.eps_), op, "invalid eps ", options_.eps_, " (expected a finite value >= 0)");
}

}  // namespace sorix::optim
