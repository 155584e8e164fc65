#include "runtime/pidfd.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "runtime/files.h"

namespace podshim::runtime {

// glibc 2.36's <sys/pidfd.h> lacks extern "C", so C++ cannot link its
// wrappers: call the system calls directly.
absl::StatusOr<UniqueFd> OpenPidfd(pid_t pid) {
  UniqueFd fd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (!fd.valid()) return ErrnoError(errno, "pidfd_open", absl::StrCat("pid ", pid));
  return fd;
}

absl::Status SignalPidfd(int pidfd, int sig) {
  if (::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0) != 0 && errno != ESRCH) {
    return ErrnoError(errno, absl::StrCat("send signal ", sig, " to"),
                      absl::StrCat("pidfd ", pidfd));
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> ProcessStartTime(pid_t pid) {
  auto stat = ReadFile(absl::StrCat("/proc/", pid, "/stat"));
  if (!stat.ok()) return stat.status();
  // "pid (comm) state ppid ...": fields from the state on, after the last ')'.
  const size_t close = stat->rfind(')');
  if (close == std::string::npos) {
    return absl::DataLossError(absl::StrCat("/proc/", pid, "/stat: no `)`"));
  }
  std::vector<absl::string_view> fields =
      absl::StrSplit(absl::string_view(*stat).substr(close + 1), ' ', absl::SkipEmpty());
  // Field 22 of the file is the 20th after the comm (state is field 3).
  uint64_t start = 0;
  if (fields.size() < 20 || !absl::SimpleAtoi(fields[19], &start)) {
    return absl::DataLossError(absl::StrCat("/proc/", pid, "/stat: no start time"));
  }
  return start;
}

absl::StatusOr<UniqueFd> OpenProcess(pid_t pid, uint64_t start_time) {
  auto fd = OpenPidfd(pid);
  if (!fd.ok() || start_time == 0) return fd;
  auto start = ProcessStartTime(pid);
  if (!start.ok()) {
    return absl::NotFoundError(absl::StrCat("pid ", pid, " is gone: ", start.status().message()));
  }
  if (*start != start_time) {
    return absl::NotFoundError(absl::StrCat("pid ", pid, " is another process now (started at ",
                                            *start, ", not ", start_time, ")"));
  }
  return fd;
}

}  // namespace podshim::runtime
