#pragma once
// sorix::nn::Module — the base of every layer and model, as in sorix and PyTorch's C++ frontend.
//
// A module holds ordered, named parameters (tensors that require grad), buffers (state that is
// saved but not trained, e.g. BatchNorm's running statistics) and submodules, plus a training
// flag. Modules start in training mode. Layers are value types (nn::Linear lin(784, 128);) that
// share their parameter tensors when copied; containers hold their children by shared_ptr.
//
// A user model subclasses Module, registers its parts and overrides forward:
//   struct Net : sorix::nn::Module {
//     Net() : fc(register_module("fc", sorix::nn::Linear(784, 10))) {}
//     sorix::Tensor forward(const sorix::Tensor& x) override { return fc->forward(x); }
//     std::shared_ptr<sorix::nn::Linear> fc;
//   };
#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "sorix/core/state_dict.hpp"
#include "sorix/core/tensor.hpp"

namespace sorix::nn {

class Module {
 public:
  using NamedTensors = std::vector<std::pair<std::string, Tensor>>;
  using NamedModules = std::vector<std::pair<std::string, std::shared_ptr<Module>>>;

  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = default;
  Module(Module&&) = default;
  Module& operator=(const Module&) = default;
  Module& operator=(Module&&) = default;

  /// The computation. The base throws std::logic_error naming the module.
  virtual Tensor forward(const Tensor& input);
  Tensor operator()(const Tensor& input) { return forward(input); }

  /// "Linear", "Sequential", ... (printing and errors).
  virtual std::string name() const { return "Module"; }
  /// What goes between the parentheses when printed: "in_features=784, out_features=128, bias=true".
  virtual std::string extra_repr() const { return ""; }

  // ---- registration ------------------------------------------------------------------------
  /// Registers (and returns) a parameter; it is marked requires_grad unless requires_grad=false.
  Tensor& register_parameter(const std::string& name, Tensor t, bool requires_grad = true);
  Tensor& register_buffer(const std::string& name, Tensor t);
  /// Registers a child; returns the shared_ptr the module keeps.
  std::shared_ptr<Module> register_module(const std::string& name, std::shared_ptr<Module> m);
  template <class M, class = std::enable_if_t<std::is_base_of_v<Module, std::decay_t<M>>>>
  std::shared_ptr<std::decay_t<M>> register_module(const std::string& name, M&& m) {
    auto p = std::make_shared<std::decay_t<M>>(std::forward<M>(m));
    register_module(name, std::static_pointer_cast<Module>(p));
    return p;
  }
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    register_module(name, std::static_pointer_cast<Module>(m));
    return m;
  }

  // ---- access (recursive: children's names are prefixed "child.") ---------------------------
  std::vector<Tensor> parameters(bool recurse = true) const;
  NamedTensors named_parameters(bool recurse = true) const;
  std::vector<Tensor> buffers(bool recurse = true) const;
  NamedTensors named_buffers(bool recurse = true) const;
  const NamedModules& named_children() const { return children_; }
  std::vector<std::shared_ptr<Module>> children() const;
  /// This module (unless include_self is false) and every descendant, parents before their
  /// children (libtorch's order). Raw pointers: modules are value types, often not owned by a
  /// shared_ptr, so self cannot be handed out as one; they stay valid while this module lives.
  std::vector<Module*> modules(bool include_self = true);
  /// Calls fn on this module and every descendant, in modules() order (libtorch's apply; e.g.
  /// to initialize every Linear's weight).
  void apply(const std::function<void(Module&)>& fn);

  // ---- mode ------------------------------------------------------------------------------
  /// Sets training mode on this module and every descendant.
  virtual void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  /// Clears (undefines) the gradient of every parameter.
  void zero_grad();

  /// Converts every floating parameter and buffer (recursively) to dtype, float32 or float64 (else
  /// std::invalid_argument), in place: each tensor keeps its identity (every handle, a layer's
  /// own members included, sees the new values and dtype) and gets new storage with the values
  /// converted; its gradient is cleared. Integer buffers (num_batches_tracked) are kept. Build
  /// optimizers after converting: their state buffers have the old dtype.
  void to(Dtype dtype);

  // ---- state -------------------------------------------------------------------------------
  /// Parameters and buffers by name ("0.weight", "1.running_mean", ...). The tensors are
  /// detached handles on the module's own storage.
  StateDict state_dict() const;
  /// Copies values into the module's tensors. Strict: a missing, unexpected, or mis-shaped (or
  /// wrong dtype) entry throws std::invalid_argument naming every offending entry, and nothing
  /// is changed unless every entry checks out.
  void load_state_dict(const StateDict& state, bool strict = true);

  /// Nested printing, as PyTorch: Sequential(\n  (0): Linear(in_features=..., ...)\n ...).
  void pretty_print(std::ostream& os, int indent = 0) const;

 protected:
  /// Looks up a registered parameter or buffer of this module (not recursive); nullptr if none.
  Tensor* find_local(const std::string& name);

 private:
  void collect(NamedTensors& out, const std::string& prefix, bool params, bool recurse) const;

  bool training_ = true;
  NamedTensors parameters_;
  NamedTensors buffers_;
  NamedModules children_;
};

std::ostream& operator<<(std::ostream& os, const Module& m);

}  // namespace sorix::nn
