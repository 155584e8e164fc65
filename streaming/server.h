// The CRI streaming server: the HTTP endpoint that Exec, Attach and
// PortForward hand out URLs for (http://ADDRESS:PORT/VERB/TOKEN, absolute,
// as the kubelet and kubectl need). A client connects to the URL with GET or
// POST and upgrades the connection to WebSocket or, for exec, SPDY/3.1; the
// server then runs the request through the backend and streams its stdio in
// the Kubernetes channel protocol (channels.h) or over SPDY streams
// (spdy_exec.h). See docs/streaming.md.
//
// One I/O thread serves every connection with Boost.Asio/Beast, without
// blocking: output is read from the command only when the previous message
// has been sent (a slow client slows the command instead of growing
// podshimd's memory), stdin only when the previous write is done.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "streaming/backend.h"
#include "streaming/requests.h"

namespace podshim::streaming {

struct ServerOptions {
  // host:port to listen on; port 0 picks a free one. IPv6 as [addr]:port.
  std::string address = "127.0.0.1:0";
  // A connection with no data either way for this long is closed (and its
  // command killed), as the kubelet's streaming_idle_timeout.
  absl::Duration idle_timeout = absl::Hours(4);
  // How long a URL stays good before a client connects to it.
  absl::Duration token_ttl = absl::Minutes(1);
  // URLs waiting for a client at once; the oldest is dropped beyond it.
  size_t max_tokens = 1000;
  // Connections served at once; one more is answered 503.
  int max_streams = 256;
  // The longest a client may take to send its request headers and finish
  // the upgrade.
  absl::Duration handshake_timeout = absl::Seconds(30);
  // SPDY: how long after the upgrade the client may take to open all the
  // streams an exec needs (the kubelet's StreamCreationTimeout); then the
  // connection is dropped.
  absl::Duration stream_creation_timeout = absl::Seconds(30);
};

class Server {
 public:
  // Listens on options.address and starts the I/O thread. INVALID_ARGUMENT
  // for an address that does not parse, the listen error otherwise.
  static absl::StatusOr<std::unique_ptr<Server>> Start(const ServerOptions& options,
                                                       Backend* backend);
  virtual ~Server() = default;

  // The URL a client connects to for `request` (a new single-use token).
  virtual std::string UrlFor(Request request) = 0;
  // http://HOST:PORT, the address actually bound.
  virtual std::string base_url() const = 0;
  // Connections being served now.
  virtual int active_connections() const = 0;
};

}  // namespace podshim::streaming
