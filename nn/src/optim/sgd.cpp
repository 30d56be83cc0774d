// SGD: one fused kernel per parameter (see sgd.hpp for the formulas, PyTorch 1.13's order), the
// kernel layer's (core/src/kernels/optim_kernels.hpp).
#include "sorix/nn/optim/sgd.hpp"

#include <type_traits>

#include "autograd/src/ops_internal.hpp"
#include "core/src/kernels/table.hpp"

namespace sorix::optim {
namespace {

template <class T>
void sgd_update(T* p, const T* g, T* buf, std::size_t n, const kernels::SgdStep& s) {
  if constexpr (std::is_same_v<T, float>) kernels::active().sgd_f32(p, g, buf, n, s);
  else kernels::active().sgd_f64(p, g, buf, n, s);
}

}  // namespace

SGD::SGD(std::vector<Tensor> params, SGDOptions options) : Optimizer(std::move(params)), options_(options) {
  const char* op = "SGD";
  check_options(op);
  nesterov_flag_ = options_.nesterov_ ? 1 : 0;
}

std::vector<Optimizer::HyperParam> SGD::hyper_params() {
  return {{"lr", &options_.lr_, false},
          {"momentum", &options_.momentum_, true},
          {"dampening", &options_.dampening_, false},
          {"weight_decay", &options_.weight_decay_, false},
          {"nesterov", &nesterov_flag_, true}};
}

std::vector<std::string> SGD::buffer_names() const {
  if (options_.momentum_ != 0) return {"momentum_buffer"};
  return {};
}

void SGD::step() {
  NoGradGuard no_grad;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    if (!has_grad(i, "SGD::step")) continue;
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
      const kernels::SgdStep s{options_.weight_decay(), options_.momentum(), 1 - options_.dampening(), -options_.lr(),
                               options_.nesterov(), first};
      parallel::parallel_for(static_cast<std::size_t>(p.numel()), parallel::kChunkSize, [&](std::size_t b, std::size_t e) {
        sgd_update(pp + b, gp + b, bp == nullptr ? nullptr : bp + b, e - b, s);
      });
    });
    bump_version(i);
  }
}

void SGD::check_options(const char* op) const {
  check(finite_nonnegative(options_.lr_), op, "invalid learning rate ", options_.lr_, " (expected a finite value >= 0)");
  check(finite_nonnegative(options_.momentum_), op, "invalid momentum ", options_.momentum_, " (expected a finite value >= 0)");
  check(finite_nonnegative(options_.weight_decay_), op, "invalid weight_decay ", options_.weight_decay_, " (expected a finite value >= 0)");
  check(!options_.nesterov_ || (options_.momentum_ > 0 && options_.dampening_ == 0), op,
        "nesterov momentum requires momentum > 0 and dampening == 0, got momentum ", options_.momentum_,
        " and dampening ", options_.dampening_);
}

}  // namespace sorix::optim
