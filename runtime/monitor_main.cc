// podshim-monitor: the per-container monitor and the ExecSync helper.
//
//   podshim-monitor start --bundle DIR
//   podshim-monitor wait     (started ahead: reads DIR and a newline from fd 4, then starts)
//   podshim-monitor exec --bundle DIR --pid PID [--pid-start T] [--timeout-ms N]
//                        [--stdin] [--tty] -- ARGV...
//
// Both write one JSON line to fd 3 (the agent's status pipe). `start` forks
// the container's init (runtime/container_init.h), reports once the workload
// has exec'd, then copies its stdout/stderr into the CRI log, reaps, and
// records the exit status in DIR/exit.json. `exec` joins the running
// container and runs one command in it. Single-threaded by design.
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "nlohmann/json.hpp"
#include "runtime/container_init.h"
#include "runtime/cri_log.h"
#include "runtime/files.h"
#include "runtime/launch_spec.h"
#include "runtime/monitor_loop.h"
#include "runtime/pidfd.h"
#include "runtime/unique_fd.h"

namespace podshim::runtime {
namespace {

constexpr int kStatusFd = 3;

int64_t MonotonicNanos() {
  struct timespec ts {};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// Fds 0-2 must be taken so no pipe lands on them (the child dup2s onto them).
void EnsureStdio() {
  for (int fd = 0; fd <= 2; ++fd) {
    if (::fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
      int null = ::open("/dev/null", O_RDWR);
      if (null >= 0 && null != fd) {
        ::dup2(null, fd);
        ::close(null);
      }
    }
  }
}

// fd 3: one JSON line, then closed. Absent when the caller gave none.
class StatusPipe {
 public:
  StatusPipe() {
    if (::fcntl(kStatusFd, F_GETFD) >= 0) {
      ::fcntl(kStatusFd, F_SETFD, FD_CLOEXEC);
      fd_ = UniqueFd(kStatusFd);
    }
  }
  void Send(const std::string& json) {
    if (!fd_.valid()) return;
    (void)WriteAll(fd_.get(), absl::StrCat(json, "\n"), "status pipe");
    fd_.Reset();
  }
  // For the forked child, which must not keep the agent waiting.
  void CloseInChild() { fd_.Reset(); }

 private:
  UniqueFd fd_;
};

struct Pipe {
  UniqueFd read, write;
};
absl::StatusOr<Pipe> MakePipe(absl::string_view what) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return ErrnoError(errno, "pipe", what);
  return Pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

// Reads `fd` until EOF; `deadline_ns` (monotonic, 0 = none) bounds the wait.
absl::StatusOr<std::string> ReadUntilEof(int fd, int64_t deadline_ns) {
  std::string out;
  char buf[4096];
  for (;;) {
    if (deadline_ns != 0) {
      int64_t left = deadline_ns - MonotonicNanos();
      if (left <= 0) return absl::DeadlineExceededError("read sync pipe: timed out");
      struct pollfd p {
        fd, POLLIN, 0
      };
      int r = ::poll(&p, 1, static_cast<int>(left / 1'000'000 + 1));
      if (r < 0 && errno != EINTR) return ErrnoError(errno, "poll", "sync pipe");
      if (r <= 0) continue;
    }
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, "read", "sync pipe");
    }
    if (n == 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

absl::Status EnterPidNamespace(const NamespaceSpec& ns) {
  switch (ns.mode) {
    case NsMode::kHost:
      return absl::OkStatus();
    case NsMode::kNew:
      if (::unshare(CLONE_NEWPID) != 0) return ErrnoError(errno, "unshare", "pid namespace");
      return absl::OkStatus();
    case NsMode::kJoin: {
      auto fd = OpenJoinedNamespace(ns, "pid");
      if (!fd.ok()) return fd.status();
      if (::setns(fd->get(), CLONE_NEWPID) != 0)
        return ErrnoError(errno, "setns pid namespace", ns.path);
      return absl::OkStatus();
    }
  }
  return absl::InternalError("unknown namespace mode");
}

absl::StatusOr<LaunchSpec> ReadSpec(const std::string& bundle) {
  auto text = ReadFile(absl::StrCat(bundle, "/", kSpecFile));
  if (!text.ok()) return text.status();
  auto spec = LaunchSpecFromJson(*text);
  if (!spec.ok()) {
    return absl::Status(spec.status().code(), absl::StrCat("parse ", bundle, "/", kSpecFile, ": ",
                                                           spec.status().message()));
  }
  return spec;
}

// --- start -----------------------------------------------------------------------

// The container's stdio as ContainerConfig asks: pipes for stdout and stderr
// and /dev/null for stdin; a pipe for stdin too with `stdin`; with
// `terminal` one terminal for all three (the monitor keeps its master).
struct ContainerStdio {
  UniqueFd child_in, child_out, child_err;  // the init's ends
  UniqueFd out, err;                        // ours to read (terminal: out is the master)
  UniqueFd in;                              // ours to write (-1: no stdin)
};

absl::StatusOr<ContainerStdio> MakeContainerStdio(const ProcessSpec& process) {
  ContainerStdio io;
  if (process.terminal) {
    UniqueFd master(::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
    if (!master.valid()) return ErrnoError(errno, "open a terminal for", "container");
    char name[128];
    if (::grantpt(master.get()) != 0 || ::unlockpt(master.get()) != 0 ||
        ::ptsname_r(master.get(), name, sizeof name) != 0) {
      return ErrnoError(errno, "set up a terminal for", "container");
    }
    UniqueFd slave(::open(name, O_RDWR | O_NOCTTY | O_CLOEXEC));
    if (!slave.valid()) return ErrnoError(errno, "open", name);
    io.child_in.Reset(::fcntl(slave.get(), F_DUPFD_CLOEXEC, 3));
    io.child_out.Reset(::fcntl(slave.get(), F_DUPFD_CLOEXEC, 3));
    io.child_err = std::move(slave);
    if (!io.child_in.valid() || !io.child_out.valid()) {
      return ErrnoError(errno, "duplicate", "the container's terminal");
    }
    if (process.stdin) {
      io.in.Reset(::fcntl(master.get(), F_DUPFD_CLOEXEC, 3));
      if (!io.in.valid()) return ErrnoError(errno, "duplicate", "the container's terminal");
    }
    io.out = std::move(master);
    return io;
  }
  auto out = MakePipe("container stdout");
  if (!out.ok()) return out.status();
  auto err = MakePipe("container stderr");
  if (!err.ok()) return err.status();
  io.out = std::move(out->read);
  io.child_out = std::move(out->write);
  io.err = std::move(err->read);
  io.child_err = std::move(err->write);
  if (process.stdin) {
    auto in = MakePipe("container stdin");
    if (!in.ok()) return in.status();
    io.child_in = std::move(in->read);
    io.in = std::move(in->write);
  } else {
    io.child_in.Reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (!io.child_in.valid()) return ErrnoError(errno, "open", "/dev/null");
  }
  return io;
}

// Listens on DIR/attach (monitor_loop.h).
absl::StatusOr<UniqueFd> ListenForAttach(const std::string& bundle) {
  UniqueFd dir(::open(bundle.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!dir.valid()) return ErrnoError(errno, "open", bundle);
  UniqueFd sock(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!sock.valid()) return ErrnoError(errno, "socket", "attach");
  struct sockaddr_un addr = AttachSocketAddress(dir.get());
  (void)::unlinkat(dir.get(), kAttachSocket, 0);  // a stale one from an earlier start
  if (::bind(sock.get(), reinterpret_cast<struct sockaddr*>(&addr), sizeof addr) != 0) {
    return ErrnoError(errno, "bind", absl::StrCat(bundle, "/", kAttachSocket));
  }
  if (::fchmodat(dir.get(), kAttachSocket, 0600, 0) != 0 || ::listen(sock.get(), 16) != 0) {
    const int e = errno;
    (void)::unlinkat(dir.get(), kAttachSocket, 0);
    return ErrnoError(e, "listen on", absl::StrCat(bundle, "/", kAttachSocket));
  }
  return sock;
}

// argv[0]: podshimd runs this binary from a sealed copy (runtime/spawn.h,
// SealHelper), so /proc/self/exe names a memfd and argv[0] the file on disk.
std::string g_argv0;

// The path of podshim-monitor-loop: beside this binary (as argv[0] names it,
// else as /proc/self/exe does).
std::string LoopBinaryPath() {
  std::string self = g_argv0;
  if (self.find('/') == std::string::npos) {
    char buf[4096];
    ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
    if (n <= 0) return kMonitorLoopBinary;
    self.assign(buf, static_cast<size_t>(n));
  }
  size_t slash = self.rfind('/');
  return absl::StrCat(self.substr(0, slash == std::string::npos ? 0 : slash + 1),
                      kMonitorLoopBinary);
}

// Becomes podshim-monitor-loop for the container's lifetime: that binary is a
// fraction of this one's size, so each running container costs little memory.
// When the exec fails the loop runs here instead; it is the same code.
[[noreturn]] void EnterLoop(const MonitorLoopArgs& args) {
  for (int fd : {args.out_fd, args.err_fd, args.log_fd, args.stdin_fd, args.attach_fd}) {
    if (fd >= 0) ::fcntl(fd, F_SETFD, 0);
  }
  const std::vector<std::string> argv_text = MonitorLoopArgv(LoopBinaryPath(), args);
  std::vector<char*> argv;
  argv.reserve(argv_text.size() + 1);
  for (const std::string& a : argv_text) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  ::execv(argv[0], argv.data());
  ::_exit(RunMonitorLoop(args));
}

int RunStart(const std::string& bundle) {
  StatusPipe status;
  ::signal(SIGPIPE, SIG_IGN);
  StartReport report;
  report.monitor_pid = static_cast<int>(::getpid());
  if (auto start = ProcessStartTime(report.monitor_pid); start.ok()) {
    report.monitor_start_time = *start;
  }
  auto fail = [&](const absl::Status& s) {
    report.ok = false;
    report.error = std::string(s.message());
    status.Send(StartReportToJson(report));
    return 1;
  };

  auto spec = ReadSpec(bundle);
  if (!spec.ok()) return fail(spec.status());
  if (::prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
    return fail(ErrnoError(errno, "prctl PR_SET_CHILD_SUBREAPER", "monitor"));
  }
  auto io = MakeContainerStdio(spec->process);
  if (!io.ok()) return fail(io.status());
  auto sync = MakePipe("sync");
  if (!sync.ok()) return fail(sync.status());
  auto go = MakePipe("go");
  if (!go.ok()) return fail(go.status());

  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGUSR1);
  if (int e = ::pthread_sigmask(SIG_BLOCK, &mask, nullptr); e != 0) {
    return fail(ErrnoError(e, "block signals", "monitor"));
  }
  UniqueFd sigfd(::signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!sigfd.valid()) return fail(ErrnoError(errno, "signalfd", "monitor"));

  if (auto s = EnterPidNamespace(spec->pid); !s.ok()) return fail(s);
  pid_t child = ::fork();
  if (child < 0) return fail(ErrnoError(errno, "fork", "container init"));
  if (child == 0) {
    status.CloseInChild();
    go->write.Reset();  // so that the monitor's death is end of file there
    ChildFds fds{io->child_in.get(), io->child_out.get(), io->child_err.get(), sync->write.get(),
                 go->read.get()};
    fds.controlling_tty = spec->process.terminal;
    RunContainerInit(*spec, fds);
  }
  io->child_in.Reset();
  io->child_out.Reset();
  io->child_err.Reset();
  sync->write.Reset();
  go->read.Reset();
  auto kill_child = [&] {
    ::kill(child, SIGKILL);
    int st = 0;
    while (::waitpid(child, &st, 0) < 0 && errno == EINTR) {
    }
  };
  // While the init makes its mounts, move it into its cgroups; it waits for
  // the go byte before it execs.
  if (auto s = MoveIntoCgroups(static_cast<int>(child), spec->cgroup_procs); !s.ok()) {
    kill_child();
    return fail(s);
  }
  if (::write(go->write.get(), "g", 1) != 1) {
    // The init is gone already; the sync pipe says why.
  }
  go->write.Reset();
  // The pid file and the log are made while the init still makes its
  // mounts: both are there before the report, which is all the agent needs.
  if (auto s = WriteFileAtomic(absl::StrCat(bundle, "/", kMonitorPidFile),
                               absl::StrCat(report.monitor_pid, "\n"), 0644);
      !s.ok()) {
    kill_child();
    return fail(s);
  }
  CriLogFile log;
  if (!spec->log_path.empty()) {
    if (int e = log.Open(spec->log_path); e != 0) {
      kill_child();
      return fail(ErrnoError(e, "open log file", spec->log_path));
    }
  }
  auto attach = ListenForAttach(bundle);
  if (!attach.ok()) {
    kill_child();
    return fail(attach.status());
  }

  auto text = ReadUntilEof(sync->read.get(), 0);
  SyncResult result;
  if (text.ok()) {
    result = ParseSyncMessages(*text);
  } else {
    result.error = std::string(text.status().message());
  }
  sync->read.Reset();
  if (!result.ok) {
    kill_child();
    (void)::unlink(absl::StrCat(bundle, "/", kAttachSocket).c_str());
    return fail(absl::FailedPreconditionError(result.error));
  }
  report.ok = true;
  report.pid = static_cast<int>(child);
  // Our child, not reaped yet: its pid names it alone while we read this.
  if (auto start = ProcessStartTime(child); start.ok()) report.start_time = *start;
  report.uid = result.user.uid;
  report.gid = result.user.gid;
  report.groups = result.user.groups;
  // Test-only: PODSHIM_MONITOR_DELAY_MS holds the report back, so that a
  // crash of podshimd before it arrives can be tested (tests/e2e/test_restart.py).
  // NOLINTNEXTLINE(concurrency-mt-unsafe): the monitor is single-threaded
  if (const char* delay = std::getenv("PODSHIM_MONITOR_DELAY_MS"); delay != nullptr) {
    int64_t ms = 0;
    if (absl::SimpleAtoi(delay, &ms) && ms > 0 && ms < 60'000)
      ::usleep(static_cast<useconds_t>(ms) * 1000);
  }
  std::string json = StartReportToJson(report);
  if (auto s = WriteFileAtomic(absl::StrCat(bundle, "/", kStartedFile), json, 0644); !s.ok()) {
    // The workload runs: report it anyway; the agent reads the pipe.
    (void)s;
  }
  status.Send(json);

  MonitorLoopArgs loop;
  loop.bundle = bundle;
  loop.child = static_cast<int>(child);
  loop.out_fd = io->out.Release();
  loop.err_fd = io->err.Release();
  loop.stdin_fd = io->in.Release();
  loop.tty = spec->process.terminal;
  loop.stdin_once = spec->process.stdin_once;
  loop.attach_fd = attach->Release();
  loop.log_path = log.path();
  loop.log_fd = log.is_open() ? log.fd() : -1;  // `log` is never destroyed: we exec or exit
  loop.oom_counter_file = spec->oom_counter_file;
  sigfd.Reset();  // the loop makes its own; the mask stays, so no signal is lost
  EnterLoop(loop);
}

// --- exec ------------------------------------------------------------------------

struct ExecArgs {
  std::string bundle;
  int pid = 0;
  uint64_t pid_start = 0;  // its ProcessStartTime; 0: not checked
  int64_t timeout_ms = 0;
  // Streaming exec (the CRI's Exec): the command's stdin is this helper's
  // fd 0 instead of /dev/null; with `tty`, fds 0-2 are a terminal that
  // becomes the command's controlling terminal in a session of its own.
  bool stdin = false;
  bool tty = false;
  std::vector<std::string> argv;
};

absl::Status JoinContainer(const LaunchSpec& spec, int pid, uint64_t pid_start) {
  // A pidfd first, checked against the start time: `pid` is the container's
  // process and not a later one that got its number (issue 18, finding 7).
  auto process = OpenProcess(pid, pid_start);
  if (!process.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the container's process is gone: ", process.status().message()));
  }
  struct Ns {
    const char* name;
    int type;
  };
  // The mount namespace goes last: after it the host's /proc is gone.
  const Ns kinds[] = {{"cgroup", CLONE_NEWCGROUP}, {"ipc", CLONE_NEWIPC}, {"uts", CLONE_NEWUTS},
                      {"net", CLONE_NEWNET},       {"pid", CLONE_NEWPID}, {"mnt", CLONE_NEWNS}};
  std::vector<UniqueFd> fds;
  for (const Ns& ns : kinds) {
    std::string path = absl::StrCat("/proc/", pid, "/ns/", ns.name);
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) return ErrnoError(errno, "open", path);
    fds.push_back(std::move(fd));
  }
  // Still alive now, so the namespace files above were its own.
  struct pollfd exited = {process->get(), POLLIN, 0};
  if (::poll(&exited, 1, 0) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("the container's process ", pid, " exited while ExecSync joined it"));
  }
  for (const std::string& procs : spec.cgroup_procs) {
    UniqueFd fd(::open(procs.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd.valid() || ::write(fd.get(), "0", 1) != 1)
      return ErrnoError(errno, "join cgroup", procs);
  }
  for (size_t i = 0; i < fds.size(); ++i) {
    std::string own = absl::StrCat("/proc/self/ns/", kinds[i].name);
    struct stat theirs {
    }, ours{};
    if (::fstat(fds[i].get(), &theirs) == 0 && ::stat(own.c_str(), &ours) == 0 &&
        theirs.st_dev == ours.st_dev && theirs.st_ino == ours.st_ino) {
      continue;  // already there (a host namespace)
    }
    if (::setns(fds[i].get(), kinds[i].type) != 0) {
      return ErrnoError(errno, absl::StrCat("setns ", kinds[i].name, " namespace of pid"),
                        absl::StrCat(pid));
    }
  }
  return absl::OkStatus();
}

// Waits for `child` until `deadline_ns` (monotonic, 0 = none) through its
// pidfd (or by polling its state without one). True, with its wait status,
// once it is reaped; false when the deadline passed first.
bool WaitUntil(pid_t child, int pidfd, int64_t deadline_ns, int* wait_status) {
  while (deadline_ns != 0) {
    int64_t left = deadline_ns - MonotonicNanos();
    if (left <= 0) return false;
    if (pidfd < 0) {
      pid_t r = ::waitpid(child, wait_status, WNOHANG);
      if (r == child) return true;
      struct timespec ts {
        0, 10'000'000
      };
      ::nanosleep(&ts, nullptr);
      continue;
    }
    struct pollfd p {
      pidfd, POLLIN, 0
    };
    int r = ::poll(&p, 1, static_cast<int>(left / 1'000'000 + 1));
    if (r > 0 || (r < 0 && errno != EINTR)) break;
  }
  while (::waitpid(child, wait_status, 0) < 0 && errno == EINTR) {
  }
  return true;
}

int RunExec(const ExecArgs& args) {
  StatusPipe status;
  ::signal(SIGPIPE, SIG_IGN);
  auto fail = [&](const absl::Status& s) {
    status.Send(nlohmann::json{{"error", std::string(s.message())}}.dump());
    return 1;
  };
  auto spec = ReadSpec(args.bundle);
  if (!spec.ok()) return fail(spec.status());
  auto started_text = ReadFile(absl::StrCat(args.bundle, "/", kStartedFile));
  if (!started_text.ok()) return fail(started_text.status());
  auto started = StartReportFromJson(*started_text);
  if (!started.ok()) return fail(started.status());
  ResolvedUser user;
  user.uid = started->uid;
  user.gid = started->gid;
  user.groups = started->groups;

  UniqueFd devnull(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!devnull.valid()) return fail(ErrnoError(errno, "open", "/dev/null"));
  if (args.tty && ::isatty(0) == 0) {
    return fail(absl::InvalidArgumentError("--tty: stdin is not a terminal"));
  }
  if (auto s = JoinContainer(*spec, args.pid, args.pid_start); !s.ok()) return fail(s);
  auto sync = MakePipe("sync");
  if (!sync.ok()) return fail(sync.status());

  const int64_t start = MonotonicNanos();
  const int64_t deadline = args.timeout_ms > 0 ? start + args.timeout_ms * 1'000'000 : 0;
  pid_t child = ::fork();
  if (child < 0) return fail(ErrnoError(errno, "fork", "exec"));
  if (child == 0) {
    status.CloseInChild();
    ChildFds fds{args.stdin || args.tty ? 0 : devnull.get(), 1, 2, sync->write.get()};
    fds.controlling_tty = args.tty;
    RunExecChild(*spec, user, args.argv, fds);
  }
  sync->write.Reset();
  devnull.Reset();
  // Without a pidfd (an old kernel) WaitUntil polls the child's state.
  auto opened = OpenPidfd(child);
  UniqueFd pidfd = opened.ok() ? std::move(*opened) : UniqueFd();

  bool timed_out = false;
  auto kill_and_reap = [&]() {
    ::kill(child, SIGKILL);
    int st = 0;
    while (::waitpid(child, &st, 0) < 0 && errno == EINTR) {
    }
    return st;
  };
  auto text = ReadUntilEof(sync->read.get(), deadline);
  if (!text.ok()) {
    if (!absl::IsDeadlineExceeded(text.status())) {
      kill_and_reap();
      return fail(text.status());
    }
    timed_out = true;
  } else if (absl::StartsWith(*text, "error ")) {
    kill_and_reap();
    return fail(absl::FailedPreconditionError(ParseSyncMessages(*text).error));
  }

  int wait_status = 0;
  if (timed_out) {
    wait_status = kill_and_reap();
  } else if (!WaitUntil(child, pidfd.get(), deadline, &wait_status)) {
    timed_out = true;
    wait_status = kill_and_reap();
  }
  int code = ExitCodeOf(wait_status, nullptr);
  status.Send(nlohmann::json{{"exit_code", code}, {"timed_out", timed_out}}.dump());
  return 0;
}

// --- arguments -------------------------------------------------------------------

// `wait`: a monitor started before it is needed (runtime::MonitorPool). It
// blocks on fd 4 for the bundle directory, one line; at end of file without
// one (podshimd stopped or died) it exits quietly.
constexpr int kControlFd = 4;

int Usage(absl::string_view why);

int RunWait() {
  std::string line;
  char c = 0;
  for (;;) {
    ssize_t n = ::read(kControlFd, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return 0;  // never asked for
    if (c == '\n') break;
    line.push_back(c);
    if (line.size() > 4096) return Usage("bundle path on fd 4 too long");
  }
  ::close(kControlFd);
  // The pool spawns under SCHED_IDLE (work ahead of need); now this monitor
  // is needed. Best effort: at idle priority it still works, only slower.
  struct sched_param param {};
  (void)::sched_setscheduler(0, SCHED_OTHER, &param);
  if (line.empty() || line[0] != '/') return Usage("bundle on fd 4 must be an absolute path");
  return RunStart(line);
}

int Usage(absl::string_view why) {
  std::string msg = absl::StrCat(
      "podshim-monitor: ", why,
      "\nusage: podshim-monitor start --bundle DIR\n"
      "       podshim-monitor wait   (DIR and a newline on fd 4)\n"
      "       podshim-monitor exec --bundle DIR --pid PID [--pid-start T] [--timeout-ms N] "
      "[--stdin] [--tty] -- ARGV...\n");
  (void)WriteAll(2, msg, "stderr");
  return 2;
}

int Main(int argc, char** argv) {
  // Not dumpable (the CVE-2019-5736 class): a container process may not
  // open this process's /proc/PID/exe or memory while it joins the
  // container, nor those of the children it forks before they exec.
  ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  EnsureStdio();
  g_argv0 = argc > 0 ? argv[0] : "";
  if (argc < 2) return Usage("no command");
  const std::string command = argv[1];
  if (command == "wait" && argc == 2) return RunWait();
  ExecArgs args;
  bool have_pid = false;
  for (int i = 2; i < argc; ++i) {
    absl::string_view a = argv[i];
    if (a == "--") {
      for (int j = i + 1; j < argc; ++j) args.argv.emplace_back(argv[j]);
      break;
    }
    if (a == "--stdin") {
      args.stdin = true;
      continue;
    }
    if (a == "--tty") {
      args.tty = true;
      continue;
    }
    std::string value;
    absl::string_view name = a;
    if (size_t eq = a.find('='); eq != absl::string_view::npos) {
      name = a.substr(0, eq);
      value = std::string(a.substr(eq + 1));
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      return Usage(absl::StrCat("missing value for ", a));
    }
    if (name == "--bundle") {
      args.bundle = value;
    } else if (name == "--pid") {
      if (!absl::SimpleAtoi(value, &args.pid) || args.pid <= 0) return Usage("bad --pid");
      have_pid = true;
    } else if (name == "--pid-start") {
      if (!absl::SimpleAtoi(value, &args.pid_start)) return Usage("bad --pid-start");
    } else if (name == "--timeout-ms") {
      if (!absl::SimpleAtoi(value, &args.timeout_ms) || args.timeout_ms < 0) {
        return Usage("bad --timeout-ms");
      }
    } else {
      return Usage(absl::StrCat("unknown flag ", a));
    }
  }
  if (args.bundle.empty()) return Usage("--bundle is required");
  if (command == "start") return RunStart(args.bundle);
  if (command == "exec") {
    if (!have_pid) return Usage("--pid is required");
    if (args.argv.empty()) return Usage("no command after --");
    return RunExec(args);
  }
  return Usage(absl::StrCat("unknown command ", command));
}

}  // namespace
}  // namespace podshim::runtime

int main(int argc, char** argv) { return podshim::runtime::Main(argc, argv); }
