// The streaming server's pending requests, by token. Exec, Attach and
// PortForward answer a URL with a token in it; the client then connects to
// that URL. A token is 128 bits from the kernel's CSPRNG (unguessable), is
// good for one connection only, expires after `ttl`, and at most `capacity`
// wait at once (the oldest is dropped for a new one), so a client that asks
// for URLs and never connects cannot grow podshimd's memory.
#pragma once

#include <cstddef>
#include <functional>
#include <list>
#include <optional>
#include <string>
#include <unordered_map>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "streaming/requests.h"

namespace podshim::streaming {

class TokenCache {
 public:
  using Clock = std::function<absl::Time()>;
  TokenCache(absl::Duration ttl, size_t capacity, Clock clock = absl::Now);

  // Keeps `request` and returns its new token (URL-safe: [A-Za-z0-9_-]).
  std::string Insert(Request request);
  // The request of `token`, removed from the cache (single use); nullopt
  // when the token is unknown, already used, expired or evicted.
  std::optional<Request> Consume(const std::string& token);
  size_t size() const;

 private:
  struct Entry {
    std::string token;
    absl::Time expires;
    Request request;
  };
  void DropExpiredLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const absl::Duration ttl_;
  const size_t capacity_;
  const Clock clock_;
  mutable absl::Mutex mu_;
  // Oldest first; every entry's expiry is its insertion time + ttl, so the
  // list is in expiry order too.
  std::list<Entry> entries_ ABSL_GUARDED_BY(mu_);
  std::unordered_map<std::string, std::list<Entry>::iterator> by_token_ ABSL_GUARDED_BY(mu_);
};

}  // namespace podshim::streaming
