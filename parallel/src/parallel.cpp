// The library-owned task arena and thread-count control.
#include "sorix/parallel/parallel.hpp"

#include <tbb/blocked_range.h>
#include <tbb/global_control.h>
#include <tbb/parallel_for.h>
#include <tbb/parallel_reduce.h>
#include <tbb/task_arena.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

// ThreadSanitizer builds (make test-tsan): Debian's libtbb is not instrumented, so TSan cannot see
// how TBB hands a task to a worker or how the caller learns that every task is done. This file,
// the only one that instantiates TBB's inline header code (the partitioner's split tree, the task
// objects, the wait and task-group contexts on the caller's stack), is compiled without
// instrumentation in those builds (parallel/CMakeLists.txt), like libtbb itself: TSan would see
// only half of TBB's hand-offs otherwise, e.g. a worker's atomic release of a wait context on the
// caller's stack but not the caller's wait, and report the caller's later reuse of that stack.
// The edges TBB guarantees are stated instead with the annotations below (SORIX_TSAN_ANNOTATIONS).
#ifdef SORIX_TSAN_ANNOTATIONS
extern "C" void __tsan_acquire(void* addr);
extern "C" void __tsan_release(void* addr);
#endif

namespace sorix::parallel {
namespace {

// The two edges TBB guarantees, stated to ThreadSanitizer (no-ops otherwise): everything the caller
// did before a parallel call happens before every chunk (`start`), and every chunk happens before
// the call returns (`done`). Chunks get no edge among themselves, so a race between two chunks of
// one call is still reported.
struct TsanEdges {
  char start = 0, done = 0;
  void before_spawn() { annotate_release(&start); }
  void after_join() { annotate_acquire(&done); }
  /// Calls after_join when it goes out of scope, on the normal path and when a task threw.
  struct Join {
    TsanEdges& e;
    explicit Join(TsanEdges& edges) : e(edges) {}
    ~Join() { e.after_join(); }
    Join(const Join&) = delete;
    Join& operator=(const Join&) = delete;
  };
  static void annotate_release([[maybe_unused]] void* p) {
#ifdef SORIX_TSAN_ANNOTATIONS
    __tsan_release(p);
#endif
  }
  static void annotate_acquire([[maybe_unused]] void* p) {
#ifdef SORIX_TSAN_ANNOTATIONS
    __tsan_acquire(p);
#endif
  }
  // Held by a task while it runs chunks (the release also runs when a chunk throws).
  struct Task {
    TsanEdges& e;
    explicit Task(TsanEdges& edges) : e(edges) { annotate_acquire(&e.start); }
    ~Task() { annotate_release(&e.done); }
    Task(const Task&) = delete;
    Task& operator=(const Task&) = delete;
  };
};

int threads_from_environment() {
  const int fallback = hardware_threads();
  const char* env = std::getenv("SORIX_NUM_THREADS");
  if (env == nullptr || *env == '\0') return fallback;
  char* end = nullptr;
  const long n = std::strtol(env, &end, 10);
  if (end == env || *end != '\0' || n < 1 || n > kMaxThreads) {
    throw std::invalid_argument(std::string("SORIX_NUM_THREADS: expected an integer in [1, ") +
                                std::to_string(kMaxThreads) + "], got '" + env + "'");
  }
  return static_cast<int>(n);
}

struct ArenaState {
  std::mutex mutex;
  std::atomic<int> threads{0};  // 0 = not initialised yet
  std::shared_ptr<tbb::task_arena> arena;
  // TBB caps its worker pool at the core count unless told otherwise; without this an arena of
  // n > cores threads would silently run on fewer, and the thread count would not be exact.
  std::unique_ptr<tbb::global_control> allowed;
  int allowed_value = 0;
};

ArenaState& state() {
  static ArenaState s;
  return s;
}

// Creates the arena for n threads (caller holds the mutex).
void make_arena(ArenaState& s, int n) {
  const int allowed = n > hardware_threads() ? n : hardware_threads();
  if (allowed != s.allowed_value) {
    s.allowed.reset();  // one instance at a time: TBB applies the smallest of the live ones
    s.allowed = std::make_unique<tbb::global_control>(tbb::global_control::max_allowed_parallelism,
                                                      static_cast<std::size_t>(allowed));
    s.allowed_value = allowed;
  }
  s.arena = std::make_shared<tbb::task_arena>(n);
  s.threads.store(n, std::memory_order_release);
}

void ensure_initialised() {
  ArenaState& s = state();
  if (s.threads.load(std::memory_order_acquire) != 0) return;
  std::lock_guard<std::mutex> lock(s.mutex);
  if (s.threads.load(std::memory_order_relaxed) != 0) return;
  make_arena(s, threads_from_environment());
}

std::shared_ptr<tbb::task_arena> current_arena() {
  ensure_initialised();
  std::lock_guard<std::mutex> lock(state().mutex);
  return state().arena;
}

}  // namespace

int hardware_threads() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

void set_num_threads(int n) {
  if (n < 1 || n > kMaxThreads) {
    throw std::invalid_argument("set_num_threads: expected a thread count in [1, " + std::to_string(kMaxThreads) +
                                "], got " + std::to_string(n));
  }
  ArenaState& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  // A running parallel call keeps its own reference to the old arena; it finishes there.
  make_arena(s, n);
}

int get_num_threads() {
  ensure_initialised();
  return state().threads.load(std::memory_order_acquire);
}

namespace detail {
void run_chunks(std::size_t num_chunks, const std::function<void(std::size_t)>& body) {
  std::shared_ptr<tbb::task_arena> arena = current_arena();
  struct Job {
    TsanEdges edges;
    const std::function<void(std::size_t)>* body;
  } job{{}, &body};
  job.edges.before_spawn();
  // After the tasks, also when one threw: TBB waits for every task before it rethrows, and the
  // caller then destroys what the tasks read.
  const TsanEdges::Join join(job.edges);
  Job* const pjob = &job;
  arena->execute([&] {
    // A task runs a range of whole chunks, each with its own fixed boundaries, so neither which
    // thread runs a chunk nor how chunks are grouped into tasks changes a result. The auto
    // partitioner groups them (a few ranges per thread, split further only when a thread steals):
    // one chunk per task cost 8-15% on large sums at 2 threads (examples/bench_determinism).
    tbb::parallel_for(
        tbb::blocked_range<std::size_t>(0, num_chunks, 1),
        [pjob](const tbb::blocked_range<std::size_t>& r) {
          TsanEdges::Task task(pjob->edges);
          for (std::size_t c = r.begin(); c != r.end(); ++c) (*pjob->body)(c);
        },
        tbb::auto_partitioner());
  });
}
}  // namespace detail

namespace {
std::atomic<bool> g_deterministic{true};
}

void set_deterministic(bool on) { g_deterministic.store(on); }
bool deterministic() { return g_deterministic.load(); }

namespace detail {
template <class T>
T scheduler_reduce(std::size_t n, std::size_t grain, T identity, const std::function<T(std::size_t, std::size_t)>& reduce,
                   const std::function<T(T, T)>& combine) {
  std::shared_ptr<tbb::task_arena> arena = current_arena();
  T result = identity;
  struct Job {
    TsanEdges edges;
    const std::function<T(std::size_t, std::size_t)>* reduce;
    const std::function<T(T, T)>* combine;
  } job{{}, &reduce, &combine};
  job.edges.before_spawn();
  // After the tasks, also when one threw: TBB waits for every task before it rethrows, and the
  // caller then destroys what the tasks read.
  const TsanEdges::Join join(job.edges);
  Job* const pjob = &job;
  arena->execute([&] {
    result = tbb::parallel_reduce(
        tbb::blocked_range<std::size_t>(0, n, grain), identity,
        [pjob](const tbb::blocked_range<std::size_t>& r, T acc) {
          TsanEdges::Task task(pjob->edges);
          return (*pjob->combine)(acc, (*pjob->reduce)(r.begin(), r.end()));
        },
        [pjob](T a, T b) {
          TsanEdges::Task task(pjob->edges);  // joins run on workers too
          return (*pjob->combine)(a, b);
        },
        tbb::auto_partitioner());
  });
  return result;
}
template float scheduler_reduce<float>(std::size_t, std::size_t, float, const std::function<float(std::size_t, std::size_t)>&,
                                       const std::function<float(float, float)>&);
template double scheduler_reduce<double>(std::size_t, std::size_t, double,
                                         const std::function<double(std::size_t, std::size_t)>&,
                                         const std::function<double(double, double)>&);
}  // namespace detail

}  // namespace sorix::parallel
