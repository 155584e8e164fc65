#include "agent/failpoint.h"

#include <signal.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace podshim::agent {
namespace {

// PODSHIM_DELAY_AT parsed once: the point's name and how long to sleep there.
// Null when unset or malformed (a malformed value is ignored, as an unknown
// point name is).
struct Delay {
  std::string name;
  absl::Duration duration;
};

const Delay* ParseDelay() {
  // NOLINTNEXTLINE(concurrency-mt-unsafe): podshimd never calls setenv
  const char* env = std::getenv("PODSHIM_DELAY_AT");
  if (env == nullptr) return nullptr;
  const char* eq = std::strrchr(env, '=');
  int64_t ms = 0;
  if (eq == nullptr || !absl::SimpleAtoi(eq + 1, &ms) || ms < 0) return nullptr;
  return new Delay{std::string(env, eq), absl::Milliseconds(ms)};
}

}  // namespace

void CrashPoint(const char* name) {
  // Read once: the environment does not change while podshimd runs.
  // NOLINTNEXTLINE(concurrency-mt-unsafe): podshimd never calls setenv
  static const char* const armed = std::getenv("PODSHIM_CRASH_AT");
  if (armed != nullptr && std::strcmp(armed, name) == 0) ::raise(SIGKILL);
}

void DelayPoint(const char* name) {
  static const Delay* const armed = ParseDelay();  // never freed: lives as long as podshimd
  if (armed != nullptr && armed->name == name) absl::SleepFor(armed->duration);
}

}  // namespace podshim::agent
