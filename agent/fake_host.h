// Fakes of the orchestration's narrow interfaces (agent/host.h), for unit
// tests: they keep in memory what the real machine, CNI and image store would
// have made, log every call, and can be told to fail. Nothing here touches
// the kernel; the tests give PodRuntime a temporary state directory.
#pragma once

#include <sys/socket.h>

#include <algorithm>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "agent/host.h"
#include "runtime/files.h"

namespace podshim::agent::testing {

class FakeCgroups final : public runtime::CgroupManager {
 public:
  int Version() const override { return 2; }
  absl::Status Create(absl::string_view path) override {
    absl::MutexLock lock(&mu);
    made.insert(std::string(path));
    return absl::OkStatus();
  }
  absl::Status Apply(absl::string_view path, const runtime::CgroupResources& res) override {
    absl::MutexLock lock(&mu);
    if (!fail_apply.ok()) return fail_apply;
    applied[std::string(path)] = res;
    return absl::OkStatus();
  }
  absl::Status RestrictDevices(absl::string_view,
                               const std::vector<runtime::DeviceRule>&) override {
    return absl::OkStatus();
  }
  std::vector<std::string> ProcsFiles(absl::string_view path) const override {
    return {absl::StrCat("/fake-cgroup", path, "/cgroup.procs")};
  }
  std::string OomCounterFile(absl::string_view) const override { return ""; }
  absl::StatusOr<runtime::CgroupStats> Stats(absl::string_view path) const override {
    absl::MutexLock lock(&mu);
    if (!made.contains(std::string(path))) return absl::NotFoundError(path);
    runtime::CgroupStats st;
    st.memory_usage_bytes = 4096;
    return st;
  }
  absl::StatusOr<std::vector<int>> Pids(absl::string_view path) const override {
    absl::MutexLock lock(&mu);
    auto it = pids.find(std::string(path));
    return it == pids.end() ? std::vector<int>{} : it->second;
  }
  // The cgroup and everything below it.
  absl::Status Remove(absl::string_view path) override {
    absl::MutexLock lock(&mu);
    removed.push_back(std::string(path));
    const std::string below = absl::StrCat(path, "/");
    std::erase_if(made,
                  [&](const std::string& p) { return p == path || absl::StartsWith(p, below); });
    return absl::OkStatus();
  }
  bool Exists(absl::string_view path) const override {
    absl::MutexLock lock(&mu);
    return made.contains(std::string(path));
  }

  std::set<std::string> Made() const {
    absl::MutexLock lock(&mu);
    return made;
  }

  mutable absl::Mutex mu;
  std::set<std::string> made ABSL_GUARDED_BY(mu);
  std::vector<std::string> removed ABSL_GUARDED_BY(mu);
  std::map<std::string, runtime::CgroupResources> applied ABSL_GUARDED_BY(mu);
  std::map<std::string, std::vector<int>> pids ABSL_GUARDED_BY(mu);
  absl::Status fail_apply ABSL_GUARDED_BY(mu);
};

// A machine whose pods are directories and whose containers are numbers. A
// started container runs until Exit (or a signal, with exit_on_signal) ends
// it: its monitor's exit file is written and the exit watcher called.
class FakeMachine final : public Machine {
 public:
  runtime::CgroupManager& cgroups() override { return cgroups_; }
  bool AppArmorEnabled() override { return false; }

  absl::StatusOr<runtime::PodResources> SetUpPod(const runtime::PodSetupRequest& req) override {
    Record(absl::StrCat("SetUpPod ", req.dir, " ", req.cgroup, req.keep_cgroup ? " keep" : ""));
    {
      absl::MutexLock lock(&mu_);
      if (!fail_setup.ok()) return fail_setup;
    }
    if (auto s = runtime::MakeDirs(req.dir, 0711); !s.ok()) return s;
    (void)cgroups_.Create(req.cgroup);
    runtime::PodResources res;
    res.dir = req.dir;
    if (!req.host_network) res.net_ns = req.dir + "/netns";
    res.hostname = req.hostname;
    absl::MutexLock lock(&mu_);
    if (!res.net_ns.empty()) pinned_.insert(res.net_ns);
    return res;
  }
  absl::Status StopPod(const std::string& dir, int, const std::string& cgroup) override {
    Record(absl::StrCat("StopPod ", dir, " ", cgroup));
    if (on_stop_pod) std::exchange(on_stop_pod, nullptr)();  // once, before the cgroup goes
    if (!cgroup.empty()) (void)cgroups_.Remove(cgroup);
    absl::MutexLock lock(&mu_);
    pinned_.erase(dir + "/netns");
    return absl::OkStatus();
  }
  absl::Status RemovePod(const std::string& dir, int infra_pid,
                         const std::string& cgroup) override {
    Record(absl::StrCat("RemovePod ", dir, " ", cgroup));
    if (!cgroup.empty()) (void)cgroups_.Remove(cgroup);
    {
      absl::MutexLock lock(&mu_);
      pinned_.erase(dir + "/netns");
    }
    (void)infra_pid;
    return runtime::RemoveTree(dir);
  }
  bool IsNamespacePinned(const std::string& path) override {
    absl::MutexLock lock(&mu_);
    return pinned_.contains(path);
  }

  absl::StatusOr<runtime::DeviceNode> StatDevice(const std::string& path) override {
    return absl::NotFoundError(path);
  }
  absl::Status PrepareMountTargets(const runtime::LaunchSpec&) override { return absl::OkStatus(); }
  absl::StatusOr<runtime::StartReport> StartContainer(const std::string& bundle,
                                                      const std::string& id, const std::string&,
                                                      absl::Duration,
                                                      const std::function<void()>&) override {
    Record(absl::StrCat("StartContainer ", id));
    absl::MutexLock lock(&mu_);
    if (!fail_start.ok()) return fail_start;
    runtime::StartReport report;
    report.ok = true;
    report.pid = next_pid_++;
    report.start_time = static_cast<uint64_t>(report.pid) * 10;  // as if ticks after boot
    report.monitor_pid = next_pid_++;
    report.monitor_start_time = static_cast<uint64_t>(report.monitor_pid) * 10;
    running_[report.pid] = {bundle, report.monitor_pid};
    alive_[report.monitor_pid] = report.monitor_start_time;
    return report;
  }
  std::optional<runtime::RecoveredStart> RecoverStart(const std::string&, absl::Duration,
                                                      const std::function<void(int)>&) override {
    return std::nullopt;
  }
  absl::StatusOr<runtime::ExitStatus> ReadExitFile(const std::string& bundle) override {
    absl::MutexLock lock(&mu_);
    auto it = exits_.find(bundle);
    if (it == exits_.end()) return absl::NotFoundError(bundle);
    return it->second;
  }
  absl::Status WatchExit(int pid, uint64_t start_time, std::function<void()> on_exit) override {
    {
      absl::MutexLock lock(&mu_);
      if (AliveLocked(pid, start_time)) {
        watches_[pid] = std::move(on_exit);
        return absl::OkStatus();
      }
    }
    on_exit();  // gone already
    return absl::OkStatus();
  }
  bool ProcessAlive(int pid, uint64_t start_time) override {
    absl::MutexLock lock(&mu_);
    return AliveLocked(pid, start_time);
  }
  absl::Status Signal(int pid, uint64_t start_time, int sig) override {
    Record(absl::StrCat("Signal ", pid, "@", start_time, " ", sig));
    bool exit;
    {
      absl::MutexLock lock(&mu_);
      exit = exit_on_signal && running_.contains(pid);
    }
    if (exit) Exit(pid, 128 + sig, "Error");
    return absl::OkStatus();
  }
  void KillAndReap(const std::vector<int>& pids, absl::Duration) override {
    Record(absl::StrCat("KillAndReap ", absl::StrJoin(pids, ",")));
  }
  absl::StatusOr<runtime::ExecResult> Exec(const std::string&, int pid, uint64_t start_time,
                                           const std::vector<std::string>& argv,
                                           absl::Duration) override {
    runtime::ExecResult r;
    r.out = absl::StrCat("pid ", pid, "@", start_time, ": ", absl::StrJoin(argv, " "));
    return r;
  }
  absl::StatusOr<std::unique_ptr<runtime::ExecSession>> StartExec(
      const std::string&, int pid, uint64_t start_time, const std::vector<std::string>& argv,
      const runtime::ExecStdio&) override {
    Record(absl::StrCat("StartExec ", pid, "@", start_time, ": ", absl::StrJoin(argv, " ")));
    return absl::UnimplementedError("the fake machine runs no streaming exec");
  }
  absl::StatusOr<std::unique_ptr<runtime::AttachSession>> Attach(
      const std::string& bundle, const runtime::AttachStdio&) override {
    Record(absl::StrCat("Attach ", bundle));
    return absl::UnimplementedError("the fake machine attaches to nothing");
  }
  absl::StatusOr<runtime::UniqueFd> SocketIn(const std::string& net_ns, int family) override {
    Record(absl::StrCat("SocketIn ", net_ns, family == AF_INET6 ? " v6" : ""));
    return absl::UnimplementedError("the fake machine makes no sockets");
  }
  absl::Status ReopenLog(const std::string&, int pid, uint64_t start_time, const std::string&,
                         absl::Duration) override {
    Record(absl::StrCat("ReopenLog ", pid, "@", start_time));
    absl::MutexLock lock(&mu_);
    if (!AliveLocked(pid, start_time)) return absl::FailedPreconditionError("monitor gone");
    return absl::OkStatus();
  }
  absl::StatusOr<runtime::TreeUsage> MeasureTree(const std::string&) override {
    return runtime::TreeUsage{8192, 2};
  }

  // The container whose init is `pid` ends with `code` (its monitor writes
  // the exit file unless `reason` is empty, then exits).
  void Exit(int pid, int code, const std::string& reason) {
    std::function<void()> cb;
    {
      absl::MutexLock lock(&mu_);
      auto it = running_.find(pid);
      if (it == running_.end()) return;
      if (!reason.empty()) {
        runtime::ExitStatus e;
        e.exit_code = code;
        e.reason = reason;
        e.finished_at_ns = 1;
        exits_[it->second.bundle] = e;
      }
      const int monitor = it->second.monitor_pid;
      alive_.erase(monitor);
      running_.erase(it);
      if (auto w = watches_.find(monitor); w != watches_.end()) {
        cb = std::move(w->second);
        watches_.erase(w);
      }
    }
    if (cb) cb();
  }

  std::vector<std::string> Calls() const {
    absl::MutexLock lock(&mu_);
    return calls_;
  }
  // The calls whose text starts with `prefix`.
  std::vector<std::string> Calls(absl::string_view prefix) const {
    std::vector<std::string> out;
    for (const auto& c : Calls()) {
      if (absl::StartsWith(c, prefix)) out.push_back(c);
    }
    return out;
  }
  int Running() const {
    absl::MutexLock lock(&mu_);
    return static_cast<int>(running_.size());
  }

  FakeCgroups& fake_cgroups() { return cgroups_; }
  // The monitor `pid` ended unseen (no exit file, no watch: podshimd was
  // away) and another process now has its pid.
  void ReusePid(int pid) {
    absl::MutexLock lock(&mu_);
    for (auto it = running_.begin(); it != running_.end(); ++it) {
      if (it->second.monitor_pid == pid) {
        running_.erase(it);
        break;
      }
    }
    alive_[pid] = static_cast<uint64_t>(pid) * 10 + 1;
  }
  // podshimd went away: its exit watches with it (what runs stays).
  void ForgetWatches() {
    absl::MutexLock lock(&mu_);
    watches_.clear();
  }

  // Set by the tests before the calls they affect.
  absl::Status fail_setup;
  absl::Status fail_start;
  bool exit_on_signal = true;
  std::function<void()> on_stop_pod;  // runs inside the next StopPod

 private:
  bool AliveLocked(int pid, uint64_t start_time) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = alive_.find(pid);
    return it != alive_.end() && (start_time == 0 || it->second == start_time);
  }
  void Record(std::string call) {
    absl::MutexLock lock(&mu_);
    calls_.push_back(std::move(call));
  }

  struct Proc {
    std::string bundle;
    int monitor_pid = 0;
  };
  FakeCgroups cgroups_;
  mutable absl::Mutex mu_;
  std::vector<std::string> calls_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> pinned_ ABSL_GUARDED_BY(mu_);
  std::map<int, Proc> running_ ABSL_GUARDED_BY(mu_);
  std::map<int, uint64_t> alive_ ABSL_GUARDED_BY(mu_);  // pid -> start time
  std::map<int, std::function<void()>> watches_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, runtime::ExitStatus> exits_ ABSL_GUARDED_BY(mu_);
  int next_pid_ ABSL_GUARDED_BY(mu_) = 1000;
};

// A machine that outlives the runtime it is handed to (for restarts).
class MachineRef final : public Machine {
 public:
  explicit MachineRef(Machine* m) : m_(m) {}
  runtime::CgroupManager& cgroups() override { return m_->cgroups(); }
  bool AppArmorEnabled() override { return m_->AppArmorEnabled(); }
  absl::StatusOr<runtime::PodResources> SetUpPod(const runtime::PodSetupRequest& req) override {
    return m_->SetUpPod(req);
  }
  absl::Status StopPod(const std::string& dir, int pid, const std::string& cgroup) override {
    return m_->StopPod(dir, pid, cgroup);
  }
  absl::Status RemovePod(const std::string& dir, int pid, const std::string& cgroup) override {
    return m_->RemovePod(dir, pid, cgroup);
  }
  bool IsNamespacePinned(const std::string& path) override { return m_->IsNamespacePinned(path); }
  absl::StatusOr<runtime::DeviceNode> StatDevice(const std::string& path) override {
    return m_->StatDevice(path);
  }
  absl::Status PrepareMountTargets(const runtime::LaunchSpec& spec) override {
    return m_->PrepareMountTargets(spec);
  }
  absl::StatusOr<runtime::StartReport> StartContainer(
      const std::string& bundle, const std::string& id, const std::string& spec_json,
      absl::Duration timeout, const std::function<void()>& on_handed) override {
    return m_->StartContainer(bundle, id, spec_json, timeout, on_handed);
  }
  std::optional<runtime::RecoveredStart> RecoverStart(
      const std::string& bundle, absl::Duration timeout,
      const std::function<void(int)>& on_wait) override {
    return m_->RecoverStart(bundle, timeout, on_wait);
  }
  absl::StatusOr<runtime::ExitStatus> ReadExitFile(const std::string& bundle) override {
    return m_->ReadExitFile(bundle);
  }
  absl::Status WatchExit(int pid, uint64_t start_time, std::function<void()> on_exit) override {
    return m_->WatchExit(pid, start_time, std::move(on_exit));
  }
  bool ProcessAlive(int pid, uint64_t start_time) override {
    return m_->ProcessAlive(pid, start_time);
  }
  absl::Status Signal(int pid, uint64_t start_time, int sig) override {
    return m_->Signal(pid, start_time, sig);
  }
  void KillAndReap(const std::vector<int>& pids, absl::Duration timeout) override {
    m_->KillAndReap(pids, timeout);
  }
  absl::StatusOr<runtime::ExecResult> Exec(const std::string& bundle, int pid, uint64_t start_time,
                                           const std::vector<std::string>& argv,
                                           absl::Duration timeout) override {
    return m_->Exec(bundle, pid, start_time, argv, timeout);
  }
  absl::StatusOr<std::unique_ptr<runtime::ExecSession>> StartExec(
      const std::string& bundle, int pid, uint64_t start_time, const std::vector<std::string>& argv,
      const runtime::ExecStdio& stdio) override {
    return m_->StartExec(bundle, pid, start_time, argv, stdio);
  }
  absl::StatusOr<std::unique_ptr<runtime::AttachSession>> Attach(
      const std::string& bundle, const runtime::AttachStdio& stdio) override {
    return m_->Attach(bundle, stdio);
  }
  absl::StatusOr<runtime::UniqueFd> SocketIn(const std::string& net_ns, int family) override {
    return m_->SocketIn(net_ns, family);
  }
  absl::Status ReopenLog(const std::string& bundle, int monitor_pid, uint64_t monitor_start_time,
                         const std::string& log_path, absl::Duration timeout) override {
    return m_->ReopenLog(bundle, monitor_pid, monitor_start_time, log_path, timeout);
  }
  absl::StatusOr<runtime::TreeUsage> MeasureTree(const std::string& path) override {
    return m_->MeasureTree(path);
  }

 private:
  Machine* const m_;
};

// One network handing out 10.88.0.N.
class FakeNetworks final : public Networks {
 public:
  absl::Status Ready() override { return absl::OkStatus(); }
  absl::StatusOr<cni::Attachment> Setup(const cni::PodNetwork& pod) override {
    absl::MutexLock lock(&mu);
    ++setups;
    if (!fail_setup.ok()) return fail_setup;
    attached.insert(pod.id);
    cni::Attachment a;
    a.network_name = "fake";
    a.ips = {absl::StrCat("10.88.0.", ++next_ip)};
    return a;
  }
  absl::Status Teardown(const cni::PodNetwork& pod) override {
    absl::MutexLock lock(&mu);
    ++teardowns;
    attached.erase(pod.id);
    return absl::OkStatus();
  }
  void SetPodCidr(const std::string&) override {}
  absl::Status GarbageCollect(const std::vector<std::string>&) override { return absl::OkStatus(); }
  std::vector<std::string> CachedIds() const override {
    absl::MutexLock lock(&mu);
    return {attached.begin(), attached.end()};
  }
  int Setups() const {
    absl::MutexLock lock(&mu);
    return setups;
  }
  int Teardowns() const {
    absl::MutexLock lock(&mu);
    return teardowns;
  }
  void FailSetup(absl::Status s) {
    absl::MutexLock lock(&mu);
    fail_setup = std::move(s);
  }

  mutable absl::Mutex mu;
  std::set<std::string> attached ABSL_GUARDED_BY(mu);
  int setups ABSL_GUARDED_BY(mu) = 0;
  int teardowns ABSL_GUARDED_BY(mu) = 0;
  int next_ip ABSL_GUARDED_BY(mu) = 1;
  absl::Status fail_setup ABSL_GUARDED_BY(mu);
};

// Images by reference; a lease is a holder's name in a set.
class FakeImages final : public Images {
 public:
  void AddImage(const std::string& ref) {
    image::ImageRecord r;
    r.id = absl::StrCat("sha256:", std::string(64 - std::min<size_t>(ref.size(), 64), '0'),
                        ref.substr(0, 64));
    r.repo_tags = {ref};
    r.config = {{"config", {{"Cmd", {"/bin/sh"}}, {"Env", {"PATH=/bin"}}}}};
    absl::MutexLock lock(&mu);
    images[ref] = r;
  }
  absl::StatusOr<image::ImageRecord> Get(absl::string_view ref) const override {
    absl::MutexLock lock(&mu);
    auto it = images.find(std::string(ref));
    if (it == images.end()) return absl::NotFoundError(absl::StrCat("image ", ref, " not found"));
    return it->second;
  }
  absl::StatusOr<std::vector<std::string>> AcquireLease(absl::string_view holder,
                                                        const image::ImageRecord&) override {
    absl::MutexLock lock(&mu);
    leases.insert(std::string(holder));
    return std::vector<std::string>{"/fake-layers/0"};
  }
  absl::Status ReleaseLease(absl::string_view holder) override {
    absl::MutexLock lock(&mu);
    leases.erase(std::string(holder));
    return absl::OkStatus();
  }
  std::set<std::string> Leases() const {
    absl::MutexLock lock(&mu);
    return leases;
  }

  mutable absl::Mutex mu;
  std::map<std::string, image::ImageRecord> images ABSL_GUARDED_BY(mu);
  std::set<std::string> leases ABSL_GUARDED_BY(mu);
};

}  // namespace podshim::agent::testing
