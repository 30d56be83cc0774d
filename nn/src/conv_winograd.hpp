#pragma once
// Internal (not installed): Conv2d's 3 x 3 kernels of stride 1 in Winograd's F(2x2, 3x3) form
// (core's kernels/winograd.hpp defines the arithmetic): 2.25x fewer multiply-adds than the
// im2col product (forward, input gradient and weight gradient), for float32.
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
/// geometry g (winograd_applies): not recorded. One image (or run of images, their tiles side by
/// side: each output's chain is its own) per task: thread-count invariant.
Tensor winograd_conv2d(const Tensor& x, const Tensor& w, const Tensor& b, const kernels::ConvGeometry& g,
                       std::size_t groups);

/// The input gradient [N, C, H, W] of winograd_conv2d's convolution for the output gradient grad
/// [N, OC, OH, OW]: the same F(2x2, 3x3) form over grad, padded 2 - p, with every kernel rotated by
/// 180 degrees and its channels swapped (not recorded).
Tensor winograd_conv2d_input_grad(const Tensor& grad, const Tensor& w, const kernels::ConvGeometry& g,
                                  std::size_t groups);

/// The weight gradient dw [OC, C / groups, 3, 3] (when gw) and bias gradient db [OC] (when gb) of
/// winograd_conv2d's convolution of x for the output gradient grad, without create_graph: the
/// arithmetic's own gradient (kernels/winograd.hpp), each batch-tree chunk's products chained
/// image by image and the chunks added by the batch tree; the bias likewise, each chunk's add
/// chain over its tiles' sums (M'[5] = (g00 + g01) + (g10 + g11)), whether or not the weight
/// gradient is made. Thread-count invariant.
void winograd_conv2d_param_grads(const Tensor& grad, const Tensor& x, const Tensor& w, const kernels::ConvGeometry& g,
                                 std::size_t groups, bool gw, bool gb, Tensor& dw, Tensor& db);

}  // namespace sorix::nn::detail
