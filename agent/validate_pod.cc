// The rules for pods: RunPodSandbox's config (agent/validate.h), cgroup
// parents and pod CIDRs.
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

absl::Status ValidateHostname(absl::string_view hostname) {
  constexpr absl::string_view kField = "config.hostname";
  if (auto s = NotLonger(hostname, kMaxHostnameBytes, kField); !s.ok()) return s;
  return RefuseBytes(hostname, kField,
                     [](unsigned char c) { return IsControlOrSpace(c) || c == '/'; });
}

// Each entry of a repeated DNS field: at most `max_bytes`, no control
// characters, and no spaces unless `spaces`.
absl::Status ValidateDnsList(const google::protobuf::RepeatedPtrField<std::string>& list,
                             absl::string_view field, size_t max_entries, size_t max_bytes,
                             bool spaces, bool required) {
  if (auto s = NotMore(static_cast<size_t>(list.size()), max_entries, field, "entries"); !s.ok()) {
    return s;
  }
  for (int i = 0; i < list.size(); ++i) {
    const std::string entry = absl::StrCat(field, "[", i, "]");
    const std::string& v = list.Get(i);
    if (required && v.empty()) return Invalid(entry, "must not be empty");
    if (auto s = NotLonger(v, max_bytes, entry); !s.ok()) return s;
    auto bad = spaces ? IsControl : IsControlOrSpace;
    if (auto s = RefuseBytes(v, entry, bad); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status ValidateDns(const cri::DNSConfig& dns) {
  if (auto s = ValidateDnsList(dns.servers(), "config.dns_config.servers", kMaxDnsServers,
                               kMaxDnsServerBytes, /*spaces=*/false, /*required=*/true);
      !s.ok()) {
    return s;
  }
  if (auto s = ValidateDnsList(dns.searches(), "config.dns_config.searches", kMaxDnsSearches,
                               kMaxDnsSearchBytes, /*spaces=*/false, /*required=*/false);
      !s.ok()) {
    return s;
  }
  return ValidateDnsList(dns.options(), "config.dns_config.options", kMaxDnsOptions,
                         kMaxDnsOptionBytes, /*spaces=*/true, /*required=*/false);
}

bool IsIpAddress(const std::string& s) {
  unsigned char buf[16];
  return ::inet_pton(AF_INET, s.c_str(), buf) == 1 || ::inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

bool IsCidr(absl::string_view cidr) {
  auto slash = cidr.find('/');
  if (slash == absl::string_view::npos) return false;
  const std::string addr(cidr.substr(0, slash));
  int prefix = -1;
  if (!absl::SimpleAtoi(cidr.substr(slash + 1), &prefix)) return false;
  unsigned char buf[16];
  if (::inet_pton(AF_INET, addr.c_str(), buf) == 1) return prefix >= 0 && prefix <= 32;
  if (::inet_pton(AF_INET6, addr.c_str(), buf) == 1) return prefix >= 0 && prefix <= 128;
  return false;
}

absl::Status ValidatePortMappings(const cri::PodSandboxConfig& config) {
  if (auto s = NotMore(static_cast<size_t>(config.port_mappings_size()), kMaxPortMappings,
                       "config.port_mappings", "port mappings");
      !s.ok()) {
    return s;
  }
  for (int i = 0; i < config.port_mappings_size(); ++i) {
    const auto& pm = config.port_mappings(i);
    const std::string field = absl::StrCat("config.port_mappings[", i, "]");
    if (pm.container_port() < 0 || pm.container_port() > 65535 || pm.host_port() < 0 ||
        pm.host_port() > 65535) {
      return Invalid(field, "port out of range");
    }
    if (pm.host_port() != 0 && pm.container_port() == 0) {
      return Invalid(field, absl::StrCat("host_port ", pm.host_port(), " has no container_port"));
    }
    if (!pm.host_ip().empty() && !IsIpAddress(pm.host_ip())) {
      return Invalid(field + ".host_ip",
                     absl::StrCat(QuoteForError(pm.host_ip()), " is not an IP address"));
    }
  }
  return absl::OkStatus();
}

// The sizes here; what a pod may set is runtime::CheckSysctl's call.
absl::Status ValidateSysctls(const StringMap& sysctls, bool host_network, bool host_ipc) {
  if (auto s = NotMore(sysctls.size(), kMaxSysctls, "config.linux.sysctls", "sysctls"); !s.ok()) {
    return s;
  }
  for (const auto& [name, value] : sysctls) {
    const std::string field = MapField("config.linux.sysctls", name);
    if (auto s = NotLonger(name, kMaxSysctlNameBytes, field + " name"); !s.ok()) return s;
    if (auto s = NotLonger(value, kMaxSysctlValueBytes, field); !s.ok()) return s;
    if (std::string why = runtime::CheckSysctl(name, value, !host_network, !host_ipc);
        !why.empty()) {
      return Invalid(field, why);
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::string CleanPath(absl::string_view path) {
  std::string out;
  for (absl::string_view part : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    if (part != ".") absl::StrAppend(&out, "/", part);
  }
  return out.empty() ? std::string("/") : out;
}

bool PathWithin(absl::string_view a, absl::string_view b) {
  if (b == "/") return true;
  return a == b || (absl::StartsWith(a, b) && a.size() > b.size() && a[b.size()] == '/');
}

absl::Status CheckCgroupParent(absl::string_view parent, absl::string_view own_parent) {
  constexpr absl::string_view kField = "config.linux.cgroup_parent";
  const std::string p = CleanPath(parent);
  const std::string own = CleanPath(own_parent);
  if (p == "/") return Invalid(kField, "is the root cgroup: every process of the host is in it");
  if (PathWithin(own, p) || PathWithin(p, own)) {
    return Invalid(kField,
                   absl::StrCat(QuoteForError(parent), " is podshim's own cgroup parent ", own,
                                " or lies above or below it: the pods podshim makes "
                                "live there"));
  }
  return absl::OkStatus();
}

absl::Status ValidatePodCidr(absl::string_view cidrs) {
  for (absl::string_view part : absl::StrSplit(cidrs, ',', absl::SkipWhitespace())) {
    part = absl::StripAsciiWhitespace(part);
    if (!IsCidr(part)) {
      return Invalid("runtime_config.network_config.pod_cidr",
                     absl::StrCat(QuoteForError(part), " is not a CIDR such as 10.244.1.0/24"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidatePodConfig(const cri::PodSandboxConfig& config, const HostSecurity& host) {
  // Sizes first: nothing after this echoes more than a bounded quote.
  if (auto s = ObjectMetaSize(MapBytes(config.labels()) + MapBytes(config.annotations()),
                              "config.labels + config.annotations");
      !s.ok()) {
    return s;
  }
  if (!config.has_metadata()) return Invalid("config.metadata", "missing");
  const auto& m = config.metadata();
  if (auto s = ValidateName(m.name(), "config.metadata.name", true); !s.ok()) return s;
  if (auto s = ValidateName(m.namespace_(), "config.metadata.namespace", false); !s.ok()) return s;
  if (auto s = ValidateName(m.uid(), "config.metadata.uid", false); !s.ok()) return s;
  if (!config.log_directory().empty()) {
    if (auto s = ValidateAbsolutePath(config.log_directory(), "config.log_directory"); !s.ok()) {
      return s;
    }
  }
  if (auto s = ValidateHostname(config.hostname()); !s.ok()) return s;
  if (auto s = ValidateDns(config.dns_config()); !s.ok()) return s;
  const auto& lx = config.linux();
  if (!lx.cgroup_parent().empty()) {
    if (auto s = ValidateAbsolutePath(lx.cgroup_parent(), "config.linux.cgroup_parent"); !s.ok()) {
      return s;
    }
  }
  const auto& ns = lx.security_context().namespace_options();
  if (ns.network() == cri::TARGET || ns.network() == cri::CONTAINER) {
    return Invalid("config.linux.security_context.namespace_options.network",
                   "must be POD or NODE");
  }
  if (ns.ipc() == cri::TARGET || ns.ipc() == cri::CONTAINER) {
    return Invalid("config.linux.security_context.namespace_options.ipc", "must be POD or NODE");
  }
  if (auto s = ValidateIds(lx.security_context(), "config.linux.security_context"); !s.ok()) {
    return s;
  }
  if (auto s = ValidateUserns(ns, "config.linux.security_context.namespace_options"); !s.ok()) {
    return s;
  }
  if (auto s =
          ValidateSelinux(lx.security_context().selinux_options(), "config.linux.security_context");
      !s.ok()) {
    return s;
  }
  if (lx.security_context().has_apparmor()) {
    if (auto s = ValidateAppArmor(lx.security_context().apparmor(),
                                  "config.linux.security_context.apparmor", host);
        !s.ok()) {
      return s;
    }
  }
  if (auto s = ValidateSysctls(lx.sysctls(), ns.network() == cri::NODE, ns.ipc() == cri::NODE);
      !s.ok()) {
    return s;
  }
  if (auto s = ValidatePortMappings(config); !s.ok()) return s;
  for (const char* key : {kIngressBandwidth, kEgressBandwidth}) {
    auto it = config.annotations().find(key);
    if (it == config.annotations().end()) continue;
    const std::string field = MapField("config.annotations", key);
    if (auto s = NotLonger(it->second, 64, field); !s.ok()) return s;
    if (auto bw = cni::ParseBandwidth(it->second); !bw.ok()) {
      return Invalid(field, bw.status().message());
    }
  }
  return absl::OkStatus();
}

}  // namespace podshim::agent
