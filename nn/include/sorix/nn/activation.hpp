#pragma once
// Activation and reshaping modules, as torch::nn's: each forwards to the op of
// sorix/autograd/ops.hpp (elementwise ops run as fixed chunks: bit-identical for any thread
// count; softmax/log_softmax are numerically stable). They hold no parameters.
#include <cstdint>
#include <string>
#include <utility>

#include "sorix/nn/module.hpp"

namespace sorix::nn {

/// max(x, 0). Gradient 0 at x == 0 (as PyTorch).
class ReLU : public Module {
 public:
  Tensor forward(const Tensor& input) override;
  std::string name() const override { return "ReLU"; }
};

struct LeakyReLUOptions {
  LeakyReLUOptions() = default;
  LeakyReLUOptions& negative_slope(double v) { negative_slope_ = v; return *this; }
  double negative_slope() const { return negative_slope_; }

 private:
  double negative_slope_ = 0.01;
};

/// x for x > 0, negative_slope * x otherwise.
class LeakyReLU : public Module {
 public:
  explicit LeakyReLU(const LeakyReLUOptions& options = {}) : options_(options) {}
  Tensor forward(const Tensor& input) override;
  std::string name() const override { return "LeakyReLU"; }
  /// "negative_slope=0.01"
  std::string extra_repr() const override;
  const LeakyReLUOptions& options() const { return options_; }

 private:
  LeakyReLUOptions options_;
};

/// 1 / (1 + exp(-x)).
class Sigmoid : public Module {
 public:
  Tensor forward(const Tensor& input) override;
  std::string name() const override { return "Sigmoid"; }
};

class Tanh : public Module {
 public:
  Tensor forward(const Tensor& input) override;
  std::string name() const override { return "Tanh"; }
};

struct SoftmaxOptions {
  SoftmaxOptions(std::int64_t dim) : dim_(dim) {}  // NOLINT: implicit, as PyTorch's
  SoftmaxOptions& dim(std::int64_t v) { dim_ = v; return *this; }
  std::int64_t dim() const { return dim_; }

 private:
  std::int64_t dim_;
};
using LogSoftmaxOptions = SoftmaxOptions;

/// exp(x - max) / sum(exp(x - max)) along dim.
class Softmax : public Module {
 public:
  explicit Softmax(const SoftmaxOptions& options) : options_(options) {}
  explicit Softmax(std::int64_t dim) : options_(dim) {}
  Tensor forward(const Tensor& input) override;
  std::string name() const override { return "Softmax"; }
  /// "dim=1"
  std::string extra_repr() const override;
  const SoftmaxOptions& options() const { return options_; }

 private:
  SoftmaxOptions options_;
};

/// log(softmax(x)) along dim, computed stably (x - max - log(sum(exp(x - max)))).
class LogSoftmax : public Module {
 public:
  explicit LogSoftmax(const LogSoftmaxOptions& options) : options_(options) {}
  explicit LogSoftmax(std::int64_t dim) : options_(dim) {}
  Tensor forward(const Tensor& input) override;
  std::string name() const override { return "LogSoftmax"; }
  std::string extra_repr() const override;
  const LogSoftmaxOptions& options() const { return options_; }

 private:
  LogSoftmaxOptions options_;
};

struct FlattenOptions {
  FlattenOptions() = default;
  FlattenOptions& start_dim(std::int64_t v) { start_dim_ = v; return *this; }
  FlattenOptions& end_dim(std::int64_t v) { end_dim_ = v; return *this; }
  std::int64_t start_dim() const { return start_dim_; }
  std::int64_t end_dim() const { return end_dim_; }

 private:
  std::int64_t start_dim_ = 1;
  std::int64_t end_dim_ = -1;
};

/// Merges dims start_dim..end_dim (default: all but the batch dim: [N, 1, 28, 28] -> [N, 784]).
class Flatten : public Module {
 public:
  explicit Flatten(const FlattenOptions& options = {}) : options_(options) {}
  Flatten(std::int64_t start_dim, std::int64_t end_dim = -1)
      : options_(FlattenOptions().start_dim(start_dim).end_dim(end_dim)) {}
  Tensor forward(const Tensor& input) override;
  std::string name() const override { return "Flatten"; }
  /// "start_dim=1, end_dim=-1"
  std::string extra_repr() const override;
  const FlattenOptions& options() const { return options_; }

 private:
  FlattenOptions options_;
};

struct UnflattenOptions {
  UnflattenOptions(std::int64_t dim, Shape sizes) : dim_(dim), sizes_(std::move(sizes)) {}
  UnflattenOptions& dim(std::int64_t v) { dim_ = v; return *this; }
  UnflattenOptions& sizes(Shape v) { sizes_ = std::move(v); return *this; }
  std::int64_t dim() const { return dim_; }
  const Shape& sizes() const { return sizes_; }

 private:
  std::int64_t dim_;
  Shape sizes_;
};

/// Splits dim `dim` into `sizes` (one may be -1): Unflatten(1, {1, 28, 28}) turns [N, 784] into
/// [N, 1, 28, 28]. A view when the input's strides allow one. Sizes whose product does not match
/// the dim throw std::invalid_argument naming both.
class Unflatten : public Module {
 public:
  explicit Unflatten(const UnflattenOptions& options) : options_(options) {}
  Unflatten(std::int64_t dim, Shape sizes) : options_(dim, std::move(sizes)) {}
  Tensor forward(const Tensor& input) override;
  std::string name() const override { return "Unflatten"; }
  /// "dim=1, unflattened_size=(1, 28, 28)"
  std::string extra_repr() const override;
  const UnflattenOptions& options() const { return options_; }

 private:
  UnflattenOptions options_;
};

/// Returns its input (a placeholder stage, as torch::nn::Identity).
class Identity : public Module {
 public:
  Tensor forward(const Tensor& input) override { return input; }
  std::string name() const override { return "Identity"; }
};

// ---- GELU, SiLU, ELU, Softplus, Hardtanh (nn/src/activation_functions.cpp) ----------------------
// float32 / float64; forward and gradient are kernel-layer functors side by side
// (core/internal/sorix_core/kernels/activation_ops.hpp), the same bits on every CPU capability and thread count.
// Under create_graph the gradient is composed from differentiable ops instead (equal to rounding).

struct GELUOptions {
  GELUOptions() = default;
  /// "none" (exact, erf) or "tanh" (the tanh approximation); others throw when used.
  GELUOptions& approximate(std::string v) { approximate_ = std::move(v); return *this; }
  const std::string& approximate() const { return approximate_; }

 private:
  std::string approximate_ = "none";
};

/// GELU: x Phi(x) = x/2 (1 + erf(x / sqrt 2)); "tanh": x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
/// Smooth: no kinks. gelu(-0) = -0 (exact), +0 (tanh). The exact form uses erfc in the left tail,
/// where PyTorch's 1 + erf cancels (float32 at x = -4: sorix 1e-6 relative, PyTorch 1e-3). approximate other than "none"/"tanh" throws
/// std::invalid_argument naming GELU and the value.
class GELU : public Module {
 public:
  explicit GELU(const GELUOptions& options = {});
  Tensor forward(const Tensor& input) override;
  std::string name() const override { return "GELU"; }
  /// "approximate='none'"
  std::string extra_repr() const override;
  const GELUOptions& options() const { return options_; }

 private:
  GELUOptions options_;
};

/// SiLU (swish): x sigmoid(x) = x / (1 + e^-x). Smooth; silu(-0) = -0, silu(-inf) = NaN (as PyTorch).
class SiLU : public Module {
 public:
  Tensor forward(const Tensor& input) override;
  std::string name() const override { return "SiLU"; }
};

struct ELUOptions {
  ELUOptions() = default;
  ELUOptions& alpha(double v) { alpha_ = v; return *this; }
  double alpha() const { return alpha_; }

 private:
  double alpha_ = 1.0;
};

/// ELU: x for x > 0, alpha expm1(x) for x <= 0 (elu(-0) = -0; PyTorch 1.13's exp(x) - 1 gives
/// +0). Gradient at 0: alpha (the left side, as PyTorch). A non-finite alpha throws
/// std::invalid_argument naming ELU and the value.
class ELU : public Module {
 public:
  explicit ELU(const ELUOptions& options = {});
  Tensor forward(const Tensor& input) override;
  std::string name() const override { return "ELU"; }
  /// "alpha=1"
  std::string extra_repr() const override;
  const ELUOptions& options() const { return options_; }

 private:
  ELUOptions options_;
};

struct SoftplusOptions {
  SoftplusOptions() = default;
  SoftplusOptions& beta(double v) { beta_ = v; return *this; }
  SoftplusOptions& threshold(double v) { threshold_ = v; return *this; }
  double beta() const { return beta_; }
  double threshold() const { return threshold_; }

 private:
  double beta_ = 1.0;
  double threshold_ = 20.0;
};

/// Softplus: log(1 + e^(beta x)) / beta, and x itself where beta x > threshold (PyTorch's switch,
/// a jump of at most e^-threshold / beta). Gradient sigmoid(beta x), 1 past the threshold.
/// beta <= 0 or NaN, or a NaN threshold, throws std::invalid_argument naming Softplus and the value.
class Softplus : public Module {
 public:
  explicit Softplus(const SoftplusOptions& options = {});
  Tensor forward(const Tensor& input) override;
  std::string name() const override { return "Softplus"; }
  /// "beta=1, threshold=20"
  std::string extra_repr() const override;
  const SoftplusOptions& options() const { return options_; }

 private:
  SoftplusOptions options_;
};

struct HardtanhOptions {
  HardtanhOptions() = default;
  HardtanhOptions& min_val(double v) { min_val_ = v; return *this; }
  HardtanhOptions& max_val(double v) { max_val_ = v; return *this; }
  double min_val() const { return min_val_; }
  double max_val() const { return max_val_; }

 private:
  double min_val_ = -1.0;
  double max_val_ = 1.0;
};

/// Hardtanh: x clamped to [min_val, max_val] (NaN stays NaN). Gradient 1 strictly inside, 0 at
/// the bounds and beyond (as PyTorch). min_val > max_val (or NaN) throws std::invalid_argument
/// naming Hardtanh and both values.
class Hardtanh : public Module {
 public:
  explicit Hardtanh(const HardtanhOptions& options = {});
  Tensor forward(const Tensor& input) override;
  std::string name() const override { return "Hardtanh"; }
  /// "min_val=-1, max_val=1"
  std::string extra_repr() const override;
  const HardtanhOptions& options() const { return options_; }

 private:
  HardtanhOptions options_;
};

namespace functional {
using GELUFuncOptions = GELUOptions;
using ELUFuncOptions = ELUOptions;
using SoftplusFuncOptions = SoftplusOptions;
using HardtanhFuncOptions = HardtanhOptions;
/// The modules' ops (their checks name the function: "gelu", "elu", "softplus", "hardtanh").
/// float32/float64, as PyTorch 1.13; hardtanh also takes int32/int64 (and uint8 with limits >= 0),
/// keeping the dtype, its bounds truncated toward zero into it.
Tensor gelu(const Tensor& input, const GELUFuncOptions& options = {});
Tensor silu(const Tensor& input);
Tensor elu(const Tensor& input, const ELUFuncOptions& options = {});
Tensor softplus(const Tensor& input, const SoftplusFuncOptions& options = {});
Tensor hardtanh(const Tensor& input, const HardtanhFuncOptions& options = {});
}  // namespace functional

}  // namespace sorix::nn
