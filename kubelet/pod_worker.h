// One pod's sync loop, on its own thread: observe what the runtime has for
// the pod's namespace/name, decide (sync.h), act through the CRI, run due
// probes, publish the status. It wakes every sync period, when a probe or a
// back-off is due, and when the desired pod changes.
//
// Given no desired pod it tears down everything of that namespace/name
// (containers stopped with the grace period, sandboxes stopped and removed,
// emptyDirs and logs deleted) and then reports Finished().
// Destroying a worker stops its thread and leaves the pod running.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "kubelet/backoff.h"
#include "kubelet/cri_client.h"
#include "kubelet/cri_config.h"
#include "kubelet/pod_spec.h"
#include "kubelet/probe.h"
#include "kubelet/status.h"
#include "kubelet/sync.h"
#include "nlohmann/json.hpp"

namespace podshim::kubelet {

struct WorkerOptions {
  NodeConfig node;
  RenderContext render;
  absl::Duration sync_period = absl::Seconds(1);
  absl::Duration backoff_initial = absl::Seconds(10);
  absl::Duration backoff_max = absl::Minutes(5);
  // Where <namespace>_<name>.json status files go; empty: nowhere.
  std::string status_dir;
};

class PodWorker {
 public:
  // `namespace_name`/`name` identify the pod; `desired` may be null (a pod
  // left behind by an earlier run whose manifest is gone).
  PodWorker(CriClient* cri, const WorkerOptions& options, std::string namespace_name,
            std::string name, std::shared_ptr<const Pod> desired);
  ~PodWorker();
  PodWorker(const PodWorker&) = delete;
  PodWorker& operator=(const PodWorker&) = delete;

  // A new desired pod; null removes the pod.
  void Update(std::shared_ptr<const Pod> desired);
  std::shared_ptr<const Pod> desired() const;
  // Removal done: nothing of the pod is left.
  bool Finished() const;
  // Waits until Finished() or `deadline`; returns Finished().
  bool WaitFinished(absl::Time deadline) const;
  // The latest status as a Pod object.
  nlohmann::json Status() const;

 private:
  void Run();
  void SyncPod(const Pod& pod);
  void Terminate();

  absl::StatusOr<ObservedPod> Observe();
  ProbeVerdicts Verdicts(const ObservedPod& observed, const Pod& pod);
  // Runs due probes; true when a verdict changed and the pod needs a sync.
  bool RunProbes(const Pod& pod, const ObservedPod& observed, absl::Time* next_due);
  ProbeResult RunProbe(const Pod& pod, const Container& c, const Probe& probe,
                       const std::string& container_id, const std::string& pod_ip);

  // Carries out `actions`; true when anything was done.
  bool Execute(const Pod& pod, const ObservedPod& observed, const PodActions& actions);
  void KillContainers(const std::vector<ContainerKill>& kills, int64_t grace_seconds);
  void KillSandbox(const ObservedSandbox& sandbox, const ObservedPod& observed);
  void StartContainer(const Pod& pod, const ContainerStart& start, const std::string& sandbox_id,
                      const ::runtime::v1::PodSandboxConfig& sandbox_config,
                      const ObservedPod& observed);
  absl::StatusOr<ImageInfo> EnsureImage(const Container& c,
                                        const ::runtime::v1::PodSandboxConfig& sandbox_config,
                                        std::string* waiting_reason);
  absl::Status PrepareVolumes(const Pod& pod);
  void CleanupPodFiles(const std::string& uid);

  void Publish(nlohmann::json status);
  // Logs `what` unless it is what was last logged about `topic`.
  void LogOnce(const std::string& topic, const std::string& what);

  CriClient* cri_;
  WorkerOptions options_;
  std::string namespace_;
  std::string name_;
  std::string key_;

  mutable absl::Mutex mu_;
  std::shared_ptr<const Pod> desired_ ABSL_GUARDED_BY(mu_);
  bool wake_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  nlohmann::json status_ ABSL_GUARDED_BY(mu_);
  absl::Time terminating_since_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();

  // Owned by the worker thread.
  Backoff backoff_;
  struct ContainerProbes {
    std::string name;
    absl::optional<ProbeState> liveness;
    absl::optional<ProbeState> readiness;
    absl::optional<ProbeState> startup;
  };
  std::map<std::string, ContainerProbes> probes_;  // by container id
  std::map<std::string, Waiting> errors_;          // by container name
  std::map<std::string, uint32_t> last_attempt_;   // by container name
  std::map<std::string, absl::Time> pull_failed_;  // by image
  absl::Time sandbox_failed_ = absl::InfinitePast();
  absl::optional<Waiting> sandbox_error_;
  std::set<std::string> known_uids_;  // whose volumes and logs to clean up
  absl::Time next_sync_;
  std::map<std::string, std::string> last_logged_;
  ConditionClock clock_;
  std::string last_status_file_content_;

  std::thread thread_;
};

}  // namespace podshim::kubelet
