// Field checks shared by the pod and the container rules (validate_pod.cc,
// validate_container.cc): bytes, lengths, names, metadata sizes, user ids and
// the security-context parts that pods and containers have alike. Internal to
// agent/validate*.cc; everything else includes agent/validate.h.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "agent/validate.h"

namespace podshim::agent::fields {

using StringMap = google::protobuf::Map<std::string, std::string>;

// INVALID_ARGUMENT "<field>: <what>".
absl::Status Invalid(absl::string_view field, absl::string_view what);

bool IsControl(unsigned char c);
bool IsControlOrSpace(unsigned char c);
// "field[\"key\"]" with the key quoted for an error.
std::string MapField(absl::string_view field, absl::string_view key);
// A byte as an error names it ("a newline", "byte 0x01", "`/`").
std::string DescribeByte(unsigned char c);

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

absl::Status NotLonger(absl::string_view s, size_t max, absl::string_view field);
absl::Status NotMore(size_t count, size_t max, absl::string_view field, absl::string_view what);
// A metadata name, namespace or uid: usable in a file name, a name key and
// CNI_ARGS ("K8S_POD_NAME=<name>;...").
absl::Status ValidateName(absl::string_view name, absl::string_view field, bool required);
size_t MapBytes(const StringMap& m);
// Labels and annotations together, as the API server's 256 KiB limit.
absl::Status ObjectMetaSize(size_t bytes, absl::string_view fields);

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

absl::Status ValidateAppArmor(const cri::SecurityProfile& p, absl::string_view field,
                              const HostSecurity& host);
absl::Status ValidateDeprecatedAppArmor(const std::string& name, absl::string_view field,
                                        const HostSecurity& host);
absl::Status ValidateSelinux(const cri::SELinuxOption& o, absl::string_view prefix);
absl::Status ValidateUserns(const cri::NamespaceOption& ns, absl::string_view prefix);

}  // namespace podshim::agent::fields
