// One registry call against one endpoint (RegistryClient::Session):
// credentials, bearer tokens from the token server, requests and redirects.
#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include <curl/curl.h>
#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "image/digest.h"
#include "image/registry_client.h"
#include "image/registry_internal.h"

namespace podshim::image {
namespace {

using registry_internal::BasicAuthorization;
using registry_internal::CheckCall;
using registry_internal::Escape;
using registry_internal::ForDisplay;
using registry_internal::HttpError;
using registry_internal::HttpRequest;
using registry_internal::HttpResponse;
using registry_internal::IsLoopbackUrl;
using registry_internal::OnBody;
using registry_internal::OnHeader;
using registry_internal::OnProgress;
using registry_internal::Origin;
using registry_internal::SlistPtr;
using registry_internal::Transfer;
using registry_internal::UrlPart;

using Json = nlohmann::json;

constexpr int kMaxRedirects = 10;
constexpr size_t kTokenBodyLimit = 1 << 20;
// Tokens are dropped this long before they expire.
constexpr absl::Duration kTokenMargin = absl::Seconds(10);

}  // namespace

absl::Status RegistryClient::Session::Init() {
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

absl::StatusOr<HttpResponse> RegistryClient::Session::Get(
    absl::string_view suffix, std::vector<std::string> headers,
    const std::function<absl::Status(absl::string_view)>* sink, size_t body_limit,
    absl::string_view what) {
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

absl::StatusOr<HttpResponse> RegistryClient::Session::Perform(const HttpRequest& req) {
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
        return absl::UnavailableError(
            absl::StrCat(req.what, ": ", method, " ", ForDisplay(req.url), ": too many redirects"));
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

std::string RegistryClient::Session::CurrentAuthorization() {
  if (!authorization_.empty()) return authorization_;
  if (!auth_.registry_token.empty()) return absl::StrCat("Bearer ", auth_.registry_token);
  std::string token = client_.tokens_->Get(token_key_);
  if (!token.empty()) return absl::StrCat("Bearer ", token);
  return "";
}

absl::StatusOr<std::string> RegistryClient::Session::FetchToken(const AuthChallenge& challenge,
                                                                absl::string_view what) {
  auto realm_it = challenge.params.find("realm");
  std::string realm = realm_it == challenge.params.end() ? "" : realm_it->second;
  std::string scheme = absl::AsciiStrToLower(UrlPart(realm, CURLUPART_SCHEME));
  if (scheme != "http" && scheme != "https") {
    return absl::UnauthenticatedError(absl::StrCat(what, ": registry ", endpoint_,
                                                   " asks for a bearer token with invalid realm \"",
                                                   ForDisplay(realm), "\""));
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

}  // namespace podshim::image
