// Graph nodes, saved tensors and op recording.
#include "sorix/autograd/node.hpp"

#include <stdexcept>

#include "core/src/internal.hpp"
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

SavedTensor::SavedTensor(const Tensor& t) : tensor_(t), version_(t.defined() ? t.version() : 0) {}

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

}  // namespace sorix::autograd
