#include "runtime/container_runner.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <optional>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "runtime/files.h"
#include "runtime/pidfd.h"
#include "runtime/spawn.h"

namespace podshim::runtime {
namespace {

constexpr size_t kReportLimit = size_t{64} << 10;

// The calling thread's scheduling policy (on Linux sched_setscheduler(0)
// changes the calling thread only). Best effort: a thread at the wrong
// priority still works.
void SetThreadSchedPolicy(int policy) {
  struct sched_param param {};
  (void)::sched_setscheduler(0, policy, &param);
}

struct Pipe {
  UniqueFd read, write;
};

absl::StatusOr<Pipe> MakePipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return ErrnoError(errno, "create", "status pipe");
  return Pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

}  // namespace

MonitorPool::MonitorPool(std::string monitor_binary, int size)
    : binary_(std::move(monitor_binary)), size_(size) {
  if (size_ > 0) thread_ = std::thread([this] { Loop(); });
}

MonitorPool::~MonitorPool() {
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
  absl::MutexLock l(&mu_);
  for (Ready& r : ready_) {
    r.control.Reset();  // end of file: it exits by itself
    if (!r.child.Wait(absl::Seconds(2)).ok()) (void)r.child.Kill(SIGKILL);
  }
  ready_.clear();  // ChildProcess kills and reaps what is left
}

absl::StatusOr<MonitorPool::Ready> MonitorPool::SpawnWaiting(const std::string& monitor_binary) {
  auto status = MakePipe();
  if (!status.ok()) return status.status();
  auto control = MakePipe();
  if (!control.ok()) return control.status();
  SpawnOptions options;
  options.argv = {monitor_binary, "wait"};
  options.new_session = true;
  options.capture_output = false;
  options.extra_fds = {{3, status->write.get()}, {4, control->read.get()}};
  auto child = Spawn(options);
  if (!child.ok()) return child.status();
  return Ready{*std::move(child), std::move(status->read), std::move(control->write)};
}

std::optional<MonitorPool::Ready> MonitorPool::Take() {
  absl::MutexLock l(&mu_);
  if (ready_.empty()) return std::nullopt;
  Ready r = std::move(ready_.back());
  ready_.pop_back();
  return r;
}

void MonitorPool::Loop() {
  absl::Duration backoff = absl::Milliseconds(50);
  for (;;) {
    {
      absl::MutexLock l(&mu_);
      auto wanted = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
        return stop_ || static_cast<int>(ready_.size()) < size_;
      };
      mu_.Await(absl::Condition(&wanted));
      if (stop_) return;
    }
    // Work ahead of need runs at idle priority: this thread spawns under
    // SCHED_IDLE, which the child inherits until it is taken (it returns to
    // SCHED_OTHER then: podshim-monitor wait). Never while holding mu_, or
    // Take() could wait for a thread that gets no core.
    SetThreadSchedPolicy(SCHED_IDLE);
    auto r = SpawnWaiting(binary_);
    SetThreadSchedPolicy(SCHED_OTHER);
    absl::MutexLock l(&mu_);
    if (stop_) return;  // `r` is dropped: its control pipe closes, it exits
    if (r.ok()) {
      ready_.push_back(*std::move(r));
      backoff = absl::Milliseconds(50);
    } else {
      // Spawning fails only when the machine is short of something; callers
      // spawn for themselves meanwhile.
      mu_.AwaitWithTimeout(absl::Condition(&stop_), backoff);
      backoff = std::min(backoff * 2, absl::Seconds(5));
    }
  }
}

absl::StatusOr<StartReport> StartContainerProcess(const std::string& monitor_binary,
                                                  const LaunchSpec& spec, absl::Duration timeout,
                                                  MonitorPool* pool,
                                                  const std::function<void()>& on_handed) {
  return StartContainerProcess(monitor_binary, spec.bundle, spec.id, LaunchSpecToJson(spec),
                               timeout, pool, on_handed);
}

absl::StatusOr<StartReport> StartContainerProcess(const std::string& monitor_binary,
                                                  const std::string& bundle, const std::string& id,
                                                  const std::string& spec_json,
                                                  absl::Duration timeout, MonitorPool* pool,
                                                  const std::function<void()>& on_handed) {
  // CreateContainer wrote this very spec already; rewriting it would cost a
  // second fsync of the file and its directory on the StartContainer path.
  const std::string spec_path = absl::StrCat(bundle, "/", kSpecFile);
  if (auto on_disk = ReadFile(spec_path); !on_disk.ok() || *on_disk != spec_json) {
    if (auto s = WriteFileAtomic(spec_path, spec_json); !s.ok()) return s;
  }
  std::optional<ChildProcess> child;
  UniqueFd status;
  if (std::optional<MonitorPool::Ready> ready = pool != nullptr ? pool->Take() : std::nullopt;
      ready.has_value()) {
    const std::string line = absl::StrCat(bundle, "\n");
    if (::write(ready->control.get(), line.data(), line.size()) ==
        static_cast<ssize_t>(line.size())) {
      child = std::move(ready->child);
      status = std::move(ready->status);
    }
    // On a failed write (the idle monitor is gone) `ready` is dropped, which
    // reaps it, and a monitor is spawned below as without a pool.
  }
  if (!child.has_value()) {
    auto pipe = MakePipe();
    if (!pipe.ok()) return pipe.status();
    SpawnOptions options;
    options.argv = {monitor_binary, "start", "--bundle", bundle};
    options.new_session = true;
    options.capture_output = false;
    options.extra_fds = {{3, pipe->write.get()}};
    auto spawned = Spawn(options);
    if (!spawned.ok()) return spawned.status();
    child = *std::move(spawned);
    status = std::move(pipe->read);
  }
  if (on_handed) on_handed();
  auto text = ReadUntilEof(status.get(), timeout, kReportLimit);
  if (!text.ok()) {
    // The monitor hangs or floods: kill its session (destructor) and say so.
    return absl::DeadlineExceededError(absl::StrCat(
        "container ", id, ": no start report from the monitor: ", text.status().message()));
  }
  auto report = StartReportFromJson(absl::StripAsciiWhitespace(*text));
  if (!report.ok() || !report->ok) {
    (void)child->Wait(absl::Seconds(5));
    if (!report.ok()) {
      return absl::InternalError(
          absl::StrCat("container ", id, ": monitor exited without a start report"));
    }
    return absl::FailedPreconditionError(absl::StrCat("start container ", id, ": ", report->error));
  }
  // The monitor runs on; ExitWatcher reaps it when it exits.
  child->Release();
  return *report;
}

bool ProcessAlive(int pid, uint64_t start_time) {
  if (pid <= 0) return false;
  // The pidfd first, the start time after: the pid cannot change hands in between.
  auto same = OpenProcess(pid, start_time);
  if (!same.ok()) return false;
  auto stat = ReadFile(absl::StrCat("/proc/", pid, "/stat"));
  if (!stat.ok()) return false;
  // "pid (comm) S ...": the state letter follows the last ')'.
  size_t close = stat->rfind(')');
  return close != std::string::npos && close + 2 < stat->size() && (*stat)[close + 2] != 'Z' &&
         (*stat)[close + 2] != 'X';
}

absl::Status SignalProcess(int pid, int sig, uint64_t start_time) {
  if (pid <= 0) return absl::OkStatus();
  auto fd = OpenProcess(pid, start_time);
  if (!fd.ok()) return absl::IsNotFound(fd.status()) ? absl::OkStatus() : fd.status();
  return SignalPidfd(fd->get(), sig);
}

namespace {

// The exec helper's report, {"exit_code":N,"timed_out":bool} or
// {"error":"..."}, as read from its fd 3 (`text`); the helper's own exit
// and stderr for the message when there is none.
absl::StatusOr<ExecResult> ParseExecReport(const absl::StatusOr<std::string>& text,
                                           const std::string& bundle, int helper_code,
                                           int helper_signal, const std::string& helper_err) {
  if (!text.ok() || text->empty()) {
    return absl::InternalError(absl::StrCat(
        "exec in ", bundle, ": the helper ended (", helper_signal ? "signal " : "code ",
        helper_signal ? helper_signal : helper_code, ") without a report: ", helper_err));
  }
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (!j.is_object()) {
    return absl::InternalError(absl::StrCat("exec in ", bundle, ": bad report `", *text, "`"));
  }
  if (j.contains("error") && j["error"].is_string()) {
    return absl::FailedPreconditionError(
        absl::StrCat("exec in container: ", j["error"].get<std::string>()));
  }
  ExecResult result;
  result.exit_code = j.value("exit_code", -1);
  result.timed_out = j.value("timed_out", false);
  return result;
}

}  // namespace

absl::StatusOr<ExecResult> ExecInContainer(const std::string& monitor_binary,
                                           const std::string& bundle, int pid, uint64_t start_time,
                                           const std::vector<std::string>& argv,
                                           absl::Duration timeout) {
  auto pipe = MakePipe();
  if (!pipe.ok()) return pipe.status();
  SpawnOptions options;
  options.argv = {monitor_binary, "exec",
                  "--bundle",     bundle,
                  "--pid",        absl::StrCat(pid),
                  "--pid-start",  absl::StrCat(start_time)};
  if (timeout > absl::ZeroDuration()) {
    options.argv.push_back(absl::StrCat("--timeout-ms=", absl::ToInt64Milliseconds(timeout)));
    // The helper enforces the timeout itself; this one only guards against
    // a helper that hangs.
    options.timeout = timeout + absl::Seconds(10);
  }
  options.argv.push_back("--");
  options.argv.insert(options.argv.end(), argv.begin(), argv.end());
  options.new_session = true;
  options.extra_fds = {{3, pipe->write.get()}};
  auto run = RunProcess(options);
  if (!run.ok()) return run.status();
  pipe->write.Reset();
  auto text = ReadUntilEof(pipe->read.get(), absl::Seconds(1), kReportLimit);
  ExecResult result;
  result.out = std::move(run->out);
  result.err = std::move(run->err);
  if (run->timed_out) {
    result.timed_out = true;
    result.exit_code = -1;
    return result;
  }
  auto report = ParseExecReport(text, bundle, run->exit_code, run->term_signal, result.err);
  if (!report.ok()) return report.status();
  result.exit_code = report->exit_code;
  result.timed_out = report->timed_out;
  return result;
}

absl::Status ExecSession::Resize(uint16_t width, uint16_t height) {
  if (!terminal_.valid()) return absl::FailedPreconditionError("resize: the exec has no tty");
  struct winsize size {};
  size.ws_col = width;
  size.ws_row = height;
  if (::ioctl(terminal_.get(), TIOCSWINSZ, &size) != 0) {
    return ErrnoError(errno, "resize", "the exec's terminal");
  }
  return absl::OkStatus();
}

absl::StatusOr<int> ExecSession::Finish() {
  if (!helper_.valid()) return absl::FailedPreconditionError("exec: already finished");
  auto exit = helper_.Wait();
  if (!exit.ok()) return exit.status();
  auto text = ReadUntilEof(report_.get(), absl::Seconds(1), kReportLimit);
  report_.Reset();
  auto report = ParseExecReport(text, bundle_, exit->exit_code, exit->term_signal, "");
  if (!report.ok()) return report.status();
  return report->exit_code;
}

void ExecSession::Kill() {
  if (helper_.valid()) (void)helper_.Kill(SIGKILL);
}

absl::StatusOr<std::unique_ptr<ExecSession>> StartExecInContainer(
    const std::string& monitor_binary, const std::string& bundle, int pid, uint64_t start_time,
    const std::vector<std::string>& argv, const ExecStdio& stdio) {
  auto report = MakePipe();
  if (!report.ok()) return report.status();
  UniqueFd devnull(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!devnull.valid()) return ErrnoError(errno, "open", "/dev/null");
  SpawnOptions options;
  options.argv = {monitor_binary, "exec",
                  "--bundle",     bundle,
                  "--pid",        absl::StrCat(pid),
                  "--pid-start",  absl::StrCat(start_time)};
  if (stdio.stdin) options.argv.push_back("--stdin");
  UniqueFd master, slave;
  if (stdio.tty) {
    options.argv.push_back("--tty");
    master.Reset(::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
    if (!master.valid()) return ErrnoError(errno, "open a terminal for", "exec");
    char name[128];
    if (::grantpt(master.get()) != 0 || ::unlockpt(master.get()) != 0 ||
        ::ptsname_r(master.get(), name, sizeof name) != 0) {
      return ErrnoError(errno, "set up a terminal for", "exec");
    }
    slave.Reset(::open(name, O_RDWR | O_NOCTTY | O_CLOEXEC));
    if (!slave.valid()) return ErrnoError(errno, "open", name);
    options.stdio_fds = {slave.get(), slave.get(), slave.get()};
  } else {
    if (!stdio.stdin) options.stdio_fds[0] = devnull.get();
    if (!stdio.stdout) options.stdio_fds[1] = devnull.get();
    if (!stdio.stderr) options.stdio_fds[2] = devnull.get();
  }
  options.argv.push_back("--");
  options.argv.insert(options.argv.end(), argv.begin(), argv.end());
  options.new_session = true;
  options.extra_fds = {{3, report->write.get()}};
  SpawnPipes pipes;
  auto helper = Spawn(options, &pipes);
  if (!helper.ok()) return helper.status();
  report->write.Reset();
  slave.Reset();
  UniqueFd terminal;
  if (stdio.tty) {
    terminal.Reset(::fcntl(master.get(), F_DUPFD_CLOEXEC, 3));
    if (!terminal.valid()) return ErrnoError(errno, "duplicate", "the exec's terminal");
  }
  auto session = std::make_unique<ExecSession>(std::move(*helper), std::move(report->read),
                                               std::move(terminal), bundle);
  if (stdio.tty) {
    if (stdio.stdin) {
      session->in.Reset(::fcntl(master.get(), F_DUPFD_CLOEXEC, 3));
      if (!session->in.valid()) return ErrnoError(errno, "duplicate", "the exec's terminal");
    }
    session->out = std::move(master);
  } else {
    if (stdio.stdin) session->in = std::move(pipes.in);
    if (stdio.stdout) session->out = std::move(pipes.out);
    if (stdio.stderr) session->err = std::move(pipes.err);
  }
  return session;
}

absl::StatusOr<ExitStatus> ReadExitFile(const std::string& bundle) {
  auto text = ReadFile(absl::StrCat(bundle, "/", kExitFile));
  if (!text.ok()) return text.status();
  return ExitStatusFromJson(*text);
}

ExitWatcher::ExitWatcher()
    : epoll_(::epoll_create1(EPOLL_CLOEXEC)), wake_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = wake_.get();
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, wake_.get(), &ev);
  thread_ = std::thread([this] { Loop(); });
}

ExitWatcher::~ExitWatcher() {
  uint64_t one = 1;
  (void)!::write(wake_.get(), &one, sizeof one);
  thread_.join();
}

absl::Status ExitWatcher::Watch(int pid, uint64_t start_time, Callback on_exit) {
  auto opened = OpenProcess(pid, start_time);
  if (!opened.ok()) {
    if (!absl::IsNotFound(opened.status())) return opened.status();
    on_exit(pid);
    return absl::OkStatus();
  }
  UniqueFd fd = std::move(*opened);
  absl::MutexLock lock(&mu_);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = fd.get();
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd.get(), &ev) != 0) {
    return ErrnoError(errno, "watch", absl::StrCat("pid ", pid));
  }
  const int key = fd.get();
  entries_[key] = Entry{std::move(fd), pid, std::move(on_exit)};
  return absl::OkStatus();
}

void ExitWatcher::Loop() {
  epoll_event events[16];
  for (;;) {
    int n = ::epoll_wait(epoll_.get(), events, 16, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == wake_.get()) return;
      Entry entry;
      {
        absl::MutexLock lock(&mu_);
        auto it = entries_.find(fd);
        if (it == entries_.end()) continue;
        entry = std::move(it->second);
        entries_.erase(it);
        ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
      }
      // Reap it if it is our child (a monitor this agent started).
      siginfo_t info{};
      (void)::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(entry.pidfd.get()), &info,
                     WEXITED | WNOHANG);
      entry.cb(entry.pid);
    }
  }
}

void KillAndReap(const std::vector<int>& pids, absl::Duration timeout) {
  // A pidfd first, so that a pid reused meanwhile is never hit; then the
  // wait is on the pidfds (readable once the process has exited), not a poll.
  std::vector<UniqueFd> ours;
  for (int pid : pids) {
    if (pid <= 1) continue;
    auto fd = OpenPidfd(pid);
    if (!fd.ok()) continue;  // gone already
    (void)SignalPidfd(fd->get(), SIGKILL);
    siginfo_t info{};
    // WNOWAIT: only asks whether it is our child at all.
    if (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(fd->get()), &info,
                 WEXITED | WNOHANG | WNOWAIT) == 0) {
      ours.push_back(std::move(*fd));
    }
  }
  const absl::Time deadline = absl::Now() + timeout;
  while (!ours.empty()) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) break;
    std::vector<struct pollfd> fds;
    fds.reserve(ours.size());
    for (const auto& fd : ours) fds.push_back({fd.get(), POLLIN, 0});
    const int n =
        ::poll(fds.data(), fds.size(), static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
    if (n < 0 && errno != EINTR) break;
    std::vector<UniqueFd> running;
    for (size_t i = 0; i < ours.size(); ++i) {
      if ((fds[i].revents & POLLIN) == 0) {
        running.push_back(std::move(ours[i]));
        continue;
      }
      siginfo_t info{};
      (void)::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(ours[i].get()), &info,
                     WEXITED | WNOHANG);
    }
    ours.swap(running);
  }
}

}  // namespace podshim::runtime
