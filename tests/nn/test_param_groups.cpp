// Optimizer parameter groups: per-group options and lrs, defaults, add_param_group, the state
// dict of several groups (and the single-group format kept), schedulers on every group, and the
// errors (empty groups, a parameter in two groups, options of another optimizer, bad values).
#include <catch2/catch.hpp>

#include <cmath>
#include <memory>
#include <vector>

#include <sorix/sorix.hpp>

#include "support/gradcheck.hpp"

namespace {

using sorix::Tensor;
namespace O = sorix::optim;
using sorix::testing::bit_identical;
using sorix::testing::randn_f64;

void set_grads(const std::vector<Tensor>& params, int s) {
  for (std::size_t k = 0; k < params.size(); ++k) {
    Tensor p = params[k];
    p.set_grad(randn_f64(p.shape(), 40 + 3 * s + static_cast<int>(k), false));
  }
}

std::vector<Tensor> fresh() { return {randn_f64({3, 2}, 1), randn_f64({5}, 2), randn_f64({4}, 3)}; }

}  // namespace

TEST_CASE("parameter groups: each group steps with its own options, as separate optimizers would",
          "[optim][groups]") {
  std::vector<Tensor> a = fresh(), b = fresh();
  O::Adam grouped({O::OptimizerParamGroup({a[0], a[1]}),
                   O::OptimizerParamGroup({a[2]}, std::make_unique<O::AdamOptions>(O::AdamOptions(0.05).weight_decay(0.1)))},
                  O::AdamOptions(0.01).amsgrad(true));
  O::Adam first({b[0], b[1]}, O::AdamOptions(0.01).amsgrad(true));
  O::Adam second({b[2]}, O::AdamOptions(0.05).weight_decay(0.1));
  REQUIRE(grouped.param_groups().size() == 2);
  // A group without options copies the defaults.
  CHECK(static_cast<const O::AdamOptions&>(grouped.param_groups()[0].options()).amsgrad());
  CHECK(grouped.param_groups()[1].options().get_lr() == 0.05);
  CHECK(grouped.parameters().size() == 3);
  for (int s = 0; s < 4; ++s) {
    set_grads(a, s);
    set_grads(b, s);
    grouped.step();
    first.step();
    second.step();
  }
  for (std::size_t k = 0; k < a.size(); ++k) CHECK(bit_identical(a[k], b[k]));
}

TEST_CASE("parameter groups: lr per group, set_lr on all, add_param_group, changing options in place",
          "[optim][groups]") {
  Tensor x = sorix::zeros({2}, sorix::float64).requires_grad_(true);
  Tensor y = sorix::zeros({2}, sorix::float64).requires_grad_(true);
  Tensor z = sorix::zeros({1}, sorix::float64).requires_grad_(true);
  O::SGD opt({O::OptimizerParamGroup({x}), O::OptimizerParamGroup({y}, std::make_unique<O::SGDOptions>(0.5))},
             O::SGDOptions(0.1));
  auto ones = [](const std::vector<Tensor>& ps) {
    for (Tensor p : ps) p.set_grad(sorix::ones_like(p));
  };
  ones({x, y});
  opt.step();
  CHECK(x.data_ptr<double>()[0] == -0.1);
  CHECK(y.data_ptr<double>()[0] == -0.5);
  CHECK(opt.group_lr(1) == 0.5);
  // Options are changed through param_groups(), as libtorch's.
  static_cast<O::SGDOptions&>(opt.param_groups()[0].options()).lr(1.0);
  opt.add_param_group(O::OptimizerParamGroup({z}, std::make_unique<O::SGDOptions>(2.0)));
  CHECK(opt.param_groups().size() == 3);
  ones({x, y, z});
  opt.step();
  CHECK(x.data_ptr<double>()[0] == -1.1);
  CHECK(z.data_ptr<double>()[0] == -2.0);
  // A group added without options takes the defaults.
  Tensor w = sorix::zeros({1}, sorix::float64).requires_grad_(true);
  opt.add_param_group(O::OptimizerParamGroup({w}));
  CHECK(opt.group_lr(3) == 0.1);
  opt.set_lr(0.25);
  for (std::size_t k = 0; k < 4; ++k) CHECK(opt.group_lr(k) == 0.25);
  CHECK(opt.options().lr() == 0.1);  // the defaults are not a group
}

TEST_CASE("parameter groups: bad groups and options throw, naming the optimizer and the value", "[optim][groups]") {
  Tensor x = randn_f64({2}, 1), y = randn_f64({3}, 2);
  CHECK_THROWS_WITH(O::SGD(std::vector<O::OptimizerParamGroup>{O::OptimizerParamGroup({x}), O::OptimizerParamGroup(std::vector<Tensor>{})},
                           O::SGDOptions(0.1)),
                    Catch::Contains("group 1 is empty"));
  CHECK_THROWS_WITH(O::SGD({O::OptimizerParamGroup({x, y}), O::OptimizerParamGroup({x})}, O::SGDOptions(0.1)),
                    Catch::Contains("more than one parameter group"));
  CHECK_THROWS_AS(O::SGD(std::vector<Tensor>{x, x}, O::SGDOptions(0.1)), std::invalid_argument);
  CHECK_THROWS_AS(O::SGD(std::vector<O::OptimizerParamGroup>{}, O::SGDOptions(0.1)), std::invalid_argument);
  CHECK_THROWS_WITH(O::SGD({O::OptimizerParamGroup({x}, std::make_unique<O::SGDOptions>(-3.0))}, O::SGDOptions(0.1)),
                    Catch::Contains("SGD") && Catch::Contains("-3"));
  CHECK_THROWS_WITH(O::SGD({O::OptimizerParamGroup({x}, std::make_unique<O::AdamOptions>(0.1))}, O::SGDOptions(0.1)),
                    Catch::Contains("not SGDOptions"));
  O::Adagrad opt({x}, O::AdagradOptions(0.1));
  CHECK_THROWS_WITH(opt.add_param_group(O::OptimizerParamGroup({x})), Catch::Contains("Adagrad::add_param_group"));
  CHECK_THROWS_WITH(opt.add_param_group(O::OptimizerParamGroup({y}, std::make_unique<O::AdagradOptions>(
                                                                        O::AdagradOptions(0.1).lr_decay(-1)))),
                    Catch::Contains("lr_decay") && Catch::Contains("-1"));
  CHECK(opt.param_groups().size() == 1);  // nothing added
  CHECK_THROWS_WITH(opt.set_group_lr(0, std::nan("")), Catch::Contains("Adagrad::set_group_lr"));
}

TEST_CASE("parameter groups: state_dict keeps every group; one group keeps the old format", "[optim][groups]") {
  auto make = [](std::vector<Tensor>& p) {
    return O::RMSprop({O::OptimizerParamGroup({p[0]}),
                       O::OptimizerParamGroup({p[1], p[2]}, std::make_unique<O::RMSpropOptions>(
                                                                O::RMSpropOptions(0.03).momentum(0.9).centered(true)))},
                      O::RMSpropOptions(0.01));
  };
  std::vector<Tensor> a = fresh(), b = fresh();
  auto oa = make(a);
  auto ob = make(b);
  for (int s = 0; s < 5; ++s) {
    set_grads(a, s);
    oa.step();
  }
  for (int s = 0; s < 2; ++s) {
    set_grads(b, s);
    ob.step();
  }
  ob.set_group_lr(1, 0.02);
  const sorix::StateDict sd = ob.state_dict();
  CHECK(sd.at("num_groups").item<std::int64_t>() == 2);
  CHECK(sd.at("groups.1.num_params").item<std::int64_t>() == 2);
  CHECK(sd.at("groups.1.lr").item<double>() == 0.02);
  CHECK(sd.at("groups.0.centered").item<double>() == 0);
  CHECK(sd.contains("state.2.momentum_buffer"));
  CHECK_FALSE(sd.contains("state.0.momentum_buffer"));
  CHECK_FALSE(sd.contains("group.lr"));
  std::vector<Tensor> c{b[0].detach().clone().requires_grad_(true), b[1].detach().clone().requires_grad_(true),
                        b[2].detach().clone().requires_grad_(true)};
  auto oc = make(c);
  oc.load_state_dict(sd);
  CHECK(oc.group_lr(1) == 0.02);
  oc.set_group_lr(1, 0.03);
  for (int s = 2; s < 5; ++s) {
    set_grads(c, s);
    oc.step();
  }
  for (std::size_t k = 0; k < a.size(); ++k) CHECK(bit_identical(a[k], c[k]));
  // A single-group optimizer writes (and reads) the format from before groups.
  std::vector<Tensor> d = fresh();
  O::RMSprop single(d, O::RMSpropOptions(0.01));
  const sorix::StateDict ssd = single.state_dict();
  CHECK(ssd.contains("group.lr"));
  CHECK_FALSE(ssd.contains("num_groups"));
  CHECK_THROWS_WITH(single.load_state_dict(sd), Catch::Contains("num_groups"));
  CHECK_THROWS_WITH(oc.load_state_dict(ssd), Catch::Contains("num_groups") || Catch::Contains("num_params"));
  // Group options that decide the buffers must match.
  std::vector<Tensor> e = fresh();
  O::RMSprop other({O::OptimizerParamGroup({e[0]}), O::OptimizerParamGroup({e[1], e[2]})}, O::RMSpropOptions(0.01));
  CHECK_THROWS_WITH(other.load_state_dict(sd), Catch::Contains("groups.1.momentum"));
}

TEST_CASE("schedulers act on every parameter group, each from its own base lr", "[sched][groups]") {
  Tensor x = randn_f64({2}, 1), y = randn_f64({3}, 2);
  O::SGD opt({O::OptimizerParamGroup({x}), O::OptimizerParamGroup({y}, std::make_unique<O::SGDOptions>(1.0))},
             O::SGDOptions(0.1));
  auto warm = std::make_shared<O::LinearLR>(opt, 0.5, 1.0, 2);
  auto decay = std::make_shared<O::StepLR>(opt, 1, 0.5);
  O::SequentialLR sched(opt, {warm, decay}, {2});
  CHECK(sched.get_last_lrs() == std::vector<double>{0.05, 0.5});
  for (int e = 0; e < 3; ++e) sched.step();
  CHECK(opt.group_lr(0) == 0.05);
  CHECK(opt.group_lr(1) == 0.5);
  CHECK(decay->base_lrs() == std::vector<double>{0.1, 1.0});
  // Each group follows the single-group sequence of its own lr.
  Tensor z = randn_f64({2}, 3);
  O::SGD single({z}, O::SGDOptions(1.0));
  O::OneCycleLR one(single, O::OneCycleLROptions(2.0, 10));
  Tensor u = randn_f64({2}, 4), v = randn_f64({2}, 5);
  O::SGD two({O::OptimizerParamGroup({u}), O::OptimizerParamGroup({v}, std::make_unique<O::SGDOptions>(7.0))},
             O::SGDOptions(3.0));
  O::OneCycleLR both(two, O::OneCycleLROptions(2.0, 10));
  for (int e = 0; e < 10; ++e) {
    one.step();
    both.step();
    CHECK(two.group_lr(0) == single.lr());
    CHECK(two.group_lr(1) == single.lr());
  }
  O::ReduceLROnPlateau plateau(opt, O::PlateauMode::Min, 0.5, 0);
  plateau.step(1.0);
  plateau.step(2.0);
  CHECK(plateau.get_last_lrs() == std::vector<double>{0.025, 0.25});
  // A group added after the scheduler was built is refused (PyTorch would skip it silently).
  opt.add_param_group(O::OptimizerParamGroup({randn_f64({1}, 6)}));
  CHECK_THROWS_WITH(decay->step(), Catch::Contains("3 parameter groups but had 2"));
  CHECK_THROWS_AS(plateau.step(1.0), std::invalid_argument);
}
