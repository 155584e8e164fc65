// Pods and containers: the orchestration behind RuntimeService. Each method
// takes a CRI request, validates it (agent/validate.h), translates it
// (agent/translate.h), changes the host through runtime/, cni/ and image/,
// records the result in the stores (agent/store.h) and fills the CRI
// response. docs/architecture.md walks through the rooms. The methods live
// in one file per group: pods.cc, containers.cc, container_queries.cc
// (status, list, stats, exec, update, log), streams.cc (Exec and
// PortForward's side), recovery.cc (what a restart finds), pod_runtime.cc
// (opening, locks, hand-over of pods).
//
// Locking: every operation on one pod (and on its containers) holds that
// pod's op lock, so calls on one pod are serialised while different pods
// proceed in parallel. A record changes only through its store's Update,
// which is atomic per record, so a change made without the op lock (a
// container's exit, seen by the exit watcher) is never lost. mu_ guards the
// hand-over state below (short critical sections, never across a syscall
// that may block). Lock order: op lock, then mu_, then a store's locks.
//
// Handoff (issue 6): a RunPodSandbox whose client is gone when the pod is
// made (deadline passed, or cancelled) leaves the pod "unclaimed": a retry
// with the same metadata gets its ID, and so does a retry that arrives while
// the first call is still making it (it waits for it). Any RPC that names the
// pod (PodSandboxStatus, CreateContainer, StopPodSandbox, RemovePodSandbox)
// claims it too. A pod still unclaimed after handoff_ttl is stopped and
// removed. The mark is kept in memory only: after a restart of podshimd such
// a pod stays, as any other pod.
#pragma once

#include <array>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "agent/client_call.h"
#include "agent/config.h"
#include "agent/event_bus.h"
#include "agent/host.h"
#include "agent/records.h"
#include "agent/store.h"
#include "agent/validate.h"
#include "runtime/container_runner.h"
#include "runtime/v1/api.pb.h"
#include "streaming/requests.h"

namespace podshim::agent {

struct PodRuntimeOptions {
  std::string state_dir;
  std::string root_dir;
  std::string cgroup_root = "/sys/fs/cgroup";
  std::string cgroup_parent = "/podshim";  // when a pod names none
  std::string pinns_binary;
  std::string monitor_binary;
  // pids.max of each container's cgroup; 0: none.
  int64_t pids_limit = 0;
  // Pod networking; null: pods get loopback only (Open only).
  cni::NetworkManager* network = nullptr;
  // Monitors kept started ahead of StartContainer (runtime::MonitorPool); 0: none.
  int monitor_pool_size = 2;
  // How long a pod made for a client that was gone waits to be claimed.
  absl::Duration handoff_ttl = absl::Seconds(300);
  // The longest an ExecSync command runs: a timeout of 0 (none) or a longer
  // one gets this.
  absl::Duration exec_sync_max_timeout = absl::Seconds(600);
};

// CPU and memory figures of a cgroup into CRI stats (shared by container and
// pod stats).
void FillCpuMemory(const runtime::CgroupStats& cg, int64_t now, cri::CpuUsage* cpu,
                   cri::MemoryUsage* m);

// Status messages from records (shared by the status RPCs and events).
void FillPodStatus(const SandboxRecord& r, cri::PodSandboxStatus* st);
void FillContainerStatus(const ContainerRecord& c, cri::ContainerStatus* st);

// A container's record as its monitor reported the start (StartContainer,
// and a start adopted after a restart).
void MarkRunning(const runtime::StartReport& report, int64_t started_at_ns, ContainerRecord* c);

// What the orchestration works through (agent/host.h).
struct Mechanisms {
  std::unique_ptr<Machine> machine;
  std::unique_ptr<Networks> network;  // null: pods get loopback only
  std::unique_ptr<Images> images;
};

class PodRuntime {
 public:
  // Loads the records and reconciles them with what runs, on this host
  // (runtime/, options.network, `images`).
  // `events` (may be null) receives a ContainerEventResponse for every
  // container created, started, stopped (exited) and deleted.
  static absl::StatusOr<std::unique_ptr<PodRuntime>> Open(PodRuntimeOptions options,
                                                          image::ImageManager* images,
                                                          EventBus* events = nullptr);
  // The same through the given mechanisms (the unit tests' fakes);
  // options.network, cgroup_root, monitor_binary and monitor_pool_size are
  // not used.
  static absl::StatusOr<std::unique_ptr<PodRuntime>> OpenWith(PodRuntimeOptions options,
                                                              Mechanisms mechanisms,
                                                              EventBus* events = nullptr);
  ~PodRuntime();

  // `call` is the client's: a retry waits for an earlier call making the
  // same pod for no longer than its deadline, and a pod made after the
  // client left is kept for a retry (see the handoff note above).
  absl::Status RunPodSandbox(const cri::RunPodSandboxRequest& req, cri::RunPodSandboxResponse* resp,
                             const ClientCall& call = {});
  absl::Status StopPodSandbox(const cri::StopPodSandboxRequest& req);
  absl::Status RemovePodSandbox(const cri::RemovePodSandboxRequest& req);
  absl::Status PodSandboxStatus(const cri::PodSandboxStatusRequest& req,
                                cri::PodSandboxStatusResponse* resp);
  absl::Status ListPodSandbox(const cri::ListPodSandboxRequest& req,
                              cri::ListPodSandboxResponse* resp);

  absl::Status CreateContainer(const cri::CreateContainerRequest& req,
                               cri::CreateContainerResponse* resp);
  absl::Status StartContainer(const cri::StartContainerRequest& req);
  absl::Status StopContainer(const cri::StopContainerRequest& req);
  absl::Status RemoveContainer(const cri::RemoveContainerRequest& req);
  absl::Status ListContainers(const cri::ListContainersRequest& req,
                              cri::ListContainersResponse* resp);
  absl::Status ContainerStatus(const cri::ContainerStatusRequest& req,
                               cri::ContainerStatusResponse* resp);
  absl::Status UpdateContainerResources(const cri::UpdateContainerResourcesRequest& req);
  absl::Status ReopenContainerLog(const cri::ReopenContainerLogRequest& req);
  absl::Status ExecSync(const cri::ExecSyncRequest& req, cri::ExecSyncResponse* resp);

  absl::Status ContainerStats(const cri::ContainerStatsRequest& req,
                              cri::ContainerStatsResponse* resp);
  absl::Status ListContainerStats(const cri::ListContainerStatsRequest& req,
                                  cri::ListContainerStatsResponse* resp);
  absl::Status PodSandboxStats(const cri::PodSandboxStatsRequest& req,
                               cri::PodSandboxStatsResponse* resp);
  absl::Status ListPodSandboxStats(const cri::ListPodSandboxStatsRequest& req,
                                   cri::ListPodSandboxStatsResponse* resp);

  // --- streams.cc: Exec and PortForward (the streams run in streaming/) ---
  // Check a request and return what the streaming server keeps for the
  // client's connection (the container's full id): NOT_FOUND for an unknown
  // container or pod, FAILED_PRECONDITION when it is not running (ready),
  // INVALID_ARGUMENT naming the field for the rest.
  absl::StatusOr<streaming::ExecRequest> PrepareExec(const cri::ExecRequest& req) const;
  // Attach: also INVALID_ARGUMENT when `tty` differs from the container's
  // own, or `stdin` is asked of a container created without it.
  absl::StatusOr<streaming::AttachRequest> PrepareAttach(const cri::AttachRequest& req) const;
  absl::StatusOr<streaming::PortForwardRequest> PreparePortForward(
      const cri::PortForwardRequest& req) const;
  // When the client has connected: the command started in the container,
  // through the same helper as ExecSync (runtime::StartExecInContainer).
  absl::StatusOr<std::unique_ptr<runtime::ExecSession>> StartExec(
      const streaming::ExecRequest& req) const;
  // When the client has connected: a session on the container's own stdio,
  // served by its monitor (runtime::AttachToContainer).
  absl::StatusOr<std::unique_ptr<runtime::AttachSession>> StartAttach(
      const streaming::AttachRequest& req) const;
  // A TCP socket of `family` made in the pod's network namespace (the
  // host's for a host-network pod), not connected.
  absl::StatusOr<runtime::UniqueFd> PodSocket(const std::string& pod_id, int family) const;

  int cgroup_version() const { return machine_->cgroups().Version(); }

  // The NetworkReady condition: OK, or why pods cannot get a network.
  absl::Status NetworkStatus() const;
  // UpdateRuntimeConfig's pod CIDR, for the default network.
  void SetPodCidr(const std::string& cidr);

 private:
  PodRuntime(PodRuntimeOptions options, Mechanisms mechanisms, EventBus* events);
  // The container store's hook: publishes the CRI event a change means
  // (created, started, stopped, deleted) with its pod's current status.
  void PublishContainerChange(const ContainerRecord* before, const ContainerRecord* after);

  // --- recovery.cc: what a start finds ---
  absl::Status Load();
  // For a CREATED container record whose monitor had already reported the
  // start (a crash between the spawn and the record): make it RUNNING.
  void AdoptStartedContainer(const std::string& id);
  // Cleans what a RunPodSandbox cut short by a crash left behind.
  void CollectUnfinishedPods();
  // Removes pods whose record could not be read (`unreadable`, ids) and
  // containers whose pod has no record: their processes, network,
  // namespaces, cgroups and directories.
  void RemovePodsWithoutRecord(const std::vector<std::string>& unreadable);
  // Removes what a pod without a (complete) record may have left: its CNI
  // attachment, pinned namespaces, cgroup (and what runs in it) and directory.
  // `cgroup_owned`: podshim made the cgroup, so it may kill what is in it.
  absl::Status RemoveLeftoverPod(const std::string& id, const std::string& cgroup,
                                 bool cgroup_owned);
  // Whether `cgroup` lies under podshim's own parent, where only podshim
  // makes cgroups (for leftovers whose record says nothing).
  bool UnderOwnParent(const std::string& cgroup) const;

  // --- pod_runtime.cc: op locks and hand-over ---
  std::shared_ptr<absl::Mutex> PodLock(const std::string& pod_id);
  // The lock of a pod cgroup path (one of kCgroupStripes, by hash of the
  // cleaned path; taken after a pod's lock). Held by RunPodSandbox from
  // registering in the cgroup until its infra process is in it, and by
  // StopPodSandbox and RemovePodSandbox from deciding to remove the cgroup
  // until it is removed, so a pod being made in a shared cgroup is never
  // killed with it (issue 18, finding 1).
  absl::Mutex& CgroupLock(const std::string& cgroup);
  // Forgets the op lock of a pod that no longer exists (a call that waited
  // on it while the pod was removed made it anew).
  void DropPodLockIfGone(const std::string& pod_id);
  // Holds a pod's op lock until destroyed.
  struct OpGuard {
    std::shared_ptr<absl::Mutex> mu;
    OpGuard() = default;
    OpGuard(const OpGuard&) = delete;
    OpGuard& operator=(const OpGuard&) = delete;
    ~OpGuard() {
      if (mu) mu->Unlock();
    }
  };
  // Resolves `id_or_prefix` (field container_id), takes its pod's op lock
  // into `guard` and returns the record as it is under that lock.
  absl::StatusOr<ContainerRecord> LockContainer(absl::string_view id_or_prefix, OpGuard* guard);
  std::vector<ContainerRecord> ContainersOf(const std::string& pod_id) const;

  // A RunPodSandbox in progress, for a retry of it to wait for.
  struct Creation {
    bool done = false;
    absl::Status result;
    std::string id;
  };
  // Reserves the name of the pod `key` for a new pod (its ID in `id`), or
  // answers the call with a pod an earlier call made for it (`handed`: the
  // response is filled): see the handoff note above.
  absl::Status ReservePodName(const std::string& key, const ClientCall& call, std::string* id,
                              std::shared_ptr<Creation>* creation, bool* handed,
                              cri::RunPodSandboxResponse* resp);
  // Ends the creation of pod `id` (name key `key`): a failure frees the name;
  // a pod made for a client that was gone (`client_gone`) is unclaimed.
  void FinishCreation(const std::string& key, const std::shared_ptr<Creation>& creation,
                      const std::string& id, const absl::Status& result, bool client_gone);
  // An RPC named pod `id`: it is no longer unclaimed.
  void Claim(const std::string& id, absl::string_view by);
  // The reaper thread: removes pods left unclaimed past their time.
  void ReapLoop();
  void ReapUnclaimed(const std::string& id);

  // --- pods.cc ---
  // Runs the CNI DEL for a pod whose network is attached and records that
  // it no longer is.
  absl::Status DetachNetwork(const SandboxRecord& pod);
  absl::Status StopPodLocked(const std::string& pod_id);
  // Whether stopping `pod` removes its cgroup (killing what is left in it):
  // only when podshim made it and no other pod's cgroup is it or lies below
  // it (issue 18, finding 1). Otherwise only its containers' cgroups go.
  bool RemovesPodCgroup(const SandboxRecord& pod) const;
  // Removes the pod's containers, network, namespaces, cgroup, directory and
  // record. Holds the pod's op lock.
  absl::Status RemovePodLocked(const SandboxRecord& pod);

  // --- containers.cc ---
  // Stops a container (signal, grace, SIGKILL) and waits for its exit to be
  // recorded. Holds the pod's op lock.
  absl::Status StopContainerLocked(const std::string& id, int64_t timeout_s);
  absl::Status RemoveContainerLocked(const std::string& id);
  // Called by the exit watcher when a container's monitor is gone.
  void OnMonitorExit(const std::string& id);
  absl::Status WatchMonitor(const ContainerRecord& r);

  // --- container_queries.cc ---
  void FillContainerStats(const ContainerRecord& c, cri::ContainerStats* out) const;

  const PodRuntimeOptions options_;
  const std::unique_ptr<Networks> network_;  // null: loopback only
  const std::unique_ptr<Images> images_;
  EventBus* const events_;
  const std::string records_dir_;

  RecordStore<SandboxRecord> pods_;
  RecordStore<ContainerRecord> containers_;
  NameRegistry pod_names_;
  NameRegistry container_names_;

  mutable absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<absl::Mutex>> pod_locks_ ABSL_GUARDED_BY(mu_);
  // Every pod's ID -> its cgroup (pods being made included): a pod's cgroup
  // is removed only when no other pod's is it or lies below it.
  struct PodCgroup {
    std::string path;
    bool owned = false;  // podshim made it (SandboxRecord::cgroup_owned)
  };
  std::map<std::string, PodCgroup> pod_cgroups_ ABSL_GUARDED_BY(mu_);
  static constexpr size_t kCgroupStripes = 64;
  std::array<absl::Mutex, kCgroupStripes> cgroup_locks_;
  // Creations in progress by name key, and a signal when one ends.
  std::map<std::string, std::shared_ptr<Creation>> creations_ ABSL_GUARDED_BY(mu_);
  absl::CondVar creation_done_;
  // Unclaimed pods (made for a client that was gone) → when they are removed.
  std::map<std::string, absl::Time> unclaimed_ ABSL_GUARDED_BY(mu_);
  absl::CondVar unclaimed_changed_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread reaper_;

  // Last: its exit watcher calls back into this object, so it goes first.
  std::unique_ptr<Machine> machine_;
  runtime::CgroupManager* const cgroups_;  // machine_'s
  const HostSecurity host_security_;       // read once at start
};

}  // namespace podshim::agent
