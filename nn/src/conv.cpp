// Conv1d, Conv2d, ConvTranspose2d: checks, the column layout and one product per group
// (sorix/nn/conv.hpp). Conv1d is Conv2d over a height of 1.
#include "sorix/nn/conv.hpp"

#include <algorithm>
#include <cmath>
#include <memory>
#include <sstream>
#include <vector>

#include "sorix_autograd/gemm.hpp"
#include "sorix_autograd/ops_internal.hpp"
#include "sorix_core/kernels/batch_tree.hpp"
#include "sorix_core/kernels/batchnorm.hpp"
#include "sorix_core/kernels/table.hpp"
#include "conv_columns.hpp"
#include "conv_depthwise.hpp"
#include "conv_feed.hpp"
#include "conv_pointwise.hpp"
#include "conv_tasks.hpp"
#include "conv_winograd.hpp"
#include "thread_scratch.hpp"
#include "sorix/nn/init.hpp"

namespace sorix::nn {
namespace {

using kernels::ConvGeometry;

// dst[c * dst_ld + r] = src[r * src_ld + c] for r < rows, c < cols (a copy: exact).
void transpose_copy(const float* src, std::size_t src_ld, float* dst, std::size_t dst_ld, std::size_t rows,
                    std::size_t cols) {
  kernels::active().transpose_f32(src, src_ld, dst, dst_ld, rows, cols);
}
void transpose_copy(const double* src, std::size_t src_ld, double* dst, std::size_t dst_ld, std::size_t rows,
                    std::size_t cols) {
  constexpr std::size_t kBlock = 8;  // blocks of 8 x 8: both sides' lines stay in L1
  for (std::size_t r0 = 0; r0 < rows; r0 += kBlock)
    for (std::size_t c0 = 0; c0 < cols; c0 += kBlock)
      for (std::size_t c = c0; c < std::min(cols, c0 + kBlock); ++c)
        for (std::size_t r = r0; r < std::min(rows, r0 + kBlock); ++r) dst[c * dst_ld + r] = src[r * src_ld + c];
}

// One convolution's settings in 2-D form (a 1-D one has a height of 1 everywhere).
struct Conv2dSpec {
  const char* op;
  std::int64_t stride[2], dilation[2], padding[2];  // padding before; -1 = "same"
  std::int64_t output_padding[2] = {0, 0};
  std::int64_t groups;
};

void check_spec(const Conv2dSpec& s, std::size_t dims) {
  for (std::size_t i = 2 - dims; i < 2; ++i) {
    check(s.stride[i] >= 1, s.op, "stride must be >= 1, got ", s.stride[i]);
    check(s.dilation[i] >= 1, s.op, "dilation must be >= 1, got ", s.dilation[i]);
    check(s.padding[i] >= 0 || s.padding[i] == -1, s.op, "padding must be >= 0, got ", s.padding[i]);
  }
  check(s.groups >= 1, s.op, "groups must be >= 1, got ", s.groups);
}

void check_operands(const char* op, const Tensor& x, const Tensor& w, const Tensor& b, std::size_t spatial,
                    bool transposed, std::int64_t groups) {
  sorix::detail::check_defined(x, op);
  sorix::detail::check_defined(w, op);
  const Shape xs = x.shape(), ws = w.shape();
  check(xs.size() == spatial + 1 || xs.size() == spatial + 2, op, "expected a ", spatial + 1, "-D (unbatched) or ",
        spatial + 2, "-D (batched) input, got shape ", xs);
  check(ws.size() == spatial + 2, op, "expected a ", spatial + 2, "-D weight [",
        transposed ? "C_in, C_out / groups" : "C_out, C_in / groups", ", kernel...], got shape ", ws);
  check(is_floating(x.dtype()) && x.dtype() == w.dtype(), op, "input and weight must have the same floating dtype, got ",
        dtype_name(x.dtype()), " and ", dtype_name(w.dtype()));
  for (std::size_t i = 2; i < ws.size(); ++i) check(ws[i] >= 1, op, "kernel sizes must be >= 1, got weight shape ", ws);
  const std::int64_t c_in = xs[xs.size() - spatial - 1];
  if (!transposed) {
    check(ws[0] % groups == 0, op, "out_channels (", ws[0], " in weight ", ws, ") must be divisible by groups (", groups, ")");
    check(c_in == ws[1] * groups, op, "input shape ", xs, " has ", c_in, " channels, but weight ", ws, " with groups=",
          groups, " expects ", ws[1] * groups);
  } else {
    check(ws[0] % groups == 0, op, "in_channels (", ws[0], " in weight ", ws, ") must be divisible by groups (", groups, ")");
    check(c_in == ws[0], op, "input shape ", xs, " has ", c_in, " channels, but weight ", ws, " expects ", ws[0]);
  }
  if (b.defined()) {
    const std::int64_t c_out = transposed ? ws[1] * groups : ws[0];
    check(b.shape() == Shape{c_out}, op, "bias must have shape [", c_out, "], got ", b.shape());
    check(b.dtype() == w.dtype(), op, "bias dtype ", dtype_name(b.dtype()), " does not match weight dtype ",
          dtype_name(w.dtype()));
  }
}

// The 4-D form of a conv1d/conv2d input or weight: [N, C, L] -> [N, C, 1, L]; unbatched gets N = 1.
Tensor as_4d(const Tensor& t, std::size_t spatial, bool batched) {
  Tensor r = batched ? t : unsqueeze(t, 0);
  return spatial == 1 ? unsqueeze(r, -2) : r;
}
Tensor from_4d(const Tensor& y, std::size_t spatial, bool batched) {
  Tensor r = spatial == 1 ? squeeze(y, -2) : y;
  return batched ? r : squeeze(r, 0);
}

std::size_t sz(std::int64_t v) { return static_cast<std::size_t>(v); }

// y [N, C_out, OH, OW] = x [N, C, H, W] conv w [C_out, C / G, kh, kw] (+ b).
// The weight and bias gradients are sums over the batch by the batch tree (every group's alike),
// so data-parallel ranks reproduce one process (docs/distributed.md).

// out[g] = a[g] b[g]^T for every group (a [G, M, NP] and b [G, K, NP], or 2-D for one group): the
// sum over the NP columns (image-major: chunk_cols columns per image chunk) is the batch tree's
// (sorix/parallel/batch_tree.hpp), by gemm_batch_tree as Linear's weight gradient.
Tensor batch_tree_product(const Tensor& a_in, const Tensor& b_in, const Shape& out_shape, std::size_t chunk_cols) {
  const Tensor a = a_in.contiguous(), b = b_in.contiguous();
  const bool grouped = a.dim() == 3;
  const std::size_t G = grouped ? sz(a.size(0)) : 1, M = sz(a.size(-2)), K = sz(b.size(-2)), NP = sz(a.size(-1));
  return sorix::detail::visit_floating(a.dtype(), "conv2d", [&](auto tag) {
    using T = typename decltype(tag)::type;
    Tensor out = sorix::detail::make_empty<T>(sorix::detail::XShape(out_shape.begin(), out_shape.end()));
    T* p = sorix::detail::flat<T>(out);
    const T* pa = sorix::detail::flat<T>(a);
    const T* pb = sorix::detail::flat<T>(b);
    for (std::size_t g = 0; g < G; ++g) {
      if (NP == 0) std::fill(p + g * M * K, p + (g + 1) * M * K, T(0));
      else kernels::gemm_batch_tree<T>(false, true, M, K, NP, pa + g * M * NP, NP, pb + g * K * NP, NP, p + g * M * K, K,
                                       chunk_cols);
    }
    return out;
  });
}

// y [N, OC, OH, OW] = W [G, OCg, K] x cols [G * K, N * P] (+ b), written image by image straight
// into the NCHW output: for each group and image one product over the image's P columns (every
// element one fma chain over K, matmul's bits), the bias added in the product's epilogue as
// fma(1, b, acc) = acc + b rounded once: add's bits, without a permute and an add pass.
Tensor conv_forward(const Tensor& w, const Tensor& cols, const Tensor& b, std::int64_t G, std::int64_t N,
                    std::int64_t OH, std::int64_t OW) {
  // K from the weight: the columns may carry a row of ones after the G * K (im2col_with_ones).
  const std::int64_t OC = w.size(0), P = OH * OW, K = w.numel() / std::max<std::int64_t>(OC, 1);
  NoGradGuard no_grad;
  return sorix::detail::visit_floating(w.dtype(), "conv2d", [&](auto tag) {
    using T = typename decltype(tag)::type;
    Tensor out = sorix::detail::make_empty<T>({sz(N), sz(OC), sz(OH), sz(OW)});
    T* py = sorix::detail::flat<T>(out);
    const T* pw = sorix::detail::flat<T>(w);
    const T* pc = sorix::detail::flat<T>(cols);
    const T* pb = b.defined() ? sorix::detail::flat<T>(b) : nullptr;
    const std::size_t OCg = sz(OC / G), NP = sz(N * P);
    const T beta = pb != nullptr ? T(1) : T(0);
    // y_n = b (broadcast), then y_n = fma(1, y_n, W cols_n): image n's output block is filled just
    // before its product reads it back (in cache).
    auto fill_bias = [&](std::size_t n) {
      if (pb == nullptr) return;
      for (std::size_t o = 0; o < sz(OC); ++o) std::fill(py + (n * sz(OC) + o) * sz(P), py + (n * sz(OC) + o + 1) * sz(P), pb[o]);
    };
    if (detail::images_feed_threads(sz(N))) {  // the images are the tasks
      parallel::parallel_for(sz(N), 1, [&](std::size_t n0, std::size_t n1) {
        for (std::size_t n = n0; n < n1; ++n) {
          fill_bias(n);
          for (std::size_t g = 0; g < sz(G); ++g)
            kernels::gemm_serial<T>(false, false, OCg, sz(P), sz(K), T(1), pw + g * OCg * sz(K), sz(K),
                                    pc + g * sz(K) * NP + n * sz(P), NP, beta, py + (n * sz(OC) + g * OCg) * sz(P), sz(P));
        }
      }, 0);  // grain 0: every image is a task (the default grain counts elements, not images)
      return out;
    }
    for (std::size_t n = 0; n < sz(N); ++n) fill_bias(n);
    for (std::size_t g = 0; g < sz(G); ++g) {  // few images: each product split across the threads
      kernels::gemm_batched<T>(sz(N), false, false, OCg, sz(P), sz(K), T(1), pw + g * OCg * sz(K), sz(K), 0,
                               pc + g * sz(K) * NP, NP, sz(P), beta, py + g * OCg * sz(P), sz(P), sz(OC * P));
    }
    return out;
  });
}

// The weight and bias gradients of conv_forward (no create_graph): sums over the batch, the batch
// tree's over chunks of kBatchChunk images of P columns (as Linear's): g cols^T, and g times a
// column of ones for the bias (fma(g, 1, acc) is acc + g).
void conv_weight_bias_grads(const Tensor& grad, const Tensor& c, const Tensor& w, std::int64_t G, std::int64_t N,
                            std::int64_t P, bool gw, bool gb, Tensor& dw, Tensor& db) {
  if (!gw && !gb) return;
  const std::int64_t OC = w.size(0), OCg = OC / G, K = c.size(0) / G;
  // The gradient as [OC, N * P] (columns image-major, as the columns').
  const Tensor g2 = reshape(permute(reshape(grad, {N, OC, P}), {1, 0, 2}), {OC, N * P}).contiguous();
  const std::size_t chunk = parallel::kBatchChunk * sz(P);
  if (gw) {
    dw = G == 1 ? batch_tree_product(g2, c, w.shape(), chunk)
                : batch_tree_product(reshape(g2, {G, OCg, N * P}), reshape(c, {G, K, N * P}), w.shape(), chunk);
  }
  if (gb) {
    db = sorix::detail::visit_floating(w.dtype(), "conv2d", [&](auto tag) {
      using T = typename decltype(tag)::type;
      const std::vector<T> ones(sz(N * P), T(1));
      Tensor out = sorix::detail::make_empty<T>({sz(OC)});
      kernels::gemm_batch_tree<T>(false, true, sz(OC), 1, sz(N * P), sorix::detail::flat<T>(g2), sz(N * P), ones.data(),
                                  sz(N * P), sorix::detail::flat<T>(out), 1, chunk);
      return out;
    });
  }
}

// The weight and bias gradients on im2col_with_ones' columns c [G * K + 1, N * P] (no
// create_graph), as the transposed products c g^T over the batch: C[k][o] is the chain of
// fma(c[k][j], g[o][j], .) over the batch's columns j, chunk by chunk, added by the batch tree:
// the bits of g c^T (fma's product commutes) with the bias as the ones row's product. The
// gradient as [N * P, OC] is B untransposed (its panels are plain copies), and the product
// needs no transposed copy of the much larger columns.
void conv_weight_bias_grads_t(const Tensor& grad, const Tensor& c, const Tensor& w, std::int64_t G, std::int64_t N,
                              std::int64_t P, bool gw, bool gb, Tensor& dw, Tensor& db) {
  if (!gw && !gb) return;
  const std::int64_t OC = w.size(0), OCg = OC / G, K = w.numel() / OC, NP = N * P;
  const Tensor gt = permute(reshape(grad, {N, OC, P}), {0, 2, 1}).contiguous();  // [N * P, OC]
  const std::size_t chunk = parallel::kBatchChunk * sz(P);
  sorix::detail::visit_floating(w.dtype(), "conv2d", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* pc = sorix::detail::flat<T>(c);
    const T* pg = sorix::detail::flat<T>(gt);
    Tensor dwt;  // [G, K (+ 1), OCg]: the weight gradient transposed (and the bias row)
    const bool fused_bias = gb && G == 1;
    const std::int64_t rows = K + (fused_bias ? 1 : 0);
    if (gw || fused_bias) {
      dwt = sorix::detail::make_empty<T>({sz(G), sz(rows), sz(OCg)});
      T* pd = sorix::detail::flat<T>(dwt);
      for (std::size_t g = 0; g < sz(G); ++g) {
        kernels::gemm_batch_tree<T>(false, false, sz(rows), sz(OCg), sz(NP), pc + g * sz(K * NP), sz(NP),
                                    pg + g * sz(OCg), sz(OC), pd + g * sz(rows * OCg), sz(OCg), chunk);
      }
      if (gw) dw = reshape(permute(narrow(dwt, 1, 0, K), {0, 2, 1}), w.shape()).contiguous();
      if (fused_bias) db = reshape(narrow(dwt, 1, K, 1), {OC}).contiguous();
    }
    if (gb && !fused_bias) {  // groups: the ones row against every channel
      Tensor out = sorix::detail::make_empty<T>({sz(OC)});
      kernels::gemm_batch_tree<T>(false, false, 1, sz(OC), sz(NP), pc + sz(G * K * NP), sz(NP), pg, sz(OC),
                                  sorix::detail::flat<T>(out), sz(OC), chunk);
      db = out;
    }
  });
}

// The columns' gradient W^T g of conv_forward, image by image (each one product per group:
// matmul's bits), handed to `each(n, dcols_n)` with dcols_n [G * K, P] in a buffer of its task.
template <class T, class Each>
void for_each_image_dcols(const Tensor& grad, const Tensor& w, std::int64_t G, std::int64_t N, std::int64_t P,
                          std::int64_t K, Each&& each) {
  const Tensor gc = grad.contiguous();
  const std::int64_t OC = w.size(0), OCg = OC / G;
  const T* pw = sorix::detail::flat<T>(w);
  const T* pg = sorix::detail::flat<T>(gc);
  // One task per image or run of images (each product on its task's thread: its columns'
  // gradient is then read back from that core's cache).
  parallel::parallel_for(sz(N), 1, [&](std::size_t n0, std::size_t n1) {
    T* buf = detail::thread_scratch<T>(sz(G * K * P));
    for (std::size_t n = n0; n < n1; ++n) {
      for (std::size_t g = 0; g < sz(G); ++g) {
        kernels::gemm_serial<T>(true, false, sz(K), sz(P), sz(OCg), T(1), pw + g * sz(OCg * K), sz(K),
                                pg + (n * sz(OC) + g * sz(OCg)) * sz(P), sz(P), T(0), buf + g * sz(K * P), sz(P));
      }
      each(n, static_cast<const T*>(buf));
    }
  }, 0);  // grain 0: every image is a task (the default grain counts elements, not images)
}

// create_graph: conv_forward's gradients as recorded ops (matmul, permute, sum), differentiable
// again: dW = g cols^T, the columns' gradient W^T g as [G * K, N * P], db = the sum over (n, p).
struct RecordedGrads {
  Tensor dw, dcols, db;
};
RecordedGrads conv_grads_recorded(const Tensor& grad, const Tensor& w, const Tensor& cols, std::int64_t G,
                                  std::int64_t N, std::int64_t P, std::int64_t K, bool gw, bool gc, bool gb) {
  const std::int64_t OCg = w.size(0) / G;
  const Tensor g3 = reshape(permute(reshape(grad, {N, G, OCg, P}), {1, 2, 0, 3}), {G, OCg, N * P});
  RecordedGrads r;
  if (gw) r.dw = reshape(matmul(g3, transpose(reshape(cols, {G, K, N * P}), -2, -1)), w.shape());
  if (gc) r.dcols = reshape(matmul(transpose(reshape(w, {G, OCg, K}), -2, -1), g3), {G * K, N * P});
  if (gb) r.db = sum(grad, {0, 2, 3});
  return r;
}

// conv_forward as a recorded op of w, the columns (a tensor the caller made: a 1 x 1 kernel's
// view of the input) and b.
Tensor conv_product(const Tensor& w_in, const Tensor& cols_in, const Tensor& b_in, std::int64_t G, std::int64_t N,
                    std::int64_t OH, std::int64_t OW) {
  const Tensor w = w_in.contiguous(), cols = cols_in.contiguous();
  const Tensor b = b_in.defined() ? b_in.contiguous() : b_in;
  Tensor y = conv_forward(w, cols, b, G, N, OH, OW);
  const bool has_bias = b.defined();
  if (!(has_bias ? autograd::needs_grad({&w_in, &cols_in, &b_in}) : autograd::needs_grad({&w_in, &cols_in}))) return y;
  const bool gw = w_in.requires_grad(), gc = cols_in.requires_grad(), gb = has_bias && b_in.requires_grad();
  std::vector<Tensor> inputs{w_in, cols_in};
  if (has_bias) inputs.push_back(b_in);
  const std::int64_t P = OH * OW, K = cols.size(0) / G;
  autograd::record(
      y, "ConvolutionBackward", inputs,
      [sw = autograd::SavedTensor(w), sc = autograd::SavedTensor(cols), gw, gc, gb, has_bias, G, N, P,
       K](const Tensor& grad) -> std::vector<Tensor> {
        const Tensor w = sw.unpack("conv2d"), c = sc.unpack("conv2d");
        std::vector<Tensor> out(has_bias ? 3 : 2);
        if (autograd::grad_enabled()) {  // create_graph: matmul's formulas, differentiable again
          const RecordedGrads r = conv_grads_recorded(grad, w, c, G, N, P, K, gw, gc, gb);
          out[0] = r.dw;
          out[1] = r.dcols;
          if (has_bias) out[2] = r.db;
          return out;
        }
        conv_weight_bias_grads(grad, c, w, G, N, P, gw, gb, out[0], has_bias ? out[2] : out[0]);
        if (gc) {
          out[1] = sorix::detail::visit_floating(w.dtype(), "conv2d", [&](auto tag) {
            using T = typename decltype(tag)::type;
            Tensor dc = sorix::detail::make_empty<T>({sz(G * K), sz(N * P)});
            T* pd = sorix::detail::flat<T>(dc);
            for_each_image_dcols<T>(grad, w, G, N, P, K, [&](std::size_t n, const T* d) {
              for (std::size_t r = 0; r < sz(G * K); ++r) std::copy(d + r * sz(P), d + (r + 1) * sz(P), pd + r * sz(N * P) + n * sz(P));
            });
            return dc;
          });
        }
        return out;
      });
  return y;
}

// The zero-padded planes (PH x PW each, kernels::pad_plane) that an image's im2col columns are
// read from in place by kernels::gemm_gathered_serial, and the offsets that make them those
// columns: position p = (oh, ow) starts at positions[p] = oh * sh * PW + ow * sw, and column
// k = (c, ki, kj) of `channels` channels adds tap_offsets[k] = c * plane + ki * dh * PW + kj * dw.
struct PaddedColumns {
  std::size_t PH, PW, plane;
  std::vector<std::size_t> positions, tap_offsets;

  PaddedColumns(const ConvGeometry& geom, std::size_t channels)
      : PH((geom.OH - 1) * geom.sh + (geom.kh - 1) * geom.dh + 1),
        PW((geom.OW - 1) * geom.sw + (geom.kw - 1) * geom.dw + 1),
        plane(PH * PW),
        positions(geom.positions()),
        tap_offsets(channels * geom.taps()) {
    for (std::size_t oh = 0, p = 0; oh < geom.OH; ++oh)
      for (std::size_t ow = 0; ow < geom.OW; ++ow, ++p) positions[p] = oh * geom.sh * PW + ow * geom.sw;
    for (std::size_t c = 0, k = 0; c < channels; ++c)
      for (std::size_t ki = 0; ki < geom.kh; ++ki)
        for (std::size_t kj = 0; kj < geom.kw; ++kj, ++k) tap_offsets[k] = c * plane + ki * geom.dh * PW + kj * geom.dw;
  }

  // Image n's channels [c0, c1) of x [N, C, H, W], zero-padded into `to` (one plane each).
  template <class T>
  void pad(const T* px, const ConvGeometry& geom, std::size_t n, std::size_t c0, std::size_t c1, T* to) const {
    for (std::size_t c = c0; c < c1; ++c)  // padded row r, column q = x[r - ph][q - pw]
      kernels::pad_plane(px + (n * geom.C + c) * geom.H * geom.W, geom.H, geom.W, geom.ph, geom.pw, PH, PW,
                         to + (c - c0) * plane);
  }
};

// y [N, OC, OH, OW] = x conv w (+ b) with the direct kernel (kernels::ConvKernelsOf::conv_direct),
// one image per task: its channels copied into the thread's scratch zero-padded, then every
// group's output planes made from them.
// `done` (not null) is called with each image's output planes right after they are written, on
// the image's task (fusion::ImageOutput), here and in the paths below.
template <class T>
void conv_direct_by_image(const T* px, const T* pw, const T* pb, const ConvGeometry& geom, std::size_t G,
                          std::size_t OC, T* py, const fusion::ImageOutput* done) {
  const std::size_t OCg = OC / G, Cg = geom.C / G, K = Cg * geom.taps(), P = geom.positions();
  const std::size_t PH = (geom.OH - 1) * geom.sh + (geom.kh - 1) * geom.dh + 1;
  const std::size_t PW = geom.OW + (geom.kw - 1) * geom.dw, plane = PH * PW;
  const auto& table = kernels::active();
  parallel::parallel_for(geom.N, 1, [&](std::size_t n0, std::size_t n1) {
    T* xp = detail::thread_scratch<T>(geom.C * plane + kernels::kDirectConvSlack);
    for (std::size_t n = n0; n < n1; ++n) {
      for (std::size_t c = 0; c < geom.C; ++c)  // padded row r, column q = x[r - ph][q - pw]
        kernels::pad_plane(px + (n * geom.C + c) * geom.H * geom.W, geom.H, geom.W, geom.ph, geom.pw, PH, PW,
                           xp + c * plane);
      for (std::size_t g = 0; g < G; ++g) {
        const T* bg = pb != nullptr ? pb + g * OCg : nullptr;
        T* yg = py + (n * OC + g * OCg) * P;
        if constexpr (std::is_same_v<T, float>)
          table.conv_direct_f32(xp + g * Cg * plane, PW, plane, Cg, geom, pw + g * OCg * K, bg, OCg, yg);
        else table.conv_direct_f64(xp + g * Cg * plane, PW, plane, Cg, geom, pw + g * OCg * K, bg, OCg, yg);
      }
      if (done != nullptr) (*done)(n, py + n * OC * P);
    }
  }, 0);  // grain 0: every image is a task
}

// y [N, OC, OH, OW] = x conv w (+ b) as the transposed products cols_ng^T W_g^T (P x OCg), one
// image per task, the columns never made: the product reads each from the image's zero-padded
// planes where it lies (kernels::gemm_gathered_serial: row p = (oh, ow) of op(A) starts at
// oh * sh * PW + ow * sw, column k = (c, ki, kj) adds c * plane + ki * dh * PW + kj * dw). The
// values and chains of the im2col product (the same bits), without writing K x P columns per
// image and reading them back (2.5 MB for 5 x 5 taps on 32 channels of 28 x 28: to L3 and back).
// wt: W_g^T [K, OCg] per group; each group's P x OCg result, the bias first (beta 1), is copied
// out transposed.
template <class T>
void conv_gathered_by_image(const T* px, const T* wt, const T* pb, const ConvGeometry& geom, std::size_t G,
                            std::size_t OC, T* py, const fusion::ImageOutput* done) {
  const std::size_t OCg = OC / G, Cg = geom.C / G, K = Cg * geom.taps(), P = geom.positions();
  const PaddedColumns cols(geom, Cg);
  const T beta = pb != nullptr ? T(1) : T(0);
  parallel::parallel_for(geom.N, 1, [&](std::size_t n0, std::size_t n1) {
    T* xp = detail::thread_scratch<T>(geom.C * cols.plane + kernels::kDirectConvSlack + P * OCg);
    T* yt = xp + geom.C * cols.plane + kernels::kDirectConvSlack;  // one group's transposed output
    for (std::size_t n = n0; n < n1; ++n) {
      cols.pad(px, geom, n, 0, geom.C, xp);
      for (std::size_t g = 0; g < G; ++g) {
        if (pb != nullptr)
          for (std::size_t p = 0; p < P; ++p) std::copy(pb + g * OCg, pb + (g + 1) * OCg, yt + p * OCg);
        kernels::gemm_gathered_serial<T>(false, P, OCg, K, xp + g * Cg * cols.plane, cols.positions.data(),
                                         cols.tap_offsets.data(), wt + g * K * OCg, OCg, beta, yt, OCg);
        transpose_copy(yt, OCg, py + (n * OC + g * OCg) * P, P, P, OCg);
      }
      if (done != nullptr) (*done)(n, py + n * OC * P);
    }
  }, 0);  // grain 0: every image is a task
}

// conv_forward image by image from x, when the images feed every thread: each image's columns
// [G * K, P] are made by its task in the thread's scratch and multiplied at once, so the product
// packs them from L2 (measured: the CNN's 64 x 196 x 288 products at ~50% of the fma peak when
// their columns came back from memory after an im2col pass over the batch, ~75% from L2), and no
// batch-wide columns are made at all (29 MB for the CNN's second convolution at batch 128, 0.9 GB
// at batch 4096; the weight gradient makes each image's again: conv_weight_bias_grads_by_image).
// The same products of the same values as conv_forward on im2col's columns: the same bits.
Tensor conv_im2col_by_image(const Tensor& x_in, const Tensor& w, const Tensor& b, const ConvGeometry& geom,
                            std::int64_t G, const fusion::ImageOutput* done = nullptr) {
  const Tensor x = x_in.contiguous();
  return sorix::detail::visit_floating(w.dtype(), "conv2d", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const std::size_t OC = sz(w.size(0)), OCg = OC / sz(G), P = geom.positions(), K = geom.rows() / sz(G);
    Tensor out = sorix::detail::make_empty<T>({geom.N, OC, geom.OH, geom.OW});
    T* py = sorix::detail::flat<T>(out);
    const T* px = sorix::detail::flat<T>(x);
    const T* pw = sorix::detail::flat<T>(w);
    const T* pb = b.defined() ? sorix::detail::flat<T>(b) : nullptr;
    const kernels::ConvForwardPath path = kernels::conv_forward_path<T>(geom, OCg, K);
    if (path == kernels::ConvForwardPath::direct) {  // no columns, no copies
      conv_direct_by_image<T>(px, pw, pb, geom, sz(G), OC, py, done);
      return out;
    }
    if (path == kernels::ConvForwardPath::gathered) {  // the transposed product, its columns read in place
      // W_g^T [K, OCg] per group, made once: each image's product packs it with plain row copies.
      std::vector<T> wt(sz(G) * K * OCg);
      for (std::size_t g = 0; g < sz(G); ++g)
        transpose_copy(pw + g * OCg * K, K, wt.data() + g * K * OCg, OCg, OCg, K);
      conv_gathered_by_image<T>(px, wt.data(), pb, geom, sz(G), OC, py, done);
      return out;
    }
    // y_ng = W_g cols_ng (OCg x P) from each image's columns, made in the thread's scratch (L2).
    const T beta = pb != nullptr ? T(1) : T(0);
    ConvGeometry one = geom;  // one image's columns: ld = P
    one.N = 1;
    parallel::parallel_for(geom.N, 1, [&](std::size_t n0, std::size_t n1) {
      T* cols = detail::thread_scratch<T>(geom.rows() * P);
      for (std::size_t n = n0; n < n1; ++n) {
        for (std::size_t c = 0; c < geom.C; ++c)
          kernels::im2col_plane(px + (n * geom.C + c) * geom.H * geom.W, one, 0, c, cols);
        T* yn = py + n * OC * P;
        if (pb != nullptr)
          for (std::size_t o = 0; o < OC; ++o) std::fill(yn + o * P, yn + (o + 1) * P, pb[o]);
        for (std::size_t g = 0; g < sz(G); ++g)
          kernels::gemm_serial<T>(false, false, OCg, P, K, T(1), pw + g * OCg * K, K, cols + g * K * P, P, beta,
                                  yn + g * OCg * P, P);
        if (done != nullptr) (*done)(n, yn);
      }
    }, 0);  // grain 0: every image is a task
    return out;
  });
}

// The weight and bias gradients of conv_im2col_by_image (no create_graph), without the batch's
// columns: the batch tree's chunks of kBatchChunk images, each chunk's partial made by tasks of
// (chunk, group, block of input channels). A task walks its chunk's images in order: it copies the
// image's planes of its channels zero-padded into its scratch (L2) and multiplies their columns,
// read where they lie (gemm_gathered_serial), by the image's gradient as [P, OCg] (g_n^T), every
// chain continuing from the previous image's partial sum (exact), so each chunk's partial is the
// chain over its columns in gemm_batch_tree's order. The bias is the chain of a row of ones that
// the group's last block carries under its columns (a plane of ones after the padded planes;
// fma(1, g, acc) is acc + g: each chunk's add chain over its gradient, in the product's vector
// lanes instead of one scalar chain per channel). The partials are added by the batch tree: the
// bits of conv_weight_bias_grads_t on the stored columns, without 29 MB of columns written and
// read back, nor each image's made again (the gathered product over im2col's columns made per
// image: 13-14% faster for 5 x 5 and 3 x 3 stride-2 layers, 27% for a 7 x 7 stride-2 one, Zen 5).
//
// produce (not null): image n's output gradient is made by produce(n, buffer) into a buffer of the
// task as it is needed (the fused op of conv_feed.hpp), and `grad` is not read. Each task that
// reads the image makes it (with several groups or channel blocks, several times: the same
// values each time).
void conv_weight_bias_grads_by_image(const Tensor& grad, const Tensor& x_in, const Tensor& w, const ConvGeometry& geom,
                                     std::int64_t G, bool gw, bool gb, Tensor& dw, Tensor& db,
                                     const fusion::ImageGrad* produce = nullptr) {
  if (!gw && !gb) return;
  const Tensor x = x_in.contiguous(), gc = produce != nullptr ? Tensor() : grad.contiguous();
  sorix::detail::visit_floating(w.dtype(), "conv2d", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const std::size_t OC = sz(w.size(0)), OCg = OC / sz(G), Cg = geom.C / sz(G), taps = geom.taps();
    const std::size_t K = Cg * taps, P = geom.positions(), chunk = parallel::kBatchChunk;
    const std::size_t chunks = std::max<std::size_t>(1, (geom.N + chunk - 1) / chunk);  // no images: one empty chunk
    // A task's input channels (its rows of the weight gradient): as many as still give every
    // thread two tasks. Whole groups where the chunks alone do that (the CNN's 288 x 64 x 196
    // products per image: 74-77% of the AVX-512 peak, against 64-70% in blocks of 8 channels,
    // which repack the same g_n per block). Blocks change no bit: each row is its own chains.
    const std::size_t block_channels = detail::channels_per_task(Cg, chunks, sz(G));
    const std::size_t blocks = (Cg + block_channels - 1) / block_channels;
    // Chunk i's node: [G, Kn, OCg], the group's bias in its row K when the ones row rides with
    // the weights (Kn = K + 1); a bias alone (frozen weights) is [OC], one add chain per channel.
    const bool ones = gw && gb;
    const std::size_t Kn = K + (ones ? 1 : 0), wsize = gw ? sz(G) * Kn * OCg : 0, node = gw ? wsize : OC;
    const std::size_t tasks = gw ? chunks * sz(G) * blocks : chunks;
    std::vector<T> partials(chunks * node);
    const T* px = sorix::detail::flat<T>(x);
    const T* pg = produce != nullptr ? nullptr : sorix::detail::flat<T>(gc);
    // The columns are read where they lie (gemm_gathered_serial): row (c, ki, kj) of a block's
    // columns starts at tap_offsets[(c - c0) * taps + ki * kw + kj] of its padded planes, and
    // position p = (oh, ow) adds positions[p].
    const PaddedColumns cols(geom, Cg);
    const std::size_t plane = cols.plane;
    parallel::parallel_for(tasks, 1, [&](std::size_t t0, std::size_t t1) {
      std::vector<T> made(produce != nullptr ? OC * P : 0);
      const auto image_grad = [&](std::size_t n) -> const T* {  // [OC, P]
        if (produce == nullptr) return pg + n * OC * P;
        (*produce)(n, made.data());
        return made.data();
      };
      for (std::size_t t = t0; t < t1; ++t) {
        if (!gw) {  // the bias of chunk t: one add chain per channel over (n, p)
          const std::size_t n0 = t * chunk, n1 = std::min(geom.N, n0 + chunk);
          T* out = partials.data() + t * node;
          std::fill(out, out + OC, T(0));
          for (std::size_t n = n0; n < n1; ++n) {
            const T* gn = image_grad(n);
            for (std::size_t o = 0; o < OC; ++o) {
              T acc = out[o];
              for (std::size_t p = 0; p < P; ++p) acc += gn[o * P + p];
              out[o] = acc;
            }
          }
          continue;
        }
        const std::size_t ci = t / (sz(G) * blocks), g = t / blocks % sz(G), blk = t % blocks;
        const std::size_t c0 = g * Cg + blk * block_channels, c1 = std::min(g * Cg + Cg, c0 + block_channels);
        const bool ones_row = ones && c1 == g * Cg + Cg;
        const std::size_t rows = (c1 - c0) * taps + (ones_row ? 1 : 0), n0 = ci * chunk,
                          n1 = std::min(geom.N, n0 + chunk);
        T* C = partials.data() + ci * node + g * Kn * OCg + (c0 - g * Cg) * taps * OCg;  // rows of [Kn, OCg]
        // The block's planes zero-padded, then a plane of ones that the bias's row reads.
        const std::size_t ones_at = (c1 - c0) * plane + kernels::kDirectConvSlack;
        T* xp = detail::thread_scratch<T>(ones_at + plane);
        if (ones_row) std::fill(xp + ones_at, xp + ones_at + plane, T(1));
        std::vector<std::size_t> row_at(cols.tap_offsets.begin(), cols.tap_offsets.begin() + (c1 - c0) * taps);
        if (ones_row) row_at.push_back(ones_at);
        for (std::size_t n = n0; n < n1; ++n) {
          cols.pad(px, geom, n, c0, c1, xp);
          const T* gn = image_grad(n) + g * OCg * P;  // [OCg, P]: op(B) = its transpose
          kernels::gemm_gathered_serial<T>(true, rows, OCg, P, xp, row_at.data(), cols.positions.data(), gn, P, T(0), C,
                                           OCg, /*resume=*/n > n0);
        }
      }
    }, 0);  // grain 0: every (chunk, group, channel block) is a task
    const std::vector<T> root = kernels::tree_of_partials(partials.data(), chunks, node);
    if (gw) {
      Tensor dwt = sorix::detail::make_empty<T>({sz(G), K, OCg});  // [G, K, OCg]: the weight gradient transposed
      T* pd = sorix::detail::flat<T>(dwt);
      for (std::size_t g = 0; g < sz(G); ++g)
        std::copy(root.data() + g * Kn * OCg, root.data() + g * Kn * OCg + K * OCg, pd + g * K * OCg);
      dw = reshape(permute(dwt, {0, 2, 1}), w.shape()).contiguous();
    }
    if (gb) {
      Tensor out = sorix::detail::make_empty<T>({OC});
      T* pb = sorix::detail::flat<T>(out);
      for (std::size_t g = 0; g < (gw ? sz(G) : 1); ++g) {  // row K of each group, or the [OC] node
        const T* from = gw ? root.data() + g * Kn * OCg + K * OCg : root.data();
        std::copy(from, from + (gw ? OCg : OC), pb + g * OCg);
      }
      db = out;
    }
  });
}

// The values of y = x conv w (+ b) for a convolution that is not 1 x 1, not recorded, by the path
// its geometry takes: Winograd's F(2x2, 3x3) (3 x 3 of stride 1, float32, enough channels),
// depthwise chains (groups == channels, stride 1), each image's columns on its task, or, for few
// images, the batch's columns (kept in *batch_cols when asked: the weight gradient reuses them).
// Every choice but the first two gives the same bits, and those two depend on the geometry
// alone, never on the thread count.
Tensor conv_values(const Tensor& x, const Tensor& w, const Tensor& b, const ConvGeometry& geom, std::int64_t G,
                   Tensor* batch_cols = nullptr) {
  if (detail::winograd_applies(w.dtype(), geom, geom.C / sz(G), sz(w.size(0)) / sz(G)))
    return detail::winograd_conv2d(x, w, b, geom, sz(G));
  if (detail::depthwise_applies(geom, sz(G))) return detail::depthwise_conv2d(x, w, b, geom);
  if (detail::images_feed_threads(geom.N)) return conv_im2col_by_image(x, w, b, geom, G);
  Tensor cols = detail::im2col_with_ones(x, geom);
  Tensor y = conv_forward(w, cols, b, G, static_cast<std::int64_t>(geom.N), static_cast<std::int64_t>(geom.OH),
                          static_cast<std::int64_t>(geom.OW));
  if (batch_cols != nullptr) *batch_cols = cols;
  return y;
}

// Whether the input gradient of a stride-1 convolution is made as a convolution of the output
// gradient (input_grad_as_conv): its padding d * (k - 1) - p must not be negative.
bool input_grad_as_conv_applies(const ConvGeometry& g) {
  return g.sh == 1 && g.sw == 1 && g.ph <= g.dh * (g.kh - 1) && g.pw <= g.dw * (g.kw - 1);
}

Tensor conv_im2col(const Tensor& x_in, const Tensor& w_in, const Tensor& b_in, const ConvGeometry& geom,
                   std::int64_t G);

// dx of y = x conv w at stride 1 as a convolution of g = dy, the output gradient:
// dx = g conv w', w' [C, OC / G, kh, kw] the kernel with its two channel axes swapped per group and
// its taps reversed, padded by d * (k - 1) - p before the first row and column, an output of
// H x W. Each element is then one chain over (output channel, tap) like a forward's, made by the
// forward's paths (its columns image by image in L2, packed by the product kernel), where
// col2im(W^T g) made each image's whole [C * taps, OH * OW] columns' gradient (2.5 MB for a
// 5 x 5 kernel on 32 channels of 28 x 28: it went to L3) and gathered it back tap by tap.
// Recorded ops throughout (w' by index_select and permute, copies: exact), so under create_graph
// the gradient has the same bits and is differentiable again in g and w.
Tensor input_grad_as_conv(const Tensor& grad, const Tensor& w, const ConvGeometry& geom, std::int64_t G) {
  const std::int64_t OC = w.size(0), Cg = w.size(1), kh = w.size(2), kw = w.size(3), taps = kh * kw;
  const Tensor reversed = arange(static_cast<double>(taps - 1), -1.0, -1.0, TensorOptions().dtype(int64));
  const Tensor taps_reversed = index_select(reshape(w, {G, OC / G, Cg, taps}), 3, reversed);
  const Tensor flipped = reshape(permute(taps_reversed, {0, 2, 1, 3}), {G * Cg, OC / G, kh, kw});
  ConvGeometry back = geom;
  back.C = sz(OC);
  back.H = geom.OH;
  back.W = geom.OW;
  back.ph = geom.dh * (geom.kh - 1) - geom.ph;
  back.pw = geom.dw * (geom.kw - 1) - geom.pw;
  back.OH = geom.H;
  back.OW = geom.W;
  return conv_im2col(grad, flipped, Tensor(), back, G);
}

// conv_values as a recorded op of x, w and b. The input gradient: at stride 1 a convolution of
// the output gradient (input_grad_as_conv); strided, col2im(W^T g) image by image, each image's
// columns' gradient added into its planes while it is in the core's cache (the same products and
// the same additions as the two passes, without the columns' gradient of the whole batch going
// through memory).
Tensor conv_im2col(const Tensor& x_in, const Tensor& w_in, const Tensor& b_in, const ConvGeometry& geom,
                   std::int64_t G) {
  const Tensor w = w_in.contiguous();
  const Tensor b = b_in.defined() ? b_in.contiguous() : b_in;
  const bool has_bias = b.defined();
  const bool needs = has_bias ? autograd::needs_grad({&x_in, &w_in, &b_in}) : autograd::needs_grad({&x_in, &w_in});
  const std::int64_t N = static_cast<std::int64_t>(geom.N), OH = static_cast<std::int64_t>(geom.OH),
                     OW = static_cast<std::int64_t>(geom.OW);
  // The path conv_values takes: Winograd and depthwise have their own gradients.
  const bool winograd = detail::winograd_applies(w.dtype(), geom, geom.C / sz(G), sz(w.size(0)) / sz(G));
  const bool depthwise = !winograd && detail::depthwise_applies(geom, sz(G));
  Tensor cols;  // the batch's columns, kept for the weight gradient (few images only)
  Tensor y = conv_values(x_in, w, b, geom, G, &cols);
  if (!needs) return y;
  const bool gx = x_in.requires_grad(), gw = w_in.requires_grad(), gb = has_bias && b_in.requires_grad();
  std::vector<Tensor> inputs{x_in, w_in};
  if (has_bias) inputs.push_back(b_in);
  const std::int64_t P = OH * OW, K = static_cast<std::int64_t>(geom.rows()) / G;
  autograd::record(
      y, "ConvolutionBackward", inputs,
      [sx = autograd::SavedTensor(x_in), sw = autograd::SavedTensor(w),
       sc = cols.defined() ? autograd::SavedTensor(cols) : autograd::SavedTensor(), geom, gx, gw, gb, has_bias, G, N, P,
       K, winograd, depthwise](const Tensor& grad) -> std::vector<Tensor> {
        const Tensor w = sw.unpack("conv2d");
        std::vector<Tensor> out(has_bias ? 3 : 2);
        const bool dx_as_conv = gx && !winograd && !depthwise && input_grad_as_conv_applies(geom);
        if (autograd::grad_enabled()) {  // create_graph: differentiable formulas (im2col/col2im recorded)
          const RecordedGrads r = conv_grads_recorded(grad, w, detail::im2col(sx.unpack("conv2d"), geom), G, N, P, K,
                                                      gw, gx && !dx_as_conv, gb);
          if (dx_as_conv) out[0] = input_grad_as_conv(grad, w, geom, G);
          else if (gx) out[0] = detail::col2im(r.dcols, geom);
          out[1] = r.dw;
          if (has_bias) out[2] = r.db;
          return out;
        }
        Tensor& db = has_bias ? out[2] : out[1];
        if (winograd) {  // every gradient at once: the input's shares the weight's transform of grad
          detail::winograd_conv2d_grads(grad, sx.unpack("conv2d"), w, geom, sz(G), gx, gw, gb, out[0], out[1], db);
          return out;
        }
        if (depthwise) detail::depthwise_conv2d_param_grads(grad, sx.unpack("conv2d"), w, geom, gw, gb, out[1], db);
        else if (sc.defined()) conv_weight_bias_grads_t(grad, sc.unpack("conv2d"), w, G, N, P, gw, gb, out[1], db);
        else conv_weight_bias_grads_by_image(grad, sx.unpack("conv2d"), w, geom, G, gw, gb, out[1], db);
        if (gx && depthwise) {
          out[0] = detail::depthwise_conv2d_input_grad(grad, w, geom);
        } else if (dx_as_conv) {
          out[0] = input_grad_as_conv(grad, w, geom, G);
        } else if (gx) {  // strided: col2im(W^T g), image by image
          out[0] = sorix::detail::visit_floating(w.dtype(), "conv2d", [&](auto tag) {
            using T = typename decltype(tag)::type;
            Tensor dx = sorix::detail::make_empty<T>({geom.N, geom.C, geom.H, geom.W});
            T* px = sorix::detail::flat<T>(dx);
            ConvGeometry one = geom;  // one image's columns: ld = P
            one.N = 1;
            for_each_image_dcols<T>(grad, w, G, N, P, K, [&](std::size_t n, const T* d) {
              for (std::size_t ch = 0; ch < geom.C; ++ch)
                kernels::col2im_plane(d, one, 0, ch, px + (n * geom.C + ch) * geom.H * geom.W);
            });
            return dx;
          });
        }
        return out;
      });
  return y;
}

// The transposed convolution's columns: W^T [G, K, ICg] x xg [G, ICg, N * HW] (or 2-D for groups
// 1): matmul's bits forward; the weight gradient xg g^T is a sum over the batch, the batch tree's
// over chunks of kBatchChunk images (HW columns each).
Tensor transposed_weight_product(const Tensor& w2, const Tensor& xg, std::int64_t HW) {
  Tensor y;
  {
    NoGradGuard no_grad;
    y = matmul(transpose(w2, -2, -1), xg);
  }
  if (!autograd::needs_grad({&w2, &xg})) return y;
  const bool gw = w2.requires_grad(), gx = xg.requires_grad();
  autograd::record(
      y, "ConvTransposeWeightProductBackward", {w2, xg},
      [sw = autograd::SavedTensor(w2), sx = autograd::SavedTensor(xg), gw, gx, HW](const Tensor& grad) -> std::vector<Tensor> {
        const Tensor w = sw.unpack("conv_transpose2d"), x = sx.unpack("conv_transpose2d");
        if (autograd::grad_enabled()) {  // create_graph: matmul's formulas, differentiable again
          return {gw ? matmul(x, transpose(grad, -2, -1)) : Tensor(), gx ? matmul(w, grad) : Tensor()};
        }
        const Tensor dw = gw ? batch_tree_product(x, grad, w.shape(), parallel::kBatchChunk * sz(HW)) : Tensor();
        return {dw, gx ? matmul(w, grad) : Tensor()};
      });
  return y;
}

// y [N, OC, OH, OW] + b [OC]: add's bits forward; the bias gradient, a sum over the batch and the
// positions, is the batch tree's over chunks of kBatchChunk images (each chunk summed over (n, p)
// in order from +0).
Tensor bias_add(const Tensor& y, const Tensor& b) {
  const std::int64_t OC = y.size(1);
  Tensor out;
  {
    NoGradGuard no_grad;
    out = add(y, reshape(b, {1, OC, 1, 1}));
  }
  if (!autograd::needs_grad({&y, &b})) return out;
  const bool gb = b.requires_grad();
  autograd::record(out, "ConvBiasBackward", {y, b}, [gb](const Tensor& grad) -> std::vector<Tensor> {
    if (!gb) return {grad, Tensor()};
    if (autograd::grad_enabled()) return {grad, sum(grad, {0, 2, 3})};
    const Tensor g = grad.contiguous();
    const std::size_t N = sz(g.size(0)), C = sz(g.size(1)), P = sz(g.size(2) * g.size(3));
    Tensor db = sorix::detail::visit_floating(g.dtype(), "conv2d", [&](auto tag) {
      using T = typename decltype(tag)::type;
      Tensor o = sorix::detail::make_empty<T>({C});
      T* po = sorix::detail::flat<T>(o);
      const T* pg = sorix::detail::flat<T>(g);
      parallel::parallel_for(C, 1, [&](std::size_t c0, std::size_t c1) {
        for (std::size_t c = c0; c < c1; ++c) {
          kernels::ChunkTree<T> tree(1);
          for (std::size_t n0 = 0; n0 < N; n0 += parallel::kBatchChunk) {
            T acc = 0;
            for (std::size_t n = n0; n < std::min(N, n0 + parallel::kBatchChunk); ++n) {
              const T* plane = pg + (n * C + c) * P;
              for (std::size_t q = 0; q < P; ++q) acc += plane[q];
            }
            *tree.next() = acc;
            tree.push();
          }
          tree.finish(po + c);
        }
      }, parallel::kInlineGrain / std::max<std::size_t>(N * P, 1) + 1);
      return o;
    });
    return {grad, db};
  });
  return out;
}

// The geometry of x [N, C, H, W] conv w [OC, C / G, kh, kw] under s (throws where the output
// would be empty).
ConvGeometry geometry_of(const Tensor& x, const Tensor& w, const Conv2dSpec& s) {
  const Shape xs = x.shape(), ws = w.shape();
  ConvGeometry g{};
  g.N = sz(xs[0]); g.C = sz(xs[1]); g.H = sz(xs[2]); g.W = sz(xs[3]);
  g.kh = sz(ws[2]); g.kw = sz(ws[3]);
  g.sh = sz(s.stride[0]); g.sw = sz(s.stride[1]);
  g.dh = sz(s.dilation[0]); g.dw = sz(s.dilation[1]);
  std::int64_t out[2];
  const std::int64_t in[2] = {xs[2], xs[3]}, k[2] = {ws[2], ws[3]};
  std::size_t pad[2];
  for (int i = 0; i < 2; ++i) {
    const std::int64_t span = s.dilation[i] * (k[i] - 1);
    if (s.padding[i] == -1) {  // same: total padding span, the odd one after
      pad[i] = sz(span / 2);
      out[i] = in[i];
    } else {
      pad[i] = sz(s.padding[i]);
      out[i] = (in[i] + 2 * s.padding[i] - span - 1) >= 0 ? (in[i] + 2 * s.padding[i] - span - 1) / s.stride[i] + 1 : 0;
    }
  }
  check(out[0] >= 1 && out[1] >= 1, s.op, "input shape ", xs, " (padded by ", pad[0], ", ", pad[1],
        ") is smaller than the dilated kernel of weight ", ws, ": the output would be ", out[0], " x ", out[1]);
  g.ph = pad[0]; g.pw = pad[1];
  g.OH = sz(out[0]); g.OW = sz(out[1]);
  return g;
}

bool is_pointwise(const ConvGeometry& g) {
  return g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.ph == 0 && g.pw == 0;
}

Tensor conv2d_4d(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dSpec& s) {
  const ConvGeometry g = geometry_of(x, w, s);
  const Shape xs = x.shape();
  const std::int64_t G = s.groups, N = xs[0], OH = static_cast<std::int64_t>(g.OH), OW = static_cast<std::int64_t>(g.OW);
  const std::int64_t P = OH * OW;
  const bool pointwise = is_pointwise(g);
  // cols [C * taps, N * P]: a 1x1 kernel's columns are the input with images and channels swapped.
  if (!pointwise) return conv_im2col(x, w, b, g, G);
  if (detail::images_feed_threads(sz(N))) return detail::pointwise_conv2d(x, w, b, G);  // the same bits
  Tensor cols = reshape(permute(reshape(x, {N, xs[1], P}), {1, 0, 2}), {xs[1], N * P});
  return conv_product(w, cols, b, G, N, OH, OW);
}

// y [N, C_out, OH, OW] = x [N, C_in, H, W] transposed-conv w [C_in, C_out / G, kh, kw] (+ b).
Tensor conv_transpose2d_4d(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dSpec& s) {
  const Shape xs = x.shape(), ws = w.shape();
  const std::int64_t G = s.groups, IC = xs[1], N = xs[0], OCg = ws[1], OC = OCg * G;
  const std::int64_t in[2] = {xs[2], xs[3]}, k[2] = {ws[2], ws[3]};
  std::int64_t out[2];
  for (int i = 0; i < 2; ++i) {
    check(s.output_padding[i] >= 0 && s.output_padding[i] < std::max(s.stride[i], s.dilation[i]), s.op,
          "output_padding must be >= 0 and smaller than either stride or dilation, got output_padding=",
          s.output_padding[i], ", stride=", s.stride[i], ", dilation=", s.dilation[i]);
    out[i] = (in[i] - 1) * s.stride[i] - 2 * s.padding[i] + s.dilation[i] * (k[i] - 1) + s.output_padding[i] + 1;
  }
  check(out[0] >= 1 && out[1] >= 1, s.op, "input shape ", xs, " with weight ", ws, " gives an output of ", out[0],
        " x ", out[1], ": padding too large");
  // The geometry of the forward convolution this one is the adjoint of: its image is our output.
  ConvGeometry g{};
  g.N = sz(N); g.C = sz(OC); g.H = sz(out[0]); g.W = sz(out[1]);
  g.kh = sz(k[0]); g.kw = sz(k[1]);
  g.sh = sz(s.stride[0]); g.sw = sz(s.stride[1]);
  g.ph = sz(s.padding[0]); g.pw = sz(s.padding[1]);
  g.dh = sz(s.dilation[0]); g.dw = sz(s.dilation[1]);
  g.OH = sz(in[0]); g.OW = sz(in[1]);
  const std::int64_t HW = in[0] * in[1], K = OCg * k[0] * k[1];
  Tensor xg = reshape(permute(reshape(x, {N, IC, HW}), {1, 0, 2}), {IC, N * HW});  // [C_in, N * HW]
  Tensor cols = G == 1 ? transposed_weight_product(reshape(w, {IC, K}), xg, HW)
                       : reshape(transposed_weight_product(reshape(w, {G, IC / G, K}), reshape(xg, {G, IC / G, N * HW}), HW),
                                 {OC * k[0] * k[1], N * HW});
  Tensor y = detail::col2im(cols, g);
  return b.defined() ? bias_add(y, b) : y;
}

template <std::size_t D>
Conv2dSpec spec_of(const char* op, const ExpandingArray<D>& stride, const ConvPadding<D>& padding,
                   const ExpandingArray<D>& dilation, std::int64_t groups) {
  Conv2dSpec s{op, {1, 1}, {1, 1}, {0, 0}, {0, 0}, groups};
  for (std::size_t i = 0; i < D; ++i) {
    const std::size_t j = i + 2 - D;
    s.stride[j] = stride[i];
    s.dilation[j] = dilation[i];
    if (std::holds_alternative<SamePadding>(padding)) s.padding[j] = -1;
    else if (std::holds_alternative<ValidPadding>(padding)) s.padding[j] = 0;
    else {
      s.padding[j] = std::get<ExpandingArray<D>>(padding)[i];
      check(s.padding[j] >= 0, op, "padding must be >= 0, got ", std::get<ExpandingArray<D>>(padding).str());
    }
  }
  if (std::holds_alternative<SamePadding>(padding)) {
    for (std::size_t i = 0; i < D; ++i)
      check(stride[i] == 1, op, "padding='same' is not supported for strided convolutions, got stride ", stride.str());
  }
  check_spec(s, D);
  return s;
}

template <std::size_t D>
Tensor conv_nd(const char* op, const Tensor& input, const Tensor& weight, const ConvFuncOptions<D>& o) {
  const Conv2dSpec s = spec_of<D>(op, o.stride(), o.padding(), o.dilation(), o.groups());
  check_operands(op, input, weight, o.bias(), D, false, o.groups());
  const bool batched = input.dim() == static_cast<std::int64_t>(D) + 2;
  const Tensor w4 = D == 1 ? unsqueeze(weight, -2) : weight;
  return from_4d(conv2d_4d(as_4d(input, D, batched), w4, o.bias(), s), D, batched);
}

}  // namespace

namespace functional {

Tensor conv1d(const Tensor& input, const Tensor& weight, const Conv1dFuncOptions& options) {
  return conv_nd<1>("conv1d", input, weight, options);
}

Tensor conv2d(const Tensor& input, const Tensor& weight, const Conv2dFuncOptions& options) {
  return conv_nd<2>("conv2d", input, weight, options);
}

Tensor conv_transpose2d(const Tensor& input, const Tensor& weight, const ConvTranspose2dFuncOptions& o) {
  const char* op = "conv_transpose2d";
  Conv2dSpec s = spec_of<2>(op, o.stride(), ExpandingArray<2>(o.padding()), o.dilation(), o.groups());
  s.output_padding[0] = o.output_padding()[0];
  s.output_padding[1] = o.output_padding()[1];
  check_operands(op, input, weight, o.bias(), 2, true, o.groups());
  const bool batched = input.dim() == 4;
  return from_4d(conv_transpose2d_4d(as_4d(input, 2, batched), weight, o.bias(), s), 2, batched);
}

}  // namespace functional

// ---- modules ---------------------------------------------------------------------------------------

namespace {

template <std::size_t D>
void check_layer_sizes(const char* layer, std::int64_t in, std::int64_t out, const ExpandingArray<D>& kernel,
                       const ExpandingArray<D>& stride, const ExpandingArray<D>& dilation, std::int64_t groups) {
  check(in >= 1, layer, "in_channels must be >= 1, got ", in);
  check(out >= 1, layer, "out_channels must be >= 1, got ", out);
  for (std::size_t i = 0; i < D; ++i) {
    check(kernel[i] >= 1, layer, "kernel_size must be >= 1, got ", kernel.str());
    check(stride[i] >= 1, layer, "stride must be >= 1, got ", stride.str());
    check(dilation[i] >= 1, layer, "dilation must be >= 1, got ", dilation.str());
  }
  check(groups >= 1, layer, "groups must be >= 1, got ", groups);
  check(in % groups == 0, layer, "in_channels (", in, ") must be divisible by groups (", groups, ")");
  check(out % groups == 0, layer, "out_channels (", out, ") must be divisible by groups (", groups, ")");
}

// PyTorch's default: kaiming_uniform_(a = sqrt(5)) for the weight, U(+-1/sqrt(fan_in)) for the bias.
void reset_conv_parameters(Tensor& weight, Tensor& bias) {
  init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (bias.defined()) {
    const auto fans = init::calculate_fan_in_and_fan_out(weight);
    const double bound = 1.0 / std::sqrt(static_cast<double>(fans.first));
    init::uniform_(bias, -bound, bound);
  }
}

template <std::size_t D>
std::string padding_text(const ConvPadding<D>& p) {
  if (std::holds_alternative<SamePadding>(p)) return "same";
  if (std::holds_alternative<ValidPadding>(p)) return "valid";
  return std::get<ExpandingArray<D>>(p).str();
}

}  // namespace

template <std::size_t D>
ConvNd<D>::ConvNd(const ConvOptions<D>& options, Dtype dtype) : options_(options) {
  const char* layer = D == 1 ? "Conv1d" : "Conv2d";
  const auto& o = options;
  check_layer_sizes<D>(layer, o.in_channels(), o.out_channels(), o.kernel_size(), o.stride(), o.dilation(), o.groups());
  (void)spec_of<D>(layer, o.stride(), o.padding(), o.dilation(), o.groups());  // padding checks
  check(is_floating(dtype), layer, "parameters must be float32 or float64, got ", dtype_name(dtype));
  Shape ws{o.out_channels(), o.in_channels() / o.groups()};
  for (std::size_t i = 0; i < D; ++i) ws.push_back(o.kernel_size()[i]);
  weight = register_parameter("weight", empty(ws, dtype));
  if (o.bias()) bias = register_parameter("bias", empty({o.out_channels()}, dtype));
  reset_parameters();
}

template <std::size_t D>
void ConvNd<D>::reset_parameters() { reset_conv_parameters(weight, bias); }

template <std::size_t D>
Tensor ConvNd<D>::forward(const Tensor& input) {
  ConvFuncOptions<D> f;
  f.bias(bias).stride(options_.stride()).dilation(options_.dilation()).groups(options_.groups());
  std::visit([&](const auto& p) { f.padding(p); }, options_.padding());
  if constexpr (D == 1) return functional::conv1d(input, weight, f);
  else return functional::conv2d(input, weight, f);
}

template <std::size_t D>
std::string ConvNd<D>::extra_repr() const {
  const auto& o = options_;
  std::ostringstream os;
  os << o.in_channels() << ", " << o.out_channels() << ", kernel_size=" << o.kernel_size().str()
     << ", stride=" << o.stride().str();
  const bool zero_pad = std::holds_alternative<ExpandingArray<D>>(o.padding()) &&
                        std::get<ExpandingArray<D>>(o.padding()) == ExpandingArray<D>(0);
  if (!zero_pad) os << ", padding=" << padding_text<D>(o.padding());
  if (o.dilation() != ExpandingArray<D>(1)) os << ", dilation=" << o.dilation().str();
  if (o.groups() != 1) os << ", groups=" << o.groups();
  if (!o.bias()) os << ", bias=False";
  return os.str();
}

template class ConvNd<1>;
template class ConvNd<2>;

ConvTranspose2d::ConvTranspose2d(const ConvTranspose2dOptions& options, Dtype dtype) : options_(options) {
  const auto& o = options;
  const char* layer = "ConvTranspose2d";
  check_layer_sizes<2>(layer, o.in_channels(), o.out_channels(), o.kernel_size(), o.stride(), o.dilation(), o.groups());
  for (std::size_t i = 0; i < 2; ++i) {
    check(o.padding()[i] >= 0, layer, "padding must be >= 0, got ", o.padding().str());
    check(o.output_padding()[i] >= 0 && o.output_padding()[i] < std::max(o.stride()[i], o.dilation()[i]), layer,
          "output_padding must be >= 0 and smaller than either stride or dilation, got output_padding=",
          o.output_padding().str(), ", stride=", o.stride().str(), ", dilation=", o.dilation().str());
  }
  check(is_floating(dtype), layer, "parameters must be float32 or float64, got ", dtype_name(dtype));
  weight = register_parameter(
      "weight", empty({o.in_channels(), o.out_channels() / o.groups(), o.kernel_size()[0], o.kernel_size()[1]}, dtype));
  if (o.bias()) bias = register_parameter("bias", empty({o.out_channels()}, dtype));
  reset_parameters();
}

void ConvTranspose2d::reset_parameters() { reset_conv_parameters(weight, bias); }

Tensor ConvTranspose2d::forward(const Tensor& input) {
  const auto& o = options_;
  return functional::conv_transpose2d(input, weight,
                                      functional::ConvTranspose2dFuncOptions()
                                          .bias(bias)
                                          .stride(o.stride())
                                          .padding(o.padding())
                                          .output_padding(o.output_padding())
                                          .groups(o.groups())
                                          .dilation(o.dilation()));
}

std::string ConvTranspose2d::extra_repr() const {
  const auto& o = options_;
  std::ostringstream os;
  os << o.in_channels() << ", " << o.out_channels() << ", kernel_size=" << o.kernel_size().str()
     << ", stride=" << o.stride().str();
  if (o.padding() != ExpandingArray<2>(0)) os << ", padding=" << o.padding().str();
  if (o.output_padding() != ExpandingArray<2>(0)) os << ", output_padding=" << o.output_padding().str();
  if (o.dilation() != ExpandingArray<2>(1)) os << ", dilation=" << o.dilation().str();
  if (o.groups() != 1) os << ", groups=" << o.groups();
  if (!o.bias()) os << ", bias=False";
  return os.str();
}

namespace fusion {

std::optional<ConvFeed> conv2d_feeding_batchnorm(const Conv2d& conv, const Tensor& x) {
  const Tensor& w = conv.weight;
  const Tensor& b = conv.bias;
  const auto& o = conv.options();
  if (!autograd::grad_enabled() || !x.defined() || x.requires_grad() || x.dim() != 4 || !w.defined()) return std::nullopt;
  const bool gw = w.requires_grad(), gb = b.defined() && b.requires_grad();
  if (!gw && !gb) return std::nullopt;
  // Whatever the module's own forward would reject, it rejects itself, with its messages.
  if (!is_floating(x.dtype()) || x.dtype() != w.dtype() || x.size(1) != w.size(1) * o.groups()) return std::nullopt;
  const Conv2dSpec s = spec_of<2>("conv2d", o.stride(), o.padding(), o.dilation(), o.groups());
  check_operands("conv2d", x, w, b, 2, false, o.groups());
  const ConvGeometry geom = geometry_of(x, w, s);
  const std::size_t G = sz(o.groups()), OC = sz(w.size(0));
  if (geom.OH < 2 || geom.OW < 2) return std::nullopt;  // the pool's 2 x 2 window
  if (is_pointwise(geom) || detail::winograd_applies(w.dtype(), geom, geom.C / G, OC / G) ||
      detail::depthwise_applies(geom, G))
    return std::nullopt;
  ConvFeed f;
  const Tensor wc = w.contiguous(), bc = b.defined() ? b.contiguous() : b;
  const std::size_t P = geom.positions();
  if (detail::images_feed_threads(geom.N) && P >= kernels::bn::kPlaneMomentsFrom) {
    // The module's values (conv_values' path), each image's planes' moments taken as it is made.
    const std::size_t planes = geom.N * OC;
    f.plane_sum.resize(planes);
    f.plane_sq.resize(planes);
    f.plane_dev.resize(planes);
    const ImageOutput moments = [&](std::size_t n, const void* planes_n) {
      sorix::detail::visit_floating(w.dtype(), "conv2d", [&](auto tag) {
        using T = typename decltype(tag)::type;
        kernels::bn_kernels<T>(kernels::active())
            .plane_moments(static_cast<const T*>(planes_n), P, 0, OC, f.plane_sum.data() + n * OC,
                           f.plane_sq.data() + n * OC, f.plane_dev.data() + n * OC);
      });
    };
    f.output = conv_im2col_by_image(x, wc, bc, geom, static_cast<std::int64_t>(G), &moments);
  } else {
    f.output = conv_values(x, wc, bc, geom, static_cast<std::int64_t>(G));  // the module's values
  }
  f.weight = w;
  f.bias = b;
  // Saved as the convolution's own node saves them (the input and weight: an in-place change
  // since the forward throws, as there). The create_graph path also saves the bias: it makes the
  // output again from it.
  auto grads = std::make_shared<ConvGrads>();
  grads->param_grads = [sx = autograd::SavedTensor(x), sw = autograd::SavedTensor(w), geom, G, gw,
                        gb](const ImageGrad& grad) {
    std::pair<Tensor, Tensor> r;
    conv_weight_bias_grads_by_image(Tensor(), sx.unpack("conv2d"), sw.unpack("conv2d"), geom,
                                    static_cast<std::int64_t>(G), gw, gb, r.first, r.second, &grad);
    return r;
  };
  grads->recorded_output = [sx = autograd::SavedTensor(x), sw = autograd::SavedTensor(w),
                            sb = autograd::SavedTensor(b), s] {
    return conv2d_4d(sx.unpack("conv2d"), sw.unpack("conv2d"), sb.unpack("conv2d"), s);
  };
  grads->has_bias = b.defined();
  f.grads = std::move(grads);
  return f;
}

}  // namespace fusion

}  // namespace sorix::nn
