#include "runtime/launch_spec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace podshim::runtime {
namespace {

TEST(LaunchSpec, RoundTripKeepsEveryField) {
  LaunchSpec s;
  s.id = "abc";
  s.bundle = "/run/podshim/containers/abc";
  s.rootfs = {{"/l/2", "/l/1"}, "/c/abc/upper", "/c/abc/work", "/run/x/rootfs", true};
  s.net = {NsMode::kJoin, "/run/podshim/pods/p/ns/net"};
  s.pid = {NsMode::kHost, ""};
  s.hostname = "h";
  s.mounts.push_back({"/src", "/dst", true, Propagation::kRslave, false});
  s.devices.push_back({"/dev/fuse", "/dev/fuse", "rw"});
  s.masked_paths = {"/proc/kcore"};
  s.readonly_paths = {"/proc/sys"};
  s.privileged = true;
  s.process.args = {"sh", "-c", "true"};
  s.process.env = {"A=B"};
  s.process.cwd = "/w";
  s.process.user.uid = 1000;
  s.process.user.username = "nobody";
  s.process.user.supplemental_groups = {5, 6};
  s.process.capabilities = {"CAP_KILL"};
  s.process.no_new_privs = true;
  s.process.seccomp_json = R"({"defaultAction":"SCMP_ACT_ALLOW"})";
  s.process.rlimits.push_back({"RLIMIT_NOFILE", 10, 20});
  s.process.oom_score_adj = -5;
  s.cgroup_procs = {"/sys/fs/cgroup/memory/x/cgroup.procs"};
  s.oom_counter_file = "/sys/fs/cgroup/memory/x/memory.oom_control";
  s.log_path = "/var/log/pods/x/0.log";

  auto back = LaunchSpecFromJson(LaunchSpecToJson(s));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(LaunchSpecToJson(*back), LaunchSpecToJson(s));
  EXPECT_EQ(back->net.mode, NsMode::kJoin);
  EXPECT_EQ(back->pid.mode, NsMode::kHost);
  EXPECT_EQ(back->mounts[0].propagation, Propagation::kRslave);
  EXPECT_EQ(back->process.user.uid, 1000u);
  EXPECT_FALSE(back->process.user.gid.has_value());
  EXPECT_EQ(back->process.oom_score_adj, -5);
}

TEST(LaunchSpec, MissingFieldsTakeDefaults) {
  auto s = LaunchSpecFromJson(R"({"id":"x"})");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->net.mode, NsMode::kNew);
  EXPECT_EQ(s->process.cwd, "/");
  EXPECT_FALSE(s->process.oom_score_adj.has_value());
}

TEST(LaunchSpec, WrongTypesAreInvalidArgument) {
  EXPECT_EQ(LaunchSpecFromJson(R"({"id":5})").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(LaunchSpecFromJson("[]").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(LaunchSpecFromJson("{").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(StartReport, RoundTrip) {
  StartReport r{true, "", 42, 123456, 41, 123400, 1000, 1000, {1, 2}};
  auto back = StartReportFromJson(StartReportToJson(r));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->pid, 42);
  EXPECT_EQ(back->start_time, 123456u);
  EXPECT_EQ(back->monitor_pid, 41);
  EXPECT_EQ(back->monitor_start_time, 123400u);
  EXPECT_THAT(back->groups, testing::ElementsAre(1u, 2u));
}

TEST(ExitStatus, RoundTrip) {
  ExitStatus e{137, 9, true, 123456789, "OOMKilled"};
  auto back = ExitStatusFromJson(ExitStatusToJson(e));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->exit_code, 137);
  EXPECT_TRUE(back->oom_killed);
  EXPECT_EQ(back->reason, "OOMKilled");
  EXPECT_EQ(back->finished_at_ns, 123456789);
}

}  // namespace
}  // namespace podshim::runtime
