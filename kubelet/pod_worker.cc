// One pod's worker: its thread and sync loop, observing the pod through the
// CRI, carrying out the sync's actions, removal and the published status.
#include "kubelet/pod_worker.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "runtime/files.h"
#include "spdlog/spdlog.h"

namespace podshim::kubelet {
namespace {

namespace rt = ::runtime::v1;
namespace fs = std::filesystem;

constexpr absl::Duration kSandboxTimeout = absl::Minutes(4);
constexpr char kSandboxBackoff[] = "(sandbox)";

ContainerState FromCri(rt::ContainerState s) {
  switch (s) {
    case rt::CONTAINER_CREATED:
      return ContainerState::kCreated;
    case rt::CONTAINER_RUNNING:
      return ContainerState::kRunning;
    case rt::CONTAINER_EXITED:
      return ContainerState::kExited;
    default:
      return ContainerState::kUnknown;
  }
}

std::map<std::string, std::string> Selector(const std::string& ns, const std::string& name) {
  return {{kManagedLabel, "true"}, {kPodNameLabel, name}, {kPodNamespaceLabel, ns}};
}

}  // namespace

PodWorker::PodWorker(CriClient* cri, const WorkerOptions& options, std::string namespace_name,
                     std::string name, std::shared_ptr<const Pod> desired)
    : cri_(cri),
      options_(options),
      namespace_(std::move(namespace_name)),
      name_(std::move(name)),
      key_(absl::StrCat(namespace_, "/", name_)),
      backoff_(options.backoff_initial, options.backoff_max) {
  {
    absl::MutexLock l(&mu_);
    desired_ = std::move(desired);
    if (desired_) {
      status_ = RenderPod(*desired_, ComputePodStatus(*desired_, {}, {}, {}), options_.render,
                          clock_, absl::Now());
    } else {
      terminating_since_ = absl::Now();
      status_ = {{"apiVersion", "v1"},
                 {"kind", "Pod"},
                 {"metadata", {{"name", name_}, {"namespace", namespace_}}},
                 {"status", {{"phase", "Unknown"}}}};
    }
  }
  thread_ = std::thread([this] { Run(); });
}

PodWorker::~PodWorker() {
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void PodWorker::Update(std::shared_ptr<const Pod> desired) {
  absl::MutexLock l(&mu_);
  if (!desired && desired_) terminating_since_ = absl::Now();
  if (desired) terminating_since_ = absl::InfiniteFuture();
  desired_ = std::move(desired);
  wake_ = true;
}

std::shared_ptr<const Pod> PodWorker::desired() const {
  absl::MutexLock l(&mu_);
  return desired_;
}

bool PodWorker::Finished() const {
  absl::MutexLock l(&mu_);
  return finished_;
}

bool PodWorker::WaitFinished(absl::Time deadline) const {
  absl::MutexLock l(&mu_);
  return mu_.AwaitWithDeadline(absl::Condition(&finished_), deadline);
}

nlohmann::json PodWorker::Status() const {
  absl::MutexLock l(&mu_);
  if (terminating_since_ != absl::InfiniteFuture()) {
    return RenderTerminating(status_, terminating_since_);
  }
  return status_;
}

void PodWorker::Run() {
  for (;;) {
    std::shared_ptr<const Pod> pod;
    {
      absl::MutexLock l(&mu_);
      if (stop_ || finished_) return;
      wake_ = false;
      pod = desired_;
    }
    absl::Time next = absl::Now() + options_.sync_period;
    if (pod) {
      SyncPod(*pod);
      next = next_sync_;
    } else {
      Terminate();
    }
    absl::MutexLock l(&mu_);
    if (finished_) return;
    auto wake = [](PodWorker* w)
                    ABSL_EXCLUSIVE_LOCKS_REQUIRED(w->mu_) { return w->wake_ || w->stop_; };
    mu_.AwaitWithDeadline(absl::Condition(+wake, this), next);
  }
}

void PodWorker::LogOnce(const std::string& topic, const std::string& what) {
  std::string& last = last_logged_[topic];
  if (what == last) return;
  last = what;
  spdlog::warn("pod {}: {}", key_, what);
}

// ---------------------------------------------------------------- observe

absl::StatusOr<ObservedPod> PodWorker::Observe() {
  ObservedPod out;
  rt::PodSandboxFilter sf;
  for (const auto& [k, v] : Selector(namespace_, name_)) (*sf.mutable_label_selector())[k] = v;
  auto sandboxes = cri_->ListPodSandbox(sf);
  if (!sandboxes.ok()) return sandboxes.status();
  for (const rt::PodSandbox& s : sandboxes->items()) {
    ObservedSandbox o;
    o.id = s.id();
    o.ready = s.state() == rt::SANDBOX_READY;
    o.created_at = s.created_at();
    o.attempt = s.metadata().attempt();
    auto label = [&](const char* k) {
      auto it = s.labels().find(k);
      return it == s.labels().end() ? std::string() : it->second;
    };
    o.uid = label(kPodUidLabel);
    if (o.uid.empty()) o.uid = s.metadata().uid();
    o.manifest_hash = label(kManifestHashLabel);
    auto grace = s.annotations().find(kGracePeriodAnnotation);
    if (grace != s.annotations().end()) {
      int64_t g = 0;
      if (absl::SimpleAtoi(grace->second, &g) && g >= 0) o.grace_seconds = g;
    }
    if (o.ready) {
      auto st = cri_->PodSandboxStatus(o.id);
      if (!st.ok()) {
        if (absl::IsNotFound(st.status())) continue;
        return st.status();
      }
      o.ready = st->status().state() == rt::SANDBOX_READY;
      o.ip = st->status().network().ip();
    }
    out.sandboxes.push_back(std::move(o));
  }
  rt::ContainerFilter cf;
  for (const auto& [k, v] : Selector(namespace_, name_)) (*cf.mutable_label_selector())[k] = v;
  auto containers = cri_->ListContainers(cf);
  if (!containers.ok()) return containers.status();
  for (const rt::Container& c : containers->containers()) {
    auto st = cri_->ContainerStatus(c.id());
    if (!st.ok()) {
      if (absl::IsNotFound(st.status())) continue;
      return st.status();
    }
    const rt::ContainerStatus& s = st->status();
    ObservedContainer o;
    o.id = c.id();
    o.sandbox_id = c.pod_sandbox_id();
    o.name = c.metadata().name();
    auto type = c.labels().find(kContainerTypeLabel);
    o.init = type != c.labels().end() && type->second == "init";
    o.attempt = c.metadata().attempt();
    o.state = FromCri(s.state());
    o.exit_code = s.exit_code();
    o.created_at = s.created_at();
    o.started_at = s.started_at();
    o.finished_at = s.finished_at();
    o.reason = s.reason();
    o.message = s.message();
    o.image = s.image().image();
    o.image_ref = s.image_ref();
    out.containers.push_back(std::move(o));
  }
  return out;
}

// ----------------------------------------------------------------- sync

void PodWorker::SyncPod(const Pod& pod) {
  absl::Time now = absl::Now();
  next_sync_ = now + options_.sync_period;
  known_uids_.insert(pod.uid);
  auto observed = Observe();
  if (!observed.ok()) {
    LogOnce("observe", absl::StrCat("observing the pod failed: ", observed.status().message()));
    return;
  }
  ProbeVerdicts verdicts = Verdicts(*observed, pod);
  PodActions actions = ComputePodActions(pod, *observed, verdicts, backoff_, now);
  if (Execute(pod, *observed, actions)) {
    auto again = Observe();
    if (again.ok()) observed = std::move(again);
  }
  bool changed = RunProbes(pod, *observed, &next_sync_);
  verdicts = Verdicts(*observed, pod);

  std::map<std::string, Waiting> waiting = errors_;
  for (const auto& [name, w] : actions.waiting) waiting[name] = w;
  if (sandbox_error_) {
    const ObservedSandbox* current = CurrentSandbox(pod, *observed);
    if (current && current->ready) {
      sandbox_error_.reset();
    } else {
      for (const auto* list : {&pod.init_containers, &pod.containers}) {
        for (const Container& c : *list) waiting.emplace(c.name, *sandbox_error_);
      }
    }
  }
  PodStatusView status = ComputePodStatus(pod, *observed, verdicts, waiting);
  Publish(RenderPod(pod, status, options_.render, clock_, absl::Now()));
  if (actions.requeue_at && *actions.requeue_at < next_sync_) next_sync_ = *actions.requeue_at;
  if (changed) next_sync_ = absl::Now();
  backoff_.GarbageCollect(now);
}

bool PodWorker::Execute(const Pod& pod, const ObservedPod& observed, const PodActions& a) {
  if (a.Empty()) return false;
  absl::Time now = absl::Now();
  if (!a.containers_to_kill.empty()) {
    for (const ContainerKill& k : a.containers_to_kill) {
      spdlog::info("pod {}: killing container {} ({}): {}", key_, k.name, k.id.substr(0, 13),
                   k.reason);
    }
    KillContainers(a.containers_to_kill, pod.termination_grace_period_seconds);
  }
  for (const std::string& id : a.sandboxes_to_kill) {
    for (const ObservedSandbox& s : observed.sandboxes) {
      if (s.id != id) continue;
      spdlog::info("pod {}: removing sandbox {} (uid {}, attempt {}{})", key_, id.substr(0, 13),
                   s.uid, s.attempt, s.ready ? "" : ", not ready");
      KillSandbox(s, observed);
      if (s.uid != pod.uid) CleanupPodFiles(s.uid);
    }
  }
  for (const std::string& id : a.containers_to_remove) {
    auto s = cri_->RemoveContainer(id);
    if (!s.ok() && !absl::IsNotFound(s)) LogOnce("remove", std::string(s.message()));
  }

  std::string sandbox_id;
  uint32_t attempt = 0;
  if (a.create_sandbox) {
    std::string key = BackoffKey(pod, kSandboxBackoff);
    if (backoff_.IsInBackOffSince(key, sandbox_failed_, now)) return true;
    auto fail = [&](absl::string_view reason, const absl::Status& s) {
      backoff_.Next(key, now);
      sandbox_failed_ = now;
      sandbox_error_ = Waiting{std::string(reason), std::string(s.message())};
      LogOnce("sandbox", std::string(s.message()));
    };
    if (auto s = PrepareVolumes(pod); !s.ok()) {
      fail("CreateContainerConfigError", s);
      return true;
    }
    std::error_code ec;
    fs::create_directories(PodLogDir(pod, options_.node), ec);
    rt::PodSandboxConfig config = MakeSandboxConfig(pod, a.sandbox_attempt, options_.node);
    auto id = cri_->RunPodSandbox(config, kSandboxTimeout);
    if (!id.ok()) {
      fail("CreatePodSandboxError", id.status());
      return true;
    }
    backoff_.Reset(key);
    sandbox_error_.reset();
    sandbox_id = *id;
    attempt = a.sandbox_attempt;
    spdlog::info("pod {}: sandbox {} started (uid {}, attempt {})", key_, sandbox_id.substr(0, 13),
                 pod.uid, attempt);
  } else {
    const ObservedSandbox* current = CurrentSandbox(pod, observed);
    if (!current) return true;
    sandbox_id = current->id;
    attempt = current->attempt;
  }
  if (a.stop_sandbox) {
    spdlog::info("pod {}: no container will run again; stopping sandbox {}", key_,
                 sandbox_id.substr(0, 13));
    auto s = cri_->StopPodSandbox(sandbox_id, kSandboxTimeout);
    if (!s.ok() && !absl::IsNotFound(s)) LogOnce("sandbox", std::string(s.message()));
    return true;
  }
  rt::PodSandboxConfig config = MakeSandboxConfig(pod, attempt, options_.node);
  for (const ContainerStart& start : a.containers_to_start) {
    StartContainer(pod, start, sandbox_id, config, observed);
  }
  return true;
}

void PodWorker::KillContainers(const std::vector<ContainerKill>& kills, int64_t grace_seconds) {
  // In parallel, as the kubelet does: each gets the whole grace period.
  std::vector<std::thread> threads;
  threads.reserve(kills.size());
  for (const ContainerKill& k : kills) {
    threads.emplace_back([this, id = k.id, grace_seconds] {
      auto s = cri_->StopContainer(id, grace_seconds);
      if (!s.ok() && !absl::IsNotFound(s))
        spdlog::warn("pod {}: {}", key_, std::string(s.message()));
    });
  }
  for (std::thread& t : threads) t.join();
}

void PodWorker::KillSandbox(const ObservedSandbox& sandbox, const ObservedPod& observed) {
  std::vector<ContainerKill> kills;
  std::vector<std::string> all;
  for (const ObservedContainer& c : observed.containers) {
    if (c.sandbox_id != sandbox.id) continue;
    all.push_back(c.id);
    if (c.state == ContainerState::kRunning || c.state == ContainerState::kUnknown) {
      kills.push_back({c.id, c.name, "pod sandbox removed"});
    }
  }
  KillContainers(kills, sandbox.grace_seconds);
  auto s = cri_->StopPodSandbox(sandbox.id, kSandboxTimeout);
  if (!s.ok() && !absl::IsNotFound(s)) spdlog::warn("pod {}: {}", key_, std::string(s.message()));
  for (const std::string& id : all) {
    s = cri_->RemoveContainer(id);
    if (!s.ok() && !absl::IsNotFound(s)) spdlog::warn("pod {}: {}", key_, std::string(s.message()));
  }
  s = cri_->RemovePodSandbox(sandbox.id, kSandboxTimeout);
  if (!s.ok() && !absl::IsNotFound(s)) spdlog::warn("pod {}: {}", key_, std::string(s.message()));
}

absl::StatusOr<ImageInfo> PodWorker::EnsureImage(const Container& c,
                                                 const rt::PodSandboxConfig& sandbox_config,
                                                 std::string* waiting_reason) {
  absl::Time now = absl::Now();
  std::string pull_key = absl::StrCat("pull/", c.image);
  auto failed = pull_failed_.find(c.image);
  if (failed != pull_failed_.end() && backoff_.IsInBackOffSince(pull_key, failed->second, now)) {
    *waiting_reason = "ImagePullBackOff";
    return absl::UnavailableError(absl::StrCat("Back-off pulling image \"", c.image, "\""));
  }
  auto info = [](const rt::Image& image) {
    ImageInfo out;
    out.id = image.id();
    if (image.has_uid()) out.uid = image.uid().value();
    out.username = image.username();
    return out;
  };
  if (c.pull_policy != PullPolicy::kAlways) {
    auto st = cri_->ImageStatus(c.image);
    if (!st.ok()) {
      *waiting_reason = "ErrImageInspect";
      return st.status();
    }
    if (st->has_image() && !st->image().id().empty()) return info(st->image());
    if (c.pull_policy == PullPolicy::kNever) {
      *waiting_reason = "ErrImageNeverPull";
      return absl::FailedPreconditionError(absl::StrCat(
          "Container image \"", c.image, "\" is not present with pull policy of Never"));
    }
  }
  spdlog::info("pod {}: pulling image {}", key_, c.image);
  auto ref = cri_->PullImage(c.image, sandbox_config);
  if (!ref.ok()) {
    backoff_.Next(pull_key, now);
    pull_failed_[c.image] = now;
    *waiting_reason = "ErrImagePull";
    return ref.status();
  }
  pull_failed_.erase(c.image);
  backoff_.Reset(pull_key);
  auto st = cri_->ImageStatus(*ref);
  if (st.ok() && st->has_image() && !st->image().id().empty()) return info(st->image());
  ImageInfo out;
  out.id = *ref;
  return out;
}

void PodWorker::StartContainer(const Pod& pod, const ContainerStart& start,
                               const std::string& sandbox_id,
                               const rt::PodSandboxConfig& sandbox_config,
                               const ObservedPod& observed) {
  const Container& c = start.init ? pod.init_containers[start.index] : pod.containers[start.index];
  std::string reason;
  auto image = EnsureImage(c, sandbox_config, &reason);
  if (!image.ok()) {
    errors_[c.name] = {reason, std::string(image.status().message())};
    if (reason != "ImagePullBackOff") LogOnce(c.name, std::string(image.status().message()));
    return;
  }
  std::string key = BackoffKey(pod, c.name);
  // Attempts count on across sandboxes of this pod (not of an older
  // version of it, which had another uid).
  std::set<std::string> mine;
  for (const ObservedSandbox& s : observed.sandboxes) {
    if (s.uid == pod.uid) mine.insert(s.id);
  }
  uint32_t attempt = 0;
  for (const ObservedContainer& o : observed.containers) {
    if (o.name == c.name && mine.count(o.sandbox_id)) attempt = std::max(attempt, o.attempt + 1);
  }
  if (auto it = last_attempt_.find(key); it != last_attempt_.end()) {
    attempt = std::max(attempt, it->second + 1);
  }
  auto config = MakeContainerConfig(pod, c, start.init, attempt, *image, options_.node);
  if (!config.ok()) {
    errors_[c.name] = {"CreateContainerConfigError", std::string(config.status().message())};
    LogOnce(c.name, absl::StrCat(c.name, ": ", config.status().message()));
    return;
  }
  if (start.restart) backoff_.Next(key, start.last_exit);
  std::error_code ec;
  fs::create_directories(absl::StrCat(PodLogDir(pod, options_.node), "/", c.name), ec);
  auto id = cri_->CreateContainer(sandbox_id, *config, sandbox_config);
  if (!id.ok()) {
    errors_[c.name] = {"CreateContainerError", std::string(id.status().message())};
    LogOnce(c.name, std::string(id.status().message()));
    return;
  }
  last_attempt_[key] = attempt;
  auto s = cri_->StartContainer(*id);
  if (!s.ok()) {
    errors_[c.name] = {"RunContainerError", std::string(s.message())};
    LogOnce(c.name, std::string(s.message()));
    return;
  }
  errors_.erase(c.name);
  spdlog::info("pod {}: started {}container {} ({}, restart count {})", key_,
               start.init ? "init " : "", c.name, id->substr(0, 13), attempt);
}

// --------------------------------------------------------------- terminate

void PodWorker::Terminate() {
  auto observed = Observe();
  if (!observed.ok()) {
    LogOnce("observe",
            absl::StrCat("observing the pod for removal failed: ", observed.status().message()));
    return;
  }
  std::set<std::string> sandbox_ids;
  for (const ObservedSandbox& s : observed->sandboxes) {
    spdlog::info("pod {}: removing sandbox {} (grace period {}s)", key_, s.id.substr(0, 13),
                 s.grace_seconds);
    KillSandbox(s, *observed);
    known_uids_.insert(s.uid);
    sandbox_ids.insert(s.id);
  }
  std::vector<ContainerKill> orphans;
  for (const ObservedContainer& c : observed->containers) {
    if (sandbox_ids.count(c.sandbox_id)) continue;
    if (c.state == ContainerState::kRunning) orphans.push_back({c.id, c.name, "pod removed"});
  }
  KillContainers(orphans, 0);
  for (const ObservedContainer& c : observed->containers) {
    if (!sandbox_ids.count(c.sandbox_id)) (void)cri_->RemoveContainer(c.id);
  }
  auto after = Observe();
  if (!after.ok() || !after->sandboxes.empty() || !after->containers.empty()) {
    LogOnce("remove", "pod removal incomplete; retrying");
    return;
  }
  for (const std::string& uid : known_uids_) CleanupPodFiles(uid);
  if (!options_.status_dir.empty()) {
    std::error_code ec;
    fs::remove(absl::StrCat(options_.status_dir, "/", namespace_, "_", name_, ".json"), ec);
  }
  spdlog::info("pod {}: removed", key_);
  absl::MutexLock l(&mu_);
  finished_ = true;
}

void PodWorker::Publish(nlohmann::json status) {
  std::string content = status.dump(2) + "\n";
  {
    absl::MutexLock l(&mu_);
    status_ = std::move(status);
  }
  if (options_.status_dir.empty() || content == last_status_file_content_) return;
  std::string path = absl::StrCat(options_.status_dir, "/", namespace_, "_", name_, ".json");
  auto s = runtime::WriteFileAtomic(path, content, 0644);
  if (!s.ok()) {
    LogOnce("status", std::string(s.message()));
    return;
  }
  last_status_file_content_ = std::move(content);
}

}  // namespace podshim::kubelet
