// Process security for a container's init and for ExecSync: users,
// capabilities, seccomp, rlimits. Resolution functions are pure and unit
// tested; Apply* functions run in the single-threaded helper's child right
// before execve and change the calling process.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "runtime/launch_spec.h"

namespace podshim::runtime {

// --- capabilities ----------------------------------------------------------

// containerd's default set (14 capabilities), sorted names with the CAP_
// prefix.
std::vector<std::string> DefaultCapabilities();
// Every capability the running kernel knows (up to what
// /proc/sys/kernel/cap_last_cap says, probed with PR_CAPBSET_READ), names with
// the CAP_ prefix, in number order.
std::vector<std::string> AllCapabilities();
// The capabilities in this process's bounding set: what it can still give a
// container ("ALL" and privileged resolve to these).
std::vector<std::string> HeldCapabilities();

struct CapabilityRequest {
  bool privileged = false;
  // CRI names may come with or without the CAP_ prefix, any case; "ALL"
  // means every capability.
  std::vector<std::string> add;
  std::vector<std::string> drop;
};
// The final set, in containerd's order: privileged → all; else the defaults,
// ALL in add → all, ALL in drop → empty, then each named add, then each named
// drop (so a name both added and dropped ends up dropped). An unknown name is
// INVALID_ARGUMENT naming it. Sorted by name, with the CAP_ prefix.
absl::StatusOr<std::vector<std::string>> ResolveCapabilities(const CapabilityRequest& req);

// --- users -----------------------------------------------------------------

struct ResolvedUser {
  uint32_t uid = 0;
  uint32_t gid = 0;
  // Supplemental groups for setgroups: the primary gid first (as containerd
  // does), then /etc/group membership, then the requested ones; no duplicates.
  std::vector<uint32_t> groups;
  std::string home = "/";
};
// Resolves `spec` against <rootfs>/etc/passwd and <rootfs>/etc/group, read
// through `rootfs_fd` with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
// (a missing file is an empty database; a file over 4 MiB or not a regular
// file is an error). Order of precedence: uid, username, image_user ("name",
// "uid", "name:group", "uid:gid", "uid:group"); spec.gid, when set, overrides
// the gid whichever way the user was named. A username or group name that is
// not in the files is NOT_FOUND naming it; a numeric uid need not exist (gid
// then defaults to 0 unless passwd has it).
absl::StatusOr<ResolvedUser> ResolveUser(int rootfs_fd, const UserSpec& spec);
// Parsers used by ResolveUser, exposed for tests.
struct PasswdEntry {
  std::string name;
  uint32_t uid = 0, gid = 0;
  std::string home;
};
struct GroupEntry {
  std::string name;
  uint32_t gid = 0;
  std::vector<std::string> members;
};
std::vector<PasswdEntry> ParsePasswd(absl::string_view text);
std::vector<GroupEntry> ParseGroup(absl::string_view text);

// --- seccomp ---------------------------------------------------------------

// An OCI runtime-spec "linux.seccomp" object as JSON, podshim's RuntimeDefault
// (an allow-list in the shape of the upstream default profiles: the listed
// syscalls are allowed, clone without namespace flags, personality for the
// usual domains; clone3 is ENOSYS and everything else EPERM: kernel modules,
// kexec, reboot, swap, clock setting, bpf, perf, keyrings, ptrace, mounts,
// namespaces, ...). Made once, the same text for every container.
const std::string& RuntimeDefaultSeccompJson();
// Validates a profile (Localhost profiles are Docker/OCI JSON: defaultAction,
// defaultErrnoRet, architectures, flags, syscalls[{names|name, action,
// errnoRet, args[{index, value, valueTwo, op}]}]; archMap and comments are
// ignored); INVALID_ARGUMENT naming what is wrong: an unknown action, op,
// architecture or flag, and Docker's conditional rules (non-empty
// includes/excludes), which are not supported. Returns the normalised OCI
// JSON (every rule with "names"; errnoRet explicit for ERRNO and TRACE).
absl::StatusOr<std::string> ParseSeccompProfile(absl::string_view json);
// Loads the profile into the calling process with libseccomp (single-threaded
// callers only). Syscall names libseccomp does not know on this architecture
// are skipped, and so are rules whose action is the default. It does not set
// no_new_privs itself: loading without no_new_privs needs CAP_SYS_ADMIN, so
// then call it before ApplyUserAndCapabilities (runc's order), else after.
absl::Status ApplySeccomp(absl::string_view oci_json);

// --- applying --------------------------------------------------------------

// setgroups, setresgid, setresuid keeping `capabilities` (bounding set
// dropped to them, effective = permitted = them, inheritable and ambient
// empty), then no_new_privs when asked. Call after mounts and pivot_root,
// before execve. An unknown capability name is INVALID_ARGUMENT and nothing
// is changed. (After execve a non-root user keeps no capabilities, as with
// runc: ambient stays empty.)
absl::Status ApplyUserAndCapabilities(const ResolvedUser& user,
                                      const std::vector<std::string>& capabilities,
                                      bool no_new_privs);
// setrlimit for each (call before dropping CAP_SYS_RESOURCE); an unknown name
// is INVALID_ARGUMENT and nothing is changed.
absl::Status ApplyRlimits(const std::vector<Rlimit>& rlimits);
absl::StatusOr<int> RlimitResource(absl::string_view name);  // "RLIMIT_NOFILE" → RLIMIT_NOFILE

// --- what the node can enforce, and device nodes ---------------------------

// Whether the kernel has AppArmor turned on: `path` (the module parameter
// /sys/module/apparmor/parameters/enabled) exists and starts with 'Y'. podshim
// loads and applies no AppArmor profile either way; this only says why a
// profile is refused.
bool AppArmorEnabled(const std::string& path = "/sys/module/apparmor/parameters/enabled");

// What a CRI Device's host_path is, following symlinks (stat(2)).
struct DeviceNode {
  char type = 0;  // 'c' or 'b' for a character or block device, 0 for anything else
  int64_t major = 0;
  int64_t minor = 0;
  std::string kind;  // "character device", "block device", "regular file", ...
};
// NOT_FOUND when nothing is at `path` (ENOENT, ENOTDIR), else the errno error.
absl::StatusOr<DeviceNode> StatDevice(const std::string& path);

}  // namespace podshim::runtime
