// A pod worker's files on the host: emptyDir and hostPath volumes made ready
// before the sandbox, and volumes and logs removed with the pod.
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "kubelet/pod_spec.h"
#include "kubelet/pod_worker.h"
#include "runtime/unique_fd.h"
#include "spdlog/spdlog.h"

namespace podshim::kubelet {
namespace {

namespace fs = std::filesystem;

// Mount points at or under `dir`, deepest first.
std::vector<std::string> MountsUnder(const std::string& dir) {
  std::vector<std::string> out;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> f = absl::StrSplit(line, ' ');
    if (f.size() < 5) continue;
    const std::string& mp = f[4];
    if (mp == dir || absl::StartsWith(mp, dir + "/")) out.push_back(mp);
  }
  std::sort(out.begin(), out.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  return out;
}

bool IsMountPoint(const std::string& path) {
  struct stat self {};
  struct stat parent {};
  if (stat(path.c_str(), &self) != 0) return false;
  if (stat(fs::path(path).parent_path().c_str(), &parent) != 0) return false;
  return self.st_dev != parent.st_dev;
}

// A uid usable as a single path component.
bool SafeComponent(const std::string& s) {
  return !s.empty() && s != "." && s != ".." && s.find('/') == std::string::npos;
}

}  // namespace

// ---------------------------------------------------------------- volumes

absl::Status PodWorker::PrepareVolumes(const Pod& pod) {
  known_uids_.insert(pod.uid);
  for (const Volume& v : pod.volumes) {
    std::error_code ec;
    if (v.type == VolumeType::kEmptyDir) {
      std::string path = EmptyDirPath(pod, v, options_.node);
      fs::create_directories(path, ec);
      if (ec) {
        return absl::InternalError(
            absl::StrCat("create emptyDir `", path, "` for volume ", v.name, ": ", ec.message()));
      }
      if (v.medium == "Memory" && !IsMountPoint(path)) {
        std::string opts = "mode=0777";
        if (v.size_limit_bytes > 0) absl::StrAppend(&opts, ",size=", v.size_limit_bytes);
        if (mount("tmpfs", path.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, opts.c_str()) != 0) {
          return runtime::ErrnoError(errno, "mount tmpfs on", path);
        }
      }
      if (chmod(path.c_str(), 0777) != 0) return runtime::ErrnoError(errno, "chmod", path);
      continue;
    }
    const std::string& path = v.host_path;
    struct stat st {};
    bool exists = stat(path.c_str(), &st) == 0;
    auto wrong = [&](absl::string_view what) {
      return absl::FailedPreconditionError(
          absl::StrCat("hostPath volume ", v.name, ": `", path, "` is not ", what));
    };
    if (v.host_path_type == "DirectoryOrCreate" && !exists) {
      fs::create_directories(path, ec);
      if (ec) {
        return absl::InternalError(absl::StrCat("create `", path, "`: ", ec.message()));
      }
      continue;
    }
    if (v.host_path_type == "FileOrCreate" && !exists) {
      fs::create_directories(fs::path(path).parent_path(), ec);
      runtime::UniqueFd fd(open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0644));
      if (!fd.valid()) return runtime::ErrnoError(errno, "create", path);
      continue;
    }
    if (v.host_path_type.empty()) continue;
    if (!exists) return wrong("there");
    if ((v.host_path_type == "Directory" || v.host_path_type == "DirectoryOrCreate") &&
        !S_ISDIR(st.st_mode)) {
      return wrong("a directory");
    }
    if ((v.host_path_type == "File" || v.host_path_type == "FileOrCreate") &&
        !S_ISREG(st.st_mode)) {
      return wrong("a file");
    }
    if (v.host_path_type == "Socket" && !S_ISSOCK(st.st_mode)) return wrong("a socket");
    if (v.host_path_type == "CharDevice" && !S_ISCHR(st.st_mode)) return wrong("a char device");
    if (v.host_path_type == "BlockDevice" && !S_ISBLK(st.st_mode)) return wrong("a block device");
  }
  return absl::OkStatus();
}

void PodWorker::CleanupPodFiles(const std::string& uid) {
  if (!SafeComponent(uid)) return;
  std::string volumes = absl::StrCat(options_.node.volume_root, "/", uid);
  for (const std::string& mp : MountsUnder(volumes)) {
    if (umount2(mp.c_str(), MNT_DETACH) != 0) {
      spdlog::warn("pod {}: {}", key_,
                   std::string(runtime::ErrnoError(errno, "umount", mp).message()));
      return;  // never delete through a mount
    }
  }
  std::error_code ec;
  fs::remove_all(volumes, ec);
  if (ec) spdlog::warn("pod {}: remove `{}`: {}", key_, volumes, ec.message());
  std::string logs =
      absl::StrCat(options_.node.pod_log_root, "/", namespace_, "_", name_, "_", uid);
  fs::remove_all(logs, ec);
  if (ec) spdlog::warn("pod {}: remove `{}`: {}", key_, logs, ec.message());
}

}  // namespace podshim::kubelet
