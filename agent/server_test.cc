// The server in-process on a temporary socket, called through a real gRPC
// channel.
#include "agent/server.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "nlohmann/json.hpp"

namespace podshim::agent {
namespace {

using ::testing::HasSubstr;

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/podshim-server-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    config_.socket = dir_ + "/sock/podshim.sock";
    config_.state_dir = dir_ + "/state";
    config_.root_dir = dir_ + "/root";
    // Never the machine's /etc/cni/net.d; tests that want a network turn it on.
    config_.cni.conf_dir = dir_ + "/net.d";
    config_.cni.enabled = false;
    // Never the host's cgroup mount options: favordynmods stays as the
    // machine has it (turning it on is tested on its plan, cgroups_test.cc).
    config_.cgroup_favor_dynmods = false;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<cri::RuntimeService::Stub> RuntimeStub() {
    return cri::RuntimeService::NewStub(
        grpc::CreateChannel("unix:" + config_.socket, grpc::InsecureChannelCredentials()));
  }

  std::string dir_;
  Config config_;
};

TEST_F(ServerTest, AnswersVersionStatusAndRuntimeConfig) {
  auto server = Server::Start(config_);
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = RuntimeStub();

  grpc::ClientContext c1;
  cri::VersionResponse version;
  ASSERT_TRUE(stub->Version(&c1, cri::VersionRequest(), &version).ok());
  EXPECT_EQ(version.runtime_name(), "podshim");
  EXPECT_EQ(version.runtime_api_version(), "v1");

  grpc::ClientContext c2;
  cri::StatusRequest status_req;
  status_req.set_verbose(true);
  cri::StatusResponse status;
  ASSERT_TRUE(stub->Status(&c2, status_req, &status).ok());
  ASSERT_EQ(status.status().conditions_size(), 2);
  EXPECT_EQ(status.status().conditions(0).type(), "RuntimeReady");
  EXPECT_TRUE(status.status().conditions(0).status());
  EXPECT_EQ(status.status().conditions(1).type(), "NetworkReady");
  // Pod networking is off in this fixture: not ready, and the reason says so.
  EXPECT_FALSE(status.status().conditions(1).status());
  EXPECT_EQ(status.status().conditions(1).reason(), "NetworkPluginNotReady");
  EXPECT_THAT(status.status().conditions(1).message(), HasSubstr("turned off"));
  auto config = nlohmann::json::parse(status.info().at("config"));
  EXPECT_EQ(config["socket"], config_.socket);

  grpc::ClientContext c3;
  cri::RuntimeConfigResponse rc;
  ASSERT_TRUE(stub->RuntimeConfig(&c3, cri::RuntimeConfigRequest(), &rc).ok());
  EXPECT_EQ(rc.linux().cgroup_driver(), cri::CGROUPFS);
}

TEST_F(ServerTest, UnimplementedRpcNamesItself) {
  auto server = Server::Start(config_);
  ASSERT_TRUE(server.ok()) << server.status();
  grpc::ClientContext ctx;
  cri::CheckpointContainerResponse resp;
  auto s = RuntimeStub()->CheckpointContainer(&ctx, cri::CheckpointContainerRequest(), &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_THAT(s.error_message(), HasSubstr("CheckpointContainer"));
}

TEST_F(ServerTest, RunPodSandboxWithoutConfigIsInvalidArgumentNamingTheField) {
  auto server = Server::Start(config_);
  ASSERT_TRUE(server.ok()) << server.status();
  grpc::ClientContext ctx;
  cri::RunPodSandboxResponse resp;
  auto s = RuntimeStub()->RunPodSandbox(&ctx, cri::RunPodSandboxRequest(), &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("config"));
}

TEST_F(ServerTest, ImageFsInfoMeasuresSnapshotsAndContainers) {
  auto server = Server::Start(config_);
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = cri::ImageService::NewStub(
      grpc::CreateChannel("unix:" + config_.socket, grpc::InsecureChannelCredentials()));
  grpc::ClientContext c1;
  cri::ImageFsInfoResponse before;
  ASSERT_TRUE(stub->ImageFsInfo(&c1, cri::ImageFsInfoRequest(), &before).ok());
  ASSERT_EQ(before.image_filesystems_size(), 1);
  ASSERT_EQ(before.container_filesystems_size(), 1);
  EXPECT_EQ(before.image_filesystems(0).fs_id().mountpoint(), SnapshotsDir(config_));
  EXPECT_EQ(before.container_filesystems(0).fs_id().mountpoint(), ContainersDir(config_));
  EXPECT_GE(before.image_filesystems(0).inodes_used().value(), 1u);
  EXPECT_GT(before.image_filesystems(0).timestamp(), 0);

  ASSERT_TRUE(
      runtime::WriteFileAtomic(SnapshotsDir(config_) + "/layer", std::string(1 << 20, 'x')).ok());
  grpc::ClientContext c2;
  cri::ImageFsInfoResponse after;
  ASSERT_TRUE(stub->ImageFsInfo(&c2, cri::ImageFsInfoRequest(), &after).ok());
  EXPECT_EQ(after.image_filesystems(0).inodes_used().value(),
            before.image_filesystems(0).inodes_used().value() + 1);
  EXPECT_GE(after.image_filesystems(0).used_bytes().value() -
                before.image_filesystems(0).used_bytes().value(),
            1u << 20);
}

TEST_F(ServerTest, SocketAndDirectoryModes) {
  auto server = Server::Start(config_);
  ASSERT_TRUE(server.ok()) << server.status();
  struct stat st {};
  ASSERT_EQ(::stat(config_.socket.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0660u);
  ASSERT_EQ(::stat((dir_ + "/sock").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
}

TEST_F(ServerTest, ShutdownRemovesSocketAndLock) {
  auto server = Server::Start(config_);
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_TRUE(std::filesystem::exists(config_.socket));
  (*server)->Shutdown(absl::Seconds(1));
  EXPECT_FALSE(std::filesystem::exists(config_.socket));
  server->reset();
  EXPECT_FALSE(std::filesystem::exists(config_.socket + ".lock"));
  // The socket can be served again.
  EXPECT_TRUE(Server::Start(config_).ok());
}

TEST_F(ServerTest, InvalidConfigIsRefusedBeforeAnythingIsCreated) {
  config_.log_level = "loud";
  auto server = Server::Start(config_);
  ASSERT_FALSE(server.ok());
  EXPECT_THAT(server.status().message(), HasSubstr("log_level"));
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/sock"));
}

}  // namespace
}  // namespace podshim::agent
