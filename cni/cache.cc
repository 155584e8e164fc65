#include "cni/cache.h"

#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "runtime/files.h"

namespace podshim::cni {

std::string ResultCache::PathOf(const std::string& container_id, const std::string& ifname) const {
  return absl::StrCat(dir_, "/", container_id, "-", ifname, ".json");
}

absl::Status ResultCache::Save(const CacheEntry& e) const {
  if (auto s = runtime::MakeDirs(dir_, 0700); !s.ok()) return s;
  nlohmann::json j = {
      {"kind", "podshim-cni-cache-v1"},
      {"containerId", e.container_id},
      {"ifName", e.ifname},
      {"netns", e.netns},
      {"network", e.network},
      {"runtimeConfig", e.runtime_config},
      {"args", e.args},
      {"result", e.result},
  };
  return runtime::WriteFileAtomic(PathOf(e.container_id, e.ifname), j.dump(), 0600);
}

absl::StatusOr<CacheEntry> ResultCache::Load(const std::string& container_id,
                                             const std::string& ifname) const {
  const std::string path = PathOf(container_id, ifname);
  auto text = runtime::ReadFile(path);
  if (!text.ok()) return text.status();
  nlohmann::json j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || j.value("kind", "") != "podshim-cni-cache-v1") {
    return absl::DataLossError(absl::StrCat("CNI cache entry ", path, " is not valid"));
  }
  CacheEntry e;
  try {
    e.container_id = j.at("containerId").get<std::string>();
    e.ifname = j.at("ifName").get<std::string>();
    e.netns = j.value("netns", "");
    e.network = j.at("network");
    e.runtime_config = j.value("runtimeConfig", nlohmann::json::object());
    e.args = j.value("args", decltype(e.args){});
    e.result = j.value("result", nlohmann::json());
  } catch (const nlohmann::json::exception& ex) {
    return absl::DataLossError(absl::StrCat("CNI cache entry ", path, ": ", ex.what()));
  }
  if (!e.network.is_object() || !e.network.contains("plugins")) {
    return absl::DataLossError(absl::StrCat("CNI cache entry ", path, ": no network"));
  }
  return e;
}

absl::Status ResultCache::Remove(const std::string& container_id, const std::string& ifname) const {
  const std::string path = PathOf(container_id, ifname);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return absl::ErrnoToStatus(errno, absl::StrCat("remove ", path));
  }
  return absl::OkStatus();
}

std::vector<std::pair<std::string, std::string>> ResultCache::List() const {
  std::vector<std::pair<std::string, std::string>> out;
  std::error_code ec;
  for (const auto& ent : std::filesystem::directory_iterator(dir_, ec)) {
    std::string name = ent.path().filename().string();
    if (!absl::EndsWith(name, ".json")) continue;
    // Ids and interface names may both hold '-', so read the names back
    // from the entry instead of splitting the file name.
    auto text = runtime::ReadFile(absl::StrCat(dir_, "/", name));
    if (!text.ok()) continue;
    nlohmann::json j = nlohmann::json::parse(*text, nullptr, false);
    if (!j.is_object() || !j.contains("containerId") || !j["containerId"].is_string() ||
        !j.contains("ifName") || !j["ifName"].is_string()) {
      continue;
    }
    out.emplace_back(j["containerId"].get<std::string>(), j["ifName"].get<std::string>());
  }
  return out;
}

}  // namespace podshim::cni
