#pragma once
// Builds the dispatch table of one architecture from the kernel templates. Included only by the
// capability translation units (cap_*.cpp), each compiled with its capability's flags.
#include "sorix_core/kernels/bn_kernels.hpp"
#include "sorix_core/kernels/conv_kernels.hpp"
#include "sorix_core/kernels/elementwise_kernels.hpp"
#include "sorix_core/kernels/gemm_kernels.hpp"
#include "sorix_core/kernels/index_kernels.hpp"
#include "sorix_core/kernels/layer_norm_rows.hpp"
#include "sorix_core/kernels/optim_kernels.hpp"
#include "sorix_core/kernels/philox_kernels.hpp"
#include "sorix_core/kernels/pool_kernels.hpp"
#include "sorix_core/kernels/softmax_cols_kernels.hpp"
#include "sorix_core/kernels/table.hpp"

namespace sorix::kernels {

template <class A>
constexpr KernelTable make_table(const char* name) {
  using P = PhiloxKernels<A>;
  return KernelTable{
      name,
      &P::fill_u32_range,
      &P::uniform_f32_range,
      &P::uniform_f64_range,
      &P::normal_f32_range,
      &P::normal_f64_range,
      &P::template dropout<float>,
      &P::template dropout<double>,
      &P::template dropout_backward_bits<float>,
      &P::template dropout_backward_bits<double>,
      &P::template bernoulli<float>,
      &P::template bernoulli<double>,
      &ElementwiseKernels<A>::template unary<float>,
      &ElementwiseKernels<A>::template unary<double>,
      &ElementwiseKernels<A>::template binary<float>,
      &ElementwiseKernels<A>::template binary<double>,
      &ElementwiseKernels<A>::template sum<float>,
      &ElementwiseKernels<A>::template sum<double>,
      &ElementwiseKernels<A>::template softmax_rows<float>,
      &ElementwiseKernels<A>::template softmax_rows<double>,
      &OptimKernels<A>::template sgd<float>,
      &OptimKernels<A>::template sgd<double>,
      &OptimKernels<A>::template rmsprop<float>,
      &OptimKernels<A>::template rmsprop<double>,
      &OptimKernels<A>::template adam<float>,
      &OptimKernels<A>::template adam<double>,
      &OptimKernels<A>::template adagrad<float>,
      &OptimKernels<A>::template adagrad<double>,
      &ElementwiseKernels<A>::bytes_to_unit_f32,
      IndexKernelsOf<A>::template kernels<float>(),
      IndexKernelsOf<A>::template kernels<double>(),
      IndexKernelsOf<A>::template kernels<std::int64_t>(),
      BnKernelsOf<A>::template kernels<float>(),
      BnKernelsOf<A>::template kernels<double>(),
      SoftmaxColsKernelsOf<A>::template kernels<float>(),
      SoftmaxColsKernelsOf<A>::template kernels<double>(),
      &IndexKernelsOf<A>::gather_rows,
      &PoolKernelsOf<A>::template max_pool_2x2<float>,
      &PoolKernelsOf<A>::template max_pool_2x2<double>,
      &ConvKernelsOf<A>::template col2im_s1<float>,
      &ConvKernelsOf<A>::template col2im_s1<double>,
      &ConvKernelsOf<A>::transpose_f32,
      &ConvKernelsOf<A>::template conv_direct<float>,
      &ConvKernelsOf<A>::template conv_direct<double>,
      &ConvKernelsOf<A>::template depthwise_grad_sums<float>,
      &ConvKernelsOf<A>::template depthwise_grad_sums<double>,
      &ConvKernelsOf<A>::winograd_input_f32,
      &ConvKernelsOf<A>::winograd_output_f32,
      &ConvKernelsOf<A>::winograd_output_adjoint_f32,
      &ConvKernelsOf<A>::winograd_input_adjoint_f32,
      &LayerNormRowsOf<A>::template forward<float>,
      &LayerNormRowsOf<A>::template forward<double>,
      &LayerNormRowsOf<A>::template grads<float>,
      &LayerNormRowsOf<A>::template grads<double>,
      &ElementwiseKernels<A>::fma_probe,
      ElementwiseKernels<A>::kProbeLanes,
      GemmKernels<A, float>::kernel(),
      GemmKernels<A, float, true>::kernel(),
      GemmKernels<A, double>::kernel(),
      GemmKernels<A, double, true>::kernel(),
  };
}

}  // namespace sorix::kernels
