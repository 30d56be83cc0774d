#pragma once
// data::DistributedSampler: each rank's rows of the same global batches, for
// nn::DistributedDataParallel (as torch.utils.data.DistributedSampler, but by batch: rank r takes
// the contiguous rows of its batch-tree node of every global batch, DistributedDataParallel::
// shard_rows, so the training bits do not depend on the number of ranks).
//
// Order: DataLoader's with the same seed (shuffle: epoch e is the (e + 1)-th randperm of a
// Generator(seed); without shuffle 0, 1, 2, ...), the same on every rank whatever the world size,
// so a DataLoader run in one process and a DistributedSampler run at any world size see the same
// global batches.
// Global batch b is positions [b * batch_size, (b + 1) * batch_size) of it (the last one short,
// or dropped with drop_last). Resumable: state_dict() holds the epoch and the next batch.
// Threading: one sampler per rank, used from one thread.
#include <cstdint>
#include <optional>

#include "sorix/core/state_dict.hpp"
#include "sorix/core/tensor.hpp"

namespace sorix::data {

struct DistributedSamplerOptions {
  DistributedSamplerOptions(std::int64_t batch_size) : batch_size_(batch_size) {}  // NOLINT: as libtorch's options
  DistributedSamplerOptions& batch_size(std::int64_t v) { batch_size_ = v; return *this; }
  DistributedSamplerOptions& shuffle(bool v) { shuffle_ = v; return *this; }
  DistributedSamplerOptions& seed(std::uint64_t v) { seed_ = v; return *this; }
  DistributedSamplerOptions& drop_last(bool v) { drop_last_ = v; return *this; }
  std::int64_t batch_size() const { return batch_size_; }
  bool shuffle() const { return shuffle_; }
  std::uint64_t seed() const { return seed_; }
  bool drop_last() const { return drop_last_; }

 private:
  std::int64_t batch_size_;
  bool shuffle_ = true;
  std::uint64_t seed_ = 0;
  bool drop_last_ = false;
};

class DistributedSampler {
 public:
  /// rank and world_size: -1 takes the default process group's (0 and 1 without one).
  /// Throws std::invalid_argument for a batch size < 1 or a bad rank. A batch with fewer chunks
  /// of parallel::kBatchChunk rows than ranks leaves the last ranks without rows (they still take
  /// part in the step).
  DistributedSampler(std::int64_t dataset_size, DistributedSamplerOptions options, int rank = -1, int world_size = -1);

  /// Global batches per epoch.
  std::int64_t batches_per_epoch() const;
  /// Starts epoch e at its first batch.
  void set_epoch(std::int64_t epoch);
  std::int64_t epoch() const { return epoch_; }
  /// This rank's dataset indices (int64) of the next global batch of the epoch, or nothing at the
  /// epoch's end.
  std::optional<Tensor> next();
  /// Rows [first, last) of the global batch this rank's indices of batch b are.
  std::pair<std::int64_t, std::int64_t> rows_of(std::int64_t batch) const;

  StateDict state_dict() const;
  void load_state_dict(const StateDict& state);

  int rank() const { return rank_; }
  int world_size() const { return world_; }

 private:
  std::int64_t size_;
  DistributedSamplerOptions options_;
  int rank_, world_;
  std::int64_t epoch_ = 0, next_batch_ = 0;
  Tensor order_;  // the epoch's permutation
};

}  // namespace sorix::data
