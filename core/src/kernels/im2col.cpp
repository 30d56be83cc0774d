// im2col / col2im plane kernels (im2col.hpp): a copy, and an ordered sum (stride-1 columns on
// the active capability's col2im_s1).
#include "sorix_core/kernels/im2col.hpp"

#include "sorix_core/kernels/table.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace sorix::kernels {
namespace {

// The output columns [lo, hi) whose tap kj reads inside the image row: ow * sw - pw + off in [0, W).
struct Span {
  std::size_t lo, hi;
};
Span valid_span(std::size_t out, std::size_t stride, std::size_t pad, std::size_t off, std::size_t size) {
  // x = o * stride + off - pad must satisfy 0 <= x < size.
  const std::int64_t s = static_cast<std::int64_t>(stride), shift = static_cast<std::int64_t>(off) - static_cast<std::int64_t>(pad);
  std::int64_t lo = shift >= 0 ? 0 : (-shift + s - 1) / s;
  std::int64_t hi = static_cast<std::int64_t>(size) - shift <= 0 ? 0 : (static_cast<std::int64_t>(size) - shift + s - 1) / s;
  lo = std::min<std::int64_t>(lo, static_cast<std::int64_t>(out));
  hi = std::clamp<std::int64_t>(hi, lo, static_cast<std::int64_t>(out));
  return {static_cast<std::size_t>(lo), static_cast<std::size_t>(hi)};
}

}  // namespace

// Stride 1 and an output as wide as the input (a "same" convolution, say 3 x 3 with padding 1):
// a tap's row of the column matrix is the whole plane shifted by one offset, so it is one block
// copy of the valid rows, then zeros where the shift wrapped a row edge round to the next row
// (the columns outside the tap's valid span) and on the rows outside the image. The values are
// those of the row-by-row copy below: a copy either way.
namespace {
template <class T>
bool im2col_plane_shifted(const T* x_plane, const ConvGeometry& g, std::size_t n, std::size_t c, T* cols) {
  if (g.sh != 1 || g.sw != 1 || g.OW != g.W) return false;
  const std::size_t ld = g.cols(), OW = g.OW;
  for (std::size_t ki = 0; ki < g.kh; ++ki) {
    const Span rows = valid_span(g.OH, 1, g.ph, ki * g.dh, g.H);
    for (std::size_t kj = 0; kj < g.kw; ++kj) {
      const Span cs = valid_span(OW, 1, g.pw, kj * g.dw, g.W);
      T* dst = cols + (c * g.taps() + ki * g.kw + kj) * ld + n * g.positions();
      std::fill(dst, dst + rows.lo * OW, T(0));
      std::fill(dst + rows.hi * OW, dst + g.OH * OW, T(0));
      if (rows.lo >= rows.hi) continue;
      if (cs.lo >= cs.hi) {
        std::fill(dst + rows.lo * OW, dst + rows.hi * OW, T(0));
        continue;
      }
      // Output (oh, ow) reads input (oh + ki * dh - ph, ow + kj * dw - pw): flat offset shift.
      const std::ptrdiff_t shift = (static_cast<std::ptrdiff_t>(ki * g.dh) - static_cast<std::ptrdiff_t>(g.ph)) *
                                       static_cast<std::ptrdiff_t>(g.W) +
                                   static_cast<std::ptrdiff_t>(kj * g.dw) - static_cast<std::ptrdiff_t>(g.pw);
      // Copy only flat positions whose source lies inside the plane: the first valid row from
      // cs.lo, the last up to cs.hi (the wrapped ends outside the plane are zeroed below anyway).
      const std::size_t first = rows.lo * OW + cs.lo, last = (rows.hi - 1) * OW + cs.hi;
      const T* src = x_plane + (static_cast<std::ptrdiff_t>(first) + shift);
      std::copy(src, src + (last - first), dst + first);
      // Column by column down the rows: the edges are a few values per row (up to the padding),
      // and a fill call per row and side cost more than the copy itself (5 x 5 kernels: 2 of
      // every 5 samples of im2col's time were memset's entry, for 0-2 values).
      for (std::size_t ow = 0; ow < cs.lo; ++ow)
        for (std::size_t oh = rows.lo; oh < rows.hi; ++oh) dst[oh * OW + ow] = T(0);
      for (std::size_t ow = cs.hi; ow < OW; ++ow)
        for (std::size_t oh = rows.lo; oh < rows.hi; ++oh) dst[oh * OW + ow] = T(0);
    }
  }
  return true;
}
}  // namespace

template <class T>
void im2col_plane(const T* x_plane, const ConvGeometry& g, std::size_t n, std::size_t c, T* cols) {
  if (im2col_plane_shifted(x_plane, g, n, c, cols)) return;
  const std::size_t ld = g.cols();
  for (std::size_t ki = 0; ki < g.kh; ++ki) {
    const Span rows = valid_span(g.OH, g.sh, g.ph, ki * g.dh, g.H);
    for (std::size_t kj = 0; kj < g.kw; ++kj) {
      const Span cs = valid_span(g.OW, g.sw, g.pw, kj * g.dw, g.W);
      T* dst = cols + (c * g.taps() + ki * g.kw + kj) * ld + n * g.positions();
      for (std::size_t oh = 0; oh < g.OH; ++oh) {
        T* out = dst + oh * g.OW;
        if (oh < rows.lo || oh >= rows.hi) {
          std::fill(out, out + g.OW, T(0));
          continue;
        }
        const T* in = x_plane + (oh * g.sh + ki * g.dh - g.ph) * g.W;
        for (std::size_t ow = 0; ow < cs.lo; ++ow) out[ow] = T(0);  // a few values: no fill call
        if (g.sw == 1) {
          const T* src = in + (cs.lo + kj * g.dw - g.pw);
          std::copy(src, src + (cs.hi - cs.lo), out + cs.lo);
        } else {
          for (std::size_t ow = cs.lo; ow < cs.hi; ++ow) out[ow] = in[ow * g.sw + kj * g.dw - g.pw];
        }
        for (std::size_t ow = cs.hi; ow < g.OW; ++ow) out[ow] = T(0);
      }
    }
  }
}

template <class T>
void col2im_plane(const T* cols, const ConvGeometry& g, std::size_t n, std::size_t c, T* x_plane) {
  const std::size_t ld = g.cols();
  if (g.sw == 1) {  // the active capability's kernel: rows built in registers, the same additions
    const T* plane = cols + c * g.taps() * ld + n * g.positions();
    if constexpr (std::is_same_v<T, float>) active().col2im_s1_f32(plane, ld, g, x_plane);
    else active().col2im_s1_f64(plane, ld, g, x_plane);
    return;
  }
  std::fill(x_plane, x_plane + g.H * g.W, T(0));
  for (std::size_t ki = 0; ki < g.kh; ++ki) {
    const Span rows = valid_span(g.OH, g.sh, g.ph, ki * g.dh, g.H);
    for (std::size_t kj = 0; kj < g.kw; ++kj) {
      const Span cs = valid_span(g.OW, g.sw, g.pw, kj * g.dw, g.W);
      const T* src_row = cols + (c * g.taps() + ki * g.kw + kj) * ld + n * g.positions();
      for (std::size_t oh = rows.lo; oh < rows.hi; ++oh) {
        const T* src = src_row + oh * g.OW;
        T* out = x_plane + (oh * g.sh + ki * g.dh - g.ph) * g.W;
        for (std::size_t ow = cs.lo; ow < cs.hi; ++ow) out[ow * g.sw + kj * g.dw - g.pw] += src[ow];
      }
    }
  }
}

template void im2col_plane<float>(const float*, const ConvGeometry&, std::size_t, std::size_t, float*);
template void im2col_plane<double>(const double*, const ConvGeometry&, std::size_t, std::size_t, double*);
template void col2im_plane<float>(const float*, const ConvGeometry&, std::size_t, std::size_t, float*);
template void col2im_plane<double>(const double*, const ConvGeometry&, std::size_t, std::size_t, double*);

}  // namespace sorix::kernels
