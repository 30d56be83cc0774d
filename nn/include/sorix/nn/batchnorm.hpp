#pragma once
// nn::BatchNorm1d / BatchNorm2d / BatchNorm3d, as torch's: per-channel normalisation of [N, C] or
// [N, C, L] (1d), [N, C, H, W] (2d), [N, C, D, H, W] (3d).
//
//   y = (x - mean) / sqrt(var + eps) * weight + bias
// Training: mean/var are the batch statistics over N (and L) per channel (biased variance); the
// running statistics are updated as running = (1 - momentum) * running + momentum * batch, with
// the unbiased variance for running_var (as PyTorch); num_batches_tracked counts the steps, and a
// momentum of nullopt gives the cumulative average (factor 1 / num_batches_tracked).
// Eval: the running statistics are used (unless track_running_stats is false: batch statistics).
//
// functional::batch_norm is one fused op: a forward kernel (statistics, normalisation, running
// update) and a hand-written fused backward
//   dx = invstd * w * (g - mean(g) - xhat * mean(g * xhat)),  dweight = sum(g * xhat),  dbias = sum(g)
// (eval: dx = g * w * invstd). Under create_graph the backward is written with Tensor ops, so it
// differentiates again.
// Dtypes: float32 or float64 (statistics accumulate in double). Threading/determinism: channel
// reductions run over the batch in a fixed order (the batch tree; the statistics of planes of 64
// values or more from each plane's moments, fixed chains along the plane), the work is split
// into fixed blocks of planes, channels or rows run as parallel tasks, so results are
// bit-identical for any thread count.
#include <cstdint>
#include <optional>
#include <string>

#include "sorix/core/tensor.hpp"
#include "sorix/nn/module.hpp"

namespace sorix::nn {

namespace fusion {
struct ConvFeed;  // internal: a fused convolution's output and gradients (nn/src/conv_feed.hpp)
}

struct BatchNormOptions {
  BatchNormOptions(std::int64_t num_features) : num_features_(num_features) {}  // NOLINT: implicit, as PyTorch's
  BatchNormOptions& num_features(std::int64_t v) { num_features_ = v; return *this; }
  BatchNormOptions& eps(double v) { eps_ = v; return *this; }
  /// nullopt: cumulative moving average (1 / num_batches_tracked).
  BatchNormOptions& momentum(std::optional<double> v) { momentum_ = v; return *this; }
  BatchNormOptions& affine(bool v) { affine_ = v; return *this; }
  BatchNormOptions& track_running_stats(bool v) { track_running_stats_ = v; return *this; }
  std::int64_t num_features() const { return num_features_; }
  double eps() const { return eps_; }
  std::optional<double> momentum() const { return momentum_; }
  bool affine() const { return affine_; }
  bool track_running_stats() const { return track_running_stats_; }

 private:
  std::int64_t num_features_;
  double eps_ = 1e-5;
  std::optional<double> momentum_ = 0.1;
  bool affine_ = true;
  bool track_running_stats_ = true;
};

using BatchNorm1dOptions = BatchNormOptions;
using BatchNorm2dOptions = BatchNormOptions;
using BatchNorm3dOptions = BatchNormOptions;

namespace functional {
/// Batch normalisation of input [N, C, *] (channels in dim 1), as torch.nn.functional.batch_norm.
/// weight, bias, running_mean, running_var are [C] or undefined (no affine / no running stats).
/// training: batch statistics, and running_mean/var (when defined) are updated in place with
/// `momentum`; otherwise running_mean/var (then required) are used.
/// Errors (std::invalid_argument): fewer than 2 dims; a [C] tensor whose size is not C; dtype
/// mismatch; training with one value per channel ("Expected more than 1 value per channel when
/// training"); eps < 0.
Tensor batch_norm(const Tensor& input, const Tensor& running_mean, const Tensor& running_var,
                  const Tensor& weight = Tensor(), const Tensor& bias = Tensor(), bool training = false,
                  double momentum = 0.1, double eps = 1e-5);
/// batch_norm whose training statistics (and their gradients) are the whole batch's under a batch
/// shard (sorix/parallel/batch_tree.hpp; nn::DistributedDataParallel sets it): the same bits on
/// every rank as batch_norm on the whole batch in one process. Without a shard, batch_norm.
Tensor sync_batch_norm(const Tensor& input, const Tensor& running_mean, const Tensor& running_var,
                       const Tensor& weight = Tensor(), const Tensor& bias = Tensor(), bool training = false,
                       double momentum = 0.1, double eps = 1e-5);
}  // namespace functional

/// D = 1, 2, 3: BatchNorm1d, BatchNorm2d, BatchNorm3d.
template <std::size_t D>
class BatchNormNd : public Module {
 public:
  /// weight = 1, bias = 0 (parameters, when affine); running_mean = 0, running_var = 1,
  /// num_batches_tracked = 0 (int64, 0-dim) (buffers, when track_running_stats).
  explicit BatchNormNd(const BatchNormOptions& options, Dtype dtype = Dtype::Float32);
  explicit BatchNormNd(std::int64_t num_features) : BatchNormNd(BatchNormOptions(num_features)) {}

  /// Input [N, C] or [N, C, L] (1d), [N, C, H, W] (2d), [N, C, D, H, W] (3d) with
  /// C == num_features; anything else throws std::invalid_argument.
  Tensor forward(const Tensor& input) override;
  /// relu(forward(input)) as one op, in the same bits forward and backward (relu's mask is
  /// recomputed from the input in the backward, not read from a saved output): two passes over
  /// the activations fewer forward, three fewer backward. Sequential runs a BatchNorm stage
  /// followed by a ReLU stage through it.
  Tensor forward_relu(const Tensor& input);
  /// max_pool2d(relu(forward(input)), 2) (kernel 2 x 2, stride 2, no padding, floor mode) as one
  /// op, in the same bits forward and backward (which NaN, where NaNs meet, aside), for an input
  /// [N, C, H, W] with H, W >= 2 (else std::invalid_argument; so BatchNorm2d and SyncBatchNorm
  /// only): only the pooled output [N, C, H / 2, W / 2] is written, with one byte per window (its
  /// winner and relu's factor there) kept for the backward, which rebuilds the pool's and relu's
  /// gradient from the pooled gradient and those bytes plane by plane in cache: two passes over
  /// the activations fewer forward, four fewer backward. Sequential runs BatchNorm2d (or
  /// SyncBatchNorm) + ReLU + MaxPool2d(2) stages through it.
  Tensor forward_relu_pool(const Tensor& input);
  /// forward_relu_pool of a Conv2d's output, made by Sequential's fusion of Conv2d + BatchNorm2d
  /// + ReLU + MaxPool2d(2) (internal: nn/src/conv_feed.hpp). The op it records also gives the
  /// convolution's weight and bias gradients, in the same bits as the modules one by one.
  Tensor forward_relu_pool(const fusion::ConvFeed& conv);
  std::string name() const override { return D == 1 ? "BatchNorm1d" : D == 2 ? "BatchNorm2d" : "BatchNorm3d"; }
  /// "128, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True" (PyTorch's text).
  std::string extra_repr() const override;
  const BatchNormOptions& options() const { return options_; }
  void reset_running_stats();
  void reset_parameters();

  Tensor weight, bias;                                  // [C], when affine
  Tensor running_mean, running_var, num_batches_tracked;  // when track_running_stats

  /// SyncBatchNorm's mode (set by nn::convert_sync_batchnorm): in training, the statistics and
  /// their gradients are the whole batch's — finished across the ranks of the current batch shard
  /// (sorix/parallel/batch_tree.hpp, set by nn::DistributedDataParallel) by the batch tree, so
  /// every rank gets the single-process bits. Without a shard it changes nothing.
  void set_sync(bool on) { sync_ = on; }
  bool sync() const { return sync_; }

 protected:
  /// forward's body; any_rank accepts every input [N, C, *] (SyncBatchNorm); relu: forward_relu;
  /// pool (with relu): forward_relu_pool; conv (with pool): input is that convolution's output.
  Tensor forward_checked(const Tensor& input, bool any_rank, bool relu = false, bool pool = false,
                         const fusion::ConvFeed* conv = nullptr);
  bool sync_ = false;

 private:
  BatchNormOptions options_;
};
using BatchNorm1d = BatchNormNd<1>;
using BatchNorm2d = BatchNormNd<2>;
using BatchNorm3d = BatchNormNd<3>;

/// BatchNorm over any input [N, C, *] whose training statistics (and their gradients) are the
/// whole batch's across the ranks of nn::DistributedDataParallel (torch.nn.SyncBatchNorm; see
/// BatchNormNd::set_sync). Without a batch shard it is BatchNorm. Same parameters and buffers.
class SyncBatchNorm : public BatchNormNd<1> {
 public:
  explicit SyncBatchNorm(const BatchNormOptions& options, Dtype dtype = Dtype::Float32) : BatchNormNd<1>(options, dtype) {
    sync_ = true;
  }
  explicit SyncBatchNorm(std::int64_t num_features) : SyncBatchNorm(BatchNormOptions(num_features)) {}
  Tensor forward(const Tensor& input) override { return forward_checked(input, true); }
  std::string name() const override { return "SyncBatchNorm"; }
};

}  // namespace sorix::nn
