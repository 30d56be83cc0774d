// The communication thread (comm_thread.hpp).
#include "distributed/comm_thread.hpp"

#include <stdexcept>

namespace sorix::distributed::detail {

CommThread::CommThread(std::string who) : who_(std::move(who)), thread_([this] { loop(); }) {}

CommThread::~CommThread() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
    jobs_.clear();
  }
  work_.notify_all();
  thread_.join();
}

void CommThread::submit(std::string what, std::function<void()> job) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (failed_) return;  // the queue is stopped: wait() reports why
    jobs_.emplace_back(std::move(what), std::move(job));
  }
  work_.notify_one();
}

void CommThread::rethrow_locked() {
  throw std::runtime_error("DistributedDataParallel: " + who_ + ": " + error_);
}

void CommThread::wait() {
  std::unique_lock<std::mutex> lock(mutex_);
  idle_.wait(lock, [this] { return (jobs_.empty() && !busy_) || failed_; });
  if (failed_) rethrow_locked();
}

void CommThread::run(std::string what, std::function<void()> job) {
  submit(std::move(what), std::move(job));
  wait();
}

void CommThread::loop() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    work_.wait(lock, [this] { return stop_ || !jobs_.empty(); });
    if (stop_) return;
    auto [what, job] = std::move(jobs_.front());
    jobs_.pop_front();
    busy_ = true;
    lock.unlock();
    std::string error;
    try {
      job();
    } catch (const std::exception& e) {
      error = what + " failed: " + e.what();
    } catch (...) {
      error = what + " failed: unknown exception";
    }
    job = nullptr;  // the job's captures die on this thread, before the caller may reuse them
    lock.lock();
    busy_ = false;
    if (!error.empty() && !failed_) {
      failed_ = true;
      error_ = error;
      jobs_.clear();
    }
    if (jobs_.empty() || failed_) idle_.notify_all();
  }
}

}  // namespace sorix::distributed::detail
