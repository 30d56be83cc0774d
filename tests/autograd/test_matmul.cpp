// matmul and the product kernel under it: every shape case against a naive double triple loop,
// float64 gradchecks, error messages, bit-identical results at 1, 2, 3 and 8 threads, and
// second derivatives through create_graph.
#include <catch2/catch.hpp>

#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "sorix_autograd/gemm.hpp"

#include "support/capabilities.hpp"
#include "support/gradcheck.hpp"
#include "support/values.hpp"

using sorix::Shape;
using sorix::Tensor;
namespace testing = sorix::testing;
using sorix::testing::as_doubles;

namespace {

std::size_t numel(const Shape& s) {
  std::size_t n = 1;
  for (auto d : s) n *= static_cast<std::size_t>(d);
  return n;
}

// Naive reference written independently of matmul.cpp: 1-D operands get a unit dim (then
// dropped), batch dims broadcast (a batch of numel 1 is reused). Returns values, their
// magnitude bound sum_k |a_ik b_kj| (the scale of the rounding error) and the shape.
struct Ref {
  std::vector<double> value, bound;
  Shape shape;
};
Ref reference(const Tensor& a, const Tensor& b) {
  Shape as = a.shape(), bs = b.shape();
  const bool a1 = as.size() == 1, b1 = bs.size() == 1;
  if (a1) as.insert(as.begin(), 1);
  if (b1) bs.push_back(1);
  const std::size_t M = as[as.size() - 2], K = as.back(), N = bs.back();
  Shape ab(as.begin(), as.end() - 2), bb(bs.begin(), bs.end() - 2);
  Shape out_batch = ab.size() >= bb.size() ? ab : bb;
  for (std::size_t i = 0; i < out_batch.size(); ++i) {
    const std::size_t off = out_batch.size() - i;
    const std::int64_t da = off <= ab.size() ? ab[ab.size() - off] : 1, db = off <= bb.size() ? bb[bb.size() - off] : 1;
    out_batch[i] = da == 1 ? db : da;
  }
  const std::size_t nb = numel(out_batch), na_b = numel(ab), nb_b = numel(bb);
  const std::vector<double> av = as_doubles(a), bv = as_doubles(b);
  Ref r;
  r.value.assign(nb * M * N, 0.0);
  r.bound.assign(nb * M * N, 0.0);
  for (std::size_t p = 0; p < nb; ++p) {
    const double* A = av.data() + (na_b == 1 ? 0 : p) * M * K;
    const double* B = bv.data() + (nb_b == 1 ? 0 : p) * K * N;
    for (std::size_t i = 0; i < M; ++i) {
      for (std::size_t j = 0; j < N; ++j) {
        double s = 0, m = 0;
        for (std::size_t k = 0; k < K; ++k) {
          s += A[i * K + k] * B[k * N + j];
          m += std::abs(A[i * K + k] * B[k * N + j]);
        }
        r.value[(p * M + i) * N + j] = s;
        r.bound[(p * M + i) * N + j] = m;
      }
    }
  }
  r.shape = out_batch;
  if (!a1) r.shape.push_back(static_cast<std::int64_t>(M));
  if (!b1) r.shape.push_back(static_cast<std::int64_t>(N));
  return r;
}

// Relative error measured against sum |a_ik b_kj| (a dot product's natural error scale, which
// stays meaningful when the sum itself cancels to near 0).
void check_against_reference(const Tensor& a, const Tensor& b, double rel) {
  const Tensor c = sorix::matmul(a, b);
  const Ref r = reference(a, b);
  INFO("a " << sorix::shape_string(a.shape()) << " b " << sorix::shape_string(b.shape()));
  REQUIRE(c.shape() == r.shape);
  REQUIRE(c.dtype() == sorix::promote(a.dtype(), b.dtype()));
  const std::vector<double> got = as_doubles(c);
  std::size_t bad = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    if (!(std::abs(got[i] - r.value[i]) <= rel * std::max(1.0, r.bound[i]))) ++bad;
  }
  CHECK(bad == 0);
}

Tensor input(const Shape& s, int seed, sorix::Dtype dt, bool requires_grad = false) {
  Tensor t = testing::randn_f64(s, seed, false);
  if (dt != sorix::float64) t = t.to(dt);
  if (requires_grad) t.requires_grad_(true);
  return t;
}

struct Case {
  Shape a, b;
};
// Every supported combination, including blocks straddling 64 rows / 256 columns and empties.
const std::vector<Case> kCases = {
    {{3, 4}, {4, 5}},          {{4}, {4, 5}},          {{3, 4}, {4}},         {{4}, {4}},
    {{2, 3, 4}, {2, 4, 5}},    {{1, 3, 4}, {2, 4, 5}}, {{2, 3, 4}, {1, 4, 5}}, {{2, 3, 4}, {4, 5}},
    {{3, 4}, {2, 4, 5}},       {{2, 3, 4}, {4}},       {{4}, {2, 4, 5}},      {{2, 2, 3, 4}, {2, 2, 4, 5}},
    {{2, 2, 3, 4}, {4, 5}},    {{1, 1}, {1, 1}},       {{1}, {1}},            {{70, 300}, {300, 260}},
    {{65, 17}, {17, 257}},     {{3, 70, 20}, {3, 20, 300}}, {{3, 70, 20}, {20, 300}}, {{1, 70, 20}, {3, 20, 300}},
    {{200, 129}, {129}},       {{129}, {129, 300}},    {{0, 4}, {4, 5}},      {{3, 0}, {0, 5}},
    {{0}, {0}},                {{0, 3, 4}, {4, 5}},    {{0, 3, 4}, {1, 4, 5}},
};

// Smaller cases for the finite-difference gradcheck (every shape combination above).
const std::vector<Case> kGradCases = {
    {{3, 4}, {4, 5}},       {{4}, {4, 5}},          {{3, 4}, {4}},          {{4}, {4}},
    {{2, 3, 4}, {2, 4, 5}}, {{1, 3, 4}, {2, 4, 5}}, {{2, 3, 4}, {1, 4, 5}}, {{2, 3, 4}, {4, 5}},
    {{3, 4}, {2, 4, 5}},    {{2, 3, 4}, {4}},       {{4}, {2, 4, 5}},       {{2, 1, 3, 2}, {2, 1, 2, 3}},
    {{2, 2, 2, 3}, {3, 2}}, {{1, 1}, {1, 1}},       {{3, 0}, {0, 2}},       {{0, 2, 3}, {1, 3, 2}},
};

}  // namespace

TEST_CASE("matmul matches a naive reference for every shape case", "[matmul]") {
  for (const Case& c : kCases) {
    check_against_reference(input(c.a, 1, sorix::float32), input(c.b, 2, sorix::float32), 1e-4);
    check_against_reference(input(c.a, 1, sorix::float64), input(c.b, 2, sorix::float64), 1e-12);
  }
}

TEST_CASE("matmul shapes follow PyTorch", "[matmul]") {
  CHECK(sorix::matmul(input({4}, 1, sorix::float32), input({4}, 2, sorix::float32)).shape() == Shape{});
  CHECK(sorix::matmul(input({4}, 1, sorix::float32), input({4, 5}, 2, sorix::float32)).shape() == Shape{5});
  CHECK(sorix::matmul(input({3, 4}, 1, sorix::float32), input({4}, 2, sorix::float32)).shape() == Shape{3});
  CHECK(sorix::matmul(input({1, 3, 4}, 1, sorix::float32), input({6, 4, 5}, 2, sorix::float32)).shape() ==
        Shape{6, 3, 5});
  CHECK(sorix::matmul(input({6, 3, 4}, 1, sorix::float32), input({4, 5}, 2, sorix::float32)).shape() ==
        Shape{6, 3, 5});
  CHECK(sorix::matmul(input({3, 4}, 1, sorix::float32), input({6, 4, 5}, 2, sorix::float32)).shape() ==
        Shape{6, 3, 5});
  // A dot product is a 0-dim tensor with the exact small-integer answer.
  Tensor d = sorix::matmul(sorix::tensor({1.f, 2.f, 3.f}), sorix::tensor({4.f, 5.f, 6.f}));
  CHECK(d.dim() == 0);
  CHECK(d.item<float>() == 32.f);
  // The method form is the same op.
  Tensor a = input({5, 7}, 3, sorix::float64), b = input({7, 2}, 4, sorix::float64);
  CHECK(testing::bit_identical(a.matmul(b), sorix::matmul(a, b)));
  // K == 0: an empty sum is exactly 0.
  Tensor z = sorix::matmul(sorix::zeros({3, 0}), sorix::zeros({0, 4}));
  CHECK(z.shape() == Shape{3, 4});
  CHECK(sorix::sum(sorix::abs(z)).item<float>() == 0.f);
}

TEST_CASE("matmul promotes mixed float dtypes", "[matmul]") {
  Tensor a = input({3, 4}, 1, sorix::float32, true), b = input({4, 2}, 2, sorix::float64, true);
  Tensor c = sorix::matmul(a, b);
  CHECK(c.dtype() == sorix::float64);
  check_against_reference(a, b, 1e-12);
  c.sum().backward();
  REQUIRE(a.grad().defined());
  CHECK(a.grad().dtype() == sorix::float32);
  CHECK(a.grad().shape() == a.shape());
  CHECK(b.grad().dtype() == sorix::float64);
  // d sum(a b) / d a[i][k] = sum_j b[k][j]
  const std::vector<double> ga = as_doubles(a.grad()), bv = as_doubles(b);
  for (int i = 0; i < 3; ++i) {
    for (int k = 0; k < 4; ++k) CHECK(ga[i * 4 + k] == Approx(bv[k * 2] + bv[k * 2 + 1]).epsilon(1e-6));
  }
}

TEST_CASE("matmul gradients pass gradcheck for every shape case", "[matmul]") {
  for (const Case& c : kGradCases) {
    INFO("a " << sorix::shape_string(c.a) << " b " << sorix::shape_string(c.b));
    auto f = [](const std::vector<Tensor>& in) { return sorix::matmul(in[0], in[1]); };
    auto both = testing::gradcheck(f, {testing::randn_f64(c.a, 1), testing::randn_f64(c.b, 2)});
    INFO(both.message);
    CHECK(both.ok);
    auto only_a = testing::gradcheck(f, {testing::randn_f64(c.a, 3), testing::randn_f64(c.b, 4, false)});
    INFO(only_a.message);
    CHECK(only_a.ok);
    auto only_b = testing::gradcheck(f, {testing::randn_f64(c.a, 5, false), testing::randn_f64(c.b, 6)});
    INFO(only_b.message);
    CHECK(only_b.ok);
  }
  // The same tensor on both sides: both gradients accumulate.
  auto sq = testing::gradcheck([](const std::vector<Tensor>& in) { return sorix::matmul(in[0], in[0]); },
                               {testing::randn_f64({4, 4}, 7)});
  INFO(sq.message);
  CHECK(sq.ok);
}

TEST_CASE("matmul records no graph without grad", "[matmul]") {
  Tensor a = input({3, 4}, 1, sorix::float64, true), b = input({4, 5}, 2, sorix::float64);
  CHECK(sorix::matmul(a, b).requires_grad());
  CHECK_FALSE(sorix::matmul(a.detach(), b).requires_grad());
  sorix::NoGradGuard guard;
  CHECK_FALSE(sorix::matmul(a, b).requires_grad());
}

TEST_CASE("matmul rejects bad operands with clear messages", "[matmul]") {
  const Tensor a23 = sorix::zeros({2, 3}), b45 = sorix::zeros({4, 5});
  CHECK_THROWS_WITH(sorix::matmul(a23, b45), Catch::Contains("matmul") && Catch::Contains("[2, 3]") &&
                                                 Catch::Contains("[4, 5]") && Catch::Contains("cannot be multiplied"));
  CHECK_THROWS_AS(sorix::matmul(a23, b45), std::invalid_argument);
  CHECK_THROWS_WITH(sorix::matmul(sorix::zeros({3}), sorix::zeros({4})),
                    Catch::Contains("[3]") && Catch::Contains("[4]"));
  CHECK_THROWS_WITH(sorix::matmul(sorix::zeros({2, 3, 4}), sorix::zeros({3, 4, 5})),
                    Catch::Contains("batch") && Catch::Contains("[2, 3, 4]") && Catch::Contains("[3, 4, 5]"));
  CHECK_THROWS_WITH(sorix::matmul(sorix::zeros({2, 1, 3, 4}), sorix::zeros({1, 2, 4, 5})),
                    Catch::Contains("matmul") && Catch::Contains("batch"));
  CHECK_THROWS_WITH(sorix::matmul(sorix::zeros({2, 3}, sorix::int64), sorix::zeros({3, 2}, sorix::int64)),
                    Catch::Contains("matmul") && Catch::Contains("int64") && Catch::Contains("float"));
  CHECK_THROWS_AS(sorix::matmul(sorix::zeros({2, 3}), sorix::zeros({3, 2}, sorix::int64)), std::invalid_argument);
  CHECK_THROWS_WITH(sorix::matmul(sorix::zeros({}), sorix::zeros({3})),
                    Catch::Contains("matmul") && Catch::Contains("at least 1 dimension"));
  CHECK_THROWS_WITH(sorix::matmul(Tensor(), b45), Catch::Contains("matmul"));
}

TEST_CASE("matmul is bit-identical at 1, 2, 3 and 8 threads", "[matmul]") {
  // M x K x N with ragged edge tiles (rows, columns or both; the training layer's 128 x 784 x
  // 128), big enough to run as parallel tasks.
  const std::vector<std::array<std::int64_t, 3>> sizes = {{1, 1, 1},       {63, 65, 127},   {200, 300, 129},
                                                          {513, 70, 1000}, {64, 64, 256},   {65, 300, 257},
                                                          {128, 784, 128}, {1000, 150, 600}};
  for (auto dt : {sorix::float32, sorix::float64}) {
    for (const auto& s : sizes) {
      INFO("M K N " << s[0] << " " << s[1] << " " << s[2] << " " << sorix::dtype_name(dt));
      const Tensor a = input({s[0], s[1]}, 1, dt, true), b = input({s[1], s[2]}, 2, dt, true);
      const Tensor w = input({s[0], s[2]}, 3, dt);
      auto runs = testing::at_thread_counts({1, 2, 3, 8}, [&] {
        Tensor c = sorix::matmul(a, b);
        auto g = sorix::autograd::grad({(c * w).sum()}, {a, b});
        return std::vector<Tensor>{c, g[0], g[1]};
      });
      for (std::size_t r = 1; r < runs.size(); ++r) {
        for (std::size_t k = 0; k < 3; ++k) CHECK(testing::bit_identical(runs[0][k], runs[r][k]));
      }
    }
    // Batched, with a broadcast batch (its gradient is summed over the batch).
    const Tensor a = input({1, 130, 70}, 4, dt, true), b = input({5, 70, 300}, 5, dt, true);
    auto runs = testing::at_thread_counts({1, 2, 3, 8}, [&] {
      Tensor c = sorix::matmul(a, b);
      auto g = sorix::autograd::grad({(c * c).sum()}, {a, b});
      return std::vector<Tensor>{c, g[0], g[1]};
    });
    for (std::size_t r = 1; r < runs.size(); ++r) {
      for (std::size_t k = 0; k < 3; ++k) CHECK(testing::bit_identical(runs[0][k], runs[r][k]));
    }
  }
}

namespace {
// y = alpha * op(A) op(B) + beta * C in double, all row-major with leading dimensions.
template <class T>
std::vector<double> gemm_reference(bool ta, bool tb, std::size_t M, std::size_t N, std::size_t K, double alpha,
                                   const std::vector<T>& A, std::size_t lda, const std::vector<T>& B,
                                   std::size_t ldb, double beta, const std::vector<T>& C, std::size_t ldc) {
  std::vector<double> out(C.begin(), C.end());
  for (std::size_t i = 0; i < M; ++i) {
    for (std::size_t j = 0; j < N; ++j) {
      double s = 0;
      for (std::size_t k = 0; k < K; ++k) {
        const double a = ta ? A[k * lda + i] : A[i * lda + k];
        const double b = tb ? B[j * ldb + k] : B[k * ldb + j];
        s += a * b;
      }
      out[i * ldc + j] = alpha * s + (beta == 0 ? 0.0 : beta * static_cast<double>(C[i * ldc + j]));
    }
  }
  return out;
}

template <class T>
std::vector<T> values(std::size_t n, int seed) {
  std::vector<T> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<T>(std::sin(0.7 * static_cast<double>(i) + seed));
  return v;
}

template <class T>
void check_gemm_flags(double tol) {
  // The transposed fast paths the nn layers use (y = x W^T, dW = g^T x, dx = g W), on
  // sub-matrices (leading dimensions wider than the rows), with alpha and beta.
  const std::size_t M = 130, N = 300, K = 70, pad = 3;
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      INFO("trans_a " << ta << " trans_b " << tb);
      const std::size_t lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
      const auto A = values<T>((ta ? K : M) * lda, 1), B = values<T>((tb ? N : K) * ldb, 2);
      const auto C0 = values<T>(M * ldc, 3);
      for (double beta : {0.0, 0.5}) {
        std::vector<T> C = C0;
        // beta == 0: C is only written, even where it held NaN.
        if (beta == 0) C[0] = std::numeric_limits<T>::quiet_NaN();
        const auto ref = gemm_reference<T>(ta, tb, M, N, K, 1.5, A, lda, B, ldb, beta, C0, ldc);
        auto runs = testing::at_thread_counts({1, 2, 3, 8}, [&] {
          std::vector<T> out = C;
          sorix::kernels::gemm<T>(ta, tb, M, N, K, T(1.5), A.data(), lda, B.data(), ldb, T(beta), out.data(), ldc);
          return out;
        });
        std::size_t bad = 0, untouched = 0;
        for (std::size_t i = 0; i < M; ++i) {
          for (std::size_t j = 0; j < ldc; ++j) {
            const std::size_t p = i * ldc + j;
            if (j >= N) untouched += runs[0][p] == C[p] ? 0 : 1;  // padding is never written
            else if (!(std::abs(runs[0][p] - ref[p]) <= tol * 40.0)) ++bad;
          }
        }
        CHECK(bad == 0);
        CHECK(untouched == 0);
        for (std::size_t r = 1; r < runs.size(); ++r) CHECK(runs[r] == runs[0]);
      }
    }
  }
}
}  // namespace

namespace {
// The kernel's contract (gemm.hpp): c = fma chain over k from +0, then alpha * acc, then
// fma(beta, c_old, that). Checked bit for bit against that scalar formula on shapes with ragged
// edge tiles, every transpose combination, padded leading dimensions, alpha and beta, on every
// CPU capability this machine runs, at 1, 2, 3 and 8 threads.
template <class T>
void check_fma_chain() {
  struct Shape3 {
    std::size_t M, N, K;
  };
  // Shapes for every path of the driver: packed slab (the first ones), columns packed inside their
  // tasks (13 x 600: at least four 128-column groups), K split into blocks continuing from C's
  // partial sums (K = 784 and 1100 > 512, alpha 1, beta 0; 1100 ends in a ragged block). With
  // trans_a, a few columns past whole registers are made by GemmKernel::columns (N = 33, 49, 3,
  // 20, 300, 1: one to four columns past them, 49 a Winograd product's 7 x 7 tiles; 70 and 33 of
  // 130 and 17 rows: row blocks that are not whole registers). A small untransposed B whose tiled
  // columns are whole registers is read in place, not packed (37 x 64 x 20, and 49 columns of 48 +
  // one made by columns()).
  for (const Shape3 sh : {Shape3{130, 70, 33}, Shape3{9, 300, 41}, Shape3{64, 64, 128}, Shape3{17, 33, 784},
                          Shape3{1, 1, 1}, Shape3{5, 3, 2}, Shape3{13, 600, 40}, Shape3{6, 20, 1100},
                          Shape3{64, 49, 32}, Shape3{70, 49, 64}, Shape3{37, 64, 20}}) {
    for (bool ta : {false, true}) {
      for (bool tb : {false, true}) {
        for (T beta : {T(0), T(0.75)}) {
          const T alpha = beta == T(0) ? T(1) : T(1.5);
          const std::size_t M = sh.M, N = sh.N, K = sh.K, pad = 5;
          INFO("M N K " << M << " " << N << " " << K << " ta " << ta << " tb " << tb << " beta " << beta);
          const std::size_t lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
          const auto A = values<T>((ta ? K : M) * lda, 11), B = values<T>((tb ? N : K) * ldb, 12);
          const auto C0 = values<T>(M * ldc, 13);
          std::vector<T> want = C0;
          for (std::size_t i = 0; i < M; ++i) {
            for (std::size_t j = 0; j < N; ++j) {
              T acc = T(0);
              for (std::size_t k = 0; k < K; ++k) {
                acc = std::fma(ta ? A[k * lda + i] : A[i * lda + k], tb ? B[j * ldb + k] : B[k * ldb + j], acc);
              }
              const T scaled = alpha == T(1) ? acc : alpha * acc;
              want[i * ldc + j] = beta == T(0) ? scaled : std::fma(beta, C0[i * ldc + j], scaled);
            }
          }
          const auto per_capability = testing::at_capabilities([&] {
            return testing::at_thread_counts({1, 2, 3, 8}, [&] {
              std::vector<T> out = C0;
              sorix::kernels::gemm<T>(ta, tb, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, out.data(), ldc);
              return out;
            });
          });
          for (const auto& [cap, runs] : per_capability) {
            INFO("capability " << cap);
            for (const auto& out : runs) CHECK(std::memcmp(out.data(), want.data(), want.size() * sizeof(T)) == 0);
          }
        }
      }
    }
  }
}
}  // namespace

TEST_CASE("products are one fma chain per element in k order, on every capability and thread count", "[matmul]") {
  check_fma_chain<float>();
  check_fma_chain<double>();
}

namespace {
// gemm_serial_resume: a chain over k that arrives in pieces (gemm_serial for the first, then
// resumes from C) is the fma chain over all of k, bit for bit, on every capability; pieces of
// ragged lengths, one longer than a K block (512), every transpose combination, padded leading
// dimensions.
template <class T>
void check_resumed_chain() {
  const std::size_t M = 19, N = 37, pad = 3;
  const std::size_t pieces[] = {5, 1, 600, 33, 0, 64};
  std::size_t K = 0;
  for (std::size_t p : pieces) K += p;
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      INFO("ta " << ta << " tb " << tb);
      const std::size_t lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
      const auto A = values<T>((ta ? K : M) * lda, 31), B = values<T>((tb ? N : K) * ldb, 32);
      std::vector<T> want(M * ldc, T(7));
      for (std::size_t i = 0; i < M; ++i)
        for (std::size_t j = 0; j < N; ++j) {
          T acc = T(0);
          for (std::size_t k = 0; k < K; ++k)
            acc = std::fma(ta ? A[k * lda + i] : A[i * lda + k], tb ? B[j * ldb + k] : B[k * ldb + j], acc);
          want[i * ldc + j] = acc;
        }
      const auto per_capability = testing::at_capabilities([&] {
        std::vector<T> out(M * ldc, T(7));
        std::size_t k0 = 0;
        for (std::size_t p : pieces) {
          const T* a = ta ? A.data() + k0 * lda : A.data() + k0;
          const T* b = tb ? B.data() + k0 : B.data() + k0 * ldb;
          if (k0 == 0) sorix::kernels::gemm_serial<T>(ta, tb, M, N, p, T(1), a, lda, b, ldb, T(0), out.data(), ldc);
          else sorix::kernels::gemm_serial_resume<T>(ta, tb, M, N, p, a, lda, b, ldb, out.data(), ldc);
          k0 += p;
        }
        return out;
      });
      for (const auto& [cap, out] : per_capability) {
        INFO("capability " << cap);
        CHECK(std::memcmp(out.data(), want.data(), want.size() * sizeof(T)) == 0);
      }
    }
  }
}
}  // namespace

TEST_CASE("a chain resumed piece by piece (gemm_serial_resume) is the one fma chain over all of k", "[matmul]") {
  check_resumed_chain<float>();
  check_resumed_chain<double>();
}

namespace {
// gemm_gathered_serial: op(A)(i, k) = A[a_rows[i] + a_ks[k]] as a convolution reads its columns
// from zero-padded planes: the forward's cols^T (row i an output position, k = (channel, tap)),
// the weight gradient's cols (row i = (channel, tap), k a position) times op(B) = g^T. Each
// element must be the fma chain over k in order from +0 of the values read, then fma(beta, c,
// acc): written out here, on every capability; also when the chain arrives in two pieces (resume).
// Strides, dilations and kernel shapes change the offsets; N covers a ragged panel and the narrow
// tiles; K = 600 (24 channels of 5 x 5 taps) runs past one K block (512) with beta 0, where the
// chains continue across blocks from C.
template <class T>
void check_gathered_chain() {
  struct Geometry {
    std::size_t C, H, W, kh, kw, sh, sw, dh, dw;
  };
  const Geometry cases[] = {
      {3, 9, 11, 3, 3, 1, 1, 1, 1}, {4, 17, 13, 3, 3, 2, 2, 1, 1}, {2, 12, 15, 3, 3, 1, 2, 2, 1},
      {5, 7, 19, 1, 5, 1, 1, 1, 2}, {24, 8, 8, 5, 5, 1, 1, 1, 1},
  };
  for (const Geometry& g : cases) {
    const std::size_t OH = (g.H - (g.kh - 1) * g.dh - 1) / g.sh + 1, OW = (g.W - (g.kw - 1) * g.dw - 1) / g.sw + 1;
    const std::size_t plane = g.H * g.W, P = OH * OW, taps = g.C * g.kh * g.kw;
    std::vector<std::size_t> positions(P), tap_at(taps);
    for (std::size_t i = 0; i < P; ++i) positions[i] = i / OW * g.sh * g.W + i % OW * g.sw;
    for (std::size_t k = 0; k < taps; ++k)
      tap_at[k] = k / (g.kh * g.kw) * plane + k / g.kw % g.kh * g.dh * g.W + k % g.kw * g.dw;
    const auto A = values<T>(g.C * plane, 41);
    for (bool weight_gradient : {false, true}) {
      // The forward: rows are positions, k runs over taps, B untransposed [K, N]; the weight
      // gradient: rows are taps, k runs over positions, op(B) = B^T with B [N, K].
      const std::vector<std::size_t>& rows = weight_gradient ? tap_at : positions;
      const std::vector<std::size_t>& ks = weight_gradient ? positions : tap_at;
      const std::size_t M = rows.size(), K = ks.size();
      for (std::size_t N : {5, 16, 33}) {
        for (int mode : {0, 1, 2}) {  // beta 0, beta 1, beta 0 in two pieces of k (the second resumed)
          const T beta = mode == 1 ? T(1) : T(0);
          INFO("C " << g.C << " kernel " << g.kh << "x" << g.kw << " stride " << g.sh << "," << g.sw << " dilation "
                    << g.dh << "," << g.dw << " weight gradient " << weight_gradient << " N " << N << " mode " << mode);
          const bool tb = weight_gradient;
          const std::size_t ldb = (tb ? K : N) + 2, ldc = N + 3;
          const auto B = values<T>((tb ? N : K) * ldb, 42), C0 = values<T>(M * ldc, 43);
          auto b_at = [&](std::size_t k, std::size_t j) { return tb ? B[j * ldb + k] : B[k * ldb + j]; };
          std::vector<T> want = C0;
          for (std::size_t i = 0; i < M; ++i)
            for (std::size_t j = 0; j < N; ++j) {
              T acc = T(0);
              for (std::size_t k = 0; k < K; ++k) acc = std::fma(A[rows[i] + ks[k]], b_at(k, j), acc);
              want[i * ldc + j] = beta == T(0) ? acc : std::fma(beta, C0[i * ldc + j], acc);
            }
          const auto per_capability = testing::at_capabilities([&] {
            std::vector<T> out = C0;
            const std::size_t first = mode == 2 ? K / 3 : K;
            sorix::kernels::gemm_gathered_serial<T>(tb, M, N, first, A.data(), rows.data(), ks.data(), B.data(), ldb,
                                                    beta, out.data(), ldc);
            if (mode == 2)  // the rest of k: op(B) from row (or column) `first` on
              sorix::kernels::gemm_gathered_serial<T>(tb, M, N, K - first, A.data(), rows.data(), ks.data() + first,
                                                      B.data() + (tb ? first : first * ldb), ldb, T(0), out.data(), ldc,
                                                      /*resume=*/true);
            return out;
          });
          for (const auto& [cap, out] : per_capability) {
            INFO("capability " << cap);
            CHECK(std::memcmp(out.data(), want.data(), want.size() * sizeof(T)) == 0);
          }
        }
      }
    }
  }
}
}  // namespace

TEST_CASE("a gathered op(A) (gemm_gathered_serial) is the fma chain over the values it reads", "[matmul]") {
  check_gathered_chain<float>();
  check_gathered_chain<double>();
}

TEST_CASE("float32 products wider than one packed slab keep the fma chain", "[matmul]") {
  // K = 2^16 leaves room for 256 packed columns of B per 64 MiB slab: 300 columns take two slabs.
  const std::size_t M = 9, N = 300, K = std::size_t{1} << 16;
  for (bool tb : {false, true}) {
    INFO("trans_b " << tb);
    const auto A = values<float>(M * K, 21), B = values<float>(K * N, 22);
    std::vector<float> want(M * N);
    for (std::size_t i = 0; i < M; ++i) {
      for (std::size_t j = 0; j < N; ++j) {
        float acc = 0.0f;
        for (std::size_t k = 0; k < K; ++k) acc = std::fma(A[i * K + k], tb ? B[j * K + k] : B[k * N + j], acc);
        want[i * N + j] = acc;
      }
    }
    auto runs = testing::at_thread_counts({1, 3}, [&] {
      std::vector<float> out(M * N, -1.0f);
      sorix::kernels::gemm<float>(false, tb, M, N, K, 1.0f, A.data(), K, B.data(), tb ? K : N, 0.0f, out.data(), N);
      return out;
    });
    for (const auto& out : runs) CHECK(std::memcmp(out.data(), want.data(), want.size() * sizeof(float)) == 0);
  }
}

TEST_CASE("gemm handles transposes, leading dimensions, alpha and beta", "[matmul]") {
  check_gemm_flags<float>(1e-5);
  check_gemm_flags<double>(1e-13);
}

TEST_CASE("gemm with K == 0 scales C by beta", "[matmul]") {
  std::vector<double> c = {1.0, 2.0, std::numeric_limits<double>::quiet_NaN(), 4.0};
  sorix::kernels::gemm<double>(false, false, 2, 2, 0, 1.0, nullptr, 1, nullptr, 2, 0.5, c.data(), 2);
  CHECK(c[0] == 0.5);
  CHECK(c[1] == 1.0);
  CHECK(std::isnan(c[2]));
  CHECK(c[3] == 2.0);
  sorix::kernels::gemm<double>(false, false, 2, 2, 0, 1.0, nullptr, 1, nullptr, 2, 0.0, c.data(), 2);
  CHECK(c == std::vector<double>{0, 0, 0, 0});
  CHECK_THROWS_AS(sorix::kernels::gemm<double>(false, false, 2, 2, 3, 1.0, c.data(), 2, c.data(), 2, 0.0, c.data(), 2),
                  std::invalid_argument);
}

TEST_CASE("matmul second derivatives through create_graph", "[matmul]") {
  // S(a, b) = sum(V * dL/da) with L = sum(W * (a b)^2): its gradient needs the graph of
  // dL/da = 2 (W * a b) b^T, i.e. MatmulBackward recorded under create_graph.
  for (const Case& c : std::vector<Case>{{{3, 4}, {4, 5}}, {{2, 3, 4}, {4, 2}}, {{1, 3, 4}, {2, 4, 2}}, {{4}, {4, 3}}}) {
    INFO("a " << sorix::shape_string(c.a) << " b " << sorix::shape_string(c.b));
    Tensor a = testing::randn_f64(c.a, 1), b = testing::randn_f64(c.b, 2);
    const Shape out_shape = sorix::matmul(a.detach(), b.detach()).shape();
    const Tensor W = testing::randn_f64(out_shape, 3, false), V = testing::randn_f64(c.a, 4, false);
    auto S = [&](bool create_graph) {
      Tensor y = sorix::matmul(a, b);
      Tensor ga = sorix::autograd::grad({(W * y * y).sum()}, {a}, {}, create_graph)[0];
      return (V * ga).sum();
    };
    auto analytic = sorix::autograd::grad({S(true)}, {a, b});
    const double eps = 1e-6;
    std::size_t bad = 0;
    for (std::size_t k = 0; k < 2; ++k) {
      Tensor x = k == 0 ? a : b;
      double* p = x.data_ptr<double>();
      const std::vector<double> g = as_doubles(analytic[k]);
      for (std::int64_t e = 0; e < x.numel(); ++e) {
        const double saved = p[e];
        p[e] = saved + eps;
        const double up = S(false).item<double>();
        p[e] = saved - eps;
        const double down = S(false).item<double>();
        p[e] = saved;
        const double numeric = (up - down) / (2 * eps);
        if (!(std::abs(g[static_cast<std::size_t>(e)] - numeric) <= 1e-6 + 1e-4 * std::abs(numeric))) ++bad;
      }
    }
    CHECK(bad == 0);
  }
}

TEST_CASE("products keep the fma chain where a double-rounded sum would land halfway", "[matmul]") {
  // acc = 2^30 + 2^7 (an odd float), then + a*b with a*b = 2^6 - 2^-24 exactly: the exact sum is
  // just below the halfway point 2^30 + 2^7 + 2^6, so fma rounds down to 2^30 + 2^7; the same sum
  // rounded first to double lands on the halfway point and would round to even, up to 2^30 + 2^8.
  // A path that emulates fma through double must catch it (the scalar capability does).
  const float acc0 = 1073741824.0f + 128.0f;
  const float a1 = std::ldexp(1.0f + std::ldexp(1.0f, -15), 6), b1 = 1.0f - std::ldexp(1.0f, -15);
  REQUIRE(std::fma(a1, b1, acc0) == acc0);
  REQUIRE(static_cast<float>(static_cast<double>(a1) * b1 + acc0) != acc0);  // the trap is real
  // Subnormal sums too: fma(2^-70, 2^-70, 2^-140) is a float subnormal.
  const float tiny = std::ldexp(1.0f, -70), tiny_c = std::ldexp(1.0f, -140);
  for (std::size_t M : {1, 3, 7}) {
    const std::size_t K = 2, N = 11;
    std::vector<float> A(M * K), B(K * N);
    for (std::size_t i = 0; i < M; ++i) {
      A[i * K] = i % 2 ? tiny_c : acc0;
      A[i * K + 1] = i % 2 ? tiny : a1;
    }
    for (std::size_t j = 0; j < N; ++j) {
      B[j] = 1.0f;
      B[N + j] = j % 3 == 0 ? tiny : b1;
    }
    std::vector<float> want(M * N);
    for (std::size_t i = 0; i < M; ++i)
      for (std::size_t j = 0; j < N; ++j)
        want[i * N + j] = std::fma(A[i * K + 1], B[N + j], std::fma(A[i * K], B[j], 0.0f));
    const auto runs = testing::at_capabilities([&] {
      std::vector<float> out(M * N);
      sorix::kernels::gemm<float>(false, false, M, N, K, 1.0f, A.data(), K, B.data(), N, 0.0f, out.data(), N);
      return out;
    });
    for (const auto& [cap, out] : runs) {
      INFO("capability " << cap << ", M " << M);
      CHECK(std::memcmp(out.data(), want.data(), want.size() * sizeof(float)) == 0);
    }
  }
}
