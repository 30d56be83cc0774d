// Tensor factories: from values, filled, ranges, identity, *_like.
#include <algorithm>
#include <cmath>

#include "sorix_core/internal.hpp"
#include "sorix/parallel/parallel.hpp"

namespace sorix {

using detail::XShape;

namespace {

template <class T, class V>
Tensor from_values(const V* values, const XShape& shape, bool requires_grad) {
  auto a = xt::xarray<T>::from_shape(shape);
  std::size_t n = a.size();
  for (std::size_t i = 0; i < n; ++i) a.data()[i] = detail::convert_element<T>(values[i]);
  return Tensor(std::move(a), requires_grad);
}

template <class T, class V>
Tensor from_rows(std::initializer_list<std::initializer_list<V>> rows, bool requires_grad) {
  const std::size_t r = rows.size();
  const std::size_t c = r ? rows.begin()->size() : 0;
  std::vector<V> flat;
  flat.reserve(r * c);
  std::size_t i = 0;
  for (const auto& row : rows) {
    check(row.size() == c, "tensor", "row ", i, " has ", row.size(), " values, expected ", c,
          " (all rows of a 2-D tensor must have the same length)");
    flat.insert(flat.end(), row.begin(), row.end());
    ++i;
  }
  return from_values<T>(flat.data(), XShape{r, c}, requires_grad);
}

// Fills every element with `value` as fixed parallel chunks.
template <class T>
void fill_all(T* p, std::size_t n, T value) {
  parallel::parallel_for(n, parallel::kChunkSize,
                         [&](std::size_t b, std::size_t e) { std::fill(p + b, p + e, value); });
}

Tensor filled(const Shape& shape, double value, TensorOptions options, const char* op) {
  Tensor t = detail::make_empty(options.dtype_, detail::to_xshape(shape, op));
  detail::visit_dtype(options.dtype_, [&](auto tag) {
    using T = typename decltype(tag)::type;
    fill_all(detail::flat<T>(t), static_cast<std::size_t>(t.numel()), detail::convert_element<T>(value));
  });
  if (options.requires_grad_) t.requires_grad_(true);
  return t;
}

}  // namespace

Tensor tensor(std::initializer_list<float> v, bool rg) { return from_values<float>(v.begin(), {v.size()}, rg); }
Tensor tensor(std::initializer_list<double> v, bool rg) { return from_values<double>(v.begin(), {v.size()}, rg); }
Tensor tensor(std::initializer_list<int> v, bool rg) {
  return from_values<std::int64_t>(v.begin(), {v.size()}, rg);
}
Tensor tensor(std::initializer_list<std::int64_t> v, bool rg) {
  return from_values<std::int64_t>(v.begin(), {v.size()}, rg);
}
Tensor tensor(std::initializer_list<std::initializer_list<float>> rows, bool rg) { return from_rows<float>(rows, rg); }
Tensor tensor(std::initializer_list<std::initializer_list<double>> rows, bool rg) { return from_rows<double>(rows, rg); }
Tensor tensor(std::initializer_list<std::initializer_list<int>> rows, bool rg) {
  return from_rows<std::int64_t>(rows, rg);
}

Tensor tensor(const std::vector<double>& values, const Shape& shape, TensorOptions options) {
  const XShape xs = detail::to_xshape(shape, "tensor");
  check(detail::numel_of(shape) == values.size(), "tensor", values.size(), " values do not fill shape ", shape);
  Tensor t = detail::visit_dtype(options.dtype_, [&](auto tag) {
    using T = typename decltype(tag)::type;
    return from_values<T>(values.data(), xs, false);
  });
  if (options.requires_grad_) t.requires_grad_(true);
  return t;
}

Tensor tensor(const xt::xarray<float>& a, bool rg) { return Tensor(xt::xarray<float>(a), rg); }
Tensor tensor(const xt::xarray<double>& a, bool rg) { return Tensor(xt::xarray<double>(a), rg); }
Tensor tensor(const xt::xarray<std::int64_t>& a, bool rg) { return Tensor(xt::xarray<std::int64_t>(a), rg); }
Tensor tensor(const xt::xarray<bool>& a) { return Tensor(xt::xarray<bool>(a)); }
Tensor tensor(const xt::xarray<std::uint8_t>& a) { return Tensor(xt::xarray<std::uint8_t>(a)); }
Tensor tensor(const xt::xarray<std::int32_t>& a) { return Tensor(xt::xarray<std::int32_t>(a)); }
Tensor tensor(std::initializer_list<bool> v) { return from_values<bool>(v.begin(), {v.size()}, false); }

Tensor empty(const Shape& shape, TensorOptions options) {
  Tensor t = detail::make_empty(options.dtype_, detail::to_xshape(shape, "empty"));
  if (options.requires_grad_) t.requires_grad_(true);
  return t;
}
Tensor zeros(const Shape& shape, TensorOptions options) { return filled(shape, 0.0, options, "zeros"); }
Tensor ones(const Shape& shape, TensorOptions options) { return filled(shape, 1.0, options, "ones"); }
Tensor full(const Shape& shape, double value, TensorOptions options) { return filled(shape, value, options, "full"); }

Tensor arange(double end, TensorOptions options) { return arange(0.0, end, 1.0, options); }

Tensor arange(double start, double end, double step, TensorOptions options) {
  check(step != 0.0 && std::isfinite(step), "arange", "step must be finite and non-zero, got ", step);
  check(std::isfinite(start) && std::isfinite(end), "arange", "bounds must be finite, got start=", start,
        " end=", end);
  check((end - start) / step >= 0 || start == end, "arange", "step ", step, " moves away from end: start=",
        start, " end=", end);
  // The count is checked as a double first: converting a count beyond int64 is undefined.
  const double count = std::max(0.0, std::ceil((end - start) / step));
  check(count <= 0x1p60, "arange", "start=", start, " end=", end, " step=", step, " gives ", count,
        " elements, more than 2^60 (the element count overflows)");
  const auto n = static_cast<std::int64_t>(count);
  Tensor t = detail::make_empty(options.dtype_, {static_cast<std::size_t>(n)});
  detail::visit_dtype(options.dtype_, [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* p = detail::flat<T>(t);
    for (std::int64_t i = 0; i < n; ++i) p[i] = detail::convert_element<T>(start + static_cast<double>(i) * step);
  });
  if (options.requires_grad_) t.requires_grad_(true);
  return t;
}

Tensor linspace(double start, double end, std::int64_t steps, TensorOptions options) {
  check(steps >= 0, "linspace", "number of steps must be non-negative, got ", steps);
  detail::check_numel({steps}, "linspace");
  Tensor t = detail::make_empty(options.dtype_, {static_cast<std::size_t>(steps)});
  const double step = steps > 1 ? (end - start) / static_cast<double>(steps - 1) : 0.0;
  detail::visit_dtype(options.dtype_, [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* p = detail::flat<T>(t);
    // Fill from both ends (as PyTorch) so the last element is exactly `end`.
    // (steps == 1 gives [start], as PyTorch: the lower half must hold that one element.)
    const std::int64_t half = steps == 1 ? 1 : steps / 2;
    for (std::int64_t i = 0; i < steps; ++i) {
      p[i] = i < half ? detail::convert_element<T>(start + step * static_cast<double>(i))
                      : detail::convert_element<T>(end - step * static_cast<double>(steps - 1 - i));
    }
  });
  if (options.requires_grad_) t.requires_grad_(true);
  return t;
}

Tensor eye(std::int64_t n, TensorOptions options) { return eye(n, n, options); }

Tensor eye(std::int64_t n, std::int64_t m, TensorOptions options) {
  Tensor t = zeros({n, m}, options.dtype_);
  detail::visit_dtype(options.dtype_, [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* p = detail::flat<T>(t);
    for (std::int64_t i = 0; i < std::min(n, m); ++i) p[i * m + i] = T(1);
  });
  if (options.requires_grad_) t.requires_grad_(true);
  return t;
}

Tensor empty_like(const Tensor& like) { return empty(like.shape(), like.dtype()); }
Tensor zeros_like(const Tensor& like) { return zeros(like.shape(), like.dtype()); }
Tensor ones_like(const Tensor& like) { return ones(like.shape(), like.dtype()); }
Tensor full_like(const Tensor& like, double value) { return full(like.shape(), value, like.dtype()); }
Tensor empty_like(const Tensor& like, TensorOptions o) { return empty(like.shape(), o); }
Tensor zeros_like(const Tensor& like, TensorOptions o) { return zeros(like.shape(), o); }
Tensor ones_like(const Tensor& like, TensorOptions o) { return ones(like.shape(), o); }
Tensor full_like(const Tensor& like, double value, TensorOptions o) { return full(like.shape(), value, o); }

}  // namespace sorix
