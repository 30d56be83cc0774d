#pragma once
// The one definition of a reduction over the batch, the same for one process and for any number
// of ranks (docs/determinism.md, docs/distributed.md).
//
// Every sum over the rows of a batch — Linear's weight and bias gradients, BatchNorm's statistics
// and their gradients, CrossEntropyLoss's mean — cuts the batch into micro-chunks of kBatchChunk
// rows (a constant; the last chunk may be short). Each chunk's partial is one add (or fma) chain
// over its rows in order from +0; the batch result is the pairwise tree over chunk indices: node
// (l, j) covers chunks [j 2^l, (j + 1) 2^l) of the n chunks, and is left + right (or its left
// child alone when the right one is empty). A process holding a whole subtree (any tree node)
// computes that node from its own rows alone, with the chunk indices counted from its first row:
// this is how data-parallel ranks reproduce the single-process bits.
//
// Threading: these are plain descriptions; the kernels that follow them parallelise over outputs
// (columns, channels, tiles), never over chunks of one output.
#include <algorithm>
#include <cstddef>
#include <utility>
#include <vector>

namespace sorix::parallel {

/// Rows per micro-chunk of every reduction over the batch.
inline constexpr std::size_t kBatchChunk = 32;

/// Number of micro-chunks of a batch of `rows` rows.
constexpr std::size_t batch_chunks(std::size_t rows) { return (rows + kBatchChunk - 1) / kBatchChunk; }

/// A range of chunk indices [begin, end) that is one node of the batch tree.
struct ChunkRange {
  std::size_t begin = 0, end = 0;
  friend bool operator==(const ChunkRange&, const ChunkRange&) = default;
};

/// The canonical split of n chunks into `parts` tree nodes, in chunk order: starting from the
/// root, the node with the most chunks (the leftmost of equals) is split into its two children
/// until there are `parts` nodes. A function of (n, parts) alone. With more parts than chunks
/// (a short last batch), every chunk is a part and the remaining parts are empty ({n, n}: a rank
/// with no rows; its values are never used). Throws std::invalid_argument when parts is 0.
std::vector<ChunkRange> split_batch_tree(std::size_t n, std::size_t parts);

/// Combines the values of tree nodes that partition [0, n) (split_batch_tree's, in chunk order;
/// empty ranges are skipped)
/// into the root, in the tree's order: combine(left, right) is called for every internal node
/// above the given ones, left to right, bottom up within each subtree. `node_value(i)` gives
/// node i's value; the result is what the single-process tree gives when every node holds its
/// subtree's value. T is any value type; Combine is T(T, T).
template <class T, class Value, class Combine>
T combine_batch_tree(std::size_t n, const std::vector<ChunkRange>& nodes, Value&& node_value, Combine&& combine);

/// One rank's part of a batch: rows [first_row, first_row + local rows) of a global batch of
/// global_rows rows. Set for a training step by nn::DistributedDataParallel (BatchShardGuard);
/// the batch reductions that must see the whole batch (CrossEntropyLoss's mean, SyncBatchNorm)
/// call reducer->finish on their local tree nodes, and Dropout indexes its stream by global row.
class BatchReducer {
 public:
  virtual ~BatchReducer() = default;
  /// values[0, count) hold this rank's tree node of `count` independent batch sums; on return they
  /// hold the roots over the whole batch (every rank the same bits). Collective: every rank calls
  /// it in the same order with the same count.
  virtual void finish(float* values, std::size_t count) = 0;
  virtual void finish(double* values, std::size_t count) = 0;
};

struct BatchShard {
  std::size_t first_row = 0;
  std::size_t global_rows = 0;
  BatchReducer* reducer = nullptr;
};

/// This thread's batch shard, or nullptr when the batch is whole (the single-process case).
const BatchShard* batch_shard();

/// Sets this thread's batch shard (nullptr: none) and returns the previous one. The shard must
/// outlive its use (DistributedDataParallel sets its own from forward until its gradients are reduced).
const BatchShard* set_batch_shard(const BatchShard* shard);

/// RAII: sets this thread's batch shard while it lives (then restores the previous one).
class BatchShardGuard {
 public:
  explicit BatchShardGuard(const BatchShard* shard);
  ~BatchShardGuard();
  BatchShardGuard(const BatchShardGuard&) = delete;
  BatchShardGuard& operator=(const BatchShardGuard&) = delete;

 private:
  const BatchShard* previous_;
};

// ---- implementation of combine_batch_tree ----
namespace detail {
template <class T, class Value, class Combine>
T combine_node(std::size_t level, std::size_t begin, std::size_t n, const std::vector<ChunkRange>& nodes,
               Value& node_value, Combine& combine) {
  const std::size_t end = std::min(n, begin + (std::size_t{1} << level));
  for (std::size_t i = 0; i < nodes.size(); ++i)
    if (nodes[i].begin == begin && nodes[i].end == end && (begin < end || n == 0)) return node_value(i);
  // Not a given node: it is left + right (a node whose right child is empty is its left child).
  const std::size_t mid = begin + (std::size_t{1} << (level - 1));
  T left = combine_node<T>(level - 1, begin, n, nodes, node_value, combine);
  if (mid >= end) return left;
  T right = combine_node<T>(level - 1, mid, n, nodes, node_value, combine);
  return combine(std::move(left), std::move(right));
}
std::size_t tree_levels(std::size_t n);
}  // namespace detail

template <class T, class Value, class Combine>
T combine_batch_tree(std::size_t n, const std::vector<ChunkRange>& nodes, Value&& node_value, Combine&& combine) {
  return detail::combine_node<T>(detail::tree_levels(n), 0, n, nodes, node_value, combine);
}

}  // namespace sorix::parallel
