#pragma once
// Internal: the checks and the kernel layer's row gathers (core/internal/sorix_core/kernels/gather.hpp) behind
// Dataset::get_batch fast paths (TensorDataset, ImageDataset).
#include <cstdint>

#include "sorix_core/kernels/gather.hpp"
#include "sorix/core/error.hpp"

namespace sorix::data::row_gather {

using kernels::rows::gather_rows;
using kernels::rows::prefetch_rows;

/// Throws std::out_of_range naming `op` unless every index is in [0, size).
inline void check_indices(const char* op, const std::int64_t* idx, std::int64_t count, std::int64_t size) {
  for (std::int64_t i = 0; i < count; ++i) {
    check<std::out_of_range>(idx[i] >= 0 && idx[i] < size, op, "index ", idx[i], " (position ", i,
                             " of the batch) out of range for a dataset of size ", size);
  }
}

}  // namespace sorix::data::row_gather
