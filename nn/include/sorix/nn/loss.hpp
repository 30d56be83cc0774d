#pragma once
// Loss functions, as torch::nn's: MSELoss, L1Loss, SmoothL1Loss, HuberLoss, BCELoss,
// BCEWithLogitsLoss, KLDivLoss, NLLLoss, CrossEntropyLoss, each as a module (forward(input,
// target) / operator()(input, target)) with an options struct, and as a function in
// nn::functional taking the same options (F::nll_loss(x, t, F::NLLLossFuncOptions().ignore_index(0))).
//
// Reduction: None gives the per-element (per-sample for cross entropy and NLL) losses, Sum their
// sum, Mean their mean (0-dim results). Mean over an empty input is NaN (as PyTorch). Options
// also take the name ("none", "mean", "sum"; KLDivLoss also "batchmean"); another name throws
// std::invalid_argument naming the loss and the name.
// Dtypes: float32 or float64 inputs; targets of the input's dtype (class indices: int64).
// Threading/determinism: every reduction is a fixed-chunk sum combined in chunk order, so the
// result is bit-identical for any thread count. The 'mean'/'sum'/'batchmean' reductions are sums
// over the batch (the first dim) by the batch tree (sorix/parallel/batch_tree.hpp: each row's
// elements in order, the rows in chunks of 32 combined pairwise), so under
// nn::DistributedDataParallel they are the whole batch's values, the same bits at any rank count.
//
//   mse_loss:  (x - y)^2
//   binary_cross_entropy_with_logits:  PyTorch's stable form
//       m = max(-x, 0);  l = (1 - y) x + lw * (log(exp(-m) + exp(-x - m)) + m),
//       lw = 1 + (pos_weight - 1) y  (1 without pos_weight);  then l *= weight.
//     Equal to max(x, 0) - x y + log1p(exp(-|x|)) without pos_weight; finite for |x| = 1000.
//     x, y: same shape; weight broadcasts to x's shape; pos_weight broadcasts along the last dim
//     ([C] for x [N, C]). Composite of Tensor ops: differentiable in every argument, any order.
//   l1_loss:  |x - y|.   x, y: same shape (std::invalid_argument otherwise).
//   smooth_l1_loss (beta >= 0, default 1):  z = |x - y|;  l = z < beta ? 0.5 z^2 / beta : z - 0.5 beta
//     (beta = 0 is l1_loss, as PyTorch). Gradient (x - y) / beta inside, sign(x - y) outside.
//   huber_loss (delta > 0, default 1):  l = z < delta ? 0.5 z^2 : delta (z - 0.5 delta).
//     Equal to delta * smooth_l1_loss with beta = delta.
//   binary_cross_entropy:  x: probabilities in [0, 1] (any shape; a value outside, or NaN, throws
//     std::invalid_argument naming it and its position), y: same shape, weight broadcasts to x.
//       l = -w (y max(log x, -100) + (1 - y) max(log(1 - x), -100))   (PyTorch's clamp of the logs)
//     Gradient by hand, PyTorch's: dx = w (x - y) / max(x (1 - x), 1e-12) (finite at x = 0 and 1),
//     dy = w (max(log(1 - x), -100) - max(log x, -100)) (the derivative of the clamped loss;
//     PyTorch's -w logit(x) is the same except within e^-100 of 0 or 1, where it is infinite);
//     weight gets none (as PyTorch). The backward is built from Tensor ops, so it differentiates
//     again.
//   kl_div:  x: log-probabilities, y: target of x's shape.
//       log_target false:  l = y (log y - x), 0 where y = 0 (PyTorch's xlogy(y, y) - y x);
//                          value and gradients are 0 where y = 0 (torch 1.13's gradient
//                          to y is NaN there: a finite one keeps a learned target usable).
//       log_target true:   l = exp(y) (y - x).
//     KLDivReduction::BatchMean divides the sum by x.size(0) (the batch; the sum for 0-dim x),
//     which is the true KL divergence; Mean divides by the number of elements (PyTorch's default).
//   nll_loss:  x: log-probabilities [N, C] or [N, C, d1, ...] (or [C], one sample); y: int64
//     class indices [N] or [N, d1, ...] (0-dim for [C]); weight [C] of x's dtype (no gradient).
//       l_j = -w[y_j] x[j, y_j], and 0 where y_j == ignore_index (default -100);
//       Mean divides the sum by sum_j w[y_j] over the targets that are not ignored (their count
//       without weights), as PyTorch: NaN when every target is ignored, or the batch is empty.
//     A class index outside [0, C) other than ignore_index throws std::out_of_range naming it and
//     its position. Composite of gather, where and sum: gradient to x only.
//   cross_entropy: input [N, C] logits, [N, C, d1, ...] (class dim 1) or [C] (one sample);
//     target either int64 class indices [N] / [N, d1, ...] / 0-dim, or class probabilities of
//     input's shape and dtype. [N, C, d1, ...] is moved to rows [N d1 ..., C] first.
//       index:  l_i = -((1 - e) w[t_i] log_softmax(x_i)[t_i] + e / C sum_c w_c log_softmax(x_i)_c),
//               e = label_smoothing (PyTorch 1.13's formula); l_i = 0 where t_i == ignore_index.
//               Mean divides by sum_i w[t_i] over the targets not ignored (their count without
//               weights), as PyTorch's nll_loss: NaN when every target is ignored.
//       probs:  y' = (1 - e) y + e / C;  l_i = -sum_c w_c y'_ic log_softmax(x_i)_c;  Mean divides
//               by the number of rows (as PyTorch). ignore_index >= 0 throws (PyTorch refuses it
//               for probabilities). label_smoothing outside [0, 1] throws.
//     ONE fused op: stable log-softmax and NLL per row in one parallel pass over rows, the
//     per-row losses summed in fixed order. With yw_ic the weight of class c in row i's loss
//     (w_c y'_ic; for indices (1 - e) w_t [c = t] + e / C w_c, all 0 for ignored rows), the
//     gradient by hand:
//       dx_ic = g_i / denom * (softmax_ic * sum_k yw_ik - yw_ic)
//       dy_ic = -g_i / denom * (1 - e) w_c log_softmax_ic                 (probability targets)
//     Under create_graph the same formulas are built from Tensor ops, so double backward works.
//     The class weight is a constant (no gradient flows to it, as in PyTorch). Errors: a class
//     index outside [0, C) throws std::out_of_range naming the index and its position; shape or
//     dtype mismatches throw std::invalid_argument naming the shapes.
#include <cstdint>
#include <string>

#include "sorix/core/tensor.hpp"
#include "sorix/nn/module.hpp"

namespace sorix::nn {

enum class Reduction { None, Mean, Sum };
/// KLDivLoss's reductions: BatchMean divides the sum by the batch size (torch's "batchmean").
enum class KLDivReduction { None, BatchMean, Sum, Mean };

/// "none", "mean", "sum" (printing).
const char* reduction_name(Reduction r);
const char* reduction_name(KLDivReduction r);
/// The reduction called `name`; any other name throws std::invalid_argument naming `loss` and it.
Reduction parse_reduction(const std::string& name, const char* loss);
/// As parse_reduction, also "batchmean".
KLDivReduction parse_kl_div_reduction(const std::string& name, const char* loss);

struct MSELossOptions {
  MSELossOptions(Reduction r = Reduction::Mean) : reduction_(r) {}  // NOLINT: implicit, as PyTorch's
  MSELossOptions& reduction(Reduction r) { reduction_ = r; return *this; }
  MSELossOptions& reduction(const std::string& name) { reduction_ = parse_reduction(name, "MSELoss"); return *this; }
  Reduction reduction() const { return reduction_; }

 private:
  Reduction reduction_;
};

/// Options of the losses whose only option is the reduction (L1Loss).
struct L1LossOptions {
  L1LossOptions(Reduction r = Reduction::Mean) : reduction_(r) {}  // NOLINT: implicit, as PyTorch's
  L1LossOptions& reduction(Reduction r) { reduction_ = r; return *this; }
  L1LossOptions& reduction(const std::string& name) { reduction_ = parse_reduction(name, "L1Loss"); return *this; }
  Reduction reduction() const { return reduction_; }

 private:
  Reduction reduction_;
};

struct SmoothL1LossOptions {
  SmoothL1LossOptions() = default;
  SmoothL1LossOptions& reduction(Reduction r) { reduction_ = r; return *this; }
  SmoothL1LossOptions& reduction(const std::string& name) { reduction_ = parse_reduction(name, "SmoothL1Loss"); return *this; }
  /// Where the loss turns from quadratic to linear; >= 0 (checked when the loss runs).
  SmoothL1LossOptions& beta(double b) { beta_ = b; return *this; }
  Reduction reduction() const { return reduction_; }
  double beta() const { return beta_; }

 private:
  Reduction reduction_ = Reduction::Mean;
  double beta_ = 1.0;
};

struct HuberLossOptions {
  HuberLossOptions() = default;
  HuberLossOptions& reduction(Reduction r) { reduction_ = r; return *this; }
  HuberLossOptions& reduction(const std::string& name) { reduction_ = parse_reduction(name, "HuberLoss"); return *this; }
  /// Where the loss turns from quadratic to linear; > 0 (checked when the loss runs).
  HuberLossOptions& delta(double d) { delta_ = d; return *this; }
  Reduction reduction() const { return reduction_; }
  double delta() const { return delta_; }

 private:
  Reduction reduction_ = Reduction::Mean;
  double delta_ = 1.0;
};

struct BCELossOptions {
  BCELossOptions() = default;
  /// Per-element rescaling weight (broadcasts to the input's shape); undefined: none.
  BCELossOptions& weight(const Tensor& w) { weight_ = w; return *this; }
  BCELossOptions& reduction(Reduction r) { reduction_ = r; return *this; }
  BCELossOptions& reduction(const std::string& name) { reduction_ = parse_reduction(name, "BCELoss"); return *this; }
  const Tensor& weight() const { return weight_; }
  Reduction reduction() const { return reduction_; }

 private:
  Tensor weight_;
  Reduction reduction_ = Reduction::Mean;
};

struct KLDivLossOptions {
  KLDivLossOptions(KLDivReduction r = KLDivReduction::Mean) : reduction_(r) {}  // NOLINT: implicit, as PyTorch's
  KLDivLossOptions& reduction(KLDivReduction r) { reduction_ = r; return *this; }
  KLDivLossOptions& reduction(const std::string& name) { reduction_ = parse_kl_div_reduction(name, "KLDivLoss"); return *this; }
  /// True: the target holds log-probabilities.
  KLDivLossOptions& log_target(bool v) { log_target_ = v; return *this; }
  KLDivReduction reduction() const { return reduction_; }
  bool log_target() const { return log_target_; }

 private:
  KLDivReduction reduction_;
  bool log_target_ = false;
};

struct NLLLossOptions {
  NLLLossOptions() = default;
  /// Class weights [C] of the input's dtype; undefined: all 1.
  NLLLossOptions& weight(const Tensor& w) { weight_ = w; return *this; }
  /// Targets equal to it contribute nothing (nor to Mean's divisor).
  NLLLossOptions& ignore_index(std::int64_t i) { ignore_index_ = i; return *this; }
  NLLLossOptions& reduction(Reduction r) { reduction_ = r; return *this; }
  NLLLossOptions& reduction(const std::string& name) { reduction_ = parse_reduction(name, "NLLLoss"); return *this; }
  const Tensor& weight() const { return weight_; }
  std::int64_t ignore_index() const { return ignore_index_; }
  Reduction reduction() const { return reduction_; }

 private:
  Tensor weight_;
  std::int64_t ignore_index_ = -100;
  Reduction reduction_ = Reduction::Mean;
};

struct BCEWithLogitsLossOptions {
  BCEWithLogitsLossOptions() = default;
  BCEWithLogitsLossOptions& reduction(Reduction r) { reduction_ = r; return *this; }
  /// Per-element rescaling weight (broadcasts to the input's shape); undefined: none.
  BCEWithLogitsLossOptions& weight(const Tensor& w) { weight_ = w; return *this; }
  /// Weight of positive examples per class (broadcasts along the last dim); undefined: none.
  BCEWithLogitsLossOptions& pos_weight(const Tensor& w) { pos_weight_ = w; return *this; }
  Reduction reduction() const { return reduction_; }
  const Tensor& weight() const { return weight_; }
  const Tensor& pos_weight() const { return pos_weight_; }

 private:
  Reduction reduction_ = Reduction::Mean;
  Tensor weight_;
  Tensor pos_weight_;
};

struct CrossEntropyLossOptions {
  CrossEntropyLossOptions() = default;
  /// Class weights [C] of the input's dtype; undefined: all 1.
  CrossEntropyLossOptions& weight(const Tensor& w) { weight_ = w; return *this; }
  CrossEntropyLossOptions& reduction(Reduction r) { reduction_ = r; return *this; }
  CrossEntropyLossOptions& reduction(const std::string& name) {
    reduction_ = parse_reduction(name, "CrossEntropyLoss");
    return *this;
  }
  /// Class-index targets equal to it contribute nothing (nor to Mean's divisor).
  CrossEntropyLossOptions& ignore_index(std::int64_t i) { ignore_index_ = i; return *this; }
  /// In [0, 1]: the share of the uniform distribution mixed into the target.
  CrossEntropyLossOptions& label_smoothing(double e) { label_smoothing_ = e; return *this; }
  const Tensor& weight() const { return weight_; }
  Reduction reduction() const { return reduction_; }
  std::int64_t ignore_index() const { return ignore_index_; }
  double label_smoothing() const { return label_smoothing_; }

 private:
  Tensor weight_;
  Reduction reduction_ = Reduction::Mean;
  std::int64_t ignore_index_ = -100;
  double label_smoothing_ = 0.0;
};

namespace functional {
// The functional forms take the modules' options, as libtorch's FuncOptions.
using L1LossFuncOptions = L1LossOptions;
using SmoothL1LossFuncOptions = SmoothL1LossOptions;
using HuberLossFuncOptions = HuberLossOptions;
using BinaryCrossEntropyFuncOptions = BCELossOptions;
using KLDivFuncOptions = KLDivLossOptions;
using NLLLossFuncOptions = NLLLossOptions;
using CrossEntropyFuncOptions = CrossEntropyLossOptions;

/// (input - target)^2, reduced. Shapes must be equal (else std::invalid_argument naming both).
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean);
/// See the file comment for these.
Tensor l1_loss(const Tensor& input, const Tensor& target, const L1LossFuncOptions& options = {});
Tensor smooth_l1_loss(const Tensor& input, const Tensor& target, const SmoothL1LossFuncOptions& options = {});
Tensor huber_loss(const Tensor& input, const Tensor& target, const HuberLossFuncOptions& options = {});
Tensor binary_cross_entropy(const Tensor& input, const Tensor& target,
                            const BinaryCrossEntropyFuncOptions& options = {});
Tensor kl_div(const Tensor& input, const Tensor& target, const KLDivFuncOptions& options = {});
Tensor nll_loss(const Tensor& input, const Tensor& target, const NLLLossFuncOptions& options = {});
/// See the file comment. weight / pos_weight may be undefined.
Tensor binary_cross_entropy_with_logits(const Tensor& input, const Tensor& target,
                                        const Tensor& weight = Tensor(), const Tensor& pos_weight = Tensor(),
                                        Reduction reduction = Reduction::Mean);
/// See the file comment. weight may be undefined.
Tensor cross_entropy(const Tensor& input, const Tensor& target, const Tensor& weight = Tensor(),
                     Reduction reduction = Reduction::Mean);
Tensor cross_entropy(const Tensor& input, const Tensor& target, const CrossEntropyFuncOptions& options);
}  // namespace functional

// The modules: forward(input, target) calls the functional form with the module's options.
#define SORIX_LOSS_MODULE(Name, Options)                                                        \
  class Name : public Module {                                                                  \
   public:                                                                                      \
    explicit Name(Options options = {}) : options_(std::move(options)) {}                      \
    using Module::forward;                                                                      \
    Tensor forward(const Tensor& input, const Tensor& target);                                  \
    Tensor operator()(const Tensor& input, const Tensor& target) { return forward(input, target); } \
    std::string name() const override { return #Name; }                                         \
    const Options& options() const { return options_; }                                         \
                                                                                                \
   private:                                                                                     \
    Options options_;                                                                           \
  };

SORIX_LOSS_MODULE(MSELoss, MSELossOptions)
SORIX_LOSS_MODULE(L1Loss, L1LossOptions)
SORIX_LOSS_MODULE(SmoothL1Loss, SmoothL1LossOptions)
SORIX_LOSS_MODULE(HuberLoss, HuberLossOptions)
SORIX_LOSS_MODULE(BCELoss, BCELossOptions)
SORIX_LOSS_MODULE(KLDivLoss, KLDivLossOptions)
SORIX_LOSS_MODULE(NLLLoss, NLLLossOptions)
SORIX_LOSS_MODULE(BCEWithLogitsLoss, BCEWithLogitsLossOptions)
SORIX_LOSS_MODULE(CrossEntropyLoss, CrossEntropyLossOptions)

#undef SORIX_LOSS_MODULE

}  // namespace sorix::nn
