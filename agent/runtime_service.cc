#include "agent/runtime_service.h"

#include "agent/version.h"

namespace podshim::agent {
namespace {

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
    network_ready->set_status(false);
    network_ready->set_reason("NetworkPluginNotReady");
    network_ready->set_message("podshim: pod networking is not implemented yet");
    // The default handler (empty name); no optional features yet.
    resp->add_runtime_handlers()->mutable_features();
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

}  // namespace podshim::agent
