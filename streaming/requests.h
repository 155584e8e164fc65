// What a streaming URL stands for: the CRI request that made it, kept until
// a client connects (see token_cache.h). The agent checked it when it was
// made; the backend (backend.h) looks the container or pod up again when the
// client connects, since it may be gone by then.
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace podshim::streaming {

struct ExecRequest {
  std::string container_id;
  std::vector<std::string> cmd;
  bool tty = false;
  bool stdin = false;
  bool stdout = false;
  bool stderr = false;
};

struct AttachRequest {
  std::string container_id;
  bool tty = false;
  bool stdin = false;
  bool stdout = false;
  bool stderr = false;
};

struct PortForwardRequest {
  std::string pod_sandbox_id;
  std::vector<int32_t> ports;
};

using Request = std::variant<ExecRequest, AttachRequest, PortForwardRequest>;

// Exec and Attach: a session on a command's stdio (the same protocols).
using CommandRequest = std::variant<ExecRequest, AttachRequest>;
struct Stdio {
  bool tty = false;
  bool stdin = false;
  bool stdout = false;
  bool stderr = false;
};
inline Stdio StdioOf(const CommandRequest& request) {
  return std::visit(
      [](const auto& r) {
        return Stdio{r.tty, r.stdin, r.stdout, r.stderr};
      },
      request);
}

// "exec", "attach" or "portforward": the URL's first path segment.
const char* VerbOf(const Request& request);

}  // namespace podshim::streaming
