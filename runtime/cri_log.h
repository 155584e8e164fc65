// The CRI container log format, as kubelet reads it:
//
//   <RFC3339Nano UTC time> <stdout|stderr> <F|P> <message>\n
//
// F marks the end of a line, P a chunk of a longer line (kubelet joins P
// chunks up to the next F). The monitor feeds raw pipe output to a
// CriLogWriter, which splits it into records; a CriLogFile owns the file the
// records go to and can reopen it after kubelet rotated it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "runtime/unique_fd.h"

namespace podshim::runtime {

enum class LogStream { kStdout, kStderr };

// Longest message of one record; longer lines are split into P chunks.
inline constexpr size_t kCriMaxLineBytes = size_t{16} * 1024;

// "2024-05-01T12:00:00.000000001Z": UTC, always nine fractional digits.
std::string FormatCriTimestamp(int64_t unix_nanos);
// One complete record, newline included.
std::string FormatCriRecord(int64_t unix_nanos, LogStream stream, bool partial,
                            absl::string_view message);
// The current wall-clock time in unix nanoseconds.
int64_t WallClockNanos();

// Turns a byte stream per container stream into CRI records.
class CriLogWriter {
 public:
  using Sink = std::function<absl::Status(absl::string_view records)>;
  using Clock = std::function<int64_t()>;

  // `sink` gets one or more whole records per call; `clock` stamps them.
  explicit CriLogWriter(Sink sink, Clock clock = WallClockNanos,
                        size_t max_line = kCriMaxLineBytes);

  // Buffers `data` read from `stream`; writes every completed line as F and
  // every full `max_line` chunk of a longer line as P.
  absl::Status Append(LogStream stream, absl::string_view data);
  // Writes a pending partial line as P (the stream has been idle).
  absl::Status FlushPartial(LogStream stream);
  // The stream reached EOF: a pending partial line is written as F; a line
  // already started with P chunks is closed with an empty F.
  absl::Status Finish(LogStream stream);

  bool HasPending(LogStream stream) const { return !state(stream).pending.empty(); }

 private:
  struct StreamState {
    std::string pending;     // bytes of the current, unterminated line
    bool line_open = false;  // a P chunk of the current line was written
  };
  StreamState& state(LogStream s) { return s == LogStream::kStdout ? stdout_ : stderr_; }
  const StreamState& state(LogStream s) const {
    return s == LogStream::kStdout ? stdout_ : stderr_;
  }

  Sink sink_;
  Clock clock_;
  size_t max_line_;
  StreamState stdout_, stderr_;
};

// The log file: opened O_APPEND|O_NOFOLLOW, mode 0640, and reopened by path.
class CriLogFile {
 public:
  static absl::StatusOr<CriLogFile> Open(std::string path);

  // Appends `data` with as few write(2) calls as possible.
  absl::Status Write(absl::string_view data);
  // Opens the path again (after a rotation renamed the file); on failure the
  // old file stays in use.
  absl::Status Reopen();

  const std::string& path() const { return path_; }
  int fd() const { return fd_.get(); }

 private:
  CriLogFile(std::string path, UniqueFd fd) : path_(std::move(path)), fd_(std::move(fd)) {}
  std::string path_;
  UniqueFd fd_;
};

}  // namespace podshim::runtime
