// The on-disk record of a pod's network attachment: what ADD was run with
// and what it returned, so that DEL gets the same configuration and its
// prevResult even after podshimd restarted or the config directory changed.
//
// An entry is written before ADD runs (with no result yet) and completed
// after it. An entry whose pod does not exist after a crash therefore names
// an attachment that may be half made; the agent tears such attachments down
// at start.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace podshim::cni {

struct CacheEntry {
  std::string container_id;
  std::string ifname;
  std::string netns;
  // The network list as it was used: {"cniVersion", "name", "plugins"}.
  nlohmann::json network;
  // The runtimeConfig values offered (portMappings, dns, bandwidth).
  nlohmann::json runtime_config = nlohmann::json::object();
  std::vector<std::pair<std::string, std::string>> args;  // CNI_ARGS
  // The final result of the ADD chain; null while ADD has not finished.
  nlohmann::json result;
};

class ResultCache {
 public:
  explicit ResultCache(std::string dir) : dir_(std::move(dir)) {}

  // Writes atomically (temporary file, fsync, rename).
  absl::Status Save(const CacheEntry& entry) const;
  // NOT_FOUND when there is none; an unreadable entry is an error naming it.
  absl::StatusOr<CacheEntry> Load(const std::string& container_id, const std::string& ifname) const;
  // Missing is fine.
  absl::Status Remove(const std::string& container_id, const std::string& ifname) const;
  // Every entry's (container_id, ifname); unreadable files are skipped.
  std::vector<std::pair<std::string, std::string>> List() const;

  const std::string& dir() const { return dir_; }

 private:
  std::string PathOf(const std::string& container_id, const std::string& ifname) const;
  std::string dir_;
};

}  // namespace podshim::cni
