// bool, uint8 and int32 beside float32, float64 and int64: PyTorch's type promotion (checked
// against PyTorch 1.13's own answers, tests/data/parity_dtypes.txt from
// scripts/gen_parity_dtypes.py), comparisons returning bool, bool masks, in-place ops that refuse a
// result their dtype cannot hold, conversions, printing and checkpoints of every dtype.
#include <catch2/catch.hpp>

#include <cstdint>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

#include <sorix/sorix.hpp>

#include "support/errors.hpp"
#include "support/gradcheck.hpp"
#include "support/temp_files.hpp"
#include "support/values.hpp"

using namespace sorix;
using sorix::testing::as_doubles;
using sorix::testing::bit_identical;
using sorix::testing::check_error;
using sorix::testing::contains;
using sorix::testing::message_of;
using sorix::testing::values_of;

namespace {

const std::map<std::string, Dtype> kDtypes = {{"bool", kBool},       {"uint8", kUInt8},     {"int32", kInt32},
                                              {"int64", kInt64},     {"float32", kFloat32}, {"float64", kFloat64}};

std::vector<std::string> reference_lines(const std::string& kind) {
  const std::string path = std::string(SORIX_TEST_DATA_DIR) + "/parity_dtypes.txt";
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path + " (regenerate with scripts/gen_parity_dtypes.py)");
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(kind + " ", 0) == 0) out.push_back(line);
  }
  return out;
}

std::vector<double> parse_values(const std::string& s) {
  std::vector<double> v;
  std::stringstream ss(s);
  std::string tok;
  while (std::getline(ss, tok, ',')) v.push_back(std::stod(tok));
  return v;
}

// An operand of the reference table: a tensor (t: 1-D, z: 0-dim) or a C++ number.
using Operand = std::variant<Tensor, Scalar>;
Operand operand(const std::string& spec) {
  if (spec == "s:bool") return Scalar(true);
  if (spec == "s:int") return Scalar(2);
  if (spec == "s:float") return Scalar(2.5);
  if (spec == "s:float_integral") return Scalar(2.0);
  const Dtype dt = kDtypes.at(spec.substr(2));
  Tensor t = tensor(dt == kBool ? std::vector<double>{1, 0, 1} : std::vector<double>{3, 1, 2}, {3}, dt);
  return spec[0] == 't' ? t : t[0].clone();
}

Tensor apply(const std::string& op, const Tensor& a, const Operand& b_op) {
  const Tensor cond = tensor({true, false, true});
  if (const Tensor* b = std::get_if<Tensor>(&b_op)) {
    if (op == "add") return a + *b;
    if (op == "sub") return a - *b;
    if (op == "mul") return a * *b;
    if (op == "div") return a / *b;
    if (op == "eq") return a.eq(*b);
    if (op == "lt") return a.lt(*b);
    if (op == "where") return where(cond, a, *b);
    if (op == "pow") return pow(a, *b);
    throw std::logic_error("no tensor form for " + op);
  }
  const Scalar s = std::get<Scalar>(b_op);
  if (op == "add") return a + s;
  if (op == "sub") return a - s;
  if (op == "mul") return a * s;
  if (op == "div") return a / s;
  if (op == "eq") return a.eq(s);
  if (op == "lt") return a.lt(s);
  if (op == "pow") return a.pow(s);
  if (op == "rpow") return pow(s, a);
  if (op == "clamp") return a.clamp(s, std::nullopt);
  if (op == "clamp_max") return a.clamp_max(s);
  throw std::logic_error("unknown op " + op);
}

void apply_inplace(const std::string& op, Tensor& a, const Operand& b_op) {
  std::visit(
      [&](const auto& b) {
        if (op == "add") a.add_(b);
        else if (op == "sub") a.sub_(b);
        else if (op == "mul") a.mul_(b);
        else if (op == "div") a.div_(b);
        else if (op == "pow") a.pow_(b);
        else if constexpr (std::is_same_v<std::decay_t<decltype(b)>, Scalar>) {
          if (op == "clamp") a.clamp_(b, std::nullopt);
          else throw std::logic_error("unknown op " + op);
        } else throw std::logic_error("unknown op " + op);
      },
      b_op);
}

// A 1-D tensor of comma-separated values in dtype dt; integers are parsed exactly (an int64 near
// 2^63 would not survive a trip through double).
Tensor exact_tensor(const std::string& values, Dtype dt) {
  if (is_floating(dt)) {
    const std::vector<double> v = parse_values(values);
    return tensor(v, {static_cast<std::int64_t>(v.size())}, dt);
  }
  std::vector<std::int64_t> v;
  std::stringstream ss(values);
  std::string tok;
  while (std::getline(ss, tok, ',')) v.push_back(std::stoll(tok));
  Tensor t = zeros({static_cast<std::int64_t>(v.size())}, kInt64);
  std::copy(v.begin(), v.end(), t.data_ptr<std::int64_t>());
  return t.to(dt);
}

// got has want's dtype and values: integers and bool exactly, floats within a few ulp (sorix's
// own polynomials against PyTorch's; NaN matches NaN, infinities match exactly).
void check_values(const Tensor& got, const std::string& want_dtype, const std::string& want_values) {
  REQUIRE(dtype_name(got.dtype()) == want_dtype);
  const Tensor want = exact_tensor(want_values, kDtypes.at(want_dtype));
  REQUIRE(got.numel() == want.numel());
  if (!is_floating(got.dtype())) {
    CHECK(values_of<std::int64_t>(got.reshape({-1}).to(kInt64)) == values_of<std::int64_t>(want.to(kInt64)));
    return;
  }
  const double rtol = got.dtype() == kFloat32 ? 1e-6 : 1e-13;
  const std::vector<double> g = as_doubles(got.reshape({-1})), w = as_doubles(want);
  for (std::size_t i = 0; i < g.size(); ++i) {
    INFO("element " << i << ": got " << g[i] << ", want " << w[i]);
    if (std::isnan(w[i]) || std::isinf(w[i])) CHECK((std::isnan(w[i]) ? std::isnan(g[i]) : g[i] == w[i]));
    else CHECK(std::abs(g[i] - w[i]) <= rtol * std::abs(w[i]));
  }
}

Scalar scalar_of(const std::string& spec) {
  const std::string kind = spec.substr(0, spec.find(':')), num = spec.substr(spec.find(':') + 1);
  if (kind == "bool") return Scalar(num == "1");
  if (kind == "int") return Scalar(static_cast<std::int64_t>(std::stoll(num)));
  return Scalar(std::stod(num));
}

// The one-tensor ops of the reference table's "unary" lines.
Tensor apply_unary(const std::string& op, const Tensor& x) {
  static const std::map<std::string, std::function<Tensor(const Tensor&)>> ops = {
      {"neg", [](const Tensor& t) { return neg(t); }},
      {"abs", [](const Tensor& t) { return abs(t); }},
      {"exp", [](const Tensor& t) { return exp(t); }},
      {"log", [](const Tensor& t) { return log(t); }},
      {"sqrt", [](const Tensor& t) { return sqrt(t); }},
      {"tanh", [](const Tensor& t) { return tanh(t); }},
      {"sigmoid", [](const Tensor& t) { return sigmoid(t); }},
      {"relu", [](const Tensor& t) { return relu(t); }},
      {"sin", [](const Tensor& t) { return sin(t); }},
      {"cos", [](const Tensor& t) { return cos(t); }},
      {"tan", [](const Tensor& t) { return tan(t); }},
      {"sign", [](const Tensor& t) { return sign(t); }},
      {"round", [](const Tensor& t) { return round(t); }},
      {"floor", [](const Tensor& t) { return floor(t); }},
      {"ceil", [](const Tensor& t) { return ceil(t); }},
      {"trunc", [](const Tensor& t) { return trunc(t); }},
      {"log1p", [](const Tensor& t) { return log1p(t); }},
      {"expm1", [](const Tensor& t) { return expm1(t); }},
      {"square", [](const Tensor& t) { return square(t); }},
      {"rsqrt", [](const Tensor& t) { return rsqrt(t); }},
      {"reciprocal", [](const Tensor& t) { return reciprocal(t); }},
      {"erf", [](const Tensor& t) { return erf(t); }},
      {"leaky_relu", [](const Tensor& t) { return leaky_relu(t); }},
      {"softmax", [](const Tensor& t) { return softmax(t, 0); }},
      {"clamp_int", [](const Tensor& t) { return clamp(t, 1, 5); }},
      {"clamp_float", [](const Tensor& t) { return clamp(t, 0.5, 5); }},
      {"clamp_bool", [](const Tensor& t) { return clamp(t, false, true); }},
      {"clamp_max_only", [](const Tensor& t) { return clamp(t, std::nullopt, 2); }},
      {"clamp_min_int", [](const Tensor& t) { return clamp_min(t, 1); }},
      {"clamp_min_float", [](const Tensor& t) { return clamp_min(t, 1.5); }},
      {"clamp_max_int", [](const Tensor& t) { return clamp_max(t, 2); }},
      {"clamp_max_float", [](const Tensor& t) { return clamp_max(t, 2.5); }},
      {"sum", [](const Tensor& t) { return sum(t); }},
      {"cumsum", [](const Tensor& t) { return cumsum(t, 0); }},
      {"cumprod", [](const Tensor& t) { return cumprod(t, 0); }},
      {"prod", [](const Tensor& t) { return prod(t); }},
      {"prod_dim", [](const Tensor& t) { return prod(t, 0, true); }},
      {"mean", [](const Tensor& t) { return mean(t); }},
      {"var", [](const Tensor& t) { return var(t); }},
      {"std", [](const Tensor& t) { return sorix::std(t); }},
      {"norm", [](const Tensor& t) { return norm(t); }},
      {"logsumexp", [](const Tensor& t) { return logsumexp(t, {0}); }},
      {"max", [](const Tensor& t) { return max(t); }},
      {"amin", [](const Tensor& t) { return amin(t); }},
      {"hardtanh", [](const Tensor& t) { return nn::functional::hardtanh(t); }},
      {"hardtanh_range",
       [](const Tensor& t) { return nn::functional::hardtanh(t, nn::HardtanhOptions().min_val(-2.5).max_val(2.5)); }},
      {"hardtanh_pos",
       [](const Tensor& t) { return nn::functional::hardtanh(t, nn::HardtanhOptions().min_val(0.5).max_val(6.0)); }},
      {"gelu", [](const Tensor& t) { return nn::functional::gelu(t); }},
  };
  return ops.at(op)(x);
}

}  // namespace

TEST_CASE("result dtypes follow PyTorch 1.13's type promotion", "[dtypes]") {
  const auto lines = reference_lines("promote");
  REQUIRE(lines.size() > 400);
  for (const std::string& line : lines) {
    std::istringstream ls(line);
    std::string kind, op, lhs, rhs, expected;
    ls >> kind >> op >> lhs >> rhs >> expected;
    INFO(line);
    const Tensor a = std::get<Tensor>(operand(lhs));
    const Operand b = operand(rhs);
    if (expected == "error") {
      CHECK_THROWS_AS(apply(op, a, b), std::invalid_argument);
    } else {
      Tensor r;
      REQUIRE_NOTHROW(r = apply(op, a, b));
      CHECK(dtype_name(r.dtype()) == expected);
    }
  }
}

TEST_CASE("in-place ops keep the tensor's dtype or refuse, as PyTorch 1.13", "[dtypes]") {
  const auto lines = reference_lines("inplace");
  REQUIRE(lines.size() > 100);
  for (const std::string& line : lines) {
    std::istringstream ls(line);
    std::string kind, op, lhs, rhs, expected;
    ls >> kind >> op >> lhs >> rhs >> expected;
    INFO(line);
    Tensor a = std::get<Tensor>(operand(lhs));
    const Dtype before = a.dtype();
    const std::vector<double> values = as_doubles(a);
    if (expected == "error") {
      CHECK_THROWS_AS(apply_inplace(op, a, operand(rhs)), std::invalid_argument);
      CHECK(as_doubles(a) == values);  // nothing was written
    } else {
      REQUIRE_NOTHROW(apply_inplace(op, a, operand(rhs)));
    }
    CHECK(a.dtype() == before);
  }
}

TEST_CASE("integer and bool arithmetic and conversions give PyTorch's values", "[dtypes]") {
  for (const std::string& line : reference_lines("values")) {
    std::istringstream ls(line);
    std::string kind, op, ld, lv, rd, rv, od, ov;
    ls >> kind >> op >> ld >> lv >> rd >> rv >> od >> ov;
    INFO(line);
    const Tensor a = tensor(parse_values(lv), {3}, kDtypes.at(ld));
    const Tensor b = tensor(parse_values(rv), {3}, kDtypes.at(rd));
    const Tensor r = apply(op, a, b);
    CHECK(dtype_name(r.dtype()) == od);
    CHECK(bit_identical(r, tensor(parse_values(ov), {3}, kDtypes.at(od))));
  }
  for (const std::string& line : reference_lines("convert")) {
    std::istringstream ls(line);
    std::string kind, from, to, expected;
    ls >> kind >> from >> to >> expected;
    INFO(line);
    const std::vector<double> src = parse_values(from);
    const Tensor r = tensor(src, {static_cast<std::int64_t>(src.size())}, kFloat64).to(kDtypes.at(to));
    CHECK(as_doubles(r) == parse_values(expected));
  }
}

TEST_CASE("pow and clamp with a number: PyTorch 1.13's dtypes, exact values and refusals", "[dtypes]") {
  const auto lines = reference_lines("scalar");
  REQUIRE(lines.size() > 30);
  for (const std::string& line : lines) {
    std::istringstream ls(line);
    std::string kind, op, dt, values, number, want_dtype, want_values;
    ls >> kind >> op >> dt >> values >> number >> want_dtype >> want_values;
    INFO(line);
    const Tensor a = exact_tensor(values, kDtypes.at(dt));
    if (want_dtype == "error") {
      CHECK_THROWS_AS(apply(op, a, scalar_of(number)), std::invalid_argument);
    } else {
      check_values(apply(op, a, scalar_of(number)), want_dtype, want_values);
    }
  }
  // On a float tensor an integer number is the same float computation as before Scalars: the bits
  // of x.pow(3) are x.pow(3.0)'s, clamp(-2, 3) is clamp(-2.0, 3.0).
  const Tensor f = arange(-50, 50, 1, kFloat32) * 0.37;
  CHECK(bit_identical(f.pow(3), f.pow(3.0)));
  CHECK(bit_identical(f.clamp(-2, 3), f.clamp(-2.0, 3.0)));
  CHECK(bit_identical(f.clamp_min(1), f.clamp_min(1.0)));
  CHECK(bit_identical(pow(2, f), pow(2.0, f)));
}

TEST_CASE("one-tensor ops on integer and bool tensors: PyTorch 1.13's dtypes and values", "[dtypes]") {
  const auto lines = reference_lines("unary");
  REQUIRE(lines.size() > 200);
  for (const std::string& line : lines) {
    std::istringstream ls(line);
    std::string kind, op, dt, values, want_dtype, want_values;
    ls >> kind >> op >> dt >> values >> want_dtype >> want_values;
    INFO(line);
    const Tensor x = exact_tensor(values, kDtypes.at(dt));
    if (want_dtype == "error") {
      CHECK_THROWS_AS(apply_unary(op, x), std::invalid_argument);
      continue;
    }
    const Tensor r = apply_unary(op, x);
    check_values(r, want_dtype, want_values);
    // An integer or bool input promoted to float32 runs float32's own kernel on the converted
    // values: the same bits as the op on x.to(float32).
    if (!is_floating(x.dtype()) && r.dtype() == kFloat32) CHECK(bit_identical(r, apply_unary(op, x.to(kFloat32))));
  }
}

TEST_CASE("integer pow, clamp and reductions refuse what PyTorch refuses, naming op and dtype", "[dtypes]") {
  const Tensor i = tensor({2, 3});
  check_error<std::invalid_argument>([&] { i.pow(-1); }, {"pow", "negative", "int64"});
  check_error<std::invalid_argument>([&] { tensor({true}).pow(true); }, {"pow", "bool"});
  check_error<std::invalid_argument>([&] { i.to(kUInt8).pow(256); }, {"pow", "256", "uint8"});
  check_error<std::invalid_argument>([&] { i.to(kInt32).clamp(0, std::int64_t{1} << 40); }, {"clamp", "1099511627776", "int32"});
  check_error<std::invalid_argument>([&] { i.to(kUInt8).clamp_max(300); }, {"clamp_max", "300", "uint8"});
  check_error<std::invalid_argument>([&] { tensor({true}).clamp(false, true); }, {"clamp", "bool"});
  for (Dtype dt : {kBool, kUInt8, kInt32, kInt64}) {
    INFO(dtype_name(dt));
    const Tensor x = zeros({3}, dt);
    check_error<std::invalid_argument>([&] { mean(x); }, {"mean", dtype_name(dt), "to(kFloat32)"});
    check_error<std::invalid_argument>([&] { mean(x, {0}); }, {"mean", dtype_name(dt)});
    check_error<std::invalid_argument>([&] { var(x); }, {"var", dtype_name(dt)});
    check_error<std::invalid_argument>([&] { sorix::std(x); }, {"std", dtype_name(dt)});
  }
  // In place: the integer result is stored; a float result into an integer tensor is refused.
  Tensor c = tensor({-4, 9});
  c.clamp_(0, 5);
  CHECK(values_of<std::int64_t>(c) == std::vector<std::int64_t>{0, 5});
  check_error<std::invalid_argument>([&] { c.clamp_(0.5, std::nullopt); }, {"clamp_", "float32", "int64"});
  CHECK(values_of<std::int64_t>(c) == std::vector<std::int64_t>{0, 5});
}

TEST_CASE("a number counts by its category, never its value", "[dtypes]") {
  const Tensor i = tensor({1, 2, 3});
  CHECK((i * 2).dtype() == kInt64);
  CHECK((i * 2.0).dtype() == kFloat32);  // 2.0 is a floating number even though it is whole
  CHECK((i * 2.5).dtype() == kFloat32);
  CHECK((i / 2).dtype() == kFloat32);  // true division
  CHECK(as_doubles(i / 2) == std::vector<double>{0.5, 1.0, 1.5});
  CHECK((tensor(std::vector<double>{1}, {1}, kUInt8) + 300).dtype() == kUInt8);
  CHECK((tensor(std::vector<double>{1}, {1}, kFloat64) * 2.5f).dtype() == kFloat64);
  CHECK((tensor({true, false}) + 1).dtype() == kInt64);
  CHECK((tensor({true, false}) * 1.5).dtype() == kFloat32);
  // A 0-dim tensor of a higher category joins; of the same category it does not.
  CHECK(result_type(i, scalar_tensor(1.0, kFloat64)) == kFloat64);
  CHECK(result_type(tensor(std::vector<double>{1}, {1}, kFloat32), scalar_tensor(1.0, kFloat64)) == kFloat32);
  CHECK(result_type(tensor(std::vector<double>{1}, {1}, kUInt8), scalar_tensor(1, kInt64)) == kUInt8);
  // Integers keep every bit (no trip through double).
  const std::int64_t big = (std::int64_t{1} << 62) + 1;
  CHECK((tensor({std::int64_t{0}}) + big).item<std::int64_t>() == big);
}

TEST_CASE("an in-place op whose result its dtype cannot hold throws naming op and dtypes", "[dtypes]") {
  Tensor i = tensor({1, 2, 3});
  check_error<std::invalid_argument>([&] { i.mul_(0.5); }, {"mul_", "float32", "int64"});
  check_error<std::invalid_argument>([&] { i.div_(2); }, {"div_", "float32", "int64"});
  check_error<std::invalid_argument>([&] { i += tensor({1.0, 2.0, 3.0}); }, {"add_", "float64", "int64"});
  CHECK(values_of<std::int64_t>(i) == std::vector<std::int64_t>{1, 2, 3});
  i.mul_(2);
  CHECK(values_of<std::int64_t>(i) == std::vector<std::int64_t>{2, 4, 6});
  Tensor b = tensor({true, false});
  check_error<std::invalid_argument>([&] { b.add_(1); }, {"add_", "int64", "bool"});
  Tensor u = tensor(std::vector<double>{250, 3}, {2}, kUInt8);
  u.add_(tensor(std::vector<double>{10, 1}, {2}, kInt32));  // int32 result cast back: wraps as PyTorch
  CHECK(values_of<std::uint8_t>(u) == std::vector<std::uint8_t>{4, 4});
  Tensor f = tensor({1.f, 2.f});
  f.mul_(tensor({2, 3}));  // an integer operand into a float tensor is fine
  CHECK(values_of<float>(f) == std::vector<float>{2, 6});
}

TEST_CASE("comparisons, logical ops and float tests return bool", "[dtypes]") {
  const Tensor a = tensor({1.f, 2.f, 3.f});
  const Tensor b = tensor({3.f, 2.f, 1.f});
  for (const Tensor& r : {a.gt(b), a.lt(b), a.ge(b), a.le(b), a.eq(b), a.ne(b), a.gt(2), a.eq(2.0)}) {
    CHECK(r.dtype() == kBool);
    CHECK_FALSE(r.requires_grad());
  }
  CHECK(values_of<bool>(a.gt(b)) == std::vector<bool>{false, false, true});
  CHECK(values_of<bool>(a.ne(2)) == std::vector<bool>{true, false, true});
  CHECK(tensor({1, 5}).lt(tensor({2, 2})).dtype() == kBool);
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  const Tensor n = tensor({nan, 1.0, inf, -inf});
  CHECK(values_of<bool>(n.ne(n)) == std::vector<bool>{true, false, false, false});
  CHECK(values_of<bool>(n.isnan()) == std::vector<bool>{true, false, false, false});
  CHECK(values_of<bool>(n.isinf()) == std::vector<bool>{false, false, true, true});
  CHECK(values_of<bool>(n.isfinite()) == std::vector<bool>{false, true, false, false});
  CHECK(values_of<bool>(tensor({1, 2}).isfinite()) == std::vector<bool>{true, true});
  const Tensor p = tensor({true, true, false, false}), q = tensor({true, false, true, false});
  CHECK(values_of<bool>(p.logical_and(q)) == std::vector<bool>{true, false, false, false});
  CHECK(values_of<bool>(p.logical_or(q)) == std::vector<bool>{true, true, true, false});
  CHECK(values_of<bool>(p.logical_xor(q)) == std::vector<bool>{false, true, true, false});
  CHECK(values_of<bool>(tensor({0.0, nan, -2.0}).logical_not()) == std::vector<bool>{true, false, false});
  // Counting trues: bool sums to int64, as PyTorch; all / any give bool.
  CHECK(p.sum().dtype() == kInt64);
  CHECK(p.sum().item<std::int64_t>() == 2);
  CHECK(all(p).dtype() == kBool);
  CHECK_FALSE(all(p).item<bool>());
  CHECK(any(p).item<bool>());
  check_error<std::invalid_argument>([&] { p - q; }, {"sub", "bool"});
  check_error<std::invalid_argument>([&] { -p; }, {"neg", "bool"});
  // A mask multiplies a float tensor directly (bool promotes to the float).
  CHECK(values_of<float>(a * a.gt(1.5)) == std::vector<float>{0, 2, 3});
}

TEST_CASE("masks are bool (or uint8, as PyTorch 1.13); other dtypes throw", "[dtypes]") {
  const Tensor x = tensor({1.f, -2.f, 3.f, -4.f});
  const Tensor m = x.lt(0);
  CHECK(values_of<float>(x.masked_fill(m, 0)) == std::vector<float>{1, 0, 3, 0});
  CHECK(values_of<float>(where(m, 0.0, x)) == std::vector<float>{1, 0, 3, 0});
  CHECK(values_of<float>(x.index({m})) == std::vector<float>{-2, -4});
  CHECK(values_of<float>(x.masked_select(m)) == std::vector<float>{-2, -4});
  const Tensor u = m.to(kUInt8);
  CHECK(values_of<float>(x.masked_fill(u, 7)) == std::vector<float>{1, 7, 3, 7});
  CHECK(values_of<float>(x.index({u})) == std::vector<float>{-2, -4});
  Tensor y = x.clone();
  y.index_put_({m}, 9.0);
  CHECK(values_of<float>(y) == std::vector<float>{1, 9, 3, 9});
  check_error<std::invalid_argument>([&] { x.masked_fill(m.to(kFloat32), 0); }, {"masked_fill", "float32"});
  check_error<std::invalid_argument>([&] { where(m.to(kInt64), x, x); }, {"where", "int64"});
  check_error<std::invalid_argument>([&] { x.masked_select(m.to(kFloat32)); }, {"masked_select", "float32"});
  check_error<std::invalid_argument>([&] { x.index({m.to(kFloat32)}); }, {"index", "float32"});
  // An int64 index tensor is positions, not a mask.
  CHECK(values_of<float>(x.index({tensor({1, 0})})) == std::vector<float>{-2, 1});
}

TEST_CASE("uint8, int32 and bool tensors: factories, conversion, copy, printing", "[dtypes]") {
  CHECK(zeros({2}, kUInt8).dtype() == kUInt8);
  CHECK(values_of<std::int32_t>(arange(0, 4, 1, kInt32)) == std::vector<std::int32_t>{0, 1, 2, 3});
  CHECK(values_of<bool>(ones({2}, kBool)) == std::vector<bool>{true, true});
  CHECK(values_of<std::uint8_t>(full({2}, 300, kUInt8)) == std::vector<std::uint8_t>{44, 44});
  CHECK(sorix::to_string(tensor({true, false})) == "tensor([True, False])");
  CHECK(sorix::to_string(tensor(std::vector<double>{1, 255}, {2}, kUInt8)) == "tensor([1, 255], dtype=uint8)");
  CHECK(sorix::to_string(tensor(std::vector<double>{-1, 7}, {2}, kInt32)) == "tensor([-1, 7], dtype=int32)");
  Tensor t = zeros({2, 2}, kInt32);
  t.copy_(tensor({{1.7f, -2.2f}, {3.f, 4.f}}));  // copy_ converts as to()
  CHECK(values_of<std::int32_t>(t) == std::vector<std::int32_t>{1, -2, 3, 4});
  t.fill_(5);
  CHECK(t.sum().item<std::int64_t>() == 20);
  CHECK(t.max().item<std::int64_t>() == 5);
  CHECK(values_of<std::uint8_t>(tensor(std::vector<double>{3, 200}, {2}, kUInt8).neg()) == std::vector<std::uint8_t>{253, 56});
  CHECK_THROWS_AS(zeros({2}, kInt32).requires_grad_(), std::invalid_argument);
  CHECK(exp(zeros({2}, kUInt8)).dtype() == kFloat32);  // as PyTorch: the default float dtype
  check_error<std::invalid_argument>([] { mean(zeros({2}, kInt32)); }, {"mean", "int32"});
}

TEST_CASE("integer and bool ops give the same bits at any thread count", "[dtypes]") {
  const Tensor a = arange(0, 200000, 1, kInt32);
  const Tensor b = (arange(0, 200000, 1, kInt64) * 7).to(kUInt8);
  auto runs = sorix::testing::at_thread_counts({1, 2, 3, 8}, [&] {
    return std::vector<Tensor>{a + b,          a * b,          b * b,         a.gt(b * 1000), (a.lt(100000) + b.gt(3)),
                               (a + b).sum(),  a.pow(3),       b.pow(5),      pow(3, b),      pow(a, b.to(kInt32)),
                               a.clamp(7, 150000), b.clamp_max(100), a.square(), b.sign(), a.relu(),
                               (a - 100000).abs(), sqrt(a),    exp(b),        cumsum(b, 0),  logsumexp(b, {0})};
  });
  for (std::size_t k = 1; k < runs.size(); ++k) {
    for (std::size_t j = 0; j < runs[0].size(); ++j) CHECK(bit_identical(runs[0][j], runs[k][j]));
  }
}

TEST_CASE("checkpoints round-trip every dtype", "[dtypes][serialize]") {
  sorix::testing::TempDir dir("sorix_dtypes_");
  StateDict sd;
  sd.insert("f32", tensor({1.5f, -2.f}));
  sd.insert("f64", tensor({0.1, 0.2}));
  sd.insert("i64", tensor({std::int64_t{1} << 40, std::int64_t{-3}}));
  sd.insert("b", tensor({true, false, true}));
  sd.insert("u8", tensor(std::vector<double>{0, 255, 17}, {3}, kUInt8));
  sd.insert("i32", tensor(std::vector<double>{-2147483648.0, 2147483647.0}, {2}, kInt32));
  sd.insert("empty_u8", zeros({0, 3}, kUInt8));
  const std::string path = dir.file("all.ckpt");
  save_state(sd, path);
  const StateDict back = load_state(path);
  for (const char* k : {"f32", "f64", "i64", "b", "u8", "i32", "empty_u8"}) {
    INFO(k);
    CHECK(bit_identical(back.at(k), sd.at(k)));
  }
  // A bool byte other than 0/1 is refused as corrupt (CRC fixed up, so only the value is wrong).
  StateDict one;
  one.insert("b", tensor({true}));
  const std::string p1 = dir.file("bool.ckpt");
  save_state(one, p1);
  std::vector<unsigned char> bytes = sorix::testing::read_bytes(p1);
  bytes[bytes.size() - 5] = 2;
  std::uint32_t crc = 0xFFFFFFFFu;  // bitwise CRC-32 (zlib's polynomial)
  for (std::size_t i = 0; i + 4 < bytes.size(); ++i) {
    crc ^= bytes[i];
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  crc = ~crc;
  for (std::size_t i = 0; i < 4; ++i) bytes[bytes.size() - 4 + i] = static_cast<unsigned char>(crc >> (8 * i));
  std::ofstream(p1, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  check_error<std::runtime_error>([&] { load_state(p1); }, {"bool", "corrupt"});
}
