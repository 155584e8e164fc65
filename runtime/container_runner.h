// The agent's side of running containers through podshim-monitor: start one
// from a LaunchSpec, signal it, run ExecSync commands in it, and learn when
// its monitor exits. See launch_spec.h for the contract.
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "runtime/launch_spec.h"
#include "runtime/unique_fd.h"

namespace podshim::runtime {

// Writes spec.json into spec.bundle, spawns `monitor_binary start` in a new
// session and waits (at most `timeout`) for its report. On ok the container
// runs; otherwise the monitor has exited and the error says why (the
// workload's exec error, a mount that failed, ...), as FAILED_PRECONDITION
// for problems of the request, INTERNAL otherwise.
absl::StatusOr<StartReport> StartContainerProcess(const std::string& monitor_binary,
                                                  const LaunchSpec& spec, absl::Duration timeout);

// Whether `pid` is still the process `start_report` named (guards against pid
// reuse after a restart: compares the process start time recorded at start).
bool ProcessAlive(int pid);

// Sends `sig` to `pid` through a pidfd; a process that is gone is OK.
absl::Status SignalProcess(int pid, int sig);

// SIGKILLs the processes `pids` (a container's, left without its monitor)
// and reaps those that became this process's children (podshimd is a child
// subreaper, so a dead monitor's container lands here), waiting up to
// `timeout` for them. Processes that are not ours are only signalled.
void KillAndReap(const std::vector<int>& pids, absl::Duration timeout);

struct ExecResult {
  int exit_code = 0;
  std::string out, err;
  bool timed_out = false;
};
// Runs `argv` inside the running container (namespaces, cgroup, user,
// capabilities and seccomp of its spec) through `monitor_binary exec`.
// timeout zero = none. stdout and stderr are each kept up to 16 MiB.
absl::StatusOr<ExecResult> ExecInContainer(const std::string& monitor_binary,
                                           const std::string& bundle, int pid,
                                           const std::vector<std::string>& argv,
                                           absl::Duration timeout);

// The exit file the monitor left, NOT_FOUND when there is none.
absl::StatusOr<ExitStatus> ReadExitFile(const std::string& bundle);

// Watches processes (the monitors) with pidfds on one thread and calls back
// once each has exited. Processes that are our children are reaped.
class ExitWatcher {
 public:
  using Callback = std::function<void(int pid)>;
  ExitWatcher();
  ~ExitWatcher();
  ExitWatcher(const ExitWatcher&) = delete;
  ExitWatcher& operator=(const ExitWatcher&) = delete;

  // Calls `on_exit` (on the watcher's thread) when `pid` exits; at once if
  // it is already gone.
  absl::Status Watch(int pid, Callback on_exit);

 private:
  void Loop();

  UniqueFd epoll_;
  UniqueFd wake_;  // eventfd to stop the loop
  absl::Mutex mu_;
  struct Entry {
    UniqueFd pidfd;
    int pid = 0;
    Callback cb;
  };
  std::map<int, Entry> entries_ ABSL_GUARDED_BY(mu_);  // by pidfd number
  std::thread thread_;
};

}  // namespace podshim::runtime
