// Losses: MSE, L1, smooth L1, Huber, KL divergence, NLL and BCE-with-logits as composites of
// Tensor ops (their gradients come from the primitives, in every argument and any order); BCE
// with PyTorch's gradient recorded by hand (finite at 0 and 1, where the clamped logs' derivative
// is not); cross entropy as one fused op (stable log-softmax + NLL per row) with its gradient
// written by hand beside it.
#include "sorix/nn/loss.hpp"

#include <cmath>
#include <limits>

#include "sorix_autograd/ops_internal.hpp"
#include "batch_sum.hpp"
#include "sorix_core/kernels/batch_tree.hpp"
#include "sorix/parallel/batch_tree.hpp"
#include "sorix_core/kernels/reduce.hpp"
#include "sorix_core/kernels/simd.hpp"

namespace sorix::nn {

const char* reduction_name(Reduction r) {
  switch (r) {
    case Reduction::None: return "none";
    case Reduction::Mean: return "mean";
    case Reduction::Sum: return "sum";
  }
  return "?";
}

const char* reduction_name(KLDivReduction r) {
  switch (r) {
    case KLDivReduction::None: return "none";
    case KLDivReduction::BatchMean: return "batchmean";
    case KLDivReduction::Mean: return "mean";
    case KLDivReduction::Sum: return "sum";
  }
  return "?";
}

Reduction parse_reduction(const std::string& name, const char* loss) {
  for (Reduction r : {Reduction::None, Reduction::Mean, Reduction::Sum}) {
    if (name == reduction_name(r)) return r;
  }
  throw std::invalid_argument(
      error_message(loss, "'", name, "' is not a valid value for reduction: expected 'none', 'mean' or 'sum'"));
}

KLDivReduction parse_kl_div_reduction(const std::string& name, const char* loss) {
  for (KLDivReduction r : {KLDivReduction::None, KLDivReduction::BatchMean, KLDivReduction::Mean, KLDivReduction::Sum}) {
    if (name == reduction_name(r)) return r;
  }
  throw std::invalid_argument(error_message(
      loss, "'", name, "' is not a valid value for reduction: expected 'none', 'batchmean', 'mean' or 'sum'"));
}

namespace {

Tensor reduce_loss(const Tensor& l, Reduction r) {
  switch (r) {
    case Reduction::None: return l;
    // Over the batch tree (nn/src/batch_sum.hpp): the same bits at any number of ranks.
    case Reduction::Mean: return batch::batch_tree_mean(l);
    case Reduction::Sum: return batch::batch_tree_sum(l);
  }
  // An enum value cast from an integer: refuse it rather than return unreduced losses.
  throw std::invalid_argument(error_message("loss", "invalid reduction value ", static_cast<int>(r)));
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

// The checks every elementwise loss (input and target of one shape) makes.
void check_pair(const Tensor& input, const Tensor& target, const char* op) {
  check_floating(input, op, "input");
  check_floating(target, op, "target");
  check(input.shape() == target.shape(), op, "input shape ", input.shape(), " and target shape ",
        target.shape(), " must be equal");
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

Tensor l1_loss(const Tensor& input, const Tensor& target, const L1LossFuncOptions& options) {
  check_pair(input, target, "l1_loss");
  return reduce_loss(abs(input - target), options.reduction());
}

Tensor smooth_l1_loss(const Tensor& input, const Tensor& target, const SmoothL1LossFuncOptions& options) {
  const char* op = "smooth_l1_loss";
  check_pair(input, target, op);
  const double beta = options.beta();
  check(beta >= 0, op, "beta must be >= 0, got ", beta);
  Tensor z = abs(input - target);
  // beta = 0 is the L1 loss; the quadratic branch would divide by it (PyTorch takes the same path).
  if (beta == 0) return reduce_loss(z, options.reduction());
  // PyTorch's operation order (0.5 z z / beta), for parity.
  return reduce_loss(where(z.lt(beta), 0.5 * z * z / beta, z - 0.5 * beta), options.reduction());
}

Tensor huber_loss(const Tensor& input, const Tensor& target, const HuberLossFuncOptions& options) {
  const char* op = "huber_loss";
  check_pair(input, target, op);
  const double delta = options.delta();
  check(delta > 0, op, "delta must be > 0, got ", delta);
  Tensor z = abs(input - target);
  return reduce_loss(where(z.lt(delta), 0.5 * z * z, delta * (z - 0.5 * delta)), options.reduction());
}

Tensor binary_cross_entropy(const Tensor& input, const Tensor& target, const BinaryCrossEntropyFuncOptions& options) {
  const char* op = "binary_cross_entropy";
  check_pair(input, target, op);
  const Tensor& weight = options.weight();
  if (weight.defined()) {
    check_floating(weight, op, "weight");
    check(broadcasts_to(weight.shape(), input.shape()), op, "weight shape ", weight.shape(),
          " does not broadcast to input shape ", input.shape());
  }
  {
    // Probabilities only: a logit here would give a silently wrong loss. NaN fails too (as PyTorch).
    const Tensor xs = input.detach().to(float64).contiguous();
    const double* p = xs.data_ptr<double>();
    for (std::int64_t i = 0; i < xs.numel(); ++i) {
      check(p[i] >= 0 && p[i] <= 1, op, "input value ", p[i], " at position ", i,
            " is outside [0, 1]: BCELoss takes probabilities (BCEWithLogitsLoss takes logits)");
    }
  }
  // The forward on detached values; one node below carries PyTorch's gradient.
  const Tensor x = input.detach(), y = target.detach();
  const Tensor w = weight.defined() ? weight.detach() : Tensor();
  // PyTorch clamps each log at -100, so x = 0 or 1 gives a finite loss.
  auto clamped_log = [](const Tensor& t) { return clamp(log(t), -100.0, std::nullopt); };
  Tensor loss = (y - 1.0) * clamped_log(1.0 - x) - y * clamped_log(x);
  if (w.defined()) loss = loss * w;
  if (autograd::needs_grad({&input, &target})) {
    const bool need_x = input.requires_grad(), need_y = target.requires_grad();
    autograd::record(loss, "BinaryCrossEntropyBackward", {input, target},
                     [sx = autograd::SavedTensor(input), sy = autograd::SavedTensor(target), w, need_x, need_y,
                      clamped_log](const Tensor& g) -> std::vector<Tensor> {
                       // Tensor ops: under create_graph they record, so this differentiates again.
                       const Tensor xv = sx.unpack("binary_cross_entropy"), yv = sy.unpack("binary_cross_entropy");
                       const Tensor gw = w.defined() ? g * w : g;
                       Tensor gx, gy;
                       // PyTorch's: the product clamped at 1e-12 keeps x = 0 and 1 finite.
                       if (need_x) gx = gw * (xv - yv) / clamp((1.0 - xv) * xv, 1e-12, std::nullopt);
                       if (need_y) gy = gw * (clamped_log(1.0 - xv) - clamped_log(xv));
                       return {gx, gy};
                     });
  }
  return reduce_loss(loss, options.reduction());
}

Tensor kl_div(const Tensor& input, const Tensor& target, const KLDivFuncOptions& options) {
  const char* op = "kl_div";
  check_pair(input, target, op);
  Tensor loss;
  if (options.log_target()) {
    loss = exp(target) * (target - input);
  } else {
    // xlogy(y, y) - y x, 0 where y = 0. Both where()s keep log's -inf at y = 0 out of the value
    // and out of the gradient (whose y part is then 0, as PyTorch's).
    const Tensor nonzero = target.ne(0.0);
    const Tensor safe = where(nonzero, target, 1.0);
    loss = where(nonzero, target * log(safe) - target * input, 0.0);
  }
  switch (options.reduction()) {
    case KLDivReduction::None: return loss;
    case KLDivReduction::Sum: return batch::batch_tree_sum(loss);
    case KLDivReduction::Mean: return batch::batch_tree_mean(loss);
    case KLDivReduction::BatchMean:  // divided by the whole batch's rows (under DDP too)
      return input.dim() == 0 ? sum(loss) : batch::batch_tree_sum(loss) / static_cast<double>(batch::batch_rows(input));
  }
  throw std::invalid_argument(
      error_message(op, "invalid reduction value ", static_cast<int>(options.reduction())));
}

Tensor nll_loss(const Tensor& input_in, const Tensor& target_in, const NLLLossFuncOptions& options) {
  const char* op = "nll_loss";
  check_floating(input_in, op, "input");
  detail::check_defined(target_in, op);
  check(target_in.dtype() == Dtype::Int64, op, "target must hold int64 class indices, got dtype ",
        dtype_name(target_in.dtype()));
  check(input_in.dim() >= 1, op, "expected input of shape [N, C], [N, C, d1, ...] or [C], got ", input_in.shape());
  const bool unbatched = input_in.dim() == 1;
  const Tensor input = unbatched ? input_in.unsqueeze(0) : input_in;
  const Tensor target = (unbatched ? target_in.unsqueeze(0) : target_in).contiguous();
  Shape expected = input.shape();
  expected.erase(expected.begin() + 1);  // the class dim
  if (unbatched) expected = Shape{};
  check(target_in.shape() == expected, op, "target shape ", target_in.shape(), " does not match input shape ",
        input_in.shape(), " (expected ", expected, ")");
  const std::int64_t C = input.size(1), ignore = options.ignore_index();
  const Tensor& weight = options.weight();
  if (weight.defined()) {
    check(weight.dtype() == input.dtype(), op, "weight dtype ", dtype_name(weight.dtype()), " must equal input dtype ",
          dtype_name(input.dtype()));
    check(weight.shape() == Shape{C}, op, "weight shape ", weight.shape(), " must be [", C,
          "] (one per class) for input shape ", input_in.shape());
  }
  const std::int64_t* t = target.data_ptr<std::int64_t>();
  for (std::int64_t i = 0; i < target.numel(); ++i) {
    check<std::out_of_range>(t[i] == ignore || (t[i] >= 0 && t[i] < C), op, "target class index ", t[i],
                             " at position ", i, " is out of range: expected 0 <= index < ", C,
                             " (the number of classes) or the ignore_index ", ignore);
  }
  // Ignored targets read class 0 (any valid index) and are masked out of value and gradient.
  const Tensor valid = target.ne(ignore);  // an integer Scalar: compared exactly in int64
  const Tensor safe = where(valid, target, 0);  // stays int64 (a floating 0.0 would make it float32)
  const Tensor picked = input.gather(1, safe.unsqueeze(1)).squeeze(1);
  // The weight is a constant, as in PyTorch (no gradient to it).
  const Tensor w = weight.defined() ? weight.detach().index_select(0, safe.flatten()).reshape(safe.shape()) * valid
                                    : valid.to(input.dtype());
  // where, not the product with w alone: an ignored -inf log-probability times 0 would be NaN.
  Tensor loss = where(valid, neg(picked * w), 0.0);
  switch (options.reduction()) {
    case Reduction::None: return unbatched ? loss.reshape({}) : loss;
    case Reduction::Sum: return batch::batch_tree_sum(loss);
    // Both sums over the batch tree (whole-batch values under DDP); 0 / 0 = NaN when nothing counts
    // (PyTorch's).
    case Reduction::Mean: return batch::batch_tree_sum(loss) / batch::batch_tree_sum(w);
  }
  throw std::invalid_argument(error_message(op, "invalid reduction value ", static_cast<int>(options.reduction())));
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
// input [N, C] or [C], contiguous (the K-dim form is moved to rows by the caller).
Tensor cross_entropy_flat(const Tensor& input_in, const Tensor& target_in, const Tensor& weight, Reduction reduction,
                          std::int64_t ignore_index, double smoothing) {
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
    check(ignore_index < 0, op, "ignore_index ", ignore_index,
          " is not supported for probability targets (only for class indices)");
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
      check<std::out_of_range>(t[i] == ignore_index || (t[i] >= 0 && t[i] < C), op, "target class index ", t[i],
                               " at position ", i, " is out of range: expected 0 <= index < ", C,
                               " (the number of classes) or the ignore_index ", ignore_index);
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
    // Label smoothing's two factors, rounded to T once as PyTorch's scalars are.
    const T keep = static_cast<T>(1.0 - smoothing), spread = static_cast<T>(smoothing / static_cast<double>(C));
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
              if (ti[i] == ignore_index) {  // nothing to the loss nor to Mean's divisor
                row_loss[i] = 0;
                row_weight[i] = 0;
                continue;
              }
              const std::size_t t = static_cast<std::size_t>(ti[i]);
              const T wt = w ? w[t] : T(1);
              const T nll = -(wt * ((row[t] - m) - logs));
              if (smoothing > 0) {
                // PyTorch 1.13: (1 - e) nll + e / C * (-sum_c w_c log_softmax_c).
                T acc = 0;
                for (std::size_t k = 0; k < c; ++k) {
                  const T lp = (row[k] - m) - logs;
                  acc += w ? lp * w[k] : lp;
                }
                row_loss[i] = keep * nll + spread * -acc;
              } else {
                row_loss[i] = nll;
              }
              row_weight[i] = wt;
            } else {
              const T* yr = y + i * c;
              T acc = 0;
              for (std::size_t k = 0; k < c; ++k) {
                const T lp = (row[k] - m) - logs;
                const T yk = smoothing > 0 ? yr[k] * keep + spread : yr[k];
                acc += w ? lp * yk * w[k] : lp * yk;
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
      // Sums over the batch by the batch tree (sorix/parallel/batch_tree.hpp). Under a batch
      // shard (one rank of nn::DistributedDataParallel) these are this rank's tree nodes, finished
      // across the ranks: every rank gets the whole batch's loss and divisor, the single-process bits.
      const parallel::BatchShard* shard = parallel::batch_shard();
      T sums[2] = {0, 0};
      kernels::batch_sum_rows(row_loss.data(), &sums[0], n, 1);
      // Index targets: the weight sum of the rows not ignored (their count without weights,
      // exact: sums of ones); 0 when all are ignored, so the mean is NaN as PyTorch's.
      if (!prob) kernels::batch_sum_rows(row_weight.data(), &sums[1], n, 1);
      else sums[1] = static_cast<T>(shard != nullptr ? static_cast<std::int64_t>(shard->global_rows) : N);
      if (shard != nullptr && shard->reducer != nullptr) shard->reducer->finish(sums, prob ? 1 : 2);
      const T total = sums[0];
      if (reduction == Reduction::Mean) denom = sums[1];
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
           reduction, n, c, N, C, prob, need_x, need_y, ignore_index, smoothing, keep,
           spread](const Tensor& g) -> std::vector<Tensor> {
            Tensor xv = sx.unpack("cross_entropy"), tv = st.unpack("cross_entropy");
            Tensor wv = sw.defined() ? sw.unpack("cross_entropy") : Tensor();
            Tensor gx, gy;
            if (autograd::grad_enabled()) {
              // create_graph: the same formulas as Tensor ops, differentiable again.
              Tensor scale = reduction == Reduction::None ? g.reshape({N, 1}) : g;
              // denom 0: every row ignored, all of yw is 0 and so is the gradient (as PyTorch's).
              if (denom != T(1) && denom != T(0)) scale = scale / static_cast<double>(denom);
              Tensor wrow = wv.defined() ? wv.reshape({1, C}) : Tensor();
              Tensor yw;
              if (prob) {
                const Tensor ys = smoothing > 0 ? tv * (1.0 - smoothing) + smoothing / static_cast<double>(C) : tv;
                yw = wrow.defined() ? ys * wrow : ys;
              } else {
                xt::xarray<T> oh = xt::zeros<T>({n, c});
                const std::int64_t* t = sorix::detail::flat<std::int64_t>(tv);
                const T* wp = wv.defined() ? sorix::detail::flat<T>(wv) : nullptr;
                for (std::size_t i = 0; i < n; ++i) {
                  if (t[i] == ignore_index) continue;
                  const std::size_t k = static_cast<std::size_t>(t[i]);
                  if (smoothing > 0) {
                    for (std::size_t j = 0; j < c; ++j) oh(i, j) = spread * (wp ? wp[j] : T(1));
                    oh(i, k) += keep * (wp ? wp[k] : T(1));
                  } else {
                    oh(i, k) = wp ? wp[k] : T(1);
                  }
                }
                yw = Tensor(std::move(oh));
              }
              if (need_x) gx = (softmax(xv, 1) * sum(yw, {1}, true) - yw) * scale;
              if (need_y) {
                Tensor lp = log_softmax(xv, 1);
                gy = neg(wrow.defined() ? lp * wrow : lp) * scale;
                if (smoothing > 0) gy = gy * (1.0 - smoothing);
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
              // With smoothing, row i's class weights sum to keep w_t + spread sum_k w_k.
              T wsum = 0;
              for (std::size_t k = 0; k < c; ++k) wsum += wp ? wp[k] : T(1);
              parallel::parallel_for(
                  n, std::max<std::size_t>(1, parallel::kChunkSize / std::max<std::size_t>(c, 1)),
                  [&](std::size_t r0, std::size_t r1) {
                    for (std::size_t i = r0; i < r1; ++i) {
                      const T sc = (per_row ? gp[i] : gp[0]) / denom;
                      const T* row = xp + i * c;
                      const T m = rows->shift[i], logs = rows->logs[i];
                      if (!prob) {
                        T* out_row = gxp + i * c;
                        if (tp[i] == ignore_index) {
                          std::fill(out_row, out_row + c, T(0));
                          continue;
                        }
                        const std::size_t t = static_cast<std::size_t>(tp[i]);
                        const T wt = wp ? wp[t] : T(1);
                        const T* p = rows->softmax.data() + i * c;
                        if (smoothing > 0) {
                          const T s = keep * wt + spread * wsum;
                          for (std::size_t k = 0; k < c; ++k) out_row[k] = sc * (p[k] * s - spread * (wp ? wp[k] : T(1)));
                          out_row[t] -= sc * (keep * wt);
                        } else {
                          for (std::size_t k = 0; k < c; ++k) out_row[k] = sc * (p[k] * wt);
                          out_row[t] -= sc * wt;
                        }
                        continue;
                      }
                      const T* yr = yp + i * c;
                      if (gxp) {
                        T s = 0;
                        auto yk = [&](std::size_t k) { return smoothing > 0 ? yr[k] * keep + spread : yr[k]; };
                        for (std::size_t k = 0; k < c; ++k) s += wp ? yk(k) * wp[k] : yk(k);
                        T* out_row = gxp + i * c;
                        for (std::size_t k = 0; k < c; ++k) {
                          const T ywk = wp ? yk(k) * wp[k] : yk(k);
                          out_row[k] = sc * (rows->softmax[i * c + k] * s - ywk);
                        }
                      }
                      if (gyp) {
                        T* out_row = gyp + i * c;
                        for (std::size_t k = 0; k < c; ++k) {
                          const T lp = (row[k] - m) - logs;
                          const T d = -(sc * (wp ? lp * wp[k] : lp));
                          out_row[k] = smoothing > 0 ? d * keep : d;
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

Tensor cross_entropy(const Tensor& input, const Tensor& target, const Tensor& weight, Reduction reduction) {
  return cross_entropy(input, target, CrossEntropyFuncOptions().weight(weight).reduction(reduction));
}

Tensor cross_entropy(const Tensor& input, const Tensor& target, const CrossEntropyFuncOptions& options) {
  const char* op = "cross_entropy";
  check_floating(input, op, "input");
  detail::check_defined(target, op);
  const double e = options.label_smoothing();
  check(e >= 0 && e <= 1, op, "label_smoothing must be in [0, 1], got ", e);
  using sorix::detail::contiguous_or_undefined;
  const Tensor weight = contiguous_or_undefined(options.weight());
  if (input.dim() <= 2) {
    // The kernels read flat memory: views are made contiguous first.
    return cross_entropy_flat(input.contiguous(), target.contiguous(), weight, options.reduction(),
                              options.ignore_index(), e);
  }
  // [N, C, d1, ...]: one row per position, the class dim last ([N d1 ..., C]); the checks name
  // the caller's shapes, as the rows' would not.
  const bool prob = target.dtype() != Dtype::Int64;
  Shape positions = input.shape();
  positions.erase(positions.begin() + 1);
  check(target.shape() == (prob ? input.shape() : positions), op, (prob ? "probability" : "class-index"),
        " target shape ", target.shape(), " does not match input shape ", input.shape(), " (expected ",
        prob ? input.shape() : positions, ")");
  std::vector<std::int64_t> class_last{0};
  for (std::int64_t d = 2; d < input.dim(); ++d) class_last.push_back(d);
  class_last.push_back(1);
  const std::int64_t C = input.size(1);
  const Tensor rows = input.permute(class_last).reshape({-1, C}).contiguous();
  const Tensor trows = (prob ? target.permute(class_last).reshape({-1, C}) : target.reshape({-1})).contiguous();
  Tensor out = cross_entropy_flat(rows, trows, weight, options.reduction(), options.ignore_index(), e);
  return options.reduction() == Reduction::None ? out.reshape(positions) : out;
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
  return functional::cross_entropy(input, target, options_);
}

Tensor L1Loss::forward(const Tensor& input, const Tensor& target) { return functional::l1_loss(input, target, options_); }

Tensor SmoothL1Loss::forward(const Tensor& input, const Tensor& target) {
  return functional::smooth_l1_loss(input, target, options_);
}

Tensor HuberLoss::forward(const Tensor& input, const Tensor& target) {
  return functional::huber_loss(input, target, options_);
}

Tensor BCELoss::forward(const Tensor& input, const Tensor& target) {
  return functional::binary_cross_entropy(input, target, options_);
}

Tensor KLDivLoss::forward(const Tensor& input, const Tensor& target) { return functional::kl_div(input, target, options_); }

Tensor NLLLoss::forward(const Tensor& input, const Tensor& target) { return functional::nll_loss(input, target, options_); }

}  // namespace sorix::nn
