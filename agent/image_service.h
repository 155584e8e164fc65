// ImageService: the image half of the CRI.
#pragma once

#include "agent/config.h"
#include "agent/rpc.h"
#include "runtime/v1/api.grpc.pb.h"

namespace podshim::agent {

namespace cri = ::runtime::v1;

class ImageServiceImpl final : public cri::ImageService::CallbackService {
 public:
  explicit ImageServiceImpl(Config config) : config_(std::move(config)) {}

  // Disk usage of the image filesystem (unpacked layers) and of the
  // containers' writable layers, measured on every call.
  grpc::ServerUnaryReactor* ImageFsInfo(grpc::CallbackServerContext* ctx,
                                        const cri::ImageFsInfoRequest* req,
                                        cri::ImageFsInfoResponse* resp) override;

  // Not implemented until the image service issue lands; each answers
  // UNIMPLEMENTED naming itself.
  grpc::ServerUnaryReactor* ListImages(grpc::CallbackServerContext* ctx,
                                       const cri::ListImagesRequest* /*req*/,
                                       cri::ListImagesResponse* /*resp*/) override {
    return UnaryNotImplemented(ctx, "ImageService/ListImages");
  }
  grpc::ServerWriteReactor<cri::StreamImagesResponse>* StreamImages(
      grpc::CallbackServerContext* /*ctx*/, const cri::StreamImagesRequest* /*req*/) override {
    return StreamNotImplemented<cri::StreamImagesResponse>("ImageService/StreamImages");
  }
  grpc::ServerUnaryReactor* ImageStatus(grpc::CallbackServerContext* ctx,
                                        const cri::ImageStatusRequest* /*req*/,
                                        cri::ImageStatusResponse* /*resp*/) override {
    return UnaryNotImplemented(ctx, "ImageService/ImageStatus");
  }
  grpc::ServerUnaryReactor* PullImage(grpc::CallbackServerContext* ctx,
                                      const cri::PullImageRequest* /*req*/,
                                      cri::PullImageResponse* /*resp*/) override {
    return UnaryNotImplemented(ctx, "ImageService/PullImage");
  }
  grpc::ServerUnaryReactor* RemoveImage(grpc::CallbackServerContext* ctx,
                                        const cri::RemoveImageRequest* /*req*/,
                                        cri::RemoveImageResponse* /*resp*/) override {
    return UnaryNotImplemented(ctx, "ImageService/RemoveImage");
  }

 private:
  const Config config_;
};

}  // namespace podshim::agent
