// Parallel GEMM on the active capability's product kernel (gemm.hpp); OpenBLAS only for the
// unconstrained benchmark variant (parallel::set_deterministic(false)).
#include "autograd/src/gemm.hpp"

#include "core/src/kernels/table.hpp"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <new>
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
  auto padded = [&](const GemmKernel<T>& k) {
    return (M + k.mr - 1) / k.mr * k.mr * ((N + k.nr - 1) / k.nr * k.nr);
  };
  return padded(*narrow) < padded(*wide) ? *narrow : *wide;
}

// A per-thread packing buffer of at least n values (64-byte aligned), kept for the thread's next
// product (TBB's workers live as long as the arena): no allocation, and no page faults, per task.
template <class T>
T* thread_buffer(std::size_t n) {
  thread_local std::unique_ptr<T[], AlignedFree> buf;
  thread_local std::size_t capacity = 0;
  if (n > capacity) {
    buf = aligned_array<T>(n);
    capacity = n;
  }
  return buf.get();
}

/// Products with longer chains (alpha 1, beta 0) run in blocks of this many k (see own_gemm).
constexpr std::size_t kBlockK = 512;
/// Products with at least this many column groups pack each group inside its task.
constexpr std::size_t kMinStreamGroups = 4;

/// Columns of C per task: the B panels a task walks stay in the core's L2 (K * kTaskCols values).
constexpr std::size_t kTaskCols = 128;
/// The packed copy of B is at most this many bytes (64 MiB); wider products go in column slabs.
constexpr std::size_t kMaxPackedBytes = std::size_t{1} << 26;

// One product on the active capability's kernel (table.hpp): B packed into panels (in parallel),
// then tasks of one row panel against a kTaskCols-wide group of column panels. Slabs, tiles and
// tasks change no element's arithmetic, so none of them depends on anything but the shape.
template <class T>
void own_gemm(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K, T alpha, const T* A,
              std::size_t lda, const T* B, std::size_t ldb, T beta, T* C, std::size_t ldc) {
  const GemmKernel<T>& kern = kernel_for<T>(active(), M, N);
  const std::size_t mr = kern.mr, nr = kern.nr;
  // Values from one packed panel to the next: K rows of nr, plus one cache line so that the panels
  // do not all start on the same L1 set (with K a power of two they would).
  const std::size_t panel = nr * K + 64 / sizeof(T);
  const std::size_t group = std::max<std::size_t>(1, kTaskCols / nr);  // panels per task
  const std::size_t per_slab =
      std::max(nr * group, kMaxPackedBytes / sizeof(T) / std::max<std::size_t>(K, 1) / (nr * group) * (nr * group));
  const std::size_t slab = std::min(N, per_slab);
  const double work = static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K);
  const bool small = work <= static_cast<double>(kGemmInlineWork);
  const std::size_t all_groups = ceil_div(ceil_div(N, nr), group);
  if (!small && all_groups >= kMinStreamGroups) {
    // Wide products (a convolution's [C_out, C_in * taps] x [C_in * taps, images * positions]):
    // each task packs one group of columns into a buffer of its thread, while it is hot in L2,
    // and runs every row panel over it. Packing all of B first would write it to memory and read
    // it back, which costs more than the product when M is small.
    const std::size_t row_panels = ceil_div(M, mr);
    parallel::parallel_for(all_groups, 1, [&](std::size_t g0, std::size_t g1) {
      T* buf = thread_buffer<T>(group * panel);
      for (std::size_t g = g0; g < g1; ++g) {
        const std::size_t j0 = g * group * nr, n = std::min(group * nr, N - j0);
        const std::size_t col_panels = ceil_div(n, nr);
        if (trans_b) {
          for (std::size_t q = 0; q < col_panels; ++q)
            kern.pack(true, B + j0 * ldb, ldb, q * nr, std::min(nr, n - q * nr), K, buf + q * panel);
        } else {
          kern.pack_rows(B + j0, ldb, n, 0, K, buf, panel);
        }
        const GemmArgs<T> args{trans_a, M, n, K, alpha, A, lda, beta, C + j0, ldc, buf, panel};
        for (std::size_t t = 0; t < row_panels; ++t) kern.tiles(args, t, 0, col_panels);
      }
    });
    return;
  }
  if (!small && K > kBlockK && alpha == T(1) && beta == T(0)) {
    // Long chains (a convolution's weight gradient: K = images * positions): op(B) is packed
    // kBlockK rows at a time, so the panels every row panel walks stay in L2; each block continues
    // the chains from the partial sums the previous one stored in C (GemmArgs::accumulate), so
    // the bits are those of one unsplit chain per element.
    const std::size_t col_panels = ceil_div(N, nr), row_panels = ceil_div(M, mr);
    const std::size_t kpanel = nr * kBlockK + 64 / sizeof(T);
    auto packed = aligned_array<T>(col_panels * kpanel);
    const std::size_t groups = ceil_div(col_panels, group);
    for (std::size_t k0 = 0; k0 < K; k0 += kBlockK) {
      const std::size_t kb = std::min(kBlockK, K - k0);
      if (trans_b) {
        parallel::parallel_for(col_panels, 1, [&](std::size_t q0, std::size_t q1) {
          for (std::size_t q = q0; q < q1; ++q)
            kern.pack(true, B + k0, ldb, q * nr, std::min(nr, N - q * nr), kb, packed.get() + q * kpanel);
        });
      } else {
        parallel::parallel_for(kb, 32, [&](std::size_t r0, std::size_t r1) {
          kern.pack_rows(B + k0 * ldb, ldb, N, r0, r1, packed.get(), kpanel);
        });
      }
      GemmArgs<T> args{trans_a, M, N, kb, T(1), A + (trans_a ? k0 * lda : k0), lda, T(0), C, ldc, packed.get(), kpanel};
      args.accumulate = k0 > 0;
      parallel::parallel_for(row_panels * groups, 1, [&](std::size_t t0, std::size_t t1) {
        for (std::size_t task = t0; task < t1; ++task) {
          const std::size_t t = task % row_panels, g = task / row_panels;
          kern.tiles(args, t, g * group, std::min(col_panels, (g + 1) * group));
        }
      });
    }
    return;
  }
  auto packed = aligned_array<T>(ceil_div(slab, nr) * panel);
  for (std::size_t j0 = 0; j0 < N; j0 += slab) {
    const std::size_t n = std::min(slab, N - j0);
    const std::size_t col_panels = ceil_div(n, nr), row_panels = ceil_div(M, mr);
    const T* b = B + (trans_b ? j0 * ldb : j0);
    if (trans_b) {  // panel by panel: each reads nr rows of B
      parallel::parallel_for(
          col_panels, 1,
          [&](std::size_t q0, std::size_t q1) {
            for (std::size_t q = q0; q < q1; ++q)
              kern.pack(true, b, ldb, q * nr, std::min(nr, n - q * nr), K, packed.get() + q * panel);
          },
          small ? col_panels : 0);
    } else {  // row by row: each row of B is read once, in order, and dealt out to the panels
      constexpr std::size_t kRowsPerTask = 32;
      parallel::parallel_for(
          K, kRowsPerTask,
          [&](std::size_t k0, std::size_t k1) { kern.pack_rows(b, ldb, n, k0, k1, packed.get(), panel); },
          small ? K : 0);
    }
    const GemmArgs<T> args{trans_a, M, n, K, alpha, A, lda, beta, C + j0, ldc, packed.get(), panel};
    const std::size_t groups = ceil_div(col_panels, group);
    const std::size_t tasks = row_panels * groups;
    parallel::parallel_for(
        tasks, 1,
        [&](std::size_t t0, std::size_t t1) {
          for (std::size_t task = t0; task < t1; ++task) {
            const std::size_t t = task % row_panels, g = task / row_panels;
            kern.tiles(args, t, g * group, std::min(col_panels, (g + 1) * group));
          }
        },
        small ? tasks : 0);
  }
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
  // A batch's products run as tasks too; each product is split into its own tiles (own_gemm).
  const double work = static_cast<double>(batch) * static_cast<double>(M) * static_cast<double>(N) *
                      static_cast<double>(K);
  parallel::parallel_for(
      batch, 1,
      [&](std::size_t begin, std::size_t end) {
        for (std::size_t i = begin; i < end; ++i)
          own_gemm<T>(trans_a, trans_b, M, N, K, alpha, A + i * stride_a, lda, B + i * stride_b, ldb, beta,
                      C + i * stride_c, ldc);
      },
      work <= static_cast<double>(kGemmInlineWork) ? batch : 1);
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
