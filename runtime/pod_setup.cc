#include "runtime/pod_setup.h"

#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "runtime/cleanup.h"
#include "runtime/files.h"
#include "runtime/namespaces.h"
#include "runtime/unique_fd.h"

namespace podshim::runtime {
namespace {

constexpr char kShmOptions[] = "mode=1777,size=65536k";

// Ends the pod's infra process, if it still is the one pinned in `dir`.
void KillInfra(const std::string& dir, int pid) {
  if (pid <= 0) return;
  (void)StopInfra(pid, dir + "/ns/pid", absl::Milliseconds(500));
}

std::string HostFileOr(const std::string& path, absl::string_view fallback) {
  auto text = ReadFile(path);
  return text.ok() ? *text : std::string(fallback);
}

absl::Status UnmountShm(const std::string& dir) {
  const std::string shm = dir + "/shm";
  if (::umount2(shm.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT) {
    return ErrnoError(errno, "unmount", shm);
  }
  return absl::OkStatus();
}

}  // namespace

std::string PodHostsFile(const std::string& hostname, const std::string& ip) {
  std::string out =
      "127.0.0.1\tlocalhost\n"
      "::1\tlocalhost ip6-localhost ip6-loopback\n"
      "fe00::0\tip6-localnet\n"
      "fe00::0\tip6-mcastprefix\n"
      "fe00::1\tip6-allnodes\n"
      "fe00::2\tip6-allrouters\n";
  if (!hostname.empty()) {
    absl::StrAppend(&out, ip.empty() ? "127.0.1.1" : ip, "\t", hostname, "\n");
  }
  return out;
}

std::string ResolvConf(const DnsSettings& dns) {
  std::string out;
  if (!dns.searches.empty())
    absl::StrAppend(&out, "search ", absl::StrJoin(dns.searches, " "), "\n");
  for (const auto& s : dns.servers) absl::StrAppend(&out, "nameserver ", s, "\n");
  if (!dns.options.empty())
    absl::StrAppend(&out, "options ", absl::StrJoin(dns.options, " "), "\n");
  return out;
}

absl::StatusOr<PodResources> SetUpPod(const PodSetupRequest& req, CgroupManager& cgroups) {
  // Before `undo`, whose step joins the thread when it has to.
  std::jthread cgroup_maker;
  absl::Status cgroup_made;
  UndoStack undo;
  PodResources res;
  res.dir = req.dir;
  std::error_code ec;
  if (std::filesystem::exists(req.dir, ec)) {
    return absl::AlreadyExistsError(absl::StrCat("pod directory `", req.dir, "` exists"));
  }
  if (auto s = MakeDirs(req.dir, 0711); !s.ok()) return s;
  undo.Push([dir = req.dir] {
    std::error_code e;
    std::filesystem::remove_all(dir, e);
  });

  // The pod's cgroup. An infra process (pid=POD) joins it, so it comes
  // first then; otherwise it is made on a thread of its own while
  // podshim-pinns runs: each takes most of a millisecond, mostly in the
  // kernel, and neither needs the other.
  if (req.shared_pid) {
    cgroup_made = cgroups.Create(req.cgroup);
    if (!cgroup_made.ok()) return cgroup_made;
  } else {
    cgroup_maker =
        std::jthread([&cgroup_made, &cgroups, &req] { cgroup_made = cgroups.Create(req.cgroup); });
  }
  undo.Push([&cgroups, &cgroup_maker, cg = req.cgroup, keep = req.keep_cgroup] {
    if (cgroup_maker.joinable()) cgroup_maker.join();
    if (!keep) (void)cgroups.Remove(cg);  // never one that was there before
  });

  // Namespaces.
  PinRequest pin;
  pin.dir = req.dir + "/ns";
  pin.net = !req.host_network;
  pin.ipc = !req.host_ipc;
  pin.uts = !req.host_network;  // host network shares the host's name, as in Kubernetes
  pin.pid = req.shared_pid;
  if (pin.uts) pin.hostname = req.hostname;
  pin.sysctls = req.sysctls;
  if (req.shared_pid) pin.infra_cgroup_procs = cgroups.ProcsFiles(req.cgroup);
  if (pin.net || pin.ipc || pin.uts || pin.pid || !pin.sysctls.empty()) {
    auto pinned = PinNamespaces(req.pinns_binary, pin);
    if (!pinned.ok()) return pinned.status();
    res.net_ns = pinned->net;
    res.ipc_ns = pinned->ipc;
    res.uts_ns = pinned->uts;
    res.pid_ns = pinned->pid;
    res.infra_pid = pinned->infra_pid;
    undo.Push([dir = req.dir, pid = res.infra_pid] {
      KillInfra(dir, pid);
      (void)UnpinNamespaces(dir + "/ns");
    });
  }

  if (cgroup_maker.joinable()) {
    cgroup_maker.join();
    if (!cgroup_made.ok()) return cgroup_made;
  }

  // /dev/shm: the host's with host IPC, else a tmpfs of the pod's own.
  if (req.host_ipc) {
    res.shm_dir = "/dev/shm";
  } else {
    res.shm_dir = req.dir + "/shm";
    if (auto s = MakeDirs(res.shm_dir, 0755); !s.ok()) return s;
    if (::mount("shm", res.shm_dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                kShmOptions) != 0) {
      return ErrnoError(errno, "mount tmpfs on", res.shm_dir);
    }
    undo.Push([dir = req.dir] { (void)UnmountShm(dir); });
  }

  // The files containers mount as /etc/hostname, /etc/hosts, /etc/resolv.conf.
  res.hostname = req.hostname;
  if (req.host_network || res.hostname.empty()) {
    res.hostname =
        std::string(absl::StripSuffix(HostFileOr(req.host_etc + "/hostname", "localhost\n"), "\n"));
    if (!req.host_network && !req.hostname.empty()) res.hostname = req.hostname;
  }
  res.hostname_file = req.dir + "/hostname";
  res.hosts_file = req.dir + "/hosts";
  res.resolv_file = req.dir + "/resolv.conf";
  std::string hosts = req.host_network ? HostFileOr(req.host_etc + "/hosts", PodHostsFile("", ""))
                                       : PodHostsFile(res.hostname, "");
  std::string resolv =
      req.has_dns ? ResolvConf(req.dns) : HostFileOr(req.host_etc + "/resolv.conf", "");
  for (const auto& [path, text] :
       {std::pair{res.hostname_file, res.hostname + "\n"}, std::pair{res.hosts_file, hosts},
        std::pair{res.resolv_file, resolv}}) {
    if (auto s = WriteFileAtomic(path, text, 0644); !s.ok()) return s;
  }
  undo.Release();
  return res;
}

absl::Status StopPod(const std::string& dir, int infra_pid, const std::string& cgroup,
                     CgroupManager& cgroups) {
  KillInfra(dir, infra_pid);
  absl::Status status = UnmountShm(dir);
  if (auto s = UnpinNamespaces(dir + "/ns"); !s.ok() && status.ok()) status = s;
  if (!cgroup.empty()) {
    if (auto s = cgroups.Remove(cgroup); !s.ok() && status.ok()) status = s;
  }
  return status;
}

absl::Status RemovePod(const std::string& dir, int infra_pid, const std::string& cgroup,
                       CgroupManager& cgroups) {
  if (auto s = StopPod(dir, infra_pid, cgroup, cgroups); !s.ok()) return s;
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  if (ec) {
    return absl::InternalError(absl::StrCat("remove `", dir, "`: ", ec.message()));
  }
  return absl::OkStatus();
}

}  // namespace podshim::runtime
