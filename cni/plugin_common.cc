#include "cni/plugin_common.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "runtime/spawn.h"
#include "runtime/unique_fd.h"

namespace podshim::cni {
namespace {

using runtime::ErrnoError;
using runtime::UniqueFd;

constexpr char kCodePayload[] = "type.podshim.dev/cni-error-code";
constexpr char kDetailsPayload[] = "type.podshim.dev/cni-error-details";

absl::StatusCode StatusCodeForCni(int code) {
  switch (code) {
    case kErrIncompatibleVersion:
    case kErrUnsupportedField:
    case kErrInvalidEnvironment:
    case kErrDecode:
    case kErrInvalidConfig:
      return absl::StatusCode::kInvalidArgument;
    case kErrUnknownContainer:
      return absl::StatusCode::kNotFound;
    case kErrTryAgainLater:
      return absl::StatusCode::kUnavailable;
    case kErrAddressesExhausted:
      return absl::StatusCode::kResourceExhausted;
    case kErrPortInUse:
      return absl::StatusCode::kAlreadyExists;
    default:
      return absl::StatusCode::kInternal;
  }
}

absl::Status Invalid(absl::string_view message) { return CniError(kErrInvalidConfig, message); }

std::string Quote(absl::string_view s) { return nlohmann::json(std::string(s)).dump(); }

}  // namespace

absl::Status CniError(int code, absl::string_view message) {
  absl::Status s(StatusCodeForCni(code), message);
  s.SetPayload(kCodePayload, absl::Cord(absl::StrCat(code)));
  return s;
}

absl::Status Annotate(const absl::Status& s, absl::string_view context) {
  absl::Status out(s.code(), absl::StrCat(context, ": ", s.message()));
  s.ForEachPayload(
      [&](absl::string_view url, const absl::Cord& payload) { out.SetPayload(url, payload); });
  return out;
}

int CniCodeOf(const absl::Status& s) {
  if (absl::optional<absl::Cord> payload = s.GetPayload(kCodePayload); payload.has_value()) {
    int code = 0;
    if (absl::SimpleAtoi(std::string(*payload), &code)) return code;
  }
  switch (s.code()) {
    case absl::StatusCode::kInvalidArgument:
      return kErrInvalidConfig;
    case absl::StatusCode::kUnavailable:
      return kErrTryAgainLater;
    default:
      return kErrInternal;
  }
}

const std::vector<std::string>& SupportedVersions() {
  static const auto* versions = new std::vector<std::string>{"0.3.0", "0.3.1", "0.4.0", "1.0.0"};
  return *versions;
}

bool IsSupportedVersion(absl::string_view version) {
  const std::vector<std::string>& all = SupportedVersions();
  return std::find(all.begin(), all.end(), version) != all.end();
}

int CompareVersions(absl::string_view a, absl::string_view b) {
  std::vector<absl::string_view> pa = absl::StrSplit(a, '.');
  std::vector<absl::string_view> pb = absl::StrSplit(b, '.');
  for (size_t i = 0; i < std::max(pa.size(), pb.size()); ++i) {
    int x = 0;
    int y = 0;
    if (i < pa.size() && !absl::SimpleAtoi(pa[i], &x)) x = 0;
    if (i < pb.size() && !absl::SimpleAtoi(pb[i], &y)) y = 0;
    if (x != y) return x < y ? -1 : 1;
  }
  return 0;
}

bool IsValidContainerId(absl::string_view id) {
  auto alnum = [](char c) { return absl::ascii_isalnum(static_cast<unsigned char>(c)); };
  if (id.empty() || !alnum(id.front())) return false;
  return std::all_of(id.begin(), id.end(),
                     [&](char c) { return alnum(c) || c == '_' || c == '.' || c == '-'; });
}

bool IsValidIfName(absl::string_view name) {
  if (name.empty() || name.size() > 15 || name == "." || name == "..") return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u > 0x20 && u < 0x7f && c != '/' && c != ':' && c != '"' && c != '\'' && c != '\\';
  });
}

absl::StatusOr<CniEnv> ParseEnv(const EnvLookup& getenv) {
  auto get = [&](const char* name) -> std::string {
    const char* v = getenv(name);
    return v != nullptr ? std::string(v) : std::string();
  };
  CniEnv env;
  env.command_name = get("CNI_COMMAND");
  static const std::map<std::string, Command>* commands = new std::map<std::string, Command>{
      {"ADD", Command::kAdd},         {"DEL", Command::kDel}, {"CHECK", Command::kCheck},
      {"VERSION", Command::kVersion}, {"GC", Command::kGc},   {"STATUS", Command::kStatus},
  };
  if (env.command_name.empty()) {
    return CniError(kErrInvalidEnvironment, "CNI_COMMAND is not set");
  }
  auto it = commands->find(env.command_name);
  if (it == commands->end()) {
    return CniError(kErrInvalidEnvironment,
                    absl::StrCat("CNI_COMMAND ", Quote(env.command_name),
                                 " is not one of ADD, DEL, CHECK, VERSION, GC, STATUS"));
  }
  env.command = it->second;
  env.container_id = get("CNI_CONTAINERID");
  env.netns = get("CNI_NETNS");
  env.ifname = get("CNI_IFNAME");
  env.args = get("CNI_ARGS");
  env.path = get("CNI_PATH");

  if (env.command != Command::kAdd && env.command != Command::kDel &&
      env.command != Command::kCheck) {
    return env;
  }
  if (env.container_id.empty()) {
    return CniError(kErrInvalidEnvironment,
                    absl::StrCat("CNI_CONTAINERID is not set (needed for ", env.command_name, ")"));
  }
  if (!IsValidContainerId(env.container_id)) {
    return CniError(kErrInvalidEnvironment,
                    absl::StrCat("CNI_CONTAINERID ", Quote(env.container_id),
                                 " must be letters, digits, '_', '.' or '-' and start with a "
                                 "letter or digit"));
  }
  if (env.ifname.empty()) {
    return CniError(kErrInvalidEnvironment,
                    absl::StrCat("CNI_IFNAME is not set (needed for ", env.command_name, ")"));
  }
  if (!IsValidIfName(env.ifname)) {
    return CniError(kErrInvalidEnvironment,
                    absl::StrCat("CNI_IFNAME ", Quote(env.ifname),
                                 " is not a valid interface name (1-15 characters, no '/', ':', "
                                 "quotes or spaces)"));
  }
  if (env.command != Command::kDel && env.netns.empty()) {
    return CniError(kErrInvalidEnvironment,
                    absl::StrCat("CNI_NETNS is not set (needed for ", env.command_name, ")"));
  }
  return env;
}

// ---- Results ----------------------------------------------------------------

nlohmann::json ResultToJson(const CniResult& result, absl::string_view version) {
  const bool legacy = CompareVersions(version, "1.0.0") < 0;
  nlohmann::json out = {{"cniVersion", std::string(version)}};
  if (!result.interfaces.empty()) {
    nlohmann::json list = nlohmann::json::array();
    for (const CniInterface& i : result.interfaces) {
      nlohmann::json j = {{"name", i.name}};
      if (!i.mac.empty()) j["mac"] = i.mac;
      if (i.mtu != 0) j["mtu"] = i.mtu;
      if (!i.sandbox.empty()) j["sandbox"] = i.sandbox;
      list.push_back(std::move(j));
    }
    out["interfaces"] = std::move(list);
  }
  if (!result.ips.empty()) {
    nlohmann::json list = nlohmann::json::array();
    for (const CniIp& ip : result.ips) {
      nlohmann::json j;
      if (legacy) j["version"] = ip.address.address.is_v4() ? "4" : "6";
      j["address"] = ip.address.ToString();
      if (ip.gateway.has_value()) j["gateway"] = ip.gateway->ToString();
      if (ip.interface.has_value()) j["interface"] = *ip.interface;
      list.push_back(std::move(j));
    }
    out["ips"] = std::move(list);
  }
  if (!result.routes.empty()) {
    nlohmann::json list = nlohmann::json::array();
    for (const CniRoute& r : result.routes) {
      nlohmann::json j = {{"dst", r.dst.ToString()}};
      if (r.gw.has_value()) j["gw"] = r.gw->ToString();
      list.push_back(std::move(j));
    }
    out["routes"] = std::move(list);
  }
  nlohmann::json dns = nlohmann::json::object();
  if (!result.dns.nameservers.empty()) dns["nameservers"] = result.dns.nameservers;
  if (!result.dns.domain.empty()) dns["domain"] = result.dns.domain;
  if (!result.dns.search.empty()) dns["search"] = result.dns.search;
  if (!result.dns.options.empty()) dns["options"] = result.dns.options;
  out["dns"] = std::move(dns);
  return out;
}

namespace {

absl::StatusOr<std::vector<std::string>> StringList(const nlohmann::json& obj, const char* key,
                                                    absl::string_view where) {
  std::vector<std::string> out;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return out;
  if (!it->is_array()) return Invalid(absl::StrCat(KeyPath(where, key), " must be a list"));
  for (size_t i = 0; i < it->size(); ++i) {
    if (!(*it)[i].is_string()) {
      return Invalid(absl::StrCat(KeyPath(where, key), "[", i, "] must be a string"));
    }
    out.push_back((*it)[i].get<std::string>());
  }
  return out;
}

absl::StatusOr<IpAddress> IpMember(const nlohmann::json& v, absl::string_view where) {
  if (!v.is_string()) return Invalid(absl::StrCat(where, " must be a string"));
  absl::StatusOr<IpAddress> ip = IpAddress::Parse(v.get<std::string>());
  if (!ip.ok()) return Invalid(absl::StrCat(where, ": ", ip.status().message()));
  return ip;
}

absl::StatusOr<IpPrefix> PrefixMember(const nlohmann::json& v, absl::string_view where) {
  if (!v.is_string()) return Invalid(absl::StrCat(where, " must be a string"));
  absl::StatusOr<IpPrefix> p = IpPrefix::Parse(v.get<std::string>());
  if (!p.ok()) return Invalid(absl::StrCat(where, ": ", p.status().message()));
  return p;
}

}  // namespace

absl::StatusOr<CniDns> DnsFromJson(const nlohmann::json& j, absl::string_view where) {
  CniDns dns;
  if (j.is_null()) return dns;
  if (!j.is_object()) return Invalid(absl::StrCat(where, " must be an object"));
  absl::StatusOr<std::vector<std::string>> list = StringList(j, "nameservers", where);
  if (!list.ok()) return list.status();
  dns.nameservers = *std::move(list);
  list = StringList(j, "search", where);
  if (!list.ok()) return list.status();
  dns.search = *std::move(list);
  list = StringList(j, "options", where);
  if (!list.ok()) return list.status();
  dns.options = *std::move(list);
  absl::StatusOr<std::optional<std::string>> domain = OptionalString(j, "domain", where);
  if (!domain.ok()) return domain.status();
  dns.domain = domain->value_or("");
  return dns;
}

absl::StatusOr<CniResult> ResultFromJson(const nlohmann::json& j, absl::string_view where) {
  if (!j.is_object()) return Invalid(absl::StrCat(where, " must be an object"));
  CniResult out;
  if (auto it = j.find("interfaces"); it != j.end() && !it->is_null()) {
    std::string path = KeyPath(where, "interfaces");
    if (!it->is_array()) return Invalid(absl::StrCat(path, " must be a list"));
    for (size_t i = 0; i < it->size(); ++i) {
      const nlohmann::json& e = (*it)[i];
      std::string at = absl::StrCat(path, "[", i, "]");
      if (!e.is_object()) return Invalid(absl::StrCat(at, " must be an object"));
      CniInterface iface;
      for (auto [key, dest] : {std::pair<const char*, std::string*>{"name", &iface.name},
                               {"mac", &iface.mac},
                               {"sandbox", &iface.sandbox}}) {
        absl::StatusOr<std::optional<std::string>> v = OptionalString(e, key, at);
        if (!v.ok()) return v.status();
        *dest = v->value_or("");
      }
      if (iface.name.empty()) return Invalid(absl::StrCat(at, ".name is missing"));
      absl::StatusOr<std::optional<int64_t>> mtu = OptionalInt(e, "mtu", at);
      if (!mtu.ok()) return mtu.status();
      iface.mtu = static_cast<unsigned>(mtu->value_or(0));
      out.interfaces.push_back(std::move(iface));
    }
  }
  if (auto it = j.find("ips"); it != j.end() && !it->is_null()) {
    std::string path = KeyPath(where, "ips");
    if (!it->is_array()) return Invalid(absl::StrCat(path, " must be a list"));
    for (size_t i = 0; i < it->size(); ++i) {
      const nlohmann::json& e = (*it)[i];
      std::string at = absl::StrCat(path, "[", i, "]");
      if (!e.is_object()) return Invalid(absl::StrCat(at, " must be an object"));
      CniIp ip;
      auto addr = e.find("address");
      if (addr == e.end()) return Invalid(absl::StrCat(at, ".address is missing"));
      absl::StatusOr<IpPrefix> prefix = PrefixMember(*addr, KeyPath(at, "address"));
      if (!prefix.ok()) return prefix.status();
      ip.address = *prefix;
      if (auto gw = e.find("gateway"); gw != e.end() && !gw->is_null()) {
        absl::StatusOr<IpAddress> g = IpMember(*gw, KeyPath(at, "gateway"));
        if (!g.ok()) return g.status();
        ip.gateway = *g;
      }
      absl::StatusOr<std::optional<int64_t>> index = OptionalInt(e, "interface", at);
      if (!index.ok()) return index.status();
      if (index->has_value()) {
        if (**index < 0 || **index >= static_cast<int64_t>(out.interfaces.size())) {
          return Invalid(absl::StrCat(at, ".interface ", **index, " is not an index into ",
                                      KeyPath(where, "interfaces")));
        }
        ip.interface = static_cast<int>(**index);
      }
      out.ips.push_back(ip);
    }
  }
  if (auto it = j.find("routes"); it != j.end() && !it->is_null()) {
    std::string path = KeyPath(where, "routes");
    if (!it->is_array()) return Invalid(absl::StrCat(path, " must be a list"));
    for (size_t i = 0; i < it->size(); ++i) {
      const nlohmann::json& e = (*it)[i];
      std::string at = absl::StrCat(path, "[", i, "]");
      if (!e.is_object()) return Invalid(absl::StrCat(at, " must be an object"));
      CniRoute route;
      auto dst = e.find("dst");
      if (dst == e.end()) return Invalid(absl::StrCat(at, ".dst is missing"));
      absl::StatusOr<IpPrefix> prefix = PrefixMember(*dst, KeyPath(at, "dst"));
      if (!prefix.ok()) return prefix.status();
      route.dst = *prefix;
      if (auto gw = e.find("gw"); gw != e.end() && !gw->is_null()) {
        absl::StatusOr<IpAddress> g = IpMember(*gw, KeyPath(at, "gw"));
        if (!g.ok()) return g.status();
        route.gw = *g;
      }
      out.routes.push_back(route);
    }
  }
  if (auto it = j.find("dns"); it != j.end()) {
    absl::StatusOr<CniDns> dns = DnsFromJson(*it, KeyPath(where, "dns"));
    if (!dns.ok()) return dns.status();
    out.dns = *std::move(dns);
  }
  return out;
}

nlohmann::json ErrorJson(const absl::Status& s, absl::string_view version) {
  nlohmann::json out = {
      {"cniVersion", std::string(version)},
      {"code", CniCodeOf(s)},
      {"msg", std::string(s.message())},
  };
  if (absl::optional<absl::Cord> details = s.GetPayload(kDetailsPayload); details.has_value()) {
    out["details"] = std::string(*details);
  }
  return out;
}

nlohmann::json VersionJson(absl::string_view version) {
  return {{"cniVersion", std::string(version)}, {"supportedVersions", SupportedVersions()}};
}

// ---- Config helpers ------------------------------------------------------

std::string KeyPath(absl::string_view parent, absl::string_view key) {
  return parent.empty() ? std::string(key) : absl::StrCat(parent, ".", key);
}

absl::StatusOr<nlohmann::json> ParseConfigObject(absl::string_view text) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::exception& e) {  // parse_error, out_of_range ("1E400")
    absl::string_view why = e.what();
    if (size_t end = why.find("] "); end != absl::string_view::npos) why.remove_prefix(end + 2);
    return CniError(kErrDecode, absl::StrCat("network config on stdin is not valid JSON: ", why));
  }
  if (!j.is_object()) {
    return CniError(kErrDecode, absl::StrCat("network config on stdin must be a JSON object, got ",
                                             j.type_name()));
  }
  return j;
}

absl::StatusOr<std::string> ConfigVersion(const nlohmann::json& conf, absl::string_view plugin) {
  auto it = conf.find("cniVersion");
  if (it == conf.end()) return Invalid("\"cniVersion\" is missing");
  if (!it->is_string()) return Invalid("\"cniVersion\" must be a string");
  std::string version = it->get<std::string>();
  if (!IsSupportedVersion(version)) {
    return CniError(kErrIncompatibleVersion,
                    absl::StrCat("\"cniVersion\" ", Quote(version), " is not supported by ", plugin,
                                 " (supported: ", absl::StrJoin(SupportedVersions(), ", "), ")"));
  }
  return version;
}

absl::StatusOr<std::optional<std::string>> OptionalString(const nlohmann::json& obj,
                                                          const char* key, absl::string_view path) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::optional<std::string>();
  if (!it->is_string()) {
    return Invalid(absl::StrCat(KeyPath(path, key), " must be a string, got ", it->type_name()));
  }
  return std::optional<std::string>(it->get<std::string>());
}

absl::StatusOr<std::optional<bool>> OptionalBool(const nlohmann::json& obj, const char* key,
                                                 absl::string_view path) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::optional<bool>();
  if (!it->is_boolean()) {
    return Invalid(
        absl::StrCat(KeyPath(path, key), " must be true or false, got ", it->type_name()));
  }
  return std::optional<bool>(it->get<bool>());
}

absl::StatusOr<std::optional<int64_t>> OptionalInt(const nlohmann::json& obj, const char* key,
                                                   absl::string_view path) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::optional<int64_t>();
  if (it->is_number_unsigned()) {
    uint64_t v = it->get<uint64_t>();
    if (v > static_cast<uint64_t>(INT64_MAX)) {
      return Invalid(absl::StrCat(KeyPath(path, key), " is too large"));
    }
    return std::optional<int64_t>(static_cast<int64_t>(v));
  }
  if (!it->is_number_integer()) {
    return Invalid(absl::StrCat(KeyPath(path, key), " must be an integer, got ",
                                it->is_number() ? it->dump() : it->type_name()));
  }
  return std::optional<int64_t>(it->get<int64_t>());
}

// ---- Running another plugin ----------------------------------------------

absl::StatusOr<std::string> FindPlugin(absl::string_view type, absl::string_view cni_path) {
  if (type.empty() || absl::StrContains(type, '/') || type == "." || type == "..") {
    return Invalid(absl::StrCat("ipam.type ", Quote(type), " must be a plain file name"));
  }
  if (cni_path.empty()) {
    return CniError(
        kErrInvalidEnvironment,
        absl::StrCat("CNI_PATH is not set; it is needed to find the IPAM plugin ", Quote(type)));
  }
  for (absl::string_view dir : absl::StrSplit(cni_path, ':', absl::SkipEmpty())) {
    std::string candidate = absl::StrCat(dir, "/", type);
    struct stat st {};
    if (stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
  }
  return Invalid(absl::StrCat("ipam.type: no executable plugin ", Quote(type), " in CNI_PATH ",
                              Quote(cni_path)));
}

absl::StatusOr<nlohmann::json> ExecPlugin(absl::string_view type, const CniEnv& env,
                                          absl::string_view command, absl::string_view stdin_data,
                                          absl::Duration timeout) {
  absl::StatusOr<std::string> binary = FindPlugin(type, env.path);
  if (!binary.ok()) return binary.status();
  const std::string who = absl::StrCat("IPAM plugin ", Quote(type));

  // This process's environment with CNI_COMMAND set to `command`.
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    if (!absl::StartsWith(*e, "CNI_COMMAND=")) env_strings.emplace_back(*e);
  }
  env_strings.push_back(absl::StrCat("CNI_COMMAND=", command));
  // The one process runner (runtime/spawn.h): a plugin that hangs is killed
  // at the timeout, never waited for without end. It stays in this plugin's
  // process group, so the runtime's kill of our group at its own timeout
  // reaches it (and whatever it started) too.
  runtime::SpawnOptions opts;
  opts.argv = {*binary};
  opts.env = std::move(env_strings);
  opts.stdin_data = std::string(stdin_data);
  opts.new_session = false;
  opts.timeout = timeout;
  absl::StatusOr<runtime::SpawnResult> res = runtime::RunProcess(opts);
  if (!res.ok()) {
    return absl::Status(res.status().code(),
                        absl::StrCat("run ", who, ": ", res.status().message()));
  }
  if (res->timed_out) {
    return CniError(kErrInternal, absl::StrCat(who, " did not finish within ",
                                               absl::FormatDuration(timeout), " and was killed"));
  }
  // Its stderr goes where ours goes (the runtime's log of this call).
  if (!res->err.empty()) (void)!write(STDERR_FILENO, res->err.data(), res->err.size());
  const std::string& out = res->out;

  nlohmann::json parsed;
  bool is_json = true;
  try {
    if (!absl::StripAsciiWhitespace(out).empty()) parsed = nlohmann::json::parse(out);
  } catch (const nlohmann::json::exception&) {  // parse_error, out_of_range ("1E400")
    is_json = false;
  }
  if (res->term_signal == 0 && res->exit_code == 0) {
    if (!is_json) {
      return CniError(kErrDecode, absl::StrCat(who, " printed a result that is not JSON: ",
                                               absl::StripAsciiWhitespace(out)));
    }
    return parsed;
  }
  if (is_json && parsed.is_object() && parsed.contains("code")) {
    int code = parsed["code"].is_number_integer() ? parsed["code"].get<int>() : kErrInternal;
    std::string msg = parsed.value("msg", std::string("(no message)"));
    absl::Status s = CniError(code, absl::StrCat(who, ": ", msg));
    if (parsed.contains("details") && parsed["details"].is_string()) {
      s.SetPayload(kDetailsPayload, absl::Cord(parsed["details"].get<std::string>()));
    }
    return s;
  }
  std::string how = res->term_signal == 0 ? absl::StrCat("exited with status ", res->exit_code)
                                          : absl::StrCat("was killed by signal ", res->term_signal);
  return CniError(kErrInternal, absl::StrCat(who, " ", how, ": ", absl::StripAsciiWhitespace(out)));
}

// ---- Small things --------------------------------------------------------

uint64_t StableHash(absl::string_view data) {
  uint64_t h = 14695981039346656037ULL;
  for (char c : data) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ULL;
  }
  return h;
}

std::string HostVethName(absl::string_view container_id, absl::string_view ifname) {
  uint64_t h = StableHash(absl::StrCat(container_id, std::string(1, '\0'), ifname));
  char buf[16];
  std::snprintf(
      buf, sizeof(buf), "%011llx",
      static_cast<unsigned long long>(h & ((1ULL << 44) - 1)));  // NOLINT(google-runtime-int)
  return absl::StrCat("veth", buf);
}

namespace {

absl::StatusOr<std::string> ReadAllStdin() {
  std::string out;
  char buf[8192];
  for (;;) {
    ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return CniError(kErrIo, ErrnoError(errno, "read", "stdin").message());
    if (n == 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

void WriteStdout(absl::string_view text) {
  std::string data = absl::StrCat(text, "\n");
  for (size_t done = 0; done < data.size();) {
    ssize_t n = write(STDOUT_FILENO, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

}  // namespace

std::string DumpJson(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string ReplyVersion(absl::string_view stdin_data) {
  nlohmann::json j = nlohmann::json::parse(stdin_data.begin(), stdin_data.end(), nullptr,
                                           /*allow_exceptions=*/false);
  if (j.is_object() && j.contains("cniVersion") && j["cniVersion"].is_string() &&
      IsSupportedVersion(j["cniVersion"].get<std::string>())) {
    return j["cniVersion"].get<std::string>();
  }
  return SupportedVersions().back();
}

int PluginMain(const std::function<absl::StatusOr<std::string>(const std::string&)>& run) {
  // A delegated plugin that exits early must not kill us through a pipe.
  signal(SIGPIPE, SIG_IGN);
  std::string stdin_data;
  absl::Status failure;
  try {
    absl::StatusOr<std::string> in = ReadAllStdin();
    if (!in.ok()) {
      failure = in.status();
    } else {
      stdin_data = *std::move(in);
      absl::StatusOr<std::string> out = run(stdin_data);
      if (out.ok()) {
        if (!out->empty()) WriteStdout(*out);
        return 0;
      }
      failure = out.status();
    }
  } catch (const std::exception& e) {
    failure = CniError(kErrInternal, absl::StrCat("unexpected error: ", e.what()));
  }
  WriteStdout(DumpJson(ErrorJson(failure, ReplyVersion(stdin_data))));
  return 1;
}

absl::Status WriteSysctl(const std::string& path, absl::string_view value) {
  UniqueFd fd(open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd.valid()) return ErrnoError(errno, "open", path);
  char buf[64] = {};
  ssize_t n = read(fd.get(), buf, sizeof(buf) - 1);
  if (n > 0 &&
      absl::StripAsciiWhitespace(absl::string_view(buf, static_cast<size_t>(n))) == value) {
    return absl::OkStatus();
  }
  if (pwrite(fd.get(), value.data(), value.size(), 0) != static_cast<ssize_t>(value.size())) {
    return ErrnoError(errno, absl::StrCat("write ", value, " to"), path);
  }
  return absl::OkStatus();
}

}  // namespace podshim::cni
