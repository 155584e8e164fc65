// The cgroup v2 backend: one tree, controllers enabled top-down through
// cgroup.subtree_control.
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "runtime/cgroups.h"
#include "runtime/cgroups_internal.h"
#include "runtime/files.h"

namespace podshim::runtime {
namespace cgroups_internal {
namespace {

// The v2 controllers podshim enables for its cgroups.
constexpr absl::string_view kV2Controllers[] = {"cpu", "cpuset", "memory", "pids", "hugetlb", "io"};

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

}  // namespace
}  // namespace cgroups_internal

std::unique_ptr<CgroupManager> NewCgroupV2Manager(const std::string& root) {
  return std::make_unique<cgroups_internal::CgroupV2>(root);
}

}  // namespace podshim::runtime
