// Running one CNI plugin the way the CNI 1.0 spec defines it: the network
// configuration on stdin, the parameters in CNI_* environment variables, a
// result (or an error object) on stdout.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace podshim::cni {

// The environment of one plugin call.
struct PluginCall {
  std::string command;  // ADD, DEL, CHECK, VERSION or GC (the last two: no attachment env)
  std::string container_id;
  std::string netns;  // path of the network namespace
  std::string ifname;
  // CNI_ARGS as key=value pairs, joined with ';' in order.
  std::vector<std::pair<std::string, std::string>> args;
  // CNI_PATH, and where the plugin binary is looked for.
  std::vector<std::string> bin_dirs;
  absl::Duration timeout = absl::Minutes(1);
};

// The first executable file named `type` in `dirs`. NOT_FOUND naming the
// plugin and the directories searched.
absl::StatusOr<std::string> FindPlugin(const std::string& type,
                                       const std::vector<std::string>& dirs);

// The environment a plugin process gets: CNI_* from `call` plus a PATH (so
// plugins that run iptables or similar tools find them).
std::vector<std::string> PluginEnvironment(const PluginCall& call);

// Runs the plugin at `path` with `config` on stdin. Returns what it printed
// on stdout as JSON (an empty object when it printed nothing, as DEL may).
// A plugin that exits non-zero yields an error carrying its CNI error code
// and message: UNAVAILABLE for code 11 ("try again later"),
// FAILED_PRECONDITION for configuration problems (codes 1-7), UNKNOWN
// otherwise. DEADLINE_EXCEEDED when it runs past call.timeout (it is killed).
absl::StatusOr<nlohmann::json> ExecPlugin(const std::string& path, const PluginCall& call,
                                          const nlohmann::json& config);

}  // namespace podshim::cni
