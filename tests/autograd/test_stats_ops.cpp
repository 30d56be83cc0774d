// Issue 12's ops with gradients: max/min with indices, var, std, norm, logsumexp, cumsum,
// cumprod, sort, argsort, topk, repeat, diag, bmm, einsum, logspace. Values and gradients against
// PyTorch 1.13 (tests/data/parity_ops_reduce_*.txt, scripts/gen_parity_ops.py), float64
// gradchecks (second order where the gradient is composed), bit identity at 1, 2, 3 threads and
// on every capability, edge cases and errors.
#include <sorix/sorix.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "tests/support/capabilities.hpp"
#include "tests/support/errors.hpp"
#include "tests/support/gradcheck.hpp"
#include "tests/support/parity.hpp"
#include "tests/support/values.hpp"

using namespace sorix;
using testing::as_doubles;
using testing::bit_identical;
using testing::contains;
using testing::gradcheck;
using testing::message_of;
using testing::positive_f64;
using testing::randn_f64;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
const double kNaN = std::numeric_limits<double>::quiet_NaN();

using V = std::vector<Tensor>;
// An op of the parity file: inputs (by name) to (y, indices or undefined).
using OpFn = std::function<std::pair<Tensor, Tensor>(const std::map<std::string, Tensor>&)>;

std::pair<Tensor, Tensor> pair_of(const std::tuple<Tensor, Tensor>& t) { return {std::get<0>(t), std::get<1>(t)}; }
OpFn unary(std::function<Tensor(const Tensor&)> f) {
  return [f](const std::map<std::string, Tensor>& in) { return std::make_pair(f(in.at("x")), Tensor()); };
}
OpFn with_indices(std::function<std::tuple<Tensor, Tensor>(const Tensor&)> f) {
  return [f](const std::map<std::string, Tensor>& in) { return pair_of(f(in.at("x"))); };
}
OpFn einsum_op(const std::string& eq) {
  return [eq](const std::map<std::string, Tensor>& in) {
    V ops{in.at("a")};
    if (in.count("b")) ops.push_back(in.at("b"));
    return std::make_pair(einsum(eq, ops), Tensor());
  };
}

const std::vector<std::pair<std::string, OpFn>>& parity_ops() {
  static const std::vector<std::pair<std::string, OpFn>> ops = {
      {"max_dim", with_indices([](const Tensor& x) { return max(x, 1); })},
      {"min_dim_keep", with_indices([](const Tensor& x) { return min(x, -1, true); })},
      {"var_12", unary([](const Tensor& x) { return var(x, {1, 2}); })},
      {"var_all_c0", unary([](const Tensor& x) { return var(x, {}, 0); })},
      {"var_0_c2_keep", unary([](const Tensor& x) { return var(x, {0}, 2, true); })},
      {"std_1", unary([](const Tensor& x) { return sorix::std(x, {1}); })},
      {"std_all", unary([](const Tensor& x) { return sorix::std(x); })},
      {"std_02_keep_c0", unary([](const Tensor& x) { return sorix::std(x, {0, 2}, 0, true); })},
      {"norm_2_1", unary([](const Tensor& x) { return norm(x, 2, {1}); })},
      {"norm_1_02", unary([](const Tensor& x) { return norm(x, 1, {0, 2}); })},
      {"norm_inf_last", unary([](const Tensor& x) { return norm(x, kInf, {-1}); })},
      {"norm_ninf_keep", unary([](const Tensor& x) { return norm(x, -kInf, {1}, true); })},
      {"norm_3_all", unary([](const Tensor& x) { return norm(x, 3); })},
      {"norm_half_1", unary([](const Tensor& x) { return norm(x, 0.5, {1}); })},
      {"norm_0_2", unary([](const Tensor& x) { return norm(x, 0, {2}); })},
      {"logsumexp_1", unary([](const Tensor& x) { return logsumexp(x * 10.0, {1}); })},
      {"logsumexp_02_keep", unary([](const Tensor& x) { return logsumexp(x, {0, 2}, true); })},
      {"cumsum_1", unary([](const Tensor& x) { return cumsum(x, 1); })},
      {"cumsum_last", unary([](const Tensor& x) { return cumsum(x, -1); })},
      {"cumprod_last", unary([](const Tensor& x) { return cumprod(x, -1); })},
      {"cumprod_0", unary([](const Tensor& x) { return cumprod(x, 0); })},
      {"sort_1", with_indices([](const Tensor& x) { return sort(x, 1); })},
      {"sort_desc_last", with_indices([](const Tensor& x) { return sort(x, -1, true); })},
      {"topk_2_1", with_indices([](const Tensor& x) { return topk(x, 2, 1); })},
      {"topk_3_small", with_indices([](const Tensor& x) { return topk(x, 3, -1, false); })},
      {"repeat", unary([](const Tensor& x) { return repeat(x, {2, 1, 3}); })},
      {"repeat_lead", unary([](const Tensor& x) { return repeat(x, {2, 1, 3}); })},
      {"diag_1d", unary([](const Tensor& x) { return diag(x, -1); })},
      {"diag_2d", unary([](const Tensor& x) { return diag(x, 1); })},
      {"diag_2d_low", unary([](const Tensor& x) { return diag(x, -2); })},
      {"bmm", [](const std::map<std::string, Tensor>& in) { return std::make_pair(bmm(in.at("input"), in.at("mat2")), Tensor()); }},
      {"einsum_ij_jk", einsum_op("ij,jk->ik")},
      {"einsum_bij_bjk", einsum_op("bij,bjk->bik")},
      {"einsum_ij_ji", einsum_op("ij->ji")},
      {"einsum_ii_i", einsum_op("ii->i")},
      {"einsum_ij_ij", einsum_op("ij,ij->ij")},
      {"einsum_i_j", einsum_op("i,j->ij")},
      {"einsum_bi_bi", einsum_op("bi,bi->b")},
      {"einsum_ij_sum", einsum_op("ij->")},
      {"einsum_implicit", einsum_op("ij,jk")},
      {"einsum_outer_sum", einsum_op("ij,kj->i")},
      {"einsum_bij_jk_bk", einsum_op("bij,jk->bk")},
  };
  return ops;
}

}  // namespace

TEST_CASE("issue 12 ops: values, indices and gradients match PyTorch", "[autograd][parity][ops12]") {
  for (Dtype dt : parity::kDtypes) {
    const parity::Case c = parity::load("reduce", dt, "parity_ops_");
    for (const auto& [name, op] : parity_ops()) {
      INFO(name << " " << dtype_name(dt));
      std::map<std::string, Tensor> in;
      for (const std::string arg : {"x", "a", "b", "input", "mat2"}) {
        if (c.tensors.count(name + "_" + arg)) in[arg] = parity::param(c.at(name + "_" + arg));
      }
      REQUIRE(!in.empty());
      auto [y, idx] = op(in);
      // Scans cancel: compare their float32 rounding against the largest magnitude.
      const double floor = name.rfind("cum", 0) == 0 ? 0.05 : 1e-3;
      parity::check_matches(y, c.at(name + "_y"), "y", floor);
      if (c.tensors.count(name + "_indices")) {
        REQUIRE(idx.defined());
        CHECK(bit_identical(idx, c.at(name + "_indices")));
      }
      y.backward(c.at(name + "_gy"));
      for (const auto& [arg, t] : in) parity::check_matches(t.grad(), c.at(name + "_d" + arg), "d" + arg, floor);
    }
    parity::check_matches(logspace(-2, 3, 7, 10.0, dt), c.at("logspace"), "logspace");
    parity::check_matches(logspace(0.5, -4, 10, 2.0, dt), c.at("logspace_base2"), "logspace base 2");
  }
}

TEST_CASE("issue 12 ops: float64 gradchecks, and second order for the composed gradients", "[autograd][gradcheck][ops12]") {
  struct G {
    std::string name;
    testing::TensorFn f;
    V inputs;
  };
  Tensor with_zeros = randn_f64({3, 5}, 4, false);
  with_zeros.data_ptr<double>()[2] = 0.0;
  with_zeros.data_ptr<double>()[7] = 0.0;
  with_zeros.data_ptr<double>()[9] = 0.0;  // two zeros in row 1
  with_zeros.requires_grad_(true);
  const std::vector<G> cases = {
      {"max_with_indices", [](const V& in) { return std::get<0>(max(in[0], 1)); }, {randn_f64({3, 4}, 1)}},
      {"min_with_indices", [](const V& in) { return std::get<0>(min(in[0], 0, true)); }, {randn_f64({3, 4}, 2)}},
      {"var", [](const V& in) { return var(in[0], {1}); }, {randn_f64({3, 4}, 3)}},
      {"var c0 all", [](const V& in) { return var(in[0], {}, 0); }, {randn_f64({3, 4}, 3)}},
      {"std", [](const V& in) { return sorix::std(in[0], {0, 2}, 1, true); }, {randn_f64({2, 3, 4}, 5)}},
      {"norm 2", [](const V& in) { return norm(in[0], 2, {1}); }, {randn_f64({3, 4}, 6)}},
      {"norm 1", [](const V& in) { return norm(in[0], 1); }, {randn_f64({3, 4}, 7)}},
      {"norm inf", [](const V& in) { return norm(in[0], kInf, {0}); }, {randn_f64({3, 4}, 8)}},
      {"norm 3", [](const V& in) { return norm(in[0], 3, {1}, true); }, {randn_f64({3, 4}, 9)}},
      {"norm 0.7", [](const V& in) { return norm(in[0], 0.7, {1}); }, {positive_f64({3, 4}, 10)}},
      {"logsumexp", [](const V& in) { return logsumexp(in[0], {0, 2}); }, {randn_f64({2, 3, 4}, 11)}},
      {"cumsum", [](const V& in) { return cumsum(in[0], 1); }, {randn_f64({2, 3, 4}, 12)}},
      {"cumprod", [](const V& in) { return cumprod(in[0], 0); }, {randn_f64({4, 3}, 13)}},
      {"cumprod zeros", [](const V& in) { return cumprod(in[0], 1); }, {with_zeros}},
      {"prod", [](const V& in) { return prod(in[0], 0, true); }, {randn_f64({4, 3}, 30)}},
      {"prod all", [](const V& in) { return prod(in[0]); }, {randn_f64({2, 3}, 31)}},
      {"prod zeros", [](const V& in) { return prod(in[0], 1); }, {with_zeros}},
      {"sort", [](const V& in) { return std::get<0>(sort(in[0], 0, true)); }, {randn_f64({4, 3}, 14)}},
      {"topk", [](const V& in) { return std::get<0>(topk(in[0], 2, 1)); }, {randn_f64({3, 5}, 15)}},
      {"repeat", [](const V& in) { return repeat(in[0], {2, 3, 1}); }, {randn_f64({2, 3}, 16)}},
      {"diag 1d", [](const V& in) { return diag(in[0], 2); }, {randn_f64({3}, 17)}},
      {"diag 2d", [](const V& in) { return diag(in[0], -1); }, {randn_f64({4, 3}, 18)}},
      {"bmm", [](const V& in) { return bmm(in[0], in[1]); }, {randn_f64({2, 3, 4}, 19), randn_f64({2, 4, 2}, 20)}},
      {"einsum bij,jk->bk", [](const V& in) { return einsum("bij,jk->bk", in); }, {randn_f64({2, 3, 4}, 21), randn_f64({4, 2}, 22)}},
      {"einsum ii->i", [](const V& in) { return einsum("ii->i", in); }, {randn_f64({3, 3}, 23)}},
      // Second order: gradients of the composed backward formulas.
      {"std'", [](const V& in) { return autograd::grad({sorix::std(in[0], {1}).pow(3.0).sum()}, {in[0]}, {}, true, true)[0]; },
       {randn_f64({3, 4}, 24)}},
      {"norm 2'", [](const V& in) { return autograd::grad({norm(in[0], 2, {1}).pow(3.0).sum()}, {in[0]}, {}, true, true)[0]; },
       {randn_f64({3, 4}, 25)}},
      {"norm 3'", [](const V& in) { return autograd::grad({norm(in[0], 3, {0}).pow(2.0).sum()}, {in[0]}, {}, true, true)[0]; },
       {randn_f64({3, 4}, 26)}},
      {"cumsum'", [](const V& in) { return autograd::grad({cumsum(in[0], 0).pow(3.0).sum()}, {in[0]}, {}, true, true)[0]; },
       {randn_f64({4, 2}, 27)}},
      {"cumprod'", [](const V& in) { return autograd::grad({cumprod(in[0], 1).sum()}, {in[0]}, {}, true, true)[0]; },
       {randn_f64({2, 4}, 28)}},
      {"cumprod zeros'", [](const V& in) { return autograd::grad({cumprod(in[0], 1).pow(2.0).sum()}, {in[0]}, {}, true, true)[0]; },
       {with_zeros}},
      {"logsumexp'", [](const V& in) { return autograd::grad({logsumexp(in[0], {1}).pow(2.0).sum()}, {in[0]}, {}, true, true)[0]; },
       {randn_f64({3, 4}, 29)}},
  };
  for (const G& g : cases) {
    INFO(g.name);
    auto r = gradcheck(g.f, g.inputs);
    INFO(r.message);
    CHECK(r.ok);
  }
}

TEST_CASE("issue 12 ops are bit-identical at 1, 2, 3 threads and on every capability", "[autograd][determinism][ops12]") {
  // Sizes spanning several chunks and line blocks, odd so no dim is a multiple of a SIMD width.
  auto run = [] {
    manual_seed(17);
    Tensor x = randn({37, 301, 13}).requires_grad_(true);
    Tensor p = (rand({37, 301, 13}) + 0.5).requires_grad_(true);
    std::vector<Tensor> outs{var(x, {1}),
                             sorix::std(x, {0, 2}),
                             norm(x, 2, {1}),
                             norm(x, 3),
                             logsumexp(x, {1}),
                             cumsum(x, 1),
                             cumprod(p, 1),
                             prod(p, 2),
                             std::get<0>(sort(x, 1)),
                             std::get<1>(sort(x, 1, true)),
                             std::get<0>(topk(x, 5, 1)),
                             einsum("bij,bkj->bik", {x, x}),
                             bmm(x.slice(1, 0, 13), x.transpose(1, 2)),
                             repeat(x.slice(1, 0, 5), {2, 1, 3})};
    Tensor total = zeros({});
    for (const Tensor& o : outs) {
      if (o.dtype() == Dtype::Float32) total = total + o.sum();
    }
    total.backward();
    outs.push_back(x.grad());
    outs.push_back(p.grad());
    return outs;
  };
  auto check_all = [](const std::vector<std::vector<Tensor>>& runs) {
    for (std::size_t r = 1; r < runs.size(); ++r) {
      for (std::size_t k = 0; k < runs[0].size(); ++k) {
        INFO("output " << k << " run " << r);
        CHECK(bit_identical(runs[0][k], runs[r][k]));
      }
    }
  };
  check_all(testing::at_thread_counts({1, 2, 3}, run));
  std::vector<std::vector<Tensor>> caps;
  for (auto& [name, r] : testing::at_capabilities(run)) caps.push_back(r);
  check_all(caps);
}

TEST_CASE("max/min with indices: first occurrence on ties, NaN wins, keepdim, gradient to the picked element", "[autograd][ops12]") {
  Tensor x = tensor({{1.0, 3.0, 3.0, -1.0}, {2.0, 2.0, 0.0, 2.0}}, true);
  auto [v, i] = max(x, 1);
  CHECK(as_doubles(v) == std::vector<double>{3, 2});
  CHECK(as_doubles(i) == std::vector<double>{1, 0});
  CHECK(i.dtype() == Dtype::Int64);
  auto [mv, mi] = min(x, 0, true);
  CHECK(mv.shape() == Shape{1, 4});
  CHECK(as_doubles(mi) == std::vector<double>{0, 1, 1, 0});
  v.sum().backward();
  CHECK(as_doubles(x.grad()) == std::vector<double>{0, 1, 0, 0, 1, 0, 0, 0});
  auto [nv, ni] = max(tensor({1.0, kNaN, 5.0, kNaN}), 0);
  CHECK(std::isnan(nv.item<double>()));
  CHECK(ni.item<std::int64_t>() == 1);
  // Changing the returned indices in place does not change the gradient.
  Tensor y = tensor({4.0, 9.0, 1.0}, true);
  auto [yv, yi] = max(y, 0);
  yi.fill_(0.0);
  yv.backward();
  CHECK(as_doubles(y.grad()) == std::vector<double>{0, 1, 0});
  CHECK_THROWS_AS(max(zeros({2, 0}), 1), std::invalid_argument);
  CHECK(contains(message_of<std::exception>([] { min(zeros({2, 3}), 2); }), "min"));
}

TEST_CASE("var, std, norm, logsumexp: edge values", "[autograd][ops12]") {
  Tensor one = tensor({3.0});
  CHECK(std::isnan(var(one).item<double>()));  // 0 / 0 with correction 1, as PyTorch
  CHECK(var(one, {}, 0).item<double>() == 0.0);
  CHECK(std::isinf(var(tensor({1.0, 2.0}), {}, 3).item<double>()));
  CHECK(var(tensor({1.0, 2.0, 3.0, 4.0})).item<double>() == Approx(5.0 / 3.0));
  // std of a constant: gradient 0, not NaN (PyTorch's mask).
  Tensor c = full({4}, 2.0, Dtype::Float64).requires_grad_(true);
  sorix::std(c).backward();
  CHECK(as_doubles(c.grad()) == std::vector<double>{0, 0, 0, 0});
  // norm of zeros: gradient 0 for every p.
  for (double p : {2.0, 1.0, 3.0, 0.5, kInf}) {
    INFO("p " << p);
    Tensor z = zeros({3}, Dtype::Float64).requires_grad_(true);
    Tensor n = norm(z, p);
    CHECK(n.item<double>() == 0.0);
    n.backward();
    CHECK(as_doubles(z.grad()) == std::vector<double>{0, 0, 0});
  }
  CHECK(norm(tensor({3.0, -4.0})).item<double>() == 5.0);
  CHECK(norm(tensor({3.0, -4.0, 0.0}), 0).item<double>() == 2.0);
  CHECK(norm(tensor({3.0, -4.0}), -kInf).item<double>() == 3.0);
  // inf-norm ties: the gradient is split among them.
  Tensor t = tensor({-2.0, 2.0, 1.0}, true);
  norm(t, kInf).backward();
  CHECK(as_doubles(t.grad()) == std::vector<double>{-0.5, 0.5, 0.0});
  // logsumexp: stable for large values, exact for infinities.
  CHECK(logsumexp(tensor({1000.0, 1000.0}), {0}).item<double>() == Approx(1000.0 + std::log(2.0)));
  CHECK(logsumexp(tensor({-kInf, -kInf}), {0}).item<double>() == -kInf);
  CHECK(logsumexp(tensor({kInf, 1.0}), {0}).item<double>() == kInf);
  CHECK(logsumexp(zeros({2, 3}), {1}, true).shape() == Shape{2, 1});
  CHECK(contains(message_of([] { norm(tensor({1.0}), -1.0); }), "norm: p must be >= 0, +inf or -inf, got -1"));
  CHECK(contains(message_of([] { var(tensor({1, 2})); }), "var: expected a float32 or float64 tensor, got int64"));
  CHECK(contains(message_of([] { var(tensor({1.0}), {}, -1); }), "correction must be >= 0, got -1"));
  CHECK(contains(message_of<std::exception>([] { logsumexp(zeros({2, 3}), {3}); }), "logsumexp"));
  CHECK(contains(message_of([] { logsumexp(zeros({2, 0}), {1}); }), "cannot reduce the empty dim 1"));
}

TEST_CASE("cumsum, cumprod: exact small cases, int64, zeros, 0-dim, errors", "[autograd][ops12]") {
  CHECK(as_doubles(cumsum(tensor({1, 2, 3, 4}), 0)) == std::vector<double>{1, 3, 6, 10});
  CHECK(cumsum(tensor({1, 2}), 0).dtype() == Dtype::Int64);
  CHECK(as_doubles(cumprod(tensor({{1.0, 2.0, 3.0}, {2.0, 0.0, 5.0}}), 1)) == std::vector<double>{1, 2, 6, 2, 0, 0});
  CHECK(as_doubles(cumsum(tensor({{1.0, 2.0}, {3.0, 4.0}}), 0)) == std::vector<double>{1, 2, 4, 6});
  // Gradient with zeros, by hand: y = [a, ab, abc] with b = 0.
  Tensor x = tensor({2.0, 0.0, 3.0}, true);
  cumprod(x, 0).sum().backward();
  // dy/da = 1 + b + bc = 1; dy/db = a + ac = 8; dy/dc = ab = 0.
  CHECK(as_doubles(x.grad()) == std::vector<double>{1, 8, 0});
  CHECK(cumsum(tensor(std::vector<double>{5.0}, {}), 0).item<double>() == 5.0);
  CHECK(cumsum(zeros({0, 3}), 1).shape() == Shape{0, 3});
  CHECK_THROWS_AS(cumsum(zeros({2}), 1), std::out_of_range);
  CHECK(contains(message_of<std::exception>([] { cumprod(zeros({2}), -2); }), "cumprod"));
}

TEST_CASE("prod: all, along a dim, keepdim, empty, 0-dim, int64, gradient with zeros (PyTorch 1.13's values)",
          "[autograd][ops12]") {
  const Tensor i = tensor({{1, 2, 3}, {4, 5, 6}});
  CHECK(prod(i).dtype() == Dtype::Int64);
  CHECK(prod(i).item<std::int64_t>() == 720);
  CHECK(as_doubles(prod(i, 0)) == std::vector<double>{4, 10, 18});
  CHECK(prod(i, 1, true).shape() == Shape{2, 1});
  CHECK(as_doubles(i.prod(-1)) == std::vector<double>{6, 120});
  const Tensor e = zeros({0, 3});
  CHECK(prod(e).item<float>() == 1.f);  // the empty product
  CHECK(as_doubles(prod(e, 0)) == std::vector<double>{1, 1, 1});
  CHECK(prod(e, 1).shape() == Shape{0});
  CHECK(prod(tensor(std::vector<double>{5.0}, {}), 0).item<double>() == 5.0);
  CHECK(prod(tensor(std::vector<double>{5.0}, {}), -1, true).shape() == Shape{});
  CHECK_THROWS_AS(prod(i, 2), std::out_of_range);
  CHECK(prod(tensor({true, false})).dtype() == Dtype::Int64);
  Tensor a = tensor({{2.0, 0.0, 3.0}, {1.0, 4.0, 0.5}}, true);
  prod(a, 1).sum().backward();
  CHECK(as_doubles(a.grad()) == std::vector<double>{0, 6, 0, 2, 0.5, 4});
}

TEST_CASE("sort, argsort, topk: stability, NaN placement, indices, errors", "[autograd][ops12]") {
  Tensor x = tensor({3.0, 1.0, kNaN, 1.0, -0.0, 0.0, 2.0});
  auto [v, i] = sort(x);
  CHECK(as_doubles(i) == std::vector<double>{4, 5, 1, 3, 6, 0, 2});
  CHECK(std::isnan(as_doubles(v)[6]));
  auto [dv, di] = sort(x, 0, true);
  CHECK(as_doubles(di) == std::vector<double>{2, 0, 6, 1, 3, 4, 5});
  CHECK(as_doubles(argsort(tensor({{3, 1, 2}, {0, 5, 4}}), 1)) == std::vector<double>{1, 2, 0, 0, 2, 1});
  auto [tv, ti] = topk(tensor({1.0, 5.0, 3.0, 5.0}), 2);
  CHECK(as_doubles(tv) == std::vector<double>{5, 5});
  CHECK(as_doubles(ti) == std::vector<double>{1, 3});
  auto [sv, si] = topk(tensor({{1.0, 5.0, 3.0}}), 0, 1);
  CHECK(sv.shape() == Shape{1, 0});
  CHECK(contains(message_of([] { topk(zeros({2, 3}), 4, 1); }), "topk: k (4) must be in [0, 3]"));
  CHECK(contains(message_of([] { topk(zeros({2, 3}), -1); }), "k (-1)"));
  CHECK_THROWS_AS(sort(zeros({2, 3}), 2), std::out_of_range);
}

TEST_CASE("repeat, diag, bmm, logspace: shapes, values and errors", "[autograd][ops12]") {
  Tensor a = tensor({{1.0, 2.0}, {3.0, 4.0}});
  CHECK(as_doubles(repeat(a, {1, 2})) == std::vector<double>{1, 2, 1, 2, 3, 4, 3, 4});
  CHECK(repeat(a, {2, 0, 3}).shape() == Shape{2, 0, 6});
  CHECK(contains(message_of([&] { repeat(a, {2}); }), "repeat: the number of repeats (1) must be at least"));
  CHECK(contains(message_of([&] { repeat(a, {2, -1}); }), "repeats must be >= 0"));
  CHECK(as_doubles(diag(tensor({1.0, 2.0}), 1)) == std::vector<double>{0, 1, 0, 0, 0, 2, 0, 0, 0});
  CHECK(as_doubles(diag(a)) == std::vector<double>{1, 4});
  CHECK(as_doubles(diag(a, 1)) == std::vector<double>{2});
  CHECK(diag(a, 5).shape() == Shape{0});
  CHECK(as_doubles(diag(a.t())) == std::vector<double>{1, 4});  // a view is read through its strides
  Tensor d = diag(a);
  d.fill_(9.0);  // a copy, as PyTorch's diag
  CHECK(a[0][0].item<double>() == 1.0);
  CHECK(contains(message_of([] { diag(zeros({2, 2, 2})); }), "diag: expected a 1-D or 2-D tensor, got 3-D"));
  CHECK(contains(message_of([] { bmm(zeros({2, 3}), zeros({3, 2})); }), "bmm: expected two 3-D tensors"));
  CHECK(contains(message_of([] { bmm(zeros({2, 3, 4}), zeros({3, 4, 2})); }), "batch sizes differ"));
  CHECK(contains(message_of([] { bmm(zeros({2, 3, 4}), zeros({2, 3, 2})); }), "cannot be multiplied"));
  CHECK(as_doubles(logspace(0, 2, 3, 10.0, Dtype::Float64)) == std::vector<double>{1, 10, 100});
  CHECK(logspace(0, 1, 0).shape() == Shape{0});
  CHECK(contains(message_of([] { logspace(0, 1, -1); }), "logspace: number of steps must be non-negative, got -1"));
}

TEST_CASE("einsum: the common forms agree with explicit ops; unsupported forms throw clearly", "[autograd][ops12]") {
  Tensor a = randn_f64({3, 4}, 1, false), b = randn_f64({4, 5}, 2, false), s = randn_f64({4, 4}, 3, false);
  CHECK(allclose(einsum("ij,jk->ik", {a, b}), matmul(a, b), 1e-12, 1e-12));
  CHECK(allclose(einsum("ij->ji", {a}), a.t(), 0, 0));
  CHECK(allclose(einsum("ii->i", {s}), diag(s), 0, 0));
  CHECK(allclose(einsum("ii", {s}), diag(s).sum(), 1e-12, 1e-12));  // implicit: the trace
  CHECK(allclose(einsum("ij->", {a}), a.sum(), 1e-12, 1e-12));
  CHECK(allclose(einsum("ij,ij->ij", {a, a}), a * a, 0, 0));
  CHECK(allclose(einsum(" i , j -> ij ", {a[0], b[0]}), a[0].unsqueeze(1) * b[0], 0, 0));
  CHECK(allclose(einsum("bi,bi->b", {a, a}), (a * a).sum({1}), 1e-12, 1e-12));
  CHECK(allclose(einsum("ij->j", {a}), a.sum({0}), 1e-12, 1e-12));
  CHECK(contains(message_of([&] { einsum("...ij,jk->ik", {a, b}); }), "ellipsis ('...') is not supported"));
  CHECK(contains(message_of([&] { einsum("ij,jk,kl->il", {a, b, b}); }), "only one or two operands"));
  CHECK(contains(message_of([&] { einsum("ij,jk->ik", {a}); }), "2 operand subscripts but 1 tensors"));
  CHECK(contains(message_of([&] { einsum("ijk->i", {a}); }), "operand 0 has 2 dims but subscripts \"ijk\" name 3"));
  CHECK(contains(message_of([&] { einsum("ij,jk->iz", {a, b}); }), "output label 'z' appears in no operand"));
  CHECK(contains(message_of([&] { einsum("ij,jk->ii", {a, b}); }), "an output label is repeated"));
  CHECK(contains(message_of([&] { einsum("ij,kj->ik", {a, b}); }), "label 'j' has size 4 in operand 0 but 5"));
  CHECK(contains(message_of([&] { einsum("ii->i", {a}); }), "repeated with different sizes 3 and 4"));
  CHECK(contains(message_of([&] { einsum("i1->i", {a}); }), "invalid subscript '1'"));
}

TEST_CASE("issue 12 ops as Tensor methods give the free functions' results", "[autograd][ops12]") {
  Tensor x = randn_f64({3, 4}, 31, false);
  CHECK(bit_identical(std::get<1>(x.max(1)), std::get<1>(max(x, 1))));
  CHECK(bit_identical(std::get<0>(x.min(0, true)), std::get<0>(min(x, 0, true))));
  CHECK(bit_identical(x.var({1}), var(x, {1})));
  CHECK(bit_identical(x.std({}, 0, true), sorix::std(x, {}, 0, true)));
  CHECK(bit_identical(x.norm(3.0, {0}), norm(x, 3.0, {0})));
  CHECK(bit_identical(x.logsumexp({1}, true), logsumexp(x, {1}, true)));
  CHECK(bit_identical(x.all({1}), all(x, {1})));
  CHECK(bit_identical(x.any(), any(x)));
  CHECK(x.allclose(x.clone()));
  CHECK(x.equal(x.clone()));
  CHECK(bit_identical(x.cumsum(0), cumsum(x, 0)));
  CHECK(bit_identical(x.cumprod(1), cumprod(x, 1)));
  CHECK(bit_identical(std::get<1>(x.sort(0, true)), std::get<1>(sort(x, 0, true))));
  CHECK(bit_identical(x.argsort(), argsort(x)));
  CHECK(bit_identical(std::get<0>(x.topk(2)), std::get<0>(topk(x, 2))));
  CHECK(bit_identical(x.repeat({2, 2}), repeat(x, {2, 2})));
  CHECK(bit_identical(x.diag(1), diag(x, 1)));
  Tensor b = randn_f64({2, 3, 4}, 32, false), c = randn_f64({2, 4, 5}, 33, false);
  CHECK(bit_identical(b.bmm(c), matmul(b, c)));
  CHECK(bit_identical(nn::functional::one_hot(tensor({1, 0}), 3), one_hot(tensor({1, 0}), 3)));
}

TEST_CASE("max(dim)/min(dim) return libtorch's (values, indices); amax/amin give values over dims", "[autograd][ops12]") {
  Tensor x = tensor({{1.0, 3.0, 3.0, -1.0}, {2.0, 2.0, 0.0, 2.0}}, true);
  const std::tuple<Tensor, Tensor> r = x.max(1);  // the libtorch type, not a Tensor
  CHECK(as_doubles(std::get<0>(r)) == std::vector<double>{3, 2});
  CHECK(as_doubles(std::get<1>(r)) == std::vector<double>{1, 0});
  CHECK(bit_identical(std::get<0>(r), x.amax({1})));
  CHECK(bit_identical(std::get<0>(x.min(0, true)), x.amin({0}, true)));
  // Over several dims (and all dims): one exact value, keepdim keeps them as 1.
  CHECK(x.amax().item<double>() == 3.0);
  CHECK(x.amin({0, 1}, true).shape() == Shape{1, 1});
  CHECK(x.amin({0, 1}, true).item<double>() == -1.0);
  CHECK(tensor({4, -2, 9}).amax().dtype() == kInt64);
  // The gradient is split evenly among ties (as PyTorch's amax), unlike max(dim)'s picked index.
  x.amax({1}).sum().backward();
  CHECK(as_doubles(x.grad()) == std::vector<double>{0, 0.5, 0.5, 0, 1.0 / 3, 1.0 / 3, 0, 1.0 / 3});
  auto gc = gradcheck([](const V& in) { return amax(in[0], {0, 2}, true); }, {randn_f64({2, 3, 4}, 41)});
  INFO(gc.message);
  CHECK(gc.ok);
  auto gc2 = gradcheck([](const V& in) { return in[0].amin({1}); }, {randn_f64({3, 5}, 42)});
  CHECK(gc2.ok);
  CHECK_THROWS_AS(amax(zeros({2, 0}), {1}), std::invalid_argument);
  CHECK(contains(message_of<std::exception>([] { amin(zeros({2, 3}), {2}); }), "amin"));
}
