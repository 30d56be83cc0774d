// SGD: one fused kernel per parameter (see sgd.hpp for the formulas, PyTorch 1.13's order), the
// kernel layer's (core/internal/sorix_core/kernels/optim_kernels.hpp), with the parameter's group's options.
#include "sorix/nn/optim/sgd.hpp"

#include <type_traits>

#include "sorix_autograd/ops_internal.hpp"
#include "sorix_core/kernels/table.hpp"

namespace sorix::optim {
namespace {

template <class T>
void sgd_update(T* p, const T* g, T* buf, std::size_t n, const kernels::SgdStep& s) {
  if constexpr (std::is_same_v<T, float>) kernels::active().sgd_f32(p, g, buf, n, s);
  else kernels::active().sgd_f64(p, g, buf, n, s);
}

}  // namespace

SGD::SGD(std::vector<OptimizerParamGroup> param_groups, SGDOptions defaults)
    : Optimizer(std::move(param_groups), defaults.clone()) {
  check_groups();
}

SGD::SGD(std::vector<Tensor> params, SGDOptions defaults)
    : SGD(std::vector<OptimizerParamGroup>{OptimizerParamGroup(std::move(params))}, std::move(defaults)) {}

std::vector<Optimizer::HyperParam> SGD::hyper_params(const OptimizerOptions& options) const {
  const auto& o = static_cast<const SGDOptions&>(options);
  return {{"lr", o.lr_, false},
          {"momentum", o.momentum_, true},
          {"dampening", o.dampening_, false},
          {"weight_decay", o.weight_decay_, false},
          {"nesterov", o.nesterov_ ? 1.0 : 0.0, true}};
}

void SGD::set_hyper_params(OptimizerOptions& options, const std::vector<double>& v) const {
  auto& o = static_cast<SGDOptions&>(options);
  o.lr_ = v.at(0);
  o.momentum_ = v.at(1);
  o.dampening_ = v.at(2);
  o.weight_decay_ = v.at(3);
  o.nesterov_ = v.at(4) != 0;
}

std::vector<std::string> SGD::buffer_names(const OptimizerOptions& options) const {
  if (static_cast<const SGDOptions&>(options).momentum_ != 0) return {"momentum_buffer"};
  return {};
}

void SGD::step() {
  NoGradGuard no_grad;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    if (!has_grad(i, "SGD::step")) continue;
    const SGDOptions& o = options_of<SGDOptions>(i);
    ParamState& st = state_[i];
    const bool first = st.step == 0;
    if (first) st.buffers = zero_buffers(i);
    ++st.step;
    Tensor& p = params_[i];
    const Tensor g = p.grad();
    detail::visit_floating(p.dtype(), "SGD::step", [&](auto tag) {
      using T = typename decltype(tag)::type;
      T* pp = sorix::detail::flat<T>(p);
      const T* gp = sorix::detail::flat<T>(g);
      T* bp = st.buffers.empty() ? nullptr : st.buffers[0].data_ptr<T>();
      const kernels::SgdStep s{o.weight_decay(), o.momentum(), 1 - o.dampening(), -o.lr(), o.nesterov(), first};
      parallel::parallel_for(static_cast<std::size_t>(p.numel()), parallel::kChunkSize, [&](std::size_t b, std::size_t e) {
        sgd_update(pp + b, gp + b, bp == nullptr ? nullptr : bp + b, e - b, s);
      });
    });
    bump_version(i);
  }
}

void SGD::check_options(const OptimizerOptions& options, const char* op) const {
  const auto* po = dynamic_cast<const SGDOptions*>(&options);
  check(po != nullptr, op, "a parameter group's options are not SGDOptions");
  const SGDOptions& o = *po;
  check(finite_nonnegative(o.lr_), op, "invalid learning rate ", o.lr_, " (expected a finite value >= 0)");
  check(finite_nonnegative(o.momentum_), op, "invalid momentum ", o.momentum_, " (expected a finite value >= 0)");
  check(finite_nonnegative(o.weight_decay_), op, "invalid weight_decay ", o.weight_decay_, " (expected a finite value >= 0)");
  check(std::isfinite(o.dampening_), op, "invalid dampening ", o.dampening_, " (expected a finite value)");
  check(!o.nesterov_ || (o.momentum_ > 0 && o.dampening_ == 0), op,
        "nesterov momentum requires momentum > 0 and dampening == 0, got momentum ", o.momentum_,
        " and dampening ", o.dampening_);
}

}  // namespace sorix::optim
