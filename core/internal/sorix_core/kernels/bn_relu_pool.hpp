#pragma once
// BatchNorm + ReLU + a 2 x 2 max pool with stride 2, one H x W plane at a time (table.hpp's
// BnPool; bn_kernels.hpp runs them over the batch). Written once for every architecture.
//
// Forward: relu's output r = relu((x - mean) * scale + shift), in T and never fused
// (normalize's bits), pooled by pool_kernels.hpp's window rule (the same selections), and only
// the pooled plane is written. Backward: the full-size gradient the two ops' backwards would
// pass to BatchNorm, from the pooled gradient gp: max pooling's backward puts +0 + gp at each
// window's winner (its scatter adds into zeros) and +0 elsewhere, then relu's multiplies by
// (y > 0 ? 1 : 0). The forward keeps one byte per window for it (the winner's tap and relu's
// factor there: 1/16 of a float32 activation's bytes) instead of the pool's int64 indices and
// relu's output. Selections and the same IEEE operations per element: the same bits on every
// capability, at every register width.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "sorix_core/kernels/arch.hpp"
#include "sorix_core/kernels/pool_kernels.hpp"

namespace sorix::kernels {

template <class A>
struct BnReluPoolOf {
  using Pool = PoolKernelsOf<A>;

  // The n <= lanes values at p: a register, or its first n lanes (+0 in the others).
  template <class T>
  static xsimd::batch<T, A> load_part(const T* p, std::size_t n) {
    using B = xsimd::batch<T, A>;
    return n == B::size ? B::load_unaligned(p) : load_first<A>(p, n);
  }

  // normalize's y and relu's r of it.
  template <class T>
  struct Affine {
    xsimd::batch<T, A> mean, scale, shift;
    xsimd::batch<T, A> y(const xsimd::batch<T, A>& x) const { return (x - mean) * scale + shift; }
    static xsimd::batch<T, A> relu(const xsimd::batch<T, A>& y) {
      using B = xsimd::batch<T, A>;
      return xsimd::select(y < B(T(0)), B(T(0)), y);
    }
  };

  // Each window's winner code: its tap (0..3: a, b, c, d, pool_kernels.hpp's order) + 4 when
  // relu's factor there is 1 (y > 0, i.e. relu's output > 0; never for a NaN or a signed zero).
  static constexpr unsigned kPositive = 4;

  /// y (OH x OW) = each window's maximum of relu((x - mean) * scale + shift) over the plane x
  /// (H x W); winners (OH x OW, may be null) gets each window's code.
  template <class T>
  static void forward_plane(const T* x, std::size_t H, std::size_t W, T mean, T scale, T shift, T* y,
                            std::uint8_t* winners) {
    using B = xsimd::batch<T, A>;
    constexpr std::size_t L = B::size;
    const std::size_t OH = H / 2, OW = W / 2, len = 2 * OW;
    const Affine<T> f{B(mean), B(scale), B(shift)};
    const B zero(T(0)), positive = B(T(kPositive));
    alignas(64) T best[L], code[L];
    for (std::size_t oh = 0; oh < OH; ++oh) {
      const T* x0 = x + 2 * oh * W;
      const T* x1 = x0 + W;
      T* yr = y + oh * OW;
      for (std::size_t i = 0; i < len; i += L) {
        const std::size_t n = std::min(L, len - i);
        B v, t;
        Pool::template window_max<T>(f.relu(f.y(load_part(x0 + i, n))), f.relu(f.y(load_part(x1 + i, n))), v, t);
        v.store_aligned(best);
        for (std::size_t k = 0; k < n / 2; ++k) yr[i / 2 + k] = best[2 * k];
        if (winners == nullptr) continue;
        (t + xsimd::select(v > zero, positive, zero)).store_aligned(code);
        std::uint8_t* wr = winners + oh * OW + i / 2;
        for (std::size_t k = 0; k < n / 2; ++k) wr[k] = static_cast<std::uint8_t>(code[2 * k]);
      }
    }
  }

  /// The codes p[0 .. n) as T, each in a lane pair (p[k] in lanes 2k and 2k + 1), n <= lanes / 2;
  /// 0 in the lanes past 2n.
  template <class T>
  static xsimd::batch<T, A> code_pairs(const std::uint8_t* p, std::size_t n) {
    using B = xsimd::batch<T, A>;
    constexpr std::size_t L = B::size;
#if SORIX_X86
    if constexpr (kIsAvx512<A> || kIsAvx2<A>) {
      std::uint64_t bytes = 0;
      if (n == L / 2) std::memcpy(&bytes, p, L / 2);  // a constant size: one load
      else
        for (std::size_t k = 0; k < n; ++k) bytes |= std::uint64_t{p[k]} << (8 * k);
      const __m128i raw = _mm_cvtsi64_si128(static_cast<long long>(bytes));
      const __m128i pairs = _mm_unpacklo_epi8(raw, raw);  // each code twice
      if constexpr (kIsAvx512<A>) {
        if constexpr (std::is_same_v<T, float>) return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(pairs));
        else return _mm512_cvtepi32_pd(_mm256_cvtepu8_epi32(pairs));
      } else {
        if constexpr (std::is_same_v<T, float>) return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(pairs));
        else return _mm256_cvtepi32_pd(_mm_cvtepu8_epi32(pairs));
      }
    }
#endif
    alignas(64) T buf[L] = {};
    for (std::size_t k = 0; k < n; ++k) buf[2 * k] = buf[2 * k + 1] = static_cast<T>(p[k]);
    return B::load_aligned(buf);
  }

  /// Elements grad_plane may write past the plane's end (whole registers at the rows' ends): the
  /// caller's buffer has them to spare.
  static constexpr std::size_t kSlack = 16;

  /// out (H x W) = BatchNorm's incoming gradient for the pooled gradient gp (OH x OW) and the
  /// forward's winner codes: at each window's winner (+0 + gp) * (y > 0 ? 1 : 0), +0 elsewhere
  /// (also in a last row or column no window covers). Whole registers are stored: a row pair's
  /// last, partial one first, its spill past a row rewritten by the row's later stores or the next
  /// row pair's, or, past the plane, by at most kSlack - 1 elements of the caller's buffer.
  template <class T>
  static void grad_plane(const T* gp, const std::uint8_t* winners, std::size_t H, std::size_t W, T* out) {
    using B = xsimd::batch<T, A>;
    constexpr std::size_t L = B::size;
    static_assert(L <= kSlack, "slack");
    const std::size_t OH = H / 2, OW = W / 2, len = 2 * OW;
    alignas(64) T lane_tap[L];  // each lane's tap in its window's first row: 0 (a) or 1 (b)
    for (std::size_t k = 0; k < L; ++k) lane_tap[k] = T(k % 2);
    const B zero(T(0)), one(T(1));
    const B tap0 = B::load_aligned(lane_tap), tap1 = tap0 + B(T(2)), positive = B(T(kPositive));
    const std::size_t full = len / L * L;  // the columns of whole registers
    for (std::size_t oh = 0; oh < OH; ++oh) {
      const T* gr = gp + oh * OW;
      const std::uint8_t* wr = winners + oh * OW;
      T* o0 = out + 2 * oh * W;
      T* o1 = o0 + W;
      const auto columns = [&](std::size_t i, std::size_t n) {
        const B code = code_pairs<T>(wr + i / 2, n / 2);
        const auto relu_on = code >= positive;
        const B tap = code - xsimd::select(relu_on, positive, zero);
        const B g = zero + Pool::template duplicate_pairs<T>(gr + i / 2, n / 2);  // the scatter's +0 + gp
        const B gated = g * xsimd::select(relu_on, one, zero);                      // relu's factor
        xsimd::select(tap == tap0, gated, zero).store_unaligned(o0 + i);
        xsimd::select(tap == tap1, gated, zero).store_unaligned(o1 + i);
      };
      if (full < len) columns(full, len - full);  // first: its row-0 spill lands where o1 is stored next
      for (std::size_t i = 0; i < full; i += L) columns(i, L);
      if (W % 2 != 0) o0[W - 1] = o1[W - 1] = T(0);
    }
    if (H % 2 != 0) std::fill(out + (H - 1) * W, out + H * W, T(0));
  }
};

}  // namespace sorix::kernels
