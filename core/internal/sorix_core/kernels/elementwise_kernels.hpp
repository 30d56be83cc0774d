#pragma once
// Elementwise kernels of the kernel layer, written once for every architecture. Each element's
// value is a function of its own inputs through IEEE-exact operations and fmadd(), and a ragged
// tail goes through the same vector code on a padded buffer, so neither the register width nor
// where a chunk starts changes a bit.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>

#include "sorix_core/kernels/arch.hpp"
#include "sorix_core/kernels/elementwise_ops.hpp"
#include "sorix_core/kernels/op_kinds.hpp"

namespace sorix::kernels {

template <class A>
struct ElementwiseKernels {
  using F32 = xsimd::batch<float, A>;
  using I32 = xsimd::batch<int32_t, A>;
  static constexpr std::size_t W = F32::size;

  // out[i] = float(in[i]) / 255 bit for bit, without a divide: q0 = x * (1/255), then one
  // correction with the exact residual fma(-q0, 255, x). For the 256 bytes this is exactly the
  // correctly rounded quotient (tests/nn/test_data.cpp checks every byte).
  static F32 unit_from_byte(const F32& x) {
    const F32 inv(1.0f / 255.0f);
    const F32 q0 = x * inv;
    return fmadd(fmadd(-q0, F32(255.0f), x), inv, q0);
  }

  static void bytes_to_unit_f32(const uint8_t* in, float* out, std::size_t n) {
    alignas(64) int32_t wide[W];
    std::size_t i = 0;
    for (; i + W <= n; i += W) {
      for (std::size_t l = 0; l < W; ++l) wide[l] = in[i + l];
      unit_from_byte(xsimd::to_float(I32::load_aligned(wide))).store_unaligned(out + i);
    }
    if (i < n) {
      alignas(64) float buf[W];
      for (std::size_t l = 0; l < W; ++l) wide[l] = i + l < n ? in[i + l] : 0;
      unit_from_byte(xsimd::to_float(I32::load_aligned(wide))).store_aligned(buf);
      std::memcpy(out + i, buf, (n - i) * sizeof(float));
    }
  }

  // The core's multiply-add throughput on this path, for benchmarks (a product kernel's share of
  // it is its efficiency): 12 independent fmadd chains of W lanes, `iters` steps each, summed so
  // that no chain is dead code. 12 * W * iters multiply-adds.
  static double fma_probe(std::size_t iters) {
    F32 acc[12];
    for (int j = 0; j < 12; ++j) acc[j] = F32(0.001f * float(j + 1));
    const F32 a(0.999999f), b(1e-7f);
    for (std::size_t i = 0; i < iters; ++i) {
#pragma GCC unroll 12
      for (int j = 0; j < 12; ++j) acc[j] = fmadd(acc[j], a, b);
    }
    F32 sum(0.0f);
    for (int j = 0; j < 12; ++j) sum = sum + acc[j];
    alignas(64) float lanes[W];
    sum.store_aligned(lanes);
    double total = 0;
    for (std::size_t l = 0; l < W; ++l) total += lanes[l];
    return total;
  }
  static constexpr std::size_t kProbeLanes = W;

  // ---- sums: one fixed lane layout on every architecture. Element i of a run goes to logical
  // lane i mod L (L = 128 bytes of lanes: 32 floats or 16 doubles, however many registers that
  // is: 8 on SSE2, 4 on AVX2, 2 on AVX-512); the ragged tail is zero-padded into one more row of
  // lanes; the lanes are then combined in one fixed tree (lane j += lane j + L/2, then + L/4, ...).
  template <class T>
  static T sum(const T* x, std::size_t n) {
    using B = xsimd::batch<T, A>;
    constexpr std::size_t L = 128 / sizeof(T), R = L / B::size;
    B acc[R];
    for (std::size_t r = 0; r < R; ++r) acc[r] = B(T(0));
    std::size_t i = 0;
    for (; i + L <= n; i += L) {
#pragma GCC unroll 8
      for (std::size_t r = 0; r < R; ++r) acc[r] = acc[r] + B::load_unaligned(x + i + r * B::size);
    }
    if (i < n) {
      alignas(64) T buf[L] = {};
      std::memcpy(buf, x + i, (n - i) * sizeof(T));
      for (std::size_t r = 0; r < R; ++r) acc[r] = acc[r] + B::load_aligned(buf + r * B::size);
    }
    alignas(64) T lanes[L];
    for (std::size_t r = 0; r < R; ++r) acc[r].store_aligned(lanes + r * B::size);
    for (std::size_t h = L / 2; h >= 1; h /= 2)
      for (std::size_t j = 0; j < h; ++j) lanes[j] = lanes[j] + lanes[j + h];
    return lanes[0];
  }

  // Max of x[0..n) (n >= 1) in the same fixed lane layout, lanes combined in the same tree; a lane
  // takes a value only if it is greater, so NaNs are skipped and the result never depends on the
  // register width. (A row of NaNs or of -inf gives -inf: its exps are NaN, as PyTorch's.)
  template <class T>
  static T max(const T* x, std::size_t n) {
    using B = xsimd::batch<T, A>;
    constexpr std::size_t L = 128 / sizeof(T), R = L / B::size;
    const T lowest = -std::numeric_limits<T>::infinity();
    B acc[R];
    for (std::size_t r = 0; r < R; ++r) acc[r] = B(lowest);
    auto take = [](const B& a, const B& v) { return xsimd::select(v > a, v, a); };
    std::size_t i = 0;
    for (; i + L <= n; i += L) {
#pragma GCC unroll 8
      for (std::size_t r = 0; r < R; ++r) acc[r] = take(acc[r], B::load_unaligned(x + i + r * B::size));
    }
    if (i < n) {
      alignas(64) T buf[L];
      for (std::size_t k = 0; k < L; ++k) buf[k] = i + k < n ? x[i + k] : lowest;
      for (std::size_t r = 0; r < R; ++r) acc[r] = take(acc[r], B::load_aligned(buf + r * B::size));
    }
    alignas(64) T lanes[L];
    for (std::size_t r = 0; r < R; ++r) acc[r].store_aligned(lanes + r * B::size);
    for (std::size_t h = L / 2; h >= 1; h /= 2)
      for (std::size_t j = 0; j < h; ++j) lanes[j] = lanes[j + h] > lanes[j] ? lanes[j + h] : lanes[j];
    return lanes[0];
  }

  // The softmax row kernel, for softmax / log_softmax over the last dim and cross-entropy: for
  // each of `rows` rows of n (>= 1) values, m = max, y = exp(x - m), s = sum(y) (the layouts
  // above), then y = y / s, or with `log` y = (x - m) - log(s). row_max[i] = m and
  // row_logsum[i] = log(s) where those pointers are given.
  template <class T>
  static void softmax_rows(const T* x, T* y, std::size_t rows, std::size_t n, bool log, T* row_max, T* row_logsum) {
    using B = xsimd::batch<T, A>;
    if (rows > 1 && n <= 128 / sizeof(T)) return softmax_narrow_rows(x, y, rows, n, log, row_max, row_logsum);
    for (std::size_t i = 0; i < rows; ++i) {
      const T* xr = x + i * n;
      T* yr = y + i * n;
      const T m = max<T>(xr, n);
      run_unary(xr, yr, n, ops::ExpShift{m});
      const T s = sum<T>(yr, n);
      T log_s = T(0);
      if (log || row_logsum != nullptr) {  // (plain softmax needs no log)
        alignas(64) T lane[B::size];
        math::log(B(s)).store_aligned(lane);  // lane 0: the value of the scalar form
        log_s = lane[0];
      }
      if (log) run_unary(xr, yr, n, ops::LogShift{m, log_s});
      else run_unary(yr, yr, n, ops::DivBy{s});
      if (row_max != nullptr) row_max[i] = m;
      if (row_logsum != nullptr) row_logsum[i] = log_s;
    }
  }

  // The row kernel on rows of n <= L values (a classifier's logits: the whole row is the layouts'
  // one zero- or -inf-padded row of L lanes), B::size rows at a time with the rows across the
  // lanes: register j holds column j of those rows. The max and sum trees over the L logical
  // lanes are replayed on these registers (absent columns are the layouts' padding), and every
  // other step is the same per-lane function, so each row gets the row form's bits; per-row calls
  // spent most of their time in the trees and tails of 10-value rows (cross_entropy, 128 x 10:
  // 9 us of a 14 us loss).
  template <class T>
  static void softmax_narrow_rows(const T* x, T* y, std::size_t rows, std::size_t n, bool log, T* row_max,
                                  T* row_logsum) {
    using B = xsimd::batch<T, A>;
    constexpr std::size_t V = B::size, L = 128 / sizeof(T);
    const T lowest = -std::numeric_limits<T>::infinity();
    alignas(64) T cols[L][V];
    B c[L], t[L];
    for (std::size_t i0 = 0; i0 < rows; i0 += V) {
      const std::size_t live = std::min(V, rows - i0);
      for (std::size_t j = 0; j < n; ++j)
        for (std::size_t l = 0; l < V; ++l) cols[j][l] = l < live ? x[(i0 + l) * n + j] : T(0);
      for (std::size_t j = 0; j < n; ++j) c[j] = B::load_aligned(cols[j]);
      // max: lane j takes column j if it is greater than -inf; then the tree of max().
      for (std::size_t j = 0; j < L; ++j) t[j] = j < n ? xsimd::select(c[j] > B(lowest), c[j], B(lowest)) : B(lowest);
      for (std::size_t h = L / 2; h >= 1; h /= 2)
        for (std::size_t j = 0; j < h; ++j) t[j] = xsimd::select(t[j + h] > t[j], t[j + h], t[j]);
      const B m = t[0];
      // exp(x - m), then sum's lanes (+0 + value, +0 padding) and its tree.
      for (std::size_t j = 0; j < n; ++j) c[j] = ops::exp_of(c[j] - m);
      for (std::size_t j = 0; j < L; ++j) t[j] = j < n ? B(T(0)) + c[j] : B(T(0));
      for (std::size_t h = L / 2; h >= 1; h /= 2)
        for (std::size_t j = 0; j < h; ++j) t[j] = t[j] + t[j + h];
      const B s = t[0];
      const B log_s = log || row_logsum != nullptr ? math::log(s) : B(T(0));
      for (std::size_t j = 0; j < n; ++j) {
        const B out = log ? (B::load_aligned(cols[j]) - m) - log_s : c[j] / s;
        out.store_aligned(cols[j]);
      }
      for (std::size_t l = 0; l < live; ++l)
        for (std::size_t j = 0; j < n; ++j) y[(i0 + l) * n + j] = cols[j][l];
      alignas(64) T lane[V];
      if (row_max != nullptr) {
        m.store_aligned(lane);
        std::copy(lane, lane + live, row_max + i0);
      }
      if (row_logsum != nullptr) {
        log_s.store_aligned(lane);
        std::copy(lane, lane + live, row_logsum + i0);
      }
    }
  }

  // ---- the elementwise ops (elementwise_ops.hpp): batches over the body, the tail padded into
  // one more batch, so every element goes through the same vector code wherever it lies.

  template <class T, class Op>
  static void run_unary(const T* x, T* y, std::size_t n, const Op& op) {
    using B = xsimd::batch<T, A>;
    constexpr std::size_t L = B::size;
    std::size_t i = 0;
    for (; i + L <= n; i += L) op(B::load_unaligned(x + i)).store_unaligned(y + i);
    if (i < n) {
      alignas(64) T buf[L] = {};
      std::memcpy(buf, x + i, (n - i) * sizeof(T));
      op(B::load_aligned(buf)).store_aligned(buf);
      std::memcpy(y + i, buf, (n - i) * sizeof(T));
    }
  }

  template <class T>
  static void unary(Unary kind, const T* x, T* y, std::size_t n, OpParams p) {
    switch (kind) {
      case Unary::Neg: return run_unary(x, y, n, ops::NegOp{});
      case Unary::Exp: return run_unary(x, y, n, ops::ExpOp{});
      case Unary::Log: return run_unary(x, y, n, ops::LogOp{});
      case Unary::Sqrt: return run_unary(x, y, n, ops::SqrtOp{});
      case Unary::Abs: return run_unary(x, y, n, ops::AbsOp{});
      case Unary::Tanh: return run_unary(x, y, n, ops::TanhOp{});
      case Unary::Sigmoid: return run_unary(x, y, n, ops::SigmoidOp{});
      case Unary::Relu: return run_unary(x, y, n, ops::ReluOp{});
      case Unary::LeakyRelu: return run_unary(x, y, n, ops::LeakyReluOp{p.a});
      case Unary::Clamp: return run_unary(x, y, n, ops::ClampOp{p.a, p.b});
      case Unary::ExpShift: return run_unary(x, y, n, ops::ExpShift{p.a});
      case Unary::DivBy: return run_unary(x, y, n, ops::DivBy{p.a});
      case Unary::LogShift: return run_unary(x, y, n, ops::LogShift{p.a, p.b});
      case Unary::Sin: return run_unary(x, y, n, ops::SinOp{});
      case Unary::Cos: return run_unary(x, y, n, ops::CosOp{});
      case Unary::Tan: return run_unary(x, y, n, ops::TanOp{});
      case Unary::Sign: return run_unary(x, y, n, ops::SignOp{});
      case Unary::Round: return run_unary(x, y, n, ops::RoundOp{});
      case Unary::Floor: return run_unary(x, y, n, ops::FloorOp{});
      case Unary::Ceil: return run_unary(x, y, n, ops::CeilOp{});
      case Unary::Trunc: return run_unary(x, y, n, ops::TruncOp{});
      case Unary::Log1p: return run_unary(x, y, n, ops::Log1pOp{});
      case Unary::Expm1: return run_unary(x, y, n, ops::Expm1Op{});
      case Unary::Square: return run_unary(x, y, n, ops::SquareOp{});
      case Unary::Rsqrt: return run_unary(x, y, n, ops::RsqrtOp{});
      case Unary::Reciprocal: return run_unary(x, y, n, ops::ReciprocalOp{});
      case Unary::Erf: return run_unary(x, y, n, ops::ErfOp{});
      case Unary::Gelu: return run_unary(x, y, n, ops::GeluOp{});
      case Unary::GeluTanh: return run_unary(x, y, n, ops::GeluTanhOp{});
      case Unary::Silu: return run_unary(x, y, n, ops::SiluOp{});
      case Unary::Elu: return run_unary(x, y, n, ops::EluOp{p.a});
      case Unary::Softplus: return run_unary(x, y, n, ops::SoftplusOp{p.a, p.b});
    }
  }

  // out[i] = op(a[i or 0], b[i or 0]): a_vec / b_vec say whether an operand is a run or one value.
  template <class T, class Op>
  static void run_binary(const T* a, bool a_vec, const T* b, bool b_vec, T* out, std::size_t n, const Op& op) {
    using B = xsimd::batch<T, A>;
    constexpr std::size_t L = B::size;
    const B as(a[0]), bs(b[0]);
    std::size_t i = 0;
    if (a_vec && b_vec) {
      for (; i + L <= n; i += L) op(B::load_unaligned(a + i), B::load_unaligned(b + i)).store_unaligned(out + i);
    } else if (a_vec) {
      for (; i + L <= n; i += L) op(B::load_unaligned(a + i), bs).store_unaligned(out + i);
    } else if (b_vec) {
      for (; i + L <= n; i += L) op(as, B::load_unaligned(b + i)).store_unaligned(out + i);
    } else {
      for (; i + L <= n; i += L) op(as, bs).store_unaligned(out + i);
    }
    if (i < n) {
      alignas(64) T ba[L] = {};
      alignas(64) T bb[L] = {};
      for (std::size_t k = i; k < n; ++k) {
        ba[k - i] = a_vec ? a[k] : a[0];
        bb[k - i] = b_vec ? b[k] : b[0];
      }
      op(B::load_aligned(ba), B::load_aligned(bb)).store_aligned(ba);
      std::memcpy(out + i, ba, (n - i) * sizeof(T));
    }
  }

  template <class T>
  static void binary(Binary kind, const T* a, bool a_vec, const T* b, bool b_vec, T* out, std::size_t n,
                     OpParams p) {
    switch (kind) {
      case Binary::Add: return run_binary(a, a_vec, b, b_vec, out, n, ops::AddOp{});
      case Binary::Sub: return run_binary(a, a_vec, b, b_vec, out, n, ops::SubOp{});
      case Binary::Mul: return run_binary(a, a_vec, b, b_vec, out, n, ops::MulOp{});
      case Binary::Div: return run_binary(a, a_vec, b, b_vec, out, n, ops::DivOp{});
      case Binary::Gt: return run_binary(a, a_vec, b, b_vec, out, n, ops::GtOp{});
      case Binary::Lt: return run_binary(a, a_vec, b, b_vec, out, n, ops::LtOp{});
      case Binary::Ge: return run_binary(a, a_vec, b, b_vec, out, n, ops::GeOp{});
      case Binary::Le: return run_binary(a, a_vec, b, b_vec, out, n, ops::LeOp{});
      case Binary::Eq: return run_binary(a, a_vec, b, b_vec, out, n, ops::EqOp{});
      case Binary::Ne: return run_binary(a, a_vec, b, b_vec, out, n, ops::NeOp{});
      case Binary::Copy: return run_binary(a, a_vec, b, b_vec, out, n, ops::CopyOp{});
      case Binary::Max: return run_binary(a, a_vec, b, b_vec, out, n, ops::MaxOp{});
      case Binary::ExpDiff: return run_binary(a, a_vec, b, b_vec, out, n, ops::ExpDiff{});
      case Binary::ReluGrad: return run_binary(a, a_vec, b, b_vec, out, n, ops::ReluGradOp{});
      case Binary::SoftmaxGrad: return run_binary(a, a_vec, b, b_vec, out, n, ops::SoftmaxGrad{p.a});
      case Binary::LogSoftmaxGrad: return run_binary(a, a_vec, b, b_vec, out, n, ops::LogSoftmaxGrad{p.a});
      case Binary::GeluGrad: return run_binary(a, a_vec, b, b_vec, out, n, ops::GeluGradOp{});
      case Binary::GeluTanhGrad: return run_binary(a, a_vec, b, b_vec, out, n, ops::GeluTanhGradOp{});
      case Binary::SiluGrad: return run_binary(a, a_vec, b, b_vec, out, n, ops::SiluGradOp{});
      case Binary::EluGrad: return run_binary(a, a_vec, b, b_vec, out, n, ops::EluGradOp{p.a});
      case Binary::SoftplusGrad: return run_binary(a, a_vec, b, b_vec, out, n, ops::SoftplusGradOp{p.a, p.b});
      case Binary::HardtanhGrad: return run_binary(a, a_vec, b, b_vec, out, n, ops::HardtanhGradOp{p.a, p.b});
    }
  }
};

}  // namespace sorix::kernels
