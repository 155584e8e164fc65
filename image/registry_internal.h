// Internals of the registry client (image/registry_client.h) shared by its
// files: the HTTP exchange over libcurl (registry_http.cc), the token cache
// and the per-endpoint Session (registry_session.cc).
#pragma once

#include <cstddef>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <curl/curl.h>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "image/reference.h"
#include "image/registry_client.h"

namespace podshim::image {
namespace registry_internal {

constexpr size_t kErrorBodyLimit = 64 << 10;

// Once per process, before the first curl handle.
void EnsureCurlInitialized();

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
using CurlPtr = std::unique_ptr<CURL, CurlDeleter>;

struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using SlistPtr = std::unique_ptr<curl_slist, SlistDeleter>;

// A URL without its query string and fragment, for error messages: signed
// storage URLs carry credentials in the query.
std::string ForDisplay(absl::string_view url);
// The part of a URL named by `what` (CURLUPART_*), or "" when unparseable.
std::string UrlPart(const std::string& url, CURLUPart what);
// "scheme://host:port", lower case; two URLs with the same origin may share
// credentials.
std::string Origin(const std::string& url);
bool IsLoopbackUrl(const std::string& url);
// `s` URL-escaped by curl.
std::string Escape(CURL* curl, absl::string_view s);
// errors[].code/message of a registry's JSON error body, "CODE: message; ...".
std::string RegistryErrors(absl::string_view body);
// Prefixes a status message, keeping its code.
absl::Status Annotate(const absl::Status& s, absl::string_view prefix);
// UNAVAILABLE: worth another try.
bool IsTransient(const absl::Status& s);
// Cancelled, past the deadline or a bad request: no other endpoint is tried.
bool StopsEverything(const absl::Status& s);

// ---- one HTTP exchange ----

struct HttpRequest {
  std::string method = "GET";
  std::string url;
  std::vector<std::string> headers;  // "Name: value", never Authorization
  std::string authorization;         // the Authorization value; sent to the first origin only
  std::string post_body;             // for POST
  // Receives the body of a 2xx response; when null the body is buffered.
  const std::function<absl::Status(absl::string_view)>* sink = nullptr;
  size_t body_limit = kErrorBodyLimit;  // for a buffered 2xx body; larger fails
  std::string what;                     // "manifest of \"ref\"", for errors
};

struct HttpResponse {
  long status = 0;
  std::string url;                                           // after redirects
  std::vector<std::pair<std::string, std::string>> headers;  // names lower case
  std::string body;  // buffered body (2xx without sink; error bodies, truncated)

  std::string Header(absl::string_view name) const {
    for (const auto& [k, v] : headers) {
      if (k == name) return v;
    }
    return "";
  }
  std::vector<std::string> Headers(absl::string_view name) const {
    std::vector<std::string> out;
    for (const auto& [k, v] : headers) {
      if (k == name) out.push_back(v);
    }
    return out;
  }
};

// State shared with curl's callbacks during one transfer.
struct Transfer {
  const CallOptions* call = nullptr;
  const HttpRequest* request = nullptr;
  HttpResponse response;
  bool body_overflow = false;
  absl::Status sink_status;
  bool deadline_hit = false;
  bool cancelled_hit = false;
};

// curl's header, write and progress callbacks; `userp` is the Transfer.
size_t OnHeader(char* data, size_t size, size_t count, void* userp);
size_t OnBody(char* data, size_t size, size_t count, void* userp);
int OnProgress(void* userp, curl_off_t, curl_off_t, curl_off_t, curl_off_t);

// CANCELLED or DEADLINE_EXCEEDED naming `what` when the call is over.
absl::Status CheckCall(const CallOptions& call, absl::string_view what);
// Maps a finished non-2xx response to a status.
absl::Status HttpError(const HttpResponse& r, absl::string_view what, absl::string_view method);
// "Basic base64(username:password)".
std::string BasicAuthorization(absl::string_view username, absl::string_view password);

}  // namespace registry_internal

// ---- token cache ----

struct RegistryClient::TokenCache {
  struct Entry {
    std::string token;
    absl::Time expires;
  };
  absl::Mutex mu;
  std::map<std::string, Entry> entries ABSL_GUARDED_BY(mu);

  std::string Get(const std::string& key) {
    absl::MutexLock lock(&mu);
    auto it = entries.find(key);
    if (it == entries.end()) return "";
    if (absl::Now() >= it->second.expires) {
      entries.erase(it);
      return "";
    }
    return it->second.token;
  }
  void Put(const std::string& key, std::string token, absl::Time expires) {
    absl::MutexLock lock(&mu);
    if (entries.size() >= 1024) {
      absl::Time now = absl::Now();
      for (auto it = entries.begin(); it != entries.end();) {
        it = it->second.expires <= now ? entries.erase(it) : std::next(it);
      }
      if (entries.size() >= 1024) entries.clear();
    }
    entries[key] = Entry{std::move(token), expires};
  }
};

// ---- one call against one endpoint (registry_session.cc) ----

class RegistryClient::Session {
 public:
  Session(const RegistryClient& client, const Reference& ref, const RegistryAuth& auth,
          const CallOptions& call, std::string endpoint)
      : client_(client), ref_(ref), auth_(auth), call_(call), endpoint_(std::move(endpoint)) {}

  absl::Status Init();

  const std::string& endpoint() const { return endpoint_; }

  // GET <endpoint>/v2/<path>/<suffix>, authenticating when challenged.
  absl::StatusOr<registry_internal::HttpResponse> Get(
      absl::string_view suffix, std::vector<std::string> headers,
      const std::function<absl::Status(absl::string_view)>* sink, size_t body_limit,
      absl::string_view what);

  // One request, following redirects. Errors only for transport failures;
  // any HTTP status is a response.
  absl::StatusOr<registry_internal::HttpResponse> Perform(
      const registry_internal::HttpRequest& req);

 private:
  std::string CurrentAuthorization();

  // Gets a bearer token from the challenge's realm and caches it.
  absl::StatusOr<std::string> FetchToken(const AuthChallenge& challenge, absl::string_view what);

  const RegistryClient& client_;
  const Reference& ref_;
  const RegistryAuth& auth_;
  const CallOptions& call_;
  std::string endpoint_;
  registry_internal::CurlPtr curl_;
  std::string username_;
  std::string password_;
  std::string scope_;
  std::string token_key_;
  std::string authorization_;  // learned in this session
};

}  // namespace podshim::image
