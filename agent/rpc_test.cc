#include "agent/rpc.h"

#include <gtest/gtest.h>

namespace podshim::agent {
namespace {

TEST(Rpc, StatusCodesKeepTheirMeaning) {
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
  auto s = ToGrpcStatus(absl::InvalidArgumentError("config.metadata.name: empty"));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "config.metadata.name: empty");
  EXPECT_EQ(ToGrpcStatus(absl::NotFoundError("x")).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(ToGrpcStatus(absl::DeadlineExceededError("x")).error_code(),
            grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_EQ(ToGrpcStatus(absl::FailedPreconditionError("x")).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

TEST(Rpc, NotImplementedNamesTheMethod) {
  auto s = NotImplemented("RuntimeService/RunPodSandbox");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_NE(s.error_message().find("RuntimeService/RunPodSandbox"), std::string::npos);
}

TEST(Rpc, CodeNames) {
  EXPECT_EQ(CodeName(grpc::StatusCode::UNIMPLEMENTED), "UNIMPLEMENTED");
  EXPECT_EQ(CodeName(grpc::StatusCode::OK), "OK");
}

}  // namespace
}  // namespace podshim::agent
