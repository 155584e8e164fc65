// The child side of podshim-monitor: the sync pipe, the container init
// (namespaces, overlay, pivot_root) and ExecSync's child, up to execve.
#include "runtime/container_init.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "runtime/files.h"
#include "runtime/launch_spec.h"
#include "runtime/pidfd.h"
#include "runtime/security.h"
#include "runtime/unique_fd.h"

namespace podshim::runtime {

namespace {

constexpr char kDefaultPath[] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

absl::Status WriteToFile(const std::string& path, absl::string_view data,
                         absl::string_view action) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoError(errno, action, path);
  ssize_t n;
  do {
    n = ::write(fd.get(), data.data(), data.size());
  } while (n < 0 && errno == EINTR);
  if (n < 0) return ErrnoError(errno, action, path);
  return absl::OkStatus();
}

}  // namespace

// --- sync pipe -------------------------------------------------------------------

std::string SyncUserLine(const ResolvedUser& user) {
  return absl::StrCat("user ", user.uid, " ", user.gid, " ",
                      user.groups.empty() ? "-" : absl::StrJoin(user.groups, ","), "\n");
}

std::string SyncErrorLine(const absl::Status& status) {
  std::string msg(status.message());
  for (char& c : msg) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return absl::StrCat("error ", msg, "\n");
}

SyncResult ParseSyncMessages(absl::string_view text) {
  SyncResult out;
  bool have_user = false;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    if (absl::ConsumePrefix(&line, "error ")) {
      out.ok = false;
      out.error = std::string(line);
      return out;
    }
    if (absl::ConsumePrefix(&line, "user ")) {
      std::vector<absl::string_view> f = absl::StrSplit(line, ' ');
      ResolvedUser u;
      bool good = f.size() == 3 && absl::SimpleAtoi(f[0], &u.uid) && absl::SimpleAtoi(f[1], &u.gid);
      if (good && f.size() == 3 && f[2] != "-") {
        for (absl::string_view g : absl::StrSplit(f[2], ',')) {
          uint32_t gid = 0;
          good &= absl::SimpleAtoi(g, &gid);
          u.groups.push_back(gid);
        }
      }
      if (!good) {
        out.error = absl::StrCat("malformed user line from container init: `", line, "`");
        return out;
      }
      out.user = std::move(u);
      have_user = true;
    }
  }
  out.ok = have_user;
  if (!have_user) out.error = "container init exited before it reported its user";
  return out;
}

// --- exec ----------------------------------------------------------------------------

std::string PathFromEnv(const std::vector<std::string>& env) {
  for (const std::string& kv : env) {
    absl::string_view v(kv);
    if (absl::ConsumePrefix(&v, "PATH=")) return std::string(v);
  }
  return kDefaultPath;
}

std::vector<std::string> ExecCandidates(absl::string_view name, absl::string_view path) {
  if (name.find('/') != absl::string_view::npos) return {std::string(name)};
  std::vector<std::string> out;
  for (absl::string_view dir : absl::StrSplit(path, ':')) {
    if (dir.empty()) dir = ".";
    out.push_back(absl::StrCat(dir, absl::EndsWith(dir, "/") ? "" : "/", name));
  }
  return out;
}

namespace {

[[noreturn]] void FailChild(int sync_fd, const absl::Status& status) {
  std::string line = SyncErrorLine(status);
  absl::string_view rest(line);
  while (!rest.empty()) {
    ssize_t n = ::write(sync_fd, rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    rest.remove_prefix(static_cast<size_t>(n));
  }
  ::_exit(127);
}

absl::Status WriteSync(int sync_fd, absl::string_view line) {
  while (!line.empty()) {
    ssize_t n = ::write(sync_fd, line.data(), line.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError(errno, "write", "sync pipe");
    line.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

// The monitor blocks signals for its signalfd and ignores SIGPIPE; the
// workload starts with every signal unblocked and at its default action.
void ResetSignals() {
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    ::signal(sig, SIG_DFL);
  }
  sigset_t none;
  sigemptyset(&none);
  ::pthread_sigmask(SIG_SETMASK, &none, nullptr);
}

bool HasEnv(const std::vector<std::string>& env, absl::string_view key) {
  for (const std::string& kv : env) {
    if (absl::StartsWith(kv, absl::StrCat(key, "="))) return true;
  }
  return false;
}

absl::Status MoveOnto(int fd, int target, absl::string_view name) {
  if (fd == target) {
    int fl = ::fcntl(fd, F_GETFD);
    if (fl < 0 || ::fcntl(fd, F_SETFD, fl & ~FD_CLOEXEC) != 0) {
      return ErrnoError(errno, "clear close-on-exec of", name);
    }
    return absl::OkStatus();
  }
  if (::dup2(fd, target) < 0) return ErrnoError(errno, "dup2", name);
  return absl::OkStatus();
}

// The shared tail of start and exec: rlimits, seccomp, user and
// capabilities, stdio, closing every other fd, execve along PATH. Returns
// only on failure.
absl::Status SecureAndExec(const ProcessSpec& process, const ResolvedUser& user,
                           const std::vector<std::string>& argv, std::vector<std::string> env,
                           const ChildFds& fds, bool die_with_parent) {
  if (argv.empty() || argv[0].empty()) return absl::InvalidArgumentError("exec: no command");
  if (!HasEnv(env, "HOME")) env.push_back(absl::StrCat("HOME=", user.home));
  std::vector<std::string> candidates = ExecCandidates(argv[0], PathFromEnv(env));
  std::vector<char*> cargv, cenv;
  for (const std::string& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  for (const std::string& e : env) cenv.push_back(const_cast<char*>(e.c_str()));
  cenv.push_back(nullptr);

  // The init dies with the monitor only until it execs the workload, which
  // must outlive it.
  if (!die_with_parent && ::prctl(PR_SET_PDEATHSIG, 0) != 0) {
    return ErrnoError(errno, "prctl PR_SET_PDEATHSIG", "self");
  }
  if (auto s = ApplyRlimits(process.rlimits); !s.ok()) return s;
  const bool seccomp = !process.seccomp_json.empty();
  if (seccomp && !process.no_new_privs) {
    if (auto s = ApplySeccomp(process.seccomp_json); !s.ok()) return s;
  }
  if (auto s = ApplyUserAndCapabilities(user, process.capabilities, process.no_new_privs);
      !s.ok()) {
    return s;
  }
  // After the credential change, which clears the parent-death signal.
  if (die_with_parent && ::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) {
    return ErrnoError(errno, "prctl PR_SET_PDEATHSIG", "self");
  }
  if (seccomp && process.no_new_privs) {
    if (auto s = ApplySeccomp(process.seccomp_json); !s.ok()) return s;
  }
  if (auto s = MoveOnto(fds.stdin_fd, 0, "stdin"); !s.ok()) return s;
  if (auto s = MoveOnto(fds.stdout_fd, 1, "stdout"); !s.ok()) return s;
  if (auto s = MoveOnto(fds.stderr_fd, 2, "stderr"); !s.ok()) return s;
  // Every fd but 0-2 and the (close-on-exec) sync pipe goes.
  unsigned int sync = static_cast<unsigned int>(fds.sync_fd);
  if (sync > 3) ::close_range(3, sync - 1, 0);
  ::close_range(sync + 1, ~0U, 0);

  int err = ENOENT;
  bool eacces = false;
  for (const std::string& file : candidates) {
    ::execve(file.c_str(), cargv.data(), cenv.data());
    err = errno;
    if (err == EACCES) {
      eacces = true;
      continue;
    }
    if (err == ENOENT || err == ENOTDIR || err == ESTALE || err == ENODEV || err == ETIMEDOUT) {
      continue;
    }
    break;
  }
  if (eacces && (err == ENOENT || err == ENOTDIR)) err = EACCES;
  return ErrnoError(err, "exec", argv[0]);
}

}  // namespace

absl::StatusOr<UniqueFd> OpenJoinedNamespace(const NamespaceSpec& ns, absl::string_view name) {
  // Another process's namespace: only while it is the process planned for,
  // and still alive once the file is open, so /proc/PID named it throughout.
  UniqueFd owner;
  if (ns.owner_pid > 0) {
    auto opened = OpenProcess(ns.owner_pid, ns.owner_start_time);
    if (!opened.ok()) {
      return absl::FailedPreconditionError(absl::StrCat("join ", name, " namespace of pid ",
                                                        ns.owner_pid, ": that process is gone (",
                                                        opened.status().message(), ")"));
    }
    owner = std::move(*opened);
  }
  UniqueFd fd(::open(ns.path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoError(errno, absl::StrCat("open ", name, " namespace"), ns.path);
  if (owner.valid()) {
    struct pollfd p {
      owner.get(), POLLIN, 0
    };
    if (::poll(&p, 1, 0) != 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("join ", name, " namespace of pid ", ns.owner_pid, ": that process exited"));
    }
  }
  return fd;
}

namespace {

absl::Status JoinNamespace(const NamespaceSpec& ns, int type, absl::string_view name) {
  switch (ns.mode) {
    case NsMode::kHost:
      return absl::OkStatus();
    case NsMode::kNew:
      if (::unshare(type) != 0)
        return ErrnoError(errno, "unshare", absl::StrCat(name, " namespace"));
      return absl::OkStatus();
    case NsMode::kJoin: {
      auto opened = OpenJoinedNamespace(ns, name);
      if (!opened.ok()) return opened.status();
      UniqueFd fd = std::move(*opened);
      if (::setns(fd.get(), type) != 0) {
        return ErrnoError(errno, absl::StrCat("setns ", name, " namespace"), ns.path);
      }
      return absl::OkStatus();
    }
  }
  return absl::InternalError("unknown namespace mode");
}

absl::Status SetOomScoreAdj(int value) {
  const char* path = "/proc/self/oom_score_adj";
  UniqueFd fd(::open(path, O_WRONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoError(errno, "open", path);
  std::string text = absl::StrCat(value);
  if (::write(fd.get(), text.data(), text.size()) < 0) {
    // Lowering the score needs CAP_SYS_RESOURCE: keep the current value.
    if (errno == EACCES || errno == EPERM || errno == EIO) return absl::OkStatus();
    return ErrnoError(errno, "write", path);
  }
  return absl::OkStatus();
}

absl::Status MountOverlay(const RootfsSpec& rootfs) {
  long page = ::sysconf(_SC_PAGESIZE);  // NOLINT(google-runtime-int)
  auto opts = PlanOverlay(rootfs, page > 0 ? static_cast<size_t>(page) : 4096);
  if (!opts.ok()) return opts.status();
  if (!opts->chdir.empty() && ::chdir(opts->chdir.c_str()) != 0) {
    return ErrnoError(errno, "chdir", opts->chdir);
  }
  int rc = ::mount("overlay", rootfs.target.c_str(), "overlay", 0, opts->data.c_str());
  int err = errno;
  if (!opts->chdir.empty() && ::chdir("/") != 0) return ErrnoError(errno, "chdir", "/");
  if (rc != 0) return ErrnoError(err, "mount overlay on", rootfs.target);
  return absl::OkStatus();
}

// The mount point of the mount that holds `path` (the longest mount point
// in /proc/self/mountinfo that is `path` or one of its parents).
absl::StatusOr<std::string> MountPointOf(const std::string& path) {
  auto text = ReadFile("/proc/self/mountinfo");
  if (!text.ok()) return text.status();
  std::string best = "/";
  for (absl::string_view line : absl::StrSplit(*text, '\n')) {
    std::vector<absl::string_view> fields = absl::StrSplit(line, ' ');
    if (fields.size() < 5) continue;
    std::string mp;  // undo mountinfo's octal escapes (\040 for a space)
    for (size_t i = 0; i < fields[4].size(); ++i) {
      if (fields[4][i] == '\\' && i + 3 < fields[4].size()) {
        mp.push_back(
            static_cast<char>(std::stoi(std::string(fields[4].substr(i + 1, 3)), nullptr, 8)));
        i += 3;
      } else {
        mp.push_back(fields[4][i]);
      }
    }
    const bool under =
        path == mp || (absl::StartsWith(path, mp) && (mp == "/" || path[mp.size()] == '/'));
    if (under && mp.size() > best.size()) best = mp;
  }
  return best;
}

absl::Status PivotInto(int root_fd, const std::string& target) {
  UniqueFd old_root(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!old_root.valid()) return ErrnoError(errno, "open", "old root");
  if (::fchdir(root_fd) != 0) return ErrnoError(errno, "chdir", target);
  // Stack the old root under the new one and detach it: no put_old dir needed.
  if (::syscall(SYS_pivot_root, ".", ".") != 0) return ErrnoError(errno, "pivot_root", target);
  // The old root now sits on top of the new one. mount(2) would resolve "."
  // to the new root below it, so step into the old root through its fd; then
  // make its tree slave so that detaching it cannot unmount anything in the
  // host's peer groups.
  if (::fchdir(old_root.get()) != 0) return ErrnoError(errno, "chdir", "old root");
  if (::mount(nullptr, ".", nullptr, MS_REC | MS_SLAVE, nullptr) != 0) {
    return ErrnoError(errno, "make rslave", "old root");
  }
  if (::umount2(".", MNT_DETACH) != 0) return ErrnoError(errno, "detach old root of", target);
  if (::chdir("/") != 0) return ErrnoError(errno, "chdir", "/");
  return absl::OkStatus();
}

// Everything the init does; returns only on failure.
absl::Status InitContainer(const LaunchSpec& spec, const ChildFds& fds) {
  ResetSignals();
  // A monitor killed while the init is still setting up takes the init along.
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) {
    return ErrnoError(errno, "prctl PR_SET_PDEATHSIG", "self");
  }
  if (fds.go_fd < 0) return absl::InternalError("container init: no go pipe from the monitor");
  if (fds.controlling_tty) {
    // The container's terminal (ContainerConfig.tty): a session of its own
    // with it as the controlling terminal, as runc and crun set it up.
    if (::setsid() < 0) return ErrnoError(errno, "setsid", "container init");
    if (::ioctl(fds.stdin_fd, TIOCSCTTY, 0) != 0) {
      return ErrnoError(errno, "make the controlling terminal of", "container init");
    }
  }
  if (auto s = JoinNamespace(spec.net, CLONE_NEWNET, "net"); !s.ok()) return s;
  if (auto s = JoinNamespace(spec.ipc, CLONE_NEWIPC, "ipc"); !s.ok()) return s;
  if (auto s = JoinNamespace(spec.uts, CLONE_NEWUTS, "uts"); !s.ok()) return s;
  // A cgroup namespace is rooted at the cgroup its process is in when it is
  // made: it waits for the move into the container's cgroups (go_fd). The
  // one to join is opened now, while the host's /proc is still there.
  UniqueFd cgroup_ns;
  if (spec.cgroup.mode == NsMode::kJoin) {
    cgroup_ns = UniqueFd(::open(spec.cgroup.path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!cgroup_ns.valid()) return ErrnoError(errno, "open cgroup namespace", spec.cgroup.path);
  }
  if (spec.uts.mode == NsMode::kNew && !spec.hostname.empty() &&
      ::sethostname(spec.hostname.data(), spec.hostname.size()) != 0) {
    return ErrnoError(errno, "sethostname", spec.hostname);
  }
  if (spec.process.oom_score_adj.has_value()) {
    if (auto s = SetOomScoreAdj(*spec.process.oom_score_adj); !s.ok()) return s;
  }

  if (::unshare(CLONE_NEWNS) != 0) return ErrnoError(errno, "unshare", "mount namespace");
  const bool bidirectional =
      std::any_of(spec.mounts.begin(), spec.mounts.end(),
                  [](const MountSpec& m) { return m.propagation == Propagation::kRshared; });
  if (!bidirectional) {
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) != 0) {
      return ErrnoError(errno, "make rslave", "/");
    }
  } else {
    // A bidirectional volume must stay in its host mount's peer group, so
    // the copied mounts keep their propagation; only the root mount and the
    // mount holding the rootfs become private, so that the container's own
    // mounts (the overlay, /proc, ...) never reach the host.
    if (::mount(nullptr, "/", nullptr, MS_PRIVATE, nullptr) != 0) {
      return ErrnoError(errno, "make private", "/");
    }
    auto parent = MountPointOf(spec.rootfs.target);
    if (!parent.ok()) return parent.status();
    if (::mount(nullptr, parent->c_str(), nullptr, MS_PRIVATE, nullptr) != 0) {
      return ErrnoError(errno, "make private", *parent);
    }
  }
  auto plan = PlanMounts(spec);
  if (!plan.ok()) return plan.status();
  if (auto s = MountOverlay(spec.rootfs); !s.ok()) return s;
  UniqueFd root(::open(spec.rootfs.target.c_str(), O_DIRECTORY | O_RDONLY | O_CLOEXEC));
  if (!root.valid()) return ErrnoError(errno, "open rootfs", spec.rootfs.target);
  for (const MountStep& step : *plan) {
    if (auto s = ExecuteMountStep(root.get(), step); !s.ok()) return s;
  }
  if (auto s = PivotInto(root.get(), spec.rootfs.target); !s.ok()) return s;
  root.Reset();
  const std::string cwd = spec.process.cwd.empty() ? "/" : spec.process.cwd;
  if (::chdir(cwd.c_str()) != 0) return ErrnoError(errno, "chdir", cwd);

  UniqueFd new_root(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!new_root.valid()) return ErrnoError(errno, "open", "/");
  auto user = ResolveUser(new_root.get(), spec.process.user);
  if (!user.ok()) return user.status();
  new_root.Reset();
  char go = 0;
  ssize_t n;
  do {
    n = ::read(fds.go_fd, &go, 1);
  } while (n < 0 && errno == EINTR);
  if (n != 1) {
    return absl::InternalError("the monitor did not move the container into its cgroups");
  }
  ::close(fds.go_fd);
  if (spec.cgroup.mode == NsMode::kNew && ::unshare(CLONE_NEWCGROUP) != 0) {
    return ErrnoError(errno, "unshare", "cgroup namespace");
  }
  if (cgroup_ns.valid() && ::setns(cgroup_ns.get(), CLONE_NEWCGROUP) != 0) {
    return ErrnoError(errno, "setns cgroup namespace", spec.cgroup.path);
  }
  cgroup_ns.Reset();
  if (auto s = WriteSync(fds.sync_fd, SyncUserLine(*user)); !s.ok()) return s;
  return SecureAndExec(spec.process, *user, spec.process.args, spec.process.env, fds,
                       /*die_with_parent=*/false);
}

}  // namespace

absl::Status MoveIntoCgroups(int pid, const std::vector<std::string>& procs_files) {
  const std::string text = absl::StrCat(pid);
  for (const std::string& procs : procs_files) {
    if (auto s = WriteToFile(procs, text, "join cgroup"); !s.ok()) return s;
  }
  return absl::OkStatus();
}

void RunContainerInit(const LaunchSpec& spec, const ChildFds& fds) {
  absl::Status s = InitContainer(spec, fds);
  FailChild(fds.sync_fd, s);
}

void RunExecChild(const LaunchSpec& spec, const ResolvedUser& user,
                  const std::vector<std::string>& argv, const ChildFds& fds) {
  ResetSignals();
  if (fds.controlling_tty) {
    if (::setsid() < 0) FailChild(fds.sync_fd, ErrnoError(errno, "setsid", "exec"));
    if (::ioctl(fds.stdin_fd, TIOCSCTTY, 0) != 0) {
      FailChild(fds.sync_fd, ErrnoError(errno, "make the controlling terminal of", "exec"));
    }
  }
  const std::string cwd = spec.process.cwd.empty() ? "/" : spec.process.cwd;
  if (::chdir(cwd.c_str()) != 0) FailChild(fds.sync_fd, ErrnoError(errno, "chdir", cwd));
  ResolvedUser u = user;
  if (!HasEnv(spec.process.env, "HOME")) {
    // The home directory is not in started.json: look it up again.
    UniqueFd root(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (root.valid()) {
      auto resolved = ResolveUser(root.get(), spec.process.user);
      if (resolved.ok()) u.home = resolved->home;
    }
  }
  absl::Status s = SecureAndExec(spec.process, u, argv, spec.process.env, fds,
                                 /*die_with_parent=*/true);
  FailChild(fds.sync_fd, s);
}

}  // namespace podshim::runtime
