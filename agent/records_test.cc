#include "agent/records.h"

#include <memory>
#include <string>

#include <gtest/gtest.h>

namespace podshim::agent {
namespace {

TEST(Records, SandboxRoundTrip) {
  SandboxRecord r;
  r.id = "abc";
  r.config.mutable_metadata()->set_name("web");
  (*r.config.mutable_labels())["app"] = "x";
  r.config.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_pid(
      cri::POD);
  r.state = cri::SANDBOX_READY;
  r.net_ns = "/run/podshim/pods/abc/ns/net";
  r.infra_pid = 42;
  auto back = SandboxFromJson(SandboxToJson(r));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->config.metadata().name(), "web");
  EXPECT_EQ(back->config.labels().at("app"), "x");
  EXPECT_EQ(back->config.linux().security_context().namespace_options().pid(), cri::POD);
  EXPECT_EQ(back->state, cri::SANDBOX_READY);
  EXPECT_EQ(back->net_ns, r.net_ns);
  EXPECT_EQ(back->infra_pid, 42);
}

TEST(Records, ContainerRoundTrip) {
  ContainerRecord r;
  r.id = "c1";
  r.pod_id = "p1";
  r.config.mutable_metadata()->set_name("app");
  r.config.add_command("sh");
  r.state = cri::CONTAINER_EXITED;
  r.exit_code = 137;
  r.reason = "OOMKilled";
  r.groups = {1, 2};
  r.pid = 4242;
  r.pid_start_time = 987654321;
  r.monitor_pid = 4243;
  r.monitor_start_time = 987654322;
  r.resources.set_memory_limit_in_bytes(1 << 20);
  auto back = ContainerFromJson(ContainerToJson(r));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->config.command(0), "sh");
  EXPECT_EQ(back->state, cri::CONTAINER_EXITED);
  EXPECT_EQ(back->exit_code, 137);
  EXPECT_EQ(back->reason, "OOMKilled");
  EXPECT_EQ(back->groups, (std::vector<uint32_t>{1, 2}));
  EXPECT_EQ(back->pid, 4242);
  EXPECT_EQ(back->pid_start_time, 987654321u);
  EXPECT_EQ(back->monitor_pid, 4243);
  EXPECT_EQ(back->monitor_start_time, 987654322u);
  EXPECT_EQ(back->resources.memory_limit_in_bytes(), 1 << 20);
}

// The config printed once at creation is what a save writes; a record
// without it (read back from disk) prints its config at each save, to the
// same text.
TEST(Records, CachedConfigTextIsSavedAsIs) {
  ContainerRecord r;
  r.id = "c1";
  r.config.mutable_metadata()->set_name("app");
  r.config.add_args("a \"quoted\" arg");
  const std::string plain = ContainerToJson(r);
  r.config_json = std::make_shared<const std::string>(ProtoJsonText(r.config));
  EXPECT_EQ(ContainerToJson(r), plain);
  auto back = ContainerFromJson(plain);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->config.args(0), "a \"quoted\" arg");
  EXPECT_EQ(back->config_json, nullptr);
  EXPECT_EQ(ContainerToJson(*back), plain);

  SandboxRecord p;
  p.id = "p1";
  p.config.mutable_metadata()->set_name("web");
  const std::string pod_plain = SandboxToJson(p);
  p.config_json = std::make_shared<const std::string>(ProtoJsonText(p.config));
  EXPECT_EQ(SandboxToJson(p), pod_plain);
  auto pod_back = SandboxFromJson(pod_plain);
  ASSERT_TRUE(pod_back.ok()) << pod_back.status();
  EXPECT_EQ(pod_back->config.metadata().name(), "web");
}

// The resources' text is printed once and reused while they are unchanged;
// a change (UpdateContainerResources) is what the next save writes.
TEST(Records, ResourcesTextFollowsTheResources) {
  ContainerRecord r;
  r.id = "c1";
  r.resources.set_cpu_shares(2);
  const std::string first = ContainerToJson(r);
  ASSERT_NE(r.resources_json, nullptr);
  const auto cached = r.resources_json;
  EXPECT_EQ(ContainerToJson(r), first);
  EXPECT_EQ(r.resources_json, cached);  // not printed again
  r.resources.set_cpu_shares(4);
  r.resources.set_memory_limit_in_bytes(1 << 20);
  auto back = ContainerFromJson(ContainerToJson(r));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->resources.cpu_shares(), 4);
  EXPECT_EQ(back->resources.memory_limit_in_bytes(), 1 << 20);
  // A copy made before the change keeps the text of its own resources.
  ContainerRecord old = r;
  old.resources.set_cpu_shares(2);
  old.resources.clear_memory_limit_in_bytes();
  EXPECT_EQ(ContainerToJson(old), first);
}

// An empty message is an empty object, not a missing member.
TEST(Records, EmptyConfigIsAnObject) {
  ContainerRecord r;
  r.id = "c1";
  auto back = ContainerFromJson(ContainerToJson(r));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->id, "c1");
  EXPECT_NE(ContainerToJson(r).find(R"("config":{})"), std::string::npos) << ContainerToJson(r);
}

TEST(Records, CorruptTextIsInvalidArgument) {
  EXPECT_EQ(SandboxFromJson("{").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SandboxFromJson("{}").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ContainerFromJson(R"({"id":"x","pid":"nope"})").status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace podshim::agent
