// The strided copy, fill and accumulate kernels (strided.hpp). Baseline code: moves of memory,
// where the speed comes from the access order (rows, tiles), not from vector arithmetic.
#include "sorix_core/kernels/strided.hpp"

#include "sorix_core/kernels/table.hpp"

#include <algorithm>
#include <numeric>
#include <type_traits>

#include "sorix/parallel/parallel.hpp"

namespace sorix::kernels {
namespace {

// Side of the square tiles of the transpose path: a 32 x 32 tile of doubles is 8 KiB, so a
// tile's source and destination lines both fit in L1.
constexpr std::size_t kTile = 32;

// A mixed-radix counter over `size` (last digit fastest) that tracks the matching element offset
// in both operands as it steps.
struct Odometer {
  std::vector<std::size_t> size, a_stride, b_stride, idx;
  std::size_t a = 0, b = 0;

  void seek(std::size_t linear) {
    idx.assign(size.size(), 0);
    a = b = 0;
    for (std::size_t d = size.size(); d-- > 0;) {
      idx[d] = linear % size[d];
      linear /= size[d];
      a += idx[d] * a_stride[d];
      b += idx[d] * b_stride[d];
    }
  }
  void next() {
    for (std::size_t d = size.size(); d-- > 0;) {
      a += a_stride[d];
      b += b_stride[d];
      if (++idx[d] < size[d]) return;
      a -= size[d] * a_stride[d];
      b -= size[d] * b_stride[d];
      idx[d] = 0;
    }
  }
};

// Drops size-1 dims and merges a dim into the one before it when both operands step over it
// contiguously (stride[k-1] == stride[k] * size[k] in each).
StridedPair simplify(const StridedPair& g) {
  StridedPair s;
  for (std::size_t k = 0; k < g.sizes.size(); ++k) {
    if (g.sizes[k] == 1) continue;
    if (!s.sizes.empty() && s.src_strides.back() == g.src_strides[k] * g.sizes[k] &&
        s.dst_strides.back() == g.dst_strides[k] * g.sizes[k]) {
      s.sizes.back() *= g.sizes[k];
      s.src_strides.back() = g.src_strides[k];
      s.dst_strides.back() = g.dst_strides[k];
    } else {
      s.sizes.push_back(g.sizes[k]);
      s.src_strides.push_back(g.src_strides[k]);
      s.dst_strides.push_back(g.dst_strides[k]);
    }
  }
  return s;
}

std::size_t product(const std::vector<std::size_t>& v) {
  return std::accumulate(v.begin(), v.end(), std::size_t{1}, std::multiplies<>());
}

// Rows of L elements, contiguous in both operands: copy fixed chunks of the flat index range.
template <class T>
void copy_rows(const T* src, T* dst, const StridedPair& p, std::size_t total) {
  const std::size_t last = p.sizes.size() - 1;
  const std::size_t L = p.sizes[last];
  Odometer rows{{p.sizes.begin(), p.sizes.end() - 1},
                {p.src_strides.begin(), p.src_strides.end() - 1},
                {p.dst_strides.begin(), p.dst_strides.end() - 1},
                std::vector<std::size_t>(last, 0)};
  parallel::parallel_for(total, parallel::kChunkSize, [&](std::size_t s, std::size_t e) {
    Odometer o = rows;
    o.seek(s / L);
    std::size_t off = s % L;
    while (s < e) {
      const std::size_t n = std::min(L - off, e - s);
      std::copy(src + o.a + off, src + o.a + off + n, dst + o.b + off);
      s += n;
      off = 0;
      o.next();
    }
  });
}

// Batch of 2-D transposes between dim q (stride 1 in the source) and the last dim (stride 1 in
// the destination). Work unit: one tile; digits are the dims before `last` with dim q counted in
// tiles, then the tiles along `last`.
template <class T>
void copy_tiles(const T* src, T* dst, const StridedPair& p, std::size_t q) {
  const std::size_t nd = p.sizes.size(), last = nd - 1;
  const std::size_t L = p.sizes[last];
  Odometer tiles;
  for (std::size_t d = 0; d < last; ++d) {
    const bool t = d == q;
    tiles.size.push_back(t ? (p.sizes[d] + kTile - 1) / kTile : p.sizes[d]);
    tiles.a_stride.push_back(t ? kTile : p.src_strides[d]);
    tiles.b_stride.push_back(t ? kTile * p.dst_strides[d] : p.dst_strides[d]);
  }
  tiles.size.push_back((L + kTile - 1) / kTile);
  tiles.a_stride.push_back(kTile * p.src_strides[last]);
  tiles.b_stride.push_back(kTile);
  const std::size_t num_tiles = product(tiles.size);
  const std::size_t rows_q = p.sizes[q], src_col = p.src_strides[last], dst_row = p.dst_strides[q];
  constexpr std::size_t kTilesPerChunk = parallel::kChunkSize / (kTile * kTile);
  constexpr std::size_t kInlineTiles = parallel::kInlineGrain / (kTile * kTile);
  parallel::parallel_for(
      num_tiles, kTilesPerChunk,
      [&](std::size_t s, std::size_t e) {
        Odometer o = tiles;
        o.seek(s);
        for (std::size_t u = s; u < e; ++u, o.next()) {
          const std::size_t ti = std::min(kTile, rows_q - o.idx[q] * kTile);
          const std::size_t tj = std::min(kTile, L - o.idx[last] * kTile);
          const T* from = src + o.a;
          T* to = dst + o.b;
          if constexpr (std::is_same_v<T, float>) {  // the active capability's register transposes
            active().transpose_f32(from, src_col, to, dst_row, tj, ti);
          } else {
            for (std::size_t i = 0; i < ti; ++i) {
              for (std::size_t j = 0; j < tj; ++j) to[i * dst_row + j] = from[i + j * src_col];
            }
          }
        }
      },
      kInlineTiles);
}

// One element at a time along an odometer, in fixed chunks of the flat index range.
template <class T>
void copy_elements(const T* src, T* dst, const StridedPair& p, std::size_t total) {
  const Odometer start{p.sizes, p.src_strides, p.dst_strides, {}};
  parallel::parallel_for(total, parallel::kChunkSize, [&](std::size_t s, std::size_t e) {
    Odometer o = start;
    o.seek(s);
    for (std::size_t i = s; i < e; ++i, o.next()) dst[o.b] = src[o.a];
  });
}

}  // namespace

template <class T>
void copy_strided(const T* src, T* dst, const StridedPair& geometry) {
  const std::size_t total = product(geometry.sizes);
  if (total == 0) return;
  const StridedPair p = simplify(geometry);
  if (p.sizes.empty()) {
    dst[0] = src[0];
    return;
  }
  const std::size_t last = p.sizes.size() - 1;
  if (p.src_strides[last] == 1 && p.dst_strides[last] == 1) return copy_rows(src, dst, p, total);
  if (p.dst_strides[last] == 1) {
    const auto q = static_cast<std::size_t>(std::find(p.src_strides.begin(), p.src_strides.end() - 1, 1) -
                                            p.src_strides.begin());
    if (q < last) return copy_tiles(src, dst, p, q);
  }
  copy_elements(src, dst, p, total);
}

template <class T>
void fill_strided(T* dst, const std::vector<std::size_t>& sizes, const std::vector<std::size_t>& strides, T value) {
  const std::size_t total = product(sizes);
  if (total == 0) return;
  // The fill reads one value: the source is a stride-0 operand of the same shape.
  const StridedPair p = simplify({sizes, std::vector<std::size_t>(sizes.size(), 0), strides});
  if (p.sizes.empty()) {
    dst[0] = value;
    return;
  }
  const std::size_t last = p.sizes.size() - 1;
  const std::size_t L = p.dst_strides[last] == 1 ? p.sizes[last] : 1;
  const Odometer start{{p.sizes.begin(), p.sizes.end() - (L > 1 ? 1 : 0)},
                       std::vector<std::size_t>(p.sizes.size(), 0),
                       {p.dst_strides.begin(), p.dst_strides.end() - (L > 1 ? 1 : 0)},
                       {}};
  const std::size_t runs = total / L;
  parallel::parallel_for(runs, std::max<std::size_t>(1, parallel::kChunkSize / L), [&](std::size_t s, std::size_t e) {
    Odometer o = start;
    o.seek(s);
    for (std::size_t r = s; r < e; ++r, o.next()) std::fill(dst + o.b, dst + o.b + L, value);
  });
}

template <class T>
void add_strided_serial(const T* src, T* dst, const std::vector<std::size_t>& sizes,
                        const std::vector<std::size_t>& dst_strides) {
  const std::size_t total = product(sizes);
  if (total == 0) return;
  Odometer o{sizes, std::vector<std::size_t>(sizes.size(), 0), dst_strides, {}};
  o.seek(0);
  for (std::size_t i = 0; i < total; ++i, o.next()) dst[o.b] += src[i];
}

#define SORIX_STRIDED_INSTANTIATE(T)                                                                         \
  template void copy_strided<T>(const T*, T*, const StridedPair&);                                            \
  template void fill_strided<T>(T*, const std::vector<std::size_t>&, const std::vector<std::size_t>&, T);    \
  template void add_strided_serial<T>(const T*, T*, const std::vector<std::size_t>&,                          \
                                      const std::vector<std::size_t>&);
SORIX_STRIDED_INSTANTIATE(float)
SORIX_STRIDED_INSTANTIATE(double)
SORIX_STRIDED_INSTANTIATE(std::int64_t)
SORIX_STRIDED_INSTANTIATE(std::uint8_t)
SORIX_STRIDED_INSTANTIATE(std::int32_t)
#undef SORIX_STRIDED_INSTANTIATE
// bool is copied and filled, never summed.
template void copy_strided<bool>(const bool*, bool*, const StridedPair&);
template void fill_strided<bool>(bool*, const std::vector<std::size_t>&, const std::vector<std::size_t>&, bool);

}  // namespace sorix::kernels
