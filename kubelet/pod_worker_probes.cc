// A pod worker's probes: one state per probed running container, running the
// due ones (exec, TCP, HTTP GET) and the verdicts the sync decides on.
#include <algorithm>
#include <iterator>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "kubelet/pod_spec.h"
#include "kubelet/pod_worker.h"
#include "kubelet/probe.h"
#include "kubelet/sync.h"
#include "spdlog/spdlog.h"

namespace podshim::kubelet {
namespace {

std::string Trimmed(const std::string& s, size_t max) {
  std::string out(absl::StripAsciiWhitespace(s));
  if (out.size() > max) out = out.substr(0, max) + "...";
  return out;
}

}  // namespace

// ----------------------------------------------------------------- probes

ProbeVerdicts PodWorker::Verdicts(const ObservedPod& observed, const Pod& pod) {
  // Keep one entry per running app container of the current sandbox that
  // has probes; drop the rest.
  const ObservedSandbox* current = CurrentSandbox(pod, observed);
  std::set<std::string> live;
  for (const ObservedContainer& o : observed.containers) {
    if (!current || o.sandbox_id != current->id || o.init || o.state != ContainerState::kRunning) {
      continue;
    }
    auto spec = std::find_if(pod.containers.begin(), pod.containers.end(),
                             [&](const Container& c) { return c.name == o.name; });
    if (spec == pod.containers.end()) continue;
    if (!spec->liveness_probe && !spec->readiness_probe && !spec->startup_probe) continue;
    live.insert(o.id);
    if (probes_.count(o.id)) continue;
    absl::Time started = absl::FromUnixNanos(o.started_at > 0 ? o.started_at : o.created_at);
    ContainerProbes cp;
    cp.name = o.name;
    if (spec->liveness_probe) cp.liveness.emplace(*spec->liveness_probe, started, true);
    if (spec->readiness_probe) cp.readiness.emplace(*spec->readiness_probe, started, false);
    if (spec->startup_probe) cp.startup.emplace(*spec->startup_probe, started, false);
    probes_.emplace(o.id, std::move(cp));
  }
  for (auto it = probes_.begin(); it != probes_.end();) {
    it = live.count(it->first) ? std::next(it) : probes_.erase(it);
  }
  ProbeVerdicts out;
  for (const auto& [id, cp] : probes_) {
    ProbeVerdict v;
    v.started = !cp.startup || cp.startup->result();
    v.startup_failed = cp.startup && !cp.startup->result() && cp.startup->failed();
    v.liveness_failed = v.started && cp.liveness && cp.liveness->failed();
    v.ready = v.started && (!cp.readiness || cp.readiness->result());
    out[id] = v;
  }
  return out;
}

ProbeResult PodWorker::RunProbe(const Pod& pod, const Container& c, const Probe& probe,
                                const std::string& container_id, const std::string& pod_ip) {
  absl::Duration timeout = absl::Seconds(probe.timeout_seconds);
  if (probe.type == ProbeType::kExec) {
    auto r = cri_->ExecSync(container_id, probe.command, timeout);
    if (!r.ok()) return {false, std::string(r.status().message())};
    if (r->exit_code() != 0) {
      std::string out = Trimmed(r->stderr().empty() ? r->stdout() : r->stderr(), 200);
      return {false,
              absl::StrCat("command exited with ", r->exit_code(), out.empty() ? "" : ": ", out)};
    }
    return {true, ""};
  }
  std::string host = probe.host;
  if (host.empty()) host = pod.host_network || pod_ip.empty() ? "127.0.0.1" : pod_ip;
  int port = probe.port;
  for (const ContainerPort& p : c.ports) {
    if (port == 0 && !probe.port_name.empty() && p.name == probe.port_name) port = p.container_port;
  }
  if (probe.type == ProbeType::kTcpSocket) return TcpProbe(host, port, timeout);
  return HttpGetProbe(host, port, probe.path, probe.http_headers, timeout);
}

bool PodWorker::RunProbes(const Pod& pod, const ObservedPod& observed, absl::Time* next_due) {
  const ObservedSandbox* current = CurrentSandbox(pod, observed);
  std::string ip = current ? current->ip : "";
  bool changed = false;
  for (auto& entry : probes_) {
    const std::string& id = entry.first;
    ContainerProbes& cp = entry.second;
    auto spec = std::find_if(pod.containers.begin(), pod.containers.end(),
                             [&cp](const Container& c) { return c.name == cp.name; });
    if (spec == pod.containers.end()) continue;
    auto run = [&](absl::optional<ProbeState>& state, const Probe& probe, const char* kind) {
      absl::Time now = absl::Now();
      if (now >= state->next_due()) {
        bool before = state->result();
        bool failed_before = state->failed();
        ProbeResult r = RunProbe(pod, *spec, probe, id, ip);
        state->Record(r, absl::Now());
        if (state->result() != before || state->failed() != failed_before) {
          changed = true;
          if (state->failed()) {
            spdlog::info("pod {}: container {}: {} probe failed: {}", key_, cp.name, kind,
                         state->message());
          } else if (state->result()) {
            spdlog::info("pod {}: container {}: {} probe succeeded", key_, cp.name, kind);
          }
        }
      }
      *next_due = std::min(*next_due, state->next_due());
    };
    if (cp.startup && !cp.startup->result()) {
      run(cp.startup, *spec->startup_probe, "startup");
      if (!cp.startup->result()) continue;  // liveness and readiness wait for it
    }
    if (cp.liveness) run(cp.liveness, *spec->liveness_probe, "liveness");
    if (cp.readiness) run(cp.readiness, *spec->readiness_probe, "readiness");
  }
  return changed;
}

}  // namespace podshim::kubelet
