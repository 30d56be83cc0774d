// The dispatch table's selections, gathers, scatter-add, BatchNorm loops and softmax along a dim
// that is not the last (table.hpp's IndexKernels, BnKernels, SoftmaxColsKernels, gather_rows):
// every table this CPU runs against exact references where the result is defined without
// rounding, and bit for bit against the baseline table everywhere, on ragged sizes (one element,
// tails, sizes that are no multiple of any register); then the ops built on them, bit for bit
// across capabilities at 1, 2 and 3 threads.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include <sys/mman.h>
#include <unistd.h>

#include "sorix_core/kernels/table.hpp"
#include "sorix_core/kernels/winograd.hpp"
#include "sorix/sorix.hpp"
#include "support/capabilities.hpp"
#include "support/gradcheck.hpp"
#include "support/winograd_definition.hpp"

namespace kernels = sorix::kernels;
namespace testing = sorix::testing;
namespace F = sorix::nn::functional;

namespace {

// The tables this CPU runs, baseline first.
std::vector<const kernels::KernelTable*> runnable_tables() {
  std::vector<const kernels::KernelTable*> out;
  for (const auto& name : sorix::available_cpu_capabilities()) out.push_back(kernels::table_for(name.c_str()));
  return out;
}

// Values with ties, signed zeros, infinities and (floating point, when `nans`) NaNs.
template <class T>
std::vector<T> awkward_values(std::size_t n, std::uint32_t seed, bool nans) {
  std::vector<T> v(n);
  std::uint32_t s = seed;
  for (std::size_t i = 0; i < n; ++i) {
    s = s * 1664525u + 1013904223u;
    const int pick = static_cast<int>((s >> 24) % 16);
    if constexpr (std::is_floating_point_v<T>) {
      const T inf = std::numeric_limits<T>::infinity();
      const T specials[] = {T(0), -T(0), T(7), T(7), inf, -inf, std::numeric_limits<T>::quiet_NaN()};
      if (pick < 3) {
        const T sp = specials[(s >> 8) % (nans ? 7 : 6)];
        v[i] = sp;
        continue;
      }
      v[i] = T(int((s >> 8) % 401) - 200) / T(8);  // many ties
    } else {
      v[i] = pick < 2 ? (pick == 0 ? std::numeric_limits<T>::max() : std::numeric_limits<T>::min())
                      : T(int((s >> 8) % 41) - 20);
    }
  }
  return v;
}

template <bool IsMax, class T>
bool beats(T a, T b) {
  if constexpr (std::is_floating_point_v<T>) {
    if (std::isnan(b)) return false;
    if (std::isnan(a)) return true;
  }
  return IsMax ? a > b : a < b;
}

template <bool IsMax, class T>
std::size_t reference_arg(const T* x, std::size_t n) {
  std::size_t best = 0;
  for (std::size_t i = 1; i < n; ++i)
    if (beats<IsMax>(x[i], x[best])) best = i;
  return best;
}

const std::size_t kSizes[] = {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 1000, 16385};

template <class T>
void check_selections(const kernels::KernelTable& t, bool nans) {
  const auto& k = kernels::index_kernels<T>(t);
  for (std::size_t n : kSizes) {
    const auto x = awkward_values<T>(n, static_cast<std::uint32_t>(n * 31 + nans), nans);
    INFO(t.name << ", n " << n << ", nans " << nans);
    CHECK(k.argmax(x.data(), n) == reference_arg<true>(x.data(), n));
    CHECK(k.argmin(x.data(), n) == reference_arg<false>(x.data(), n));
  }
  // Column scans: r rows of n columns at a stride that is no multiple of a register.
  for (std::size_t r : {1, 2, 5, 33}) {
    for (std::size_t n : {1, 3, 15, 16, 17, 33, 100}) {
      const std::size_t stride = n + 3;
      const auto x = awkward_values<T>(r * stride, static_cast<std::uint32_t>(r * 1000 + n), nans);
      std::vector<T> v(n), rv(n);
      std::vector<std::int64_t> ix(n), rix(n);
      std::vector<T> col(r);
      for (bool is_max : {true, false}) {
        (is_max ? k.max_cols : k.min_cols)(x.data(), r, stride, n, v.data(), ix.data());
        for (std::size_t c = 0; c < n; ++c) {
          for (std::size_t j = 0; j < r; ++j) col[j] = x[j * stride + c];
          rix[c] = static_cast<std::int64_t>(is_max ? reference_arg<true>(col.data(), r)
                                                    : reference_arg<false>(col.data(), r));
          rv[c] = col[static_cast<std::size_t>(rix[c])];
        }
        INFO(t.name << ", cols: r " << r << ", n " << n << ", max " << is_max);
        CHECK(ix == rix);
        CHECK((n == 0 || std::memcmp(v.data(), rv.data(), n * sizeof(T)) == 0));
      }
    }
  }
}

template <class T>
void check_scatter_and_gather(const kernels::KernelTable& t) {
  const auto& k = kernels::index_kernels<T>(t);
  for (std::size_t inner : {1, 3, 16, 17, 67}) {
    const std::size_t outer = 2, K = 23, R = 7;
    const auto src = awkward_values<T>(outer * K * inner, static_cast<std::uint32_t>(inner), false);
    std::vector<std::int64_t> index(K);
    for (std::size_t i = 0; i < K; ++i) index[i] = static_cast<std::int64_t>((i * 5 + i / 3) % (R - 1));  // row R-1: none
    // RowOrder's contract: begin per destination row, the source rows in increasing order.
    std::vector<std::size_t> begin(R + 1, 0), order;
    for (std::size_t r = 0; r < R; ++r) {
      for (std::size_t i = 0; i < K; ++i)
        if (index[i] == static_cast<std::int64_t>(r)) order.push_back(i);
      begin[r + 1] = order.size();
    }
    for (std::int64_t zero_row : {std::int64_t(-1), std::int64_t(2)}) {
      const std::size_t c0 = inner > 3 ? 1 : 0, c1 = inner > 3 ? inner - 1 : inner;
      std::vector<T> dst(outer * R * inner, T(5)), ref(outer * R * inner, T(5));
      k.scatter_add_rows(src.data(), dst.data(), begin.data(), order.data(), K, R, inner, 1, outer * R, c0, c1,
                         zero_row);
      for (std::size_t q = 1; q < outer * R; ++q) {
        const std::size_t o = q / R, r = q % R;
        for (std::size_t c = c0; c < c1; ++c) {
          T a = T(0);
          if (static_cast<std::int64_t>(r) != zero_row)
            for (std::size_t p = begin[r]; p < begin[r + 1]; ++p) a = kernels::wrapping_add(a, src[(o * K + order[p]) * inner + c]);
          ref[q * inner + c] = a;
        }
      }
      INFO(t.name << ", scatter inner " << inner << ", zero row " << zero_row);
      CHECK(std::memcmp(dst.data(), ref.data(), dst.size() * sizeof(T)) == 0);
    }
    // gather: dst[k * ld + i] = src[idx[k * ld + i] * stride + offset[i]], 3 rows of inner - 1
    // (at least 1) columns, ld = inner.
    const std::size_t rows = 3, n = std::max<std::size_t>(inner - 1, 1);
    std::vector<std::size_t> offset(n);
    for (std::size_t i = 0; i < n; ++i) offset[i] = (i * 7) % inner;
    std::vector<std::int64_t> idx(rows * inner);
    for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<std::int64_t>((i * 3) % (outer * K));
    std::vector<T> out(rows * inner, T(4)), expect(rows * inner, T(4));
    k.gather(src.data(), idx.data(), inner, offset.data(), out.data(), rows, n, inner);
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t i = 0; i < n; ++i)
        expect[r * inner + i] = src[static_cast<std::size_t>(idx[r * inner + i]) * inner + offset[i]];
    INFO(t.name << ", gather inner " << inner);
    CHECK(std::memcmp(out.data(), expect.data(), out.size() * sizeof(T)) == 0);
    // gather's adjoint: the same block added back, repeated targets in increasing k.
    std::vector<T> acc(src.size(), T(1)), acc_ref(src.size(), T(1));
    k.scatter_add(src.data(), idx.data(), inner, offset.data(), acc.data(), rows, n, inner);
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t i = 0; i < n; ++i) {
        T& to = acc_ref[static_cast<std::size_t>(idx[r * inner + i]) * inner + offset[i]];
        to = kernels::wrapping_add(to, src[r * inner + i]);
      }
    CHECK(std::memcmp(acc.data(), acc_ref.data(), acc.size() * sizeof(T)) == 0);
  }
}

}  // namespace

TEST_CASE("selections, the scatter-add and gathers of every table match exact references", "[kernels][index]") {
  for (const auto* t : runnable_tables()) {
    check_selections<float>(*t, true);
    check_selections<float>(*t, false);
    check_selections<double>(*t, true);
    check_selections<double>(*t, false);
    check_selections<std::int64_t>(*t, false);
    check_scatter_and_gather<float>(*t);
    check_scatter_and_gather<double>(*t);
    check_scatter_and_gather<std::int64_t>(*t);
    // The dataset row gather: rows of odd byte counts, out of order, repeated.
    for (std::size_t row_bytes : {1, 3, 64, 100}) {
      std::vector<unsigned char> src(9 * row_bytes), dst(6 * row_bytes), ref(6 * row_bytes);
      for (std::size_t i = 0; i < src.size(); ++i) src[i] = static_cast<unsigned char>(i * 37 + 11);
      const std::int64_t idx[] = {8, 0, 3, 3, 5, 1};
      t->gather_rows(src.data(), row_bytes, idx, 0, 6, dst.data(), row_bytes);
      for (std::size_t r = 0; r < 6; ++r)
        std::memcpy(ref.data() + r * row_bytes, src.data() + static_cast<std::size_t>(idx[r]) * row_bytes, row_bytes);
      INFO(t->name << ", row bytes " << row_bytes);
      CHECK(dst == ref);
    }
  }
}

namespace {

template <class T>
std::vector<T> smooth_values(std::size_t n, std::uint32_t seed) {
  std::vector<T> v(n);
  std::uint32_t s = seed;
  for (auto& e : v) {
    s = s * 1664525u + 1013904223u;
    e = T(int((s >> 8) % 20001) - 10000) / T(1237);
  }
  return v;
}

// n values from a and b, bit for bit; n == 0 compares nothing (an empty vector's data() may be null,
// which memcmp must not be given even for no bytes).
template <class T>
bool same_bits_n(const T* a, const T* b, std::size_t n) {
  return n == 0 || std::memcmp(a, b, n * sizeof(T)) == 0;
}

template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

// Bit for bit, except that any NaN equals any NaN (which NaN an operation on NaNs returns is not
// part of the guarantee, docs/determinism.md; that the result is NaN is).
template <class T>
bool same_bits_or_both_nan(const std::vector<T>& a, const std::vector<T>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) && std::isnan(b[i])) continue;
    if (std::memcmp(&a[i], &b[i], sizeof(T)) != 0) return false;
  }
  return true;
}

// plane_moments' definition (table.hpp): 16 chains from +0, chain j taking positions j, j + 16,
// ... in order, folded by halves (j += j + 8, then + 4, + 2, + 1).
template <class T, class F>
double sixteen_chains(const T* plane, std::size_t L, F&& f) {
  double chain[16] = {};
  for (std::size_t l = 0; l < L; ++l) chain[l % 16] += f(static_cast<double>(plane[l]));
  for (std::size_t n = 16; n > 1; n /= 2)
    for (std::size_t j = 0; j < n / 2; ++j) chain[j] = chain[j] + chain[j + n / 2];
  return chain[0];
}

// BatchNorm's plane moments, every table against their definition, bit for bit: planes of every
// length up to three blocks of the 16 chains and past the statistics' 64 (every tail length, so
// every count of the tail's masked registers on every width), one plane or several (and a range
// starting mid-way), values far from zero (the squared deviations from the plane's own mean are
// what is summed) and a non-finite value.
template <class T>
void check_plane_moments() {
  std::vector<std::size_t> lengths = {100, 196, 784};
  for (std::size_t L = 0; L <= 80; ++L) lengths.push_back(L);
  for (std::size_t L : lengths) {
    for (std::size_t planes : {1, 2, 5}) {
      auto x = smooth_values<T>(planes * L, static_cast<std::uint32_t>(L * 10 + planes));
      for (std::size_t i = 0; i < x.size(); i += 3) x[i] += T(1000);
      if (planes == 5 && L > 3) x[3 * L + 2] = std::numeric_limits<T>::infinity();
      std::vector<double> sum_ref(planes), sq_ref(planes), dev_ref(planes);
      for (std::size_t p = 0; p < planes; ++p) {
        const T* plane = x.data() + p * L;
        sum_ref[p] = sixteen_chains(plane, L, [](double v) { return v; });
        const double m = sum_ref[p] / static_cast<double>(L);
        sq_ref[p] = sixteen_chains(plane, L, [&](double v) { return (v - m) * (v - m); });
        dev_ref[p] = sixteen_chains(plane, L, [&](double v) { return v - m; });
      }
      for (const auto* t : runnable_tables()) {
        INFO(t->name << ", L " << L << ", planes " << planes);
        std::vector<double> sum(planes + 1, 7.0), sq(planes + 1, 7.0), dev(planes + 1, 7.0);
        kernels::bn_kernels<T>(*t).plane_moments(x.data(), L, 0, planes, sum.data(), sq.data(), dev.data());
        CHECK(sum.back() == 7.0);  // nothing written past the last plane
        CHECK(sq.back() == 7.0);
        CHECK(dev.back() == 7.0);
        sum.pop_back();
        sq.pop_back();
        dev.pop_back();
        CHECK(same_bits_or_both_nan(sum, sum_ref));
        CHECK(same_bits_or_both_nan(sq, sq_ref));
        CHECK(same_bits_or_both_nan(dev, dev_ref));
        // A range of planes from the middle: the same values at their places.
        if (planes == 5) {
          std::vector<double> mid_sum(3), mid_sq(3), mid_dev(3);
          kernels::bn_kernels<T>(*t).plane_moments(x.data(), L, 1, 4, mid_sum.data(), mid_sq.data(), mid_dev.data());
          CHECK(same_bits_or_both_nan(mid_sum, std::vector<double>(sum_ref.begin() + 1, sum_ref.begin() + 4)));
          CHECK(same_bits_or_both_nan(mid_sq, std::vector<double>(sq_ref.begin() + 1, sq_ref.begin() + 4)));
          CHECK(same_bits_or_both_nan(mid_dev, std::vector<double>(dev_ref.begin() + 1, dev_ref.begin() + 4)));
        }
      }
      if (planes == 5 && L > 3) CHECK(std::isnan(sq_ref[3]));  // the infinite value reached its plane only
      if (planes == 5 && L > 3) CHECK(std::isfinite(sq_ref[4]));
    }
  }
}

// A plane's last values are read with masked loads: nothing past the plane is touched. The last
// plane ends where an inaccessible page begins (a read past it faults), for every tail length.
template <class T>
void check_plane_moments_stop_at_the_end() {
  const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  void* map = mmap(nullptr, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  REQUIRE(map != MAP_FAILED);
  REQUIRE(mprotect(static_cast<char*>(map) + page, page, PROT_NONE) == 0);
  T* end = reinterpret_cast<T*>(static_cast<char*>(map) + page);
  for (std::size_t L = 64; L < 80; ++L) {
    const std::size_t planes = 2;
    T* x = end - planes * L;
    const auto values = smooth_values<T>(planes * L, static_cast<std::uint32_t>(L));
    std::copy(values.begin(), values.end(), x);
    for (const auto* t : runnable_tables()) {
      INFO(t->name << ", L " << L);
      double sum[planes], sq[planes], dev[planes];
      kernels::bn_kernels<T>(*t).plane_moments(x, L, 0, planes, sum, sq, dev);
      const double s = sixteen_chains(x + L, L, [](double v) { return v; });
      CHECK(same_bits_or_both_nan(std::vector<double>{sum[1]}, std::vector<double>{s}));
    }
  }
  munmap(map, 2 * page);
}

// Every BatchNorm loop of every table against the baseline table's; the plain channel sums (adds
// only) also against the chain they are defined as.
template <class T>
void check_batchnorm_tables() {
  const auto tables = runnable_tables();
  const auto& base = kernels::bn_kernels<T>(*tables.front());
  for (std::size_t C : {1, 3, 8, 9, 17, 33, 70}) {
    for (std::size_t L : {0, 1, 2, 7, 16, 19, 49, 63}) {  // 63: the longest planes the statistics sum this way
      const std::size_t N = 5, n0 = 1, n1 = 5, c0 = C > 2 ? 1 : 0, c1 = C;
      const auto x = smooth_values<T>(N * C * L, static_cast<std::uint32_t>(C * 100 + L));
      const auto g = smooth_values<T>(N * C * L, static_cast<std::uint32_t>(C * 100 + L + 7));
      const auto meand = smooth_values<double>(C, 3);
      const auto mean = smooth_values<T>(C, 4), scale = smooth_values<T>(C, 5), shift = smooth_values<T>(C, 6),
                 gmean = smooth_values<T>(C, 7), kk = smooth_values<T>(C, 8);
      // A fused ReLU: the normalisation's y decides relu's gradient factor.
      const kernels::BnRelu<T> relu{mean.data(), scale.data(), shift.data()};
      struct Out {
        std::vector<double> sums, sq, sum_g, dot, sum_g_relu, dot_relu;
        std::vector<T> y, dx, y_relu, dx_relu;
      };
      auto run = [&](const kernels::BnKernels<T>& k, const std::vector<T>& grad) {
        const std::size_t w = c1 - c0;
        Out o{std::vector<double>(w),        std::vector<double>(w),        std::vector<double>(w),
              std::vector<double>(w),        std::vector<double>(w),        std::vector<double>(w),
              std::vector<T>(x.size(), T(9)), std::vector<T>(x.size(), T(9)), std::vector<T>(x.size(), T(9)),
              std::vector<T>(x.size(), T(9))};
        k.channel_sums(x.data(), C, L, n0, n1, c0, c1, nullptr, o.sums.data());
        k.channel_sums(x.data(), C, L, n0, n1, c0, c1, meand.data(), o.sq.data());
        k.grad_sums(grad.data(), x.data(), C, L, n0, n1, c0, c1, meand.data(), nullptr, nullptr, o.sum_g.data(),
                    o.dot.data());
        k.grad_sums(grad.data(), x.data(), C, L, n0, n1, c0, c1, meand.data(), &relu, nullptr,
                    o.sum_g_relu.data(), o.dot_relu.data());
        k.normalize(x.data(), o.y.data(), C, L, n0, n1, mean.data(), scale.data(), shift.data(), false, nullptr);
        k.normalize(x.data(), o.y_relu.data(), C, L, n0, n1, mean.data(), scale.data(), shift.data(), true, nullptr);
        k.backward_dx(grad.data(), x.data(), o.dx.data(), C, L, n0, n1, gmean.data(), mean.data(), kk.data(),
                      scale.data(), nullptr, nullptr);
        k.backward_dx(grad.data(), x.data(), o.dx_relu.data(), C, L, n0, n1, gmean.data(), mean.data(), kk.data(),
                      scale.data(), &relu, nullptr);
        return o;
      };
      const Out ref = run(base, g);
      std::vector<double> chain(c1 - c0, 0.0), sq_chain(c1 - c0, 0.0);
      for (std::size_t c = c0; c < c1; ++c)
        for (std::size_t n = n0; n < n1; ++n)
          for (std::size_t l = 0; l < L; ++l) {
            const double v = static_cast<double>(x[(n * C + c) * L + l]);
            chain[c - c0] += v;
            sq_chain[c - c0] += (v - meand[c]) * (v - meand[c]);
          }
      INFO("C " << C << ", L " << L);
      CHECK(same_bits(ref.sums, chain));
      CHECK(same_bits(ref.sq, sq_chain));
      // The fused ReLU is relu's own definition around the plain loops: y < 0 ? 0 : y forward, and
      // relu's gradient g * (y > 0 ? 1 : 0) fed to the plain backward loops.
      std::vector<T> y_relu = ref.y, g_relu = g;
      std::size_t masked = 0;
      for (std::size_t n = n0; n < n1; ++n) {
        for (std::size_t i = n * C * L; i < (n + 1) * C * L; ++i) {
          if (ref.y[i] < T(0)) y_relu[i] = T(0);
          g_relu[i] = g[i] * (ref.y[i] > T(0) ? T(1) : T(0));
          masked += ref.y[i] > T(0) ? 0 : 1;
        }
      }
      const Out unfused = run(base, g_relu);
      CHECK(same_bits(ref.y_relu, y_relu));
      CHECK(same_bits(ref.sum_g_relu, unfused.sum_g));
      CHECK(same_bits(ref.dot_relu, unfused.dot));
      CHECK(same_bits(ref.dx_relu, unfused.dx));
      if (C * L > 8) CHECK(masked > 0);  // the mask is exercised, both ways
      if (C * L > 8) CHECK(masked < (n1 - n0) * C * L);
      for (const auto* t : tables) {
        const Out o = run(kernels::bn_kernels<T>(*t), g);
        INFO(t->name);
        CHECK(same_bits(o.sums, ref.sums));
        CHECK(same_bits(o.sq, ref.sq));
        CHECK(same_bits(o.sum_g, ref.sum_g));
        CHECK(same_bits(o.dot, ref.dot));
        CHECK(same_bits(o.y, ref.y));
        CHECK(same_bits(o.dx, ref.dx));
        CHECK(same_bits(o.sum_g_relu, ref.sum_g_relu));
        CHECK(same_bits(o.dot_relu, ref.dot_relu));
        CHECK(same_bits(o.y_relu, ref.y_relu));
        CHECK(same_bits(o.dx_relu, ref.dx_relu));
      }
    }
  }
}

// BatchNorm's per-channel constants for the edge tests: +0 and -0 shifts on every third channel, a
// zero scale on channel 5 (every y of that channel equal to its shift).
template <class T>
struct EdgeConstants {
  explicit EdgeConstants(std::size_t C)
      : mean(smooth_values<T>(C, 1)), scale(smooth_values<T>(C, 2)), shift(smooth_values<T>(C, 3)),
        gmean(smooth_values<T>(C, 5)), k(smooth_values<T>(C, 6)), meand(smooth_values<double>(C, 4)) {
    for (std::size_t c = 0; c < C; c += 3) shift[c] = c % 2 ? T(-0.0) : T(0);
    scale[5] = T(0);
  }
  std::vector<T> mean, scale, shift, gmean, k;
  std::vector<double> meand;
};

// A fused ReLU on values built to hit its edges: y exactly +0 and -0 (x equal to the mean with a
// zero or negative-zero shift, a zero scale), infinite and NaN x, and infinite, NaN and -0
// gradients. Every table's fused loops against relu's definition around the baseline's plain
// loops, bit for bit (any NaN equal to any NaN).
template <class T>
void check_batchnorm_relu_edges() {
  const auto tables = runnable_tables();
  const auto& base = kernels::bn_kernels<T>(*tables.front());
  const T inf = std::numeric_limits<T>::infinity(), nan = std::numeric_limits<T>::quiet_NaN();
  for (std::size_t L : {1, 8, 13}) {
    const std::size_t N = 3, C = 19;
    const EdgeConstants<T> ec(C);
    const auto &mean = ec.mean, &scale = ec.scale, &shift = ec.shift, &gmean = ec.gmean, &kk = ec.k;
    const auto& meand = ec.meand;
    auto x = smooth_values<T>(N * C * L, static_cast<std::uint32_t>(L));
    auto g = smooth_values<T>(N * C * L, static_cast<std::uint32_t>(L + 9));
    for (std::size_t i = 0; i < x.size(); ++i) {
      const std::size_t c = (i / L) % C;
      if (i % 4 == 1) x[i] = mean[c];  // y = shift: +0 or -0 on every third channel
      if (i % 23 == 7) x[i] = i % 2 ? inf : -inf;
      if (i % 29 == 11) x[i] = nan;
      if (i % 17 == 3) g[i] = i % 2 ? inf : -inf;
      if (i % 19 == 5) g[i] = nan;
      if (i % 13 == 2) g[i] = T(-0.0);
    }
    const kernels::BnRelu<T> relu{mean.data(), scale.data(), shift.data()};
    struct Out {
      std::vector<double> sum_g, dot;
      std::vector<T> y, dx;
    };
    const auto run = [&](const kernels::BnKernels<T>& k, const std::vector<T>& grad, const kernels::BnRelu<T>* r) {
      Out o{std::vector<double>(C), std::vector<double>(C), std::vector<T>(x.size()), std::vector<T>(x.size())};
      k.grad_sums(grad.data(), x.data(), C, L, 0, N, 0, C, meand.data(), r, nullptr, o.sum_g.data(), o.dot.data());
      k.normalize(x.data(), o.y.data(), C, L, 0, N, mean.data(), scale.data(), shift.data(), r != nullptr, nullptr);
      k.backward_dx(grad.data(), x.data(), o.dx.data(), C, L, 0, N, gmean.data(), mean.data(), kk.data(), scale.data(),
                    r, nullptr);
      return o;
    };
    const Out plain = run(base, g, nullptr);
    std::vector<T> y_def = plain.y, g_def = g;
    for (std::size_t i = 0; i < x.size(); ++i) {
      if (plain.y[i] < T(0)) y_def[i] = T(0);
      g_def[i] = g[i] * (plain.y[i] > T(0) ? T(1) : T(0));
    }
    const Out def = run(base, g_def, nullptr);
    for (const auto* t : tables) {
      const Out o = run(kernels::bn_kernels<T>(*t), g, &relu);
      INFO(t->name << ", L " << L);
      CHECK(same_bits_or_both_nan(o.y, y_def));
      CHECK(same_bits_or_both_nan(o.sum_g, def.sum_g));
      CHECK(same_bits_or_both_nan(o.dot, def.dot));
      CHECK(same_bits_or_both_nan(o.dx, def.dx));
    }
  }
}

// BatchNorm + ReLU + a 2 x 2, stride-2 max pool fused (table.hpp's BnPool), on planes of even and
// odd sides, narrower and wider than a register's windows, with ties, signed zeros, infinities
// and NaN in x and in the pooled gradient, a zero scale (every tap of a plane equal) and +0 / -0
// shifts: every table against the definition around the baseline's plain loops (relu, then the
// pool's rule on relu's output, forward; the pool's scatter into zeros, then relu's factor,
// then the plain backward loops), bit for bit (any NaN equal to any NaN), and every table's
// winner codes the same bytes. Then again on finite, inexact values (the sums' order shows in
// their bits), with one channel's mean infinite and, in float64, one channel whose finite x
// overflow x - mean at taps that lose their window (the full dot product is NaN there).
template <class T>
void check_batchnorm_relu_pool_tables() {
  const auto tables = runnable_tables();
  const auto& base = kernels::bn_kernels<T>(*tables.front());
  const std::size_t hw[][2] = {{2, 2}, {3, 5}, {4, 9}, {7, 7}, {6, 17}, {5, 37}, {14, 14}, {28, 28}};
  for (const bool specials : {true, false})
  for (const auto& side : hw) {
    const std::size_t H = side[0], W = side[1], L = H * W, OH = H / 2, OW = W / 2, P = OH * OW;
    const std::size_t N = 3, C = 19;
    const EdgeConstants<T> ec(C);
    auto mean = ec.mean, scale = ec.scale;
    const auto &shift = ec.shift, &gmean = ec.gmean, &kk = ec.k;
    auto meand = ec.meand;
    const auto seed = static_cast<std::uint32_t>(L);
    auto x = specials ? awkward_values<T>(N * C * L, seed, true) : smooth_values<T>(N * C * L, seed);
    const auto gp = specials ? awkward_values<T>(N * C * P, seed + 9, true) : smooth_values<T>(N * C * P, seed + 9);
    if (!specials) {
      meand[7] = std::numeric_limits<double>::infinity();
      if constexpr (std::is_same_v<T, double>) {
        mean[11] = T(-1e308);  // the forward's mean is the sums' one in float64
        meand[11] = -1e308;
        scale[11] = T(-0.5);  // the overflowed taps' y is -inf: relu's 0, never a window's winner
        for (std::size_t i = 0; i < L; i += 3) x[(1 * C + 11) * L + i] = T(1.7e308);
      }
    }
    const kernels::BnRelu<T> relu{mean.data(), scale.data(), shift.data()};

    // The definition: y (relu's input), relu's output r, the pool's rule on r, the scatter, relu's factor.
    std::vector<T> y(x.size()), pooled_def(N * C * P), winner_x_def(N * C * P), g_def(x.size(), T(0));
    base.normalize(x.data(), y.data(), C, L, 0, N, mean.data(), scale.data(), shift.data(), false, nullptr);
    // The backward's x - mean (in double) of plane q's element i.
    const auto factor_finite = [&](std::size_t q, std::size_t i) {
      return std::isfinite(static_cast<double>(x[i]) - static_cast<double>(mean[q % C]));
    };
    const auto uncovered_nonfinite = [&](std::size_t q) {  // in a last row or column no window covers
      for (std::size_t r = 0; r < H; ++r)
        for (std::size_t col = 0; col < W; ++col)
          if ((r >= 2 * OH || col >= 2 * OW) && !factor_finite(q, q * L + r * W + col)) return true;
      return false;
    };
    for (std::size_t q = 0; q < N * C; ++q) {
      for (std::size_t oh = 0; oh < OH; ++oh) {
        for (std::size_t ow = 0; ow < OW; ++ow) {
          const std::size_t a = q * L + 2 * oh * W + 2 * ow, taps[4] = {a, a + 1, a + W, a + W + 1};
          const auto r = [&](std::size_t i) { return y[i] < T(0) ? T(0) : y[i]; };
          std::size_t win = taps[0];
          for (std::size_t k = 1; k < 4; ++k)
            if (r(taps[k]) > r(win) || std::isnan(r(taps[k]))) win = taps[k];
          pooled_def[q * P + oh * OW + ow] = r(win);
          bool poisoned = oh == 0 && ow == 0 && uncovered_nonfinite(q);
          for (const std::size_t tap : taps) poisoned = poisoned || (tap != win && !factor_finite(q, tap));
          winner_x_def[q * P + oh * OW + ow] = poisoned ? std::numeric_limits<T>::quiet_NaN() : x[win];
          g_def[win] += gp[q * P + oh * OW + ow];
        }
      }
    }
    for (std::size_t i = 0; i < x.size(); ++i) g_def[i] = g_def[i] * (y[i] > T(0) ? T(1) : T(0));

    struct Out {
      std::vector<double> sum_g, dot;
      std::vector<T> y, dx;
      std::vector<std::uint8_t> winners;
      std::vector<T> winner_x;
    };
    // Rows [1, N) and channels [1, C) for the sums (a block that starts past 0), all for the rest.
    const auto run = [&](const kernels::BnKernels<T>& k, const std::vector<T>& grad, bool pool) {
      Out o{std::vector<double>(C - 1), std::vector<double>(C - 1), std::vector<T>(pool ? N * C * P : x.size()),
            std::vector<T>(x.size()), std::vector<std::uint8_t>(N * C * P), std::vector<T>(N * C * P)};
      kernels::BnPool<T> window{H, W, o.winners.data(), o.winner_x.data()};
      const kernels::BnPool<T>* w = pool ? &window : nullptr;
      const kernels::BnRelu<T>* r = pool ? &relu : nullptr;
      k.normalize(x.data(), o.y.data(), C, L, 0, N, mean.data(), scale.data(), shift.data(), pool, w);
      k.grad_sums(grad.data(), x.data(), C, L, 1, N, 1, C, meand.data(), r, w, o.sum_g.data(), o.dot.data());
      k.backward_dx(grad.data(), x.data(), o.dx.data(), C, L, 0, N, gmean.data(), mean.data(), kk.data(), scale.data(),
                    r, w);
      return o;
    };
    const Out def = run(base, g_def, false);
    if (!specials) {  // the edge cases are there: channels 7 and 11 (sums over channels [1, C))
      CHECK(std::isnan(def.dot[7 - 1]));
      if constexpr (std::is_same_v<T, double>) CHECK(std::isnan(def.dot[11 - 1]));
    }
    const Out ref = run(base, gp, true);
    for (const auto* t : tables) {
      const Out o = run(kernels::bn_kernels<T>(*t), gp, true);
      INFO(t->name << ", " << H << " x " << W << (specials ? ", specials" : ", finite"));
      CHECK(same_bits_or_both_nan(o.y, pooled_def));
      CHECK(o.winners == ref.winners);
      CHECK(same_bits_or_both_nan(o.winner_x, winner_x_def));
      CHECK(same_bits_or_both_nan(o.sum_g, def.sum_g));
      CHECK(same_bits_or_both_nan(o.dot, def.dot));
      CHECK(same_bits_or_both_nan(o.dx, def.dx));
    }
  }
}

// softmax along a dim that is not the last, on tiles of ragged widths, with NaN, infinities and
// ties in the columns: every table against the baseline table.
template <class T>
void check_softmax_cols_tables() {
  const auto tables = runnable_tables();
  for (std::size_t r : {1, 2, 7, 40}) {
    for (std::size_t n : {1, 3, 15, 16, 17, 100, 1024}) {
      const std::size_t stride = n + 5;
      const auto x = awkward_values<T>(r * stride, static_cast<std::uint32_t>(r * 7 + n), true);
      const auto g = smooth_values<T>(r * stride, static_cast<std::uint32_t>(r + n));
      auto y0 = smooth_values<T>(r * stride, 11);  // the backward's y: finite values
      for (auto& v : y0) v = v / T(10);
      for (bool log : {false, true}) {
        auto run = [&](const kernels::SoftmaxColsKernels<T>& k) {
          std::vector<T> y(r * stride, T(3)), dx(r * stride, T(3));
          k.forward(x.data(), y.data(), r, stride, n, log);
          k.backward(g.data(), y0.data(), dx.data(), r, stride, n, log);
          return std::make_pair(y, dx);
        };
        const auto ref = run(kernels::softmax_cols_kernels<T>(*tables.front()));
        for (const auto* t : tables) {
          const auto o = run(kernels::softmax_cols_kernels<T>(*t));
          INFO(t->name << ", r " << r << ", n " << n << ", log " << log);
          CHECK(same_bits_or_both_nan(o.first, ref.first));
          CHECK(same_bits(o.second, ref.second));
        }
      }
    }
  }
}

// Max pooling's 2 x 2 windows (column stride 2) in every table against the rule written out:
// taps in row-major order, a strictly larger value or a NaN replaces the winner.
template <class T>
void check_max_pool_2x2_tables() {
  const auto tables = runnable_tables();
  for (std::size_t OW : {1, 2, 3, 7, 8, 9, 14, 16, 17, 33, 300}) {
    for (std::size_t sh : {1, 2, 3}) {
      const std::size_t OH = 3, W = 2 * OW + (OW % 3), H = (OH - 1) * sh + 2;
      const std::vector<T> x = awkward_values<T>(H * W, static_cast<std::uint32_t>(OW * 10 + sh), true);
      std::vector<T> want(OH * OW);
      std::vector<std::int64_t> want_at(OH * OW);
      for (std::size_t oh = 0; oh < OH; ++oh) {
        for (std::size_t j = 0; j < OW; ++j) {
          const std::size_t taps[4] = {oh * sh * W + 2 * j, oh * sh * W + 2 * j + 1, (oh * sh + 1) * W + 2 * j,
                                       (oh * sh + 1) * W + 2 * j + 1};
          std::size_t at = taps[0];
          for (std::size_t k = 1; k < 4; ++k) {
            if (x[taps[k]] > x[at] || std::isnan(x[taps[k]])) at = taps[k];
          }
          want[oh * OW + j] = x[at];
          want_at[oh * OW + j] = static_cast<std::int64_t>(at);
        }
      }
      for (const auto* t : tables) {
        INFO(t->name << " OW=" << OW << " sh=" << sh);
        std::vector<T> y(OH * OW);
        std::vector<std::int64_t> at(OH * OW, -7);
        if constexpr (std::is_same_v<T, float>) t->max_pool_2x2_f32(x.data(), W, sh, OH, OW, y.data(), at.data());
        else t->max_pool_2x2_f64(x.data(), W, sh, OH, OW, y.data(), at.data());
        CHECK(at == want_at);
        CHECK(std::memcmp(y.data(), want.data(), y.size() * sizeof(T)) == 0);
      }
    }
  }
}

// col2im with stride-1 columns in every table against the loop written out (+0, then each tap's
// contributions in tap order), on geometries with row strides, dilations, paddings and widths up
// to past two AVX-512 registers; the column entries include NaNs, infinities and signed zeros.
template <class T>
void check_col2im_s1_tables() {
  struct Case {
    std::size_t H, W, kh, kw, sh, ph, pw, dh, dw;
  };
  const Case cases[] = {{28, 28, 3, 3, 1, 1, 1, 1, 1}, {14, 14, 3, 3, 1, 1, 1, 1, 1}, {5, 37, 2, 4, 2, 0, 2, 2, 3},
                        {9, 1, 3, 1, 3, 2, 0, 1, 1},   {6, 17, 1, 5, 1, 0, 4, 1, 1},   {7, 33, 4, 3, 2, 3, 1, 1, 2},
                        {28, 28, 5, 5, 1, 2, 2, 1, 1}, {13, 9, 5, 3, 1, 1, 0, 2, 1},
                        {1, 37, 1, 3, 1, 0, 1, 1, 2},  {3, 20, 3, 3, 1, 1, 1, 1, 1},  {2, 40, 2, 5, 1, 1, 2, 1, 1}};
  for (const Case& cs : cases) {
    kernels::ConvGeometry g{2, 3, cs.H, cs.W, cs.kh, cs.kw, cs.sh, 1, cs.ph, cs.pw, cs.dh, cs.dw, 0, 0};
    g.OH = (cs.H + 2 * cs.ph - cs.dh * (cs.kh - 1) - 1) / cs.sh + 1;
    g.OW = cs.W + 2 * cs.pw - cs.dw * (cs.kw - 1);  // stride 1
    const std::vector<T> cols = awkward_values<T>(g.rows() * g.cols(), static_cast<std::uint32_t>(cs.W * 7 + cs.H), true);
    for (std::size_t n = 0; n < g.N; ++n) {
      for (std::size_t c = 0; c < g.C; ++c) {
        std::vector<T> want(g.H * g.W, T(0));
        for (std::size_t ki = 0; ki < g.kh; ++ki)
          for (std::size_t kj = 0; kj < g.kw; ++kj)
            for (std::size_t oh = 0; oh < g.OH; ++oh)
              for (std::size_t ow = 0; ow < g.OW; ++ow) {
                const std::ptrdiff_t h = std::ptrdiff_t(oh * g.sh + ki * g.dh) - std::ptrdiff_t(g.ph);
                const std::ptrdiff_t w = std::ptrdiff_t(ow + kj * g.dw) - std::ptrdiff_t(g.pw);
                if (h < 0 || w < 0 || h >= std::ptrdiff_t(g.H) || w >= std::ptrdiff_t(g.W)) continue;
                want[std::size_t(h) * g.W + std::size_t(w)] +=
                    cols[(c * g.taps() + ki * g.kw + kj) * g.cols() + n * g.positions() + oh * g.OW + ow];
              }
        const T* plane = cols.data() + c * g.taps() * g.cols() + n * g.positions();
        for (const auto* t : runnable_tables()) {
          INFO(t->name << " H=" << g.H << " W=" << g.W << " n=" << n << " c=" << c);
          std::vector<T> got(g.H * g.W, T(-1));
          if constexpr (std::is_same_v<T, float>) t->col2im_s1_f32(plane, g.cols(), g, got.data());
          else t->col2im_s1_f64(plane, g.cols(), g, got.data());
          CHECK(same_bits_or_both_nan(got, want));  // which NaN may differ (docs/determinism.md)
        }
      }
    }
  }
}

// The transposed copy of every table against the loop written out, on ragged block sizes.
void check_transpose_tables() {
  for (std::size_t rows : {1, 7, 8, 9, 17, 32}) {
    for (std::size_t cols : {1, 5, 8, 16, 31}) {
      const std::size_t src_ld = cols + 3, dst_ld = rows + 2;
      const std::vector<float> src = awkward_values<float>(rows * src_ld, static_cast<std::uint32_t>(rows * 40 + cols), true);
      std::vector<float> want(cols * dst_ld, -5.0f);
      for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t c = 0; c < cols; ++c) want[c * dst_ld + r] = src[r * src_ld + c];
      for (const auto* t : runnable_tables()) {
        INFO(t->name << " rows=" << rows << " cols=" << cols);
        std::vector<float> got(cols * dst_ld, -5.0f);
        t->transpose_f32(src.data(), src_ld, got.data(), dst_ld, rows, cols);
        CHECK(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)) == 0);
      }
    }
  }
}

// The direct convolution of every table against the chain written out (+0, then std::fma over
// k = (c, ki, kj) in order, then + b): channel counts that leave every tile shape a remainder,
// rows wider than a tile's registers, strides down the rows, dilations, paddings; weights and
// inputs with infinities and signed zeros (no NaN operands: which of two NaNs an fma passes on
// is the instruction's choice, and every NaN made here is the default one).
template <class T>
void check_conv_direct_tables() {
  struct Case {
    std::size_t C, outs, H, W, kh, kw, sh, ph, pw, dh, dw;
  };
  const Case cases[] = {{1, 32, 28, 28, 3, 3, 1, 1, 1, 1, 1}, {3, 7, 9, 70, 3, 3, 1, 1, 1, 1, 1},
                        {2, 11, 8, 5, 2, 4, 2, 0, 2, 2, 2},   {1, 3, 6, 17, 1, 5, 3, 2, 0, 1, 1},
                        {3, 9, 12, 33, 5, 5, 1, 2, 2, 1, 1},  {2, 2, 3, 1, 3, 1, 1, 1, 0, 1, 1}};
  for (const Case& cs : cases) {
    kernels::ConvGeometry g{1, cs.C, cs.H, cs.W, cs.kh, cs.kw, cs.sh, 1, cs.ph, cs.pw, cs.dh, cs.dw, 0, 0};
    g.OH = (cs.H + 2 * cs.ph - cs.dh * (cs.kh - 1) - 1) / cs.sh + 1;
    g.OW = cs.W + 2 * cs.pw - cs.dw * (cs.kw - 1);  // stride 1 along the rows
    const std::size_t PH = (g.OH - 1) * g.sh + (g.kh - 1) * g.dh + 1, PW = g.OW + (g.kw - 1) * g.dw;
    const std::size_t plane = PH * PW + 3, K = g.rows();  // planes 3 values apart: plane is a parameter
    const auto seed = static_cast<std::uint32_t>(cs.W * 13 + cs.C);
    const std::vector<T> x = awkward_values<T>(g.C * g.H * g.W, seed, false);
    const std::vector<T> w = awkward_values<T>(cs.outs * K, seed + 1, false);
    const std::vector<T> b = awkward_values<T>(cs.outs, seed + 2, false);
    std::vector<T> xp(g.C * plane + kernels::kDirectConvSlack, T(0));
    for (std::size_t c = 0; c < g.C; ++c)
      for (std::size_t r = 0; r < PH; ++r)
        for (std::size_t q = 0; q < PW; ++q) {
          const std::ptrdiff_t h = std::ptrdiff_t(r) - std::ptrdiff_t(g.ph), v = std::ptrdiff_t(q) - std::ptrdiff_t(g.pw);
          if (h >= 0 && v >= 0 && h < std::ptrdiff_t(g.H) && v < std::ptrdiff_t(g.W))
            xp[c * plane + r * PW + q] = x[(c * g.H + std::size_t(h)) * g.W + std::size_t(v)];
        }
    for (bool bias : {true, false}) {
      std::vector<T> want(cs.outs * g.positions());
      for (std::size_t o = 0; o < cs.outs; ++o)
        for (std::size_t oh = 0; oh < g.OH; ++oh)
          for (std::size_t ow = 0; ow < g.OW; ++ow) {
            T acc = T(0);
            for (std::size_t c = 0, k = 0; c < g.C; ++c)
              for (std::size_t ki = 0; ki < g.kh; ++ki)
                for (std::size_t kj = 0; kj < g.kw; ++kj, ++k)
                  acc = std::fma(w[o * K + k], xp[c * plane + (oh * g.sh + ki * g.dh) * PW + ow + kj * g.dw], acc);
            want[o * g.positions() + oh * g.OW + ow] = bias ? acc + b[o] : acc;
          }
      for (const auto* t : runnable_tables()) {
        INFO(t->name << " C=" << g.C << " outs=" << cs.outs << " H=" << g.H << " W=" << g.W << " bias=" << bias);
        std::vector<T> got(want.size(), T(-1));
        const T* pb = bias ? b.data() : nullptr;
        if constexpr (std::is_same_v<T, float>) t->conv_direct_f32(xp.data(), PW, plane, g.C, g, w.data(), pb, cs.outs, got.data());
        else t->conv_direct_f64(xp.data(), PW, plane, g.C, g, w.data(), pb, cs.outs, got.data());
        CHECK(std::memcmp(got.data(), want.data(), got.size() * sizeof(T)) == 0);
      }
    }
  }
}

// Full-mantissa values of magnitudes 2^-8 to 2^8 (so that a sum taken in another order rounds
// differently), with some of awkward_values' signed zeros and infinities among them.
std::vector<float> rounding_values(std::size_t n, std::uint32_t seed) {
  std::vector<float> v = awkward_values<float>(n, seed, false);
  std::uint32_t s = seed * 7u + 1u;
  for (std::size_t i = 0; i < n; ++i) {
    s = s * 1664525u + 1013904223u;
    if ((s >> 28) == 0) continue;  // keep 1 in 16 awkward
    const float mantissa = 1.0f + static_cast<float>(s & 0xFFFFFu) / float(1 << 20) + static_cast<float>(s >> 20 & 7u) / float(1 << 23);
    v[i] = std::ldexp((s >> 27 & 1u) ? -mantissa : mantissa, static_cast<int>(s >> 23 & 15u) - 8);
  }
  return v;
}

// rounding_values for T: float's as they are; double's with full 53-bit mantissas (each float
// value times a factor of its own), so that a chain added in another order rounds differently.
template <class T>
std::vector<T> rounding_values_of(std::size_t n, std::uint32_t seed) {
  const std::vector<float> f = rounding_values(n, seed);
  if constexpr (std::is_same_v<T, float>) {
    return f;
  } else {
    std::vector<double> d(n);
    for (std::size_t i = 0; i < n; ++i)
      d[i] = static_cast<double>(f[i]) * (1.0 + 0.7390851332151607 * static_cast<double>((i * 2654435761u) % 1021) / 1021.0);
    return d;
  }
}

// The depthwise gradient sums of every table against their chains written out: for each tap,
// chain j = ow % 16 continues from acc's value with fma(x, dy, acc) over the rows, then the
// columns; the bias chains add dy. Row lengths with every tail against 2-, 4-, 8- and 16-lane
// registers and rows of several 16-column blocks, 1 to 7 taps a row (the passes of 4, 2 and 1
// taps), strides down the rows, dilations; values that round (a chain added in another order
// differs) with some signed zeros and infinities; the chains resumed from values that are not +0
// (none -0: a chain from a value other than -0 is never -0, which makes the masked lanes' +0 a
// no-op). dy's and x's last rows end where their vectors end (AddressSanitizer's run sees a read
// past them).
template <class T>
void check_depthwise_grad_sums_tables() {
  constexpr std::size_t Z = kernels::kDepthwiseLanes;
  struct Case {
    std::size_t OH, OW, kh, kw, sh, dh, dw;
  };
  const Case cases[] = {{3, 1, 3, 3, 1, 1, 1},  {2, 5, 1, 5, 1, 1, 2},   {4, 15, 2, 2, 1, 2, 1}, {3, 16, 3, 3, 1, 1, 1},
                        {2, 17, 3, 7, 2, 1, 1}, {5, 28, 3, 3, 1, 1, 1},  {1, 40, 1, 6, 1, 1, 3}, {2, 64, 2, 3, 1, 1, 1},
                        {3, 67, 1, 1, 1, 1, 1}, {2, 9, 7, 7, 1, 1, 1}};
  for (const Case& cs : cases) {
    kernels::ConvGeometry g{1, 1, 0, 0, cs.kh, cs.kw, cs.sh, 1, 0, 0, cs.dh, cs.dw, cs.OH, cs.OW};
    const std::size_t PH = (cs.OH - 1) * cs.sh + (cs.kh - 1) * cs.dh + 1, PW = cs.OW + (cs.kw - 1) * cs.dw;
    const auto seed = static_cast<std::uint32_t>(cs.OW * 7 + cs.kw);
    const std::vector<T> xp = rounding_values_of<T>(PH * PW, seed);
    const std::vector<T> dy = rounding_values_of<T>(cs.OH * cs.OW, seed + 1);
    std::vector<T> start = rounding_values_of<T>((g.taps() + 1) * Z, seed + 2);
    for (T& v : start)
      if (v == T(0)) v = T(0);  // +0 for -0
    for (bool bias : {true, false}) {
      std::vector<T> want = start;
      for (std::size_t ki = 0; ki < cs.kh; ++ki)
        for (std::size_t kj = 0; kj < cs.kw; ++kj)
          for (std::size_t oh = 0; oh < cs.OH; ++oh)
            for (std::size_t ow = 0; ow < cs.OW; ++ow) {
              T& a = want[(ki * cs.kw + kj) * Z + ow % Z];
              a = std::fma(xp[(oh * cs.sh + ki * cs.dh) * PW + ow + kj * cs.dw], dy[oh * cs.OW + ow], a);
            }
      if (bias)
        for (std::size_t oh = 0; oh < cs.OH; ++oh)
          for (std::size_t ow = 0; ow < cs.OW; ++ow) want[g.taps() * Z + ow % Z] += dy[oh * cs.OW + ow];
      for (const auto* t : runnable_tables()) {
        INFO(t->name << " OH=" << cs.OH << " OW=" << cs.OW << " kh=" << cs.kh << " kw=" << cs.kw << " bias=" << bias);
        std::vector<T> got = start;
        if constexpr (std::is_same_v<T, float>) t->depthwise_grad_sums_f32(xp.data(), PW, g, dy.data(), bias, got.data());
        else t->depthwise_grad_sums_f64(xp.data(), PW, g, dy.data(), bias, got.data());
        CHECK(std::memcmp(got.data(), want.data(), got.size() * sizeof(T)) == 0);
      }
    }
  }
}

// LayerNorm's affine part in every table against its definition: y = fma(x, w, b) (x * w, x + b),
// and over a block of rows dx = g * w, dw = fma(g, x, dw), db = db + g down each column from the
// given values; rows of every length against 2- to 16-lane registers (masked tails: each row
// ends where the next begins, the last where its vector ends), values that round (another order
// of a column's chain differs), signed zeros and infinities.
// LayerNorm's rows against their definition written out element by element and chain by chain:
// row lengths around every register width and the 16 chains, the affine forms, the backward's
// parts asked for alone.
template <class T>
struct LayerNormCall {
  static void rows(const kernels::KernelTable& t, const T* x, const T* m, const T* s, const T* w, const T* b,
                   std::size_t rows, std::size_t L, T* y) {
    if constexpr (std::is_same_v<T, float>) t.layer_norm_rows_f32(x, m, s, w, b, rows, L, y);
    else t.layer_norm_rows_f64(x, m, s, w, b, rows, L, y);
  }
  static void grads(const kernels::KernelTable& t, const T* g, const T* x, const T* m, const T* s, const T* w,
                    std::size_t rows, std::size_t L, T* dx, T* dw, T* db) {
    std::vector<T> scratch(2 * L, T(-3));
    if constexpr (std::is_same_v<T, float>) t.layer_norm_grads_f32(g, x, m, s, w, rows, L, dx, dw, db, scratch.data());
    else t.layer_norm_grads_f64(g, x, m, s, w, rows, L, dx, dw, db, scratch.data());
  }
};

template <class T>
void check_layer_norm_rows_tables() {
  using Call = LayerNormCall<T>;
  for (std::size_t L : {1, 3, 8, 15, 16, 17, 33, 40, 100}) {
    const std::size_t rows = 5, n = rows * L;
    const auto seed = static_cast<std::uint32_t>(L * 11);
    const std::vector<T> x = rounding_values_of<T>(n, seed), g = rounding_values_of<T>(n, seed + 1);
    const std::vector<T> w = rounding_values_of<T>(L, seed + 2), b = rounding_values_of<T>(L, seed + 3);
    const std::vector<T> dw0 = rounding_values_of<T>(L, seed + 4), db0 = rounding_values_of<T>(L, seed + 5);
    const std::vector<T> mean = rounding_values_of<T>(rows, seed + 6), scale = rounding_values_of<T>(rows, seed + 7);
    const auto xhat = [&](std::size_t i) { return (x[i] - mean[i / L]) * scale[i / L]; };
    for (int form = 0; form < 4; ++form) {  // both, weight only, bias only, neither
      const T* pw = form == 0 || form == 1 ? w.data() : nullptr;
      const T* pb = form == 0 || form == 2 ? b.data() : nullptr;
      std::vector<T> want(n);
      for (std::size_t i = 0; i < n; ++i) {
        const T h = xhat(i);
        want[i] = form == 0 ? std::fma(h, w[i % L], b[i % L]) : form == 1 ? h * w[i % L] : form == 2 ? h + b[i % L] : h;
      }
      for (const auto* t : runnable_tables()) {
        INFO(t->name << " L=" << L << " form=" << form);
        std::vector<T> got(n, T(-1));
        Call::rows(*t, x.data(), mean.data(), scale.data(), pw, pb, rows, L, got.data());
        CHECK(std::memcmp(got.data(), want.data(), n * sizeof(T)) == 0);
      }
    }
    for (const bool with_w : {true, false}) {
      std::vector<T> want_dx(n), want_dw = dw0, want_db = db0;
      for (std::size_t r = 0; r < rows; ++r) {
        double chains[2][16] = {};
        for (std::size_t l = 0; l < L; ++l) {
          const std::size_t i = r * L + l;
          const T gh = with_w ? g[i] * w[l] : g[i];
          want_dw[l] = std::fma(g[i], xhat(i), want_dw[l]);
          want_db[l] = want_db[l] + g[i];
          chains[0][l % 16] += static_cast<double>(gh);
          chains[1][l % 16] += static_cast<double>(gh) * static_cast<double>(xhat(i));
        }
        for (auto& c : chains)
          for (std::size_t half = 8; half >= 1; half /= 2)
            for (std::size_t j = 0; j < half; ++j) c[j] += c[j + half];
        const double inv_l = 1.0 / static_cast<double>(L);
        const T gm = static_cast<T>(chains[0][0] * inv_l), k = static_cast<T>(chains[1][0] * inv_l);
        for (std::size_t l = 0; l < L; ++l) {
          const std::size_t i = r * L + l;
          const T gh = with_w ? g[i] * w[l] : g[i];
          const T centred = gh - gm, slope = xhat(i) * k;
          want_dx[i] = (centred - slope) * scale[r];
        }
      }
      for (const auto* t : runnable_tables()) {
        INFO(t->name << " L=" << L << " grads, weight " << with_w);
        const T* pw = with_w ? w.data() : nullptr;
        std::vector<T> dx(n, T(-1)), dw = dw0, db = db0;
        Call::grads(*t, g.data(), x.data(), mean.data(), scale.data(), pw, rows, L, dx.data(), dw.data(), db.data());
        CHECK(std::memcmp(dx.data(), want_dx.data(), n * sizeof(T)) == 0);
        CHECK(std::memcmp(dw.data(), want_dw.data(), L * sizeof(T)) == 0);
        CHECK(std::memcmp(db.data(), want_db.data(), L * sizeof(T)) == 0);
        std::vector<T> db_only = db0, dx_only(n, T(-1));  // the parts asked for alone
        Call::grads(*t, g.data(), x.data(), mean.data(), scale.data(), pw, rows, L, nullptr, nullptr, db_only.data());
        CHECK(std::memcmp(db_only.data(), want_db.data(), L * sizeof(T)) == 0);
        Call::grads(*t, g.data(), x.data(), mean.data(), scale.data(), pw, rows, L, dx_only.data(), nullptr, nullptr);
        CHECK(std::memcmp(dx_only.data(), want_dx.data(), n * sizeof(T)) == 0);
      }
    }
  }
}

// GroupNorm's input gradient against its expression written out element by element: channels
// side by side (L = 1) and along planes with ragged tails, a block of rows [n0, n1) (the rest
// untouched), and a zero weight factor a (the group's terms remain).
template <class T>
void check_group_dx_tables() {
  for (std::size_t C : {1, 5, 17, 40}) {
    for (std::size_t L : {1, 3, 16, 19, 49}) {
      const std::size_t N = 4, n0 = 1, n1 = 3, n = N * C * L;
      const auto seed = static_cast<std::uint32_t>(C * 100 + L);
      const std::vector<T> x = rounding_values_of<T>(n, seed), g = rounding_values_of<T>(n, seed + 1);
      std::vector<T> a = rounding_values_of<T>(C, seed + 2);
      const std::vector<T> gm = rounding_values_of<T>(C, seed + 3), mean = rounding_values_of<T>(C, seed + 4),
                           k = rounding_values_of<T>(C, seed + 5);
      a[C / 2] = T(0);
      std::vector<T> want(n, T(-7));
      for (std::size_t r = n0; r < n1; ++r)
        for (std::size_t c = 0; c < C; ++c)
          for (std::size_t l = 0; l < L; ++l) {
            const std::size_t i = (r * C + c) * L + l;
            const T scaled = g[i] * a[c], centred = x[i] - mean[c], slope = centred * k[c];
            want[i] = (scaled - gm[c]) - slope;
          }
      for (const auto* t : runnable_tables()) {
        INFO(t->name << " C=" << C << " L=" << L);
        std::vector<T> got(n, T(-7));
        kernels::bn_kernels<T>(*t).group_dx(g.data(), x.data(), got.data(), C, L, n0, n1, a.data(), gm.data(),
                                            mean.data(), k.data());
        CHECK(std::memcmp(got.data(), want.data(), n * sizeof(T)) == 0);
      }
    }
  }
}


// Winograd F(2x2, 3x3)'s plane transforms against winograd.hpp's definition written out tile by
// tile: ragged tile rows (TW of 0, 1, 2, 4, 6, 7, 8, 10 and 17 against 4-, 8- and 16-lane
// registers, AVX-512's 8-lane rows up to 8 tiles; rows narrower than a register, made in
// registers, at every padding), odd outputs, every padding the layers use, a bias and none; the
// input transform's adjoint (the input gradient) likewise. The rows' ld leaves the documented slack and 5 values more, which are checked untouched.
void check_winograd_tables() {
  struct Case {
    std::size_t H, W, ph, pw;
  };
  const Case cases[] = {{14, 14, 1, 1}, {7, 5, 0, 0}, {9, 17, 2, 2}, {1, 1, 1, 1}, {3, 18, 1, 2},
                        {16, 2, 2, 0},  {4, 16, 1, 1}, {5, 34, 1, 1}, {6, 5, 2, 2}, {12, 12, 2, 2},
                        {3, 12, 0, 1},  {2, 15, 1, 0}};
  for (const Case& cs : cases) {
    const std::size_t OH = cs.H + 2 * cs.ph - 2, OW = cs.W + 2 * cs.pw - 2;
    const std::size_t TH = (OH + 1) / 2, TW = (OW + 1) / 2, T = TH * TW, ld = T + kernels::kWinogradSlack + 5;
    const auto seed = static_cast<std::uint32_t>(cs.H * 31 + cs.W);
    const std::vector<float> x = rounding_values(cs.H * cs.W, seed);
    const std::vector<float> m = rounding_values(16 * ld, seed + 1);
    auto at = [&](std::ptrdiff_t r, std::ptrdiff_t q) {  // the zero-padded input
      return r < 0 || q < 0 || r >= std::ptrdiff_t(cs.H) || q >= std::ptrdiff_t(cs.W) ? 0.0f
                                                                                       : x[std::size_t(r) * cs.W + std::size_t(q)];
    };
    std::vector<float> want_v(16 * ld, 7.0f), want_y(OH * OW);
    const float bias = 0.375f;
    for (std::size_t th = 0; th < TH; ++th)
      for (std::size_t tw = 0; tw < TW; ++tw) {
        float d[4][4], w[4][4];
        for (int i = 0; i < 4; ++i)
          for (int j = 0; j < 4; ++j)
            d[i][j] = at(std::ptrdiff_t(2 * th + i) - std::ptrdiff_t(cs.ph), std::ptrdiff_t(2 * tw + j) - std::ptrdiff_t(cs.pw));
        for (int i = 0; i < 4; ++i) {
          w[i][0] = d[i][0] - d[i][2];
          w[i][1] = d[i][1] + d[i][2];
          w[i][2] = d[i][2] - d[i][1];
          w[i][3] = d[i][1] - d[i][3];
        }
        const std::size_t t = th * TW + tw;
        for (int j = 0; j < 4; ++j) {
          want_v[std::size_t(j) * ld + t] = w[0][j] - w[2][j];
          want_v[std::size_t(4 + j) * ld + t] = w[1][j] + w[2][j];
          want_v[std::size_t(8 + j) * ld + t] = w[2][j] - w[1][j];
          want_v[std::size_t(12 + j) * ld + t] = w[1][j] - w[3][j];
        }
        float z[4][2];
        for (std::size_t i = 0; i < 4; ++i) {
          const float* r = m.data() + t;
          z[i][0] = (r[(4 * i) * ld] + r[(4 * i + 1) * ld]) + r[(4 * i + 2) * ld];
          z[i][1] = (r[(4 * i + 1) * ld] - r[(4 * i + 2) * ld]) - r[(4 * i + 3) * ld];
        }
        for (std::size_t j = 0; j < 2; ++j) {
          const float top = (z[0][j] + z[1][j]) + z[2][j], bottom = (z[1][j] - z[2][j]) - z[3][j];
          if (2 * tw + j >= OW) continue;
          want_y[(2 * th) * OW + 2 * tw + j] = top + bias;
          if (2 * th + 1 < OH) want_y[(2 * th + 1) * OW + 2 * tw + j] = bottom + bias;
        }
      }
    // The output transform's adjoint of an output gradient plane gr: each tile's 2 x 2 values
    // (0 past the plane) through A^T along the rows (g0, g0 + g1, g0 - g1, -g1), then down each column.
    const std::vector<float> gr = rounding_values(OH * OW, seed + 2);
    std::vector<float> want_a(16 * ld, 7.0f);
    for (std::size_t th = 0; th < TH; ++th)
      for (std::size_t tw = 0; tw < TW; ++tw) {
        float r[2][4];
        for (std::size_t a = 0; a < 2; ++a) {
          const std::size_t row = 2 * th + a;
          const float g0 = row < OH && 2 * tw < OW ? gr[row * OW + 2 * tw] : 0.0f;
          const float g1 = row < OH && 2 * tw + 1 < OW ? gr[row * OW + 2 * tw + 1] : 0.0f;
          r[a][0] = g0;
          r[a][1] = g0 + g1;
          r[a][2] = g0 - g1;
          r[a][3] = -g1;
        }
        const std::size_t t = th * TW + tw;
        for (std::size_t j = 0; j < 4; ++j) {
          want_a[j * ld + t] = r[0][j];
          want_a[(4 + j) * ld + t] = r[0][j] + r[1][j];
          want_a[(8 + j) * ld + t] = r[0][j] - r[1][j];
          want_a[(12 + j) * ld + t] = -r[1][j];
        }
      }
    // The input transform's adjoint of 16 rows of tiles zz into a plane (support's definition
    // written out). The rows' slack holds huge values, which must not reach the plane.
    std::vector<float> zz = rounding_values(16 * ld, seed + 3);
    for (std::size_t xi = 0; xi < 16; ++xi)
      for (std::size_t k = T; k < ld; ++k) zz[xi * ld + k] = 3e38f;
    const std::vector<float> want_dx = sorix::testing::winograd_input_adjoint_plane(
        [&](std::size_t t, std::size_t xi) { return zz[xi * ld + t]; }, TH, TW, cs.H, cs.W, cs.ph, cs.pw);
    for (const auto* t : runnable_tables()) {
      INFO(t->name << " H=" << cs.H << " W=" << cs.W << " ph=" << cs.ph << " pw=" << cs.pw);
      std::vector<float> v(16 * ld, 7.0f);
      std::vector<float> scratch(kernels::winograd_input_scratch(TH, TW));
      t->winograd_input_f32(x.data(), cs.H, cs.W, cs.ph, cs.pw, TH, TW, v.data(), ld, scratch.data());
      for (std::size_t xi = 0; xi < 16; ++xi) {
        CHECK(same_bits_n(v.data() + xi * ld, want_v.data() + xi * ld, T));
        for (std::size_t k = T + kernels::kWinogradSlack; k < ld; ++k) CHECK(v[xi * ld + k] == 7.0f);  // past the slack
      }
      std::vector<float> y(OH * OW + 1, -1.0f);  // one value past the plane: never written
      t->winograd_output_f32(m.data(), ld, TH, TW, &bias, y.data(), OH, OW);
      CHECK(same_bits_n(y.data(), want_y.data(), want_y.size()));
      CHECK(y[OH * OW] == -1.0f);
      std::fill(y.begin(), y.end(), -1.0f);  // no bias: the same transform without the add
      t->winograd_output_f32(m.data(), ld, TH, TW, nullptr, y.data(), OH, OW);
      for (std::size_t i = 0; i < want_y.size(); ++i) y[i] = y[i] + bias;  // a NaN keeps its bits through the add
      CHECK(same_bits_n(y.data(), want_y.data(), want_y.size()));
      std::vector<float> a(16 * ld, 7.0f);
      t->winograd_output_adjoint_f32(gr.data(), OH, OW, TH, TW, a.data(), ld, scratch.data());
      for (std::size_t xi = 0; xi < 16; ++xi) {
        CHECK(same_bits_n(a.data() + xi * ld, want_a.data() + xi * ld, T));
        for (std::size_t k = T + kernels::kWinogradSlack; k < ld; ++k) CHECK(a[xi * ld + k] == 7.0f);
      }
      std::vector<float> dx(cs.H * cs.W + 1, -1.0f), adjoint_scratch(kernels::winograd_input_adjoint_scratch(TW));
      t->winograd_input_adjoint_f32(zz.data(), ld, TH, TW, dx.data(), cs.H, cs.W, cs.ph, cs.pw, adjoint_scratch.data());
      CHECK(same_bits_n(dx.data(), want_dx.data(), want_dx.size()));
      CHECK(dx[cs.H * cs.W] == -1.0f);  // one value past the plane: never written
    }
  }
}

// The weight transform (baseline code) and its adjoint against the definition written out
// (support/winograd_definition.hpp).
void check_winograd_weight() {
  const std::vector<float> g = rounding_values(9, 5);
  float want[16];
  sorix::testing::winograd_weight_transform(g.data(), want);
  std::vector<float> u(16 * 3, -1.0f);
  kernels::winograd_weight_f32(g.data(), u.data(), 3);
  for (std::size_t xi = 0; xi < 16; ++xi) {
    INFO("xi=" << xi);
    CHECK(same_bits_n(&u[xi * 3], &want[xi], 1));
    CHECK(u[xi * 3 + 1] == -1.0f);  // only every ld-th value written
  }
  // The adjoint G^T du G, from every other value (ld 2).
  const std::vector<float> du = rounding_values(16 * 2, 6);
  float packed[16], want_dg[9];
  for (std::size_t xi = 0; xi < 16; ++xi) packed[xi] = du[xi * 2];
  sorix::testing::winograd_weight_grad_transform(packed, want_dg);
  std::vector<float> dg(10, -1.0f);
  kernels::winograd_weight_grad_f32(du.data(), 2, dg.data());
  CHECK(same_bits_n(dg.data(), want_dg, 9));
  CHECK(dg[9] == -1.0f);
}

}  // namespace

TEST_CASE("Winograd's transforms and their adjoints match the definition written out in every table", "[kernels][conv]") {
  check_winograd_tables();
  check_winograd_weight();
}

TEST_CASE("the direct convolution matches the chain written out in every table", "[kernels][conv]") {
  check_conv_direct_tables<float>();
  check_conv_direct_tables<double>();
}

TEST_CASE("GroupNorm's input gradient matches its expression written out in every table", "[kernels][norm]") {
  check_group_dx_tables<float>();
  check_group_dx_tables<double>();
}

TEST_CASE("LayerNorm's rows match their definition written out in every table", "[kernels][norm]") {
  check_layer_norm_rows_tables<float>();
  check_layer_norm_rows_tables<double>();
}

TEST_CASE("the depthwise gradient sums match their chains written out in every table", "[kernels][conv]") {
  check_depthwise_grad_sums_tables<float>();
  check_depthwise_grad_sums_tables<double>();
}

TEST_CASE("the transposed copy matches the loop written out in every table", "[kernels][strided]") {
  check_transpose_tables();
}

TEST_CASE("col2im with stride-1 columns matches the loop written out in every table", "[kernels][conv]") {
  check_col2im_s1_tables<float>();
  check_col2im_s1_tables<double>();
}

TEST_CASE("max pooling's 2 x 2 windows match the rule written out in every table", "[kernels][pool]") {
  check_max_pool_2x2_tables<float>();
  check_max_pool_2x2_tables<double>();
}

TEST_CASE("BatchNorm's loops give the baseline table's bits in every table", "[kernels][batchnorm]") {
  check_batchnorm_tables<float>();
  check_batchnorm_tables<double>();
}

TEST_CASE("BatchNorm's plane moments are their 16 chains in every table", "[kernels][batchnorm]") {
  check_plane_moments<float>();
  check_plane_moments<double>();
  check_plane_moments_stop_at_the_end<float>();
  check_plane_moments_stop_at_the_end<double>();
}

TEST_CASE("BatchNorm's fused ReLU on signed zeros, infinities and NaN is relu's definition in every table",
          "[kernels][batchnorm]") {
  check_batchnorm_relu_edges<float>();
  check_batchnorm_relu_edges<double>();
}

TEST_CASE("BatchNorm's fused ReLU and 2 x 2 max pool are the three ops' definition in every table",
          "[kernels][batchnorm]") {
  check_batchnorm_relu_pool_tables<float>();
  check_batchnorm_relu_pool_tables<double>();
}

TEST_CASE("softmax along a dim that is not the last gives the baseline table's bits in every table",
          "[kernels][softmax]") {
  check_softmax_cols_tables<float>();
  check_softmax_cols_tables<double>();
}

namespace {

// The ops on these kernels, forward and backward, on ragged shapes, in float32 and float64 (and
// int64 where the op has it).
std::vector<sorix::Tensor> index_bn_softmax_outputs() {
  std::vector<sorix::Tensor> out;
  for (auto dt : {sorix::float32, sorix::float64}) {
    sorix::Generator gen(17);
    const auto opts = sorix::TensorOptions().dtype(dt);
    // Selections with ties and a NaN.
    sorix::Tensor s = sorix::round(sorix::randn({5, 37, 19}, opts, &gen) * 3.0);
    if (dt == sorix::float32) s.data_ptr<float>()[400] = std::numeric_limits<float>::quiet_NaN();
    else s.data_ptr<double>()[400] = std::numeric_limits<double>::quiet_NaN();
    for (const auto& t : {s, sorix::round(sorix::randn({70001}, opts, &gen) * 50.0)}) {
      out.push_back(sorix::argmax(t));
      out.push_back(sorix::argmin(t));
      out.push_back(sorix::max(t));
      out.push_back(sorix::min(t));
      for (std::int64_t d = 0; d < t.dim(); ++d) {
        auto [v, i] = sorix::max(t, d);
        auto [w, j] = sorix::min(t, d);
        out.insert(out.end(), {v, i, w, j});
      }
    }
    // index_select / index_add (its gradient), gather / scatter_add, cat, stack.
    const sorix::Tensor x = sorix::randn({6, 41, 19}, opts, &gen).requires_grad_(true);
    const sorix::Tensor idx = sorix::randint(0, 41, {57}, sorix::int64, &gen);
    const sorix::Tensor idx19 = sorix::randint(0, 19, {57}, sorix::int64, &gen);
    const sorix::Tensor gidx = sorix::randint(0, 6, {6, 30, 19}, sorix::int64, &gen);
    const sorix::Tensor gidx19 = sorix::randint(0, 19, {6, 41, 23}, sorix::int64, &gen);
    const sorix::Tensor w = sorix::randn({6, 57, 19}, opts, &gen);
    std::vector<sorix::Tensor> fwd = {sorix::index_select(x, 1, idx) * w, sorix::index_select(x, 2, idx19),
                                      sorix::gather(x, 0, gidx),           sorix::gather(x, 2, gidx19),
                                      sorix::cat({x, x * 2.0}, 1),         sorix::stack({x, x + 1.0}, 2)};
    sorix::Tensor total = sorix::zeros({}, opts);
    for (const auto& t : fwd) {
      out.push_back(t.detach());
      total = total + (t * t).sum();
    }
    out.push_back(sorix::autograd::grad({total}, {x})[0]);
    // Embedding's gradient (the scatter-add), with a padding row.
    const sorix::Tensor table = sorix::randn({13, 37}, opts, &gen).requires_grad_(true);
    const sorix::Tensor tokens = sorix::randint(0, 13, {9, 11}, sorix::int64, &gen);
    const sorix::Tensor e = F::embedding(tokens, table, 3);
    out.push_back(sorix::autograd::grad({(e * e).sum()}, {table})[0]);
    // softmax / log_softmax along dims that are not the last (several column tiles), and backward.
    const sorix::Tensor z = sorix::randn({3, 9, 1100}, opts, &gen).requires_grad_(true);
    sorix::Tensor sm_total = sorix::zeros({}, opts);
    for (std::int64_t d : {0, 1}) {
      for (const auto& y : {sorix::softmax(z, d), sorix::log_softmax(z, d)}) {
        out.push_back(y.detach());
        sm_total = sm_total + (y * y).sum();
      }
    }
    out.push_back(sorix::autograd::grad({sm_total}, {z})[0]);
    // BatchNorm on [N, C] and [N, C, L] with ragged channel counts, forward and backward.
    for (const auto& shape : {sorix::Shape{67, 45}, sorix::Shape{33, 7, 29}, sorix::Shape{40, 70, 3}}) {
      const sorix::Tensor b = sorix::randn(shape, opts, &gen).requires_grad_(true);
      sorix::nn::BatchNorm1d bn(sorix::nn::BatchNormOptions(shape[1]), dt);
      const sorix::Tensor y = bn(b);
      const auto grads = sorix::autograd::grad({(y * y * y).sum()}, {b});
      out.insert(out.end(), {y.detach(), grads[0], bn.running_mean.clone(), bn.running_var.clone()});
    }
    const sorix::Tensor im = sorix::randn({9, 5, 7, 11}, opts, &gen).requires_grad_(true);
    sorix::nn::BatchNorm2d bn2(sorix::nn::BatchNormOptions(5), dt);
    const sorix::Tensor y2 = bn2(im);
    out.push_back(y2.detach());
    out.push_back(sorix::autograd::grad({(y2 * y2 * y2).sum()}, {im})[0]);
    // A dataset batch (the row gather).
    sorix::data::TensorDataset ds(sorix::randn({50, 3, 5}, opts, &gen), sorix::randint(0, 9, {50}, sorix::int64, &gen));
    const std::int64_t rows[] = {49, 0, 7, 7, 21, 3, 11};
    const auto batch = ds.get_batch(rows, 7);
    out.insert(out.end(), {batch.data, batch.target});
  }
  // int64 selections.
  sorix::Generator gen(3);
  const sorix::Tensor k = sorix::randint(-5, 5, {7, 33, 17}, sorix::int64, &gen);
  out.insert(out.end(), {sorix::argmax(k), sorix::max(k), sorix::argmin(k, 1), sorix::argmax(k, 2)});
  return out;
}

}  // namespace

TEST_CASE("selections, index ops, BatchNorm and softmax along any dim give the same bits on every capability "
          "at 1, 2 and 3 threads",
          "[kernels][determinism]") {
  const auto runs =
      testing::at_capabilities([] { return testing::at_thread_counts({1, 2, 3}, index_bn_softmax_outputs); });
  const auto& reference = runs.front().second.front();
  for (const auto& [cap, per_threads] : runs) {
    for (std::size_t t = 0; t < per_threads.size(); ++t) {
      INFO("capability " << cap << ", thread count #" << t);
      REQUIRE(per_threads[t].size() == reference.size());
      for (std::size_t k = 0; k < reference.size(); ++k) {
        INFO("output #" << k);
        CHECK(testing::bit_identical(per_threads[t][k], reference[k]));
      }
    }
  }
}
