// PyTorch 1.13 parity for the losses, optimizers and lr schedulers: reference values written by
// scripts/gen_parity_optim.py into tests/data/parity_optim.txt (torch is not needed here).
// Tolerances: float64 1e-10 relative (plus 1e-12 absolute for values near 0), float32 1e-5.
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <string>

#include <sorix/sorix.hpp>

#include "support/reference_table.hpp"

namespace {

using sorix::Tensor;
namespace F = sorix::nn::functional;
using sorix::nn::Reduction;

const std::map<std::string, Tensor>& data() {
  static const std::map<std::string, Tensor> table =
      reference_table::read(std::string(SORIX_TEST_DATA_DIR) + "/parity_optim.txt", "scripts/gen_parity_optim.py");
  return table;
}

Tensor reference(const std::string& key) {
  auto it = data().find(key);
  if (it == data().end()) throw std::runtime_error("parity data has no entry " + key);
  return it->second.clone();
}

// Checks shape, dtype and every element against the reference.
void expect_close(const Tensor& got, const Tensor& want, const std::string& what) {
  INFO(what);
  REQUIRE(got.defined());
  REQUIRE(got.shape() == want.shape());
  REQUIRE(got.dtype() == want.dtype());
  const bool f64 = got.dtype() == sorix::float64;
  const double rtol = f64 ? 1e-10 : 1e-5, atol = f64 ? 1e-12 : 1e-6;
  Tensor a = got.to(sorix::float64), b = want.to(sorix::float64);
  for (std::int64_t i = 0; i < a.numel(); ++i) {
    const double x = a.data_ptr<double>()[i], y = b.data_ptr<double>()[i];
    INFO("element " << i << ": got " << x << ", PyTorch " << y);
    CHECK(std::abs(x - y) <= atol + rtol * std::abs(y));
  }
}

const std::vector<std::pair<std::string, Reduction>> kReductions{
    {"none", Reduction::None}, {"mean", Reduction::Mean}, {"sum", Reduction::Sum}};

// Runs fn on the named inputs for every reduction; compares outputs and the gradients of
// sum(out * gw) w.r.t. the inputs listed in grad_of.
void loss_case(const std::string& name, const std::vector<std::string>& input_names,
               const std::vector<std::string>& grad_of,
               const std::function<Tensor(std::map<std::string, Tensor>&, Reduction)>& fn) {
  for (const auto& [rname, r] : kReductions) {
    std::map<std::string, Tensor> in;
    for (const auto& k : input_names) in[k] = reference(name + "." + k);
    for (const auto& k : grad_of) in[k].requires_grad_(true);
    Tensor out = fn(in, r);
    const std::string prefix = name + "." + rname + ".";
    expect_close(out, reference(prefix + "out"), prefix + "out");
    (out * reference(prefix + "gw")).sum().backward();
    for (const auto& k : grad_of) expect_close(in[k].grad(), reference(prefix + "grad_" + k), prefix + "grad_" + k);
  }
}

}  // namespace

TEST_CASE("parity: losses match PyTorch 1.13", "[parity][loss]") {
  loss_case("mse", {"input", "target"}, {"input", "target"},
            [](auto& a, Reduction r) { return F::mse_loss(a["input"], a["target"], r); });
  loss_case("bce", {"input", "target"}, {"input", "target"}, [](auto& a, Reduction r) {
    return F::binary_cross_entropy_with_logits(a["input"], a["target"], Tensor(), Tensor(), r);
  });
  loss_case("bce_w", {"input", "target", "weight"}, {"input", "target"}, [](auto& a, Reduction r) {
    return F::binary_cross_entropy_with_logits(a["input"], a["target"], a["weight"], Tensor(), r);
  });
  loss_case("bce_pw", {"input", "target", "pos_weight"}, {"input", "target"}, [](auto& a, Reduction r) {
    return F::binary_cross_entropy_with_logits(a["input"], a["target"], Tensor(), a["pos_weight"], r);
  });
  loss_case("bce_w_pw", {"input", "target", "weight", "pos_weight"}, {"input", "target"}, [](auto& a, Reduction r) {
    return F::binary_cross_entropy_with_logits(a["input"], a["target"], a["weight"], a["pos_weight"], r);
  });
  loss_case("ce_idx", {"input", "target"}, {"input"},
            [](auto& a, Reduction r) { return F::cross_entropy(a["input"], a["target"], Tensor(), r); });
  loss_case("ce_idx_w", {"input", "target", "weight"}, {"input"},
            [](auto& a, Reduction r) { return F::cross_entropy(a["input"], a["target"], a["weight"], r); });
  loss_case("ce_prob", {"input", "target"}, {"input", "target"},
            [](auto& a, Reduction r) { return F::cross_entropy(a["input"], a["target"], Tensor(), r); });
  loss_case("ce_prob_w", {"input", "target", "weight"}, {"input", "target"},
            [](auto& a, Reduction r) { return F::cross_entropy(a["input"], a["target"], a["weight"], r); });
  loss_case("ce_idx_f32", {"input", "target", "weight"}, {"input"},
            [](auto& a, Reduction r) { return F::cross_entropy(a["input"], a["target"], a["weight"], r); });
}

TEST_CASE("parity: optimizers match PyTorch 1.13 over 5 steps", "[parity][optim]") {
  namespace O = sorix::optim;
  using Make = std::function<std::unique_ptr<O::Optimizer>(std::vector<Tensor>)>;
  // The same table as scripts/gen_parity_optim.py.
  const std::vector<std::pair<std::string, Make>> configs{
      {"sgd_plain", [](auto p) { return std::make_unique<O::SGD>(p, O::SGDOptions(0.1)); }},
      {"sgd_momentum", [](auto p) { return std::make_unique<O::SGD>(p, O::SGDOptions(0.1).momentum(0.9).dampening(0.1)); }},
      {"sgd_nesterov", [](auto p) { return std::make_unique<O::SGD>(p, O::SGDOptions(0.1).momentum(0.9).nesterov(true)); }},
      {"sgd_wd", [](auto p) { return std::make_unique<O::SGD>(p, O::SGDOptions(0.1).momentum(0.5).weight_decay(0.01)); }},
      {"adam", [](auto p) { return std::make_unique<O::Adam>(p, O::AdamOptions(0.01)); }},
      {"adam_wd", [](auto p) {
         return std::make_unique<O::Adam>(p, O::AdamOptions(0.01).betas({0.8, 0.99}).eps(1e-6).weight_decay(0.1));
       }},
      {"adam_amsgrad", [](auto p) { return std::make_unique<O::Adam>(p, O::AdamOptions(0.01).amsgrad(true)); }},
      {"adamw", [](auto p) { return std::make_unique<O::AdamW>(p, O::AdamWOptions(0.01).weight_decay(0.1)); }},
      {"adamw_amsgrad", [](auto p) { return std::make_unique<O::AdamW>(p, O::AdamWOptions(0.01).amsgrad(true)); }},
      {"rmsprop", [](auto p) { return std::make_unique<O::RMSprop>(p, O::RMSpropOptions(0.01)); }},
      {"rmsprop_momentum", [](auto p) {
         return std::make_unique<O::RMSprop>(p, O::RMSpropOptions(0.01).momentum(0.9).weight_decay(0.01));
       }},
      {"rmsprop_centered", [](auto p) { return std::make_unique<O::RMSprop>(p, O::RMSpropOptions(0.01).alpha(0.9).centered(true)); }},
      {"rmsprop_centered_momentum", [](auto p) {
         return std::make_unique<O::RMSprop>(p, O::RMSpropOptions(0.01).momentum(0.5).centered(true));
       }},
      {"adam_f32", [](auto p) {
         return std::make_unique<O::Adam>(p, O::AdamOptions(0.01).amsgrad(true).weight_decay(0.01));
       }},
      {"rmsprop_f32", [](auto p) {
         return std::make_unique<O::RMSprop>(p, O::RMSpropOptions(0.01).momentum(0.9).centered(true));
       }},
      {"sgd_f32", [](auto p) {
         return std::make_unique<O::SGD>(p, O::SGDOptions(0.1).momentum(0.9).nesterov(true).weight_decay(0.01));
       }},
      {"adagrad", [](auto p) { return std::make_unique<O::Adagrad>(p, O::AdagradOptions(0.1)); }},
      {"adagrad_decay", [](auto p) {
         return std::make_unique<O::Adagrad>(
             p, O::AdagradOptions(0.1).lr_decay(0.05).weight_decay(0.1).initial_accumulator_value(0.5).eps(1e-6));
       }},
      {"adagrad_f32", [](auto p) {
         return std::make_unique<O::Adagrad>(
             p, O::AdagradOptions(0.05).lr_decay(0.01).weight_decay(0.01).initial_accumulator_value(0.1));
       }},
      // Parameter groups: p0 with the defaults, p1 with its own options.
      {"sgd_groups", [](auto p) {
         return std::make_unique<O::SGD>(
             std::vector<O::OptimizerParamGroup>{
                 O::OptimizerParamGroup({p[0]}),
                 O::OptimizerParamGroup({p[1]}, std::make_unique<O::SGDOptions>(O::SGDOptions(0.3).momentum(0.5)))},
             O::SGDOptions(0.1).momentum(0.9));
       }},
      {"adam_groups", [](auto p) {
         return std::make_unique<O::Adam>(
             std::vector<O::OptimizerParamGroup>{
                 O::OptimizerParamGroup({p[0]}),
                 O::OptimizerParamGroup({p[1]}, std::make_unique<O::AdamOptions>(
                                                    O::AdamOptions(0.05).weight_decay(0.1).amsgrad(true)))},
             O::AdamOptions(0.01));
       }},
      {"adagrad_groups", [](auto p) {
         return std::make_unique<O::Adagrad>(
             std::vector<O::OptimizerParamGroup>{
                 O::OptimizerParamGroup({p[0]}, std::make_unique<O::AdagradOptions>(O::AdagradOptions(0.05).lr_decay(0.1))),
                 O::OptimizerParamGroup({p[1]}, std::make_unique<O::AdagradOptions>(0.2))},
             O::AdagradOptions(0.05));
       }},
  };
  for (const auto& [name, make] : configs) {
    SECTION(name) {
      const std::string prefix = "opt." + name + ".";
      std::vector<Tensor> params{reference(prefix + "p0.init").requires_grad_(true), reference(prefix + "p1.init").requires_grad_(true)};
      auto opt = make(params);
      for (int s = 0; s < 5; ++s) {
        for (std::size_t k = 0; k < params.size(); ++k) {
          params[k].set_grad(reference(prefix + "p" + std::to_string(k) + ".grad" + std::to_string(s)));
        }
        opt->step();
        for (std::size_t k = 0; k < params.size(); ++k) {
          const std::string key = prefix + "p" + std::to_string(k) + ".step" + std::to_string(s);
          expect_close(params[k], reference(key), key);
        }
      }
    }
  }
}

TEST_CASE("parity: lr schedulers match PyTorch 1.13", "[parity][sched]") {
  namespace O = sorix::optim;
  auto run = [](const std::string& name, auto make, auto stepper) {
    Tensor p = sorix::zeros({1}).requires_grad_(true);
    O::SGD opt({p}, O::SGDOptions(0.1));
    auto sched = make(opt);
    Tensor want = reference("sched." + name + ".lr");
    for (std::int64_t s = 0; s < want.numel(); ++s) {
      stepper(sched, s);
      const double w = want.data_ptr<double>()[s];
      INFO(name << " step " << s << ": got " << opt.lr() << ", PyTorch " << w);
      CHECK(std::abs(opt.lr() - w) <= 1e-15 * std::abs(w));
      CHECK(sched.get_last_lr() == opt.lr());
    }
  };
  auto plain = [](auto& s, std::int64_t) { s.step(); };
  run("step", [](O::Optimizer& o) { return O::StepLR(o, 3, 0.5); }, plain);
  run("exp", [](O::Optimizer& o) { return O::ExponentialLR(o, 0.9); }, plain);
  run("cosine", [](O::Optimizer& o) { return O::CosineAnnealingLR(o, 5, 0.01); }, plain);
  const Tensor m_min = reference("sched.plateau_min.metrics"), m_max = reference("sched.plateau_max.metrics");
  run("plateau_min",
      [](O::Optimizer& o) { return O::ReduceLROnPlateau(o, O::PlateauMode::Min, 0.5, 2, 0.01, O::ThresholdMode::Rel, 1, 0.02); },
      [&](auto& s, std::int64_t i) { s.step(m_min.data_ptr<double>()[i]); });
  run("plateau_max",
      [](O::Optimizer& o) { return O::ReduceLROnPlateau(o, O::PlateauMode::Max, 0.1, 1, 0.05, O::ThresholdMode::Abs); },
      [&](auto& s, std::int64_t i) { s.step(m_max.data_ptr<double>()[i]); });
}

// The newer schedulers: the lr after construction and after every step equal PyTorch's bits.
TEST_CASE("parity: LambdaLR, MultiStepLR, LinearLR, OneCycleLR, SequentialLR equal PyTorch 1.13 exactly",
          "[parity][sched]") {
  namespace O = sorix::optim;
  auto run = [](const std::string& name, auto make) {
    Tensor p = sorix::zeros({1}).requires_grad_(true);
    O::SGD opt({p}, O::SGDOptions(0.1));
    auto sched = make(opt);
    INFO(name << " after construction: got " << opt.lr());
    CHECK(opt.lr() == reference("sched." + name + ".lr0").data_ptr<double>()[0]);
    Tensor want = reference("sched." + name + ".lr");
    for (std::int64_t s = 0; s < want.numel(); ++s) {
      sched.step();
      const double w = want.data_ptr<double>()[s];
      INFO(name << " step " << s << ": got " << opt.lr() << ", PyTorch " << w);
      CHECK(opt.lr() == w);
      CHECK(sched.get_last_lr() == opt.lr());
    }
  };
  using O::Optimizer;
  run("lambda", [](Optimizer& o) { return O::LambdaLR(o, [](std::int64_t e) { return 1.0 / (1.0 + 0.5 * e); }); });
  run("multistep", [](Optimizer& o) { return O::MultiStepLR(o, {2, 5, 9}, 0.3); });
  run("linear_up", [](Optimizer& o) { return O::LinearLR(o, 0.25, 1.0, 4); });
  run("linear_down", [](Optimizer& o) { return O::LinearLR(o, 1.0, 0.1, 5); });
  run("onecycle_cos", [](Optimizer& o) { return O::OneCycleLR(o, O::OneCycleLROptions(1.0, 20)); });
  run("onecycle_linear", [](Optimizer& o) {
    return O::OneCycleLR(o, O::OneCycleLROptions(0.5, 16)
                                .pct_start(0.25)
                                .anneal_strategy(O::AnnealStrategy::Linear)
                                .div_factor(10.0)
                                .final_div_factor(100.0));
  });
  run("onecycle_three", [](Optimizer& o) {
    return O::OneCycleLR(o, O::OneCycleLROptions(2.0, 20).pct_start(0.3).three_phase(true));
  });
  run("sequential", [](Optimizer& o) {
    auto warm = std::make_shared<O::LinearLR>(o, 0.1, 1.0, 3);
    auto decay = std::make_shared<O::ExponentialLR>(o, 0.9);
    return O::SequentialLR(o, {warm, decay}, {3});
  });
  run("sequential3", [](Optimizer& o) {
    auto warm = std::make_shared<O::LinearLR>(o, 0.2, 1.0, 4);
    auto cosine = std::make_shared<O::CosineAnnealingLR>(o, 6, 0.001);
    auto steps = std::make_shared<O::StepLR>(o, 2, 0.5);
    return O::SequentialLR(o, {warm, cosine, steps}, {4, 10});
  });
}
