// The optimizer base: parameter groups, zero_grad, and the state dict (save, and a load that
// validates everything before changing anything).
#include "sorix/nn/optim/optimizer.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <stdexcept>

#include "sorix_autograd/ops_internal.hpp"

namespace sorix::optim {

OptimizerOptions& OptimizerParamGroup::options() {
  if (!options_) throw std::logic_error("OptimizerParamGroup::options: the group has no options");
  return *options_;
}

const OptimizerOptions& OptimizerParamGroup::options() const {
  if (!options_) throw std::logic_error("OptimizerParamGroup::options: the group has no options");
  return *options_;
}

double Optimizer::checked_lr(double lr, const char* op) {
  check(finite_nonnegative(lr), op, "invalid learning rate ", lr, " (expected a finite value >= 0)");
  return lr;
}

Optimizer::Optimizer(std::vector<OptimizerParamGroup> groups, std::unique_ptr<OptimizerOptions> defaults)
    : defaults_(std::move(defaults)) {
  check(!groups.empty(), "Optimizer", "no parameter groups given");
  for (OptimizerParamGroup& g : groups) append_group(std::move(g), "Optimizer");
}

void Optimizer::append_group(OptimizerParamGroup group, const char* op) {
  const std::size_t k = groups_.size();
  check(!group.params().empty(), op, "parameter group ", k, " is empty");
  std::set<const void*> seen;
  for (const Tensor& p : params_) seen.insert(p.impl());
  for (std::size_t j = 0; j < group.params().size(); ++j) {
    const Tensor& p = group.params()[j];
    const std::size_t i = params_.size() + j;
    check(p.defined(), op, "parameter ", i, " is an undefined tensor");
    check(is_floating(p.dtype()), op, "parameter ", i, " has dtype ", dtype_name(p.dtype()),
          "; expected float32 or float64");
    // The update kernels run over flat memory, in place.
    check(p.is_contiguous(), op, "parameter ", i, " (shape ", shape_string(p.shape()), ", strides ",
          shape_string(p.stride()), ") is not contiguous; pass a contiguous tensor");
    check(seen.insert(p.impl()).second, op, "parameter ", j, " of group ", k,
          " (shape ", shape_string(p.shape()), ") appears in more than one parameter group (or twice)");
  }
  if (!group.has_options()) group.set_options(defaults_->clone());
  for (const Tensor& p : group.params()) {
    params_.push_back(p);
    group_of_.push_back(k);
    state_.emplace_back();
  }
  groups_.push_back(std::move(group));
  initial_lrs_.emplace_back();
}

void Optimizer::check_groups() const {
  check_options(*defaults_, name());
  for (const OptimizerParamGroup& g : groups_) check_options(g.options(), name());
}

void Optimizer::add_param_group(const OptimizerParamGroup& group) {
  const std::string op = std::string(name()) + "::add_param_group";
  if (group.has_options()) check_options(group.options(), op.c_str());
  append_group(group, op.c_str());
}

void Optimizer::set_lr(double lr) {
  const std::string op = std::string(name()) + "::set_lr";
  checked_lr(lr, op.c_str());
  for (OptimizerParamGroup& g : groups_) g.options().set_lr(lr);
}

void Optimizer::set_group_lr(std::size_t k, double lr) {
  const std::string op = std::string(name()) + "::set_group_lr";
  checked_lr(lr, op.c_str());
  check<std::out_of_range>(k < groups_.size(), op.c_str(), "parameter group ", k, " does not exist (this optimizer has ",
                           groups_.size(), " groups)");
  groups_[k].options().set_lr(lr);
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
  const std::size_t n = buffer_names(groups_[group_of_[i]].options()).size();
  for (std::size_t k = 0; k < n; ++k) out.push_back(zeros_like(params_[i]));
  return out;
}

namespace {

// "group." with one group (the format before groups existed), "groups.<k>." with several.
std::string group_prefix(std::size_t k, bool several) {
  return several ? "groups." + std::to_string(k) + "." : std::string("group.");
}

}  // namespace

StateDict Optimizer::state_dict() const {
  StateDict sd;
  const bool several = groups_.size() > 1;
  sd.insert("num_params", scalar_tensor(static_cast<double>(params_.size()), Dtype::Int64));
  if (several) sd.insert("num_groups", scalar_tensor(static_cast<double>(groups_.size()), Dtype::Int64));
  for (std::size_t k = 0; k < groups_.size(); ++k) {
    const std::string prefix = group_prefix(k, several);
    if (several) {
      sd.insert(prefix + "num_params", scalar_tensor(static_cast<double>(groups_[k].params().size()), Dtype::Int64));
    }
    for (const HyperParam& h : hyper_params(groups_[k].options())) {
      sd.insert(prefix + h.name, scalar_tensor(h.value, Dtype::Float64));
    }
  }
  for (std::size_t i = 0; i < state_.size(); ++i) {
    if (!state_[i].initialized()) continue;
    const std::vector<std::string> names = buffer_names(groups_[group_of_[i]].options());
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
  std::set<std::string> known;
  auto count_entry = [&](const std::string& key, std::size_t want, const char* what) {
    known.insert(key);
    const Tensor* t = sd.find(key);
    check(t != nullptr, op, "entry '", key, "' is missing");
    check(is_scalar(*t, Dtype::Int64), op, "entry '", key, "' must be an int64 0-dim tensor");
    check(t->item<std::int64_t>() == static_cast<std::int64_t>(want), op, "entry '", key, "' is ",
          t->item<std::int64_t>(), " but this optimizer has ", want, " ", what);
  };
  // 1. Counts: parameters, groups, parameters per group.
  count_entry("num_params", params_.size(), "parameters");
  const bool several = sd.find("num_groups") != nullptr;
  check(several || groups_.size() == 1, op, "the state has one parameter group but this optimizer has ",
        groups_.size(), " (entry 'num_groups' is missing)");
  if (several) count_entry("num_groups", groups_.size(), "parameter groups");
  // 2. Hyper-parameters, group by group, into copies of the options (checked there).
  std::vector<std::unique_ptr<OptimizerOptions>> new_options;
  for (std::size_t k = 0; k < groups_.size(); ++k) {
    const std::string prefix = group_prefix(k, several);
    if (several) count_entry(prefix + "num_params", groups_[k].params().size(), "parameters in this group");
    const std::vector<HyperParam> hps = hyper_params(groups_[k].options());
    std::vector<double> values;
    for (const HyperParam& h : hps) {
      const std::string key = prefix + h.name;
      known.insert(key);
      const Tensor* t = sd.find(key);
      check(t != nullptr, op, "entry '", key, "' is missing");
      check(is_scalar(*t, Dtype::Float64), op, "entry '", key, "' must be a float64 0-dim tensor, got ",
            dtype_name(t->dtype()), " of shape ", t->shape());
      const double v = t->item<double>();
      if (h.structural) {
        check(v == h.value, op, "entry '", key, "' is ", v, " but this optimizer has ", h.value,
              " (it decides which state buffers exist, so it must match)");
      }
      values.push_back(v);
    }
    std::unique_ptr<OptimizerOptions> o = groups_[k].options().clone();
    set_hyper_params(*o, values);
    // The loaded values must be valid options (an lr of NaN, a beta of 5).
    check_options(*o, op);
    new_options.push_back(std::move(o));
  }
  // 3. Per-parameter state: names, then completeness, shapes and dtypes.
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
      }
    }
    check(ok, op, "unexpected entry '", key, "' (expected num_params, group.<hyper-parameter>, num_groups and ",
          "groups.<k>.<hyper-parameter> with several groups, or state.<i>.step / state.<i>.<buffer>)");
    check<std::out_of_range>(idx < params_.size(), op, "entry '", key, "' refers to parameter ", idx,
                             " but this optimizer has ", params_.size(), " parameters");
    const std::vector<std::string> names = buffer_names(*new_options[group_of_[idx]]);
    check(field == "step" || std::find(names.begin(), names.end(), field) != names.end(), op, "unexpected entry '",
          key, "' (parameter ", idx, " has buffers ", names, ")");
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
    for (const std::string& name : buffer_names(*new_options[group_of_[idx]])) {
      auto it = fields.find(name);
      check(it != fields.end(), op, "entry '", prefix, name, "' is missing");
      const Tensor& b = it->second;
      check(b.defined() && b.shape() == params_[idx].shape() && b.dtype() == params_[idx].dtype(), op, "entry '",
            prefix, name, "' has shape ", b.shape(), ", ", dtype_name(b.dtype()), "; parameter ", idx, " is ",
            params_[idx].shape(), ", ", dtype_name(params_[idx].dtype()));
      new_state[idx].buffers.push_back(b.detach().clone());
    }
  }
  // 4. Everything checked out: apply.
  for (std::size_t k = 0; k < groups_.size(); ++k) groups_[k].set_options(std::move(new_options[k]));
  state_ = std::move(new_state);
}

}  // namespace sorix::optim
