// PyTorch's type promotion (c10's ResultTypeState): which dtype a binary op computes in, and
// whether an in-place op may store its result. Only categories of 0-dim tensors and of numbers
// count, never their values, so a result dtype never depends on data.
#include <limits>
#include <optional>

#include "sorix_autograd/ops_internal.hpp"

namespace sorix {

namespace {

// The three tiers of PyTorch's result_type: tensors with dims, 0-dim tensors, wrapped numbers.
struct ResultTypeState {
  std::optional<Dtype> dim, zero_dim, wrapped;
};

std::optional<Dtype> promote_opt(std::optional<Dtype> a, Dtype b) { return a ? promote(*a, b) : b; }

void update(ResultTypeState& s, const Tensor& t) {
  if (t.dim() == 0) s.zero_dim = promote_opt(s.zero_dim, t.dtype());
  else s.dim = promote_opt(s.dim, t.dtype());
}

// c10::combine_categories: `higher` (the more decisive tier) wins unless `lower` is of a higher
// category (a float below an integer or bool, an integer below bool); then both promote.
std::optional<Dtype> combine(std::optional<Dtype> higher, std::optional<Dtype> lower) {
  if (!higher) return lower;
  if (!lower) return higher;
  if (is_floating(*higher)) return higher;
  if (*higher == Dtype::Bool || is_floating(*lower)) return promote(*higher, *lower);
  return higher;
}

Dtype result_of(const ResultTypeState& s) {
  return combine(s.dim, combine(s.zero_dim, s.wrapped)).value_or(Dtype::Float32);
}

}  // namespace

Dtype result_type(const Tensor& a, const Tensor& b) {
  detail::check_defined(a, "result_type");
  detail::check_defined(b, "result_type");
  ResultTypeState s;
  update(s, a);
  update(s, b);
  return result_of(s);
}

Dtype result_type(const Tensor& a, Scalar b) {
  detail::check_defined(a, "result_type");
  ResultTypeState s;
  update(s, a);
  s.wrapped = default_dtype_of(b.kind());
  return result_of(s);
}

Tensor detail::scalar_for(const Tensor& t, Scalar v, const char* name) {
  detail::check_defined(t, name);
  return scalar_tensor(v, result_type(t, v));
}

void detail::check_fits(Scalar v, Dtype dtype, const char* op) {
  if (is_floating(dtype) || v.is_floating_point()) return;
  const std::int64_t x = v.to_long();
  const bool fits = dtype == Dtype::UInt8   ? x >= -255 && x <= 255
                    : dtype == Dtype::Int32 ? x >= std::numeric_limits<std::int32_t>::min() &&
                                                  x <= std::numeric_limits<std::int32_t>::max()
                    : dtype == Dtype::Bool  ? x == 0 || x == 1
                                            : true;
  check(fits, op, "value ", x, " cannot be converted to ", dtype_name(dtype), " without overflow (as PyTorch)");
}

Tensor detail::floating_input(const Tensor& x, const char* op) {
  detail::check_defined(x, op);
  return is_floating(x.dtype()) ? x : x.to(Dtype::Float32);
}

Tensor scalar_tensor(Scalar value, Dtype dtype) {
  return detail::visit_dtype(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    xt::xarray<T> a = xt::xarray<T>::from_shape({});
    a.data()[0] = value.to<T>();  // narrow integers wrap through int64 (Scalar::to)
    return Tensor(std::move(a));
  });
}

}  // namespace sorix
