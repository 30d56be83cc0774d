// Pooling plane kernels (pool.hpp).
#include "sorix_core/kernels/pool.hpp"

#include "sorix_core/kernels/table.hpp"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cmath>
#include <limits>
#include <type_traits>

namespace sorix::kernels {

namespace {
template <class T> struct SameSizeUint;
template <> struct SameSizeUint<float> { using type = std::uint32_t; };
template <> struct SameSizeUint<double> { using type = std::uint64_t; };

// The general loop's rule for one later tap, without a branch (random data mispredicts a branch
// on every other tap): v (at index i) replaces the best so far when greater or NaN, selected with
// masks on the bits.
template <class T>
inline void pick(T v, std::uint64_t i, T& best, std::uint64_t& at) {
  using U = typename SameSizeUint<T>::type;
  const bool take = (v > best) | (v != v);  // v != v: NaN
  const U m = U(0) - static_cast<U>(take);
  best = std::bit_cast<T>((std::bit_cast<U>(v) & m) | (std::bit_cast<U>(best) & ~m));
  const std::uint64_t m64 = std::uint64_t{0} - static_cast<std::uint64_t>(take);
  at = (i & m64) | (at & ~m64);
}

// Every window inside the plane (no padding, no dilation, no ceil-mode overhang): the same rule
// as the general loop without its bounds tests, and without branches: the winner is selected
// with masks on the bits.
template <class T>
void max_pool_interior(const T* x, const MaxPoolGeometry& geometry, T* y, std::int64_t* indices) {
  const MaxPoolGeometry g = geometry;  // a local copy: stores to y / indices cannot alias it
  if (g.kh == 2 && g.kw == 2 && g.sw == 2) {  // the common 2 x 2 window: the active capability's kernel
    if constexpr (std::is_same_v<T, float>) active().max_pool_2x2_f32(x, g.W, g.sh, g.OH, g.OW, y, indices);
    else active().max_pool_2x2_f64(x, g.W, g.sh, g.OH, g.OW, y, indices);
    return;
  }
  if (g.kh == 2 && g.kw == 2) {  // other 2 x 2 windows: taps in the general loop's order
    for (std::size_t oh = 0; oh < g.OH; ++oh) {
      const std::size_t r0 = oh * g.sh * g.W, r1 = r0 + g.W;
      T* yr = y + oh * g.OW;
      std::int64_t* ir = indices + oh * g.OW;
      for (std::size_t ow = 0; ow < g.OW; ++ow) {
        const std::size_t c = ow * g.sw;
        T best = x[r0 + c];
        std::uint64_t at = r0 + c;
        pick<T>(x[r0 + c + 1], r0 + c + 1, best, at);
        pick<T>(x[r1 + c], r1 + c, best, at);
        pick<T>(x[r1 + c + 1], r1 + c + 1, best, at);
        yr[ow] = best;
        ir[ow] = static_cast<std::int64_t>(at);
      }
    }
    return;
  }
  for (std::size_t oh = 0; oh < g.OH; ++oh) {
    for (std::size_t ow = 0; ow < g.OW; ++ow) {
      const std::size_t first = oh * g.sh * g.W + ow * g.sw;
      T best = x[first];
      std::uint64_t at = first;
      for (std::size_t ki = 0; ki < g.kh; ++ki) {
        const std::size_t row = first + ki * g.W;
        for (std::size_t kj = (ki == 0 ? 1 : 0); kj < g.kw; ++kj) {
          pick<T>(x[row + kj], row + kj, best, at);
        }
      }
      y[oh * g.OW + ow] = best;
      indices[oh * g.OW + ow] = static_cast<std::int64_t>(at);
    }
  }
}
// Outputs [oh0, oh1) x [ow0, ow1) of a padded or dilated pool whose windows have no tap in the
// padding: the general loop's rule (taps in (ki, kj) order, the first one taken) without its
// bounds tests, branch-free.
template <class T>
void max_pool_inside(const T* x, const MaxPoolGeometry& geometry, std::size_t oh0, std::size_t oh1, std::size_t ow0,
                     std::size_t ow1, T* y, std::int64_t* indices) {
  const MaxPoolGeometry g = geometry;  // a local copy: stores to y / indices cannot alias it
  // kSide outputs of a row side by side: independent chains of picks (one output's taps are a
  // chain of dependent selections, latency-bound alone).
  constexpr std::size_t kSide = 4;
  for (std::size_t oh = oh0; oh < oh1; ++oh) {
    std::size_t ow = ow0;
    for (; ow + kSide <= ow1; ow += kSide) {
      T best[kSide];
      std::uint64_t at[kSide];
      for (std::size_t j = 0; j < kSide; ++j) {
        at[j] = (oh * g.sh - g.ph) * g.W + ((ow + j) * g.sw - g.pw);
        best[j] = x[at[j]];
      }
      for (std::size_t ki = 0; ki < g.kh; ++ki)
        for (std::size_t kj = (ki == 0 ? 1 : 0); kj < g.kw; ++kj) {
          const std::size_t tap = ki * g.dh * g.W + kj * g.dw;
          for (std::size_t j = 0; j < kSide; ++j) {
            const std::size_t i = (oh * g.sh - g.ph) * g.W + ((ow + j) * g.sw - g.pw) + tap;
            pick<T>(x[i], i, best[j], at[j]);
          }
        }
      for (std::size_t j = 0; j < kSide; ++j) {
        y[oh * g.OW + ow + j] = best[j];
        indices[oh * g.OW + ow + j] = static_cast<std::int64_t>(at[j]);
      }
    }
    for (; ow < ow1; ++ow) {
      const std::size_t first = (oh * g.sh - g.ph) * g.W + (ow * g.sw - g.pw);
      T best = x[first];
      std::uint64_t at = first;
      for (std::size_t ki = 0; ki < g.kh; ++ki) {
        const std::size_t row = first + ki * g.dh * g.W;
        for (std::size_t kj = (ki == 0 ? 1 : 0); kj < g.kw; ++kj) pick<T>(x[row + kj * g.dw], row + kj * g.dw, best, at);
      }
      y[oh * g.OW + ow] = best;
      indices[oh * g.OW + ow] = static_cast<std::int64_t>(at);
    }
  }
}

// The outputs [lo, hi) along one axis whose windows lie inside [0, n): o * s >= p and
// o * s - p + (k - 1) * d <= n - 1.
struct InsideRange {
  std::size_t lo, hi;
};
InsideRange inside_range(std::size_t n, std::size_t k, std::size_t s, std::size_t p, std::size_t d, std::size_t outs) {
  const std::size_t lo = (p + s - 1) / s;
  const std::size_t reach = (k - 1) * d;  // the window's last tap after its first
  if (n + p < reach + 1) return {lo, lo};  // no window fits
  const std::size_t hi = std::min(outs, (n - 1 + p - reach) / s + 1);
  return {lo, std::max(lo, hi)};
}
}  // namespace

template <class T>
void max_pool_plane(const T* x, const MaxPoolGeometry& g, T* y, std::int64_t* indices) {
  if (g.ph == 0 && g.pw == 0 && g.dh == 1 && g.dw == 1 && (g.OH - 1) * g.sh + g.kh <= g.H &&
      (g.OW - 1) * g.sw + g.kw <= g.W) {
    max_pool_interior(x, g, y, indices);
    return;
  }
  // The windows with no tap in the padding (most of a large plane's) branch-free; the border's
  // below with bounds tests.
  const InsideRange rows = inside_range(g.H, g.kh, g.sh, g.ph, g.dh, g.OH);
  const InsideRange cols = inside_range(g.W, g.kw, g.sw, g.pw, g.dw, g.OW);
  max_pool_inside(x, g, rows.lo, rows.hi, cols.lo, cols.hi, y, indices);
  for (std::size_t oh = 0; oh < g.OH; ++oh) {
    const bool inside_row = oh >= rows.lo && oh < rows.hi;
    for (std::size_t ow = 0; ow < g.OW; ++ow) {
      if (inside_row && ow >= cols.lo && ow < cols.hi) {  // done above
        ow = cols.hi - 1;
        continue;
      }
      T best = -std::numeric_limits<T>::infinity();
      std::int64_t at = -1;
      for (std::size_t ki = 0; ki < g.kh; ++ki) {
        const std::size_t hp = oh * g.sh + ki * g.dh;  // row in padded coordinates
        if (hp < g.ph || hp - g.ph >= g.H) continue;
        const std::size_t h = hp - g.ph;
        for (std::size_t kj = 0; kj < g.kw; ++kj) {
          const std::size_t wp = ow * g.sw + kj * g.dw;
          if (wp < g.pw || wp - g.pw >= g.W) continue;
          const std::size_t off = h * g.W + (wp - g.pw);
          const T v = x[off];
          if (at < 0 || v > best || std::isnan(v)) {
            best = v;
            at = static_cast<std::int64_t>(off);
          }
        }
      }
      y[oh * g.OW + ow] = best;
      indices[oh * g.OW + ow] = at;
    }
  }
}

template <class T>
void max_pool_backward_plane(const T* g, const std::int64_t* indices, std::size_t outputs, T* dx, std::size_t plane) {
  std::fill(dx, dx + plane, T(0));
  for (std::size_t p = 0; p < outputs; ++p)
    if (indices[p] >= 0) dx[indices[p]] += g[p];  // -1: a window wholly in the padding (never, by the ops' checks)
}

template <class T>
void max_pool_gather_plane(const T* gx, const std::int64_t* indices, std::size_t outputs, T* y) {
  for (std::size_t p = 0; p < outputs; ++p) y[p] = indices[p] >= 0 ? gx[indices[p]] : T(0);
}

template <class T>
void avg_pool_plane(const T* x, std::size_t W, const PoolWindow* rows, std::size_t OH, const PoolWindow* cols,
                    std::size_t OW, const double* divisor, T* y) {
  for (std::size_t oh = 0; oh < OH; ++oh) {
    for (std::size_t ow = 0; ow < OW; ++ow) {
      T s = T(0);
      for (std::size_t h = rows[oh].lo; h < rows[oh].hi; ++h)
        for (std::size_t w = cols[ow].lo; w < cols[ow].hi; ++w) s += x[h * W + w];
      y[oh * OW + ow] = s / static_cast<T>(divisor[oh * OW + ow]);
    }
  }
}

template <class T>
void avg_pool_backward_plane(const T* g, std::size_t H, std::size_t W, const PoolWindow* rows, std::size_t OH,
                             const PoolWindow* cols, std::size_t OW, const double* divisor, T* dx) {
  std::fill(dx, dx + H * W, T(0));
  for (std::size_t oh = 0; oh < OH; ++oh) {
    for (std::size_t ow = 0; ow < OW; ++ow) {
      const T v = g[oh * OW + ow] / static_cast<T>(divisor[oh * OW + ow]);
      for (std::size_t h = rows[oh].lo; h < rows[oh].hi; ++h)
        for (std::size_t w = cols[ow].lo; w < cols[ow].hi; ++w) dx[h * W + w] += v;
    }
  }
}

template void max_pool_plane<float>(const float*, const MaxPoolGeometry&, float*, std::int64_t*);
template void max_pool_plane<double>(const double*, const MaxPoolGeometry&, double*, std::int64_t*);
template void max_pool_backward_plane<float>(const float*, const std::int64_t*, std::size_t, float*, std::size_t);
template void max_pool_backward_plane<double>(const double*, const std::int64_t*, std::size_t, double*, std::size_t);
template void max_pool_gather_plane<float>(const float*, const std::int64_t*, std::size_t, float*);
template void max_pool_gather_plane<double>(const double*, const std::int64_t*, std::size_t, double*);
template void avg_pool_plane<float>(const float*, std::size_t, const PoolWindow*, std::size_t, const PoolWindow*,
                                    std::size_t, const double*, float*);
template void avg_pool_plane<double>(const double*, std::size_t, const PoolWindow*, std::size_t, const PoolWindow*,
                                     std::size_t, const double*, double*);
template void avg_pool_backward_plane<float>(const float*, std::size_t, std::size_t, const PoolWindow*, std::size_t,
                                             const PoolWindow*, std::size_t, const double*, float*);
template void avg_pool_backward_plane<double>(const double*, std::size_t, std::size_t, const PoolWindow*, std::size_t,
                                              const PoolWindow*, std::size_t, const double*, double*);

}  // namespace sorix::kernels
