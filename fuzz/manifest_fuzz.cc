// What a registry sends back (image/manifest.h): manifest documents, indexes
// and image configs, from any registry a pod names. The first byte picks the
// Content-Type the registry claimed; every parser reads the rest. A
// successfully parsed document must pass what the puller does next with it
// (platform selection, layer media types) without harm.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "image/manifest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace image = podshim::image;
  if (size < 1) return 0;
  static const char* const kContentTypes[] = {
      "",
      "application/vnd.oci.image.manifest.v1+json",
      "application/vnd.oci.image.index.v1+json",
      "application/vnd.docker.distribution.manifest.v2+json",
      "application/vnd.docker.distribution.manifest.list.v2+json; charset=utf-8",
      "application/vnd.docker.distribution.manifest.v1+prettyjws",
      "application/json",
      "text/plain",
  };
  const absl::string_view content_type = kContentTypes[data[0] % 8];
  const absl::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);

  (void)image::DetectManifestMediaType(body, content_type);
  if (auto index = image::ParseIndex(body); index.ok()) {
    (void)image::SelectPlatform(*index, image::HostPlatform());
    for (const char* machine : {"x86_64", "aarch64", "armv7l", "i686", "riscv64"})
      (void)image::SelectPlatform(*index,
                                  image::NormalizePlatform(image::PlatformFromMachine(machine)));
    for (const auto& d : *index) {
      (void)image::IsIndexMediaType(d.media_type);
      (void)image::IsManifestMediaType(d.media_type);
      (void)image::NormalizePlatform(d.platform.value_or(image::Platform{}));
    }
  }
  if (auto manifest = image::ParseManifest(body); manifest.ok()) {
    (void)image::LayerCompression(manifest->config.media_type);
    for (const auto& layer : manifest->layers) (void)image::LayerCompression(layer.media_type);
  }
  (void)image::ParseImageConfig(body);
  return 0;
}
