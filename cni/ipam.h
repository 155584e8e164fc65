// podshim-ipam: host-local style address management, as a library (linked
// into podshim-bridge so ADD needs no second process) and behind the
// podshim-ipam plugin binary.
//
// State lives in <dataDir>/<network name>/:
//   <ip>                  one file per handed-out address: "<containerid>\n<ifname>"
//   last_reserved_ip.<n>  the address range set n handed out last; the next
//                         search starts after it, so addresses rotate
//   lock                  flock()ed around every read-modify-write, which
//                         makes concurrent plugin processes safe
//
// One address per range set; a range set is a list of ranges of one family.
// The network address, the IPv4 broadcast address and every range's gateway
// are never handed out. An ADD for a container id + interface name that
// already holds an address in a range set gets that address again (so a
// retried ADD is harmless); DEL frees every address the pair holds and is
// a no-op when it holds none.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "cni/netlink.h"
#include "cni/plugin_common.h"
#include "nlohmann/json.hpp"
#include "runtime/unique_fd.h"

namespace podshim::cni {

inline constexpr char kDefaultIpamDataDir[] = "/run/cni/podshim-ipam";

struct IpamRange {
  IpPrefix subnet;  // canonical: host bits cleared
  IpAddress range_start;
  IpAddress range_end;  // inclusive
  IpAddress gateway;

  bool InRange(const IpAddress& ip) const {
    return ip.family() == range_start.family() && range_start <= ip && ip <= range_end;
  }
};

struct IpamRangeSet {
  std::vector<IpamRange> ranges;  // all of one family
};

struct IpamConfig {
  std::string network;  // the network config's "name"
  std::vector<IpamRangeSet> range_sets;
  std::vector<CniRoute> routes;
  std::string data_dir = kDefaultIpamDataDir;
  CniDns dns;
};

// Reads the "ipam" object of network config `conf` ("name" is taken from
// `conf` itself). Accepts "ranges": [[{"subnet","rangeStart","rangeEnd",
// "gateway"}]] and, like host-local, a single range written directly in the
// ipam object ("subnet", "rangeStart", ...). Code 7 naming the key at fault
// (e.g. `ipam.ranges[0][1].rangeEnd`); unknown keys are ignored.
absl::StatusOr<IpamConfig> ParseIpamConfig(const nlohmann::json& conf);

// Who holds an address.
struct IpamOwner {
  std::string container_id;
  std::string ifname;
  friend bool operator==(const IpamOwner&, const IpamOwner&) = default;
};

// The allocation state of one network. Every public call takes the lock.
class IpamStore {
 public:
  // Creates the state directory if needed and opens the lock file.
  static absl::StatusOr<IpamStore> Open(const IpamConfig& config);

  // ADD: one address per range set for the owner (the ones it already holds
  // are reused). The result has ips (with gateways), routes and dns.
  // Code 1000 naming the range set when one has no free address; nothing is
  // kept then.
  absl::StatusOr<CniResult> Allocate(const IpamOwner& owner);

  // DEL: frees every address the owner holds. OK when it holds none.
  absl::Status Release(const IpamOwner& owner);

  // CHECK: the owner's addresses, one per range set, as Allocate returned
  // them. Code 999 naming the range set the owner holds no address in.
  absl::StatusOr<CniResult> Check(const IpamOwner& owner);

  // Every handed-out address and its owner (for tests and diagnostics).
  absl::StatusOr<std::map<IpAddress, IpamOwner>> Allocations();

  const std::string& dir() const { return dir_; }

 private:
  IpamStore(IpamConfig config, std::string dir, runtime::UniqueFd dir_fd, runtime::UniqueFd lock_fd)
      : config_(std::move(config)),
        dir_(std::move(dir)),
        dir_fd_(std::move(dir_fd)),
        lock_fd_(std::move(lock_fd)) {}

  absl::Status Lock();
  void Unlock();
  absl::StatusOr<std::map<IpAddress, IpamOwner>> ScanLocked();
  // The address range set `set` holds for `owner`, if any.
  static const IpAddress* Held(const std::map<IpAddress, IpamOwner>& allocations,
                               const IpamRangeSet& set, const IpamOwner& owner);
  bool IsReserved(const IpamRange& range, const IpAddress& ip) const;
  absl::Status WriteLastReserved(const std::string& name, const std::string& text);
  absl::StatusOr<IpAddress> PickFree(size_t set_index,
                                     const std::map<IpAddress, IpamOwner>& allocations);
  CniIp IpFor(const IpamRangeSet& set, const IpAddress& ip) const;
  CniResult ResultFor(std::vector<CniIp> ips) const;

  IpamConfig config_;
  std::string dir_;
  runtime::UniqueFd dir_fd_;
  runtime::UniqueFd lock_fd_;
};

}  // namespace podshim::cni
