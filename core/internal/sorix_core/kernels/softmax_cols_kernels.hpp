#pragma once
// softmax / log_softmax along a dim that is not the last (table.hpp's SoftmaxColsKernels), written
// once for every architecture: a tile of r rows of n columns, walked row by row across the tile
// (contiguous reads) with the per-column maxima and sums in a row of registers' worth of lanes.
// Every step is per column and elementwise (the kernel layer's max, exp, log, IEEE adds in k
// order, never fused), and the ragged last register is padded, so a column's bits depend neither
// on the register width nor on where the tile ends.
#include <algorithm>
#include <cstddef>
#include <cstring>

#include "sorix_core/kernels/arch.hpp"
#include "sorix_core/kernels/elementwise_ops.hpp"
#include "sorix_core/kernels/table.hpp"

namespace sorix::kernels {

template <class A>
struct SoftmaxColsKernelsOf {
  // Runs body(row offset c, lanes) over the columns [0, n) of one row: whole registers in place,
  // the ragged end through buffers (copied in from `in`, out to `out`).
  template <class T, std::size_t kIn, std::size_t kOut, class Body>
  static void across(std::size_t n, const T* const (&in)[kIn], T* const (&out)[kOut], Body&& body) {
    using B = xsimd::batch<T, A>;
    constexpr std::size_t W = B::size;
    std::size_t c = 0;
    for (; c + W <= n; c += W) {
      B v[kIn];
      for (std::size_t k = 0; k < kIn; ++k) v[k] = B::load_unaligned(in[k] + c);
      B o[kOut];
      body(v, o);
      for (std::size_t k = 0; k < kOut; ++k) o[k].store_unaligned(out[k] + c);
    }
    if (c == n) return;
    alignas(64) T buf[W];
    B v[kIn];
    for (std::size_t k = 0; k < kIn; ++k) {
      std::fill(buf, buf + W, T(1));  // padding: a value every step takes without trapping
      std::memcpy(buf, in[k] + c, (n - c) * sizeof(T));
      v[k] = B::load_aligned(buf);
    }
    B o[kOut];
    body(v, o);
    for (std::size_t k = 0; k < kOut; ++k) {
      o[k].store_aligned(buf);
      std::memcpy(out[k] + c, buf, (n - c) * sizeof(T));
    }
  }

  template <class T>
  static void forward(const T* x, T* y, std::size_t r, std::size_t stride, std::size_t n, bool log) {
    using B = xsimd::batch<T, A>;
    alignas(64) T m[kSoftmaxMaxCols], s[kSoftmaxMaxCols];
    std::copy(x, x + n, m);
    for (std::size_t k = 1; k < r; ++k) {
      const T* const in[2] = {m, x + k * stride};
      T* const out[1] = {m};
      across<T>(n, in, out, [](const B* v, B* o) { o[0] = ops::MaxOp{}(v[0], v[1]); });
    }
    std::fill(s, s + n, T(0));
    for (std::size_t k = 0; k < r; ++k) {
      const T* const in[3] = {x + k * stride, m, s};
      T* const out[2] = {y + k * stride, s};
      across<T>(n, in, out, [](const B* v, B* o) {
        o[0] = ops::ExpDiff{}(v[0], v[1]);
        o[1] = v[2] + o[0];
      });
    }
    if (log) {
      {
        const T* const in[1] = {s};
        T* const out[1] = {s};
        across<T>(n, in, out, [](const B* v, B* o) { o[0] = ops::log_of(v[0]); });
      }
      for (std::size_t k = 0; k < r; ++k) {
        const T* const in[3] = {x + k * stride, m, s};
        T* const out[1] = {y + k * stride};
        across<T>(n, in, out, [](const B* v, B* o) { o[0] = (v[0] - v[1]) - v[2]; });
      }
    } else {
      for (std::size_t k = 0; k < r; ++k) {
        const T* const in[2] = {y + k * stride, s};
        T* const out[1] = {y + k * stride};
        across<T>(n, in, out, [](const B* v, B* o) { o[0] = v[0] / v[1]; });
      }
    }
  }

  template <class T>
  static void backward(const T* g, const T* y, T* dx, std::size_t r, std::size_t stride, std::size_t n, bool log) {
    using B = xsimd::batch<T, A>;
    alignas(64) T acc[kSoftmaxMaxCols];
    std::fill(acc, acc + n, T(0));
    for (std::size_t k = 0; k < r; ++k) {
      const T* const in[3] = {acc, g + k * stride, y + k * stride};
      T* const out[1] = {acc};
      if (log) across<T>(n, in, out, [](const B* v, B* o) { o[0] = v[0] + v[1]; });
      else across<T>(n, in, out, [](const B* v, B* o) { o[0] = v[0] + v[1] * v[2]; });
    }
    for (std::size_t k = 0; k < r; ++k) {
      const T* const in[3] = {g + k * stride, y + k * stride, acc};
      T* const out[1] = {dx + k * stride};
      if (log) across<T>(n, in, out, [](const B* v, B* o) { o[0] = v[0] - ops::exp_of(v[1]) * v[2]; });
      else across<T>(n, in, out, [](const B* v, B* o) { o[0] = v[1] * (v[0] - v[2]); });
    }
  }

  template <class T>
  static constexpr SoftmaxColsKernels<T> kernels() {
    return SoftmaxColsKernels<T>{&forward<T>, &backward<T>};
  }
};

}  // namespace sorix::kernels
