// The agent's side of running containers through podshim-monitor: start one
// from a LaunchSpec, signal it, run ExecSync commands in it, and learn when
// its monitor exits. See launch_spec.h for the contract.
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "runtime/launch_spec.h"
#include "runtime/spawn.h"
#include "runtime/unique_fd.h"

namespace podshim::runtime {

// Monitors started before they are needed. Each is `podshim-monitor wait`,
// spawned in a new session with the status pipe on fd 3 and a control pipe on
// fd 4, exec'd and initialised, blocked until it reads its bundle directory.
// Handing one a container instead of spawning takes the spawn and the exec
// (1-2 ms on a quiet machine, several under load) off StartContainer. A
// thread keeps `size` of them ready. An idle monitor whose control pipe
// closes (the pool is destroyed, or podshimd died) exits at once; the
// destructor also reaps them.
class MonitorPool {
 public:
  MonitorPool(std::string monitor_binary, int size);
  ~MonitorPool();
  MonitorPool(const MonitorPool&) = delete;
  MonitorPool& operator=(const MonitorPool&) = delete;

  const std::string& binary() const { return binary_; }
  // How many are ready now (for tests and logs).
  int ready() {
    absl::MutexLock l(&mu_);
    return static_cast<int>(ready_.size());
  }

  struct Ready {
    ChildProcess child;
    UniqueFd status;   // read end of its fd 3
    UniqueFd control;  // write end of its fd 4
  };
  // A ready monitor, or nothing when none is (the caller spawns one itself).
  // The one taken is replaced at once, under SCHED_IDLE: its spawn and exec
  // run on a core the start being made does not need (the container's init
  // keeps one busy, the monitor that took it rarely the other), and yield
  // to the start's own work where they meet.
  std::optional<Ready> Take();
  // Spawns one `podshim-monitor wait` (used by the pool's thread and tests).
  static absl::StatusOr<Ready> SpawnWaiting(const std::string& monitor_binary);

 private:
  void Loop();

  const std::string binary_;
  const int size_;
  absl::Mutex mu_;
  std::vector<Ready> ready_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

// Writes `spec_json` (LaunchSpecToJson's text) to bundle/spec.json unless it holds this text
// already, starts a monitor for it (one from `pool` when it has one ready, else `monitor_binary
// start` spawned in a new session) and waits (at most `timeout`) for its report. On ok the
// container runs; otherwise the monitor has exited and the error says why (the workload's exec
// error, a mount that failed, ...), as FAILED_PRECONDITION for problems of the request, INTERNAL
// otherwise. `pool` may be null. `on_handed`, when set, runs once the monitor has the container
// and before its report is read (the agent's crash point there). The text is not parsed here:
// the agent passes the container record's copy, and the monitor parses it.
absl::StatusOr<StartReport> StartContainerProcess(const std::string& monitor_binary,
                                                  const std::string& bundle, const std::string& id,
                                                  const std::string& spec_json,
                                                  absl::Duration timeout, MonitorPool* pool,
                                                  const std::function<void()>& on_handed = {});
// The same for a parsed spec (spec.bundle, spec.id, LaunchSpecToJson(spec)).
absl::StatusOr<StartReport> StartContainerProcess(const std::string& monitor_binary,
                                                  const LaunchSpec& spec, absl::Duration timeout,
                                                  MonitorPool* pool = nullptr,
                                                  const std::function<void()>& on_handed = nullptr);

// Whether the process `pid` that started at `start_time` (runtime/pidfd.h;
// 0: not checked, for records made before it was kept) is alive: false when
// it exited, is a zombie, or its pid now names another process.
bool ProcessAlive(int pid, uint64_t start_time);

// Sends `sig` to `pid` through a pidfd; a process that is gone is OK, and so
// is one whose pid now names another process (start time `start_time`, see
// runtime/pidfd.h; 0: not checked): that one is never signalled.
absl::Status SignalProcess(int pid, int sig, uint64_t start_time = 0);

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
// capabilities and seccomp of its spec) through `monitor_binary exec`, whose
// init is `pid` started at `start_time` (0: not checked; a later process with
// that pid is never joined). timeout zero = none. stdout and stderr are each
// kept up to 16 MiB.
absl::StatusOr<ExecResult> ExecInContainer(const std::string& monitor_binary,
                                           const std::string& bundle, int pid, uint64_t start_time,
                                           const std::vector<std::string>& argv,
                                           absl::Duration timeout);

// What a streaming exec (the CRI's Exec) connects: stdin (else /dev/null),
// stdout and stderr (else /dev/null), or with `tty` one terminal for all
// three (stderr goes to it too).
struct ExecStdio {
  bool stdin = false;
  bool stdout = true;
  bool stderr = true;
  bool tty = false;
};

// A command started by StartExecInContainer. Destroying it kills the helper
// (and so the command, which dies with it) and reaps it.
class ExecSession {
 public:
  ExecSession(ChildProcess helper, UniqueFd report, UniqueFd terminal, std::string bundle)
      : helper_(std::move(helper)),
        report_(std::move(report)),
        terminal_(std::move(terminal)),
        bundle_(std::move(bundle)) {}
  ExecSession(const ExecSession&) = delete;
  ExecSession& operator=(const ExecSession&) = delete;
  ~ExecSession() = default;

  // The caller's ends, each O_CLOEXEC and blocking (take them): `in` to
  // write the command's stdin (invalid without stdin), `out` and `err` to
  // read its output (invalid when not asked for; with a tty `out` is the
  // terminal, `err` invalid). End of file, or EIO on a terminal, once the
  // command and the helper are gone.
  UniqueFd in, out, err;

  // Readable (POLLIN) once the helper has exited.
  int exit_fd() const { return helper_.pidfd(); }
  // The terminal's size (TIOCSWINSZ); FAILED_PRECONDITION without a tty.
  absl::Status Resize(uint16_t width, uint16_t height);
  // After exit_fd is readable: reaps the helper and returns the command's
  // exit code (128 + n for a signal n), or why it could not run.
  absl::StatusOr<int> Finish();
  // SIGKILLs the helper's process group; the command dies with the helper.
  void Kill();

 private:
  ChildProcess helper_;
  UniqueFd report_;
  UniqueFd terminal_;
  std::string bundle_;
};

// Starts `argv` in the running container as ExecInContainer does (the same
// `monitor_binary exec` and so the same namespaces, cgroup, user,
// capabilities and seccomp), without a timeout and with the stdio `stdio`
// asks for. Returns once the helper is spawned; a command that cannot run
// is reported by Finish.
absl::StatusOr<std::unique_ptr<ExecSession>> StartExecInContainer(
    const std::string& monitor_binary, const std::string& bundle, int pid, uint64_t start_time,
    const std::vector<std::string>& argv, const ExecStdio& stdio);

// The exit file the monitor left, NOT_FOUND when there is none.
absl::StatusOr<ExitStatus> ReadExitFile(const std::string& bundle);

// A start the monitor reported but the agent had not recorded (a restart of
// podshimd cut StartContainer short): the report in bundle/started.json and
// when it was written. When there is none yet but bundle/monitor.pid names a
// monitor still alive, waits for it up to `timeout` (container_files.cc).
// nullopt: the container never started.
struct RecoveredStart {
  StartReport report;
  int64_t started_at_ns = 0;
};
// `on_wait` (if set) is told the monitor's pid before the wait.
std::optional<RecoveredStart> RecoverStart(const std::string& bundle, absl::Duration timeout,
                                           const std::function<void(int)>& on_wait = {});

// Asks the monitor `monitor_pid`, started at `monitor_start_time` (0: not
// checked), to reopen the container's log at `log_path` (SIGUSR1; after the
// kubelet rotated it) and waits up to `timeout` for its answer: OK, INTERNAL
// with the monitor's error, FAILED_PRECONDITION if the monitor is gone (also
// when its pid now names another process, which is never signalled).
absl::Status ReopenContainerLog(const std::string& bundle, int monitor_pid,
                                uint64_t monitor_start_time, const std::string& log_path,
                                absl::Duration timeout);

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
  // `start_time` as in ProcessAlive: a pid that now names another process
  // counts as exited (on_exit runs at once), never as the watched one.
  absl::Status Watch(int pid, uint64_t start_time, Callback on_exit);

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
