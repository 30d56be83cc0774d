// Elementwise binary ops with broadcasting: add sub mul div pow, comparisons, where, expand,
// the arithmetic operators and the in-place forms. Forward and gradient side by side; the
// gradient of a broadcast input is summed back to its shape (sum_to).
#include <cmath>

#include "sorix_autograd/ops_internal.hpp"
#include "sorix_core/kernels/broadcast.hpp"
#include "sorix_core/kernels/strided.hpp"

namespace sorix {
namespace {

using autograd::record;
using kernels::choose;
using kernels::one_if;

// The ops' arithmetic lives in the kernel layer (core/internal/sorix_core/kernels/elementwise_ops.hpp), which
// runs it on the active CPU capability; int64 runs the same functors on the baseline.
using kernels::ops::AddOp;
using kernels::ops::DivOp;
using kernels::ops::EqOp;
using kernels::ops::GeOp;
using kernels::ops::GtOp;
using kernels::ops::LeOp;
using kernels::ops::LtOp;
using kernels::ops::MulOp;
using kernels::ops::NeOp;
using kernels::ops::SubOp;
using TakeFirst = kernels::ops::CopyOp;
struct PowOp {
  template <class V>
  V operator()(const V& a, const V& b) const {
    if constexpr (std::is_arithmetic_v<V>) {
      return static_cast<V>(std::pow(a, b));
    } else {
      // Lane by lane with libm: xsimd 8's pow (exp(y log x)) is off by up to ~17 ulp and gets
      // special cases wrong (0^0 gave 0, 0^-1 gave 0), which also broke d/dx x^1 at 0. (The one
      // op still on libm: glibc's pow is correctly rounded in nearly all cases, not proven in all,
      // so its bits across CPUs are not guaranteed; docs/determinism.md.)
      using T = kernels::scalar_of_t<V>;
      alignas(64) T xa[V::size];
      alignas(64) T xb[V::size];
      a.store_aligned(xa);
      b.store_aligned(xb);
      for (std::size_t i = 0; i < V::size; ++i) xa[i] = std::pow(xa[i], xb[i]);
      return V::load_aligned(xa);
    }
  }
};

// The dtypes the arithmetic runs on: float32 and float64 (the active capability's kernels),
// int64, int32 and uint8 (exact scalar loops: integers wrap as PyTorch's). bool is computed as
// uint8 by compute() below.
template <class F>
decltype(auto) visit_arith(Dtype dt, F&& f) {
  switch (dt) {
    case Dtype::Float32: return f(detail::type_tag<float>{});
    case Dtype::Float64: return f(detail::type_tag<double>{});
    case Dtype::Int32: return f(detail::type_tag<std::int32_t>{});
    case Dtype::UInt8: return f(detail::type_tag<std::uint8_t>{});
    case Dtype::Int64:
    case Dtype::Bool: break;
  }
  return f(detail::type_tag<std::int64_t>{});
}

// +, -, * of signed integers in two's complement (PyTorch's wrap-around), through the unsigned
// type: a signed overflow would be undefined behaviour in C++.
template <class Op>
struct Wrapping {
  template <class T>
  T operator()(T a, T b) const {
    using U = std::make_unsigned_t<T>;
    const U x = static_cast<U>(a), y = static_cast<U>(b);
    if constexpr (std::is_same_v<Op, AddOp>) return static_cast<T>(x + y);
    else if constexpr (std::is_same_v<Op, SubOp>) return static_cast<T>(x - y);
    else return static_cast<T>(x * y);
  }
};
template <class Op>
inline constexpr bool kWraps = std::is_same_v<Op, AddOp> || std::is_same_v<Op, SubOp> || std::is_same_v<Op, MulOp>;

// Integer a ** b (PyTorch's): exact square-and-multiply, wrapping in two's complement; a
// negative exponent gives 1 for base 1, +-1 for base -1, else 0 (the truncated quotient).
struct IntPowOp {
  template <class V>
  V operator()(const V& base, const V& exponent) const {
    if constexpr (std::is_integral_v<V>) {
      using U = std::make_unsigned_t<V>;
      if constexpr (std::is_signed_v<V>) {
        if (exponent < 0) {
          if (base == 1) return V(1);
          if (base == -1) return (exponent & 1) ? V(-1) : V(1);
          return V(0);
        }
      }
      U result = 1, b = static_cast<U>(base);
      for (auto e = exponent; e != 0; e = static_cast<V>(e >> 1)) {
        if (e & 1) result = static_cast<U>(result * b);
        b = static_cast<U>(b * b);
      }
      return static_cast<V>(result);
    } else {
      return base;  // never reached: integer dtypes only (pow sends floats to PowOp)
    }
  }
};

// Forward only: out = op(a, b) in dtype dt (inputs already converted to dt).
// Operands are read through their strides (so an expanded view is read in place, as a broadcast);
// an operand whose rows are not runs (a transpose, a stepped slice) is made contiguous first.
template <class Op>
Tensor compute(const Tensor& a_in, const Tensor& b_in, const char* name) {
  const Dtype dt = a_in.dtype();
  if (dt == Dtype::Bool) {
    // bool as 0/1 bytes: + gives 0..2 (true when either is: PyTorch's bool add is "or"), *
    // gives "and", comparisons compare 0/1; the result is read back as bool (nonzero).
    NoGradGuard no_grad;
    return compute<Op>(a_in.to(Dtype::UInt8), b_in.to(Dtype::UInt8), name).to(Dtype::Bool);
  }
  auto plan_for = [name](const Tensor& a, const Tensor& b) {
    auto sizes = [name](const Tensor& t) { return detail::to_xshape(t.shape(), name); };
    auto strides = [name](const Tensor& t) { return detail::to_xshape(t.stride(), name); };
    return kernels::broadcast_plan(sizes(a), strides(a), sizes(b), strides(b), name);
  };
  Tensor a = a_in, b = b_in;
  kernels::BroadcastPlan plan = plan_for(a, b);
  if (!kernels::row_kernel_ok(plan)) {
    if (plan.a_strides.back() > 1) a = detail::contiguous_copy(a);
    if (plan.b_strides.back() > 1) b = detail::contiguous_copy(b);
    plan = plan_for(a, b);
  }
  Tensor out = detail::make_empty(dt, plan.out_shape);
  visit_arith(dt, [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_integral_v<T> && std::is_signed_v<T> && kWraps<Op>) {
      kernels::binary_map(a.data_ptr<T>(), b.data_ptr<T>(), detail::flat<T>(out), plan, Wrapping<Op>{});
    } else {
      kernels::binary_map(a.data_ptr<T>(), b.data_ptr<T>(), detail::flat<T>(out), plan, Op{});
    }
  });
  return out;
}

// Converts both operands to their promoted dtype (differentiably); `floating` forces a float.
std::pair<Tensor, Tensor> promoted(const Tensor& a, const Tensor& b, const char* name, bool floating) {
  detail::check_defined(a, name);
  detail::check_defined(b, name);
  Dtype dt = result_type(a, b);
  if (floating && !is_floating(dt)) dt = Dtype::Float32;  // the default dtype, as PyTorch
  return {a.dtype() == dt ? a : a.to(dt), b.dtype() == dt ? b : b.to(dt)};
}

// Compared in the promoted dtype (0/1 there, exact), then read as bool.
template <class Op>
Tensor comparison(const Tensor& a, const Tensor& b, const char* name) {
  NoGradGuard no_grad;
  auto [x, y] = promoted(a, b, name, false);
  return compute<Op>(x, y, name).to(Dtype::Bool);
}


// As PyTorch: no subtraction with a bool operand (a mask is inverted with logical_not).
void check_no_bool_sub(bool a_bool, bool b_bool) {
  check(!a_bool && !b_bool, "sub",
        "subtraction with a bool operand is not supported (as PyTorch); use logical_xor() or logical_not()");
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  auto [x, y] = promoted(a, b, "add", false);
  Tensor out = compute<AddOp>(x, y, "add");
  if (autograd::needs_grad({&x, &y})) {
    record(out, "AddBackward", {x, y}, [sx = x.shape(), sy = y.shape()](const Tensor& g) -> std::vector<Tensor> {
      return {sum_to(g, sx), sum_to(g, sy)};
    });
  }
  return out;
}

Tensor sub(const Tensor& a, const Tensor& b) {
  check_no_bool_sub(a.defined() && a.dtype() == Dtype::Bool, b.defined() && b.dtype() == Dtype::Bool);
  auto [x, y] = promoted(a, b, "sub", false);
  Tensor out = compute<SubOp>(x, y, "sub");
  if (autograd::needs_grad({&x, &y})) {
    record(out, "SubBackward", {x, y}, [sx = x.shape(), sy = y.shape()](const Tensor& g) -> std::vector<Tensor> {
      return {sum_to(g, sx), sum_to(neg(g), sy)};
    });
  }
  return out;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  auto [x, y] = promoted(a, b, "mul", false);
  Tensor out = compute<MulOp>(x, y, "mul");
  if (autograd::needs_grad({&x, &y})) {
    const bool gx = x.requires_grad(), gy = y.requires_grad();
    // Each side saves only what the other side's gradient reads, so x.mul_(2.0) keeps nothing of
    // x (whose storage it is about to overwrite).
    record(out, "MulBackward", {x, y},
           [sx = gy ? autograd::SavedTensor(x) : autograd::SavedTensor(),
            sy = gx ? autograd::SavedTensor(y) : autograd::SavedTensor(), xshape = x.shape(), yshape = y.shape(),
            gx, gy](const Tensor& g) {
             return std::vector<Tensor>{gx ? sum_to(g * sy.unpack("mul"), xshape) : Tensor(),
                                        gy ? sum_to(g * sx.unpack("mul"), yshape) : Tensor()};
           });
  }
  return out;
}

Tensor div(const Tensor& a, const Tensor& b) {
  auto [x, y] = promoted(a, b, "div", true);
  Tensor out = compute<DivOp>(x, y, "div");
  if (autograd::needs_grad({&x, &y})) {
    const bool gx = x.requires_grad(), gy = y.requires_grad();
    // x is saved only for y's gradient (see mul).
    record(out, "DivBackward", {x, y},
           [sx = gy ? autograd::SavedTensor(x) : autograd::SavedTensor(), sy = autograd::SavedTensor(y),
            xshape = x.shape(), gx, gy](const Tensor& g) {
             Tensor yv = sy.unpack("div");
             return std::vector<Tensor>{gx ? sum_to(g / yv, xshape) : Tensor(),
                                        gy ? sum_to(neg(g) * sx.unpack("div") / (yv * yv), yv.shape()) : Tensor()};
           });
  }
  return out;
}

Tensor pow(const Tensor& a, const Tensor& b) {
  detail::check_defined(a, "pow");
  detail::check_defined(b, "pow");
  const Dtype rt = result_type(a, b);
  check(rt != Dtype::Bool, "pow", "not implemented for bool tensors (as PyTorch)");
  if (is_integral(rt)) {  // integers stay integers (no gradient: they cannot require grad)
    auto [xi, yi] = promoted(a, b, "pow", false);
    return compute<IntPowOp>(xi, yi, "pow");
  }
  auto [x, y] = promoted(a, b, "pow", true);
  Tensor out = compute<PowOp>(x, y, "pow");
  if (autograd::needs_grad({&x, &y})) {
    const bool gx = x.requires_grad(), gy = y.requires_grad();
    record(out, "PowBackward", {x, y},
           [sx = autograd::SavedTensor(x), sy = autograd::SavedTensor(y), gx, gy](const Tensor& g) {
             Tensor xv = sx.unpack("pow"), yv = sy.unpack("pow");
             Tensor ga, gb;
             // d/dx x^y = y x^(y-1); d/dy x^y = x^y log x (0 where x == 0, as PyTorch)
             if (gx) ga = sum_to(g * yv * pow(xv, yv - 1.0), xv.shape());
             if (gy) {
               Tensor is_zero = xv.eq(0.0);
               Tensor safe_log = where(is_zero, zeros_like(xv), log(where(is_zero, ones_like(xv), xv)));
               gb = sum_to(g * pow(xv, yv) * safe_log, yv.shape());
             }
             return std::vector<Tensor>{ga, gb};
           });
  }
  return out;
}

Tensor pow(const Tensor& a, Scalar exponent) {
  detail::check_defined(a, "pow");
  // As PyTorch: the number's category decides (result_type): an integer tensor to an integer
  // power stays an integer, exact; a floating exponent (2.0 as much as 2.5) gives a float.
  const bool int_base = !is_floating(a.dtype());
  check(!(int_base && exponent.is_integral(true) && exponent.to_long() < 0), "pow",
        "integers to negative integer powers are not allowed (as PyTorch), got a tensor of dtype ",
        dtype_name(a.dtype()), " to the power ", exponent.to_long(), "; use a floating exponent (",
        exponent.to_long(), ".0)");
  const Dtype rt = result_type(a, exponent);
  check(rt != Dtype::Bool, "pow", "not implemented for bool tensors with a bool exponent (as PyTorch)");
  if (!is_floating(rt)) {
    Tensor base = a.dtype() == rt ? a : a.to(rt);
    detail::check_fits(exponent, rt, "pow");
    return compute<IntPowOp>(base, scalar_tensor(exponent, rt), "pow");
  }
  // The floating path as before: the exponent as a double, converted to the tensor's float dtype.
  const double e = exponent.to_double();
  Tensor x = a.dtype() == rt ? a : a.to(rt);
  Tensor out = compute<PowOp>(x, scalar_tensor(e, x.dtype()), "pow");
  if (autograd::needs_grad({&x})) {
    record(out, "PowBackward", {x}, [sx = autograd::SavedTensor(x), e](const Tensor& g) {
      Tensor xv = sx.unpack("pow");
      if (e == 0.0) return std::vector<Tensor>{zeros_like(xv)};
      return std::vector<Tensor>{g * e * pow(xv, e - 1.0)};
    });
  }
  return out;
}

Tensor pow(Scalar base, const Tensor& exponent) {
  // libtorch's pow(Scalar, Tensor): the number joins as a 0-dim tensor of result_type(base,
  // exponent) (an integer base to an int tensor stays an integer; a uint8 result wraps the base,
  // 300 ** uint8 is 44 ** uint8, as PyTorch).
  return pow(detail::scalar_for(exponent, base, "pow"), exponent);
}

Tensor gt(const Tensor& a, const Tensor& b) { return comparison<GtOp>(a, b, "gt"); }
Tensor lt(const Tensor& a, const Tensor& b) { return comparison<LtOp>(a, b, "lt"); }
Tensor ge(const Tensor& a, const Tensor& b) { return comparison<GeOp>(a, b, "ge"); }
Tensor le(const Tensor& a, const Tensor& b) { return comparison<LeOp>(a, b, "le"); }
Tensor eq(const Tensor& a, const Tensor& b) { return comparison<EqOp>(a, b, "eq"); }
Tensor ne(const Tensor& a, const Tensor& b) { return comparison<NeOp>(a, b, "ne"); }

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  detail::check_defined(cond, "where");
  check(cond.dtype() == Dtype::Bool || cond.dtype() == Dtype::UInt8, "where",
        "expected a bool condition (or uint8, as PyTorch 1.13), got a tensor of dtype ", dtype_name(cond.dtype()));
  auto [x, y] = promoted(a, b, "where", false);
  // Broadcast all three to one shape, then select elementwise (a where cond is true).
  const auto shape_xy = kernels::broadcast_plan(detail::to_xshape(x.shape(), "where"),
                                                detail::to_xshape(y.shape(), "where"), "where")
                            .out_shape;
  const auto full = kernels::broadcast_plan(detail::to_xshape(cond.shape(), "where"), shape_xy, "where").out_shape;
  const Shape out_shape = detail::to_shape(full);
  Tensor c, xe, ye;
  {
    NoGradGuard no_grad;
    c = expand(cond.to(Dtype::Bool), out_shape).contiguous();
    xe = expand(x, out_shape).contiguous();
    ye = expand(y, out_shape).contiguous();
  }
  Tensor out = detail::make_empty(x.dtype(), full);
  const bool* pc = detail::flat<bool>(c);
  detail::visit_dtype(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* px = detail::flat<T>(xe);
    const T* py = detail::flat<T>(ye);
    T* po = detail::flat<T>(out);
    parallel::parallel_for(static_cast<std::size_t>(out.numel()), parallel::kChunkSize,
                           [&](std::size_t s, std::size_t e) {
                             for (std::size_t i = s; i < e; ++i) po[i] = pc[i] ? px[i] : py[i];
                           });
  });
  if (autograd::needs_grad({&x, &y})) {
    record(out, "WhereBackward", {x, y},
           [c, sx = x.shape(), sy = y.shape()](const Tensor& g) -> std::vector<Tensor> {
             Tensor zero = zeros_like(g);
             return {sum_to(where(c, g, zero), sx), sum_to(where(c, zero, g), sy)};
           });
  }
  return out;
}

// ---- operators and methods -----------------------------------------------------------------------
Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator+(const Tensor& a, Scalar b) { return add(a, detail::scalar_for(a, b, "add")); }
Tensor operator-(const Tensor& a, Scalar b) { check_no_bool_sub(false, b.is_boolean()); return sub(a, detail::scalar_for(a, b, "sub")); }
Tensor operator*(const Tensor& a, Scalar b) { return mul(a, detail::scalar_for(a, b, "mul")); }
Tensor operator/(const Tensor& a, Scalar b) { return div(a, detail::scalar_for(a, b, "div")); }
Tensor operator+(Scalar a, const Tensor& b) { return add(detail::scalar_for(b, a, "add"), b); }
Tensor operator-(Scalar a, const Tensor& b) { check_no_bool_sub(a.is_boolean(), false); return sub(detail::scalar_for(b, a, "sub"), b); }
Tensor operator*(Scalar a, const Tensor& b) { return mul(detail::scalar_for(b, a, "mul"), b); }
Tensor operator/(Scalar a, const Tensor& b) { return div(detail::scalar_for(b, a, "div"), b); }
Tensor& operator+=(Tensor& a, const Tensor& b) { return a.add_(b); }
Tensor& operator-=(Tensor& a, const Tensor& b) { return a.sub_(b); }
Tensor& operator*=(Tensor& a, const Tensor& b) { return a.mul_(b); }
Tensor& operator/=(Tensor& a, const Tensor& b) { return a.div_(b); }
Tensor& operator+=(Tensor& a, Scalar b) { return a.add_(b); }
Tensor& operator-=(Tensor& a, Scalar b) { return a.sub_(b); }
Tensor& operator*=(Tensor& a, Scalar b) { return a.mul_(b); }
Tensor& operator/=(Tensor& a, Scalar b) { return a.div_(b); }

Tensor Tensor::add(const Tensor& o) const { return sorix::add(*this, o); }
Tensor Tensor::sub(const Tensor& o) const { return sorix::sub(*this, o); }
Tensor Tensor::mul(const Tensor& o) const { return sorix::mul(*this, o); }
Tensor Tensor::div(const Tensor& o) const { return sorix::div(*this, o); }
Tensor Tensor::pow(const Tensor& e) const { return sorix::pow(*this, e); }
Tensor Tensor::pow(Scalar e) const { return sorix::pow(*this, e); }
Tensor Tensor::gt(const Tensor& o) const { return sorix::gt(*this, o); }
Tensor Tensor::lt(const Tensor& o) const { return sorix::lt(*this, o); }
Tensor Tensor::ge(const Tensor& o) const { return sorix::ge(*this, o); }
Tensor Tensor::le(const Tensor& o) const { return sorix::le(*this, o); }
Tensor Tensor::eq(const Tensor& o) const { return sorix::eq(*this, o); }
Tensor Tensor::ne(const Tensor& o) const { return sorix::ne(*this, o); }
Tensor Tensor::gt(Scalar o) const { return sorix::gt(*this, detail::scalar_for(*this, o, "gt")); }
Tensor Tensor::lt(Scalar o) const { return sorix::lt(*this, detail::scalar_for(*this, o, "lt")); }
Tensor Tensor::ge(Scalar o) const { return sorix::ge(*this, detail::scalar_for(*this, o, "ge")); }
Tensor Tensor::le(Scalar o) const { return sorix::le(*this, detail::scalar_for(*this, o, "le")); }
Tensor Tensor::eq(Scalar o) const { return sorix::eq(*this, detail::scalar_for(*this, o, "eq")); }
Tensor Tensor::ne(Scalar o) const { return sorix::ne(*this, detail::scalar_for(*this, o, "ne")); }

// In-place: computed out of place (so the graph, when recorded, is the ordinary one), then moved
// into this tensor's storage with the version bumped (detail::assign_inplace).
//
// When the recorded op saves operands for its gradient, it must keep their values from before the
// overwrite (PyTorch's "original self"): mul_/div_ by a tensor that requires grad save self, and an
// operand that aliases self (x.mul_(x)) is saved too, so those get a copy.
namespace {
bool shares_storage(const Tensor& a, const Tensor& b) {
  return a.defined() && b.defined() && a.impl()->storage == b.impl()->storage;
}
std::pair<Tensor, Tensor> inplace_operands(const Tensor& self, const Tensor& o) {
  detail::check_defined(o, "in-place op");
  if (!autograd::needs_grad({&self, &o})) return {self, o};
  return {o.requires_grad() ? self.clone() : self, shares_storage(self, o) ? o.clone() : o};
}
}  // namespace
Tensor& Tensor::add_(const Tensor& o) { detail::check_inplace(*this, "add_"); return detail::assign_inplace(*this, sorix::add(*this, o), "add_"); }
Tensor& Tensor::sub_(const Tensor& o) { detail::check_inplace(*this, "sub_"); return detail::assign_inplace(*this, sorix::sub(*this, o), "sub_"); }
Tensor& Tensor::mul_(const Tensor& o) {
  detail::check_inplace(*this, "mul_");
  auto [x, y] = inplace_operands(*this, o);
  return detail::assign_inplace(*this, sorix::mul(x, y), "mul_");
}
Tensor& Tensor::div_(const Tensor& o) {
  detail::check_inplace(*this, "div_");
  auto [x, y] = inplace_operands(*this, o);
  return detail::assign_inplace(*this, sorix::div(x, y), "div_");
}
Tensor& Tensor::add_(Scalar o) { detail::check_inplace(*this, "add_"); return detail::assign_inplace(*this, *this + o, "add_"); }
Tensor& Tensor::sub_(Scalar o) { detail::check_inplace(*this, "sub_"); return detail::assign_inplace(*this, *this - o, "sub_"); }
Tensor& Tensor::mul_(Scalar o) { detail::check_inplace(*this, "mul_"); return detail::assign_inplace(*this, *this * o, "mul_"); }
Tensor& Tensor::div_(Scalar o) { detail::check_inplace(*this, "div_"); return detail::assign_inplace(*this, *this / o, "div_"); }

Tensor& Tensor::copy_(const Tensor& src) {
  detail::check_inplace(*this, "copy_");
  detail::check_defined(src, "copy_");
  Tensor s = src.dtype() == dtype() ? src : src.to(dtype());
  return detail::assign_inplace(*this, sorix::expand(s, shape()), "copy_");
}

Tensor& Tensor::fill_(Scalar value) {
  detail::check_inplace(*this, "fill_");
  const auto& base = impl()->view_base;
  if (!(autograd::grad_enabled() && (requires_grad() || (base && base->requires_grad)))) {
    // No history to rewrite: fill the memory (through this tensor's strides) directly.
    detail::visit_dtype(dtype(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      kernels::fill_strided(data_ptr<T>(), detail::to_xshape(shape(), "fill_"), detail::to_xshape(stride(), "fill_"),
                            value.to<T>());
    });
    ++impl()->storage->version;
    return *this;
  }
  Tensor filled = full(shape(), value.to_double(), dtype());
  if (autograd::needs_grad({this})) {
    // The new values depend on nothing: the old history gets no gradient.
    record(filled, "FillBackward", {*this}, [](const Tensor&) { return std::vector<Tensor>{Tensor()}; });
  }
  return detail::assign_inplace(*this, filled, "fill_");
}

Tensor& Tensor::zero_() { return fill_(0.0); }

// pow's gradients read the base (and the exponent): with a graph they get copies from before the
// overwrite.
Tensor& Tensor::pow_(Scalar e) {
  detail::check_inplace(*this, "pow_");
  const Tensor x = autograd::needs_grad({this}) ? clone() : *this;
  return detail::assign_inplace(*this, sorix::pow(x, e), "pow_");
}
Tensor& Tensor::pow_(const Tensor& e) {
  detail::check_inplace(*this, "pow_");
  detail::check_defined(e, "pow_");
  const bool graph = autograd::needs_grad({this, &e});
  const Tensor x = graph ? clone() : *this;
  const Tensor y = graph && shares_storage(*this, e) ? e.clone() : e;
  return detail::assign_inplace(*this, sorix::pow(x, y), "pow_");
}

Tensor& Tensor::clamp_(std::optional<Scalar> min, std::optional<Scalar> max) {
  detail::check_inplace(*this, "clamp_");
  // clamp's gradient reads its input: give it the values from before the overwrite.
  const Tensor x = autograd::needs_grad({this}) ? clone() : *this;
  return detail::assign_inplace(*this, sorix::clamp(x, min, max), "clamp_");
}

}  // namespace sorix
