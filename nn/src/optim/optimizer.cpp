// The optimizer base: parameter bookkeeping, zero_grad, and the state dict (save, and a load
// that validates everything before changing anything).
#include "sorix/nn/optim/optimizer.hpp"

#include <algorithm>
#include <map>
#include <set>

#include "autograd/src/ops_internal.hpp"

namespace sorix::optim {

double Optimizer::checked_lr(double lr, const char* op) {
  check(finite_nonnegative(lr), op, "invalid learning rate ", lr, " (expected a finite value >= 0)");
  return lr;
}

Optimizer::Optimizer(std::vector<Tensor> params) : params_(std::move(params)), state_(params_.size()) {
  for (std::size_t i = 0; i < params_.size(); ++i) {
    check(params_[i].defined(), "Optimizer", "parameter ", i, " is an undefined tensor");
    check(is_floating(params_[i].dtype()), "Optimizer", "parameter ", i, " has dtype ",
          dtype_name(params_[i].dtype()), "; expected float32 or float64");
    // The update kernels run over flat memory, in place.
    check(params_[i].is_contiguous(), "Optimizer", "parameter ", i, " (shape ", shape_string(params_[i].shape()),
          ", strides ", shape_string(params_[i].stride()), ") is not contiguous; pass a contiguous tensor");
  }
}

void Optimizer::zero_grad() {
  for (Tensor& p : params_) p.impl()->grad.reset();
}

bool Optimizer::has_grad(std::size_t i, const char* op) const {
  const Tensor g = params_[i].grad();
  if (!g.defined()) return false;
  check(g.shape() == params_[i].shape() && g.dtype() == params_[i].dtype(), op, "parameter ", i, " (shape ",
        params_[i].shape(), ", ", dtype_name(params_[i].dtype()), ") has a gradient of shape ", g.shape(), ", ",
        dtype_name(g.dtype()));
  return true;
}

void Optimizer::bump_version(std::size_t i) { ++params_[i].impl()->storage->version; }

std::vector<Tensor> Optimizer::zero_buffers(std::size_t i) const {
  std::vector<Tensor> out;
  for (std::size_t k = 0; k < buffer_names().size(); ++k) out.push_back(zeros_like(params_[i]));
  return out;
}

StateDict Optimizer::state_dict() const {
  StateDict sd;
  sd.insert("num_params", scalar_tensor(static_cast<double>(params_.size()), Dtype::Int64));
  for (const HyperParam& h : const_cast<Optimizer*>(this)->hyper_params()) {
    sd.insert("group." + h.name, scalar_tensor(*h.value, Dtype::Float64));
  }
  const std::vector<std::string> names = buffer_names();
  for (std::size_t i = 0; i < state_.size(); ++i) {
    if (!state_[i].initialized()) continue;
    const std::string prefix = "state." + std::to_string(i) + ".";
    xt::xarray<std::int64_t> step = xt::xarray<std::int64_t>::from_shape({});
    step.data()[0] = state_[i].step;
    sd.insert(prefix + "step", Tensor(std::move(step)));
    for (std::size_t k = 0; k < names.size(); ++k) sd.insert(prefix + names[k], state_[i].buffers[k].detach().clone());
  }
  return sd;
}

void Optimizer::load_state_dict(const StateDict& sd) {
  const char* op = "Optimizer::load_state_dict";
  auto is_scalar = [](const Tensor& t, Dtype d) { return t.defined() && t.dtype() == d && t.dim() == 0; };
  // 1. Parameter count.
  const Tensor* count = sd.find("num_params");
  check(count != nullptr, op, "entry 'num_params' is missing");
  check(is_scalar(*count, Dtype::Int64), op, "entry 'num_params' must be an int64 0-dim tensor");
  check(count->item<std::int64_t>() == static_cast<std::int64_t>(params_.size()), op, "entry 'num_params' is ",
        count->item<std::int64_t>(), " but this optimizer has ", params_.size(), " parameters");
  // 2. Hyper-parameters.
  std::vector<HyperParam> hps = hyper_params();
  std::vector<double> new_values;
  std::set<std::string> known{"num_params"};
  for (const HyperParam& h : hps) {
    const std::string key = "group." + h.name;
    known.insert(key);
    const Tensor* t = sd.find(key);
    check(t != nullptr, op, "entry '", key, "' is missing");
    check(is_scalar(*t, Dtype::Float64), op, "entry '", key, "' must be a float64 0-dim tensor, got ",
          dtype_name(t->dtype()), " of shape ", t->shape());
    const double v = t->item<double>();
    if (h.structural) {
      check(v == *h.value, op, "entry '", key, "' is ", v, " but this optimizer has ", *h.value,
            " (it decides which state buffers exist, so it must match)");
    }
    new_values.push_back(v);
  }
  // 3. Per-parameter state: names, then completeness, shapes and dtypes.
  const std::vector<std::string> names = buffer_names();
  std::map<std::size_t, std::map<std::string, Tensor>> found;
  for (const auto& [key, t] : sd) {
    if (known.count(key)) continue;
    bool ok = key.rfind("state.", 0) == 0;
    std::size_t idx = 0, pos = 6;
    std::string field;
    if (ok) {
      const std::size_t dot = key.find('.', pos);
      const std::string num = dot == std::string::npos ? "" : key.substr(pos, dot - pos);
      ok = !num.empty() && num.size() < 10 && std::all_of(num.begin(), num.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
      if (ok) {
        idx = static_cast<std::size_t>(std::stoull(num));
        field = key.substr(dot + 1);
        ok = field == "step" || std::find(names.begin(), names.end(), field) != names.end();
      }
    }
    check(ok, op, "unexpected entry '", key, "' (expected num_params, group.<hyper-parameter> or state.<i>.step / ",
          "state.<i>.<buffer> with buffers ", names, ")");
    check<std::out_of_range>(idx < params_.size(), op, "entry '", key, "' refers to parameter ", idx,
                             " but this optimizer has ", params_.size(), " parameters");
    found[idx][field] = t;
  }
  std::vector<ParamState> new_state(params_.size());
  for (auto& [idx, fields] : found) {
    const std::string prefix = "state." + std::to_string(idx) + ".";
    check(fields.count("step"), op, "entry '", prefix, "step' is missing");
    const Tensor& step = fields["step"];
    check(is_scalar(step, Dtype::Int64) && step.item<std::int64_t>() > 0, op, "entry '", prefix,
          "step' must be a positive int64 0-dim tensor");
    new_state[idx].step = step.item<std::int64_t>();
    for (const std::string& name : names) {
      auto it = fields.find(name);
      check(it != fields.end(), op, "entry '", prefix, name, "' is missing");
      const Tensor& b = it->second;
      check(b.defined() && b.shape() == params_[idx].shape() && b.dtype() == params_[idx].dtype(), op, "entry '",
            prefix, name, "' has shape ", b.shape(), ", ", dtype_name(b.dtype()), "; parameter ", idx, " is ",
            params_[idx].shape(), ", ", dtype_name(params_[idx].dtype()));
      new_state[idx].buffers.push_back(b.detach().clone());
    }
  }
  // 4. The loaded values must be valid options (an lr of NaN, a beta of 5): checked in place,
  // put back if they are not.
  std::vector<double> old_values;
  for (std::size_t k = 0; k < hps.size(); ++k) {
    old_values.push_back(*hps[k].value);
    *hps[k].value = new_values[k];
  }
  try {
    check_options(op);
  } catch (...) {
    for (std::size_t k = 0; k < hps.size(); ++k) *hps[k].value = old_values[k];
    throw;
  }
  // 5. Everything checked out: apply.
  state_ = std::move(new_state);
}

}  // namespace sorix::optim
