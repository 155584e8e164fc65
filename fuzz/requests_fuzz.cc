// CRI requests as a client sends them (binary protobuf), through what
// podshimd does with them before touching the host: validation
// (agent/validate.h) and translation (agent/translate.h).
//
// The first byte picks the request: 0 RunPodSandboxRequest, 1
// CreateContainerRequest, 2 UpdateContainerResourcesRequest; the rest is the
// message. Besides "no crash, no leak, no undefined behaviour", it checks what
// issue 18 promises of every refusal: a known code and a bounded message (an
// error never echoes a whole oversized input), and that whatever validation
// lets through, translation takes or refuses with INVALID_ARGUMENT.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "agent/translate.h"
#include "agent/validate.h"
#include "google/protobuf/stubs/logging.h"

namespace {

namespace agent = podshim::agent;
namespace cri = runtime::v1;

// Longest message a refusal may have: a few quoted values of
// agent::kMaxQuotedBytes and the field paths around them.
constexpr size_t kMaxMessageBytes = 4096;

[[noreturn]] void Fail(const std::string& what, const absl::Status& s) {
  std::fprintf(stderr, "requests_fuzz: %s: %s\n", what.c_str(),
               std::string(s.ToString()).substr(0, 600).c_str());
  std::abort();
}

// A refusal must carry a code a client can act on and a bounded message.
void CheckRefusal(const std::string& what, const absl::Status& s) {
  if (s.ok()) return;
  switch (s.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kUnimplemented:
      break;
    default:
      Fail(what + " answered an unexpected code", s);
  }
  if (s.message().size() > kMaxMessageBytes) Fail(what + " echoed too much", s);
  if (s.message().empty()) Fail(what + " gave no message", s);
}

agent::SandboxRecord PodOf(const cri::PodSandboxConfig& config) {
  agent::SandboxRecord p;
  p.id = "pod1";
  p.config = config;
  p.cgroup =
      config.linux().cgroup_parent().empty() ? "/podshim/pod-pod1" : config.linux().cgroup_parent();
  p.net_ns = "/s/pods/pod1/ns/net";
  p.ipc_ns = "/s/pods/pod1/ns/ipc";
  p.uts_ns = "/s/pods/pod1/ns/uts";
  p.hostname = config.hostname();
  p.hostname_file = "/s/pods/pod1/hostname";
  p.hosts_file = "/s/pods/pod1/hosts";
  p.resolv_file = "/s/pods/pod1/resolv.conf";
  p.shm_dir = "/s/pods/pod1/shm";
  return p;
}

void RunPod(const uint8_t* data, size_t size) {
  cri::RunPodSandboxRequest req;
  if (!req.ParseFromArray(data, static_cast<int>(size))) return;
  absl::Status valid = agent::ValidatePodConfig(req.config());
  CheckRefusal("ValidatePodConfig", valid);
  if (!valid.ok()) return;
  agent::PodPlace place{"pod1", "/s/pods/pod1", "/podshim", "/usr/bin/podshim-pinns"};
  auto plan = agent::PlanPod(req.config(), place);
  if (!plan.ok() && plan.status().code() != absl::StatusCode::kInvalidArgument)
    Fail("PlanPod after validation", plan.status());
  CheckRefusal("PlanPod", plan.status());
}

void CreateContainer(const uint8_t* data, size_t size) {
  cri::CreateContainerRequest req;
  if (!req.ParseFromArray(data, static_cast<int>(size))) return;
  absl::Status valid = agent::ValidateContainerConfig(req.config());
  CheckRefusal("ValidateContainerConfig", valid);
  if (!valid.ok()) return;
  // The pod the container goes into: its id is the request's, a target
  // container ("c0") belongs to it, everything else is unknown.
  auto pod_of = [&](absl::string_view id) -> absl::StatusOr<std::string> {
    if (id == "c0") return std::string("pod1");
    return absl::NotFoundError(absl::StrCat("container ", agent::QuoteForError(id)));
  };
  valid = agent::ValidateContainerInPod(req.config(), req.sandbox_config(), "pod1", pod_of);
  CheckRefusal("ValidateContainerInPod", valid);
  if (!valid.ok()) return;

  agent::SandboxRecord pod = PodOf(req.sandbox_config());
  agent::ContainerSource in;
  in.id = "c1";
  in.config = &req.config();
  in.pod = &pod;
  in.bundle = "/s/containers/c1";
  in.layer_dir = "/r/containers/c1";
  in.target_pid = 1;
  in.target_start_time = 7;
  // Device nodes as the host would report them: odd entries are character
  // devices, even ones whatever their minor says.
  for (int i = 0; i < req.config().devices_size(); ++i) {
    podshim::runtime::DeviceNode node{i % 2 ? 'c' : 'b', 1, i,
                                      i % 2 ? "character device" : "block device"};
    absl::Status dev =
        agent::ValidateDeviceNode(node, req.config().devices(i).host_path(),
                                  req.config().linux().security_context().privileged(),
                                  absl::StrCat("config.devices[", i, "].host_path"));
    CheckRefusal("ValidateDeviceNode", dev);
    if (!dev.ok()) return;
    in.device_nodes.push_back(node);
  }
  // A Localhost seccomp profile's text: the request's own annotation, so the
  // profile parser is fuzzed too.
  auto it = req.config().annotations().find("fuzz.seccomp");
  if (it != req.config().annotations().end()) in.localhost_seccomp = it->second;
  in.devices_enforced = size % 2 == 0;
  auto plan = agent::PlanContainer(in);
  CheckRefusal("PlanContainer", plan.status());
  if (plan.ok() && plan->cgroup != pod.cgroup + "/c1")
    Fail("PlanContainer put the container elsewhere: " + plan->cgroup, absl::OkStatus());
}

void UpdateResources(const uint8_t* data, size_t size) {
  cri::UpdateContainerResourcesRequest req;
  if (!req.ParseFromArray(data, static_cast<int>(size))) return;
  absl::Status valid = agent::ValidateUpdateRequest(req);
  CheckRefusal("ValidateUpdateRequest", valid);
  if (valid.ok()) (void)agent::ToCgroup(req.linux());
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  // Invalid UTF-8 in a string field is a refused parse, logged by protobuf
  // each time: quiet, the fuzzer reads refusals by the return value.
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  switch (data[0] % 3) {
    case 0:
      RunPod(data + 1, size - 1);
      break;
    case 1:
      CreateContainer(data + 1, size - 1);
      break;
    default:
      UpdateResources(data + 1, size - 1);
      break;
  }
  return 0;
}
