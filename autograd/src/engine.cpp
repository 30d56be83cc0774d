// The backward engine. Iterative: a dependency count per node (one DFS with an explicit stack),
// then nodes run in a fixed topological order (a FIFO of nodes whose consumers are all done).
// Gradients meeting at a node are summed in that fixed order, so backward is deterministic.
#include "sorix/autograd/engine.hpp"

#include <atomic>
#include <cmath>
#include <deque>
#include <functional>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>
#include <variant>

#include "sorix_core/internal.hpp"
#include "sorix/autograd/grad_mode.hpp"
#include "sorix/autograd/leaf_hooks.hpp"
#include "sorix/autograd/node.hpp"

namespace sorix::autograd {
namespace {

std::atomic<bool> g_detect_anomaly{false};

// What non-finite value a floating gradient holds ("nan", "inf"), or "" when it holds none.
std::string non_finite_kind(const Tensor& grad) {
  if (!grad.defined() || !is_floating(grad.dtype())) return "";
  const Tensor g = grad.contiguous();
  return sorix::detail::visit_floating(g.dtype(), "detect_anomaly", [&](auto tag) -> std::string {
    using T = typename decltype(tag)::type;
    const T* p = sorix::detail::flat<T>(g);
    bool inf = false;
    for (std::int64_t i = 0, n = g.numel(); i < n; ++i) {
      if (std::isnan(p[i])) return "nan";
      inf = inf || std::isinf(p[i]);
    }
    return inf ? "inf" : "";
  });
}

// Anomaly mode: the first non-finite gradient of an op's backward is an error naming the op.
void check_anomaly(const Node& node, const std::vector<Tensor>& input_grads) {
  for (std::size_t i = 0; i < input_grads.size(); ++i) {
    const std::string kind = non_finite_kind(input_grads[i]);
    if (kind.empty()) continue;
    throw std::runtime_error(error_message("backward", "function '", node.name(), "' returned ", kind,
                                           " values in the gradient of its input ", i, " (shape ",
                                           input_grads[i].shape(), "); found by detect_anomaly"));
  }
}


Tensor add_grads(const Tensor& a, const Tensor& b) { return a.defined() ? a + b : b; }

// What to do with gradients that reach leaves: accumulate into grad(), or capture (grad()).
// Whether nothing but g holds its storage: alone, or with only g's view base, which nothing else
// holds (a backward that reshaped a tensor it made), when g covers the whole storage.
bool sole_owner(const Tensor& g) {
  const TensorImpl& impl = *g.impl();
  if (impl.storage.use_count() == 1) return true;
  const std::shared_ptr<TensorImpl>& base = impl.view_base;
  if (!base || base.use_count() != 1 || base->storage != impl.storage || impl.storage.use_count() != 2) return false;
  const std::size_t elements = std::visit([](const auto& buffer) { return buffer.size(); }, impl.storage->data);
  return static_cast<std::size_t>(impl.numel) == elements;
}

struct LeafSink {
  bool capture = false;
  bool create_graph = false;
  std::unordered_map<const TensorImpl*, std::size_t> leaf_index;  // capture mode
  std::unordered_map<const Node*, std::size_t> node_index;        // capture mode: non-leaf inputs
  std::vector<Tensor> captured;
  // backward(): how many edges of the graph still lead to each leaf, and the hooks to call when a
  // leaf's count reaches 0 (its grad() is final for this backward; on_leaf_gradient_ready).
  std::unordered_map<const TensorImpl*, std::size_t> leaf_edges;
  std::vector<std::function<void(const Tensor&)>>* ready_hooks = nullptr;

  void edge_done(const std::shared_ptr<TensorImpl>& impl) {
    if (capture) return;
    auto it = leaf_edges.find(impl.get());
    if (it == leaf_edges.end() || --it->second != 0) return;
    if (ready_hooks == nullptr || ready_hooks->empty()) return;
    const Tensor leaf(impl);
    // By index: a hook may register another (the vector may grow while it runs).
    for (std::size_t i = 0; i < ready_hooks->size(); ++i) (*ready_hooks)[i](leaf);
  }

  void leaf(const std::shared_ptr<TensorImpl>& impl, const Tensor& g_in) {
    // A strided gradient (a view of an expand, a permutation) is made contiguous: grad() is
    // always contiguous, as the optimizers' flat kernels expect.
    const Tensor g = g_in.contiguous();
    if (capture) {
      auto it = leaf_index.find(impl.get());
      if (it != leaf_index.end()) captured[it->second] = add_grads(captured[it->second], g);
      return;
    }
    Tensor existing = impl->grad ? Tensor(impl->grad) : Tensor();
    Tensor updated;
    if (create_graph) {
      updated = add_grads(existing, g);
    } else {
      NoGradGuard no_grad;
      // g becomes grad() as it is when nothing else holds its storage; otherwise a fresh copy, since
      // g may share storage with other gradients and users may change grad() in place.
      if (existing.defined()) {
        updated = existing + g;
      } else if (sole_owner(g)) {
        updated = g.detach();
      } else {
        updated = g.detach().clone();
      }
    }
    impl->grad = updated.impl_ptr();
  }
};

void run_backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grad_roots, bool retain_graph,
                  bool create_graph, LeafSink& sink) {
  if (!grad_roots.empty() && grad_roots.size() != roots.size()) {
    throw std::invalid_argument(error_message("backward", "got ", grad_roots.size(), " gradients for ",
                                              roots.size(), " outputs"));
  }
  std::unordered_map<const Node*, Tensor> buffer;
  std::vector<std::shared_ptr<Node>> root_nodes;
  std::unordered_map<const Node*, int> deps;

  for (std::size_t i = 0; i < roots.size(); ++i) {
    const Tensor& r = roots[i];
    detail::check_defined(r, "backward");
    if (!r.requires_grad()) {
      throw std::runtime_error(error_message("backward", "output ", i,
                                             " does not require grad and has no grad_fn; did you "
                                             "forget requires_grad=true on an input?"));
    }
    Tensor g;
    if (!grad_roots.empty() && grad_roots[i].defined()) {
      g = grad_roots[i];
      check(g.shape() == r.shape(), "backward", "gradient shape ", g.shape(), " does not match output shape ",
            r.shape());
      // An integer gradient would be truncated on its way into floating gradients (PyTorch refuses it too).
      check(is_floating(g.dtype()), "backward", "gradient ", i, " has dtype ", dtype_name(g.dtype()),
            "; expected a floating gradient (float32 or float64) for output dtype ", dtype_name(r.dtype()));
      if (g.dtype() != r.dtype()) g = g.to(r.dtype());
    } else {
      check(r.numel() == 1, "backward",
            "a gradient can be created implicitly only for one-element outputs, got shape ", r.shape(),
            "; pass a gradient tensor");
      g = ones_like(r);
    }
    if (r.grad_fn()) {
      const Node* n = r.grad_fn().get();
      if (!buffer.count(n)) root_nodes.push_back(r.grad_fn());
      buffer[n] = add_grads(buffer[n], g);
    } else {
      sink.leaf(r.impl_ptr(), g);
    }
  }

  // Dependency counts: how many edges from reachable nodes point at each node.
  {
    std::unordered_set<const Node*> seen;
    std::vector<Node*> stack;
    for (auto& n : root_nodes) {
      if (seen.insert(n.get()).second) stack.push_back(n.get());
    }
    while (!stack.empty()) {
      Node* n = stack.back();
      stack.pop_back();
      for (const Edge& e : n->next()) {
        if (!e.fn) {
          if (!sink.capture) {
            if (std::shared_ptr<TensorImpl> leaf = e.leaf.lock()) ++sink.leaf_edges[leaf.get()];
          }
          continue;
        }
        ++deps[e.fn.get()];
        if (seen.insert(e.fn.get()).second) stack.push_back(e.fn.get());
      }
    }
  }

  std::deque<std::shared_ptr<Node>> ready;
  for (auto& n : root_nodes) {
    if (deps[n.get()] == 0) ready.push_back(n);
  }
  AutoGradMode mode(create_graph);
  while (!ready.empty()) {
    std::shared_ptr<Node> node = ready.front();
    ready.pop_front();
    Tensor g;
    if (auto it = buffer.find(node.get()); it != buffer.end()) {
      // Backward functions read flat memory: a gradient that is a view (of an expand, a
      // permutation) is made contiguous once here.
      g = it->second.contiguous();
      buffer.erase(it);
    }
    std::vector<Tensor> input_grads;
    if (g.defined()) {
      if (sink.capture) {
        if (auto it = sink.node_index.find(node.get()); it != sink.node_index.end()) {
          sink.captured[it->second] = add_grads(sink.captured[it->second], g);
        }
      }
      input_grads = node->apply(g);
      if (input_grads.size() != node->next().size()) {
        throw std::logic_error(error_message("backward", node->name(), " returned ", input_grads.size(),
                                             " gradients for ", node->next().size(), " inputs"));
      }
      if (g_detect_anomaly.load(std::memory_order_relaxed)) check_anomaly(*node, input_grads);
    } else if (node->released()) {
      node->apply(g);  // throws the "second time" error
    }
    const auto& next = node->next();
    for (std::size_t i = 0; i < next.size(); ++i) {
      const Edge& e = next[i];
      const bool has_grad = !input_grads.empty() && input_grads[i].defined();
      if (e.fn) {
        if (has_grad) buffer[e.fn.get()] = add_grads(buffer[e.fn.get()], input_grads[i]);
        if (--deps[e.fn.get()] == 0) ready.push_back(e.fn);
      } else if (std::shared_ptr<TensorImpl> leaf = e.leaf.lock()) {
        if (has_grad) sink.leaf(leaf, input_grads[i]);
        sink.edge_done(leaf);
      }
    }
    if (!retain_graph) node->release();
  }
}

}  // namespace

void detect_anomaly(bool enabled) { g_detect_anomaly.store(enabled); }
bool anomaly_enabled() { return g_detect_anomaly.load(); }

namespace {
// The callbacks of the backward running on this thread (nullptr outside one).
thread_local std::vector<std::function<void()>>* tls_callbacks = nullptr;
// Its leaf-ready hooks (nullptr outside a backward()).
thread_local std::vector<std::function<void(const Tensor&)>>* tls_ready_hooks = nullptr;
}  // namespace

void on_leaf_gradient_ready(std::function<void(const Tensor&)> fn) {
  if (tls_ready_hooks == nullptr) throw std::logic_error("on_leaf_gradient_ready: called outside a backward()");
  tls_ready_hooks->push_back(std::move(fn));
}

void queue_callback(std::function<void()> fn) {
  if (tls_callbacks == nullptr) throw std::logic_error("queue_callback: called outside a backward()");
  tls_callbacks->push_back(std::move(fn));
}

void backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grad_roots, bool retain_graph,
              bool create_graph) {
  LeafSink sink;
  sink.create_graph = create_graph;
  std::vector<std::function<void()>> callbacks;
  std::vector<std::function<void(const Tensor&)>> ready_hooks;
  sink.ready_hooks = &ready_hooks;
  struct Scope {
    std::vector<std::function<void()>>* previous;
    std::vector<std::function<void(const Tensor&)>>* previous_hooks;
    ~Scope() {
      tls_callbacks = previous;
      tls_ready_hooks = previous_hooks;
    }
  } scope{tls_callbacks, tls_ready_hooks};
  tls_callbacks = &callbacks;
  tls_ready_hooks = &ready_hooks;
  run_backward(roots, grad_roots, retain_graph || create_graph, create_graph, sink);
  tls_callbacks = scope.previous;
  tls_ready_hooks = scope.previous_hooks;
  for (auto& fn : callbacks) fn();
}

std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs, bool create_graph,
                         std::optional<bool> retain_graph, bool allow_unused) {
  LeafSink sink;
  sink.capture = true;
  sink.create_graph = create_graph;
  sink.captured.resize(inputs.size());
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    detail::check_defined(inputs[i], "autograd::grad");
    check(inputs[i].requires_grad(), "autograd::grad", "input ", i, " does not require grad");
    if (inputs[i].grad_fn()) {
      sink.node_index[inputs[i].grad_fn().get()] = i;
    } else {
      sink.leaf_index[inputs[i].impl()] = i;
    }
  }
  run_backward(outputs, grad_outputs, retain_graph.value_or(create_graph), create_graph, sink);
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (!sink.captured[i].defined() && !allow_unused) {
      throw std::runtime_error(error_message("autograd::grad", "input ", i,
                                             " was not used to compute the outputs; pass "
                                             "allow_unused=true to get an undefined gradient"));
    }
  }
  return sink.captured;
}

}  // namespace sorix::autograd

namespace sorix {
// The tensor's entry point to the engine, defined here so that core needs no autograd header.
void Tensor::backward(const Tensor& gradient, bool retain_graph, bool create_graph) const {
  detail::check_defined(*this, "backward");
  std::vector<Tensor> grads;
  if (gradient.defined()) grads.push_back(gradient);
  autograd::backward({*this}, grads, retain_graph, create_graph);
}
}  // namespace sorix
