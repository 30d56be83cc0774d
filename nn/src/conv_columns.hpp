#pragma once
// Internal (not installed): the column moves of the convolutions as recorded ops. im2col and
// col2im are each other's adjoint, so each one's gradient is the other, and gradients through a
// convolution differentiate again (create_graph).
#include "sorix_core/kernels/im2col.hpp"
#include "sorix/core/tensor.hpp"

namespace sorix::nn::detail {

/// x [N, C, H, W] (any strides) -> the column matrix [C * kh * kw, N * OH * OW] of `g`.
Tensor im2col(const Tensor& x, const kernels::ConvGeometry& g);
/// im2col's columns with one more row of ones at the end ([C * kh * kw + 1, N * OH * OW]; not
/// recorded): a product with the gradient then gives the bias gradient beside the weight's.
Tensor im2col_with_ones(const Tensor& x, const kernels::ConvGeometry& g);
/// cols [C * kh * kw, N * OH * OW] -> [N, C, H, W], each element the sum of the entries that read it.
Tensor col2im(const Tensor& cols, const kernels::ConvGeometry& g);

}  // namespace sorix::nn::detail
