// podshimd's TOML configuration (agent/config.h): whatever a config file
// holds is parsed, checked and printed back without harm, and every refusal
// names where it came from.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "agent/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace agent = podshim::agent;
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  auto config = agent::ParseConfigToml(text, "fuzz.toml");
  if (!config.ok()) {
    if (!absl::StrContains(config.status().message(), "fuzz.toml")) {
      std::fprintf(stderr, "config_fuzz: a refusal does not name the file: %s\n",
                   config.status().ToString().substr(0, 400).c_str());
      std::abort();
    }
    return 0;
  }
  (void)agent::ValidateConfig(*config);
  (void)agent::ConfigToJson(*config).dump();
  return 0;
}
