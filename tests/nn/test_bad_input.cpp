// Bad input at the nn entry points: layers and their options, losses, optimizers (constructor,
// setters, loaded state), schedulers (constructor and loaded state), DataLoader and its state,
// gradient clipping. Each raises a typed exception naming the function and the offending value,
// and a refused call changes nothing. (Tests that already sit beside their feature are not
// repeated: Dropout's p in test_dropout.cpp, optimizer lr / weight_decay and loaded lr in
// test_optim.cpp, scheduler arguments in test_scheduler.cpp, dataset shapes in test_data.cpp.)
#include <sorix/sorix.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/support/errors.hpp"
#include "tests/support/values.hpp"

using namespace sorix;
namespace O = sorix::optim;
using sorix::testing::check_error;
using sorix::testing::values_of;

namespace {

const double kNan = std::nan(""), kInf = std::numeric_limits<double>::infinity();

// `sd` with entry `key` replaced by `value`.
StateDict replaced(const StateDict& sd, const std::string& key, const Tensor& value) {
  StateDict out;
  for (const auto& [name, t] : sd) out.insert(name, name == key ? value : t);
  return out;
}

std::vector<Tensor> params() { return {ones({2}, TensorOptions().requires_grad())}; }

}  // namespace

TEST_CASE("layers refuse wrong shapes, dtypes and out-of-range indices, naming the layer", "[bad_input]") {
  nn::Linear linear(3, 2);
  check_error<std::invalid_argument>([&] { linear(ones({2, 4})); }, {"linear", "[2, 4]", "in_features (3)"});
  check_error<std::invalid_argument>([&] { linear(ones({})); }, {"linear", "0-dim"});
  check_error<std::invalid_argument>([&] { linear(ones({2, 3}, Dtype::Float64)); }, {"linear", "float64", "float32"});
  check_error<std::invalid_argument>([&] { linear(arange(6.0, Dtype::Int64).reshape({2, 3})); }, {"linear", "int64"});
  check_error<std::invalid_argument>([] { nn::Linear(-1, 3); }, {"Linear", "-1"});
  nn::Conv2d conv(nn::Conv2dOptions(1, 2, 3));
  check_error<std::invalid_argument>([&] { conv(ones({1, 2, 5, 5})); }, {"conv2d", "2 channels"});
  check_error<std::invalid_argument>([&] { conv(ones({2, 3})); }, {"conv2d", "[2, 3]"});
  check_error<std::invalid_argument>([] { nn::Conv2d(nn::Conv2dOptions(1, 2, 7))(ones({1, 1, 5, 5})); }, {"conv2d", "[1, 1, 5, 5]"});
  check_error<std::invalid_argument>([] { nn::Conv2d(nn::Conv2dOptions(1, 2, 3).stride(0)); }, {"Conv2d", "stride", "0"});
  check_error<std::invalid_argument>([] { nn::Conv2d(nn::Conv2dOptions(3, 2, 3).groups(2)); }, {"Conv2d", "groups (2)"});
  check_error<std::invalid_argument>([] { nn::MaxPool2d(nn::MaxPool2dOptions(3))(ones({1, 1, 2, 2})); }, {"MaxPool2d", "[1, 1, 2, 2]"});
  check_error<std::invalid_argument>([] { nn::AvgPool2d(nn::AvgPool2dOptions(2).stride(0)); }, {"AvgPool2d", "stride"});
  nn::Embedding emb(5, 2);
  check_error<std::out_of_range>([&] { emb(tensor({std::int64_t{5}})); }, {"embedding", "index 5", "num_embeddings=5"});
  check_error<std::out_of_range>([&] { emb(tensor({std::int64_t{-1}})); }, {"embedding", "index -1"});
  check_error<std::invalid_argument>([&] { emb(tensor({1.0})); }, {"embedding", "float64"});
  check_error<std::out_of_range>([&] { nn::Softmax(3)(ones({2, 3})); }, {"softmax", "3"});
  check_error<std::invalid_argument>([&] { nn::Unflatten(1, {2, 2})(ones({2, 3})); }, {"Unflatten", "[2, 2]"});
  // Empty batches pass through (as in PyTorch).
  CHECK(linear(zeros({0, 3})).shape() == Shape{0, 2});
  CHECK(emb(zeros({0}, Dtype::Int64)).shape() == Shape{0, 2});
}

TEST_CASE("BatchNorm refuses a momentum outside [0, 1] or NaN, and a negative or NaN eps", "[bad_input]") {
  for (double bad : {kNan, kInf, -0.1, 1.5}) {
    INFO(bad);
    check_error<std::invalid_argument>([&] { nn::BatchNorm1d(nn::BatchNormOptions(3).momentum(bad)); },
                                       {"BatchNorm1d", "momentum"});
    check_error<std::invalid_argument>([&] { nn::BatchNorm2d(nn::BatchNormOptions(3).momentum(bad)); },
                                       {"BatchNorm2d", "momentum"});
  }
  check_error<std::invalid_argument>([] { nn::BatchNorm1d(nn::BatchNormOptions(3).momentum(1.5)); }, {"1.5"});
  check_error<std::invalid_argument>([] { nn::BatchNorm1d(nn::BatchNormOptions(3).eps(kNan)); }, {"BatchNorm1d", "eps", "nan"});
  // The edges and the cumulative average stay valid.
  CHECK_NOTHROW(nn::BatchNorm1d(nn::BatchNormOptions(3).momentum(0.0)));
  CHECK_NOTHROW(nn::BatchNorm1d(nn::BatchNormOptions(3).momentum(1.0)));
  CHECK_NOTHROW(nn::BatchNorm1d(nn::BatchNormOptions(3).momentum(std::nullopt)));
  check_error<std::invalid_argument>([] { nn::BatchNorm1d(3)(ones({2, 4})); }, {"BatchNorm1d", "[2, 4]"});
  check_error<std::invalid_argument>([] { nn::BatchNorm1d(3)(ones({1, 3})); }, {"batch_norm", "[1, 3]"});
}

TEST_CASE("losses refuse out-of-range targets, mismatched shapes and invalid options", "[bad_input]") {
  const Tensor logits = ones({2, 3});
  check_error<std::out_of_range>([&] { nn::CrossEntropyLoss()(logits, tensor({std::int64_t{0}, std::int64_t{3}})); },
                                 {"cross_entropy", "index 3"});
  check_error<std::out_of_range>([&] { nn::NLLLoss()(logits, tensor({std::int64_t{-2}, std::int64_t{0}})); },
                                 {"nll_loss", "index -2"});
  check_error<std::invalid_argument>([&] { nn::CrossEntropyLoss()(logits, tensor({std::int64_t{0}})); },
                                     {"cross_entropy", "[1]", "[2, 3]"});
  for (double bad : {kNan, -0.1, 1.5}) {
    INFO(bad);
    check_error<std::invalid_argument>(
        [&] { nn::CrossEntropyLoss(nn::CrossEntropyLossOptions().label_smoothing(bad))(logits, tensor({std::int64_t{0}, std::int64_t{1}})); },
        {"cross_entropy", "label_smoothing"});
  }
  check_error<std::invalid_argument>([] { nn::MSELoss()(ones({2, 3}), ones({3, 2})); }, {"mse_loss", "[2, 3]", "[3, 2]"});
  check_error<std::invalid_argument>([] { nn::BCELoss()(ones({2}) * 2.0, ones({2})); }, {"binary_cross_entropy", "2"});
  check_error<std::invalid_argument>([] { nn::HuberLoss(nn::HuberLossOptions().delta(kNan))(ones({2}), zeros({2})); },
                                     {"huber_loss", "delta", "nan"});
  check_error<std::invalid_argument>([] { nn::SmoothL1Loss(nn::SmoothL1LossOptions().beta(-1))(ones({2}), zeros({2})); },
                                     {"smooth_l1_loss", "beta", "-1"});
}

TEST_CASE("optimizers refuse betas outside [0, 1), NaN options, and groups that do not exist", "[bad_input]") {
  auto p = params();
  for (double bad : {1.0, -0.1, kNan, 5.0}) {
    INFO(bad);
    check_error<std::invalid_argument>([&] { O::Adam(p, O::AdamOptions(0.1).betas({bad, 0.999})); }, {"Adam", "beta1"});
    check_error<std::invalid_argument>([&] { O::Adam(p, O::AdamOptions(0.1).betas({0.9, bad})); }, {"Adam", "beta2"});
    check_error<std::invalid_argument>([&] { O::AdamW(p, O::AdamWOptions(0.1).betas({bad, 0.9})); }, {"AdamW", "beta1"});
  }
  check_error<std::invalid_argument>([&] { O::Adam(p, O::AdamOptions(0.1).eps(kNan)); }, {"Adam", "eps", "nan"});
  check_error<std::invalid_argument>([&] { O::SGD(p, O::SGDOptions(0.1).momentum(kInf)); }, {"SGD", "momentum", "inf"});
  check_error<std::invalid_argument>([&] { O::SGD(p, O::SGDOptions(0.1).dampening(kNan)); }, {"SGD", "dampening", "nan"});
  check_error<std::invalid_argument>([&] { O::RMSprop(p, O::RMSpropOptions(0.1).alpha(kNan)); }, {"RMSprop", "alpha", "nan"});
  check_error<std::invalid_argument>([&] { O::SGD(std::vector<Tensor>{}, O::SGDOptions(0.1)); }, {"Optimizer", "empty"});
  O::Adam adam(p, O::AdamOptions(0.1));
  check_error<std::invalid_argument>([&] { adam.set_lr(kInf); }, {"Adam::set_lr", "inf"});
  check_error<std::invalid_argument>([&] { adam.set_group_lr(0, -1); }, {"Adam::set_group_lr", "-1"});
  check_error<std::out_of_range>([&] { adam.set_group_lr(3, 0.1); }, {"Adam::set_group_lr", "group 3", "1 groups"});
  CHECK(adam.lr() == 0.1);
}

TEST_CASE("a loaded optimizer state with invalid hyper-parameters is refused whole", "[bad_input]") {
  auto p = params();
  O::Adam adam(p, O::AdamOptions(0.1));
  const StateDict sd = adam.state_dict();
  const auto f64 = [](double v) { return scalar_tensor(v, Dtype::Float64); };
  check_error<std::invalid_argument>([&] { adam.load_state_dict(replaced(sd, "group.lr", f64(kInf))); },
                                     {"load_state_dict", "learning rate inf"});
  check_error<std::invalid_argument>([&] { adam.load_state_dict(replaced(sd, "group.beta1", f64(5))); },
                                     {"load_state_dict", "beta1 5"});
  check_error<std::invalid_argument>([&] { adam.load_state_dict(replaced(sd, "group.beta2", f64(kNan))); },
                                     {"load_state_dict", "beta2 nan"});
  check_error<std::invalid_argument>([&] { adam.load_state_dict(replaced(sd, "group.eps", f64(-1))); },
                                     {"load_state_dict", "eps -1"});
  check_error<std::invalid_argument>([&] { adam.load_state_dict(replaced(sd, "group.lr", scalar_tensor(1, Dtype::Int64))); },
                                     {"load_state_dict", "group.lr", "float64"});
  CHECK(adam.lr() == 0.1);
  CHECK(adam.state_dict().at("group.beta1").item<double>() == 0.9);
}

TEST_CASE("schedulers: invalid factors in the constructor and in a loaded state", "[bad_input]") {
  auto p = params();
  O::SGD opt(p, O::SGDOptions(0.1));
  check_error<std::invalid_argument>([&] { O::StepLR(opt, 0); }, {"StepLR", "step_size", "0"});
  check_error<std::invalid_argument>([&] { O::StepLR(opt, 2, kInf); }, {"StepLR", "gamma", "inf"});
  check_error<std::invalid_argument>([&] { O::ExponentialLR(opt, -0.1); }, {"ExponentialLR", "-0.1"});
  check_error<std::invalid_argument>([&] { O::CosineAnnealingLR(opt, 10, kNan); }, {"CosineAnnealingLR", "eta_min", "nan"});
  check_error<std::invalid_argument>([&] { O::CosineAnnealingLR(opt, 10, -1); }, {"CosineAnnealingLR", "eta_min", "-1"});
  check_error<std::invalid_argument>([&] { O::ReduceLROnPlateau(opt, O::PlateauMode::Min, kNan); },
                                     {"ReduceLROnPlateau", "factor", "nan"});
  check_error<std::invalid_argument>([&] { O::LinearLR(opt, 0.5, kNan); }, {"LinearLR", "end_factor", "nan"});

  // Loaded states: each field is held to its constructor's rule; a refused load changes nothing.
  const auto f64 = [](double v) { return scalar_tensor(v, Dtype::Float64); };
  const auto i64 = [](double v) { return scalar_tensor(v, Dtype::Int64); };
  O::StepLR step(opt, 2, 0.5);
  const StateDict s = step.state_dict();
  check_error<std::invalid_argument>([&] { step.load_state_dict(replaced(s, "gamma", f64(kNan))); },
                                     {"LRScheduler::load_state_dict", "'gamma'", "nan"});
  check_error<std::invalid_argument>([&] { step.load_state_dict(replaced(s, "gamma", f64(-1))); }, {"'gamma'", "-1"});
  check_error<std::invalid_argument>([&] { step.load_state_dict(replaced(s, "step_size", i64(0))); }, {"'step_size'", "0", ">= 1"});
  check_error<std::invalid_argument>([&] { step.load_state_dict(replaced(s, "base_lr", f64(kNan))); }, {"'base_lr'", "nan"});
  check_error<std::invalid_argument>([&] { step.load_state_dict(replaced(s, "last_lr", f64(kInf))); }, {"'last_lr'", "inf"});
  check_error<std::invalid_argument>([&] { step.load_state_dict(replaced(s, "last_epoch", i64(-5))); }, {"'last_epoch'", "-5"});
  step.step();
  step.step();
  CHECK(opt.lr() == 0.05);  // the refused loads left the schedule as it was
  O::ReduceLROnPlateau plateau(opt);
  const StateDict r = plateau.state_dict();
  check_error<std::invalid_argument>([&] { plateau.load_state_dict(replaced(r, "factor", f64(5))); }, {"'factor'", "5", "[0, 1)"});
  check_error<std::invalid_argument>([&] { plateau.load_state_dict(replaced(r, "min_lr", f64(-1))); }, {"'min_lr'", "-1"});
  check_error<std::invalid_argument>([&] { plateau.load_state_dict(replaced(r, "mode", i64(7))); }, {"'mode'", "7"});
  check_error<std::invalid_argument>([&] { plateau.load_state_dict(replaced(r, "best", f64(kNan))); }, {"'best'", "nan"});
  CHECK_NOTHROW(plateau.load_state_dict(r));  // +inf for "best" (nothing seen yet) is valid
  O::CosineAnnealingLR cosine(opt, 10);
  const StateDict c = cosine.state_dict();
  check_error<std::invalid_argument>([&] { cosine.load_state_dict(replaced(c, "T_max", i64(0))); }, {"'T_max'", "0"});
  check_error<std::invalid_argument>([&] { cosine.load_state_dict(replaced(c, "eta_min", f64(kNan))); }, {"'eta_min'", "nan"});
}

TEST_CASE("DataLoader: batch size, loaded state, and ownership of a temporary dataset", "[bad_input]") {
  using data::DataLoader;
  using data::DataLoaderOptions;
  data::TensorDataset ds(arange(8.0).reshape({4, 2}), arange(4.0));
  for (std::int64_t bad : {std::int64_t{0}, std::int64_t{-3}}) {
    check_error<std::invalid_argument>([&] { DataLoader(ds, DataLoaderOptions(bad)); }, {"DataLoader", "batch_size", std::to_string(bad)});
  }
  DataLoader loader(ds, DataLoaderOptions(2).shuffle(true).seed(1));
  const StateDict sd = loader.state_dict();
  check_error<std::invalid_argument>([&] { loader.load_state_dict(replaced(sd, "epoch", scalar_tensor(-1, Dtype::Int64))); },
                                     {"DataLoader::load_state_dict", "epoch", "-1"});
  check_error<std::invalid_argument>([&] { loader.load_state_dict(replaced(sd, "generator", zeros({3}, Dtype::Int64))); },
                                     {"DataLoader::load_state_dict", "generator", "[3]"});
  // A temporary dataset is owned: it is gone after this statement, the loader's copy is not.
  DataLoader owning(data::TensorDataset(arange(6.0).reshape({3, 2}), arange(3.0)), DataLoaderOptions(3));
  std::vector<float> seen;
  for (const auto& batch : owning) seen = values_of<float>(batch.data);
  CHECK(seen == std::vector<float>{0, 1, 2, 3, 4, 5});
}

TEST_CASE("gradient clipping refuses NaN and negative limits", "[bad_input]") {
  auto p = params();
  check_error<std::invalid_argument>([&] { nn::utils::clip_grad_norm_(p, kNan); }, {"clip_grad_norm_", "max_norm", "nan"});
  check_error<std::invalid_argument>([&] { nn::utils::clip_grad_norm_(p, -1.0); }, {"clip_grad_norm_", "-1"});
  check_error<std::invalid_argument>([&] { nn::utils::clip_grad_norm_(p, 1.0, kNan); }, {"clip_grad_norm_", "norm_type", "nan"});
  check_error<std::invalid_argument>([&] { nn::utils::clip_grad_value_(p, kNan); }, {"clip_grad_value_", "nan"});
}
