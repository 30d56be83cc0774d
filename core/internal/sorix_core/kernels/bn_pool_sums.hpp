#pragma once
// BatchNorm's backward sums after a fused ReLU + 2 x 2 max pool (table.hpp's BnPool), from the
// pooled gradient, the forward's winner codes and the winners' x alone: a quarter of the reads
// of a pass over x and the full-size gradient, and no full-size gradient to rebuild.
//
// The same chains as over the full-size gradient the pool's and relu's backwards give
// (bn_kernels.hpp: per channel, one chain of double adds in (n, l) order from +0). That gradient
// is +0 except at each window's winner, and adding +0 or -0 to a chain changes nothing (a chain
// from +0 is never -0), so a chain needs only the winners' terms, in plane order: for each row
// of windows, the winners in the windows' first row (taps a, b) left to right, then those in
// their second row (c, d). Each row of windows is thus swept twice, a window adding +0 in the
// sweep its winner is not in. The full chain's dot is NaN where a zero of the gradient meets a
// non-finite x - mean (+0 * inf: a non-finite x, or in float64 a finite one overflowing against
// the mean) or the mean is not finite: the forward gives such windows a NaN
// winner_x (bn_relu_pool.hpp), a non-finite mean starts the dot chain at NaN, and NaN absorbs
// every later add (which NaN aside, the full chain's result).
//
// AVX2 and AVX-512 (float): channels run in vector lanes, 8 x 8 blocks of 8 channels' pooled
// planes transposed into scratch, so that lane j's chain is channel c + j's scalar chain.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <type_traits>

#include "sorix_core/kernels/arch.hpp"
#include "sorix_core/kernels/bn_relu_pool.hpp"
#include "sorix_core/kernels/gemm_kernels.hpp"
#include "sorix_core/kernels/table.hpp"

namespace sorix::kernels {

template <class A>
struct BnPoolSumsOf {
  using Codes = BnReluPoolOf<A>;
  static constexpr unsigned kPositive = Codes::kPositive;

  /// sum_g[c - c0] and dot[c - c0] for c in [c0, c1), rows [n0, n1): the chains from +0 of
  /// table.hpp's BnKernels::grad_sums with a pool, gp the pooled gradient [N, C, OH * OW].
  template <class T>
  static void sums(const T* gp, const BnPool<T>& pool, std::size_t C, std::size_t n0, std::size_t n1, std::size_t c0,
                   std::size_t c1, const double* mean, double* sum_g, double* dot) {
    const std::size_t OH = pool.H / 2, OW = pool.W / 2;
    const Planes<T> in{gp, pool.winner_x, pool.winners, C, OH, OW};
    std::size_t c = c0;
    if constexpr (kLanes && std::is_same_v<T, float>) {
      Scratch s(OH * OW, OW);
      for (; c + 8 <= c1; c += 8) lane_block(in, n0, n1, c, mean, sum_g + (c - c0), dot + (c - c0), s);
    }
    if (c < c1) scalar_sums<T>(in, n0, n1, c, c1, mean, sum_g + (c - c0), dot + (c - c0));
  }

 private:
  template <class T>
  struct Planes {
    const T *gp, *xw;
    const std::uint8_t* codes;
    std::size_t C, OH, OW;
    std::size_t P() const { return OH * OW; }
  };

  // A window's terms in sweep s (0: the windows' first row, 1: their second): the full-size
  // gradient at the winner, (+0 + gp) * relu's factor (grad_plane's value), and it times
  // (x - mean) in double, or +0 and +0 when the winner is in the other sweep.
  template <class T>
  static void window_terms(T gp, T xw, std::uint8_t code, double mean, unsigned s, double& tg, double& td) {
    const bool here = ((code >> 1) & 1u) == s;
    const T gated = (T(0) + gp) * ((code & kPositive) != 0 ? T(1) : T(0));
    tg = here ? static_cast<double>(gated) : 0.0;
    td = here ? tg * (static_cast<double>(xw) - mean) : 0.0;
  }

  // Groups of 8 channels side by side (independent chains), one scalar chain per channel.
  template <class T>
  static void scalar_sums(const Planes<T>& in, std::size_t n0, std::size_t n1, std::size_t c0, std::size_t c1,
                          const double* mean, double* sum_g, double* dot) {
    constexpr std::size_t G = 8;
    const std::size_t P = in.P();
    for (std::size_t c = c0; c < c1; c += G) {
      const std::size_t g = std::min(G, c1 - c);
      double ag[G], ad[G];
      for (std::size_t j = 0; j < g; ++j) {
        ag[j] = 0.0;
        ad[j] = 0.0 + (mean[c + j] - mean[c + j]);  // +0, or NaN for a non-finite mean
      }
      for (std::size_t n = n0; n < n1; ++n)
        for (std::size_t oh = 0; oh < in.OH; ++oh)
          for (unsigned s = 0; s < 2; ++s)
            for (std::size_t ow = 0; ow < in.OW; ++ow)
              for (std::size_t j = 0; j < g; ++j) {
                const std::size_t i = (n * in.C + c + j) * P + oh * in.OW + ow;
                double tg, td;
                window_terms<T>(in.gp[i], in.xw[i], in.codes[i], mean[c + j], s, tg, td);
                ag[j] += tg;
                ad[j] += td;
              }
      for (std::size_t j = 0; j < g; ++j) {
        sum_g[c - c0 + j] = ag[j];
        dot[c - c0 + j] = ad[j];
      }
    }
  }

  static constexpr bool kLanes = kIsAvx2<A> || kIsAvx512<A>;
  using F = xsimd::batch<float, A>;
  using D = xsimd::batch<double, A>;
  static constexpr std::size_t kWindowsPerF = F::size / 8;  // a float register: 8 channels of 1 or 2 windows
  static constexpr std::size_t kVecsPerGroup = 8 / D::size;  // double registers per 8 channels

  // One image's 8 channels transposed (window p's 8 channels at [p * 8, p * 8 + 8), a window
  // more so that a whole float register can be loaded at the last window), and a row of
  // windows' second-sweep terms.
  struct Scratch {
    Scratch(std::size_t P, std::size_t OW)
        : g(new float[(P + kWindowsPerF) * 8]()), x(new float[(P + kWindowsPerF) * 8]()),
          codes(new std::uint8_t[(P + kWindowsPerF) * 8 + 16]()),
          second(new D[(OW + kWindowsPerF - 1) / kWindowsPerF * 4]) {}
    std::unique_ptr<float[]> g, x;
    std::unique_ptr<std::uint8_t[]> codes;
    std::unique_ptr<D[]> second;
  };

  // out[c * 8 + r] = in[r * stride + c], r, c < 8 (bytes).
  static void transpose8x8_bytes(const std::uint8_t* in, std::size_t stride, std::uint8_t* out) {
#if SORIX_X86
    if constexpr (kLanes) {
      __m128i r[8];
      for (std::size_t i = 0; i < 8; ++i) r[i] = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(in + i * stride));
      const __m128i a01 = _mm_unpacklo_epi8(r[0], r[1]), a23 = _mm_unpacklo_epi8(r[2], r[3]);
      const __m128i a45 = _mm_unpacklo_epi8(r[4], r[5]), a67 = _mm_unpacklo_epi8(r[6], r[7]);
      const __m128i b0 = _mm_unpacklo_epi16(a01, a23), b1 = _mm_unpackhi_epi16(a01, a23);  // columns 0-3, 4-7 of rows 0-3
      const __m128i b2 = _mm_unpacklo_epi16(a45, a67), b3 = _mm_unpackhi_epi16(a45, a67);  // of rows 4-7
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm_unpacklo_epi32(b0, b2));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 16), _mm_unpackhi_epi32(b0, b2));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 32), _mm_unpacklo_epi32(b1, b3));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 48), _mm_unpackhi_epi32(b1, b3));
      return;
    }
#endif
    for (std::size_t r = 0; r < 8; ++r)
      for (std::size_t c = 0; c < 8; ++c) out[c * 8 + r] = in[r * stride + c];
  }

  // The P-long planes of 8 channels (channel j's at src + j * P) into dst[p * 8 + j].
  template <class T, class Block>
  static void transpose_planes(const T* src, std::size_t P, T* dst, Block&& block) {
    const std::size_t p8 = P / 8 * 8;
    for (std::size_t p = 0; p < p8; p += 8) block(src + p, P, dst + p * 8);
    for (std::size_t p = p8; p < P; ++p)
      for (std::size_t j = 0; j < 8; ++j) dst[p * 8 + j] = src[j * P + p];
  }

  // F::size codes at p as floats.
  static F load_codes(const std::uint8_t* p) {
#if SORIX_X86
    if constexpr (kIsAvx512<A>) {
      return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
    } else if constexpr (kIsAvx2<A>) {
      return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
    } else
#endif
    {
      alignas(64) float buf[F::size];
      for (std::size_t k = 0; k < F::size; ++k) buf[k] = static_cast<float>(p[k]);
      return F::load_aligned(buf);
    }
  }

  // A float register's two halves as doubles (exact).
  static void widen(const F& f, D (&d)[2]) {
#if SORIX_X86
    if constexpr (kIsAvx512<A>) {
      d[0] = _mm512_cvtps_pd(_mm512_castps512_ps256(f));
      d[1] = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(f), 1)));
      return;
    } else if constexpr (kIsAvx2<A>) {
      d[0] = _mm256_cvtps_pd(_mm256_castps256_ps128(f));
      d[1] = _mm256_cvtps_pd(_mm256_extractf128_ps(f, 1));
      return;
    }
#endif
    alignas(64) float buf[F::size];
    alignas(64) double out[F::size];
    f.store_aligned(buf);
    for (std::size_t k = 0; k < F::size; ++k) out[k] = static_cast<double>(buf[k]);
    d[0] = D::load_aligned(out);
    d[1] = D::load_aligned(out + D::size);
  }

  // A float register's lane mask as the masks of widen's two double registers (the same lanes).
  static void widen_mask(const xsimd::batch_bool<float, A>& m, xsimd::batch_bool<double, A> (&d)[2]) {
#if SORIX_X86
    if constexpr (kIsAvx512<A>) {
      const auto bits = static_cast<unsigned>(static_cast<__mmask16>(m));
      d[0] = xsimd::batch_bool<double, A>(static_cast<__mmask8>(bits & 0xffu));
      d[1] = xsimd::batch_bool<double, A>(static_cast<__mmask8>(bits >> 8));
      return;
    } else if constexpr (kIsAvx2<A>) {
      const __m256i lanes = _mm256_castps_si256(static_cast<__m256>(m));  // each lane all ones or zeros
      d[0] = xsimd::batch_bool<double, A>(_mm256_castsi256_pd(_mm256_cvtepi32_epi64(_mm256_castsi256_si128(lanes))));
      d[1] = xsimd::batch_bool<double, A>(_mm256_castsi256_pd(_mm256_cvtepi32_epi64(_mm256_extracti128_si256(lanes, 1))));
      return;
    }
#endif
    static_assert(kLanes, "lane_block runs on AVX2 and AVX-512 only");
  }

  // The chains' adds of one float register's terms (widened: tg the gradient, td it times
  // x - mean), 8 channels of one window per kVecsPerGroup double registers; the second window of
  // an AVX-512 register only when `both`.
  static void add_terms(D (&ag)[kVecsPerGroup], D (&ad)[kVecsPerGroup], const D (&tg)[2], const D (&td)[2],
                        bool both) {
    for (std::size_t h = 0; h < 2; ++h) {
      if (h / kVecsPerGroup == 1 && !both) break;
      const std::size_t v = h % kVecsPerGroup;
      ag[v] = ag[v] + tg[h];
      ad[v] = ad[v] + td[h];
    }
  }

  // 8 channels from c, rows [n0, n1), in vector lanes: window_terms on lanes. Each row of
  // windows is read once: the first sweep's terms are added as they are made, the second's kept.
  static void lane_block(const Planes<float>& in, std::size_t n0, std::size_t n1, std::size_t c, const double* mean,
                         double* sum_g, double* dot, Scratch& s) {
    const std::size_t P = in.P();
    D ag[kVecsPerGroup], ad[kVecsPerGroup], m[kVecsPerGroup];
    for (std::size_t v = 0; v < kVecsPerGroup; ++v) {
      m[v] = D::load_unaligned(mean + c + v * D::size);
      ag[v] = D(0.0);
      ad[v] = D(0.0) + (m[v] - m[v]);  // +0, or NaN for a non-finite mean
    }
    const F zero(0.f), one(1.f), positive_code(static_cast<float>(kPositive)), second_row_code(2.f);
    for (std::size_t n = n0; n < n1; ++n) {
      const std::size_t from = (n * in.C + c) * P;
      transpose_planes(in.gp + from, P, s.g.get(), [](const float* src, std::size_t ld, float* dst) {
        GemmKernels<A, float>::transpose8x8(src, ld, dst, 8);
      });
      transpose_planes(in.xw + from, P, s.x.get(), [](const float* src, std::size_t ld, float* dst) {
        GemmKernels<A, float>::transpose8x8(src, ld, dst, 8);
      });
      transpose_planes(in.codes + from, P, s.codes.get(), [](const std::uint8_t* src, std::size_t ld,
                                                             std::uint8_t* dst) { transpose8x8_bytes(src, ld, dst); });
      for (std::size_t oh = 0; oh < in.OH; ++oh) {
        D* second = s.second.get();
        for (std::size_t ow = 0; ow < in.OW; ow += kWindowsPerF, second += 4) {
          const std::size_t at = (oh * in.OW + ow) * 8;
          const F code = load_codes(s.codes.get() + at);
          const auto positive = code >= positive_code;
          const auto in_second = code - xsimd::select(positive, positive_code, zero) >= second_row_code;
          const F gated = (zero + F::load_unaligned(s.g.get() + at)) * xsimd::select(positive, one, zero);
          const F x = F::load_unaligned(s.x.get() + at);
          // Each window's terms once, in double (the gradient and it times x - mean), then
          // given to the sweep its winner is in and +0 to the other (window_terms).
          D g[2], xd[2], td[2], first_g[2], first_d[2];
          xsimd::batch_bool<double, A> second_sweep[2];
          widen(gated, g);
          widen(x, xd);
          widen_mask(in_second, second_sweep);
          for (std::size_t h = 0; h < 2; ++h) {
            td[h] = g[h] * (xd[h] - m[h % kVecsPerGroup]);
            first_g[h] = xsimd::select(second_sweep[h], D(0.0), g[h]);
            first_d[h] = xsimd::select(second_sweep[h], D(0.0), td[h]);
            second[h] = xsimd::select(second_sweep[h], g[h], D(0.0));
            second[2 + h] = xsimd::select(second_sweep[h], td[h], D(0.0));
          }
          add_terms(ag, ad, first_g, first_d, ow + 1 < in.OW);
        }
        second = s.second.get();
        for (std::size_t ow = 0; ow < in.OW; ow += kWindowsPerF, second += 4) {
          const D tg[2] = {second[0], second[1]}, td[2] = {second[2], second[3]};
          add_terms(ag, ad, tg, td, ow + 1 < in.OW);
        }
      }
    }
    for (std::size_t v = 0; v < kVecsPerGroup; ++v) {
      ag[v].store_unaligned(sum_g + v * D::size);
      ad[v].store_unaligned(dot + v * D::size);
    }
  }
};

}  // namespace sorix::kernels
