// RMSprop: one fused kernel per parameter (see rmsprop.hpp for the formulas, PyTorch 1.13's
// single-tensor order).
#include "sorix/nn/optim/rmsprop.hpp"

#include <cmath>

#include "autograd/src/ops_internal.hpp"

namespace sorix::optim {
namespace {

template <class T>
void rmsprop_update(T* __restrict p, const T* __restrict g, T* __restrict sq, T* __restrict buf,
                    T* __restrict gavg, std::size_t b, std::size_t e, const RMSpropOptions& o) {
  const T wd = static_cast<T>(o.weight_decay()), alpha = static_cast<T>(o.alpha());
  const T c = static_cast<T>(1 - o.alpha()), eps = static_cast<T>(o.eps());
  const T mom = static_cast<T>(o.momentum()), neg_lr = static_cast<T>(-o.lr());
  const bool decay = o.weight_decay() != 0, centered = o.centered(), use_mom = o.momentum() > 0;
  for (std::size_t j = b; j < e; ++j) {
    T gj = g[j];
    if (decay) gj = gj + wd * p[j];
    const T v = sq[j] * alpha + c * gj * gj;
    sq[j] = v;
    T avg;
    if (centered) {
      const T a = gavg[j] * alpha + c * gj;
      gavg[j] = a;
      avg = std::sqrt(v + T(-1) * a * a);
    } else {
      avg = std::sqrt(v);
    }
    avg = avg + eps;
    if (use_mom) {
      const T bj = buf[j] * mom + T(1) * gj / avg;
      buf[j] = bj;
      p[j] = p[j] + neg_lr * bj;
    } else {
      p[j] = p[j] + neg_lr * gj / avg;
    }
  }
}

}  // namespace

RMSprop::RMSprop(std::vector<Tensor> params, RMSpropOptions options)
    : Optimizer(std::move(params)), options_(options) {
  const char* op = "RMSprop";
  check(options_.lr_ >= 0, op, "invalid learning rate ", options_.lr_, " (expected >= 0)");
  check(options_.eps_ >= 0, op, "invalid eps ", options_.eps_, " (expected >= 0)");
  check(options_.alpha_ >= 0, op, "invalid alpha ", options_.alpha_, " (expected >= 0)");
  check(options_.weight_decay_ >= 0, op, "invalid weight_decay ", options_.weight_decay_, " (expected >= 0)");
  check(options_.momentum_ >= 0, op, "invalid momentum ", options_.momentum_, " (expected >= 0)");
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
      T* pp = p.data_ptr<T>();
      const T* gp = g.data_ptr<T>();
      T* sq = st.buffers[0].data_ptr<T>();
      T* buf = use_mom ? st.buffers[1].data_ptr<T>() : nullptr;
      T* gavg = centered ? st.buffers[use_mom ? 2 : 1].data_ptr<T>() : nullptr;
      parallel::parallel_for(static_cast<std::size_t>(p.numel()), parallel::kChunkSize,
                             [&](std::size_t b, std::size_t e) { rmsprop_update(pp, gp, sq, buf, gavg, b, e, options_); });
    });
    bump_version(i);
  }
}

}  // namespace sorix::optim
