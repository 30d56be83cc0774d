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

/// An indexable dataset. get() is called from the thread iterating a DataLoader (never
/// concurrently by the library), so an implementation need not be thread-safe.
class Dataset {
 public:
  virtual ~Dataset() = default;
  /// Number of examples.
  virtual std::int64_t size() const = 0;
  /// Example `index` in [0, size()); out of range throws std::out_of_range.
  virtual Example get(std::int64_t index) const = 0;
};

/// Examples are the rows (first-dimension slices) of two tensors: data [N, ...] and targets
/// [N, ...] of any dtypes. DataLoader gathers TensorDataset batches with a parallel row copy
/// (its fast path) instead of calling get() per example.
class TensorDataset : public Dataset {
 public:
  /// Both defined, at least 1-D, with the same first dimension (std::invalid_argument naming both
  /// shapes otherwise). The tensors are shared, not copied; they should not change while loaders
  /// read them.
  TensorDataset(Tensor data, Tensor targets);

  std::int64_t size() const override;
  /// Copies of row `index`: data[index] (shape data.shape()[1:]) and targets[index].
  Example get(std::int64_t index) const override;

  const Tensor& data() const { return data_; }
  const Tensor& targets() const { return targets_; }

 private:
  Tensor data_;
  Tensor targets_;
};

}  // namespace sorix::data
