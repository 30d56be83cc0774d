#pragma once
// BatchNorm's loops (table.hpp's BnKernels), written once for every architecture. Every channel's
// sum is one chain of double adds in (n, l) order from +0, whatever the register width: a vector
// lane is one channel (channels side by side), so a lane does exactly the scalar chain's adds.
// The elementwise passes are separate IEEE subtracts, multiplies and adds per element (never
// fused), a lane or a scalar alike. float inputs widen to double exactly.
#include <algorithm>
#include <cstddef>

#include "sorix_core/kernels/arch.hpp"
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
    if (mean == nullptr) {
      planes(C, L, n0, n1, c0, c1, 1, outs, [&](auto& acc, std::size_t j, std::size_t i, std::size_t) {
        acc[0][j] += static_cast<double>(x[i]);
      });
    } else {
      planes(C, L, n0, n1, c0, c1, 1, outs, [&](auto& acc, std::size_t j, std::size_t i, std::size_t c) {
        const double dv = static_cast<double>(x[i]) - mean[c];
        acc[0][j] += dv * dv;
      });
    }
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
    planes(C, L, n0, n1, c0, c1, 2, outs, [&](auto& acc, std::size_t j, std::size_t i, std::size_t c) {
      const double gv = static_cast<double>(g[i]);
      acc[0][j] += gv;
      acc[1][j] += gv * (static_cast<double>(x[i]) - mean[c]);
    });
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
