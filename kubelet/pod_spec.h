// The part of a Kubernetes Pod (apiVersion v1, kind Pod) that the toy
// kubelet honours, and the parser that reads it from manifest YAML.
//
// A manifest file holds one or more YAML documents ("---" between them);
// empty documents are skipped. Parsing is all or nothing per file: any error
// makes the whole file invalid, and the message names the file, the document
// (1-based) and the field, e.g.
//   web.yaml: document 1: spec.containers[0].resources.limits.cpu: invalid quantity "x"
// A field the kubelet does not know or does not honour is not an error but a
// warning in the same form ("...: unknown field, ignored").
//
// Defaults are applied as the API server would: namespace "default",
// restartPolicy Always, terminationGracePeriodSeconds 30, imagePullPolicy
// Always for ":latest" or untagged images else IfNotPresent, probe timings
// 10s period / 1s timeout / thresholds 1 and 3, requests defaulted to
// limits. A pod without metadata.uid gets one derived from the node name,
// the file and the document's content, as the real kubelet does for static
// pods: stable across restarts, new when the manifest changes.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/optional.h"

namespace podshim::kubelet {

enum class RestartPolicy { kAlways, kOnFailure, kNever };
enum class PullPolicy { kAlways, kIfNotPresent, kNever };
enum class PortProtocol { kTcp, kUdp, kSctp };

struct ContainerPort {
  std::string name;
  int32_t container_port = 0;
  int32_t host_port = 0;  // 0: not published
  PortProtocol protocol = PortProtocol::kTcp;
  std::string host_ip;
};

struct EnvVar {
  std::string name;
  std::string value;
};

struct VolumeMount {
  std::string name;
  std::string mount_path;
  std::string sub_path;
  bool read_only = false;
};

// Quantities converted to integers; 0 means "not set".
struct Resources {
  int64_t cpu_request_milli = 0;
  int64_t cpu_limit_milli = 0;
  int64_t memory_request_bytes = 0;
  int64_t memory_limit_bytes = 0;
};

enum class SeccompType { kUnset, kRuntimeDefault, kUnconfined, kLocalhost };

struct SeccompProfile {
  SeccompType type = SeccompType::kUnset;
  std::string localhost_profile;
};

// spec.containers[].securityContext; every field optional.
struct SecurityContext {
  absl::optional<int64_t> run_as_user;
  absl::optional<int64_t> run_as_group;
  absl::optional<bool> run_as_non_root;
  absl::optional<bool> privileged;
  absl::optional<bool> read_only_root_filesystem;
  absl::optional<bool> allow_privilege_escalation;
  std::vector<std::string> capabilities_add;
  std::vector<std::string> capabilities_drop;
  SeccompProfile seccomp;
};

// spec.securityContext: defaults for every container of the pod.
struct PodSecurityContext {
  absl::optional<int64_t> run_as_user;
  absl::optional<int64_t> run_as_group;
  absl::optional<bool> run_as_non_root;
  std::vector<int64_t> supplemental_groups;
  SeccompProfile seccomp;
  std::map<std::string, std::string> sysctls;
};

enum class ProbeType { kExec, kHttpGet, kTcpSocket };

struct Probe {
  ProbeType type = ProbeType::kExec;
  std::vector<std::string> command;  // exec
  std::string host;                  // httpGet/tcpSocket: empty = the pod IP
  int32_t port = 0;                  // httpGet/tcpSocket: number, or
  std::string port_name;             //   the name of a containerPort
  std::string path = "/";            // httpGet
  std::vector<std::pair<std::string, std::string>> http_headers;
  int32_t initial_delay_seconds = 0;
  int32_t period_seconds = 10;
  int32_t timeout_seconds = 1;
  int32_t success_threshold = 1;
  int32_t failure_threshold = 3;
};

struct Container {
  std::string name;
  std::string image;
  PullPolicy pull_policy = PullPolicy::kIfNotPresent;
  std::vector<std::string> command;
  std::vector<std::string> args;
  std::string working_dir;
  std::vector<EnvVar> env;
  std::vector<ContainerPort> ports;
  Resources resources;
  SecurityContext security_context;
  std::vector<VolumeMount> volume_mounts;
  absl::optional<Probe> liveness_probe;
  absl::optional<Probe> readiness_probe;
  absl::optional<Probe> startup_probe;
  bool tty = false;
  bool stdin = false;
};

enum class VolumeType { kHostPath, kEmptyDir };

struct Volume {
  std::string name;
  VolumeType type = VolumeType::kEmptyDir;
  std::string host_path;       // hostPath.path
  std::string host_path_type;  // "", DirectoryOrCreate, Directory, FileOrCreate, File, ...
  std::string medium;          // emptyDir: "" or "Memory"
  int64_t size_limit_bytes = 0;
};

struct DnsConfig {
  std::vector<std::string> nameservers;
  std::vector<std::string> searches;
  std::vector<std::string> options;  // "name" or "name:value"
};

struct Pod {
  // metadata
  std::string name;
  std::string namespace_name = "default";
  std::string uid;
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
  // spec
  std::vector<Container> init_containers;
  std::vector<Container> containers;
  std::vector<Volume> volumes;
  RestartPolicy restart_policy = RestartPolicy::kAlways;
  int64_t termination_grace_period_seconds = 30;
  bool host_network = false;
  bool host_pid = false;
  bool host_ipc = false;
  bool share_process_namespace = false;
  std::string hostname;
  std::string dns_policy = "ClusterFirst";
  absl::optional<DnsConfig> dns_config;
  PodSecurityContext security_context;
  // Where it came from.
  std::string source;  // the manifest file
  int document = 0;    // 1-based document index in that file
  std::string hash;    // 16 hex digits over the document's content

  // "namespace/name".
  std::string Key() const { return namespace_name + "/" + name; }
};

struct ParsedManifest {
  std::vector<Pod> pods;
  std::vector<std::string> warnings;
};

// Parses every document of one manifest file. `source` names the file in
// messages and is recorded in each pod; `node_name` seeds generated uids.
// INVALID_ARGUMENT, naming file, document and field, for YAML syntax errors,
// wrong kinds or apiVersions, wrong types, invalid or missing values.
absl::StatusOr<ParsedManifest> ParseManifest(absl::string_view text, absl::string_view source,
                                             absl::string_view node_name);

// The pull policy the API server gives an image that names none: Always for
// ":latest" or an image without tag and digest, else IfNotPresent.
PullPolicy DefaultPullPolicy(absl::string_view image);

// A 64-bit FNV-1a hash of `data` as 16 lowercase hex digits.
std::string Fnv64Hex(absl::string_view data, uint64_t seed = 0xcbf29ce484222325ULL);

absl::string_view RestartPolicyName(RestartPolicy p);

}  // namespace podshim::kubelet
