// Philox4x32-10: the scalar reference, and the public range functions (sorix/core/philox.hpp),
// which run the active capability's block kernels (core/internal/sorix_core/kernels/philox_kernels.hpp).
#include "sorix/core/philox.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

#include "sorix_core/kernels/table.hpp"

namespace sorix::rng {

namespace {

constexpr uint32_t kM0 = 0xD2511F53u;  // Random123 PHILOX_M4x32_0
constexpr uint32_t kM1 = 0xCD9E8D57u;  // PHILOX_M4x32_1
constexpr uint32_t kW0 = 0x9E3779B9u;  // PHILOX_W32_0 (key bump)
constexpr uint32_t kW1 = 0xBB67AE85u;  // PHILOX_W32_1
constexpr int kRounds = 10;

inline uint32_t mulhilo32(uint32_t a, uint32_t b, uint32_t* hi) {
    const uint64_t p = uint64_t(a) * b;
    *hi = uint32_t(p >> 32);
    return uint32_t(p);
}

}  // namespace

Philox4x32Block philox4x32(uint64_t counter_lo64, uint64_t counter_hi64, uint64_t key) {
    uint32_t c[4] = {uint32_t(counter_lo64), uint32_t(counter_lo64 >> 32), uint32_t(counter_hi64),
                     uint32_t(counter_hi64 >> 32)};
    uint32_t k0 = uint32_t(key), k1 = uint32_t(key >> 32);
    for (int r = 0; r < kRounds; ++r) {
        if (r > 0) {
            k0 += kW0;
            k1 += kW1;
        }
        uint32_t hi0, hi1;
        const uint32_t lo0 = mulhilo32(kM0, c[0], &hi0);
        const uint32_t lo1 = mulhilo32(kM1, c[2], &hi1);
        const uint32_t n0 = hi1 ^ c[1] ^ k0, n2 = hi0 ^ c[3] ^ k1;
        c[0] = n0;
        c[1] = lo1;
        c[2] = n2;
        c[3] = lo0;
    }
    return {{c[0], c[1], c[2], c[3]}};
}

uint64_t dropout_threshold(double p) {
    if (!(p > 0.0)) return 0;  // also NaN
    if (p >= 1.0) return uint64_t(1) << 32;
    return uint64_t(std::round(std::ldexp(p, 32)));  // p * 2^32 is exact; round half away from zero
}

// -------------------------------------------------------------------------------------------------
// The range functions: the active capability's kernels (every capability gives the same bits).

void fill_u32_range(uint64_t key, uint64_t base_counter, std::size_t first, uint32_t* out, std::size_t n) {
    kernels::active().fill_u32(key, base_counter, first, out, n);
}

void fill_u32(uint64_t key, uint64_t base_counter, uint32_t* out, std::size_t n) {
    fill_u32_range(key, base_counter, 0, out, n);
}

void uniform_f32_range(uint64_t key, uint64_t base_counter, std::size_t first, float* out, std::size_t n,
                       float low, float high) {
    kernels::active().uniform_f32(key, base_counter, first, out, n, low, high);
}
void uniform_f64_range(uint64_t key, uint64_t base_counter, std::size_t first, double* out, std::size_t n,
                       double low, double high) {
    kernels::active().uniform_f64(key, base_counter, first, out, n, low, high);
}
void normal_f32_range(uint64_t key, uint64_t base_counter, std::size_t first, float* out, std::size_t n,
                      float mean, float std) {
    kernels::active().normal_f32(key, base_counter, first, out, n, mean, std);
}
void normal_f64_range(uint64_t key, uint64_t base_counter, std::size_t first, double* out, std::size_t n,
                      double mean, double std) {
    kernels::active().normal_f64(key, base_counter, first, out, n, mean, std);
}

namespace {
void check_mask_start(std::size_t first, const uint8_t* mask_bits) {
    if (mask_bits != nullptr && first % 8 != 0)
        throw std::invalid_argument("sorix::rng::dropout_forward: with mask_bits, first must be a multiple of 8, got " +
                                    std::to_string(first));
}
}  // namespace

void dropout_forward_f32(uint64_t key, uint64_t base_counter, std::size_t first, const float* x, float* y,
                         std::size_t n, uint64_t threshold, float scale, uint8_t* mask_bits) {
    check_mask_start(first, mask_bits);
    kernels::active().dropout_f32(key, base_counter, first, x, y, n, threshold, scale, mask_bits);
}
void dropout_forward_f64(uint64_t key, uint64_t base_counter, std::size_t first, const double* x, double* y,
                         std::size_t n, uint64_t threshold, double scale, uint8_t* mask_bits) {
    check_mask_start(first, mask_bits);
    kernels::active().dropout_f64(key, base_counter, first, x, y, n, threshold, scale, mask_bits);
}
void dropout_backward_bits_f32(const float* gy, const uint8_t* mask_bits, float* gx, std::size_t n, float scale) {
    kernels::active().dropout_bits_f32(gy, mask_bits, gx, n, scale);
}
void dropout_backward_bits_f64(const double* gy, const uint8_t* mask_bits, double* gx, std::size_t n,
                               double scale) {
    kernels::active().dropout_bits_f64(gy, mask_bits, gx, n, scale);
}
void dropout_backward_regen_f32(uint64_t key, uint64_t base_counter, std::size_t first, const float* gy,
                                float* gx, std::size_t n, uint64_t threshold, float scale) {
    kernels::active().dropout_f32(key, base_counter, first, gy, gx, n, threshold, scale, nullptr);
}
void dropout_backward_regen_f64(uint64_t key, uint64_t base_counter, std::size_t first, const double* gy,
                                double* gx, std::size_t n, uint64_t threshold, double scale) {
    kernels::active().dropout_f64(key, base_counter, first, gy, gx, n, threshold, scale, nullptr);
}
void bernoulli_f32_range(uint64_t key, uint64_t base_counter, std::size_t first, float* out, std::size_t n,
                         double p) {
    kernels::active().bernoulli_f32(key, base_counter, first, out, n, dropout_threshold(p));
}
void bernoulli_f64_range(uint64_t key, uint64_t base_counter, std::size_t first, double* out, std::size_t n,
                         double p) {
    kernels::active().bernoulli_f64(key, base_counter, first, out, n, dropout_threshold(p));
}

}  // namespace sorix::rng
