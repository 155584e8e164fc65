#include "agent/server.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "agent/logging.h"
#include "runtime/cgroups.h"
#include "runtime/files.h"
#include "runtime/signals.h"
#include "runtime/spawn.h"

namespace podshim::agent {
namespace {

// The kubelet's own CRI client allows 16 MiB messages; match it so large
// ListContainers answers are not refused.
constexpr int kMaxMessageBytes = 16 * 1024 * 1024;

}  // namespace

image::ImageManagerOptions ImageManagerOptionsFor(const Config& config) {
  image::ImageManagerOptions options;
  options.root_dir = config.root_dir;
  options.registry.mirrors = config.registry.mirrors;
  options.registry.plain_http = {config.registry.plain_http.begin(),
                                 config.registry.plain_http.end()};
  options.registry.upstream_fallback = config.registry.upstream_fallback;
  for (const auto& [host, creds] : config.registry.auths) {
    options.auths[host] = {creds.username, creds.password, creds.auth, creds.identity_token,
                           creds.registry_token};
  }
  options.max_concurrent_downloads = config.registry.max_concurrent_downloads;
  options.max_layer_bytes = static_cast<uint64_t>(config.max_layer_bytes);
  options.max_layer_entries = static_cast<uint64_t>(config.max_layer_entries);
  return options;
}

absl::StatusOr<runtime::FileLock> LockSocket(const Config& config) {
  const std::string socket_dir = std::filesystem::path(config.socket).parent_path().string();
  if (auto s = runtime::MakeDirs(socket_dir, 0700); !s.ok()) return s;
  auto lock = runtime::FileLock::TryAcquire(config.socket + ".lock");
  if (!lock.ok()) {
    return absl::Status(lock.status().code(),
                        absl::StrCat("socket unix://", config.socket,
                                     " is in use by another podshimd: ", lock.status().message()));
  }
  return lock;
}

// Where podshim's own CNI plugins are: helpers_dir, beside podshimd, or (in a
// build tree) ../cni/.
std::string OwnPluginDir(const Config& config) {
  if (!config.helpers_dir.empty()) return config.helpers_dir;
  auto dir = runtime::OwnExecutableDir();
  if (!dir.ok()) return "/usr/lib/podshim";
  if (runtime::PathExists(*dir + "/podshim-bridge")) return *dir;
  return (std::filesystem::path(*dir).parent_path() / "cni").string();
}

std::string HelperPath(const Config& config, const std::string& name) {
  if (!config.helpers_dir.empty()) return absl::StrCat(config.helpers_dir, "/", name);
  auto dir = runtime::OwnExecutableDir();
  if (!dir.ok()) return name;
  if (runtime::PathExists(absl::StrCat(*dir, "/", name))) return absl::StrCat(*dir, "/", name);
  return (std::filesystem::path(*dir).parent_path() / "runtime" / name).string();
}

absl::StatusOr<std::unique_ptr<Server>> Server::Start(const Config& config) {
  auto log = Log("agent");
  if (auto s = ValidateConfig(config); !s.ok()) return s;
  // The lock comes first: a second podshimd must change nothing.
  auto lock = LockSocket(config);
  if (!lock.ok()) return lock.status();
  for (const auto& dir : {config.state_dir, config.root_dir, ContainersDir(config)}) {
    if (auto s = runtime::MakeDirs(dir, 0700); !s.ok()) return s;
  }
  if (auto s = runtime::RemoveStaleSocket(config.socket); !s.ok()) return s;

  auto images = image::ImageManager::Open(ImageManagerOptionsFor(config));
  if (!images.ok()) return images.status();

  PodRuntimeOptions pod_options;
  pod_options.state_dir = config.state_dir;
  pod_options.root_dir = config.root_dir;
  pod_options.cgroup_parent = config.cgroup_parent;
  pod_options.pids_limit = config.pids_limit;
  pod_options.handoff_ttl = absl::Seconds(config.handoff_ttl_seconds);
  pod_options.exec_sync_max_timeout = absl::Seconds(config.exec_sync_max_timeout_seconds);
  pod_options.pinns_binary = HelperPath(config, "podshim-pinns");
  pod_options.monitor_binary = HelperPath(config, "podshim-monitor");
  for (const auto& helper : {pod_options.pinns_binary, pod_options.monitor_binary}) {
    if (!runtime::IsExecutable(helper)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "helper `", helper, "` is not executable (set helpers_dir to where it is installed)"));
    }
    // Run from a sealed copy (the CVE-2019-5736 class): a container that
    // gets hold of a helper's /proc/PID/exe cannot write the host's binary.
    if (auto sealed = runtime::SealHelper(helper); sealed.ok()) {
      log->debug("helper {} runs from its sealed copy {}", helper, *sealed);
    } else {
      log->warn(
          "helper {} runs from its file, not from a sealed copy (is vm.memfd_noexec 2?): {}; a "
          "container that gets hold of its /proc/PID/exe could write it once no helper runs",
          helper, sealed.status().ToString());
    }
  }
  if (config.cgroup_favor_dynmods) {
    // Not fatal: without it pods start as well, only slower.
    auto done = runtime::EnableFavorDynmods(config.state_dir + "/favordynmods");
    if (done.ok()) {
      log->info("cgroups: {}", *done);
    } else {
      log->warn("cgroups: could not turn on favordynmods, container starts wait for the kernel: {}",
                done.status().message());
    }
  }
  // Orphaned infra processes come to us (and are reaped by StopPod).
  if (auto s = runtime::BecomeSubreaper(); !s.ok()) return s;
  std::unique_ptr<cni::NetworkManager> network;
  if (config.cni.enabled) {
    cni::NetworkOptions net;
    net.conf_dir = config.cni.conf_dir;
    net.bin_dirs = {OwnPluginDir(config)};
    for (const auto& dir : config.cni.bin_dirs) {
      if (dir != net.bin_dirs.front()) net.bin_dirs.push_back(dir);
    }
    net.cache_dir = config.state_dir + "/cni";
    net.default_network = config.cni.default_network;
    net.default_subnet = config.cni.default_subnet;
    net.plugin_timeout = absl::Seconds(config.cni.plugin_timeout_seconds);
    network = std::make_unique<cni::NetworkManager>(net);
    pod_options.network = network.get();
    if (auto ready = network->Ready(); ready.ok()) {
      auto current = network->CurrentNetwork();
      log->info("pod network \"{}\" from {}", current->name, current->source);
    } else {
      log->warn("pod network not ready: {}", ready.message());
    }
  }
  auto events = std::make_unique<EventBus>();
  auto pods = PodRuntime::Open(pod_options, images->get(), events.get());
  if (!pods.ok()) return pods.status();
  log->info("pods: cgroup v{} under {}, helpers {} and {}", (*pods)->cgroup_version(),
            config.cgroup_parent, pod_options.pinns_binary, pod_options.monitor_binary);

  auto streaming_backend = std::make_unique<StreamingBackend>(**pods);
  streaming::ServerOptions stream_options;
  stream_options.address = config.streaming_address;
  stream_options.idle_timeout = *StreamingDuration(config.streaming_idle_timeout);
  stream_options.token_ttl = *StreamingDuration(config.streaming_token_ttl);
  stream_options.max_streams = static_cast<int>(config.streaming_max_streams);
  auto streaming = streaming::Server::Start(stream_options, streaming_backend.get());
  if (!streaming.ok()) return streaming.status();
  log->info("streaming server (Exec) on {}", (*streaming)->base_url());

  std::unique_ptr<Server> server(new Server(config, std::move(*lock), std::move(*images),
                                            std::move(events), std::move(network), std::move(*pods),
                                            std::move(streaming_backend), std::move(*streaming)));
  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix:" + config.socket, grpc::InsecureServerCredentials());
  builder.SetMaxReceiveMessageSize(kMaxMessageBytes);
  builder.SetMaxSendMessageSize(kMaxMessageBytes);
  builder.RegisterService(&server->runtime_service_);
  builder.RegisterService(&server->image_service_);
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr) {
    return absl::UnavailableError(absl::StrCat("cannot listen on unix://", config.socket));
  }
  if (auto s = runtime::SetMode(config.socket, 0660); !s.ok()) {
    server->Shutdown(absl::ZeroDuration());
    return s;
  }
  log->info("serving CRI v1 on unix://{}", config.socket);
  return server;
}

void Server::Shutdown(absl::Duration grace) {
  if (shut_down_) return;
  shut_down_ = true;
  auto log = Log("agent");
  if (server_ != nullptr) {
    server_->Shutdown(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(grace));
    server_->Wait();
  }
  // Open streams end (their commands are killed) with the server.
  streaming_.reset();
  if (auto s = runtime::RemoveStaleSocket(config_.socket); !s.ok()) {
    log->warn("removing socket: {}", s.message());
  }
  log->info("stopped serving on unix://{}", config_.socket);
}

Server::~Server() { Shutdown(absl::ZeroDuration()); }

}  // namespace podshim::agent
