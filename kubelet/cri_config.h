// How a Pod becomes CRI requests: the PodSandboxConfig of its sandbox and
// the ContainerConfig of each container, with the labels and annotations
// that let a restarted kubelet find what it owns, and the QoS class and OOM
// score the real kubelet derives from resources.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/optional.h"
#include "kubelet/pod_spec.h"
#include "runtime/v1/api.pb.h"

namespace podshim::kubelet {

// Labels (on sandboxes and containers) and annotations the kubelet sets.
inline constexpr char kManagedLabel[] = "io.podshim.kubelet/managed";
inline constexpr char kManifestHashLabel[] = "io.podshim.kubelet/manifest-hash";
inline constexpr char kContainerTypeLabel[] = "io.podshim.kubelet/container-type";  // init|app
inline constexpr char kSourceAnnotation[] = "io.podshim.kubelet/source";
inline constexpr char kPodNameLabel[] = "io.kubernetes.pod.name";
inline constexpr char kPodNamespaceLabel[] = "io.kubernetes.pod.namespace";
inline constexpr char kPodUidLabel[] = "io.kubernetes.pod.uid";
inline constexpr char kContainerNameLabel[] = "io.kubernetes.container.name";
inline constexpr char kRestartCountAnnotation[] = "io.kubernetes.container.restartCount";
inline constexpr char kContainerHashAnnotation[] = "io.kubernetes.container.hash";
inline constexpr char kGracePeriodAnnotation[] = "io.kubernetes.pod.terminationGracePeriod";

// What the node looks like to the pods on it.
struct NodeConfig {
  std::string node_name = "localhost";
  // Pod logs: <pod_log_root>/<namespace>_<name>_<uid>/<container>/<attempt>.log
  std::string pod_log_root = "/var/log/pods";
  // emptyDir volumes: <volume_root>/<uid>/volumes/kubernetes.io~empty-dir/<name>
  std::string volume_root = "/var/lib/podshim-kubelet/pods";
  // The sandboxes' cgroup parent; empty leaves the choice to the runtime.
  std::string cgroup_parent;
  // For Burstable containers' oom_score_adj; 0 = unknown (then 999).
  int64_t memory_capacity_bytes = 0;
  // The host's /etc/resolv.conf, merged into dnsConfig as the kubelet does.
  std::string host_resolv_conf;
  // kubelet --seccomp-default: RuntimeDefault instead of Unconfined.
  bool seccomp_default = false;
};

enum class QosClass { kGuaranteed, kBurstable, kBestEffort };
absl::string_view QosClassName(QosClass q);
QosClass PodQos(const Pod& pod);
// oom_score_adj: Guaranteed -997, BestEffort 1000, Burstable
// 1000 - 1000 * memory request / capacity, within [2, 999].
int64_t OomScoreAdj(QosClass qos, const Container& c, int64_t memory_capacity_bytes);

std::string PodLogDir(const Pod& pod, const NodeConfig& node);
std::string PodVolumesDir(const Pod& pod, const NodeConfig& node);  // <volume_root>/<uid>
std::string EmptyDirPath(const Pod& pod, const Volume& v, const NodeConfig& node);

// The DNS settings to send, or nullopt to leave resolv.conf to the runtime:
// dnsPolicy None uses dnsConfig alone; any other policy with a dnsConfig
// merges it after the host's resolv.conf (this node has no cluster DNS, so
// ClusterFirst falls back to Default as the kubelet does).
absl::optional<DnsConfig> EffectiveDns(const Pod& pod, absl::string_view host_resolv_conf);

// Expands $(VAR) references from `env`; "$$" is a literal "$"; an undefined
// reference stays as written.
std::string ExpandEnvRefs(absl::string_view s, const std::map<std::string, std::string>& env);

// Labels selecting every sandbox or container of the pod named `key`'s pod.
std::map<std::string, std::string> PodSelector(const Pod& pod);

::runtime::v1::PodSandboxConfig MakeSandboxConfig(const Pod& pod, uint32_t attempt,
                                                  const NodeConfig& node);

// The image as the runtime knows it after the pull.
struct ImageInfo {
  std::string id;  // image id or reference to create the container from
  absl::optional<int64_t> uid;
  std::string username;
};

// The container's config; FAILED_PRECONDITION (CreateContainerConfigError)
// when runAsNonRoot cannot be honoured.
absl::StatusOr<::runtime::v1::ContainerConfig> MakeContainerConfig(const Pod& pod,
                                                                   const Container& c, bool init,
                                                                   uint32_t attempt,
                                                                   const ImageInfo& image,
                                                                   const NodeConfig& node);

}  // namespace podshim::kubelet
