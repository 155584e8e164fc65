// cgroups for pods and containers, cgroupfs driver, v1 (this machine's hybrid
// layout) or v2 (unified), one backend chosen at start. Every backend takes
// its root so unit tests can point it at a temp directory laid out like
// /sys/fs/cgroup.
//
// Paths given to the manager are cgroup paths as the CRI uses them with the
// cgroupfs driver ("/kubepods/burstable/pod123/abc"), always absolute and
// relative to the hierarchy root; ".." and "." components and the root
// itself are refused (INVALID_ARGUMENT naming the path).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace podshim::runtime {

// Mirrors CRI LinuxContainerResources; an unset field is left alone. The
// CRI's "0 means not set" belongs to the caller's translation: a set field
// is written.
struct CgroupResources {
  std::optional<int64_t> cpu_period;  // us
  std::optional<int64_t> cpu_quota;   // us; <= 0 means unlimited
  std::optional<int64_t> cpu_shares;  // v1 shares; v2 converts to cpu.weight; <= 0 is skipped
  std::optional<int64_t> memory_limit_in_bytes;  // <= 0 means unlimited
  // memory + swap, as the CRI means it; <= 0 means unlimited. Written only
  // where the kernel accounts swap (memory.memsw.* / memory.swap.max). On v2
  // it needs memory_limit_in_bytes in the same request (swap.max = this - that).
  std::optional<int64_t> memory_swap_limit_in_bytes;
  std::optional<int64_t> pids_limit;  // <= 0 means unlimited
  std::string cpuset_cpus;            // empty: left alone
  std::string cpuset_mems;
  // Page size as the kernel names it ("2MB", "1GB") → bytes. Ignored when the
  // hugetlb controller is not available; an unknown size is INVALID_ARGUMENT.
  std::map<std::string, int64_t> hugepage_limits;
  std::map<std::string, std::string> unified;  // v2 file → value (v1: refused unless empty)
  bool operator==(const CgroupResources&) const = default;
};

// A zero means "not available" as much as "zero" (a controller that is not
// mounted or enabled leaves its fields at 0).
struct CgroupStats {
  uint64_t cpu_usage_ns = 0;  // cumulative core-nanoseconds
  uint64_t memory_usage_bytes = 0;
  uint64_t memory_working_set_bytes = 0;  // usage - inactive_file
  uint64_t memory_rss_bytes = 0;          // anon
  uint64_t page_faults = 0;
  uint64_t major_page_faults = 0;
  uint64_t pids_current = 0;
  uint64_t oom_kills = 0;
};

// One rule of the devices controller: type 'c' (char), 'b' (block) or 'a'
// (all); major and minor, -1 for any; access, a subset of "rwm".
struct DeviceRule {
  char type = 'a';
  int64_t major = -1;
  int64_t minor = -1;
  std::string access = "rwm";
  bool operator==(const DeviceRule&) const = default;
};

// The rule as the v1 devices files take it: "c 1:3 rwm", "b *:* m".
std::string DeviceRuleText(const DeviceRule& rule);

// What a container that is not privileged may use, runc's default list:
// mknod of any node (opening one still needs its own rule), and read, write
// and mknod of /dev/null, zero, full, random, urandom, tty, console, ptmx,
// the pts and net/tun.
std::vector<DeviceRule> DefaultDeviceRules();

class CgroupManager {
 public:
  virtual ~CgroupManager() = default;
  virtual int Version() const = 0;  // 1 or 2

  // mkdir -p of `path` in every hierarchy (v1: cpu, cpuacct, cpuset, memory,
  // pids, hugetlb, blkio, devices, freezer — those mounted; cpuset.cpus and
  // cpuset.mems are copied down from the parent into every level where they
  // are empty, so tasks can join). v2: the controllers podshim uses (cpu,
  // cpuset, memory, pids, hugetlb, io) that each ancestor offers are enabled in
  // its cgroup.subtree_control, from the root down. Idempotent.
  virtual absl::Status Create(absl::string_view path) = 0;
  // Writes the set fields; INVALID_ARGUMENT naming the field for values the
  // kernel cannot take (e.g. unified keys on v1, an unknown hugepage size),
  // checked before anything is written. v1 skips the fields of controllers
  // that are not mounted; on v2 a missing controller file is NOT_FOUND naming
  // it (hugetlb aside, skipped when the cgroup does not offer it). Errors
  // from the kernel name the file and the value.
  virtual absl::Status Apply(absl::string_view path, const CgroupResources& res) = 0;
  // Denies every device to the cgroup's processes but the `allow` rules. v1:
  // "a" to devices.deny, then each rule to devices.allow; skipped when the
  // devices hierarchy is not mounted. v2 has no such files (the kernel wants
  // an eBPF program there): nothing is written, and it returns OK, so on v2
  // devices are not restricted yet (docs/pods.md).
  virtual absl::Status RestrictDevices(absl::string_view path,
                                       const std::vector<DeviceRule>& allow) = 0;
  // The cgroup.procs files a process writes "0" into to join `path`.
  virtual std::vector<std::string> ProcsFiles(absl::string_view path) const = 0;
  // The file the OOM-kill counter ("oom_kill N") is read from after an exit;
  // empty when there is no memory controller (v1 without a memory mount).
  virtual std::string OomCounterFile(absl::string_view path) const = 0;
  // NOT_FOUND when the cgroup does not exist.
  virtual absl::StatusOr<CgroupStats> Stats(absl::string_view path) const = 0;
  // Pids of processes in the cgroup itself, not its children (v1: read from
  // the pids hierarchy, else memory, else any).
  virtual absl::StatusOr<std::vector<int>> Pids(absl::string_view path) const = 0;
  // Kills what is left in the cgroup and its children (SIGKILL, retried until
  // empty), then rmdir in every hierarchy, deepest first, retrying EBUSY;
  // about 2 s in all. A missing cgroup is OK (idempotent). Refuses to kill
  // the calling process (FAILED_PRECONDITION).
  virtual absl::Status Remove(absl::string_view path) = 0;
  // Whether the cgroup exists in any hierarchy (for leak checks).
  virtual bool Exists(absl::string_view path) const = 0;
};

// Chooses the backend for `root` (normally /sys/fs/cgroup): v2 when root is a
// cgroup2 mount (statfs magic) or, for tests, when `force_version` says so.
// v1 takes the hierarchies mounted under `root` from /proc/self/mountinfo;
// with force_version == 1 and no such mount (a fake tree), the directories
// of `root` named after controllers ("cpu,cpuacct", "memory") are used.
absl::StatusOr<std::unique_ptr<CgroupManager>> OpenCgroups(
    const std::string& root = "/sys/fs/cgroup", int force_version = 0);

// v1 hierarchies: controller name ("cpu", "memory") → directory where that
// hierarchy is mounted. Co-mounted controllers share a directory.
using CgroupV1Hierarchies = std::map<std::string, std::string>;

// The backends built directly, for tests and for callers that know the layout.
std::unique_ptr<CgroupManager> NewCgroupV1Manager(CgroupV1Hierarchies hierarchies);
std::unique_ptr<CgroupManager> NewCgroupV2Manager(const std::string& root);

// The v1 hierarchies a /proc/self/mountinfo text shows mounted below `root`
// (fs type "cgroup"; controllers from the super options, "rw,cpu,cpuacct").
CgroupV1Hierarchies ParseCgroupV1Mounts(absl::string_view mountinfo, absl::string_view root);

// --- favordynmods -------------------------------------------------------------
//
// Moving a process into a cgroup takes the kernel's global cgroup threadgroup
// lock for writing, and by default that waits for an RCU grace period: 6-18 ms
// on this machine for the first cgroup.procs write of a container, on v1 and
// v2 alike. Linux 6.0+ has a cgroup mount option, favordynmods, that keeps the
// lock in its slow-reader mode instead: migrations stop waiting, forks and
// exits get a little dearer. The flag is host-wide (the lock is global); it is
// set through the cgroup2 root, which exists on every kernel that has the
// option, mounted or not.

// What EnableFavorDynmods would do, decided from /proc/self/mountinfo text.
struct FavorDynmodsPlan {
  // Some cgroup or cgroup2 mount already shows favordynmods (set by an earlier
  // run, by the kernel's cgroup_favordynmods= boot option or its build
  // default): nothing to do.
  bool already_on = false;
  // The first cgroup2 mount, to be remounted with its own options plus
  // favordynmods (a remount replaces all of the cgroup2 root's options, so
  // nsdelegate, memory_recursiveprot and the like are passed again). Empty
  // when cgroup2 is mounted nowhere: it is then mounted once on a private
  // directory with the option and unmounted again; the root keeps the flag.
  std::string target;
  unsigned long mount_flags = 0;  // the mount's own flags (MS_NOSUID, ...) // NOLINT(runtime/int)
  std::string data;               // super options for mount(2), favordynmods included
};
FavorDynmodsPlan PlanFavorDynmods(absl::string_view mountinfo);

// Turns favordynmods on as planned; `scratch_dir` is where a private cgroup2
// mount goes when there is none (created and removed here). Returns what it
// did, for the log. Kernels before 6.0 refuse the option: FAILED_PRECONDITION
// naming the kernel's error; nothing is changed then.
absl::StatusOr<std::string> EnableFavorDynmods(const std::string& scratch_dir);

// Helpers shared by both backends, exposed for tests.
// "/a//b/" → "/a/b"; INVALID_ARGUMENT naming the path when it is relative,
// has a "." or ".." component or a NUL, or names the root.
absl::StatusOr<std::string> NormalizeCgroupPath(absl::string_view path);
// cpu.weight from v1 shares as the kernel/runc convert: 1 + ((shares-2)*9999)/262142,
// shares clamped to [2, 262144]; 0 stays 0 ("not set").
uint64_t SharesToWeight(uint64_t shares);
// Parses "oom_kill N" out of a memory.oom_control / memory.events text (0 if absent).
uint64_t ParseOomKillCount(absl::string_view text);

}  // namespace podshim::runtime
