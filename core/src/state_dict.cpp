#include "sorix/core/state_dict.hpp"

#include <stdexcept>

namespace sorix {

StateDict::StateDict(std::initializer_list<Entry> entries) {
  for (const auto& [name, t] : entries) insert(name, t);
}

void StateDict::insert(const std::string& name, const Tensor& t) {
  if (find(name) != nullptr) throw std::invalid_argument("StateDict: duplicate entry '" + name + "'");
  entries_.emplace_back(name, t);
}

const Tensor* StateDict::find(const std::string& name) const {
  for (const auto& e : entries_) {
    if (e.first == name) return &e.second;
  }
  return nullptr;
}

Tensor* StateDict::find(const std::string& name) {
  for (auto& e : entries_) {
    if (e.first == name) return &e.second;
  }
  return nullptr;
}

const Tensor& StateDict::at(const std::string& name) const {
  const Tensor* t = find(name);
  if (t == nullptr) throw std::out_of_range("StateDict: no entry named '" + name + "'");
  return *t;
}

StateDict StateDict::with_prefix_removed(const std::string& prefix) const {
  StateDict out;
  for (const auto& [name, t] : entries_) {
    if (name.compare(0, prefix.size(), prefix) == 0) out.insert(name.substr(prefix.size()), t);
  }
  return out;
}

void StateDict::merge(const StateDict& other, const std::string& prefix) {
  for (const auto& [name, t] : other) insert(prefix + name, t);
}

}  // namespace sorix
