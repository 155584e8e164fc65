#include "image/unpack.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "runtime/unique_fd.h"

namespace podshim::image {
namespace {

using runtime::ErrnoError;
using runtime::UniqueFd;

// Fixed buffers: compressed input, uncompressed output handed to libarchive.
constexpr size_t kInBufSize = size_t{64} << 10;
constexpr size_t kOutBufSize = size_t{128} << 10;
// Longest entry or hard link name accepted (PATH_MAX); also bounds the depth
// of the tree a layer can build.
constexpr size_t kMaxEntryPath = 4096;

constexpr char kWhiteoutPrefix[] = ".wh.";
constexpr char kWhiteoutMetaPrefix[] = ".wh..wh.";
constexpr char kOpaqueMarker[] = ".wh..wh..opq";
constexpr char kOpaqueXattr[] = "trusted.overlay.opaque";

// ---------------------------------------------------------------------------
// Decompression: turns the caller's (compressed) byte source into the
// uncompressed tar stream. Read() returns 0 once at the end of the stream and
// keeps returning 0 after that.

class Decompressor {
 public:
  Decompressor(const LayerReader& read, Compression compression)
      : read_(read), compression_(compression) {}
  Decompressor(const Decompressor&) = delete;
  Decompressor& operator=(const Decompressor&) = delete;
  ~Decompressor() {
    if (zlib_ready_) inflateEnd(&zs_);
    ZSTD_freeDCtx(zstd_);
  }

  absl::Status Init() {
    switch (compression_) {
      case Compression::kNone:
        return absl::OkStatus();
      case Compression::kGzip:
        in_ = std::make_unique<char[]>(kInBufSize);
        // 16 + MAX_WBITS: a gzip header and trailer (not zlib, not raw).
        if (inflateInit2(&zs_, 16 + MAX_WBITS) != Z_OK) {
          return absl::InternalError("gzip: inflateInit2 failed");
        }
        zlib_ready_ = true;
        return absl::OkStatus();
      case Compression::kZstd:
        in_ = std::make_unique<char[]>(kInBufSize);
        zstd_ = ZSTD_createDCtx();
        if (zstd_ == nullptr) return absl::InternalError("zstd: ZSTD_createDCtx failed");
        return absl::OkStatus();
    }
    return absl::InvalidArgumentError("unknown layer compression");
  }

  absl::StatusOr<size_t> Read(char* out, size_t cap) {
    if (done_) return 0;
    absl::StatusOr<size_t> n = 0;
    switch (compression_) {
      case Compression::kNone:
        n = ReadSource(out, cap);
        break;
      case Compression::kGzip:
        n = ReadGzip(out, cap);
        break;
      case Compression::kZstd:
        n = ReadZstd(out, cap);
        break;
    }
    if (n.ok() && *n == 0) done_ = true;
    return n;
  }

 private:
  absl::StatusOr<size_t> ReadSource(char* buf, size_t cap) {
    auto n = read_(buf, cap);
    if (!n.ok()) {
      return absl::Status(n.status().code(),
                          absl::StrCat("read layer blob: ", n.status().message()));
    }
    if (*n > cap) return absl::InternalError("read layer blob: reader returned more than asked");
    return *n;
  }

  // Refills the input buffer once it is used up; sets in_eof_ at the end.
  absl::Status Fill() {
    if (in_pos_ < in_len_ || in_eof_) return absl::OkStatus();
    auto n = ReadSource(in_.get(), kInBufSize);
    if (!n.ok()) return n.status();
    in_pos_ = 0;
    in_len_ = *n;
    if (*n == 0) in_eof_ = true;
    return absl::OkStatus();
  }

  // Gzip, including several concatenated members (as pigz and others write).
  absl::StatusOr<size_t> ReadGzip(char* out, size_t cap) {
    while (true) {
      if (member_done_) {
        if (auto s = Fill(); !s.ok()) return s;
        if (in_pos_ == in_len_) return 0;  // clean end after a complete member
        if (inflateReset(&zs_) != Z_OK) return absl::InternalError("gzip: inflateReset failed");
        member_done_ = false;
      }
      if (auto s = Fill(); !s.ok()) return s;
      const bool at_eof = in_pos_ == in_len_;
      zs_.next_in = reinterpret_cast<Bytef*>(in_.get() + in_pos_);
      zs_.avail_in = static_cast<uInt>(in_len_ - in_pos_);
      zs_.next_out = reinterpret_cast<Bytef*>(out);
      zs_.avail_out = static_cast<uInt>(std::min<size_t>(cap, UINT32_MAX));
      const size_t avail_out = zs_.avail_out;
      int rc = inflate(&zs_, Z_NO_FLUSH);
      in_pos_ = in_len_ - zs_.avail_in;
      const size_t produced = avail_out - zs_.avail_out;
      if (rc == Z_STREAM_END) {
        member_done_ = true;
      } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
        return absl::DataLossError(absl::StrCat("gzip: corrupt stream: ",
                                                zs_.msg != nullptr ? zs_.msg : "inflate failed"));
      }
      if (produced > 0) return produced;
      if (member_done_) continue;
      if (at_eof) return absl::DataLossError("gzip: stream truncated");
    }
  }

  // Zstandard, any number of frames (skippable frames included).
  absl::StatusOr<size_t> ReadZstd(char* out, size_t cap) {
    while (true) {
      if (auto s = Fill(); !s.ok()) return s;
      const bool at_eof = in_pos_ == in_len_;
      ZSTD_inBuffer in{in_.get(), in_len_, in_pos_};
      ZSTD_outBuffer o{out, cap, 0};
      size_t rc = ZSTD_decompressStream(zstd_, &o, &in);
      if (ZSTD_isError(rc)) {
        return absl::DataLossError(absl::StrCat("zstd: corrupt stream: ", ZSTD_getErrorName(rc)));
      }
      const bool progress = in.pos > in_pos_ || o.pos > 0;
      in_pos_ = in.pos;
      // rc == 0: a frame is complete and flushed. A call that neither reads
      // nor writes says nothing new (at a frame boundary it asks for the
      // next frame's header).
      if (progress) zstd_frame_done_ = rc == 0;
      if (o.pos > 0) return o.pos;
      if (at_eof) {
        if (!zstd_frame_done_ && rc != 0) return absl::DataLossError("zstd: stream truncated");
        return 0;
      }
    }
  }

  const LayerReader& read_;
  Compression compression_;
  std::unique_ptr<char[]> in_;
  size_t in_pos_ = 0;
  size_t in_len_ = 0;
  bool in_eof_ = false;
  bool done_ = false;
  z_stream zs_{};
  bool zlib_ready_ = false;
  bool member_done_ = false;
  ZSTD_DCtx* zstd_ = nullptr;
  bool zstd_frame_done_ = false;
};

// The uncompressed stream as libarchive pulls it: every byte handed over is
// hashed and counted first.
struct Stream {
  explicit Stream(Decompressor* s) : source(s) {}
  Decompressor* source;
  Hasher hasher = Hasher::Sha256();
  uint64_t size = 0;
  std::unique_ptr<char[]> buf = std::make_unique<char[]>(kOutBufSize);
  absl::Status error;

  absl::StatusOr<size_t> Pull() {
    auto n = source->Read(buf.get(), kOutBufSize);
    if (!n.ok()) return n;
    hasher.Update(buf.get(), *n);
    size += *n;
    return n;
  }
};

la_ssize_t ArchiveRead(struct archive* a, void* client, const void** out) {
  auto* stream = static_cast<Stream*>(client);
  auto n = stream->Pull();
  if (!n.ok()) {
    stream->error = n.status();
    archive_set_error(a, EIO, "%s", std::string(n.status().message()).c_str());
    return -1;
  }
  *out = stream->buf.get();
  return static_cast<la_ssize_t>(*n);
}

struct ArchiveFree {
  void operator()(struct archive* a) const { archive_read_free(a); }
};

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

// ---------------------------------------------------------------------------
// Extraction into the directory `root_`, entry by entry.

class Extractor {
 public:
  Extractor(int root, const UnpackOptions& options) : root_(root), options_(options) {}

  absl::Status Apply(struct archive* ar, struct archive_entry* e);
  // Sets the directories' times, after everything inside them was written.
  absl::Status Finish();

 private:
  struct Meta {
    uid_t uid = 0;
    gid_t gid = 0;
    mode_t perm = 0;
    std::array<struct timespec, 2> times{};  // atime, mtime
  };

  absl::StatusOr<Meta> ReadMeta(struct archive_entry* e, absl::string_view entry);
  absl::Status CheckXattrs(struct archive_entry* e, absl::string_view entry);
  // `path` names the object for messages; `fd` is open on it (not O_PATH).
  absl::Status SetXattrsFd(int fd, struct archive_entry* e, absl::string_view path);
  absl::Status SetXattrsAt(int parent, const std::string& name, struct archive_entry* e,
                           absl::string_view path);
  absl::Status SetMetaFd(int fd, const Meta& m, struct archive_entry* e, absl::string_view path);
  absl::Status SetMetaAt(int parent, const std::string& name, const Meta& m, bool is_symlink,
                         struct archive_entry* e, absl::string_view path);

  // Opens directory parts[0, n) below the root, one component at a time with
  // O_NOFOLLOW; missing ones are created (0755) when `create`.
  absl::StatusOr<UniqueFd> OpenDir(const std::vector<std::string>& parts, size_t n, bool create,
                                   absl::string_view entry);
  // The parent of `parts` (created if missing), cached for runs of entries
  // in the same directory. Valid until the next call.
  absl::StatusOr<int> Parent(const std::vector<std::string>& parts, absl::string_view entry);
  // Makes room for a non-directory at `name`: unlinks what is there, a
  // directory with its contents. Sets `*was_whiteout` if that was a whiteout.
  absl::Status Clear(int parent, const std::string& name, absl::string_view path,
                     bool* was_whiteout = nullptr);

  absl::Status Whiteout(const std::vector<std::string>& parts, absl::string_view entry);
  absl::Status Directory(int parent, const std::vector<std::string>& parts, struct archive_entry* e,
                         const Meta& m, absl::string_view path);
  absl::Status RegularFile(struct archive* ar, int parent, const std::string& name,
                           struct archive_entry* e, const Meta& m, absl::string_view path);
  absl::Status HardLink(int parent, const std::vector<std::string>& parts, const char* target,
                        absl::string_view entry, absl::string_view path);

  int root_;
  const UnpackOptions& options_;
  std::string cached_key_;
  bool cache_valid_ = false;
  UniqueFd cached_fd_;
  // Directories whose times are set in Finish(): path below the root, times.
  std::vector<std::pair<std::string, std::array<struct timespec, 2>>> dir_times_;
};

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

// ---------------------------------------------------------------------------

absl::StatusOr<UnpackResult> Unpack(const LayerReader& read, Compression compression, int root,
                                    const UnpackOptions& options) {
  Decompressor source(read, compression);
  if (auto s = source.Init(); !s.ok()) return s;
  Stream stream(&source);
  std::unique_ptr<struct archive, ArchiveFree> ar(archive_read_new());
  if (ar == nullptr) return absl::ResourceExhaustedError("archive_read_new failed");
  // Only tar (ustar, pax, GNU) and an empty stream; no libarchive filters:
  // decompression is ours, so the hash sees exactly the uncompressed bytes.
  archive_read_support_format_tar(ar.get());
  archive_read_support_format_empty(ar.get());
  auto archive_status = [&](absl::string_view action) {
    if (!stream.error.ok()) return stream.error;
    const char* msg = archive_error_string(ar.get());
    return absl::DataLossError(
        absl::StrCat(action, ": ", msg != nullptr ? msg : "libarchive error"));
  };
  if (archive_read_open(ar.get(), &stream, nullptr, &ArchiveRead, nullptr) != ARCHIVE_OK) {
    return archive_status("open tar stream");
  }
  Extractor extractor(root, options);
  UnpackResult result;
  while (true) {
    struct archive_entry* e = nullptr;
    int rc = archive_read_next_header(ar.get(), &e);
    if (rc == ARCHIVE_EOF) break;
    if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) {
      return archive_status(absl::StrCat("read tar header after ", result.entries, " entries"));
    }
    ++result.entries;
    if (auto s = extractor.Apply(ar.get(), e); !s.ok()) {
      // A failed read of file data shows up as DATA_LOSS from Apply; prefer
      // the source's own error (gzip corrupt, reader failed) when there is one.
      if (!stream.error.ok()) return WithEntry(archive_entry_pathname(e), stream.error);
      return s;
    }
  }
  // The diffID covers the whole uncompressed stream, also what follows the
  // tar's end-of-archive blocks.
  while (true) {
    auto n = stream.Pull();
    if (!n.ok()) return n.status();
    if (*n == 0) break;
  }
  if (auto s = extractor.Finish(); !s.ok()) return s;
  result.diff_id = stream.hasher.Finish();
  result.uncompressed_size = stream.size;
  if (options.expected_diff_id.has_value() && *options.expected_diff_id != result.diff_id) {
    return absl::DataLossError(absl::StrCat("layer diffID mismatch: expected ",
                                            options.expected_diff_id->String(), ", got ",
                                            result.diff_id.String()));
  }
  return result;
}

LayerReader FileReader(int fd) {
  return [fd](char* buf, size_t cap) -> absl::StatusOr<size_t> {
    while (true) {
      ssize_t n = ::read(fd, buf, cap);
      if (n >= 0) return static_cast<size_t>(n);
      if (errno != EINTR) return ErrnoError(errno, "read", "layer blob");
    }
  };
}

absl::Status Annotate(absl::string_view target, const absl::Status& s) {
  return absl::Status(s.code(), absl::StrCat("unpack layer into `", target, "`: ", s.message()));
}

}  // namespace

absl::StatusOr<UnpackResult> UnpackLayer(const LayerReader& read, Compression compression,
                                         const std::string& target_dir,
                                         const UnpackOptions& options) {
  UniqueFd root(::open(target_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root.valid()) return ErrnoError(errno, "open snapshot directory", target_dir);
  {
    UniqueFd scan(::fcntl(root.get(), F_DUPFD_CLOEXEC, 0));
    DIR* dir = scan.valid() ? ::fdopendir(scan.get()) : nullptr;
    if (dir == nullptr) return ErrnoError(errno, "read snapshot directory", target_dir);
    scan.Release();
    std::unique_ptr<DIR, int (*)(DIR*)> closer(dir, &::closedir);
    while (struct dirent* d = ::readdir(dir)) {  // NOLINT(concurrency-mt-unsafe): private stream
      absl::string_view name = d->d_name;
      if (name != "." && name != "..") {
        return absl::FailedPreconditionError(
            absl::StrCat("unpack layer: target directory `", target_dir, "` is not empty"));
      }
    }
  }
  auto result = Unpack(read, compression, root.get(), options);
  if (!result.ok()) {
    // Nothing of a failed layer is kept; the first error is the one reported.
    (void)RemoveContents(root.get(), target_dir);
    return Annotate(target_dir, result.status());
  }
  return result;
}

absl::StatusOr<UnpackResult> UnpackLayerFile(const std::string& blob_path, Compression compression,
                                             const std::string& target_dir,
                                             const UnpackOptions& options) {
  UniqueFd fd(::open(blob_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoError(errno, "open layer blob", blob_path);
  return UnpackLayer(FileReader(fd.get()), compression, target_dir, options);
}

absl::StatusOr<UnpackResult> UnpackLayerInto(const LayerReader& read, Compression compression,
                                             const std::string& snapshot_dir,
                                             const UnpackOptions& options) {
  std::string final_path = snapshot_dir;
  while (final_path.size() > 1 && final_path.back() == '/') final_path.pop_back();
  const auto [parent, base] = SplitParent(final_path);
  if (base.empty() || base == "." || base == ".." || base == "/") {
    return absl::InvalidArgumentError(
        absl::StrCat("unpack layer: invalid snapshot path `", snapshot_dir, "`"));
  }
  struct stat st {};
  if (::lstat(final_path.c_str(), &st) == 0 && !S_ISDIR(st.st_mode)) {
    return absl::AlreadyExistsError(
        absl::StrCat("unpack layer: `", final_path, "` exists and is not a directory"));
  }
  std::string tmp = absl::StrCat(parent, "/.", base, ".unpack-XXXXXX");
  if (::mkdtemp(tmp.data()) == nullptr) return ErrnoError(errno, "create temp directory", tmp);
  if (::chmod(tmp.c_str(), 0755) != 0) {
    absl::Status s = ErrnoError(errno, "chmod", tmp);
    (void)RemovePath(tmp);
    return s;
  }
  auto result = UnpackLayer(read, compression, tmp, options);
  if (!result.ok()) {
    (void)RemovePath(tmp);
    return result.status();
  }
  if (::rename(tmp.c_str(), final_path.c_str()) != 0) {
    int err = errno;
    (void)RemovePath(tmp);
    if (err == EEXIST || err == ENOTEMPTY) {
      return absl::AlreadyExistsError(
          absl::StrCat("unpack layer: snapshot `", final_path, "` already exists"));
    }
    return ErrnoError(err, absl::StrCat("rename `", tmp, "` to"), final_path);
  }
  return result;
}

absl::StatusOr<UnpackResult> UnpackLayerFileInto(const std::string& blob_path,
                                                 Compression compression,
                                                 const std::string& snapshot_dir,
                                                 const UnpackOptions& options) {
  UniqueFd fd(::open(blob_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoError(errno, "open layer blob", blob_path);
  return UnpackLayerInto(FileReader(fd.get()), compression, snapshot_dir, options);
}

}  // namespace podshim::image
