#pragma once
// The chunk loops every elementwise kernel runs. An op of the dispatch table (elementwise_ops.hpp,
// with a `kind`) runs the active CPU capability's kernel on float and double; any other functor
// runs here, on the baseline's batches. Either way the tail is padded into one more batch, so
// every element goes through the same SIMD code (an element's value never depends on where a
// chunk boundary fell). int64 runs a scalar loop.
//
// An op is a functor with a templated operator() that works both on T and on xsimd::batch<T>.
// Heavy (includes xsimd): include only from .cpp files.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <type_traits>

// g++ 12 reports false -Wuninitialized warnings inside its own AVX-512 intrinsic headers
// (_mm512_undefined_*; GCC bug 105593, fixed in 13) once xsimd batches are inlined. The warning
// is raised after inlining, where a push/pop around the include no longer applies, so for g++ < 13
// it is off in the kernel translation units that include this header, and nowhere else.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <xsimd/xsimd.hpp>

#include "sorix_core/kernels/elementwise_ops.hpp"
#include "sorix_core/kernels/table.hpp"
#include "sorix/parallel/parallel.hpp"

namespace sorix::kernels {

template <class T>
using batch = xsimd::batch<T>;

/// The element type of a scalar or of a batch.
template <class V>
struct scalar_of { using type = V; };
template <class T, class A>
struct scalar_of<xsimd::batch<T, A>> { using type = T; };
template <class V>
using scalar_of_t = typename scalar_of<V>::type;

template <class T>
inline constexpr bool use_simd = std::is_floating_point_v<T>;

template <class T>
inline constexpr std::size_t width() {
  if constexpr (use_simd<T>) {
    return batch<T>::size;
  } else {
    return 1;
  }
}

using ops::choose;
using ops::exp_of;
using ops::ExpOp;
using ops::log_of;
using ops::one_if;

/// An op of the dispatch table (elementwise_ops.hpp): it names its kind and parameters.
template <class Op>
concept TableOp = requires(const Op& op) {
  Op::kind;
  op.params();
};

/// y[i] = op(x[i]) for i in [0, n), serial (one chunk's work).
template <class T, class Op>
inline void unary_serial(const T* x, T* y, std::size_t n, const Op& op) {
  if constexpr (use_simd<T> && TableOp<Op>) {  // the active CPU capability's kernel
    if constexpr (std::is_same_v<T, float>) active().unary_f32(Op::kind, x, y, n, op.params());
    else active().unary_f64(Op::kind, x, y, n, op.params());
  } else if constexpr (use_simd<T>) {
    constexpr std::size_t W = batch<T>::size;
    std::size_t i = 0;
    for (; i + W <= n; i += W) op(batch<T>::load_unaligned(x + i)).store_unaligned(y + i);
    if (i < n) {
      alignas(64) T buf[W] = {};
      std::copy(x + i, x + n, buf);
      op(batch<T>::load_aligned(buf)).store_aligned(buf);
      std::copy(buf, buf + (n - i), y + i);
    }
  } else {
    for (std::size_t i = 0; i < n; ++i) y[i] = op(x[i]);
  }
}

/// y[i] = op(x[i]) over fixed chunks in the library arena.
template <class T, class Op>
inline void unary_map(const T* x, T* y, std::size_t n, const Op& op) {
  parallel::parallel_for(
      n, parallel::kElementwiseChunk, [&](std::size_t b, std::size_t e) { unary_serial(x + b, y + b, e - b, op); },
      parallel::kElementwiseGrain);
}

/// out[i] = op(a[i*sa], b[i*sb]) for i in [0, n) where sa, sb are 1 (a row) or 0 (a broadcast scalar).
template <class T, class Op>
inline void binary_serial(const T* a, bool a_vec, const T* b, bool b_vec, T* out, std::size_t n,
                          const Op& op) {
  if constexpr (use_simd<T> && TableOp<Op>) {  // the active CPU capability's kernel
    if constexpr (std::is_same_v<T, float>) active().binary_f32(Op::kind, a, a_vec, b, b_vec, out, n, op.params());
    else active().binary_f64(Op::kind, a, a_vec, b, b_vec, out, n, op.params());
  } else if constexpr (use_simd<T>) {
    constexpr std::size_t W = batch<T>::size;
    const batch<T> as(a[0]), bs(b[0]);
    auto load = [](const T* p, bool vec, const batch<T>& s, std::size_t i) {
      return vec ? batch<T>::load_unaligned(p + i) : s;
    };
    std::size_t i = 0;
    if (a_vec && b_vec) {
      for (; i + W <= n; i += W)
        op(batch<T>::load_unaligned(a + i), batch<T>::load_unaligned(b + i)).store_unaligned(out + i);
    } else {
      for (; i + W <= n; i += W) op(load(a, a_vec, as, i), load(b, b_vec, bs, i)).store_unaligned(out + i);
    }
    if (i < n) {
      alignas(64) T ba[W] = {};
      alignas(64) T bb[W] = {};
      for (std::size_t k = i; k < n; ++k) {
        ba[k - i] = a_vec ? a[k] : a[0];
        bb[k - i] = b_vec ? b[k] : b[0];
      }
      op(batch<T>::load_aligned(ba), batch<T>::load_aligned(bb)).store_aligned(ba);
      std::copy(ba, ba + (n - i), out + i);
    }
  } else {
    for (std::size_t i = 0; i < n; ++i) out[i] = op(a[a_vec ? i : 0], b[b_vec ? i : 0]);
  }
}

}  // namespace sorix::kernels
