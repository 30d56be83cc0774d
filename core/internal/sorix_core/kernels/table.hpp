#pragma once
// The dispatch table: every per-capability kernel, as plain function pointers (light header, no
// xsimd). One table per CPU capability is built in its own translation unit (cap_*.cpp); the
// active one is chosen once, from the CPU's features or SORIX_CPU_CAPABILITY (capability.cpp).
//
// Kernels here are serial leaf functions on raw pointers: the parallel loops that call them live
// in the ops (baseline code), so no code compiled for a wider instruction set is shared with the
// baseline translation units (no inline function of the standard library or of sorix::parallel is
// instantiated in a capability's TU with that TU's flags and then picked by the linker for
// everyone).
//
// Every entry gives the same bits in every table (docs/determinism.md; tests/core/test_kernels.cpp
// compares the tables the CPU can run, bit for bit).
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "sorix_core/kernels/im2col.hpp"
#include "sorix_core/kernels/op_kinds.hpp"

namespace sorix::kernels {

/// a + b; integers wrap as PyTorch's do (through the unsigned type: a signed overflow is
/// undefined behaviour in C++). A SIMD lane's integer add wraps the same way.
template <class T>
[[gnu::always_inline]] inline T wrapping_add(T a, T b) {
  if constexpr (std::is_same_v<T, bool>) {
    return a || b;  // bool + bool saturates, as PyTorch's
  } else if constexpr (std::is_integral_v<T>) {
    using U = std::make_unsigned_t<T>;
    return static_cast<T>(static_cast<U>(a) + static_cast<U>(b));
  } else {
    return a + b;
  }
}

/// One matrix product C = alpha * op(A) op(B) + beta * C (row-major, see autograd's gemm.hpp) with
/// op(B) packed into panels of `nr` columns: panel q holds columns [q*nr, q*nr + nr) as K rows of
/// nr values, starting at packed + q * panel_stride. A ragged last panel's rows hold its columns
/// and zeros up to a whole register (the registers its tiles read, ceil(cols / lanes)); the rest
/// of each row is not written and must not be read.
template <class T>
struct GemmArgs {
  bool trans_a;
  std::size_t M, N, K;
  T alpha;
  const T* A;
  std::size_t lda;
  T beta;
  T* C;
  std::size_t ldc;
  const T* packed;
  std::size_t panel_stride;
  /// Continue each element's chain from the value in C (a partial sum over earlier k, stored by a
  /// call over those k with alpha == 1 and beta == 0) instead of from +0: a product split along K
  /// gives the bits of the unsplit one. Only with alpha == 1 and beta == 0.
  bool accumulate = false;
  /// > 0: the batch tree over K (sorix/parallel/batch_tree.hpp), inside each tile: the chains
  /// restart from +0 every tree_chunk values of k, the chunk partials are added by the fixed
  /// pairwise tree over chunk indices, and the root is written to C. Only with alpha == 1,
  /// beta == 0 and no accumulate; tree_stack is scratch for (bit_width(chunks) + 1) * mr * nr
  /// values, 64-byte aligned (the tree's pending nodes of one tile: L1-resident).
  std::size_t tree_chunk = 0;
  T* tree_stack = nullptr;
  /// The last column_tail columns (of N) are left to GemmKernel::columns: tiles skip them.
  std::size_t column_tail = 0;
  /// From row k of a panel to row k + 1: 0 for packed panels (nr); an untransposed B read in
  /// place instead (packed = B's first column, panel_stride = nr) gives its ldb. In place, the
  /// panels the tiles read must be whole registers wide (they read whole registers of B's rows).
  std::size_t b_step = 0;
  /// A gathered op(A), a convolution's columns read where they lie instead of made:
  /// op(A)(i, k) = A[a_rows[i] + a_ks[k]] when a_ks is set (lda and trans_a unused; no tree, no
  /// column tail). The chains are those of the same values stored as a matrix: the same bits.
  const std::size_t* a_rows = nullptr;
  const std::size_t* a_ks = nullptr;
};

template <class T>
struct GemmKernel {
  std::size_t mr;  // rows of a tile
  std::size_t nr;  // columns of a tile (and of a packed panel)
  /// Packs columns [j0, j0 + cols) of op(B) (cols <= nr) into dst[k * nr + j], zeros after cols
  /// up to a whole register (ceil(cols / lanes) registers per row; the rest of the row unwritten).
  /// dst is 64-byte aligned.
  void (*pack)(bool trans_b, const T* B, std::size_t ldb, std::size_t j0, std::size_t cols, std::size_t K, T* dst);
  /// Packs rows [k0, k1) of an untransposed B (K x N, leading dimension ldb) into every panel:
  /// panel q starts at dst + q * panel_stride.
  void (*pack_rows)(const T* B, std::size_t ldb, std::size_t N, std::size_t k0, std::size_t k1, T* dst,
                    std::size_t panel_stride);
  /// The tiles of row panel `row_panel` (rows [row_panel * mr, ...)) against packed panels
  /// [panel_begin, panel_end). Every element of C is one fma chain over k = 0..K-1 from +0, then
  /// alpha * acc (when alpha != 1), then fma(beta, c, that) (when beta != 0; beta == 0 only writes);
  /// with args.accumulate the chains start from C's values (see GemmArgs).
  void (*tiles)(const GemmArgs<T>& args, std::size_t row_panel, std::size_t panel_begin, std::size_t panel_end);
  /// Columns [j0, j1) of C for rows [i0, i1): the tiles' chains and epilogue (the same bits), with
  /// vectors along the rows; args.trans_a only (a register of rows is one load of A), no tree.
  /// For the few columns of a ragged last panel that a tile would compute at a register's width.
  void (*columns)(const GemmArgs<T>& args, std::size_t i0, std::size_t i1, std::size_t j0, std::size_t j1);
  std::size_t lanes;        // values per register
  std::size_t column_tail;  // the most columns past whole registers that columns() takes
};

/// One optimizer step's scalars (the element type's values are static_cast from these).
struct SgdStep {
  double weight_decay, momentum, one_minus_dampening, neg_lr;
  bool nesterov, first;  // first: the momentum buffer becomes the (decayed) gradient
};
struct RmspropStep {
  double weight_decay, alpha, one_minus_alpha, eps, momentum, neg_lr;
  bool centered;
};
struct AdamStep {
  double decay_factor;  // AdamW: 1 - lr * weight_decay
  double weight_decay;  // Adam: L2 coefficient
  double beta1, beta2, one_minus_beta1, one_minus_beta2;
  double bias_correction2_sqrt, neg_step_size, eps;
  bool decoupled, amsgrad;
};
struct AdagradStep {
  double weight_decay;  // L2 coefficient (0: none)
  double neg_clr;       // -lr / (1 + (step - 1) * lr_decay)
  double eps;
};

/// Selections, copies and the one scatter-add, for each element type that has them (float32,
/// float64, int64). Exact (copies, selections, adds in a fixed order): the same bits in every table.
template <class T>
struct IndexKernels {
  /// The scatter-add of scatter.hpp: source [outer, K, inner], destination [outer, R, inner]; for
  /// destination rows q in [q0, q1) (o = q / R, r = q % R) and columns [c0, c1):
  ///   dst[q, c] = +0 + src[o, order[begin[r]], c] + src[o, order[begin[r] + 1], c] + ...
  /// (begin, order: a RowOrder); the row zero_row (-1: none) stays +0.
  void (*scatter_add_rows)(const T* src, T* dst, const std::size_t* begin, const std::size_t* order, std::size_t K,
                           std::size_t R, std::size_t inner, std::size_t q0, std::size_t q1, std::size_t c0,
                           std::size_t c1, std::int64_t zero_row);
  /// dst[k * ld + i] = src[idx[k * ld + i] * stride + offset[i]] for k in [0, rows), i in [0, n)
  /// (one block of a gather: rows of the index, n columns each).
  void (*gather)(const T* src, const std::int64_t* idx, std::size_t stride, const std::size_t* offset, T* dst,
                 std::size_t rows, std::size_t n, std::size_t ld);
  /// gather's adjoint on the same block: dst[idx[k * ld + i] * stride + offset[i]] += src[k * ld + i]
  /// for k in [0, rows) in order, then i (each target's contributions in increasing k).
  void (*scatter_add)(const T* src, const std::int64_t* idx, std::size_t stride, const std::size_t* offset, T* dst,
                      std::size_t rows, std::size_t n, std::size_t ld);
  /// The first index of the maximum (minimum) of x[0, n), n >= 1: ties keep the first occurrence,
  /// and the first NaN beats everything (PyTorch's max/min).
  std::size_t (*argmax)(const T* x, std::size_t n);
  std::size_t (*argmin)(const T* x, std::size_t n);
  /// Column scans of r >= 1 rows of n values, row k at x + k * stride: v[c] and ix[c] get the
  /// best value of column c and its row by argmax's (argmin's) rules.
  void (*max_cols)(const T* x, std::size_t r, std::size_t stride, std::size_t n, T* v, std::int64_t* ix);
  void (*min_cols)(const T* x, std::size_t r, std::size_t stride, std::size_t n, T* v, std::int64_t* ix);
};

/// A ReLU after BatchNorm, fused into its passes: the normalisation's own y = (x - mean[c]) *
/// scale[c] + shift[c] (in T, never fused) decides the mask, so the backward recomputes it from x
/// instead of reading a saved output.
template <class T>
struct BnRelu {
  const T* mean;
  const T* scale;
  const T* shift;
};

/// A 2 x 2 max pool with stride 2 (no padding, no dilation, floor mode) after BatchNorm + ReLU,
/// fused into their passes: the input's planes are H x W (L = H * W), the pooled planes
/// OH x OW = H / 2 x W / 2 (H, W >= 2). Written by the forward (unless null) and read by the
/// backward in place of the pool's indices and relu's output, both [N, C, OH * OW]: winners, one
/// code per window (bn_relu_pool.hpp: the winner's tap, + 4 where relu's factor is 1), and
/// winner_x, the input x at each window's winner (the backward's sums read no other x), or NaN
/// where the full-size gradient's zeros meet a non-finite x - mean (the sums are NaN then).
template <class T>
struct BnPool {
  std::size_t H, W;
  std::uint8_t* winners;
  T* winner_x;
  std::size_t pooled() const { return (H / 2) * (W / 2); }
};

/// BatchNorm's loops (batchnorm.hpp) for x viewed as [N, C, L], over rows [n0, n1) of N
/// (plane_moments: over planes [p0, p1) of the N * C).
template <class T>
struct BnKernels {
  /// out[c - c0] for c in [c0, c1) = +0 + f(x[n0, c, 0]) + f(x[n0, c, 1]) + ... over n in [n0, n1)
  /// outer and l inner, in double: one add chain per channel; f(v) = v, or with `mean`
  /// (indexed by c) f(v) = (v - mean[c]) * (v - mean[c]), never fused.
  void (*channel_sums)(const T* x, std::size_t C, std::size_t L, std::size_t n0, std::size_t n1, std::size_t c0,
                       std::size_t c1, const double* mean, double* out);
  /// The moments of planes [p0, p1) of L values each (plane p at x + p * L), in double:
  /// sum[p - p0] = the plane's sum, and with m = sum / L, sq[p - p0] = its sum of (v - m) * (v - m)
  /// and dev[p - p0] its sum of v - m (not quite 0: m is rounded; the statistics correct for it).
  /// Each is 16 add chains from +0, chain j taking the plane's positions j, j + 16, j + 32, ... in
  /// order, then folded by halves (chain j += chain j + 8 for j < 8, then j + 4, j + 2, j + 1), the
  /// same on every register width; the subtract and the multiply never fused.
  void (*plane_moments)(const T* x, std::size_t L, std::size_t p0, std::size_t p1, double* sum, double* sq,
                        double* dev);
  /// In the same order: sum_g[c - c0] = +0 + g + ..., dot[c - c0] = +0 + g * (x - mean[c]) + ...
  /// With `relu`, g is first relu's gradient g * (y > 0 ? 1 : 0), y the normalisation's output.
  /// With `pool` (relu implied), g is the pooled gradient [N, C, OH * OW] and the summed gradient is
  /// max pooling's backward of it (+0 + g at each window's winner, +0 elsewhere), then relu's,
  /// from the forward's winner codes.
  void (*grad_sums)(const T* g, const T* x, std::size_t C, std::size_t L, std::size_t n0, std::size_t n1,
                    std::size_t c0, std::size_t c1, const double* mean, const BnRelu<T>* relu, const BnPool<T>* pool,
                    double* sum_g, double* dot);
  /// y = (x - mean[c]) * scale[c] + shift[c] (never fused); with `relu`, then y < 0 ? 0 : y; with
  /// `pool` (relu implied), y is [N, C, OH * OW], each window's maximum of those by the pool's rule
  /// (pool.hpp, pool_kernels.hpp), and pool->winners (unless null) their codes.
  void (*normalize)(const T* x, T* y, std::size_t C, std::size_t L, std::size_t n0, std::size_t n1, const T* mean,
                    const T* scale, const T* shift, bool relu, const BnPool<T>* pool);
  /// dx = (g - gmean[c] - (x - mean[c]) * k[c]) * scale[c] (never fused); with `relu`, g is first
  /// relu's gradient as in grad_sums; with `pool` (relu implied), the pool's and relu's.
  void (*backward_dx)(const T* g, const T* x, T* dx, std::size_t C, std::size_t L, std::size_t n0, std::size_t n1,
                      const T* gmean, const T* mean, const T* k, const T* scale, const BnRelu<T>* relu,
                      const BnPool<T>* pool);
  /// GroupNorm's input gradient (its channels the (sample, channel) planes, each with its own
  /// constants): dx = (g * a[c] - gm[c]) - (x - mean[c]) * k[c] (never fused), where a carries the
  /// channel's weight, so a zero weight still gives the group's terms.
  void (*group_dx)(const T* g, const T* x, T* dx, std::size_t C, std::size_t L, std::size_t n0, std::size_t n1,
                   const T* a, const T* gm, const T* mean, const T* k);
};

/// softmax / log_softmax along a dim that is not the last (softmax.hpp): one tile of r >= 1 rows
/// of n <= kSoftmaxMaxCols columns, row k at offset k * stride.
inline constexpr std::size_t kSoftmaxMaxCols = 1024;
template <class T>
struct SoftmaxColsKernels {
  /// Per column: m = max over k, y = exp(x - m), s = +0 + y_0 + y_1 + ... (k order), then y = y / s,
  /// or with `log` y = (x - m) - log(s).
  void (*forward)(const T* x, T* y, std::size_t r, std::size_t stride, std::size_t n, bool log);
  /// The fused backward per column: softmax dx = y * (g - dot), dot = +0 + g_0 * y_0 + ...;
  /// log_softmax dx = g - exp(y) * sum, sum = +0 + g_0 + ... (never fused).
  void (*backward)(const T* g, const T* y, T* dx, std::size_t r, std::size_t stride, std::size_t n, bool log);
};

struct KernelTable {
  const char* name;  // "scalar", "avx2", "avx512"

  // Counter-based random kernels: the contracts of sorix/core/philox.hpp.
  void (*fill_u32)(uint64_t key, uint64_t base, std::size_t first, uint32_t* out, std::size_t n);
  void (*uniform_f32)(uint64_t key, uint64_t base, std::size_t first, float* out, std::size_t n, float low, float high);
  void (*uniform_f64)(uint64_t key, uint64_t base, std::size_t first, double* out, std::size_t n, double low,
                      double high);
  void (*normal_f32)(uint64_t key, uint64_t base, std::size_t first, float* out, std::size_t n, float mean, float std);
  void (*normal_f64)(uint64_t key, uint64_t base, std::size_t first, double* out, std::size_t n, double mean,
                     double std);
  void (*dropout_f32)(uint64_t key, uint64_t base, std::size_t first, const float* x, float* y, std::size_t n,
                      uint64_t threshold, float scale, uint8_t* mask_bits);
  void (*dropout_f64)(uint64_t key, uint64_t base, std::size_t first, const double* x, double* y, std::size_t n,
                      uint64_t threshold, double scale, uint8_t* mask_bits);
  void (*dropout_bits_f32)(const float* gy, const uint8_t* bits, float* gx, std::size_t n, float scale);
  void (*dropout_bits_f64)(const double* gy, const uint8_t* bits, double* gx, std::size_t n, double scale);
  void (*bernoulli_f32)(uint64_t key, uint64_t base, std::size_t first, float* out, std::size_t n, uint64_t threshold);
  void (*bernoulli_f64)(uint64_t key, uint64_t base, std::size_t first, double* out, std::size_t n,
                        uint64_t threshold);

  // Elementwise ops (op_kinds.hpp, elementwise_ops.hpp) over one serial range: y[i] = op(x[i]);
  // out[i] = op(a[i or 0], b[i or 0]) where a_vec / b_vec say whether an operand is a run.
  void (*unary_f32)(Unary kind, const float* x, float* y, std::size_t n, OpParams p);
  void (*unary_f64)(Unary kind, const double* x, double* y, std::size_t n, OpParams p);
  void (*binary_f32)(Binary kind, const float* a, bool a_vec, const float* b, bool b_vec, float* out, std::size_t n,
                     OpParams p);
  void (*binary_f64)(Binary kind, const double* a, bool a_vec, const double* b, bool b_vec, double* out,
                     std::size_t n, OpParams p);

  /// Sum of x[0..n) in the fixed lane layout of elementwise_kernels.hpp (serial: one chunk).
  float (*sum_f32)(const float* x, std::size_t n);
  double (*sum_f64)(const double* x, std::size_t n);

  /// The softmax row kernel (elementwise_kernels.hpp): `rows` rows of n >= 1 values; y = softmax
  /// (or log_softmax) of each; row_max / row_logsum (may be nullptr) get each row's max and log(sum).
  void (*softmax_rows_f32)(const float* x, float* y, std::size_t rows, std::size_t n, bool log, float* row_max,
                           float* row_logsum);
  void (*softmax_rows_f64)(const double* x, double* y, std::size_t rows, std::size_t n, bool log, double* row_max,
                           double* row_logsum);

  // Optimizer updates of elements [0, n) (buffers a variant does not use may be nullptr).
  void (*sgd_f32)(float* p, const float* g, float* buf, std::size_t n, const SgdStep& s);
  void (*sgd_f64)(double* p, const double* g, double* buf, std::size_t n, const SgdStep& s);
  void (*rmsprop_f32)(float* p, const float* g, float* sq, float* buf, float* gavg, std::size_t n, const RmspropStep& s);
  void (*rmsprop_f64)(double* p, const double* g, double* sq, double* buf, double* gavg, std::size_t n,
                      const RmspropStep& s);
  void (*adam_f32)(float* p, const float* g, float* m, float* v, float* vmax, std::size_t n, const AdamStep& s);
  void (*adam_f64)(double* p, const double* g, double* m, double* v, double* vmax, std::size_t n, const AdamStep& s);
  void (*adagrad_f32)(float* p, const float* g, float* sum, std::size_t n, const AdagradStep& s);
  void (*adagrad_f64)(double* p, const double* g, double* sum, std::size_t n, const AdagradStep& s);

  // Conversions and elementwise updates.
  /// out[i] = float(in[i]) / 255 (correctly rounded), i in [0, n).
  void (*bytes_to_unit_f32)(const uint8_t* in, float* out, std::size_t n);

  // Selections, copies, the scatter-add; BatchNorm; softmax along a dim that is not the last.
  IndexKernels<float> index_f32;
  IndexKernels<double> index_f64;
  IndexKernels<std::int64_t> index_i64;
  BnKernels<float> bn_f32;
  BnKernels<double> bn_f64;
  SoftmaxColsKernels<float> softmax_cols_f32;
  SoftmaxColsKernels<double> softmax_cols_f64;
  /// The dataset row gather: dst row r = src row idx[r] (row_bytes bytes each) for r in [r0, r1),
  /// the source rows a few ahead prefetched.
  void (*gather_rows)(const unsigned char* src, std::size_t src_row_bytes, const std::int64_t* idx, std::size_t r0,
                      std::size_t r1, unsigned char* dst, std::size_t row_bytes);

  /// Max pooling's 2 x 2 windows with column stride 2 (pool_kernels.hpp): y[oh * OW + j] and its
  /// plane offset for the window at rows oh * sh, oh * sh + 1 and columns 2j, 2j + 1 of the W-wide
  /// plane x (every window inside the plane), by pool.hpp's rule.
  void (*max_pool_2x2_f32)(const float* x, std::size_t W, std::size_t sh, std::size_t OH, std::size_t OW, float* y,
                           std::int64_t* indices);
  void (*max_pool_2x2_f64)(const double* x, std::size_t W, std::size_t sh, std::size_t OH, std::size_t OW, double* y,
                           std::int64_t* indices);

  /// col2im of one (image, channel) plane for a geometry with sw == 1 (conv_kernels.hpp): tap t's
  /// column row of the plane starts at cols + t * ld; x_plane (H x W) is overwritten.
  void (*col2im_s1_f32)(const float* cols, std::size_t ld, const ConvGeometry& g, float* x_plane);
  void (*col2im_s1_f64)(const double* cols, std::size_t ld, const ConvGeometry& g, double* x_plane);

  /// dst[c * dst_ld + r] = src[r * src_ld + c] for r < rows, c < cols: a transposed copy, 8 x 8
  /// register blocks on AVX2 and AVX-512 (copy_strided's transposing tiles).
  void (*transpose_f32)(const float* src, std::size_t src_ld, float* dst, std::size_t dst_ld, std::size_t rows,
                        std::size_t cols);

  /// One image's output planes of a convolution with sw == 1 straight from its zero-padded input
  /// planes (conv_kernels.hpp, ConvKernelsOf::conv_direct): every element the fma chain of the
  /// product over its im2col columns, then + b[o] (b may be null).
  void (*conv_direct_f32)(const float* xp, std::size_t PW, std::size_t plane, std::size_t C, const ConvGeometry& g,
                          const float* w, const float* b, std::size_t outs, float* y);
  void (*conv_direct_f64)(const double* xp, std::size_t PW, std::size_t plane, std::size_t C, const ConvGeometry& g,
                          const double* w, const double* b, std::size_t outs, double* y);

  /// A depthwise convolution's weight and bias gradient partials for one image and output plane
  /// (sw == 1; conv_kernels.hpp, ConvKernelsOf::depthwise_grad_sums): kDepthwiseLanes fma chains
  /// per tap in acc[tap * kDepthwiseLanes + lane], continued; with bias, add chains of dy after them.
  void (*depthwise_grad_sums_f32)(const float* xp, std::size_t PW, const ConvGeometry& g, const float* dy, bool bias,
                                  float* acc);
  void (*depthwise_grad_sums_f64)(const double* xp, std::size_t PW, const ConvGeometry& g, const double* dy,
                                  bool bias, double* acc);

  /// Winograd F(2x2, 3x3)'s plane transforms (winograd.hpp; conv_kernels.hpp): one input plane into
  /// its 16 rows of transformed tiles, and 16 rows of products into one output plane (+ *bias).
  void (*winograd_input_f32)(const float* x, std::size_t H, std::size_t W, std::size_t ph, std::size_t pw,
                             std::size_t TH, std::size_t TW, float* v, std::size_t ld, float* scratch);
  void (*winograd_output_f32)(const float* m, std::size_t ld, std::size_t TH, std::size_t TW, const float* bias,
                              float* y, std::size_t OH, std::size_t OW);
  /// The output transform's adjoint: one output gradient plane into its 16 rows of A g A^T tiles.
  void (*winograd_output_adjoint_f32)(const float* g, std::size_t OH, std::size_t OW, std::size_t TH, std::size_t TW,
                                      float* m, std::size_t ld, float* scratch);
  /// The input transform's adjoint: 16 rows of tiles into one input gradient plane (H x W,
  /// cropped by ph, pw; scratch: winograd_input_adjoint_scratch).
  void (*winograd_input_adjoint_f32)(const float* z, std::size_t ld, std::size_t TH, std::size_t TW, float* x,
                                     std::size_t H, std::size_t W, std::size_t ph, std::size_t pw, float* scratch);

  /// LayerNorm's rows (layer_norm_rows.hpp): y = fma((x - mean[r]) * scale[r], w[l], b[l]) row by
  /// row (w or b null: without it), and the whole backward of a block of rows: down each column
  /// from dw's and db's values dw = fma(g, xhat, dw), db += g, and dx from each row's sums of
  /// g * w and g * w * xhat (16 chains of doubles); each part skipped when null. scratch: 2 * L.
  void (*layer_norm_rows_f32)(const float* x, const float* mean, const float* scale, const float* w, const float* b,
                              std::size_t rows, std::size_t L, float* y);
  void (*layer_norm_rows_f64)(const double* x, const double* mean, const double* scale, const double* w,
                              const double* b, std::size_t rows, std::size_t L, double* y);
  void (*layer_norm_grads_f32)(const float* g, const float* x, const float* mean, const float* scale, const float* w,
                               std::size_t rows, std::size_t L, float* dx, float* dw, float* db, float* scratch);
  void (*layer_norm_grads_f64)(const double* g, const double* x, const double* mean, const double* scale,
                               const double* w, std::size_t rows, std::size_t L, double* dx, double* dw, double* db,
                               double* scratch);

  /// Benchmarks only: 12 * probe_lanes * iters float multiply-adds at this path's best rate
  /// (returns their sum so that none is dead code).
  double (*fma_probe)(std::size_t iters);
  std::size_t probe_lanes;

  // Matrix products: two tile shapes each (the same bits; the driver picks by shape).
  GemmKernel<float> sgemm, sgemm_narrow;
  GemmKernel<double> dgemm, dgemm_narrow;
};

/// The baseline capability's name: "scalar" (baseline x86-64) or, on arm64, "neon" (part of every
/// arm64 CPU).
#if defined(__aarch64__)
inline constexpr const char* kBaselineCapability = "neon";
#else
inline constexpr const char* kBaselineCapability = "scalar";
#endif

/// The table of the active capability (chosen on first use; see sorix/core/cpu.hpp).
const KernelTable& active();

/// Whether the table has IndexKernels for T (float, double, int64; other element types use
/// baseline loops with the same semantics).
template <class T>
inline constexpr bool kHasIndexKernels =
    std::is_same_v<T, float> || std::is_same_v<T, double> || std::is_same_v<T, std::int64_t>;

/// The typed parts of a table, by element type.
template <class T>
const IndexKernels<T>& index_kernels(const KernelTable& t) {
  if constexpr (std::is_same_v<T, float>) return t.index_f32;
  else if constexpr (std::is_same_v<T, double>) return t.index_f64;
  else return t.index_i64;
}
template <class T>
const BnKernels<T>& bn_kernels(const KernelTable& t) {
  if constexpr (std::is_same_v<T, float>) return t.bn_f32;
  else return t.bn_f64;
}
template <class T>
const SoftmaxColsKernels<T>& softmax_cols_kernels(const KernelTable& t) {
  if constexpr (std::is_same_v<T, float>) return t.softmax_cols_f32;
  else return t.softmax_cols_f64;
}

/// The table of a named capability this CPU can run, or nullptr (unknown name, not built, or the
/// CPU lacks the instructions).
const KernelTable* table_for(const char* name);

// Defined by the capability translation units (nullptr-free: each exists where it is built).
const KernelTable& scalar_table();
#if defined(__x86_64__)
const KernelTable& avx2_table();
const KernelTable& avx512_table();
#endif

}  // namespace sorix::kernels
