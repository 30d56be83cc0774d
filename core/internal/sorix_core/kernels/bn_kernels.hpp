#pragma once
// BatchNorm's loops (table.hpp's BnKernels), written once for every architecture. Every channel's
// sum is one chain of double adds in (n, l) order from +0, whatever the register width: a vector
// lane is one channel (channels side by side), so a lane does exactly the scalar chain's adds.
// The elementwise passes are separate IEEE subtracts, multiplies and adds per element (never
// fused), a lane or a scalar alike. float inputs widen to double exactly.
#include <algorithm>
#include <cstddef>

#include "sorix_core/kernels/arch.hpp"
#include "sorix_core/kernels/gemm_kernels.hpp"
#include "sorix_core/kernels/table.hpp"

namespace sorix::kernels {

template <class A>
struct BnKernelsOf {
  using D = xsimd::batch<double, A>;
  static constexpr std::size_t WD = D::size;

  // D::size consecutive values of p as doubles (exact).
  static D wide(const double* p) { return D::load_unaligned(p); }
  static D wide(const float* p) {
#if SORIX_X86
    if constexpr (kIsAvx512<A>) {
      return _mm512_cvtps_pd(_mm256_loadu_ps(p));
    } else if constexpr (kIsAvx2<A>) {
      return _mm256_cvtps_pd(_mm_loadu_ps(p));
    } else if constexpr (kIsSse2<A>) {
      return _mm_cvtps_pd(_mm_castsi128_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
    } else
#endif
    {
      alignas(64) double buf[WD];
      for (std::size_t l = 0; l < WD; ++l) buf[l] = static_cast<double>(p[l]);
      return D::load_aligned(buf);
    }
  }

  // [N, C] (L == 1): channels across lanes, four registers of channels at a time, each lane's
  // chain walking the rows in order; then one register; then single channels.
  template <class T, class Lane, class Scalar>
  static void rows_across_channels(std::size_t C, std::size_t n0, std::size_t n1, std::size_t c0, std::size_t c1,
                                   std::size_t outs, double* const* out, Lane&& lane, Scalar&& scalar) {
    std::size_t c = c0;
    for (; c + 4 * WD <= c1; c += 4 * WD) {
      D acc[2][4];
      for (auto& a : acc)
        for (auto& v : a) v = D(0.0);
      for (std::size_t n = n0; n < n1; ++n)
        for (std::size_t j = 0; j < 4; ++j) lane(acc, j, n * C + c + j * WD, c + j * WD);
      for (std::size_t s = 0; s < outs; ++s)
        for (std::size_t j = 0; j < 4; ++j) acc[s][j].store_unaligned(out[s] + (c - c0) + j * WD);
    }
    for (; c + WD <= c1; c += WD) {
      D acc[2][4];
      acc[0][0] = acc[1][0] = D(0.0);
      for (std::size_t n = n0; n < n1; ++n) lane(acc, 0, n * C + c, c);
      for (std::size_t s = 0; s < outs; ++s) acc[s][0].store_unaligned(out[s] + (c - c0));
    }
    for (; c < c1; ++c) {
      double acc[2] = {0.0, 0.0};
      for (std::size_t n = n0; n < n1; ++n) scalar(acc, n * C + c, c);
      for (std::size_t s = 0; s < outs; ++s) out[s][c - c0] = acc[s];
    }
  }

  // [N, C, L]: each channel's chain walks its planes in (n, l) order; groups of G channels
  // advance side by side (independent add chains), then single channels.
  template <class Step>
  static void planes(std::size_t C, std::size_t L, std::size_t n0, std::size_t n1, std::size_t c0, std::size_t c1,
                     std::size_t outs, double* const* out, Step&& step) {
    constexpr std::size_t G = 8;
    const auto run = [&](auto group, std::size_t c) {
      constexpr std::size_t g = decltype(group)::value;
      double acc[2][g] = {};
      for (std::size_t n = n0; n < n1; ++n) {
        const std::size_t base = (n * C + c) * L;
        for (std::size_t l = 0; l < L; ++l)
          for (std::size_t j = 0; j < g; ++j) step(acc, j, base + j * L + l, c + j);
      }
      for (std::size_t s = 0; s < outs; ++s) std::copy(acc[s], acc[s] + g, out[s] + (c - c0));
    };
    std::size_t c = c0;
    for (; c + G <= c1; c += G) run(std::integral_constant<std::size_t, G>{}, c);
    for (; c < c1; ++c) run(std::integral_constant<std::size_t, 1>{}, c);
  }

  // [N, C, L] float planes with AVX2 / AVX-512: channels in vector lanes, as rows_across_channels
  // does for [N, C]. An 8 x 8 block (8 channels by 8 positions) of each source is transposed in
  // registers (a copy), then added position by position, so lane j's chain is channel c + j's
  // scalar chain in (n, l) order: planes()'s bits. NG groups of 8 channels advance side by side
  // (independent chains). vstep(acc, v, vals, c): vals[s] = source s at the lane vector of
  // channels c .. c + WD, acc[.][v] its accumulators.
  static constexpr bool kLanePlanes = kIsAvx2<A> || kIsAvx512<A>;
  static constexpr std::size_t kGroupVecs = WD < 8 ? 8 / WD : 1;  // lane vectors per 8 channels

  template <std::size_t NS, std::size_t NG, class VStep>
  static void lane_planes(const float* const (&src)[NS], std::size_t C, std::size_t L, std::size_t n0, std::size_t n1,
                          std::size_t c, std::size_t c0, std::size_t outs, double* const* out, VStep&& vstep) {
    constexpr std::size_t V = NG * kGroupVecs;
    D acc[2][V];
    for (auto& a : acc)
      for (auto& v : a) v = D(0.0);
    alignas(64) float buf[NS][NG][64];
    const auto add_position = [&](std::size_t k) {  // position k of the transposed blocks
      for (std::size_t v = 0; v < V; ++v) {
        D vals[NS];
        for (std::size_t s = 0; s < NS; ++s) vals[s] = wide(&buf[s][v / kGroupVecs][k * 8 + (v % kGroupVecs) * WD]);
        vstep(acc, v, vals, c + v * WD);
      }
    };
    for (std::size_t n = n0; n < n1; ++n) {
      const std::size_t base = (n * C + c) * L;
      std::size_t l = 0;
      for (; l + 8 <= L; l += 8) {
        for (std::size_t s = 0; s < NS; ++s)
          for (std::size_t q = 0; q < NG; ++q)
            GemmKernels<A, float>::transpose8x8(src[s] + base + q * 8 * L + l, L, buf[s][q], 8);
        for (std::size_t k = 0; k < 8; ++k) add_position(k);
      }
      for (; l < L; ++l) {  // the plane's last positions: one lane per channel, gathered
        for (std::size_t s = 0; s < NS; ++s)
          for (std::size_t q = 0; q < NG; ++q)
            for (std::size_t j = 0; j < 8; ++j) buf[s][q][j] = src[s][base + (q * 8 + j) * L + l];
        add_position(0);
      }
    }
    for (std::size_t s = 0; s < outs; ++s)
      for (std::size_t v = 0; v < V; ++v) acc[s][v].store_unaligned(out[s] + (c - c0) + v * WD);
  }

  // lane_planes over the channels [c0, c1): 16 channels, then 8, then planes() for the rest.
  template <std::size_t NS, class VStep, class Step>
  static void planes_by_lanes(const float* const (&src)[NS], std::size_t C, std::size_t L, std::size_t n0,
                              std::size_t n1, std::size_t c0, std::size_t c1, std::size_t outs, double* const* out,
                              VStep&& vstep, Step&& step) {
    std::size_t c = c0;
    for (; c + 16 <= c1; c += 16) lane_planes<NS, 2>(src, C, L, n0, n1, c, c0, outs, out, vstep);
    for (; c + 8 <= c1; c += 8) lane_planes<NS, 1>(src, C, L, n0, n1, c, c0, outs, out, vstep);
    if (c < c1) {
      double* rest[2] = {out[0] + (c - c0), outs > 1 ? out[1] + (c - c0) : nullptr};
      planes(C, L, n0, n1, c, c1, outs, rest, step);
    }
  }

  template <class T>
  static void channel_sums(const T* x, std::size_t C, std::size_t L, std::size_t n0, std::size_t n1, std::size_t c0,
                           std::size_t c1, const double* mean, double* out) {
    double* const outs[1] = {out};
    if (L == 1) {
      if (mean == nullptr) {
        rows_across_channels<T>(
            C, n0, n1, c0, c1, 1, outs,
            [&](D (&acc)[2][4], std::size_t j, std::size_t i, std::size_t) { acc[0][j] = acc[0][j] + wide(x + i); },
            [&](double* acc, std::size_t i, std::size_t) { acc[0] += static_cast<double>(x[i]); });
      } else {
        rows_across_channels<T>(
            C, n0, n1, c0, c1, 1, outs,
            [&](D (&acc)[2][4], std::size_t j, std::size_t i, std::size_t c) {
              const D dv = wide(x + i) - D::load_unaligned(mean + c);
              acc[0][j] = acc[0][j] + dv * dv;
            },
            [&](double* acc, std::size_t i, std::size_t c) {
              const double dv = static_cast<double>(x[i]) - mean[c];
              acc[0] += dv * dv;
            });
      }
      return;
    }
    const auto sum = [&](auto& acc, std::size_t j, std::size_t i, std::size_t) { acc[0][j] += static_cast<double>(x[i]); };
    const auto squares = [&](auto& acc, std::size_t j, std::size_t i, std::size_t c) {
      const double dv = static_cast<double>(x[i]) - mean[c];
      acc[0][j] += dv * dv;
    };
    if constexpr (kLanePlanes && std::is_same_v<T, float>) {
      const float* const src[1] = {x};
      if (mean == nullptr) {
        planes_by_lanes<1>(src, C, L, n0, n1, c0, c1, 1, outs,
                           [](auto& acc, std::size_t v, const D* vals, std::size_t) { acc[0][v] = acc[0][v] + vals[0]; },
                           sum);
      } else {
        planes_by_lanes<1>(
            src, C, L, n0, n1, c0, c1, 1, outs,
            [&](auto& acc, std::size_t v, const D* vals, std::size_t c) {
              const D dv = vals[0] - D::load_unaligned(mean + c);
              acc[0][v] = acc[0][v] + dv * dv;
            },
            squares);
      }
      return;
    }
    if (mean == nullptr) planes(C, L, n0, n1, c0, c1, 1, outs, sum);
    else planes(C, L, n0, n1, c0, c1, 1, outs, squares);
  }

  template <class T>
  static void grad_sums(const T* g, const T* x, std::size_t C, std::size_t L, std::size_t n0, std::size_t n1,
                        std::size_t c0, std::size_t c1, const double* mean, double* sum_g, double* dot) {
    double* const outs[2] = {sum_g, dot};
    if (L == 1) {
      rows_across_channels<T>(
          C, n0, n1, c0, c1, 2, outs,
          [&](D (&acc)[2][4], std::size_t j, std::size_t i, std::size_t c) {
            const D gv = wide(g + i);
            acc[0][j] = acc[0][j] + gv;
            acc[1][j] = acc[1][j] + gv * (wide(x + i) - D::load_unaligned(mean + c));
          },
          [&](double* acc, std::size_t i, std::size_t c) {
            const double gv = static_cast<double>(g[i]);
            acc[0] += gv;
            acc[1] += gv * (static_cast<double>(x[i]) - mean[c]);
          });
      return;
    }
    const auto step = [&](auto& acc, std::size_t j, std::size_t i, std::size_t c) {
      const double gv = static_cast<double>(g[i]);
      acc[0][j] += gv;
      acc[1][j] += gv * (static_cast<double>(x[i]) - mean[c]);
    };
    if constexpr (kLanePlanes && std::is_same_v<T, float>) {
      const float* const src[2] = {g, x};
      planes_by_lanes<2>(
          src, C, L, n0, n1, c0, c1, 2, outs,
          [&](auto& acc, std::size_t v, const D* vals, std::size_t c) {
            acc[0][v] = acc[0][v] + vals[0];
            acc[1][v] = acc[1][v] + vals[0] * (vals[1] - D::load_unaligned(mean + c));
          },
          step);
      return;
    }
    planes(C, L, n0, n1, c0, c1, 2, outs, step);
  }

  // f(i, c): element i of channel c, rows [n0, n1); [N, C] across the channels, [N, C, L] along
  // each plane; a vector body and the same expression on scalars for the rest.
  template <class T, class Vec, class Scalar>
  static void elementwise(std::size_t C, std::size_t L, std::size_t n0, std::size_t n1, Vec&& vec, Scalar&& scalar) {
    using B = xsimd::batch<T, A>;
    constexpr std::size_t W = B::size;
    for (std::size_t n = n0; n < n1; ++n) {
      if (L == 1) {
        const std::size_t off = n * C;
        std::size_t c = 0;
        for (; c + W <= C; c += W) vec(off + c, c, true);
        for (; c < C; ++c) scalar(off + c, c);
        continue;
      }
      for (std::size_t c = 0; c < C; ++c) {
        const std::size_t off = (n * C + c) * L;
        std::size_t l = 0;
        for (; l + W <= L; l += W) vec(off + l, c, false);
        for (; l < L; ++l) scalar(off + l, c);
      }
    }
  }

  template <class T>
  static void normalize(const T* x, T* y, std::size_t C, std::size_t L, std::size_t n0, std::size_t n1, const T* mean,
                        const T* scale, const T* shift) {
    using B = xsimd::batch<T, A>;
    // per channel: across channels ([N, C]) the constants are loaded, along a plane broadcast.
    const auto cst = [](const T* p, std::size_t c, bool across) { return across ? B::load_unaligned(p + c) : B(p[c]); };
    elementwise<T>(
        C, L, n0, n1,
        [&](std::size_t i, std::size_t c, bool across) {
          ((B::load_unaligned(x + i) - cst(mean, c, across)) * cst(scale, c, across) + cst(shift, c, across))
              .store_unaligned(y + i);
        },
        [&](std::size_t i, std::size_t c) { y[i] = (x[i] - mean[c]) * scale[c] + shift[c]; });
  }

  template <class T>
  static void backward_dx(const T* g, const T* x, T* dx, std::size_t C, std::size_t L, std::size_t n0, std::size_t n1,
                          const T* gmean, const T* mean, const T* k, const T* scale) {
    using B = xsimd::batch<T, A>;
    const auto cst = [](const T* p, std::size_t c, bool across) { return across ? B::load_unaligned(p + c) : B(p[c]); };
    elementwise<T>(
        C, L, n0, n1,
        [&](std::size_t i, std::size_t c, bool across) {
          ((B::load_unaligned(g + i) - cst(gmean, c, across) -
            (B::load_unaligned(x + i) - cst(mean, c, across)) * cst(k, c, across)) *
           cst(scale, c, across))
              .store_unaligned(dx + i);
        },
        [&](std::size_t i, std::size_t c) { dx[i] = (g[i] - gmean[c] - (x[i] - mean[c]) * k[c]) * scale[c]; });
  }

  template <class T>
  static constexpr BnKernels<T> kernels() {
    return BnKernels<T>{&channel_sums<T>, &grad_sums<T>, &normalize<T>, &backward_dx<T>};
  }
};

}  // namespace sorix::kernels
