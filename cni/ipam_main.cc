// podshim-ipam: the IPAM plugin binary around cni/ipam.h, for runtimes and
// main plugins that execute IPAM plugins (podshim-bridge links the library
// instead). ADD prints {"cniVersion", "ips", "routes", "dns"}; DEL and
// CHECK print nothing on success.
#include <cstdlib>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "cni/ipam.h"
#include "cni/plugin_common.h"
#include "nlohmann/json.hpp"

namespace podshim::cni {
namespace {

constexpr char kPluginName[] = "podshim-ipam";

}  // namespace

absl::StatusOr<std::string> RunIpamPlugin(const std::string& stdin_data) {
  absl::StatusOr<CniEnv> env = ParseEnv([](const char* name) {
    return std::getenv(name);  // NOLINT(concurrency-mt-unsafe): single-threaded plugin
  });
  if (!env.ok()) return env.status();
  if (env->command == Command::kVersion) return DumpJson(VersionJson(ReplyVersion(stdin_data)));
  if (env->command == Command::kGc || env->command == Command::kStatus) {
    return CniError(kErrInvalidEnvironment,
                    absl::StrCat("CNI_COMMAND ", env->command_name, " is not supported by ",
                                 kPluginName, " (it speaks CNI up to 1.0.0)"));
  }
  absl::StatusOr<nlohmann::json> conf = ParseConfigObject(stdin_data);
  if (!conf.ok()) return conf.status();
  absl::StatusOr<std::string> version = ConfigVersion(*conf, kPluginName);
  if (!version.ok()) return version.status();
  absl::StatusOr<IpamConfig> config = ParseIpamConfig(*conf);
  if (!config.ok()) return config.status();
  absl::StatusOr<IpamStore> store = IpamStore::Open(*config);
  if (!store.ok()) return store.status();
  const IpamOwner owner{env->container_id, env->ifname};

  switch (env->command) {
    case Command::kAdd: {
      absl::StatusOr<CniResult> result = store->Allocate(owner);
      if (!result.ok()) return result.status();
      return DumpJson(ResultToJson(*result, *version));
    }
    case Command::kDel:
      if (absl::Status s = store->Release(owner); !s.ok()) return s;
      return std::string();
    default: {
      if (CompareVersions(*version, "0.4.0") < 0) {
        return CniError(
            kErrIncompatibleVersion,
            absl::StrCat("CHECK needs cniVersion 0.4.0 or later, the config has ", *version));
      }
      absl::StatusOr<CniResult> held = store->Check(owner);
      if (!held.ok()) return held.status();
      return std::string();
    }
  }
}

}  // namespace podshim::cni

int main() { return podshim::cni::PluginMain(podshim::cni::RunIpamPlugin); }
