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

}  // namespace sorix::nn
