# The SPDY/3.1 framing codec (streaming/spdy_frames.h): frames, and the
# zlib-compressed header blocks with the dictionary of the specification.
find_package(ZLIB REQUIRED)

podshim_library(podshim_spdy
  SOURCES spdy_frames.cc
  DEPS absl::status absl::statusor absl::strings ZLIB::ZLIB)

podshim_test(spdy_test SOURCES spdy_frames_test.cc DEPS podshim_spdy)
