#pragma once
// Internal (not installed): a Conv2d whose output goes straight into a BatchNorm2d + ReLU +
// MaxPool2d(2) of a Sequential, run as one recorded op with it (Sequential::forward). The
// convolution's output is then only the BatchNorm's input: the fused op's backward never writes
// the BatchNorm's input gradient for the whole batch (12.8 MB for the CNN's first layer) to read
// it back in the convolution's weight gradient. It makes each image's gradient in the core's
// cache and multiplies it into the weight gradient there, the same values in the same chains:
// the same bits as the modules run one by one.
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "sorix/nn/conv.hpp"
#include "sorix/core/tensor.hpp"

namespace sorix::nn::fusion {

/// Writes image n's gradient of the convolution's output, [OC, OH * OW] in the output's dtype,
/// into `out`.
using ImageGrad = std::function<void(std::size_t n, void* out)>;

/// Called by a convolution's task with image n's output planes [OC, OH * OW] right after it
/// wrote them, while they are in the core's cache.
using ImageOutput = std::function<void(std::size_t n, const void* planes)>;

/// What the fused op's backward keeps of the convolution. Leaves (the weight and bias) are held
/// as autograd::SavedTensor holds them (weakly: a gradient's graph that reaches the node must not
/// keep its own leaf alive), and a tensor changed in place since the forward is refused.
struct ConvGrads {
  /// The weight and bias gradients (undefined where not required) from the output's gradient
  /// given image by image.
  std::function<std::pair<Tensor, Tensor>(const ImageGrad& grad)> param_grads;
  /// The output again, as the recorded convolution of the same input (create_graph: the
  /// gradients as recorded ops, differentiable again in the weight and bias). The same bits.
  std::function<Tensor()> recorded_output;
  bool has_bias = false;
};

/// What the fused op needs of the convolution (conv2d_feeding_batchnorm).
struct ConvFeed {
  /// The convolution's output, not recorded: the fused op's input.
  Tensor output;
  /// Each output plane's moments as BatchNorm's statistics take them (kernels::bn::PlaneMoments,
  /// [N * OC] each), made by the convolution's tasks from the planes just written (so the
  /// statistics need no pass over the output); empty where they were not made (planes shorter
  /// than kernels::bn::kPlaneMomentsFrom, or the batch's columns path).
  std::vector<double> plane_sum, plane_sq, plane_dev;
  /// The convolution's weight and bias (bias undefined without one): inputs of the fused op.
  Tensor weight, bias;
  std::shared_ptr<const ConvGrads> grads;
};

/// conv's forward of x when the fused op applies to it: grad mode on, x [N, C, H, W] float not
/// requiring grad (the input gradient would need the whole output gradient), the weight or bias
/// requiring grad, and a convolution that is not 1 x 1, Winograd's or depthwise (those keep
/// their own gradients). nullopt otherwise: the modules then run one by one.
std::optional<ConvFeed> conv2d_feeding_batchnorm(const Conv2d& conv, const Tensor& x);

}  // namespace sorix::nn::fusion
