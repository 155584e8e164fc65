// The client side of a container's attach socket (runtime/monitor_loop.h):
// the CRI's Attach. The monitor that runs the container keeps its stdin and
// its terminal and copies its output to each session, so the container does
// not notice a restart of podshimd: its output keeps going to the log and its
// stdin stays open (unless stdin_once closes it with the session that ended).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/unique_fd.h"

namespace podshim::runtime {

struct AttachStdio {
  bool stdin = false;
  bool stdout = true;
  bool stderr = true;
};

// One attach session. Destroying it detaches (the container runs on).
class AttachSession {
 public:
  AttachSession(UniqueFd control, UniqueFd terminal)
      : control_(std::move(control)), terminal_(std::move(terminal)) {}
  AttachSession(const AttachSession&) = delete;
  AttachSession& operator=(const AttachSession&) = delete;
  ~AttachSession() = default;

  // The caller's ends, O_CLOEXEC (take them): `in` writes the
  // container's stdin (or its terminal), `out` and `err` read this session's
  // copy of its output (a terminal has `out` only). End of file once the
  // session ends.
  UniqueFd in, out, err;

  // Readable (POLLIN) once the session has ended (the container exited, or
  // it was detached).
  int exit_fd() const { return control_.get(); }
  // The terminal's size (TIOCSWINSZ); FAILED_PRECONDITION without one.
  absl::Status Resize(uint16_t width, uint16_t height);
  // The client ended stdin (its `in` is closed by then): with stdin_once and
  // no terminal the container's stdin closes and the session goes on until
  // the container exits; otherwise the session ends.
  void StdinEnded();
  // Once exit_fd is readable: 0 when the container exited or the session was
  // detached; UNAVAILABLE with the monitor's reason when it cut the session
  // off (a client that did not keep up), or when the monitor went away.
  absl::StatusOr<int> Finish();
  // Ends the session now.
  void Detach();

 private:
  UniqueFd control_;
  UniqueFd terminal_;
};

// Attaches to the container whose monitor serves `bundle`/attach.
// FAILED_PRECONDITION when nothing serves it (the container is not running,
// or its monitor predates attach) or the monitor refuses (no stdin to give,
// too many sessions), with its reason.
absl::StatusOr<std::unique_ptr<AttachSession>> AttachToContainer(const std::string& bundle,
                                                                 const AttachStdio& stdio);

}  // namespace podshim::runtime
