// Containers: Create, Start, Stop, Remove, Status, List, ExecSync, Update,
// ReopenContainerLog and stats. Pods are in pod_runtime.cc.
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <optional>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "agent/cri_convert.h"
#include "agent/failpoint.h"
#include "agent/logging.h"
#include "agent/pod_runtime.h"
#include "agent/validate.h"
#include "runtime/files.h"
#include "runtime/rootfs.h"
#include "runtime/security.h"

namespace podshim::agent {
namespace {

int64_t NowNs() { return absl::ToUnixNanos(absl::Now()); }

constexpr absl::Duration kStartTimeout = absl::Seconds(30);
// How long a killed container may take to be reported by its monitor.
constexpr absl::Duration kKillWait = absl::Seconds(10);

runtime::CgroupResources ToCgroup(const cri::LinuxContainerResources& r) {
  runtime::CgroupResources out;
  if (r.cpu_period() > 0) out.cpu_period = r.cpu_period();
  if (r.cpu_quota() != 0) out.cpu_quota = r.cpu_quota();
  if (r.cpu_shares() > 0) out.cpu_shares = r.cpu_shares();
  if (r.memory_limit_in_bytes() != 0) out.memory_limit_in_bytes = r.memory_limit_in_bytes();
  if (r.memory_swap_limit_in_bytes() != 0) {
    out.memory_swap_limit_in_bytes = r.memory_swap_limit_in_bytes();
  }
  out.cpuset_cpus = r.cpuset_cpus();
  out.cpuset_mems = r.cpuset_mems();
  for (const auto& h : r.hugepage_limits())
    out.hugepage_limits[h.page_size()] = static_cast<int64_t>(h.limit());
  for (const auto& [k, v] : r.unified()) out.unified[k] = v;
  return out;
}

bool HasMountAt(const cri::ContainerConfig& c, absl::string_view path) {
  for (const auto& m : c.mounts()) {
    if (m.container_path() == path) return true;
  }
  return false;
}

// Stop and Remove of what is gone succeed (CRI: idempotent).
absl::Status OkIfNotFound(const absl::Status& s) {
  return s.code() == absl::StatusCode::kNotFound ? absl::OkStatus() : s;
}

absl::Status WithField(const absl::Status& s, absl::string_view field) {
  if (s.ok()) return s;
  return absl::Status(s.code(), absl::StrCat(field, ": ", s.message()));
}

void RemoveTree(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

}  // namespace

absl::Status PodRuntime::CreateContainer(const cri::CreateContainerRequest& req,
                                         cri::CreateContainerResponse* resp) {
  // The request first: a bad one changes nothing, not even a claim.
  if (!req.has_config()) return absl::InvalidArgumentError("config: missing");
  const auto& config = req.config();
  if (auto s = ValidateContainerConfig(config, host_security_); !s.ok()) return s;
  auto pod_id = ResolvePodId(req.pod_sandbox_id(), "pod_sandbox_id");
  if (!pod_id.ok()) return pod_id.status();
  // What needs the pod or the host is checked before the claim too: reads
  // only (the pod's config never changes). Only a privileged or pid TARGET
  // container needs the pod's record, so the common path copies none.
  const auto& request_sc = config.linux().security_context();
  if (request_sc.privileged() || request_sc.namespace_options().pid() == cri::TARGET) {
    auto pod = GetPod(*pod_id);
    if (!pod.ok()) return pod.status();
    auto pod_of = [this](absl::string_view id) -> absl::StatusOr<std::string> {
      auto c = ResolveContainerId(id, "config.linux.security_context.namespace_options.target_id");
      if (!c.ok()) return c.status();
      auto record = GetContainer(*c);
      if (!record.ok()) return record.status();
      return record->pod_id;
    };
    if (auto s = ValidateContainerInPod(config, pod->config, pod->id, pod_of); !s.ok()) return s;
  }
  std::vector<runtime::DeviceNode> device_nodes;
  for (int i = 0; i < config.devices_size(); ++i) {
    const std::string field = absl::StrCat("config.devices[", i, "].host_path");
    const std::string& path = config.devices(i).host_path();
    auto node = runtime::StatDevice(path);
    if (!node.ok()) {
      if (node.status().code() == absl::StatusCode::kNotFound) {
        return absl::NotFoundError(
            absl::StrCat(field, ": ", QuoteForError(path), " does not exist"));
      }
      return WithField(node.status(), field);
    }
    if (auto s = ValidateDeviceNode(*node, path, request_sc.privileged(), field); !s.ok()) {
      return s;
    }
    device_nodes.push_back(*node);
  }
  Claim(*pod_id, "CreateContainer");
  auto op = PodLock(*pod_id);
  absl::MutexLock op_lock(op.get());
  auto pod = GetPod(*pod_id);
  if (!pod.ok()) return pod.status();
  if (pod->state != cri::SANDBOX_READY) {
    return absl::FailedPreconditionError(
        absl::StrCat("pod sandbox ", pod->id, " is not ready (pod_sandbox_id)"));
  }
  auto image = images_->Get(config.image().image());
  if (!image.ok()) {
    return absl::Status(image.status().code(),
                        absl::StrCat("config.image.image: ", image.status().message()));
  }
  const nlohmann::json image_config =
      image->config.contains("config") && image->config["config"].is_object()
          ? image->config["config"]
          : nlohmann::json::object();
  const auto& sc = config.linux().security_context();

  runtime::LaunchSpec spec;
  const std::string id = NewId();
  spec.id = id;
  spec.bundle = absl::StrCat(options_.state_dir, "/containers/", id);
  const std::string layer_dir = absl::StrCat(options_.root_dir, "/containers/", id);
  spec.rootfs.upper = layer_dir + "/upper";
  spec.rootfs.work = layer_dir + "/work";
  spec.rootfs.target = spec.bundle + "/rootfs";
  spec.rootfs.readonly = sc.readonly_rootfs();
  spec.privileged = sc.privileged();

  // The process.
  std::vector<std::string> command(config.command().begin(), config.command().end());
  std::vector<std::string> args(config.args().begin(), config.args().end());
  auto argv = MergeArgs(command, args, JsonStrings(image_config, "Entrypoint"),
                        JsonStrings(image_config, "Cmd"));
  if (!argv.ok()) return argv.status();
  spec.process.args = *argv;
  std::vector<std::pair<std::string, std::string>> envs;
  for (const auto& kv : config.envs()) envs.emplace_back(kv.key(), kv.value());
  spec.process.env = MergeEnv(JsonStrings(image_config, "Env"), envs, pod->hostname);
  spec.process.cwd = !config.working_dir().empty() ? config.working_dir()
                     : !JsonString(image_config, "WorkingDir").empty()
                         ? JsonString(image_config, "WorkingDir")
                         : "/";
  // Ids, groups and oom_score_adj are in range (ValidateContainerConfig).
  if (sc.has_run_as_user()) spec.process.user.uid = static_cast<uint32_t>(sc.run_as_user().value());
  if (sc.has_run_as_group() && !sc.has_run_as_user() && sc.run_as_username().empty()) {
    return absl::InvalidArgumentError(
        "config.linux.security_context.run_as_group: set without run_as_user or "
        "run_as_username");
  }
  if (sc.has_run_as_group()) {
    spec.process.user.gid = static_cast<uint32_t>(sc.run_as_group().value());
  }
  spec.process.user.username = sc.run_as_username();
  spec.process.user.image_user = JsonString(image_config, "User");
  for (int64_t g : sc.supplemental_groups()) {
    spec.process.user.supplemental_groups.push_back(static_cast<uint32_t>(g));
  }
  runtime::CapabilityRequest caps;
  caps.privileged = sc.privileged();
  caps.add.assign(sc.capabilities().add_capabilities().begin(),
                  sc.capabilities().add_capabilities().end());
  caps.drop.assign(sc.capabilities().drop_capabilities().begin(),
                   sc.capabilities().drop_capabilities().end());
  auto cap_set = runtime::ResolveCapabilities(caps);
  if (!cap_set.ok())
    return WithField(cap_set.status(), "config.linux.security_context.capabilities");
  spec.process.capabilities = *cap_set;
  spec.process.no_new_privs = sc.no_new_privs();
  auto seccomp = ChooseSeccomp(sc);
  if (!seccomp.ok()) return seccomp.status();
  // A privileged container runs unconfined whatever profile it names, as in
  // containerd and CRI-O.
  if (!sc.privileged()) {
    if (seccomp->kind == SeccompChoice::kRuntimeDefault) {
      spec.process.seccomp_json = runtime::RuntimeDefaultSeccompJson();
    } else if (seccomp->kind == SeccompChoice::kLocalhost) {
      auto text = runtime::ReadFile(seccomp->localhost_path);
      if (!text.ok()) {
        return absl::NotFoundError(absl::StrCat("config.linux.security_context.seccomp: profile `",
                                                seccomp->localhost_path,
                                                "`: ", text.status().message()));
      }
      auto parsed = runtime::ParseSeccompProfile(*text);
      if (!parsed.ok()) return WithField(parsed.status(), "config.linux.security_context.seccomp");
      spec.process.seccomp_json = *parsed;
    }
  }
  spec.process.apparmor_profile = sc.apparmor().localhost_ref();
  if (config.linux().has_resources()) {
    spec.process.oom_score_adj = static_cast<int>(config.linux().resources().oom_score_adj());
  }

  // Namespaces: the pod's network, IPC and UTS; PID as asked.
  auto join_or_host = [](const std::string& path) {
    return path.empty() ? runtime::NamespaceSpec{runtime::NsMode::kHost, ""}
                        : runtime::NamespaceSpec{runtime::NsMode::kJoin, path};
  };
  spec.net = join_or_host(pod->net_ns);
  spec.ipc = join_or_host(pod->ipc_ns);
  spec.uts = join_or_host(pod->uts_ns);
  spec.cgroup = {runtime::NsMode::kHost, ""};
  switch (sc.namespace_options().pid()) {
    case cri::NODE:
      spec.pid = {runtime::NsMode::kHost, ""};
      break;
    case cri::POD:
      spec.pid = pod->pid_ns.empty() ? runtime::NamespaceSpec{runtime::NsMode::kNew, ""}
                                     : runtime::NamespaceSpec{runtime::NsMode::kJoin, pod->pid_ns};
      break;
    case cri::TARGET: {
      auto target = ResolveContainerId(sc.namespace_options().target_id(),
                                       "config.linux.security_context.namespace_options.target_id");
      if (!target.ok()) return target.status();
      auto t = GetContainer(*target);
      if (!t.ok() || t->state != cri::CONTAINER_RUNNING) {
        return absl::FailedPreconditionError(
            "config.linux.security_context.namespace_options.target_id: the target container is "
            "not running");
      }
      spec.pid = {runtime::NsMode::kJoin, absl::StrCat("/proc/", t->pid, "/ns/pid")};
      break;
    }
    default:
      spec.pid = {runtime::NsMode::kNew, ""};
  }

  // Mounts: the pod's files unless the request brings its own, then the
  // request's in order.
  auto add_pod_file = [&](const std::string& source, const char* dest) {
    if (!source.empty() && !HasMountAt(config, dest)) {
      spec.mounts.push_back({source, dest, false, runtime::Propagation::kPrivate, false});
    }
  };
  add_pod_file(pod->hostname_file, "/etc/hostname");
  add_pod_file(pod->hosts_file, "/etc/hosts");
  add_pod_file(pod->resolv_file, "/etc/resolv.conf");
  add_pod_file(pod->shm_dir, "/dev/shm");
  for (int i = 0; i < config.mounts_size(); ++i) {
    const auto& m = config.mounts(i);
    std::error_code ec;
    if (!std::filesystem::exists(m.host_path(), ec)) {
      // As containerd does for a missing host path: make it a directory.
      if (auto s = runtime::MakeDirs(m.host_path(), 0755); !s.ok()) {
        return WithField(s, absl::StrCat("config.mounts[", i, "].host_path"));
      }
    }
    if (m.recursive_read_only() && (!m.readonly() || m.propagation() != cri::PROPAGATION_PRIVATE)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "config.mounts[", i, "].recursive_read_only: needs readonly and PROPAGATION_PRIVATE"));
    }
    runtime::MountSpec mount{m.host_path(), m.container_path(), m.readonly(),
                             ToPropagation(m.propagation()), true};
    mount.recursive_readonly = m.recursive_read_only();
    spec.mounts.push_back(std::move(mount));
  }
  // The devices cgroup: unless privileged, runc's default list and the
  // requested device nodes with their permissions, nothing else.
  std::optional<std::vector<runtime::DeviceRule>> device_rules;
  if (!sc.privileged()) device_rules = runtime::DefaultDeviceRules();
  for (int i = 0; i < config.devices_size(); ++i) {
    const auto& d = config.devices(i);
    const runtime::DeviceNode& node = device_nodes[static_cast<size_t>(i)];
    // A subset of rwm (ValidateContainerConfig); empty means all.
    const std::string access = d.permissions().empty() ? "rwm" : d.permissions();
    if (device_rules.has_value()) {
      device_rules->push_back({node.type, node.major, node.minor, access});
    }
    spec.devices.push_back({d.host_path(), d.container_path(), d.permissions()});
  }
  if (!sc.privileged()) {
    spec.masked_paths.assign(sc.masked_paths().begin(), sc.masked_paths().end());
    spec.readonly_paths.assign(sc.readonly_paths().begin(), sc.readonly_paths().end());
    if (spec.masked_paths.empty() && spec.readonly_paths.empty()) {
      spec.masked_paths = DefaultMaskedPaths();
      spec.readonly_paths = DefaultReadonlyPaths();
    }
  }

  ContainerRecord r;
  r.id = id;
  r.pod_id = pod->id;
  r.config = config;
  r.config_json = std::make_shared<const std::string>(ProtoJsonText(config));
  r.image_id = image->id;
  r.image_ref = image->repo_digests.empty() ? image->id : image->repo_digests.front();
  r.created_at_ns = NowNs();
  r.state = cri::CONTAINER_CREATED;
  r.bundle = spec.bundle;
  r.cgroup = absl::StrCat(pod->cgroup, "/", id);
  if (!pod->config.log_directory().empty() && !config.log_path().empty()) {
    r.log_path = absl::StrCat(pod->config.log_directory(), "/", config.log_path());
  }
  spec.log_path = r.log_path;
  // The request's stop signal, else the image's, else SIGTERM.
  const std::string stop_signal =
      config.stop_signal() != cri::SIGNAL_RUNTIME_DEFAULT
          ? std::string(absl::StripPrefix(cri::Signal_Name(config.stop_signal()), "SIGNAL_"))
          : JsonString(image_config, "StopSignal");
  if (!stop_signal.empty() && SignalNumber(stop_signal) > 0) {
    r.stop_signal = SignalNumber(stop_signal);
  }
  r.resources = config.linux().resources();
  spec.cgroup_procs = cgroups_->ProcsFiles(r.cgroup);
  spec.oom_counter_file = cgroups_->OomCounterFile(r.cgroup);

  // Reserve the name; from here on every step is undone on failure.
  const std::string key = ContainerNameKey(config.metadata(), pod->config.metadata());
  {
    absl::MutexLock lock(&mu_);
    auto [it, inserted] = container_names_.emplace(key, id);
    if (!inserted) {
      return absl::AlreadyExistsError(
          absl::StrCat("container name `", key, "` is reserved by ", it->second));
    }
  }
  bool done = false;
  bool leased = false, cgroup_made = false;
  const std::string record = absl::StrCat(records_dir_, "/containers/", id, ".json");
  auto undo = [&] {
    if (done) return;
    if (cgroup_made) (void)cgroups_->Remove(r.cgroup);
    RemoveTree(layer_dir);
    RemoveTree(spec.bundle);
    if (leased) (void)images_->ReleaseLease(id);
    (void)::unlink(record.c_str());
    absl::MutexLock lock(&mu_);
    container_names_.erase(key);
  };
  struct Guard {
    std::function<void()> f;
    ~Guard() { f(); }
  } guard{undo};

  // First on disk: what the following steps will make, so that a crash half
  // way is cleaned up at the next start.
  r.incomplete = true;
  if (auto s = runtime::WriteFileAtomic(record, ContainerToJson(r)); !s.ok()) return s;
  r.incomplete = false;
  // The cgroup with its limits is made on a thread of its own while the
  // lease and the writable layer are made here: each takes most of a
  // millisecond, mostly in the kernel, and neither needs the other. The
  // thread, destroyed before `guard`, is joined before any undo.
  runtime::CgroupResources limits = ToCgroup(r.resources);
  if (options_.pids_limit > 0) limits.pids_limit = options_.pids_limit;
  absl::Status cgroup_status;
  cgroup_made = true;  // from now on the undo removes it (a missing cgroup is fine)
  std::jthread cgroup_maker(
      [cgroups = cgroups_.get(), cgroup = r.cgroup, limits, &device_rules, &cgroup_status] {
        cgroup_status = cgroups->Create(cgroup);
        if (cgroup_status.ok()) {
          if (auto s = cgroups->Apply(cgroup, limits); !s.ok()) {
            cgroup_status = WithField(s, "config.linux.resources");
          }
        }
        if (cgroup_status.ok() && device_rules.has_value()) {
          cgroup_status = cgroups->RestrictDevices(cgroup, *device_rules);
        }
      });
  auto lower = images_->AcquireLease(id, *image);
  if (!lower.ok()) return lower.status();
  leased = true;
  spec.rootfs.lower = *lower;
  for (const auto& dir : {spec.bundle, spec.rootfs.target, spec.rootfs.upper, spec.rootfs.work}) {
    if (auto s = runtime::MakeDirs(dir, 0711); !s.ok()) return s;
  }
  // Mount targets the image lacks (/etc/hosts, ...) are made in the writable
  // layer now, beside the cgroup work, instead of through the overlay at
  // start (runtime/rootfs.h).
  if (auto made = runtime::PrepareMountTargets(spec); !made.ok()) return made.status();
  cgroup_maker.join();
  if (!cgroup_status.ok()) return cgroup_status;
  r.spec_json = runtime::LaunchSpecToJson(spec);
  if (auto s =
          runtime::WriteFileAtomic(absl::StrCat(spec.bundle, "/", runtime::kSpecFile), r.spec_json);
      !s.ok()) {
    return s;
  }
  FaultPoint("create-container:before-save");
  if (auto s = SaveContainer(r); !s.ok()) return s;
  done = true;
  resp->set_container_id(id);
  Emit(r, cri::CONTAINER_CREATED_EVENT);
  return absl::OkStatus();
}

absl::StatusOr<ContainerRecord> PodRuntime::LockContainer(absl::string_view id_or_prefix,
                                                          OpGuard* guard) {
  auto id = ResolveContainerId(id_or_prefix, "container_id");
  if (!id.ok()) return id.status();
  auto c = GetContainer(*id);
  if (!c.ok()) return c.status();
  guard->mu = PodLock(c->pod_id);
  guard->mu->Lock();
  return GetContainer(*id);  // as it is now that nothing else changes it
}

absl::Status PodRuntime::StartContainer(const cri::StartContainerRequest& req) {
  OpGuard guard;
  auto c = LockContainer(req.container_id(), &guard);
  if (!c.ok()) return c.status();
  if (c->state != cri::CONTAINER_CREATED) {
    return absl::FailedPreconditionError(absl::StrCat("container ", c->id, " is ",
                                                      cri::ContainerState_Name(c->state),
                                                      ", not CONTAINER_CREATED"));
  }
  if (!c->log_path.empty()) {
    const std::string dir = std::filesystem::path(c->log_path).parent_path().string();
    if (auto s = runtime::MakeDirs(dir, 0755); !s.ok()) return s;
  }
  // Taken before the spawn: a workload that exits at once must never show a
  // finished_at before its started_at.
  const int64_t started_at = NowNs();
  // The record's spec text goes to the monitor as it is: it parses it.
  auto report = runtime::StartContainerProcess(options_.monitor_binary, c->bundle, c->id,
                                               c->spec_json, kStartTimeout, monitor_pool_.get(),
                                               [] { CrashPoint("start-container:handed"); });
  if (!report.ok()) {
    c->state = cri::CONTAINER_EXITED;
    c->exit_code = 128;
    c->reason = "StartError";
    c->message = std::string(report.status().message());
    c->finished_at_ns = NowNs();
    (void)SaveContainer(*c);
    (void)cgroups_->Remove(c->cgroup);
    return report.status();
  }
  FaultPoint("start-container:after-spawn");
  c->state = cri::CONTAINER_RUNNING;
  c->pid = report->pid;
  c->monitor_pid = report->monitor_pid;
  c->started_at_ns = started_at;
  c->uid = report->uid;
  c->gid = report->gid;
  c->groups = report->groups;
  if (auto s = SaveContainer(*c); !s.ok()) {
    (void)runtime::SignalProcess(c->pid, SIGKILL);
    return s;
  }
  Emit(*c, cri::CONTAINER_STARTED_EVENT);
  return WatchMonitor(*c);
}

absl::Status PodRuntime::WatchMonitor(const ContainerRecord& r) {
  const std::string id = r.id;
  if (!runtime::ProcessAlive(r.monitor_pid)) {
    OnMonitorExit(id);
    return absl::OkStatus();
  }
  return watcher_->Watch(r.monitor_pid, [this, id](int) { OnMonitorExit(id); });
}

void PodRuntime::OnMonitorExit(const std::string& id) {
  auto c = GetContainer(id);
  if (!c.ok() || c->state != cri::CONTAINER_RUNNING) return;
  auto exit = runtime::ReadExitFile(c->bundle);
  c->state = cri::CONTAINER_EXITED;
  if (exit.ok()) {
    c->exit_code = exit->exit_code;
    c->reason = exit->reason;
    c->finished_at_ns = exit->finished_at_ns > 0 ? exit->finished_at_ns : NowNs();
  } else {
    // The monitor died (e.g. was killed): the container has no owner of its
    // output and exit any more, so it is ended rather than left running
    // unseen.
    if (auto pids = cgroups_->Pids(c->cgroup); pids.ok() && !pids->empty()) {
      runtime::KillAndReap(*pids, absl::Seconds(1));
    }
    c->exit_code = 255;
    c->reason = "Unknown";
    c->message =
        "the container's monitor ended without recording its exit; its processes were killed";
    c->finished_at_ns = NowNs();
  }
  if (auto s = SaveContainer(*c); !s.ok()) {
    Log("runtime")->error("container {}: cannot record its exit: {}", id, s.ToString());
  }
  Emit(*c, cri::CONTAINER_STOPPED_EVENT);
}

absl::Status PodRuntime::StopContainerLocked(const std::string& id, int64_t timeout_s) {
  auto c = GetContainer(id);
  if (!c.ok()) return c.status();
  if (c->state != cri::CONTAINER_RUNNING) return absl::OkStatus();
  auto exited = [this, &id]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    auto it = containers_.find(id);
    return it == containers_.end() || it->second.state != cri::CONTAINER_RUNNING;
  };
  if (timeout_s > 0) {
    if (auto s = runtime::SignalProcess(c->pid, c->stop_signal); !s.ok()) return s;
    absl::MutexLock lock(&mu_);
    const absl::Time deadline = absl::Now() + absl::Seconds(timeout_s);
    while (!exited() && !exited_.WaitWithDeadline(&mu_, deadline)) {
    }
    if (exited()) return absl::OkStatus();
  }
  if (auto s = runtime::SignalProcess(c->pid, SIGKILL); !s.ok()) return s;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time deadline = absl::Now() + kKillWait;
    while (!exited() && !exited_.WaitWithDeadline(&mu_, deadline)) {
    }
    if (exited()) return absl::OkStatus();
  }
  // The monitor did not report: if it is gone, record what we know.
  if (!runtime::ProcessAlive(c->monitor_pid)) {
    OnMonitorExit(id);
    return absl::OkStatus();
  }
  return absl::DeadlineExceededError(absl::StrCat("container ", id, " did not exit within ",
                                                  absl::FormatDuration(kKillWait), " of SIGKILL"));
}

absl::Status PodRuntime::StopContainer(const cri::StopContainerRequest& req) {
  OpGuard guard;
  auto c = LockContainer(req.container_id(), &guard);
  if (!c.ok()) return OkIfNotFound(c.status());
  if (auto s = StopContainerLocked(c->id, req.timeout()); !s.ok()) return s;
  (void)cgroups_->Remove(c->cgroup);
  return absl::OkStatus();
}

absl::Status PodRuntime::RemoveContainerLocked(const std::string& id) {
  auto c = GetContainer(id);
  if (!c.ok()) return absl::OkStatus();
  if (auto s = StopContainerLocked(id, 0); !s.ok()) return s;
  if (auto s = cgroups_->Remove(c->cgroup); !s.ok()) return s;
  RemoveTree(c->bundle);
  RemoveTree(absl::StrCat(options_.root_dir, "/containers/", id));
  if (auto s = images_->ReleaseLease(id); !s.ok()) return s;
  const std::string record = absl::StrCat(records_dir_, "/containers/", id, ".json");
  if (::unlink(record.c_str()) != 0 && errno != ENOENT) {
    return runtime::ErrnoError(errno, "remove", record);
  }
  {
    absl::MutexLock lock(&mu_);
    for (auto it = container_names_.begin(); it != container_names_.end(); ++it) {
      if (it->second == id) {
        container_names_.erase(it);
        break;
      }
    }
    containers_.erase(id);
  }
  Emit(*c, cri::CONTAINER_DELETED_EVENT);
  return absl::OkStatus();
}

absl::Status PodRuntime::RemoveContainer(const cri::RemoveContainerRequest& req) {
  OpGuard guard;
  auto c = LockContainer(req.container_id(), &guard);
  if (!c.ok()) return OkIfNotFound(c.status());
  return RemoveContainerLocked(c->id);
}

namespace {

void FillContainerItem(const ContainerRecord& c, cri::Container* item) {
  item->set_id(c.id);
  item->set_pod_sandbox_id(c.pod_id);
  *item->mutable_metadata() = c.config.metadata();
  *item->mutable_image() = c.config.image();
  item->set_image_ref(c.image_ref);
  item->set_image_id(c.image_id);
  item->set_state(c.state);
  item->set_created_at(c.created_at_ns);
  *item->mutable_labels() = c.config.labels();
  *item->mutable_annotations() = c.config.annotations();
}

}  // namespace

absl::Status PodRuntime::ListContainers(const cri::ListContainersRequest& req,
                                        cri::ListContainersResponse* resp) {
  const auto& f = req.filter();
  absl::MutexLock lock(&mu_);
  for (const auto& [id, c] : containers_) {
    if (!f.id().empty() && !absl::StartsWith(id, f.id())) continue;
    if (!f.pod_sandbox_id().empty() && !absl::StartsWith(c.pod_id, f.pod_sandbox_id())) continue;
    if (f.has_state() && f.state().state() != c.state) continue;
    if (!LabelsMatch(c.config.labels(), f.label_selector())) continue;
    FillContainerItem(c, resp->add_containers());
  }
  return absl::OkStatus();
}

void FillContainerStatus(const ContainerRecord& c, cri::ContainerStatus* st) {
  st->set_id(c.id);
  *st->mutable_metadata() = c.config.metadata();
  st->set_state(c.state);
  st->set_created_at(c.created_at_ns);
  st->set_started_at(c.started_at_ns);
  st->set_finished_at(c.finished_at_ns);
  st->set_exit_code(c.exit_code);
  *st->mutable_image() = c.config.image();
  st->set_image_ref(c.image_ref);
  st->set_image_id(c.image_id);
  st->set_reason(c.reason);
  st->set_message(c.message);
  *st->mutable_labels() = c.config.labels();
  *st->mutable_annotations() = c.config.annotations();
  *st->mutable_mounts() = c.config.mounts();
  st->set_log_path(c.log_path);
  *st->mutable_resources()->mutable_linux() = c.resources;
  if (c.state == cri::CONTAINER_RUNNING || c.state == cri::CONTAINER_EXITED) {
    auto* user = st->mutable_user()->mutable_linux();
    user->set_uid(c.uid);
    user->set_gid(c.gid);
    for (uint32_t g : c.groups) user->add_supplemental_groups(g);
  }
  st->set_stop_signal(CriSignal(c.stop_signal));
}

absl::Status PodRuntime::ContainerStatus(const cri::ContainerStatusRequest& req,
                                         cri::ContainerStatusResponse* resp) {
  auto id = ResolveContainerId(req.container_id(), "container_id");
  if (!id.ok()) return id.status();
  auto c = GetContainer(*id);
  if (!c.ok()) return c.status();
  FillContainerStatus(*c, resp->mutable_status());
  if (req.verbose()) {
    nlohmann::json info;
    info["sandboxID"] = c->pod_id;
    info["pid"] = c->pid;
    info["monitorPid"] = c->monitor_pid;
    info["bundle"] = c->bundle;
    info["cgroup"] = c->cgroup;
    info["runtimeSpec"] = nlohmann::json::parse(c->spec_json, nullptr, false);
    // Only Unconfined passes validation: podshim applies no AppArmor profile.
    if (c->config.linux().security_context().has_apparmor()) info["apparmor"] = "unconfined";
    (*resp->mutable_info())["info"] = info.dump();
  }
  return absl::OkStatus();
}

absl::Status PodRuntime::UpdateContainerResources(const cri::UpdateContainerResourcesRequest& req) {
  if (req.has_linux()) {
    if (auto s = ValidateContainerResources(req.linux(), "linux"); !s.ok()) return s;
  }
  OpGuard guard;
  auto c = LockContainer(req.container_id(), &guard);
  if (!c.ok()) return c.status();
  if (c->state == cri::CONTAINER_EXITED) {
    return absl::FailedPreconditionError(absl::StrCat("container ", c->id, " has exited"));
  }
  if (!req.has_linux()) return absl::OkStatus();
  if (auto s = cgroups_->Apply(c->cgroup, ToCgroup(req.linux())); !s.ok()) {
    return WithField(s, "linux");
  }
  c->resources.MergeFrom(req.linux());
  return SaveContainer(*c);
}

absl::Status PodRuntime::ReopenContainerLog(const cri::ReopenContainerLogRequest& req) {
  auto id = ResolveContainerId(req.container_id(), "container_id");
  if (!id.ok()) return id.status();
  auto c = GetContainer(*id);
  if (!c.ok()) return c.status();
  if (c->state != cri::CONTAINER_RUNNING) {
    return absl::FailedPreconditionError(absl::StrCat("container ", c->id, " is not running"));
  }
  const std::string err_file = c->bundle + "/reopen.err";
  ::unlink(err_file.c_str());
  if (auto s = runtime::SignalProcess(c->monitor_pid, SIGUSR1); !s.ok()) return s;
  // The monitor reopens at once; a failure leaves reopen.err behind.
  for (int i = 0; i < 100; ++i) {
    std::error_code ec;
    if (std::filesystem::exists(err_file, ec)) {
      auto text = runtime::ReadFile(err_file);
      return absl::InternalError(
          absl::StrCat("reopen log of ", c->id, ": ", text.ok() ? *text : "failed"));
    }
    if (std::filesystem::exists(c->log_path, ec)) return absl::OkStatus();
    ::usleep(10000);
  }
  return absl::DeadlineExceededError(absl::StrCat("reopen log of ", c->id, ": no answer"));
}

absl::Status PodRuntime::ExecSync(const cri::ExecSyncRequest& req, cri::ExecSyncResponse* resp) {
  auto id = ResolveContainerId(req.container_id(), "container_id");
  if (!id.ok()) return id.status();
  if (req.cmd().empty()) return absl::InvalidArgumentError("cmd: must not be empty");
  if (req.timeout() < 0) return absl::InvalidArgumentError("timeout: must not be negative");
  auto c = GetContainer(*id);
  if (!c.ok()) return c.status();
  if (c->state != cri::CONTAINER_RUNNING) {
    return absl::FailedPreconditionError(absl::StrCat("container ", c->id, " is not running"));
  }
  std::vector<std::string> argv(req.cmd().begin(), req.cmd().end());
  auto r = runtime::ExecInContainer(options_.monitor_binary, c->bundle, c->pid, argv,
                                    absl::Seconds(req.timeout()));
  if (!r.ok()) return r.status();
  if (r->timed_out) {
    return absl::DeadlineExceededError(
        absl::StrCat("command timed out after ", req.timeout(), " s (timeout)"));
  }
  resp->set_stdout(std::move(r->out));
  resp->set_stderr(std::move(r->err));
  resp->set_exit_code(r->exit_code);
  return absl::OkStatus();
}

void FillCpuMemory(const runtime::CgroupStats& cg, int64_t now, cri::CpuUsage* cpu,
                   cri::MemoryUsage* m) {
  cpu->set_timestamp(now);
  cpu->mutable_usage_core_nano_seconds()->set_value(cg.cpu_usage_ns);
  m->set_timestamp(now);
  m->mutable_working_set_bytes()->set_value(cg.memory_working_set_bytes);
  m->mutable_usage_bytes()->set_value(cg.memory_usage_bytes);
  m->mutable_rss_bytes()->set_value(cg.memory_rss_bytes);
  m->mutable_page_faults()->set_value(cg.page_faults);
  m->mutable_major_page_faults()->set_value(cg.major_page_faults);
}

void PodRuntime::FillContainerStats(const ContainerRecord& c, cri::ContainerStats* out) const {
  auto* a = out->mutable_attributes();
  a->set_id(c.id);
  *a->mutable_metadata() = c.config.metadata();
  *a->mutable_labels() = c.config.labels();
  *a->mutable_annotations() = c.config.annotations();
  const int64_t now = NowNs();
  auto cg = cgroups_->Stats(c.cgroup);
  if (cg.ok()) FillCpuMemory(*cg, now, out->mutable_cpu(), out->mutable_memory());
  auto* fs = out->mutable_writable_layer();
  fs->set_timestamp(now);
  fs->mutable_fs_id()->set_mountpoint(options_.root_dir + "/containers");
  auto usage =
      runtime::MeasureTree(absl::StrCat(options_.root_dir, "/containers/", c.id, "/upper"));
  if (usage.ok()) {
    fs->mutable_used_bytes()->set_value(usage->bytes);
    fs->mutable_inodes_used()->set_value(usage->inodes);
  }
}

absl::Status PodRuntime::ContainerStats(const cri::ContainerStatsRequest& req,
                                        cri::ContainerStatsResponse* resp) {
  auto id = ResolveContainerId(req.container_id(), "container_id");
  if (!id.ok()) return id.status();
  auto c = GetContainer(*id);
  if (!c.ok()) return c.status();
  FillContainerStats(*c, resp->mutable_stats());
  return absl::OkStatus();
}

absl::Status PodRuntime::ListContainerStats(const cri::ListContainerStatsRequest& req,
                                            cri::ListContainerStatsResponse* resp) {
  std::vector<ContainerRecord> list;
  {
    absl::MutexLock lock(&mu_);
    const auto& f = req.filter();
    for (const auto& [id, c] : containers_) {
      if (!f.id().empty() && !absl::StartsWith(id, f.id())) continue;
      if (!f.pod_sandbox_id().empty() && !absl::StartsWith(c.pod_id, f.pod_sandbox_id())) continue;
      if (!LabelsMatch(c.config.labels(), f.label_selector())) continue;
      if (c.state != cri::CONTAINER_RUNNING) continue;
      list.push_back(c);
    }
  }
  for (const auto& c : list) FillContainerStats(c, resp->add_stats());
  return absl::OkStatus();
}

}  // namespace podshim::agent
