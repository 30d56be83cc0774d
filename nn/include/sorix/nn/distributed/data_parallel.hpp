#pragma once
// nn::DistributedDataParallel: data-parallel training across the ranks of a process group, with
// the same trained bits for any number of ranks (and threads) as one process on the whole batch.
//
//   sorix::distributed::init_process_group({.init_method = "env://"});
//   auto ddp = std::make_shared<nn::DistributedDataParallel>(nn::convert_sync_batchnorm(model));
//   for (...) {                                  // each rank: its rows of the same global batch
//     Tensor loss = nn::functional::cross_entropy(ddp->forward(x_rank), y_rank);
//     opt.zero_grad(); loss.backward(); opt.step();   // backward ends with the reduced gradients
//   }
//
// The guarantee rests on the batch tree (sorix/parallel/batch_tree.hpp): every sum over the batch
// is a pairwise tree over chunks of kBatchChunk rows, and rank r holds rows of exactly one tree
// node, split_batch_tree(chunks, world)[r] (data::DistributedSampler gives these rows; forward
// checks them). A rank's gradients are then its node of the global tree, computed from its rows
// alone; for each bucket (below) the rank sends its node's shards to the shards' owners
// (all-to-all), each owner finishes the tree for its shard in the tree's order, and the shards
// are gathered: the engine moves bytes, sorix does every addition. The losses' means,
// SyncBatchNorm's statistics and Dropout's masks see the whole batch through the batch shard that forward sets for the step
// (SyncBatchNorm's weight and bias gradients come out of its backward as whole-batch values and
// are not reduced again). Plain BatchNorm keeps each rank's own statistics (as PyTorch's): use
// convert_sync_batchnorm for the guarantee.
//
// Buckets overlapped with backward (as PyTorch's Reducer): the parameters are grouped, in reverse
// order, into buckets of about bucket_cap_mb (one dtype each). During backward, as soon as the
// last gradient of a bucket's parameters is accumulated (autograd::on_leaf_gradient_ready), the
// bucket's values are copied into a flat buffer and handed to this instance's communication
// thread (a std::thread, outside the TBB arena), which exchanges and finishes it while backward
// goes on; buckets are handed over in bucket order on every rank. backward() returns once every
// bucket is reduced (the reduced gradients are in grad() then, as in PyTorch). The collectives
// SyncBatchNorm and the loss make go through the same thread, in the order they are made.
// Costs: 2 (R - 1) / R times the gradient bytes per rank per step, as a ring all-reduce; with a
// world size that does not divide the chunks into equal tree nodes, ranks hold unequal rows (the
// largest node is at most twice the smallest). See docs/distributed.md.
// Supported inside the module: any layer whose batch reductions are the library's (Linear,
// Conv1d/Conv2d/ConvTranspose2d with any groups, BatchNorm via convert_sync_batchnorm, Dropout,
// activations, pooling); the mean and sum losses (CrossEntropy, NLL, MSE, L1, smooth L1, Huber,
// BCE, BCE with logits, KLDiv) give whole-batch values over losses whose first dim is the step's
// rows (docs/distributed.md).
// Threading: forward and backward on one thread per rank; the collectives run on the instance's
// communication thread (joined by the destructor). One forward per backward; an error of a
// collective (a peer gone, a timeout) is rethrown by forward or backward as std::runtime_error
// naming the rank and the operation, and every later call rethrows it.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sorix/nn/module.hpp"
#include "sorix/parallel/batch_tree.hpp"

namespace sorix::distributed {
class ProcessGroup;
}

namespace sorix::nn {

struct DistributedDataParallelOptions {
  /// Rank whose parameters and buffers every rank starts from.
  DistributedDataParallelOptions& broadcast_root(int v) { broadcast_root_ = v; return *this; }
  int broadcast_root() const { return broadcast_root_; }
  /// Size of a gradient bucket in MiB (PyTorch's bucket_cap_mb): a bucket is closed once its
  /// gradients take at least this much. Smaller buckets start communicating earlier in backward.
  /// Does not change the bits.
  DistributedDataParallelOptions& bucket_cap_mb(double v) { bucket_cap_mb_ = v; return *this; }
  double bucket_cap_mb() const { return bucket_cap_mb_; }

 private:
  int broadcast_root_ = 0;
  double bucket_cap_mb_ = 25.0;
};

class DistributedDataParallel : public Module {
 public:
  /// Checks that every rank's module has the same parameters and buffers (names, shapes, dtypes;
  /// std::runtime_error naming the first difference otherwise), then copies the root's values to
  /// every rank. The default process group must be initialized.
  explicit DistributedDataParallel(std::shared_ptr<Module> module, DistributedDataParallelOptions options = {});
  ~DistributedDataParallel() override;

  /// In training with grad mode on: input [rows, ...] holds this rank's rows of the step's global
  /// batch (exchanged: a few bytes); the rows must be the rank's tree node (std::invalid_argument
  /// naming the expected rows otherwise). Sets the batch shard until this step's gradients are
  /// reduced (at the end of backward) or the next forward. Otherwise (eval, no grad): the module's
  /// forward on the local rows, nothing exchanged.
  Tensor forward(const Tensor& input) override;
  std::string name() const override { return "DistributedDataParallel"; }

  std::shared_ptr<Module> module() const { return module_; }

  /// While the guard lives, backward keeps this rank's gradient nodes of each step without
  /// communicating; the first backward after it ends reduces every kept step, in order, and adds
  /// them to grad() as one process accumulating the same steps would (gradient accumulation).
  class NoSyncGuard {
   public:
    explicit NoSyncGuard(DistributedDataParallel& ddp) : ddp_(ddp), previous_(ddp.sync_) { ddp.sync_ = false; }
    ~NoSyncGuard() { ddp_.sync_ = previous_; }
    NoSyncGuard(const NoSyncGuard&) = delete;
    NoSyncGuard& operator=(const NoSyncGuard&) = delete;

   private:
    DistributedDataParallel& ddp_;
    bool previous_;
  };
  NoSyncGuard no_sync() { return NoSyncGuard(*this); }

  /// The rows [begin, end) of a global batch of `global_rows` that `rank` of `world_size` holds.
  static std::pair<std::int64_t, std::int64_t> shard_rows(std::int64_t global_rows, int rank, int world_size);

  /// The buckets: each one's parameter indices (into module()->parameters()), in the order they
  /// are filled (reverse parameter order). Parameters that are not reduced (SyncBatchNorm's weight
  /// and bias, whose gradients are whole-batch values already) are in none.
  std::vector<std::vector<std::size_t>> bucket_assignment() const;

  /// What the last synchronised backward did, in the order it happened (for tests and tracing):
  /// a parameter's gradient became final (GradientReady, index = parameter), a bucket was handed
  /// to the communication thread (BucketHanded, index = bucket), the communication thread finished
  /// reducing it (BucketReduced) or its collective failed (BucketFailed; backward rethrows the
  /// error). Gradient-accumulation steps kept by no_sync are not listed. Thread-safe.
  struct BucketEvent {
    enum Kind { GradientReady, BucketHanded, BucketReduced, BucketFailed } kind;
    std::size_t index;
  };
  std::vector<BucketEvent> bucket_events() const;

  struct State;  // the step's shard, the buckets, the kept gradient nodes (data_parallel.cpp)

 private:
  std::shared_ptr<Module> module_;
  DistributedDataParallelOptions options_;
  distributed::ProcessGroup* group_;
  std::shared_ptr<State> state_;
  bool sync_ = true;
};

/// Sets SyncBatchNorm's mode (BatchNormNd::set_sync) on every BatchNorm1d/2d/3d in module and
/// below (the same objects: parameters, buffers and handles are kept). Returns module.
std::shared_ptr<Module> convert_sync_batchnorm(std::shared_ptr<Module> module);

}  // namespace sorix::nn
