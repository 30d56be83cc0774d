// Activation and reshaping modules: thin wrappers over the ops (autograd/include/sorix/autograd/ops.hpp).
#include "sorix/nn/activation.hpp"

#include <sstream>

#include "sorix_autograd/ops_internal.hpp"

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

Tensor Unflatten::forward(const Tensor& input) {
  sorix::detail::check_defined(input, "Unflatten");
  const Shape s = input.shape();
  const std::int64_t d = sorix::detail::wrap_dim(options_.dim(), static_cast<std::int64_t>(s.size()), "Unflatten");
  std::int64_t known = 1, unknown = 0;
  for (std::int64_t v : options_.sizes()) {
    if (v == -1) ++unknown;
    else known *= v;
  }
  const std::int64_t have = s[static_cast<std::size_t>(d)];
  check(!options_.sizes().empty() && unknown <= 1 && (unknown ? known > 0 && have % known == 0 : known == have),
        "Unflatten", "sizes ", options_.sizes(), " do not unflatten dim ", d, " of size ", have, " (input shape ", s, ")");
  Shape out(s.begin(), s.begin() + d);
  out.insert(out.end(), options_.sizes().begin(), options_.sizes().end());
  out.insert(out.end(), s.begin() + d + 1, s.end());
  return sorix::reshape(input, out);
}
std::string Unflatten::extra_repr() const {
  std::string r = "dim=" + std::to_string(options_.dim()) + ", unflattened_size=(";
  for (std::size_t i = 0; i < options_.sizes().size(); ++i) r += (i ? ", " : "") + std::to_string(options_.sizes()[i]);
  return r + (options_.sizes().size() == 1 ? ",)" : ")");
}

}  // namespace sorix::nn
