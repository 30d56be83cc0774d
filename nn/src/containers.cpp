#include "sorix/nn/containers.hpp"

#include <stdexcept>

#include "sorix/core/error.hpp"

namespace sorix::nn {

namespace detail {
std::shared_ptr<Module> child_at(const Module& m, std::size_t i) {
  const auto& c = m.named_children();
  if (i >= c.size()) {
    throw std::out_of_range(error_message(m.name().c_str(), "index ", i, " out of range for ", c.size(), " modules"));
  }
  return c[i].second;
}
}  // namespace detail

Tensor Sequential::forward(const Tensor& input) {
  Tensor x = input;
  for (const auto& [n, m] : named_children()) x = m->forward(x);
  return x;
}

}  // namespace sorix::nn
