#pragma once
// DataLoader: batches of a Dataset, optionally shuffled, as torch::data's loaders.
//
//   sorix::data::DataLoader loader(dataset, sorix::data::DataLoaderOptions().batch_size(128).shuffle(true).seed(1));
//   for (int epoch = 0; epoch < 10; ++epoch)
//     for (const sorix::data::Batch& b : loader) { ... b.data [B, ...], b.target [B, ...] ... }
//
// Epochs: every begin() (each range-for) starts a new epoch. With shuffle, that epoch's order is
// randperm(size) drawn from the loader's generator (the next block of its counter stream), so
// consecutive epochs differ and the sequence of epochs is reproducible from the seed.
//
// Determinism: the order depends only on the generator's (seed, offset), never on the thread
// count; batches are plain copies, so they are bit-identical for any thread count.
//
// Generator: .seed(s) gives the loader its own generator (seed s); .generator(&g) uses g (not
// owned; it must outlive the loader). With neither, shuffling draws from the default generator
// (sorix::manual_seed makes it reproducible), as PyTorch's RandomSampler does. Giving both is an
// error.
//
// Batches: Dataset::get_batch of the epoch's next batch_size indices (data and target of the
// examples stacked along a new dim 0, same dtype as the examples). The last batch is smaller
// unless drop_last. TensorDataset and ImageDataset gather a batch with a parallel row copy (fixed
// chunks of rows); a Dataset without its own get_batch is read with get() per example, serially.
//
// Resuming: state_dict() holds the generator state and the number of epochs started; restoring it
// with load_state_dict() (between epochs) makes the next epoch the same as it would have been.
#include <cstdint>
#include <iterator>
#include <memory>
#include <optional>
#include <type_traits>
#include <vector>

#include "sorix/core/generator.hpp"
#include "sorix/core/state_dict.hpp"
#include "sorix/nn/data/dataset.hpp"

namespace sorix::data {

struct DataLoaderOptions {
  DataLoaderOptions() = default;
  explicit DataLoaderOptions(std::int64_t batch_size) : batch_size_(batch_size) {}

  std::int64_t batch_size_ = 1;
  bool shuffle_ = false;
  bool drop_last_ = false;
  std::optional<std::uint64_t> seed_;
  Generator* generator_ = nullptr;

  /// > 0 (checked by DataLoader).
  DataLoaderOptions& batch_size(std::int64_t b) { batch_size_ = b; return *this; }
  DataLoaderOptions& shuffle(bool s = true) { shuffle_ = s; return *this; }
  DataLoaderOptions& drop_last(bool d = true) { drop_last_ = d; return *this; }
  DataLoaderOptions& seed(std::uint64_t s) { seed_ = s; return *this; }
  DataLoaderOptions& generator(Generator* g) { generator_ = g; return *this; }
};

class DataLoader {
 public:
  /// A named dataset (an lvalue) is referenced, not copied: it must outlive the loader. Throws
  /// std::invalid_argument for batch_size <= 0 or both seed and generator given.
  explicit DataLoader(const Dataset& dataset, DataLoaderOptions options = {});
  /// A dataset handed over as a temporary (DataLoader loader(TensorDataset(x, y), opts)) or a
  /// shared pointer is owned by the loader (as libtorch's loaders own theirs).
  explicit DataLoader(std::shared_ptr<const Dataset> dataset, DataLoaderOptions options = {});
  template <class D, class = std::enable_if_t<std::is_base_of_v<Dataset, std::decay_t<D>> &&
                                              !std::is_lvalue_reference_v<D>>>
  explicit DataLoader(D&& dataset, DataLoaderOptions options = {})
      : DataLoader(std::shared_ptr<const Dataset>(std::make_shared<std::decay_t<D>>(std::forward<D>(dataset))),
                   options) {}

  class Iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = Batch;
    using difference_type = std::ptrdiff_t;
    using pointer = const Batch*;
    using reference = const Batch&;

    Iterator() = default;
    const Batch& operator*() const { return batch_; }
    const Batch* operator->() const { return &batch_; }
    Iterator& operator++();
    bool operator==(const Iterator& o) const { return index_ == o.index_; }

   private:
    friend class DataLoader;
    Iterator(const DataLoader* loader, std::shared_ptr<const std::vector<std::int64_t>> order, std::int64_t index);
    void load();

    const DataLoader* loader_ = nullptr;
    std::shared_ptr<const std::vector<std::int64_t>> order_;  // this epoch's example order
    std::int64_t index_ = 0;                                  // batch index
    Batch batch_;
  };

  /// Starts a new epoch (draws its order when shuffling) and returns its first batch.
  Iterator begin();
  Iterator end() const;

  /// Batches per epoch.
  std::int64_t num_batches() const;
  std::int64_t epochs_started() const { return epoch_; }
  const DataLoaderOptions& options() const { return options_; }
  const Dataset& dataset() const { return *dataset_; }
  /// The generator shuffling draws from.
  Generator& generator() const { return *gen_; }

  /// Batch `b` of an epoch whose example order is `order` (also used by the iterator).
  Batch make_batch(const std::vector<std::int64_t>& order, std::int64_t b) const;

  /// "generator" (int64 [2]: seed, offset) and "epoch" (int64 scalar).
  StateDict state_dict() const;
  /// Validates then restores (std::invalid_argument on a mismatch, nothing changed).
  void load_state_dict(const StateDict& state);

 private:
  std::shared_ptr<const Dataset> owned_;  // set when the loader owns its dataset
  const Dataset* dataset_;
  DataLoaderOptions options_;
  std::unique_ptr<Generator> own_gen_;
  Generator* gen_ = nullptr;
  std::int64_t epoch_ = 0;
};

}  // namespace sorix::data
