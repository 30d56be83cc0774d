// data::DistributedSampler (distributed_sampler.hpp).
#include "sorix/nn/data/distributed_sampler.hpp"

#include <algorithm>
#include <cstring>

#include "sorix/core/error.hpp"
#include "sorix/core/generator.hpp"
#include "sorix/core/random.hpp"
#include "sorix/nn/distributed/data_parallel.hpp"
#include "sorix/nn/distributed/process_group.hpp"

namespace sorix::data {

DistributedSampler::DistributedSampler(std::int64_t dataset_size, DistributedSamplerOptions options, int rank,
                                       int world_size)
    : size_(dataset_size), options_(options),
      rank_(rank >= 0 ? rank : distributed::get_rank()),
      world_(world_size >= 1 ? world_size : distributed::get_world_size()) {
  check(dataset_size >= 0, "DistributedSampler", "dataset size must be >= 0, got ", dataset_size);
  check(options.batch_size() >= 1, "DistributedSampler", "batch_size must be >= 1, got ", options.batch_size());
  check(rank_ >= 0 && rank_ < world_, "DistributedSampler", "rank ", rank_, " is not in [0, ", world_, ")");
  set_epoch(0);
}

std::int64_t DistributedSampler::batches_per_epoch() const {
  const std::int64_t b = options_.batch_size();
  return options_.drop_last() ? size_ / b : (size_ + b - 1) / b;
}

void DistributedSampler::set_epoch(std::int64_t epoch) {
  check(epoch >= 0, "DistributedSampler::set_epoch", "epoch must be >= 0, got ", epoch);
  epoch_ = epoch;
  next_batch_ = 0;
  if (options_.shuffle()) {
    // DataLoader's order: epoch e is the (e + 1)-th randperm of Generator(seed). Each randperm of
    // size_ takes the same number of counters, so epoch e starts at e times that offset.
    Generator g(options_.seed());
    if (epoch > 0) {
      Generator probe(options_.seed());
      (void)randperm(size_, Dtype::Int64, &probe);
      g.set_state(Generator::State{options_.seed(), probe.offset() * static_cast<std::uint64_t>(epoch)});
    }
    order_ = randperm(size_, Dtype::Int64, &g);
  } else {
    order_ = arange(0, static_cast<double>(size_), 1, Dtype::Int64);
  }
}

std::pair<std::int64_t, std::int64_t> DistributedSampler::rows_of(std::int64_t batch) const {
  check(batch >= 0 && batch < batches_per_epoch(), "DistributedSampler", "batch ", batch, " is not in [0, ",
        batches_per_epoch(), ")");
  const std::int64_t b0 = batch * options_.batch_size(), rows = std::min(options_.batch_size(), size_ - b0);
  return nn::DistributedDataParallel::shard_rows(rows, rank_, world_);
}

std::optional<Tensor> DistributedSampler::next() {
  if (next_batch_ >= batches_per_epoch()) return std::nullopt;
  const auto [r0, r1] = rows_of(next_batch_);
  const std::int64_t first = next_batch_ * options_.batch_size() + r0;
  Tensor out = empty({r1 - r0}, Dtype::Int64);
  if (r1 > r0) {  // a rank without rows gets an empty tensor (no data pointer to copy into)
    std::memcpy(out.data_ptr<std::int64_t>(), order_.data_ptr<std::int64_t>() + first,
                static_cast<std::size_t>(r1 - r0) * sizeof(std::int64_t));
  }
  ++next_batch_;
  return out;
}

StateDict DistributedSampler::state_dict() const {
  StateDict s;
  Tensor e = empty({2}, Dtype::Int64);
  e.data_ptr<std::int64_t>()[0] = epoch_;
  e.data_ptr<std::int64_t>()[1] = next_batch_;
  s.insert("epoch_and_batch", e);
  return s;
}

void DistributedSampler::load_state_dict(const StateDict& state) {
  const Tensor& e = state.at("epoch_and_batch");
  check(e.dtype() == Dtype::Int64 && e.numel() == 2, "DistributedSampler::load_state_dict",
        "expected 'epoch_and_batch' int64 [2], got ", dtype_name(e.dtype()), " ", e.shape());
  const std::int64_t epoch = e.contiguous().data_ptr<std::int64_t>()[0], batch = e.contiguous().data_ptr<std::int64_t>()[1];
  check(batch >= 0 && batch <= batches_per_epoch(), "DistributedSampler::load_state_dict", "batch ", batch,
        " is not in [0, ", batches_per_epoch(), "]");
  set_epoch(epoch);
  next_batch_ = batch;
}

}  // namespace sorix::data
