// cgroups for both backends: the shared file and removal helpers, path and
// value checks, favordynmods, device rules and choosing the backend.
#include <fcntl.h>
#include <linux/magic.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "runtime/cgroups.h"
#include "runtime/cgroups_internal.h"
#include "runtime/files.h"
#include "runtime/unique_fd.h"

namespace podshim::runtime {
namespace cgroups_internal {
namespace {

// Remove's budget for killing and rmdir, and its pause between tries.
constexpr auto kRemoveTimeout = std::chrono::seconds(2);
constexpr auto kRetryDelay = std::chrono::milliseconds(10);

}  // namespace

bool PathExists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

bool IsDir(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// The kernel parses each write(2) to a cgroup file on its own, so the value
// goes in one call.
absl::Status WriteCgroupFile(const std::string& file, absl::string_view value) {
  UniqueFd fd(::open(file.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC));
  if (!fd.valid()) return ErrnoError(errno, "open", file);
  ssize_t n;
  do {
    n = ::write(fd.get(), value.data(), value.size());
  } while (n < 0 && errno == EINTR);
  if (n < 0) return ErrnoError(errno, absl::StrCat("write `", value, "` to"), file);
  if (static_cast<size_t>(n) != value.size()) {
    return absl::InternalError(absl::StrCat("short write of `", value, "` to `", file, "`"));
  }
  return absl::OkStatus();
}

// The file's text, or "" when it does not exist (a controller not mounted or
// not enabled).
absl::StatusOr<std::string> ReadIfPresent(const std::string& file) {
  absl::StatusOr<std::string> text = ReadFile(file);
  if (absl::IsNotFound(text.status())) return std::string();
  return text;
}

absl::StatusOr<std::string> ReadTrimmed(const std::string& file) {
  absl::StatusOr<std::string> text = ReadFile(file);
  if (!text.ok()) return text.status();
  return std::string(absl::StripAsciiWhitespace(*text));
}

uint64_t ParseUint(absl::string_view text) {
  uint64_t value = 0;
  return absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &value) ? value : 0;
}

// The value of `key` in a text of "key value" lines (memory.stat, cpu.stat,
// memory.events, memory.oom_control); 0 when absent.
uint64_t KeyedValue(absl::string_view text, absl::string_view key) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(line, absl::MaxSplits(' ', 1));
    if (kv.first == key) return ParseUint(kv.second);
  }
  return 0;
}

absl::Status MakeDir(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0755) == 0 || errno == EEXIST) return absl::OkStatus();
  return ErrnoError(errno, "create cgroup", dir);
}

absl::StatusOr<std::vector<int>> ReadPids(const std::string& procs_file) {
  absl::StatusOr<std::string> text = ReadFile(procs_file);
  if (!text.ok()) return text.status();
  std::vector<int> pids;
  for (absl::string_view line : absl::StrSplit(*text, '\n', absl::SkipWhitespace())) {
    int pid = 0;
    if (!absl::SimpleAtoi(line, &pid) || pid <= 0) {
      return absl::InternalError(absl::StrCat("parse `", procs_file, "`: bad pid `", line, "`"));
    }
    pids.push_back(pid);
  }
  return pids;
}

// "-1" / "max" for unlimited (<= 0), else the number.
std::string LimitValue(int64_t limit, absl::string_view unlimited) {
  return limit <= 0 ? std::string(unlimited) : absl::StrCat(limit);
}

// Page sizes as the kernel names hugetlb files: digits and KB, MB or GB.
absl::Status CheckHugepageSizeName(absl::string_view size) {
  absl::string_view digits = size.size() > 2 ? size.substr(0, size.size() - 2) : "";
  absl::string_view unit = size.size() > 2 ? size.substr(size.size() - 2) : "";
  bool ok = !digits.empty() && (unit == "KB" || unit == "MB" || unit == "GB");
  for (char c : digits) ok = ok && absl::ascii_isdigit(static_cast<unsigned char>(c));
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("hugepage size `", size, "` is not a page size name like 2MB or 1GB"));
}

absl::Status CheckHugepageFile(absl::string_view size, const std::string& file) {
  if (PathExists(file)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("hugepage size `", size, "` is not supported by the kernel (no `", file, "`)"));
}

// Both limits set and finite: memory + swap must cover memory.
absl::Status CheckSwapCoversMemory(const CgroupResources& res) {
  if (res.memory_limit_in_bytes.value_or(0) > 0 && res.memory_swap_limit_in_bytes.value_or(0) > 0 &&
      *res.memory_swap_limit_in_bytes < *res.memory_limit_in_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("memory_swap_limit_in_bytes ", *res.memory_swap_limit_in_bytes,
                     " is below memory_limit_in_bytes ", *res.memory_limit_in_bytes,
                     " (it counts memory + swap)"));
  }
  return absl::OkStatus();
}

namespace {

// Every cgroup directory of the tree at `dir`, children before parents.
void CollectTree(const std::string& dir, std::vector<std::string>* out) {
  std::error_code ec;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_directory(ec) && !it->is_symlink(ec)) CollectTree(it->path().string(), out);
  }
  out->push_back(dir);
}

// SIGKILLs every process listed in the cgroup.procs of `dirs`. Sets *found
// when there was any.
absl::Status KillAll(const std::vector<std::string>& dirs, bool* found) {
  *found = false;
  for (const std::string& dir : dirs) {
    absl::StatusOr<std::vector<int>> pids = ReadPids(dir + "/cgroup.procs");
    if (absl::IsNotFound(pids.status())) continue;
    if (!pids.ok()) return pids.status();
    for (int pid : *pids) {
      if (pid == ::getpid()) {
        return absl::FailedPreconditionError(
            absl::StrCat("cgroup `", dir, "` holds the calling process ", pid, "; not killing it"));
      }
      *found = true;
      if (::kill(pid, SIGKILL) != 0 && errno != ESRCH) {
        return ErrnoError(errno, absl::StrCat("kill process ", pid, " of cgroup"), dir);
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

// Remove() for both backends: `tops` are the cgroup's directories, one per
// hierarchy.
absl::Status RemoveTrees(const std::vector<std::string>& tops) {
  std::vector<std::string> dirs;
  for (const std::string& top : tops) {
    if (IsDir(top)) CollectTree(top, &dirs);
  }
  const auto deadline = std::chrono::steady_clock::now() + kRemoveTimeout;
  for (;;) {
    bool found = false;
    if (absl::Status s = KillAll(dirs, &found); !s.ok()) return s;
    if (!found || std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(kRetryDelay);
  }
  for (const std::string& dir : dirs) {
    while (::rmdir(dir.c_str()) != 0 && errno != ENOENT) {
      // EBUSY: a process still exiting, or one that was forked meanwhile.
      const int err = errno;
      if (err != EBUSY || std::chrono::steady_clock::now() >= deadline) {
        return ErrnoError(err, "remove cgroup", dir);
      }
      bool found = false;
      if (absl::Status s = KillAll({dir}, &found); !s.ok()) return s;
      std::this_thread::sleep_for(kRetryDelay);
    }
  }
  return absl::OkStatus();
}

// Undoes mountinfo's octal escapes ("\040" is a space).
std::string UnescapeMountField(absl::string_view field) {
  std::string out;
  for (size_t i = 0; i < field.size(); ++i) {
    auto octal = [&](size_t j) { return j < field.size() && field[j] >= '0' && field[j] <= '7'; };
    if (field[i] == '\\' && octal(i + 1) && octal(i + 2) && octal(i + 3)) {
      out.push_back(static_cast<char>((field[i + 1] - '0') * 64 + (field[i + 2] - '0') * 8 +
                                      (field[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(field[i]);
    }
  }
  return out;
}

std::string TrimRoot(absl::string_view root) {
  while (root.size() > 1 && root.back() == '/') root.remove_suffix(1);
  return std::string(root);
}
}  // namespace cgroups_internal

using cgroups_internal::KeyedValue;
using cgroups_internal::ScanV1Dirs;
using cgroups_internal::UnescapeMountField;

absl::StatusOr<std::string> NormalizeCgroupPath(absl::string_view path) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("cgroup path `", path, "` ", why));
  };
  if (path.empty() || path.front() != '/') return bad("is not absolute");
  if (path.find('\0') != absl::string_view::npos) return bad("contains a NUL byte");
  std::string out;
  for (absl::string_view part : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    if (part == "." || part == "..") return bad(absl::StrCat("has a `", part, "` component"));
    absl::StrAppend(&out, "/", part);
  }
  if (out.empty()) return bad("names the hierarchy root");
  return out;
}

uint64_t SharesToWeight(uint64_t shares) {
  if (shares == 0) return 0;
  shares = std::clamp<uint64_t>(shares, 2, 262144);
  return 1 + ((shares - 2) * 9999) / 262142;
}

uint64_t ParseOomKillCount(absl::string_view text) { return KeyedValue(text, "oom_kill"); }

FavorDynmodsPlan PlanFavorDynmods(absl::string_view mountinfo) {
  struct MountFlag {
    absl::string_view name;
    unsigned long flag;  // NOLINT(runtime/int): mount(2) takes unsigned long
  };
  static constexpr MountFlag kFlags[] = {{"ro", MS_RDONLY},
                                         {"nosuid", MS_NOSUID},
                                         {"nodev", MS_NODEV},
                                         {"noexec", MS_NOEXEC},
                                         {"relatime", MS_RELATIME},
                                         {"noatime", MS_NOATIME},
                                         {"nodiratime", MS_NODIRATIME},
                                         {"strictatime", MS_STRICTATIME}};
  FavorDynmodsPlan plan;
  bool have_cgroup2 = false;
  for (absl::string_view line : absl::StrSplit(mountinfo, '\n', absl::SkipEmpty())) {
    // id parent major:minor root mount-point options [optional...] - type source super-options
    std::vector<absl::string_view> f = absl::StrSplit(line, ' ');
    size_t sep = 6;
    while (sep < f.size() && f[sep] != "-") ++sep;
    if (sep + 3 >= f.size()) continue;
    const absl::string_view type = f[sep + 1];
    if (type != "cgroup" && type != "cgroup2") continue;
    std::vector<absl::string_view> super = absl::StrSplit(f[sep + 3], ',');
    if (std::find(super.begin(), super.end(), "favordynmods") != super.end()) {
      plan.already_on = true;
    }
    if (type != "cgroup2" || have_cgroup2) continue;
    have_cgroup2 = true;
    plan.target = UnescapeMountField(f[4]);
    for (absl::string_view option : absl::StrSplit(f[5], ',')) {
      for (const MountFlag& m : kFlags) {
        if (option == m.name) plan.mount_flags |= m.flag;
      }
    }
    std::vector<absl::string_view> keep;
    for (absl::string_view option : super) {
      if (option != "rw" && option != "ro" && option != "favordynmods") keep.push_back(option);
    }
    keep.push_back("favordynmods");
    plan.data = absl::StrJoin(keep, ",");
  }
  if (plan.target.empty()) plan.data = "favordynmods";
  return plan;
}

absl::StatusOr<std::string> EnableFavorDynmods(const std::string& scratch_dir) {
  absl::StatusOr<std::string> mountinfo = ReadFile("/proc/self/mountinfo");
  if (!mountinfo.ok()) return mountinfo.status();
  const FavorDynmodsPlan plan = PlanFavorDynmods(*mountinfo);
  if (plan.already_on) return std::string("favordynmods was already on");
  auto refused = [](int err, absl::string_view what) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, " with favordynmods: ", ErrnoName(err),
                     err == EINVAL ? " (the kernel is older than 6.0 or lacks the option)" : ""));
  };
  if (!plan.target.empty()) {
    if (::mount(nullptr, plan.target.c_str(), nullptr, MS_REMOUNT | plan.mount_flags,
                plan.data.c_str()) != 0) {
      return refused(errno, absl::StrCat("remount ", plan.target));
    }
    return absl::StrCat("remounted ", plan.target, " with ", plan.data);
  }
  if (::mkdir(scratch_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return ErrnoError(errno, "mkdir", scratch_dir);
  }
  absl::Status status = absl::OkStatus();
  if (::mount("cgroup2", scratch_dir.c_str(), "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC,
              plan.data.c_str()) != 0) {
    status = refused(errno, absl::StrCat("mount cgroup2 on ", scratch_dir));
  } else if (::umount2(scratch_dir.c_str(), MNT_DETACH) != 0) {
    status = ErrnoError(errno, "umount", scratch_dir);
  }
  ::rmdir(scratch_dir.c_str());
  if (!status.ok()) return status;
  return absl::StrCat("set on the cgroup2 root through a mount on ", scratch_dir);
}

std::string DeviceRuleText(const DeviceRule& rule) {
  auto number = [](int64_t n) { return n < 0 ? std::string("*") : absl::StrCat(n); };
  if (rule.type == 'a') return absl::StrCat("a *:* ", rule.access);
  return absl::StrCat(std::string(1, rule.type), " ", number(rule.major), ":", number(rule.minor),
                      " ", rule.access);
}

std::vector<DeviceRule> DefaultDeviceRules() {
  return {
      {'c', -1, -1, "m"},    {'b', -1, -1, "m"},     // mknod of any node
      {'c', 1, 3, "rwm"},    {'c', 1, 5, "rwm"},     // null, zero
      {'c', 1, 7, "rwm"},    {'c', 1, 8, "rwm"},     // full, random
      {'c', 1, 9, "rwm"},    {'c', 5, 0, "rwm"},     // urandom, tty
      {'c', 5, 1, "rwm"},    {'c', 5, 2, "rwm"},     // console, ptmx
      {'c', 136, -1, "rwm"}, {'c', 10, 200, "rwm"},  // pts, net/tun
  };
}

absl::StatusOr<std::unique_ptr<CgroupManager>> OpenCgroups(const std::string& root,
                                                           int force_version) {
  if (force_version < 0 || force_version > 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("cgroup version ", force_version, " is not 1 or 2"));
  }
  int version = force_version;
  if (version == 0) {
    struct statfs st;
    if (::statfs(root.c_str(), &st) != 0) return ErrnoError(errno, "statfs", root);
    version = st.f_type == static_cast<decltype(st.f_type)>(CGROUP2_SUPER_MAGIC) ? 2 : 1;
  }
  if (version == 2) return NewCgroupV2Manager(root);
  absl::StatusOr<std::string> mountinfo = ReadFile("/proc/self/mountinfo");
  if (!mountinfo.ok()) return mountinfo.status();
  CgroupV1Hierarchies hierarchies = ParseCgroupV1Mounts(*mountinfo, root);
  if (hierarchies.empty() && force_version == 1) hierarchies = ScanV1Dirs(root);
  if (hierarchies.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("no cgroup v1 hierarchy is mounted under `", root, "`"));
  }
  return NewCgroupV1Manager(std::move(hierarchies));
}

}  // namespace podshim::runtime
