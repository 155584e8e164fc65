// Translation: a CRI request and what was read for it → what podshim makes.
// Pure functions: no system calls, no locks, no state; everything the host
// must tell (the image's config, device numbers, a Localhost seccomp
// profile's text, the target container's pid) is read by the caller first.
// Each field and each refusal has a row in translate_test.cc. Requests are
// validated (agent/validate.h) before they get here.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "agent/records.h"
#include "cni/client.h"
#include "runtime/cgroups.h"
#include "runtime/launch_spec.h"
#include "runtime/pod_setup.h"
#include "runtime/security.h"

namespace podshim::agent {

// A pod's sandbox: where podshim keeps it and which cgroup it gets.
struct PodPlace {
  std::string id;
  std::string dir;                    // state_dir/pods/<id>
  std::string default_cgroup_parent;  // when the config names none
  std::string pinns_binary;
};

// The host-side request for a pod (runtime::SetUpPod). With a cgroup_parent
// (the kubelet's "/kubepods/burstable/pod<uid>") the pod's cgroup is that
// parent itself, as with containerd's cgroupfs driver; otherwise a child of
// podshim's own parent. INVALID_ARGUMENT for sysctls the pod's namespaces
// cannot take (field config.linux.sysctls).
absl::StatusOr<runtime::PodSetupRequest> PlanPod(const cri::PodSandboxConfig& config,
                                                 const PodPlace& place);

// What the CNI client needs to know about a pod.
cni::PodNetwork PodNetworkOf(const SandboxRecord& pod);

// CRI resources → cgroup settings (zero and empty fields are left unset).
runtime::CgroupResources ToCgroup(const cri::LinuxContainerResources& r);

// A container to be made, with what was read for it.
struct ContainerSource {
  std::string id;
  const cri::ContainerConfig* config = nullptr;
  const SandboxRecord* pod = nullptr;
  nlohmann::json image_config = nlohmann::json::object();  // the image config's "config"
  std::string bundle;                                      // state_dir/containers/<id>
  std::string layer_dir;  // root_dir/containers/<id>: upper and work
  // For a pid TARGET container: the target's init and its start time
  // (runtime/pidfd.h); 0 when the target is not running. The container joins
  // /proc/PID/ns/pid only while that pid still names that process.
  int target_pid = 0;
  uint64_t target_start_time = 0;
  // One per config.devices, in order: the host's device node.
  std::vector<runtime::DeviceNode> device_nodes;
  // For a Localhost seccomp profile: its text.
  std::string localhost_seccomp;
  // Whether the node restricts devices (the devices cgroup of cgroup v1);
  // false on cgroup v2 until podshim attaches a BPF device filter: then an
  // unprivileged container gets no CAP_MKNOD (issue 18, finding 4).
  bool devices_enforced = true;
};

struct ContainerPlan {
  runtime::LaunchSpec spec;  // without cgroup_procs, oom_counter_file, rootfs.lower
  std::string cgroup;        // the pod's cgroup / <id>
  runtime::CgroupResources limits;
  // The devices cgroup's allow-list; none for a privileged container.
  std::optional<std::vector<runtime::DeviceRule>> device_rules;
  std::string log_path;  // absolute; "" without one
  int stop_signal = 15;  // the request's, else the image's, else SIGTERM
};

absl::StatusOr<ContainerPlan> PlanContainer(const ContainerSource& in);

}  // namespace podshim::agent
