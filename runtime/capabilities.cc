// Capabilities, the switch to the container's user, and rlimits.
#include <grp.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <set>
#include <type_traits>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/security.h"
#include "runtime/unique_fd.h"

namespace podshim::runtime {
namespace {

// The highest capability number the running kernel knows (what
// /proc/sys/kernel/cap_last_cap says), probed without needing /proc.
cap_value_t LastCap() {
  static const cap_value_t last = [] {
    cap_value_t c = 0;
    while (c < 63 && ::prctl(PR_CAPBSET_READ, c + 1, 0, 0, 0) >= 0) ++c;
    return c;
  }();
  return last;
}

std::string CapName(cap_value_t value) {
  std::unique_ptr<char, int (*)(void*)> name(cap_to_name(value), &cap_free);
  return name == nullptr ? absl::StrCat("CAP_", value) : absl::AsciiStrToUpper(name.get());
}

bool IsAll(absl::string_view name) { return absl::EqualsIgnoreCase(name, "ALL"); }

// "net_raw", "CAP_NET_RAW", "Cap_Net_Raw" -> CAP_NET_RAW.
absl::StatusOr<cap_value_t> CapValue(absl::string_view name) {
  std::string lower = absl::AsciiStrToLower(name);
  if (!absl::StartsWith(lower, "cap_")) lower.insert(0, "cap_");
  cap_value_t value = 0;
  if (cap_from_name(lower.c_str(), &value) != 0 || value < 0 || value > LastCap()) {
    return absl::InvalidArgumentError(absl::StrCat("unknown capability `", name, "`"));
  }
  return value;
}

std::vector<std::string> SortedNames(const std::set<cap_value_t>& caps) {
  std::vector<std::string> names;
  names.reserve(caps.size());
  for (cap_value_t c : caps) names.push_back(CapName(c));
  std::sort(names.begin(), names.end());
  return names;
}

struct RlimitName {
  const char* name;
  int resource;
};
constexpr RlimitName kRlimits[] = {
    {"RLIMIT_AS", RLIMIT_AS},
    {"RLIMIT_CORE", RLIMIT_CORE},
    {"RLIMIT_CPU", RLIMIT_CPU},
    {"RLIMIT_DATA", RLIMIT_DATA},
    {"RLIMIT_FSIZE", RLIMIT_FSIZE},
    {"RLIMIT_LOCKS", RLIMIT_LOCKS},
    {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},
    {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE},
    {"RLIMIT_NICE", RLIMIT_NICE},
    {"RLIMIT_NOFILE", RLIMIT_NOFILE},
    {"RLIMIT_NPROC", RLIMIT_NPROC},
    {"RLIMIT_RSS", RLIMIT_RSS},
    {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},
    {"RLIMIT_RTTIME", RLIMIT_RTTIME},
    {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
    {"RLIMIT_STACK", RLIMIT_STACK},
};

}  // namespace

std::vector<std::string> DefaultCapabilities() {
  std::vector<std::string> caps = {
      "CAP_CHOWN",   "CAP_DAC_OVERRIDE", "CAP_FSETID",           "CAP_FOWNER",
      "CAP_MKNOD",   "CAP_NET_RAW",      "CAP_SETGID",           "CAP_SETUID",
      "CAP_SETFCAP", "CAP_SETPCAP",      "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
      "CAP_KILL",    "CAP_AUDIT_WRITE"};
  std::sort(caps.begin(), caps.end());
  return caps;
}

namespace {

std::set<cap_value_t> HeldSet() {
  std::set<cap_value_t> held;
  for (cap_value_t c = 0; c <= LastCap(); ++c) {
    if (::prctl(PR_CAPBSET_READ, c, 0, 0, 0) == 1) held.insert(c);
  }
  return held;
}

}  // namespace

std::vector<std::string> HeldCapabilities() { return SortedNames(HeldSet()); }

std::vector<std::string> AllCapabilities() {
  std::vector<std::string> caps;
  for (cap_value_t c = 0; c <= LastCap(); ++c) caps.push_back(CapName(c));
  return caps;
}

absl::StatusOr<std::vector<std::string>> ResolveCapabilities(const CapabilityRequest& req) {
  // "Everything" is what this process can still give: the capabilities in
  // its bounding set (as containerd grants a privileged container the
  // current capabilities). A sandboxed host may lack some.
  std::set<cap_value_t> all = HeldSet();
  if (req.privileged) return SortedNames(all);

  std::set<cap_value_t> caps;
  for (const std::string& name : DefaultCapabilities()) {
    absl::StatusOr<cap_value_t> c = CapValue(name);
    if (c.ok()) caps.insert(*c);  // a kernel too old for one of them just lacks it
  }
  if (std::any_of(req.add.begin(), req.add.end(), IsAll)) caps = all;
  if (std::any_of(req.drop.begin(), req.drop.end(), IsAll)) caps.clear();
  for (const std::string& name : req.add) {
    if (IsAll(name)) continue;
    absl::StatusOr<cap_value_t> c = CapValue(name);
    if (!c.ok()) return c.status();
    caps.insert(*c);
  }
  for (const std::string& name : req.drop) {
    if (IsAll(name)) continue;
    absl::StatusOr<cap_value_t> c = CapValue(name);
    if (!c.ok()) return c.status();
    caps.erase(*c);
  }
  return SortedNames(caps);
}

absl::Status ApplyUserAndCapabilities(const ResolvedUser& user,
                                      const std::vector<std::string>& capabilities,
                                      bool no_new_privs) {
  std::vector<cap_value_t> keep;
  for (const std::string& name : capabilities) {
    absl::StatusOr<cap_value_t> c = CapValue(name);
    if (!c.ok()) return c.status();
    keep.push_back(*c);
  }
  // Keep the permitted set across the uid change; effective is restored below.
  if (::prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) {
    return ErrnoError(errno, "prctl", "PR_SET_KEEPCAPS");
  }
  for (cap_value_t c = 0; c <= LastCap(); ++c) {
    if (std::find(keep.begin(), keep.end(), c) != keep.end()) continue;
    if (::prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0) {
      return ErrnoError(errno, "drop from the bounding set", CapName(c));
    }
  }
  std::vector<gid_t> groups(user.groups.begin(), user.groups.end());
  if (::setgroups(groups.size(), groups.data()) != 0) {
    return ErrnoError(errno, "setgroups", absl::StrJoin(groups, ","));
  }
  if (::setresgid(user.gid, user.gid, user.gid) != 0) {
    return ErrnoError(errno, "setresgid", absl::StrCat(user.gid));
  }
  if (::setresuid(user.uid, user.uid, user.uid) != 0) {
    return ErrnoError(errno, "setresuid", absl::StrCat(user.uid));
  }
  std::unique_ptr<std::remove_pointer_t<cap_t>, int (*)(void*)> caps(cap_init(), &cap_free);
  if (caps == nullptr) return ErrnoError(errno, "cap_init", "capability state");
  if (!keep.empty() &&
      (cap_set_flag(caps.get(), CAP_EFFECTIVE, keep.size(), keep.data(), CAP_SET) != 0 ||
       cap_set_flag(caps.get(), CAP_PERMITTED, keep.size(), keep.data(), CAP_SET) != 0)) {
    return ErrnoError(errno, "cap_set_flag", absl::StrJoin(capabilities, ","));
  }
  if (cap_set_proc(caps.get()) != 0) {
    return ErrnoError(errno, "capset", absl::StrJoin(capabilities, ","));
  }
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) {
    return ErrnoError(errno, "prctl", "PR_CAP_AMBIENT_CLEAR_ALL");
  }
  if (::prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0) {
    return ErrnoError(errno, "prctl", "PR_SET_KEEPCAPS");
  }
  if (no_new_privs && ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    return ErrnoError(errno, "prctl", "PR_SET_NO_NEW_PRIVS");
  }
  return absl::OkStatus();
}

absl::StatusOr<int> RlimitResource(absl::string_view name) {
  for (const RlimitName& r : kRlimits) {
    if (name == r.name) return r.resource;
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown rlimit `", name, "`"));
}

absl::Status ApplyRlimits(const std::vector<Rlimit>& rlimits) {
  std::vector<int> resources;
  for (const Rlimit& r : rlimits) {
    absl::StatusOr<int> resource = RlimitResource(r.type);
    if (!resource.ok()) return resource.status();
    resources.push_back(*resource);
  }
  for (size_t i = 0; i < rlimits.size(); ++i) {
    const struct rlimit limit = {rlimits[i].soft, rlimits[i].hard};
    if (::setrlimit(resources[i], &limit) != 0) {
      return ErrnoError(errno, "setrlimit",
                        absl::StrCat(rlimits[i].type, "=", rlimits[i].soft, ":", rlimits[i].hard));
    }
  }
  return absl::OkStatus();
}

}  // namespace podshim::runtime
