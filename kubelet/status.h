// A pod and its status as Kubernetes JSON (kind Pod, with metadata, a short
// spec and status: phase, conditions, podIP, container states with restart
// counts and last termination), for the status files and the read-only
// HTTP endpoints.
#pragma once

#include <map>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "kubelet/pod_spec.h"
#include "kubelet/sync.h"
#include "nlohmann/json.hpp"

namespace podshim::kubelet {

// RFC 3339 in UTC, seconds precision ("2024-05-01T12:00:00Z"); ns since the
// epoch in, as the CRI reports times. 0 gives "".
std::string Rfc3339(int64_t unix_nanos);

// Remembers when each pod condition last changed, as the API server does.
class ConditionClock {
 public:
  // The time `type` entered `status`: now if it just changed.
  absl::Time Observe(const std::string& type, bool status, absl::Time now);

 private:
  std::map<std::string, std::pair<bool, absl::Time>> last_;
};

struct RenderContext {
  std::string node_name;
  std::string runtime_name = "cri";  // containerID prefix: "<runtime>://<id>"
};

nlohmann::json RenderPod(const Pod& pod, const PodStatusView& status, const RenderContext& ctx,
                         ConditionClock& clock, absl::Time now);

// A pod being removed (its manifest is gone): phase and deletion marked.
nlohmann::json RenderTerminating(nlohmann::json pod, absl::Time since);

}  // namespace podshim::kubelet
