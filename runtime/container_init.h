// The child side of podshim-monitor: what the container's init does between
// fork() and execve() (namespaces, the mount plan, pivot_root, user,
// capabilities, seccomp), and the same final steps for ExecSync.
//
// The mount plan is a pure function of the LaunchSpec so it can be tested
// without the kernel; ExecuteMountStep carries one step out with every path
// resolved inside the rootfs (openat2 RESOLVE_IN_ROOT) and the mount made
// through /proc/self/fd/N of the verified target.
//
// Everything here runs in the single-threaded monitor or its child.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "runtime/launch_spec.h"
#include "runtime/security.h"
#include "runtime/unique_fd.h"

namespace podshim::runtime {

// --- the mount plan ---------------------------------------------------------

enum class MountKind {
  // mount(source, target, fstype, flags, data): a new filesystem (proc,
  // sysfs, tmpfs, devpts, mqueue); the target is created as a directory.
  kFilesystem,
  // Bind the host path `source` at `target` (MS_BIND, plus MS_REC for rbind);
  // a missing target is created as a directory when the source is one, else
  // as an empty file.
  kBind,
  // Remount `target` read-only, keeping its other flags; MS_REC in flags
  // applies it to every mount below too. Target "/" is the rootfs itself.
  kReadonly,
  // mount(NULL, target, NULL, flags): flags is MS_PRIVATE, MS_SLAVE or
  // MS_SHARED, with MS_REC.
  kPropagation,
  // A symlink at `target` whose content is `source`.
  kSymlink,
  // Hide `target`: /dev/null over a file, a read-only tmpfs over a
  // directory. A missing target is skipped.
  kMask,
  // Bind `target` onto itself read-only. A missing target is skipped.
  kReadonlyPath,
  // Create the directory `target` (and missing parents), mode 0755.
  kMkdir,
  // The device node `target`, made with mknod like the host's `source`
  // (type, numbers, mode; owner root), which costs a fraction of a bind
  // mount. Where mknod is refused (EPERM, EACCES: a user namespace, a
  // devices cgroup) the host's node is bind-mounted instead, as kBind does.
  kDevice,
};

struct MountStep {
  MountKind kind = MountKind::kFilesystem;
  std::string source;
  std::string target;  // absolute, inside the container
  std::string fstype;
  unsigned long flags = 0;  // NOLINT(google-runtime-int): mount(2)'s type
  std::string data;

  bool operator==(const MountStep&) const = default;
};

// The ordered steps that build the container's filesystem once the overlay
// is mounted: /proc, /sys, /dev and its standard nodes, /dev/pts, /dev/shm,
// /dev/mqueue, the /dev symlinks, spec.mounts, spec.devices, masked and
// read-only paths, the working directory, and the read-only root last.
// INVALID_ARGUMENT when a container path is not absolute.
absl::StatusOr<std::vector<MountStep>> PlanMounts(const LaunchSpec& spec);

// The overlay mount's option string. When it would not fit in one page the
// lower dirs are given relative to their common parent, `chdir` is set to
// that directory, and the mount must be done from there.
struct OverlayOptions {
  std::string data;
  std::string chdir;  // "" = no chdir needed
};
absl::StatusOr<OverlayOptions> PlanOverlay(const RootfsSpec& rootfs, size_t page_size);

// --- carrying the plan out --------------------------------------------------

// openat2(root_fd, path, flags, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS):
// `path` is looked up as if root_fd were "/", symlinks included.
absl::StatusOr<UniqueFd> OpenInRoot(int root_fd, absl::string_view path, int flags,
                                    mode_t mode = 0);
// Creates the directory `path` and its missing parents inside root_fd;
// returns an O_PATH fd of it.
absl::StatusOr<UniqueFd> MkdirAllInRoot(int root_fd, absl::string_view path, mode_t mode = 0755);
// "/proc/self/fd/N", the name through which a verified fd is mounted on.
std::string ProcFdPath(int fd);

// Runs one step against the mounted rootfs (`root_fd` a directory fd of it).
absl::Status ExecuteMountStep(int root_fd, const MountStep& step);

// --- the sync pipe ----------------------------------------------------------

// The child tells the monitor the ids it will run as ("user UID GID G1,G2\n"),
// or what failed ("error MESSAGE\n", then _exit(127)). The pipe is CLOEXEC:
// EOF after the user line means execve succeeded.
std::string SyncUserLine(const ResolvedUser& user);
std::string SyncErrorLine(const absl::Status& status);

struct SyncResult {
  bool ok = false;
  std::string error;  // when !ok
  ResolvedUser user;  // when ok (home is not carried)
};
// Interprets everything read from the sync pipe up to EOF.
SyncResult ParseSyncMessages(absl::string_view text);

// --- the child --------------------------------------------------------------

// The descriptors the child dup2s onto 0, 1, 2, and the CLOEXEC sync pipe.
struct ChildFds {
  int stdin_fd = -1;
  int stdout_fd = -1;
  int stderr_fd = -1;
  int sync_fd = -1;
  // The read end of a CLOEXEC pipe on which the container init waits, once
  // its mounts are made and before it enters its cgroup namespace and execs,
  // for one byte from the monitor: the monitor has moved it into
  // spec.cgroup_procs meanwhile, in parallel with the init's own work. End of
  // file instead means the monitor failed (it says why itself). Required by
  // RunContainerInit, unused by RunExecChild.
  int go_fd = -1;
  // stdin_fd is a terminal; the child starts a session and makes it its
  // controlling terminal (a container with tty, an interactive exec).
  bool controlling_tty = false;
};

// Moves process `pid` into each cgroup.procs file (the monitor's half of
// ChildFds::go_fd).
absl::Status MoveIntoCgroups(int pid, const std::vector<std::string>& procs_files);

// The namespace file of a kJoin `ns` (`name`: "pid", "net", ... for errors),
// opened; with an owner (NamespaceSpec::owner_pid), only while its pid still
// names that process (the pidfd first, the start time after) and it is still
// alive once the file is open: FAILED_PRECONDITION otherwise.
absl::StatusOr<UniqueFd> OpenJoinedNamespace(const NamespaceSpec& ns, absl::string_view name);

// The container's init. Never returns: execs the workload or reports the
// error on the sync pipe and _exit(127)s.
[[noreturn]] void RunContainerInit(const LaunchSpec& spec, const ChildFds& fds);

// An ExecSync command in an already joined container (namespaces, cgroups):
// chdir, rlimits, seccomp, user, capabilities, then execve. Never returns.
[[noreturn]] void RunExecChild(const LaunchSpec& spec, const ResolvedUser& user,
                               const std::vector<std::string>& argv, const ChildFds& fds);

// The PATH from `env` ("K=V"), or the default one when it is missing.
std::string PathFromEnv(const std::vector<std::string>& env);
// The file names execve tries for `name`: itself when it contains a '/',
// else each PATH entry joined with it.
std::vector<std::string> ExecCandidates(absl::string_view name, absl::string_view path);

}  // namespace podshim::runtime
