#include "agent/validate.h"

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
#include "cni/client.h"
#include "runtime/sysctl.h"

namespace podshim::agent {
namespace {

using StringMap = google::protobuf::Map<std::string, std::string>;

absl::Status Invalid(absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

bool IsControl(unsigned char c) { return c < 0x20 || c == 0x7f; }
bool IsControlOrSpace(unsigned char c) { return IsControl(c) || c == ' '; }

void AppendEscaped(std::string* out, unsigned char c) {
  switch (c) {
    case '\n':
      out->append("\\n");
      return;
    case '\t':
      out->append("\\t");
      return;
    case '\r':
      out->append("\\r");
      return;
    case '\\':
      out->append("\\\\");
      return;
    case '`':
      out->append("\\`");
      return;
    case '"':
      out->append("\\\"");
      return;
    default:
      break;
  }
  if (IsControl(c) || c >= 0x80) {
    absl::StrAppend(out, "\\x", absl::Hex(c, absl::kZeroPad2));
    return;
  }
  out->push_back(static_cast<char>(c));
}

// At most kMaxQuotedBytes characters of `value`, escaped; *cut tells whether
// some of it was left out.
std::string EscapeBounded(absl::string_view value, bool* cut) {
  std::string out;
  size_t i = 0;
  for (; i < value.size() && out.size() < kMaxQuotedBytes; ++i) {
    AppendEscaped(&out, static_cast<unsigned char>(value[i]));
  }
  *cut = i < value.size();
  return out;
}

// `field["key"]`, the key escaped and bounded as in QuoteForError.
std::string MapField(absl::string_view field, absl::string_view key) {
  bool cut = false;
  std::string escaped = EscapeBounded(key, &cut);
  return absl::StrCat(field, "[\"", escaped, cut ? "..." : "", "\"]");
}

std::string DescribeByte(unsigned char c) {
  if (c == ' ') return "a space";
  if (IsControl(c)) {
    std::string e;
    AppendEscaped(&e, c);
    return absl::StrCat("a control character (", e, ")");
  }
  return absl::StrCat("`", std::string(1, static_cast<char>(c)), "`");
}

// The first byte of `s` that `bad` holds for makes an error.
template <typename Pred>
absl::Status RefuseBytes(absl::string_view s, absl::string_view field, Pred bad) {
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (bad(c)) {
      return Invalid(field, absl::StrCat(QuoteForError(s), " contains ", DescribeByte(c)));
    }
  }
  return absl::OkStatus();
}

absl::Status NotLonger(absl::string_view s, size_t max, absl::string_view field) {
  if (s.size() <= max) return absl::OkStatus();
  return Invalid(field, absl::StrCat(s.size(), " bytes, more than the ", max, " allowed"));
}

absl::Status NotMore(size_t count, size_t max, absl::string_view field, absl::string_view what) {
  if (count <= max) return absl::OkStatus();
  return Invalid(field, absl::StrCat(count, " ", what, ", more than the ", max, " allowed"));
}

// A metadata name, namespace or uid: usable in a file name, a name key and
// CNI_ARGS ("K8S_POD_NAME=<name>;...").
absl::Status ValidateName(absl::string_view name, absl::string_view field, bool required) {
  if (name.empty()) {
    return required ? Invalid(field, "must not be empty") : absl::OkStatus();
  }
  if (auto s = NotLonger(name, kMaxNameBytes, field); !s.ok()) return s;
  if (name == "." || name == "..") {
    return Invalid(field, absl::StrCat(QuoteForError(name), " is not valid"));
  }
  return RefuseBytes(name, field, [](unsigned char c) {
    return IsControl(c) || c == '/' || c == ';' || c == '=';
  });
}

size_t MapBytes(const StringMap& m) {
  size_t n = 0;
  for (const auto& [k, v] : m) n += k.size() + v.size();
  return n;
}

absl::Status ObjectMetaSize(size_t bytes, absl::string_view fields) {
  if (bytes <= kMaxObjectMetaBytes) return absl::OkStatus();
  return Invalid(fields, absl::StrCat(bytes, " bytes together, more than the ", kMaxObjectMetaBytes,
                                      " (256 KiB) allowed per object"));
}

// run_as_user, run_as_group and supplemental_groups of a pod's or a
// container's security context.
template <typename SecurityContext>
absl::Status ValidateIds(const SecurityContext& sc, absl::string_view prefix) {
  if (sc.has_run_as_user()) {
    if (auto s =
            ValidateUserId(sc.run_as_user().value(), absl::StrCat(prefix, ".run_as_user.value"));
        !s.ok()) {
      return s;
    }
  }
  if (sc.has_run_as_group()) {
    if (auto s =
            ValidateUserId(sc.run_as_group().value(), absl::StrCat(prefix, ".run_as_group.value"));
        !s.ok()) {
      return s;
    }
  }
  const std::string groups = absl::StrCat(prefix, ".supplemental_groups");
  if (static_cast<size_t>(sc.supplemental_groups_size()) > kMaxSupplementalGroups) {
    return Invalid(groups,
                   absl::StrCat(sc.supplemental_groups_size(), " groups, more than the ",
                                kMaxSupplementalGroups, " the kernel allows (NGROUPS_MAX)"));
  }
  for (int i = 0; i < sc.supplemental_groups_size(); ++i) {
    if (auto s = ValidateUserId(sc.supplemental_groups(i), absl::StrCat(groups, "[", i, "]"));
        !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

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

// A NamespaceMode by name, or its number when it has none.
std::string ModeName(cri::NamespaceMode mode) {
  const std::string& name = cri::NamespaceMode_Name(mode);
  return name.empty() ? absl::StrCat(static_cast<int>(mode)) : name;
}

absl::Status RefuseAppArmor(absl::string_view field, absl::string_view what,
                            const HostSecurity& host) {
  return Invalid(field, absl::StrCat(what, ": podshim cannot enforce AppArmor profiles (",
                                     host.apparmor_enabled ? "it loads and applies none"
                                                           : "AppArmor is not enabled on this node",
                                     "); use Unconfined or leave it unset"));
}

// `field` is "...security_context.apparmor".
absl::Status ValidateAppArmor(const cri::SecurityProfile& p, absl::string_view field,
                              const HostSecurity& host) {
  switch (p.profile_type()) {
    case cri::SecurityProfile::Unconfined:
      return absl::OkStatus();  // nothing to enforce
    case cri::SecurityProfile::RuntimeDefault:
      return RefuseAppArmor(field, "RuntimeDefault", host);
    case cri::SecurityProfile::Localhost:
      return RefuseAppArmor(field, absl::StrCat("Localhost ", QuoteForError(p.localhost_ref())),
                            host);
    default:
      return Invalid(field, absl::StrCat("profile type ", static_cast<int>(p.profile_type()),
                                         " is not RuntimeDefault, Unconfined or Localhost"));
  }
}

// The deprecated container field apparmor_profile: "runtime/default",
// "unconfined" or "localhost/<profile>".
absl::Status ValidateDeprecatedAppArmor(const std::string& name, absl::string_view field,
                                        const HostSecurity& host) {
  if (name.empty() || name == "unconfined") return absl::OkStatus();
  if (name == "runtime/default" || absl::StartsWith(name, "localhost/")) {
    return RefuseAppArmor(field, QuoteForError(name), host);
  }
  return Invalid(field, absl::StrCat(QuoteForError(name),
                                     " is not runtime/default, unconfined or localhost/<profile>"));
}

// `prefix` is "...security_context".
absl::Status ValidateSelinux(const cri::SELinuxOption& o, absl::string_view prefix) {
  const std::pair<const char*, const std::string*> parts[] = {
      {"user", &o.user()}, {"role", &o.role()}, {"type", &o.type()}, {"level", &o.level()}};
  for (const auto& [name, value] : parts) {
    if (value->empty()) continue;
    return Invalid(absl::StrCat(prefix, ".selinux_options.", name),
                   absl::StrCat(QuoteForError(*value),
                                ": podshim applies no SELinux labels (SELinux is not supported); "
                                "leave selinux_options empty"));
  }
  return absl::OkStatus();
}

// `prefix` is "...security_context.namespace_options".
absl::Status ValidateUserns(const cri::NamespaceOption& ns, absl::string_view prefix) {
  if (!ns.has_userns_options()) return absl::OkStatus();
  const auto& u = ns.userns_options();
  const std::string field = absl::StrCat(prefix, ".userns_options");
  if (u.mode() != cri::NODE) {
    return Invalid(field + ".mode",
                   absl::StrCat(ModeName(u.mode()),
                                ": podshim has no user namespace support yet; only NODE (the "
                                "node's user namespace) or unset"));
  }
  if (u.uids_size() > 0 || u.gids_size() > 0) {
    return Invalid(field + (u.uids_size() > 0 ? ".uids" : ".gids"),
                   "id mappings need mode POD, which podshim does not support yet");
  }
  return absl::OkStatus();
}

bool IsMemoryDevice(const runtime::DeviceNode& node) {
  return node.type == 'c' && node.major == 1 &&
         (node.minor == 1 || node.minor == 2 || node.minor == 4);
}
}  // namespace

std::string QuoteForError(absl::string_view value) {
  bool cut = false;
  std::string escaped = EscapeBounded(value, &cut);
  if (!cut) return absl::StrCat("`", escaped, "`");
  return absl::StrCat("`", escaped, "`... (", value.size(), " bytes)");
}

absl::Status ValidateUserId(int64_t id, absl::string_view field) {
  if (id >= 0 && id <= kMaxUserId) return absl::OkStatus();
  return Invalid(field, absl::StrCat(id, " is not a user or group id (0 to ", kMaxUserId, ")"));
}

absl::Status ValidateImageRef(absl::string_view ref, absl::string_view field) {
  if (ref.empty()) return Invalid(field, "must not be empty");
  if (auto s = NotLonger(ref, kMaxImageRefBytes, field); !s.ok()) return s;
  return RefuseBytes(ref, field, IsControlOrSpace);
}

absl::Status ValidateAbsolutePath(absl::string_view path, absl::string_view field) {
  if (auto s = NotLonger(path, kMaxPathBytes, field); !s.ok()) return s;
  if (path.empty() || path[0] != '/') {
    return Invalid(field, absl::StrCat(QuoteForError(path), " is not absolute"));
  }
  if (path.find('\0') != absl::string_view::npos) return Invalid(field, "contains NUL");
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (part == "..") return Invalid(field, absl::StrCat(QuoteForError(path), " contains `..`"));
  }
  return absl::OkStatus();
}

std::string CleanCgroupPath(absl::string_view path) {
  std::string out;
  for (absl::string_view part : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    absl::StrAppend(&out, "/", part);
  }
  return out.empty() ? std::string("/") : out;
}

bool CgroupWithin(absl::string_view a, absl::string_view b) {
  if (b == "/") return true;
  return a == b || (absl::StartsWith(a, b) && a.size() > b.size() && a[b.size()] == '/');
}

absl::Status CheckCgroupParent(absl::string_view parent, absl::string_view own_parent) {
  constexpr absl::string_view kField = "config.linux.cgroup_parent";
  const std::string p = CleanCgroupPath(parent);
  const std::string own = CleanCgroupPath(own_parent);
  if (p == "/") return Invalid(kField, "is the root cgroup: every process of the host is in it");
  if (CgroupWithin(own, p) || CgroupWithin(p, own)) {
    return Invalid(kField,
                   absl::StrCat(QuoteForError(parent), " is podshim's own cgroup parent ", own,
                                " or lies above or below it: the pods podshim makes "
                                "live there"));
  }
  return absl::OkStatus();
}

absl::Status ValidateRelativePath(absl::string_view path, absl::string_view field) {
  if (path.empty()) return absl::OkStatus();
  if (auto s = NotLonger(path, kMaxPathBytes, field); !s.ok()) return s;
  if (path[0] == '/') return Invalid(field, absl::StrCat(QuoteForError(path), " must be relative"));
  if (path.find('\0') != absl::string_view::npos) return Invalid(field, "contains NUL");
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (part == "..") return Invalid(field, absl::StrCat(QuoteForError(path), " contains `..`"));
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
