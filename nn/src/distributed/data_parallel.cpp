// nn::DistributedDataParallel (data_parallel.hpp): the structure check and broadcast, the step's
// batch shard, and the reduction of the gradients by the batch tree across the ranks, in buckets
// handed to the communication thread (comm_thread.hpp) as backward makes them.
#include "sorix/nn/distributed/data_parallel.hpp"
#include "distributed/comm_thread.hpp"
#include "distributed/tensor_bytes.hpp"

#include <algorithm>
#include <cstring>
#include <deque>
#include <mutex>
#include <numeric>
#include <unordered_map>
#include <sstream>

#include "sorix_autograd/ops_internal.hpp"
#include "sorix/autograd/engine.hpp"
#include "sorix/autograd/leaf_hooks.hpp"
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

// One bucket: parameters of one dtype, reduced together as one flat buffer.
struct Bucket {
  Dtype dtype = Dtype::Float32;
  std::vector<std::size_t> params;   // parameter indices, in reverse parameter order
  std::vector<std::size_t> offsets;  // each one's first value in the buffer
  std::size_t numel = 0;
};

// A step's values of one bucket: this rank's tree node, then (reduced in place by the
// communication thread) the root.
struct BucketValues {
  std::vector<float> f;
  std::vector<double> d;
  std::size_t waiting = 0;  // parameters not packed yet
};

// One backward through the module: its batch split and its gradients.
struct StepGrads {
  Split split;
  bool sync = true;       // reduced at its own backward's end (else kept for the next synced one)
  bool complete = false;  // its backward reached the end
  std::vector<Tensor> grads;          // per parameter: kept steps all; synced steps the unbucketed
  std::vector<BucketValues> buckets;  // packed values (kept steps: packed at the synced backward)
  std::vector<char> packed, defined;  // per parameter
  std::size_t next_launch = 0;        // buckets handed over so far (in bucket order)
};

}  // namespace

struct DistributedDataParallel::State : parallel::BatchReducer {
  distributed::ProcessGroup* group = nullptr;
  std::unique_ptr<distributed::detail::CommThread> comm;
  Split split;
  parallel::BatchShard shard;
  bool shard_set = false;
  const parallel::BatchShard* previous_shard = nullptr;
  std::vector<Bucket> buckets;
  std::vector<std::size_t> bucket_of;  // per parameter: its bucket, or kNone
  static constexpr std::size_t kNone = static_cast<std::size_t>(-1);
  // Gradient accumulation: the grads before the first step of a window, and each step's nodes.
  bool window_open = false;
  std::vector<Tensor> before;
  std::deque<StepGrads> steps;  // a deque: the communication thread holds pointers into steps' buffers
  // Parameters whose gradients are whole-batch values already (SyncBatchNorm's weight and bias:
  // its backward finishes their sums across the ranks, then scales them): not reduced again.
  std::vector<bool> finished;
  mutable std::mutex events_mutex;  // the main and the communication thread both log
  std::vector<BucketEvent> events;

  ~State() override { comm.reset(); }  // joined before the buffers its jobs point into go

  void log(BucketEvent::Kind kind, std::size_t index) {
    std::lock_guard<std::mutex> lock(events_mutex);
    events.push_back({kind, index});
  }

  std::string rank_text() const { return "rank " + std::to_string(group->rank()) + " of " + std::to_string(group->size()); }

  void finish(float* v, std::size_t n) override { finish_values(v, n); }
  void finish(double* v, std::size_t n) override { finish_values(v, n); }

  // Small sums (a loss, BatchNorm's statistics): every rank gathers every node and finishes the
  // tree itself, in the same order: the same bits everywhere. On the communication thread, after
  // the buckets handed over before it (the same order on every rank).
  template <class T>
  void finish_values(T* v, std::size_t n) {
    const std::size_t R = static_cast<std::size_t>(group->size());
    if (R == 1 || n == 0) return;
    std::vector<T> all(n * R);
    comm->run("all_gather of " + std::to_string(n) + " batch sums", [&] { group->all_gather(v, all.data(), n * sizeof(T)); });
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

  // Reduces buf[0, E) (this rank's node of a bucket's gradients) in place to the root: shard s of
  // the node goes to rank s (all-to-all), rank s finishes the tree over its shard, and the shards
  // are gathered. Runs on the communication thread.
  template <class T>
  void reduce_buffer(T* buf, std::size_t E, const Split& sp) {
    const std::size_t R = static_cast<std::size_t>(group->size());
    if (R == 1) return;
    const std::size_t me = static_cast<std::size_t>(group->rank());
    std::vector<std::size_t> bounds(R + 1);
    for (std::size_t s = 0; s <= R; ++s) bounds[s] = E * s / R;
    std::vector<std::size_t> send(R), recv(R, (bounds[me + 1] - bounds[me]) * sizeof(T));
    for (std::size_t s = 0; s < R; ++s) send[s] = (bounds[s + 1] - bounds[s]) * sizeof(T);
    const std::size_t mine = bounds[me + 1] - bounds[me];
    std::vector<T> pieces(mine * R), root(mine);
    group->all_to_allv(buf, send, pieces.data(), recv);
    combine_nodes(sp.chunks, sp.nodes, pieces.data(), mine, root.data());
    group->all_gatherv(root.data(), buf, send);
  }

  // Starts a step's buffers (every parameter still to pack).
  void open_buckets(StepGrads& st, std::size_t n_params) {
    st.packed.assign(n_params, 0);
    st.defined.assign(n_params, 0);
    st.grads.resize(n_params);
    st.buckets.resize(buckets.size());
    for (std::size_t b = 0; b < buckets.size(); ++b) {
      BucketValues& v = st.buckets[b];
      if (buckets[b].dtype == Dtype::Float32) v.f.assign(buckets[b].numel, 0.0f);
      else v.d.assign(buckets[b].numel, 0.0);
      v.waiting = buckets[b].params.size();
    }
  }

  // Copies parameter i's gradient g (this step's tree node, or undefined: zeros) into its bucket;
  // hands over every bucket that is full, in bucket order. `log_it`: the synced step's.
  void pack(StepGrads& st, std::size_t i, const Tensor& g, bool log_it) {
    if (st.packed[i]) return;
    st.packed[i] = 1;
    st.defined[i] = g.defined() ? 1 : 0;
    const std::size_t b = bucket_of[i];
    if (b == kNone) {
      st.grads[i] = g;
      return;
    }
    const Bucket& bk = buckets[b];
    const std::size_t pos = static_cast<std::size_t>(std::find(bk.params.begin(), bk.params.end(), i) - bk.params.begin());
    if (g.defined() && g.numel() != 0) {
      const Tensor c = g.contiguous();
      const std::size_t n = static_cast<std::size_t>(c.numel());
      if (bk.dtype == Dtype::Float32) std::memcpy(st.buckets[b].f.data() + bk.offsets[pos], c.data_ptr<float>(), n * sizeof(float));
      else std::memcpy(st.buckets[b].d.data() + bk.offsets[pos], c.data_ptr<double>(), n * sizeof(double));
    }
    --st.buckets[b].waiting;
    while (st.next_launch < buckets.size() && st.buckets[st.next_launch].waiting == 0) launch(st, st.next_launch++, log_it);
  }

  void launch(StepGrads& st, std::size_t b, bool log_it) {
    BucketValues& v = st.buckets[b];
    const Bucket& bk = buckets[b];
    const Split* sp = &st.split;
    if (log_it) log(BucketEvent::BucketHanded, b);
    std::string what = "reducing gradient bucket " + std::to_string(b) + " (" + std::to_string(bk.numel) + " values)";
    auto job = [this, n = bk.numel, sp, b, log_it](auto* data) {
      try {
        reduce_buffer(data, n, *sp);
      } catch (...) {
        if (log_it) log(BucketEvent::BucketFailed, b);
        throw;  // the communication thread keeps it for the caller
      }
      if (log_it) log(BucketEvent::BucketReduced, b);
    };
    if (bk.dtype == Dtype::Float32) comm->submit(std::move(what), [job, data = v.f.data()] { job(data); });
    else comm->submit(std::move(what), [job, data = v.d.data()] { job(data); });
  }

  // After the buckets are reduced: parameter i's gradient of step st (the whole batch's).
  Tensor reduced(const StepGrads& st, std::size_t i, const Tensor& like) const {
    if (!st.defined[i]) return Tensor();
    const std::size_t b = bucket_of[i];
    if (b == kNone) return st.grads[i];
    const Bucket& bk = buckets[b];
    const std::size_t pos = static_cast<std::size_t>(std::find(bk.params.begin(), bk.params.end(), i) - bk.params.begin());
    Tensor r = empty(like.shape(), bk.dtype);
    const std::size_t n = static_cast<std::size_t>(r.numel());
    if (n == 0) return r;
    if (bk.dtype == Dtype::Float32) std::memcpy(r.data_ptr<float>(), st.buckets[b].f.data() + bk.offsets[pos], n * sizeof(float));
    else std::memcpy(r.data_ptr<double>(), st.buckets[b].d.data() + bk.offsets[pos], n * sizeof(double));
    return r;
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
  check(options_.bucket_cap_mb() >= 0.0, "DistributedDataParallel", "bucket_cap_mb must be >= 0, got ",
        options_.bucket_cap_mb());
  state_->comm = std::make_unique<distributed::detail::CommThread>(state_->rank_text());
  distributed::detail::CommThread& comm = *state_->comm;
  // The same structure everywhere: a digest of names, dtypes and shapes, gathered and compared.
  Sha256 h;
  std::ostringstream text;
  for (const auto& [n, t] : module_->named_parameters()) text << "p " << n << " " << dtype_name(t.dtype()) << " " << shape_text(t.shape()) << "\n";
  for (const auto& [n, t] : module_->named_buffers()) text << "b " << n << " " << dtype_name(t.dtype()) << " " << shape_text(t.shape()) << "\n";
  const std::string s = text.str();
  h.update(s.data(), s.size());
  const std::string mine = h.hex_digest();
  std::vector<char> all(64 * static_cast<std::size_t>(R));
  comm.run("all_gather of the model's structure", [&] { group_->all_gather(mine.data(), all.data(), 64); });
  for (int r = 0; r < R; ++r) {
    if (std::memcmp(all.data() + 64 * r, mine.data(), 64) != 0) {
      std::ostringstream os;
      os << "DistributedDataParallel: rank " << group_->rank() << " and rank " << r
         << " have different parameters or buffers (names, dtypes or shapes); this rank's are:\n" << s;
      throw std::runtime_error(os.str());
    }
  }
  const std::vector<Tensor> params = module_->parameters();
  for (const Tensor& p : params) {
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
  // Buckets, as PyTorch's: parameters in reverse order, one open bucket per dtype, closed once it
  // holds bucket_cap_mb; then the open ones. The same on every rank (the same structure).
  {
    State& st = *state_;
    st.bucket_of.assign(params.size(), State::kNone);
    const double cap = options_.bucket_cap_mb() * 1024.0 * 1024.0;
    std::vector<Bucket> open(2);
    open[0].dtype = Dtype::Float32;
    open[1].dtype = Dtype::Float64;
    auto close = [&](Bucket& b) {
      if (b.params.empty()) return;
      const Dtype dt = b.dtype;
      for (std::size_t i : b.params) st.bucket_of[i] = st.buckets.size();
      st.buckets.push_back(std::move(b));
      b = Bucket{};
      b.dtype = dt;
    };
    for (std::size_t k = params.size(); k-- > 0;) {
      const Tensor& p = params[k];
      if (st.finished[k] || !is_floating(p.dtype())) continue;
      Bucket& b = open[p.dtype() == Dtype::Float32 ? 0 : 1];
      b.params.push_back(k);
      b.offsets.push_back(b.numel);
      b.numel += static_cast<std::size_t>(p.numel());
      if (static_cast<double>(b.numel * dtype_size(p.dtype())) >= cap) close(b);
    }
    for (Bucket& b : open) close(b);
  }
  NoGradGuard no_grad;
  for (Tensor t : params) {
    comm.run("broadcast of the parameters", [&] { group_->broadcast(raw_bytes(t), bytes_of(t), options_.broadcast_root()); });
    ++t.impl()->storage->version;
  }
  for (Tensor t : module_->buffers()) {
    comm.run("broadcast of the buffers", [&] { group_->broadcast(raw_bytes(t), bytes_of(t), options_.broadcast_root()); });
    ++t.impl()->storage->version;
  }
}

DistributedDataParallel::~DistributedDataParallel() { state_->clear_shard(); }

std::vector<std::vector<std::size_t>> DistributedDataParallel::bucket_assignment() const {
  std::vector<std::vector<std::size_t>> out;
  for (const Bucket& b : state_->buckets) out.push_back(b.params);
  return out;
}

std::vector<DistributedDataParallel::BucketEvent> DistributedDataParallel::bucket_events() const {
  std::lock_guard<std::mutex> lock(state_->events_mutex);
  return state_->events;
}

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

namespace {

// The end of a backward through the module (queued by its first node): a kept step (no_sync)
// sets its gradients apart; a synced one packs what no hook reported (unused parameters, or
// parameters reached around the module), waits for every bucket, checks that every rank had the
// same gradients defined, and sets grad() to the sum of the window's steps, in order.
void end_of_backward(DistributedDataParallel::State& st, const std::vector<Tensor>& params, distributed::ProcessGroup& group);

}  // namespace

Tensor DistributedDataParallel::forward(const Tensor& input) {
  detail::check_defined(input, "DistributedDataParallel");
  if (!is_training() || !autograd::grad_enabled()) return module_->forward(input);
  check(input.dim() >= 1, "DistributedDataParallel", "expected an input [rows, ...], got a 0-dim tensor");
  State& st = *state_;
  // A backward that threw half-way may have left buckets with the communication thread.
  st.comm->wait();
  const int R = group_->size(), me = group_->rank();
  std::int64_t rows = input.size(0);
  std::vector<std::int64_t> all(static_cast<std::size_t>(R));
  st.comm->run("all_gather of the ranks' row counts", [&] { group_->all_gather(&rows, all.data(), sizeof(rows)); });
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
  st.split.chunks = parallel::batch_chunks(static_cast<std::size_t>(global));
  st.split.nodes = parallel::split_batch_tree(st.split.chunks, static_cast<std::size_t>(R));
  st.shard = parallel::BatchShard{static_cast<std::size_t>(first), static_cast<std::size_t>(global), &st};
  st.set_shard();
  Tensor out = module_->forward(input);
  if (!out.requires_grad()) return out;
  // An identity node on the output: its backward runs before any of the module's, so it can set
  // this step's gradients apart, hook the parameters' gradients into the buckets, and queue the
  // end of the step for the end of backward.
  Tensor y = out.detach();
  std::weak_ptr<State> weak = state_;
  DistributedDataParallel* self = this;
  const std::vector<Tensor> params = module_->parameters();
  const Split split = st.split;
  autograd::record(y, "DistributedDataParallelBackward", {out},
                   [weak, self, params, split](const Tensor& g) -> std::vector<Tensor> {
                     auto s = weak.lock();
                     if (s == nullptr) return {g};
                     // A step whose backward threw before its end: forget it (and its buckets).
                     if (!s->steps.empty() && !s->steps.back().complete) {
                       s->comm->wait();
                       s->steps.pop_back();
                     }
                     if (!s->window_open) {
                       s->before.clear();
                       for (const Tensor& p : params) s->before.push_back(p.grad());
                       s->window_open = true;
                     }
                     for (Tensor p : params) p.set_grad(Tensor());
                     StepGrads& step = s->steps.emplace_back();
                     step.split = split;
                     step.sync = self->sync_;
                     if (step.sync) {
                       {
                         std::lock_guard<std::mutex> lock(s->events_mutex);
                         s->events.clear();
                       }
                       // The kept steps (no_sync) go first, whole: their gradients are known.
                       for (std::size_t k = 0; k + 1 < s->steps.size(); ++k) {
                         StepGrads& kept = s->steps[k];
                         // A copy: a backward that throws after this packs them again.
                         const std::vector<Tensor> grads = kept.grads;
                         s->open_buckets(kept, params.size());
                         for (std::size_t i = 0; i < params.size(); ++i) s->pack(kept, i, grads[i], false);
                       }
                       s->open_buckets(step, params.size());
                       std::unordered_map<const TensorImpl*, std::size_t> index;
                       for (std::size_t i = 0; i < params.size(); ++i) index.emplace(params[i].impl(), i);
                       StepGrads* current = &step;
                       autograd::on_leaf_gradient_ready([weak, current, index](const Tensor& leaf) {
                         auto st = weak.lock();
                         if (st == nullptr) return;
                         auto it = index.find(leaf.impl());
                         if (it == index.end() || st->steps.empty() || &st->steps.back() != current) return;
                         st->log(BucketEvent::GradientReady, it->second);
                         st->pack(*current, it->second, leaf.grad(), true);
                       });
                     }
                     autograd::queue_callback([weak, params] {
                       if (auto st = weak.lock()) end_of_backward(*st, params, *st->group);
                     });
                     return {g};
                   });
  return y;
}

namespace {

void end_of_backward(DistributedDataParallel::State& st, const std::vector<Tensor>& params,
                     distributed::ProcessGroup& group) {
  st.clear_shard();
  StepGrads& step = st.steps.back();
  if (!step.sync) {  // no_sync: kept until the next synchronised backward
    for (Tensor p : params) {
      step.grads.push_back(p.grad());
      p.set_grad(Tensor());
    }
    step.complete = true;
    return;
  }
  for (std::size_t i = 0; i < params.size(); ++i) st.pack(step, i, params[i].grad(), true);
  while (step.next_launch < st.buckets.size()) st.launch(step, step.next_launch++, true);  // (all full now)
  step.complete = true;
  st.comm->wait();  // every bucket reduced (or the first failure, rethrown here)
  // Every rank must have the same gradients defined (the same model ran everywhere).
  std::uint64_t mask = 1469598103934665603ull;
  for (const StepGrads& s : st.steps)
    for (char d : s.defined) mask = (mask ^ (d ? 1u : 2u)) * 1099511628211ull;
  const int R = group.size();
  std::vector<std::uint64_t> masks(static_cast<std::size_t>(R));
  st.comm->run("all_gather of the defined gradients", [&] { group.all_gather(&mask, masks.data(), sizeof(mask)); });
  for (int r = 0; r < R; ++r)
    check(masks[static_cast<std::size_t>(r)] == mask, "DistributedDataParallel", "rank ", r, " and rank ",
          group.rank(), " computed gradients for different parameters");
  std::vector<Tensor> total = st.before;
  total.resize(params.size());
  NoGradGuard no_grad;
  // Accumulated as one process accumulates steps: grad = grad + step's gradient, in order.
  for (const StepGrads& s : st.steps) {
    for (std::size_t i = 0; i < params.size(); ++i) {
      const Tensor g = st.reduced(s, i, params[i]);
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

}  // namespace

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
