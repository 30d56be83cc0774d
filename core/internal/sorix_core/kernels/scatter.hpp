#pragma once
// The one scatter-add of the library (index_add, the gradient of index_select; Embedding's
// gradient): rows of a source added into rows of a destination chosen by an index, each
// destination row summing its contributions in increasing source order, so that repeated indices
// give the same bits at any thread count (no atomics, no order that depends on the scheduler).
// Exact adds in a fixed order: the same on every CPU. Pointer code (the loop is the dispatch
// table's, index_kernels.hpp); the callers own the parallel loop over destination rows (and
// column blocks).
#include <cstddef>
#include <cstdint>
#include <vector>

#include "sorix_core/kernels/table.hpp"

namespace sorix::kernels {

/// For each destination row r in [0, R): the source rows k with index[k] == r, in increasing k
/// (a stable counting sort): order[begin[r] .. begin[r + 1]). Indices must be in [0, R).
struct RowOrder {
  std::vector<std::size_t> begin, order;

  RowOrder(const std::int64_t* index, std::size_t K, std::size_t R) : begin(R + 1, 0), order(K) {
    for (std::size_t k = 0; k < K; ++k) ++begin[static_cast<std::size_t>(index[k]) + 1];
    for (std::size_t r = 0; r < R; ++r) begin[r + 1] += begin[r];
    std::vector<std::size_t> next(begin.begin(), begin.end() - 1);
    for (std::size_t k = 0; k < K; ++k) order[next[static_cast<std::size_t>(index[k])]++] = k;
  }
};

/// Source [outer, K, inner], destination [outer, R, inner]. For destination rows q in
/// [q0, q1) of outer * R (o = q / R, r = q % R) and columns [c0, c1):
///   dst[q, c] = 0 + src[o, k1, c] + src[o, k2, c] + ...   over the k with index[k] == r, increasing;
/// the row `zero_row` (e.g. Embedding's padding index; -1 for none) stays 0. The active CPU
/// capability's kernel (table.hpp's IndexKernels; the same bits on every one).
template <class T>
void scatter_add_rows(const T* src, T* dst, const RowOrder& rows, std::size_t K, std::size_t R, std::size_t inner,
                      std::size_t q0, std::size_t q1, std::size_t c0, std::size_t c1, std::int64_t zero_row = -1) {
  if constexpr (kHasIndexKernels<T>) {
    index_kernels<T>(active()).scatter_add_rows(src, dst, rows.begin.data(), rows.order.data(), K, R, inner, q0, q1,
                                                c0, c1, zero_row);
  } else {  // an element type without table kernels: the same adds, in baseline code
    for (std::size_t q = q0; q < q1; ++q) {
      const std::size_t o = q / R, r = q % R;
      T* to = dst + q * inner;
      for (std::size_t c = c0; c < c1; ++c) to[c] = T(0);
      if (static_cast<std::int64_t>(r) == zero_row) continue;
      for (std::size_t p = rows.begin[r]; p < rows.begin[r + 1]; ++p) {
        const T* from = src + (o * K + rows.order[p]) * inner;
        for (std::size_t c = c0; c < c1; ++c) to[c] = wrapping_add(to[c], from[c]);
      }
    }
  }
}

}  // namespace sorix::kernels
