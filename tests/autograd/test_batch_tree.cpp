// The batch tree (sorix/parallel/batch_tree.hpp): its shape, its split among ranks, the chunked
// product kernel and the batch sums against a scalar reference built from the definition, on every
// capability at 1, 2, 3 threads; and the property data-parallel training rests on: Linear's
// gradients over the whole batch equal the tree combination of the gradients of its rank parts.
#include <catch2/catch.hpp>

#include <cctype>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "sorix_autograd/gemm.hpp"
#include "sorix_core/kernels/batch_tree.hpp"
#include "sorix/nn/conv.hpp"
#include "sorix/nn/linear.hpp"
#include "sorix/parallel/batch_tree.hpp"
#include "sorix/sorix.hpp"

#include "support/capabilities.hpp"
#include "support/gradcheck.hpp"
#include "support/values.hpp"

using sorix::parallel::ChunkRange;
using sorix::parallel::kBatchChunk;
namespace testing = sorix::testing;

namespace {

template <class T>
std::vector<T> random_values(std::size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> u(-2.0, 2.0);
  std::vector<T> v(n);
  for (auto& x : v) x = static_cast<T>(u(gen));
  return v;
}

// "(a+b)", built by appends (g++ 12 warns falsely about chains of std::string operator+).
std::string paren(const std::string& a, const std::string& b) {
  std::string s = "(";
  s.append(a).append("+").append(b).append(")");
  return s;
}

// The tree over chunk leaves 0..n-1 written as an expression.
std::string tree_text(std::size_t n, const std::vector<ChunkRange>& nodes) {
  return sorix::parallel::combine_batch_tree<std::string>(
      n, nodes,
      [&](std::size_t i) {
        return std::to_string(nodes[i].begin);
      },
      [](const std::string& a, const std::string& b) { return paren(a, b); });
}

std::vector<ChunkRange> leaves(std::size_t n) {
  std::vector<ChunkRange> v;
  for (std::size_t i = 0; i < n; ++i) v.push_back({i, i + 1});
  return v;
}

// The definition, scalar: chunk partials (one fma chain from +0 over the chunk's k in order), then
// the tree over the chunks.
template <class T>
std::vector<T> reference_product(bool ta, bool tb, std::size_t M, std::size_t N, std::size_t K, const std::vector<T>& A,
                                 std::size_t lda, const std::vector<T>& B, std::size_t ldb, std::size_t chunk) {
  const std::size_t n = (K + chunk - 1) / chunk;
  std::vector<T> out(M * N);
  for (std::size_t i = 0; i < M; ++i) {
    for (std::size_t j = 0; j < N; ++j) {
      std::vector<T> part(n, T(0));
      for (std::size_t k = 0; k < K; ++k) {
        part[k / chunk] = std::fma(ta ? A[k * lda + i] : A[i * lda + k], tb ? B[j * ldb + k] : B[k * ldb + j], part[k / chunk]);
      }
      out[i * N + j] = sorix::parallel::combine_batch_tree<T>(
          n, leaves(n), [&](std::size_t c) { return part[c]; }, [](T a, T b) { return a + b; });
    }
  }
  return out;
}

}  // namespace

TEST_CASE("the batch tree is the pairwise tree over chunk indices", "[batch_tree]") {
  CHECK(tree_text(1, leaves(1)) == "0");
  CHECK(tree_text(2, leaves(2)) == "(0+1)");
  CHECK(tree_text(3, leaves(3)) == "((0+1)+2)");
  CHECK(tree_text(7, leaves(7)) == "(((0+1)+(2+3))+((4+5)+6))");
  CHECK(tree_text(8, leaves(8)) == "(((0+1)+(2+3))+((4+5)+(6+7)))");
}

TEST_CASE("the batch splits into tree nodes, largest first", "[batch_tree]") {
  using V = std::vector<ChunkRange>;
  CHECK(sorix::parallel::split_batch_tree(7, 1) == V{{0, 7}});
  CHECK(sorix::parallel::split_batch_tree(7, 2) == V{{0, 4}, {4, 7}});
  CHECK(sorix::parallel::split_batch_tree(7, 3) == V{{0, 2}, {2, 4}, {4, 7}});
  CHECK(sorix::parallel::split_batch_tree(7, 4) == V{{0, 2}, {2, 4}, {4, 6}, {6, 7}});
  CHECK(sorix::parallel::split_batch_tree(8, 3) == V{{0, 2}, {2, 4}, {4, 8}});
  CHECK(sorix::parallel::split_batch_tree(5, 2) == V{{0, 4}, {4, 5}});
  CHECK(sorix::parallel::split_batch_tree(3, 3) == V{{0, 1}, {1, 2}, {2, 3}});
  // Combining any split's nodes gives the whole tree's expression.
  for (std::size_t n = 1; n <= 40; ++n) {
    for (std::size_t parts = 1; parts <= n; ++parts) {
      const auto nodes = sorix::parallel::split_batch_tree(n, parts);
      REQUIRE(nodes.size() == parts);
      std::string expanded = sorix::parallel::combine_batch_tree<std::string>(
          n, nodes,
          [&](std::size_t i) {
            // A node's own subtree, renumbered to global leaves.
            const std::size_t b = nodes[i].begin, m = nodes[i].end - b;
            std::string t = tree_text(m, leaves(m));
            std::string out;
            for (std::size_t p = 0; p < t.size();) {
              if (std::isdigit(static_cast<unsigned char>(t[p]))) {
                std::size_t q = p;
                while (q < t.size() && std::isdigit(static_cast<unsigned char>(t[q]))) ++q;
                out += std::to_string(b + std::stoul(t.substr(p, q - p)));
                p = q;
              } else {
                out += t[p++];
              }
            }
            return out;
          },
          [](const std::string& a, const std::string& b) { return paren(a, b); });
      INFO("n " << n << " parts " << parts);
      CHECK(expanded == tree_text(n, leaves(n)));
    }
  }
  // More parts than chunks (a short last batch): one chunk each, then empty parts.
  CHECK(sorix::parallel::split_batch_tree(3, 5) == V{{0, 1}, {1, 2}, {2, 3}, {3, 3}, {3, 3}});
  CHECK(tree_text(3, sorix::parallel::split_batch_tree(3, 5)) == "((0+1)+2)");
  CHECK(sorix::parallel::split_batch_tree(0, 2) == V{{0, 0}, {0, 0}});
  CHECK_THROWS_AS(sorix::parallel::split_batch_tree(3, 0), std::invalid_argument);
}

TEST_CASE("batch sums follow the definition at any thread count", "[batch_tree]") {
  for (std::size_t rows : {0, 1, 31, 32, 33, 200, 1000}) {
    for (std::size_t cols : {1, 10, 300}) {
      const auto x = random_values<float>(rows * cols, 3);
      std::vector<float> want(cols);
      const std::size_t n = (rows + kBatchChunk - 1) / kBatchChunk;
      for (std::size_t c = 0; c < cols; ++c) {
        std::vector<float> part(n, 0.0f);
        for (std::size_t r = 0; r < rows; ++r) part[r / kBatchChunk] += x[r * cols + c];
        want[c] = n == 0 ? 0.0f
                         : sorix::parallel::combine_batch_tree<float>(
                               n, leaves(n), [&](std::size_t i) { return part[i]; }, [](float a, float b) { return a + b; });
      }
      const auto runs = testing::at_thread_counts({1, 2, 3}, [&] {
        std::vector<float> out(cols, -1.0f);
        sorix::kernels::batch_sum_rows(x.data(), out.data(), rows, cols);
        return out;
      });
      INFO("rows " << rows << " cols " << cols);
      for (const auto& out : runs) CHECK(std::memcmp(out.data(), want.data(), cols * sizeof(float)) == 0);
    }
  }
}

template <class T>
void check_chunked_products() {
  struct Case {
    std::size_t M, N, K, chunk;
  };
  // K within one chunk (the plain chain), ragged last chunks, more chunks than a K block holds
  // (600, 1100 > 512), chunks longer than a K block (a convolution's 32 images of 40 positions);
  // K within one block runs the tree inside each tile: a deep tree (34 chunks of 3), a full block.
  // Few outputs and long chains (a weight gradient of 32 x 9): at 2 and 3 threads the chunks are
  // the tasks, their partials added afterwards.
  for (const Case cs : {Case{7, 9, 20, 32}, Case{13, 70, 33, 32}, Case{130, 40, 200, 32}, Case{6, 150, 600, 32},
                        Case{17, 33, 1100, 32}, Case{5, 20, 1300, 640}, Case{64, 64, 96, 32}, Case{9, 40, 100, 3},
                        Case{16, 96, 512, 32}, Case{32, 9, 3000, 700}, Case{5, 20, 4000, 1000}}) {
    for (bool ta : {true, false}) {
      for (bool tb : {false, true}) {
        const std::size_t M = cs.M, N = cs.N, K = cs.K, pad = 3;
        const std::size_t lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad;
        const auto A = random_values<T>((ta ? K : M) * lda, 5), B = random_values<T>((tb ? N : K) * ldb, 6);
        const auto want = reference_product<T>(ta, tb, M, N, K, A, lda, B, ldb, cs.chunk);
        const auto per_capability = testing::at_capabilities([&] {
          return testing::at_thread_counts({1, 2, 3}, [&] {
            std::vector<T> out(M * N, T(-7));
            sorix::kernels::gemm_batch_tree<T>(ta, tb, M, N, K, A.data(), lda, B.data(), ldb, out.data(), N, cs.chunk);
            return out;
          });
        });
        INFO("M N K chunk " << M << " " << N << " " << K << " " << cs.chunk << " ta " << ta << " tb " << tb);
        for (const auto& [cap, runs] : per_capability) {
          INFO("capability " << cap);
          for (const auto& out : runs) CHECK(std::memcmp(out.data(), want.data(), want.size() * sizeof(T)) == 0);
        }
      }
    }
  }
}

TEST_CASE("the chunked product restarts every chunk and adds the chunks by the tree", "[batch_tree]") {
  check_chunked_products<float>();
  check_chunked_products<double>();
}

TEST_CASE("Linear's gradients over a batch are the tree of its ranks' gradients", "[batch_tree]") {
  // The property DistributedDataParallel rests on: a rank holding tree node [a, b) of the chunks
  // computes, from its rows alone, exactly that node of every gradient sum.
  sorix::manual_seed(11);
  const std::int64_t rows = 200, in = 37, out = 19;  // 7 chunks, the last one short
  const sorix::Tensor x = sorix::randn({rows, in}), w = sorix::randn({out, in}), b = sorix::randn({out}),
                      g = sorix::randn({rows, out});
  auto grads = [&](std::int64_t r0, std::int64_t r1) {
    sorix::Tensor wl = w.detach().requires_grad_(true), bl = b.detach().requires_grad_(true);
    sorix::Tensor y = sorix::nn::functional::linear(x.slice(0, r0, r1), wl, bl);
    y.backward(g.slice(0, r0, r1).contiguous());
    return std::pair{testing::values_of<float>(wl.grad()), testing::values_of<float>(bl.grad())};
  };
  const auto whole = grads(0, rows);
  const std::size_t n = sorix::parallel::batch_chunks(rows);
  for (std::size_t parts = 1; parts <= n; ++parts) {
    const auto nodes = sorix::parallel::split_batch_tree(n, parts);
    std::vector<std::pair<std::vector<float>, std::vector<float>>> part;
    for (const auto& nd : nodes) {
      part.push_back(grads(static_cast<std::int64_t>(nd.begin * kBatchChunk),
                           std::min<std::int64_t>(rows, static_cast<std::int64_t>(nd.end * kBatchChunk))));
    }
    auto add = [](std::vector<float> a, const std::vector<float>& c) {
      for (std::size_t i = 0; i < a.size(); ++i) a[i] = a[i] + c[i];
      return a;
    };
    const auto dw = sorix::parallel::combine_batch_tree<std::vector<float>>(
        n, nodes, [&](std::size_t i) { return part[i].first; }, add);
    const auto db = sorix::parallel::combine_batch_tree<std::vector<float>>(
        n, nodes, [&](std::size_t i) { return part[i].second; }, add);
    INFO("parts " << parts);
    CHECK(std::memcmp(dw.data(), whole.first.data(), dw.size() * sizeof(float)) == 0);
    CHECK(std::memcmp(db.data(), whole.second.data(), db.size() * sizeof(float)) == 0);
  }
}

TEST_CASE("Conv2d's weight and bias gradients are the tree of its ranks' gradients", "[batch_tree]") {
  // As Linear's: chunks of kBatchChunk images (each P = 8 x 8 output columns).
  sorix::manual_seed(12);
  const std::int64_t N = 70, C = 3, OC = 4;  // 3 chunks, the last one of 6 images
  const sorix::Tensor x = sorix::randn({N, C, 8, 8}), w = sorix::randn({OC, C, 3, 3}), b = sorix::randn({OC}),
                      g = sorix::randn({N, OC, 8, 8});
  auto grads = [&](std::int64_t r0, std::int64_t r1) {
    sorix::Tensor wl = w.detach().requires_grad_(true), bl = b.detach().requires_grad_(true);
    sorix::Tensor y = sorix::nn::functional::conv2d(x.slice(0, r0, r1), wl,
                                                    sorix::nn::functional::Conv2dFuncOptions().bias(bl).padding(1));
    y.backward(g.slice(0, r0, r1).contiguous());
    return std::pair{testing::values_of<float>(wl.grad()), testing::values_of<float>(bl.grad())};
  };
  const auto whole = testing::at_thread_counts({1, 2, 3}, [&] { return grads(0, N); });
  for (const auto& run : whole) {
    CHECK(run.first == whole[0].first);
    CHECK(run.second == whole[0].second);
  }
  const std::size_t n = sorix::parallel::batch_chunks(N);
  auto add = [](std::vector<float> a, const std::vector<float>& c) {
    for (std::size_t i = 0; i < a.size(); ++i) a[i] = a[i] + c[i];
    return a;
  };
  for (std::size_t parts = 1; parts <= n; ++parts) {
    const auto nodes = sorix::parallel::split_batch_tree(n, parts);
    std::vector<std::pair<std::vector<float>, std::vector<float>>> part;
    for (const auto& nd : nodes) {
      part.push_back(grads(static_cast<std::int64_t>(nd.begin * kBatchChunk),
                           std::min<std::int64_t>(N, static_cast<std::int64_t>(nd.end * kBatchChunk))));
    }
    const auto dw = sorix::parallel::combine_batch_tree<std::vector<float>>(
        n, nodes, [&](std::size_t i) { return part[i].first; }, add);
    const auto db = sorix::parallel::combine_batch_tree<std::vector<float>>(
        n, nodes, [&](std::size_t i) { return part[i].second; }, add);
    INFO("parts " << parts);
    CHECK(std::memcmp(dw.data(), whole[0].first.data(), dw.size() * sizeof(float)) == 0);
    CHECK(std::memcmp(db.data(), whole[0].second.data(), db.size() * sizeof(float)) == 0);
  }
}
