// Input checks shared by the toolbox (see inputs.hpp).
#include "toolbox/inputs.hpp"

#include <cmath>
#include <sstream>

#include "sorix/core/dtype.hpp"

namespace sorix::toolbox_detail {

void check_defined(const Tensor& t, const char* fn, const char* what) {
  check(t.defined(), fn, what, " is an undefined tensor");
}

namespace {
template <class T>
void scan_finite(const Tensor& c, const char* fn, const char* what) {
  const T* p = c.data_ptr<T>();
  for (std::int64_t i = 0; i < c.numel(); ++i) {
    if (!std::isfinite(p[i])) {
      std::ostringstream v;
      v << p[i];
      throw std::invalid_argument(error_message(fn, what, " contains ", std::isnan(p[i]) ? "NaN" : "infinity",
                                                " (element ", i, " of shape ", shape_string(c.shape()), " is ",
                                                v.str(), "); remove or impute it first"));
    }
  }
}
}  // namespace

void check_finite(const Tensor& t, const char* fn, const char* what) {
  check_defined(t, fn, what);
  if (!is_floating(t.dtype())) return;  // integers and bool are always finite
  const Tensor c = t.contiguous();
  if (c.dtype() == Dtype::Float32) scan_finite<float>(c, fn, what);
  else scan_finite<double>(c, fn, what);
}

Tensor to_float64(const Tensor& t, const char* fn, const char* what) {
  check_finite(t, fn, what);
  return t.to(Dtype::Float64).contiguous().detach();
}

std::vector<std::int64_t> int64_values(const Tensor& t, const char* fn, const char* what) {
  check_defined(t, fn, what);
  check(t.dtype() == Dtype::Int64, fn, what, " must hold int64 class labels, got ", dtype_name(t.dtype()));
  check(t.dim() == 1, fn, what, " must be 1-D, got shape ", shape_string(t.shape()));
  const Tensor c = t.contiguous();
  const std::int64_t* p = c.data_ptr<std::int64_t>();
  return std::vector<std::int64_t>(p, p + c.numel());
}

std::vector<double> float64_values(const Tensor& t) {
  const Tensor c = t.to(Dtype::Float64).contiguous();
  const double* p = c.data_ptr<double>();
  return std::vector<double>(p, p + c.numel());
}

void check_matrix(const Tensor& t, const char* fn, const char* what) {
  check_defined(t, fn, what);
  check(t.dim() == 2, fn, what, " must be 2-D [samples, features], got shape ", shape_string(t.shape()));
  check(t.size(0) > 0, fn, what, " is empty (0 samples, shape ", shape_string(t.shape()), ")");
  check(t.size(1) > 0, fn, what, " has no features (shape ", shape_string(t.shape()), ")");
}

std::string list_string(const std::vector<std::int64_t>& v) {
  std::ostringstream os;
  os << '[';
  for (std::size_t i = 0; i < v.size(); ++i) os << (i ? ", " : "") << v[i];
  os << ']';
  return os.str();
}

}  // namespace sorix::toolbox_detail
