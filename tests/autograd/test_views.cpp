// Strided views: which ops share storage, their strides and offsets, writes through views (and
// through views of views) landing in the base, contiguous(), stride-0 expand read by every kernel
// family, gradients through view chains, in-place ops on views under autograd (CopySlices), the
// shared version counter, and thread invariance of the strided copy.
#include <catch2/catch.hpp>

#include <limits>
#include <stdexcept>
#include <vector>

#include "tests/support/errors.hpp"
#include "tests/support/gradcheck.hpp"
#include "tests/support/values.hpp"

using sorix::Shape;
using sorix::Tensor;
using sorix::testing::at_thread_counts;
using sorix::testing::bit_identical;
using sorix::testing::contains;
using sorix::testing::gradcheck;
using sorix::testing::iota;
using sorix::testing::message_of;
using sorix::testing::randn_f64;
using sorix::testing::values_of;
using sorix::zeros;

namespace {

bool shares_storage(const Tensor& a, const Tensor& b) { return a.impl()->storage == b.impl()->storage; }

}  // namespace

TEST_CASE("view ops share storage, with the strides and offsets PyTorch gives", "[views]") {
  Tensor a = iota({4, 6}).clone();  // strides [6, 1]; iota itself is a view (of arange)
  CHECK(a.stride() == Shape{6, 1});
  CHECK(a.storage_offset() == 0);
  CHECK(a.is_contiguous());
  CHECK_FALSE(a.is_view());

  Tensor s = a.slice(0, 1, 3);
  CHECK(shares_storage(s, a));
  CHECK(s.is_view());
  CHECK(s.shape() == Shape{2, 6});
  CHECK(s.stride() == Shape{6, 1});
  CHECK(s.storage_offset() == 6);
  CHECK(s.is_contiguous());
  CHECK(s.data_ptr<float>() == a.data_ptr<float>() + 6);

  Tensor st = a.slice(1, 1, 6, 2);
  CHECK(st.shape() == Shape{4, 3});
  CHECK(st.stride() == Shape{6, 2});
  CHECK(st.storage_offset() == 1);
  CHECK_FALSE(st.is_contiguous());
  CHECK(values_of<float>(st[1]) == std::vector<float>{7, 9, 11});

  Tensor t = a.t();
  CHECK(shares_storage(t, a));
  CHECK(t.stride() == Shape{1, 6});
  CHECK_FALSE(t.is_contiguous());
  CHECK(a.transpose(0, 1).stride() == Shape{1, 6});
  CHECK(a.view({2, 12}).stride() == Shape{12, 1});
  CHECK(shares_storage(a.view({2, 12}), a));
  CHECK(shares_storage(a.reshape({24}), a));
  CHECK(shares_storage(a.flatten(), a));
  CHECK(a.unsqueeze(1).shape() == Shape{4, 1, 6});
  CHECK(a.unsqueeze(1).stride() == Shape{6, 6, 1});
  CHECK(a.unsqueeze(2).stride() == Shape{6, 1, 1});
  CHECK(shares_storage(a.unsqueeze(0).squeeze(), a));
  CHECK(a.unsqueeze(0).squeeze(0).shape() == Shape{4, 6});

  Tensor sel = a.select(1, 2);
  CHECK(sel.shape() == Shape{4});
  CHECK(sel.stride() == Shape{6});
  CHECK(sel.storage_offset() == 2);
  CHECK(values_of<float>(sel) == std::vector<float>{2, 8, 14, 20});
  CHECK(values_of<float>(a.select(0, -1)) == std::vector<float>{18, 19, 20, 21, 22, 23});
  CHECK(values_of<float>(a[2]) == values_of<float>(a.select(0, 2)));

  Tensor n = a.narrow(1, -3, 2);
  CHECK(n.shape() == Shape{4, 2});
  CHECK(n.storage_offset() == 3);

  Tensor p = iota({2, 3, 4}).permute({2, 0, 1});
  CHECK(p.shape() == Shape{4, 2, 3});
  CHECK(p.stride() == Shape{1, 12, 4});

  Tensor e = iota({3, 1}).expand({2, 3, 4});
  CHECK(e.shape() == Shape{2, 3, 4});
  CHECK(e.stride() == Shape{0, 1, 0});
  CHECK(values_of<float>(e[1][2]) == std::vector<float>{2, 2, 2, 2});
  CHECK(iota({3}).expand_as(zeros({2, 3})).stride() == Shape{0, 1});

  Tensor u = iota({7}).unfold(0, 3, 2);  // windows [0,1,2] [2,3,4] [4,5,6]
  CHECK(u.shape() == Shape{3, 3});
  CHECK(u.stride() == Shape{2, 1});
  CHECK(values_of<float>(u) == std::vector<float>{0, 1, 2, 2, 3, 4, 4, 5, 6});

  Tensor as = a.as_strided({3, 2}, {1, 6}, 1);
  CHECK(values_of<float>(as) == std::vector<float>{1, 7, 2, 8, 3, 9});

  std::vector<Tensor> parts = a.split(4, 1);
  REQUIRE(parts.size() == 2);
  CHECK(parts[1].shape() == Shape{4, 2});
  CHECK(parts[1].storage_offset() == 4);
  CHECK(shares_storage(parts[1], a));
  CHECK(a.chunk(2, 0)[1].storage_offset() == 12);
  std::vector<Tensor> rows = a.unbind(0);
  REQUIRE(rows.size() == 4);
  CHECK(rows[3].storage_offset() == 18);
  CHECK(a.unbind(1)[5].stride() == Shape{6});
}

TEST_CASE("writes through views land in the base, and the base's changes show in views", "[views]") {
  Tensor a = iota({3, 4});
  a.slice(0, 1, 3).fill_(-1);
  CHECK(values_of<float>(a) == std::vector<float>{0, 1, 2, 3, -1, -1, -1, -1, -1, -1, -1, -1});

  Tensor b = iota({3, 4});
  b.t()[1].add_(100.0);  // column 1
  CHECK(values_of<float>(b) == std::vector<float>{0, 101, 2, 3, 4, 105, 6, 7, 8, 109, 10, 11});
  b.view({12}).narrow(0, 10, 2).mul_(0.0);
  CHECK(values_of<float>(b)[10] == 0.f);
  CHECK(values_of<float>(b)[11] == 0.f);
  b.reshape({2, 6}).select(1, 0).copy_(sorix::tensor({7.f, 8.f}));
  CHECK(values_of<float>(b)[0] == 7.f);
  CHECK(values_of<float>(b)[6] == 8.f);

  // A view of a view of a view.
  Tensor c = iota({4, 5});
  Tensor v = c.t().slice(0, 1, 5, 2).select(1, 3);  // c[3, 1], c[3, 3]
  CHECK(values_of<float>(v) == std::vector<float>{16, 18});
  v.fill_(0.5);
  CHECK(values_of<float>(c)[16] == 0.5f);
  CHECK(values_of<float>(c)[18] == 0.5f);
  CHECK(values_of<float>(c)[17] == 17.f);
  c.zero_();
  CHECK(values_of<float>(v) == std::vector<float>{0, 0});

  // Random fills through a stepped view draw what a contiguous tensor of that shape draws.
  Tensor d = zeros({3, 6});
  sorix::Generator g1(5), g2(5);
  d.slice(1, 0, 6, 2).uniform_(0.0, 1.0, &g1);
  Tensor ref = zeros({3, 3}).uniform_(0.0, 1.0, &g2);
  CHECK(bit_identical(d.slice(1, 0, 6, 2), ref));
  CHECK(values_of<float>(d.slice(1, 1, 6, 2)) == std::vector<float>(9, 0.f));

  // Overlapping source and destination in one storage: the copy reads the old values.
  Tensor e = iota({5});
  e.slice(0, 1, 5).copy_(e.slice(0, 0, 4));
  CHECK(values_of<float>(e) == std::vector<float>{0, 0, 1, 2, 3});

  // data<T>(): an xtensor adaptor over the strided memory; writes land.
  Tensor f = iota({2, 3});
  auto ft = f.t().data<float>();
  CHECK(ft(2, 1) == 5.f);
  ft(0, 1) = 42.f;
  CHECK(values_of<float>(f)[3] == 42.f);
  CHECK_THROWS_AS(f.t().data<double>(), std::invalid_argument);
}

TEST_CASE("reshape copies only when the strides forbid a view; view refuses; contiguous copies when needed",
          "[views]") {
  Tensor a = iota({3, 4});
  Tensor t = a.t();
  Tensor r = t.reshape({12});
  CHECK_FALSE(shares_storage(r, a));
  CHECK(values_of<float>(r) == std::vector<float>{0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11});
  const std::string m = message_of([&] { t.view({12}); });
  CHECK(contains(m, "view"));
  CHECK(contains(m, "reshape"));
  // Merging dims that stay contiguous is a view even on a non-contiguous tensor.
  Tensor sl = iota({4, 2, 3}).slice(0, 0, 4, 2);  // [2, 2, 3], strides [12, 3, 1]
  CHECK(shares_storage(sl.view({2, 6}), sl));
  CHECK(a.contiguous().is_same(a));
  Tensor c = t.contiguous();
  CHECK(c.is_contiguous());
  CHECK_FALSE(shares_storage(c, a));
  CHECK(bit_identical(c, t));
  CHECK(t.clone().is_contiguous());
}

TEST_CASE("bad view arguments throw clear errors", "[views]") {
  Tensor a = iota({3, 4});
  const std::string m1 = message_of([&] { a.slice(1, 0, 4, -1); });
  CHECK(contains(m1, "slice"));
  CHECK(contains(m1, "negative steps"));
  CHECK_THROWS_AS(a.slice(0, 0, 3, 0), std::invalid_argument);
  const std::string m2 = message_of<std::out_of_range>([&] { a.select(1, 4); });
  CHECK(contains(m2, "select"));
  CHECK(contains(m2, "[-4, 4)"));
  CHECK_THROWS_AS(a.narrow(0, 2, 2), std::out_of_range);
  CHECK_THROWS_AS(a.unfold(1, 5, 1), std::invalid_argument);
  CHECK_THROWS_AS(a.unfold(1, 2, 0), std::invalid_argument);
  const std::string m3 = message_of<std::out_of_range>([&] { a.as_strided({3, 4}, {4, 2}); });
  CHECK(contains(m3, "as_strided"));
  CHECK_THROWS_AS(a.as_strided({2}, {-1}), std::invalid_argument);
  // An expanded view cannot be written elementwise.
  Tensor e = iota({3}).expand({2, 3});
  const std::string m4 = message_of([&] { e.add_(1.0); });
  CHECK(contains(m4, "add_"));
  CHECK(contains(m4, "single memory location"));
  CHECK_THROWS_AS(e.fill_(0.0), std::invalid_argument);
  CHECK_THROWS_AS(iota({5}).unfold(0, 3, 1).zero_(), std::invalid_argument);
}

TEST_CASE("stride-0 expand and other views are read correctly by every kernel family", "[views]") {
  // Each op on a view must equal the op on the view's contiguous copy, bit for bit.
  Tensor base = randn_f64({3, 1}, 4, false).to(sorix::float32);
  Tensor e = base.expand({2, 3, 5});
  Tensor t = randn_f64({5, 3}, 5, false).to(sorix::float32).t();  // [3, 5], transposed
  Tensor s = randn_f64({3, 10}, 6, false).to(sorix::float32).slice(1, 0, 10, 2);  // [3, 5], stepped
  for (const Tensor& v : {e, t, s}) {
    const Tensor c = v.contiguous();
    REQUIRE(bit_identical(v, c));
    CHECK(bit_identical(v.exp(), c.exp()));
    CHECK(bit_identical(v.tanh(), c.tanh()));
    CHECK(bit_identical(v.relu(), c.relu()));
    CHECK(bit_identical(v.abs().sqrt(), c.abs().sqrt()));
    CHECK(bit_identical(v + v, c + c));
    CHECK(bit_identical(v * 2.0 - c, c * 2.0 - c));
    CHECK(bit_identical(v.gt(0.1), c.gt(0.1)));
    CHECK(bit_identical(v.pow(2.0), c.pow(2.0)));
    CHECK(bit_identical(v.sum(), c.sum()));
    CHECK(bit_identical(v.sum({-1}), c.sum({-1})));
    CHECK(bit_identical(v.mean({0}, true), c.mean({0}, true)));
    CHECK(bit_identical(v.max(), c.max()));
    CHECK(bit_identical(std::get<0>(v.max(-1)), std::get<0>(c.max(-1))));
    CHECK(bit_identical(v.argmin(0), c.argmin(0)));
    CHECK(bit_identical(v.softmax(-1), c.softmax(-1)));
    CHECK(bit_identical(v.log_softmax(0), c.log_softmax(0)));
    CHECK(bit_identical(v.to(sorix::float64), c.to(sorix::float64)));
    CHECK(bit_identical(v.clamp(-0.5, 0.5), c.clamp(-0.5, 0.5)));
    CHECK(bit_identical(sorix::where(v.gt(0.0), v, 0.0), sorix::where(c.gt(0.0), c, 0.0)));
    CHECK(bit_identical(sorix::cat({v, c}, -1), sorix::cat({c, c}, -1)));
    CHECK(bit_identical(v.index_select(-1, sorix::tensor({4, 0})), c.index_select(-1, sorix::tensor({4, 0}))));
    CHECK(sorix::to_string(v) == sorix::to_string(c));
    const Tensor w = randn_f64({5, 4}, 7, false).to(sorix::float32);
    CHECK(bit_identical(sorix::matmul(v, w), sorix::matmul(c, w)));
    CHECK(bit_identical(sorix::matmul(w.t(), v.transpose(-1, -2)), sorix::matmul(w.t().contiguous(), c.transpose(-1, -2).contiguous())));
  }
  // Layers and losses.
  sorix::nn::Linear lin(5, 2);
  CHECK(bit_identical(lin.forward(t), lin.forward(t.contiguous())));
  const Tensor target = sorix::tensor({1, 0, 4});
  CHECK(bit_identical(sorix::nn::functional::cross_entropy(t, target), sorix::nn::functional::cross_entropy(t.contiguous(), target)));
}

TEST_CASE("gradients through view chains", "[views][grad]") {
  auto chain = [](const std::vector<Tensor>& in) {
    return in[0].t().slice(0, 1, 4, 2).unsqueeze(1).expand({2, 3, 3}).select(2, 1) * 2.0;
  };
  auto r1 = gradcheck(chain, {randn_f64({3, 5}, 1)});
  INFO(r1.message);
  CHECK(r1.ok);
  auto windows = [](const std::vector<Tensor>& in) { return in[0].unfold(1, 3, 1).sum({-1}) * in[0].narrow(1, 0, 4); };
  auto r2 = gradcheck(windows, {randn_f64({2, 6}, 2)});
  INFO(r2.message);
  CHECK(r2.ok);
  auto views = [](const std::vector<Tensor>& in) {
    const Tensor x = in[0];
    return x.view({4, 3}).permute({1, 0}).reshape({2, 6}).split(4, 1)[1].matmul(x.as_strided({2, 2}, {1, 3}, 1));
  };
  auto r3 = gradcheck(views, {randn_f64({12}, 3)});
  INFO(r3.message);
  CHECK(r3.ok);
  // Gradients of a slice land in the right places of the base's gradient.
  Tensor x = sorix::zeros({3, 4}, sorix::float64).requires_grad_();
  x.slice(1, 1, 4, 2).sum().backward();
  CHECK(values_of<double>(x.grad()) == std::vector<double>{0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1});
  CHECK(x.grad().is_contiguous());
  // Second derivatives through a view.
  auto second = [](const std::vector<Tensor>& in) {
    Tensor y = (in[0].t()[1] * in[0].t()[1]).sum();
    return sorix::autograd::grad({y}, {in[0]}, {}, true, std::nullopt, true)[0];
  };
  auto r4 = gradcheck(second, {randn_f64({2, 3}, 4)});
  INFO(r4.message);
  CHECK(r4.ok);
}

TEST_CASE("in-place ops on views of non-leaf tensors rewrite the base's history (CopySlices)", "[views][grad]") {
  Tensor x = sorix::tensor({1.0, 2.0, 3.0, 4.0}, true);
  Tensor y = x * 2.0;
  y.slice(0, 0, 2).mul_(3.0);
  CHECK(y.grad_fn() != nullptr);
  CHECK(values_of<double>(y) == std::vector<double>{6, 12, 6, 8});
  y.sum().backward();
  CHECK(values_of<double>(x.grad()) == std::vector<double>{6, 6, 2, 2});

  // Values copied into a view of a tensor without history: the gradient reaches the source.
  Tensor w = sorix::tensor({1.0, 2.0}, true);
  Tensor buf = sorix::zeros({3, 2}, sorix::float64);
  buf[1].copy_(w);
  CHECK(buf.requires_grad());
  (buf * sorix::tensor({{1.0, 1.0}, {5.0, 7.0}, {1.0, 1.0}})).sum().backward();
  CHECK(values_of<double>(w.grad()) == std::vector<double>{5, 7});

  // Overwritten values send nothing back; the rest of the base still does.
  Tensor x2 = sorix::tensor({1.0, 2.0, 3.0}, true);
  Tensor y2 = x2 * x2;
  y2.narrow(0, 1, 1).fill_(0.0);
  y2.sum().backward();
  CHECK(values_of<double>(x2.grad()) == std::vector<double>{2, 0, 6});

  // Another view taken before the write sees the new history.
  Tensor x3 = sorix::tensor({1.0, 2.0}, true);
  Tensor y3 = x3 * 1.0;
  Tensor earlier = y3[1];
  y3[1].mul_(5.0);
  earlier.backward();
  CHECK(values_of<double>(x3.grad()) == std::vector<double>{0, 5});

  // As a whole function: gradcheck with in-place writes through views of a clone.
  auto f = [](const std::vector<Tensor>& in) {
    Tensor y = in[0].clone();
    y.t()[0].mul_(in[1]);
    y.slice(1, 1, 3).add_(in[0].narrow(1, 0, 2).exp());
    return y;
  };
  auto r = gradcheck(f, {randn_f64({3, 3}, 1), randn_f64({3}, 2)});
  INFO(r.message);
  CHECK(r.ok);
}

TEST_CASE("views of leaves that require grad, and the shared version counter", "[views][grad]") {
  Tensor leaf = sorix::zeros({2, 3}, sorix::float64).requires_grad_();
  const std::string m = message_of<std::runtime_error>([&] { leaf[0].fill_(1.0); });
  CHECK(contains(m, "fill_"));
  CHECK(contains(m, "view of a leaf"));
  {
    sorix::NoGradGuard no_grad;
    leaf[0].fill_(1.0);  // an optimizer-style update through a view
  }
  CHECK(values_of<double>(leaf) == std::vector<double>{1, 1, 1, 0, 0, 0});

  // A view shares the base's version counter: changing the base through a view after an op
  // saved it is caught at backward.
  Tensor x = sorix::tensor({1.0, 2.0, 3.0}, true);
  Tensor y = x * 1.0;
  Tensor z = y.pow(2.0);  // saves y
  const auto before = y.version();
  y.slice(0, 0, 1).add_(1.0);
  CHECK(y.version() == before + 1);
  CHECK(y[2].version() == y.version());
  const std::string m2 = message_of<std::runtime_error>([&] { z.sum().backward(); });
  CHECK(contains(m2, "modified by an in-place operation"));
}

TEST_CASE("the strided copy is bit-identical at any thread count", "[views][threads]") {
  const Tensor src = randn_f64({67, 129, 3}, 9, false);
  const std::vector<Tensor> views{src.permute({2, 0, 1}), src.transpose(0, 1), src.slice(1, 1, 129, 3),
                                  src.select(2, 1).t(), src.unfold(1, 5, 4),
                                  src.select(2, 0).unsqueeze(0).expand({3, 67, 129})};
  for (const Tensor& v : views) {
    auto runs = at_thread_counts({1, 2, 3, 8}, [&] { return v.contiguous(); });
    const std::vector<double> ref = values_of<double>(v);
    for (const Tensor& r : runs) CHECK(values_of<double>(r) == ref);
  }
  // Writes through a strided destination too.
  auto writes = at_thread_counts({1, 2, 3, 8}, [&] {
    Tensor dst = sorix::zeros({129, 67}, sorix::float64);
    dst.t().copy_(src.select(2, 2));
    return dst;
  });
  for (const Tensor& r : writes) CHECK(bit_identical(r, writes[0]));
  CHECK(bit_identical(writes[0].t(), src.select(2, 2)));
}

TEST_CASE("datasets take views; optimizers refuse non-contiguous parameters", "[views]") {
  // A TensorDataset built from a transposed view batches its logical rows.
  Tensor x = iota({3, 4}).t();  // rows [0, 4, 8], [1, 5, 9], ...
  Tensor y = sorix::tensor({0, 1, 2, 3});
  sorix::data::TensorDataset ds(x, y);
  const std::int64_t idx[] = {3, 1};
  sorix::data::Batch b = ds.get_batch(idx, 2);
  CHECK(values_of<float>(b.data) == std::vector<float>{3, 7, 11, 1, 5, 9});
  CHECK(values_of<float>(ds.get(2).data) == std::vector<float>{2, 6, 10});
  Tensor w = iota({2, 3}).t().detach().requires_grad_();
  const std::string m = message_of([&] { sorix::optim::SGD(std::vector<Tensor>{w}, 0.1); });
  CHECK(contains(m, "not contiguous"));
}

TEST_CASE("edge cases of views and in-place ops", "[views][grad]") {
  // copy_ never makes the source share the destination's memory.
  Tensor a = zeros({3}), b = iota({3}).clone();
  a.copy_(b);
  a.add_(1.0);
  CHECK(values_of<float>(b) == std::vector<float>{0, 1, 2});
  CHECK(values_of<float>(a) == std::vector<float>{1, 2, 3});
  // A random fill overwrites history: no gradient reaches the old values.
  Tensor x = sorix::tensor({1.0, 2.0, 3.0}, true);
  Tensor y = x * 2.0;
  y.narrow(0, 0, 2).uniform_();
  y.sum().backward();
  CHECK(values_of<double>(x.grad()) == std::vector<double>{0, 0, 2});
  // A view made without grad mode, changed with it: refused, as PyTorch.
  Tensor x2 = sorix::tensor({1.0, 2.0}, true);
  Tensor y2 = x2 * 3.0;
  Tensor v;
  {
    sorix::NoGradGuard no_grad;
    v = y2[0];
  }
  const std::string m = message_of<std::runtime_error>([&] { v.mul_(2.0); });
  CHECK(contains(m, "no-grad mode"));
  CHECK(values_of<double>(y2) == std::vector<double>{3, 6});  // unchanged
  // Views of empty tensors stay inside the (empty) buffer; reshape's copy is not a view.
  Tensor e = zeros({2, 0}).select(0, 1);
  CHECK(e.storage_offset() == 0);
  Tensor r = iota({3, 4}).t().reshape({12});
  CHECK_FALSE(r.is_view());
  // as_strided with autograd must stay inside the input's own elements.
  Tensor leaf = sorix::zeros({6}, sorix::float64).requires_grad_();
  Tensor part = leaf * 1.0;
  CHECK_THROWS_AS(part.narrow(0, 2, 2).as_strided({4}, {1}, 0), std::invalid_argument);
  // In-place ops write into the existing memory: a pointer taken before stays valid.
  Tensor q = iota({4}).clone();
  const float* before = q.data_ptr<float>();
  q.mul_(2.0);
  q.add_(q);
  CHECK(q.data_ptr<float>() == before);
  CHECK(before[3] == 12.f);
  // Scalars in where follow the arithmetic operators' dtype rule.
  CHECK(sorix::where(sorix::tensor({true, false}), 0.5, sorix::tensor({3, 4})).dtype() == sorix::float32);
}
