// The TBB loops behind plain function pointers (tbb_loops.hpp): uninstrumented in ThreadSanitizer
// builds, like libtbb, so that TSan never sees half of a TBB hand-off (a worker's release of a wait
// context on the caller's stack without the caller's wait). Nothing here but the two loops.
#include "tbb_loops.hpp"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/parallel_reduce.h>

namespace sorix::parallel::detail {

void tbb_for(tbb::task_arena& arena, std::size_t n, void (*range)(void*, std::size_t, std::size_t), void* ctx) {
  arena.execute([&] {
    // A task runs a range of whole chunks, each with its own fixed boundaries, so neither which
    // thread runs a chunk nor how chunks are grouped into tasks changes a result. The auto
    // partitioner groups them (a few ranges per thread, split further only when a thread steals):
    // one chunk per task cost 8-15% on large sums at 2 threads (examples/bench_determinism).
    tbb::parallel_for(
        tbb::blocked_range<std::size_t>(0, n, 1),
        [range, ctx](const tbb::blocked_range<std::size_t>& r) { range(ctx, r.begin(), r.end()); },
        tbb::auto_partitioner());
  });
}

template <class T>
T tbb_reduce(tbb::task_arena& arena, std::size_t n, std::size_t grain, T identity,
             T (*range)(void*, std::size_t, std::size_t, T), T (*join)(void*, T, T), void* ctx) {
  T result = identity;
  arena.execute([&] {
    result = tbb::parallel_reduce(
        tbb::blocked_range<std::size_t>(0, n, grain), identity,
        [range, ctx](const tbb::blocked_range<std::size_t>& r, T acc) { return range(ctx, r.begin(), r.end(), acc); },
        [join, ctx](T a, T b) { return join(ctx, a, b); }, tbb::auto_partitioner());
  });
  return result;
}

template float tbb_reduce<float>(tbb::task_arena&, std::size_t, std::size_t, float,
                                 float (*)(void*, std::size_t, std::size_t, float), float (*)(void*, float, float),
                                 void*);
template double tbb_reduce<double>(tbb::task_arena&, std::size_t, std::size_t, double,
                                   double (*)(void*, std::size_t, std::size_t, double),
                                   double (*)(void*, double, double), void*);

}  // namespace sorix::parallel::detail
