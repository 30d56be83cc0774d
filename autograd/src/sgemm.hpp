#pragma once
// Internal (not installed): sorix's own float32 matrix product, the AVX-512 kernel under every
// float32 matmul and Linear (kernels::gemm dispatches to it; float64 stays on OpenBLAS).
//
//   C = alpha * op(A) op(B) + beta * C, row-major, op(X) = X or X^T, shapes and leading
//   dimensions as kernels::gemm (gemm.hpp). beta == 0: C is only written.
//
// Determinism by construction: every element is one fused multiply-add chain over k = 0..K-1 in
// order, starting from +0 (acc = fma(a_ik, b_kj, acc)), then alpha * acc, then + beta * c with one
// more fma. No element's arithmetic depends on where the tiles fall, on how tiles are grouped into
// tasks, or on the thread count, so the product is split across threads freely (unlike a BLAS,
// whose bits depend on the shape of each call) and B is packed once per product.
//
// Layout: B is packed into panels of kSgemmNR columns (row k of a panel is kSgemmNR consecutive
// floats; 8 x 8 transposes when B is read transposed), at most 2^24 floats at a time (column
// slabs); A is read in place, kSgemmMR rows at a time (8 broadcasts per k). An 8 x 32 tile of C
// accumulates in 16 registers while the kernel walks k; a task is one row panel against up to
// four column panels.
#include <cstddef>

namespace sorix::kernels {

inline constexpr std::size_t kSgemmMR = 8;
inline constexpr std::size_t kSgemmNR = 32;

/// True when this build has the kernel (AVX-512); otherwise float32 products use OpenBLAS.
bool own_sgemm_available();

/// The product as above (K >= 1, M, N >= 1; the caller checks leading dimensions). Runs as tasks
/// of sorix::parallel over fixed groups of tiles; the bits never depend on the thread count.
void own_sgemm(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K, float alpha,
               const float* A, std::size_t lda, const float* B, std::size_t ldb, float beta, float* C,
               std::size_t ldc);

}  // namespace sorix::kernels
