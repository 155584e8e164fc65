#include "agent/work_pool.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace podshim::agent {

WorkPool::WorkPool(std::string name, int threads, size_t max_queued)
    : name_(std::move(name)), max_queued_(max_queued) {
  threads_.reserve(static_cast<size_t>(threads));
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Loop(); });
}

WorkPool::~WorkPool() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (auto& t : threads_) t.join();
}

absl::Status WorkPool::Run(Task task) {
  absl::MutexLock lock(&mu_);
  // Counted against every worker, busy or about to wake: a burst is not
  // refused because idle workers have not taken their tasks yet.
  if (running_ + queue_.size() >= threads_.size() + max_queued_) {
    return absl::ResourceExhaustedError(
        absl::StrCat("podshimd is busy: all ", threads_.size(), " ", name_,
                     " workers are taken and ", queue_.size(), " calls wait for one (at most ",
                     max_queued_, " may wait: rpc_queue_limit); try again later"));
  }
  queue_.push_back(std::move(task));
  return absl::OkStatus();
}

size_t WorkPool::queued() const {
  absl::MutexLock lock(&mu_);
  return queue_.size();
}

void WorkPool::Loop() {
  for (;;) {
    Task task;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](WorkPool* p)
               ABSL_EXCLUSIVE_LOCKS_REQUIRED(p->mu_) { return p->stopping_ || !p->queue_.empty(); },
          this));
      if (queue_.empty()) return;  // stopping, and nothing left to run
      task = std::move(queue_.front());
      queue_.pop_front();
      ++running_;
    }
    if (task.expired && absl::Now() >= task.deadline) {
      task.expired();
    } else {
      task.run();
    }
    absl::MutexLock lock(&mu_);
    --running_;
  }
}

}  // namespace podshim::agent
