// Philox kernels against Random123's reference implementation, bit for bit.
#include <sorix/core/philox.hpp>

#include <Random123/philox.h>
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <stdexcept>
#include <vector>

namespace rng = sorix::rng;
// Random123 defines a function-like macro philox4x32(c, k); calls to ours are written
// (rng::philox4x32)(...) so the macro does not expand.

namespace {

// Reference word j of the stream (key, base): Random123 philox4x32 (10 rounds) on the 128-bit
// counter base + j/4, word j % 4.
uint32_t ref_word(uint64_t key, uint64_t base, uint64_t j) {
    const uint64_t lo = base + j / 4;
    const uint64_t hi = lo < base ? 1 : 0;
    r123::Philox4x32::ctr_type c = {{uint32_t(lo), uint32_t(lo >> 32), uint32_t(hi), uint32_t(hi >> 32)}};
    r123::Philox4x32::key_type k = {{uint32_t(key), uint32_t(key >> 32)}};
    return r123::Philox4x32()(c, k).v[j % 4];
}

std::vector<uint32_t> ref_words(uint64_t key, uint64_t base, std::size_t first, std::size_t n) {
    std::vector<uint32_t> w(n);
    for (std::size_t i = 0; i < n; ++i) w[i] = ref_word(key, base, first + i);
    return w;
}

const std::vector<std::size_t> kFirsts = {0, 1, 2, 3, 5, 63, 64, 65, 4095, 4097};
const std::vector<std::size_t> kSizes = {0, 1, 3, 4, 5, 15, 16, 17, 63, 64, 65, 1000, 4097};
const std::vector<uint64_t> kKeys = {0, 1, 0xFFFFFFFFFFFFFFFFull, 0x243F6A8885A308D3ull, 42};
// Bases that make lanes of one block straddle 2^32 and 2^64 (carry into counter_hi64).
const std::vector<uint64_t> kBases = {0,           7,           0xFFFFFFFFull - 20, 0xFFFFFFFFull,
                                      0x1FFFFFFF5, 0xFFFFFFFFFFFFFFFFull - 30,     0xFFFFFFFFFFFFFFFFull,
                                      0x123456789ABCDEFull};

float ref_uniform_f32(uint32_t w, float low, float high) {
    const float u = float(w >> 8) * 0x1p-24f;
    const float cap = high > low ? std::nextafter(high, low) : high;
    return std::min(std::fma(u, high - low, low), cap);
}
double ref_uniform_f64(uint32_t w_lo, uint32_t w_hi, double low, double high) {
    const double u = double(((uint64_t(w_hi) << 32) | w_lo) >> 11) * 0x1p-53;
    const double cap = high > low ? std::nextafter(high, low) : high;
    return std::min(std::fma(u, high - low, low), cap);
}

}  // namespace

TEST_CASE("philox4x32 known-answer vectors (Random123 kat_vectors)", "[rng]") {
    struct Kat {
        uint32_t ctr[4], key[2], out[4];
    };
    const Kat kats[] = {
        {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
        {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
         {0xffffffff, 0xffffffff},
         {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
        {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
         {0xa4093822, 0x299f31d0},
         {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
    };
    for (const Kat& k : kats) {
        r123::Philox4x32::ctr_type c = {{k.ctr[0], k.ctr[1], k.ctr[2], k.ctr[3]}};
        r123::Philox4x32::key_type kk = {{k.key[0], k.key[1]}};
        const auto ref = r123::Philox4x32()(c, kk);
        const auto ours = (rng::philox4x32)(uint64_t(k.ctr[1]) << 32 | k.ctr[0], uint64_t(k.ctr[3]) << 32 | k.ctr[2],
                                          uint64_t(k.key[1]) << 32 | k.key[0]);
        for (int i = 0; i < 4; ++i) {
            CHECK(ref.v[i] == k.out[i]);
            CHECK(ours.v[i] == k.out[i]);
        }
    }
}

TEST_CASE("philox4x32 scalar path equals Random123 on random inputs", "[rng]") {
    std::mt19937_64 gen(7);
    for (int i = 0; i < 10000; ++i) {
        const uint64_t lo = gen(), hi = gen(), key = gen();
        r123::Philox4x32::ctr_type c = {{uint32_t(lo), uint32_t(lo >> 32), uint32_t(hi), uint32_t(hi >> 32)}};
        r123::Philox4x32::key_type k = {{uint32_t(key), uint32_t(key >> 32)}};
        const auto ref = r123::Philox4x32()(c, k);
        const auto ours = (rng::philox4x32)(lo, hi, key);
        for (int w = 0; w < 4; ++w) REQUIRE(ours.v[w] == ref.v[w]);
    }
}

TEST_CASE("fill_u32_range equals the reference stream for any first, n, key and base", "[rng]") {
    for (uint64_t key : kKeys)
        for (uint64_t base : kBases)
            for (std::size_t first : kFirsts)
                for (std::size_t n : kSizes) {
                    std::vector<uint32_t> out(n + 1, 0xDEADBEEF);
                    rng::fill_u32_range(key, base, first, out.data(), n);
                    INFO("key " << key << " base " << base << " first " << first << " n " << n);
                    REQUIRE(std::vector<uint32_t>(out.begin(), out.begin() + long(n)) == ref_words(key, base, first, n));
                    REQUIRE(out[n] == 0xDEADBEEF);  // nothing written past the end
                }
}

TEST_CASE("fill_u32 is fill_u32_range from 0, and pieces assemble into the whole", "[rng]") {
    const std::size_t n = 10007;
    std::vector<uint32_t> whole(n), a(n), pieces(n);
    rng::fill_u32(3, 0xFFFFFFFFull - 100, whole.data(), n);
    rng::fill_u32_range(3, 0xFFFFFFFFull - 100, 0, a.data(), n);
    CHECK(whole == a);
    const std::size_t cuts[] = {0, 1, 6, 77, 1000, 1001, 4096, 9999, n};
    for (std::size_t c = 0; c + 1 < std::size(cuts); ++c)
        rng::fill_u32_range(3, 0xFFFFFFFFull - 100, cuts[c], pieces.data() + cuts[c], cuts[c + 1] - cuts[c]);
    CHECK(whole == pieces);
}

TEST_CASE("counters consumed per draw", "[rng]") {
    CHECK(rng::counters_for_u32(0) == 0);
    CHECK(rng::counters_for_u32(1) == 1);
    CHECK(rng::counters_for_u32(4) == 1);
    CHECK(rng::counters_for_u32(5) == 2);
    CHECK(rng::counters_for_f32(9) == 3);
    CHECK(rng::counters_for_f64(0) == 0);
    CHECK(rng::counters_for_f64(3) == 2);
    CHECK(rng::counters_for_f64(4) == 2);
    CHECK(rng::counters_for_u32(std::numeric_limits<std::size_t>::max()) == (uint64_t(1) << 62));
}

TEST_CASE("uniform_f32_range matches (w >> 8) * 2^-24 mapped to [low, high)", "[rng]") {
    const std::pair<float, float> ranges[] = {{0.f, 1.f}, {-3.f, 5.f}, {1.f, 2.f}, {-1e-3f, 1e-3f}};
    for (auto [low, high] : ranges)
        for (std::size_t first : kFirsts)
            for (std::size_t n : {std::size_t(0), std::size_t(1), std::size_t(17), std::size_t(1000)}) {
                std::vector<float> out(n);
                rng::uniform_f32_range(11, 0xFFFFFFF0ull, first, out.data(), n, low, high);
                const auto w = ref_words(11, 0xFFFFFFF0ull, first, n);
                for (std::size_t i = 0; i < n; ++i) {
                    const float e = ref_uniform_f32(w[i], low, high);
#if defined(__FMA__)
                    REQUIRE(out[i] == e);  // bit-exact where the kernel's fma is fused
#else
                    REQUIRE(out[i] == Approx(e).margin(4 * std::numeric_limits<float>::epsilon()));
#endif
                    REQUIRE(out[i] >= low);
                    REQUIRE(out[i] < high);
                }
            }
}

TEST_CASE("uniform_f32 stays below high when rounding would reach it", "[rng]") {
    // On [1, 2) the values 2 - 2^-24 round up to 2: the cap keeps the interval half-open.
    std::vector<float> out(100000);
    rng::uniform_f32_range(5, 0, 0, out.data(), out.size(), 1.f, 2.f);
    for (float v : out) REQUIRE((v >= 1.f && v < 2.f));
}

TEST_CASE("uniform_f64_range uses words 2j (low half) and 2j+1 (high half)", "[rng]") {
    for (std::size_t first : kFirsts)
        for (std::size_t n : kSizes) {
            std::vector<double> out(n);
            rng::uniform_f64_range(99, 0xFFFFFFFFFFFFFFFFull - 3, first, out.data(), n, -2.0, 3.0);
            for (std::size_t i = 0; i < n; ++i) {
                const uint64_t j = first + i;
                const double e = ref_uniform_f64(ref_word(99, 0xFFFFFFFFFFFFFFFFull - 3, 2 * j),
                                                 ref_word(99, 0xFFFFFFFFFFFFFFFFull - 3, 2 * j + 1), -2.0, 3.0);
#if defined(__FMA__)
                REQUIRE(out[i] == e);
#else
                REQUIRE(out[i] == Approx(e).margin(1e-15));
#endif
            }
        }
}

TEST_CASE("chi-square uniformity of 10^6 float uniforms over 100 bins", "[rng]") {
    const std::size_t n = 1000000, bins = 100;
    std::vector<float> u(n);
    rng::uniform_f32_range(2024, 0, 0, u.data(), n, 0.f, 1.f);
    std::vector<double> count(bins, 0.0);
    for (float v : u) {
        REQUIRE((v >= 0.f && v < 1.f));
        count[std::size_t(v * bins)] += 1;
    }
    double chi2 = 0;
    const double expect = double(n) / bins;
    for (double c : count) chi2 += (c - expect) * (c - expect) / expect;
    // 99 degrees of freedom: mean 99, sd 14; 200 is beyond 7 sd (fixed seed, so this is deterministic).
    CHECK(chi2 < 200.0);
    CHECK(chi2 > 40.0);  // suspiciously perfect would be a bug too
}

namespace {
template <class T>
void check_normal_formula(bool f64) {
    const uint64_t key = 77, base = 0xFFFFFFFFull - 9;
    for (std::size_t first : kFirsts)
        for (std::size_t n : {std::size_t(0), std::size_t(1), std::size_t(2), std::size_t(33), std::size_t(500)}) {
            std::vector<T> out(n);
            if constexpr (std::is_same_v<T, float>)
                rng::normal_f32_range(key, base, first, out.data(), n, 1.5f, 2.0f);
            else
                rng::normal_f64_range(key, base, first, out.data(), n, 1.5, 2.0);
            for (std::size_t i = 0; i < n; ++i) {
                const uint64_t j = first + i, k = j / 2;
                double u1, u2;
                if (!f64) {
                    u1 = (double(ref_word(key, base, 2 * k) >> 8) + 1) * 0x1p-24;
                    u2 = double(ref_word(key, base, 2 * k + 1) >> 8) * 0x1p-24;
                } else {
                    auto w53 = [&](uint64_t a) {
                        return ((uint64_t(ref_word(key, base, a + 1)) << 32) | ref_word(key, base, a)) >> 11;
                    };
                    u1 = (double(w53(4 * k)) + 1) * 0x1p-53;
                    u2 = double(w53(4 * k + 2)) * 0x1p-53;
                }
                const double r = std::sqrt(-2 * std::log(u1)), th = 2 * M_PI * u2;
                const double z = 1.5 + 2.0 * (j % 2 == 0 ? r * std::cos(th) : r * std::sin(th));
                INFO("first " << first << " i " << i);
                REQUIRE(double(out[i]) == Approx(z).margin(f64 ? 1e-12 : 2e-5));
            }
        }
}
template <class T>
void check_normal_pieces() {
    // Values are bit-identical however the range is cut (odd starts included).
    const std::size_t n = 3001;
    std::vector<T> whole(n), pieces(n);
    auto draw = [](std::size_t first, T* out, std::size_t m) {
        if constexpr (std::is_same_v<T, float>)
            rng::normal_f32_range(8, 1234, first, out, m, 0.f, 1.f);
        else
            rng::normal_f64_range(8, 1234, first, out, m, 0.0, 1.0);
    };
    draw(0, whole.data(), n);
    const std::size_t cuts[] = {0, 1, 2, 5, 64, 99, 1000, 2999, n};
    for (std::size_t c = 0; c + 1 < std::size(cuts); ++c) draw(cuts[c], pieces.data() + cuts[c], cuts[c + 1] - cuts[c]);
    for (std::size_t i = 0; i < n; ++i) REQUIRE(whole[i] == pieces[i]);  // exact, NaN would fail too
}
template <class T>
void check_normal_moments() {
    const std::size_t n = 1000000;
    std::vector<T> z(n);
    if constexpr (std::is_same_v<T, float>)
        rng::normal_f32_range(31337, 0, 0, z.data(), n, 0.f, 1.f);
    else
        rng::normal_f64_range(31337, 0, 0, z.data(), n, 0.0, 1.0);
    double s = 0, s2 = 0;
    for (T v : z) {
        REQUIRE(std::isfinite(v));
        s += v;
        s2 += double(v) * v;
    }
    const double mean = s / n, var = s2 / n - mean * mean;
    CHECK(std::abs(mean) < 0.005);  // sd of the mean is 0.001
    CHECK(std::abs(var - 1.0) < 0.01);  // sd of the variance is ~0.0014
}
}  // namespace

TEST_CASE("normal_f32_range: Box-Muller on words (2k, 2k+1), any range", "[rng]") {
    check_normal_formula<float>(false);
    check_normal_pieces<float>();
    check_normal_moments<float>();
}

TEST_CASE("normal_f64_range: Box-Muller on the 53-bit pair of counter k, any range", "[rng]") {
    check_normal_formula<double>(true);
    check_normal_pieces<double>();
    check_normal_moments<double>();
}

TEST_CASE("dropout_threshold rounds p * 2^32 and saturates", "[rng]") {
    CHECK(rng::dropout_threshold(0.0) == 0);
    CHECK(rng::dropout_threshold(-1.0) == 0);
    CHECK(rng::dropout_threshold(std::nan("")) == 0);
    CHECK(rng::dropout_threshold(1.0) == (uint64_t(1) << 32));
    CHECK(rng::dropout_threshold(2.0) == (uint64_t(1) << 32));
    CHECK(rng::dropout_threshold(0.5) == (uint64_t(1) << 31));
    CHECK(rng::dropout_threshold(0x1p-33) == 1);  // 0.5 rounds away from zero
    CHECK(rng::dropout_threshold(0.3) == 1288490189u);  // 0.3 * 2^32 = 1288490188.8
    CHECK(rng::dropout_threshold(std::nextafter(1.0, 0.0)) == (uint64_t(1) << 32));
}

namespace {
template <class T>
void forward(uint64_t key, uint64_t base, std::size_t first, const T* x, T* y, std::size_t n, uint64_t t, T s,
             uint8_t* bits) {
    if constexpr (std::is_same_v<T, float>)
        rng::dropout_forward_f32(key, base, first, x, y, n, t, s, bits);
    else
        rng::dropout_forward_f64(key, base, first, x, y, n, t, s, bits);
}
template <class T>
void regen(uint64_t key, uint64_t base, std::size_t first, const T* gy, T* gx, std::size_t n, uint64_t t, T s) {
    if constexpr (std::is_same_v<T, float>)
        rng::dropout_backward_regen_f32(key, base, first, gy, gx, n, t, s);
    else
        rng::dropout_backward_regen_f64(key, base, first, gy, gx, n, t, s);
}
template <class T>
void from_bits(const T* gy, const uint8_t* bits, T* gx, std::size_t n, T s) {
    if constexpr (std::is_same_v<T, float>)
        rng::dropout_backward_bits_f32(gy, bits, gx, n, s);
    else
        rng::dropout_backward_bits_f64(gy, bits, gx, n, s);
}

template <class T>
void check_dropout() {
    const uint64_t key = 0xC0FFEE, base = 0xFFFFFFFFull - 13;
    const uint64_t thresholds[] = {0, 1, rng::dropout_threshold(0.3), uint64_t(1) << 31, 0xFFFFFFFFull,
                                   uint64_t(1) << 32};
    const std::size_t firsts[] = {0, 8, 64, 4096, 1, 3, 63, 65, 4097};
    for (uint64_t t : thresholds)
        for (std::size_t first : firsts)
            for (std::size_t n : kSizes) {
                INFO("t " << t << " first " << first << " n " << n);
                std::vector<T> x(n), y(n + 1, T(-7)), gy(n), gx(n + 1, T(-7)), gx2(n, T(-7));
                for (std::size_t i = 0; i < n; ++i) x[i] = T(0.25) * T(i % 17) - T(1.5), gy[i] = T(i % 5) + T(0.5);
                const T scale = T(1) / T(0.7);
                const bool with_mask = first % 8 == 0;
                std::vector<uint8_t> bits((n + 7) / 8 + 1, 0xAB);
                forward<T>(key, base, first, x.data(), y.data(), n, t, scale, with_mask ? bits.data() : nullptr);
                const auto w = ref_words(key, base, first, n);
                for (std::size_t i = 0; i < n; ++i) {
                    const bool keep = uint64_t(w[i]) >= t;
                    REQUIRE(y[i] == (keep ? x[i] * scale : T(0)));
                    REQUIRE(!std::signbit(y[i] == 0 && !keep ? y[i] : T(0)));  // dropped -> +0
                    if (with_mask) REQUIRE(bool((bits[i / 8] >> (i % 8)) & 1) == keep);
                }
                REQUIRE(y[n] == T(-7));
                if (with_mask) {
                    if (n % 8) REQUIRE((bits[n / 8] >> (n % 8)) == 0);  // unused high bits are 0
                    REQUIRE(bits[(n + 7) / 8] == 0xAB);                 // nothing written past the mask
                    from_bits<T>(gy.data(), bits.data(), gx2.data(), n, scale);
                }
                regen<T>(key, base, first, gy.data(), gx.data(), n, t, scale);
                for (std::size_t i = 0; i < n; ++i) {
                    const bool keep = uint64_t(w[i]) >= t;
                    REQUIRE(gx[i] == (keep ? gy[i] * scale : T(0)));
                    if (with_mask) REQUIRE(gx2[i] == gx[i]);
                }
                REQUIRE(gx[n] == T(-7));
                // In place gives the same as out of place.
                std::vector<T> inplace = x;
                forward<T>(key, base, first, inplace.data(), inplace.data(), n, t, scale, nullptr);
                for (std::size_t i = 0; i < n; ++i) REQUIRE(inplace[i] == y[i]);
            }
}
}  // namespace

TEST_CASE("dropout f32: fused forward, mask bits and both backwards are exact", "[rng]") { check_dropout<float>(); }
TEST_CASE("dropout f64: fused forward, mask bits and both backwards are exact", "[rng]") { check_dropout<double>(); }

TEST_CASE("dropout mask of a chunked range equals the whole", "[rng]") {
    const std::size_t n = 5000;
    std::vector<float> x(n, 1.f), y(n), y2(n);
    std::vector<uint8_t> whole((n + 7) / 8), pieces((n + 7) / 8);
    const uint64_t t = rng::dropout_threshold(0.5);
    rng::dropout_forward_f32(1, 2, 0, x.data(), y.data(), n, t, 2.f, whole.data());
    for (std::size_t c = 0; c < n; c += 1024)  // chunks at multiples of 64 own whole mask words
        rng::dropout_forward_f32(1, 2, c, x.data() + c, y2.data() + c, std::min<std::size_t>(1024, n - c), t, 2.f,
                                 pieces.data() + c / 8);
    CHECK(whole == pieces);
    CHECK(y == y2);
}

TEST_CASE("dropout_backward_bits reads a mask from an offset of 8 elements", "[rng]") {
    // n and the byte offset are not multiples of the SIMD width, so the tail path runs.
    const std::size_t total = 203;
    std::vector<uint8_t> bits((total + 7) / 8);
    for (std::size_t b = 0; b < bits.size(); ++b) bits[b] = uint8_t(b * 37 + 11);
    std::vector<double> gy(total), gx(total, -1.0);
    for (std::size_t i = 0; i < total; ++i) gy[i] = double(i) - 50.0;
    for (std::size_t off : {std::size_t(0), std::size_t(8), std::size_t(24), std::size_t(136)}) {
        const std::size_t n = total - off;
        rng::dropout_backward_bits_f64(gy.data() + off, bits.data() + off / 8, gx.data(), n, 3.0);
        for (std::size_t i = 0; i < n; ++i) {
            const std::size_t e = off + i;
            REQUIRE(gx[i] == (((bits[e / 8] >> (e % 8)) & 1) ? gy[e] * 3.0 : 0.0));
        }
    }
}

TEST_CASE("dropout with mask_bits rejects a first that is not a multiple of 8", "[rng]") {
    float x[4] = {}, y[4];
    uint8_t b[1];
    CHECK_THROWS_AS(rng::dropout_forward_f32(0, 0, 4, x, y, 4, 0, 1.f, b), std::invalid_argument);
    CHECK_NOTHROW(rng::dropout_forward_f32(0, 0, 4, x, y, 4, 0, 1.f, nullptr));
}

TEST_CASE("bernoulli gives 1 iff word < round(p * 2^32)", "[rng]") {
    const double ps[] = {0.0, 0.3, 0.5, 0.999, 1.0};
    for (double p : ps)
        for (std::size_t first : kFirsts)
            for (std::size_t n : {std::size_t(0), std::size_t(5), std::size_t(64), std::size_t(1000)}) {
                std::vector<float> f(n);
                std::vector<double> d(n);
                rng::bernoulli_f32_range(5, 0xFFFFFFFFull, first, f.data(), n, p);
                rng::bernoulli_f64_range(5, 0xFFFFFFFFull, first, d.data(), n, p);
                const auto w = ref_words(5, 0xFFFFFFFFull, first, n);
                const uint64_t t = rng::dropout_threshold(p);
                for (std::size_t i = 0; i < n; ++i) {
                    const double e = uint64_t(w[i]) < t ? 1.0 : 0.0;
                    REQUIRE(f[i] == float(e));
                    REQUIRE(d[i] == e);
                }
            }
}
