#pragma once
// Internal (not installed): Conv2d's 3 x 3 kernels of stride 1 in Winograd's F(2x2, 3x3) form
// (core's kernels/winograd.hpp defines the arithmetic): 2.25x fewer multiply-adds than the
// im2col product, forward and input gradient alike, for float32. The weight gradient stays the
// im2col product's (conv.cpp).
#include <cstddef>

#include "sorix_core/kernels/im2col.hpp"
#include "sorix/core/tensor.hpp"

namespace sorix::nn::detail {

/// Whether conv2d takes the Winograd path for this geometry: float32, a 3 x 3 kernel of stride and
/// dilation 1, padding at most 2 (its input gradient is then the same kind of convolution, padded
/// 2 - p), and at least kWinogradMinChannels input and output channels per group (fewer leave
/// the transforms, not the products, as the cost). Depends on nothing else (never the thread
/// count), so a layer's bits never change with the threads.
bool winograd_applies(Dtype dtype, const kernels::ConvGeometry& g, std::size_t in_per_group,
                      std::size_t out_per_group);

/// y [N, OC, OH, OW] = x [N, C, H, W] convolved with w [OC, C / groups, 3, 3] (+ b [OC] if defined),
/// geometry g (winograd_applies): not recorded. One image per task: thread-count invariant.
Tensor winograd_conv2d(const Tensor& x, const Tensor& w, const Tensor& b, const kernels::ConvGeometry& g,
                       std::size_t groups);

/// The input gradient [N, C, H, W] of winograd_conv2d's convolution for the output gradient grad
/// [N, OC, OH, OW]: the same F(2x2, 3x3) form over grad, padded 2 - p, with every kernel rotated by
/// 180 degrees and its channels swapped (not recorded).
Tensor winograd_conv2d_input_grad(const Tensor& grad, const Tensor& w, const kernels::ConvGeometry& g,
                                  std::size_t groups);

}  // namespace sorix::nn::detail
