// Whole-run determinism: the same seed gives the same bits at any thread count.
// (The same check across separate processes is examples/determinism_check.)
#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <sorix/sorix.hpp>

#include "examples/support/fashion_model.hpp"
#include "support/gradcheck.hpp"

using sorix::Tensor;
using sorix::testing::at_thread_counts;
using sorix::testing::bit_identical;
namespace nn = sorix::nn;
namespace F = sorix::nn::functional;

namespace {

const std::vector<int> kThreads{1, 2, 3, 4, 8, 16, 64};

// Runs fn at every thread count and checks each returned tensor equals the 1-thread one bit for bit.
void require_thread_invariant(const std::string& what, const std::function<std::vector<Tensor>()>& fn,
                              const std::vector<int>& threads = {1, 2, 3, 8}) {
  auto results = at_thread_counts(threads, fn);
  for (std::size_t r = 1; r < results.size(); ++r) {
    REQUIRE(results[r].size() == results[0].size());
    for (std::size_t k = 0; k < results[0].size(); ++k) {
      INFO(what << ": output " << k << " at " << threads[r] << " threads vs 1 thread");
      CHECK(bit_identical(results[r][k], results[0][k]));
    }
  }
}

// Sizes that straddle the SIMD width (16 floats) and the chunk size.
std::vector<std::int64_t> straddling_sizes() {
  const auto c = static_cast<std::int64_t>(sorix::parallel::kChunkSize);
  return {1, 15, 16, 17, c - 1, c + 1, 2 * c + 3, 5 * c + 7};
}

}  // namespace

TEST_CASE("short training run is bit-identical at 1, 2, 3, 4, 8, 16 and 64 threads", "[determinism]") {
  auto data = sorix::examples::synthetic_fashion(1024, 7);
  // Batch 512 makes the elementwise, reduction and GEMM paths actually split into tasks.
  std::vector<std::string> digests;
  for (int t : kThreads) {
    sorix::parallel::set_num_threads(t);
    auto rec = sorix::examples::train_steps(data, 4, 2024, 512);
    digests.push_back(sorix::sha256_hex(rec.weights) + sorix::examples::loss_digest(rec.losses) +
                      sorix::sha256_hex(rec.gradients) + sorix::sha256_hex(rec.optimizer));
    REQUIRE(rec.losses.size() == 4);
    REQUIRE(rec.gradients.size() == 7);  // every parameter got a gradient
  }
  for (std::size_t i = 1; i < digests.size(); ++i) {
    INFO(kThreads[i] << " threads vs 1 thread");
    CHECK(digests[i] == digests[0]);
  }
  sorix::parallel::set_num_threads(sorix::parallel::hardware_threads());
}

TEST_CASE("a different seed changes the run (the check can fail)", "[determinism]") {
  auto data = sorix::examples::synthetic_fashion(512, 7);
  auto a = sorix::examples::train_steps(data, 2, 1, 256);
  auto b = sorix::examples::train_steps(data, 2, 2, 256);
  CHECK(sorix::sha256_hex(a.weights) != sorix::sha256_hex(b.weights));
}

TEST_CASE("op families at sizes straddling the chunk size and the SIMD width", "[determinism]") {
  for (std::int64_t n : straddling_sizes()) {
    INFO("n = " << n);
    sorix::Generator g(n);
    Tensor x = sorix::randn({n}, sorix::float32, &g);
    Tensor row = sorix::randn({n}, sorix::float32, &g);
    require_thread_invariant("elementwise", [&] {
      return std::vector<Tensor>{x.exp(), x.tanh(), x.sigmoid(), x.relu(), x * row + 1.0, x / (row.abs() + 1.0),
                                 x.pow(2.0), x.clamp(-0.5, 0.5)};
    });
    require_thread_invariant("reductions", [&] {
      return std::vector<Tensor>{x.sum(), x.mean(), x.max(), x.argmax(), (x * row).sum()};
    });
    require_thread_invariant("dropout and random", [&] {
      sorix::manual_seed(99);
      return std::vector<Tensor>{F::dropout(x, 0.3), sorix::rand({n}), sorix::randn({n}), sorix::randperm(n)};
    });
  }
  // 2-D shapes: rows x cols straddling the chunk and the GEMM blocks.
  for (auto [rows, cols] : std::vector<std::pair<std::int64_t, std::int64_t>>{{3, 17}, {65, 257}, {300, 129}, {1025, 33}}) {
    INFO(rows << " x " << cols);
    sorix::Generator g(static_cast<std::uint64_t>(rows * 1000 + cols));
    Tensor a = sorix::randn({rows, cols}, sorix::float32, &g);
    Tensor b = sorix::randn({cols}, sorix::float32, &g);
    Tensor w = sorix::randn({cols, 70}, sorix::float32, &g);
    Tensor labels = sorix::randint(0, cols, {rows}, sorix::int64, &g);
    require_thread_invariant("2-D ops", [&] {
      return std::vector<Tensor>{a + b, a.sum({0}), a.sum({1}), a.mean({0}, true), a.softmax(1), a.log_softmax(0),
                                 a.matmul(w), a.t(), std::get<0>(a.max(1)), F::cross_entropy(a, labels)};
    });
  }
}

TEST_CASE("forward and backward of the model's layers are thread-count invariant", "[determinism]") {
  sorix::Generator g(5);
  Tensor x0 = sorix::rand({700, 784}, sorix::float32, &g);
  Tensor labels = sorix::randint(0, 10, {700}, sorix::int64, &g);
  require_thread_invariant("model forward/backward", [&] {
    sorix::manual_seed(3);
    nn::Sequential model = sorix::examples::make_fashion_model();
    Tensor x = x0.detach().requires_grad_(true);
    Tensor loss = F::cross_entropy(model(x), labels);
    loss.backward();
    std::vector<Tensor> out{loss, x.grad()};
    for (auto& p : model.parameters()) out.push_back(p.grad());
    for (auto& b : model.buffers()) out.push_back(b);
    return out;
  }, {1, 2, 3, 4, 8, 16, 64});
}

TEST_CASE("gradient accumulation when one tensor feeds several ops", "[determinism]") {
  sorix::Generator g(11);
  Tensor x0 = sorix::randn({300, 257}, sorix::float32, &g);
  require_thread_invariant("shared input", [&] {
    Tensor x = x0.detach().requires_grad_(true);
    Tensor y = (x * x).sum() + x.exp().mean() + x.tanh().sum({0}).sum() + x.matmul(x.t()).sum();
    y.backward();
    return std::vector<Tensor>{y, x.grad()};
  });
  // And the accumulated gradient is the sum of the parts.
  Tensor x = sorix::randn({4, 3}, sorix::float64, &g).requires_grad_(true);
  ((x * x).sum() + x.sum()).backward();
  Tensor expected = x.detach() * 2.0 + 1.0;
  CHECK((x.grad() - expected).abs().max().item<double>() < 1e-12);
}

TEST_CASE("Embedding with repeated indices is thread-count invariant", "[determinism]") {
  sorix::manual_seed(4);
  nn::Embedding emb(nn::EmbeddingOptions(50, 64));
  sorix::Generator g(8);
  Tensor idx = sorix::randint(0, 50, {40000}, sorix::int64, &g);  // every row repeated ~800 times
  Tensor gout = sorix::randn({40000, 64}, sorix::float32, &g);
  require_thread_invariant("embedding", [&] {
    emb.zero_grad();
    Tensor y = emb(idx);
    y.backward(gout);
    return std::vector<Tensor>{y, emb.weight.grad()};
  }, {1, 2, 3, 4, 8, 16, 64});
}

TEST_CASE("training resumed from a checkpoint matches the uninterrupted run bit for bit", "[determinism]") {
  auto data = sorix::examples::synthetic_fashion(1024, 9);
  const auto path = (std::filesystem::temp_directory_path() / "sorix_resume_test.sorix").string();
  auto make = [] { return sorix::examples::make_fashion_model(); };
  auto run_epochs = [&](nn::Sequential& model, sorix::optim::RMSprop& opt, sorix::data::DataLoader& loader, int epochs,
                        std::vector<float>& losses) {
    nn::CrossEntropyLoss loss_fn;
    for (int e = 0; e < epochs; ++e) {
      for (const auto& batch : loader) {
        Tensor loss = loss_fn(model(batch.data), batch.target);
        opt.zero_grad();
        loss.backward();
        opt.step();
        losses.push_back(loss.item<float>());
      }
    }
  };
  auto options = sorix::data::DataLoaderOptions().batch_size(256).shuffle(true).seed(31);

  // Uninterrupted: 3 epochs.
  std::vector<float> full_losses;
  sorix::manual_seed(17);
  nn::Sequential full = make();
  sorix::optim::RMSprop full_opt(full.parameters(), sorix::optim::RMSpropOptions(1e-3).alpha(0.99));
  sorix::data::DataLoader full_loader(data, options);
  run_epochs(full, full_opt, full_loader, 3, full_losses);

  // Interrupted: 1 epoch, checkpoint, fresh objects (and a disturbed default generator), 2 more.
  std::vector<float> resumed_losses;
  {
    sorix::manual_seed(17);
    nn::Sequential first = make();
    sorix::optim::RMSprop opt(first.parameters(), sorix::optim::RMSpropOptions(1e-3).alpha(0.99));
    sorix::data::DataLoader loader(data, options);
    run_epochs(first, opt, loader, 1, resumed_losses);
    sorix::Checkpoint ckpt(first);
    ckpt.optimizer(opt).generator(sorix::default_generator()).add("loader", loader);
    sorix::save(ckpt, path);
  }
  sorix::manual_seed(12345);  // anything the process did since must not matter
  (void)sorix::rand({1000});
  nn::Sequential second = make();
  sorix::optim::RMSprop opt(second.parameters(), sorix::optim::RMSpropOptions(1e-3).alpha(0.99));
  sorix::data::DataLoader loader(data, options);
  sorix::Checkpoint ckpt(second);
  ckpt.optimizer(opt).generator(sorix::default_generator()).add("loader", loader);
  sorix::load(ckpt, path);
  run_epochs(second, opt, loader, 2, resumed_losses);
  std::filesystem::remove(path);

  CHECK(resumed_losses == full_losses);
  CHECK(sorix::sha256_hex(second.state_dict()) == sorix::sha256_hex(full.state_dict()));
  CHECK(sorix::sha256_hex(opt.state_dict()) == sorix::sha256_hex(full_opt.state_dict()));
}
