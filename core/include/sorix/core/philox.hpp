// sorix/core/philox.hpp — counter-based random kernels (Philox4x32-10) on raw pointers.
//
// The generator
// -------------
// Philox4x32-10 (Salmon et al., SC'11), bit-identical to Random123's philox4x32 with 10 rounds:
// a pure function (128-bit counter, 64-bit key) -> four 32-bit words. Known answer:
// counter 0, key 0 -> 6627e8d5 e169c58d bc57ac4c 9b00dbd8.
//
// Packing of our integers into Random123's arrays (little-endian word order):
//   ctr.v = { lo32(counter_lo64), hi32(counter_lo64), lo32(counter_hi64), hi32(counter_hi64) }
//   key.v = { lo32(key),          hi32(key) }
//
// The stream of an op
// -------------------
// An op is given (key, base_counter): the key is the generator's seed, base_counter its offset.
// The op's word stream is
//     word w  =  philox4x32(counter = base_counter + w/4, key).v[w % 4]
// where the counter sum is a 128-bit sum (carry out of the low 64 bits goes into counter_hi64).
// Every output element is a pure function of (key, base_counter, element index j), so any
// element range [first, first + n) can be produced independently — a parallel chunk generates
// exactly its piece, and the result never depends on how the index space was cut or which thread
// ran which piece. Every function here is pure (no global state) and thread-safe; `out` ranges of
// concurrent calls must simply not overlap.
//
// Element -> word mapping (fixed; it defines the numbers, tests pin it):
//   fill_u32:       element j = word j.
//   uniform_f32:    element j = word j:                 u = (w >> 8) * 2^-24 in [0, 1).
//   uniform_f64:    element j = words 2j (lo), 2j+1 (hi):
//                                  u = (((uint64)word[2j+1] << 32 | word[2j]) >> 11) * 2^-53.
//   normal_f32:     pair k = elements (2k, 2k+1) uses words 2k and 2k+1 (both in counter k/2):
//                     u1 = ((word[2k] >> 8) + 1) * 2^-24 in (0, 1]   (never log(0))
//                     u2 = (word[2k+1] >> 8) * 2^-24     in [0, 1)
//                     r = sqrt(-2 log u1), z[2k] = r cos(2 pi u2), z[2k+1] = r sin(2 pi u2).
//   normal_f64:     pair k = elements (2k, 2k+1) uses the two 53-bit values of counter k:
//                     u1 = (((word[4k+1] << 32 | word[4k]) >> 11) + 1) * 2^-53 in (0, 1]
//                     u2 = ((word[4k+3] << 32 | word[4k+2]) >> 11) * 2^-53      in [0, 1)
//                     then as for f32 (in double).
//   dropout_*:      element j = word j (for float and double alike, so masks agree across dtypes).
//   bernoulli_*:    element j = word j.
// A range may start at any index, odd ones included: a normal pair is always computed whole.
//
// Affine maps: uniform = min(fma(u, high - low, low), largest value below high) so the result stays
// in [low, high) despite rounding (requires low < high, both finite, high - low finite; low == high
// gives low). normal = fma(z, std, mean). Each fma is one rounding on every CPU (emulated exactly
// where the CPU has no FMA instruction).
// The transcendental functions in the normal kernels are sorix's own log and sin/cos of 2 pi u
// (core/internal/sorix_core/kernels/math.hpp); every element, including range heads and tails, goes through the same
// vector code, so a value does not depend on where a range starts or ends, and every CPU capability
// gives the same bits (the kernels run on the active one: sorix/core/cpu.hpp).
//
// Counters consumed by a draw of n elements (advance the generator's offset by this much):
//   counters_for_u32(n) = ceil(n / 4): fill_u32, uniform_f32, normal_f32, dropout_* (any dtype),
//                                      bernoulli_* (any dtype).
//   counters_for_f64(n) = ceil(n / 2): uniform_f64, normal_f64.
//
// Threshold tests (exact integer comparisons on the 32-bit word w):
//   t = dropout_threshold(p) = round(p * 2^32) (round half away from zero), saturating in [0, 2^32].
//   dropout keeps element j iff w >= t  -> P(drop) = t / 2^32, exactly p to within 2^-33.
//   bernoulli gives 1 iff w < t        -> P(1)    = t / 2^32.
//   p == 0 -> t = 0 (dropout keeps all); p == 1 -> t = 2^32 (dropout keeps none).
//
// These kernels trust their arguments (no allocation, no exceptions) except where noted; user-facing
// checks (p in [0, 1], shapes) belong to the op that calls them.
#pragma once

#include <cstddef>
#include <cstdint>

namespace sorix::rng {

/// Four 32-bit output words of one Philox4x32-10 evaluation.
struct Philox4x32Block {
    uint32_t v[4];
};

/// Scalar reference: Philox4x32-10 of the 128-bit counter (counter_hi64:counter_lo64) under `key`.
/// Portable and simple; the specification the vector kernels are tested against.
/// Note: Random123's <Random123/philox.h> defines a function-like macro philox4x32(c, k); in a file
/// that includes both, call this as (sorix::rng::philox4x32)(lo, hi, key).
Philox4x32Block philox4x32(uint64_t counter_lo64, uint64_t counter_hi64, uint64_t key);

/// Counters consumed by n elements that use one 32-bit word each (see the table above).
constexpr uint64_t counters_for_u32(std::size_t n) { return n / 4 + (n % 4 != 0); }
/// Same as counters_for_u32: uniform_f32 and normal_f32 use one word per element.
constexpr uint64_t counters_for_f32(std::size_t n) { return counters_for_u32(n); }
/// Counters consumed by n elements that use two 32-bit words each (uniform_f64, normal_f64).
constexpr uint64_t counters_for_f64(std::size_t n) { return n / 2 + (n % 2 != 0); }

/// out[i] = word (first + i) of the stream (key, base_counter), i in [0, n).
void fill_u32_range(uint64_t key, uint64_t base_counter, std::size_t first, uint32_t* out, std::size_t n);
/// fill_u32_range with first == 0.
void fill_u32(uint64_t key, uint64_t base_counter, uint32_t* out, std::size_t n);

/// out[i] = element (first + i) of a uniform draw on [low, high).
void uniform_f32_range(uint64_t key, uint64_t base_counter, std::size_t first, float* out, std::size_t n,
                       float low, float high);
void uniform_f64_range(uint64_t key, uint64_t base_counter, std::size_t first, double* out, std::size_t n,
                       double low, double high);

/// out[i] = element (first + i) of a normal draw N(mean, std^2) (Box-Muller, mapping above).
void normal_f32_range(uint64_t key, uint64_t base_counter, std::size_t first, float* out, std::size_t n,
                      float mean, float std);
void normal_f64_range(uint64_t key, uint64_t base_counter, std::size_t first, double* out, std::size_t n,
                      double mean, double std);

/// round(p * 2^32) saturated to [0, 2^32]; NaN or p <= 0 gives 0, p >= 1 gives 2^32.
uint64_t dropout_threshold(double p);

/// Fused dropout forward, one pass over x: for element j = first + i, i in [0, n):
///     keep = word j >= threshold;  y[i] = keep ? x[i] * scale : +0   (a dropped NaN gives 0).
/// If mask_bits != nullptr, also writes the keep mask: bit (i % 8) of mask_bits[i / 8] is element
/// first + i, i.e. ceil(n / 8) bytes starting at mask_bits; unused high bits of the last byte are 0.
/// With mask_bits, `first` must be a multiple of 8 (throws std::invalid_argument otherwise); chunks
/// whose boundaries are multiples of 64 therefore own whole bytes (and whole 64-bit words).
/// x and y may be the same pointer (in place); otherwise they must not overlap.
void dropout_forward_f32(uint64_t key, uint64_t base_counter, std::size_t first, const float* x, float* y,
                         std::size_t n, uint64_t threshold, float scale, uint8_t* mask_bits);
void dropout_forward_f64(uint64_t key, uint64_t base_counter, std::size_t first, const double* x, double* y,
                         std::size_t n, uint64_t threshold, double scale, uint8_t* mask_bits);

/// Dropout backward from a stored mask: gx[i] = bit i of mask_bits ? gy[i] * scale : +0, i in [0, n),
/// with the bit layout of dropout_forward (bit i % 8 of mask_bits[i / 8]); mask_bits points at the
/// byte of the range's first element, so the range starts at a multiple of 8 of the mask.
void dropout_backward_bits_f32(const float* gy, const uint8_t* mask_bits, float* gx, std::size_t n, float scale);
void dropout_backward_bits_f64(const double* gy, const uint8_t* mask_bits, double* gx, std::size_t n,
                               double scale);

/// Dropout backward regenerating the words (no stored mask): exactly the forward's keep test,
///     gx[i] = word (first + i) >= threshold ? gy[i] * scale : +0.   Any `first`.
void dropout_backward_regen_f32(uint64_t key, uint64_t base_counter, std::size_t first, const float* gy,
                                float* gx, std::size_t n, uint64_t threshold, float scale);
void dropout_backward_regen_f64(uint64_t key, uint64_t base_counter, std::size_t first, const double* gy,
                                double* gx, std::size_t n, uint64_t threshold, double scale);

/// Bernoulli(p): out[i] = word (first + i) < dropout_threshold(p) ? 1 : 0. p is clamped to [0, 1]
/// (NaN -> 0) by dropout_threshold; the caller checks the range for the user.
void bernoulli_f32_range(uint64_t key, uint64_t base_counter, std::size_t first, float* out, std::size_t n,
                         double p);
void bernoulli_f64_range(uint64_t key, uint64_t base_counter, std::size_t first, double* out, std::size_t n,
                         double p);

}  // namespace sorix::rng
