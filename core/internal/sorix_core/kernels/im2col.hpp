#pragma once
// The column form of a convolution (im2col) and its adjoint (col2im): the moves that turn
// Conv1d/Conv2d/ConvTranspose2d into one matrix product on the library's product kernel.
//
// Geometry: N images of C channels, each H x W; a kernel of kh x kw taps with stride, zero
// padding (before the first row/column; the far side is whatever the output size leaves) and
// dilation; an output grid of OH x OW. The column matrix has C * kh * kw rows and N * OH * OW
// columns (ld = N * OH * OW), row (c, ki, kj) = c * kh * kw + ki * kw + kj and column
// (n, oh, ow) = n * OH * OW + oh * OW + ow, holding x[n][c][oh * sh - ph + ki * dh][ow * sw - pw + kj * dw]
// (0 outside the image). Putting the batch in the columns makes a layer's weight gradient ONE
// product over all images (one fma chain per weight, in image order), never a sum of per-image
// products.
//
// Both kernels work on one (channel, image) plane, serially; the ops run the N * C planes as
// parallel tasks. im2col is a copy (exact); col2im adds the kh * kw * OH * OW contributions to
// each input element in one fixed order (taps outer, output positions inner), so both give the
// same bits for any thread count and on every CPU (an element gets one addition per tap, so
// the vector width never changes a sum: col2im with sw == 1 is the active capability's
// col2im_s1, conv_kernels.hpp).
#include <algorithm>
#include <cstddef>

namespace sorix::kernels {

struct ConvGeometry {
  std::size_t N, C, H, W;  // images, channels, image height and width
  std::size_t kh, kw;      // taps
  std::size_t sh, sw;      // stride
  std::size_t ph, pw;      // padding before the first row / column
  std::size_t dh, dw;      // dilation
  std::size_t OH, OW;      // output grid
  std::size_t taps() const { return kh * kw; }
  std::size_t positions() const { return OH * OW; }
  std::size_t rows() const { return C * kh * kw; }
  std::size_t cols() const { return N * OH * OW; }
};

/// Values a direct convolution's padded input (the table's conv_direct_*) keeps readable past its
/// last plane: a row's last register may read up to a register's width past the row's end.
inline constexpr std::size_t kDirectConvSlack = 16;

/// A direct convolution's input plane: src (rows x cols) into dst (PH x PW), zero-padded by `top`
/// rows and `left` columns, the rest of dst zeros, and kDirectConvSlack zeros after it
/// (conv_direct's reads; a next plane written after this one overwrites them). Rows and columns
/// of src past PH - top or PW - left (which no output reads) are left out.
template <class T>
void pad_plane(const T* src, std::size_t rows, std::size_t cols, std::size_t top, std::size_t left, std::size_t PH,
               std::size_t PW, T* dst) {
  std::fill(dst, dst + PH * PW + kDirectConvSlack, T(0));
  for (std::size_t r = 0; r < rows && top + r < PH; ++r)
    if (left < PW) std::copy(src + r * cols, src + r * cols + std::min(cols, PW - left), dst + (top + r) * PW + left);
}

/// The add chains per tap of a depthwise convolution's weight and bias gradient partials (the
/// table's depthwise_grad_sums_*): chain j takes the output columns ow with ow % 16 == j, so that
/// 1, 2, 4 or 8 registers of any width make the same chains; folded by halves afterwards.
inline constexpr std::size_t kDepthwiseLanes = 16;

/// Writes the kh * kw rows of channel c of image n into the column matrix `cols` (ld = g.cols()):
/// x_plane is that image's H x W plane of channel c.
template <class T>
void im2col_plane(const T* x_plane, const ConvGeometry& g, std::size_t n, std::size_t c, T* cols);

/// x_plane (H x W, channel c of image n) = the sum of every column entry that reads it (zero
/// where none does): the adjoint of im2col_plane, overwriting the plane.
template <class T>
void col2im_plane(const T* cols, const ConvGeometry& g, std::size_t n, std::size_t c, T* x_plane);

}  // namespace sorix::kernels
