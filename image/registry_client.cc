// The registry client: endpoints (mirrors, then upstream), resolving a
// reference to a verified manifest, streaming verified blobs.
#include "image/registry_client.h"

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "image/digest.h"
#include "image/manifest.h"
#include "image/reference.h"
#include "image/registry_internal.h"

namespace podshim::image {
namespace {

using registry_internal::Annotate;
using registry_internal::EnsureCurlInitialized;
using registry_internal::ForDisplay;
using registry_internal::HttpError;
using registry_internal::HttpResponse;
using registry_internal::IsTransient;
using registry_internal::RegistryErrors;
using registry_internal::StopsEverything;

constexpr char kDockerHubUpstream[] = "https://registry-1.docker.io";

}  // namespace

// ---- endpoints ----

RegistryHost ResolveRegistryHost(absl::string_view domain, const RegistryMirrors& mirrors,
                                 const std::set<std::string>& plain_http, bool upstream_fallback) {
  RegistryHost host;
  host.host = std::string(domain);
  if (auto it = mirrors.find(host.host); it != mirrors.end()) {
    for (const std::string& m : it->second) {
      absl::string_view url = m;
      while (absl::ConsumeSuffix(&url, "/")) {
      }
      absl::ConsumeSuffix(&url, "/v2");
      if (!url.empty()) host.endpoints.emplace_back(url);
    }
    if (!upstream_fallback && !host.endpoints.empty()) return host;
  }
  if (domain == kDefaultDomain) {
    host.endpoints.emplace_back(kDockerHubUpstream);
  } else if (IsLoopbackRegistry(domain) || plain_http.count(host.host) > 0) {
    host.endpoints.push_back(absl::StrCat("http://", domain));
  } else {
    host.endpoints.push_back(absl::StrCat("https://", domain));
  }
  return host;
}

// ---- the client ----

RegistryClient::RegistryClient(RegistryClientOptions options)
    : options_(std::move(options)),
      platform_(options_.platform.value_or(HostPlatform())),
      tokens_(std::make_unique<TokenCache>()) {
  EnsureCurlInitialized();
}

RegistryClient::~RegistryClient() = default;

RegistryHost RegistryClient::HostFor(absl::string_view domain) const {
  return ResolveRegistryHost(domain, options_.mirrors, options_.plain_http,
                             options_.upstream_fallback);
}

namespace {

constexpr char kManifestAccept[] =
    "Accept: application/vnd.oci.image.index.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json";

// Checks `body` against `want` ("sha256:..."); DATA_LOSS naming both.
absl::Status VerifyDigest(absl::string_view body, const std::string& want, absl::string_view what) {
  auto d = ParseDigest(want);
  if (!d.ok()) return Annotate(d.status(), what);
  auto h = Hasher::Create(d->algorithm);
  if (!h.ok()) return Annotate(h.status(), what);
  h->Update(body);
  std::string got = h->Finish().String();
  if (got != want) {
    return absl::DataLossError(
        absl::StrCat(what, ": digest mismatch: expected ", want, ", got ", got));
  }
  return absl::OkStatus();
}

// Adds the failures of earlier endpoints to the last one's status.
absl::Status WithEarlierFailures(const absl::Status& last,
                                 const std::vector<std::string>& earlier) {
  if (earlier.empty()) return last;
  return absl::Status(
      last.code(),
      absl::StrCat(last.message(), " (earlier endpoints: ", absl::StrJoin(earlier, "; "), ")"));
}

}  // namespace

absl::StatusOr<Resolved> RegistryClient::Resolve(const Reference& ref, const RegistryAuth& auth,
                                                 const CallOptions& call) const {
  const RegistryHost host = HostFor(ref.domain);
  const std::string ident = ref.digest.empty() ? ref.tag : ref.digest;
  const std::string what = absl::StrCat("manifest of \"", ref.String(), "\"");
  const auto max = static_cast<size_t>(options_.max_manifest_bytes);
  std::vector<std::string> earlier;
  absl::Status last = absl::NotFoundError(absl::StrCat(what, ": no endpoints"));

  for (size_t i = 0; i < host.endpoints.size(); ++i) {
    const std::string& endpoint = host.endpoints[i];
    const bool upstream = i + 1 == host.endpoints.size();
    auto attempt = [&]() -> absl::StatusOr<Resolved> {
      Session s(*this, ref, auth, call, endpoint);
      if (auto st = s.Init(); !st.ok()) return st;

      // Fetches one manifest document and checks its media type.
      auto fetch = [&](const std::string& reference,
                       absl::string_view doc_what) -> absl::StatusOr<HttpResponse> {
        auto resp =
            s.Get(absl::StrCat("manifests/", reference), {kManifestAccept}, nullptr, max, doc_what);
        if (!resp.ok()) return resp.status();
        if (resp->status == 404) {
          std::string detail = RegistryErrors(resp->body);
          return absl::NotFoundError(absl::StrCat(
              "image \"", ref.String(), "\" not found in ",
              upstream ? absl::StrCat("registry ", ref.domain) : absl::StrCat("mirror ", endpoint),
              detail.empty() ? "" : ": ", detail));
        }
        if (resp->status == 401 || resp->status == 403) {
          absl::Status st = HttpError(*resp, doc_what, "GET");
          return absl::Status(
              st.code(), absl::StrCat("pull access denied for \"", ref.String(),
                                      "\": the repository does not exist or needs credentials: ",
                                      st.message()));
        }
        if (resp->status < 200 || resp->status >= 300) {
          return HttpError(*resp, doc_what, "GET");
        }
        return resp;
      };

      auto top = fetch(ident, what);
      if (!top.ok()) return top.status();
      const std::string from = absl::StrCat(what, " from ", ForDisplay(top->url));
      Resolved r;
      r.endpoint = endpoint;

      // The digest of what the reference names.
      if (!ref.digest.empty()) {
        if (auto st = VerifyDigest(top->body, ref.digest, from); !st.ok()) return st;
        r.repo_digest = ref.digest;
      } else {
        r.repo_digest = Sha256Of(top->body).String();
        std::string hint = top->Header("docker-content-digest");
        if (!hint.empty() && ParseDigest(hint).ok()) {
          if (auto st = VerifyDigest(top->body, hint, from); !st.ok()) {
            return absl::DataLossError(
                absl::StrCat(st.message(), " (Docker-Content-Digest header)"));
          }
        }
      }
      auto media_type = DetectManifestMediaType(top->body, top->Header("content-type"));
      if (!media_type.ok()) return Annotate(media_type.status(), from);

      std::string manifest_body;
      std::string manifest_type;
      std::string manifest_from = from;
      if (IsIndexMediaType(*media_type)) {
        auto index = ParseIndex(top->body);
        if (!index.ok()) return Annotate(index.status(), from);
        auto chosen = SelectPlatform(*index, platform_);
        if (!chosen.ok()) return Annotate(chosen.status(), from);
        if (chosen->size > options_.max_manifest_bytes) {
          return absl::FailedPreconditionError(
              absl::StrCat(from, ": manifest ", chosen->digest, " is larger than ", max, " bytes"));
        }
        const std::string child_what =
            absl::StrCat("manifest ", chosen->digest, " of \"", ref.String(), "\"");
        auto child = fetch(chosen->digest, child_what);
        if (!child.ok()) return child.status();
        const std::string child_from = absl::StrCat(child_what, " from ", ForDisplay(child->url));
        if (auto st = VerifyDigest(child->body, chosen->digest, child_from); !st.ok()) return st;
        if (static_cast<int64_t>(child->body.size()) != chosen->size) {
          return absl::DataLossError(absl::StrCat(child_from, ": size ", child->body.size(),
                                                  ", the index says ", chosen->size));
        }
        auto child_type = DetectManifestMediaType(child->body, child->Header("content-type"));
        if (!child_type.ok()) return Annotate(child_type.status(), child_from);
        if (!IsManifestMediaType(*child_type)) {
          return absl::FailedPreconditionError(
              absl::StrCat(child_from, ": nested index (", *child_type, ") is not supported"));
        }
        r.index_json = std::move(top->body);
        r.index_media_type = *media_type;
        r.manifest_digest = chosen->digest;
        manifest_body = std::move(child->body);
        manifest_type = *child_type;
        manifest_from = child_from;
      } else {
        r.manifest_digest = r.repo_digest;
        manifest_body = std::move(top->body);
        manifest_type = *media_type;
      }
      auto manifest = ParseManifest(manifest_body);
      if (!manifest.ok()) return Annotate(manifest.status(), manifest_from);
      r.manifest_media_type = manifest_type;
      r.manifest_json = std::move(manifest_body);
      r.config = std::move(manifest->config);
      r.layers = std::move(manifest->layers);
      return r;
    };
    auto result = attempt();
    if (result.ok()) return result;
    last = result.status();
    if (StopsEverything(last)) return WithEarlierFailures(last, earlier);
    if (!upstream) earlier.push_back(absl::StrCat(endpoint, ": ", last.message()));
  }
  return WithEarlierFailures(last, earlier);
}

absl::Status RegistryClient::FetchBlob(
    const Reference& ref, const Descriptor& blob, const RegistryAuth& auth, const CallOptions& call,
    const std::function<absl::Status(absl::string_view chunk)>& sink) const {
  const std::string what = absl::StrCat("blob ", blob.digest, " of \"", ref.Name(), "\"");
  auto digest = ParseDigest(blob.digest);
  if (!digest.ok()) return Annotate(digest.status(), what);
  if (blob.size < 0) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": negative size ", blob.size));
  }
  const RegistryHost host = HostFor(ref.domain);
  std::vector<std::string> earlier;
  absl::Status last = absl::NotFoundError(absl::StrCat(what, ": no endpoints"));

  for (size_t i = 0; i < host.endpoints.size(); ++i) {
    const std::string& endpoint = host.endpoints[i];
    Session s(*this, ref, auth, call, endpoint);
    if (auto st = s.Init(); !st.ok()) return st;
    for (int attempt = 0; attempt < 2; ++attempt) {
      auto hasher = Hasher::Create(digest->algorithm);
      if (!hasher.ok()) return Annotate(hasher.status(), what);
      int64_t received = 0;
      std::function<absl::Status(absl::string_view)> counted =
          [&](absl::string_view chunk) -> absl::Status {
        if (received + static_cast<int64_t>(chunk.size()) > blob.size) {
          return absl::DataLossError(
              absl::StrCat(what, ": more than the expected ", blob.size, " bytes from ", endpoint));
        }
        received += static_cast<int64_t>(chunk.size());
        hasher->Update(chunk);
        return sink(chunk);
      };
      auto resp = s.Get(absl::StrCat("blobs/", blob.digest), {}, &counted, 0, what);
      absl::Status st;
      if (resp.ok() && resp->status >= 200 && resp->status < 300) {
        const std::string from = absl::StrCat(what, " from ", ForDisplay(resp->url));
        if (received != blob.size) {
          return absl::DataLossError(
              absl::StrCat(from, ": got ", received, " bytes, expected ", blob.size));
        }
        std::string got = hasher->Finish().String();
        if (got != blob.digest) {
          return absl::DataLossError(
              absl::StrCat(from, ": digest mismatch: expected ", blob.digest, ", got ", got));
        }
        return absl::OkStatus();
      }
      st = resp.ok() ? HttpError(*resp, what, "GET") : resp.status();
      // Bytes already went to the sink: the caller has to start over.
      if (received > 0 || StopsEverything(st)) return WithEarlierFailures(st, earlier);
      last = st;
      bool transient = IsTransient(st);
      if (!transient) break;
    }
    if (i + 1 < host.endpoints.size()) {
      earlier.push_back(absl::StrCat(endpoint, ": ", last.message()));
    }
  }
  return WithEarlierFailures(last, earlier);
}

}  // namespace podshim::image
