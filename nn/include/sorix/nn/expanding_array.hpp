#pragma once
// ExpandingArray<D>: a size per spatial dim, given as one value for all dims or one per dim
// (torch::ExpandingArray): Conv2dOptions(1, 32, 3) and Conv2dOptions(1, 32, {3, 5}) both work.
#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <sstream>
#include <stdexcept>
#include <string>

namespace sorix::nn {

template <std::size_t D>
class ExpandingArray {
 public:
  ExpandingArray(std::int64_t v) { values_.fill(v); }  // NOLINT: implicit, as torch's
  ExpandingArray(std::initializer_list<std::int64_t> list) {
    if (list.size() != D) {
      throw std::invalid_argument("ExpandingArray: expected " + std::to_string(D) + " values, got " +
                                  std::to_string(list.size()));
    }
    std::size_t i = 0;
    for (std::int64_t v : list) values_[i++] = v;
  }
  ExpandingArray(const std::array<std::int64_t, D>& values) : values_(values) {}  // NOLINT
  std::int64_t operator[](std::size_t i) const { return values_[i]; }
  std::int64_t& operator[](std::size_t i) { return values_[i]; }
  const std::array<std::int64_t, D>& values() const { return values_; }
  static constexpr std::size_t size() { return D; }
  bool operator==(const ExpandingArray& o) const { return values_ == o.values_; }
  bool operator!=(const ExpandingArray& o) const { return values_ != o.values_; }
  /// PyTorch's text: "(3, 3)" (or "(3,)" for one dim).
  std::string str() const {
    std::ostringstream os;
    os << "(";
    for (std::size_t i = 0; i < D; ++i) os << (i ? ", " : "") << values_[i];
    if (D == 1) os << ",";
    os << ")";
    return os.str();
  }

 private:
  std::array<std::int64_t, D> values_{};
};

}  // namespace sorix::nn
