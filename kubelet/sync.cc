#include "kubelet/sync.h"

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

namespace podshim::kubelet {
namespace {

bool ShouldRestart(RestartPolicy policy, int32_t exit_code) {
  switch (policy) {
    case RestartPolicy::kAlways:
      return true;
    case RestartPolicy::kOnFailure:
      return exit_code != 0;
    case RestartPolicy::kNever:
      return false;
  }
  return false;
}

// The instances of each container name in one sandbox, newest first.
class Instances {
 public:
  Instances(const ObservedPod& observed, const std::string& sandbox_id) {
    for (const ObservedContainer& c : observed.containers) {
      if (c.sandbox_id == sandbox_id) by_name_[c.name].push_back(&c);
    }
    for (auto& [name, list] : by_name_) {
      std::sort(list.begin(), list.end(),
                [](const ObservedContainer* a, const ObservedContainer* b) {
                  if (a->attempt != b->attempt) return a->attempt > b->attempt;
                  return a->created_at > b->created_at;
                });
    }
  }

  const ObservedContainer* Latest(const std::string& name) const {
    auto it = by_name_.find(name);
    return it == by_name_.end() ? nullptr : it->second.front();
  }

  // The newest exited instance other than the latest.
  const ObservedContainer* Previous(const std::string& name) const {
    auto it = by_name_.find(name);
    if (it == by_name_.end()) return nullptr;
    for (size_t i = 1; i < it->second.size(); ++i) {
      if (it->second[i]->state == ContainerState::kExited) return it->second[i];
    }
    return nullptr;
  }

  bool Any(const std::vector<Container>& specs) const {
    for (const Container& c : specs) {
      if (by_name_.count(c.name)) return true;
    }
    return false;
  }

  const std::map<std::string, std::vector<const ObservedContainer*>>& all() const {
    return by_name_;
  }

 private:
  std::map<std::string, std::vector<const ObservedContainer*>> by_name_;
};

// Whether init is over: every init container's latest instance succeeded, or
// an app container has been started already (init ran before).
bool InitDone(const Pod& pod, const Instances& inst) {
  if (inst.Any(pod.containers)) return true;
  for (const Container& c : pod.init_containers) {
    const ObservedContainer* l = inst.Latest(c.name);
    if (!l || l->state != ContainerState::kExited || l->exit_code != 0) return false;
  }
  return true;
}

// Whether a pod with this sandbox's containers has finished for good.
bool PodDone(const Pod& pod, const Instances& inst) {
  switch (pod.restart_policy) {
    case RestartPolicy::kAlways:
      return false;
    case RestartPolicy::kNever:
      return !inst.all().empty();
    case RestartPolicy::kOnFailure:
      for (const Container& c : pod.containers) {
        const ObservedContainer* l = inst.Latest(c.name);
        if (!l || l->state != ContainerState::kExited || l->exit_code != 0) return false;
      }
      return true;
  }
  return false;
}

void StartFirst(const Pod& pod, PodActions& a) {
  if (!pod.init_containers.empty()) {
    a.containers_to_start.push_back({true, 0, false, absl::InfinitePast()});
    return;
  }
  for (size_t i = 0; i < pod.containers.size(); ++i) {
    a.containers_to_start.push_back({false, i, false, absl::InfinitePast()});
  }
}

}  // namespace

std::string BackoffKey(const Pod& pod, absl::string_view container) {
  return absl::StrCat(pod.uid, "/", container);
}

const ObservedSandbox* CurrentSandbox(const Pod& pod, const ObservedPod& observed) {
  const ObservedSandbox* best = nullptr;
  for (const ObservedSandbox& s : observed.sandboxes) {
    if (s.uid != pod.uid || s.manifest_hash != pod.hash) continue;
    if (!best || s.created_at > best->created_at ||
        (s.created_at == best->created_at && s.attempt > best->attempt)) {
      best = &s;
    }
  }
  return best;
}

PodActions ComputePodActions(const Pod& pod, const ObservedPod& observed,
                             const ProbeVerdicts& probes, const Backoff& backoff, absl::Time now) {
  PodActions a;
  const ObservedSandbox* current = CurrentSandbox(pod, observed);
  std::set<std::string> sandbox_ids;
  for (const ObservedSandbox& s : observed.sandboxes) {
    sandbox_ids.insert(s.id);
    if (&s != current) a.sandboxes_to_kill.push_back(s.id);
  }
  // Containers whose sandbox is gone: stop and remove them.
  for (const ObservedContainer& c : observed.containers) {
    if (sandbox_ids.count(c.sandbox_id)) continue;
    if (c.state == ContainerState::kRunning || c.state == ContainerState::kUnknown) {
      a.containers_to_kill.push_back({c.id, c.name, "its sandbox is gone"});
    }
    a.containers_to_remove.push_back(c.id);
  }

  if (!current) {
    a.create_sandbox = true;
    StartFirst(pod, a);
    return a;
  }
  Instances inst(observed, current->id);
  if (!current->ready) {
    if (PodDone(pod, inst)) return a;  // finished; its sandbox was stopped
    a.sandboxes_to_kill.push_back(current->id);
    a.create_sandbox = true;
    a.sandbox_attempt = current->attempt + 1;
    StartFirst(pod, a);
    return a;
  }

  // Of each name, the latest instance stays, and the newest exited one
  // before it (its last termination state); older dead ones go.
  for (const auto& [name, list] : inst.all()) {
    const ObservedContainer* keep = inst.Previous(name);
    for (size_t i = 1; i < list.size(); ++i) {
      const ObservedContainer* c = list[i];
      if (c == keep) continue;
      if (c->state == ContainerState::kRunning || c->state == ContainerState::kUnknown) {
        a.containers_to_kill.push_back({c->id, c->name, "an older instance is still running"});
      }
      a.containers_to_remove.push_back(c->id);
    }
  }

  // Restarts an instance that ran, unless its back-off is still running.
  auto restart = [&](bool init, size_t index, const ObservedContainer& last) {
    int64_t at = last.finished_at > 0 ? last.finished_at : last.created_at;
    absl::Time exit = absl::FromUnixNanos(at);
    std::string key = BackoffKey(pod, last.name);
    if (backoff.IsInBackOffSince(key, exit, now)) {
      absl::Duration d = backoff.Get(key);
      a.waiting[last.name] = {
          "CrashLoopBackOff",
          absl::StrCat("back-off ", absl::FormatDuration(d), " restarting failed container=",
                       last.name, " pod=", pod.name, "_", pod.namespace_name, "(", pod.uid, ")")};
      absl::Time until = exit + d;
      if (!a.requeue_at || until < *a.requeue_at) a.requeue_at = until;
      return;
    }
    a.containers_to_start.push_back({init, index, true, exit});
  };
  // A created-but-never-started or unknown instance is cleared away first.
  auto clear = [&](const ObservedContainer& c) {
    if (c.state == ContainerState::kUnknown) {
      a.containers_to_kill.push_back({c.id, c.name, "its state is unknown"});
    }
    a.containers_to_remove.push_back(c.id);
  };

  if (!InitDone(pod, inst)) {
    for (size_t i = 0; i < pod.init_containers.size(); ++i) {
      const Container& spec = pod.init_containers[i];
      const ObservedContainer* l = inst.Latest(spec.name);
      if (!l) {
        a.containers_to_start.push_back({true, i, false, absl::InfinitePast()});
        return a;
      }
      switch (l->state) {
        case ContainerState::kRunning:
          return a;  // wait for it
        case ContainerState::kExited:
          if (l->exit_code == 0) continue;
          if (pod.restart_policy == RestartPolicy::kNever) {
            a.stop_sandbox = true;  // the pod failed
            return a;
          }
          restart(true, i, *l);
          return a;
        case ContainerState::kCreated:
        case ContainerState::kUnknown:
          clear(*l);
          if (l->state == ContainerState::kCreated) restart(true, i, *l);
          return a;
      }
    }
  }

  bool all_done = true;
  for (size_t i = 0; i < pod.containers.size(); ++i) {
    const Container& spec = pod.containers[i];
    const ObservedContainer* l = inst.Latest(spec.name);
    if (!l) {
      a.containers_to_start.push_back({false, i, false, absl::InfinitePast()});
      all_done = false;
      continue;
    }
    switch (l->state) {
      case ContainerState::kRunning: {
        all_done = false;
        auto v = probes.find(l->id);
        if (v != probes.end() && (v->second.liveness_failed || v->second.startup_failed)) {
          a.containers_to_kill.push_back(
              {l->id, l->name,
               v->second.startup_failed ? "startup probe failed" : "liveness probe failed"});
        }
        break;
      }
      case ContainerState::kExited:
        if (ShouldRestart(pod.restart_policy, l->exit_code)) {
          all_done = false;
          restart(false, i, *l);
        }
        break;
      case ContainerState::kCreated:
      case ContainerState::kUnknown:
        all_done = false;
        clear(*l);
        if (l->state == ContainerState::kCreated) restart(false, i, *l);
        break;
    }
  }
  if (all_done) a.stop_sandbox = true;
  return a;
}

namespace {

ContainerStateView Terminated(const ObservedContainer& c) {
  ContainerStateView v;
  v.kind = ContainerStateView::kTerminated;
  v.exit_code = c.exit_code;
  v.reason = !c.reason.empty() ? c.reason : c.exit_code == 0 ? "Completed" : "Error";
  v.message = c.message;
  v.started_at = c.started_at;
  v.finished_at = c.finished_at;
  v.container_id = c.id;
  return v;
}

ContainerStateView WaitingState(std::string reason, std::string message = "") {
  ContainerStateView v;
  v.kind = ContainerStateView::kWaiting;
  v.reason = std::move(reason);
  v.message = std::move(message);
  return v;
}

ContainerStatusView StatusOf(const Container& spec, const Instances* inst,
                             const ProbeVerdicts& probes,
                             const std::map<std::string, Waiting>& waiting,
                             absl::string_view default_waiting) {
  ContainerStatusView s;
  s.name = spec.name;
  s.image = spec.image;
  const ObservedContainer* l = inst ? inst->Latest(spec.name) : nullptr;
  const ObservedContainer* prev = inst ? inst->Previous(spec.name) : nullptr;
  auto w = waiting.find(spec.name);
  if (!l) {
    s.state = w != waiting.end() ? WaitingState(w->second.reason, w->second.message)
                                 : WaitingState(std::string(default_waiting));
    return s;
  }
  s.container_id = l->id;
  s.image_id = l->image_ref;
  s.restart_count = l->attempt;
  switch (l->state) {
    case ContainerState::kRunning: {
      s.state.kind = ContainerStateView::kRunning;
      s.state.started_at = l->started_at;
      s.state.container_id = l->id;
      auto v = probes.find(l->id);
      s.started = v == probes.end() || v->second.started;
      s.ready = s.started && (v == probes.end() || v->second.ready);
      if (prev) s.last_state = Terminated(*prev);
      break;
    }
    case ContainerState::kExited:
      if (w != waiting.end()) {
        s.state = WaitingState(w->second.reason, w->second.message);
        s.last_state = Terminated(*l);
      } else {
        s.state = Terminated(*l);
        if (prev) s.last_state = Terminated(*prev);
      }
      break;
    case ContainerState::kCreated:
      s.state = w != waiting.end() ? WaitingState(w->second.reason, w->second.message)
                                   : WaitingState("ContainerCreating");
      if (prev) s.last_state = Terminated(*prev);
      break;
    case ContainerState::kUnknown:
      s.state = WaitingState("ContainerStatusUnknown", "the runtime does not know its state");
      if (prev) s.last_state = Terminated(*prev);
      break;
  }
  return s;
}

}  // namespace

PodStatusView ComputePodStatus(const Pod& pod, const ObservedPod& observed,
                               const ProbeVerdicts& probes,
                               const std::map<std::string, Waiting>& waiting) {
  PodStatusView st;
  const ObservedSandbox* current = CurrentSandbox(pod, observed);
  absl::optional<Instances> inst;
  if (current) {
    inst.emplace(observed, current->id);
    st.sandbox_ready = current->ready;
    st.pod_ip = current->ip;
    st.start_time = current->created_at;
  }
  const Instances* ip = inst ? &*inst : nullptr;
  st.initialized = ip && InitDone(pod, *ip);
  for (const Container& c : pod.init_containers) {
    st.init_containers.push_back(StatusOf(c, ip, probes, waiting, "PodInitializing"));
  }
  for (const Container& c : pod.containers) {
    st.containers.push_back(
        StatusOf(c, ip, probes, waiting, st.initialized ? "ContainerCreating" : "PodInitializing"));
  }
  st.containers_ready = st.initialized;
  for (const ContainerStatusView& c : st.containers) st.containers_ready &= c.ready;

  // Phase, as the kubelet's getPhase.
  bool init_failed = false;
  for (const ContainerStatusView& c : st.init_containers) {
    const ContainerStateView& last = c.state.kind == ContainerStateView::kTerminated ? c.state
                                     : c.last_state                                  ? *c.last_state
                                                                                     : c.state;
    if (last.kind == ContainerStateView::kTerminated && last.exit_code != 0) init_failed = true;
  }
  if (!st.initialized) {
    st.phase = init_failed && pod.restart_policy == RestartPolicy::kNever ? "Failed" : "Pending";
    return st;
  }
  int running = 0, waiting_count = 0, stopped = 0, succeeded = 0;
  for (const ContainerStatusView& c : st.containers) {
    switch (c.state.kind) {
      case ContainerStateView::kRunning:
        ++running;
        break;
      case ContainerStateView::kTerminated:
        ++stopped;
        if (c.state.exit_code == 0) ++succeeded;
        break;
      case ContainerStateView::kWaiting:
        if (c.last_state) {
          ++stopped;
        } else {
          ++waiting_count;
        }
        break;
    }
  }
  if (waiting_count > 0) {
    st.phase = "Pending";
  } else if (running > 0) {
    st.phase = "Running";
  } else if (stopped > 0) {
    switch (pod.restart_policy) {
      case RestartPolicy::kAlways:
        st.phase = "Running";
        break;
      case RestartPolicy::kOnFailure:
        st.phase = stopped == succeeded ? "Succeeded" : "Running";
        break;
      case RestartPolicy::kNever:
        st.phase = stopped == succeeded ? "Succeeded" : "Failed";
        break;
    }
  }
  return st;
}

}  // namespace podshim::kubelet
