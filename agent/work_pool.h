// A fixed set of threads that run blocking work handed over by gRPC
// callback handlers, so that gRPC's own threads never block on a pull or a
// syscall-heavy operation.
#pragma once

#include <deque>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace podshim::agent {

class WorkPool {
 public:
  explicit WorkPool(int threads);
  WorkPool(const WorkPool&) = delete;
  WorkPool& operator=(const WorkPool&) = delete;
  // Runs every queued task, then joins the threads.
  ~WorkPool();

  // Queues `task`; it runs on one of the pool's threads.
  void Run(std::function<void()> task);

 private:
  void Loop();

  absl::Mutex mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace podshim::agent
