#include "kubelet/pod_spec.h"

#include <cstdint>
#include <exception>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "kubelet/quantity.h"
#include "kubelet/status_macros.h"

namespace podshim::kubelet {
namespace {

// What one document is being read with: where errors and warnings point.
struct Context {
  std::string prefix;  // "file: document N: "
  std::vector<std::string>* warnings;

  absl::Status Error(absl::string_view path, absl::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat(prefix, path, ": ", what));
  }
  void Warn(absl::string_view path, absl::string_view what) const {
    warnings->push_back(absl::StrCat(prefix, path, ": ", what));
  }
};

std::string Join(absl::string_view path, absl::string_view key) {
  return path.empty() ? std::string(key) : absl::StrCat(path, ".", key);
}

std::string Index(absl::string_view path, size_t i) { return absl::StrCat(path, "[", i, "]"); }

bool Present(const YAML::Node& n) { return n.IsDefined() && !n.IsNull(); }

absl::string_view TypeName(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Scalar:
      return "a scalar";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a map";
    default:
      return "null";
  }
}

// A map node whose keys are consumed one by one; Finish() warns about the
// keys nobody asked for.
class MapReader {
 public:
  MapReader(const YAML::Node& node, std::string path, const Context* ctx)
      : node_(node), path_(std::move(path)), ctx_(ctx) {}

  const std::string& path() const { return path_; }
  const Context& ctx() const { return *ctx_; }
  std::string PathOf(absl::string_view key) const { return Join(path_, key); }

  // The value at `key` (undefined when absent); marks the key as known.
  YAML::Node Get(const std::string& key) {
    used_.insert(key);
    const YAML::Node& node = node_;
    return node[key];
  }

  absl::Status String(const std::string& key, std::string* out, bool required = false) {
    YAML::Node n = Get(key);
    if (!Present(n)) {
      if (required) return ctx_->Error(PathOf(key), "required field is missing");
      return absl::OkStatus();
    }
    if (!n.IsScalar()) {
      return ctx_->Error(PathOf(key), absl::StrCat("must be a string, not ", TypeName(n)));
    }
    *out = n.Scalar();
    if (required && out->empty()) return ctx_->Error(PathOf(key), "must not be empty");
    return absl::OkStatus();
  }

  template <typename Int>
  absl::Status Integer(const std::string& key, absl::optional<Int>* out) {
    YAML::Node n = Get(key);
    if (!Present(n)) return absl::OkStatus();
    Int v{};
    if (!n.IsScalar() || !absl::SimpleAtoi(n.Scalar(), &v)) {
      return ctx_->Error(PathOf(key), absl::StrCat("must be an integer, not ",
                                                   n.IsScalar() ? Quote(n.Scalar()) : TypeName(n)));
    }
    *out = v;
    return absl::OkStatus();
  }

  template <typename Int>
  absl::Status Integer(const std::string& key, Int* out, Int min) {
    absl::optional<Int> v;
    KUBELET_RETURN_IF_ERROR(Integer(key, &v));
    if (!v) return absl::OkStatus();
    if (*v < min) return ctx_->Error(PathOf(key), absl::StrCat("must be at least ", min));
    *out = *v;
    return absl::OkStatus();
  }

  absl::Status Bool(const std::string& key, absl::optional<bool>* out) {
    YAML::Node n = Get(key);
    if (!Present(n)) return absl::OkStatus();
    if (n.IsScalar()) {
      std::string v = absl::AsciiStrToLower(n.Scalar());
      if (v == "true") {
        *out = true;
        return absl::OkStatus();
      }
      if (v == "false") {
        *out = false;
        return absl::OkStatus();
      }
    }
    return ctx_->Error(PathOf(key), absl::StrCat("must be true or false, not ",
                                                 n.IsScalar() ? Quote(n.Scalar()) : TypeName(n)));
  }

  absl::Status Bool(const std::string& key, bool* out) {
    absl::optional<bool> v;
    KUBELET_RETURN_IF_ERROR(Bool(key, &v));
    if (v) *out = *v;
    return absl::OkStatus();
  }

  absl::Status StringList(const std::string& key, std::vector<std::string>* out) {
    YAML::Node n = Get(key);
    if (!Present(n)) return absl::OkStatus();
    if (!n.IsSequence()) {
      return ctx_->Error(PathOf(key), absl::StrCat("must be a list of strings, not ", TypeName(n)));
    }
    for (size_t i = 0; i < n.size(); ++i) {
      if (!n[i].IsScalar()) {
        return ctx_->Error(Index(PathOf(key), i),
                           absl::StrCat("must be a string, not ", TypeName(n[i])));
      }
      out->push_back(n[i].Scalar());
    }
    return absl::OkStatus();
  }

  absl::Status StringMap(const std::string& key, std::map<std::string, std::string>* out) {
    YAML::Node n = Get(key);
    if (!Present(n)) return absl::OkStatus();
    if (!n.IsMap()) {
      return ctx_->Error(PathOf(key), absl::StrCat("must be a map of strings, not ", TypeName(n)));
    }
    for (auto it = n.begin(); it != n.end(); ++it) {
      std::string k = it->first.Scalar();
      if (!it->second.IsScalar()) {
        return ctx_->Error(Join(PathOf(key), k), "must be a string");
      }
      (*out)[k] = it->second.Scalar();
    }
    return absl::OkStatus();
  }

  // A nested map; `present` tells whether the key was there at all.
  absl::Status Map(const std::string& key, YAML::Node* out, bool* present) {
    YAML::Node n = Get(key);
    *present = Present(n);
    if (!*present) return absl::OkStatus();
    if (!n.IsMap())
      return ctx_->Error(PathOf(key), absl::StrCat("must be a map, not ", TypeName(n)));
    *out = n;
    return absl::OkStatus();
  }

  // A list of maps.
  absl::Status List(const std::string& key, std::vector<YAML::Node>* out) {
    YAML::Node n = Get(key);
    if (!Present(n)) return absl::OkStatus();
    if (!n.IsSequence()) {
      return ctx_->Error(PathOf(key), absl::StrCat("must be a list, not ", TypeName(n)));
    }
    for (size_t i = 0; i < n.size(); ++i) {
      if (!n[i].IsMap()) {
        return ctx_->Error(Index(PathOf(key), i),
                           absl::StrCat("must be a map, not ", TypeName(n[i])));
      }
      out->push_back(n[i]);
    }
    return absl::OkStatus();
  }

  void Finish() {
    for (auto it = node_.begin(); it != node_.end(); ++it) {
      std::string key = it->first.IsScalar() ? it->first.Scalar() : "?";
      if (!used_.count(key)) ctx_->Warn(PathOf(key), "unknown field, ignored");
    }
  }

  static std::string Quote(absl::string_view s) { return absl::StrCat("\"", s, "\""); }

 private:
  YAML::Node node_;
  std::string path_;
  const Context* ctx_;
  std::set<std::string> used_;
};

bool IsDns1123Label(absl::string_view s) {
  if (s.empty() || s.size() > 63) return false;
  for (char c : s) {
    if (!(absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '-')) return false;
  }
  return s.front() != '-' && s.back() != '-';
}

bool IsDns1123Subdomain(absl::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  for (absl::string_view part : absl::StrSplit(s, '.')) {
    if (!IsDns1123Label(part)) return false;
  }
  return true;
}

// IntOrString port: a number 1..65535 or a port name.
absl::Status ReadPort(MapReader& m, Probe* probe) {
  YAML::Node n = m.Get("port");
  if (!Present(n)) return m.ctx().Error(m.PathOf("port"), "required field is missing");
  if (!n.IsScalar()) return m.ctx().Error(m.PathOf("port"), "must be a number or a port name");
  int32_t number = 0;
  if (absl::SimpleAtoi(n.Scalar(), &number)) {
    if (number < 1 || number > 65535) {
      return m.ctx().Error(m.PathOf("port"), "must be between 1 and 65535");
    }
    probe->port = number;
  } else {
    if (n.Scalar().empty() || n.Scalar().size() > 15) {
      return m.ctx().Error(m.PathOf("port"), "must be a number or a port name");
    }
    probe->port_name = n.Scalar();
  }
  return absl::OkStatus();
}

absl::Status ReadProbe(const YAML::Node& node, const std::string& path, const Context& ctx,
                       Probe* probe) {
  MapReader m(node, path, &ctx);
  int handlers = 0;
  YAML::Node sub;
  bool present = false;
  KUBELET_RETURN_IF_ERROR(m.Map("exec", &sub, &present));
  if (present) {
    ++handlers;
    probe->type = ProbeType::kExec;
    MapReader e(sub, m.PathOf("exec"), &ctx);
    KUBELET_RETURN_IF_ERROR(e.StringList("command", &probe->command));
    if (probe->command.empty()) return ctx.Error(e.PathOf("command"), "must not be empty");
    e.Finish();
  }
  KUBELET_RETURN_IF_ERROR(m.Map("httpGet", &sub, &present));
  if (present) {
    ++handlers;
    probe->type = ProbeType::kHttpGet;
    MapReader h(sub, m.PathOf("httpGet"), &ctx);
    KUBELET_RETURN_IF_ERROR(h.String("host", &probe->host));
    KUBELET_RETURN_IF_ERROR(h.String("path", &probe->path));
    if (probe->path.empty()) probe->path = "/";
    if (probe->path.front() != '/') probe->path = "/" + probe->path;
    KUBELET_RETURN_IF_ERROR(ReadPort(h, probe));
    std::string scheme = "HTTP";
    KUBELET_RETURN_IF_ERROR(h.String("scheme", &scheme));
    if (scheme != "HTTP") {
      return ctx.Error(h.PathOf("scheme"),
                       absl::StrCat("unsupported value \"", scheme, "\" (only HTTP)"));
    }
    std::vector<YAML::Node> headers;
    KUBELET_RETURN_IF_ERROR(h.List("httpHeaders", &headers));
    for (size_t i = 0; i < headers.size(); ++i) {
      MapReader hd(headers[i], Index(h.PathOf("httpHeaders"), i), &ctx);
      std::string name, value;
      KUBELET_RETURN_IF_ERROR(hd.String("name", &name, /*required=*/true));
      KUBELET_RETURN_IF_ERROR(hd.String("value", &value));
      if (absl::StrContains(name, '\n') || absl::StrContains(value, '\n') ||
          absl::StrContains(name, '\r') || absl::StrContains(value, '\r') ||
          absl::StrContains(name, ':')) {
        return ctx.Error(hd.path(), "header name or value holds a line break or colon");
      }
      probe->http_headers.emplace_back(name, value);
      hd.Finish();
    }
    h.Finish();
  }
  KUBELET_RETURN_IF_ERROR(m.Map("tcpSocket", &sub, &present));
  if (present) {
    ++handlers;
    probe->type = ProbeType::kTcpSocket;
    MapReader t(sub, m.PathOf("tcpSocket"), &ctx);
    KUBELET_RETURN_IF_ERROR(t.String("host", &probe->host));
    KUBELET_RETURN_IF_ERROR(ReadPort(t, probe));
    t.Finish();
  }
  if (handlers != 1) {
    return ctx.Error(path, "must have exactly one of exec, httpGet and tcpSocket");
  }
  KUBELET_RETURN_IF_ERROR(m.Integer("initialDelaySeconds", &probe->initial_delay_seconds, 0));
  KUBELET_RETURN_IF_ERROR(m.Integer("periodSeconds", &probe->period_seconds, 1));
  KUBELET_RETURN_IF_ERROR(m.Integer("timeoutSeconds", &probe->timeout_seconds, 1));
  KUBELET_RETURN_IF_ERROR(m.Integer("successThreshold", &probe->success_threshold, 1));
  KUBELET_RETURN_IF_ERROR(m.Integer("failureThreshold", &probe->failure_threshold, 1));
  m.Finish();
  return absl::OkStatus();
}

absl::Status ReadSeccomp(MapReader& parent, SeccompProfile* out) {
  YAML::Node n;
  bool present = false;
  KUBELET_RETURN_IF_ERROR(parent.Map("seccompProfile", &n, &present));
  if (!present) return absl::OkStatus();
  MapReader m(n, parent.PathOf("seccompProfile"), &parent.ctx());
  std::string type;
  KUBELET_RETURN_IF_ERROR(m.String("type", &type, /*required=*/true));
  if (type == "RuntimeDefault") {
    out->type = SeccompType::kRuntimeDefault;
  } else if (type == "Unconfined") {
    out->type = SeccompType::kUnconfined;
  } else if (type == "Localhost") {
    out->type = SeccompType::kLocalhost;
  } else {
    return parent.ctx().Error(
        m.PathOf("type"),
        absl::StrCat("must be RuntimeDefault, Unconfined or Localhost, not \"", type, "\""));
  }
  KUBELET_RETURN_IF_ERROR(m.String("localhostProfile", &out->localhost_profile));
  if (out->type == SeccompType::kLocalhost && out->localhost_profile.empty()) {
    return parent.ctx().Error(m.PathOf("localhostProfile"), "required when type is Localhost");
  }
  if (out->type != SeccompType::kLocalhost && !out->localhost_profile.empty()) {
    return parent.ctx().Error(m.PathOf("localhostProfile"), "only allowed when type is Localhost");
  }
  m.Finish();
  return absl::OkStatus();
}

absl::Status ReadSecurityContext(const YAML::Node& node, const std::string& path,
                                 const Context& ctx, SecurityContext* sc) {
  MapReader m(node, path, &ctx);
  KUBELET_RETURN_IF_ERROR(m.Integer("runAsUser", &sc->run_as_user));
  KUBELET_RETURN_IF_ERROR(m.Integer("runAsGroup", &sc->run_as_group));
  if (sc->run_as_user && *sc->run_as_user < 0) return ctx.Error(m.PathOf("runAsUser"), "negative");
  if (sc->run_as_group && *sc->run_as_group < 0) {
    return ctx.Error(m.PathOf("runAsGroup"), "negative");
  }
  KUBELET_RETURN_IF_ERROR(m.Bool("runAsNonRoot", &sc->run_as_non_root));
  KUBELET_RETURN_IF_ERROR(m.Bool("privileged", &sc->privileged));
  KUBELET_RETURN_IF_ERROR(m.Bool("readOnlyRootFilesystem", &sc->read_only_root_filesystem));
  KUBELET_RETURN_IF_ERROR(m.Bool("allowPrivilegeEscalation", &sc->allow_privilege_escalation));
  if (sc->privileged.value_or(false) && sc->allow_privilege_escalation.has_value() &&
      !*sc->allow_privilege_escalation) {
    return ctx.Error(m.PathOf("allowPrivilegeEscalation"),
                     "cannot be false when privileged is true");
  }
  YAML::Node caps;
  bool present = false;
  KUBELET_RETURN_IF_ERROR(m.Map("capabilities", &caps, &present));
  if (present) {
    MapReader c(caps, m.PathOf("capabilities"), &ctx);
    KUBELET_RETURN_IF_ERROR(c.StringList("add", &sc->capabilities_add));
    KUBELET_RETURN_IF_ERROR(c.StringList("drop", &sc->capabilities_drop));
    c.Finish();
  }
  KUBELET_RETURN_IF_ERROR(ReadSeccomp(m, &sc->seccomp));
  m.Finish();
  return absl::OkStatus();
}

absl::Status ReadPodSecurityContext(const YAML::Node& node, const std::string& path,
                                    const Context& ctx, PodSecurityContext* sc) {
  MapReader m(node, path, &ctx);
  KUBELET_RETURN_IF_ERROR(m.Integer("runAsUser", &sc->run_as_user));
  KUBELET_RETURN_IF_ERROR(m.Integer("runAsGroup", &sc->run_as_group));
  if (sc->run_as_user && *sc->run_as_user < 0) return ctx.Error(m.PathOf("runAsUser"), "negative");
  if (sc->run_as_group && *sc->run_as_group < 0) {
    return ctx.Error(m.PathOf("runAsGroup"), "negative");
  }
  KUBELET_RETURN_IF_ERROR(m.Bool("runAsNonRoot", &sc->run_as_non_root));
  YAML::Node groups = m.Get("supplementalGroups");
  if (Present(groups)) {
    if (!groups.IsSequence()) return ctx.Error(m.PathOf("supplementalGroups"), "must be a list");
    for (size_t i = 0; i < groups.size(); ++i) {
      int64_t g = 0;
      if (!groups[i].IsScalar() || !absl::SimpleAtoi(groups[i].Scalar(), &g) || g < 0) {
        return ctx.Error(Index(m.PathOf("supplementalGroups"), i), "must be a group id");
      }
      sc->supplemental_groups.push_back(g);
    }
  }
  std::vector<YAML::Node> sysctls;
  KUBELET_RETURN_IF_ERROR(m.List("sysctls", &sysctls));
  for (size_t i = 0; i < sysctls.size(); ++i) {
    MapReader s(sysctls[i], Index(m.PathOf("sysctls"), i), &ctx);
    std::string name, value;
    KUBELET_RETURN_IF_ERROR(s.String("name", &name, /*required=*/true));
    KUBELET_RETURN_IF_ERROR(s.String("value", &value));
    sc->sysctls[name] = value;
    s.Finish();
  }
  KUBELET_RETURN_IF_ERROR(ReadSeccomp(m, &sc->seccomp));
  m.Finish();
  return absl::OkStatus();
}

absl::Status ReadResources(const YAML::Node& node, const std::string& path, const Context& ctx,
                           Resources* r) {
  MapReader m(node, path, &ctx);
  for (const char* which : {"requests", "limits"}) {
    YAML::Node list;
    bool present = false;
    KUBELET_RETURN_IF_ERROR(m.Map(which, &list, &present));
    if (!present) continue;
    bool requests = std::string(which) == "requests";
    for (auto it = list.begin(); it != list.end(); ++it) {
      std::string name = it->first.Scalar();
      std::string field = Join(m.PathOf(which), name);
      if (!it->second.IsScalar()) return ctx.Error(field, "must be a quantity");
      const std::string& q = it->second.Scalar();
      if (name == "cpu") {
        auto v = ParseCpuMillis(q);
        if (!v.ok()) return ctx.Error(field, absl::StrCat("invalid quantity \"", q, "\""));
        (requests ? r->cpu_request_milli : r->cpu_limit_milli) = *v;
      } else if (name == "memory") {
        auto v = ParseBytes(q);
        if (!v.ok()) return ctx.Error(field, absl::StrCat("invalid quantity \"", q, "\""));
        (requests ? r->memory_request_bytes : r->memory_limit_bytes) = *v;
      } else {
        ctx.Warn(field, "resource not supported, ignored");
      }
    }
  }
  m.Finish();
  // The API server defaults a missing request to the limit.
  if (r->cpu_request_milli == 0) r->cpu_request_milli = r->cpu_limit_milli;
  if (r->memory_request_bytes == 0) r->memory_request_bytes = r->memory_limit_bytes;
  if (r->cpu_limit_milli != 0 && r->cpu_request_milli > r->cpu_limit_milli) {
    return ctx.Error(Join(m.PathOf("requests"), "cpu"), "must be less than or equal to the limit");
  }
  if (r->memory_limit_bytes != 0 && r->memory_request_bytes > r->memory_limit_bytes) {
    return ctx.Error(Join(m.PathOf("requests"), "memory"),
                     "must be less than or equal to the limit");
  }
  return absl::OkStatus();
}

absl::Status ReadContainer(const YAML::Node& node, const std::string& path, const Context& ctx,
                           bool init, Container* c) {
  MapReader m(node, path, &ctx);
  KUBELET_RETURN_IF_ERROR(m.String("name", &c->name, /*required=*/true));
  if (!IsDns1123Label(c->name)) {
    return ctx.Error(m.PathOf("name"),
                     absl::StrCat("\"", c->name,
                                  "\" is not a DNS-1123 label (lower case letters, digits and "
                                  "'-', at most 63)"));
  }
  KUBELET_RETURN_IF_ERROR(m.String("image", &c->image, /*required=*/true));
  if (absl::StrContains(c->image, ' ')) {
    return ctx.Error(m.PathOf("image"), "must not contain spaces");
  }
  std::string policy;
  KUBELET_RETURN_IF_ERROR(m.String("imagePullPolicy", &policy));
  if (policy.empty()) {
    c->pull_policy = DefaultPullPolicy(c->image);
  } else if (policy == "Always") {
    c->pull_policy = PullPolicy::kAlways;
  } else if (policy == "IfNotPresent") {
    c->pull_policy = PullPolicy::kIfNotPresent;
  } else if (policy == "Never") {
    c->pull_policy = PullPolicy::kNever;
  } else {
    return ctx.Error(m.PathOf("imagePullPolicy"),
                     absl::StrCat("must be Always, IfNotPresent or Never, not \"", policy, "\""));
  }
  KUBELET_RETURN_IF_ERROR(m.StringList("command", &c->command));
  KUBELET_RETURN_IF_ERROR(m.StringList("args", &c->args));
  KUBELET_RETURN_IF_ERROR(m.String("workingDir", &c->working_dir));
  if (!c->working_dir.empty() && c->working_dir.front() != '/') {
    return ctx.Error(m.PathOf("workingDir"), "must be an absolute path");
  }

  std::vector<YAML::Node> list;
  KUBELET_RETURN_IF_ERROR(m.List("env", &list));
  for (size_t i = 0; i < list.size(); ++i) {
    MapReader e(list[i], Index(m.PathOf("env"), i), &ctx);
    EnvVar var;
    KUBELET_RETURN_IF_ERROR(e.String("name", &var.name, /*required=*/true));
    if (absl::StrContains(var.name, '=')) return ctx.Error(e.PathOf("name"), "must not hold '='");
    KUBELET_RETURN_IF_ERROR(e.String("value", &var.value));
    c->env.push_back(std::move(var));
    e.Finish();
  }

  list.clear();
  KUBELET_RETURN_IF_ERROR(m.List("ports", &list));
  for (size_t i = 0; i < list.size(); ++i) {
    MapReader p(list[i], Index(m.PathOf("ports"), i), &ctx);
    ContainerPort port;
    KUBELET_RETURN_IF_ERROR(p.String("name", &port.name));
    absl::optional<int32_t> v;
    KUBELET_RETURN_IF_ERROR(p.Integer("containerPort", &v));
    if (!v) return ctx.Error(p.PathOf("containerPort"), "required field is missing");
    if (*v < 1 || *v > 65535) {
      return ctx.Error(p.PathOf("containerPort"), "must be between 1 and 65535");
    }
    port.container_port = *v;
    v.reset();
    KUBELET_RETURN_IF_ERROR(p.Integer("hostPort", &v));
    if (v && (*v < 0 || *v > 65535)) {
      return ctx.Error(p.PathOf("hostPort"), "must be between 0 and 65535");
    }
    port.host_port = v.value_or(0);
    std::string proto = "TCP";
    KUBELET_RETURN_IF_ERROR(p.String("protocol", &proto));
    if (proto == "TCP") {
      port.protocol = PortProtocol::kTcp;
    } else if (proto == "UDP") {
      port.protocol = PortProtocol::kUdp;
    } else if (proto == "SCTP") {
      port.protocol = PortProtocol::kSctp;
    } else {
      return ctx.Error(p.PathOf("protocol"),
                       absl::StrCat("must be TCP, UDP or SCTP, not \"", proto, "\""));
    }
    KUBELET_RETURN_IF_ERROR(p.String("hostIP", &port.host_ip));
    c->ports.push_back(std::move(port));
    p.Finish();
  }

  YAML::Node sub;
  bool present = false;
  KUBELET_RETURN_IF_ERROR(m.Map("resources", &sub, &present));
  if (present)
    KUBELET_RETURN_IF_ERROR(ReadResources(sub, m.PathOf("resources"), ctx, &c->resources));
  KUBELET_RETURN_IF_ERROR(m.Map("securityContext", &sub, &present));
  if (present) {
    KUBELET_RETURN_IF_ERROR(
        ReadSecurityContext(sub, m.PathOf("securityContext"), ctx, &c->security_context));
  }

  list.clear();
  KUBELET_RETURN_IF_ERROR(m.List("volumeMounts", &list));
  for (size_t i = 0; i < list.size(); ++i) {
    MapReader v(list[i], Index(m.PathOf("volumeMounts"), i), &ctx);
    VolumeMount vm;
    KUBELET_RETURN_IF_ERROR(v.String("name", &vm.name, /*required=*/true));
    KUBELET_RETURN_IF_ERROR(v.String("mountPath", &vm.mount_path, /*required=*/true));
    if (vm.mount_path.front() != '/') {
      return ctx.Error(v.PathOf("mountPath"), "must be an absolute path");
    }
    KUBELET_RETURN_IF_ERROR(v.String("subPath", &vm.sub_path));
    if (!vm.sub_path.empty()) {
      if (vm.sub_path.front() == '/') {
        return ctx.Error(v.PathOf("subPath"), "must be a relative path");
      }
      for (absl::string_view part : absl::StrSplit(vm.sub_path, '/')) {
        if (part == "..") return ctx.Error(v.PathOf("subPath"), "must not contain '..'");
      }
    }
    KUBELET_RETURN_IF_ERROR(v.Bool("readOnly", &vm.read_only));
    c->volume_mounts.push_back(std::move(vm));
    v.Finish();
  }

  struct ProbeField {
    const char* key;
    absl::optional<Probe>* out;
  };
  for (const ProbeField& f : {ProbeField{"livenessProbe", &c->liveness_probe},
                              ProbeField{"readinessProbe", &c->readiness_probe},
                              ProbeField{"startupProbe", &c->startup_probe}}) {
    KUBELET_RETURN_IF_ERROR(m.Map(f.key, &sub, &present));
    if (!present) continue;
    if (init) return ctx.Error(m.PathOf(f.key), "not allowed in init containers");
    Probe probe;
    KUBELET_RETURN_IF_ERROR(ReadProbe(sub, m.PathOf(f.key), ctx, &probe));
    if (std::string(f.key) != "readinessProbe" && probe.success_threshold != 1) {
      return ctx.Error(Join(m.PathOf(f.key), "successThreshold"), "must be 1");
    }
    if (!probe.port_name.empty()) {
      bool found = false;
      for (const ContainerPort& p : c->ports) found = found || p.name == probe.port_name;
      if (!found) {
        return ctx.Error(Join(m.PathOf(f.key), "port"),
                         absl::StrCat("no container port named \"", probe.port_name, "\""));
      }
    }
    *f.out = std::move(probe);
  }
  KUBELET_RETURN_IF_ERROR(m.Bool("tty", &c->tty));
  KUBELET_RETURN_IF_ERROR(m.Bool("stdin", &c->stdin));
  m.Finish();
  return absl::OkStatus();
}

absl::Status ReadVolume(const YAML::Node& node, const std::string& path, const Context& ctx,
                        Volume* v) {
  MapReader m(node, path, &ctx);
  KUBELET_RETURN_IF_ERROR(m.String("name", &v->name, /*required=*/true));
  if (!IsDns1123Label(v->name)) {
    return ctx.Error(m.PathOf("name"), absl::StrCat("\"", v->name, "\" is not a DNS-1123 label"));
  }
  int sources = 0;
  YAML::Node sub;
  bool present = false;
  KUBELET_RETURN_IF_ERROR(m.Map("hostPath", &sub, &present));
  if (present) {
    ++sources;
    v->type = VolumeType::kHostPath;
    MapReader h(sub, m.PathOf("hostPath"), &ctx);
    KUBELET_RETURN_IF_ERROR(h.String("path", &v->host_path, /*required=*/true));
    if (v->host_path.front() != '/') return ctx.Error(h.PathOf("path"), "must be absolute");
    KUBELET_RETURN_IF_ERROR(h.String("type", &v->host_path_type));
    static const std::set<std::string> kTypes = {
        "",       "DirectoryOrCreate", "Directory",  "FileOrCreate", "File",
        "Socket", "CharDevice",        "BlockDevice"};
    if (!kTypes.count(v->host_path_type)) {
      return ctx.Error(h.PathOf("type"),
                       absl::StrCat("unsupported value \"", v->host_path_type, "\""));
    }
    h.Finish();
  }
  // `emptyDir: {}` is a map; `emptyDir:` alone is null and means the same.
  YAML::Node empty = m.Get("emptyDir");
  if (empty.IsDefined()) {
    ++sources;
    v->type = VolumeType::kEmptyDir;
    if (empty.IsMap()) {
      MapReader e(empty, m.PathOf("emptyDir"), &ctx);
      KUBELET_RETURN_IF_ERROR(e.String("medium", &v->medium));
      if (!v->medium.empty() && v->medium != "Memory") {
        return ctx.Error(e.PathOf("medium"),
                         absl::StrCat("must be \"\" or Memory, not \"", v->medium, "\""));
      }
      std::string size;
      KUBELET_RETURN_IF_ERROR(e.String("sizeLimit", &size));
      if (!size.empty()) {
        auto bytes = ParseBytes(size);
        if (!bytes.ok()) {
          return ctx.Error(e.PathOf("sizeLimit"), absl::StrCat("invalid quantity \"", size, "\""));
        }
        v->size_limit_bytes = *bytes;
      }
      e.Finish();
    } else if (!empty.IsNull()) {
      return ctx.Error(m.PathOf("emptyDir"), "must be a map");
    }
  }
  // Every other source kind is known to Kubernetes but not supported here:
  // a pod that needs it cannot run correctly, so that is an error.
  for (auto it = node.begin(); it != node.end(); ++it) {
    std::string key = it->first.Scalar();
    if (key != "name" && key != "hostPath" && key != "emptyDir") {
      return ctx.Error(m.PathOf(key), "volume source not supported (only hostPath and emptyDir)");
    }
  }
  if (sources != 1) return ctx.Error(path, "must have exactly one of hostPath and emptyDir");
  m.Finish();
  return absl::OkStatus();
}

absl::Status ReadSpec(const YAML::Node& node, const Context& ctx, Pod* pod) {
  MapReader m(node, "spec", &ctx);
  std::vector<YAML::Node> list;
  KUBELET_RETURN_IF_ERROR(m.List("initContainers", &list));
  for (size_t i = 0; i < list.size(); ++i) {
    Container c;
    KUBELET_RETURN_IF_ERROR(
        ReadContainer(list[i], Index(m.PathOf("initContainers"), i), ctx, /*init=*/true, &c));
    pod->init_containers.push_back(std::move(c));
  }
  list.clear();
  KUBELET_RETURN_IF_ERROR(m.List("containers", &list));
  if (list.empty()) return ctx.Error(m.PathOf("containers"), "at least one container is required");
  for (size_t i = 0; i < list.size(); ++i) {
    Container c;
    KUBELET_RETURN_IF_ERROR(
        ReadContainer(list[i], Index(m.PathOf("containers"), i), ctx, /*init=*/false, &c));
    pod->containers.push_back(std::move(c));
  }
  list.clear();
  KUBELET_RETURN_IF_ERROR(m.List("volumes", &list));
  std::set<std::string> volume_names;
  for (size_t i = 0; i < list.size(); ++i) {
    Volume v;
    KUBELET_RETURN_IF_ERROR(ReadVolume(list[i], Index(m.PathOf("volumes"), i), ctx, &v));
    if (!volume_names.insert(v.name).second) {
      return ctx.Error(Join(Index(m.PathOf("volumes"), i), "name"),
                       absl::StrCat("duplicate volume \"", v.name, "\""));
    }
    pod->volumes.push_back(std::move(v));
  }

  std::string policy;
  KUBELET_RETURN_IF_ERROR(m.String("restartPolicy", &policy));
  if (policy.empty() || policy == "Always") {
    pod->restart_policy = RestartPolicy::kAlways;
  } else if (policy == "OnFailure") {
    pod->restart_policy = RestartPolicy::kOnFailure;
  } else if (policy == "Never") {
    pod->restart_policy = RestartPolicy::kNever;
  } else {
    return ctx.Error(m.PathOf("restartPolicy"),
                     absl::StrCat("must be Always, OnFailure or Never, not \"", policy, "\""));
  }
  KUBELET_RETURN_IF_ERROR(m.Integer("terminationGracePeriodSeconds",
                                    &pod->termination_grace_period_seconds, int64_t{0}));
  KUBELET_RETURN_IF_ERROR(m.Bool("hostNetwork", &pod->host_network));
  KUBELET_RETURN_IF_ERROR(m.Bool("hostPID", &pod->host_pid));
  KUBELET_RETURN_IF_ERROR(m.Bool("hostIPC", &pod->host_ipc));
  KUBELET_RETURN_IF_ERROR(m.Bool("shareProcessNamespace", &pod->share_process_namespace));
  if (pod->host_pid && pod->share_process_namespace) {
    return ctx.Error(m.PathOf("shareProcessNamespace"), "cannot be true when hostPID is true");
  }
  KUBELET_RETURN_IF_ERROR(m.String("hostname", &pod->hostname));
  if (!pod->hostname.empty() && !IsDns1123Label(pod->hostname)) {
    return ctx.Error(m.PathOf("hostname"), "must be a DNS-1123 label");
  }
  KUBELET_RETURN_IF_ERROR(m.String("dnsPolicy", &pod->dns_policy));
  if (pod->dns_policy.empty()) pod->dns_policy = "ClusterFirst";
  static const std::set<std::string> kDnsPolicies = {"ClusterFirst", "ClusterFirstWithHostNet",
                                                     "Default", "None"};
  if (!kDnsPolicies.count(pod->dns_policy)) {
    return ctx.Error(m.PathOf("dnsPolicy"),
                     absl::StrCat("unsupported value \"", pod->dns_policy, "\""));
  }
  YAML::Node sub;
  bool present = false;
  KUBELET_RETURN_IF_ERROR(m.Map("dnsConfig", &sub, &present));
  if (present) {
    MapReader d(sub, m.PathOf("dnsConfig"), &ctx);
    DnsConfig dns;
    KUBELET_RETURN_IF_ERROR(d.StringList("nameservers", &dns.nameservers));
    KUBELET_RETURN_IF_ERROR(d.StringList("searches", &dns.searches));
    std::vector<YAML::Node> options;
    KUBELET_RETURN_IF_ERROR(d.List("options", &options));
    for (size_t i = 0; i < options.size(); ++i) {
      MapReader o(options[i], Index(d.PathOf("options"), i), &ctx);
      std::string name, value;
      KUBELET_RETURN_IF_ERROR(o.String("name", &name, /*required=*/true));
      KUBELET_RETURN_IF_ERROR(o.String("value", &value));
      dns.options.push_back(value.empty() ? name : absl::StrCat(name, ":", value));
      o.Finish();
    }
    d.Finish();
    pod->dns_config = std::move(dns);
  }
  if (pod->dns_policy == "None" && (!pod->dns_config || pod->dns_config->nameservers.empty())) {
    return ctx.Error(m.PathOf("dnsConfig.nameservers"), "required when dnsPolicy is None");
  }
  KUBELET_RETURN_IF_ERROR(m.Map("securityContext", &sub, &present));
  if (present) {
    KUBELET_RETURN_IF_ERROR(
        ReadPodSecurityContext(sub, m.PathOf("securityContext"), ctx, &pod->security_context));
  }
  m.Finish();

  // Cross-field checks.
  std::set<std::string> names;
  std::set<std::pair<int32_t, PortProtocol>> host_ports;
  auto check = [&](const std::vector<Container>& containers,
                   absl::string_view field) -> absl::Status {
    for (size_t i = 0; i < containers.size(); ++i) {
      const Container& c = containers[i];
      std::string path = Index(Join("spec", field), i);
      if (!names.insert(c.name).second) {
        return ctx.Error(Join(path, "name"), absl::StrCat("duplicate container \"", c.name, "\""));
      }
      for (size_t j = 0; j < c.volume_mounts.size(); ++j) {
        if (!volume_names.count(c.volume_mounts[j].name)) {
          return ctx.Error(Join(Index(Join(path, "volumeMounts"), j), "name"),
                           absl::StrCat("no volume named \"", c.volume_mounts[j].name, "\""));
        }
      }
      for (size_t j = 0; j < c.ports.size(); ++j) {
        const ContainerPort& p = c.ports[j];
        std::string port_path = Index(Join(path, "ports"), j);
        if (pod->host_network && p.host_port != 0 && p.host_port != p.container_port) {
          return ctx.Error(Join(port_path, "hostPort"),
                           "must equal containerPort when hostNetwork is true");
        }
        if (p.host_port != 0 && !host_ports.insert({p.host_port, p.protocol}).second) {
          return ctx.Error(Join(port_path, "hostPort"),
                           absl::StrCat("host port ", p.host_port, " is used twice"));
        }
      }
    }
    return absl::OkStatus();
  };
  KUBELET_RETURN_IF_ERROR(check(pod->init_containers, "initContainers"));
  KUBELET_RETURN_IF_ERROR(check(pod->containers, "containers"));
  return absl::OkStatus();
}

std::string UidFromHash(absl::string_view data) {
  std::string a = Fnv64Hex(data);
  std::string b = Fnv64Hex(data, 0x84222325cbf29ce4ULL);
  std::string hex = a + b;
  return absl::StrCat(hex.substr(0, 8), "-", hex.substr(8, 4), "-", hex.substr(12, 4), "-",
                      hex.substr(16, 4), "-", hex.substr(20, 12));
}

absl::Status ReadPod(const YAML::Node& doc, const Context& ctx, Pod* pod) {
  if (!doc.IsMap())
    return ctx.Error("(document)", absl::StrCat("must be a map, not ", TypeName(doc)));
  MapReader m(doc, "", &ctx);
  std::string api_version, kind;
  KUBELET_RETURN_IF_ERROR(m.String("apiVersion", &api_version, /*required=*/true));
  if (api_version != "v1") {
    return ctx.Error("apiVersion", absl::StrCat("must be v1, not \"", api_version, "\""));
  }
  KUBELET_RETURN_IF_ERROR(m.String("kind", &kind, /*required=*/true));
  if (kind != "Pod") return ctx.Error("kind", absl::StrCat("must be Pod, not \"", kind, "\""));

  YAML::Node meta;
  bool present = false;
  KUBELET_RETURN_IF_ERROR(m.Map("metadata", &meta, &present));
  if (!present) return ctx.Error("metadata", "required field is missing");
  MapReader md(meta, "metadata", &ctx);
  KUBELET_RETURN_IF_ERROR(md.String("name", &pod->name, /*required=*/true));
  if (!IsDns1123Subdomain(pod->name)) {
    return ctx.Error("metadata.name",
                     absl::StrCat("\"", pod->name,
                                  "\" is not a DNS-1123 subdomain (lower case letters, digits, "
                                  "'-' and '.')"));
  }
  KUBELET_RETURN_IF_ERROR(md.String("namespace", &pod->namespace_name));
  if (pod->namespace_name.empty()) pod->namespace_name = "default";
  if (!IsDns1123Label(pod->namespace_name)) {
    return ctx.Error("metadata.namespace",
                     absl::StrCat("\"", pod->namespace_name, "\" is not a DNS-1123 label"));
  }
  KUBELET_RETURN_IF_ERROR(md.String("uid", &pod->uid));
  for (char c : pod->uid) {
    if (!(absl::ascii_isalnum(c) || c == '-')) {
      return ctx.Error("metadata.uid", "may hold only letters, digits and '-'");
    }
  }
  KUBELET_RETURN_IF_ERROR(md.StringMap("labels", &pod->labels));
  KUBELET_RETURN_IF_ERROR(md.StringMap("annotations", &pod->annotations));
  md.Finish();

  YAML::Node spec;
  KUBELET_RETURN_IF_ERROR(m.Map("spec", &spec, &present));
  if (!present) return ctx.Error("spec", "required field is missing");
  KUBELET_RETURN_IF_ERROR(ReadSpec(spec, ctx, pod));
  m.Finish();
  return absl::OkStatus();
}

}  // namespace

std::string Fnv64Hex(absl::string_view data, uint64_t seed) {
  uint64_t h = seed;
  for (unsigned char c : data) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return absl::StrFormat("%016x", h);
}

PullPolicy DefaultPullPolicy(absl::string_view image) {
  if (absl::StrContains(image, '@')) return PullPolicy::kIfNotPresent;
  size_t slash = image.rfind('/');
  absl::string_view last = slash == absl::string_view::npos ? image : image.substr(slash + 1);
  size_t colon = last.find(':');
  if (colon == absl::string_view::npos) return PullPolicy::kAlways;
  return last.substr(colon + 1) == "latest" ? PullPolicy::kAlways : PullPolicy::kIfNotPresent;
}

absl::string_view RestartPolicyName(RestartPolicy p) {
  switch (p) {
    case RestartPolicy::kAlways:
      return "Always";
    case RestartPolicy::kOnFailure:
      return "OnFailure";
    case RestartPolicy::kNever:
      return "Never";
  }
  return "Always";
}

absl::StatusOr<ParsedManifest> ParseManifest(absl::string_view text, absl::string_view source,
                                             absl::string_view node_name) {
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(std::string(text));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": YAML syntax error at line ",
                                                   e.mark.line + 1, ", column ", e.mark.column + 1,
                                                   ": ", e.msg));
  }
  ParsedManifest out;
  std::set<std::string> keys;
  int index = 0;
  for (const YAML::Node& doc : docs) {
    ++index;
    if (!Present(doc)) continue;
    Context ctx{absl::StrCat(source, ": document ", index, ": "), &out.warnings};
    Pod pod;
    try {
      KUBELET_RETURN_IF_ERROR(ReadPod(doc, ctx, &pod));
    } catch (const YAML::Exception& e) {
      return ctx.Error("(document)", e.what());
    }
    YAML::Emitter emitter;
    emitter << doc;
    std::string canonical = emitter.c_str();
    pod.source = std::string(source);
    pod.document = index;
    pod.hash = Fnv64Hex(canonical);
    if (pod.uid.empty()) {
      pod.uid = UidFromHash(absl::StrCat(node_name, "\n", source, "\n", canonical));
    }
    if (!keys.insert(pod.Key()).second) {
      return ctx.Error("metadata.name", absl::StrCat("pod ", pod.Key(), " is defined twice"));
    }
    out.pods.push_back(std::move(pod));
  }
  return out;
}

}  // namespace podshim::kubelet
