#include "kubelet/cri_config.h"

#include <algorithm>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "kubelet/cpu_resources.h"

namespace podshim::kubelet {
namespace {

namespace rt = ::runtime::v1;

// The kubelet's defaults for unprivileged containers (procMount Default).
constexpr const char* kMaskedPaths[] = {"/proc/asound",
                                        "/proc/acpi",
                                        "/proc/kcore",
                                        "/proc/keys",
                                        "/proc/latency_stats",
                                        "/proc/timer_list",
                                        "/proc/timer_stats",
                                        "/proc/sched_debug",
                                        "/proc/scsi",
                                        "/sys/firmware",
                                        "/sys/devices/virtual/powercap"};
constexpr const char* kReadonlyPaths[] = {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                                          "/proc/sysrq-trigger"};
// Where Localhost seccomp profiles live, as with the real kubelet.
constexpr char kSeccompRoot[] = "/var/lib/kubelet/seccomp";

rt::Protocol ToCri(PortProtocol p) {
  switch (p) {
    case PortProtocol::kUdp:
      return rt::UDP;
    case PortProtocol::kSctp:
      return rt::SCTP;
    case PortProtocol::kTcp:
      break;
  }
  return rt::TCP;
}

void SetSeccomp(const SeccompProfile& container, const SeccompProfile& pod, bool seccomp_default,
                rt::SecurityProfile* out) {
  const SeccompProfile& p = container.type != SeccompType::kUnset ? container : pod;
  switch (p.type) {
    case SeccompType::kRuntimeDefault:
      out->set_profile_type(rt::SecurityProfile::RuntimeDefault);
      break;
    case SeccompType::kUnconfined:
      out->set_profile_type(rt::SecurityProfile::Unconfined);
      break;
    case SeccompType::kLocalhost:
      out->set_profile_type(rt::SecurityProfile::Localhost);
      out->set_localhost_ref(absl::StrCat(kSeccompRoot, "/", p.localhost_profile));
      break;
    case SeccompType::kUnset:
      out->set_profile_type(seccomp_default ? rt::SecurityProfile::RuntimeDefault
                                            : rt::SecurityProfile::Unconfined);
      break;
  }
}

void SetNamespaces(const Pod& pod, rt::NamespaceOption* ns) {
  ns->set_network(pod.host_network ? rt::NODE : rt::POD);
  ns->set_ipc(pod.host_ipc ? rt::NODE : rt::POD);
  ns->set_pid(pod.host_pid ? rt::NODE : pod.share_process_namespace ? rt::POD : rt::CONTAINER);
}

bool AnyPrivileged(const Pod& pod) {
  for (const auto* list : {&pod.init_containers, &pod.containers}) {
    for (const Container& c : *list) {
      if (c.security_context.privileged.value_or(false)) return true;
    }
  }
  return false;
}

}  // namespace

absl::string_view QosClassName(QosClass q) {
  switch (q) {
    case QosClass::kGuaranteed:
      return "Guaranteed";
    case QosClass::kBurstable:
      return "Burstable";
    case QosClass::kBestEffort:
      break;
  }
  return "BestEffort";
}

QosClass PodQos(const Pod& pod) {
  bool any = false;
  bool guaranteed = true;
  for (const auto* list : {&pod.init_containers, &pod.containers}) {
    for (const Container& c : *list) {
      const Resources& r = c.resources;
      if (r.cpu_request_milli || r.cpu_limit_milli || r.memory_request_bytes ||
          r.memory_limit_bytes) {
        any = true;
      }
      if (r.cpu_limit_milli == 0 || r.memory_limit_bytes == 0 ||
          r.cpu_request_milli != r.cpu_limit_milli ||
          r.memory_request_bytes != r.memory_limit_bytes) {
        guaranteed = false;
      }
    }
  }
  if (!any) return QosClass::kBestEffort;
  return guaranteed ? QosClass::kGuaranteed : QosClass::kBurstable;
}

int64_t OomScoreAdj(QosClass qos, const Container& c, int64_t memory_capacity_bytes) {
  if (qos == QosClass::kGuaranteed) return -997;
  if (qos == QosClass::kBestEffort) return 1000;
  if (memory_capacity_bytes <= 0) return 999;
  // 1000 * request / capacity without overflow: request <= capacity here
  // in any sane case, and the division comes first otherwise.
  long double share = static_cast<long double>(c.resources.memory_request_bytes) * 1000.0L /
                      static_cast<long double>(memory_capacity_bytes);
  int64_t adj = 1000 - static_cast<int64_t>(share);
  return std::clamp<int64_t>(adj, 2, 999);
}

std::string PodLogDir(const Pod& pod, const NodeConfig& node) {
  return absl::StrCat(node.pod_log_root, "/", pod.namespace_name, "_", pod.name, "_", pod.uid);
}

std::string PodVolumesDir(const Pod& pod, const NodeConfig& node) {
  return absl::StrCat(node.volume_root, "/", pod.uid);
}

std::string EmptyDirPath(const Pod& pod, const Volume& v, const NodeConfig& node) {
  return absl::StrCat(PodVolumesDir(pod, node), "/volumes/kubernetes.io~empty-dir/", v.name);
}

absl::optional<DnsConfig> EffectiveDns(const Pod& pod, absl::string_view host_resolv_conf) {
  if (pod.dns_policy != "None" && !pod.dns_config) return absl::nullopt;
  DnsConfig out;
  if (pod.dns_policy != "None") {
    for (absl::string_view line : absl::StrSplit(host_resolv_conf, '\n')) {
      line = absl::StripAsciiWhitespace(line);
      if (line.empty() || line[0] == '#' || line[0] == ';') continue;
      std::vector<std::string> words =
          absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
      if (words.size() < 2) continue;
      if (words[0] == "nameserver") {
        out.nameservers.push_back(words[1]);
      } else if (words[0] == "search" || words[0] == "domain") {
        out.searches.assign(words.begin() + 1, words.end());
      } else if (words[0] == "options") {
        out.options.insert(out.options.end(), words.begin() + 1, words.end());
      }
    }
  }
  if (pod.dns_config) {
    const DnsConfig& d = *pod.dns_config;
    out.nameservers.insert(out.nameservers.end(), d.nameservers.begin(), d.nameservers.end());
    out.searches.insert(out.searches.end(), d.searches.begin(), d.searches.end());
    out.options.insert(out.options.end(), d.options.begin(), d.options.end());
  }
  // Duplicates out, first one wins; resolv.conf takes at most 3 servers.
  auto dedup = [](std::vector<std::string>& v) {
    std::vector<std::string> seen;
    for (std::string& s : v) {
      if (std::find(seen.begin(), seen.end(), s) == seen.end()) seen.push_back(std::move(s));
    }
    v = std::move(seen);
  };
  dedup(out.nameservers);
  dedup(out.searches);
  dedup(out.options);
  if (out.nameservers.size() > 3) out.nameservers.resize(3);
  return out;
}

std::string ExpandEnvRefs(absl::string_view s, const std::map<std::string, std::string>& env) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '$' || i + 1 >= s.size()) {
      out.push_back(s[i]);
      continue;
    }
    if (s[i + 1] == '$') {
      out.push_back('$');
      ++i;
      continue;
    }
    if (s[i + 1] == '(') {
      size_t close = s.find(')', i + 2);
      if (close != absl::string_view::npos) {
        auto it = env.find(std::string(s.substr(i + 2, close - i - 2)));
        if (it != env.end()) {
          out += it->second;
          i = close;
          continue;
        }
        out.append(s.data() + i, close - i + 1);
        i = close;
        continue;
      }
    }
    out.push_back('$');
  }
  return out;
}

std::map<std::string, std::string> PodSelector(const Pod& pod) {
  return {
      {kManagedLabel, "true"}, {kPodNameLabel, pod.name}, {kPodNamespaceLabel, pod.namespace_name}};
}

rt::PodSandboxConfig MakeSandboxConfig(const Pod& pod, uint32_t attempt, const NodeConfig& node) {
  rt::PodSandboxConfig cfg;
  auto* md = cfg.mutable_metadata();
  md->set_name(pod.name);
  md->set_namespace_(pod.namespace_name);
  md->set_uid(pod.uid);
  md->set_attempt(attempt);
  if (!pod.host_network) {
    std::string hostname = pod.hostname.empty() ? pod.name : pod.hostname;
    if (hostname.size() > 63) hostname.resize(63);
    while (!hostname.empty() && (hostname.back() == '-' || hostname.back() == '.')) {
      hostname.pop_back();
    }
    cfg.set_hostname(hostname);
  }
  cfg.set_log_directory(PodLogDir(pod, node));
  if (auto dns = EffectiveDns(pod, node.host_resolv_conf)) {
    auto* d = cfg.mutable_dns_config();
    for (const auto& s : dns->nameservers) d->add_servers(s);
    for (const auto& s : dns->searches) d->add_searches(s);
    for (const auto& s : dns->options) d->add_options(s);
  }
  for (const Container& c : pod.containers) {
    for (const ContainerPort& p : c.ports) {
      if (p.host_port == 0) continue;
      auto* pm = cfg.add_port_mappings();
      pm->set_protocol(ToCri(p.protocol));
      pm->set_container_port(p.container_port);
      pm->set_host_port(p.host_port);
      pm->set_host_ip(p.host_ip);
    }
  }
  auto& labels = *cfg.mutable_labels();
  for (const auto& [k, v] : pod.labels) labels[k] = v;
  for (const auto& [k, v] : PodSelector(pod)) labels[k] = v;
  labels[kPodUidLabel] = pod.uid;
  labels[kManifestHashLabel] = pod.hash;
  auto& annotations = *cfg.mutable_annotations();
  for (const auto& [k, v] : pod.annotations) annotations[k] = v;
  annotations[kSourceAnnotation] = pod.source;
  annotations[kGracePeriodAnnotation] = absl::StrCat(pod.termination_grace_period_seconds);

  auto* linux = cfg.mutable_linux();
  linux->set_cgroup_parent(node.cgroup_parent);
  for (const auto& [k, v] : pod.security_context.sysctls) (*linux->mutable_sysctls())[k] = v;
  auto* sc = linux->mutable_security_context();
  SetNamespaces(pod, sc->mutable_namespace_options());
  if (pod.security_context.run_as_user) {
    sc->mutable_run_as_user()->set_value(*pod.security_context.run_as_user);
  }
  if (pod.security_context.run_as_group) {
    sc->mutable_run_as_group()->set_value(*pod.security_context.run_as_group);
  }
  for (int64_t g : pod.security_context.supplemental_groups) sc->add_supplemental_groups(g);
  sc->set_privileged(AnyPrivileged(pod));
  SetSeccomp(SeccompProfile{}, pod.security_context.seccomp, node.seccomp_default,
             sc->mutable_seccomp());
  return cfg;
}

absl::StatusOr<rt::ContainerConfig> MakeContainerConfig(const Pod& pod, const Container& c,
                                                        bool init, uint32_t attempt,
                                                        const ImageInfo& image,
                                                        const NodeConfig& node) {
  const SecurityContext& csc = c.security_context;
  const PodSecurityContext& psc = pod.security_context;
  absl::optional<int64_t> run_as_user = csc.run_as_user ? csc.run_as_user : psc.run_as_user;
  absl::optional<int64_t> run_as_group = csc.run_as_group ? csc.run_as_group : psc.run_as_group;
  bool non_root = csc.run_as_non_root.value_or(psc.run_as_non_root.value_or(false));
  if (non_root) {
    if (run_as_user) {
      if (*run_as_user == 0) {
        return absl::FailedPreconditionError(
            "container's runAsUser breaks non-root policy (runAsNonRoot and runAsUser 0)");
      }
    } else if (image.uid && *image.uid == 0) {
      return absl::FailedPreconditionError("container has runAsNonRoot and image will run as root");
    } else if (!image.uid && !image.username.empty()) {
      int64_t numeric = 0;
      if (!absl::SimpleAtoi(image.username, &numeric)) {
        return absl::FailedPreconditionError(
            absl::StrCat("container has runAsNonRoot and image has non-numeric user (",
                         image.username, "), cannot verify user is non-root"));
      }
      if (numeric == 0) {
        return absl::FailedPreconditionError(
            "container has runAsNonRoot and image will run as root");
      }
    }
  }

  rt::ContainerConfig cfg;
  cfg.mutable_metadata()->set_name(c.name);
  cfg.mutable_metadata()->set_attempt(attempt);
  cfg.mutable_image()->set_image(image.id.empty() ? c.image : image.id);
  cfg.mutable_image()->set_user_specified_image(c.image);

  std::map<std::string, std::string> env;
  for (const EnvVar& e : c.env) {
    std::string value = ExpandEnvRefs(e.value, env);
    env[e.name] = value;
    auto* kv = cfg.add_envs();
    kv->set_key(e.name);
    kv->set_value(value);
  }
  for (const std::string& s : c.command) cfg.add_command(ExpandEnvRefs(s, env));
  for (const std::string& s : c.args) cfg.add_args(ExpandEnvRefs(s, env));
  cfg.set_working_dir(c.working_dir);

  for (const VolumeMount& vm : c.volume_mounts) {
    auto v = std::find_if(pod.volumes.begin(), pod.volumes.end(),
                          [&](const Volume& x) { return x.name == vm.name; });
    if (v == pod.volumes.end()) {
      return absl::FailedPreconditionError(absl::StrCat("no volume named ", vm.name));
    }
    std::string host =
        v->type == VolumeType::kHostPath ? v->host_path : EmptyDirPath(pod, *v, node);
    if (!vm.sub_path.empty()) host = absl::StrCat(host, "/", vm.sub_path);
    auto* m = cfg.add_mounts();
    m->set_container_path(vm.mount_path);
    m->set_host_path(host);
    m->set_readonly(vm.read_only);
  }

  auto& labels = *cfg.mutable_labels();
  for (const auto& [k, v] : PodSelector(pod)) labels[k] = v;
  labels[kPodUidLabel] = pod.uid;
  labels[kContainerNameLabel] = c.name;
  labels[kContainerTypeLabel] = init ? "init" : "app";
  auto& annotations = *cfg.mutable_annotations();
  annotations[kRestartCountAnnotation] = absl::StrCat(attempt);
  annotations[kContainerHashAnnotation] = Fnv64Hex(absl::StrCat(pod.hash, "/", c.name));
  annotations[kGracePeriodAnnotation] = absl::StrCat(pod.termination_grace_period_seconds);
  cfg.set_log_path(absl::StrCat(c.name, "/", attempt, ".log"));
  cfg.set_stdin(c.stdin);
  cfg.set_tty(c.tty);

  auto* linux = cfg.mutable_linux();
  auto* res = linux->mutable_resources();
  LinuxCpuMemory cpu_mem = ContainerCpuMemory(
      c.resources.cpu_request_milli, c.resources.cpu_limit_milli, c.resources.memory_limit_bytes);
  res->set_cpu_shares(cpu_mem.cpu_shares);
  res->set_cpu_period(cpu_mem.cpu_period);
  res->set_cpu_quota(cpu_mem.cpu_quota);
  res->set_memory_limit_in_bytes(cpu_mem.memory_limit_in_bytes);
  res->set_oom_score_adj(OomScoreAdj(PodQos(pod), c, node.memory_capacity_bytes));

  auto* sc = linux->mutable_security_context();
  bool privileged = csc.privileged.value_or(false);
  sc->set_privileged(privileged);
  for (const std::string& cap : csc.capabilities_add) {
    sc->mutable_capabilities()->add_add_capabilities(cap);
  }
  for (const std::string& cap : csc.capabilities_drop) {
    sc->mutable_capabilities()->add_drop_capabilities(cap);
  }
  SetNamespaces(pod, sc->mutable_namespace_options());
  if (run_as_user) sc->mutable_run_as_user()->set_value(*run_as_user);
  if (run_as_group) sc->mutable_run_as_group()->set_value(*run_as_group);
  for (int64_t g : psc.supplemental_groups) sc->add_supplemental_groups(g);
  sc->set_readonly_rootfs(csc.read_only_root_filesystem.value_or(false));
  sc->set_no_new_privs(csc.allow_privilege_escalation.has_value() &&
                       !*csc.allow_privilege_escalation);
  if (!privileged) {
    for (const char* p : kMaskedPaths) sc->add_masked_paths(p);
    for (const char* p : kReadonlyPaths) sc->add_readonly_paths(p);
  }
  SetSeccomp(csc.seccomp, psc.seccomp, node.seccomp_default, sc->mutable_seccomp());
  return cfg;
}

}  // namespace podshim::kubelet
