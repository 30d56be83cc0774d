#pragma once
// Internal (not installed): Conv2d's 3 x 3 kernels of stride 1 in Winograd's F(2x2, 3x3) form
// (core's kernels/winograd.hpp defines the arithmetic): 2.25x fewer multiply-adds than the
// im2col product (forward, input gradient and weight gradient), for float32.
#include <cstddef>

#include "sorix_core/kernels/im2col.hpp"
#include "sorix/core/tensor.hpp"

namespace sorix::nn::detail {

/// Whether conv2d takes the Winograd path for this geometry: float32, a 3 x 3 kernel of stride and
/// dilation 1, padding at most 2 (the transforms' zero padding), and at least
/// kWinogradMinChannels input and output channels per group (fewer leave the transforms, not the
/// products, as the cost). Depends on nothing else (never the thread
/// count), so a layer's bits never change with the threads.
bool winograd_applies(Dtype dtype, const kernels::ConvGeometry& g, std::size_t in_per_group,
                      std::size_t out_per_group);

/// y [N, OC, OH, OW] = x [N, C, H, W] convolved with w [OC, C / groups, 3, 3] (+ b [OC] if defined),
/// geometry g (winograd_applies): not recorded. One image (or run of images, their tiles side by
/// side: each output's chain is its own) per task: thread-count invariant.
Tensor winograd_conv2d(const Tensor& x, const Tensor& w, const Tensor& b, const kernels::ConvGeometry& g,
                       std::size_t groups);

/// The gradients of winograd_conv2d's convolution of x for the output gradient grad, without
/// create_graph, each when asked for: dx [N, C, H, W] (gx), dw [OC, C / groups, 3, 3] (gw) and
/// db [OC] (gb), all the arithmetic's adjoint (kernels/winograd.hpp) from the output gradient's
/// M' tiles, made once for both where a task holds a group's every output channel. dw: each
/// batch-tree chunk's products chained image by image and the chunks added by the batch tree; db
/// likewise, each chunk's add chain over its tiles' sums (M'[5] = (g00 + g01) + (g10 + g11)),
/// whether or not dw is made; dx: per image, chains over the output channels. Thread-count invariant.
void winograd_conv2d_grads(const Tensor& grad, const Tensor& x, const Tensor& w, const kernels::ConvGeometry& g,
                           std::size_t groups, bool gx, bool gw, bool gb, Tensor& dx, Tensor& dw, Tensor& db);

}  // namespace sorix::nn::detail
