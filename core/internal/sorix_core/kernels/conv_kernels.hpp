#pragma once
// col2im for stride-1 columns (sw == 1) as a per-capability kernel (the dispatch table's
// col2im_s1_*). Each image row is built in registers, L columns at a time: +0, then every tap's
// contribution in tap order (ki, kj), loaded from the tap's column row with the lanes it does not
// reach masked to +0. An element thus receives exactly the additions of col2im_plane's scalar
// loop, in the same order (adding +0 never changes a sum that started from +0: it cannot be -0),
// and the row is stored once: no read-back of a row that the previous tap has just stored (which
// stalled on store forwarding when the taps were added row by row into the image).
#include <cstddef>
#include <cstdint>

#include "sorix_core/kernels/arch.hpp"
#include "sorix_core/kernels/gemm_kernels.hpp"
#include "sorix_core/kernels/im2col.hpp"

namespace sorix::kernels {

template <class A>
struct ConvKernelsOf {
  /// dst[c * dst_ld + r] = src[r * src_ld + c] for r < rows, c < cols (a copy: exact).
  static void transpose_f32(const float* src, std::size_t src_ld, float* dst, std::size_t dst_ld, std::size_t rows,
                            std::size_t cols) {
    const std::size_t r8 = rows / 8 * 8, c8 = cols / 8 * 8;
    for (std::size_t r = 0; r < r8; r += 8) {
      for (std::size_t c = 0; c < c8; c += 8)
        GemmKernels<A, float>::transpose8x8(src + r * src_ld + c, src_ld, dst + c * dst_ld + r, dst_ld);
      for (std::size_t c = c8; c < cols; ++c)
        for (std::size_t i = r; i < r + 8; ++i) dst[c * dst_ld + i] = src[i * src_ld + c];
    }
    for (std::size_t r = r8; r < rows; ++r)
      for (std::size_t c = 0; c < cols; ++c) dst[c * dst_ld + r] = src[r * src_ld + c];
  }

  /// x_plane (H x W, overwritten) = the sum of the column entries that read each element, for a
  /// geometry with sw == 1; tap t's row of this (image, channel) plane starts at cols + t * ld.
  template <class T>
  static void col2im_s1(const T* cols, std::size_t ld, const ConvGeometry& g, T* x_plane) {
    using B = xsimd::batch<T, A>;
    constexpr std::size_t L = B::size;
    const auto OW = static_cast<std::ptrdiff_t>(g.OW);
    for (std::size_t h = 0; h < g.H; ++h) {
      for (std::size_t w0 = 0; w0 < g.W; w0 += L) {
        const std::size_t lanes = g.W - w0 < L ? g.W - w0 : L;
        B acc(T(0));
        for (std::size_t ki = 0; ki < g.kh; ++ki) {
          // The output row oh with oh * sh + ki * dh - ph == h, if any.
          const std::ptrdiff_t num = static_cast<std::ptrdiff_t>(h + g.ph) - static_cast<std::ptrdiff_t>(ki * g.dh);
          if (num < 0 || num % static_cast<std::ptrdiff_t>(g.sh) != 0) continue;
          const std::size_t oh = static_cast<std::size_t>(num) / g.sh;
          if (oh >= g.OH) continue;
          for (std::size_t kj = 0; kj < g.kw; ++kj) {
            // Column w reads output column ow = w - off; valid lanes: 0 <= ow < OW, inside the block.
            const std::ptrdiff_t off = static_cast<std::ptrdiff_t>(kj * g.dw) - static_cast<std::ptrdiff_t>(g.pw);
            const std::ptrdiff_t b0 = static_cast<std::ptrdiff_t>(w0);
            const std::ptrdiff_t lo = off > b0 ? off : b0;
            const std::ptrdiff_t end = b0 + static_cast<std::ptrdiff_t>(lanes);
            const std::ptrdiff_t hi = OW + off < end ? OW + off : end;
            if (lo >= hi) continue;
            const T* row = cols + (ki * g.kw + kj) * ld + oh * g.OW;
            const std::uintptr_t base = reinterpret_cast<std::uintptr_t>(row) +
                                        static_cast<std::uintptr_t>(b0 - off) * sizeof(T);  // lane 0's address
            acc = acc + load_lanes<A, T>(base, static_cast<std::size_t>(lo - b0), static_cast<std::size_t>(hi - b0));
          }
        }
        T* out = x_plane + h * g.W + w0;
        if (lanes == L) acc.store_unaligned(out);
        else store_first<A>(acc, out, lanes);
      }
    }
  }
};

}  // namespace sorix::kernels
