#pragma once
// sorix::nn::init — parameter initialisers, as torch.nn.init.
//
// Every function fills its tensor in place (float32 or float64) and returns it. They run under
// NoGradGuard, so they apply to parameters that require grad, and the fill is not recorded.
// Random fills use Tensor::uniform_/normal_ on the counter-based streams of `generator`
// (nullptr: the default generator seeded by sorix::manual_seed): each call reserves its counters
// on the calling thread, so the values are bit-identical for any thread count.
//
// Fans (calculate_fan_in_and_fan_out): a tensor of shape [out, in, k...] has
// fan_in = in * prod(k), fan_out = out * prod(k); fewer than 2 dims throws std::invalid_argument.
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "sorix/core/generator.hpp"
#include "sorix/core/tensor.hpp"

namespace sorix::nn::init {

enum class FanMode { FanIn, FanOut };

enum class Nonlinearity { Linear, Conv1D, Conv2D, Conv3D, Sigmoid, Tanh, ReLU, LeakyReLU, SELU };

/// The recommended gain for a nonlinearity (torch.nn.init.calculate_gain): 1 for Linear, ConvND
/// and Sigmoid, 5/3 for Tanh, sqrt(2) for ReLU, sqrt(2 / (1 + slope^2)) for LeakyReLU (slope =
/// param, 0.01 when absent), 3/4 for SELU. A non-finite slope throws std::invalid_argument.
double calculate_gain(Nonlinearity nonlinearity, std::optional<double> param = std::nullopt);

/// {fan_in, fan_out} of a weight tensor of at least 2 dims (see above).
std::pair<std::int64_t, std::int64_t> calculate_fan_in_and_fan_out(const Tensor& tensor);

/// U(a, b).
Tensor& uniform_(Tensor& tensor, double a = 0.0, double b = 1.0, Generator* generator = nullptr);
/// N(mean, std^2).
Tensor& normal_(Tensor& tensor, double mean = 0.0, double std = 1.0, Generator* generator = nullptr);
Tensor& constant_(Tensor& tensor, double value);
Tensor& zeros_(Tensor& tensor);
Tensor& ones_(Tensor& tensor);

/// Glorot: U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out)).
Tensor& xavier_uniform_(Tensor& tensor, double gain = 1.0, Generator* generator = nullptr);
/// Glorot: N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out)).
Tensor& xavier_normal_(Tensor& tensor, double gain = 1.0, Generator* generator = nullptr);

/// He: U(-b, b) with b = sqrt(3) * gain / sqrt(fan), gain = calculate_gain(nonlinearity, a),
/// fan = fan_in or fan_out per mode. PyTorch's defaults (a = 0, FanIn, LeakyReLU: gain sqrt(2)).
/// nn::Linear's default init is kaiming_uniform_(weight, sqrt(5)), i.e. U(-1/sqrt(in), 1/sqrt(in)).
Tensor& kaiming_uniform_(Tensor& tensor, double a = 0.0, FanMode mode = FanMode::FanIn,
                         Nonlinearity nonlinearity = Nonlinearity::LeakyReLU, Generator* generator = nullptr);
/// He: N(0, std^2) with std = gain / sqrt(fan) (as kaiming_uniform_).
Tensor& kaiming_normal_(Tensor& tensor, double a = 0.0, FanMode mode = FanMode::FanIn,
                        Nonlinearity nonlinearity = Nonlinearity::LeakyReLU, Generator* generator = nullptr);

}  // namespace sorix::nn::init
