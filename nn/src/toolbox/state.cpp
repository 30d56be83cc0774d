// Strict StateDict reading for the toolbox (see state.hpp).
#include "toolbox/state.hpp"

#include <string>
#include <vector>

#include "sorix/autograd/ops.hpp"
#include "sorix/core/error.hpp"

namespace sorix::toolbox_detail {

Tensor int64_scalar(std::int64_t v) { return scalar_tensor(static_cast<double>(v), Dtype::Int64).clone(); }
Tensor float64_scalar(double v) { return scalar_tensor(v, Dtype::Float64).clone(); }
Tensor stored(const Tensor& t) { return t.detach().clone(); }

Tensor StateReader::tensor(const std::string& key, Dtype dtype, const Shape& shape, bool check_shape) {
  const Tensor* t = state_.find(key);
  check(t != nullptr, where_.c_str(), "the state has no entry '", key, "'");
  check(t->defined() && t->dtype() == dtype, where_.c_str(), "entry '", key, "' must be ", dtype_name(dtype), ", got ",
        t->defined() ? dtype_name(t->dtype()) : std::string("an undefined tensor"));
  if (check_shape) {
    bool ok = t->dim() == static_cast<std::int64_t>(shape.size());
    for (std::size_t i = 0; ok && i < shape.size(); ++i) ok = shape[i] < 0 || t->size(static_cast<std::int64_t>(i)) == shape[i];
    check(ok, where_.c_str(), "entry '", key, "' has shape ", shape_string(t->shape()), ", expected ", shape_string(shape),
          " (-1: any size)");
  }
  used_.insert(key);
  return t->detach().clone();
}

std::int64_t StateReader::int64(const std::string& key) {
  return tensor(key, Dtype::Int64, Shape{}, true).item<std::int64_t>();
}

void StateReader::expect(const std::string& key, std::int64_t value) {
  const std::int64_t saved = int64(key);
  check(saved == value, where_.c_str(), "the state was saved with ", key, "=", saved, ", but this object has ", key, "=",
        value, "; build it with the same options, then load");
}

void StateReader::expect(const std::string& key, double value) {
  const double saved = tensor(key, Dtype::Float64, Shape{}, true).item<double>();
  check(saved == value, where_.c_str(), "the state was saved with ", key, "=", saved, ", but this object has ", key, "=",
        value, "; build it with the same options, then load");
}

void StateReader::use_prefix(const std::string& prefix) {
  for (const auto& [name, t] : state_) {
    if (name.rfind(prefix, 0) == 0) used_.insert(name);
  }
}

void StateReader::finish() const {
  std::vector<std::string> extra;
  for (const auto& [name, t] : state_) {
    if (used_.count(name) == 0) extra.push_back(name);
  }
  if (!extra.empty()) {
    std::string list;
    for (const auto& e : extra) list += (list.empty() ? "'" : ", '") + e + "'";
    throw std::invalid_argument(error_message(where_.c_str(), "unexpected entries in the state: ", list));
  }
}

}  // namespace sorix::toolbox_detail
