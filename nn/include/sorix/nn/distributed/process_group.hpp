#pragma once
// sorix::distributed — processes that train together (as torch.distributed): a process group on
// the Gloo engine, its rendezvous, and a few collectives. nn::DistributedDataParallel builds on it.
//
//   sorix::distributed::init_process_group({.init_method = "env://"});   // RANK, WORLD_SIZE, ...
//   int r = sorix::distributed::get_rank(), n = sorix::distributed::get_world_size();
//
// Init methods: "env://" (MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE from the environment: a TCP
// store served by rank 0), "tcp://host:port" (the same store, rank and world size from the
// options), "file:///path/dir" (Gloo's FileStore in a fresh directory that every rank sees: one
// machine or a shared disk). Each rank's own address for the Gloo pairs is GLOO_SOCKET_IFNAME's
// interface when set, else SORIX_HOSTNAME, else 127.0.0.1 when the store is local (a file, a
// loopback master), else this machine's host name.
//
// Errors: the engine's failures (a peer gone, a timeout: every operation waits at most the
// group's timeout) are std::runtime_error naming this rank, the world size and the operation.
// init_process_group sets SIGPIPE to ignored when the program left it at its default (Gloo's
// sockets would otherwise kill the process when a peer is gone, as Python ignores it for PyTorch).
// Threading: one collective at a time per group, called from one thread (as Gloo requires).
// Determinism: broadcast, all_gather and barrier move bytes only. all_reduce adds in an order that
// depends on the world size (Gloo's ring), so its bits change with the number of ranks: it is for
// values where that does not matter (counters, diagnostics); DistributedDataParallel never uses it.
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "sorix/core/tensor.hpp"

namespace sorix::distributed {

/// How init_process_group finds its peers (torch.distributed.init_process_group's arguments).
struct InitProcessGroupOptions {
  std::string backend = "gloo";
  /// "env://", "tcp://host:port" or "file:///absolute/dir".
  std::string init_method = "env://";
  /// -1: from the environment (WORLD_SIZE, RANK); required for tcp:// and file://.
  int world_size = -1;
  int rank = -1;
  /// Bound on the rendezvous and on every collective.
  std::chrono::milliseconds timeout = std::chrono::minutes(5);
};

enum class ReduceOp { Sum, Max, Min };

/// A group of processes and its collectives on raw bytes. Every rank calls the same collectives in
/// the same order. The interface a second engine (MPI) would implement.
class ProcessGroup {
 public:
  virtual ~ProcessGroup() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string backend() const = 0;
  virtual std::chrono::milliseconds timeout() const = 0;

  virtual void barrier() = 0;
  /// root's `bytes` bytes at data reach every rank's data.
  virtual void broadcast(void* data, std::size_t bytes, int root) = 0;
  /// out (size() * bytes) receives every rank's `bytes` bytes, in rank order.
  virtual void all_gather(const void* in, void* out, std::size_t bytes) = 0;
  /// out receives every rank's in, in rank order; rank r sends bytes_per_rank[r] bytes.
  virtual void all_gatherv(const void* in, void* out, const std::vector<std::size_t>& bytes_per_rank) = 0;
  /// Rank r's send[r'] bytes (consecutive in `in`, in rank order) reach rank r' (consecutive in
  /// `out`, in rank order, recv[r] bytes from rank r).
  virtual void all_to_allv(const void* in, const std::vector<std::size_t>& send, void* out,
                           const std::vector<std::size_t>& recv) = 0;
  /// Elementwise reduction in place (float32 or float64; the engine's order: not rank-invariant).
  virtual void all_reduce(float* data, std::size_t n, ReduceOp op) = 0;
  virtual void all_reduce(double* data, std::size_t n, ReduceOp op) = 0;
};

/// Joins the default group (blocks until every rank has joined, at most options.timeout).
/// Throws std::invalid_argument for an unknown backend or init method, missing or bad ranks, and
/// std::runtime_error when the rendezvous fails or times out; also when a group is already
/// initialized (destroy it first).
void init_process_group(const InitProcessGroupOptions& options = {});
bool is_initialized();
/// Leaves the default group (no-op without one). Peers still in a collective see this rank gone.
void destroy_process_group();
/// The default group (throws std::runtime_error when none was initialized).
ProcessGroup& default_group();
/// This rank and the world size (0 and 1 when no group was initialized, as a single process).
int get_rank();
int get_world_size();

void barrier();
/// tensor (contiguous) takes src's values on every rank (same shape and dtype required).
void broadcast(Tensor& tensor, int src = 0);
/// Every rank's tensor, in rank order (same shape and dtype on every rank).
std::vector<Tensor> all_gather(const Tensor& tensor);
/// In place over float32/float64 tensors. NOT rank-invariant (see above).
void all_reduce(Tensor& tensor, ReduceOp op = ReduceOp::Sum);

/// The process group of a new Gloo rendezvous (what init_process_group makes the default).
std::unique_ptr<ProcessGroup> make_gloo_group(const InitProcessGroupOptions& options);

}  // namespace sorix::distributed
