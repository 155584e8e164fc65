#include "agent/logging.h"

#include <chrono>
#include <ctime>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "spdlog/pattern_formatter.h"
#include "spdlog/sinks/stdout_sinks.h"

namespace podshim::agent {
namespace {

// One JSON object per line: time (UTC, RFC 3339 with microseconds), level,
// logger (the component) and msg.
class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    using std::chrono::duration_cast;
    using std::chrono::microseconds;
    auto since_epoch = msg.time.time_since_epoch();
    std::time_t secs = std::chrono::system_clock::to_time_t(msg.time);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    auto micros = duration_cast<microseconds>(since_epoch).count() % 1000000;
    std::string line = absl::StrFormat(
        R"({"time":"%04d-%02d-%02dT%02d:%02d:%02d.%06dZ","level":"%s","logger":"%s","msg":"%s"})"
        "\n",
        tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, micros,
        absl::string_view(spdlog::level::to_string_view(msg.level).data(),
                          spdlog::level::to_string_view(msg.level).size()),
        JsonEscape(absl::string_view(msg.logger_name.data(), msg.logger_name.size())),
        JsonEscape(absl::string_view(msg.payload.data(), msg.payload.size())));
    dest.append(line.data(), line.data() + line.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

struct LogState {
  absl::Mutex mu;
  spdlog::sink_ptr sink ABSL_GUARDED_BY(mu) = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  spdlog::level::level_enum level ABSL_GUARDED_BY(mu) = spdlog::level::info;
};

LogState& State() {
  static auto* state = new LogState();  // never destroyed: loggers outlive main
  return *state;
}

}  // namespace

std::string JsonEscape(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          out += absl::StrFormat("\\u%04x", c);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out;
}

absl::Status SetupLogging(absl::string_view level, absl::string_view format) {
  auto parsed = spdlog::level::from_str(std::string(level));
  if (parsed == spdlog::level::off && level != "off") {
    return absl::InvalidArgumentError(absl::StrCat("log_level: unknown level \"", level, "\""));
  }
  auto& st = State();
  absl::MutexLock lock(&st.mu);
  if (format == "json") {
    st.sink->set_formatter(std::make_unique<JsonFormatter>());
  } else if (format == "text") {
    st.sink->set_formatter(std::make_unique<spdlog::pattern_formatter>(
        "%Y-%m-%dT%H:%M:%S.%fZ %^%-5l%$ [%n] %v", spdlog::pattern_time_type::utc));
  } else {
    return absl::InvalidArgumentError(absl::StrCat("log_format: unknown format \"", format, "\""));
  }
  st.level = parsed;
  spdlog::apply_all([&](const std::shared_ptr<spdlog::logger>& l) { l->set_level(parsed); });
  return absl::OkStatus();
}

std::shared_ptr<spdlog::logger> Log(const std::string& component) {
  auto& st = State();
  absl::MutexLock lock(&st.mu);
  if (auto existing = spdlog::get(component)) return existing;
  auto logger = std::make_shared<spdlog::logger>(component, st.sink);
  logger->set_level(st.level);
  logger->flush_on(spdlog::level::trace);
  spdlog::register_logger(logger);
  return logger;
}

}  // namespace podshim::agent
