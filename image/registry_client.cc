#include "image/registry_client.h"

#include <mutex>
#include <utility>

#include <curl/curl.h>
#include <nlohmann/json.hpp>

#include "absl/base/thread_annotations.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "image/digest.h"

namespace podshim::image {
namespace {

using Json = nlohmann::json;

constexpr char kDockerHubUpstream[] = "https://registry-1.docker.io";
constexpr int kMaxRedirects = 10;
constexpr size_t kErrorBodyLimit = 64 << 10;
constexpr size_t kTokenBodyLimit = 1 << 20;
// Tokens are dropped this long before they expire.
constexpr absl::Duration kTokenMargin = absl::Seconds(10);

void EnsureCurlInitialized() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
using CurlPtr = std::unique_ptr<CURL, CurlDeleter>;

struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using SlistPtr = std::unique_ptr<curl_slist, SlistDeleter>;

struct CurlUrlDeleter {
  void operator()(CURLU* u) const { curl_url_cleanup(u); }
};

// A URL without its query string and fragment, for error messages: signed
// storage URLs carry credentials in the query.
std::string ForDisplay(absl::string_view url) {
  return std::string(url.substr(0, url.find_first_of("?#")));
}

// The part of a URL named by `what` (CURLUPART_*), or "" when unparseable.
std::string UrlPart(const std::string& url, CURLUPart what) {
  std::unique_ptr<CURLU, CurlUrlDeleter> u(curl_url());
  if (!u || curl_url_set(u.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK) return "";
  char* part = nullptr;
  unsigned flags = what == CURLUPART_PORT ? CURLU_DEFAULT_PORT : 0;
  if (curl_url_get(u.get(), what, &part, flags) != CURLUE_OK || part == nullptr) return "";
  std::string out(part);
  curl_free(part);
  return out;
}

// "scheme://host:port", lower case; two URLs with the same origin may share
// credentials.
std::string Origin(const std::string& url) {
  return absl::AsciiStrToLower(absl::StrCat(UrlPart(url, CURLUPART_SCHEME), "://",
                                            UrlPart(url, CURLUPART_HOST), ":",
                                            UrlPart(url, CURLUPART_PORT)));
}

bool IsLoopbackUrl(const std::string& url) {
  std::string host = UrlPart(url, CURLUPART_HOST);
  return !host.empty() && IsLoopbackRegistry(host);
}

std::string Escape(CURL* curl, absl::string_view s) {
  char* e = curl_easy_escape(curl, s.data(), static_cast<int>(s.size()));
  if (e == nullptr) return "";
  std::string out(e);
  curl_free(e);
  return out;
}

// errors[].code/message of a registry's JSON error body, "CODE: message; ...".
std::string RegistryErrors(absl::string_view body) {
  Json j = Json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return "";
  auto errors = j.find("errors");
  if (errors == j.end() || !errors->is_array()) return "";
  std::vector<std::string> parts;
  for (const Json& e : *errors) {
    if (!e.is_object()) continue;
    std::string code, message;
    if (auto c = e.find("code"); c != e.end() && c->is_string()) code = c->get<std::string>();
    if (auto m = e.find("message"); m != e.end() && m->is_string()) {
      message = m->get<std::string>();
    }
    if (code.empty() && message.empty()) continue;
    parts.push_back(code.empty()      ? message
                    : message.empty() ? code
                                      : absl::StrCat(code, ": ", message));
    if (parts.size() == 5) break;
  }
  return absl::StrJoin(parts, "; ");
}

// Prefixes a status message, keeping its code.
absl::Status Annotate(const absl::Status& s, absl::string_view prefix) {
  return absl::Status(s.code(), absl::StrCat(prefix, ": ", s.message()));
}

bool IsTransient(const absl::Status& s) { return s.code() == absl::StatusCode::kUnavailable; }

bool StopsEverything(const absl::Status& s) {
  return s.code() == absl::StatusCode::kCancelled ||
         s.code() == absl::StatusCode::kDeadlineExceeded ||
         s.code() == absl::StatusCode::kInvalidArgument;
}

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

size_t OnHeader(char* data, size_t size, size_t count, void* userp) {
  auto* t = static_cast<Transfer*>(userp);
  size_t len = size * count;
  absl::string_view line = absl::StripTrailingAsciiWhitespace(absl::string_view(data, len));
  if (absl::StartsWith(line, "HTTP/")) {
    // A new response (after 100 Continue, or the first one).
    t->response.headers.clear();
    t->response.status = 0;
    absl::string_view rest = line.substr(std::min(line.find(' '), line.size()));
    rest = absl::StripLeadingAsciiWhitespace(rest);
    long code = 0;
    for (char c : rest.substr(0, 3)) {
      if (c < '0' || c > '9') break;
      code = code * 10 + (c - '0');
    }
    t->response.status = code;
    return len;
  }
  auto colon = line.find(':');
  if (colon != absl::string_view::npos) {
    t->response.headers.emplace_back(
        absl::AsciiStrToLower(absl::StripAsciiWhitespace(line.substr(0, colon))),
        std::string(absl::StripAsciiWhitespace(line.substr(colon + 1))));
  }
  return len;
}

size_t OnBody(char* data, size_t size, size_t count, void* userp) {
  auto* t = static_cast<Transfer*>(userp);
  size_t len = size * count;
  bool success = t->response.status >= 200 && t->response.status < 300;
  if (success && t->request->sink != nullptr) {
    absl::Status s = (*t->request->sink)(absl::string_view(data, len));
    if (!s.ok()) {
      t->sink_status = std::move(s);
      return 0;  // aborts with CURLE_WRITE_ERROR
    }
    return len;
  }
  size_t limit = success ? t->request->body_limit : kErrorBodyLimit;
  if (t->response.body.size() + len > limit) {
    if (success) {
      t->body_overflow = true;
      return 0;
    }
    t->response.body.append(data, limit - t->response.body.size());
    return len;  // an error body: keep the start, drop the rest
  }
  t->response.body.append(data, len);
  return len;
}

int OnProgress(void* userp, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(userp);
  if (t->call->cancelled && t->call->cancelled()) {
    t->cancelled_hit = true;
    return 1;
  }
  if (absl::Now() >= t->call->deadline) {
    t->deadline_hit = true;
    return 1;
  }
  return 0;
}

absl::Status CheckCall(const CallOptions& call, absl::string_view what) {
  if (call.cancelled && call.cancelled()) {
    return absl::CancelledError(absl::StrCat(what, ": cancelled"));
  }
  if (absl::Now() >= call.deadline) {
    return absl::DeadlineExceededError(absl::StrCat(what, ": deadline exceeded"));
  }
  return absl::OkStatus();
}

// Maps a finished non-2xx response to a status.
absl::Status HttpError(const HttpResponse& r, absl::string_view what, absl::string_view method) {
  std::string detail = RegistryErrors(r.body);
  std::string msg = absl::StrCat(what, ": ", method, " ", ForDisplay(r.url), ": HTTP ", r.status);
  if (!detail.empty()) absl::StrAppend(&msg, ": ", detail);
  switch (r.status) {
    case 401:
      return absl::UnauthenticatedError(msg);
    case 403:
      return absl::PermissionDeniedError(msg);
    case 404:
      return absl::NotFoundError(msg);
    case 429:
      return absl::ResourceExhaustedError(msg);
    case 500:
    case 502:
    case 503:
    case 504:
      return absl::UnavailableError(msg);
    default:
      return absl::UnknownError(msg);
  }
}

std::string BasicAuthorization(absl::string_view username, absl::string_view password) {
  return absl::StrCat("Basic ", absl::Base64Escape(absl::StrCat(username, ":", password)));
}

}  // namespace

// ---- WWW-Authenticate ----

std::vector<AuthChallenge> ParseWwwAuthenticate(absl::string_view header) {
  std::vector<AuthChallenge> out;
  size_t pos = 0;
  auto is_tchar = [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
           absl::string_view("!#$%&'*+-.^_`|~").find(c) != absl::string_view::npos;
  };
  auto skip_ws = [&] {
    while (pos < header.size() && (header[pos] == ' ' || header[pos] == '\t')) ++pos;
  };
  auto read_token = [&] {
    size_t start = pos;
    while (pos < header.size() && is_tchar(header[pos])) ++pos;
    return header.substr(start, pos - start);
  };
  while (pos < header.size()) {
    // Skip empty list elements.
    while (pos < header.size() && (header[pos] == ' ' || header[pos] == '\t' || header[pos] == ','))
      ++pos;
    if (pos >= header.size()) break;
    absl::string_view scheme = read_token();
    if (scheme.empty()) break;
    AuthChallenge challenge;
    challenge.scheme = absl::AsciiStrToLower(scheme);
    bool broken = false;
    // auth-params: name = (token | quoted-string), separated by commas. A
    // token not followed by '=' starts the next challenge.
    while (true) {
      size_t mark = pos;
      skip_ws();
      absl::string_view name = read_token();
      skip_ws();
      if (name.empty() || pos >= header.size() || header[pos] != '=') {
        pos = mark;
        break;
      }
      ++pos;  // '='
      skip_ws();
      std::string value;
      if (pos < header.size() && header[pos] == '"') {
        ++pos;
        bool closed = false;
        while (pos < header.size()) {
          char c = header[pos++];
          if (c == '\\' && pos < header.size()) {
            value.push_back(header[pos++]);
          } else if (c == '"') {
            closed = true;
            break;
          } else {
            value.push_back(c);
          }
        }
        if (!closed) {
          broken = true;
          break;
        }
      } else {
        size_t start = pos;
        while (pos < header.size() && header[pos] != ',' && header[pos] != ' ' &&
               header[pos] != '\t') {
          ++pos;
        }
        value = std::string(header.substr(start, pos - start));
      }
      challenge.params[absl::AsciiStrToLower(name)] = std::move(value);
      skip_ws();
      if (pos < header.size() && header[pos] == ',') {
        ++pos;
        continue;
      }
      break;
    }
    out.push_back(std::move(challenge));
    if (broken) break;
    skip_ws();
    if (pos < header.size() && !is_tchar(header[pos]) && header[pos] != ',') break;
  }
  return out;
}

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

// ---- one call against one endpoint ----

class RegistryClient::Session {
 public:
  Session(const RegistryClient& client, const Reference& ref, const RegistryAuth& auth,
          const CallOptions& call, std::string endpoint)
      : client_(client), ref_(ref), auth_(auth), call_(call), endpoint_(std::move(endpoint)) {}

  absl::Status Init() {
    curl_.reset(curl_easy_init());
    if (!curl_) return absl::InternalError("curl_easy_init failed");
    username_ = auth_.username;
    password_ = auth_.password;
    if (username_.empty() && !auth_.auth.empty()) {
      std::string decoded;
      if (!absl::Base64Unescape(auth_.auth, &decoded)) {
        return absl::InvalidArgumentError(
            absl::StrCat("credentials for ", ref_.domain, ": \"auth\" is not valid base64"));
      }
      auto colon = decoded.find(':');
      if (colon == std::string::npos) {
        return absl::InvalidArgumentError(
            absl::StrCat("credentials for ", ref_.domain, ": \"auth\" is not user:password"));
      }
      username_ = decoded.substr(0, colon);
      password_ = decoded.substr(colon + 1);
    }
    // The token cache key: who asks, for what, where. Credentials enter only
    // as a hash.
    Hasher h = Hasher::Sha256();
    for (const std::string* s :
         std::initializer_list<const std::string*>{&username_, &password_, &auth_.identity_token}) {
      h.Update(*s);
      h.Update(absl::string_view("\0", 1));
    }
    scope_ = absl::StrCat("repository:", ref_.path, ":pull");
    token_key_ = absl::StrCat(Origin(endpoint_), "\n", scope_, "\n", h.Finish().hex);
    return absl::OkStatus();
  }

  const std::string& endpoint() const { return endpoint_; }

  // GET <endpoint>/v2/<path>/<suffix>, authenticating when challenged.
  absl::StatusOr<HttpResponse> Get(absl::string_view suffix, std::vector<std::string> headers,
                                   const std::function<absl::Status(absl::string_view)>* sink,
                                   size_t body_limit, absl::string_view what) {
    HttpRequest req;
    req.url = absl::StrCat(endpoint_, "/v2/", ref_.path, "/", suffix);
    req.headers = std::move(headers);
    req.sink = sink;
    req.body_limit = body_limit;
    req.what = std::string(what);
    for (int round = 0;; ++round) {
      req.authorization = CurrentAuthorization();
      auto resp = Perform(req);
      if (!resp.ok() || resp->status != 401 || round == 1) return resp;
      if (!auth_.registry_token.empty()) return resp;  // the given token was refused
      std::vector<AuthChallenge> challenges;
      for (const std::string& h : resp->Headers("www-authenticate")) {
        for (AuthChallenge& c : ParseWwwAuthenticate(h)) challenges.push_back(std::move(c));
      }
      const AuthChallenge* bearer = nullptr;
      const AuthChallenge* basic = nullptr;
      for (const AuthChallenge& c : challenges) {
        if (c.scheme == "bearer" && bearer == nullptr) bearer = &c;
        if (c.scheme == "basic" && basic == nullptr) basic = &c;
      }
      if (bearer != nullptr) {
        auto token = FetchToken(*bearer, what);
        if (!token.ok()) return token.status();
        authorization_ = absl::StrCat("Bearer ", *token);
      } else if (basic != nullptr && !username_.empty()) {
        authorization_ = BasicAuthorization(username_, password_);
      } else {
        return resp;  // no way to authenticate: the caller maps the 401
      }
    }
  }

  // One request, following redirects. Errors only for transport failures;
  // any HTTP status is a response.
  absl::StatusOr<HttpResponse> Perform(const HttpRequest& req) {
    if (auto s = CheckCall(call_, req.what); !s.ok()) return s;
    const RegistryClientOptions& o = client_.options_;
    const std::string first_origin = Origin(req.url);
    std::string url = req.url;
    std::string method = req.method;
    for (int hop = 0;; ++hop) {
      CURL* c = curl_.get();
      curl_easy_reset(c);
      char errbuf[CURL_ERROR_SIZE] = {0};
      Transfer t;
      t.call = &call_;
      t.request = &req;
      t.response.url = url;

      SlistPtr headers;
      auto add_header = [&](const std::string& h) {
        curl_slist* l = curl_slist_append(headers.get(), h.c_str());
        if (l != nullptr) {
          (void)headers.release();
          headers.reset(l);
        }
      };
      for (const std::string& h : req.headers) add_header(h);
      // Credentials go to the origin they were meant for, never to the
      // storage a blob is redirected to.
      if (!req.authorization.empty() && Origin(url) == first_origin) {
        add_header(absl::StrCat("Authorization: ", req.authorization));
      }
      add_header("Expect:");

      curl_easy_setopt(c, CURLOPT_URL, url.c_str());
      curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
      curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
      curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
      curl_easy_setopt(c, CURLOPT_USERAGENT, o.user_agent.c_str());
      curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                       static_cast<long>(absl::ToInt64Milliseconds(o.connect_timeout)));
      curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, static_cast<long>(o.low_speed_bytes));
      curl_easy_setopt(
          c, CURLOPT_LOW_SPEED_TIME,
          static_cast<long>(std::max<int64_t>(1, absl::ToInt64Seconds(o.low_speed_time))));
      // curl enforces the deadline itself (the progress callback may run
      // only once a second on an idle connection).
      const absl::Time started = absl::Now();
      absl::Duration timeout = absl::InfiniteDuration();
      if (call_.deadline != absl::InfiniteFuture()) {
        timeout = std::max(absl::Milliseconds(1), call_.deadline - started);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS,
                         static_cast<long>(absl::ToInt64Milliseconds(timeout) + 1));
      }
      if (!o.ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, o.ca_file.c_str());
      // The local machine is never reached through a proxy.
      if (IsLoopbackUrl(url)) curl_easy_setopt(c, CURLOPT_PROXY, "");
      curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
      curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
      curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, &OnHeader);
      curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
      curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &OnBody);
      curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
      curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
      curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, &OnProgress);
      curl_easy_setopt(c, CURLOPT_XFERINFODATA, &t);
      if (method == "POST") {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(req.post_body.size()));
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, req.post_body.c_str());
      } else {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
      }

      CURLcode rc = curl_easy_perform(c);
      if (rc != CURLE_OK) {
        if (t.cancelled_hit || (call_.cancelled && call_.cancelled())) {
          return absl::CancelledError(absl::StrCat(req.what, ": cancelled"));
        }
        // CURLE_OPERATION_TIMEDOUT is also the low-speed and connect
        // timeouts; it is the deadline when the whole timeout went by.
        bool timed_out = rc == CURLE_OPERATION_TIMEDOUT &&
                         absl::Now() - started >= timeout - absl::Milliseconds(20);
        if (t.deadline_hit || timed_out || absl::Now() >= call_.deadline) {
          return absl::DeadlineExceededError(
              absl::StrCat(req.what, ": deadline exceeded (", method, " ", ForDisplay(url), ")"));
        }
        if (!t.sink_status.ok()) return t.sink_status;
        if (t.body_overflow) {
          return absl::FailedPreconditionError(absl::StrCat(req.what, ": ", method, " ",
                                                            ForDisplay(url), ": larger than ",
                                                            req.body_limit, " bytes"));
        }
        std::string detail = errbuf[0] != 0 ? std::string(errbuf) : curl_easy_strerror(rc);
        return absl::UnavailableError(
            absl::StrCat(req.what, ": ", method, " ", ForDisplay(url), ": ", detail));
      }
      long status = t.response.status;
      if (status == 301 || status == 302 || status == 303 || status == 307 || status == 308) {
        char* location = nullptr;
        curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &location);
        if (location == nullptr) return std::move(t.response);
        if (hop >= kMaxRedirects) {
          return absl::UnavailableError(absl::StrCat(req.what, ": ", method, " ",
                                                     ForDisplay(req.url), ": too many redirects"));
        }
        std::string next(location);
        std::string scheme = absl::AsciiStrToLower(UrlPart(next, CURLUPART_SCHEME));
        if (scheme != "http" && scheme != "https") {
          return absl::UnavailableError(absl::StrCat(req.what, ": ", method, " ", ForDisplay(url),
                                                     ": redirect to unsupported URL ",
                                                     ForDisplay(next)));
        }
        url = std::move(next);
        if (status == 303) method = "GET";
        continue;
      }
      return std::move(t.response);
    }
  }

 private:
  std::string CurrentAuthorization() {
    if (!authorization_.empty()) return authorization_;
    if (!auth_.registry_token.empty()) return absl::StrCat("Bearer ", auth_.registry_token);
    std::string token = client_.tokens_->Get(token_key_);
    if (!token.empty()) return absl::StrCat("Bearer ", token);
    return "";
  }

  // Gets a bearer token from the challenge's realm and caches it.
  absl::StatusOr<std::string> FetchToken(const AuthChallenge& challenge, absl::string_view what) {
    auto realm_it = challenge.params.find("realm");
    std::string realm = realm_it == challenge.params.end() ? "" : realm_it->second;
    std::string scheme = absl::AsciiStrToLower(UrlPart(realm, CURLUPART_SCHEME));
    if (scheme != "http" && scheme != "https") {
      return absl::UnauthenticatedError(
          absl::StrCat(what, ": registry ", endpoint_,
                       " asks for a bearer token with invalid realm \"", ForDisplay(realm), "\""));
    }
    std::string service;
    if (auto it = challenge.params.find("service"); it != challenge.params.end()) {
      service = it->second;
    }
    std::vector<std::string> scopes = {scope_};
    if (auto it = challenge.params.find("scope"); it != challenge.params.end()) {
      for (absl::string_view s : absl::StrSplit(it->second, ' ', absl::SkipEmpty())) {
        if (s != scope_) scopes.emplace_back(s);
      }
    }
    std::string params;
    auto add = [&](absl::string_view k, absl::string_view v) {
      absl::StrAppend(&params, params.empty() ? "" : "&", k, "=", Escape(curl_.get(), v));
    };
    if (!service.empty()) add("service", service);
    for (const std::string& s : scopes) add("scope", s);

    HttpRequest req;
    req.what = absl::StrCat(what, ": token from ", ForDisplay(realm));
    req.body_limit = kTokenBodyLimit;
    if (!auth_.identity_token.empty()) {
      add("grant_type", "refresh_token");
      add("refresh_token", auth_.identity_token);
      add("client_id", "podshim");
      req.method = "POST";
      req.url = realm;
      req.post_body = params;
      req.headers.push_back("Content-Type: application/x-www-form-urlencoded");
    } else {
      if (!username_.empty()) add("account", username_);
      req.url = absl::StrCat(realm, absl::StrContains(realm, "?") ? "&" : "?", params);
      if (!username_.empty()) req.authorization = BasicAuthorization(username_, password_);
    }
    auto resp = Perform(req);
    if (!resp.ok()) return resp.status();
    if (resp->status < 200 || resp->status >= 300) {
      absl::Status s = HttpError(*resp, req.what, req.method);
      if (s.code() == absl::StatusCode::kNotFound || s.code() == absl::StatusCode::kUnknown) {
        s = absl::UnauthenticatedError(s.message());
      }
      return s;
    }
    Json j = Json::parse(resp->body, nullptr, /*allow_exceptions=*/false);
    std::string token;
    int64_t expires_in = 60;
    if (j.is_object()) {
      for (const char* key : {"token", "access_token"}) {
        auto it = j.find(key);
        if (it != j.end() && it->is_string() && !it->get<std::string>().empty()) {
          token = it->get<std::string>();
          break;
        }
      }
      auto e = j.find("expires_in");
      if (e != j.end() && e->is_number_integer() && e->get<int64_t>() > 0) {
        expires_in = e->get<int64_t>();
      }
    }
    if (token.empty()) {
      return absl::UnauthenticatedError(
          absl::StrCat(req.what, ": response has no \"token\" or \"access_token\""));
    }
    absl::Duration ttl = absl::Seconds(expires_in);
    ttl = ttl > 2 * kTokenMargin ? ttl - kTokenMargin : ttl / 2;
    client_.tokens_->Put(token_key_, token, absl::Now() + ttl);
    return token;
  }

  const RegistryClient& client_;
  const Reference& ref_;
  const RegistryAuth& auth_;
  const CallOptions& call_;
  std::string endpoint_;
  CurlPtr curl_;
  std::string username_;
  std::string password_;
  std::string scope_;
  std::string token_key_;
  std::string authorization_;  // learned in this session
};

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
