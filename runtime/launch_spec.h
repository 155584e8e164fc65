// The contract between podshimd and its single-threaded helpers.
//
// podshimd (multi-threaded) never sets up a container itself. For every
// container it writes a LaunchSpec as JSON into the container's bundle
// directory and execs `podshim-monitor start --bundle DIR`; the monitor forks
// the container's init, which joins the pod's namespaces, mounts the rootfs,
// pivots, drops privileges and execs the workload. ExecSync runs
// `podshim-monitor exec` with the same spec and the running container's pid.
//
// Everything here is already decided by the agent (paths resolved on the host,
// capability names, seccomp profile): the helper only carries it out. The one
// thing the agent cannot know is what the image's /etc/passwd says; the helper
// resolves `user` inside the rootfs and reports the ids back.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace podshim::runtime {

// How a container gets a namespace of one type.
enum class NsMode {
  kNew,   // a fresh one for this container
  kJoin,  // setns() into `path` (a pinned namespace file or /proc/PID/ns/X)
  kHost,  // stay in the host's (the monitor's) namespace
};

struct NamespaceSpec {
  NsMode mode = NsMode::kNew;
  std::string path;  // for kJoin
  // For kJoin of another process's namespace (/proc/PID/ns/...): that
  // process and its start time (runtime/pidfd.h). The joiner checks it is
  // still that process, alive while the namespace is opened, so a pid reused
  // since the request was planned never lends its namespace (issue 18,
  // finding 7). 0: a pinned namespace file, nothing to check.
  int owner_pid = 0;
  uint64_t owner_start_time = 0;
};

enum class Propagation { kPrivate, kRslave, kRshared };

struct MountSpec {
  std::string source;       // absolute host path
  std::string destination;  // absolute path inside the container
  bool readonly = false;
  Propagation propagation = Propagation::kPrivate;
  // Recursive bind (rbind) is the default, as in CRI runtimes.
  bool recursive = true;
  // With readonly: the mounts below the destination are made read-only too
  // (CRI recursive_read_only); otherwise only the bind mount itself.
  bool recursive_readonly = false;
};

struct DeviceSpec {
  std::string host_path;       // e.g. /dev/fuse
  std::string container_path;  // e.g. /dev/fuse
  std::string permissions;     // "rwm" subset (cgroup devices)
};

struct RootfsSpec {
  // Overlay lower dirs, top-most layer first (ImageManager::LowerDirs order).
  std::vector<std::string> lower;
  std::string upper;  // per-container, under root_dir/containers/ID
  std::string work;
  std::string target;  // mount point, <bundle>/rootfs
  bool readonly = false;
};

// What the helper resolves against the image's /etc/passwd and /etc/group.
struct UserSpec {
  std::optional<uint32_t> uid;  // run_as_user
  std::optional<uint32_t> gid;  // run_as_group
  std::string username;         // run_as_username
  std::string image_user;       // image config "User": "name", "uid", "name:group", "uid:gid"
  std::vector<uint32_t> supplemental_groups;
};

struct Rlimit {
  std::string type;  // "RLIMIT_NOFILE"
  uint64_t soft = 0;
  uint64_t hard = 0;
};

struct ProcessSpec {
  std::vector<std::string> args;  // args[0] is resolved against PATH in env
  std::vector<std::string> env;   // "K=V"
  std::string cwd = "/";
  UserSpec user;
  // Capability names ("CAP_NET_RAW"). Bounding = effective = permitted = this
  // set; inheritable and ambient stay empty.
  std::vector<std::string> capabilities;
  bool no_new_privs = false;
  // An OCI runtime-spec seccomp object as JSON ("" = unconfined).
  std::string seccomp_json;
  std::vector<Rlimit> rlimits;
  std::optional<int> oom_score_adj;  // clamped to the current value if lower
  std::string apparmor_profile;      // recorded only: not enforced here
  // The CRI's ContainerConfig.tty, stdin and stdin_once: with `terminal` the
  // init's stdio is a terminal the monitor holds the master of; with `stdin`
  // the monitor keeps its stdin open for attach (else it is /dev/null);
  // `stdin_once` closes it once the first attach session that took it ends
  // (not with `terminal`).
  bool terminal = false;
  bool stdin = false;
  bool stdin_once = false;
};

struct LaunchSpec {
  std::string id;
  std::string bundle;  // the directory holding spec.json, pid and exit files
  RootfsSpec rootfs;
  NamespaceSpec net, ipc, uts, pid, cgroup;  // mnt is always new
  std::string hostname;                      // set only when uts is kNew
  std::vector<MountSpec> mounts;
  std::vector<DeviceSpec> devices;
  std::vector<std::string> masked_paths;
  std::vector<std::string> readonly_paths;
  bool privileged = false;  // /sys read-write, host devices
  ProcessSpec process;
  // cgroup.procs files (one per v1 hierarchy, one for v2) the init joins
  // before it execs.
  std::vector<std::string> cgroup_procs;
  // Where the OOM-kill counter is read after exit: memory.oom_control (v1,
  // line "oom_kill N") or memory.events (v2, line "oom_kill N"). May be "".
  std::string oom_counter_file;
  std::string log_path;  // CRI log file ("" = discard output)
};

// JSON round trip (nlohmann inside; errors name the field).
std::string LaunchSpecToJson(const LaunchSpec& spec);
absl::StatusOr<LaunchSpec> LaunchSpecFromJson(absl::string_view json);

// Files the monitor keeps in the bundle.
inline constexpr char kSpecFile[] = "spec.json";
inline constexpr char kMonitorPidFile[] = "monitor.pid";  // monitor's pid
inline constexpr char kExitFile[] = "exit.json";          // written once, atomically
inline constexpr char kStartedFile[] = "started.json";    // the StartReport, once started

// What the monitor writes to its status fd (fd 3) once the workload has
// exec'd (or failed to), as one JSON line, then closes the fd.
struct StartReport {
  bool ok = false;
  std::string error;        // when !ok: what failed, e.g. "exec `nosuch`: ENOENT"
  int pid = 0;              // host pid of the container's init
  uint64_t start_time = 0;  // its ProcessStartTime (runtime/pidfd.h)
  int monitor_pid = 0;
  uint64_t monitor_start_time = 0;  // the monitor's ProcessStartTime (it stays across its exec)
  uint32_t uid = 0, gid = 0;
  std::vector<uint32_t> groups;
};
std::string StartReportToJson(const StartReport& r);
absl::StatusOr<StartReport> StartReportFromJson(absl::string_view json);

// The exit file.
struct ExitStatus {
  int exit_code = 0;  // 128+signal when killed by a signal
  int signal = 0;
  bool oom_killed = false;
  int64_t finished_at_ns = 0;  // wall clock, unix nanoseconds
  std::string reason;          // "Completed", "Error", "OOMKilled"
};
std::string ExitStatusToJson(const ExitStatus& e);
absl::StatusOr<ExitStatus> ExitStatusFromJson(absl::string_view json);

}  // namespace podshim::runtime
