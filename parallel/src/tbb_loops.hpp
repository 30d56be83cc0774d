#pragma once
// Internal (parallel/src only): the two TBB loops sorix runs, behind plain function pointers.
// tbb_loops.cpp is the only file that instantiates oneTBB's inline loop code; ThreadSanitizer
// builds compile it uninstrumented, like libtbb itself (parallel/CMakeLists.txt), and it holds no
// standard-library object whose out-of-line inline functions could stand in for instrumented
// copies elsewhere. The happens-before edges TBB guarantees are annotated by the callers
// (parallel.cpp), inside the callbacks, which stay instrumented.
#include <tbb/task_arena.h>

#include <cstddef>

namespace sorix::parallel::detail {

/// range(ctx, begin, end) over ranges of [0, n) (grain 1, the auto partitioner), inside arena.
void tbb_for(tbb::task_arena& arena, std::size_t n, void (*range)(void*, std::size_t, std::size_t),
             void* ctx);

/// tbb::parallel_reduce over [0, n) with grain `grain` inside arena: acc = range(ctx, begin, end,
/// acc) per range, partial results joined by join(ctx, a, b); float and double.
template <class T>
T tbb_reduce(tbb::task_arena& arena, std::size_t n, std::size_t grain, T identity,
             T (*range)(void*, std::size_t, std::size_t, T), T (*join)(void*, T, T), void* ctx);

}  // namespace sorix::parallel::detail
