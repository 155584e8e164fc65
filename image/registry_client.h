// A client for the OCI distribution API (Docker Registry HTTP API v2) over
// HTTP and HTTPS, built on libcurl: resolving a reference to a verified
// manifest (through an index to the host's platform) and streaming verified
// blobs, with anonymous, Basic and Bearer (token server) authentication,
// mirrors, deadlines and cancellation.
//
// Everything that comes back from a registry is checked against a digest
// before it is returned: manifests against the reference's digest (or the
// index entry), blobs against their descriptor.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "image/manifest.h"
#include "image/reference.h"

namespace podshim::image {

// Credentials for one registry, with the semantics of CRI's AuthConfig.
// All fields are optional; with none set, requests are anonymous.
struct RegistryAuth {
  std::string username;
  std::string password;
  // base64("username:password"); used when username is empty.
  std::string auth;
  // An OAuth2 refresh token, exchanged at the token server (POST,
  // grant_type=refresh_token) for an access token.
  std::string identity_token;
  // A bearer token sent as is on every request to the registry.
  std::string registry_token;
};

// Bounds one call. `cancelled` (optional) is polled during transfers.
struct CallOptions {
  absl::Time deadline = absl::InfiniteFuture();
  std::function<bool()> cancelled;
};

// Where the content of a registry host can be fetched from, in order.
struct RegistryHost {
  std::string host;                    // "docker.io", "127.0.0.1:5000"
  std::vector<std::string> endpoints;  // base URLs: "http://127.0.0.1:5000"
};

// Mirror configuration: registry host -> mirror base URLs, tried in order
// before the host itself.
using RegistryMirrors = std::map<std::string, std::vector<std::string>>;

// The endpoints for `domain` (a Reference::domain): its mirrors first (a
// trailing "/" or "/v2" is dropped), then the upstream. docker.io's upstream is
// https://registry-1.docker.io; a loopback host (IsLoopbackRegistry) or a host
// listed in `plain_http` is spoken to over http://, any other over https://.
RegistryHost ResolveRegistryHost(absl::string_view domain, const RegistryMirrors& mirrors,
                                 const std::set<std::string>& plain_http,
                                 bool upstream_fallback = true);

// One challenge of a WWW-Authenticate header.
struct AuthChallenge {
  std::string scheme;                         // lower case: "bearer", "basic"
  std::map<std::string, std::string> params;  // names lower case; values unquoted
  friend bool operator==(const AuthChallenge&, const AuthChallenge&) = default;
};

// Parses a WWW-Authenticate header value (RFC 7235): one or more challenges,
// each a scheme and comma-separated name=value parameters where values may be
// quoted strings containing commas and backslash escapes. Unparseable parts
// end the parse; what was parsed before them is returned.
std::vector<AuthChallenge> ParseWwwAuthenticate(absl::string_view header);

// The result of resolving a reference.
struct Resolved {
  // The digest of what the tag (or digest) names: the index when there is one,
  // otherwise the manifest. What containerd records in RepoDigests.
  std::string repo_digest;
  // The digest of the platform's image manifest (== repo_digest without index).
  std::string manifest_digest;
  std::string manifest_media_type;
  std::string manifest_json;  // the verified manifest bytes
  Descriptor config;
  std::vector<Descriptor> layers;
  std::string index_json;  // the verified index bytes, empty without index
  std::string index_media_type;
  std::string endpoint;  // the base URL the manifest came from
};

struct RegistryClientOptions {
  RegistryMirrors mirrors;
  std::set<std::string> plain_http;  // hosts spoken to over http://
  // When false, a host with mirrors is only ever fetched from its mirrors
  // (for machines without a route to the upstream registries).
  bool upstream_fallback = true;
  // The platform picked out of an index; HostPlatform() when unset.
  std::optional<Platform> platform;
  absl::Duration connect_timeout = absl::Seconds(30);
  // A transfer slower than low_speed_bytes per second for low_speed_time
  // fails as UNAVAILABLE (a stalled connection).
  int64_t low_speed_bytes = 1024;
  absl::Duration low_speed_time = absl::Seconds(30);
  // Manifests and indexes larger than this are refused (as containerd does).
  int64_t max_manifest_bytes = 4 << 20;
  std::string user_agent = "podshim/0.1";
  // A CA bundle to verify registries with instead of the system's; empty for
  // the system's.
  std::string ca_file;
};

// Thread-safe: any number of calls may run at once from different threads.
// Each call uses its own curl handle; bearer tokens are shared through a
// cache keyed by (endpoint, scope, credentials) until they expire.
//
// Errors name the reference or blob and the URL (without query string):
//   NOT_FOUND          image "127.0.0.1:5000/app:v2" not found in registry 127.0.0.1:5000
//   DATA_LOSS          digest or size mismatch (both digests named)
//   UNAUTHENTICATED    401 after authenticating (or no credentials for Basic)
//   PERMISSION_DENIED  403
//   UNAVAILABLE        network errors, 5xx, stalled transfers
//   DEADLINE_EXCEEDED / CANCELLED  from CallOptions
//   FAILED_PRECONDITION  schema 1, unsupported media types, oversized manifests
// A registry's JSON error body (errors[].code/message) is quoted in the message.
class RegistryClient {
 public:
  explicit RegistryClient(RegistryClientOptions options = {});
  ~RegistryClient();
  RegistryClient(const RegistryClient&) = delete;
  RegistryClient& operator=(const RegistryClient&) = delete;

  // GETs the manifest the reference names (by digest when it has one, else by
  // tag), verifies it, and when it is an index follows it to the manifest for
  // the configured platform (verified against the index entry). Endpoints
  // (mirrors, then upstream) are tried in order until one succeeds.
  absl::StatusOr<Resolved> Resolve(const Reference& ref, const RegistryAuth& auth,
                                   const CallOptions& options = {}) const;

  // Streams the blob `blob` of `ref`'s repository to `sink` in chunks as it
  // arrives (memory stays bounded), following redirects (the Authorization
  // header is not sent to another origin). At the end the size and digest are
  // checked: DATA_LOSS on mismatch, and also as soon as more than blob.size
  // bytes arrive. A transient failure before any byte reached `sink` is
  // retried once and then the next endpoint is tried; after bytes reached
  // `sink` the call fails and the caller must discard what it got. An error
  // returned by `sink` aborts the transfer and is returned as is.
  absl::Status FetchBlob(const Reference& ref, const Descriptor& blob, const RegistryAuth& auth,
                         const CallOptions& options,
                         const std::function<absl::Status(absl::string_view chunk)>& sink) const;

  // The endpoints this client uses for `domain`.
  RegistryHost HostFor(absl::string_view domain) const;

 private:
  class Session;
  struct TokenCache;

  RegistryClientOptions options_;
  Platform platform_;
  std::unique_ptr<TokenCache> tokens_;
};

}  // namespace podshim::image
