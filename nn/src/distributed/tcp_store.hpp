#pragma once
// Internal: a small key-value store over TCP for the Gloo rendezvous (Gloo 0.5 has none): rank 0
// serves it, every rank (rank 0 too) is a client. set(key, bytes); get/wait block until the key
// exists, at most the timeout (then std::runtime_error). Keys are written once per rendezvous.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <gloo/rendezvous/store.h>

namespace sorix::distributed::detail {

class TcpStoreServer;

class TcpStore : public gloo::rendezvous::Store {
 public:
  /// is_server: also serve the store on `port` (on 127.0.0.1 only when host is 127.0.0.1 or
  /// localhost, else on every interface). Connects to host:port, retrying until `timeout`.
  TcpStore(const std::string& host, std::uint16_t port, bool is_server, std::chrono::milliseconds timeout);
  ~TcpStore() override;

  void set(const std::string& key, const std::vector<char>& data) override;
  std::vector<char> get(const std::string& key) override;
  void wait(const std::vector<std::string>& keys) override { wait(keys, timeout_); }
  void wait(const std::vector<std::string>& keys, const std::chrono::milliseconds& timeout) override;

 private:
  std::vector<char> request(char op, const std::string& key, const std::vector<char>& data,
                            std::chrono::milliseconds timeout);

  std::unique_ptr<TcpStoreServer> server_;
  int fd_ = -1;
  std::string where_;
  std::chrono::milliseconds timeout_;
};

}  // namespace sorix::distributed::detail
