#pragma once
// nn::LayerNorm, nn::GroupNorm and nn::Dropout2d, as torch's, with their functional forms
// F::layer_norm, F::group_norm and F::dropout2d (FuncOptions as torch::nn::functional's).
//
//   layer_norm: y = (x - mean) / sqrt(var + eps) * weight + bias, the statistics over the last
//               normalized_shape.size() dims of x (biased variance), weight/bias of
//               normalized_shape (elementwise).
//   group_norm: x [N, C, *] viewed as [N, G, C/G * prod(*)]: the statistics per (sample, group),
//               weight/bias [C] per channel.
//   dropout2d:  in training, each channel (n, c) of [N, C, H, W] (or [C, H, W]) is zeroed as a
//               whole with probability p, the survivors scaled by 1/(1-p); eval: the identity.
//
// Dtypes: float32 or float64 (weight/bias of the input's dtype). The norms' normalisation is
// BatchNorm's fused op on x viewed as [1, rows, L] (each row's mean and biased variance
// accumulated in double in a fixed order, one fused backward; composed ops for fewer than 16
// rows, chosen by shape), the affine part broadcast products and sums, so their values and gradients (twice differentiable) are bit-identical for any thread
// count and on every CPU capability. Dropout2d draws one Philox word per channel on the counters the call reserves
// (as F::dropout on an [N, C] tensor of ones), so its mask depends only on (seed, offset, channel).
#include <cstdint>
#include <string>
#include <vector>

#include "sorix/core/generator.hpp"
#include "sorix/nn/dropout.hpp"
#include "sorix/nn/module.hpp"

namespace sorix::nn {

// ---- LayerNorm ---------------------------------------------------------------------------------

struct LayerNormOptions {
  LayerNormOptions(std::vector<std::int64_t> normalized_shape)  // NOLINT: implicit, as PyTorch's
      : normalized_shape_(std::move(normalized_shape)) {}
  LayerNormOptions& normalized_shape(std::vector<std::int64_t> v) { normalized_shape_ = std::move(v); return *this; }
  LayerNormOptions& eps(double v) { eps_ = v; return *this; }
  LayerNormOptions& elementwise_affine(bool v) { elementwise_affine_ = v; return *this; }
  const std::vector<std::int64_t>& normalized_shape() const { return normalized_shape_; }
  double eps() const { return eps_; }
  bool elementwise_affine() const { return elementwise_affine_; }

 private:
  std::vector<std::int64_t> normalized_shape_;
  double eps_ = 1e-5;
  bool elementwise_affine_ = true;
};

// ---- GroupNorm ---------------------------------------------------------------------------------

struct GroupNormOptions {
  GroupNormOptions(std::int64_t num_groups, std::int64_t num_channels)
      : num_groups_(num_groups), num_channels_(num_channels) {}
  GroupNormOptions& num_groups(std::int64_t v) { num_groups_ = v; return *this; }
  GroupNormOptions& num_channels(std::int64_t v) { num_channels_ = v; return *this; }
  GroupNormOptions& eps(double v) { eps_ = v; return *this; }
  GroupNormOptions& affine(bool v) { affine_ = v; return *this; }
  std::int64_t num_groups() const { return num_groups_; }
  std::int64_t num_channels() const { return num_channels_; }
  double eps() const { return eps_; }
  bool affine() const { return affine_; }

 private:
  std::int64_t num_groups_;
  std::int64_t num_channels_;
  double eps_ = 1e-5;
  bool affine_ = true;
};

// ---- Dropout2d ---------------------------------------------------------------------------------

using Dropout2dOptions = DropoutOptions;

namespace functional {

struct LayerNormFuncOptions {
  LayerNormFuncOptions(std::vector<std::int64_t> normalized_shape)  // NOLINT: implicit, as PyTorch's
      : normalized_shape_(std::move(normalized_shape)) {}
  LayerNormFuncOptions& normalized_shape(std::vector<std::int64_t> v) { normalized_shape_ = std::move(v); return *this; }
  LayerNormFuncOptions& weight(const Tensor& v) { weight_ = v; return *this; }
  LayerNormFuncOptions& bias(const Tensor& v) { bias_ = v; return *this; }
  LayerNormFuncOptions& eps(double v) { eps_ = v; return *this; }
  const std::vector<std::int64_t>& normalized_shape() const { return normalized_shape_; }
  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }
  double eps() const { return eps_; }

 private:
  std::vector<std::int64_t> normalized_shape_;
  Tensor weight_, bias_;
  double eps_ = 1e-5;
};

struct GroupNormFuncOptions {
  GroupNormFuncOptions(std::int64_t num_groups) : num_groups_(num_groups) {}  // NOLINT: implicit, as PyTorch's
  GroupNormFuncOptions& num_groups(std::int64_t v) { num_groups_ = v; return *this; }
  GroupNormFuncOptions& weight(const Tensor& v) { weight_ = v; return *this; }
  GroupNormFuncOptions& bias(const Tensor& v) { bias_ = v; return *this; }
  GroupNormFuncOptions& eps(double v) { eps_ = v; return *this; }
  std::int64_t num_groups() const { return num_groups_; }
  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }
  double eps() const { return eps_; }

 private:
  std::int64_t num_groups_;
  Tensor weight_, bias_;
  double eps_ = 1e-5;
};

struct Dropout2dFuncOptions {
  Dropout2dFuncOptions& p(double v) { p_ = v; return *this; }
  Dropout2dFuncOptions& training(bool v) { training_ = v; return *this; }
  /// nullptr: the default generator (the one manual_seed seeds).
  Dropout2dFuncOptions& generator(Generator* v) { generator_ = v; return *this; }
  double p() const { return p_; }
  bool training() const { return training_; }
  Generator* generator() const { return generator_; }

 private:
  double p_ = 0.5;
  bool training_ = true;
  Generator* generator_ = nullptr;
};

/// x's trailing dims must equal normalized_shape (non-empty, sizes >= 0); weight and bias
/// (optional) of that shape and x's dtype; eps >= 0. Anything else throws std::invalid_argument
/// naming layer_norm and the value.
Tensor layer_norm(const Tensor& input, const LayerNormFuncOptions& options);
/// input [N, C, *] with C divisible by num_groups (>= 1); weight and bias (optional) [C].
Tensor group_norm(const Tensor& input, const GroupNormFuncOptions& options);
/// input [N, C, H, W] or unbatched [C, H, W]; p in [0, 1]. training false or p == 0 returns
/// input itself; p == 1 gives zeros (and zero gradients).
Tensor dropout2d(const Tensor& input, const Dropout2dFuncOptions& options = {});

}  // namespace functional

class LayerNorm : public Module {
 public:
  /// weight = 1, bias = 0 of normalized_shape (parameters, when elementwise_affine).
  explicit LayerNorm(const LayerNormOptions& options, Dtype dtype = Dtype::Float32);
  Tensor forward(const Tensor& input) override;
  std::string name() const override { return "LayerNorm"; }
  /// "(4, 5), eps=1e-05, elementwise_affine=True" (PyTorch's text).
  std::string extra_repr() const override;
  const LayerNormOptions& options() const { return options_; }
  void reset_parameters();

  Tensor weight, bias;

 private:
  LayerNormOptions options_;
};

class GroupNorm : public Module {
 public:
  /// num_groups >= 1 dividing num_channels >= 0; weight = 1, bias = 0, [num_channels] (when affine).
  explicit GroupNorm(const GroupNormOptions& options, Dtype dtype = Dtype::Float32);
  GroupNorm(std::int64_t num_groups, std::int64_t num_channels) : GroupNorm(GroupNormOptions(num_groups, num_channels)) {}
  /// input [N, num_channels, *].
  Tensor forward(const Tensor& input) override;
  std::string name() const override { return "GroupNorm"; }
  /// "2, 6, eps=1e-05, affine=True"
  std::string extra_repr() const override;
  const GroupNormOptions& options() const { return options_; }
  void reset_parameters();

  Tensor weight, bias;

 private:
  GroupNormOptions options_;
};

class Dropout2d : public Module {
 public:
  explicit Dropout2d(const Dropout2dOptions& options = {});
  explicit Dropout2d(double p) : Dropout2d(Dropout2dOptions(p)) {}
  Tensor forward(const Tensor& input) override;
  std::string name() const override { return "Dropout2d"; }
  /// "p=0.5"
  std::string extra_repr() const override;
  const Dropout2dOptions& options() const { return options_; }

 private:
  Dropout2dOptions options_;
};

}  // namespace sorix::nn
