#include "cni/client.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "cni/exec.h"

namespace podshim::cni {
namespace fs = std::filesystem;
namespace {

bool IsConfigName(const std::string& name) {
  return absl::EndsWith(name, ".conflist") || absl::EndsWith(name, ".conf") ||
         absl::EndsWith(name, ".json");
}

// What identifies the directory's state: each config file's name, size and
// modification time. An empty string when the directory holds none.
std::string DirSignature(const std::string& dir, bool* exists) {
  std::vector<std::string> parts;
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  *exists = !ec;
  for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!IsConfigName(name)) continue;
    struct stat st {};
    if (::stat(it->path().c_str(), &st) != 0 || S_ISDIR(st.st_mode)) continue;
    parts.push_back(absl::StrCat(name, ":", st.st_size, ":", st.st_mtim.tv_sec, ".",
                                 st.st_mtim.tv_nsec, ":", st.st_ino));
  }
  std::sort(parts.begin(), parts.end());
  std::string sig;
  for (const auto& p : parts) absl::StrAppend(&sig, p, "/");
  return sig;
}

// The default network with one range set per CIDR in `cidrs` (comma
// separated), so a dual-stack pod CIDR gives each pod both families.
absl::StatusOr<NetworkConfigList> DefaultNetwork(const std::string& cidrs) {
  std::vector<std::string> subnets;
  for (absl::string_view part : absl::StrSplit(cidrs, ',', absl::SkipWhitespace())) {
    subnets.emplace_back(absl::StripAsciiWhitespace(part));
  }
  if (subnets.empty()) subnets.emplace_back(kDefaultPodSubnet);
  nlohmann::json list = nlohmann::json::parse(DefaultBridgeConflist(subnets[0]));
  auto& ipam = list["plugins"][0]["ipam"];
  bool has_v6 = false;
  for (size_t i = 1; i < subnets.size(); ++i) {
    ipam["ranges"].push_back(nlohmann::json::array({{{"subnet", subnets[i]}}}));
  }
  for (const auto& s : subnets) has_v6 = has_v6 || absl::StrContains(s, ':');
  bool has_v4 = std::any_of(subnets.begin(), subnets.end(),
                            [](const std::string& s) { return !absl::StrContains(s, ':'); });
  nlohmann::json routes = nlohmann::json::array();
  if (has_v4) routes.push_back({{"dst", "0.0.0.0/0"}});
  if (has_v6) routes.push_back({{"dst", "::/0"}});
  ipam["routes"] = routes;
  auto parsed = ParseNetworkConfigList(list.dump());
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("default network for pod CIDR \"", cidrs, "\": ", parsed.status().message()));
  }
  parsed->source = "(embedded default)";
  return parsed;
}

nlohmann::json NetworkJson(const NetworkConfigList& list) {
  nlohmann::json j = {
      {"cniVersion", list.cni_version}, {"name", list.name}, {"plugins", list.plugins}};
  if (list.disable_check) j["disableCheck"] = true;
  return j;
}

bool VersionAtLeast(const std::string& version, int major, int minor) {
  std::vector<std::string> parts = absl::StrSplit(version, '.');
  int ma = 0, mi = 0;
  if (parts.empty() || !absl::SimpleAtoi(parts[0], &ma)) return false;
  if (parts.size() > 1 && !absl::SimpleAtoi(parts[1], &mi)) return false;
  return ma > major || (ma == major && mi >= minor);
}

}  // namespace

std::vector<std::string> PodAddresses(const nlohmann::json& result) {
  std::vector<std::string> v4, v6;
  if (!result.is_object() || !result.contains("ips") || !result["ips"].is_array()) return {};
  const nlohmann::json empty = nlohmann::json::array();
  const nlohmann::json& ifaces = result.contains("interfaces") && result["interfaces"].is_array()
                                     ? result["interfaces"]
                                     : empty;
  for (const auto& ip : result["ips"]) {
    if (!ip.is_object() || !ip.contains("address") || !ip["address"].is_string()) continue;
    if (ip.contains("interface") && ip["interface"].is_number_integer()) {
      int idx = ip["interface"].get<int>();
      if (idx >= 0 && static_cast<size_t>(idx) < ifaces.size()) {
        const auto& iface = ifaces[static_cast<size_t>(idx)];
        if (!iface.is_object() || iface.value("sandbox", "").empty()) continue;
      }
    }
    std::string addr = ip["address"].get<std::string>();
    addr = addr.substr(0, addr.find('/'));
    auto& out = absl::StrContains(addr, ':') ? v6 : v4;
    if (std::find(out.begin(), out.end(), addr) == out.end()) out.push_back(addr);
  }
  v4.insert(v4.end(), v6.begin(), v6.end());
  return v4;
}

absl::StatusOr<uint64_t> ParseBandwidth(const std::string& quantity) {
  static const std::pair<const char*, double> kSuffixes[] = {
      {"Ki", 1024.0}, {"Mi", 1048576.0}, {"Gi", 1073741824.0}, {"Ti", 1099511627776.0},
      {"k", 1e3},     {"M", 1e6},        {"G", 1e9},           {"T", 1e12},
      {"m", 1e-3},    {"", 1.0},
  };
  std::string q(absl::StripAsciiWhitespace(quantity));
  for (const auto& [suffix, factor] : kSuffixes) {
    if (!absl::EndsWith(q, suffix)) continue;
    std::string num = q.substr(0, q.size() - strlen(suffix));
    double value = 0;
    if (num.empty() || !absl::SimpleAtod(num, &value) || value < 0 ||
        !std::isdigit(static_cast<unsigned char>(num.back()))) {
      break;
    }
    double bits = value * factor;
    if (bits >= 1.8e19) break;
    return static_cast<uint64_t>(bits);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("bandwidth \"", quantity, "\" is not a quantity such as 10M or 1Gi"));
}

NetworkManager::NetworkManager(NetworkOptions options)
    : options_(std::move(options)), cache_(options_.cache_dir) {}

void NetworkManager::SetPodCidr(const std::string& cidr) {
  absl::MutexLock lock(&mu_);
  pod_cidr_ = cidr;
}

absl::StatusOr<NetworkConfigList> NetworkManager::LoadLocked() {
  bool exists = false;
  std::string sig = DirSignature(options_.conf_dir, &exists);
  const std::string cidrs = options_.default_subnet.empty() ? pod_cidr_ : options_.default_subnet;
  std::string full_sig = absl::StrCat(exists, "|", sig, "|", cidrs);
  if (loaded_.has_value() && full_sig == signature_) return *loaded_;
  signature_ = full_sig;
  if (sig.empty() && options_.default_network) {
    loaded_ = DefaultNetwork(cidrs);
  } else {
    loaded_ = LoadDefaultNetwork(options_.conf_dir);
  }
  return *loaded_;
}

absl::StatusOr<NetworkConfigList> NetworkManager::CurrentNetwork() {
  absl::MutexLock lock(&mu_);
  return LoadLocked();
}

absl::Status NetworkManager::Ready() {
  auto net = CurrentNetwork();
  if (!net.ok()) return absl::FailedPreconditionError(net.status().message());
  for (const auto& plugin : net->plugins) {
    std::vector<std::string> types = {plugin.value("type", "")};
    if (plugin.contains("ipam") && plugin["ipam"].is_object() && plugin["ipam"].contains("type") &&
        plugin["ipam"]["type"].is_string()) {
      types.push_back(plugin["ipam"]["type"].get<std::string>());
    }
    for (const auto& type : types) {
      if (auto found = FindPlugin(type, options_.bin_dirs); !found.ok()) {
        return absl::FailedPreconditionError(absl::StrCat(
            "network \"", net->name, "\" from ", net->source, ": ", found.status().message()));
      }
    }
  }
  // Each main plugin must speak the network's CNI version (asked once per
  // config: VERSION costs an exec, and Status is called every few seconds).
  const std::string key =
      absl::StrCat(net->source, "|", nlohmann::json(net->plugins).dump(), "|", net->cni_version);
  {
    absl::MutexLock lock(&mu_);
    if (key == versions_checked_) return versions_status_;
  }
  absl::Status status = CheckVersions(*net);
  absl::MutexLock lock(&mu_);
  versions_checked_ = key;
  versions_status_ = status;
  return status;
}

absl::Status NetworkManager::CheckVersions(const NetworkConfigList& net) const {
  PluginCall call;
  call.command = "VERSION";
  call.bin_dirs = options_.bin_dirs;
  call.timeout = options_.plugin_timeout;
  for (const auto& plugin : net.plugins) {
    const std::string type = plugin.value("type", "");
    auto path = FindPlugin(type, options_.bin_dirs);
    if (!path.ok()) return absl::FailedPreconditionError(path.status().message());
    auto out = ExecPlugin(*path, call, nlohmann::json{{"cniVersion", net.cni_version}});
    if (!out.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat("network \"", net.name, "\": ", out.status().message()));
    }
    const auto it = out->find("supportedVersions");
    if (it == out->end() || !it->is_array()) {
      return absl::FailedPreconditionError(
          absl::StrCat("network \"", net.name, "\": CNI plugin ", type,
                       " answered VERSION without supportedVersions"));
    }
    bool supported = false;
    for (const auto& v : *it) supported = supported || (v.is_string() && v == net.cni_version);
    if (!supported) {
      return absl::FailedPreconditionError(absl::StrCat(
          "network \"", net.name, "\" from ", net.source, " is CNI ", net.cni_version,
          ", which plugin ", type, " does not support (it supports ", it->dump(), ")"));
    }
  }
  return absl::OkStatus();
}

absl::Status NetworkManager::GarbageCollect(const std::vector<std::string>& valid_ids) {
  auto net = CurrentNetwork();
  if (!net.ok()) return absl::OkStatus();  // nothing configured, nothing to collect
  // GC came with CNI 1.1; older networks have no such command.
  if (!VersionAtLeast(net->cni_version, 1, 1)) return absl::OkStatus();
  nlohmann::json valid = nlohmann::json::array();
  for (const auto& id : valid_ids)
    valid.push_back({{"containerID", id}, {"ifname", options_.ifname}});
  PluginCall call;
  call.command = "GC";
  call.bin_dirs = options_.bin_dirs;
  call.timeout = options_.plugin_timeout;
  for (const auto& plugin : net->plugins) {
    nlohmann::json conf = plugin;
    conf["cniVersion"] = net->cni_version;
    conf["name"] = net->name;
    conf["cni.dev/valid-attachments"] = valid;
    auto path = FindPlugin(conf.value("type", ""), options_.bin_dirs);
    if (!path.ok()) return path.status();
    if (auto out = ExecPlugin(*path, call, conf); !out.ok()) return out.status();
  }
  return absl::OkStatus();
}

nlohmann::json NetworkManager::RuntimeConfigFor(const PodNetwork& pod) const {
  nlohmann::json rc = nlohmann::json::object();
  if (!pod.port_mappings.empty()) {
    nlohmann::json pm = nlohmann::json::array();
    for (const auto& m : pod.port_mappings) {
      nlohmann::json e = {
          {"hostPort", m.host_port}, {"containerPort", m.container_port}, {"protocol", m.protocol}};
      if (!m.host_ip.empty()) e["hostIP"] = m.host_ip;
      pm.push_back(e);
    }
    rc["portMappings"] = pm;
  }
  if (pod.dns.has_value()) {
    rc["dns"] = {{"servers", pod.dns->servers},
                 {"searches", pod.dns->searches},
                 {"options", pod.dns->options}};
  }
  if (pod.ingress_bps != 0 || pod.egress_bps != 0) {
    // As the kubelet did: a rate and an unlimited burst.
    constexpr uint64_t kNoBurst = (uint64_t{1} << 31) - 1;
    nlohmann::json bw = nlohmann::json::object();
    if (pod.ingress_bps != 0) {
      bw["ingressRate"] = pod.ingress_bps;
      bw["ingressBurst"] = kNoBurst;
    }
    if (pod.egress_bps != 0) {
      bw["egressRate"] = pod.egress_bps;
      bw["egressBurst"] = kNoBurst;
    }
    rc["bandwidth"] = bw;
  }
  return rc;
}

std::vector<std::pair<std::string, std::string>> NetworkManager::ArgsFor(
    const PodNetwork& pod) const {
  return {{"IgnoreUnknown", "1"},
          {"K8S_POD_NAMESPACE", pod.namespace_},
          {"K8S_POD_NAME", pod.name},
          {"K8S_POD_INFRA_CONTAINER_ID", pod.id},
          {"K8S_POD_UID", pod.uid}};
}

CacheEntry NetworkManager::NewEntry(const PodNetwork& pod, const NetworkConfigList& net) const {
  CacheEntry entry;
  entry.container_id = pod.id;
  entry.ifname = options_.ifname;
  entry.netns = pod.netns;
  entry.network = NetworkJson(net);
  entry.runtime_config = RuntimeConfigFor(pod);
  entry.args = ArgsFor(pod);
  return entry;
}

absl::StatusOr<nlohmann::json> NetworkManager::RunChain(const std::string& command,
                                                        const nlohmann::json& network,
                                                        const CacheEntry& entry,
                                                        nlohmann::json prev_result, size_t* added) {
  const auto& plugins = network["plugins"];
  const size_t n = plugins.size();
  PluginCall call;
  call.command = command;
  call.container_id = entry.container_id;
  call.netns = entry.netns;
  call.ifname = entry.ifname;
  call.args = entry.args;
  call.bin_dirs = options_.bin_dirs;
  call.timeout = options_.plugin_timeout;
  for (size_t step = 0; step < n; ++step) {
    const size_t i = command == "DEL" ? n - 1 - step : step;
    nlohmann::json conf = plugins[i];
    conf["cniVersion"] = network["cniVersion"];
    conf["name"] = network["name"];
    nlohmann::json rc = nlohmann::json::object();
    if (conf.contains("capabilities") && conf["capabilities"].is_object()) {
      for (const auto& [cap, on] : conf["capabilities"].items()) {
        if (on.is_boolean() && on.get<bool>() && entry.runtime_config.contains(cap)) {
          rc[cap] = entry.runtime_config[cap];
        }
      }
    }
    if (!rc.empty()) conf["runtimeConfig"] = rc;
    if (!prev_result.is_null()) conf["prevResult"] = prev_result;
    auto path = FindPlugin(conf.value("type", ""), options_.bin_dirs);
    if (!path.ok()) return path.status();
    auto out = ExecPlugin(*path, call, conf);
    if (!out.ok()) return out.status();
    if (command == "ADD") {
      prev_result = *out;
      if (added != nullptr) *added = i + 1;
    }
  }
  return prev_result;
}

absl::StatusOr<Attachment> NetworkManager::Setup(const PodNetwork& pod) {
  auto net = CurrentNetwork();
  if (!net.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("pod network is not ready: ", net.status().message()));
  }
  CacheEntry entry = NewEntry(pod, *net);
  // Written first, so a crash during ADD leaves a trace to clean up from.
  if (auto s = cache_.Save(entry); !s.ok()) return s;
  size_t added = 0;
  auto result = RunChain("ADD", entry.network, entry, nlohmann::json(), &added);
  if (!result.ok()) {
    // Undo: DEL through the whole chain (plugins must tolerate DEL for what
    // they never added). Keep the entry when that fails too, so the
    // leftovers are found again.
    auto undo = RunChain("DEL", entry.network, entry, nlohmann::json(), nullptr);
    if (undo.ok()) (void)cache_.Remove(entry.container_id, entry.ifname);
    return absl::Status(
        result.status().code(),
        absl::StrCat("set up network \"", net->name, "\" for pod: ", result.status().message()));
  }
  entry.result = *result;
  if (auto s = cache_.Save(entry); !s.ok()) {
    (void)RunChain("DEL", entry.network, entry, entry.result, nullptr);
    (void)cache_.Remove(entry.container_id, entry.ifname);
    return s;
  }
  Attachment a;
  a.network_name = net->name;
  a.ips = PodAddresses(*result);
  return a;
}

absl::Status NetworkManager::Teardown(const PodNetwork& pod) {
  auto cached = cache_.Load(pod.id, options_.ifname);
  CacheEntry entry;
  if (cached.ok()) {
    entry = *cached;
  } else {
    if (cached.status().code() != absl::StatusCode::kNotFound &&
        cached.status().code() != absl::StatusCode::kDataLoss) {
      return cached.status();
    }
    // Nothing (usable) cached: DEL with what the pod would get now.
    auto net = CurrentNetwork();
    if (!net.ok()) {
      // No network configured and no record of one: nothing was attached
      // that podshim could know how to detach.
      if (cached.status().code() == absl::StatusCode::kDataLoss) {
        (void)cache_.Remove(pod.id, options_.ifname);
      }
      return absl::OkStatus();
    }
    entry = NewEntry(pod, *net);
  }
  auto res = RunChain("DEL", entry.network, entry, entry.result, nullptr);
  if (!res.ok()) {
    return absl::Status(res.status().code(),
                        absl::StrCat("tear down pod network: ", res.status().message()));
  }
  return cache_.Remove(pod.id, options_.ifname);
}

absl::Status NetworkManager::Check(const PodNetwork& pod) {
  auto entry = cache_.Load(pod.id, options_.ifname);
  if (!entry.ok()) return entry.status();
  if (entry->result.is_null()) {
    return absl::FailedPreconditionError("the pod's network ADD has not completed");
  }
  if (!VersionAtLeast(entry->network.value("cniVersion", ""), 0, 4) ||
      entry->network.value("disableCheck", false)) {
    return absl::OkStatus();
  }
  auto res = RunChain("CHECK", entry->network, *entry, entry->result, nullptr);
  return res.ok() ? absl::OkStatus() : res.status();
}

std::vector<std::string> NetworkManager::CachedIds() const {
  std::vector<std::string> ids;
  for (const auto& [id, ifname] : cache_.List()) {
    if (ifname == options_.ifname) ids.push_back(id);
  }
  return ids;
}

}  // namespace podshim::cni
