#pragma once
// Datasets: indexable collections of (data, target) examples, as torch::data::Dataset.
#include <cstdint>

#include "sorix/core/tensor.hpp"

namespace sorix::data {

/// One example. `target` may be undefined for datasets without targets.
struct Example {
  Tensor data;
  Tensor target;
};

/// A batch: the data and targets of several examples stacked along a new dim 0.
struct Batch {
  Tensor data;
  Tensor target;
};

/// An indexable dataset. get() and get_batch() are called from the thread iterating a DataLoader
/// (never concurrently by the library), so an implementation need not be thread-safe.
class Dataset {
 public:
  virtual ~Dataset() = default;
  /// Number of examples.
  virtual std::int64_t size() const = 0;
  /// Example `index` in [0, size()); out of range throws std::out_of_range.
  virtual Example get(std::int64_t index) const = 0;
  /// The examples indices[0..count) stacked along a new dim 0 (as torch::data's get_batch). The
  /// default calls get() per example, serially; every example must have the same data shape and
  /// dtype (and likewise targets, or none), else std::invalid_argument naming the two examples.
  /// Datasets that can gather faster override it (TensorDataset, ImageDataset: a parallel copy in
  /// fixed chunks of rows, so a batch is the same for any thread count).
  virtual Batch get_batch(const std::int64_t* indices, std::int64_t count) const;
  /// A hint that get_batch(indices, count) comes next: a dataset in memory may start moving those
  /// examples towards the cache (DataLoader calls it for the next batch after assembling one).
  /// It must not change anything observable; the default does nothing. Indices may be invalid.
  virtual void prefetch(const std::int64_t* indices, std::int64_t count) const {
    (void)indices;
    (void)count;
  }
};

/// Examples are the rows (first-dimension slices) of two tensors: data [N, ...] and targets
/// [N, ...] of any dtypes. Batches are gathered with a parallel row copy instead of get() per
/// example.
class TensorDataset : public Dataset {
 public:
  /// Both defined, at least 1-D, with the same first dimension (std::invalid_argument naming both
  /// shapes otherwise). The tensors are shared, not copied; they should not change while loaders
  /// read them.
  TensorDataset(Tensor data, Tensor targets);

  std::int64_t size() const override;
  /// Copies of row `index`: data[index] (shape data.shape()[1:]) and targets[index].
  Example get(std::int64_t index) const override;
  /// data[indices] and targets[indices]; an index out of range throws std::out_of_range.
  Batch get_batch(const std::int64_t* indices, std::int64_t count) const override;
  void prefetch(const std::int64_t* indices, std::int64_t count) const override;

  const Tensor& data() const { return data_; }
  const Tensor& targets() const { return targets_; }

 private:
  Tensor data_;
  Tensor targets_;
};

}  // namespace sorix::data
