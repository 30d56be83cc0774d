// sorix::clustering::Kmeans: against scikit-learn 1.2 with given initial centers
// (tests/data/toolbox_reference.txt), k-means++ reproducibility and quality, bit-identical
// results at 1, 2 and 3 threads, state saving, errors.
#include <catch2/catch.hpp>

#include <algorithm>
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
using toolbox_ref::close;
using toolbox_ref::same_bits;
using toolbox_ref::scalar;
using toolbox_ref::sk;
namespace C = sorix::clustering;

TEST_CASE("Kmeans with given initial centers matches scikit-learn", "[toolbox][clustering]") {
  const Tensor x = sk("km.x"), x_new = sk("km.x_new");
  for (const char* name : {"given", "empty", "max_iter", "tol"}) {
    for (const char* dt : {"float64", "float32"}) {
      const std::string key = std::string("km.") + name + "." + dt;
      INFO(key);
      const sorix::Dtype dtype = std::string(dt) == "float32" ? sorix::float32 : sorix::float64;
      const double tol = dtype == sorix::float32 ? 2e-5 : 1e-10;
      auto o = C::KmeansOptions(4).init(sk(key + ".init").to(dtype));
      if (std::string(name) == "max_iter") o.max_iter(2);
      if (std::string(name) == "tol") o.tol(0.5);
      C::Kmeans km(o);
      const Tensor labels = km.fit_predict(x.to(dtype));
      CHECK(km.centroids().dtype() == dtype);
      check_close(km.centroids(), sk(key + ".centers"), "centers", tol);
      CHECK(same_bits(labels, sk(key + ".labels")));
      CHECK(close(km.inertia(), scalar(key + ".inertia"), tol));
      CHECK(km.n_iter() == sk(key + ".n_iter").item<std::int64_t>());
      CHECK(same_bits(km.predict(x_new.to(dtype)), sk(key + ".predict_new")));
      check_close(km.transform(x_new.to(dtype)), sk(key + ".transform_new"), "transform", tol);
      CHECK(close(km.inertia(x_new.to(dtype)), scalar(key + ".score_new"), tol));
    }
  }
}

TEST_CASE("Kmeans k-means++: reproducible from a seed, finds scikit-learn's optimum", "[toolbox][clustering]") {
  const Tensor x = sk("km.sep.x");
  sorix::Generator g1(11), g2(11), g3(12);
  C::Kmeans a(C::KmeansOptions(3).n_init(3)), b(C::KmeansOptions(3).n_init(3)), c(C::KmeansOptions(3).n_init(3));
  a.fit(x, &g1);
  b.fit(x, &g2);
  c.fit(x, &g3);
  CHECK(same_bits(a.centroids(), b.centroids()));
  CHECK(same_bits(a.labels(), b.labels()));
  CHECK(g1.offset() == g2.offset());
  // Well-separated blobs: one optimum, whatever the seed.
  for (auto* km : {&a, &c}) {
    CHECK(close(km->inertia(), scalar("km.sep.inertia"), 1e-10));
    std::vector<std::int64_t> order{0, 1, 2};
    const Tensor cen = km->centroids();
    std::sort(order.begin(), order.end(), [&](auto i, auto j) { return cen.data_ptr<double>()[i * 2] < cen.data_ptr<double>()[j * 2]; });
    check_close(cen.index_select(0, sorix::tensor({order[0], order[1], order[2]})), sk("km.sep.centers"), "centers", 1e-10);
  }
  // Random init (n_init 10 by default) reaches it too.
  sorix::Generator g4(5);
  C::Kmeans r(C::KmeansOptions(3).init(C::KmeansInit::Random));
  CHECK(r.options().n_init() == 10);
  r.fit(x, &g4);
  CHECK(close(r.inertia(), scalar("km.sep.inertia"), 1e-10));
}

TEST_CASE("Kmeans gives the same bits at 1, 2 and 3 threads", "[toolbox][clustering][determinism]") {
  // Large enough that the products, sums and argmins run as parallel tasks: 24000 x 8, k = 6.
  sorix::Generator data_gen(99);
  const Tensor centers = sorix::randn({6, 8}, sorix::float32, &data_gen) * 4.0;
  const Tensor which = sorix::randint(0, 6, {24000}, sorix::int64, &data_gen);
  const Tensor x = (centers.index_select(0, which) + sorix::randn({24000, 8}, sorix::float32, &data_gen)).contiguous();
  const int before = sorix::parallel::get_num_threads();
  struct Result {
    Tensor centroids, labels, distances;
    double inertia;
    std::int64_t n_iter;
  };
  std::vector<Result> results;
  for (int threads : {1, 2, 3}) {
    sorix::parallel::set_num_threads(threads);
    sorix::Generator g(2024);
    C::Kmeans km(C::KmeansOptions(6).n_init(2).tol(0));
    km.fit(x, &g);
    results.push_back({km.centroids(), km.labels(), km.transform(x.slice(0, 0, 5000)), km.inertia(), km.n_iter()});
  }
  sorix::parallel::set_num_threads(before);
  for (const auto& r : results) {
    CHECK(same_bits(r.centroids, results[0].centroids));
    CHECK(same_bits(r.labels, results[0].labels));
    CHECK(same_bits(r.distances, results[0].distances));
    CHECK(r.inertia == results[0].inertia);
    CHECK(r.n_iter == results[0].n_iter);
  }
  CHECK(results[0].n_iter > 1);
}

TEST_CASE("Kmeans state saves and loads; errors name the value", "[toolbox][clustering]") {
  const Tensor x = sk("km.x");
  sorix::Generator g(1);
  C::Kmeans km(4);
  km.fit(x, &g);
  sorix::testing::TempDir dir("sorix_toolbox_km_");
  sorix::save(km, dir.file("km.sorix"));
  C::Kmeans back(4);
  sorix::load(back, dir.file("km.sorix"));
  CHECK(same_bits(back.centroids(), km.centroids()));
  CHECK(same_bits(back.predict(sk("km.x_new")), km.predict(sk("km.x_new"))));
  CHECK(back.inertia() == km.inertia());
  C::Kmeans three(3);
  CHECK(contains(message_of([&] { sorix::load(three, dir.file("km.sorix")); }), "n_clusters=4, but this object has n_clusters=3"));

  const double nan = std::numeric_limits<double>::quiet_NaN();
  CHECK(contains(message_of([&] { C::Kmeans(8).fit(x.slice(0, 0, 5)); }), "Kmeans.fit: n_samples=5 should be >= n_clusters=8"));
  CHECK(contains(message_of([&] { C::Kmeans(2).fit(sorix::tensor({{1.0, nan}, {2.0, 3.0}})); }), "Kmeans.fit: x contains NaN"));
  CHECK(contains(message_of([&] { C::Kmeans(2).fit(sorix::zeros({0, 3})); }), "Kmeans.fit: x is empty"));
  CHECK(contains(message_of([] { C::Kmeans(0); }), "n_clusters must be at least 1, got 0"));
  CHECK(contains(message_of([] { C::Kmeans(C::KmeansOptions(2).tol(-1)); }), "tol must be >= 0, got -1"));
  CHECK(contains(message_of([] { C::Kmeans(C::KmeansOptions(2).n_init(0)); }), "n_init must be at least 1, got 0"));
  CHECK(contains(message_of([] { C::Kmeans(C::KmeansOptions(3).init(sorix::zeros({2, 3}))); }), "init has 2 centers, but n_clusters is 3"));
  CHECK(contains(message_of([&] { C::Kmeans(C::KmeansOptions(2).init(sorix::zeros({2, 2}))).fit(x); }), "init has 2 features, but x has 3"));
  CHECK(contains(message_of([&] { km.predict(sorix::zeros({2, 2})); }), "Kmeans.predict: x has 2 features, but the centroids have 3"));
  CHECK(contains(message_of<std::runtime_error>([] { C::Kmeans(2).predict(sorix::zeros({2, 2})); }), "not fitted yet"));
}
