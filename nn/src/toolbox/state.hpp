#pragma once
// Reading a transformer's or a model's StateDict strictly: every expected entry present with
// its dtype and shape, options equal to the object's own, nothing left over. Nothing is changed
// by a reader; the caller assigns only after finish() passed.
#include <cstdint>
#include <set>
#include <string>
#include <utility>

#include "sorix/core/state_dict.hpp"
#include "sorix/core/tensor.hpp"

namespace sorix::toolbox_detail {

Tensor int64_scalar(std::int64_t v);
Tensor float64_scalar(double v);
/// Stored by value, detached from any graph (fitted attributes must not change with later
/// writes to the tensor they came from).
Tensor stored(const Tensor& t);

class StateReader {
 public:
  /// `where` names the call in messages ("MinMaxScaler.load_state_dict").
  StateReader(const StateDict& state, std::string where) : state_(state), where_(std::move(where)) {}
  /// The entry `key` with this dtype; shape checked when `shape` is not empty, where -1 means any
  /// size for that dim. A copy (the caller keeps it).
  Tensor tensor(const std::string& key, Dtype dtype, const Shape& shape = {}, bool check_shape = false);
  std::int64_t int64(const std::string& key);
  /// A saved option must equal the object's (0/1 for booleans).
  void expect(const std::string& key, std::int64_t value);
  void expect(const std::string& key, double value);
  /// Every entry starting with `prefix` counts as used.
  void use_prefix(const std::string& prefix);
  /// Throws for entries nobody read.
  void finish() const;
  const std::string& where() const { return where_; }

 private:
  const StateDict& state_;
  std::string where_;
  std::set<std::string> used_;
};

}  // namespace sorix::toolbox_detail
