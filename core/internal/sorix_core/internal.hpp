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

namespace sorix::autograd {
/// Rebuilds a view's grad_fn from its base's when the base's history was rewritten (an in-place
/// op through another view of it) since the view's grad_fn was made.
void refresh_view(TensorImpl& view);
/// After `self` was overwritten in place by `result`: records the history (self's own grad_fn,
/// or, for a view, its base's, as PyTorch's CopySlices).
void record_inplace(Tensor& self, const Tensor& result);
/// The op name of a graph node (for printing `grad_fn=<...>`).
std::string node_name(const Node& node);
}  // namespace sorix::autograd
// These three, like Tensor::backward, are defined by the autograd module (autograd/src/node.cpp,
// autograd/src/engine.cpp), as PyTorch defines Variable's graph methods in its autograd folder:
// core declares the graph hooks it calls and never includes an autograd header.

namespace sorix::detail {

[[noreturn]] void throw_not_contiguous(const Tensor& t);

using XShape = std::vector<std::size_t>;

/// Validates (no negative sizes) and converts a user shape; `op` names the caller in errors.
XShape to_xshape(const Shape& shape, const char* op);
Shape to_shape(const XShape& shape);
/// The element count of shape (sizes >= 0); throws naming op when it overflows (or passes 2^60).
std::int64_t check_numel(const Shape& shape, const char* op);
template <class S>
Shape shape_of(const S& s) {
  return Shape(s.begin(), s.end());
}
std::size_t numel_of(const Shape& s);

/// Row-major strides of `sizes` (size-0 dims count as 1, as PyTorch).
Shape contiguous_strides(const Shape& sizes);
/// True when two indices of t may address one memory element (an expanded dim, or strides that
/// interleave); conservative, as PyTorch's check.
bool has_internal_overlap(const Tensor& t);
bool has_internal_overlap(const Shape& sizes, const Shape& strides);
/// Throws naming op when t cannot be written elementwise (internal overlap).
void check_writable(const Tensor& t, const char* op);
/// dst = src elementwise through both tensors' strides (same shape and dtype; dst not
/// overlapping itself or src).
void copy_into(const Tensor& src, const Tensor& dst);
/// A contiguous copy of t (no autograd).
Tensor contiguous_copy(const Tensor& t);
/// t itself when contiguous, else contiguous_copy(t) (no autograd: for kernels' inputs in code
/// that records its own gradient from the original tensor).
inline Tensor contiguous_copy_if_needed(const Tensor& t) { return t.is_contiguous() ? t : contiguous_copy(t); }
/// t.contiguous() (differentiable), or t itself when undefined (an optional argument).
inline Tensor contiguous_or_undefined(const Tensor& t) { return t.defined() ? t.contiguous() : t; }

/// Pointer to the first element of a tensor a kernel reads or writes as flat memory: throws
/// std::logic_error (a sorix bug, not a user error) if t is not contiguous, so a kernel can never
/// read a view's memory in the wrong order. Ops call contiguous() on their inputs first.
template <class T>
T* flat(const Tensor& t) {
  if (!t.impl()->contiguous) throw_not_contiguous(t);
  return const_cast<Tensor&>(t).data_ptr<T>();
}

/// A tensor of this dtype and shape, elements uninitialised.
Tensor make_empty(Dtype dtype, const XShape& shape);
template <class T>
Tensor make_empty(const XShape& shape) {
  return Tensor(xt::xarray<T>::from_shape(shape));
}

template <class T> struct type_tag { using type = T; };

/// Calls f(type_tag<T>{}) with T the C++ type of `dtype` (any dtype: for code that moves or
/// converts elements; arithmetic uses visit_numeric or visit_floating).
template <class F>
decltype(auto) visit_dtype(Dtype dtype, F&& f) {
  switch (dtype) {
    case Dtype::Float32: return f(type_tag<float>{});
    case Dtype::Float64: return f(type_tag<double>{});
    case Dtype::Int64: break;
    case Dtype::Bool: return f(type_tag<bool>{});
    case Dtype::UInt8: return f(type_tag<std::uint8_t>{});
    case Dtype::Int32: return f(type_tag<std::int32_t>{});
  }
  return f(type_tag<std::int64_t>{});
}
/// As visit_dtype for the dtypes ops compute in as they are: float32, float64, int64; other
/// dtypes throw naming op (callers promote uint8/int32/bool first where PyTorch does).
template <class F>
decltype(auto) visit_numeric(Dtype dtype, const char* op, F&& f) {
  check(dtype == Dtype::Float32 || dtype == Dtype::Float64 || dtype == Dtype::Int64, op,
        "not supported for dtype ", dtype_name(dtype), " (expected float32, float64 or int64)");
  if (dtype == Dtype::Float64) return f(type_tag<double>{});
  if (dtype == Dtype::Int64) return f(type_tag<std::int64_t>{});
  return f(type_tag<float>{});
}
/// As visit_dtype, but a non-floating dtype throws: the op needs a floating dtype.
template <class F>
decltype(auto) visit_floating(Dtype dtype, const char* op, F&& f) {
  check(is_floating(dtype), op, "expected a floating tensor (float32 or float64), got ", dtype_name(dtype));
  if (dtype == Dtype::Float64) return f(type_tag<double>{});
  return f(type_tag<float>{});
}

/// One element converted as PyTorch's to(): a floating value into an integer truncates toward
/// zero (through int64, so uint8 and int32 wrap as PyTorch does on x86-64, never C++'s undefined
/// out-of-range conversion to a narrow type); anything into bool is `!= 0` (NaN is true).
template <class To, class From>
inline To convert_element(From v) {
  if constexpr (std::is_same_v<To, bool>) {
    return v != From(0);
  } else if constexpr (std::is_integral_v<To> && std::is_floating_point_v<From> && !std::is_same_v<To, std::int64_t>) {
    return static_cast<To>(static_cast<std::int64_t>(v));
  } else {
    return static_cast<To>(v);
  }
}

/// Wraps a possibly negative dim into [0, ndim); throws std::out_of_range naming op and range.
std::int64_t wrap_dim(std::int64_t dim, std::int64_t ndim, const char* op);

void check_defined(const Tensor& t, const char* op);

/// Throws if a leaf requiring grad is changed in place while grad mode is on.
void check_inplace(const Tensor& t, const char* op);
/// Throws std::invalid_argument naming op when an in-place result of dtype `result` cannot be
/// stored in a tensor of dtype `self` (can_cast), as PyTorch.
void check_inplace_cast(Dtype result, Dtype self, const char* op);
/// Makes `self` hold `result` (same shape; a result of another dtype is converted when
/// check_inplace_cast allows it): result's data moves into self's storage (so aliases
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
