// End-to-end tests of podshim-monitor: a busybox rootfs in a temp dir, the
// real binary started the way the agent starts it (new session, stdio
// /dev/null, fd 3 the status pipe), real namespaces, overlay and mounts.
// Needs root. The test process is a child subreaper so that nothing a test
// starts can escape the cleanup.
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "runtime/attach.h"
#include "runtime/container_runner.h"
#include "runtime/files.h"
#include "runtime/launch_spec.h"
#include "runtime/monitor_loop.h"
#include "runtime/security.h"
#include "runtime/unique_fd.h"

namespace podshim::runtime {
namespace {

namespace fs = std::filesystem;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kMonitor[] = PODSHIM_MONITOR_BINARY;
constexpr char kBusybox[] = "/bin/busybox";
// Only a guard against a hung test, never a measured threshold.
constexpr auto kGuard = std::chrono::seconds(60);

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

// Reads every fd until EOF (or the guard runs out); returns their contents.
std::vector<std::string> ReadAllUntilEof(std::vector<int> fds) {
  std::vector<std::string> out(fds.size());
  auto deadline = std::chrono::steady_clock::now() + kGuard;
  size_t open = fds.size();
  while (open > 0 && std::chrono::steady_clock::now() < deadline) {
    std::vector<struct pollfd> p(fds.size());
    for (size_t i = 0; i < fds.size(); ++i) p[i] = {fds[i], POLLIN, 0};
    if (::poll(p.data(), p.size(), 100) <= 0) continue;
    for (size_t i = 0; i < fds.size(); ++i) {
      if (fds[i] < 0 || p[i].revents == 0) continue;
      char buf[65536];
      ssize_t n = ::read(fds[i], buf, sizeof(buf));
      if (n > 0) {
        out[i].append(buf, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        fds[i] = -1;
        --open;
      }
    }
  }
  return out;
}

// waitpid with the guard: the exit status, or nullopt if it did not exit.
std::optional<int> WaitFor(pid_t pid) {
  auto deadline = std::chrono::steady_clock::now() + kGuard;
  while (std::chrono::steady_clock::now() < deadline) {
    int st = 0;
    pid_t r = ::waitpid(pid, &st, WNOHANG);
    if (r == pid) return st;
    if (r < 0 && errno != EINTR) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return std::nullopt;
}

// Polls `pred` until it holds or the guard runs out.
template <typename Pred>
bool Eventually(Pred pred) {
  auto deadline = std::chrono::steady_clock::now() + kGuard;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pred();
}

// Our (subreaper) children: pids whose parent is this process.
std::vector<pid_t> Children() {
  std::vector<pid_t> out;
  const pid_t self = ::getpid();
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc", ec)) {
    pid_t pid = 0;
    if (!absl::SimpleAtoi(e.path().filename().string(), &pid)) continue;
    std::string stat = ReadText(absl::StrCat("/proc/", pid, "/stat"));
    size_t paren = stat.rfind(')');
    if (paren == std::string::npos) continue;
    std::vector<std::string> f = absl::StrSplit(stat.substr(paren + 2), ' ');
    pid_t ppid = 0;
    if (f.size() > 1 && absl::SimpleAtoi(f[1], &ppid) && ppid == self) out.push_back(pid);
  }
  return out;
}

struct ExecOutput {
  std::string out, err;
  std::string status_line;  // what the helper wrote to fd 3
  int helper_exit = -1;
  nlohmann::json status() const {
    return nlohmann::json::parse(status_line, nullptr, /*allow_exceptions=*/false);
  }
};

class MonitorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    if (!fs::exists(kBusybox)) GTEST_SKIP() << "needs busybox-static (" << kBusybox << ")";
    ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    char tmpl[] = "/tmp/podshim-monitor-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    lower_ = dir_ + "/lower";
    bundle_ = dir_ + "/c1/bundle";
    for (const std::string& d : {lower_, dir_ + "/logs", dir_ + "/host"}) {
      fs::create_directories(d);
    }
    BuildRootfs();
  }

  void TearDown() override {
    if (dir_.empty()) return;
    // Kill what is left (container processes reparented to us included),
    // reap it, then remove the tree. The overlay and every other mount
    // live in the containers' mount namespaces and die with them.
    for (int round = 0; round < 100; ++round) {
      std::vector<pid_t> kids = Children();
      if (kids.empty()) break;
      for (pid_t p : kids) ::kill(p, SIGKILL);
      for (pid_t p : kids) WaitFor(p);
    }
    std::error_code ec;
    fs::remove_all(dir_, ec);
    EXPECT_FALSE(ec) << ec.message();
  }

  void BuildRootfs() {
    for (const char* d : {"bin", "etc", "proc", "sys", "dev", "tmp", "root", "ctl"}) {
      fs::create_directories(lower_ + "/" + d);
    }
    fs::copy_file(kBusybox, lower_ + "/bin/busybox");
    fs::permissions(lower_ + "/bin/busybox", fs::perms(0755));
    for (const char* applet : {"sh", "cat", "echo", "sleep", "ls", "id", "hostname", "mount",
                               "touch", "test", "grep", "rm"}) {
      fs::create_symlink("busybox", lower_ + "/bin/" + applet);
    }
    WriteText(lower_ + "/etc/passwd",
              "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n");
    WriteText(lower_ + "/etc/group", "root:x:0:\nnogroup:x:65534:\n");
    WriteText(lower_ + "/etc/hostname", "from-image\n");
    WriteText(lower_ + "/etc/secret", "top secret\n");
    WriteText(lower_ + "/line40k", std::string(size_t{40} * 1024, 'a') + "\n");
  }

  // A container `id` with its bundle, upper and work dirs under dir_/id.
  LaunchSpec Spec(std::vector<std::string> args, const std::string& id = "c1") {
    LaunchSpec spec;
    spec.id = id;
    spec.bundle = dir_ + "/" + id + "/bundle";
    spec.rootfs.lower = {lower_};
    spec.rootfs.upper = dir_ + "/" + id + "/upper";
    spec.rootfs.work = dir_ + "/" + id + "/work";
    spec.rootfs.target = spec.bundle + "/rootfs";
    for (const std::string& d : {spec.rootfs.upper, spec.rootfs.work, spec.rootfs.target}) {
      fs::create_directories(d);
    }
    spec.hostname = "podshim-test";
    spec.process.args = std::move(args);
    spec.process.env = {"PATH=/bin", "TERM=xterm"};
    spec.process.capabilities = DefaultCapabilities();
    spec.log_path = LogPath(id);
    return spec;
  }

  std::string LogPath(const std::string& id = "c1") const { return dir_ + "/logs/" + id + ".log"; }

  // Writes spec.json and starts `podshim-monitor start` like the agent does;
  // the monitor's pid goes to monitor_.
  StartReport Start(const LaunchSpec& spec) {
    EXPECT_TRUE(WriteFileAtomic(spec.bundle + "/" + kSpecFile, LaunchSpecToJson(spec)).ok());
    int status[2];
    EXPECT_EQ(::pipe2(status, O_CLOEXEC), 0);
    monitor_ = ::fork();
    if (monitor_ == 0) {
      ::setsid();
      int null = ::open("/dev/null", O_RDWR);
      ::dup2(null, 0);
      ::dup2(null, 1);
      ::dup2(null, 2);
      ::dup2(status[1], 3);
      ::close_range(4, ~0U, 0);
      const char* argv[] = {kMonitor, "start", "--bundle", spec.bundle.c_str(), nullptr};
      ::execv(kMonitor, const_cast<char**>(argv));
      ::_exit(126);
    }
    ::close(status[1]);
    std::string json = ReadAllUntilEof({status[0]})[0];
    ::close(status[0]);
    auto report = StartReportFromJson(json);
    EXPECT_TRUE(report.ok()) << report.status() << " in `" << json << "`";
    if (!report.ok()) return {};
    return *report;
  }

  // Waits for the monitor to exit; returns its exit code.
  int WaitMonitor(pid_t monitor = -1) {
    std::optional<int> st = WaitFor(monitor > 0 ? monitor : monitor_);
    EXPECT_TRUE(st.has_value()) << "monitor did not exit";
    if (!st.has_value()) return -1;
    EXPECT_TRUE(WIFEXITED(*st));
    return WEXITSTATUS(*st);
  }

  // Waits for the monitor (default: the last one) and reads its exit file.
  ExitStatus WaitExit(pid_t monitor = -1, const std::string& bundle = "") {
    EXPECT_EQ(WaitMonitor(monitor), 0);
    auto text = ReadFile((bundle.empty() ? bundle_ : bundle) + "/" + kExitFile);
    EXPECT_TRUE(text.ok()) << text.status();
    if (!text.ok()) return {};
    auto exit = ExitStatusFromJson(*text);
    EXPECT_TRUE(exit.ok()) << exit.status();
    return exit.ok() ? *exit : ExitStatus{};
  }

  // "<stream> <tag> <message>" per CRI record of `path`, checking the stamp.
  static std::vector<std::string> Records(const std::string& path) {
    std::vector<std::string> out;
    for (absl::string_view line : absl::StrSplit(ReadText(path), '\n', absl::SkipEmpty())) {
      size_t sp = line.find(' ');
      EXPECT_NE(sp, absl::string_view::npos);
      absl::string_view stamp = line.substr(0, sp);
      EXPECT_EQ(stamp.size(), 30u) << stamp;
      EXPECT_TRUE(absl::EndsWith(stamp, "Z")) << stamp;
      out.emplace_back(line.substr(sp + 1));
    }
    return out;
  }

  ExecOutput Exec(int pid, std::vector<std::string> argv, int timeout_ms = 0) {
    int out[2], err[2], status[2];
    EXPECT_EQ(::pipe2(out, O_CLOEXEC), 0);
    EXPECT_EQ(::pipe2(err, O_CLOEXEC), 0);
    EXPECT_EQ(::pipe2(status, O_CLOEXEC), 0);
    std::vector<std::string> args = {kMonitor, "exec",  "--bundle",
                                     bundle_,  "--pid", absl::StrCat(pid)};
    if (timeout_ms > 0) {
      args.push_back("--timeout-ms");
      args.push_back(absl::StrCat(timeout_ms));
    }
    args.push_back("--");
    args.insert(args.end(), argv.begin(), argv.end());
    std::vector<char*> cargs;
    cargs.reserve(args.size() + 1);
    for (std::string& a : args) cargs.push_back(a.data());
    cargs.push_back(nullptr);
    pid_t helper = ::fork();
    if (helper == 0) {
      int null = ::open("/dev/null", O_RDONLY);
      ::dup2(null, 0);
      ::dup2(out[1], 1);
      ::dup2(err[1], 2);
      ::dup2(status[1], 3);
      ::close_range(4, ~0U, 0);
      ::execv(kMonitor, cargs.data());
      ::_exit(126);
    }
    ::close(out[1]);
    ::close(err[1]);
    ::close(status[1]);
    std::vector<std::string> got = ReadAllUntilEof({out[0], err[0], status[0]});
    ::close(out[0]);
    ::close(err[0]);
    ::close(status[0]);
    ExecOutput r;
    r.out = got[0];
    r.err = got[1];
    r.status_line = got[2];
    std::optional<int> st = WaitFor(helper);
    if (st.has_value() && WIFEXITED(*st)) r.helper_exit = WEXITSTATUS(*st);
    return r;
  }

  std::string dir_, lower_, bundle_;
  pid_t monitor_ = -1;
};

TEST_F(MonitorTest, RunsTheWorkloadAndLogsBothStreams) {
  StartReport r = Start(Spec({"sh", "-c", "echo hello; echo err >&2"}));
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_GT(r.pid, 0);
  EXPECT_EQ(r.monitor_pid, monitor_);
  EXPECT_EQ(r.uid, 0u);
  EXPECT_EQ(r.gid, 0u);
  ExitStatus e = WaitExit();
  EXPECT_EQ(e.exit_code, 0);
  EXPECT_EQ(e.reason, "Completed");
  EXPECT_GT(e.finished_at_ns, 0);
  std::vector<std::string> recs = Records(LogPath());
  EXPECT_THAT(recs, Contains("stdout F hello"));
  EXPECT_THAT(recs, Contains("stderr F err"));
  EXPECT_EQ(recs.size(), 2u);
  EXPECT_EQ(ReadText(bundle_ + "/" + kMonitorPidFile), absl::StrCat(monitor_, "\n"));
  auto started = StartReportFromJson(ReadText(bundle_ + "/started.json"));
  ASSERT_TRUE(started.ok()) << started.status();
  EXPECT_EQ(started->pid, r.pid);
  EXPECT_EQ((fs::status(LogPath()).permissions() & fs::perms::all), fs::perms(0640));
}

TEST_F(MonitorTest, BecomesTheSmallLoopBinaryWhileTheContainerRuns) {
  StartReport r = Start(Spec({"sh", "-c", "echo before; exec sleep 1000"}));
  ASSERT_TRUE(r.ok) << r.error;
  const std::string loop = (fs::path(kMonitor).parent_path() / kMonitorLoopBinary).string();
  std::error_code ec;
  ASSERT_TRUE(Eventually([&] {
    return fs::read_symlink(absl::StrCat("/proc/", monitor_, "/exe"), ec).string() == loop;
  })) << fs::read_symlink(absl::StrCat("/proc/", monitor_, "/exe"), ec);
  // Same pid, still the container's parent and its log writer.
  EXPECT_EQ(r.monitor_pid, monitor_);
  ASSERT_TRUE(Eventually([&] { return ReadText(LogPath()).find("before") != std::string::npos; }));
  ASSERT_EQ(::kill(r.pid, SIGKILL), 0);
  ExitStatus e = WaitExit();
  EXPECT_EQ(e.exit_code, 137);
  EXPECT_EQ(e.signal, SIGKILL);
  EXPECT_EQ(e.reason, "Error");
  EXPECT_THAT(Records(LogPath()), ElementsAre("stdout F before"));
}

TEST_F(MonitorTest, APooledMonitorStartsTheContainerAndThePoolRefills) {
  MonitorPool pool(kMonitor, 1);
  ASSERT_TRUE(Eventually([&] { return pool.ready() == 1; }));
  // The workload prints its scheduling policy: 0, SCHED_OTHER, though the
  // monitor waited in the pool under SCHED_IDLE (5).
  LaunchSpec spec = Spec({"sh", "-c", "echo pooled; grep policy /proc/self/sched"});
  ASSERT_TRUE(WriteFileAtomic(spec.bundle + "/" + kSpecFile, LaunchSpecToJson(spec)).ok());
  auto report = StartContainerProcess("/nonexistent/not-used", spec, absl::Seconds(20), &pool);
  ASSERT_TRUE(report.ok()) << report.status();
  ASSERT_TRUE(report->ok) << report->error;
  ExitStatus e = WaitExit(report->monitor_pid);
  EXPECT_EQ(e.exit_code, 0);
  EXPECT_THAT(Records(LogPath()),
              ElementsAre("stdout F pooled", ::testing::MatchesRegex("stdout F policy +: +0")));
  // The one taken was replaced.
  EXPECT_TRUE(Eventually([&] { return pool.ready() == 1; }));
}

TEST_F(MonitorTest, WithoutAReadyMonitorOneIsSpawned) {
  MonitorPool empty(kMonitor, 0);
  auto report = StartContainerProcess(kMonitor, Spec({"sh", "-c", "echo spawned"}),
                                      absl::Seconds(20), &empty);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(WaitExit(report->monitor_pid).exit_code, 0);
  EXPECT_THAT(Records(LogPath()), ElementsAre("stdout F spawned"));
}

// Our children that are idle `podshim-monitor wait` processes.
std::vector<pid_t> IdleMonitors() {
  std::vector<pid_t> out;
  for (const auto& e : fs::directory_iterator("/proc")) {
    int pid = 0;
    if (!absl::SimpleAtoi(e.path().filename().string(), &pid)) continue;
    std::string stat = ReadText(e.path().string() + "/stat");
    std::string cmdline = ReadText(e.path().string() + "/cmdline");
    size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::vector<std::string> f = absl::StrSplit(stat.substr(close + 2), ' ');
    if (f.size() > 1 && f[0] != "Z" && f[1] == std::to_string(::getpid()) &&
        absl::StrContains(cmdline, std::string("wait"))) {
      out.push_back(pid);
    }
  }
  return out;
}

// The scheduling policy of `pid` (SCHED_OTHER, SCHED_IDLE, ...).
int PolicyOf(pid_t pid) { return ::sched_getscheduler(pid); }

// A monitor taken is replaced at once; the ready ones wait under SCHED_IDLE.
TEST_F(MonitorTest, ThePoolRefillsAtOnceAtIdlePriority) {
  MonitorPool pool(kMonitor, 2);
  ASSERT_TRUE(Eventually([&] { return pool.ready() == 2; }));
  for (pid_t pid : IdleMonitors()) EXPECT_EQ(PolicyOf(pid), SCHED_IDLE) << pid;
  std::optional<MonitorPool::Ready> a = pool.Take();
  std::optional<MonitorPool::Ready> b = pool.Take();
  ASSERT_TRUE(a.has_value() && b.has_value());
  EXPECT_FALSE(pool.Take().has_value());
  EXPECT_TRUE(Eventually([&] { return pool.ready() == 2; }));
  // The thread that spawns them is back at SCHED_OTHER: only its children
  // run at idle priority.
  for (const auto& e : fs::directory_iterator("/proc/self/task")) {
    pid_t tid = 0;
    ASSERT_TRUE(absl::SimpleAtoi(e.path().filename().string(), &tid));
    EXPECT_EQ(PolicyOf(tid), SCHED_OTHER) << "thread " << tid;
  }
  for (auto* r : {&a, &b}) {
    (*r)->control.Reset();  // end of file: each exits by itself
    EXPECT_TRUE((*r)->child.Wait(absl::Seconds(10)).ok());
  }
}

TEST_F(MonitorTest, IdleMonitorsExitWhenThePoolGoes) {
  std::vector<pid_t> pids;
  std::vector<pid_t> left_in_pool;
  {
    MonitorPool pool(kMonitor, 2);
    ASSERT_TRUE(Eventually([&] { return pool.ready() == 2; }));
    for (int i = 0; i < 2; ++i) {
      auto r = pool.Take();
      ASSERT_TRUE(r.has_value());
      pids.push_back(r->child.pid());
      // Closing the control pipe is what podshimd's death does too.
      r->control.Reset();
      auto exit = r->child.Wait(absl::Seconds(10));
      ASSERT_TRUE(exit.ok()) << exit.status();
      EXPECT_EQ(exit->exit_code, 0);
    }
    ASSERT_TRUE(Eventually([&] { return pool.ready() == 2; }));
    left_in_pool = IdleMonitors();
    EXPECT_EQ(left_in_pool.size(), 2u);
  }
  // The destructor ended and reaped the two it still had.
  for (pid_t p : left_in_pool) EXPECT_NE(::kill(p, 0), 0) << p;
  EXPECT_TRUE(IdleMonitors().empty());
}

TEST_F(MonitorTest, LongLineIsSplitIntoPartialChunks) {
  StartReport r = Start(Spec({"sh", "-c", "read -r x < /line40k; echo \"$x\""}));
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(WaitExit().exit_code, 0);
  EXPECT_THAT(Records(LogPath()), ElementsAre("stdout P " + std::string(16384, 'a'),
                                              "stdout P " + std::string(16384, 'a'),
                                              "stdout F " + std::string(8192, 'a')));
}

TEST_F(MonitorTest, UnterminatedLastLineEndsFull) {
  StartReport r = Start(Spec({"sh", "-c", "echo -n tail"}));
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(WaitExit().exit_code, 0);
  // Written as F at EOF, or as P after an idle pause closed by an empty F.
  std::vector<std::string> recs = Records(LogPath());
  EXPECT_TRUE(recs == std::vector<std::string>({"stdout F tail"}) ||
              recs == std::vector<std::string>({"stdout P tail", "stdout F "}))
      << ::testing::PrintToString(recs);
}

TEST_F(MonitorTest, ExitCodeIsRecorded) {
  StartReport r = Start(Spec({"sh", "-c", "exit 3"}));
  ASSERT_TRUE(r.ok) << r.error;
  ExitStatus e = WaitExit();
  EXPECT_EQ(e.exit_code, 3);
  EXPECT_EQ(e.signal, 0);
  EXPECT_EQ(e.reason, "Error");
  EXPECT_FALSE(e.oom_killed);
}

TEST_F(MonitorTest, KilledBySignalIs128PlusSignal) {
  StartReport r = Start(Spec({"sleep", "1000"}));
  ASSERT_TRUE(r.ok) << r.error;
  ASSERT_EQ(::kill(r.pid, SIGKILL), 0);
  ExitStatus e = WaitExit();
  EXPECT_EQ(e.exit_code, 137);
  EXPECT_EQ(e.signal, SIGKILL);
  EXPECT_EQ(e.reason, "Error");
  EXPECT_FALSE(e.oom_killed);
}

TEST_F(MonitorTest, OomCounterMakesASigkillOomKilled) {
  LaunchSpec spec = Spec({"sleep", "1000"});
  spec.oom_counter_file = dir_ + "/host/memory.events";
  WriteText(spec.oom_counter_file, "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n");
  StartReport r = Start(spec);
  ASSERT_TRUE(r.ok) << r.error;
  ASSERT_EQ(::kill(r.pid, SIGKILL), 0);
  ExitStatus e = WaitExit();
  EXPECT_EQ(e.exit_code, 137);
  EXPECT_TRUE(e.oom_killed);
  EXPECT_EQ(e.reason, "OOMKilled");
}

TEST_F(MonitorTest, SigtermToTheMonitorKillsTheContainer) {
  StartReport r = Start(Spec({"sleep", "1000"}));
  ASSERT_TRUE(r.ok) << r.error;
  ASSERT_EQ(::kill(monitor_, SIGTERM), 0);
  ExitStatus e = WaitExit();
  EXPECT_EQ(e.exit_code, 137);
  EXPECT_EQ(::kill(r.pid, 0), -1);
}

TEST_F(MonitorTest, NewPidAndUtsNamespaces) {
  StartReport r = Start(Spec({"sh", "-c", "echo $$; hostname"}));
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(WaitExit().exit_code, 0);
  EXPECT_THAT(Records(LogPath()), ElementsAre("stdout F 1", "stdout F podshim-test"));
}

TEST_F(MonitorTest, HostPidNamespaceKeepsTheHostPid) {
  LaunchSpec spec = Spec({"sh", "-c", "echo $$"});
  spec.pid.mode = NsMode::kHost;
  StartReport r = Start(spec);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(WaitExit().exit_code, 0);
  EXPECT_THAT(Records(LogPath()), ElementsAre(absl::StrCat("stdout F ", r.pid)));
}

TEST_F(MonitorTest, BindMountsReadonlyAndReadWrite) {
  fs::create_directories(dir_ + "/host/ro");
  fs::create_directories(dir_ + "/host/rw");
  WriteText(dir_ + "/host/ro/f", "content\n");
  WriteText(dir_ + "/host/file", "single file\n");
  LaunchSpec spec = Spec({"sh", "-c",
                          "cat /data/ro/f; touch /data/ro/new && echo wrote || echo denied; "
                          "touch /data/rw/new && echo wrote-rw; cat /etc/single"});
  spec.mounts.push_back({dir_ + "/host/ro", "/data/ro", true, Propagation::kPrivate, true});
  spec.mounts.push_back({dir_ + "/host/rw", "/data/rw", false, Propagation::kRslave, true});
  spec.mounts.push_back({dir_ + "/host/file", "/etc/single", true, Propagation::kPrivate, false});
  StartReport r = Start(spec);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(WaitExit().exit_code, 0);
  std::vector<std::string> recs = Records(LogPath());
  EXPECT_THAT(recs, Contains("stdout F content"));
  EXPECT_THAT(recs, Contains("stdout F denied"));
  EXPECT_THAT(recs, Contains("stdout F wrote-rw"));
  EXPECT_THAT(recs, Contains("stdout F single file"));
  EXPECT_FALSE(fs::exists(dir_ + "/host/ro/new"));
  EXPECT_TRUE(fs::exists(dir_ + "/host/rw/new"));
}

TEST_F(MonitorTest, SymlinkedDestinationStaysInsideTheRootfs) {
  // Dangling symlinks that climb out: resolved inside the rootfs they point
  // to /host-escape and /run/resolv.conf there, never to host paths.
  fs::create_symlink("../../../../../../host-escape", lower_ + "/escape");
  fs::create_symlink("../../../../../run/resolv.conf", lower_ + "/etc/resolv.conf");
  fs::create_directories(dir_ + "/host/src");
  WriteText(dir_ + "/host/src/f", "mounted\n");
  WriteText(dir_ + "/host/resolv", "nameserver 10.0.0.1\n");
  LaunchSpec spec = Spec({"sh", "-c", "cat /host-escape/f /run/resolv.conf"});
  spec.mounts.push_back({dir_ + "/host/src", "/escape", false, Propagation::kPrivate, true});
  spec.mounts.push_back(
      {dir_ + "/host/resolv", "/etc/resolv.conf", true, Propagation::kPrivate, false});
  StartReport r = Start(spec);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(WaitExit().exit_code, 0);
  EXPECT_THAT(Records(LogPath()), ElementsAre("stdout F mounted", "stdout F nameserver 10.0.0.1"));
  EXPECT_FALSE(fs::exists("/host-escape"));
  EXPECT_TRUE(fs::exists(dir_ + "/c1/upper/run/resolv.conf"));
}

TEST_F(MonitorTest, MaskedAndReadonlyPaths) {
  fs::create_directories(lower_ + "/secrets");
  WriteText(lower_ + "/secrets/key", "k\n");
  LaunchSpec spec = Spec({"sh", "-c",
                          "cat /etc/secret; ls /secrets; echo end; "
                          "echo x > /proc/sys/kernel/hostname && echo writable || echo ro"});
  spec.masked_paths = {"/etc/secret", "/secrets", "/proc/kcore", "/does/not/exist"};
  spec.readonly_paths = {"/proc/sys", "/not/there/either"};
  StartReport r = Start(spec);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(WaitExit().exit_code, 0);
  std::vector<std::string> recs = Records(LogPath());
  EXPECT_THAT(recs, Contains("stdout F end"));
  EXPECT_THAT(recs, Contains("stdout F ro"));
  EXPECT_THAT(recs, Not(Contains("stdout F top secret")));
  EXPECT_THAT(recs, Not(Contains("stdout F key")));
}

TEST_F(MonitorTest, StandardDevAndProc) {
  LaunchSpec spec = Spec({"sh", "-c",
                          "ls /dev; test -c /dev/null && echo null-ok; "
                          "test -L /dev/ptmx && echo ptmx-ok; echo hi > /dev/stdout; "
                          "grep -q ' /dev/shm tmpfs' /proc/mounts && echo shm-ok"});
  StartReport r = Start(spec);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(WaitExit().exit_code, 0);
  std::vector<std::string> recs = Records(LogPath());
  for (const char* want : {"null", "zero", "full", "random", "urandom", "tty", "pts", "shm",
                           "mqueue", "fd", "stdin", "stdout", "stderr", "ptmx"}) {
    EXPECT_THAT(recs, Contains(absl::StrCat("stdout F ", want)));
  }
  EXPECT_THAT(recs, Contains("stdout F null-ok"));
  EXPECT_THAT(recs, Contains("stdout F ptmx-ok"));
  EXPECT_THAT(recs, Contains("stdout F hi"));
  EXPECT_THAT(recs, Contains("stdout F shm-ok"));
}

TEST_F(MonitorTest, ReadonlyRootfsAndWorkingDirectory) {
  LaunchSpec spec = Spec({"sh", "-c", "pwd; touch /x 2>/dev/null && echo wrote || echo denied"});
  spec.rootfs.readonly = true;
  spec.process.cwd = "/work/here";
  fs::create_symlink("busybox", lower_ + "/bin/pwd");
  StartReport r = Start(spec);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(WaitExit().exit_code, 0);
  EXPECT_THAT(Records(LogPath()), ElementsAre("stdout F /work/here", "stdout F denied"));
}

TEST_F(MonitorTest, RunsAsTheResolvedUserWithSeccomp) {
  LaunchSpec spec = Spec({"sh", "-c", "id -u; id -g; echo $HOME"});
  spec.process.user.username = "nobody";
  spec.process.no_new_privs = true;
  spec.process.seccomp_json = RuntimeDefaultSeccompJson();
  StartReport r = Start(spec);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.uid, 65534u);
  EXPECT_EQ(r.gid, 65534u);
  EXPECT_EQ(WaitExit().exit_code, 0);
  EXPECT_THAT(Records(LogPath()),
              ElementsAre("stdout F 65534", "stdout F 65534", "stdout F /nonexistent"));
}

TEST_F(MonitorTest, MissingBinaryFailsTheStartAndLeavesNoProcess) {
  StartReport r = Start(Spec({"nosuch-binary", "arg"}));
  EXPECT_FALSE(r.ok);
  EXPECT_THAT(r.error, HasSubstr("nosuch-binary"));
  EXPECT_THAT(r.error, HasSubstr("ENOENT"));
  EXPECT_EQ(WaitMonitor(), 1);
  EXPECT_FALSE(fs::exists(bundle_ + "/" + kExitFile));
  // We are a subreaper: anything the monitor left would now be our child.
  EXPECT_THAT(Children(), ElementsAre());
}

TEST_F(MonitorTest, BadMountFailsTheStartNamingIt) {
  LaunchSpec spec = Spec({"true"});
  spec.mounts.push_back({dir_ + "/host/missing", "/data", false, Propagation::kPrivate, true});
  StartReport r = Start(spec);
  EXPECT_FALSE(r.ok);
  EXPECT_THAT(r.error, HasSubstr(dir_ + "/host/missing"));
  EXPECT_EQ(WaitMonitor(), 1);
  EXPECT_THAT(Children(), ElementsAre());
}

TEST_F(MonitorTest, NoLogPathDiscardsOutput) {
  LaunchSpec spec = Spec({"sh", "-c", "echo dropped"});
  spec.log_path = "";
  StartReport r = Start(spec);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(WaitExit().exit_code, 0);
  EXPECT_FALSE(fs::exists(LogPath()));
}

TEST_F(MonitorTest, Sigusr1ReopensTheLog) {
  LaunchSpec spec =
      Spec({"sh", "-c", "echo one; while ! test -e /ctl/go; do sleep 0.05; done; echo two"});
  spec.mounts.push_back({dir_ + "/host", "/ctl", false, Propagation::kPrivate, true});
  StartReport r = Start(spec);
  ASSERT_TRUE(r.ok) << r.error;
  ASSERT_TRUE(Eventually([&] { return ReadText(LogPath()).find("one") != std::string::npos; }));
  fs::rename(LogPath(), LogPath() + ".1");
  // The agent's call: SIGUSR1, then the monitor's answer (reopen.done).
  ASSERT_TRUE(
      ReopenContainerLog(bundle_, monitor_, r.monitor_start_time, LogPath(), absl::Seconds(10))
          .ok());
  EXPECT_TRUE(fs::exists(LogPath())) << "answered once the new file is open";
  EXPECT_TRUE(fs::exists(bundle_ + "/reopen.done"));
  WriteText(dir_ + "/host/go", "");
  EXPECT_EQ(WaitExit().exit_code, 0);
  EXPECT_THAT(Records(LogPath() + ".1"), ElementsAre("stdout F one"));
  EXPECT_THAT(Records(LogPath()), ElementsAre("stdout F two"));
  EXPECT_FALSE(fs::exists(bundle_ + "/reopen.err"));
}

// Issue 18, finding 7: a pid that names another process than the monitor
// that started (its start time differs) is never signalled.
TEST_F(MonitorTest, AReopenForAnotherProcessThanTheMonitorSignalsNothing) {
  StartReport r = Start(Spec({"sh", "-c", "echo one; sleep 1000"}));
  ASSERT_TRUE(r.ok) << r.error;
  ASSERT_NE(r.monitor_start_time, 0u);
  ASSERT_TRUE(Eventually([&] { return ReadText(LogPath()).find("one") != std::string::npos; }));
  fs::rename(LogPath(), LogPath() + ".1");
  auto s =
      ReopenContainerLog(bundle_, monitor_, r.monitor_start_time + 1, LogPath(), absl::Seconds(10));
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_FALSE(fs::exists(LogPath())) << "the monitor was signalled";
  EXPECT_FALSE(fs::exists(bundle_ + "/reopen.done"));
  ASSERT_EQ(::kill(r.pid, SIGKILL), 0);
  WaitExit();
}

TEST_F(MonitorTest, AReopenThatFailsAnswersWithTheMonitorsError) {
  StartReport r = Start(Spec({"sh", "-c", "echo one; sleep 1000"}));
  ASSERT_TRUE(r.ok) << r.error;
  ASSERT_TRUE(Eventually([&] { return ReadText(LogPath()).find("one") != std::string::npos; }));
  // The log's directory is gone: the monitor cannot open a new file there.
  const std::string log_dir = fs::path(LogPath()).parent_path().string();
  fs::rename(log_dir, log_dir + ".moved");
  auto s =
      ReopenContainerLog(bundle_, monitor_, r.monitor_start_time, LogPath(), absl::Seconds(10));
  fs::rename(log_dir + ".moved", log_dir);
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("ENOENT"));
  EXPECT_FALSE(fs::exists(bundle_ + "/reopen.done"));
  ASSERT_EQ(::kill(r.pid, SIGKILL), 0);
  WaitExit();
  EXPECT_EQ(
      ReopenContainerLog(bundle_, monitor_, r.monitor_start_time, LogPath(), absl::Seconds(10))
          .code(),
      absl::StatusCode::kFailedPrecondition)
      << "the monitor is gone";
}

TEST_F(MonitorTest, JoinsAnotherContainersNamespaces) {
  // c1 plays the pod's infra container: its namespaces are the pod's.
  StartReport infra = Start(Spec({"sleep", "1000"}));
  ASSERT_TRUE(infra.ok) << infra.error;
  const pid_t infra_monitor = monitor_;
  LaunchSpec spec = Spec({"sh", "-c", "hostname; echo $$; cat /proc/1/cmdline"}, "c2");
  for (auto [ns, name] : {std::pair{&spec.net, "net"}, std::pair{&spec.ipc, "ipc"},
                          std::pair{&spec.uts, "uts"}, std::pair{&spec.pid, "pid"}}) {
    *ns = {NsMode::kJoin, absl::StrCat("/proc/", infra.pid, "/ns/", name)};
  }
  spec.hostname = "not-used-when-joining";
  StartReport r = Start(spec);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(WaitExit(monitor_, spec.bundle).exit_code, 0);
  std::vector<std::string> recs = Records(LogPath("c2"));
  ASSERT_EQ(recs.size(), 3u) << ::testing::PrintToString(recs);
  EXPECT_EQ(recs[0], "stdout F podshim-test");
  EXPECT_NE(recs[1], "stdout F 1");  // pid 1 is the infra's sleep
  const std::string nul(1, '\0');
  EXPECT_EQ(recs[2], absl::StrCat("stdout F sleep", nul, "1000", nul));
  ASSERT_EQ(::kill(infra.pid, SIGKILL), 0);
  EXPECT_EQ(WaitExit(infra_monitor).exit_code, 137);
}

// Issue 18, finding 7: a pid TARGET container joins its target's pid
// namespace by /proc/PID, planned at CreateContainer; at start the pid must
// still name the target (its start time), or nothing is joined.
TEST_F(MonitorTest, JoinsATargetsPidNamespaceOnlyWhileItIsTheSameProcess) {
  StartReport target = Start(Spec({"sleep", "1000"}));
  ASSERT_TRUE(target.ok) << target.error;
  const pid_t target_monitor = monitor_;
  const std::string ns = absl::StrCat("/proc/", target.pid, "/ns/pid");

  LaunchSpec other = Spec({"true"}, "c3");
  other.pid = {NsMode::kJoin, ns, target.pid, target.start_time + 1};
  StartReport refused = Start(other);
  EXPECT_FALSE(refused.ok);
  EXPECT_THAT(refused.error, HasSubstr("that process is gone"));
  EXPECT_EQ(WaitMonitor(), 1);

  LaunchSpec spec = Spec({"cat", "/proc/1/cmdline"}, "c2");
  spec.pid = {NsMode::kJoin, ns, target.pid, target.start_time};
  StartReport r = Start(spec);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(WaitExit(monitor_, spec.bundle).exit_code, 0);
  const std::string nul(1, '\0');
  EXPECT_THAT(Records(LogPath("c2")),
              ElementsAre(absl::StrCat("stdout F sleep", nul, "1000", nul)));
  ASSERT_EQ(::kill(target.pid, SIGKILL), 0);
  EXPECT_EQ(WaitExit(target_monitor).exit_code, 137);
}

TEST_F(MonitorTest, CgroupOomScoreAndRlimits) {
  // A v1 pids cgroup (hybrid hosts have it; skipped elsewhere).
  const std::string cg = absl::StrCat("/sys/fs/cgroup/pids/podshim-monitor-test-", ::getpid());
  if (!fs::exists("/sys/fs/cgroup/pids/cgroup.procs")) GTEST_SKIP() << "no v1 pids hierarchy";
  ASSERT_EQ(::mkdir(cg.c_str(), 0755), 0);
  struct CgroupCleanup {
    std::string path;
    ~CgroupCleanup() { ::rmdir(path.c_str()); }
  } cleanup{cg};
  LaunchSpec spec = Spec({"sh", "-c", "cat /proc/self/oom_score_adj; ulimit -n; exec sleep 1000"});
  spec.cgroup_procs = {cg + "/cgroup.procs"};
  spec.process.oom_score_adj = 500;
  spec.process.rlimits = {{"RLIMIT_NOFILE", 1000, 1000}};
  StartReport r = Start(spec);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_THAT(ReadText(cg + "/cgroup.procs"), HasSubstr(absl::StrCat(r.pid, "\n")));
  // ExecSync joins the cgroup and the cgroup namespace: it sees itself at
  // the namespace's root.
  ExecOutput e = Exec(r.pid, {"sh", "-c", "grep pids /proc/self/cgroup; ulimit -n"});
  EXPECT_THAT(e.out, HasSubstr(":pids:/\n"));
  EXPECT_THAT(e.out, HasSubstr("\n1000\n"));
  ASSERT_EQ(::kill(r.pid, SIGKILL), 0);
  EXPECT_EQ(WaitExit().exit_code, 137);
  EXPECT_THAT(Records(LogPath()), ElementsAre("stdout F 500", "stdout F 1000"));
}

TEST_F(MonitorTest, ExecRunsCommandsInTheContainer) {
  StartReport r = Start(Spec({"sleep", "1000"}));
  ASSERT_TRUE(r.ok) << r.error;

  ExecOutput e = Exec(r.pid, {"cat", "/etc/hostname"});
  EXPECT_EQ(e.out, "from-image\n");
  EXPECT_EQ(e.status(), nlohmann::json({{"exit_code", 0}, {"timed_out", false}})) << e.status_line;
  EXPECT_EQ(e.helper_exit, 0);

  e = Exec(r.pid, {"sh", "-c", "hostname; echo oops >&2; exit 5"});
  EXPECT_EQ(e.out, "podshim-test\n");
  EXPECT_EQ(e.err, "oops\n");
  EXPECT_EQ(e.status()["exit_code"], 5);

  // The same pid namespace: the container's init is pid 1 there.
  e = Exec(r.pid, {"sh", "-c", "cat /proc/1/cmdline"});
  EXPECT_EQ(e.out, std::string("sleep\0"
                               "1000\0",
                               11));

  e = Exec(r.pid, {"sh", "-c", "kill -9 $$"});
  EXPECT_EQ(e.status()["exit_code"], 137);

  e = Exec(r.pid, {"nosuch-binary"});
  ASSERT_TRUE(e.status().contains("error")) << e.status_line;
  EXPECT_THAT(e.status()["error"].get<std::string>(), HasSubstr("nosuch-binary"));

  ASSERT_EQ(::kill(r.pid, SIGKILL), 0);
  EXPECT_EQ(WaitExit().exit_code, 137);
}

TEST_F(MonitorTest, ExecTimeoutKillsTheCommand) {
  StartReport r = Start(Spec({"sleep", "1000"}));
  ASSERT_TRUE(r.ok) << r.error;
  ExecOutput e = Exec(r.pid, {"sleep", "1000"}, /*timeout_ms=*/200);
  EXPECT_EQ(e.status(), nlohmann::json({{"exit_code", 137}, {"timed_out", true}})) << e.status_line;
  ASSERT_EQ(::kill(r.pid, SIGKILL), 0);
  EXPECT_EQ(WaitExit().exit_code, 137);
}

TEST_F(MonitorTest, ExecRunsAsTheContainerUser) {
  LaunchSpec spec = Spec({"sleep", "1000"});
  spec.process.user.uid = 65534;
  StartReport r = Start(spec);
  ASSERT_TRUE(r.ok) << r.error;
  ExecOutput e = Exec(r.pid, {"id", "-u"});
  EXPECT_EQ(e.out, "65534\n");
  ASSERT_EQ(::kill(r.pid, SIGKILL), 0);
  EXPECT_EQ(WaitExit().exit_code, 137);
}

}  // namespace
}  // namespace podshim::runtime

namespace podshim::runtime {
namespace {

// Reads `fd` until `want` has come (true) or 10 s passed or end of file
// (false); everything read is appended to `got`.
bool ReadUntil(int fd, absl::string_view want, std::string* got) {
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!absl::StrContains(*got, want)) {
    const int64_t left = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (left <= 0) return false;
    struct pollfd p {
      fd, POLLIN, 0
    };
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    char buf[4096];
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) return false;
    got->append(buf, static_cast<size_t>(n));
  }
  return true;
}

// Whether `fd` reaches end of file within 10 s, with nothing read before it.
bool AtEof(int fd) {
  struct pollfd p {
    fd, POLLIN, 0
  };
  if (::poll(&p, 1, 10'000) != 1) return false;
  char c = 0;
  return ::read(fd, &c, 1) == 0;
}

// Whether `fd` becomes readable within 10 s.
bool Readable(int fd) {
  struct pollfd p {
    fd, POLLIN, 0
  };
  return ::poll(&p, 1, 10'000) == 1;
}

void WriteText(int fd, absl::string_view text) {
  ASSERT_EQ(::write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
}

TEST_F(MonitorTest, AttachGivesStdinAndOutputAndStdinOnceClosesStdinAfterTheFirstSession) {
  LaunchSpec spec =
      Spec({"sh", "-c", "while read l; do echo got $l; echo e$l >&2; done; echo bye"});
  spec.process.stdin = true;
  spec.process.stdin_once = true;
  StartReport r = Start(spec);
  ASSERT_TRUE(r.ok) << r.error;
  ASSERT_TRUE(fs::exists(bundle_ + "/" + kAttachSocket));
  EXPECT_EQ((fs::status(bundle_ + "/" + kAttachSocket).permissions() & fs::perms::all),
            fs::perms(0600));
  auto a = AttachToContainer(bundle_, AttachStdio{true, true, true});
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE((*a)->in.valid() && (*a)->out.valid() && (*a)->err.valid());
  WriteText((*a)->in.get(), "a\n");
  std::string out, err;
  EXPECT_TRUE(ReadUntil((*a)->out.get(), "got a\n", &out)) << out;
  EXPECT_TRUE(ReadUntil((*a)->err.get(), "ea\n", &err)) << err;
  // The client ends stdin: with stdin_once the container's stdin closes, the
  // shell's loop ends, and the session sees the rest until the exit.
  (*a)->in.Reset();
  (*a)->StdinEnded();
  EXPECT_TRUE(ReadUntil((*a)->out.get(), "bye\n", &out)) << out;
  ASSERT_TRUE(Readable((*a)->exit_fd()));
  auto finished = (*a)->Finish();
  ASSERT_TRUE(finished.ok()) << finished.status();
  EXPECT_EQ(*finished, 0);
  EXPECT_EQ(WaitExit().exit_code, 0);
  EXPECT_THAT(Records(LogPath()), ElementsAre("stdout F got a", "stderr F ea", "stdout F bye"));
  EXPECT_FALSE(fs::exists(bundle_ + "/" + kAttachSocket)) << "removed at the exit";
  auto late = AttachToContainer(bundle_, AttachStdio{false, true, true});
  EXPECT_EQ(late.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(MonitorTest, WithoutStdinOnceAnEndedStdinDetachesAndTheNextSessionWritesOn) {
  LaunchSpec spec = Spec({"cat"});
  spec.process.stdin = true;
  StartReport r = Start(spec);
  ASSERT_TRUE(r.ok) << r.error;
  auto first = AttachToContainer(bundle_, AttachStdio{true, true, false});
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_FALSE((*first)->err.valid()) << "not asked for";
  WriteText((*first)->in.get(), "x\n");
  std::string out;
  EXPECT_TRUE(ReadUntil((*first)->out.get(), "x\n", &out));
  (*first)->in.Reset();
  (*first)->StdinEnded();
  ASSERT_TRUE(Readable((*first)->exit_fd()));
  auto finished = (*first)->Finish();
  ASSERT_TRUE(finished.ok()) << finished.status();
  EXPECT_TRUE(AtEof((*first)->out.get())) << "its output ended";

  // Two sessions at once both get the output; the container's stdin is open.
  auto second = AttachToContainer(bundle_, AttachStdio{true, true, false});
  ASSERT_TRUE(second.ok()) << second.status();
  auto watcher = AttachToContainer(bundle_, AttachStdio{false, true, false});
  ASSERT_TRUE(watcher.ok()) << watcher.status();
  EXPECT_FALSE((*watcher)->in.valid());
  WriteText((*second)->in.get(), "y\n");
  std::string a, b;
  EXPECT_TRUE(ReadUntil((*second)->out.get(), "y\n", &a));
  EXPECT_TRUE(ReadUntil((*watcher)->out.get(), "y\n", &b));
  second->reset();  // detaches: cat goes on
  ASSERT_EQ(::kill(r.pid, SIGKILL), 0);
  ASSERT_TRUE(Readable((*watcher)->exit_fd()));
  EXPECT_EQ((*watcher)->Finish().value_or(-1), 0) << "ended by the exit";
  EXPECT_EQ(WaitExit().exit_code, 137);
  EXPECT_THAT(Records(LogPath()), ElementsAre("stdout F x", "stdout F y"));
}

TEST_F(MonitorTest, WithStdinOnceASessionThatGoesClosesStdinForTheNext) {
  LaunchSpec spec = Spec({"sleep", "1000"});
  spec.process.stdin = true;
  spec.process.stdin_once = true;
  StartReport r = Start(spec);
  ASSERT_TRUE(r.ok) << r.error;
  // A session without stdin leaves it alone.
  auto watcher = AttachToContainer(bundle_, AttachStdio{false, true, false});
  ASSERT_TRUE(watcher.ok()) << watcher.status();
  watcher->reset();
  auto first = AttachToContainer(bundle_, AttachStdio{true, true, false});
  ASSERT_TRUE(first.ok()) << first.status();
  first->reset();  // its client went away (podshimd, or its client, gone)
  // The monitor notices the closed connection on its next turn.
  absl::StatusOr<std::unique_ptr<AttachSession>> next;
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  do {
    next = AttachToContainer(bundle_, AttachStdio{true, true, false});
    if (!next.ok()) break;
    next->reset();
    absl::SleepFor(absl::Milliseconds(10));
  } while (absl::Now() < deadline);
  EXPECT_EQ(next.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(next.status().message(), HasSubstr("stdin is closed"));
  ASSERT_EQ(::kill(r.pid, SIGKILL), 0);
  EXPECT_EQ(WaitExit().exit_code, 137);
}

TEST_F(MonitorTest, AttachRefusesStdinToAContainerWithoutIt) {
  StartReport r = Start(Spec({"sleep", "1000"}));
  ASSERT_TRUE(r.ok) << r.error;
  auto a = AttachToContainer(bundle_, AttachStdio{true, true, true});
  EXPECT_EQ(a.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(a.status().message(), HasSubstr("without stdin"));
  auto output = AttachToContainer(bundle_, AttachStdio{false, true, true});
  ASSERT_TRUE(output.ok()) << output.status();
  EXPECT_EQ((*output)->Resize(80, 24).code(), absl::StatusCode::kFailedPrecondition);
  // At most kMaxAttachSessions at once.
  std::vector<std::unique_ptr<AttachSession>> more;
  for (int i = 1; i < kMaxAttachSessions; ++i) {
    auto s = AttachToContainer(bundle_, AttachStdio{false, true, false});
    ASSERT_TRUE(s.ok()) << i << ": " << s.status();
    more.push_back(std::move(*s));
  }
  auto one_too_many = AttachToContainer(bundle_, AttachStdio{false, true, false});
  EXPECT_EQ(one_too_many.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(one_too_many.status().message(), HasSubstr("too many"));
  more.clear();
  (*output)->Detach();
  ASSERT_TRUE(Readable((*output)->exit_fd()));
  ASSERT_EQ(::kill(r.pid, SIGKILL), 0);
  EXPECT_EQ(WaitExit().exit_code, 137);
}

TEST_F(MonitorTest, ATerminalContainerIsAttachedToItsTerminalAndResized) {
  LaunchSpec spec = Spec({"sh", "-c", "read l; stty size; test -t 0 && echo isatty; exit 3"});
  spec.process.terminal = true;
  spec.process.stdin = true;
  StartReport r = Start(spec);
  ASSERT_TRUE(r.ok) << r.error;
  auto a = AttachToContainer(bundle_, AttachStdio{true, true, false});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_FALSE((*a)->err.valid()) << "a terminal has one output";
  ASSERT_TRUE((*a)->Resize(100, 40).ok());
  WriteText((*a)->in.get(), "go\n");
  std::string out;
  EXPECT_TRUE(ReadUntil((*a)->out.get(), "isatty", &out)) << out;
  EXPECT_THAT(out, HasSubstr("40 100"));
  ASSERT_TRUE(Readable((*a)->exit_fd()));
  EXPECT_EQ((*a)->Finish().value_or(-1), 0);
  EXPECT_EQ(WaitExit().exit_code, 3);
  EXPECT_THAT(ReadText(LogPath()), HasSubstr("isatty"));
}

TEST_F(MonitorTest, AnAttachThatDoesNotReadIsCutOffAndTheLogLosesNothing) {
  LaunchSpec spec = Spec({"sh", "-c", "read l; dd if=/dev/zero bs=65536 count=48 2>/dev/null"});
  spec.process.stdin = true;
  StartReport r = Start(spec);
  ASSERT_TRUE(r.ok) << r.error;
  auto a = AttachToContainer(bundle_, AttachStdio{true, true, false});
  ASSERT_TRUE(a.ok()) << a.status();
  WriteText((*a)->in.get(), "go\n");
  // 3 MiB of output, and this session reads none of it.
  ASSERT_TRUE(Readable((*a)->exit_fd()));
  auto finished = (*a)->Finish();
  EXPECT_EQ(finished.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(finished.status().message(), HasSubstr("keep up"));
  EXPECT_EQ(WaitExit().exit_code, 0);
  size_t logged = 0;
  for (const std::string& rec : Records(LogPath())) {
    logged += rec.size() - std::string("stdout P ").size();
  }
  EXPECT_EQ(logged, size_t{3} << 20);
}

TEST(MonitorLoopTest, ArgvRoundTrips) {
  MonitorLoopArgs a;
  a.bundle = "/run/podshim/containers/c 1";
  a.child = 4242;
  a.out_fd = 5;
  a.err_fd = 6;
  a.log_fd = -1;
  a.log_path = "";
  a.oom_counter_file = "/sys/fs/cgroup/memory/x/memory.oom_control";
  a.stdin_fd = 7;
  a.tty = true;
  a.stdin_once = true;
  a.attach_fd = 8;
  std::vector<std::string> text = MonitorLoopArgv("/bin/loop", a);
  std::vector<const char*> argv;
  argv.reserve(text.size());
  for (const auto& t : text) argv.push_back(t.c_str());
  MonitorLoopArgs b;
  std::string error;
  ASSERT_TRUE(ParseMonitorLoopArgv(static_cast<int>(argv.size()), argv.data(), &b, &error))
      << error;
  EXPECT_EQ(b.bundle, a.bundle);
  EXPECT_EQ(b.child, 4242);
  EXPECT_EQ(b.out_fd, 5);
  EXPECT_EQ(b.err_fd, 6);
  EXPECT_EQ(b.log_fd, -1);
  EXPECT_EQ(b.log_path, "");
  EXPECT_EQ(b.oom_counter_file, a.oom_counter_file);
  EXPECT_EQ(b.stdin_fd, 7);
  EXPECT_TRUE(b.tty);
  EXPECT_TRUE(b.stdin_once);
  EXPECT_EQ(b.attach_fd, 8);
}

TEST(MonitorLoopTest, BadArgvIsRefusedWithTheFlagNamed) {
  MonitorLoopArgs b;
  std::string error;
  const char* no_child[] = {"loop", "--bundle", "/b"};
  EXPECT_FALSE(ParseMonitorLoopArgv(3, no_child, &b, &error));
  EXPECT_THAT(error, ::testing::HasSubstr("--child"));
  const char* bad_fd[] = {"loop", "--bundle", "/b", "--child", "7", "--out-fd", "x"};
  EXPECT_FALSE(ParseMonitorLoopArgv(7, bad_fd, &b, &error));
  EXPECT_THAT(error, ::testing::HasSubstr("--out-fd"));
  const char* unknown[] = {"loop", "--nope", "1"};
  EXPECT_FALSE(ParseMonitorLoopArgv(3, unknown, &b, &error));
  EXPECT_THAT(error, ::testing::HasSubstr("--nope"));
  const char* dangling[] = {"loop", "--bundle"};
  EXPECT_FALSE(ParseMonitorLoopArgv(2, dangling, &b, &error));
}

TEST(MonitorLoopTest, ExitJsonIsWhatTheAgentReads) {
  auto e =
      ExitStatusFromJson(ExitStatusJsonText(137, 9, true, 1'700'000'000'123'456'789, "OOMKilled"));
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->exit_code, 137);
  EXPECT_EQ(e->signal, 9);
  EXPECT_TRUE(e->oom_killed);
  EXPECT_EQ(e->finished_at_ns, 1'700'000'000'123'456'789);
  EXPECT_EQ(e->reason, "OOMKilled");
}

TEST(MonitorLoopTest, OomKillCounter) {
  EXPECT_TRUE(OomKillCounted("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n"));
  EXPECT_FALSE(OomKillCounted("oom_kill_disable 0\nunder_oom 0\noom_kill 0\n"));
  EXPECT_FALSE(OomKillCounted("oom_group_kill 3\n"));
  EXPECT_FALSE(OomKillCounted(""));
}

}  // namespace
}  // namespace podshim::runtime

namespace podshim::runtime {
namespace {

TEST(KillAndReapTest, KillsAndReapsItsChildrenWithoutPolling) {
  std::vector<int> pids;
  for (int i = 0; i < 3; ++i) {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::pause();
      ::_exit(0);
    }
    pids.push_back(pid);
  }
  KillAndReap(pids, absl::Seconds(30));
  for (int pid : pids) {
    // Reaped already: nothing is left to wait for.
    EXPECT_EQ(::waitpid(pid, nullptr, WNOHANG), -1) << pid;
    EXPECT_EQ(errno, ECHILD);
  }
  KillAndReap({0, 1, -5}, absl::Seconds(1));  // never init, never a group
}

}  // namespace
}  // namespace podshim::runtime
