#pragma once
// The communication thread of one nn::DistributedDataParallel: a plain std::thread (not a TBB task:
// it blocks inside Gloo, which would starve the arena's workers) that runs the instance's
// collectives one at a time, in the order they were submitted. Every rank submits the same jobs
// in the same order, so the collectives match across ranks; the group is then used from this
// thread alone while jobs are pending (the caller waits for them before using it itself).
//
// Errors: a job that throws stops the queue (later jobs are skipped: the group is no longer in
// step with its peers); wait() and run() rethrow it on the caller's thread as std::runtime_error
// "DistributedDataParallel: rank r of R: <job> failed: <what>", and so does every later call.
// Shutdown: the destructor lets the running job end (a collective waits at most the group's
// timeout), drops the queued ones and joins the thread.
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace sorix::distributed::detail {

class CommThread {
 public:
  /// `who` prefixes error messages ("rank 1 of 4").
  explicit CommThread(std::string who);
  ~CommThread();
  CommThread(const CommThread&) = delete;
  CommThread& operator=(const CommThread&) = delete;

  /// Queues job (`what` names it in errors) and returns at once.
  void submit(std::string what, std::function<void()> job);
  /// Blocks until every submitted job has run; rethrows the first failure.
  void wait();
  /// submit + wait.
  void run(std::string what, std::function<void()> job);

 private:
  void loop();
  [[noreturn]] void rethrow_locked();

  std::string who_;
  std::mutex mutex_;
  std::condition_variable work_, idle_;
  std::deque<std::pair<std::string, std::function<void()>>> jobs_;
  bool busy_ = false, stop_ = false, failed_ = false;
  std::string error_;
  std::thread thread_;  // last: starts once the members above exist
};

}  // namespace sorix::distributed::detail
