#include "agent/translate.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "agent/cri_convert.h"
#include "agent/validate.h"
#include "runtime/namespaces.h"

namespace podshim::agent {
namespace {

absl::Status WithField(const absl::Status& s, absl::string_view field) {
  if (s.ok()) return s;
  return absl::Status(s.code(), absl::StrCat(field, ": ", s.message()));
}

bool HasMountAt(const cri::ContainerConfig& c, absl::string_view path) {
  for (const auto& m : c.mounts()) {
    if (m.container_path() == path) return true;
  }
  return false;
}

constexpr char kSecurityContext[] = "config.linux.security_context";

// The process: args, env, cwd, user, capabilities, seccomp, OOM score.
absl::Status PlanProcess(const ContainerSource& in, runtime::ProcessSpec* p) {
  const cri::ContainerConfig& config = *in.config;
  const auto& image = in.image_config;
  const auto& sc = config.linux().security_context();
  std::vector<std::string> command(config.command().begin(), config.command().end());
  std::vector<std::string> args(config.args().begin(), config.args().end());
  auto argv = MergeArgs(command, args, JsonStrings(image, "Entrypoint"), JsonStrings(image, "Cmd"));
  if (!argv.ok()) return argv.status();
  p->args = *argv;
  std::vector<std::pair<std::string, std::string>> envs;
  for (const auto& kv : config.envs()) envs.emplace_back(kv.key(), kv.value());
  p->env = MergeEnv(JsonStrings(image, "Env"), envs, in.pod->hostname);
  p->cwd = !config.working_dir().empty()              ? config.working_dir()
           : !JsonString(image, "WorkingDir").empty() ? JsonString(image, "WorkingDir")
                                                      : "/";
  // Ids, groups and oom_score_adj are in range (ValidateContainerConfig).
  if (sc.has_run_as_group() && !sc.has_run_as_user() && sc.run_as_username().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        kSecurityContext, ".run_as_group: set without run_as_user or run_as_username"));
  }
  if (sc.has_run_as_user()) p->user.uid = static_cast<uint32_t>(sc.run_as_user().value());
  if (sc.has_run_as_group()) p->user.gid = static_cast<uint32_t>(sc.run_as_group().value());
  p->user.username = sc.run_as_username();
  p->user.image_user = JsonString(image, "User");
  for (int64_t g : sc.supplemental_groups()) {
    p->user.supplemental_groups.push_back(static_cast<uint32_t>(g));
  }
  runtime::CapabilityRequest caps;
  caps.privileged = sc.privileged();
  caps.add.assign(sc.capabilities().add_capabilities().begin(),
                  sc.capabilities().add_capabilities().end());
  caps.drop.assign(sc.capabilities().drop_capabilities().begin(),
                   sc.capabilities().drop_capabilities().end());
  auto cap_set = runtime::ResolveCapabilities(caps);
  if (!cap_set.ok()) {
    return WithField(cap_set.status(), absl::StrCat(kSecurityContext, ".capabilities"));
  }
  p->capabilities = *cap_set;
  if (!in.devices_enforced && !sc.privileged()) {
    // Nothing restricts devices on this node (cgroup v2 without a BPF device
    // filter yet): a container that may make device nodes could open the
    // host's disks, so CAP_MKNOD is neither in the defaults nor given.
    for (const std::string& name : sc.capabilities().add_capabilities()) {
      if (absl::EqualsIgnoreCase(name, "ALL") || absl::EqualsIgnoreCase(name, "MKNOD") ||
          absl::EqualsIgnoreCase(name, "CAP_MKNOD")) {
        return absl::InvalidArgumentError(absl::StrCat(
            kSecurityContext, ".capabilities.add_capabilities: ", QuoteForError(name),
            " would give CAP_MKNOD, and podshim does not restrict devices on this node yet "
            "(cgroup v2 without a device filter): a device node made in the container could "
            "open the host's disks"));
      }
    }
    std::erase(p->capabilities, std::string("CAP_MKNOD"));
  }
  p->no_new_privs = sc.no_new_privs();
  auto seccomp = ChooseSeccomp(sc);
  if (!seccomp.ok()) return seccomp.status();
  // A privileged container runs unconfined whatever profile it names, as in
  // containerd and CRI-O.
  if (!sc.privileged()) {
    if (seccomp->kind == SeccompChoice::kRuntimeDefault) {
      p->seccomp_json = runtime::RuntimeDefaultSeccompJson();
    } else if (seccomp->kind == SeccompChoice::kLocalhost) {
      auto parsed = runtime::ParseSeccompProfile(in.localhost_seccomp);
      if (!parsed.ok()) {
        return WithField(parsed.status(), absl::StrCat(kSecurityContext, ".seccomp"));
      }
      p->seccomp_json = *parsed;
    }
  }
  p->apparmor_profile = sc.apparmor().localhost_ref();
  p->terminal = config.tty();
  p->stdin = config.stdin();
  p->stdin_once = config.stdin_once();
  if (config.linux().has_resources()) {
    p->oom_score_adj = static_cast<int>(config.linux().resources().oom_score_adj());
  }
  return absl::OkStatus();
}

// Namespaces: the pod's network, IPC and UTS; PID as asked.
absl::Status PlanNamespaces(const ContainerSource& in, runtime::LaunchSpec* spec) {
  auto join_or_host = [](const std::string& path) {
    return path.empty() ? runtime::NamespaceSpec{runtime::NsMode::kHost, ""}
                        : runtime::NamespaceSpec{runtime::NsMode::kJoin, path};
  };
  const SandboxRecord& pod = *in.pod;
  spec->net = join_or_host(pod.net_ns);
  spec->ipc = join_or_host(pod.ipc_ns);
  spec->uts = join_or_host(pod.uts_ns);
  spec->cgroup = {runtime::NsMode::kHost, ""};
  switch (in.config->linux().security_context().namespace_options().pid()) {
    case cri::NODE:
      spec->pid = {runtime::NsMode::kHost, ""};
      break;
    case cri::POD:
      spec->pid = pod.pid_ns.empty() ? runtime::NamespaceSpec{runtime::NsMode::kNew, ""}
                                     : runtime::NamespaceSpec{runtime::NsMode::kJoin, pod.pid_ns};
      break;
    case cri::TARGET:
      if (in.target_pid <= 0) {
        return absl::FailedPreconditionError(absl::StrCat(
            kSecurityContext, ".namespace_options.target_id: the target container is not running"));
      }
      spec->pid = {runtime::NsMode::kJoin, absl::StrCat("/proc/", in.target_pid, "/ns/pid"),
                   in.target_pid, in.target_start_time};
      break;
    default:
      spec->pid = {runtime::NsMode::kNew, ""};
  }
  return absl::OkStatus();
}

// Mounts: the pod's files unless the request brings its own, then the
// request's in order.
absl::Status PlanMounts(const ContainerSource& in, runtime::LaunchSpec* spec) {
  const cri::ContainerConfig& config = *in.config;
  auto add_pod_file = [&](const std::string& source, const char* dest) {
    if (!source.empty() && !HasMountAt(config, dest)) {
      spec->mounts.push_back({source, dest, false, runtime::Propagation::kPrivate, false});
    }
  };
  add_pod_file(in.pod->hostname_file, "/etc/hostname");
  add_pod_file(in.pod->hosts_file, "/etc/hosts");
  add_pod_file(in.pod->resolv_file, "/etc/resolv.conf");
  add_pod_file(in.pod->shm_dir, "/dev/shm");
  for (int i = 0; i < config.mounts_size(); ++i) {
    const auto& m = config.mounts(i);
    if (m.recursive_read_only() && (!m.readonly() || m.propagation() != cri::PROPAGATION_PRIVATE)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "config.mounts[", i, "].recursive_read_only: needs readonly and PROPAGATION_PRIVATE"));
    }
    runtime::MountSpec mount{m.host_path(), m.container_path(), m.readonly(),
                             ToPropagation(m.propagation()), true};
    mount.recursive_readonly = m.recursive_read_only();
    spec->mounts.push_back(std::move(mount));
  }
  return absl::OkStatus();
}

// `path` lies strictly beneath `top` (both absolute container paths,
// compared cleaned: /data/./x is beneath /data, /data2 is not).
bool Beneath(absl::string_view path, absl::string_view top) {
  const std::string p = CleanPath(path), t = CleanPath(top);
  return p != t && PathWithin(p, t);
}

// A mount made beneath a bidirectional one would reach the host's mount
// table through it (issue 18, finding 9): the request's mounts, devices and
// masked or read-only paths may not lie beneath one.
absl::Status NothingBeneathBidirectional(const cri::ContainerConfig& config,
                                         const runtime::LaunchSpec& spec) {
  for (int i = 0; i < config.mounts_size(); ++i) {
    if (config.mounts(i).propagation() != cri::PROPAGATION_BIDIRECTIONAL) continue;
    const std::string& top = config.mounts(i).container_path();
    auto refuse = [&](absl::string_view what, absl::string_view path) {
      return absl::InvalidArgumentError(
          absl::StrCat("config.mounts[", i, "].container_path: ", QuoteForError(top),
                       " is PROPAGATION_BIDIRECTIONAL and ", what, " ", QuoteForError(path),
                       " lies beneath it: a mount there would reach the host's mount table"));
    };
    for (int j = 0; j < config.mounts_size(); ++j) {
      if (Beneath(config.mounts(j).container_path(), top)) {
        return refuse(absl::StrCat("config.mounts[", j, "]"), config.mounts(j).container_path());
      }
    }
    for (int j = 0; j < config.devices_size(); ++j) {
      if (Beneath(config.devices(j).container_path(), top)) {
        return refuse(absl::StrCat("config.devices[", j, "]"), config.devices(j).container_path());
      }
    }
    for (const auto* paths : {&spec.masked_paths, &spec.readonly_paths}) {
      for (const std::string& p : *paths) {
        if (Beneath(p, top)) return refuse("the masked or read-only path", p);
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<runtime::PodSetupRequest> PlanPod(const cri::PodSandboxConfig& config,
                                                 const PodPlace& place) {
  const auto& ns = config.linux().security_context().namespace_options();
  runtime::PodSetupRequest setup;
  setup.dir = place.dir;
  setup.hostname = config.hostname();
  setup.host_network = ns.network() == cri::NODE;
  setup.host_ipc = ns.ipc() == cri::NODE;
  setup.shared_pid = ns.pid() == cri::POD;
  if (config.has_dns_config()) {
    const auto& d = config.dns_config();
    setup.has_dns = true;
    setup.dns.servers.assign(d.servers().begin(), d.servers().end());
    setup.dns.searches.assign(d.searches().begin(), d.searches().end());
    setup.dns.options.assign(d.options().begin(), d.options().end());
  }
  setup.sysctls.assign(config.linux().sysctls().begin(), config.linux().sysctls().end());
  if (auto s = runtime::ValidateSysctls(setup.sysctls, setup.host_network, setup.host_ipc);
      !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("config.linux.sysctls: ", s.message()));
  }
  const std::string& parent = config.linux().cgroup_parent();
  setup.cgroup =
      parent.empty() ? absl::StrCat(place.default_cgroup_parent, "/pod-", place.id) : parent;
  setup.pinns_binary = place.pinns_binary;
  return setup;
}

cni::PodNetwork PodNetworkOf(const SandboxRecord& r) {
  cni::PodNetwork p;
  p.id = r.id;
  p.netns = r.net_ns;
  p.name = r.config.metadata().name();
  p.namespace_ = r.config.metadata().namespace_();
  p.uid = r.config.metadata().uid();
  for (const auto& pm : r.config.port_mappings()) {
    // Only published ports are CNI's business (as in containerd).
    if (pm.host_port() <= 0) continue;
    const char* proto = pm.protocol() == cri::UDP    ? "udp"
                        : pm.protocol() == cri::SCTP ? "sctp"
                                                     : "tcp";
    p.port_mappings.push_back({proto, pm.container_port(), pm.host_port(), pm.host_ip()});
  }
  if (r.config.has_dns_config()) {
    const auto& d = r.config.dns_config();
    p.dns = runtime::DnsSettings{{d.servers().begin(), d.servers().end()},
                                 {d.searches().begin(), d.searches().end()},
                                 {d.options().begin(), d.options().end()}};
  }
  // Validated by ValidatePodConfig.
  if (auto it = r.config.annotations().find(kIngressBandwidth);
      it != r.config.annotations().end()) {
    p.ingress_bps = cni::ParseBandwidth(it->second).value_or(0);
  }
  if (auto it = r.config.annotations().find(kEgressBandwidth); it != r.config.annotations().end()) {
    p.egress_bps = cni::ParseBandwidth(it->second).value_or(0);
  }
  return p;
}

runtime::CgroupResources ToCgroup(const cri::LinuxContainerResources& r) {
  runtime::CgroupResources out;
  if (r.cpu_period() > 0) out.cpu_period = r.cpu_period();
  if (r.cpu_quota() != 0) out.cpu_quota = r.cpu_quota();
  if (r.cpu_shares() > 0) out.cpu_shares = r.cpu_shares();
  if (r.memory_limit_in_bytes() != 0) out.memory_limit_in_bytes = r.memory_limit_in_bytes();
  if (r.memory_swap_limit_in_bytes() != 0) {
    out.memory_swap_limit_in_bytes = r.memory_swap_limit_in_bytes();
  }
  out.cpuset_cpus = r.cpuset_cpus();
  out.cpuset_mems = r.cpuset_mems();
  for (const auto& h : r.hugepage_limits()) {
    out.hugepage_limits[h.page_size()] = static_cast<int64_t>(h.limit());
  }
  for (const auto& [k, v] : r.unified()) out.unified[k] = v;
  return out;
}

absl::StatusOr<ContainerPlan> PlanContainer(const ContainerSource& in) {
  const cri::ContainerConfig& config = *in.config;
  const SandboxRecord& pod = *in.pod;
  const auto& sc = config.linux().security_context();
  if (in.device_nodes.size() != static_cast<size_t>(config.devices_size())) {
    return absl::InternalError("PlanContainer: one device node per config.devices is needed");
  }
  ContainerPlan plan;
  runtime::LaunchSpec& spec = plan.spec;
  spec.id = in.id;
  spec.bundle = in.bundle;
  spec.rootfs.upper = in.layer_dir + "/upper";
  spec.rootfs.work = in.layer_dir + "/work";
  spec.rootfs.target = in.bundle + "/rootfs";
  spec.rootfs.readonly = sc.readonly_rootfs();
  spec.privileged = sc.privileged();
  if (auto s = PlanProcess(in, &spec.process); !s.ok()) return s;
  if (auto s = PlanNamespaces(in, &spec); !s.ok()) return s;
  if (auto s = PlanMounts(in, &spec); !s.ok()) return s;

  // The devices cgroup: unless privileged, runc's default list and the
  // requested device nodes with their permissions, nothing else.
  if (!sc.privileged()) plan.device_rules = runtime::DefaultDeviceRules();
  for (int i = 0; i < config.devices_size(); ++i) {
    const auto& d = config.devices(i);
    const runtime::DeviceNode& node = in.device_nodes[static_cast<size_t>(i)];
    // A subset of rwm (ValidateContainerConfig); empty means all.
    const std::string access = d.permissions().empty() ? "rwm" : d.permissions();
    if (plan.device_rules.has_value()) {
      plan.device_rules->push_back({node.type, node.major, node.minor, access});
    }
    spec.devices.push_back({d.host_path(), d.container_path(), d.permissions()});
  }
  if (!sc.privileged()) {
    spec.masked_paths.assign(sc.masked_paths().begin(), sc.masked_paths().end());
    spec.readonly_paths.assign(sc.readonly_paths().begin(), sc.readonly_paths().end());
    if (spec.masked_paths.empty() && spec.readonly_paths.empty()) {
      spec.masked_paths = DefaultMaskedPaths();
      spec.readonly_paths = DefaultReadonlyPaths();
    }
  }
  if (auto s = NothingBeneathBidirectional(config, spec); !s.ok()) return s;

  plan.cgroup = absl::StrCat(pod.cgroup, "/", in.id);
  plan.limits = ToCgroup(config.linux().resources());
  if (!pod.config.log_directory().empty() && !config.log_path().empty()) {
    plan.log_path = absl::StrCat(pod.config.log_directory(), "/", config.log_path());
  }
  spec.log_path = plan.log_path;
  const std::string stop_signal =
      config.stop_signal() != cri::SIGNAL_RUNTIME_DEFAULT
          ? std::string(absl::StripPrefix(cri::Signal_Name(config.stop_signal()), "SIGNAL_"))
          : JsonString(in.image_config, "StopSignal");
  if (!stop_signal.empty() && SignalNumber(stop_signal) > 0) {
    plan.stop_signal = SignalNumber(stop_signal);
  }
  return plan;
}

}  // namespace podshim::agent
