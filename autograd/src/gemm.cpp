// Parallel GEMM on the active capability's product kernel (gemm.hpp); OpenBLAS only for the
// unconstrained benchmark variant (parallel::set_deterministic(false)).
#include "sorix_autograd/gemm.hpp"

#include "sorix_core/kernels/batch_tree.hpp"
#include "sorix_core/kernels/im2col.hpp"
#include "sorix_core/kernels/table.hpp"

#include <cblas.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <new>
#include <limits>
#include <type_traits>
#include <vector>

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

std::size_t ceil_div(std::size_t a, std::size_t b) { return (a + b - 1) / b; }

struct AlignedFree {
  void operator()(void* p) const { std::free(p); }
};

template <class T>
std::unique_ptr<T[], AlignedFree> aligned_array(std::size_t n) {
  const std::size_t bytes = (n * sizeof(T) + 63) / 64 * 64;
  auto* p = static_cast<T*>(std::aligned_alloc(64, bytes == 0 ? 64 : bytes));
  if (p == nullptr) throw std::bad_alloc();
  return std::unique_ptr<T[], AlignedFree>(p);
}

// The M x N output rounded up to whole tiles of kernel k.
template <class T>
std::size_t padded_tiles(const GemmKernel<T>& k, std::size_t M, std::size_t N) {
  return (M + k.mr - 1) / k.mr * k.mr * ((N + k.nr - 1) / k.nr * k.nr);
}

// The tile shape with less padded work for an M x N output: a ragged last row panel computes
// whole tiles, and a ragged last column panel runs at a fraction of the full tile's rate, so both
// count as full (the products' bits do not depend on the choice).
template <class T>
const GemmKernel<T>& kernel_for(const KernelTable& t, std::size_t M, std::size_t N) {
  const GemmKernel<T>* wide;
  const GemmKernel<T>* narrow;
  if constexpr (std::is_same_v<T, float>) {
    wide = &t.sgemm;
    narrow = &t.sgemm_narrow;
  } else {
    wide = &t.dgemm;
    narrow = &t.dgemm_narrow;
  }
  return padded_tiles(*narrow, M, N) < padded_tiles(*wide, M, N) ? *narrow : *wide;
}

// A per-thread packing buffer of at least n values (64-byte aligned), kept for the thread's next
// product (TBB's workers live as long as the arena): no allocation, and no page faults, per task.
template <class T, int Tag = 0>
T* thread_buffer(std::size_t n) {
  thread_local std::unique_ptr<T[], AlignedFree> buf;
  thread_local std::size_t capacity = 0;
  if (n > capacity) {
    buf = aligned_array<T>(n);
    capacity = n;
  }
  return buf.get();
}

/// Products with longer chains (alpha 1, beta 0) run in blocks of this many k: a task's packed
/// panels stay in L2 however long K is (see own_gemm).
constexpr std::size_t kBlockK = 512;
/// Columns of C per task at most: the B panels a task walks stay in the core's L2.
constexpr std::size_t kTaskCols = 128;
/// An untransposed B block up to this size is read in place, not packed (Winograd's products:
/// 32 or 64 rows of 7 x 7 tiles, 7-14 KB).
constexpr std::size_t kInPlaceBytes = 24 * 1024;
/// A task that splits a column group by rows keeps at least this many row panels, so that
/// packing its panels stays a small share of its multiply-adds.
constexpr std::size_t kMinRowPanelsPerTask = 4;

// One task of a chunked product (own_gemm, chunk_k > 0): row panels [t0, t1) of C against its n
// columns from j0. Stack slot s of row panel t holds mr x n values at stack + ((t - t0) *
// max_depth + s) * mr * n; the tree's bookkeeping is the same for every row panel (it follows the
// chunk index only): before chunk i the stack holds popcount(i) nodes, after it countr_zero(i + 1)
// pairs are added.
// Packs rows [k0, k0 + kb) of B's columns [j0, j0 + n) into `panels` panels of nr columns.
template <class T>
void pack_columns(const GemmKernel<T>& kern, bool trans_b, const T* B, std::size_t ldb, std::size_t k0, std::size_t kb,
                  std::size_t j0, std::size_t n, std::size_t panels, T* buf, std::size_t panel) {
  if (trans_b) {
    for (std::size_t q = 0; q < panels; ++q)
      kern.pack(true, B + k0, ldb, j0 + q * kern.nr, std::min(kern.nr, n - q * kern.nr), kb, buf + q * panel);
  } else {
    kern.pack_rows(B + k0 * ldb + j0, ldb, n, 0, kb, buf, panel);
  }
}

template <class T>
void chunked_task(const GemmKernel<T>& kern, bool trans_a, bool trans_b, std::size_t M, std::size_t K, const T* A,
                  std::size_t lda, const T* B, std::size_t ldb, T* C, std::size_t ldc, std::size_t chunk_k,
                  std::size_t kmax, std::size_t max_depth, T* buf, std::size_t panel, std::size_t j0, std::size_t n,
                  std::size_t panels, std::size_t t0, std::size_t t1) {
  const std::size_t mr = kern.mr, nr = kern.nr, block = mr * n;
  if (K <= kmax) {
    // One K block (every training batch up to kBlockK rows): each tile runs the whole tree in its
    // registers and an L1 stack of pending nodes, and writes the root to C (tree_tile in
    // gemm_kernels.hpp; the same additions as below).
    pack_columns(kern, trans_b, B, ldb, 0, K, j0, n, panels, buf, panel);
    GemmArgs<T> args{trans_a, M, n, K, T(1), A, lda, T(0), C + j0, ldc, buf, panel};
    args.tree_chunk = chunk_k;
    args.tree_stack = thread_buffer<T, 1>(max_depth * mr * nr);
    for (std::size_t t = t0; t < t1; ++t) kern.tiles(args, t, 0, panels);
    return;
  }
  T* stack = thread_buffer<T, 1>((t1 - t0) * max_depth * block);
  for (std::size_t k0 = 0; k0 < K; k0 += kmax) {
    const std::size_t kb = std::min(kmax, K - k0);
    pack_columns(kern, trans_b, B, ldb, k0, kb, j0, n, panels, buf, panel);
    // One row panel at a time through all the block's chunk pieces, so that its stack of partial
    // nodes stays in L1 while its chunks are added into it. A chunk longer than the block continues
    // its chains from the partial sums on the stack (exact: GemmArgs::accumulate) in the next block.
    // The stack's bookkeeping follows the chunk index only, so every row panel's is the same.
    for (std::size_t t = t0; t < t1; ++t) {
      const std::size_t i0 = t * mr, rows = std::min(mr, M - i0);
      T* slots = stack + (t - t0) * max_depth * block;
      for (std::size_t kc = k0; kc < k0 + kb;) {
        const std::size_t chunk = kc / chunk_k, chunk_begin = chunk * chunk_k;
        const std::size_t chunk_end = std::min(K, chunk_begin + chunk_k), end = std::min(chunk_end, k0 + kb);
        const std::size_t depth = static_cast<std::size_t>(std::popcount(chunk));
        const int merges = end == chunk_end ? std::countr_zero(chunk + 1) : 0;
        const T* a = A + (trans_a ? kc * lda + i0 : i0 * lda + kc);
        GemmArgs<T> args{trans_a, rows, n, end - kc, T(1), a, lda, T(0), slots + depth * block, n, buf + (kc - k0) * nr, panel};
        args.accumulate = kc > chunk_begin;
        kern.tiles(args, 0, 0, panels);
        for (std::size_t d = depth + 1, m = 0; m < static_cast<std::size_t>(merges); ++m, --d) {
          T* left = slots + (d - 2) * block;
          const T* right = left + block;
          for (std::size_t e = 0; e < rows * n; ++e) left[e] = left[e] + right[e];
        }
        kc = end;
      }
    }
  }
  const std::size_t chunk = ceil_div(K, chunk_k);
  // The root: the stack folded from the right, into C.
  const std::size_t depth = static_cast<std::size_t>(std::popcount(chunk));
  for (std::size_t t = t0; t < t1; ++t) {
    const std::size_t i0 = t * mr, rows = std::min(mr, M - i0);
    const T* slots = stack + (t - t0) * max_depth * block;
    for (std::size_t r = 0; r < rows; ++r) {
      T* out = C + (i0 + r) * ldc + j0;
      const T* top = slots + (depth - 1) * block + r * n;
      std::copy(top, top + n, out);
      for (std::size_t s = depth - 1; s-- > 0;) {
        const T* left = slots + s * block + r * n;
        for (std::size_t j = 0; j < n; ++j) out[j] = left[j] + out[j];
      }
    }
  }
}

// One product on the active capability's kernel (table.hpp). Tasks are blocks of C: a group of
// column panels (at most kTaskCols columns) times a block of row panels. Each task packs the
// columns of op(B) it needs into a buffer of its own thread and runs its row panels over them,
// kBlockK k at a time when the chains are long. No thread reads what another packed: on a
// machine whose cores sit far apart (measured on a 2-core KVM guest of an AMD EPYC, Zen 5), a
// shared packed copy of B cost more in cache-line transfers between the cores than a second core
// gave back. The blocks change no element's arithmetic (one fma chain in k order, continued from
// C across K blocks), so they may follow the thread count: the bits never do.
//
// chunk_k > 0 (alpha 1, beta 0): the chains restart from +0 every chunk_k values of k, and each
// element is the batch tree (sorix/parallel/batch_tree.hpp) over its chunk partials. A task keeps,
// for each of its row panels, the tree's stack of partial nodes (at most log2(chunks) + 1 blocks of
// mr x its columns, in its thread's buffer): a chunk's tiles write their partial on top, completed
// pairs are added, and the stack is folded into C at the end. A K block is a whole number of
// chunks, or kBlockK values when a chunk is longer: the chunk's chains then continue from its
// partial sums on the stack in the next block (exact), so the packed panels stay in L2.
// The tasks own_gemm cuts an M x N product into: column groups x row blocks.
struct TaskGrid {
  std::size_t group, groups, row_blocks;
  std::size_t tasks() const { return groups * row_blocks; }
};
TaskGrid task_grid(std::size_t mr, std::size_t nr, std::size_t M, std::size_t N, std::size_t target) {
  const std::size_t col_panels = ceil_div(N, nr), row_panels = ceil_div(M, mr);
  const std::size_t group = std::clamp<std::size_t>(ceil_div(col_panels, target), 1, std::max<std::size_t>(1, kTaskCols / nr));
  const std::size_t groups = ceil_div(col_panels, group);
  const std::size_t row_blocks =
      std::clamp<std::size_t>(ceil_div(target, groups), 1, std::max<std::size_t>(1, row_panels / kMinRowPanelsPerTask));
  return {group, groups, row_blocks};
}

// serial: every task on the calling thread (a product that is itself one task of a parallel loop).
// resume (alpha 1, beta 0, no chunk_k): every chain continues from the partial sum stored in C.
// a_ks (trans_a false, no chunk_k): op(A) gathered, op(A)(i, k) = A[a_rows[i] + a_ks[k]].
template <class T>
void own_gemm(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K, T alpha, const T* A,
              std::size_t lda, const T* B, std::size_t ldb, T beta, T* C, std::size_t ldc, std::size_t chunk_k = 0,
              bool serial = false, bool resume = false, const std::size_t* a_rows = nullptr,
              const std::size_t* a_ks = nullptr) {
  const GemmKernel<T>& kern = kernel_for<T>(active(), M, N);
  const std::size_t mr = kern.mr, nr = kern.nr;
  const std::size_t row_panels = ceil_div(M, mr);
  const double work = static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K);
  const bool small = serial || work <= static_cast<double>(kGemmInlineWork);
  // Enough tasks for every thread to get two (load balance), as wide as kTaskCols allows.
  const std::size_t target = small ? 1 : 2 * static_cast<std::size_t>(parallel::get_num_threads());
  const TaskGrid grid = task_grid(mr, nr, M, N, target);
  const std::size_t group = grid.group, groups = grid.groups, row_blocks = grid.row_blocks;
  const std::size_t rows_per_block = ceil_div(row_panels, row_blocks);
  // Long chains are split along K only where C can hold the partial sums (alpha 1, beta 0).
  const bool chunked = chunk_k > 0 && chunk_k < K;
  const bool split_k = K > kBlockK && alpha == T(1) && beta == T(0);
  // Chunked: K blocks of whole chunks, or of kBlockK when a chunk is longer (it spans blocks).
  const std::size_t kmax = chunked ? (chunk_k <= kBlockK ? kBlockK / chunk_k * chunk_k : kBlockK)
                                   : split_k ? kBlockK : K;
  const std::size_t chunks = chunked ? ceil_div(K, chunk_k) : 0;
  const std::size_t max_depth = static_cast<std::size_t>(std::bit_width(chunks)) + 1;
  // A few columns past whole registers (a 7 x 7 tile grid's 49 = 48 + 1) are made with vectors
  // along the rows when A's columns are contiguous: a tile would run them at a register's width.
  const std::size_t ragged = N % kern.lanes;
  const std::size_t tail = !chunked && trans_a && ragged <= kern.column_tail ? ragged : 0;
  // Values from one packed panel to the next: kmax rows of nr, plus one cache line so that the
  // panels do not all start on the same L1 set (with K a power of two they would).
  const std::size_t panel = nr * kmax + 64 / sizeof(T);
  parallel::parallel_for(
      groups * row_blocks, 1,
      [&](std::size_t task0, std::size_t task1) {
        T* buf = thread_buffer<T>(group * panel);
        for (std::size_t task = task0; task < task1; ++task) {
          const std::size_t g = task / row_blocks, rb = task % row_blocks;
          const std::size_t j0 = g * group * nr, n = std::min(group * nr, N - j0), panels = ceil_div(n, nr);
          const std::size_t t0 = rb * rows_per_block, t1 = std::min(row_panels, t0 + rows_per_block);
          if (chunked) {
            chunked_task(kern, trans_a, trans_b, M, K, A, lda, B, ldb, C, ldc, chunk_k, kmax, max_depth, buf, panel, j0,
                         n, panels, t0, t1);
            continue;
          }
          const std::size_t column_tail = j0 + n == N ? tail : 0;
          for (std::size_t k0 = 0; k0 < K; k0 += kmax) {
            const std::size_t kb = std::min(kmax, K - k0);
            // A small untransposed B whose tiled columns are whole registers is read in place
            // (it stays in L1 while the row panels walk it): no packing, the same chains. Small:
            // its rows' span, or the columns read where the row stride is an odd number of cache
            // lines, so that the rows fall in every L1 set (Winograd's input gradient reads one
            // image's 49 tiles of rows holding 3 images': 16 packs of 64 x 49 an image were 5%
            // of the layer's backward).
            const bool small = kb * ldb * sizeof(T) <= kInPlaceBytes ||
                               (kb * n * sizeof(T) <= kInPlaceBytes && ldb * sizeof(T) % 128 != 0);
            const bool in_place = !trans_b && (n - column_tail) % kern.lanes == 0 && small;
            if (!in_place) pack_columns(kern, trans_b, B, ldb, k0, kb, j0, n, panels, buf, panel);
            GemmArgs<T> args{trans_a, M, n, kb, alpha, a_ks != nullptr ? A : A + (trans_a ? k0 * lda : k0), lda, beta,
                             C + j0, ldc, in_place ? B + k0 * ldb + j0 : buf, in_place ? nr : panel};
            if (a_ks != nullptr) {
              args.a_rows = a_rows;
              args.a_ks = a_ks + k0;
            }
            args.b_step = in_place ? ldb : 0;
            args.accumulate = resume || k0 > 0;
            args.column_tail = column_tail;
            for (std::size_t t = t0; t < t1; ++t) kern.tiles(args, t, 0, panels);
            if (args.column_tail > 0) kern.columns(args, t0 * mr, std::min(M, t1 * mr), n - args.column_tail, n);
          }
        }
      },
      small ? groups * row_blocks : 0);
}

}  // namespace

template <class T>
void gemm_batched(std::size_t batch, bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K,
                  T alpha, const T* A, std::size_t lda, std::size_t stride_a, const T* B, std::size_t ldb,
                  std::size_t stride_b, T beta, T* C, std::size_t ldc, std::size_t stride_c) {
  if (batch == 0 || M == 0 || N == 0) return;
  check(ldc >= N, "gemm", "ldc = ", ldc, " is smaller than N = ", N);
  check(batch == 1 || stride_c != 0, "gemm", "stride_c must not be 0 for a batch of ", batch);

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
  // A batch's products run as tasks too. Each product is split into its own tiles (own_gemm)
  // unless the batch alone gives every thread two tasks: then each product stays on its task's
  // thread (its packed panels and its C are not shared between cores).
  const double work = static_cast<double>(batch) * static_cast<double>(M) * static_cast<double>(N) *
                      static_cast<double>(K);
  const bool serial_products = batch >= 2 * static_cast<std::size_t>(parallel::get_num_threads());
  parallel::parallel_for(
      batch, 1,
      [&](std::size_t begin, std::size_t end) {
        for (std::size_t i = begin; i < end; ++i)
          own_gemm<T>(trans_a, trans_b, M, N, K, alpha, A + i * stride_a, lda, B + i * stride_b, ldb, beta,
                      C + i * stride_c, ldc, 0, serial_products);
      },
      work <= static_cast<double>(kGemmInlineWork) ? batch : 1);
}

template <class T>
void gemm_serial(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K, T alpha, const T* A,
                 std::size_t lda, const T* B, std::size_t ldb, T beta, T* C, std::size_t ldc) {
  if (M == 0 || N == 0 || K == 0) {
    gemm_batched<T>(1, trans_a, trans_b, M, N, K, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0);
    return;
  }
  check(ldc >= N, "gemm", "ldc = ", ldc, " is smaller than N = ", N);
  check(lda >= (trans_a ? M : K), "gemm", "lda = ", lda, " is smaller than the row length of A (", trans_a ? M : K, ")");
  check(ldb >= (trans_b ? K : N), "gemm", "ldb = ", ldb, " is smaller than the row length of B (", trans_b ? K : N, ")");
  own_gemm<T>(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, 0, true);
}

template <class T>
void gemm_gathered_serial(bool trans_b, std::size_t M, std::size_t N, std::size_t K, const T* A,
                          const std::size_t* a_rows, const std::size_t* a_ks, const T* B, std::size_t ldb, T beta, T* C,
                          std::size_t ldc, bool resume) {
  check(!resume || beta == T(0), "gemm", "a resumed chain takes beta = 0, got ", beta);
  if (M == 0 || N == 0 || K == 0) {
    if (resume) return;  // an empty piece of k: every chain stays where it was
    gemm_batched<T>(1, false, trans_b, M, N, K, T(1), A, 1, 0, B, std::max<std::size_t>(ldb, 1), 0, beta, C, ldc, 0);
    return;
  }
  check(ldc >= N, "gemm", "ldc = ", ldc, " is smaller than N = ", N);
  check(ldb >= (trans_b ? K : N), "gemm", "ldb = ", ldb, " is smaller than the row length of B (", trans_b ? K : N, ")");
  own_gemm<T>(false, trans_b, M, N, K, T(1), A, K, B, ldb, beta, C, ldc, 0, true, resume, a_rows, a_ks);
}

template <class T>
std::size_t gemm_padded_work(std::size_t M, std::size_t N) {
  return padded_tiles(kernel_for<T>(active(), M, N), M, N);
}

// What packing one value of op(B) costs, in the kernel's multiply-adds. Measured on Zen 5 (1
// thread, convolutions with both orientations forced, alternating runs): 5 x 5 kernels on 16-64
// channels (K = 400-1600) ran 5-13% faster as cols^T W^T on AVX-512 and 4% on AVX2, where their
// padded tiles alone priced both orientations the same; packing their columns (K x P) was the
// difference. A 7 x 7 kernel on 3 channels (K = 147, where the copy out weighs more) stayed 4%
// faster as W cols.
constexpr std::size_t kPackWork = 6;

template <class T>
std::size_t gemm_work(std::size_t M, std::size_t N, std::size_t K, std::size_t b_work) {
  return gemm_padded_work<T>(M, N) * K + (kPackWork + b_work) * K * N;
}

template <class T>
std::size_t gemm_lanes() {
  return kernel_for<T>(active(), 1, 1).lanes;
}

// What copying one output element out of a transposed product costs, in the product kernel's
// multiply-adds (a transposing copy and the bias rows, through L2): on AVX2 (Zen 3) conv1's
// 784 x 32 x 9 products ran at 18% of the fma peak transposed and copied out against 29% as
// 32 x 784 x 9, about 18 multiply-adds per element lost.
constexpr std::size_t kTransposedCopyWork = 24;

// What writing one value of the columns costs (im2col), in the product kernel's multiply-adds:
// only the product W cols needs them; cols^T W^T reads them where they lie (gathered). Measured
// on Zen 5, 1 thread, against the gathered product: im2col's stride-1 row copies took 15-20% of a
// 5 x 5 layer's time, its strided gathers more (a 7 x 7 stride-2 first layer ran 19-27% faster
// gathered on AVX2 and AVX-512, Conv1d k3 3-6%).
constexpr std::size_t kColumnWork = 16;

// Each path priced in the product kernel's multiply-adds per image and group:
//   direct: every output row at whole registers (ceil(OW / L) of L lanes) times K, a row of one
//     register at 3/2 (its tile broadcasts a weight per multiply-add: 15% slower than the
//     transposed product on 14 x 14 rows, 32 -> 128 channels, AVX-512); rows of stride 1 only;
//   gathered: the P x OCg product's tiles, the weights packed, the copy out;
//   columns: the OCg x P product's tiles, its columns packed and made.
// Measured on Zen 5 (1 thread, each path forced, alternating runs): the direct kernel is fastest
// for few output channels (8 channels of 32 x 32: 2.2x the columns' product, 3.8x the gathered
// one, whose 16-lane-wide panels are half empty) and the gathered product for many (5 x 5, 32 ->
// 64 on 28 x 28: even with direct on AVX-512, 17% faster on AVX2).
template <class T>
ConvForwardPath conv_forward_path(const ConvGeometry& geom, std::size_t OCg, std::size_t K) {
  const std::size_t P = geom.positions();
  const std::size_t gathered = gemm_work<T>(P, OCg, K) + kTransposedCopyWork * OCg * P;
  const std::size_t columns = gemm_work<T>(OCg, P, K, kColumnWork);
  if (geom.sw == 1) {
    const std::size_t L = gemm_lanes<T>(), regs = (geom.OW + L - 1) / L;
    const std::size_t direct = OCg * geom.OH * regs * L * K;
    if ((regs == 1 ? direct / 2 * 3 : direct) <= std::min(gathered, columns)) return ConvForwardPath::direct;
  }
  return gathered <= columns ? ConvForwardPath::gathered : ConvForwardPath::columns;
}

template <class T>
void gemm_serial_resume(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K, const T* A,
                        std::size_t lda, const T* B, std::size_t ldb, T* C, std::size_t ldc) {
  if (M == 0 || N == 0 || K == 0) return;  // an empty piece of k: every chain stays where it was
  check(ldc >= N, "gemm", "ldc = ", ldc, " is smaller than N = ", N);
  check(lda >= (trans_a ? M : K), "gemm", "lda = ", lda, " is smaller than the row length of A (", trans_a ? M : K, ")");
  check(ldb >= (trans_b ? K : N), "gemm", "ldb = ", ldb, " is smaller than the row length of B (", trans_b ? K : N, ")");
  own_gemm<T>(trans_a, trans_b, M, N, K, T(1), A, lda, B, ldb, T(0), C, ldc, 0, true, true);
}

template <class T>
void gemm(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K, T alpha, const T* A,
          std::size_t lda, const T* B, std::size_t ldb, T beta, T* C, std::size_t ldc) {
  const double work = static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K);
  if (!parallel::deterministic() && work > static_cast<double>(kGemmInlineWork)) {
    // Benchmark-only variant (parallel::set_deterministic(false)): one whole product on
    // OpenBLAS's own threads and CPU-specific kernels, whose bits may change with the thread count
    // and the CPU: what the determinism guarantee is measured against (examples/bench_determinism).
    blas_threads_off();
    openblas_set_num_threads(parallel::get_num_threads());
    blas_call<T>(trans_a, trans_b, as_blasint(M, "M"), as_blasint(N, "N"), as_blasint(K, "K"), alpha, A,
                 as_blasint(lda, "lda"), B, as_blasint(ldb, "ldb"), beta, C, as_blasint(ldc, "ldc"));
    openblas_set_num_threads(1);
    return;
  }
  gemm_batched<T>(1, trans_a, trans_b, M, N, K, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0);
}

template <class T>
void gemm_batch_tree(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K, const T* A,
                     std::size_t lda, const T* B, std::size_t ldb, T* C, std::size_t ldc, std::size_t chunk_k) {
  check(chunk_k > 0, "gemm_batch_tree", "chunk_k must be positive");
  if (M == 0 || N == 0) return;
  if (K == 0) {
    gemm_batched<T>(1, trans_a, trans_b, M, N, K, T(1), A, lda, 0, B, ldb, 0, T(0), C, ldc, 0);
    return;
  }
  check(ldc >= N, "gemm", "ldc = ", ldc, " is smaller than N = ", N);
  check(lda >= std::max<std::size_t>(1, trans_a ? M : K), "gemm", "lda = ", lda,
        " is smaller than the row length of A (", trans_a ? M : K, ")");
  check(ldb >= std::max<std::size_t>(1, trans_b ? K : N), "gemm", "ldb = ", ldb,
        " is smaller than the row length of B (", trans_b ? K : N, ")");
  const std::size_t chunks = ceil_div(K, chunk_k);
  const auto threads = static_cast<std::size_t>(parallel::get_num_threads());
  const GemmKernel<T>& kern = kernel_for<T>(active(), M, N);
  const double work = static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K);
  if (threads > 1 && chunks >= 2 && work > static_cast<double>(kGemmInlineWork) &&
      task_grid(kern.mr, kern.nr, M, N, 2 * threads).tasks() < 2 * threads) {
    // Too few blocks of C to share out (a weight gradient with few outputs, say 32 x 9): the chunks
    // are the tasks instead. Each chunk's partial is its own chain from +0 over its k (the
    // product of that chunk alone, one task each), and the partials are added by the same tree:
    // the same additions as below.
    std::vector<T> partial(chunks * M * N);
    parallel::parallel_for(chunks, 1, [&](std::size_t c0, std::size_t c1) {
      for (std::size_t c = c0; c < c1; ++c) {
        const std::size_t k0 = c * chunk_k, kc = std::min(chunk_k, K - k0);
        own_gemm<T>(trans_a, trans_b, M, N, kc, T(1), A + (trans_a ? k0 * lda : k0), lda, B + (trans_b ? k0 : k0 * ldb),
                    ldb, T(0), partial.data() + c * M * N, N, 0, true);
      }
    }, 0);  // grain 0: every chunk is a task (the default grain counts elements, not chunks)
    const std::vector<T> root = tree_of_partials(partial.data(), chunks, M * N);
    for (std::size_t i = 0; i < M; ++i) std::copy(root.data() + i * N, root.data() + (i + 1) * N, C + i * ldc);
    return;
  }
  own_gemm<T>(trans_a, trans_b, M, N, K, T(1), A, lda, B, ldb, T(0), C, ldc, chunk_k);
}

template void gemm_batch_tree<float>(bool, bool, std::size_t, std::size_t, std::size_t, const float*, std::size_t,
                                     const float*, std::size_t, float*, std::size_t, std::size_t);
template void gemm_batch_tree<double>(bool, bool, std::size_t, std::size_t, std::size_t, const double*, std::size_t,
                                      const double*, std::size_t, double*, std::size_t, std::size_t);
template std::size_t gemm_padded_work<float>(std::size_t, std::size_t);
template std::size_t gemm_padded_work<double>(std::size_t, std::size_t);
template void gemm_gathered_serial<float>(bool, std::size_t, std::size_t, std::size_t, const float*, const std::size_t*,
                                          const std::size_t*, const float*, std::size_t, float, float*, std::size_t, bool);
template void gemm_gathered_serial<double>(bool, std::size_t, std::size_t, std::size_t, const double*,
                                           const std::size_t*, const std::size_t*, const double*, std::size_t, double,
                                           double*, std::size_t, bool);
template std::size_t gemm_work<float>(std::size_t, std::size_t, std::size_t, std::size_t);
template std::size_t gemm_work<double>(std::size_t, std::size_t, std::size_t, std::size_t);
template std::size_t gemm_lanes<float>();
template std::size_t gemm_lanes<double>();
template ConvForwardPath conv_forward_path<float>(const ConvGeometry&, std::size_t, std::size_t);
template ConvForwardPath conv_forward_path<double>(const ConvGeometry&, std::size_t, std::size_t);
template void gemm_serial_resume<float>(bool, bool, std::size_t, std::size_t, std::size_t, const float*, std::size_t,
                                        const float*, std::size_t, float*, std::size_t);
template void gemm_serial_resume<double>(bool, bool, std::size_t, std::size_t, std::size_t, const double*, std::size_t,
                                         const double*, std::size_t, double*, std::size_t);
template void gemm_serial<float>(bool, bool, std::size_t, std::size_t, std::size_t, float, const float*, std::size_t,
                                 const float*, std::size_t, float, float*, std::size_t);
template void gemm_serial<double>(bool, bool, std::size_t, std::size_t, std::size_t, double, const double*, std::size_t,
                                  const double*, std::size_t, double, double*, std::size_t);
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
