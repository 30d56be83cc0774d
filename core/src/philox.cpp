// Philox4x32-10 kernels: a scalar reference and xsimd block kernels (see philox.hpp for the contract).
//
// Block layout
// ------------
// A block is kLanes consecutive counters (16 with AVX-512), evaluated at once in SoA form: four
// batches w[0..3], lane l holding word 0..3 of one counter. Outputs are wanted in stream order
// (counter c, words 0..3, then counter c+1, ...), so the SoA words must be transposed. Within each
// 128-bit group of four lanes that is the classic 4x4 transpose with unpack{lo,hi}_epi32 and
// unpack{lo,hi}_epi64 (8 cheap in-lane shuffles). Across the groups no shuffle is needed, because we
// choose which counter each lane evaluates: with G = kLanes / 4 groups, lane 4q + m evaluates
// counter block_start + G*m + q. After the in-group transpose, output batch m, group q holds the four
// words of counter G*m + q — i.e. output batch m is exactly words [m*kLanes, (m+1)*kLanes) of the
// block, in order. (With one group, SSE2 or NEON, the lane order is the identity.)
//
// The same two shuffle stages serve double outputs: after the epi32 stage each 64-bit lane holds
// (word1 << 32 | word0) or (word3 << 32 | word2) of one counter — the two 53-bit sources of f64
// elements 2c and 2c+1 — and after conversion to double the epi64 stage puts them in order.
//
// Heads and tails: blocks start at counter boundaries. A block that is only partly inside the
// requested range (a range starting inside a counter, or the last short block) is computed by the
// same full-block code on stack buffers and the wanted part is copied, so every element is produced
// by identical instructions regardless of where a range starts or ends.
#include "sorix/core/philox.hpp"

// g++ 12 reports false -W(maybe-)uninitialized warnings inside its AVX-512 intrinsic headers
// (`__m512i __Y = __Y;` in _mm512_undefined_epi32); the diagnostic is located in those headers,
// so silencing it around their inclusion (xsimd includes immintrin.h first) leaves our code checked.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#endif
#include <xsimd/xsimd.hpp>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>

// Define SORIX_PHILOX_PORTABLE to test the array-based path (what non-x86 targets use) on x86.
#if defined(SORIX_PHILOX_PORTABLE)
#define SORIX_PHILOX_ISA 0
#elif XSIMD_WITH_AVX512F
#define SORIX_PHILOX_ISA 512
#include <immintrin.h>
#elif XSIMD_WITH_AVX2
#define SORIX_PHILOX_ISA 256
#include <immintrin.h>
#elif XSIMD_WITH_SSE2 && !XSIMD_WITH_AVX
#define SORIX_PHILOX_ISA 128
#include <immintrin.h>
#else
#define SORIX_PHILOX_ISA 0  // portable: the two missing primitives go through arrays
#endif

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

namespace {

#if SORIX_PHILOX_ISA == 512
// Not xsimd's default avx512bw: its extra kernels (8- and 16-bit lanes, unused here) do not compile
// at -O0 in xsimd 8.1 (they pull in log() and integer select). avx512dq has all we use.
using Arch = xsimd::avx512dq;
#else
using Arch = xsimd::default_arch;
#endif
using U32 = xsimd::batch<uint32_t, Arch>;
using I32 = xsimd::batch<int32_t, Arch>;
using U64 = xsimd::batch<uint64_t, Arch>;
using I64 = xsimd::batch<int64_t, Arch>;
using F32 = xsimd::batch<float, Arch>;
using F64 = xsimd::batch<double, Arch>;

constexpr std::size_t kLanes = U32::size;    // counters per block
constexpr std::size_t kWords = 4 * kLanes;   // 32-bit words per block
constexpr std::size_t kGroups = kLanes / 4;  // 128-bit groups per batch
static_assert(kLanes % 4 == 0 && F32::size == kLanes && F64::size * 2 == kLanes);

// ---------------------------------------------------------------------------------------------------
// The two primitives xsimd 8.1 lacks: 32x32->64 multiply (hi and lo halves), and in-group unpacks.

#if SORIX_PHILOX_ISA == 512
// (The AVX-512 rounds multiply in 64-bit lanes directly, see philox_rounds.)
inline U32 unpacklo32(const U32& a, const U32& b) { return U32(_mm512_unpacklo_epi32(a, b)); }
inline U32 unpackhi32(const U32& a, const U32& b) { return U32(_mm512_unpackhi_epi32(a, b)); }
inline U32 unpacklo64(const U32& a, const U32& b) { return U32(_mm512_unpacklo_epi64(a, b)); }
inline U32 unpackhi64(const U32& a, const U32& b) { return U32(_mm512_unpackhi_epi64(a, b)); }
#elif SORIX_PHILOX_ISA == 256
inline void mulhilo(const U32& a, uint32_t m, U32& hi, U32& lo) {
    const __m256i va = a, vm = _mm256_set1_epi32(int(m));
    const __m256i pe = _mm256_mul_epu32(va, vm);
    const __m256i po = _mm256_mul_epu32(_mm256_srli_epi64(va, 32), vm);
    lo = U32(_mm256_blend_epi32(pe, _mm256_slli_epi64(po, 32), 0xAA));
    hi = U32(_mm256_blend_epi32(_mm256_srli_epi64(pe, 32), po, 0xAA));
}
inline U32 unpacklo32(const U32& a, const U32& b) { return U32(_mm256_unpacklo_epi32(a, b)); }
inline U32 unpackhi32(const U32& a, const U32& b) { return U32(_mm256_unpackhi_epi32(a, b)); }
inline U32 unpacklo64(const U32& a, const U32& b) { return U32(_mm256_unpacklo_epi64(a, b)); }
inline U32 unpackhi64(const U32& a, const U32& b) { return U32(_mm256_unpackhi_epi64(a, b)); }
#elif SORIX_PHILOX_ISA == 128
inline void mulhilo(const U32& a, uint32_t m, U32& hi, U32& lo) {
    const __m128i va = a, vm = _mm_set1_epi32(int(m));
    const __m128i pe = _mm_mul_epu32(va, vm);
    const __m128i po = _mm_mul_epu32(_mm_srli_epi64(va, 32), vm);
    const __m128i low = _mm_set1_epi64x(0xFFFFFFFF);
    lo = U32(_mm_or_si128(_mm_and_si128(pe, low), _mm_slli_epi64(po, 32)));
    hi = U32(_mm_or_si128(_mm_srli_epi64(pe, 32), _mm_andnot_si128(low, po)));
}
inline U32 unpacklo32(const U32& a, const U32& b) { return U32(_mm_unpacklo_epi32(a, b)); }
inline U32 unpackhi32(const U32& a, const U32& b) { return U32(_mm_unpackhi_epi32(a, b)); }
inline U32 unpacklo64(const U32& a, const U32& b) { return U32(_mm_unpacklo_epi64(a, b)); }
inline U32 unpackhi64(const U32& a, const U32& b) { return U32(_mm_unpackhi_epi64(a, b)); }
#else
inline void mulhilo(const U32& a, uint32_t m, U32& hi, U32& lo) {
    alignas(64) uint32_t x[kLanes], h[kLanes], l[kLanes];
    a.store_aligned(x);
    for (std::size_t i = 0; i < kLanes; ++i) l[i] = mulhilo32(x[i], m, &h[i]);
    hi = U32::load_aligned(h);
    lo = U32::load_aligned(l);
}
// Same semantics as the x86 instructions: each 128-bit group is shuffled independently.
template <int Width, bool High>
inline U32 unpack(const U32& a, const U32& b) {
    alignas(64) uint32_t x[kLanes], y[kLanes], r[kLanes];
    a.store_aligned(x);
    b.store_aligned(y);
    for (std::size_t g = 0; g < kLanes; g += 4) {
        const std::size_t s = g + (High ? 2 : 0);
        if (Width == 32) {
            r[g] = x[s], r[g + 1] = y[s], r[g + 2] = x[s + 1], r[g + 3] = y[s + 1];
        } else {
            r[g] = x[s], r[g + 1] = x[s + 1], r[g + 2] = y[s], r[g + 3] = y[s + 1];
        }
    }
    return U32::load_aligned(r);
}
inline U32 unpacklo32(const U32& a, const U32& b) { return unpack<32, false>(a, b); }
inline U32 unpackhi32(const U32& a, const U32& b) { return unpack<32, true>(a, b); }
inline U32 unpacklo64(const U32& a, const U32& b) { return unpack<64, false>(a, b); }
inline U32 unpackhi64(const U32& a, const U32& b) { return unpack<64, true>(a, b); }
#endif

template <class B>
inline U32 as_u32(const B& b) {
    return xsimd::bitwise_cast<U32>(b);
}
template <class B>
inline B from_u32(const U32& b) {
    return xsimd::bitwise_cast<B>(b);
}

// Fused multiply-add where the target has it (xsimd 8.1's AVX-512 fma is a plain a*b+c).
inline F32 fmadd(const F32& a, const F32& b, const F32& c) {
#if SORIX_PHILOX_ISA == 512
    return F32(_mm512_fmadd_ps(a, b, c));
#else
    return xsimd::fma(a, b, c);
#endif
}
inline F64 fmadd(const F64& a, const F64& b, const F64& c) {
#if SORIX_PHILOX_ISA == 512
    return F64(_mm512_fmadd_pd(a, b, c));
#else
    return xsimd::fma(a, b, c);
#endif
}

// ---------------------------------------------------------------------------------------------------
// Philox on a block of kLanes counters.

struct Ctr128 {
    uint64_t lo, hi;
};

// Counter of stream index `counter_index` (< 2^63) above `base`, as a 128-bit number.
inline Ctr128 counter_at(uint64_t base, uint64_t counter_index) {
    const uint64_t lo = base + counter_index;
    return {lo, lo < base ? 1u : 0u};
}

// Lane 4q + m evaluates counter G*m + q of the block (see the file comment).
struct LaneOrder {
    alignas(64) uint32_t offset[kLanes];
    constexpr LaneOrder() : offset{} {
        for (std::size_t q = 0; q < kGroups; ++q)
            for (std::size_t m = 0; m < 4; ++m) offset[4 * q + m] = uint32_t(kGroups * m + q);
    }
};
constexpr LaneOrder kLaneOrder{};

// The ten Philox rounds on SoA words, in place.
inline void philox_rounds(U32 w[4], uint64_t key) {
    uint32_t k0 = uint32_t(key), k1 = uint32_t(key >> 32);
#if SORIX_PHILOX_ISA == 512
    // _mm512_mul_epu32 multiplies the low 32 bits of each 64-bit lane into a full 64-bit product. So
    // the 16 lanes are split into two halves of 8 counters each kept in the low 32 bits of 64-bit
    // lanes (even lanes as they are, odd lanes shifted down). Then a round is 1 multiply + 1 shift
    // per product: lo = the product itself (the high half is garbage the next multiply ignores, and
    // xor keeps garbage in the high half), hi = product >> 32. This needs ~12 instead of ~17
    // instructions per round for 16 counters. The halves are re-interleaved at the end.
    __m512i h[2][4];
    for (int i = 0; i < 4; ++i) {
        h[0][i] = w[i];
        h[1][i] = _mm512_srli_epi64(w[i], 32);
    }
    const __m512i m0 = _mm512_set1_epi64(kM0), m1 = _mm512_set1_epi64(kM1);
    for (int r = 0; r < kRounds; ++r) {
        if (r > 0) {
            k0 += kW0;
            k1 += kW1;
        }
        const __m512i vk0 = _mm512_set1_epi32(int(k0)), vk1 = _mm512_set1_epi32(int(k1));
        for (auto& v : h) {
            const __m512i p0 = _mm512_mul_epu32(v[0], m0);  // (hi0 : lo0)
            const __m512i p1 = _mm512_mul_epu32(v[2], m1);  // (hi1 : lo1)
            // 0x96 = a ^ b ^ c
            v[0] = _mm512_ternarylogic_epi32(_mm512_srli_epi64(p1, 32), v[1], vk0, 0x96);  // hi1 ^ w1 ^ k0
            v[2] = _mm512_ternarylogic_epi32(_mm512_srli_epi64(p0, 32), v[3], vk1, 0x96);  // hi0 ^ w3 ^ k1
            v[1] = p1;                                                                     // lo1
            v[3] = p0;                                                                     // lo0
        }
    }
    for (int i = 0; i < 4; ++i) w[i] = U32(_mm512_mask_blend_epi32(0xAAAA, h[0][i], _mm512_slli_epi64(h[1][i], 32)));
#else
    for (int r = 0; r < kRounds; ++r) {
        if (r > 0) {
            k0 += kW0;
            k1 += kW1;
        }
        U32 hi0, lo0, hi1, lo1;
        mulhilo(w[0], kM0, hi0, lo0);
        mulhilo(w[2], kM1, hi1, lo1);
        w[0] = hi1 ^ w[1] ^ U32(k0);
        w[2] = hi0 ^ w[3] ^ U32(k1);
        w[1] = lo1;
        w[3] = lo0;
    }
#endif
}

// SoA Philox: w[i] lane l = word i of counter (c + kLaneOrder.offset[l]).
inline void philox_soa(Ctr128 c, uint64_t key, U32 w[4]) {
    const uint32_t c0 = uint32_t(c.lo);
    if (c0 <= 0xFFFFFFFFu - (kLanes - 1)) {
        // Common case: no lane carries out of the lowest counter word.
        w[0] = U32(c0) + U32::load_aligned(kLaneOrder.offset);
        w[1] = U32(uint32_t(c.lo >> 32));
        w[2] = U32(uint32_t(c.hi));
        w[3] = U32(uint32_t(c.hi >> 32));
    } else {
        // Within kLanes of a 2^32 boundary: full 128-bit add per lane (rare).
        alignas(64) uint32_t a[4][kLanes];
        for (std::size_t l = 0; l < kLanes; ++l) {
            const uint64_t lo = c.lo + kLaneOrder.offset[l];
            const uint64_t hi = c.hi + (lo < c.lo ? 1 : 0);
            a[0][l] = uint32_t(lo), a[1][l] = uint32_t(lo >> 32);
            a[2][l] = uint32_t(hi), a[3][l] = uint32_t(hi >> 32);
        }
        for (int i = 0; i < 4; ++i) w[i] = U32::load_aligned(a[i]);
    }
    philox_rounds(w, key);
}

// The epi32 shuffle stage: t[0], t[1] hold (w1:w0) pairs, t[2], t[3] hold (w3:w2) pairs, per 64-bit
// lane, for lanes {4q, 4q+1} (t[0], t[2]) and {4q+2, 4q+3} (t[1], t[3]) of each group q.
inline void stage32(const U32 w[4], U32 t[4]) {
    t[0] = unpacklo32(w[0], w[1]);
    t[1] = unpackhi32(w[0], w[1]);
    t[2] = unpacklo32(w[2], w[3]);
    t[3] = unpackhi32(w[2], w[3]);
}
// The epi64 stage: r[m] = block elements [m * size, (m+1) * size) in stream order.
inline void stage64(const U32 t[4], U32 r[4]) {
    r[0] = unpacklo64(t[0], t[2]);
    r[1] = unpackhi64(t[0], t[2]);
    r[2] = unpacklo64(t[1], t[3]);
    r[3] = unpackhi64(t[1], t[3]);
}

// Words [0, kWords) of the block starting at counter c, in stream order: r[m] = words m*kLanes...
inline void block_words(Ctr128 c, uint64_t key, U32 r[4]) {
    U32 w[4], t[4];
    philox_soa(c, key, w);
    stage32(w, t);
    stage64(t, r);
}

// ---------------------------------------------------------------------------------------------------
// Walking a range block by block.
//
// E = elements per counter (4: one word each; 2: two words each). Calls
//   full(ctr, out_offset)                    for blocks entirely inside [first, first + n), and
//   partial(ctr, skip, count, out_offset)    for the others: block elements [skip, skip + count).
// out_offset is the index (relative to `first`) of the block's first used element.
template <std::size_t E, class Full, class Partial>
inline void walk(uint64_t base, std::size_t first, std::size_t n, Full&& full, Partial&& partial) {
    constexpr std::size_t kPerBlock = E * kLanes;
    const std::size_t end = first + n;
    std::size_t j = first;
    while (j < end) {
        const std::size_t skip = j % E;  // non-zero only for the first block
        const Ctr128 c = counter_at(base, uint64_t(j / E));
        const std::size_t count = std::min(kPerBlock - skip, end - j);
        if (count == kPerBlock)
            full(c, j - first);
        else
            partial(c, skip, count, j - first);
        j += count;
    }
}

// For kernels that only write: a partial block is the full block into a buffer, then a copy.
template <std::size_t E, class T, class Block>
inline void walk_out(uint64_t base, std::size_t first, T* out, std::size_t n, Block&& block) {
    walk<E>(
        base, first, n, [&](Ctr128 c, std::size_t o) { block(c, out + o); },
        [&](Ctr128 c, std::size_t skip, std::size_t count, std::size_t o) {
            alignas(64) T buf[E * kLanes];
            block(c, buf);
            std::memcpy(out + o, buf + skip, count * sizeof(T));
        });
}

// Largest value below `high` (or `high` itself if the interval is empty): keeps uniform in [low, high).
template <class T>
inline T uniform_cap(T low, T high) {
    return high > low ? std::nextafter(high, low) : high;
}

}  // namespace

// -------------------------------------------------------------------------------------------------
// Words and uniforms

void fill_u32_range(uint64_t key, uint64_t base_counter, std::size_t first, uint32_t* out, std::size_t n) {
    walk_out<4>(base_counter, first, out, n, [key](Ctr128 c, uint32_t* o) {
        U32 r[4];
        block_words(c, key, r);
        for (int m = 0; m < 4; ++m) r[m].store_unaligned(o + m * kLanes);
    });
}

void fill_u32(uint64_t key, uint64_t base_counter, uint32_t* out, std::size_t n) {
    fill_u32_range(key, base_counter, 0, out, n);
}

void uniform_f32_range(uint64_t key, uint64_t base_counter, std::size_t first, float* out, std::size_t n,
                       float low, float high) {
    const F32 vlow(low), vrange(high - low), vcap(uniform_cap(low, high)), two_m24(0x1p-24f);
    walk_out<4>(base_counter, first, out, n, [&](Ctr128 c, float* o) {
        U32 r[4];
        block_words(c, key, r);
        for (int m = 0; m < 4; ++m) {
            const F32 u = xsimd::to_float(from_u32<I32>(r[m] >> 8)) * two_m24;  // exact, in [0, 1)
            xsimd::min(fmadd(u, vrange, vlow), vcap).store_unaligned(o + m * kLanes);
        }
    });
}

namespace {
// 53-bit uniform from a 64-bit lane (w_hi << 32 | w_lo): (bits >> 11) * 2^-53 (+ 2^-53 if `open0`).
inline F64 u53(const U32& pairs, bool open0) {
    const U64 bits = from_u32<U64>(pairs) >> 11;
    F64 u = xsimd::to_float(xsimd::bitwise_cast<I64>(bits));  // < 2^53: exact
    if (open0) u = u + F64(1.0);
    return u * F64(0x1p-53);
}
}  // namespace

void uniform_f64_range(uint64_t key, uint64_t base_counter, std::size_t first, double* out, std::size_t n,
                       double low, double high) {
    const F64 vlow(low), vrange(high - low), vcap(uniform_cap(low, high));
    walk_out<2>(base_counter, first, out, n, [&](Ctr128 c, double* o) {
        U32 w[4], t[4], r[4];
        philox_soa(c, key, w);
        stage32(w, t);  // t[i] 64-bit lanes: the 53-bit sources, see stage32
        for (int i = 0; i < 4; ++i) t[i] = as_u32(xsimd::min(fmadd(u53(t[i], false), vrange, vlow), vcap));
        stage64(t, r);  // doubles in stream order
        for (int m = 0; m < 4; ++m) from_u32<F64>(r[m]).store_unaligned(o + m * F64::size);
    });
}

// -------------------------------------------------------------------------------------------------
// Normals (Box-Muller). Computed before the transpose, on whole SoA batches, so each log/sincos
// evaluation serves two outputs.

void normal_f32_range(uint64_t key, uint64_t base_counter, std::size_t first, float* out, std::size_t n,
                      float mean, float std) {
    const F32 vmean(mean), vstd(std), two_m24(0x1p-24f), two_pi(6.28318530717958647692f);
    walk_out<4>(base_counter, first, out, n, [&](Ctr128 c, float* o) {
        U32 w[4], t[4], r[4];
        philox_soa(c, key, w);
        // Pair (w0, w1) gives elements 4c, 4c+1 of counter c; pair (w2, w3) gives 4c+2, 4c+3.
        U32 z[4];
        for (int p = 0; p < 2; ++p) {
            const F32 u1 = (xsimd::to_float(from_u32<I32>(w[2 * p] >> 8)) + F32(1.0f)) * two_m24;  // (0, 1]
            const F32 u2 = xsimd::to_float(from_u32<I32>(w[2 * p + 1] >> 8)) * two_m24;           // [0, 1)
            const F32 rad = xsimd::sqrt(F32(-2.0f) * xsimd::log(u1));
            const auto sc = xsimd::sincos(two_pi * u2);  // (sin, cos)
            z[2 * p] = as_u32(fmadd(rad * sc.second, vstd, vmean));
            z[2 * p + 1] = as_u32(fmadd(rad * sc.first, vstd, vmean));
        }
        stage32(z, t);
        stage64(t, r);
        for (int m = 0; m < 4; ++m) from_u32<F32>(r[m]).store_unaligned(o + m * kLanes);
    });
}

void normal_f64_range(uint64_t key, uint64_t base_counter, std::size_t first, double* out, std::size_t n,
                      double mean, double std) {
    const F64 vmean(mean), vstd(std), two_pi(6.28318530717958647692);
    walk_out<2>(base_counter, first, out, n, [&](Ctr128 c, double* o) {
        U32 w[4], t[4], r[4];
        philox_soa(c, key, w);
        stage32(w, t);
        // Counter c is pair c: u1 from (w1:w0) in t[0] / t[1], u2 from (w3:w2) in t[2] / t[3].
        // Element 2c (cos) goes where (w1:w0) was, 2c+1 (sin) where (w3:w2) was, so stage64 orders them.
        for (int h = 0; h < 2; ++h) {
            const F64 u1 = u53(t[h], true), u2 = u53(t[h + 2], false);
            const F64 rad = xsimd::sqrt(F64(-2.0) * xsimd::log(u1));
            const auto sc = xsimd::sincos(two_pi * u2);
            t[h] = as_u32(fmadd(rad * sc.second, vstd, vmean));
            t[h + 2] = as_u32(fmadd(rad * sc.first, vstd, vmean));
        }
        stage64(t, r);
        for (int m = 0; m < 4; ++m) from_u32<F64>(r[m]).store_unaligned(o + m * F64::size);
    });
}

// -------------------------------------------------------------------------------------------------
// Dropout and Bernoulli: one 32-bit word per element, tested against an integer threshold.

namespace {

// One block of kWords elements: y = keep ? x * scale : 0 with keep = word >= t32; returns the keep
// bits (bit i = element i of the block), or 0 if not needed. `all_dropped` (t == 2^32) is handled by
// the callers. T is float or double.
template <class T>
inline uint64_t dropout_block(Ctr128 c, uint64_t key, const T* x, T* y, uint32_t t32, T scale) {
    static_assert(kWords <= 64, "mask of a block must fit in 64 bits");
    U32 r[4];
    block_words(c, key, r);
    uint64_t bits = 0;
#if SORIX_PHILOX_ISA == 512
    const __m512i vt = _mm512_set1_epi32(int(t32));
    for (int m = 0; m < 4; ++m) {
        const __mmask16 keep = _mm512_cmpge_epu32_mask(r[m], vt);
        bits |= uint64_t(keep) << (16 * m);
        if constexpr (std::is_same_v<T, float>) {
            const __m512 xv = _mm512_loadu_ps(x + 16 * m);
            _mm512_storeu_ps(y + 16 * m, _mm512_maskz_mul_ps(keep, xv, _mm512_set1_ps(scale)));
        } else {
            for (int h = 0; h < 2; ++h) {
                const __m512d xv = _mm512_loadu_pd(x + 16 * m + 8 * h);
                const __mmask8 k = __mmask8(keep >> (8 * h));
                _mm512_storeu_pd(y + 16 * m + 8 * h, _mm512_maskz_mul_pd(k, xv, _mm512_set1_pd(scale)));
            }
        }
    }
#else
    alignas(64) uint32_t words[kWords];
    for (int m = 0; m < 4; ++m) r[m].store_aligned(words + m * kLanes);
    for (std::size_t i = 0; i < kWords; ++i) {
        const bool keep = words[i] >= t32;
        bits |= uint64_t(keep) << i;
        y[i] = keep ? x[i] * scale : T(0);
    }
#endif
    return bits;
}

template <class T>
void dropout_impl(uint64_t key, uint64_t base, std::size_t first, const T* x, T* y, std::size_t n,
                  uint64_t threshold, T scale, uint8_t* mask_bits) {
    if (mask_bits != nullptr && first % 8 != 0)
        throw std::invalid_argument("sorix::rng::dropout_forward: with mask_bits, first must be a multiple of 8, got " +
                                    std::to_string(first));
    if (threshold > 0xFFFFFFFFu) {  // p == 1: no word reaches 2^32, everything is dropped
        std::fill(y, y + n, T(0));
        if (mask_bits != nullptr) std::memset(mask_bits, 0, (n + 7) / 8);
        return;
    }
    const uint32_t t32 = uint32_t(threshold);
    // first % 8 == 0 with a mask, so blocks start at offsets o that are multiples of kWords (and 8).
    walk<4>(
        base, first, n,
        [&](Ctr128 c, std::size_t o) {
            const uint64_t bits = dropout_block(c, key, x + o, y + o, t32, scale);
            if (mask_bits != nullptr)
                for (std::size_t b = 0; b < kWords / 8; ++b) mask_bits[o / 8 + b] = uint8_t(bits >> (8 * b));
        },
        [&](Ctr128 c, std::size_t skip, std::size_t count, std::size_t o) {
            alignas(64) T xb[kWords] = {}, yb[kWords];
            std::memcpy(xb + skip, x + o, count * sizeof(T));
            uint64_t bits = dropout_block(c, key, xb, yb, t32, scale);
            std::memcpy(y + o, yb + skip, count * sizeof(T));
            if (mask_bits != nullptr) {  // skip == 0 here (first % 4 == 0)
                if (count < 64) bits &= (uint64_t(1) << count) - 1;
                for (std::size_t b = 0; b < (count + 7) / 8; ++b) mask_bits[o / 8 + b] = uint8_t(bits >> (8 * b));
            }
        });
}

template <class T>
void dropout_backward_bits_impl(const T* gy, const uint8_t* bits, T* gx, std::size_t n, T scale) {
    std::size_t i = 0;
#if SORIX_PHILOX_ISA == 512
    constexpr std::size_t kStep = 64 / sizeof(T);  // elements per 512-bit register: 16 or 8
    using Mask = std::conditional_t<sizeof(T) == 4, __mmask16, __mmask8>;
    for (; i < n; i += kStep) {
        Mask keep = 0;
        if (n - i < kStep) {  // tail: masked loads and stores, only the bytes that exist are read
            const Mask live = Mask((1u << (n - i)) - 1);
            keep = 0;
            std::memcpy(&keep, bits + i / 8, (n - i + 7) / 8);
            keep &= live;
            if constexpr (sizeof(T) == 4)
                _mm512_mask_storeu_ps(gx + i, live,
                                      _mm512_maskz_mul_ps(keep, _mm512_maskz_loadu_ps(live, gy + i), _mm512_set1_ps(scale)));
            else
                _mm512_mask_storeu_pd(gx + i, live,
                                      _mm512_maskz_mul_pd(keep, _mm512_maskz_loadu_pd(live, gy + i), _mm512_set1_pd(scale)));
            return;
        }
        std::memcpy(&keep, bits + i / 8, sizeof(Mask));  // bit b of byte k is element 8k + b (x86 is little-endian)
        if constexpr (sizeof(T) == 4)
            _mm512_storeu_ps(gx + i, _mm512_maskz_mul_ps(keep, _mm512_loadu_ps(gy + i), _mm512_set1_ps(scale)));
        else
            _mm512_storeu_pd(gx + i, _mm512_maskz_mul_pd(keep, _mm512_loadu_pd(gy + i), _mm512_set1_pd(scale)));
    }
#endif
    for (; i < n; ++i) gx[i] = (bits[i / 8] >> (i % 8)) & 1 ? gy[i] * scale : T(0);
}

template <class T>
void bernoulli_impl(uint64_t key, uint64_t base, std::size_t first, T* out, std::size_t n, double p) {
    const uint64_t t = dropout_threshold(p);
    if (t > 0xFFFFFFFFu) {  // p == 1: every word is below 2^32
        std::fill(out, out + n, T(1));
        return;
    }
    const U32 vt = U32(static_cast<uint32_t>(t));
    walk_out<4>(base, first, out, n, [&](Ctr128 c, T* o) {
        U32 r[4];
        block_words(c, key, r);
        for (int m = 0; m < 4; ++m) {
            if constexpr (std::is_same_v<T, float>) {
                const U32 one_bits = xsimd::select(r[m] < vt, U32(0x3F800000u), U32(0u));  // 1.0f : 0.0f
                from_u32<F32>(one_bits).store_unaligned(o + m * kLanes);
            } else {
                alignas(64) uint32_t words[kLanes];
                r[m].store_aligned(words);
                for (std::size_t i = 0; i < kLanes; ++i) o[m * kLanes + i] = words[i] < uint32_t(t) ? 1.0 : 0.0;
            }
        }
    });
}

}  // namespace

void dropout_forward_f32(uint64_t key, uint64_t base_counter, std::size_t first, const float* x, float* y,
                         std::size_t n, uint64_t threshold, float scale, uint8_t* mask_bits) {
    dropout_impl(key, base_counter, first, x, y, n, threshold, scale, mask_bits);
}
void dropout_forward_f64(uint64_t key, uint64_t base_counter, std::size_t first, const double* x, double* y,
                         std::size_t n, uint64_t threshold, double scale, uint8_t* mask_bits) {
    dropout_impl(key, base_counter, first, x, y, n, threshold, scale, mask_bits);
}
void dropout_backward_bits_f32(const float* gy, const uint8_t* mask_bits, float* gx, std::size_t n, float scale) {
    dropout_backward_bits_impl(gy, mask_bits, gx, n, scale);
}
void dropout_backward_bits_f64(const double* gy, const uint8_t* mask_bits, double* gx, std::size_t n,
                               double scale) {
    dropout_backward_bits_impl(gy, mask_bits, gx, n, scale);
}
void dropout_backward_regen_f32(uint64_t key, uint64_t base_counter, std::size_t first, const float* gy,
                                float* gx, std::size_t n, uint64_t threshold, float scale) {
    dropout_impl(key, base_counter, first, gy, gx, n, threshold, scale, static_cast<uint8_t*>(nullptr));
}
void dropout_backward_regen_f64(uint64_t key, uint64_t base_counter, std::size_t first, const double* gy,
                                double* gx, std::size_t n, uint64_t threshold, double scale) {
    dropout_impl(key, base_counter, first, gy, gx, n, threshold, scale, static_cast<uint8_t*>(nullptr));
}
void bernoulli_f32_range(uint64_t key, uint64_t base_counter, std::size_t first, float* out, std::size_t n,
                         double p) {
    bernoulli_impl(key, base_counter, first, out, n, p);
}
void bernoulli_f64_range(uint64_t key, uint64_t base_counter, std::size_t first, double* out, std::size_t n,
                         double p) {
    bernoulli_impl(key, base_counter, first, out, n, p);
}

}  // namespace sorix::rng
