// The gRPC server behind podshim's CRI socket: takes the socket's lock,
// cleans a stale socket, serves RuntimeService and ImageService, and shuts
// down gracefully.
#pragma once

#include <memory>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "agent/config.h"
#include "agent/image_service.h"
#include "agent/pod_runtime.h"
#include "agent/runtime_service.h"
#include "agent/streaming_backend.h"
#include "agent/work_pool.h"
#include "image/image_manager.h"
#include "runtime/files.h"

namespace podshim::agent {

// The image manager's options from podshimd's configuration.
image::ImageManagerOptions ImageManagerOptionsFor(const Config& config);

// Where the helper binary `name` (podshim-pinns, podshim-monitor) is: in
// helpers_dir when set, else beside podshimd, else (a build tree) in
// ../runtime/ from podshimd.
std::string HelperPath(const Config& config, const std::string& name);

// Takes the lock that marks `config.socket` as served (creating the socket's
// directory). FAILED_PRECONDITION naming the socket while another podshimd
// holds it.
absl::StatusOr<runtime::FileLock> LockSocket(const Config& config);

class Server {
 public:
  // Validates `config`, prepares the directories and starts serving.
  // FAILED_PRECONDITION when another podshimd holds the socket.
  static absl::StatusOr<std::unique_ptr<Server>> Start(const Config& config);

  ~Server();

  // Stops accepting calls, lets in-flight RPCs finish for up to `grace`
  // (then cancels them), removes the socket and releases the lock.
  void Shutdown(absl::Duration grace);

  const Config& config() const { return config_; }

 private:
  Server(const Config& config, runtime::FileLock lock, std::unique_ptr<image::ImageManager> images,
         std::unique_ptr<EventBus> events, std::unique_ptr<cni::NetworkManager> network,
         std::unique_ptr<PodRuntime> pods, std::unique_ptr<StreamingBackend> streaming_backend,
         std::unique_ptr<streaming::Server> streaming)
      : config_(config),
        lock_(std::move(lock)),
        images_(std::move(images)),
        events_(std::move(events)),
        network_(std::move(network)),
        pods_(std::move(pods)),
        streaming_backend_(std::move(streaming_backend)),
        streaming_(std::move(streaming)),
        runtime_service_(config, *pods_, runtime_pool_, exec_pool_, *events_, streaming_.get()),
        image_service_(config, *images_, pool_) {}

  const Config config_;
  runtime::FileLock lock_;
  std::unique_ptr<image::ImageManager> images_;
  std::unique_ptr<EventBus> events_;
  std::unique_ptr<cni::NetworkManager> network_;  // null when cni.enabled is false
  std::unique_ptr<PodRuntime> pods_;
  // The streaming server and what it calls; it goes before pods_.
  std::unique_ptr<StreamingBackend> streaming_backend_;
  std::unique_ptr<streaming::Server> streaming_;
  // Blocking RPC work (pulls, removals, disk walks); outlives server_.
  WorkPool pool_{"image", 8, static_cast<size_t>(config_.rpc_queue_limit)};
  // Pod and container calls, which may wait (StopContainer's grace period,
  // a pod's op lock): a pool of their own so they never hold up image calls.
  WorkPool runtime_pool_{"runtime", 16, static_cast<size_t>(config_.rpc_queue_limit)};
  // ExecSync, whose commands may run up to exec_sync_max_timeout_seconds: on
  // their own workers, so that 16 long ones leave stats and stops answering.
  WorkPool exec_pool_{"exec", 16, static_cast<size_t>(config_.rpc_queue_limit)};
  RuntimeServiceImpl runtime_service_;
  ImageServiceImpl image_service_;
  std::unique_ptr<grpc::Server> server_;
  bool shut_down_ = false;
};

}  // namespace podshim::agent
