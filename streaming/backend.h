// What the streaming server needs from the runtime: starting an exec in a
// container, attaching to one, and dialing a port in a pod. The agent
// implements it (agent/streaming_backend.cc); tests use fakes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/unique_fd.h"
#include "streaming/requests.h"

namespace podshim::streaming {

// A running command (or an attach session) and the caller's ends of its
// stdio. Destroying it kills the command and reaps what it started, whatever
// state it is in; an attach session is only detached.
class Process {
 public:
  virtual ~Process() = default;
  // Blocking, O_CLOEXEC fds the server takes: `in` to write stdin (invalid
  // without), `out` and `err` to read output (invalid when not asked for;
  // with a tty `out` is the terminal and `err` invalid). End of file, or
  // EIO on a terminal, once the command is gone.
  runtime::UniqueFd in, out, err;
  // Readable (POLLIN) once the command has ended.
  virtual int exit_fd() const = 0;
  // The terminal's size; FAILED_PRECONDITION without a tty.
  virtual absl::Status Resize(uint16_t width, uint16_t height) = 0;
  // Once exit_fd is readable: the exit code (128 + n for a signal n), or why
  // the command could not run. Call at most once.
  virtual absl::StatusOr<int> Finish() = 0;
  // Ends the command now (the client went away); detaches an attach.
  virtual void Kill() = 0;
  // The client ended stdin (`in`, taken by the server, is closed by then).
  // An attach tells the container's monitor (runtime/attach.h).
  virtual void StdinEnded() {}
};

class Backend {
 public:
  virtual ~Backend() = default;
  // Starts `request.cmd` in its container; NOT_FOUND or FAILED_PRECONDITION
  // when the container is gone or no longer running.
  virtual absl::StatusOr<std::unique_ptr<Process>> StartExec(const ExecRequest& request) = 0;
  // Attaches to the container's own stdio; the same errors. Its Finish is 0
  // once the container exited or the session was detached.
  virtual absl::StatusOr<std::unique_ptr<Process>> StartAttach(const AttachRequest& request) = 0;
  // A TCP socket of `family` (AF_INET or AF_INET6; non-blocking, O_CLOEXEC,
  // not yet connected) in the network namespace of pod `pod_id` (the host's
  // for a host-network pod); the server connects it to 127.0.0.1:port, or
  // [::1]:port when that is refused. NOT_FOUND when the pod is gone,
  // FAILED_PRECONDITION when it is not ready.
  virtual absl::StatusOr<runtime::UniqueFd> PodSocket(const std::string& pod_id, int family) = 0;
};

// StartExec or StartAttach, as `request` is.
inline absl::StatusOr<std::unique_ptr<Process>> StartCommand(Backend* backend,
                                                             const CommandRequest& request) {
  if (const auto* exec = std::get_if<ExecRequest>(&request)) return backend->StartExec(*exec);
  return backend->StartAttach(std::get<AttachRequest>(request));
}

}  // namespace podshim::streaming
