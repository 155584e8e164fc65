// Containers, the RPCs that read or adjust a container: Status, List,
// UpdateContainerResources, ReopenContainerLog, ExecSync and stats.
#include <algorithm>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agent/cri_convert.h"
#include "agent/pod_runtime.h"
#include "agent/translate.h"
#include "agent/validate.h"
#include "runtime/files.h"

namespace podshim::agent {
namespace {

int64_t NowNs() { return absl::ToUnixNanos(absl::Now()); }

// How long the monitor may take to reopen a container's log.
constexpr absl::Duration kReopenTimeout = absl::Seconds(1);

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
  containers_.ForEach([&](const ContainerRecord& c) {
    if (!f.id().empty() && !absl::StartsWith(c.id, f.id())) return;
    if (!f.pod_sandbox_id().empty() && !absl::StartsWith(c.pod_id, f.pod_sandbox_id())) return;
    if (f.has_state() && f.state().state() != c.state) return;
    if (!LabelsMatch(c.config.labels(), f.label_selector())) return;
    FillContainerItem(c, resp->add_containers());
  });
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
  auto id = containers_.Resolve(req.container_id(), "container_id");
  if (!id.ok()) return id.status();
  auto c = containers_.Get(*id);
  if (!c.ok()) return c.status();
  FillContainerStatus(*c, resp->mutable_status());
  if (req.verbose()) {
    nlohmann::json info;
    info["sandboxID"] = c->pod_id;
    info["pid"] = c->pid;
    info["pidStartTime"] = c->pid_start_time;  // ticks after boot, /proc/PID/stat field 22
    info["monitorPid"] = c->monitor_pid;
    info["monitorStartTime"] = c->monitor_start_time;
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
  if (auto s = ValidateUpdateRequest(req); !s.ok()) return s;
  OpGuard guard;
  auto c = LockContainer(req.container_id(), &guard);
  if (!c.ok()) return c.status();
  if (c->state == cri::CONTAINER_EXITED) {
    return absl::FailedPreconditionError(absl::StrCat("container ", c->id, " has exited"));
  }
  if (!req.has_linux()) return absl::OkStatus();
  if (auto s = cgroups_->Apply(c->cgroup, ToCgroup(req.linux())); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("linux: ", s.message()));
  }
  // Only the resources change, on the record as it is now: an exit recorded
  // meanwhile stays recorded.
  return containers_
      .Update(c->id,
              [&](ContainerRecord& r) {
                r.resources.MergeFrom(req.linux());
                return absl::OkStatus();
              })
      .status();
}

absl::Status PodRuntime::ReopenContainerLog(const cri::ReopenContainerLogRequest& req) {
  auto id = containers_.Resolve(req.container_id(), "container_id");
  if (!id.ok()) return id.status();
  auto c = containers_.Get(*id);
  if (!c.ok()) return c.status();
  if (c->state != cri::CONTAINER_RUNNING) {
    return absl::FailedPreconditionError(absl::StrCat("container ", c->id, " is not running"));
  }
  if (auto s = machine_->ReopenLog(c->bundle, c->monitor_pid, c->monitor_start_time, c->log_path,
                                   kReopenTimeout);
      !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("container ", c->id, ": ", s.message()));
  }
  return absl::OkStatus();
}

absl::Status PodRuntime::ExecSync(const cri::ExecSyncRequest& req, cri::ExecSyncResponse* resp) {
  auto id = containers_.Resolve(req.container_id(), "container_id");
  if (!id.ok()) return id.status();
  if (req.cmd().empty()) return absl::InvalidArgumentError("cmd: must not be empty");
  if (req.timeout() < 0) return absl::InvalidArgumentError("timeout: must not be negative");
  auto c = containers_.Get(*id);
  if (!c.ok()) return c.status();
  if (c->state != cri::CONTAINER_RUNNING) {
    return absl::FailedPreconditionError(absl::StrCat("container ", c->id, " is not running"));
  }
  std::vector<std::string> argv(req.cmd().begin(), req.cmd().end());
  // No command runs without end: 0 (none) and longer timeouts are capped
  // (issue 18, finding 9).
  const absl::Duration timeout =
      req.timeout() == 0 ? options_.exec_sync_max_timeout
                         : std::min(absl::Seconds(req.timeout()), options_.exec_sync_max_timeout);
  auto r = machine_->Exec(c->bundle, c->pid, c->pid_start_time, argv, timeout);
  if (!r.ok()) return r.status();
  if (r->timed_out) {
    return absl::DeadlineExceededError(absl::StrCat(
        "command timed out after ", absl::FormatDuration(timeout), " (timeout ", req.timeout(),
        timeout < absl::Seconds(req.timeout()) || req.timeout() == 0
            ? absl::StrCat(", capped at exec_sync_max_timeout_seconds = ",
                           absl::ToInt64Seconds(options_.exec_sync_max_timeout), ")")
            : ")"));
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
      machine_->MeasureTree(absl::StrCat(options_.root_dir, "/containers/", c.id, "/upper"));
  if (usage.ok()) {
    fs->mutable_used_bytes()->set_value(usage->bytes);
    fs->mutable_inodes_used()->set_value(usage->inodes);
  }
}

absl::Status PodRuntime::ContainerStats(const cri::ContainerStatsRequest& req,
                                        cri::ContainerStatsResponse* resp) {
  auto id = containers_.Resolve(req.container_id(), "container_id");
  if (!id.ok()) return id.status();
  auto c = containers_.Get(*id);
  if (!c.ok()) return c.status();
  FillContainerStats(*c, resp->mutable_stats());
  return absl::OkStatus();
}

absl::Status PodRuntime::ListContainerStats(const cri::ListContainerStatsRequest& req,
                                            cri::ListContainerStatsResponse* resp) {
  const auto& f = req.filter();
  const std::vector<ContainerRecord> list = containers_.List([&](const ContainerRecord& c) {
    return (f.id().empty() || absl::StartsWith(c.id, f.id())) &&
           (f.pod_sandbox_id().empty() || absl::StartsWith(c.pod_id, f.pod_sandbox_id())) &&
           LabelsMatch(c.config.labels(), f.label_selector()) && c.state == cri::CONTAINER_RUNNING;
  });
  for (const auto& c : list) FillContainerStats(c, resp->add_stats());
  return absl::OkStatus();
}

}  // namespace podshim::agent
