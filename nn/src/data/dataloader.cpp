// DataLoader (nn/data/dataloader.hpp).
#include "sorix/nn/data/dataloader.hpp"

#include <bit>
#include <cstring>
#include <numeric>
#include <stdexcept>

#include "core/src/internal.hpp"
#include "sorix/core/random.hpp"
#include "sorix/parallel/parallel.hpp"

namespace sorix::data {

namespace {

// Row-gather chunking: fixed byte budgets (never the thread count), so a chunk is a few dozen KiB
// of copying and small batches stay on the calling thread.
constexpr std::size_t kRowChunkBytes = std::size_t{64} << 10;
constexpr std::size_t kInlineBytes = std::size_t{256} << 10;

char* raw_bytes(Tensor& t) {
  return detail::visit_dtype(t.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    return reinterpret_cast<char*>(t.data_ptr<T>());
  });
}
const char* raw_bytes(const Tensor& t) { return raw_bytes(const_cast<Tensor&>(t)); }

Shape batch_shape(std::int64_t count, const Shape& row_shape) {
  Shape s{count};
  s.insert(s.end(), row_shape.begin(), row_shape.end());
  return s;
}

// out[r] = src[idx[r]] for r in [0, count): the TensorDataset fast path.
Tensor gather_rows(const Tensor& src, const std::int64_t* idx, std::int64_t count) {
  const Shape shape = src.shape();
  Tensor out = empty(batch_shape(count, Shape(shape.begin() + 1, shape.end())), src.dtype());
  const std::size_t row_bytes =
      shape[0] == 0 ? 0 : static_cast<std::size_t>(src.numel() / shape[0]) * dtype_size(src.dtype());
  if (row_bytes == 0 || count == 0) return out;
  const char* s = raw_bytes(src);
  char* d = raw_bytes(out);
  const std::size_t rows_per_chunk = std::max<std::size_t>(1, kRowChunkBytes / row_bytes);
  const std::size_t inline_rows = std::max<std::size_t>(1, kInlineBytes / row_bytes);
  parallel::parallel_for(
      static_cast<std::size_t>(count), rows_per_chunk,
      [&](std::size_t begin, std::size_t end) {
        // Shuffled rows are scattered over the whole dataset: each one starts with a TLB and a
        // cache miss. Touching the rows a few ahead overlaps those misses with the copies.
        constexpr std::size_t kAhead = 4;
        for (std::size_t r = begin; r < end; ++r) {
          if (r + kAhead < end) {
            const char* next = s + static_cast<std::size_t>(idx[r + kAhead]) * row_bytes;
            for (std::size_t b = 0; b < row_bytes; b += 64) __builtin_prefetch(next + b);
          }
          std::memcpy(d + r * row_bytes, s + static_cast<std::size_t>(idx[r]) * row_bytes, row_bytes);
        }
      },
      inline_rows);
  return out;
}

// Stacks same-shaped, same-dtype tensors along a new dim 0 (`what` and `first` name them in errors).
Tensor stack_rows(const std::vector<Tensor>& rows, const char* what, const std::int64_t* idx) {
  const Shape row_shape = rows[0].shape();
  const Dtype dtype = rows[0].dtype();
  for (std::size_t r = 1; r < rows.size(); ++r) {
    check(rows[r].defined() && rows[r].shape() == row_shape && rows[r].dtype() == dtype, "DataLoader",
          "cannot batch examples with different ", what, " shapes or dtypes: example ", idx[0], " has ",
          dtype_name(dtype), shape_string(row_shape), ", example ", idx[r], " has ",
          rows[r].defined() ? dtype_name(rows[r].dtype()) + shape_string(rows[r].shape()) : std::string("undefined"));
  }
  Tensor out = empty(batch_shape(static_cast<std::int64_t>(rows.size()), row_shape), dtype);
  const std::size_t row_bytes = static_cast<std::size_t>(rows[0].numel()) * dtype_size(dtype);
  char* d = raw_bytes(out);
  for (std::size_t r = 0; r < rows.size() && row_bytes != 0; ++r) std::memcpy(d + r * row_bytes, raw_bytes(rows[r]), row_bytes);
  return out;
}

}  // namespace

DataLoader::DataLoader(const Dataset& dataset, DataLoaderOptions options) : dataset_(dataset), options_(options) {
  check(options_.batch_size_ > 0, "DataLoader", "batch_size must be positive, got ", options_.batch_size_);
  check(!(options_.seed_ && options_.generator_ != nullptr), "DataLoader",
        "give either a seed or a generator, not both");
  if (options_.seed_) {
    own_gen_ = std::make_unique<Generator>(*options_.seed_);
    gen_ = own_gen_.get();
  } else {
    gen_ = options_.generator_ != nullptr ? options_.generator_ : &default_generator();
  }
}

std::int64_t DataLoader::num_batches() const {
  const std::int64_t n = dataset_.size();
  const std::int64_t b = options_.batch_size_;
  return options_.drop_last_ ? n / b : (n + b - 1) / b;
}

DataLoader::Iterator DataLoader::begin() {
  const std::int64_t n = dataset_.size();
  auto order = std::make_shared<std::vector<std::int64_t>>(static_cast<std::size_t>(n));
  if (options_.shuffle_) {
    const Tensor perm = randperm(n, Dtype::Int64, gen_);
    std::copy(perm.data_ptr<std::int64_t>(), perm.data_ptr<std::int64_t>() + n, order->begin());
  } else {
    std::iota(order->begin(), order->end(), std::int64_t{0});
  }
  ++epoch_;
  return Iterator(this, std::move(order), 0);
}

DataLoader::Iterator DataLoader::end() const {
  Iterator it;
  it.index_ = num_batches();
  return it;
}

Batch DataLoader::make_batch(const std::vector<std::int64_t>& order, std::int64_t b) const {
  const std::int64_t n = static_cast<std::int64_t>(order.size());
  const std::int64_t first = b * options_.batch_size_;
  check<std::out_of_range>(b >= 0 && first < n, "DataLoader", "batch ", b, " out of range for ", n,
                           " examples in batches of ", options_.batch_size_);
  const std::int64_t count = std::min(options_.batch_size_, n - first);
  const std::int64_t* idx = order.data() + first;
  if (const auto* td = dynamic_cast<const TensorDataset*>(&dataset_)) {
    return Batch{gather_rows(td->data(), idx, count), gather_rows(td->targets(), idx, count)};
  }
  std::vector<Tensor> data, target;
  data.reserve(static_cast<std::size_t>(count));
  target.reserve(static_cast<std::size_t>(count));
  for (std::int64_t i = 0; i < count; ++i) {
    Example e = dataset_.get(idx[i]);
    check(e.data.defined(), "DataLoader", "example ", idx[i], " has undefined data");
    data.push_back(std::move(e.data));
    target.push_back(std::move(e.target));
  }
  Batch out;
  out.data = stack_rows(data, "data", idx);
  if (target[0].defined()) {
    out.target = stack_rows(target, "target", idx);
  } else {
    for (std::int64_t i = 1; i < count; ++i) {
      check(!target[static_cast<std::size_t>(i)].defined(), "DataLoader", "example ", idx[0],
            " has no target but example ", idx[i], " has one");
    }
  }
  return out;
}

DataLoader::Iterator::Iterator(const DataLoader* loader, std::shared_ptr<const std::vector<std::int64_t>> order,
                               std::int64_t index)
    : loader_(loader), order_(std::move(order)), index_(index) {
  load();
}

void DataLoader::Iterator::load() {
  batch_ = index_ < loader_->num_batches() ? loader_->make_batch(*order_, index_) : Batch{};
}

DataLoader::Iterator& DataLoader::Iterator::operator++() {
  check<std::out_of_range>(loader_ != nullptr && index_ < loader_->num_batches(), "DataLoader",
                           "iterator incremented past the end");
  ++index_;
  load();
  return *this;
}

StateDict DataLoader::state_dict() const {
  const Generator::State s = gen_->get_state();
  Tensor g = empty({2}, Dtype::Int64);
  g.data_ptr<std::int64_t>()[0] = std::bit_cast<std::int64_t>(s.seed);
  g.data_ptr<std::int64_t>()[1] = std::bit_cast<std::int64_t>(s.offset);
  Tensor e = empty({}, Dtype::Int64);
  e.data_ptr<std::int64_t>()[0] = epoch_;
  StateDict out;
  out.insert("generator", g);
  out.insert("epoch", e);
  return out;
}

void DataLoader::load_state_dict(const StateDict& state) {
  const char* op = "DataLoader::load_state_dict";
  const Tensor* g = state.find("generator");
  const Tensor* e = state.find("epoch");
  check(state.size() == 2 && g != nullptr && e != nullptr, op, "expected exactly the entries 'generator' and 'epoch'");
  check(g->dtype() == Dtype::Int64 && g->shape() == Shape{2}, op, "'generator' must be int64 [2], got ",
        dtype_name(g->dtype()), shape_string(g->shape()));
  check(e->dtype() == Dtype::Int64 && e->numel() == 1, op, "'epoch' must be a one-element int64 tensor, got ",
        dtype_name(e->dtype()), shape_string(e->shape()));
  gen_->set_state(Generator::State{std::bit_cast<std::uint64_t>(g->data_ptr<std::int64_t>()[0]),
                                   std::bit_cast<std::uint64_t>(g->data_ptr<std::int64_t>()[1])});
  epoch_ = e->data_ptr<std::int64_t>()[0];
}

}  // namespace sorix::data
