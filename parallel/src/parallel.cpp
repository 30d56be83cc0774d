// The library-owned task arena and thread-count control.
#include "sorix/parallel/parallel.hpp"

#include <tbb/global_control.h>
#include <tbb/task_arena.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

#include "tbb_loops.hpp"

// ThreadSanitizer builds (make test-tsan): Debian's libtbb is not instrumented, so TSan cannot see
// how TBB hands a task to a worker or how the caller learns that every task is done. TBB's inline
// loop code is compiled, uninstrumented too, in tbb_loops.cpp alone; the edges TBB guarantees are
// stated here with annotations, inside the callbacks the loops run.
#if defined(__SANITIZE_THREAD__)
#define SORIX_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SORIX_TSAN 1
#endif
#endif
#ifdef SORIX_TSAN
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
#ifdef SORIX_TSAN
    __tsan_release(p);
#endif
  }
  static void annotate_acquire([[maybe_unused]] void* p) {
#ifdef SORIX_TSAN
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
  tbb_for(
      *arena, num_chunks,
      [](void* ctx, std::size_t begin, std::size_t end) {
        Job* j = static_cast<Job*>(ctx);
        TsanEdges::Task task(j->edges);
        for (std::size_t c = begin; c != end; ++c) (*j->body)(c);
      },
      &job);
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
  struct Job {
    TsanEdges edges;
    const std::function<T(std::size_t, std::size_t)>* reduce;
    const std::function<T(T, T)>* combine;
  } job{{}, &reduce, &combine};
  job.edges.before_spawn();
  // After the tasks, also when one threw: TBB waits for every task before it rethrows, and the
  // caller then destroys what the tasks read.
  const TsanEdges::Join join(job.edges);
  return tbb_reduce<T>(
      *arena, n, grain, identity,
      [](void* ctx, std::size_t begin, std::size_t end, T acc) {
        Job* j = static_cast<Job*>(ctx);
        TsanEdges::Task task(j->edges);
        return (*j->combine)(acc, (*j->reduce)(begin, end));
      },
      [](void* ctx, T a, T b) {
        Job* j = static_cast<Job*>(ctx);
        TsanEdges::Task task(j->edges);  // joins run on workers too
        return (*j->combine)(a, b);
      },
      &job);
}
template float scheduler_reduce<float>(std::size_t, std::size_t, float, const std::function<float(std::size_t, std::size_t)>&,
                                       const std::function<float(float, float)>&);
template double scheduler_reduce<double>(std::size_t, std::size_t, double,
                                         const std::function<double(std::size_t, std::size_t)>&,
                                         const std::function<double(double, double)>&);
}  // namespace detail

}  // namespace sorix::parallel
