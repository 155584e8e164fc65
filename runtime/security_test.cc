#include "runtime/security.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "runtime/files.h"
#include "runtime/unique_fd.h"

namespace podshim::runtime {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

// Runs `body` in a forked child, so that whatever it changes about its
// process stays there. Returns what the child reported: "" when all is well.
std::string RunInChild(const std::function<std::string()>& body) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return "pipe2 failed";
  UniqueFd read_end(fds[0]), write_end(fds[1]);
  const pid_t pid = ::fork();
  if (pid < 0) return "fork failed";
  if (pid == 0) {
    const std::string report = body();
    if (!report.empty() && ::write(write_end.get(), report.data(), report.size()) < 0) _exit(3);
    _exit(report.empty() ? 0 : 1);
  }
  write_end.Reset();
  std::string report;
  char buf[512];
  ssize_t n = 0;
  while ((n = ::read(read_end.get(), buf, sizeof(buf))) > 0) report.append(buf, n);
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return "waitpid failed";
  if (!WIFEXITED(status))
    return absl::StrCat(report, " (child killed by signal ", WTERMSIG(status), ")");
  if (WEXITSTATUS(status) != 0 && report.empty()) {
    return absl::StrCat("child exited ", WEXITSTATUS(status));
  }
  return report;
}

// "" when `errno` after `rc` is the expected failure, else a description.
std::string ExpectErrno(const char* what, long rc, int expected) {
  if (rc == -1 && errno == expected) return "";
  return absl::StrCat(what, ": rc=", rc, " errno=", ErrnoName(errno), ", want ",
                      ErrnoName(expected));
}

// The value of `key` in /proc/self/status, whitespace normalised to one space.
std::string ProcStatus(absl::string_view key) {
  absl::StatusOr<std::string> text = ReadFile("/proc/self/status");
  if (!text.ok()) return text.status().ToString();
  for (absl::string_view line : absl::StrSplit(*text, '\n')) {
    if (absl::ConsumePrefix(&line, key) && absl::ConsumePrefix(&line, ":")) {
      std::vector<absl::string_view> words =
          absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipWhitespace());
      return absl::StrJoin(words, " ");
    }
  }
  return "";
}

// --- capabilities ----------------------------------------------------------

int CapLastCap() {
  std::ifstream in("/proc/sys/kernel/cap_last_cap");
  int last = 0;
  in >> last;
  return last;
}

TEST(CapabilitiesTest, DefaultsAreContainerdsFourteen) {
  std::vector<std::string> caps = DefaultCapabilities();
  EXPECT_EQ(caps.size(), 14u);
  EXPECT_TRUE(std::is_sorted(caps.begin(), caps.end()));
  EXPECT_THAT(caps, Contains("CAP_NET_BIND_SERVICE"));
  EXPECT_THAT(caps, Contains("CAP_AUDIT_WRITE"));
  EXPECT_THAT(caps, Not(Contains("CAP_SYS_ADMIN")));
}

TEST(CapabilitiesTest, AllFollowsTheKernel) {
  std::vector<std::string> caps = AllCapabilities();
  ASSERT_EQ(caps.size(), static_cast<size_t>(CapLastCap() + 1));
  EXPECT_EQ(caps[0], "CAP_CHOWN");
  EXPECT_EQ(caps[21], "CAP_SYS_ADMIN");
}

TEST(CapabilitiesTest, ResolveAddsAndDropsAnySpelling) {
  CapabilityRequest req;
  req.add = {"sys_admin", "CAP_net_admin"};
  req.drop = {"chown", "Cap_Kill"};
  absl::StatusOr<std::vector<std::string>> caps = ResolveCapabilities(req);
  ASSERT_TRUE(caps.ok()) << caps.status();
  EXPECT_EQ(caps->size(), 14u);
  EXPECT_TRUE(std::is_sorted(caps->begin(), caps->end()));
  EXPECT_THAT(*caps, Contains("CAP_SYS_ADMIN"));
  EXPECT_THAT(*caps, Contains("CAP_NET_ADMIN"));
  EXPECT_THAT(*caps, Not(Contains("CAP_CHOWN")));
  EXPECT_THAT(*caps, Not(Contains("CAP_KILL")));

  EXPECT_EQ(*ResolveCapabilities({}), DefaultCapabilities());
}

TEST(CapabilitiesTest, ResolveAllFollowsContainerdOrder) {
  CapabilityRequest drop_all{false, {"NET_RAW"}, {"all"}};
  EXPECT_THAT(*ResolveCapabilities(drop_all), ElementsAre("CAP_NET_RAW"));

  CapabilityRequest add_all{false, {"ALL"}, {"CHOWN"}};
  std::vector<std::string> caps = *ResolveCapabilities(add_all);
  EXPECT_EQ(caps.size(), HeldCapabilities().size() - 1);
  EXPECT_THAT(caps, Not(Contains("CAP_CHOWN")));

  CapabilityRequest both{false, {"SYS_TIME"}, {"SYS_TIME"}};
  EXPECT_THAT(*ResolveCapabilities(both), Not(Contains("CAP_SYS_TIME")));

  CapabilityRequest privileged{true, {}, {"ALL"}};
  EXPECT_EQ(*ResolveCapabilities(privileged), HeldCapabilities());
  EXPECT_LE(HeldCapabilities().size(), AllCapabilities().size());
}

TEST(CapabilitiesTest, ResolveRejectsUnknownNames) {
  for (const char* bad : {"NO_SUCH_CAP", "12", "", "CAP_"}) {
    absl::StatusOr<std::vector<std::string>> caps =
        ResolveCapabilities(CapabilityRequest{false, {bad}, {}});
    ASSERT_FALSE(caps.ok()) << bad;
    EXPECT_EQ(caps.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(caps.status().message(), HasSubstr(absl::StrCat("`", bad, "`")));
  }
  EXPECT_FALSE(ResolveCapabilities(CapabilityRequest{false, {}, {"BOGUS"}}).ok());
}

TEST(ApplyUserTest, BecomesUserWithOnlyTheGivenCapabilities) {
  std::string report = RunInChild([]() -> std::string {
    ResolvedUser user{1000, 1001, {1001, 2000, 3000}, "/home/app"};
    absl::Status st = ApplyUserAndCapabilities(user, {"CAP_NET_BIND_SERVICE"}, true);
    if (!st.ok()) return st.ToString();
    std::string out;
    const std::pair<const char*, const char*> want[] = {
        {"Uid", "1000 1000 1000 1000"},
        {"Gid", "1001 1001 1001 1001"},
        {"Groups", "1001 2000 3000"},
        {"CapInh", "0000000000000000"},
        {"CapPrm", "0000000000000400"},
        {"CapEff", "0000000000000400"},
        {"CapBnd", "0000000000000400"},
        {"CapAmb", "0000000000000000"},
        {"NoNewPrivs", "1"},
    };
    for (const auto& [key, value] : want) {
      std::string got = ProcStatus(key);
      if (got != value) absl::StrAppend(&out, key, "=", got, " want ", value, "; ");
    }
    // The capability works: a port below 1024 can be bound as uid 1000.
    UniqueFd sock(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(1);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 &&
        errno == EACCES) {
      absl::StrAppend(&out, "bind to port 1: EACCES; ");
    }
    // And no other: chown needs CAP_CHOWN.
    absl::StrAppend(&out, ExpectErrno("setuid(0)", ::setuid(0), EPERM));
    return out;
  });
  EXPECT_EQ(report, "");
}

TEST(ApplyUserTest, RootKeepsListedCapabilitiesWithoutNoNewPrivs) {
  std::string report = RunInChild([]() -> std::string {
    absl::Status st = ApplyUserAndCapabilities({0, 0, {0}, "/"}, {"CAP_CHOWN", "CAP_KILL"}, false);
    if (!st.ok()) return st.ToString();
    std::string out;
    for (const char* key : {"CapEff", "CapPrm", "CapBnd"}) {
      if (ProcStatus(key) != "0000000000000021") absl::StrAppend(&out, key, "=", ProcStatus(key));
    }
    if (ProcStatus("NoNewPrivs") != "0") absl::StrAppend(&out, " NoNewPrivs set");
    if (ProcStatus("Groups") != "0") absl::StrAppend(&out, " Groups=", ProcStatus("Groups"));
    return out;
  });
  EXPECT_EQ(report, "");
}

TEST(ApplyUserTest, UnknownCapabilityChangesNothing) {
  std::string report = RunInChild([]() -> std::string {
    const std::string before = ProcStatus("CapBnd");
    absl::Status st = ApplyUserAndCapabilities({1000, 1000, {}, "/"}, {"CAP_NOPE"}, true);
    if (st.code() != absl::StatusCode::kInvalidArgument) return st.ToString();
    if (ProcStatus("Uid") != "0 0 0 0" || ProcStatus("CapBnd") != before) return "changed";
    return "";
  });
  EXPECT_EQ(report, "");
}

// --- rlimits ---------------------------------------------------------------

TEST(RlimitTest, NamesResolve) {
  EXPECT_EQ(*RlimitResource("RLIMIT_NOFILE"), RLIMIT_NOFILE);
  EXPECT_EQ(*RlimitResource("RLIMIT_RTTIME"), RLIMIT_RTTIME);
  for (const char* name :
       {"RLIMIT_AS", "RLIMIT_CORE", "RLIMIT_CPU", "RLIMIT_DATA", "RLIMIT_FSIZE", "RLIMIT_LOCKS",
        "RLIMIT_MEMLOCK", "RLIMIT_MSGQUEUE", "RLIMIT_NICE", "RLIMIT_NPROC", "RLIMIT_RSS",
        "RLIMIT_RTPRIO", "RLIMIT_SIGPENDING", "RLIMIT_STACK"}) {
    EXPECT_TRUE(RlimitResource(name).ok()) << name;
  }
  absl::StatusOr<int> bad = RlimitResource("RLIMIT_BOGUS");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("RLIMIT_BOGUS"));
}

TEST(RlimitTest, AppliesAllOrNothing) {
  std::string report = RunInChild([]() -> std::string {
    rlimit before{};
    ::getrlimit(RLIMIT_NOFILE, &before);
    absl::Status st = ApplyRlimits({{"RLIMIT_NOFILE", 100, 200}, {"RLIMIT_NOPE", 1, 1}});
    if (st.code() != absl::StatusCode::kInvalidArgument) return st.ToString();
    rlimit now{};
    ::getrlimit(RLIMIT_NOFILE, &now);
    if (now.rlim_cur != before.rlim_cur) return "changed on error";
    st = ApplyRlimits({{"RLIMIT_NOFILE", 100, 200}, {"RLIMIT_CORE", 0, RLIM_INFINITY}});
    if (!st.ok()) return st.ToString();
    ::getrlimit(RLIMIT_NOFILE, &now);
    if (now.rlim_cur != 100 || now.rlim_max != 200) return "NOFILE not set";
    ::getrlimit(RLIMIT_CORE, &now);
    if (now.rlim_cur != 0 || now.rlim_max != RLIM_INFINITY) return "CORE not set";
    return "";
  });
  EXPECT_EQ(report, "");
}

// --- users -----------------------------------------------------------------

TEST(UsersTest, ParsePasswdSkipsWhatItCannotRead) {
  std::vector<PasswdEntry> users = ParsePasswd(
      "# comment\n"
      "\n"
      "root:x:0:0:root:/root:/bin/sh\r\n"
      "broken line\n"
      "nouid:x:abc:0::/:/bin/sh\n"
      "neg:x:-1:0::/:/bin/sh\n"
      ":x:5:5::/:/bin/sh\n"
      "short:x:7:8\n"
      "app:x:1000:1000:App:/home/app:/bin/sh");
  ASSERT_EQ(users.size(), 3u);
  EXPECT_EQ(users[0].name, "root");
  EXPECT_EQ(users[0].home, "/root");
  EXPECT_EQ(users[1].name, "short");
  EXPECT_EQ(users[1].uid, 7u);
  EXPECT_EQ(users[1].gid, 8u);
  EXPECT_EQ(users[1].home, "");
  EXPECT_EQ(users[2].name, "app");
  EXPECT_EQ(users[2].uid, 1000u);
  EXPECT_EQ(users[2].home, "/home/app");
}

TEST(UsersTest, ParseGroupReadsMembers) {
  std::vector<GroupEntry> groups = ParseGroup(
      "root:x:0:\n"
      "# wheel:x:10:root\n"
      "staff:x:50:app, other ,,\n"
      "bad:x:zz:app\n"
      "nomembers:x:60");
  ASSERT_EQ(groups.size(), 3u);
  EXPECT_TRUE(groups[0].members.empty());
  EXPECT_EQ(groups[1].gid, 50u);
  EXPECT_THAT(groups[1].members, ElementsAre("app", "other"));
  EXPECT_EQ(groups[2].name, "nomembers");
}

class ResolveUserTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/podshim-users-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    std::filesystem::create_directories(dir_ + "/etc");
    Write("etc/passwd",
          "root:x:0:0:root:/root:/bin/sh\n"
          "app:x:1000:1000::/home/app:/bin/sh\n"
          "nohome:x:1001:1001:::\n");
    Write("etc/group",
          "root:x:0:\n"
          "app:x:1000:\n"
          "staff:x:50:app,root\n"
          "audio:x:63:app\n");
    root_ = UniqueFd(::open(dir_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    ASSERT_TRUE(root_.valid());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void Write(const std::string& rel, const std::string& text) {
    std::ofstream(dir_ + "/" + rel) << text;
  }
  absl::StatusOr<ResolvedUser> Resolve(const UserSpec& spec) {
    return ResolveUser(root_.get(), spec);
  }
  std::string dir_;
  UniqueFd root_;
};

TEST_F(ResolveUserTest, UidTakesGidFromPasswdAndGroupsFromGroupFile) {
  UserSpec spec;
  spec.uid = 1000;
  spec.supplemental_groups = {7, 50, 7};
  absl::StatusOr<ResolvedUser> u = Resolve(spec);
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->uid, 1000u);
  EXPECT_EQ(u->gid, 1000u);
  EXPECT_THAT(u->groups, ElementsAre(1000, 50, 63, 7));
  EXPECT_EQ(u->home, "/home/app");

  spec.gid = 5;
  u = Resolve(spec);
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->gid, 5u);
  EXPECT_THAT(u->groups, ElementsAre(5, 50, 63, 7));
}

TEST_F(ResolveUserTest, UnknownUidDefaultsToRootGroup) {
  UserSpec spec;
  spec.uid = 4242;
  absl::StatusOr<ResolvedUser> u = Resolve(spec);
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->uid, 4242u);
  EXPECT_EQ(u->gid, 0u);
  EXPECT_THAT(u->groups, ElementsAre(0));
  EXPECT_EQ(u->home, "/");
}

TEST_F(ResolveUserTest, UsernameMustExist) {
  UserSpec spec;
  spec.username = "root";
  absl::StatusOr<ResolvedUser> u = Resolve(spec);
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->uid, 0u);
  EXPECT_THAT(u->groups, ElementsAre(0, 50));
  EXPECT_EQ(u->home, "/root");

  spec.username = "nohome";
  u = Resolve(spec);
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->uid, 1001u);
  EXPECT_EQ(u->home, "/");

  spec.username = "ghost";
  u = Resolve(spec);
  EXPECT_EQ(u.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(u.status().message(), HasSubstr("`ghost`"));
}

TEST_F(ResolveUserTest, UidWinsOverNames) {
  UserSpec spec;
  spec.uid = 1001;
  spec.username = "ghost";
  spec.image_user = "app";
  absl::StatusOr<ResolvedUser> u = Resolve(spec);
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->uid, 1001u);
}

TEST_F(ResolveUserTest, ImageUserForms) {
  struct Case {
    const char* image_user;
    uint32_t uid, gid;
  };
  for (const Case& c :
       {Case{"app", 1000, 1000}, Case{"1000", 1000, 1000}, Case{"app:staff", 1000, 50},
        Case{"app:7", 1000, 7}, Case{"1000:50", 1000, 50}, Case{"1000:audio", 1000, 63},
        Case{"77:88", 77, 88}, Case{"77", 77, 0}}) {
    UserSpec spec;
    spec.image_user = c.image_user;
    absl::StatusOr<ResolvedUser> u = Resolve(spec);
    ASSERT_TRUE(u.ok()) << c.image_user << ": " << u.status();
    EXPECT_EQ(u->uid, c.uid) << c.image_user;
    EXPECT_EQ(u->gid, c.gid) << c.image_user;
    EXPECT_EQ(u->groups.front(), c.gid) << c.image_user;
  }
  UserSpec spec;
  spec.image_user = "app:staff";
  spec.gid = 9;  // run_as_group wins
  EXPECT_EQ(Resolve(spec)->gid, 9u);

  for (auto [image_user, code, name] :
       {std::tuple{"ghost", absl::StatusCode::kNotFound, "`ghost`"},
        std::tuple{"ghost:50", absl::StatusCode::kNotFound, "`ghost`"},
        std::tuple{"app:nogroup", absl::StatusCode::kNotFound, "`nogroup`"},
        std::tuple{":50", absl::StatusCode::kInvalidArgument, "`:50`"},
        std::tuple{"app:", absl::StatusCode::kInvalidArgument, "`app:`"}}) {
    spec = UserSpec{};
    spec.image_user = image_user;
    absl::StatusOr<ResolvedUser> u = Resolve(spec);
    EXPECT_EQ(u.status().code(), code) << image_user;
    EXPECT_THAT(u.status().message(), HasSubstr(name)) << image_user;
  }
}

TEST_F(ResolveUserTest, NoSpecIsRoot) {
  absl::StatusOr<ResolvedUser> u = Resolve(UserSpec{});
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->uid, 0u);
  EXPECT_EQ(u->gid, 0u);
  EXPECT_THAT(u->groups, ElementsAre(0));  // passwd has no entry for "no user": no membership
}

TEST_F(ResolveUserTest, MissingFilesAreEmptyDatabases) {
  std::filesystem::remove_all(dir_ + "/etc");
  UserSpec spec;
  spec.uid = 1000;
  spec.supplemental_groups = {3};
  absl::StatusOr<ResolvedUser> u = Resolve(spec);
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->gid, 0u);
  EXPECT_THAT(u->groups, ElementsAre(0, 3));
  spec = UserSpec{};
  spec.username = "app";
  EXPECT_EQ(Resolve(spec).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(ResolveUserTest, SymlinksResolveInsideTheRootfs) {
  // Both an absolute link and one climbing above "/" stay in the rootfs.
  std::filesystem::create_directories(dir_ + "/inner");
  Write("inner/passwd", "inside:x:3000:3001::/in:/bin/sh\n");
  Write("inner/group", "ingroup:x:3002:inside\n");
  std::filesystem::remove(dir_ + "/etc/passwd");
  std::filesystem::remove(dir_ + "/etc/group");
  std::filesystem::create_symlink("/inner/passwd", dir_ + "/etc/passwd");
  std::filesystem::create_symlink("../../../../../../../inner/group", dir_ + "/etc/group");
  UserSpec spec;
  spec.username = "inside";
  absl::StatusOr<ResolvedUser> u = Resolve(spec);
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->uid, 3000u);
  EXPECT_THAT(u->groups, ElementsAre(3001, 3002));
}

TEST_F(ResolveUserTest, MagicLinksAreNotFollowed) {
  // /proc/self/fd/N inside the rootfs (a proc mounted there, in a private
  // mount namespace of a child) would otherwise lead to any open file.
  std::filesystem::create_directories(dir_ + "/proc");
  std::filesystem::remove(dir_ + "/etc/passwd");
  Write("elsewhere", "inside:x:3000:3001::/in:/bin/sh\n");
  std::filesystem::create_symlink("/proc/self/fd/42", dir_ + "/etc/passwd");
  std::string report = RunInChild([this]() -> std::string {
    if (::unshare(CLONE_NEWNS) != 0 ||
        ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        ::mount("proc", (dir_ + "/proc").c_str(), "proc", 0, nullptr) != 0) {
      return "cannot mount proc";
    }
    const int fd = ::open((dir_ + "/elsewhere").c_str(), O_RDONLY);
    if (fd < 0 || ::dup2(fd, 42) != 42) return "cannot open fd 42";
    // Opened after the mount: root_ still sees the rootfs without it.
    UniqueFd rootfs(::open(dir_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    UserSpec spec;
    spec.username = "inside";
    absl::StatusOr<ResolvedUser> u = ResolveUser(rootfs.get(), spec);
    if (u.ok()) return "followed the magic link";
    if (!absl::StrContains(u.status().message(), "ELOOP")) return u.status().ToString();
    return "";
  });
  EXPECT_EQ(report, "");
}

TEST_F(ResolveUserTest, RefusesOddAndHugeFiles) {
  std::filesystem::remove(dir_ + "/etc/passwd");
  std::filesystem::create_directories(dir_ + "/etc/passwd");
  absl::StatusOr<ResolvedUser> u = Resolve(UserSpec{});
  EXPECT_EQ(u.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(u.status().message(), HasSubstr("/etc/passwd"));

  std::filesystem::remove(dir_ + "/etc/passwd");
  ASSERT_EQ(::mkfifo((dir_ + "/etc/passwd").c_str(), 0600), 0);
  EXPECT_EQ(Resolve(UserSpec{}).status().code(), absl::StatusCode::kFailedPrecondition);

  std::filesystem::remove(dir_ + "/etc/passwd");
  Write("etc/passwd", "");
  std::filesystem::resize_file(dir_ + "/etc/passwd", 5u << 20);
  u = Resolve(UserSpec{});
  EXPECT_EQ(u.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(u.status().message(), HasSubstr("larger than"));
}

// --- seccomp ---------------------------------------------------------------

using Json = nlohmann::json;

TEST(SeccompTest, RuntimeDefaultIsANormalisedAllowList) {
  const std::string& def = RuntimeDefaultSeccompJson();
  absl::StatusOr<std::string> parsed = ParseSeccompProfile(def);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(*parsed, def);
  Json j = Json::parse(def);
  // Everything not allowed is EPERM (issue 18 finding 8: an allow-list, not a
  // deny-list with a default of ALLOW).
  EXPECT_EQ(j["defaultAction"], "SCMP_ACT_ERRNO");
  EXPECT_EQ(j["defaultErrnoRet"], EPERM);
  std::vector<std::string> allowed;
  for (const Json& rule : j["syscalls"]) {
    if (rule["action"] == "SCMP_ACT_ALLOW" && !rule.contains("args")) {
      for (const Json& name : rule["names"]) allowed.push_back(name);
    }
  }
  for (const char* name : {"read", "write", "openat", "execve", "futex", "mmap", "getpid", "socket",
                           "epoll_wait", "rseq", "statx", "getrandom", "wait4"}) {
    EXPECT_THAT(allowed, Contains(name));
  }
  for (const char* name : {"ptrace",
                           "mount",
                           "unshare",
                           "setns",
                           "kexec_load",
                           "bpf",
                           "perf_event_open",
                           "keyctl",
                           "reboot",
                           "swapon",
                           "open_by_handle_at",
                           "userfaultfd",
                           "fsopen",
                           "move_mount",
                           "open_tree",
                           "io_uring_setup",
                           "init_module",
                           "clone",
                           "clone3",
                           "personality"}) {
    EXPECT_THAT(allowed, Not(Contains(name))) << name;
  }
}

TEST(SeccompTest, ParseNormalisesDockerProfiles) {
  absl::StatusOr<std::string> out = ParseSeccompProfile(R"({
    "defaultAction": "SCMP_ACT_ERRNO",
    "defaultErrnoRet": 1,
    "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]}],
    "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"],
    "syscalls": [
      {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW", "comment": "io",
       "includes": {}, "excludes": {}},
      {"name": "personality", "action": "SCMP_ACT_ALLOW",
       "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
      {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13, "args": null},
      {"names": ["kill"], "action": "SCMP_ACT_KILL_PROCESS"}
    ]})");
  ASSERT_TRUE(out.ok()) << out.status();
  Json j = Json::parse(*out);
  EXPECT_EQ(j["defaultErrnoRet"], 1);
  EXPECT_FALSE(j.contains("archMap"));
  EXPECT_EQ(j["architectures"].size(), 2u);
  ASSERT_EQ(j["syscalls"].size(), 4u);
  EXPECT_EQ(j["syscalls"][0],
            Json::parse(R"({"names":["read","write"],"action":"SCMP_ACT_ALLOW"})"));
  EXPECT_EQ(j["syscalls"][1]["names"], Json::parse(R"(["personality"])"));
  EXPECT_EQ(j["syscalls"][1]["args"],
            Json::parse(R"([{"index":0,"value":8,"valueTwo":0,"op":"SCMP_CMP_EQ"}])"));
  EXPECT_EQ(j["syscalls"][2]["errnoRet"], 13);
  EXPECT_FALSE(j["syscalls"][3].contains("errnoRet"));
  // Normalising twice changes nothing.
  EXPECT_EQ(*ParseSeccompProfile(*out), *out);
}

TEST(SeccompTest, ParseRejectsWhatItCannotEnforce) {
  struct Case {
    const char* json;
    const char* message;
  };
  for (
      const Case& c : {
          Case{"not json", "not valid JSON"},
          Case{"[]", "expected an object"},
          Case{"{}", "defaultAction: missing"},
          Case{R"({"defaultAction":"SCMP_ACT_NOTIFY"})", "`SCMP_ACT_NOTIFY`"},
          Case{R"({"defaultAction":"SCMP_ACT_ALLOW","defaultErrnoRet":1})", "defaultErrnoRet"},
          Case{R"({"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_Z80"]})",
               "`SCMP_ARCH_Z80`"},
          Case{R"({"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_X"]})",
               "`SECCOMP_FILTER_FLAG_X`"},
          Case{R"({"defaultAction":"SCMP_ACT_ALLOW","syscalls":{}})", "syscalls"},
          Case{R"({"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"action":"SCMP_ACT_LOG"}]})",
               "syscalls[0]: no syscall names"},
          Case{
              R"({"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["a"],"action":"SCMP_ACT_BOOM"}]})",
              "`SCMP_ACT_BOOM`"},
          Case{R"({"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["a"]}]})",
               "syscalls[0].action: missing"},
          Case{
              R"({"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["a"],"action":"SCMP_ACT_LOG","errnoRet":1}]})",
              "syscalls[0].errnoRet: not allowed with SCMP_ACT_LOG"},
          Case{
              R"({"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["a"],"action":"SCMP_ACT_ERRNO","errnoRet":70000}]})",
              "out of range"},
          Case{
              R"({"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["a"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":1,"op":"SCMP_CMP_ABOUT"}]}]})",
              "`SCMP_CMP_ABOUT`"},
          Case{
              R"({"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["a"],"action":"SCMP_ACT_ERRNO","args":[{"index":6,"value":1,"op":"SCMP_CMP_EQ"}]}]})",
              "args[0].index"},
          Case{
              R"({"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["a"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":-1,"op":"SCMP_CMP_EQ"}]}]})",
              "args[0].value"},
          Case{
              R"({"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["a"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_SYS_ADMIN"]}}]})",
              "syscalls[0].includes: conditional rules are not supported"},
      }) {
    absl::StatusOr<std::string> out = ParseSeccompProfile(c.json);
    ASSERT_FALSE(out.ok()) << c.json;
    EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument) << c.json;
    EXPECT_THAT(out.status().message(), HasSubstr(c.message)) << c.json;
  }
}

TEST(SeccompTest, RuntimeDefaultAllowsTheListAndBlocksTheRest) {
  std::string report = RunInChild([]() -> std::string {
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return "no_new_privs failed";
    absl::Status st = ApplySeccomp(RuntimeDefaultSeccompJson());
    if (!st.ok()) return st.ToString();
    std::string out;
    absl::StrAppend(&out, ExpectErrno("unshare", ::unshare(CLONE_NEWUTS), EPERM));
    absl::StrAppend(&out,
                    ExpectErrno("clone(NEWUSER)",
                                ::syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0), EPERM));
    absl::StrAppend(&out, ExpectErrno("clone3", ::syscall(SYS_clone3, nullptr, 0), ENOSYS));
    absl::StrAppend(
        &out, ExpectErrno("mount", ::syscall(SYS_mount, "none", "/mnt", "tmpfs", 0, 0), EPERM));
    absl::StrAppend(&out, ExpectErrno("ptrace", ::syscall(SYS_ptrace, 0, 0, 0, 0), EPERM));
    // Not on the allow-list: EPERM, also for calls the old deny-list let through.
    absl::StrAppend(&out, ExpectErrno("pidfd_getfd", ::syscall(SYS_pidfd_getfd, 0, 0, 0), EPERM));
    absl::StrAppend(
        &out, ExpectErrno("personality(0x0400000)", ::syscall(SYS_personality, 0x0400000), EPERM));
    if (::syscall(SYS_personality, 0xffffffff) < 0) absl::StrAppend(&out, "personality query; ");
    if (::getpid() <= 0) absl::StrAppend(&out, "getpid failed; ");
    // fork and threads still work (libc falls back from clone3 to clone).
    const pid_t pid = ::fork();
    if (pid == 0) _exit(7);
    int status = 0;
    if (pid < 0 || ::waitpid(pid, &status, 0) != pid || WEXITSTATUS(status) != 7) {
      absl::StrAppend(&out, "fork failed; ");
    }
    bool ran = false;
    std::thread([&ran] { ran = true; }).join();
    if (!ran) absl::StrAppend(&out, "thread did not run; ");
    return out;
  });
  EXPECT_EQ(report, "");
}

TEST(SeccompTest, LocalhostProfileDeniesMkdirWithItsErrno) {
  char tmpl[] = "/tmp/podshim-seccomp-test-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  std::string report = RunInChild([&dir]() -> std::string {
    absl::StatusOr<std::string> profile = ParseSeccompProfile(R"({
      "defaultAction": "SCMP_ACT_ALLOW",
      "syscalls": [
        {"names": ["mkdir", "mkdirat", "no_such_syscall"], "action": "SCMP_ACT_ERRNO",
         "errnoRet": 13},
        {"names": ["getpid"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["dup"], "action": "SCMP_ACT_ERRNO", "errnoRet": 25,
         "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]},
        {"names": ["fcntl"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22,
         "args": [{"index": 1, "value": 1030, "op": "SCMP_CMP_EQ"},
                  {"index": 1, "value": 1, "op": "SCMP_CMP_EQ"}]},
        {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
         "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                  {"index": 1, "value": 0, "op": "SCMP_CMP_EQ"}]}
      ]})");
    if (!profile.ok()) return profile.status().ToString();
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return "no_new_privs failed";
    absl::Status st = ApplySeccomp(*profile);
    if (!st.ok()) return st.ToString();
    std::string out = ExpectErrno("mkdir", ::mkdir((dir + "/sub").c_str(), 0700), EACCES);
    absl::StrAppend(&out, ExpectErrno("dup(1)", ::dup(1), ENOTTY));
    const int fd = ::dup(2);
    if (fd < 0) absl::StrAppend(&out, "dup(2) failed; ");
    ::close(fd);
    // Two conditions on one argument: either matches (F_DUPFD_CLOEXEC, F_GETFD).
    absl::StrAppend(&out, ExpectErrno("F_DUPFD_CLOEXEC", ::fcntl(2, F_DUPFD_CLOEXEC, 0), EINVAL));
    absl::StrAppend(&out, ExpectErrno("F_GETFD", ::fcntl(2, F_GETFD), EINVAL));
    if (::fcntl(2, F_GETFL) < 0) absl::StrAppend(&out, "F_GETFL failed; ");
    // Conditions on different arguments: both must hold.
    absl::StrAppend(&out, ExpectErrno("kill(1, 0)", ::kill(1, 0), EPERM));
    if (::kill(::getpid(), 0) != 0) absl::StrAppend(&out, "kill(self, 0) failed; ");
    if (::kill(1, SIGCONT) != 0 && errno == EPERM)
      absl::StrAppend(&out, "kill(1, SIGCONT) denied; ");
    return out;
  });
  EXPECT_EQ(report, "");
  EXPECT_FALSE(std::filesystem::exists(dir + "/sub"));
  std::filesystem::remove_all(dir);
}

TEST(SeccompTest, ApplyRejectsBadProfiles) {
  // Validation happens before anything is loaded, so this is safe in-process.
  EXPECT_EQ(ApplySeccomp(R"({"defaultAction":"SCMP_ACT_WHAT"})").code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(HostChecksTest, AppArmorEnabledReadsTheModuleParameter) {
  char tmpl[] = "/tmp/podshim-apparmor-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  const std::string param = dir + "/enabled";
  EXPECT_FALSE(AppArmorEnabled(param));  // absent: no AppArmor
  for (const auto& [text, enabled] :
       std::vector<std::pair<std::string, bool>>{{"Y\n", true}, {"N\n", false}, {"", false}}) {
    std::ofstream(param, std::ios::trunc) << text;
    EXPECT_EQ(AppArmorEnabled(param), enabled) << text;
  }
  std::filesystem::remove_all(dir);
}

TEST(HostChecksTest, StatDeviceTellsDevicesFromFiles) {
  auto null = StatDevice("/dev/null");
  ASSERT_TRUE(null.ok()) << null.status();
  EXPECT_EQ(null->type, 'c');
  EXPECT_EQ(null->major, 1);
  EXPECT_EQ(null->minor, 3);
  EXPECT_EQ(null->kind, "character device");
  auto file = StatDevice("/proc/self/status");
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->type, 0);
  EXPECT_EQ(file->kind, "regular file");
  auto dir = StatDevice("/dev");
  ASSERT_TRUE(dir.ok());
  EXPECT_EQ(dir->type, 0);
  EXPECT_EQ(dir->kind, "directory");
  EXPECT_EQ(StatDevice("/nonexistent/podshim/dev").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(StatDevice("/dev/null/x").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace podshim::runtime
