#pragma once
// nn::Linear: y = x W^T + b, as torch::nn::Linear.
//
// Shapes: x is [in] (1-D, gives [out]), [N, in], or [..., in] (leading dims flattened into rows,
// restored in the output); weight is [out, in]; bias is [out]. Dtypes: float32 or float64, the
// same for x, weight and bias (a mismatch throws std::invalid_argument naming both).
//
// functional::linear is ONE fused autograd op: the forward is one deterministic GEMM with the bias
// preloaded into the output (beta = 1), so bias and product are added in the same pass; the
// backward is dx = g W and dW = g^T x (GEMMs reading the transposes in place, never materialised)
// and db = the column sums of g (fixed order over the rows). Under create_graph the backward is
// written with Tensor ops (matmul, t, sum), so second derivatives work.
// Threading/determinism: products are cut into fixed output blocks and column sums into fixed
// column blocks, so results are bit-identical for any thread count.
#include <cstdint>
#include <string>

#include "sorix/core/tensor.hpp"
#include "sorix/nn/module.hpp"

namespace sorix::nn {

struct LinearOptions {
  LinearOptions(std::int64_t in_features, std::int64_t out_features)
      : in_features_(in_features), out_features_(out_features) {}
  LinearOptions& in_features(std::int64_t v) { in_features_ = v; return *this; }
  LinearOptions& out_features(std::int64_t v) { out_features_ = v; return *this; }
  LinearOptions& bias(bool v) { bias_ = v; return *this; }
  std::int64_t in_features() const { return in_features_; }
  std::int64_t out_features() const { return out_features_; }
  bool bias() const { return bias_; }

 private:
  std::int64_t in_features_;
  std::int64_t out_features_;
  bool bias_ = true;
};

namespace functional {
/// y = x W^T + b (bias may be an undefined Tensor: no bias). See the file comment for shapes.
/// x's last dim != W's in_features throws std::invalid_argument naming both shapes.
Tensor linear(const Tensor& input, const Tensor& weight, const Tensor& bias = Tensor());
}  // namespace functional

class Linear : public Module {
 public:
  /// Weight and bias ~ U(-1/sqrt(in), 1/sqrt(in)) (PyTorch's default: kaiming_uniform_ with
  /// a = sqrt(5)), drawn from the default generator. Negative sizes throw std::invalid_argument.
  /// dtype: float32 unless given.
  explicit Linear(const LinearOptions& options, Dtype dtype = Dtype::Float32);
  Linear(std::int64_t in_features, std::int64_t out_features)
      : Linear(LinearOptions(in_features, out_features)) {}

  /// Re-draws weight and bias as the constructor does (values change in place).
  void reset_parameters();
  Tensor forward(const Tensor& input) override;
  std::string name() const override { return "Linear"; }
  /// "in_features=784, out_features=128, bias=True" (PyTorch's text).
  std::string extra_repr() const override;
  const LinearOptions& options() const { return options_; }

  /// [out_features, in_features]; registered as "weight".
  Tensor weight;
  /// [out_features]; registered as "bias"; undefined when options.bias(false).
  Tensor bias;

 private:
  LinearOptions options_;
};

}  // namespace sorix::nn
