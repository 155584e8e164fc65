// Small filesystem helpers for the agent's own state: directories with a
// fixed mode, atomic file replacement, an exclusive lock file, and probing
// a unix socket left behind by an earlier process.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "runtime/unique_fd.h"

namespace podshim::runtime {

// Creates `path` and missing parents. The last component gets `mode` (also
// when it already exists, so a pre-existing state dir is tightened);
// parents that must be created get 0755.
absl::Status MakeDirs(const std::string& path, mode_t mode);

// write(2) until all of `data` is written (EINTR retried); `path` names the
// file in errors.
absl::Status WriteAll(int fd, absl::string_view data, const std::string& path);

// fsync(2) of a directory, so that renames and creations in it are durable.
absl::Status FsyncDir(const std::string& dir);

// Replaces `path` with `data` atomically: write a temp file beside it,
// fsync, rename over `path`, fsync the directory.
absl::Status WriteFileAtomic(const std::string& path, absl::string_view data, mode_t mode = 0600);

// The same without the fsyncs: `path` is whole or absent after a crash of
// the process (the rename is atomic), but after a crash of the machine it may
// be missing or empty. For files whose meaning does not outlive a reboot.
absl::Status ReplaceFile(const std::string& path, absl::string_view data, mode_t mode = 0600);

absl::StatusOr<std::string> ReadFile(const std::string& path);

// Reads `path` only if it is a regular file of at most `max_bytes`: a FIFO,
// a device (/dev/zero) or a directory is FAILED_PRECONDITION and a larger file
// OUT_OF_RANGE, both without blocking or reading it (the open does not wait
// for a FIFO's writer). NOT_FOUND when nothing is there.
absl::StatusOr<std::string> ReadRegularFile(const std::string& path, size_t max_bytes);

// Creates the missing directories of the absolute `path` with `mode`, from
// the root down, never following a symlink on the way (each component is
// opened with O_NOFOLLOW: a symlink is FAILED_PRECONDITION naming it) and
// never changing a directory that exists (its mode, owner, sticky bit).
// For directories a request names (a pod's log directory), unlike MakeDirs.
absl::Status MakeMissingDirs(const std::string& path, mode_t mode);

// unlink(2); a path that is already gone is fine.
absl::Status RemoveFile(const std::string& path);

// rename(2), with both paths in the error.
absl::Status RenameFile(const std::string& from, const std::string& to);

// Removes the tree at `path` (not following symlinks); absent is fine.
absl::Status RemoveTree(const std::string& path);

// Whether `path` names something, following symlinks (a dangling symlink
// names nothing), as std::filesystem::exists.
bool PathExists(const std::string& path);

// Whether this process may execute `path` (access(2) X_OK).
bool IsExecutable(const std::string& path);

// The names in directory `dir` that end in `suffix`, without it, sorted. A
// missing directory has none.
absl::StatusOr<std::vector<std::string>> ListNames(const std::string& dir,
                                                   absl::string_view suffix);

// The directory of this process's executable (/proc/self/exe), e.g. to find
// helper binaries installed beside it.
absl::StatusOr<std::string> OwnExecutableDir();

// The last modification time of `path` in Unix nanoseconds.
absl::StatusOr<int64_t> ModTimeNs(const std::string& path);

// An exclusive advisory lock (flock) on a file, held while this object lives.
class FileLock {
 public:
  // Takes the lock without waiting. FAILED_PRECONDITION when another process
  // holds it; the message then carries the holder's pid as written in the file.
  static absl::StatusOr<FileLock> TryAcquire(const std::string& path);

  FileLock(FileLock&&) = default;
  FileLock& operator=(FileLock&&) = default;
  // Unlinks the file before the lock is released.
  ~FileLock();

  const std::string& path() const { return path_; }

 private:
  FileLock(std::string path, UniqueFd fd) : path_(std::move(path)), fd_(std::move(fd)) {}
  std::string path_;
  UniqueFd fd_;
};

enum class SocketState {
  kAbsent,     // nothing at the path
  kListening,  // a process accepts connections on it
  kStale,      // a socket file nobody listens on
  kNotSocket,  // something else lives at the path
};

// Looks at what is at `path` without changing it.
absl::StatusOr<SocketState> ProbeUnixSocket(const std::string& path);

struct TreeUsage {
  uint64_t bytes = 0;   // allocated bytes (st_blocks * 512), hard links counted once
  uint64_t inodes = 0;  // distinct inodes, the root directory included
};

// Measures the disk usage of the tree at `path` without following symlinks
// or crossing into other filesystems. Entries that vanish while walking are
// skipped.
absl::StatusOr<TreeUsage> MeasureTree(const std::string& path);

// chmod(2), with the path in the error.
absl::Status SetMode(const std::string& path, mode_t mode);

// Removes a stale socket at `path`. FAILED_PRECONDITION if a process is
// listening on it or if it is not a socket.
absl::Status RemoveStaleSocket(const std::string& path);

}  // namespace podshim::runtime
