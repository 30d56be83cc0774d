#pragma once
// Helpers shared by the library's own .cpp files (not installed, not for users).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "sorix/core/error.hpp"
#include "sorix/core/tensor.hpp"

namespace sorix::detail {

using XShape = std::vector<std::size_t>;

/// Validates (no negative sizes) and converts a user shape; `op` names the caller in errors.
XShape to_xshape(const Shape& shape, const char* op);
Shape to_shape(const XShape& shape);
template <class S>
Shape shape_of(const S& s) {
  return Shape(s.begin(), s.end());
}
std::size_t numel_of(const Shape& s);

/// A tensor of this dtype and shape, elements uninitialised.
Tensor make_empty(Dtype dtype, const XShape& shape);
template <class T>
Tensor make_empty(const XShape& shape) {
  return Tensor(xt::xarray<T>::from_shape(shape));
}

template <class T> struct type_tag { using type = T; };

/// Calls f(type_tag<T>{}) with T the C++ type of `dtype`.
template <class F>
decltype(auto) visit_dtype(Dtype dtype, F&& f) {
  switch (dtype) {
    case Dtype::Float32: return f(type_tag<float>{});
    case Dtype::Float64: return f(type_tag<double>{});
    case Dtype::Int64: break;
  }
  return f(type_tag<std::int64_t>{});
}
/// As visit_dtype, but int64 throws: the op needs a floating dtype.
template <class F>
decltype(auto) visit_floating(Dtype dtype, const char* op, F&& f) {
  check(dtype != Dtype::Int64, op, "expected a floating tensor (float32 or float64), got int64");
  if (dtype == Dtype::Float64) return f(type_tag<double>{});
  return f(type_tag<float>{});
}

/// Wraps a possibly negative dim into [0, ndim); throws std::out_of_range naming op and range.
std::int64_t wrap_dim(std::int64_t dim, std::int64_t ndim, const char* op);

void check_defined(const Tensor& t, const char* op);

/// Throws if a leaf requiring grad is changed in place while grad mode is on.
void check_inplace(const Tensor& t, const char* op);
/// Makes `self` hold `result` (same shape): result's data moves into self's storage (so aliases
/// made by detach() see it), self takes result's grad_fn, and the version is bumped so that a
/// backward which saved the old values refuses to run. Returns self.
Tensor& assign_inplace(Tensor& self, Tensor result, const char* op);

/// `bytes` bytes (uninitialised) of fresh memory for a large, long-lived buffer read at random
/// (a dataset): mapped on its own, 2 MiB-aligned and advised for transparent huge pages before
/// anything touches it, so the kernel backs it with huge pages. (madvise on malloc memory cannot
/// promise that: the heap hands back pages that were touched before.) Freed with
/// the last reference. Falls back to plain new[] where mmap is unavailable or fails.
std::shared_ptr<std::uint8_t[]> allocate_huge_page_buffer(std::size_t bytes);

}  // namespace sorix::detail
