// im2col / col2im plane kernels (im2col.hpp). Baseline code: a copy and an ordered sum.
#include "sorix_core/kernels/im2col.hpp"

#include <algorithm>
#include <cstdint>

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

template <class T>
void im2col_plane(const T* x_plane, const ConvGeometry& g, std::size_t n, std::size_t c, T* cols) {
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
        std::fill(out, out + cs.lo, T(0));
        if (g.sw == 1) {
          const T* src = in + (cs.lo + kj * g.dw - g.pw);
          std::copy(src, src + (cs.hi - cs.lo), out + cs.lo);
        } else {
          for (std::size_t ow = cs.lo; ow < cs.hi; ++ow) out[ow] = in[ow * g.sw + kj * g.dw - g.pw];
        }
        std::fill(out + cs.hi, out + g.OW, T(0));
      }
    }
  }
}

template <class T>
void col2im_plane(const T* cols, const ConvGeometry& g, std::size_t n, std::size_t c, T* x_plane) {
  const std::size_t ld = g.cols();
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
