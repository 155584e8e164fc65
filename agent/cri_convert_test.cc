#include "agent/cri_convert.h"

#include <signal.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace podshim::agent {
namespace {

using ::testing::ElementsAre;

TEST(MergeArgs, KubernetesRules) {
  const std::vector<std::string> ep = {"/ep"}, cmd = {"c1", "c2"};
  // Nothing given: Entrypoint + Cmd.
  EXPECT_THAT(*MergeArgs({}, {}, ep, cmd), ElementsAre("/ep", "c1", "c2"));
  // Args only: Entrypoint + args; the image's Cmd is dropped.
  EXPECT_THAT(*MergeArgs({}, {"a"}, ep, cmd), ElementsAre("/ep", "a"));
  // Command only: command; Entrypoint and Cmd dropped.
  EXPECT_THAT(*MergeArgs({"/bin/x"}, {}, ep, cmd), ElementsAre("/bin/x"));
  // Both: command + args.
  EXPECT_THAT(*MergeArgs({"/bin/x"}, {"y"}, ep, cmd), ElementsAre("/bin/x", "y"));
  // No Entrypoint: Cmd alone, or args alone.
  EXPECT_THAT(*MergeArgs({}, {}, {}, cmd), ElementsAre("c1", "c2"));
  EXPECT_THAT(*MergeArgs({}, {"sh"}, {}, cmd), ElementsAre("sh"));
  auto none = MergeArgs({}, {}, {}, {});
  EXPECT_EQ(none.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(none.status().message()), ::testing::HasSubstr("config.command"));
}

TEST(MergeEnv, RequestOverridesImageInPlaceAndPathDefaults) {
  auto env = MergeEnv({"A=1", "B=2", "broken"}, {{"B", "3"}, {"C", "4"}}, "pod");
  EXPECT_THAT(env,
              ElementsAre("HOSTNAME=pod", "A=1", "B=3", "C=4",
                          "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"));
  auto with_path = MergeEnv({"PATH=/x"}, {}, "");
  EXPECT_THAT(with_path, ElementsAre("PATH=/x"));
}

TEST(NameKeys, AreUniquePerAttempt) {
  cri::PodSandboxMetadata pod;
  pod.set_name("web");
  pod.set_namespace_("default");
  pod.set_uid("u1");
  EXPECT_EQ(PodNameKey(pod), "web_default_u1_0");
  cri::ContainerMetadata c;
  c.set_name("app");
  c.set_attempt(2);
  EXPECT_EQ(ContainerNameKey(c, pod), "app_web_default_u1_2");
}

TEST(LabelsMatch, EverySelectorPairMustMatch) {
  google::protobuf::Map<std::string, std::string> labels, sel;
  labels["a"] = "1";
  labels["b"] = "2";
  EXPECT_TRUE(LabelsMatch(labels, sel));
  sel["a"] = "1";
  EXPECT_TRUE(LabelsMatch(labels, sel));
  sel["b"] = "3";
  EXPECT_FALSE(LabelsMatch(labels, sel));
}

#pragma GCC diagnostic ignored "-Wdeprecated-declarations"  // seccomp_profile_path

TEST(ChooseSeccomp, ProfilesAndDeprecatedPaths) {
  cri::LinuxContainerSecurityContext sc;
  EXPECT_EQ(ChooseSeccomp(sc)->kind, SeccompChoice::kUnconfined);
  sc.set_seccomp_profile_path("runtime/default");
  EXPECT_EQ(ChooseSeccomp(sc)->kind, SeccompChoice::kRuntimeDefault);
  sc.set_seccomp_profile_path("localhost//etc/p.json");
  auto c = ChooseSeccomp(sc);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->kind, SeccompChoice::kLocalhost);
  EXPECT_EQ(c->localhost_path, "/etc/p.json");
  sc.set_seccomp_profile_path("bogus");
  EXPECT_EQ(ChooseSeccomp(sc).status().code(), absl::StatusCode::kInvalidArgument);
  sc.mutable_seccomp()->set_profile_type(cri::SecurityProfile::Localhost);
  sc.mutable_seccomp()->set_localhost_ref("/p.json");
  EXPECT_EQ(ChooseSeccomp(sc)->localhost_path, "/p.json");
  sc.mutable_seccomp()->set_profile_type(cri::SecurityProfile::Unconfined);
  EXPECT_EQ(ChooseSeccomp(sc)->kind, SeccompChoice::kUnconfined);
}

TEST(SignalNumber, NamesAndNumbers) {
  EXPECT_EQ(SignalNumber("SIGTERM"), SIGTERM);
  EXPECT_EQ(SignalNumber("quit"), SIGQUIT);
  EXPECT_EQ(SignalNumber("9"), 9);
  EXPECT_EQ(SignalNumber("SIGRTMIN+3"), SIGRTMIN + 3);
  EXPECT_EQ(SignalNumber("NOPE"), 0);
}

TEST(CriSignal, MapsNumbersToTheCriEnumByName) {
  EXPECT_EQ(CriSignal(SIGTERM), cri::SIGNAL_SIGTERM);
  EXPECT_EQ(CriSignal(SIGKILL), cri::SIGNAL_SIGKILL);
  EXPECT_EQ(CriSignal(SIGQUIT), cri::SIGNAL_SIGQUIT);
  EXPECT_EQ(CriSignal(0), cri::SIGNAL_RUNTIME_DEFAULT);
}

TEST(NewId, Is64HexAndDiffers) {
  std::string a = NewId(), b = NewId();
  EXPECT_EQ(a.size(), 64u);
  EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_NE(a, b);
}

}  // namespace
}  // namespace podshim::agent
