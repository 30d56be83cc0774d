#pragma once
// Elementwise kernels of the kernel layer, written once for every architecture. Each element's
// value is a function of its own inputs through IEEE-exact operations and fmadd(), and a ragged
// tail goes through the same vector code on a padded buffer, so neither the register width nor
// where a chunk starts changes a bit.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "core/src/kernels/arch.hpp"

namespace sorix::kernels {

template <class A>
struct ElementwiseKernels {
  using F32 = xsimd::batch<float, A>;
  using I32 = xsimd::batch<int32_t, A>;
  static constexpr std::size_t W = F32::size;

  // out[i] = float(in[i]) / 255 bit for bit, without a divide: q0 = x * (1/255), then one
  // correction with the exact residual fma(-q0, 255, x). For the 256 bytes this is exactly the
  // correctly rounded quotient (tests/nn/test_data.cpp checks every byte).
  static F32 unit_from_byte(const F32& x) {
    const F32 inv(1.0f / 255.0f);
    const F32 q0 = x * inv;
    return fmadd(fmadd(-q0, F32(255.0f), x), inv, q0);
  }

  static void bytes_to_unit_f32(const uint8_t* in, float* out, std::size_t n) {
    alignas(64) int32_t wide[W];
    std::size_t i = 0;
    for (; i + W <= n; i += W) {
      for (std::size_t l = 0; l < W; ++l) wide[l] = in[i + l];
      unit_from_byte(xsimd::to_float(I32::load_aligned(wide))).store_unaligned(out + i);
    }
    if (i < n) {
      alignas(64) float buf[W];
      for (std::size_t l = 0; l < W; ++l) wide[l] = i + l < n ? in[i + l] : 0;
      unit_from_byte(xsimd::to_float(I32::load_aligned(wide))).store_aligned(buf);
      std::memcpy(out + i, buf, (n - i) * sizeof(float));
    }
  }

  // The core's multiply-add throughput on this path, for benchmarks (a product kernel's share of
  // it is its efficiency): 12 independent fmadd chains of W lanes, `iters` steps each, summed so
  // that no chain is dead code. 12 * W * iters multiply-adds.
  static double fma_probe(std::size_t iters) {
    F32 acc[12];
    for (int j = 0; j < 12; ++j) acc[j] = F32(0.001f * float(j + 1));
    const F32 a(0.999999f), b(1e-7f);
    for (std::size_t i = 0; i < iters; ++i) {
#pragma GCC unroll 12
      for (int j = 0; j < 12; ++j) acc[j] = fmadd(acc[j], a, b);
    }
    F32 sum(0.0f);
    for (int j = 0; j < 12; ++j) sum = sum + acc[j];
    alignas(64) float lanes[W];
    sum.store_aligned(lanes);
    double total = 0;
    for (std::size_t l = 0; l < W; ++l) total += lanes[l];
    return total;
  }
  static constexpr std::size_t kProbeLanes = W;
};

}  // namespace sorix::kernels
