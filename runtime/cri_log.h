// The CRI container log format, as kubelet reads it:
//
//   <RFC3339Nano UTC time> <stdout|stderr> <F|P> <message>\n
//
// F marks the end of a line, P a chunk of a longer line (kubelet joins P
// chunks up to the next F). The monitor feeds raw pipe output to a
// CriLogWriter, which splits it into records; a CriLogFile owns the file the
// records go to and can reopen it after kubelet rotated it.
//
// This file is part of the long-running monitor (podshim-monitor-loop), which
// must stay small: the C++ standard library only, no Abseil. Errors are errno
// values (0 = success).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace podshim::runtime {

enum class LogStream { kStdout, kStderr };

// Longest message of one record; longer lines are split into P chunks.
inline constexpr size_t kCriMaxLineBytes = size_t{16} * 1024;

// "2024-05-01T12:00:00.000000001Z": UTC, always nine fractional digits.
std::string FormatCriTimestamp(int64_t unix_nanos);
// One complete record, newline included.
std::string FormatCriRecord(int64_t unix_nanos, LogStream stream, bool partial,
                            std::string_view message);
// The current wall-clock time in unix nanoseconds.
int64_t WallClockNanos();

// Turns a byte stream per container stream into CRI records.
class CriLogWriter {
 public:
  // Takes one or more whole records; returns 0 or an errno value.
  using Sink = std::function<int(std::string_view records)>;
  using Clock = std::function<int64_t()>;

  // `sink` gets one or more whole records per call; `clock` stamps them.
  explicit CriLogWriter(Sink sink, Clock clock = WallClockNanos,
                        size_t max_line = kCriMaxLineBytes);

  // Buffers `data` read from `stream`; writes every completed line as F and
  // every full `max_line` chunk of a longer line as P. Returns the sink's
  // error, if any.
  int Append(LogStream stream, std::string_view data);
  // Writes a pending partial line as P (the stream has been idle).
  int FlushPartial(LogStream stream);
  // The stream reached EOF: a pending partial line is written as F; a line
  // already started with P chunks is closed with an empty F.
  int Finish(LogStream stream);

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
  CriLogFile() = default;
  // Takes over an open descriptor of `path` (from the monitor that execs the
  // loop).
  CriLogFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~CriLogFile();
  CriLogFile(CriLogFile&& other) noexcept;
  CriLogFile& operator=(CriLogFile&& other) noexcept;
  CriLogFile(const CriLogFile&) = delete;
  CriLogFile& operator=(const CriLogFile&) = delete;

  // Opens `path`; 0 or errno.
  int Open(std::string path);
  // Appends `data` with as few write(2) calls as possible; 0 or errno.
  int Write(std::string_view data);
  // Opens the path again (after a rotation renamed the file); on failure the
  // old file stays in use. 0 or errno.
  int Reopen();

  bool is_open() const { return fd_ >= 0; }
  const std::string& path() const { return path_; }
  int fd() const { return fd_; }

 private:
  std::string path_;
  int fd_ = -1;
};

}  // namespace podshim::runtime
