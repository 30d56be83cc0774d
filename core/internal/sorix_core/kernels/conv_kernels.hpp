#pragma once
// col2im's inner loop as a per-capability kernel (the dispatch table's add_rows_*): the runs of a
// stride-1 tap are added to the image rows with full registers and one masked register for each
// row's tail (image rows are short: 28 or 14 values in the Fashion-MNIST CNN). Each element gets
// one addition per call, so the values are those of the scalar loop on every capability.
#include <cstddef>

#include "sorix_core/kernels/arch.hpp"

namespace sorix::kernels {

template <class A>
struct ConvKernelsOf {
  /// dst[r * dst_stride + i] += src[r * src_stride + i] for r < rows, i < n.
  template <class T>
  static void add_rows(T* dst, std::size_t dst_stride, const T* src, std::size_t src_stride, std::size_t rows,
                       std::size_t n) {
    using B = xsimd::batch<T, A>;
    constexpr std::size_t L = B::size;
    for (std::size_t r = 0; r < rows; ++r) {
      T* d = dst + r * dst_stride;
      const T* s = src + r * src_stride;
      std::size_t i = 0;
      for (; i + L <= n; i += L) (B::load_unaligned(d + i) + B::load_unaligned(s + i)).store_unaligned(d + i);
      if (i < n) store_first<A>(load_first<A>(d + i, n - i) + load_first<A>(s + i, n - i), d + i, n - i);
    }
  }
};

}  // namespace sorix::kernels
