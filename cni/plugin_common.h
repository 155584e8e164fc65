// The plugin side of the CNI protocol, shared by podshim-bridge and
// podshim-ipam: the CNI_* environment, version negotiation, results and
// error objects as JSON, and running another plugin (a delegated IPAM) the
// way a runtime does.
//
// Errors are absl::Status values; a status may carry the CNI error code it
// should be reported with (CniError), otherwise CniCodeOf picks one from
// the status code.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "cni/netlink.h"
#include "nlohmann/json.hpp"

namespace podshim::cni {

// Well-known CNI error codes (SPEC.md, "Error codes").
inline constexpr int kErrIncompatibleVersion = 1;
inline constexpr int kErrUnsupportedField = 2;
inline constexpr int kErrUnknownContainer = 3;
inline constexpr int kErrInvalidEnvironment = 4;
inline constexpr int kErrIo = 5;
inline constexpr int kErrDecode = 6;
inline constexpr int kErrInvalidConfig = 7;
inline constexpr int kErrTryAgainLater = 11;
// podshim's own codes start here.
inline constexpr int kErrInternal = 999;
inline constexpr int kErrAddressesExhausted = 1000;
inline constexpr int kErrPortInUse = 1001;

// A status that is reported with CNI error `code`. The absl code follows
// from the CNI code (invalid input -> INVALID_ARGUMENT, 11 -> UNAVAILABLE ...).
absl::Status CniError(int code, absl::string_view message);
// Keeps `s`'s CNI code and message, with `context` put in front.
absl::Status Annotate(const absl::Status& s, absl::string_view context);
// The CNI code for `s`: the one CniError attached, else INVALID_ARGUMENT ->
// 7, UNAVAILABLE -> 11, anything else -> 999.
int CniCodeOf(const absl::Status& s);

// The CNI spec versions the plugins speak, oldest first.
const std::vector<std::string>& SupportedVersions();
bool IsSupportedVersion(absl::string_view version);
// Compares dotted versions numerically ("0.4.0" < "1.0.0"); unparsable parts count as 0.
int CompareVersions(absl::string_view a, absl::string_view b);

enum class Command { kAdd, kDel, kCheck, kVersion, kGc, kStatus };

// The CNI_* variables a plugin is run with.
struct CniEnv {
  Command command = Command::kVersion;
  std::string command_name;  // as given, e.g. "ADD"
  std::string container_id;
  std::string netns;  // may be empty for DEL
  std::string ifname;
  std::string args;  // CNI_ARGS, "K=V;K2=V2"
  std::string path;  // CNI_PATH, colon-separated directories
};

// Reads and validates the CNI_* variables through `getenv` (tests pass a
// map; plugins pass ::getenv). Code 4 naming the variable when one that the
// command needs is missing or malformed: CNI_CONTAINERID and CNI_IFNAME for
// ADD, DEL and CHECK; CNI_NETNS for ADD and CHECK.
using EnvLookup = std::function<const char*(const char*)>;
absl::StatusOr<CniEnv> ParseEnv(const EnvLookup& getenv);

// ^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$, the rule for container ids and network names.
bool IsValidContainerId(absl::string_view id);
// An interface name the kernel accepts and that is safe in file contents
// and rule comments: 1 to 15 characters, not "." or "..", no '/', ':',
// quotes, backslashes, spaces or control characters.
bool IsValidIfName(absl::string_view name);

// ---- Results ----------------------------------------------------------------

struct CniInterface {
  std::string name;
  std::string mac;
  std::string sandbox;  // the netns path, for interfaces inside the pod
  unsigned mtu = 0;     // 0: not reported
};

struct CniIp {
  IpPrefix address;  // the interface address with the subnet's prefix length
  std::optional<IpAddress> gateway;
  std::optional<int> interface;  // index into CniResult::interfaces
};

struct CniRoute {
  IpPrefix dst;
  std::optional<IpAddress> gw;
};

struct CniDns {
  std::vector<std::string> nameservers;
  std::string domain;
  std::vector<std::string> search;
  std::vector<std::string> options;
  bool empty() const {
    return nameservers.empty() && domain.empty() && search.empty() && options.empty();
  }
};

struct CniResult {
  std::vector<CniInterface> interfaces;
  std::vector<CniIp> ips;
  std::vector<CniRoute> routes;
  CniDns dns;
};

// The result as `version` writes it (0.3.x and 0.4.0 add "version" to each ip).
nlohmann::json ResultToJson(const CniResult& result, absl::string_view version);
// Reads a result of any supported version (a prevResult, or what a
// delegated IPAM plugin printed). Errors name the member at `where`.
absl::StatusOr<CniResult> ResultFromJson(const nlohmann::json& j, absl::string_view where);
// Reads a "dns" object. Errors name the member at `where`.
absl::StatusOr<CniDns> DnsFromJson(const nlohmann::json& j, absl::string_view where);

// {"cniVersion","code","msg"[,"details"]} for `s` as the plugin prints it.
nlohmann::json ErrorJson(const absl::Status& s, absl::string_view version);
// The VERSION answer.
nlohmann::json VersionJson(absl::string_view version);

// ---- Config helpers ------------------------------------------------------

// Parses stdin text as a JSON object; code 6 when it is not one.
absl::StatusOr<nlohmann::json> ParseConfigObject(absl::string_view text);

// The "cniVersion" of a config: code 7 when missing or not a string, code 1
// when it is not one this plugin speaks.
absl::StatusOr<std::string> ConfigVersion(const nlohmann::json& conf, absl::string_view plugin);

// Typed optional members; code 7 naming `path`.`key` when the type is wrong.
absl::StatusOr<std::optional<std::string>> OptionalString(const nlohmann::json& obj,
                                                          const char* key, absl::string_view path);
absl::StatusOr<std::optional<bool>> OptionalBool(const nlohmann::json& obj, const char* key,
                                                 absl::string_view path);
absl::StatusOr<std::optional<int64_t>> OptionalInt(const nlohmann::json& obj, const char* key,
                                                   absl::string_view path);

// Joins a JSON path: KeyPath("ipam", "ranges") -> "ipam.ranges"; an empty
// parent gives the key alone.
std::string KeyPath(absl::string_view parent, absl::string_view key);

// ---- Running another plugin ----------------------------------------------

// The executable for plugin `type` in the colon-separated `cni_path`.
// Code 7 naming ipam.type when there is none.
absl::StatusOr<std::string> FindPlugin(absl::string_view type, absl::string_view cni_path);

// How long a delegated plugin (IPAM) may run before it is killed.
inline constexpr absl::Duration kDelegateTimeout = absl::Seconds(30);

// Runs plugin `type` found in env.path with `stdin_data` on stdin and this
// process's environment, CNI_COMMAND replaced by `command`, through
// runtime::RunProcess, in this plugin's process group (so that the runtime's
// kill of the group reaches it). Its stdout parsed as JSON on success (null
// when it printed nothing); on failure its CNI error (code, msg and details
// kept) prefixed with the plugin's name. A plugin still running after
// `timeout` is killed: code 999.
absl::StatusOr<nlohmann::json> ExecPlugin(absl::string_view type, const CniEnv& env,
                                          absl::string_view command, absl::string_view stdin_data,
                                          absl::Duration timeout = kDelegateTimeout);

// ---- Small things --------------------------------------------------------

// A stable 64-bit FNV-1a hash of `data` (the same in every process and build).
uint64_t StableHash(absl::string_view data);

// The host end of a pod's veth: "veth" + 11 hex digits of the hash of the
// container id and interface name, so DEL finds it without the netns.
std::string HostVethName(absl::string_view container_id, absl::string_view ifname);

// JSON text for stdout; bytes that are not UTF-8 (in a message naming
// some odd path, say) are replaced instead of throwing.
std::string DumpJson(const nlohmann::json& j);

// The cniVersion to answer with: the one `stdin_data` asks for when it is
// one the plugins speak, else the newest.
std::string ReplyVersion(absl::string_view stdin_data);

// A plugin's main(): reads stdin, calls `run` with it, prints what `run`
// returns (nothing when empty) and exits 0, or prints the CNI error object
// and exits 1. Also for exceptions (nlohmann, allocation) escaping `run`.
int PluginMain(const std::function<absl::StatusOr<std::string>(const std::string&)>& run);

// Writes `value` to a /proc/sys file unless it already holds it.
absl::Status WriteSysctl(const std::string& path, absl::string_view value);

}  // namespace podshim::cni
