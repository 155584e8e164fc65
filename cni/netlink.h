// IP addresses and a small rtnetlink client (libmnl) for podshim's CNI
// plugin: links (bridge, veth pair with one end created in another network
// namespace), bridge ports (master, hairpin), addresses and routes.
//
// A Netlink object is bound to the network namespace it was opened in, so
// the plugin can configure a pod's namespace through a socket opened there
// without its own thread ever living in it for longer than the socket() call.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

struct mnl_socket;
struct nlmsghdr;

namespace podshim::cni {

// An IPv4 or IPv6 address. Default-constructed it is "no address" (family 0).
class IpAddress {
 public:
  IpAddress() = default;

  // Parses dotted-quad IPv4 or RFC 4291 IPv6 text. INVALID_ARGUMENT otherwise.
  static absl::StatusOr<IpAddress> Parse(absl::string_view text);
  // From raw network-order bytes: 4 for IPv4, 16 for IPv6.
  static IpAddress FromBytes(int family, const void* bytes);
  // 0.0.0.0 or ::.
  static IpAddress Unspecified(int family);

  int family() const { return family_; }  // AF_INET, AF_INET6 or 0
  bool is_v4() const;
  bool valid() const { return family_ != 0; }
  bool IsUnspecified() const;  // 0.0.0.0 or ::
  size_t size() const;         // 4 or 16 (0 for no address)
  const uint8_t* bytes() const { return bytes_.data(); }
  std::string ToString() const;

  // The address one above/below, wrapping around at the ends of the family.
  IpAddress Next() const;
  IpAddress Prev() const;

  friend bool operator==(const IpAddress& a, const IpAddress& b) = default;
  // Orders by family, then numerically.
  friend std::strong_ordering operator<=>(const IpAddress& a,
                                          const IpAddress& b) =
      default;  // NOLINT(modernize-use-nullptr)

 private:
  int family_ = 0;
  std::array<uint8_t, 16> bytes_{};
};

// An address with a prefix length, as in "10.88.0.5/16". The address may
// have host bits set (an interface address); Network() clears them.
struct IpPrefix {
  IpAddress address;
  int length = 0;

  // Parses "address/length". INVALID_ARGUMENT naming the text otherwise.
  static absl::StatusOr<IpPrefix> Parse(absl::string_view text);

  IpPrefix Network() const;  // host bits cleared
  IpAddress First() const;   // the network address
  IpAddress Last() const;    // all host bits set (the IPv4 broadcast)
  bool Contains(const IpAddress& ip) const;
  bool Overlaps(const IpPrefix& other) const;
  std::string ToString() const;

  friend bool operator==(const IpPrefix& a, const IpPrefix& b) = default;
};

// One network interface as the kernel reports it.
struct LinkInfo {
  int index = 0;
  std::string name;
  std::string kind;  // IFLA_INFO_KIND: "bridge", "veth", ...; empty for devices without one
  std::string mac;   // "aa:bb:cc:dd:ee:ff"; empty when the device has no L2 address
  unsigned mtu = 0;
  int master = 0;      // ifindex of the master (the bridge of a port), 0 for none
  unsigned flags = 0;  // IFF_*
  std::string alias;   // IFLA_IFALIAS, empty when unset
};

// A veth pair to create: `name` in the socket's namespace, `peer_name` in the
// namespace `peer_netns_fd` refers to.
struct VethSpec {
  std::string name;
  std::string peer_name;
  int peer_netns_fd = -1;
  unsigned mtu = 0;  // 0: the kernel's default
  int master = 0;    // attach `name` to this device (a bridge) at creation
  bool up = true;    // bring `name` up at creation (the peer must be set up afterwards)
};

// A route in the main table. Without a gateway it is a link-scope route.
struct RouteSpec {
  IpPrefix dst;
  std::optional<IpAddress> gateway;
  int oif = 0;  // output interface index
};

// The rtnetlink socket. Every request waits for the kernel's answer; errors
// name the action and the object and carry the kernel's extended ack text
// when it sends one.
class Netlink {
 public:
  // A socket in the calling thread's network namespace.
  static absl::StatusOr<Netlink> Open();
  // A socket in the namespace `netns_fd` refers to (`netns_path` names it in
  // errors). The calling thread enters it for the socket() call only.
  static absl::StatusOr<Netlink> OpenInNetns(int netns_fd, absl::string_view netns_path);

  Netlink(Netlink&& other) noexcept;
  Netlink& operator=(Netlink&& other) noexcept;
  Netlink(const Netlink&) = delete;
  Netlink& operator=(const Netlink&) = delete;
  ~Netlink();

  // The link named `name`, or nullopt when there is none.
  absl::StatusOr<std::optional<LinkInfo>> FindLink(absl::string_view name);
  // As FindLink, NOT_FOUND naming the link when there is none.
  absl::StatusOr<LinkInfo> GetLink(absl::string_view name);

  // Creates a bridge with a fixed MAC address (so it does not follow its
  // ports' addresses as they come and go). ALREADY_EXISTS when the name is taken.
  absl::Status CreateBridge(absl::string_view name, unsigned mtu, absl::string_view mac);
  absl::Status CreateVeth(const VethSpec& spec);
  absl::Status SetUp(const LinkInfo& link);
  // Sets the interface alias (IFLA_IFALIAS): the kernel ignores it at creation.
  absl::Status SetAlias(const LinkInfo& link, absl::string_view alias);
  // Sets the bridge-port hairpin flag (IFLA_BRPORT_MODE) of a bridge port.
  absl::Status SetHairpin(const LinkInfo& link, bool on);
  // NOT_FOUND when the link is already gone.
  absl::Status DeleteLink(const LinkInfo& link);

  // Adds `address` to the link. IPv6 addresses skip duplicate address
  // detection so they work at once. ALREADY_EXISTS when it is there.
  absl::Status AddAddress(const LinkInfo& link, const IpPrefix& address);
  // The addresses on link `index` (both families).
  absl::StatusOr<std::vector<IpPrefix>> ListAddresses(int index);
  // ALREADY_EXISTS when the same route is there.
  absl::Status AddRoute(const RouteSpec& route, absl::string_view link_name);

 private:
  explicit Netlink(mnl_socket* sock);

  // Sends `nlh` (NLM_F_REQUEST and NLM_F_ACK are added, a sequence number
  // set) and reads replies until the kernel's ack, error or end of dump.
  // `on_reply` sees every other message. The error names `action` `object`.
  template <typename Fn>
  absl::Status Exchange(nlmsghdr* nlh, absl::string_view action, absl::string_view object,
                        Fn&& on_reply);
  absl::Status Exchange(nlmsghdr* nlh, absl::string_view action, absl::string_view object);
  nlmsghdr* NewMessage(uint16_t type, uint16_t flags);

  mnl_socket* sock_ = nullptr;
  uint32_t portid_ = 0;
  uint32_t seq_ = 0;
  std::unique_ptr<char[]> send_buf_;
  std::unique_ptr<char[]> recv_buf_;
};

// Formats 6 bytes as "aa:bb:cc:dd:ee:ff".
std::string FormatMac(const uint8_t* mac, size_t len);

}  // namespace podshim::cni
