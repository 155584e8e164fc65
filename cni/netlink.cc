#include "cni/netlink.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

#include <libmnl/libmnl.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "runtime/unique_fd.h"

namespace podshim::cni {
namespace {

using runtime::ErrnoError;
using runtime::UniqueFd;

// Large enough for any single link message (stats are not asked for).
constexpr size_t kRecvBufferSize = size_t{64} * 1024;
constexpr size_t kSendBufferSize = size_t{8} * 1024;

}  // namespace

// ---- IpAddress / IpPrefix --------------------------------------------------

absl::StatusOr<IpAddress> IpAddress::Parse(absl::string_view text) {
  std::string s(text);
  IpAddress ip;
  if (inet_pton(AF_INET, s.c_str(), ip.bytes_.data()) == 1) {
    ip.family_ = AF_INET;
    return ip;
  }
  if (inet_pton(AF_INET6, s.c_str(), ip.bytes_.data()) == 1) {
    ip.family_ = AF_INET6;
    return ip;
  }
  return absl::InvalidArgumentError(absl::StrCat("\"", text, "\" is not an IP address"));
}

IpAddress IpAddress::FromBytes(int family, const void* bytes) {
  IpAddress ip;
  ip.family_ = family;
  std::memcpy(ip.bytes_.data(), bytes, family == AF_INET ? 4 : 16);
  return ip;
}

IpAddress IpAddress::Unspecified(int family) {
  IpAddress ip;
  ip.family_ = family;
  return ip;
}

bool IpAddress::IsUnspecified() const {
  return std::all_of(bytes_.begin(), bytes_.end(), [](uint8_t b) { return b == 0; });
}

bool IpAddress::is_v4() const { return family_ == AF_INET; }

size_t IpAddress::size() const {
  if (family_ == AF_INET) return 4;
  if (family_ == AF_INET6) return 16;
  return 0;
}

std::string IpAddress::ToString() const {
  if (family_ == 0) return "";
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(family_, bytes_.data(), buf, sizeof(buf));
  return buf;
}

IpAddress IpAddress::Next() const {
  IpAddress out = *this;
  for (size_t i = size(); i > 0; --i) {
    if (++out.bytes_[i - 1] != 0) break;  // no carry
  }
  return out;
}

IpAddress IpAddress::Prev() const {
  IpAddress out = *this;
  for (size_t i = size(); i > 0; --i) {
    if (out.bytes_[i - 1]-- != 0) break;  // no borrow
  }
  return out;
}

absl::StatusOr<IpPrefix> IpPrefix::Parse(absl::string_view text) {
  size_t slash = text.find('/');
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("\"", text, "\" is not a CIDR (", why, ")"));
  };
  if (slash == absl::string_view::npos) return bad("want address/length");
  absl::StatusOr<IpAddress> ip = IpAddress::Parse(text.substr(0, slash));
  if (!ip.ok()) return bad("bad address");
  absl::string_view len_text = text.substr(slash + 1);
  int len = 0;
  if (len_text.empty() || len_text.size() > 3 || !absl::SimpleAtoi(len_text, &len) || len < 0 ||
      len > static_cast<int>(ip->size() * 8) || len_text[0] == '+' || len_text[0] == '-') {
    return bad("bad prefix length");
  }
  return IpPrefix{*ip, len};
}

IpPrefix IpPrefix::Network() const { return IpPrefix{First(), length}; }

IpAddress IpPrefix::First() const {
  uint8_t b[16] = {};
  std::memcpy(b, address.bytes(), address.size());
  for (size_t i = 0; i < address.size(); ++i) {
    int bits = length - static_cast<int>(i * 8);
    if (bits >= 8) continue;
    b[i] &= bits <= 0 ? 0 : static_cast<uint8_t>(0xff << (8 - bits));
  }
  return IpAddress::FromBytes(address.family(), b);
}

IpAddress IpPrefix::Last() const {
  uint8_t b[16] = {};
  std::memcpy(b, address.bytes(), address.size());
  for (size_t i = 0; i < address.size(); ++i) {
    int bits = length - static_cast<int>(i * 8);
    if (bits >= 8) continue;
    b[i] |= bits <= 0 ? 0xff : static_cast<uint8_t>(0xff >> bits);
  }
  return IpAddress::FromBytes(address.family(), b);
}

bool IpPrefix::Contains(const IpAddress& ip) const {
  if (ip.family() != address.family()) return false;
  return IpPrefix{ip, length}.First() == First();
}

bool IpPrefix::Overlaps(const IpPrefix& other) const {
  if (other.address.family() != address.family()) return false;
  return Contains(other.First()) || other.Contains(First());
}

std::string IpPrefix::ToString() const { return absl::StrCat(address.ToString(), "/", length); }

std::string FormatMac(const uint8_t* mac, size_t len) {
  std::string out;
  for (size_t i = 0; i < len; ++i) {
    char part[4];
    std::snprintf(part, sizeof(part), i == 0 ? "%02x" : ":%02x", mac[i]);
    out += part;
  }
  return out;
}

// ---- Netlink ---------------------------------------------------------------

namespace {

// The kernel's extended-ack message in an NLMSG_ERROR, if any.
std::string ExtAckMessage(const nlmsghdr* nlh) {
  if ((nlh->nlmsg_flags & NLM_F_ACK_TLVS) == 0) return "";
  const auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
  size_t offset = sizeof(nlmsgerr);
  if ((nlh->nlmsg_flags & NLM_F_CAPPED) == 0) offset += err->msg.nlmsg_len - sizeof(nlmsghdr);
  size_t payload_len = mnl_nlmsg_get_payload_len(nlh);
  if (offset >= payload_len) return "";
  std::string text;
  auto cb = [](const nlattr* attr, void* data) -> int {
    if (mnl_attr_get_type(attr) == NLMSGERR_ATTR_MSG &&
        mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) >= 0) {
      *static_cast<std::string*>(data) = mnl_attr_get_str(attr);
    }
    return MNL_CB_OK;
  };
  mnl_attr_parse_payload(static_cast<const char*>(mnl_nlmsg_get_payload(nlh)) + offset,
                         payload_len - offset, cb, &text);
  return text;
}

absl::Status NetlinkError(int err, absl::string_view action, absl::string_view object,
                          const std::string& extack) {
  absl::Status s = ErrnoError(err, action, object);
  if (extack.empty()) return s;
  return {s.code(), absl::StrCat(s.message(), ": ", extack)};
}

LinkInfo ParseLink(const nlmsghdr* nlh) {
  const auto* ifi = static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(nlh));
  LinkInfo link;
  link.index = ifi->ifi_index;
  link.flags = ifi->ifi_flags;
  auto cb = [](const nlattr* attr, void* data) -> int {
    auto* out = static_cast<LinkInfo*>(data);
    switch (mnl_attr_get_type(attr)) {
      case IFLA_IFNAME:
        if (mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) >= 0) out->name = mnl_attr_get_str(attr);
        break;
      case IFLA_MTU:
        if (mnl_attr_validate(attr, MNL_TYPE_U32) >= 0) out->mtu = mnl_attr_get_u32(attr);
        break;
      case IFLA_IFALIAS:
        out->alias = std::string(static_cast<const char*>(mnl_attr_get_payload(attr)),
                                 strnlen(static_cast<const char*>(mnl_attr_get_payload(attr)),
                                         mnl_attr_get_payload_len(attr)));
        break;
      case IFLA_MASTER:
        if (mnl_attr_validate(attr, MNL_TYPE_U32) >= 0) {
          out->master = static_cast<int>(mnl_attr_get_u32(attr));
        }
        break;
      case IFLA_ADDRESS:
        out->mac = FormatMac(static_cast<const uint8_t*>(mnl_attr_get_payload(attr)),
                             mnl_attr_get_payload_len(attr));
        break;
      case IFLA_LINKINFO: {
        auto info_cb = [](const nlattr* nested, void* kind) -> int {
          if (mnl_attr_get_type(nested) == IFLA_INFO_KIND &&
              mnl_attr_validate(nested, MNL_TYPE_STRING) >= 0) {
            *static_cast<std::string*>(kind) =
                std::string(static_cast<const char*>(mnl_attr_get_payload(nested)),
                            strnlen(static_cast<const char*>(mnl_attr_get_payload(nested)),
                                    mnl_attr_get_payload_len(nested)));
          }
          return MNL_CB_OK;
        };
        mnl_attr_parse_nested(attr, info_cb, &out->kind);
        break;
      }
      default:
        break;
    }
    return MNL_CB_OK;
  };
  mnl_attr_parse(nlh, sizeof(ifinfomsg), cb, &link);
  return link;
}

// Parses "aa:bb:cc:dd:ee:ff".
bool ParseMac(absl::string_view text, uint8_t out[6]) {
  if (text.size() != 17) return false;
  for (size_t i = 0; i < 6; ++i) {
    if (i > 0 && text[i * 3 - 1] != ':') return false;
    int value = 0;
    if (!absl::SimpleHexAtoi(text.substr(i * 3, 2), &value)) return false;
    out[i] = static_cast<uint8_t>(value);
  }
  return true;
}

}  // namespace

Netlink::Netlink(mnl_socket* sock)
    : sock_(sock),
      portid_(mnl_socket_get_portid(sock)),
      send_buf_(std::make_unique_for_overwrite<char[]>(kSendBufferSize)),
      recv_buf_(std::make_unique_for_overwrite<char[]>(kRecvBufferSize)) {}

Netlink::Netlink(Netlink&& other) noexcept
    : sock_(std::exchange(other.sock_, nullptr)),
      portid_(other.portid_),
      seq_(other.seq_),
      send_buf_(std::move(other.send_buf_)),
      recv_buf_(std::move(other.recv_buf_)) {}

Netlink& Netlink::operator=(Netlink&& other) noexcept {
  if (this != &other) {
    if (sock_ != nullptr) mnl_socket_close(sock_);
    sock_ = std::exchange(other.sock_, nullptr);
    portid_ = other.portid_;
    seq_ = other.seq_;
    send_buf_ = std::move(other.send_buf_);
    recv_buf_ = std::move(other.recv_buf_);
  }
  return *this;
}

Netlink::~Netlink() {
  if (sock_ != nullptr) mnl_socket_close(sock_);
}

absl::StatusOr<Netlink> Netlink::Open() {
  mnl_socket* sock = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
  if (sock == nullptr) return ErrnoError(errno, "open", "rtnetlink socket");
  if (mnl_socket_bind(sock, 0, MNL_SOCKET_AUTOPID) < 0) {
    int err = errno;
    mnl_socket_close(sock);
    return ErrnoError(err, "bind", "rtnetlink socket");
  }
  // Ask for the kernel's error text, and not for a copy of our request with it.
  int one = 1;
  mnl_socket_setsockopt(sock, NETLINK_EXT_ACK, &one, sizeof(one));
  mnl_socket_setsockopt(sock, NETLINK_CAP_ACK, &one, sizeof(one));
  return Netlink(sock);
}

absl::StatusOr<Netlink> Netlink::OpenInNetns(int netns_fd, absl::string_view netns_path) {
  UniqueFd self(open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  if (!self.valid()) return ErrnoError(errno, "open", "/proc/thread-self/ns/net");
  if (setns(netns_fd, CLONE_NEWNET) != 0) return ErrnoError(errno, "enter netns", netns_path);
  absl::StatusOr<Netlink> nl = Open();
  if (setns(self.get(), CLONE_NEWNET) != 0) {
    // Carrying on in the pod's namespace would configure the wrong host.
    absl::string_view err = runtime::ErrnoName(errno);
    std::fprintf(stderr, "podshim: cannot return to the original network namespace: %.*s\n",
                 static_cast<int>(err.size()), err.data());
    std::abort();
  }
  if (!nl.ok()) {
    return absl::Status(nl.status().code(),
                        absl::StrCat(nl.status().message(), " in netns ", netns_path));
  }
  return nl;
}

nlmsghdr* Netlink::NewMessage(uint16_t type, uint16_t flags) {
  // mnl zeroes the header and every extra header and attribute it appends.
  nlmsghdr* nlh = mnl_nlmsg_put_header(send_buf_.get());
  nlh->nlmsg_type = type;
  nlh->nlmsg_flags = NLM_F_REQUEST | flags;
  return nlh;
}

template <typename Fn>
absl::Status Netlink::Exchange(nlmsghdr* nlh, absl::string_view action, absl::string_view object,
                               Fn&& on_reply) {
  const bool dump = (nlh->nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP;
  if (!dump) nlh->nlmsg_flags |= NLM_F_ACK;
  nlh->nlmsg_seq = ++seq_;
  if (mnl_socket_sendto(sock_, nlh, nlh->nlmsg_len) < 0) {
    return ErrnoError(errno, absl::StrCat("netlink send (", action, ")"), object);
  }
  for (;;) {
    ssize_t n = mnl_socket_recvfrom(sock_, recv_buf_.get(), kRecvBufferSize);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, absl::StrCat("netlink receive (", action, ")"), object);
    }
    int len = static_cast<int>(n);
    for (const auto* msg = reinterpret_cast<const nlmsghdr*>(recv_buf_.get());
         mnl_nlmsg_ok(msg, len); msg = mnl_nlmsg_next(msg, &len)) {
      if (msg->nlmsg_seq != seq_ || msg->nlmsg_pid != portid_) continue;  // not ours
      if (msg->nlmsg_type == NLMSG_ERROR) {
        const auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(msg));
        if (err->error == 0) return absl::OkStatus();
        return NetlinkError(-err->error, action, object, ExtAckMessage(msg));
      }
      if (msg->nlmsg_type == NLMSG_DONE) {
        if (mnl_nlmsg_get_payload_len(msg) >= sizeof(int)) {
          int err = *static_cast<const int*>(mnl_nlmsg_get_payload(msg));
          if (err < 0) return NetlinkError(-err, action, object, "");
        }
        return absl::OkStatus();
      }
      on_reply(msg);
    }
  }
}

absl::Status Netlink::Exchange(nlmsghdr* nlh, absl::string_view action, absl::string_view object) {
  return Exchange(nlh, action, object, [](const nlmsghdr*) {});
}

absl::StatusOr<std::optional<LinkInfo>> Netlink::FindLink(absl::string_view name) {
  nlmsghdr* nlh = NewMessage(RTM_GETLINK, 0);
  auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifi->ifi_family = AF_UNSPEC;
  std::string n(name);
  mnl_attr_put_strz(nlh, IFLA_IFNAME, n.c_str());
  mnl_attr_put_u32(nlh, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
  std::optional<LinkInfo> found;
  absl::Status s = Exchange(nlh, "get link", name, [&](const nlmsghdr* msg) {
    if (msg->nlmsg_type == RTM_NEWLINK) found = ParseLink(msg);
  });
  if (absl::IsNotFound(s)) return std::optional<LinkInfo>();  // ENODEV
  if (!s.ok()) return s;
  return found;
}

absl::StatusOr<LinkInfo> Netlink::GetLink(absl::string_view name) {
  absl::StatusOr<std::optional<LinkInfo>> link = FindLink(name);
  if (!link.ok()) return link.status();
  if (!link->has_value()) {
    return absl::NotFoundError(absl::StrCat("link `", name, "` does not exist"));
  }
  return **link;
}

absl::Status Netlink::CreateBridge(absl::string_view name, unsigned mtu, absl::string_view mac) {
  nlmsghdr* nlh = NewMessage(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
  auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_flags = IFF_UP;
  ifi->ifi_change = IFF_UP;
  std::string n(name);
  mnl_attr_put_strz(nlh, IFLA_IFNAME, n.c_str());
  if (mtu != 0) mnl_attr_put_u32(nlh, IFLA_MTU, mtu);
  uint8_t hw[6];
  if (!mac.empty()) {
    if (!ParseMac(mac, hw)) return absl::InvalidArgumentError(absl::StrCat("bad MAC ", mac));
    mnl_attr_put(nlh, IFLA_ADDRESS, sizeof(hw), hw);
  }
  nlattr* info = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
  mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "bridge");
  mnl_attr_nest_end(nlh, info);
  return Exchange(nlh, "create bridge", name);
}

absl::Status Netlink::CreateVeth(const VethSpec& spec) {
  nlmsghdr* nlh = NewMessage(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
  auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifi->ifi_family = AF_UNSPEC;
  if (spec.up) {
    ifi->ifi_flags = IFF_UP;
    ifi->ifi_change = IFF_UP;
  }
  mnl_attr_put_strz(nlh, IFLA_IFNAME, spec.name.c_str());
  if (spec.mtu != 0) mnl_attr_put_u32(nlh, IFLA_MTU, spec.mtu);
  if (spec.master != 0) mnl_attr_put_u32(nlh, IFLA_MASTER, static_cast<uint32_t>(spec.master));

  nlattr* linkinfo = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
  mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "veth");
  nlattr* data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
  nlattr* peer = mnl_attr_nest_start(nlh, VETH_INFO_PEER);
  // The peer's attributes follow its own ifinfomsg header.
  auto* peer_ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  peer_ifi->ifi_family = AF_UNSPEC;
  // The peer cannot be brought up here: the kernel opens it before the two
  // ends know each other, and veth refuses that (ENOTCONN).
  mnl_attr_put_strz(nlh, IFLA_IFNAME, spec.peer_name.c_str());
  if (spec.mtu != 0) mnl_attr_put_u32(nlh, IFLA_MTU, spec.mtu);
  if (spec.peer_netns_fd >= 0) {
    mnl_attr_put_u32(nlh, IFLA_NET_NS_FD, static_cast<uint32_t>(spec.peer_netns_fd));
  }
  mnl_attr_nest_end(nlh, peer);
  mnl_attr_nest_end(nlh, data);
  mnl_attr_nest_end(nlh, linkinfo);
  return Exchange(nlh, "create veth pair", absl::StrCat(spec.name, "/", spec.peer_name));
}

absl::Status Netlink::SetUp(const LinkInfo& link) {
  nlmsghdr* nlh = NewMessage(RTM_NEWLINK, 0);
  auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = link.index;
  ifi->ifi_flags = IFF_UP;
  ifi->ifi_change = IFF_UP;
  return Exchange(nlh, "set up", link.name);
}

absl::Status Netlink::SetAlias(const LinkInfo& link, absl::string_view alias) {
  nlmsghdr* nlh = NewMessage(RTM_NEWLINK, 0);
  auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = link.index;
  mnl_attr_put(nlh, IFLA_IFALIAS, alias.size(), alias.data());
  return Exchange(nlh, "set alias of", link.name);
}

absl::Status Netlink::SetHairpin(const LinkInfo& link, bool on) {
  nlmsghdr* nlh = NewMessage(RTM_SETLINK, 0);
  auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifi->ifi_family = AF_BRIDGE;
  ifi->ifi_index = link.index;
  nlattr* protinfo = mnl_attr_nest_start(nlh, IFLA_PROTINFO);
  mnl_attr_put_u8(nlh, IFLA_BRPORT_MODE, on ? 1 : 0);
  mnl_attr_nest_end(nlh, protinfo);
  return Exchange(nlh, "set hairpin mode of bridge port", link.name);
}

absl::Status Netlink::DeleteLink(const LinkInfo& link) {
  nlmsghdr* nlh = NewMessage(RTM_DELLINK, 0);
  auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = link.index;
  return Exchange(nlh, "delete link", link.name);
}

absl::Status Netlink::AddAddress(const LinkInfo& link, const IpPrefix& address) {
  nlmsghdr* nlh = NewMessage(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
  auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifaddrmsg)));
  const IpAddress& ip = address.address;
  ifa->ifa_family = static_cast<uint8_t>(ip.family());
  ifa->ifa_prefixlen = static_cast<uint8_t>(address.length);
  ifa->ifa_scope = RT_SCOPE_UNIVERSE;
  ifa->ifa_index = static_cast<uint32_t>(link.index);
  mnl_attr_put(nlh, IFA_LOCAL, ip.size(), ip.bytes());
  mnl_attr_put(nlh, IFA_ADDRESS, ip.size(), ip.bytes());
  if (ip.is_v4()) {
    if (address.length < 31) {
      IpAddress brd = address.Last();
      mnl_attr_put(nlh, IFA_BROADCAST, brd.size(), brd.bytes());
    }
  } else {
    ifa->ifa_flags = IFA_F_NODAD;
    mnl_attr_put_u32(nlh, IFA_FLAGS, IFA_F_NODAD);
  }
  return Exchange(nlh, "add address " + address.ToString() + " to", link.name);
}

absl::StatusOr<std::vector<IpPrefix>> Netlink::ListAddresses(int index) {
  nlmsghdr* nlh = NewMessage(RTM_GETADDR, NLM_F_DUMP);
  auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifaddrmsg)));
  ifa->ifa_family = AF_UNSPEC;
  std::vector<IpPrefix> out;
  absl::Status s =
      Exchange(nlh, "list addresses", absl::StrCat("ifindex ", index), [&](const nlmsghdr* msg) {
        if (msg->nlmsg_type != RTM_NEWADDR) return;
        const auto* got = static_cast<const ifaddrmsg*>(mnl_nlmsg_get_payload(msg));
        if (static_cast<int>(got->ifa_index) != index) return;
        struct Parsed {
          int family;
          const void* local = nullptr;
          const void* address = nullptr;
        } parsed{got->ifa_family};
        auto cb = [](const nlattr* attr, void* data) -> int {
          auto* p = static_cast<Parsed*>(data);
          size_t want = p->family == AF_INET ? 4 : 16;
          if (mnl_attr_get_payload_len(attr) != want) return MNL_CB_OK;
          if (mnl_attr_get_type(attr) == IFA_LOCAL) p->local = mnl_attr_get_payload(attr);
          if (mnl_attr_get_type(attr) == IFA_ADDRESS) p->address = mnl_attr_get_payload(attr);
          return MNL_CB_OK;
        };
        mnl_attr_parse(msg, sizeof(ifaddrmsg), cb, &parsed);
        // IFA_LOCAL is the interface's own address on point-to-point links.
        const void* bytes = parsed.local != nullptr ? parsed.local : parsed.address;
        if (bytes == nullptr || (got->ifa_family != AF_INET && got->ifa_family != AF_INET6)) {
          return;
        }
        out.push_back({IpAddress::FromBytes(got->ifa_family, bytes), got->ifa_prefixlen});
      });
  if (!s.ok()) return s;
  return out;
}

absl::Status Netlink::AddRoute(const RouteSpec& route, absl::string_view link_name) {
  nlmsghdr* nlh = NewMessage(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
  auto* rtm = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(rtmsg)));
  IpPrefix dst = route.dst.Network();
  rtm->rtm_family = static_cast<uint8_t>(dst.address.family());
  rtm->rtm_dst_len = static_cast<uint8_t>(dst.length);
  rtm->rtm_table = RT_TABLE_MAIN;
  rtm->rtm_protocol = RTPROT_BOOT;
  rtm->rtm_scope = route.gateway.has_value() ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
  rtm->rtm_type = RTN_UNICAST;
  if (dst.length > 0) mnl_attr_put(nlh, RTA_DST, dst.address.size(), dst.address.bytes());
  if (route.gateway.has_value()) {
    mnl_attr_put(nlh, RTA_GATEWAY, route.gateway->size(), route.gateway->bytes());
  }
  if (route.oif != 0) mnl_attr_put_u32(nlh, RTA_OIF, static_cast<uint32_t>(route.oif));
  std::string what = dst.ToString();
  if (route.gateway.has_value()) absl::StrAppend(&what, " via ", route.gateway->ToString());
  return Exchange(nlh, "add route " + what + " on", link_name);
}

}  // namespace podshim::cni
