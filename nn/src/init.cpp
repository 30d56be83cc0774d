// Parameter initialisers (torch.nn.init): fans, gains, and the fills on counter-based streams.
#include "sorix/nn/init.hpp"

#include <cmath>

#include "sorix_core/internal.hpp"
#include "sorix/autograd/grad_mode.hpp"

namespace sorix::nn::init {

namespace {
void check_floating(const Tensor& t, const char* op) {
  detail::check_defined(t, op);
  check(is_floating(t.dtype()), op, "expected a float32 or float64 tensor, got ", dtype_name(t.dtype()), " ",
        t.shape());
}

double fan_for(const Tensor& t, FanMode mode, const char* op) {
  check_floating(t, op);
  auto [fan_in, fan_out] = calculate_fan_in_and_fan_out(t);
  const std::int64_t fan = mode == FanMode::FanIn ? fan_in : fan_out;
  check(fan > 0, op, "cannot initialise a tensor with zero ", mode == FanMode::FanIn ? "fan_in" : "fan_out",
        " (shape ", t.shape(), ")");
  return static_cast<double>(fan);
}
}  // namespace

double calculate_gain(Nonlinearity nonlinearity, std::optional<double> param) {
  switch (nonlinearity) {
    case Nonlinearity::Linear:
    case Nonlinearity::Conv1D:
    case Nonlinearity::Conv2D:
    case Nonlinearity::Conv3D:
    case Nonlinearity::Sigmoid:
      return 1.0;
    case Nonlinearity::Tanh:
      return 5.0 / 3.0;
    case Nonlinearity::ReLU:
      return std::sqrt(2.0);
    case Nonlinearity::LeakyReLU: {
      const double slope = param.value_or(0.01);
      check(std::isfinite(slope), "calculate_gain", "negative_slope ", slope, " is not a valid number");
      return std::sqrt(2.0 / (1.0 + slope * slope));
    }
    case Nonlinearity::SELU:
      return 3.0 / 4.0;
  }
  return 1.0;
}

std::pair<std::int64_t, std::int64_t> calculate_fan_in_and_fan_out(const Tensor& tensor) {
  detail::check_defined(tensor, "calculate_fan_in_and_fan_out");
  const Shape s = tensor.shape();
  check(s.size() >= 2, "calculate_fan_in_and_fan_out",
        "fan in and fan out can not be computed for a tensor with fewer than 2 dimensions (shape ", s, ")");
  std::int64_t receptive = 1;
  for (std::size_t i = 2; i < s.size(); ++i) receptive *= s[i];
  return {s[1] * receptive, s[0] * receptive};
}

Tensor& uniform_(Tensor& tensor, double a, double b, Generator* generator) {
  check_floating(tensor, "init::uniform_");
  NoGradGuard no_grad;
  return tensor.uniform_(a, b, generator);
}

Tensor& normal_(Tensor& tensor, double mean, double std, Generator* generator) {
  check_floating(tensor, "init::normal_");
  NoGradGuard no_grad;
  return tensor.normal_(mean, std, generator);
}

Tensor& constant_(Tensor& tensor, double value) {
  check_floating(tensor, "init::constant_");
  NoGradGuard no_grad;
  return tensor.fill_(value);
}

Tensor& zeros_(Tensor& tensor) { return constant_(tensor, 0.0); }
Tensor& ones_(Tensor& tensor) { return constant_(tensor, 1.0); }

Tensor& xavier_uniform_(Tensor& tensor, double gain, Generator* generator) {
  check_floating(tensor, "init::xavier_uniform_");
  auto [fan_in, fan_out] = calculate_fan_in_and_fan_out(tensor);
  check(fan_in + fan_out > 0, "init::xavier_uniform_", "cannot initialise a tensor with no elements per fan (shape ",
        tensor.shape(), ")");
  const double std = gain * std::sqrt(2.0 / static_cast<double>(fan_in + fan_out));
  const double bound = std::sqrt(3.0) * std;
  return uniform_(tensor, -bound, bound, generator);
}

Tensor& xavier_normal_(Tensor& tensor, double gain, Generator* generator) {
  check_floating(tensor, "init::xavier_normal_");
  auto [fan_in, fan_out] = calculate_fan_in_and_fan_out(tensor);
  check(fan_in + fan_out > 0, "init::xavier_normal_", "cannot initialise a tensor with no elements per fan (shape ",
        tensor.shape(), ")");
  const double std = gain * std::sqrt(2.0 / static_cast<double>(fan_in + fan_out));
  return normal_(tensor, 0.0, std, generator);
}

Tensor& kaiming_uniform_(Tensor& tensor, double a, FanMode mode, Nonlinearity nonlinearity, Generator* generator) {
  const double fan = fan_for(tensor, mode, "init::kaiming_uniform_");
  const double std = calculate_gain(nonlinearity, a) / std::sqrt(fan);
  const double bound = std::sqrt(3.0) * std;
  return uniform_(tensor, -bound, bound, generator);
}

Tensor& kaiming_normal_(Tensor& tensor, double a, FanMode mode, Nonlinearity nonlinearity, Generator* generator) {
  const double fan = fan_for(tensor, mode, "init::kaiming_normal_");
  const double std = calculate_gain(nonlinearity, a) / std::sqrt(fan);
  return normal_(tensor, 0.0, std, generator);
}

}  // namespace sorix::nn::init
