#include "cni/exec.h"

#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "runtime/spawn.h"

namespace podshim::cni {
namespace {

constexpr char kPath[] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

absl::Status PluginError(const std::string& name, const PluginCall& call, int code,
                         const std::string& msg, const std::string& details) {
  std::string text = absl::StrCat("CNI plugin ", name, " failed (", call.command, "): ");
  if (code != 0) absl::StrAppend(&text, "error code ", code, ": ");
  absl::StrAppend(&text, msg.empty() ? "no message" : msg);
  if (!details.empty()) absl::StrAppend(&text, " (", details, ")");
  if (code == 11) return absl::UnavailableError(text);
  if (code >= 1 && code <= 7) return absl::FailedPreconditionError(text);
  return absl::UnknownError(text);
}

std::string BaseName(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

absl::StatusOr<std::string> FindPlugin(const std::string& type,
                                       const std::vector<std::string>& dirs) {
  if (type.empty() || type.find('/') != std::string::npos || type == "." || type == "..") {
    return absl::InvalidArgumentError(
        absl::StrCat("CNI plugin type \"", type, "\" is not a plain file name"));
  }
  for (const auto& dir : dirs) {
    std::string path = absl::StrCat(dir, "/", type);
    if (::access(path.c_str(), X_OK) == 0) return path;
  }
  return absl::NotFoundError(
      absl::StrCat("CNI plugin \"", type, "\" not found in ",
                   dirs.empty() ? "(no directories)" : absl::StrJoin(dirs, ", ")));
}

std::vector<std::string> PluginEnvironment(const PluginCall& call) {
  std::vector<std::string> env = {
      absl::StrCat("CNI_COMMAND=", call.command),
      absl::StrCat("CNI_PATH=", absl::StrJoin(call.bin_dirs, ":")),
      kPath,
  };
  // VERSION and GC are about plugins and networks, not one attachment.
  if (call.command != "VERSION" && call.command != "GC") {
    env.push_back(absl::StrCat("CNI_CONTAINERID=", call.container_id));
    env.push_back(absl::StrCat("CNI_NETNS=", call.netns));
    env.push_back(absl::StrCat("CNI_IFNAME=", call.ifname));
    std::vector<std::string> args;
    for (const auto& [k, v] : call.args) args.push_back(absl::StrCat(k, "=", v));
    env.push_back(absl::StrCat("CNI_ARGS=", absl::StrJoin(args, ";")));
  }
  return env;
}

absl::StatusOr<nlohmann::json> ExecPlugin(const std::string& path, const PluginCall& call,
                                          const nlohmann::json& config) {
  const std::string name = BaseName(path);
  runtime::SpawnOptions opts;
  opts.argv = {path};
  opts.env = PluginEnvironment(call);
  opts.stdin_data = config.dump();
  opts.timeout = call.timeout;
  opts.output_limit = size_t{4} << 20;
  // Plugins may start helpers of their own; a timeout kills them all.
  opts.new_session = true;
  auto res = runtime::RunProcess(opts);
  if (!res.ok()) return res.status();
  if (res->timed_out) {
    return absl::DeadlineExceededError(absl::StrCat("CNI plugin ", name, " (", call.command,
                                                    ") did not finish within ",
                                                    absl::FormatDuration(call.timeout)));
  }
  std::string out(absl::StripAsciiWhitespace(res->out));
  std::string err(absl::StripAsciiWhitespace(res->err));
  if (res->exit_code != 0) {
    // The spec: an error object on stdout. Tolerate plugins that print only
    // to stderr or print nothing.
    nlohmann::json e = nlohmann::json::parse(out, nullptr, false);
    if (e.is_object() && e.contains("msg")) {
      int code = e.value("code", 0);
      std::string msg = e["msg"].is_string() ? e["msg"].get<std::string>() : e["msg"].dump();
      std::string details =
          e.contains("details") && e["details"].is_string() ? e["details"].get<std::string>() : "";
      return PluginError(name, call, code, msg, details);
    }
    std::string msg = !out.empty() ? out : err;
    if (res->term_signal != 0) {
      msg = absl::StrCat("killed by signal ", res->term_signal, msg.empty() ? "" : ": ", msg);
    } else {
      msg = absl::StrCat("exit code ", res->exit_code, msg.empty() ? "" : ": ", msg);
    }
    return PluginError(name, call, 0, msg, "");
  }
  if (out.empty()) return nlohmann::json::object();
  nlohmann::json j = nlohmann::json::parse(out, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::UnknownError(
        absl::StrCat("CNI plugin ", name, " (", call.command,
                     ") printed something that is not a JSON object: ", out.substr(0, 200)));
  }
  return j;
}

}  // namespace podshim::cni
