#include "kubelet/backoff.h"

#include <algorithm>

namespace podshim::kubelet {

void Backoff::Next(const std::string& key, absl::Time event_time) {
  auto it = entries_.find(key);
  if (it == entries_.end() || Expired(it->second, event_time)) {
    entries_[key] = Entry{initial_, event_time};
    return;
  }
  it->second.delay = std::min(it->second.delay * 2, max_);
  it->second.last_update = event_time;
}

bool Backoff::IsInBackOffSince(const std::string& key, absl::Time event_time,
                               absl::Time now) const {
  auto it = entries_.find(key);
  if (it == entries_.end() || Expired(it->second, now)) return false;
  return now - event_time < it->second.delay;
}

absl::Duration Backoff::Get(const std::string& key) const {
  auto it = entries_.find(key);
  return it == entries_.end() ? absl::ZeroDuration() : it->second.delay;
}

void Backoff::GarbageCollect(absl::Time now) {
  for (auto it = entries_.begin(); it != entries_.end();) {
    it = Expired(it->second, now) ? entries_.erase(it) : std::next(it);
  }
}

}  // namespace podshim::kubelet
