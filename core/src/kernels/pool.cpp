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

// Every window inside the plane (no padding, no dilation, no ceil-mode overhang): the same rule
// as the general loop without its bounds tests, and without branches (random data mispredicts a
// branch on every other tap): the winner is selected with masks on the bits.
template <class T>
void max_pool_interior(const T* x, const MaxPoolGeometry& geometry, T* y, std::int64_t* indices) {
  using U = typename SameSizeUint<T>::type;
  const MaxPoolGeometry g = geometry;  // a local copy: stores to y / indices cannot alias it
  auto pick = [](T v, std::uint64_t i, T& best, std::uint64_t& at) {
    const bool take = (v > best) | (v != v);  // v != v: NaN
    const U m = U(0) - static_cast<U>(take);
    best = std::bit_cast<T>((std::bit_cast<U>(v) & m) | (std::bit_cast<U>(best) & ~m));
    const std::uint64_t m64 = std::uint64_t{0} - static_cast<std::uint64_t>(take);
    at = (i & m64) | (at & ~m64);
  };
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
        pick(x[r0 + c + 1], r0 + c + 1, best, at);
        pick(x[r1 + c], r1 + c, best, at);
        pick(x[r1 + c + 1], r1 + c + 1, best, at);
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
          pick(x[row + kj], row + kj, best, at);
        }
      }
      y[oh * g.OW + ow] = best;
      indices[oh * g.OW + ow] = static_cast<std::int64_t>(at);
    }
  }
}
}  // namespace

template <class T>
void max_pool_plane(const T* x, const MaxPoolGeometry& g, T* y, std::int64_t* indices) {
  if (g.ph == 0 && g.pw == 0 && g.dh == 1 && g.dw == 1 && (g.OH - 1) * g.sh + g.kh <= g.H &&
      (g.OW - 1) * g.sw + g.kw <= g.W) {
    max_pool_interior(x, g, y, indices);
    return;
  }
  for (std::size_t oh = 0; oh < g.OH; ++oh) {
    for (std::size_t ow = 0; ow < g.OW; ++ow) {
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
