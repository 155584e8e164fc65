// A pod's DNS settings (CRI DNSConfig): what its resolv.conf says
// (runtime/pod_setup.h) and what CNI plugins get in runtimeConfig.dns
// (cni/client.h).
#pragma once

#include <string>
#include <vector>

namespace podshim::runtime {

struct DnsSettings {
  std::vector<std::string> servers;
  std::vector<std::string> searches;
  std::vector<std::string> options;
};

}  // namespace podshim::runtime
