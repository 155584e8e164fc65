#include "agent/cri_convert.h"

#include <fcntl.h>
#include <signal.h>

#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "agent/validate.h"
#include "runtime/random.h"

namespace podshim::agent {
namespace {

constexpr char kDefaultPath[] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

absl::Status Invalid(absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

}  // namespace

std::string NewId() { return runtime::RandomHex(32); }

absl::StatusOr<std::vector<std::string>> MergeArgs(const std::vector<std::string>& command,
                                                   const std::vector<std::string>& args,
                                                   const std::vector<std::string>& entrypoint,
                                                   const std::vector<std::string>& cmd) {
  std::vector<std::string> out;
  if (!command.empty()) {
    out = command;
    out.insert(out.end(), args.begin(), args.end());
  } else {
    out = entrypoint;
    const auto& tail = args.empty() ? cmd : args;
    out.insert(out.end(), tail.begin(), tail.end());
  }
  if (out.empty()) {
    return Invalid("config.command",
                   "no command: the request gives none and the image has no Entrypoint or Cmd");
  }
  return out;
}

std::vector<std::string> MergeEnv(const std::vector<std::string>& image_env,
                                  const std::vector<std::pair<std::string, std::string>>& request,
                                  const std::string& hostname) {
  std::vector<std::string> out;
  std::map<std::string, size_t> index;
  auto set = [&](const std::string& key, const std::string& value) {
    std::string entry = absl::StrCat(key, "=", value);
    if (auto it = index.find(key); it != index.end()) {
      out[it->second] = std::move(entry);
    } else {
      index[key] = out.size();
      out.push_back(std::move(entry));
    }
  };
  if (!hostname.empty()) set("HOSTNAME", hostname);
  for (const auto& e : image_env) {
    size_t eq = e.find('=');
    if (eq == std::string::npos) continue;
    set(e.substr(0, eq), e.substr(eq + 1));
  }
  for (const auto& [k, v] : request) set(k, v);
  if (!index.contains("PATH")) set("PATH", kDefaultPath);
  return out;
}

std::string PodNameKey(const cri::PodSandboxMetadata& m) {
  return absl::StrCat(m.name(), "_", m.namespace_(), "_", m.uid(), "_", m.attempt());
}

std::string ContainerNameKey(const cri::ContainerMetadata& m, const cri::PodSandboxMetadata& pod) {
  return absl::StrCat(m.name(), "_", pod.name(), "_", pod.namespace_(), "_", pod.uid(), "_",
                      m.attempt());
}

bool LabelsMatch(const google::protobuf::Map<std::string, std::string>& labels,
                 const google::protobuf::Map<std::string, std::string>& selector) {
  for (const auto& [k, v] : selector) {
    auto it = labels.find(k);
    if (it == labels.end() || it->second != v) return false;
  }
  return true;
}

absl::StatusOr<SeccompChoice> ChooseSeccomp(const cri::LinuxContainerSecurityContext& sc) {
  SeccompChoice c;
  if (sc.has_seccomp()) {
    switch (sc.seccomp().profile_type()) {
      case cri::SecurityProfile::Unconfined:
        return c;
      case cri::SecurityProfile::RuntimeDefault:
        c.kind = SeccompChoice::kRuntimeDefault;
        return c;
      case cri::SecurityProfile::Localhost:
        c.kind = SeccompChoice::kLocalhost;
        c.localhost_path = sc.seccomp().localhost_ref();
        if (auto s = ValidateAbsolutePath(c.localhost_path,
                                          "config.linux.security_context.seccomp.localhost_ref");
            !s.ok()) {
          return s;
        }
        return c;
      default:
        return Invalid("config.linux.security_context.seccomp.profile_type", "unknown");
    }
  }
  // The deprecated field is still what older kubelets and crictl send.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  const std::string& path = sc.seccomp_profile_path();
#pragma GCC diagnostic pop
  if (path.empty() || path == "unconfined") return c;
  if (path == "runtime/default" || path == "docker/default") {
    c.kind = SeccompChoice::kRuntimeDefault;
    return c;
  }
  if (absl::StartsWith(path, "localhost/")) {
    c.kind = SeccompChoice::kLocalhost;
    c.localhost_path = path.substr(strlen("localhost/"));
    if (auto s = ValidateAbsolutePath(c.localhost_path,
                                      "config.linux.security_context.seccomp_profile_path");
        !s.ok()) {
      return s;
    }
    return c;
  }
  return Invalid(
      "config.linux.security_context.seccomp_profile_path",
      absl::StrCat(QuoteForError(path), " is not unconfined, runtime/default or localhost/PATH"));
}

runtime::Propagation ToPropagation(cri::MountPropagation p) {
  switch (p) {
    case cri::PROPAGATION_HOST_TO_CONTAINER:
      return runtime::Propagation::kRslave;
    case cri::PROPAGATION_BIDIRECTIONAL:
      return runtime::Propagation::kRshared;
    default:
      return runtime::Propagation::kPrivate;
  }
}

std::vector<std::string> DefaultMaskedPaths() {
  return {"/proc/acpi",
          "/proc/asound",
          "/proc/kcore",
          "/proc/keys",
          "/proc/latency_stats",
          "/proc/timer_list",
          "/proc/timer_stats",
          "/proc/sched_debug",
          "/proc/scsi",
          "/sys/firmware",
          "/sys/devices/virtual/powercap"};
}

std::vector<std::string> DefaultReadonlyPaths() {
  return {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"};
}

std::vector<std::string> JsonStrings(const nlohmann::json& config, const char* key) {
  std::vector<std::string> out;
  auto it = config.find(key);
  if (it == config.end() || !it->is_array()) return out;
  for (const auto& v : *it) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

std::string JsonString(const nlohmann::json& config, const char* key) {
  auto it = config.find(key);
  if (it == config.end() || !it->is_string()) return "";
  return it->get<std::string>();
}

int SignalNumber(absl::string_view name) {
  int n = 0;
  if (absl::SimpleAtoi(name, &n)) return n > 0 && n < NSIG ? n : 0;
  std::string upper = absl::AsciiStrToUpper(name);
  if (!absl::StartsWith(upper, "SIG")) upper = "SIG" + upper;
  static const std::pair<const char*, int> kSignals[] = {
      {"SIGHUP", SIGHUP},   {"SIGINT", SIGINT},     {"SIGQUIT", SIGQUIT}, {"SIGKILL", SIGKILL},
      {"SIGUSR1", SIGUSR1}, {"SIGUSR2", SIGUSR2},   {"SIGTERM", SIGTERM}, {"SIGSTOP", SIGSTOP},
      {"SIGCONT", SIGCONT}, {"SIGWINCH", SIGWINCH}, {"SIGPWR", SIGPWR},   {"SIGABRT", SIGABRT}};
  for (const auto& [n2, v] : kSignals) {
    if (upper == n2) return v;
  }
  if (absl::StartsWith(upper, "SIGRTMIN+") &&
      absl::SimpleAtoi(absl::string_view(upper).substr(9), &n)) {
    return SIGRTMIN + n <= SIGRTMAX ? SIGRTMIN + n : 0;
  }
  return 0;
}

cri::Signal CriSignal(int signo) {
  const char* abbrev = signo > 0 ? ::sigabbrev_np(signo) : nullptr;
  cri::Signal out = cri::SIGNAL_RUNTIME_DEFAULT;
  if (abbrev == nullptr || !cri::Signal_Parse(absl::StrCat("SIGNAL_SIG", abbrev), &out)) {
    return cri::SIGNAL_RUNTIME_DEFAULT;
  }
  return out;
}

}  // namespace podshim::agent
