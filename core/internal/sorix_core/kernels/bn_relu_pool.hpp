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
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>

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
    // y < 0 ? +0 : y (relu's rule: NaN and -0 kept). x86's max returns its second operand when
    // either is NaN or both are zeros, so max(+0, y) is that selection in one instruction.
    static xsimd::batch<T, A> relu(const xsimd::batch<T, A>& y) {
      using B = xsimd::batch<T, A>;
#if SORIX_X86
      if constexpr (kIsAvx512<A>) {
        if constexpr (std::is_same_v<T, float>) return _mm512_max_ps(_mm512_setzero_ps(), y);
        else return _mm512_max_pd(_mm512_setzero_pd(), y);
      } else if constexpr (kIsAvx2<A>) {
        if constexpr (std::is_same_v<T, float>) return _mm256_max_ps(_mm256_setzero_ps(), y);
        else return _mm256_max_pd(_mm256_setzero_pd(), y);
      } else if constexpr (kIsSse2<A>) {
        if constexpr (std::is_same_v<T, float>) return _mm_max_ps(_mm_setzero_ps(), y);
        else return _mm_max_pd(_mm_setzero_pd(), y);
      } else
#endif
      {
        return xsimd::select(y < B(T(0)), B(T(0)), y);
      }
    }
  };

  // Each window's winner code: its tap (0..3: a, b, c, d, pool_kernels.hpp's order) + 4 when
  // relu's factor there is 1 (y > 0, i.e. relu's output > 0; never for a NaN or a signed zero).
  static constexpr unsigned kPositive = 4;

  /// y (OH x OW) = each window's maximum of relu((x - mean) * scale + shift) over the plane x
  /// (H x W); winners (OH x OW, may be null) gets each window's code and winner_x (with winners)
  /// the x at its winner, or NaN where the full-size gradient's +0 meets a non-finite x - mean: another
  /// tap of the window, or, for the plane's first window, a last row or column no window covers
  /// (the backward's dot product is NaN then, +0 * inf, though it reads no other x).
  template <class T>
  static void forward_plane(const T* x, std::size_t H, std::size_t W, T mean, T scale, T shift, T* y,
                            std::uint8_t* winners, T* winner_x) {
    // With finite constants and every x - mean finite (the sum below, with the winners), relu's
    // outputs are never NaN ((x - mean) * scale + shift overflows to an infinity at most): the
    // windows are taken without the rule's NaN tests, and a plane that turns out otherwise is
    // made again with them.
    const auto finite = [](T v) { return v - v == T(0); };
    if (winners != nullptr && finite(mean) && finite(scale) && finite(shift) &&
        plane_rows<T, true>(x, H, W, mean, scale, shift, y, winners, winner_x))
      return;
    plane_rows<T, false>(x, H, W, mean, scale, shift, y, winners, winner_x);
  }

  // forward_plane's pass; with kNoNaN, false when a NaN may have met the windows (nothing else done).
  template <class T, bool kNoNaN>
  static bool plane_rows(const T* x, std::size_t H, std::size_t W, T mean, T scale, T shift, T* y,
                         std::uint8_t* winners, T* winner_x) {
    using B = xsimd::batch<T, A>;
    constexpr std::size_t L = B::size;
    const std::size_t OH = H / 2, OW = W / 2, len = 2 * OW;
    const Affine<T> f{B(mean), B(scale), B(shift)};
    const B zero(T(0)), positive = B(T(kPositive));
    // Finite while every x - mean read is (or a false alarm: finite values overflowing the sum).
    B sum = zero;
    // K registers of windows, each n <= L values of the two rows from column i[k], side by
    // side: K = 2 interleaves two independent chains (one register's is as long as the
    // instructions the core can hold waiting). A compile-time n = L (every register of a row at
    // least a register wide) leaves the loop without a branch on n.
    const auto windows = [&](std::size_t oh, const auto& i, auto n_of) {
      constexpr std::size_t K = std::tuple_size_v<std::decay_t<decltype(i)>>;
      const std::size_t n = n_of();
      B a[K], c[K], v[K], t[K], xw[K];
#pragma GCC unroll 2
      for (std::size_t k = 0; k < K; ++k) {
        a[k] = load_part(x + 2 * oh * W + i[k], n);
        c[k] = load_part(x + (2 * oh + 1) * W + i[k], n);
      }
#pragma GCC unroll 2
      for (std::size_t k = 0; k < K; ++k)
        Pool::template window_max_carrying<T, kNoNaN>(f.relu(f.y(a[k])), f.relu(f.y(c[k])), a[k], c[k], v[k], t[k],
                                                      xw[k]);
#pragma GCC unroll 2
      for (std::size_t k = 0; k < K; ++k) {
        const std::size_t at = oh * OW + i[k] / 2;
        store_even(v[k], y + at, n / 2);
        if (winners == nullptr) continue;
        sum = sum + (a[k] - f.mean) + (c[k] - f.mean);
        store_even(xw[k], winner_x + at, n / 2);
        store_even_codes(t[k] + xsimd::select(v[k] > zero, positive, zero), winners + at, n / 2);
      }
    };
    const auto whole = [] { return L; };
    for (std::size_t oh = 0; oh < OH; ++oh) {
      if (len < L) {  // a row narrower than a register: one partial register
        windows(oh, std::array<std::size_t, 1>{0}, [len] { return len; });
        continue;
      }
      // The row's registers from 0, its last, partial one moved back over the one before (the
      // same windows again, the same values) so that its stores are whole; two at a time.
      const std::size_t regs = (len + L - 1) / L;
      const auto at = [&](std::size_t r) { return r + 1 < regs ? r * L : len - L; };
      std::size_t r = 0;
      for (; r + 2 <= regs; r += 2) windows(oh, std::array<std::size_t, 2>{at(r), at(r + 1)}, whole);
      if (r < regs) windows(oh, std::array<std::size_t, 1>{at(r)}, whole);
    }
    if (winners == nullptr) return true;
    const bool windows_nonfinite = xsimd::any(xsimd::isnan(sum - sum));
    if (kNoNaN && windows_nonfinite) return false;
    poison_winner_x(x, H, W, mean, windows_nonfinite, winners, winner_x);
    return true;
  }

#if SORIX_X86
  // A float register (AVX2 or AVX-512) with its even lanes, in order, moved to its lower half.
  static auto evens_first(const xsimd::batch<float, A>& v) {
    if constexpr (kIsAvx512<A>) {
      const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 0, 2, 4, 6, 8, 10, 12, 14);
      return _mm512_permutexvar_ps(even, v);
    } else {
      const __m256i even = _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6);
      return _mm256_permutevar8x32_ps(v, even);
    }
  }
#endif

  // The even lanes of v (the windows' lanes of window_max) at out[0 .. n), n <= lanes / 2.
  template <class T>
  static void store_even(const xsimd::batch<T, A>& v, T* out, std::size_t n) {
    constexpr std::size_t L = xsimd::batch<T, A>::size;
#if SORIX_X86
    if constexpr (std::is_same_v<T, float> && kIsAvx512<A>) {
      if (n == L / 2) {
        _mm256_storeu_ps(out, _mm512_castps512_ps256(evens_first(v)));
        return;
      }
    } else if constexpr (std::is_same_v<T, float> && kIsAvx2<A>) {
      if (n == L / 2) {
        _mm_storeu_ps(out, _mm256_castps256_ps128(evens_first(v)));
        return;
      }
    }
#endif
    alignas(64) T buf[L];
    v.store_aligned(buf);
    for (std::size_t k = 0; k < n; ++k) out[k] = buf[2 * k];
  }

  // The even lanes of code (whole numbers 0..7) as bytes at out[0 .. n), n <= lanes / 2.
  template <class T>
  static void store_even_codes(const xsimd::batch<T, A>& code, std::uint8_t* out, std::size_t n) {
    constexpr std::size_t L = xsimd::batch<T, A>::size;
#if SORIX_X86
    if constexpr (std::is_same_v<T, float> && kIsAvx512<A>) {
      if (n == L / 2) {
        const __m512i codes = _mm512_cvttps_epi32(evens_first(code));
        _mm_storel_epi64(reinterpret_cast<__m128i*>(out), _mm512_cvtepi32_epi8(codes));
        return;
      }
    } else if constexpr (std::is_same_v<T, float> && kIsAvx2<A>) {
      if (n == L / 2) {
        const __m128i codes = _mm_cvttps_epi32(_mm256_castps256_ps128(evens_first(code)));
        const __m128i bytes = _mm_packus_epi16(_mm_packs_epi32(codes, codes), codes);
        const auto four = static_cast<std::uint32_t>(_mm_cvtsi128_si32(bytes));
        std::memcpy(out, &four, 4);
        return;
      }
    }
#endif
    alignas(64) T buf[L];
    code.store_aligned(buf);
    for (std::size_t k = 0; k < n; ++k) out[k] = static_cast<std::uint8_t>(buf[2 * k]);
  }

  // winner_x's NaNs of forward_plane (the rare path: only a plane with a non-finite x - mean
  // among its windows' taps is searched window by window).
  template <class T>
  static void poison_winner_x(const T* x, std::size_t H, std::size_t W, T mean, bool windows_nonfinite,
                              const std::uint8_t* winners, T* winner_x) {
    const std::size_t OH = H / 2, OW = W / 2;
    // The backward's factor x - mean, in double (float x: never an overflow; double x: its own
    // mean exactly, which a finite x can overflow against).
    const auto nonfinite = [mean](T v) {
      const double d = static_cast<double>(v) - static_cast<double>(mean);
      return !(d - d == 0.0);
    };
    const T nan = std::numeric_limits<T>::quiet_NaN();
    if (windows_nonfinite) {
      for (std::size_t oh = 0; oh < OH; ++oh) {
        for (std::size_t ow = 0; ow < OW; ++ow) {
          const T* a = x + 2 * oh * W + 2 * ow;
          const T taps[4] = {a[0], a[1], a[W], a[W + 1]};
          const unsigned winner = winners[oh * OW + ow] & 3u;
          for (unsigned k = 0; k < 4; ++k)
            if (k != winner && nonfinite(taps[k])) winner_x[oh * OW + ow] = nan;
        }
      }
    }
    bool uncovered = false;
    for (std::size_t r = 0; r < H; ++r) {
      const std::size_t from = r == 2 * OH ? 0 : 2 * OW;  // a row no window covers; a column past them
      for (std::size_t q = from; q < W; ++q) uncovered = uncovered || nonfinite(x[r * W + q]);
    }
    if (uncovered) winner_x[0] = nan;
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

  // The full-size gradient of a row pair's columns [i, i + n) (n <= lanes, i even) from the row
  // of windows' pooled gradient gr and codes wr: top gets the first row's, bottom the second's,
  // (+0 + gp) * relu's factor at each window's winner and +0 elsewhere (+0 in lanes past n).
  template <class T>
  struct WindowGradients {
    using B = xsimd::batch<T, A>;
    B zero = B(T(0)), one = B(T(1)), positive = B(T(kPositive));
    B tap0 = lane_taps(), tap1 = tap0 + B(T(2));  // each lane's tap in its window's first row, second row

    static B lane_taps() {  // 0 (a) or 1 (b)
      alignas(64) T lane_tap[B::size];
      for (std::size_t k = 0; k < B::size; ++k) lane_tap[k] = T(k % 2);
      return B::load_aligned(lane_tap);
    }
    void columns(const T* gr, const std::uint8_t* wr, std::size_t i, std::size_t n, B& top, B& bottom) const {
      const B code = code_pairs<T>(wr + i / 2, n / 2);
      const auto relu_on = code >= positive;
      const B tap = code - xsimd::select(relu_on, positive, zero);
      const B g = zero + Pool::template duplicate_pairs<T>(gr + i / 2, n / 2);  // the scatter's +0 + gp
      const B gated = g * xsimd::select(relu_on, one, zero);                      // relu's factor
      top = xsimd::select(tap == tap0, gated, zero);
      bottom = xsimd::select(tap == tap1, gated, zero);
    }
  };

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
    const WindowGradients<T> made;
    const std::size_t full = len / L * L;  // the columns of whole registers
    for (std::size_t oh = 0; oh < OH; ++oh) {
      const T* gr = gp + oh * OW;
      const std::uint8_t* wr = winners + oh * OW;
      T* o0 = out + 2 * oh * W;
      T* o1 = o0 + W;
      const auto columns = [&](std::size_t i, std::size_t n) {
        B top, bottom;
        made.columns(gr, wr, i, n, top, bottom);
        top.store_unaligned(o0 + i);
        bottom.store_unaligned(o1 + i);
      };
      if (full < len) columns(full, len - full);  // first: its row-0 spill lands where o1 is stored next
      for (std::size_t i = 0; i < full; i += L) columns(i, L);
      if (W % 2 != 0) o0[W - 1] = o1[W - 1] = T(0);
    }
    if (H % 2 != 0) std::fill(out + (H - 1) * W, out + H * W, T(0));
  }

  /// Whether dx_plane takes planes of width W: a row pair's windows fill a register.
  template <class T>
  static constexpr bool dx_plane_takes(std::size_t W) {
    return W / 2 * 2 >= xsimd::batch<T, A>::size;
  }

  /// BatchNorm's dx (H x W) = (g - gmean - (x - mean) * k) * scale (never fused) of the full-size
  /// gradient g that grad_plane makes, made register by register where each register of g is
  /// made instead of stored and loaded back (its stores, a row's half a register off the loads,
  /// did not forward: the two passes took twice this one's time on Zen 3): the same values
  /// through the same operations, so the same bits. A row pair's last register is moved back
  /// over the one before (the same values again). Only for dx_plane_takes(W).
  template <class T>
  static void dx_plane(const T* gp, const std::uint8_t* winners, const T* x, std::size_t H, std::size_t W, T gmean,
                       T mean, T k, T scale, T* dx) {
    using B = xsimd::batch<T, A>;
    constexpr std::size_t L = B::size;
    const std::size_t OH = H / 2, OW = W / 2, len = 2 * OW;
    const WindowGradients<T> made;
    const B vg(gmean), vm(mean), vk(k), vs(scale);
    const auto dx_of = [&](const B& g, std::size_t at) {
      ((g - vg - (B::load_unaligned(x + at) - vm) * vk) * vs).store_unaligned(dx + at);
    };
    const auto zero_gradient = [&](std::size_t at) { dx[at] = (T(0) - gmean - (x[at] - mean) * k) * scale; };
    for (std::size_t oh = 0; oh < OH; ++oh) {
      const T* gr = gp + oh * OW;
      const std::uint8_t* wr = winners + oh * OW;
      const std::size_t r0 = 2 * oh * W, r1 = r0 + W;
      for (std::size_t next = 0; next < len; next += L) {
        const std::size_t i = next + L > len ? len - L : next;
        B top, bottom;
        made.columns(gr, wr, i, L, top, bottom);
        dx_of(top, r0 + i);
        dx_of(bottom, r1 + i);
      }
      if (W % 2 != 0) {
        zero_gradient(r0 + W - 1);
        zero_gradient(r1 + W - 1);
      }
    }
    if (H % 2 != 0)
      for (std::size_t at = (H - 1) * W; at < H * W; ++at) zero_gradient(at);
  }
};

}  // namespace sorix::kernels
