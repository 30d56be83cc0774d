#pragma once
// A contiguous tensor as the bytes a collective moves.
#include <cstddef>

#include "sorix/core/tensor.hpp"

namespace sorix::distributed::detail {

/// The first byte of a contiguous tensor's elements.
inline void* raw_bytes(Tensor& t) {
  switch (t.dtype()) {
    case Dtype::Float32: return t.data_ptr<float>();
    case Dtype::Float64: return t.data_ptr<double>();
    case Dtype::Int64: return t.data_ptr<std::int64_t>();
    case Dtype::Bool: return t.data_ptr<bool>();
    case Dtype::UInt8: return t.data_ptr<std::uint8_t>();
    case Dtype::Int32: return t.data_ptr<std::int32_t>();
  }
  return nullptr;
}

/// How many bytes its elements take.
inline std::size_t bytes_of(const Tensor& t) { return static_cast<std::size_t>(t.numel()) * dtype_size(t.dtype()); }

}  // namespace sorix::distributed::detail
