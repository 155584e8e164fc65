#include "runtime/rootfs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "runtime/unique_fd.h"

namespace podshim::runtime {
namespace {

// What an image layer has at one path.
enum class Entry { kNone, kDir, kOpaqueDir, kHides };

absl::StatusOr<Entry> EntryAt(const std::string& path, struct stat* st) {
  if (::lstat(path.c_str(), st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return Entry::kNone;
    return ErrnoError(errno, "stat image layer entry", path);
  }
  // A whiteout (0/0 character device), a file or a symlink hides whatever
  // the layers below have at this path.
  if (!S_ISDIR(st->st_mode)) return Entry::kHides;
  char value[2];
  ssize_t n = ::lgetxattr(path.c_str(), "trusted.overlay.opaque", value, sizeof(value));
  return n == 1 && value[0] == 'y' ? Entry::kOpaqueDir : Entry::kDir;
}

// Whether `path` has extended attributes a copy-up would copy: any but
// overlayfs's own (trusted.overlay.*), which it never copies.
absl::StatusOr<bool> HasCopiedXattrs(const std::string& path) {
  std::string names(1024, '\0');
  ssize_t n = ::llistxattr(path.c_str(), names.data(), names.size());
  if (n < 0 && errno == ERANGE) {
    n = ::llistxattr(path.c_str(), nullptr, 0);
    if (n > 0) {
      names.resize(static_cast<size_t>(n));
      n = ::llistxattr(path.c_str(), names.data(), names.size());
    }
  }
  if (n < 0) {
    if (errno == ENOTSUP) return false;
    return ErrnoError(errno, "list extended attributes of", path);
  }
  names.resize(static_cast<size_t>(n));
  for (absl::string_view name : absl::StrSplit(names, '\0', absl::SkipEmpty())) {
    if (!absl::StartsWith(name, "trusted.overlay.")) return true;
  }
  return false;
}

bool IsWhiteout(const struct stat& st) { return S_ISCHR(st.st_mode) && st.st_rdev == 0; }

// The path's components, or none when it is not a clean absolute path.
std::vector<std::string> Components(absl::string_view path) {
  if (!absl::StartsWith(path, "/")) return {};
  std::vector<std::string> parts = absl::StrSplit(path, '/', absl::SkipEmpty());
  for (const std::string& p : parts) {
    if (p == "." || p == "..") return {};
  }
  return parts;
}

}  // namespace

absl::StatusOr<bool> PrepareMountTarget(const std::vector<std::string>& lower,
                                        const std::string& upper, absl::string_view path,
                                        bool is_dir) {
  const std::vector<std::string> parts = Components(path);
  if (parts.empty() || lower.empty()) return false;
  struct DirAttr {
    mode_t mode;
    uid_t uid;
    gid_t gid;
  };
  std::vector<DirAttr> parents;
  // The layers whose directory at the current prefix shows in the merged
  // view, topmost first: down to the first opaque one, or to a layer whose
  // entry there is not a directory.
  std::vector<size_t> visible;
  for (size_t i = 0; i < lower.size(); ++i) visible.push_back(i);
  std::string rel;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    absl::StrAppend(&rel, "/", parts[i]);
    std::vector<size_t> next;
    for (size_t layer : visible) {
      struct stat st {};
      const std::string at = lower[layer] + rel;
      auto entry = EntryAt(at, &st);
      if (!entry.ok()) return entry.status();
      if (*entry == Entry::kNone) continue;
      if (*entry == Entry::kHides) break;
      if (next.empty()) {  // the topmost directory gives the merged one its attributes
        auto xattrs = HasCopiedXattrs(at);
        if (!xattrs.ok()) return xattrs.status();
        if (*xattrs) return false;  // a copy-up would copy them; not done here
        parents.push_back({st.st_mode & 07777, st.st_uid, st.st_gid});
      }
      next.push_back(layer);
      if (*entry == Entry::kOpaqueDir) break;
    }
    if (next.empty()) return false;  // missing, or not a directory in the image
    visible = std::move(next);
  }
  absl::StrAppend(&rel, "/", parts.back());
  for (size_t layer : visible) {
    struct stat st {};
    auto entry = EntryAt(lower[layer] + rel, &st);
    if (!entry.ok()) return entry.status();
    if (*entry == Entry::kNone) continue;
    if (IsWhiteout(st)) break;  // deleted by a layer: not there
    return false;               // the image has it: the start binds onto it
  }

  std::string at = upper;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    absl::StrAppend(&at, "/", parts[i]);
    if (::mkdir(at.c_str(), 0700) != 0) {
      if (errno != EEXIST) return ErrnoError(errno, "mkdir in writable layer", at);
      struct stat st {};
      if (::lstat(at.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return false;
      continue;  // made for an earlier target
    }
    // Owner first: chown may clear the set-id bits that chmod then sets.
    if (::lchown(at.c_str(), parents[i].uid, parents[i].gid) != 0 ||
        ::chmod(at.c_str(), parents[i].mode) != 0) {
      return ErrnoError(errno, "set owner and mode in writable layer", at);
    }
  }
  absl::StrAppend(&at, "/", parts.back());
  // The modes the start gives the targets it makes (mount_plan.cc).
  if (is_dir) {
    if (::mkdir(at.c_str(), 0755) != 0) {
      if (errno == EEXIST) return false;
      return ErrnoError(errno, "mkdir in writable layer", at);
    }
    if (::chmod(at.c_str(), 0755) != 0) return ErrnoError(errno, "chmod", at);
    return true;
  }
  UniqueFd fd(::open(at.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0644));
  if (!fd.valid()) {
    if (errno == EEXIST) return false;
    return ErrnoError(errno, "create in writable layer", at);
  }
  if (::fchmod(fd.get(), 0644) != 0) return ErrnoError(errno, "chmod", at);
  return true;
}

absl::StatusOr<int> PrepareMountTargets(const LaunchSpec& spec) {
  int made = 0;
  for (const MountSpec& m : spec.mounts) {
    const std::string& dest = m.destination;
    bool skip = false;
    for (const char* fs : {"/dev", "/proc", "/sys"}) {
      skip |= dest == fs || absl::StartsWith(dest, absl::StrCat(fs, "/"));
    }
    if (skip) continue;
    struct stat st {};
    if (::stat(m.source.c_str(), &st) != 0) continue;  // the start reports it
    auto done = PrepareMountTarget(spec.rootfs.lower, spec.rootfs.upper, dest, S_ISDIR(st.st_mode));
    if (!done.ok()) return done.status();
    if (*done) ++made;
  }
  return made;
}

}  // namespace podshim::runtime
