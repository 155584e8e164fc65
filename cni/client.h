// The CNI client podshimd uses for pod networking: picks the network from
// the config directory (or its embedded default), runs the plugin chain with
// ADD, CHECK and DEL for a pod's pinned network namespace, and keeps each
// attachment in a ResultCache so DEL can repeat what ADD did.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "cni/cache.h"
#include "cni/netconf.h"
#include "nlohmann/json.hpp"
#include "runtime/dns.h"

namespace podshim::cni {

struct NetworkOptions {
  std::string conf_dir = "/etc/cni/net.d";
  // Searched in order for plugins, and passed as CNI_PATH.
  std::vector<std::string> bin_dirs = {"/opt/cni/bin", "/usr/lib/cni"};
  // Where attachments are cached (ResultCache).
  std::string cache_dir;
  std::string ifname = "eth0";
  absl::Duration plugin_timeout = absl::Minutes(1);
  // With no config file at all in conf_dir, use DefaultBridgeConflist.
  bool default_network = true;
  // The default network's subnet(s), comma separated; empty: the pod CIDR
  // set through UpdateRuntimeConfig, else kDefaultPodSubnet.
  std::string default_subnet;
};

// One of the pod's published ports (hostPort > 0), for runtimeConfig.portMappings.
// (Not cni/hostport.h's PortMapping: that is the plugin side's own type.)
struct PodPortMapping {
  std::string protocol;  // "tcp", "udp" or "sctp"
  int container_port = 0;
  int host_port = 0;
  std::string host_ip;
};

// What a pod's attachment needs.
struct PodNetwork {
  std::string id;  // the sandbox id: CNI_CONTAINERID
  std::string netns;
  std::string name, namespace_, uid;  // the pod's metadata, for CNI_ARGS
  std::vector<PodPortMapping> port_mappings;
  std::optional<runtime::DnsSettings> dns;  // runtimeConfig.dns
  // Bits per second; 0 = not limited (from the kubernetes.io/*-bandwidth
  // pod annotations).
  uint64_t ingress_bps = 0, egress_bps = 0;
};

struct Attachment {
  std::string network_name;
  // The pod's addresses without prefix length, IPv4 first.
  std::vector<std::string> ips;
};

// The addresses a CNI result gives the pod: those on interfaces inside the
// sandbox (or on no named interface), without the prefix length, IPv4
// before IPv6, each once.
std::vector<std::string> PodAddresses(const nlohmann::json& result);

// Parses a Kubernetes bandwidth quantity ("10M", "1Gi", "500k") into bits
// per second. INVALID_ARGUMENT for anything else.
absl::StatusOr<uint64_t> ParseBandwidth(const std::string& quantity);

class NetworkManager {
 public:
  explicit NetworkManager(NetworkOptions options);

  // OK when a network is configured, its plugins are found and each main
  // plugin supports the network's cniVersion (CNI VERSION, asked once per
  // config); otherwise FAILED_PRECONDITION saying why (for NetworkReady).
  absl::Status Ready();

  // CNI 1.1 GC: tells each plugin of the network which attachments
  // (`valid_ids`, sandbox ids) are in use, so it can free the rest. Does
  // nothing for networks older than 1.1.0, which have no GC.
  absl::Status GarbageCollect(const std::vector<std::string>& valid_ids);

  // Runs ADD through the chain. A failure runs DEL for whatever was done and
  // returns the plugin's error.
  absl::StatusOr<Attachment> Setup(const PodNetwork& pod);

  // Runs DEL through the chain in reverse with the cached configuration and
  // result (the current network without a prevResult when nothing is
  // cached), then drops the cache entry. Idempotent.
  absl::Status Teardown(const PodNetwork& pod);

  // Runs CHECK (for networks at cniVersion 0.4.0 or later).
  absl::Status Check(const PodNetwork& pod);

  // The pod CIDR(s) from UpdateRuntimeConfig, for the default network.
  void SetPodCidr(const std::string& cidr);

  // The sandbox ids that have a cache entry, e.g. to find attachments whose
  // pod is gone after a crash.
  std::vector<std::string> CachedIds() const;

  const NetworkOptions& options() const { return options_; }

  // The network that Setup would use now (reloaded when the directory
  // changed).
  absl::StatusOr<NetworkConfigList> CurrentNetwork();

 private:
  absl::StatusOr<NetworkConfigList> LoadLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status CheckVersions(const NetworkConfigList& net) const;
  nlohmann::json RuntimeConfigFor(const PodNetwork& pod) const;
  std::vector<std::pair<std::string, std::string>> ArgsFor(const PodNetwork& pod) const;
  // An attachment of `pod` to `net` as ADD (or a DEL without cache) runs it.
  CacheEntry NewEntry(const PodNetwork& pod, const NetworkConfigList& net) const;
  // Runs `command` over the chain: ADD forwards each result as the next
  // prevResult; DEL goes in reverse and CHECK forward with `prev_result`.
  absl::StatusOr<nlohmann::json> RunChain(const std::string& command, const nlohmann::json& network,
                                          const CacheEntry& entry, nlohmann::json prev_result,
                                          size_t* added);

  NetworkOptions options_;
  ResultCache cache_;
  absl::Mutex mu_;
  std::string signature_ ABSL_GUARDED_BY(mu_);
  std::optional<absl::StatusOr<NetworkConfigList>> loaded_ ABSL_GUARDED_BY(mu_);
  std::string pod_cidr_ ABSL_GUARDED_BY(mu_);
  std::string versions_checked_ ABSL_GUARDED_BY(mu_);  // the config VERSION was asked for
  absl::Status versions_status_ ABSL_GUARDED_BY(mu_);
};

}  // namespace podshim::cni
