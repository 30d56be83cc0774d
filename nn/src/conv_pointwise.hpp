#pragma once
// Internal (not installed): pointwise convolutions (1 x 1 kernels of stride 1, no padding: a
// ResNet bottleneck's or MobileNet's channel mixing) with an image per task, the images' planes
// as the products' operands as they lie, so that no permuted copy of the input, the output
// gradient or the input gradient goes through memory.
#include <cstdint>

#include "sorix/core/tensor.hpp"

namespace sorix::nn::detail {

/// y [N, OC, H, W] = x [N, C, H, W] convolved with w [OC, C / groups, 1, 1] (+ b [OC] if defined),
/// recorded. Each image's output y_n,g = W_g x_n,g (the bias added in the product's epilogue); the
/// input gradient W_g^T g_n,g; the weight gradient the chains of g_n x_n^T continued image by image
/// over each chunk of 32 images, the chunks added by the batch tree; the bias gradient each
/// channel's add chain over each chunk's (image, position) in order, likewise: the bits of the
/// batch-columns products (matmul's chains; the batch tree's) at any thread count. create_graph
/// records those products' formulas. conv2d takes it when the images feed every thread
/// (conv_tasks.hpp); with fewer, the batch's permuted columns, the same bits.
Tensor pointwise_conv2d(const Tensor& x, const Tensor& w, const Tensor& b, std::int64_t groups);

}  // namespace sorix::nn::detail
