// matmul: 1-D/2-D/batched products on the deterministic blocked GEMM (gemm.hpp).
//
// Every case becomes one internal op, mm: op(x) op(y) over contiguous tensors read as stacks of
// row-major matrices, with transposes taken through the BLAS flags (never materialised). Its
// gradient is mm again with other flags (grad_x = g op(y)^T, grad_y = op(x)^T g, summed over a
// broadcast batch), so backward runs straight on gemm, and under create_graph the gradient is
// itself recorded: second derivatives need no transpose op.
#include <algorithm>
#include <tuple>

#include "sorix_autograd/gemm.hpp"
#include "sorix_autograd/ops_internal.hpp"

namespace sorix {
namespace {

// A contiguous tensor read as `batch` stacked matrices of rows x cols (row-major).
struct MatView {
  std::size_t batch, rows, cols;
};

Shape shape3(std::size_t b, std::size_t r, std::size_t c) {
  return {static_cast<std::int64_t>(b), static_cast<std::int64_t>(r), static_cast<std::int64_t>(c)};
}

// out[i] = op(x[i]) op(y[i]) for every batch index i (a batch of 1 is broadcast), stored with
// `out_shape` (any shape of B*M*N elements). x and y have the same floating dtype.
Tensor mm(const Tensor& x, MatView xv, bool tx, const Tensor& y, MatView yv, bool ty, const Shape& out_shape) {
  // A stack of x matrices times one y matrix is one tall product: rows of all x matrices are
  // consecutive in memory, so [B*M, K] x [K, N] gives [B, M, N] in place, and the gradient of y
  // becomes one product over B*M rows instead of B products and a sum.
  if (xv.batch > 1 && yv.batch == 1 && !tx) xv = {1, xv.batch * xv.rows, xv.cols};
  const std::size_t M = tx ? xv.cols : xv.rows, K = tx ? xv.rows : xv.cols;
  const std::size_t N = ty ? yv.rows : yv.cols;
  const std::size_t B = xv.batch == 1 ? yv.batch : xv.batch;
  // Invariants established by matmul (and kept by the gradients below).
  check((ty ? yv.cols : yv.rows) == K && (xv.batch == yv.batch || xv.batch == 1 || yv.batch == 1) &&
            x.dtype() == y.dtype() && detail::numel_of(out_shape) == B * M * N,
        "matmul", "internal error: mismatched operands ", x.shape(), " and ", y.shape());

  Tensor out = detail::make_empty(x.dtype(), detail::to_xshape(out_shape, "matmul"));
  detail::visit_floating(x.dtype(), "matmul", [&](auto tag) {
    using T = typename decltype(tag)::type;
    kernels::gemm_batched<T>(B, tx, ty, M, N, K, T(1), detail::flat<T>(x),
                             xv.cols, xv.batch == 1 ? 0 : xv.rows * xv.cols, detail::flat<T>(y), yv.cols,
                             yv.batch == 1 ? 0 : yv.rows * yv.cols, T(0), detail::flat<T>(out), N, M * N);
  });

  if (autograd::needs_grad({&x, &y})) {
    const bool gx = x.requires_grad(), gy = y.requires_grad();
    // Each gradient needs only the other operand.
    autograd::SavedTensor sx = gy ? autograd::SavedTensor(x) : autograd::SavedTensor();
    autograd::SavedTensor sy = gx ? autograd::SavedTensor(y) : autograd::SavedTensor();
    autograd::record(
        out, "MatmulBackward", {x, y},
        [sx, sy, xv, yv, tx, ty, gx, gy, B, M, N, xshape = x.shape(), yshape = y.shape()](const Tensor& g_in) {
          const MatView gv{B, M, N};
          // Gradient of an operand broadcast over the batch: B products, then summed over them
          // (also for B == 0, where the sum is zeros).
          auto reduce = [B](MatView v, const Shape& shape) {
            return v.batch == 1 && B != 1 ? shape3(B, v.rows, v.cols) : shape;
          };
          auto finish = [B](Tensor d, MatView v, const Shape& shape) {
            return v.batch == 1 && B != 1 ? reshape(sum(d, {0}), shape) : d;
          };
          Tensor g = g_in;
          Tensor dx, dy;
          if (gx) {
            Tensor yt = sy.unpack("matmul");
            if (g.dtype() != yt.dtype()) g = g.to(yt.dtype());
            // op(x) = x: g op(y)^T.  op(x) = x^T: (g op(y)^T)^T = op(y) g^T.
            dx = tx ? mm(yt, yv, ty, g, gv, true, reduce(xv, xshape)) : mm(g, gv, false, yt, yv, !ty, reduce(xv, xshape));
            dx = finish(dx, xv, xshape);
          }
          if (gy) {
            Tensor xt = sx.unpack("matmul");
            if (g.dtype() != xt.dtype()) g = g.to(xt.dtype());
            // op(y) = y: op(x)^T g.  op(y) = y^T: (op(x)^T g)^T = g^T op(x).
            dy = ty ? mm(g, gv, true, xt, xv, tx, reduce(yv, yshape)) : mm(xt, xv, !tx, g, gv, false, reduce(yv, yshape));
            dy = finish(dy, yv, yshape);
          }
          return std::vector<Tensor>{dx, dy};
        });
  }
  return out;
}

// The batch dims (all but the last two) of an operand with at least 2 dims; none for 1-D.
Shape batch_dims(const Shape& s) { return s.size() <= 2 ? Shape{} : Shape(s.begin(), s.end() - 2); }

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  detail::check_defined(a, "matmul");
  detail::check_defined(b, "matmul");
  const Shape as = a.shape(), bs = b.shape();
  check(!as.empty() && !bs.empty(), "matmul", "both arguments need at least 1 dimension, got shapes ", as, " and ",
        bs);
  check(is_floating(a.dtype()) && is_floating(b.dtype()), "matmul",
        "expected floating tensors (float32 or float64), got ", dtype_name(a.dtype()), " ", as, " and ",
        dtype_name(b.dtype()), " ", bs, "; convert with to()");

  // a is [..., M, K] (1-D: [K], M dropped from the result); b is [..., K, N] (1-D: [K], N dropped).
  const std::size_t M = as.size() == 1 ? 1 : static_cast<std::size_t>(as[as.size() - 2]);
  const std::size_t Ka = static_cast<std::size_t>(as.back());
  const std::size_t Kb = static_cast<std::size_t>(bs.size() == 1 ? bs[0] : bs[bs.size() - 2]);
  const std::size_t N = bs.size() == 1 ? 1 : static_cast<std::size_t>(bs.back());
  check(Ka == Kb, "matmul", "shapes ", as, " and ", bs, " cannot be multiplied: the last dim of the first (", Ka,
        ") must equal ", bs.size() == 1 ? "the size of the second (" : "the second-to-last dim of the second (", Kb,
        ")");

  // Batch dims broadcast as NumPy's, but each side must be the full batch or a single matrix.
  const Shape ab = batch_dims(as), bb = batch_dims(bs);
  Shape out_batch(std::max(ab.size(), bb.size()), 1);
  for (std::size_t i = 0; i < out_batch.size(); ++i) {
    const std::size_t off = out_batch.size() - i;
    const std::int64_t da = off <= ab.size() ? ab[ab.size() - off] : 1;
    const std::int64_t db = off <= bb.size() ? bb[bb.size() - off] : 1;
    check(da == db || da == 1 || db == 1, "matmul", "batch dims ", ab, " of ", as, " and ", bb, " of ", bs,
          " do not broadcast");
    out_batch[i] = da == 1 ? db : da;
  }
  const std::size_t na = detail::numel_of(ab), nb = detail::numel_of(bb), nout = detail::numel_of(out_batch);
  check((na == nout || na == 1) && (nb == nout || nb == 1), "matmul", "batch dims ", ab, " of ", as, " and ", bb,
        " of ", bs, " are not supported: each side needs the full batch ", out_batch, " or a single matrix");

  Shape out_shape = out_batch;
  if (as.size() > 1) out_shape.push_back(static_cast<std::int64_t>(M));
  if (bs.size() > 1) out_shape.push_back(static_cast<std::int64_t>(N));

  const Dtype dt = promote(a.dtype(), b.dtype());
  const Tensor x = a.dtype() == dt ? a : a.to(dt);
  const Tensor y = b.dtype() == dt ? b : b.to(dt);
  // A transposed view (x.t(), or transpose(-1, -2) of a contiguous batch) goes to the product
  // kernel as its contiguous self with the transpose flag: no copy.
  auto operand = [](const Tensor& t, MatView v) -> std::tuple<Tensor, MatView, bool> {
    if (t.is_contiguous()) return {t, v, false};
    if (t.dim() >= 2) {
      Tensor tt = transpose(t, -1, -2);
      if (tt.is_contiguous()) return {tt, MatView{v.batch, v.cols, v.rows}, true};
    }
    return {t.contiguous(), v, false};
  };
  auto [xo, xv, tx] = operand(x, {na, M, Ka});
  auto [yo, yv, ty] = operand(y, {nb, Kb, N});
  return mm(xo, xv, tx, yo, yv, ty, out_shape);
}

Tensor Tensor::matmul(const Tensor& o) const { return sorix::matmul(*this, o); }

}  // namespace sorix
