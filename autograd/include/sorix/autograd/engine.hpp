#pragma once
// The backward engine: an iterative topological walk (no recursion, so a 100,000-op chain works),
// gradients summed in a fixed order (the graph's recording order), saved tensors freed afterwards
// unless retain_graph.
#include <functional>
#include <optional>
#include <vector>

#include "sorix/core/tensor.hpp"

namespace sorix::autograd {

/// Accumulates d(roots)/d(leaf) * grad_roots into every reachable leaf's grad().
/// grad_roots may be empty (then every root must have one element and gets gradient 1).
/// The graph is kept when retain_graph or create_graph is set.
void backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grad_roots = {},
              bool retain_graph = false, bool create_graph = false);

/// Returns d(outputs)/d(inputs) (weighted by grad_outputs) without touching any grad().
/// With create_graph the results carry their own graph, so they can be differentiated again.
/// An input that outputs do not depend on throws unless allow_unused (then it is undefined).
/// retain_graph defaults to create_graph.
std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs = {}, bool create_graph = false,
                         std::optional<bool> retain_graph = std::nullopt, bool allow_unused = false);

/// Queues fn to run on this thread once the backward() now running has walked its whole graph
/// (callbacks run in the order queued, before backward returns), as PyTorch's queue_callback:
/// nn::DistributedDataParallel reduces the gradients this way. Called from an op's backward;
/// outside a backward it throws std::logic_error.
void queue_callback(std::function<void()> fn);

/// Anomaly detection, as PyTorch's set_detect_anomaly: while on (for the whole process), every
/// backward checks each gradient an op's backward returns and throws std::runtime_error at the
/// first that holds NaN or Inf, naming the op, which of its inputs the gradient is for, and its
/// shape. It costs one pass over every gradient: a debugging aid, off by default.
void detect_anomaly(bool enabled);
bool anomaly_enabled();

/// RAII: anomaly detection on while it lives (then back to what it was).
class DetectAnomalyGuard {
 public:
  DetectAnomalyGuard() : previous_(anomaly_enabled()) { detect_anomaly(true); }
  ~DetectAnomalyGuard() { detect_anomaly(previous_); }
  DetectAnomalyGuard(const DetectAnomalyGuard&) = delete;
  DetectAnomalyGuard& operator=(const DetectAnomalyGuard&) = delete;

 private:
  bool previous_;
};

}  // namespace sorix::autograd
