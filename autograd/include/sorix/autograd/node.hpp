#pragma once
// A node of the autograd graph: one op application. Every op has exactly one output tensor, so a
// node's incoming gradient is that output's gradient.
//
// A node holds an edge per input (to the input's own node, or to the input tensor itself when it
// is a leaf that requires grad) and the op's backward function, which owns the tensors the op
// saved. release() drops the backward function, freeing the saved tensors; a second backward then
// throws.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "sorix/core/tensor.hpp"

namespace sorix::autograd {

struct Edge {
  std::shared_ptr<Node> fn;            // input produced by an op
  /// Input is a leaf that requires grad. Weak: a gradient recorded under create_graph lives in the
  /// leaf's grad() and its graph leads back here, so a strong edge would be a cycle that keeps a
  /// dropped leaf and its whole graph alive. A leaf that is gone needs no gradient.
  std::weak_ptr<TensorImpl> leaf;
  bool defined() const { return fn != nullptr || !leaf.expired(); }
};

/// Given the gradient of the output, returns one gradient per input (undefined where none).
/// Runs with grad mode on only when the caller asked for create_graph, so formulas written with
/// Tensor ops are themselves differentiable (second derivatives).
using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_output)>;

class Node {
 public:
  Node(std::string name, std::vector<Edge> next, BackwardFn backward)
      : name_(std::move(name)), next_(std::move(next)), backward_(std::move(backward)) {}
  /// Frees the nodes only this one keeps alive iteratively (a 100,000-op chain must not recurse).
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;
  const std::string& name() const { return name_; }
  const std::vector<Edge>& next() const { return next_; }
  bool released() const { return !backward_; }
  /// Calls the backward function; throws if the graph was freed by an earlier backward.
  std::vector<Tensor> apply(const Tensor& grad_output);
  /// Frees the saved tensors (after a backward without retain_graph).
  void release() { backward_ = nullptr; }

 private:
  std::string name_;
  std::vector<Edge> next_;
  BackwardFn backward_;
};

/// A tensor an op keeps for its backward. Remembers the storage version at save time; unpack()
/// throws if the tensor was changed in place since (naming the op and both versions).
class SavedTensor {
 public:
  SavedTensor() = default;
  explicit SavedTensor(const Tensor& t);
  /// Saves an op's own output without creating a reference cycle (it keeps the storage only).
  static SavedTensor output(const Tensor& t);
  Tensor unpack(const char* op) const;
  bool defined() const { return tensor_.defined(); }

 private:
  Tensor tensor_;  // for a leaf that requires grad: a detached handle on its storage
  /// A saved leaf that requires grad is held weakly, as the graph's edges to leaves are: unpack()
  /// returns the leaf itself while it lives (so create_graph formulas reach it), else its data.
  std::weak_ptr<TensorImpl> leaf_;
  std::uint64_t version_ = 0;
};

/// True when grad mode is on and any input requires grad.
bool needs_grad(std::initializer_list<const Tensor*> inputs);
bool needs_grad(const std::vector<Tensor>& inputs);

/// Records `output` as produced by op `name` from `inputs`: sets its grad_fn and requires_grad.
/// Call it only when needs_grad(inputs).
void record(Tensor& output, const char* name, const std::vector<Tensor>& inputs, BackwardFn backward);

}  // namespace sorix::autograd
