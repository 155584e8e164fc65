#include "runtime/pidfd.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"

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

}  // namespace podshim::runtime
