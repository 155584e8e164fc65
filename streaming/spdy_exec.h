// Exec over SPDY/3.1, as the kubelet's streaming server serves it and as
// client-go's SPDY executor (crictl's and critest's default transport, and
// the kubelet's own requests to the runtime) speaks it.
//
// The client POSTs (or GETs) /exec/TOKEN with `Connection: Upgrade`,
// `Upgrade: SPDY/3.1` and one or more `X-Stream-Protocol-Version` headers;
// the server answers 101 with the version it chose (v4.channel.k8s.io,
// v3.channel.k8s.io, v2.channel.k8s.io or channel.k8s.io). From then on the
// connection carries SPDY frames (streaming/spdy_frames.h), the server being
// the SPDY server:
//
//   - the client opens one stream per stdio channel with SYN_STREAM, its
//     kind in the header `streamtype`: error, stdin, stdout, stderr and, for
//     a terminal from v3 on, resize. The server accepts each with an empty
//     SYN_REPLY and starts the command once all the ExecRequest needs are
//     there (ServerOptions::stream_creation_timeout, else the connection is
//     dropped);
//   - output goes out as DATA frames on stdout and stderr, one piece at a
//     time (the next is read from the command once the previous is sent);
//     stdin comes in as DATA frames, its end as a FIN; resize carries JSON
//     sizes, {"Width":W,"Height":H}, one after the other;
//   - once the command has ended and its output is sent, stdout and stderr
//     end with a FIN, the outcome goes out on the error stream (v4: a JSON
//     metav1.Status; older versions: an error's text, nothing on success)
//     with a FIN, then GOAWAY, and the connection closes.
//
// No flow control (spdystream, the client's side, has none: it never sends
// WINDOW_UPDATE); the client's PINGs are echoed, its SETTINGS and
// WINDOW_UPDATEs ignored. A malformed frame ends the session with GOAWAY
// (PROTOCOL_ERROR); a client that goes away takes its command with it.
#pragma once

#include <memory>
#include <string>
#include <utility>  // before Asio: Boost 1.74 uses std::exchange without it
#include <vector>

#include <boost/asio.hpp>

#include "absl/strings/string_view.h"
#include "streaming/backend.h"
#include "streaming/requests.h"
#include "streaming/server.h"
#include "streaming/server_internal.h"

namespace podshim::streaming {

// The remote command protocols podshim speaks over SPDY, preferred first
// (the kubelet's list).
const std::vector<std::string>& SpdyExecProtocols();

// The answer to a SPDY exec upgrade request.
struct SpdyUpgrade {
  // 101: go ahead. Else the HTTP status to answer with: 400 without the
  // upgrade headers or without X-Stream-Protocol-Version, 403 when none of
  // the client's protocols is spoken.
  int status = 101;
  // An error's text, as the kubelet words it.
  std::string message;
  // 403: one X-Accepted-Stream-Protocol-Versions header for each.
  std::vector<std::string> accepted;
  // 101: the protocol chosen and its version (1 for channel.k8s.io, else 2-4).
  std::string protocol;
  int version = 0;
};

// Checks a request's headers, each given as all its values (a header may
// come several times): Connection must hold "upgrade", Upgrade
// "spdy/3.1" (in any case), X-Stream-Protocol-Version name the protocols
// the client speaks (comma separated, preferred first).
SpdyUpgrade CheckSpdyExecUpgrade(const std::vector<std::string>& connection,
                                 const std::vector<std::string>& upgrade,
                                 const std::vector<std::string>& stream_protocols);

// Serves `request` on `socket` for an upgrade CheckSpdyExecUpgrade accepted:
// answers 101, then speaks SPDY until the command's outcome is sent (or the
// client goes). `received`: bytes read past the HTTP request. Runs on `ioc`'s
// thread, which must be the caller's; `slot` is given back when done.
// The session is added to `sessions`, for the server's shutdown.
void ServeSpdyExec(boost::asio::io_context& ioc, const ServerOptions& options, Backend* backend,
                   boost::asio::ip::tcp::socket socket, absl::string_view received,
                   const SpdyUpgrade& upgrade, ExecRequest request,
                   std::unique_ptr<internal::Slot> slot, internal::Sessions* sessions);

}  // namespace podshim::streaming
