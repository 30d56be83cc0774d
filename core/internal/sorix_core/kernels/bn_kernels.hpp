#pragma once
// BatchNorm's loops (table.hpp's BnKernels), written once for every architecture. The channel
// sums (the statistics of [N, C] inputs and of short planes, the backward's gradient sums) are
// one chain of double adds per channel in (n, l) order from +0, whatever the register width: a
// vector lane is one channel (channels side by side), so a lane does exactly the scalar chain's
// adds. A plane's moments (the statistics of planes of at least batchnorm.hpp's
// kPlaneMomentsFrom values) are 16 chains along the plane, whole chains in each lane, folded in
// one fixed order.
// The elementwise passes are separate IEEE subtracts, multiplies and adds per element (never
// fused), a lane or a scalar alike. float inputs widen to double exactly.
#include <algorithm>
#include <array>
#include <memory>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "sorix_core/kernels/arch.hpp"
#include "sorix_core/kernels/bn_pool_sums.hpp"
#include "sorix_core/kernels/bn_relu_pool.hpp"
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

  // The first `count` (<= WD) values of p as doubles, +0 in the other lanes; nothing past p + count
  // is read (masked loads: a buffer filled by scalar stores and read back as a register would wait
  // for the stores to reach the cache).
  template <class T>
  static D wide_first(const T* p, std::size_t count) {
#if SORIX_X86
    if constexpr (kIsAvx512<A>) {
      const auto mask = static_cast<std::uint16_t>((1u << count) - 1);
      if constexpr (std::is_same_v<T, float>) return _mm512_cvtps_pd(_mm512_castps512_ps256(_mm512_maskz_loadu_ps(mask, p)));
      else return _mm512_maskz_loadu_pd(static_cast<__mmask8>(mask), p);
    } else if constexpr (kIsAvx2<A>) {
      if constexpr (std::is_same_v<T, float>) {
        const __m128i in = _mm_cmpgt_epi32(_mm_set1_epi32(static_cast<int>(count)), _mm_setr_epi32(0, 1, 2, 3));
        return _mm256_cvtps_pd(_mm_maskload_ps(p, in));
      } else {
        const __m256i in =
            _mm256_cmpgt_epi64(_mm256_set1_epi64x(static_cast<long long>(count)), _mm256_setr_epi64x(0, 1, 2, 3));
        return _mm256_maskload_pd(p, in);
      }
    } else if constexpr (kIsSse2<A>) {  // two lanes: one value, or a whole register
      if (count >= WD) return wide(p);
      if constexpr (std::is_same_v<T, float>) return _mm_cvtps_pd(_mm_load_ss(p));
      else return _mm_load_sd(p);
    } else
#endif
    {
      alignas(64) double buf[WD] = {};
      for (std::size_t l = 0; l < count; ++l) buf[l] = static_cast<double>(p[l]);
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
  // channels c .. c + WD, acc[.][v] its accumulators. block_gate(blocks, c8) may rewrite source 0's
  // transposed block of channels c8 .. c8 + 8 (8 positions x 8 channels, 64 floats) from the
  // sources' blocks before they are added (a fused ReLU's mask, in float lanes).
  static constexpr bool kLanePlanes = kIsAvx2<A> || kIsAvx512<A>;
  static constexpr std::size_t kGroupVecs = WD < 8 ? 8 / WD : 1;  // lane vectors per 8 channels

  struct NoBlockGate {
    template <class Blocks>
    void operator()(Blocks&, std::size_t, std::size_t) const {}
  };

  template <std::size_t NS, std::size_t NG, class VStep, class BlockGate = NoBlockGate>
  static void lane_planes(const float* const (&src)[NS], std::size_t C, std::size_t L, std::size_t n0, std::size_t n1,
                          std::size_t c, std::size_t c0, std::size_t outs, double* const* out, VStep&& vstep,
                          BlockGate&& block_gate = {}) {
    constexpr std::size_t V = NG * kGroupVecs;
    D acc[2][V];
    for (std::size_t s = 0; s < 2; ++s)
      for (std::size_t v = 0; v < V; ++v)
        acc[s][v] = D(0.0);
    alignas(64) float buf[NS][NG][64] = {};  // zeros: a plane's tail uses position 0 only
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
        for (std::size_t q = 0; q < NG; ++q) block_gate(buf, q, c + q * 8);
        for (std::size_t k = 0; k < 8; ++k) add_position(k);
      }
      for (; l < L; ++l) {  // the plane's last positions: one lane per channel, gathered
        for (std::size_t s = 0; s < NS; ++s)
          for (std::size_t q = 0; q < NG; ++q)
            for (std::size_t j = 0; j < 8; ++j) buf[s][q][j] = src[s][base + (q * 8 + j) * L + l];
        for (std::size_t q = 0; q < NG; ++q) block_gate(buf, q, c + q * 8);
        add_position(0);
      }
    }
    for (std::size_t s = 0; s < outs; ++s)
      for (std::size_t v = 0; v < V; ++v) acc[s][v].store_unaligned(out[s] + (c - c0) + v * WD);
  }

  // lane_planes over the channels [c0, c1): 16 channels, then 8, then planes() for the rest.
  template <std::size_t NS, class VStep, class Step, class BlockGate = NoBlockGate>
  static void planes_by_lanes(const float* const (&src)[NS], std::size_t C, std::size_t L, std::size_t n0,
                              std::size_t n1, std::size_t c0, std::size_t c1, std::size_t outs, double* const* out,
                              VStep&& vstep, Step&& step, BlockGate&& block_gate = {}) {
    std::size_t c = c0;
    for (; c + 16 <= c1; c += 16) lane_planes<NS, 2>(src, C, L, n0, n1, c, c0, outs, out, vstep, block_gate);
    for (; c + 8 <= c1; c += 8) lane_planes<NS, 1>(src, C, L, n0, n1, c, c0, outs, out, vstep, block_gate);
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

  // plane_moments (table.hpp): the 16 chains of a plane are kChainVecs registers (chain j in
  // register j / WD, lane j % WD). A plane's last partial block of 16 positions is padded with +0.
  static constexpr std::size_t kMomentChains = 16;
  static constexpr std::size_t kChainVecs = kMomentChains / WD;
  static_assert(kMomentChains % WD == 0, "a register holds a whole number of a plane's chains");
  using Chains = D[kChainVecs];

  // The 16 chains folded by halves (table.hpp's order): registers first, then lanes.
  static double fold_chains(Chains& acc) {
    for (std::size_t n = kChainVecs; n > 1; n /= 2)
      for (std::size_t v = 0; v < n / 2; ++v) acc[v] = acc[v] + acc[v + n / 2];
    alignas(64) double lanes[WD];
    acc[0].store_aligned(lanes);
    for (std::size_t n = WD; n > 1; n /= 2)
      for (std::size_t j = 0; j < n / 2; ++j) lanes[j] = lanes[j] + lanes[j + n / 2];
    return lanes[0];
  }

  // F chain sets of one plane, walked together: step(acc, v, values, in_plane) adds the
  // 16-position block's register v (WD values as doubles) to acc[f][v] for each f. The last
  // L % 16 values come as one more block, padded with +0 (wide_first), whose in_plane (a batch_bool; full
  // blocks pass std::true_type) marks the lanes inside the plane: a step adds +0 in the others,
  // which leaves a chain's bits as they are (a chain is never -0: it starts at +0, and a sum is
  // -0 only when both addends are; a NaN stays the same NaN), so whatever the width pads, each
  // chain's value is that of its positions' adds alone.
  template <std::size_t F, class T, class Step>
  static void walk_chains(const T* plane, std::size_t L, Step&& step, double (&out)[F]) {
    Chains acc[F];
    for (auto& a : acc)
      for (auto& v : a) v = D(0.0);
    const std::size_t l0 = L / kMomentChains * kMomentChains;
    for (std::size_t l = 0; l < l0; l += kMomentChains)
      for (std::size_t v = 0; v < kChainVecs; ++v) step(acc, v, wide(plane + l + v * WD), std::true_type{});
    if (l0 < L) {
      alignas(64) double lane[WD];
      for (std::size_t i = 0; i < WD; ++i) lane[i] = static_cast<double>(i);
      const D lanes = D::load_aligned(lane), rest(static_cast<double>(L - l0));
      for (std::size_t v = 0; v * WD < L - l0; ++v)
        step(acc, v, wide_first(plane + l0 + v * WD, std::min(WD, L - l0 - v * WD)),
             lanes + D(static_cast<double>(v * WD)) < rest);
    }
    for (std::size_t f = 0; f < F; ++f) out[f] = fold_chains(acc[f]);
  }

  template <class T>
  static void plane_moments(const T* x, std::size_t L, std::size_t p0, std::size_t p1, double* sum, double* sq,
                            double* dev) {
    for (std::size_t p = p0; p < p1; ++p) {
      const T* plane = x + p * L;
      double s[1], d[2];
      // The padding's +0 needs no mask here.
      walk_chains<1>(
          plane, L, [](Chains (&acc)[1], std::size_t v, const D& x, const auto&) { acc[0][v] = acc[0][v] + x; }, s);
      const double m = s[0] / static_cast<double>(L);  // the plane just read: in cache for the second walk
      const D mv(m);
      walk_chains<2>(
          plane, L,
          [&](Chains (&acc)[2], std::size_t v, const D& x, const auto& in_plane) {
            D dv = x - mv;
            if constexpr (!std::is_same_v<std::decay_t<decltype(in_plane)>, std::true_type>)
              dv = xsimd::select(in_plane, dv, D(0.0));
            acc[0][v] = acc[0][v] + dv * dv;
            acc[1][v] = acc[1][v] + dv;
          },
          d);
      sum[p - p0] = s[0];
      sq[p - p0] = d[0];
      dev[p - p0] = d[1];
    }
  }

  // v rounded to float and widened back: with it, double arithmetic on float values gives float
  // arithmetic's bits (each +, - or * rounded twice, to double then to float, is rounded once to
  // float: double has more than 2 * 24 + 2 bits).
  template <class T>
  static D rounded_as(const D& v) {
    if constexpr (std::is_same_v<T, double>) {
      return v;
    } else {
#if SORIX_X86
      if constexpr (kIsAvx512<A>) {
        return _mm512_cvtps_pd(_mm512_cvtpd_ps(v));
      } else if constexpr (kIsAvx2<A>) {
        return _mm256_cvtps_pd(_mm256_cvtpd_ps(v));
      } else if constexpr (kIsSse2<A>) {
        return _mm_cvtps_pd(_mm_cvtpd_ps(v));
      } else
#endif
      {
        alignas(64) double buf[WD];
        v.store_aligned(buf);
        for (auto& b : buf) b = static_cast<double>(static_cast<float>(b));
        return D::load_aligned(buf);
      }
    }
  }

  // relu's gradient factor (y > 0 ? 1 : 0) for the normalisation's y = (x - mean) * scale + shift
  // of channel c, computed as normalize computes it in T: a scalar, and a lane vector of channels
  // c .. c + WD from x widened to double (the final add's sign is exact in double, the two
  // roundings before it are T's).
  template <class T>
  static T relu_factor(T x, const BnRelu<T>& r, std::size_t c) {
    const T y = (x - r.mean[c]) * r.scale[c] + r.shift[c];
    return y > T(0) ? T(1) : T(0);
  }
  template <class T>
  static D relu_factor(const D& x, const BnRelu<T>& r, std::size_t c) {
    const D y = rounded_as<T>(rounded_as<T>(x - wide(r.mean + c)) * wide(r.scale + c)) + wide(r.shift + c);
    return xsimd::select(y > D(0.0), D(1.0), D(0.0));
  }

  // relu's factor on lane_planes' transposed blocks (8 positions x 8 channels, float lanes): g's
  // block times (y > 0 ? 1 : 0), y from x's block as normalize computes it. A float vector spans
  // one or two positions, so each channel's constant is repeated to a 16-lane row, built once per
  // block slot and channel group.
  struct ReluBlockGate {
    explicit ReluBlockGate(const BnRelu<float>& relu) : r(relu) {}
    const BnRelu<float>& r;
    std::size_t channel[2] = {~std::size_t{0}, ~std::size_t{0}};
    alignas(64) float mean[2][16], scale[2][16], shift[2][16];

    template <class Blocks>
    void operator()(Blocks& blocks, std::size_t q, std::size_t c8) {
      using F = xsimd::batch<float, A>;
      if (channel[q] != c8) {
        for (std::size_t j = 0; j < 16; ++j) {
          mean[q][j] = r.mean[c8 + j % 8];
          scale[q][j] = r.scale[c8 + j % 8];
          shift[q][j] = r.shift[c8 + j % 8];
        }
        channel[q] = c8;
      }
      const F vm = F::load_aligned(mean[q]), vs = F::load_aligned(scale[q]), vh = F::load_aligned(shift[q]);
      float* gb = blocks[0][q];
      const float* xb = blocks[1][q];
      for (std::size_t i = 0; i < 64; i += F::size) {
        const F y = (F::load_aligned(xb + i) - vm) * vs + vh;
        (F::load_aligned(gb + i) * xsimd::select(y > F(0.f), F(1.f), F(0.f))).store_aligned(gb + i);
      }
    }
  };

  // grad_sums with g's values given by gate(g, x, c) on lane vectors of channels ([N, C]),
  // gate_at(i, c) on scalars, and block_gate on lane_planes' transposed float blocks.
  template <class T, class Gate, class GateAt, class BlockGate>
  static void gated_grad_sums(const T* g, const T* x, std::size_t C, std::size_t L, std::size_t n0, std::size_t n1,
                              std::size_t c0, std::size_t c1, const double* mean, double* sum_g, double* dot,
                              Gate&& gate, GateAt&& gate_at, BlockGate&& block_gate) {
    double* const outs[2] = {sum_g, dot};
    if (L == 1) {
      rows_across_channels<T>(
          C, n0, n1, c0, c1, 2, outs,
          [&](D (&acc)[2][4], std::size_t j, std::size_t i, std::size_t c) {
            const D xv = wide(x + i);
            const D gv = gate(wide(g + i), xv, c);
            acc[0][j] = acc[0][j] + gv;
            acc[1][j] = acc[1][j] + gv * (xv - D::load_unaligned(mean + c));
          },
          [&](double* acc, std::size_t i, std::size_t c) {
            const double gv = gate_at(i, c);
            acc[0] += gv;
            acc[1] += gv * (static_cast<double>(x[i]) - mean[c]);
          });
      return;
    }
    const auto step = [&](auto& acc, std::size_t j, std::size_t i, std::size_t c) {
      const double gv = gate_at(i, c);
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
          step, block_gate);
      return;
    }
    planes(C, L, n0, n1, c0, c1, 2, outs, step);
  }

  template <class T>
  static void grad_sums(const T* g, const T* x, std::size_t C, std::size_t L, std::size_t n0, std::size_t n1,
                        std::size_t c0, std::size_t c1, const double* mean, const BnRelu<T>* relu,
                        const BnPool<T>* pool, double* sum_g, double* dot) {
    if (pool != nullptr) {  // relu's factor is in the winner codes; x is read at the winners only
      BnPoolSumsOf<A>::template sums<T>(g, *pool, C, n0, n1, c0, c1, mean, sum_g, dot);
      return;
    }
    if (relu == nullptr) {
      gated_grad_sums<T>(
          g, x, C, L, n0, n1, c0, c1, mean, sum_g, dot, [](const D& gv, const D&, std::size_t) { return gv; },
          [g](std::size_t i, std::size_t) { return static_cast<double>(g[i]); }, NoBlockGate{});
      return;
    }
    const BnRelu<T> r = *relu;
    // g * factor (not a select), as relu's own backward: -0 for a negative g, NaN for a NaN g.
    const auto gate = [&r](const D& gv, const D& xv, std::size_t c) { return gv * relu_factor<T>(xv, r, c); };
    const auto gate_at = [g, x, &r](std::size_t i, std::size_t c) {
      return static_cast<double>(g[i] * relu_factor<T>(x[i], r, c));
    };
    if constexpr (kLanePlanes && std::is_same_v<T, float>) {
      gated_grad_sums<T>(g, x, C, L, n0, n1, c0, c1, mean, sum_g, dot, gate, gate_at, ReluBlockGate(r));
    } else {
      gated_grad_sums<T>(g, x, C, L, n0, n1, c0, c1, mean, sum_g, dot, gate, gate_at, NoBlockGate{});
    }
  }

  // f(i, c): element i of channel c, rows [n0, n1); [N, C] across the channels, [N, C, L] along
  // each plane; vec(i, k) on vectors and scalar(i, c) on the rest, the same expression. k =
  // consts(c, across), the channel constants as vectors: loaded per vector of channels across
  // [N, C], broadcast once per plane along [N, C, L] (per vector, the compiler would reload them:
  // the stores may alias them).
  template <class T, class Consts, class Vec, class Scalar>
  static void elementwise(std::size_t C, std::size_t L, std::size_t n0, std::size_t n1, Consts&& consts, Vec&& vec,
                          Scalar&& scalar) {
    using B = xsimd::batch<T, A>;
    constexpr std::size_t W = B::size;
    for (std::size_t n = n0; n < n1; ++n) {
      if (L == 1) {
        const std::size_t off = n * C;
        std::size_t c = 0;
        for (; c + W <= C; c += W) vec(off + c, consts(c, true));
        for (; c < C; ++c) scalar(off + c, c);
        continue;
      }
      for (std::size_t c = 0; c < C; ++c) {
        const std::size_t off = (n * C + c) * L;
        const auto k = consts(c, false);
        std::size_t l = 0;
        for (; l + W <= L; l += W) vec(off + l, k);
        for (; l < L; ++l) scalar(off + l, c);
      }
    }
  }

  // Channel c's constant of p as a vector: across [N, C], channels c .. c + W; along a plane, broadcast.
  template <class T>
  static xsimd::batch<T, A> channel_constant(const T* p, std::size_t c, bool across) {
    using B = xsimd::batch<T, A>;
    return across ? B::load_unaligned(p + c) : B(p[c]);
  }

  template <class T>
  static void normalize(const T* x, T* y, std::size_t C, std::size_t L, std::size_t n0, std::size_t n1, const T* mean,
                        const T* scale, const T* shift, bool relu, const BnPool<T>* pool) {
    using B = xsimd::batch<T, A>;
    if (pool != nullptr) {  // relu (implied) then the pool, plane by plane: only the pooled planes are written
      const std::size_t P = pool->pooled();
      for (std::size_t n = n0; n < n1; ++n)
        for (std::size_t c = 0; c < C; ++c)
          BnReluPoolOf<A>::template forward_plane<T>(x + (n * C + c) * L, pool->H, pool->W, mean[c], scale[c],
                                                     shift[c], y + (n * C + c) * P,
                                                     pool->winners != nullptr ? pool->winners + (n * C + c) * P
                                                                              : nullptr,
                                                     pool->winner_x != nullptr ? pool->winner_x + (n * C + c) * P
                                                                               : nullptr);
      return;
    }
    const auto consts = [&](std::size_t c, bool across) {
      return std::array<B, 3>{channel_constant(mean, c, across), channel_constant(scale, c, across),
                              channel_constant(shift, c, across)};
    };
    const auto run = [&](auto with_relu) {
      // relu's own choice (elementwise_ops.hpp, ReluOp): y < 0 ? 0 : y, NaN and -0 kept.
      elementwise<T>(
          C, L, n0, n1, consts,
          [&](std::size_t i, const std::array<B, 3>& k) {
            const B v = (B::load_unaligned(x + i) - k[0]) * k[1] + k[2];
            if constexpr (decltype(with_relu)::value) xsimd::select(v < B(T(0)), B(T(0)), v).store_unaligned(y + i);
            else v.store_unaligned(y + i);
          },
          [&](std::size_t i, std::size_t c) {
            const T v = (x[i] - mean[c]) * scale[c] + shift[c];
            y[i] = decltype(with_relu)::value && v < T(0) ? T(0) : v;
          });
    };
    if (relu) run(std::true_type{});
    else run(std::false_type{});
  }

  // dx of one plane from its full-size gradient g (pool's and relu's applied).
  template <class T>
  static void plane_dx(const T* g, const T* x, T* dx, std::size_t L, T gmean, T mean, T k, T scale) {
    using B = xsimd::batch<T, A>;
    const B vg(gmean), vm(mean), vk(k), vs(scale);
    std::size_t l = 0;
    for (; l + B::size <= L; l += B::size) {
      ((B::load_unaligned(g + l) - vg - (B::load_unaligned(x + l) - vm) * vk) * vs).store_unaligned(dx + l);
    }
    for (; l < L; ++l) dx[l] = (g[l] - gmean - (x[l] - mean) * k) * scale;
  }

  template <class T>
  static void backward_dx(const T* g, const T* x, T* dx, std::size_t C, std::size_t L, std::size_t n0, std::size_t n1,
                          const T* gmean, const T* mean, const T* k, const T* scale, const BnRelu<T>* relu,
                          const BnPool<T>* pool) {
    using B = xsimd::batch<T, A>;
    if (pool != nullptr && BnReluPoolOf<A>::template dx_plane_takes<T>(pool->W)) {  // the gradient made in registers
      const std::size_t P = pool->pooled();
      for (std::size_t n = n0; n < n1; ++n)
        for (std::size_t c = 0; c < C; ++c)
          BnReluPoolOf<A>::template dx_plane<T>(g + (n * C + c) * P, pool->winners + (n * C + c) * P,
                                                x + (n * C + c) * L, pool->H, pool->W, gmean[c], mean[c], k[c],
                                                scale[c], dx + (n * C + c) * L);
      return;
    }
    if (pool != nullptr) {  // narrow planes: each plane's gradient rebuilt from the pooled one (in L1)
      const std::size_t P = pool->pooled();
      const std::unique_ptr<T[]> full(new T[L + BnReluPoolOf<A>::kSlack]);  // every element written before read
      for (std::size_t n = n0; n < n1; ++n) {
        for (std::size_t c = 0; c < C; ++c) {
          const std::size_t off = (n * C + c) * L;
          BnReluPoolOf<A>::template grad_plane<T>(g + (n * C + c) * P, pool->winners + (n * C + c) * P, pool->H,
                                                  pool->W, full.get());
          plane_dx<T>(full.get(), x + off, dx + off, L, gmean[c], mean[c], k[c], scale[c]);
        }
      }
      return;
    }
    const auto run = [&](auto with_relu) {
      constexpr bool kRelu = decltype(with_relu)::value;
      const auto consts = [&](std::size_t c, bool across) {
        std::array<B, 7> v{channel_constant(gmean, c, across), channel_constant(mean, c, across),
                           channel_constant(k, c, across), channel_constant(scale, c, across)};
        if constexpr (kRelu) {
          v[4] = channel_constant(relu->mean, c, across);
          v[5] = channel_constant(relu->scale, c, across);
          v[6] = channel_constant(relu->shift, c, across);
        }
        return v;
      };
      elementwise<T>(
          C, L, n0, n1, consts,
          [&](std::size_t i, const std::array<B, 7>& kc) {
            const B xv = B::load_unaligned(x + i);
            B gv = B::load_unaligned(g + i);
            if constexpr (kRelu) {
              const B v = (xv - kc[4]) * kc[5] + kc[6];
              gv = gv * xsimd::select(v > B(T(0)), B(T(1)), B(T(0)));
            }
            ((gv - kc[0] - (xv - kc[1]) * kc[2]) * kc[3]).store_unaligned(dx + i);
          },
          [&](std::size_t i, std::size_t c) {
            T gv = g[i];
            if constexpr (kRelu) gv = gv * relu_factor<T>(x[i], *relu, c);
            dx[i] = (gv - gmean[c] - (x[i] - mean[c]) * k[c]) * scale[c];
          });
    };
    if (relu != nullptr) run(std::true_type{});
    else run(std::false_type{});
  }

  template <class T>
  static void group_dx(const T* g, const T* x, T* dx, std::size_t C, std::size_t L, std::size_t n0, std::size_t n1,
                       const T* a, const T* gm, const T* mean, const T* k) {
    using B = xsimd::batch<T, A>;
    const auto consts = [&](std::size_t c, bool across) {
      return std::array<B, 4>{channel_constant(a, c, across), channel_constant(gm, c, across),
                              channel_constant(mean, c, across), channel_constant(k, c, across)};
    };
    elementwise<T>(
        C, L, n0, n1, consts,
        [&](std::size_t i, const std::array<B, 4>& kc) {
          ((B::load_unaligned(g + i) * kc[0] - kc[1]) - (B::load_unaligned(x + i) - kc[2]) * kc[3])
              .store_unaligned(dx + i);
        },
        [&](std::size_t i, std::size_t c) { dx[i] = (g[i] * a[c] - gm[c]) - (x[i] - mean[c]) * k[c]; });
  }

  template <class T>
  static constexpr BnKernels<T> kernels() {
    return BnKernels<T>{&channel_sums<T>, &plane_moments<T>, &grad_sums<T>, &normalize<T>, &backward_dx<T>,
                        &group_dx<T>};
  }
};

}  // namespace sorix::kernels
