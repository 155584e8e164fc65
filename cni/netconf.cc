#include "cni/netconf.h"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <system_error>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace podshim::cni {
namespace {

namespace fs = std::filesystem;

// Network configs are a few hundred bytes; anything this big is not one.
constexpr std::uintmax_t kMaxConfigFileSize = 1 << 20;

constexpr absl::string_view kListExtension = ".conflist";
constexpr absl::string_view kConfExtension = ".conf";
constexpr absl::string_view kJsonExtension = ".json";

absl::Status Invalid(absl::string_view what) { return absl::InvalidArgumentError(what); }

// Prefixes a status message with context, keeping its code.
absl::Status Annotate(const absl::Status& s, absl::string_view context) {
  return absl::Status(s.code(), absl::StrCat(context, ": ", s.message()));
}

absl::StatusOr<nlohmann::json> ParseJsonObject(absl::string_view data) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(data.begin(), data.end());
  } catch (const nlohmann::json::exception& e) {
    // e.what() is "[json.exception.parse_error.101] parse error at line 1, ...",
    // or out_of_range.406 for a number too large for a double ("1E400").
    absl::string_view why = e.what();
    if (size_t end = why.find("] "); end != absl::string_view::npos) why.remove_prefix(end + 2);
    return Invalid(absl::StrCat("not valid JSON: ", why));
  }
  if (!j.is_object()) return Invalid(absl::StrCat("want a JSON object, got ", j.type_name()));
  return j;
}

// ^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$, the rule libcni applies to network names.
bool IsValidNetworkName(absl::string_view name) {
  auto alnum = [](char c) { return absl::ascii_isalnum(static_cast<unsigned char>(c)); };
  if (name.empty() || !alnum(name.front())) return false;
  return std::all_of(name.begin(), name.end(),
                     [&](char c) { return alnum(c) || c == '_' || c == '.' || c == '-'; });
}

// A required non-empty string member of `obj`.
absl::StatusOr<std::string> RequiredString(const nlohmann::json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end()) return Invalid(absl::StrCat("\"", key, "\" is missing"));
  if (!it->is_string()) {
    return Invalid(absl::StrCat("\"", key, "\" must be a string, got ", it->type_name()));
  }
  std::string value = it->get<std::string>();
  if (value.empty()) return Invalid(absl::StrCat("\"", key, "\" is empty"));
  return value;
}

// The fields a list and a single config share: cniVersion and name.
absl::Status ParseHeader(const nlohmann::json& obj, NetworkConfigList& out) {
  absl::StatusOr<std::string> version = RequiredString(obj, "cniVersion");
  if (!version.ok()) return version.status();
  absl::StatusOr<std::string> name = RequiredString(obj, "name");
  if (!name.ok()) return name.status();
  if (!IsValidNetworkName(*name)) {
    return Invalid(absl::StrCat("\"name\" \"", absl::CHexEscape(*name),
                                "\" must be letters, digits, '_', '.' or '-' and start with a "
                                "letter or digit"));
  }
  out.cni_version = *std::move(version);
  out.name = *std::move(name);
  return absl::OkStatus();
}

absl::Status CheckPluginType(const nlohmann::json& plugin) {
  if (!plugin.is_object()) {
    return Invalid(absl::StrCat("must be a JSON object, got ", plugin.type_name()));
  }
  return RequiredString(plugin, "type").status();
}

absl::StatusOr<NetworkConfigList> ListFromJson(const nlohmann::json& obj) {
  NetworkConfigList out;
  if (absl::Status s = ParseHeader(obj, out); !s.ok()) return s;

  // disableCheck: a boolean, or (as libcni accepts) the string "true"/"false".
  if (auto it = obj.find("disableCheck"); it != obj.end()) {
    if (it->is_boolean()) {
      out.disable_check = it->get<bool>();
    } else if (it->is_string() && absl::AsciiStrToLower(it->get<std::string>()) == "true") {
      out.disable_check = true;
    } else if (it->is_string() && absl::AsciiStrToLower(it->get<std::string>()) == "false") {
      out.disable_check = false;
    } else {
      return Invalid(absl::StrCat("\"disableCheck\" must be true or false, got ", it->dump()));
    }
  }

  auto plugins = obj.find("plugins");
  if (plugins == obj.end()) return Invalid("\"plugins\" is missing");
  if (!plugins->is_array()) {
    return Invalid(absl::StrCat("\"plugins\" must be an array, got ", plugins->type_name()));
  }
  if (plugins->empty()) return Invalid("\"plugins\" is empty");
  for (size_t i = 0; i < plugins->size(); ++i) {
    const nlohmann::json& plugin = (*plugins)[i];
    if (absl::Status s = CheckPluginType(plugin); !s.ok()) {
      return Annotate(s, absl::StrCat("plugins[", i, "]"));
    }
    out.plugins.push_back(plugin);
  }
  return out;
}

absl::StatusOr<NetworkConfigList> ConfFromJson(nlohmann::json obj) {
  NetworkConfigList out;
  if (absl::Status s = ParseHeader(obj, out); !s.ok()) return s;
  if (absl::Status s = CheckPluginType(obj); !s.ok()) return s;
  out.plugins.push_back(std::move(obj));
  return out;
}

bool HasConfigExtension(const fs::path& path) {
  std::string ext = path.extension().string();
  return ext == kListExtension || ext == kConfExtension || ext == kJsonExtension;
}

absl::StatusOr<std::string> ReadSmallFile(const std::string& path) {
  std::error_code ec;
  fs::file_status st = fs::status(path, ec);
  if (ec) return absl::ErrnoToStatus(ec.value(), absl::StrCat("stat: ", ec.message()));
  if (!fs::is_regular_file(st)) return absl::FailedPreconditionError("not a regular file");
  std::uintmax_t size = fs::file_size(path, ec);
  if (ec) return absl::ErrnoToStatus(ec.value(), absl::StrCat("stat: ", ec.message()));
  if (size > kMaxConfigFileSize) {
    return absl::FailedPreconditionError(
        absl::StrCat("is ", size, " bytes, more than the ", kMaxConfigFileSize, " allowed"));
  }
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    int err = errno != 0 ? errno : EIO;
    return absl::ErrnoToStatus(err, absl::StrCat("open: ", std::generic_category().message(err)));
  }
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return absl::DataLossError("read failed");
  return data;
}

}  // namespace

absl::StatusOr<NetworkConfigList> ParseNetworkConfigList(absl::string_view data) {
  absl::StatusOr<nlohmann::json> obj = ParseJsonObject(data);
  absl::StatusOr<NetworkConfigList> out =
      obj.ok() ? ListFromJson(*obj) : absl::StatusOr<NetworkConfigList>(obj.status());
  if (!out.ok()) return Annotate(out.status(), "CNI network list");
  return out;
}

absl::StatusOr<NetworkConfigList> ParseNetworkConfig(absl::string_view data) {
  absl::StatusOr<nlohmann::json> obj = ParseJsonObject(data);
  absl::StatusOr<NetworkConfigList> out =
      obj.ok() ? ConfFromJson(*std::move(obj)) : absl::StatusOr<NetworkConfigList>(obj.status());
  if (!out.ok()) return Annotate(out.status(), "CNI network config");
  return out;
}

absl::StatusOr<NetworkConfigList> LoadNetworkFile(const std::string& path) {
  const std::string context = absl::StrCat("CNI config file \"", absl::CHexEscape(path), "\"");
  std::string ext = fs::path(path).extension().string();
  if (!HasConfigExtension(path)) {
    return Invalid(absl::StrCat(context, ": extension \"", absl::CHexEscape(ext),
                                "\" is not one of .conflist, .conf, .json"));
  }
  absl::StatusOr<std::string> data = ReadSmallFile(path);
  if (!data.ok()) return Annotate(data.status(), context);
  absl::StatusOr<nlohmann::json> obj = ParseJsonObject(*data);
  if (!obj.ok()) return Annotate(obj.status(), context);

  bool is_list = ext == kListExtension || (ext == kJsonExtension && obj->contains("plugins"));
  absl::StatusOr<NetworkConfigList> out =
      is_list ? ListFromJson(*obj) : ConfFromJson(*std::move(obj));
  if (!out.ok()) return Annotate(out.status(), context);
  out->source = path;
  return out;
}

absl::StatusOr<NetworkConfigList> LoadDefaultNetwork(const std::string& conf_dir) {
  const std::string dir_quoted = absl::StrCat("\"", absl::CHexEscape(conf_dir), "\"");
  std::error_code ec;
  fs::directory_iterator it(conf_dir, ec);
  if (ec) {
    if (ec.value() == ENOENT) {
      return absl::NotFoundError(
          absl::StrCat("no CNI network config in ", dir_quoted, ": the directory does not exist"));
    }
    return absl::ErrnoToStatus(
        ec.value(), absl::StrCat("read CNI config directory ", dir_quoted, ": ", ec.message()));
  }

  std::vector<fs::path> candidates;
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    const fs::directory_entry& entry = *it;
    std::error_code dir_ec;
    // Directories (also through symlinks) are not configs, whatever their name.
    if (entry.is_directory(dir_ec)) continue;
    if (HasConfigExtension(entry.path())) candidates.push_back(entry.path());
  }
  if (ec) {
    return absl::ErrnoToStatus(
        ec.value(), absl::StrCat("read CNI config directory ", dir_quoted, ": ", ec.message()));
  }
  std::sort(candidates.begin(), candidates.end(), [](const fs::path& a, const fs::path& b) {
    return a.filename().string() < b.filename().string();
  });

  std::vector<RejectedFile> rejected;
  for (const fs::path& path : candidates) {
    absl::StatusOr<NetworkConfigList> list = LoadNetworkFile(path.string());
    if (list.ok()) {
      list->rejected = std::move(rejected);
      return list;
    }
    rejected.push_back({path.string(), list.status()});
  }
  if (rejected.empty()) {
    return absl::NotFoundError(absl::StrCat("no CNI network config in ", dir_quoted,
                                            ": no *.conflist, *.conf or *.json files"));
  }
  return absl::NotFoundError(
      absl::StrCat("no usable CNI network config in ", dir_quoted, ": ",
                   absl::StrJoin(rejected, "; ", [](std::string* out, const RejectedFile& r) {
                     absl::StrAppend(out, r.error.message());
                   })));
}

std::string DefaultBridgeConflist(absl::string_view subnet) {
  if (subnet.empty()) subnet = kDefaultPodSubnet;
  bool ipv6 = subnet.find(':') != absl::string_view::npos;
  nlohmann::ordered_json range = {{"subnet", std::string(subnet)}};
  nlohmann::ordered_json default_route = {{"dst", ipv6 ? "::/0" : "0.0.0.0/0"}};
  nlohmann::ordered_json ipam = {
      {"type", "podshim-ipam"},
      // One range set holding one range.
      {"ranges", nlohmann::ordered_json::array({nlohmann::ordered_json::array({range})})},
      {"routes", nlohmann::ordered_json::array({default_route})},
  };
  nlohmann::ordered_json bridge = {
      {"type", "podshim-bridge"},
      {"bridge", "podshim0"},
      {"isGateway", true},
      {"ipMasq", false},
      {"hairpinMode", true},
      {"ipam", ipam},
      {"capabilities", {{"portMappings", true}}},
  };
  nlohmann::ordered_json conflist = {
      {"cniVersion", "1.0.0"},
      {"name", "podshim"},
      {"plugins", nlohmann::ordered_json::array({bridge})},
  };
  return conflist.dump(2) + "\n";
}

}  // namespace podshim::cni
