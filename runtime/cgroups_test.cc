#include "runtime/cgroups.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/files.h"

namespace podshim::runtime {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

constexpr absl::string_view kUnlimitedV1 = "9223372036854771712";

std::string Trimmed(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  return text.ok() ? std::string(absl::StripAsciiWhitespace(*text)) : "<missing>";
}

// ---------------------------------------------------------------------------
// Helpers.

TEST(CgroupPathTest, NormalizesAndRefuses) {
  EXPECT_EQ(*NormalizeCgroupPath("/kubepods//pod1/"), "/kubepods/pod1");
  EXPECT_EQ(*NormalizeCgroupPath("/a"), "/a");
  for (const char* bad : {"", "relative/x", "/", "//", "/a/../b", "/..", "/a/./b"}) {
    absl::StatusOr<std::string> p = NormalizeCgroupPath(bad);
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(p.status().message(), HasSubstr(absl::StrCat("`", bad, "`")));
  }
  EXPECT_FALSE(NormalizeCgroupPath(std::string("/a\0b", 4)).ok());
}

TEST(CgroupHelpersTest, SharesToWeight) {
  EXPECT_EQ(SharesToWeight(0), 0u);
  EXPECT_EQ(SharesToWeight(1), 1u);
  EXPECT_EQ(SharesToWeight(2), 1u);
  EXPECT_EQ(SharesToWeight(1024), 39u);
  EXPECT_EQ(SharesToWeight(262144), 10000u);
  EXPECT_EQ(SharesToWeight(1 << 30), 10000u);
}

TEST(CgroupHelpersTest, ParseOomKillCount) {
  EXPECT_EQ(ParseOomKillCount("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n"), 3u);
  EXPECT_EQ(ParseOomKillCount("low 0\nhigh 0\nmax 9\noom 2\noom_kill 1\noom_group_kill 7\n"), 1u);
  EXPECT_EQ(ParseOomKillCount("oom_group_kill 7\n"), 0u);
  EXPECT_EQ(ParseOomKillCount(""), 0u);
}

TEST(CgroupHelpersTest, ParsesV1MountsUnderRoot) {
  const char* mountinfo =
      "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
      "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup "
      "rw,cpu,cpuacct\n"
      "34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset\n"
      "35 31 0:32 / /sys/fs/cgroup/my\\040mem rw,relatime - cgroup cgroup rw,memory\n"
      "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd\n"
      "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
      "42 23 0:39 / /elsewhere/pids rw,relatime - cgroup cgroup rw,pids\n"
      "43 23 0:40 / /sys/fs/cgroupx/blkio rw,relatime - cgroup cgroup rw,blkio\n";
  EXPECT_EQ(ParseCgroupV1Mounts(mountinfo, "/sys/fs/cgroup/"),
            (CgroupV1Hierarchies{{"cpu", "/sys/fs/cgroup/cpu,cpuacct"},
                                 {"cpuacct", "/sys/fs/cgroup/cpu,cpuacct"},
                                 {"cpuset", "/sys/fs/cgroup/cpuset"},
                                 {"memory", "/sys/fs/cgroup/my mem"}}));
}

TEST(CgroupHelpersTest, FavorDynmodsRemountsTheFirstCgroup2MountWithItsOptions) {
  const char* mountinfo =
      "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
      "34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset\n"
      "41 31 0:38 / /sys/fs/cgroup/uni\\040fied rw,nosuid,nodev,noexec,relatime shared:4 - "
      "cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n"
      "50 23 0:38 / /other rw,relatime - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n";
  FavorDynmodsPlan plan = PlanFavorDynmods(mountinfo);
  EXPECT_FALSE(plan.already_on);
  EXPECT_EQ(plan.target, "/sys/fs/cgroup/uni fied");
  EXPECT_EQ(plan.mount_flags, static_cast<unsigned long>(  // NOLINT(runtime/int)
                                  MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RELATIME));
  EXPECT_EQ(plan.data, "nsdelegate,memory_recursiveprot,favordynmods");
}

TEST(CgroupHelpersTest, FavorDynmodsSeenOnAnyCgroupMountMeansOn) {
  EXPECT_TRUE(PlanFavorDynmods("41 31 0:38 / /sys/fs/cgroup ro,relatime - cgroup2 cgroup2 "
                               "rw,favordynmods\n")
                  .already_on);
  // CONFIG_CGROUP_FAVOR_DYNMODS shows the option on v1 hierarchies too.
  EXPECT_TRUE(PlanFavorDynmods("34 31 0:31 / /sys/fs/cgroup/cpu rw - cgroup cgroup "
                               "rw,favordynmods,cpu\n")
                  .already_on);
}

TEST(CgroupHelpersTest, FavorDynmodsWithoutCgroup2MountsOnePrivately) {
  FavorDynmodsPlan plan =
      PlanFavorDynmods("34 31 0:31 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n");
  EXPECT_FALSE(plan.already_on);
  EXPECT_EQ(plan.target, "");
  EXPECT_EQ(plan.data, "favordynmods");
}

TEST(CgroupHelpersTest, FavorDynmodsOnThisKernel) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  // This changes the host's cgroup2 root flags, which is what podshimd does
  // at every start; the second call finds it done.
  auto first = EnableFavorDynmods(::testing::TempDir() + "/favordynmods");
  ASSERT_TRUE(first.ok()) << first.status();
  auto mountinfo = ReadFile("/proc/self/mountinfo");
  ASSERT_TRUE(mountinfo.ok());
  FavorDynmodsPlan plan = PlanFavorDynmods(*mountinfo);
  if (!plan.target.empty()) {
    EXPECT_TRUE(plan.already_on) << *mountinfo;
  }
  auto second = EnableFavorDynmods(::testing::TempDir() + "/favordynmods");
  ASSERT_TRUE(second.ok()) << second.status();
  if (!plan.target.empty()) {
    EXPECT_EQ(*second, "favordynmods was already on");
  }
}

TEST(CgroupHelpersTest, OpenRefusesUnknownVersionAndEmptyRoots) {
  EXPECT_EQ(OpenCgroups("/sys/fs/cgroup", 3).status().code(), absl::StatusCode::kInvalidArgument);
  // /proc is neither cgroup2 nor the parent of any v1 hierarchy.
  EXPECT_EQ(OpenCgroups("/proc").status().code(), absl::StatusCode::kFailedPrecondition);
}

// ---------------------------------------------------------------------------
// Fake trees: plain files in a temp dir, laid out as the kernel would.

class FakeTreeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cgroups_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }

  // Writes root_/rel, making its parents (what mkdir does in a cgroupfs).
  void Put(const std::string& rel, absl::string_view text) {
    const std::filesystem::path path = std::filesystem::path(root_) / rel;
    std::filesystem::create_directories(path.parent_path());
    std::ofstream(path) << text;
  }
  std::string Get(const std::string& rel) const { return Trimmed(root_ + "/" + rel); }
  bool Has(const std::string& rel) const { return std::filesystem::exists(root_ + "/" + rel); }

  // The files a v1 kernel shows in cgroup `cg` ("" for the roots).
  void PutV1Cgroup(const std::string& cg) {
    const std::string sub = cg.empty() ? "" : cg + "/";
    Put("cpu,cpuacct/" + sub + "cpu.shares", "1024\n");
    Put("cpu,cpuacct/" + sub + "cpu.cfs_period_us", "100000\n");
    Put("cpu,cpuacct/" + sub + "cpu.cfs_quota_us", "-1\n");
    Put("cpuset/" + sub + "cpuset.cpus", cg.empty() ? "0-3\n" : "\n");
    Put("cpuset/" + sub + "cpuset.mems", cg.empty() ? "0\n" : "\n");
    Put("memory/" + sub + "memory.limit_in_bytes", kUnlimitedV1);
    Put("memory/" + sub + "memory.memsw.limit_in_bytes", kUnlimitedV1);
    Put("pids/" + sub + "pids.max", "max\n");
    Put("hugetlb/" + sub + "hugetlb.2MB.limit_in_bytes", kUnlimitedV1);
    Put("hugetlb/" + sub + "hugetlb.1GB.limit_in_bytes", kUnlimitedV1);
    std::filesystem::create_directories(root_ + "/devices/" + cg);
  }

  std::unique_ptr<CgroupManager> OpenV1() {
    absl::StatusOr<std::unique_ptr<CgroupManager>> m = OpenCgroups(root_, 1);
    EXPECT_TRUE(m.ok()) << m.status();
    return m.ok() ? *std::move(m) : nullptr;
  }

  std::string root_;
};

TEST_F(FakeTreeTest, V1CreateMakesEveryHierarchyAndCopiesCpuset) {
  PutV1Cgroup("");
  PutV1Cgroup("pod");
  PutV1Cgroup("pod/c");
  Put("cpuset/pod/c/cpuset.mems", "1\n");  // already set: kept
  std::unique_ptr<CgroupManager> m = OpenV1();
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->Version(), 1);
  ASSERT_TRUE(m->Create("/pod/c").ok());
  EXPECT_TRUE(m->Create("/pod/c").ok());  // idempotent
  EXPECT_TRUE(Has("devices/pod/c"));
  EXPECT_EQ(Get("cpuset/pod/cpuset.cpus"), "0-3");
  EXPECT_EQ(Get("cpuset/pod/cpuset.mems"), "0");
  EXPECT_EQ(Get("cpuset/pod/c/cpuset.cpus"), "0-3");
  EXPECT_EQ(Get("cpuset/pod/c/cpuset.mems"), "1");
  EXPECT_TRUE(m->Exists("/pod/c"));
  EXPECT_FALSE(m->Exists("/pod/d"));
  // cpu and cpuacct share one hierarchy: one procs file for both.
  EXPECT_THAT(m->ProcsFiles("/pod/c"),
              UnorderedElementsAre(
                  root_ + "/cpu,cpuacct/pod/c/cgroup.procs", root_ + "/cpuset/pod/c/cgroup.procs",
                  root_ + "/devices/pod/c/cgroup.procs", root_ + "/hugetlb/pod/c/cgroup.procs",
                  root_ + "/memory/pod/c/cgroup.procs", root_ + "/pids/pod/c/cgroup.procs"));
  EXPECT_EQ(m->OomCounterFile("/pod/c"), root_ + "/memory/pod/c/memory.oom_control");
}

TEST_F(FakeTreeTest, V1ApplyWritesEachFile) {
  PutV1Cgroup("");
  PutV1Cgroup("c");
  std::unique_ptr<CgroupManager> m = OpenV1();
  ASSERT_NE(m, nullptr);
  CgroupResources res;
  res.cpu_shares = 512;
  res.cpu_period = 50000;
  res.cpu_quota = 25000;
  res.memory_limit_in_bytes = 1 << 20;
  res.memory_swap_limit_in_bytes = 2 << 20;
  res.pids_limit = 42;
  res.cpuset_cpus = "1-2";
  res.cpuset_mems = "0";
  res.hugepage_limits = {{"2MB", 4 << 20}, {"1GB", 0}};
  absl::Status s = m->Apply("/c", res);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(Get("cpu,cpuacct/c/cpu.shares"), "512");
  EXPECT_EQ(Get("cpu,cpuacct/c/cpu.cfs_period_us"), "50000");
  EXPECT_EQ(Get("cpu,cpuacct/c/cpu.cfs_quota_us"), "25000");
  EXPECT_EQ(Get("memory/c/memory.limit_in_bytes"), "1048576");
  EXPECT_EQ(Get("memory/c/memory.memsw.limit_in_bytes"), "2097152");
  EXPECT_EQ(Get("pids/c/pids.max"), "42");
  EXPECT_EQ(Get("cpuset/c/cpuset.cpus"), "1-2");
  EXPECT_EQ(Get("cpuset/c/cpuset.mems"), "0");
  EXPECT_EQ(Get("hugetlb/c/hugetlb.2MB.limit_in_bytes"), "4194304");
  EXPECT_EQ(Get("hugetlb/c/hugetlb.1GB.limit_in_bytes"), "0");

  // Unlimited values, and unset fields left alone.
  CgroupResources unlimited;
  unlimited.cpu_quota = 0;
  unlimited.memory_limit_in_bytes = -1;
  unlimited.memory_swap_limit_in_bytes = -1;
  unlimited.pids_limit = 0;
  s = m->Apply("/c", unlimited);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(Get("cpu,cpuacct/c/cpu.cfs_quota_us"), "-1");
  EXPECT_EQ(Get("cpu,cpuacct/c/cpu.cfs_period_us"), "50000");
  EXPECT_EQ(Get("cpu,cpuacct/c/cpu.shares"), "512");
  EXPECT_EQ(Get("memory/c/memory.limit_in_bytes"), "-1");
  EXPECT_EQ(Get("memory/c/memory.memsw.limit_in_bytes"), "-1");
  EXPECT_EQ(Get("pids/c/pids.max"), "max");
}

// The write order of memory and memory+swap is observed by making the memory
// file unwritable (a directory): whatever was written before it stays.
TEST_F(FakeTreeTest, V1RaisingMemswWritesItFirst) {
  PutV1Cgroup("c");
  Put("memory/c/memory.memsw.limit_in_bytes", "104857600\n");
  std::filesystem::remove(root_ + "/memory/c/memory.limit_in_bytes");
  std::filesystem::create_directory(root_ + "/memory/c/memory.limit_in_bytes");
  CgroupResources res;
  res.memory_limit_in_bytes = 200 << 20;
  res.memory_swap_limit_in_bytes = 300 << 20;
  EXPECT_FALSE(OpenV1()->Apply("/c", res).ok());
  EXPECT_EQ(Get("memory/c/memory.memsw.limit_in_bytes"), "314572800");
}

TEST_F(FakeTreeTest, V1LoweringMemswWritesItLast) {
  PutV1Cgroup("c");
  Put("memory/c/memory.memsw.limit_in_bytes", "314572800\n");
  std::filesystem::remove(root_ + "/memory/c/memory.limit_in_bytes");
  std::filesystem::create_directory(root_ + "/memory/c/memory.limit_in_bytes");
  CgroupResources res;
  res.memory_limit_in_bytes = 50 << 20;
  res.memory_swap_limit_in_bytes = 60 << 20;
  absl::Status s = OpenV1()->Apply("/c", res);
  EXPECT_THAT(s.message(), HasSubstr("memory.limit_in_bytes"));
  EXPECT_EQ(Get("memory/c/memory.memsw.limit_in_bytes"), "314572800");
}

TEST_F(FakeTreeTest, V1WithoutSwapAccountingWritesMemoryOnly) {
  PutV1Cgroup("c");
  std::filesystem::remove(root_ + "/memory/c/memory.memsw.limit_in_bytes");
  CgroupResources res;
  res.memory_limit_in_bytes = 1 << 20;
  res.memory_swap_limit_in_bytes = 2 << 20;
  ASSERT_TRUE(OpenV1()->Apply("/c", res).ok());
  EXPECT_EQ(Get("memory/c/memory.limit_in_bytes"), "1048576");
  EXPECT_FALSE(Has("memory/c/memory.memsw.limit_in_bytes"));
}

TEST_F(FakeTreeTest, V1RefusesBadRequestsBeforeWriting) {
  PutV1Cgroup("c");
  std::unique_ptr<CgroupManager> m = OpenV1();
  ASSERT_NE(m, nullptr);
  CgroupResources res;
  res.cpu_shares = 2;
  res.unified = {{"memory.high", "1000"}};
  absl::Status s = m->Apply("/c", res);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("memory.high"));

  res.unified.clear();
  for (const char* size : {"3MB", "2M", "MB", "2/MB"}) {
    res.hugepage_limits = {{size, 1}};
    s = m->Apply("/c", res);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << size;
    EXPECT_THAT(s.message(), HasSubstr(absl::StrCat("`", size, "`")));
  }

  res.hugepage_limits.clear();
  res.memory_limit_in_bytes = 2 << 20;
  res.memory_swap_limit_in_bytes = 1 << 20;
  s = m->Apply("/c", res);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("memory_swap_limit_in_bytes"));

  EXPECT_EQ(m->Apply("/../c", res).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Get("cpu,cpuacct/c/cpu.shares"), "1024");
}

TEST_F(FakeTreeTest, V1WithoutHugetlbIgnoresHugepageLimits) {
  PutV1Cgroup("c");
  std::filesystem::remove_all(root_ + "/hugetlb");
  CgroupResources res;
  res.hugepage_limits = {{"2MB", 0}, {"1GB", 0}};
  EXPECT_TRUE(OpenV1()->Apply("/c", res).ok());
  res.hugepage_limits = {{"2 MB", 0}};
  EXPECT_EQ(OpenV1()->Apply("/c", res).code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(FakeTreeTest, V1Stats) {
  PutV1Cgroup("c");
  Put("cpu,cpuacct/c/cpuacct.usage", "123456789\n");
  Put("memory/c/memory.usage_in_bytes", "10000\n");
  Put("memory/c/memory.stat",
      "inactive_file 1\nrss 2\npgfault 3\n"
      "total_inactive_file 3000\ntotal_rss 4000\ntotal_pgfault 50\ntotal_pgmajfault 6\n");
  Put("memory/c/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n");
  Put("pids/c/pids.current", "3\n");
  Put("pids/c/cgroup.procs", "12\n34\n");
  std::unique_ptr<CgroupManager> m = OpenV1();
  ASSERT_NE(m, nullptr);
  absl::StatusOr<CgroupStats> st = m->Stats("/c");
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->cpu_usage_ns, 123456789u);
  EXPECT_EQ(st->memory_usage_bytes, 10000u);
  EXPECT_EQ(st->memory_working_set_bytes, 7000u);
  EXPECT_EQ(st->memory_rss_bytes, 4000u);
  EXPECT_EQ(st->page_faults, 50u);
  EXPECT_EQ(st->major_page_faults, 6u);
  EXPECT_EQ(st->pids_current, 3u);
  EXPECT_EQ(st->oom_kills, 2u);
  absl::StatusOr<std::vector<int>> pids = m->Pids("/c");
  ASSERT_TRUE(pids.ok()) << pids.status();
  EXPECT_THAT(*pids, ElementsAre(12, 34));
  EXPECT_EQ(m->Stats("/gone").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(m->Pids("/gone").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(FakeTreeTest, RemoveGoesDeepestFirstAndIsIdempotent) {
  // Bare directories: a plain directory with files in it would not rmdir.
  std::unique_ptr<CgroupManager> m =
      NewCgroupV1Manager({{"cpu", root_ + "/cpu"}, {"memory", root_ + "/memory/"}});
  std::filesystem::create_directories(root_ + "/cpu");
  std::filesystem::create_directories(root_ + "/memory");
  for (const char* path : {"/pod/c1", "/pod/c2/x", "/other"}) {
    absl::Status s = m->Create(path);
    ASSERT_TRUE(s.ok()) << s;
  }
  ASSERT_TRUE(m->Exists("/pod/c2/x"));
  absl::Status s = m->Remove("/pod");
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_FALSE(m->Exists("/pod"));
  EXPECT_FALSE(Has("cpu/pod"));
  EXPECT_FALSE(Has("memory/pod"));
  EXPECT_TRUE(m->Exists("/other"));
  EXPECT_TRUE(m->Remove("/pod").ok());
  EXPECT_EQ(m->Remove("/").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(m->Remove("/pod/..").code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(FakeTreeTest, RemoveRefusesToKillTheCaller) {
  std::unique_ptr<CgroupManager> m = NewCgroupV1Manager({{"memory", root_ + "/memory"}});
  Put("memory/pod/cgroup.procs", absl::StrCat(::getpid(), "\n"));
  absl::Status s = m->Remove("/pod");
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("calling process"));
}

class FakeV2Test : public FakeTreeTest {
 protected:
  void PutV2Cgroup(const std::string& cg, absl::string_view controllers) {
    const std::string sub = cg.empty() ? "" : cg + "/";
    Put(sub + "cgroup.controllers", absl::StrCat(controllers, "\n"));
    Put(sub + "cgroup.subtree_control", "\n");
    Put(sub + "cgroup.procs", "");
    Put(sub + "cpu.stat", "usage_usec 0\n");
  }
};

TEST_F(FakeV2Test, CreateEnablesControllersTopDown) {
  PutV2Cgroup("", "cpuset cpu io memory hugetlb pids rdma misc");
  PutV2Cgroup("k", "cpu memory pids");
  Put("k/cgroup.subtree_control", "memory\n");
  PutV2Cgroup("k/p", "cpu memory pids");
  std::unique_ptr<CgroupManager> m = NewCgroupV2Manager(root_);
  EXPECT_EQ(m->Version(), 2);
  absl::Status s = m->Create("/k/p/c");
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(Get("cgroup.subtree_control"), "+cpu +cpuset +memory +pids +hugetlb +io");
  EXPECT_EQ(Get("k/cgroup.subtree_control"), "+cpu +pids");
  EXPECT_EQ(Get("k/p/cgroup.subtree_control"), "+cpu +memory +pids");
  EXPECT_TRUE(Has("k/p/c"));
  EXPECT_TRUE(m->Exists("/k/p/c"));
  EXPECT_THAT(m->ProcsFiles("/k/p/c"), ElementsAre(root_ + "/k/p/c/cgroup.procs"));
  EXPECT_EQ(m->OomCounterFile("/k/p/c"), root_ + "/k/p/c/memory.events");
}

TEST_F(FakeV2Test, ApplyWritesEachFile) {
  PutV2Cgroup("c", "cpuset cpu memory hugetlb pids");
  for (const char* file : {"cpu.weight", "cpuset.cpus", "cpuset.mems", "memory.max",
                           "memory.swap.max", "pids.max", "hugetlb.2MB.max", "memory.high"}) {
    Put(absl::StrCat("c/", file), "");
  }
  Put("c/cpu.max", "max 100000\n");
  std::unique_ptr<CgroupManager> m = NewCgroupV2Manager(root_);
  CgroupResources res;
  res.cpu_shares = 1024;
  res.cpu_quota = 50000;
  res.cpuset_cpus = "0-1";
  res.cpuset_mems = "0";
  res.memory_limit_in_bytes = 100 << 20;
  res.memory_swap_limit_in_bytes = 150 << 20;
  res.pids_limit = 0;
  res.hugepage_limits = {{"2MB", 2 << 20}};
  res.unified = {{"memory.high", "90000000"}};
  absl::Status s = m->Apply("/c", res);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(Get("c/cpu.weight"), "39");
  EXPECT_EQ(Get("c/cpu.max"), "50000 100000");
  EXPECT_EQ(Get("c/cpuset.cpus"), "0-1");
  EXPECT_EQ(Get("c/cpuset.mems"), "0");
  EXPECT_EQ(Get("c/memory.max"), "104857600");
  EXPECT_EQ(Get("c/memory.swap.max"), "52428800");
  EXPECT_EQ(Get("c/pids.max"), "max");
  EXPECT_EQ(Get("c/hugetlb.2MB.max"), "2097152");
  EXPECT_EQ(Get("c/memory.high"), "90000000");

  CgroupResources more;
  more.cpu_period = 20000;  // quota kept
  more.memory_limit_in_bytes = 0;
  more.memory_swap_limit_in_bytes = -1;
  s = m->Apply("/c", more);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(Get("c/cpu.max"), "50000 20000");
  EXPECT_EQ(Get("c/memory.max"), "max");
  EXPECT_EQ(Get("c/memory.swap.max"), "max");
  more = {};
  more.cpu_quota = -1;  // period kept
  ASSERT_TRUE(m->Apply("/c", more).ok());
  EXPECT_EQ(Get("c/cpu.max"), "max 20000");
}

TEST_F(FakeV2Test, ApplyRefusesBadRequestsBeforeWriting) {
  PutV2Cgroup("c", "cpu memory hugetlb");
  Put("c/cpu.weight", "100\n");
  Put("c/memory.swap.max", "max\n");
  Put("c/hugetlb.2MB.max", "max\n");
  std::unique_ptr<CgroupManager> m = NewCgroupV2Manager(root_);
  CgroupResources res;
  res.cpu_shares = 2;
  for (const char* key :
       {"", ".", "..", "../memory.max", "sub/memory.max", "cgroup.procs", "cgroup.subtree_control",
        "cgroup.kill", "memory", "pids.max", "devices.allow"}) {
    res.unified = {{key, "1"}};
    absl::Status s = m->Apply("/c", res);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << key;
    EXPECT_THAT(s.message(), HasSubstr(absl::StrCat("`", key, "`")));
  }
  res.unified.clear();
  res.hugepage_limits = {{"1GB", 0}};  // the kernel here has no 1GB pages
  absl::Status s = m->Apply("/c", res);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("`1GB`"));
  res.hugepage_limits.clear();
  res.memory_swap_limit_in_bytes = 1 << 20;  // swap without a memory limit
  s = m->Apply("/c", res);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("memory_limit_in_bytes"));
  res.memory_limit_in_bytes = 2 << 20;  // swap below memory
  EXPECT_EQ(m->Apply("/c", res).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Get("c/cpu.weight"), "100");
}

TEST_F(FakeV2Test, Stats) {
  PutV2Cgroup("c", "cpu memory pids");
  Put("c/cpu.stat", "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n");
  Put("c/memory.current", "8192\n");
  Put("c/memory.stat", "anon 4096\nfile 2048\ninactive_file 1024\npgfault 9\npgmajfault 1\n");
  Put("c/memory.events", "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\noom_group_kill 0\n");
  Put("c/pids.current", "2\n");
  Put("c/cgroup.procs", "7\n");
  std::unique_ptr<CgroupManager> m = NewCgroupV2Manager(root_);
  absl::StatusOr<CgroupStats> st = m->Stats("/c");
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->cpu_usage_ns, 1500000u);
  EXPECT_EQ(st->memory_usage_bytes, 8192u);
  EXPECT_EQ(st->memory_working_set_bytes, 7168u);
  EXPECT_EQ(st->memory_rss_bytes, 4096u);
  EXPECT_EQ(st->page_faults, 9u);
  EXPECT_EQ(st->major_page_faults, 1u);
  EXPECT_EQ(st->pids_current, 2u);
  EXPECT_EQ(st->oom_kills, 1u);
  EXPECT_THAT(*m->Pids("/c"), ElementsAre(7));
  EXPECT_EQ(m->Stats("/gone").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(m->Create("relative").code(), absl::StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------------------
// The real kernel.

std::string RandomName() {
  std::random_device rd;
  return absl::StrCat("/podshim-test-", ::getpid(), "-", absl::Hex(rd()));
}

// A child that joins the cgroup through `procs_files`, reports it on a pipe
// and waits to be killed.
pid_t SpawnJoiner(const std::vector<std::string>& procs_files) {
  std::vector<const char*> files;
  files.reserve(procs_files.size());
  for (const std::string& f : procs_files) files.push_back(f.c_str());
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return -1;
  pid_t pid = ::fork();
  if (pid == 0) {
    // Async-signal-safe only from here.
    for (const char* f : files) {
      int fd = ::open(f, O_WRONLY | O_CLOEXEC);
      if (fd < 0 || ::write(fd, "0", 1) != 1) ::_exit(1);
      ::close(fd);
    }
    if (::write(p[1], "j", 1) != 1) ::_exit(1);
    for (;;) ::pause();
  }
  ::close(p[1]);
  char c = 0;
  ssize_t n = -1;
  if (pid > 0) {
    do {
      n = ::read(p[0], &c, 1);
    } while (n < 0 && errno == EINTR);
  }
  ::close(p[0]);
  if (pid > 0 && n != 1) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return -1;
  }
  return pid;
}

class RealCgroupTest : public ::testing::Test {
 protected:
  void OpenReal(const std::string& root, int want_version) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    absl::StatusOr<std::unique_ptr<CgroupManager>> m = OpenCgroups(root);
    if (!m.ok() || (*m)->Version() != want_version) {
      GTEST_SKIP() << root << " is not a cgroup v" << want_version << " root";
    }
    mgr_ = *std::move(m);
    top_ = RandomName();
  }
  void TearDown() override {
    if (child_ > 0) {
      ::kill(child_, SIGKILL);
      ::waitpid(child_, nullptr, 0);
    }
    if (mgr_ != nullptr) {
      absl::Status s = mgr_->Remove(top_);
      EXPECT_TRUE(s.ok()) << s;
      EXPECT_FALSE(mgr_->Exists(top_));
    }
  }

  // Waits for the joined child; true if SIGKILL ended it.
  bool ChildWasKilled() {
    int status = 0;
    pid_t got = ::waitpid(child_, &status, 0);
    child_ = -1;
    return got > 0 && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
  }

  std::unique_ptr<CgroupManager> mgr_;
  std::string top_;
  pid_t child_ = -1;
};

class RealV1Test : public RealCgroupTest {
 protected:
  void SetUp() override { OpenReal("/sys/fs/cgroup", 1); }
  std::string Kernel(const std::string& controller, const std::string& file) const {
    return Trimmed(absl::StrCat("/sys/fs/cgroup/", controller, top_, "/a/", file));
  }
};

TEST_F(RealV1Test, LimitsReachTheKernel) {
  const std::string a = top_ + "/a";
  absl::Status s = mgr_->Create(a);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(Trimmed("/sys/fs/cgroup/cpuset" + top_ + "/cpuset.cpus"),
            Trimmed("/sys/fs/cgroup/cpuset/cpuset.cpus"));
  EXPECT_EQ(Kernel("cpuset", "cpuset.mems"), Trimmed("/sys/fs/cgroup/cpuset/cpuset.mems"));

  CgroupResources res;
  res.cpu_shares = 512;
  res.cpu_period = 100000;
  res.cpu_quota = 50000;
  res.memory_limit_in_bytes = 64 << 20;
  res.memory_swap_limit_in_bytes = 128 << 20;
  res.pids_limit = 10;
  res.cpuset_cpus = "0";
  res.cpuset_mems = "0";
  s = mgr_->Apply(a, res);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(Kernel("cpu", "cpu.shares"), "512");
  EXPECT_EQ(Kernel("cpu", "cpu.cfs_period_us"), "100000");
  EXPECT_EQ(Kernel("cpu", "cpu.cfs_quota_us"), "50000");
  EXPECT_EQ(Kernel("memory", "memory.limit_in_bytes"), "67108864");
  const bool memsw =
      std::filesystem::exists("/sys/fs/cgroup/memory" + a + "/memory.memsw.limit_in_bytes");
  if (memsw) {
    EXPECT_EQ(Kernel("memory", "memory.memsw.limit_in_bytes"), "134217728");
  }
  EXPECT_EQ(Kernel("pids", "pids.max"), "10");
  EXPECT_EQ(Kernel("cpuset", "cpuset.cpus"), "0");

  // Up past the old memory+swap limit, then down below the old memory limit:
  // the kernel refuses either unless the order is right.
  res = {};
  res.memory_limit_in_bytes = 256 << 20;
  res.memory_swap_limit_in_bytes = 512 << 20;
  s = mgr_->Apply(a, res);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(Kernel("memory", "memory.limit_in_bytes"), "268435456");
  if (memsw) {
    EXPECT_EQ(Kernel("memory", "memory.memsw.limit_in_bytes"), "536870912");
  }
  res.memory_limit_in_bytes = 32 << 20;
  res.memory_swap_limit_in_bytes = 32 << 20;
  s = mgr_->Apply(a, res);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(Kernel("memory", "memory.limit_in_bytes"), "33554432");
  if (memsw) {
    EXPECT_EQ(Kernel("memory", "memory.memsw.limit_in_bytes"), "33554432");
  }

  res = {};
  res.cpu_quota = 0;
  res.memory_limit_in_bytes = -1;
  res.memory_swap_limit_in_bytes = -1;
  res.pids_limit = 0;
  s = mgr_->Apply(a, res);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(Kernel("cpu", "cpu.cfs_quota_us"), "-1");
  EXPECT_EQ(Kernel("memory", "memory.limit_in_bytes"), kUnlimitedV1);
  EXPECT_EQ(Kernel("pids", "pids.max"), "max");

  // The kernel's own refusal carries the file and the value.
  res = {};
  res.cpuset_cpus = "4096";
  s = mgr_->Apply(a, res);
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("cpuset.cpus"));
  EXPECT_THAT(s.message(), HasSubstr("4096"));
}

// A new leaf under a parent that is set up takes Create's short path; a
// parent whose cpuset is empty (made by someone else) sends it down the
// level-by-level walk, which fills the parent in first.
TEST_F(RealV1Test, CreateUnderExistingParentsCopiesCpuset) {
  const std::string root_cpus = Trimmed("/sys/fs/cgroup/cpuset/cpuset.cpus");
  const std::string root_mems = Trimmed("/sys/fs/cgroup/cpuset/cpuset.mems");
  ASSERT_TRUE(mgr_->Create(top_ + "/a").ok());
  absl::Status s = mgr_->Create(top_ + "/a/b");
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_TRUE(mgr_->Exists(top_ + "/a/b"));
  for (const std::string& procs : mgr_->ProcsFiles(top_ + "/a/b")) {
    EXPECT_TRUE(std::filesystem::exists(procs)) << procs;
  }
  const std::string cpuset = "/sys/fs/cgroup/cpuset" + top_;
  EXPECT_EQ(Trimmed(cpuset + "/a/b/cpuset.cpus"), root_cpus);
  EXPECT_EQ(Trimmed(cpuset + "/a/b/cpuset.mems"), root_mems);
  EXPECT_TRUE(mgr_->Create(top_ + "/a/b").ok());  // idempotent

  // Someone else's parent, made in the cpuset hierarchy only, cpus and mems empty.
  ASSERT_EQ(::mkdir((cpuset + "/c").c_str(), 0755), 0);
  ASSERT_EQ(Trimmed(cpuset + "/c/cpuset.cpus"), "");
  s = mgr_->Create(top_ + "/c/d");
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(Trimmed(cpuset + "/c/cpuset.cpus"), root_cpus);
  EXPECT_EQ(Trimmed(cpuset + "/c/d/cpuset.cpus"), root_cpus);
  EXPECT_EQ(Trimmed(cpuset + "/c/d/cpuset.mems"), root_mems);
  EXPECT_TRUE(mgr_->Exists(top_ + "/c/d"));
}

TEST(DeviceRules, TextAndDefaults) {
  EXPECT_EQ(DeviceRuleText({'c', 1, 3, "rwm"}), "c 1:3 rwm");
  EXPECT_EQ(DeviceRuleText({'b', -1, -1, "m"}), "b *:* m");
  EXPECT_EQ(DeviceRuleText({'c', 136, -1, "rw"}), "c 136:* rw");
  EXPECT_EQ(DeviceRuleText({}), "a *:* rwm");
  std::vector<DeviceRule> d = DefaultDeviceRules();
  auto has = [&d](const DeviceRule& r) { return std::find(d.begin(), d.end(), r) != d.end(); };
  EXPECT_TRUE(has({'c', 1, 3, "rwm"}));     // /dev/null
  EXPECT_TRUE(has({'c', 5, 2, "rwm"}));     // /dev/ptmx
  EXPECT_TRUE(has({'c', 136, -1, "rwm"}));  // the pts
  EXPECT_TRUE(has({'b', -1, -1, "m"}));     // mknod only
  for (const DeviceRule& r : d) EXPECT_NE(r.type, 'a') << DeviceRuleText(r);
}

// After RestrictDevices the kernel lists exactly the rules given.
TEST_F(RealV1Test, RestrictDevicesLeavesOnlyTheRulesGiven) {
  const std::string a = top_ + "/a";
  ASSERT_TRUE(mgr_->Create(a).ok());
  const std::string list = "/sys/fs/cgroup/devices" + a + "/devices.list";
  if (!std::filesystem::exists(list)) GTEST_SKIP() << "no v1 devices hierarchy";
  EXPECT_EQ(Trimmed(list), "a *:* rwm");
  std::vector<DeviceRule> rules = {{'c', 1, 3, "rwm"}, {'b', 7, 0, "r"}};
  absl::Status s = mgr_->RestrictDevices(a, rules);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(Trimmed(list), "c 1:3 rwm\nb 7:0 r");
  EXPECT_FALSE(mgr_->RestrictDevices("relative", rules).ok());
}

TEST_F(RealV1Test, ProcessJoinsAndRemoveKillsIt) {
  const std::string a = top_ + "/a";
  ASSERT_TRUE(mgr_->Create(a).ok());
  child_ = SpawnJoiner(mgr_->ProcsFiles(a));
  ASSERT_GT(child_, 0);
  absl::StatusOr<std::vector<int>> pids = mgr_->Pids(a);
  ASSERT_TRUE(pids.ok()) << pids.status();
  EXPECT_THAT(*pids, ElementsAre(child_));
  absl::StatusOr<CgroupStats> st = mgr_->Stats(a);
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->pids_current, 1u);
  EXPECT_EQ(st->oom_kills, 0u);
  EXPECT_THAT(Trimmed(mgr_->OomCounterFile(a)), HasSubstr("oom_kill 0"));

  absl::Status s = mgr_->Remove(top_);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_TRUE(ChildWasKilled());
  EXPECT_FALSE(mgr_->Exists(top_));
  for (const char* c : {"cpu", "cpuacct", "cpuset", "memory", "pids", "devices", "freezer"}) {
    EXPECT_FALSE(std::filesystem::exists(absl::StrCat("/sys/fs/cgroup/", c, top_))) << c;
  }
}

// The hybrid host's cgroup2 mount. It may offer no controllers: only what any
// cgroup2 has (creation, cgroup.procs, cpu.stat, cgroup.kill, removal) is
// tested, and the root's subtree_control is put back as it was.
class RealV2Test : public RealCgroupTest {
 protected:
  static constexpr const char* kRoot = "/sys/fs/cgroup/unified";
  void SetUp() override {
    struct statfs st;
    if (::statfs(kRoot, &st) != 0 ||
        st.f_type != static_cast<decltype(st.f_type)>(CGROUP2_SUPER_MAGIC)) {
      GTEST_SKIP() << kRoot << " is not a cgroup2 mount";
    }
    saved_subtree_ = Trimmed(absl::StrCat(kRoot, "/cgroup.subtree_control"));
    OpenReal(kRoot, 2);
  }
  void TearDown() override {
    RealCgroupTest::TearDown();
    if (mgr_ == nullptr) return;  // skipped before anything changed
    std::vector<std::string> before = absl::StrSplit(saved_subtree_, ' ', absl::SkipEmpty());
    for (absl::string_view c : absl::StrSplit(
             Trimmed(absl::StrCat(kRoot, "/cgroup.subtree_control")), ' ', absl::SkipEmpty())) {
      if (std::find(before.begin(), before.end(), c) != before.end()) continue;
      std::ofstream(absl::StrCat(kRoot, "/cgroup.subtree_control")) << "-" << c;
    }
    EXPECT_EQ(Trimmed(absl::StrCat(kRoot, "/cgroup.subtree_control")), saved_subtree_);
  }
  std::string saved_subtree_;
};

TEST_F(RealV2Test, CreateJoinRemove) {
  const std::string a = top_ + "/a";
  absl::Status s = mgr_->Create(a);
  if (!s.ok()) GTEST_SKIP() << "cgroup2 at " << kRoot << " does not take new cgroups: " << s;
  EXPECT_TRUE(std::filesystem::is_directory(absl::StrCat(kRoot, a)));
  child_ = SpawnJoiner(mgr_->ProcsFiles(a));
  ASSERT_GT(child_, 0);
  absl::StatusOr<std::vector<int>> pids = mgr_->Pids(a);
  ASSERT_TRUE(pids.ok()) << pids.status();
  EXPECT_THAT(*pids, ElementsAre(child_));
  absl::StatusOr<CgroupStats> st = mgr_->Stats(a);
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_THAT(*mgr_->Pids(top_), testing::IsEmpty());
  // hugetlb is the one controller such a mount may offer.
  if (std::filesystem::exists(absl::StrCat(kRoot, a, "/hugetlb.2MB.max"))) {
    CgroupResources res;
    res.hugepage_limits = {{"2MB", 4 << 20}};
    s = mgr_->Apply(a, res);
    ASSERT_TRUE(s.ok()) << s;
    EXPECT_EQ(Trimmed(absl::StrCat(kRoot, a, "/hugetlb.2MB.max")), "4194304");
    res.hugepage_limits = {{"4MB", 0}};
    EXPECT_EQ(mgr_->Apply(a, res).code(), absl::StatusCode::kInvalidArgument);
  }

  s = mgr_->Remove(top_);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_TRUE(ChildWasKilled());
  EXPECT_FALSE(mgr_->Exists(top_));
  EXPECT_TRUE(mgr_->Remove(top_).ok());
}

}  // namespace
}  // namespace podshim::runtime
