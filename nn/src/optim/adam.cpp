// Adam / AdamW: one fused kernel per parameter (see adam.hpp for the formulas, PyTorch 1.13's
// single-tensor order).
#include "sorix/nn/optim/adam.hpp"

#include <algorithm>
#include <cmath>

#include "autograd/src/ops_internal.hpp"

namespace sorix::optim {
namespace {

struct AdamScalars {
  double decay_factor;  // AdamW: 1 - lr * weight_decay
  double weight_decay;  // Adam: L2 coefficient
  double beta1, beta2, one_minus_beta1, one_minus_beta2;
  double bias_correction2_sqrt, neg_step_size, eps;
  bool decoupled, amsgrad;
};

template <class T>
void adam_update(T* __restrict p, const T* __restrict g, T* __restrict m, T* __restrict v, T* __restrict vmax,
                 std::size_t b, std::size_t e, const AdamScalars& s) {
  const T decay = static_cast<T>(s.decay_factor), wd = static_cast<T>(s.weight_decay);
  const T b1 = static_cast<T>(s.beta1), b2 = static_cast<T>(s.beta2);
  const T c1 = static_cast<T>(s.one_minus_beta1), c2 = static_cast<T>(s.one_minus_beta2);
  const T bc2 = static_cast<T>(s.bias_correction2_sqrt), nss = static_cast<T>(s.neg_step_size);
  const T eps = static_cast<T>(s.eps);
  const bool l2 = !s.decoupled && s.weight_decay != 0;
  for (std::size_t j = b; j < e; ++j) {
    T pj = p[j];
    if (s.decoupled) pj = pj * decay;
    T gj = g[j];
    if (l2) gj = gj + wd * pj;
    const T mj = m[j] * b1 + c1 * gj;
    const T vj = v[j] * b2 + c2 * gj * gj;
    m[j] = mj;
    v[j] = vj;
    T vh = vj;
    if (s.amsgrad) {
      vh = std::max(vmax[j], vj);
      vmax[j] = vh;
    }
    const T denom = std::sqrt(vh) / bc2 + eps;
    p[j] = pj + nss * mj / denom;
  }
}

}  // namespace

Adam::Adam(std::vector<Tensor> params, AdamOptions options) : Adam(std::move(params), std::move(options), false) {}

Adam::Adam(std::vector<Tensor> params, AdamOptions options, bool decoupled)
    : Optimizer(std::move(params)), options_(std::move(options)), decoupled_(decoupled) {
  const char* op = decoupled ? "AdamW" : "Adam";
  check(options_.lr_ >= 0, op, "invalid learning rate ", options_.lr_, " (expected >= 0)");
  check(options_.eps_ >= 0, op, "invalid eps ", options_.eps_, " (expected >= 0)");
  check(options_.betas_.first >= 0 && options_.betas_.first < 1, op, "invalid beta1 ", options_.betas_.first,
        " (expected 0 <= beta1 < 1)");
  check(options_.betas_.second >= 0 && options_.betas_.second < 1, op, "invalid beta2 ", options_.betas_.second,
        " (expected 0 <= beta2 < 1)");
  check(options_.weight_decay_ >= 0, op, "invalid weight_decay ", options_.weight_decay_, " (expected >= 0)");
  amsgrad_flag_ = options_.amsgrad_ ? 1 : 0;
}

AdamW::AdamW(std::vector<Tensor> params, AdamWOptions options) : Adam(std::move(params), options, true) {}

std::vector<Optimizer::HyperParam> Adam::hyper_params() {
  return {{"lr", &options_.lr_, false},
          {"beta1", &options_.betas_.first, false},
          {"beta2", &options_.betas_.second, false},
          {"eps", &options_.eps_, false},
          {"weight_decay", &options_.weight_decay_, false},
          {"amsgrad", &amsgrad_flag_, true}};
}

std::vector<std::string> Adam::buffer_names() const {
  if (options_.amsgrad_) return {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"};
  return {"exp_avg", "exp_avg_sq"};
}

void Adam::step() {
  NoGradGuard no_grad;
  const char* op = decoupled_ ? "AdamW::step" : "Adam::step";
  for (std::size_t i = 0; i < params_.size(); ++i) {
    if (!has_grad(i, op)) continue;
    ParamState& st = state_[i];
    if (st.step == 0) st.buffers = zero_buffers(i);
    ++st.step;
    const double t = static_cast<double>(st.step);
    const double lr = options_.lr_, b1 = options_.betas_.first, b2 = options_.betas_.second;
    const double bias_correction1 = 1 - std::pow(b1, t);
    const double bias_correction2 = 1 - std::pow(b2, t);
    AdamScalars s{};
    s.decay_factor = 1 - lr * options_.weight_decay_;
    s.weight_decay = options_.weight_decay_;
    s.beta1 = b1;
    s.beta2 = b2;
    s.one_minus_beta1 = 1 - b1;
    s.one_minus_beta2 = 1 - b2;
    s.bias_correction2_sqrt = std::sqrt(bias_correction2);
    s.neg_step_size = -(lr / bias_correction1);
    s.eps = options_.eps_;
    s.decoupled = decoupled_;
    s.amsgrad = options_.amsgrad_;
    Tensor& p = params_[i];
    const Tensor g = p.grad();
    detail::visit_floating(p.dtype(), op, [&](auto tag) {
      using T = typename decltype(tag)::type;
      T* pp = p.data_ptr<T>();
      const T* gp = g.data_ptr<T>();
      T* m = st.buffers[0].data_ptr<T>();
      T* v = st.buffers[1].data_ptr<T>();
      T* vmax = s.amsgrad ? st.buffers[2].data_ptr<T>() : nullptr;
      parallel::parallel_for(static_cast<std::size_t>(p.numel()), parallel::kChunkSize,
                             [&](std::size_t b, std::size_t e) { adam_update(pp, gp, m, v, vmax, b, e, s); });
    });
    bump_version(i);
  }
}

}  // namespace sorix::optim
