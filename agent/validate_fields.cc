// Field checks shared by the pod and the container rules (validate_fields.h),
// and the public ones of agent/validate.h that are not about pods or
// containers alone.
#include "agent/validate_fields.h"

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
namespace fields {
namespace {
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

}  // namespace

absl::Status Invalid(absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

bool IsControl(unsigned char c) { return c < 0x20 || c == 0x7f; }
bool IsControlOrSpace(unsigned char c) { return IsControl(c) || c == ' '; }

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

namespace {

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

}  // namespace

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

}  // namespace fields

using namespace fields;  // NOLINT(google-build-using-namespace): this file's own helpers

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

}  // namespace podshim::agent
