#pragma once
// The matrix-product kernel, written once for every architecture and both float types.
//
// Determinism by construction: every element of C is one fused multiply-add chain over
// k = 0..K-1 in order, starting from +0 (acc = fma(a_ik, b_kj, acc)), then alpha * acc (when
// alpha != 1), then fma(beta, c, that) (when beta != 0). Tiles only decide which elements are
// computed together, never how, so the tile shape may differ per architecture (MR x NR: 4 x 2W on
// SSE2, 4 x 3W or 6 x 2W on AVX2, 8 x 2W on AVX-512, W = lanes per register) and the bits are
// the same.
//
// Layout: op(B) is packed into panels of NR columns (row k of a panel is NR consecutive values);
// A is read in place, MR rows at a time (MR broadcasts per k). An MR x NR tile of C accumulates in
// MR * NV registers while the kernel walks k.
#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstring>
#include <type_traits>

#include "sorix_core/kernels/arch.hpp"
#include "sorix_core/kernels/table.hpp"

namespace sorix::kernels {

// kNarrow: the second tile shape of a capability, for products whose N a full-width panel would
// leave a one-register tail (autograd/src/gemm.cpp picks the shape with less padded work).
template <class A, class T, bool kNarrow = false>
struct GemmKernels {
  using B = xsimd::batch<T, A>;
  static constexpr std::size_t W = B::size;
  // Registers per tile row, and rows: 2 x 8 on AVX-512 (16 accumulators of 32), 3 x 4 on AVX2
  // (12 of 16: three multiply-adds per broadcast of A; slightly faster than 6 x 16 in cache) or
  // 2 x 6 narrow, 2 x 4 on SSE2.
  static constexpr std::size_t NV = kIsAvx2<A> && !kNarrow ? 3 : 2;
  static constexpr std::size_t NR = NV * W;
  static constexpr std::size_t MR = kIsAvx512<A>                        ? 8
                                    : kIsAvx2<A> && kNarrow               ? 6
                                    : kIsSse2<A> && std::is_same_v<T, float> ? 2  // see sse2_chains
                                                                             : 4;

  // Transposes the 8 x 8 block in[r * stride + c] into out[c * out_stride + r] (AVX2 and AVX-512).
  static void transpose8x8(const float* in, std::size_t stride, float* out, std::size_t out_stride) {
#if SORIX_X86
    if constexpr (kIsAvx2<A> || kIsAvx512<A>) {
      __m256 r[8], t[8], u[8];
      for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(in + i * stride);
      for (int i = 0; i < 4; ++i) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
      }
      for (int h = 0; h < 2; ++h) {  // rows 0-3 (h = 0) and 4-7 (h = 1)
        const int o = 4 * h;
        u[o + 0] = _mm256_shuffle_ps(t[o + 0], t[o + 2], 0x44);
        u[o + 1] = _mm256_shuffle_ps(t[o + 0], t[o + 2], 0xEE);
        u[o + 2] = _mm256_shuffle_ps(t[o + 1], t[o + 3], 0x44);
        u[o + 3] = _mm256_shuffle_ps(t[o + 1], t[o + 3], 0xEE);
      }
      for (int i = 0; i < 4; ++i) {
        _mm256_storeu_ps(out + i * out_stride, _mm256_permute2f128_ps(u[i], u[i + 4], 0x20));
        _mm256_storeu_ps(out + (i + 4) * out_stride, _mm256_permute2f128_ps(u[i], u[i + 4], 0x31));
      }
    } else
#endif
    {
      for (std::size_t rr = 0; rr < 8; ++rr)
        for (std::size_t c = 0; c < 8; ++c) out[c * out_stride + rr] = in[rr * stride + c];
    }
  }

  // A ragged panel's tiles read only the registers that hold its columns (tile_of_width: ceil(cols /
  // W) of NV), so the packs write those, zeros after the last column, and leave the rest of each
  // row alone: a 16-column panel on AVX-512 (Winograd's weight gradient on 16 channels) stored as
  // many zeros as values, 13.9% of that layer's samples in the pack.
  static void pack(bool trans, const T* Bm, std::size_t ldb, std::size_t j0, std::size_t cols, std::size_t K, T* dst) {
    const std::size_t width = (cols + W - 1) / W * W;  // the values of a row the tiles read
    if (!trans) {  // op(B)(k, j) = B[k * ldb + j]: each k is `cols` consecutive values
      for (std::size_t k = 0; k < K; ++k) {
        const T* row = Bm + k * ldb + j0;
        T* out = dst + k * NR;
        if (cols == NR) {
          for (std::size_t v = 0; v < NV; ++v) B::load_unaligned(row + v * W).store_aligned(out + v * W);
        } else {
          for (std::size_t j = 0; j < width; ++j) out[j] = j < cols ? row[j] : T(0);
        }
      }
      return;
    }
    // op(B)(k, j) = B[j * ldb + k]: column j of op(B) is row j of B. Blocks of 8 k across the
    // panel's width, so each read line of B is used whole while it is in L1.
    const T* b = Bm + j0 * ldb;
    std::size_t kk = 0;
#if SORIX_X86
    if constexpr ((kIsAvx2<A> || kIsAvx512<A>) && std::is_same_v<T, float>) {
      // 8 x 8 register transposes over the whole columns (a copy: the bits are the same).
      const std::size_t full = cols / 8 * 8, k8 = K / 8 * 8;
      // First the last (up to 7) columns and the zeros past them, row by row of the panel: the
      // registers from the one holding column `full` zeroed, then the columns copied (column by
      // column, a ragged panel of one column stored NR - 1 zeros per k one cache line apart:
      // Winograd's weight-gradient bias column). The transposes below rewrite columns < full.
      if (full < NR) {
        for (std::size_t k = 0; k < k8; ++k) {
          T* out = dst + k * NR;
          for (std::size_t v = full / W; v < width / W; ++v) B(T(0)).store_aligned(out + v * W);
          for (std::size_t j = full; j < cols; ++j) out[j] = b[j * ldb + k];
        }
      }
      for (std::size_t j = 0; j < full; j += 8)  // 8 rows of B at a time, each read front to back
        for (std::size_t k = 0; k < k8; k += 8) transpose8x8(b + j * ldb + k, ldb, dst + k * NR + j, NR);
      kk = k8;
    }
#endif
    for (std::size_t k0 = kk; k0 < K; k0 += 8) {
      const std::size_t k1 = std::min(K, k0 + 8);
      for (std::size_t j = 0; j < width; ++j) {
        if (j < cols) {
          const T* src = b + j * ldb;
          for (std::size_t k = k0; k < k1; ++k) dst[k * NR + j] = src[k];
        } else {
          for (std::size_t k = k0; k < k1; ++k) dst[k * NR + j] = T(0);
        }
      }
    }
  }

#if SORIX_X86
  // The float chains on SSE2, which has no FMA, at about twice the speed of the exact emulation
  // (fmadd): each accumulator is kept as a double holding a float value, and a step computes
  // s = a * b + acc in double (the product is exact, the sum rounded once) and rounds s to float.
  // That is fma(a, b, acc) unless the double rounding was inexact and hit a float rounding
  // boundary: s exactly halfway between two floats, or s in the float subnormal range. Such a
  // step is flagged, and a tile with any flagged step is recomputed with the exact emulation
  // (returns false) — so the result is always the fma chain's, bit for bit.
  template <std::size_t kVecs, bool kGather>
  static bool sse2_chains(std::size_t K, const T* const* ar, std::size_t a_step, const std::size_t* ks,
                          const T* __restrict bp, std::size_t b_step, B (&c)[MR][kVecs]) {
    static_assert(W == 4 && std::is_same_v<T, float>);
    constexpr std::size_t H = 2 * kVecs;  // doubles registers per tile row
    __m128d acc[MR][H];
    for (std::size_t r = 0; r < MR; ++r)
      for (std::size_t v = 0; v < kVecs; ++v) {  // from c's starting values (+0, or a partial sum)
        const __m128 f = c[r][v];
        acc[r][2 * v] = _mm_cvtps_pd(f);
        acc[r][2 * v + 1] = _mm_cvtps_pd(_mm_movehl_ps(f, f));
      }
    // Low dwords: the 29 mantissa bits below a float's; high dwords: the exponent.
    const __m128i mask = _mm_set_epi32(0x7FF00000, 0x1FFFFFFF, 0x7FF00000, 0x1FFFFFFF);
    const __m128i halfway = _mm_set_epi32(-1, 0x10000000, -1, 0x10000000);  // -1: never matches
    const __m128i tiny_limit = _mm_set_epi32(0x38100000, 0, 0x38100000, 0);   // 2^-126; low: never
    __m128i bad = _mm_setzero_si128();
    for (std::size_t k = 0; k < K; ++k) {
      __m128d b[H];
      for (std::size_t v = 0; v < kVecs; ++v) {
        const __m128 f = _mm_loadu_ps(bp + k * b_step + v * W);
        b[2 * v] = _mm_cvtps_pd(f);
        b[2 * v + 1] = _mm_cvtps_pd(_mm_movehl_ps(f, f));
      }
      const std::size_t ak = kGather ? ks[k] : k * a_step;
#pragma GCC unroll 4
      for (std::size_t r = 0; r < MR; ++r) {
        const __m128d av = _mm_set1_pd(static_cast<double>(ar[r][ak]));
#pragma GCC unroll 8
        for (std::size_t h = 0; h < H; ++h) {
          const __m128d prod = _mm_mul_pd(av, b[h]);
          const __m128d sum = _mm_add_pd(prod, acc[r][h]);
          const __m128i m = _mm_and_si128(_mm_castpd_si128(sum), mask);
          // halfway: low dword == 2^28; subnormal: 0 < exponent field < 2^-126's (high dword).
          const __m128i tiny = _mm_and_si128(_mm_cmplt_epi32(m, tiny_limit), _mm_cmpgt_epi32(m, _mm_setzero_si128()));
          const __m128i flag = _mm_or_si128(_mm_cmpeq_epi32(m, halfway), tiny);
          if (_mm_movemask_epi8(flag) != 0) {
            // Only an inexact sum can have been moved onto the boundary: an exact one (two floats
            // of nearby exponents often add up to a halfway value exactly) rounds as fma does.
            // TwoSum gives the error of the double sum exactly.
            const __m128d bv = _mm_sub_pd(sum, prod);
            const __m128d err = _mm_add_pd(_mm_sub_pd(prod, _mm_sub_pd(sum, bv)), _mm_sub_pd(acc[r][h], bv));
            const __m128i inexact = _mm_castpd_si128(_mm_cmpneq_pd(err, _mm_setzero_pd()));
            const __m128i lane = _mm_or_si128(flag, _mm_shuffle_epi32(flag, _MM_SHUFFLE(2, 3, 0, 1)));
            bad = _mm_or_si128(bad, _mm_and_si128(lane, inexact));
          }
          acc[r][h] = _mm_cvtps_pd(_mm_cvtpd_ps(sum));
        }
      }
    }
    if (_mm_movemask_epi8(bad) != 0) return false;
    for (std::size_t r = 0; r < MR; ++r)
      for (std::size_t v = 0; v < kVecs; ++v)
        c[r][v] = B(_mm_movelh_ps(_mm_cvtpd_ps(acc[r][2 * v]), _mm_cvtpd_ps(acc[r][2 * v + 1])));
    return true;
  }
#endif

  // Rows [k0, k1) of an untransposed B dealt out to every panel of columns [0, N): row k of
  // panel q is B[k * ldb + q * NR ...], zeros past N. Each row of B is read once, in order.
  static void pack_rows(const T* Bm, std::size_t ldb, std::size_t N, std::size_t k0, std::size_t k1, T* dst,
                        std::size_t panel_stride) {
    const std::size_t full = N / NR;
    for (std::size_t k = k0; k < k1; ++k) {
      const T* row = Bm + k * ldb;
      for (std::size_t q = 0; q < full; ++q) {
        T* out = dst + q * panel_stride + k * NR;
        for (std::size_t v = 0; v < NV; ++v) B::load_unaligned(row + q * NR + v * W).store_aligned(out + v * W);
      }
      if (full * NR < N) {  // the ragged panel: the registers its tiles read (see pack)
        T* out = dst + full * panel_stride + k * NR;
        const std::size_t width = (N - full * NR + W - 1) / W * W;
        for (std::size_t j = 0; j < width; ++j) out[j] = full * NR + j < N ? row[full * NR + j] : T(0);
      }
    }
  }

  // The tile's chains over k = 0..K-1, continuing from c's values: c[r][v] = fma(a(r, k), b[k], c),
  // row k of the panel at bp + k * b_step (NR packed; a row of B read in place). a(r, k) is
  // ar[r][k * a_step], or ar[r][ks[k]] gathered (GemmArgs::a_ks).
  template <std::size_t kVecs, bool kGather = false>
  static void chains(std::size_t K, const T* const* ar, std::size_t a_step, const std::size_t* ks,
                     const T* __restrict bp, std::size_t b_step, B (&c)[MR][kVecs]) {
#if SORIX_X86
    if constexpr (kIsSse2<A> && std::is_same_v<T, float>) {
      if (sse2_chains<kVecs, kGather>(K, ar, a_step, ks, bp, b_step, c)) return;
    }
#endif
    for (std::size_t k = 0; k < K; ++k) {
      B b[kVecs];
#pragma GCC unroll 4
      for (std::size_t v = 0; v < kVecs; ++v) b[v] = B::load_unaligned(bp + k * b_step + v * W);
      const std::size_t ak = kGather ? ks[k] : k * a_step;
#pragma GCC unroll 16
      for (std::size_t r = 0; r < MR; ++r) {
        const B av(ar[r][ak]);
#pragma GCC unroll 4
        for (std::size_t v = 0; v < kVecs; ++v) c[r][v] = fmadd(av, b[v], c[r][v]);
      }
    }
  }

  // The batch tree inside one tile (GemmArgs::tree_chunk): chunk i's chains start from +0; then
  // countr_zero(i + 1) finished pairs are added, each the earlier node (on the stack) + the later
  // one; the root is the stack folded from the right. The pending nodes live in `stack` (L1), the
  // running node in registers: the same additions, in the same order, as the tree over whole
  // blocks of C (autograd/src/gemm.cpp), on every capability.
  template <bool kTransA, std::size_t kVecs>
  static void tree_tile(std::size_t K, std::size_t chunk_k, const T* __restrict a, std::size_t lda,
                        const T* __restrict bp, T* C, std::size_t ldc, std::size_t rows, std::size_t cols, T* stack) {
    const std::size_t a_row = kTransA ? 1 : lda, a_step = kTransA ? lda : 1;
    constexpr std::size_t kNode = MR * NR;
    B c[MR][kVecs];
    std::size_t depth = 0;
    for (std::size_t chunk = 0, k0 = 0; k0 < K; ++chunk, k0 += chunk_k) {
      const T* ar[MR];
#pragma GCC unroll 16
      for (std::size_t r = 0; r < MR; ++r) {
        ar[r] = a + (r < rows ? r : rows - 1) * a_row + k0 * a_step;
#pragma GCC unroll 4
        for (std::size_t v = 0; v < kVecs; ++v) c[r][v] = B(T(0));
      }
      chains<kVecs>(std::min(chunk_k, K - k0), ar, a_step, nullptr, bp + k0 * NR, NR, c);
      for (int m = std::countr_zero(chunk + 1); m > 0; --m) {
        const T* left = stack + --depth * kNode;
        for (std::size_t r = 0; r < MR; ++r)
#pragma GCC unroll 4
          for (std::size_t v = 0; v < kVecs; ++v) c[r][v] = B::load_aligned(left + r * NR + v * W) + c[r][v];
      }
      if (k0 + chunk_k >= K) break;  // the last node stays in the registers for the root
      T* top = stack + depth++ * kNode;
      for (std::size_t r = 0; r < MR; ++r)
#pragma GCC unroll 4
        for (std::size_t v = 0; v < kVecs; ++v) c[r][v].store_aligned(top + r * NR + v * W);
    }
    while (depth > 0) {  // the root: pending nodes folded from the right
      const T* left = stack + --depth * kNode;
      for (std::size_t r = 0; r < MR; ++r)
#pragma GCC unroll 4
        for (std::size_t v = 0; v < kVecs; ++v) c[r][v] = B::load_aligned(left + r * NR + v * W) + c[r][v];
    }
    // Unrolled over MR with a test per row (not a loop to `rows`): c stays in registers. A loop
    // with a run-time bound made GCC keep c in memory, storing it after every chunk.
#pragma GCC unroll 16
    for (std::size_t r = 0; r < MR; ++r) {
      if (r >= rows) break;
      alignas(64) T buf[NR];
      T* out = cols == NR ? C + r * ldc : buf;  // a ragged tile goes through a buffer
#pragma GCC unroll 4
      for (std::size_t v = 0; v < kVecs; ++v) c[r][v].store_unaligned(out + v * W);
      if (cols != NR) std::memcpy(C + r * ldc, buf, cols * sizeof(T));
    }
  }

  // One MR x NR tile: acc[r][j] = fma chain over k of a(r, k) * b[k][j], then the epilogue into
  // the rows x cols corner of C. Rows past `rows` are clamped to the last real row (their results
  // are never stored). Only the first kVecs registers of each row are computed (a ragged last
  // panel of at most kVecs * W columns: fewer multiply-adds, the same chain for each element).
  // kGather: a(r, k) = a[a_rows[r] + ks[k]] (GemmArgs::a_ks).
  template <bool kTransA, std::size_t kVecs, bool kGather = false>
  static void tile(std::size_t K, const T* __restrict a, std::size_t lda, const T* __restrict bp, std::size_t b_step,
                   T alpha, T beta, T* C, std::size_t ldc, std::size_t rows, std::size_t cols, bool accumulate,
                   const std::size_t* a_rows = nullptr, const std::size_t* ks = nullptr) {
    const std::size_t a_row = kTransA ? 1 : lda;   // from one row of op(A) to the next
    const std::size_t a_step = kTransA ? lda : 1;  // from k to k + 1 within a row of op(A)
    const T* ar[MR];
    B c[MR][kVecs];
#pragma GCC unroll 16
    for (std::size_t r = 0; r < MR; ++r) {
      const std::size_t row = r < rows ? r : rows - 1;
      ar[r] = kGather ? a + a_rows[row] : a + row * a_row;
#pragma GCC unroll 4
      for (std::size_t v = 0; v < kVecs; ++v) c[r][v] = B(T(0));
    }
    if (accumulate) {  // continue the chains from C's partial sums (rows past `rows` stay +0)
      for (std::size_t r = 0; r < rows; ++r) {
        alignas(64) T buf[NR] = {};
        const T* in = C + r * ldc;
        if (cols != NR) {
          std::memcpy(buf, in, cols * sizeof(T));
          in = buf;
        }
#pragma GCC unroll 4
        for (std::size_t v = 0; v < kVecs; ++v) c[r][v] = B::load_unaligned(in + v * W);
      }
    }
    for (std::size_t r = 0; r < rows; ++r) __builtin_prefetch(C + r * ldc, 1, 3);
    chains<kVecs, kGather>(K, ar, a_step, ks, bp, b_step, c);
    const B va(alpha), vb(beta);
    for (std::size_t r = 0; r < rows; ++r) {
      T* row = C + r * ldc;
      alignas(64) T buf[NR];
      T* out = cols == NR ? row : buf;  // a ragged tile goes through a buffer
      if (cols != NR && beta != T(0)) std::memcpy(buf, row, cols * sizeof(T));
#pragma GCC unroll 4
      for (std::size_t v = 0; v < kVecs; ++v) {
        B y = c[r][v];
        if (alpha != T(1)) y = va * y;
        // beta == 0: C is only written (NaNs in it do not propagate), as BLAS.
        if (beta != T(0)) y = fmadd(vb, B::load_unaligned(out + v * W), y);
        y.store_unaligned(out + v * W);
      }
      if (cols != NR) std::memcpy(row, buf, cols * sizeof(T));
    }
  }

  // tile<kTransA, vecs> for a run-time vecs in [1, NV]; a_rows: the tile's first row's entry of
  // GemmArgs::a_rows when op(A) is gathered.
  template <bool kTransA, std::size_t kVecs = NV>
  static void tile_of_width(std::size_t vecs, const GemmArgs<T>& g, const T* a, const std::size_t* a_rows,
                            const T* bp, T* C, std::size_t rows, std::size_t cols) {
    if constexpr (kVecs > 1) {
      if (vecs < kVecs) return tile_of_width<kTransA, kVecs - 1>(vecs, g, a, a_rows, bp, C, rows, cols);
    }
    const std::size_t b_step = g.b_step != 0 ? g.b_step : NR;
    if (g.tree_chunk > 0) tree_tile<kTransA, kVecs>(g.K, g.tree_chunk, a, g.lda, bp, C, g.ldc, rows, cols, g.tree_stack);
    else if (g.a_ks != nullptr)
      tile<false, kVecs, true>(g.K, g.A, 0, bp, b_step, g.alpha, g.beta, C, g.ldc, rows, cols, g.accumulate, a_rows, g.a_ks);
    else tile<kTransA, kVecs>(g.K, a, g.lda, bp, b_step, g.alpha, g.beta, C, g.ldc, rows, cols, g.accumulate);
  }

  static void tiles(const GemmArgs<T>& g, std::size_t t, std::size_t u0, std::size_t u1) {
    const std::size_t i0 = t * MR;
    const std::size_t rows = std::min(MR, g.M - i0);
    const bool gathered = g.a_ks != nullptr;
    const T* a = gathered ? g.A : g.A + (g.trans_a ? i0 : i0 * g.lda);
    const std::size_t* a_rows = gathered ? g.a_rows + i0 : nullptr;
    const std::size_t n = g.N - g.column_tail;  // the last columns are columns()'s
    for (std::size_t u = u0; u < u1; ++u) {
      const std::size_t j0 = u * NR;
      if (j0 >= n) break;
      const std::size_t cols = std::min(NR, n - j0);
      const T* b = g.packed + u * g.panel_stride;
      T* c = g.C + i0 * g.ldc + j0;
      const std::size_t vecs = (cols + W - 1) / W;
      if (g.trans_a) tile_of_width<true>(vecs, g, a, a_rows, b, c, rows, cols);
      else tile_of_width<false>(vecs, g, a, a_rows, b, c, rows, cols);
    }
  }

  // Columns of C with vectors along its rows, kVecs registers of rows at a time (independent
  // chains): element (i, j) is fma(a(i, k), b(k, j), acc) over k in order from +0 (or from C's
  // value with accumulate), then the tiles' epilogue: the tiles' bits. op(A)(i, k) = A[k * lda + i]
  // (trans_a), so a register of rows is one load; b(k, j) is read from its packed panel.
  template <std::size_t kVecs>
  static void column_rows(const GemmArgs<T>& g, std::size_t i0, std::size_t rows, std::size_t j) {
    const T* bp = g.packed + (j / NR) * g.panel_stride + j % NR;  // b(k, j) = bp[k * b_step]
    const std::size_t b_step = g.b_step != 0 ? g.b_step : NR;
    T* cj = g.C + i0 * g.ldc + j;                                  // C(i0 + r, j) = cj[r * ldc]
    const auto rows_of = [&](std::size_t v) { return std::min(W, rows - v * W); };
    alignas(64) T buf[kVecs * W] = {};
    B c[kVecs];
    if (g.accumulate)
      for (std::size_t r = 0; r < rows; ++r) buf[r] = cj[r * g.ldc];
#pragma GCC unroll 8
    for (std::size_t v = 0; v < kVecs; ++v) c[v] = B::load_aligned(buf + v * W);
    // Whole registers of rows in a loop without tests (a test per register and k, not hoisted by
    // GCC, made this loop 5-10x slower than the tiles per multiply-add: Winograd's 49th column);
    // only a last, partial register takes load_first. Each element's chain is the same either way.
    if (rows == kVecs * W) {
      for (std::size_t k = 0; k < g.K; ++k) {
        const B b(bp[k * b_step]);
        const T* ak = g.A + k * g.lda + i0;
#pragma GCC unroll 8
        for (std::size_t v = 0; v < kVecs; ++v) c[v] = fmadd(B::load_unaligned(ak + v * W), b, c[v]);
      }
    } else {
      for (std::size_t k = 0; k < g.K; ++k) {
        const B b(bp[k * b_step]);
        const T* ak = g.A + k * g.lda + i0;
#pragma GCC unroll 8
        for (std::size_t v = 0; v + 1 < kVecs; ++v) c[v] = fmadd(B::load_unaligned(ak + v * W), b, c[v]);
        c[kVecs - 1] = fmadd(load_first<A>(ak + (kVecs - 1) * W, rows_of(kVecs - 1)), b, c[kVecs - 1]);
      }
    }
    if (g.beta != T(0))
      for (std::size_t r = 0; r < rows; ++r) buf[r] = cj[r * g.ldc];
    const B va(g.alpha), vb(g.beta);
#pragma GCC unroll 8
    for (std::size_t v = 0; v < kVecs; ++v) {
      B y = c[v];
      if (g.alpha != T(1)) y = va * y;
      if (g.beta != T(0)) y = fmadd(vb, B::load_aligned(buf + v * W), y);
      y.store_aligned(buf + v * W);
    }
    for (std::size_t r = 0; r < rows; ++r) cj[r * g.ldc] = buf[r];
  }

  /// Columns [j0, j1) of C, rows [i0, i1), with vectors along the rows (GemmKernel::columns).
  static void columns(const GemmArgs<T>& g, std::size_t i0, std::size_t i1, std::size_t j0, std::size_t j1) {
    constexpr std::size_t kMaxVecs = 8;
    for (std::size_t j = j0; j < j1; ++j) {
      for (std::size_t i = i0; i < i1; i += kMaxVecs * W) {
        const std::size_t rows = std::min(kMaxVecs * W, i1 - i);
        switch ((rows + W - 1) / W) {
          case 1: column_rows<1>(g, i, rows, j); break;
          case 2: column_rows<2>(g, i, rows, j); break;
          case 3: column_rows<3>(g, i, rows, j); break;
          case 4: column_rows<4>(g, i, rows, j); break;
          case 5: column_rows<5>(g, i, rows, j); break;
          case 6: column_rows<6>(g, i, rows, j); break;
          case 7: column_rows<7>(g, i, rows, j); break;
          default: column_rows<kMaxVecs>(g, i, rows, j); break;
        }
      }
    }
  }

  static constexpr GemmKernel<T> kernel() { return {MR, NR, &pack, &pack_rows, &tiles, &columns, W, W / 2}; }
};

}  // namespace sorix::kernels
