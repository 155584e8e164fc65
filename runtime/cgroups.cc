#include "runtime/cgroups.h"

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
#include <filesystem>
#include <limits>
#include <optional>
#include <set>
#include <thread>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "runtime/files.h"
#include "runtime/unique_fd.h"

namespace podshim::runtime {
namespace {

// The v1 hierarchies podshim creates cgroups in, and the v2 controllers it
// enables for its cgroups.
constexpr absl::string_view kV1Controllers[] = {"cpu",     "cpuacct", "cpuset",  "memory", "pids",
                                                "hugetlb", "blkio",   "devices", "freezer"};
constexpr absl::string_view kV2Controllers[] = {"cpu", "cpuset", "memory", "pids", "hugetlb", "io"};

// Remove's budget for killing and rmdir, and its pause between tries.
constexpr auto kRemoveTimeout = std::chrono::seconds(2);
constexpr auto kRetryDelay = std::chrono::milliseconds(10);

bool IsV1Controller(absl::string_view name) {
  for (absl::string_view c : kV1Controllers) {
    if (c == name) return true;
  }
  return false;
}

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

// ---------------------------------------------------------------------------
// cgroup v1: one directory tree per hierarchy.

class CgroupV1 final : public CgroupManager {
 public:
  explicit CgroupV1(CgroupV1Hierarchies hierarchies) : hier_(std::move(hierarchies)) {
    for (auto& [controller, dir] : hier_) {
      dir = TrimRoot(dir);
      if (std::find(dirs_.begin(), dirs_.end(), dir) == dirs_.end()) dirs_.push_back(dir);
    }
  }

  int Version() const override { return 1; }

  absl::Status Create(absl::string_view path) override {
    absl::StatusOr<std::string> p = NormalizeCgroupPath(path);
    if (!p.ok()) return p.status();
    const std::string* cpuset = Hierarchy("cpuset");
    for (const std::string& top : dirs_) {
      absl::StatusOr<bool> made = CreateLeaf(top, *p, cpuset != nullptr && top == *cpuset);
      if (!made.ok()) return made.status();
      if (*made) continue;
      std::string dir = top;
      for (absl::string_view part : absl::StrSplit(*p, '/', absl::SkipEmpty())) {
        std::string parent = dir;
        absl::StrAppend(&dir, "/", part);
        if (absl::Status s = MakeDir(dir); !s.ok()) return s;
        if (cpuset == nullptr || top != *cpuset) continue;
        for (const char* file : {"cpuset.cpus", "cpuset.mems"}) {
          if (absl::Status s = InheritCpuset(parent, dir, file); !s.ok()) return s;
        }
      }
    }
    return absl::OkStatus();
  }

  absl::Status Apply(absl::string_view path, const CgroupResources& res) override {
    absl::StatusOr<std::string> p = NormalizeCgroupPath(path);
    if (!p.ok()) return p.status();
    if (!res.unified.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("unified `", res.unified.begin()->first,
                                                     "` for cgroup `", *p,
                                                     "`: cgroup v1 has no unified files"));
    }
    const std::string* hugetlb = Hierarchy("hugetlb");
    for (const auto& [size, limit] : res.hugepage_limits) {
      if (absl::Status s = CheckHugepageSizeName(size); !s.ok()) return s;
      if (hugetlb == nullptr) continue;
      absl::Status s = CheckHugepageFile(size, HugetlbFile(*hugetlb + *p, size));
      if (!s.ok()) return s;
    }
    if (absl::Status s = CheckSwapCoversMemory(res); !s.ok()) return s;

    std::vector<std::pair<std::string, std::string>> writes;  // file → value, in order
    if (const std::string* h = Hierarchy("cpuset")) {
      if (!res.cpuset_cpus.empty()) writes.emplace_back(*h + *p + "/cpuset.cpus", res.cpuset_cpus);
      if (!res.cpuset_mems.empty()) writes.emplace_back(*h + *p + "/cpuset.mems", res.cpuset_mems);
    }
    if (const std::string* h = Hierarchy("cpu")) {
      const std::string dir = *h + *p;
      if (res.cpu_shares.value_or(0) > 0) {
        writes.emplace_back(dir + "/cpu.shares", absl::StrCat(*res.cpu_shares));
      }
      if (res.cpu_period)
        writes.emplace_back(dir + "/cpu.cfs_period_us", absl::StrCat(*res.cpu_period));
      if (res.cpu_quota)
        writes.emplace_back(dir + "/cpu.cfs_quota_us", LimitValue(*res.cpu_quota, "-1"));
    }
    if (const std::string* h = Hierarchy("memory")) {
      absl::Status s = AddMemoryWrites(*h + *p, res, &writes);
      if (!s.ok()) return s;
    }
    if (const std::string* h = Hierarchy("pids"); h != nullptr && res.pids_limit) {
      writes.emplace_back(*h + *p + "/pids.max", LimitValue(*res.pids_limit, "max"));
    }
    if (hugetlb != nullptr) {
      for (const auto& [size, limit] : res.hugepage_limits) {
        writes.emplace_back(HugetlbFile(*hugetlb + *p, size), absl::StrCat(limit));
      }
    }
    for (const auto& [file, value] : writes) {
      if (absl::Status s = WriteCgroupFile(file, value); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

  absl::Status RestrictDevices(absl::string_view path,
                               const std::vector<DeviceRule>& allow) override {
    absl::StatusOr<std::string> p = NormalizeCgroupPath(path);
    if (!p.ok()) return p.status();
    const std::string* h = Hierarchy("devices");
    if (h == nullptr) return absl::OkStatus();
    const std::string dir = *h + *p;
    if (absl::Status s = WriteCgroupFile(dir + "/devices.deny", "a"); !s.ok()) return s;
    for (const DeviceRule& rule : allow) {
      if (absl::Status s = WriteCgroupFile(dir + "/devices.allow", DeviceRuleText(rule)); !s.ok()) {
        return s;
      }
    }
    return absl::OkStatus();
  }

  std::vector<std::string> ProcsFiles(absl::string_view path) const override {
    std::vector<std::string> files;
    absl::StatusOr<std::string> p = NormalizeCgroupPath(path);
    if (!p.ok()) return files;
    for (const std::string& dir : dirs_) files.push_back(dir + *p + "/cgroup.procs");
    return files;
  }

  std::string OomCounterFile(absl::string_view path) const override {
    const std::string* memory = Hierarchy("memory");
    absl::StatusOr<std::string> p = NormalizeCgroupPath(path);
    if (memory == nullptr || !p.ok()) return "";
    return *memory + *p + "/memory.oom_control";
  }

  absl::StatusOr<CgroupStats> Stats(absl::string_view path) const override {
    absl::StatusOr<std::string> p = NormalizeCgroupPath(path);
    if (!p.ok()) return p.status();
    if (!Exists(*p)) return absl::NotFoundError(absl::StrCat("cgroup `", *p, "` does not exist"));
    // Each file read, "" when its controller is not mounted.
    std::map<std::string, std::string> text;
    for (const auto& [controller, file] :
         std::vector<std::pair<const char*, const char*>>{{"cpuacct", "cpuacct.usage"},
                                                          {"memory", "memory.usage_in_bytes"},
                                                          {"memory", "memory.stat"},
                                                          {"memory", "memory.oom_control"},
                                                          {"pids", "pids.current"}}) {
      const std::string* h = Hierarchy(controller);
      if (h == nullptr) continue;
      absl::StatusOr<std::string> t = ReadIfPresent(absl::StrCat(*h, *p, "/", file));
      if (!t.ok()) return t.status();
      text[file] = *std::move(t);
    }
    CgroupStats stats;
    stats.cpu_usage_ns = ParseUint(text["cpuacct.usage"]);
    stats.memory_usage_bytes = ParseUint(text["memory.usage_in_bytes"]);
    const std::string& mstat = text["memory.stat"];
    const uint64_t inactive = KeyedValue(mstat, "total_inactive_file");
    stats.memory_working_set_bytes =
        stats.memory_usage_bytes > inactive ? stats.memory_usage_bytes - inactive : 0;
    stats.memory_rss_bytes = KeyedValue(mstat, "total_rss");
    stats.page_faults = KeyedValue(mstat, "total_pgfault");
    stats.major_page_faults = KeyedValue(mstat, "total_pgmajfault");
    stats.pids_current = ParseUint(text["pids.current"]);
    stats.oom_kills = ParseOomKillCount(text["memory.oom_control"]);
    return stats;
  }

  absl::StatusOr<std::vector<int>> Pids(absl::string_view path) const override {
    absl::StatusOr<std::string> p = NormalizeCgroupPath(path);
    if (!p.ok()) return p.status();
    const std::string* h = Hierarchy("pids");
    if (h == nullptr) h = Hierarchy("memory");
    if (h == nullptr) h = &dirs_.front();
    return ReadPids(*h + *p + "/cgroup.procs");
  }

  absl::Status Remove(absl::string_view path) override {
    absl::StatusOr<std::string> p = NormalizeCgroupPath(path);
    if (!p.ok()) return p.status();
    std::vector<std::string> tops;
    for (const std::string& dir : dirs_) tops.push_back(dir + *p);
    return RemoveTrees(tops);
  }

  bool Exists(absl::string_view path) const override {
    absl::StatusOr<std::string> p = NormalizeCgroupPath(path);
    if (!p.ok()) return false;
    for (const std::string& dir : dirs_) {
      if (IsDir(dir + *p)) return true;
    }
    return false;
  }

 private:
  const std::string* Hierarchy(absl::string_view controller) const {
    auto it = hier_.find(std::string(controller));
    return it == hier_.end() ? nullptr : &it->second;
  }

  static std::string HugetlbFile(const std::string& dir, absl::string_view size) {
    return absl::StrCat(dir, "/hugetlb.", size, ".limit_in_bytes");
  }

  // The common case of Create, a new cgroup under one that exists and is
  // set up: one mkdir, and for cpuset the parent's cpus and mems copied
  // down. False (nothing made) when the leaf exists already, its parent does
  // not, or the parent's cpuset is not set: the level-by-level walk then
  // does, and checks, everything.
  static absl::StatusOr<bool> CreateLeaf(const std::string& top, const std::string& path,
                                         bool is_cpuset) {
    const std::string dir = top + path;
    const std::string parent = top + path.substr(0, path.rfind('/'));
    std::string cpus, mems;
    if (is_cpuset) {
      absl::StatusOr<std::string> c = ReadTrimmed(parent + "/cpuset.cpus");
      absl::StatusOr<std::string> m = ReadTrimmed(parent + "/cpuset.mems");
      if (!c.ok() || !m.ok() || c->empty() || m->empty()) return false;
      cpus = *std::move(c);
      mems = *std::move(m);
    }
    if (::mkdir(dir.c_str(), 0755) != 0) return false;
    if (!is_cpuset) return true;
    for (const auto& [file, value] : {std::pair{"cpuset.cpus", &cpus}, {"cpuset.mems", &mems}}) {
      absl::StatusOr<std::string> own = ReadTrimmed(absl::StrCat(dir, "/", file));
      if (!own.ok()) return own.status();
      if (!own->empty()) continue;  // cgroup.clone_children filled it in
      if (absl::Status s = WriteCgroupFile(absl::StrCat(dir, "/", file), *value); !s.ok()) return s;
    }
    return true;
  }

  // A new cpuset cgroup starts with empty cpus and mems, and no task can join
  // it until they are set: take the parent's.
  static absl::Status InheritCpuset(const std::string& parent, const std::string& dir,
                                    const std::string& file) {
    absl::StatusOr<std::string> own = ReadTrimmed(dir + "/" + file);
    if (!own.ok() || !own->empty()) return own.status();
    absl::StatusOr<std::string> inherited = ReadTrimmed(parent + "/" + file);
    if (!inherited.ok()) return inherited.status();
    return WriteCgroupFile(dir + "/" + file, *inherited);
  }

  // memory.limit_in_bytes <= memory.memsw.limit_in_bytes must hold after each
  // write: a memsw limit going up is written before the memory limit, one
  // going down after it.
  static absl::Status AddMemoryWrites(const std::string& dir, const CgroupResources& res,
                                      std::vector<std::pair<std::string, std::string>>* writes) {
    const std::string memsw_file = dir + "/memory.memsw.limit_in_bytes";
    std::optional<std::pair<std::string, std::string>> memory, memsw;
    if (res.memory_limit_in_bytes) {
      memory.emplace(dir + "/memory.limit_in_bytes", LimitValue(*res.memory_limit_in_bytes, "-1"));
    }
    if (res.memory_swap_limit_in_bytes && PathExists(memsw_file)) {
      memsw.emplace(memsw_file, LimitValue(*res.memory_swap_limit_in_bytes, "-1"));
    }
    bool memsw_first = true;
    if (memory && memsw) {
      absl::StatusOr<std::string> current = ReadTrimmed(memsw_file);
      if (!current.ok()) return current.status();
      int64_t now = 0;
      if (!absl::SimpleAtoi(*current, &now)) {
        return absl::InternalError(absl::StrCat("parse `", memsw_file, "`: `", *current, "`"));
      }
      const int64_t want = *res.memory_swap_limit_in_bytes > 0
                               ? *res.memory_swap_limit_in_bytes
                               : std::numeric_limits<int64_t>::max();
      memsw_first = want >= now;
    }
    if (memsw && memsw_first) writes->push_back(*memsw);
    if (memory) writes->push_back(*memory);
    if (memsw && !memsw_first) writes->push_back(*memsw);
    return absl::OkStatus();
  }

  CgroupV1Hierarchies hier_;
  std::vector<std::string> dirs_;  // distinct hierarchy directories
};

// ---------------------------------------------------------------------------
// cgroup v2: one tree; controllers enabled top-down through subtree_control.

class CgroupV2 final : public CgroupManager {
 public:
  explicit CgroupV2(absl::string_view root) : root_(TrimRoot(root)) {}

  int Version() const override { return 2; }

  absl::Status Create(absl::string_view path) override {
    absl::StatusOr<std::string> p = NormalizeCgroupPath(path);
    if (!p.ok()) return p.status();
    std::string dir = root_;
    for (absl::string_view part : absl::StrSplit(*p, '/', absl::SkipEmpty())) {
      if (absl::Status s = EnableControllers(dir); !s.ok()) return s;
      absl::StrAppend(&dir, "/", part);
      if (absl::Status s = MakeDir(dir); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

  absl::Status Apply(absl::string_view path, const CgroupResources& res) override {
    absl::StatusOr<std::string> p = NormalizeCgroupPath(path);
    if (!p.ok()) return p.status();
    const std::string dir = root_ + *p;
    for (const auto& [key, value] : res.unified) {
      if (key.empty() || key == "." || key == ".." || key.find('/') != std::string::npos ||
          key.find('\0') != std::string::npos) {
        return absl::InvalidArgumentError(
            absl::StrCat("unified key `", key, "` for cgroup `", *p, "` is not a file name"));
      }
    }
    absl::StatusOr<std::set<std::string>> available = Controllers(dir + "/cgroup.controllers");
    if (!available.ok()) return available.status();
    // runc's rule: a key is <controller>.<file> of a controller enabled in
    // this cgroup; and never a cgroup.* file, which moves, kills or freezes
    // processes or enables controllers (podshim's own business).
    for (const auto& [key, value] : res.unified) {
      const size_t dot = key.find('.');
      const std::string controller = key.substr(0, dot);
      if (dot == std::string::npos || controller == "cgroup" || available->count(controller) == 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("unified key `", key, "` for cgroup `", *p,
                         "` is not a file of a controller enabled there (",
                         absl::StrJoin(*available, " "), ")"));
      }
    }
    const bool hugetlb = available->count("hugetlb") > 0;
    for (const auto& [size, limit] : res.hugepage_limits) {
      if (absl::Status s = CheckHugepageSizeName(size); !s.ok()) return s;
      if (!hugetlb) continue;
      if (absl::Status s = CheckHugepageFile(size, HugetlbFile(dir, size)); !s.ok()) return s;
    }
    if (absl::Status s = CheckSwapCoversMemory(res); !s.ok()) return s;
    std::optional<std::string> swap_max;
    if (res.memory_swap_limit_in_bytes && PathExists(dir + "/memory.swap.max")) {
      const int64_t total = *res.memory_swap_limit_in_bytes;
      const int64_t memory = res.memory_limit_in_bytes.value_or(0);
      if (total > 0 && memory <= 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            "memory_swap_limit_in_bytes ", total, " for cgroup `", *p,
            "` needs a memory_limit_in_bytes in the same request (cgroup v2 limits swap alone)"));
      }
      swap_max = total > 0 ? absl::StrCat(total - memory) : "max";
    }

    std::vector<std::pair<std::string, std::string>> writes;  // file → value, in order
    if (!res.cpuset_cpus.empty()) writes.emplace_back(dir + "/cpuset.cpus", res.cpuset_cpus);
    if (!res.cpuset_mems.empty()) writes.emplace_back(dir + "/cpuset.mems", res.cpuset_mems);
    if (res.cpu_shares.value_or(0) > 0) {
      writes.emplace_back(dir + "/cpu.weight",
                          absl::StrCat(SharesToWeight(static_cast<uint64_t>(*res.cpu_shares))));
    }
    if (res.cpu_quota || res.cpu_period) {
      absl::StatusOr<std::string> cpu_max = CpuMax(dir + "/cpu.max", res);
      if (!cpu_max.ok()) return cpu_max.status();
      writes.emplace_back(dir + "/cpu.max", *cpu_max);
    }
    if (res.memory_limit_in_bytes) {
      writes.emplace_back(dir + "/memory.max", LimitValue(*res.memory_limit_in_bytes, "max"));
    }
    if (swap_max) writes.emplace_back(dir + "/memory.swap.max", *swap_max);
    if (res.pids_limit) writes.emplace_back(dir + "/pids.max", LimitValue(*res.pids_limit, "max"));
    if (hugetlb) {
      for (const auto& [size, limit] : res.hugepage_limits) {
        writes.emplace_back(HugetlbFile(dir, size), absl::StrCat(limit));
      }
    }
    // Last, so that they override the fields above as with runc.
    for (const auto& [key, value] : res.unified)
      writes.emplace_back(absl::StrCat(dir, "/", key), value);
    for (const auto& [file, value] : writes) {
      if (absl::Status s = WriteCgroupFile(file, value); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

  absl::Status RestrictDevices(absl::string_view path,
                               const std::vector<DeviceRule>& /*allow*/) override {
    absl::StatusOr<std::string> p = NormalizeCgroupPath(path);
    return p.ok() ? absl::OkStatus() : p.status();
  }

  std::vector<std::string> ProcsFiles(absl::string_view path) const override {
    absl::StatusOr<std::string> p = NormalizeCgroupPath(path);
    if (!p.ok()) return {};
    return {root_ + *p + "/cgroup.procs"};
  }

  std::string OomCounterFile(absl::string_view path) const override {
    absl::StatusOr<std::string> p = NormalizeCgroupPath(path);
    return p.ok() ? root_ + *p + "/memory.events" : "";
  }

  absl::StatusOr<CgroupStats> Stats(absl::string_view path) const override {
    absl::StatusOr<std::string> p = NormalizeCgroupPath(path);
    if (!p.ok()) return p.status();
    const std::string dir = root_ + *p;
    if (!IsDir(dir)) return absl::NotFoundError(absl::StrCat("cgroup `", *p, "` does not exist"));
    std::map<std::string, std::string> text;
    for (const char* file :
         {"cpu.stat", "memory.current", "memory.stat", "memory.events", "pids.current"}) {
      absl::StatusOr<std::string> t = ReadIfPresent(absl::StrCat(dir, "/", file));
      if (!t.ok()) return t.status();
      text[file] = *std::move(t);
    }
    CgroupStats stats;
    stats.cpu_usage_ns = KeyedValue(text["cpu.stat"], "usage_usec") * 1000;
    stats.memory_usage_bytes = ParseUint(text["memory.current"]);
    const std::string& mstat = text["memory.stat"];
    const uint64_t inactive = KeyedValue(mstat, "inactive_file");
    stats.memory_working_set_bytes =
        stats.memory_usage_bytes > inactive ? stats.memory_usage_bytes - inactive : 0;
    stats.memory_rss_bytes = KeyedValue(mstat, "anon");
    stats.page_faults = KeyedValue(mstat, "pgfault");
    stats.major_page_faults = KeyedValue(mstat, "pgmajfault");
    stats.pids_current = ParseUint(text["pids.current"]);
    stats.oom_kills = ParseOomKillCount(text["memory.events"]);
    return stats;
  }

  absl::StatusOr<std::vector<int>> Pids(absl::string_view path) const override {
    absl::StatusOr<std::string> p = NormalizeCgroupPath(path);
    if (!p.ok()) return p.status();
    return ReadPids(root_ + *p + "/cgroup.procs");
  }

  absl::Status Remove(absl::string_view path) override {
    absl::StatusOr<std::string> p = NormalizeCgroupPath(path);
    if (!p.ok()) return p.status();
    const std::string dir = root_ + *p;
    // cgroup.kill (5.14+) kills the whole subtree at once, forks included;
    // RemoveTrees then mops up and waits for the exits.
    if (PathExists(dir + "/cgroup.kill")) {
      absl::Status s = WriteCgroupFile(dir + "/cgroup.kill", "1");
      if (!s.ok() && !absl::IsNotFound(s)) return s;
    }
    return RemoveTrees({dir});
  }

  bool Exists(absl::string_view path) const override {
    absl::StatusOr<std::string> p = NormalizeCgroupPath(path);
    return p.ok() && IsDir(root_ + *p);
  }

 private:
  static std::string HugetlbFile(const std::string& dir, absl::string_view size) {
    return absl::StrCat(dir, "/hugetlb.", size, ".max");
  }

  // The names in a cgroup.controllers / cgroup.subtree_control file.
  static absl::StatusOr<std::set<std::string>> Controllers(const std::string& file) {
    absl::StatusOr<std::string> text = ReadFile(file);
    if (!text.ok()) return text.status();
    return absl::StrSplit(*text, absl::ByAnyChar(" \n"), absl::SkipEmpty());
  }

  // Makes the controllers podshim uses that `dir` offers available to its
  // children.
  static absl::Status EnableControllers(const std::string& dir) {
    absl::StatusOr<std::set<std::string>> available = Controllers(dir + "/cgroup.controllers");
    if (!available.ok()) return available.status();
    absl::StatusOr<std::set<std::string>> enabled = Controllers(dir + "/cgroup.subtree_control");
    if (!enabled.ok()) return enabled.status();
    std::string add;
    for (absl::string_view c : kV2Controllers) {
      const std::string name(c);
      if (available->count(name) > 0 && enabled->count(name) == 0) {
        absl::StrAppend(&add, add.empty() ? "" : " ", "+", name);
      }
    }
    if (add.empty()) return absl::OkStatus();
    return WriteCgroupFile(dir + "/cgroup.subtree_control", add);
  }

  // "quota period" for cpu.max; a field not in `res` keeps its current value.
  static absl::StatusOr<std::string> CpuMax(const std::string& file, const CgroupResources& res) {
    std::string quota = "max", period = "100000";
    if (!res.cpu_quota || !res.cpu_period) {
      absl::StatusOr<std::string> current = ReadTrimmed(file);
      if (!current.ok()) return current.status();
      std::pair<std::string, std::string> fields = absl::StrSplit(*current, ' ');
      quota = fields.first;
      if (!fields.second.empty()) period = fields.second;
    }
    if (res.cpu_quota) quota = LimitValue(*res.cpu_quota, "max");
    if (res.cpu_period) period = absl::StrCat(*res.cpu_period);
    return absl::StrCat(quota, " ", period);
  }

  std::string root_;
};

// The directories of a fake v1 tree named after controllers ("cpu,cpuacct").
CgroupV1Hierarchies ScanV1Dirs(const std::string& root) {
  CgroupV1Hierarchies out;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_directory(ec) || it->is_symlink(ec)) continue;
    const std::string name = it->path().filename().string();
    for (absl::string_view c : absl::StrSplit(name, ',')) {
      if (IsV1Controller(c)) out.emplace(std::string(c), it->path().string());
    }
  }
  return out;
}

}  // namespace

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

CgroupV1Hierarchies ParseCgroupV1Mounts(absl::string_view mountinfo, absl::string_view root) {
  const std::string trimmed = TrimRoot(root);
  const std::string prefix = trimmed == "/" ? trimmed : trimmed + "/";
  CgroupV1Hierarchies out;
  for (absl::string_view line : absl::StrSplit(mountinfo, '\n', absl::SkipEmpty())) {
    // id parent major:minor root mount-point options [optional...] - type source super-options
    std::vector<absl::string_view> f = absl::StrSplit(line, ' ');
    size_t sep = 6;
    while (sep < f.size() && f[sep] != "-") ++sep;
    if (sep + 3 >= f.size() || f[sep + 1] != "cgroup") continue;
    const std::string mount_point = UnescapeMountField(f[4]);
    if (!absl::StartsWith(mount_point, prefix)) continue;
    for (absl::string_view option : absl::StrSplit(f[sep + 3], ',')) {
      if (IsV1Controller(option)) out.emplace(std::string(option), mount_point);
    }
  }
  return out;
}

std::unique_ptr<CgroupManager> NewCgroupV1Manager(CgroupV1Hierarchies hierarchies) {
  return std::make_unique<CgroupV1>(std::move(hierarchies));
}

std::unique_ptr<CgroupManager> NewCgroupV2Manager(const std::string& root) {
  return std::make_unique<CgroupV2>(root);
}

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
