// Kmeans (sorix/toolbox/clustering.hpp): scikit-learn's Lloyd algorithm and greedy k-means++
// composed of the library's deterministic ops (matmul, sums, argmin, index_select); the serial
// loops (k-means++'s cumulative sum, empty-cluster relocation) run on one thread in a fixed
// order. So results are bit-identical at any thread count and on every CPU capability.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "toolbox/inputs.hpp"
#include "toolbox/state.hpp"
#include "sorix/autograd/grad_mode.hpp"
#include "sorix/autograd/ops.hpp"
#include "sorix/core/random.hpp"
#include "sorix/toolbox/clustering.hpp"

namespace sorix::clustering {
namespace {

const char* kFit = "Kmeans.fit";

std::vector<std::int64_t> int_values(const Tensor& t) {
  const Tensor c = t.contiguous();
  return std::vector<std::int64_t>(c.data_ptr<std::int64_t>(), c.data_ptr<std::int64_t>() + c.numel());
}

Tensor index_tensor(const std::vector<std::int64_t>& v) {
  Tensor t = empty({static_cast<std::int64_t>(v.size())}, Dtype::Int64);
  std::copy(v.begin(), v.end(), t.data_ptr<std::int64_t>());
  return t;
}

// x as a checked, contiguous floating matrix (int64 read as float64).
Tensor floating_input(const Tensor& x, const char* w) {
  toolbox_detail::check_matrix(x, w, "x");
  toolbox_detail::check_finite(x, w, "x");
  return (is_floating(x.dtype()) ? x : x.to(Dtype::Float64)).contiguous().detach();
}

// ||c||^2 - 2 x.c for every row of x and center: [n, k]; its argmin is the nearest center.
Tensor center_scores(const Tensor& x, const Tensor& c) { return c.square().sum({1}) - x.matmul(c.t()) * 2.0; }

// Squared Euclidean distances of every center (rows of c) to every row of x: [m, n], >= 0.
Tensor squared_distances(const Tensor& c, const Tensor& x, const Tensor& x_sq) {
  return (x_sq.unsqueeze(0) + c.square().sum({1}, true) - c.matmul(x.t()) * 2.0).clamp_min(0.0);
}

// [k, n] 0/1 in dtype: row j marks the samples labelled j.
Tensor one_hot(const Tensor& labels, std::int64_t k, Dtype dtype) {
  const Tensor ids = arange(0.0, static_cast<double>(k), 1.0, Dtype::Int64).unsqueeze(1);
  return labels.unsqueeze(0).eq(ids).to(dtype);
}

// scikit-learn's _relocate_empty_clusters_dense on the cluster sums: each empty cluster takes one
// of the samples farthest from their (old) centers, which leaves its own cluster.
template <class T>
void relocate_empty(const Tensor& x, const Tensor& old_centers, const std::vector<std::int64_t>& labels, Tensor& sums,
                    std::vector<T>& counts) {
  std::vector<std::size_t> empty_ids;
  for (std::size_t j = 0; j < counts.size(); ++j) {
    if (counts[j] == 0) empty_ids.push_back(j);
  }
  if (empty_ids.empty()) return;
  const Tensor dist = (x - old_centers.index_select(0, index_tensor(labels))).square().sum({1}).contiguous();
  const T* dp = dist.data_ptr<T>();
  std::vector<std::size_t> order(labels.size());
  std::iota(order.begin(), order.end(), std::size_t(0));
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return dp[a] > dp[b]; });
  const std::size_t d = static_cast<std::size_t>(x.size(1));
  const T* xp = x.data_ptr<T>();
  T* sp = sums.data_ptr<T>();
  for (std::size_t e = 0; e < empty_ids.size() && e < order.size(); ++e) {
    const std::size_t far = order[e], to = empty_ids[e];
    const std::size_t from = static_cast<std::size_t>(labels[far]);
    for (std::size_t f = 0; f < d; ++f) {
      sp[from * d + f] -= xp[far * d + f];
      sp[to * d + f] = xp[far * d + f];
    }
    counts[to] = 1;
    counts[from] -= 1;
  }
}

struct Run {
  Tensor centers, labels;
  double inertia = 0;
  std::int64_t n_iter = 0;
};

double sum_squares(const Tensor& v) { return v.square().to(Dtype::Float64).sum().item<double>(); }

// scikit-learn's _kmeans_single_lloyd on centered data.
template <class T>
Run lloyd(const Tensor& x, Tensor centers, std::int64_t max_iter, double tol) {
  const std::int64_t k = centers.size(0);
  const Dtype dt = x.dtype();
  std::vector<std::int64_t> labels_old;
  Tensor labels;
  bool strict = false;
  std::int64_t it = 0;
  for (; it < max_iter; ++it) {
    labels = center_scores(x, centers).argmin(1);
    const auto lab = int_values(labels);
    const Tensor hot = one_hot(labels, k, dt);
    Tensor sums = hot.matmul(x).contiguous();  // [k, d]: each center's sum, one chain in sample order
    const Tensor cnt = hot.sum({1}).contiguous();
    std::vector<T> counts(cnt.data_ptr<T>(), cnt.data_ptr<T>() + k);
    relocate_empty<T>(x, centers, lab, sums, counts);
    // scikit-learn multiplies by the reciprocal of the count (an emptied cluster keeps its sum).
    std::vector<double> inv(static_cast<std::size_t>(k));
    for (std::size_t j = 0; j < inv.size(); ++j) inv[j] = counts[j] > 0 ? static_cast<double>(T(1) / counts[j]) : 1.0;
    const Tensor new_centers = sums * tensor(inv, {k, 1}, dt);
    const double shift = sum_squares(new_centers - centers);
    centers = new_centers;
    if (lab == labels_old) {
      strict = true;
      break;
    }
    if (shift <= tol) break;
    labels_old = lab;
  }
  Run r;
  r.n_iter = it == max_iter ? max_iter : it + 1;
  if (!strict) labels = center_scores(x, centers).argmin(1);  // labels of the final centers
  r.centers = centers;
  r.labels = labels;
  r.inertia = sum_squares(x - centers.index_select(0, labels));
  return r;
}

// scikit-learn's greedy k-means++ (_kmeans_plusplus) with a sorix generator.
Tensor kmeans_plus_plus(const Tensor& x, const Tensor& x_sq, std::int64_t k, Generator& gen) {
  const std::int64_t n = x.size(0);
  const std::int64_t trials = 2 + static_cast<std::int64_t>(std::log(static_cast<double>(k)));
  std::vector<std::int64_t> chosen{randint(0, n, {1}, Dtype::Int64, &gen).item<std::int64_t>()};
  Tensor closest = squared_distances(x.index_select(0, index_tensor(chosen)), x, x_sq).contiguous();  // [1, n]
  double pot = closest.to(Dtype::Float64).sum().item<double>();
  std::vector<double> cum(static_cast<std::size_t>(n));
  for (std::int64_t c = 1; c < k; ++c) {
    const Tensor c64 = closest.to(Dtype::Float64).contiguous();
    const double* cp = c64.data_ptr<double>();
    double acc = 0;
    for (std::size_t i = 0; i < cum.size(); ++i) cum[i] = acc += cp[i];  // serial: one fixed order
    const Tensor u = rand({trials}, Dtype::Float64, &gen);
    std::vector<std::int64_t> cand;
    for (std::int64_t t = 0; t < trials; ++t) {
      const double v = u.data_ptr<double>()[t] * pot;
      const auto pos = std::lower_bound(cum.begin(), cum.end(), v) - cum.begin();
      cand.push_back(std::min<std::int64_t>(pos, n - 1));
    }
    Tensor dist = squared_distances(x.index_select(0, index_tensor(cand)), x, x_sq);  // [trials, n]
    dist = where(dist.lt(closest), dist, closest).contiguous();
    const Tensor pots = dist.to(Dtype::Float64).sum({1}).contiguous();
    const double* pp = pots.data_ptr<double>();
    const std::int64_t best = std::min_element(pp, pp + trials) - pp;
    pot = pp[best];
    closest = dist.slice(0, best, best + 1).contiguous();
    chosen.push_back(cand[static_cast<std::size_t>(best)]);
  }
  return x.index_select(0, index_tensor(chosen));
}

}  // namespace

std::int64_t KmeansOptions::n_init() const {
  if (init_ == KmeansInit::Given) return 1;
  return n_init_.value_or(init_ == KmeansInit::Random ? 10 : 1);
}

Kmeans::Kmeans(KmeansOptions options) : options_(std::move(options)) {
  const char* w = "Kmeans";
  check(options_.n_clusters() >= 1, w, "n_clusters must be at least 1, got ", options_.n_clusters());
  check(options_.max_iter() >= 1, w, "max_iter must be at least 1, got ", options_.max_iter());
  check(options_.tol() >= 0 && std::isfinite(options_.tol()), w, "tol must be >= 0, got ", options_.tol());
  check(options_.n_init() >= 1, w, "n_init must be at least 1, got ", options_.n_init());
  if (options_.init() == KmeansInit::Given) {
    const Tensor& c = options_.init_centers();
    toolbox_detail::check_matrix(c, w, "init");
    toolbox_detail::check_finite(c, w, "init");
    check(c.size(0) == options_.n_clusters(), w, "init has ", c.size(0), " centers, but n_clusters is ",
          options_.n_clusters());
  }
}

Kmeans& Kmeans::fit(const Tensor& x_in, Generator* generator) {
  NoGradGuard guard;
  const Tensor x = floating_input(x_in, kFit);
  const std::int64_t n = x.size(0), d = x.size(1), k = options_.n_clusters();
  check(n >= k, kFit, "n_samples=", n, " should be >= n_clusters=", k);
  if (options_.init() == KmeansInit::Given) {
    check(options_.init_centers().size(1) == d, kFit, "init has ", options_.init_centers().size(1),
          " features, but x has ", d);
  }
  Generator& gen = generator ? *generator : default_generator();
  // scikit-learn's tolerance: tol times the mean of the per-feature variances.
  const Tensor x64 = x.to(Dtype::Float64);
  const double tol = (x64 - x64.mean({0})).square().mean({0}).mean().item<double>() * options_.tol();
  const Tensor mean = x.mean({0});
  const Tensor xc = (x - mean).contiguous();
  const Tensor x_sq = xc.square().sum({1});
  Run best;
  bool have = false;
  for (std::int64_t run = 0; run < options_.n_init(); ++run) {
    Tensor init;
    if (options_.init() == KmeansInit::Given) init = options_.init_centers().to(x.dtype()) - mean;
    else if (options_.init() == KmeansInit::Random)
      init = xc.index_select(0, randperm(n, Dtype::Int64, &gen).slice(0, 0, k));
    else init = kmeans_plus_plus(xc, x_sq, k, gen);
    Run r = x.dtype() == Dtype::Float32 ? lloyd<float>(xc, init.contiguous(), options_.max_iter(), tol)
                                        : lloyd<double>(xc, init.contiguous(), options_.max_iter(), tol);
    if (!have || r.inertia < best.inertia) {
      best = r;
      have = true;
    }
  }
  centroids_ = (best.centers + mean).contiguous();
  labels_ = best.labels.contiguous();
  inertia_ = best.inertia;
  n_iter_ = best.n_iter;
  return *this;
}

namespace {
Tensor checked_rows(const Tensor& x, const Tensor& centroids, const char* w) {
  check<std::runtime_error>(centroids.defined(), w, "this Kmeans is not fitted yet; call fit() first");
  const Tensor xf = floating_input(x, w);
  check(xf.size(1) == centroids.size(1), w, "x has ", xf.size(1), " features, but the centroids have ",
        centroids.size(1));
  return xf.to(centroids.dtype());
}
}  // namespace

Tensor Kmeans::predict(const Tensor& x) const {
  NoGradGuard guard;
  return center_scores(checked_rows(x, centroids_, "Kmeans.predict"), centroids_).argmin(1);
}

Tensor Kmeans::fit_predict(const Tensor& x, Generator* generator) {
  fit(x, generator);
  return labels_;
}

Tensor Kmeans::transform(const Tensor& x) const {
  NoGradGuard guard;
  const Tensor xf = checked_rows(x, centroids_, "Kmeans.transform");
  return squared_distances(centroids_, xf, xf.square().sum({1})).t().contiguous().sqrt();
}

Tensor Kmeans::fit_transform(const Tensor& x, Generator* generator) {
  fit(x, generator);
  return transform(x);
}

double Kmeans::inertia(const Tensor& x) const {
  NoGradGuard guard;
  const Tensor xf = checked_rows(x, centroids_, "Kmeans.inertia");
  return sum_squares(xf - centroids_.index_select(0, center_scores(xf, centroids_).argmin(1)));
}

const Tensor& Kmeans::centroids() const {
  check<std::runtime_error>(fitted(), "Kmeans.centroids", "this Kmeans is not fitted yet; call fit() first");
  return centroids_;
}
const Tensor& Kmeans::labels() const {
  check<std::runtime_error>(fitted(), "Kmeans.labels", "this Kmeans is not fitted yet; call fit() first");
  return labels_;
}
double Kmeans::inertia() const {
  check<std::runtime_error>(fitted(), "Kmeans.inertia", "this Kmeans is not fitted yet; call fit() first");
  return inertia_;
}
std::int64_t Kmeans::n_iter() const {
  check<std::runtime_error>(fitted(), "Kmeans.n_iter", "this Kmeans is not fitted yet; call fit() first");
  return n_iter_;
}

StateDict Kmeans::state_dict() const {
  check<std::runtime_error>(fitted(), "Kmeans.state_dict", "this Kmeans is not fitted yet; call fit() first");
  return StateDict{{"n_clusters", toolbox_detail::int64_scalar(options_.n_clusters())},
                   {"cluster_centers_", toolbox_detail::stored(centroids_)},
                   {"labels_", toolbox_detail::stored(labels_)},
                   {"inertia_", toolbox_detail::float64_scalar(inertia_)},
                   {"n_iter_", toolbox_detail::int64_scalar(n_iter_)}};
}

void Kmeans::load_state_dict(const StateDict& state) {
  toolbox_detail::StateReader r(state, "Kmeans.load_state_dict");
  r.expect("n_clusters", options_.n_clusters());
  const Tensor* c = state.find("cluster_centers_");
  const Dtype dt = c != nullptr && c->defined() && c->dtype() == Dtype::Float32 ? Dtype::Float32 : Dtype::Float64;
  const Tensor centers = r.tensor("cluster_centers_", dt, {options_.n_clusters(), -1}, true);
  check(centers.size(1) > 0, r.where().c_str(), "cluster_centers_ has no features");
  toolbox_detail::check_finite(centers, r.where().c_str(), "cluster_centers_");
  const Tensor labels = r.tensor("labels_", Dtype::Int64, {-1}, true);
  const double inertia = r.tensor("inertia_", Dtype::Float64, {}, true).item<double>();
  const std::int64_t n_iter = r.int64("n_iter_");
  r.finish();
  centroids_ = centers;
  labels_ = labels;
  inertia_ = inertia;
  n_iter_ = n_iter;
}

}  // namespace sorix::clustering
