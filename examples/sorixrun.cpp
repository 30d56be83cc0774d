// sorixrun: starts N local ranks of a sorix program, as torchrun does on one machine.
//
//   sorixrun --nproc N [--master-port P] program args...
//
// Each child gets RANK = LOCAL_RANK = 0..N-1, WORLD_SIZE = LOCAL_WORLD_SIZE = N, MASTER_ADDR =
// 127.0.0.1 and MASTER_PORT (a free port unless --master-port), so the program's
// distributed::init_process_group() with the default "env://" finds its peers (rank 0 serves the
// TCP store). SIGINT and SIGTERM are forwarded to every rank. When a rank fails (non-zero exit or
// a signal) the others are sent SIGTERM, then SIGKILL after 10 s; sorixrun exits with the first
// failure's status (128 + signal for a signal), 0 when every rank succeeded.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

namespace {

std::vector<pid_t> children;
volatile sig_atomic_t forwarded = 0;

void forward_signal(int sig) {
  forwarded = sig;
  for (pid_t p : children)
    if (p > 0) ::kill(p, sig);  // a finished rank's entry is -1: kill(-1) would signal everything
}

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  int port = -1;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0)
    port = ntohs(addr.sin_port);
  ::close(fd);
  return port;
}

int usage() {
  std::cerr << "usage: sorixrun --nproc N [--master-port P] program [args...]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  int nproc = -1, port = -1, i = 1;
  for (; i < argc; ++i) {
    const std::string a = argv[i];
    if ((a == "--nproc" || a == "--nproc-per-node" || a == "--nproc_per_node") && i + 1 < argc) {
      nproc = std::atoi(argv[++i]);
    } else if (a == "--master-port" && i + 1 < argc) {
      port = std::atoi(argv[++i]);
    } else if (a.rfind("--", 0) == 0) {
      std::cerr << "sorixrun: unknown option " << a << "\n";
      return usage();
    } else {
      break;
    }
  }
  if (nproc < 1 || i >= argc) return usage();
  if (port < 0) port = free_port();
  if (port <= 0) {
    std::cerr << "sorixrun: no free port for the store\n";
    return 1;
  }
  struct sigaction sa {};
  sa.sa_handler = forward_signal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);

  for (int r = 0; r < nproc; ++r) {
    const pid_t pid = ::fork();
    if (pid < 0) {
      std::cerr << "sorixrun: fork failed: " << std::strerror(errno) << "\n";
      forward_signal(SIGKILL);
      return 1;
    }
    if (pid == 0) {
      ::signal(SIGINT, SIG_DFL);
      ::signal(SIGTERM, SIG_DFL);
      ::setenv("RANK", std::to_string(r).c_str(), 1);
      ::setenv("LOCAL_RANK", std::to_string(r).c_str(), 1);
      ::setenv("WORLD_SIZE", std::to_string(nproc).c_str(), 1);
      ::setenv("LOCAL_WORLD_SIZE", std::to_string(nproc).c_str(), 1);
      ::setenv("MASTER_ADDR", "127.0.0.1", 1);
      ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
      ::execvp(argv[i], argv + i);
      std::cerr << "sorixrun: cannot run " << argv[i] << ": " << std::strerror(errno) << "\n";
      ::_exit(127);
    }
    children.push_back(pid);
  }

  int status_out = 0;
  std::size_t left = children.size();
  bool stopping = false;
  auto kill_deadline = std::chrono::steady_clock::time_point::max();
  while (left > 0) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid > 0) {
      --left;
      const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      for (auto& c : children)
        if (c == pid) c = -1;  // gone: never signalled again
      if (code != 0 && status_out == 0) {
        status_out = code;
        std::cerr << "sorixrun: a rank failed (status " << code << "); stopping the others\n";
      }
      if (code != 0 && !stopping) {
        stopping = true;
        for (pid_t p : children)
          if (p > 0) ::kill(p, SIGTERM);
        kill_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      }
      continue;
    }
    if (pid < 0 && errno != EINTR) break;
    if (std::chrono::steady_clock::now() > kill_deadline) {
      for (pid_t p : children)
        if (p > 0) ::kill(p, SIGKILL);
      kill_deadline = std::chrono::steady_clock::time_point::max();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (status_out == 0 && forwarded != 0) status_out = 128 + forwarded;
  return status_out;
}
