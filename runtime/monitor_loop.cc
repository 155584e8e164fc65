#include "runtime/monitor_loop.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <list>
#include <string_view>

#include "runtime/cri_log.h"
#include "runtime/launch_spec.h"  // file names only: no code of it is linked

namespace podshim::runtime {
namespace {

// A partial line is written as P once its stream was quiet this long.
constexpr int64_t kIdleFlushNanos = 250'000'000;
constexpr size_t kReadChunk = size_t{64} * 1024;

int64_t MonotonicNanos() {
  struct timespec ts {};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() { Reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& other) noexcept : fd_(other.release()) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      Reset();
      fd_ = other.release();
    }
    return *this;
  }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void Reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

bool WriteAllTo(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// temp file, fsync, rename, fsync of the directory: the file is whole or absent.
bool WriteFileAtomically(const std::string& dir, const std::string& name, std::string_view data) {
  const std::string path = dir + "/" + name;
  const std::string tmp = path + ".tmp";
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd.valid()) return false;
  if (!WriteAllTo(fd.get(), data) || ::fsync(fd.get()) != 0) {
    ::unlink(tmp.c_str());
    return false;
  }
  fd.Reset();
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return false;
  }
  Fd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (d.valid()) ::fsync(d.get());
  return true;
}

std::string ReadSmallFile(const std::string& path) {
  std::string out;
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// Copies the container's stdout/stderr into the CRI log until its init exits.
class OutputPump {
 public:
  // `tap` gets a copy of each piece of output (0: stdout, 1: stderr).
  OutputPump(CriLogFile& log, int out, int err, std::function<void(int, std::string_view)> tap)
      : writer_(
            [&log](std::string_view records) { return log.is_open() ? log.Write(records) : 0; }),
        tap_(std::move(tap)) {
    streams_[0].fd = out;
    streams_[0].stream = LogStream::kStdout;
    streams_[1].fd = err;
    streams_[1].stream = LogStream::kStderr;
    for (Stream& s : streams_) {
      if (s.fd >= 0) ::fcntl(s.fd, F_SETFL, O_NONBLOCK);
    }
  }
  ~OutputPump() {
    for (Stream& s : streams_) Close(s);
  }
  OutputPump(const OutputPump&) = delete;
  OutputPump& operator=(const OutputPump&) = delete;

  int fd(int i) const { return streams_[i].fd; }

  // Reads what is there; at EOF finishes the stream and closes its pipe.
  void Read(int i) {
    Stream& s = streams_[i];
    char buf[kReadChunk];
    while (s.fd >= 0) {
      ssize_t n = ::read(s.fd, buf, sizeof(buf));
      if (n < 0 && errno == EINTR) continue;
      // EAGAIN, or an error: try again on the next poll. EIO on a terminal's
      // master: every process closed the terminal, its end of file.
      if (n < 0 && errno != EIO) return;
      if (n <= 0) {
        (void)writer_.Finish(s.stream);
        Close(s);
        return;
      }
      (void)writer_.Append(s.stream, std::string_view(buf, static_cast<size_t>(n)));
      if (tap_) tap_(i, std::string_view(buf, static_cast<size_t>(n)));
      s.last_data_ns = MonotonicNanos();
    }
  }

  // Poll timeout (ms) until the next idle flush is due; -1 when none is.
  int IdleTimeoutMs() const {
    int64_t now = MonotonicNanos(), best = -1;
    for (const Stream& s : streams_) {
      if (!writer_.HasPending(s.stream)) continue;
      int64_t left = s.last_data_ns + kIdleFlushNanos - now;
      if (left < 0) left = 0;
      if (best < 0 || left < best) best = left;
    }
    return best < 0 ? -1 : static_cast<int>(best / 1'000'000 + 1);
  }

  void FlushIdle() {
    int64_t now = MonotonicNanos();
    for (const Stream& s : streams_) {
      if (writer_.HasPending(s.stream) && now - s.last_data_ns >= kIdleFlushNanos) {
        (void)writer_.FlushPartial(s.stream);
      }
    }
  }

  // After the init exited: take what is in the pipes now, without waiting
  // for processes that still hold them open, and end both streams.
  void Drain() {
    for (int i = 0; i < 2; ++i) {
      Read(i);
      if (streams_[i].fd >= 0) {
        (void)writer_.Finish(streams_[i].stream);
        Close(streams_[i]);
      }
    }
  }

 private:
  struct Stream {
    int fd = -1;
    LogStream stream = LogStream::kStdout;
    int64_t last_data_ns = 0;
  };
  static void Close(Stream& s) {
    if (s.fd >= 0) ::close(s.fd);
    s.fd = -1;
  }
  CriLogWriter writer_;
  std::function<void(int, std::string_view)> tap_;
  std::array<Stream, 2> streams_;
};

// Sends one packet, with `fds` as SCM_RIGHTS when there are any. False when
// it could not be sent whole.
bool SendPacket(int sock, std::string_view data, const std::vector<int>& fds) {
  struct iovec iov {
    const_cast<char*>(data.data()), data.size()
  };
  struct msghdr msg {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  std::vector<char> control;
  if (!fds.empty()) {
    control.resize(CMSG_SPACE(sizeof(int) * fds.size()));
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  ssize_t n;
  do {
    n = ::sendmsg(sock, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  return n == static_cast<ssize_t>(data.size());
}

// The attach socket's server (monitor_loop.h): its sessions, the copies of
// the output they get, and the container's stdin they write.
class AttachServer {
 public:
  explicit AttachServer(const MonitorLoopArgs& args)
      : listen_(args.attach_fd),
        stdin_(args.stdin_fd),
        // Its own copy: the pump closes out_fd once every process closed
        // the terminal, and the number may then name another file.
        terminal_(args.tty && args.out_fd >= 0 ? ::fcntl(args.out_fd, F_DUPFD_CLOEXEC, 3) : -1),
        tty_(args.tty),
        stdin_once_(args.stdin_once),
        path_(args.bundle + "/" + kAttachSocket) {
    if (listen_.valid()) ::fcntl(listen_.get(), F_SETFL, O_NONBLOCK);
  }
  ~AttachServer() { End("exited"); }
  AttachServer(const AttachServer&) = delete;
  AttachServer& operator=(const AttachServer&) = delete;

  // The descriptors to poll for reading: the socket, then each session's.
  void AddPollFds(std::vector<struct pollfd>* fds) {
    polled_.clear();
    if (listen_.valid()) fds->push_back({listen_.get(), POLLIN, 0});
    for (auto it = sessions_.begin(); it != sessions_.end(); ++it) {
      fds->push_back({it->control.get(), POLLIN, 0});
      polled_.push_back(it);
    }
  }

  // After poll: `fds` from the index AddPollFds started at.
  void HandlePoll(const struct pollfd* fds) {
    size_t i = 0;
    if (listen_.valid()) {
      if ((fds[i].revents & POLLIN) != 0) Accept();
      ++i;
    }
    for (auto it : polled_) {  // by value: a Drop meanwhile marks later ones end()
      if (fds[i++].revents != 0 && it != sessions_.end()) Receive(it);
    }
    polled_.clear();
  }

  // A copy of output for every session that asked for `stream`.
  void Output(int stream, std::string_view data) {
    for (auto it = sessions_.begin(); it != sessions_.end();) {
      auto next = std::next(it);
      Fd& pipe = stream == 0 ? it->out : it->err;
      if (pipe.valid()) {
        ssize_t n;
        do {
          n = ::write(pipe.get(), data.data(), data.size());
        } while (n < 0 && errno == EINTR);
        if (n < 0 && errno == EPIPE) {
          Drop(it, "detached");  // its reader is gone
        } else if (n != static_cast<ssize_t>(data.size())) {
          Drop(it,
               "the attach client did not keep up with the container's output; "
               "it was detached (its output is in the container's log)");
        }
      }
      it = next;
    }
  }

  // The container exited (its output is all copied): ends every session and
  // stops listening.
  void End(const char* reason) {
    while (!sessions_.empty()) Drop(sessions_.begin(), reason);
    if (listen_.valid()) {
      listen_.Reset();
      ::unlink(path_.c_str());
    }
    stdin_.Reset();
  }

 private:
  struct Session {
    Fd control, out, err;
    bool granted = false;
    bool took_stdin = false;
  };
  using Iter = std::list<Session>::iterator;

  void Accept() {
    for (;;) {
      Fd conn(::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
      if (!conn.valid()) return;  // EAGAIN: none left; errors: the next poll tries again
      // Connections that never ask count too: more than twice the limit are
      // closed at once (only root can reach the socket; this bounds a bug).
      if (sessions_.size() >= 2 * static_cast<size_t>(kMaxAttachSessions)) continue;
      sessions_.emplace_back();
      sessions_.back().control = Fd(conn.release());
    }
  }

  void Receive(Iter it) {
    char buf[64];
    ssize_t n;
    do {
      n = ::recv(it->control.get(), buf, sizeof buf, MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && errno == EAGAIN) return;
    if (n <= 0) {
      Drop(it, nullptr);  // the client went away
      return;
    }
    const bool granted = it->granted;
    if (buf[0] == kAttachRequest && n == 2 && !granted) {
      Grant(it, static_cast<unsigned char>(buf[1]));
    } else if (buf[0] == kAttachStdinEnded && granted) {
      if (stdin_once_ && !tty_ && it->took_stdin) {
        CloseStdin();
      } else {
        Drop(it, "detached");
      }
    } else if (buf[0] == kAttachDetach) {
      Drop(it, "detached");
    } else {
      Drop(it, "protocol error: unexpected message on the attach socket");
    }
  }

  void Grant(Iter it, unsigned char asked) {
    auto refuse = [&](const std::string& why) {
      (void)SendPacket(it->control.get(), std::string(1, kAttachRefused) + why, {});
      Erase(it);
    };
    size_t live = 0;
    for (const Session& other : sessions_) live += other.granted ? 1 : 0;
    if (live >= static_cast<size_t>(kMaxAttachSessions)) {
      refuse("too many attach sessions on this container (at most " +
             std::to_string(kMaxAttachSessions) + ")");
      return;
    }
    if ((asked & kAttachStdin) != 0 && !stdin_.valid()) {
      refuse(stdin_closed_ ? "the container's stdin is closed (stdin_once: it was attached once)"
                           : "the container was created without stdin");
      return;
    }
    unsigned char flags = 0;
    std::vector<int> fds;
    std::vector<Fd> give;  // the descriptors sent, closed here once they are
    if ((asked & kAttachStdin) != 0) {
      give.emplace_back(::fcntl(stdin_.get(), F_DUPFD_CLOEXEC, 3));
      flags |= kAttachStdin;
    }
    for (unsigned char bit : {kAttachStdout, kAttachStderr}) {
      if ((asked & bit) == 0 || (tty_ && bit == kAttachStderr)) continue;
      int p[2];
      if (::pipe2(p, O_CLOEXEC) != 0) {
        const char* name = ::strerrorname_np(errno);
        refuse(std::string("pipe: ") + (name != nullptr ? name : "error"));
        return;
      }
      (void)::fcntl(p[1], F_SETPIPE_SZ, kAttachPipeBytes);  // best effort
      ::fcntl(p[1], F_SETFL, O_NONBLOCK);
      give.emplace_back(p[0]);
      (bit == kAttachStdout ? it->out : it->err) = Fd(p[1]);
      flags |= bit;
    }
    if (tty_ && terminal_.valid()) {
      give.emplace_back(::fcntl(terminal_.get(), F_DUPFD_CLOEXEC, 3));
      flags |= kAttachTerminal;
    }
    for (const Fd& fd : give) {
      if (!fd.valid()) {
        refuse("could not duplicate a descriptor for the session");
        return;
      }
      fds.push_back(fd.get());
    }
    std::string reply{kAttachGranted, static_cast<char>(flags)};
    if (!SendPacket(it->control.get(), reply, fds)) {
      Erase(it);  // never delivered: the client went; stdin was not taken
      return;
    }
    it->granted = true;
    it->took_stdin = (flags & kAttachStdin) != 0;
  }

  void CloseStdin() {
    stdin_.Reset();
    stdin_closed_ = true;
  }

  // Ends a session: its pipes first (its reader sees their end), then the
  // reason, then the connection. nullptr: the client went away itself.
  void Drop(Iter it, const char* reason) {
    it->out.Reset();
    it->err.Reset();
    if (reason != nullptr) {
      (void)SendPacket(it->control.get(), std::string(1, kAttachEnded) + reason, {});
    }
    if (it->took_stdin && stdin_once_ && !tty_) CloseStdin();
    Erase(it);
  }

  void Erase(Iter it) {
    for (auto& p : polled_) {
      if (p == it) p = sessions_.end();
    }
    sessions_.erase(it);
  }

  Fd listen_;
  Fd stdin_;
  Fd terminal_;
  bool tty_;
  bool stdin_once_;
  bool stdin_closed_ = false;
  std::string path_;
  std::list<Session> sessions_;
  std::vector<Iter> polled_;
};

void ReopenLog(CriLogFile& log, const std::string& bundle) {
  if (!log.is_open()) return;
  if (int err = log.Reopen(); err != 0) {
    const char* name = ::strerrorname_np(err);  // thread-safe, unlike strerror
    std::string msg = "open log file `" + log.path() +
                      "`: " + (name != nullptr ? name : "errno " + std::to_string(err)) + "\n";
    (void)WriteFileAtomically(bundle, kReopenErrorFile, msg);
    return;
  }
  (void)WriteFileAtomically(bundle, kReopenDoneFile, "");
}

bool ParseInt(const char* text, int* out) {
  char* end = nullptr;
  errno = 0;
  long v = std::strtol(text, &end, 10);  // NOLINT(runtime/int): strtol's type
  if (errno != 0 || end == text || *end != '\0' || v < -1 || v > 0x7fffffff) return false;
  *out = static_cast<int>(v);
  return true;
}

}  // namespace

int ExitCodeOf(int wait_status, int* signal_out) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) {
    if (signal_out != nullptr) *signal_out = WTERMSIG(wait_status);
    return 128 + WTERMSIG(wait_status);
  }
  return 255;
}

std::vector<std::string> MonitorLoopArgv(const std::string& binary, const MonitorLoopArgs& args) {
  return {binary,
          "--bundle",
          args.bundle,
          "--child",
          std::to_string(args.child),
          "--out-fd",
          std::to_string(args.out_fd),
          "--err-fd",
          std::to_string(args.err_fd),
          "--log-fd",
          std::to_string(args.log_fd),
          "--log-path",
          args.log_path,
          "--oom-counter",
          args.oom_counter_file,
          "--stdin-fd",
          std::to_string(args.stdin_fd),
          "--tty",
          args.tty ? "1" : "0",
          "--stdin-once",
          args.stdin_once ? "1" : "0",
          "--attach-fd",
          std::to_string(args.attach_fd)};
}

bool ParseMonitorLoopArgv(int argc, const char* const* argv, MonitorLoopArgs* args,
                          std::string* error) {
  *args = MonitorLoopArgs{};
  for (int i = 1; i < argc; i += 2) {
    const std::string_view name = argv[i];
    if (i + 1 >= argc) {
      *error = "missing value for " + std::string(name);
      return false;
    }
    const char* value = argv[i + 1];
    bool ok = true;
    if (name == "--bundle") {
      args->bundle = value;
    } else if (name == "--child") {
      ok = ParseInt(value, &args->child) && args->child > 0;
    } else if (name == "--out-fd") {
      ok = ParseInt(value, &args->out_fd);
    } else if (name == "--err-fd") {
      ok = ParseInt(value, &args->err_fd);
    } else if (name == "--log-fd") {
      ok = ParseInt(value, &args->log_fd);
    } else if (name == "--log-path") {
      args->log_path = value;
    } else if (name == "--oom-counter") {
      args->oom_counter_file = value;
    } else if (name == "--stdin-fd") {
      ok = ParseInt(value, &args->stdin_fd);
    } else if (name == "--attach-fd") {
      ok = ParseInt(value, &args->attach_fd);
    } else if (name == "--tty" || name == "--stdin-once") {
      ok = std::string_view(value) == "0" || std::string_view(value) == "1";
      (name == "--tty" ? args->tty : args->stdin_once) = std::string_view(value) == "1";
    } else {
      *error = "unknown flag " + std::string(name);
      return false;
    }
    if (!ok) {
      *error = "bad value for " + std::string(name) + ": " + value;
      return false;
    }
  }
  if (args->bundle.empty() || args->child <= 0) {
    *error = "--bundle and --child are required";
    return false;
  }
  return true;
}

std::string ExitStatusJsonText(int exit_code, int signal, bool oom_killed, int64_t finished_at_ns,
                               const std::string& reason) {
  // `reason` is one of our own words (Completed, Error, OOMKilled): no escaping needed.
  char buf[256];
  int n = std::snprintf(buf, sizeof(buf),
                        "{\"exit_code\":%d,\"finished_at_ns\":%lld,\"oom_killed\":%s,"
                        "\"reason\":\"%s\",\"signal\":%d}",
                        exit_code, static_cast<long long>(finished_at_ns),  // NOLINT(runtime/int)
                        oom_killed ? "true" : "false", reason.c_str(), signal);
  return std::string(buf, n > 0 ? static_cast<size_t>(n) : 0);
}

bool OomKillCounted(const std::string& counter_text) {
  std::string_view text(counter_text);
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    constexpr std::string_view kKey = "oom_kill ";
    if (line.substr(0, kKey.size()) != kKey) continue;
    line.remove_prefix(kKey.size());
    int64_t n = 0;
    bool digits = false;
    for (char c : line) {
      if (c < '0' || c > '9') break;
      n = n * 10 + (c - '0');
      digits = true;
    }
    return digits && n > 0;
  }
  return false;
}

int RunMonitorLoop(const MonitorLoopArgs& args) {
  ::signal(SIGPIPE, SIG_IGN);
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGUSR1);
  ::pthread_sigmask(SIG_BLOCK, &mask, nullptr);
  Fd sigfd(::signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));

  CriLogFile log;
  if (args.log_fd >= 0) {
    ::fcntl(args.log_fd, F_SETFD, FD_CLOEXEC);
    log = CriLogFile(args.log_path, args.log_fd);
  }
  for (int fd : {args.out_fd, args.err_fd, args.stdin_fd, args.attach_fd}) {
    if (fd >= 0) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  }
  AttachServer attach(args);
  OutputPump pump(log, args.out_fd, args.err_fd,
                  [&attach](int stream, std::string_view data) { attach.Output(stream, data); });
  const pid_t child = args.child;
  bool exited = false;
  int wait_status = 0;
  // Reaps everything: orphans of the container are ours (subreaper). Also
  // run once before the first poll, for an init that is already gone.
  auto reap = [&] {
    for (;;) {
      int st = 0;
      pid_t r = ::waitpid(-1, &st, WNOHANG);
      if (r <= 0) break;
      if (r == child) {
        wait_status = st;
        exited = true;
      }
    }
  };
  reap();
  std::vector<struct pollfd> fds;
  while (!exited && sigfd.valid()) {
    fds.clear();
    fds.push_back({sigfd.get(), POLLIN, 0});
    fds.push_back({pump.fd(0), POLLIN, 0});
    fds.push_back({pump.fd(1), POLLIN, 0});
    attach.AddPollFds(&fds);
    int n = ::poll(fds.data(), fds.size(), pump.IdleTimeoutMs());
    if (n < 0) {
      if (errno == EINTR) continue;
      break;  // cannot happen with valid fds; fall through to reaping
    }
    if ((fds[1].revents & (POLLIN | POLLHUP | POLLERR)) != 0) pump.Read(0);
    if ((fds[2].revents & (POLLIN | POLLHUP | POLLERR)) != 0) pump.Read(1);
    pump.FlushIdle();
    attach.HandlePoll(fds.data() + 3);
    if ((fds[0].revents & POLLIN) == 0) continue;
    struct signalfd_siginfo si {};
    while (::read(sigfd.get(), &si, sizeof(si)) == static_cast<ssize_t>(sizeof(si))) {
      if (si.ssi_signo == SIGTERM) {
        ::kill(child, SIGKILL);
      } else if (si.ssi_signo == SIGUSR1) {
        ReopenLog(log, args.bundle);
      }
    }
    reap();
  }
  if (!exited) {
    while (::waitpid(child, &wait_status, 0) < 0 && errno == EINTR) {
    }
  }
  pump.Drain();
  attach.End("exited");

  int signal = 0;
  const int code = ExitCodeOf(wait_status, &signal);
  const bool oom = signal == SIGKILL && !args.oom_counter_file.empty() &&
                   OomKillCounted(ReadSmallFile(args.oom_counter_file));
  const char* reason = oom ? "OOMKilled" : (code == 0 ? "Completed" : "Error");
  const std::string json = ExitStatusJsonText(code, signal, oom, WallClockNanos(), reason);
  return WriteFileAtomically(args.bundle, kExitFile, json) ? 0 : 1;
}

}  // namespace podshim::runtime
