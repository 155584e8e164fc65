#include "kubelet/status.h"

#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "kubelet/pod_spec.h"
#include "kubelet/sync.h"

namespace podshim::kubelet {
namespace {

const absl::Time kT = absl::FromUnixSeconds(1700000000);  // 2023-11-14T22:13:20Z

Pod MakePod() {
  auto parsed = ParseManifest(R"(
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: demo, labels: {app: web}}
spec:
  initContainers: [{name: init, image: "busybox:1"}]
  containers:
  - {name: app, image: "busybox:1", ports: [{containerPort: 80, hostPort: 8080}]}
)",
                              "/m/web.yaml", "node1");
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  return parsed->pods.at(0);
}

TEST(Rfc3339Test, FormatsUtcSeconds) {
  EXPECT_EQ(Rfc3339(absl::ToUnixNanos(kT) + 999), "2023-11-14T22:13:20Z");
  EXPECT_EQ(Rfc3339(0), "");
}

TEST(ConditionClockTest, KeepsTheTimeOfTheLastChange) {
  ConditionClock clock;
  EXPECT_EQ(clock.Observe("Ready", false, kT), kT);
  EXPECT_EQ(clock.Observe("Ready", false, kT + absl::Seconds(5)), kT);
  EXPECT_EQ(clock.Observe("Ready", true, kT + absl::Seconds(9)), kT + absl::Seconds(9));
  EXPECT_EQ(clock.Observe("Other", true, kT + absl::Seconds(10)), kT + absl::Seconds(10));
}

TEST(RenderPodTest, LooksLikeAKubernetesPod) {
  Pod pod = MakePod();
  PodStatusView st;
  st.phase = "Running";
  st.sandbox_ready = st.initialized = st.containers_ready = true;
  st.pod_ip = "10.99.0.7";
  st.start_time = absl::ToUnixNanos(kT);
  ContainerStatusView init;
  init.name = "init";
  init.image = "busybox:1";
  init.container_id = "c0";
  init.state.kind = ContainerStateView::kTerminated;
  init.state.reason = "Completed";
  init.state.container_id = "c0";
  st.init_containers.push_back(init);
  ContainerStatusView app;
  app.name = "app";
  app.image = "busybox:1";
  app.image_id = "sha256:abc";
  app.container_id = "c2";
  app.ready = app.started = true;
  app.restart_count = 1;
  app.state.kind = ContainerStateView::kRunning;
  app.state.started_at = absl::ToUnixNanos(kT + absl::Seconds(3));
  ContainerStateView last;
  last.kind = ContainerStateView::kTerminated;
  last.exit_code = 137;
  last.reason = "Error";
  last.container_id = "c1";
  app.last_state = last;
  st.containers.push_back(app);

  ConditionClock clock;
  RenderContext ctx{"node1", "containerd"};
  nlohmann::json j = RenderPod(pod, st, ctx, clock, kT);
  EXPECT_EQ(j["kind"], "Pod");
  EXPECT_EQ(j["metadata"]["name"], "web");
  EXPECT_EQ(j["metadata"]["namespace"], "demo");
  EXPECT_EQ(j["metadata"]["uid"], pod.uid);
  EXPECT_EQ(j["metadata"]["labels"]["app"], "web");
  EXPECT_EQ(j["metadata"]["annotations"]["kubernetes.io/config.hash"], pod.hash);
  EXPECT_EQ(j["spec"]["nodeName"], "node1");
  EXPECT_EQ(j["spec"]["containers"][0]["ports"][0]["hostPort"], 8080);
  const nlohmann::json& s = j["status"];
  EXPECT_EQ(s["phase"], "Running");
  EXPECT_EQ(s["podIP"], "10.99.0.7");
  EXPECT_EQ(s["podIPs"][0]["ip"], "10.99.0.7");
  EXPECT_EQ(s["startTime"], "2023-11-14T22:13:20Z");
  EXPECT_EQ(s["qosClass"], "BestEffort");
  ASSERT_EQ(s["conditions"].size(), 5u);
  EXPECT_EQ(s["conditions"][3]["type"], "Ready");
  EXPECT_EQ(s["conditions"][3]["status"], "True");
  EXPECT_EQ(s["initContainerStatuses"][0]["state"]["terminated"]["reason"], "Completed");
  const nlohmann::json& c = s["containerStatuses"][0];
  EXPECT_EQ(c["name"], "app");
  EXPECT_EQ(c["containerID"], "containerd://c2");
  EXPECT_EQ(c["imageID"], "sha256:abc");
  EXPECT_EQ(c["restartCount"], 1);
  EXPECT_EQ(c["ready"], true);
  EXPECT_EQ(c["state"]["running"]["startedAt"], "2023-11-14T22:13:23Z");
  EXPECT_EQ(c["lastState"]["terminated"]["exitCode"], 137);
  EXPECT_EQ(c["lastState"]["terminated"]["containerID"], "containerd://c1");

  nlohmann::json gone = RenderTerminating(j, kT + absl::Seconds(60));
  EXPECT_EQ(gone["metadata"]["deletionTimestamp"], "2023-11-14T22:14:20Z");
}

TEST(RenderPodTest, WaitingStateHasReasonAndMessage) {
  Pod pod = MakePod();
  PodStatusView st = ComputePodStatus(pod, {}, {}, {{"init", {"ErrImagePull", "nope"}}});
  ConditionClock clock;
  nlohmann::json j = RenderPod(pod, st, {"node1", "cri"}, clock, kT);
  EXPECT_EQ(j["status"]["phase"], "Pending");
  EXPECT_EQ(j["status"]["initContainerStatuses"][0]["state"]["waiting"]["reason"], "ErrImagePull");
  EXPECT_EQ(j["status"]["initContainerStatuses"][0]["state"]["waiting"]["message"], "nope");
  EXPECT_EQ(j["status"]["containerStatuses"][0]["state"]["waiting"]["reason"], "PodInitializing");
  EXPECT_TRUE(j["status"]["containerStatuses"][0]["lastState"].empty());
  EXPECT_FALSE(j["status"].contains("podIP"));
}

}  // namespace
}  // namespace podshim::kubelet
