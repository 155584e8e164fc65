#include "runtime/namespaces.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "runtime/files.h"
#include "runtime/spawn.h"

#ifndef PODSHIM_PINNS_BINARY
#error "PODSHIM_PINNS_BINARY must name the podshim-pinns binary"
#endif

namespace podshim::runtime {
namespace {

using ::testing::HasSubstr;

// Guards against hanging when something is broken; never a timing assertion.
constexpr auto kGuard = std::chrono::seconds(60);

const char kPinns[] = PODSHIM_PINNS_BINARY;

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Trimmed(const std::string& s) { return std::string(absl::StripAsciiWhitespace(s)); }

// Polls `done` until it holds or the guard runs out.
bool Eventually(const std::function<bool()>& done) {
  auto until = std::chrono::steady_clock::now() + kGuard;
  while (!done()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

bool Exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

// Mount points at or below `dir` in our mount namespace.
std::vector<std::string> MountsUnder(const std::string& dir) {
  std::vector<std::string> found;
  std::istringstream lines(Slurp("/proc/self/mountinfo"));
  for (std::string line; std::getline(lines, line);) {
    std::vector<std::string> fields = absl::StrSplit(line, ' ');
    if (fields.size() > 4 && absl::StartsWith(fields[4], dir)) found.push_back(fields[4]);
  }
  return found;
}

// Waits (guarded) for the process `pid` to end; reaps it if it is our child
// (the fixture makes us a subreaper).
bool EndProcess(pid_t pid, int sig) {
  auto pidfd = OpenPidfd(pid);
  if (!pidfd.ok()) return absl::IsNotFound(pidfd.status());
  ::kill(pid, sig);
  bool ended = WaitForExit(pidfd->get(), absl::Seconds(60)).ok();
  ::waitpid(pid, nullptr, WNOHANG);
  return ended;
}

absl::StatusOr<SpawnResult> Nsenter(std::vector<std::string> args) {
  SpawnOptions options;
  options.argv = {"nsenter"};
  options.argv.insert(options.argv.end(), args.begin(), args.end());
  return RunProcess(options);
}

class PinNamespacesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    char tmpl[] = "/run/podshim-pinns-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    base_ = tmpl;
    dir_ = base_ + "/pod";
    // Orphans (the infra process) come back to us, so we can reap them.
    ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);
    host_hostname_ = HostHostname();
    host_port_start_ = Trimmed(Slurp("/proc/sys/net/ipv4/ip_unprivileged_port_start"));
    host_shmmni_ = Trimmed(Slurp("/proc/sys/kernel/shmmni"));
  }

  void TearDown() override {
    if (base_.empty()) return;
    for (pid_t pid : infra_pids_) EndProcess(pid, SIGKILL);
    EXPECT_TRUE(UnpinNamespaces(dir_).ok());
    for (const auto& cg : cgroups_) ::rmdir(cg.c_str());
    std::filesystem::remove_all(base_);
    // Should a test have leaked into the host, put things back.
    if (Trimmed(Slurp("/proc/sys/net/ipv4/ip_unprivileged_port_start")) != host_port_start_) {
      ADD_FAILURE() << "host sysctl changed";
      (void)WriteFileAtomic("/proc/sys/net/ipv4/ip_unprivileged_port_start", host_port_start_);
    }
    if (Trimmed(Slurp("/proc/sys/kernel/shmmni")) != host_shmmni_) ADD_FAILURE() << "host changed";
    if (HostHostname() != host_hostname_) ADD_FAILURE() << "host hostname changed";
  }

  static std::string HostHostname() {
    char buf[256] = {};
    ::gethostname(buf, sizeof(buf) - 1);
    return buf;
  }

  // Pins and remembers the infra process for TearDown.
  absl::StatusOr<PinnedNamespaces> Pin(const PinRequest& request) {
    auto pinned = PinNamespaces(kPinns, request);
    if (pinned.ok() && pinned->infra_pid > 0) infra_pids_.push_back(pinned->infra_pid);
    return pinned;
  }

  // Nothing left of a pod at dir_: no mount, no directory.
  void ExpectNothingLeft() {
    EXPECT_THAT(MountsUnder(base_), ::testing::IsEmpty());
    EXPECT_FALSE(Exists(dir_));
  }

  std::string base_, dir_;
  std::string host_hostname_, host_port_start_, host_shmmni_;
  std::vector<pid_t> infra_pids_;
  std::vector<std::string> cgroups_;
};

TEST_F(PinNamespacesTest, NetIpcUtsWithHostnameAndSysctls) {
  int port_start = 0, shmmni = 0;
  ASSERT_TRUE(absl::SimpleAtoi(host_port_start_, &port_start));
  ASSERT_TRUE(absl::SimpleAtoi(host_shmmni_, &shmmni));
  // Values that differ from the host's.
  std::string pod_port_start = absl::StrCat(port_start > 0 ? port_start - 1 : 1);
  std::string pod_shmmni = absl::StrCat(shmmni > 1 ? shmmni - 1 : 2);

  PinRequest request;
  request.dir = dir_;
  request.net = request.ipc = request.uts = true;
  request.hostname = "podshim-test-pod";
  request.sysctls = {{"net.ipv4.ip_unprivileged_port_start", pod_port_start},
                     {"kernel/shmmni", pod_shmmni}};
  auto pinned = Pin(request);
  ASSERT_TRUE(pinned.ok()) << pinned.status();
  EXPECT_EQ(pinned->net, dir_ + "/net");
  EXPECT_EQ(pinned->ipc, dir_ + "/ipc");
  EXPECT_EQ(pinned->uts, dir_ + "/uts");
  EXPECT_EQ(pinned->pid, "");
  EXPECT_EQ(pinned->infra_pid, 0);

  struct stat st {};
  ASSERT_EQ(::stat(dir_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  for (const char* kind : {"net", "ipc", "uts"}) {
    std::string pin = absl::StrCat(dir_, "/", kind);
    EXPECT_TRUE(IsNamespacePinned(pin)) << pin;
    auto pod_ns = NamespaceInode(pin);
    auto host_ns = NamespaceInode(absl::StrCat("/proc/self/ns/", kind));
    ASSERT_TRUE(pod_ns.ok() && host_ns.ok());
    EXPECT_NE(*pod_ns, *host_ns) << kind;
  }
  EXPECT_FALSE(IsNamespacePinned(dir_ + "/pid"));

  auto hostname = Nsenter({"--uts=" + pinned->uts, "hostname"});
  ASSERT_TRUE(hostname.ok()) << hostname.status();
  EXPECT_EQ(hostname->out, "podshim-test-pod\n") << hostname->err;

  auto port =
      Nsenter({"--net=" + pinned->net, "cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start"});
  ASSERT_TRUE(port.ok()) << port.status();
  EXPECT_EQ(Trimmed(port->out), pod_port_start) << port->err;

  auto shm = Nsenter({"--ipc=" + pinned->ipc, "cat", "/proc/sys/kernel/shmmni"});
  ASSERT_TRUE(shm.ok()) << shm.status();
  EXPECT_EQ(Trimmed(shm->out), pod_shmmni) << shm->err;

  // The host kept its values (TearDown checks the same, and the hostname).
  EXPECT_EQ(Trimmed(Slurp("/proc/sys/net/ipv4/ip_unprivileged_port_start")), host_port_start_);
  EXPECT_EQ(Trimmed(Slurp("/proc/sys/kernel/shmmni")), host_shmmni_);
  EXPECT_EQ(HostHostname(), host_hostname_);

  auto lo = Nsenter({"--net=" + pinned->net, "ip", "-o", "link", "show", "lo"});
  ASSERT_TRUE(lo.ok()) << lo.status();
  EXPECT_THAT(lo->out, HasSubstr(",UP")) << lo->err;

  ASSERT_TRUE(UnpinNamespaces(dir_).ok());
  ExpectNothingLeft();
  EXPECT_TRUE(UnpinNamespaces(dir_).ok());
}

TEST_F(PinNamespacesTest, PidNamespaceHasAnInfraProcessThatIsPid1AndReaps) {
  PinRequest request;
  request.dir = dir_;
  request.net = request.pid = true;
  auto pinned = Pin(request);
  ASSERT_TRUE(pinned.ok()) << pinned.status();
  EXPECT_EQ(pinned->pid, dir_ + "/pid");
  EXPECT_EQ(pinned->uts, "");
  pid_t infra = pinned->infra_pid;
  ASSERT_GT(infra, 0);
  const std::string proc = absl::StrCat("/proc/", infra);

  EXPECT_EQ(Slurp(proc + "/comm"), "podshim-infra\n");
  std::string nspid;
  std::istringstream status(Slurp(proc + "/status"));
  for (std::string line; std::getline(status, line);) {
    if (absl::StartsWith(line, "NSpid:")) nspid = line;
  }
  std::vector<std::string> ids = absl::StrSplit(nspid, '\t', absl::SkipEmpty());
  ASSERT_EQ(ids.size(), 3u) << nspid;  // "NSpid:", the pid here, 1
  EXPECT_EQ(ids.back(), "1");

  // The pins are the infra's namespaces.
  EXPECT_TRUE(IsNamespacePinned(pinned->pid));
  EXPECT_EQ(*NamespaceInode(pinned->pid), *NamespaceInode(proc + "/ns/pid"));
  EXPECT_EQ(*NamespaceInode(pinned->net), *NamespaceInode(proc + "/ns/net"));
  // Its stdio is /dev/null and it holds no other fd.
  std::vector<std::string> fds;
  for (const auto& entry : std::filesystem::directory_iterator(proc + "/fd")) {
    fds.push_back(entry.path().filename().string());
    EXPECT_EQ(std::filesystem::read_symlink(entry.path()), "/dev/null");
  }
  EXPECT_THAT(fds, ::testing::UnorderedElementsAre("0", "1", "2"));

  // An orphan in the pod's PID namespace goes to the infra, which reaps it.
  auto orphan = Nsenter({"--pid=" + pinned->pid, "sh", "-c", "sleep 1000 >/dev/null 2>&1 &"});
  ASSERT_TRUE(orphan.ok()) << orphan.status();
  pid_t sleeper = 0;
  ASSERT_TRUE(Eventually([&] {
    for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
      int pid = 0;
      if (!absl::SimpleAtoi(entry.path().filename().string(), &pid)) continue;
      std::istringstream st(Slurp(entry.path().string() + "/status"));
      for (std::string line; std::getline(st, line);) {
        if (line == absl::StrCat("PPid:\t", infra)) sleeper = pid;
      }
    }
    return sleeper > 0;
  }));
  ASSERT_EQ(::kill(sleeper, SIGKILL), 0);
  // Reaped, not a zombie: the /proc entry goes away.
  EXPECT_TRUE(Eventually([&] { return !Exists(absl::StrCat("/proc/", sleeper)); }));

  // SIGTERM ends the infra (PID 1 there: only handled signals arrive).
  auto pidfd = OpenPidfd(infra);
  ASSERT_TRUE(pidfd.ok()) << pidfd.status();
  ASSERT_EQ(::kill(infra, SIGTERM), 0);
  ASSERT_TRUE(WaitForExit(pidfd->get(), absl::Seconds(60)).ok());
  siginfo_t info{};
  ASSERT_EQ(::waitid(P_PID, static_cast<id_t>(infra), &info, WEXITED | WNOWAIT), 0)
      << "we are its subreaper";
  EXPECT_EQ(info.si_code, CLD_EXITED);
  EXPECT_EQ(info.si_status, 0);
  // StopInfra reaps it and is fine with it having exited; then with it gone.
  EXPECT_TRUE(StopInfra(infra, pinned->pid).ok());
  EXPECT_EQ(::waitpid(infra, nullptr, WNOHANG), -1);
  EXPECT_TRUE(StopInfra(infra, pinned->pid).ok());
  infra_pids_.clear();

  // The PID namespace stays pinned after its init is gone.
  EXPECT_TRUE(IsNamespacePinned(pinned->pid));
  ASSERT_TRUE(UnpinNamespaces(dir_).ok());
  ExpectNothingLeft();
}

TEST_F(PinNamespacesTest, StopInfraChecksTheProcessBeforeSignalling) {
  PinRequest request;
  request.dir = dir_;
  request.pid = true;
  auto pinned = Pin(request);
  ASSERT_TRUE(pinned.ok()) << pinned.status();

  // A pid that is not the infra (as after pid reuse) is left alone.
  SpawnOptions sleep;
  sleep.argv = {"sleep", "1000"};
  auto other = Spawn(sleep);
  ASSERT_TRUE(other.ok()) << other.status();
  auto refused = StopInfra(other->pid(), pinned->pid);
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition) << refused;
  EXPECT_EQ(other->Wait(absl::ZeroDuration()).status().code(), absl::StatusCode::kDeadlineExceeded);

  // The infra ignores nothing it should not: SIGTERM is enough.
  ASSERT_TRUE(StopInfra(pinned->infra_pid, pinned->pid).ok());
  EXPECT_FALSE(Exists(absl::StrCat("/proc/", pinned->infra_pid)));  // reaped, we are subreaper
  infra_pids_.clear();
  EXPECT_EQ(StopInfra(0, pinned->pid).code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(PinNamespacesTest, InfraJoinsCgroups) {
  const std::string cg =
      absl::StrCat("/sys/fs/cgroup/pids/", std::filesystem::path(base_).filename().string());
  if (::mkdir(cg.c_str(), 0755) != 0) GTEST_SKIP() << "no pids cgroup: " << errno;
  cgroups_.push_back(cg);
  PinRequest request;
  request.dir = dir_;
  request.pid = true;
  request.infra_cgroup_procs = {cg + "/cgroup.procs"};
  auto pinned = Pin(request);
  ASSERT_TRUE(pinned.ok()) << pinned.status();
  EXPECT_THAT(Slurp(absl::StrCat("/proc/", pinned->infra_pid, "/cgroup")),
              HasSubstr(absl::StrCat(":pids:/", std::filesystem::path(cg).filename().string())));
  EXPECT_THAT(Slurp(cg + "/cgroup.procs"), HasSubstr(absl::StrCat(pinned->infra_pid)));
  // TearDown kills the infra before removing the cgroup.
}

TEST_F(PinNamespacesTest, BadSysctlValueFailsAndLeavesNothing) {
  PinRequest request;
  request.dir = dir_;
  request.net = request.ipc = request.uts = true;
  request.sysctls = {{"net.ipv4.ip_unprivileged_port_start", "not-a-number"}};
  auto pinned = Pin(request);
  ASSERT_FALSE(pinned.ok());
  EXPECT_EQ(pinned.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(pinned.status().message(), HasSubstr("net.ipv4.ip_unprivileged_port_start"));
  EXPECT_THAT(pinned.status().message(), HasSubstr("EINVAL"));
  ExpectNothingLeft();
}

TEST_F(PinNamespacesTest, FailureAfterPinningUndoesThePins) {
  // The infra cannot join a missing cgroup: net and uts were already pinned.
  PinRequest request;
  request.dir = dir_;
  request.net = request.uts = request.pid = true;
  request.infra_cgroup_procs = {base_ + "/no-such-cgroup/cgroup.procs"};
  auto pinned = Pin(request);
  ASSERT_FALSE(pinned.ok());
  EXPECT_EQ(pinned.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(pinned.status().message(), HasSubstr("no-such-cgroup"));
  ExpectNothingLeft();
}

TEST_F(PinNamespacesTest, ExistingDirAndExistingPin) {
  ASSERT_TRUE(MakeDirs(dir_, 0700).ok());
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/uts", "mine").ok());
  PinRequest request;
  request.dir = dir_;
  request.uts = true;
  auto pinned = Pin(request);
  ASSERT_FALSE(pinned.ok());
  EXPECT_EQ(pinned.status().code(), absl::StatusCode::kAlreadyExists);
  // What was there is untouched.
  EXPECT_EQ(*ReadFile(dir_ + "/uts"), "mine");

  // An existing directory is used as is and kept on failure.
  ASSERT_EQ(::unlink((dir_ + "/uts").c_str()), 0);
  request.hostname = std::string(200, 'x');  // too long for sethostname
  pinned = Pin(request);
  ASSERT_FALSE(pinned.ok());
  EXPECT_THAT(pinned.status().message(), HasSubstr("hostname"));
  EXPECT_TRUE(Exists(dir_));
  EXPECT_FALSE(Exists(dir_ + "/uts"));

  request.hostname = "ok";
  pinned = Pin(request);
  ASSERT_TRUE(pinned.ok()) << pinned.status();
  EXPECT_TRUE(IsNamespacePinned(dir_ + "/uts"));
}

TEST_F(PinNamespacesTest, RequestErrors) {
  PinRequest request;
  request.dir = "relative/dir";
  request.net = true;
  EXPECT_EQ(Pin(request).status().code(), absl::StatusCode::kInvalidArgument);
  request.dir = dir_;
  request.net = false;
  EXPECT_EQ(Pin(request).status().code(), absl::StatusCode::kInvalidArgument);
  request.net = true;
  request.hostname = "h";
  EXPECT_EQ(Pin(request).status().code(), absl::StatusCode::kInvalidArgument);
  request.hostname = "";
  request.sysctls = {{"kernel.shmmax", "1"}};  // IPC sysctl without an IPC namespace
  EXPECT_EQ(Pin(request).status().code(), absl::StatusCode::kInvalidArgument);
  ExpectNothingLeft();

  PinRequest net_only;
  net_only.dir = dir_;
  net_only.net = true;
  auto missing = PinNamespaces("/nonexistent/podshim-pinns", net_only);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  ExpectNothingLeft();
}

TEST_F(PinNamespacesTest, BinaryRefusesBadUsageWithAJsonError) {
  SpawnOptions options;
  for (auto args : std::vector<std::vector<std::string>>{
           {"--bogus"},
           {"--dir", dir_},
           {"--dir", dir_, "--net", "--sysctl", "kernel.shmmax=1"},
           {"--dir", dir_, "--ipc", "--sysctl", "vm.swappiness=1"},
           {"--dir", dir_, "--net", "--sysctl", "net/../../vm/swappiness=1"}}) {
    options.argv = {kPinns};
    options.argv.insert(options.argv.end(), args.begin(), args.end());
    auto r = RunProcess(options);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->exit_code, 1) << r->out;
    EXPECT_THAT(r->out, ::testing::StartsWith("{\"error\":")) << args.back();
  }
}

TEST(ValidateSysctlsTest, AllowList) {
  using Sysctls = std::vector<std::pair<std::string, std::string>>;
  EXPECT_TRUE(ValidateSysctls({{"kernel.shmmax", "1"},
                               {"kernel.shm_rmid_forced", "1"},
                               {"kernel.msgmnb", "1"},
                               {"kernel.sem", "250 32000 32 128"},
                               {"fs.mqueue.msg_max", "10"},
                               {"net.ipv4.ip_forward", "1"},
                               {"net/ipv4/conf/eth0.100/rp_filter", "1"},
                               {"kernel/shmmni", "1"}},
                              false, false)
                  .ok());
  EXPECT_TRUE(ValidateSysctls(Sysctls{}, true, true).ok());
  EXPECT_TRUE(ValidateSysctls({{"kernel.msgmax", "1"}}, true, false).ok());
  EXPECT_TRUE(ValidateSysctls({{"net.core.somaxconn", "1"}}, false, true).ok());

  struct Bad {
    Sysctls sysctls;
    bool host_network, host_ipc;
    const char* why;
  };
  for (const Bad& bad : std::vector<Bad>{
           {{{"kernel.hostname", "x"}}, false, false, "not a namespaced"},
           {{{"vm.swappiness", "1"}}, false, false, "not a namespaced"},
           {{{"kernel.semx", "1"}}, false, false, "not a namespaced"},
           {{{"net", "1"}}, false, false, "not a namespaced"},
           {{{"", "1"}}, false, false, "not a namespaced"},
           {{{"net.ipv4.ip_forward", "1"}}, true, false, "host network"},
           {{{"kernel.shmmax", "1"}}, false, true, "host IPC"},
           {{{"fs/mqueue/msg_max", "1"}}, false, true, "host IPC"},
           {{{"kernel.sem", "1"}}, false, true, "host IPC"},
           {{{"net..ipv4", "1"}}, false, false, "malformed"},
           {{{"net/../vm/swappiness", "1"}}, false, false, "malformed"},
           {{{"net.ipv4.ip_forward", "1\nvm.swappiness=1"}}, false, false, "newline"},
       }) {
    std::string name = bad.sysctls[0].first;
    absl::Status s = ValidateSysctls(bad.sysctls, bad.host_network, bad.host_ipc);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_THAT(s.message(), HasSubstr(absl::StrCat("`", name, "`")));
    EXPECT_THAT(s.message(), HasSubstr(bad.why)) << name;
  }
}

TEST(UnpinNamespacesTest, MissingDirIsFine) {
  EXPECT_TRUE(UnpinNamespaces("/run/podshim-no-such-pod-dir").ok());
}

TEST(SocketInNetworkNamespaceTest, TheSocketLivesInThatNamespace) {
  // A listener on the host's loopback...
  UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(listener.valid());
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(listener.get(), 1), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len), 0);
  auto connects = [&](int fd) {
    int r = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    if (r != 0 && errno != EINPROGRESS) return false;
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, 5000) != 1) return false;
    int err = 0;
    socklen_t n = sizeof err;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &n);
    return err == 0;
  };
  // ...is reached from a socket made in this process's namespace (empty path)...
  auto host = SocketInNetworkNamespace("", AF_INET);
  ASSERT_TRUE(host.ok()) << host.status();
  EXPECT_TRUE(connects(host->get()));
  // ...and not from one made in a fresh network namespace (its loopback is down and its own).
  SpawnOptions options;
  options.argv = {"unshare", "--net", "sleep", "30"};
  options.capture_output = false;
  auto other = Spawn(options, nullptr);
  ASSERT_TRUE(other.ok()) << other.status();
  const std::string ns = absl::StrCat("/proc/", other->pid(), "/ns/net");
  // unshare has entered the namespace once its link differs from ours.
  for (int i = 0; i < 500; ++i) {
    char a[64] = {}, b[64] = {};
    if (::readlink(ns.c_str(), a, sizeof a - 1) > 0 &&
        ::readlink("/proc/self/ns/net", b, sizeof b - 1) > 0 && std::string(a) != b) {
      break;
    }
    ::usleep(10000);
  }
  auto inside = SocketInNetworkNamespace(ns, AF_INET);
  ASSERT_TRUE(inside.ok()) << inside.status();
  EXPECT_FALSE(connects(inside->get()));
  auto missing = SocketInNetworkNamespace("/nonexistent/netns", AF_INET);
  EXPECT_FALSE(missing.ok());
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("/nonexistent/netns"));
}

TEST(SocketInNetworkNamespaceTest, MakesEitherFamilyAndNothingElse) {
  for (int family : {AF_INET, AF_INET6}) {
    auto fd = SocketInNetworkNamespace("", family);
    ASSERT_TRUE(fd.ok()) << fd.status();
    int got = 0;
    socklen_t n = sizeof got;
    ASSERT_EQ(::getsockopt(fd->get(), SOL_SOCKET, SO_DOMAIN, &got, &n), 0);
    EXPECT_EQ(got, family);
  }
  auto unix_socket = SocketInNetworkNamespace("", AF_UNIX);
  EXPECT_EQ(unix_socket.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace podshim::runtime
