// Exec and Attach over SPDY/3.1, as the kubelet's streaming server serves them and as
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
// The connection's side (PINGs, no flow control, GOAWAY, the idle timeout) is
// spdy_connection.h's; a client that goes away takes its command with it.
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
#include "streaming/spdy_connection.h"

namespace podshim::streaming {

// The remote command protocols podshim speaks over SPDY, preferred first
// (the kubelet's list).
const std::vector<std::string>& SpdyExecProtocols();

using internal::SpdyUpgrade;

// internal::CheckSpdyUpgrade with SpdyExecProtocols.
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
                   const SpdyUpgrade& upgrade, CommandRequest request,
                   std::unique_ptr<internal::Slot> slot, internal::Sessions* sessions);

}  // namespace podshim::streaming
