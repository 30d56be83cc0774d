#pragma once
// scikit-learn reference values for the toolbox tests: tests/data/toolbox_reference.txt and
// tests/data/toolbox_report_*.txt, written by scripts/gen_reference_toolbox.py (Python is not
// needed at test time).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <sorix/sorix.hpp>

#include "support/reference_table.hpp"

namespace toolbox_ref {

using sorix::Tensor;

inline const std::map<std::string, Tensor>& table() {
  static const std::map<std::string, Tensor> data = reference_table::read(
      std::string(SORIX_TEST_DATA_DIR) + "/toolbox_reference.txt", "scripts/gen_reference_toolbox.py");
  return data;
}

/// The reference array `key` (a fresh copy).
inline Tensor sk(const std::string& key) {
  auto it = table().find(key);
  if (it == table().end()) throw std::runtime_error("toolbox reference data has no entry " + key);
  return it->second.clone();
}
inline double scalar(const std::string& key) { return sk(key).item<double>(); }

inline std::string report(const std::string& name) {
  const std::string path = std::string(SORIX_TEST_DATA_DIR) + "/toolbox_report_" + name + ".txt";
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

/// |a - b| <= tol * max(1, |b|), NaN equal to NaN.
inline bool close(double a, double b, double tol = 1e-12) {
  if (std::isnan(b)) return std::isnan(a);
  return std::abs(a - b) <= tol * std::max(1.0, std::abs(b));
}

/// Same shape and every element close (compared in float64).
inline void check_close(const Tensor& got, const Tensor& want, const std::string& what, double tol = 1e-12) {
  INFO(what << ": got shape " << sorix::shape_string(got.shape()) << ", want " << sorix::shape_string(want.shape()));
  REQUIRE(got.defined());
  REQUIRE(got.shape() == want.shape());
  const Tensor g = got.to(sorix::float64).contiguous(), w = want.to(sorix::float64).contiguous();
  for (std::int64_t i = 0; i < w.numel(); ++i) {
    INFO("element " << i << ": got " << g.data_ptr<double>()[i] << ", want " << w.data_ptr<double>()[i]);
    CHECK(close(g.data_ptr<double>()[i], w.data_ptr<double>()[i], tol));
  }
}

/// Bitwise equality of two tensors of one dtype and shape.
inline bool same_bits(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype() || a.shape() != b.shape()) return false;
  const Tensor x = a.contiguous(), y = b.contiguous();
  const std::size_t bytes = static_cast<std::size_t>(x.numel()) * (a.dtype() == sorix::float32 ? 4 : 8);
  const void* px = a.dtype() == sorix::float32 ? static_cast<const void*>(x.data_ptr<float>())
                   : a.dtype() == sorix::float64 ? static_cast<const void*>(x.data_ptr<double>())
                                                 : static_cast<const void*>(x.data_ptr<std::int64_t>());
  const void* py = a.dtype() == sorix::float32 ? static_cast<const void*>(y.data_ptr<float>())
                   : a.dtype() == sorix::float64 ? static_cast<const void*>(y.data_ptr<double>())
                                                 : static_cast<const void*>(y.data_ptr<std::int64_t>());
  return std::memcmp(px, py, bytes) == 0;
}

}  // namespace toolbox_ref
