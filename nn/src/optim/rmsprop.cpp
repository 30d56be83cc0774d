// RMSprop: one fused kernel per parameter (see rmsprop.hpp for the formulas, PyTorch 1.13's
// single-tensor order), the kernel layer's (core/internal/sorix_core/kernels/optim_kernels.hpp).
#include "sorix/nn/optim/rmsprop.hpp"

#include <type_traits>

#include "sorix_autograd/ops_internal.hpp"
#include "sorix_core/kernels/table.hpp"

namespace sorix::optim {
namespace {

template <class T>
void rmsprop_update(T* p, const T* g, T* sq, T* buf, T* gavg, std::size_t n, const kernels::RmspropStep& s) {
  if constexpr (std::is_same_v<T, float>) kernels::active().rmsprop_f32(p, g, sq, buf, gavg, n, s);
  else kernels::active().rmsprop_f64(p, g, sq, buf, gavg, n, s);
}

}  // namespace

RMSprop::RMSprop(std::vector<OptimizerParamGroup> param_groups, RMSpropOptions defaults)
    : Optimizer(std::move(param_groups), defaults.clone()) {
  check_groups();
}

RMSprop::RMSprop(std::vector<Tensor> params, RMSpropOptions defaults)
    : RMSprop(std::vector<OptimizerParamGroup>{OptimizerParamGroup(std::move(params))}, std::move(defaults)) {}

std::vector<Optimizer::HyperParam> RMSprop::hyper_params(const OptimizerOptions& options) const {
  const auto& o = static_cast<const RMSpropOptions&>(options);
  return {{"lr", o.lr_, false},
          {"alpha", o.alpha_, false},
          {"eps", o.eps_, false},
          {"weight_decay", o.weight_decay_, false},
          {"momentum", o.momentum_, true},
          {"centered", o.centered_ ? 1.0 : 0.0, true}};
}

void RMSprop::set_hyper_params(OptimizerOptions& options, const std::vector<double>& v) const {
  auto& o = static_cast<RMSpropOptions&>(options);
  o.lr_ = v.at(0);
  o.alpha_ = v.at(1);
  o.eps_ = v.at(2);
  o.weight_decay_ = v.at(3);
  o.momentum_ = v.at(4);
  o.centered_ = v.at(5) != 0;
}

std::vector<std::string> RMSprop::buffer_names(const OptimizerOptions& options) const {
  const auto& o = static_cast<const RMSpropOptions&>(options);
  std::vector<std::string> names{"square_avg"};
  if (o.momentum_ > 0) names.push_back("momentum_buffer");
  if (o.centered_) names.push_back("grad_avg");
  return names;
}

void RMSprop::step() {
  NoGradGuard no_grad;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    if (!has_grad(i, "RMSprop::step")) continue;
    const RMSpropOptions& o = options_of<RMSpropOptions>(i);
    const bool use_mom = o.momentum_ > 0, centered = o.centered_;
    ParamState& st = state_[i];
    if (st.step == 0) st.buffers = zero_buffers(i);
    ++st.step;
    Tensor& p = params_[i];
    const Tensor g = p.grad();
    detail::visit_floating(p.dtype(), "RMSprop::step", [&](auto tag) {
      using T = typename decltype(tag)::type;
      T* pp = sorix::detail::flat<T>(p);
      const T* gp = sorix::detail::flat<T>(g);
      T* sq = st.buffers[0].data_ptr<T>();
      T* buf = use_mom ? st.buffers[1].data_ptr<T>() : nullptr;
      T* gavg = centered ? st.buffers[use_mom ? 2 : 1].data_ptr<T>() : nullptr;
      const kernels::RmspropStep s{o.weight_decay(), o.alpha(), 1 - o.alpha(), o.eps(), o.momentum(), -o.lr(),
                                   o.centered()};
      parallel::parallel_for(static_cast<std::size_t>(p.numel()), parallel::kChunkSize, [&](std::size_t b, std::size_t e) {
        rmsprop_update(pp + b, gp + b, sq + b, buf == nullptr ? nullptr : buf + b, gavg == nullptr ? nullptr : gavg + b,
                       e - b, s);
      });
    });
    bump_version(i);
  }
}

void RMSprop::check_options(const OptimizerOptions& options, const char* op) const {
  const auto* po = dynamic_cast<const RMSpropOptions*>(&options);
  check(po != nullptr, op, "a parameter group's options are not RMSpropOptions");
  const RMSpropOptions& o = *po;
  check(finite_nonnegative(o.lr_), op, "invalid learning rate ", o.lr_, " (expected a finite value >= 0)");
  check(finite_nonnegative(o.eps_), op, "invalid eps ", o.eps_, " (expected a finite value >= 0)");
  check(finite_nonnegative(o.alpha_), op, "invalid alpha ", o.alpha_, " (expected a finite value >= 0)");
  check(finite_nonnegative(o.weight_decay_), op, "invalid weight_decay ", o.weight_decay_, " (expected a finite value >= 0)");
  check(finite_nonnegative(o.momentum_), op, "invalid momentum ", o.momentum_, " (expected a finite value >= 0)");
}

}  // namespace sorix::optim
