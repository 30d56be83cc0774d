// The batch tree's split among ranks and this thread's batch shard (batch_tree.hpp).
#include "sorix/parallel/batch_tree.hpp"

#include <algorithm>
#include <sstream>
#include <stdexcept>

namespace sorix::parallel {

namespace detail {
// The root's level: the smallest l with 2^l >= n (0 for n <= 1).
std::size_t tree_levels(std::size_t n) {
  std::size_t l = 0;
  while ((std::size_t{1} << l) < n) ++l;
  return l;
}
}  // namespace detail

namespace {
struct Node {
  std::size_t level, begin, end;
};

// A node whose right child is empty is its left child: step down to the level where both exist.
Node normalise(Node x) {
  while (x.level > 0 && x.begin + (std::size_t{1} << (x.level - 1)) >= x.end) --x.level;
  return x;
}
}  // namespace

std::vector<ChunkRange> split_batch_tree(std::size_t n, std::size_t parts) {
  if (parts == 0) {
    std::ostringstream os;
    os << "split_batch_tree: cannot split a batch of " << n << " chunks of " << kBatchChunk << " rows into 0 parts";
    throw std::invalid_argument(os.str());
  }
  if (n == 0) return std::vector<ChunkRange>(parts, ChunkRange{0, 0});
  std::vector<Node> nodes{normalise(Node{detail::tree_levels(n), 0, n})};
  while (nodes.size() < std::min(parts, n)) {
    std::size_t best = 0;
    for (std::size_t i = 1; i < nodes.size(); ++i)
      if (nodes[i].end - nodes[i].begin > nodes[best].end - nodes[best].begin) best = i;
    const Node x = nodes[best];
    const std::size_t mid = x.begin + (std::size_t{1} << (x.level - 1));
    nodes[best] = normalise(Node{x.level - 1, x.begin, mid});
    nodes.insert(nodes.begin() + static_cast<std::ptrdiff_t>(best) + 1, normalise(Node{x.level - 1, mid, x.end}));
  }
  std::vector<ChunkRange> out;
  out.reserve(nodes.size());
  for (const Node& x : nodes) out.push_back({x.begin, x.end});
  out.resize(parts, ChunkRange{n, n});  // more parts than chunks: the last ones are empty
  return out;
}

namespace {
thread_local const BatchShard* tls_shard = nullptr;
}

const BatchShard* batch_shard() { return tls_shard; }

const BatchShard* set_batch_shard(const BatchShard* shard) {
  const BatchShard* previous = tls_shard;
  tls_shard = shard;
  return previous;
}

BatchShardGuard::BatchShardGuard(const BatchShard* shard) : previous_(tls_shard) { tls_shard = shard; }
BatchShardGuard::~BatchShardGuard() { tls_shard = previous_; }

}  // namespace sorix::parallel
