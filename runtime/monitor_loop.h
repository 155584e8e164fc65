// The long-running half of the per-container monitor: from the moment the
// workload runs until it exits. It copies the container's stdout and stderr
// into the CRI log, reopens the log on SIGUSR1, kills the workload on
// SIGTERM, reaps everything below it (it is a child subreaper), serves the
// attach socket (below), and finally records the exit status in
// <bundle>/exit.json.
//
// podshim-monitor (large: JSON, seccomp, capabilities, Abseil) starts the
// container, then execs the small podshim-monitor-loop binary, which runs
// this; only that small binary stays resident, once per container. So this
// code, and cri_log.{h,cc} that it uses, are written against the C++
// standard library alone. When the exec fails, podshim-monitor runs the same
// loop itself.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>

#include <cstdint>
#include <cstring>
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

// --- the attach socket ------------------------------------------------------
//
// <bundle>/attach, a SOCK_SEQPACKET unix socket the loop listens on while the
// container runs (the CRI's Attach; runtime/attach.h is the client). One
// connection per attach session; every message is one packet:
//
//   client: kAttachRequest, flags (kAttachStdin | kAttachStdout | kAttachStderr)
//   loop:   kAttachGranted, flags, with the descriptors (SCM_RIGHTS) in this
//           order: stdin (kAttachStdin: the container's stdin pipe or its
//           terminal, to write), stdout and stderr (pipes of this session
//           alone, to read; a terminal has stdout only), the terminal
//           (kAttachTerminal, to resize); or kAttachRefused, a message.
//   client: kAttachStdinEnded once its client ended stdin: for a container
//           with stdin_once and no terminal the container's stdin is closed
//           (the session goes on until the container exits), otherwise the
//           session ends (kAttachEnded "detached"); kAttachDetach ends it.
//   loop:   kAttachEnded, a reason ("exited", "detached", or why it was cut
//           off), then the connection and its pipes are closed.
//
// Output goes to the CRI log first; each session's pipe gets a copy. A
// session whose pipe is full (its client does not keep up; the pipe holds
// kAttachPipeBytes) is ended, never waited for: the container and the log
// never slow down for an attacher. With stdin_once and no terminal, the
// container's stdin is closed when the first session that took it ends (as in
// Docker and containerd).
inline constexpr char kAttachSocket[] = "attach";
inline constexpr char kAttachRequest = 'R';
inline constexpr char kAttachGranted = 'K';
inline constexpr char kAttachRefused = 'X';
inline constexpr char kAttachStdinEnded = 'E';
inline constexpr char kAttachDetach = 'D';
inline constexpr char kAttachEnded = 'Q';
inline constexpr unsigned char kAttachStdin = 1;
inline constexpr unsigned char kAttachStdout = 2;
inline constexpr unsigned char kAttachStderr = 4;
inline constexpr unsigned char kAttachTerminal = 8;
// The address of the attach socket in the directory `dir_fd` (an O_PATH fd of
// the bundle), /proc/self/fd/N/attach: a long bundle path still fits
// sockaddr_un. It always fits.
inline struct sockaddr_un AttachSocketAddress(int dir_fd) {
  struct sockaddr_un addr {};
  addr.sun_family = AF_UNIX;
  const std::string path = "/proc/self/fd/" + std::to_string(dir_fd) + "/" + kAttachSocket;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);  // at most 32 bytes
  return addr;
}
// Sessions attached at once; one more is refused.
inline constexpr int kMaxAttachSessions = 16;
// The pipe size asked for each session's output (F_SETPIPE_SZ).
inline constexpr int kAttachPipeBytes = 1 << 20;

struct MonitorLoopArgs {
  std::string bundle;
  int child = 0;      // the container's init (our child)
  int out_fd = -1;    // read ends of its stdout and stderr pipes (with a
  int err_fd = -1;    // terminal: out_fd is the terminal's master, err_fd -1)
  int stdin_fd = -1;  // the write end of its stdin (with a terminal: the master); -1: none
  bool tty = false;
  bool stdin_once = false;
  int attach_fd = -1;  // the listening attach socket (-1: none)
  int log_fd = -1;     // the open CRI log (-1: output is discarded)
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
