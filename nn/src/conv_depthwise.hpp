#pragma once
// Internal (not installed): depthwise convolutions (one input channel per group, groups > 1:
// MobileNet's 3 x 3 layers, a depthwise Conv1d) of stride 1, as short direct chains per plane
// instead of one tiny product per group (whose packing cost ~7x PyTorch's time). Forward and
// input gradient on the kernel table's conv_direct_*, the weight and bias gradients on its
// depthwise_grad_sums_*.
#include <cstddef>

#include "sorix_core/kernels/im2col.hpp"
#include "sorix/core/tensor.hpp"

namespace sorix::nn::detail {

/// Whether conv2d takes the depthwise path: groups == C > 1 (any number of outputs per group),
/// stride 1 both ways, padding at most the dilated kernel's span (ph <= (kh - 1) * dh, pw <=
/// (kw - 1) * dw: the input gradient is then a convolution of the output gradient padded by the
/// rest). Depends on the geometry alone (never the thread count).
bool depthwise_applies(const kernels::ConvGeometry& g, std::size_t groups);

/// y [N, C * m, OH, OW] = x [N, C, H, W] convolved with w [C * m, 1, kh, kw] (+ b [C * m] if
/// defined), geometry g (depthwise_applies): not recorded. Each output element is conv_direct's
/// chain over its taps (+0, fma in tap order, then + b): the bits of the im2col product. One plane
/// per task: thread-count invariant.
Tensor depthwise_conv2d(const Tensor& x, const Tensor& w, const Tensor& b, const kernels::ConvGeometry& g);

/// The input gradient [N, C, H, W] for the output gradient grad [N, C * m, OH, OW]: each input
/// plane the direct convolution of its group's m gradient planes, zero-padded by (k - 1) * d - p
/// before and (k - 1) * d - p' after (p, p': the forward's padding before and after), with the
/// kernels rotated by 180 degrees: the fma chain over (output, tap) in that order, the padding's
/// zeros included (as the forward's). One plane per task: thread-count invariant.
Tensor depthwise_conv2d_input_grad(const Tensor& grad, const Tensor& w, const kernels::ConvGeometry& g);

/// The weight gradient dw [C * m, 1, kh, kw] (when gw) and bias gradient db [C * m] (when gb),
/// without create_graph: per batch-tree chunk of images and output channel, depthwise_grad_sums'
/// 16 chains per tap continued image by image, folded by halves (lane j + 8, then + 4, + 2, + 1);
/// the chunks added by the batch tree. The bias's bits do not depend on gw. Thread-count invariant.
void depthwise_conv2d_param_grads(const Tensor& grad, const Tensor& x, const Tensor& w, const kernels::ConvGeometry& g,
                                  bool gw, bool gb, Tensor& dw, Tensor& db);

}  // namespace sorix::nn::detail
