#pragma once
// sorix::parallel — thread control and the two primitives every kernel uses.
//
// Threading: all parallel work runs inside one library-owned tbb::task_arena whose size is the
// thread count (set_num_threads, or the SORIX_NUM_THREADS environment variable; default: every
// core). Nested parallel calls run in the same arena, so the thread count is exact.
//
// Determinism: both primitives cut [0, n) into chunks of a fixed size chosen by the caller (a
// constant, never derived from the thread count). parallel_for gives each chunk to one task;
// parallel_reduce reduces each chunk on its own, then combines the per-chunk partials serially in
// chunk-index order. So a result never depends on the thread count or on which thread ran which
// chunk. Work of at most `grain` elements runs inline on the calling thread, chunk by chunk, with
// the same chunk boundaries, so it gives the same bits.
#include <cstddef>
#include <functional>
#include <type_traits>
#include <utility>
#include <vector>

namespace sorix::parallel {

/// Elements per chunk for elementwise kernels, reductions and random streams. A constant: the
/// determinism contract forbids deriving it from the thread count.
inline constexpr std::size_t kChunkSize = 16384;
/// Work of at most this many elements runs on the calling thread (no task is spawned).
inline constexpr std::size_t kInlineGrain = 32768;
/// Chunk and inline grain of the elementwise maps (unary, binary with broadcasting). An
/// elementwise value never depends on the chunking, so these may be finer than kChunkSize: a
/// [128, 128] activation (16384 values) is still shared by two threads.
inline constexpr std::size_t kElementwiseChunk = 4096;
inline constexpr std::size_t kElementwiseGrain = 8192;

/// The most threads the arena may have: a count beyond it is a mistake, not a machine (it would
/// start that many OS threads).
inline constexpr int kMaxThreads = 1024;
/// Sets the number of threads of the library's arena (1 <= n <= kMaxThreads; otherwise throws
/// std::invalid_argument naming the value).
void set_num_threads(int n);
/// The current thread count (SORIX_NUM_THREADS or every core unless set_num_threads was called).
int get_num_threads();
/// Number of hardware threads of this machine.
int hardware_threads();

/// The determinism switch, for measuring what the guarantee costs (examples/bench_determinism)
/// and nothing else. On (the default), reductions use fixed chunks combined in order and matrix
/// products use fixed output blocks. Off, floating-point parallel_reduce calls go to TBB's plain
/// parallel_reduce (auto partitioner: split points and combine order follow the scheduler) and
/// GEMM is one OpenBLAS call with its own threads: the fastest non-deterministic variants.
void set_deterministic(bool on);
bool deterministic();

namespace detail {
/// Runs body(c) for every chunk index c in [0, num_chunks) as tasks of the library arena.
/// Exceptions thrown by a body reach the caller.
void run_chunks(std::size_t num_chunks, const std::function<void(std::size_t)>& body);
/// TBB's plain parallel_reduce over [0, n) (non-deterministic; see set_deterministic).
template <class T>
T scheduler_reduce(std::size_t n, std::size_t grain, T identity, const std::function<T(std::size_t, std::size_t)>& reduce,
                   const std::function<T(T, T)>& combine);
}  // namespace detail

/// Calls body(begin, end) for the chunks [c*chunk, min(n, (c+1)*chunk)) of [0, n).
template <class Body>
void parallel_for(std::size_t n, std::size_t chunk, Body&& body, std::size_t grain = kInlineGrain) {
  if (n == 0) return;
  if (chunk == 0) chunk = 1;
  const std::size_t num_chunks = (n + chunk - 1) / chunk;
  auto run_chunk = [&](std::size_t c) {
    const std::size_t begin = c * chunk;
    const std::size_t end = begin + chunk < n ? begin + chunk : n;
    body(begin, end);
  };
  if (num_chunks == 1 || n <= grain || get_num_threads() == 1) {
    for (std::size_t c = 0; c < num_chunks; ++c) run_chunk(c);
    return;
  }
  detail::run_chunks(num_chunks, run_chunk);
}

/// Deterministic reduction: partial[c] = reduce_chunk(begin, end) for every fixed chunk, then
/// result = combine(...combine(combine(identity, partial[0]), partial[1])..., partial[last]).
template <class T, class ReduceChunk, class Combine>
T parallel_reduce(std::size_t n, std::size_t chunk, T identity, ReduceChunk&& reduce_chunk,
                  Combine&& combine, std::size_t grain = kInlineGrain) {
  if (n == 0) return identity;
  if (chunk == 0) chunk = 1;
  if constexpr (std::is_floating_point_v<T>) {
    if (!deterministic() && n > grain && get_num_threads() > 1) {
      return detail::scheduler_reduce<T>(n, chunk, identity, reduce_chunk, combine);
    }
  }
  const std::size_t num_chunks = (n + chunk - 1) / chunk;
  std::vector<T> partial(num_chunks, identity);
  parallel_for(
      n, chunk,
      [&](std::size_t begin, std::size_t end) { partial[begin / chunk] = reduce_chunk(begin, end); },
      grain);
  T acc = identity;
  for (std::size_t c = 0; c < num_chunks; ++c) acc = combine(acc, partial[c]);
  return acc;
}

}  // namespace sorix::parallel
