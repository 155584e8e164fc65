// Helpers shared by the cgroup backends (cgroups_common.cc, cgroups_v1.cc,
// cgroups_v2.cc); not part of runtime/cgroups.h.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "runtime/cgroups.h"

namespace podshim::runtime::cgroups_internal {

// --- files (cgroups_common.cc) ----------------------------------------------

bool PathExists(const std::string& path);
bool IsDir(const std::string& path);
// Writes `value` to a cgroup file in one write(2).
absl::Status WriteCgroupFile(const std::string& file, absl::string_view value);
// The file's text, or "" when it does not exist.
absl::StatusOr<std::string> ReadIfPresent(const std::string& file);
// The file's text without surrounding white space.
absl::StatusOr<std::string> ReadTrimmed(const std::string& file);
// The number in `text`, 0 when it is none.
uint64_t ParseUint(absl::string_view text);
// The value of `key` in "key value" lines; 0 when absent.
uint64_t KeyedValue(absl::string_view text, absl::string_view key);
// mkdir of one cgroup directory; an existing one is fine.
absl::Status MakeDir(const std::string& dir);
// The pids in a cgroup.procs file.
absl::StatusOr<std::vector<int>> ReadPids(const std::string& procs_file);

// --- values and checks (cgroups_common.cc) ----------------------------------

// "-1" / "max" for unlimited (<= 0), else the number.
std::string LimitValue(int64_t limit, absl::string_view unlimited);
// INVALID_ARGUMENT unless `size` is a page size name like 2MB or 1GB.
absl::Status CheckHugepageSizeName(absl::string_view size);
// INVALID_ARGUMENT when the hugetlb `file` for `size` does not exist.
absl::Status CheckHugepageFile(absl::string_view size, const std::string& file);
// INVALID_ARGUMENT when memory + swap is set below memory.
absl::Status CheckSwapCoversMemory(const CgroupResources& res);

// --- removal and mounts (cgroups_common.cc) ---------------------------------

// Remove() for both backends: `tops` are the cgroup's directories, one per
// hierarchy.
absl::Status RemoveTrees(const std::vector<std::string>& tops);
// Undoes mountinfo's octal escapes ("\040" is a space).
std::string UnescapeMountField(absl::string_view field);
// `root` without trailing slashes ("/" stays).
std::string TrimRoot(absl::string_view root);

// --- v1 (cgroups_v1.cc) -----------------------------------------------------

// The v1 hierarchies of a fake tree (OpenCgroups with force_version 1).
CgroupV1Hierarchies ScanV1Dirs(const std::string& root);

}  // namespace podshim::runtime::cgroups_internal
