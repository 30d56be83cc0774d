// nn::DistributedDataParallel (data_parallel.hpp): the structure check and broadcast, the step's
// batch shard, and the reduction of the gradients by the batch tree across the ranks.
#include "sorix/nn/distributed/data_parallel.hpp"
#include "distributed/tensor_bytes.hpp"

#include <cstring>
#include <numeric>
#include <sstream>

#include "sorix_autograd/ops_internal.hpp"
#include "sorix/autograd/engine.hpp"
#include "sorix/core/hash.hpp"
#include "sorix/nn/batchnorm.hpp"
#include "sorix/nn/distributed/process_group.hpp"

namespace sorix::nn {

namespace {

using parallel::ChunkRange;
using distributed::detail::bytes_of;
using distributed::detail::raw_bytes;

// Elementwise a + b, the tree's combine.
template <class T>
std::vector<T> add(std::vector<T> a, const std::vector<T>& b) {
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = a[i] + b[i];
  return a;
}

// The root over the ranks' nodes, each `n` values in `all` (rank order = node order).
template <class T>
void combine_nodes(std::size_t chunks, const std::vector<ChunkRange>& nodes, const T* all, std::size_t n, T* out) {
  const std::vector<T> root = parallel::combine_batch_tree<std::vector<T>>(
      chunks, nodes, [&](std::size_t i) { return std::vector<T>(all + i * n, all + (i + 1) * n); },
      [](std::vector<T> a, std::vector<T> b) { return add(std::move(a), b); });
  std::copy(root.begin(), root.end(), out);
}


std::string shape_text(const Shape& s) {
  std::string out = "[";
  for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

// A batch tree's split for one step: the chunks and each rank's node.
struct Split {
  std::size_t chunks = 0;
  std::vector<ChunkRange> nodes;
};

}  // namespace

struct DistributedDataParallel::State : parallel::BatchReducer {
  distributed::ProcessGroup* group = nullptr;
  Split split;
  parallel::BatchShard shard;
  bool shard_set = false;
  const parallel::BatchShard* previous_shard = nullptr;
  // Gradient accumulation: the grads before the first step of a window, and each step's nodes.
  bool window_open = false;
  std::vector<Tensor> before;
  struct Step {
    Split split;
    std::vector<Tensor> grads;
  };
  std::vector<Step> steps;
  // Parameters whose gradients are whole-batch values already (SyncBatchNorm's weight and bias:
  // its backward finishes their sums across the ranks, then scales them): not reduced again.
  std::vector<bool> finished;

  void finish(float* v, std::size_t n) override { finish_values(v, n); }
  void finish(double* v, std::size_t n) override { finish_values(v, n); }

  // Small sums (a loss, BatchNorm's statistics): every rank gathers every node and finishes the
  // tree itself, in the same order: the same bits everywhere.
  template <class T>
  void finish_values(T* v, std::size_t n) {
    const std::size_t R = static_cast<std::size_t>(group->size());
    if (R == 1 || n == 0) return;
    std::vector<T> all(n * R);
    group->all_gather(v, all.data(), n * sizeof(T));
    combine_nodes(split.chunks, split.nodes, all.data(), n, v);
  }

  void set_shard() {
    if (!shard_set) previous_shard = parallel::set_batch_shard(&shard);
    else parallel::set_batch_shard(&shard);
    shard_set = true;
  }
  void clear_shard() {
    if (shard_set) parallel::set_batch_shard(previous_shard);
    shard_set = false;
  }

  // Reduces `buf` (E values: this rank's node of every gradient of a step) in place to the root:
  // shard s of every node goes to rank s (all-to-all), rank s finishes the tree over its shard,
  // and the shards are gathered.
  template <class T>
  void reduce_buffer(std::vector<T>& buf, const Split& sp) {
    const std::size_t R = static_cast<std::size_t>(group->size()), E = buf.size();
    const std::size_t me = static_cast<std::size_t>(group->rank());
    std::vector<std::size_t> bounds(R + 1);
    for (std::size_t s = 0; s <= R; ++s) bounds[s] = E * s / R;
    std::vector<std::size_t> send(R), recv(R, (bounds[me + 1] - bounds[me]) * sizeof(T));
    for (std::size_t s = 0; s < R; ++s) send[s] = (bounds[s + 1] - bounds[s]) * sizeof(T);
    const std::size_t mine = bounds[me + 1] - bounds[me];
    std::vector<T> pieces(mine * R), root(mine);
    group->all_to_allv(buf.data(), send, pieces.data(), recv);
    combine_nodes(sp.chunks, sp.nodes, pieces.data(), mine, root.data());
    group->all_gatherv(root.data(), buf.data(), send);
  }
};

DistributedDataParallel::DistributedDataParallel(std::shared_ptr<Module> module, DistributedDataParallelOptions options)
    : module_(std::move(module)), options_(options), group_(&distributed::default_group()),
      state_(std::make_shared<State>()) {
  check(module_ != nullptr, "DistributedDataParallel", "module is null");
  register_module("module", module_);
  state_->group = group_;
  const int R = group_->size();
  check(options_.broadcast_root() >= 0 && options_.broadcast_root() < R, "DistributedDataParallel", "broadcast_root ",
        options_.broadcast_root(), " is not a rank of a group of ", R);
  // The same structure everywhere: a digest of names, dtypes and shapes, gathered and compared.
  Sha256 h;
  std::ostringstream text;
  for (const auto& [n, t] : module_->named_parameters()) text << "p " << n << " " << dtype_name(t.dtype()) << " " << shape_text(t.shape()) << "\n";
  for (const auto& [n, t] : module_->named_buffers()) text << "b " << n << " " << dtype_name(t.dtype()) << " " << shape_text(t.shape()) << "\n";
  const std::string s = text.str();
  h.update(s.data(), s.size());
  const std::string mine = h.hex_digest();
  std::vector<char> all(64 * static_cast<std::size_t>(R));
  group_->all_gather(mine.data(), all.data(), 64);
  for (int r = 0; r < R; ++r) {
    if (std::memcmp(all.data() + 64 * r, mine.data(), 64) != 0) {
      std::ostringstream os;
      os << "DistributedDataParallel: rank " << group_->rank() << " and rank " << r
         << " have different parameters or buffers (names, dtypes or shapes); this rank's are:\n" << s;
      throw std::runtime_error(os.str());
    }
  }
  for (const Tensor& p : module_->parameters()) {
    bool synced = false;
    for (Module* m : module_->modules()) {
      auto* bn = dynamic_cast<BatchNormNd<1>*>(m);
      auto* bn2 = dynamic_cast<BatchNormNd<2>*>(m);
      auto* bn3 = dynamic_cast<BatchNormNd<3>*>(m);
      const bool sync = (bn && bn->sync()) || (bn2 && bn2->sync()) || (bn3 && bn3->sync());
      if (!sync) continue;
      for (const Tensor& q : m->parameters(false)) synced = synced || q.impl() == p.impl();
    }
    state_->finished.push_back(synced);
  }
  NoGradGuard no_grad;
  for (Tensor t : module_->parameters()) {
    group_->broadcast(raw_bytes(t), bytes_of(t), options_.broadcast_root());
    ++t.impl()->storage->version;
  }
  for (Tensor t : module_->buffers()) {
    group_->broadcast(raw_bytes(t), bytes_of(t), options_.broadcast_root());
    ++t.impl()->storage->version;
  }
}

DistributedDataParallel::~DistributedDataParallel() { state_->clear_shard(); }

std::pair<std::int64_t, std::int64_t> DistributedDataParallel::shard_rows(std::int64_t global_rows, int rank,
                                                                          int world_size) {
  check(global_rows >= 0 && world_size >= 1 && rank >= 0 && rank < world_size, "shard_rows", "bad arguments: rows ",
        global_rows, ", rank ", rank, ", world size ", world_size);
  const auto chunks = parallel::batch_chunks(static_cast<std::size_t>(global_rows));
  const ChunkRange c = parallel::split_batch_tree(chunks, static_cast<std::size_t>(world_size))[static_cast<std::size_t>(rank)];
  const auto k = static_cast<std::int64_t>(parallel::kBatchChunk);
  return {std::min(global_rows, static_cast<std::int64_t>(c.begin) * k),
          std::min(global_rows, static_cast<std::int64_t>(c.end) * k)};
}

Tensor DistributedDataParallel::forward(const Tensor& input) {
  detail::check_defined(input, "DistributedDataParallel");
  if (!is_training() || !autograd::grad_enabled()) return module_->forward(input);
  check(input.dim() >= 1, "DistributedDataParallel", "expected an input [rows, ...], got a 0-dim tensor");
  const int R = group_->size(), me = group_->rank();
  std::int64_t rows = input.size(0);
  std::vector<std::int64_t> all(static_cast<std::size_t>(R));
  group_->all_gather(&rows, all.data(), sizeof(rows));
  const std::int64_t global = std::accumulate(all.begin(), all.end(), std::int64_t{0});
  const std::int64_t first = std::accumulate(all.begin(), all.begin() + me, std::int64_t{0});
  for (int r = 0; r < R; ++r) {
    const auto [b, e] = shard_rows(global, r, R);
    if (all[static_cast<std::size_t>(r)] != e - b) {
      std::ostringstream os;
      os << "DistributedDataParallel: rank " << r << " holds " << all[static_cast<std::size_t>(r)]
         << " rows of a global batch of " << global << "; for the same bits at any number of ranks, rank " << r
         << " of " << R << " must hold rows [" << b << ", " << e
         << ") (a node of the batch tree: use data::DistributedSampler or DistributedDataParallel::shard_rows)";
      throw std::invalid_argument(os.str());
    }
  }
  State& st = *state_;
  st.split.chunks = parallel::batch_chunks(static_cast<std::size_t>(global));
  st.split.nodes = parallel::split_batch_tree(st.split.chunks, static_cast<std::size_t>(R));
  st.shard = parallel::BatchShard{static_cast<std::size_t>(first), static_cast<std::size_t>(global), &st};
  st.set_shard();
  Tensor out = module_->forward(input);
  if (!out.requires_grad()) return out;
  // An identity node on the output: its backward runs before any of the module's, so it can set
  // this step's gradients apart, and queues the reduction for the end of backward.
  Tensor y = out.detach();
  std::weak_ptr<State> weak = state_;
  DistributedDataParallel* self = this;
  const std::vector<Tensor> params = module_->parameters();
  const Split split = st.split;
  autograd::record(y, "DistributedDataParallelBackward", {out},
                   [weak, self, params, split](const Tensor& g) -> std::vector<Tensor> {
                     auto s = weak.lock();
                     if (s == nullptr) return {g};
                     // A step whose backward threw before its end left no gradients: forget it.
                     if (!s->steps.empty() && s->steps.back().grads.empty()) s->steps.pop_back();
                     if (!s->window_open) {
                       s->before.clear();
                       for (const Tensor& p : params) s->before.push_back(p.grad());
                       s->window_open = true;
                     }
                     for (Tensor p : params) p.set_grad(Tensor());
                     s->steps.push_back(State::Step{split, {}});
                     autograd::queue_callback([weak, self] {
                       if (weak.lock() != nullptr) self->after_backward();
                     });
                     return {g};
                   });
  return y;
}

void DistributedDataParallel::after_backward() {
  State& st = *state_;
  st.clear_shard();
  const std::vector<Tensor> params = module_->parameters();
  State::Step& step = st.steps.back();
  for (Tensor p : params) {
    step.grads.push_back(p.grad());
    p.set_grad(Tensor());
  }
  if (!sync_) return;  // no_sync: kept until the next synchronised backward
  // Every rank must have the same gradients defined (the same model ran everywhere).
  std::uint64_t mask = 1469598103934665603ull;
  for (const auto& s : st.steps)
    for (const Tensor& g : s.grads) mask = (mask ^ (g.defined() ? 1u : 2u)) * 1099511628211ull;
  const int R = group_->size();
  std::vector<std::uint64_t> masks(static_cast<std::size_t>(R));
  group_->all_gather(&mask, masks.data(), sizeof(mask));
  for (int r = 0; r < R; ++r)
    check(masks[static_cast<std::size_t>(r)] == mask, "DistributedDataParallel", "rank ", r, " and rank ",
          group_->rank(), " computed gradients for different parameters");
  std::vector<Tensor> total = st.before;
  total.resize(params.size());
  NoGradGuard no_grad;
  for (State::Step& s : st.steps) {
    // One flat buffer per dtype, parameters in order.
    for (Dtype dt : {Dtype::Float32, Dtype::Float64}) {
      // The gradients this step reduces: this rank's tree nodes.
      auto mine = [&](std::size_t i) { return s.grads[i].defined() && s.grads[i].dtype() == dt && !st.finished[i]; };
      std::size_t E = 0;
      for (std::size_t i = 0; i < s.grads.size(); ++i)
        if (mine(i)) E += static_cast<std::size_t>(s.grads[i].numel());
      if (E == 0) continue;
      auto run = [&](auto tag) {
        using T = decltype(tag);
        std::vector<T> buf(E);
        std::size_t off = 0;
        for (std::size_t i = 0; i < s.grads.size(); ++i) {
          if (!mine(i)) continue;
          const Tensor c = s.grads[i].contiguous();
          if (c.numel() != 0) std::memcpy(buf.data() + off, c.data_ptr<T>(), static_cast<std::size_t>(c.numel()) * sizeof(T));
          off += static_cast<std::size_t>(c.numel());
        }
        if (R > 1) st.reduce_buffer(buf, s.split);
        off = 0;
        for (std::size_t i = 0; i < s.grads.size(); ++i) {
          if (!mine(i)) continue;
          Tensor& g = s.grads[i];
          Tensor r = empty(g.shape(), dt);
          if (r.numel() != 0) std::memcpy(r.data_ptr<T>(), buf.data() + off, static_cast<std::size_t>(r.numel()) * sizeof(T));
          off += static_cast<std::size_t>(r.numel());
          g = r;
        }
      };
      if (dt == Dtype::Float32) run(float{});
      else run(double{});
    }
    // Accumulated as one process accumulates steps: grad = grad + step's gradient, in order.
    for (std::size_t i = 0; i < params.size(); ++i) {
      const Tensor& g = s.grads[i];
      if (!g.defined()) continue;
      total[i] = total[i].defined() ? total[i] + g : g;
    }
  }
  for (std::size_t i = 0; i < params.size(); ++i) {
    Tensor p = params[i];
    p.set_grad(total[i]);
  }
  st.steps.clear();
  st.before.clear();
  st.window_open = false;
}

std::shared_ptr<Module> convert_sync_batchnorm(std::shared_ptr<Module> module) {
  check(module != nullptr, "convert_sync_batchnorm", "module is null");
  for (Module* m : module->modules()) {
    if (auto* b1 = dynamic_cast<BatchNormNd<1>*>(m)) b1->set_sync(true);
    else if (auto* b2 = dynamic_cast<BatchNormNd<2>*>(m)) b2->set_sync(true);
    else if (auto* b3 = dynamic_cast<BatchNormNd<3>*>(m)) b3->set_sync(true);
  }
  return module;
}

}  // namespace sorix::nn
