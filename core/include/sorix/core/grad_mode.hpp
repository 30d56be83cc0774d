#pragma once
// Whether ops record the graph. Per thread, like PyTorch's GradMode.
namespace sorix {
namespace autograd {
/// True unless a NoGradGuard is alive on this thread (or backward runs without create_graph).
bool grad_enabled();
void set_grad_enabled(bool enabled);
}  // namespace autograd

/// RAII: no graph is recorded while it lives; c = a * 2 gives c.requires_grad() == false.
class NoGradGuard {
 public:
  NoGradGuard() : previous_(autograd::grad_enabled()) { autograd::set_grad_enabled(false); }
  ~NoGradGuard() { autograd::set_grad_enabled(previous_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

/// RAII: sets grad mode to `enabled` while it lives.
class AutoGradMode {
 public:
  explicit AutoGradMode(bool enabled) : previous_(autograd::grad_enabled()) {
    autograd::set_grad_enabled(enabled);
  }
  ~AutoGradMode() { autograd::set_grad_enabled(previous_); }
  AutoGradMode(const AutoGradMode&) = delete;
  AutoGradMode& operator=(const AutoGradMode&) = delete;

 private:
  bool previous_;
};
}  // namespace sorix
