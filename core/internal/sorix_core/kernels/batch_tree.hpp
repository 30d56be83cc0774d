#pragma once
// The batch tree (sorix/parallel/batch_tree.hpp) as loops: ChunkTree keeps the pairwise tree over
// chunk indices as a stack of partial nodes while chunk partials arrive in order (a binary
// counter: after chunk i, the stack holds the maximal aligned blocks of [0, i + 1), largest
// first), and folds it from the right at the end — the tree's root. batch_sum_rows is the sum over
// the rows of a [rows, cols] matrix by that definition (a bias gradient, a loss's total). Plain
// adds in a fixed order in baseline code: the same bits on every CPU and at any thread count.
#include <algorithm>
#include <bit>
#include <cstddef>
#include <vector>

#include "sorix_core/kernels/reduce.hpp"
#include "sorix/parallel/batch_tree.hpp"

namespace sorix::kernels {

/// The pairwise tree over chunk partials of `width` independent sums.
template <class T>
class ChunkTree {
 public:
  explicit ChunkTree(std::size_t width) : width_(width) {}

  /// Where to write the next chunk's partial (width values), then call push().
  T* next() {
    if (slots_.size() < (depth_ + 1) * width_) slots_.resize((depth_ + 1) * width_);
    return slots_.data() + depth_ * width_;
  }
  /// Adds the partial written at next() as chunk `count` and merges the completed pairs.
  void push() {
    ++depth_;
    ++count_;
    for (int m = std::countr_zero(count_); m > 0; --m) merge_top();
  }
  /// The root: the stack folded from the right (x1 + (x2 + (...))); +0 when no chunk came.
  void finish(T* out) const {
    if (depth_ == 0) {
      std::fill(out, out + width_, T(0));
      return;
    }
    const T* top = slots_.data() + (depth_ - 1) * width_;
    std::copy(top, top + width_, out);
    for (std::size_t s = depth_ - 1; s-- > 0;) {
      const T* left = slots_.data() + s * width_;
      for (std::size_t j = 0; j < width_; ++j) out[j] = left[j] + out[j];
    }
  }

 private:
  void merge_top() {
    T* left = slots_.data() + (depth_ - 2) * width_;
    const T* right = left + width_;
    for (std::size_t j = 0; j < width_; ++j) left[j] = left[j] + right[j];
    --depth_;
  }

  std::vector<T> slots_;
  std::size_t width_, depth_ = 0;
  std::size_t count_ = 0;
};

/// The tree's root over `chunks` partials of `width` sums each, laid out one after another in
/// chunk order (partials made in parallel, then combined here).
template <class T>
std::vector<T> tree_of_partials(const T* partials, std::size_t chunks, std::size_t width) {
  ChunkTree<T> tree(width);
  for (std::size_t c = 0; c < chunks; ++c) {
    std::copy(partials + c * width, partials + (c + 1) * width, tree.next());
    tree.push();
  }
  std::vector<T> root(width);
  tree.finish(root.data());
  return root;
}

/// out[c] = sum over the rows of x ([rows, cols], row-major) by the batch tree: each chunk of
/// kBatchChunk rows added in row order from +0, the chunks combined pairwise. Parallel over
/// column tiles only.
template <class T>
void batch_sum_rows(const T* x, T* out, std::size_t rows, std::size_t cols) {
  if (cols == 0) return;
  const std::size_t tile = 256;
  for_column_tiles(1, rows, cols, [&](std::size_t, std::size_t c0, std::size_t c1) {
    const std::size_t w = c1 - c0;
    ChunkTree<T> tree(w);
    for (std::size_t r0 = 0; r0 < rows; r0 += parallel::kBatchChunk) {
      const std::size_t r1 = std::min(rows, r0 + parallel::kBatchChunk);
      T* acc = tree.next();
      std::fill(acc, acc + w, T(0));
      for (std::size_t r = r0; r < r1; ++r) {
        const T* row = x + r * cols + c0;
        for (std::size_t j = 0; j < w; ++j) acc[j] += row[j];
      }
      tree.push();
    }
    tree.finish(out + c0);
  }, tile);
}

}  // namespace sorix::kernels
