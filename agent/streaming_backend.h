// The streaming server's backend (streaming/backend.h) on PodRuntime: an
// exec starts through runtime::StartExecInContainer, an attach connects to
// the container's monitor (runtime::AttachToContainer), a port-forward
// socket is made in the pod's network namespace.
#pragma once

#include <memory>
#include <string>

#include "agent/pod_runtime.h"
#include "streaming/backend.h"

namespace podshim::agent {

class StreamingBackend final : public streaming::Backend {
 public:
  explicit StreamingBackend(const PodRuntime& pods) : pods_(pods) {}
  absl::StatusOr<std::unique_ptr<streaming::Process>> StartExec(
      const streaming::ExecRequest& request) override;
  absl::StatusOr<std::unique_ptr<streaming::Process>> StartAttach(
      const streaming::AttachRequest& request) override;
  absl::StatusOr<runtime::UniqueFd> PodSocket(const std::string& pod_id, int family) override;

 private:
  const PodRuntime& pods_;
};

}  // namespace podshim::agent
