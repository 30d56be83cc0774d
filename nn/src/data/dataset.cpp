// Dataset::get_batch and TensorDataset (nn/data/dataset.hpp).
#include "sorix/nn/data/dataset.hpp"

#include <cstring>
#include <stdexcept>
#include <string>

#include <vector>

#include "sorix_core/internal.hpp"
#include "data/row_gather.hpp"

namespace sorix::data {

namespace {

char* raw_bytes(Tensor& t) {
  return detail::visit_dtype(t.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    return reinterpret_cast<char*>(sorix::detail::flat<T>(t));
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

Shape batch_shape(std::int64_t count, const Shape& row_shape) {
  Shape s{count};
  s.insert(s.end(), row_shape.begin(), row_shape.end());
  return s;
}

// Stacks same-shaped, same-dtype tensors along a new dim 0 (`what` names them in errors; idx gives
// the examples' indices).
Tensor stack_rows(const std::vector<Tensor>& rows, const char* what, const std::int64_t* idx) {
  const Shape row_shape = rows[0].shape();
  const Dtype dtype = rows[0].dtype();
  for (std::size_t r = 1; r < rows.size(); ++r) {
    check(rows[r].defined() && rows[r].shape() == row_shape && rows[r].dtype() == dtype, "Dataset::get_batch",
          "cannot batch examples with different ", what, " shapes or dtypes: example ", idx[0], " has ",
          dtype_name(dtype), shape_string(row_shape), ", example ", idx[r], " has ",
          rows[r].defined() ? dtype_name(rows[r].dtype()) + shape_string(rows[r].shape()) : std::string("undefined"));
  }
  Tensor out = empty(batch_shape(static_cast<std::int64_t>(rows.size()), row_shape), dtype);
  const std::size_t row_bytes = static_cast<std::size_t>(rows[0].numel()) * dtype_size(dtype);
  char* d = raw_bytes(out);
  for (std::size_t r = 0; r < rows.size() && row_bytes != 0; ++r) {
    const Tensor row = detail::contiguous_copy_if_needed(rows[r]);  // a Dataset may return views
    std::memcpy(d + r * row_bytes, raw_bytes(row), row_bytes);
  }
  return out;
}

// Bytes of one row (first-dimension slice) of t; 0 for an empty first dimension.
std::size_t bytes_per_row(const Tensor& t) {
  const std::int64_t n = t.size(0);
  return n == 0 ? 0 : static_cast<std::size_t>(t.numel() / n) * dtype_size(t.dtype());
}

// out[r] = t[idx[r]]: a parallel row copy.
Tensor gather(const Tensor& t, const std::int64_t* idx, std::int64_t count) {
  const Shape shape = t.shape();
  Tensor out = empty(batch_shape(count, Shape(shape.begin() + 1, shape.end())), t.dtype());
  const std::size_t row_bytes = bytes_per_row(t);
  char* d = raw_bytes(out);
  row_gather::gather_rows(reinterpret_cast<const unsigned char*>(raw_bytes(t)), row_bytes, idx,
                          static_cast<std::size_t>(count), reinterpret_cast<unsigned char*>(d));
  return out;
}

}  // namespace

Batch Dataset::get_batch(const std::int64_t* indices, std::int64_t count) const {
  const char* op = "Dataset::get_batch";
  check(count > 0 && indices != nullptr, op, "expected at least one index, got ", count);
  std::vector<Tensor> data, target;
  data.reserve(static_cast<std::size_t>(count));
  target.reserve(static_cast<std::size_t>(count));
  for (std::int64_t i = 0; i < count; ++i) {
    Example e = get(indices[i]);
    check(e.data.defined(), op, "example ", indices[i], " has undefined data");
    data.push_back(std::move(e.data));
    target.push_back(std::move(e.target));
  }
  Batch out;
  out.data = stack_rows(data, "data", indices);
  if (target[0].defined()) {
    out.target = stack_rows(target, "target", indices);
  } else {
    for (std::int64_t i = 1; i < count; ++i) {
      check(!target[static_cast<std::size_t>(i)].defined(), op, "example ", indices[0],
            " has no target but example ", indices[i], " has one");
    }
  }
  return out;
}

TensorDataset::TensorDataset(Tensor data, Tensor targets) : data_(std::move(data)), targets_(std::move(targets)) {
  const char* op = "TensorDataset";
  check(data_.defined() && targets_.defined(), op, "data and targets must be defined tensors");
  check(data_.dim() >= 1 && targets_.dim() >= 1, op, "data and targets must be at least 1-D (examples along dim 0), got data ",
        shape_string(data_.shape()), " and targets ", shape_string(targets_.shape()));
  check(data_.size(0) == targets_.size(0), op, "data and targets must have the same size in dim 0 (one target per example), got data ",
        shape_string(data_.shape()), " and targets ", shape_string(targets_.shape()));
  // Batches are gathered as rows of flat memory: a view (a transpose, a stepped slice) is copied
  // once here. Contiguous tensors, slices of rows included, are used as they are.
  data_ = detail::contiguous_copy_if_needed(data_);
  targets_ = detail::contiguous_copy_if_needed(targets_);
}

std::int64_t TensorDataset::size() const { return data_.size(0); }

Example TensorDataset::get(std::int64_t index) const {
  check<std::out_of_range>(index >= 0 && index < size(), "TensorDataset::get", "index ", index,
                           " out of range for a dataset of size ", size());
  return Example{copy_row(data_, index), copy_row(targets_, index)};
}

void TensorDataset::prefetch(const std::int64_t* indices, std::int64_t count) const {
  if (indices == nullptr || data_.numel() == 0) return;
  row_gather::prefetch_rows(reinterpret_cast<const unsigned char*>(raw_bytes(data_)), bytes_per_row(data_), indices,
                            count, size());
}

Batch TensorDataset::get_batch(const std::int64_t* indices, std::int64_t count) const {
  check(count >= 0 && (count == 0 || indices != nullptr), "TensorDataset::get_batch", "invalid batch of ", count,
        " indices");
  row_gather::check_indices("TensorDataset::get_batch", indices, count, size());
  return Batch{gather(data_, indices, count), gather(targets_, indices, count)};
}

}  // namespace sorix::data
