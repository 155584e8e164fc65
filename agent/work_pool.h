// A fixed set of threads that run blocking work handed over by gRPC
// callback handlers, so that gRPC's own threads never block on a pull or a
// syscall-heavy operation. Its queue is bounded: work offered while it is
// full is refused (RESOURCE_EXHAUSTED), never kept without limit. Work whose
// deadline passed while it waited is not run: its `expired` handler runs
// instead, so a client that gave up costs nothing more.
#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace podshim::agent {

class WorkPool {
 public:
  // `threads` workers; at most `max_queued` tasks wait beyond those the
  // workers run (`name` names the pool in errors).
  WorkPool(std::string name, int threads, size_t max_queued);
  WorkPool(const WorkPool&) = delete;
  WorkPool& operator=(const WorkPool&) = delete;
  // Runs every queued task, then joins the threads.
  ~WorkPool();

  struct Task {
    std::function<void()> run;
    // When a worker takes the task at or after `deadline`, `expired` runs
    // instead of `run` (if set; else `run` runs).
    absl::Time deadline = absl::InfiniteFuture();
    std::function<void()> expired;
  };
  // Queues `task`; RESOURCE_EXHAUSTED (and the task is dropped unrun) when
  // every worker has a task and max_queued more are waiting already.
  absl::Status Run(Task task);
  absl::Status Run(std::function<void()> run) { return Run(Task{std::move(run), {}, {}}); }

  // Tasks waiting for a worker now (for logs and tests).
  size_t queued() const;

 private:
  void Loop();

  const std::string name_;
  const size_t max_queued_;
  mutable absl::Mutex mu_;
  std::deque<Task> queue_ ABSL_GUARDED_BY(mu_);
  size_t running_ ABSL_GUARDED_BY(mu_) = 0;  // tasks the workers run now
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace podshim::agent
