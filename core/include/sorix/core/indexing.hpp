#pragma once
// Index lists for Tensor::index and Tensor::index_put_, as libtorch's torch::indexing:
//
//   using namespace sorix::indexing;
//   t.index({Slice(1, 3), 0, None, Ellipsis});   // t[1:3, 0, None, ...] in Python
//   t.index({mask});                             // a bool mask (x.gt(0)) picks where it is true
//   t.index_put_({Slice(), idx}, 0.0);           // t[:, idx] = 0
//
// An integer picks one element along its dim (the dim goes; negative counts from the end), a
// Slice keeps a range (step >= 1), None inserts a dim of size 1, Ellipsis stands for as many ':'
// as the other indices leave, true/false insert a dim of size 1/0. These are basic indices: the
// result is a view. An int64 tensor picks positions along its dim (negative counts from the
// end); a bool tensor (or a uint8 one, as PyTorch 1.13 still takes) is a mask: it picks the
// positions where it is true across as many dims as it has (advanced indices: the result is a
// copy, with gradients). Other dtypes throw, as PyTorch. Several tensor indices broadcast together; their result dims go where
// the first of them stood when they are adjacent, else first (NumPy's rule).
#include <cstdint>
#include <optional>

namespace sorix {
class Tensor;
}

namespace sorix::indexing {

/// Inserts a new dim of size 1; also "no bound" in Slice(None, 3).
inline constexpr std::nullopt_t None = std::nullopt;

struct EllipsisIndexType {};
inline constexpr EllipsisIndexType Ellipsis{};

/// Python's start:stop:step; a missing bound (None) means the whole range in that direction.
/// A step < 1 is refused (negative steps are not views in PyTorch either).
class Slice {
 public:
  Slice(std::optional<std::int64_t> start = std::nullopt, std::optional<std::int64_t> stop = std::nullopt,
        std::optional<std::int64_t> step = std::nullopt)
      : start_(start), stop_(stop), step_(step.value_or(1)) {}
  std::optional<std::int64_t> start() const { return start_; }
  std::optional<std::int64_t> stop() const { return stop_; }
  std::int64_t step() const { return step_; }

 private:
  std::optional<std::int64_t> start_, stop_;
  std::int64_t step_;
};

}  // namespace sorix::indexing
