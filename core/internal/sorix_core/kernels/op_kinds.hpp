#pragma once
// The elementwise ops of the kernel layer's dispatch table, by name (light header: no xsimd).
// Their arithmetic is defined once, in elementwise_ops.hpp.
#include <cstdint>

namespace sorix::kernels {

enum class Unary : std::uint8_t {
  Neg, Exp, Log, Sqrt, Abs, Tanh, Sigmoid, Relu,
  LeakyRelu,  // a = negative slope
  Clamp,      // a = lo, b = hi (+-inf when absent)
  ExpShift,   // exp(x - a)
  DivBy,      // x / a
  LogShift,   // (x - a) - b
  Sin, Cos, Tan, Sign, Round, Floor, Ceil, Trunc, Log1p, Expm1, Square, Rsqrt, Reciprocal, Erf,
  // Activations (activation_ops.hpp)
  Gelu, GeluTanh, Silu,
  Elu,       // a = alpha
  Softplus,  // a = beta, b = threshold
};

enum class Binary : std::uint8_t {
  Add, Sub, Mul, Div, Gt, Lt, Ge, Le, Eq, Ne,
  Copy,            // a
  Max,             // xsimd::max(a, b) (the instruction's NaN rule on every x86 path)
  ExpDiff,         // exp(a - b)
  ReluGrad,        // a * (b > 0 ? 1 : 0)
  SoftmaxGrad,     // a * (b - p)   (a = y, b = g, p = the row's dot)
  LogSoftmaxGrad,  // a - exp(b) * p (a = g, b = y, p = the row's sum of g)
  // Activation gradients g * f'(x), a = g, b = x (activation_ops.hpp)
  GeluGrad, GeluTanhGrad, SiluGrad,
  EluGrad,       // p.a = alpha
  SoftplusGrad,  // p.a = beta, p.b = threshold
  HardtanhGrad,  // p.a = min_val, p.b = max_val
};

/// Scalar parameters of an op (converted to the element type inside the kernel).
struct OpParams {
  double a = 0, b = 0;
};

}  // namespace sorix::kernels
