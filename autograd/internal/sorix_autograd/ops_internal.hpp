#pragma once
// What every op file includes: the public op declarations, graph recording, input checks.
#include "sorix_core/internal.hpp"
#include "sorix/autograd/grad_mode.hpp"
#include "sorix/autograd/node.hpp"
#include "sorix/autograd/ops.hpp"
#include "sorix/parallel/parallel.hpp"

namespace sorix::detail {

/// Normalises a list of dims (negative allowed) for a tensor of `ndim` dims: sorted, unique,
/// each in range; an empty list means every dim. Throws naming op.
std::vector<std::size_t> normalize_dims(const std::vector<std::int64_t>& dims, std::int64_t ndim, const char* op);

/// x ready for a kernel that reads flat memory: itself when contiguous, else a contiguous copy
/// (differentiable, so the gradient reaches x). Undefined x throws naming op.
inline Tensor contiguous_input(const Tensor& x, const char* op) {
  check_defined(x, op);
  return x.contiguous();
}

/// A 0-dim tensor of v in the dtype an op on t and v computes in (result_type(t, v): t's dtype
/// unless v's category is higher, never v's value). The arithmetic operators and where use it.
Tensor scalar_for(const Tensor& t, Scalar v, const char* name);

/// Refuses a number an integer dtype cannot hold, as PyTorch's Scalar::to<T>() does (uint8 takes
/// -255..255, a negative one wrapping; int32 its range; bool 0 and 1; int64 and the float dtypes
/// any number): an integer pow exponent and integer clamp bounds. Throws std::invalid_argument
/// naming op, the value and the dtype.
void check_fits(Scalar v, Dtype dtype, const char* op);

/// x itself when float32/float64, else x converted to float32 (the default dtype): PyTorch's
/// integer-to-float promotion for exp, log, sin, ... on integer and bool tensors.
Tensor floating_input(const Tensor& x, const char* op);

/// Product of shape[b..e).
inline std::size_t prod(const XShape& s, std::size_t b, std::size_t e) {
  std::size_t p = 1;
  for (std::size_t i = b; i < e; ++i) p *= s[i];
  return p;
}

}  // namespace sorix::detail
