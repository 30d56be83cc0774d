#pragma once
// Internal: the parallel row gather behind Dataset::get_batch fast paths (TensorDataset,
// ImageDataset). out row r is made from source row idx[r] by a caller-given row function.
//
// Chunking uses fixed byte budgets of the output (never the thread count), so a chunk is a few
// dozen KiB of writing and small batches stay on the calling thread; each output row is written
// by exactly one task, so a batch is the same for any thread count.
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "sorix/core/error.hpp"
#include "sorix/parallel/parallel.hpp"

namespace sorix::data::row_gather {

inline constexpr std::size_t kRowChunkBytes = std::size_t{64} << 10;
inline constexpr std::size_t kInlineBytes = std::size_t{256} << 10;

/// Throws std::out_of_range naming `op` unless every index is in [0, size).
inline void check_indices(const char* op, const std::int64_t* idx, std::int64_t count, std::int64_t size) {
  for (std::int64_t i = 0; i < count; ++i) {
    check<std::out_of_range>(idx[i] >= 0 && idx[i] < size, op, "index ", idx[i], " (position ", i,
                             " of the batch) out of range for a dataset of size ", size);
  }
}

/// Prefetches (towards L2) the source rows of a coming gather; indices out of [0, size) are
/// skipped. Changes nothing observable.
inline void prefetch_rows(const unsigned char* src, std::size_t src_row_bytes, const std::int64_t* idx,
                          std::int64_t count, std::int64_t size) {
  for (std::int64_t i = 0; i < count; ++i) {
    if (idx[i] < 0 || idx[i] >= size) continue;
    const unsigned char* row = src + static_cast<std::size_t>(idx[i]) * src_row_bytes;
    for (std::size_t b = 0; b < src_row_bytes; b += 64) __builtin_prefetch(row + b, 0, 2);
  }
}

/// For r in [0, count): make_row(r, src + idx[r] * src_row_bytes). out_row_bytes sizes the chunks.
template <class MakeRow>
void gather_rows(const unsigned char* src, std::size_t src_row_bytes, const std::int64_t* idx, std::size_t count,
                 std::size_t out_row_bytes, MakeRow&& make_row) {
  if (count == 0 || out_row_bytes == 0) return;
  const std::size_t rows_per_chunk = std::max<std::size_t>(1, kRowChunkBytes / out_row_bytes);
  const std::size_t inline_rows = std::max<std::size_t>(1, kInlineBytes / out_row_bytes);
  parallel::parallel_for(
      count, rows_per_chunk,
      [&](std::size_t begin, std::size_t end) {
        // Shuffled rows are scattered over the whole dataset: each one starts with a TLB and a
        // cache miss. Touching the rows a few ahead overlaps those misses with the copies.
        constexpr std::size_t kAhead = 4;
        for (std::size_t r = begin; r < end; ++r) {
          if (r + kAhead < end) {
            const unsigned char* next = src + static_cast<std::size_t>(idx[r + kAhead]) * src_row_bytes;
            for (std::size_t b = 0; b < src_row_bytes; b += 64) __builtin_prefetch(next + b);
          }
          make_row(r, src + static_cast<std::size_t>(idx[r]) * src_row_bytes);
        }
      },
      inline_rows);
}

}  // namespace sorix::data::row_gather
