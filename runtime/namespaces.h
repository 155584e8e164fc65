// A pod's namespaces, created and pinned by the `podshim-pinns` helper.
//
// The agent is multi-threaded and cannot unshare namespaces for a pod
// itself, so it runs podshim-pinns (single-threaded) which unshares the
// network, IPC, UTS and optionally PID namespaces, sets the hostname and the
// pod's sysctls inside them, brings `lo` up, and bind-mounts each namespace
// file onto an empty file in the pod's directory. The bind mounts keep the
// namespaces alive after pinns exits; containers join them with setns(2).
//
// With a PID namespace pinns also leaves the pod infra process behind: PID 1
// of the new PID namespace (comm "podshim-infra"), which reaps orphans and
// exits on SIGTERM. It is reparented to init (or the nearest subreaper) when
// pinns exits; whoever tears the pod down kills it.
//
// podshim-pinns --dir D [--net] [--ipc] [--uts] [--pid] [--hostname H]
//               [--sysctl k=v]... [--cgroup-procs FILE]...
// prints one JSON line: {"net":"D/net",...,"infra_pid":N} on success, or
// {"error":"<action `object`: ERRNO (text)>","errno":N} with exit code 1,
// after undoing everything it did.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "runtime/unique_fd.h"

namespace podshim::runtime {

struct PinRequest {
  // Absolute; created with mode 0700 when missing. The pins are the files
  // dir/net, dir/ipc, dir/uts and dir/pid, which must not exist yet.
  std::string dir;
  bool net = false, ipc = false, uts = false, pid = false;
  std::string hostname;  // needs uts
  // Namespaced sysctls (see ValidateSysctls), e.g. {"net.ipv4.ip_forward", "1"}.
  std::vector<std::pair<std::string, std::string>> sysctls;
  // cgroup.procs files the infra process joins (needs pid).
  std::vector<std::string> infra_cgroup_procs;
};

struct PinnedNamespaces {
  std::string net, ipc, uts, pid;  // pinned file paths; "" when not requested
  int infra_pid = 0;               // with pid: the infra process, seen from here
};

// Runs `pinns_binary` for `request` (10 s timeout). The sysctls are checked
// with ValidateSysctls against the namespaces requested (a net.* sysctl
// needs net, an IPC one needs ipc). On failure nothing is left behind: pins
// are removed and the dir is removed if this call created it.
absl::StatusOr<PinnedNamespaces> PinNamespaces(const std::string& pinns_binary,
                                               const PinRequest& request);

// Unmounts (MNT_DETACH) and unlinks dir/net, dir/ipc, dir/uts and dir/pid,
// then removes dir. Idempotent: missing files and a missing dir are fine.
// It does not kill the infra process.
absl::Status UnpinNamespaces(const std::string& dir);

// Ends a pod's infra process: checks that `infra_pid` still is PID 1 of the
// PID namespace pinned at `pid_pin` (FAILED_PRECONDITION otherwise, and
// nothing is signalled: the pid may have been reused, e.g. across an agent
// restart), sends SIGTERM, SIGKILL after `grace`, waits for the exit and
// reaps it when it is the caller's child (a child subreaper's). A process
// already gone is fine. Call it before UnpinNamespaces.
absl::Status StopInfra(int infra_pid, const std::string& pid_pin,
                       absl::Duration grace = absl::Seconds(2));

// Checks pod sysctls with CheckSysctl (runtime/sysctl.h): the namespaced
// allow-list, net.* refused with host_network and the IPC ones with
// host_ipc, well-formed names, values without a newline.
// INVALID_ARGUMENT naming the offending sysctl otherwise.
absl::Status ValidateSysctls(const std::vector<std::pair<std::string, std::string>>& sysctls,
                             bool host_network, bool host_ipc);

// Whether `path` is a namespace file (a pin or /proc/PID/ns/X): statfs says
// NSFS_MAGIC. False for a plain file left after an unmount, or no file.
bool IsNamespacePinned(const std::string& path);

// The inode number of the namespace at `path`, which identifies it (the
// number in "net:[4026531840]").
absl::StatusOr<uint64_t> NamespaceInode(const std::string& path);

// A TCP socket of `family` (AF_INET or AF_INET6; non-blocking,
// close-on-exec, not connected) made in the network namespace pinned at
// `netns_path` (empty: this process's), for
// port forwarding into a pod. A thread of its own enters the namespace, so no
// other thread's namespace changes; the socket stays in the namespace it was
// made in.
absl::StatusOr<UniqueFd> SocketInNetworkNamespace(const std::string& netns_path, int family);

}  // namespace podshim::runtime
