// Containers: Create, Start, Stop, Remove, and the record of their exit.
#include <signal.h>

#include <optional>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agent/cri_convert.h"
#include "agent/failpoint.h"
#include "agent/logging.h"
#include "agent/pod_runtime.h"
#include "agent/translate.h"
#include "agent/validate.h"
#include "runtime/files.h"
#include "runtime/security.h"

namespace podshim::agent {
namespace {

int64_t NowNs() { return absl::ToUnixNanos(absl::Now()); }

constexpr absl::Duration kStartTimeout = absl::Seconds(30);
// The largest Localhost seccomp profile read (Docker's default is ~20 KiB).
constexpr size_t kMaxSeccompProfileBytes = size_t{1} << 20;
// How long a killed container may take to be reported by its monitor.
constexpr absl::Duration kKillWait = absl::Seconds(10);

// Stop and Remove of what is gone succeed (CRI: idempotent).
absl::Status OkIfNotFound(const absl::Status& s) {
  return s.code() == absl::StatusCode::kNotFound ? absl::OkStatus() : s;
}

absl::Status WithField(const absl::Status& s, absl::string_view field) {
  if (s.ok()) return s;
  return absl::Status(s.code(), absl::StrCat(field, ": ", s.message()));
}

// The host's device nodes a request names (config.devices[i].host_path),
// each checked against what the container may use.
absl::StatusOr<std::vector<runtime::DeviceNode>> StatDevices(const cri::ContainerConfig& config,
                                                             Machine& machine) {
  std::vector<runtime::DeviceNode> nodes;
  const bool privileged = config.linux().security_context().privileged();
  for (int i = 0; i < config.devices_size(); ++i) {
    const std::string field = absl::StrCat("config.devices[", i, "].host_path");
    const std::string& path = config.devices(i).host_path();
    auto node = machine.StatDevice(path);
    if (!node.ok()) {
      if (node.status().code() == absl::StatusCode::kNotFound) {
        return absl::NotFoundError(
            absl::StrCat(field, ": ", QuoteForError(path), " does not exist"));
      }
      return WithField(node.status(), field);
    }
    if (auto s = ValidateDeviceNode(*node, path, privileged, field); !s.ok()) return s;
    nodes.push_back(*node);
  }
  return nodes;
}

}  // namespace

absl::Status PodRuntime::CreateContainer(const cri::CreateContainerRequest& req,
                                         cri::CreateContainerResponse* resp) {
  // The request first: a bad one changes nothing, not even a claim.
  if (!req.has_config()) return absl::InvalidArgumentError("config: missing");
  const auto& config = req.config();
  if (auto s = ValidateContainerConfig(config, host_security_); !s.ok()) return s;
  auto pod_id = pods_.Resolve(req.pod_sandbox_id(), "pod_sandbox_id");
  if (!pod_id.ok()) return pod_id.status();
  // What needs the pod or the host is checked before the claim too: reads
  // only (the pod's config never changes). Only a privileged or pid TARGET
  // container needs the pod's record, so the common path copies none.
  const auto& sc = config.linux().security_context();
  if (sc.privileged() || sc.namespace_options().pid() == cri::TARGET) {
    auto pod = pods_.Get(*pod_id);
    if (!pod.ok()) return pod.status();
    auto pod_of = [this](absl::string_view id) -> absl::StatusOr<std::string> {
      auto c = containers_.Resolve(id, "config.linux.security_context.namespace_options.target_id");
      if (!c.ok()) return c.status();
      auto record = containers_.Get(*c);
      if (!record.ok()) return record.status();
      return record->pod_id;
    };
    if (auto s = ValidateContainerInPod(config, pod->config, pod->id, pod_of); !s.ok()) return s;
  }
  ContainerSource source;
  auto device_nodes = StatDevices(config, *machine_);
  if (!device_nodes.ok()) return device_nodes.status();
  source.device_nodes = std::move(*device_nodes);
  // cgroup v2 has no devices files; until podshim attaches a BPF device
  // filter there, containers get no CAP_MKNOD (translate.h).
  source.devices_enforced = cgroups_->Version() == 1;
  // A Localhost seccomp profile is read here, before any lock is taken, and
  // only from a regular file of bounded size: a FIFO would hang the call,
  // /dev/zero would grow memory without end (issue 18, finding 9).
  auto seccomp = ChooseSeccomp(sc);
  if (!seccomp.ok()) return seccomp.status();
  if (!sc.privileged() && seccomp->kind == SeccompChoice::kLocalhost) {
    auto text = runtime::ReadRegularFile(seccomp->localhost_path, kMaxSeccompProfileBytes);
    if (!text.ok()) {
      const std::string what =
          absl::StrCat("config.linux.security_context.seccomp: profile ",
                       QuoteForError(seccomp->localhost_path), ": ", text.status().message());
      return text.status().code() == absl::StatusCode::kNotFound ? absl::NotFoundError(what)
                                                                 : absl::InvalidArgumentError(what);
    }
    source.localhost_seccomp = std::move(*text);
  }
  Claim(*pod_id, "CreateContainer");
  auto op = PodLock(*pod_id);
  absl::MutexLock op_lock(op.get());
  auto pod = pods_.Get(*pod_id);
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
  // What translation needs from the host, read now.
  if (image->config.contains("config") && image->config["config"].is_object()) {
    source.image_config = image->config["config"];
  }
  if (sc.namespace_options().pid() == cri::TARGET) {
    auto target = containers_.Resolve(sc.namespace_options().target_id(),
                                      "config.linux.security_context.namespace_options.target_id");
    if (!target.ok()) return target.status();
    auto t = containers_.Get(*target);
    if (t.ok() && t->state == cri::CONTAINER_RUNNING) {
      source.target_pid = t->pid;
      source.target_start_time = t->pid_start_time;
    }
  }
  const std::string id = NewId();
  source.id = id;
  source.config = &config;
  source.pod = &*pod;
  source.bundle = absl::StrCat(options_.state_dir, "/containers/", id);
  source.layer_dir = absl::StrCat(options_.root_dir, "/containers/", id);
  auto plan = PlanContainer(source);
  if (!plan.ok()) return plan.status();
  runtime::LaunchSpec& spec = plan->spec;
  // As containerd does for a missing host path: make it a directory.
  for (int i = 0; i < config.mounts_size(); ++i) {
    const std::string& host_path = config.mounts(i).host_path();
    if (runtime::PathExists(host_path)) continue;
    if (auto s = runtime::MakeDirs(host_path, 0755); !s.ok()) {
      return WithField(s, absl::StrCat("config.mounts[", i, "].host_path"));
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
  r.cgroup = plan->cgroup;
  r.log_path = plan->log_path;
  r.stop_signal = plan->stop_signal;
  r.resources = config.linux().resources();
  spec.cgroup_procs = cgroups_->ProcsFiles(r.cgroup);
  spec.oom_counter_file = cgroups_->OomCounterFile(r.cgroup);

  // Reserve the name; from here on every step is undone on failure.
  const std::string key = ContainerNameKey(config.metadata(), pod->config.metadata());
  if (auto s = container_names_.Reserve(key, id, "container name"); !s.ok()) return s;
  bool leased = false;
  bool cgroup_made = false;
  absl::Cleanup undo = [&] {
    if (cgroup_made) (void)cgroups_->Remove(r.cgroup);
    (void)runtime::RemoveTree(source.layer_dir);
    (void)runtime::RemoveTree(spec.bundle);
    if (leased) (void)images_->ReleaseLease(id);
    (void)containers_.Remove(id);
    container_names_.Release(key, id);
  };

  // First on disk: what the following steps will make, so that a crash half
  // way is cleaned up at the next start.
  r.incomplete = true;
  if (auto s = containers_.WriteIntent(r); !s.ok()) return s;
  r.incomplete = false;
  // The cgroup with its limits is made on a thread of its own while the
  // lease and the writable layer are made here: each takes most of a
  // millisecond, mostly in the kernel, and neither needs the other. The
  // thread, destroyed before `undo`, is joined before any undo.
  runtime::CgroupResources limits = plan->limits;
  if (options_.pids_limit > 0) limits.pids_limit = options_.pids_limit;
  absl::Status cgroup_status;
  cgroup_made = true;  // from now on the undo removes it (a missing cgroup is fine)
  std::jthread cgroup_maker(
      [cgroups = cgroups_, cgroup = r.cgroup, limits, &rules = plan->device_rules, &cgroup_status] {
        cgroup_status = cgroups->Create(cgroup);
        if (cgroup_status.ok()) {
          if (auto s = cgroups->Apply(cgroup, limits); !s.ok()) {
            cgroup_status = WithField(s, "config.linux.resources");
          }
        }
        if (cgroup_status.ok() && rules.has_value()) {
          cgroup_status = cgroups->RestrictDevices(cgroup, *rules);
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
  if (auto s = machine_->PrepareMountTargets(spec); !s.ok()) return s;
  cgroup_maker.join();
  if (!cgroup_status.ok()) return cgroup_status;
  r.spec_json = runtime::LaunchSpecToJson(spec);
  if (auto s =
          runtime::WriteFileAtomic(absl::StrCat(spec.bundle, "/", runtime::kSpecFile), r.spec_json);
      !s.ok()) {
    return s;
  }
  FaultPoint("create-container:before-save");
  if (auto s = containers_.Add(r); !s.ok()) return s;
  std::move(undo).Cancel();
  resp->set_container_id(id);
  return absl::OkStatus();
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
    // Never changes a directory that is there, never follows a symlink.
    const size_t slash = c->log_path.rfind('/');
    if (slash != std::string::npos && slash > 0) {
      if (auto s = runtime::MakeMissingDirs(c->log_path.substr(0, slash), 0755); !s.ok()) {
        return absl::Status(s.code(), absl::StrCat("log_path: ", s.message()));
      }
    }
  }
  // Taken before the spawn: a workload that exits at once must never show a
  // finished_at before its started_at.
  const int64_t started_at = NowNs();
  // The record's spec text goes to the monitor as it is: it parses it.
  auto report = machine_->StartContainer(c->bundle, c->id, c->spec_json, kStartTimeout,
                                         [] { CrashPoint("start-container:handed"); });
  if (!report.ok()) {
    (void)containers_.Update(c->id, [&](ContainerRecord& r) {
      r.state = cri::CONTAINER_EXITED;
      r.exit_code = 128;
      r.reason = "StartError";
      r.message = std::string(report.status().message());
      r.finished_at_ns = NowNs();
      return absl::OkStatus();
    });
    (void)cgroups_->Remove(c->cgroup);
    return report.status();
  }
  FaultPoint("start-container:after-spawn");
  auto running = containers_.Update(c->id, [&](ContainerRecord& r) {
    MarkRunning(*report, started_at, &r);
    return absl::OkStatus();
  });
  if (!running.ok()) {
    (void)machine_->Signal(report->pid, report->start_time, SIGKILL);
    return running.status();
  }
  return WatchMonitor(*running);
}

void MarkRunning(const runtime::StartReport& report, int64_t started_at_ns, ContainerRecord* c) {
  c->state = cri::CONTAINER_RUNNING;
  c->pid = report.pid;
  c->pid_start_time = report.start_time;
  c->monitor_pid = report.monitor_pid;
  c->monitor_start_time = report.monitor_start_time;
  c->started_at_ns = started_at_ns;
  c->uid = report.uid;
  c->gid = report.gid;
  c->groups = report.groups;
}

absl::Status PodRuntime::WatchMonitor(const ContainerRecord& r) {
  const std::string id = r.id;
  if (!machine_->ProcessAlive(r.monitor_pid, r.monitor_start_time)) {
    OnMonitorExit(id);
    return absl::OkStatus();
  }
  return machine_->WatchExit(r.monitor_pid, r.monitor_start_time,
                             [this, id] { OnMonitorExit(id); });
}

void PodRuntime::OnMonitorExit(const std::string& id) {
  auto c = containers_.Get(id);
  if (!c.ok() || c->state != cri::CONTAINER_RUNNING) return;
  auto exit = machine_->ReadExitFile(c->bundle);
  if (!exit.ok()) {
    // The monitor died (e.g. was killed): the container has no owner of its
    // output and exit any more, so it is ended rather than left running
    // unseen.
    if (auto pids = cgroups_->Pids(c->cgroup); pids.ok() && !pids->empty()) {
      machine_->KillAndReap(*pids, absl::Seconds(1));
    }
  }
  // Changes only what an exit changes, on the record as it is now: an
  // UpdateContainerResources meanwhile keeps its resources, and this exit
  // is not undone by it.
  auto s = containers_.Update(id, [&](ContainerRecord& r) {
    if (r.state != cri::CONTAINER_RUNNING) {
      return absl::FailedPreconditionError("its exit is recorded already");
    }
    r.state = cri::CONTAINER_EXITED;
    if (exit.ok()) {
      r.exit_code = exit->exit_code;
      r.reason = exit->reason;
      r.finished_at_ns = exit->finished_at_ns > 0 ? exit->finished_at_ns : NowNs();
    } else {
      r.exit_code = 255;
      r.reason = "Unknown";
      r.message =
          "the container's monitor ended without recording its exit; its processes were killed";
      r.finished_at_ns = NowNs();
    }
    return absl::OkStatus();
  });
  if (!s.ok() && s.status().code() != absl::StatusCode::kFailedPrecondition &&
      s.status().code() != absl::StatusCode::kNotFound) {
    Log("runtime")->error("container {}: cannot record its exit: {}", id, s.status().ToString());
  }
}

absl::Status PodRuntime::StopContainerLocked(const std::string& id, int64_t timeout_s) {
  auto c = containers_.Get(id);
  if (!c.ok()) return c.status();
  if (c->state != cri::CONTAINER_RUNNING) return absl::OkStatus();
  auto exited = [](const ContainerRecord* r) {
    return r == nullptr || r->state != cri::CONTAINER_RUNNING;
  };
  if (timeout_s > 0) {
    if (auto s = machine_->Signal(c->pid, c->pid_start_time, c->stop_signal); !s.ok()) return s;
    if (containers_.WaitUntil(id, exited, absl::Now() + absl::Seconds(timeout_s))) {
      return absl::OkStatus();
    }
  }
  if (auto s = machine_->Signal(c->pid, c->pid_start_time, SIGKILL); !s.ok()) return s;
  if (containers_.WaitUntil(id, exited, absl::Now() + kKillWait)) return absl::OkStatus();
  // The monitor did not report: if it is gone, record what we know.
  if (!machine_->ProcessAlive(c->monitor_pid, c->monitor_start_time)) {
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
  auto c = containers_.Get(id);
  if (!c.ok()) return absl::OkStatus();
  if (auto s = StopContainerLocked(id, 0); !s.ok()) return s;
  if (auto s = cgroups_->Remove(c->cgroup); !s.ok()) return s;
  // A directory that cannot be removed (a busy file, a mount propagated back
  // into the rootfs) must not make the container unremovable for good: it is
  // reported and left, as before the stores.
  for (const std::string& dir : {c->bundle, absl::StrCat(options_.root_dir, "/containers/", id)}) {
    if (auto s = runtime::RemoveTree(dir); !s.ok()) {
      Log("runtime")->warn("container {}: {} is left behind: {}", id, dir, s.ToString());
    }
  }
  if (auto s = images_->ReleaseLease(id); !s.ok()) return s;
  if (auto s = containers_.Remove(id); !s.ok()) return s;
  container_names_.ReleaseId(id);
  return absl::OkStatus();
}

absl::Status PodRuntime::RemoveContainer(const cri::RemoveContainerRequest& req) {
  OpGuard guard;
  auto c = LockContainer(req.container_id(), &guard);
  if (!c.ok()) return OkIfNotFound(c.status());
  return RemoveContainerLocked(c->id);
}

}  // namespace podshim::agent
