#include "agent/pull_jobs.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agent/logging.h"

namespace podshim::agent {

PullJobs::PullJobs(PullFn pull, absl::Duration handoff_ttl, absl::Duration poll)
    : pull_(std::move(pull)), handoff_ttl_(handoff_ttl), poll_(poll) {}

PullJobs::~PullJobs() {
  std::vector<std::thread> threads;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    for (auto& [key, job] : jobs_) job->abort = true;  // the others were aborted already
    mu_.Await(absl::Condition(
        +[](PullJobs* p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(p->mu_) { return p->running_ == 0; }, this));
    threads.swap(finished_);
  }
  for (auto& t : threads) t.join();
}

int PullJobs::Running() const {
  absl::MutexLock lock(&mu_);
  return running_;
}

int PullJobs::Waiters(const std::string& key) const {
  absl::MutexLock lock(&mu_);
  auto it = jobs_.find(key);
  return it == jobs_.end() ? 0 : it->second->waiters;
}

void PullJobs::JoinFinished() {
  std::vector<std::thread> threads;
  {
    absl::MutexLock lock(&mu_);
    threads.swap(finished_);
  }
  for (auto& t : threads) t.join();
}

bool PullJobs::ShouldStop(const Job& job) {
  return job.abort || (job.waiters == 0 && absl::Now() >= job.orphaned_until);
}

void PullJobs::RunJob(const std::shared_ptr<Job>& job, const image::RegistryAuth& auth) {
  image::CallOptions options;  // no deadline of its own: the callers' decide
  options.cancelled = [this, job] {
    absl::MutexLock lock(&mu_);
    return ShouldStop(*job);
  };
  auto result = pull_(job->ref, auth, options);
  absl::MutexLock lock(&mu_);
  if (job->waiters == 0) {
    // Nobody waits: say what became of the pull handed to the background.
    if (result.ok()) {
      Log("image")->info("pull of {} finished in the background after its client gave up: {}",
                         job->ref, result->id);
    } else {
      Log("image")->warn("pull of {}, left in the background after its client gave up: {}",
                         job->ref, result.status().ToString());
    }
  }
  job->result = std::move(result);
  job->done = true;
  if (auto it = jobs_.find(job->key); it != jobs_.end() && it->second == job) jobs_.erase(it);
  --running_;
  // This thread ends right after; whoever comes next joins it.
  finished_.push_back(std::move(job->thread));
  changed_.SignalAll();
}

absl::StatusOr<image::ImageRecord> PullJobs::Pull(const std::string& key, const std::string& ref,
                                                  const image::RegistryAuth& auth,
                                                  const ClientCall& call) {
  JoinFinished();
  auto log = Log("image");
  absl::MutexLock lock(&mu_);
  if (stopping_)
    return absl::UnavailableError(absl::StrCat("pull ", ref, ": podshimd is stopping"));
  std::shared_ptr<Job> job;
  if (auto it = jobs_.find(key); it != jobs_.end()) {
    job = it->second;
    log->debug("pull of {} joins the one of {} in progress ({} waiting)", ref, job->ref,
               job->waiters);
  } else {
    if (call.DeadlinePassed(absl::Now())) {
      return absl::DeadlineExceededError(
          absl::StrCat("pull ", ref, ": the call's deadline had passed when it arrived"));
    }
    job = std::make_shared<Job>();
    job->key = key;
    job->ref = ref;
    jobs_[key] = job;
    ++running_;
    // Started under mu_, so the thread finds job->thread set when it ends.
    job->thread = std::thread([this, job, auth] { RunJob(job, auth); });
  }
  ++job->waiters;
  job->orphaned_until = absl::InfiniteFuture();
  while (!job->done) {
    const absl::Time now = absl::Now();
    const bool deadline = call.DeadlinePassed(now);
    if (deadline || call.Cancelled()) {
      // A cancellation right at the deadline is gRPC's doing: the deadline.
      const bool by_deadline = deadline || !call.CancelledBeforeDeadline(now);
      --job->waiters;
      if (job->waiters > 0) {
        return by_deadline
                   ? absl::DeadlineExceededError(absl::StrCat(
                         "pull ", ref, ": the call's deadline passed; the pull goes on for the ",
                         job->waiters, " other caller(s) waiting for it"))
                   : absl::CancelledError(absl::StrCat(
                         "pull ", ref, ": cancelled by the client; the pull goes on for the ",
                         job->waiters, " other caller(s) waiting for it"));
      }
      if (!by_deadline) {
        job->abort = true;
        // A caller that comes now starts afresh instead of joining a pull
        // that is being cancelled.
        if (auto it = jobs_.find(key); it != jobs_.end() && it->second == job) jobs_.erase(it);
        log->info("pull of {} cancelled by its client", ref);
        return absl::CancelledError(absl::StrCat("pull ", ref, ": cancelled by the client"));
      }
      job->orphaned_until = now + handoff_ttl_;
      log->info(
          "pull of {}: the client's deadline passed; the pull goes on in the background for "
          "at most {} for a retry to take",
          ref, absl::FormatDuration(handoff_ttl_));
      return absl::DeadlineExceededError(absl::StrCat(
          "pull ", ref,
          ": the call's deadline passed; the pull goes on in the background and a PullImage "
          "of the same image joins it"));
    }
    changed_.WaitWithDeadline(&mu_, std::min(call.deadline, now + poll_));
  }
  --job->waiters;
  return job->result;
}

}  // namespace podshim::agent
