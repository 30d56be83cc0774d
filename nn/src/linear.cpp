// nn::Linear and functional::linear: one fused op, forward and gradient side by side.
#include "sorix/nn/linear.hpp"

#include <cmath>
#include <sstream>

#include "sorix_autograd/gemm.hpp"
#include "sorix_core/kernels/batch_tree.hpp"
#include "sorix_autograd/ops_internal.hpp"
#include "sorix_core/kernels/reduce.hpp"
#include "sorix/nn/init.hpp"

namespace sorix::nn {

namespace {

// x [rows, in] times W^T plus b, into a new [rows, out] buffer of `out_shape`.
template <class T>
Tensor linear_forward(const Tensor& x, const Tensor& w, const Tensor& b, std::size_t rows, std::size_t in,
                      std::size_t out, const Shape& out_shape) {
  Tensor y = detail::make_empty<T>(detail::to_xshape(out_shape, "linear"));
  T* py = sorix::detail::flat<T>(y);
  if (rows == 0 || out == 0) return y;
  T beta = T(0);
  if (b.defined()) {
    // Preload every row with the bias; the GEMM then accumulates x W^T onto it (beta = 1).
    const T* pb = sorix::detail::flat<T>(b);
    parallel::parallel_for(rows, std::max<std::size_t>(1, parallel::kChunkSize / out), [&](std::size_t r0, std::size_t r1) {
      for (std::size_t r = r0; r < r1; ++r) std::copy(pb, pb + out, py + r * out);
    });
    beta = T(1);
  }
  if (in == 0) {
    if (!b.defined()) std::fill(py, py + rows * out, T(0));
    return y;
  }
  kernels::gemm<T>(false, true, rows, out, in, T(1), sorix::detail::flat<T>(x), in, sorix::detail::flat<T>(w), in, beta, py, out);
  return y;
}

struct LinearGrads {
  Tensor dx, dw, db;
};

// The plain (not recorded) backward on the GEMM and column-sum kernels.
template <class T>
LinearGrads linear_backward(const Tensor& g, const Tensor& x, const Tensor& w, bool need_x, bool need_w, bool need_b,
                            std::size_t rows, std::size_t in, std::size_t out, const Shape& xshape) {
  LinearGrads r;
  const T* pg = sorix::detail::flat<T>(g);
  if (need_x) {
    r.dx = detail::make_empty<T>(detail::to_xshape(xshape, "linear"));
    T* p = sorix::detail::flat<T>(r.dx);
    if (out == 0) std::fill(p, p + rows * in, T(0));
    else if (rows > 0 && in > 0) kernels::gemm<T>(false, false, rows, in, out, T(1), pg, out, sorix::detail::flat<T>(w), in, T(0), p, in);
  }
  if (need_w) {
    r.dw = detail::make_empty<T>({out, in});
    T* p = sorix::detail::flat<T>(r.dw);
    if (rows == 0) std::fill(p, p + out * in, T(0));
    // A sum over the batch: chunk partials combined by the batch tree (sorix/parallel/batch_tree.hpp).
    else if (out > 0 && in > 0)
      kernels::gemm_batch_tree<T>(true, false, out, in, rows, pg, out, sorix::detail::flat<T>(x), in, p, in,
                                  parallel::kBatchChunk);
  }
  if (need_b) {
    r.db = detail::make_empty<T>({out});
    T* p = sorix::detail::flat<T>(r.db);
    if (rows == 0) std::fill(p, p + out, T(0));
    else if (out > 0) kernels::batch_sum_rows(pg, p, rows, out);
  }
  return r;
}

}  // namespace

namespace functional {

namespace {
Tensor linear_flat(const Tensor& input, const Tensor& weight, const Tensor& bias) {
  detail::check_defined(input, "linear");
  detail::check_defined(weight, "linear");
  const Shape xs = input.shape(), ws = weight.shape();
  check(ws.size() == 2, "linear", "weight must be 2-D [out_features, in_features], got shape ", ws);
  check(!xs.empty(), "linear", "input must have at least 1 dimension [..., in_features], got a 0-dim tensor");
  check(xs.back() == ws[1], "linear", "input shape ", xs, " does not match weight shape ", ws,
        ": the input's last dim (", xs.back(), ") must equal in_features (", ws[1], ")");
  check(is_floating(input.dtype()) && input.dtype() == weight.dtype(), "linear",
        "input and weight must have the same floating dtype, got ", dtype_name(input.dtype()), " ", xs, " and ",
        dtype_name(weight.dtype()), " ", ws);
  if (bias.defined()) {
    check(bias.shape() == Shape{ws[0]}, "linear", "bias must have shape [", ws[0], "] (out_features of weight ", ws,
          "), got ", bias.shape());
    check(bias.dtype() == weight.dtype(), "linear", "bias dtype ", dtype_name(bias.dtype()),
          " does not match weight dtype ", dtype_name(weight.dtype()));
  }
  const std::size_t in = static_cast<std::size_t>(ws[1]), out = static_cast<std::size_t>(ws[0]);
  const std::size_t rows = in == 0 ? detail::numel_of(Shape(xs.begin(), xs.end() - 1)) : static_cast<std::size_t>(input.numel()) / in;
  Shape out_shape(xs.begin(), xs.end() - 1);
  out_shape.push_back(ws[0]);

  Tensor y = detail::visit_floating(input.dtype(), "linear", [&](auto tag) {
    using T = typename decltype(tag)::type;
    return linear_forward<T>(input, weight, bias, rows, in, out, out_shape);
  });

  if (autograd::needs_grad({&input, &weight, &bias})) {
    const bool gx = input.requires_grad(), gw = weight.requires_grad(), gb = bias.defined() && bias.requires_grad();
    autograd::SavedTensor sx = gw ? autograd::SavedTensor(input) : autograd::SavedTensor();
    autograd::SavedTensor sw = gx ? autograd::SavedTensor(weight) : autograd::SavedTensor();
    autograd::record(
        y, "LinearBackward", {input, weight, bias},
        [sx, sw, gx, gw, gb, rows, in, out, xs, ws, dt = input.dtype()](const Tensor& grad) -> std::vector<Tensor> {
          Tensor x = sx.unpack("linear"), w = sw.unpack("linear");
          Tensor g = grad.dtype() == dt ? grad : grad.to(dt);
          if (autograd::grad_enabled()) {
            // create_graph: the same formulas as recorded Tensor ops, so they differentiate again.
            const Shape rows_out{static_cast<std::int64_t>(rows), ws[0]};
            const Shape rows_in{static_cast<std::int64_t>(rows), ws[1]};
            Tensor g2 = reshape(g, rows_out);
            Tensor dx = gx ? reshape(matmul(g2, w), xs) : Tensor();
            Tensor dw = gw ? matmul(g2.t(), reshape(x, rows_in)) : Tensor();
            Tensor db = gb ? sum(g2, {0}) : Tensor();
            return {dx, dw, db};
          }
          LinearGrads r = detail::visit_floating(dt, "linear", [&](auto tag) {
            using T = typename decltype(tag)::type;
            return linear_backward<T>(g, x, w, gx, gw, gb, rows, in, out, xs);
          });
          return {r.dx, r.dw, r.db};
        });
  }
  return y;
}
}  // namespace

Tensor linear(const Tensor& input, const Tensor& weight, const Tensor& bias) {
  // The kernels below read flat memory: views are made contiguous first.
  return linear_flat(sorix::detail::contiguous_or_undefined(input), sorix::detail::contiguous_or_undefined(weight), sorix::detail::contiguous_or_undefined(bias));
}

}  // namespace functional

Linear::Linear(const LinearOptions& options, Dtype dtype) : options_(options) {
  check(options.in_features() >= 0 && options.out_features() >= 0, "Linear",
        "in_features and out_features must be >= 0, got ", options.in_features(), " and ", options.out_features());
  check(is_floating(dtype), "Linear", "parameters must be float32 or float64, got ", dtype_name(dtype));
  weight = register_parameter("weight", empty({options.out_features(), options.in_features()}, dtype));
  if (options.bias()) bias = register_parameter("bias", empty({options.out_features()}, dtype));
  reset_parameters();
}

void Linear::reset_parameters() {
  if (weight.numel() == 0) {
    if (bias.defined()) init::zeros_(bias);
    return;
  }
  init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (bias.defined()) {
    const double bound = options_.in_features() > 0 ? 1.0 / std::sqrt(static_cast<double>(options_.in_features())) : 0.0;
    init::uniform_(bias, -bound, bound);
  }
}

Tensor Linear::forward(const Tensor& input) { return functional::linear(input, weight, bias); }

std::string Linear::extra_repr() const {
  std::ostringstream os;
  os << "in_features=" << options_.in_features() << ", out_features=" << options_.out_features()
     << ", bias=" << (options_.bias() ? "True" : "False");
  return os.str();
}

}  // namespace sorix::nn
