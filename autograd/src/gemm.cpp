// Deterministic parallel GEMM: fixed output blocks, one sequential cblas call per block (gemm.hpp).
#include "autograd/src/gemm.hpp"

#include "autograd/src/sgemm.hpp"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#include "sorix/core/error.hpp"
#include "sorix/parallel/parallel.hpp"

namespace sorix::kernels {
namespace {

// OpenBLAS starts its own thread pool at load time. Its threads must stay off: the library's TBB
// arena already runs one block per thread, and OpenBLAS splitting a block further would both
// oversubscribe the cores and make the bits depend on its thread count. The setting is global
// and not safe to change while another thread is inside BLAS, so it is made exactly once (a
// function-local static: thread-safe initialisation), before the first product. With one thread
// the pthread build of OpenBLAS (Debian's libopenblas0-pthread, built with locking) runs each
// call on the caller's thread, and concurrent calls from TBB workers only share its
// lock-protected buffer pool (checked on OpenBLAS 0.3.21: 60 mixed s/dgemm shapes, small-matrix
// kernel sizes included, run 100 times on 8 concurrent TBB threads gave the serial bits).
void blas_threads_off() {
  static const bool done = [] {
    openblas_set_num_threads(1);
    return true;
  }();
  (void)done;
}

blasint as_blasint(std::size_t v, const char* what) {
  check(v <= static_cast<std::size_t>(std::numeric_limits<blasint>::max()), "gemm", what, " = ", v,
        " exceeds the BLAS integer range (", std::numeric_limits<blasint>::max(), ")");
  return static_cast<blasint>(v);
}

template <class T>
void blas_call(bool ta, bool tb, blasint m, blasint n, blasint k, T alpha, const T* a, blasint lda, const T* b,
               blasint ldb, T beta, T* c, blasint ldc) {
  const CBLAS_TRANSPOSE ota = ta ? CblasTrans : CblasNoTrans;
  const CBLAS_TRANSPOSE otb = tb ? CblasTrans : CblasNoTrans;
  if constexpr (std::is_same_v<T, float>) {
    cblas_sgemm(CblasRowMajor, ota, otb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  } else {
    cblas_dgemm(CblasRowMajor, ota, otb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  }
}

std::size_t round_up(std::size_t v, std::size_t m) { return (v + m - 1) / m * m; }
std::size_t ceil_div(std::size_t a, std::size_t b) { return (a + b - 1) / b; }

}  // namespace

GemmBlocks gemm_blocks(std::size_t M, std::size_t N, std::size_t K) {
  if (M == 0 || N == 0) return {1, 1};
  const double work = static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K);
  const double wanted_d = std::max(2.0, std::ceil(work / kGemmBlockWork));
  const std::size_t wanted = wanted_d > 1e6 ? std::size_t{1000000} : static_cast<std::size_t>(wanted_d);
  std::size_t row_blocks = 1, col_blocks = 1;
  while (row_blocks * col_blocks < wanted) {
    const std::size_t h = ceil_div(M, row_blocks), w = ceil_div(N, col_blocks);
    const bool can_cut_cols = w >= 2 * kGemmMinBlock, can_cut_rows = h >= 2 * kGemmMinBlock;
    if (can_cut_cols && (w >= h || !can_cut_rows)) {
      ++col_blocks;
    } else if (can_cut_rows) {
      ++row_blocks;
    } else {
      break;
    }
  }
  return {round_up(ceil_div(M, row_blocks), kGemmBlockAlign), round_up(ceil_div(N, col_blocks), kGemmBlockAlign)};
}

template <class T>
void gemm_batched(std::size_t batch, bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K,
                  T alpha, const T* A, std::size_t lda, std::size_t stride_a, const T* B, std::size_t ldb,
                  std::size_t stride_b, T beta, T* C, std::size_t ldc, std::size_t stride_c) {
  if (batch == 0 || M == 0 || N == 0) return;
  check(ldc >= N, "gemm", "ldc = ", ldc, " is smaller than N = ", N);
  check(batch == 1 || stride_c != 0, "gemm", "stride_c must not be 0 for a batch of ", batch);

  const GemmBlocks blocks = gemm_blocks(M, N, K);
  const std::size_t block_rows = blocks.rows, block_cols = blocks.cols;
  const std::size_t row_blocks = ceil_div(M, block_rows);
  const std::size_t col_blocks = ceil_div(N, block_cols);
  const std::size_t per_matrix = row_blocks * col_blocks;
  const std::size_t tasks = batch * per_matrix;

  if (K == 0) {
    // op(A) op(B) is an empty sum: C = beta * C (and exactly 0 for beta == 0, as BLAS).
    parallel::parallel_for(batch * M, 1024, [&](std::size_t begin, std::size_t end) {
      for (std::size_t r = begin; r < end; ++r) {
        T* row = C + (r / M) * stride_c + (r % M) * ldc;
        for (std::size_t j = 0; j < N; ++j) row[j] = beta == T(0) ? T(0) : beta * row[j];
      }
    });
    return;
  }

  // Leading dimensions as BLAS requires them (row-major): at least the stored row length.
  check(lda >= std::max<std::size_t>(1, trans_a ? M : K), "gemm", "lda = ", lda,
        " is smaller than the row length of A (", trans_a ? M : K, ")");
  check(ldb >= std::max<std::size_t>(1, trans_b ? K : N), "gemm", "ldb = ", ldb,
        " is smaller than the row length of B (", trans_b ? K : N, ")");
  if constexpr (std::is_same_v<T, float>) {
    const double product_work = static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K);
    if (own_sgemm_available() && product_work > static_cast<double>(kGemmInlineWork)) {
      // sorix's kernel: its bits do not depend on how the product is cut (sgemm.hpp), so each
      // product is split into its own tiles; a batch's products run as tasks too. Small products
      // stay on OpenBLAS below (its small-matrix kernels are faster there), in fixed blocks.
      parallel::parallel_for(
          batch, 1,
          [&](std::size_t begin, std::size_t end) {
            for (std::size_t i = begin; i < end; ++i) {
              own_sgemm(trans_a, trans_b, M, N, K, alpha, A + i * stride_a, lda, B + i * stride_b, ldb, beta,
                        C + i * stride_c, ldc);
            }
          },
          1);
      return;
    }
  }
  blas_threads_off();
  const blasint k = as_blasint(K, "K");
  const blasint ilda = as_blasint(lda, "lda"), ildb = as_blasint(ldb, "ldb"), ildc = as_blasint(ldc, "ldc");
  as_blasint(M, "M");
  as_blasint(N, "N");

  auto run_block = [&](std::size_t t) {
    const std::size_t i = t / per_matrix, r = t % per_matrix;
    const std::size_t r0 = (r / col_blocks) * block_rows, c0 = (r % col_blocks) * block_cols;
    const std::size_t m = std::min(block_rows, M - r0), n = std::min(block_cols, N - c0);
    // Rows r0.. of op(A): rows of A, or columns of A when it is read transposed; likewise B.
    const T* a = A + i * stride_a + (trans_a ? r0 : r0 * lda);
    const T* b = B + i * stride_b + (trans_b ? c0 * ldb : c0);
    T* c = C + i * stride_c + r0 * ldc + c0;
    blas_call<T>(trans_a, trans_b, static_cast<blasint>(m), static_cast<blasint>(n), k, alpha, a, ilda, b, ildb, beta,
                 c, ildc);
  };
  // Work in multiply-adds decides inline vs tasks; the blocks are the same either way.
  const double work = static_cast<double>(batch) * static_cast<double>(M) * static_cast<double>(N) *
                      static_cast<double>(K);
  const std::size_t grain = work <= static_cast<double>(kGemmInlineWork) ? tasks : 0;
  parallel::parallel_for(
      tasks, 1,
      [&](std::size_t begin, std::size_t end) {
        for (std::size_t t = begin; t < end; ++t) run_block(t);
      },
      grain);
}

template <class T>
void gemm(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K, T alpha, const T* A,
          std::size_t lda, const T* B, std::size_t ldb, T beta, T* C, std::size_t ldc) {
  const double work = static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K);
  const bool own_kernel = std::is_same_v<T, float> && own_sgemm_available() && work > static_cast<double>(kGemmInlineWork);
  if (!parallel::deterministic() && !own_kernel && M > 0 && N > 0 && K > 0) {
    // Benchmark-only variant (parallel::set_deterministic(false)): one whole product on
    // OpenBLAS's own threads, whose bits may change with the thread count. (sorix's own float32
    // kernel is deterministic under any split and faster than this on its shapes, so it is the
    // fastest variant for those products in both modes.)
    blas_threads_off();
    openblas_set_num_threads(parallel::get_num_threads());
    blas_call<T>(trans_a, trans_b, as_blasint(M, "M"), as_blasint(N, "N"), as_blasint(K, "K"), alpha, A,
                 as_blasint(lda, "lda"), B, as_blasint(ldb, "ldb"), beta, C, as_blasint(ldc, "ldc"));
    openblas_set_num_threads(1);
    return;
  }
  gemm_batched<T>(1, trans_a, trans_b, M, N, K, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0);
}

template void gemm<float>(bool, bool, std::size_t, std::size_t, std::size_t, float, const float*, std::size_t,
                          const float*, std::size_t, float, float*, std::size_t);
template void gemm<double>(bool, bool, std::size_t, std::size_t, std::size_t, double, const double*, std::size_t,
                           const double*, std::size_t, double, double*, std::size_t);
template void gemm_batched<float>(std::size_t, bool, bool, std::size_t, std::size_t, std::size_t, float,
                                  const float*, std::size_t, std::size_t, const float*, std::size_t, std::size_t,
                                  float, float*, std::size_t, std::size_t);
template void gemm_batched<double>(std::size_t, bool, bool, std::size_t, std::size_t, std::size_t, double,
                                   const double*, std::size_t, std::size_t, const double*, std::size_t,
                                   std::size_t, double, double*, std::size_t, std::size_t);

}  // namespace sorix::kernels
