#include "kubelet/kubelet.h"

#include <algorithm>
#include <filesystem>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "kubelet/cri_config.h"
#include "runtime/files.h"
#include "spdlog/spdlog.h"

namespace podshim::kubelet {
namespace {

namespace rt = ::runtime::v1;
namespace fs = std::filesystem;

bool IsManifestName(const std::string& name) {
  if (name.empty() || name[0] == '.' || name.back() == '~') return false;
  return absl::EndsWith(name, ".yaml") || absl::EndsWith(name, ".yml") ||
         absl::EndsWith(name, ".json");
}

HttpResponse JsonResponse(int status, const nlohmann::json& body) {
  return {status, "application/json", body.dump(2) + "\n"};
}

}  // namespace

Kubelet::Kubelet(CriClient* cri, KubeletOptions options)
    : cri_(cri), options_(std::move(options)) {}

Kubelet::~Kubelet() { Shutdown(false, absl::ZeroDuration()); }

void Kubelet::ReportOnce(const std::string& key, const std::string& message, bool error) {
  auto it = reported_.find(key);
  if (it != reported_.end() && it->second == message) return;
  reported_[key] = message;
  if (error) {
    spdlog::error("{}", message);
  } else {
    spdlog::warn("{}", message);
  }
}

bool Kubelet::ReadManifests() {
  std::error_code ec;
  fs::directory_iterator it(options_.manifests_dir, ec);
  if (ec) {
    ReportOnce("(dir)",
               absl::StrCat("read manifest directory `", options_.manifests_dir,
                            "`: ", ec.message(), "; nothing changes until it can be read"),
               true);
    return false;
  }
  reported_.erase("(dir)");
  std::set<std::string> seen;
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    if (ec) return false;
    std::string name = it->path().filename().string();
    if (!IsManifestName(name)) continue;
    std::error_code type_ec;
    if (!it->is_regular_file(type_ec)) continue;
    std::string path = it->path().string();
    auto content = runtime::ReadFile(path);
    if (!content.ok()) {
      // Vanished or unreadable for a moment: keep what we had.
      if (files_.count(path)) seen.insert(path);
      continue;
    }
    seen.insert(path);
    FileState& state = files_[path];
    if (state.loaded && state.content == *content) continue;
    state.loaded = true;
    state.content = *content;
    auto parsed = ParseManifest(*content, path, options_.worker.node.node_name);
    if (!parsed.ok()) {
      state.valid = false;
      ReportOnce(
          path,
          absl::StrCat("invalid manifest: ", parsed.status().message(),
                       state.pods.empty() ? "; ignored" : "; its pods keep running unchanged"),
          true);
      continue;
    }
    reported_.erase(path);
    for (const std::string& w : parsed->warnings) spdlog::warn("{}", w);
    state.valid = true;
    state.pods = std::move(parsed->pods);
    spdlog::info("{}: {} pod(s)", path, state.pods.size());
  }
  for (auto f = files_.begin(); f != files_.end();) {
    if (seen.count(f->first)) {
      ++f;
      continue;
    }
    spdlog::info("{}: manifest removed", f->first);
    reported_.erase(f->first);
    f = files_.erase(f);
  }
  return true;
}

void Kubelet::Scan() {
  if (!ReadManifests()) return;
  // The desired pods; the first file (by name) wins a duplicate.
  std::map<std::string, const Pod*> desired;
  for (const auto& [path, state] : files_) {
    for (const Pod& pod : state.pods) {
      auto [it, inserted] = desired.emplace(pod.Key(), &pod);
      if (!inserted) {
        ReportOnce(absl::StrCat("dup:", path, ":", pod.Key()),
                   absl::StrCat(path, ": pod ", pod.Key(), " is also defined in ",
                                it->second->source, "; ignored here"),
                   true);
      }
    }
  }

  // Pods the runtime has with our label: adopt them, or find the orphans.
  std::map<std::string, std::pair<std::string, std::string>> runtime_pods;  // key -> (ns, name)
  std::map<std::string, std::string> runtime_sources;                       // key -> source
  rt::PodSandboxFilter filter;
  (*filter.mutable_label_selector())[kManagedLabel] = "true";
  auto sandboxes = cri_->ListPodSandbox(filter);
  if (sandboxes.ok()) {
    reported_.erase("(runtime)");
    for (const rt::PodSandbox& s : sandboxes->items()) {
      auto label = [&](const char* k) {
        auto it = s.labels().find(k);
        return it == s.labels().end() ? std::string() : it->second;
      };
      std::string ns = label(kPodNamespaceLabel);
      std::string name = label(kPodNameLabel);
      if (ns.empty() || name.empty()) continue;
      std::string key = absl::StrCat(ns, "/", name);
      runtime_pods[key] = {ns, name};
      auto src = s.annotations().find(kSourceAnnotation);
      if (src != s.annotations().end()) runtime_sources[key] = src->second;
    }
  } else {
    ReportOnce("(runtime)", absl::StrCat("listing pods failed: ", sandboxes.status().message()),
               false);
  }

  absl::MutexLock l(&mu_);
  for (auto it = workers_.begin(); it != workers_.end();) {
    it = it->second->Finished() ? workers_.erase(it) : std::next(it);
  }
  for (const auto& [key, pod] : desired) {
    auto it = workers_.find(key);
    if (it == workers_.end()) {
      workers_.emplace(
          key, std::make_unique<PodWorker>(cri_, options_.worker, pod->namespace_name, pod->name,
                                           std::make_shared<const Pod>(*pod)));
      continue;
    }
    std::shared_ptr<const Pod> current = it->second->desired();
    if (!current || current->uid != pod->uid || current->hash != pod->hash) {
      if (current) spdlog::info("pod {}: manifest changed; replacing the pod", key);
      it->second->Update(std::make_shared<const Pod>(*pod));
    }
  }
  for (auto& [key, worker] : workers_) {
    if (!desired.count(key) && worker->desired()) {
      spdlog::info("pod {}: no manifest any more; removing the pod", key);
      worker->Update(nullptr);
    }
  }
  for (const auto& [key, ns_name] : runtime_pods) {
    if (desired.count(key) || workers_.count(key)) continue;
    auto src = runtime_sources.find(key);
    if (src != runtime_sources.end()) {
      auto file = files_.find(src->second);
      if (file != files_.end() && !file->second.valid) continue;  // invalid: hands off
    }
    spdlog::info("pod {}: in the runtime without a manifest; removing it", key);
    workers_.emplace(key, std::make_unique<PodWorker>(cri_, options_.worker, ns_name.first,
                                                      ns_name.second, nullptr));
  }
}

void Kubelet::Run(absl::Notification* stop) {
  while (!stop->HasBeenNotified()) {
    Scan();
    stop->WaitForNotificationWithTimeout(options_.scan_period);
  }
}

void Kubelet::Shutdown(bool drain, absl::Duration limit) {
  if (drain) {
    {
      absl::MutexLock l(&mu_);
      for (auto& [key, worker] : workers_) worker->Update(nullptr);
    }
    // Each worker signals its own end; the map stays locked meanwhile (a
    // worker never takes the kubelet's lock), so none is removed under us.
    const absl::Time deadline = absl::Now() + limit;
    absl::MutexLock l(&mu_);
    for (auto& [key, worker] : workers_) {
      if (!worker->WaitFinished(deadline)) break;  // the limit passed
    }
  }
  std::map<std::string, std::unique_ptr<PodWorker>> workers;
  {
    absl::MutexLock l(&mu_);
    workers.swap(workers_);
  }
  workers.clear();  // joins the threads outside the lock
}

nlohmann::json Kubelet::PodList() {
  nlohmann::json items = nlohmann::json::array();
  absl::MutexLock l(&mu_);
  for (const auto& [key, worker] : workers_) {
    if (!worker->Finished()) items.push_back(worker->Status());
  }
  return {{"kind", "PodList"},
          {"apiVersion", "v1"},
          {"metadata", nlohmann::json::object()},
          {"items", std::move(items)}};
}

HttpResponse Kubelet::Serve(absl::string_view path) {
  if (path == "/healthz") return {200, "text/plain", "ok\n"};
  if (path == "/pods" || path == "/pods/") return JsonResponse(200, PodList());
  if (absl::StartsWith(path, "/pods/")) {
    std::vector<std::string> parts = absl::StrSplit(path.substr(6), '/');
    if (parts.size() == 2) {
      std::string key = absl::StrCat(parts[0], "/", parts[1]);
      absl::MutexLock l(&mu_);
      auto it = workers_.find(key);
      if (it != workers_.end() && !it->second->Finished()) {
        return JsonResponse(200, it->second->Status());
      }
      return JsonResponse(404, {{"kind", "Status"},
                                {"apiVersion", "v1"},
                                {"status", "Failure"},
                                {"reason", "NotFound"},
                                {"message", absl::StrCat("pod ", key, " not found")},
                                {"code", 404}});
    }
  }
  return {404, "text/plain", "not found\n"};
}

}  // namespace podshim::kubelet
