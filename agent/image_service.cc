#include "agent/image_service.h"

#include <chrono>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agent/validate.h"
#include "image/reference.h"
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

// The CRI view of a stored image. The image's USER decides uid/username:
// a numeric user part gives uid, a name gives username.
void ToCri(const image::ImageRecord& record, cri::Image* out) {
  out->set_id(record.id);
  for (const auto& t : record.repo_tags) out->add_repo_tags(t);
  for (const auto& d : record.repo_digests) out->add_repo_digests(d);
  out->set_size(record.size);
  out->mutable_spec()->set_image(record.id);
  std::string user;
  if (record.config.is_object() && record.config.contains("config") &&
      record.config["config"].is_object() && record.config["config"].contains("User") &&
      record.config["config"]["User"].is_string()) {
    user = record.config["config"]["User"].get<std::string>();
  }
  std::string name = user.substr(0, user.find(':'));
  int64_t uid = 0;
  if (!name.empty() && absl::SimpleAtoi(name, &uid)) {
    out->mutable_uid()->set_value(uid);
  } else if (!name.empty()) {
    out->set_username(name);
  }
  auto pinned = record.annotations.find("io.cri-containerd.pinned");
  out->set_pinned(pinned != record.annotations.end() && pinned->second == "pinned");
}

image::CallOptions CallOptionsOf(grpc::CallbackServerContext* ctx) {
  image::CallOptions call;
  auto deadline = ctx->deadline();
  if (deadline != std::chrono::system_clock::time_point::max()) {
    call.deadline = absl::FromChrono(deadline);
  }
  call.cancelled = [ctx] { return ctx->IsCancelled(); };
  return call;
}

}  // namespace

grpc::ServerUnaryReactor* ImageServiceImpl::PullImage(grpc::CallbackServerContext* ctx,
                                                      const cri::PullImageRequest* req,
                                                      cri::PullImageResponse* resp) {
  return ServeUnaryOn(pool_, ctx, "ImageService/PullImage", [this, ctx, req, resp] {
    if (auto s = ValidateImageRef(req->image().image(), "image.image"); !s.ok()) {
      return ToGrpcStatus(s);
    }
    image::RegistryAuth auth;
    auth.username = req->auth().username();
    auth.password = req->auth().password();
    auth.auth = req->auth().auth();
    auth.identity_token = req->auth().identity_token();
    auth.registry_token = req->auth().registry_token();
    const std::string& text = req->image().image();
    auto ref = image::ParseReference(text);
    // A bad reference gets the image module's own answer.
    auto record = ref.ok() ? pulls_.Pull(ref->String(), text, auth, ClientCallOf(ctx))
                           : images_.Pull(text, auth, CallOptionsOf(ctx));
    if (!record.ok()) return ToGrpcStatus(record.status());
    resp->set_image_ref(record->id);
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* ImageServiceImpl::ImageStatus(grpc::CallbackServerContext* ctx,
                                                        const cri::ImageStatusRequest* req,
                                                        cri::ImageStatusResponse* resp) {
  return ServeUnary(ctx, "ImageService/ImageStatus", [&] {
    if (auto s = ValidateImageRef(req->image().image(), "image.image"); !s.ok()) {
      return ToGrpcStatus(s);
    }
    auto record = images_.Get(req->image().image());
    if (!record.ok()) {
      // A missing image is an answer without an image, not an error.
      if (record.status().code() == absl::StatusCode::kNotFound) return grpc::Status::OK;
      return ToGrpcStatus(record.status());
    }
    ToCri(*record, resp->mutable_image());
    if (req->verbose()) {
      nlohmann::json info = {{"id", record->id},
                             {"manifestDigest", record->manifest_digest},
                             {"mediaType", record->media_type},
                             {"layers", record->layer_digests},
                             {"diffIDs", record->diff_ids},
                             {"imageSpec", record->config}};
      (*resp->mutable_info())["info"] = info.dump();
    }
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* ImageServiceImpl::ListImages(grpc::CallbackServerContext* ctx,
                                                       const cri::ListImagesRequest* req,
                                                       cri::ListImagesResponse* resp) {
  return ServeUnary(ctx, "ImageService/ListImages", [&] {
    const std::string& filter = req->filter().image().image();
    if (!filter.empty()) {
      auto record = images_.Get(filter);
      if (record.ok()) ToCri(*record, resp->add_images());
      if (!record.ok() && record.status().code() != absl::StatusCode::kNotFound) {
        return ToGrpcStatus(record.status());
      }
      return grpc::Status::OK;
    }
    for (const auto& record : images_.List()) ToCri(record, resp->add_images());
    return grpc::Status::OK;
  });
}

namespace {

// Writes prepared messages one after the other, then finishes.
class ChunkWriter final : public grpc::ServerWriteReactor<cri::StreamImagesResponse> {
 public:
  explicit ChunkWriter(std::vector<cri::StreamImagesResponse> chunks)
      : chunks_(std::move(chunks)), start_(absl::Now()) {
    Next();
  }
  void OnWriteDone(bool ok) override {
    if (!ok) {
      Done(grpc::Status(grpc::StatusCode::CANCELLED, "ImageService/StreamImages: write failed"));
      return;
    }
    Next();
  }
  void OnDone() override { delete this; }

 private:
  void Next() {
    if (next_ == chunks_.size()) {
      Done(grpc::Status::OK);
      return;
    }
    StartWrite(&chunks_[next_++]);
  }
  void Done(grpc::Status status) {
    LogRpc("ImageService/StreamImages", status, absl::Now() - start_);
    Finish(std::move(status));
  }

  std::vector<cri::StreamImagesResponse> chunks_;
  size_t next_ = 0;
  absl::Time start_;
};

}  // namespace

grpc::ServerWriteReactor<cri::StreamImagesResponse>* ImageServiceImpl::StreamImages(
    grpc::CallbackServerContext* /*ctx*/, const cri::StreamImagesRequest* req) {
  std::vector<image::ImageRecord> records;
  const std::string& filter = req->filter().image().image();
  if (!filter.empty()) {
    if (auto record = images_.Get(filter); record.ok()) records.push_back(*std::move(record));
  } else {
    records = images_.List();
  }
  std::vector<cri::StreamImagesResponse> chunks;
  for (size_t i = 0; i < records.size(); ++i) {
    if (i % kStreamChunk == 0) chunks.emplace_back();
    ToCri(records[i], chunks.back().add_images());
  }
  return new ChunkWriter(std::move(chunks));
}

grpc::ServerUnaryReactor* ImageServiceImpl::RemoveImage(grpc::CallbackServerContext* ctx,
                                                        const cri::RemoveImageRequest* req,
                                                        cri::RemoveImageResponse* /*resp*/) {
  return ServeUnaryOn(pool_, ctx, "ImageService/RemoveImage", [this, req] {
    if (auto s = ValidateImageRef(req->image().image(), "image.image"); !s.ok()) {
      return ToGrpcStatus(s);
    }
    return ToGrpcStatus(images_.Remove(req->image().image()));
  });
}

grpc::ServerUnaryReactor* ImageServiceImpl::ImageFsInfo(grpc::CallbackServerContext* ctx,
                                                        const cri::ImageFsInfoRequest* /*req*/,
                                                        cri::ImageFsInfoResponse* resp) {
  return ServeUnaryOn(pool_, ctx, "ImageService/ImageFsInfo", [this, resp] {
    const int64_t now = absl::GetCurrentTimeNanos();
    if (auto s = FillUsage(images_.snapshots_dir(), now, resp->add_image_filesystems()); !s.ok()) {
      return ToGrpcStatus(s);
    }
    return ToGrpcStatus(FillUsage(ContainersDir(config_), now, resp->add_container_filesystems()));
  });
}

}  // namespace podshim::agent
