#include "runtime/namespaces.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "runtime/files.h"
#include "runtime/spawn.h"
#include "runtime/sysctl.h"
#include "runtime/unique_fd.h"

namespace podshim::runtime {
namespace {

constexpr const char* kKinds[] = {"net", "ipc", "uts", "pid"};
constexpr absl::Duration kPinnsTimeout = absl::Seconds(10);
constexpr size_t kPinnsOutputLimit = size_t{64} * 1024;

bool Requested(const PinRequest& r, absl::string_view kind) {
  if (kind == "net") return r.net;
  if (kind == "ipc") return r.ipc;
  if (kind == "uts") return r.uts;
  return r.pid;
}

std::string& Field(PinnedNamespaces& p, absl::string_view kind) {
  if (kind == "net") return p.net;
  if (kind == "ipc") return p.ipc;
  if (kind == "uts") return p.uts;
  return p.pid;
}

// Unmounts every mount stacked on `path` and unlinks it; a missing file is
// fine.
absl::Status RemovePin(const std::string& path) {
  absl::Status status;
  for (int i = 0; i < 64; ++i) {
    if (::umount2(path.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) == 0) continue;
    if (errno != EINVAL && errno != ENOENT) status = ErrnoError(errno, "unmount", path);
    break;
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT && status.ok()) {
    status = ErrnoError(errno, "unlink", path);
  }
  return status;
}

}  // namespace

absl::Status ValidateSysctls(const std::vector<std::pair<std::string, std::string>>& sysctls,
                             bool host_network, bool host_ipc) {
  for (const auto& [name, value] : sysctls) {
    if (std::string why = CheckSysctl(name, value, !host_network, !host_ipc); !why.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("sysctl `", name, "`: ", why));
    }
  }
  return absl::OkStatus();
}

absl::Status UnpinNamespaces(const std::string& dir) {
  absl::Status status;
  for (const char* kind : kKinds) {
    absl::Status s = RemovePin(absl::StrCat(dir, "/", kind));
    if (status.ok()) status = s;
  }
  if (::rmdir(dir.c_str()) != 0 && errno != ENOENT && status.ok()) {
    status = ErrnoError(errno, "remove directory", dir);
  }
  return status;
}

absl::StatusOr<PinnedNamespaces> PinNamespaces(const std::string& pinns_binary,
                                               const PinRequest& request) {
  const std::string& dir = request.dir;
  auto invalid = [&dir](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("pin namespaces in `", dir, "`: ", why));
  };
  if (dir.empty() || dir[0] != '/') return invalid("the directory must be an absolute path");
  if (!request.net && !request.ipc && !request.uts && !request.pid) {
    return invalid("no namespace requested");
  }
  if (!request.hostname.empty() && !request.uts) return invalid("a hostname needs a UTS namespace");
  if (!request.infra_cgroup_procs.empty() && !request.pid) {
    return invalid("cgroups for the infra process need a PID namespace");
  }
  if (auto s = ValidateSysctls(request.sysctls, !request.net, !request.ipc); !s.ok()) return s;

  bool created = false;
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) {
    if (errno != ENOENT) return ErrnoError(errno, "stat", dir);
    if (auto s = MakeDirs(dir, 0700); !s.ok()) return s;
    created = true;
  } else if (!S_ISDIR(st.st_mode)) {
    return ErrnoError(ENOTDIR, "pin namespaces in", dir);
  } else {
    for (const char* kind : kKinds) {
      if (!Requested(request, kind)) continue;
      std::string path = absl::StrCat(dir, "/", kind);
      if (::lstat(path.c_str(), &st) == 0) return ErrnoError(EEXIST, "pin namespace", path);
    }
  }

  SpawnOptions options;
  options.argv = {pinns_binary, "--dir", dir};
  for (const char* kind : kKinds) {
    if (Requested(request, kind)) options.argv.push_back(absl::StrCat("--", kind));
  }
  if (!request.hostname.empty()) {
    options.argv.insert(options.argv.end(), {"--hostname", request.hostname});
  }
  for (const auto& [key, value] : request.sysctls) {
    options.argv.insert(options.argv.end(), {"--sysctl", absl::StrCat(key, "=", value)});
  }
  for (const auto& file : request.infra_cgroup_procs) {
    options.argv.insert(options.argv.end(), {"--cgroup-procs", file});
  }
  options.timeout = kPinnsTimeout;
  options.output_limit = kPinnsOutputLimit;

  // Removes what pinns may have left (it undoes its own work, but not when
  // it is killed) and the directory if we made it.
  auto fail = [&](absl::Status status, int infra_pid = 0) {
    if (infra_pid > 0) ::kill(infra_pid, SIGKILL);
    for (const char* kind : kKinds) {
      if (Requested(request, kind)) (void)RemovePin(absl::StrCat(dir, "/", kind));
    }
    if (created) ::rmdir(dir.c_str());
    return status;
  };

  auto run = RunProcess(options);
  if (!run.ok()) return fail(run.status());
  const std::string context = absl::StrCat("pin namespaces in `", dir, "`: ");
  if (run->timed_out) {
    return fail(absl::DeadlineExceededError(absl::StrCat(
        context, "`", pinns_binary, "` timed out after ", absl::FormatDuration(kPinnsTimeout))));
  }
  std::string line = run->out.substr(0, run->out.find('\n'));
  nlohmann::json reply = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!reply.is_object()) {
    std::string how = run->term_signal != 0 ? absl::StrCat("killed by signal ", run->term_signal)
                                            : absl::StrCat("exit code ", run->exit_code);
    return fail(absl::InternalError(absl::StrCat(context, "`", pinns_binary, "` ", how,
                                                 ", unexpected output: ", line,
                                                 run->err.empty() ? "" : "; stderr: ", run->err)));
  }
  if (run->exit_code != 0 || reply.contains("error")) {
    const auto error_it = reply.find("error");
    std::string what = error_it != reply.end() && error_it->is_string()
                           ? error_it->get<std::string>()
                           : absl::StrCat("`", pinns_binary, "` failed: ", line);
    const auto errno_it = reply.find("errno");
    int err = errno_it != reply.end() && errno_it->is_number_integer() ? errno_it->get<int>() : 0;
    absl::StatusCode code = err > 0 ? absl::ErrnoToStatusCode(err) : absl::StatusCode::kInternal;
    if (code == absl::StatusCode::kOk) code = absl::StatusCode::kInternal;
    return fail(absl::Status(code, absl::StrCat(context, what)));
  }

  PinnedNamespaces pinned;
  if (request.pid) {
    const auto it = reply.find("infra_pid");
    if (it != reply.end() && it->is_number_integer()) pinned.infra_pid = it->get<int>();
    if (pinned.infra_pid <= 0) {
      return fail(absl::InternalError(absl::StrCat(context, "no infra_pid in reply: ", line)));
    }
  }
  for (const char* kind : kKinds) {
    if (!Requested(request, kind)) continue;
    std::string expected = absl::StrCat(dir, "/", kind);
    const auto it = reply.find(kind);
    if (it == reply.end() || !it->is_string() || it->get<std::string>() != expected) {
      return fail(absl::InternalError(absl::StrCat(context, "no ", kind, " pin in reply: ", line)),
                  pinned.infra_pid);
    }
    Field(pinned, kind) = std::move(expected);
  }
  return pinned;
}

absl::Status StopInfra(int infra_pid, const std::string& pid_pin, absl::Duration grace) {
  if (infra_pid <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("stop infra process: bad pid ", infra_pid));
  }
  const std::string what = absl::StrCat("infra process ", infra_pid);
  auto pidfd = OpenPidfd(infra_pid);
  if (!pidfd.ok()) return absl::IsNotFound(pidfd.status()) ? absl::OkStatus() : pidfd.status();
  auto exited = [&] { return WaitForExit(pidfd->get(), absl::ZeroDuration()).ok(); };
  auto reap = [&] {
    siginfo_t info{};
    ::waitid(P_PIDFD, static_cast<id_t>(pidfd->get()), &info, WEXITED | WNOHANG);
  };
  auto pinned_ns = NamespaceInode(pid_pin);
  if (!pinned_ns.ok()) return pinned_ns.status();

  // Is it still the infra? The pidfd holds on to the process it was opened
  // for; /proc/PID describes that same process as long as it has not exited.
  const std::string proc = absl::StrCat("/proc/", infra_pid);
  auto ns = NamespaceInode(proc + "/ns/pid");
  auto status = ReadFile(proc + "/status");
  bool is_init = false;
  if (status.ok()) {
    for (absl::string_view line : absl::StrSplit(*status, '\n')) {
      if (!absl::ConsumePrefix(&line, "NSpid:")) continue;
      std::vector<absl::string_view> ids = absl::StrSplit(line, '\t', absl::SkipEmpty());
      is_init = !ids.empty() && ids.back() == "1";
    }
  }
  if (exited()) {
    reap();
    return absl::OkStatus();
  }
  if (!ns.ok() || *ns != *pinned_ns || !is_init) {
    return absl::FailedPreconditionError(absl::StrCat(
        "stop ", what, ": it is not PID 1 of the namespace pinned at `", pid_pin, "`"));
  }

  if (auto s = SignalPidfd(pidfd->get(), SIGTERM); !s.ok()) return s;
  if (!WaitForExit(pidfd->get(), grace).ok()) {
    if (auto s = SignalPidfd(pidfd->get(), SIGKILL); !s.ok()) return s;
    if (auto s = WaitForExit(pidfd->get(), kPinnsTimeout); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat("stop ", what, " with SIGKILL: ", s.message()));
    }
  }
  reap();
  return absl::OkStatus();
}

bool IsNamespacePinned(const std::string& path) {
  struct statfs fs {};
  if (::statfs(path.c_str(), &fs) != 0) return false;
  return static_cast<uint64_t>(fs.f_type) == NSFS_MAGIC;
}

absl::StatusOr<uint64_t> NamespaceInode(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return ErrnoError(errno, "stat", path);
  if (!IsNamespacePinned(path)) return ErrnoError(EINVAL, "namespace inode of", path);
  return static_cast<uint64_t>(st.st_ino);
}

absl::StatusOr<UniqueFd> SocketInNetworkNamespace(const std::string& netns_path, int family) {
  if (family != AF_INET && family != AF_INET6) {
    return absl::InvalidArgumentError(
        absl::StrCat("socket family ", family, ": AF_INET or AF_INET6"));
  }
  auto make = [family] {
    return UniqueFd(::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  };
  if (netns_path.empty()) {
    UniqueFd fd = make();
    if (!fd.valid()) return ErrnoError(errno, "make a socket in", "the host's network namespace");
    return fd;
  }
  UniqueFd ns(::open(netns_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!ns.valid()) return ErrnoError(errno, "open the network namespace", netns_path);
  absl::StatusOr<UniqueFd> result = absl::InternalError("not run");
  std::thread([&] {
    if (::setns(ns.get(), CLONE_NEWNET) != 0) {
      result = ErrnoError(errno, "enter the network namespace", netns_path);
      return;
    }
    UniqueFd fd = make();
    if (!fd.valid()) {
      result = ErrnoError(errno, "make a socket in", netns_path);
      return;
    }
    result = std::move(fd);
  }).join();
  return result;
}

}  // namespace podshim::runtime
