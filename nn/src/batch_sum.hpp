#pragma once
// Sums and means of losses over the batch by the batch tree (sorix/parallel/batch_tree.hpp), the
// one definition that gives the same bits in one process and at any number of ranks: MSE, L1,
// smooth L1, Huber, BCE (and with logits), KL divergence and NLL reduce through these.
#include <cstdint>

#include "sorix/core/tensor.hpp"

namespace sorix::nn::batch {

/// The sum of l's elements over the batch: l's first dim is the rows; each row's elements are
/// added in order from +0, the rows' sums combined by the batch tree. Under a batch shard (one
/// rank of nn::DistributedDataParallel) l holds the rank's rows and the result is the whole
/// batch's sum, the same bits on every rank and as one process. A 0-dim l is returned as is.
/// Differentiable: the gradient is g expanded to l's shape (as sum's). Sequential (a loss's
/// values are few next to the model's work).
Tensor batch_tree_sum(const Tensor& l);

/// The rows of the whole batch when l's first dim holds this rank's rows (the shard's global rows
/// under a batch shard, else l.size(0); 1 for a 0-dim l).
std::int64_t batch_rows(const Tensor& l);

/// batch_tree_sum(l) divided by the whole batch's element count (NaN when there is none, as mean).
Tensor batch_tree_mean(const Tensor& l);

}  // namespace sorix::nn::batch
