// Port forwarding over SPDY/3.1: the kubelet's portforward.k8s.io protocol,
// as client-go's port forwarder speaks it (crictl port-forward, critest,
// kubectl port-forward through the API server and the kubelet).
//
// The client POSTs (or GETs) /portforward/TOKEN with `Connection: Upgrade`,
// `Upgrade: SPDY/3.1` and `X-Stream-Protocol-Version: portforward.k8s.io`;
// the server answers 101. Or it tunnels the same SPDY connection through a
// WebSocket (subprotocol SPDY/3.1+portforward.k8s.io, client-go's
// WebSocket transport); the SPDY side is the same. From then on, for each
// connection the client forwards:
//
//   - it opens two streams with SYN_STREAM, both with the headers `port`
//     (the pod's port, 1-65535) and `requestid` (pairs them), and
//     `streamtype` error and data. A stream without a valid port or type is
//     refused with RST_STREAM (CANCEL), as the kubelet does; a client
//     without requestid gets the kubelet's guess (error: its stream id,
//     data: its id - 2). A pair not complete after stream_creation_timeout
//     fails with "timed out waiting for streams";
//   - once both are there, the server connects to 127.0.0.1:port in the
//     pod's network namespace (the host's for a host-network pod), or to
//     [::1]:port when that is refused, as a dial of localhost would. A port
//     not among the PortForward request's (when it named any) is refused;
//   - bytes go both ways as DATA frames on the data stream; each side's end
//     (a FIN, the pod's end of file) is passed on as the other's: the
//     client's FIN shuts down the pod connection's sending side, the pod's
//     end of file becomes a FIN. Once one way has ended, the other may go on
//     as long as data comes at least every second (containerd gives it a
//     second in all);
//   - at the end the data stream ends with a FIN and the error stream with
//     a FIN, after the error's text if there was one ("error forwarding port
//     P to pod ID, uid : WHY", the kubelet's wording).
//
// The connection carries any number of such pairs, one after the other or
// at once (at most 256 at once; more are refused with RST_STREAM), until the
// client closes it or nothing moves for idle_timeout. Bytes from the client
// not yet written to pods are bounded (1 MiB in all: beyond it the client's
// frames wait, as with an exec's stdin); bytes from a pod are read one piece
// at a time, the next once the previous is sent.
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

// The one port forwarding protocol: portforward.k8s.io.
const std::vector<std::string>& SpdyPortForwardProtocols();

// Serves `request` on `stream`: sends `response` (the 101 for a SPDY
// upgrade; empty for a WebSocket tunnel, already answered), then speaks SPDY
// until the client goes. `received`: bytes read past the HTTP request. Runs
// on `ioc`'s thread, which must be the caller's; `slot` is given back when
// done. The session is added to `sessions`, for the server's shutdown.
void ServeSpdyPortForward(boost::asio::io_context& ioc, const ServerOptions& options,
                          Backend* backend, std::unique_ptr<internal::ByteStream> stream,
                          std::string response, absl::string_view received,
                          PortForwardRequest request, std::unique_ptr<internal::Slot> slot,
                          internal::Sessions* sessions);

}  // namespace podshim::streaming
