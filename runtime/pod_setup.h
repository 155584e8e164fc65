// The host side of a pod: its directory under the state dir, the files its
// containers see as /etc/hosts, /etc/resolv.conf and /etc/hostname, its
// /dev/shm, its pinned namespaces and its cgroup. SetUpPod builds all of it
// or nothing; StopPod releases what only a running pod needs (namespaces,
// infra process, shm, cgroup); RemovePod deletes the rest. Stop and Remove
// are idempotent and work from what is on disk, so they also clean up after
// a crash.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/cgroups.h"
#include "runtime/dns.h"

namespace podshim::runtime {

struct PodSetupRequest {
  std::string dir;  // state_dir/pods/<id>; created here
  std::string hostname;
  bool host_network = false;
  bool host_ipc = false;
  bool shared_pid = false;  // pid=POD: a pinned pid namespace with an infra process
  bool has_dns = false;     // use `dns`, else copy the host's resolv.conf
  DnsSettings dns;
  std::vector<std::pair<std::string, std::string>> sysctls;  // validated by the caller
  std::string cgroup;  // cgroup path of the pod ("/podshim/pod-<id>")
  // The cgroup existed before (the kubelet's pod cgroup): a failure never
  // removes it (what runs in it is not podshim's).
  bool keep_cgroup = false;
  std::string pinns_binary;
  std::string host_etc = "/etc";  // where the host's hosts/resolv.conf/hostname are read
};

struct PodResources {
  std::string dir;
  std::string net_ns, ipc_ns, uts_ns, pid_ns;  // pinned files; "" = host's (or none for pid)
  int infra_pid = 0;
  std::string hosts_file, resolv_file, hostname_file;
  std::string shm_dir;   // tmpfs mounted for the pod, or /dev/shm with host IPC
  std::string hostname;  // what the pod's UTS namespace says
};

// Builds the pod. On failure everything made so far is undone.
absl::StatusOr<PodResources> SetUpPod(const PodSetupRequest& req, CgroupManager& cgroups);

// Kills the infra process, unmounts the pod's shm, unpins its namespaces and
// removes its cgroup (kill what is left first). Missing pieces are fine.
absl::Status StopPod(const std::string& dir, int infra_pid, const std::string& cgroup,
                     CgroupManager& cgroups);

// StopPod, then deletes the pod's directory.
absl::Status RemovePod(const std::string& dir, int infra_pid, const std::string& cgroup,
                       CgroupManager& cgroups);

// The /etc/hosts a pod gets (localhost lines and, when known, its own name).
std::string PodHostsFile(const std::string& hostname, const std::string& ip);
// resolv.conf text from DNS settings.
std::string ResolvConf(const DnsSettings& dns);

}  // namespace podshim::runtime
