// Host ports (the CNI "portMappings" capability) in nftables, through
// libnftables in-process.
//
// podshim owns one table per family, `ip podshim_hostports` and
// `ip6 podshim_hostports`, and never touches any other table:
//
//   map ports        proto . port              : pod address . pod port
//   map hostip_ports host address . proto . port : pod address . pod port
//   set masq         source . destination (interval): what to masquerade
//   chain hostports    DNAT through hostip_ports first, then ports
//   chain prerouting   nat hook, traffic for a local address -> hostports
//   chain output       nat hook, the host's own traffic, 127.0.0.1 included
//   chain postrouting  masquerade what `masq` lists: 127.0.0.0/8 -> pod
//                      (localhost access) and pod -> itself (hairpin)
//   set localnet_ifaces  (ip only) bridges podshim-bridge set route_localnet on
//   chain localnet_guard (ip only) filter input hook: drops packets for
//                      127.0.0.0/8 that come in through those bridges from
//                      outside 127.0.0.0/8 and are not DNATed: a pod cannot
//                      reach the host's loopback services (CVE-2020-8558)
//
// Every element carries a comment naming its owner (container id and
// interface), so DEL removes exactly one container's elements without
// needing to be told what they were. The table is created on first use;
// changes run as one nft transaction under a lock file, so concurrent
// plugin runs see each other's mappings, and a host port already mapped
// by another container is refused.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "cni/netlink.h"
#include "nlohmann/json.hpp"

namespace podshim::cni {

struct PortMapping {
  int host_port = 0;
  int container_port = 0;
  std::string protocol = "tcp";  // "tcp", "udp" or "sctp"
  // The host address the mapping is for; none means every host address of
  // every family the pod has an address in ("0.0.0.0" / "::": every
  // address of that family).
  std::optional<IpAddress> host_ip;
  bool any_of_family = false;  // host_ip was 0.0.0.0 or ::

  friend bool operator==(const PortMapping&, const PortMapping&) = default;
};

// Reads runtimeConfig.portMappings of network config `conf` (none: empty).
// Code 7 naming the member at fault, e.g. runtimeConfig.portMappings[1].hostPort.
absl::StatusOr<std::vector<PortMapping>> ParsePortMappings(const nlohmann::json& conf);

// The owner tag of a container's elements: "<containerid>/<ifname>", or a
// hash of it when that would not fit in an nft comment.
std::string HostPortOwner(absl::string_view container_id, absl::string_view ifname);

struct HostPortOptions {
  std::string table = "podshim_hostports";
  std::string lock_path = "/run/cni/podshim-hostports.lock";
};

// One installed mapping, as read back from the kernel.
struct InstalledHostPort {
  int family = 0;      // AF_INET or AF_INET6
  std::string key;     // "tcp . 8080" or "192.0.2.2 . tcp . 8080"
  std::string target;  // "10.88.0.5 . 80"
  std::string owner;   // the element comment
};

class HostPorts {
 public:
  explicit HostPorts(HostPortOptions options = {});

  // Maps `mappings` to the pod's addresses (`pod_ips`: at most one per
  // family) for `owner`, replacing elements `owner` had, and elements that
  // point at the pod's addresses (left behind by a container that had them
  // before). Code 1001 naming the port and its owner when another container
  // holds a host port; code 7 when a mapping asks for a family the pod has
  // no address in. Nothing changes on error.
  // `localnet_bridge`, when set, is the bridge whose route_localnet the
  // caller turns on (after this returns): it is added to localnet_ifaces,
  // and the guard chain is made if the table lacks it.
  absl::Status Add(absl::string_view owner, const std::vector<PortMapping>& mappings,
                   const std::vector<IpAddress>& pod_ips, absl::string_view localnet_bridge = "");

  // Removes every element of `owner`. OK when there is none (or no table).
  absl::Status Remove(absl::string_view owner);

  // The mappings in the kernel now (both families).
  absl::StatusOr<std::vector<InstalledHostPort>> List();

  // The nft script that creates the table of `family` (for tests and docs).
  std::string TableScript(int family) const;
  // The part of the ip table's script that guards the host's loopback.
  std::string LocalnetGuardScript() const;

 private:
  HostPortOptions options_;
};

}  // namespace podshim::cni
