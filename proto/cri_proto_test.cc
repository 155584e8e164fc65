// Checks on the generated CRI code that the C++ side relies on: the services
// carry the expected methods, and a message survives a wire round trip.
#include <gtest/gtest.h>

#include "runtime/v1/api.grpc.pb.h"
#include "runtime/v1/api.pb.h"

namespace {

using google::protobuf::DescriptorPool;

TEST(CriProto, ServicesHaveStreamingMethodsWhereKubeletExpectsThem) {
  const auto* pool = DescriptorPool::generated_pool();
  const auto* runtime = pool->FindServiceByName("runtime.v1.RuntimeService");
  const auto* image = pool->FindServiceByName("runtime.v1.ImageService");
  ASSERT_NE(runtime, nullptr);
  ASSERT_NE(image, nullptr);
  const auto* events = runtime->FindMethodByName("GetContainerEvents");
  ASSERT_NE(events, nullptr);
  EXPECT_TRUE(events->server_streaming());
  EXPECT_FALSE(events->client_streaming());
  const auto* version = runtime->FindMethodByName("Version");
  ASSERT_NE(version, nullptr);
  EXPECT_FALSE(version->server_streaming());
  EXPECT_NE(image->FindMethodByName("PullImage"), nullptr);
}

TEST(CriProto, VersionResponseRoundTrips) {
  runtime::v1::VersionResponse in;
  in.set_version("0.1.0");
  in.set_runtime_name("podshim");
  in.set_runtime_version("1.2.3");
  in.set_runtime_api_version("v1");
  std::string wire;
  ASSERT_TRUE(in.SerializeToString(&wire));
  // Field 2 (runtime_name), wire type 2: tag byte 0x12, then length 7.
  EXPECT_NE(wire.find(std::string("\x12\x07podshim", 9)), std::string::npos);
  runtime::v1::VersionResponse out;
  ASSERT_TRUE(out.ParseFromString(wire));
  EXPECT_EQ(out.runtime_api_version(), "v1");
}

TEST(CriProto, CgroupDriverValuesMatchTheWire) {
  EXPECT_EQ(runtime::v1::SYSTEMD, 0);
  EXPECT_EQ(runtime::v1::CGROUPFS, 1);
}

}  // namespace
