// podshim-bridge: a CNI plugin that puts a pod on a Linux bridge through a
// veth pair, addresses it with an IPAM (podshim-ipam in-process, any other
// IPAM plugin executed from CNI_PATH) and maps host ports with nftables.
// See docs/cni-plugin.md for the configuration and behavior.
#include <fcntl.h>
#include <linux/if.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "cni/hostport.h"
#include "cni/ipam.h"
#include "cni/netlink.h"
#include "cni/plugin_common.h"
#include "nlohmann/json.hpp"
#include "runtime/cleanup.h"
#include "runtime/unique_fd.h"

namespace podshim::cni {
namespace {

using runtime::ErrnoError;
using runtime::UniqueFd;

constexpr char kPluginName[] = "podshim-bridge";
constexpr char kInProcessIpam[] = "podshim-ipam";
constexpr char kDefaultBridge[] = "podshim0";
constexpr unsigned kDefaultMtu = 1500;

absl::Status Invalid(absl::string_view message) { return CniError(kErrInvalidConfig, message); }

struct BridgeConfig {
  std::string version;
  std::string name;
  std::string bridge = kDefaultBridge;
  bool is_gateway = false;
  bool is_default_gateway = false;
  bool hairpin = false;
  unsigned mtu = kDefaultMtu;
  std::string ipam_type;
  std::optional<IpamConfig> ipam;  // parsed when ipam_type is podshim-ipam
  CniDns dns;
  std::vector<PortMapping> port_mappings;
  std::optional<CniResult> prev_result;
};

absl::StatusOr<BridgeConfig> ParseBridgeConfig(const nlohmann::json& conf, Command command) {
  BridgeConfig cfg;
  absl::StatusOr<std::string> version = ConfigVersion(conf, kPluginName);
  if (!version.ok()) return version.status();
  cfg.version = *version;
  absl::StatusOr<std::optional<std::string>> name = OptionalString(conf, "name", "");
  if (!name.ok()) return name.status();
  if (!name->has_value() || (*name)->empty()) return Invalid("\"name\" is missing");
  cfg.name = **name;

  absl::StatusOr<std::optional<std::string>> bridge = OptionalString(conf, "bridge", "");
  if (!bridge.ok()) return bridge.status();
  if (bridge->has_value()) {
    if (!IsValidIfName(**bridge)) {
      return Invalid(absl::StrCat("bridge \"", **bridge,
                                  "\" is not a valid interface name (1-15 characters)"));
    }
    cfg.bridge = **bridge;
  }
  struct Flag {
    const char* key;
    bool* dest;
  };
  for (Flag f :
       {Flag{"isGateway", &cfg.is_gateway}, Flag{"isDefaultGateway", &cfg.is_default_gateway},
        Flag{"hairpinMode", &cfg.hairpin}}) {
    absl::StatusOr<std::optional<bool>> v = OptionalBool(conf, f.key, "");
    if (!v.ok()) return v.status();
    *f.dest = v->value_or(false);
  }
  if (cfg.is_default_gateway) cfg.is_gateway = true;
  absl::StatusOr<std::optional<bool>> masq = OptionalBool(conf, "ipMasq", "");
  if (!masq.ok()) return masq.status();
  if (masq->value_or(false)) {
    return CniError(kErrUnsupportedField,
                    "ipMasq: true is not supported by podshim-bridge; set it to false and "
                    "masquerade pod traffic on the host if pods must reach other networks");
  }
  absl::StatusOr<std::optional<int64_t>> mtu = OptionalInt(conf, "mtu", "");
  if (!mtu.ok()) return mtu.status();
  if (mtu->has_value() && **mtu != 0) {
    if (**mtu < 68 || **mtu > 65535) {
      return Invalid(absl::StrCat("mtu ", **mtu, " is out of range (68-65535)"));
    }
    cfg.mtu = static_cast<unsigned>(**mtu);
  }

  auto ipam = conf.find("ipam");
  if (ipam == conf.end() || ipam->is_null()) return Invalid("ipam is missing");
  if (!ipam->is_object()) return Invalid("ipam must be an object");
  absl::StatusOr<std::optional<std::string>> type = OptionalString(*ipam, "type", "ipam");
  if (!type.ok()) return type.status();
  if (!type->has_value() || (*type)->empty()) return Invalid("ipam.type is missing");
  cfg.ipam_type = **type;
  if (cfg.ipam_type == kInProcessIpam) {
    absl::StatusOr<IpamConfig> parsed = ParseIpamConfig(conf);
    if (!parsed.ok()) return parsed.status();
    cfg.ipam = *std::move(parsed);
  }

  if (auto dns = conf.find("dns"); dns != conf.end()) {
    absl::StatusOr<CniDns> parsed = DnsFromJson(*dns, "dns");
    if (!parsed.ok()) return parsed.status();
    cfg.dns = *std::move(parsed);
  }
  absl::StatusOr<std::vector<PortMapping>> ports = ParsePortMappings(conf);
  if (!ports.ok()) return ports.status();
  cfg.port_mappings = *std::move(ports);

  // DEL must work whatever ADD left behind, so its prevResult is not read.
  if (auto prev = conf.find("prevResult");
      prev != conf.end() && !prev->is_null() && command != Command::kDel) {
    absl::StatusOr<CniResult> parsed = ResultFromJson(*prev, "prevResult");
    if (!parsed.ok()) return parsed.status();
    cfg.prev_result = *std::move(parsed);
  }
  return cfg;
}

// A locally administered MAC derived from the bridge name, so a bridge made
// again gets the same address and pods' neighbor entries stay valid.
std::string BridgeMac(absl::string_view bridge) {
  uint64_t h = StableHash(absl::StrCat("podshim-bridge-mac:", bridge));
  uint8_t mac[6] = {0x02};
  for (int i = 1; i < 6; ++i) mac[i] = static_cast<uint8_t>(h >> (8 * (i - 1)));
  return FormatMac(mac, sizeof(mac));
}

// The bridge, created (up, with a fixed MAC) when missing.
absl::StatusOr<LinkInfo> EnsureBridge(Netlink& nl, const BridgeConfig& cfg) {
  absl::StatusOr<std::optional<LinkInfo>> found = nl.FindLink(cfg.bridge);
  if (!found.ok()) return found.status();
  if (!found->has_value()) {
    absl::Status s = nl.CreateBridge(cfg.bridge, cfg.mtu, BridgeMac(cfg.bridge));
    // Another plugin run may have made it in the meantime: fine.
    if (!s.ok() && !absl::IsAlreadyExists(s)) return s;
    found = nl.FindLink(cfg.bridge);
    if (!found.ok()) return found.status();
    if (!found->has_value()) {
      return CniError(kErrTryAgainLater,
                      absl::StrCat("bridge ", cfg.bridge, " vanished right after its creation"));
    }
  }
  LinkInfo br = **found;
  if (br.kind != "bridge") {
    return Invalid(absl::StrCat("bridge: interface ", cfg.bridge, " exists and is not a bridge (",
                                br.kind.empty() ? "a plain device" : br.kind, ")"));
  }
  if ((br.flags & IFF_UP) == 0) {
    if (absl::Status s = nl.SetUp(br); !s.ok()) return s;
  }
  return br;
}

absl::Status SetBridgeGateways(Netlink& nl, const LinkInfo& br, const CniResult& ipam) {
  bool v4 = false;
  for (const CniIp& ip : ipam.ips) {
    if (!ip.gateway.has_value()) continue;
    absl::Status s = nl.AddAddress(br, IpPrefix{*ip.gateway, ip.address.length});
    if (!s.ok() && !absl::IsAlreadyExists(s)) return s;
    v4 = v4 || ip.gateway->is_v4();
  }
  // Pods reach other networks and host ports of other host addresses
  // through the host, which must route for them.
  if (v4) return WriteSysctl("/proc/sys/net/ipv4/ip_forward", "1");
  return absl::OkStatus();
}

// The IPAM step of ADD, with its undo pushed on `undo`.
absl::StatusOr<CniResult> IpamAdd(const BridgeConfig& cfg, const CniEnv& env,
                                  const std::string& stdin_data, runtime::UndoStack& undo) {
  if (cfg.ipam.has_value()) {
    absl::StatusOr<IpamStore> store = IpamStore::Open(*cfg.ipam);
    if (!store.ok()) return store.status();
    IpamOwner owner{env.container_id, env.ifname};
    absl::StatusOr<CniResult> result = store->Allocate(owner);
    if (!result.ok()) return result.status();
    undo.Push([ipam = *cfg.ipam, owner] {
      if (absl::StatusOr<IpamStore> s = IpamStore::Open(ipam); s.ok()) (void)s->Release(owner);
    });
    return result;
  }
  absl::StatusOr<nlohmann::json> out = ExecPlugin(cfg.ipam_type, env, "ADD", stdin_data);
  if (!out.ok()) return out.status();
  undo.Push(
      [type = cfg.ipam_type, env, stdin_data] { (void)ExecPlugin(type, env, "DEL", stdin_data); });
  absl::StatusOr<CniResult> result =
      ResultFromJson(*out, absl::StrCat("result of IPAM plugin ", cfg.ipam_type));
  if (!result.ok()) return CniError(kErrDecode, result.status().message());
  return result;
}

absl::StatusOr<std::string> CmdAdd(const BridgeConfig& cfg, const CniEnv& env,
                                   const std::string& stdin_data) {
  runtime::UndoStack undo;
  UniqueFd netns(open(env.netns.c_str(), O_RDONLY | O_CLOEXEC));
  if (!netns.valid()) {
    return CniError(kErrUnknownContainer,
                    absl::StrCat("CNI_NETNS: ", ErrnoError(errno, "open", env.netns).message()));
  }

  // A second ADD for a live pod must fail before the IPAM, whose undo would
  // free the pod's address.
  absl::StatusOr<Netlink> host = Netlink::Open();
  if (!host.ok()) return host.status();
  const std::string host_name = HostVethName(env.container_id, env.ifname);
  absl::StatusOr<std::optional<LinkInfo>> existing = host->FindLink(host_name);
  if (!existing.ok()) return existing.status();
  // The host end carries its owner as its alias, which tells a repeated ADD
  // from two owners whose names hash alike.
  const std::string owner = HostPortOwner(env.container_id, env.ifname);
  if (existing->has_value()) {
    if (!(*existing)->alias.empty() && (*existing)->alias != owner) {
      return CniError(kErrInternal, absl::StrCat("host interface name ", host_name,
                                                 " of container ", env.container_id, " interface ",
                                                 env.ifname, " is taken by ", (*existing)->alias));
    }
    return CniError(kErrInternal, absl::StrCat("host interface ", host_name, " for container ",
                                               env.container_id, " interface ", env.ifname,
                                               " already exists: run DEL for it before ADD"));
  }

  absl::StatusOr<CniResult> ipam = IpamAdd(cfg, env, stdin_data, undo);
  if (!ipam.ok()) return ipam.status();
  if (ipam->ips.empty()) {
    return CniError(kErrInternal,
                    absl::StrCat("IPAM plugin ", cfg.ipam_type, " returned no IP address"));
  }

  absl::StatusOr<LinkInfo> br = EnsureBridge(*host, cfg);
  if (!br.ok()) return br.status();
  if (cfg.is_gateway) {
    if (absl::Status s = SetBridgeGateways(*host, *br, *ipam); !s.ok()) return s;
  }

  // The veth pair: host end on the bridge, peer created inside the netns.
  VethSpec veth{host_name, env.ifname, netns.get(), cfg.mtu, br->index, true};
  if (absl::Status s = host->CreateVeth(veth); !s.ok()) {
    if (absl::IsAlreadyExists(s)) {
      return CniError(kErrInternal,
                      absl::StrCat(s.message(), " (is there an interface ", env.ifname,
                                   " in netns ", env.netns, " already?)"));
    }
    return s;
  }
  undo.Push([host_name] {
    absl::StatusOr<Netlink> nl = Netlink::Open();
    if (!nl.ok()) return;
    absl::StatusOr<std::optional<LinkInfo>> link = nl->FindLink(host_name);
    if (link.ok() && link->has_value()) (void)nl->DeleteLink(**link);
  });
  absl::StatusOr<LinkInfo> host_veth = host->GetLink(host_name);
  if (!host_veth.ok()) return host_veth.status();
  if (absl::Status s = host->SetAlias(*host_veth, owner); !s.ok()) return s;
  if (cfg.hairpin) {
    if (absl::Status s = host->SetHairpin(*host_veth, true); !s.ok()) return s;
  }

  // Inside the pod: loopback up, addresses, routes.
  absl::StatusOr<Netlink> pod = Netlink::OpenInNetns(netns.get(), env.netns);
  if (!pod.ok()) return pod.status();
  absl::StatusOr<LinkInfo> lo = pod->GetLink("lo");
  if (!lo.ok()) return lo.status();
  if ((lo->flags & IFF_UP) == 0) {
    if (absl::Status s = pod->SetUp(*lo); !s.ok()) return s;
  }
  absl::StatusOr<LinkInfo> pod_if = pod->GetLink(env.ifname);
  if (!pod_if.ok()) return pod_if.status();
  if (absl::Status s = pod->SetUp(*pod_if); !s.ok()) return s;
  std::vector<IpAddress> pod_ips;
  for (CniIp& ip : ipam->ips) {
    if (absl::Status s = pod->AddAddress(*pod_if, ip.address); !s.ok()) return s;
    ip.interface = 2;  // bridge, host veth, pod interface
    pod_ips.push_back(ip.address.address);
  }
  auto gateway_of = [&](int family) -> std::optional<IpAddress> {
    for (const CniIp& ip : ipam->ips) {
      if (ip.address.address.family() == family && ip.gateway.has_value()) return ip.gateway;
    }
    return std::nullopt;
  };
  std::vector<CniRoute> routes = ipam->routes;
  if (cfg.is_default_gateway) {
    for (int family : {AF_INET, AF_INET6}) {
      std::optional<IpAddress> gw = gateway_of(family);
      if (!gw.has_value()) continue;
      bool have = false;
      for (const CniRoute& r : routes) {
        have = have || (r.dst.address.family() == family && r.dst.length == 0);
      }
      IpPrefix any{IpAddress::Unspecified(family), 0};
      if (!have) routes.push_back({any, gw});
    }
  }
  for (CniRoute& r : routes) {
    if (!r.gw.has_value()) r.gw = gateway_of(r.dst.address.family());
    if (absl::Status s = pod->AddRoute({r.dst, r.gw, pod_if->index}, env.ifname); !s.ok()) return s;
  }

  if (!cfg.port_mappings.empty()) {
    // The guard against pods reaching the host's loopback is in place before
    // route_localnet lets the bridge take such packets.
    if (absl::Status s = HostPorts().Add(owner, cfg.port_mappings, pod_ips, cfg.bridge); !s.ok()) {
      return s;
    }
    undo.Push([owner] { (void)HostPorts().Remove(owner); });
    if (absl::Status s = WriteSysctl(
            absl::StrCat("/proc/sys/net/ipv4/conf/", cfg.bridge, "/route_localnet"), "1");
        !s.ok()) {
      return s;
    }
  }

  // The bridge's address as it is now that the port is attached.
  absl::StatusOr<LinkInfo> br_now = host->GetLink(cfg.bridge);
  if (!br_now.ok()) return br_now.status();

  CniResult mine;
  mine.interfaces = {
      {cfg.bridge, br_now->mac, "", 0},
      {host_name, host_veth->mac, "", 0},
      {env.ifname, pod_if->mac, env.netns, 0},
  };
  mine.ips = ipam->ips;
  mine.routes = routes;
  mine.dns = cfg.dns.empty() ? ipam->dns : cfg.dns;

  CniResult out;
  if (cfg.prev_result.has_value()) {
    // Chained after another plugin: keep what it reported, add ours.
    out = *cfg.prev_result;
    const int offset = static_cast<int>(out.interfaces.size());
    for (CniIp& ip : mine.ips) ip.interface = *ip.interface + offset;
    out.interfaces.insert(out.interfaces.end(), mine.interfaces.begin(), mine.interfaces.end());
    out.ips.insert(out.ips.end(), mine.ips.begin(), mine.ips.end());
    out.routes.insert(out.routes.end(), mine.routes.begin(), mine.routes.end());
    if (!mine.dns.empty()) out.dns = mine.dns;
  } else {
    out = std::move(mine);
  }
  undo.Release();
  return DumpJson(ResultToJson(out, cfg.version));
}

absl::StatusOr<std::string> CmdDel(const BridgeConfig& cfg, const CniEnv& env,
                                   const std::string& stdin_data) {
  // Every step runs even when one before it failed; the first error wins.
  absl::Status first;
  auto keep = [&](absl::Status s) {
    if (!s.ok() && first.ok()) first = std::move(s);
  };

  const std::string owner = HostPortOwner(env.container_id, env.ifname);
  keep(HostPorts().Remove(owner));

  // Deleting the host end removes the peer in the pod with it. The netns
  // is not needed (and may be gone). A veth whose alias names another owner
  // only shares the hashed name: not ours to delete.
  absl::StatusOr<Netlink> host = Netlink::Open();
  if (host.ok()) {
    absl::StatusOr<std::optional<LinkInfo>> link =
        host->FindLink(HostVethName(env.container_id, env.ifname));
    if (!link.ok()) {
      keep(link.status());
    } else if (link->has_value() && ((*link)->alias.empty() || (*link)->alias == owner)) {
      absl::Status s = host->DeleteLink(**link);
      if (!absl::IsNotFound(s)) keep(s);
    }
  } else {
    keep(host.status());
  }

  if (cfg.ipam.has_value()) {
    absl::StatusOr<IpamStore> store = IpamStore::Open(*cfg.ipam);
    keep(store.ok() ? store->Release({env.container_id, env.ifname}) : store.status());
  } else {
    keep(ExecPlugin(cfg.ipam_type, env, "DEL", stdin_data).status());
  }
  if (!first.ok()) return first;
  return std::string();
}

absl::StatusOr<std::string> CmdCheck(const BridgeConfig& cfg, const CniEnv& env,
                                     const std::string& stdin_data) {
  if (CompareVersions(cfg.version, "0.4.0") < 0) {
    return CniError(
        kErrIncompatibleVersion,
        absl::StrCat("CHECK needs cniVersion 0.4.0 or later, the config has ", cfg.version));
  }
  if (!cfg.prev_result.has_value()) {
    return Invalid("prevResult is missing: CHECK needs the result of ADD");
  }
  const CniResult& prev = *cfg.prev_result;
  int pod_index = -1;
  for (size_t i = 0; i < prev.interfaces.size(); ++i) {
    const CniInterface& iface = prev.interfaces[i];
    if (iface.name == env.ifname && (iface.sandbox.empty() || iface.sandbox == env.netns)) {
      pod_index = static_cast<int>(i);
    }
  }
  if (pod_index < 0) {
    return Invalid(absl::StrCat("prevResult.interfaces has no interface ", env.ifname,
                                " in sandbox ", env.netns));
  }

  UniqueFd netns(open(env.netns.c_str(), O_RDONLY | O_CLOEXEC));
  if (!netns.valid()) {
    return CniError(kErrUnknownContainer,
                    absl::StrCat("CNI_NETNS: ", ErrnoError(errno, "open", env.netns).message()));
  }
  absl::StatusOr<Netlink> pod = Netlink::OpenInNetns(netns.get(), env.netns);
  if (!pod.ok()) return pod.status();
  absl::StatusOr<std::optional<LinkInfo>> pod_if = pod->FindLink(env.ifname);
  if (!pod_if.ok()) return pod_if.status();
  if (!pod_if->has_value()) {
    return CniError(kErrInternal,
                    absl::StrCat("interface ", env.ifname, " is missing from netns ", env.netns));
  }
  absl::StatusOr<std::vector<IpPrefix>> addresses = pod->ListAddresses((*pod_if)->index);
  if (!addresses.ok()) return addresses.status();
  for (const CniIp& ip : prev.ips) {
    if (ip.interface.has_value() && *ip.interface != pod_index) continue;
    bool found = false;
    for (const IpPrefix& a : *addresses) found = found || a == ip.address;
    if (!found) {
      return CniError(kErrInternal, absl::StrCat("interface ", env.ifname, " in netns ", env.netns,
                                                 " lacks address ", ip.address.ToString()));
    }
  }

  absl::StatusOr<Netlink> host = Netlink::Open();
  if (!host.ok()) return host.status();
  absl::StatusOr<std::optional<LinkInfo>> br = host->FindLink(cfg.bridge);
  if (!br.ok()) return br.status();
  if (!br->has_value() || (*br)->kind != "bridge") {
    return CniError(kErrInternal, absl::StrCat("bridge ", cfg.bridge, " is missing"));
  }
  const std::string host_name = HostVethName(env.container_id, env.ifname);
  absl::StatusOr<std::optional<LinkInfo>> veth = host->FindLink(host_name);
  if (!veth.ok()) return veth.status();
  if (!veth->has_value()) {
    return CniError(kErrInternal, absl::StrCat("host interface ", host_name, " is missing"));
  }
  if ((*veth)->master != (*br)->index) {
    return CniError(kErrInternal, absl::StrCat("host interface ", host_name,
                                               " is not a port of bridge ", cfg.bridge));
  }

  if (cfg.ipam.has_value()) {
    absl::StatusOr<IpamStore> store = IpamStore::Open(*cfg.ipam);
    if (!store.ok()) return store.status();
    absl::StatusOr<CniResult> held = store->Check({env.container_id, env.ifname});
    if (!held.ok()) return held.status();
  } else {
    absl::StatusOr<nlohmann::json> out = ExecPlugin(cfg.ipam_type, env, "CHECK", stdin_data);
    if (!out.ok()) return out.status();
  }
  return std::string();
}

}  // namespace

absl::StatusOr<std::string> RunBridgePlugin(const std::string& stdin_data) {
  absl::StatusOr<CniEnv> env = ParseEnv([](const char* name) {
    return std::getenv(name);  // NOLINT(concurrency-mt-unsafe): single-threaded plugin
  });
  if (!env.ok()) return env.status();
  switch (env->command) {
    case Command::kVersion:
      return DumpJson(VersionJson(ReplyVersion(stdin_data)));
    case Command::kGc:
    case Command::kStatus:
      return CniError(kErrInvalidEnvironment,
                      absl::StrCat("CNI_COMMAND ", env->command_name, " is not supported by ",
                                   kPluginName, " (it speaks CNI up to 1.0.0)"));
    default:
      break;
  }
  absl::StatusOr<nlohmann::json> conf = ParseConfigObject(stdin_data);
  if (!conf.ok()) return conf.status();
  absl::StatusOr<BridgeConfig> cfg = ParseBridgeConfig(*conf, env->command);
  if (!cfg.ok()) return cfg.status();
  switch (env->command) {
    case Command::kAdd:
      return CmdAdd(*cfg, *env, stdin_data);
    case Command::kDel:
      return CmdDel(*cfg, *env, stdin_data);
    default:
      return CmdCheck(*cfg, *env, stdin_data);
  }
}

}  // namespace podshim::cni

int main() { return podshim::cni::PluginMain(podshim::cni::RunBridgePlugin); }
