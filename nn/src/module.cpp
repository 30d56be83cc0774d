#include "sorix/nn/module.hpp"

#include <ostream>
#include <sstream>
#include <stdexcept>

#include "sorix_core/internal.hpp"
#include "sorix/autograd/grad_mode.hpp"

namespace sorix::nn {

Tensor Module::forward(const Tensor&) {
  throw std::logic_error(name() + ": forward() is not implemented; override it in your Module subclass");
}

namespace {
void check_name(const std::string& owner, const std::string& name, const char* what) {
  check(!name.empty() && name.find('.') == std::string::npos, "register", owner, ": invalid ", what,
        " name '", name, "' (must be non-empty and contain no '.')");
}
}  // namespace

Tensor& Module::register_parameter(const std::string& name, Tensor t, bool requires_grad) {
  check_name(this->name(), name, "parameter");
  detail::check_defined(t, "register_parameter");
  check(find_local(name) == nullptr, "register_parameter", this->name(), ": '", name, "' is already registered");
  if (requires_grad) t.requires_grad_(true);
  parameters_.emplace_back(name, t);
  return parameters_.back().second;
}

Tensor& Module::register_buffer(const std::string& name, Tensor t) {
  check_name(this->name(), name, "buffer");
  detail::check_defined(t, "register_buffer");
  check(find_local(name) == nullptr, "register_buffer", this->name(), ": '", name, "' is already registered");
  buffers_.emplace_back(name, t);
  return buffers_.back().second;
}

std::shared_ptr<Module> Module::register_module(const std::string& name, std::shared_ptr<Module> m) {
  check_name(this->name(), name, "submodule");
  check(m != nullptr, "register_module", this->name(), ": submodule '", name, "' is null");
  for (const auto& c : children_) {
    check(c.first != name, "register_module", this->name(), ": '", name, "' is already registered");
  }
  children_.emplace_back(name, m);
  return m;
}

Tensor* Module::find_local(const std::string& name) {
  for (auto& p : parameters_) {
    if (p.first == name) return &p.second;
  }
  for (auto& b : buffers_) {
    if (b.first == name) return &b.second;
  }
  return nullptr;
}

void Module::collect(NamedTensors& out, const std::string& prefix, bool params, bool recurse) const {
  for (const auto& [n, t] : params ? parameters_ : buffers_) out.emplace_back(prefix + n, t);
  if (!recurse) return;
  for (const auto& [n, c] : children_) c->collect(out, prefix + n + ".", params, true);
}

Module::NamedTensors Module::named_parameters(bool recurse) const {
  NamedTensors out;
  collect(out, "", true, recurse);
  return out;
}

std::vector<Tensor> Module::parameters(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& [n, t] : named_parameters(recurse)) out.push_back(t);
  return out;
}

Module::NamedTensors Module::named_buffers(bool recurse) const {
  NamedTensors out;
  collect(out, "", false, recurse);
  return out;
}

std::vector<Tensor> Module::buffers(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& [n, t] : named_buffers(recurse)) out.push_back(t);
  return out;
}

void Module::to(Dtype dtype) {
  check(is_floating(dtype), "Module::to", name(), ": expected float32 or float64, got ", dtype_name(dtype));
  NoGradGuard no_grad;
  for (Module* m : modules(true)) {
    for (auto* list : {&m->parameters_, &m->buffers_}) {
      for (auto& [n, t] : *list) {
        if (!is_floating(t.dtype()) || t.dtype() == dtype) continue;
        // Swap the storage under the same TensorImpl, so every handle on it follows.
        const Tensor c = t.detach().to(dtype).contiguous();
        TensorImpl* impl = t.impl();
        impl->storage = c.impl()->storage;
        impl->set_geometry(c.impl()->sizes, c.impl()->strides, c.impl()->offset);
        impl->grad.reset();
      }
    }
  }
}

std::vector<Module*> Module::modules(bool include_self) {
  std::vector<Module*> out;
  if (include_self) out.push_back(this);
  for (const auto& [n, child] : children_) {
    for (Module* m : child->modules(true)) out.push_back(m);
  }
  return out;
}

void Module::apply(const std::function<void(Module&)>& fn) {
  for (Module* m : modules(true)) fn(*m);
}

std::vector<std::shared_ptr<Module>> Module::children() const {
  std::vector<std::shared_ptr<Module>> out;
  for (const auto& c : children_) out.push_back(c.second);
  return out;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& c : children_) c.second->train(on);
}

void Module::zero_grad() {
  for (Tensor& p : parameters()) p.set_grad(Tensor());
}

StateDict Module::state_dict() const {
  StateDict out;
  for (const auto& [n, t] : named_parameters()) out.insert(n, t.detach());
  for (const auto& [n, t] : named_buffers()) out.insert(n, t.detach());
  return out;
}

void Module::load_state_dict(const StateDict& state, bool strict) {
  NamedTensors own = named_parameters();
  NamedTensors bufs = named_buffers();
  own.insert(own.end(), bufs.begin(), bufs.end());
  std::vector<std::string> missing, unexpected, mismatched;
  for (const auto& [n, t] : own) {
    const Tensor* src = state.find(n);
    if (src == nullptr) {
      missing.push_back(n);
    } else if (src->shape() != t.shape() || src->dtype() != t.dtype()) {
      mismatched.push_back(n + " (checkpoint " + dtype_name(src->dtype()) + shape_string(src->shape()) +
                           ", model " + dtype_name(t.dtype()) + shape_string(t.shape()) + ")");
    }
  }
  for (const auto& [n, t] : state) {
    bool known = false;
    for (const auto& o : own) known = known || o.first == n;
    if (!known) unexpected.push_back(n);
  }
  if (!mismatched.empty() || (strict && (!missing.empty() || !unexpected.empty()))) {
    std::ostringstream os;
    os << "load_state_dict: " << name() << ": state does not match the module (nothing was changed).";
    if (!missing.empty()) os << " Missing: " << error_message("", missing).substr(2) << ".";
    if (!unexpected.empty()) os << " Unexpected: " << error_message("", unexpected).substr(2) << ".";
    if (!mismatched.empty()) os << " Mismatched: " << error_message("", mismatched).substr(2) << ".";
    throw std::invalid_argument(os.str());
  }
  NoGradGuard no_grad;
  for (auto& [n, t] : own) {
    if (const Tensor* src = state.find(n)) {
      Tensor target = t.detach();  // shares storage: the module sees the new values
      target.copy_(*src);
    }
  }
}

void Module::pretty_print(std::ostream& os, int indent) const {
  os << name() << "(" << extra_repr();
  if (!children_.empty()) {
    os << "\n";
    for (const auto& [n, c] : children_) {
      os << std::string(static_cast<std::size_t>(indent + 2), ' ') << "(" << n << "): ";
      c->pretty_print(os, indent + 2);
      os << "\n";
    }
    os << std::string(static_cast<std::size_t>(indent), ' ');
  }
  os << ")";
}

std::ostream& operator<<(std::ostream& os, const Module& m) {
  m.pretty_print(os);
  return os;
}

}  // namespace sorix::nn
