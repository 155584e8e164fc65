// podshim-kubelet: the toy kubelet. Watches a directory of Pod manifests and
// keeps the node's pods in line with it through a CRI endpoint.
#include <sys/sysinfo.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "kubelet/cri_client.h"
#include "kubelet/http_server.h"
#include "kubelet/kubelet.h"
#include "runtime/files.h"
#include "runtime/signals.h"
#include "spdlog/spdlog.h"

ABSL_FLAG(std::string, endpoint, "unix:///run/podshim/podshim.sock", "CRI endpoint");
ABSL_FLAG(std::string, manifests, "/etc/podshim/manifests", "directory of Pod manifests");
ABSL_FLAG(std::string, status_dir, "/run/podshim-kubelet/pods",
          "where <namespace>_<name>.json status files are written (empty: none)");
ABSL_FLAG(std::string, http, "127.0.0.1:10255",
          "read-only status endpoint HOST:PORT (GET /pods, /pods/NS/NAME, /healthz); 0 = off");
ABSL_FLAG(std::string, node_name, "", "node name (default: the hostname)");
ABSL_FLAG(absl::Duration, backoff_initial, absl::Seconds(10),
          "first crash-loop back-off (doubles per restart)");
ABSL_FLAG(absl::Duration, backoff_max, absl::Minutes(5), "longest crash-loop back-off");
ABSL_FLAG(absl::Duration, sync_period, absl::Seconds(1), "how often each pod is synced");
ABSL_FLAG(absl::Duration, scan_period, absl::Seconds(1), "how often the manifests are read");
ABSL_FLAG(std::string, pod_log_root, "/var/log/pods", "root of the pods' log directories");
ABSL_FLAG(std::string, root_dir, "/var/lib/podshim-kubelet",
          "the kubelet's own state (emptyDir volumes under pods/)");
ABSL_FLAG(std::string, cgroup_parent, "", "cgroup parent of the pods (empty: the runtime's)");
ABSL_FLAG(bool, seccomp_default, false,
          "RuntimeDefault seccomp for pods that name no profile (as kubelet --seccomp-default)");
ABSL_FLAG(bool, remove_pods_on_exit, false,
          "on SIGTERM/SIGINT remove every pod (grace periods honoured) before exiting; by "
          "default the pods keep running and a restarted kubelet adopts them");
ABSL_FLAG(std::string, log_level, "info", "trace, debug, info, warn or error");

namespace {

using podshim::kubelet::CriClient;
using podshim::kubelet::HttpServer;
using podshim::kubelet::Kubelet;
using podshim::kubelet::KubeletOptions;

int Fail(const std::string& message) {
  std::fprintf(stderr, "podshim-kubelet: %s\n", message.c_str());
  return 1;
}

std::string Hostname() {
  char buf[256] = {};
  if (gethostname(buf, sizeof(buf) - 1) != 0) return "localhost";
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "podshim-kubelet --manifests DIR [--endpoint unix:///run/podshim/podshim.sock]\n"
      "Keeps the pods of the Pod manifests in DIR running through a CRI runtime.");
  absl::ParseCommandLine(argc, argv);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ kubelet: %v");
  auto level = spdlog::level::from_str(absl::GetFlag(FLAGS_log_level));
  if (level == spdlog::level::off && absl::GetFlag(FLAGS_log_level) != "off") {
    return Fail(absl::StrCat("--log_level: unknown level ", absl::GetFlag(FLAGS_log_level)));
  }
  spdlog::set_level(level);

  KubeletOptions options;
  options.manifests_dir = absl::GetFlag(FLAGS_manifests);
  options.scan_period = absl::GetFlag(FLAGS_scan_period);
  auto& w = options.worker;
  w.sync_period = absl::GetFlag(FLAGS_sync_period);
  w.backoff_initial = absl::GetFlag(FLAGS_backoff_initial);
  w.backoff_max = absl::GetFlag(FLAGS_backoff_max);
  w.status_dir = absl::GetFlag(FLAGS_status_dir);
  w.node.node_name =
      absl::GetFlag(FLAGS_node_name).empty() ? Hostname() : absl::GetFlag(FLAGS_node_name);
  w.render.node_name = w.node.node_name;
  w.node.pod_log_root = absl::GetFlag(FLAGS_pod_log_root);
  w.node.volume_root = absl::GetFlag(FLAGS_root_dir) + "/pods";
  w.node.cgroup_parent = absl::GetFlag(FLAGS_cgroup_parent);
  w.node.seccomp_default = absl::GetFlag(FLAGS_seccomp_default);
  struct sysinfo si {};
  if (sysinfo(&si) == 0) {
    w.node.memory_capacity_bytes = static_cast<int64_t>(si.totalram) * si.mem_unit;
  }
  if (auto resolv = podshim::runtime::ReadFile("/etc/resolv.conf"); resolv.ok()) {
    w.node.host_resolv_conf = *resolv;
  }
  if (w.sync_period <= absl::ZeroDuration() || options.scan_period <= absl::ZeroDuration() ||
      w.backoff_initial < absl::ZeroDuration() || w.backoff_max < w.backoff_initial) {
    return Fail("periods must be positive and --backoff_max at least --backoff_initial");
  }

  std::string http_host;
  int http_port = 0;
  if (std::string http = absl::GetFlag(FLAGS_http); http != "0" && !http.empty()) {
    size_t colon = http.rfind(':');
    if (colon == std::string::npos || !absl::SimpleAtoi(http.substr(colon + 1), &http_port) ||
        http_port < 0 || http_port > 65535) {
      return Fail(absl::StrCat("--http: want HOST:PORT or 0, got ", http));
    }
    http_host = http.substr(0, colon);
  }

  std::error_code ec;
  std::filesystem::create_directories(options.manifests_dir, ec);
  if (!w.status_dir.empty()) {
    std::filesystem::create_directories(w.status_dir, ec);
    if (ec) return Fail(absl::StrCat("create --status_dir `", w.status_dir, "`: ", ec.message()));
  }

  // Signals are handled by one thread; block them before any thread starts.
  podshim::runtime::BlockShutdownSignals();

  std::unique_ptr<CriClient> cri = CriClient::Connect(absl::GetFlag(FLAGS_endpoint));
  absl::Notification stop;
  std::atomic<bool> signalled{false};
  std::thread signals([&stop, &signalled] {
    int sig = podshim::runtime::WaitForShutdownSignal();
    signalled = true;
    if (!stop.HasBeenNotified()) {
      spdlog::info("signal {}: shutting down", sig);
      stop.Notify();
    }
  });

  // Wait for the runtime, as the kubelet does.
  for (bool told = false; !stop.HasBeenNotified();) {
    auto version = cri->Version();
    if (version.ok()) {
      w.render.runtime_name = version->runtime_name().empty() ? "cri" : version->runtime_name();
      spdlog::info("runtime {} {} (CRI {}) at {}", version->runtime_name(),
                   version->runtime_version(), version->runtime_api_version(),
                   absl::GetFlag(FLAGS_endpoint));
      break;
    }
    if (!told) {
      spdlog::warn("waiting for the runtime at {}: {}", absl::GetFlag(FLAGS_endpoint),
                   std::string(version.status().message()));
      told = true;
    }
    stop.WaitForNotificationWithTimeout(absl::Seconds(1));
  }

  int rc = 0;
  if (!stop.HasBeenNotified()) {
    Kubelet kubelet(cri.get(), options);
    std::unique_ptr<HttpServer> http;
    if (!http_host.empty()) {
      auto server = HttpServer::Start(
          http_host, http_port, [&kubelet](auto, absl::string_view p) { return kubelet.Serve(p); });
      if (!server.ok()) {
        spdlog::error("--http: {}", std::string(server.status().message()));
        rc = 1;
        stop.Notify();
      } else {
        http = std::move(*server);
        spdlog::info("status on http://{}:{}/pods", http_host, http->port());
      }
    }
    spdlog::info("watching {} (node {})", options.manifests_dir, w.node.node_name);
    kubelet.Run(&stop);
    http.reset();
    bool drain = absl::GetFlag(FLAGS_remove_pods_on_exit);
    if (drain) spdlog::info("removing every pod before exiting");
    kubelet.Shutdown(drain, absl::Minutes(5));
  }
  // Wake the signal thread if the stop came from elsewhere.
  if (!signalled) kill(getpid(), SIGTERM);
  signals.join();
  spdlog::info("stopped");
  return rc;
}
