#pragma once
// The ops of sorix as free functions (Tensor methods forward to these). Each op checks its inputs
// where it is called (the message names the op, the shapes or values, and what was expected),
// runs its kernel as fixed chunks in the library arena (bit-identical for any thread count), and,
// when grad mode is on and an input requires grad, records its gradient beside its forward.
//
// Dtypes (docs/dtypes.md): binary ops follow PyTorch's type promotion (result_type below:
// categories bool < integral < floating; a C++ number or a 0-dim tensor counts only by its
// category, never its value: int64 * 2 is int64, int64 * 2.5 and int64 * 2.0 are float32;
// uint8 + int32 is int32); div is true division (integers give float32). An in-place op whose
// result type cannot be cast to the tensor's dtype (a float result into an integer tensor, a
// non-bool into bool) throws std::invalid_argument naming the op and both dtypes.
// Differentiable ops need float32 or float64. Comparisons, isnan/isinf/isfinite and the logical
// ops return bool, no gradient; where, masked_fill and masked_select take bool masks.
#include <cstdint>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "sorix/core/tensor.hpp"

namespace sorix {

// ---- elementwise binary, broadcasting (autograd/src/binary.cpp) ---------------------------------
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
/// a ** b, elementwise with broadcasting, in result_type(a, b) (as PyTorch): integers stay
/// integers, exact (wrapping; a negative exponent gives 0 except for bases 1 and -1); a bool
/// result throws.
Tensor pow(const Tensor& a, const Tensor& b);
/// The number's category decides, as for the other binary ops: an integer tensor to an integer
/// power stays an integer (int64 x.pow(2) is int64; bool x.pow(2) int64), to a floating one
/// (2.0 or 2.5) float32; a negative integer power of an integer tensor, and an exponent its
/// dtype cannot hold (uint8 to the 256), throw std::invalid_argument (as PyTorch).
Tensor pow(const Tensor& a, Scalar exponent);
/// base ** exponent with a number base (libtorch's pow(Scalar, Tensor)): dtype
/// result_type(exponent, base) (2 ** int32 is int32, 2.5 ** int64 float32).
Tensor pow(Scalar base, const Tensor& exponent);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
/// cond ? a : b, all three broadcast together; cond must be bool (or uint8, as PyTorch 1.13);
/// a and b promote as a binary op; gradient flows to a and b.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
/// A scalar counts by its category (result_type); two floating scalars give float32.
Tensor where(const Tensor& cond, Scalar a, const Tensor& b);
Tensor where(const Tensor& cond, const Tensor& a, Scalar b);
Tensor where(const Tensor& cond, Scalar a, Scalar b);
/// PyTorch's type promotion (torch.result_type): the dtype a binary op on a and b computes in.
/// Dimensioned tensors decide unless a 0-dim tensor (or a number) is of a higher category; then
/// the higher category's dtype joins (an int64 [3] with a 0-dim float64 gives float64, with a
/// float number gives float32).
Dtype result_type(const Tensor& a, const Tensor& b);
Dtype result_type(const Tensor& a, Scalar b);
/// Elementwise logic on any dtypes (nonzero is true, NaN is true), broadcasting; bool results.
Tensor logical_and(const Tensor& a, const Tensor& b);
Tensor logical_or(const Tensor& a, const Tensor& b);
Tensor logical_xor(const Tensor& a, const Tensor& b);
Tensor logical_not(const Tensor& x);
/// Bool tensors: x is NaN; x is +-inf; x is neither (integer dtypes: false, false, true).
Tensor isnan(const Tensor& x);
Tensor isinf(const Tensor& x);
Tensor isfinite(const Tensor& x);
/// int64 [count, x.dim()]: the indices of x's nonzero elements in row-major order
/// (autograd/src/indexing.cpp).
Tensor nonzero(const Tensor& x);
/// A 0-dim tensor holding `value` converted to `dtype`.
Tensor scalar_tensor(Scalar value, Dtype dtype);

// ---- elementwise unary (autograd/src/unary.cpp) --------------------------------------------------
// Integer and bool tensors as PyTorch (docs/dtypes.md): exp, log, sqrt, tanh, sigmoid (and sin,
// cos, tan, log1p, expm1, rsqrt, reciprocal, erf below) compute in float32; neg, abs, relu, clamp,
// sign, round, floor, ceil, trunc and square keep the integer dtype, exact; neg, abs, relu and
// the roundings of a bool tensor throw (sign gives it back; square gives int64).
Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor relu(const Tensor& x);
Tensor leaky_relu(const Tensor& x, double negative_slope = 0.01);
/// Limits to [min, max]; gradient 1 inside (and at the bounds), 0 outside. Dtype as PyTorch's:
/// result_type of x and the bounds (an int64 tensor with integer bounds stays int64, exact; with
/// a floating bound it is float32; a bool tensor with integer bounds int64); an integer bound its
/// dtype cannot hold (uint8 to 300) throws.
Tensor clamp(const Tensor& x, std::optional<Scalar> min, std::optional<Scalar> max);

// ---- elementwise math (autograd/src/unary_math.cpp) ----------------------------------------------
// float32 / float64; integer and bool tensors as in the unary block above. Values on every capability and thread count are
// the same bits: sorix's own polynomials (core/internal/sorix_core/kernels/math.hpp), never libm. Accuracy: a few
// ulp (sin/cos/tan: for |x| <= 2^20 (float32) / 2^30 (float64); further out deterministic but
// inexact). Gradients are composed from differentiable ops (twice differentiable).
/// sin(x); gradient g cos(x). sin(+-0) = +-0, sin(+-inf) = NaN.
Tensor sin(const Tensor& x);
/// cos(x); gradient -g sin(x).
Tensor cos(const Tensor& x);
/// tan(x); gradient g (1 + tan(x)^2).
Tensor tan(const Tensor& x);
/// (x > 0) - (x < 0): -1, +0 or 1; +0 for +-0 and NaN (as PyTorch 1.13). Gradient 0 everywhere.
Tensor sign(const Tensor& x);
/// Nearest integer, ties to even (round(0.5) = 0, round(2.5) = 2, round(-0.3) = -0). Gradient 0.
Tensor round(const Tensor& x);
/// Largest integer <= x (floor(-0) = -0). Gradient 0 everywhere, also at the integers.
Tensor floor(const Tensor& x);
/// Smallest integer >= x (ceil(-0.5) = -0). Gradient 0 everywhere.
Tensor ceil(const Tensor& x);
/// x rounded toward zero, sign kept (trunc(-0.7) = -0). Gradient 0 everywhere.
Tensor trunc(const Tensor& x);
/// log(1 + x), accurate near 0; -1 gives -inf, below -1 NaN. Gradient g / (1 + x).
Tensor log1p(const Tensor& x);
/// e^x - 1, accurate near 0. Gradient g e^x.
Tensor expm1(const Tensor& x);
/// x * x. Gradient 2 x g.
Tensor square(const Tensor& x);
/// 1 / sqrt(x) (two roundings); +0 gives +inf, -0 gives -inf, x < 0 NaN. Gradient -g y^3 / 2.
Tensor rsqrt(const Tensor& x);
/// 1 / x; +-0 gives +-inf. Gradient -g / x^2 (as -g y^2).
Tensor reciprocal(const Tensor& x);
/// The error function, 2/sqrt(pi) * integral_0^x e^(-t^2) dt. Gradient g 2/sqrt(pi) e^(-x^2).
Tensor erf(const Tensor& x);
/// max(x, min), NaN stays NaN. Gradient g where x >= min (1 at x == min, as PyTorch), else 0.
/// A NaN min throws std::invalid_argument. Dtype as clamp's.
Tensor clamp_min(const Tensor& x, Scalar min);
/// min(x, max), NaN stays NaN. Gradient g where x <= max, else 0.
Tensor clamp_max(const Tensor& x, Scalar max);

// ---- reductions (autograd/src/reduce.cpp, autograd/src/reduce_minmax.cpp) ------------------------
/// Sum of all elements (0-dim). Deterministic: fixed chunks combined in index order.
Tensor sum(const Tensor& x);
Tensor sum(const Tensor& x, const std::vector<std::int64_t>& dims, bool keepdim = false);
Tensor mean(const Tensor& x);
Tensor mean(const Tensor& x, const std::vector<std::int64_t>& dims, bool keepdim = false);
/// Largest element (0-dim, x's dtype; int64 allowed). NaN counts as the largest (as PyTorch).
/// Gradient: split evenly among all elements equal to the result. Empty x throws
/// std::invalid_argument. Exact (a selection), so the same for any thread count.
Tensor max(const Tensor& x);
/// libtorch's max(x, dim, keepdim): (values, int64 indices of the first occurrence) along dim
/// (that dim removed unless keepdim); NaN counts as the extreme. Gradient to the element the
/// index picks. An empty dim throws std::invalid_argument.
std::tuple<Tensor, Tensor> max(const Tensor& x, std::int64_t dim, bool keepdim = false);
Tensor min(const Tensor& x);
std::tuple<Tensor, Tensor> min(const Tensor& x, std::int64_t dim, bool keepdim = false);
/// Values only, over dims (empty: all), as PyTorch's amax/amin: the gradient is split evenly
/// among the elements equal to the result (NaN: among the NaNs). Exact (a selection).
Tensor amax(const Tensor& x, const std::vector<std::int64_t>& dims = {}, bool keepdim = false);
Tensor amin(const Tensor& x, const std::vector<std::int64_t>& dims = {}, bool keepdim = false);
/// int64 index of the first maximum (flattened, or along dim); a NaN counts as the maximum for
/// argmax and as the minimum for argmin (as PyTorch). No gradient.
Tensor argmax(const Tensor& x);
Tensor argmax(const Tensor& x, std::int64_t dim, bool keepdim = false);
Tensor argmin(const Tensor& x);
Tensor argmin(const Tensor& x, std::int64_t dim, bool keepdim = false);
/// Sums `grad` over the dims it was broadcast along, back to `shape` (the gradient of broadcasting).
Tensor sum_to(const Tensor& grad, const Shape& shape);

// ---- softmax family (autograd/src/softmax.cpp) ---------------------------------------------------
/// exp(x - max) / sum(exp(x - max)) along dim: numerically stable. float32/float64, output of
/// x's shape. Gradient: y * (g - sum(g * y, dim)); log_softmax: g - exp(y) * sum(g, dim); both
/// twice differentiable. Fixed chunks/tiles: bit-identical for any thread count.
Tensor softmax(const Tensor& x, std::int64_t dim);
Tensor log_softmax(const Tensor& x, std::int64_t dim);

// ---- linear algebra (autograd/src/matmul.cpp) ----------------------------------------------------
/// 2-D x 2-D, 1-D x 2-D, 2-D x 1-D, 1-D x 1-D (dot), and batched 3-D x 3-D / 3-D x 2-D.
/// On the kernel layer's product kernel: every element one fma chain in k order, so the bits never
/// depend on the thread count or the CPU capability (float32 and float64).
Tensor matmul(const Tensor& a, const Tensor& b);

// ---- views (autograd/src/view.cpp): results share x's storage (sorix/core/tensor.hpp) ----------
/// New shape, same elements in row-major order; one size may be -1 (inferred). A view when x's
/// strides allow one, else a contiguous copy (as PyTorch).
Tensor reshape(const Tensor& x, const Shape& shape);
/// As reshape, but always a view: throws when x's strides do not allow one.
Tensor view(const Tensor& x, const Shape& shape);
Tensor flatten(const Tensor& x, std::int64_t start_dim = 0, std::int64_t end_dim = -1);
Tensor squeeze(const Tensor& x);
Tensor squeeze(const Tensor& x, std::int64_t dim);
Tensor unsqueeze(const Tensor& x, std::int64_t dim);
Tensor transpose(const Tensor& x, std::int64_t dim0, std::int64_t dim1);
Tensor permute(const Tensor& x, const std::vector<std::int64_t>& dims);
/// Elements start, start+step, ... < end along dim (negative start/end count from the end,
/// clamped to the size as Python slicing; step >= 1, a negative step throws).
Tensor slice(const Tensor& x, std::int64_t dim, std::int64_t start, std::int64_t end, std::int64_t step = 1);
/// `length` elements from `start` along dim (start may be negative; the range must fit).
Tensor narrow(const Tensor& x, std::int64_t dim, std::int64_t start, std::int64_t length);
/// Element `index` along dim, that dim removed.
Tensor select(const Tensor& x, std::int64_t dim, std::int64_t index);
/// x broadcast to `shape` (NumPy rules; -1 keeps a size): expanded dims get stride 0, so the
/// result must not be written elementwise (in-place ops on it throw). Gradient: sum_to.
Tensor expand(const Tensor& x, const Shape& shape);
/// Windows of `size` elements every `step` along dim, as a new last dim (windows may overlap).
Tensor unfold(const Tensor& x, std::int64_t dim, std::int64_t size, std::int64_t step);
/// The view with these sizes and strides at `storage_offset` (default: x's) of x's storage;
/// bounds-checked against the storage. With autograd, x must be contiguous.
Tensor as_strided(const Tensor& x, const Shape& sizes, const Shape& strides,
                  std::optional<std::int64_t> storage_offset = std::nullopt);
std::vector<Tensor> split(const Tensor& x, std::int64_t split_size, std::int64_t dim = 0);
std::vector<Tensor> chunk(const Tensor& x, std::int64_t chunks, std::int64_t dim = 0);
/// Every select(x, dim, i).
std::vector<Tensor> unbind(const Tensor& x, std::int64_t dim = 0);

// ---- indexing and joining (autograd/src/index.cpp) -----------------------------------------------
/// Rows of x along dim picked by a 1-D int64 index; gradient scattered (summed) back.
Tensor index_select(const Tensor& x, std::int64_t dim, const Tensor& index);
/// out[i][j] = x[index[i][j]][j] (dim 0) etc.; index int64 with x's number of dims.
Tensor gather(const Tensor& x, std::int64_t dim, const Tensor& index);
Tensor cat(const std::vector<Tensor>& tensors, std::int64_t dim = 0);
Tensor stack(const std::vector<Tensor>& tensors, std::int64_t dim = 0);

// ---- issue 12's ops (reduce_stats.cpp, scan_ops.cpp, sort_ops.cpp, einsum.cpp, misc_ops.cpp) ----
// Deterministic at any thread count and on every capability: composed from sorix's ops and
// kernels, or (scans, sorts) one fixed sequential order per line, lines split across tasks.
/// Variance sum((x - mean)^2) / (n - correction) over dims (empty: all), float32/float64;
/// n - correction <= 0 gives inf (or NaN for n == 0), as PyTorch. Gradient composed (twice differentiable).
Tensor var(const Tensor& x, const std::vector<std::int64_t>& dims = {}, std::int64_t correction = 1, bool keepdim = false);
/// sqrt(var); the gradient is var's scaled by 1 / (2 std), and 0 where std is 0 (as PyTorch).
Tensor std(const Tensor& x, const std::vector<std::int64_t>& dims = {}, std::int64_t correction = 1, bool keepdim = false);
/// Vector p-norm over dims (empty: all elements): p = 2 (default), 1, +inf (max |x|), -inf
/// (min |x|), 0 (count of nonzeros), any other p > 0 as (sum |x|^p)^(1/p). Gradient 0 where the
/// norm is 0; for +-inf split evenly among the elements at the extreme (as PyTorch). p < 0 other
/// than -inf, or NaN, throws. Any other p uses pow (libm: docs/determinism.md).
Tensor norm(const Tensor& x, double p = 2.0, const std::vector<std::int64_t>& dims = {}, bool keepdim = false);
/// log(sum(exp(x))) over dims, stable (the max is subtracted first; all -inf gives -inf, +inf
/// gives +inf). Gradient g * softmax. Integer and bool tensors compute in float32 (as PyTorch).
Tensor logsumexp(const Tensor& x, const std::vector<std::int64_t>& dims, bool keepdim = false);
/// Running sum / product along dim, each line in index order (one rounding chain per line, the
/// same bits at any thread count). int64 allowed (no gradient). cumprod's gradient handles zeros
/// (as PyTorch) and is twice differentiable.
Tensor cumsum(const Tensor& x, std::int64_t dim);
Tensor cumprod(const Tensor& x, std::int64_t dim);
/// Product of all elements (0-dim), or along dim (removed unless keepdim), as the last element of
/// cumprod's line: the same chain in index order, bool and integer tensors in int64 (wrapping, as
/// PyTorch), cumprod's gradient (zeros handled). An empty product is 1.
Tensor prod(const Tensor& x);
Tensor prod(const Tensor& x, std::int64_t dim, bool keepdim = false);
/// Sorted values and int64 indices along dim. The sort is always stable (ties keep their input
/// order; `stable` is accepted for libtorch's signature); NaN sorts as the largest value.
/// Gradient: g scattered back to the source positions.
std::tuple<Tensor, Tensor> sort(const Tensor& x, std::int64_t dim = -1, bool descending = false, bool stable = false);
Tensor argsort(const Tensor& x, std::int64_t dim = -1, bool descending = false);
/// The k largest (or smallest) along dim, values and int64 indices, sorted (ties: the earlier
/// element first; `sorted` false gives the same order). 0 <= k <= size(dim).
std::tuple<Tensor, Tensor> topk(const Tensor& x, std::int64_t k, std::int64_t dim = -1, bool largest = true,
                                bool sorted = true);
/// true where all / any element (over dims; empty: all dims) is nonzero (NaN counts as nonzero),
/// as bool (as PyTorch); all of nothing is true, any of nothing false. No gradient.
Tensor all(const Tensor& x, const std::vector<std::int64_t>& dims = {}, bool keepdim = false);
Tensor any(const Tensor& x, const std::vector<std::int64_t>& dims = {}, bool keepdim = false);
/// |a - b| <= atol + rtol |b| everywhere (broadcasting); NaNs equal only with equal_nan; infs
/// must match exactly.
bool allclose(const Tensor& a, const Tensor& b, double rtol = 1e-5, double atol = 1e-8, bool equal_nan = false);
/// Same shape and the same values (any dtypes, compared as values; NaN != NaN).
bool equal(const Tensor& a, const Tensor& b);
/// int64 [*, num_classes] with 1 at each index of an int64 tensor; num_classes -1 takes
/// max(index) + 1. A negative index or one >= num_classes throws naming it.
Tensor one_hot(const Tensor& index, std::int64_t num_classes = -1);
/// x tiled repeats[i] times along dim i (repeats may have more dims than x: leading dims added).
Tensor repeat(const Tensor& x, const std::vector<std::int64_t>& repeats);
/// 1-D x: a square 2-D tensor with x on diagonal `diagonal` (> 0 above); 2-D x: that diagonal as
/// a 1-D copy. Differentiable.
Tensor diag(const Tensor& x, std::int64_t diagonal = 0);
/// base ** linspace(start, end, steps) (float32 unless a dtype is given), through pow (libm).
Tensor logspace(double start, double end, std::int64_t steps, double base = 10.0, TensorOptions options = {});
/// Batched product [B, n, m] x [B, m, p] -> [B, n, p] on the product kernel (matmul's bits).
Tensor bmm(const Tensor& a, const Tensor& b);
/// Einstein summation over one or two operands, lower/upper-case letter labels, explicit ("->")
/// or implicit output: transposes ("ij->ji"), diagonals ("ii->i"), sums ("ij->"), products and
/// contractions ("ij,jk->ik", "bij,bjk->bik", "i,j->ij", "bi,bi->b", "ij,ij->ij"), all through
/// permute/reshape, sum and the batched product kernel. Ellipsis and more than two operands throw.
Tensor einsum(const std::string& equation, const std::vector<Tensor>& operands);

}  // namespace sorix
