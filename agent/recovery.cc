// What a start of podshimd finds: records read back and reconciled with what
// runs, and whatever a crash half way through an RPC left behind.
#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "agent/cri_convert.h"
#include "agent/logging.h"
#include "agent/pod_runtime.h"
#include "agent/validate.h"
#include "runtime/files.h"

namespace podshim::agent {
namespace {

// How long a monitor still starting a container at a restart may take, as
// StartContainer's own bound.
constexpr absl::Duration kStartTimeout = absl::Seconds(30);

// The records of one kind: parsed, or set aside (renamed *.json.corrupt)
// with their IDs in `unreadable`.
template <typename Record>
std::vector<Record> ReadRecords(const std::string& dir,
                                absl::StatusOr<Record> (*parse)(const std::string&),
                                std::vector<std::string>* unreadable) {
  auto log = Log("runtime");
  std::vector<Record> out;
  auto names = runtime::ListNames(dir, ".json");
  if (!names.ok()) {
    log->error("records in {}: {}", dir, names.status().ToString());
    return out;
  }
  for (const auto& id : *names) {
    const std::string path = absl::StrCat(dir, "/", id, ".json");
    auto text = runtime::ReadFile(path);
    auto rec = text.ok() ? parse(*text) : absl::StatusOr<Record>(text.status());
    if (!rec.ok()) {
      log->error("record {} is unreadable, set aside: {}", path, rec.status().ToString());
      (void)runtime::RenameFile(path, path + ".corrupt");
      unreadable->push_back(id);
      continue;
    }
    out.push_back(std::move(*rec));
  }
  return out;
}

}  // namespace

absl::Status PodRuntime::Load() {
  auto log = Log("runtime");
  std::vector<std::string> unreadable_pods, unreadable_containers;
  for (auto& rec :
       ReadRecords<SandboxRecord>(records_dir_ + "/pods", SandboxFromJson, &unreadable_pods)) {
    // A pod whose namespaces are gone (reboot, crash mid-stop) is not ready.
    if (rec.state == cri::SANDBOX_READY && !rec.net_ns.empty() &&
        !machine_->IsNamespacePinned(rec.net_ns)) {
      rec.state = cri::SANDBOX_NOTREADY;
    }
    (void)pod_names_.Reserve(PodNameKey(rec.config.metadata()), rec.id, "pod sandbox name");
    {
      absl::MutexLock lock(&mu_);
      pod_cgroups_[rec.id] = {rec.cgroup, rec.cgroup_owned};
    }
    pods_.Load(std::move(rec));
  }
  std::vector<std::string> incomplete;  // containers whose creation a crash cut short
  std::vector<std::string> created;
  for (auto& rec : ReadRecords<ContainerRecord>(records_dir_ + "/containers", ContainerFromJson,
                                                &unreadable_containers)) {
    if (rec.incomplete) {
      incomplete.push_back(rec.id);
    } else if (rec.state == cri::CONTAINER_CREATED) {
      created.push_back(rec.id);
    }
    if (auto pod = pods_.Get(rec.pod_id); pod.ok()) {
      (void)container_names_.Reserve(
          ContainerNameKey(rec.config.metadata(), pod->config.metadata()), rec.id,
          "container name");
    }
    containers_.Load(std::move(rec));
  }
  for (const auto& id : created) AdoptStartedContainer(id);
  for (const auto& c : containers_.List(
           [](const ContainerRecord& r) { return r.state == cri::CONTAINER_RUNNING; })) {
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

void PodRuntime::AdoptStartedContainer(const std::string& id) {
  // A StartContainer cut short after its monitor reported the start: the
  // monitor owns the container, so the record follows it (and the exit file,
  // if it has ended since).
  auto c = containers_.Get(id);
  if (!c.ok()) return;
  auto started = machine_->RecoverStart(c->bundle, kStartTimeout, [&](int monitor_pid) {
    Log("runtime")->info(
        "container {}: waiting for monitor {} to report a start cut short by a restart", id,
        monitor_pid);
  });
  if (!started.has_value()) return;
  auto s = containers_.Update(id, [&](ContainerRecord& r) {
    MarkRunning(started->report, started->started_at_ns, &r);
    return absl::OkStatus();
  });
  if (!s.ok()) {
    Log("runtime")->error("container {}: cannot record its start: {}", id, s.status().ToString());
    return;
  }
  Log("runtime")->info("container {} was started just before a restart; adopted", id);
}

void PodRuntime::RemovePodsWithoutRecord(const std::vector<std::string>& unreadable) {
  auto log = Log("runtime");
  // Pod id -> its cgroup, as far as its containers tell (their cgroups are
  // children of the pod's).
  std::map<std::string, std::string> gone;
  for (const auto& id : unreadable) gone[id];
  for (const auto& c :
       containers_.List([&](const ContainerRecord& r) { return !pods_.Contains(r.pod_id); })) {
    const size_t slash = c.cgroup.rfind('/');
    gone[c.pod_id] = slash == std::string::npos ? "" : c.cgroup.substr(0, slash);
    if (auto s = RemoveContainerLocked(c.id); !s.ok()) {
      log->error("container {} of pod {} (no readable record): {}", c.id, c.pod_id, s.ToString());
    }
  }
  for (const auto& [id, known_cgroup] : gone) {
    const std::string cgroup =
        known_cgroup.empty() ? absl::StrCat(options_.cgroup_parent, "/pod-", id) : known_cgroup;
    // Without a record nothing says who made it: only a cgroup under
    // podshim's own parent is podshim's.
    if (auto s = RemoveLeftoverPod(id, cgroup, UnderOwnParent(cgroup)); !s.ok()) {
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
  const std::string pods_dir = options_.state_dir + "/pods";
  auto markers = runtime::ListNames(pods_dir, ".creating");
  if (!markers.ok()) log->warn("unfinished pods: {}", markers.status().ToString());
  for (const auto& id : markers.ok() ? *markers : std::vector<std::string>{}) {
    const std::string marker = absl::StrCat(pods_dir, "/", id, ".creating");
    if (pods_.Contains(id)) {  // the record made it; only the marker was left
      (void)runtime::RemoveFile(marker);
      continue;
    }
    auto text = runtime::ReadFile(marker);
    nlohmann::json j = nlohmann::json::parse(text.ok() ? *text : "", nullptr, false);
    const std::string cgroup = j.is_object() ? j.value("cgroup", "") : "";
    // Markers from before "cgroup_owned": a cgroup under podshim's parent.
    const bool owned = j.is_object() && j.contains("cgroup_owned") && j["cgroup_owned"].is_boolean()
                           ? j["cgroup_owned"].get<bool>()
                           : UnderOwnParent(cgroup);
    if (auto s = RemoveLeftoverPod(id, cgroup, owned); !s.ok()) {
      log->warn("unfinished pod {}: {}", id, s.ToString());
      continue;  // the marker stays: tried again at the next start
    }
    (void)runtime::RemoveFile(marker);
    log->info("removed pod {}, whose creation was cut short", id);
  }
  if (network_ == nullptr) return;
  // CNI 1.1 networks: plugins free what no live pod uses.
  std::vector<std::string> attached;
  pods_.ForEach([&](const SandboxRecord& pod) {
    if (pod.network_attached) attached.push_back(pod.id);
  });
  if (auto s = network_->GarbageCollect(attached); !s.ok()) {
    log->warn("CNI GC: {}", s.ToString());
  }
  // Attachments whose pod has no record (e.g. a crash between writing the
  // CNI cache and the marker being read).
  for (const auto& id : network_->CachedIds()) {
    if (pods_.Contains(id)) continue;
    cni::PodNetwork pn;
    pn.id = id;
    if (auto s = network_->Teardown(pn); !s.ok()) {
      log->warn("orphaned network attachment {}: {}", id, s.ToString());
    } else {
      log->info("removed orphaned network attachment of pod {}", id);
    }
  }
}

bool PodRuntime::UnderOwnParent(const std::string& cgroup) const {
  const std::string own = CleanPath(options_.cgroup_parent);
  const std::string c = CleanPath(cgroup);
  return c.size() > own.size() && absl::StartsWith(c, own) && c[own.size()] == '/';
}

absl::Status PodRuntime::RemoveLeftoverPod(const std::string& id, const std::string& cgroup,
                                           bool cgroup_owned) {
  if (cgroup_owned) {
    // Never while another pod's cgroup is it or lies below it.
    const std::string mine = CleanPath(cgroup);
    absl::MutexLock lock(&mu_);
    for (const auto& [other, other_cgroup] : pod_cgroups_) {
      if (other != id && PathWithin(CleanPath(other_cgroup.path), mine)) cgroup_owned = false;
    }
  }
  const std::string dir = absl::StrCat(options_.state_dir, "/pods/", id);
  if (network_ != nullptr) {
    cni::PodNetwork pn;
    pn.id = id;
    pn.netns = dir + "/ns/net";
    if (auto s = network_->Teardown(pn); !s.ok()) return s;
  }
  return machine_->RemovePod(dir, 0, cgroup_owned ? cgroup : "");
}

}  // namespace podshim::agent
