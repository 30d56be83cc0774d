#pragma once
// Shared by the tests of Sequential's fused BatchNorm stages (BatchNorm + ReLU, BatchNorm + ReLU +
// MaxPool2d): the modules, and the check that a fused run gives the bits of the modules run apart.
#include <catch2/catch.hpp>

#include <cstdint>
#include <memory>
#include <string>

#include <sorix/autograd/node.hpp>
#include <sorix/sorix.hpp>

#include "support/gradcheck.hpp"

namespace sorix::testing {

/// A BatchNorm of C channels (momentum 0.3); affine: weights of both signs and a bias, so that
/// relu's mask (and a pool's winners) cut both ways.
template <class BN>
std::shared_ptr<BN> make_bn(std::int64_t C, bool affine, Dtype dtype) {
  auto bn = std::make_shared<BN>(nn::BatchNormOptions(C).affine(affine).momentum(0.3), dtype);
  if (affine) {
    NoGradGuard no_grad;
    bn->weight.copy_(randn_f64({C}, 21, false).to(dtype));
    bn->bias.copy_(randn_f64({C}, 22, false).to(dtype));
  }
  return bn;
}

inline std::string grad_fn_name(const Tensor& t) {
  return t.grad_fn() ? t.grad_fn()->name() : std::string("(none)");
}

/// seq (its first stage bn) against apart(x2) (bn2 and the other stages run one by one) on a copy
/// of input(seed): the node `fused` ran, and the outputs, every gradient and the running
/// statistics are the same bits, in training and then in eval.
template <class BN, class Apart, class Input>
void check_fused_against_apart(nn::Sequential& seq, BN& bn, BN& bn2, Apart&& apart, Input&& input,
                               const Shape& out_shape, Dtype dtype, bool affine, const std::string& fused) {
  const Tensor weights = randn_f64(out_shape, 23, false).to(dtype);  // the loss's weights
  for (bool training : {true, false}) {
    INFO((training ? "training" : "eval"));
    seq.train(training);
    bn2.train(training);
    Tensor x = input(training ? 24 : 25).requires_grad_();
    Tensor x2 = x.detach().clone().requires_grad_();
    Tensor out = seq(x);
    Tensor out2 = apart(x2);
    CHECK(grad_fn_name(out) == fused);
    CHECK(bit_identical(out, out2));
    (out * weights).sum().backward();
    (out2 * weights).sum().backward();
    CHECK(bit_identical(x.grad(), x2.grad()));
    if (affine) {
      CHECK(bit_identical(bn.weight.grad(), bn2.weight.grad()));
      CHECK(bit_identical(bn.bias.grad(), bn2.bias.grad()));
    }
    CHECK(bit_identical(bn.running_mean, bn2.running_mean));
    CHECK(bit_identical(bn.running_var, bn2.running_var));
  }
}

}  // namespace sorix::testing
