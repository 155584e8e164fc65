// Layer entry names (splitting, checking, messages) and removing trees
// without following symlinks, for layer unpacking (image/unpack_internal.h).
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "image/unpack_internal.h"
#include "runtime/unique_fd.h"

namespace podshim::image::unpack_internal {
namespace {

using runtime::ErrnoError;
using runtime::UniqueFd;

// Longest entry or hard link name accepted (PATH_MAX); also bounds the depth
// of the tree a layer can build.
constexpr size_t kMaxEntryPath = 4096;

}  // namespace

// ---------------------------------------------------------------------------
// Removing trees without following symlinks and without holding one fd per
// level (a layer can build a deep tree): descend into the first
// subdirectory, come back up through "..".

absl::Status RemoveContents(int dirfd, absl::string_view what) {
  UniqueFd cur(::fcntl(dirfd, F_DUPFD_CLOEXEC, 0));
  if (!cur.valid()) return ErrnoError(errno, "dup directory fd of", what);
  std::vector<std::string> stack;  // names descended into, below `dirfd`
  while (true) {
    UniqueFd scan(::openat(cur.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!scan.valid()) return ErrnoError(errno, "open directory in", what);
    DIR* dir = ::fdopendir(scan.get());
    if (dir == nullptr) return ErrnoError(errno, "fdopendir in", what);
    scan.Release();
    std::unique_ptr<DIR, int (*)(DIR*)> closer(dir, &::closedir);
    std::string subdir;
    while (true) {
      errno = 0;
      // Each DIR stream here is private to this walk.
      struct dirent* d = ::readdir(dir);  // NOLINT(concurrency-mt-unsafe)
      if (d == nullptr) {
        if (errno != 0) return ErrnoError(errno, "readdir in", what);
        break;
      }
      absl::string_view name = d->d_name;
      if (name == "." || name == "..") continue;
      bool is_dir = d->d_type == DT_DIR;
      if (d->d_type == DT_UNKNOWN) {
        struct stat st {};
        if (::fstatat(cur.get(), d->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
          if (errno == ENOENT) continue;
          return ErrnoError(errno, "stat entry in", what);
        }
        is_dir = S_ISDIR(st.st_mode);
      }
      if (is_dir) {
        subdir = d->d_name;
        break;
      }
      if (::unlinkat(cur.get(), d->d_name, 0) != 0 && errno != ENOENT) {
        return ErrnoError(errno, "unlink entry in", what);
      }
    }
    closer.reset();
    if (!subdir.empty()) {
      UniqueFd next(
          ::openat(cur.get(), subdir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!next.valid()) return ErrnoError(errno, "open directory in", what);
      stack.push_back(std::move(subdir));
      cur = std::move(next);
      continue;
    }
    if (stack.empty()) return absl::OkStatus();
    UniqueFd up(::openat(cur.get(), "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!up.valid()) return ErrnoError(errno, "open parent directory in", what);
    if (::unlinkat(up.get(), stack.back().c_str(), AT_REMOVEDIR) != 0) {
      return ErrnoError(errno, "remove directory in", what);
    }
    stack.pop_back();
    cur = std::move(up);
  }
}

// Removes `name` in `parent` whatever it is; a directory with its contents.
absl::Status RemoveAt(int parent, const std::string& name, absl::string_view what) {
  UniqueFd fd(::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT) return absl::OkStatus();
    if (errno != ENOTDIR && errno != ELOOP) return ErrnoError(errno, "open", what);
    if (::unlinkat(parent, name.c_str(), 0) != 0 && errno != ENOENT) {
      return ErrnoError(errno, "unlink", what);
    }
    return absl::OkStatus();
  }
  if (auto s = RemoveContents(fd.get(), what); !s.ok()) return s;
  if (::unlinkat(parent, name.c_str(), AT_REMOVEDIR) != 0) {
    return ErrnoError(errno, "remove directory", what);
  }
  return absl::OkStatus();
}

// The directory part and the last component of `path`: "a/b" -> {"a", "b"},
// "b" -> {".", "b"}, "/b" -> {"/", "b"}. (Built by construction only: GCC 12
// at -O3 reports a false -Wrestrict for assigning a literal after substr.)
std::pair<std::string, std::string> SplitParent(const std::string& path) {
  const std::string::size_type slash = path.find_last_of('/');
  if (slash == std::string::npos) return {".", path};
  if (slash == 0) return {"/", path.substr(1)};
  return {path.substr(0, slash), path.substr(slash + 1)};
}

absl::Status RemovePath(const std::string& path) {
  const auto [parent, name] = SplitParent(path);
  UniqueFd dir(::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir.valid()) return ErrnoError(errno, "open", parent);
  return RemoveAt(dir.get(), name, path);
}

// ---------------------------------------------------------------------------
// Entry names.

// For messages: the entry's name with control and non-ASCII bytes escaped.
std::string Printable(absl::string_view name) { return absl::CHexEscape(name); }

absl::Status EntryError(absl::StatusCode code, absl::string_view entry, absl::string_view what) {
  return absl::Status(code, absl::StrCat("layer entry `", Printable(entry), "`: ", what));
}

absl::Status WithEntry(absl::string_view entry, const absl::Status& s) {
  if (s.ok()) return s;
  return absl::Status(s.code(),
                      absl::StrCat("layer entry `", Printable(entry), "`: ", s.message()));
}

// Splits a tar name into components below the layer root: "" and "." are
// dropped (so "./a", "/a" and "a/" are all "a"), ".." goes up one level and
// is refused where it would leave the root.
absl::StatusOr<std::vector<std::string>> SplitName(absl::string_view name,
                                                   absl::string_view entry) {
  if (name.size() > kMaxEntryPath) {
    return EntryError(absl::StatusCode::kInvalidArgument, entry,
                      absl::StrCat("name longer than ", kMaxEntryPath, " bytes"));
  }
  std::vector<std::string> parts;
  for (absl::string_view c : absl::StrSplit(name, '/')) {
    if (c.empty() || c == ".") continue;
    if (c == "..") {
      if (parts.empty()) {
        return EntryError(absl::StatusCode::kInvalidArgument, entry,
                          absl::StrCat("`", Printable(name), "` escapes the layer root"));
      }
      parts.pop_back();
      continue;
    }
    parts.emplace_back(c);
  }
  return parts;
}

std::string JoinParts(const std::vector<std::string>& parts, size_t n) {
  return absl::StrJoin(parts.begin(), parts.begin() + static_cast<ptrdiff_t>(n), "/");
}

std::string ProcPath(int dirfd, const std::string& name) {
  return absl::StrCat("/proc/self/fd/", dirfd, "/", name);
}

}  // namespace podshim::image::unpack_internal
