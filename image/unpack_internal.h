// Internals of layer unpacking (image/unpack.h) shared by its files: entry
// names and tree removal (unpack_paths.cc), and the Extractor (unpack_extract.cc).
#pragma once

#include <sys/types.h>
#include <time.h>

#include <array>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "image/unpack.h"
#include "runtime/unique_fd.h"

struct archive;
struct archive_entry;

namespace podshim::image::unpack_internal {

// --- removing trees (unpack_paths.cc) ----------------------------------------

// Empties the directory `dirfd`; `what` names it in errors.
absl::Status RemoveContents(int dirfd, absl::string_view what);
absl::Status RemoveAt(int parent, const std::string& name, absl::string_view what);
std::pair<std::string, std::string> SplitParent(const std::string& path);
// RemoveAt of `path` in its parent directory.
absl::Status RemovePath(const std::string& path);

// --- entry names (unpack_paths.cc) -------------------------------------------

std::string Printable(absl::string_view name);
// "layer entry `<entry>`: <what>" with `code`.
absl::Status EntryError(absl::StatusCode code, absl::string_view entry, absl::string_view what);
// `s` with the entry named in front of its message; OK stays OK.
absl::Status WithEntry(absl::string_view entry, const absl::Status& s);
absl::StatusOr<std::vector<std::string>> SplitName(absl::string_view name, absl::string_view entry);
// parts[0, n) joined with '/'.
std::string JoinParts(const std::vector<std::string>& parts, size_t n);
// "/proc/self/fd/<dirfd>/<name>".
std::string ProcPath(int dirfd, const std::string& name);

// --- applying entries (unpack_extract.cc) ------------------------------------

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
  absl::StatusOr<runtime::UniqueFd> OpenDir(const std::vector<std::string>& parts, size_t n,
                                            bool create, absl::string_view entry);
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
  runtime::UniqueFd cached_fd_;
  // Directories whose times are set in Finish(): path below the root, times.
  std::vector<std::pair<std::string, std::array<struct timespec, 2>>> dir_times_;
};

}  // namespace podshim::image::unpack_internal
