// nn::Module base behaviour (nn/src/module.cpp, containers.cpp) exercised with the real layers:
// naming, buffers, train/eval, zero_grad, state_dict round trip and strict loading, printing,
// copies sharing parameters, and a user subclass with its own forward.
#include <catch2/catch.hpp>

#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <sorix/sorix.hpp>

#include "support/errors.hpp"
#include "support/gradcheck.hpp"

using sorix::Shape;
using sorix::Tensor;
namespace nn = sorix::nn;
namespace testing = sorix::testing;
using sorix::testing::message_of;

namespace {

nn::Sequential make_model() {
  return nn::Sequential(nn::Linear(nn::LinearOptions(6, 5).bias(false)), nn::BatchNorm1d(5), nn::ReLU(),
                        nn::Linear(5, 4), nn::ReLU(), nn::Dropout(0.2), nn::Linear(4, 3));
}

std::vector<std::string> names(const nn::Module::NamedTensors& v) {
  std::vector<std::string> out;
  for (const auto& [n, t] : v) out.push_back(n);
  return out;
}

bool same_state(const sorix::StateDict& a, const sorix::StateDict& b) {
  if (a.size() != b.size()) return false;
  for (const auto& [n, t] : a) {
    const Tensor* o = b.find(n);
    if (o == nullptr || !testing::bit_identical(t, *o)) return false;
  }
  return true;
}

sorix::StateDict deep_copy(const sorix::StateDict& s) {
  sorix::StateDict out;
  for (const auto& [n, t] : s) out.insert(n, t.clone());
  return out;
}

struct Net : nn::Module {
  Net()
      : fc1(register_module("fc1", nn::Linear(4, 8))),
        bn(register_module("bn", nn::BatchNorm1d(8))),
        fc2(register_module("fc2", nn::Linear(8, 2))) {
    scale = register_parameter("scale", sorix::full({2}, 0.5));
  }
  Tensor forward(const Tensor& x) override { return fc2->forward(sorix::relu(bn->forward(fc1->forward(x)))) * scale; }
  std::string name() const override { return "Net"; }
  std::shared_ptr<nn::Linear> fc1;
  std::shared_ptr<nn::BatchNorm1d> bn;
  std::shared_ptr<nn::Linear> fc2;
  Tensor scale;
};

}  // namespace

TEST_CASE("Module: named parameters and buffers of a Sequential", "[nn][module]") {
  nn::Sequential model = make_model();
  CHECK(names(model.named_parameters()) ==
        std::vector<std::string>{"0.weight", "1.weight", "1.bias", "3.weight", "3.bias", "6.weight", "6.bias"});
  CHECK(names(model.named_buffers()) ==
        std::vector<std::string>{"1.running_mean", "1.running_var", "1.num_batches_tracked"});
  CHECK(model.parameters().size() == 7);
  for (const Tensor& p : model.parameters()) CHECK(p.requires_grad());
  for (const Tensor& b : model.buffers()) CHECK_FALSE(b.requires_grad());
  CHECK(model.named_parameters(/*recurse=*/false).empty());
  // The handles are the layers' own tensors.
  auto lin = std::dynamic_pointer_cast<nn::Linear>(model[3]);
  REQUIRE(lin);
  CHECK(model.named_parameters()[3].second.is_same(lin->weight));
}

TEST_CASE("Module: train/eval recurse; zero_grad clears every gradient", "[nn][module]") {
  nn::Sequential model = make_model();
  CHECK(model.is_training());
  model.eval();
  for (const auto& c : model.children()) CHECK_FALSE(c->is_training());
  model.train();
  for (const auto& c : model.children()) CHECK(c->is_training());

  Tensor x = sorix::randn({8, 6});
  model(x).sum().backward();
  for (const Tensor& p : model.parameters()) CHECK(p.grad().defined());
  model.zero_grad();
  for (const Tensor& p : model.parameters()) CHECK_FALSE(p.grad().defined());
}

TEST_CASE("Module: state_dict round trip", "[nn][module]") {
  sorix::manual_seed(1);
  nn::Sequential a = make_model();
  a(sorix::randn({8, 6}));  // moves the running statistics off their initial values
  sorix::manual_seed(2);
  nn::Sequential b = make_model();
  CHECK_FALSE(same_state(a.state_dict(), b.state_dict()));
  b.load_state_dict(a.state_dict());
  CHECK(same_state(a.state_dict(), b.state_dict()));
  CHECK(b.state_dict().at("1.num_batches_tracked").item<std::int64_t>() == 1);
  // The layers' members see the loaded values (same storage), and both models compute the same.
  auto la = std::dynamic_pointer_cast<nn::Linear>(a[6]), lb = std::dynamic_pointer_cast<nn::Linear>(b[6]);
  CHECK(testing::bit_identical(la->weight, lb->weight));
  a.eval();
  b.eval();
  Tensor x = sorix::randn({3, 6});
  CHECK(testing::bit_identical(a(x), b(x)));
  // state_dict entries are detached handles: changing the module afterwards shows through them.
  auto sd = b.state_dict();
  CHECK_FALSE(sd.at("0.weight").requires_grad());
}

TEST_CASE("Module: strict load_state_dict names missing, unexpected and mis-shaped entries and changes nothing",
          "[nn][module]") {
  sorix::manual_seed(3);
  nn::Sequential model = make_model();
  const sorix::StateDict original = deep_copy(model.state_dict());

  sorix::StateDict missing;
  for (const auto& [n, t] : original)
    if (n != "3.bias") missing.insert(n, t.clone() + 1);  // an integer: int64 entries stay int64
  std::string m = message_of<std::exception>([&] { model.load_state_dict(missing); });
  CHECK(m.find("Missing") != std::string::npos);
  CHECK(m.find("3.bias") != std::string::npos);
  CHECK(same_state(model.state_dict(), original));

  sorix::StateDict extra = deep_copy(original);
  extra.insert("7.weight", sorix::zeros({2, 2}));
  m = message_of<std::exception>([&] { model.load_state_dict(extra); });
  CHECK(m.find("Unexpected") != std::string::npos);
  CHECK(m.find("7.weight") != std::string::npos);

  sorix::StateDict shaped;
  for (const auto& [n, t] : original) shaped.insert(n, n == "6.weight" ? sorix::zeros({4, 3}) : t.clone() * 2);
  m = message_of<std::exception>([&] { model.load_state_dict(shaped); });
  CHECK(m.find("6.weight") != std::string::npos);
  CHECK(m.find("[4, 3]") != std::string::npos);
  CHECK(m.find("[3, 4]") != std::string::npos);
  CHECK_THROWS_AS(model.load_state_dict(shaped), std::invalid_argument);
  CHECK(same_state(model.state_dict(), original));  // nothing was changed by any failed load

  // Non-strict: missing and unexpected entries are skipped, the rest is loaded.
  model.load_state_dict(missing, /*strict=*/false);
  CHECK(testing::bit_identical(model.state_dict().at("3.bias"), original.at("3.bias")));
  CHECK(testing::bit_identical(model.state_dict().at("3.weight"), original.at("3.weight") + 1.0));
}

TEST_CASE("Module: nested printing as PyTorch", "[nn][module]") {
  nn::Sequential model(nn::Linear(4, 3), nn::BatchNorm1d(3), nn::ReLU(),
                       nn::Sequential(nn::Linear(nn::LinearOptions(3, 2).bias(false)), nn::Sigmoid()),
                       nn::Flatten(), nn::Softmax(1), nn::Embedding(10, 3));
  std::ostringstream os;
  os << model;
  CHECK(os.str() ==
        "Sequential(\n"
        "  (0): Linear(in_features=4, out_features=3, bias=True)\n"
        "  (1): BatchNorm1d(3, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)\n"
        "  (2): ReLU()\n"
        "  (3): Sequential(\n"
        "    (0): Linear(in_features=3, out_features=2, bias=False)\n"
        "    (1): Sigmoid()\n"
        "  )\n"
        "  (4): Flatten(start_dim=1, end_dim=-1)\n"
        "  (5): Softmax(dim=1)\n"
        "  (6): Embedding(10, 3)\n"
        ")");
}

TEST_CASE("Module: copies of a layer share its parameters", "[nn][module]") {
  nn::Linear a(3, 2);
  nn::Linear b = a;
  CHECK(b.weight.is_same(a.weight));
  CHECK(b.named_parameters()[0].second.is_same(a.weight));
  {
    sorix::NoGradGuard g;
    b.weight.fill_(0.5);
  }
  CHECK(a.weight.sum().item<double>() == 3.0);
}

TEST_CASE("Module: a user subclass with its own forward", "[nn][module]") {
  sorix::manual_seed(4);
  Net net;
  CHECK(names(net.named_parameters()) ==
        std::vector<std::string>{"scale", "fc1.weight", "fc1.bias", "bn.weight", "bn.bias", "fc2.weight", "fc2.bias"});
  CHECK(names(net.named_buffers()) ==
        std::vector<std::string>{"bn.running_mean", "bn.running_var", "bn.num_batches_tracked"});
  Tensor x = sorix::randn({5, 4});
  Tensor y = net(x);
  CHECK(y.shape() == Shape{5, 2});
  // The same computation by hand through the functional forms.
  Tensor want = nn::functional::linear(
                    sorix::relu(nn::functional::batch_norm(nn::functional::linear(x, net.fc1->weight, net.fc1->bias),
                                                           Tensor(), Tensor(), net.bn->weight, net.bn->bias, true)),
                    net.fc2->weight, net.fc2->bias) *
                net.scale;
  CHECK(testing::bit_identical(y, want));
  y.sum().backward();
  for (const auto& [n, p] : net.named_parameters()) {
    INFO(n);
    CHECK(p.grad().defined());
  }
  net.eval();
  CHECK_FALSE(net.bn->is_training());
  std::ostringstream os;
  os << net;
  CHECK(os.str() ==
        "Net(\n  (fc1): Linear(in_features=4, out_features=8, bias=True)\n"
        "  (bn): BatchNorm1d(8, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)\n"
        "  (fc2): Linear(in_features=8, out_features=2, bias=True)\n)");
  // The base forward throws naming the module.
  nn::Module bare;
  CHECK_THROWS_AS(bare(x), std::logic_error);
}

TEST_CASE("ModuleList holds modules by value or shared_ptr, names them 0, 1, ... and has no forward", "[nn]") {
  auto shared = std::make_shared<nn::Linear>(3, 2);
  nn::ModuleList list(nn::Linear(4, 3), shared);
  list.push_back(nn::ReLU());
  REQUIRE(list.size() == 3);
  CHECK(list[1].get() == shared.get());
  CHECK(list.named_children()[2].first == "2");
  auto names = list.named_parameters();
  REQUIRE(names.size() == 4);
  CHECK(names[0].first == "0.weight");
  CHECK(names[3].first == "1.bias");
  CHECK_THROWS_AS(list[3], std::out_of_range);
  CHECK_THROWS_AS(list.forward(sorix::zeros({1, 4})), std::logic_error);
  std::ostringstream os;
  os << list;
  CHECK(os.str().rfind("ModuleList(", 0) == 0);
  nn::ModuleList copy(list);  // a copy, not a nested list
  CHECK(copy.size() == 3);
}

TEST_CASE("Module::modules and apply: self and every descendant, parents first", "[module]") {
  nn::Sequential inner(nn::Linear(2, 3), nn::ReLU());
  nn::Sequential model(nn::Linear(4, 2), inner, nn::Linear(3, 1));
  const std::vector<nn::Module*> all = model.modules();
  REQUIRE(all.size() == 6);  // model, Linear, inner, its Linear and ReLU, Linear
  CHECK(all[0] == &model);
  CHECK(all[2]->name() == "Sequential");
  CHECK(all[3]->name() == "Linear");
  CHECK(all[4]->name() == "ReLU");
  CHECK(model.modules(false).size() == 5);
  std::vector<std::string> visited;
  int linears = 0;
  model.apply([&](nn::Module& m) {
    visited.push_back(m.name());
    if (m.name() == "Linear") {
      for (Tensor p : m.parameters(false)) {
        sorix::NoGradGuard g;
        p.fill_(0.5);
      }
      ++linears;
    }
  });
  CHECK(visited == std::vector<std::string>{"Sequential", "Linear", "Sequential", "Linear", "ReLU", "Linear"});
  CHECK(linears == 3);
  for (const Tensor& p : model.parameters()) CHECK(p.max().item<float>() == 0.5f);
}

TEST_CASE("ModuleDict: ordered keys, lookup, children named by key", "[module]") {
  nn::ModuleDict dict;
  dict.insert("encoder", nn::Linear(4, 3));
  dict.insert("act", std::make_shared<nn::ReLU>());
  dict.insert("decoder", nn::Linear(3, 2));
  CHECK(dict.size() == 3);
  CHECK(dict.keys() == std::vector<std::string>{"encoder", "act", "decoder"});
  CHECK(dict.contains("act"));
  CHECK_FALSE(dict.contains("missing"));
  CHECK(dict["decoder"]->name() == "Linear");
  CHECK(dict.items()[1].first == "act");
  CHECK(dict.values().size() == 3);
  CHECK_THROWS_WITH(dict["missing"], Catch::Contains("ModuleDict") && Catch::Contains("missing"));
  CHECK_THROWS_WITH(dict.insert("act", nn::ReLU()), Catch::Contains("'act' is already present"));
  CHECK_THROWS_WITH(dict.insert("a.b", nn::ReLU()), Catch::Contains("'a.b'"));
  // As a child, its parameters read "<dict>.<key>.weight".
  struct Net : nn::Module {
    Net() : heads(register_module("heads", nn::ModuleDict({{"a", std::make_shared<nn::Linear>(2, 2)},
                                                           {"b", std::make_shared<nn::Linear>(2, 1)}}))) {}
    std::shared_ptr<nn::ModuleDict> heads;
  };
  Net net;
  CHECK(names(net.named_parameters()) ==
        std::vector<std::string>{"heads.a.weight", "heads.a.bias", "heads.b.weight", "heads.b.bias"});
  CHECK(net.state_dict().contains("heads.b.bias"));
}

TEST_CASE("Functional: a function as a Sequential stage", "[module]") {
  nn::Sequential model(nn::Linear(3, 2), nn::Functional([](Tensor x) { return x * 2.0; }),
                       nn::Functional([](Tensor x) { return sorix::relu(x); }));
  const Tensor x = testing::randn_f64({4, 3}, 1, false).to(sorix::float32);
  nn::Linear first = *std::dynamic_pointer_cast<nn::Linear>(model[0]);
  const Tensor want = sorix::relu(first(x) * 2.0);
  CHECK(testing::bit_identical(model(x), want));
  CHECK(model.parameters().size() == 2);  // Functional adds none
  CHECK(model[1]->name() == "Functional");
  CHECK_THROWS_WITH(nn::Functional(nullptr), Catch::Contains("Functional"));
}

TEST_CASE("Module::to(Dtype): parameters and buffers converted in place, identity kept", "[module]") {
  nn::Sequential model(nn::Linear(3, 4), nn::BatchNorm1d(4), nn::Linear(4, 2));
  const std::vector<Tensor> handles = model.parameters();
  std::vector<Tensor> before;
  for (const Tensor& p : handles) before.push_back(p.detach().clone());
  model.to(sorix::float64);
  const std::vector<Tensor> after = model.parameters();
  REQUIRE(after.size() == handles.size());
  for (std::size_t i = 0; i < handles.size(); ++i) {
    CHECK(after[i].impl() == handles[i].impl());  // the same tensor
    CHECK(handles[i].dtype() == sorix::float64);
    CHECK(handles[i].requires_grad());
    CHECK(testing::bit_identical(handles[i], before[i].to(sorix::float64)));
  }
  CHECK(model.state_dict().at("1.running_var").dtype() == sorix::float64);
  CHECK(model.state_dict().at("1.num_batches_tracked").dtype() == sorix::int64);
  // An optimizer built after the conversion trains the float64 model.
  sorix::optim::SGD opt(model.parameters(), sorix::optim::SGDOptions(0.1));
  const Tensor x = testing::randn_f64({5, 3}, 2, false);
  model(x).sum().backward();
  CHECK(handles[0].grad().dtype() == sorix::float64);
  opt.step();
  CHECK_FALSE(testing::bit_identical(handles[0], before[0].to(sorix::float64)));
  // Back to float32: exact for values that came from float32.
  nn::Linear lin(2, 2);
  const Tensor w = lin.parameters()[0].detach().clone();
  lin.to(sorix::float64);
  lin.to(sorix::float32);
  CHECK(testing::bit_identical(lin.parameters()[0], w));
  CHECK_THROWS_WITH(lin.to(sorix::int64), Catch::Contains("Module::to") && Catch::Contains("int64"));
}
