// Request validation: pure functions over the CRI protos, no I/O. Each
// refuses bad input with INVALID_ARGUMENT whose message starts with the
// field's path as the request spells it ("config.metadata.name",
// `config.linux.resources.unified["cgroup.procs"]`), and quotes at most
// kMaxQuotedBytes of an offending value. RunPodSandbox, CreateContainer and
// UpdateContainerResources call them before they make or change anything.
// The limits and the reasons for them are in docs/security.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "runtime/security.h"
#include "runtime/v1/api.pb.h"

namespace podshim::agent {

namespace cri = ::runtime::v1;

// Per-field limits (docs/security.md says where each comes from).
inline constexpr size_t kMaxQuotedBytes = 100;            // of a value echoed in an error
inline constexpr size_t kMaxNameBytes = 253;              // metadata name, namespace, uid
inline constexpr size_t kMaxObjectMetaBytes = 256 << 10;  // labels + annotations per object
inline constexpr size_t kMaxEnvEntries = 4096;
inline constexpr size_t kMaxEnvBytes = 1 << 20;   // "KEY=VALUE\0" summed
inline constexpr size_t kMaxArgvBytes = 1 << 20;  // command + args, "arg\0" summed
inline constexpr size_t kMaxPathBytes = 4096;     // PATH_MAX
inline constexpr size_t kMaxImageRefBytes = 4096;
inline constexpr size_t kMaxHostnameBytes = 64;  // the kernel's __NEW_UTS_LEN
inline constexpr size_t kMaxDnsServers = 10;
inline constexpr size_t kMaxDnsServerBytes = 64;
inline constexpr size_t kMaxDnsSearches = 32;      // Kubernetes' MaxDNSSearchPaths
inline constexpr size_t kMaxDnsSearchBytes = 253;  // a DNS name
inline constexpr size_t kMaxDnsOptions = 32;
inline constexpr size_t kMaxDnsOptionBytes = 253;
inline constexpr size_t kMaxSupplementalGroups = 65536;  // the kernel's NGROUPS_MAX
inline constexpr int64_t kMaxUserId = 4294967294;        // (uid_t)-1 means "no id"
inline constexpr int64_t kMinOomScoreAdj = -1000;
inline constexpr int64_t kMaxOomScoreAdj = 1000;
inline constexpr size_t kMaxUnifiedEntries = 128;
inline constexpr size_t kMaxUnifiedKeyBytes = 255;  // NAME_MAX
inline constexpr size_t kMaxUnifiedValueBytes = 4096;
inline constexpr size_t kMaxCpusetBytes = 4096;
inline constexpr size_t kMaxSysctlNameBytes = 256;
inline constexpr size_t kMaxSysctlValueBytes = 4096;  // what one write to /proc/sys takes
inline constexpr size_t kMaxCapabilityBytes = 64;
// Counts of list fields: a kubelet sends a handful of each; these bound what
// one request can make podshim do (bind mounts, device rules, iptables rules,
// /proc/sys writes).
inline constexpr size_t kMaxMounts = 1024;
inline constexpr size_t kMaxDevices = 1024;
inline constexpr size_t kMaxPortMappings = 1024;
inline constexpr size_t kMaxSysctls = 1024;

// The cgroup v2 controllers whose files `unified` may set (runc's rule: the
// part of the key before the first dot names the controller).
inline constexpr absl::string_view kUnifiedControllers[] = {"cpu",  "cpuset",  "memory", "io",
                                                            "pids", "hugetlb", "rdma",   "misc"};

// `value` for an error message: in backquotes, control bytes, backquotes and
// backslashes escaped, cut after kMaxQuotedBytes characters with the total
// size said ("`aaaa...`... (1048576 bytes)").
std::string QuoteForError(absl::string_view value);

// What the node could enforce (runtime::AppArmorEnabled()). podshim applies
// no AppArmor profile either way; this only says why one is refused.
struct HostSecurity {
  bool apparmor_enabled = false;
};

// The whole PodSandboxConfig of a RunPodSandbox.
//
// Fail closed (issue 18, finding 8): what podshim cannot enforce is refused,
// never ignored: AppArmor RuntimeDefault and Localhost (Unconfined and unset
// pass), any SELinux option, a user namespace other than NODE.
absl::Status ValidatePodConfig(const cri::PodSandboxConfig& config, const HostSecurity& host = {});

// The whole ContainerConfig of a CreateContainer. Besides the pod's rules
// above (and the deprecated `apparmor_profile`: "unconfined" passes,
// "runtime/default" and "localhost/..." are refused): idmapped mounts,
// PROPAGATION_BIDIRECTIONAL unless privileged, pid TARGET without target_id.
absl::Status ValidateContainerConfig(const cri::ContainerConfig& config,
                                     const HostSecurity& host = {});

// The checks of a CreateContainer that need its pod: a privileged container
// only in a privileged pod (containerd's rule); pid TARGET only to a
// container of the same pod. `pod_of_container` gives the pod id of a
// container named by id or prefix, or its error (NOT_FOUND when none).
absl::Status ValidateContainerInPod(
    const cri::ContainerConfig& config, const cri::PodSandboxConfig& pod, absl::string_view pod_id,
    const std::function<absl::StatusOr<std::string>(absl::string_view)>& pod_of_container);

// A CRI Device's host node (runtime::StatDevice): a character or block
// device, and never a memory device (/dev/mem, /dev/kmem, /dev/port: char
// 1:1, 1:2, 1:4) for an unprivileged container. `field` is
// "config.devices[i].host_path".
absl::Status ValidateDeviceNode(const runtime::DeviceNode& node, absl::string_view path,
                                bool privileged, absl::string_view field);

// Resources of CreateContainer (field "config.linux.resources") and
// UpdateContainerResources (field "linux"): oom_score_adj in [-1000, 1000],
// cpusets and hugepage sizes bounded, `unified` keys only controller files
// (never cgroup.*), values one bounded line.
absl::Status ValidateContainerResources(const cri::LinuxContainerResources& resources,
                                        absl::string_view field);
// UpdateContainerResources: its resources (field "linux") and its
// annotations, at most kMaxObjectMetaBytes (podshim ignores them).
absl::Status ValidateUpdateRequest(const cri::UpdateContainerResourcesRequest& req);

// A uid or gid: 0 .. 2^32 - 2.
absl::Status ValidateUserId(int64_t id, absl::string_view field);

// An image reference as a request gives it (not parsed here): non-empty,
// at most kMaxImageRefBytes, no control characters.
absl::Status ValidateImageRef(absl::string_view ref, absl::string_view field);

// An absolute, clean path ('/'-started, no "..", no NUL, at most PATH_MAX).
absl::Status ValidateAbsolutePath(absl::string_view path, absl::string_view field);

// "/a//./b/" -> "/a/b": an absolute path (a cgroup, a container path) without
// empty or "." components, for comparisons. ("..", which ValidateAbsolutePath
// refuses, is kept as it is.)
std::string CleanPath(absl::string_view path);

// A pod's cgroup_parent (validated as an absolute path) against the cgroups
// it must never be (issue 18, finding 1), field config.linux.cgroup_parent:
// INVALID_ARGUMENT for the root and for podshim's own parent `own_parent`
// (where it keeps the pods it makes) or any cgroup above or below it.
// Several pods may share a cgroup_parent (critest gives all its pods one):
// podshim then removes it only with the last of them (pods.cc).
absl::Status CheckCgroupParent(absl::string_view parent, absl::string_view own_parent);

// `a` is the path (or cgroup) `b` or lies below it (both cleaned by CleanPath).
bool PathWithin(absl::string_view a, absl::string_view b);
// A relative log path inside the pod's log directory.
absl::Status ValidateRelativePath(absl::string_view path, absl::string_view field);

// UpdateRuntimeConfig's pod CIDR: one or more "address/prefix" (IPv4 or IPv6),
// comma separated. INVALID_ARGUMENT naming the field and the bad part.
absl::Status ValidatePodCidr(absl::string_view cidrs);

}  // namespace podshim::agent
