// The narrow interfaces through which the orchestration (pods.cc,
// containers.cc, container_queries.cc, recovery.cc) reaches the machine:
// Machine for runtime/ (namespaces, processes, cgroups, monitors), Networks
// for cni/ and Images for image/. The real ones (host.cc) forward to those
// modules and hold nothing of their own but the exit watcher and the monitor
// pool; the orchestration unit tests (orchestration_test.cc) use fakes.
//
// Files under podshim's own state and root directories (records, bundles,
// markers) are not behind an interface: they are podshim's bookkeeping, and
// the tests give it a temporary directory.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "cni/client.h"
#include "image/image_manager.h"
#include "runtime/attach.h"
#include "runtime/cgroups.h"
#include "runtime/container_runner.h"
#include "runtime/files.h"
#include "runtime/launch_spec.h"
#include "runtime/pod_setup.h"
#include "runtime/security.h"

namespace podshim::agent {

class Machine {
 public:
  virtual ~Machine() = default;

  virtual runtime::CgroupManager& cgroups() = 0;
  // Whether the host's AppArmor is on (read once at start).
  virtual bool AppArmorEnabled() = 0;

  // --- pods (runtime/pod_setup.h) ---
  virtual absl::StatusOr<runtime::PodResources> SetUpPod(const runtime::PodSetupRequest& req) = 0;
  // `cgroup` empty: the pod's cgroup is left alone.
  virtual absl::Status StopPod(const std::string& dir, int infra_pid,
                               const std::string& cgroup) = 0;
  virtual absl::Status RemovePod(const std::string& dir, int infra_pid,
                                 const std::string& cgroup) = 0;
  virtual bool IsNamespacePinned(const std::string& path) = 0;

  // --- containers (runtime/container_runner.h, rootfs.h, security.h) ---
  virtual absl::StatusOr<runtime::DeviceNode> StatDevice(const std::string& path) = 0;
  // Makes the mount targets the image lacks in the writable layer.
  virtual absl::Status PrepareMountTargets(const runtime::LaunchSpec& spec) = 0;
  // Starts the container's monitor and waits for its report.
  virtual absl::StatusOr<runtime::StartReport> StartContainer(
      const std::string& bundle, const std::string& id, const std::string& spec_json,
      absl::Duration timeout, const std::function<void()>& on_handed) = 0;
  virtual std::optional<runtime::RecoveredStart> RecoverStart(
      const std::string& bundle, absl::Duration timeout,
      const std::function<void(int)>& on_wait) = 0;
  virtual absl::StatusOr<runtime::ExitStatus> ReadExitFile(const std::string& bundle) = 0;
  // Calls `on_exit` once the process `pid` (a monitor) that started at
  // `start_time` (runtime/pidfd.h; 0: not checked) has exited, on a thread of
  // the machine's; at once if it is gone or its pid names another process.
  virtual absl::Status WatchExit(int pid, uint64_t start_time, std::function<void()> on_exit) = 0;
  // Whether that process is alive (false when its pid names another one).
  virtual bool ProcessAlive(int pid, uint64_t start_time) = 0;
  // `sig` to the process `pid` that started at `start_time` (runtime/pidfd.h;
  // 0: not checked); a later process with that pid is never hit.
  virtual absl::Status Signal(int pid, uint64_t start_time, int sig) = 0;
  virtual void KillAndReap(const std::vector<int>& pids, absl::Duration timeout) = 0;
  // Runs `argv` in the container whose init is `pid`, started at `start_time`.
  virtual absl::StatusOr<runtime::ExecResult> Exec(const std::string& bundle, int pid,
                                                   uint64_t start_time,
                                                   const std::vector<std::string>& argv,
                                                   absl::Duration timeout) = 0;
  // Starts `argv` there with the stdio `stdio` asks for (the CRI's Exec;
  // runtime::StartExecInContainer).
  virtual absl::StatusOr<std::unique_ptr<runtime::ExecSession>> StartExec(
      const std::string& bundle, int pid, uint64_t start_time, const std::vector<std::string>& argv,
      const runtime::ExecStdio& stdio) = 0;
  // Attaches to the container whose monitor serves `bundle` (the CRI's
  // Attach; runtime::AttachToContainer).
  virtual absl::StatusOr<std::unique_ptr<runtime::AttachSession>> Attach(
      const std::string& bundle, const runtime::AttachStdio& stdio) = 0;
  // A TCP socket of `family` made in the network namespace pinned at
  // `net_ns` (empty: the host's), for port forwarding
  // (runtime::SocketInNetworkNamespace).
  virtual absl::StatusOr<runtime::UniqueFd> SocketIn(const std::string& net_ns, int family) = 0;
  // Asks the monitor `monitor_pid` started at `monitor_start_time` to reopen
  // the log (runtime::ReopenContainerLog).
  virtual absl::Status ReopenLog(const std::string& bundle, int monitor_pid,
                                 uint64_t monitor_start_time, const std::string& log_path,
                                 absl::Duration timeout) = 0;
  // Disk use of a container's writable layer.
  virtual absl::StatusOr<runtime::TreeUsage> MeasureTree(const std::string& path) = 0;
};

// Pod networking (cni/client.h).
class Networks {
 public:
  virtual ~Networks() = default;
  virtual absl::Status Ready() = 0;
  virtual absl::StatusOr<cni::Attachment> Setup(const cni::PodNetwork& pod) = 0;
  virtual absl::Status Teardown(const cni::PodNetwork& pod) = 0;
  virtual void SetPodCidr(const std::string& cidr) = 0;
  virtual absl::Status GarbageCollect(const std::vector<std::string>& valid_ids) = 0;
  virtual std::vector<std::string> CachedIds() const = 0;
};

// Images and the leases that keep their layers (image/image_manager.h).
class Images {
 public:
  virtual ~Images() = default;
  virtual absl::StatusOr<image::ImageRecord> Get(absl::string_view id_or_ref) const = 0;
  // The layers' directories, lowest last, for the overlay's lowerdir.
  virtual absl::StatusOr<std::vector<std::string>> AcquireLease(
      absl::string_view holder, const image::ImageRecord& image) = 0;
  virtual absl::Status ReleaseLease(absl::string_view holder) = 0;
};

// The real machine: runtime/ on this host, with the monitors of
// `monitor_binary` and podshim-pinns at `pinns_binary`.
struct RealMachineOptions {
  std::string cgroup_root = "/sys/fs/cgroup";
  std::string monitor_binary;
  // Monitors kept started ahead of StartContainer; 0: none.
  int monitor_pool_size = 2;
};
class RealMachine;
absl::StatusOr<std::unique_ptr<RealMachine>> OpenRealMachine(const RealMachineOptions& options);

class RealMachine final : public Machine {
 public:
  RealMachine(const RealMachineOptions& options, std::unique_ptr<runtime::CgroupManager> cgroups);
  ~RealMachine() override;
  // Starts the monitor pool (after recovery: its monitors are not a
  // restart's leftovers to look at).
  void StartMonitorPool();

  runtime::CgroupManager& cgroups() override { return *cgroups_; }
  bool AppArmorEnabled() override { return apparmor_; }
  absl::StatusOr<runtime::PodResources> SetUpPod(const runtime::PodSetupRequest& req) override;
  absl::Status StopPod(const std::string& dir, int infra_pid, const std::string& cgroup) override;
  absl::Status RemovePod(const std::string& dir, int infra_pid, const std::string& cgroup) override;
  bool IsNamespacePinned(const std::string& path) override;
  absl::StatusOr<runtime::DeviceNode> StatDevice(const std::string& path) override;
  absl::Status PrepareMountTargets(const runtime::LaunchSpec& spec) override;
  absl::StatusOr<runtime::StartReport> StartContainer(
      const std::string& bundle, const std::string& id, const std::string& spec_json,
      absl::Duration timeout, const std::function<void()>& on_handed) override;
  std::optional<runtime::RecoveredStart> RecoverStart(
      const std::string& bundle, absl::Duration timeout,
      const std::function<void(int)>& on_wait) override;
  absl::StatusOr<runtime::ExitStatus> ReadExitFile(const std::string& bundle) override;
  absl::Status WatchExit(int pid, uint64_t start_time, std::function<void()> on_exit) override;
  bool ProcessAlive(int pid, uint64_t start_time) override;
  absl::Status Signal(int pid, uint64_t start_time, int sig) override;
  void KillAndReap(const std::vector<int>& pids, absl::Duration timeout) override;
  absl::StatusOr<runtime::ExecResult> Exec(const std::string& bundle, int pid, uint64_t start_time,
                                           const std::vector<std::string>& argv,
                                           absl::Duration timeout) override;
  absl::StatusOr<std::unique_ptr<runtime::ExecSession>> StartExec(
      const std::string& bundle, int pid, uint64_t start_time, const std::vector<std::string>& argv,
      const runtime::ExecStdio& stdio) override;
  absl::StatusOr<std::unique_ptr<runtime::AttachSession>> Attach(
      const std::string& bundle, const runtime::AttachStdio& stdio) override;
  absl::StatusOr<runtime::UniqueFd> SocketIn(const std::string& net_ns, int family) override;
  absl::Status ReopenLog(const std::string& bundle, int monitor_pid, uint64_t monitor_start_time,
                         const std::string& log_path, absl::Duration timeout) override;
  absl::StatusOr<runtime::TreeUsage> MeasureTree(const std::string& path) override;

 private:
  const RealMachineOptions options_;
  const bool apparmor_;
  std::unique_ptr<runtime::CgroupManager> cgroups_;
  std::unique_ptr<runtime::MonitorPool> monitor_pool_;
  // Last: its thread calls back into the orchestration; it goes first.
  std::unique_ptr<runtime::ExitWatcher> watcher_;
};

// cni::NetworkManager as Networks.
class CniNetworks final : public Networks {
 public:
  explicit CniNetworks(cni::NetworkManager* manager) : manager_(manager) {}
  absl::Status Ready() override { return manager_->Ready(); }
  absl::StatusOr<cni::Attachment> Setup(const cni::PodNetwork& pod) override {
    return manager_->Setup(pod);
  }
  absl::Status Teardown(const cni::PodNetwork& pod) override { return manager_->Teardown(pod); }
  void SetPodCidr(const std::string& cidr) override { manager_->SetPodCidr(cidr); }
  absl::Status GarbageCollect(const std::vector<std::string>& valid_ids) override {
    return manager_->GarbageCollect(valid_ids);
  }
  std::vector<std::string> CachedIds() const override { return manager_->CachedIds(); }

 private:
  cni::NetworkManager* const manager_;
};

// image::ImageManager as Images.
class ManagedImages final : public Images {
 public:
  explicit ManagedImages(image::ImageManager* manager) : manager_(manager) {}
  absl::StatusOr<image::ImageRecord> Get(absl::string_view id_or_ref) const override {
    return manager_->Get(id_or_ref);
  }
  absl::StatusOr<std::vector<std::string>> AcquireLease(absl::string_view holder,
                                                        const image::ImageRecord& image) override {
    return manager_->AcquireLease(holder, image);
  }
  absl::Status ReleaseLease(absl::string_view holder) override {
    return manager_->ReleaseLease(holder);
  }

 private:
  image::ImageManager* const manager_;
};

}  // namespace podshim::agent
