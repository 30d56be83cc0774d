#pragma once
// Element types of sorix tensors and PyTorch's type promotion between them.
#include <cstddef>
#include <cstdint>
#include <string>

namespace sorix {

/// float32 is the default; float64 for gradient checks and precision; int64 for indices, labels
/// and argmax/argmin results; bool for comparisons and masks; uint8 and int32 for data (images,
/// labels). The numeric values are stable (checkpoints store them): new dtypes go at the end.
enum class Dtype : std::uint8_t { Float32, Float64, Int64, Bool, UInt8, Int32 };

inline constexpr Dtype float32 = Dtype::Float32;
inline constexpr Dtype float64 = Dtype::Float64;
inline constexpr Dtype int64 = Dtype::Int64;
inline constexpr Dtype int32 = Dtype::Int32;
inline constexpr Dtype uint8 = Dtype::UInt8;
inline constexpr Dtype kFloat32 = Dtype::Float32;
inline constexpr Dtype kFloat64 = Dtype::Float64;
inline constexpr Dtype kInt64 = Dtype::Int64;
inline constexpr Dtype kBool = Dtype::Bool;
inline constexpr Dtype kUInt8 = Dtype::UInt8;
inline constexpr Dtype kInt32 = Dtype::Int32;
// libtorch's other spellings.
inline constexpr Dtype kFloat = Dtype::Float32;
inline constexpr Dtype kDouble = Dtype::Float64;
inline constexpr Dtype kLong = Dtype::Int64;
inline constexpr Dtype kInt = Dtype::Int32;
inline constexpr Dtype kByte = Dtype::UInt8;

/// Number of dtypes (the enum's values are 0 .. kNumDtypes - 1).
inline constexpr int kNumDtypes = 6;

/// "float32", "float64", "int64", "bool", "uint8" or "int32".
std::string dtype_name(Dtype d);
/// Bytes per element.
std::size_t dtype_size(Dtype d);
inline bool is_floating(Dtype d) { return d == Dtype::Float32 || d == Dtype::Float64; }
/// uint8, int32, int64; with include_bool, bool too (as c10::isIntegralType).
inline bool is_integral(Dtype d, bool include_bool = false) {
  return d == Dtype::Int64 || d == Dtype::Int32 || d == Dtype::UInt8 || (include_bool && d == Dtype::Bool);
}

/// PyTorch's promoteTypes: the smallest dtype both convert to without losing their category
/// (bool < integral < floating): bool with x is x; uint8, int32, int64 promote by size; an integer
/// with a float is the float; float32 with float64 is float64.
Dtype promote(Dtype a, Dtype b);

/// PyTorch's canCast: false when a value of `from` would change category going to `to` (a float
/// into an integer or bool, an integer into bool). An in-place op whose result type cannot be
/// cast to the tensor's dtype throws.
bool can_cast(Dtype from, Dtype to);

/// What a C++ number stands for in type promotion (PyTorch's "wrapped number"): only its
/// category counts, never its value. bool -> bool, an integer -> int64, a floating number -> the
/// default dtype (float32).
enum class ScalarKind : std::uint8_t { Bool, Integral, Floating };
Dtype default_dtype_of(ScalarKind k);

template <class T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr Dtype value = Dtype::Float32; };
template <> struct dtype_of<double> { static constexpr Dtype value = Dtype::Float64; };
template <> struct dtype_of<std::int64_t> { static constexpr Dtype value = Dtype::Int64; };
template <> struct dtype_of<bool> { static constexpr Dtype value = Dtype::Bool; };
template <> struct dtype_of<std::uint8_t> { static constexpr Dtype value = Dtype::UInt8; };
template <> struct dtype_of<std::int32_t> { static constexpr Dtype value = Dtype::Int32; };
template <class T> inline constexpr Dtype dtype_of_v = dtype_of<T>::value;

}  // namespace sorix
