#pragma once
// sorix::Scalar — a C++ number passed to a tensor op (as c10::Scalar): t * 2, t.gt(0.5),
// t.masked_fill(m, 1). It remembers whether it was a bool, an integer or a floating number,
// because type promotion reads that category and never the value (PyTorch's rule): an int64
// tensor times 2 stays int64, times 2.0 or 2.5 gives float32 (the default dtype). Integers are
// kept exactly (an int64 value above 2^53 is not rounded through double).
#include <cstdint>
#include <type_traits>

#include "sorix/core/dtype.hpp"

namespace sorix {

class Scalar {
 public:
  /// Implicit from any arithmetic type (one constructor, so no call is ambiguous).
  template <class T, std::enable_if_t<std::is_arithmetic_v<T>, int> = 0>
  Scalar(T v) {  // NOLINT: implicit by design, as c10::Scalar
    if constexpr (std::is_same_v<T, bool>) {
      kind_ = ScalarKind::Bool;
      i_ = v ? 1 : 0;
      d_ = v ? 1.0 : 0.0;
    } else if constexpr (std::is_floating_point_v<T>) {
      kind_ = ScalarKind::Floating;
      d_ = static_cast<double>(v);
    } else {
      kind_ = ScalarKind::Integral;
      i_ = static_cast<std::int64_t>(v);
      d_ = static_cast<double>(v);
    }
  }
  ScalarKind kind() const { return kind_; }
  bool is_floating_point() const { return kind_ == ScalarKind::Floating; }
  bool is_integral(bool include_bool = false) const {
    return kind_ == ScalarKind::Integral || (include_bool && kind_ == ScalarKind::Bool);
  }
  bool is_boolean() const { return kind_ == ScalarKind::Bool; }
  double to_double() const { return d_; }
  /// The integer value (a floating Scalar truncates toward zero).
  std::int64_t to_long() const { return kind_ == ScalarKind::Floating ? static_cast<std::int64_t>(d_) : i_; }
  /// The value converted to T (exact for an integer Scalar and an integer T).
  template <class T>
  T to() const {
    if constexpr (std::is_same_v<T, bool>) return kind_ == ScalarKind::Floating ? d_ != 0.0 : i_ != 0;
    else if constexpr (std::is_floating_point_v<T>) return static_cast<T>(d_);
    else return kind_ == ScalarKind::Floating ? static_cast<T>(static_cast<std::int64_t>(d_)) : static_cast<T>(i_);
  }

 private:
  ScalarKind kind_ = ScalarKind::Integral;
  std::int64_t i_ = 0;
  double d_ = 0.0;
};

}  // namespace sorix
