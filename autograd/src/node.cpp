// Graph nodes, saved tensors and op recording.
#include "sorix/autograd/node.hpp"

#include <stdexcept>

#include "sorix_core/internal.hpp"
#include "sorix/autograd/grad_mode.hpp"

namespace sorix::autograd {

std::vector<Tensor> Node::apply(const Tensor& grad_output) {
  if (!backward_) {
    throw std::runtime_error(
        "backward: trying to backward through the graph a second time (at " + name_ +
        "); its saved tensors were freed by the first backward. Pass retain_graph=true to the "
        "first backward if you need to call it twice.");
  }
  return backward_(grad_output);
}

Node::~Node() {
  // Destroying a node would destroy its input nodes, theirs, and so on, recursively: a long
  // chain overflows the stack. Instead the input nodes move onto a local stack; a node whose last
  // owner is that stack gives up its own inputs and saved tensors there before it dies, so every
  // destructor returns without recursing. (Saved tensors may hold their tensor's grad_fn, which is
  // also an input edge, so they are freed while those nodes are still held on the stack.)
  std::vector<std::shared_ptr<Node>> stack;
  auto take_inputs = [&stack](Node& n) {
    for (Edge& e : n.next_) {
      if (e.fn) stack.push_back(std::move(e.fn));
    }
    n.backward_ = nullptr;
  };
  take_inputs(*this);
  while (!stack.empty()) {
    std::shared_ptr<Node> n = std::move(stack.back());
    stack.pop_back();
    if (n.use_count() == 1) take_inputs(*n);
  }
}

SavedTensor::SavedTensor(const Tensor& t) : tensor_(t), version_(t.defined() ? t.version() : 0) {
  if (t.defined() && t.requires_grad() && t.is_leaf()) {
    leaf_ = t.impl_ptr();
    tensor_ = t.detach();  // shares the storage and its version counter
  }
}

SavedTensor SavedTensor::output(const Tensor& t) {
  // The output's handle would point back to the node that saves it (a cycle); a detached handle
  // on the same storage shares the data and the version counter without the cycle.
  return SavedTensor(t.detach());
}

Tensor SavedTensor::unpack(const char* op) const {
  if (tensor_.defined() && tensor_.version() != version_) {
    throw std::runtime_error(error_message(
        op, "one of the tensors needed for the gradient has been modified by an in-place "
            "operation (version ",
        tensor_.version(), ", saved at version ", version_,
        "); use an out-of-place op or clone() before changing it"));
  }
  if (std::shared_ptr<TensorImpl> leaf = leaf_.lock()) return Tensor(leaf);
  return tensor_;
}

bool needs_grad(std::initializer_list<const Tensor*> inputs) {
  if (!grad_enabled()) return false;
  for (const Tensor* t : inputs) {
    if (t->requires_grad()) return true;
  }
  return false;
}

bool needs_grad(const std::vector<Tensor>& inputs) {
  if (!grad_enabled()) return false;
  for (const Tensor& t : inputs) {
    if (t.requires_grad()) return true;
  }
  return false;
}

void record(Tensor& output, const char* name, const std::vector<Tensor>& inputs, BackwardFn backward) {
  std::vector<Edge> edges(inputs.size());
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& in = inputs[i];
    if (!in.requires_grad()) continue;
    if (in.grad_fn()) {
      edges[i].fn = in.grad_fn();
    } else {
      edges[i].leaf = in.impl_ptr();
    }
  }
  output.impl()->grad_fn = std::make_shared<Node>(name, std::move(edges), std::move(backward));
  output.impl()->requires_grad = true;
}

std::string node_name(const Node& node) { return node.name(); }

}  // namespace sorix::autograd
