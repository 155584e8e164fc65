// Facts about the node that request checks need: whether AppArmor is on, and
// what a device path is (runtime/security.h).
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cerrno>

#include "absl/status/status.h"
#include "runtime/files.h"
#include "runtime/security.h"

namespace podshim::runtime {

bool AppArmorEnabled(const std::string& path) {
  auto text = ReadFile(path);
  return text.ok() && !text->empty() && (*text)[0] == 'Y';
}

absl::StatusOr<DeviceNode> StatDevice(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    const int err = errno;
    const absl::Status s = ErrnoError(err, "stat", path);
    if (err == ENOTDIR) return absl::NotFoundError(s.message());
    return s;
  }
  DeviceNode node;
  if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
    node.type = S_ISCHR(st.st_mode) ? 'c' : 'b';
    node.major = static_cast<int64_t>(major(st.st_rdev));
    node.minor = static_cast<int64_t>(minor(st.st_rdev));
    node.kind = S_ISCHR(st.st_mode) ? "character device" : "block device";
  } else if (S_ISREG(st.st_mode)) {
    node.kind = "regular file";
  } else if (S_ISDIR(st.st_mode)) {
    node.kind = "directory";
  } else if (S_ISFIFO(st.st_mode)) {
    node.kind = "FIFO";
  } else if (S_ISSOCK(st.st_mode)) {
    node.kind = "socket";
  } else {
    node.kind = "not a device";
  }
  return node;
}

}  // namespace podshim::runtime
