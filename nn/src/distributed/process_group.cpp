// The default process group and the tensor-level collectives of sorix::distributed.
#include "sorix/nn/distributed/process_group.hpp"
#include "distributed/tensor_bytes.hpp"

#include <cstring>
#include <mutex>

#include "sorix/core/error.hpp"


namespace sorix::distributed {

namespace {

using detail::bytes_of;
using detail::raw_bytes;

std::mutex group_mutex;
std::unique_ptr<ProcessGroup> group;


}  // namespace

void init_process_group(const InitProcessGroupOptions& options) {
  check(options.backend == "gloo", "init_process_group", "unknown backend '", options.backend,
        "': this build has \"gloo\"");
  std::lock_guard<std::mutex> lock(group_mutex);
  if (group != nullptr) throw std::runtime_error("init_process_group: a process group is already initialized (rank " +
                                                 std::to_string(group->rank()) + "); destroy_process_group() first");
  group = make_gloo_group(options);
}

bool is_initialized() {
  std::lock_guard<std::mutex> lock(group_mutex);
  return group != nullptr;
}

void destroy_process_group() {
  std::lock_guard<std::mutex> lock(group_mutex);
  group.reset();
}

ProcessGroup& default_group() {
  std::lock_guard<std::mutex> lock(group_mutex);
  if (group == nullptr) throw std::runtime_error("distributed: no process group; call init_process_group() first");
  return *group;
}

int get_rank() { return is_initialized() ? default_group().rank() : 0; }
int get_world_size() { return is_initialized() ? default_group().size() : 1; }

void barrier() { default_group().barrier(); }

void broadcast(Tensor& tensor, int src) {
  check(tensor.is_contiguous(), "broadcast", "tensor must be contiguous, got shape ", tensor.shape());
  default_group().broadcast(raw_bytes(tensor), bytes_of(tensor), src);
  ++tensor.impl()->storage->version;
}

std::vector<Tensor> all_gather(const Tensor& tensor) {
  ProcessGroup& g = default_group();
  Tensor in = tensor.contiguous();
  const std::size_t bytes = bytes_of(in);
  std::vector<char> buf(bytes * static_cast<std::size_t>(g.size()));
  g.all_gather(raw_bytes(in), buf.data(), bytes);
  std::vector<Tensor> out;
  for (int r = 0; r < g.size(); ++r) {
    Tensor t = empty(in.shape(), in.dtype());
    if (bytes != 0) std::memcpy(raw_bytes(t), buf.data() + static_cast<std::size_t>(r) * bytes, bytes);
    out.push_back(t);
  }
  return out;
}

void all_reduce(Tensor& tensor, ReduceOp op) {
  check(tensor.is_contiguous(), "all_reduce", "tensor must be contiguous, got shape ", tensor.shape());
  ProcessGroup& g = default_group();
  if (tensor.dtype() == Dtype::Float32) g.all_reduce(tensor.data_ptr<float>(), static_cast<std::size_t>(tensor.numel()), op);
  else if (tensor.dtype() == Dtype::Float64) g.all_reduce(tensor.data_ptr<double>(), static_cast<std::size_t>(tensor.numel()), op);
  else throw std::invalid_argument("all_reduce: expected a float32 or float64 tensor, got " + std::string(dtype_name(tensor.dtype())));
  ++tensor.impl()->storage->version;
}

}  // namespace sorix::distributed
