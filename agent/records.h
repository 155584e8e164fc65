// What podshimd remembers about each pod sandbox and container, persisted as
// one JSON file per object (state_dir/pods/<id>/pod.json,
// state_dir/containers/<id>/container.json) so it survives a restart. The
// CRI config the object was created from is kept verbatim (as protobuf
// JSON): statuses and verbose info are answered from it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/v1/api.pb.h"

namespace podshim::agent {

namespace cri = ::runtime::v1;

struct SandboxRecord {
  std::string id;
  cri::PodSandboxConfig config;
  // `config` as protobuf JSON, printed once (ProtoJsonText) when the record
  // is made: the config never changes after that, and printing it costs
  // more than the rest of a save. Null: printed at each save.
  std::shared_ptr<const std::string> config_json;
  std::string runtime_handler;
  int64_t created_at_ns = 0;
  cri::PodSandboxState state = cri::SANDBOX_NOTREADY;
  // Host side (runtime::PodResources).
  std::string dir;
  std::string cgroup;
  // podshim made `cgroup` (it did not exist before): only then does stopping
  // the pod kill what is in it and remove it. A cgroup the kubelet made is
  // the kubelet's to remove; podshim removes only its containers' cgroups.
  // Records from before this field: true, as podshim treated every cgroup.
  bool cgroup_owned = true;
  std::string net_ns, ipc_ns, uts_ns, pid_ns;
  int infra_pid = 0;
  std::string hosts_file, resolv_file, hostname_file, shm_dir, hostname;
  // Pod network (CNI): the primary address ("" without one, e.g. host
  // network), the others, and whether an attachment exists to tear down.
  std::string ip;
  std::vector<std::string> additional_ips;
  std::string network_name;
  bool network_attached = false;
};

struct ContainerRecord {
  std::string id;
  std::string pod_id;
  cri::ContainerConfig config;
  // As in SandboxRecord.
  std::shared_ptr<const std::string> config_json;
  std::string image_id;   // "sha256:..." (image_ref in the status)
  std::string image_ref;  // what the request named, normalised to a tag when possible
  int64_t created_at_ns = 0;
  int64_t started_at_ns = 0;
  int64_t finished_at_ns = 0;
  cri::ContainerState state = cri::CONTAINER_CREATED;
  int exit_code = 0;
  std::string reason;
  std::string message;
  std::string bundle;  // state_dir/containers/<id>
  std::string cgroup;
  std::string log_path;  // absolute
  int pid = 0;
  uint64_t pid_start_time = 0;  // the init's start time (runtime/pidfd.h); 0: not known
  int monitor_pid = 0;
  uint64_t monitor_start_time = 0;  // the monitor's, as pid_start_time; 0: not known
  uint32_t uid = 0, gid = 0;
  std::vector<uint32_t> groups;
  int stop_signal = 15;                    // from the image's StopSignal, else SIGTERM
  cri::LinuxContainerResources resources;  // as applied (updated by UpdateContainerResources)
  // `resources` as JSON with the wire bytes it was printed from: a save
  // reuses the text while `resources` serialises to the same bytes
  // (protobuf's JSON printer costs ~0.1 ms a call; a container's start saves
  // its record twice). Filled in by ContainerToJson, hence mutable.
  mutable std::shared_ptr<const std::pair<std::string, std::string>> resources_json;
  std::string spec_json;  // the LaunchSpec used, for verbose status
  // Written so while CreateContainer is still making it: a record still
  // incomplete at start names leftovers of a crash, which are removed.
  bool incomplete = false;
};

// A message as protobuf JSON text, field names as in the .proto.
std::string ProtoJsonText(const google::protobuf::Message& m);

std::string SandboxToJson(const SandboxRecord& r);
absl::StatusOr<SandboxRecord> SandboxFromJson(const std::string& text);
std::string ContainerToJson(const ContainerRecord& r);
absl::StatusOr<ContainerRecord> ContainerFromJson(const std::string& text);

}  // namespace podshim::agent
