#include "runtime/spawn.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <map>
#include <memory>
#include <set>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace podshim::runtime {
namespace {

constexpr size_t kChunk = size_t{64} * 1024;

// Milliseconds for poll(2) until `deadline`, rounded up; -1 for no deadline.
int PollTimeoutMs(absl::Time deadline) {
  if (deadline == absl::InfiniteFuture()) return -1;
  absl::Duration left = deadline - absl::Now();
  if (left <= absl::ZeroDuration()) return 0;
  int64_t ms = absl::ToInt64Milliseconds(absl::Ceil(left, absl::Milliseconds(1)));
  return static_cast<int>(std::min<int64_t>(ms, INT_MAX));
}

absl::Time DeadlineAfter(absl::Duration timeout) {
  if (timeout == absl::InfiniteDuration()) return absl::InfiniteFuture();
  return absl::Now() + std::max(timeout, absl::ZeroDuration());
}

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U  // Linux 6.3: executable even under vm.memfd_noexec=1
#endif

// A sealed copy of a helper: its read-only memfd and the path that execs it.
// A spawn holds one until posix_spawn has returned, so a copy replaced
// meanwhile (ResealHelper) is not closed under it.
struct SealedBinary {
  UniqueFd fd;
  std::string exec_path;
};

// The sealed copies of helpers by their path (SealHelper); never destroyed:
// children may be spawned until the process ends.
struct SealedHelpers {
  absl::Mutex mu;
  std::map<std::string, std::shared_ptr<const SealedBinary>> by_path ABSL_GUARDED_BY(mu);
};
SealedHelpers& Sealed() {
  static auto* sealed = new SealedHelpers;
  return *sealed;
}

std::shared_ptr<const SealedBinary> SealedCopyOf(const std::string& path) {
  SealedHelpers& sealed = Sealed();
  absl::MutexLock lock(&sealed.mu);
  auto it = sealed.by_path.find(path);
  return it == sealed.by_path.end() ? nullptr : it->second;
}

absl::StatusOr<std::shared_ptr<const SealedBinary>> SealedCopy(const std::string& path) {
  UniqueFd src(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!src.valid()) return ErrnoError(errno, "open", path);
  struct stat st {};
  if (::fstat(src.get(), &st) != 0) return ErrnoError(errno, "stat", path);
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat("`", path, "` is not a regular file"));
  }
  const std::string name = path.substr(path.rfind('/') + 1);
  constexpr unsigned kFlags = MFD_CLOEXEC | MFD_ALLOW_SEALING;
  UniqueFd copy(::memfd_create(name.c_str(), kFlags | MFD_EXEC));
  if (!copy.valid() && errno == EINVAL) copy.Reset(::memfd_create(name.c_str(), kFlags));
  if (!copy.valid()) return ErrnoError(errno, "memfd_create for", path);
  for (off_t done = 0; done < st.st_size;) {
    const ssize_t n =
        ::sendfile(copy.get(), src.get(), nullptr, static_cast<size_t>(st.st_size - done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return ErrnoError(n < 0 ? errno : EIO, "copy into a memfd", path);
    done += n;
  }
  if (::fchmod(copy.get(), 0555) != 0) return ErrnoError(errno, "chmod the memfd copy of", path);
  if (::fcntl(copy.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) !=
      0) {
    return ErrnoError(errno, "seal the memfd copy of", path);
  }
  // memfd_create's descriptor is open for writing, and the kernel execs no
  // file that is (ETXTBSY): keep a read-only one instead.
  const std::string self = absl::StrCat("/proc/self/fd/", copy.get());
  auto sealed = std::make_shared<SealedBinary>();
  sealed->fd.Reset(::open(self.c_str(), O_RDONLY | O_CLOEXEC));
  if (!sealed->fd.valid()) return ErrnoError(errno, "reopen the memfd copy of", path);
  sealed->exec_path = absl::StrCat("/proc/", ::getpid(), "/fd/", sealed->fd.get());
  return std::shared_ptr<const SealedBinary>(std::move(sealed));
}

}  // namespace

namespace {

// A fresh sealed copy of `path` in place of `stale`, which someone holds
// open for writing (the kernel execs no such file).
std::shared_ptr<const SealedBinary> ResealHelper(const std::string& path,
                                                 const std::shared_ptr<const SealedBinary>& stale) {
  auto copy = SealedCopy(path);
  if (!copy.ok()) return stale;
  SealedHelpers& sealed = Sealed();
  absl::MutexLock lock(&sealed.mu);
  auto& current = sealed.by_path[path];
  // Another spawn replaced it already: that one is as fresh.
  if (current == stale) current = *copy;
  return current;
}

// Owners for the posix_spawn(3) objects.
class FileActions {
 public:
  FileActions() { ok_ = ::posix_spawn_file_actions_init(&actions_) == 0; }
  FileActions(const FileActions&) = delete;
  FileActions& operator=(const FileActions&) = delete;
  ~FileActions() {
    if (ok_) ::posix_spawn_file_actions_destroy(&actions_);
  }
  bool ok() const { return ok_; }
  posix_spawn_file_actions_t* get() { return &actions_; }

 private:
  posix_spawn_file_actions_t actions_{};
  bool ok_ = false;
};

class SpawnAttr {
 public:
  SpawnAttr() { ok_ = ::posix_spawnattr_init(&attr_) == 0; }
  SpawnAttr(const SpawnAttr&) = delete;
  SpawnAttr& operator=(const SpawnAttr&) = delete;
  ~SpawnAttr() {
    if (ok_) ::posix_spawnattr_destroy(&attr_);
  }
  bool ok() const { return ok_; }
  posix_spawnattr_t* get() { return &attr_; }

 private:
  posix_spawnattr_t attr_{};
  bool ok_ = false;
};

absl::Status MakePipe(UniqueFd& read_end, UniqueFd& write_end, const std::string& name) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return ErrnoError(errno, "create pipe for", name);
  read_end.Reset(fds[0]);
  write_end.Reset(fds[1]);
  return absl::OkStatus();
}

absl::Status SetNonBlocking(const UniqueFd& fd, const std::string& name) {
  if (!fd.valid()) return absl::OkStatus();
  int flags = ::fcntl(fd.get(), F_GETFL);
  if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK) != 0) {
    return ErrnoError(errno, "set O_NONBLOCK on a pipe of", name);
  }
  return absl::OkStatus();
}

// write(2) that turns the SIGPIPE of a closed pipe into a plain EPIPE, also
// when the process does not ignore SIGPIPE: the signal is blocked in this
// thread for the call and a SIGPIPE it raised is consumed.
ssize_t WriteNoSigpipe(int fd, const char* data, size_t size) {
  sigset_t pipe_set;
  sigset_t old_mask;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  ::pthread_sigmask(SIG_BLOCK, &pipe_set, &old_mask);
  sigset_t pending;
  sigemptyset(&pending);
  ::sigpending(&pending);
  bool was_pending = sigismember(&pending, SIGPIPE) == 1;
  ssize_t n = ::write(fd, data, size);
  int saved = errno;
  if (n < 0 && saved == EPIPE && !was_pending) {
    struct timespec zero {};
    while (::sigtimedwait(&pipe_set, nullptr, &zero) < 0 && errno == EINTR) {
    }
  }
  ::pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  errno = saved;
  return n;
}

// One output stream of a child in RunProcess.
struct OutputSink {
  UniqueFd fd;
  std::string* data;
  bool* truncated;
  size_t limit;

  // Reads what is available. Returns false at end of file (fd closed) and
  // sets `error` on a read error.
  bool ReadAvailable(std::vector<char>& buf, absl::Status& error, const std::string& name) {
    for (;;) {
      ssize_t n = ::read(fd.get(), buf.data(), buf.size());
      if (n > 0) {
        size_t room = limit - std::min(limit, data->size());
        size_t keep = std::min(room, static_cast<size_t>(n));
        data->append(buf.data(), keep);
        if (keep < static_cast<size_t>(n)) *truncated = true;
        continue;
      }
      if (n == 0) {
        fd.Reset();
        return false;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return true;
      error = ErrnoError(errno, "read output of", name);
      fd.Reset();
      return false;
    }
  }
};

ProcessExit FromSiginfo(const siginfo_t& info) {
  ProcessExit status;
  if (info.si_code == CLD_EXITED) {
    status.exit_code = info.si_status;
  } else {
    status.term_signal = info.si_status;
  }
  return status;
}

}  // namespace

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      pidfd_(std::move(other.pidfd_)),
      new_session_(other.new_session_),
      name_(std::move(other.name_)) {}

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    KillAndReap();
    pid_ = std::exchange(other.pid_, -1);
    pidfd_ = std::move(other.pidfd_);
    new_session_ = other.new_session_;
    name_ = std::move(other.name_);
  }
  return *this;
}

ChildProcess::~ChildProcess() { KillAndReap(); }

void ChildProcess::KillAndReap() {
  if (!valid()) return;
  (void)Kill(SIGKILL);
  (void)Wait();
}

absl::Status ChildProcess::Kill(int sig) {
  if (!valid()) return absl::FailedPreconditionError("kill: no child process");
  if (new_session_ && ::kill(-pid_, sig) != 0 && errno != ESRCH) {
    return ErrnoError(errno, absl::StrCat("kill process group ", pid_, " of"), name_);
  }
  if (auto s = SignalPidfd(pidfd_.get(), sig); !s.ok()) {
    return absl::Status(s.code(),
                        absl::StrCat("kill pid ", pid_, " of `", name_, "`: ", s.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<ProcessExit> ChildProcess::Wait(absl::Duration timeout) {
  if (!valid()) return absl::FailedPreconditionError("wait: no child process");
  if (auto s = WaitForExit(pidfd_.get(), timeout); !s.ok()) {
    return absl::Status(s.code(),
                        absl::StrCat("wait for `", name_, "` (pid ", pid_, "): ", s.message()));
  }
  siginfo_t info{};
  while (::waitid(P_PIDFD, static_cast<id_t>(pidfd_.get()), &info, WEXITED) != 0) {
    if (errno != EINTR) return ErrnoError(errno, "wait for", name_);
  }
  pid_ = -1;
  pidfd_.Reset();
  return FromSiginfo(info);
}

pid_t ChildProcess::Release() {
  pidfd_.Reset();
  return std::exchange(pid_, -1);
}

absl::StatusOr<ChildProcess> Spawn(const SpawnOptions& options, SpawnPipes* pipes) {
  if (options.argv.empty()) return absl::InvalidArgumentError("spawn: empty argv");
  const std::string& name = options.argv[0];

  int max_target = 2;
  std::set<int> targets;
  for (const auto& [child_fd, parent_fd] : options.extra_fds) {
    if (child_fd <= 2 || parent_fd < 0 || !targets.insert(child_fd).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("spawn `", name, "`: bad extra fd {", child_fd, ", ", parent_fd, "}"));
    }
    max_target = std::max(max_target, child_fd);
  }

  // The child's ends of its stdio, then the parent's.
  UniqueFd devnull;
  UniqueFd child_in, child_out, child_err;
  SpawnPipes parent;
  bool need_devnull = pipes == nullptr || !options.capture_output;
  if (need_devnull) {
    devnull.Reset(::open("/dev/null", O_RDWR | O_CLOEXEC));
    if (!devnull.valid()) return ErrnoError(errno, "open", "/dev/null");
  }
  if (pipes != nullptr) {
    if (options.stdio_fds[0] < 0) {
      if (auto s = MakePipe(child_in, parent.in, name); !s.ok()) return s;
    }
    if (options.capture_output) {
      if (options.stdio_fds[1] < 0) {
        if (auto s = MakePipe(parent.out, child_out, name); !s.ok()) return s;
      }
      if (options.stdio_fds[2] < 0) {
        if (auto s = MakePipe(parent.err, child_err, name); !s.ok()) return s;
      }
    }
  }
  auto source_of = [&](int n, const UniqueFd& fd) {
    if (options.stdio_fds[n] >= 0) return options.stdio_fds[n];
    return fd.valid() ? fd.get() : devnull.get();
  };
  std::vector<std::pair<int, int>> plan = {
      {0, source_of(0, child_in)}, {1, source_of(1, child_out)}, {2, source_of(2, child_err)}};
  plan.insert(plan.end(), options.extra_fds.begin(), options.extra_fds.end());

  // Every source is first duplicated above all targets: then no dup2 in the
  // child overwrites a source still to be used, and no source equals its
  // target (dup2 of an fd onto itself would leave its O_CLOEXEC set).
  std::vector<UniqueFd> sources;
  sources.reserve(plan.size());
  for (const auto& [target, source] : plan) {
    sources.emplace_back(::fcntl(source, F_DUPFD_CLOEXEC, max_target + 1));
    if (!sources.back().valid()) {
      return ErrnoError(
          errno, absl::StrCat("duplicate fd ", source, " for child fd ", target, " of"), name);
    }
  }

  FileActions actions;
  if (!actions.ok()) return absl::ResourceExhaustedError("posix_spawn_file_actions_init failed");
  for (size_t i = 0; i < plan.size(); ++i) {
    int rc = ::posix_spawn_file_actions_adddup2(actions.get(), sources[i].get(), plan[i].first);
    if (rc != 0) return ErrnoError(rc, "prepare file actions for", name);
  }
  // Nothing but the planned fds reaches the child, O_CLOEXEC or not.
  if (int rc = ::posix_spawn_file_actions_addclosefrom_np(actions.get(), max_target + 1); rc != 0) {
    return ErrnoError(rc, "prepare file actions for", name);
  }

  SpawnAttr attr;
  if (!attr.ok()) return absl::ResourceExhaustedError("posix_spawnattr_init failed");
  sigset_t empty;
  sigset_t all;
  sigemptyset(&empty);
  sigfillset(&all);
  short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
  if (options.new_session) flags |= POSIX_SPAWN_SETSID;
  if (::posix_spawnattr_setflags(attr.get(), flags) != 0 ||
      ::posix_spawnattr_setsigmask(attr.get(), &empty) != 0 ||
      ::posix_spawnattr_setsigdefault(attr.get(), &all) != 0) {
    return absl::InternalError(absl::StrCat("prepare spawn attributes for `", name, "`"));
  }

  std::vector<char*> argv;
  argv.reserve(options.argv.size() + 1);
  for (const auto& arg : options.argv) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  char** env = environ;
  if (!options.env.empty()) {
    envp.reserve(options.env.size() + 1);
    for (const auto& var : options.env) envp.push_back(const_cast<char*>(var.c_str()));
    envp.push_back(nullptr);
    env = envp.data();
  }

  pid_t pid = -1;
  // A sealed helper runs from its copy (SealHelper), held until the exec is done.
  std::shared_ptr<const SealedBinary> sealed = SealedCopyOf(name);
  const std::string* program = sealed ? &sealed->exec_path : &name;
  int rc = ::posix_spawnp(&pid, program->c_str(), actions.get(), attr.get(), argv.data(), env);
  if (rc == ETXTBSY && sealed) {
    sealed = ResealHelper(name, sealed);
    program = &sealed->exec_path;
    rc = ::posix_spawnp(&pid, program->c_str(), actions.get(), attr.get(), argv.data(), env);
  }
  if (rc != 0) return ErrnoError(rc, "spawn", name);
  // Our unreaped child: its pid cannot be reused before we wait for it.
  auto pidfd = OpenPidfd(pid);
  if (!pidfd.ok()) {
    ::kill(options.new_session ? -pid : pid, SIGKILL);
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    return absl::Status(pidfd.status().code(),
                        absl::StrCat("spawn `", name, "`: ", pidfd.status().message()));
  }
  if (pipes != nullptr) *pipes = std::move(parent);
  return ChildProcess(pid, std::move(*pidfd), options.new_session, name);
}

absl::StatusOr<std::string> SealHelper(const std::string& path) {
  if (auto existing = SealedCopyOf(path)) return existing->exec_path;
  auto copy = SealedCopy(path);
  if (!copy.ok()) return copy.status();
  SealedHelpers& sealed = Sealed();
  absl::MutexLock lock(&sealed.mu);
  auto [it, added] = sealed.by_path.try_emplace(path, std::move(*copy));
  return it->second->exec_path;
}

std::string ExecPathOf(const std::string& path) {
  auto sealed = SealedCopyOf(path);
  return sealed ? sealed->exec_path : path;
}

absl::StatusOr<SpawnResult> RunProcess(const SpawnOptions& options) {
  SpawnPipes pipes;
  auto child_or = Spawn(options, &pipes);
  if (!child_or.ok()) return child_or.status();
  ChildProcess child = std::move(*child_or);
  const std::string name = options.argv[0];

  SpawnResult result;
  if (options.stdin_data.empty()) pipes.in.Reset();
  for (const UniqueFd* fd : {&pipes.in, &pipes.out, &pipes.err}) {
    if (auto s = SetNonBlocking(*fd, name); !s.ok()) return s;
  }
  OutputSink out{std::move(pipes.out), &result.out, &result.out_truncated, options.output_limit};
  OutputSink err{std::move(pipes.err), &result.err, &result.err_truncated, options.output_limit};
  UniqueFd in = std::move(pipes.in);
  absl::string_view to_write = options.stdin_data;
  std::vector<char> buf(kChunk);
  absl::Status read_error;
  absl::Time deadline = DeadlineAfter(options.timeout);

  bool exited = false;
  while (!exited) {
    struct pollfd fds[4];
    nfds_t n = 0;
    fds[n++] = {child.pidfd(), POLLIN, 0};
    int in_idx = -1, out_idx = -1, err_idx = -1;
    if (in.valid()) {
      in_idx = static_cast<int>(n);
      fds[n++] = {in.get(), POLLOUT, 0};
    }
    if (out.fd.valid()) {
      out_idx = static_cast<int>(n);
      fds[n++] = {out.fd.get(), POLLIN, 0};
    }
    if (err.fd.valid()) {
      err_idx = static_cast<int>(n);
      fds[n++] = {err.fd.get(), POLLIN, 0};
    }
    int rc = ::poll(fds, n, result.timed_out ? -1 : PollTimeoutMs(deadline));
    if (rc < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, "poll output of", name);  // the child is killed and reaped
    }
    if (rc == 0) {
      result.timed_out = true;
      if (auto s = child.Kill(SIGKILL); !s.ok()) return s;
      continue;
    }
    if (fds[0].revents != 0) exited = true;
    if (in_idx >= 0 && fds[in_idx].revents != 0) {
      while (!to_write.empty()) {
        ssize_t w = WriteNoSigpipe(in.get(), to_write.data(), std::min(to_write.size(), kChunk));
        if (w > 0) {
          to_write.remove_prefix(static_cast<size_t>(w));
          continue;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && errno == EAGAIN) break;
        // EPIPE: the child closed its stdin; what it did not read is dropped.
        to_write = {};
      }
      if (to_write.empty()) in.Reset();
    }
    if (out_idx >= 0 && fds[out_idx].revents != 0) out.ReadAvailable(buf, read_error, name);
    if (err_idx >= 0 && fds[err_idx].revents != 0) err.ReadAvailable(buf, read_error, name);
  }
  // Everything the child wrote before exiting is in the pipes now. A
  // descendant may still hold them open: take what is there and stop.
  in.Reset();
  if (out.fd.valid()) out.ReadAvailable(buf, read_error, name);
  if (err.fd.valid()) err.ReadAvailable(buf, read_error, name);
  auto status = child.Wait();
  if (!status.ok()) return status.status();
  if (!read_error.ok()) return read_error;
  result.exit_code = status->exit_code;
  result.term_signal = status->term_signal;
  return result;
}

absl::Status WaitForExit(int pidfd, absl::Duration timeout) {
  absl::Time deadline = DeadlineAfter(timeout);
  for (;;) {
    struct pollfd pfd = {pidfd, POLLIN, 0};
    int rc = ::poll(&pfd, 1, PollTimeoutMs(deadline));
    if (rc > 0) return absl::OkStatus();
    if (rc == 0) {
      return absl::DeadlineExceededError(
          absl::StrCat("still running after ", absl::FormatDuration(timeout)));
    }
    if (errno != EINTR) return ErrnoError(errno, "poll", absl::StrCat("pidfd ", pidfd));
  }
}

absl::StatusOr<std::string> ReadUntilEof(int fd, absl::Duration timeout, size_t limit) {
  const std::string what = absl::StrCat("fd ", fd);
  absl::Time deadline = DeadlineAfter(timeout);
  std::string data;
  std::vector<char> buf(kChunk);
  for (;;) {
    struct pollfd pfd = {fd, POLLIN, 0};
    int rc = ::poll(&pfd, 1, PollTimeoutMs(deadline));
    if (rc < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, "poll", what);
    }
    if (rc == 0) {
      return absl::DeadlineExceededError(
          absl::StrCat("read `", what, "`: no end of file after ", absl::FormatDuration(timeout)));
    }
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n == 0) return data;
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return ErrnoError(errno, "read", what);
    }
    if (data.size() + static_cast<size_t>(n) > limit) {
      return absl::ResourceExhaustedError(
          absl::StrCat("read `", what, "`: more than ", limit, " bytes"));
    }
    data.append(buf.data(), static_cast<size_t>(n));
  }
}

}  // namespace podshim::runtime
