#include "agent/config.h"

#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "toml.hpp"

namespace podshim::agent {
namespace {

// The offset of the first byte of `text` that does not belong to a
// well-formed UTF-8 sequence (no overlong forms, no surrogates, nothing
// above U+10FFFF), or text.size().
size_t FirstInvalidUtf8(absl::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const auto b = static_cast<unsigned char>(text[i]);
    size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // the range of the second byte
    if (b < 0x80) {
      ++i;
      continue;
    } else if (b >= 0xC2 && b <= 0xDF) {
      len = 2;
    } else if (b >= 0xE0 && b <= 0xEF) {
      len = 3;
      if (b == 0xE0) lo = 0xA0;  // overlong
      if (b == 0xED) hi = 0x9F;  // surrogates
    } else if (b >= 0xF0 && b <= 0xF4) {
      len = 4;
      if (b == 0xF0) lo = 0x90;  // overlong
      if (b == 0xF4) hi = 0x8F;  // above U+10FFFF
    } else {
      return i;
    }
    if (text.size() - i < len) return i;
    for (size_t k = 1; k < len; ++k) {
      const auto c = static_cast<unsigned char>(text[i + k]);
      if (k == 1 ? (c < lo || c > hi) : (c < 0x80 || c > 0xBF)) return i;
    }
    i += len;
  }
  return i;
}

constexpr size_t kMaxSocketPath = 107;  // sizeof(sockaddr_un::sun_path) - 1

struct StringKey {
  const char* name;
  std::string Config::*field;
};

constexpr StringKey kStringKeys[] = {
    {"socket", &Config::socket},
    {"state_dir", &Config::state_dir},
    {"root_dir", &Config::root_dir},
    {"log_level", &Config::log_level},
    {"log_format", &Config::log_format},
    {"cgroup_parent", &Config::cgroup_parent},
    {"helpers_dir", &Config::helpers_dir},
    {"streaming_address", &Config::streaming_address},
    {"streaming_idle_timeout", &Config::streaming_idle_timeout},
    {"streaming_token_ttl", &Config::streaming_token_ttl},
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

absl::Status Invalid(absl::string_view origin, absl::string_view key, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("config ", origin, ": ", key, ": ", what));
}

absl::StatusOr<std::vector<std::string>> StringList(absl::string_view origin, absl::string_view key,
                                                    const toml::value& v) {
  if (!v.is_array()) return Invalid(origin, key, "must be an array of strings");
  std::vector<std::string> out;
  for (const auto& item : v.as_array()) {
    if (!item.is_string()) return Invalid(origin, key, "must be an array of strings");
    out.push_back(item.as_string().str);
  }
  return out;
}

absl::Status ParseCredentials(absl::string_view origin, const std::string& key,
                              const toml::value& v, RegistryCredentials& out) {
  if (!v.is_table()) return Invalid(origin, key, "must be a table");
  const std::pair<const char*, std::string RegistryCredentials::*> fields[] = {
      {"username", &RegistryCredentials::username},
      {"password", &RegistryCredentials::password},
      {"auth", &RegistryCredentials::auth},
      {"identity_token", &RegistryCredentials::identity_token},
      {"registry_token", &RegistryCredentials::registry_token},
  };
  for (const auto& [name, value] : v.as_table()) {
    const std::string full = absl::StrCat(key, ".", name);
    bool known = false;
    for (const auto& [field, member] : fields) {
      if (name != field) continue;
      known = true;
      if (!value.is_string()) return Invalid(origin, full, "must be a string");
      out.*member = value.as_string().str;
    }
    if (!known) {
      return Invalid(origin, full,
                     "unknown key (known: username, password, auth, identity_token, "
                     "registry_token)");
    }
  }
  return absl::OkStatus();
}

absl::Status ParseRegistry(absl::string_view origin, const toml::value& v, RegistryConfig& out) {
  if (!v.is_table()) return Invalid(origin, "registry", "must be a table");
  for (const auto& [name, value] : v.as_table()) {
    const std::string key = absl::StrCat("registry.", name);
    if (name == "mirrors") {
      if (!value.is_table()) return Invalid(origin, key, "must be a table of host = [urls]");
      for (const auto& [host, urls] : value.as_table()) {
        const std::string hkey = absl::StrCat(key, ".\"", host, "\"");
        auto list = StringList(origin, hkey, urls);
        if (!list.ok()) return list.status();
        for (const auto& url : *list) {
          if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0) {
            return Invalid(
                origin, hkey,
                absl::StrCat("mirror \"", url, "\" must start with http:// or https://"));
          }
        }
        out.mirrors[host] = *list;
      }
    } else if (name == "plain_http") {
      auto list = StringList(origin, key, value);
      if (!list.ok()) return list.status();
      out.plain_http = *list;
    } else if (name == "auths") {
      if (!value.is_table()) return Invalid(origin, key, "must be a table of host = {...}");
      for (const auto& [host, creds] : value.as_table()) {
        if (auto s = ParseCredentials(origin, absl::StrCat(key, ".\"", host, "\""), creds,
                                      out.auths[host]);
            !s.ok()) {
          return s;
        }
      }
    } else if (name == "upstream_fallback") {
      if (!value.is_boolean()) return Invalid(origin, key, "must be true or false");
      out.upstream_fallback = value.as_boolean();
    } else if (name == "max_concurrent_downloads") {
      if (!value.is_integer() || value.as_integer() < 1 || value.as_integer() > 64) {
        return Invalid(origin, key, "must be an integer from 1 to 64");
      }
      out.max_concurrent_downloads = static_cast<int>(value.as_integer());
    } else {
      return Invalid(origin, key,
                     "unknown key (known: mirrors, plain_http, auths, upstream_fallback, "
                     "max_concurrent_downloads)");
    }
  }
  return absl::OkStatus();
}

absl::Status ParseCni(absl::string_view origin, const toml::value& v, CniConfig& out) {
  if (!v.is_table()) return Invalid(origin, "cni", "must be a table");
  for (const auto& [name, value] : v.as_table()) {
    const std::string key = absl::StrCat("cni.", name);
    if (name == "enabled" || name == "default_network") {
      if (!value.is_boolean()) return Invalid(origin, key, "must be true or false");
      (name == "enabled" ? out.enabled : out.default_network) = value.as_boolean();
    } else if (name == "conf_dir" || name == "default_subnet") {
      if (!value.is_string()) return Invalid(origin, key, "must be a string");
      (name == "conf_dir" ? out.conf_dir : out.default_subnet) = value.as_string().str;
    } else if (name == "bin_dirs") {
      auto list = StringList(origin, key, value);
      if (!list.ok()) return list.status();
      out.bin_dirs = *list;
    } else if (name == "plugin_timeout_seconds") {
      if (!value.is_integer() || value.as_integer() < 1 || value.as_integer() > 3600) {
        return Invalid(origin, key, "must be an integer from 1 to 3600");
      }
      out.plugin_timeout_seconds = static_cast<int>(value.as_integer());
    } else {
      return Invalid(origin, key,
                     "unknown key (known: enabled, conf_dir, bin_dirs, default_network, "
                     "default_subnet, plugin_timeout_seconds)");
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Config> ParseConfigToml(absl::string_view text, absl::string_view origin,
                                       Config base) {
  // TOML is UTF-8 only, and toml11 3.7 reads past its buffer on some
  // invalid sequences (found by fuzz/config_fuzz.cc): refused first.
  if (size_t bad = FirstInvalidUtf8(text); bad != text.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("config ", origin, ": not UTF-8 (byte ", bad, ")"));
  }
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
    if (key == "registry") {
      if (auto s = ParseRegistry(origin, value, base.registry); !s.ok()) return s;
      continue;
    }
    if (key == "cni") {
      if (auto s = ParseCni(origin, value, base.cni); !s.ok()) return s;
      continue;
    }
    if (key == "pids_limit") {
      if (!value.is_integer() || value.as_integer() < 0) {
        return Invalid(origin, key, "must be an integer, 0 (no limit) or more");
      }
      base.pids_limit = value.as_integer();
      continue;
    }
    if (key == "cgroup_favor_dynmods") {
      if (!value.is_boolean()) return Invalid(origin, key, "must be true or false");
      base.cgroup_favor_dynmods = value.as_boolean();
      continue;
    }
    if (key == "handoff_ttl_seconds") {
      if (!value.is_integer() || value.as_integer() <= 0) {
        return Invalid(origin, key, "must be an integer number of seconds, more than 0");
      }
      base.handoff_ttl_seconds = value.as_integer();
      continue;
    }
    if (key == "exec_sync_max_timeout_seconds") {
      if (!value.is_integer() || value.as_integer() <= 0) {
        return Invalid(origin, key, "must be an integer number of seconds, more than 0");
      }
      base.exec_sync_max_timeout_seconds = value.as_integer();
      continue;
    }
    if (key == "max_layer_bytes" || key == "max_layer_entries") {
      if (!value.is_integer() || value.as_integer() <= 0) {
        return Invalid(origin, key, "must be an integer, more than 0");
      }
      (key == "max_layer_bytes" ? base.max_layer_bytes : base.max_layer_entries) =
          value.as_integer();
      continue;
    }
    if (key == "streaming_max_streams") {
      if (!value.is_integer() || value.as_integer() <= 0 || value.as_integer() > 1'000'000) {
        return Invalid(origin, key, "must be an integer from 1 to 1000000");
      }
      base.streaming_max_streams = value.as_integer();
      continue;
    }
    if (key == "rpc_queue_limit") {
      if (!value.is_integer() || value.as_integer() <= 0) {
        return Invalid(origin, key, "must be an integer, more than 0");
      }
      base.rpc_queue_limit = value.as_integer();
      continue;
    }
    const StringKey* match = nullptr;
    for (const auto& k : kStringKeys) {
      if (key == k.name) match = &k;
    }
    if (match == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("config ", origin, ": unknown key \"", key, "\" (known keys: ", KeyNames(),
                       ", pids_limit, cgroup_favor_dynmods, handoff_ttl_seconds, rpc_queue_limit, "
                       "streaming_max_streams, registry, cni)"));
    }
    if (!value.is_string()) {
      return absl::InvalidArgumentError(
          absl::StrCat("config ", origin, ": key \"", key, "\" must be a string"));
    }
    base.*(match->field) = value.as_string().str;
  }
  return base;
}

absl::StatusOr<absl::Duration> StreamingDuration(const std::string& text) {
  absl::Duration d;
  if (!absl::ParseDuration(text, &d) || d <= absl::ZeroDuration() ||
      d == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "\"", text, "\" is not a duration more than 0 (e.g. \"4h\", \"90s\", \"1m30s\")"));
  }
  return d;
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
  if (auto s = CheckAbsolute("cgroup_parent", config.cgroup_parent); !s.ok()) return s;
  if (absl::StrContains(config.cgroup_parent, "..")) {
    return absl::InvalidArgumentError(
        absl::StrCat("cgroup_parent: \"", config.cgroup_parent, "\" must not contain \"..\""));
  }
  if (!config.helpers_dir.empty()) {
    if (auto s = CheckAbsolute("helpers_dir", config.helpers_dir); !s.ok()) return s;
  }
  if (config.pids_limit < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("pids_limit: ", config.pids_limit, " is negative (0 means no limit)"));
  }
  if (config.handoff_ttl_seconds <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("handoff_ttl_seconds: ", config.handoff_ttl_seconds,
                     " must be more than 0 (seconds a pod or pull made for a client that gave "
                     "up waits for its retry)"));
  }
  if (config.exec_sync_max_timeout_seconds <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("exec_sync_max_timeout_seconds: ", config.exec_sync_max_timeout_seconds,
                     " must be more than 0"));
  }
  for (const auto& [key, value] :
       {std::pair<const char*, int64_t>{"max_layer_bytes", config.max_layer_bytes},
        {"max_layer_entries", config.max_layer_entries}}) {
    if (value <= 0) {
      return absl::InvalidArgumentError(absl::StrCat(key, ": ", value, " must be more than 0"));
    }
  }
  if (config.rpc_queue_limit <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("rpc_queue_limit: ", config.rpc_queue_limit, " must be more than 0"));
  }
  for (const auto& [key, text] : {std::pair<const char*, const std::string*>{
                                      "streaming_idle_timeout", &config.streaming_idle_timeout},
                                  {"streaming_token_ttl", &config.streaming_token_ttl}}) {
    if (auto d = StreamingDuration(*text); !d.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(key, ": ", d.status().message()));
    }
  }
  if (config.streaming_max_streams <= 0 || config.streaming_max_streams > 1'000'000) {
    return absl::InvalidArgumentError(absl::StrCat(
        "streaming_max_streams: ", config.streaming_max_streams, " must be from 1 to 1000000"));
  }
  if (config.streaming_address.find(':') == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("streaming_address: \"", config.streaming_address, "\" is not host:port"));
  }
  if (auto s = CheckAbsolute("cni.conf_dir", config.cni.conf_dir); !s.ok()) return s;
  for (const auto& dir : config.cni.bin_dirs) {
    if (auto s = CheckAbsolute("cni.bin_dirs", dir); !s.ok()) return s;
  }
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
  nlohmann::json registry = nlohmann::json::object();
  registry["mirrors"] = config.registry.mirrors;
  registry["plain_http"] = config.registry.plain_http;
  registry["max_concurrent_downloads"] = config.registry.max_concurrent_downloads;
  registry["upstream_fallback"] = config.registry.upstream_fallback;
  // Credentials are never reported, only which hosts have them.
  nlohmann::json hosts = nlohmann::json::array();
  for (const auto& [host, creds] : config.registry.auths) hosts.push_back(host);
  registry["auths"] = hosts;
  j["registry"] = registry;
  j["pids_limit"] = config.pids_limit;
  j["cgroup_favor_dynmods"] = config.cgroup_favor_dynmods;
  j["handoff_ttl_seconds"] = config.handoff_ttl_seconds;
  j["rpc_queue_limit"] = config.rpc_queue_limit;
  j["streaming_max_streams"] = config.streaming_max_streams;
  j["exec_sync_max_timeout_seconds"] = config.exec_sync_max_timeout_seconds;
  j["max_layer_bytes"] = config.max_layer_bytes;
  j["max_layer_entries"] = config.max_layer_entries;
  j["cni"] = {{"enabled", config.cni.enabled},
              {"conf_dir", config.cni.conf_dir},
              {"bin_dirs", config.cni.bin_dirs},
              {"default_network", config.cni.default_network},
              {"default_subnet", config.cni.default_subnet},
              {"plugin_timeout_seconds", config.cni.plugin_timeout_seconds}};
  return j;
}

}  // namespace podshim::agent
