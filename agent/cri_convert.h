// Pure pieces of turning CRI requests into what podshim runs: argument and
// environment merging as Kubernetes defines it, name keys, filters, IDs.
// No system calls; unit tested. Request validation is in agent/validate.h.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "runtime/launch_spec.h"
#include "runtime/v1/api.pb.h"

namespace podshim::agent {

namespace cri = ::runtime::v1;

// A new object ID: 64 lowercase hex digits from the kernel's random source.
std::string NewId();

// The process args a container runs (Kubernetes' rules): with no command,
// the image's Entrypoint followed by the request's args, or by the image's
// Cmd when args are empty; with a command, command followed by args (the
// image's Entrypoint and Cmd are ignored). INVALID_ARGUMENT when the result
// is empty.
absl::StatusOr<std::vector<std::string>> MergeArgs(const std::vector<std::string>& command,
                                                   const std::vector<std::string>& args,
                                                   const std::vector<std::string>& entrypoint,
                                                   const std::vector<std::string>& cmd);

// The image's Env ("K=V"), then the request's (a key set by the request
// replaces the image's value in place); PATH gets a default when neither
// sets it. Also HOSTNAME as runtimes set it.
std::vector<std::string> MergeEnv(const std::vector<std::string>& image_env,
                                  const std::vector<std::pair<std::string, std::string>>& request,
                                  const std::string& hostname);

// Reserved-name keys, as containerd builds them.
std::string PodNameKey(const cri::PodSandboxMetadata& m);
std::string ContainerNameKey(const cri::ContainerMetadata& m, const cri::PodSandboxMetadata& pod);

// Every pair of `selector` is in `labels`.
bool LabelsMatch(const google::protobuf::Map<std::string, std::string>& labels,
                 const google::protobuf::Map<std::string, std::string>& selector);

// The pod annotations that limit a pod's bandwidth (Kubernetes quantities,
// bits per second), handed to CNI as the "bandwidth" capability. Requests are
// validated in agent/validate.h.
inline constexpr char kIngressBandwidth[] = "kubernetes.io/ingress-bandwidth";
inline constexpr char kEgressBandwidth[] = "kubernetes.io/egress-bandwidth";

// The seccomp profile a security context asks for, as OCI JSON ("" =
// unconfined). Localhost profiles are read from the host path they name.
struct SeccompChoice {
  enum Kind { kUnconfined, kRuntimeDefault, kLocalhost } kind = kUnconfined;
  std::string localhost_path;
};
absl::StatusOr<SeccompChoice> ChooseSeccomp(const cri::LinuxContainerSecurityContext& sc);

// CRI propagation → the launch spec's.
runtime::Propagation ToPropagation(cri::MountPropagation p);

// The paths containerd masks and makes read-only when a request gives none.
std::vector<std::string> DefaultMaskedPaths();
std::vector<std::string> DefaultReadonlyPaths();

// Strings out of the image config ("config" object of an OCI image config).
std::vector<std::string> JsonStrings(const nlohmann::json& config, const char* key);
std::string JsonString(const nlohmann::json& config, const char* key);

// Signal number of "SIGTERM", "TERM", "15"; 0 when unknown.
int SignalNumber(absl::string_view name);
// The CRI enum value for a signal number (SIGNAL_RUNTIME_DEFAULT when none).
cri::Signal CriSignal(int signo);

}  // namespace podshim::agent
