#include "cni/ipam.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "runtime/files.h"

namespace podshim::cni {
namespace {

using runtime::ErrnoError;
using runtime::UniqueFd;

constexpr char kLockFile[] = "lock";
constexpr char kLastReservedPrefix[] = "last_reserved_ip.";

absl::Status Invalid(absl::string_view message) { return CniError(kErrInvalidConfig, message); }

absl::StatusOr<IpAddress> ParseIpKey(const nlohmann::json& obj, const char* key,
                                     absl::string_view where) {
  absl::StatusOr<std::optional<std::string>> text = OptionalString(obj, key, where);
  if (!text.ok()) return text.status();
  if (!text->has_value()) return IpAddress();
  absl::StatusOr<IpAddress> ip = IpAddress::Parse(**text);
  if (!ip.ok()) return Invalid(absl::StrCat(KeyPath(where, key), ": ", ip.status().message()));
  return ip;
}

// One range object: {"subnet", "rangeStart", "rangeEnd", "gateway"}, with
// the defaults filled in and checked against the subnet.
absl::StatusOr<IpamRange> ParseRange(const nlohmann::json& obj, absl::string_view where) {
  if (!obj.is_object()) return Invalid(absl::StrCat(where, " must be an object"));
  absl::StatusOr<std::optional<std::string>> subnet_text = OptionalString(obj, "subnet", where);
  if (!subnet_text.ok()) return subnet_text.status();
  if (!subnet_text->has_value())
    return Invalid(absl::StrCat(KeyPath(where, "subnet"), " is missing"));
  absl::StatusOr<IpPrefix> subnet = IpPrefix::Parse(**subnet_text);
  if (!subnet.ok()) {
    return Invalid(absl::StrCat(KeyPath(where, "subnet"), ": ", subnet.status().message()));
  }
  IpamRange r;
  r.subnet = subnet->Network();
  const bool v4 = r.subnet.address.is_v4();
  // At least one address besides the network address, gateway (and IPv4
  // broadcast address) must remain.
  if (r.subnet.length > (v4 ? 30 : 126)) {
    return Invalid(absl::StrCat(KeyPath(where, "subnet"), " ", r.subnet.ToString(),
                                " is too small: its prefix length must be at most ",
                                v4 ? 30 : 126));
  }
  IpAddress first_host = r.subnet.First().Next();
  IpAddress last_host = v4 ? r.subnet.Last().Prev() : r.subnet.Last();

  struct Member {
    const char* key;
    IpAddress* dest;
    IpAddress fallback;
  };
  for (Member m :
       {Member{"rangeStart", &r.range_start, first_host},
        Member{"rangeEnd", &r.range_end, last_host}, Member{"gateway", &r.gateway, first_host}}) {
    absl::StatusOr<IpAddress> ip = ParseIpKey(obj, m.key, where);
    if (!ip.ok()) return ip.status();
    if (!ip->valid()) {
      *m.dest = m.fallback;
      continue;
    }
    if (!r.subnet.Contains(*ip)) {
      return Invalid(absl::StrCat(KeyPath(where, m.key), " ", ip->ToString(), " is not in subnet ",
                                  r.subnet.ToString()));
    }
    *m.dest = *ip;
  }
  if (r.range_end < r.range_start) {
    return Invalid(absl::StrCat(KeyPath(where, "rangeEnd"), " ", r.range_end.ToString(),
                                " is below rangeStart ", r.range_start.ToString()));
  }
  return r;
}

absl::StatusOr<IpamRangeSet> ParseRangeSet(const nlohmann::json& list, absl::string_view where) {
  if (!list.is_array()) return Invalid(absl::StrCat(where, " must be a list of ranges"));
  if (list.empty()) return Invalid(absl::StrCat(where, " is empty"));
  IpamRangeSet set;
  for (size_t i = 0; i < list.size(); ++i) {
    absl::StatusOr<IpamRange> r = ParseRange(list[i], absl::StrCat(where, "[", i, "]"));
    if (!r.ok()) return r.status();
    if (!set.ranges.empty() &&
        r->subnet.address.family() != set.ranges[0].subnet.address.family()) {
      return Invalid(absl::StrCat(where, "[", i, "] mixes IPv4 and IPv6 in one range set"));
    }
    set.ranges.push_back(*std::move(r));
  }
  return set;
}

bool RangesOverlap(const IpamRange& a, const IpamRange& b) {
  if (a.range_start.family() != b.range_start.family()) return false;
  return !(a.range_end < b.range_start || b.range_end < a.range_start);
}

// Reads "<containerid>\n<ifname>" (host-local writes "\r\n"; accepted too).
IpamOwner ParseOwner(absl::string_view text) {
  IpamOwner owner;
  size_t nl = text.find('\n');
  owner.container_id = std::string(absl::StripAsciiWhitespace(text.substr(0, nl)));
  if (nl != absl::string_view::npos) {
    owner.ifname = std::string(absl::StripAsciiWhitespace(text.substr(nl + 1)));
  }
  return owner;
}

absl::StatusOr<std::string> ReadAt(int dir_fd, const char* name, const std::string& dir) {
  UniqueFd fd(openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) return ErrnoError(errno, "open", absl::StrCat(dir, "/", name));
  std::string out;
  char buf[512];
  for (;;) {
    ssize_t n = read(fd.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError(errno, "read", absl::StrCat(dir, "/", name));
    if (n == 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

// Creates `name` in `dir_fd` holding `data`; fails if it exists.
absl::Status CreateNew(int dir_fd, const std::string& name, absl::string_view data,
                       const std::string& dir) {
  UniqueFd fd(
      openat(dir_fd, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644));
  if (!fd.valid()) return ErrnoError(errno, "create", absl::StrCat(dir, "/", name));
  return runtime::WriteAll(fd.get(), data, absl::StrCat(dir, "/", name));
}

}  // namespace

absl::Status IpamStore::WriteLastReserved(const std::string& name, const std::string& text) {
  // Rewritten in place, never truncated to zero: on ext4 a truncate-and-
  // rewrite makes close() wait for the data (auto_da_alloc), a millisecond.
  UniqueFd fd(
      openat(dir_fd_.get(), name.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644));
  const std::string path = absl::StrCat(dir_, "/", name);
  if (!fd.valid()) return CniError(kErrIo, ErrnoError(errno, "open", path).message());
  if (pwrite(fd.get(), text.data(), text.size(), 0) != static_cast<ssize_t>(text.size()) ||
      ftruncate(fd.get(), static_cast<off_t>(text.size())) != 0) {
    return CniError(kErrIo, ErrnoError(errno, "write", path).message());
  }
  return absl::OkStatus();
}

absl::StatusOr<IpamConfig> ParseIpamConfig(const nlohmann::json& conf) {
  IpamConfig config;
  absl::StatusOr<std::optional<std::string>> name = OptionalString(conf, "name", "");
  if (!name.ok()) return name.status();
  if (!name->has_value()) return Invalid("\"name\" is missing (it names the IPAM state directory)");
  if (!IsValidContainerId(**name)) {
    return Invalid(absl::StrCat("\"name\" \"", **name,
                                "\" must be letters, digits, '_', '.' or '-' and start with a "
                                "letter or digit"));
  }
  config.network = **name;

  auto ipam_it = conf.find("ipam");
  if (ipam_it == conf.end() || ipam_it->is_null()) return Invalid("ipam is missing");
  if (!ipam_it->is_object()) return Invalid("ipam must be an object");
  const nlohmann::json& ipam = *ipam_it;

  if (auto ranges = ipam.find("ranges"); ranges != ipam.end() && !ranges->is_null()) {
    if (!ranges->is_array()) return Invalid("ipam.ranges must be a list of range sets");
    if (ranges->empty()) return Invalid("ipam.ranges is empty");
    for (size_t i = 0; i < ranges->size(); ++i) {
      absl::StatusOr<IpamRangeSet> set =
          ParseRangeSet((*ranges)[i], absl::StrCat("ipam.ranges[", i, "]"));
      if (!set.ok()) return set.status();
      config.range_sets.push_back(*std::move(set));
    }
  } else if (ipam.contains("subnet")) {
    absl::StatusOr<IpamRange> r = ParseRange(ipam, "ipam");
    if (!r.ok()) return r.status();
    config.range_sets.push_back(IpamRangeSet{{*std::move(r)}});
  } else {
    return Invalid("ipam.ranges is missing (want [[{\"subnet\": \"10.88.0.0/16\"}]])");
  }

  // No address may belong to two ranges.
  std::vector<std::pair<std::string, const IpamRange*>> all;
  for (size_t i = 0; i < config.range_sets.size(); ++i) {
    for (size_t j = 0; j < config.range_sets[i].ranges.size(); ++j) {
      all.emplace_back(absl::StrCat("ipam.ranges[", i, "][", j, "]"),
                       &config.range_sets[i].ranges[j]);
    }
  }
  for (size_t a = 0; a < all.size(); ++a) {
    for (size_t b = a + 1; b < all.size(); ++b) {
      if (RangesOverlap(*all[a].second, *all[b].second)) {
        return Invalid(absl::StrCat(all[b].first, " overlaps ", all[a].first));
      }
    }
  }

  if (auto routes = ipam.find("routes"); routes != ipam.end() && !routes->is_null()) {
    if (!routes->is_array()) return Invalid("ipam.routes must be a list");
    for (size_t i = 0; i < routes->size(); ++i) {
      const nlohmann::json& r = (*routes)[i];
      std::string where = absl::StrCat("ipam.routes[", i, "]");
      if (!r.is_object()) return Invalid(absl::StrCat(where, " must be an object"));
      absl::StatusOr<std::optional<std::string>> dst = OptionalString(r, "dst", where);
      if (!dst.ok()) return dst.status();
      if (!dst->has_value()) return Invalid(absl::StrCat(where, ".dst is missing"));
      absl::StatusOr<IpPrefix> prefix = IpPrefix::Parse(**dst);
      if (!prefix.ok()) {
        return Invalid(absl::StrCat(where, ".dst: ", prefix.status().message()));
      }
      CniRoute route{prefix->Network(), std::nullopt};
      absl::StatusOr<IpAddress> gw = ParseIpKey(r, "gw", where);
      if (!gw.ok()) return gw.status();
      if (gw->valid()) {
        if (gw->family() != route.dst.address.family()) {
          return Invalid(absl::StrCat(where, ".gw ", gw->ToString(),
                                      " is not of the family of dst ", route.dst.ToString()));
        }
        route.gw = *gw;
      }
      config.routes.push_back(route);
    }
  }

  absl::StatusOr<std::optional<std::string>> data_dir = OptionalString(ipam, "dataDir", "ipam");
  if (!data_dir.ok()) return data_dir.status();
  if (data_dir->has_value()) {
    if (!absl::StartsWith(**data_dir, "/")) {
      return Invalid(absl::StrCat("ipam.dataDir \"", **data_dir, "\" must be an absolute path"));
    }
    config.data_dir = **data_dir;
  }
  if (auto dns = ipam.find("dns"); dns != ipam.end()) {
    absl::StatusOr<CniDns> parsed = DnsFromJson(*dns, "ipam.dns");
    if (!parsed.ok()) return parsed.status();
    config.dns = *std::move(parsed);
  }
  return config;
}

// ---- IpamStore --------------------------------------------------------------

absl::StatusOr<IpamStore> IpamStore::Open(const IpamConfig& config) {
  std::string dir = absl::StrCat(config.data_dir, "/", config.network);
  if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    if (absl::Status s = runtime::MakeDirs(dir, 0755); !s.ok()) {
      return CniError(kErrIo, absl::StrCat("IPAM state directory: ", s.message()));
    }
  }
  UniqueFd dir_fd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir_fd.valid()) return CniError(kErrIo, ErrnoError(errno, "open", dir).message());
  UniqueFd lock_fd(
      openat(dir_fd.get(), kLockFile, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!lock_fd.valid()) {
    return CniError(kErrIo, ErrnoError(errno, "open", absl::StrCat(dir, "/", kLockFile)).message());
  }
  return IpamStore(config, std::move(dir), std::move(dir_fd), std::move(lock_fd));
}

absl::Status IpamStore::Lock() {
  while (flock(lock_fd_.get(), LOCK_EX) != 0) {
    if (errno != EINTR) {
      return CniError(kErrIo,
                      ErrnoError(errno, "lock", absl::StrCat(dir_, "/", kLockFile)).message());
    }
  }
  return absl::OkStatus();
}

void IpamStore::Unlock() { flock(lock_fd_.get(), LOCK_UN); }

absl::StatusOr<std::map<IpAddress, IpamOwner>> IpamStore::ScanLocked() {
  // A fresh descriptor: readdir on a shared one would need rewinding.
  int fd = openat(dir_fd_.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return CniError(kErrIo, ErrnoError(errno, "open", dir_).message());
  DIR* d = fdopendir(fd);
  if (d == nullptr) {
    int err = errno;
    close(fd);
    return CniError(kErrIo, ErrnoError(err, "read directory", dir_).message());
  }
  std::map<IpAddress, IpamOwner> out;
  absl::Status status;
  errno = 0;
  while (dirent* e = readdir(d)) {  // NOLINT(concurrency-mt-unsafe): one DIR per call
    if (e->d_name[0] == '.' || e->d_type == DT_DIR) continue;
    absl::StatusOr<IpAddress> ip = IpAddress::Parse(e->d_name);
    if (!ip.ok()) continue;  // lock, last_reserved_ip.N, foreign files
    absl::StatusOr<std::string> text = ReadAt(dir_fd_.get(), e->d_name, dir_);
    if (!text.ok()) {
      if (absl::IsNotFound(text.status())) continue;
      status = CniError(kErrIo, text.status().message());
      break;
    }
    out.emplace(*ip, ParseOwner(*text));
  }
  closedir(d);
  if (!status.ok()) return status;
  return out;
}

const IpAddress* IpamStore::Held(const std::map<IpAddress, IpamOwner>& allocations,
                                 const IpamRangeSet& set, const IpamOwner& owner) {
  for (const auto& [ip, who] : allocations) {
    if (who != owner) continue;
    for (const IpamRange& r : set.ranges) {
      if (r.InRange(ip)) return &ip;
    }
  }
  return nullptr;
}

bool IpamStore::IsReserved(const IpamRange& range, const IpAddress& ip) const {
  if (ip == range.subnet.First()) return true;
  if (ip.is_v4() && ip == range.subnet.Last()) return true;
  for (const IpamRangeSet& set : config_.range_sets) {
    for (const IpamRange& r : set.ranges) {
      if (r.gateway == ip) return true;
    }
  }
  return false;
}

absl::StatusOr<IpAddress> IpamStore::PickFree(size_t set_index,
                                              const std::map<IpAddress, IpamOwner>& allocations) {
  const IpamRangeSet& set = config_.range_sets[set_index];
  const size_t n = set.ranges.size();

  // Start one past the last address this set handed out, else at the start.
  size_t r = 0;
  IpAddress cur = set.ranges[0].range_start;
  auto advance = [&]() {
    if (cur == set.ranges[r].range_end) {
      r = (r + 1) % n;
      cur = set.ranges[r].range_start;
    } else {
      cur = cur.Next();
    }
  };
  std::string last_name = absl::StrCat(kLastReservedPrefix, set_index);
  if (absl::StatusOr<std::string> last = ReadAt(dir_fd_.get(), last_name.c_str(), dir_);
      last.ok()) {
    absl::StatusOr<IpAddress> ip = IpAddress::Parse(absl::StripAsciiWhitespace(*last));
    for (size_t i = 0; ip.ok() && i < n; ++i) {
      if (set.ranges[i].InRange(*ip)) {
        r = i;
        cur = *ip;
        advance();
        break;
      }
    }
  }

  // Every candidate is reserved, taken or free, so this loop ends at the
  // first free address, after visiting at most (taken + reserved + 1)
  // candidates, or after going once around a full set.
  const size_t first_range = r;
  const IpAddress first = cur;
  do {
    if (!IsReserved(set.ranges[r], cur) && allocations.find(cur) == allocations.end()) {
      if (absl::Status s = WriteLastReserved(last_name, cur.ToString()); !s.ok()) return s;
      return cur;
    }
    advance();
  } while (!(r == first_range && cur == first));

  std::string ranges;
  for (const IpamRange& range : set.ranges) {
    absl::StrAppend(&ranges, ranges.empty() ? "" : ", ", range.range_start.ToString(), "-",
                    range.range_end.ToString());
  }
  return CniError(kErrAddressesExhausted,
                  absl::StrCat("no free address left in ipam.ranges[", set_index, "] (", ranges,
                               ") of network \"", config_.network, "\""));
}

CniIp IpamStore::IpFor(const IpamRangeSet& set, const IpAddress& ip) const {
  for (const IpamRange& r : set.ranges) {
    if (r.InRange(ip)) return CniIp{IpPrefix{ip, r.subnet.length}, r.gateway, std::nullopt};
  }
  return CniIp{IpPrefix{ip, static_cast<int>(ip.size() * 8)}, std::nullopt, std::nullopt};
}

CniResult IpamStore::ResultFor(std::vector<CniIp> ips) const {
  CniResult result;
  result.ips = std::move(ips);
  result.routes = config_.routes;
  result.dns = config_.dns;
  return result;
}

absl::StatusOr<CniResult> IpamStore::Allocate(const IpamOwner& owner) {
  if (absl::Status s = Lock(); !s.ok()) return s;
  absl::StatusOr<std::map<IpAddress, IpamOwner>> allocations = ScanLocked();
  if (!allocations.ok()) {
    Unlock();
    return allocations.status();
  }
  const std::string content = absl::StrCat(owner.container_id, "\n", owner.ifname);
  std::vector<CniIp> ips;
  std::vector<IpAddress> created;
  absl::Status failure;
  for (size_t i = 0; i < config_.range_sets.size(); ++i) {
    const IpamRangeSet& set = config_.range_sets[i];
    if (const IpAddress* held = Held(*allocations, set, owner); held != nullptr) {
      ips.push_back(IpFor(set, *held));
      continue;
    }
    absl::StatusOr<IpAddress> ip = PickFree(i, *allocations);
    if (!ip.ok()) {
      failure = ip.status();
      break;
    }
    // O_EXCL: the lock makes a clash impossible among podshim-ipam users;
    // this also refuses a file some other tool put there.
    if (absl::Status s = CreateNew(dir_fd_.get(), ip->ToString(), content, dir_); !s.ok()) {
      failure = CniError(kErrIo, s.message());
      break;
    }
    created.push_back(*ip);
    allocations->emplace(*ip, owner);
    ips.push_back(IpFor(set, *ip));
  }
  if (!failure.ok()) {
    for (const IpAddress& ip : created) unlinkat(dir_fd_.get(), ip.ToString().c_str(), 0);
  }
  Unlock();
  if (!failure.ok()) return failure;
  return ResultFor(std::move(ips));
}

absl::Status IpamStore::Release(const IpamOwner& owner) {
  if (absl::Status s = Lock(); !s.ok()) return s;
  absl::StatusOr<std::map<IpAddress, IpamOwner>> allocations = ScanLocked();
  absl::Status status = allocations.status();
  if (allocations.ok()) {
    for (const auto& [ip, who] : *allocations) {
      if (who != owner) continue;
      std::string name = ip.ToString();
      if (unlinkat(dir_fd_.get(), name.c_str(), 0) != 0 && errno != ENOENT) {
        status =
            CniError(kErrIo, ErrnoError(errno, "remove", absl::StrCat(dir_, "/", name)).message());
      }
    }
  }
  Unlock();
  return status;
}

absl::StatusOr<CniResult> IpamStore::Check(const IpamOwner& owner) {
  if (absl::Status s = Lock(); !s.ok()) return s;
  absl::StatusOr<std::map<IpAddress, IpamOwner>> allocations = ScanLocked();
  Unlock();
  if (!allocations.ok()) return allocations.status();
  std::vector<CniIp> ips;
  for (size_t i = 0; i < config_.range_sets.size(); ++i) {
    const IpAddress* held = Held(*allocations, config_.range_sets[i], owner);
    if (held == nullptr) {
      return CniError(kErrInternal, absl::StrCat("container ", owner.container_id, " interface ",
                                                 owner.ifname, " holds no address in ipam.ranges[",
                                                 i, "] of network \"", config_.network, "\""));
    }
    ips.push_back(IpFor(config_.range_sets[i], *held));
  }
  return ResultFor(std::move(ips));
}

absl::StatusOr<std::map<IpAddress, IpamOwner>> IpamStore::Allocations() {
  if (absl::Status s = Lock(); !s.ok()) return s;
  absl::StatusOr<std::map<IpAddress, IpamOwner>> out = ScanLocked();
  Unlock();
  return out;
}

}  // namespace podshim::cni
