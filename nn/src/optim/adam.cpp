// Adam / AdamW: one fused kernel per parameter (see adam.hpp for the formulas, PyTorch 1.13's
// single-tensor order), the kernel layer's (core/internal/sorix_core/kernels/optim_kernels.hpp).
#include "sorix/nn/optim/adam.hpp"

#include <algorithm>
#include <cmath>

#include <type_traits>

#include "sorix_autograd/ops_internal.hpp"
#include "sorix_core/kernels/table.hpp"

namespace sorix::optim {
namespace {

template <class T>
void adam_update(T* p, const T* g, T* m, T* v, T* vmax, std::size_t n, const kernels::AdamStep& s) {
  if constexpr (std::is_same_v<T, float>) kernels::active().adam_f32(p, g, m, v, vmax, n, s);
  else kernels::active().adam_f64(p, g, m, v, vmax, n, s);
}

// b^t for a step count t >= 1, by squaring in long double (x87: the same on every x86-64 CPU,
// unlike libm's pow, whose FMA variant glibc picks at run time), then rounded to double once.
double integer_power(double b, std::int64_t t) {
  long double result = 1.0L, base = b;
  for (; t > 0; t >>= 1) {
    if (t & 1) result *= base;
    base *= base;
  }
  return static_cast<double>(result);
}

}  // namespace

Adam::Adam(std::vector<OptimizerParamGroup> param_groups, AdamOptions defaults)
    : Adam(std::move(param_groups), defaults, false) {}

Adam::Adam(std::vector<Tensor> params, AdamOptions defaults)
    : Adam(std::vector<OptimizerParamGroup>{OptimizerParamGroup(std::move(params))}, defaults, false) {}

Adam::Adam(std::vector<OptimizerParamGroup> param_groups, const AdamOptions& defaults, bool decoupled)
    : Optimizer(std::move(param_groups), defaults.clone()), decoupled_(decoupled) {
  check_groups();
}

AdamW::AdamW(std::vector<OptimizerParamGroup> param_groups, AdamWOptions defaults)
    : Adam(std::move(param_groups), defaults, true) {}

AdamW::AdamW(std::vector<Tensor> params, AdamWOptions defaults)
    : Adam(std::vector<OptimizerParamGroup>{OptimizerParamGroup(std::move(params))}, defaults, true) {}

std::vector<Optimizer::HyperParam> Adam::hyper_params(const OptimizerOptions& options) const {
  const auto& o = static_cast<const AdamOptions&>(options);
  return {{"lr", o.lr_, false},
          {"beta1", o.betas_.first, false},
          {"beta2", o.betas_.second, false},
          {"eps", o.eps_, false},
          {"weight_decay", o.weight_decay_, false},
          {"amsgrad", o.amsgrad_ ? 1.0 : 0.0, true}};
}

void Adam::set_hyper_params(OptimizerOptions& options, const std::vector<double>& v) const {
  auto& o = static_cast<AdamOptions&>(options);
  o.lr_ = v.at(0);
  o.betas_ = {v.at(1), v.at(2)};
  o.eps_ = v.at(3);
  o.weight_decay_ = v.at(4);
  o.amsgrad_ = v.at(5) != 0;
}

std::vector<std::string> Adam::buffer_names(const OptimizerOptions& options) const {
  if (static_cast<const AdamOptions&>(options).amsgrad_) return {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"};
  return {"exp_avg", "exp_avg_sq"};
}

void Adam::step() {
  NoGradGuard no_grad;
  const char* op = decoupled_ ? "AdamW::step" : "Adam::step";
  for (std::size_t i = 0; i < params_.size(); ++i) {
    if (!has_grad(i, op)) continue;
    const AdamOptions& o = options_of<AdamOptions>(i);
    ParamState& st = state_[i];
    if (st.step == 0) st.buffers = zero_buffers(i);
    ++st.step;
    const double lr = o.lr_, b1 = o.betas_.first, b2 = o.betas_.second;
    const double bias_correction1 = 1 - integer_power(b1, st.step);
    const double bias_correction2 = 1 - integer_power(b2, st.step);
    kernels::AdamStep s{};
    s.decay_factor = 1 - lr * o.weight_decay_;
    s.weight_decay = o.weight_decay_;
    s.beta1 = b1;
    s.beta2 = b2;
    s.one_minus_beta1 = 1 - b1;
    s.one_minus_beta2 = 1 - b2;
    s.bias_correction2_sqrt = std::sqrt(bias_correction2);
    s.neg_step_size = -(lr / bias_correction1);
    s.eps = o.eps_;
    s.decoupled = decoupled_;
    s.amsgrad = o.amsgrad_;
    Tensor& p = params_[i];
    const Tensor g = p.grad();
    detail::visit_floating(p.dtype(), op, [&](auto tag) {
      using T = typename decltype(tag)::type;
      T* pp = sorix::detail::flat<T>(p);
      const T* gp = sorix::detail::flat<T>(g);
      T* m = st.buffers[0].data_ptr<T>();
      T* v = st.buffers[1].data_ptr<T>();
      T* vmax = s.amsgrad ? st.buffers[2].data_ptr<T>() : nullptr;
      parallel::parallel_for(static_cast<std::size_t>(p.numel()), parallel::kChunkSize, [&](std::size_t b, std::size_t e) {
        adam_update(pp + b, gp + b, m + b, v + b, vmax == nullptr ? nullptr : vmax + b, e - b, s);
      });
    });
    bump_version(i);
  }
}

void Adam::check_options(const OptimizerOptions& options, const char* op) const {
  const auto* po = dynamic_cast<const AdamOptions*>(&options);
  check(po != nullptr, op, "a parameter group's options are not AdamOptions");
  const AdamOptions& o = *po;
  check(finite_nonnegative(o.lr_), op, "invalid learning rate ", o.lr_, " (expected a finite value >= 0)");
  check(finite_nonnegative(o.eps_), op, "invalid eps ", o.eps_, " (expected a finite value >= 0)");
  check(o.betas_.first >= 0 && o.betas_.first < 1, op, "invalid beta1 ", o.betas_.first, " (expected 0 <= beta1 < 1)");
  check(o.betas_.second >= 0 && o.betas_.second < 1, op, "invalid beta2 ", o.betas_.second,
        " (expected 0 <= beta2 < 1)");
  check(finite_nonnegative(o.weight_decay_), op, "invalid weight_decay ", o.weight_decay_,
        " (expected a finite value >= 0)");
}

}  // namespace sorix::optim
