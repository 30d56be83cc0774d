// LayerNorm, GroupNorm and Dropout2d. GroupNorm of 16 (sample, group) rows or more is one fused
// op (group_norm.hpp). Otherwise the norms' normalisation is BatchNorm's fused op on the input
// viewed as [1, rows, L] (each row a channel: its mean and biased variance over its L values,
// accumulated in double, and the fused backward, which differentiates again under create_graph),
// or composed ops for fewer than 16 rows (normalize_rows). LayerNorm's affine weight and bias
// (per column) are one fused op from 16 rows on (affine_rows), GroupNorm's of fewer rows (per
// channel) BatchNorm's op in eval mode with mean 0 and variance 1; otherwise broadcast products
// and sums. Dropout2d draws its channel mask with F::dropout's fused Philox kernel and multiplies
// it in by broadcasting.
#include "sorix/nn/normalization.hpp"

#include "group_norm.hpp"

#include <algorithm>
#include <sstream>
#include <vector>

#include "sorix_autograd/ops_internal.hpp"
#include "sorix_core/kernels/batch_tree.hpp"
#include "sorix_core/kernels/table.hpp"
#include "sorix/autograd/grad_mode.hpp"
#include "sorix/autograd/node.hpp"
#include "sorix/parallel/batch_tree.hpp"
#include "sorix/parallel/parallel.hpp"
#include "sorix/autograd/ops.hpp"
#include "sorix/core/error.hpp"
#include "sorix/nn/batchnorm.hpp"
#include "sorix/nn/init.hpp"

namespace sorix::nn {

namespace {

void check_floating_input(const Tensor& input, const char* op) {
  check(input.defined(), op, "input is undefined");
  check(is_floating(input.dtype()), op, "expected a float32 or float64 input, got ", dtype_name(input.dtype()));
}

void check_affine(const Tensor& t, const char* what, const Shape& shape, const Tensor& input, const char* op) {
  if (!t.defined()) return;
  check(t.shape() == shape, op, what, " must have shape ", shape, ", got ", t.shape());
  check(t.dtype() == input.dtype(), op, what, " dtype ", dtype_name(t.dtype()), " does not match input dtype ",
        dtype_name(input.dtype()));
}

// Fewer rows than this normalise with composed ops: BatchNorm's passes run a row (a channel of
// [1, rows, L]) as one task, so a few long rows (LayerNorm of one sequence, GroupNorm(1, C) of one
// image) would run on one thread, where the composed ops split each row. A choice by shape only,
// so the bits never depend on the thread count.
constexpr std::int64_t kFusedMinRows = 16;

// (x - mean) / sqrt(var + eps) over each row of x viewed as [rows, L] (biased variance): one
// BatchNorm over [1, rows, L]. Rows of one value normalise to 0 (BatchNorm, which rejects one
// value per channel when training, is not asked).
Tensor normalize_rows(const Tensor& x, std::int64_t rows, std::int64_t L, double eps) {
  if (x.numel() == 0 || L <= 1) {
    const Tensor xc = x - x;  // (x - mean) with the mean x itself; its gradient is 0, as PyTorch's
    return xc * rsqrt(xc * xc + eps);
  }
  if (rows < kFusedMinRows) {
    const Tensor r = reshape(x, {rows, L});
    const Tensor xc = r - r.mean({1}, true);
    return reshape(xc * rsqrt((xc * xc).mean({1}, true) + eps), x.shape());
  }
  const Tensor y = functional::batch_norm(reshape(x, {1, rows, L}), Tensor(), Tensor(), Tensor(), Tensor(), true,
                                          0.0, eps);
  return reshape(y, x.shape());
}

template <class T>
void affine_forward(const T* x, const T* w, const T* b, std::size_t rows, std::size_t L, T* y) {
  if constexpr (std::is_same_v<T, float>) kernels::active().row_affine_f32(x, w, b, rows, L, y);
  else kernels::active().row_affine_f64(x, w, b, rows, L, y);
}

template <class T>
void affine_grads(const T* g, const T* x, const T* w, std::size_t rows, std::size_t L, T* dx, T* dw, T* db) {
  if constexpr (std::is_same_v<T, float>) kernels::active().row_affine_grads_f32(g, x, w, rows, L, dx, dw, db);
  else kernels::active().row_affine_grads_f64(g, x, w, rows, L, dx, dw, db);
}

// LayerNorm's y = xhat * w + b over xhat viewed as [rows, L] (w, b: the normalized shape, either
// may be undefined, not both) in one pass (kernels/row_affine.hpp: fma(xhat, w, b)), recorded
// with a backward that makes dxhat = g * w, dw = sum of g * xhat and db = sum of g in one pass
// over g: each chunk of kBatchChunk rows its columns' chains (fma for dw, adds for db, in row
// order from +0), the chunks added by the batch tree. Every chunk is a task: thread-count
// invariant. Under create_graph the gradients are the composed formulas (other bits).
Tensor affine_rows(const Tensor& xhat_in, const Tensor& w_in, const Tensor& b_in, std::int64_t rows_in,
                   std::int64_t L_in) {
  using sorix::detail::contiguous_or_undefined;
  const Tensor xhat = xhat_in.contiguous(), w = contiguous_or_undefined(w_in), b = contiguous_or_undefined(b_in);
  const std::size_t rows = static_cast<std::size_t>(rows_in), L = static_cast<std::size_t>(L_in);
  const std::size_t chunk = parallel::kBatchChunk;
  Tensor y = sorix::detail::visit_floating(xhat.dtype(), "layer_norm", [&](auto tag) {
    using T = typename decltype(tag)::type;
    Tensor out = sorix::detail::make_empty<T>(sorix::detail::to_xshape(xhat.shape(), "layer_norm"));
    const T* px = sorix::detail::flat<T>(xhat);
    const T* pw = w.defined() ? sorix::detail::flat<T>(w) : nullptr;
    const T* pb = b.defined() ? sorix::detail::flat<T>(b) : nullptr;
    T* py = sorix::detail::flat<T>(out);
    parallel::parallel_for(rows, chunk, [&](std::size_t r0, std::size_t r1) {
      affine_forward(px + r0 * L, pw, pb, r1 - r0, L, py + r0 * L);
    }, 0);
    return out;
  });
  if (!autograd::needs_grad({&xhat_in, &w_in, &b_in})) return y;
  const bool gx = xhat_in.requires_grad(), gw = w.defined() && w_in.requires_grad(),
             gb = b.defined() && b_in.requires_grad();
  const Shape wshape = w.defined() ? w.shape() : Shape{}, bshape = b.defined() ? b.shape() : Shape{};
  autograd::record(
      y, "LayerNormAffineBackward", {xhat_in, w_in, b_in},
      // xhat is needed for dw only; w for dxhat only.
      [sx = gw ? autograd::SavedTensor(xhat) : autograd::SavedTensor(),
       sw = gx && w.defined() ? autograd::SavedTensor(w) : autograd::SavedTensor(), gx, gw, gb, rows, L, chunk, wshape,
       bshape](const Tensor& grad_in) -> std::vector<Tensor> {
        const Tensor x = sx.defined() ? sx.unpack("layer_norm") : Tensor();
        const Tensor w = sw.defined() ? sw.unpack("layer_norm") : Tensor();
        const Dtype dt = x.defined() ? x.dtype() : w.defined() ? w.dtype() : grad_in.dtype();
        const Tensor g = (grad_in.dtype() == dt ? grad_in : grad_in.to(dt)).contiguous();
        std::vector<Tensor> out(3);
        const auto rows_i = static_cast<std::int64_t>(rows), L_i = static_cast<std::int64_t>(L);
        if (autograd::grad_enabled()) {  // create_graph: differentiable formulas
          const Tensor g2 = reshape(g, {rows_i, L_i});
          if (gx) out[0] = w.defined() ? g * w : g;
          if (gw) out[1] = reshape((g2 * reshape(x, {rows_i, L_i})).sum({0}), wshape);
          if (gb) out[2] = reshape(g2.sum({0}), bshape);
          return out;
        }
        if (gx && !w.defined()) out[0] = g;  // xhat + b: the gradient passes through
        const bool dx_pass = gx && w.defined();
        if (!dx_pass && !gw && !gb) return out;
        sorix::detail::visit_floating(dt, "layer_norm", [&](auto tag) {
          using T = typename decltype(tag)::type;
          const std::size_t chunks = std::max<std::size_t>(1, (rows + chunk - 1) / chunk);  // no rows: one empty chunk
          const std::size_t width = (gw ? L : 0) + (gb ? L : 0);  // a chunk's dw chains, then its db chains
          std::vector<T> partials(chunks * width);
          T* pdx = nullptr;
          if (dx_pass) {
            out[0] = sorix::detail::make_empty<T>(sorix::detail::to_xshape(g.shape(), "layer_norm"));
            pdx = sorix::detail::flat<T>(out[0]);
          }
          const T* pg = sorix::detail::flat<T>(g);
          const T* px = gw ? sorix::detail::flat<T>(x) : nullptr;
          const T* pw = w.defined() ? sorix::detail::flat<T>(w) : nullptr;
          parallel::parallel_for(chunks, 1, [&](std::size_t c0, std::size_t c1) {
            for (std::size_t c = c0; c < c1; ++c) {
              const std::size_t r0 = c * chunk, n = std::min(rows, r0 + chunk) - std::min(rows, r0);
              T* part = partials.data() + c * width;
              std::fill(part, part + width, T(0));
              affine_grads(pg + r0 * L, px != nullptr ? px + r0 * L : nullptr, pw, n, L,
                           pdx != nullptr ? pdx + r0 * L : nullptr, gw ? part : nullptr,
                           gb ? part + (gw ? L : 0) : nullptr);
            }
          }, 0);
          if (!gw && !gb) return;
          const std::vector<T> root = kernels::tree_of_partials(partials.data(), chunks, width);
          if (gw) {
            out[1] = sorix::detail::make_empty<T>({L});
            std::copy(root.begin(), root.begin() + static_cast<std::ptrdiff_t>(L), sorix::detail::flat<T>(out[1]));
          }
          if (gb) {
            out[2] = sorix::detail::make_empty<T>({L});
            std::copy(root.end() - static_cast<std::ptrdiff_t>(L), root.end(), sorix::detail::flat<T>(out[2]));
          }
        });
        if (gw) out[1] = reshape(out[1], wshape);
        if (gb) out[2] = reshape(out[2], bshape);
        return out;
      });
  return y;
}

void check_p(double p, const char* op) {
  check(p >= 0.0 && p <= 1.0, op, "probability has to be between 0 and 1, but got ", p);
}

}  // namespace

namespace functional {

Tensor layer_norm(const Tensor& input, const LayerNormFuncOptions& options) {
  check_floating_input(input, "layer_norm");
  const std::vector<std::int64_t>& ns = options.normalized_shape();
  check(!ns.empty(), "layer_norm", "normalized_shape must not be empty");
  check(options.eps() >= 0.0, "layer_norm", "eps must be >= 0, got ", options.eps());
  const Shape xs = input.shape();
  bool match = xs.size() >= ns.size();
  for (std::size_t k = 0; match && k < ns.size(); ++k) match = xs[xs.size() - ns.size() + k] == ns[k];
  check(match, "layer_norm", "input of shape ", xs, " does not end in normalized_shape ", ns,
        " (expected input of shape [*, ", Shape(ns), "])");
  check_affine(options.weight(), "weight", Shape(ns), input, "layer_norm");
  check_affine(options.bias(), "bias", Shape(ns), input, "layer_norm");
  std::int64_t L = 1;
  for (std::int64_t s : ns) L *= s;
  const std::int64_t rows = L > 0 ? input.numel() / L : 0;
  Tensor y = normalize_rows(input, rows, L, options.eps());
  if (!options.weight().defined() && !options.bias().defined()) return y;
  if (rows >= kFusedMinRows) return affine_rows(y, options.weight(), options.bias(), rows, L);
  if (options.weight().defined()) y = y * options.weight();
  if (options.bias().defined()) y = y + options.bias();
  return y;
}

Tensor group_norm(const Tensor& input, const GroupNormFuncOptions& options) {
  check_floating_input(input, "group_norm");
  const Shape xs = input.shape();
  check(xs.size() >= 2, "group_norm", "expected an input of at least 2 dims [N, C, *], got shape ", xs);
  const std::int64_t G = options.num_groups(), C = xs[1];
  check(G >= 1, "group_norm", "num_groups must be >= 1, got ", G);
  check(C % G == 0, "group_norm", "num_groups ", G, " must divide the number of channels ", C, " of input ", xs);
  check(options.eps() >= 0.0, "group_norm", "eps must be >= 0, got ", options.eps());
  check_affine(options.weight(), "weight", Shape{C}, input, "group_norm");
  check_affine(options.bias(), "bias", Shape{C}, input, "group_norm");
  const std::int64_t rows = xs[0] * G, per_row = rows > 0 ? input.numel() / rows : 0;
  if (detail::group_norm_fused_applies(rows, per_row, input.numel())) {
    using sorix::detail::contiguous_or_undefined;
    return detail::group_norm_fused(input.contiguous(), contiguous_or_undefined(options.weight()),
                                    contiguous_or_undefined(options.bias()), G, options.eps());
  }
  Tensor y = normalize_rows(input, rows, per_row, options.eps());
  if (!options.weight().defined() && !options.bias().defined()) return y;
  if (y.numel() > 0) {
    // The per-channel weight and bias as BatchNorm in eval mode with mean 0, variance 1 and eps 0
    // (invstd exactly 1): y * w + b in one pass, and its gradients fused (g * w; the sums of g and
    // g * xhat over (N, *) per channel), not four elementwise passes and two reductions.
    const Tensor mean = zeros({C}, input.dtype()), var = ones({C}, input.dtype());
    return functional::batch_norm(y, mean, var, options.weight(), options.bias(), false, 0.0, 0.0);
  }
  Shape per_channel(xs.size(), 1);  // [1, C, 1, ...]: weight/bias broadcast over N and the spatial dims
  per_channel[1] = C;
  if (options.weight().defined()) y = y * reshape(options.weight(), per_channel);
  if (options.bias().defined()) y = y + reshape(options.bias(), per_channel);
  return y;
}

Tensor dropout2d(const Tensor& input, const Dropout2dFuncOptions& options) {
  check_p(options.p(), "dropout2d");
  check_floating_input(input, "dropout2d");
  const Shape xs = input.shape();
  check(xs.size() == 3 || xs.size() == 4, "dropout2d",
        "expected a 3D (unbatched [C, H, W]) or 4D ([N, C, H, W]) input, got ", xs.size(), "D input of shape ", xs);
  if (!options.training() || options.p() == 0.0) return input;
  // One word per channel: the mask (0 or 1/(1-p)) of an [N, C] tensor of ones. It is a constant,
  // so the product's gradient is g * mask, and create_graph differentiates it again.
  const std::size_t lead = xs.size() - 2;  // the channel dims: [N, C] or [C]
  const Shape channels(xs.begin(), xs.begin() + static_cast<std::ptrdiff_t>(lead));
  Tensor mask;
  {
    NoGradGuard no_grad;
    mask = dropout(ones(channels, input.dtype()), options.p(), true, options.generator());
  }
  Shape bshape = channels;
  bshape.push_back(1);
  bshape.push_back(1);
  return input * reshape(mask, bshape);
}

}  // namespace functional

LayerNorm::LayerNorm(const LayerNormOptions& options, Dtype dtype) : options_(options) {
  check(!options.normalized_shape().empty(), "LayerNorm", "normalized_shape must not be empty");
  for (std::int64_t s : options.normalized_shape()) {
    check(s >= 0, "LayerNorm", "normalized_shape sizes must be >= 0, got ", options.normalized_shape());
  }
  check(options.eps() >= 0.0, "LayerNorm", "eps must be >= 0, got ", options.eps());
  check(is_floating(dtype), "LayerNorm", "parameters must be float32 or float64, got ", dtype_name(dtype));
  if (options.elementwise_affine()) {
    const Shape s(options.normalized_shape());
    weight = register_parameter("weight", ones(s, dtype));
    bias = register_parameter("bias", zeros(s, dtype));
  }
}

void LayerNorm::reset_parameters() {
  if (!options_.elementwise_affine()) return;
  init::ones_(weight);
  init::zeros_(bias);
}

Tensor LayerNorm::forward(const Tensor& input) {
  return functional::layer_norm(
      input, functional::LayerNormFuncOptions(options_.normalized_shape()).weight(weight).bias(bias).eps(options_.eps()));
}

std::string LayerNorm::extra_repr() const {
  std::ostringstream os;
  os << "(";
  const auto& ns = options_.normalized_shape();
  for (std::size_t k = 0; k < ns.size(); ++k) os << (k ? ", " : "") << ns[k];
  os << (ns.size() == 1 ? ",)" : ")") << ", eps=" << options_.eps()
     << ", elementwise_affine=" << (options_.elementwise_affine() ? "True" : "False");
  return os.str();
}

GroupNorm::GroupNorm(const GroupNormOptions& options, Dtype dtype) : options_(options) {
  check(options.num_groups() >= 1, "GroupNorm", "num_groups must be >= 1, got ", options.num_groups());
  check(options.num_channels() >= 0, "GroupNorm", "num_channels must be >= 0, got ", options.num_channels());
  check(options.num_channels() % options.num_groups() == 0, "GroupNorm", "num_groups ", options.num_groups(),
        " must divide num_channels ", options.num_channels());
  check(options.eps() >= 0.0, "GroupNorm", "eps must be >= 0, got ", options.eps());
  check(is_floating(dtype), "GroupNorm", "parameters must be float32 or float64, got ", dtype_name(dtype));
  if (options.affine()) {
    weight = register_parameter("weight", ones({options.num_channels()}, dtype));
    bias = register_parameter("bias", zeros({options.num_channels()}, dtype));
  }
}

void GroupNorm::reset_parameters() {
  if (!options_.affine()) return;
  init::ones_(weight);
  init::zeros_(bias);
}

Tensor GroupNorm::forward(const Tensor& input) {
  check(input.defined(), "GroupNorm", "input is undefined");
  check(input.dim() >= 2 && input.size(1) == options_.num_channels(), "GroupNorm", "expected input [N, ",
        options_.num_channels(), ", *], got shape ", input.shape());
  return functional::group_norm(
      input, functional::GroupNormFuncOptions(options_.num_groups()).weight(weight).bias(bias).eps(options_.eps()));
}

std::string GroupNorm::extra_repr() const {
  std::ostringstream os;
  os << options_.num_groups() << ", " << options_.num_channels() << ", eps=" << options_.eps()
     << ", affine=" << (options_.affine() ? "True" : "False");
  return os.str();
}

Dropout2d::Dropout2d(const Dropout2dOptions& options) : options_(options) { check_p(options.p(), "Dropout2d"); }

Tensor Dropout2d::forward(const Tensor& input) {
  return functional::dropout2d(input, functional::Dropout2dFuncOptions().p(options_.p()).training(is_training()));
}

std::string Dropout2d::extra_repr() const {
  std::ostringstream os;
  os << "p=" << options_.p();
  return os.str();
}

}  // namespace sorix::nn
