#pragma once
// Strided memory moves: the one kernel that reads or writes a tensor through its strides (views,
// transposes, expanded dims). Everything else in the kernel layer runs over flat memory, so an op
// handed a non-contiguous tensor calls copy_strided first (Tensor::contiguous), and an in-place
// op on a view computes its result flat and copies it back through the view's strides.
//
// Pointer code over element offsets (strides in elements, >= 0); element types of 1, 4 or 8
// bytes. Before any work the geometry is simplified: size-1 dims go, and neighbouring dims that
// are contiguous with each other in both operands merge (so a row slice is one flat run). Then:
//   - both innermost strides 1: runs of rows copied as blocks;
//   - destination innermost stride 1 and some other source dim of stride 1 (a transpose): a batch
//     of 2-D transposes in 32 x 32 tiles, so reads and writes both stay in cache;
//   - otherwise one element at a time along an odometer.
// Work is cut into fixed chunks (of elements, or of tiles) that sorix::parallel runs. A copy is
// exact, so the result is the same for any thread count; the destination must not overlap itself
// (the callers refuse expanded destinations). add_strided_serial accumulates in row-major order
// of the source on one thread, so overlapping destinations (the gradient of expand or unfold)
// get one fixed summation order.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace sorix::kernels {

/// Sizes and strides (in elements) of one strided operand pair; dims outermost first.
struct StridedPair {
  std::vector<std::size_t> sizes;
  std::vector<std::size_t> src_strides, dst_strides;
};

/// dst[i] = src[i] for every index i of `sizes` (offsets through each operand's strides).
template <class T>
void copy_strided(const T* src, T* dst, const StridedPair& geometry);

/// dst[i] = value through dst's strides.
template <class T>
void fill_strided(T* dst, const std::vector<std::size_t>& sizes, const std::vector<std::size_t>& strides, T value);

/// dst[off(i)] += src[i] with src contiguous, one thread, i in row-major order.
template <class T>
void add_strided_serial(const T* src, T* dst, const std::vector<std::size_t>& sizes,
                        const std::vector<std::size_t>& dst_strides);

}  // namespace sorix::kernels
