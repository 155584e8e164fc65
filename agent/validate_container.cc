// The rules for containers: CreateContainer's config, resources and devices
// (agent/validate.h).
#include <arpa/inet.h>

#include <algorithm>
#include <map>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "agent/cri_convert.h"
#include "agent/validate_fields.h"
#include "cni/client.h"
#include "runtime/sysctl.h"

namespace podshim::agent {
using namespace fields;  // NOLINT(google-build-using-namespace): this file's own helpers
namespace {

absl::Status ValidateUnifiedEntry(absl::string_view key, absl::string_view value,
                                  absl::string_view unified_field) {
  const std::string field = MapField(unified_field, key);
  if (key.empty()) return Invalid(field, "is not a cgroup file name");
  if (key.size() > kMaxUnifiedKeyBytes) {
    return Invalid(field, absl::StrCat("is ", key.size(), " bytes, longer than a file name"));
  }
  for (char ch : key) {
    const auto c = static_cast<unsigned char>(ch);
    if (!absl::ascii_isalnum(c) && c != '.' && c != '_' && c != '-') {
      return Invalid(field,
                     absl::StrCat("is not a plain file name: it contains ", DescribeByte(c)));
    }
  }
  const size_t dot = key.find('.');
  const absl::string_view controller = key.substr(0, dot);
  if (controller == "cgroup") {
    return Invalid(field,
                   "cgroup.* files are podshim's own (they move, kill or freeze processes and "
                   "enable controllers); only controller files may be set");
  }
  const bool known = std::find(std::begin(kUnifiedControllers), std::end(kUnifiedControllers),
                               controller) != std::end(kUnifiedControllers);
  if (dot == absl::string_view::npos || dot + 1 == key.size() || !known) {
    return Invalid(field, absl::StrCat("is not <controller>.<file> with a controller of ",
                                       absl::StrJoin(kUnifiedControllers, ", ")));
  }
  if (auto s = NotLonger(value, kMaxUnifiedValueBytes, field); !s.ok()) return s;
  return RefuseBytes(value, field, IsControl);
}

bool IsMemoryDevice(const runtime::DeviceNode& node) {
  return node.type == 'c' && node.major == 1 &&
         (node.minor == 1 || node.minor == 2 || node.minor == 4);
}

}  // namespace

absl::Status ValidateContainerResources(const cri::LinuxContainerResources& r,
                                        absl::string_view field) {
  if (r.oom_score_adj() < kMinOomScoreAdj || r.oom_score_adj() > kMaxOomScoreAdj) {
    return Invalid(absl::StrCat(field, ".oom_score_adj"),
                   absl::StrCat(r.oom_score_adj(), " is outside [", kMinOomScoreAdj, ", ",
                                kMaxOomScoreAdj, "]"));
  }
  auto cpuset = [&](const std::string& value, absl::string_view name) {
    const std::string f = absl::StrCat(field, name);
    if (auto s = NotLonger(value, kMaxCpusetBytes, f); !s.ok()) return s;
    return RefuseBytes(value, f, IsControlOrSpace);
  };
  if (auto s = cpuset(r.cpuset_cpus(), ".cpuset_cpus"); !s.ok()) return s;
  if (auto s = cpuset(r.cpuset_mems(), ".cpuset_mems"); !s.ok()) return s;
  for (int i = 0; i < r.hugepage_limits_size(); ++i) {
    const std::string f = absl::StrCat(field, ".hugepage_limits[", i, "].page_size");
    const std::string& size = r.hugepage_limits(i).page_size();
    if (auto s = NotLonger(size, 16, f); !s.ok()) return s;
    if (auto s = RefuseBytes(size, f, [](unsigned char c) { return !absl::ascii_isalnum(c); });
        !s.ok()) {
      return s;
    }
  }
  const std::string unified = absl::StrCat(field, ".unified");
  if (auto s = NotMore(r.unified().size(), kMaxUnifiedEntries, unified, "entries"); !s.ok()) {
    return s;
  }
  // In key order, so that the first bad key named is the same every time.
  std::map<std::string, const std::string*> sorted;
  for (const auto& [k, v] : r.unified()) sorted.emplace(k, &v);
  for (const auto& [k, v] : sorted) {
    if (auto s = ValidateUnifiedEntry(k, *v, unified); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status ValidateUpdateRequest(const cri::UpdateContainerResourcesRequest& req) {
  if (auto s = ObjectMetaSize(MapBytes(req.annotations()), "annotations"); !s.ok()) return s;
  if (!req.has_linux()) return absl::OkStatus();
  return ValidateContainerResources(req.linux(), "linux");
}

absl::Status ValidateContainerConfig(const cri::ContainerConfig& config, const HostSecurity& host) {
  // Sizes first: nothing after this echoes more than a bounded quote.
  if (auto s = ObjectMetaSize(MapBytes(config.labels()) + MapBytes(config.annotations()) +
                                  MapBytes(config.image().annotations()),
                              "config.labels + config.annotations + config.image.annotations");
      !s.ok()) {
    return s;
  }
  size_t argv_bytes = 0;
  for (const auto& a : config.command()) argv_bytes += a.size() + 1;
  for (const auto& a : config.args()) argv_bytes += a.size() + 1;
  if (argv_bytes > kMaxArgvBytes) {
    return Invalid("config.command + config.args",
                   absl::StrCat(argv_bytes, " bytes, more than the ", kMaxArgvBytes, " allowed"));
  }
  if (auto s = NotMore(static_cast<size_t>(config.envs_size()), kMaxEnvEntries, "config.envs",
                       "entries");
      !s.ok()) {
    return s;
  }
  size_t env_bytes = 0;
  for (const auto& kv : config.envs()) env_bytes += kv.key().size() + kv.value().size() + 2;
  if (env_bytes > kMaxEnvBytes) {
    return Invalid("config.envs",
                   absl::StrCat(env_bytes, " bytes, more than the ", kMaxEnvBytes, " allowed"));
  }

  if (!config.has_metadata()) return Invalid("config.metadata", "missing");
  if (auto s = ValidateName(config.metadata().name(), "config.metadata.name", true); !s.ok()) {
    return s;
  }
  if (auto s = ValidateImageRef(config.image().image(), "config.image.image"); !s.ok()) return s;
  if (auto s = NotLonger(config.image().user_specified_image(), kMaxImageRefBytes,
                         "config.image.user_specified_image");
      !s.ok()) {
    return s;
  }
  if (auto s = NotLonger(config.image().image_ref(), kMaxImageRefBytes, "config.image.image_ref");
      !s.ok()) {
    return s;
  }
  if (auto s = NotLonger(config.image().runtime_handler(), kMaxNameBytes,
                         "config.image.runtime_handler");
      !s.ok()) {
    return s;
  }
  for (const auto* list : {&config.command(), &config.args()}) {
    const char* name = list == &config.command() ? "config.command" : "config.args";
    for (int i = 0; i < list->size(); ++i) {
      if (list->Get(i).find('\0') != std::string::npos) {
        return Invalid(absl::StrCat(name, "[", i, "]"), "contains NUL");
      }
    }
  }
  if (auto s = ValidateRelativePath(config.log_path(), "config.log_path"); !s.ok()) return s;
  if (!config.working_dir().empty()) {
    if (auto s = ValidateAbsolutePath(config.working_dir(), "config.working_dir"); !s.ok()) {
      return s;
    }
  }
  if (auto s =
          NotMore(static_cast<size_t>(config.mounts_size()), kMaxMounts, "config.mounts", "mounts");
      !s.ok()) {
    return s;
  }
  if (auto s = NotMore(static_cast<size_t>(config.devices_size()), kMaxDevices, "config.devices",
                       "devices");
      !s.ok()) {
    return s;
  }
  for (int i = 0; i < config.mounts_size(); ++i) {
    const auto& m = config.mounts(i);
    const std::string field = absl::StrCat("config.mounts[", i, "]");
    if (!m.image().image().empty()) {
      return absl::UnimplementedError(
          absl::StrCat(field, ".image: image volumes are not supported"));
    }
    if (auto s = ValidateAbsolutePath(m.container_path(), field + ".container_path"); !s.ok()) {
      return s;
    }
    if (auto s = ValidateAbsolutePath(m.host_path(), field + ".host_path"); !s.ok()) return s;
    if (m.uidmappings_size() > 0 || m.gidmappings_size() > 0) {
      return Invalid(field + (m.uidmappings_size() > 0 ? ".uidMappings" : ".gidMappings"),
                     "idmapped mounts are not supported by podshim (it has no user namespaces "
                     "yet)");
    }
    if (m.propagation() == cri::PROPAGATION_BIDIRECTIONAL &&
        !config.linux().security_context().privileged()) {
      return Invalid(field + ".propagation",
                     "PROPAGATION_BIDIRECTIONAL needs a privileged container (mounts made in the "
                     "container would reach the host)");
    }
  }
  for (int i = 0; i < config.devices_size(); ++i) {
    const auto& d = config.devices(i);
    const std::string field = absl::StrCat("config.devices[", i, "]");
    if (auto s = ValidateAbsolutePath(d.host_path(), field + ".host_path"); !s.ok()) return s;
    if (auto s = ValidateAbsolutePath(d.container_path(), field + ".container_path"); !s.ok()) {
      return s;
    }
    const std::string& access = d.permissions();
    if (access.size() > 3 || access.find_first_not_of("rwm") != std::string::npos) {
      return Invalid(field + ".permissions",
                     absl::StrCat(QuoteForError(access), " is not a subset of rwm"));
    }
  }
  for (int i = 0; i < config.envs_size(); ++i) {
    const auto& k = config.envs(i).key();
    if (k.empty() || k.find('=') != std::string::npos || k.find('\0') != std::string::npos) {
      return Invalid(absl::StrCat("config.envs[", i, "].key"),
                     absl::StrCat(QuoteForError(k), " is not valid"));
    }
    if (config.envs(i).value().find('\0') != std::string::npos) {
      return Invalid(absl::StrCat("config.envs[", i, "].value"), "contains NUL");
    }
  }
  const auto& lx = config.linux();
  if (lx.has_resources()) {
    if (auto s = ValidateContainerResources(lx.resources(), "config.linux.resources"); !s.ok()) {
      return s;
    }
  }
  const auto& sc = lx.security_context();
  if (auto s = ValidateIds(sc, "config.linux.security_context"); !s.ok()) return s;
  if (auto s = NotLonger(sc.run_as_username(), kMaxNameBytes,
                         "config.linux.security_context.run_as_username");
      !s.ok()) {
    return s;
  }
  if (auto s = RefuseBytes(sc.run_as_username(), "config.linux.security_context.run_as_username",
                           IsControl);
      !s.ok()) {
    return s;
  }
  constexpr absl::string_view kSc = "config.linux.security_context";
  if (sc.has_apparmor()) {
    if (auto s = ValidateAppArmor(sc.apparmor(), absl::StrCat(kSc, ".apparmor"), host); !s.ok()) {
      return s;
    }
  }
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"  // apparmor_profile
  const std::string& deprecated_apparmor = sc.apparmor_profile();
#pragma GCC diagnostic pop
  if (auto s = ValidateDeprecatedAppArmor(deprecated_apparmor,
                                          absl::StrCat(kSc, ".apparmor_profile"), host);
      !s.ok()) {
    return s;
  }
  if (auto s = ValidateSelinux(sc.selinux_options(), kSc); !s.ok()) return s;
  const std::string ns = absl::StrCat(kSc, ".namespace_options");
  if (auto s = ValidateUserns(sc.namespace_options(), ns); !s.ok()) return s;
  if (sc.namespace_options().pid() == cri::TARGET && sc.namespace_options().target_id().empty()) {
    return Invalid(absl::StrCat(ns, ".target_id"),
                   "must name a container of the same pod when pid is TARGET");
  }
  for (const auto* list :
       {&sc.capabilities().add_capabilities(), &sc.capabilities().drop_capabilities()}) {
    const char* name = list == &sc.capabilities().add_capabilities()
                           ? "config.linux.security_context.capabilities.add_capabilities"
                           : "config.linux.security_context.capabilities.drop_capabilities";
    for (int i = 0; i < list->size(); ++i) {
      if (auto s = NotLonger(list->Get(i), kMaxCapabilityBytes, absl::StrCat(name, "[", i, "]"));
          !s.ok()) {
        return s;
      }
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateContainerInPod(
    const cri::ContainerConfig& config, const cri::PodSandboxConfig& pod, absl::string_view pod_id,
    const std::function<absl::StatusOr<std::string>(absl::string_view)>& pod_of_container) {
  const auto& sc = config.linux().security_context();
  if (sc.privileged() && !pod.linux().security_context().privileged()) {
    return Invalid("config.linux.security_context.privileged",
                   "a privileged container needs a privileged pod (the pod's "
                   "linux.security_context.privileged is false)");
  }
  const auto& ns = sc.namespace_options();
  if (ns.pid() == cri::TARGET) {
    constexpr absl::string_view kField =
        "config.linux.security_context.namespace_options.target_id";
    auto target_pod = pod_of_container(ns.target_id());
    if (!target_pod.ok()) return target_pod.status();
    if (*target_pod != pod_id) {
      return Invalid(kField, absl::StrCat(QuoteForError(ns.target_id()),
                                          " is a container of another pod; TARGET must name a "
                                          "container of the same pod"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateDeviceNode(const runtime::DeviceNode& node, absl::string_view path,
                                bool privileged, absl::string_view field) {
  if (node.type != 'c' && node.type != 'b') {
    return Invalid(field, absl::StrCat(QuoteForError(path), " is a ", node.kind,
                                       ", not a character or block device"));
  }
  if (IsMemoryDevice(node) && !privileged) {
    return Invalid(field,
                   absl::StrCat(QuoteForError(path), " is a memory device (char ", node.major, ":",
                                node.minor, "): only a privileged container may have it"));
  }
  return absl::OkStatus();
}

}  // namespace podshim::agent
