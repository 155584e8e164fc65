// The cgroup v1 backend (one directory tree per hierarchy) and reading the
// v1 hierarchies from mountinfo.
#include <sys/stat.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "runtime/cgroups.h"
#include "runtime/cgroups_internal.h"

namespace podshim::runtime {
namespace cgroups_internal {
namespace {

// The v1 hierarchies podshim creates cgroups in.
constexpr absl::string_view kV1Controllers[] = {"cpu",     "cpuacct", "cpuset",  "memory", "pids",
                                                "hugetlb", "blkio",   "devices", "freezer"};

bool IsV1Controller(absl::string_view name) {
  for (absl::string_view c : kV1Controllers) {
    if (c == name) return true;
  }
  return false;
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

}  // namespace

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

}  // namespace cgroups_internal

using cgroups_internal::IsV1Controller;
using cgroups_internal::TrimRoot;
using cgroups_internal::UnescapeMountField;

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
  return std::make_unique<cgroups_internal::CgroupV1>(std::move(hierarchies));
}

}  // namespace podshim::runtime
