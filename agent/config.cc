#include "agent/config.h"

#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "toml.hpp"

namespace podshim::agent {
namespace {

constexpr size_t kMaxSocketPath = 107;  // sizeof(sockaddr_un::sun_path) - 1

struct StringKey {
  const char* name;
  std::string Config::*field;
};

constexpr StringKey kStringKeys[] = {
    {"socket", &Config::socket},         {"state_dir", &Config::state_dir},
    {"root_dir", &Config::root_dir},     {"log_level", &Config::log_level},
    {"log_format", &Config::log_format},
};

std::string KeyNames() {
  std::vector<std::string> names;
  for (const auto& k : kStringKeys) names.emplace_back(k.name);
  return absl::StrJoin(names, ", ");
}

absl::Status CheckAbsolute(absl::string_view key, const std::string& value) {
  if (value.empty() || value.front() != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat(key, ": must be an absolute path, got \"", value, "\""));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Config> ParseConfigToml(absl::string_view text, absl::string_view origin,
                                       Config base) {
  toml::value root;
  try {
    std::istringstream in{std::string(text)};
    root = toml::parse(in, std::string(origin));
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("config ", origin, ": ", e.what()));
  }
  if (!root.is_table()) {
    return absl::InvalidArgumentError(absl::StrCat("config ", origin, ": not a TOML table"));
  }
  for (const auto& [key, value] : root.as_table()) {
    const StringKey* match = nullptr;
    for (const auto& k : kStringKeys) {
      if (key == k.name) match = &k;
    }
    if (match == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("config ", origin, ": unknown key \"", key,
                                                     "\" (known keys: ", KeyNames(), ")"));
    }
    if (!value.is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat("config ", origin, ": key \"", key, "\" must be a string"));
    }
    base.*(match->field) = value.as_string().str;
  }
  return base;
}

absl::Status ValidateConfig(const Config& config) {
  if (auto s = CheckAbsolute("socket", config.socket); !s.ok()) return s;
  if (config.socket.size() > kMaxSocketPath) {
    return absl::InvalidArgumentError(
        absl::StrCat("socket: path \"", config.socket, "\" is ", config.socket.size(),
                     " bytes, at most ", kMaxSocketPath, " fit in a unix socket address"));
  }
  if (config.socket.back() == '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("socket: \"", config.socket, "\" names a directory, not a socket file"));
  }
  if (auto s = CheckAbsolute("state_dir", config.state_dir); !s.ok()) return s;
  if (auto s = CheckAbsolute("root_dir", config.root_dir); !s.ok()) return s;
  static constexpr absl::string_view kLevels[] = {"trace", "debug", "info", "warn", "error"};
  bool level_ok = false;
  for (auto l : kLevels) level_ok = level_ok || config.log_level == l;
  if (!level_ok) {
    return absl::InvalidArgumentError(absl::StrCat(
        "log_level: \"", config.log_level, "\" is not one of trace, debug, info, warn, error"));
  }
  if (config.log_format != "text" && config.log_format != "json") {
    return absl::InvalidArgumentError(
        absl::StrCat("log_format: \"", config.log_format, "\" is not one of text, json"));
  }
  return absl::OkStatus();
}

nlohmann::json ConfigToJson(const Config& config) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& k : kStringKeys) j[k.name] = config.*(k.field);
  return j;
}

}  // namespace podshim::agent
