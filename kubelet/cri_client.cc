#include "kubelet/cri_client.h"

#include <chrono>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace podshim::kubelet {
namespace {

namespace rt = ::runtime::v1;

// Plain calls: quick metadata operations.
constexpr absl::Duration kDefaultTimeout = absl::Minutes(2);
// Pulls of large images may take a while.
constexpr absl::Duration kPullTimeout = absl::Minutes(10);

std::unique_ptr<grpc::ClientContext> Context(absl::Duration timeout) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() +
                    std::chrono::milliseconds(absl::ToInt64Milliseconds(timeout)));
  return ctx;
}

std::string Short(const std::string& id) { return id.substr(0, 13); }

}  // namespace

absl::Status FromGrpc(const grpc::Status& s, absl::string_view what) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      absl::StrCat(what, ": ", s.error_message()));
}

std::unique_ptr<CriClient> CriClient::Connect(const std::string& endpoint) {
  std::string target =
      absl::StartsWith(endpoint, "/") ? absl::StrCat("unix://", endpoint) : endpoint;
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(16 * 1024 * 1024);
  return std::unique_ptr<CriClient>(
      new CriClient(grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args)));
}

CriClient::CriClient(std::shared_ptr<grpc::Channel> channel)
    : channel_(std::move(channel)),
      runtime_(rt::RuntimeService::NewStub(channel_)),
      image_(rt::ImageService::NewStub(channel_)) {}

bool CriClient::WaitReady(absl::Duration timeout) {
  return channel_->WaitForConnected(std::chrono::system_clock::now() +
                                    std::chrono::milliseconds(absl::ToInt64Milliseconds(timeout)));
}

absl::StatusOr<rt::VersionResponse> CriClient::Version() {
  rt::VersionRequest req;
  req.set_version("v1");
  rt::VersionResponse resp;
  auto ctx = Context(absl::Seconds(10));
  if (auto s = FromGrpc(runtime_->Version(ctx.get(), req, &resp), "Version"); !s.ok()) return s;
  return resp;
}

absl::StatusOr<std::string> CriClient::RunPodSandbox(const rt::PodSandboxConfig& config,
                                                     absl::Duration timeout) {
  rt::RunPodSandboxRequest req;
  *req.mutable_config() = config;
  rt::RunPodSandboxResponse resp;
  auto ctx = Context(timeout);
  auto s = FromGrpc(runtime_->RunPodSandbox(ctx.get(), req, &resp),
                    absl::StrCat("RunPodSandbox ", config.metadata().namespace_(), "/",
                                 config.metadata().name()));
  if (!s.ok()) return s;
  return resp.pod_sandbox_id();
}

absl::Status CriClient::StopPodSandbox(const std::string& id, absl::Duration timeout) {
  rt::StopPodSandboxRequest req;
  req.set_pod_sandbox_id(id);
  rt::StopPodSandboxResponse resp;
  auto ctx = Context(timeout);
  return FromGrpc(runtime_->StopPodSandbox(ctx.get(), req, &resp),
                  absl::StrCat("StopPodSandbox ", Short(id)));
}

absl::Status CriClient::RemovePodSandbox(const std::string& id, absl::Duration timeout) {
  rt::RemovePodSandboxRequest req;
  req.set_pod_sandbox_id(id);
  rt::RemovePodSandboxResponse resp;
  auto ctx = Context(timeout);
  return FromGrpc(runtime_->RemovePodSandbox(ctx.get(), req, &resp),
                  absl::StrCat("RemovePodSandbox ", Short(id)));
}

absl::StatusOr<rt::PodSandboxStatusResponse> CriClient::PodSandboxStatus(const std::string& id) {
  rt::PodSandboxStatusRequest req;
  req.set_pod_sandbox_id(id);
  rt::PodSandboxStatusResponse resp;
  auto ctx = Context(kDefaultTimeout);
  auto s = FromGrpc(runtime_->PodSandboxStatus(ctx.get(), req, &resp),
                    absl::StrCat("PodSandboxStatus ", Short(id)));
  if (!s.ok()) return s;
  return resp;
}

absl::StatusOr<rt::ListPodSandboxResponse> CriClient::ListPodSandbox(
    const rt::PodSandboxFilter& filter) {
  rt::ListPodSandboxRequest req;
  *req.mutable_filter() = filter;
  rt::ListPodSandboxResponse resp;
  auto ctx = Context(kDefaultTimeout);
  auto s = FromGrpc(runtime_->ListPodSandbox(ctx.get(), req, &resp), "ListPodSandbox");
  if (!s.ok()) return s;
  return resp;
}

absl::StatusOr<std::string> CriClient::CreateContainer(const std::string& sandbox_id,
                                                       const rt::ContainerConfig& config,
                                                       const rt::PodSandboxConfig& sandbox_config) {
  rt::CreateContainerRequest req;
  req.set_pod_sandbox_id(sandbox_id);
  *req.mutable_config() = config;
  *req.mutable_sandbox_config() = sandbox_config;
  rt::CreateContainerResponse resp;
  auto ctx = Context(kDefaultTimeout);
  auto s = FromGrpc(
      runtime_->CreateContainer(ctx.get(), req, &resp),
      absl::StrCat("CreateContainer ", config.metadata().name(), " in ", Short(sandbox_id)));
  if (!s.ok()) return s;
  return resp.container_id();
}

absl::Status CriClient::StartContainer(const std::string& id) {
  rt::StartContainerRequest req;
  req.set_container_id(id);
  rt::StartContainerResponse resp;
  auto ctx = Context(kDefaultTimeout);
  return FromGrpc(runtime_->StartContainer(ctx.get(), req, &resp),
                  absl::StrCat("StartContainer ", Short(id)));
}

absl::Status CriClient::StopContainer(const std::string& id, int64_t grace_seconds) {
  rt::StopContainerRequest req;
  req.set_container_id(id);
  req.set_timeout(grace_seconds);
  rt::StopContainerResponse resp;
  auto ctx = Context(absl::Seconds(grace_seconds) + kDefaultTimeout);
  return FromGrpc(runtime_->StopContainer(ctx.get(), req, &resp),
                  absl::StrCat("StopContainer ", Short(id)));
}

absl::Status CriClient::RemoveContainer(const std::string& id) {
  rt::RemoveContainerRequest req;
  req.set_container_id(id);
  rt::RemoveContainerResponse resp;
  auto ctx = Context(kDefaultTimeout);
  return FromGrpc(runtime_->RemoveContainer(ctx.get(), req, &resp),
                  absl::StrCat("RemoveContainer ", Short(id)));
}

absl::StatusOr<rt::ListContainersResponse> CriClient::ListContainers(
    const rt::ContainerFilter& filter) {
  rt::ListContainersRequest req;
  *req.mutable_filter() = filter;
  rt::ListContainersResponse resp;
  auto ctx = Context(kDefaultTimeout);
  auto s = FromGrpc(runtime_->ListContainers(ctx.get(), req, &resp), "ListContainers");
  if (!s.ok()) return s;
  return resp;
}

absl::StatusOr<rt::ContainerStatusResponse> CriClient::ContainerStatus(const std::string& id) {
  rt::ContainerStatusRequest req;
  req.set_container_id(id);
  rt::ContainerStatusResponse resp;
  auto ctx = Context(kDefaultTimeout);
  auto s = FromGrpc(runtime_->ContainerStatus(ctx.get(), req, &resp),
                    absl::StrCat("ContainerStatus ", Short(id)));
  if (!s.ok()) return s;
  return resp;
}

absl::StatusOr<rt::ExecSyncResponse> CriClient::ExecSync(const std::string& id,
                                                         const std::vector<std::string>& cmd,
                                                         absl::Duration timeout) {
  rt::ExecSyncRequest req;
  req.set_container_id(id);
  for (const std::string& c : cmd) req.add_cmd(c);
  req.set_timeout(absl::ToInt64Seconds(timeout));
  rt::ExecSyncResponse resp;
  // The runtime enforces `timeout`; the deadline leaves it room to answer.
  auto ctx = Context(timeout + absl::Seconds(5));
  auto s =
      FromGrpc(runtime_->ExecSync(ctx.get(), req, &resp), absl::StrCat("ExecSync in ", Short(id)));
  if (!s.ok()) return s;
  return resp;
}

absl::StatusOr<rt::ImageStatusResponse> CriClient::ImageStatus(const std::string& image) {
  rt::ImageStatusRequest req;
  req.mutable_image()->set_image(image);
  rt::ImageStatusResponse resp;
  auto ctx = Context(kDefaultTimeout);
  auto s =
      FromGrpc(image_->ImageStatus(ctx.get(), req, &resp), absl::StrCat("ImageStatus ", image));
  if (!s.ok()) return s;
  return resp;
}

absl::StatusOr<std::string> CriClient::PullImage(const std::string& image,
                                                 const rt::PodSandboxConfig& sandbox_config) {
  rt::PullImageRequest req;
  req.mutable_image()->set_image(image);
  *req.mutable_sandbox_config() = sandbox_config;
  rt::PullImageResponse resp;
  auto ctx = Context(kPullTimeout);
  auto s = FromGrpc(image_->PullImage(ctx.get(), req, &resp), absl::StrCat("PullImage ", image));
  if (!s.ok()) return s;
  return resp.image_ref();
}

}  // namespace podshim::kubelet
