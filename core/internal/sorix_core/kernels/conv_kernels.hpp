#pragma once
// The convolutions' per-capability loops (the dispatch table's col2im_s1_*, conv_direct_*,
// depthwise_grad_sums_*, winograd_input_f32 / winograd_output_f32 / winograd_output_adjoint_f32
// and transpose_f32). conv_direct: a convolution of short chains straight from the padded input,
// each element the product's fma chain over its im2col column (see its comment).
// depthwise_grad_sums: a depthwise convolution's weight and bias gradients as 16 add chains per
// tap along the output rows (see its comment).
//
// col2im_s1, for stride-1 columns (sw == 1): each image row is built in registers, L columns at a
// time (four registers side by side, independent chains): +0, then every tap's contribution in tap
// order (ki, kj), loaded from the tap's column row with the lanes it does not reach masked to +0. An element thus receives exactly the additions
// of col2im_plane's scalar loop, in the same order (adding +0 never changes a sum that started
// from +0: it cannot be -0), and the row is stored once: no read-back of a row that the previous
// tap has just stored (which stalled on store forwarding when the taps were added row by row into
// the image).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <type_traits>

#include "sorix_core/kernels/arch.hpp"
#include "sorix_core/kernels/gemm_kernels.hpp"
#include "sorix_core/kernels/im2col.hpp"
#include "sorix_core/kernels/winograd.hpp"

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

  /// The weight and bias gradient partials of a depthwise convolution (one input plane to one
  /// output plane, sw == 1) for one image: with Z = kDepthwiseLanes, tap t = ki * kw + kj and
  /// chain j of acc[t * Z + j] continues (from acc's value: +0 to start) with
  ///   acc = fma(xp[(oh * sh + ki * dh) * PW + ow + kj * dw], dy[oh * OW + ow], acc)
  /// for every output position with ow % Z == j, rows oh in order, then ow; with bias,
  /// acc[taps * Z + j] += dy[oh * OW + ow] likewise. xp is the input plane zero-padded (row r,
  /// column q = x[r - ph][q - pw], PW >= OW + (kw - 1) * dw). Z lanes are 1 to 8 registers of any
  /// width, the row's last columns masked (+0 in both operands: a chain from +0 is never -0, so
  /// adding +0 changes nothing): the same fmas in every chain, the same bits on every path.
  template <class T>
  static void depthwise_grad_sums(const T* xp, std::size_t PW, const ConvGeometry& g, const T* dy, bool bias, T* acc) {
    constexpr std::size_t R = kDepthwiseLanes / xsimd::batch<T, A>::size;
    static_assert(R >= 1 && R * xsimd::batch<T, A>::size == kDepthwiseLanes, "16 lanes: whole registers");
    // Taps per pass over the plane: dy's registers are loaded once for them; their chains
    // (NT x R registers, with the bias's R) stay in registers.
    constexpr std::size_t kTaps = R <= 2 ? 4 : R == 4 ? 2 : 1;
    for (std::size_t ki = 0; ki < g.kh; ++ki)
      for (std::size_t kj0 = 0; kj0 < g.kw; kj0 += kTaps) {
        const Depthwise<T> d{xp, PW, g, dy, acc, ki, kj0, bias && ki == 0 && kj0 == 0};
        switch (g.kw - kj0 < kTaps ? g.kw - kj0 : kTaps) {
          case 1: depthwise_taps<T, 1>(d); break;
          case 2: depthwise_taps<T, (kTaps >= 2 ? 2 : 1)>(d); break;
          case 3: depthwise_taps<T, (kTaps >= 3 ? 3 : 1)>(d); break;
          default: depthwise_taps<T, kTaps>(d); break;
        }
      }
  }

  /// Winograd F(2x2, 3x3)'s input transform of one H x W plane (winograd.hpp): the 16 values of
  /// tile t = th * TW + tw go to v[xi * ld + t], the patch read from x zero-padded by ph rows and
  /// pw columns. Lanes run along a row of tiles (tw), each lane one tile: scratch holds the padded
  /// plane split into even and odd columns (winograd_input_scratch), so that a tile's four columns
  /// are four plain loads; a row of tiles narrower than a register is made in registers instead
  /// (winograd_input_narrow: the same bits). Writes up to kWinogradSlack - 1 values past each row's TH * TW.
  static void winograd_input_f32(const float* x, std::size_t H, std::size_t W, std::size_t ph, std::size_t pw,
                                 std::size_t TH, std::size_t TW, float* v, std::size_t ld, float* scratch) {
    if (TW <= NarrowRows<A>::lanes) return winograd_input<typename NarrowRows<A>::batch>(x, H, W, ph, pw, TH, TW, v, ld, scratch);
    winograd_input<xsimd::batch<float, A>>(x, H, W, ph, pw, TH, TW, v, ld, scratch);
  }

  /// The adjoint of winograd_output_f32 without its bias (winograd.hpp): the 16 rows
  /// m[xi * ld + t] = A g A^T of each tile's 2 x 2 output gradient g (0 past the plane's OH x OW),
  /// the weight gradient's left operand. Lanes run along a row of tiles, as the input transform's
  /// (scratch: winograd_input_scratch). Writes up to kWinogradSlack - 1 values past each row's TH * TW.
  static void winograd_output_adjoint_f32(const float* g, std::size_t OH, std::size_t OW, std::size_t TH,
                                          std::size_t TW, float* m, std::size_t ld, float* scratch) {
    if (TW <= NarrowRows<A>::lanes) return winograd_adjoint<typename NarrowRows<A>::batch>(g, OH, OW, TH, TW, m, ld, scratch);
    winograd_adjoint<xsimd::batch<float, A>>(g, OH, OW, TH, TW, m, ld, scratch);
  }

  /// The input transform's adjoint (winograd.hpp, the input gradient): x (H x W, overwritten) =
  /// the padded plane B z B^T of each tile's 16 values z[xi * ld + t] (t < TH * TW), tiles
  /// overlapping by two rows and columns added in winograd.hpp's order, cropped by ph rows and pw
  /// columns. Lanes run along a row of tiles; each padded row's even and odd columns are made in
  /// registers and interleaved (scratch: winograd_input_adjoint_scratch). Reads up to
  /// kWinogradSlack - 1 values past a row's TH * TW (whatever they hold: replaced by +0).
  static void winograd_input_adjoint_f32(const float* z, std::size_t ld, std::size_t TH, std::size_t TW, float* x,
                                         std::size_t H, std::size_t W, std::size_t ph, std::size_t pw,
                                         float* scratch) {
    if (TW < NarrowRows<A>::lanes)
      return winograd_input_adjoint<typename NarrowRows<A>::batch>(z, ld, TH, TW, x, H, W, ph, pw, scratch);
    winograd_input_adjoint<xsimd::batch<float, A>>(z, ld, TH, TW, x, H, W, ph, pw, scratch);
  }

  /// Winograd F(2x2, 3x3)'s output transform of one output plane (winograd.hpp): y (OH x OW,
  /// overwritten) from the 16 product rows m[xi * ld + t] of its tiles, + *bias unless bias is
  /// null. Lanes run along a row of tiles; each output row's even and odd columns are made in
  /// registers, interleaved in registers and stored straight into y (a row's ragged end as its
  /// last L values on AVX2, last_l; masked stores elsewhere). Reads up to kWinogradSlack - 1 values
  /// past each row's TH * TW.
  static void winograd_output_f32(const float* m, std::size_t ld, std::size_t TH, std::size_t TW, const float* bias,
                                  float* y, std::size_t OH, std::size_t OW) {
    if (TW <= NarrowRows<A>::lanes) return winograd_output<typename NarrowRows<A>::batch>(m, ld, TH, TW, bias, y, OH, OW);
    winograd_output<xsimd::batch<float, A>>(m, ld, TH, TW, bias, y, OH, OW);
  }

 private:
  // The registers of a row of tiles: A's; on AVX-512, rows of 8 tiles or fewer (the CNN's 14 x 14
  // planes have 7) take AVX2's 8 lanes instead of 16 mostly idle ones, halving the stores. Every
  // step is lane-wise, so the width changes no bit.
  // (The AVX2 batch is named only where Arch is AVX-512: other units have no AVX2 registers.)
  template <class Arch>
  struct NarrowRows {
#if SORIX_X86
    using batch = xsimd::batch<float, std::conditional_t<kIsAvx512<Arch>, xsimd::avx2, Arch>>;
    static constexpr std::size_t lanes = kIsAvx512<Arch> ? 8 : 0;  // 0: never narrower
#else
    using batch = xsimd::batch<float, Arch>;
    static constexpr std::size_t lanes = 0;
#endif
  };

  template <class B>
  static void winograd_input(const float* x, std::size_t H, std::size_t W, std::size_t ph, std::size_t pw,
                             std::size_t TH, std::size_t TW, float* v, std::size_t ld, float* scratch) {
    constexpr std::size_t L = B::size;
    static_assert(L <= kWinogradSlack, "a row's last register spills up to L - 1 tiles");
    if (TW < L && pw < L) return winograd_input_narrow<B>(x, H, W, ph, pw, TH, TW, v, ld);
    const std::size_t rows = 2 * TH + 2, width = winograd_split_width(TW);
    const std::size_t used = (TW + L - 1) / L * L + 1;  // the values of a row the registers read
    float* even = scratch;  // even[r * width + k] = padded[r][2k], odd: padded[r][2k + 1]
    float* odd = scratch + rows * width;
    prefetch_next_plane(x, H * W);
    for (std::size_t r = 0; r < rows; ++r) {
      float* e = even + r * width;
      float* o = odd + r * width;
      if (r < ph || r - ph >= H) {
        std::fill(e, e + used, 0.0f);
        std::fill(o, o + used, 0.0f);
        continue;
      }
      split_columns(x + (r - ph) * W, W, pw, used, e, o);
    }
    for (std::size_t th = 0; th < TH; ++th) {
      const float* e = even + 2 * th * width;
      const float* o = odd + 2 * th * width;
      float* out = v + th * TW;
      for (std::size_t k = 0; k < TW; k += L) {
        B w[4][4];  // w[i] = row i of the patch through B (d[i] = e[k], o[k], e[k + 1], o[k + 1])
#pragma GCC unroll 4
        for (std::size_t i = 0; i < 4; ++i) {
          const B e0 = B::load_unaligned(e + i * width + k), e1 = B::load_unaligned(e + i * width + k + 1);
          const B o0 = B::load_unaligned(o + i * width + k), o1 = B::load_unaligned(o + i * width + k + 1);
          w[i][0] = e0 - e1;
          w[i][1] = o0 + e1;
          w[i][2] = e1 - o0;
          w[i][3] = o0 - o1;
        }
#pragma GCC unroll 4
        for (std::size_t j = 0; j < 4; ++j) {  // then down each column
          (w[0][j] - w[2][j]).store_unaligned(out + j * ld + k);
          (w[1][j] + w[2][j]).store_unaligned(out + (4 + j) * ld + k);
          (w[2][j] - w[1][j]).store_unaligned(out + (8 + j) * ld + k);
          (w[1][j] - w[3][j]).store_unaligned(out + (12 + j) * ld + k);
        }
      }
    }
  }

  template <class B>
  static void winograd_adjoint(const float* g, std::size_t OH, std::size_t OW, std::size_t TH, std::size_t TW,
                               float* m, std::size_t ld, float* scratch) {
    constexpr std::size_t L = B::size;
    static_assert(L <= kWinogradSlack, "a row's last register spills up to L - 1 tiles");
    if (TW < L) return winograd_adjoint_narrow<B>(g, OH, OW, TH, TW, m, ld);
    const std::size_t width = winograd_split_width(TW), used = (TW + L - 1) / L * L;
    float* even = scratch;  // even[r * width + k] = g[r][2k], odd: g[r][2k + 1] (0 past the plane)
    float* odd = scratch + 2 * TH * width;
    prefetch_next_plane(g, OH * OW);  // as the input transform's
    for (std::size_t r = 0; r < 2 * TH; ++r) {
      float* e = even + r * width;
      float* o = odd + r * width;
      if (r >= OH) {
        std::fill(e, e + used, 0.0f);
        std::fill(o, o + used, 0.0f);
        continue;
      }
      split_columns(g + r * OW, OW, 0, used, e, o);
    }
    for (std::size_t th = 0; th < TH; ++th) {
      const float* e = even + 2 * th * width;
      const float* o = odd + 2 * th * width;
      float* out = m + th * TW;
      for (std::size_t k = 0; k < TW; k += L) {
        B r[2][4];  // row a of the tile's gradient through A^T: g0, g0 + g1, g0 - g1, -g1
#pragma GCC unroll 2
        for (std::size_t a = 0; a < 2; ++a) {
          const B g0 = B::load_unaligned(e + a * width + k), g1 = B::load_unaligned(o + a * width + k);
          r[a][0] = g0;
          r[a][1] = g0 + g1;
          r[a][2] = g0 - g1;
          r[a][3] = negated(g1);
        }
#pragma GCC unroll 4
        for (std::size_t j = 0; j < 4; ++j) {  // then down each column
          r[0][j].store_unaligned(out + j * ld + k);
          (r[0][j] + r[1][j]).store_unaligned(out + (4 + j) * ld + k);
          (r[0][j] - r[1][j]).store_unaligned(out + (8 + j) * ld + k);
          negated(r[1][j]).store_unaligned(out + (12 + j) * ld + k);
        }
      }
    }
  }

  // Rows of tiles narrower than a register (TW < L: the CNN's 14 x 14 planes, 7 tiles a row). A
  // padded row's even and odd columns, and the same one column on, are made in registers from
  // the input row (two masked loads, deinterleaved, each shifted by a lane), not split into the
  // scratch and loaded back: those loads straddle the split's stores and wait for them (the
  // transform took about 700 cycles a plane on Zen 3, cache-hot). Each padded row goes through
  // B^T once and serves the two rows of tiles that read it. The lanes that are tiles see the
  // same values through the same operations as winograd_input's: the same bits.
  template <class B>
  static void winograd_input_narrow(const float* x, std::size_t H, std::size_t W, std::size_t ph, std::size_t pw,
                                    std::size_t TH, std::size_t TW, float* v, std::size_t ld) {
    using Arch = typename B::arch_type;
    constexpr std::size_t L = B::size;
    // The padded row (pw zeros, the W values, zeros): register lo holds its columns [0, L), hi
    // [L, 2L); a tile's last column 2 TW + 1 < 2 L.
    const std::size_t lo_end = std::min(L, pw + W), hi_end = pw + W > L ? std::min(L, pw + W - L) : 0;
    prefetch_next_plane(x, H * W);
    // w[j] = column j of padded row r through B^T's rows (w0 = d0 - d2, w1 = d1 + d2, w2 = d2 - d1,
    // w3 = d1 - d3 for the four columns d of each lane's tile).
    const auto through_rows = [&](std::size_t r, B w[4]) {
      if (r < ph || r - ph >= H) {
        for (std::size_t j = 0; j < 4; ++j) w[j] = B(0.0f);
        return;
      }
      const std::uintptr_t row = reinterpret_cast<std::uintptr_t>(x + (r - ph) * W);
      const B lo = load_lanes<Arch, float>(row - pw * sizeof(float), pw, lo_end);
      const B hi = hi_end == 0 ? B(0.0f) : load_lanes<Arch, float>(row + (L - pw) * sizeof(float), 0, hi_end);
      B e0, o0;  // columns 2k and 2k + 1 of lane k's tile
      deinterleave(lo, hi, e0, o0);
      const B e1 = next_lane(e0), o1 = next_lane(o0);  // columns 2k + 2 and 2k + 3
      w[0] = e0 - e1;
      w[1] = o0 + e1;
      w[2] = e1 - o0;
      w[3] = o0 - o1;
    };
    B a[4], b[4], c[4], d[4];  // padded rows 2 th .. 2 th + 3 through B^T's rows
    through_rows(0, a);
    through_rows(1, b);
    for (std::size_t th = 0; th < TH; ++th) {
      through_rows(2 * th + 2, c);
      through_rows(2 * th + 3, d);
      float* out = v + th * TW;
#pragma GCC unroll 4
      for (std::size_t j = 0; j < 4; ++j) {  // then down each column
        (a[j] - c[j]).store_unaligned(out + j * ld);
        (b[j] + c[j]).store_unaligned(out + (4 + j) * ld);
        (c[j] - b[j]).store_unaligned(out + (8 + j) * ld);
        (b[j] - d[j]).store_unaligned(out + (12 + j) * ld);
        a[j] = c[j];
        b[j] = d[j];
      }
    }
  }

  // winograd_adjoint for rows of tiles narrower than a register (TW < L), as
  // winograd_input_narrow: each gradient row's even and odd columns in registers (0 past the
  // plane), through A^T's rows once for the row of tiles that reads it. The same bits.
  template <class B>
  static void winograd_adjoint_narrow(const float* g, std::size_t OH, std::size_t OW, std::size_t TH, std::size_t TW,
                                      float* m, std::size_t ld) {
    using Arch = typename B::arch_type;
    constexpr std::size_t L = B::size;
    const std::size_t lo_end = std::min(L, OW), hi_end = OW > L ? std::min(L, OW - L) : 0;
    prefetch_next_plane(g, OH * OW);
    // r[j]: row a's gradient (g0, g1 the columns 2k, 2k + 1 of lane k's tile) through A^T:
    // g0, g0 + g1, g0 - g1, -g1.
    const auto through_rows = [&](std::size_t a, B r[4]) {
      B g0(0.0f), g1(0.0f);
      if (a < OH) {
        const std::uintptr_t row = reinterpret_cast<std::uintptr_t>(g + a * OW);
        const B lo = load_lanes<Arch, float>(row, 0, lo_end);
        const B hi = hi_end == 0 ? B(0.0f) : load_lanes<Arch, float>(row + L * sizeof(float), 0, hi_end);
        deinterleave(lo, hi, g0, g1);
      }
      r[0] = g0;
      r[1] = g0 + g1;
      r[2] = g0 - g1;
      r[3] = negated(g1);
    };
    for (std::size_t th = 0; th < TH; ++th) {
      B r0[4], r1[4];
      through_rows(2 * th, r0);
      through_rows(2 * th + 1, r1);
      float* out = m + th * TW;
#pragma GCC unroll 4
      for (std::size_t j = 0; j < 4; ++j) {  // then down each column
        r0[j].store_unaligned(out + j * ld);
        (r0[j] + r1[j]).store_unaligned(out + (4 + j) * ld);
        (r0[j] - r1[j]).store_unaligned(out + (8 + j) * ld);
        negated(r1[j]).store_unaligned(out + (12 + j) * ld);
      }
    }
  }

  // Row i of the input transform's adjoint B z B^T of a register of tiles (z(xi): the 16
  // values): down each column first (e0 = z0, e1 = (z1 - z2) + z3, e2 = (z1 + z2) - z0,
  // e3 = -z3, taking row i of those), then the same four combinations along the row: d[j] is
  // the tiles' padded-plane value at row i, column j. Row by row, the z loaded again per row: the
  // whole 4 x 4 held at once spilled on AVX2's 16 registers.
  // Lanes outside `in_tiles` take a tile past the grid's values (z = +0: e = +0, or -0 in row 3).
  template <class B, class Z, class Mask = std::nullptr_t>
  static void adjoint_row(std::size_t i, const Z& z, B (&d)[4], const Mask& in_tiles = nullptr) {
    B e[4];
#pragma GCC unroll 4
    for (std::size_t j = 0; j < 4; ++j) {
      if (i == 0) e[j] = z(j);
      else if (i == 1) e[j] = (z(4 + j) - z(8 + j)) + z(12 + j);
      else if (i == 2) e[j] = (z(4 + j) + z(8 + j)) - z(j);
      else e[j] = negated(z(12 + j));
      if constexpr (!std::is_same_v<Mask, std::nullptr_t>) e[j] = xsimd::select(in_tiles, e[j], B(i == 3 ? -0.0f : 0.0f));
    }
    d[0] = e[0];
    d[1] = (e[1] - e[2]) + e[3];
    d[2] = (e[1] + e[2]) - e[0];
    d[3] = negated(e[3]);
  }

  // The mask of a register's first n lanes (n <= its lanes).
  template <class B>
  static auto first_lanes(std::size_t n) {
    alignas(64) float lane_index[B::size];
    for (std::size_t k = 0; k < B::size; ++k) lane_index[k] = static_cast<float>(k);
    return B::load_aligned(lane_index) < B(static_cast<float>(n));
  }

  // prev_lane with a register holding one value in every lane (`fill`) for lane 0: no shuffle of it.
  template <class B>
  static B prev_lane_filled(const B& v, const B& fill) {
#if SORIX_X86
    if constexpr (kIsAvx2<typename B::arch_type>) {
      return B(_mm256_blend_ps(_mm256_permutevar8x32_ps(v, _mm256_setr_epi32(7, 0, 1, 2, 3, 4, 5, 6)), fill, 0x01));
    }
#endif
    return prev_lane(v, fill);
  }

  // v moved up by a lane, with `before`'s last lane in lane 0 (the tile to the left of lane 0's).
  template <class B>
  static B prev_lane(const B& v, const B& before) {
    using Arch = typename B::arch_type;
#if SORIX_X86
    if constexpr (kIsAvx512<Arch>) {
      return B(_mm512_permutex2var_ps(v, _mm512_setr_epi32(31, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14), before));
    } else if constexpr (kIsAvx2<Arch>) {
      const __m256i up = _mm256_setr_epi32(7, 0, 1, 2, 3, 4, 5, 6);
      return B(_mm256_blend_ps(_mm256_permutevar8x32_ps(v, up), _mm256_permutevar8x32_ps(before, up), 0x01));
    } else if constexpr (kIsSse2<Arch>) {
      const __m128 t = _mm_shuffle_ps(before, v, _MM_SHUFFLE(0, 0, 3, 3));  // before3 before3 v0 v0
      return B(_mm_shuffle_ps(t, v, _MM_SHUFFLE(2, 1, 2, 0)));            // before3 v0 v1 v2
    }
#endif
    alignas(64) float in[B::size], prev[B::size], out[B::size];
    v.store_aligned(in);
    before.store_aligned(prev);
    out[0] = prev[B::size - 1];
    for (std::size_t k = 1; k < B::size; ++k) out[k] = in[k - 1];
    return B::load_aligned(out);
  }

  // winograd_input_adjoint for rows of tiles narrower than a register (TW < L, AVX2's registers:
  // last_l), as winograd_input_narrow: each row's d in registers, and the padded row's sums made
  // straight at the input's columns: x[2 s + a] is padded column c = 2 s + a + pw, the sum of
  // d[c % 2 + 2] of tile c / 2 - 1 and d[c % 2] of tile c / 2, so each parity a takes one of
  // them shifted by a lane (prev_lane or next_lane) and the two parities are interleaved into
  // the row as it is stored. The same sums of the same values as winograd_input_adjoint's: the
  // same bits. (Two shifts of a padded row and its crop took twice the shuffles.)
  template <class B>
  static void winograd_input_adjoint_narrow(const float* z, std::size_t ld, std::size_t TH, std::size_t TW, float* x,
                                            std::size_t H, std::size_t W, std::size_t ph, std::size_t pw) {
    // The padding as a constant: each parity's shift known at compile time (a third of the
    // kernel's time went to branches and reloaded shifts when it was a variable).
    if (pw == 0) return input_adjoint_narrow<B, 0>(z, ld, TH, TW, x, H, W, ph);
    if (pw == 1) return input_adjoint_narrow<B, 1>(z, ld, TH, TW, x, H, W, ph);
    input_adjoint_narrow<B, 2>(z, ld, TH, TW, x, H, W, ph);
  }

  template <class B, std::size_t kPw>
  static void input_adjoint_narrow(const float* z, std::size_t ld, std::size_t TH, std::size_t TW, float* x,
                                   std::size_t H, std::size_t W, std::size_t ph) {
    static_assert(kPw <= 2, "winograd_applies: padding at most 2");
    constexpr std::size_t L = B::size;
    B zero_tile[4][4];  // a tile past the grid's d (signed zeros)
    for (std::size_t i = 0; i < 4; ++i) adjoint_row(i, [](std::size_t) { return B(0.0f); }, zero_tile[i]);
    const auto in_row = first_lanes<B>(TW);
    B above[2][2];  // the tiles above's rows 2 and 3 (lo, hi) at the input's columns
    for (auto& r : above)
      for (auto& v : r) v = B(0.0f);
    const auto store_row = [&](std::size_t r, const B& lo, const B& hi) {
      if (r < ph || r - ph >= H) return;
      float* dst = x + (r - ph) * W;
      if (W < L) return store_count(lo, dst, W);
      lo.store_unaligned(dst);
      if (W == 2 * L) hi.store_unaligned(dst + L);
      else if (W > L) last_l(lo, hi, W - L).store_unaligned(dst + W - L);
    };
    for (std::size_t th = 0; th <= TH; ++th) {
      const float* in = z + th * TW;
      // Whole registers of z (the lanes past the row read its next row or the slack), and the
      // lanes past the row's tiles replaced after the column step (adjoint_row's mask): half the
      // blends of masking every load.
      const auto zr = [&](std::size_t xi) { return B::load_unaligned(in + xi * ld); };
#pragma GCC unroll 4
      for (std::size_t i = 0; i < 4; ++i) {
        B d[4];
        if (th == TH) {
          for (std::size_t j = 0; j < 4; ++j) d[j] = zero_tile[i][j];
        } else {
          adjoint_row(i, zr, d, in_row);
        }
        B sum[2];  // x's even and odd columns
#pragma GCC unroll 2
        for (std::size_t a = 0; a < 2; ++a) {
          const std::size_t c = a + kPw, j = c % 2;  // lane s: padded column 2 s + c
          sum[a] = c < 2 ? prev_lane_filled(d[j + 2], zero_tile[i][j + 2]) + d[j] : d[j + 2] + next_lane(d[j]);
        }
        B lo, hi;
        interleave(sum[0], sum[1], lo, hi);
        if (i < 2) {
          store_row(2 * th + i, above[i][0] + lo, above[i][1] + hi);
        } else {
          above[i - 2][0] = lo;
          above[i - 2][1] = hi;
        }
      }
    }
  }

  // winograd_input_adjoint_f32 with registers of B. For each row of tiles th (and a last one,
  // th = TH, of tiles past the grid: z = +0), each register of tiles k .. k + L - 1 up to tw = TW
  // (z = +0 past the row) goes through adjoint_row; a padded row's even column 2 tw then gets
  // d[i][2] of tile tw - 1 + d[i][0] of tile tw, its odd one d[i][3] of tw - 1 + d[i][1] of tw
  // (the tiles left of the grid: z = +0 through the same steps), and padded row 2 th + i (i < 2)
  // is the row the tiles above left (their rows i + 2, +0 above the grid) + this one, made in
  // the scratch and copied into x cropped.
  template <class B>
  static void winograd_input_adjoint(const float* z, std::size_t ld, std::size_t TH, std::size_t TW, float* x,
                                     std::size_t H, std::size_t W, std::size_t ph, std::size_t pw, float* scratch) {
    constexpr std::size_t L = B::size;
    if constexpr (kHasLastL<B>) {
      if (TW < L) return winograd_input_adjoint_narrow<B>(z, ld, TH, TW, x, H, W, ph, pw);
    }
    const std::size_t regs = TW / L + 1;  // registers of tiles, through tw = TW
    const std::size_t width = 2 * L * regs;  // a padded row's columns as stored
    B zero_tile[4][4];  // a tile past the grid's d (signed zeros)
    for (std::size_t i = 0; i < 4; ++i) adjoint_row(i, [](std::size_t) { return B(0.0f); }, zero_tile[i]);
    // The tiles above's rows 2 and 3 (below[2][2]: two sets, this row's and the next's), and the
    // two padded rows made (out).
    float* below[2][2] = {{scratch, scratch + width}, {scratch + 2 * width, scratch + 3 * width}};
    float* out[2] = {scratch + 4 * width, scratch + 5 * width};
    std::fill(scratch, scratch + 2 * width, 0.0f);
    for (std::size_t th = 0; th <= TH; ++th) {
      const float* in = z + th * TW;
      B carry2[4], carry3[4];  // d[i][2] and d[i][3] of the tile left of the register's first
      for (std::size_t i = 0; i < 4; ++i) {
        carry2[i] = zero_tile[i][2];
        carry3[i] = zero_tile[i][3];
      }
      for (std::size_t g = 0; g < regs; ++g) {
        const std::size_t k = g * L, n = th < TH && k < TW ? std::min(L, TW - k) : 0;  // tiles in it
        // Whole registers of z; in a partial one (n tiles) the lanes past them read within the
        // row's slack or the next row of tiles and are replaced after the column step, as in
        // the narrow rows (adjoint_row's mask).
        const auto zr = [&](std::size_t xi) { return B::load_unaligned(in + xi * ld + k); };
        const auto in_row = first_lanes<B>(n);
#pragma GCC unroll 4
        for (std::size_t i = 0; i < 4; ++i) {
          B d[4], lo, hi;
          if (n == 0) {
            for (std::size_t j = 0; j < 4; ++j) d[j] = zero_tile[i][j];
          } else if (n == L) {
            adjoint_row(i, zr, d);
          } else {
            adjoint_row(i, zr, d, in_row);
          }
          const B even = prev_lane(d[2], carry2[i]) + d[0], odd = prev_lane(d[3], carry3[i]) + d[1];
          carry2[i] = d[2];
          carry3[i] = d[3];
          interleave(even, odd, lo, hi);
          if (i < 2) {
            const float* up = below[th % 2][i] + 2 * k;
            (B::load_unaligned(up) + lo).store_unaligned(out[i] + 2 * k);
            (B::load_unaligned(up + L) + hi).store_unaligned(out[i] + 2 * k + L);
          } else {
            lo.store_unaligned(below[(th + 1) % 2][i - 2] + 2 * k);
            hi.store_unaligned(below[(th + 1) % 2][i - 2] + 2 * k + L);
          }
        }
      }
      for (std::size_t i = 0; i < 2; ++i) {
        const std::size_t r = 2 * th + i;
        if (r >= ph && r - ph < H) std::memcpy(x + (r - ph) * W, out[i] + pw, W * sizeof(float));
      }
    }
  }

  // v moved down by a lane: lane k holds v[k + 1] (the last lane: any value; its tile is past
  // the row's).
  template <class B>
  static B next_lane(const B& v) {
    using Arch = typename B::arch_type;
#if SORIX_X86
    if constexpr (kIsAvx512<Arch>) {
      return B(_mm512_permutexvar_ps(_mm512_setr_epi32(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 15), v));
    } else if constexpr (kIsAvx2<Arch>) {
      return B(_mm256_permutevar8x32_ps(v, _mm256_setr_epi32(1, 2, 3, 4, 5, 6, 7, 7)));
    } else if constexpr (kIsSse2<Arch>) {
      return B(_mm_shuffle_ps(v, v, _MM_SHUFFLE(3, 3, 2, 1)));
    }
#endif
    alignas(64) float in[B::size], out[B::size];
    v.store_aligned(in);
    for (std::size_t k = 0; k < B::size; ++k) out[k] = in[k + 1 < B::size ? k + 1 : k];
    return B::load_aligned(out);
  }

  template <class B>
  static void winograd_output(const float* m, std::size_t ld, std::size_t TH, std::size_t TW, const float* bias,
                              float* y, std::size_t OH, std::size_t OW) {
    constexpr std::size_t L = B::size;
    static_assert(L <= kWinogradSlack, "a row's last register reads up to L - 1 tiles past it");
    const B b(bias != nullptr ? *bias : 0.0f);
    for (std::size_t th = 0; th < TH; ++th) {
      const float* in = m + th * TW;
      for (std::size_t k = 0; k < TW; k += L) {
        B z[4][2];  // row i of the tile's products through A
#pragma GCC unroll 4
        for (std::size_t i = 0; i < 4; ++i) {
          const B m0 = B::load_unaligned(in + (4 * i) * ld + k), m1 = B::load_unaligned(in + (4 * i + 1) * ld + k);
          const B m2 = B::load_unaligned(in + (4 * i + 2) * ld + k), m3 = B::load_unaligned(in + (4 * i + 3) * ld + k);
          z[i][0] = (m0 + m1) + m2;
          z[i][1] = (m1 - m2) - m3;
        }
        B out[2][2];  // [output row][column parity]
#pragma GCC unroll 2
        for (std::size_t j = 0; j < 2; ++j) {  // then down each column
          out[0][j] = (z[0][j] + z[1][j]) + z[2][j];
          out[1][j] = (z[1][j] - z[2][j]) - z[3][j];
          if (bias != nullptr) {
            out[0][j] = out[0][j] + b;
            out[1][j] = out[1][j] + b;
          }
        }
        const std::size_t col = 2 * k, n = OW - col < 2 * L ? OW - col : 2 * L;  // this register pair's columns
        for (std::size_t i = 0; i < 2 && 2 * th + i < OH; ++i) {
          B lo, hi;
          interleave(out[i][0], out[i][1], lo, hi);
          float* row = y + (2 * th + i) * OW + col;
          if (n > L && n < 2 * L && kHasLastL<B>) {  // the last L columns end the row: no masked store
            lo.store_unaligned(row);
            last_l(lo, hi, n - L).store_unaligned(row + n - L);
            continue;
          }
          store_count(lo, row, n < L ? n : L);
          if (n > L) store_count(hi, row + L, n - L);
        }
      }
    }
  }

  // The plane of n values after `plane` (the caller's next channel, contiguous): its lines,
  // requested now, arrive while this one is transformed. A prefetch is a hint that never faults,
  // also past the tensor's end; the address is integer arithmetic, not a pointer past the array.
  static void prefetch_next_plane(const float* plane, std::size_t n) {
    const std::uintptr_t next = reinterpret_cast<std::uintptr_t>(plane) + n * sizeof(float);
    for (std::size_t q = 0; q < n * sizeof(float); q += 64) __builtin_prefetch(reinterpret_cast<const void*>(next + q));
  }

  // e0 o0 e1 o1 ...: lo the first L of them, hi the rest (a copy, in registers).
  template <class B>
  static void interleave(const B& e, const B& o, B& lo, B& hi) {
    using Arch = typename B::arch_type;
#if SORIX_X86
    if constexpr (kIsAvx512<Arch>) {
      const __m512i first = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
      const __m512i second = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
      lo = B(_mm512_permutex2var_ps(e, first, o));
      hi = B(_mm512_permutex2var_ps(e, second, o));
      return;
    } else if constexpr (kIsAvx2<Arch>) {
      const __m256 a = _mm256_unpacklo_ps(e, o), c = _mm256_unpackhi_ps(e, o);  // pairs 0 1 4 5, 2 3 6 7
      lo = B(_mm256_permute2f128_ps(a, c, 0x20));
      hi = B(_mm256_permute2f128_ps(a, c, 0x31));
      return;
    } else if constexpr (kIsSse2<Arch>) {
      lo = B(_mm_unpacklo_ps(e, o));
      hi = B(_mm_unpackhi_ps(e, o));
      return;
    }
#endif
    alignas(64) float ev[B::size], od[B::size], both[2 * B::size];
    e.store_aligned(ev);
    o.store_aligned(od);
    for (std::size_t k = 0; k < B::size; ++k) {
      both[2 * k] = ev[k];
      both[2 * k + 1] = od[k];
    }
    lo = B::load_aligned(both);
    hi = B::load_aligned(both + B::size);
  }

  // Whether a row's ragged end is stored through last_l: on AVX2 (also AVX-512's narrow rows),
  // whose masked store (vmaskmovps) is many times slower than a plain one on AMD: a third of the
  // output transform's time on Zen 3. AVX-512's own masked store (a k-mask) is not slow, and SSE2
  // has none (store_first copies through a buffer there).
  template <class B>
  static constexpr bool kHasLastL = kIsAvx2<typename B::arch_type>;

  // Lanes s .. s + L - 1 of lo followed by hi (0 < s < L, AVX2): the last L of a row's L + s
  // values, stored whole so that they end at the row's end, over s values lo's store wrote the same.
  template <class B>
  static B last_l(const B& lo, const B& hi, std::size_t s) {
#if SORIX_X86
    if constexpr (kIsAvx2<typename B::arch_type>) {
      const __m256i at = _mm256_add_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(static_cast<int>(s)));
      const __m256i lane = _mm256_and_si256(at, _mm256_set1_epi32(7));
      const __m256 from_hi = _mm256_castsi256_ps(_mm256_cmpgt_epi32(at, _mm256_set1_epi32(7)));
      return B(_mm256_blendv_ps(_mm256_permutevar8x32_ps(lo, lane), _mm256_permutevar8x32_ps(hi, lane), from_hi));
    }
#endif
    (void)hi;
    (void)s;
    return lo;  // unused: kHasLastL is false
  }

  // The first n <= L lanes of v at p (nothing past p + n is written).
  template <class B>
  static void store_count(const B& v, float* p, std::size_t n) {
    if (n == B::size) v.store_unaligned(p);
    else store_first<typename B::arch_type, float>(v, p, n);
  }

 public:
  /// x_plane (H x W, overwritten) = the sum of the column entries that read each element, for a
  /// geometry with sw == 1; tap t's row of this (image, channel) plane starts at cols + t * ld.
  template <class T>
  static void col2im_s1(const T* cols, std::size_t ld, const ConvGeometry& g, T* x_plane) {
    using B = xsimd::batch<T, A>;
    constexpr std::size_t L = B::size;
    // A unit is one register of one image row: (row h, columns from b0). Each element's
    // additions are one dependent chain (tap order fixed), so four units are built side by side
    // (independent chains keep the adder busy), in four named registers (an array of them was
    // kept on the stack, each add waiting on a store and a load). Four rows of one column block
    // where the plane has four rows, else four column blocks of one row (Conv1d's planes).
    const std::size_t blocks = (g.W + L - 1) / L, units = g.H * blocks;
    const bool down_rows = g.H >= 4;
    const auto OW = static_cast<std::ptrdiff_t>(g.OW), W = static_cast<std::ptrdiff_t>(g.W);
    const auto sh = static_cast<std::ptrdiff_t>(g.sh);
    struct Unit {
      std::ptrdiff_t h = -1, b0 = 0;  // h < 0: no unit
    };
    auto unit = [&](std::size_t u) {
      Unit r;
      if (u >= units) return r;
      r.h = static_cast<std::ptrdiff_t>(down_rows ? u % g.H : u / blocks);
      r.b0 = static_cast<std::ptrdiff_t>((down_rows ? u / g.H : u % blocks) * L);
      return r;
    };
    // Unit v's output row for tap row ki: the row oh with oh * sh + ki * dh - ph == h, if any
    // (its first value's address), else null.
    auto out_row = [&](const Unit& v, std::size_t ki) -> const T* {
      if (v.h < 0) return nullptr;
      const std::ptrdiff_t num = v.h + static_cast<std::ptrdiff_t>(g.ph) - static_cast<std::ptrdiff_t>(ki * g.dh);
      if (num < 0 || (sh != 1 && num % sh != 0)) return nullptr;
      const std::ptrdiff_t oh = sh == 1 ? num : num / sh;
      if (oh >= static_cast<std::ptrdiff_t>(g.OH)) return nullptr;
      return cols + static_cast<std::size_t>(oh) * g.OW;
    };
    // acc += tap (ki, kj)'s contributions to unit v (row: its out_row, in the tap's column row
    // at `tap`): the output columns ow = w - off inside [0, OW) and the unit.
    auto add_tap = [&](B& acc, const Unit& v, const T* row, std::size_t tap, std::ptrdiff_t off) {
      if (row == nullptr) return;
      const std::ptrdiff_t end = std::min(v.b0 + static_cast<std::ptrdiff_t>(L), W);
      const std::ptrdiff_t lo = std::max(off, v.b0), hi = std::min(OW + off, end);
      if (lo >= hi) return;
      const std::uintptr_t base = reinterpret_cast<std::uintptr_t>(row + tap * ld) +
                                  static_cast<std::uintptr_t>(v.b0 - off) * sizeof(T);  // lane 0's address
      acc = acc + load_lanes<A, T>(base, static_cast<std::size_t>(lo - v.b0), static_cast<std::size_t>(hi - v.b0));
    };
    auto store = [&](const B& acc, const Unit& v) {
      if (v.h < 0) return;
      T* out = x_plane + v.h * W + v.b0;
      const std::size_t lanes = static_cast<std::size_t>(std::min(W - v.b0, static_cast<std::ptrdiff_t>(L)));
      if (lanes == L) acc.store_unaligned(out);
      else store_first<A>(acc, out, lanes);
    };
    for (std::size_t u0 = 0; u0 < units; u0 += 4) {
      const Unit v0 = unit(u0), v1 = unit(u0 + 1), v2 = unit(u0 + 2), v3 = unit(u0 + 3);
      B a0(T(0)), a1(T(0)), a2(T(0)), a3(T(0));
      for (std::size_t ki = 0; ki < g.kh; ++ki) {
        const T *r0 = out_row(v0, ki), *r1 = out_row(v1, ki), *r2 = out_row(v2, ki), *r3 = out_row(v3, ki);
        for (std::size_t kj = 0; kj < g.kw; ++kj) {
          const std::ptrdiff_t off = static_cast<std::ptrdiff_t>(kj * g.dw) - static_cast<std::ptrdiff_t>(g.pw);
          const std::size_t tap = ki * g.kw + kj;
          add_tap(a0, v0, r0, tap, off);
          add_tap(a1, v1, r1, tap, off);
          add_tap(a2, v2, r2, tap, off);
          add_tap(a3, v3, r3, tap, off);
        }
      }
      store(a0, v0);
      store(a1, v1);
      store(a2, v2);
      store(a3, v3);
    }
  }

 private:
  // A row of W values split into its even and odd columns after `pad` zeros: even[k] = row[2k],
  // odd[k] = row[2k + 1] for k < count (and up to the next whole register: winograd_split_width),
  // with row = pad zeros, src, then zeros. In registers: two registers of the padded row, each
  // lane loaded from src or zero (masked loads read nothing outside src), deinterleaved.
  static void split_columns(const float* src, std::size_t W, std::size_t pad, std::size_t count, float* even,
                            float* odd) {
    using B = xsimd::batch<float, A>;
    constexpr std::size_t L = B::size;
    for (std::size_t k0 = 0; k0 < count; k0 += L) {
      B e, o;
      deinterleave(padded_register(src, W, pad, 2 * k0), padded_register(src, W, pad, 2 * k0 + L), e, o);
      e.store_unaligned(even + k0);
      o.store_unaligned(odd + k0);
    }
  }

  // Values m0 .. m0 + L of the row `pad` zeros, src (W values), zeros.
  static xsimd::batch<float, A> padded_register(const float* src, std::size_t W, std::size_t pad, std::size_t m0) {
    using B = xsimd::batch<float, A>;
    constexpr std::size_t L = B::size;
    const std::size_t lo = m0 >= pad ? 0 : std::min(L, pad - m0);  // lanes inside the row: [lo, hi)
    const std::size_t hi = pad + W <= m0 ? 0 : std::min(L, pad + W - m0);
    if (lo == 0 && hi == L) return B::load_unaligned(src + (m0 - pad));
    if (lo >= hi) return B(0.0f);
    return load_lanes<A, float>(reinterpret_cast<std::uintptr_t>(src) + m0 * sizeof(float) - pad * sizeof(float), lo, hi);
  }

  // a0 a1 ... b0 b1 ... -> e = a0 a2 ... b0 b2 ..., o = a1 a3 ... b1 b3 ... (a copy, in registers).
  template <class B>
  static void deinterleave(const B& a, const B& b, B& e, B& o) {
    using Arch = typename B::arch_type;
#if SORIX_X86
    if constexpr (kIsAvx512<Arch>) {
      const __m512i evens = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
      const __m512i odds = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
      e = B(_mm512_permutex2var_ps(a, evens, b));
      o = B(_mm512_permutex2var_ps(a, odds, b));
      return;
    } else if constexpr (kIsAvx2<Arch>) {  // per 128-bit half, then the halves' 64-bit pairs in order
      e = B(_mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0x88)), 0xD8)));
      o = B(_mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0xDD)), 0xD8)));
      return;
    } else if constexpr (kIsSse2<Arch>) {
      e = B(_mm_shuffle_ps(a, b, 0x88));
      o = B(_mm_shuffle_ps(a, b, 0xDD));
      return;
    }
#endif
    constexpr std::size_t L = B::size;
    alignas(64) float both[2 * L], ev[L], od[L];
    a.store_aligned(both);
    b.store_aligned(both + L);
    for (std::size_t k = 0; k < L; ++k) {
      ev[k] = both[2 * k];
      od[k] = both[2 * k + 1];
    }
    e = B::load_aligned(ev);
    o = B::load_aligned(od);
  }

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

  // Output channels side by side: as many as the registers hold besides a weight and the row's
  // kRegs inputs (8 channels at most), then two, then one. GCC keeps the inputs in registers (each
  // is used once per channel); counting them as memory operands left AVX2's 4-register rows one
  // accumulator short, spilled and reloaded every k (conv1 of the CNN: 1.38 -> 1.26 ms, Zen 5).
  template <class T, std::size_t kRegs>
  static void direct_segment(const Direct<T>& d, std::size_t outs) {
    constexpr std::size_t kFit = (kRegisters - 1 - kRegs) / kRegs;
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

  template <class T>
  struct Depthwise {
    const T* xp;
    std::size_t PW;
    const ConvGeometry& g;
    const T* dy;
    T* acc;
    std::size_t ki, kj0;
    bool bias;  // this pass also carries the bias's chains
  };

  // Taps (ki, kj0 .. kj0 + NT - 1) of depthwise_grad_sums, one pass over the plane.
  template <class T, std::size_t NT>
  static void depthwise_taps(const Depthwise<T>& d) {
    using B = xsimd::batch<T, A>;
    constexpr std::size_t L = B::size, R = kDepthwiseLanes / L;
    const ConvGeometry& g = d.g;
    T* const tap_acc = d.acc + (d.ki * g.kw + d.kj0) * kDepthwiseLanes;
    T* const bias_acc = d.acc + g.kh * g.kw * kDepthwiseLanes;
    B a[NT][R], ab[R];
    for (std::size_t t = 0; t < NT; ++t)
      for (std::size_t r = 0; r < R; ++r) a[t][r] = B::load_unaligned(tap_acc + t * kDepthwiseLanes + r * L);
    for (std::size_t r = 0; r < R; ++r) ab[r] = d.bias ? B::load_unaligned(bias_acc + r * L) : B(T(0));
    for (std::size_t oh = 0; oh < g.OH; ++oh) {
      const T* xr = d.xp + (oh * g.sh + d.ki * g.dh) * d.PW + d.kj0 * g.dw;
      const T* dr = d.dy + oh * g.OW;
      for (std::size_t ow0 = 0; ow0 < g.OW; ow0 += kDepthwiseLanes) {
        for (std::size_t r = 0; r < R; ++r) {
          const std::size_t c0 = ow0 + r * L;
          if (c0 >= g.OW) break;
          const std::size_t n = g.OW - c0;
          if (n >= L) {
            const B dv = B::load_unaligned(dr + c0);
            if (d.bias) ab[r] = ab[r] + dv;
            for (std::size_t t = 0; t < NT; ++t) a[t][r] = fmadd<A>(B::load_unaligned(xr + c0 + t * g.dw), dv, a[t][r]);
          } else {  // the row's last columns: masked, nothing past the row read
            const B dv = load_first<A>(dr + c0, n);
            if (d.bias) ab[r] = ab[r] + dv;
            for (std::size_t t = 0; t < NT; ++t) a[t][r] = fmadd<A>(load_first<A>(xr + c0 + t * g.dw, n), dv, a[t][r]);
          }
        }
      }
    }
    for (std::size_t t = 0; t < NT; ++t)
      for (std::size_t r = 0; r < R; ++r) a[t][r].store_unaligned(tap_acc + t * kDepthwiseLanes + r * L);
    if (d.bias)
      for (std::size_t r = 0; r < R; ++r) ab[r].store_unaligned(bias_acc + r * L);
  }
};

}  // namespace sorix::kernels
