// podshimd's configuration: embedded defaults, an optional TOML file, and
// command-line flags on top. Every key of the file has a flag of the same
// name; unknown keys are an error, so a typo is never silently ignored.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace podshim::agent {

struct Config {
  // The CRI endpoint. Its directory is created 0700, the socket is 0660.
  std::string socket = "/run/podshim/podshim.sock";
  // Volatile state (pinned namespaces, per-pod files); lost on reboot.
  std::string state_dir = "/run/podshim";
  // Persistent state (images, snapshots, container records).
  std::string root_dir = "/var/lib/podshim";
  // trace, debug, info, warn or error.
  std::string log_level = "info";
  // text or json.
  std::string log_format = "text";

  friend bool operator==(const Config&, const Config&) = default;
};

// Where things live under root_dir (see docs/state-layout.md).
inline std::string SnapshotsDir(const Config& c) { return c.root_dir + "/snapshots"; }
inline std::string ContainersDir(const Config& c) { return c.root_dir + "/containers"; }

// Parses TOML text on top of `base`: keys present replace base's values.
// `origin` (a file name) is used in error messages.
absl::StatusOr<Config> ParseConfigToml(absl::string_view text, absl::string_view origin,
                                       Config base = {});

// Checks that values are usable: absolute paths, a socket path short enough
// for sun_path, known log level and format. Messages name the key.
absl::Status ValidateConfig(const Config& config);

// The effective configuration, as reported by Status(verbose=true).
nlohmann::json ConfigToJson(const Config& config);

}  // namespace podshim::agent
