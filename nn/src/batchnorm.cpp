// BatchNorm: the fused forward kernel (statistics, normalisation, running update) and its
// hand-written fused backward, side by side.
#include "sorix/nn/batchnorm.hpp"

#include <cmath>
#include <memory>
#include <sstream>

#include "autograd/src/ops_internal.hpp"
#include "sorix/nn/init.hpp"

namespace sorix::nn {

namespace {

// Input viewed as [N, C, L]; M = N * L values per channel.
struct BnDims {
  std::size_t N, C, L;
  std::size_t M() const { return N * L; }
};

// Channels per task of the channel reductions. Each channel is reduced over (n, l) in one fixed
// order whatever the block, so this only sets the parallel grain, never the bits.
constexpr std::size_t kChannelBlock = 64;

// Runs body(c0, c1) over fixed channel blocks; inline when the whole input is small.
template <class Body>
void for_channel_blocks(const BnDims& d, Body&& body) {
  parallel::parallel_for(d.C, kChannelBlock, body, parallel::kInlineGrain / std::max<std::size_t>(d.M(), 1));
}

// Runs body(n0, n1) over fixed blocks of batch rows (elementwise passes).
template <class Body>
void for_row_blocks(const BnDims& d, Body&& body) {
  const std::size_t row = std::max<std::size_t>(d.C * d.L, 1);
  parallel::parallel_for(d.N, std::max<std::size_t>(1, parallel::kChunkSize / row), body,
                         parallel::kInlineGrain / row);
}

// [N, C] inputs: body(G, c) for consecutive groups of G channels covering [c0, c1), G = 32, then
// 8, then 1 (G a std::integral_constant). A body sums its G channels over n in registers: 32
// channels (four vectors of 8 doubles) give four independent add chains per row, where summing
// into memory row by row made every step wait for the previous row's store. Each channel is
// still summed over n in order, whatever group it falls in.
template <class Body>
void for_channel_groups(std::size_t c0, std::size_t c1, Body&& body) {
  std::size_t c = c0;
  const auto run = [&](auto group) {
    for (; c + decltype(group)::value <= c1; c += decltype(group)::value) body(group, c);
  };
  run(std::integral_constant<std::size_t, 32>{});
  run(std::integral_constant<std::size_t, 8>{});
  run(std::integral_constant<std::size_t, 1>{});
}

// acc[c - c0] += f(x[n, c, l]) over n then l, for the channels of one block.
template <class T, class F>
void accumulate(const T* x, const BnDims& d, std::size_t c0, std::size_t c1, double* acc, F&& f) {
  if (d.L == 1) {
    for_channel_groups(c0, c1, [&](auto group, std::size_t c) {
      constexpr std::size_t G = decltype(group)::value;
      double s[G];
      for (std::size_t j = 0; j < G; ++j) s[j] = acc[c - c0 + j];
      for (std::size_t n = 0; n < d.N; ++n) {
        const T* row = x + n * d.C + c;
        for (std::size_t j = 0; j < G; ++j) s[j] += f(row[j], c + j);
      }
      for (std::size_t j = 0; j < G; ++j) acc[c - c0 + j] = s[j];
    });
    return;
  }
  for (std::size_t n = 0; n < d.N; ++n) {
    const T* row = x + n * d.C * d.L;
    for (std::size_t c = c0; c < c1; ++c) {
      const T* p = row + c * d.L;
      double s = acc[c - c0];
      for (std::size_t l = 0; l < d.L; ++l) s += f(p[l], c);
      acc[c - c0] = s;
    }
  }
}

// Per-channel statistics the backward needs: fixed at forward time (in eval mode they are a
// snapshot of the running statistics, which later training steps change in place).
struct BnSaved {
  std::vector<double> mean, invstd;
};

template <class T>
void batch_stats(const T* x, const BnDims& d, double eps, BnSaved& s, std::vector<double>& var) {
  for_channel_blocks(d, [&](std::size_t c0, std::size_t c1) {
    std::vector<double> acc(c1 - c0, 0.0);
    accumulate(x, d, c0, c1, acc.data(), [](T v, std::size_t) { return static_cast<double>(v); });
    const double inv_m = 1.0 / static_cast<double>(d.M());
    for (std::size_t c = c0; c < c1; ++c) s.mean[c] = acc[c - c0] * inv_m;
    std::fill(acc.begin(), acc.end(), 0.0);
    // Two passes (sum of squared deviations from the mean): no cancellation of a one-pass E[x^2] - E[x]^2.
    // The means go through a restrict pointer so that the [N, C] loop vectorises across channels.
    const double* __restrict mean = s.mean.data();
    accumulate(x, d, c0, c1, acc.data(), [mean](T v, std::size_t c) {
      const double dv = static_cast<double>(v) - mean[c];
      return dv * dv;
    });
    for (std::size_t c = c0; c < c1; ++c) {
      var[c] = acc[c - c0] * inv_m;
      s.invstd[c] = 1.0 / std::sqrt(var[c] + eps);
    }
  });
}

// y = (x - mean) * (invstd * w) + b.
template <class T>
void normalize(const T* x, T* y, const BnDims& d, const BnSaved& s, const T* w, const T* b) {
  std::vector<T> mean(d.C), scale(d.C), shift(d.C);
  for (std::size_t c = 0; c < d.C; ++c) {
    mean[c] = static_cast<T>(s.mean[c]);
    scale[c] = static_cast<T>(s.invstd[c] * (w != nullptr ? static_cast<double>(w[c]) : 1.0));
    shift[c] = b != nullptr ? b[c] : T(0);
  }
  for_row_blocks(d, [&](std::size_t n0, std::size_t n1) {
    for (std::size_t n = n0; n < n1; ++n) {
      const T* xr = x + n * d.C * d.L;
      T* yr = y + n * d.C * d.L;
      if (d.L == 1) {
        for (std::size_t c = 0; c < d.C; ++c) yr[c] = (xr[c] - mean[c]) * scale[c] + shift[c];
      } else {
        for (std::size_t c = 0; c < d.C; ++c) {
          for (std::size_t l = 0; l < d.L; ++l) yr[c * d.L + l] = (xr[c * d.L + l] - mean[c]) * scale[c] + shift[c];
        }
      }
    }
  });
}

struct BnGrads {
  Tensor dx, dw, db;
};

// The fused backward (not recorded). Training: dx = invstd * w * (g - sum_g / M - (x - mean) * k)
// with k = dot * invstd^2 / M, dot = sum(g * (x - mean)); eval: dx = g * w * invstd.
template <class T>
BnGrads bn_backward(const T* g, const T* x, const T* w, const BnDims& d, const BnSaved& s, bool training,
                    bool need_x, bool need_w, bool need_b, const Shape& xshape) {
  std::vector<double> sum_g(d.C, 0.0), dot(d.C, 0.0);
  if (d.M() > 0) {
    for_channel_blocks(d, [&](std::size_t c0, std::size_t c1) {
      std::vector<double> a(c1 - c0, 0.0), b(c1 - c0, 0.0);
      // dot needs g and x together: walk both in the same fixed order.
      if (d.L == 1) {
        // [N, C]: sum_g and dot in one pass (the bits of accumulate for each).
        const double* __restrict mp = s.mean.data();
        for_channel_groups(c0, c1, [&](auto group, std::size_t c) {
          constexpr std::size_t G = decltype(group)::value;
          double sum[G] = {}, acc[G] = {};
          for (std::size_t n = 0; n < d.N; ++n) {
            const T* gr = g + n * d.C + c;
            const T* xr = x + n * d.C + c;
            for (std::size_t j = 0; j < G; ++j) {
              sum[j] += static_cast<double>(gr[j]);
              acc[j] += static_cast<double>(gr[j]) * (static_cast<double>(xr[j]) - mp[c + j]);
            }
          }
          for (std::size_t j = 0; j < G; ++j) {
            a[c - c0 + j] = sum[j];
            b[c - c0 + j] = acc[j];
          }
        });
      } else {
        accumulate(g, d, c0, c1, a.data(), [](T v, std::size_t) { return static_cast<double>(v); });
        for (std::size_t n = 0; n < d.N; ++n) {
          for (std::size_t c = c0; c < c1; ++c) {
            const T* gp = g + (n * d.C + c) * d.L;
            const T* xp = x + (n * d.C + c) * d.L;
            double acc = b[c - c0];
            for (std::size_t l = 0; l < d.L; ++l) acc += static_cast<double>(gp[l]) * (static_cast<double>(xp[l]) - s.mean[c]);
            b[c - c0] = acc;
          }
        }
      }
      for (std::size_t c = c0; c < c1; ++c) {
        sum_g[c] = a[c - c0];
        dot[c] = b[c - c0];
      }
    });
  }
  BnGrads r;
  const auto C = static_cast<std::int64_t>(d.C);
  if (need_b) {
    r.db = empty({C}, dtype_of_v<T>);
    for (std::size_t c = 0; c < d.C; ++c) r.db.data_ptr<T>()[c] = static_cast<T>(sum_g[c]);
  }
  if (need_w) {
    r.dw = empty({C}, dtype_of_v<T>);
    for (std::size_t c = 0; c < d.C; ++c) r.dw.data_ptr<T>()[c] = static_cast<T>(dot[c] * s.invstd[c]);
  }
  if (need_x) {
    r.dx = empty(xshape, dtype_of_v<T>);
    std::vector<T> mean(d.C), scale(d.C), gmean(d.C), k(d.C);
    const double inv_m = d.M() > 0 ? 1.0 / static_cast<double>(d.M()) : 0.0;
    for (std::size_t c = 0; c < d.C; ++c) {
      mean[c] = static_cast<T>(s.mean[c]);
      scale[c] = static_cast<T>(s.invstd[c] * (w != nullptr ? static_cast<double>(w[c]) : 1.0));
      gmean[c] = training ? static_cast<T>(sum_g[c] * inv_m) : T(0);
      k[c] = training ? static_cast<T>(dot[c] * s.invstd[c] * s.invstd[c] * inv_m) : T(0);
    }
    T* dx = r.dx.data_ptr<T>();
    for_row_blocks(d, [&](std::size_t n0, std::size_t n1) {
      const T* __restrict gm = gmean.data();
      const T* __restrict mn = mean.data();
      const T* __restrict kk = k.data();
      const T* __restrict sc = scale.data();
      for (std::size_t n = n0; n < n1; ++n) {
        const std::size_t off = n * d.C * d.L;
        if (d.L == 1) {
          const T* __restrict gr = g + off;
          const T* __restrict xr = x + off;
          T* __restrict dr = dx + off;
          for (std::size_t c = 0; c < d.C; ++c) dr[c] = (gr[c] - gm[c] - (xr[c] - mn[c]) * kk[c]) * sc[c];
          continue;
        }
        for (std::size_t c = 0; c < d.C; ++c) {
          for (std::size_t l = 0; l < d.L; ++l) {
            const std::size_t i = off + c * d.L + l;
            dx[i] = (g[i] - gmean[c] - (x[i] - mean[c]) * k[c]) * scale[c];
          }
        }
      }
    });
  }
  return r;
}

void check_channel_tensor(const Tensor& t, const char* what, const Tensor& input, std::size_t C) {
  if (!t.defined()) return;
  check(t.shape() == Shape{static_cast<std::int64_t>(C)}, "batch_norm", what, " must have shape [", C,
        "] (the channel dim 1 of input ", input.shape(), "), got ", t.shape());
  check(t.dtype() == input.dtype(), "batch_norm", what, " dtype ", dtype_name(t.dtype()),
        " does not match input dtype ", dtype_name(input.dtype()));
}

}  // namespace

namespace functional {

Tensor batch_norm(const Tensor& input, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, bool training, double momentum, double eps) {
  detail::check_defined(input, "batch_norm");
  const Shape xs = input.shape();
  check(xs.size() >= 2, "batch_norm", "expected an input of at least 2 dims [N, C, *], got shape ", xs);
  check(is_floating(input.dtype()), "batch_norm", "expected a float32 or float64 input, got ",
        dtype_name(input.dtype()));
  check(eps >= 0.0, "batch_norm", "eps must be >= 0, got ", eps);
  const BnDims d{static_cast<std::size_t>(xs[0]), static_cast<std::size_t>(xs[1]),
                 detail::numel_of(Shape(xs.begin() + 2, xs.end()))};
  check_channel_tensor(weight, "weight", input, d.C);
  check_channel_tensor(bias, "bias", input, d.C);
  check_channel_tensor(running_mean, "running_mean", input, d.C);
  check_channel_tensor(running_var, "running_var", input, d.C);
  check(running_mean.defined() == running_var.defined(), "batch_norm",
        "running_mean and running_var must both be given or both be undefined");
  check(training || running_mean.defined(), "batch_norm",
        "running_mean and running_var are required when training is false");
  if (training) {
    check(d.M() > 1, "batch_norm", "Expected more than 1 value per channel when training, got input size ", xs);
  }

  auto saved = std::make_shared<BnSaved>();
  saved->mean.assign(d.C, 0.0);
  saved->invstd.assign(d.C, 0.0);
  Tensor y = empty(xs, input.dtype());
  detail::visit_floating(input.dtype(), "batch_norm", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* x = input.data_ptr<T>();
    if (training) {
      std::vector<double> var(d.C, 0.0);
      batch_stats(x, d, eps, *saved, var);
      if (running_mean.defined()) {
        // In place on the buffers (not recorded: running statistics are not differentiated).
        Tensor rm_t = running_mean, rv_t = running_var;  // non-const handles on the caller's buffers
        T* rm = rm_t.data_ptr<T>();
        T* rv = rv_t.data_ptr<T>();
        const double unbias = static_cast<double>(d.M()) / static_cast<double>(d.M() - 1);
        for (std::size_t c = 0; c < d.C; ++c) {
          rm[c] = static_cast<T>((1.0 - momentum) * static_cast<double>(rm[c]) + momentum * saved->mean[c]);
          rv[c] = static_cast<T>((1.0 - momentum) * static_cast<double>(rv[c]) + momentum * var[c] * unbias);
        }
        ++rm_t.impl()->storage->version;
        ++rv_t.impl()->storage->version;
      }
    } else {
      const T* rm = running_mean.data_ptr<T>();
      const T* rv = running_var.data_ptr<T>();
      for (std::size_t c = 0; c < d.C; ++c) {
        saved->mean[c] = static_cast<double>(rm[c]);
        saved->invstd[c] = 1.0 / std::sqrt(static_cast<double>(rv[c]) + eps);
      }
    }
    normalize(x, y.data_ptr<T>(), d, *saved, weight.defined() ? weight.data_ptr<T>() : nullptr,
              bias.defined() ? bias.data_ptr<T>() : nullptr);
  });

  if (autograd::needs_grad({&input, &weight, &bias})) {
    const bool gx = input.requires_grad(), gw = weight.defined() && weight.requires_grad(),
               gb = bias.defined() && bias.requires_grad();
    autograd::record(
        y, "BatchNormBackward", {input, weight, bias},
        [sx = autograd::SavedTensor(input), sw = autograd::SavedTensor(weight), saved, d, training, eps, gx, gw, gb,
         xs](const Tensor& grad) -> std::vector<Tensor> {
          Tensor x = sx.unpack("batch_norm"), w = sw.unpack("batch_norm");
          Tensor g = grad.dtype() == x.dtype() ? grad : grad.to(x.dtype());
          if (autograd::grad_enabled()) {
            // create_graph: the same formulas as recorded Tensor ops (statistics recomputed from x
            // in training, so they carry x's dependence).
            const auto C = static_cast<std::int64_t>(d.C);
            Shape bshape{1, C};
            std::vector<std::int64_t> dims{0};
            for (std::size_t k = 2; k < xs.size(); ++k) {
              bshape.push_back(1);
              dims.push_back(static_cast<std::int64_t>(k));
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
            if (gx) {
              dx = training ? (gw_ - gw_.mean(dims, true) - xhat * (gw_ * xhat).mean(dims, true)) * invstd
                            : gw_ * invstd;
            }
            if (gw) dw = sum(g * xhat, dims);
            if (gb) db = sum(g, dims);
            return {dx, dw, db};
          }
          BnGrads r = detail::visit_floating(x.dtype(), "batch_norm", [&](auto tag) {
            using T = typename decltype(tag)::type;
            return bn_backward<T>(g.data_ptr<T>(), x.data_ptr<T>(), w.defined() ? w.data_ptr<T>() : nullptr, d,
                                  *saved, training, gx, gw, gb, xs);
          });
          return {r.dx, r.dw, r.db};
        });
  }
  return y;
}

}  // namespace functional

BatchNorm1d::BatchNorm1d(const BatchNorm1dOptions& options, Dtype dtype) : options_(options) {
  check(options.num_features() >= 0, "BatchNorm1d", "num_features must be >= 0, got ", options.num_features());
  check(is_floating(dtype), "BatchNorm1d", "parameters must be float32 or float64, got ", dtype_name(dtype));
  check(options.eps() >= 0.0, "BatchNorm1d", "eps must be >= 0, got ", options.eps());
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

void BatchNorm1d::reset_running_stats() {
  if (!options_.track_running_stats()) return;
  NoGradGuard no_grad;
  running_mean.fill_(0.0);
  running_var.fill_(1.0);
  num_batches_tracked.fill_(0.0);
}

void BatchNorm1d::reset_parameters() {
  reset_running_stats();
  if (options_.affine()) {
    init::ones_(weight);
    init::zeros_(bias);
  }
}

Tensor BatchNorm1d::forward(const Tensor& input) {
  detail::check_defined(input, "BatchNorm1d");
  const Shape xs = input.shape();
  check(xs.size() == 2 || xs.size() == 3, "BatchNorm1d", "expected 2D or 3D input ([N, C] or [N, C, L]), got ",
        xs.size(), "D input of shape ", xs);
  check(xs[1] == options_.num_features(), "BatchNorm1d", "input of shape ", xs, " has ", xs[1],
        " channels (dim 1), but num_features is ", options_.num_features());
  const bool update = is_training() && options_.track_running_stats();
  double factor = 0.0;
  std::int64_t* tracked = update ? num_batches_tracked.data_ptr<std::int64_t>() : nullptr;
  if (update) {
    factor = options_.momentum().has_value() ? *options_.momentum() : 1.0 / static_cast<double>(*tracked + 1);
  }
  // Without running statistics (track_running_stats false) batch statistics are used in eval too.
  // running_mean/var are undefined handles then.
  Tensor y = functional::batch_norm(input, running_mean, running_var, weight, bias,
                                    is_training() || !options_.track_running_stats(), factor, options_.eps());
  if (update) {  // counted only once the step succeeded
    *tracked += 1;
    ++num_batches_tracked.impl()->storage->version;
  }
  return y;
}

std::string BatchNorm1d::extra_repr() const {
  std::ostringstream os;
  os << options_.num_features() << ", eps=" << options_.eps() << ", momentum=";
  if (options_.momentum()) os << *options_.momentum();
  else os << "None";
  os << ", affine=" << (options_.affine() ? "True" : "False")
     << ", track_running_stats=" << (options_.track_running_stats() ? "True" : "False");
  return os.str();
}

}  // namespace sorix::nn
