// Losses: MSE and BCE-with-logits as composites of Tensor ops (their gradients come from the
// primitives, in every argument and any order); cross entropy as one fused op (stable
// log-softmax + NLL per row) with its gradient written by hand beside it.
#include "sorix/nn/loss.hpp"

#include <cmath>
#include <limits>

#include "autograd/src/ops_internal.hpp"
#include "core/src/kernels/reduce.hpp"
#include "core/src/kernels/simd.hpp"

namespace sorix::nn {

const char* reduction_name(Reduction r) {
  switch (r) {
    case Reduction::None: return "none";
    case Reduction::Mean: return "mean";
    case Reduction::Sum: return "sum";
  }
  return "?";
}

namespace {

Tensor reduce_loss(const Tensor& l, Reduction r) {
  switch (r) {
    case Reduction::None: return l;
    case Reduction::Mean: return mean(l);
    case Reduction::Sum: return sum(l);
  }
  return l;
}

// True when `from` broadcasts to exactly `to` (NumPy rules, `to` unchanged).
bool broadcasts_to(const Shape& from, const Shape& to) {
  if (from.size() > to.size()) return false;
  const std::size_t lead = to.size() - from.size();
  for (std::size_t k = 0; k < from.size(); ++k) {
    if (from[k] != 1 && from[k] != to[lead + k]) return false;
  }
  return true;
}

void check_floating(const Tensor& t, const char* op, const char* what) {
  detail::check_defined(t, op);
  check(is_floating(t.dtype()), op, "expected a floating (float32 or float64) ", what, ", got ",
        dtype_name(t.dtype()));
}

}  // namespace

namespace functional {

Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  check_floating(input, "mse_loss", "input");
  check_floating(target, "mse_loss", "target");
  check(input.shape() == target.shape(), "mse_loss", "input shape ", input.shape(), " and target shape ",
        target.shape(), " must be equal");
  Tensor d = input - target;
  return reduce_loss(d * d, reduction);
}

namespace {
Tensor binary_cross_entropy_with_logits_flat(const Tensor& input, const Tensor& target, const Tensor& weight,
                                        const Tensor& pos_weight, Reduction reduction) {
  const char* op = "binary_cross_entropy_with_logits";
  check_floating(input, op, "input");
  check_floating(target, op, "target");
  check(input.shape() == target.shape(), op, "target shape ", target.shape(), " must equal input shape ",
        input.shape());
  if (weight.defined()) {
    check_floating(weight, op, "weight");
    check(broadcasts_to(weight.shape(), input.shape()), op, "weight shape ", weight.shape(),
          " does not broadcast to input shape ", input.shape());
  }
  if (pos_weight.defined()) {
    check_floating(pos_weight, op, "pos_weight");
    check(broadcasts_to(pos_weight.shape(), input.shape()), op, "pos_weight shape ", pos_weight.shape(),
          " does not broadcast to input shape ", input.shape());
  }
  // PyTorch's form (same op order, for parity): m = max(-x, 0) keeps both exponents <= 0.
  Tensor m = relu(neg(input));
  Tensor log_term = log(exp(neg(m)) + exp(neg(input) - m));
  Tensor loss;
  if (pos_weight.defined()) {
    Tensor log_weight = (pos_weight - 1.0) * target + 1.0;
    loss = (1.0 - target) * input + log_weight * (log_term + m);
  } else {
    loss = (1.0 - target) * input + m + log_term;
  }
  if (weight.defined()) loss = loss * weight;
  return reduce_loss(loss, reduction);
}
}  // namespace

Tensor binary_cross_entropy_with_logits(const Tensor& input, const Tensor& target, const Tensor& weight,
                                        const Tensor& pos_weight, Reduction reduction) {
  // The kernels below read flat memory: views are made contiguous first.
  return binary_cross_entropy_with_logits_flat(sorix::detail::contiguous_or_undefined(input), sorix::detail::contiguous_or_undefined(target), sorix::detail::contiguous_or_undefined(weight), sorix::detail::contiguous_or_undefined(pos_weight), reduction);
}

namespace {

// Per-row results of the fused forward, kept for the plain backward.
template <class T>
struct CERows {
  std::vector<T> shift;    // row max
  std::vector<T> logs;     // log(sum exp(x - max))
  std::vector<T> softmax;  // exp(x - max) / sum exp(x - max), [N, C]: the backward's probabilities
};

}  // namespace

namespace {
Tensor cross_entropy_flat(const Tensor& input_in, const Tensor& target_in, const Tensor& weight, Reduction reduction) {
  const char* op = "cross_entropy";
  check_floating(input_in, op, "input");
  detail::check_defined(target_in, op);
  const bool unbatched = input_in.dim() == 1;
  check(input_in.dim() == 1 || input_in.dim() == 2, op, "expected input of shape [N, C] or [C], got ",
        input_in.shape());
  const bool prob = target_in.dtype() != Dtype::Int64;
  if (prob) {
    check(target_in.dtype() == input_in.dtype(), op, "probability target dtype ", dtype_name(target_in.dtype()),
          " must equal input dtype ", dtype_name(input_in.dtype()), " (class indices must be int64)");
    check(target_in.shape() == input_in.shape(), op, "probability target shape ", target_in.shape(),
          " must equal input shape ", input_in.shape());
  } else {
    const Shape expected = unbatched ? Shape{} : Shape{input_in.size(0)};
    check(target_in.shape() == expected, op, "class-index target shape ", target_in.shape(),
          " does not match input shape ", input_in.shape(), " (expected ", expected, ")");
  }
  Tensor input = unbatched ? input_in.unsqueeze(0) : input_in;
  Tensor target = unbatched ? target_in.unsqueeze(0) : target_in;
  const std::int64_t N = input.size(0), C = input.size(1);
  if (weight.defined()) {
    check(weight.dtype() == input.dtype(), op, "weight dtype ", dtype_name(weight.dtype()),
          " must equal input dtype ", dtype_name(input.dtype()));
    check(weight.shape() == Shape{C}, op, "weight shape ", weight.shape(), " must be [", C,
          "] (one per class) for input shape ", input_in.shape());
  }
  if (!prob) {
    const std::int64_t* t = sorix::detail::flat<std::int64_t>(target);
    for (std::int64_t i = 0; i < N; ++i) {
      check<std::out_of_range>(t[i] >= 0 && t[i] < C, op, "target class index ", t[i], " at position ", i,
                               " is out of range: expected 0 <= index < ", C, " (the number of classes)");
    }
  }
  check(C > 0 || N == 0, op, "input shape ", input_in.shape(), " has no classes");

  const std::size_t n = static_cast<std::size_t>(N), c = static_cast<std::size_t>(C);
  const std::size_t rows_per_chunk = std::max<std::size_t>(1, parallel::kChunkSize / std::max<std::size_t>(c, 1));
  const std::size_t row_grain = parallel::kInlineGrain / std::max<std::size_t>(c, 1) + 1;

  return detail::visit_floating(input.dtype(), op, [&](auto tag) -> Tensor {
    using T = typename decltype(tag)::type;
    auto rows = std::make_shared<CERows<T>>();
    rows->shift.resize(n);
    rows->logs.resize(n);
    rows->softmax.resize(n * c);
    std::vector<T> row_loss(n), row_weight(prob ? 0 : n);
    const T* x = sorix::detail::flat<T>(input);
    const T* w = weight.defined() ? sorix::detail::flat<T>(weight) : nullptr;
    const std::int64_t* ti = prob ? nullptr : sorix::detail::flat<std::int64_t>(target);
    const T* y = prob ? sorix::detail::flat<T>(target) : nullptr;
    parallel::parallel_for(
        n, rows_per_chunk,
        [&](std::size_t r0, std::size_t r1) {
          // The softmax row kernel (the kernel layer's, as softmax's): probabilities kept for the
          // backward, with each row's max and log(sum exp(x - max)) for the loss.
          kernels::softmax_rows(x + r0 * c, rows->softmax.data() + r0 * c, r1 - r0, c, false, rows->shift.data() + r0,
                                rows->logs.data() + r0);
          for (std::size_t i = r0; i < r1; ++i) {
            const T* row = x + i * c;
            const T m = rows->shift[i], logs = rows->logs[i];
            if (!prob) {
              const std::size_t t = static_cast<std::size_t>(ti[i]);
              const T wt = w ? w[t] : T(1);
              row_loss[i] = -(wt * ((row[t] - m) - logs));
              row_weight[i] = wt;
            } else {
              const T* yr = y + i * c;
              T acc = 0;
              for (std::size_t k = 0; k < c; ++k) {
                const T lp = (row[k] - m) - logs;
                acc += w ? lp * yr[k] * w[k] : lp * yr[k];
              }
              row_loss[i] = -acc;
            }
          }
        },
        row_grain);

    // Reduction in fixed chunk order; denom is what Mean divides by (1 otherwise).
    Tensor out;
    T denom = 1;
    if (reduction == Reduction::None) {
      xt::xarray<T> a = xt::xarray<T>::from_shape({n});
      std::copy(row_loss.begin(), row_loss.end(), a.data());
      out = Tensor(std::move(a));
    } else {
      const T total = kernels::sum_all(row_loss.data(), n);
      if (reduction == Reduction::Mean) {
        denom = (!prob && w) ? kernels::sum_all(row_weight.data(), n) : static_cast<T>(N);
      }
      out = scalar_tensor(static_cast<double>(reduction == Reduction::Mean ? total / denom : total), input.dtype());
    }

    if (autograd::needs_grad({&input, &target})) {
      const bool need_x = input.requires_grad(), need_y = prob && target.requires_grad();
      std::vector<Tensor> inputs{input};
      if (prob) inputs.push_back(target);
      autograd::record(
          out, "CrossEntropyBackward", inputs,
          [sx = autograd::SavedTensor(input), st = autograd::SavedTensor(target),
           sw = weight.defined() ? autograd::SavedTensor(weight.detach()) : autograd::SavedTensor(), rows, denom,
           reduction, n, c, N, C, prob, need_x, need_y](const Tensor& g) -> std::vector<Tensor> {
            Tensor xv = sx.unpack("cross_entropy"), tv = st.unpack("cross_entropy");
            Tensor wv = sw.defined() ? sw.unpack("cross_entropy") : Tensor();
            Tensor gx, gy;
            if (autograd::grad_enabled()) {
              // create_graph: the same formulas as Tensor ops, differentiable again.
              Tensor scale = reduction == Reduction::None ? g.reshape({N, 1}) : g;
              if (denom != T(1)) scale = scale / static_cast<double>(denom);
              Tensor wrow = wv.defined() ? wv.reshape({1, C}) : Tensor();
              Tensor yw;
              if (prob) {
                yw = wrow.defined() ? tv * wrow : tv;
              } else {
                xt::xarray<T> oh = xt::zeros<T>({n, c});
                const std::int64_t* t = sorix::detail::flat<std::int64_t>(tv);
                const T* wp = wv.defined() ? sorix::detail::flat<T>(wv) : nullptr;
                for (std::size_t i = 0; i < n; ++i) {
                  const std::size_t k = static_cast<std::size_t>(t[i]);
                  oh(i, k) = wp ? wp[k] : T(1);
                }
                yw = Tensor(std::move(oh));
              }
              if (need_x) gx = (softmax(xv, 1) * sum(yw, {1}, true) - yw) * scale;
              if (need_y) {
                Tensor lp = log_softmax(xv, 1);
                gy = neg(wrow.defined() ? lp * wrow : lp) * scale;
              }
            } else {
              const T* xp = sorix::detail::flat<T>(xv);
              const T* gp = sorix::detail::flat<T>(g);
              const T* wp = wv.defined() ? sorix::detail::flat<T>(wv) : nullptr;
              const std::int64_t* tp = prob ? nullptr : sorix::detail::flat<std::int64_t>(tv);
              const T* yp = prob ? sorix::detail::flat<T>(tv) : nullptr;
              T* gxp = nullptr;
              T* gyp = nullptr;
              if (need_x) {
                gx = detail::make_empty<T>({n, c});
                gxp = sorix::detail::flat<T>(gx);
              }
              if (need_y) {
                gy = detail::make_empty<T>({n, c});
                gyp = sorix::detail::flat<T>(gy);
              }
              const bool per_row = reduction == Reduction::None;
              parallel::parallel_for(
                  n, std::max<std::size_t>(1, parallel::kChunkSize / std::max<std::size_t>(c, 1)),
                  [&](std::size_t r0, std::size_t r1) {
                    for (std::size_t i = r0; i < r1; ++i) {
                      const T sc = (per_row ? gp[i] : gp[0]) / denom;
                      const T* row = xp + i * c;
                      const T m = rows->shift[i], logs = rows->logs[i];
                      if (!prob) {
                        const std::size_t t = static_cast<std::size_t>(tp[i]);
                        const T wt = wp ? wp[t] : T(1);
                        T* out_row = gxp + i * c;
                        const T* p = rows->softmax.data() + i * c;
                        for (std::size_t k = 0; k < c; ++k) out_row[k] = sc * (p[k] * wt);
                        out_row[t] -= sc * wt;
                        continue;
                      }
                      const T* yr = yp + i * c;
                      if (gxp) {
                        T s = 0;
                        for (std::size_t k = 0; k < c; ++k) s += wp ? yr[k] * wp[k] : yr[k];
                        T* out_row = gxp + i * c;
                        for (std::size_t k = 0; k < c; ++k) {
                          const T ywk = wp ? yr[k] * wp[k] : yr[k];
                          out_row[k] = sc * (rows->softmax[i * c + k] * s - ywk);
                        }
                      }
                      if (gyp) {
                        T* out_row = gyp + i * c;
                        for (std::size_t k = 0; k < c; ++k) {
                          const T lp = (row[k] - m) - logs;
                          out_row[k] = -(sc * (wp ? lp * wp[k] : lp));
                        }
                      }
                    }
                  },
                  parallel::kInlineGrain / std::max<std::size_t>(c, 1) + 1);
            }
            std::vector<Tensor> grads{gx};
            if (prob) grads.push_back(gy);
            return grads;
          });
    }
    if (unbatched && reduction == Reduction::None) out = out.reshape({});
    return out;
  });
}
}  // namespace

Tensor cross_entropy(const Tensor& input_in, const Tensor& target_in, const Tensor& weight, Reduction reduction) {
  // The kernels below read flat memory: views are made contiguous first.
  return cross_entropy_flat(sorix::detail::contiguous_or_undefined(input_in), sorix::detail::contiguous_or_undefined(target_in), sorix::detail::contiguous_or_undefined(weight), reduction);
}

}  // namespace functional

Tensor MSELoss::forward(const Tensor& input, const Tensor& target) {
  return functional::mse_loss(input, target, options_.reduction());
}

Tensor BCEWithLogitsLoss::forward(const Tensor& input, const Tensor& target) {
  return functional::binary_cross_entropy_with_logits(input, target, options_.weight(), options_.pos_weight(),
                                                      options_.reduction());
}

Tensor CrossEntropyLoss::forward(const Tensor& input, const Tensor& target) {
  return functional::cross_entropy(input, target, options_.weight(), options_.reduction());
}

}  // namespace sorix::nn
