// Pods: RunPodSandbox, Stop, Remove, Status, List, and the store itself.
// Containers are in container_ops.cc.
#include "agent/pod_runtime.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "agent/cri_convert.h"
#include "agent/failpoint.h"
#include "agent/logging.h"
#include "agent/validate.h"
#include "runtime/files.h"
#include "runtime/launch_spec.h"
#include "runtime/namespaces.h"
#include "runtime/pod_setup.h"

namespace podshim::agent {
namespace {

int64_t NowNs() { return absl::ToUnixNanos(absl::Now()); }

std::string RecordPath(const std::string& records_dir, absl::string_view kind,
                       absl::string_view id) {
  return absl::StrCat(records_dir, "/", kind, "/", id, ".json");
}

// The unique ID in `ids` that `id_or_prefix` names.
template <typename Map>
absl::StatusOr<std::string> ResolveIn(const Map& ids, absl::string_view id_or_prefix,
                                      absl::string_view what, const char* field) {
  if (id_or_prefix.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": must not be empty"));
  }
  if (ids.contains(std::string(id_or_prefix))) return std::string(id_or_prefix);
  std::string found;
  for (auto it = ids.lower_bound(std::string(id_or_prefix));
       it != ids.end() && absl::StartsWith(it->first, id_or_prefix); ++it) {
    if (!found.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ": `", id_or_prefix, "` names more than one ", what));
    }
    found = it->first;
  }
  if (found.empty()) {
    return absl::NotFoundError(absl::StrCat(what, " `", id_or_prefix, "` not found (", field, ")"));
  }
  return found;
}

// What the CNI client needs to know about a pod.
cni::PodNetwork PodNetworkOf(const SandboxRecord& r) {
  cni::PodNetwork p;
  p.id = r.id;
  p.netns = r.net_ns;
  p.name = r.config.metadata().name();
  p.namespace_ = r.config.metadata().namespace_();
  p.uid = r.config.metadata().uid();
  for (const auto& pm : r.config.port_mappings()) {
    // Only published ports are CNI's business (as in containerd).
    if (pm.host_port() <= 0) continue;
    const char* proto = pm.protocol() == cri::UDP    ? "udp"
                        : pm.protocol() == cri::SCTP ? "sctp"
                                                     : "tcp";
    p.port_mappings.push_back({proto, pm.container_port(), pm.host_port(), pm.host_ip()});
  }
  if (r.config.has_dns_config()) {
    const auto& d = r.config.dns_config();
    p.dns = cni::DnsSettings{{d.servers().begin(), d.servers().end()},
                             {d.searches().begin(), d.searches().end()},
                             {d.options().begin(), d.options().end()}};
  }
  // Validated by ValidatePodConfig.
  if (auto it = r.config.annotations().find(kIngressBandwidth);
      it != r.config.annotations().end()) {
    p.ingress_bps = cni::ParseBandwidth(it->second).value_or(0);
  }
  if (auto it = r.config.annotations().find(kEgressBandwidth); it != r.config.annotations().end()) {
    p.egress_bps = cni::ParseBandwidth(it->second).value_or(0);
  }
  return p;
}

// While RunPodSandbox works, state_dir/pods/<id>.creating names the pod's
// cgroup (its directory is state_dir/pods/<id>), so that a crash half way can
// be cleaned up.
std::string CreatingMarker(const std::string& state_dir, const std::string& id) {
  return absl::StrCat(state_dir, "/pods/", id, ".creating");
}

}  // namespace

PodRuntime::PodRuntime(PodRuntimeOptions options, image::ImageManager* images,
                       std::unique_ptr<runtime::CgroupManager> cgroups, EventBus* events)
    : options_(std::move(options)),
      host_security_{runtime::AppArmorEnabled()},
      images_(images),
      events_(events),
      cgroups_(std::move(cgroups)),
      records_dir_(options_.state_dir + "/records") {}

PodRuntime::~PodRuntime() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    unclaimed_changed_.SignalAll();
  }
  if (reaper_.joinable()) reaper_.join();
  monitor_pool_.reset();
  watcher_.reset();
}

absl::StatusOr<std::unique_ptr<PodRuntime>> PodRuntime::Open(PodRuntimeOptions options,
                                                             image::ImageManager* images,
                                                             EventBus* events) {
  auto cgroups = runtime::OpenCgroups(options.cgroup_root);
  if (!cgroups.ok()) return cgroups.status();
  std::unique_ptr<PodRuntime> rt(
      new PodRuntime(std::move(options), images, std::move(*cgroups), events));
  for (const auto& dir : {rt->records_dir_ + "/pods", rt->records_dir_ + "/containers",
                          rt->options_.state_dir + "/pods", rt->options_.state_dir + "/containers",
                          rt->options_.root_dir + "/containers"}) {
    if (auto s = runtime::MakeDirs(dir, 0711); !s.ok()) return s;
  }
  rt->watcher_ = std::make_unique<runtime::ExitWatcher>();
  if (auto s = rt->Load(); !s.ok()) return s;
  if (rt->options_.monitor_pool_size > 0) {
    rt->monitor_pool_ = std::make_unique<runtime::MonitorPool>(rt->options_.monitor_binary,
                                                               rt->options_.monitor_pool_size);
  }
  rt->reaper_ = std::thread([p = rt.get()] { p->ReapLoop(); });
  return rt;
}

absl::Status PodRuntime::Load() {
  auto log = Log("runtime");
  std::error_code ec;
  std::vector<std::string> unreadable_pods;
  std::vector<std::string> incomplete;  // containers whose creation a crash cut short
  for (const auto& e : std::filesystem::directory_iterator(records_dir_ + "/pods", ec)) {
    if (e.path().extension() != ".json") continue;
    auto text = runtime::ReadFile(e.path().string());
    auto rec = text.ok() ? SandboxFromJson(*text) : absl::StatusOr<SandboxRecord>(text.status());
    if (!rec.ok()) {
      log->error("pod record {} is unreadable, set aside: {}", e.path().string(),
                 rec.status().ToString());
      std::filesystem::rename(e.path(), e.path().string() + ".corrupt", ec);
      unreadable_pods.push_back(e.path().stem().string());
      continue;
    }
    // A pod whose namespaces are gone (reboot, crash mid-stop) is not ready.
    if (rec->state == cri::SANDBOX_READY && !rec->net_ns.empty() &&
        !runtime::IsNamespacePinned(rec->net_ns)) {
      rec->state = cri::SANDBOX_NOTREADY;
    }
    absl::MutexLock lock(&mu_);
    pod_names_[PodNameKey(rec->config.metadata())] = rec->id;
    pods_[rec->id] = *rec;
  }
  std::vector<ContainerRecord> running;
  for (const auto& e : std::filesystem::directory_iterator(records_dir_ + "/containers", ec)) {
    if (e.path().extension() != ".json") continue;
    auto text = runtime::ReadFile(e.path().string());
    auto rec =
        text.ok() ? ContainerFromJson(*text) : absl::StatusOr<ContainerRecord>(text.status());
    if (!rec.ok()) {
      log->error("container record {} is unreadable, set aside: {}", e.path().string(),
                 rec.status().ToString());
      std::filesystem::rename(e.path(), e.path().string() + ".corrupt", ec);
      continue;
    }
    if (rec->incomplete) {
      incomplete.push_back(rec->id);
    } else if (rec->state == cri::CONTAINER_CREATED) {
      AdoptStartedContainer(&*rec);
    }
    absl::MutexLock lock(&mu_);
    auto pod = pods_.find(rec->pod_id);
    if (pod != pods_.end()) {
      container_names_[ContainerNameKey(rec->config.metadata(), pod->second.config.metadata())] =
          rec->id;
    }
    if (rec->state == cri::CONTAINER_RUNNING) running.push_back(*rec);
    containers_[rec->id] = *rec;
  }
  for (const auto& c : running) {
    if (auto s = WatchMonitor(c); !s.ok()) {
      log->warn("container {}: cannot watch its monitor: {}", c.id, s.ToString());
      OnMonitorExit(c.id);
    }
  }
  for (const auto& id : incomplete) {
    if (auto s = RemoveContainerLocked(id); !s.ok()) {
      log->error("container {}, whose creation was cut short: {}", id, s.ToString());
    } else {
      log->info("removed container {}, whose creation was cut short", id);
    }
  }
  RemovePodsWithoutRecord(unreadable_pods);
  CollectUnfinishedPods();
  return absl::OkStatus();
}

namespace {

// A StartContainer cut short before the monitor's report: the monitor (its
// pid in monitor.pid, written as it begins) may still be starting the
// container. Waits until it writes `started` or exits, at most as long as
// StartContainer would have; true when `started` exists then.
bool MonitorStillStarting(const std::string& bundle, const std::string& started) {
  auto pid_text = runtime::ReadFile(absl::StrCat(bundle, "/", runtime::kMonitorPidFile));
  int pid = 0;
  if (!pid_text.ok() || !absl::SimpleAtoi(absl::StripAsciiWhitespace(*pid_text), &pid) ||
      pid <= 0) {
    return false;
  }
  // Only a monitor: the pid may have been reused since (exe is
  // podshim-monitor, or podshim-monitor-loop once the workload runs).
  std::error_code ec;
  const std::string exe =
      std::filesystem::read_symlink(absl::StrCat("/proc/", pid, "/exe"), ec).filename().string();
  if (ec || !absl::StartsWith(exe, "podshim-monitor")) return false;
  Log("runtime")->info("{}: waiting for monitor {} to report a start cut short by a restart",
                       bundle, pid);
  const absl::Time deadline = absl::Now() + absl::Seconds(30);  // StartContainer's own bound
  while (absl::Now() < deadline) {
    if (std::filesystem::exists(started, ec)) return true;
    if (!runtime::ProcessAlive(pid)) break;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return std::filesystem::exists(started, ec);
}

}  // namespace

void PodRuntime::AdoptStartedContainer(ContainerRecord* c) {
  // A StartContainer cut short after its monitor reported the start: the
  // monitor owns the container, so the record follows it (and the exit file,
  // if it has ended since).
  const std::string started = absl::StrCat(c->bundle, "/", runtime::kStartedFile);
  auto text = runtime::ReadFile(started);
  if (!text.ok() && MonitorStillStarting(c->bundle, started)) text = runtime::ReadFile(started);
  if (!text.ok()) return;
  auto report = runtime::StartReportFromJson(*text);
  if (!report.ok() || !report->ok) return;
  std::error_code ec;
  const auto mtime = std::filesystem::last_write_time(started, ec);
  c->state = cri::CONTAINER_RUNNING;
  c->pid = report->pid;
  c->monitor_pid = report->monitor_pid;
  c->uid = report->uid;
  c->gid = report->gid;
  c->groups = report->groups;
  c->started_at_ns = ec ? NowNs()
                        : std::chrono::duration_cast<std::chrono::nanoseconds>(
                              std::chrono::file_clock::to_sys(mtime).time_since_epoch())
                              .count();
  if (auto s = runtime::WriteFileAtomic(RecordPath(records_dir_, "containers", c->id),
                                        ContainerToJson(*c));
      !s.ok()) {
    Log("runtime")->error("container {}: cannot record its start: {}", c->id, s.ToString());
  }
  Log("runtime")->info("container {} was started just before a restart; adopted", c->id);
}

void PodRuntime::RemovePodsWithoutRecord(const std::vector<std::string>& unreadable) {
  auto log = Log("runtime");
  // Pod id -> its cgroup, as far as its containers tell (their cgroups are
  // children of the pod's).
  std::map<std::string, std::string> gone;
  for (const auto& id : unreadable) gone[id];
  std::vector<ContainerRecord> orphans;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, c] : containers_) {
      if (!pods_.contains(c.pod_id)) orphans.push_back(c);
    }
  }
  for (const auto& c : orphans) {
    gone[c.pod_id] = std::filesystem::path(c.cgroup).parent_path().string();
    if (auto s = RemoveContainerLocked(c.id); !s.ok()) {
      log->error("container {} of pod {} (no readable record): {}", c.id, c.pod_id, s.ToString());
    }
  }
  for (const auto& [id, known_cgroup] : gone) {
    const std::string cgroup =
        known_cgroup.empty() ? absl::StrCat(options_.cgroup_parent, "/pod-", id) : known_cgroup;
    if (auto s = RemoveLeftoverPod(id, cgroup); !s.ok()) {
      log->error("pod {} (no readable record): {}", id, s.ToString());
      continue;
    }
    log->warn(
        "pod {} had no readable record: its containers, network, namespaces and cgroup "
        "were removed",
        id);
  }
}

void PodRuntime::CollectUnfinishedPods() {
  auto log = Log("runtime");
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(options_.state_dir + "/pods", ec)) {
    if (e.path().extension() != ".creating") continue;
    const std::string id = e.path().stem().string();
    if (GetPod(id).ok()) {  // the record made it; only the marker was left
      std::filesystem::remove(e.path(), ec);
      continue;
    }
    auto text = runtime::ReadFile(e.path().string());
    nlohmann::json j = nlohmann::json::parse(text.ok() ? *text : "", nullptr, false);
    const std::string cgroup = j.is_object() ? j.value("cgroup", "") : "";
    if (auto s = RemoveLeftoverPod(id, cgroup); !s.ok()) {
      log->warn("unfinished pod {}: {}", id, s.ToString());
      continue;  // the marker stays: tried again at the next start
    }
    std::filesystem::remove(e.path(), ec);
    log->info("removed pod {}, whose creation was cut short", id);
  }
  if (options_.network == nullptr) return;
  // CNI 1.1 networks: plugins free what no live pod uses.
  std::vector<std::string> attached;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, pod] : pods_) {
      if (pod.network_attached) attached.push_back(id);
    }
  }
  if (auto s = options_.network->GarbageCollect(attached); !s.ok()) {
    log->warn("CNI GC: {}", s.ToString());
  }
  // Attachments whose pod has no record (e.g. a crash between writing the
  // CNI cache and the marker being read).
  for (const auto& id : options_.network->CachedIds()) {
    if (GetPod(id).ok()) continue;
    cni::PodNetwork pn;
    pn.id = id;
    if (auto s = options_.network->Teardown(pn); !s.ok()) {
      log->warn("orphaned network attachment {}: {}", id, s.ToString());
    } else {
      log->info("removed orphaned network attachment of pod {}", id);
    }
  }
}

absl::Status PodRuntime::RemoveLeftoverPod(const std::string& id, const std::string& cgroup) {
  const std::string dir = absl::StrCat(options_.state_dir, "/pods/", id);
  if (options_.network != nullptr) {
    cni::PodNetwork pn;
    pn.id = id;
    pn.netns = dir + "/ns/net";
    if (auto s = options_.network->Teardown(pn); !s.ok()) return s;
  }
  return runtime::RemovePod(dir, 0, cgroup, *cgroups_);
}

absl::Status PodRuntime::DetachNetwork(SandboxRecord* pod) {
  if (!pod->network_attached || options_.network == nullptr) return absl::OkStatus();
  if (auto s = options_.network->Teardown(PodNetworkOf(*pod)); !s.ok()) return s;
  pod->network_attached = false;
  return SavePod(*pod);
}

absl::Status PodRuntime::NetworkStatus() const {
  if (options_.network == nullptr) {
    return absl::FailedPreconditionError("pod networking is turned off; pods have loopback only");
  }
  return options_.network->Ready();
}

void PodRuntime::SetPodCidr(const std::string& cidr) {
  if (options_.network != nullptr) options_.network->SetPodCidr(cidr);
}

void PodRuntime::DropPodLockIfGone(const std::string& pod_id) {
  absl::MutexLock lock(&mu_);
  if (!pods_.contains(pod_id)) pod_locks_.erase(pod_id);
}

std::shared_ptr<absl::Mutex> PodRuntime::PodLock(const std::string& pod_id) {
  absl::MutexLock lock(&mu_);
  auto& m = pod_locks_[pod_id];
  if (!m) m = std::make_shared<absl::Mutex>();
  return m;
}

absl::StatusOr<std::string> PodRuntime::ResolvePodId(absl::string_view id_or_prefix,
                                                     const char* field) const {
  absl::MutexLock lock(&mu_);
  return ResolveIn(pods_, id_or_prefix, "pod sandbox", field);
}

absl::StatusOr<std::string> PodRuntime::ResolveContainerId(absl::string_view id_or_prefix,
                                                           const char* field) const {
  absl::MutexLock lock(&mu_);
  return ResolveIn(containers_, id_or_prefix, "container", field);
}

absl::StatusOr<SandboxRecord> PodRuntime::GetPod(const std::string& id) const {
  absl::MutexLock lock(&mu_);
  auto it = pods_.find(id);
  if (it == pods_.end())
    return absl::NotFoundError(absl::StrCat("pod sandbox `", id, "` not found"));
  return it->second;
}

absl::StatusOr<ContainerRecord> PodRuntime::GetContainer(const std::string& id) const {
  absl::MutexLock lock(&mu_);
  auto it = containers_.find(id);
  if (it == containers_.end()) {
    return absl::NotFoundError(absl::StrCat("container `", id, "` not found"));
  }
  return it->second;
}

absl::Status PodRuntime::SavePod(const SandboxRecord& r) {
  if (auto s = runtime::WriteFileAtomic(RecordPath(records_dir_, "pods", r.id), SandboxToJson(r));
      !s.ok()) {
    return s;
  }
  absl::MutexLock lock(&mu_);
  pods_[r.id] = r;
  return absl::OkStatus();
}

absl::Status PodRuntime::SaveContainer(const ContainerRecord& r) {
  if (auto s = runtime::WriteFileAtomic(RecordPath(records_dir_, "containers", r.id),
                                        ContainerToJson(r));
      !s.ok()) {
    return s;
  }
  absl::MutexLock lock(&mu_);
  containers_[r.id] = r;
  exited_.SignalAll();
  return absl::OkStatus();
}

std::vector<ContainerRecord> PodRuntime::ContainersOf(const std::string& pod_id) const {
  absl::MutexLock lock(&mu_);
  std::vector<ContainerRecord> out;
  for (const auto& [id, c] : containers_) {
    if (c.pod_id == pod_id) out.push_back(c);
  }
  return out;
}

absl::Status PodRuntime::RunPodSandbox(const cri::RunPodSandboxRequest& req,
                                       cri::RunPodSandboxResponse* resp, const ClientCall& call) {
  if (!req.has_config()) return absl::InvalidArgumentError("config: missing");
  const auto& config = req.config();
  if (auto s = ValidatePodConfig(config, host_security_); !s.ok()) return s;
  if (!req.runtime_handler().empty() && req.runtime_handler() != "podshim") {
    return absl::InvalidArgumentError(
        absl::StrCat("runtime_handler: ", QuoteForError(req.runtime_handler()),
                     " is not known (podshim has one handler, \"\" or \"podshim\")"));
  }
  const auto& ns = config.linux().security_context().namespace_options();
  const bool host_net = ns.network() == cri::NODE;
  const bool host_ipc = ns.ipc() == cri::NODE;
  std::vector<std::pair<std::string, std::string>> sysctls(config.linux().sysctls().begin(),
                                                           config.linux().sysctls().end());
  if (auto s = runtime::ValidateSysctls(sysctls, host_net, host_ipc); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("config.linux.sysctls: ", s.message()));
  }

  // Reserve the name first, unless an earlier call holds it for a pod that
  // is ours to hand over (see the handoff note in pod_runtime.h).
  const std::string key = PodNameKey(config.metadata());
  std::string id;
  std::shared_ptr<Creation> creation;
  {
    absl::MutexLock lock(&mu_);
    for (;;) {
      auto held = pod_names_.find(key);
      if (held == pod_names_.end()) break;
      if (auto c = creations_.find(key); c != creations_.end()) {
        // An earlier call is making this very pod: wait for it, for as long
        // as our own client waits.
        const std::shared_ptr<Creation> earlier = c->second;
        const std::string earlier_id = held->second;
        while (!earlier->done) {
          const absl::Time now = absl::Now();
          if (call.Gone(now)) {
            const std::string what =
                absl::StrCat("pod sandbox `", key, "` is still being created by an earlier call (",
                             earlier_id, "); a retry gets it");
            return call.CancelledBeforeDeadline(now) ? absl::CancelledError(what)
                                                     : absl::DeadlineExceededError(what);
          }
          creation_done_.WaitWithDeadline(&mu_,
                                          std::min(call.deadline, now + absl::Milliseconds(20)));
        }
        if (earlier->result.ok()) {
          unclaimed_.erase(earlier->id);
          Log("runtime")->info("pod {} ({}): a retry waited for its creation and takes it",
                               earlier->id, key);
          resp->set_pod_sandbox_id(earlier->id);
          return absl::OkStatus();
        }
        continue;  // it failed and was undone: make the pod afresh
      }
      if (auto u = unclaimed_.find(held->second); u != unclaimed_.end()) {
        unclaimed_.erase(u);
        Log("runtime")->info("pod {} ({}), made for a client that gave up, handed to its retry",
                             held->second, key);
        resp->set_pod_sandbox_id(held->second);
        return absl::OkStatus();
      }
      return absl::AlreadyExistsError(
          absl::StrCat("pod sandbox name `", key, "` is reserved by ", held->second));
    }
    id = NewId();
    pod_names_.emplace(key, id);
    creation = std::make_shared<Creation>();
    creations_[key] = creation;
  }
  auto release_name = [&](const absl::Status& why) {
    FinishCreation(key, creation, id, why, /*client_gone=*/false);
  };
  auto op = PodLock(id);
  absl::MutexLock op_lock(op.get());

  runtime::PodSetupRequest setup;
  setup.dir = absl::StrCat(options_.state_dir, "/pods/", id);
  setup.hostname = config.hostname();
  setup.host_network = host_net;
  setup.host_ipc = host_ipc;
  setup.shared_pid = ns.pid() == cri::POD;
  if (config.has_dns_config()) {
    setup.has_dns = true;
    setup.dns.servers.assign(config.dns_config().servers().begin(),
                             config.dns_config().servers().end());
    setup.dns.searches.assign(config.dns_config().searches().begin(),
                              config.dns_config().searches().end());
    setup.dns.options.assign(config.dns_config().options().begin(),
                             config.dns_config().options().end());
  }
  setup.sysctls = sysctls;
  const std::string parent = config.linux().cgroup_parent().empty()
                                 ? options_.cgroup_parent
                                 : config.linux().cgroup_parent();
  // With a kubelet's parent ("/kubepods/burstable/pod<uid>") the pod cgroup
  // is that parent itself, as with containerd's cgroupfs driver; otherwise a
  // child of podshim's own parent.
  setup.cgroup =
      config.linux().cgroup_parent().empty() ? absl::StrCat(parent, "/pod-", id) : parent;
  setup.pinns_binary = options_.pinns_binary;

  const std::string marker = CreatingMarker(options_.state_dir, id);
  if (auto s = runtime::WriteFileAtomic(marker, nlohmann::json({{"cgroup", setup.cgroup}}).dump());
      !s.ok()) {
    release_name(s);
    return s;
  }
  auto res = runtime::SetUpPod(setup, *cgroups_);
  if (!res.ok()) {
    (void)::unlink(marker.c_str());
    release_name(res.status());
    return res.status();
  }
  SandboxRecord r;
  r.id = id;
  r.config = config;
  r.config_json = std::make_shared<const std::string>(ProtoJsonText(config));
  r.runtime_handler = req.runtime_handler();
  r.created_at_ns = NowNs();
  r.state = cri::SANDBOX_READY;
  r.dir = res->dir;
  r.cgroup = setup.cgroup;
  r.net_ns = res->net_ns;
  r.ipc_ns = res->ipc_ns;
  r.uts_ns = res->uts_ns;
  r.pid_ns = res->pid_ns;
  r.infra_pid = res->infra_pid;
  r.hosts_file = res->hosts_file;
  r.resolv_file = res->resolv_file;
  r.hostname_file = res->hostname_file;
  r.shm_dir = res->shm_dir;
  r.hostname = res->hostname;
  // Undoes everything above; a failed detach leaves the CNI cache entry for
  // the start-up collector.
  auto fail = [&](absl::Status s) {
    if (r.network_attached) (void)options_.network->Teardown(PodNetworkOf(r));
    (void)runtime::RemovePod(r.dir, r.infra_pid, r.cgroup, *cgroups_);
    (void)::unlink(marker.c_str());
    release_name(s);
    return s;
  };
  FaultPoint("run-pod:after-setup");
  if (!config.log_directory().empty()) {
    if (auto s = runtime::MakeDirs(config.log_directory(), 0755); !s.ok()) return fail(s);
  }
  if (!host_net && options_.network != nullptr) {
    auto attachment = options_.network->Setup(PodNetworkOf(r));
    if (!attachment.ok()) return fail(attachment.status());
    r.network_attached = true;
    r.network_name = attachment->network_name;
    if (!attachment->ips.empty()) {
      r.ip = attachment->ips.front();
      r.additional_ips.assign(attachment->ips.begin() + 1, attachment->ips.end());
    }
  }
  FaultPoint("run-pod:after-network");
  if (auto s = SavePod(r); !s.ok()) return fail(s);
  FaultPoint("run-pod:after-save");
  (void)::unlink(marker.c_str());
  // A client that left will not read the reply: keep the pod for its retry.
  FinishCreation(key, creation, id, absl::OkStatus(), call.Gone(absl::Now()));
  resp->set_pod_sandbox_id(id);
  return absl::OkStatus();
}

void PodRuntime::FinishCreation(const std::string& key, const std::shared_ptr<Creation>& creation,
                                const std::string& id, const absl::Status& result,
                                bool client_gone) {
  absl::MutexLock lock(&mu_);
  if (!result.ok()) {
    if (auto it = pod_names_.find(key); it != pod_names_.end() && it->second == id) {
      pod_names_.erase(it);
    }
  }
  creation->done = true;
  creation->result = result;
  creation->id = id;
  if (auto it = creations_.find(key); it != creations_.end() && it->second == creation) {
    creations_.erase(it);
  }
  if (result.ok() && client_gone) {
    unclaimed_[id] = absl::Now() + options_.handoff_ttl;
    unclaimed_changed_.SignalAll();
    Log("runtime")->info(
        "pod {} ({}) was made after its client gave up; kept for a retry for {}, then removed", id,
        key, absl::FormatDuration(options_.handoff_ttl));
  }
  creation_done_.SignalAll();
}

void PodRuntime::Claim(const std::string& id, absl::string_view by) {
  absl::MutexLock lock(&mu_);
  if (unclaimed_.erase(id) > 0) {
    Log("runtime")->info("pod {}, made for a client that gave up, claimed by {}", id, by);
  }
}

void PodRuntime::ReapLoop() {
  mu_.Lock();
  while (!stopping_) {
    absl::Time next = absl::InfiniteFuture();
    for (const auto& [id, when] : unclaimed_) next = std::min(next, when);
    const absl::Time now = absl::Now();
    if (now < next) {
      unclaimed_changed_.WaitWithDeadline(&mu_, next);
      continue;
    }
    std::vector<std::string> due;
    for (const auto& [id, when] : unclaimed_) {
      if (when <= now) due.push_back(id);
    }
    // The op lock comes before mu_, never the other way round.
    mu_.Unlock();
    for (const auto& id : due) ReapUnclaimed(id);
    mu_.Lock();
  }
  mu_.Unlock();
}

void PodRuntime::ReapUnclaimed(const std::string& id) {
  auto log = Log("runtime");
  auto op = PodLock(id);
  absl::MutexLock op_lock(op.get());
  {
    absl::MutexLock lock(&mu_);
    auto it = unclaimed_.find(id);
    if (it == unclaimed_.end() || it->second > absl::Now()) return;  // claimed meanwhile
    unclaimed_.erase(it);
  }
  auto pod = GetPod(id);
  if (!pod.ok()) {
    DropPodLockIfGone(id);
    return;
  }
  const std::string key = PodNameKey(pod->config.metadata());
  log->warn(
      "pod {} ({}) was made for a client that gave up, and nothing claimed it within {}: "
      "stopping and removing it",
      id, key, absl::FormatDuration(options_.handoff_ttl));
  absl::Status s = StopPodLocked(id);
  if (s.ok()) {
    pod = GetPod(id);
    s = pod.ok() ? RemovePodLocked(*pod) : pod.status();
  }
  if (!s.ok()) {
    log->error("unclaimed pod {} ({}): {}; tried again in {}", id, key, s.ToString(),
               absl::FormatDuration(options_.handoff_ttl));
    absl::MutexLock lock(&mu_);
    unclaimed_[id] = absl::Now() + options_.handoff_ttl;
    return;
  }
  log->info("removed unclaimed pod {} ({})", id, key);
}

absl::Status PodRuntime::StopPodLocked(const std::string& pod_id) {
  for (const auto& c : ContainersOf(pod_id)) {
    if (c.state == cri::CONTAINER_RUNNING) {
      if (auto s = StopContainerLocked(c.id, 0); !s.ok()) return s;
    }
  }
  auto pod = GetPod(pod_id);
  if (!pod.ok()) return pod.status();
  // The network goes first, while its namespace is still pinned.
  if (auto s = DetachNetwork(&*pod); !s.ok()) return s;
  FaultPoint("stop-pod:after-network");
  if (auto s = runtime::StopPod(pod->dir, pod->infra_pid, pod->cgroup, *cgroups_); !s.ok()) {
    return s;
  }
  if (pod->state != cri::SANDBOX_NOTREADY) {
    pod->state = cri::SANDBOX_NOTREADY;
    return SavePod(*pod);
  }
  return absl::OkStatus();
}

absl::Status PodRuntime::StopPodSandbox(const cri::StopPodSandboxRequest& req) {
  auto id = ResolvePodId(req.pod_sandbox_id(), "pod_sandbox_id");
  if (!id.ok()) {
    // Stopping what is gone is success (CRI: idempotent, as containerd 1.7+).
    return id.status().code() == absl::StatusCode::kNotFound ? absl::OkStatus() : id.status();
  }
  Claim(*id, "StopPodSandbox");
  auto op = PodLock(*id);
  absl::MutexLock op_lock(op.get());
  if (!GetPod(*id).ok()) {  // removed while we waited: stopped for good
    DropPodLockIfGone(*id);
    return absl::OkStatus();
  }
  return StopPodLocked(*id);
}

absl::Status PodRuntime::RemovePodSandbox(const cri::RemovePodSandboxRequest& req) {
  auto id = ResolvePodId(req.pod_sandbox_id(), "pod_sandbox_id");
  if (!id.ok()) {
    // Removing what is not there is success (CRI: idempotent).
    return id.status().code() == absl::StatusCode::kNotFound ? absl::OkStatus() : id.status();
  }
  Claim(*id, "RemovePodSandbox");
  auto op = PodLock(*id);
  absl::MutexLock op_lock(op.get());
  auto pod = GetPod(*id);
  if (!pod.ok()) {  // removed while we waited
    DropPodLockIfGone(*id);
    return absl::OkStatus();
  }
  return RemovePodLocked(*pod);
}

absl::Status PodRuntime::RemovePodLocked(const SandboxRecord& record) {
  SandboxRecord pod = record;
  const std::string& id = record.id;
  for (const auto& c : ContainersOf(id)) {
    if (auto s = RemoveContainerLocked(c.id); !s.ok()) return s;
  }
  if (auto s = DetachNetwork(&pod); !s.ok()) return s;
  FaultPoint("remove-pod:after-containers");
  if (auto s = runtime::RemovePod(pod.dir, pod.infra_pid, pod.cgroup, *cgroups_); !s.ok()) {
    return s;
  }
  if (::unlink(RecordPath(records_dir_, "pods", id).c_str()) != 0 && errno != ENOENT) {
    return runtime::ErrnoError(errno, "remove", RecordPath(records_dir_, "pods", id));
  }
  absl::MutexLock lock(&mu_);
  pod_names_.erase(PodNameKey(pod.config.metadata()));
  pods_.erase(id);
  unclaimed_.erase(id);
  pod_locks_.erase(id);  // holders keep their shared_ptr
  return absl::OkStatus();
}

void FillPodStatus(const SandboxRecord& r, cri::PodSandboxStatus* st) {
  st->set_id(r.id);
  *st->mutable_metadata() = r.config.metadata();
  st->set_state(r.state);
  st->set_created_at(r.created_at_ns);
  if (!r.ip.empty()) st->mutable_network()->set_ip(r.ip);
  for (const auto& ip : r.additional_ips) st->mutable_network()->add_additional_ips()->set_ip(ip);
  auto* ns = st->mutable_linux()->mutable_namespaces()->mutable_options();
  *ns = r.config.linux().security_context().namespace_options();
  *st->mutable_labels() = r.config.labels();
  *st->mutable_annotations() = r.config.annotations();
  st->set_runtime_handler(r.runtime_handler);
}

void PodRuntime::Emit(const ContainerRecord& c, cri::ContainerEventType type) {
  if (events_ == nullptr || events_->subscribers() == 0) return;
  cri::ContainerEventResponse ev;
  ev.set_container_id(c.id);
  ev.set_container_event_type(type);
  ev.set_created_at(NowNs());
  if (auto pod = GetPod(c.pod_id); pod.ok()) FillPodStatus(*pod, ev.mutable_pod_sandbox_status());
  for (const auto& other : ContainersOf(c.pod_id)) {
    FillContainerStatus(other, ev.add_containers_statuses());
  }
  if (type == cri::CONTAINER_DELETED_EVENT) FillContainerStatus(c, ev.add_containers_statuses());
  events_->Publish(ev);
}

absl::Status PodRuntime::PodSandboxStatus(const cri::PodSandboxStatusRequest& req,
                                          cri::PodSandboxStatusResponse* resp) {
  auto id = ResolvePodId(req.pod_sandbox_id(), "pod_sandbox_id");
  if (!id.ok()) return id.status();
  Claim(*id, "PodSandboxStatus");
  auto pod = GetPod(*id);
  if (!pod.ok()) return pod.status();
  FillPodStatus(*pod, resp->mutable_status());
  resp->set_timestamp(NowNs());
  for (const auto& c : ContainersOf(*id)) FillContainerStatus(c, resp->add_containers_statuses());
  if (req.verbose()) {
    nlohmann::json info;
    info["id"] = pod->id;
    info["dir"] = pod->dir;
    info["cgroup"] = pod->cgroup;
    info["namespaces"] = {
        {"network", pod->net_ns}, {"ipc", pod->ipc_ns}, {"uts", pod->uts_ns}, {"pid", pod->pid_ns}};
    info["infraPid"] = pod->infra_pid;
    info["hostname"] = pod->hostname;
    info["network"] = {{"name", pod->network_name},
                       {"attached", pod->network_attached},
                       {"ips", nlohmann::json::array()}};
    if (!pod->ip.empty()) info["network"]["ips"].push_back(pod->ip);
    for (const auto& ip : pod->additional_ips) info["network"]["ips"].push_back(ip);
    info["runtimeHandler"] = pod->runtime_handler;
    info["config"] = nlohmann::json::parse(SandboxToJson(*pod), nullptr, false)["config"];
    (*resp->mutable_info())["info"] = info.dump();
  }
  return absl::OkStatus();
}

absl::Status PodRuntime::ListPodSandbox(const cri::ListPodSandboxRequest& req,
                                        cri::ListPodSandboxResponse* resp) {
  const auto& f = req.filter();
  absl::MutexLock lock(&mu_);
  for (const auto& [id, r] : pods_) {
    if (!f.id().empty() && !absl::StartsWith(id, f.id())) continue;
    if (f.has_state() && f.state().state() != r.state) continue;
    if (!LabelsMatch(r.config.labels(), f.label_selector())) continue;
    auto* item = resp->add_items();
    item->set_id(id);
    *item->mutable_metadata() = r.config.metadata();
    item->set_state(r.state);
    item->set_created_at(r.created_at_ns);
    *item->mutable_labels() = r.config.labels();
    *item->mutable_annotations() = r.config.annotations();
    item->set_runtime_handler(r.runtime_handler);
  }
  return absl::OkStatus();
}

absl::Status PodRuntime::PodSandboxStats(const cri::PodSandboxStatsRequest& req,
                                         cri::PodSandboxStatsResponse* resp) {
  auto id = ResolvePodId(req.pod_sandbox_id(), "pod_sandbox_id");
  if (!id.ok()) return id.status();
  auto pod = GetPod(*id);
  if (!pod.ok()) return pod.status();
  auto* st = resp->mutable_stats();
  st->mutable_attributes()->set_id(pod->id);
  *st->mutable_attributes()->mutable_metadata() = pod->config.metadata();
  *st->mutable_attributes()->mutable_labels() = pod->config.labels();
  *st->mutable_attributes()->mutable_annotations() = pod->config.annotations();
  const int64_t now = NowNs();
  auto* lx = st->mutable_linux();
  if (pod->state == cri::SANDBOX_READY) {
    auto cg = cgroups_->Stats(pod->cgroup);
    if (cg.ok()) {
      FillCpuMemory(*cg, now, lx->mutable_cpu(), lx->mutable_memory());
      lx->mutable_process()->set_timestamp(now);
      lx->mutable_process()->mutable_process_count()->set_value(cg->pids_current);
    }
  }
  for (const auto& c : ContainersOf(*id)) {
    if (c.state != cri::CONTAINER_RUNNING) continue;
    FillContainerStats(c, lx->add_containers());
  }
  return absl::OkStatus();
}

absl::Status PodRuntime::ListPodSandboxStats(const cri::ListPodSandboxStatsRequest& req,
                                             cri::ListPodSandboxStatsResponse* resp) {
  std::vector<std::string> ids;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, r] : pods_) {
      if (!req.filter().id().empty() && !absl::StartsWith(id, req.filter().id())) continue;
      if (!LabelsMatch(r.config.labels(), req.filter().label_selector())) continue;
      ids.push_back(id);
    }
  }
  for (const auto& id : ids) {
    cri::PodSandboxStatsRequest one;
    one.set_pod_sandbox_id(id);
    cri::PodSandboxStatsResponse out;
    if (PodSandboxStats(one, &out).ok()) *resp->add_stats() = out.stats();
  }
  return absl::OkStatus();
}

}  // namespace podshim::agent
