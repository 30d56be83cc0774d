#include "sorix/nn/containers.hpp"

#include <stdexcept>

#include "sorix/core/error.hpp"

namespace sorix::nn {

namespace {
std::shared_ptr<Module> child_at(const Module& m, std::size_t i) {
  const auto& c = m.named_children();
  if (i >= c.size()) {
    throw std::out_of_range(error_message(m.name().c_str(), "index ", i, " out of range for ", c.size(), " modules"));
  }
  return c[i].second;
}
}  // namespace

std::shared_ptr<Module> ModuleList::operator[](std::size_t i) const { return child_at(*this, i); }
std::shared_ptr<Module> Sequential::operator[](std::size_t i) const { return child_at(*this, i); }

Tensor Sequential::forward(const Tensor& input) {
  Tensor x = input;
  for (const auto& [n, m] : named_children()) x = m->forward(x);
  return x;
}

}  // namespace sorix::nn
