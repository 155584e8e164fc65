#include "agent/image_service.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "runtime/files.h"

namespace podshim::agent {
namespace {

absl::Status FillUsage(const std::string& dir, int64_t now_ns, cri::FilesystemUsage* out) {
  auto usage = runtime::MeasureTree(dir);
  if (!usage.ok()) {
    return absl::Status(usage.status().code(),
                        absl::StrCat("measuring ", dir, ": ", usage.status().message()));
  }
  out->set_timestamp(now_ns);
  out->mutable_fs_id()->set_mountpoint(dir);
  out->mutable_used_bytes()->set_value(usage->bytes);
  out->mutable_inodes_used()->set_value(usage->inodes);
  return absl::OkStatus();
}

}  // namespace

grpc::ServerUnaryReactor* ImageServiceImpl::ImageFsInfo(grpc::CallbackServerContext* ctx,
                                                        const cri::ImageFsInfoRequest* /*req*/,
                                                        cri::ImageFsInfoResponse* resp) {
  return ServeUnary(ctx, "ImageService/ImageFsInfo", [&] {
    const int64_t now = absl::GetCurrentTimeNanos();
    if (auto s = FillUsage(SnapshotsDir(config_), now, resp->add_image_filesystems()); !s.ok()) {
      return ToGrpcStatus(s);
    }
    return ToGrpcStatus(FillUsage(ContainersDir(config_), now, resp->add_container_filesystems()));
  });
}

}  // namespace podshim::agent
