#include "runtime/launch_spec.h"

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"

// std::optional <-> null/value, for the fields that may be unset.
namespace nlohmann {
template <typename T>
struct adl_serializer<std::optional<T>> {
  static void to_json(json& j, const std::optional<T>& v) {
    if (v.has_value()) {
      j = *v;
    } else {
      j = nullptr;
    }
  }
  static void from_json(const json& j, std::optional<T>& v) {
    if (j.is_null()) {
      v.reset();
    } else {
      v = j.get<T>();
    }
  }
};
}  // namespace nlohmann

namespace podshim::runtime {

NLOHMANN_JSON_SERIALIZE_ENUM(NsMode, {{NsMode::kNew, "new"},
                                      {NsMode::kJoin, "join"},
                                      {NsMode::kHost, "host"}})
NLOHMANN_JSON_SERIALIZE_ENUM(Propagation, {{Propagation::kPrivate, "private"},
                                           {Propagation::kRslave, "rslave"},
                                           {Propagation::kRshared, "rshared"}})

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(NamespaceSpec, mode, path, owner_pid,
                                                owner_start_time)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(MountSpec, source, destination, readonly,
                                                propagation, recursive, recursive_readonly)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(DeviceSpec, host_path, container_path, permissions)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(RootfsSpec, lower, upper, work, target, readonly)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(UserSpec, uid, gid, username, image_user,
                                                supplemental_groups)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(Rlimit, type, soft, hard)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ProcessSpec, args, env, cwd, user, capabilities,
                                                no_new_privs, seccomp_json, rlimits, oom_score_adj,
                                                apparmor_profile, terminal, stdin, stdin_once)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(LaunchSpec, id, bundle, rootfs, net, ipc, uts, pid,
                                                cgroup, hostname, mounts, devices, masked_paths,
                                                readonly_paths, privileged, process, cgroup_procs,
                                                oom_counter_file, log_path)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(StartReport, ok, error, pid, start_time,
                                                monitor_pid, monitor_start_time, uid, gid, groups)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ExitStatus, exit_code, signal, oom_killed,
                                                finished_at_ns, reason)

namespace {

template <typename T>
std::string Dump(const T& v) {
  return nlohmann::json(v).dump();
}

// Parses `text` into a T; INVALID_ARGUMENT naming the document and what the
// JSON library found wrong (these files are podshim's own, so a plain
// message is enough).
template <typename T>
absl::StatusOr<T> Load(absl::string_view what, absl::string_view text) {
  nlohmann::json j = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": not a JSON object"));
  }
  try {
    return j.get<T>();
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": ", e.what()));
  }
}

}  // namespace

std::string LaunchSpecToJson(const LaunchSpec& spec) { return Dump(spec); }
absl::StatusOr<LaunchSpec> LaunchSpecFromJson(absl::string_view json) {
  return Load<LaunchSpec>("launch spec", json);
}
std::string StartReportToJson(const StartReport& r) { return Dump(r); }
absl::StatusOr<StartReport> StartReportFromJson(absl::string_view json) {
  return Load<StartReport>("start report", json);
}
std::string ExitStatusToJson(const ExitStatus& e) { return Dump(e); }
absl::StatusOr<ExitStatus> ExitStatusFromJson(absl::string_view json) {
  return Load<ExitStatus>("exit status", json);
}

}  // namespace podshim::runtime
