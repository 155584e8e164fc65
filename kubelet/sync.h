// The pod sync decisions, as pure functions: given the desired pod, what the
// runtime shows for it and the probe results, what to do next
// (ComputePodActions) and what to report (ComputePodStatus). The pod worker
// observes, calls these, and carries the actions out.
//
// The rules follow the kubelet's: the sandbox comes first; a sandbox of
// another uid or manifest hash (an old version of the pod) is killed; a dead
// sandbox is replaced unless the pod has finished; init containers run one at
// a time in order, each to success; then every app container; an exited
// container restarts per restartPolicy after the back-off; a container whose
// liveness or startup probe failed is killed (and then restarts per
// policy); of each container's dead instances only the newest is kept, for
// its last termination state; a pod whose containers are all done has its
// sandbox stopped.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "absl/types/optional.h"
#include "kubelet/backoff.h"
#include "kubelet/pod_spec.h"

namespace podshim::kubelet {

enum class ContainerState { kCreated, kRunning, kExited, kUnknown };

struct ObservedSandbox {
  std::string id;
  bool ready = false;
  int64_t created_at = 0;  // ns since the epoch
  uint32_t attempt = 0;
  std::string uid;            // label io.kubernetes.pod.uid
  std::string manifest_hash;  // label io.podshim.kubelet/manifest-hash
  std::string ip;
  int64_t grace_seconds = 30;  // annotation io.kubernetes.pod.terminationGracePeriod
};

struct ObservedContainer {
  std::string id;
  std::string sandbox_id;
  std::string name;
  bool init = false;
  uint32_t attempt = 0;  // = restart count
  ContainerState state = ContainerState::kUnknown;
  int32_t exit_code = 0;
  int64_t created_at = 0;  // ns
  int64_t started_at = 0;
  int64_t finished_at = 0;
  std::string reason;
  std::string message;
  std::string image;
  std::string image_ref;
};

// Every sandbox and container that carries this pod's namespace and name.
struct ObservedPod {
  std::vector<ObservedSandbox> sandboxes;
  std::vector<ObservedContainer> containers;
};

// Probe results for one running container instance.
struct ProbeVerdict {
  bool started = true;  // the startup probe succeeded, or there is none
  bool ready = true;    // the readiness probe succeeds, or there is none
  bool liveness_failed = false;
  bool startup_failed = false;
  std::string message;
};
using ProbeVerdicts = std::map<std::string, ProbeVerdict>;  // by container id

struct Waiting {
  std::string reason;
  std::string message;
};

struct ContainerKill {
  std::string id;
  std::string name;
  std::string reason;
};

struct ContainerStart {
  bool init = false;
  size_t index = 0;  // into pod.init_containers or pod.containers
  // Replaces an instance that ran: the back-off must be advanced.
  bool restart = false;
  absl::Time last_exit;
};

struct PodActions {
  // Sandboxes to tear down (their containers stopped, then they are stopped
  // and removed): other uids or hashes, older duplicates, a dead current one.
  std::vector<std::string> sandboxes_to_kill;
  bool create_sandbox = false;
  uint32_t sandbox_attempt = 0;
  std::vector<ContainerKill> containers_to_kill;
  // In the current sandbox, or in the new one when create_sandbox.
  std::vector<ContainerStart> containers_to_start;
  std::vector<std::string> containers_to_remove;
  // Every container is done for good: stop (not remove) the sandbox.
  bool stop_sandbox = false;
  // Containers waiting out a back-off, by name.
  std::map<std::string, Waiting> waiting;
  // When the earliest back-off ends.
  absl::optional<absl::Time> requeue_at;

  bool Empty() const {
    return sandboxes_to_kill.empty() && !create_sandbox && containers_to_kill.empty() &&
           containers_to_start.empty() && containers_to_remove.empty() && !stop_sandbox;
  }
};

// The back-off key of a container of `pod`.
std::string BackoffKey(const Pod& pod, absl::string_view container);

// The newest sandbox of this very pod (uid and manifest hash), or null.
const ObservedSandbox* CurrentSandbox(const Pod& pod, const ObservedPod& observed);

PodActions ComputePodActions(const Pod& pod, const ObservedPod& observed,
                             const ProbeVerdicts& probes, const Backoff& backoff, absl::Time now);

// What gets reported.
struct ContainerStateView {
  enum Kind { kWaiting, kRunning, kTerminated };
  Kind kind = kWaiting;
  std::string reason;
  std::string message;
  int32_t exit_code = 0;
  int64_t started_at = 0;   // ns
  int64_t finished_at = 0;  // ns
  std::string container_id;
};

struct ContainerStatusView {
  std::string name;
  std::string image;
  std::string image_id;
  std::string container_id;
  ContainerStateView state;
  absl::optional<ContainerStateView> last_state;  // always kTerminated
  bool ready = false;
  bool started = false;
  uint32_t restart_count = 0;
};

struct PodStatusView {
  std::string phase = "Pending";  // Pending, Running, Succeeded, Failed
  bool sandbox_ready = false;
  bool initialized = false;
  bool containers_ready = false;
  std::string pod_ip;
  int64_t start_time = 0;  // ns; the current sandbox's creation
  std::vector<ContainerStatusView> init_containers;
  std::vector<ContainerStatusView> containers;
};

// `waiting`: reasons by container name for containers that are not running
// (back-off from ComputePodActions, errors from starting them).
PodStatusView ComputePodStatus(const Pod& pod, const ObservedPod& observed,
                               const ProbeVerdicts& probes,
                               const std::map<std::string, Waiting>& waiting);

}  // namespace podshim::kubelet
