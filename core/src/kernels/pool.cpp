// Pooling plane kernels (pool.hpp).
#include "core/src/kernels/pool.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace sorix::kernels {

template <class T>
void max_pool_plane(const T* x, const MaxPoolGeometry& g, T* y, std::int64_t* indices) {
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
