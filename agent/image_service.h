// ImageService: the image half of the CRI.
#pragma once

#include "agent/config.h"
#include "agent/pull_jobs.h"
#include "agent/rpc.h"
#include "agent/work_pool.h"
#include "image/image_manager.h"
#include "runtime/v1/api.grpc.pb.h"

namespace podshim::agent {

namespace cri = ::runtime::v1;

class ImageServiceImpl final : public cri::ImageService::CallbackService {
 public:
  // `images` and `pool` must outlive the service.
  ImageServiceImpl(Config config, image::ImageManager& images, WorkPool& pool)
      : config_(std::move(config)),
        images_(images),
        pool_(pool),
        pulls_([&images](const std::string& ref, const image::RegistryAuth& auth,
                         const image::CallOptions& call) { return images.Pull(ref, auth, call); },
               absl::Seconds(config_.handoff_ttl_seconds)) {}

  // Pulls of one image (after normalisation) share one job; a pull whose
  // caller's deadline passes goes on in the background for a retry
  // (agent/pull_jobs.h).
  grpc::ServerUnaryReactor* PullImage(grpc::CallbackServerContext* ctx,
                                      const cri::PullImageRequest* req,
                                      cri::PullImageResponse* resp) override;
  grpc::ServerUnaryReactor* ImageStatus(grpc::CallbackServerContext* ctx,
                                        const cri::ImageStatusRequest* req,
                                        cri::ImageStatusResponse* resp) override;
  grpc::ServerUnaryReactor* ListImages(grpc::CallbackServerContext* ctx,
                                       const cri::ListImagesRequest* req,
                                       cri::ListImagesResponse* resp) override;
  grpc::ServerUnaryReactor* RemoveImage(grpc::CallbackServerContext* ctx,
                                        const cri::RemoveImageRequest* req,
                                        cri::RemoveImageResponse* resp) override;

  static constexpr int kStreamChunk = 100;

  // Disk usage of the image filesystem (unpacked layers) and of the
  // containers' writable layers, measured on every call.
  grpc::ServerUnaryReactor* ImageFsInfo(grpc::CallbackServerContext* ctx,
                                        const cri::ImageFsInfoRequest* req,
                                        cri::ImageFsInfoResponse* resp) override;

  // ListImages over a server stream, in chunks of kStreamChunk images.
  grpc::ServerWriteReactor<cri::StreamImagesResponse>* StreamImages(
      grpc::CallbackServerContext* ctx, const cri::StreamImagesRequest* req) override;

 private:
  const Config config_;
  image::ImageManager& images_;
  WorkPool& pool_;
  // Last: its destructor cancels the pulls still running, which use images_.
  PullJobs pulls_;
};

}  // namespace podshim::agent
