// Long runs keep their memory: a step leaves nothing behind, with or without create_graph.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstddef>
#include <fstream>
#include <sorix/sorix.hpp>

namespace {

// Resident set size of this process in bytes (Linux: /proc/self/statm, second field in pages).
std::size_t rss_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::size_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

constexpr std::size_t kMiB = std::size_t{1} << 20;

// AddressSanitizer holds freed memory in quarantine, so the resident set grows by design; there
// its leak checker (make test-asan) finds what these tests look for.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kRssIsMeaningful = false;
#else
constexpr bool kRssIsMeaningful = true;
#endif

}  // namespace

TEST_CASE("10,000 training steps keep the resident set flat", "[memory]") {
  namespace nn = sorix::nn;
  sorix::manual_seed(3);
  nn::Sequential model(nn::Linear(32, 64), nn::ReLU(), nn::Dropout(0.1), nn::Linear(64, 10));
  sorix::optim::Adam opt(model.parameters(), sorix::optim::AdamOptions(1e-3));
  nn::CrossEntropyLoss loss_fn;
  const sorix::Tensor x = sorix::randn({16, 32});
  const sorix::Tensor y = sorix::randint(0, 10, {16});
  auto step = [&] {
    sorix::Tensor loss = loss_fn(model(x), y);
    opt.zero_grad();
    loss.backward();
    opt.step();
  };
  for (int i = 0; i < 1000; ++i) step();  // warm-up: allocator pools and caches settle
  const std::size_t before = rss_bytes();
  for (int i = 0; i < 9000; ++i) step();
  const std::size_t after = rss_bytes();
  INFO("RSS before " << before / 1024 << " KiB, after " << after / 1024 << " KiB");
  // A step allocates ~30 KiB of tensors; leaking even one small buffer a step would add > 4 MiB.
  if (kRssIsMeaningful) CHECK(after < before + 4 * kMiB);
}

TEST_CASE("create_graph gradients into leaves that are then dropped free their graphs", "[memory]") {
  // The gradient of a create_graph backward holds a graph that reaches back to its leaf; the leaf
  // holding that gradient must not keep the cycle alive once the user drops the leaf.
  sorix::manual_seed(4);
  auto iteration = [] {
    sorix::Tensor w = sorix::randn({256}).requires_grad_(true);
    sorix::Tensor loss = (w * w * w).sum();
    loss.backward(sorix::Tensor(), /*retain_graph=*/false, /*create_graph=*/true);
    REQUIRE(w.grad().requires_grad());
  };
  for (int i = 0; i < 1000; ++i) iteration();
  const std::size_t before = rss_bytes();
  for (int i = 0; i < 9000; ++i) iteration();
  const std::size_t after = rss_bytes();
  INFO("RSS before " << before / 1024 << " KiB, after " << after / 1024 << " KiB");
  // Leaking the ~4 KiB graph of an iteration would add ~35 MiB.
  if (kRssIsMeaningful) CHECK(after < before + 4 * kMiB);
}
