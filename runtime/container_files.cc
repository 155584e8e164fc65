// What the agent reads of a container's monitor through the bundle's files:
// a start cut short by a restart, and a log reopen (container_runner.h).
#include <poll.h>
#include <signal.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "runtime/container_runner.h"
#include "runtime/files.h"
#include "runtime/monitor_loop.h"
#include "runtime/spawn.h"

namespace podshim::runtime {
namespace {

// An inotify watch on `dir` for files appearing in it (created, or renamed
// into it as the monitor's atomic writes do).
absl::StatusOr<UniqueFd> WatchDirForFiles(const std::string& dir) {
  UniqueFd fd(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
  if (!fd.valid()) return ErrnoError(errno, "inotify_init1", dir);
  if (::inotify_add_watch(fd.get(), dir.c_str(), IN_CREATE | IN_MOVED_TO | IN_ONLYDIR) < 0) {
    return ErrnoError(errno, "watch", dir);
  }
  return fd;
}

enum class Wait { kFound, kProcessGone, kTimedOut };

// Waits until one of `files` exists (returned in `found`), the process
// behind `pidfd` exits, or `deadline` passes. `inotify` watches the files'
// directory and was set up before whatever makes them was asked to.
Wait WaitForFiles(int inotify, int pidfd, const std::vector<std::string>& files,
                  absl::Time deadline, std::string* found) {
  for (;;) {
    for (const auto& f : files) {
      if (PathExists(f)) {
        *found = f;
        return Wait::kFound;
      }
    }
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return Wait::kTimedOut;
    struct pollfd fds[2] = {{inotify, POLLIN, 0}, {pidfd, POLLIN, 0}};
    const int n = ::poll(fds, 2, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
    if (n < 0 && errno != EINTR) return Wait::kTimedOut;
    if (n > 0 && (fds[0].revents & POLLIN) != 0) {
      char buf[4096];
      while (::read(inotify, buf, sizeof buf) > 0) {
      }
    }
    if (n > 0 && (fds[1].revents & POLLIN) != 0) {
      // Gone: it may have written a file just before.
      for (const auto& f : files) {
        if (PathExists(f)) {
          *found = f;
          return Wait::kFound;
        }
      }
      return Wait::kProcessGone;
    }
  }
}

// The monitor named in bundle/monitor.pid if that pid is still a monitor
// (the pid may have been reused since: its exe is podshim-monitor or its
// sealed copy, or podshim-monitor-loop once the workload runs), as a pidfd;
// its pid in `pid`.
absl::StatusOr<UniqueFd> OpenMonitor(const std::string& bundle, int* monitor_pid) {
  auto pid_text = ReadFile(absl::StrCat(bundle, "/", kMonitorPidFile));
  if (!pid_text.ok()) return pid_text.status();
  int pid = 0;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(*pid_text), &pid) || pid <= 0) {
    return absl::DataLossError(absl::StrCat(bundle, "/", kMonitorPidFile, ": not a pid"));
  }
  auto fd = OpenPidfd(pid);
  if (!fd.ok()) return fd.status();
  // Checked after the pidfd is open: a pid reused later cannot fool it.
  char exe[4096];
  const std::string link = absl::StrCat("/proc/", pid, "/exe");
  const ssize_t n = ::readlink(link.c_str(), exe, sizeof exe - 1);
  if (n <= 0) return ErrnoError(errno, "readlink", link);
  absl::string_view path(exe, static_cast<size_t>(n));
  const size_t slash = path.rfind('/');
  if (slash != absl::string_view::npos) path.remove_prefix(slash + 1);
  // podshimd runs podshim-monitor from a sealed copy: "/memfd:podshim-monitor (deleted)".
  absl::ConsumePrefix(&path, "memfd:");
  if (!absl::StartsWith(path, "podshim-monitor")) {
    return absl::NotFoundError(absl::StrCat("pid ", pid, " is no longer a monitor"));
  }
  *monitor_pid = pid;
  return fd;
}

}  // namespace

std::optional<RecoveredStart> RecoverStart(const std::string& bundle, absl::Duration timeout,
                                           const std::function<void(int)>& on_wait) {
  const std::string started = absl::StrCat(bundle, "/", kStartedFile);
  if (!PathExists(started)) {
    // The monitor may still be starting it: wait for its report or its end.
    auto watch = WatchDirForFiles(bundle);
    int pid = 0;
    auto monitor = OpenMonitor(bundle, &pid);
    // No monitor to wait for (it may have written the report and exited
    // just now), or no way to wait: what is there now is the answer.
    if (!watch.ok() || !monitor.ok()) {
      if (!PathExists(started)) return std::nullopt;
    } else {
      if (on_wait) on_wait(pid);
      std::string found;
      if (WaitForFiles(watch->get(), monitor->get(), {started}, absl::Now() + timeout, &found) !=
          Wait::kFound) {
        return std::nullopt;
      }
    }
  }
  auto text = ReadFile(started);
  if (!text.ok()) return std::nullopt;
  auto report = StartReportFromJson(*text);
  if (!report.ok() || !report->ok) return std::nullopt;
  RecoveredStart out{*report, 0};
  auto mtime = ModTimeNs(started);
  out.started_at_ns = mtime.ok() ? *mtime : absl::ToUnixNanos(absl::Now());
  return out;
}

absl::Status ReopenContainerLog(const std::string& bundle, int monitor_pid,
                                uint64_t monitor_start_time, const std::string& log_path,
                                absl::Duration timeout) {
  const std::string err_file = absl::StrCat(bundle, "/", kReopenErrorFile);
  const std::string done_file = absl::StrCat(bundle, "/", kReopenDoneFile);
  for (const auto& f : {err_file, done_file}) {
    if (auto s = RemoveFile(f); !s.ok()) return s;
  }
  auto monitor = OpenProcess(monitor_pid, monitor_start_time);
  if (!monitor.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "reopen log: the container's monitor is gone (", monitor.status().message(), ")"));
  }
  auto watch = WatchDirForFiles(bundle);
  if (!watch.ok()) return watch.status();
  if (auto s = SignalPidfd(monitor->get(), SIGUSR1); !s.ok()) return s;
  std::string found;
  switch (WaitForFiles(watch->get(), monitor->get(), {err_file, done_file}, absl::Now() + timeout,
                       &found)) {
    case Wait::kFound:
      break;
    case Wait::kProcessGone:
      return absl::FailedPreconditionError("reopen log: the container's monitor exited");
    case Wait::kTimedOut:
      // A monitor started before podshim wrote reopen.done says nothing on
      // success: its new log file is the only sign.
      if (!log_path.empty() && PathExists(log_path)) return absl::OkStatus();
      return absl::DeadlineExceededError(absl::StrCat(
          "reopen log: the monitor did not answer within ", absl::FormatDuration(timeout)));
  }
  if (found == done_file) return absl::OkStatus();
  auto text = ReadFile(err_file);
  return absl::InternalError(absl::StrCat(
      "reopen log: ", text.ok() ? absl::StripTrailingAsciiWhitespace(*text) : "failed"));
}

}  // namespace podshim::runtime
