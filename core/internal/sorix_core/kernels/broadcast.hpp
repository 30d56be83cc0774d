#pragma once
// NumPy broadcasting for binary kernels. The two operands' index maps (their strides, 0 along
// broadcast or expanded dims) are collapsed to the fewest dims (same-shape operands become one
// flat run; [B, C] + [C] becomes rows of C), then the kernel walks output rows: in each row an
// operand is either a contiguous run or one broadcast value. The output is always contiguous.
// Heavy (includes xsimd through simd.hpp): include only from .cpp files.
#include <cstddef>
#include <vector>

#include "sorix_core/kernels/simd.hpp"

namespace sorix::kernels {

struct BroadcastPlan {
  std::vector<std::size_t> out_shape;        // full broadcast shape
  std::vector<std::size_t> dims;             // collapsed dims (empty: one element)
  std::vector<std::size_t> a_strides, b_strides;  // per collapsed dim, in elements (0: broadcast)
  std::size_t numel = 0;
};

/// Throws std::invalid_argument naming op and both shapes when they do not broadcast.
BroadcastPlan broadcast_plan(const std::vector<std::size_t>& a, const std::vector<std::size_t>& b,
                             const char* op);
/// The same for strided operands (strides in elements; 0 for an expanded dim). binary_map needs
/// each operand's innermost collapsed stride to be 0 or 1 (row_kernel_ok).
BroadcastPlan broadcast_plan(const std::vector<std::size_t>& a, const std::vector<std::size_t>& a_strides,
                             const std::vector<std::size_t>& b, const std::vector<std::size_t>& b_strides,
                             const char* op);
/// True when binary_map can walk the plan's rows (each operand's innermost stride 0 or 1).
inline bool row_kernel_ok(const BroadcastPlan& p) {
  return p.dims.empty() || ((p.a_strides.back() <= 1) && (p.b_strides.back() <= 1));
}

/// out = op(a, b) elementwise with broadcasting, as fixed chunks of rows in the library arena.
template <class T, class Op>
void binary_map(const T* a, const T* b, T* out, const BroadcastPlan& plan, const Op& op) {
  if (plan.numel == 0) return;
  if (plan.dims.empty()) {
    binary_serial(a, false, b, false, out, 1, op);
    return;
  }
  const std::size_t nd = plan.dims.size();
  const std::size_t row = plan.dims[nd - 1];
  const bool a_vec = plan.a_strides[nd - 1] != 0;
  const bool b_vec = plan.b_strides[nd - 1] != 0;
  const std::size_t rows = plan.numel / row;
  // Offsets of row r's operands (its multi-index over the leading collapsed dims).
  auto row_offsets = [&](std::size_t r, std::size_t& ao, std::size_t& bo) {
    ao = bo = 0;
    for (std::size_t k = nd - 1; k-- > 0;) {
      const std::size_t i = r % plan.dims[k];
      r /= plan.dims[k];
      ao += i * plan.a_strides[k];
      bo += i * plan.b_strides[k];
    }
  };
  if (row > parallel::kElementwiseChunk) {
    // Long rows (same-shape operands collapse to a single row of numel elements) are cut into
    // fixed column chunks, so they run in parallel too. An element's value never depends on
    // where a chunk starts (see simd.hpp), so the bits are those of the row loop below.
    constexpr std::size_t kBlock = parallel::kElementwiseChunk;
    const std::size_t blocks = (row + kBlock - 1) / kBlock;
    parallel::parallel_for(
        rows * blocks, 1,
        [&](std::size_t t0, std::size_t t1) {
          for (std::size_t t = t0; t < t1; ++t) {
            const std::size_t r = t / blocks, c0 = (t % blocks) * kBlock;
            const std::size_t c1 = std::min(row, c0 + kBlock);
            std::size_t ao, bo;
            row_offsets(r, ao, bo);
            binary_serial(a + ao + (a_vec ? c0 : 0), a_vec, b + bo + (b_vec ? c0 : 0), b_vec, out + r * row + c0,
                          c1 - c0, op);
          }
        },
        parallel::kElementwiseGrain / kBlock);
    return;
  }
  const std::size_t rows_per_chunk = std::max<std::size_t>(1, parallel::kElementwiseChunk / row);
  parallel::parallel_for(
      rows, rows_per_chunk,
      [&](std::size_t r0, std::size_t r1) {
        // Multi-index of row r0 over the leading collapsed dims.
        std::vector<std::size_t> idx(nd, 0);
        std::size_t rem = r0, ao = 0, bo = 0;
        for (std::size_t k = nd - 1; k-- > 0;) {
          idx[k] = rem % plan.dims[k];
          rem /= plan.dims[k];
          ao += idx[k] * plan.a_strides[k];
          bo += idx[k] * plan.b_strides[k];
        }
        for (std::size_t r = r0; r < r1; ++r) {
          binary_serial(a + ao, a_vec, b + bo, b_vec, out + r * row, row, op);
          for (std::size_t k = nd - 1; k-- > 0;) {  // odometer step to the next row
            ao += plan.a_strides[k];
            bo += plan.b_strides[k];
            if (++idx[k] < plan.dims[k]) break;
            ao -= idx[k] * plan.a_strides[k];
            bo -= idx[k] * plan.b_strides[k];
            idx[k] = 0;
          }
        }
      },
      parallel::kElementwiseGrain / row + 1);
}

}  // namespace sorix::kernels
