#pragma once
// A per-epoch progress bar (batches, loss, samples/s, ETA) on a terminal; plain periodic lines
// when the output is not a terminal (logs, CI).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

namespace sorix::examples {

class ProgressBar {
 public:
  ProgressBar(std::string label, std::size_t total_batches)
      : label_(std::move(label)), total_(total_batches), tty_(::isatty(::fileno(stdout)) != 0),
        start_(std::chrono::steady_clock::now()) {}

  void update(std::size_t done, double loss, std::size_t samples) {
    const double secs = elapsed();
    const double rate = secs > 0 ? static_cast<double>(samples) / secs : 0.0;
    const double eta = done > 0 ? secs * static_cast<double>(total_ - done) / static_cast<double>(done) : 0.0;
    if (tty_) {
      const int width = 30;
      const int filled = total_ ? static_cast<int>(width * done / total_) : width;
      std::printf("\r%s [%s%s] %zu/%zu loss %.4f  %.0f samples/s  ETA %.1fs ", label_.c_str(),
                  std::string(static_cast<std::size_t>(filled), '#').c_str(),
                  std::string(static_cast<std::size_t>(width - filled), '.').c_str(), done, total_, loss, rate, eta);
      if (done == total_) std::printf("\n");
      std::fflush(stdout);
    } else if (done == total_ || done % std::max<std::size_t>(1, total_ / 4) == 0) {
      std::printf("%s %zu/%zu loss %.4f  %.0f samples/s  ETA %.1fs\n", label_.c_str(), done, total_, loss, rate, eta);
      std::fflush(stdout);
    }
  }

  double elapsed() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  std::string label_;
  std::size_t total_;
  bool tty_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace sorix::examples
