// Opening the runtime, the stores' hooks, op locks and the hand-over of
// pods made for clients that left (pod_runtime.h).
#include "agent/pod_runtime.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agent/cri_convert.h"
#include "agent/logging.h"
#include "runtime/files.h"

namespace podshim::agent {

PodRuntime::PodRuntime(PodRuntimeOptions options, Mechanisms mechanisms, EventBus* events)
    : options_(std::move(options)),
      network_(std::move(mechanisms.network)),
      images_(std::move(mechanisms.images)),
      events_(events),
      records_dir_(options_.state_dir + "/records"),
      pods_(std::make_unique<DirRecordFiles>(records_dir_ + "/pods"), {SandboxToJson, {}},
            "pod sandbox"),
      containers_(std::make_unique<DirRecordFiles>(records_dir_ + "/containers"),
                  {ContainerToJson,
                   [this](const ContainerRecord* before, const ContainerRecord* after) {
                     PublishContainerChange(before, after);
                   }},
                  "container"),
      machine_(std::move(mechanisms.machine)),
      cgroups_(&machine_->cgroups()),
      host_security_{machine_->AppArmorEnabled()} {}

PodRuntime::~PodRuntime() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    unclaimed_changed_.SignalAll();
  }
  if (reaper_.joinable()) reaper_.join();
  // Its exit watcher calls back into the stores: it stops first.
  machine_.reset();
}

absl::StatusOr<std::unique_ptr<PodRuntime>> PodRuntime::Open(PodRuntimeOptions options,
                                                             image::ImageManager* images,
                                                             EventBus* events) {
  auto machine = OpenRealMachine({.cgroup_root = options.cgroup_root,
                                  .monitor_binary = options.monitor_binary,
                                  .monitor_pool_size = options.monitor_pool_size});
  if (!machine.ok()) return machine.status();
  RealMachine* real = machine->get();
  Mechanisms mechanisms;
  mechanisms.machine = std::move(*machine);
  if (options.network != nullptr) {
    mechanisms.network = std::make_unique<CniNetworks>(options.network);
  }
  mechanisms.images = std::make_unique<ManagedImages>(images);
  auto rt = OpenWith(std::move(options), std::move(mechanisms), events);
  if (!rt.ok()) return rt.status();
  // After recovery: the pool's fresh monitors are not a restart's leftovers.
  real->StartMonitorPool();
  return rt;
}

absl::StatusOr<std::unique_ptr<PodRuntime>> PodRuntime::OpenWith(PodRuntimeOptions options,
                                                                 Mechanisms mechanisms,
                                                                 EventBus* events) {
  std::unique_ptr<PodRuntime> rt(new PodRuntime(std::move(options), std::move(mechanisms), events));
  for (const auto& dir : {rt->records_dir_ + "/pods", rt->records_dir_ + "/containers",
                          rt->options_.state_dir + "/pods", rt->options_.state_dir + "/containers",
                          rt->options_.root_dir + "/containers"}) {
    if (auto s = runtime::MakeDirs(dir, 0711); !s.ok()) return s;
  }
  if (auto s = rt->Load(); !s.ok()) return s;
  rt->reaper_ = std::thread([p = rt.get()] { p->ReapLoop(); });
  return rt;
}

void PodRuntime::PublishContainerChange(const ContainerRecord* before,
                                        const ContainerRecord* after) {
  cri::ContainerEventType type;
  if (before == nullptr) {
    type = cri::CONTAINER_CREATED_EVENT;
  } else if (after == nullptr) {
    type = cri::CONTAINER_DELETED_EVENT;
  } else if (after->state == cri::CONTAINER_RUNNING && before->state != cri::CONTAINER_RUNNING) {
    type = cri::CONTAINER_STARTED_EVENT;
  } else if (after->state == cri::CONTAINER_EXITED && before->state != cri::CONTAINER_EXITED) {
    type = cri::CONTAINER_STOPPED_EVENT;
  } else {
    return;  // resources, or a record's bookkeeping: no event
  }
  if (events_ == nullptr || events_->subscribers() == 0) return;
  const ContainerRecord& c = after != nullptr ? *after : *before;
  cri::ContainerEventResponse ev;
  ev.set_container_id(c.id);
  ev.set_container_event_type(type);
  ev.set_created_at(absl::ToUnixNanos(absl::Now()));
  if (auto pod = pods_.Get(c.pod_id); pod.ok()) {
    FillPodStatus(*pod, ev.mutable_pod_sandbox_status());
  }
  for (const auto& other : ContainersOf(c.pod_id)) {
    FillContainerStatus(other, ev.add_containers_statuses());
  }
  if (after == nullptr) FillContainerStatus(c, ev.add_containers_statuses());
  events_->Publish(ev);
}

absl::Status PodRuntime::NetworkStatus() const {
  if (network_ == nullptr) {
    return absl::FailedPreconditionError("pod networking is turned off; pods have loopback only");
  }
  return network_->Ready();
}

void PodRuntime::SetPodCidr(const std::string& cidr) {
  if (network_ != nullptr) network_->SetPodCidr(cidr);
}

void PodRuntime::DropPodLockIfGone(const std::string& pod_id) {
  if (pods_.Contains(pod_id)) return;
  absl::MutexLock lock(&mu_);
  pod_locks_.erase(pod_id);
}

std::shared_ptr<absl::Mutex> PodRuntime::PodLock(const std::string& pod_id) {
  absl::MutexLock lock(&mu_);
  auto& m = pod_locks_[pod_id];
  if (!m) m = std::make_shared<absl::Mutex>();
  return m;
}

// The op lock is handed to `guard`, which releases it: an ownership move the
// thread-safety analysis cannot follow.
absl::StatusOr<ContainerRecord> PodRuntime::LockContainer(
    absl::string_view id_or_prefix, OpGuard* guard) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  auto id = containers_.Resolve(id_or_prefix, "container_id");
  if (!id.ok()) return id.status();
  auto c = containers_.Get(*id);
  if (!c.ok()) return c.status();
  guard->mu = PodLock(c->pod_id);
  guard->mu->Lock();
  return containers_.Get(*id);  // as it is now that no other operation changes it
}

std::vector<ContainerRecord> PodRuntime::ContainersOf(const std::string& pod_id) const {
  return containers_.List([&](const ContainerRecord& c) { return c.pod_id == pod_id; });
}

absl::Status PodRuntime::ReservePodName(const std::string& key, const ClientCall& call,
                                        std::string* id, std::shared_ptr<Creation>* creation,
                                        bool* handed, cri::RunPodSandboxResponse* resp) {
  *handed = false;
  absl::MutexLock lock(&mu_);
  for (;;) {
    const std::string holder = pod_names_.Holder(key);
    if (holder.empty()) break;
    if (auto c = creations_.find(key); c != creations_.end()) {
      // An earlier call is making this very pod: wait for it, for as long
      // as our own client waits.
      const std::shared_ptr<Creation> earlier = c->second;
      while (!earlier->done) {
        const absl::Time now = absl::Now();
        if (call.Gone(now)) {
          const std::string what =
              absl::StrCat("pod sandbox `", key, "` is still being created by an earlier call (",
                           holder, "); a retry gets it");
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
        *handed = true;
        return absl::OkStatus();
      }
      continue;  // it failed and was undone: make the pod afresh
    }
    if (auto u = unclaimed_.find(holder); u != unclaimed_.end()) {
      unclaimed_.erase(u);
      Log("runtime")->info("pod {} ({}), made for a client that gave up, handed to its retry",
                           holder, key);
      resp->set_pod_sandbox_id(holder);
      *handed = true;
      return absl::OkStatus();
    }
    return absl::AlreadyExistsError(
        absl::StrCat("pod sandbox name `", key, "` is reserved by ", holder));
  }
  *id = NewId();
  if (auto s = pod_names_.Reserve(key, *id, "pod sandbox name"); !s.ok()) return s;
  *creation = std::make_shared<Creation>();
  creations_[key] = *creation;
  return absl::OkStatus();
}

void PodRuntime::FinishCreation(const std::string& key, const std::shared_ptr<Creation>& creation,
                                const std::string& id, const absl::Status& result,
                                bool client_gone) {
  absl::MutexLock lock(&mu_);
  if (!result.ok()) pod_names_.Release(key, id);
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
  auto pod = pods_.Get(id);
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
    pod = pods_.Get(id);
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

}  // namespace podshim::agent
