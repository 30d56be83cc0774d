#pragma once
// Internal (not installed): the forward of a float-only unary op, shared by the unary op files.
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

}  // namespace sorix::detail
