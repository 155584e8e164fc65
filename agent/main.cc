// podshimd: podshim's node agent. Serves the CRI v1 API on a unix socket.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "agent/config.h"
#include "agent/logging.h"
#include "agent/server.h"
#include "agent/version.h"
#include "image/image_manager.h"
#include "runtime/files.h"
#include "runtime/signals.h"

ABSL_FLAG(std::string, config, "", "TOML config file (optional; every key is also a flag)");
// Unset flags leave the value from the config file (or the default) alone.
ABSL_FLAG(absl::optional<std::string>, socket, absl::nullopt,
          "CRI socket path (default /run/podshim/podshim.sock)");
ABSL_FLAG(absl::optional<std::string>, state_dir, absl::nullopt,
          "volatile state directory (default /run/podshim)");
ABSL_FLAG(absl::optional<std::string>, root_dir, absl::nullopt,
          "persistent state directory (default /var/lib/podshim)");
ABSL_FLAG(absl::optional<std::string>, log_level, absl::nullopt,
          "trace, debug, info, warn or error (default info)");
ABSL_FLAG(absl::optional<std::string>, log_format, absl::nullopt, "text or json (default text)");
ABSL_FLAG(absl::optional<std::string>, cgroup_parent, absl::nullopt,
          "cgroup pods go under when they name none (default /podshim)");
ABSL_FLAG(absl::optional<std::string>, helpers_dir, absl::nullopt,
          "directory of podshim-pinns and podshim-monitor (default: beside podshimd)");
ABSL_FLAG(absl::optional<std::string>, cni_conf_dir, absl::nullopt,
          "CNI network config directory (default /etc/cni/net.d)");
ABSL_FLAG(absl::optional<std::string>, cni_bin_dirs, absl::nullopt,
          "CNI plugin directories, comma separated (default /opt/cni/bin,/usr/lib/cni)");
ABSL_FLAG(absl::optional<std::string>, cni_default_subnet, absl::nullopt,
          "subnet(s) of the default pod network when conf_dir has no config "
          "(default: the kubelet's pod CIDR, else 10.88.0.0/16)");
ABSL_FLAG(absl::optional<int64_t>, pids_limit, absl::nullopt,
          "pids.max of every container's cgroup (default 0: no limit of podshim's)");
ABSL_FLAG(absl::optional<bool>, cgroup_favor_dynmods, absl::nullopt,
          "turn on the kernel's favordynmods cgroup option at start: faster cgroup moves, "
          "host-wide (default true)");
ABSL_FLAG(absl::optional<int64_t>, handoff_ttl_seconds, absl::nullopt,
          "how long a pod or pull made for a client that gave up waits for a retry to take it "
          "before it is removed or cancelled (default 300; more than 0)");
ABSL_FLAG(absl::optional<int64_t>, exec_sync_max_timeout_seconds, absl::nullopt,
          "the longest an ExecSync command may run; a timeout of 0 (none) or a longer one is "
          "capped here (default 600; more than 0)");
ABSL_FLAG(absl::optional<int64_t>, max_layer_bytes, absl::nullopt,
          "the most bytes one image layer may unpack to; more is refused (default 32 GiB)");
ABSL_FLAG(absl::optional<int64_t>, max_layer_entries, absl::nullopt,
          "the most tar entries one image layer may have; more is refused (default 1000000)");
ABSL_FLAG(absl::optional<int64_t>, rpc_queue_limit, absl::nullopt,
          "how many RPCs may wait for a worker in each pool before more are refused with "
          "RESOURCE_EXHAUSTED (default 1024; more than 0)");
ABSL_FLAG(absl::optional<std::string>, streaming_address, absl::nullopt,
          "host:port of the streaming server for Exec, Attach and PortForward (default "
          "127.0.0.1:0: a free loopback port)");
ABSL_FLAG(absl::optional<std::string>, streaming_idle_timeout, absl::nullopt,
          "close a stream with no data either way for this long (default 4h)");
ABSL_FLAG(absl::optional<std::string>, streaming_token_ttl, absl::nullopt,
          "how long a streaming URL stays good before a client connects (default 1m)");
ABSL_FLAG(absl::optional<int64_t>, streaming_max_streams, absl::nullopt,
          "streaming connections served at once; one more is answered 503 (default 256)");
ABSL_FLAG(absl::optional<bool>, cni, absl::nullopt,
          "pod networking through CNI (default true; false: loopback only)");
ABSL_FLAG(std::string, name, "",
          "import only: the reference to give the imported image (e.g. "
          "docker.io/library/busybox:latest); needed when the source does not name it");
ABSL_FLAG(int, shutdown_grace_seconds, 10,
          "on SIGTERM/SIGINT, how long in-flight RPCs may take before they are cancelled");

namespace {

using podshim::agent::Config;

void Override(std::string& field, const absl::optional<std::string>& flag) {
  if (flag.has_value()) field = *flag;
}

// Defaults, then the config file, then flags given on the command line.
absl::StatusOr<Config> EffectiveConfig() {
  Config config;
  if (std::string path = absl::GetFlag(FLAGS_config); !path.empty()) {
    auto text = podshim::runtime::ReadFile(path);
    if (!text.ok())
      return absl::Status(text.status().code(),
                          absl::StrCat("--config: ", text.status().message()));
    auto parsed = podshim::agent::ParseConfigToml(*text, path, config);
    if (!parsed.ok()) return parsed.status();
    config = *parsed;
  }
  Override(config.socket, absl::GetFlag(FLAGS_socket));
  Override(config.state_dir, absl::GetFlag(FLAGS_state_dir));
  Override(config.root_dir, absl::GetFlag(FLAGS_root_dir));
  Override(config.log_level, absl::GetFlag(FLAGS_log_level));
  Override(config.log_format, absl::GetFlag(FLAGS_log_format));
  Override(config.cgroup_parent, absl::GetFlag(FLAGS_cgroup_parent));
  Override(config.helpers_dir, absl::GetFlag(FLAGS_helpers_dir));
  Override(config.cni.conf_dir, absl::GetFlag(FLAGS_cni_conf_dir));
  Override(config.cni.default_subnet, absl::GetFlag(FLAGS_cni_default_subnet));
  if (auto dirs = absl::GetFlag(FLAGS_cni_bin_dirs); dirs.has_value()) {
    config.cni.bin_dirs = absl::StrSplit(*dirs, ',', absl::SkipEmpty());
  }
  if (auto on = absl::GetFlag(FLAGS_cni); on.has_value()) config.cni.enabled = *on;
  if (auto n = absl::GetFlag(FLAGS_pids_limit); n.has_value()) config.pids_limit = *n;
  if (auto on = absl::GetFlag(FLAGS_cgroup_favor_dynmods); on.has_value()) {
    config.cgroup_favor_dynmods = *on;
  }
  if (auto n = absl::GetFlag(FLAGS_handoff_ttl_seconds); n.has_value()) {
    config.handoff_ttl_seconds = *n;
  }
  if (auto n = absl::GetFlag(FLAGS_rpc_queue_limit); n.has_value()) config.rpc_queue_limit = *n;
  if (auto n = absl::GetFlag(FLAGS_max_layer_bytes); n.has_value()) config.max_layer_bytes = *n;
  if (auto n = absl::GetFlag(FLAGS_max_layer_entries); n.has_value()) {
    config.max_layer_entries = *n;
  }
  if (auto n = absl::GetFlag(FLAGS_exec_sync_max_timeout_seconds); n.has_value()) {
    config.exec_sync_max_timeout_seconds = *n;
  }
  Override(config.streaming_address, absl::GetFlag(FLAGS_streaming_address));
  Override(config.streaming_idle_timeout, absl::GetFlag(FLAGS_streaming_idle_timeout));
  Override(config.streaming_token_ttl, absl::GetFlag(FLAGS_streaming_token_ttl));
  if (auto n = absl::GetFlag(FLAGS_streaming_max_streams); n.has_value()) {
    config.streaming_max_streams = *n;
  }
  if (auto s = podshim::agent::ValidateConfig(config); !s.ok()) return s;
  return config;
}

// `podshimd import PATH`: imports an OCI layout, OCI archive or Docker
// archive into the image store of root_dir while no podshimd serves it.
int Import(const Config& config, const std::string& path) {
  auto lock = podshim::agent::LockSocket(config);
  if (!lock.ok()) {
    std::fprintf(stderr, "podshimd import: %s (stop it first: the store has one owner)\n",
                 std::string(lock.status().message()).c_str());
    return 1;
  }
  auto images = podshim::image::ImageManager::Open(podshim::agent::ImageManagerOptionsFor(config));
  if (!images.ok()) {
    std::fprintf(stderr, "podshimd import: %s\n", std::string(images.status().message()).c_str());
    return 1;
  }
  auto records = (*images)->Import(path, absl::GetFlag(FLAGS_name));
  if (!records.ok()) {
    std::fprintf(stderr, "podshimd import: %s\n", std::string(records.status().message()).c_str());
    return 1;
  }
  for (const auto& r : *records) {
    std::printf("imported %s %s\n", r.id.c_str(),
                r.repo_tags.empty() ? "<none>" : absl::StrJoin(r.repo_tags, ",").c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "podshimd [flags]: serves the Kubernetes CRI v1 API on a unix socket");
  absl::FlagsUsageConfig usage;
  usage.version_string = [] { return absl::StrCat("podshimd ", podshim::kVersion, "\n"); };
  absl::SetFlagsUsageConfig(usage);
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);

  auto config = EffectiveConfig();
  if (!config.ok()) {
    std::fprintf(stderr, "podshimd: %s\n", std::string(config.status().message()).c_str());
    return 2;
  }
  if (args.size() == 3 && std::string(args[1]) == "import") return Import(*config, args[2]);
  if (args.size() > 1) {
    std::fprintf(stderr,
                 "podshimd: unexpected argument \"%s\" (usage: podshimd [flags] | "
                 "podshimd [flags] import PATH [--name=REF])\n",
                 args[1]);
    return 2;
  }
  if (auto s = podshim::agent::SetupLogging(config->log_level, config->log_format); !s.ok()) {
    std::fprintf(stderr, "podshimd: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  auto log = podshim::agent::Log("agent");

  // Before any thread exists, so that every gRPC thread inherits the mask and
  // only WaitForShutdownSignal sees SIGTERM/SIGINT.
  podshim::runtime::BlockShutdownSignals();
  log->info("podshimd {} starting (state {}, root {})", podshim::kVersion, config->state_dir,
            config->root_dir);
  auto server = podshim::agent::Server::Start(*config);
  if (!server.ok()) {
    log->error("cannot start: {}", server.status().message());
    return 1;
  }
  int sig = podshim::runtime::WaitForShutdownSignal();
  log->info("signal {} received, shutting down", sig);
  (*server)->Shutdown(absl::Seconds(absl::GetFlag(FLAGS_shutdown_grace_seconds)));
  return 0;
}
