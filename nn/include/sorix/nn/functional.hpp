#pragma once
// sorix::nn::functional — the stateless forms of the nn layers, as torch::nn::functional
// (namespace F = sorix::nn::functional; F::linear(x, w, b), F::relu(x), ...). The layer ops are
// declared beside their modules; the activations are the ops of sorix/autograd/ops.hpp.
#include "sorix/autograd/ops.hpp"
#include "sorix/nn/activation.hpp"
#include "sorix/nn/batchnorm.hpp"
#include "sorix/nn/conv.hpp"
#include "sorix/nn/dropout.hpp"
#include "sorix/nn/embedding.hpp"
#include "sorix/nn/linear.hpp"
#include "sorix/nn/normalization.hpp"
#include "sorix/nn/pooling.hpp"

namespace sorix::nn::functional {

using sorix::clamp_max;
using sorix::clamp_min;
using sorix::flatten;
using sorix::leaky_relu;
using sorix::log_softmax;
using sorix::one_hot;
using sorix::relu;
using sorix::sigmoid;
using sorix::softmax;
using sorix::tanh;

}  // namespace sorix::nn::functional
