// Pods: RunPodSandbox, Stop, Remove, Status, List and stats.
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agent/cri_convert.h"
#include "agent/failpoint.h"
#include "agent/pod_runtime.h"
#include "agent/translate.h"
#include "agent/validate.h"
#include "runtime/files.h"

namespace podshim::agent {
namespace {

int64_t NowNs() { return absl::ToUnixNanos(absl::Now()); }

// While RunPodSandbox works, state_dir/pods/<id>.creating names the pod's
// cgroup (its directory is state_dir/pods/<id>), so that a crash half way can
// be cleaned up (recovery.cc).
std::string CreatingMarker(const std::string& state_dir, const std::string& id) {
  return absl::StrCat(state_dir, "/pods/", id, ".creating");
}

}  // namespace

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
  // Translated before the name is reserved: a bad request changes nothing.
  PodPlace place{"", "", options_.cgroup_parent, options_.pinns_binary};
  if (auto probe = PlanPod(config, place); !probe.ok()) return probe.status();
  // Never the root or podshim's own parent (issue 18, finding 1).
  if (!config.linux().cgroup_parent().empty()) {
    if (auto s = CheckCgroupParent(config.linux().cgroup_parent(), options_.cgroup_parent);
        !s.ok()) {
      return s;
    }
  }

  // Reserve the name first, unless an earlier call holds it for a pod that
  // is ours to hand over (see the handoff note in pod_runtime.h).
  const std::string key = PodNameKey(config.metadata());
  std::string id;
  std::shared_ptr<Creation> creation;
  bool handed = false;
  if (auto s = ReservePodName(key, call, &id, &creation, &handed, resp); !s.ok() || handed) {
    return s;
  }
  place.id = id;
  place.dir = absl::StrCat(options_.state_dir, "/pods/", id);
  auto setup = PlanPod(config, place);
  if (!setup.ok()) {
    FinishCreation(key, creation, id, setup.status(), /*client_gone=*/false);
    return setup.status();
  }
  auto op = PodLock(id);
  absl::MutexLock op_lock(op.get());
  // Until the infra process is in the cgroup, no pod sharing it decides to
  // remove it (and one deciding now finishes first).
  absl::ReleasableMutexLock cgroup_lock(&CgroupLock(setup->cgroup));
  {
    // From here other pods see that this one uses its cgroup (a shared
    // cgroup_parent is removed only with the last pod in it).
    absl::MutexLock lock(&mu_);
    pod_cgroups_[id] = {setup->cgroup, false};
  }
  auto release_name = [&](const absl::Status& why) {
    {
      absl::MutexLock lock(&mu_);
      pod_cgroups_.erase(id);
    }
    FinishCreation(key, creation, id, why, /*client_gone=*/false);
  };

  // A cgroup that is there already (the kubelet makes its pod cgroup before
  // RunPodSandbox) is not podshim's: it is never killed or removed by it.
  // Unless another pod of podshim's made it: sharing it, this pod shares that
  // ownership, so whichever of them goes last removes it (the maker going
  // first must not leave it behind, empty). Looked up after the check, under
  // the lock, so a maker that made it just before is seen.
  const bool cgroup_exists = cgroups_->Exists(setup->cgroup);
  bool cgroup_owned = !cgroup_exists;
  {
    absl::MutexLock lock(&mu_);
    const std::string mine = CleanPath(setup->cgroup);
    for (const auto& [other, cgroup] : pod_cgroups_) {
      if (other != id && cgroup.owned && CleanPath(cgroup.path) == mine) cgroup_owned = true;
    }
    pod_cgroups_[id].owned = cgroup_owned;
  }
  // A failed set-up removes only a cgroup it made itself.
  setup->keep_cgroup = cgroup_exists;
  const std::string marker = CreatingMarker(options_.state_dir, id);
  if (auto s = runtime::WriteFileAtomic(
          marker,
          nlohmann::json({{"cgroup", setup->cgroup}, {"cgroup_owned", cgroup_owned}}).dump());
      !s.ok()) {
    release_name(s);
    return s;
  }
  auto res = machine_->SetUpPod(*setup);
  if (!res.ok()) {
    (void)runtime::RemoveFile(marker);
    release_name(res.status());
    return res.status();
  }
  cgroup_lock.Release();  // the infra process (pid=POD) is in the cgroup
  SandboxRecord r;
  r.id = id;
  r.config = config;
  r.config_json = std::make_shared<const std::string>(ProtoJsonText(config));
  r.runtime_handler = req.runtime_handler();
  r.created_at_ns = NowNs();
  r.state = cri::SANDBOX_READY;
  r.dir = res->dir;
  r.cgroup = setup->cgroup;
  r.cgroup_owned = cgroup_owned;
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
    if (r.network_attached) (void)network_->Teardown(PodNetworkOf(r));
    {
      absl::MutexLock undo_lock(&CgroupLock(r.cgroup));
      (void)machine_->RemovePod(r.dir, r.infra_pid, RemovesPodCgroup(r) ? r.cgroup : "");
    }
    (void)runtime::RemoveFile(marker);
    release_name(s);
    return s;
  };
  FaultPoint("run-pod:after-setup");
  if (!config.log_directory().empty()) {
    // Made where missing; an existing directory keeps its mode, owner and
    // sticky bit, and no symlink is followed (issue 18, finding 9).
    if (auto s = runtime::MakeMissingDirs(config.log_directory(), 0755); !s.ok()) {
      return fail(absl::Status(s.code(), absl::StrCat("config.log_directory: ", s.message())));
    }
  }
  if (!setup->host_network && network_ != nullptr) {
    auto attachment = network_->Setup(PodNetworkOf(r));
    if (!attachment.ok()) return fail(attachment.status());
    r.network_attached = true;
    r.network_name = attachment->network_name;
    if (!attachment->ips.empty()) {
      r.ip = attachment->ips.front();
      r.additional_ips.assign(attachment->ips.begin() + 1, attachment->ips.end());
    }
  }
  FaultPoint("run-pod:after-network");
  if (auto s = pods_.Add(r); !s.ok()) return fail(s);
  FaultPoint("run-pod:after-save");
  (void)runtime::RemoveFile(marker);
  // A client that left will not read the reply: keep the pod for its retry.
  FinishCreation(key, creation, id, absl::OkStatus(), call.Gone(absl::Now()));
  resp->set_pod_sandbox_id(id);
  return absl::OkStatus();
}

absl::Mutex& PodRuntime::CgroupLock(const std::string& cgroup) {
  return cgroup_locks_[std::hash<std::string>{}(CleanPath(cgroup)) % kCgroupStripes];
}

bool PodRuntime::RemovesPodCgroup(const SandboxRecord& pod) const {
  if (!pod.cgroup_owned) return false;
  const std::string mine = CleanPath(pod.cgroup);
  absl::MutexLock lock(&mu_);
  for (const auto& [other, cgroup] : pod_cgroups_) {
    if (other != pod.id && PathWithin(CleanPath(cgroup.path), mine)) return false;
  }
  return true;
}

absl::Status PodRuntime::DetachNetwork(const SandboxRecord& pod) {
  if (!pod.network_attached || network_ == nullptr) return absl::OkStatus();
  if (auto s = network_->Teardown(PodNetworkOf(pod)); !s.ok()) return s;
  return pods_
      .Update(pod.id,
              [](SandboxRecord& r) {
                r.network_attached = false;
                return absl::OkStatus();
              })
      .status();
}

absl::Status PodRuntime::StopPodLocked(const std::string& pod_id) {
  for (const auto& c : ContainersOf(pod_id)) {
    if (c.state == cri::CONTAINER_RUNNING) {
      if (auto s = StopContainerLocked(c.id, 0); !s.ok()) return s;
    }
  }
  auto pod = pods_.Get(pod_id);
  if (!pod.ok()) return pod.status();
  // The network goes first, while its namespace is still pinned.
  if (auto s = DetachNetwork(*pod); !s.ok()) return s;
  FaultPoint("stop-pod:after-network");
  {
    absl::MutexLock cgroup_lock(&CgroupLock(pod->cgroup));
    const bool remove_cgroup = RemovesPodCgroup(*pod);
    if (!remove_cgroup) {
      // Not podshim's cgroup alone: only its containers' cgroups (podshim
      // made those) are emptied, never what else runs in the pod's.
      for (const auto& c : ContainersOf(pod_id)) {
        if (auto s = cgroups_->Remove(c.cgroup); !s.ok()) return s;
      }
    }
    if (auto s = machine_->StopPod(pod->dir, pod->infra_pid, remove_cgroup ? pod->cgroup : "");
        !s.ok()) {
      return s;
    }
  }
  if (pod->state == cri::SANDBOX_NOTREADY) return absl::OkStatus();
  return pods_
      .Update(pod_id,
              [](SandboxRecord& r) {
                r.state = cri::SANDBOX_NOTREADY;
                return absl::OkStatus();
              })
      .status();
}

absl::Status PodRuntime::StopPodSandbox(const cri::StopPodSandboxRequest& req) {
  auto id = pods_.Resolve(req.pod_sandbox_id(), "pod_sandbox_id");
  if (!id.ok()) {
    // Stopping what is gone is success (CRI: idempotent, as containerd 1.7+).
    return id.status().code() == absl::StatusCode::kNotFound ? absl::OkStatus() : id.status();
  }
  Claim(*id, "StopPodSandbox");
  auto op = PodLock(*id);
  absl::MutexLock op_lock(op.get());
  if (!pods_.Contains(*id)) {  // removed while we waited: stopped for good
    DropPodLockIfGone(*id);
    return absl::OkStatus();
  }
  return StopPodLocked(*id);
}

absl::Status PodRuntime::RemovePodSandbox(const cri::RemovePodSandboxRequest& req) {
  auto id = pods_.Resolve(req.pod_sandbox_id(), "pod_sandbox_id");
  if (!id.ok()) {
    // Removing what is not there is success (CRI: idempotent).
    return id.status().code() == absl::StatusCode::kNotFound ? absl::OkStatus() : id.status();
  }
  Claim(*id, "RemovePodSandbox");
  auto op = PodLock(*id);
  absl::MutexLock op_lock(op.get());
  auto pod = pods_.Get(*id);
  if (!pod.ok()) {  // removed while we waited
    DropPodLockIfGone(*id);
    return absl::OkStatus();
  }
  return RemovePodLocked(*pod);
}

absl::Status PodRuntime::RemovePodLocked(const SandboxRecord& pod) {
  const std::string& id = pod.id;
  for (const auto& c : ContainersOf(id)) {
    if (auto s = RemoveContainerLocked(c.id); !s.ok()) return s;
  }
  if (auto s = DetachNetwork(pod); !s.ok()) return s;
  FaultPoint("remove-pod:after-containers");
  {
    absl::MutexLock cgroup_lock(&CgroupLock(pod.cgroup));
    if (auto s =
            machine_->RemovePod(pod.dir, pod.infra_pid, RemovesPodCgroup(pod) ? pod.cgroup : "");
        !s.ok()) {
      return s;
    }
  }
  {
    // No longer handed to a retry: from here a RunPodSandbox of its name gets
    // ALREADY_EXISTS until the name is free.
    absl::MutexLock lock(&mu_);
    unclaimed_.erase(id);
  }
  if (auto s = pods_.Remove(id); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  pod_names_.Release(PodNameKey(pod.config.metadata()), id);
  pod_cgroups_.erase(id);
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

absl::Status PodRuntime::PodSandboxStatus(const cri::PodSandboxStatusRequest& req,
                                          cri::PodSandboxStatusResponse* resp) {
  auto id = pods_.Resolve(req.pod_sandbox_id(), "pod_sandbox_id");
  if (!id.ok()) return id.status();
  Claim(*id, "PodSandboxStatus");
  auto pod = pods_.Get(*id);
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
  pods_.ForEach([&](const SandboxRecord& r) {
    if (!f.id().empty() && !absl::StartsWith(r.id, f.id())) return;
    if (f.has_state() && f.state().state() != r.state) return;
    if (!LabelsMatch(r.config.labels(), f.label_selector())) return;
    auto* item = resp->add_items();
    item->set_id(r.id);
    *item->mutable_metadata() = r.config.metadata();
    item->set_state(r.state);
    item->set_created_at(r.created_at_ns);
    *item->mutable_labels() = r.config.labels();
    *item->mutable_annotations() = r.config.annotations();
    item->set_runtime_handler(r.runtime_handler);
  });
  return absl::OkStatus();
}

absl::Status PodRuntime::PodSandboxStats(const cri::PodSandboxStatsRequest& req,
                                         cri::PodSandboxStatsResponse* resp) {
  auto id = pods_.Resolve(req.pod_sandbox_id(), "pod_sandbox_id");
  if (!id.ok()) return id.status();
  auto pod = pods_.Get(*id);
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
  pods_.ForEach([&](const SandboxRecord& r) {
    if (!req.filter().id().empty() && !absl::StartsWith(r.id, req.filter().id())) return;
    if (!LabelsMatch(r.config.labels(), req.filter().label_selector())) return;
    ids.push_back(r.id);
  });
  for (const auto& id : ids) {
    cri::PodSandboxStatsRequest one;
    one.set_pod_sandbox_id(id);
    cri::PodSandboxStatsResponse out;
    if (PodSandboxStats(one, &out).ok()) *resp->add_stats() = out.stats();
  }
  return absl::OkStatus();
}

}  // namespace podshim::agent
