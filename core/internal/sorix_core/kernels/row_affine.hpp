#pragma once
// LayerNorm's affine part per capability (the dispatch table's row_affine_* and
// row_affine_grads_*): rows of L values times a weight row plus a bias row, and its gradients in
// one pass over the output gradient. Lanes run along a row (a column l per lane), so each
// element's arithmetic, and each column's chain down the rows, is the same on every register
// width: the same bits on every path. Row tails are masked (nothing past a row is read or
// written).
#include <cstddef>

#include "sorix_core/kernels/arch.hpp"

namespace sorix::kernels {

template <class A>
struct RowAffineOf {
  /// y[r * L + l] = fma(x[r * L + l], w[l], b[l]) for r < rows, l < L; with w null x + b[l], with
  /// b null x * w[l] (not both null). y may be x.
  template <class T>
  static void forward(const T* x, const T* w, const T* b, std::size_t rows, std::size_t L, T* y) {
    using B = xsimd::batch<T, A>;
    constexpr std::size_t W = B::size;
    for (std::size_t r = 0; r < rows; ++r) {
      const T* xr = x + r * L;
      T* yr = y + r * L;
      for (std::size_t l = 0; l < L; l += W) {
        const std::size_t n = L - l < W ? L - l : W;
        const B xv = n == W ? B::load_unaligned(xr + l) : load_first<A>(xr + l, n);
        B out;
        if (w == nullptr) out = xv + (n == W ? B::load_unaligned(b + l) : load_first<A>(b + l, n));
        else if (b == nullptr) out = xv * (n == W ? B::load_unaligned(w + l) : load_first<A>(w + l, n));
        else
          out = fmadd<A>(xv, n == W ? B::load_unaligned(w + l) : load_first<A>(w + l, n),
                         n == W ? B::load_unaligned(b + l) : load_first<A>(b + l, n));
        if (n == W) out.store_unaligned(yr + l);
        else store_first<A>(out, yr + l, n);
      }
    }
  }

  /// The gradients of forward for the output gradient g over rows [0, rows): dx = g * w[l] (when
  /// dx is non-null; w non-null), and down each column, in row order from dw's and db's values:
  /// dw[l] = fma(g, x, dw[l]) (x: forward's input; when dw is non-null), db[l] += g (when db is
  /// non-null). A block of columns stays in registers while the rows go by.
  template <class T>
  static void grads(const T* g, const T* x, const T* w, std::size_t rows, std::size_t L, T* dx, T* dw, T* db) {
    using B = xsimd::batch<T, A>;
    constexpr std::size_t W = B::size;
    for (std::size_t l = 0; l < L; l += W) {
      const std::size_t n = L - l < W ? L - l : W;
      auto load = [n](const T* p) { return n == W ? B::load_unaligned(p) : load_first<A>(p, n); };
      auto store = [n](const B& v, T* p) {
        if (n == W) v.store_unaligned(p);
        else store_first<A>(v, p, n);
      };
      B aw = dw != nullptr ? load(dw + l) : B(T(0)), ab = db != nullptr ? load(db + l) : B(T(0));
      const B wv = dx != nullptr ? load(w + l) : B(T(0));
      for (std::size_t r = 0; r < rows; ++r) {
        const B gv = load(g + r * L + l);
        if (dx != nullptr) store(gv * wv, dx + r * L + l);
        if (dw != nullptr) aw = fmadd<A>(gv, load(x + r * L + l), aw);
        if (db != nullptr) ab = ab + gv;
      }
      if (dw != nullptr) store(aw, dw + l);
      if (db != nullptr) store(ab, db + l);
    }
  }
};

}  // namespace sorix::kernels
