// The orchestration (pods.cc, containers.cc, container_queries.cc,
// recovery.cc) against fakes of the machine, the network and the images
// (agent/fake_host.h): what each RPC asks of them, and that a failure half
// way undoes what was done and frees the name. The e2e tests show the same
// on the real kernel; these show the order and the undo without one.
#include <signal.h>
#include <sys/socket.h>

#include <algorithm>
#include <filesystem>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agent/fake_host.h"
#include "agent/pod_runtime.h"

namespace podshim::agent {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using testing::FakeImages;
using testing::FakeMachine;
using testing::FakeNetworks;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

constexpr char kImage[] = "docker.io/library/busybox:1";

// Names in a directory (none if it is missing).
std::vector<std::string> Entries(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    out.push_back(e.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// A request that names one pod (pod_sandbox_id) or one container (container_id).
template <typename Request>
Request Naming(const std::string& id) {
  Request req;
  if constexpr (requires { req.set_pod_sandbox_id(id); }) {
    req.set_pod_sandbox_id(id);
  } else {
    req.set_container_id(id);
  }
  return req;
}

class OrchestrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/podshim-orch-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    Open();
  }
  void TearDown() override {
    rt_.reset();
    machine_.reset();
    std::filesystem::remove_all(dir_);
  }

  // (Re)opens the runtime over the same directories with fresh fakes, as a
  // restart of podshimd would; `keep_machine`: the same machine (what runs
  // survives the restart).
  void Open(bool keep_machine = false) {
    rt_.reset();
    if (!keep_machine) machine_ = std::make_unique<FakeMachine>();
    Mechanisms m;
    m.machine = std::make_unique<testing::MachineRef>(machine_.get());
    auto network = std::make_unique<FakeNetworks>();
    network_ = network.get();
    m.network = std::move(network);
    auto images = std::make_unique<FakeImages>();
    images_ = images.get();
    images_->AddImage(kImage);
    m.images = std::move(images);
    PodRuntimeOptions options;
    options.state_dir = dir_ + "/state";
    options.root_dir = dir_ + "/root";
    options.cgroup_parent = "/podshim-test";
    options.pinns_binary = "/nonexistent/podshim-pinns";
    auto rt = PodRuntime::OpenWith(options, std::move(m));
    ASSERT_TRUE(rt.ok()) << rt.status();
    rt_ = std::move(*rt);
  }

  cri::RunPodSandboxRequest PodRequest(const std::string& name) {
    cri::RunPodSandboxRequest req;
    auto* md = req.mutable_config()->mutable_metadata();
    md->set_name(name);
    md->set_namespace_("ns");
    md->set_uid(absl::StrCat("uid-", name));
    req.mutable_config()->set_hostname(name);
    return req;
  }

  absl::StatusOr<std::string> RunPod(const std::string& name, const ClientCall& call = {}) {
    cri::RunPodSandboxResponse resp;
    auto s = rt_->RunPodSandbox(PodRequest(name), &resp, call);
    if (!s.ok()) return s;
    return resp.pod_sandbox_id();
  }

  cri::CreateContainerRequest ContainerRequest(const std::string& pod_id, const std::string& name) {
    cri::CreateContainerRequest req;
    req.set_pod_sandbox_id(pod_id);
    auto* c = req.mutable_config();
    c->mutable_metadata()->set_name(name);
    c->mutable_image()->set_image(kImage);
    c->add_command("/bin/sleep");
    c->add_args("1000");
    *req.mutable_sandbox_config() = PodRequest("p").config();
    return req;
  }

  absl::StatusOr<std::string> CreateContainer(const std::string& pod_id, const std::string& name) {
    cri::CreateContainerResponse resp;
    auto s = rt_->CreateContainer(ContainerRequest(pod_id, name), &resp);
    if (!s.ok()) return s;
    return resp.container_id();
  }

  absl::Status Start(const std::string& id) {
    return rt_->StartContainer(Naming<cri::StartContainerRequest>(id));
  }

  cri::ContainerStatus ContainerStatus(const std::string& id) {
    cri::ContainerStatusResponse resp;
    EXPECT_TRUE(rt_->ContainerStatus(Naming<cri::ContainerStatusRequest>(id), &resp).ok());
    return resp.status();
  }

  cri::PodSandboxStatus PodStatus(const std::string& id) {
    cri::PodSandboxStatusResponse resp;
    EXPECT_TRUE(rt_->PodSandboxStatus(Naming<cri::PodSandboxStatusRequest>(id), &resp).ok());
    return resp.status();
  }

  int PodCount() {
    cri::ListPodSandboxResponse resp;
    EXPECT_TRUE(rt_->ListPodSandbox({}, &resp).ok());
    return resp.items_size();
  }

  absl::Status StopPod(const std::string& id) {
    return rt_->StopPodSandbox(Naming<cri::StopPodSandboxRequest>(id));
  }
  absl::Status RemovePod(const std::string& id) {
    return rt_->RemovePodSandbox(Naming<cri::RemovePodSandboxRequest>(id));
  }

  // No container's bundle, writable layer, record or lease is left.
  void ExpectNoContainerLeftovers() {
    EXPECT_THAT(Entries(dir_ + "/state/containers"), IsEmpty());
    EXPECT_THAT(Entries(dir_ + "/root/containers"), IsEmpty());
    EXPECT_THAT(Entries(dir_ + "/state/records/containers"), IsEmpty());
    EXPECT_THAT(images_->Leases(), IsEmpty());
  }

  // A pod "web" with containers of these names, the first `started` of them
  // started; their IDs in order.
  std::pair<std::string, std::vector<std::string>> PodWith(const std::vector<std::string>& names,
                                                           size_t started = 0) {
    auto pod = RunPod("web");
    EXPECT_TRUE(pod.ok()) << pod.status();
    std::vector<std::string> ids;
    for (const auto& name : names) {
      auto id = CreateContainer(pod.value_or(""), name);
      EXPECT_TRUE(id.ok()) << id.status();
      ids.push_back(id.value_or(""));
      if (ids.size() <= started) {
        EXPECT_TRUE(Start(ids.back()).ok());
      }
    }
    return {pod.value_or(""), ids};
  }

  std::string dir_;
  std::unique_ptr<FakeMachine> machine_;
  std::unique_ptr<PodRuntime> rt_;
  FakeNetworks* network_ = nullptr;
  FakeImages* images_ = nullptr;
};

TEST_F(OrchestrationTest, RunPodSandboxSetsUpThePodThenItsNetworkThenTheRecord) {
  auto id = RunPod("web");
  ASSERT_TRUE(id.ok()) << id.status();
  const std::string pod_dir = absl::StrCat(dir_, "/state/pods/", *id);
  EXPECT_THAT(machine_->Calls(),
              ElementsAre(absl::StrCat("SetUpPod ", pod_dir, " /podshim-test/pod-", *id)));
  EXPECT_EQ(network_->Setups(), 1);
  const auto st = PodStatus(*id);
  EXPECT_EQ(st.state(), cri::SANDBOX_READY);
  EXPECT_EQ(st.network().ip(), "10.88.0.2");
  // The record, and no creation marker left.
  EXPECT_THAT(Entries(dir_ + "/state/records/pods"), ElementsAre(*id + ".json"));
  EXPECT_THAT(Entries(dir_ + "/state/pods"), ElementsAre(*id));
}

TEST_F(OrchestrationTest, RefusedRequestsAskNothingOfTheMachine) {
  struct Case {
    std::string what;
    std::function<void(cri::RunPodSandboxRequest&)> edit;
    std::string field;
  };
  const std::vector<Case> cases = {
      {"no config", [](auto& r) { r.clear_config(); }, "config"},
      {"unknown handler", [](auto& r) { r.set_runtime_handler("runc"); }, "runtime_handler"},
      {"the root cgroup",
       [](auto& r) { r.mutable_config()->mutable_linux()->set_cgroup_parent("/"); },
       "cgroup_parent"},
      {"podshim's own parent",
       [](auto& r) { r.mutable_config()->mutable_linux()->set_cgroup_parent("/podshim-test"); },
       "cgroup_parent"},
      {"no name", [](auto& r) { r.mutable_config()->mutable_metadata()->clear_name(); },
       "metadata.name"},
  };
  for (const auto& c : cases) {
    auto req = PodRequest("bad");
    c.edit(req);
    cri::RunPodSandboxResponse resp;
    auto s = rt_->RunPodSandbox(req, &resp);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.what << ": " << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr(c.field)) << c.what;
  }
  EXPECT_THAT(machine_->Calls(), IsEmpty());
  EXPECT_EQ(network_->Setups(), 0);
  EXPECT_THAT(Entries(dir_ + "/state/pods"), IsEmpty());
  EXPECT_EQ(PodCount(), 0);
}

TEST_F(OrchestrationTest, AFailedNetworkUndoesThePodAndFreesItsName) {
  network_->FailSetup(absl::UnavailableError("bridge: no address left"));
  auto failed = RunPod("web");
  ASSERT_EQ(failed.status().code(), absl::StatusCode::kUnavailable) << failed.status();
  // The pod's namespaces, directory and cgroup went; no record, no marker.
  const auto calls = machine_->Calls();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_THAT(calls[0], HasSubstr("SetUpPod"));
  EXPECT_THAT(calls[1], HasSubstr("RemovePod"));
  EXPECT_THAT(calls[1], HasSubstr("/podshim-test/pod-"));  // podshim made it: it goes
  EXPECT_THAT(machine_->fake_cgroups().Made(), IsEmpty());
  EXPECT_THAT(Entries(dir_ + "/state/pods"), IsEmpty());
  EXPECT_THAT(Entries(dir_ + "/state/records/pods"), IsEmpty());
  EXPECT_EQ(PodCount(), 0);
  // The name is free again.
  network_->FailSetup(absl::OkStatus());
  EXPECT_TRUE(RunPod("web").ok());
}

TEST_F(OrchestrationTest, AFailedSetUpAsksNoNetworkAndFreesTheName) {
  machine_->fail_setup = absl::InternalError("pinns: EPERM");
  EXPECT_EQ(RunPod("web").status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(network_->Setups(), 0);
  EXPECT_THAT(Entries(dir_ + "/state/pods"), IsEmpty());
  machine_->fail_setup = absl::OkStatus();
  EXPECT_TRUE(RunPod("web").ok());
}

TEST_F(OrchestrationTest, TheSameNameTwiceIsAlreadyExists) {
  ASSERT_TRUE(RunPod("web").ok());
  auto again = RunPod("web");
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(network_->Setups(), 1);
}

TEST_F(OrchestrationTest, StopAndRemoveAreIdempotentAndTearDownTheNetworkOnce) {
  EXPECT_TRUE(StopPod("no-such-pod").ok());
  EXPECT_TRUE(RemovePod("no-such-pod").ok());
  auto id = RunPod("web");
  ASSERT_TRUE(id.ok());
  EXPECT_TRUE(StopPod(*id).ok());
  EXPECT_TRUE(StopPod(*id).ok());
  EXPECT_EQ(network_->Teardowns(), 1);
  EXPECT_EQ(PodStatus(*id).state(), cri::SANDBOX_NOTREADY);
  EXPECT_TRUE(RemovePod(*id).ok());
  EXPECT_TRUE(RemovePod(*id).ok());
  EXPECT_EQ(network_->Teardowns(), 1);
  EXPECT_EQ(PodCount(), 0);
  EXPECT_THAT(machine_->fake_cgroups().Made(), IsEmpty());
  EXPECT_THAT(Entries(dir_ + "/state/pods"), IsEmpty());
  EXPECT_THAT(Entries(dir_ + "/state/records/pods"), IsEmpty());
}

TEST_F(OrchestrationTest, ACgroupThatWasThereIsNeverRemoved) {
  // The kubelet made the pod's cgroup before RunPodSandbox: not podshim's.
  ASSERT_TRUE(machine_->fake_cgroups().Create("/kubepods/pod-x").ok());
  auto req = PodRequest("web");
  req.mutable_config()->mutable_linux()->set_cgroup_parent("/kubepods/pod-x");
  cri::RunPodSandboxResponse resp;
  ASSERT_TRUE(rt_->RunPodSandbox(req, &resp).ok());
  EXPECT_THAT(machine_->Calls("SetUpPod"), ElementsAre(HasSubstr("/kubepods/pod-x keep")));
  ASSERT_TRUE(RemovePod(resp.pod_sandbox_id()).ok());
  // Stop and remove were told to leave the cgroup alone ("" for the cgroup).
  for (const auto& call : machine_->Calls("StopPod")) EXPECT_THAT(call, ::testing::EndsWith(" "));
  for (const auto& call : machine_->Calls("RemovePod")) {
    EXPECT_THAT(call, ::testing::EndsWith(" "));
  }
  EXPECT_TRUE(machine_->fake_cgroups().Exists("/kubepods/pod-x"));
}

// A cgroup_parent podshim made for one pod and another pod shares: whichever
// goes last removes it, also when its maker goes first (it stayed behind,
// empty, before). A failed set-up of the sharer never removes it.
TEST_F(OrchestrationTest, ASharedCgroupPodshimMadeGoesWithTheLastPodInIt) {
  auto make = [&](const std::string& name) {
    auto req = PodRequest(name);
    req.mutable_config()->mutable_linux()->set_cgroup_parent("/kubepods/shared");
    cri::RunPodSandboxResponse resp;
    EXPECT_TRUE(rt_->RunPodSandbox(req, &resp).ok());
    return resp.pod_sandbox_id();
  };
  const std::string maker = make("a");
  ASSERT_TRUE(machine_->fake_cgroups().Exists("/kubepods/shared"));
  machine_->fail_setup = absl::InternalError("set-up fails");
  auto failed = PodRequest("c");
  failed.mutable_config()->mutable_linux()->set_cgroup_parent("/kubepods/shared");
  cri::RunPodSandboxResponse ignored;
  EXPECT_FALSE(rt_->RunPodSandbox(failed, &ignored).ok());
  machine_->fail_setup = absl::OkStatus();
  EXPECT_THAT(machine_->Calls("SetUpPod"), ElementsAre(Not(HasSubstr("keep")), HasSubstr("keep")))
      << "the sharer's set-up keeps the cgroup that was there";
  const std::string sharer = make("b");
  ASSERT_TRUE(RemovePod(maker).ok());
  EXPECT_TRUE(machine_->fake_cgroups().Exists("/kubepods/shared")) << "the sharer is in it";
  ASSERT_TRUE(RemovePod(sharer).ok());
  EXPECT_FALSE(machine_->fake_cgroups().Exists("/kubepods/shared"));
}

// A pod being made in a shared cgroup while the last other pod in it removes
// it waits for that removal, then makes the cgroup anew as its own: it is
// never set up in a cgroup about to be killed and removed.
TEST_F(OrchestrationTest, APodMadeInASharedCgroupBeingRemovedWaitsForTheRemoval) {
  auto run_in_shared = [&](const std::string& name) {
    auto req = PodRequest(name);
    req.mutable_config()->mutable_linux()->set_cgroup_parent("/kubepods/shared");
    cri::RunPodSandboxResponse resp;
    EXPECT_TRUE(rt_->RunPodSandbox(req, &resp).ok());
    return resp.pod_sandbox_id();
  };
  const std::string maker = run_in_shared("a");
  std::string sharer;
  std::thread making;
  machine_->on_stop_pod = [&] {
    making = std::thread([&] { sharer = run_in_shared("b"); });
    // Without the cgroup's lock the sharer would be set up now, in the cgroup
    // that goes next: give it the time to.
    const absl::Time deadline = absl::Now() + absl::Milliseconds(300);
    while (machine_->Calls("SetUpPod").size() < 2 && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(5));
    }
  };
  ASSERT_TRUE(StopPod(maker).ok());
  ASSERT_TRUE(making.joinable()) << "StopPod did not reach the machine";
  making.join();
  const auto calls = machine_->Calls();
  const auto stop = std::find_if(calls.begin(), calls.end(), [](const std::string& c) {
    return absl::StartsWith(c, "StopPod") && absl::EndsWith(c, " /kubepods/shared");
  });
  ASSERT_NE(stop, calls.end());
  const auto setups = machine_->Calls("SetUpPod");
  ASSERT_EQ(setups.size(), 2u);
  const auto second_setup = std::find(calls.begin(), calls.end(), setups[1]);
  EXPECT_GT(second_setup, stop) << "the sharer was set up while the cgroup was being removed";
  EXPECT_THAT(setups[1], Not(HasSubstr("keep"))) << "it makes the cgroup anew, its own";
  EXPECT_TRUE(machine_->fake_cgroups().Exists("/kubepods/shared"));
  ASSERT_TRUE(RemovePod(maker).ok());
  EXPECT_TRUE(machine_->fake_cgroups().Exists("/kubepods/shared")) << "the sharer is in it";
  ASSERT_TRUE(RemovePod(sharer).ok());
  EXPECT_FALSE(machine_->fake_cgroups().Exists("/kubepods/shared"));
}

TEST_F(OrchestrationTest, APodMadeAfterItsClientLeftIsHandedToTheRetry) {
  ClientCall gone;
  gone.deadline = absl::Now() - absl::Seconds(1);
  auto first = RunPod("web", gone);
  ASSERT_TRUE(first.ok()) << first.status();
  auto retry = RunPod("web");
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_EQ(*retry, *first);
  EXPECT_EQ(network_->Setups(), 1);
  // Claimed now: a further call with that name is a different pod.
  EXPECT_EQ(RunPod("web").status().code(), absl::StatusCode::kAlreadyExists);
}

TEST_F(OrchestrationTest, CreateContainerWithAnUnknownImageLeavesNothing) {
  auto pod = RunPod("web");
  ASSERT_TRUE(pod.ok());
  auto req = ContainerRequest(*pod, "app");
  req.mutable_config()->mutable_image()->set_image("docker.io/library/nosuch:1");
  cri::CreateContainerResponse resp;
  auto s = rt_->CreateContainer(req, &resp);
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("config.image.image"));
  ExpectNoContainerLeftovers();
}

TEST_F(OrchestrationTest, AFailureAtTheCgroupUndoesTheCreationAndFreesTheName) {
  auto pod = RunPod("web");
  ASSERT_TRUE(pod.ok());
  const auto pod_cgroups = machine_->fake_cgroups().Made();
  {
    absl::MutexLock lock(&machine_->fake_cgroups().mu);
    machine_->fake_cgroups().fail_apply = absl::InvalidArgumentError("cpu.max: 5 is too small");
  }
  auto failed = CreateContainer(*pod, "app");
  ASSERT_EQ(failed.status().code(), absl::StatusCode::kInvalidArgument) << failed.status();
  EXPECT_THAT(std::string(failed.status().message()), HasSubstr("config.linux.resources"));
  // The lease, the bundle, the writable layer, the cgroup and the record went.
  ExpectNoContainerLeftovers();
  EXPECT_EQ(machine_->fake_cgroups().Made(), pod_cgroups);
  {
    absl::MutexLock lock(&machine_->fake_cgroups().mu);
    machine_->fake_cgroups().fail_apply = absl::OkStatus();
  }
  EXPECT_TRUE(CreateContainer(*pod, "app").ok());
}

TEST_F(OrchestrationTest, CreateContainerInAStoppedPodIsFailedPrecondition) {
  auto pod = RunPod("web");
  ASSERT_TRUE(pod.ok());
  ASSERT_TRUE(StopPod(*pod).ok());
  EXPECT_EQ(CreateContainer(*pod, "app").status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(images_->Leases(), IsEmpty());
}

TEST_F(OrchestrationTest, AFailedStartIsRecordedAsAnExitAndItsCgroupGoes) {
  auto pod = RunPod("web");
  ASSERT_TRUE(pod.ok());
  auto id = CreateContainer(*pod, "app");
  ASSERT_TRUE(id.ok()) << id.status();
  machine_->fail_start = absl::FailedPreconditionError("exec `/bin/sleep`: ENOENT");
  EXPECT_EQ(Start(*id).code(), absl::StatusCode::kFailedPrecondition);
  const auto st = ContainerStatus(*id);
  EXPECT_EQ(st.state(), cri::CONTAINER_EXITED);
  EXPECT_EQ(st.reason(), "StartError");
  EXPECT_THAT(st.message(), HasSubstr("ENOENT"));
  EXPECT_FALSE(machine_->fake_cgroups().Exists(absl::StrCat("/podshim-test/pod-", *pod, "/", *id)));
  // It is not started twice.
  EXPECT_EQ(Start(*id).code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(OrchestrationTest, AnExitIsRecordedFromTheMonitorsExitFile) {
  auto [pod_id, ids] = PodWith({"app"}, 1);
  auto st = ContainerStatus(ids[0]);
  ASSERT_EQ(st.state(), cri::CONTAINER_RUNNING);
  // Its limits change while it runs; then it exits: both are kept (the
  // lost update of issue 17 would drop one of them).
  cri::UpdateContainerResourcesRequest update;
  update.set_container_id(ids[0]);
  update.mutable_linux()->set_memory_limit_in_bytes(64 << 20);
  ASSERT_TRUE(rt_->UpdateContainerResources(update).ok());
  machine_->Exit(1000, 3, "Error");
  st = ContainerStatus(ids[0]);
  EXPECT_EQ(st.state(), cri::CONTAINER_EXITED);
  EXPECT_EQ(st.exit_code(), 3);
  EXPECT_EQ(st.reason(), "Error");
  EXPECT_EQ(st.resources().linux().memory_limit_in_bytes(), 64 << 20);
  // An exited container takes no more updates.
  EXPECT_EQ(rt_->UpdateContainerResources(update).code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(OrchestrationTest, AMonitorThatDiesWithoutAnExitFileEndsTheContainer) {
  auto [pod_id, ids] = PodWith({"app"}, 1);
  {
    absl::MutexLock lock(&machine_->fake_cgroups().mu);
    machine_->fake_cgroups().pids[absl::StrCat("/podshim-test/pod-", pod_id, "/", ids[0])] = {1000};
  }
  machine_->Exit(1000, 0, "");  // no exit file
  const auto st = ContainerStatus(ids[0]);
  EXPECT_EQ(st.state(), cri::CONTAINER_EXITED);
  EXPECT_EQ(st.exit_code(), 255);
  EXPECT_EQ(st.reason(), "Unknown");
  EXPECT_THAT(machine_->Calls("KillAndReap"), ElementsAre("KillAndReap 1000"));
}

TEST_F(OrchestrationTest, StopSignalsThenKillsAndIsIdempotent) {
  auto [pod_id, ids] = PodWith({"app"}, 1);
  cri::StopContainerRequest stop;
  stop.set_container_id(ids[0]);
  stop.set_timeout(10);
  ASSERT_TRUE(rt_->StopContainer(stop).ok());
  // SIGTERM (the default stop signal) ended it: no SIGKILL was needed.
  EXPECT_THAT(machine_->Calls("Signal"), ElementsAre(absl::StrCat("Signal 1000@10000 ", SIGTERM)));
  EXPECT_EQ(ContainerStatus(ids[0]).exit_code(), 128 + SIGTERM);
  ASSERT_TRUE(rt_->StopContainer(stop).ok());
  EXPECT_EQ(machine_->Calls("Signal").size(), 1u);
  stop.set_container_id("no-such-container");
  EXPECT_TRUE(rt_->StopContainer(stop).ok());
}

TEST_F(OrchestrationTest, RemovingAPodStopsAndRemovesItsContainersAndReleasesTheirLeases) {
  auto [pod_id, ids] = PodWith({"a", "b"}, 1);
  EXPECT_EQ(images_->Leases().size(), 2u);
  ASSERT_TRUE(RemovePod(pod_id).ok());
  EXPECT_EQ(machine_->Running(), 0);
  EXPECT_THAT(machine_->Calls("Signal"), ElementsAre(absl::StrCat("Signal 1000@10000 ", SIGKILL)));
  EXPECT_THAT(machine_->fake_cgroups().Made(), IsEmpty());
  ExpectNoContainerLeftovers();
  EXPECT_EQ(network_->Teardowns(), 1);
  cri::ListContainersResponse list;
  ASSERT_TRUE(rt_->ListContainers({}, &list).ok());
  EXPECT_EQ(list.containers_size(), 0);
}

TEST_F(OrchestrationTest, ARestartFindsThePodsAndContainersAndWhatEndedMeanwhile) {
  auto [pod_id, ids] = PodWith({"a", "b"}, 2);
  // podshimd stops; what runs keeps running (the same machine), and one
  // container ends while podshimd is away.
  rt_.reset();
  machine_->ForgetWatches();
  machine_->Exit(1002, 0, "Completed");
  Open(/*keep_machine=*/true);
  EXPECT_EQ(PodStatus(pod_id).state(), cri::SANDBOX_READY);
  EXPECT_EQ(ContainerStatus(ids[0]).state(), cri::CONTAINER_RUNNING);
  const auto st = ContainerStatus(ids[1]);
  EXPECT_EQ(st.state(), cri::CONTAINER_EXITED);
  EXPECT_EQ(st.reason(), "Completed");
  // Names are still held, and the still-running one is still watched.
  EXPECT_EQ(CreateContainer(pod_id, "a").status().code(), absl::StatusCode::kAlreadyExists);
  machine_->Exit(1000, 1, "Error");
  EXPECT_EQ(ContainerStatus(ids[0]).state(), cri::CONTAINER_EXITED);
}

// Issue 18, finding 7: a monitor is known by its pid and start time. One that
// ended while podshimd was away, its pid now another process's, ends its
// container; that process is neither watched nor asked to reopen a log.
TEST_F(OrchestrationTest, AMonitorsPidReusedWhilePodshimdWasAwayEndsItsContainer) {
  auto [pod_id, ids] = PodWith({"a", "b"}, 2);
  rt_.reset();
  machine_->ForgetWatches();
  machine_->ReusePid(1001);  // a's monitor
  Open(/*keep_machine=*/true);
  const auto st = ContainerStatus(ids[0]);
  EXPECT_EQ(st.state(), cri::CONTAINER_EXITED);
  EXPECT_EQ(st.reason(), "Unknown");
  EXPECT_EQ(ContainerStatus(ids[1]).state(), cri::CONTAINER_RUNNING);
  cri::ReopenContainerLogRequest reopen;
  reopen.set_container_id(ids[1]);
  EXPECT_TRUE(rt_->ReopenContainerLog(reopen).ok());
  EXPECT_THAT(machine_->Calls("ReopenLog"), ElementsAre("ReopenLog 1003@10030"));
}

TEST_F(OrchestrationTest, ExecSyncAndStatsGoThroughTheMachine) {
  auto pod = RunPod("web");
  ASSERT_TRUE(pod.ok());
  auto id = CreateContainer(*pod, "app");
  ASSERT_TRUE(id.ok());
  cri::ExecSyncRequest exec;
  exec.set_container_id(*id);
  exec.add_cmd("echo");
  exec.add_cmd("hi");
  cri::ExecSyncResponse out;
  // Not running yet.
  EXPECT_EQ(rt_->ExecSync(exec, &out).code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(Start(*id).ok());
  ASSERT_TRUE(rt_->ExecSync(exec, &out).ok());
  EXPECT_EQ(out.stdout(), "pid 1000@10000: echo hi") << "the init, by pid and start time";
  cri::ContainerStatsRequest stats;
  stats.set_container_id(*id);
  cri::ContainerStatsResponse st;
  ASSERT_TRUE(rt_->ContainerStats(stats, &st).ok());
  EXPECT_EQ(st.stats().memory().usage_bytes().value(), 4096u);
  EXPECT_EQ(st.stats().writable_layer().used_bytes().value(), 8192u);
}

TEST_F(OrchestrationTest, ExecIsCheckedAndStartsThroughTheMachineWhenTheClientComes) {
  auto pod = RunPod("web");
  ASSERT_TRUE(pod.ok());
  auto id = CreateContainer(*pod, "app");
  ASSERT_TRUE(id.ok());
  cri::ExecRequest req;
  req.set_container_id(id->substr(0, 12));  // a prefix names it too
  req.add_cmd("sh");
  req.set_stdout(true);
  // Not running yet.
  EXPECT_EQ(rt_->PrepareExec(req).status().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(Start(*id).ok());
  auto prepared = rt_->PrepareExec(req);
  ASSERT_TRUE(prepared.ok()) << prepared.status();
  EXPECT_EQ(prepared->container_id, *id) << "the full id";
  EXPECT_EQ(prepared->cmd, std::vector<std::string>{"sh"});
  EXPECT_TRUE(prepared->stdout);
  // The fake machine refuses; what matters is what it was asked.
  EXPECT_FALSE(rt_->StartExec(*prepared).ok());
  EXPECT_THAT(machine_->Calls(), Contains("StartExec 1000@10000: sh"));

  auto refused = [&](const std::function<void(cri::ExecRequest&)>& change) {
    cri::ExecRequest bad = req;
    change(bad);
    return rt_->PrepareExec(bad).status();
  };
  EXPECT_EQ(refused([](auto& r) { r.clear_cmd(); }).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(refused([](auto& r) { r.set_stdout(false); }).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused([](auto& r) {
                r.set_tty(true);
                r.set_stderr(true);
              }).message(),
              HasSubstr("tty"));
  EXPECT_EQ(refused([](auto& r) { r.set_container_id("ffff"); }).code(),
            absl::StatusCode::kNotFound);
  EXPECT_THAT(refused([](auto& r) { r.add_cmd(std::string(70 << 10, 'x')); }).message(),
              HasSubstr("cmd"));

  // A container that stopped after its URL was made is not exec'd into.
  cri::StopContainerRequest stop;
  stop.set_container_id(*id);
  ASSERT_TRUE(rt_->StopContainer(stop).ok());
  EXPECT_EQ(rt_->StartExec(*prepared).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(OrchestrationTest, AttachIsCheckedAgainstTheContainersOwnStdio) {
  auto pod = RunPod("web");
  ASSERT_TRUE(pod.ok());
  cri::CreateContainerRequest create = ContainerRequest(*pod, "app");
  create.mutable_config()->set_stdin(true);
  create.mutable_config()->set_stdin_once(true);
  cri::CreateContainerResponse created;
  ASSERT_TRUE(rt_->CreateContainer(create, &created).ok());
  const std::string id = created.container_id();
  cri::AttachRequest req;
  req.set_container_id(id.substr(0, 12));
  req.set_stdin(true);
  req.set_stdout(true);
  req.set_stderr(true);
  // Not running yet.
  EXPECT_EQ(rt_->PrepareAttach(req).status().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(Start(id).ok());
  auto prepared = rt_->PrepareAttach(req);
  ASSERT_TRUE(prepared.ok()) << prepared.status();
  EXPECT_EQ(prepared->container_id, id) << "the full id";
  EXPECT_TRUE(prepared->stdin && prepared->stdout && prepared->stderr);
  EXPECT_FALSE(prepared->tty);
  EXPECT_FALSE(rt_->StartAttach(*prepared).ok());
  const auto calls = machine_->Calls();
  EXPECT_TRUE(std::any_of(calls.begin(), calls.end(), [&id](const std::string& c) {
    return absl::StartsWith(c, "Attach /") && absl::EndsWith(c, id);
  })) << "the container's bundle is attached to";

  auto refused = [&](const std::function<void(cri::AttachRequest&)>& change) {
    cri::AttachRequest bad = req;
    change(bad);
    return rt_->PrepareAttach(bad).status();
  };
  EXPECT_THAT(refused([](auto& r) {
                r.set_stdin(false);
                r.set_stdout(false);
                r.set_stderr(false);
              }).message(),
              HasSubstr("at least one"));
  EXPECT_THAT(refused([](auto& r) {
                r.set_tty(true);
                r.set_stderr(false);
              }).message(),
              HasSubstr("tty: container"))
      << "the container was created without a terminal";
  EXPECT_EQ(refused([](auto& r) { r.set_container_id("ffff"); }).code(),
            absl::StatusCode::kNotFound);

  // A container without stdin gives none.
  auto plain = CreateContainer(*pod, "plain");
  ASSERT_TRUE(plain.ok());
  ASSERT_TRUE(Start(*plain).ok());
  req.set_container_id(*plain);
  auto no_stdin = rt_->PrepareAttach(req);
  EXPECT_EQ(no_stdin.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(no_stdin.status().message(), HasSubstr("stdin: container"));
  req.set_stdin(false);
  EXPECT_TRUE(rt_->PrepareAttach(req).ok()) << "its output can be attached to";

  // A container that stopped after its URL was made is not attached to.
  cri::StopContainerRequest stop;
  stop.set_container_id(id);
  ASSERT_TRUE(rt_->StopContainer(stop).ok());
  EXPECT_EQ(rt_->StartAttach(*prepared).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(OrchestrationTest, PortForwardIsCheckedAndItsSocketMadeInThePodsNetwork) {
  auto pod = RunPod("web");
  ASSERT_TRUE(pod.ok());
  cri::PortForwardRequest req;
  req.set_pod_sandbox_id(*pod);
  req.add_port(80);
  auto prepared = rt_->PreparePortForward(req);
  ASSERT_TRUE(prepared.ok()) << prepared.status();
  EXPECT_EQ(prepared->pod_sandbox_id, *pod);
  EXPECT_EQ(prepared->ports, std::vector<int32_t>{80});
  EXPECT_FALSE(rt_->PodSocket(*pod, AF_INET).ok());
  const auto calls = machine_->Calls();
  EXPECT_TRUE(std::any_of(calls.begin(), calls.end(), [](const std::string& c) {
    return absl::StartsWith(c, "SocketIn /") && absl::EndsWith(c, "/netns");
  })) << "the socket is made in the pod's pinned network namespace";

  req.add_port(0);
  EXPECT_THAT(rt_->PreparePortForward(req).status().message(), HasSubstr("port[1]"));
  req.set_pod_sandbox_id("ffff");
  EXPECT_EQ(rt_->PreparePortForward(req).status().code(), absl::StatusCode::kNotFound);
  cri::StopPodSandboxRequest stop;
  stop.set_pod_sandbox_id(*pod);
  ASSERT_TRUE(rt_->StopPodSandbox(stop).ok());
  EXPECT_EQ(rt_->PodSocket(*pod, AF_INET6).status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace podshim::agent
