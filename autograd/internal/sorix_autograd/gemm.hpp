#pragma once
// Internal (not installed): parallel matrix products on the kernel layer's product kernel
// (core/internal/sorix_core/kernels/gemm_kernels.hpp, one instantiation per CPU capability).
//
//   C = alpha * op(A) * op(B) + beta * C, every matrix row-major; op(X) = X or X^T.
//   op(A) is M x K, op(B) is K x N, C is M x N. A is stored M x K (lda >= K) or, with trans_a,
//   K x M (lda >= M); B likewise K x N (ldb >= N) or, with trans_b, N x K (ldb >= K); ldc >= N.
//   Transposes are read in place, never materialised: the nn layers call y = x W^T (trans_b),
//   dW = g^T x (trans_a), dx = g W directly.
//   beta == 0 means C is only written (NaNs already in C do not propagate), as in BLAS.
//
// Determinism by construction, float32 and float64 alike: every element is one fused
// multiply-add chain over k = 0..K-1 in order from +0, then alpha * acc (alpha != 1), then
// fma(beta, c, that) (beta != 0). No element's arithmetic depends on the tiles, on how tiles are
// grouped into tasks, on the thread count or on the CPU capability, so a product is split across
// threads freely and gives the same bits on every x86-64 CPU.
//
// Threading: op(B) is packed into column panels (tasks of sorix::parallel), then tasks of one row
// panel of C against up to 128 columns run in the library's arena. Products of at most
// kGemmInlineWork multiply-adds run inline on the calling thread, with the same arithmetic.
#include <cstddef>

namespace sorix::kernels {

struct ConvGeometry;  // sorix_core/kernels/im2col.hpp

/// Products of at most this many multiply-adds (M*N*K, summed over a batch) run inline.
inline constexpr std::size_t kGemmInlineWork = std::size_t{1} << 18;

/// C = alpha * op(A) op(B) + beta * C (see above). T is float or double.
template <class T>
void gemm(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K, T alpha, const T* A,
          std::size_t lda, const T* B, std::size_t ldb, T beta, T* C, std::size_t ldc);

/// gemm on the calling thread only, for a product that is itself one task of the caller's
/// parallel loop (its output then stays in that core's cache): the same bits.
template <class T>
void gemm_serial(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K, T alpha, const T* A,
                 std::size_t lda, const T* B, std::size_t ldb, T beta, T* C, std::size_t ldc);

/// C = the chains of op(A) op(B) continued from C's values, on the calling thread: every element's
/// fma chain over k picks up from the partial sum stored in C (storing and reloading a float
/// partial is exact), so a chain whose k arrives in pieces (a batch-tree chunk whose columns are
/// made image by image) has the bits of one product over all of it.
template <class T>
void gemm_serial_resume(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K, const T* A,
                        std::size_t lda, const T* B, std::size_t ldb, T* C, std::size_t ldc);

/// C (M x N, ldc) = op(A) op(B) + beta * C (beta 0: C only written) on the calling thread, op(A)
/// gathered: op(A)(i, k) = A[a_rows[i] + a_ks[k]]. A convolution's columns read from its padded
/// input where they lie instead of made by im2col: as cols^T (row i an output position, k =
/// (channel, tap)) in the forward, as cols (row i = (channel, tap), k a position) in the weight
/// gradient. Every element is gemm_serial's fma chain over the same values (then fma(beta, c,
/// acc)): the bits of the product of the columns. resume (beta 0): every chain continues from the
/// partial sum in C, as gemm_serial_resume.
template <class T>
void gemm_gathered_serial(bool trans_b, std::size_t M, std::size_t N, std::size_t K, const T* A,
                          const std::size_t* a_rows, const std::size_t* a_ks, const T* B, std::size_t ldb, T beta, T* C,
                          std::size_t ldc, bool resume = false);

/// The multiply-adds per k that the product kernel computes for an M x N output of T, its padding
/// included (the tile shape with less of it, as every product chooses): what decides whether a
/// product is cheaper made as C or as C^T = op(B)^T op(A)^T (the same chains: fma's product
/// commutes), e.g. a convolution's 64 x 196 output against 196 x 64.
template <class T>
std::size_t gemm_padded_work(std::size_t M, std::size_t N);

/// What an M x N product over K costs, in the product kernel's multiply-adds: its padded tiles
/// (gemm_padded_work) times K, plus packing op(B) (K x N values) and b_work more per value of
/// op(B), what making it costs (a convolution's columns: im2col). For choosing between ways to
/// make one result (a convolution's output as W cols or as cols^T W^T); only speed depends on it.
template <class T>
std::size_t gemm_work(std::size_t M, std::size_t N, std::size_t K, std::size_t b_work = 0);

/// Values of T per register of the active capability's product kernel (16 floats on AVX-512).
template <class T>
std::size_t gemm_lanes();

/// How a convolution's output is made image by image (nn's Conv2d, one image per task): each
/// element is the same fma chain over the same values (input channel, tap) on every path, so the
/// bits never depend on the choice.
///   direct: the table's conv_direct on the zero-padded planes, lanes along the output rows
///     (stride-1 rows only); no columns, no copies. Few output channels, wide rows.
///   gathered: the transposed product cols^T W^T (P x OCg) with its columns read from the padded
///     planes where they lie (gemm_gathered_serial), copied out. Many output channels.
///   columns: W cols (OCg x P) from im2col's columns in the task's scratch.
enum class ConvForwardPath { direct, gathered, columns };

/// The cheapest path for one group's OCg output channels over K = (C / groups) * taps, priced in
/// the product kernel's multiply-adds for the active capability (gemm.cpp gives the measurements).
template <class T>
ConvForwardPath conv_forward_path(const ConvGeometry& geom, std::size_t OCg, std::size_t K);

/// `batch` independent products C_i = alpha * op(A_i) op(B_i) + beta * C_i with A_i = A + i*stride_a
/// (likewise B, C). A stride of 0 broadcasts one matrix over the batch (stride_c must not be 0 when
/// batch > 1). The products run as tasks of one parallel loop: same bits as calling gemm once per
/// product.
template <class T>
void gemm_batched(std::size_t batch, bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K,
                  T alpha, const T* A, std::size_t lda, std::size_t stride_a, const T* B, std::size_t ldb,
                  std::size_t stride_b, T beta, T* C, std::size_t ldc, std::size_t stride_c);

/// C = op(A) op(B) with K a batch (sorix/parallel/batch_tree.hpp): every element's chain restarts
/// from +0 every chunk_k values of k, and the chunk partials are combined by the batch tree.
/// Linear's weight gradient (chunk_k = kBatchChunk rows) and a convolution's (kBatchChunk images
/// of L columns each). Thread-count and CPU invariant as gemm; K <= chunk_k gives gemm's bits.
template <class T>
void gemm_batch_tree(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K, const T* A,
                     std::size_t lda, const T* B, std::size_t ldb, T* C, std::size_t ldc, std::size_t chunk_k);

}  // namespace sorix::kernels
