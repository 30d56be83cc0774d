#pragma once
// Internal (not installed): deterministic parallel matrix products, on sorix's own float32 kernel
// (sgemm.hpp) and on CBLAS (OpenBLAS).
//
//   C = alpha * op(A) * op(B) + beta * C, every matrix row-major; op(X) = X or X^T.
//   op(A) is M x K, op(B) is K x N, C is M x N. A is stored M x K (lda >= K) or, with trans_a,
//   K x M (lda >= M); B likewise K x N (ldb >= N) or, with trans_b, N x K (ldb >= K); ldc >= N.
//   Transposes are read in place through the BLAS flags, never materialised: the nn layers call
//   y = x W^T (trans_b), dW = g^T x (trans_a), dx = g W directly.
//   beta == 0 means C is only written (NaNs already in C do not propagate), as in BLAS.
//
// Two kernels. float32 products of more than kGemmInlineWork multiply-adds run on sorix's own
// AVX-512 kernel (sgemm.hpp; where the build has AVX-512): one fma chain per element in k order,
// so its bits never depend on how the product is split, and it is split into 8 x 32 tiles freely.
// Everything else (float64, small float32 products, builds without AVX-512) runs on OpenBLAS:
//
// Threading and determinism on OpenBLAS: only the output C is cut, into fixed blocks chosen by
// gemm_blocks(M, N, K) (a function of the shape, never of the thread count), and each block is one
// sequential cblas_?gemm call over the whole K, run as a task of sorix::parallel. OpenBLAS's
// rounding depends on the shape of each call (design.md 3.3), so the fixed blocks are what makes
// the result bit-identical for any thread count; small products run inline on the calling thread
// with the same blocks, hence the same bits. OpenBLAS's own threads are switched off (once, before
// the first product): all parallelism comes from the library's TBB arena.
#include <cstddef>

namespace sorix::kernels {

/// How C is cut: blocks of `rows` x `cols` (the last ones may be smaller).
struct GemmBlocks {
  std::size_t rows;
  std::size_t cols;
};

/// Multiply-adds per block the rule aims for: about 2^24 (~0.2 ms of one AVX-512 core). Each extra
/// block makes OpenBLAS pack the operand the blocks share once more (measured on the Fashion-MNIST
/// products in float32: a 64-wide cut costs ~6% of the block's time, a 64-row cut ~13%), so at one
/// thread fewer, larger blocks are cheaper; 2^24 kept that repacking under 1% (batch 128) and 4%
/// (batch 512) of a training step, when those products still ran on OpenBLAS.
inline constexpr double kGemmBlockWork = 16777216.0;
/// Blocks are never cut below this many rows or columns (OpenBLAS's panels are 16 wide; narrower
/// blocks spend their time packing).
inline constexpr std::size_t kGemmMinBlock = 64;
/// Block edges are multiples of this, so every block but the last runs on whole kernel panels.
inline constexpr std::size_t kGemmBlockAlign = 16;

/// The blocks for an M x N output with inner dimension K: a function of the shape only, never of
/// the thread count. Aims for max(2, ceil(M*N*K / kGemmBlockWork)) blocks (at least two so that
/// two threads share any product that can be cut), cutting the longer side of the current block
/// each time (columns on a tie: the cheaper cut, as measured), never below kGemmMinBlock.
GemmBlocks gemm_blocks(std::size_t M, std::size_t N, std::size_t K);

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
