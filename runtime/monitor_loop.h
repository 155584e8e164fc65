// The long-running half of the per-container monitor: from the moment the
// workload runs until it exits. It copies the container's stdout and stderr
// into the CRI log, reopens the log on SIGUSR1, kills the workload on
// SIGTERM, reaps everything below it (it is a child subreaper), and finally
// records the exit status in <bundle>/exit.json.
//
// podshim-monitor (large: JSON, seccomp, capabilities, Abseil) starts the
// container, then execs the small podshim-monitor-loop binary, which runs
// this; only that small binary stays resident, once per container. So this
// code, and cri_log.{h,cc} that it uses, are written against the C++
// standard library alone. When the exec fails, podshim-monitor runs the same
// loop itself.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace podshim::runtime {

// The binary's name, looked for beside podshim-monitor.
inline constexpr char kMonitorLoopBinary[] = "podshim-monitor-loop";
// What a reopen of the log (SIGUSR1) leaves for the agent: the error when it
// failed, else an empty file saying it is done. The agent removes both
// before it asks.
inline constexpr char kReopenErrorFile[] = "reopen.err";
inline constexpr char kReopenDoneFile[] = "reopen.done";

struct MonitorLoopArgs {
  std::string bundle;
  int child = 0;    // the container's init (our child)
  int out_fd = -1;  // read ends of its stdout and stderr pipes
  int err_fd = -1;
  int log_fd = -1;  // the open CRI log (-1: output is discarded)
  std::string log_path;
  std::string oom_counter_file;  // "" when there is no memory controller
};

// The argv of `podshim-monitor-loop` for `args` (descriptors by number; they
// must stay open across the exec).
std::vector<std::string> MonitorLoopArgv(const std::string& binary, const MonitorLoopArgs& args);
// The inverse; false with `error` set when an argument is missing or bad.
bool ParseMonitorLoopArgv(int argc, const char* const* argv, MonitorLoopArgs* args,
                          std::string* error);

// The loop. The caller has SIGCHLD, SIGTERM and SIGUSR1 blocked (signals that
// came before are still pending and are handled). Returns the process exit
// code: 0 once exit.json is written, 1 when it could not be.
int RunMonitorLoop(const MonitorLoopArgs& args);

// exit.json's text (the ExitStatus JSON the agent reads, launch_spec.h).
std::string ExitStatusJsonText(int exit_code, int signal, bool oom_killed, int64_t finished_at_ns,
                               const std::string& reason);

// The CRI exit code of a wait(2) status: the code, or 128 + the signal (then
// stored in `*signal_out` when given); 255 for anything else.
int ExitCodeOf(int wait_status, int* signal_out);

// "oom_kill N" with N > 0 in a memory.oom_control (v1) or memory.events (v2) text.
bool OomKillCounted(const std::string& counter_text);

}  // namespace podshim::runtime
