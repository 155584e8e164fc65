#include "kubelet/status.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "kubelet/cri_config.h"

namespace podshim::kubelet {
namespace {

using nlohmann::json;

std::string FormatUtc(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

json StateJson(const ContainerStateView& s, const RenderContext& ctx) {
  switch (s.kind) {
    case ContainerStateView::kRunning:
      return {{"running", {{"startedAt", Rfc3339(s.started_at)}}}};
    case ContainerStateView::kTerminated: {
      json t = {{"exitCode", s.exit_code},
                {"reason", s.reason},
                {"startedAt", Rfc3339(s.started_at)},
                {"finishedAt", Rfc3339(s.finished_at)},
                {"containerID", absl::StrCat(ctx.runtime_name, "://", s.container_id)}};
      if (!s.message.empty()) t["message"] = s.message;
      return {{"terminated", std::move(t)}};
    }
    case ContainerStateView::kWaiting:
      break;
  }
  json w = {{"reason", s.reason}};
  if (!s.message.empty()) w["message"] = s.message;
  return {{"waiting", std::move(w)}};
}

json ContainerJson(const ContainerStatusView& c, const RenderContext& ctx) {
  json j = {{"name", c.name},
            {"image", c.image},
            {"imageID", c.image_id},
            {"ready", c.ready},
            {"started", c.started},
            {"restartCount", c.restart_count},
            {"state", StateJson(c.state, ctx)},
            {"lastState", c.last_state ? StateJson(*c.last_state, ctx) : json::object()}};
  if (!c.container_id.empty()) {
    j["containerID"] = absl::StrCat(ctx.runtime_name, "://", c.container_id);
  }
  return j;
}

json SpecJson(const Pod& pod, const RenderContext& ctx) {
  auto containers = [](const std::vector<Container>& list) {
    json out = json::array();
    for (const Container& c : list) {
      json j = {{"name", c.name}, {"image", c.image}};
      json ports = json::array();
      for (const ContainerPort& p : c.ports) {
        json pj = {{"containerPort", p.container_port}};
        if (p.host_port) pj["hostPort"] = p.host_port;
        if (!p.name.empty()) pj["name"] = p.name;
        ports.push_back(std::move(pj));
      }
      if (!ports.empty()) j["ports"] = std::move(ports);
      out.push_back(std::move(j));
    }
    return out;
  };
  json spec = {{"nodeName", ctx.node_name},
               {"restartPolicy", std::string(RestartPolicyName(pod.restart_policy))},
               {"terminationGracePeriodSeconds", pod.termination_grace_period_seconds},
               {"hostNetwork", pod.host_network},
               {"containers", containers(pod.containers)}};
  if (!pod.init_containers.empty()) spec["initContainers"] = containers(pod.init_containers);
  return spec;
}

}  // namespace

std::string Rfc3339(int64_t unix_nanos) {
  if (unix_nanos <= 0) return "";
  return FormatUtc(absl::FromUnixNanos(unix_nanos));
}

absl::Time ConditionClock::Observe(const std::string& type, bool status, absl::Time now) {
  auto it = last_.find(type);
  if (it == last_.end() || it->second.first != status) {
    last_[type] = {status, now};
    return now;
  }
  return it->second.second;
}

json RenderPod(const Pod& pod, const PodStatusView& st, const RenderContext& ctx,
               ConditionClock& clock, absl::Time now) {
  json annotations = json::object();
  for (const auto& [k, v] : pod.annotations) annotations[k] = v;
  annotations["kubernetes.io/config.source"] = "file";
  annotations["kubernetes.io/config.hash"] = pod.hash;
  annotations[kSourceAnnotation] = pod.source;
  json labels = json::object();
  for (const auto& [k, v] : pod.labels) labels[k] = v;

  json conditions = json::array();
  auto cond = [&](const char* type, bool value) {
    conditions.push_back(json{{"type", type},
                              {"status", value ? "True" : "False"},
                              {"lastTransitionTime", FormatUtc(clock.Observe(type, value, now))}});
  };
  cond("PodReadyToStartContainers", st.sandbox_ready);
  cond("Initialized", st.initialized);
  cond("ContainersReady", st.containers_ready);
  cond("Ready", st.containers_ready);
  cond("PodScheduled", true);

  json status = {{"phase", st.phase},
                 {"conditions", std::move(conditions)},
                 {"qosClass", std::string(QosClassName(PodQos(pod)))}};
  if (!st.pod_ip.empty()) {
    status["podIP"] = st.pod_ip;
    status["podIPs"] = json::array({{{"ip", st.pod_ip}}});
  }
  if (st.start_time) status["startTime"] = Rfc3339(st.start_time);
  json init = json::array();
  for (const ContainerStatusView& c : st.init_containers) init.push_back(ContainerJson(c, ctx));
  if (!init.empty()) status["initContainerStatuses"] = std::move(init);
  json apps = json::array();
  for (const ContainerStatusView& c : st.containers) apps.push_back(ContainerJson(c, ctx));
  status["containerStatuses"] = std::move(apps);

  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata",
           {{"name", pod.name},
            {"namespace", pod.namespace_name},
            {"uid", pod.uid},
            {"labels", std::move(labels)},
            {"annotations", std::move(annotations)}}},
          {"spec", SpecJson(pod, ctx)},
          {"status", std::move(status)}};
}

json RenderTerminating(json pod, absl::Time since) {
  if (!pod.is_object()) pod = json::object();
  pod["metadata"]["deletionTimestamp"] = FormatUtc(since);
  return pod;
}

}  // namespace podshim::kubelet
