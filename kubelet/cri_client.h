// A CRI v1 client over gRPC: the RuntimeService and ImageService calls the
// kubelet makes, each with a deadline, returning absl::Status whose message
// names the RPC and the object ("StartContainer 3f2a...: ...").
#pragma once

#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/v1/api.grpc.pb.h"

namespace podshim::kubelet {

class CriClient {
 public:
  // `endpoint`: "unix:///path" (or a plain absolute path).
  static std::unique_ptr<CriClient> Connect(const std::string& endpoint);

  // Waits until the channel is connected.
  bool WaitReady(absl::Duration timeout);

  absl::StatusOr<::runtime::v1::VersionResponse> Version();
  absl::StatusOr<std::string> RunPodSandbox(const ::runtime::v1::PodSandboxConfig& config,
                                            absl::Duration timeout);
  absl::Status StopPodSandbox(const std::string& id, absl::Duration timeout);
  absl::Status RemovePodSandbox(const std::string& id, absl::Duration timeout);
  absl::StatusOr<::runtime::v1::PodSandboxStatusResponse> PodSandboxStatus(const std::string& id);
  absl::StatusOr<::runtime::v1::ListPodSandboxResponse> ListPodSandbox(
      const ::runtime::v1::PodSandboxFilter& filter);
  absl::StatusOr<std::string> CreateContainer(
      const std::string& sandbox_id, const ::runtime::v1::ContainerConfig& config,
      const ::runtime::v1::PodSandboxConfig& sandbox_config);
  absl::Status StartContainer(const std::string& id);
  // `grace`: how long the runtime waits after the stop signal before SIGKILL.
  absl::Status StopContainer(const std::string& id, int64_t grace_seconds);
  absl::Status RemoveContainer(const std::string& id);
  absl::StatusOr<::runtime::v1::ListContainersResponse> ListContainers(
      const ::runtime::v1::ContainerFilter& filter);
  absl::StatusOr<::runtime::v1::ContainerStatusResponse> ContainerStatus(const std::string& id);
  absl::StatusOr<::runtime::v1::ExecSyncResponse> ExecSync(const std::string& id,
                                                           const std::vector<std::string>& cmd,
                                                           absl::Duration timeout);

  absl::StatusOr<::runtime::v1::ImageStatusResponse> ImageStatus(const std::string& image);
  // The image reference the runtime resolved the pull to.
  absl::StatusOr<std::string> PullImage(const std::string& image,
                                        const ::runtime::v1::PodSandboxConfig& sandbox_config);

 private:
  explicit CriClient(std::shared_ptr<grpc::Channel> channel);

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<::runtime::v1::RuntimeService::Stub> runtime_;
  std::unique_ptr<::runtime::v1::ImageService::Stub> image_;
};

// gRPC status -> absl status with `what` in front of the message.
absl::Status FromGrpc(const grpc::Status& s, absl::string_view what);

}  // namespace podshim::kubelet
