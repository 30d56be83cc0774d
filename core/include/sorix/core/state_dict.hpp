#pragma once
// An ordered list of named tensors: a module's parameters and buffers, an optimizer's state, a
// generator's state. Order is insertion order (deterministic); names are unique.
#include <string>
#include <utility>
#include <vector>

#include "sorix/core/tensor.hpp"

namespace sorix {

class StateDict {
 public:
  using Entry = std::pair<std::string, Tensor>;
  StateDict() = default;
  StateDict(std::initializer_list<Entry> entries);

  /// Adds an entry; a duplicate name throws std::invalid_argument.
  void insert(const std::string& name, const Tensor& t);
  /// nullptr when absent.
  const Tensor* find(const std::string& name) const;
  Tensor* find(const std::string& name);
  /// Throws std::out_of_range naming the key when absent.
  const Tensor& at(const std::string& name) const;
  bool contains(const std::string& name) const { return find(name) != nullptr; }
  std::size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  std::vector<Entry>::const_iterator begin() const { return entries_.begin(); }
  std::vector<Entry>::const_iterator end() const { return entries_.end(); }
  const std::vector<Entry>& entries() const { return entries_; }
  /// Entries whose name starts with prefix, with the prefix removed.
  StateDict with_prefix_removed(const std::string& prefix) const;
  /// Adds every entry of other with `prefix` prepended.
  void merge(const StateDict& other, const std::string& prefix);

 private:
  std::vector<Entry> entries_;
};

}  // namespace sorix
