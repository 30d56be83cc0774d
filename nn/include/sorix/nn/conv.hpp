#pragma once
// Convolutions, as torch::nn::Conv1d / Conv2d / ConvTranspose2d and their functional forms.
//
// Shapes (PyTorch's): Conv1d input [N, C_in, L] or unbatched [C_in, L], weight
// [C_out, C_in / groups, k]; Conv2d input [N, C_in, H, W] or [C_in, H, W], weight
// [C_out, C_in / groups, kh, kw]; ConvTranspose2d input [N, C_in, H, W] or [C_in, H, W], weight
// [C_in, C_out / groups, kh, kw]; bias [C_out]. Output size per dim:
//   conv:            (in + 2 * padding - dilation * (k - 1) - 1) / stride + 1
//   conv transposed: (in - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1
// padding may be kSame (stride 1 only; the output keeps the input's size, the odd extra row or
// column of padding goes after, as PyTorch) or kValid (no padding). Zero padding only.
// Dtypes: float32 or float64, the same for input, weight and bias.
//
// How it runs: the input is laid out as a column matrix (im2col: C_in * taps rows, one column
// per output position of every image) and the convolution is ONE product on the library's
// product kernel per group, W [C_out, C_in * taps] x columns; the transposed convolution is the
// adjoint (W^T x input, then col2im). Every step is a recorded op (column moves, matmul,
// permute, bias add), so gradients reach input, weight and bias and differentiate again.
// A 1x1 kernel with stride 1 and no padding skips im2col.
// Threading/determinism: the column moves run image/channel planes as parallel tasks (a copy, and
// a sum in one fixed order per element), and each product element is one fma chain in a fixed
// order (the weight gradient's over every image, in image order), so results are bit-identical
// for any thread count and on every CPU capability.
#include <cstdint>
#include <string>
#include <variant>

#include "sorix/core/tensor.hpp"
#include "sorix/nn/expanding_array.hpp"
#include "sorix/nn/module.hpp"

namespace sorix::nn {

/// Padding kinds besides explicit sizes: kSame (output size = input size, stride 1) and kValid (0).
struct SamePadding {};
struct ValidPadding {};
inline constexpr SamePadding kSame{};
inline constexpr ValidPadding kValid{};

template <std::size_t D>
using ConvPadding = std::variant<ExpandingArray<D>, SamePadding, ValidPadding>;

/// The options of conv1d/conv2d (torch::nn::functional::ConvFuncOptions).
template <std::size_t D>
struct ConvFuncOptions {
  ConvFuncOptions& bias(const Tensor& v) { bias_ = v; return *this; }
  ConvFuncOptions& stride(ExpandingArray<D> v) { stride_ = v; return *this; }
  ConvFuncOptions& padding(ExpandingArray<D> v) { padding_ = v; return *this; }
  ConvFuncOptions& padding(SamePadding v) { padding_ = v; return *this; }
  ConvFuncOptions& padding(ValidPadding v) { padding_ = v; return *this; }
  ConvFuncOptions& dilation(ExpandingArray<D> v) { dilation_ = v; return *this; }
  ConvFuncOptions& groups(std::int64_t v) { groups_ = v; return *this; }
  const Tensor& bias() const { return bias_; }
  const ExpandingArray<D>& stride() const { return stride_; }
  const ConvPadding<D>& padding() const { return padding_; }
  const ExpandingArray<D>& dilation() const { return dilation_; }
  std::int64_t groups() const { return groups_; }

 private:
  Tensor bias_;
  ExpandingArray<D> stride_ = 1;
  ConvPadding<D> padding_ = ExpandingArray<D>(0);
  ExpandingArray<D> dilation_ = 1;
  std::int64_t groups_ = 1;
};
using Conv1dFuncOptions = ConvFuncOptions<1>;
using Conv2dFuncOptions = ConvFuncOptions<2>;

/// The options of Conv1d/Conv2d (torch::nn::ConvOptions).
template <std::size_t D>
struct ConvOptions {
  ConvOptions(std::int64_t in_channels, std::int64_t out_channels, ExpandingArray<D> kernel_size)
      : in_channels_(in_channels), out_channels_(out_channels), kernel_size_(kernel_size) {}
  ConvOptions& stride(ExpandingArray<D> v) { stride_ = v; return *this; }
  ConvOptions& padding(ExpandingArray<D> v) { padding_ = v; return *this; }
  ConvOptions& padding(SamePadding v) { padding_ = v; return *this; }
  ConvOptions& padding(ValidPadding v) { padding_ = v; return *this; }
  ConvOptions& dilation(ExpandingArray<D> v) { dilation_ = v; return *this; }
  ConvOptions& groups(std::int64_t v) { groups_ = v; return *this; }
  ConvOptions& bias(bool v) { bias_ = v; return *this; }
  std::int64_t in_channels() const { return in_channels_; }
  std::int64_t out_channels() const { return out_channels_; }
  const ExpandingArray<D>& kernel_size() const { return kernel_size_; }
  const ExpandingArray<D>& stride() const { return stride_; }
  const ConvPadding<D>& padding() const { return padding_; }
  const ExpandingArray<D>& dilation() const { return dilation_; }
  std::int64_t groups() const { return groups_; }
  bool bias() const { return bias_; }

 private:
  std::int64_t in_channels_, out_channels_;
  ExpandingArray<D> kernel_size_;
  ExpandingArray<D> stride_ = 1;
  ConvPadding<D> padding_ = ExpandingArray<D>(0);
  ExpandingArray<D> dilation_ = 1;
  std::int64_t groups_ = 1;
  bool bias_ = true;
};
using Conv1dOptions = ConvOptions<1>;
using Conv2dOptions = ConvOptions<2>;

/// The options of conv_transpose2d (torch::nn::functional::ConvTranspose2dFuncOptions).
struct ConvTranspose2dFuncOptions {
  ConvTranspose2dFuncOptions& bias(const Tensor& v) { bias_ = v; return *this; }
  ConvTranspose2dFuncOptions& stride(ExpandingArray<2> v) { stride_ = v; return *this; }
  ConvTranspose2dFuncOptions& padding(ExpandingArray<2> v) { padding_ = v; return *this; }
  ConvTranspose2dFuncOptions& output_padding(ExpandingArray<2> v) { output_padding_ = v; return *this; }
  ConvTranspose2dFuncOptions& groups(std::int64_t v) { groups_ = v; return *this; }
  ConvTranspose2dFuncOptions& dilation(ExpandingArray<2> v) { dilation_ = v; return *this; }
  const Tensor& bias() const { return bias_; }
  const ExpandingArray<2>& stride() const { return stride_; }
  const ExpandingArray<2>& padding() const { return padding_; }
  const ExpandingArray<2>& output_padding() const { return output_padding_; }
  std::int64_t groups() const { return groups_; }
  const ExpandingArray<2>& dilation() const { return dilation_; }

 private:
  Tensor bias_;
  ExpandingArray<2> stride_ = 1, padding_ = 0, output_padding_ = 0;
  std::int64_t groups_ = 1;
  ExpandingArray<2> dilation_ = 1;
};

/// The options of ConvTranspose2d (torch::nn::ConvTranspose2dOptions).
struct ConvTranspose2dOptions {
  ConvTranspose2dOptions(std::int64_t in_channels, std::int64_t out_channels, ExpandingArray<2> kernel_size)
      : in_channels_(in_channels), out_channels_(out_channels), kernel_size_(kernel_size) {}
  ConvTranspose2dOptions& stride(ExpandingArray<2> v) { stride_ = v; return *this; }
  ConvTranspose2dOptions& padding(ExpandingArray<2> v) { padding_ = v; return *this; }
  ConvTranspose2dOptions& output_padding(ExpandingArray<2> v) { output_padding_ = v; return *this; }
  ConvTranspose2dOptions& groups(std::int64_t v) { groups_ = v; return *this; }
  ConvTranspose2dOptions& bias(bool v) { bias_ = v; return *this; }
  ConvTranspose2dOptions& dilation(ExpandingArray<2> v) { dilation_ = v; return *this; }
  std::int64_t in_channels() const { return in_channels_; }
  std::int64_t out_channels() const { return out_channels_; }
  const ExpandingArray<2>& kernel_size() const { return kernel_size_; }
  const ExpandingArray<2>& stride() const { return stride_; }
  const ExpandingArray<2>& padding() const { return padding_; }
  const ExpandingArray<2>& output_padding() const { return output_padding_; }
  std::int64_t groups() const { return groups_; }
  bool bias() const { return bias_; }
  const ExpandingArray<2>& dilation() const { return dilation_; }

 private:
  std::int64_t in_channels_, out_channels_;
  ExpandingArray<2> kernel_size_;
  ExpandingArray<2> stride_ = 1, padding_ = 0, output_padding_ = 0;
  std::int64_t groups_ = 1;
  bool bias_ = true;
  ExpandingArray<2> dilation_ = 1;
};

namespace functional {
using nn::Conv1dFuncOptions;
using nn::Conv2dFuncOptions;
using nn::ConvTranspose2dFuncOptions;

/// Errors (std::invalid_argument naming the op and the value): input of the wrong rank, weight
/// not [C_out, C_in / groups, k...], channels that do not match or groups that do not divide
/// them, stride / dilation < 1, padding < 0, kSame with stride != 1, an output size < 1, a bias
/// that is not [C_out], dtypes that differ or are not floating.
Tensor conv1d(const Tensor& input, const Tensor& weight, const Conv1dFuncOptions& options = {});
Tensor conv2d(const Tensor& input, const Tensor& weight, const Conv2dFuncOptions& options = {});
/// As above, plus output_padding >= max(stride, dilation) per dim, which throws.
Tensor conv_transpose2d(const Tensor& input, const Tensor& weight, const ConvTranspose2dFuncOptions& options = {});
}  // namespace functional

/// Conv1d and Conv2d: weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with
/// fan_in = C_in / groups * taps (PyTorch's kaiming_uniform_(a = sqrt(5)) default), from the
/// default generator. Bad options (channels or kernel < 1, stride or dilation < 1, padding < 0,
/// groups < 1 or not dividing both channel counts, kSame with stride != 1) throw
/// std::invalid_argument naming the layer and the value.
template <std::size_t D>
class ConvNd : public Module {
 public:
  explicit ConvNd(const ConvOptions<D>& options, Dtype dtype = Dtype::Float32);
  ConvNd(std::int64_t in_channels, std::int64_t out_channels, ExpandingArray<D> kernel_size)
      : ConvNd(ConvOptions<D>(in_channels, out_channels, kernel_size)) {}
  void reset_parameters();
  Tensor forward(const Tensor& input) override;
  std::string name() const override { return D == 1 ? "Conv1d" : "Conv2d"; }
  /// "1, 32, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1)" (PyTorch's text).
  std::string extra_repr() const override;
  const ConvOptions<D>& options() const { return options_; }

  Tensor weight;  // [C_out, C_in / groups, k...], registered as "weight"
  Tensor bias;    // [C_out], "bias"; undefined when options.bias(false)

 private:
  ConvOptions<D> options_;
};
using Conv1d = ConvNd<1>;
using Conv2d = ConvNd<2>;

/// ConvTranspose2d: weight [C_in, C_out / groups, kh, kw] and bias ~ U(-1/sqrt(fan_in), ...)
/// with PyTorch's fan_in for this weight (C_out / groups * kh * kw). Bad options throw as Conv2d's,
/// and output_padding must be < max(stride, dilation).
class ConvTranspose2d : public Module {
 public:
  explicit ConvTranspose2d(const ConvTranspose2dOptions& options, Dtype dtype = Dtype::Float32);
  ConvTranspose2d(std::int64_t in_channels, std::int64_t out_channels, ExpandingArray<2> kernel_size)
      : ConvTranspose2d(ConvTranspose2dOptions(in_channels, out_channels, kernel_size)) {}
  void reset_parameters();
  Tensor forward(const Tensor& input) override;
  std::string name() const override { return "ConvTranspose2d"; }
  std::string extra_repr() const override;
  const ConvTranspose2dOptions& options() const { return options_; }

  Tensor weight, bias;

 private:
  ConvTranspose2dOptions options_;
};

}  // namespace sorix::nn
