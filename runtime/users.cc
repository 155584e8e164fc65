// Resolving the container's user against the image's /etc/passwd and /etc/group.
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "runtime/security.h"
#include "runtime/unique_fd.h"

namespace podshim::runtime {
namespace {

constexpr size_t kMaxDatabaseSize = size_t{4} << 20;

// Reads `path` (absolute, inside the rootfs) without leaving the rootfs:
// symlinks and ".." resolve against `rootfs_fd`. A missing file reads as "".
absl::StatusOr<std::string> ReadInRoot(int rootfs_fd, const std::string& path) {
  struct open_how how = {};
  how.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  long fd = -1;
  // EAGAIN: a concurrent rename or mount in the tree; the kernel asks to retry.
  for (int attempt = 0; attempt < 16; ++attempt) {
    fd = ::syscall(SYS_openat2, rootfs_fd, path.c_str(), &how, sizeof(how));
    if (fd >= 0 || (errno != EAGAIN && errno != EINTR)) break;
  }
  if (fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR) return std::string();
    return ErrnoError(errno, "open in the rootfs", path);
  }
  UniqueFd file(static_cast<int>(fd));
  struct stat st = {};
  if (::fstat(file.get(), &st) != 0) return ErrnoError(errno, "stat in the rootfs", path);
  // A masked file (/dev/null bound over it) reads as an empty database.
  if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3)) return std::string();
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat("read `", path, "` in the rootfs: not a regular file"));
  }
  std::string text;
  char buf[16384];
  while (true) {
    ssize_t n = ::read(file.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError(errno, "read in the rootfs", path);
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > kMaxDatabaseSize) {
      return absl::FailedPreconditionError(absl::StrCat(
          "read `", path, "` in the rootfs: larger than ", kMaxDatabaseSize, " bytes"));
    }
  }
  return text;
}

// The meaningful lines of a colon-separated database, split into fields.
std::vector<std::vector<absl::string_view>> Records(absl::string_view text) {
  std::vector<std::vector<absl::string_view>> records;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    records.push_back(absl::StrSplit(line, ':'));
  }
  return records;
}

const PasswdEntry* UserByName(const std::vector<PasswdEntry>& users, absl::string_view name) {
  auto it = std::find_if(users.begin(), users.end(),
                         [&](const PasswdEntry& e) { return e.name == name; });
  return it == users.end() ? nullptr : &*it;
}

const PasswdEntry* UserById(const std::vector<PasswdEntry>& users, uint32_t uid) {
  auto it =
      std::find_if(users.begin(), users.end(), [&](const PasswdEntry& e) { return e.uid == uid; });
  return it == users.end() ? nullptr : &*it;
}

absl::Status UserNotFound(absl::string_view name) {
  return absl::NotFoundError(absl::StrCat("user `", name, "` not found in /etc/passwd"));
}

}  // namespace

std::vector<PasswdEntry> ParsePasswd(absl::string_view text) {
  // name:password:uid:gid:gecos:home:shell
  std::vector<PasswdEntry> entries;
  for (const auto& f : Records(text)) {
    PasswdEntry e;
    if (f.size() < 4 || f[0].empty() || !absl::SimpleAtoi(f[2], &e.uid) ||
        !absl::SimpleAtoi(f[3], &e.gid)) {
      continue;
    }
    e.name = std::string(f[0]);
    if (f.size() > 5) e.home = std::string(f[5]);
    entries.push_back(std::move(e));
  }
  return entries;
}

std::vector<GroupEntry> ParseGroup(absl::string_view text) {
  // name:password:gid:member,member
  std::vector<GroupEntry> entries;
  for (const auto& f : Records(text)) {
    GroupEntry e;
    if (f.size() < 3 || f[0].empty() || !absl::SimpleAtoi(f[2], &e.gid)) continue;
    e.name = std::string(f[0]);
    if (f.size() > 3) {
      for (absl::string_view m : absl::StrSplit(f[3], ',', absl::SkipWhitespace())) {
        e.members.emplace_back(absl::StripAsciiWhitespace(m));
      }
    }
    entries.push_back(std::move(e));
  }
  return entries;
}

absl::StatusOr<ResolvedUser> ResolveUser(int rootfs_fd, const UserSpec& spec) {
  absl::StatusOr<std::string> passwd_text = ReadInRoot(rootfs_fd, "/etc/passwd");
  if (!passwd_text.ok()) return passwd_text.status();
  absl::StatusOr<std::string> group_text = ReadInRoot(rootfs_fd, "/etc/group");
  if (!group_text.ok()) return group_text.status();
  const std::vector<PasswdEntry> users = ParsePasswd(*passwd_text);
  const std::vector<GroupEntry> groups = ParseGroup(*group_text);

  ResolvedUser out;
  const PasswdEntry* entry = nullptr;
  std::optional<uint32_t> gid = spec.gid;
  if (spec.uid.has_value()) {
    out.uid = *spec.uid;
    entry = UserById(users, out.uid);
  } else if (!spec.username.empty()) {
    entry = UserByName(users, spec.username);
    if (entry == nullptr) return UserNotFound(spec.username);
    out.uid = entry->uid;
  } else if (!spec.image_user.empty()) {
    std::pair<absl::string_view, absl::string_view> parts =
        absl::StrSplit(spec.image_user, absl::MaxSplits(':', 1));
    const bool has_group = spec.image_user.find(':') != std::string::npos;
    if (parts.first.empty() || (has_group && parts.second.empty())) {
      return absl::InvalidArgumentError(
          absl::StrCat("image user `", spec.image_user, "`: expected user[:group]"));
    }
    if (absl::SimpleAtoi(parts.first, &out.uid)) {
      entry = UserById(users, out.uid);
    } else {
      entry = UserByName(users, parts.first);
      if (entry == nullptr) return UserNotFound(parts.first);
      out.uid = entry->uid;
    }
    uint32_t group_id = 0;
    if (!has_group) {
      // gid from passwd below
    } else if (absl::SimpleAtoi(parts.second, &group_id)) {
      if (!gid.has_value()) gid = group_id;
    } else {
      auto it = std::find_if(groups.begin(), groups.end(),
                             [&](const GroupEntry& g) { return g.name == parts.second; });
      if (it == groups.end()) {
        return absl::NotFoundError(
            absl::StrCat("group `", parts.second, "` not found in /etc/group"));
      }
      if (!gid.has_value()) gid = it->gid;
    }
  }
  out.gid = gid.has_value() ? *gid : (entry != nullptr ? entry->gid : 0);
  if (entry != nullptr && !entry->home.empty()) out.home = entry->home;

  auto add_group = [&out](uint32_t g) {
    if (std::find(out.groups.begin(), out.groups.end(), g) == out.groups.end()) {
      out.groups.push_back(g);
    }
  };
  add_group(out.gid);
  if (entry != nullptr) {
    for (const GroupEntry& g : groups) {
      if (std::find(g.members.begin(), g.members.end(), entry->name) != g.members.end()) {
        add_group(g.gid);
      }
    }
  }
  for (uint32_t g : spec.supplemental_groups) add_group(g);
  return out;
}

}  // namespace podshim::runtime
