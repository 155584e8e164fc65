#include "streaming/token_cache.h"

#include <sys/random.h>

#include <cerrno>
#include <utility>

namespace podshim::streaming {

const char* VerbOf(const Request& request) {
  struct Visitor {
    const char* operator()(const ExecRequest&) const { return "exec"; }
    const char* operator()(const AttachRequest&) const { return "attach"; }
    const char* operator()(const PortForwardRequest&) const { return "portforward"; }
  };
  return std::visit(Visitor{}, request);
}

namespace {

// 16 random bytes as 22 characters of unpadded base64url.
std::string NewToken() {
  unsigned char bytes[16];
  size_t got = 0;
  while (got < sizeof bytes) {
    ssize_t n = ::getrandom(bytes + got, sizeof bytes - got, 0);
    if (n > 0) got += static_cast<size_t>(n);
    // getrandom only fails with EINTR (or EAGAIN without GRND_NONBLOCK,
    // never here): try again.
  }
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string token;
  uint32_t bits = 0;
  int have = 0;
  for (unsigned char b : bytes) {
    bits = (bits << 8) | b;
    have += 8;
    while (have >= 6) {
      have -= 6;
      token.push_back(kAlphabet[(bits >> have) & 63]);
    }
  }
  if (have > 0) token.push_back(kAlphabet[(bits << (6 - have)) & 63]);
  return token;
}

}  // namespace

TokenCache::TokenCache(absl::Duration ttl, size_t capacity, Clock clock)
    : ttl_(ttl), capacity_(capacity == 0 ? 1 : capacity), clock_(std::move(clock)) {}

void TokenCache::DropExpiredLocked(absl::Time now) {
  while (!entries_.empty() && entries_.front().expires <= now) {
    by_token_.erase(entries_.front().token);
    entries_.pop_front();
  }
}

std::string TokenCache::Insert(Request request) {
  const absl::Time now = clock_();
  absl::MutexLock lock(&mu_);
  DropExpiredLocked(now);
  while (entries_.size() >= capacity_) {
    by_token_.erase(entries_.front().token);
    entries_.pop_front();
  }
  std::string token;
  do {
    token = NewToken();
  } while (by_token_.contains(token));
  entries_.push_back(Entry{token, now + ttl_, std::move(request)});
  by_token_.emplace(token, std::prev(entries_.end()));
  return token;
}

std::optional<Request> TokenCache::Consume(const std::string& token) {
  const absl::Time now = clock_();
  absl::MutexLock lock(&mu_);
  DropExpiredLocked(now);
  auto it = by_token_.find(token);
  if (it == by_token_.end()) return std::nullopt;
  Request request = std::move(it->second->request);
  entries_.erase(it->second);
  by_token_.erase(it);
  return request;
}

size_t TokenCache::size() const {
  absl::MutexLock lock(&mu_);
  return entries_.size();
}

}  // namespace podshim::streaming
