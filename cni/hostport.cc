#include "cni/hostport.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <map>
#include <set>
#include <utility>

#include <nftables/libnftables.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "cni/plugin_common.h"
#include "runtime/unique_fd.h"

namespace podshim::cni {
namespace {

using runtime::ErrnoError;
using runtime::UniqueFd;

constexpr char kPortsMap[] = "ports";
constexpr char kHostIpPortsMap[] = "hostip_ports";
constexpr char kMasqSet[] = "masq";
// Bridges on which podshim-bridge set route_localnet, and the input chain that
// drops what a pod sends to the host's 127.0.0.0/8 through them.
constexpr char kLocalnetSet[] = "localnet_ifaces";
constexpr char kLocalnetChain[] = "localnet_guard";
// Owner tags longer than this are hashed: nft takes comments of up to 128 bytes.
constexpr size_t kMaxComment = 120;

absl::Status Invalid(absl::string_view message) { return CniError(kErrInvalidConfig, message); }

const char* FamilyName(int family) { return family == AF_INET ? "ip" : "ip6"; }

// ---- libnftables -------------------------------------------------------------

// libnftables and the libraries it pulls in (libnftnl, libxtables, jansson,
// gmp) are loaded on first use, not at process start: most plugin runs map
// no host port, and loading them costs an ADD milliseconds.
struct NftApi {
  decltype(&nft_ctx_new) ctx_new;
  decltype(&nft_ctx_free) ctx_free;
  decltype(&nft_ctx_buffer_output) buffer_output;
  decltype(&nft_ctx_buffer_error) buffer_error;
  decltype(&nft_ctx_output_set_flags) output_set_flags;
  decltype(&nft_run_cmd_from_buffer) run_cmd_from_buffer;
  decltype(&nft_ctx_get_output_buffer) get_output_buffer;
  decltype(&nft_ctx_get_error_buffer) get_error_buffer;
};

constexpr char kNftLibrary[] = "libnftables.so.1";

absl::StatusOr<const NftApi*> LoadNft() {
  static NftApi api;
  static std::string error;
  static bool tried = false;
  if (tried) {
    if (!error.empty()) return CniError(kErrInternal, error);
    return &api;
  }
  tried = true;
  void* lib = dlopen(kNftLibrary, RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    const char* why = dlerror();  // NOLINT(concurrency-mt-unsafe): single-threaded callers
    error =
        absl::StrCat("host ports need ", kNftLibrary,
                     " (Debian package libnftables1): ", why != nullptr ? why : "dlopen failed");
    return CniError(kErrInternal, error);
  }
  struct Symbol {
    const char* name;
    void** slot;
  };
  for (Symbol sym :
       {Symbol{"nft_ctx_new", reinterpret_cast<void**>(&api.ctx_new)},
        Symbol{"nft_ctx_free", reinterpret_cast<void**>(&api.ctx_free)},
        Symbol{"nft_ctx_buffer_output", reinterpret_cast<void**>(&api.buffer_output)},
        Symbol{"nft_ctx_buffer_error", reinterpret_cast<void**>(&api.buffer_error)},
        Symbol{"nft_ctx_output_set_flags", reinterpret_cast<void**>(&api.output_set_flags)},
        Symbol{"nft_run_cmd_from_buffer", reinterpret_cast<void**>(&api.run_cmd_from_buffer)},
        Symbol{"nft_ctx_get_output_buffer", reinterpret_cast<void**>(&api.get_output_buffer)},
        Symbol{"nft_ctx_get_error_buffer", reinterpret_cast<void**>(&api.get_error_buffer)}}) {
    *sym.slot = dlsym(lib, sym.name);
    if (*sym.slot == nullptr) {
      error = absl::StrCat(kNftLibrary, " lacks ", sym.name);
      return CniError(kErrInternal, error);
    }
  }
  return &api;
}

// One libnftables context with buffered output and errors.
class Nft {
 public:
  static absl::StatusOr<Nft> New() {
    absl::StatusOr<const NftApi*> api = LoadNft();
    if (!api.ok()) return api.status();
    nft_ctx* ctx = (*api)->ctx_new(NFT_CTX_DEFAULT);
    if (ctx == nullptr) return CniError(kErrInternal, "libnftables: cannot create a context");
    (*api)->buffer_output(ctx);
    (*api)->buffer_error(ctx);
    return Nft(*api, ctx);
  }
  Nft(Nft&& other) noexcept : api_(other.api_), ctx_(std::exchange(other.ctx_, nullptr)) {}
  Nft& operator=(Nft&&) = delete;
  Nft(const Nft&) = delete;
  Nft& operator=(const Nft&) = delete;
  ~Nft() {
    if (ctx_ != nullptr) api_->ctx_free(ctx_);
  }

  // Runs `script` as one transaction. The output (JSON when `json`) on
  // success; the nft error text in the message otherwise.
  absl::StatusOr<std::string> Run(const std::string& script, bool json) {
    api_->output_set_flags(ctx_, json ? NFT_CTX_OUTPUT_JSON : 0);
    if (api_->run_cmd_from_buffer(ctx_, script.c_str()) != 0) {
      const char* err = api_->get_error_buffer(ctx_);
      return absl::InternalError(
          absl::StripAsciiWhitespace(err != nullptr ? err : "(no error text)"));
    }
    const char* out = api_->get_output_buffer(ctx_);
    return std::string(out != nullptr ? out : "");
  }

 private:
  Nft(const NftApi* api, nft_ctx* ctx) : api_(api), ctx_(ctx) {}
  const NftApi* api_;
  nft_ctx* ctx_;
};

// An exclusive flock on the host-port lock file while it lives.
class LockFile {
 public:
  static absl::StatusOr<LockFile> Take(const std::string& path) {
    size_t slash = path.rfind('/');
    if (slash != std::string::npos && slash > 0) mkdir(path.substr(0, slash).c_str(), 0755);
    UniqueFd fd(open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd.valid()) return CniError(kErrIo, ErrnoError(errno, "open", path).message());
    while (flock(fd.get(), LOCK_EX) != 0) {
      if (errno != EINTR) return CniError(kErrIo, ErrnoError(errno, "lock", path).message());
    }
    return LockFile(std::move(fd));
  }

 private:
  explicit LockFile(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;  // closing it drops the lock
};

// ---- Reading the table back ----------------------------------------------

// The text nft accepts for a value it printed as JSON: "tcp . 8080",
// "127.0.0.0/8 . 10.88.0.5".
std::string ValueText(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_integer() || v.is_number_unsigned()) return v.dump();
  if (v.is_object()) {
    if (auto it = v.find("concat"); it != v.end() && it->is_array()) {
      std::vector<std::string> parts;
      for (const nlohmann::json& part : *it) parts.push_back(ValueText(part));
      return absl::StrJoin(parts, " . ");
    }
    if (auto it = v.find("prefix"); it != v.end() && it->is_object()) {
      return absl::StrCat(ValueText(it->value("addr", nlohmann::json())), "/",
                          ValueText(it->value("len", nlohmann::json())));
    }
    if (auto it = v.find("range"); it != v.end() && it->is_array() && it->size() == 2) {
      return absl::StrCat(ValueText((*it)[0]), "-", ValueText((*it)[1]));
    }
    if (auto it = v.find("elem"); it != v.end() && it->is_object()) {
      return ValueText(it->value("val", nlohmann::json()));
    }
  }
  return v.dump();
}

struct Element {
  std::string set;     // ports, hostip_ports or masq
  std::string key;     // nft text of the key
  std::string target;  // nft text of the mapped value (maps only)
  std::string owner;   // the comment
};

struct TableState {
  bool exists = false;
  bool has_localnet_guard = false;  // the chain kLocalnetChain exists
  std::vector<Element> elements;    // of the maps and masq; not of kLocalnetSet
};

void ReadKey(const nlohmann::json& k, Element& e) {
  if (k.is_object() && k.contains("elem") && k["elem"].is_object()) {
    const nlohmann::json& inner = k["elem"];
    e.key = ValueText(inner.value("val", nlohmann::json()));
    if (auto c = inner.find("comment"); c != inner.end() && c->is_string()) {
      e.owner = c->get<std::string>();
    }
  } else {
    e.key = ValueText(k);
  }
}

TableState ParseTable(const std::string& json_text) {
  TableState state;
  state.exists = true;
  nlohmann::json doc = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object() || !doc.contains("nftables") || !doc["nftables"].is_array()) return state;
  for (const nlohmann::json& item : doc["nftables"]) {
    if (!item.is_object()) continue;
    if (auto c = item.find("chain"); c != item.end() && c->is_object()) {
      if (c->value("name", "") == kLocalnetChain) state.has_localnet_guard = true;
      continue;
    }
    const bool is_map = item.contains("map");
    const nlohmann::json* obj =
        is_map ? &item["map"] : (item.contains("set") ? &item["set"] : nullptr);
    if (obj == nullptr || !obj->is_object()) continue;
    std::string name = obj->value("name", "");
    if (name == kLocalnetSet) continue;
    auto elems = obj->find("elem");
    if (elems == obj->end() || !elems->is_array()) continue;
    for (const nlohmann::json& entry : *elems) {
      Element e;
      e.set = name;
      if (is_map && entry.is_array() && entry.size() == 2) {
        ReadKey(entry[0], e);
        e.target = ValueText(entry[1]);
      } else {
        ReadKey(entry, e);
      }
      state.elements.push_back(std::move(e));
    }
  }
  return state;
}

absl::StatusOr<TableState> ReadTable(Nft& nft, int family, const std::string& table) {
  absl::StatusOr<std::string> out =
      nft.Run(absl::StrCat("list table ", FamilyName(family), " ", table), /*json=*/true);
  if (!out.ok()) {
    if (absl::StrContains(out.status().message(), "No such file or directory")) return TableState{};
    return CniError(kErrInternal, absl::StrCat("nft: list table ", FamilyName(family), " ", table,
                                               ": ", out.status().message()));
  }
  return ParseTable(*out);
}

// The last " . "-separated part of an element's key or target: the pod
// address for masq keys, the pod address . port for map targets.
std::string TargetAddress(const Element& e) {
  std::vector<absl::string_view> parts =
      absl::StrSplit(e.set == kMasqSet ? e.key : e.target, " . ");
  if (parts.empty()) return "";
  return std::string(e.set == kMasqSet ? parts.back() : parts.front());
}

std::string DescribeKey(const Element& e) {
  // "192.0.2.2 . tcp . 8080" -> "192.0.2.2:8080/tcp"; "tcp . 8080" -> "8080/tcp".
  std::vector<std::string> parts = absl::StrSplit(e.key, " . ");
  if (parts.size() == 2) return absl::StrCat(parts[1], "/", parts[0]);
  if (parts.size() == 3) return absl::StrCat(parts[0], ":", parts[2], "/", parts[1]);
  return e.key;
}

std::string ElementText(const Element& e) {
  std::string text = absl::StrCat(e.key, " comment \"", e.owner, "\"");
  if (!e.target.empty()) absl::StrAppend(&text, " : ", e.target);
  return text;
}

}  // namespace

// ---- Config ---------------------------------------------------------------

absl::StatusOr<std::vector<PortMapping>> ParsePortMappings(const nlohmann::json& conf) {
  std::vector<PortMapping> out;
  auto rc = conf.find("runtimeConfig");
  if (rc == conf.end() || rc->is_null()) return out;
  if (!rc->is_object()) return Invalid("runtimeConfig must be an object");
  auto list = rc->find("portMappings");
  if (list == rc->end() || list->is_null()) return out;
  if (!list->is_array()) return Invalid("runtimeConfig.portMappings must be a list");
  std::map<std::string, size_t> seen;
  for (size_t i = 0; i < list->size(); ++i) {
    const nlohmann::json& m = (*list)[i];
    std::string where = absl::StrCat("runtimeConfig.portMappings[", i, "]");
    if (!m.is_object()) return Invalid(absl::StrCat(where, " must be an object"));
    PortMapping pm;
    for (auto [key, dest] : {std::pair<const char*, int*>{"hostPort", &pm.host_port},
                             {"containerPort", &pm.container_port}}) {
      absl::StatusOr<std::optional<int64_t>> v = OptionalInt(m, key, where);
      if (!v.ok()) return v.status();
      if (!v->has_value()) return Invalid(absl::StrCat(where, ".", key, " is missing"));
      if (**v < 1 || **v > 65535) {
        return Invalid(absl::StrCat(where, ".", key, " ", **v, " is not a port (1-65535)"));
      }
      *dest = static_cast<int>(**v);
    }
    absl::StatusOr<std::optional<std::string>> proto = OptionalString(m, "protocol", where);
    if (!proto.ok()) return proto.status();
    pm.protocol = absl::AsciiStrToLower(proto->value_or("tcp"));
    if (pm.protocol.empty()) pm.protocol = "tcp";
    if (pm.protocol != "tcp" && pm.protocol != "udp" && pm.protocol != "sctp") {
      return Invalid(absl::StrCat(where, ".protocol \"", **proto, "\" is not tcp, udp or sctp"));
    }
    absl::StatusOr<std::optional<std::string>> host_ip = OptionalString(m, "hostIP", where);
    if (!host_ip.ok()) return host_ip.status();
    if (host_ip->has_value() && !(*host_ip)->empty()) {
      absl::StatusOr<IpAddress> ip = IpAddress::Parse(**host_ip);
      if (!ip.ok()) return Invalid(absl::StrCat(where, ".hostIP: ", ip.status().message()));
      pm.host_ip = *ip;
      pm.any_of_family = ip->IsUnspecified();
    }
    std::string key = absl::StrCat(pm.protocol, "/", pm.host_port, "@",
                                   pm.host_ip.has_value() ? pm.host_ip->ToString() : "*");
    if (auto [it, inserted] = seen.emplace(key, i); !inserted) {
      return Invalid(absl::StrCat(where, " maps host port ", pm.host_port, "/", pm.protocol,
                                  " again (runtimeConfig.portMappings[", it->second, "])"));
    }
    out.push_back(pm);
  }
  return out;
}

std::string HostPortOwner(absl::string_view container_id, absl::string_view ifname) {
  std::string owner = absl::StrCat(container_id, "/", ifname);
  if (owner.size() <= kMaxComment) return owner;
  char buf[20];
  std::snprintf(buf, sizeof(buf), "%016llx",
                static_cast<unsigned long long>(StableHash(owner)));  // NOLINT(google-runtime-int)
  return absl::StrCat("hash:", buf);
}

// ---- HostPorts --------------------------------------------------------------

HostPorts::HostPorts(HostPortOptions options) : options_(std::move(options)) {}

std::string HostPorts::TableScript(int family) const {
  const std::string t = absl::StrCat(FamilyName(family), " ", options_.table);
  const char* addr = family == AF_INET ? "ipv4_addr" : "ipv6_addr";
  const char* l3 = family == AF_INET ? "ip" : "ip6";
  std::string s;
  absl::StrAppend(&s, "add table ", t, "\n");
  absl::StrAppend(&s, "add map ", t, " ", kPortsMap, " { type inet_proto . inet_service : ", addr,
                  " . inet_service; }\n");
  absl::StrAppend(&s, "add map ", t, " ", kHostIpPortsMap, " { type ", addr,
                  " . inet_proto . inet_service : ", addr, " . inet_service; }\n");
  absl::StrAppend(&s, "add set ", t, " ", kMasqSet, " { type ", addr, " . ", addr,
                  "; flags interval; }\n");
  absl::StrAppend(&s, "add chain ", t, " hostports\n");
  absl::StrAppend(&s, "add chain ", t,
                  " prerouting { type nat hook prerouting priority -100; policy accept; }\n");
  absl::StrAppend(&s, "add chain ", t,
                  " output { type nat hook output priority -100; policy accept; }\n");
  absl::StrAppend(&s, "add chain ", t,
                  " postrouting { type nat hook postrouting priority 100; policy accept; }\n");
  absl::StrAppend(&s, "add rule ", t, " hostports dnat to ", l3,
                  " daddr . meta l4proto . th dport map @", kHostIpPortsMap, "\n");
  absl::StrAppend(&s, "add rule ", t, " hostports dnat to meta l4proto . th dport map @", kPortsMap,
                  "\n");
  absl::StrAppend(&s, "add rule ", t, " prerouting fib daddr type local jump hostports\n");
  absl::StrAppend(&s, "add rule ", t, " output fib daddr type local jump hostports\n");
  absl::StrAppend(&s, "add rule ", t, " postrouting ", l3, " saddr . ", l3, " daddr @", kMasqSet,
                  " masquerade\n");
  if (family == AF_INET) absl::StrAppend(&s, LocalnetGuardScript());
  return s;
}

std::string HostPorts::LocalnetGuardScript() const {
  // route_localnet lets the bridge take packets for 127.0.0.0/8, which the
  // host's loopback services never expect from a pod (CVE-2020-8558). The
  // fix kube-proxy ships: drop them unless they come from 127.0.0.0/8 or
  // belong to a DNATed connection (a host port on 127.0.0.1 and its
  // replies), here only on the bridges podshim set route_localnet on.
  const std::string t = absl::StrCat("ip ", options_.table);
  std::string s;
  absl::StrAppend(&s, "add set ", t, " ", kLocalnetSet, " { type ifname; }\n");
  absl::StrAppend(&s, "add chain ", t, " ", kLocalnetChain,
                  " { type filter hook input priority 0; policy accept; }\n");
  absl::StrAppend(&s, "add rule ", t, " ", kLocalnetChain, " iifname @", kLocalnetSet,
                  " ip daddr 127.0.0.0/8 ip saddr != 127.0.0.0/8 ct status & dnat == 0 counter"
                  " drop\n");
  return s;
}

absl::Status HostPorts::Add(absl::string_view owner, const std::vector<PortMapping>& mappings,
                            const std::vector<IpAddress>& pod_ips,
                            absl::string_view localnet_bridge) {
  auto pod_ip_of = [&](int family) -> const IpAddress* {
    for (const IpAddress& ip : pod_ips) {
      if (ip.family() == family) return &ip;
    }
    return nullptr;
  };
  // What each family needs, checked before anything changes.
  std::map<int, std::vector<Element>> wanted;
  for (size_t i = 0; i < mappings.size(); ++i) {
    const PortMapping& m = mappings[i];
    for (int family : {AF_INET, AF_INET6}) {
      if (m.host_ip.has_value() && m.host_ip->family() != family) continue;
      const IpAddress* pod_ip = pod_ip_of(family);
      if (pod_ip == nullptr) {
        if (!m.host_ip.has_value()) continue;  // the pod has no address of this family
        return Invalid(absl::StrCat("runtimeConfig.portMappings[", i, "].hostIP ",
                                    m.host_ip->ToString(), " is IPv", family == AF_INET ? 4 : 6,
                                    " but the pod has no IPv", family == AF_INET ? 4 : 6,
                                    " address"));
      }
      Element e;
      e.owner = std::string(owner);
      e.target = absl::StrCat(pod_ip->ToString(), " . ", m.container_port);
      if (m.host_ip.has_value() && !m.any_of_family) {
        e.set = kHostIpPortsMap;
        e.key = absl::StrCat(m.host_ip->ToString(), " . ", m.protocol, " . ", m.host_port);
      } else {
        e.set = kPortsMap;
        e.key = absl::StrCat(m.protocol, " . ", m.host_port);
      }
      for (const Element& other : wanted[family]) {
        if (other.set == e.set && other.key == e.key) {
          return Invalid(absl::StrCat("runtimeConfig.portMappings[", i, "] maps host port ",
                                      DescribeKey(e), " a second time"));
        }
      }
      wanted[family].push_back(std::move(e));
    }
  }
  for (auto& [family, elements] : wanted) {
    const std::string pod = pod_ip_of(family)->ToString();
    elements.push_back({kMasqSet, absl::StrCat(pod, " . ", pod), "", std::string(owner)});
    if (family == AF_INET) {
      elements.push_back({kMasqSet, absl::StrCat("127.0.0.0/8 . ", pod), "", std::string(owner)});
    }
  }
  if (wanted.empty() && localnet_bridge.empty()) return absl::OkStatus();

  absl::StatusOr<LockFile> lock = LockFile::Take(options_.lock_path);
  if (!lock.ok()) return lock.status();
  absl::StatusOr<Nft> nft = Nft::New();
  if (!nft.ok()) return nft.status();
  std::string script;
  bool v4_table_scripted = false;
  if (!localnet_bridge.empty()) {
    // Whatever families the pod has: route_localnet is an IPv4 setting.
    absl::StatusOr<TableState> state = ReadTable(*nft, AF_INET, options_.table);
    if (!state.ok()) return state.status();
    if (!state->exists) {
      absl::StrAppend(&script, TableScript(AF_INET));
      v4_table_scripted = true;
    } else if (!state->has_localnet_guard) {
      absl::StrAppend(&script, LocalnetGuardScript());  // a table made by an older podshim
    }
    absl::StrAppend(&script, "add element ip ", options_.table, " ", kLocalnetSet, " { \"",
                    localnet_bridge, "\" }\n");
  }
  for (const auto& [family, elements] : wanted) {
    const std::string t = absl::StrCat(FamilyName(family), " ", options_.table);
    const std::string pod = pod_ip_of(family)->ToString();
    absl::StatusOr<TableState> state = ReadTable(*nft, family, options_.table);
    if (!state.ok()) return state.status();
    if (!state->exists && !(family == AF_INET && v4_table_scripted)) {
      absl::StrAppend(&script, TableScript(family));
    }

    // Ours from before, or pointing at our address (whoever had it is gone:
    // the IPAM hands an address to one container at a time): replaced.
    std::set<std::pair<std::string, std::string>> removed;
    for (const Element& e : state->elements) {
      if (e.owner == owner || TargetAddress(e) == pod) {
        absl::StrAppend(&script, "delete element ", t, " ", e.set, " { ", e.key, " }\n");
        removed.emplace(e.set, e.key);
      }
    }
    for (const Element& e : elements) {
      for (const Element& held : state->elements) {
        if (held.set != e.set || held.key != e.key || removed.count({e.set, e.key}) != 0) continue;
        std::vector<std::string> target = absl::StrSplit(held.target, " . ");
        return CniError(
            kErrPortInUse,
            absl::StrCat("host port ", DescribeKey(e), " is already mapped to ",
                         target.size() == 2 ? absl::StrCat(target[0], ":", target[1]) : held.target,
                         " for ", held.owner.empty() ? "another container" : held.owner));
      }
      absl::StrAppend(&script, "add element ", t, " ", e.set, " { ", ElementText(e), " }\n");
    }
  }
  absl::StatusOr<std::string> ran = nft->Run(script, /*json=*/false);
  if (!ran.ok()) {
    return CniError(kErrInternal, absl::StrCat("nft: adding host ports of ", owner,
                                               " failed: ", ran.status().message()));
  }
  return absl::OkStatus();
}

absl::Status HostPorts::Remove(absl::string_view owner) {
  absl::StatusOr<LockFile> lock = LockFile::Take(options_.lock_path);
  if (!lock.ok()) return lock.status();
  // Without libnftables no host port can have been mapped: nothing to undo,
  // and DEL must not fail for it.
  if (!LoadNft().ok()) return absl::OkStatus();
  absl::StatusOr<Nft> nft = Nft::New();
  if (!nft.ok()) return nft.status();
  std::string script;
  for (int family : {AF_INET, AF_INET6}) {
    absl::StatusOr<TableState> state = ReadTable(*nft, family, options_.table);
    if (!state.ok()) return state.status();
    for (const Element& e : state->elements) {
      if (e.owner != owner) continue;
      absl::StrAppend(&script, "delete element ", FamilyName(family), " ", options_.table, " ",
                      e.set, " { ", e.key, " }\n");
    }
  }
  if (script.empty()) return absl::OkStatus();
  absl::StatusOr<std::string> ran = nft->Run(script, /*json=*/false);
  if (!ran.ok()) {
    return CniError(kErrInternal, absl::StrCat("nft: removing host ports of ", owner,
                                               " failed: ", ran.status().message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<InstalledHostPort>> HostPorts::List() {
  absl::StatusOr<Nft> nft = Nft::New();
  if (!nft.ok()) return nft.status();
  std::vector<InstalledHostPort> out;
  for (int family : {AF_INET, AF_INET6}) {
    absl::StatusOr<TableState> state = ReadTable(*nft, family, options_.table);
    if (!state.ok()) return state.status();
    for (const Element& e : state->elements) {
      if (e.set == kMasqSet) continue;
      out.push_back({family, e.key, e.target, e.owner});
    }
  }
  return out;
}

}  // namespace podshim::cni
