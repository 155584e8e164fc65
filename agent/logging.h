// Logging: one spdlog logger per component ("agent", "rpc", "config", ...),
// all writing to stderr through one sink, as text or as JSON lines.
#pragma once

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "spdlog/spdlog.h"

// Lets spdlog/fmt format absl::string_view (Debian's Abseil has its own
// string_view type, not std::string_view; see docs/development.md).
template <>
struct fmt::formatter<absl::string_view> : fmt::formatter<fmt::string_view> {
  template <typename FormatContext>
  auto format(absl::string_view s, FormatContext& ctx) const {
    return fmt::formatter<fmt::string_view>::format(fmt::string_view(s.data(), s.size()), ctx);
  }
};

namespace podshim::agent {

// Sets the level (trace, debug, info, warn, error) and format (text, json)
// of every component logger, existing and future.
absl::Status SetupLogging(absl::string_view level, absl::string_view format);

// The logger of `component`, created on first use.
std::shared_ptr<spdlog::logger> Log(const std::string& component);

// Escapes `text` for use inside a JSON string (without the quotes).
std::string JsonEscape(absl::string_view text);

}  // namespace podshim::agent
