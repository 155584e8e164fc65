// CNI network configuration: finding the pod network in a config directory
// (usually /etc/cni/net.d) the way kubelet runtimes (containerd, CRI-O) do,
// and podshim's own default network.
//
// A directory holds network lists (*.conflist: {"cniVersion", "name",
// "plugins": [...]}) and single-plugin configs (*.conf: one plugin object
// with "cniVersion", "name" and "type"). *.json files may be either; one
// with a "plugins" key is read as a list. The file that sorts first by name
// and is valid is the default network.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace podshim::cni {

// A config file passed over while looking for the default network, and why.
struct RejectedFile {
  std::string path;
  absl::Status error;
};

// A validated network configuration list.
struct NetworkConfigList {
  std::string name;         // matches ^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$
  std::string cni_version;  // as written, e.g. "1.0.0"
  bool disable_check = false;
  // Each plugin's configuration object as written, in chain order; every one
  // has a non-empty string "type". For a single-plugin .conf file this is the
  // whole file. "name" and "cniVersion" of the list are not copied in here:
  // they are added when a plugin is executed.
  std::vector<nlohmann::json> plugins;
  // The file this came from; empty when parsed from memory.
  std::string source;
  // Files that sorted before `source` and were skipped, for the caller to log.
  std::vector<RejectedFile> rejected;
};

// Parses and validates a network list (.conflist). INVALID_ARGUMENT naming
// the field that is missing or wrong.
absl::StatusOr<NetworkConfigList> ParseNetworkConfigList(absl::string_view data);

// Parses and validates a single plugin config (.conf) and wraps it in a list
// of one plugin with the same name and cniVersion.
absl::StatusOr<NetworkConfigList> ParseNetworkConfig(absl::string_view data);

// Reads one config file, picking the format by its extension (see above).
// Errors name the file.
absl::StatusOr<NetworkConfigList> LoadNetworkFile(const std::string& path);

// The default network in `conf_dir`: of the files ending in .conflist, .conf
// or .json, sorted by file name, the first that loads. The ones before it that
// did not are listed in `rejected`. NOT_FOUND naming the directory (and
// saying why each file was rejected) when the directory is missing or holds
// no usable config.
absl::StatusOr<NetworkConfigList> LoadDefaultNetwork(const std::string& conf_dir);

// The pod subnet of podshim's default network.
inline constexpr char kDefaultPodSubnet[] = "10.88.0.0/16";

// The network podshim installs when none is configured: name "podshim",
// cniVersion "1.0.0", one "podshim-bridge" plugin on bridge "podshim0" that
// is the pods' gateway, does hairpin and no masquerading, handles port
// mappings, and gets addresses from "podshim-ipam" in `subnet` with a
// default route. An empty `subnet` means kDefaultPodSubnet.
std::string DefaultBridgeConflist(absl::string_view subnet = kDefaultPodSubnet);

}  // namespace podshim::cni
