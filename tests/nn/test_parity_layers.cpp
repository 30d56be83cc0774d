// PyTorch parity of the nn layers: reference values written by scripts/gen_parity_layers.py
// (torch 1.13) into tests/data/parity_layers_*.txt; no torch is needed here. float64 must agree
// to 1e-10 and float32 to 1e-5, relative to the tensor's largest magnitude.
#include <catch2/catch.hpp>

#include "support/parity.hpp"

#include <cmath>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <sorix/sorix.hpp>

using sorix::Shape;
using sorix::Tensor;
namespace nn = sorix::nn;
namespace F = sorix::nn::functional;

using parity::Case;
using parity::check_matches;
using parity::kDtypes;
using parity::load;
using parity::param;


TEST_CASE("parity: Linear forward and gradients match PyTorch", "[nn][parity]") {
  for (sorix::Dtype dt : kDtypes) {
    for (const char* name : {"linear2d", "linear3d", "linear1d_nobias"}) {
      INFO(name << " " << sorix::dtype_name(dt));
      Case c = load(name, dt);
      const bool has_bias = c.tensors.count("bias") > 0;
      nn::Linear lin(nn::LinearOptions(5, 3).bias(has_bias), dt);
      lin.load_state_dict(has_bias ? sorix::StateDict{{"weight", c.at("weight")}, {"bias", c.at("bias")}}
                                   : sorix::StateDict{{"weight", c.at("weight")}});
      Tensor x = param(c.at("x"));
      Tensor y = lin(x);
      check_matches(y, c.at("y"), "y");
      y.backward(c.at("gy"));
      check_matches(x.grad(), c.at("dx"), "dx");
      check_matches(lin.weight.grad(), c.at("dweight"), "dweight");
      if (has_bias) check_matches(lin.bias.grad(), c.at("dbias"), "dbias");
    }
  }
}

TEST_CASE("parity: BatchNorm1d train step, running stats and eval match PyTorch", "[nn][parity]") {
  for (sorix::Dtype dt : kDtypes) {
    for (const char* name : {"batchnorm2d", "batchnorm3d"}) {
      INFO(name << " " << sorix::dtype_name(dt));
      Case c = load(name, dt);
      nn::BatchNorm1d bn(nn::BatchNorm1dOptions(4).eps(c.scalars.at("eps")).momentum(c.scalars.at("momentum")), dt);
      bn.load_state_dict({{"weight", c.at("weight")},
                          {"bias", c.at("bias")},
                          {"running_mean", c.at("running_mean0")},
                          {"running_var", c.at("running_var0")},
                          {"num_batches_tracked", sorix::zeros({}, sorix::int64)}});
      Tensor x = param(c.at("x"));
      Tensor y = bn(x);
      check_matches(y, c.at("y"), "y");
      y.backward(c.at("gy"));
      check_matches(x.grad(), c.at("dx"), "dx");
      check_matches(bn.weight.grad(), c.at("dweight"), "dweight");
      check_matches(bn.bias.grad(), c.at("dbias"), "dbias");
      check_matches(bn.running_mean, c.at("running_mean1"), "running_mean");
      check_matches(bn.running_var, c.at("running_var1"), "running_var");
      CHECK(bn.num_batches_tracked.item<std::int64_t>() == 1);

      bn.zero_grad();
      bn.eval();
      Tensor x2 = param(c.at("x_eval"));
      Tensor y2 = bn(x2);
      check_matches(y2, c.at("y_eval"), "y_eval");
      y2.backward(c.at("gy_eval"));
      check_matches(x2.grad(), c.at("dx_eval"), "dx_eval");
      check_matches(bn.weight.grad(), c.at("dweight_eval"), "dweight_eval");
      check_matches(bn.bias.grad(), c.at("dbias_eval"), "dbias_eval");
    }
  }
}

TEST_CASE("parity: Embedding lookup and gradient match PyTorch", "[nn][parity]") {
  for (sorix::Dtype dt : kDtypes) {
    INFO(sorix::dtype_name(dt));
    Case c = load("embedding", dt);
    nn::Embedding emb(nn::EmbeddingOptions(7, 3), dt);
    emb.load_state_dict({{"weight", c.at("weight")}});
    Tensor y = emb(c.at("indices"));
    check_matches(y, c.at("y"), "y");
    y.backward(c.at("gy"));
    check_matches(emb.weight.grad(), c.at("dweight"), "dweight");
  }
}

TEST_CASE("parity: activations match PyTorch", "[nn][parity]") {
  for (sorix::Dtype dt : kDtypes) {
    Case c = load("activations", dt);
    nn::ReLU relu;
    nn::LeakyReLU leaky(nn::LeakyReLUOptions().negative_slope(0.2));
    nn::Sigmoid sigmoid;
    nn::Tanh tanh;
    nn::Softmax softmax(1);
    nn::LogSoftmax log_softmax(0);
    const std::vector<std::pair<std::string, nn::Module*>> mods{{"relu", &relu},       {"leaky_relu", &leaky},
                                                                {"sigmoid", &sigmoid}, {"tanh", &tanh},
                                                                {"softmax", &softmax}, {"log_softmax", &log_softmax}};
    for (const auto& [name, m] : mods) {
      INFO(name << " " << sorix::dtype_name(dt));
      Tensor x = param(c.at("x"));
      Tensor y = (*m)(x);
      check_matches(y, c.at(name + "_y"), "y");
      y.backward(c.at(name + "_gy"));
      check_matches(x.grad(), c.at(name + "_dx"), "dx");
    }
  }
}
