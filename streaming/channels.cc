#include "streaming/channels.h"

#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace podshim::streaming {

std::optional<ChannelProtocol> NegotiateChannelProtocol(absl::string_view offered) {
  if (absl::StripAsciiWhitespace(offered).empty()) return ChannelProtocol{};
  for (absl::string_view name : absl::StrSplit(offered, ',')) {
    name = absl::StripAsciiWhitespace(name);
    if (name == "v5.channel.k8s.io") return ChannelProtocol{std::string(name), false, 5};
    if (name == "v4.channel.k8s.io") return ChannelProtocol{std::string(name), false, 4};
    if (name == "v4.base64.channel.k8s.io") return ChannelProtocol{std::string(name), true, 4};
    if (name == "channel.k8s.io") return ChannelProtocol{std::string(name), false, 1};
    if (name == "base64.channel.k8s.io") return ChannelProtocol{std::string(name), true, 1};
  }
  return std::nullopt;
}

std::string EncodeChannelMessage(const ChannelProtocol& protocol, uint8_t channel,
                                 absl::string_view data) {
  std::string message;
  if (protocol.base64) {
    message.push_back(static_cast<char>('0' + channel));
    message += absl::Base64Escape(data);
  } else {
    message.reserve(data.size() + 1);
    message.push_back(static_cast<char>(channel));
    message.append(data.data(), data.size());
  }
  return message;
}

absl::StatusOr<std::pair<uint8_t, std::string>> DecodeChannelMessage(
    const ChannelProtocol& protocol, absl::string_view message) {
  if (message.empty()) return absl::InvalidArgumentError("empty message: no channel byte");
  if (!protocol.base64) {
    return std::make_pair(static_cast<uint8_t>(message[0]), std::string(message.substr(1)));
  }
  const char digit = message[0];
  if (digit < '0' || digit > '9') {
    return absl::InvalidArgumentError(
        absl::StrCat("base64 message: channel must be a digit, not byte ",
                     static_cast<int>(static_cast<unsigned char>(digit))));
  }
  std::string data;
  if (!absl::Base64Unescape(message.substr(1), &data)) {
    return absl::InvalidArgumentError("base64 message: the payload is not base64");
  }
  return std::make_pair(static_cast<uint8_t>(digit - '0'), std::move(data));
}

std::string ExecOutcomeMessage(int version, int exit_code, const std::string* error) {
  if (version < 4) {
    if (error != nullptr) return *error;
    if (exit_code == 0) return "";
    return absl::StrCat("command terminated with non-zero exit code: exit status ", exit_code);
  }
  nlohmann::json status = {{"metadata", nlohmann::json::object()}};
  if (error != nullptr) {
    status["status"] = "Failure";
    status["message"] = *error;
    status["reason"] = "InternalError";
    status["code"] = 500;
    status["details"] = {{"causes", {{{"message", *error}}}}};
  } else if (exit_code == 0) {
    status["status"] = "Success";
  } else {
    status["status"] = "Failure";
    status["message"] =
        absl::StrCat("command terminated with non-zero exit code: exit status ", exit_code);
    status["reason"] = "NonZeroExitCode";
    status["details"] = {
        {"causes", {{{"reason", "ExitCode"}, {"message", absl::StrCat(exit_code)}}}}};
  }
  return status.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

absl::StatusOr<std::pair<uint16_t, uint16_t>> ParseResize(absl::string_view json) {
  auto j = nlohmann::json::parse(json, nullptr, false);
  auto field = [&](const char* name) -> std::optional<uint16_t> {
    if (!j.is_object() || !j.contains(name) || !j[name].is_number_unsigned()) return std::nullopt;
    uint64_t v = j[name].get<uint64_t>();
    if (v > 0xffff) return std::nullopt;
    return static_cast<uint16_t>(v);
  };
  auto width = field("Width");
  auto height = field("Height");
  if (!width || !height) {
    return absl::InvalidArgumentError(
        "resize: want {\"Width\":W,\"Height\":H} with W and H from 0 to 65535");
  }
  return std::make_pair(*width, *height);
}

}  // namespace podshim::streaming
