#include "runtime/sysctl.h"

#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace podshim::runtime {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;

TEST(CheckSysctl, AllowListAndProcPath) {
  struct Good {
    const char* name;
    const char* path;
  };
  for (const Good& g : std::vector<Good>{
           {"kernel.shmmax", "kernel/shmmax"},
           {"kernel.shm_rmid_forced", "kernel/shm_rmid_forced"},
           {"kernel.msgmnb", "kernel/msgmnb"},
           {"kernel.sem", "kernel/sem"},
           {"fs.mqueue.msg_max", "fs/mqueue/msg_max"},
           {"net.ipv4.ip_forward", "net/ipv4/ip_forward"},
           // sysctl(8): with '/' first, dots belong to the components...
           {"net/ipv4/conf/eth0.100/rp_filter", "net/ipv4/conf/eth0.100/rp_filter"},
           // ...and with '.' first, slashes do.
           {"net.ipv4.conf.eth0/100.rp_filter", "net/ipv4/conf/eth0.100/rp_filter"},
           {"kernel/shmmni", "kernel/shmmni"},
       }) {
    std::string path;
    EXPECT_THAT(CheckSysctl(g.name, "1", true, true, &path), IsEmpty()) << g.name;
    EXPECT_EQ(path, g.path) << g.name;
  }
  EXPECT_THAT(CheckSysctl("kernel.sem", "250 32000 32 128", true, true), IsEmpty());
  // Only the namespace it belongs to is needed.
  EXPECT_THAT(CheckSysctl("kernel.msgmax", "1", false, true), IsEmpty());
  EXPECT_THAT(CheckSysctl("net.core.somaxconn", "1", true, false), IsEmpty());
}

TEST(CheckSysctl, Refusals) {
  struct Bad {
    std::string name, value;
    bool own_net, own_ipc;
    const char* why;
  };
  for (const Bad& bad : std::vector<Bad>{
           {"kernel.hostname", "x", true, true, "not a namespaced"},
           {"vm.swappiness", "1", true, true, "not a namespaced"},
           {"kernel.semx", "1", true, true, "not a namespaced"},
           {"net", "1", true, true, "not a namespaced"},
           {"", "1", true, true, "not a namespaced"},
           {"net.ipv4.ip_forward", "1", false, true, "host network"},
           {"kernel.shmmax", "1", true, false, "host IPC"},
           {"fs/mqueue/msg_max", "1", true, false, "host IPC"},
           {"kernel.sem", "1", true, false, "host IPC"},
           {"net..ipv4", "1", true, true, "malformed"},
           {"net.ipv4.", "1", true, true, "malformed"},
           {"net/../vm/swappiness", "1", true, true, "malformed"},
           {"net/./ipv4/ip_forward", "1", true, true, "malformed"},
           {"net.ipv4.conf.a b.rp_filter", "1", true, true, "space"},
           {"net.ipv4.conf.a\tb.rp_filter", "1", true, true, "control character"},
           {std::string("net.ipv4\0.x", 11), "1", true, true, "control character"},
           {"net.ipv4.ip_forward", "1\nvm.swappiness=1", true, true, "newline"},
           {"net.ipv4.ip_forward", std::string("1\0", 2), true, true, "NUL"},
       }) {
    std::string path = "untouched";
    EXPECT_THAT(CheckSysctl(bad.name, bad.value, bad.own_net, bad.own_ipc, &path),
                HasSubstr(bad.why))
        << bad.name;
    EXPECT_EQ(path, "untouched") << bad.name;
  }
}

}  // namespace
}  // namespace podshim::runtime
