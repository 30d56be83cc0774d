// Adam / AdamW: one fused kernel per parameter (see adam.hpp for the formulas, PyTorch 1.13's
// single-tensor order), the kernel layer's (core/src/kernels/optim_kernels.hpp).
#include "sorix/nn/optim/adam.hpp"

#include <algorithm>
#include <cmath>

#include <type_traits>

#include "autograd/src/ops_internal.hpp"
#include "core/src/kernels/table.hpp"

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

Adam::Adam(std::vector<Tensor> params, AdamOptions options) : Adam(std::move(params), std::move(options), false) {}

Adam::Adam(std::vector<Tensor> params, AdamOptions options, bool decoupled)
    : Optimizer(std::move(params)), options_(std::move(options)), decoupled_(decoupled) {
  const char* op = decoupled ? "AdamW" : "Adam";
  check_options(op);
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
    const double lr = options_.lr_, b1 = options_.betas_.first, b2 = options_.betas_.second;
    const double bias_correction1 = 1 - integer_power(b1, st.step);
    const double bias_correction2 = 1 - integer_power(b2, st.step);
    kernels::AdamStep s{};
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

void Adam::check_options(const char* op) const {
  check(finite_nonnegative(options_.lr_), op, "invalid learning rate ", options_.lr_, " (expected a finite value >= 0)");
  check(finite_nonnegative(options_.eps_), op, "invalid eps ", options_.eps_, " (expected a finite value >= 0)");
  check(options_.betas_.first >= 0 && options_.betas_.first < 1, op, "invalid beta1 ", options_.betas_.first,
        " (expected 0 <= beta1 < 1)");
  check(options_.betas_.second >= 0 && options_.betas_.second < 1, op, "invalid beta2 ", options_.betas_.second,
        " (expected 0 <= beta2 < 1)");
  check(finite_nonnegative(options_.weight_decay_), op, "invalid weight_decay ", options_.weight_decay_, " (expected a finite value >= 0)");
}

}  // namespace sorix::optim
