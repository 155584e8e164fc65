#include "agent/runtime_service.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "agent/logging.h"
#include "agent/validate.h"
#include "agent/version.h"

namespace podshim::agent {
namespace {

// The streaming server's URL for a request PodRuntime checked (Exec,
// PortForward); UNAVAILABLE when podshimd runs without a streaming server.
template <typename Request>
grpc::Status StreamingUrl(streaming::Server* server, absl::StatusOr<Request> prepared,
                          std::string* url) {
  if (!prepared.ok()) return ToGrpcStatus(prepared.status());
  if (server == nullptr) {
    return ToGrpcStatus(absl::UnavailableError("this podshimd runs no streaming server"));
  }
  *url = server->UrlFor(std::move(*prepared));
  return grpc::Status::OK;
}

// The CRI API version this runtime speaks. The kubelet sends its own in
// VersionRequest.version; "0.1.0" is what CRI runtimes answer.
constexpr char kKubeletApiVersion[] = "0.1.0";

}  // namespace

grpc::ServerUnaryReactor* RuntimeServiceImpl::Version(grpc::CallbackServerContext* ctx,
                                                      const cri::VersionRequest* /*req*/,
                                                      cri::VersionResponse* resp) {
  return ServeUnary(ctx, "RuntimeService/Version", [&] {
    resp->set_version(kKubeletApiVersion);
    resp->set_runtime_name("podshim");
    resp->set_runtime_version(kVersion);
    resp->set_runtime_api_version("v1");
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* RuntimeServiceImpl::Status(grpc::CallbackServerContext* ctx,
                                                     const cri::StatusRequest* req,
                                                     cri::StatusResponse* resp) {
  return ServeUnary(ctx, "RuntimeService/Status", [&] {
    auto* runtime_ready = resp->mutable_status()->add_conditions();
    runtime_ready->set_type("RuntimeReady");
    runtime_ready->set_status(true);
    auto* network_ready = resp->mutable_status()->add_conditions();
    network_ready->set_type("NetworkReady");
    if (auto net = pods_.NetworkStatus(); net.ok()) {
      network_ready->set_status(true);
    } else {
      network_ready->set_status(false);
      network_ready->set_reason("NetworkPluginNotReady");
      network_ready->set_message(absl::StrCat("podshim: ", net.message()));
    }
    // The default handler (empty name).
    auto* features = resp->add_runtime_handlers()->mutable_features();
    features->set_recursive_read_only_mounts(true);
    resp->mutable_features();
    if (req->verbose()) {
      (*resp->mutable_info())["config"] = ConfigToJson(config_).dump();
      (*resp->mutable_info())["version"] = kVersion;
    }
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* RuntimeServiceImpl::RuntimeConfig(
    grpc::CallbackServerContext* ctx, const cri::RuntimeConfigRequest* /*req*/,
    cri::RuntimeConfigResponse* resp) {
  return ServeUnary(ctx, "RuntimeService/RuntimeConfig", [&] {
    resp->mutable_linux()->set_cgroup_driver(cri::CGROUPFS);
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* RuntimeServiceImpl::RunPodSandbox(grpc::CallbackServerContext* ctx,
                                                            const cri::RunPodSandboxRequest* req,
                                                            cri::RunPodSandboxResponse* resp) {
  return ServeUnaryOn(pool_, ctx, "RuntimeService/RunPodSandbox", [this, ctx, req, resp] {
    return ToGrpcStatus(pods_.RunPodSandbox(*req, resp, ClientCallOf(ctx)));
  });
}

grpc::ServerUnaryReactor* RuntimeServiceImpl::StopPodSandbox(
    grpc::CallbackServerContext* ctx, const cri::StopPodSandboxRequest* req,
    cri::StopPodSandboxResponse* /*resp*/) {
  return ServeUnaryOn(pool_, ctx, "RuntimeService/StopPodSandbox",
                      [this, req] { return ToGrpcStatus(pods_.StopPodSandbox(*req)); });
}

grpc::ServerUnaryReactor* RuntimeServiceImpl::RemovePodSandbox(
    grpc::CallbackServerContext* ctx, const cri::RemovePodSandboxRequest* req,
    cri::RemovePodSandboxResponse* /*resp*/) {
  return ServeUnaryOn(pool_, ctx, "RuntimeService/RemovePodSandbox",
                      [this, req] { return ToGrpcStatus(pods_.RemovePodSandbox(*req)); });
}

grpc::ServerUnaryReactor* RuntimeServiceImpl::PodSandboxStatus(
    grpc::CallbackServerContext* ctx, const cri::PodSandboxStatusRequest* req,
    cri::PodSandboxStatusResponse* resp) {
  return ServeUnary(ctx, "RuntimeService/PodSandboxStatus",
                    [this, req, resp] { return ToGrpcStatus(pods_.PodSandboxStatus(*req, resp)); });
}

grpc::ServerUnaryReactor* RuntimeServiceImpl::ListPodSandbox(grpc::CallbackServerContext* ctx,
                                                             const cri::ListPodSandboxRequest* req,
                                                             cri::ListPodSandboxResponse* resp) {
  return ServeUnary(ctx, "RuntimeService/ListPodSandbox",
                    [this, req, resp] { return ToGrpcStatus(pods_.ListPodSandbox(*req, resp)); });
}

grpc::ServerUnaryReactor* RuntimeServiceImpl::CreateContainer(
    grpc::CallbackServerContext* ctx, const cri::CreateContainerRequest* req,
    cri::CreateContainerResponse* resp) {
  return ServeUnaryOn(pool_, ctx, "RuntimeService/CreateContainer", [this, req, resp] {
    return ToGrpcStatus(pods_.CreateContainer(*req, resp));
  });
}

grpc::ServerUnaryReactor* RuntimeServiceImpl::StartContainer(
    grpc::CallbackServerContext* ctx, const cri::StartContainerRequest* req,
    cri::StartContainerResponse* /*resp*/) {
  return ServeUnaryOn(pool_, ctx, "RuntimeService/StartContainer",
                      [this, req] { return ToGrpcStatus(pods_.StartContainer(*req)); });
}

grpc::ServerUnaryReactor* RuntimeServiceImpl::StopContainer(grpc::CallbackServerContext* ctx,
                                                            const cri::StopContainerRequest* req,
                                                            cri::StopContainerResponse* /*resp*/) {
  return ServeUnaryOn(pool_, ctx, "RuntimeService/StopContainer",
                      [this, req] { return ToGrpcStatus(pods_.StopContainer(*req)); });
}

grpc::ServerUnaryReactor* RuntimeServiceImpl::RemoveContainer(
    grpc::CallbackServerContext* ctx, const cri::RemoveContainerRequest* req,
    cri::RemoveContainerResponse* /*resp*/) {
  return ServeUnaryOn(pool_, ctx, "RuntimeService/RemoveContainer",
                      [this, req] { return ToGrpcStatus(pods_.RemoveContainer(*req)); });
}

grpc::ServerUnaryReactor* RuntimeServiceImpl::ListContainers(grpc::CallbackServerContext* ctx,
                                                             const cri::ListContainersRequest* req,
                                                             cri::ListContainersResponse* resp) {
  return ServeUnary(ctx, "RuntimeService/ListContainers",
                    [this, req, resp] { return ToGrpcStatus(pods_.ListContainers(*req, resp)); });
}

grpc::ServerUnaryReactor* RuntimeServiceImpl::ContainerStatus(
    grpc::CallbackServerContext* ctx, const cri::ContainerStatusRequest* req,
    cri::ContainerStatusResponse* resp) {
  return ServeUnary(ctx, "RuntimeService/ContainerStatus",
                    [this, req, resp] { return ToGrpcStatus(pods_.ContainerStatus(*req, resp)); });
}

grpc::ServerUnaryReactor* RuntimeServiceImpl::UpdateContainerResources(
    grpc::CallbackServerContext* ctx, const cri::UpdateContainerResourcesRequest* req,
    cri::UpdateContainerResourcesResponse* /*resp*/) {
  return ServeUnaryOn(pool_, ctx, "RuntimeService/UpdateContainerResources",
                      [this, req] { return ToGrpcStatus(pods_.UpdateContainerResources(*req)); });
}

grpc::ServerUnaryReactor* RuntimeServiceImpl::ReopenContainerLog(
    grpc::CallbackServerContext* ctx, const cri::ReopenContainerLogRequest* req,
    cri::ReopenContainerLogResponse* /*resp*/) {
  return ServeUnaryOn(pool_, ctx, "RuntimeService/ReopenContainerLog",
                      [this, req] { return ToGrpcStatus(pods_.ReopenContainerLog(*req)); });
}

grpc::ServerUnaryReactor* RuntimeServiceImpl::ExecSync(grpc::CallbackServerContext* ctx,
                                                       const cri::ExecSyncRequest* req,
                                                       cri::ExecSyncResponse* resp) {
  return ServeUnaryOn(exec_pool_, ctx, "RuntimeService/ExecSync",
                      [this, req, resp] { return ToGrpcStatus(pods_.ExecSync(*req, resp)); });
}

grpc::ServerUnaryReactor* RuntimeServiceImpl::Exec(grpc::CallbackServerContext* ctx,
                                                   const cri::ExecRequest* req,
                                                   cri::ExecResponse* resp) {
  return ServeUnaryOn(pool_, ctx, "RuntimeService/Exec", [this, req, resp] {
    return StreamingUrl(streaming_, pods_.PrepareExec(*req), resp->mutable_url());
  });
}

grpc::ServerUnaryReactor* RuntimeServiceImpl::Attach(grpc::CallbackServerContext* ctx,
                                                     const cri::AttachRequest* req,
                                                     cri::AttachResponse* resp) {
  return ServeUnaryOn(pool_, ctx, "RuntimeService/Attach", [this, req, resp] {
    return StreamingUrl(streaming_, pods_.PrepareAttach(*req), resp->mutable_url());
  });
}

grpc::ServerUnaryReactor* RuntimeServiceImpl::PortForward(grpc::CallbackServerContext* ctx,
                                                          const cri::PortForwardRequest* req,
                                                          cri::PortForwardResponse* resp) {
  return ServeUnaryOn(pool_, ctx, "RuntimeService/PortForward", [this, req, resp] {
    return StreamingUrl(streaming_, pods_.PreparePortForward(*req), resp->mutable_url());
  });
}

grpc::ServerUnaryReactor* RuntimeServiceImpl::ContainerStats(grpc::CallbackServerContext* ctx,
                                                             const cri::ContainerStatsRequest* req,
                                                             cri::ContainerStatsResponse* resp) {
  return ServeUnaryOn(pool_, ctx, "RuntimeService/ContainerStats",
                      [this, req, resp] { return ToGrpcStatus(pods_.ContainerStats(*req, resp)); });
}

grpc::ServerUnaryReactor* RuntimeServiceImpl::ListContainerStats(
    grpc::CallbackServerContext* ctx, const cri::ListContainerStatsRequest* req,
    cri::ListContainerStatsResponse* resp) {
  return ServeUnaryOn(pool_, ctx, "RuntimeService/ListContainerStats", [this, req, resp] {
    return ToGrpcStatus(pods_.ListContainerStats(*req, resp));
  });
}

grpc::ServerUnaryReactor* RuntimeServiceImpl::PodSandboxStats(
    grpc::CallbackServerContext* ctx, const cri::PodSandboxStatsRequest* req,
    cri::PodSandboxStatsResponse* resp) {
  return ServeUnaryOn(pool_, ctx, "RuntimeService/PodSandboxStats", [this, req, resp] {
    return ToGrpcStatus(pods_.PodSandboxStats(*req, resp));
  });
}

grpc::ServerUnaryReactor* RuntimeServiceImpl::ListPodSandboxStats(
    grpc::CallbackServerContext* ctx, const cri::ListPodSandboxStatsRequest* req,
    cri::ListPodSandboxStatsResponse* resp) {
  return ServeUnaryOn(pool_, ctx, "RuntimeService/ListPodSandboxStats", [this, req, resp] {
    return ToGrpcStatus(pods_.ListPodSandboxStats(*req, resp));
  });
}

grpc::ServerUnaryReactor* RuntimeServiceImpl::UpdateRuntimeConfig(
    grpc::CallbackServerContext* ctx, const cri::UpdateRuntimeConfigRequest* req,
    cri::UpdateRuntimeConfigResponse* /*resp*/) {
  // The pod CIDR shapes podshim's default network (a CNI config file on the
  // machine, when there is one, brings its own ranges).
  return ServeUnary(ctx, "RuntimeService/UpdateRuntimeConfig", [&] {
    const std::string& cidr = req->runtime_config().network_config().pod_cidr();
    if (!cidr.empty()) {
      if (auto s = ValidatePodCidr(cidr); !s.ok()) return ToGrpcStatus(s);
      pods_.SetPodCidr(cidr);
    }
    return grpc::Status::OK;
  });
}

grpc::ServerWriteReactor<cri::ContainerEventResponse>* RuntimeServiceImpl::GetContainerEvents(
    grpc::CallbackServerContext* /*ctx*/, const cri::GetEventsRequest* /*req*/) {
  auto* stream = new EventStream(&events_);
  // Logged once subscribed: from this line on no event is missed (tests wait for it).
  Log("rpc")->debug("RuntimeService/GetContainerEvents subscribed ({} subscribers)",
                    events_.subscribers());
  return stream;
}

}  // namespace podshim::agent
