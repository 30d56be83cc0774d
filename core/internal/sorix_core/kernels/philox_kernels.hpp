#pragma once
// Philox4x32-10 block kernels, written once for every architecture (the contract is in
// sorix/core/philox.hpp; this file is how it is computed).
//
// Block layout
// ------------
// A sub-block is kLanes consecutive counters (4 with SSE2, 8 with AVX2, 16 with AVX-512), evaluated
// at once in SoA form: four batches w[0..3], lane l holding word 0..3 of one counter. A block is
// kSub consecutive sub-blocks whose rounds are interleaved (2 on AVX2, else 1). Outputs are wanted
// in stream order (counter c, words 0..3, then counter c+1, ...), so the SoA words must be
// transposed. Within each 128-bit group of four lanes that is the classic 4x4 transpose with
// unpack{lo,hi}_epi32 and unpack{lo,hi}_epi64. Across the groups no shuffle is needed, because we
// choose which counter each lane evaluates: with G = kLanes / 4 groups, lane 4q + m evaluates
// counter block_start + G*m + q. After the in-group transpose, output batch m, group q holds the
// four words of counter G*m + q, i.e. output batch m is exactly words [m*kLanes, (m+1)*kLanes) of
// the block, in order. (With one group, SSE2 or NEON, the lane order is the identity.)
//
// The same two shuffle stages serve double outputs: after the epi32 stage each 64-bit lane holds
// (word1 << 32 | word0) or (word3 << 32 | word2) of one counter, the two 53-bit sources of f64
// elements 2c and 2c+1, and after conversion to double the epi64 stage puts them in order.
//
// Heads and tails: blocks start at counter boundaries. A block that is only partly inside the
// requested range is computed by the same full-block code on stack buffers and the wanted part is
// copied, so every element is produced by identical instructions wherever a range starts or ends.
//
// Same bits on every architecture: the words are integers; every float result is an elementwise
// function of its own words through IEEE-exact operations, fmadd() and math.hpp's log and sincos.
// The block width only decides how many counters are evaluated at once.
#include <algorithm>
#include <cstring>
#include <limits>
#include <type_traits>

#include "sorix_core/kernels/arch.hpp"
#include "sorix_core/kernels/math.hpp"

namespace sorix::kernels {

template <class A>
struct PhiloxKernels {
  using U32 = xsimd::batch<uint32_t, A>;
  using I32 = xsimd::batch<int32_t, A>;
  using U64 = xsimd::batch<uint64_t, A>;
  using I64 = xsimd::batch<int64_t, A>;
  using F32 = xsimd::batch<float, A>;
  using F64 = xsimd::batch<double, A>;

  static constexpr std::size_t kLanes = U32::size;  // counters per register
  // Sub-blocks (of kLanes counters each) evaluated together: their rounds interleave, so that one
  // chain's multiply latency is hidden by the other. AVX2: two, with the plain multiply (8 state
  // registers of 16; the even/odd split below would need 16 and spilled: 1.3x slower than this).
  // AVX-512 and SSE2: one, split into even and odd counters (already two chains).
  static constexpr std::size_t kSub = kIsAvx2<A> ? 2 : 1;
  static constexpr std::size_t kWords = 4 * kLanes * kSub;  // 32-bit words per block
  static constexpr std::size_t kGroups = kLanes / 4;        // 128-bit groups per register
  static_assert(kLanes % 4 == 0 && F32::size == kLanes && F64::size * 2 == kLanes);
  static_assert(kWords <= 64, "a block's keep mask must fit in 64 bits");

  static constexpr uint32_t kM0 = 0xD2511F53u;  // Random123 PHILOX_M4x32_0
  static constexpr uint32_t kM1 = 0xCD9E8D57u;  // PHILOX_M4x32_1
  static constexpr uint32_t kW0 = 0x9E3779B9u;  // PHILOX_W32_0 (key bump)
  static constexpr uint32_t kW1 = 0xBB67AE85u;  // PHILOX_W32_1
  static constexpr int kRounds = 10;

  // ---------------------------------------------------------------------------------------------
  // The two primitives xsimd 8.1 lacks: 32x32->64 multiply (hi and lo halves), and in-group unpacks.

  static void mulhilo(const U32& a, uint32_t m, U32& hi, U32& lo) {
#if SORIX_X86
    if constexpr (kIsAvx2<A>) {
      const __m256i va = a, vm = _mm256_set1_epi32(int(m));
      const __m256i pe = _mm256_mul_epu32(va, vm);
      const __m256i po = _mm256_mul_epu32(_mm256_srli_epi64(va, 32), vm);
      lo = U32(_mm256_blend_epi32(pe, _mm256_slli_epi64(po, 32), 0xAA));
      hi = U32(_mm256_blend_epi32(_mm256_srli_epi64(pe, 32), po, 0xAA));
    } else if constexpr (kIsSse2<A>) {
      const __m128i va = a, vm = _mm_set1_epi32(int(m));
      const __m128i pe = _mm_mul_epu32(va, vm);
      const __m128i po = _mm_mul_epu32(_mm_srli_epi64(va, 32), vm);
      const __m128i low = _mm_set1_epi64x(0xFFFFFFFF);
      lo = U32(_mm_or_si128(_mm_and_si128(pe, low), _mm_slli_epi64(po, 32)));
      hi = U32(_mm_or_si128(_mm_srli_epi64(pe, 32), _mm_andnot_si128(low, po)));
    } else
#endif
    {
      alignas(64) uint32_t x[kLanes], h[kLanes], l[kLanes];
      a.store_aligned(x);
      for (std::size_t i = 0; i < kLanes; ++i) {
        const uint64_t p = uint64_t(x[i]) * m;
        h[i] = uint32_t(p >> 32);
        l[i] = uint32_t(p);
      }
      hi = U32::load_aligned(h);
      lo = U32::load_aligned(l);
    }
  }

  // Each 128-bit group is shuffled on its own (the x86 unpack semantics).
  template <int Width, bool High>
  static U32 unpack(const U32& a, const U32& b) {
#if SORIX_X86
    if constexpr (kIsAvx512<A>) {
      if constexpr (Width == 32) return High ? U32(_mm512_unpackhi_epi32(a, b)) : U32(_mm512_unpacklo_epi32(a, b));
      else return High ? U32(_mm512_unpackhi_epi64(a, b)) : U32(_mm512_unpacklo_epi64(a, b));
    } else if constexpr (kIsAvx2<A>) {
      if constexpr (Width == 32) return High ? U32(_mm256_unpackhi_epi32(a, b)) : U32(_mm256_unpacklo_epi32(a, b));
      else return High ? U32(_mm256_unpackhi_epi64(a, b)) : U32(_mm256_unpacklo_epi64(a, b));
    } else if constexpr (kIsSse2<A>) {
      if constexpr (Width == 32) return High ? U32(_mm_unpackhi_epi32(a, b)) : U32(_mm_unpacklo_epi32(a, b));
      else return High ? U32(_mm_unpackhi_epi64(a, b)) : U32(_mm_unpacklo_epi64(a, b));
    } else
#endif
    {
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
  }

  template <class B>
  static U32 as_u32(const B& b) { return xsimd::bitwise_cast<U32>(b); }
  template <class B>
  static B from_u32(const U32& b) { return xsimd::bitwise_cast<B>(b); }

  // ---------------------------------------------------------------------------------------------
  // Philox on a block of kLanes counters.

  struct Ctr128 {
    uint64_t lo, hi;
  };

  // Counter of stream index `counter_index` (< 2^63) above `base`, as a 128-bit number.
  static Ctr128 counter_at(uint64_t base, uint64_t counter_index) {
    const uint64_t lo = base + counter_index;
    return {lo, lo < base ? 1u : 0u};
  }

  // Lane 4q + m evaluates counter G*m + q of the block (see the file comment).
  static uint32_t lane_offset(std::size_t l) { return uint32_t(kGroups * (l % 4) + l / 4); }

  // The round keys of one key, broadcast once per kernel call (not once per block and round):
  // lane l of k[r][i] is key word i of round r.
  struct Keys {
    alignas(64) uint32_t k[kRounds][2][kLanes];
    explicit Keys(uint64_t key) {
      uint32_t k0 = uint32_t(key), k1 = uint32_t(key >> 32);
      for (int r = 0; r < kRounds; ++r) {
        if (r > 0) {
          k0 += kW0;
          k1 += kW1;
        }
        for (std::size_t l = 0; l < kLanes; ++l) k[r][0][l] = k0, k[r][1][l] = k1;
      }
    }
    U32 word(int r, int i) const { return U32::load_aligned(k[r][i]); }
  };

  // The ten Philox rounds on the SoA words of every sub-block, in place.
  static void rounds(U32 w[kSub][4], const Keys& keys) {
#if SORIX_X86
    if constexpr (kIsAvx512<A>) {
      // _mm512_mul_epu32 multiplies the low 32 bits of each 64-bit lane into a full 64-bit
      // product. So the 16 lanes are split into two halves of 8 counters each kept in the low 32
      // bits of 64-bit lanes (even lanes as they are, odd lanes shifted down). Then a round is 1
      // multiply + 1 shift per product: lo = the product itself (the high half is garbage the next
      // multiply ignores, and xor keeps garbage in the high half), hi = product >> 32.
      __m512i h[2][4];
      for (int i = 0; i < 4; ++i) {
        h[0][i] = w[0][i];
        h[1][i] = _mm512_srli_epi64(w[0][i], 32);
      }
      const __m512i m0 = _mm512_set1_epi64(kM0), m1 = _mm512_set1_epi64(kM1);
      for (int r = 0; r < kRounds; ++r) {
        const __m512i vk0 = keys.word(r, 0), vk1 = keys.word(r, 1);
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
      for (int i = 0; i < 4; ++i)
        w[0][i] = U32(_mm512_mask_blend_epi32(0xAAAA, h[0][i], _mm512_slli_epi64(h[1][i], 32)));
    } else if constexpr (kIsSse2<A>) {
      __m128i h[2 * kSub][4];
      for (std::size_t u = 0; u < kSub; ++u) {
        for (int i = 0; i < 4; ++i) {
          h[2 * u][i] = w[u][i];
          h[2 * u + 1][i] = _mm_srli_epi64(w[u][i], 32);
        }
      }
      const __m128i m0 = _mm_set1_epi64x(kM0), m1 = _mm_set1_epi64x(kM1);
      for (int r = 0; r < kRounds; ++r) {
        const __m128i vk0 = keys.word(r, 0), vk1 = keys.word(r, 1);
        for (auto& v : h) {
          const __m128i p0 = _mm_mul_epu32(v[0], m0);
          const __m128i p1 = _mm_mul_epu32(v[2], m1);
          v[0] = _mm_xor_si128(_mm_xor_si128(_mm_srli_epi64(p1, 32), v[1]), vk0);
          v[2] = _mm_xor_si128(_mm_xor_si128(_mm_srli_epi64(p0, 32), v[3]), vk1);
          v[1] = p1;
          v[3] = p0;
        }
      }
      const __m128i low = _mm_set1_epi64x(0xFFFFFFFF);
      for (std::size_t u = 0; u < kSub; ++u)
        for (int i = 0; i < 4; ++i)
          w[u][i] = U32(_mm_or_si128(_mm_and_si128(h[2 * u][i], low), _mm_slli_epi64(h[2 * u + 1][i], 32)));
    } else
#endif
    {
      for (int r = 0; r < kRounds; ++r) {
        const U32 vk0 = keys.word(r, 0), vk1 = keys.word(r, 1);
        for (std::size_t u = 0; u < kSub; ++u) {
          U32 hi0, lo0, hi1, lo1;
          mulhilo(w[u][0], kM0, hi0, lo0);
          mulhilo(w[u][2], kM1, hi1, lo1);
          w[u][0] = hi1 ^ w[u][1] ^ vk0;
          w[u][2] = hi0 ^ w[u][3] ^ vk1;
          w[u][1] = lo1;
          w[u][3] = lo0;
        }
      }
    }
  }

  // SoA Philox: w[u][i] lane l = word i of counter (c + u * kLanes + lane_offset(l)).
  static void soa(Ctr128 c, const Keys& keys, U32 w[kSub][4]) {
    alignas(64) uint32_t offsets[kLanes];
    for (std::size_t l = 0; l < kLanes; ++l) offsets[l] = lane_offset(l);
    const uint32_t c0 = uint32_t(c.lo);
    if (c0 <= 0xFFFFFFFFu - (kSub * kLanes - 1)) {
      // Common case: no lane carries out of the lowest counter word.
      for (std::size_t u = 0; u < kSub; ++u) {
        w[u][0] = U32(c0 + uint32_t(u * kLanes)) + U32::load_aligned(offsets);
        w[u][1] = U32(uint32_t(c.lo >> 32));
        w[u][2] = U32(uint32_t(c.hi));
        w[u][3] = U32(uint32_t(c.hi >> 32));
      }
    } else {
      // Within a block of a 2^32 boundary: full 128-bit add per lane (rare).
      alignas(64) uint32_t a[4][kLanes];
      for (std::size_t u = 0; u < kSub; ++u) {
        for (std::size_t l = 0; l < kLanes; ++l) {
          const uint64_t lo = c.lo + u * kLanes + offsets[l];
          const uint64_t hi = c.hi + (lo < c.lo ? 1 : 0);
          a[0][l] = uint32_t(lo), a[1][l] = uint32_t(lo >> 32);
          a[2][l] = uint32_t(hi), a[3][l] = uint32_t(hi >> 32);
        }
        for (int i = 0; i < 4; ++i) w[u][i] = U32::load_aligned(a[i]);
      }
    }
    rounds(w, keys);
  }

  // The epi32 shuffle stage: t[0], t[1] hold (w1:w0) pairs, t[2], t[3] hold (w3:w2) pairs, per
  // 64-bit lane, for lanes {4q, 4q+1} (t[0], t[2]) and {4q+2, 4q+3} (t[1], t[3]) of each group q.
  static void stage32(const U32 w[4], U32 t[4]) {
    t[0] = unpack<32, false>(w[0], w[1]);
    t[1] = unpack<32, true>(w[0], w[1]);
    t[2] = unpack<32, false>(w[2], w[3]);
    t[3] = unpack<32, true>(w[2], w[3]);
  }
  // The epi64 stage: r[m] = block elements [m * size, (m+1) * size) in stream order.
  static void stage64(const U32 t[4], U32 r[4]) {
    r[0] = unpack<64, false>(t[0], t[2]);
    r[1] = unpack<64, true>(t[0], t[2]);
    r[2] = unpack<64, false>(t[1], t[3]);
    r[3] = unpack<64, true>(t[1], t[3]);
  }

  // Words [0, kWords) of the block starting at counter c, in stream order: r[m] = words
  // [m * kLanes, (m + 1) * kLanes), m < 4 * kSub (sub-block u is r[4u .. 4u + 3]).
  static void block_words(Ctr128 c, const Keys& keys, U32 r[4 * kSub]) {
    U32 w[kSub][4], t[4];
    soa(c, keys, w);
    for (std::size_t u = 0; u < kSub; ++u) {
      stage32(w[u], t);
      stage64(t, r + 4 * u);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Walking a range block by block.
  //
  // E = elements per counter (4: one word each; 2: two words each). Calls
  //   full(ctr, out_offset)                    for blocks entirely inside [first, first + n), and
  //   partial(ctr, skip, count, out_offset)    for the others: block elements [skip, skip + count).
  // out_offset is the index (relative to `first`) of the block's first used element.
  template <std::size_t E, class Full, class Partial>
  static void walk(uint64_t base, std::size_t first, std::size_t n, Full&& full, Partial&& partial) {
    constexpr std::size_t kPerBlock = E * kLanes * kSub;
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
  static void walk_out(uint64_t base, std::size_t first, T* out, std::size_t n, Block&& block) {
    walk<E>(
        base, first, n, [&](Ctr128 c, std::size_t o) { block(c, out + o); },
        [&](Ctr128 c, std::size_t skip, std::size_t count, std::size_t o) {
          alignas(64) T buf[E * kLanes * kSub];
          block(c, buf);
          std::memcpy(out + o, buf + skip, count * sizeof(T));
        });
  }

  // Largest value below `high` (or `high` itself if the interval is empty): keeps uniform in [low, high).
  template <class T>
  static T uniform_cap(T low, T high) {
    return high > low ? std::nextafter(high, low) : high;
  }

  // ---------------------------------------------------------------------------------------------
  // Words and uniforms

  static void fill_u32_range(uint64_t key, uint64_t base, std::size_t first, uint32_t* out, std::size_t n) {
    const Keys keys(key);
    walk_out<4>(base, first, out, n, [&keys](Ctr128 c, uint32_t* o) {
      U32 r[4 * kSub];
      block_words(c, keys, r);
      for (std::size_t m = 0; m < 4 * kSub; ++m) r[m].store_unaligned(o + m * kLanes);
    });
  }

  static void uniform_f32_range(uint64_t key, uint64_t base, std::size_t first, float* out, std::size_t n,
                                float low, float high) {
    const Keys keys(key);
    const F32 vlow(low), vrange(high - low), vcap(uniform_cap(low, high)), two_m24(0x1p-24f);
    walk_out<4>(base, first, out, n, [&](Ctr128 c, float* o) {
      U32 r[4 * kSub];
      block_words(c, keys, r);
      for (std::size_t m = 0; m < 4 * kSub; ++m) {
        const F32 u = xsimd::to_float(from_u32<I32>(r[m] >> 8)) * two_m24;  // exact, in [0, 1)
        xsimd::min(fmadd(u, vrange, vlow), vcap).store_unaligned(o + m * kLanes);
      }
    });
  }

  // 53-bit uniform from a 64-bit lane (w_hi << 32 | w_lo): (bits >> 11) * 2^-53 (+ 2^-53 if
  // `open0`). The integer (< 2^53) is converted exactly through the 2^52 trick, in halves: the
  // same instructions on every architecture (int64 -> double has no instruction before AVX-512DQ).
  static F64 u53(const U32& pairs, bool open0) {
    const U64 bits = from_u32<U64>(pairs) >> 11;
    const U64 lo = bits & U64(0xFFFFFFFFull), hi = bits >> 32;
    const F64 two52(4503599627370496.0);
    const F64 flo = xsimd::bitwise_cast<F64>(lo | U64(0x4330000000000000ull)) - two52;  // exact
    const F64 fhi = xsimd::bitwise_cast<F64>(hi | U64(0x4330000000000000ull)) - two52;  // exact
    F64 u = fmadd(fhi, F64(4294967296.0), flo);  // exact: < 2^53
    if (open0) u = u + F64(1.0);
    return u * F64(0x1p-53);
  }

  static void uniform_f64_range(uint64_t key, uint64_t base, std::size_t first, double* out, std::size_t n,
                                double low, double high) {
    const Keys keys(key);
    const F64 vlow(low), vrange(high - low), vcap(uniform_cap(low, high));
    walk_out<2>(base, first, out, n, [&](Ctr128 c, double* o) {
      U32 w[kSub][4], t[4], r[4];
      soa(c, keys, w);
      for (std::size_t u = 0; u < kSub; ++u) {  // sub-block u: elements [2 * kLanes * u, ...)
        stage32(w[u], t);  // t[i] 64-bit lanes: the 53-bit sources, see stage32
        for (int i = 0; i < 4; ++i) t[i] = as_u32(xsimd::min(fmadd(u53(t[i], false), vrange, vlow), vcap));
        stage64(t, r);  // doubles in stream order
        for (int m = 0; m < 4; ++m) from_u32<F64>(r[m]).store_unaligned(o + 2 * kLanes * u + m * F64::size);
      }
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Normals (Box-Muller). Computed before the transpose, on whole SoA batches, so each log/sincos
  // evaluation serves two outputs.

  static void normal_f32_range(uint64_t key, uint64_t base, std::size_t first, float* out, std::size_t n,
                               float mean, float std) {
    const Keys keys(key);
    const F32 vmean(mean), vstd(std), two_m24(0x1p-24f);
    walk_out<4>(base, first, out, n, [&](Ctr128 c, float* o) {
      U32 w[kSub][4], t[4], r[4];
      soa(c, keys, w);
      for (std::size_t u = 0; u < kSub; ++u) {  // sub-block u: elements [4 * kLanes * u, ...)
        // Pair (w0, w1) gives elements 4c, 4c+1 of counter c; pair (w2, w3) gives 4c+2, 4c+3.
        U32 z[4];
        for (int p = 0; p < 2; ++p) {
          const F32 u1 = (xsimd::to_float(from_u32<I32>(w[u][2 * p] >> 8)) + F32(1.0f)) * two_m24;  // (0, 1]
          const F32 u2 = xsimd::to_float(from_u32<I32>(w[u][2 * p + 1] >> 8)) * two_m24;           // [0, 1)
          const F32 rad = xsimd::sqrt(F32(-2.0f) * math::log(u1));
          const auto sc = math::sincos_2pi(u2);  // (sin, cos)
          z[2 * p] = as_u32(fmadd(rad * sc.second, vstd, vmean));
          z[2 * p + 1] = as_u32(fmadd(rad * sc.first, vstd, vmean));
        }
        stage32(z, t);
        stage64(t, r);
        for (int m = 0; m < 4; ++m) from_u32<F32>(r[m]).store_unaligned(o + 4 * kLanes * u + m * kLanes);
      }
    });
  }

  static void normal_f64_range(uint64_t key, uint64_t base, std::size_t first, double* out, std::size_t n,
                               double mean, double std) {
    const Keys keys(key);
    const F64 vmean(mean), vstd(std);
    walk_out<2>(base, first, out, n, [&](Ctr128 c, double* o) {
      U32 w[kSub][4], t[4], r[4];
      soa(c, keys, w);
      for (std::size_t u = 0; u < kSub; ++u) {  // sub-block u: elements [2 * kLanes * u, ...)
        stage32(w[u], t);
        // Counter c is pair c: u1 from (w1:w0) in t[0] / t[1], u2 from (w3:w2) in t[2] / t[3].
        // Element 2c (cos) goes where (w1:w0) was, 2c+1 (sin) where (w3:w2) was, so stage64 orders them.
        for (int h = 0; h < 2; ++h) {
          const F64 u1 = u53(t[h], true), u2 = u53(t[h + 2], false);
          const F64 rad = xsimd::sqrt(F64(-2.0) * math::log(u1));
          const auto sc = math::sincos_2pi(u2);
          t[h] = as_u32(fmadd(rad * sc.second, vstd, vmean));
          t[h + 2] = as_u32(fmadd(rad * sc.first, vstd, vmean));
        }
        stage64(t, r);
        for (int m = 0; m < 4; ++m) from_u32<F64>(r[m]).store_unaligned(o + 2 * kLanes * u + m * F64::size);
      }
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Dropout and Bernoulli: one 32-bit word per element, tested against an integer threshold.

  // Lanes where word >= t (unsigned), as a float mask: compared as signed words with the sign bit
  // flipped (xsimd 8.1 casts only signed integer masks to float masks).
  static xsimd::batch_bool<float, A> at_least(const U32& w, const U32& t) {
    const U32 flip(0x80000000u);
    return xsimd::bool_cast(from_u32<I32>(w ^ flip) >= from_u32<I32>(t ^ flip));
  }

  // Bit i of the result = lane i of `keep` (kLanes lanes).
  static uint64_t lane_bits(const xsimd::batch_bool<float, A>& keep) {
#if SORIX_X86
    if constexpr (kIsAvx512<A>) {
      return uint64_t(__mmask16(keep));
    } else if constexpr (kIsAvx2<A>) {
      return uint64_t(unsigned(_mm256_movemask_ps(keep)));
    } else if constexpr (kIsSse2<A>) {
      return uint64_t(unsigned(_mm_movemask_ps(keep)));
    } else
#endif
    {
      alignas(64) bool b[kLanes];
      keep.store_aligned(b);
      uint64_t bits = 0;
      for (std::size_t i = 0; i < kLanes; ++i) bits |= uint64_t(b[i]) << i;
      return bits;
    }
  }

  // Lane i of the result is set iff bit i of `bits` is (T lanes: kLanes floats or kLanes / 2 doubles).
  template <class T>
  static xsimd::batch_bool<T, A> bits_to_lanes(uint64_t bits) {
    using B = xsimd::batch<T, A>;
    using UI = xsimd::batch<std::conditional_t<sizeof(T) == 4, int32_t, int64_t>, A>;
    using UT = typename UI::value_type;
    alignas(64) UT pattern[B::size];
    for (std::size_t i = 0; i < B::size; ++i) pattern[i] = UT(1) << i;
    const UI sel = UI(UT(bits & ((uint64_t(1) << B::size) - 1))) & UI::load_aligned(pattern);
    return xsimd::bool_cast(sel != UI(UT(0)));
  }

#if SORIX_X86
  // v where the mask bit is set, +0 elsewhere, as an AND with the mask widened to lanes. Not
  // _mm512_maskz_mul_ps(keep, load, s): g++ folds the load into the multiply, and a masked
  // memory operand ran at 57% of a copy's speed on AMD Zen 5 (this AND: 102%).
  static __m512 keep_f32(__mmask16 keep, __m512 v) {
    return _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(v), _mm512_movm_epi32(keep)));
  }
  static __m512d keep_f64(__mmask8 keep, __m512d v) {
    return _mm512_castsi512_pd(_mm512_and_si512(_mm512_castpd_si512(v), _mm512_movm_epi64(keep)));
  }
#endif

  // One block of kWords elements: y = keep ? x * scale : 0 with keep = word >= t32; returns the
  // keep bits (bit i = element i of the block). T is float or double.
  template <class T>
  static uint64_t dropout_block(Ctr128 c, const Keys& keys, const T* x, T* y, uint32_t t32, T scale) {
    U32 r[4 * kSub];
    block_words(c, keys, r);
    uint64_t bits = 0;
#if SORIX_X86
    if constexpr (kIsAvx512<A>) {
      const __m512i vt = _mm512_set1_epi32(int(t32));
      for (int m = 0; m < 4; ++m) {
        const __mmask16 keep = _mm512_cmpge_epu32_mask(r[m], vt);
        bits |= uint64_t(keep) << (16 * m);
        if constexpr (std::is_same_v<T, float>) {
          _mm512_storeu_ps(y + 16 * m, keep_f32(keep, _mm512_mul_ps(_mm512_loadu_ps(x + 16 * m), _mm512_set1_ps(scale))));
        } else {
          for (int h = 0; h < 2; ++h) {
            const __m512d xv = _mm512_loadu_pd(x + 16 * m + 8 * h);
            _mm512_storeu_pd(y + 16 * m + 8 * h, keep_f64(__mmask8(keep >> (8 * h)), _mm512_mul_pd(xv, _mm512_set1_pd(scale))));
          }
        }
      }
    } else
#endif
    {
      const U32 vt(t32);
      using B = xsimd::batch<T, A>;
      const B vs(scale), zero(T(0));
      for (std::size_t m = 0; m < 4 * kSub; ++m) {
        const auto keep = at_least(r[m], vt);
        const uint64_t mb = lane_bits(keep);
        bits |= mb << (kLanes * m);
        if constexpr (std::is_same_v<T, float>) {
          const std::size_t o = kLanes * m;
          xsimd::select(keep, B::load_unaligned(x + o) * vs, zero).store_unaligned(y + o);
        } else {
          for (std::size_t h = 0; h < kLanes / B::size; ++h) {
            const std::size_t o = kLanes * m + B::size * h;
            xsimd::select(bits_to_lanes<T>(mb >> (B::size * h)), B::load_unaligned(x + o) * vs, zero)
                .store_unaligned(y + o);
          }
        }
      }
    }
    return bits;
  }

  template <class T>
  static void dropout(uint64_t key, uint64_t base, std::size_t first, const T* x, T* y, std::size_t n,
                      uint64_t threshold, T scale, uint8_t* mask_bits) {
    const Keys keys(key);
    if (threshold > 0xFFFFFFFFu) {  // p == 1: no word reaches 2^32, everything is dropped
      for (std::size_t i = 0; i < n; ++i) y[i] = T(0);
      if (mask_bits != nullptr) std::memset(mask_bits, 0, (n + 7) / 8);
      return;
    }
    const uint32_t t32 = uint32_t(threshold);
    // first % 8 == 0 with a mask (checked by the caller), so blocks start at offsets o that are
    // multiples of kWords (and 8).
    walk<4>(
        base, first, n,
        [&](Ctr128 c, std::size_t o) {
          const uint64_t bits = dropout_block(c, keys, x + o, y + o, t32, scale);
          if (mask_bits != nullptr)
            for (std::size_t b = 0; b < kWords / 8; ++b) mask_bits[o / 8 + b] = uint8_t(bits >> (8 * b));
        },
        [&](Ctr128 c, std::size_t skip, std::size_t count, std::size_t o) {
          alignas(64) T xb[kWords] = {}, yb[kWords];
          std::memcpy(xb + skip, x + o, count * sizeof(T));
          uint64_t bits = dropout_block(c, keys, xb, yb, t32, scale);
          std::memcpy(y + o, yb + skip, count * sizeof(T));
          if (mask_bits != nullptr) {  // skip == 0 here (first % 4 == 0)
            if (count < 64) bits &= (uint64_t(1) << count) - 1;
            for (std::size_t b = 0; b < (count + 7) / 8; ++b) mask_bits[o / 8 + b] = uint8_t(bits >> (8 * b));
          }
        });
  }

  template <class T>
  static void dropout_backward_bits(const T* gy, const uint8_t* bits, T* gx, std::size_t n, T scale) {
    std::size_t i = 0;
#if SORIX_X86
    if constexpr (kIsAvx512<A>) {
      constexpr std::size_t kStep = 64 / sizeof(T);  // elements per 512-bit register: 16 or 8
      using Mask = std::conditional_t<sizeof(T) == 4, __mmask16, __mmask8>;
      // 64 elements per mask word, while whole words remain (one load of the bits per 4 or 8
      // registers).
      for (; i + 64 <= n; i += 64) {
        uint64_t word;
        std::memcpy(&word, bits + i / 8, sizeof(word));  // bit b of byte k is element 8k + b (little-endian)
        for (std::size_t v = 0; v < 64; v += kStep) {
          const Mask keep = Mask(word >> v);
          if constexpr (sizeof(T) == 4)
            _mm512_storeu_ps(gx + i + v, keep_f32(keep, _mm512_mul_ps(_mm512_loadu_ps(gy + i + v), _mm512_set1_ps(scale))));
          else
            _mm512_storeu_pd(gx + i + v, keep_f64(keep, _mm512_mul_pd(_mm512_loadu_pd(gy + i + v), _mm512_set1_pd(scale))));
        }
      }
      for (; i < n; i += kStep) {
        Mask keep = 0;
        if (n - i < kStep) {  // tail: masked loads and stores, only the bytes that exist are read
          const Mask live = Mask((1u << (n - i)) - 1);
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
        std::memcpy(&keep, bits + i / 8, sizeof(Mask));  // bit b of byte k is element 8k + b (little-endian)
        if constexpr (sizeof(T) == 4)
          _mm512_storeu_ps(gx + i, keep_f32(keep, _mm512_mul_ps(_mm512_loadu_ps(gy + i), _mm512_set1_ps(scale))));
        else
          _mm512_storeu_pd(gx + i, keep_f64(keep, _mm512_mul_pd(_mm512_loadu_pd(gy + i), _mm512_set1_pd(scale))));
      }
    } else
#endif
    {
      // 8 elements (one mask byte) at a time, in batches of B::size lanes.
      using B = xsimd::batch<T, A>;
      const B vs(scale), zero(T(0));
      if constexpr (B::size <= 8) {
        for (; i + 8 <= n; i += 8) {
          const uint64_t byte = bits[i / 8];
          for (std::size_t h = 0; h < 8; h += B::size)
            xsimd::select(bits_to_lanes<T>(byte >> h), B::load_unaligned(gy + i + h) * vs, zero)
                .store_unaligned(gx + i + h);
        }
      }
    }
    for (; i < n; ++i) gx[i] = (bits[i / 8] >> (i % 8)) & 1 ? gy[i] * scale : T(0);
  }

  template <class T>
  static void bernoulli(uint64_t key, uint64_t base, std::size_t first, T* out, std::size_t n, uint64_t t) {
    const Keys keys(key);
    if (t > 0xFFFFFFFFu) {  // p == 1: every word is below 2^32
      for (std::size_t i = 0; i < n; ++i) out[i] = T(1);
      return;
    }
    using B = xsimd::batch<T, A>;
    const U32 vt = U32(static_cast<uint32_t>(t));
    walk_out<4>(base, first, out, n, [&](Ctr128 c, T* o) {
      U32 r[4 * kSub];
      block_words(c, keys, r);
      for (std::size_t m = 0; m < 4 * kSub; ++m) {
        const uint64_t mb = lane_bits(!at_least(r[m], vt));
        for (std::size_t h = 0; h < kLanes / B::size; ++h)
          xsimd::select(bits_to_lanes<T>(mb >> (B::size * h)), B(T(1)), B(T(0)))
              .store_unaligned(o + kLanes * m + B::size * h);
      }
    });
  }
};

}  // namespace sorix::kernels
