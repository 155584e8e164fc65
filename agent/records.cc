#include "agent/records.h"

#include <initializer_list>
#include <string_view>
#include <utility>

#include <google/protobuf/util/json_util.h>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"

namespace podshim::agent {
namespace {

using Json = nlohmann::json;

// `object` printed, with each (key, JSON text) added as a member: the
// message texts go in as they are instead of being parsed into Json values
// only to be printed again.
std::string WithRawFields(const Json& object,
                          std::initializer_list<std::pair<const char*, std::string_view>> fields) {
  std::string out = object.dump();
  out.pop_back();  // the closing brace
  for (const auto& [key, text] : fields) {
    if (out.size() > 1) out.push_back(',');
    out += Json(key).dump();
    out.push_back(':');
    out += text;
  }
  out.push_back('}');
  return out;
}

std::string ConfigText(const std::shared_ptr<const std::string>& cached,
                       const google::protobuf::Message& config) {
  return cached != nullptr ? *cached : ProtoJsonText(config);
}

absl::Status ProtoFromJson(const Json& j, google::protobuf::Message* m, absl::string_view what) {
  auto status = google::protobuf::util::JsonStringToMessage(j.dump(), m);
  if (!status.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": ", std::string(status.message().data(), status.message().size())));
  }
  return absl::OkStatus();
}

template <typename T>
void Get(const Json& j, const char* key, T& out) {
  auto it = j.find(key);
  if (it != j.end() && !it->is_null()) out = it->get<T>();
}

absl::StatusOr<Json> Parse(const std::string& text, absl::string_view what) {
  Json j = Json::parse(text, nullptr, false);
  if (!j.is_object()) return absl::InvalidArgumentError(absl::StrCat(what, ": not a JSON object"));
  return j;
}

}  // namespace

std::string ProtoJsonText(const google::protobuf::Message& m) {
  std::string text;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  if (!google::protobuf::util::MessageToJsonString(m, &text, options).ok() || text.empty()) {
    return "{}";
  }
  return text;
}

std::string SandboxToJson(const SandboxRecord& r) {
  Json j;
  j["id"] = r.id;
  j["runtime_handler"] = r.runtime_handler;
  j["created_at_ns"] = r.created_at_ns;
  j["state"] = static_cast<int>(r.state);
  j["dir"] = r.dir;
  j["cgroup"] = r.cgroup;
  j["cgroup_owned"] = r.cgroup_owned;
  j["net_ns"] = r.net_ns;
  j["ipc_ns"] = r.ipc_ns;
  j["uts_ns"] = r.uts_ns;
  j["pid_ns"] = r.pid_ns;
  j["infra_pid"] = r.infra_pid;
  j["hosts_file"] = r.hosts_file;
  j["resolv_file"] = r.resolv_file;
  j["hostname_file"] = r.hostname_file;
  j["shm_dir"] = r.shm_dir;
  j["hostname"] = r.hostname;
  j["ip"] = r.ip;
  j["additional_ips"] = r.additional_ips;
  j["network_name"] = r.network_name;
  j["network_attached"] = r.network_attached;
  return WithRawFields(j, {{"config", ConfigText(r.config_json, r.config)}});
}

absl::StatusOr<SandboxRecord> SandboxFromJson(const std::string& text) {
  auto j = Parse(text, "pod record");
  if (!j.ok()) return j.status();
  SandboxRecord r;
  try {
    Get(*j, "id", r.id);
    Get(*j, "runtime_handler", r.runtime_handler);
    Get(*j, "created_at_ns", r.created_at_ns);
    int state = 1;
    Get(*j, "state", state);
    r.state = static_cast<cri::PodSandboxState>(state);
    Get(*j, "dir", r.dir);
    Get(*j, "cgroup", r.cgroup);
    Get(*j, "cgroup_owned", r.cgroup_owned);
    Get(*j, "net_ns", r.net_ns);
    Get(*j, "ipc_ns", r.ipc_ns);
    Get(*j, "uts_ns", r.uts_ns);
    Get(*j, "pid_ns", r.pid_ns);
    Get(*j, "infra_pid", r.infra_pid);
    Get(*j, "hosts_file", r.hosts_file);
    Get(*j, "resolv_file", r.resolv_file);
    Get(*j, "hostname_file", r.hostname_file);
    Get(*j, "shm_dir", r.shm_dir);
    Get(*j, "hostname", r.hostname);
    Get(*j, "ip", r.ip);
    Get(*j, "additional_ips", r.additional_ips);
    Get(*j, "network_name", r.network_name);
    Get(*j, "network_attached", r.network_attached);
  } catch (const Json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("pod record: ", e.what()));
  }
  if (r.id.empty()) return absl::InvalidArgumentError("pod record: id: missing");
  if (auto it = j->find("config"); it != j->end()) {
    if (auto s = ProtoFromJson(*it, &r.config, "pod record: config"); !s.ok()) return s;
  }
  return r;
}

namespace {

std::string ResourcesText(const ContainerRecord& r) {
  std::string bytes = r.resources.SerializeAsString();
  if (r.resources_json == nullptr || r.resources_json->first != bytes) {
    r.resources_json = std::make_shared<const std::pair<std::string, std::string>>(
        std::move(bytes), ProtoJsonText(r.resources));
  }
  return r.resources_json->second;
}

}  // namespace

std::string ContainerToJson(const ContainerRecord& r) {
  Json j;
  j["id"] = r.id;
  j["pod_id"] = r.pod_id;
  j["image_id"] = r.image_id;
  j["image_ref"] = r.image_ref;
  j["created_at_ns"] = r.created_at_ns;
  j["started_at_ns"] = r.started_at_ns;
  j["finished_at_ns"] = r.finished_at_ns;
  j["state"] = static_cast<int>(r.state);
  j["exit_code"] = r.exit_code;
  j["reason"] = r.reason;
  j["message"] = r.message;
  j["bundle"] = r.bundle;
  j["cgroup"] = r.cgroup;
  j["log_path"] = r.log_path;
  j["pid"] = r.pid;
  j["pid_start_time"] = r.pid_start_time;
  j["monitor_pid"] = r.monitor_pid;
  j["monitor_start_time"] = r.monitor_start_time;
  j["uid"] = r.uid;
  j["gid"] = r.gid;
  j["groups"] = r.groups;
  j["stop_signal"] = r.stop_signal;
  j["spec_json"] = r.spec_json;
  j["incomplete"] = r.incomplete;
  return WithRawFields(
      j, {{"config", ConfigText(r.config_json, r.config)}, {"resources", ResourcesText(r)}});
}

absl::StatusOr<ContainerRecord> ContainerFromJson(const std::string& text) {
  auto j = Parse(text, "container record");
  if (!j.ok()) return j.status();
  ContainerRecord r;
  try {
    Get(*j, "id", r.id);
    Get(*j, "pod_id", r.pod_id);
    Get(*j, "image_id", r.image_id);
    Get(*j, "image_ref", r.image_ref);
    Get(*j, "created_at_ns", r.created_at_ns);
    Get(*j, "started_at_ns", r.started_at_ns);
    Get(*j, "finished_at_ns", r.finished_at_ns);
    int state = 0;
    Get(*j, "state", state);
    r.state = static_cast<cri::ContainerState>(state);
    Get(*j, "exit_code", r.exit_code);
    Get(*j, "reason", r.reason);
    Get(*j, "message", r.message);
    Get(*j, "bundle", r.bundle);
    Get(*j, "cgroup", r.cgroup);
    Get(*j, "log_path", r.log_path);
    Get(*j, "pid", r.pid);
    Get(*j, "pid_start_time", r.pid_start_time);
    Get(*j, "monitor_pid", r.monitor_pid);
    Get(*j, "monitor_start_time", r.monitor_start_time);
    Get(*j, "uid", r.uid);
    Get(*j, "gid", r.gid);
    Get(*j, "groups", r.groups);
    Get(*j, "stop_signal", r.stop_signal);
    Get(*j, "spec_json", r.spec_json);
    Get(*j, "incomplete", r.incomplete);
  } catch (const Json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("container record: ", e.what()));
  }
  if (r.id.empty()) return absl::InvalidArgumentError("container record: id: missing");
  if (auto it = j->find("config"); it != j->end()) {
    if (auto s = ProtoFromJson(*it, &r.config, "container record: config"); !s.ok()) return s;
  }
  if (auto it = j->find("resources"); it != j->end()) {
    if (auto s = ProtoFromJson(*it, &r.resources, "container record: resources"); !s.ok()) {
      return s;
    }
  }
  return r;
}

}  // namespace podshim::agent
