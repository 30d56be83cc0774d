#pragma once
// Pooling kernels over one H x W plane (the ops run the N * C planes as parallel tasks).
//
// Max pooling takes, for each output position, the largest of its kh x kw taps (stride, padding,
// dilation; padded taps never win); a NaN wins over every number, and the index kept is the
// plane offset h * W + w of the winner (the first of equal maxima, the last NaN: PyTorch's
// rule). Its backward adds each output gradient to the element its index names, in output order.
//
// Average pooling sums each output position's window (rows [row.lo, row.hi) x columns
// [col.lo, col.hi), row-major order) and divides by the window's divisor; adaptive pooling is the
// same with PyTorch's adaptive windows. The backward adds g / divisor to every element of each
// window, in output order. Every kernel is serial and scalar (the same bits for any thread count
// and on every CPU), except the common 2 x 2 window with column stride 2, which max_pool_plane
// hands to the active capability's vector kernel (pool_kernels.hpp: a selection, so the same
// values and indices).
#include <cstddef>
#include <cstdint>

namespace sorix::kernels {

struct MaxPoolGeometry {
  std::size_t H, W, kh, kw, sh, sw, ph, pw, dh, dw, OH, OW;
};

template <class T>
void max_pool_plane(const T* x, const MaxPoolGeometry& g, T* y, std::int64_t* indices);

/// dx (H x W, overwritten) = the sum of g[p] over the outputs p whose index names each element.
template <class T>
void max_pool_backward_plane(const T* g, const std::int64_t* indices, std::size_t outputs, T* dx, std::size_t plane);

/// y[p] = gx[indices[p]]: the adjoint of max_pool_backward_plane (second derivatives).
template <class T>
void max_pool_gather_plane(const T* gx, const std::int64_t* indices, std::size_t outputs, T* y);

/// A window along one dim: elements [lo, hi) of the input.
struct PoolWindow {
  std::size_t lo, hi;
};

/// y[oh * OW + ow] = sum of the window / divisor[oh * OW + ow].
template <class T>
void avg_pool_plane(const T* x, std::size_t W, const PoolWindow* rows, std::size_t OH, const PoolWindow* cols,
                    std::size_t OW, const double* divisor, T* y);

/// dx (H x W, overwritten): every element of each window gets g / divisor.
template <class T>
void avg_pool_backward_plane(const T* g, std::size_t H, std::size_t W, const PoolWindow* rows, std::size_t OH,
                             const PoolWindow* cols, std::size_t OW, const double* divisor, T* dx);

}  // namespace sorix::kernels
