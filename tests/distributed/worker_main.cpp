// The rank program of tests/distributed/test_distributed.cpp (started by it, one process per rank).
//
//   worker train  <store> <rank> <world> <out_file>   a few training steps; world 0: one process,
//                                                    no process group, plain BatchNorm
//   worker train_cnn ...                             the same with a small CNN
//   worker train_mixed ...                           a grouped Conv2d and a grouped ConvTranspose2d
//                                                    trained on the sum of MSE, L1, smooth L1,
//                                                    Huber, BCE, BCE with logits, KLDiv batchmean, NLL
//   worker train_buckets ...                         the MLP with 1 KiB gradient buckets
//   worker overlap ...                               a probe in backward waits for the last
//                                                    layer's buckets to be reduced (overlap)
//   worker die_backward <store_dir> <rank> <world> <victim>  rank `victim` kills itself in the
//                                                    middle of a backward (buckets in flight)
// <store> is a directory (file://) or tcp://host:port (the TCP store rank 0 serves).
//   worker missing <store_dir> <rank> <world> <timeout_ms> joins a group whose peers never come
//   worker die    <store_dir> <rank> <world> <victim>      trains; rank `victim` kills itself mid-run
//   worker collectives <store_dir> <rank> <world> -        barrier, broadcast, all_gather, all_reduce
//   worker misuse <store_dir> <rank> <world> rows|model    every rank 100 rows of a batch (not the
//                                                          tree's split), or rank 1 a wider model
//
// Exit codes: 0 done; 3 the expected clear error (printed on stderr); 1 anything else.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <sstream>
#include <thread>
#include <fstream>
#include <iostream>
#include <string>

#include "sorix/core/hash.hpp"
#include "sorix/nn/data/distributed_sampler.hpp"
#include "sorix/autograd/node.hpp"
#include "sorix/nn/distributed/data_parallel.hpp"
#include "sorix/nn/distributed/process_group.hpp"
#include "sorix/nn/optim/sgd.hpp"
#include "sorix/sorix.hpp"

namespace nn = sorix::nn;
namespace dist = sorix::distributed;
using sorix::Tensor;

namespace {

// DistributedDataParallel's bucket size in train() (train_buckets: 1 KiB, several buckets).
double g_bucket_cap_mb = 25.0;

// The small benchmark-like MLP: Linear, BatchNorm, ReLU, Dropout, Linear.
std::shared_ptr<nn::Sequential> make_model() {
  auto m = std::make_shared<nn::Sequential>();
  m->push_back(nn::Linear(20, 64));
  m->push_back(nn::BatchNorm1d(64));
  m->push_back(nn::ReLU());
  m->push_back(nn::Dropout(0.3));
  m->push_back(nn::Linear(64, 10));
  return m;
}

// A small CNN on the same rows, its two BatchNorms one of each form of the statistics (planes of
// 64 values or more: each plane's moments, with a tail of 8; shorter: the channel chains):
// [N, 20] as [N, 1, 4, 5] -> Conv2d(4, 3x3, padding 3) -> [N, 4, 8, 9] -> BatchNorm2d -> ReLU ->
// Conv2d(4, 3x3, stride 2) -> [N, 4, 3, 4] -> BatchNorm2d -> ReLU -> MaxPool2d(2) -> Flatten ->
// Dropout -> Linear(10).
std::shared_ptr<nn::Sequential> make_cnn() {
  auto m = std::make_shared<nn::Sequential>();
  m->push_back(nn::Unflatten(1, {1, 4, 5}));
  m->push_back(nn::Conv2d(nn::Conv2dOptions(1, 4, 3).padding(3)));
  m->push_back(nn::BatchNorm2d(4));  // 72-value planes
  m->push_back(nn::ReLU());
  m->push_back(nn::Conv2d(nn::Conv2dOptions(4, 4, 3).stride(2)));
  m->push_back(nn::BatchNorm2d(4));  // 12-value planes
  m->push_back(nn::ReLU());
  m->push_back(nn::MaxPool2d(nn::MaxPool2dOptions(2)));  // SyncBatchNorm + ReLU + pool fused; 3 x 4 -> 1 x 2
  m->push_back(nn::Flatten());
  m->push_back(nn::Dropout(0.3));
  m->push_back(nn::Linear(8, 10));
  return m;
}

// Trains 6 optimizer steps (the last two accumulate two batches each) on synthetic data; rank
// `victim` (>= 0) kills itself before its third step. Returns the digest of weights, buffers and
// losses.
std::string train(bool distributed, int victim, bool cnn = false) {
  sorix::manual_seed(1234);
  const std::int64_t N = 600, batch = 200;
  const Tensor X = sorix::randn({N, 20});
  const Tensor Y = sorix::randint(0, 10, {N});
  auto model = cnn ? make_cnn() : make_model();
  std::shared_ptr<nn::Module> net = model;
  std::shared_ptr<nn::DistributedDataParallel> ddp;
  if (distributed) {
    ddp = std::make_shared<nn::DistributedDataParallel>(nn::convert_sync_batchnorm(model),
                                                        nn::DistributedDataParallelOptions().bucket_cap_mb(g_bucket_cap_mb));
    net = ddp;
  }
  sorix::optim::SGD opt(model->parameters(), sorix::optim::SGDOptions(0.05).momentum(0.9));
  sorix::data::DistributedSampler sampler(N, sorix::data::DistributedSamplerOptions(batch).seed(7),
                                          distributed ? -1 : 0, distributed ? -1 : 1);
  sorix::Sha256 losses;
  int step = 0;
  auto loss_of = [&](const Tensor& idx) {
    Tensor x = sorix::index_select(X, 0, idx), y = sorix::index_select(Y, 0, idx);
    Tensor loss = nn::functional::cross_entropy(net->forward(x), y);
    losses.update(loss);
    return loss;
  };
  for (std::int64_t epoch = 0; epoch < 2; ++epoch) {
    sampler.set_epoch(epoch);
    if (epoch == 0) {
      while (auto idx = sampler.next()) {
        if (step++ == 2 && victim == dist::get_rank()) ::raise(SIGKILL);
        opt.zero_grad();
        loss_of(*idx).backward();
        opt.step();
      }
    } else {
      // Gradient accumulation: two batches per step (no_sync on the first).
      opt.zero_grad();
      auto a = sampler.next();
      if (ddp) {
        auto guard = ddp->no_sync();
        loss_of(*a).backward();
      } else {
        loss_of(*a).backward();
      }
      loss_of(*sampler.next()).backward();
      opt.step();
      opt.zero_grad();
      loss_of(*sampler.next()).backward();
      opt.step();
    }
  }
  return sorix::sha256_hex(model->state_dict()) + " " + losses.hex_digest();
}

// A layer that passes its input through; its backward runs after the gradients of the layers
// above it and before those of the layers below it, and calls on_backward.
class BackwardProbe : public nn::Module {
 public:
  std::function<void()> on_backward;
  Tensor forward(const Tensor& x) override {
    if (!sorix::autograd::needs_grad({&x})) return x;
    Tensor y = x.detach();
    BackwardProbe* self = this;
    sorix::autograd::record(y, "BackwardProbe", {x}, [self](const Tensor& g) -> std::vector<Tensor> {
      if (self->on_backward) self->on_backward();
      return {g};
    });
    return y;
  }
  std::string name() const override { return "BackwardProbe"; }
};

using Event = nn::DistributedDataParallel::BucketEvent;

std::string events_text(const std::vector<Event>& ev) {
  std::ostringstream os;
  const char* names[] = {"ready", "handed", "reduced", "failed"};
  for (const Event& e : ev) os << names[e.kind] << " " << e.index << "; ";
  return os.str();
}

// Linear(20, 32), ReLU, probe, Linear(32, 10), every parameter its own bucket: [b2], [W2], [b1],
// [W1]. Under DDP the probe's backward waits until the communication thread has reduced buckets
// 0 and 1 (the last layer's): backward cannot go on before they are reduced, so they were reduced
// while backward ran; then the event log's order is checked. The wait is bounded (120 s) only to
// turn a broken overlap into a failure; nothing is timed. Rank `victim` kills itself in its probe
// at the second step (die_backward). Returns the digest of weights and losses after 3 steps.
std::string overlap(bool distributed, int victim) {
  sorix::manual_seed(99);
  const std::int64_t N = 200;
  const Tensor X = sorix::randn({N, 20});
  const Tensor Y = sorix::randint(0, 10, {N});
  auto probe = std::make_shared<BackwardProbe>();
  auto model = std::make_shared<nn::Sequential>();
  model->push_back(nn::Linear(20, 32));
  model->push_back(nn::ReLU());
  model->push_back(probe);
  model->push_back(nn::Linear(32, 10));
  std::shared_ptr<nn::Module> net = model;
  std::shared_ptr<nn::DistributedDataParallel> ddp;
  if (distributed) {
    ddp = std::make_shared<nn::DistributedDataParallel>(model, nn::DistributedDataParallelOptions().bucket_cap_mb(0));
    net = ddp;
    if (ddp->bucket_assignment() != std::vector<std::vector<std::size_t>>{{3}, {2}, {1}, {0}})
      throw std::runtime_error("overlap: unexpected buckets");
  }
  int step = 0;
  probe->on_backward = [&] {
    if (step == 1 && victim == dist::get_rank()) ::raise(SIGKILL);
    if (!ddp) return;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    for (;;) {
      int reduced = 0;
      for (const Event& e : ddp->bucket_events()) {
        if (e.kind == Event::BucketFailed) return;  // backward's end rethrows the error
        if (e.kind == Event::BucketReduced && e.index < 2) ++reduced;
      }
      if (reduced == 2) return;
      if (std::chrono::steady_clock::now() > deadline)
        throw std::runtime_error("overlap: buckets 0 and 1 not reduced during backward: " + events_text(ddp->bucket_events()));
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  };
  sorix::optim::SGD opt(model->parameters(), sorix::optim::SGDOptions(0.1));
  const int R = distributed ? dist::get_world_size() : 1, me = distributed ? dist::get_rank() : 0;
  const auto [b, e] = nn::DistributedDataParallel::shard_rows(N, me, R);
  sorix::Sha256 losses;
  for (step = 0; step < 3; ++step) {
    Tensor loss = nn::functional::cross_entropy(net->forward(X.narrow(0, b, e - b)), Y.narrow(0, b, e - b));
    losses.update(loss);
    opt.zero_grad();
    loss.backward();
    opt.step();
    if (!ddp) continue;
    // The order: buckets handed over in bucket order, each once; buckets 0 and 1 handed and
    // reduced before the first layer's gradients (parameters 0 and 1) were final.
    const std::vector<Event> ev = ddp->bucket_events();
    std::vector<std::size_t> handed;
    std::size_t first_early = ev.size(), reduced_01 = 0;
    bool ok = true;
    for (std::size_t i = 0; i < ev.size(); ++i) {
      if (ev[i].kind == Event::BucketHanded) handed.push_back(ev[i].index);
      if (ev[i].kind == Event::GradientReady && ev[i].index < 2) first_early = std::min(first_early, i);
      if (ev[i].kind == Event::BucketReduced && ev[i].index < 2) {
        ++reduced_01;
        ok = ok && i < first_early;
      }
    }
    ok = ok && reduced_01 == 2 && first_early < ev.size() && handed == std::vector<std::size_t>{0, 1, 2, 3};
    if (!ok) throw std::runtime_error("overlap: unexpected event order: " + events_text(ev));
  }
  return sorix::sha256_hex(model->state_dict()) + " " + losses.hex_digest();
}

// [N, 20] as [N, 4, 1, 5] -> Conv2d(4, 8, 3, padding 1, groups 2) -> ReLU ->
// ConvTranspose2d(8, 4, 3, padding 1, groups 2) -> Flatten -> Linear(20, 10), trained on the sum of
// the mean losses (every one's divisor and value over the whole batch), 4 SGD steps of 200 rows of
// 600 (7 chunks). Returns the digest of weights and losses.
std::string train_mixed(bool distributed) {
  sorix::manual_seed(4321);
  const std::int64_t N = 600, batch = 200;
  const Tensor X = sorix::randn({N, 20});
  const Tensor T = sorix::randn({N, 10});
  const Tensor B = sorix::randint(0, 2, {N, 10}).to(sorix::float32);
  const Tensor Y = sorix::randint(0, 10, {N});
  auto model = std::make_shared<nn::Sequential>();
  model->push_back(nn::Unflatten(1, {4, 1, 5}));
  model->push_back(nn::Conv2d(nn::Conv2dOptions(4, 8, 3).padding(1).groups(2)));
  model->push_back(nn::ReLU());
  model->push_back(nn::ConvTranspose2d(nn::ConvTranspose2dOptions(8, 4, 3).padding(1).groups(2)));
  model->push_back(nn::Flatten());
  model->push_back(nn::Linear(20, 10));
  std::shared_ptr<nn::Module> net = model;
  if (distributed) net = std::make_shared<nn::DistributedDataParallel>(model);
  sorix::optim::SGD opt(model->parameters(), sorix::optim::SGDOptions(0.05).momentum(0.9));
  sorix::data::DistributedSampler sampler(N, sorix::data::DistributedSamplerOptions(batch).seed(3),
                                          distributed ? -1 : 0, distributed ? -1 : 1);
  namespace F = nn::functional;
  sorix::Sha256 losses;
  sampler.set_epoch(0);
  for (int step = 0; step < 3; ++step) {
    const Tensor idx = *sampler.next();
    const Tensor z = net->forward(sorix::index_select(X, 0, idx));
    const Tensor t = sorix::index_select(T, 0, idx), b = sorix::index_select(B, 0, idx), y = sorix::index_select(Y, 0, idx);
    const Tensor parts[] = {
        F::mse_loss(z, t),
        F::l1_loss(z, t),
        F::smooth_l1_loss(z, t, nn::SmoothL1LossOptions().beta(0.5)),
        F::huber_loss(z, t, nn::HuberLossOptions().delta(0.7)),
        F::binary_cross_entropy(sorix::sigmoid(z), b),
        F::binary_cross_entropy_with_logits(z, b),
        F::kl_div(sorix::log_softmax(z, 1), sorix::softmax(t, 1), nn::KLDivLossOptions(nn::KLDivReduction::BatchMean)),
        F::nll_loss(sorix::log_softmax(z, 1), y),
    };
    Tensor loss = parts[0];
    for (std::size_t k = 0; k < std::size(parts); ++k) {
      losses.update(parts[k]);
      if (k > 0) loss = loss + parts[k];
    }
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  return sorix::sha256_hex(model->state_dict()) + " " + losses.hex_digest();
}

// The options of a rank that meets the others through the file store at `store`.
dist::InitProcessGroupOptions file_store(const std::string& store, int rank, int world,
                                         std::chrono::milliseconds timeout) {
  dist::InitProcessGroupOptions o;
  o.init_method = "file://" + store;
  o.rank = rank;
  o.world_size = world;
  o.timeout = timeout;
  return o;
}

int usage() {
  std::cerr << "usage: worker train|missing|die <store_dir> <rank> <world> <arg>\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 6) return usage();
  const std::string mode = argv[1], store = argv[2];
  const int rank = std::atoi(argv[3]), world = std::atoi(argv[4]);
  try {
    if (mode == "train" || mode == "train_cnn" || mode == "train_buckets" || mode == "overlap" || mode == "train_mixed") {
      if (mode == "train_buckets") g_bucket_cap_mb = 1.0 / 1024.0;
      const bool distributed = world > 0;
      if (distributed) {
        dist::InitProcessGroupOptions o;
        o.init_method = store.rfind("tcp://", 0) == 0 ? store : "file://" + store;
        o.rank = rank;
        o.world_size = world;
        o.timeout = std::chrono::seconds(120);
        dist::init_process_group(o);
      }
      const std::string digest = mode == "overlap"       ? overlap(distributed, -1)
                                 : mode == "train_mixed" ? train_mixed(distributed)
                                                         : train(distributed, -1, mode == "train_cnn");
      std::ofstream(argv[5]) << digest << "\n";
      if (distributed) dist::destroy_process_group();
      return 0;
    }
    if (mode == "missing") {
      const dist::InitProcessGroupOptions o = file_store(store, rank, world, std::chrono::milliseconds(std::atoi(argv[5])));
      try {
        dist::init_process_group(o);
      } catch (const std::runtime_error& e) {
        std::cerr << e.what() << "\n";
        return 3;
      }
      return 0;
    }
    if (mode == "collectives") {
      const dist::InitProcessGroupOptions o = file_store(store, rank, world, std::chrono::seconds(120));
      dist::init_process_group(o);
      bool ok = dist::get_rank() == rank && dist::get_world_size() == world;
      dist::barrier();
      Tensor b = sorix::full({3}, static_cast<double>(rank), sorix::float64);
      dist::broadcast(b, world - 1);  // every rank gets the last rank's values
      ok = ok && b.data_ptr<double>()[2] == static_cast<double>(world - 1);
      const auto all = dist::all_gather(sorix::full({2}, static_cast<double>(10 * rank), sorix::float32));
      ok = ok && static_cast<int>(all.size()) == world;
      for (int r = 0; r < world && ok; ++r) ok = all[static_cast<std::size_t>(r)].data_ptr<float>()[1] == 10.0f * static_cast<float>(r);
      Tensor ones = sorix::ones({5}, sorix::float32);
      dist::all_reduce(ones);
      ok = ok && ones.data_ptr<float>()[4] == static_cast<float>(world);
      Tensor m = sorix::full({1}, static_cast<double>(rank), sorix::float64);
      dist::all_reduce(m, dist::ReduceOp::Max);
      ok = ok && m.data_ptr<double>()[0] == static_cast<double>(world - 1);
      dist::destroy_process_group();
      ok = ok && !dist::is_initialized() && dist::get_world_size() == 1;
      return ok ? 0 : 1;
    }
    if (mode == "misuse") {
      const dist::InitProcessGroupOptions o = file_store(store, rank, world, std::chrono::seconds(120));
      dist::init_process_group(o);
      const std::string kind = argv[5];
      try {
        sorix::manual_seed(1);
        std::shared_ptr<nn::Module> model = make_model();
        if (kind == "model" && rank == 1) model = std::make_shared<nn::Linear>(20, 11);
        auto ddp = std::make_shared<nn::DistributedDataParallel>(model);
        ddp->forward(sorix::randn({100, 20}));
      } catch (const std::exception& e) {
        std::cerr << e.what() << "\n";
        return 3;
      }
      return 0;
    }
    if (mode == "die_backward") {
      const dist::InitProcessGroupOptions o = file_store(store, rank, world, std::chrono::seconds(120));
      dist::init_process_group(o);
      try {
        overlap(true, std::atoi(argv[5]));
      } catch (const std::runtime_error& e) {
        std::cerr << e.what() << "\n";
        return 3;
      }
      return 0;
    }
    if (mode == "die") {
      const dist::InitProcessGroupOptions o = file_store(store, rank, world, std::chrono::seconds(120));
      dist::init_process_group(o);
      try {
        train(true, std::atoi(argv[5]));
      } catch (const std::runtime_error& e) {
        std::cerr << e.what() << "\n";
        return 3;
      }
      return 0;
    }
  } catch (const std::exception& e) {
    std::cerr << "worker " << mode << " rank " << rank << ": " << e.what() << "\n";
    return 1;
  }
  return usage();
}
