#pragma once
// Pooling layers, as torch::nn::MaxPool1d / MaxPool2d / AvgPool2d / AdaptiveAvgPool2d and their
// functional forms.
//
// Shapes: 1-d layers take [N, C, L] or [C, L]; 2-d layers [N, C, H, W] or [C, H, W]. Output size
// per dim: (in + 2 * padding - dilation * (k - 1) - 1) / stride + 1, rounded up with ceil_mode
// (a last window that would start in the right padding is dropped, as PyTorch). stride defaults
// to kernel_size. Adaptive pooling splits each dim into output_size windows
// [floor(i * in / out), ceil((i + 1) * in / out)).
// Max pooling: padded taps never win; a NaN wins (propagates); the indices (int64, from
// max_pool*_with_indices or MaxPool*::forward_with_indices) are offsets into each input plane
// (h * W + w), as PyTorch's. Gradient: to the element each index names (summed where windows
// overlap). Average pooling divides by the window's size (with the padding counted when
// count_include_pad) or by divisor_override.
// Dtypes: float32 or float64. Errors (std::invalid_argument naming the op and the value): wrong
// input rank, kernel/stride/dilation < 1, padding < 0 or above half the kernel, an output size < 1.
// Threading/determinism: planes are parallel tasks, each computed serially in one fixed order, so
// results (and gradients, summed in output order) are bit-identical for any thread count and CPU.
// Gradients are recorded ops, so they differentiate again.
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "sorix/core/tensor.hpp"
#include "sorix/nn/expanding_array.hpp"
#include "sorix/nn/module.hpp"

namespace sorix::nn {

template <std::size_t D>
struct MaxPoolOptions {
  MaxPoolOptions(ExpandingArray<D> kernel_size) : kernel_size_(kernel_size), stride_(kernel_size) {}  // NOLINT
  MaxPoolOptions& kernel_size(ExpandingArray<D> v) { kernel_size_ = v; return *this; }
  MaxPoolOptions& stride(ExpandingArray<D> v) { stride_ = v; return *this; }
  MaxPoolOptions& padding(ExpandingArray<D> v) { padding_ = v; return *this; }
  MaxPoolOptions& dilation(ExpandingArray<D> v) { dilation_ = v; return *this; }
  MaxPoolOptions& ceil_mode(bool v) { ceil_mode_ = v; return *this; }
  const ExpandingArray<D>& kernel_size() const { return kernel_size_; }
  const ExpandingArray<D>& stride() const { return stride_; }
  const ExpandingArray<D>& padding() const { return padding_; }
  const ExpandingArray<D>& dilation() const { return dilation_; }
  bool ceil_mode() const { return ceil_mode_; }

 private:
  ExpandingArray<D> kernel_size_, stride_;
  ExpandingArray<D> padding_ = 0, dilation_ = 1;
  bool ceil_mode_ = false;
};
using MaxPool1dOptions = MaxPoolOptions<1>;
using MaxPool2dOptions = MaxPoolOptions<2>;

template <std::size_t D>
struct AvgPoolOptions {
  AvgPoolOptions(ExpandingArray<D> kernel_size) : kernel_size_(kernel_size), stride_(kernel_size) {}  // NOLINT
  AvgPoolOptions& kernel_size(ExpandingArray<D> v) { kernel_size_ = v; return *this; }
  AvgPoolOptions& stride(ExpandingArray<D> v) { stride_ = v; return *this; }
  AvgPoolOptions& padding(ExpandingArray<D> v) { padding_ = v; return *this; }
  AvgPoolOptions& ceil_mode(bool v) { ceil_mode_ = v; return *this; }
  AvgPoolOptions& count_include_pad(bool v) { count_include_pad_ = v; return *this; }
  AvgPoolOptions& divisor_override(std::optional<std::int64_t> v) { divisor_override_ = v; return *this; }
  const ExpandingArray<D>& kernel_size() const { return kernel_size_; }
  const ExpandingArray<D>& stride() const { return stride_; }
  const ExpandingArray<D>& padding() const { return padding_; }
  bool ceil_mode() const { return ceil_mode_; }
  bool count_include_pad() const { return count_include_pad_; }
  std::optional<std::int64_t> divisor_override() const { return divisor_override_; }

 private:
  ExpandingArray<D> kernel_size_, stride_;
  ExpandingArray<D> padding_ = 0;
  bool ceil_mode_ = false, count_include_pad_ = true;
  std::optional<std::int64_t> divisor_override_;
};
using AvgPool1dOptions = AvgPoolOptions<1>;
using AvgPool2dOptions = AvgPoolOptions<2>;

template <std::size_t D>
struct AdaptiveAvgPoolOptions {
  AdaptiveAvgPoolOptions(ExpandingArray<D> output_size) : output_size_(output_size) {}  // NOLINT
  AdaptiveAvgPoolOptions& output_size(ExpandingArray<D> v) { output_size_ = v; return *this; }
  const ExpandingArray<D>& output_size() const { return output_size_; }

 private:
  ExpandingArray<D> output_size_;
};
using AdaptiveAvgPool1dOptions = AdaptiveAvgPoolOptions<1>;
using AdaptiveAvgPool2dOptions = AdaptiveAvgPoolOptions<2>;

namespace functional {
using MaxPool1dFuncOptions = MaxPool1dOptions;
using MaxPool2dFuncOptions = MaxPool2dOptions;
using AvgPool1dFuncOptions = AvgPool1dOptions;
using AvgPool2dFuncOptions = AvgPool2dOptions;
using AdaptiveAvgPool1dFuncOptions = AdaptiveAvgPool1dOptions;
using AdaptiveAvgPool2dFuncOptions = AdaptiveAvgPool2dOptions;

Tensor max_pool1d(const Tensor& input, const MaxPool1dFuncOptions& options);
Tensor max_pool2d(const Tensor& input, const MaxPool2dFuncOptions& options);
/// (output, indices): indices int64, offsets into each input plane.
std::pair<Tensor, Tensor> max_pool1d_with_indices(const Tensor& input, const MaxPool1dFuncOptions& options);
std::pair<Tensor, Tensor> max_pool2d_with_indices(const Tensor& input, const MaxPool2dFuncOptions& options);
Tensor avg_pool1d(const Tensor& input, const AvgPool1dFuncOptions& options);
Tensor avg_pool2d(const Tensor& input, const AvgPool2dFuncOptions& options);
Tensor adaptive_avg_pool1d(const Tensor& input, const AdaptiveAvgPool1dFuncOptions& options);
Tensor adaptive_avg_pool2d(const Tensor& input, const AdaptiveAvgPool2dFuncOptions& options);
}  // namespace functional

template <std::size_t D>
class MaxPoolNd : public Module {
 public:
  explicit MaxPoolNd(const MaxPoolOptions<D>& options);
  Tensor forward(const Tensor& input) override;
  std::pair<Tensor, Tensor> forward_with_indices(const Tensor& input);
  std::string name() const override { return D == 1 ? "MaxPool1d" : "MaxPool2d"; }
  std::string extra_repr() const override;
  const MaxPoolOptions<D>& options() const { return options_; }

 private:
  MaxPoolOptions<D> options_;
};
using MaxPool1d = MaxPoolNd<1>;
using MaxPool2d = MaxPoolNd<2>;

template <std::size_t D>
class AvgPoolNd : public Module {
 public:
  explicit AvgPoolNd(const AvgPoolOptions<D>& options);
  Tensor forward(const Tensor& input) override;
  std::string name() const override { return D == 1 ? "AvgPool1d" : "AvgPool2d"; }
  std::string extra_repr() const override;
  const AvgPoolOptions<D>& options() const { return options_; }

 private:
  AvgPoolOptions<D> options_;
};
using AvgPool1d = AvgPoolNd<1>;
using AvgPool2d = AvgPoolNd<2>;

template <std::size_t D>
class AdaptiveAvgPoolNd : public Module {
 public:
  explicit AdaptiveAvgPoolNd(const AdaptiveAvgPoolOptions<D>& options);
  Tensor forward(const Tensor& input) override;
  std::string name() const override { return D == 1 ? "AdaptiveAvgPool1d" : "AdaptiveAvgPool2d"; }
  std::string extra_repr() const override;
  const AdaptiveAvgPoolOptions<D>& options() const { return options_; }

 private:
  AdaptiveAvgPoolOptions<D> options_;
};
using AdaptiveAvgPool1d = AdaptiveAvgPoolNd<1>;
using AdaptiveAvgPool2d = AdaptiveAvgPoolNd<2>;

}  // namespace sorix::nn
