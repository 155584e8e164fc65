// Running helper processes from the multi-threaded agent.
//
// Everything here is built on posix_spawn(3) (glibc uses clone(CLONE_VM |
// CLONE_VFORK) + exec), so the agent never forks a copy of itself. The child
// starts with the default signal dispositions, an empty signal mask, stdio
// from /dev/null or from pipes owned by the caller, the listed extra fds, and
// no other descriptor (everything above the highest listed fd is closed
// before exec, whatever its O_CLOEXEC flag).
//
// Children are watched through a pidfd, so a timeout never races with pid
// reuse and no SIGCHLD handler is involved.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/pidfd.h"  // OpenPidfd, SignalPidfd
#include "runtime/unique_fd.h"

namespace podshim::runtime {

struct SpawnOptions {
  // argv[0] is the program; without a '/' it is looked up in the agent's PATH.
  std::vector<std::string> argv;
  // "NAME=value" entries; empty = inherit the agent's environment.
  std::vector<std::string> env;
  // The child becomes a session (and process group) leader: POSIX_SPAWN_SETSID.
  // Kills (timeout, destructor) then go to the whole process group.
  bool new_session = false;
  // {child_fd, parent_fd}: parent_fd is duplicated onto child_fd in the child
  // (e.g. {3, status_pipe_write_end}). The parent keeps its own copy.
  // child_fd must not be 0, 1 or 2.
  std::vector<std::pair<int, int>> extra_fds;
  // Parent fds to become the child's stdin, stdout and stderr (-1: a pipe or
  // /dev/null as below), e.g. a terminal's slave end for all three. The
  // parent keeps its own copies; SpawnPipes has no end for these.
  std::array<int, 3> stdio_fds = {-1, -1, -1};
  // RunProcess writes this to the child's stdin and then closes it (the
  // child reads end of file at once when empty). Spawn ignores it: see
  // SpawnPipes.
  std::string stdin_data;
  // Capture stdout and stderr (RunProcess: into the result; Spawn: pipes in
  // SpawnPipes). When false both go to /dev/null.
  bool capture_output = true;
  // RunProcess keeps at most this many bytes of each of stdout and stderr;
  // beyond it, output is still read (so the child never blocks) but dropped.
  size_t output_limit = size_t{16} << 20;
  // RunProcess: SIGKILL the child (and its process group when new_session)
  // when this much time has passed.
  absl::Duration timeout = absl::InfiniteDuration();
};

struct SpawnResult {
  int exit_code = -1;   // when the child exited normally
  int term_signal = 0;  // when a signal ended it
  std::string out, err;
  bool timed_out = false;  // killed by RunProcess at the timeout
  bool out_truncated = false, err_truncated = false;
};

// Runs a program to completion: spawns it, writes stdin_data, collects
// stdout and stderr, waits for its exit (killing it at the timeout) and
// reaps it. The call returns once the child has exited; output written later
// by descendants that kept the pipes open is not waited for.
// A program that cannot be executed is an error naming it (NOT_FOUND for a
// missing binary); a non-zero exit is not an error (see exit_code).
absl::StatusOr<SpawnResult> RunProcess(const SpawnOptions& options);

// The parent's ends of the child's stdio pipes (O_CLOEXEC, blocking).
struct SpawnPipes {
  UniqueFd in;   // write end of the child's stdin; close it to send EOF
  UniqueFd out;  // read end of the child's stdout (when capture_output)
  UniqueFd err;  // read end of the child's stderr (when capture_output)
};

struct ProcessExit {
  int exit_code = -1;
  int term_signal = 0;
};

// A child process this object reaps: the pid and a pidfd on it. Destroying a
// ChildProcess that still owns a child SIGKILLs it (its process group when it
// was spawned with new_session) and reaps it.
class ChildProcess {
 public:
  ChildProcess() = default;
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess();

  bool valid() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  // Poll it for POLLIN: readable once the child has exited.
  int pidfd() const { return pidfd_.get(); }
  bool new_session() const { return new_session_; }

  // Sends `sig` to the child, and to its process group too when it was
  // spawned with new_session. A child that already exited is not an error.
  absl::Status Kill(int sig);

  // Waits for the child to exit and reaps it; afterwards this object is
  // empty. DEADLINE_EXCEEDED (the child still owned) when `timeout` passes.
  absl::StatusOr<ProcessExit> Wait(absl::Duration timeout = absl::InfiniteDuration());

  // Gives up ownership: the child is neither killed nor reaped by this object
  // any more. Returns its pid.
  pid_t Release();

 private:
  friend absl::StatusOr<ChildProcess> Spawn(const SpawnOptions& options, SpawnPipes* pipes);
  ChildProcess(pid_t pid, UniqueFd pidfd, bool new_session, std::string name)
      : pid_(pid), pidfd_(std::move(pidfd)), new_session_(new_session), name_(std::move(name)) {}
  void KillAndReap();

  pid_t pid_ = -1;
  UniqueFd pidfd_;
  bool new_session_ = false;
  std::string name_;  // argv[0], for errors
};

// Sealed helpers (the CVE-2019-5736 class). SealHelper copies the
// executable at `path` into a memfd sealed against every write, grow and
// shrink; from then on Spawn and RunProcess run that copy whenever argv[0] is
// `path` (argv[0] stays `path`, so the helper still finds the binaries beside
// it). A helper that enters a container therefore has the sealed copy as its
// /proc/self/exe, and so has whatever it execs through that link (a script
// starting `#!/proc/self/exe`): a container process that gets hold of it
// cannot change the host's binary. Sealing the same path again is a no-op.
// Returns the path Spawn execs (/proc/<this pid>/fd/<memfd>).
absl::StatusOr<std::string> SealHelper(const std::string& path);
// What Spawn execs for argv[0] `path`: its sealed copy, else `path`.
std::string ExecPathOf(const std::string& path);

// Starts a program and returns at once. With `pipes` == nullptr the child's
// stdin, stdout and stderr are /dev/null; otherwise its stdin is a pipe whose
// write end is returned in pipes->in, and (with capture_output) stdout and
// stderr are pipes whose read ends are returned. stdin_data, output_limit
// and timeout are RunProcess's and are ignored here.
absl::StatusOr<ChildProcess> Spawn(const SpawnOptions& options, SpawnPipes* pipes = nullptr);

// Waits until the process behind `pidfd` has exited (it is not reaped: that
// is its parent's job). DEADLINE_EXCEEDED when `timeout` passes first.
absl::Status WaitForExit(int pidfd, absl::Duration timeout);

// Reads `fd` until end of file. DEADLINE_EXCEEDED when `timeout` passes first,
// RESOURCE_EXHAUSTED when more than `limit` bytes arrive.
absl::StatusOr<std::string> ReadUntilEof(int fd, absl::Duration timeout, size_t limit);

}  // namespace podshim::runtime
