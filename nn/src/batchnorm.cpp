// BatchNorm: the fused forward (statistics, normalisation, running update) and its hand-written
// fused backward, side by side; their loops are the kernel layer's (core/internal/sorix_core/kernels/batchnorm.hpp).
#include "sorix/nn/batchnorm.hpp"

#include <cmath>
#include <memory>
#include <optional>
#include <sstream>
#include <tuple>

#include "sorix_autograd/ops_internal.hpp"
#include "sorix_core/kernels/batchnorm.hpp"
#include "sorix/nn/init.hpp"
#include "sorix/nn/pooling.hpp"
#include "conv_feed.hpp"

namespace sorix::nn {

namespace {

using kernels::bn::BnDims;
using kernels::bn::BnSaved;
using kernels::bn::batch_stats;
using kernels::bn::normalize;

struct BnGrads {
  Tensor dx, dw, db;
  Tensor conv_dw, conv_db;  // a fused convolution's (conv_feed.hpp)
};

// The fused backward (not recorded). Training: dx = invstd * w * (g - sum_g / M - (x - mean) * k)
// with k = dot * invstd^2 / M, dot = sum(g * (x - mean)); eval: dx = g * w * invstd. With a fused
// convolution before it (conv, with a pool), dx is made image by image into the convolution's
// weight and bias gradients instead (conv_feed.hpp).
template <class T>
BnGrads bn_backward(const T* g, const T* x, const T* w, const BnDims& d, const BnSaved& s, bool training,
                    bool need_x, bool need_w, bool need_b, const Shape& xshape, parallel::BatchReducer* reducer,
                    bool relu, const kernels::BnPool<T>* pool, const fusion::ConvGrads* conv = nullptr) {
  // A fused ReLU: g is relu's gradient first, its mask recomputed from x with the forward's constants
  // (a fused pool: g is the pooled gradient, its winners and relu's factor in the forward's codes).
  std::vector<T> bias(relu ? d.C : 0);
  for (std::size_t c = 0; c < bias.size(); ++c) bias[c] = static_cast<T>(s.shift[c]);
  const kernels::bn::NormalizeConstants<T> nc =
      kernels::bn::normalize_constants<T>(relu ? d.C : 0, s, w, relu ? bias.data() : nullptr);
  const kernels::BnRelu<T> mask = nc.relu();
  const kernels::BnRelu<T>* gate = relu ? &mask : nullptr;
  std::vector<double> sum_g(d.C, 0.0), dot(d.C, 0.0);
  kernels::bn::backward_sums(g, x, d, s, sum_g.data(), dot.data(), training ? reducer : nullptr, gate, pool);
  BnGrads r;
  const auto C = static_cast<std::int64_t>(d.C);
  if (need_b) {
    r.db = empty({C}, dtype_of_v<T>);
    for (std::size_t c = 0; c < d.C; ++c) sorix::detail::flat<T>(r.db)[c] = static_cast<T>(sum_g[c]);
  }
  if (need_w) {
    r.dw = empty({C}, dtype_of_v<T>);
    for (std::size_t c = 0; c < d.C; ++c) sorix::detail::flat<T>(r.dw)[c] = static_cast<T>(dot[c] * s.invstd[c]);
  }
  if (need_x) {
    r.dx = empty(xshape, dtype_of_v<T>);
    kernels::bn::backward_dx(g, x, w, d, s, sum_g.data(), dot.data(), training, sorix::detail::flat<T>(r.dx), gate,
                             pool);
  }
  if (conv != nullptr) {
    const kernels::bn::DxConstants<T> c = kernels::bn::dx_constants(w, d, s, sum_g.data(), dot.data(), training);
    const fusion::ImageGrad image_dx = [&](std::size_t n, void* out) {
      kernels::bn::pooled_backward_dx_image(g, x, d, c, *pool, n, static_cast<T*>(out));
    };
    std::tie(r.conv_dw, r.conv_db) = conv->param_grads(image_dx);
  }
  return r;
}

// The planes of a fused 2 x 2 pool.
struct PoolSides {
  std::size_t H, W;
};

void check_channel_tensor(const Tensor& t, const char* what, const Tensor& input, std::size_t C) {
  if (!t.defined()) return;
  check(t.shape() == Shape{static_cast<std::int64_t>(C)}, "batch_norm", what, " must have shape [", C,
        "] (the channel dim 1 of input ", input.shape(), "), got ", t.shape());
  check(t.dtype() == input.dtype(), "batch_norm", what, " dtype ", dtype_name(t.dtype()),
        " does not match input dtype ", dtype_name(input.dtype()));
}

}  // namespace

namespace functional {

namespace {
// relu: the ReLU after it fused in (relu(batch_norm(...)) in the same bits, two passes fewer
// forward and three backward; BatchNorm + ReLU stages of a Sequential run this). pool (with
// relu): a 2 x 2 max pool with stride 2 after it, fused too (max_pool2d(relu(batch_norm(...)), 2)
// in the same bits: only the pooled output and one code byte per window are written, and the
// backward rebuilds the pool's and relu's gradient from the pooled one and the codes; BatchNorm +
// ReLU + MaxPool2d(2) stages run this).
Tensor batch_norm_flat(const Tensor& input, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                       const Tensor& bias, bool training, double momentum, double eps, bool sync = false,
                       bool relu = false, bool pool = false,
                       const fusion::ConvFeed* conv = nullptr) {
  detail::check_defined(input, "batch_norm");
  const Shape xs = input.shape();
  check(xs.size() >= 2, "batch_norm", "expected an input of at least 2 dims [N, C, *], got shape ", xs);
  std::optional<PoolSides> window;
  Shape ys = xs;
  if (pool) {
    check(relu && xs.size() == 4 && xs[2] >= 2 && xs[3] >= 2, "batch_norm + relu + max_pool2d",
          "expected a 4D input [N, C, H, W] with H, W >= 2 (a 2 x 2 pool), got shape ", xs);
    window = PoolSides{static_cast<std::size_t>(xs[2]), static_cast<std::size_t>(xs[3])};
    ys[2] = xs[2] / 2;
    ys[3] = xs[3] / 2;
  }
  check(is_floating(input.dtype()), "batch_norm", "expected a float32 or float64 input, got ",
        dtype_name(input.dtype()));
  check(eps >= 0.0, "batch_norm", "eps must be >= 0, got ", eps);
  BnDims d{static_cast<std::size_t>(xs[0]), static_cast<std::size_t>(xs[1]),
           detail::numel_of(Shape(xs.begin() + 2, xs.end()))};
  // SyncBatchNorm under a batch shard: the whole batch's statistics (kernels' reducer, global count).
  const parallel::BatchShard* shard = sync && training ? parallel::batch_shard() : nullptr;
  parallel::BatchReducer* reducer = shard != nullptr ? shard->reducer : nullptr;
  if (reducer != nullptr) {
    check(shard->first_row + d.N <= shard->global_rows, "sync_batch_norm", "input of ", d.N,
          " rows does not fit rows [", shard->first_row, ", ", shard->global_rows, ") of the batch shard");
    d.m_total = shard->global_rows * d.L;
  }
  check_channel_tensor(weight, "weight", input, d.C);
  check_channel_tensor(bias, "bias", input, d.C);
  check_channel_tensor(running_mean, "running_mean", input, d.C);
  check_channel_tensor(running_var, "running_var", input, d.C);
  check(running_mean.defined() == running_var.defined(), "batch_norm",
        "running_mean and running_var must both be given or both be undefined");
  check(training || running_mean.defined(), "batch_norm",
        "running_mean and running_var are required when training is false");
  if (training) {
    check(d.count() > 1, "batch_norm", "Expected more than 1 value per channel when training, got input size ", xs);
  }

  auto saved = std::make_shared<BnSaved>();
  saved->mean.assign(d.C, 0.0);
  saved->invstd.assign(d.C, 0.0);
  // conv (with pool): input is a convolution's output, and the op records the convolution's
  // weight and bias as its inputs too (conv_feed.hpp).
  check(conv == nullptr || pool, "batch_norm", "a fused convolution needs the fused pool");
  const bool record = conv != nullptr ? autograd::needs_grad({&input, &weight, &bias, &conv->weight, &conv->bias})
                                      : autograd::needs_grad({&input, &weight, &bias});
  if (window && record) {  // the pool's winners, for the backward (all written by the forward)
    const std::size_t windows = d.N * d.C * (window->H / 2) * (window->W / 2);
    saved->winners.reset(new std::uint8_t[windows]);
    saved->winner_x.reset(new std::byte[windows * dtype_size(input.dtype())]);
  }
  Tensor y = empty(ys, input.dtype());
  detail::visit_floating(input.dtype(), "batch_norm", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* x = sorix::detail::flat<T>(input);
    if (training) {
      std::vector<double> var(d.C, 0.0);
      // A fused convolution's tasks may have taken its planes' moments already.
      const bool given = conv != nullptr && conv->plane_sum.size() == d.N * d.C && d.L >= kernels::bn::kPlaneMomentsFrom;
      const kernels::bn::PlaneMoments moments{given ? conv->plane_sum.data() : nullptr,
                                              given ? conv->plane_sq.data() : nullptr,
                                              given ? conv->plane_dev.data() : nullptr};
      batch_stats(x, d, eps, *saved, var, reducer, given ? &moments : nullptr);
      if (running_mean.defined()) {
        // In place on the buffers (not recorded: running statistics are not differentiated).
        Tensor rm_t = running_mean, rv_t = running_var;  // non-const handles on the caller's buffers
        T* rm = sorix::detail::flat<T>(rm_t);
        T* rv = sorix::detail::flat<T>(rv_t);
        const double unbias = d.count() / (d.count() - 1.0);
        for (std::size_t c = 0; c < d.C; ++c) {
          rm[c] = static_cast<T>((1.0 - momentum) * static_cast<double>(rm[c]) + momentum * saved->mean[c]);
          rv[c] = static_cast<T>((1.0 - momentum) * static_cast<double>(rv[c]) + momentum * var[c] * unbias);
        }
        ++rm_t.impl()->storage->version;
        ++rv_t.impl()->storage->version;
      }
    } else {
      const T* rm = sorix::detail::flat<T>(running_mean);
      const T* rv = sorix::detail::flat<T>(running_var);
      for (std::size_t c = 0; c < d.C; ++c) {
        saved->mean[c] = static_cast<double>(rm[c]);
        saved->invstd[c] = 1.0 / std::sqrt(static_cast<double>(rv[c]) + eps);
      }
    }
    const T* b = bias.defined() ? sorix::detail::flat<T>(bias) : nullptr;
    const auto pool_t = window ? std::optional(kernels::bn::saved_pool<T>(window->H, window->W, *saved)) : std::nullopt;
    normalize(x, sorix::detail::flat<T>(y), d, *saved, weight.defined() ? sorix::detail::flat<T>(weight) : nullptr, b,
              relu, pool_t ? &*pool_t : nullptr);
    if (relu) {
      saved->shift.assign(d.C, 0.0);
      for (std::size_t c = 0; c < d.C && b != nullptr; ++c) saved->shift[c] = static_cast<double>(b[c]);
    }
  });

  if (record) {
    const bool gx = input.requires_grad(), gw = weight.defined() && weight.requires_grad(),
               gb = bias.defined() && bias.requires_grad();
    std::vector<Tensor> inputs{input, weight, bias};
    if (conv != nullptr) {
      inputs.push_back(conv->weight);
      inputs.push_back(conv->bias);
    }
    // The node keeps only the convolution's gradients (conv_feed.hpp: ConvGrads), not its tensors.
    std::shared_ptr<const fusion::ConvGrads> conv_grads = conv != nullptr ? conv->grads : nullptr;
    autograd::record(
        y,
        conv != nullptr ? "ConvolutionBatchNormReluMaxPoolBackward"
        : pool          ? "BatchNormReluMaxPoolBackward"
        : relu          ? "BatchNormReluBackward"
                        : "BatchNormBackward",
        inputs,
        [sx = autograd::SavedTensor(input), sw = autograd::SavedTensor(weight), saved, d, training, eps, gx, gw, gb,
         xs, reducer, relu, window, conv = std::move(conv_grads)](const Tensor& grad) -> std::vector<Tensor> {
          Tensor x = sx.unpack("batch_norm"), w = sw.unpack("batch_norm");
          // create_graph with a fused convolution: its output again as a recorded op of its
          // weight and bias (the same bits), so that the formulas below carry their dependence.
          if (conv != nullptr && autograd::grad_enabled()) x = conv->recorded_output();
          Tensor g = grad.dtype() == x.dtype() ? grad : grad.to(x.dtype());
          if (autograd::grad_enabled()) {
            check(reducer == nullptr, "sync_batch_norm", "create_graph is not supported across ranks");
            // create_graph: the same formulas as recorded Tensor ops (statistics recomputed from x
            // in training, so they carry x's dependence).
            const auto C = static_cast<std::int64_t>(d.C);
            Shape bshape{1, C};
            std::vector<std::int64_t> dims{0};
            for (std::size_t k = 2; k < xs.size(); ++k) {
              bshape.push_back(1);
              dims.push_back(static_cast<std::int64_t>(k));
            }
            if (relu) {
              // relu's gradient as relu records it, g * (y > 0); y recomputed from x by separate
              // ops with the forward's constants (the normalisation's bits).
              Tensor y_mean, y_scale, y_shift;
              detail::visit_floating(x.dtype(), "batch_norm", [&](auto tag) {
                using T = typename decltype(tag)::type;
                std::vector<T> b(d.C);
                for (std::size_t c = 0; c < d.C; ++c) b[c] = static_cast<T>(saved->shift[c]);
                const auto nc = kernels::bn::normalize_constants<T>(
                    d.C, *saved, w.defined() ? sorix::detail::flat<T>(w) : nullptr, b.data());
                const auto channels = [&](const std::vector<T>& v) {
                  return reshape(tensor(std::vector<double>(v.begin(), v.end()), {C}, x.dtype()), bshape);
                };
                y_mean = channels(nc.mean);
                y_scale = channels(nc.scale);
                y_shift = channels(nc.shift);
              });
              const Tensor y_pre = (x.detach() - y_mean) * y_scale + y_shift;
              if (window) {
                // The pool's gradient as max_pool2d records it: the backward of a max_pool2d over
                // relu's output (recomputed, not differentiated), applied to g as a recorded scatter.
                const Tensor pooled = max_pool2d(sorix::relu(y_pre).requires_grad_(), MaxPool2dFuncOptions(2));
                g = pooled.grad_fn()->apply(g)[0];
              }
              g = g * y_pre.gt(0.0);
            }
            Tensor mean, invstd;
            if (training) {
              mean = x.mean(dims, true);
              Tensor xc = x - mean;
              invstd = 1.0 / sqrt((xc * xc).mean(dims, true) + eps);
            } else {
              mean = reshape(tensor(saved->mean, {C}, x.dtype()), bshape);
              invstd = reshape(tensor(saved->invstd, {C}, x.dtype()), bshape);
            }
            Tensor xhat = (x - mean) * invstd;
            Tensor gw_ = w.defined() ? g * reshape(w, bshape) : g;
            Tensor dx, dw, db;
            if (gx || conv != nullptr) {
              dx = training ? (gw_ - gw_.mean(dims, true) - xhat * (gw_ * xhat).mean(dims, true)) * invstd
                            : gw_ * invstd;
            }
            if (gw) dw = sum(g * xhat, dims);
            if (gb) db = sum(g, dims);
            if (conv != nullptr) {  // the convolution's node applied to dx: [dinput, dweight, dbias]
              // (no node: its weight and bias stopped requiring grad since the forward)
              if (!x.grad_fn()) return {Tensor(), dw, db, Tensor(), Tensor()};
              const std::vector<Tensor> c = x.grad_fn()->apply(dx);
              return {Tensor(), dw, db, c[1], conv->has_bias ? c[2] : Tensor()};
            }
            return {dx, dw, db};
          }
          BnGrads r = detail::visit_floating(x.dtype(), "batch_norm", [&](auto tag) {
            using T = typename decltype(tag)::type;
            const auto pool_t =
                window ? std::optional(kernels::bn::saved_pool<T>(window->H, window->W, *saved)) : std::nullopt;
            return bn_backward<T>(sorix::detail::flat<T>(g), sorix::detail::flat<T>(x), w.defined() ? sorix::detail::flat<T>(w) : nullptr, d,
                                  *saved, training, gx, gw, gb, xs, reducer, relu, pool_t ? &*pool_t : nullptr,
                                  conv.get());
          });
          if (conv != nullptr) return {r.dx, r.dw, r.db, r.conv_dw, r.conv_db};
          return {r.dx, r.dw, r.db};
        });
  }
  return y;
}
}  // namespace

Tensor sync_batch_norm(const Tensor& input, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                       const Tensor& bias, bool training, double momentum, double eps) {
  return batch_norm_flat(sorix::detail::contiguous_or_undefined(input), sorix::detail::contiguous_or_undefined(running_mean),
                         sorix::detail::contiguous_or_undefined(running_var), sorix::detail::contiguous_or_undefined(weight),
                         sorix::detail::contiguous_or_undefined(bias), training, momentum, eps, true);
}

Tensor batch_norm(const Tensor& input, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, bool training, double momentum, double eps) {
  // The kernels below read flat memory: views are made contiguous first.
  return batch_norm_flat(sorix::detail::contiguous_or_undefined(input), sorix::detail::contiguous_or_undefined(running_mean), sorix::detail::contiguous_or_undefined(running_var), sorix::detail::contiguous_or_undefined(weight), sorix::detail::contiguous_or_undefined(bias), training, momentum, eps);
}

}  // namespace functional

namespace {
const char* layer_name(std::size_t d) { return d == 1 ? "BatchNorm1d" : d == 2 ? "BatchNorm2d" : "BatchNorm3d"; }
}  // namespace

template <std::size_t D>
BatchNormNd<D>::BatchNormNd(const BatchNormOptions& options, Dtype dtype) : options_(options) {
  check(options.num_features() >= 0, layer_name(D), "num_features must be >= 0, got ", options.num_features());
  check(is_floating(dtype), layer_name(D), "parameters must be float32 or float64, got ", dtype_name(dtype));
  check(options.eps() >= 0.0, layer_name(D), "eps must be >= 0, got ", options.eps());
  // nullopt is the cumulative average; a factor outside [0, 1] (or NaN) would poison the running
  // statistics on the first training step.
  check(!options.momentum() || (*options.momentum() >= 0.0 && *options.momentum() <= 1.0), layer_name(D),
        "momentum must be in [0, 1] (or nullopt), got ", options.momentum().value_or(0.0));
  const Shape s{options.num_features()};
  if (options.affine()) {
    weight = register_parameter("weight", ones(s, dtype));
    bias = register_parameter("bias", zeros(s, dtype));
  }
  if (options.track_running_stats()) {
    running_mean = register_buffer("running_mean", zeros(s, dtype));
    running_var = register_buffer("running_var", ones(s, dtype));
    num_batches_tracked = register_buffer("num_batches_tracked", zeros({}, Dtype::Int64));
  }
}

template <std::size_t D>
void BatchNormNd<D>::reset_running_stats() {
  if (!options_.track_running_stats()) return;
  NoGradGuard no_grad;
  running_mean.fill_(0.0);
  running_var.fill_(1.0);
  num_batches_tracked.fill_(0.0);
}

template <std::size_t D>
void BatchNormNd<D>::reset_parameters() {
  reset_running_stats();
  if (options_.affine()) {
    init::ones_(weight);
    init::zeros_(bias);
  }
}

template <std::size_t D>
Tensor BatchNormNd<D>::forward(const Tensor& input) {
  return forward_checked(input, false);
}

template <std::size_t D>
Tensor BatchNormNd<D>::forward_relu(const Tensor& input) {
  // SyncBatchNorm takes any input [N, C, *], as its forward does.
  const bool any_rank = dynamic_cast<const SyncBatchNorm*>(this) != nullptr;
  return forward_checked(input, any_rank, true);
}

template <std::size_t D>
Tensor BatchNormNd<D>::forward_relu_pool(const Tensor& input) {
  const bool any_rank = dynamic_cast<const SyncBatchNorm*>(this) != nullptr;
  return forward_checked(input, any_rank, true, true);
}

template <std::size_t D>
Tensor BatchNormNd<D>::forward_relu_pool(const fusion::ConvFeed& conv) {
  const bool any_rank = dynamic_cast<const SyncBatchNorm*>(this) != nullptr;
  return forward_checked(conv.output, any_rank, true, true, &conv);
}

template <std::size_t D>
Tensor BatchNormNd<D>::forward_checked(const Tensor& input, bool any_rank, bool relu, bool pool,
                                       const fusion::ConvFeed* conv) {
  detail::check_defined(input, layer_name(D));
  const Shape xs = input.shape();
  const bool rank_ok = any_rank ? xs.size() >= 2 : D == 1 ? (xs.size() == 2 || xs.size() == 3) : xs.size() == D + 2;
  check(rank_ok, layer_name(D), "expected ",
        D == 1 ? "2D or 3D input ([N, C] or [N, C, L])" : D == 2 ? "4D input ([N, C, H, W])" : "5D input ([N, C, D, H, W])",
        ", got ", xs.size(), "D input of shape ", xs);
  check(xs[1] == options_.num_features(), layer_name(D), "input of shape ", xs, " has ", xs[1],
        " channels (dim 1), but num_features is ", options_.num_features());
  const bool update = is_training() && options_.track_running_stats();
  double factor = 0.0;
  std::int64_t* tracked = update ? sorix::detail::flat<std::int64_t>(num_batches_tracked) : nullptr;
  if (update) {
    factor = options_.momentum().has_value() ? *options_.momentum() : 1.0 / static_cast<double>(*tracked + 1);
  }
  // Without running statistics (track_running_stats false) batch statistics are used in eval too.
  // running_mean/var are undefined handles then.
  const bool batch_stats = is_training() || !options_.track_running_stats();
  const auto flat = [](const Tensor& t) { return sorix::detail::contiguous_or_undefined(t); };
  Tensor y = functional::batch_norm_flat(flat(input), flat(running_mean), flat(running_var), flat(weight), flat(bias),
                                         batch_stats, factor, options_.eps(), sync_, relu, pool,
                                         conv);
  if (update) {  // counted only once the step succeeded
    *tracked += 1;
    ++num_batches_tracked.impl()->storage->version;
  }
  return y;
}

template <std::size_t D>
std::string BatchNormNd<D>::extra_repr() const {
  std::ostringstream os;
  os << options_.num_features() << ", eps=" << options_.eps() << ", momentum=";
  if (options_.momentum()) os << *options_.momentum();
  else os << "None";
  os << ", affine=" << (options_.affine() ? "True" : "False")
     << ", track_running_stats=" << (options_.track_running_stats() ? "True" : "False");
  return os.str();
}

template class BatchNormNd<1>;
template class BatchNormNd<2>;
template class BatchNormNd<3>;

}  // namespace sorix::nn
