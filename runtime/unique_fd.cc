#include "runtime/unique_fd.h"

#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"

namespace podshim::runtime {

absl::string_view ErrnoName(int err) {
  // strerrorname_np is glibc 2.32+; Debian bookworm ships 2.36.
  const char* name = strerrordesc_np(err) != nullptr ? strerrorname_np(err) : nullptr;
  return name != nullptr ? absl::string_view(name) : absl::string_view("EUNKNOWN");
}

absl::Status ErrnoError(int err, absl::string_view action, absl::string_view object) {
  const char* desc = strerrordesc_np(err);
  return {absl::ErrnoToStatusCode(err),
          absl::StrCat(action, " `", object, "`: ", ErrnoName(err), " (",
                       desc != nullptr ? desc : "unknown", ")")};
}

}  // namespace podshim::runtime
