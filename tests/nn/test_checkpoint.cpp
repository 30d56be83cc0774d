// sorix::save / sorix::load for models, generators, optimizer-like objects and whole runs.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sorix/core/error.hpp>
#include <sorix/sorix.hpp>
#include <string>
#include <vector>

#include "support/gradcheck.hpp"
#include "support/temp_files.hpp"
#include "support/values.hpp"

namespace fs = std::filesystem;
namespace nn = sorix::nn;
using sorix::Dtype;
using sorix::StateDict;
using sorix::Tensor;
using sorix::testing::bit_identical;
using sorix::testing::read_bytes;
using sorix::testing::TempDir;
using sorix::testing::write_bytes;
using sorix::testing::same_state;

namespace {

// y = x W^T + b, with an int64 buffer: parameters and buffers of two dtypes.
struct Affine : nn::Module {
  Affine(std::int64_t in, std::int64_t out, std::uint64_t seed) {
    sorix::Generator g(seed);
    weight = register_parameter("weight", sorix::randn({out, in}, {}, &g));
    bias = register_parameter("bias", sorix::randn({out}, {}, &g));
    calls = register_buffer("calls", sorix::full({1}, static_cast<double>(seed), Dtype::Int64));
  }
  Tensor forward(const Tensor& x) override { return sorix::matmul(x, weight.t()) + bias; }
  std::string name() const override { return "Affine"; }
  Tensor weight, bias, calls;
};

nn::Sequential make_model(std::uint64_t seed, std::int64_t hidden = 3) {
  return nn::Sequential(Affine(4, hidden, seed), nn::Dropout(0.5), Affine(hidden, 2, seed + 1));
}

StateDict deep_copy(const StateDict& s) {
  sorix::NoGradGuard g;
  StateDict out;
  for (const auto& [n, t] : s) out.insert(n, t.detach().clone());
  return out;
}

// Stands in for an optimizer: state_dict()/load_state_dict() only, validating before changing.
struct FakeOptimizer {
  Tensor momentum = sorix::zeros({3});
  std::int64_t steps = 0;
  StateDict state_dict() const {
    StateDict s;
    s.insert("momentum", momentum.clone());
    s.insert("steps", sorix::full({1}, static_cast<double>(steps), Dtype::Int64));
    return s;
  }
  void load_state_dict(const StateDict& s) {
    const Tensor* m = s.find("momentum");
    const Tensor* n = s.find("steps");
    sorix::check(s.size() == 2 && m != nullptr && n != nullptr && m->shape() == momentum.shape() &&
                     m->dtype() == Dtype::Float32 && n->dtype() == Dtype::Int64,
                 "FakeOptimizer::load_state_dict", "state does not match");
    momentum = m->clone();
    steps = n->item<std::int64_t>();
  }
  void step(sorix::Generator& g) {
    sorix::NoGradGuard guard;
    momentum = momentum * 0.9 + sorix::rand({3}, {}, &g);
    ++steps;
  }
};

static_assert(sorix::StateDictSerializable<FakeOptimizer>);
static_assert(sorix::StateDictSerializable<sorix::Checkpoint>);
static_assert(sorix::StateDictSerializable<sorix::data::DataLoader>);
static_assert(!sorix::StateDictSerializable<nn::Sequential>);  // modules use their own overload
static_assert(!sorix::StateDictSerializable<sorix::Generator>);

// One pretend training step: every parameter moves by generator noise; the optimizer too.
void train_step(nn::Module& model, FakeOptimizer& opt, sorix::Generator& g) {
  sorix::NoGradGuard guard;
  for (Tensor p : model.parameters()) p.add_(sorix::rand_like(p, &g) * 0.01);
  opt.step(g);
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("save/load a Sequential model", "[checkpoint]") {
  TempDir dir("sorix_ckpt_");
  const std::string path = dir.file("model.sorix");
  nn::Sequential a = make_model(1);
  nn::Sequential b = make_model(7);
  REQUIRE_FALSE(same_state(a.state_dict(), b.state_dict()));
  sorix::save(a, path);
  sorix::load(b, path);
  CHECK(same_state(a.state_dict(), b.state_dict()));
  const StateDict loaded = sorix::load_state(path);
  CHECK(loaded.contains("0.weight"));
  CHECK(loaded.contains("2.calls"));
  CHECK(loaded.at("2.calls").dtype() == Dtype::Int64);
  // Parameters stay parameters (requires_grad) and the module computes with the loaded values.
  for (const Tensor& p : b.parameters()) CHECK(p.requires_grad());
  a.eval();
  b.eval();
  Tensor x = sorix::rand({5, 4});
  CHECK(bit_identical(a(x), b(x)));
}

TEST_CASE("a corrupt, truncated or mismatched file leaves the model untouched", "[checkpoint]") {
  TempDir dir("sorix_ckpt_");
  const std::string good = dir.file("good.sorix");
  const std::string bad = dir.file("bad.sorix");
  sorix::save(make_model(1), good);
  nn::Sequential target = make_model(7);
  const StateDict before = deep_copy(target.state_dict());
  const auto bytes = read_bytes(good);

  SECTION("truncated anywhere") {
    for (std::size_t n = 0; n < bytes.size(); n += 7) {
      write_bytes(bad, std::vector<unsigned char>(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n)));
      CHECK_THROWS_AS(sorix::load(target, bad), std::runtime_error);
    }
  }
  SECTION("a flipped byte in a weight") {
    auto b = bytes;
    b[20 + 4 + 8 + 1 + 4 + 16 + 5] ^= 0x10;  // inside 0.weight's data
    write_bytes(bad, b);
    const std::string msg = error_of([&] { sorix::load(target, bad); });
    CHECK(msg.find("CRC mismatch") != std::string::npos);
    CHECK(msg.find(bad) != std::string::npos);
  }
  SECTION("a model of another shape") {
    sorix::save(make_model(1, /*hidden=*/5), bad);
    CHECK_THROWS_AS(sorix::load(target, bad), std::invalid_argument);
    const std::string msg = error_of([&] { sorix::load(target, bad); });
    INFO(msg);
    CHECK(msg.find(bad) != std::string::npos);
    CHECK(msg.find("0.weight") != std::string::npos);
    CHECK(msg.find("Mismatched") != std::string::npos);
  }
  SECTION("a missing or an extra entry") {
    StateDict partial;
    for (const auto& [n, t] : make_model(1).state_dict()) {
      if (n != "2.bias") partial.insert(n, t);
    }
    sorix::save(partial, bad);
    CHECK(error_of([&] { sorix::load(target, bad); }).find("Missing: [2.bias]") != std::string::npos);
    StateDict extra = make_model(1).state_dict();
    extra.insert("3.weight", sorix::zeros({1}));
    sorix::save(extra, bad);
    CHECK(error_of([&] { sorix::load(target, bad); }).find("Unexpected: [3.weight]") != std::string::npos);
  }
  SECTION("a missing file") {
    CHECK_THROWS_AS(sorix::load(target, dir.file("none.sorix")), std::runtime_error);
  }
  CHECK(same_state(target.state_dict(), before));
}

TEST_CASE("a saved generator replays its stream exactly", "[checkpoint]") {
  TempDir dir("sorix_ckpt_");
  const std::string path = dir.file("rng.sorix");
  // A seed with the top bit set checks the uint64 <-> int64 bit cast.
  sorix::Generator g(0xF00DFACE12345678ULL);
  sorix::rand({100}, {}, &g);
  sorix::save(g, path);
  const Tensor first = sorix::rand({50000}, {}, &g);
  const Tensor first_n = sorix::randn({7, 3}, sorix::float64, &g);
  sorix::rand({10}, {}, &g);  // move on
  sorix::load(g, path);
  CHECK(bit_identical(sorix::rand({50000}, {}, &g), first));
  CHECK(bit_identical(sorix::randn({7, 3}, sorix::float64, &g), first_n));

  // Into another generator, and into the default one.
  sorix::Generator other(1);
  sorix::load(other, path);
  CHECK(bit_identical(sorix::rand({50000}, {}, &other), first));
  sorix::load(sorix::default_generator(), path);
  CHECK(bit_identical(sorix::rand({50000}), first));

  const StateDict s = sorix::load_state(path);
  REQUIRE(s.at("state").shape() == sorix::Shape{2});
  CHECK(static_cast<std::uint64_t>(s.at("state").data_ptr<std::int64_t>()[0]) == 0xF00DFACE12345678ULL);
  CHECK(s.at("state").data_ptr<std::int64_t>()[1] > 0);

  // A model file is not a generator state: refused, generator untouched.
  sorix::save(make_model(1), dir.file("model.sorix"));
  const auto before = g.get_state();
  CHECK_THROWS_AS(sorix::load(g, dir.file("model.sorix")), std::invalid_argument);
  CHECK(g.get_state() == before);
}

TEST_CASE("objects with state_dict/load_state_dict (optimizers) save and load", "[checkpoint]") {
  TempDir dir("sorix_ckpt_");
  sorix::Generator g(5);
  FakeOptimizer a;
  a.step(g);
  a.step(g);
  sorix::save(a, dir.file("opt.sorix"));
  FakeOptimizer b;
  sorix::load(b, dir.file("opt.sorix"));
  CHECK(b.steps == 2);
  CHECK(bit_identical(b.momentum, a.momentum));
  sorix::save(sorix::generator_state_dict(g), dir.file("sd.sorix"));
  CHECK_THROWS_AS(sorix::load(b, dir.file("sd.sorix")), std::invalid_argument);
  CHECK(b.steps == 2);
}

TEST_CASE("a Checkpoint resumes a run exactly", "[checkpoint]") {
  TempDir dir("sorix_ckpt_");
  const std::string path = dir.file("run.sorix");
  nn::Sequential model = make_model(1);
  FakeOptimizer opt;
  sorix::Generator gen(42);
  for (int i = 0; i < 3; ++i) train_step(model, opt, gen);

  sorix::Checkpoint ckpt(model);
  ckpt.optimizer(opt).generator(gen);
  ckpt.epoch = 1;
  ckpt.step = 3;
  sorix::save(ckpt, path);
  const StateDict file = sorix::load_state(path);
  CHECK(file.contains("model.0.weight"));
  CHECK(file.contains("optim.momentum"));
  CHECK(file.contains("rng.state"));
  CHECK(file.at("meta.step").item<std::int64_t>() == 3);

  for (int i = 0; i < 2; ++i) train_step(model, opt, gen);
  const StateDict final_model = deep_copy(model.state_dict());
  const StateDict final_opt = deep_copy(opt.state_dict());

  // A fresh process: other weights, other optimizer state, other seed.
  nn::Sequential model2 = make_model(9);
  FakeOptimizer opt2;
  sorix::Generator gen2(7);
  sorix::Checkpoint resume(model2);
  resume.optimizer(opt2).generator(gen2);
  sorix::load(resume, path);
  CHECK(resume.epoch == 1);
  CHECK(resume.step == 3);
  for (int i = 0; i < 2; ++i) train_step(model2, opt2, gen2);
  CHECK(same_state(model2.state_dict(), final_model));
  CHECK(same_state(opt2.state_dict(), final_opt));
}

TEST_CASE("a Checkpoint load is all or nothing", "[checkpoint]") {
  TempDir dir("sorix_ckpt_");
  nn::Sequential model = make_model(1);
  FakeOptimizer opt;
  sorix::Generator gen(3);
  sorix::Checkpoint ckpt(model);
  ckpt.optimizer(opt).generator(gen);
  ckpt.epoch = 4;
  const StateDict good = ckpt.state_dict();

  nn::Sequential model2 = make_model(2);
  FakeOptimizer opt2;
  opt2.steps = 17;
  sorix::Generator gen2(8);
  sorix::Checkpoint target(model2);
  target.optimizer(opt2).generator(gen2);
  const StateDict model_before = deep_copy(model2.state_dict());
  const auto gen_before = gen2.get_state();
  auto unchanged = [&] {
    CHECK(same_state(model2.state_dict(), model_before));
    CHECK(opt2.steps == 17);
    CHECK(gen2.get_state() == gen_before);
    CHECK(target.epoch == 0);
  };

  SECTION("the optimizer refuses its part after the model was loaded: the model is restored") {
    StateDict s;
    for (const auto& [n, t] : good) s.insert(n, n == "optim.momentum" ? sorix::zeros({4}) : t);
    CHECK_THROWS_AS(target.load_state_dict(s), std::invalid_argument);
    unchanged();
  }
  SECTION("an unexpected part") {
    StateDict s = good;
    s.insert("sched.lr", sorix::zeros({1}));
    CHECK(error_of([&] { target.load_state_dict(s); }).find("sched.lr") != std::string::npos);
    unchanged();
  }
  SECTION("a bad meta entry or generator state") {
    StateDict s;
    for (const auto& [n, t] : good) s.insert(n, n == "rng.state" ? sorix::zeros({3}, Dtype::Int64) : t);
    CHECK_THROWS_AS(target.load_state_dict(s), std::invalid_argument);
    unchanged();
    StateDict m;
    for (const auto& [n, t] : good) {
      if (n != "meta.step") m.insert(n, t);
    }
    CHECK(error_of([&] { target.load_state_dict(m); }).find("meta.step") != std::string::npos);
    unchanged();
  }
  SECTION("a good state loads") {
    target.load_state_dict(good);
    CHECK(same_state(model2.state_dict(), model.state_dict()));
    CHECK(gen2.get_state() == gen.get_state());
    CHECK(target.epoch == 4);
  }
}

TEST_CASE("a Checkpoint carries extra parts such as a seeded DataLoader", "[checkpoint]") {
  TempDir dir("sorix_ckpt_");
  const std::string path = dir.file("run.sorix");
  sorix::data::TensorDataset ds(sorix::arange(40.0).reshape({20, 2}), sorix::arange(20.0, sorix::int64));
  auto order_of_next_epoch = [](sorix::data::DataLoader& loader) {
    std::vector<std::int64_t> order;
    for (const auto& b : loader) {
      order.insert(order.end(), b.target.data_ptr<std::int64_t>(), b.target.data_ptr<std::int64_t>() + b.target.numel());
    }
    return order;
  };
  nn::Sequential model = make_model(1);
  sorix::data::DataLoader loader(ds, sorix::data::DataLoaderOptions(6).shuffle(true).seed(10));
  order_of_next_epoch(loader);
  sorix::Checkpoint ckpt(model);
  ckpt.add("loader", loader);
  sorix::save(ckpt, path);
  CHECK(sorix::load_state(path).contains("loader.generator"));
  const auto expected = order_of_next_epoch(loader);

  nn::Sequential model2 = make_model(2);
  sorix::data::DataLoader loader2(ds, sorix::data::DataLoaderOptions(6).shuffle(true).seed(99));
  sorix::Checkpoint resume(model2);
  resume.add("loader", loader2);
  sorix::load(resume, path);
  CHECK(order_of_next_epoch(loader2) == expected);
  CHECK(same_state(model2.state_dict(), model.state_dict()));

  // Part names: unique, not reserved, no dots.
  FakeOptimizer opt;
  CHECK_THROWS_AS(resume.add("loader", opt), std::invalid_argument);
  CHECK_THROWS_AS(resume.add("model", opt), std::invalid_argument);
  CHECK_THROWS_AS(resume.add("a.b", opt), std::invalid_argument);
  CHECK_THROWS_AS(resume.add("", opt), std::invalid_argument);
}
