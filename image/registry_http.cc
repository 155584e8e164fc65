// The HTTP side of the registry client: one exchange over libcurl (requests,
// responses, callbacks, redirects aside), URLs, status mapping, WWW-Authenticate.
#include <algorithm>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <curl/curl.h>
#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "image/reference.h"
#include "image/registry_client.h"
#include "image/registry_internal.h"

namespace podshim::image {
namespace registry_internal {
namespace {

using Json = nlohmann::json;

struct CurlUrlDeleter {
  void operator()(CURLU* u) const { curl_url_cleanup(u); }
};

}  // namespace

void EnsureCurlInitialized() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

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

}  // namespace registry_internal

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

}  // namespace podshim::image
