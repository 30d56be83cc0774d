#pragma once
// Hooks on leaf gradients for the backward() now running (engine.cpp implements them): how
// nn::DistributedDataParallel learns that a parameter's gradient is final while backward goes on.
#include <functional>

#include "sorix/core/tensor.hpp"

namespace sorix::autograd {

/// Registers fn for the backward() now running on this thread (as PyTorch's post-accumulate-grad
/// hooks, but for one backward): fn(leaf) runs once for each leaf that requires grad and is reached
/// by the graph, right after the last gradient the leaf gets in this backward has been accumulated
/// into its grad() (grad() stays undefined when no path carried a gradient), on this thread, in the
/// engine's fixed order. Leaves that were final before fn was registered are not reported. Called
/// from an op's backward (nn::DistributedDataParallel registers it from a node above the module,
/// so every parameter is reported, and hands each full bucket of gradients to its communication
/// thread); outside a backward it throws std::logic_error. autograd::grad() reports nothing.
void on_leaf_gradient_ready(std::function<void(const Tensor& leaf)> fn);

}  // namespace sorix::autograd
