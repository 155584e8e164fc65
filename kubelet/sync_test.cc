#include "kubelet/sync.h"

#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "kubelet/backoff.h"
#include "kubelet/pod_spec.h"

namespace podshim::kubelet {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::SizeIs;

const absl::Time kNow = absl::FromUnixSeconds(1700000100);
int64_t Ns(absl::Time t) { return absl::ToUnixNanos(t); }

Pod MakePod(const std::string& spec) {
  auto parsed = ParseManifest("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n" + spec,
                              "p.yaml", "node");
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  return parsed.ok() ? parsed->pods.at(0) : Pod{};
}

const char kTwoInitTwoApps[] =
    "  initContainers: [{name: i1, image: x}, {name: i2, image: x}]\n"
    "  containers: [{name: a, image: x}, {name: b, image: x}]\n";

class SyncTest : public ::testing::Test {
 protected:
  // References handed out below stay valid.
  SyncTest() {
    observed_.sandboxes.reserve(16);
    observed_.containers.reserve(16);
  }

  ObservedSandbox& Sandbox(const Pod& pod, bool ready = true, const std::string& id = "sb1") {
    ObservedSandbox s;
    s.id = id;
    s.ready = ready;
    s.created_at = Ns(kNow - absl::Minutes(5));
    s.uid = pod.uid;
    s.manifest_hash = pod.hash;
    s.ip = "10.99.0.5";
    observed_.sandboxes.push_back(s);
    return observed_.sandboxes.back();
  }
  ObservedContainer& Container(const std::string& name, ContainerState state, int exit_code = 0,
                               uint32_t attempt = 0, const std::string& sandbox = "sb1") {
    ObservedContainer c;
    c.id = absl::StrCat(name, "-", attempt, "-", observed_.containers.size());
    c.sandbox_id = sandbox;
    c.name = name;
    c.attempt = attempt;
    c.state = state;
    c.exit_code = exit_code;
    c.created_at = Ns(kNow - absl::Minutes(4));
    c.started_at = Ns(kNow - absl::Minutes(4));
    if (state == ContainerState::kExited) c.finished_at = Ns(kNow - absl::Seconds(30));
    observed_.containers.push_back(c);
    return observed_.containers.back();
  }
  PodActions Compute(const Pod& pod) {
    return ComputePodActions(pod, observed_, probes_, backoff_, kNow);
  }
  PodStatusView Status(const Pod& pod, const std::map<std::string, Waiting>& waiting = {}) {
    return ComputePodStatus(pod, observed_, probes_, waiting);
  }

  ObservedPod observed_;
  ProbeVerdicts probes_;
  Backoff backoff_{absl::Seconds(10), absl::Minutes(5)};
};

std::vector<std::string> Starts(const Pod& pod, const PodActions& a) {
  std::vector<std::string> out;
  for (const ContainerStart& s : a.containers_to_start) {
    out.push_back((s.init ? pod.init_containers : pod.containers)[s.index].name);
  }
  return out;
}

TEST_F(SyncTest, NewPodCreatesTheSandboxAndTheFirstInitContainer) {
  Pod pod = MakePod(kTwoInitTwoApps);
  PodActions a = Compute(pod);
  EXPECT_TRUE(a.create_sandbox);
  EXPECT_EQ(a.sandbox_attempt, 0u);
  EXPECT_THAT(Starts(pod, a), ElementsAre("i1"));
  EXPECT_EQ(Status(pod).phase, "Pending");
}

TEST_F(SyncTest, NewPodWithoutInitStartsEveryApp) {
  Pod pod = MakePod("  containers: [{name: a, image: x}, {name: b, image: x}]\n");
  EXPECT_THAT(Starts(pod, Compute(pod)), ElementsAre("a", "b"));
}

TEST_F(SyncTest, InitContainersRunInOrderEachToSuccess) {
  Pod pod = MakePod(kTwoInitTwoApps);
  Sandbox(pod);
  Container("i1", ContainerState::kRunning);
  EXPECT_TRUE(Compute(pod).Empty());
  PodStatusView st = Status(pod);
  EXPECT_EQ(st.phase, "Pending");
  EXPECT_FALSE(st.initialized);
  EXPECT_EQ(st.containers[0].state.reason, "PodInitializing");

  observed_.containers.clear();
  Container("i1", ContainerState::kExited, 0);
  EXPECT_THAT(Starts(pod, Compute(pod)), ElementsAre("i2"));

  Container("i2", ContainerState::kExited, 0);
  PodActions a = Compute(pod);
  EXPECT_THAT(Starts(pod, a), ElementsAre("a", "b"));
  EXPECT_FALSE(a.create_sandbox);
  EXPECT_TRUE(Status(pod).initialized);
}

TEST_F(SyncTest, AppsRunningMakeThePodRunningAndReady) {
  Pod pod = MakePod(kTwoInitTwoApps);
  Sandbox(pod);
  Container("i1", ContainerState::kExited, 0);
  Container("i2", ContainerState::kExited, 0);
  Container("a", ContainerState::kRunning);
  Container("b", ContainerState::kRunning);
  EXPECT_TRUE(Compute(pod).Empty());
  PodStatusView st = Status(pod);
  EXPECT_EQ(st.phase, "Running");
  EXPECT_TRUE(st.sandbox_ready);
  EXPECT_TRUE(st.containers_ready);
  EXPECT_EQ(st.pod_ip, "10.99.0.5");
  EXPECT_EQ(st.containers[0].state.kind, ContainerStateView::kRunning);
  EXPECT_EQ(st.init_containers[1].state.kind, ContainerStateView::kTerminated);
  EXPECT_EQ(st.init_containers[1].state.reason, "Completed");
}

TEST_F(SyncTest, InitDoneOnceAnAppContainerExistsEvenIfInitInstancesAreGone) {
  Pod pod = MakePod(kTwoInitTwoApps);
  Sandbox(pod);
  Container("a", ContainerState::kRunning);
  PodActions a = Compute(pod);
  EXPECT_THAT(Starts(pod, a), ElementsAre("b"));
}

TEST_F(SyncTest, FailedInitContainerRestartsWithBackoffUnlessNever) {
  Pod pod = MakePod(kTwoInitTwoApps);
  Sandbox(pod);
  ObservedContainer& i1 = Container("i1", ContainerState::kExited, 1);
  PodActions a = Compute(pod);
  ASSERT_THAT(a.containers_to_start, SizeIs(1));
  EXPECT_TRUE(a.containers_to_start[0].restart);
  EXPECT_EQ(a.containers_to_start[0].last_exit, absl::FromUnixNanos(i1.finished_at));

  // Three restarts later the delay is 40 s: the exit 30 s ago must wait.
  backoff_.Next(BackoffKey(pod, "i1"), kNow - absl::Minutes(1));
  backoff_.Next(BackoffKey(pod, "i1"), kNow - absl::Seconds(40));  // now 20 s
  backoff_.Next(BackoffKey(pod, "i1"), kNow - absl::Seconds(35));  // now 40 s
  a = Compute(pod);
  EXPECT_THAT(a.containers_to_start, IsEmpty());
  ASSERT_TRUE(a.waiting.count("i1"));
  EXPECT_EQ(a.waiting["i1"].reason, "CrashLoopBackOff");
  ASSERT_TRUE(a.requeue_at.has_value());
  EXPECT_EQ(*a.requeue_at, absl::FromUnixNanos(i1.finished_at) + absl::Seconds(40));
  PodStatusView st = Status(pod, a.waiting);
  EXPECT_EQ(st.phase, "Pending");
  EXPECT_EQ(st.init_containers[0].state.reason, "CrashLoopBackOff");
  ASSERT_TRUE(st.init_containers[0].last_state.has_value());
  EXPECT_EQ(st.init_containers[0].last_state->exit_code, 1);

  Pod never = MakePod("  restartPolicy: Never\n" + std::string(kTwoInitTwoApps));
  observed_.sandboxes.clear();
  observed_.containers.clear();
  Sandbox(never);
  Container("i1", ContainerState::kExited, 1);
  a = Compute(never);
  EXPECT_TRUE(a.stop_sandbox);
  EXPECT_THAT(a.containers_to_start, IsEmpty());
  EXPECT_EQ(Status(never).phase, "Failed");
}

TEST_F(SyncTest, ExitedAppRestartsPerPolicyWithBackoff) {
  Pod pod = MakePod("  containers: [{name: a, image: x}]\n");
  Sandbox(pod);
  Container("a", ContainerState::kExited, 0, 2);
  PodActions a = Compute(pod);
  ASSERT_THAT(Starts(pod, a), ElementsAre("a"));
  EXPECT_TRUE(a.containers_to_start[0].restart);

  backoff_.Next(BackoffKey(pod, "a"), kNow - absl::Minutes(1));
  backoff_.Next(BackoffKey(pod, "a"), kNow - absl::Seconds(50));
  backoff_.Next(BackoffKey(pod, "a"), kNow - absl::Seconds(40));  // 40 s > 30 s since exit
  a = Compute(pod);
  EXPECT_THAT(a.containers_to_start, IsEmpty());
  EXPECT_EQ(a.waiting["a"].reason, "CrashLoopBackOff");
  PodStatusView st = Status(pod, a.waiting);
  EXPECT_EQ(st.phase, "Running");  // Always: a crash-looping pod is Running
  EXPECT_EQ(st.containers[0].restart_count, 2u);
  EXPECT_FALSE(st.containers[0].ready);
  EXPECT_TRUE(st.containers[0].last_state.has_value());
}

TEST_F(SyncTest, OnFailureAndNeverFinishThePod) {
  Pod on_failure = MakePod("  restartPolicy: OnFailure\n  containers: [{name: a, image: x}]\n");
  Sandbox(on_failure);
  Container("a", ContainerState::kExited, 0);
  PodActions a = Compute(on_failure);
  EXPECT_THAT(a.containers_to_start, IsEmpty());
  EXPECT_TRUE(a.stop_sandbox);
  EXPECT_EQ(Status(on_failure).phase, "Succeeded");

  observed_.containers.clear();
  Container("a", ContainerState::kExited, 3);
  a = Compute(on_failure);
  EXPECT_THAT(Starts(on_failure, a), ElementsAre("a"));
  EXPECT_FALSE(a.stop_sandbox);

  Pod never = MakePod("  restartPolicy: Never\n  containers: [{name: a, image: x}]\n");
  observed_.sandboxes.clear();
  observed_.containers.clear();
  Sandbox(never);
  Container("a", ContainerState::kExited, 3);
  a = Compute(never);
  EXPECT_TRUE(a.stop_sandbox);
  EXPECT_THAT(a.containers_to_start, IsEmpty());
  PodStatusView st = Status(never);
  EXPECT_EQ(st.phase, "Failed");
  EXPECT_EQ(st.containers[0].state.reason, "Error");

  // Once the sandbox is stopped, nothing happens any more.
  observed_.sandboxes[0].ready = false;
  EXPECT_TRUE(Compute(never).Empty());
  EXPECT_EQ(Status(never).phase, "Failed");
}

TEST_F(SyncTest, FailedLivenessOrStartupProbeKillsTheContainer) {
  Pod pod = MakePod("  containers: [{name: a, image: x}, {name: b, image: x}]\n");
  Sandbox(pod);
  ObservedContainer& a = Container("a", ContainerState::kRunning);
  ObservedContainer& b = Container("b", ContainerState::kRunning);
  probes_[a.id].liveness_failed = true;
  probes_[b.id].started = false;
  probes_[b.id].startup_failed = true;
  PodActions actions = Compute(pod);
  ASSERT_THAT(actions.containers_to_kill, SizeIs(2));
  EXPECT_EQ(actions.containers_to_kill[0].reason, "liveness probe failed");
  EXPECT_EQ(actions.containers_to_kill[1].reason, "startup probe failed");
  PodStatusView st = Status(pod);
  EXPECT_FALSE(st.containers[1].started);
  EXPECT_FALSE(st.containers[1].ready);
}

TEST_F(SyncTest, ReadinessComesFromTheProbe) {
  Pod pod = MakePod("  containers: [{name: a, image: x}]\n");
  Sandbox(pod);
  ObservedContainer& a = Container("a", ContainerState::kRunning);
  probes_[a.id].ready = false;
  PodStatusView st = Status(pod);
  EXPECT_EQ(st.phase, "Running");
  EXPECT_TRUE(st.containers[0].started);
  EXPECT_FALSE(st.containers[0].ready);
  EXPECT_FALSE(st.containers_ready);
  probes_[a.id].ready = true;
  EXPECT_TRUE(Status(pod).containers_ready);
}

TEST_F(SyncTest, SandboxOfAnotherVersionIsReplaced) {
  Pod pod = MakePod("  containers: [{name: a, image: x}]\n");
  ObservedSandbox& old = Sandbox(pod, true, "old");
  old.manifest_hash = "0000000000000000";
  Container("a", ContainerState::kRunning, 0, 0, "old");
  PodActions a = Compute(pod);
  EXPECT_THAT(a.sandboxes_to_kill, ElementsAre("old"));
  EXPECT_TRUE(a.create_sandbox);
  EXPECT_THAT(Starts(pod, a), ElementsAre("a"));
  EXPECT_EQ(Status(pod).phase, "Pending");
}

TEST_F(SyncTest, DeadSandboxIsRecreatedUnlessThePodFinished) {
  Pod pod = MakePod("  containers: [{name: a, image: x}]\n");
  ObservedSandbox& s = Sandbox(pod, false);
  s.attempt = 1;
  Container("a", ContainerState::kExited, 137);
  PodActions a = Compute(pod);
  EXPECT_THAT(a.sandboxes_to_kill, ElementsAre("sb1"));
  EXPECT_TRUE(a.create_sandbox);
  EXPECT_EQ(a.sandbox_attempt, 2u);

  Pod never = MakePod("  restartPolicy: Never\n  containers: [{name: a, image: x}]\n");
  observed_.sandboxes.clear();
  observed_.containers.clear();
  Sandbox(never, false);
  Container("a", ContainerState::kExited, 137);
  EXPECT_TRUE(Compute(never).Empty());
}

TEST_F(SyncTest, KeepsOnlyTheNewestDeadInstance) {
  Pod pod = MakePod("  containers: [{name: a, image: x}]\n");
  Sandbox(pod);
  ObservedContainer& old = Container("a", ContainerState::kExited, 1, 0);
  Container("a", ContainerState::kExited, 1, 1);
  Container("a", ContainerState::kRunning, 0, 2);
  std::string old_id = old.id;
  PodActions a = Compute(pod);
  EXPECT_THAT(a.containers_to_remove, ElementsAre(old_id));
  EXPECT_THAT(a.containers_to_start, IsEmpty());
  PodStatusView st = Status(pod);
  EXPECT_EQ(st.containers[0].restart_count, 2u);
  ASSERT_TRUE(st.containers[0].last_state.has_value());
  EXPECT_EQ(st.containers[0].last_state->container_id, "a-1-1");
}

TEST_F(SyncTest, CreatedButNeverStartedInstanceIsReplaced) {
  Pod pod = MakePod("  containers: [{name: a, image: x}]\n");
  Sandbox(pod);
  ObservedContainer& c = Container("a", ContainerState::kCreated);
  std::string id = c.id;
  PodActions a = Compute(pod);
  EXPECT_THAT(a.containers_to_remove, ElementsAre(id));
  EXPECT_THAT(Starts(pod, a), ElementsAre("a"));
}

TEST_F(SyncTest, OrphanContainersAreStoppedAndRemoved) {
  Pod pod = MakePod("  containers: [{name: a, image: x}]\n");
  Sandbox(pod);
  Container("a", ContainerState::kRunning);
  ObservedContainer& orphan = Container("a", ContainerState::kRunning, 0, 0, "gone");
  std::string id = orphan.id;
  PodActions a = Compute(pod);
  ASSERT_THAT(a.containers_to_kill, SizeIs(1));
  EXPECT_EQ(a.containers_to_kill[0].id, id);
  EXPECT_THAT(a.containers_to_remove, ElementsAre(id));
}

TEST_F(SyncTest, WaitingReasonsFromErrorsShowUp) {
  Pod pod = MakePod("  containers: [{name: a, image: x}]\n");
  Sandbox(pod);
  PodStatusView st = Status(pod, {{"a", {"ErrImagePull", "no such image"}}});
  EXPECT_EQ(st.phase, "Pending");
  EXPECT_EQ(st.containers[0].state.kind, ContainerStateView::kWaiting);
  EXPECT_EQ(st.containers[0].state.reason, "ErrImagePull");
  EXPECT_EQ(st.containers[0].state.message, "no such image");
}

}  // namespace
}  // namespace podshim::kubelet
