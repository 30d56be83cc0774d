#pragma once
// Internal (not installed): the forward of a float-only unary op, shared by the unary op files.
#include <stdexcept>
#include <string>

#include "sorix_autograd/ops_internal.hpp"
#include "sorix_core/kernels/simd.hpp"

namespace sorix::detail {

/// op applied to every element of a float32/float64 x (a contiguous copy first when x is a view),
/// as a new tensor of x's shape and dtype; int64 throws naming `name`.
template <class Op>
Tensor map_floating(const Tensor& x, const char* name, const Op& op = Op{}) {
  check_defined(x, name);
  return visit_floating(x.dtype(), name, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const Tensor xc = contiguous_copy_if_needed(x);
    Tensor out = make_empty<T>(to_xshape(x.shape(), name));
    kernels::unary_map(flat<T>(xc), flat<T>(out), static_cast<std::size_t>(x.numel()), op);
    return out;
  });
}

/// map_floating on x promoted to float32 when it is an integer or bool tensor (PyTorch's rule for
/// exp, log, sin, ...: the default float dtype); float32/float64 x runs unchanged (same bits).
template <class Op>
Tensor map_promoted(const Tensor& x, const char* name, const Op& op = Op{}) {
  return map_floating<Op>(floating_input(x, name), name, op);
}

/// op applied to every element of a uint8/int32/int64 x (exact scalar loops over fixed chunks:
/// the same bits at any thread count and on every capability), as a new tensor of x's shape and
/// dtype. Float and bool x are the caller's to handle (std::logic_error if one arrives).
template <class IntOp>
Tensor map_integer(const Tensor& x, const char* name, const IntOp& op = IntOp{}) {
  check_defined(x, name);
  const Tensor xc = contiguous_copy_if_needed(x);
  return visit_dtype(x.dtype(), [&](auto tag) -> Tensor {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
      Tensor out = make_empty<T>(to_xshape(x.shape(), name));
      kernels::unary_map(flat<T>(xc), flat<T>(out), static_cast<std::size_t>(x.numel()), op);
      return out;
    } else {
      throw std::logic_error(std::string(name) + ": map_integer called on a " + dtype_name(x.dtype()) + " tensor");
    }
  });
}

/// clamp's result dtype (PyTorch's): result_type of x with the bounds, which join by their higher
/// category (an int64 tensor clamped to (0, 2.5) is float32; a bool tensor to (0, 1) int64).
Dtype clamp_result_type(const Tensor& x, const std::optional<Scalar>& min, const std::optional<Scalar>& max);
/// clamp, clamp_min and clamp_max for an integer result dtype rt: x converted to rt, the bounds
/// converted with PyTorch's overflow check (check_fits), min(max(x, min), max); a bool rt throws.
Tensor clamp_integer(const Tensor& x, Dtype rt, const std::optional<Scalar>& min, const std::optional<Scalar>& max,
                     const char* name);

}  // namespace sorix::detail
