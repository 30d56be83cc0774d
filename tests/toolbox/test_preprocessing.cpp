// sorix::preprocessing against scikit-learn 1.2 (tests/data/toolbox_reference.txt), state saving
// through the checkpoint format, and the errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include <sorix/sorix.hpp>

#include "tests/support/errors.hpp"
#include "tests/support/temp_files.hpp"
#include "tests/toolbox/reference.hpp"

using sorix::Tensor;
using sorix::testing::contains;
using sorix::testing::message_of;
using toolbox_ref::check_close;
using toolbox_ref::sk;
namespace P = sorix::preprocessing;

namespace {

std::shared_ptr<P::Transformer> make(const std::string& name) {
  if (name == "minmax") return std::make_shared<P::MinMaxScaler>();
  if (name == "minmax_range") return std::make_shared<P::MinMaxScaler>(P::MinMaxScalerOptions().feature_range(-1, 2));
  if (name == "minmax_clip")
    return std::make_shared<P::MinMaxScaler>(P::MinMaxScalerOptions().feature_range(-1, 2).clip(true));
  if (name == "std") return std::make_shared<P::StandardScaler>();
  if (name == "std_nomean") return std::make_shared<P::StandardScaler>(P::StandardScalerOptions().with_mean(false));
  if (name == "std_nostd") return std::make_shared<P::StandardScaler>(P::StandardScalerOptions().with_std(false));
  if (name == "robust") return std::make_shared<P::RobustScaler>();
  if (name == "robust_range")
    return std::make_shared<P::RobustScaler>(P::RobustScalerOptions().quantile_range(10, 90));
  return std::make_shared<P::RobustScaler>(P::RobustScalerOptions().with_centering(false));
}

const char* kScalers[] = {"minmax", "minmax_range", "minmax_clip", "std",          "std_nomean",
                          "std_nostd", "robust",    "robust_range", "robust_nocenter"};

bool has(const std::string& key) { return toolbox_ref::table().count(key) != 0; }

}  // namespace

TEST_CASE("scalers match scikit-learn: fit_transform, transform, inverse_transform, attributes", "[toolbox][preprocessing]") {
  const Tensor x_new = sk("pp.x_new");
  for (const char* data : {"pp", "pp_const", "pp_even"}) {
    const Tensor x = sk(std::string(data) + ".x");
    for (const char* name : kScalers) {
      const std::string key = std::string(data) + "." + name;
      INFO(key);
      auto sc = make(name);
      check_close(sc->fit_transform(x), sk(key + ".fit_transform"), key + " fit_transform");
      check_close(sc->transform(x_new), sk(key + ".transform_new"), key + " transform");
      check_close(sc->inverse_transform(x_new), sk(key + ".inverse_new"), key + " inverse");
      // Round trip.
      check_close(sc->inverse_transform(sc->transform(x)), x, key + " round trip", 1e-11);
      if (auto* m = dynamic_cast<P::MinMaxScaler*>(sc.get())) {
        check_close(m->data_min(), sk(key + ".data_min_"), "data_min_");
        check_close(m->data_range(), sk(key + ".data_range_"), "data_range_");
        check_close(m->scale(), sk(key + ".scale_"), "scale_");
        check_close(m->min(), sk(key + ".min_"), "min_");
      } else if (auto* s = dynamic_cast<P::StandardScaler*>(sc.get())) {
        check_close(s->mean(), sk(key + ".mean_"), "mean_");
        if (has(key + ".var_")) check_close(s->var(), sk(key + ".var_"), "var_");
        if (has(key + ".scale_")) check_close(s->scale(), sk(key + ".scale_"), "scale_");
      } else if (auto* r = dynamic_cast<P::RobustScaler*>(sc.get())) {
        if (has(key + ".center_")) check_close(r->center(), sk(key + ".center_"), "center_");
        check_close(r->scale(), sk(key + ".scale_"), "scale_");
      }
    }
  }
  check_close(P::column_percentile(sk("pp.x"), 30), sk("pp.p30"), "percentile 30");
  check_close(P::column_percentile(sk("pp_even.x"), 62.5), sk("pp.p62_5"), "percentile 62.5");
  check_close(P::column_median(sk("pp_even.x")), sk("pp.median_even"), "median (even)");
}

TEST_CASE("scalers keep float32 and take int64 as float64", "[toolbox][preprocessing]") {
  const Tensor x = sk("pp.x");
  P::StandardScaler s;
  const Tensor y32 = s.fit_transform(x.to(sorix::float32));
  CHECK(y32.dtype() == sorix::float32);
  check_close(y32, sk("pp.std.fit_transform"), "float32", 1e-5);
  P::MinMaxScaler m;
  const Tensor yi = m.fit_transform(sorix::tensor({{1, 10}, {3, 20}, {2, 40}}));
  CHECK(yi.dtype() == sorix::float64);
  check_close(yi, sorix::tensor({{0.0, 0.0}, {1.0, 1.0 / 3.0}, {0.5, 1.0}}), "int64");
}

TEST_CASE("scaler state saves and loads with the checkpoint format", "[toolbox][preprocessing]") {
  sorix::testing::TempDir dir("sorix_toolbox_pp_");
  const Tensor x = sk("pp.x"), x_new = sk("pp.x_new");
  for (const char* name : kScalers) {
    INFO(name);
    auto a = make(name);
    a->fit(x);
    const std::string path = dir.file(std::string(name) + ".sorix");
    sorix::save_state(a->state_dict(), path);
    auto b = make(name);
    b->load_state_dict(sorix::load_state(path));
    CHECK(toolbox_ref::same_bits(a->transform(x_new), b->transform(x_new)));
    CHECK(toolbox_ref::same_bits(a->inverse_transform(x_new), b->inverse_transform(x_new)));
  }
  // sorix::save / sorix::load through the StateDictSerializable overloads.
  P::RobustScaler r;
  r.fit(x);
  sorix::save(r, dir.file("robust.sorix"));
  P::RobustScaler r2;
  sorix::load(r2, dir.file("robust.sorix"));
  CHECK(toolbox_ref::same_bits(r.center(), r2.center()));
  // Options must match; nothing changes on a refused load.
  P::StandardScaler other(P::StandardScalerOptions().with_mean(false));
  P::StandardScaler fitted;
  fitted.fit(x);
  CHECK(contains(message_of([&] { other.load_state_dict(fitted.state_dict()); }),
                 "the state was saved with with_mean=1, but this object has with_mean=0"));
  CHECK_FALSE(other.fitted());
  sorix::StateDict extra = fitted.state_dict();
  extra.insert("bogus", sorix::zeros({1}));
  CHECK(contains(message_of([&] { P::StandardScaler().load_state_dict(extra); }), "unexpected entries in the state: 'bogus'"));
  sorix::StateDict bad;
  for (const auto& [k, t] : fitted.state_dict()) bad.insert(k, k == "var_" ? sorix::zeros({2}, sorix::float64) : t);
  CHECK(contains(message_of([&] { P::StandardScaler().load_state_dict(bad); }), "entry 'var_' has shape [2], expected [3]"));
  CHECK(contains(message_of<std::runtime_error>([] { P::MinMaxScaler().state_dict(); }), "not fitted yet"));
}

TEST_CASE("scalers: errors name the class, the method and the value", "[toolbox][preprocessing]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  P::MinMaxScaler m;
  CHECK(contains(message_of<std::runtime_error>([&] { m.transform(sorix::ones({2, 2})); }),
                 "MinMaxScaler.transform: this MinMaxScaler is not fitted yet"));
  CHECK(contains(message_of([&] { m.fit(sorix::tensor({{1.0, nan}, {2.0, 3.0}})); }),
                 "MinMaxScaler.fit: x contains NaN (element 1"));
  CHECK(contains(message_of([&] { m.fit(sorix::zeros({0, 3})); }), "MinMaxScaler.fit: x is empty"));
  CHECK(contains(message_of([&] { m.fit(sorix::zeros({3})); }), "must be 2-D [samples, features], got shape [3]"));
  m.fit(sorix::ones({4, 3}));
  CHECK(contains(message_of([&] { m.transform(sorix::ones({4, 2})); }), "x has 2 features, but this MinMaxScaler was fitted on 3"));
  CHECK(contains(message_of([] { P::MinMaxScaler(P::MinMaxScalerOptions().feature_range(1, 0)); }),
                 "must be smaller than its maximum, got (1, 0)"));
  CHECK(contains(message_of([] { P::RobustScaler(P::RobustScalerOptions().quantile_range(80, 20)); }),
                 "invalid quantile_range (80, 20)"));
  CHECK(contains(message_of<std::logic_error>([] {
                   P::ColumnTransformer ct({{"a", P::StandardScaler(), {0}}});
                   ct.fit(sorix::ones({2, 1}));
                   ct.inverse_transform(sorix::ones({2, 1}));
                 }),
                 "inverse_transform is not available"));
}

TEST_CASE("OneHotEncoder matches scikit-learn (integers and strings)", "[toolbox][preprocessing]") {
  P::OneHotEncoder enc(P::OneHotEncoderOptions().handle_unknown("ignore"));
  const Tensor x = sk("ohe.x");
  check_close(enc.fit_transform(x), sk("ohe.fit_transform"), "fit_transform");
  for (std::size_t j = 0; j < 3; ++j) {
    const Tensor want = sk("ohe.categories." + std::to_string(j));
    REQUIRE(static_cast<std::int64_t>(enc.categories()[j].size()) == want.numel());
    for (std::int64_t k = 0; k < want.numel(); ++k) CHECK(enc.categories()[j][k] == want.data_ptr<std::int64_t>()[k]);
  }
  check_close(enc.transform(sk("ohe.x_new")), sk("ohe.transform_new"), "unknown ignored");
  CHECK(toolbox_ref::same_bits(enc.inverse_transform(enc.transform(x)), x));
  CHECK(contains(message_of([&] { enc.inverse_transform(enc.transform(sk("ohe.x_new"))); }),
                 "row 1 has all zeros in the block of column 0"));
  // Floating columns of integers encode like int64 codes.
  check_close(enc.transform(x.to(sorix::float64)), sk("ohe.fit_transform"), "float codes");
  CHECK(enc.get_feature_names_out()[0] == "x0_-1");
  CHECK(enc.get_feature_names_out({"a", "b", "c"}).back() == "c_100");

  P::OneHotEncoder strict;
  strict.fit(x);
  CHECK(contains(message_of([&] { strict.transform(sk("ohe.x_new")); }),
                 "OneHotEncoder.transform: unknown category 8 in column 0 (row 1); known categories: [-1, 3, 7, 10]"));
  CHECK(contains(message_of([&] { strict.fit(sorix::tensor({0.5, 1.0}).reshape({2, 1})); }), "column 0 holds 0.5 in row 0, not an integer category"));

  const P::StringColumns cols{{"red", "green", "blue", "red", "Zed"}, {"b", "a", "b", "c", "a"}};
  P::OneHotEncoder senc;
  check_close(senc.fit_transform(cols), sk("ohe_str.fit_transform"), "strings");
  CHECK(senc.string_categories()[0] == std::vector<std::string>{"Zed", "blue", "green", "red"});
  CHECK(senc.inverse_transform_strings(senc.transform(cols)) == cols);
  CHECK(contains(message_of([&] { senc.transform(P::StringColumns{{"red"}, {"z"}}); }), "unknown category 'z' in column 1"));
  CHECK(contains(message_of([&] { senc.transform(x); }), "fitted on strings; pass StringColumns"));
  CHECK(contains(message_of([&] { senc.transform(P::StringColumns{{"red", "blue"}, {"a"}}); }),
                 "column 0 has 2, column 1 has 1"));

  sorix::testing::TempDir dir("sorix_toolbox_ohe_");
  sorix::save(senc, dir.file("s.sorix"));
  sorix::save(enc, dir.file("i.sorix"));
  P::OneHotEncoder s2, i2(P::OneHotEncoderOptions().handle_unknown(P::HandleUnknown::Ignore));
  sorix::load(s2, dir.file("s.sorix"));
  sorix::load(i2, dir.file("i.sorix"));
  CHECK(s2.string_categories() == senc.string_categories());
  CHECK(toolbox_ref::same_bits(i2.transform(sk("ohe.x_new")), enc.transform(sk("ohe.x_new"))));
  CHECK(contains(message_of([&] { sorix::load(s2, dir.file("i.sorix")); }), "handle_unknown=1, but this object has handle_unknown=0"));
}

TEST_CASE("ColumnTransformer matches scikit-learn, saves and loads all or nothing", "[toolbox][preprocessing]") {
  const Tensor x = sk("ct.x");
  P::ColumnTransformer ct({{"num", P::StandardScaler(), {0, 2}}, {"cat", P::OneHotEncoder(), {1}}},
                          P::Remainder::Passthrough);
  check_close(ct.fit_transform(x), sk("ct.fit_transform"), "passthrough");
  CHECK(ct.remainder_columns() == std::vector<std::int64_t>{3});
  CHECK(ct.n_features_out() == 5);
  check_close(ct.transform(x), sk("ct.fit_transform"), "transform");
  P::ColumnTransformer drop({{"rob", P::RobustScaler(), {3}}, {"mm", P::MinMaxScaler(), {0, 3}}});
  check_close(drop.fit_transform(x), sk("ct_drop.fit_transform"), "drop");
  CHECK(drop.fit_transform(x.to(sorix::float32)).dtype() == sorix::float32);

  sorix::testing::TempDir dir("sorix_toolbox_ct_");
  sorix::save(ct, dir.file("ct.sorix"));
  P::ColumnTransformer ct2({{"num", P::StandardScaler(), {0, 2}}, {"cat", P::OneHotEncoder(), {1}}},
                           P::Remainder::Passthrough);
  sorix::load(ct2, dir.file("ct.sorix"));
  CHECK(toolbox_ref::same_bits(ct2.transform(x), ct.transform(x)));
  // A copy is deep: refitting the copy leaves the original alone.
  P::ColumnTransformer copy = ct;
  copy.fit(x * 3.0);
  CHECK(toolbox_ref::same_bits(ct.transform(x), ct2.transform(x)));
  // Other columns, or a part that refuses its state: an error, and nothing changed.
  P::ColumnTransformer cols({{"num", P::StandardScaler(), {0, 3}}, {"cat", P::OneHotEncoder(), {1}}}, P::Remainder::Passthrough);
  CHECK(contains(message_of([&] { sorix::load(cols, dir.file("ct.sorix")); }),
                 "transformer 'num' was saved with columns [0, 2], this one has [0, 3]"));
  P::ColumnTransformer refuses({{"num", P::StandardScaler(), {0, 2}},
                                {"cat", P::OneHotEncoder(P::OneHotEncoderOptions().dtype(sorix::float32)), {1}}},
                               P::Remainder::Passthrough);
  CHECK(contains(message_of([&] { sorix::load(refuses, dir.file("ct.sorix")); }), "OneHotEncoder.load_state_dict"));
  CHECK_FALSE(refuses.named_transformer("num")->fitted());
  CHECK_FALSE(refuses.fitted());

  CHECK(contains(message_of([&] { P::ColumnTransformer({{"a.b", P::StandardScaler(), {0}}}); }), "contain no '.'"));
  CHECK(contains(message_of([&] { P::ColumnTransformer({{"a", P::StandardScaler(), {0}}, {"a", P::MinMaxScaler(), {1}}}); }),
                 "'a' is used twice"));
  CHECK(contains(message_of([&] { P::ColumnTransformer({{"a", P::StandardScaler(), {7}}}).fit(x); }),
                 "transformer 'a' names column 7, but x has 4 columns"));
  CHECK(contains(message_of([&] { ct.transform(x.slice(1, 0, 3)); }), "x has 3 features, but this ColumnTransformer was fitted on 4"));
}
