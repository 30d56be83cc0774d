#pragma once
// Internal (not installed): deterministic parallel matrix products on CBLAS (OpenBLAS).
//
//   C = alpha * op(A) * op(B) + beta * C, every matrix row-major; op(X) = X or X^T.
//   op(A) is M x K, op(B) is K x N, C is M x N. A is stored M x K (lda >= K) or, with trans_a,
//   K x M (lda >= M); B likewise K x N (ldb >= N) or, with trans_b, N x K (ldb >= K); ldc >= N.
//   Transposes are read in place through the BLAS flags, never materialised: the nn layers call
//   y = x W^T (trans_b), dW = g^T x (trans_a), dx = g W directly.
//   beta == 0 means C is only written (NaNs already in C do not propagate), as in BLAS.
//
// Threading and determinism: only the output C is cut, into fixed blocks of gemm_block_rows(M) x
// kGemmBlockCols (functions of the shape, never of the thread count), and each block is one
// sequential cblas_?gemm call over the whole K, run as a task of sorix::parallel. OpenBLAS's
// rounding depends on the shape of each call (design.md 3.3), so the fixed blocks are what makes
// the result bit-identical for any thread count; small products run inline on the calling thread
// with the same blocks, hence the same bits. OpenBLAS's own threads are switched off (once, before
// the first product): all parallelism comes from the library's TBB arena.
#include <cstddef>

namespace sorix::kernels {

/// Rows of C per block. 64 keeps the 128-row training batches in two parallel tasks.
inline constexpr std::size_t kGemmBlockRows = 64;
/// Rows of C per block when C has at least kGemmTallRows rows (inference batches): fewer blocks
/// repack B fewer times. The choice depends on the problem's shape only, never on the thread count.
inline constexpr std::size_t kGemmTallBlockRows = 256;
inline constexpr std::size_t kGemmTallRows = 1024;
/// The row block used for an output of M rows.
constexpr std::size_t gemm_block_rows(std::size_t M) { return M >= kGemmTallRows ? kGemmTallBlockRows : kGemmBlockRows; }
/// Columns of C per block.
inline constexpr std::size_t kGemmBlockCols = 256;
/// Products of at most this many multiply-adds (M*N*K, summed over a batch) run inline.
inline constexpr std::size_t kGemmInlineWork = std::size_t{1} << 18;

/// C = alpha * op(A) op(B) + beta * C (see above). T is float or double.
template <class T>
void gemm(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K, T alpha, const T* A,
          std::size_t lda, const T* B, std::size_t ldb, T beta, T* C, std::size_t ldc);

/// `batch` independent products C_i = alpha * op(A_i) op(B_i) + beta * C_i with A_i = A + i*stride_a
/// (likewise B, C). A stride of 0 broadcasts one matrix over the batch (stride_c must not be 0 when
/// batch > 1). All blocks of all products are tasks of one parallel loop: same bits as calling
/// gemm once per product.
template <class T>
void gemm_batched(std::size_t batch, bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K,
                  T alpha, const T* A, std::size_t lda, std::size_t stride_a, const T* B, std::size_t ldb,
                  std::size_t stride_b, T beta, T* C, std::size_t ldc, std::size_t stride_c);

}  // namespace sorix::kernels
