// The Gloo backend of sorix::distributed::ProcessGroup: a full mesh of TCP pairs made through a
// store (Gloo's FileStore, or our TcpStore), and Gloo's collectives on raw bytes. Every failure of
// the engine becomes a std::runtime_error naming the rank, the world size and the operation.
#include <gloo/allgather.h>
#include <gloo/allgatherv.h>
#include <gloo/allreduce.h>
#include <gloo/alltoallv.h>
#include <gloo/barrier.h>
#include <gloo/broadcast.h>
#include <gloo/math.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/file_store.h>
#include <gloo/rendezvous/prefix_store.h>
#include <gloo/transport/tcp/device.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <stdexcept>

#include "distributed/tcp_store.hpp"
#include "sorix/core/error.hpp"
#include "sorix/nn/distributed/process_group.hpp"

namespace sorix::distributed {

namespace {

struct Where {
  std::string kind;  // "file" or "tcp"
  std::string path, host;
  std::uint16_t port = 0;
};

Where parse_init_method(const InitProcessGroupOptions& o, int& rank, int& size) {
  auto env_int = [](const char* name) -> int {
    const char* v = std::getenv(name);
    check(v != nullptr && *v != '\0', "init_process_group", "init method env:// needs the environment variable ", name);
    char* end = nullptr;
    const long x = std::strtol(v, &end, 10);
    check(end != v && *end == '\0' && x >= 0 && x < (1 << 20), "init_process_group", name, "='", v,
          "' is not a non-negative integer");
    return static_cast<int>(x);
  };
  Where w;
  const std::string& m = o.init_method;
  if (m == "env://") {
    rank = o.rank >= 0 ? o.rank : env_int("RANK");
    size = o.world_size >= 0 ? o.world_size : env_int("WORLD_SIZE");
    const char* addr = std::getenv("MASTER_ADDR");
    check(addr != nullptr && *addr != '\0', "init_process_group", "init method env:// needs MASTER_ADDR");
    w.kind = "tcp";
    w.host = addr;
    const int port = env_int("MASTER_PORT");
    check(port > 0 && port < 65536, "init_process_group", "MASTER_PORT=", port, " is not a port");
    w.port = static_cast<std::uint16_t>(port);
  } else if (m.rfind("tcp://", 0) == 0) {
    const std::string hp = m.substr(6);
    const auto colon = hp.rfind(':');
    check(colon != std::string::npos && colon > 0, "init_process_group", "init method '", m,
          "' must be tcp://host:port");
    w.kind = "tcp";
    w.host = hp.substr(0, colon);
    char* end = nullptr;
    const long port = std::strtol(hp.c_str() + colon + 1, &end, 10);
    check(*end == '\0' && port > 0 && port < 65536, "init_process_group", "init method '", m, "' has no valid port");
    w.port = static_cast<std::uint16_t>(port);
    rank = o.rank;
    size = o.world_size;
  } else if (m.rfind("file://", 0) == 0) {
    w.kind = "file";
    w.path = m.substr(7);
    check(!w.path.empty() && w.path[0] == '/', "init_process_group", "init method '", m,
          "' must name an absolute directory: file:///path/dir");
    rank = o.rank;
    size = o.world_size;
  } else {
    throw std::invalid_argument("init_process_group: unknown init method '" + m +
                                "': expected env://, tcp://host:port or file:///path");
  }
  check(size >= 1, "init_process_group", "world_size must be >= 1, got ", size, " (init method ", m, ")");
  check(rank >= 0 && rank < size, "init_process_group", "rank must be in [0, ", size, "), got ", rank);
  return w;
}

bool is_loopback(const std::string& host) { return host == "127.0.0.1" || host == "localhost" || host == "::1"; }

class GlooGroup final : public ProcessGroup {
 public:
  explicit GlooGroup(const InitProcessGroupOptions& o) : timeout_(o.timeout) {
    check(o.timeout.count() > 0, "init_process_group", "timeout must be positive, got ", o.timeout.count(), " ms");
    // Gloo writes to its sockets without MSG_NOSIGNAL: a peer gone would kill this process with
    // SIGPIPE instead of failing the collective. Ignore SIGPIPE if the program left it at default.
    struct sigaction current {};
    if (::sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL) ::signal(SIGPIPE, SIG_IGN);
    const Where w = parse_init_method(o, rank_, size_);
    gloo::transport::tcp::attr attr;
    if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname != nullptr && *ifname != '\0') {
      attr.iface = ifname;
    } else if (const char* h = std::getenv("SORIX_HOSTNAME"); h != nullptr && *h != '\0') {
      attr.hostname = h;
    } else if (w.kind == "file" || is_loopback(w.host)) {
      attr.hostname = "127.0.0.1";
    } else {
      char name[256] = {};
      ::gethostname(name, sizeof(name) - 1);
      attr.hostname = name;
    }
    try {
      if (w.kind == "file") {
        std::filesystem::create_directories(w.path);
        store_ = std::make_unique<gloo::rendezvous::FileStore>(w.path);
      } else {
        store_ = std::make_unique<detail::TcpStore>(w.host, w.port, rank_ == 0, o.timeout);
      }
      device_ = gloo::transport::tcp::CreateDevice(attr);
      auto ctx = std::make_shared<gloo::rendezvous::Context>(rank_, size_);
      ctx->setTimeout(o.timeout);
      ctx->connectFullMesh(*store_, device_);
      context_ = ctx;
    } catch (const std::exception& e) {
      std::ostringstream os;
      os << "init_process_group: rank " << rank_ << " of " << size_ << " could not join the group through "
         << o.init_method << " within " << o.timeout.count() << " ms: " << e.what();
      throw std::runtime_error(os.str());
    }
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "gloo"; }
  std::chrono::milliseconds timeout() const override { return timeout_; }

  void barrier() override {
    run("barrier", [&] {
      gloo::BarrierOptions opts(context_);
      opts.setTag(next_tag());
      opts.setTimeout(timeout_);
      gloo::barrier(opts);
    });
  }

  void broadcast(void* data, std::size_t bytes, int root) override {
    check(root >= 0 && root < size_, "broadcast", "root ", root, " is not a rank of a group of ", size_);
    if (size_ == 1 || bytes == 0) return;
    run("broadcast", [&] {
      gloo::BroadcastOptions opts(context_);
      opts.setOutput(static_cast<std::uint8_t*>(data), bytes);
      opts.setRoot(root);
      opts.setTag(next_tag());
      opts.setTimeout(timeout_);
      gloo::broadcast(opts);
    });
  }

  void all_gather(const void* in, void* out, std::size_t bytes) override {
    if (size_ == 1) {
      if (bytes != 0) std::memcpy(out, in, bytes);
      return;
    }
    run("all_gather", [&] {
      gloo::AllgatherOptions opts(context_);
      opts.setInput(const_cast<std::uint8_t*>(static_cast<const std::uint8_t*>(in)), bytes);
      opts.setOutput(static_cast<std::uint8_t*>(out), bytes * static_cast<std::size_t>(size_));
      opts.setTag(next_tag());
      opts.setTimeout(timeout_);
      gloo::allgather(opts);
    });
  }

  void all_gatherv(const void* in, void* out, const std::vector<std::size_t>& bytes_per_rank) override {
    check(bytes_per_rank.size() == static_cast<std::size_t>(size_), "all_gatherv", "bytes_per_rank has ",
          bytes_per_rank.size(), " entries for a group of ", size_);
    if (size_ == 1) {
      if (bytes_per_rank[0] != 0) std::memcpy(out, in, bytes_per_rank[0]);
      return;
    }
    run("all_gatherv", [&] {
      gloo::AllgathervOptions opts(context_);
      opts.setInput(const_cast<std::uint8_t*>(static_cast<const std::uint8_t*>(in)),
                    bytes_per_rank[static_cast<std::size_t>(rank_)]);
      opts.setOutput(static_cast<std::uint8_t*>(out), bytes_per_rank);
      opts.setTag(next_tag());
      opts.setTimeout(timeout_);
      gloo::allgatherv(opts);
    });
  }

  void all_to_allv(const void* in, const std::vector<std::size_t>& send, void* out,
                   const std::vector<std::size_t>& recv) override {
    check(send.size() == static_cast<std::size_t>(size_) && recv.size() == send.size(), "all_to_allv",
          "send and recv need one entry per rank (", size_, "), got ", send.size(), " and ", recv.size());
    if (size_ == 1) {
      if (send[0] != 0) std::memcpy(out, in, send[0]);
      return;
    }
    run("all_to_allv", [&] {
      gloo::AlltoallvOptions opts(context_);
      std::vector<std::int64_t> s(send.begin(), send.end()), r(recv.begin(), recv.end());
      opts.setInput(const_cast<std::uint8_t*>(static_cast<const std::uint8_t*>(in)), s);
      opts.setOutput(static_cast<std::uint8_t*>(out), r);
      opts.setTag(next_tag());
      opts.setTimeout(timeout_);
      gloo::alltoallv(opts);
    });
  }

  void all_reduce(float* data, std::size_t n, ReduceOp op) override { reduce(data, n, op); }
  void all_reduce(double* data, std::size_t n, ReduceOp op) override { reduce(data, n, op); }

 private:
  template <class T>
  void reduce(T* data, std::size_t n, ReduceOp op) {
    if (size_ == 1 || n == 0) return;
    run("all_reduce", [&] {
      gloo::AllreduceOptions opts(context_);
      opts.setOutput(data, n);
      using Fn = void (*)(void*, const void*, const void*, size_t);
      opts.setReduceFunction(op == ReduceOp::Sum   ? static_cast<Fn>(&gloo::sum<T>)
                             : op == ReduceOp::Max ? static_cast<Fn>(&gloo::max<T>)
                                                   : static_cast<Fn>(&gloo::min<T>));
      opts.setTag(next_tag());
      opts.setTimeout(timeout_);
      gloo::allreduce(opts);
    });
  }

  template <class F>
  void run(const char* op, F&& f) {
    check(context_ != nullptr, op, "the process group was destroyed");
    try {
      f();
    } catch (const std::exception& e) {
      std::ostringstream os;
      os << "distributed: " << op << " failed on rank " << rank_ << " of " << size_ << " (timeout "
         << timeout_.count() << " ms; a peer gone or too slow?): " << e.what();
      throw std::runtime_error(os.str());
    }
  }

  std::uint32_t next_tag() { return tag_++; }

  int rank_ = 0, size_ = 1;
  std::chrono::milliseconds timeout_;
  std::unique_ptr<gloo::rendezvous::Store> store_;
  std::shared_ptr<gloo::transport::Device> device_;
  std::shared_ptr<gloo::Context> context_;
  std::uint32_t tag_ = 0;
};

}  // namespace

std::unique_ptr<ProcessGroup> make_gloo_group(const InitProcessGroupOptions& options) {
  return std::make_unique<GlooGroup>(options);
}

}  // namespace sorix::distributed
