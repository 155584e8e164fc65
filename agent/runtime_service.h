// RuntimeService: the pod and container half of the CRI.
#pragma once

#include <string>

#include "agent/config.h"
#include "agent/event_bus.h"
#include "agent/pod_runtime.h"
#include "agent/rpc.h"
#include "agent/work_pool.h"
#include "runtime/v1/api.grpc.pb.h"
#include "streaming/server.h"

namespace podshim::agent {

namespace cri = ::runtime::v1;

class RuntimeServiceImpl final : public cri::RuntimeService::CallbackService {
 public:
  // `pool` runs the pod and container calls, `exec_pool` the ExecSyncs (a
  // pool of their own: commands that run long never hold up the others).
  // `streaming` (may be null: Exec is then UNAVAILABLE) hands out the
  // streaming URLs.
  RuntimeServiceImpl(Config config, PodRuntime& pods, WorkPool& pool, WorkPool& exec_pool,
                     EventBus& events, streaming::Server* streaming = nullptr)
      : config_(std::move(config)),
        pods_(pods),
        pool_(pool),
        exec_pool_(exec_pool),
        events_(events),
        streaming_(streaming) {}

  grpc::ServerUnaryReactor* Version(grpc::CallbackServerContext* ctx,
                                    const cri::VersionRequest* req,
                                    cri::VersionResponse* resp) override;
  grpc::ServerUnaryReactor* Status(grpc::CallbackServerContext* ctx, const cri::StatusRequest* req,
                                   cri::StatusResponse* resp) override;
  grpc::ServerUnaryReactor* RuntimeConfig(grpc::CallbackServerContext* ctx,
                                          const cri::RuntimeConfigRequest* req,
                                          cri::RuntimeConfigResponse* resp) override;

  // Not implemented until their issues land; each answers UNIMPLEMENTED
  // naming itself.
  grpc::ServerUnaryReactor* RunPodSandbox(grpc::CallbackServerContext* ctx,
                                          const cri::RunPodSandboxRequest* req,
                                          cri::RunPodSandboxResponse* resp) override;
  grpc::ServerUnaryReactor* StopPodSandbox(grpc::CallbackServerContext* ctx,
                                           const cri::StopPodSandboxRequest* req,
                                           cri::StopPodSandboxResponse* resp) override;
  grpc::ServerUnaryReactor* RemovePodSandbox(grpc::CallbackServerContext* ctx,
                                             const cri::RemovePodSandboxRequest* req,
                                             cri::RemovePodSandboxResponse* resp) override;
  grpc::ServerUnaryReactor* PodSandboxStatus(grpc::CallbackServerContext* ctx,
                                             const cri::PodSandboxStatusRequest* req,
                                             cri::PodSandboxStatusResponse* resp) override;
  grpc::ServerUnaryReactor* ListPodSandbox(grpc::CallbackServerContext* ctx,
                                           const cri::ListPodSandboxRequest* req,
                                           cri::ListPodSandboxResponse* resp) override;
  grpc::ServerWriteReactor<cri::StreamPodSandboxesResponse>* StreamPodSandboxes(
      grpc::CallbackServerContext* /*ctx*/,
      const cri::StreamPodSandboxesRequest* /*req*/) override {
    return StreamNotImplemented<cri::StreamPodSandboxesResponse>(
        "RuntimeService/StreamPodSandboxes");
  }
  grpc::ServerUnaryReactor* CreateContainer(grpc::CallbackServerContext* ctx,
                                            const cri::CreateContainerRequest* req,
                                            cri::CreateContainerResponse* resp) override;
  grpc::ServerUnaryReactor* StartContainer(grpc::CallbackServerContext* ctx,
                                           const cri::StartContainerRequest* req,
                                           cri::StartContainerResponse* resp) override;
  grpc::ServerUnaryReactor* StopContainer(grpc::CallbackServerContext* ctx,
                                          const cri::StopContainerRequest* req,
                                          cri::StopContainerResponse* resp) override;
  grpc::ServerUnaryReactor* RemoveContainer(grpc::CallbackServerContext* ctx,
                                            const cri::RemoveContainerRequest* req,
                                            cri::RemoveContainerResponse* resp) override;
  grpc::ServerUnaryReactor* ListContainers(grpc::CallbackServerContext* ctx,
                                           const cri::ListContainersRequest* req,
                                           cri::ListContainersResponse* resp) override;
  grpc::ServerWriteReactor<cri::StreamContainersResponse>* StreamContainers(
      grpc::CallbackServerContext* /*ctx*/, const cri::StreamContainersRequest* /*req*/) override {
    return StreamNotImplemented<cri::StreamContainersResponse>("RuntimeService/StreamContainers");
  }
  grpc::ServerUnaryReactor* ContainerStatus(grpc::CallbackServerContext* ctx,
                                            const cri::ContainerStatusRequest* req,
                                            cri::ContainerStatusResponse* resp) override;
  grpc::ServerUnaryReactor* UpdateContainerResources(
      grpc::CallbackServerContext* ctx, const cri::UpdateContainerResourcesRequest* req,
      cri::UpdateContainerResourcesResponse* resp) override;
  grpc::ServerUnaryReactor* ReopenContainerLog(grpc::CallbackServerContext* ctx,
                                               const cri::ReopenContainerLogRequest* req,
                                               cri::ReopenContainerLogResponse* resp) override;
  grpc::ServerUnaryReactor* ExecSync(grpc::CallbackServerContext* ctx,
                                     const cri::ExecSyncRequest* req,
                                     cri::ExecSyncResponse* resp) override;
  // Exec, Attach and PortForward answer a URL of the streaming server
  // (streaming/server.h); UNAVAILABLE when podshimd runs without one.
  grpc::ServerUnaryReactor* Exec(grpc::CallbackServerContext* ctx, const cri::ExecRequest* req,
                                 cri::ExecResponse* resp) override;
  grpc::ServerUnaryReactor* Attach(grpc::CallbackServerContext* ctx, const cri::AttachRequest* req,
                                   cri::AttachResponse* resp) override;
  grpc::ServerUnaryReactor* PortForward(grpc::CallbackServerContext* ctx,
                                        const cri::PortForwardRequest* req,
                                        cri::PortForwardResponse* resp) override;
  grpc::ServerUnaryReactor* ContainerStats(grpc::CallbackServerContext* ctx,
                                           const cri::ContainerStatsRequest* req,
                                           cri::ContainerStatsResponse* resp) override;
  grpc::ServerUnaryReactor* ListContainerStats(grpc::CallbackServerContext* ctx,
                                               const cri::ListContainerStatsRequest* req,
                                               cri::ListContainerStatsResponse* resp) override;
  grpc::ServerWriteReactor<cri::StreamContainerStatsResponse>* StreamContainerStats(
      grpc::CallbackServerContext* /*ctx*/,
      const cri::StreamContainerStatsRequest* /*req*/) override {
    return StreamNotImplemented<cri::StreamContainerStatsResponse>(
        "RuntimeService/StreamContainerStats");
  }
  grpc::ServerUnaryReactor* PodSandboxStats(grpc::CallbackServerContext* ctx,
                                            const cri::PodSandboxStatsRequest* req,
                                            cri::PodSandboxStatsResponse* resp) override;
  grpc::ServerUnaryReactor* ListPodSandboxStats(grpc::CallbackServerContext* ctx,
                                                const cri::ListPodSandboxStatsRequest* req,
                                                cri::ListPodSandboxStatsResponse* resp) override;
  grpc::ServerWriteReactor<cri::StreamPodSandboxStatsResponse>* StreamPodSandboxStats(
      grpc::CallbackServerContext* /*ctx*/,
      const cri::StreamPodSandboxStatsRequest* /*req*/) override {
    return StreamNotImplemented<cri::StreamPodSandboxStatsResponse>(
        "RuntimeService/StreamPodSandboxStats");
  }
  grpc::ServerUnaryReactor* UpdateRuntimeConfig(grpc::CallbackServerContext* ctx,
                                                const cri::UpdateRuntimeConfigRequest* req,
                                                cri::UpdateRuntimeConfigResponse* resp) override;
  grpc::ServerUnaryReactor* CheckpointContainer(
      grpc::CallbackServerContext* ctx, const cri::CheckpointContainerRequest* /*req*/,
      cri::CheckpointContainerResponse* /*resp*/) override {
    return UnaryNotImplemented(ctx, "RuntimeService/CheckpointContainer");
  }
  grpc::ServerUnaryReactor* CheckpointPod(grpc::CallbackServerContext* ctx,
                                          const cri::CheckpointPodRequest* /*req*/,
                                          cri::CheckpointPodResponse* /*resp*/) override {
    return UnaryNotImplemented(ctx, "RuntimeService/CheckpointPod");
  }
  grpc::ServerUnaryReactor* RestorePod(grpc::CallbackServerContext* ctx,
                                       const cri::RestorePodRequest* /*req*/,
                                       cri::RestorePodResponse* /*resp*/) override {
    return UnaryNotImplemented(ctx, "RuntimeService/RestorePod");
  }
  grpc::ServerWriteReactor<cri::ContainerEventResponse>* GetContainerEvents(
      grpc::CallbackServerContext* ctx, const cri::GetEventsRequest* req) override;
  grpc::ServerUnaryReactor* ListMetricDescriptors(
      grpc::CallbackServerContext* ctx, const cri::ListMetricDescriptorsRequest* /*req*/,
      cri::ListMetricDescriptorsResponse* /*resp*/) override {
    return UnaryNotImplemented(ctx, "RuntimeService/ListMetricDescriptors");
  }
  grpc::ServerUnaryReactor* ListPodSandboxMetrics(
      grpc::CallbackServerContext* ctx, const cri::ListPodSandboxMetricsRequest* /*req*/,
      cri::ListPodSandboxMetricsResponse* /*resp*/) override {
    return UnaryNotImplemented(ctx, "RuntimeService/ListPodSandboxMetrics");
  }
  grpc::ServerWriteReactor<cri::StreamPodSandboxMetricsResponse>* StreamPodSandboxMetrics(
      grpc::CallbackServerContext* /*ctx*/,
      const cri::StreamPodSandboxMetricsRequest* /*req*/) override {
    return StreamNotImplemented<cri::StreamPodSandboxMetricsResponse>(
        "RuntimeService/StreamPodSandboxMetrics");
  }
  grpc::ServerUnaryReactor* UpdatePodSandboxResources(
      grpc::CallbackServerContext* ctx, const cri::UpdatePodSandboxResourcesRequest* /*req*/,
      cri::UpdatePodSandboxResourcesResponse* /*resp*/) override {
    return UnaryNotImplemented(ctx, "RuntimeService/UpdatePodSandboxResources");
  }

 private:
  const Config config_;
  PodRuntime& pods_;
  WorkPool& pool_;
  WorkPool& exec_pool_;
  EventBus& events_;
  streaming::Server* const streaming_;
};

}  // namespace podshim::agent
