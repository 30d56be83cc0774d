// Activation and reshaping modules: thin wrappers over the ops (autograd/include/sorix/autograd/ops.hpp).
#include "sorix/nn/activation.hpp"

#include <sstream>

#include "sorix/autograd/ops.hpp"

namespace sorix::nn {

Tensor ReLU::forward(const Tensor& input) { return sorix::relu(input); }

Tensor LeakyReLU::forward(const Tensor& input) { return sorix::leaky_relu(input, options_.negative_slope()); }
std::string LeakyReLU::extra_repr() const {
  std::ostringstream os;
  os << "negative_slope=" << options_.negative_slope();
  return os.str();
}

Tensor Sigmoid::forward(const Tensor& input) { return sorix::sigmoid(input); }

Tensor Tanh::forward(const Tensor& input) { return sorix::tanh(input); }

Tensor Softmax::forward(const Tensor& input) { return sorix::softmax(input, options_.dim()); }
std::string Softmax::extra_repr() const { return "dim=" + std::to_string(options_.dim()); }

Tensor LogSoftmax::forward(const Tensor& input) { return sorix::log_softmax(input, options_.dim()); }
std::string LogSoftmax::extra_repr() const { return "dim=" + std::to_string(options_.dim()); }

Tensor Flatten::forward(const Tensor& input) {
  return sorix::flatten(input, options_.start_dim(), options_.end_dim());
}
std::string Flatten::extra_repr() const {
  return "start_dim=" + std::to_string(options_.start_dim()) + ", end_dim=" + std::to_string(options_.end_dim());
}

}  // namespace sorix::nn
