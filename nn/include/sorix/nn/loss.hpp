#pragma once
// Loss functions, as torch::nn's: MSELoss, BCEWithLogitsLoss, CrossEntropyLoss, each as a module
// (forward(input, target) / operator()(input, target)) and as a function in nn::functional.
//
// Reduction: None gives the per-element (per-sample for cross entropy) losses, Sum their sum,
// Mean their mean (0-dim results). Mean over an empty input is NaN (as PyTorch).
// Dtypes: float32 or float64 inputs; targets of the input's dtype (class indices: int64).
// Threading/determinism: every reduction is a fixed-chunk sum combined in chunk order, so the
// result is bit-identical for any thread count.
//
//   mse_loss:  (x - y)^2
//   binary_cross_entropy_with_logits:  PyTorch's stable form
//       m = max(-x, 0);  l = (1 - y) x + lw * (log(exp(-m) + exp(-x - m)) + m),
//       lw = 1 + (pos_weight - 1) y  (1 without pos_weight);  then l *= weight.
//     Equal to max(x, 0) - x y + log1p(exp(-|x|)) without pos_weight; finite for |x| = 1000.
//     x, y: same shape; weight broadcasts to x's shape; pos_weight broadcasts along the last dim
//     ([C] for x [N, C]). Composite of Tensor ops: differentiable in every argument, any order.
//   cross_entropy: input [N, C] logits (or [C], one sample); target either int64 class indices
//     [N] (a 0-dim index for [C]) or class probabilities of input's shape and dtype.
//       index:  l_i = -w[t_i] * log_softmax(x_i)[t_i];  Mean divides by sum_i w[t_i]
//               (by N without weights), as PyTorch's nll_loss.
//       probs:  l_i = -sum_c w_c y_ic log_softmax(x_i)_c;  Mean divides by N (as PyTorch).
//     ONE fused op: stable log-softmax and NLL per row in one parallel pass over rows, the
//     per-row losses summed in fixed order. Gradient, by hand:
//       dx_ic = g_i / denom * (softmax_ic * sum_k w_k y_ik - w_c y_ic)   (y one-hot for indices)
//       dy_ic = -g_i / denom * w_c log_softmax_ic                         (probability targets)
//     Under create_graph the same formulas are built from Tensor ops, so double backward works.
//     The class weight is a constant (no gradient flows to it, as in PyTorch). Errors: a class
//     index outside [0, C) throws std::out_of_range naming the index and its position; shape or
//     dtype mismatches throw std::invalid_argument naming the shapes.
#include <string>

#include "sorix/core/tensor.hpp"
#include "sorix/nn/module.hpp"

namespace sorix::nn {

enum class Reduction { None, Mean, Sum };

/// "none", "mean", "sum" (printing).
const char* reduction_name(Reduction r);

struct MSELossOptions {
  MSELossOptions(Reduction r = Reduction::Mean) : reduction_(r) {}  // NOLINT: implicit, as PyTorch's
  MSELossOptions& reduction(Reduction r) { reduction_ = r; return *this; }
  Reduction reduction() const { return reduction_; }

 private:
  Reduction reduction_;
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
  const Tensor& weight() const { return weight_; }
  Reduction reduction() const { return reduction_; }

 private:
  Tensor weight_;
  Reduction reduction_ = Reduction::Mean;
};

namespace functional {
/// (input - target)^2, reduced. Shapes must be equal (else std::invalid_argument naming both).
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean);
/// See the file comment. weight / pos_weight may be undefined.
Tensor binary_cross_entropy_with_logits(const Tensor& input, const Tensor& target,
                                        const Tensor& weight = Tensor(), const Tensor& pos_weight = Tensor(),
                                        Reduction reduction = Reduction::Mean);
/// See the file comment. weight may be undefined.
Tensor cross_entropy(const Tensor& input, const Tensor& target, const Tensor& weight = Tensor(),
                     Reduction reduction = Reduction::Mean);
}  // namespace functional

class MSELoss : public Module {
 public:
  explicit MSELoss(MSELossOptions options = {}) : options_(options) {}
  using Module::forward;
  Tensor forward(const Tensor& input, const Tensor& target);
  Tensor operator()(const Tensor& input, const Tensor& target) { return forward(input, target); }
  std::string name() const override { return "MSELoss"; }
  const MSELossOptions& options() const { return options_; }

 private:
  MSELossOptions options_;
};

class BCEWithLogitsLoss : public Module {
 public:
  explicit BCEWithLogitsLoss(BCEWithLogitsLossOptions options = {}) : options_(std::move(options)) {}
  using Module::forward;
  Tensor forward(const Tensor& input, const Tensor& target);
  Tensor operator()(const Tensor& input, const Tensor& target) { return forward(input, target); }
  std::string name() const override { return "BCEWithLogitsLoss"; }
  const BCEWithLogitsLossOptions& options() const { return options_; }

 private:
  BCEWithLogitsLossOptions options_;
};

class CrossEntropyLoss : public Module {
 public:
  explicit CrossEntropyLoss(CrossEntropyLossOptions options = {}) : options_(std::move(options)) {}
  using Module::forward;
  Tensor forward(const Tensor& input, const Tensor& target);
  Tensor operator()(const Tensor& input, const Tensor& target) { return forward(input, target); }
  std::string name() const override { return "CrossEntropyLoss"; }
  const CrossEntropyLossOptions& options() const { return options_; }

 private:
  CrossEntropyLossOptions options_;
};

}  // namespace sorix::nn
