// pidfds: a handle on one process that a reused pid can never redirect.
//
// The one place that calls pidfd_open(2) and pidfd_send_signal(2). It is in
// the base library (podshim_runtime, no absl::time) so the statically linked
// helpers (podshim-monitor) can use it too; waiting with a timeout is
// WaitForExit in runtime/spawn.h.
#pragma once

#include <sys/types.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/unique_fd.h"

namespace podshim::runtime {

// A pidfd (O_CLOEXEC) for any process, not only a child, e.g. the pod infra
// process. NOT_FOUND when there is no such process (ESRCH).
absl::StatusOr<UniqueFd> OpenPidfd(pid_t pid);

// Sends `sig` through a pidfd, so a reused pid is never hit. A process that
// already exited is not an error.
absl::Status SignalPidfd(int pidfd, int sig);

// When process `pid` started, in clock ticks after boot (/proc/PID/stat field
// 22): with the pid, it names one process for as long as the machine runs.
// NOT_FOUND when there is no such process.
absl::StatusOr<uint64_t> ProcessStartTime(pid_t pid);

// A pidfd for the process `pid` that started at `start_time` (as
// ProcessStartTime says; 0: not checked, for records made before it was
// kept). NOT_FOUND when that process is gone, also when its pid now names
// another process: the pidfd is opened first and the start time read after,
// so what it refers to cannot change in between.
absl::StatusOr<UniqueFd> OpenProcess(pid_t pid, uint64_t start_time);

}  // namespace podshim::runtime
