#include "runtime/cri_log.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <utility>

namespace podshim::runtime {

namespace {

constexpr int64_t kNanosPerSecond = 1000000000;

std::string_view StreamName(LogStream s) { return s == LogStream::kStdout ? "stdout" : "stderr"; }

void AppendRecord(std::string& out, std::string_view stamp, LogStream stream, bool partial,
                  std::string_view message) {
  out.append(stamp);
  out.push_back(' ');
  out.append(StreamName(stream));
  out.append(partial ? " P " : " F ");
  out.append(message);
  out.push_back('\n');
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
  char buf[64];
  int n = std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%09dZ", tm.tm_year + 1900,
                        tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                        static_cast<int>(nanos));
  return std::string(buf, n > 0 ? static_cast<size_t>(n) : 0);
}

std::string FormatCriRecord(int64_t unix_nanos, LogStream stream, bool partial,
                            std::string_view message) {
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

int CriLogWriter::Append(LogStream stream, std::string_view data) {
  if (data.empty()) return 0;
  StreamState& st = state(stream);
  st.pending.append(data.data(), data.size());

  const std::string stamp = FormatCriTimestamp(clock_());
  std::string out;
  std::string_view rest(st.pending);
  for (;;) {
    size_t nl = rest.find('\n');
    if (nl == std::string_view::npos) break;
    std::string_view line = rest.substr(0, nl);
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
  if (out.empty()) return 0;
  return sink_(out);
}

int CriLogWriter::FlushPartial(LogStream stream) {
  StreamState& st = state(stream);
  if (st.pending.empty()) return 0;
  std::string out = FormatCriRecord(clock_(), stream, /*partial=*/true, st.pending);
  st.pending.clear();
  st.line_open = true;
  return sink_(out);
}

int CriLogWriter::Finish(LogStream stream) {
  StreamState& st = state(stream);
  if (st.pending.empty() && !st.line_open) return 0;
  std::string out = FormatCriRecord(clock_(), stream, /*partial=*/false, st.pending);
  st.pending.clear();
  st.line_open = false;
  return sink_(out);
}

namespace {

// A new descriptor for `path`, or -errno. No component of the path may be a
// symlink (openat2 RESOLVE_NO_SYMLINKS: ELOOP), so a directory swapped for a
// symlink after StartContainer checked the path cannot send the log
// elsewhere; a kernel without openat2 (before 5.6) refuses a symlink as the
// last component only.
int OpenLogPath(const std::string& path) {
  constexpr int kFlags = O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW;
  struct open_how how {};
  how.flags = kFlags;
  how.mode = 0640;
  how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  long fd = ::syscall(SYS_openat2, AT_FDCWD, path.c_str(), &how, sizeof how);
  if (fd < 0 && errno == ENOSYS) fd = ::open(path.c_str(), kFlags, 0640);
  return fd >= 0 ? static_cast<int>(fd) : -errno;
}

}  // namespace

CriLogFile::~CriLogFile() {
  if (fd_ >= 0) ::close(fd_);
}

CriLogFile::CriLogFile(CriLogFile&& other) noexcept
    : path_(std::move(other.path_)), fd_(std::exchange(other.fd_, -1)) {}

CriLogFile& CriLogFile::operator=(CriLogFile&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    path_ = std::move(other.path_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

int CriLogFile::Open(std::string path) {
  int fd = OpenLogPath(path);
  if (fd < 0) return -fd;
  if (fd_ >= 0) ::close(fd_);
  path_ = std::move(path);
  fd_ = fd;
  return 0;
}

int CriLogFile::Write(std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd_, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return 0;
}

int CriLogFile::Reopen() {
  int fd = OpenLogPath(path_);
  if (fd < 0) return -fd;
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
  return 0;
}

}  // namespace podshim::runtime
