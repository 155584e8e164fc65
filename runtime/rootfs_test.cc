// PrepareMountTarget on image layers made in a temp dir, and once through a
// real overlay mount (in a child's own mount namespace) to check that the
// container sees the image's /etc with the new file in it.
#include "runtime/rootfs.h"

#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "gtest/gtest.h"

namespace podshim::runtime {
namespace {

class PrepareMountTargetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/podshim-rootfs-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    for (const char* d : {"/top", "/bottom", "/upper", "/work", "/merged"}) {
      ASSERT_EQ(::mkdir((dir_ + d).c_str(), 0755), 0);
    }
    lower_ = {dir_ + "/top", dir_ + "/bottom"};
    upper_ = dir_ + "/upper";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void Dir(const std::string& path, mode_t mode = 0755) {
    ASSERT_EQ(::mkdir(path.c_str(), mode), 0) << path;
    ASSERT_EQ(::chmod(path.c_str(), mode), 0) << path;
  }
  static void File(const std::string& path, const std::string& text = "") {
    std::ofstream(path) << text;
  }
  // PrepareMountTarget on these layers; an error fails the test.
  bool Prepare(absl::string_view path, bool is_dir = false) {
    auto made = PrepareMountTarget(lower_, upper_, path, is_dir);
    EXPECT_TRUE(made.ok()) << path << ": " << made.status();
    return made.ok() && *made;
  }

  std::string dir_;
  std::vector<std::string> lower_;
  std::string upper_;
};

struct stat StatOf(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
  return st;
}

bool Exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

TEST_F(PrepareMountTargetTest, MakesTheFileAndCopiesTheParentsModeAndOwner) {
  Dir(dir_ + "/bottom/etc", 0751);
  ASSERT_EQ(::chown((dir_ + "/bottom/etc").c_str(), 12, 34), 0);
  File(dir_ + "/bottom/etc/passwd", "root:x:0:0::/root:/bin/sh\n");

  EXPECT_TRUE(Prepare("/etc/hosts"));
  struct stat etc = StatOf(upper_ + "/etc");
  EXPECT_TRUE(S_ISDIR(etc.st_mode));
  EXPECT_EQ(etc.st_mode & 07777, 0751u);
  EXPECT_EQ(etc.st_uid, 12u);
  EXPECT_EQ(etc.st_gid, 34u);
  struct stat hosts = StatOf(upper_ + "/etc/hosts");
  EXPECT_TRUE(S_ISREG(hosts.st_mode));
  EXPECT_EQ(hosts.st_mode & 07777, 0644u);
  EXPECT_EQ(hosts.st_size, 0);
  // The parent made by the first target serves the next.
  EXPECT_TRUE(Prepare("/etc/resolv.conf"));
  EXPECT_TRUE(Exists(upper_ + "/etc/resolv.conf"));
  EXPECT_FALSE(Exists(upper_ + "/etc/passwd"));
}

TEST_F(PrepareMountTargetTest, MakesADirectoryTarget) {
  Dir(dir_ + "/top/var");
  EXPECT_TRUE(Prepare("/var/data", true));
  struct stat data = StatOf(upper_ + "/var/data");
  EXPECT_TRUE(S_ISDIR(data.st_mode));
  EXPECT_EQ(data.st_mode & 07777, 0755u);
}

TEST_F(PrepareMountTargetTest, LeavesWhatTheImageHasAlone) {
  Dir(dir_ + "/bottom/etc");
  File(dir_ + "/bottom/etc/hosts", "127.0.0.1 localhost\n");
  Dir(dir_ + "/top/etc");  // a later layer's /etc does not hide the file
  EXPECT_FALSE(Prepare("/etc/hosts"));
  EXPECT_FALSE(Exists(upper_ + "/etc"));
}

TEST_F(PrepareMountTargetTest, AWhiteoutOrAnOpaqueDirectoryMeansTheFileIsGone) {
  Dir(dir_ + "/bottom/etc");
  File(dir_ + "/bottom/etc/hosts", "old\n");
  Dir(dir_ + "/top/etc");
  ASSERT_EQ(::mknod((dir_ + "/top/etc/hosts").c_str(), S_IFCHR | 0000, makedev(0, 0)), 0);
  EXPECT_TRUE(Prepare("/etc/hosts"));

  ASSERT_EQ(::unlink((dir_ + "/top/etc/hosts").c_str()), 0);
  ASSERT_EQ(::setxattr((dir_ + "/top/etc").c_str(), "trusted.overlay.opaque", "y", 1, 0), 0);
  EXPECT_TRUE(Prepare("/etc/resolv.conf"));
  File(dir_ + "/bottom/etc/hostname", "x\n");  // hidden by the opaque /etc above
  EXPECT_TRUE(Prepare("/etc/hostname"));
}

TEST_F(PrepareMountTargetTest, LeavesTheRestToTheStart) {
  // A symlinked parent (resolved in the rootfs at start), a missing one, a
  // parent that is a file, a parent with extended attributes, a path that is
  // not clean.
  Dir(dir_ + "/bottom/run");
  ASSERT_EQ(::mkdir((dir_ + "/bottom/var").c_str(), 0755), 0);
  ASSERT_EQ(::symlink("../run", (dir_ + "/bottom/var/run").c_str()), 0);
  File(dir_ + "/bottom/file");
  Dir(dir_ + "/bottom/labelled");
  ASSERT_EQ(::setxattr((dir_ + "/bottom/labelled").c_str(), "user.note", "x", 1, 0), 0);
  for (const char* path : {"/var/run/secrets", "/missing/x", "/file/x", "/labelled/x",
                           "/var/../etc/x", "relative/x", "/"}) {
    EXPECT_FALSE(Prepare(path)) << path;
  }
  EXPECT_TRUE(std::filesystem::is_empty(upper_));
}

TEST_F(PrepareMountTargetTest, PrepareMountTargetsSkipsDevProcAndSys) {
  Dir(dir_ + "/bottom/etc");
  Dir(dir_ + "/bottom/dev");
  File(dir_ + "/hosts-source");
  Dir(dir_ + "/shm-source");
  LaunchSpec spec;
  spec.rootfs.lower = lower_;
  spec.rootfs.upper = upper_;
  spec.mounts.push_back(MountSpec{dir_ + "/hosts-source", "/etc/hosts"});
  spec.mounts.push_back(MountSpec{dir_ + "/shm-source", "/dev/shm"});
  spec.mounts.push_back(MountSpec{dir_ + "/shm-source", "/etc/data"});
  auto made = PrepareMountTargets(spec);
  ASSERT_TRUE(made.ok()) << made.status();
  EXPECT_EQ(*made, 2);
  EXPECT_TRUE(S_ISREG(StatOf(upper_ + "/etc/hosts").st_mode));
  EXPECT_TRUE(S_ISDIR(StatOf(upper_ + "/etc/data").st_mode));
  EXPECT_FALSE(Exists(upper_ + "/dev"));
}

TEST_F(PrepareMountTargetTest, TheOverlayShowsTheImagesEtcWithTheNewFile) {
  Dir(dir_ + "/bottom/etc", 0750);
  File(dir_ + "/bottom/etc/passwd", "root:x:0:0::/root:/bin/sh\n");
  Dir(dir_ + "/top/etc", 0751);
  File(dir_ + "/top/etc/group", "root:x:0:\n");
  ASSERT_TRUE(Prepare("/etc/hosts"));

  const std::string merged = dir_ + "/merged";
  const std::string data = "lowerdir=" + lower_[0] + ":" + lower_[1] + ",upperdir=" + upper_ +
                           ",workdir=" + dir_ + "/work";
  // In a child of its own mount namespace: nothing is left mounted whatever
  // happens. Exit codes name the failed check.
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (::unshare(CLONE_NEWNS) != 0) ::_exit(10);
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) ::_exit(11);
    if (::mount("overlay", merged.c_str(), "overlay", 0, data.c_str()) != 0) ::_exit(12);
    struct stat st {};
    if (::stat((merged + "/etc").c_str(), &st) != 0 || (st.st_mode & 07777) != 0751) ::_exit(13);
    for (const char* f : {"/etc/passwd", "/etc/group", "/etc/hosts"}) {
      if (::stat((merged + f).c_str(), &st) != 0 || !S_ISREG(st.st_mode)) ::_exit(14);
    }
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "10 unshare, 12 mount, 13 /etc mode, 14 a file missing";
}

}  // namespace
}  // namespace podshim::runtime
