// RMSprop: one fused kernel per parameter (see rmsprop.hpp for the formulas, PyTorch 1.13's
// single-tensor order), the kernel layer's (core/src/kernels/optim_kernels.hpp).
#include "sorix/nn/optim/rmsprop.hpp"

#include <type_traits>

#include "autograd/src/ops_internal.hpp"
#include "core/src/kernels/table.hpp"

namespace sorix::optim {
namespace {

template <class T>
void rmsprop_update(T* p, const T* g, T* sq, T* buf, T* gavg, std::size_t n, const kernels::RmspropStep& s) {
  if constexpr (std::is_same_v<T, float>) kernels::active().rmsprop_f32(p, g, sq, buf, gavg, n, s);
  else kernels::active().rmsprop_f64(p, g, sq, buf, gavg, n, s);
}

}  // namespace

RMSprop::RMSprop(std::vector<Tensor> params, RMSpropOptions options)
    : Optimizer(std::move(params)), options_(options) {
  const char* op = "RMSprop";
  check_options(op);
  centered_flag_ = options_.centered_ ? 1 : 0;
}

std::vector<Optimizer::HyperParam> RMSprop::hyper_params() {
  return {{"lr", &options_.lr_, false},
          {"alpha", &options_.alpha_, false},
          {"eps", &options_.eps_, false},
          {"weight_decay", &options_.weight_decay_, false},
          {"momentum", &options_.momentum_, true},
          {"centered", &centered_flag_, true}};
}

std::vector<std::string> RMSprop::buffer_names() const {
  std::vector<std::string> names{"square_avg"};
  if (options_.momentum_ > 0) names.push_back("momentum_buffer");
  if (options_.centered_) names.push_back("grad_avg");
  return names;
}

void RMSprop::step() {
  NoGradGuard no_grad;
  const bool use_mom = options_.momentum_ > 0, centered = options_.centered_;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    if (!has_grad(i, "RMSprop::step")) continue;
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
      const kernels::RmspropStep s{options_.weight_decay(), options_.alpha(), 1 - options_.alpha(), options_.eps(),
                                   options_.momentum(), -options_.lr(), options_.centered()};
      parallel::parallel_for(static_cast<std::size_t>(p.numel()), parallel::kChunkSize, [&](std::size_t b, std::size_t e) {
        rmsprop_update(pp + b, gp + b, sq + b, buf == nullptr ? nullptr : buf + b, gavg == nullptr ? nullptr : gavg + b,
                       e - b, s);
      });
    });
    bump_version(i);
  }
}

void RMSprop::check_options(const char* op) const {
  check(finite_nonnegative(options_.lr_), op, "invalid learning rate ", options_.lr_, " (expected a finite value >= 0)");
  check(finite_nonnegative(options_.eps_), op, "invalid eps ", options_.eps_, " (expected a finite value >= 0)");
  check(finite_nonnegative(options_.alpha_), op, "invalid alpha ", options_.alpha_, " (expected a finite value >= 0)");
  check(finite_nonnegative(options_.weight_decay_), op, "invalid weight_decay ", options_.weight_decay_, " (expected a finite value >= 0)");
  check(finite_nonnegative(options_.momentum_), op, "invalid momentum ", options_.momentum_, " (expected a finite value >= 0)");
}

}  // namespace sorix::optim
