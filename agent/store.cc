#include "agent/store.h"

namespace podshim::agent {

absl::Status NameRegistry::Reserve(const std::string& name, const std::string& id,
                                   absl::string_view what) {
  absl::MutexLock lock(&mu_);
  auto [it, inserted] = holders_.emplace(name, id);
  if (!inserted && it->second != id) {
    return absl::AlreadyExistsError(
        absl::StrCat(what, " `", name, "` is reserved by ", it->second));
  }
  return absl::OkStatus();
}

std::string NameRegistry::Holder(const std::string& name) const {
  absl::MutexLock lock(&mu_);
  auto it = holders_.find(name);
  return it == holders_.end() ? std::string() : it->second;
}

void NameRegistry::Release(const std::string& name, const std::string& id) {
  absl::MutexLock lock(&mu_);
  if (auto it = holders_.find(name); it != holders_.end() && it->second == id) holders_.erase(it);
}

void NameRegistry::ReleaseId(const std::string& id) {
  absl::MutexLock lock(&mu_);
  std::erase_if(holders_, [&](const auto& kv) { return kv.second == id; });
}

}  // namespace podshim::agent
