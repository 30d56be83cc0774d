#pragma once
// The convolutions' per-capability loops (the dispatch table's col2im_s1_*, conv_direct_* and
// transpose_f32). conv_direct: a convolution of short chains straight from the padded input, each
// element the product's fma chain over its im2col column (see its comment).
//
// col2im_s1, for stride-1 columns (sw == 1): each image row is built in registers, L columns at a
// time: +0, then every tap's contribution in tap order (ki, kj), loaded from the tap's column row
// with the lanes it does not reach masked to +0. An element thus receives exactly the additions
// of col2im_plane's scalar loop, in the same order (adding +0 never changes a sum that started
// from +0: it cannot be -0), and the row is stored once: no read-back of a row that the previous
// tap has just stored (which stalled on store forwarding when the taps were added row by row into
// the image).
#include <cstddef>
#include <cstdint>
#include <memory>

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

  /// One image's output planes [0, outs) of a convolution with sw == 1, straight from the input
  /// (no columns): y[o * OH * OW + oh * OW + ow] = the fma chain over k = (c, ki, kj) in order of
  /// w[o * K + k] * xp[c * plane + (oh * sh + ki * dh) * PW + ow + kj * dw] from +0, then + b[o]
  /// (no add when b is null), K = C * kh * kw: each element's chain is the product's over the
  /// im2col columns (the same multiply-adds in the same order: the same bits). xp holds the C
  /// input planes zero-padded (row r, column q is x[r - ph][q - pw]): PW >= OW + (kw - 1) * dw,
  /// kDirectConvSlack readable values past the last plane. Lanes run along a row (ow), a tile
  /// being a few output channels by up to kRowRegs registers of the row.
  template <class T>
  static void conv_direct(const T* xp, std::size_t PW, std::size_t plane, std::size_t C, const ConvGeometry& g,
                          const T* w, const T* b, std::size_t outs, T* y) {
    constexpr std::size_t L = xsimd::batch<T, A>::size;
    static_assert(L - 1 <= kDirectConvSlack, "a row's last register reads up to L - 1 values past it");
    const std::size_t K = C * g.kh * g.kw;
    constexpr std::size_t kStackTaps = 64;
    std::size_t stack_offsets[kStackTaps];
    std::unique_ptr<std::size_t[]> heap_offsets(K > kStackTaps ? new std::size_t[K] : nullptr);
    std::size_t* offset = K > kStackTaps ? heap_offsets.get() : stack_offsets;
    for (std::size_t c = 0, k = 0; c < C; ++c)
      for (std::size_t ki = 0; ki < g.kh; ++ki)
        for (std::size_t kj = 0; kj < g.kw; ++kj, ++k) offset[k] = c * plane + ki * g.dh * PW + kj * g.dw;
    // Column segments outermost, then blocks of channels, then rows: each block writes its few
    // output planes front to back (a handful of store streams, not one per channel).
    for (std::size_t ow0 = 0; ow0 < g.OW; ow0 += kRowRegs * L) {
      const std::size_t n = g.OW - ow0 < kRowRegs * L ? g.OW - ow0 : kRowRegs * L;
      const std::size_t regs = (n + L - 1) / L, last = n - (regs - 1) * L;
      const Direct<T> d{xp, PW, plane, C, g, w, K, b, ow0, last, y, offset};
      switch (regs) {
        case 1: direct_segment<T, 1>(d, outs); break;
        case 2: direct_segment<T, 2>(d, outs); break;
        case 3: direct_segment<T, 3>(d, outs); break;
        default: direct_segment<T, kRowRegs>(d, outs); break;
      }
    }
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

 private:
  static constexpr std::size_t kRowRegs = 4;  // registers of a row per tile at most
  static constexpr std::size_t kRegisters = kIsAvx512<A> ? 32 : 16;

  // One column segment of conv_direct: output columns [ow0, ow0 + kRegs * L) of every row (the
  // last register's first `last` lanes stored).
  template <class T>
  struct Direct {
    const T* xp;
    std::size_t PW, plane, C;
    const ConvGeometry& g;
    const T* w;
    std::size_t K;
    const T* b;
    std::size_t ow0, last;
    T* y;
    const std::size_t* offset;  // offset[k]: tap k's input from the row's first, k = (c, ki, kj)
  };

  // Output channels side by side: as many as the registers hold besides a weight and an input
  // (the inputs are the multiply-adds' memory operands; 8 channels at most), then two, then one.
  template <class T, std::size_t kRegs>
  static void direct_segment(const Direct<T>& d, std::size_t outs) {
    constexpr std::size_t kFit = (kRegisters - 2) / kRegs;
    constexpr std::size_t kChannels = kFit < 1 ? 1 : kFit > 8 ? 8 : kFit;
    std::size_t o = 0;
    for (; o + kChannels <= outs; o += kChannels)
      for (std::size_t oh = 0; oh < d.g.OH; ++oh) direct_tile<T, kRegs, kChannels>(d, o, oh);
    if constexpr (kChannels > 2) {
      for (; o + 2 <= outs; o += 2)
        for (std::size_t oh = 0; oh < d.g.OH; ++oh) direct_tile<T, kRegs, 2>(d, o, oh);
    }
    for (; o < outs; ++o)
      for (std::size_t oh = 0; oh < d.g.OH; ++oh) direct_tile<T, kRegs, 1>(d, o, oh);
  }

  template <class T, std::size_t kRegs, std::size_t kChannels>
  static void direct_tile(const Direct<T>& d, std::size_t o0, std::size_t oh) {
    using B = xsimd::batch<T, A>;
    constexpr std::size_t L = B::size;
    const ConvGeometry& g = d.g;
    B acc[kChannels][kRegs];
#pragma GCC unroll 8
    for (std::size_t c = 0; c < kChannels; ++c)
#pragma GCC unroll 4
      for (std::size_t r = 0; r < kRegs; ++r) acc[c][r] = B(T(0));
    const T* wo = d.w + o0 * d.K;
    const T* base = d.xp + oh * g.sh * d.PW + d.ow0;
    for (std::size_t k = 0; k < d.K; ++k) {
      const T* in = base + d.offset[k];
      B xv[kRegs];
#pragma GCC unroll 4
      for (std::size_t r = 0; r < kRegs; ++r) xv[r] = B::load_unaligned(in + r * L);
#pragma GCC unroll 8
      for (std::size_t ch = 0; ch < kChannels; ++ch) {
        const B wv(wo[ch * d.K + k]);
#pragma GCC unroll 4
        for (std::size_t r = 0; r < kRegs; ++r) acc[ch][r] = fmadd(wv, xv[r], acc[ch][r]);
      }
    }
    const std::size_t P = g.OH * g.OW;
    // A ragged last register of a row's only segment is stored whole where its extra lanes land
    // on the plane's later rows, which their tiles (later) overwrite; a masked store is many times
    // slower (AMD).
    const bool whole = d.last == L || (d.ow0 == 0 && (g.OH - oh - 1) * g.OW >= L - d.last);
#pragma GCC unroll 8
    for (std::size_t ch = 0; ch < kChannels; ++ch) {
      T* out = d.y + (o0 + ch) * P + oh * g.OW + d.ow0;
      const B bias(d.b != nullptr ? d.b[o0 + ch] : T(0));
#pragma GCC unroll 4
      for (std::size_t r = 0; r < kRegs; ++r) {
        const B v = d.b != nullptr ? acc[ch][r] + bias : acc[ch][r];
        if (r + 1 < kRegs || whole) v.store_unaligned(out + r * L);
        else store_first<A>(v, out + r * L, d.last);
      }
    }
  }
};

}  // namespace sorix::kernels
