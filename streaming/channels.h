// The Kubernetes channel protocols over WebSocket (the kubelet's streaming
// server and client-go's WebSocket executor speak them): every WebSocket
// message carries one stream's bytes behind a channel number, 0 stdin,
// 1 stdout, 2 stderr, 3 error (the exec's outcome), 4 resize.
//
//   channel.k8s.io, v4.channel.k8s.io, v5.channel.k8s.io
//       binary messages: one byte of channel number, then the bytes;
//   base64.channel.k8s.io, v4.base64.channel.k8s.io
//       text messages: the channel number as one ASCII digit, then the
//       bytes in base64.
//   v4 and later write a JSON metav1.Status on the error channel (an exit
//   code other than 0 as the cause "ExitCode"); older ones write only an
//   error's text. v5 adds channel 255: the client's [255, n] closes stream n
//   (stdin: the command reads end of file).
//
// Pure functions over strings; the server (server.cc) does the I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace podshim::streaming {

inline constexpr uint8_t kStdinChannel = 0;
inline constexpr uint8_t kStdoutChannel = 1;
inline constexpr uint8_t kStderrChannel = 2;
inline constexpr uint8_t kErrorChannel = 3;
inline constexpr uint8_t kResizeChannel = 4;
inline constexpr uint8_t kCloseChannel = 255;  // v5

struct ChannelProtocol {
  // As answered in Sec-WebSocket-Protocol; empty when the client offered
  // none (then channel.k8s.io's rules apply and no protocol is answered).
  std::string name;
  bool base64 = false;
  int version = 1;  // 1 (channel.k8s.io, base64.channel.k8s.io), 4 or 5
};

// The remote command protocol for a client's Sec-WebSocket-Protocol header
// (comma separated, in the client's order of preference): the first one
// podshim speaks. An empty header: the unnamed legacy protocol. nullopt
// when the client offered protocols and none is known.
std::optional<ChannelProtocol> NegotiateChannelProtocol(absl::string_view offered);

// One message on `channel` carrying `data`, in `protocol`'s encoding.
std::string EncodeChannelMessage(const ChannelProtocol& protocol, uint8_t channel,
                                 absl::string_view data);

// A client's message: its channel and its bytes. INVALID_ARGUMENT for an
// empty message, a base64 message whose channel is not a digit or whose
// payload is not base64.
absl::StatusOr<std::pair<uint8_t, std::string>> DecodeChannelMessage(
    const ChannelProtocol& protocol, absl::string_view message);

// What the error channel carries when the command ended with `exit_code`
// (0: success), or could not run at all (`error` set). Empty: nothing is
// written (a success under v1, which has no status).
std::string ExecOutcomeMessage(int version, int exit_code, const std::string* error);

// A resize message, {"Width":W,"Height":H}. INVALID_ARGUMENT for anything else.
absl::StatusOr<std::pair<uint16_t, uint16_t>> ParseResize(absl::string_view json);

}  // namespace podshim::streaming
