// The real machine: each method forwards to runtime/ (host.h).
#include "agent/host.h"

#include "runtime/namespaces.h"
#include "runtime/rootfs.h"

namespace podshim::agent {

absl::StatusOr<std::unique_ptr<RealMachine>> OpenRealMachine(const RealMachineOptions& options) {
  auto cgroups = runtime::OpenCgroups(options.cgroup_root);
  if (!cgroups.ok()) return cgroups.status();
  return std::make_unique<RealMachine>(options, std::move(*cgroups));
}

RealMachine::RealMachine(const RealMachineOptions& options,
                         std::unique_ptr<runtime::CgroupManager> cgroups)
    : options_(options),
      apparmor_(runtime::AppArmorEnabled()),
      cgroups_(std::move(cgroups)),
      watcher_(std::make_unique<runtime::ExitWatcher>()) {}

RealMachine::~RealMachine() {
  watcher_.reset();
  monitor_pool_.reset();
}

void RealMachine::StartMonitorPool() {
  if (options_.monitor_pool_size > 0 && monitor_pool_ == nullptr) {
    monitor_pool_ =
        std::make_unique<runtime::MonitorPool>(options_.monitor_binary, options_.monitor_pool_size);
  }
}

absl::StatusOr<runtime::PodResources> RealMachine::SetUpPod(const runtime::PodSetupRequest& req) {
  return runtime::SetUpPod(req, *cgroups_);
}

absl::Status RealMachine::StopPod(const std::string& dir, int infra_pid,
                                  const std::string& cgroup) {
  return runtime::StopPod(dir, infra_pid, cgroup, *cgroups_);
}

absl::Status RealMachine::RemovePod(const std::string& dir, int infra_pid,
                                    const std::string& cgroup) {
  return runtime::RemovePod(dir, infra_pid, cgroup, *cgroups_);
}

bool RealMachine::IsNamespacePinned(const std::string& path) {
  return runtime::IsNamespacePinned(path);
}

absl::StatusOr<runtime::DeviceNode> RealMachine::StatDevice(const std::string& path) {
  return runtime::StatDevice(path);
}

absl::Status RealMachine::PrepareMountTargets(const runtime::LaunchSpec& spec) {
  return runtime::PrepareMountTargets(spec).status();
}

absl::StatusOr<runtime::StartReport> RealMachine::StartContainer(
    const std::string& bundle, const std::string& id, const std::string& spec_json,
    absl::Duration timeout, const std::function<void()>& on_handed) {
  return runtime::StartContainerProcess(options_.monitor_binary, bundle, id, spec_json, timeout,
                                        monitor_pool_.get(), on_handed);
}

std::optional<runtime::RecoveredStart> RealMachine::RecoverStart(
    const std::string& bundle, absl::Duration timeout, const std::function<void(int)>& on_wait) {
  return runtime::RecoverStart(bundle, timeout, on_wait);
}

absl::StatusOr<runtime::ExitStatus> RealMachine::ReadExitFile(const std::string& bundle) {
  return runtime::ReadExitFile(bundle);
}

absl::Status RealMachine::WatchExit(int pid, uint64_t start_time, std::function<void()> on_exit) {
  return watcher_->Watch(pid, start_time, [on_exit = std::move(on_exit)](int) { on_exit(); });
}

bool RealMachine::ProcessAlive(int pid, uint64_t start_time) {
  return runtime::ProcessAlive(pid, start_time);
}

absl::Status RealMachine::Signal(int pid, uint64_t start_time, int sig) {
  return runtime::SignalProcess(pid, sig, start_time);
}

void RealMachine::KillAndReap(const std::vector<int>& pids, absl::Duration timeout) {
  runtime::KillAndReap(pids, timeout);
}

absl::StatusOr<runtime::ExecResult> RealMachine::Exec(const std::string& bundle, int pid,
                                                      uint64_t start_time,
                                                      const std::vector<std::string>& argv,
                                                      absl::Duration timeout) {
  return runtime::ExecInContainer(options_.monitor_binary, bundle, pid, start_time, argv, timeout);
}

absl::StatusOr<runtime::UniqueFd> RealMachine::SocketIn(const std::string& net_ns, int family) {
  return runtime::SocketInNetworkNamespace(net_ns, family);
}

absl::StatusOr<std::unique_ptr<runtime::ExecSession>> RealMachine::StartExec(
    const std::string& bundle, int pid, uint64_t start_time, const std::vector<std::string>& argv,
    const runtime::ExecStdio& stdio) {
  return runtime::StartExecInContainer(options_.monitor_binary, bundle, pid, start_time, argv,
                                       stdio);
}

absl::StatusOr<std::unique_ptr<runtime::AttachSession>> RealMachine::Attach(
    const std::string& bundle, const runtime::AttachStdio& stdio) {
  return runtime::AttachToContainer(bundle, stdio);
}

absl::Status RealMachine::ReopenLog(const std::string& bundle, int monitor_pid,
                                    uint64_t monitor_start_time, const std::string& log_path,
                                    absl::Duration timeout) {
  return runtime::ReopenContainerLog(bundle, monitor_pid, monitor_start_time, log_path, timeout);
}

absl::StatusOr<runtime::TreeUsage> RealMachine::MeasureTree(const std::string& path) {
  return runtime::MeasureTree(path);
}

}  // namespace podshim::agent
