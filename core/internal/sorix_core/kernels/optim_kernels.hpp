#pragma once
// Optimizer updates (SGD, RMSprop, Adam/AdamW, Adagrad), written once for every architecture. Each is the
// optimizer's formula in PyTorch 1.13's single-tensor order (nn/include/sorix/nn/optim/*.hpp), as
// separate IEEE multiplies, adds, divides and square roots (never fused), so a lane computes
// exactly what the scalar formula computes, on every capability. A ragged tail runs the same
// vector code on padded buffers.
#include <cstddef>
#include <cstring>

#include "sorix_core/kernels/arch.hpp"
#include "sorix_core/kernels/table.hpp"

namespace sorix::kernels {

template <class A>
struct OptimKernels {
  // Runs body(offset, lanes) over [0, n): whole batches in place; the tail through buffers
  // (copied in from `in`, out to `out`; nullptr entries are unused).
  template <class T, std::size_t kIn, std::size_t kOut, class Body>
  static void blocks(std::size_t n, const T* const (&in)[kIn], T* const (&out)[kOut], Body&& body) {
    using B = xsimd::batch<T, A>;
    constexpr std::size_t W = B::size;
    std::size_t i = 0;
    for (; i + W <= n; i += W) {
      const T* ip[kIn];
      T* op[kOut];
      for (std::size_t k = 0; k < kIn; ++k) ip[k] = in[k] == nullptr ? nullptr : in[k] + i;
      for (std::size_t k = 0; k < kOut; ++k) op[k] = out[k] == nullptr ? nullptr : out[k] + i;
      body(ip, op);
    }
    if (i == n) return;
    alignas(64) T ib[kIn][W] = {}, ob[kOut][W] = {};
    const T* ip[kIn];
    T* op[kOut];
    const std::size_t rest = n - i;
    for (std::size_t k = 0; k < kIn; ++k) {
      ip[k] = in[k] == nullptr ? nullptr : ib[k];
      if (in[k] != nullptr) std::memcpy(ib[k], in[k] + i, rest * sizeof(T));
    }
    for (std::size_t k = 0; k < kOut; ++k) {
      op[k] = out[k] == nullptr ? nullptr : ob[k];
      if (out[k] != nullptr) std::memcpy(ob[k], out[k] + i, rest * sizeof(T));
    }
    body(ip, op);
    for (std::size_t k = 0; k < kOut; ++k)
      if (out[k] != nullptr) std::memcpy(out[k] + i, ob[k], rest * sizeof(T));
  }

  template <class T>
  static void sgd(T* p, const T* g, T* buf, std::size_t n, const SgdStep& s) {
    using B = xsimd::batch<T, A>;
    const B wd(static_cast<T>(s.weight_decay)), mom(static_cast<T>(s.momentum));
    const B damp(static_cast<T>(s.one_minus_dampening)), neg_lr(static_cast<T>(s.neg_lr));
    const T* const in[1] = {g};
    T* const out[2] = {p, s.momentum != 0 ? buf : nullptr};
    blocks<T>(n, in, out, [&](const T* const* ip, T* const* op) {
      const B pj = B::load_unaligned(op[0]);
      B d = B::load_unaligned(ip[0]);
      if (s.weight_decay != 0) d = d + wd * pj;
      if (s.momentum != 0) {
        const B v = s.first ? d : B::load_unaligned(op[1]) * mom + damp * d;
        v.store_unaligned(op[1]);
        d = s.nesterov ? d + mom * v : v;
      }
      (pj + neg_lr * d).store_unaligned(op[0]);
    });
  }

  template <class T>
  static void rmsprop(T* p, const T* g, T* sq, T* buf, T* gavg, std::size_t n, const RmspropStep& s) {
    using B = xsimd::batch<T, A>;
    const B wd(static_cast<T>(s.weight_decay)), alpha(static_cast<T>(s.alpha));
    const B c(static_cast<T>(s.one_minus_alpha)), eps(static_cast<T>(s.eps));
    const B mom(static_cast<T>(s.momentum)), neg_lr(static_cast<T>(s.neg_lr));
    const bool decay = s.weight_decay != 0, use_mom = s.momentum > 0;
    const T* const in[1] = {g};
    T* const out[4] = {p, sq, use_mom ? buf : nullptr, s.centered ? gavg : nullptr};
    blocks<T>(n, in, out, [&](const T* const* ip, T* const* op) {
      const B pj = B::load_unaligned(op[0]);
      B gj = B::load_unaligned(ip[0]);
      if (decay) gj = gj + wd * pj;
      const B v = B::load_unaligned(op[1]) * alpha + c * gj * gj;
      v.store_unaligned(op[1]);
      B avg;
      if (s.centered) {
        const B a = B::load_unaligned(op[3]) * alpha + c * gj;
        a.store_unaligned(op[3]);
        avg = xsimd::sqrt(v + B(T(-1)) * a * a);
      } else {
        avg = xsimd::sqrt(v);
      }
      avg = avg + eps;
      if (use_mom) {
        const B bj = B::load_unaligned(op[2]) * mom + B(T(1)) * gj / avg;
        bj.store_unaligned(op[2]);
        (pj + neg_lr * bj).store_unaligned(op[0]);
      } else {
        (pj + neg_lr * gj / avg).store_unaligned(op[0]);
      }
    });
  }

  template <class T>
  static void adam(T* p, const T* g, T* m, T* v, T* vmax, std::size_t n, const AdamStep& s) {
    using B = xsimd::batch<T, A>;
    const B decay(static_cast<T>(s.decay_factor)), wd(static_cast<T>(s.weight_decay));
    const B b1(static_cast<T>(s.beta1)), b2(static_cast<T>(s.beta2));
    const B c1(static_cast<T>(s.one_minus_beta1)), c2(static_cast<T>(s.one_minus_beta2));
    const B bc2(static_cast<T>(s.bias_correction2_sqrt)), nss(static_cast<T>(s.neg_step_size));
    const B eps(static_cast<T>(s.eps));
    const bool l2 = !s.decoupled && s.weight_decay != 0;
    const T* const in[1] = {g};
    T* const out[4] = {p, m, v, s.amsgrad ? vmax : nullptr};
    blocks<T>(n, in, out, [&](const T* const* ip, T* const* op) {
      B pj = B::load_unaligned(op[0]);
      if (s.decoupled) pj = pj * decay;
      B gj = B::load_unaligned(ip[0]);
      if (l2) gj = gj + wd * pj;
      const B mj = B::load_unaligned(op[1]) * b1 + c1 * gj;
      const B vj = B::load_unaligned(op[2]) * b2 + c2 * gj * gj;
      mj.store_unaligned(op[1]);
      vj.store_unaligned(op[2]);
      B vh = vj;
      if (s.amsgrad) {
        const B old = B::load_unaligned(op[3]);
        vh = xsimd::select(old < vj, vj, old);  // std::max(old, vj), NaN rule included
        vh.store_unaligned(op[3]);
      }
      const B denom = xsimd::sqrt(vh) / bc2 + eps;
      (pj + nss * mj / denom).store_unaligned(op[0]);
    });
  }

  // PyTorch's grad.add(p, alpha=wd); state_sum.addcmul_(grad, grad, value=1);
  // std = state_sum.sqrt().add_(eps); p.addcdiv_(grad, std, value=-clr).
  template <class T>
  static void adagrad(T* p, const T* g, T* sum, std::size_t n, const AdagradStep& s) {
    using B = xsimd::batch<T, A>;
    const B wd(static_cast<T>(s.weight_decay)), neg_clr(static_cast<T>(s.neg_clr)), eps(static_cast<T>(s.eps));
    const bool decay = s.weight_decay != 0;
    const T* const in[1] = {g};
    T* const out[2] = {p, sum};
    blocks<T>(n, in, out, [&](const T* const* ip, T* const* op) {
      const B pj = B::load_unaligned(op[0]);
      B gj = B::load_unaligned(ip[0]);
      if (decay) gj = gj + wd * pj;
      const B sj = B::load_unaligned(op[1]) + gj * gj;  // value=1: 1 * g * g is g * g exactly
      sj.store_unaligned(op[1]);
      const B denom = xsimd::sqrt(sj) + eps;
      (pj + neg_clr * gj / denom).store_unaligned(op[0]);
    });
  }
};

}  // namespace sorix::kernels
