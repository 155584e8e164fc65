#include "runtime/files.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string_view>
#include <unordered_set>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace podshim::runtime {

absl::Status WriteAll(int fd, absl::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, "write", path);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

absl::Status FsyncDir(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoError(errno, "open", dir);
  if (::fsync(fd.get()) != 0) return ErrnoError(errno, "fsync", dir);
  return absl::OkStatus();
}

absl::Status MakeDirs(const std::string& path, mode_t mode) {
  if (path.empty()) return absl::InvalidArgumentError("mkdir: empty path");
  std::filesystem::path p(path);
  if (p.has_parent_path() && p.parent_path() != p) {
    std::string parent = p.parent_path().string();
    struct stat st {};
    if (::stat(parent.c_str(), &st) != 0) {
      if (errno != ENOENT) return ErrnoError(errno, "stat", parent);
      if (auto s = MakeDirs(parent, 0755); !s.ok()) return s;
    }
  }
  if (::mkdir(path.c_str(), mode) != 0 && errno != EEXIST) return ErrnoError(errno, "mkdir", path);
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return ErrnoError(errno, "stat", path);
  if (!S_ISDIR(st.st_mode)) return ErrnoError(ENOTDIR, "mkdir", path);
  if ((st.st_mode & 07777) != mode && ::chmod(path.c_str(), mode) != 0) {
    return ErrnoError(errno, "chmod", path);
  }
  return absl::OkStatus();
}

namespace {

absl::Status WriteAndRename(const std::string& path, absl::string_view data, mode_t mode,
                            bool durable) {
  std::filesystem::path p(path);
  std::string dir = p.has_parent_path() ? p.parent_path().string() : ".";
  std::string tmp = absl::StrCat(dir, "/.", p.filename().string(), ".tmp-XXXXXX");
  UniqueFd fd(::mkostemp(tmp.data(), O_CLOEXEC));
  if (!fd.valid()) return ErrnoError(errno, "create temp file", tmp);
  auto fail = [&](absl::Status s) {
    ::unlink(tmp.c_str());
    return s;
  };
  if (::fchmod(fd.get(), mode) != 0) return fail(ErrnoError(errno, "chmod", tmp));
  if (auto s = WriteAll(fd.get(), data, tmp); !s.ok()) return fail(s);
  if (durable && ::fsync(fd.get()) != 0) return fail(ErrnoError(errno, "fsync", tmp));
  fd.Reset();
  if (::rename(tmp.c_str(), path.c_str()) != 0) return fail(ErrnoError(errno, "rename", tmp));
  return durable ? FsyncDir(dir) : absl::OkStatus();
}

}  // namespace

absl::Status WriteFileAtomic(const std::string& path, absl::string_view data, mode_t mode) {
  return WriteAndRename(path, data, mode, /*durable=*/true);
}

absl::Status ReplaceFile(const std::string& path, absl::string_view data, mode_t mode) {
  return WriteAndRename(path, data, mode, /*durable=*/false);
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoError(errno, "open", path);
  std::string out;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, "read", path);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

absl::StatusOr<FileLock> FileLock::TryAcquire(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd.valid()) return ErrnoError(errno, "open lock file", path);
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK) return ErrnoError(errno, "lock", path);
    std::string holder = "another process";
    if (auto text = ReadFile(path); text.ok()) {
      int pid = 0;
      if (absl::SimpleAtoi(absl::StripAsciiWhitespace(*text), &pid) && pid > 0) {
        holder = absl::StrCat("process ", pid);
      }
    }
    return absl::FailedPreconditionError(absl::StrCat("lock `", path, "` is held by ", holder));
  }
  std::string pid = absl::StrCat(::getpid(), "\n");
  if (::ftruncate(fd.get(), 0) != 0) return ErrnoError(errno, "truncate", path);
  if (::pwrite(fd.get(), pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    return ErrnoError(errno, "write", path);
  }
  return FileLock(path, std::move(fd));
}

FileLock::~FileLock() {
  // Unlink while still holding the lock, so no other process can lock a file
  // that is about to disappear and think it owns the path.
  if (fd_.valid()) ::unlink(path_.c_str());
}

absl::StatusOr<SocketState> ProbeUnixSocket(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return SocketState::kAbsent;
    return ErrnoError(errno, "stat", path);
  }
  if (!S_ISSOCK(st.st_mode)) return SocketState::kNotSocket;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    return absl::InvalidArgumentError(absl::StrCat("socket path `", path, "` is longer than ",
                                                   sizeof addr.sun_path - 1, " bytes"));
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoError(errno, "socket", path);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    return SocketState::kListening;
  }
  if (errno == ECONNREFUSED) return SocketState::kStale;
  return ErrnoError(errno, "connect", path);
}

namespace {

struct InodeKey {
  dev_t dev;
  ino_t ino;
  bool operator==(const InodeKey&) const = default;
};

struct InodeKeyHash {
  size_t operator()(const InodeKey& k) const { return std::hash<uint64_t>()(k.ino ^ (k.dev << 1)); }
};

// Walks with *at() calls on directory fds so that a path swapped for a
// symlink during the walk is never followed.
absl::Status MeasureDir(int dir_fd, const std::string& path, dev_t dev, TreeUsage& usage,
                        std::unordered_set<InodeKey, InodeKeyHash>& seen) {
  int dup_fd = ::fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
  if (dup_fd < 0) return ErrnoError(errno, "dup", path);
  DIR* dir = ::fdopendir(dup_fd);
  if (dir == nullptr) {
    int err = errno;
    ::close(dup_fd);
    return ErrnoError(err, "opendir", path);
  }
  std::unique_ptr<DIR, int (*)(DIR*)> closer(dir, ::closedir);
  // readdir is safe here: this walk owns its DIR stream (glibc only shares
  // state within one stream).
  while (struct dirent* e = ::readdir(dir)) {  // NOLINT(concurrency-mt-unsafe)
    std::string_view name(e->d_name);
    if (name == "." || name == "..") continue;
    struct stat st {};
    if (::fstatat(dir_fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue;
      return ErrnoError(errno, "stat", path + "/" + e->d_name);
    }
    if (st.st_dev != dev) continue;
    if (!seen.insert({st.st_dev, st.st_ino}).second) continue;
    usage.inodes++;
    usage.bytes += static_cast<uint64_t>(st.st_blocks) * 512;
    if (S_ISDIR(st.st_mode)) {
      std::string child = path + "/" + e->d_name;
      UniqueFd fd(::openat(dir_fd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!fd.valid()) {
        if (errno == ENOENT) continue;
        return ErrnoError(errno, "open", child);
      }
      if (auto s = MeasureDir(fd.get(), child, dev, usage, seen); !s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<TreeUsage> MeasureTree(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) return ErrnoError(errno, "open", path);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return ErrnoError(errno, "stat", path);
  TreeUsage usage;
  usage.inodes = 1;
  usage.bytes = static_cast<uint64_t>(st.st_blocks) * 512;
  std::unordered_set<InodeKey, InodeKeyHash> seen;
  if (auto s = MeasureDir(fd.get(), path, st.st_dev, usage, seen); !s.ok()) return s;
  return usage;
}

absl::Status SetMode(const std::string& path, mode_t mode) {
  if (::chmod(path.c_str(), mode) != 0) return ErrnoError(errno, "chmod", path);
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadRegularFile(const std::string& path, size_t max_bytes) {
  // O_NONBLOCK: opening a FIFO does not wait for a writer.
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoError(errno, "open", path);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return ErrnoError(errno, "stat", path);
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat("`", path, "` is not a regular file"));
  }
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    return absl::OutOfRangeError(absl::StrCat("`", path, "` is ", st.st_size,
                                              " bytes, more than the ", max_bytes, " allowed"));
  }
  std::string out;
  char buf[16384];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError(errno, "read", path);
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > max_bytes) {  // it grew while we read
      return absl::OutOfRangeError(
          absl::StrCat("`", path, "` is more than the ", max_bytes, " bytes allowed"));
    }
  }
  return out;
}

absl::Status MakeMissingDirs(const std::string& path, mode_t mode) {
  if (path.empty() || path[0] != '/') {
    return absl::InvalidArgumentError(absl::StrCat("`", path, "` is not absolute"));
  }
  UniqueFd dir(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!dir.valid()) return ErrnoError(errno, "open", "/");
  std::string walked;
  for (absl::string_view part : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    const std::string name(part);
    walked = absl::StrCat(walked, "/", name);
    if (name == "." || name == "..") {
      return absl::InvalidArgumentError(absl::StrCat("`", path, "` contains `", name, "`"));
    }
    int fd = ::openat(dir.get(), name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
      if (::mkdirat(dir.get(), name.c_str(), mode) != 0 && errno != EEXIST) {
        return ErrnoError(errno, "mkdir", walked);
      }
      fd = ::openat(dir.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      // Made by us just now: the mode asked for, whatever the umask.
      if (fd >= 0 && ::fchmod(fd, mode) != 0) {
        const int err = errno;
        ::close(fd);
        return ErrnoError(err, "chmod", walked);
      }
    }
    if (fd < 0) {
      const int err = errno;
      struct stat st {};
      if ((err == ELOOP || err == ENOTDIR) &&
          ::fstatat(dir.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
          S_ISLNK(st.st_mode)) {
        return absl::FailedPreconditionError(
            absl::StrCat("`", walked, "` is a symlink; podshim does not follow one here"));
      }
      return ErrnoError(err, "open directory", walked);
    }
    dir = UniqueFd(fd);
  }
  return absl::OkStatus();
}

absl::Status RemoveFile(const std::string& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return ErrnoError(errno, "remove", path);
  return absl::OkStatus();
}

absl::Status RenameFile(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) {
    return ErrnoError(errno, "rename", absl::StrCat(from, "` to `", to));
  }
  return absl::OkStatus();
}

absl::Status RemoveTree(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
  if (ec && ec != std::errc::no_such_file_or_directory) {
    return ErrnoError(ec.value(), "remove tree", path);
  }
  return absl::OkStatus();
}

bool PathExists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

bool IsExecutable(const std::string& path) { return ::access(path.c_str(), X_OK) == 0; }

absl::StatusOr<std::vector<std::string>> ListNames(const std::string& dir,
                                                   absl::string_view suffix) {
  std::vector<std::string> out;
  std::error_code ec;
  std::filesystem::directory_iterator it(dir, ec);
  if (ec == std::errc::no_such_file_or_directory) return out;
  for (; !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.size() > suffix.size() && absl::EndsWith(name, suffix)) {
      out.push_back(name.substr(0, name.size() - suffix.size()));
    }
  }
  if (ec) return ErrnoError(ec.value(), "read directory", dir);
  std::sort(out.begin(), out.end());
  return out;
}

absl::StatusOr<std::string> OwnExecutableDir() {
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return ErrnoError(ec.value(), "readlink", "/proc/self/exe");
  return exe.parent_path().string();
}

absl::StatusOr<int64_t> ModTimeNs(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return ErrnoError(errno, "stat", path);
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
}

absl::Status RemoveStaleSocket(const std::string& path) {
  auto state = ProbeUnixSocket(path);
  if (!state.ok()) return state.status();
  switch (*state) {
    case SocketState::kAbsent:
      return absl::OkStatus();
    case SocketState::kListening:
      return absl::FailedPreconditionError(
          absl::StrCat("another process is serving on socket `", path, "`"));
    case SocketState::kNotSocket:
      return absl::FailedPreconditionError(
          absl::StrCat("`", path, "` exists and is not a socket; refusing to remove it"));
    case SocketState::kStale:
      if (::unlink(path.c_str()) != 0 && errno != ENOENT) return ErrnoError(errno, "unlink", path);
      return absl::OkStatus();
  }
  return absl::InternalError("unreachable");
}

}  // namespace podshim::runtime
