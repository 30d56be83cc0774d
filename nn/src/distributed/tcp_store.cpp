// The rendezvous TCP store (tcp_store.hpp). Wire format, both ways: a request is op (1 byte:
// 'S' set, 'G' get), key length (u32), key, data length (u64), data; the reply to 'G' is data
// length (u64) and data, sent once the key exists; 'S' is answered with one byte.
#include "distributed/tcp_store.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace sorix::distributed::detail {

namespace {

[[noreturn]] void fail(const std::string& what) {
  throw std::runtime_error("distributed: TCP store: " + what + (errno != 0 ? std::string(": ") + std::strerror(errno) : ""));
}

// Reads or writes exactly n bytes; false when the peer closed, the deadline passed or an error.
bool io_all(int fd, char* p, std::size_t n, bool write, std::chrono::steady_clock::time_point deadline) {
  while (n > 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd pfd{fd, static_cast<short>(write ? POLLOUT : POLLIN), 0};
    const int r = ::poll(&pfd, 1, static_cast<int>(std::min<long long>(left.count(), 1000)));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return false;
    if (r == 0) continue;
    const ssize_t k = write ? ::send(fd, p, n, MSG_NOSIGNAL) : ::recv(fd, p, n, 0);
    if (k < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (k <= 0) return false;
    p += k;
    n -= static_cast<std::size_t>(k);
  }
  return true;
}

constexpr auto kForever = std::chrono::hours(24 * 365);

}  // namespace

// Rank 0's server: one thread accepting, one per client connection; a map guarded by a mutex.
class TcpStoreServer {
 public:
  // loopback: listen on 127.0.0.1 only (a store for this machine's ranks); else every interface.
  TcpStoreServer(std::uint16_t port, bool loopback) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (listen_fd_ < 0) fail("socket");
    const int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(loopback ? INADDR_LOOPBACK : INADDR_ANY);
    addr.sin_port = htons(port);
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      const int e = errno;
      ::close(listen_fd_);
      errno = e;
      fail("cannot serve on port " + std::to_string(port));
    }
    if (::listen(listen_fd_, 128) != 0) fail("listen");
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~TcpStoreServer() {
    stop_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (int fd : clients_) ::shutdown(fd, SHUT_RDWR);
    }
    cv_.notify_all();
    acceptor_.join();
    for (auto& t : workers_) t.join();
    for (int fd : clients_) ::close(fd);
    ::close(listen_fd_);
  }

 private:
  void accept_loop() {
    while (!stop_) {
      pollfd pfd{listen_fd_, POLLIN, 0};
      if (::poll(&pfd, 1, 200) <= 0) continue;
      const int fd = ::accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) continue;
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) {
        ::close(fd);
        break;
      }
      clients_.push_back(fd);
      workers_.emplace_back([this, fd] { serve(fd); });
    }
  }

  void serve(int fd) {
    const auto forever = std::chrono::steady_clock::now() + kForever;
    while (!stop_) {
      char op = 0;
      std::uint32_t klen = 0;
      std::uint64_t dlen = 0;
      if (!io_all(fd, &op, 1, false, forever) || !io_all(fd, reinterpret_cast<char*>(&klen), 4, false, forever)) return;
      std::string key(klen, '\0');
      if (!io_all(fd, key.data(), klen, false, forever) || !io_all(fd, reinterpret_cast<char*>(&dlen), 8, false, forever))
        return;
      std::vector<char> data(dlen);
      if (!io_all(fd, data.data(), dlen, false, forever)) return;
      if (op == 'S') {
        {
          std::lock_guard<std::mutex> lock(mu_);
          map_[key] = std::move(data);
        }
        cv_.notify_all();
        char ok = 1;
        if (!io_all(fd, &ok, 1, true, forever)) return;
      } else {
        std::vector<char> value;
        {
          std::unique_lock<std::mutex> lock(mu_);
          cv_.wait(lock, [&] { return stop_ || map_.count(key) != 0; });
          if (stop_) return;
          value = map_[key];
        }
        std::uint64_t n = value.size();
        if (!io_all(fd, reinterpret_cast<char*>(&n), 8, true, forever) || !io_all(fd, value.data(), n, true, forever))
          return;
      }
    }
  }

  int listen_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, std::vector<char>> map_;
  std::vector<int> clients_;
  std::thread acceptor_;
  std::vector<std::thread> workers_;
};

TcpStore::TcpStore(const std::string& host, std::uint16_t port, bool is_server, std::chrono::milliseconds timeout)
    : where_(host + ":" + std::to_string(port)), timeout_(timeout) {
  if (is_server) {
    const bool loopback = host == "127.0.0.1" || host == "localhost";
    server_ = std::make_unique<TcpStoreServer>(port, loopback);
  }
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const int rc = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res);
  if (rc != 0 || res == nullptr) {
    errno = 0;
    fail("cannot resolve " + where_ + ": " + ::gai_strerror(rc));
  }
  // The server may not be up yet: retry until the timeout.
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0) {
      ::freeaddrinfo(res);
      fail("socket");
    }
    if (::connect(fd_, res->ai_addr, res->ai_addrlen) == 0) break;
    ::close(fd_);
    fd_ = -1;
    if (std::chrono::steady_clock::now() >= deadline) {
      ::freeaddrinfo(res);
      errno = 0;
      fail("no store at " + where_ + " within the timeout of " + std::to_string(timeout.count()) + " ms");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ::freeaddrinfo(res);
  const int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

TcpStore::~TcpStore() {
  if (fd_ >= 0) ::close(fd_);
}

std::vector<char> TcpStore::request(char op, const std::string& key, const std::vector<char>& data,
                                    std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::vector<char> msg(1 + 4 + key.size() + 8 + data.size());
  const std::uint32_t klen = static_cast<std::uint32_t>(key.size());
  const std::uint64_t dlen = data.size();
  char* p = msg.data();
  *p++ = op;
  std::memcpy(p, &klen, 4);
  std::memcpy(p + 4, key.data(), key.size());
  std::memcpy(p + 4 + key.size(), &dlen, 8);
  if (!data.empty()) std::memcpy(p + 12 + key.size(), data.data(), data.size());  // null data(): UB even for 0
  errno = 0;
  if (!io_all(fd_, msg.data(), msg.size(), true, deadline)) fail("sending '" + key + "' to " + where_ + " failed");
  if (op == 'S') {
    char ok = 0;
    if (!io_all(fd_, &ok, 1, false, deadline)) fail("no answer from " + where_ + " to setting '" + key + "'");
    return {};
  }
  std::uint64_t n = 0;
  if (!io_all(fd_, reinterpret_cast<char*>(&n), 8, false, deadline)) {
    fail("key '" + key + "' did not appear in the store at " + where_ + " within " + std::to_string(timeout.count()) +
         " ms (a peer missing?)");
  }
  std::vector<char> value(n);
  if (!io_all(fd_, value.data(), n, false, deadline)) fail("reading '" + key + "' from " + where_ + " failed");
  return value;
}

void TcpStore::set(const std::string& key, const std::vector<char>& data) { request('S', key, data, timeout_); }

std::vector<char> TcpStore::get(const std::string& key) { return request('G', key, {}, timeout_); }

void TcpStore::wait(const std::vector<std::string>& keys, const std::chrono::milliseconds& timeout) {
  for (const auto& k : keys) request('G', k, {}, timeout);
}

}  // namespace sorix::distributed::detail
