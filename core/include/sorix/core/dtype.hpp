#pragma once
// Element types of sorix tensors.
#include <cstddef>
#include <cstdint>
#include <string>

namespace sorix {

/// float32 is the default; float64 for gradient checks and precision; int64 for indices, labels
/// and argmax/argmin results.
enum class Dtype : std::uint8_t { Float32, Float64, Int64 };

inline constexpr Dtype float32 = Dtype::Float32;
inline constexpr Dtype float64 = Dtype::Float64;
inline constexpr Dtype int64 = Dtype::Int64;
inline constexpr Dtype kFloat32 = Dtype::Float32;
inline constexpr Dtype kFloat64 = Dtype::Float64;
inline constexpr Dtype kInt64 = Dtype::Int64;

/// "float32", "float64" or "int64".
std::string dtype_name(Dtype d);
/// Bytes per element.
std::size_t dtype_size(Dtype d);
inline bool is_floating(Dtype d) { return d != Dtype::Int64; }
/// The dtype of a mixed binary op: int64 < float32 < float64 (as PyTorch's type promotion).
inline Dtype promote(Dtype a, Dtype b) {
  if (a == Dtype::Float64 || b == Dtype::Float64) return Dtype::Float64;
  if (a == Dtype::Float32 || b == Dtype::Float32) return Dtype::Float32;
  return Dtype::Int64;
}

template <class T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr Dtype value = Dtype::Float32; };
template <> struct dtype_of<double> { static constexpr Dtype value = Dtype::Float64; };
template <> struct dtype_of<std::int64_t> { static constexpr Dtype value = Dtype::Int64; };
template <class T> inline constexpr Dtype dtype_of_v = dtype_of<T>::value;

}  // namespace sorix
