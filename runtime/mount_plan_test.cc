// The pure parts of container_init: the mount plan, the overlay options, the
// sync pipe protocol and PATH lookup. No kernel involved.
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/container_init.h"

namespace podshim::runtime {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

LaunchSpec BaseSpec() {
  LaunchSpec spec;
  spec.rootfs.lower = {"/var/lib/podshim/snapshots/2/fs", "/var/lib/podshim/snapshots/1/fs"};
  spec.rootfs.upper = "/var/lib/podshim/containers/c1/upper";
  spec.rootfs.work = "/var/lib/podshim/containers/c1/work";
  spec.rootfs.target = "/run/podshim/c1/rootfs";
  spec.process.args = {"sh"};
  return spec;
}

std::vector<std::string> Targets(const std::vector<MountStep>& plan) {
  std::vector<std::string> out;
  out.reserve(plan.size());
  for (const MountStep& s : plan) out.push_back(s.target);
  return out;
}

const MountStep* Find(const std::vector<MountStep>& plan, MountKind kind,
                      absl::string_view target) {
  for (const MountStep& s : plan) {
    if (s.kind == kind && s.target == target) return &s;
  }
  return nullptr;
}

size_t IndexOf(const std::vector<MountStep>& plan, MountKind kind, absl::string_view target) {
  for (size_t i = 0; i < plan.size(); ++i) {
    if (plan[i].kind == kind && plan[i].target == target) return i;
  }
  return plan.size();
}

TEST(MountPlanTest, StandardFilesystemsInOrder) {
  auto plan = PlanMounts(BaseSpec());
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_THAT(Targets(*plan), ElementsAre("/proc", "/sys", "/dev", "/dev/null", "/dev/zero",
                                          "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty",
                                          "/dev/pts", "/dev/ptmx", "/dev/shm", "/dev/mqueue",
                                          "/dev/fd", "/dev/stdin", "/dev/stdout", "/dev/stderr"));
  const auto& p = *plan;
  EXPECT_EQ(p[0], (MountStep{MountKind::kFilesystem, "proc", "/proc", "proc",
                             MS_NOSUID | MS_NODEV | MS_NOEXEC, ""}));
  EXPECT_EQ(p[1].fstype, "sysfs");
  EXPECT_EQ(p[1].flags, MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY);
  EXPECT_EQ(p[2].fstype, "tmpfs");
  EXPECT_EQ(p[2].flags & MS_NODEV, 0u) << "/dev must allow device nodes";
  EXPECT_THAT(p[2].data, HasSubstr("mode=755"));
  EXPECT_EQ(p[3], (MountStep{MountKind::kDevice, "/dev/null", "/dev/null", "", MS_BIND, ""}));
  EXPECT_EQ(p[9].fstype, "devpts");
  EXPECT_EQ(p[9].data, "newinstance,ptmxmode=0666,mode=0620");
  EXPECT_EQ(p[10], (MountStep{MountKind::kSymlink, "pts/ptmx", "/dev/ptmx", "", 0, ""}));
  EXPECT_EQ(p[11].fstype, "tmpfs");
  EXPECT_THAT(p[11].data, HasSubstr("size=65536k"));
  EXPECT_EQ(p[12].fstype, "mqueue");
  EXPECT_EQ(p[13].source, "/proc/self/fd");
  EXPECT_EQ(p[16].source, "/proc/self/fd/2");
}

TEST(MountPlanTest, PrivilegedSysIsWritable) {
  LaunchSpec spec = BaseSpec();
  spec.privileged = true;
  auto plan = PlanMounts(spec);
  ASSERT_TRUE(plan.ok());
  const MountStep* sys = Find(*plan, MountKind::kFilesystem, "/sys");
  ASSERT_NE(sys, nullptr);
  EXPECT_EQ(sys->flags & MS_RDONLY, 0u);
}

TEST(MountPlanTest, RecursiveReadonlyCoversSubmounts) {
  LaunchSpec spec;
  MountSpec m{"/host/data", "/data", /*readonly=*/true, Propagation::kPrivate, true};
  m.recursive_readonly = true;
  spec.mounts.push_back(m);
  auto plan = PlanMounts(spec);
  ASSERT_TRUE(plan.ok()) << plan.status();
  auto it = std::find_if(plan->begin(), plan->end(), [](const MountStep& s) {
    return s.kind == MountKind::kReadonly && s.target == "/data";
  });
  ASSERT_NE(it, plan->end());
  EXPECT_EQ(it->flags, static_cast<unsigned long>(MS_REC));  // NOLINT(google-runtime-int)
}

TEST(MountPlanTest, SpecMountsBindWithReadonlyAndPropagation) {
  LaunchSpec spec = BaseSpec();
  spec.mounts.push_back({"/host/data", "/data", /*readonly=*/true, Propagation::kRslave, true});
  spec.mounts.push_back({"/host/etc-hosts", "/etc/hosts", false, Propagation::kPrivate, false});
  spec.mounts.push_back({"/host/shared", "/shared/", false, Propagation::kRshared, true});
  auto plan = PlanMounts(spec);
  ASSERT_TRUE(plan.ok()) << plan.status();
  size_t first = IndexOf(*plan, MountKind::kBind, "/data");
  ASSERT_LT(first + 6, plan->size());
  const auto& p = *plan;
  EXPECT_GT(first, IndexOf(p, MountKind::kSymlink, "/dev/stderr"));
  EXPECT_EQ(p[first],
            (MountStep{MountKind::kBind, "/host/data", "/data", "", MS_BIND | MS_REC, ""}));
  // Plain readonly covers the bind mount only; recursive_readonly (below)
  // covers the mounts under it too.
  EXPECT_EQ(p[first + 1], (MountStep{MountKind::kReadonly, "", "/data", "", 0, ""}));
  EXPECT_EQ(p[first + 2],
            (MountStep{MountKind::kPropagation, "", "/data", "", MS_SLAVE | MS_REC, ""}));
  EXPECT_EQ(p[first + 3],
            (MountStep{MountKind::kBind, "/host/etc-hosts", "/etc/hosts", "", MS_BIND, ""}));
  EXPECT_EQ(p[first + 4],
            (MountStep{MountKind::kPropagation, "", "/etc/hosts", "", MS_PRIVATE | MS_REC, ""}));
  // The trailing slash is cleaned away.
  EXPECT_EQ(p[first + 5],
            (MountStep{MountKind::kBind, "/host/shared", "/shared", "", MS_BIND | MS_REC, ""}));
  EXPECT_EQ(p[first + 6],
            (MountStep{MountKind::kPropagation, "", "/shared", "", MS_SHARED | MS_REC, ""}));
}

TEST(MountPlanTest, ShmFromSpecReplacesTheTmpfs) {
  LaunchSpec spec = BaseSpec();
  spec.mounts.push_back(
      {"/run/podshim/pods/p/shm", "/dev/shm", false, Propagation::kPrivate, true});
  auto plan = PlanMounts(spec);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(Find(*plan, MountKind::kFilesystem, "/dev/shm"), nullptr);
  EXPECT_NE(Find(*plan, MountKind::kBind, "/dev/shm"), nullptr);
}

TEST(MountPlanTest, DevicesMaskedReadonlyCwdAndReadonlyRootAtTheEnd) {
  LaunchSpec spec = BaseSpec();
  spec.mounts.push_back({"/host/data", "/data", false, Propagation::kPrivate, true});
  spec.devices.push_back({"/dev/fuse", "/dev/fuse", "rwm"});
  spec.masked_paths = {"/proc/kcore", "/proc/acpi"};
  spec.readonly_paths = {"/proc/sys"};
  spec.process.cwd = "/work/dir";
  spec.rootfs.readonly = true;
  auto plan = PlanMounts(spec);
  ASSERT_TRUE(plan.ok()) << plan.status();
  const auto& p = *plan;
  size_t data = IndexOf(p, MountKind::kBind, "/data");
  size_t fuse = IndexOf(p, MountKind::kBind, "/dev/fuse");
  size_t kcore = IndexOf(p, MountKind::kMask, "/proc/kcore");
  size_t acpi = IndexOf(p, MountKind::kMask, "/proc/acpi");
  size_t sys = IndexOf(p, MountKind::kReadonlyPath, "/proc/sys");
  size_t cwd = IndexOf(p, MountKind::kMkdir, "/work/dir");
  EXPECT_LT(data, fuse);
  EXPECT_LT(fuse, kcore);
  EXPECT_LT(kcore, acpi);
  EXPECT_LT(acpi, sys);
  EXPECT_LT(sys, cwd);
  EXPECT_EQ(p[fuse], (MountStep{MountKind::kBind, "/dev/fuse", "/dev/fuse", "", MS_BIND, ""}));
  EXPECT_EQ(p.back(), (MountStep{MountKind::kReadonly, "", "/", "", 0, ""}));
  EXPECT_EQ(cwd, p.size() - 2);
}

TEST(MountPlanTest, RootCwdNeedsNoMkdirAndWritableRootNoRemount) {
  auto plan = PlanMounts(BaseSpec());
  ASSERT_TRUE(plan.ok());
  for (const MountStep& s : *plan) {
    EXPECT_NE(s.kind, MountKind::kMkdir);
    EXPECT_NE(s.kind, MountKind::kReadonly);
  }
}

TEST(MountPlanTest, RelativeContainerPathsAreRejected) {
  LaunchSpec spec = BaseSpec();
  spec.mounts.push_back({"/host/data", "data", false, Propagation::kPrivate, true});
  auto plan = PlanMounts(spec);
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(plan.status().message(), HasSubstr("`data`"));

  spec = BaseSpec();
  spec.mounts.push_back({"relative/src", "/data", false, Propagation::kPrivate, true});
  EXPECT_THAT(PlanMounts(spec).status().message(), HasSubstr("`relative/src`"));

  spec = BaseSpec();
  spec.masked_paths = {"proc/kcore"};
  EXPECT_EQ(PlanMounts(spec).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(MountPlanTest, DotDotCannotClimbAboveTheRoot) {
  LaunchSpec spec = BaseSpec();
  spec.mounts.push_back({"/host/x", "/../../etc/./x/", false, Propagation::kPrivate, true});
  auto plan = PlanMounts(spec);
  ASSERT_TRUE(plan.ok());
  EXPECT_NE(Find(*plan, MountKind::kBind, "/etc/x"), nullptr);
}

// The standard /dev nodes are made with mknod, like the host's, in a
// directory that stands for the container's root.
TEST(MountStepTest, DeviceNodesAreMadeLikeTheHosts) {
  if (::geteuid() != 0) GTEST_SKIP() << "mknod needs root";
  char tmpl[] = "/tmp/podshim-devstep-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string root = tmpl;
  int root_fd = ::open(root.c_str(), O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  ASSERT_GE(root_fd, 0);
  const mode_t old_umask = ::umask(077);  // the node's mode must not depend on it
  for (const char* node : {"/dev/null", "/dev/tty"}) {
    absl::Status s =
        ExecuteMountStep(root_fd, MountStep{MountKind::kDevice, node, node, "", MS_BIND, ""});
    ASSERT_TRUE(s.ok()) << node << ": " << s;
    struct stat host {
    }, made{};
    ASSERT_EQ(::stat(node, &host), 0);
    ASSERT_EQ(::lstat((root + node).c_str(), &made), 0) << node;
    EXPECT_TRUE(S_ISCHR(made.st_mode)) << node;
    EXPECT_EQ(made.st_rdev, host.st_rdev) << node;
    EXPECT_EQ(made.st_mode & 07777, host.st_mode & 07777) << node;
    EXPECT_EQ(made.st_uid, 0u) << node;
  }
  ::umask(old_umask);
  // Not a device: refused, nothing made.
  absl::Status s = ExecuteMountStep(
      root_fd, MountStep{MountKind::kDevice, "/etc/hostname", "/dev/bogus", "", MS_BIND, ""});
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_FALSE(std::filesystem::exists(root + "/dev/bogus"));
  ::close(root_fd);
  std::filesystem::remove_all(root);
}

TEST(OverlayPlanTest, AbsoluteWhenItFits) {
  auto o = PlanOverlay(BaseSpec().rootfs, 4096);
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->data,
            "lowerdir=/var/lib/podshim/snapshots/2/fs:/var/lib/podshim/snapshots/1/fs,"
            "upperdir=/var/lib/podshim/containers/c1/upper,"
            "workdir=/var/lib/podshim/containers/c1/work");
  EXPECT_EQ(o->chdir, "");
}

TEST(OverlayPlanTest, ReadonlyOverlayWithoutUpper) {
  RootfsSpec r;
  r.lower = {"/a", "/b"};
  auto o = PlanOverlay(r, 4096);
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->data, "lowerdir=/a:/b");
  r.upper = "/u";
  EXPECT_EQ(PlanOverlay(r, 4096).status().code(), absl::StatusCode::kInvalidArgument);
  r = RootfsSpec();
  EXPECT_EQ(PlanOverlay(r, 4096).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(OverlayPlanTest, SeparatorsAreEscaped) {
  RootfsSpec r;
  r.lower = {"/l:a,b"};
  r.upper = "/u";
  r.work = "/w";
  auto o = PlanOverlay(r, 4096);
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->data, "lowerdir=/l\\:a\\,b,upperdir=/u,workdir=/w");
}

TEST(OverlayPlanTest, TooLongForAPageGoesRelativeToTheCommonParent) {
  RootfsSpec r;
  for (int i = 150; i > 0; --i) {
    r.lower.push_back(absl::StrCat("/var/lib/podshim/snapshots/", i, "/fs"));
  }
  r.upper = "/var/lib/podshim/containers/c1/upper";
  r.work = "/var/lib/podshim/containers/c1/work";
  auto o = PlanOverlay(r, 4096);
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->chdir, "/var/lib/podshim/snapshots");
  EXPECT_TRUE(absl::StartsWith(o->data, "lowerdir=150/fs:149/fs:")) << o->data;
  EXPECT_TRUE(absl::EndsWith(o->data,
                             ":1/fs,upperdir=/var/lib/podshim/containers/c1/upper,"
                             "workdir=/var/lib/podshim/containers/c1/work"));
  EXPECT_LT(o->data.size(), 4096u);
}

TEST(OverlayPlanTest, HopelesslyLongIsAnError) {
  RootfsSpec r;
  for (int i = 0; i < 500; ++i) r.lower.push_back(absl::StrCat("/snap/", i, "/a-long-layer-dir"));
  auto o = PlanOverlay(r, 4096);
  EXPECT_EQ(o.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(o.status().message(), HasSubstr("500 lower dirs"));
}

TEST(SyncProtocolTest, UserLineRoundTrip) {
  ResolvedUser u;
  u.uid = 1000;
  u.gid = 100;
  u.groups = {10, 20};
  EXPECT_EQ(SyncUserLine(u), "user 1000 100 10,20\n");
  SyncResult r = ParseSyncMessages(SyncUserLine(u));
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.user.uid, 1000u);
  EXPECT_EQ(r.user.gid, 100u);
  EXPECT_THAT(r.user.groups, ElementsAre(10u, 20u));

  u.groups.clear();
  r = ParseSyncMessages(SyncUserLine(u));
  ASSERT_TRUE(r.ok);
  EXPECT_TRUE(r.user.groups.empty());
}

TEST(SyncProtocolTest, ErrorAfterUserWins) {
  ResolvedUser u;
  std::string text =
      SyncUserLine(u) + SyncErrorLine(absl::NotFoundError("exec `nosuch`: ENOENT\n(No such file)"));
  SyncResult r = ParseSyncMessages(text);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error, "exec `nosuch`: ENOENT (No such file)");
}

TEST(SyncProtocolTest, SilenceAndGarbageAreErrors) {
  EXPECT_FALSE(ParseSyncMessages("").ok);
  EXPECT_THAT(ParseSyncMessages("").error, HasSubstr("before it reported"));
  EXPECT_FALSE(ParseSyncMessages("user x y -\n").ok);
  EXPECT_FALSE(ParseSyncMessages("user 1 2 3,x\n").ok);
}

TEST(ExecPathTest, PathFromEnvOrDefault) {
  EXPECT_EQ(PathFromEnv({"A=1", "PATH=/bin:/x", "B=2"}), "/bin:/x");
  EXPECT_THAT(PathFromEnv({"A=1"}), HasSubstr("/usr/bin"));
}

TEST(ExecPathTest, Candidates) {
  EXPECT_THAT(ExecCandidates("sh", "/usr/bin:/bin/"), ElementsAre("/usr/bin/sh", "/bin/sh"));
  EXPECT_THAT(ExecCandidates("./run", "/bin"), ElementsAre("./run"));
  EXPECT_THAT(ExecCandidates("/bin/sh", "/x"), ElementsAre("/bin/sh"));
  EXPECT_THAT(ExecCandidates("a", "/x::/y"), ElementsAre("/x/a", "./a", "/y/a"));
}

}  // namespace
}  // namespace podshim::runtime
