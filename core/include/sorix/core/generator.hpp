#pragma once
// Counter-based random number generation (Philox4x32-10).
//
// A Generator is (seed, offset). The 64-bit seed is the Philox key; the offset counts the 128-bit
// counters already used. Each random op reserves, on the calling thread when it is called, the
// counters its elements need (Generator::reserve) and advances the offset. Element i of that op
// is then a pure function of (seed, base counter, i): the op's fixed-size chunks (never derived
// from the thread count) each regenerate their own part of the stream from those three numbers,
// with no locks, no shared state and no thread ids. So every random result is bit-identical for
// any thread count, and set_state() replays a stream exactly.
#include <atomic>
#include <cstdint>

namespace sorix {

class Generator {
 public:
  static constexpr std::uint64_t kDefaultSeed = 67280421310721ULL;  // PyTorch's default seed

  struct State {
    std::uint64_t seed = kDefaultSeed;
    std::uint64_t offset = 0;
    bool operator==(const State&) const = default;
  };

  explicit Generator(std::uint64_t seed = kDefaultSeed) : seed_(seed), offset_(0) {}
  Generator(const Generator& other) : seed_(other.seed_), offset_(other.offset_.load()) {}
  Generator& operator=(const Generator& other) {
    seed_ = other.seed_;
    offset_.store(other.offset_.load());
    return *this;
  }

  /// Re-seeds and restarts the stream at offset 0.
  void manual_seed(std::uint64_t seed) {
    seed_ = seed;
    offset_.store(0);
  }
  std::uint64_t seed() const { return seed_; }
  std::uint64_t offset() const { return offset_.load(); }
  State get_state() const { return State{seed_, offset_.load()}; }
  void set_state(const State& s) {
    seed_ = s.seed;
    offset_.store(s.offset);
  }
  /// Reserves `counters` consecutive 128-bit counters and returns the first (atomic).
  std::uint64_t reserve(std::uint64_t counters) { return offset_.fetch_add(counters); }

 private:
  std::uint64_t seed_;
  std::atomic<std::uint64_t> offset_;
};

/// The generator random ops use when none is given.
Generator& default_generator();
/// Seeds the default generator (offset back to 0), as torch::manual_seed.
void manual_seed(std::uint64_t seed);

}  // namespace sorix
