#include "sorix/nn/containers.hpp"

#include <optional>
#include <stdexcept>
#include <typeinfo>

#include "sorix/core/error.hpp"
#include "sorix/nn/activation.hpp"
#include "sorix/nn/batchnorm.hpp"
#include "sorix/nn/conv.hpp"
#include "sorix/nn/pooling.hpp"
#include "conv_feed.hpp"

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

namespace {
// x = relu(m(x)) as BatchNormNd::forward_relu (the same bits) when m is exactly one of sorix's
// BatchNorm classes (a subclass may override forward); false, x untouched, otherwise.
bool batchnorm_relu(Module& m, Tensor& x) {
  const std::type_info& t = typeid(m);
  if (t == typeid(BatchNorm1d) || t == typeid(SyncBatchNorm)) x = static_cast<BatchNorm1d&>(m).forward_relu(x);
  else if (t == typeid(BatchNorm2d)) x = static_cast<BatchNorm2d&>(m).forward_relu(x);
  else if (t == typeid(BatchNorm3d)) x = static_cast<BatchNorm3d&>(m).forward_relu(x);
  else return false;
  return true;
}

bool is_relu(const Module& m) { return typeid(m) == typeid(ReLU); }

// Exactly MaxPool2d with a 2 x 2 window, stride 2, no padding or dilation, floor mode.
bool is_pool_2x2(const Module& m) {
  if (typeid(m) != typeid(MaxPool2d)) return false;
  const MaxPool2dOptions& o = static_cast<const MaxPool2d&>(m).options();
  for (std::size_t i = 0; i < 2; ++i) {
    if (o.kernel_size()[i] != 2 || o.stride()[i] != 2 || o.padding()[i] != 0 || o.dilation()[i] != 1) return false;
  }
  return !o.ceil_mode();
}

// x = max_pool2d(relu(m(x)), 2) as BatchNormNd::forward_relu_pool when m is exactly BatchNorm2d or
// SyncBatchNorm and x is [N, C, H, W] with H, W >= 2; false, x untouched, otherwise (the stages
// then run one by one, with their own checks).
bool batchnorm_relu_pool(Module& m, Tensor& x) {
  if (!x.defined() || x.dim() != 4 || x.shape()[2] < 2 || x.shape()[3] < 2) return false;
  const std::type_info& t = typeid(m);
  if (t == typeid(BatchNorm2d)) x = static_cast<BatchNorm2d&>(m).forward_relu_pool(x);
  else if (t == typeid(SyncBatchNorm)) x = static_cast<BatchNorm1d&>(m).forward_relu_pool(x);
  else return false;
  return true;
}

// x = max_pool2d(relu(bn(conv(x))), 2) as one op (conv_feed.hpp) when conv is exactly Conv2d and
// bn exactly BatchNorm2d in training, and the convolution suits it; false, x untouched,
// otherwise.
bool conv_batchnorm_relu_pool(Module& conv, Module& bn, Tensor& x) {
  if (typeid(conv) != typeid(Conv2d) || typeid(bn) != typeid(BatchNorm2d) || !bn.is_training()) return false;
  if (static_cast<const BatchNorm2d&>(bn).sync()) return false;  // its statistics are the ranks' (SyncBatchNorm's mode)
  const std::optional<fusion::ConvFeed> feed = fusion::conv2d_feeding_batchnorm(static_cast<const Conv2d&>(conv), x);
  if (!feed) return false;
  x = static_cast<BatchNorm2d&>(bn).forward_relu_pool(*feed);
  return true;
}
}  // namespace

Tensor Sequential::forward(const Tensor& input) {
  Tensor x = input;
  const auto& stages = named_children();
  for (std::size_t i = 0; i < stages.size(); ++i) {
    // A BatchNorm stage followed by exactly ReLU (and MaxPool2d(2)) runs as one fused op.
    const bool relu_next = i + 1 < stages.size() && is_relu(*stages[i + 1].second);
    const bool pool_next = relu_next && i + 2 < stages.size() && is_pool_2x2(*stages[i + 2].second);
    // A Conv2d stage before those three runs with them as one op (its weight gradient made from
    // the BatchNorm's input gradient image by image).
    const bool bn_relu_pool_next = i + 3 < stages.size() && is_relu(*stages[i + 2].second) &&
                                   is_pool_2x2(*stages[i + 3].second);
    if (bn_relu_pool_next && conv_batchnorm_relu_pool(*stages[i].second, *stages[i + 1].second, x)) {
      i += 3;
      continue;
    }
    if (pool_next && batchnorm_relu_pool(*stages[i].second, x)) i += 2;
    else if (relu_next && batchnorm_relu(*stages[i].second, x)) ++i;
    else x = stages[i].second->forward(x);
  }
  return x;
}

ModuleDict::ModuleDict(const NamedModules& items) {
  for (const auto& [key, m] : items) insert_ptr(key, m);
}

void ModuleDict::insert_ptr(const std::string& key, std::shared_ptr<Module> m) {
  // Keys become parameter name parts ("key.weight"): a dot or an empty key would be ambiguous.
  check(!key.empty() && key.find('.') == std::string::npos, "ModuleDict", "invalid key '", key,
        "' (expected a non-empty key without '.')");
  check(!contains(key), "ModuleDict", "key '", key, "' is already present");
  register_module(key, std::move(m));
}

std::shared_ptr<Module> ModuleDict::operator[](const std::string& key) const {
  for (const auto& [k, m] : named_children()) {
    if (k == key) return m;
  }
  throw std::out_of_range(error_message("ModuleDict", "no module under key '", key, "' (keys ", keys(), ")"));
}

bool ModuleDict::contains(const std::string& key) const {
  for (const auto& [k, m] : named_children()) {
    if (k == key) return true;
  }
  return false;
}

std::vector<std::string> ModuleDict::keys() const {
  std::vector<std::string> out;
  for (const auto& [k, m] : named_children()) out.push_back(k);
  return out;
}

std::vector<std::shared_ptr<Module>> ModuleDict::values() const {
  std::vector<std::shared_ptr<Module>> out;
  for (const auto& [k, m] : named_children()) out.push_back(m);
  return out;
}

Functional::Functional(std::function<Tensor(Tensor)> fn) : fn_(std::move(fn)) {
  check(static_cast<bool>(fn_), "Functional", "the function is empty");
}

}  // namespace sorix::nn
