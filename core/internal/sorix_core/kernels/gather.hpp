#pragma once
// Gathers and row copies of the kernel layer, on raw pointers: the copies of index_select, cat and
// stack (autograd/src/index.cpp), the element gather of gather(), and the dataset row gathers
// behind Dataset::get_batch (nn/src/data). Copies only, so the bits never depend on the CPU or the
// thread count (gather's adjoint adds each target's contributions in index order); each output
// element is written by exactly one task. The per-element gather, its scatter-add and the
// dataset row copy are the dispatch table's (index_kernels.hpp); contiguous runs are memcpy
// (the C library's, already chosen per CPU). Chunking uses fixed sizes, never the thread count.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "sorix_core/kernels/table.hpp"
#include "sorix/parallel/parallel.hpp"

namespace sorix::kernels {

/// For r in [0, rows): copies `width` elements from src_row(r) to dst_row(r). The flat range
/// rows * width is cut into fixed chunks, so one long row is split between tasks too.
template <class T, class SrcRow, class DstRow>
void copy_rows(std::size_t rows, std::size_t width, SrcRow src_row, DstRow dst_row) {
  if (width == 0) return;
  parallel::parallel_for(rows * width, parallel::kChunkSize, [&](std::size_t s, std::size_t e) {
    std::size_t r = s / width, off = s % width;
    while (s < e) {
      const std::size_t n = std::min(width - off, e - s);
      std::memcpy(dst_row(r) + off, src_row(r) + off, n * sizeof(T));
      s += n;
      off = 0;
      ++r;
    }
  });
}

/// dst[k * ld + i] = src[idx[k * ld + i] * stride + offset[i]] for k in [0, rows), i in [0, n):
/// the active capability's kernel for the table's element types, the same loop in baseline code
/// for any other.
template <class T>
void gather_block(const T* src, const std::int64_t* idx, std::size_t stride, const std::size_t* offset, T* dst,
                  std::size_t rows, std::size_t n, std::size_t ld) {
  if constexpr (kHasIndexKernels<T>) {
    index_kernels<T>(active()).gather(src, idx, stride, offset, dst, rows, n, ld);
  } else {
    for (std::size_t k = 0; k < rows; ++k)
      for (std::size_t i = 0; i < n; ++i)
        dst[k * ld + i] = src[static_cast<std::size_t>(idx[k * ld + i]) * stride + offset[i]];
  }
}

/// gather_block's adjoint: dst[idx[k * ld + i] * stride + offset[i]] += src[k * ld + i], k in
/// [0, rows) in order (each target's contributions in increasing k; callers give a target to one
/// task only).
template <class T>
void scatter_add_block(const T* src, const std::int64_t* idx, std::size_t stride, const std::size_t* offset, T* dst,
                       std::size_t rows, std::size_t n, std::size_t ld) {
  if constexpr (kHasIndexKernels<T>) {
    index_kernels<T>(active()).scatter_add(src, idx, stride, offset, dst, rows, n, ld);
  } else {
    for (std::size_t k = 0; k < rows; ++k)
      for (std::size_t i = 0; i < n; ++i) {
        T& to = dst[static_cast<std::size_t>(idx[k * ld + i]) * stride + offset[i]];
        to = wrapping_add(to, src[k * ld + i]);
      }
  }
}

namespace rows {

/// Output bytes per task of a dataset row gather, and below which a batch stays on the caller.
inline constexpr std::size_t kRowChunkBytes = std::size_t{64} << 10;
inline constexpr std::size_t kInlineBytes = std::size_t{256} << 10;

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

/// Runs chunk(r0, r1) over [0, count) in chunks of about kRowChunkBytes of output.
template <class Chunk>
void for_row_chunks(std::size_t count, std::size_t out_row_bytes, Chunk&& chunk) {
  if (count == 0 || out_row_bytes == 0) return;
  const std::size_t rows_per_chunk = std::max<std::size_t>(1, kRowChunkBytes / out_row_bytes);
  const std::size_t inline_rows = std::max<std::size_t>(1, kInlineBytes / out_row_bytes);
  parallel::parallel_for(count, rows_per_chunk, chunk, inline_rows);
}

/// dst row r = src row idx[r] (row_bytes each) for r in [0, count); indices must be valid.
inline void gather_rows(const unsigned char* src, std::size_t row_bytes, const std::int64_t* idx, std::size_t count,
                        unsigned char* dst) {
  const KernelTable& t = active();
  for_row_chunks(count, row_bytes, [&](std::size_t r0, std::size_t r1) {
    t.gather_rows(src, row_bytes, idx, r0, r1, dst, row_bytes);
  });
}

/// For r in [0, count): make_row(r, src + idx[r] * src_row_bytes) (a row converted on the way);
/// out_row_bytes sizes the chunks.
template <class MakeRow>
void gather_rows(const unsigned char* src, std::size_t src_row_bytes, const std::int64_t* idx, std::size_t count,
                 std::size_t out_row_bytes, MakeRow&& make_row) {
  for_row_chunks(count, out_row_bytes, [&](std::size_t begin, std::size_t end) {
    // Shuffled rows are scattered over the whole dataset: each one starts with a TLB and a cache
    // miss. Touching the rows a few ahead overlaps those misses with the conversions.
    constexpr std::size_t kAhead = 4;
    for (std::size_t r = begin; r < end; ++r) {
      if (r + kAhead < end) {
        const unsigned char* next = src + static_cast<std::size_t>(idx[r + kAhead]) * src_row_bytes;
        for (std::size_t b = 0; b < src_row_bytes; b += 64) __builtin_prefetch(next + b);
      }
      make_row(r, src + static_cast<std::size_t>(idx[r]) * src_row_bytes);
    }
  });
}

}  // namespace rows
}  // namespace sorix::kernels
