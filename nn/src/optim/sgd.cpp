// SGD: one fused kernel per parameter (see sgd.hpp for the formulas, PyTorch 1.13's order).
#include "sorix/nn/optim/sgd.hpp"

#include "autograd/src/ops_internal.hpp"

namespace sorix::optim {
namespace {

// The update of elements [b, e); `first` makes the momentum buffer a copy of the gradient.
template <class T>
void sgd_update(T* __restrict p, const T* __restrict g, T* __restrict buf, std::size_t b, std::size_t e,
                const SGDOptions& o, bool first) {
  const T wd = static_cast<T>(o.weight_decay()), mom = static_cast<T>(o.momentum());
  const T damp = static_cast<T>(1 - o.dampening()), neg_lr = static_cast<T>(-o.lr());
  const bool decay = o.weight_decay() != 0, use_mom = o.momentum() != 0, nesterov = o.nesterov();
  for (std::size_t j = b; j < e; ++j) {
    T d = g[j];
    if (decay) d = d + wd * p[j];
    if (use_mom) {
      const T v = first ? d : buf[j] * mom + damp * d;
      buf[j] = v;
      d = nesterov ? d + mom * v : v;
    }
    p[j] = p[j] + neg_lr * d;
  }
}

}  // namespace

SGD::SGD(std::vector<Tensor> params, SGDOptions options) : Optimizer(std::move(params)), options_(options) {
  const char* op = "SGD";
  check(options_.lr_ >= 0, op, "invalid learning rate ", options_.lr_, " (expected >= 0)");
  check(options_.momentum_ >= 0, op, "invalid momentum ", options_.momentum_, " (expected >= 0)");
  check(options_.weight_decay_ >= 0, op, "invalid weight_decay ", options_.weight_decay_, " (expected >= 0)");
  check(!options_.nesterov_ || (options_.momentum_ > 0 && options_.dampening_ == 0), op,
        "nesterov momentum requires momentum > 0 and dampening == 0, got momentum ", options_.momentum_,
        " and dampening ", options_.dampening_);
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
      T* pp = p.data_ptr<T>();
      const T* gp = g.data_ptr<T>();
      T* bp = st.buffers.empty() ? nullptr : st.buffers[0].data_ptr<T>();
      parallel::parallel_for(static_cast<std::size_t>(p.numel()), parallel::kChunkSize,
                             [&](std::size_t b, std::size_t e) { sgd_update(pp, gp, bp, b, e, options_, first); });
    });
    bump_version(i);
  }
}

}  // namespace sorix::optim
