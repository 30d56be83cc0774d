#pragma once
// The Fashion-MNIST benchmark model and recipe, shared by the training example, the determinism
// check, the training benchmark and tests/determinism:
//   784 -> Linear(128, bias=false) -> BatchNorm1d(128) -> ReLU -> Linear(64) -> ReLU
//       -> Dropout(0.2) -> Linear(10); CrossEntropyLoss; RMSprop(lr=1e-3, alpha=0.99); batch 128.
#include <cstdint>
#include <string>
#include <vector>

#include <sorix/sorix.hpp>
#include <sorix/nn/data/distributed_sampler.hpp>
#include <sorix/nn/distributed/data_parallel.hpp>

namespace sorix::examples {

inline nn::Sequential make_fashion_model() {
  return nn::Sequential(nn::Linear(nn::LinearOptions(784, 128).bias(false)), nn::BatchNorm1d(128), nn::ReLU(),
                        nn::Linear(128, 64), nn::ReLU(), nn::Dropout(0.2), nn::Linear(64, 10));
}

/// The CNN of `train_fashion_mnist --model cnn` and `bench_training --model cnn`:
///   [N, 784] -> Unflatten [N, 1, 28, 28] -> Conv2d(32, 3x3, padding 1) -> BatchNorm2d -> ReLU
///   -> MaxPool2d(2) -> Conv2d(64, 3x3, padding 1) -> BatchNorm2d -> ReLU -> MaxPool2d(2)
///   -> Flatten [N, 3136] -> Dropout(0.25) -> Linear(10); CrossEntropyLoss; Adam(lr=1e-3); batch 128.
inline nn::Sequential make_fashion_cnn() {
  return nn::Sequential(nn::Unflatten(1, {1, 28, 28}), nn::Conv2d(nn::Conv2dOptions(1, 32, 3).padding(1)),
                        nn::BatchNorm2d(32), nn::ReLU(), nn::MaxPool2d(nn::MaxPool2dOptions(2)),
                        nn::Conv2d(nn::Conv2dOptions(32, 64, 3).padding(1)), nn::BatchNorm2d(64), nn::ReLU(),
                        nn::MaxPool2d(nn::MaxPool2dOptions(2)), nn::Flatten(), nn::Dropout(0.25),
                        nn::Linear(64 * 7 * 7, 10));
}

/// n images of 784 values in [0, 1) and labels in 0..9 from `seed` (a stand-in with the real
/// data's shapes where the dataset is not installed, e.g. in CI).
inline data::TensorDataset synthetic_fashion(std::int64_t n, std::uint64_t seed) {
  Generator g(seed);
  Tensor images = rand({n, 784}, float32, &g);
  Tensor labels = randint(0, 10, {n}, int64, &g);
  return data::TensorDataset(images, labels);
}

/// Everything a short run produces, for bit-for-bit comparison.
struct RunRecord {
  std::vector<float> losses;  // one per step
  StateDict weights;          // final parameters and buffers
  StateDict optimizer;        // final optimizer state
  StateDict gradients;        // gradients of the last step
};

/// Trains the model for `steps` steps (epochs restart as needed) from `seed` on `dataset`.
/// Every random choice (init, shuffling, dropout) comes from the seed.
inline RunRecord train_steps(const data::Dataset& dataset, std::int64_t steps, std::uint64_t seed,
                             std::int64_t batch_size = 128) {
  manual_seed(seed);
  nn::Sequential model = make_fashion_model();
  optim::RMSprop opt(model.parameters(), optim::RMSpropOptions(1e-3).alpha(0.99));
  nn::CrossEntropyLoss loss_fn;
  data::DataLoader loader(dataset, data::DataLoaderOptions().batch_size(batch_size).shuffle(true).seed(seed));
  RunRecord rec;
  model.train();
  while (static_cast<std::int64_t>(rec.losses.size()) < steps) {
    for (const auto& batch : loader) {
      Tensor loss = loss_fn(model(batch.data), batch.target);
      opt.zero_grad();
      loss.backward();
      opt.step();
      rec.losses.push_back(loss.item<float>());
      if (static_cast<std::int64_t>(rec.losses.size()) == steps) break;
    }
  }
  rec.weights = model.state_dict();
  rec.optimizer = opt.state_dict();
  for (const auto& [name, p] : model.named_parameters()) {
    if (p.grad().defined()) rec.gradients.insert(name, p.grad());
  }
  return rec;
}

/// train_steps as one rank of the default process group: the same model (SyncBatchNorm) in
/// nn::DistributedDataParallel, this rank's rows of the same global batches (data::
/// DistributedSampler: DataLoader's order). Every rank returns the record train_steps gives in one
/// process, bit for bit.
inline RunRecord train_steps_distributed(const data::Dataset& dataset, std::int64_t steps, std::uint64_t seed,
                                         std::int64_t batch_size = 128) {
  manual_seed(seed);
  auto model = std::make_shared<nn::Sequential>(make_fashion_model());
  auto ddp = std::make_shared<nn::DistributedDataParallel>(nn::convert_sync_batchnorm(model));
  optim::RMSprop opt(model->parameters(), optim::RMSpropOptions(1e-3).alpha(0.99));
  nn::CrossEntropyLoss loss_fn;
  data::DistributedSampler sampler(dataset.size(), data::DistributedSamplerOptions(batch_size).seed(seed));
  RunRecord rec;
  ddp->train();
  for (std::int64_t epoch = 0; static_cast<std::int64_t>(rec.losses.size()) < steps; ++epoch) {
    sampler.set_epoch(epoch);
    while (auto idx = sampler.next()) {
      const data::Batch batch = dataset.get_batch(idx->data_ptr<std::int64_t>(), idx->numel());
      Tensor loss = loss_fn(ddp->forward(batch.data), batch.target);
      opt.zero_grad();
      loss.backward();
      opt.step();
      rec.losses.push_back(loss.item<float>());
      if (static_cast<std::int64_t>(rec.losses.size()) == steps) break;
    }
  }
  rec.weights = model->state_dict();
  rec.optimizer = opt.state_dict();
  for (const auto& [name, p] : model->named_parameters()) {
    if (p.grad().defined()) rec.gradients.insert(name, p.grad());
  }
  return rec;
}

inline std::string loss_digest(const std::vector<float>& losses) {
  return sha256_hex(losses.data(), losses.size() * sizeof(float));
}

}  // namespace sorix::examples
