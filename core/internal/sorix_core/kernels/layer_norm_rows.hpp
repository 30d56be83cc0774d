#pragma once
// LayerNorm's row loops per capability (the dispatch table's layer_norm_rows_* and
// layer_norm_grads_*): each row normalised with its own mean and scale and then the affine part
// per column, and the whole backward of a block of rows in one walk over the output gradient,
// each row's values staying in L1 between its three short passes. Lanes run along a row (a
// column l per lane); the row sums are 16 chains of doubles (chain j takes the positions j,
// j + 16, ... in order, then they are folded by halves, as BatchNorm's plane moments), so each
// element's arithmetic, each row's sums and each column's chain down the rows are the same on
// every register width: the same bits on every path. Row tails are masked (nothing past a row is
// read or written).
#include <cstddef>

#include "sorix_core/kernels/arch.hpp"
#include "sorix_core/kernels/bn_kernels.hpp"

namespace sorix::kernels {

template <class A>
struct LayerNormRowsOf {
  using Bn = BnKernelsOf<A>;
  using D = typename Bn::D;

  /// For r < rows, l < L, with xhat = (x[r * L + l] - mean[r]) * scale[r] (never fused): y[r * L +
  /// l] = fma(xhat, w[l], b[l]); with w null xhat + b[l], with b null xhat * w[l], with both null
  /// xhat. y may be x.
  template <class T>
  static void forward(const T* x, const T* mean, const T* scale, const T* w, const T* b, std::size_t rows,
                      std::size_t L, T* y) {
    using B = xsimd::batch<T, A>;
    constexpr std::size_t W = B::size;
    for (std::size_t r = 0; r < rows; ++r) {
      const T* xr = x + r * L;
      T* yr = y + r * L;
      const B m(mean[r]), s(scale[r]);
      for (std::size_t l = 0; l < L; l += W) {
        const std::size_t n = L - l < W ? L - l : W;
        auto load = [n](const T* p) { return n == W ? B::load_unaligned(p) : load_first<A>(p, n); };
        const B xhat = (load(xr + l) - m) * s;
        B out = xhat;
        if (w != nullptr && b != nullptr) out = fmadd<A>(xhat, load(w + l), load(b + l));
        else if (w != nullptr) out = xhat * load(w + l);
        else if (b != nullptr) out = xhat + load(b + l);
        if (n == W) out.store_unaligned(yr + l);
        else store_first<A>(out, yr + l, n);
      }
    }
  }

  /// The gradients of forward for the output gradient g over rows [0, rows), row by row. With
  /// xhat as forward's and gh = g * w[l] (g when w is null):
  ///  - down each column, in row order from dw's and db's values: dw[l] = fma(g, xhat, dw[l])
  ///    (when dw is non-null), db[l] = db[l] + g (when db is non-null);
  ///  - when dx is non-null: the row's sums sg of gh and sd of gh * xhat (each product exact or
  ///    rounded in double), 16 chains of doubles from +0 folded by halves, then with
  ///    gm = T(sg * inv_l), k = T(sd * inv_l) (inv_l = 1.0 / L in double):
  ///    dx = ((gh - gm) - xhat * k) * scale[r] (never fused).
  /// scratch holds 2 * L values (the row's gh and xhat, reread from L1).
  template <class T>
  static void grads(const T* g, const T* x, const T* mean, const T* scale, const T* w, std::size_t rows, std::size_t L,
                    T* dx, T* dw, T* db, T* scratch) {
    using B = xsimd::batch<T, A>;
    constexpr std::size_t W = B::size;
    T* gh_row = scratch;
    T* xhat_row = scratch + L;
    const double inv_l = 1.0 / static_cast<double>(L);
    for (std::size_t r = 0; r < rows; ++r) {
      const T* gr = g + r * L;
      const T* xr = x + r * L;
      const B m(mean[r]), s(scale[r]);
      for (std::size_t l = 0; l < L; l += W) {
        const std::size_t n = L - l < W ? L - l : W;
        auto load = [n](const T* p) { return n == W ? B::load_unaligned(p) : load_first<A>(p, n); };
        auto store = [n](const B& v, T* p) {
          if (n == W) v.store_unaligned(p);
          else store_first<A>(v, p, n);
        };
        const B gv = load(gr + l), xhat = (load(xr + l) - m) * s;
        if (dw != nullptr) store(fmadd<A>(gv, xhat, load(dw + l)), dw + l);
        if (db != nullptr) store(load(db + l) + gv, db + l);
        if (dx != nullptr) {
          store(w != nullptr ? gv * load(w + l) : gv, gh_row + l);
          store(xhat, xhat_row + l);
        }
      }
      if (dx == nullptr) continue;
      double sums[2];
      row_sums(gh_row, xhat_row, L, sums);
      const B gm(static_cast<T>(sums[0] * inv_l)), k(static_cast<T>(sums[1] * inv_l));
      T* dxr = dx + r * L;
      for (std::size_t l = 0; l < L; l += W) {
        const std::size_t n = L - l < W ? L - l : W;
        if (n == W) {
          (((B::load_unaligned(gh_row + l) - gm) - B::load_unaligned(xhat_row + l) * k) * s).store_unaligned(dxr + l);
        } else {
          store_first<A>(((load_first<A>(gh_row + l, n) - gm) - load_first<A>(xhat_row + l, n) * k) * s, dxr + l, n);
        }
      }
    }
  }

 private:
  // sums[0] = the sum of gh, sums[1] = of gh * xhat (as doubles) over the row's L positions: 16
  // chains each (BatchNorm's plane-moment chains, bn_kernels.hpp), a partial last block padded
  // with +0 (which leaves a chain's bits as they are, and +0 * +0 adds +0).
  template <class T>
  static void row_sums(const T* gh, const T* xhat, std::size_t L, double (&sums)[2]) {
    constexpr std::size_t kChains = Bn::kMomentChains, WD = Bn::WD;
    typename Bn::Chains a0, a1;
    for (std::size_t v = 0; v < Bn::kChainVecs; ++v) a0[v] = a1[v] = D(0.0);
    const std::size_t l0 = L / kChains * kChains;
    for (std::size_t l = 0; l < l0; l += kChains) {
      for (std::size_t v = 0; v < Bn::kChainVecs; ++v) {
        const D gv = Bn::wide(gh + l + v * WD);
        a0[v] = a0[v] + gv;
        a1[v] = a1[v] + gv * Bn::wide(xhat + l + v * WD);
      }
    }
    for (std::size_t v = 0; l0 + v * WD < L; ++v) {
      const std::size_t at = l0 + v * WD, n = L - at < WD ? L - at : WD;
      const D gv = Bn::wide_first(gh + at, n);
      a0[v] = a0[v] + gv;
      a1[v] = a1[v] + gv * Bn::wide_first(xhat + at, n);
    }
    sums[0] = Bn::fold_chains(a0);
    sums[1] = Bn::fold_chains(a1);
  }
};

}  // namespace sorix::kernels
