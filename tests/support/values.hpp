#pragma once
// Small reference-side tensor helpers shared by the tests: element copies, element counts,
// distinct-valued inputs, tolerance checks and bitwise state-dict comparison.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <functional>
#include <numeric>
#include <string_view>
#include <unordered_set>
#include <vector>

#include <sorix/sorix.hpp>

#include "support/gradcheck.hpp"

namespace sorix::testing {

/// t's elements in row-major order as a flat vector of T (t must hold T: data_ptr<T> checks the
/// dtype). Walks t's own strides, independently of the library's strided copy, so it can check it.
template <class T>
std::vector<T> values_of(const Tensor& t) {
  const T* p = t.data_ptr<T>();
  const Shape sizes = t.shape(), strides = t.stride();
  std::vector<T> out;
  out.reserve(static_cast<std::size_t>(t.numel()));
  std::vector<std::int64_t> idx(sizes.size(), 0);
  for (std::int64_t i = 0; i < t.numel(); ++i) {
    std::int64_t off = 0;
    for (std::size_t d = 0; d < sizes.size(); ++d) off += idx[d] * strides[d];
    out.push_back(p[off]);
    for (std::size_t d = sizes.size(); d-- > 0;) {
      if (++idx[d] < sizes[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

/// t's elements converted to double, whatever t's dtype.
inline std::vector<double> as_doubles(const Tensor& t) { return values_of<double>(t.to(float64)); }

/// Number of elements of a shape (1 for a scalar shape).
inline std::int64_t numel_of(const Shape& s) {
  return std::accumulate(s.begin(), s.end(), std::int64_t{1}, std::multiplies<>());
}

/// Distinct values 0, 1, 2, ... of shape s, so any misplaced element shows.
inline Tensor iota(const Shape& s, Dtype dt = float32) {
  return arange(0.0, static_cast<double>(numel_of(s)), 1.0, dt).reshape(s);
}

/// Checks |got - want| <= atol + rtol * |want| element by element, naming the first elements off.
inline void check_close(const std::vector<double>& got, const std::vector<double>& want, double atol, double rtol) {
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i << ": got " << got[i] << ", want " << want[i]);
    CHECK(std::abs(got[i] - want[i]) <= atol + rtol * std::abs(want[i]));
  }
}

/// Number of distinct hashes of the aligned `block`-element blocks of a flat array of T
/// (a repeated random stream shows up as repeated blocks).
template <class T>
std::size_t distinct_blocks(const T* p, std::size_t n, std::size_t block) {
  std::unordered_set<std::size_t> seen;
  const std::hash<std::string_view> h;
  for (std::size_t b = 0; b + block <= n; b += block) {
    seen.insert(h(std::string_view(reinterpret_cast<const char*>(p + b), block * sizeof(T))));
  }
  return seen.size();
}

/// Same names in the same order, each tensor bit_identical.
inline bool same_state(const StateDict& a, const StateDict& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a.entries()[i].first != b.entries()[i].first) return false;
    if (!bit_identical(a.entries()[i].second, b.entries()[i].second)) return false;
  }
  return true;
}

}  // namespace sorix::testing
