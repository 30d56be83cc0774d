#pragma once
// Containers: Sequential (runs its children in order) and ModuleList (holds them, no forward).
// Children are named "0", "1", ... so parameters read "0.weight", "1.bias", as in PyTorch.
// ModuleDict holds children by string key, in insertion order ("dict.key.weight"); Functional
// wraps a function as a module (a Sequential stage without parameters).
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "sorix/nn/module.hpp"

namespace sorix::nn {

namespace detail {
template <class M>
std::shared_ptr<Module> to_module_ptr(M&& m) {
  using D = std::decay_t<M>;
  if constexpr (std::is_convertible_v<D, std::shared_ptr<Module>>) {
    return std::shared_ptr<Module>(std::forward<M>(m));
  } else {
    static_assert(std::is_base_of_v<Module, D>, "nn containers hold Modules");
    return std::make_shared<D>(std::forward<M>(m));
  }
}
template <class Self, class... Ms>
inline constexpr bool is_self_copy = sizeof...(Ms) == 1 && (std::is_same_v<std::decay_t<Ms>, Self> && ...);

/// The i-th child of m; out of range throws std::out_of_range naming m.
std::shared_ptr<Module> child_at(const Module& m, std::size_t i);

// What ModuleList and Sequential share: children appended in order as "0", "1", ... Self is the
// container, so that copying one (a single argument of type Self) stays a copy, not a nesting.
template <class Self>
class IndexedModules : public Module {
 public:
  IndexedModules() = default;
  /// Holds the given modules (each by value or shared_ptr) in order.
  template <class... Ms, class = std::enable_if_t<(sizeof...(Ms) > 0) && !is_self_copy<Self, Ms...>>>
  explicit IndexedModules(Ms&&... modules) {
    (push_back(std::forward<Ms>(modules)), ...);
  }
  /// Appends a module (by value or shared_ptr).
  template <class M>
  void push_back(M&& m) {
    register_module(std::to_string(size()), detail::to_module_ptr(std::forward<M>(m)));
  }
  std::size_t size() const { return named_children().size(); }
  /// The i-th child; out of range throws std::out_of_range.
  std::shared_ptr<Module> operator[](std::size_t i) const { return child_at(*this, i); }
};
}  // namespace detail

class ModuleList : public detail::IndexedModules<ModuleList> {
 public:
  using IndexedModules::IndexedModules;
  std::string name() const override { return "ModuleList"; }
};

/// Children by key, in insertion order, registered under their keys (parameters "key.weight").
class ModuleDict : public Module {
 public:
  ModuleDict() = default;
  explicit ModuleDict(const NamedModules& items);
  /// Adds a module (by value or shared_ptr) under key; an existing key (or an empty or dotted
  /// one) throws std::invalid_argument naming it.
  template <class M>
  void insert(const std::string& key, M&& m) {
    insert_ptr(key, detail::to_module_ptr(std::forward<M>(m)));
  }
  /// The module under key; a missing key throws std::out_of_range naming it.
  std::shared_ptr<Module> operator[](const std::string& key) const;
  bool contains(const std::string& key) const;
  std::vector<std::string> keys() const;
  std::vector<std::shared_ptr<Module>> values() const;
  const NamedModules& items() const { return named_children(); }
  std::size_t size() const { return named_children().size(); }
  std::string name() const override { return "ModuleDict"; }

 private:
  void insert_ptr(const std::string& key, std::shared_ptr<Module> m);
};

/// A function as a module: forward(x) = fn(x); no parameters (e.g. a Sequential stage).
class Functional : public Module {
 public:
  /// An empty fn throws std::invalid_argument.
  explicit Functional(std::function<Tensor(Tensor)> fn);
  Tensor forward(const Tensor& input) override { return fn_(input); }
  std::string name() const override { return "Functional"; }

 private:
  std::function<Tensor(Tensor)> fn_;
};

class Sequential : public detail::IndexedModules<Sequential> {
 public:
  using IndexedModules::IndexedModules;
  /// Feeds the input through every child in order.
  Tensor forward(const Tensor& input) override;
  std::string name() const override { return "Sequential"; }
};

}  // namespace sorix::nn
