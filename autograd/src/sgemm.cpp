// sorix's own float32 GEMM (sgemm.hpp): operand packing, the 8 x 32 AVX-512 kernel and the
// parallel driver.
#include "autograd/src/sgemm.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>

#include "sorix/parallel/parallel.hpp"

#if defined(__AVX512F__) && defined(__AVX512VL__)
#define SORIX_OWN_SGEMM 1
// g++ 12 raises false -Wuninitialized warnings inside its AVX-512 headers after inlining (GCC bug
// 105593, fixed in 13): off in this translation unit only, as in core/src/kernels/simd.hpp.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
#else
#define SORIX_OWN_SGEMM 0
#endif

namespace sorix::kernels {

#if SORIX_OWN_SGEMM

namespace {

constexpr std::size_t MR = kSgemmMR;  // rows of a tile: 8 broadcasts per k
constexpr std::size_t NR = kSgemmNR;  // columns of a tile: two 16-float vectors per k
static_assert(MR == 8 && NR == 32, "the packing and the kernel below are written for 8 x 32 tiles");

/// Columns of C per task: the B panels a task walks stay in the core's L2 (K * kTaskCols floats).
constexpr std::size_t kTaskCols = 128;
/// The packed copy of B is at most this many floats (64 MiB); wider products go in column slabs.
constexpr std::size_t kMaxPackedFloats = std::size_t{1} << 24;

struct AlignedFree {
  void operator()(float* p) const { std::free(p); }
};
using Buffer = std::unique_ptr<float[], AlignedFree>;

Buffer aligned_floats(std::size_t n) {
  const std::size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
  auto* p = static_cast<float*>(std::aligned_alloc(64, bytes == 0 ? 64 : bytes));
  if (p == nullptr) throw std::bad_alloc();
  return Buffer(p);
}

// Transposes the 8 x 8 block rows[r][0..8) (row stride `stride`) into out[c * out_stride + r].
inline void transpose8x8(const float* in, std::size_t stride, float* out, std::size_t out_stride) {
  __m256 r0 = _mm256_loadu_ps(in + 0 * stride), r1 = _mm256_loadu_ps(in + 1 * stride);
  __m256 r2 = _mm256_loadu_ps(in + 2 * stride), r3 = _mm256_loadu_ps(in + 3 * stride);
  __m256 r4 = _mm256_loadu_ps(in + 4 * stride), r5 = _mm256_loadu_ps(in + 5 * stride);
  __m256 r6 = _mm256_loadu_ps(in + 6 * stride), r7 = _mm256_loadu_ps(in + 7 * stride);
  const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
  const __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
  const __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
  const __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  _mm256_storeu_ps(out + 0 * out_stride, _mm256_permute2f128_ps(u0, u4, 0x20));
  _mm256_storeu_ps(out + 1 * out_stride, _mm256_permute2f128_ps(u1, u5, 0x20));
  _mm256_storeu_ps(out + 2 * out_stride, _mm256_permute2f128_ps(u2, u6, 0x20));
  _mm256_storeu_ps(out + 3 * out_stride, _mm256_permute2f128_ps(u3, u7, 0x20));
  _mm256_storeu_ps(out + 4 * out_stride, _mm256_permute2f128_ps(u0, u4, 0x31));
  _mm256_storeu_ps(out + 5 * out_stride, _mm256_permute2f128_ps(u1, u5, 0x31));
  _mm256_storeu_ps(out + 6 * out_stride, _mm256_permute2f128_ps(u2, u6, 0x31));
  _mm256_storeu_ps(out + 7 * out_stride, _mm256_permute2f128_ps(u3, u7, 0x31));
}

// Packs columns [j0, j0 + cols) of op(B) (cols <= NR) into dst[k * NR + j], zero columns after.
void pack_b(bool trans, const float* B, std::size_t ldb, std::size_t j0, std::size_t cols, std::size_t K, float* dst) {
  if (!trans) {  // op(B)(k, j) = B[k * ldb + j]: each k is `cols` consecutive floats
    const __mmask16 lo = static_cast<__mmask16>(cols >= 16 ? 0xFFFFu : (1u << cols) - 1u);
    const __mmask16 hi = static_cast<__mmask16>(cols >= 32 ? 0xFFFFu : cols <= 16 ? 0u : (1u << (cols - 16)) - 1u);
    for (std::size_t k = 0; k < K; ++k) {
      const float* row = B + k * ldb + j0;
      _mm512_store_ps(dst + k * NR, _mm512_maskz_loadu_ps(lo, row));
      _mm512_store_ps(dst + k * NR + 16, _mm512_maskz_loadu_ps(hi, row + 16));
    }
    return;
  }
  // op(B)(k, j) = B[j * ldb + k]: column j of op(B) is row j of B; transpose 8 x 8 blocks. The
  // blocks of 8 consecutive k go across the panel's width first, so each group of 8 panel rows
  // (16 cache lines) is written whole at once.
  const std::size_t full = cols / 8 * 8;  // columns in whole 8 x 8 blocks
  const float* b = B + j0 * ldb;
  std::size_t k = 0;
  for (; k + 8 <= K; k += 8) {
    for (std::size_t j = 0; j < full; j += 8) transpose8x8(b + j * ldb + k, ldb, dst + k * NR + j, NR);
  }
  for (; k < K; ++k) {
    for (std::size_t j = 0; j < full; ++j) dst[k * NR + j] = b[j * ldb + k];
  }
  for (k = 0; k < K; ++k) {
    for (std::size_t c = full; c < NR; ++c) dst[k * NR + c] = c < cols ? b[c * ldb + k] : 0.0f;
  }
}

// One 8 x 32 tile: acc[r][j] = fma chain over k of a(r, k) * b[k][j], then the epilogue into the
// rows x cols corner of C. b is a packed panel (64-byte aligned); a(r, k) = a[r * lda + k], or
// a[k * lda + r] with kTransA, is read in place (8 broadcasts per k, from 8 rows or from one run
// of 8: no packing needed), with rows past `rows` clamped to the last real row (their results
// are never stored).
//
// (B is always packed: reading an untransposed B's rows in place, 128 bytes every ldb, ran at
// under half the speed of the contiguous panel; with software prefetch it was still no faster
// than packing plus the panel. Packing A's 8 rows as well was slower.)
//
// kHalf: only the first 16 columns (a ragged last panel of at most 16): half the multiply-adds,
// the same chain for each element.
//
// The eight rows are spelled out (SORIX_ROWS) rather than held in arrays: g++ kept arrays of 16
// accumulators in memory (zeroed, spilled and reloaded around every tile: ~100 cycles a tile, 2-4%
// of a K = 128 product); named variables stay in registers.
#define SORIX_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)

template <bool kTransA, bool kHalf>
void tile(std::size_t K, const float* __restrict a, std::size_t lda, const float* __restrict b, float alpha,
          float beta, float* C, std::size_t ldc, std::size_t rows, std::size_t cols) {
  static_assert(MR == 8, "SORIX_ROWS spells out 8 rows");
  const __mmask16 lo = static_cast<__mmask16>(cols >= 16 ? 0xFFFFu : (1u << cols) - 1u);
  const __mmask16 hi = static_cast<__mmask16>(cols >= 32 ? 0xFFFFu : cols <= 16 ? 0u : (1u << (cols - 16)) - 1u);
  const std::size_t a_row = kTransA ? 1 : lda;  // from one row of op(A) to the next
#define SORIX_DECLARE(r)                                                   \
  __m512 c0_##r = _mm512_setzero_ps(), c1_##r = _mm512_setzero_ps();      \
  const float* a_##r = a + ((r) < rows ? (r) : rows - 1) * a_row;
  SORIX_ROWS(SORIX_DECLARE)
#undef SORIX_DECLARE
  // C's lines are fetched for writing while the multiply-adds run (a fresh gradient is in no
  // cache: the epilogue's stores would otherwise wait for them).
  for (std::size_t r = 0; r < rows; ++r) {
    __builtin_prefetch(C + r * ldc, 1, 3);
    __builtin_prefetch(C + r * ldc + 16, 1, 3);
  }
  const std::size_t a_step = kTransA ? lda : 1;  // from k to k + 1 within a row of op(A)
  for (std::size_t k = 0; k < K; ++k) {
    const __m512 b0 = _mm512_load_ps(b + k * NR);
    const __m512 b1 = kHalf ? b0 : _mm512_load_ps(b + k * NR + 16);
    const std::size_t ak = k * a_step;
#define SORIX_FMA(r)                                                       \
    {                                                                      \
      const __m512 av = _mm512_set1_ps(a_##r[ak]);                         \
      c0_##r = _mm512_fmadd_ps(av, b0, c0_##r);                            \
      if constexpr (!kHalf) c1_##r = _mm512_fmadd_ps(av, b1, c1_##r);      \
    }
    SORIX_ROWS(SORIX_FMA)
#undef SORIX_FMA
  }
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
  const auto store_row = [&](std::size_t r, __m512 y0, __m512 y1) {
    if (r >= rows) return;
    float* row = C + r * ldc;
    if (alpha != 1.0f) {
      y0 = _mm512_mul_ps(va, y0);
      y1 = _mm512_mul_ps(va, y1);
    }
    if (beta != 0.0f) {  // beta == 0: C is only written (NaNs in it do not propagate), as BLAS
      y0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(lo, row), y0);
      y1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(hi, row + 16), y1);
    }
    _mm512_mask_storeu_ps(row, lo, y0);
    _mm512_mask_storeu_ps(row + 16, hi, y1);
  };
#define SORIX_STORE(r) store_row(r, c0_##r, c1_##r);
  SORIX_ROWS(SORIX_STORE)
#undef SORIX_STORE
}
#undef SORIX_ROWS

// Floats from one packed B panel to the next: K rows of NR, plus one cache line so that the panels
// do not all start on the same L1 set (with K a power of two they would: packing writes row k of
// every panel in turn, and the stores would evict each other).
std::size_t packed_panel_floats(std::size_t K) { return NR * K + 16; }

// C (M x N) = alpha * op(A) op(B) + beta * C with B packed into bp (room for ceil(N / NR) panels).
void multiply(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K, float alpha, const float* A,
              std::size_t lda, const float* B, std::size_t ldb, float beta, float* C, std::size_t ldc, float* bp) {
  const std::size_t row_panels = (M + MR - 1) / MR, col_panels = (N + NR - 1) / NR;
  const std::size_t panel = packed_panel_floats(K);
  // Work sizes decide only inline vs tasks (grain: at most that many items inline; 0: tasks); each
  // panel and tile is computed the same way either way.
  const bool pack_inline = col_panels * NR * K <= (std::size_t{1} << 15);
  if (trans_b) {  // panel by panel: each reads 32 rows of B, 8 x 8 blocks at a time
    parallel::parallel_for(
        col_panels, 1,
        [&](std::size_t begin, std::size_t end) {
          for (std::size_t q = begin; q < end; ++q) pack_b(true, B, ldb, q * NR, std::min(NR, N - q * NR), K, bp + q * panel);
        },
        pack_inline ? col_panels : 0);
  } else {  // row by row: each row of B is read once, in order, and dealt out to the panels
    constexpr std::size_t kRowsPerTask = 32;
    parallel::parallel_for(
        K, kRowsPerTask,
        [&](std::size_t k0, std::size_t k1) {
          for (std::size_t k = k0; k < k1; ++k) {
            for (std::size_t q = 0; q < col_panels; ++q) {
              const std::size_t j0 = q * NR;
              pack_b(false, B + k * ldb, ldb, j0, std::min(NR, N - j0), 1, bp + q * panel + k * NR);
            }
          }
        },
        pack_inline ? K : 0);
  }
  auto run_tile = [&](std::size_t t, std::size_t u) {
    const std::size_t i0 = t * MR, j0 = u * NR;
    const std::size_t rows = std::min(MR, M - i0), cols = std::min(NR, N - j0);
    const float* a = A + (trans_a ? i0 : i0 * lda);
    const float* b = bp + u * panel;
    float* c = C + i0 * ldc + j0;
    if (cols <= 16) {
      if (trans_a) tile<true, true>(K, a, lda, b, alpha, beta, c, ldc, rows, cols);
      else tile<false, true>(K, a, lda, b, alpha, beta, c, ldc, rows, cols);
    } else {
      if (trans_a) tile<true, false>(K, a, lda, b, alpha, beta, c, ldc, rows, cols);
      else tile<false, false>(K, a, lda, b, alpha, beta, c, ldc, rows, cols);
    }
  };
  // A task: one row panel of A (MR rows, read in place: it stays in L1) against the column panels
  // of one kTaskCols-wide group (they stay in L2). The order of tiles never changes a result.
  constexpr std::size_t panels_per_group = kTaskCols / NR;
  const std::size_t groups = (col_panels + panels_per_group - 1) / panels_per_group;
  const std::size_t tasks = row_panels * groups;
  const double work = static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K);
  const std::size_t tile_grain = work <= static_cast<double>(std::size_t{1} << 18) ? tasks : 0;
  parallel::parallel_for(
      tasks, 1,
      [&](std::size_t begin, std::size_t end) {
        for (std::size_t task = begin; task < end; ++task) {
          const std::size_t t = task % row_panels, g = task / row_panels;
          const std::size_t u_end = std::min(col_panels, (g + 1) * panels_per_group);
          for (std::size_t u = g * panels_per_group; u < u_end; ++u) run_tile(t, u);
        }
      },
      tile_grain);
}

}  // namespace

bool own_sgemm_available() { return true; }

void own_sgemm(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K, float alpha, const float* A,
               std::size_t lda, const float* B, std::size_t ldb, float beta, float* C, std::size_t ldc) {
  // Slabs of columns bound the packed copy of B to kMaxPackedFloats; a slab is packed, then
  // multiplied. Slabs, like tiles, change no element's arithmetic.
  const std::size_t per_slab = std::max(NR, kMaxPackedFloats / std::max<std::size_t>(K, 1) / kTaskCols * kTaskCols);
  const std::size_t slab = std::min(N, per_slab);
  Buffer bpack = aligned_floats((slab + NR - 1) / NR * packed_panel_floats(K));
  for (std::size_t j0 = 0; j0 < N; j0 += slab) {
    const std::size_t n = std::min(slab, N - j0);
    multiply(trans_a, trans_b, M, n, K, alpha, A, lda, B + (trans_b ? j0 * ldb : j0), ldb, beta, C + j0, ldc,
             bpack.get());
  }
}

#else  // no AVX-512: float32 products go to OpenBLAS (gemm.cpp)

bool own_sgemm_available() { return false; }

void own_sgemm(bool, bool, std::size_t, std::size_t, std::size_t, float, const float*, std::size_t, const float*,
               std::size_t, float, float*, std::size_t) {
  std::abort();  // never called: gemm.cpp checks own_sgemm_available() first
}

#endif

}  // namespace sorix::kernels
