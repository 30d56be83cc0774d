#pragma once
// PyTorch reference files (tests/data/parity_layers_*.txt, written by scripts/gen_parity_layers.py):
// loading and comparing. float64 must agree to 1e-10 and float32 to 1e-5, relative to the
// tensor's largest magnitude.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <sorix/sorix.hpp>

namespace parity {

using sorix::Shape;
using sorix::Tensor;


// One reference file: named tensors and scalars.
struct Case {
  std::map<std::string, Tensor> tensors;
  std::map<std::string, double> scalars;
  const Tensor& at(const std::string& name) const {
    auto it = tensors.find(name);
    if (it == tensors.end()) throw std::runtime_error("parity file has no tensor " + name);
    return it->second;
  }
};

/// prefix: "parity_layers_" (scripts/gen_parity_layers.py) or "parity_ops_" (scripts/gen_parity_ops.py).
inline Case load(const std::string& name, sorix::Dtype dt, const std::string& prefix = "parity_layers_") {
  const std::string path = std::string(SORIX_TEST_DATA_DIR) + "/" + prefix + name + "_" + sorix::dtype_name(dt) + ".txt";
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path + " (regenerate with scripts/gen_parity_*.py)");
  Case c;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream head(line);
    std::string kind, tname;
    head >> kind >> tname;
    if (kind == "scalar") {
      head >> c.scalars[tname];
      continue;
    }
    std::string dtype;
    int ndim = 0;
    head >> dtype >> ndim;
    Shape shape(static_cast<std::size_t>(ndim));
    for (auto& s : shape) head >> s;
    std::getline(in, line);
    std::istringstream body(line);
    std::vector<double> values;
    double v;
    while (body >> v) values.push_back(v);
    const sorix::Dtype tdt = dtype == "int64" ? sorix::int64 : dtype == "float32" ? sorix::float32 : sorix::float64;
    c.tensors[tname] = sorix::tensor(values, shape, tdt);
  }
  return c;
}

inline double tolerance(sorix::Dtype dt) { return dt == sorix::float64 ? 1e-10 : 1e-5; }

/// floor: the fraction of the tensor's largest magnitude below which errors are measured against
/// that fraction instead of the element (sums of many terms cancel to small values: a float32
/// convolution's rounding is relative to its terms, not to the result).
inline void check_matches(const Tensor& got, const Tensor& want, const std::string& what, double floor = 1e-3) {
  INFO(what << ": got shape " << sorix::shape_string(got.shape()) << ", want " << sorix::shape_string(want.shape()));
  REQUIRE(got.defined());
  REQUIRE(got.shape() == want.shape());
  REQUIRE(got.dtype() == want.dtype());
  const double tol = tolerance(want.dtype());
  Tensor g = got.to(sorix::float64), w = want.to(sorix::float64);
  const double* pg = g.data_ptr<double>();
  const double* pw = w.data_ptr<double>();
  double scale = 0;
  for (std::int64_t i = 0; i < w.numel(); ++i) scale = std::max(scale, std::abs(pw[i]));
  for (std::int64_t i = 0; i < w.numel(); ++i) {
    INFO("element " << i << ": got " << pg[i] << ", torch " << pw[i]);
    CHECK(std::abs(pg[i] - pw[i]) <= tol * std::max(std::abs(pw[i]), floor * scale) + 1e-300);
  }
}

inline Tensor param(const Tensor& t) { return t.clone().requires_grad_(true); }

inline const std::vector<sorix::Dtype> kDtypes{sorix::float64, sorix::float32};


}  // namespace parity
