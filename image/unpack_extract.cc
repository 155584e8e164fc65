// Applying tar entries to the snapshot directory: metadata and xattrs,
// whiteouts, directories, files, links and nodes (the Extractor).
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "image/unpack_internal.h"
#include "runtime/unique_fd.h"

namespace podshim::image::unpack_internal {
namespace {

using runtime::ErrnoError;
using runtime::UniqueFd;

constexpr char kWhiteoutPrefix[] = ".wh.";
constexpr char kWhiteoutMetaPrefix[] = ".wh..wh.";
constexpr char kOpaqueMarker[] = ".wh..wh..opq";
constexpr char kOpaqueXattr[] = "trusted.overlay.opaque";

}  // namespace

absl::StatusOr<Extractor::Meta> Extractor::ReadMeta(struct archive_entry* e,
                                                    absl::string_view entry) {
  Meta m;
  int64_t uid = archive_entry_uid(e);
  int64_t gid = archive_entry_gid(e);
  // (uid_t)-1 would mean "leave unchanged" to chown.
  if (uid < 0 || uid >= int64_t{UINT32_MAX} || gid < 0 || gid >= int64_t{UINT32_MAX}) {
    return EntryError(absl::StatusCode::kInvalidArgument, entry,
                      absl::StrCat("owner ", uid, ":", gid, " out of range"));
  }
  m.uid = static_cast<uid_t>(uid);
  m.gid = static_cast<gid_t>(gid);
  m.perm = archive_entry_perm(e) & 07777;
  struct timespec mtime {};
  if (archive_entry_mtime_is_set(e)) {
    mtime.tv_sec = archive_entry_mtime(e);
    mtime.tv_nsec = archive_entry_mtime_nsec(e);
  }
  struct timespec atime = mtime;
  if (archive_entry_atime_is_set(e)) {
    atime.tv_sec = archive_entry_atime(e);
    atime.tv_nsec = archive_entry_atime_nsec(e);
  }
  for (struct timespec* t : {&mtime, &atime}) {
    if (t->tv_nsec < 0 || t->tv_nsec > 999999999) t->tv_nsec = 0;
  }
  m.times = {atime, mtime};
  return m;
}

absl::Status Extractor::CheckXattrs(struct archive_entry* e, absl::string_view entry) {
  archive_entry_xattr_reset(e);
  const char* name = nullptr;
  const void* value = nullptr;
  size_t size = 0;
  while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
    absl::string_view n = name != nullptr ? name : "";
    // Overlay's own xattrs would let a layer forge whiteouts, opaque
    // directories or redirects; user.overlay.* is the same for userxattr mounts.
    if (absl::StartsWith(n, "trusted.overlay.") || absl::StartsWith(n, "user.overlay.")) {
      return EntryError(absl::StatusCode::kInvalidArgument, entry,
                        absl::StrCat("xattr `", Printable(n), "` is reserved for overlayfs"));
    }
    if (n.empty() || n.find('.') == absl::string_view::npos) {
      return EntryError(absl::StatusCode::kInvalidArgument, entry,
                        absl::StrCat("invalid xattr name `", Printable(n), "`"));
    }
  }
  return absl::OkStatus();
}

// Xattrs the filesystem cannot store (EOPNOTSUPP) are skipped, as
// containerd does; anything else is an error.
absl::Status Extractor::SetXattrsFd(int fd, struct archive_entry* e, absl::string_view path) {
  archive_entry_xattr_reset(e);
  const char* name = nullptr;
  const void* value = nullptr;
  size_t size = 0;
  while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
    if (::fsetxattr(fd, name, value, size, 0) != 0 && errno != EOPNOTSUPP) {
      return ErrnoError(errno, absl::StrCat("set xattr ", Printable(name), " on"), path);
    }
  }
  return absl::OkStatus();
}

absl::Status Extractor::SetXattrsAt(int parent, const std::string& name, struct archive_entry* e,
                                    absl::string_view path) {
  if (archive_entry_xattr_count(e) == 0) return absl::OkStatus();
  // No fd can be opened on a symlink or device for fsetxattr: go through the
  // verified parent's /proc/self/fd link; the last component is not followed.
  std::string proc = ProcPath(parent, name);
  archive_entry_xattr_reset(e);
  const char* xname = nullptr;
  const void* value = nullptr;
  size_t size = 0;
  while (archive_entry_xattr_next(e, &xname, &value, &size) == ARCHIVE_OK) {
    if (::lsetxattr(proc.c_str(), xname, value, size, 0) != 0 && errno != EOPNOTSUPP) {
      return ErrnoError(errno, absl::StrCat("set xattr ", Printable(xname), " on"), path);
    }
  }
  return absl::OkStatus();
}

// Owner first (chown clears setuid/setgid and file capabilities), then mode,
// then xattrs (security.capability).
absl::Status Extractor::SetMetaFd(int fd, const Meta& m, struct archive_entry* e,
                                  absl::string_view path) {
  if (::fchown(fd, m.uid, m.gid) != 0) return ErrnoError(errno, "chown", path);
  if (::fchmod(fd, m.perm) != 0) return ErrnoError(errno, "chmod", path);
  return SetXattrsFd(fd, e, path);
}

absl::Status Extractor::SetMetaAt(int parent, const std::string& name, const Meta& m,
                                  bool is_symlink, struct archive_entry* e,
                                  absl::string_view path) {
  if (::fchownat(parent, name.c_str(), m.uid, m.gid, AT_SYMLINK_NOFOLLOW) != 0) {
    return ErrnoError(errno, "chown", path);
  }
  // Only called right after creating the node, so `name` is no symlink here.
  if (!is_symlink && ::fchmodat(parent, name.c_str(), m.perm, 0) != 0) {
    return ErrnoError(errno, "chmod", path);
  }
  if (auto s = SetXattrsAt(parent, name, e, path); !s.ok()) return s;
  if (::utimensat(parent, name.c_str(), m.times.data(), AT_SYMLINK_NOFOLLOW) != 0) {
    return ErrnoError(errno, "set times of", path);
  }
  return absl::OkStatus();
}

absl::StatusOr<UniqueFd> Extractor::OpenDir(const std::vector<std::string>& parts, size_t n,
                                            bool create, absl::string_view entry) {
  UniqueFd cur(::fcntl(root_, F_DUPFD_CLOEXEC, 0));
  if (!cur.valid()) return ErrnoError(errno, "dup", "layer root");
  for (size_t i = 0; i < n; ++i) {
    const std::string& c = parts[i];
    if (absl::StartsWith(c, kWhiteoutPrefix)) {
      return EntryError(
          absl::StatusCode::kInvalidArgument, entry,
          absl::StrCat("directory `", Printable(JoinParts(parts, i + 1)), "` has a whiteout name"));
    }
    constexpr int kFlags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    int fd = ::openat(cur.get(), c.c_str(), kFlags);
    if (fd < 0 && errno == ENOENT && create) {
      if (::mkdirat(cur.get(), c.c_str(), 0755) != 0 && errno != EEXIST) {
        return WithEntry(entry, ErrnoError(errno, "mkdir", JoinParts(parts, i + 1)));
      }
      fd = ::openat(cur.get(), c.c_str(), kFlags);
      if (fd >= 0 && ::fchmod(fd, 0755) != 0) {  // the umask may have narrowed it
        int err = errno;
        ::close(fd);
        return WithEntry(entry, ErrnoError(err, "chmod", JoinParts(parts, i + 1)));
      }
    }
    if (fd < 0) {
      int err = errno;
      std::string path = JoinParts(parts, i + 1);
      if (err == ELOOP || err == ENOTDIR) {
        struct stat st {};
        bool link =
            ::fstatat(cur.get(), c.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode);
        return EntryError(absl::StatusCode::kInvalidArgument, entry,
                          link ? absl::StrCat("`", Printable(path),
                                              "` is a symlink; refusing to resolve through it")
                               : absl::StrCat("`", Printable(path), "` is not a directory"));
      }
      return WithEntry(entry, ErrnoError(err, "open directory", path));
    }
    cur.Reset(fd);
  }
  return cur;
}

absl::StatusOr<int> Extractor::Parent(const std::vector<std::string>& parts,
                                      absl::string_view entry) {
  if (parts.size() <= 1) return root_;
  std::string key = JoinParts(parts, parts.size() - 1);
  if (cache_valid_ && key == cached_key_) return cached_fd_.get();
  cache_valid_ = false;
  auto fd = OpenDir(parts, parts.size() - 1, /*create=*/true, entry);
  if (!fd.ok()) return fd.status();
  cached_fd_ = *std::move(fd);
  cached_key_ = std::move(key);
  cache_valid_ = true;
  return cached_fd_.get();
}

absl::Status Extractor::Clear(int parent, const std::string& name, absl::string_view path,
                              bool* was_whiteout) {
  struct stat st {};
  if (::fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return ErrnoError(errno, "stat", path);
  }
  if (was_whiteout != nullptr) *was_whiteout = S_ISCHR(st.st_mode) && st.st_rdev == 0;
  if (S_ISDIR(st.st_mode)) {
    // The cached parent may lie inside the tree; its fd stays open until
    // the next Parent() call, which reopens.
    cache_valid_ = false;
    return RemoveAt(parent, name, path);
  }
  if (::unlinkat(parent, name.c_str(), 0) != 0) return ErrnoError(errno, "unlink", path);
  return absl::OkStatus();
}

absl::Status Extractor::Whiteout(const std::vector<std::string>& parts, absl::string_view entry) {
  const std::string& base = parts.back();
  if (base != kOpaqueMarker && absl::StartsWith(base, kWhiteoutMetaPrefix)) {
    return absl::OkStatus();  // aufs metadata (.wh..wh.plnk, .wh..wh.aufs): ignored
  }
  auto parent = Parent(parts, entry);
  if (!parent.ok()) return parent.status();
  if (base == kOpaqueMarker) {
    std::string dir = parts.size() > 1 ? JoinParts(parts, parts.size() - 1) : ".";
    if (::fsetxattr(*parent, kOpaqueXattr, "y", 1, 0) != 0) {
      return WithEntry(entry, ErrnoError(errno, absl::StrCat("set ", kOpaqueXattr, " on"), dir));
    }
    return absl::OkStatus();
  }
  std::string name = base.substr(strlen(kWhiteoutPrefix));
  if (name.empty() || name == "." || name == "..") {
    return EntryError(absl::StatusCode::kInvalidArgument, entry, "whiteout without a valid name");
  }
  std::string path = JoinParts(parts, parts.size() - 1);
  path = path.empty() ? name : absl::StrCat(path, "/", name);
  struct stat st {};
  if (::fstatat(*parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
    // The OCI spec: a whiteout hides only what lower layers have; what this
    // layer put at the name stays. A non-directory here already hides the
    // lower layers in overlayfs; a directory must be made opaque for that.
    if (!S_ISDIR(st.st_mode)) return absl::OkStatus();
    UniqueFd fd(::openat(*parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd.valid()) return WithEntry(entry, ErrnoError(errno, "open", path));
    if (::fsetxattr(fd.get(), kOpaqueXattr, "y", 1, 0) != 0) {
      return WithEntry(entry, ErrnoError(errno, absl::StrCat("set ", kOpaqueXattr, " on"), path));
    }
    return absl::OkStatus();
  }
  if (errno != ENOENT) return WithEntry(entry, ErrnoError(errno, "stat", path));
  if (::mknodat(*parent, name.c_str(), S_IFCHR | 0, makedev(0, 0)) != 0) {
    return WithEntry(entry, ErrnoError(errno, "create whiteout", path));
  }
  return absl::OkStatus();
}

absl::Status Extractor::Directory(int parent, const std::vector<std::string>& parts,
                                  struct archive_entry* e, const Meta& m, absl::string_view path) {
  const std::string& name = parts.back();
  struct stat st {};
  bool was_whiteout = false;
  bool exists = false;
  if (::fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
    exists = S_ISDIR(st.st_mode);
    if (!exists) {
      if (auto s = Clear(parent, name, path, &was_whiteout); !s.ok()) return s;
    }
  } else if (errno != ENOENT) {
    return ErrnoError(errno, "stat", path);
  }
  if (!exists && ::mkdirat(parent, name.c_str(), 0700) != 0) {
    return ErrnoError(errno, "mkdir", path);
  }
  UniqueFd fd(::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) return ErrnoError(errno, "open", path);
  if (auto s = SetMetaFd(fd.get(), m, e, path); !s.ok()) return s;
  // A directory replacing this layer's whiteout of the same name: the lower
  // layers' directory stays hidden.
  if (was_whiteout && ::fsetxattr(fd.get(), kOpaqueXattr, "y", 1, 0) != 0) {
    return ErrnoError(errno, absl::StrCat("set ", kOpaqueXattr, " on"), path);
  }
  dir_times_.emplace_back(JoinParts(parts, parts.size()), m.times);
  return absl::OkStatus();
}

absl::Status Extractor::RegularFile(struct archive* ar, int parent, const std::string& name,
                                    struct archive_entry* e, const Meta& m,
                                    absl::string_view path) {
  if (auto s = Clear(parent, name, path); !s.ok()) return s;
  UniqueFd fd(
      ::openat(parent, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd.valid()) return ErrnoError(errno, "create", path);
  int64_t end = 0;
  while (true) {
    const void* buf = nullptr;
    size_t size = 0;
    la_int64_t offset = 0;
    int rc = archive_read_data_block(ar, &buf, &size, &offset);
    if (rc == ARCHIVE_EOF) break;
    if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) {
      return absl::DataLossError(absl::StrCat(
          "read data of `", path, "`: ",
          archive_error_string(ar) != nullptr ? archive_error_string(ar) : "libarchive error"));
    }
    const char* p = static_cast<const char*>(buf);
    while (size > 0) {
      ssize_t n = ::pwrite(fd.get(), p, size, offset);
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoError(errno, "write", path);
      }
      p += n;
      size -= static_cast<size_t>(n);
      offset += n;
    }
    end = std::max<int64_t>(end, offset);
  }
  // Sparse files end with a hole.
  if (archive_entry_size_is_set(e) && archive_entry_size(e) > end &&
      ::ftruncate(fd.get(), archive_entry_size(e)) != 0) {
    return ErrnoError(errno, "truncate", path);
  }
  if (auto s = SetMetaFd(fd.get(), m, e, path); !s.ok()) return s;
  if (::futimens(fd.get(), m.times.data()) != 0) return ErrnoError(errno, "set times of", path);
  return absl::OkStatus();
}

absl::Status Extractor::HardLink(int parent, const std::vector<std::string>& parts,
                                 const char* target, absl::string_view entry,
                                 absl::string_view path) {
  auto tparts = SplitName(target, entry);
  if (!tparts.ok()) return tparts.status();
  if (tparts->empty()) {
    return EntryError(absl::StatusCode::kInvalidArgument, entry, "hard link to the layer root");
  }
  if (*tparts == parts) {
    return EntryError(absl::StatusCode::kInvalidArgument, entry, "hard link to itself");
  }
  std::string tpath = JoinParts(*tparts, tparts->size());
  // The target is an earlier entry of this layer: its parents must exist and
  // must not be symlinks. The target itself is not followed (linkat flags 0),
  // so a link to a symlink links the symlink.
  auto tdir = OpenDir(*tparts, tparts->size() - 1, /*create=*/false, entry);
  if (!tdir.ok()) {
    if (absl::IsNotFound(tdir.status())) {
      return EntryError(absl::StatusCode::kInvalidArgument, entry,
                        absl::StrCat("hard link target `", Printable(tpath), "` does not exist"));
    }
    return tdir.status();
  }
  const std::string& tname = tparts->back();
  struct stat st {};
  if (::fstatat(tdir->get(), tname.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    return EntryError(
        absl::StatusCode::kInvalidArgument, entry,
        absl::StrCat("hard link target `", Printable(tpath), "`: ", runtime::ErrnoName(errno)));
  }
  if (S_ISDIR(st.st_mode)) {
    return EntryError(absl::StatusCode::kInvalidArgument, entry,
                      absl::StrCat("hard link target `", Printable(tpath), "` is a directory"));
  }
  if (auto s = Clear(parent, parts.back(), path); !s.ok()) return WithEntry(entry, s);
  if (::linkat(tdir->get(), tname.c_str(), parent, parts.back().c_str(), 0) != 0) {
    return WithEntry(entry, ErrnoError(errno, absl::StrCat("link to `", tpath, "` as"), path));
  }
  return absl::OkStatus();
}

absl::Status Extractor::Apply(struct archive* ar, struct archive_entry* e) {
  const char* raw = archive_entry_pathname(e);
  if (raw == nullptr) return absl::DataLossError("layer entry without a name");
  absl::string_view entry = raw;
  auto split = SplitName(entry, entry);
  if (!split.ok()) return split.status();
  const std::vector<std::string>& parts = *split;
  const mode_t type = archive_entry_filetype(e);
  const char* hardlink = archive_entry_hardlink(e);

  if (!parts.empty() && absl::StartsWith(parts.back(), kWhiteoutPrefix)) {
    return Whiteout(parts, entry);
  }
  if (auto s = CheckXattrs(e, entry); !s.ok()) return s;
  auto meta = ReadMeta(e, entry);
  if (!meta.ok()) return meta.status();

  if (parts.empty()) {
    // "./" or "/": the layer root itself (umoci writes one).
    if (hardlink != nullptr || type != AE_IFDIR) {
      return EntryError(absl::StatusCode::kInvalidArgument, entry,
                        "names the layer root but is not a directory");
    }
    if (auto s = SetMetaFd(root_, *meta, e, "."); !s.ok()) return WithEntry(entry, s);
    dir_times_.emplace_back("", meta->times);
    return absl::OkStatus();
  }

  std::string path = JoinParts(parts, parts.size());
  if (hardlink == nullptr && (type == AE_IFCHR || type == AE_IFBLK) && !options_.allow_devices &&
      !(type == AE_IFCHR && archive_entry_rdev(e) == 0)) {
    return EntryError(absl::StatusCode::kFailedPrecondition, entry,
                      absl::StrCat(type == AE_IFCHR ? "character" : "block",
                                   " device nodes are not allowed in layers"));
  }
  auto parent = Parent(parts, entry);
  if (!parent.ok()) return parent.status();
  const std::string& name = parts.back();

  if (hardlink != nullptr) return HardLink(*parent, parts, hardlink, entry, path);
  absl::Status s;
  switch (type) {
    case AE_IFDIR:
      s = Directory(*parent, parts, e, *meta, path);
      break;
    case AE_IFREG:
      s = RegularFile(ar, *parent, name, e, *meta, path);
      break;
    case AE_IFLNK: {
      const char* target = archive_entry_symlink(e);
      if (target == nullptr || *target == '\0') {
        return EntryError(absl::StatusCode::kInvalidArgument, entry, "symlink without a target");
      }
      // The target is stored as written; it is never followed here.
      s = Clear(*parent, name, path);
      if (s.ok() && ::symlinkat(target, *parent, name.c_str()) != 0) {
        s = ErrnoError(errno, "symlink", path);
      }
      if (s.ok()) s = SetMetaAt(*parent, name, *meta, /*is_symlink=*/true, e, path);
      break;
    }
    case AE_IFIFO:
    case AE_IFCHR:
    case AE_IFBLK: {
      dev_t dev = type == AE_IFIFO ? 0 : archive_entry_rdev(e);
      s = Clear(*parent, name, path);
      if (s.ok() && ::mknodat(*parent, name.c_str(), type | meta->perm, dev) != 0) {
        s = ErrnoError(errno, "mknod", path);
      }
      if (s.ok()) s = SetMetaAt(*parent, name, *meta, /*is_symlink=*/false, e, path);
      break;
    }
    default:
      return EntryError(absl::StatusCode::kInvalidArgument, entry,
                        absl::StrCat("unsupported entry type 0", absl::Hex(type >> 12)));
  }
  return WithEntry(entry, s);
}

absl::Status Extractor::Finish() {
  for (const auto& [path, times] : dir_times_) {
    if (path.empty()) {
      if (::futimens(root_, times.data()) != 0) return ErrnoError(errno, "set times of", ".");
      continue;
    }
    auto parts = SplitName(path, path);
    if (!parts.ok()) return parts.status();
    // A later entry may have replaced the directory; then there is nothing to do.
    auto fd = OpenDir(*parts, parts->size(), /*create=*/false, path);
    if (!fd.ok()) continue;
    if (::futimens(fd->get(), times.data()) != 0) return ErrnoError(errno, "set times of", path);
  }
  return absl::OkStatus();
}

}  // namespace podshim::image::unpack_internal
