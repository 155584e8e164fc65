// podshimd's configuration: embedded defaults, an optional TOML file, and
// command-line flags on top. Every key of the file has a flag of the same
// name; unknown keys are an error, so a typo is never silently ignored.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace podshim::agent {

// Credentials for one registry host, as a kubelet would pass them in a
// CRI AuthConfig (username/password, or auth = base64 "user:pass", or tokens).
struct RegistryCredentials {
  std::string username;
  std::string password;
  std::string auth;
  std::string identity_token;
  std::string registry_token;

  friend bool operator==(const RegistryCredentials&, const RegistryCredentials&) = default;
};

// The [registry] section.
struct RegistryConfig {
  // Per registry host ("docker.io", "registry.k8s.io"), base URLs tried
  // before the host itself, e.g. "http://127.0.0.1:5000".
  std::map<std::string, std::vector<std::string>> mirrors;
  // Hosts spoken to over plain HTTP. Loopback hosts need no entry.
  std::vector<std::string> plain_http;
  // Credentials per host, used when a PullImage request carries none.
  std::map<std::string, RegistryCredentials> auths;
  // When false, a host with mirrors is fetched from its mirrors only, never
  // from the host itself (for machines without a route to the internet).
  bool upstream_fallback = true;
  // Layer downloads in flight at once per pull.
  int max_concurrent_downloads = 3;

  friend bool operator==(const RegistryConfig&, const RegistryConfig&) = default;
};

// Pod networking through CNI ([cni] in the config file).
struct CniConfig {
  // false: pods get loopback only and NetworkReady is false.
  bool enabled = true;
  std::string conf_dir = "/etc/cni/net.d";
  // Where plugins are looked for, after podshim's own (podshim-bridge,
  // podshim-ipam) in helpers_dir.
  std::vector<std::string> bin_dirs = {"/opt/cni/bin", "/usr/lib/cni"};
  // With no config file in conf_dir, use podshim's own bridge network.
  bool default_network = true;
  // Its subnet(s), comma separated; empty: the kubelet's pod CIDR, else
  // 10.88.0.0/16.
  std::string default_subnet;
  int plugin_timeout_seconds = 60;

  friend bool operator==(const CniConfig&, const CniConfig&) = default;
};

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
  // The cgroup (cgroupfs driver path) pods go under when their config names
  // no cgroup_parent.
  std::string cgroup_parent = "/podshim";
  // Where podshim-pinns and podshim-monitor are; empty: beside podshimd
  // (or, in a build tree, in ../runtime/).
  std::string helpers_dir;
  // pids.max of every container's cgroup (0: no limit of podshim's; the
  // kubelet's pod-level limit on the pod cgroup applies either way), as
  // CRI-O's pids_limit.
  int64_t pids_limit = 0;
  // Turn on the kernel's favordynmods cgroup option at start, so moving a
  // container into its cgroup does not wait for an RCU grace period (see
  // runtime/cgroups.h). Host-wide: forks and exits get slightly dearer.
  bool cgroup_favor_dynmods = true;
  // How long a pod or pull made for a client that gave up (its deadline
  // passed) waits for a retry to take it: an unclaimed pod is then stopped
  // and removed, a pull nobody waits for is cancelled. Must be > 0.
  int64_t handoff_ttl_seconds = 300;
  // How many RPCs may wait for a worker, in each of the two pools (runtime:
  // 16 workers, image: 8); one more is refused with RESOURCE_EXHAUSTED
  // rather than queued without bound. Must be > 0.
  int64_t rpc_queue_limit = 1024;
  // The longest an ExecSync command may run: a request's timeout of 0 (none)
  // or a longer one is capped here. Must be > 0.
  int64_t exec_sync_max_timeout_seconds = 600;
  // Caps on one image layer as it is unpacked (pull and import): its
  // uncompressed bytes and its tar entries. A layer beyond either is refused
  // (RESOURCE_EXHAUSTED), as soon as the cap is passed: a compression or tar
  // bomb fills neither the disk nor the inode table. Must be > 0.
  int64_t max_layer_bytes = int64_t{32} << 30;  // 32 GiB
  int64_t max_layer_entries = 1'000'000;
  // The streaming server (Exec, Attach, PortForward; docs/streaming.md):
  // host:port it listens on (port 0: any free one; the kubelet reaches it
  // through the URLs those RPCs answer), how long a connection may be idle
  // before it is closed and its command killed, how long a URL stays good
  // before a client connects (Go-style durations: "4h", "90s", "1m30s"),
  // and how many connections are served at once (one more: HTTP 503).
  std::string streaming_address = "127.0.0.1:0";
  std::string streaming_idle_timeout = "4h";
  std::string streaming_token_ttl = "1m";
  int64_t streaming_max_streams = 256;
  RegistryConfig registry;
  CniConfig cni;

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

// A streaming_* duration ("4h", "90s"): INVALID_ARGUMENT unless it parses
// and is more than 0.
absl::StatusOr<absl::Duration> StreamingDuration(const std::string& text);

// The effective configuration, as reported by Status(verbose=true).
nlohmann::json ConfigToJson(const Config& config);

}  // namespace podshim::agent
