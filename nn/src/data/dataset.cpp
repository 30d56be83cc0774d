// TensorDataset (nn/data/dataset.hpp).
#include "sorix/nn/data/dataset.hpp"

#include <cstring>
#include <stdexcept>
#include <string>

#include "core/src/internal.hpp"

namespace sorix::data {

namespace {

char* raw_bytes(Tensor& t) {
  return detail::visit_dtype(t.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    return reinterpret_cast<char*>(t.data_ptr<T>());
  });
}
const char* raw_bytes(const Tensor& t) { return raw_bytes(const_cast<Tensor&>(t)); }

// A copy of row `index` of t (shape t.shape()[1:]).
Tensor copy_row(const Tensor& t, std::int64_t index) {
  const Shape shape = t.shape();
  const Shape row_shape(shape.begin() + 1, shape.end());
  Tensor out = empty(row_shape, t.dtype());
  const std::size_t row_bytes = static_cast<std::size_t>(out.numel()) * dtype_size(t.dtype());
  if (row_bytes != 0) {
    std::memcpy(raw_bytes(out), raw_bytes(t) + static_cast<std::size_t>(index) * row_bytes, row_bytes);
  }
  return out;
}

}  // namespace

TensorDataset::TensorDataset(Tensor data, Tensor targets) : data_(std::move(data)), targets_(std::move(targets)) {
  const char* op = "TensorDataset";
  check(data_.defined() && targets_.defined(), op, "data and targets must be defined tensors");
  check(data_.dim() >= 1 && targets_.dim() >= 1, op, "data and targets must be at least 1-D (examples along dim 0), got data ",
        shape_string(data_.shape()), " and targets ", shape_string(targets_.shape()));
  check(data_.size(0) == targets_.size(0), op, "data and targets must have the same size in dim 0 (one target per example), got data ",
        shape_string(data_.shape()), " and targets ", shape_string(targets_.shape()));
}

std::int64_t TensorDataset::size() const { return data_.size(0); }

Example TensorDataset::get(std::int64_t index) const {
  check<std::out_of_range>(index >= 0 && index < size(), "TensorDataset::get", "index ", index,
                           " out of range for a dataset of size ", size());
  return Example{copy_row(data_, index), copy_row(targets_, index)};
}

}  // namespace sorix::data
