#include "image/reference.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstddef>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace podshim::image {
namespace {

// Limits from the distribution grammar.
constexpr size_t kNameTotalLengthMax = 255;
constexpr size_t kTagLengthMax = 128;

constexpr absl::string_view kLibraryPrefix = "library/";
constexpr absl::string_view kLegacyDefaultDomain = "index.docker.io";

// A part of a reference for a message: escaped, and at most kQuotedMax bytes of
// it, so that a huge reference never makes a huge error.
constexpr size_t kQuotedMax = 100;
std::string Quote(absl::string_view s) {
  if (s.size() <= kQuotedMax) return absl::CHexEscape(s);
  return absl::StrCat(absl::CHexEscape(s.substr(0, kQuotedMax)), "...(", s.size(), " bytes)");
}

absl::Status Invalid(absl::string_view ref, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("reference \"", Quote(ref), "\": ", what));
}

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool IsWordChar(char c) { return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_'; }
bool IsLowerHex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }
bool IsDigits(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

// [a-z0-9]+ ( ( "." | "_" | "__" | "-"* ) [a-z0-9]+ )*
bool IsPathComponent(absl::string_view s) {
  size_t i = 0;
  auto alnum_run = [&] {
    size_t start = i;
    while (i < s.size() && IsLowerAlnum(s[i])) ++i;
    return i > start;
  };
  if (!alnum_run()) return false;
  while (i < s.size()) {
    if (s[i] == '.') {
      ++i;
    } else if (s[i] == '_') {
      ++i;
      if (i < s.size() && s[i] == '_') ++i;
    } else if (s[i] == '-') {
      while (i < s.size() && s[i] == '-') ++i;
    } else {
      return false;
    }
    if (!alnum_run()) return false;
  }
  return true;
}

// [A-Za-z0-9] | [A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9]
// Whether the first of several components names a registry rather than a
// repository: it has a '.' or ':', or is "localhost".
bool ReadsAsDomain(absl::string_view first) {
  return first.find_first_of(".:") != absl::string_view::npos || first == "localhost";
}

bool IsDomainComponent(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-') return false;
  }
  return s.front() != '-' && s.back() != '-';
}

// host [":" port], host being a DNS name, an IPv4 address or "[" IPv6 "]".
bool IsDomain(absl::string_view s) {
  absl::string_view host = s;
  absl::string_view port;
  bool has_port = false;
  if (absl::StartsWith(s, "[")) {
    size_t close = s.find(']');
    if (close == absl::string_view::npos) return false;
    absl::string_view ip = s.substr(1, close - 1);
    if (ip.empty()) return false;
    for (char c : ip) {
      if (!absl::ascii_isxdigit(static_cast<unsigned char>(c)) && c != ':') return false;
    }
    absl::string_view rest = s.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return false;
      has_port = true;
      port = rest.substr(1);
    }
  } else {
    if (size_t colon = s.find(':'); colon != absl::string_view::npos) {
      host = s.substr(0, colon);
      port = s.substr(colon + 1);
      has_port = true;
    }
    size_t start = 0;
    while (true) {
      size_t dot = host.find('.', start);
      if (!IsDomainComponent(host.substr(start, dot - start))) return false;
      if (dot == absl::string_view::npos) break;
      start = dot + 1;
    }
  }
  return !has_port || IsDigits(port);
}

// [\w][\w.-]{0,127}
bool IsTag(absl::string_view s) {
  if (s.empty() || s.size() > kTagLengthMax || !IsWordChar(s.front())) return false;
  for (char c : s) {
    if (!IsWordChar(c) && c != '.' && c != '-') return false;
  }
  return true;
}

bool IsHexId(absl::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!IsLowerHex(c)) return false;
  }
  return true;
}

// Checks "sha256:<64 hex>" / "sha512:<128 hex>"; returns what is wrong, or "".
std::string DigestProblem(absl::string_view digest) {
  size_t colon = digest.find(':');
  if (colon == absl::string_view::npos) {
    return absl::StrCat("digest \"", absl::CHexEscape(digest),
                        "\" is not of the form algorithm:hex");
  }
  absl::string_view algorithm = digest.substr(0, colon);
  absl::string_view hex = digest.substr(colon + 1);
  size_t want;
  if (algorithm == "sha256") {
    want = 64;
  } else if (algorithm == "sha512") {
    want = 128;
  } else {
    return absl::StrCat("digest algorithm \"", absl::CHexEscape(algorithm),
                        "\" is not supported (sha256, sha512)");
  }
  bool lower_hex = true;
  for (char c : hex) lower_hex = lower_hex && IsLowerHex(c);
  if (hex.size() != want || !lower_hex) {
    return absl::StrCat(algorithm, " digest must be ", want, " lowercase hex characters, got \"",
                        absl::CHexEscape(hex), "\"");
  }
  return "";
}

}  // namespace

std::string Reference::Name() const { return absl::StrCat(domain, "/", path); }

std::string Reference::String() const {
  std::string out = Name();
  if (!tag.empty()) absl::StrAppend(&out, ":", tag);
  if (!digest.empty()) absl::StrAppend(&out, "@", digest);
  return out;
}

std::string Reference::Familiar() const {
  std::string out;
  if (domain == kDefaultDomain) {
    absl::string_view short_path = path;
    if (absl::StartsWith(short_path, kLibraryPrefix) &&
        short_path.find('/', kLibraryPrefix.size()) == absl::string_view::npos) {
      short_path.remove_prefix(kLibraryPrefix.size());
    }
    out = std::string(short_path);
    // "docker.io/cker.io/rr" must not become "cker.io/rr", another
    // registry's image (found by fuzz/reference_fuzz.cc).
    size_t slash = short_path.find('/');
    if (slash != absl::string_view::npos && ReadsAsDomain(short_path.substr(0, slash)))
      out = Name();
  } else {
    out = Name();
  }
  if (!tag.empty()) absl::StrAppend(&out, ":", tag);
  if (!digest.empty()) absl::StrAppend(&out, "@", digest);
  return out;
}

absl::StatusOr<Reference> ParseReference(absl::string_view ref) {
  if (ref.empty()) return Invalid(ref, "is empty");
  if (IsHexId(ref)) {
    return Invalid(ref, "a 64-character hex string is an image ID, not a repository name");
  }
  Reference out;

  // name [":" tag] ["@" digest]: neither name nor tag may contain '@'.
  absl::string_view name = ref;
  if (size_t at = name.find('@'); at != absl::string_view::npos) {
    absl::string_view digest = name.substr(at + 1);
    name = name.substr(0, at);
    if (std::string problem = DigestProblem(digest); !problem.empty()) {
      return Invalid(ref, problem);
    }
    out.digest = std::string(digest);
  }
  // The tag is after a ':' that follows the last '/' (an earlier ':' is a port).
  size_t last_slash = name.rfind('/');
  size_t colon = name.find(':', last_slash == absl::string_view::npos ? 0 : last_slash + 1);
  if (colon != absl::string_view::npos) {
    absl::string_view tag = name.substr(colon + 1);
    name = name.substr(0, colon);
    if (tag.empty()) return Invalid(ref, "tag is empty");
    if (tag.size() > kTagLengthMax) {
      return Invalid(ref, absl::StrCat("tag is longer than ", kTagLengthMax, " characters"));
    }
    if (!IsTag(tag)) {
      return Invalid(ref, absl::StrCat("tag \"", Quote(tag),
                                       "\" must be letters, digits, '_', '.' or '-' and not start "
                                       "with '.' or '-'"));
    }
    out.tag = std::string(tag);
  }
  if (name.empty()) return Invalid(ref, "repository name is empty");

  // Domain: the first component when it looks like a host name.
  absl::string_view remainder = name;
  size_t slash = name.find('/');
  absl::string_view first = name.substr(0, slash);
  if (slash != absl::string_view::npos && ReadsAsDomain(first)) {
    if (!IsDomain(first)) {
      return Invalid(
          ref, absl::StrCat("registry host \"", Quote(first), "\" is not a valid host[:port]"));
    }
    out.domain = first == kLegacyDefaultDomain ? std::string(kDefaultDomain) : std::string(first);
    remainder = name.substr(slash + 1);
  } else {
    out.domain = kDefaultDomain;
  }

  if (remainder.empty()) return Invalid(ref, "repository path is empty");
  for (char c : remainder) {
    if (absl::ascii_isupper(static_cast<unsigned char>(c))) {
      return Invalid(ref, "repository name must be lowercase");
    }
  }
  size_t start = 0;
  while (true) {
    size_t next = remainder.find('/', start);
    absl::string_view component = remainder.substr(start, next - start);
    if (component.empty()) return Invalid(ref, "repository path has an empty component");
    if (!IsPathComponent(component)) {
      return Invalid(ref, absl::StrCat("path component \"", Quote(component),
                                       "\" must be lowercase letters and digits separated by "
                                       "'.', '_', '__' or dashes"));
    }
    if (next == absl::string_view::npos) break;
    start = next + 1;
  }
  if (out.domain == kDefaultDomain && remainder.find('/') == absl::string_view::npos) {
    out.path = absl::StrCat(kLibraryPrefix, remainder);
  } else {
    out.path = std::string(remainder);
  }
  if (out.Name().size() > kNameTotalLengthMax) {
    return Invalid(ref, absl::StrCat("repository name \"", Quote(out.Name()), "\" is longer than ",
                                     kNameTotalLengthMax, " characters"));
  }
  if (out.tag.empty() && out.digest.empty()) out.tag = kDefaultTag;
  return out;
}

bool IsLoopbackRegistry(absl::string_view domain) {
  absl::string_view host = domain;
  if (absl::StartsWith(domain, "[")) {
    size_t close = domain.find(']');
    if (close == absl::string_view::npos) return false;
    host = domain.substr(1, close - 1);
    absl::string_view rest = domain.substr(close + 1);
    if (!rest.empty() && (rest.front() != ':' || !IsDigits(rest.substr(1)))) return false;
  } else if (size_t colon = domain.find(':');
             colon != absl::string_view::npos &&
             domain.find(':', colon + 1) == absl::string_view::npos) {
    // One colon: host ":" port. More than one: a bare IPv6 address.
    if (!IsDigits(domain.substr(colon + 1))) return false;
    host = domain.substr(0, colon);
  }
  if (absl::EqualsIgnoreCase(host, "localhost")) return true;

  std::string h(host);  // inet_pton needs a NUL-terminated string
  in_addr v4{};
  if (::inet_pton(AF_INET, h.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6{};
  if (::inet_pton(AF_INET6, h.c_str(), &v6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
    // ::ffff:127.x.x.x, an IPv4 loopback address in IPv6 form.
    return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
  }
  return false;
}

}  // namespace podshim::image
