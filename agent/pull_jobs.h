// PullImage calls of one image share one pull, and a pull outlives a caller
// whose deadline passed, so that the caller's retry finds it running (or
// done) instead of starting over.
//
// A job is keyed by the normalised reference ("busybox" and
// "docker.io/library/busybox:latest" are one key). Each job runs the pull on
// a thread of its own; callers wait for it with their own deadline and
// cancellation:
// - the job ends with a result: every caller waiting gets it;
// - a caller's deadline passes: that caller gets DEADLINE_EXCEEDED; when no
//   caller is left waiting, the pull goes on in the background for at most
//   `handoff_ttl` (counted from that moment) and is cancelled after it. A
//   caller that joins in that time takes it over (the bound is counted again
//   from its own deadline, should it pass);
// - a caller cancels: that caller gets CANCELLED; when it was the last one
//   waiting, the pull is cancelled (and, in the image module, leaves nothing
//   half-written), as the CRI's cancel asks.
// The first caller's credentials are used for the pull; a caller that joins
// brings the same reference, not necessarily the same credentials.
// A pull that finishes with nobody waiting keeps its image as any pull does.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agent/client_call.h"
#include "image/image_manager.h"
#include "image/registry_client.h"

namespace podshim::agent {

class PullJobs {
 public:
  // Pulls `ref` with `auth`; it must stop (CANCELLED) soon after
  // call.cancelled() turns true. ImageManager::Pull in podshimd.
  using PullFn = std::function<absl::StatusOr<image::ImageRecord>(
      const std::string& ref, const image::RegistryAuth& auth, const image::CallOptions& call)>;

  // `poll`: how often a waiting caller checks whether its client cancelled
  // (gRPC does not wake a handler that waits on something else).
  PullJobs(PullFn pull, absl::Duration handoff_ttl, absl::Duration poll = absl::Milliseconds(20));
  PullJobs(const PullJobs&) = delete;
  PullJobs& operator=(const PullJobs&) = delete;
  // Cancels every job and waits for its thread.
  ~PullJobs();

  // Pulls `ref` (whose normalised form is `key`) for a client whose call is
  // `call`, joining the job of `key` when one runs. A caller whose deadline
  // has already passed starts nothing: DEADLINE_EXCEEDED.
  absl::StatusOr<image::ImageRecord> Pull(const std::string& key, const std::string& ref,
                                          const image::RegistryAuth& auth, const ClientCall& call);

  // Jobs running now, and callers waiting for the job of `key` (for tests).
  int Running() const;
  int Waiters(const std::string& key) const;

 private:
  struct Job {
    std::string key;
    std::string ref;
    int waiters = 0;
    // Cancelled: the last caller cancelled, or podshimd stops.
    bool abort = false;
    // With no caller waiting, when the pull is given up.
    absl::Time orphaned_until = absl::InfiniteFuture();
    bool done = false;
    absl::StatusOr<image::ImageRecord> result;
    std::thread thread;
  };

  void RunJob(const std::shared_ptr<Job>& job, const image::RegistryAuth& auth);
  bool ShouldStop(const Job& job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Joins the threads of jobs that ended.
  void JoinFinished();

  const PullFn pull_;
  const absl::Duration handoff_ttl_;
  const absl::Duration poll_;

  mutable absl::Mutex mu_;
  absl::CondVar changed_;  // a job ended
  // The jobs a caller may join, by key. A cancelled job leaves the map at
  // once but runs until its pull has stopped.
  std::map<std::string, std::shared_ptr<Job>> jobs_ ABSL_GUARDED_BY(mu_);
  int running_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::thread> finished_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace podshim::agent
