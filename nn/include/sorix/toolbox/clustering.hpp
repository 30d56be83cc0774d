#pragma once
// sorix::clustering::Kmeans — Python sorix's Kmeans with scikit-learn's algorithm
// (sklearn.cluster.KMeans 1.2, algorithm="lloyd"):
//   * init: k-means++ (scikit-learn's greedy variant: 2 + floor(ln k) candidates per center, the
//     one that lowers the potential most is kept), "random" (k distinct rows), or given centers;
//     every random draw comes from a sorix Generator.
//   * n_init runs, the one with the lowest inertia kept (the first on ties). Default: 1 for
//     k-means++ and given centers, 10 for random (scikit-learn's n_init="auto"); given centers
//     always run once (scikit-learn warns and does the same).
//   * Lloyd iterations on the data minus its column means (scikit-learn's centering, for
//     precision): assign each sample to the nearest center (||c||^2 - 2 x.c, the first on ties),
//     move each center to its samples' mean; an empty cluster takes the sample farthest from its
//     center (scikit-learn's relocation; ties: the lowest index). Stops when the labels repeat,
//     or when the squared center shift summed over centers is <= tol * mean per-feature
//     variance, or after max_iter iterations (then labels are recomputed for the final
//     centers).
//   * inertia: the sum of squared distances of the samples to their centers.
// Python sorix starts from random rows, stops on the mean center shift (eps) and has no n_init;
// this follows scikit-learn.
//
// Inputs: x [samples, features], float32 or float64 (int64 is read as float64); centroids and
// distances keep x's dtype. Errors: std::invalid_argument naming the value for empty input,
// NaN/infinity, n_clusters > n_samples, bad options or a wrong number of features;
// std::runtime_error before fit.
//
// Threading and determinism: every step is an existing deterministic op (matmul, sums,
// argmin, comparisons, index_select) or a serial loop (k-means++'s cumulative sum and search,
// empty-cluster relocation), so centroids, labels, inertia and n_iter are bit-identical at any
// thread count and on every CPU capability, and a Generator seed reproduces them exactly. The
// results are not scikit-learn's bits (its random stream and BLAS differ); with given initial
// centers they agree to rounding.
#include <cstdint>
#include <optional>
#include <utility>

#include "sorix/core/generator.hpp"
#include "sorix/core/state_dict.hpp"
#include "sorix/core/tensor.hpp"

namespace sorix::clustering {

enum class KmeansInit { KMeansPlusPlus, Random, Given };

struct KmeansOptions {
  KmeansOptions(std::int64_t n_clusters = 8) : n_clusters_(n_clusters) {}  // NOLINT: implicit, Kmeans(3)
  KmeansOptions& n_clusters(std::int64_t k) { n_clusters_ = k; return *this; }
  /// KMeansPlusPlus (default) or Random; for given centers use init(Tensor).
  KmeansOptions& init(KmeansInit i) { init_ = i; return *this; }
  /// The initial centers [n_clusters, features] (scikit-learn's init=array).
  KmeansOptions& init(Tensor centers) { init_ = KmeansInit::Given; centers_ = std::move(centers); return *this; }
  KmeansOptions& n_init(std::int64_t n) { n_init_ = n; return *this; }
  KmeansOptions& max_iter(std::int64_t n) { max_iter_ = n; return *this; }
  /// Relative tolerance: the shift threshold is tol times the mean per-feature variance of x.
  KmeansOptions& tol(double t) { tol_ = t; return *this; }
  std::int64_t n_clusters() const { return n_clusters_; }
  KmeansInit init() const { return init_; }
  const Tensor& init_centers() const { return centers_; }
  /// The runs fit makes (see the header comment).
  std::int64_t n_init() const;
  std::int64_t max_iter() const { return max_iter_; }
  double tol() const { return tol_; }

 private:
  std::int64_t n_clusters_;
  KmeansInit init_ = KmeansInit::KMeansPlusPlus;
  Tensor centers_;
  std::optional<std::int64_t> n_init_;
  std::int64_t max_iter_ = 300;
  double tol_ = 1e-4;
};

class Kmeans {
 public:
  explicit Kmeans(KmeansOptions options = {});
  /// Clusters x; random draws from `generator` (nullptr: the default generator).
  Kmeans& fit(const Tensor& x, Generator* generator = nullptr);
  /// int64 [n]: the nearest centroid of each row (the first on ties).
  Tensor predict(const Tensor& x) const;
  Tensor fit_predict(const Tensor& x, Generator* generator = nullptr);
  /// [n, n_clusters]: the Euclidean distance of each row to each centroid (Python sorix's
  /// get_distances returns squared distances; this is scikit-learn's transform).
  Tensor transform(const Tensor& x) const;
  Tensor fit_transform(const Tensor& x, Generator* generator = nullptr);
  /// The sum of squared distances of x's rows to their nearest centroids (Python sorix's
  /// get_inertia; scikit-learn's -score).
  double inertia(const Tensor& x) const;

  bool fitted() const { return centroids_.defined(); }
  /// [n_clusters, features], x's dtype.
  const Tensor& centroids() const;
  /// The labels of the training rows, int64 [n].
  const Tensor& labels() const;
  /// The inertia of the training data at the end of fit.
  double inertia() const;
  /// Lloyd iterations of the kept run.
  std::int64_t n_iter() const;
  const KmeansOptions& options() const { return options_; }

  /// "cluster_centers_", "labels_", "inertia_", "n_iter_" and the options "n_clusters", "dtype".
  StateDict state_dict() const;
  void load_state_dict(const StateDict& state);

 private:
  KmeansOptions options_;
  Tensor centroids_, labels_;
  double inertia_ = 0;
  std::int64_t n_iter_ = 0;
};

}  // namespace sorix::clustering
