// CNI JSON in both directions (cni/): what a plugin prints back to podshimd
// (a result: the pod's addresses come from it) and what a plugin reads on
// stdin (the network configuration with its IPAM and port-mapping parts, a
// prevResult). A result that reads must write and read back to the same
// JSON in every supported version that has the same shape.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/string_view.h"
#include "cni/client.h"
#include "cni/hostport.h"
#include "cni/ipam.h"
#include "cni/netconf.h"
#include "cni/plugin_common.h"
#include "nlohmann/json.hpp"

namespace {

[[noreturn]] void Fail(const std::string& what, const nlohmann::json& a, const nlohmann::json& b) {
  std::fprintf(stderr, "cni_fuzz: %s\n  first:  %s\n  second: %s\n", what.c_str(),
               a.dump().substr(0, 400).c_str(), b.dump().substr(0, 400).c_str());
  std::abort();
}

void CheckResult(const nlohmann::json& j) {
  namespace cni = podshim::cni;
  auto result = cni::ResultFromJson(j, "result");
  if (!result.ok()) return;
  const nlohmann::json written = cni::ResultToJson(*result, "1.0.0");
  auto reread = cni::ResultFromJson(written, "result");
  if (!reread.ok())
    Fail("a written result does not read: " + reread.status().ToString(), j, written);
  const nlohmann::json rewritten = cni::ResultToJson(*reread, "1.0.0");
  if (rewritten != written) Fail("a result changes when read back", written, rewritten);
  (void)cni::PodAddresses(written);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace cni = podshim::cni;
  const absl::string_view text(reinterpret_cast<const char*>(data), size);

  (void)cni::ParseNetworkConfigList(text);
  (void)cni::ParseNetworkConfig(text);
  (void)cni::ReplyVersion(std::string(text));
  (void)cni::ParseBandwidth(std::string(text.substr(0, 64)));

  auto conf = cni::ParseConfigObject(text);
  if (!conf.ok()) return 0;
  (void)cni::PodAddresses(*conf);
  (void)cni::ConfigVersion(*conf, "fuzz");
  (void)cni::ParseIpamConfig(*conf);
  (void)cni::ParsePortMappings(*conf);
  CheckResult(*conf);
  if (conf->is_object() && conf->contains("prevResult")) CheckResult((*conf)["prevResult"]);
  return 0;
}
