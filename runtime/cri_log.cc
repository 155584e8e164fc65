#include "runtime/cri_log.h"

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace podshim::runtime {

namespace {

constexpr int64_t kNanosPerSecond = 1000000000;

absl::string_view StreamName(LogStream s) { return s == LogStream::kStdout ? "stdout" : "stderr"; }

void AppendRecord(std::string& out, absl::string_view stamp, LogStream stream, bool partial,
                  absl::string_view message) {
  absl::StrAppend(&out, stamp, " ", StreamName(stream), partial ? " P " : " F ", message, "\n");
}

}  // namespace

std::string FormatCriTimestamp(int64_t unix_nanos) {
  int64_t secs = unix_nanos / kNanosPerSecond;
  int64_t nanos = unix_nanos % kNanosPerSecond;
  if (nanos < 0) {
    nanos += kNanosPerSecond;
    --secs;
  }
  time_t t = static_cast<time_t>(secs);
  struct tm tm {};
  ::gmtime_r(&t, &tm);
  return absl::StrFormat("%04d-%02d-%02dT%02d:%02d:%02d.%09dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                         tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(nanos));
}

std::string FormatCriRecord(int64_t unix_nanos, LogStream stream, bool partial,
                            absl::string_view message) {
  std::string out;
  AppendRecord(out, FormatCriTimestamp(unix_nanos), stream, partial, message);
  return out;
}

int64_t WallClockNanos() {
  struct timespec ts {};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * kNanosPerSecond + ts.tv_nsec;
}

CriLogWriter::CriLogWriter(Sink sink, Clock clock, size_t max_line)
    : sink_(std::move(sink)), clock_(std::move(clock)), max_line_(max_line == 0 ? 1 : max_line) {}

absl::Status CriLogWriter::Append(LogStream stream, absl::string_view data) {
  if (data.empty()) return absl::OkStatus();
  StreamState& st = state(stream);
  st.pending.append(data.data(), data.size());

  const std::string stamp = FormatCriTimestamp(clock_());
  std::string out;
  absl::string_view rest(st.pending);
  for (;;) {
    size_t nl = rest.find('\n');
    if (nl == absl::string_view::npos) break;
    absl::string_view line = rest.substr(0, nl);
    while (line.size() > max_line_) {
      AppendRecord(out, stamp, stream, /*partial=*/true, line.substr(0, max_line_));
      line.remove_prefix(max_line_);
    }
    AppendRecord(out, stamp, stream, /*partial=*/false, line);
    st.line_open = false;
    rest.remove_prefix(nl + 1);
  }
  // The buffer holds at most one record's worth of an unterminated line.
  while (rest.size() > max_line_) {
    AppendRecord(out, stamp, stream, /*partial=*/true, rest.substr(0, max_line_));
    st.line_open = true;
    rest.remove_prefix(max_line_);
  }
  st.pending.erase(0, st.pending.size() - rest.size());
  if (out.empty()) return absl::OkStatus();
  return sink_(out);
}

absl::Status CriLogWriter::FlushPartial(LogStream stream) {
  StreamState& st = state(stream);
  if (st.pending.empty()) return absl::OkStatus();
  std::string out = FormatCriRecord(clock_(), stream, /*partial=*/true, st.pending);
  st.pending.clear();
  st.line_open = true;
  return sink_(out);
}

absl::Status CriLogWriter::Finish(LogStream stream) {
  StreamState& st = state(stream);
  if (st.pending.empty() && !st.line_open) return absl::OkStatus();
  std::string out = FormatCriRecord(clock_(), stream, /*partial=*/false, st.pending);
  st.pending.clear();
  st.line_open = false;
  return sink_(out);
}

namespace {

absl::StatusOr<UniqueFd> OpenLogPath(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640));
  if (!fd.valid()) return ErrnoError(errno, "open log file", path);
  return fd;
}

}  // namespace

absl::StatusOr<CriLogFile> CriLogFile::Open(std::string path) {
  auto fd = OpenLogPath(path);
  if (!fd.ok()) return fd.status();
  return CriLogFile(std::move(path), *std::move(fd));
}

absl::Status CriLogFile::Write(absl::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd_.get(), data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, "write log file", path_);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

absl::Status CriLogFile::Reopen() {
  auto fd = OpenLogPath(path_);
  if (!fd.ok()) return fd.status();
  fd_ = *std::move(fd);
  return absl::OkStatus();
}

}  // namespace podshim::runtime
