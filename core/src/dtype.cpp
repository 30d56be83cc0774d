#include "sorix/core/dtype.hpp"

namespace sorix {

std::string dtype_name(Dtype d) {
  switch (d) {
    case Dtype::Float32: return "float32";
    case Dtype::Float64: return "float64";
    case Dtype::Int64: return "int64";
    case Dtype::Bool: return "bool";
    case Dtype::UInt8: return "uint8";
    case Dtype::Int32: return "int32";
  }
  return "unknown";
}

std::size_t dtype_size(Dtype d) {
  switch (d) {
    case Dtype::Float32: return 4;
    case Dtype::Float64: return 8;
    case Dtype::Int64: return 8;
    case Dtype::Bool: return 1;
    case Dtype::UInt8: return 1;
    case Dtype::Int32: return 4;
  }
  return 0;
}

namespace {
// Rank within a category: the larger rank holds every value of the smaller.
int integral_rank(Dtype d) {
  switch (d) {
    case Dtype::UInt8: return 0;
    case Dtype::Int32: return 1;
    default: return 2;  // int64
  }
}
}  // namespace

Dtype promote(Dtype a, Dtype b) {
  if (a == b) return a;
  if (a == Dtype::Bool) return b;
  if (b == Dtype::Bool) return a;
  if (is_floating(a) || is_floating(b)) {
    if (a == Dtype::Float64 || b == Dtype::Float64) return Dtype::Float64;
    return Dtype::Float32;
  }
  return integral_rank(a) >= integral_rank(b) ? a : b;
}

bool can_cast(Dtype from, Dtype to) {
  if (is_floating(from) && is_integral(to, /*include_bool=*/true)) return false;
  if (from != Dtype::Bool && to == Dtype::Bool) return false;
  return true;
}

Dtype default_dtype_of(ScalarKind k) {
  switch (k) {
    case ScalarKind::Bool: return Dtype::Bool;
    case ScalarKind::Integral: return Dtype::Int64;
    case ScalarKind::Floating: break;
  }
  return Dtype::Float32;
}

}  // namespace sorix
