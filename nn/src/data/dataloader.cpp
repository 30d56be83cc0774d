// DataLoader (nn/data/dataloader.hpp).
#include "sorix/nn/data/dataloader.hpp"

#include <algorithm>
#include <bit>
#include <numeric>
#include <stdexcept>

#include "sorix/core/error.hpp"
#include "sorix/core/random.hpp"

namespace sorix::data {

DataLoader::DataLoader(std::shared_ptr<const Dataset> dataset, DataLoaderOptions options)
    : DataLoader(*(dataset ? dataset : throw std::invalid_argument("DataLoader: the dataset pointer is null")), options) {
  owned_ = std::move(dataset);
}

DataLoader::DataLoader(const Dataset& dataset, DataLoaderOptions options) : dataset_(&dataset), options_(options) {
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
  const std::int64_t n = dataset_->size();
  const std::int64_t b = options_.batch_size_;
  return options_.drop_last_ ? n / b : (n + b - 1) / b;
}

DataLoader::Iterator DataLoader::begin() {
  const std::int64_t n = dataset_->size();
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
  return dataset_->get_batch(order.data() + first, count);
}

DataLoader::Iterator::Iterator(const DataLoader* loader, std::shared_ptr<const std::vector<std::int64_t>> order,
                               std::int64_t index)
    : loader_(loader), order_(std::move(order)), index_(index) {
  load();
}

void DataLoader::Iterator::load() {
  const std::int64_t batches = loader_->num_batches();
  batch_ = index_ < batches ? loader_->make_batch(*order_, index_) : Batch{};
  // The next batch's examples are known now: let the dataset start fetching them while this
  // batch is being used (with shuffling they are scattered over the whole dataset, and their
  // cache misses were most of what assembling a batch cost).
  if (index_ + 1 < batches) {
    const std::int64_t b = loader_->options().batch_size_;
    const std::int64_t first = (index_ + 1) * b;
    const std::int64_t count = std::min(b, static_cast<std::int64_t>(order_->size()) - first);
    loader_->dataset().prefetch(order_->data() + first, count);
  }
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
  const std::int64_t epoch = e->item<std::int64_t>();
  check(epoch >= 0, op, "'epoch' must be >= 0 (the number of epochs started), got ", epoch);
  gen_->set_state(Generator::State{std::bit_cast<std::uint64_t>(g->data_ptr<std::int64_t>()[0]),
                                   std::bit_cast<std::uint64_t>(g->data_ptr<std::int64_t>()[1])});
  epoch_ = epoch;
}

}  // namespace sorix::data
