#include "image/registry_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <curl/curl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "image/digest.h"

namespace podshim::image {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Pair;
using Json = nlohmann::json;

// ---------------------------------------------------------------------------
// Unit tests: WWW-Authenticate and endpoints.

TEST(RegistryAuthHeaderTest, ParsesBearerWithQuotedCommas) {
  auto c = ParseWwwAuthenticate(
      R"(Bearer realm="https://auth.docker.io/token",service="registry.docker.io",)"
      R"(scope="repository:library/busybox:pull,push")");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].scheme, "bearer");
  EXPECT_THAT(c[0].params, ElementsAre(Pair("realm", "https://auth.docker.io/token"),
                                       Pair("scope", "repository:library/busybox:pull,push"),
                                       Pair("service", "registry.docker.io")));
}

TEST(RegistryAuthHeaderTest, ParsesBasicAndCase) {
  auto c = ParseWwwAuthenticate(R"(BASIC Realm="Registry Realm", charset=UTF-8)");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].scheme, "basic");
  EXPECT_THAT(c[0].params, ElementsAre(Pair("charset", "UTF-8"), Pair("realm", "Registry Realm")));
}

TEST(RegistryAuthHeaderTest, ParsesSeveralChallengesAndEscapes) {
  auto c = ParseWwwAuthenticate(
      R"(Basic realm="a \"quoted\" realm, really" , Bearer realm="https://x/t", error="invalid_token")");
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].scheme, "basic");
  EXPECT_EQ(c[0].params.at("realm"), "a \"quoted\" realm, really");
  EXPECT_EQ(c[1].scheme, "bearer");
  EXPECT_EQ(c[1].params.at("realm"), "https://x/t");
  EXPECT_EQ(c[1].params.at("error"), "invalid_token");
}

TEST(RegistryAuthHeaderTest, SchemeWithoutParamsAndJunk) {
  auto c = ParseWwwAuthenticate("Negotiate, Bearer realm=http://127.0.0.1/token");
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].scheme, "negotiate");
  EXPECT_TRUE(c[0].params.empty());
  EXPECT_EQ(c[1].params.at("realm"), "http://127.0.0.1/token");

  EXPECT_TRUE(ParseWwwAuthenticate("").empty());
  EXPECT_TRUE(ParseWwwAuthenticate("   ,, ").empty());
  EXPECT_TRUE(ParseWwwAuthenticate("\"oops\"").empty());
  // An unterminated quote keeps what was parsed and stops.
  c = ParseWwwAuthenticate(R"(Bearer service="x", realm="https://never)");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].params.at("service"), "x");
}

TEST(RegistryEndpointTest, DockerHubWithMirrors) {
  RegistryMirrors mirrors = {
      {"docker.io", {"https://mirror.example.com/", "http://10.0.0.1:5000/v2"}}};
  RegistryHost h = ResolveRegistryHost("docker.io", mirrors, {});
  EXPECT_EQ(h.host, "docker.io");
  EXPECT_THAT(h.endpoints, ElementsAre("https://mirror.example.com", "http://10.0.0.1:5000",
                                       "https://registry-1.docker.io"));
  EXPECT_THAT(ResolveRegistryHost("docker.io", {}, {}).endpoints,
              ElementsAre("https://registry-1.docker.io"));
}

TEST(RegistryEndpointTest, LoopbackIsPlainHttpOthersHttps) {
  EXPECT_THAT(ResolveRegistryHost("127.0.0.1:5000", {}, {}).endpoints,
              ElementsAre("http://127.0.0.1:5000"));
  EXPECT_THAT(ResolveRegistryHost("localhost:5000", {}, {}).endpoints,
              ElementsAre("http://localhost:5000"));
  EXPECT_THAT(ResolveRegistryHost("[::1]:5000", {}, {}).endpoints,
              ElementsAre("http://[::1]:5000"));
  EXPECT_THAT(ResolveRegistryHost("quay.io", {}, {}).endpoints, ElementsAre("https://quay.io"));
  EXPECT_THAT(ResolveRegistryHost("reg.lan:5000", {}, {"reg.lan:5000"}).endpoints,
              ElementsAre("http://reg.lan:5000"));
  // Mirrors of one host do not apply to another.
  RegistryMirrors mirrors = {{"docker.io", {"https://m"}}, {"quay.io", {"https://q"}}};
  EXPECT_THAT(ResolveRegistryHost("quay.io", mirrors, {}).endpoints,
              ElementsAre("https://q", "https://quay.io"));
  RegistryClientOptions options;
  options.mirrors = mirrors;
  RegistryClient client(options);
  EXPECT_THAT(client.HostFor("quay.io").endpoints, ElementsAre("https://q", "https://quay.io"));
  // Without upstream fallback a mirrored host stays on its mirrors; a host
  // without mirrors still has its upstream.
  EXPECT_THAT(ResolveRegistryHost("quay.io", mirrors, {}, false).endpoints,
              ElementsAre("https://q"));
  EXPECT_THAT(ResolveRegistryHost("gcr.io", mirrors, {}, false).endpoints,
              ElementsAre("https://gcr.io"));
}

// ---------------------------------------------------------------------------
// A tiny HTTP/1.1 server on 127.0.0.1 for auth, redirect, retry and stall
// cases. One request per connection ("Connection: close").

struct TestRequest {
  std::string method;
  std::string target;                          // path and query
  std::map<std::string, std::string> headers;  // names lower case
  std::string body;

  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
  std::string Path() const { return target.substr(0, target.find('?')); }
  // Query parameters, percent-decoded; repeated names joined by ' '.
  std::map<std::string, std::string> Query() const {
    std::map<std::string, std::string> out;
    auto q = target.find('?');
    if (q == std::string::npos) return out;
    return Form(target.substr(q + 1));
  }
  static std::map<std::string, std::string> Form(const std::string& text) {
    std::map<std::string, std::string> out;
    for (absl::string_view kv : absl::StrSplit(text, '&', absl::SkipEmpty())) {
      auto eq = kv.find('=');
      std::string k(kv.substr(0, eq));
      std::string v = eq == absl::string_view::npos ? "" : Unescape(kv.substr(eq + 1));
      auto [it, inserted] = out.emplace(k, v);
      if (!inserted) it->second += " " + v;
    }
    return out;
  }
  static std::string Unescape(absl::string_view s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
      int v = 0;
      if (s[i] == '%' && i + 2 < s.size() + 1 && absl::SimpleHexAtoi(s.substr(i + 1, 2), &v)) {
        out.push_back(static_cast<char>(v));
        i += 2;
      } else if (s[i] == '+') {
        out.push_back(' ');
      } else {
        out.push_back(s[i]);
      }
    }
    return out;
  }
};

struct TestResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool stall = false;         // never answer
  size_t truncate_after = 0;  // when > 0: announce the full length, send this many bytes, close
};

class TestHttpServer {
 public:
  using Handler = std::function<TestResponse(const TestRequest&)>;

  explicit TestHttpServer(Handler handler) : handler_(std::move(handler)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        ::listen(listen_fd_, 64) != 0) {
      ADD_FAILURE() << "test server: bind/listen failed: "
                    << "errno " << errno;
    }
    socklen_t len = sizeof(addr);
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    if (::pipe2(stop_pipe_, O_CLOEXEC) != 0) ADD_FAILURE() << "pipe2";
    acceptor_ = std::thread([this] { AcceptLoop(); });
  }

  ~TestHttpServer() {
    (void)!::write(stop_pipe_[1], "x", 1);
    acceptor_.join();
    std::vector<std::thread> conns;
    {
      std::lock_guard<std::mutex> lock(mu_);
      conns.swap(conns_);
    }
    for (auto& t : conns) t.join();
    ::close(listen_fd_);
    ::close(stop_pipe_[0]);
    ::close(stop_pipe_[1]);
  }

  std::string host() const { return absl::StrCat("127.0.0.1:", port_); }
  std::string url() const { return absl::StrCat("http://", host()); }
  int requests() const { return requests_.load(); }

 private:
  // Waits until `fd` is readable; false when the server stops first.
  bool WaitReadable(int fd) {
    pollfd p[2] = {{fd, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
    while (true) {
      int n = ::poll(p, 2, -1);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 || (p[1].revents & POLLIN)) return false;
      if (p[0].revents != 0) return true;
    }
  }

  void AcceptLoop() {
    while (WaitReadable(listen_fd_)) {
      int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      std::lock_guard<std::mutex> lock(mu_);
      conns_.emplace_back([this, fd] {
        Serve(fd);
        ::close(fd);
      });
    }
  }

  void SendAll(int fd, absl::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return;
      data.remove_prefix(static_cast<size_t>(n));
    }
  }

  void Serve(int fd) {
    std::string buf;
    char chunk[4096];
    size_t head_end;
    while ((head_end = buf.find("\r\n\r\n")) == std::string::npos) {
      if (!WaitReadable(fd)) return;
      ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
      if (n <= 0) return;
      buf.append(chunk, static_cast<size_t>(n));
    }
    TestRequest req;
    std::vector<std::string> lines = absl::StrSplit(buf.substr(0, head_end), "\r\n");
    std::vector<std::string> first = absl::StrSplit(lines[0], ' ');
    if (first.size() < 2) return;
    req.method = first[0];
    req.target = first[1];
    for (size_t i = 1; i < lines.size(); ++i) {
      auto colon = lines[i].find(':');
      if (colon == std::string::npos) continue;
      req.headers[absl::AsciiStrToLower(lines[i].substr(0, colon))] =
          std::string(absl::StripAsciiWhitespace(lines[i].substr(colon + 1)));
    }
    size_t content_length = 0;
    (void)absl::SimpleAtoi(req.Header("content-length"), &content_length);
    req.body = buf.substr(head_end + 4);
    while (req.body.size() < content_length) {
      if (!WaitReadable(fd)) return;
      ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
      if (n <= 0) return;
      req.body.append(chunk, static_cast<size_t>(n));
    }
    ++requests_;
    TestResponse resp = handler_(req);
    if (resp.stall) {
      pollfd p = {stop_pipe_[0], POLLIN, 0};
      ::poll(&p, 1, -1);
      return;
    }
    std::string out = absl::StrCat("HTTP/1.1 ", resp.status, " X\r\nConnection: close\r\n",
                                   "Content-Length: ", resp.body.size(), "\r\n");
    for (const auto& [k, v] : resp.headers) absl::StrAppend(&out, k, ": ", v, "\r\n");
    absl::StrAppend(&out, "\r\n");
    if (resp.truncate_after > 0) {
      absl::StrAppend(&out, resp.body.substr(0, resp.truncate_after));
    } else if (req.method != "HEAD") {
      absl::StrAppend(&out, resp.body);
    }
    SendAll(fd, out);
  }

  Handler handler_;
  int listen_fd_ = -1;
  int stop_pipe_[2] = {-1, -1};
  int port_ = 0;
  std::atomic<int> requests_{0};
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<std::thread> conns_;
};

// ---------------------------------------------------------------------------
// Test-side HTTP through libcurl, to push content into the registry.

struct SimpleResponse {
  long status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // lower case
};

size_t CollectBody(char* p, size_t s, size_t n, void* u) {
  static_cast<std::string*>(u)->append(p, s * n);
  return s * n;
}

size_t CollectHeader(char* p, size_t s, size_t n, void* u) {
  absl::string_view line(p, s * n);
  auto colon = line.find(':');
  if (colon != absl::string_view::npos) {
    (*static_cast<std::map<std::string, std::string>*>(
        u))[absl::AsciiStrToLower(line.substr(0, colon))] =
        std::string(absl::StripAsciiWhitespace(line.substr(colon + 1)));
  }
  return s * n;
}

SimpleResponse SimpleHttp(const std::string& method, const std::string& url,
                          const std::vector<std::string>& headers = {},
                          const std::string& body = "") {
  SimpleResponse r;
  CURL* c = curl_easy_init();
  curl_slist* list = nullptr;
  for (const auto& h : headers) list = curl_slist_append(list, h.c_str());
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_PROXY, "");
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
  if (method == "PUT" || method == "POST") {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  }
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &CollectBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, &CollectHeader);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &r.headers);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
  if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
  curl_slist_free_all(list);
  curl_easy_cleanup(c);
  return r;
}

// ---------------------------------------------------------------------------
// A real docker-registry (Debian's distribution 2.8) on 127.0.0.1.

class LocalRegistry {
 public:
  // Starts the registry; false with `error` set when it does not come up.
  bool Start(std::string& error) {
    char tmpl[] = "/tmp/podshim-registry-test-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) {
      error = "mkdtemp failed";
      return false;
    }
    dir_ = tmpl;
    for (int attempt = 0; attempt < 5; ++attempt) {
      port_ = FreePort();
      std::string config = dir_ + "/config.yml";
      std::ofstream(config) << "version: 0.1\n"
                               "log:\n  level: error\n  accesslog:\n    disabled: true\n"
                               "storage:\n  filesystem:\n    rootdirectory: "
                            << dir_ << "/storage\n  delete:\n    enabled: true\n"
                            << "http:\n  addr: 127.0.0.1:" << port_ << "\n";
      pid_ = ::fork();
      if (pid_ == 0) {
        int log = ::open((dir_ + "/registry.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (log >= 0) {
          ::dup2(log, 1);
          ::dup2(log, 2);
        }
        ::execlp("docker-registry", "docker-registry", "serve", config.c_str(), nullptr);
        ::_exit(127);
      }
      absl::Time until = absl::Now() + absl::Seconds(20);
      while (absl::Now() < until) {
        if (SimpleHttp("GET", url() + "/v2/").status == 200) return true;
        int wstatus = 0;
        if (::waitpid(pid_, &wstatus, WNOHANG) == pid_) {
          pid_ = -1;
          break;  // exited: maybe the port was taken; try another
        }
        absl::SleepFor(absl::Milliseconds(50));
      }
      Stop();
    }
    std::ifstream log(dir_ + "/registry.log");
    error = absl::StrCat("docker-registry did not start; log:\n",
                         std::string(std::istreambuf_iterator<char>(log), {}));
    return false;
  }

  void Stop() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }

  ~LocalRegistry() {
    Stop();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  std::string host() const { return absl::StrCat("127.0.0.1:", port_); }
  std::string url() const { return "http://" + host(); }
  const std::string& dir() const { return dir_; }

  // Uploads a blob (monolithic: POST then PUT ?digest=); returns its digest.
  std::string PushBlob(const std::string& repo, const std::string& data) {
    std::string digest = Sha256Of(data).String();
    SimpleResponse start = SimpleHttp("POST", absl::StrCat(url(), "/v2/", repo, "/blobs/uploads/"));
    EXPECT_EQ(start.status, 202) << start.body;
    std::string location = start.headers["location"];
    if (absl::StartsWith(location, "/")) location = url() + location;
    location += absl::StrContains(location, "?") ? "&" : "?";
    SimpleResponse put = SimpleHttp("PUT", location + "digest=" + digest,
                                    {"Content-Type: application/octet-stream"}, data);
    EXPECT_EQ(put.status, 201) << put.body;
    return digest;
  }

  std::string PushManifest(const std::string& repo, const std::string& reference,
                           const std::string& media_type, const std::string& body) {
    SimpleResponse put =
        SimpleHttp("PUT", absl::StrCat(url(), "/v2/", repo, "/manifests/", reference),
                   {"Content-Type: " + media_type}, body);
    EXPECT_EQ(put.status, 201) << reference << ": " << put.body;
    return Sha256Of(body).String();
  }

  // The file the registry keeps a blob's bytes in.
  std::string BlobPath(const std::string& digest) const {
    std::string hex = digest.substr(7);
    return absl::StrCat(dir_, "/storage/docker/registry/v2/blobs/sha256/", hex.substr(0, 2), "/",
                        hex, "/data");
  }

 private:
  static int FreePort() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    socklen_t len = sizeof(addr);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    ::close(fd);
    return ntohs(addr.sin_port);
  }

  std::string dir_;
  int port_ = 0;
  pid_t pid_ = -1;
};

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(gen() & 0xff);
  return s;
}

// An image pushed to the registry: one config, layers, one manifest.
struct PushedImage {
  std::string manifest;
  std::string manifest_digest;
  std::string config_digest;
  std::vector<std::string> layer_digests;
  std::vector<std::string> layers;
};

PushedImage PushImage(LocalRegistry& reg, const std::string& repo, const std::string& tag,
                      const std::string& arch, bool docker, std::vector<std::string> layers,
                      const std::string& annotation = "x") {
  PushedImage img;
  Json config = {{"architecture", arch},
                 {"os", "linux"},
                 {"config", {{"Cmd", {"/bin/sh"}}, {"Env", {"PATH=/bin"}}}},
                 {"rootfs", {{"type", "layers"}, {"diff_ids", Json::array()}}}};
  for (const auto& l : layers) config["rootfs"]["diff_ids"].push_back(Sha256Of(l).String());
  std::string config_text = config.dump();
  img.config_digest = reg.PushBlob(repo, config_text);
  Json m = {{"schemaVersion", 2},
            {"mediaType", docker ? kMediaTypeDockerManifest : kMediaTypeOciManifest},
            {"config",
             {{"mediaType", docker ? kMediaTypeDockerConfig : kMediaTypeOciConfig},
              {"digest", img.config_digest},
              {"size", config_text.size()}}},
            {"layers", Json::array()}};
  if (!docker) m["annotations"] = {{"note", annotation}};
  for (const auto& l : layers) {
    std::string d = reg.PushBlob(repo, l);
    img.layer_digests.push_back(d);
    m["layers"].push_back({{"mediaType", docker ? kMediaTypeDockerLayer : kMediaTypeOciLayer},
                           {"digest", d},
                           {"size", l.size()}});
  }
  img.layers = std::move(layers);
  img.manifest = m.dump(2);
  img.manifest_digest = reg.PushManifest(repo, tag, m["mediaType"], img.manifest);
  return img;
}

RegistryAuth Creds(const std::string& user, const std::string& password) {
  RegistryAuth a;
  a.username = user;
  a.password = password;
  return a;
}

RegistryAuth AuthField(const std::string& auth) {
  RegistryAuth a;
  a.auth = auth;
  return a;
}

Reference Ref(const std::string& s) {
  auto r = ParseReference(s);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : Reference{};
}

RegistryClientOptions ForPlatform(const std::string& arch, const std::string& variant = "") {
  RegistryClientOptions o;
  o.platform = Platform{"linux", arch, variant};
  return o;
}

// Collects a blob into memory, recording the largest chunk.
struct Collector {
  std::string data;
  size_t largest_chunk = 0;
  size_t chunks = 0;
  std::function<absl::Status(absl::string_view)> Sink() {
    return [this](absl::string_view c) {
      data.append(c.data(), c.size());
      largest_chunk = std::max(largest_chunk, c.size());
      ++chunks;
      return absl::OkStatus();
    };
  }
};

class RegistryClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    registry_ = new LocalRegistry();
    std::string error;
    if (!registry_->Start(error)) {
      start_error_ = new std::string(error);
      return;
    }
    LocalRegistry& reg = *registry_;
    app_ = new PushedImage(PushImage(reg, "test/app", "v1", "amd64", false,
                                     {RandomBytes(1000, 1), RandomBytes(3000, 2)}));
    docker_ = new PushedImage(
        PushImage(reg, "test/docker", "latest", "amd64", true, {RandomBytes(500, 3)}));
    big_ = new PushedImage(
        PushImage(reg, "test/big", "v1", "amd64", false, {RandomBytes(5 << 20, 4)}));
    // An OCI index: amd64, arm64, and an attestation manifest.
    amd64_ = new PushedImage(
        PushImage(reg, "test/multi", "amd64-only", "amd64", false, {RandomBytes(100, 5)}));
    arm64_ = new PushedImage(
        PushImage(reg, "test/multi", "arm64-only", "arm64", false, {RandomBytes(100, 6)}));
    PushedImage att = PushImage(reg, "test/multi", "att", "unknown", false, {RandomBytes(10, 7)});
    Json index = {{"schemaVersion", 2},
                  {"mediaType", kMediaTypeOciIndex},
                  {"manifests",
                   {{{"mediaType", kMediaTypeOciManifest},
                     {"digest", att.manifest_digest},
                     {"size", att.manifest.size()},
                     {"platform", {{"os", "unknown"}, {"architecture", "unknown"}}},
                     {"annotations", {{"vnd.docker.reference.type", "attestation-manifest"}}}},
                    {{"mediaType", kMediaTypeOciManifest},
                     {"digest", arm64_->manifest_digest},
                     {"size", arm64_->manifest.size()},
                     {"platform", {{"os", "linux"}, {"architecture", "arm64"}, {"variant", "v8"}}}},
                    {{"mediaType", kMediaTypeOciManifest},
                     {"digest", amd64_->manifest_digest},
                     {"size", amd64_->manifest.size()},
                     {"platform", {{"os", "linux"}, {"architecture", "amd64"}}}}}}};
    index_json_ = new std::string(index.dump());
    index_digest_ =
        new std::string(reg.PushManifest("test/multi", "latest", kMediaTypeOciIndex, *index_json_));
  }

  static void TearDownTestSuite() {
    delete registry_;
    registry_ = nullptr;
  }

  void SetUp() override { ASSERT_EQ(start_error_, nullptr) << *start_error_; }

  static std::string Name(const std::string& path_and_ref) {
    return absl::StrCat(registry_->host(), "/", path_and_ref);
  }

  static LocalRegistry* registry_;
  static std::string* start_error_;
  static PushedImage* app_;
  static PushedImage* docker_;
  static PushedImage* big_;
  static PushedImage* amd64_;
  static PushedImage* arm64_;
  static std::string* index_json_;
  static std::string* index_digest_;
};

LocalRegistry* RegistryClientTest::registry_ = nullptr;
std::string* RegistryClientTest::start_error_ = nullptr;
PushedImage* RegistryClientTest::app_ = nullptr;
PushedImage* RegistryClientTest::docker_ = nullptr;
PushedImage* RegistryClientTest::big_ = nullptr;
PushedImage* RegistryClientTest::amd64_ = nullptr;
PushedImage* RegistryClientTest::arm64_ = nullptr;
std::string* RegistryClientTest::index_json_ = nullptr;
std::string* RegistryClientTest::index_digest_ = nullptr;

TEST_F(RegistryClientTest, ResolvesByTag) {
  RegistryClient client;
  auto r = client.Resolve(Ref(Name("test/app:v1")), {});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->repo_digest, app_->manifest_digest);
  EXPECT_EQ(r->manifest_digest, app_->manifest_digest);
  EXPECT_EQ(r->manifest_json, app_->manifest);
  EXPECT_EQ(r->manifest_media_type, kMediaTypeOciManifest);
  EXPECT_EQ(r->config.digest, app_->config_digest);
  ASSERT_EQ(r->layers.size(), 2u);
  EXPECT_EQ(r->layers[1].digest, app_->layer_digests[1]);
  EXPECT_EQ(r->layers[1].size, 3000);
  EXPECT_TRUE(r->index_json.empty());
  EXPECT_EQ(r->endpoint, registry_->url());
}

TEST_F(RegistryClientTest, ResolvesByDigest) {
  RegistryClient client;
  auto r = client.Resolve(Ref(Name("test/app@" + app_->manifest_digest)), {});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->repo_digest, app_->manifest_digest);
  EXPECT_EQ(r->config.digest, app_->config_digest);
  // Tag and digest: the digest wins.
  r = client.Resolve(Ref(Name("test/app:nonexistent@" + app_->manifest_digest)), {});
  ASSERT_TRUE(r.ok()) << r.status();
}

TEST_F(RegistryClientTest, ResolvesIndexToPlatform) {
  RegistryClient amd64(ForPlatform("amd64"));
  auto r = amd64.Resolve(Ref(Name("test/multi:latest")), {});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->repo_digest, *index_digest_);
  EXPECT_EQ(r->manifest_digest, amd64_->manifest_digest);
  EXPECT_EQ(r->manifest_json, amd64_->manifest);
  EXPECT_EQ(r->index_json, *index_json_);
  EXPECT_EQ(r->index_media_type, kMediaTypeOciIndex);
  EXPECT_EQ(r->layers.at(0).digest, amd64_->layer_digests[0]);

  RegistryClient arm64(ForPlatform("arm64", "v8"));
  r = arm64.Resolve(Ref(Name("test/multi@" + *index_digest_)), {});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->repo_digest, *index_digest_);
  EXPECT_EQ(r->manifest_digest, arm64_->manifest_digest);

  RegistryClient s390x(ForPlatform("s390x"));
  r = s390x.Resolve(Ref(Name("test/multi:latest")), {});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("no manifest for platform linux/s390x"));

  // The host's own platform (this machine is amd64 or arm64).
  RegistryClient host;
  r = host.Resolve(Ref(Name("test/multi:latest")), {});
  EXPECT_TRUE(r.ok()) << r.status();
}

TEST_F(RegistryClientTest, ResolvesDockerSchema2) {
  RegistryClient client;
  auto r = client.Resolve(Ref(Name("test/docker")), {});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->manifest_media_type, kMediaTypeDockerManifest);
  EXPECT_EQ(r->config.media_type, kMediaTypeDockerConfig);
  EXPECT_EQ(r->repo_digest, docker_->manifest_digest);
  EXPECT_EQ(r->layers.at(0).media_type, kMediaTypeDockerLayer);
}

TEST_F(RegistryClientTest, MissingTagOrRepoIsNotFound) {
  RegistryClient client;
  Reference ref = Ref(Name("test/app:nope"));
  auto r = client.Resolve(ref, {});
  ASSERT_EQ(r.status().code(), absl::StatusCode::kNotFound) << r.status();
  EXPECT_THAT(r.status().message(),
              HasSubstr(absl::StrCat("image \"", ref.String(), "\" not found in registry ",
                                     registry_->host())));
  EXPECT_THAT(r.status().message(), HasSubstr("MANIFEST_UNKNOWN"));
  r = client.Resolve(Ref(Name("test/absent:v1")), {});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound) << r.status();
  r = client.Resolve(Ref(Name("test/app@sha256:" + std::string(64, '0'))), {});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound) << r.status();
}

TEST_F(RegistryClientTest, TamperedManifestIsDataLoss) {
  LocalRegistry& reg = *registry_;
  PushedImage img =
      PushImage(reg, "test/tampered", "v1", "amd64", false, {RandomBytes(64, 9)}, "aaaa");
  // Same length, still valid JSON: the registry serves it without noticing.
  std::string changed = img.manifest;
  changed.replace(changed.find("aaaa"), 4, "bbbb");
  std::ofstream(reg.BlobPath(img.manifest_digest), std::ios::trunc) << changed;
  std::string changed_digest = Sha256Of(changed).String();

  RegistryClient client;
  auto r = client.Resolve(Ref(Name("test/tampered@" + img.manifest_digest)), {});
  ASSERT_EQ(r.status().code(), absl::StatusCode::kDataLoss) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr(img.manifest_digest));
  EXPECT_THAT(r.status().message(), HasSubstr(changed_digest));
  // By tag, the registry's Docker-Content-Digest names the original digest.
  r = client.Resolve(Ref(Name("test/tampered:v1")), {});
  ASSERT_EQ(r.status().code(), absl::StatusCode::kDataLoss) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("Docker-Content-Digest"));
}

TEST_F(RegistryClientTest, StreamsBigBlob) {
  RegistryClient client;
  auto r = client.Resolve(Ref(Name("test/big:v1")), {});
  ASSERT_TRUE(r.ok()) << r.status();
  Collector c;
  absl::Status s = client.FetchBlob(Ref(Name("test/big:v1")), r->layers.at(0), {}, {}, c.Sink());
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(c.data.size(), big_->layers[0].size());
  EXPECT_TRUE(c.data == big_->layers[0]);
  EXPECT_GT(c.chunks, 10u);
  EXPECT_LE(c.largest_chunk, 1u << 20);  // streamed, not buffered

  Collector cfg;
  s = client.FetchBlob(Ref(Name("test/big:v1")), r->config, {}, {}, cfg.Sink());
  ASSERT_TRUE(s.ok()) << s;
  auto config = ParseImageConfig(cfg.data);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_THAT(config->diff_ids, ElementsAre(Sha256Of(big_->layers[0]).String()));
}

TEST_F(RegistryClientTest, BlobSizeAndDigestMismatches) {
  RegistryClient client;
  Reference ref = Ref(Name("test/app:v1"));
  Descriptor d{kMediaTypeOciLayer, app_->layer_digests[0], 1000, {}, {}, {}};
  Collector ok;
  ASSERT_TRUE(client.FetchBlob(ref, d, {}, {}, ok.Sink()).ok());

  Descriptor small = d;
  small.size = 999;
  Collector c1;
  absl::Status s = client.FetchBlob(ref, small, {}, {}, c1.Sink());
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_THAT(s.message(), HasSubstr("more than the expected 999 bytes"));

  Descriptor large = d;
  large.size = 1001;
  Collector c2;
  s = client.FetchBlob(ref, large, {}, {}, c2.Sink());
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_THAT(s.message(), HasSubstr("got 1000 bytes, expected 1001"));

  // Tampered bytes on the registry's disk.
  LocalRegistry& reg = *registry_;
  std::string original = RandomBytes(2000, 11);
  std::string digest = reg.PushBlob("test/tampered-blob", original);
  std::string changed = RandomBytes(2000, 12);
  std::ofstream(reg.BlobPath(digest), std::ios::trunc | std::ios::binary) << changed;
  Collector c3;
  s = client.FetchBlob(Ref(Name("test/tampered-blob:x")),
                       Descriptor{kMediaTypeOciLayer, digest, 2000, {}, {}, {}}, {}, {}, c3.Sink());
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_THAT(s.message(), HasSubstr(digest));
  EXPECT_THAT(s.message(), HasSubstr(Sha256Of(changed).String()));

  Collector c4;
  s = client.FetchBlob(
      ref, Descriptor{kMediaTypeOciLayer, "sha256:" + std::string(64, '1'), 5, {}, {}, {}}, {}, {},
      c4.Sink());
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;
  EXPECT_THAT(s.message(), HasSubstr("BLOB_UNKNOWN"));

  s = client.FetchBlob(ref, Descriptor{kMediaTypeOciLayer, "sha256:zz", 5, {}, {}, {}}, {}, {},
                       c4.Sink());
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
}

TEST_F(RegistryClientTest, SinkErrorAbortsTransfer) {
  RegistryClient client;
  Descriptor d{kMediaTypeOciLayer,
               big_->layer_digests[0],
               static_cast<int64_t>(big_->layers[0].size()),
               {},
               {},
               {}};
  size_t got = 0;
  absl::Status s = client.FetchBlob(Ref(Name("test/big:v1")), d, {}, {}, [&](absl::string_view c) {
    got += c.size();
    return got > 100000 ? absl::ResourceExhaustedError("disk full") : absl::OkStatus();
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_EQ(s.message(), "disk full");
  EXPECT_LT(got, big_->layers[0].size());
}

TEST_F(RegistryClientTest, MirrorsAreTriedFirst) {
  // A closed port on 127.0.0.1: connection refused.
  std::string dead;
  {
    TestHttpServer closed([](const TestRequest&) { return TestResponse{}; });
    dead = closed.url();
  }
  // The mirror (the real registry) serves an image for a host that is down.
  RegistryClientOptions o;
  std::string dead_host = dead.substr(7);
  o.mirrors[dead_host] = {registry_->url() + "/"};
  RegistryClient via_mirror(o);
  auto r = via_mirror.Resolve(Ref(dead_host + "/test/app:v1"), {});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->endpoint, registry_->url());
  Collector c;
  EXPECT_TRUE(
      via_mirror.FetchBlob(Ref(dead_host + "/test/app:v1"), r->config, {}, {}, c.Sink()).ok());

  // A dead mirror falls through to the upstream.
  RegistryClientOptions o2;
  o2.mirrors[registry_->host()] = {dead};
  RegistryClient dead_mirror(o2);
  r = dead_mirror.Resolve(Ref(Name("test/app:v1")), {});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->endpoint, registry_->url());
  EXPECT_TRUE(dead_mirror.FetchBlob(Ref(Name("test/app:v1")), r->config, {}, {}, c.Sink()).ok());

  // Nothing reachable: UNAVAILABLE naming the URL.
  RegistryClient plain;
  r = plain.Resolve(Ref(dead_host + "/test/app:v1"), {});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr(dead + "/v2/test/app/manifests/v1"));
}

TEST_F(RegistryClientTest, ConcurrentCalls) {
  RegistryClient client;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  // The bytes each sink got hash to the descriptor's digest: no thread sees
  // another's transfer.
  std::atomic<int> wrong_bytes{0}, blobs{0};
  threads.reserve(8);
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      const std::string ref = i % 2 == 0 ? Name("test/app:v1") : Name("test/multi:latest");
      for (int j = 0; j < 5; ++j) {
        auto r = client.Resolve(Ref(ref), {});
        if (!r.ok()) {
          ++failures;
          continue;
        }
        for (const Descriptor& l : r->layers) {
          Hasher h = Hasher::Sha256();
          absl::Status s = client.FetchBlob(Ref(ref), l, {}, {}, [&](absl::string_view c) {
            h.Update(c);
            return absl::OkStatus();
          });
          if (!s.ok()) {
            ++failures;
            continue;
          }
          ++blobs;
          if (h.Finish().String() != l.digest) ++wrong_bytes;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GT(blobs.load(), 0);
  EXPECT_EQ(wrong_bytes.load(), 0);
}

// ---------------------------------------------------------------------------
// Auth, redirects, retries and stalls against the in-process server.

const char kTinyManifestTemplate[] =
    R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
    R"("config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"$D","size":2},)"
    R"("layers":[]})";

std::string TinyManifest() {
  std::string m = kTinyManifestTemplate;
  m.replace(m.find("$D"), 2, Sha256Of("{}").String());
  return m;
}

TestResponse ManifestResponse(const std::string& body) {
  return TestResponse{200, {{"Content-Type", kMediaTypeOciManifest}}, body};
}

TestResponse Unauthorized(const std::string& challenge) {
  return TestResponse{
      401,
      {{"WWW-Authenticate", challenge}, {"Content-Type", "application/json"}},
      R"({"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]})"};
}

TEST(RegistryAuthTest, BearerTokenFlowAndCache) {
  std::atomic<int> token_requests{0};
  std::mutex mu;
  std::string seen_token_query_scope, seen_token_service, seen_token_auth;
  std::unique_ptr<TestHttpServer> server;
  server = std::make_unique<TestHttpServer>([&](const TestRequest& req) {
    if (req.Path() == "/token") {
      ++token_requests;
      std::lock_guard<std::mutex> lock(mu);
      auto q = req.Query();
      seen_token_query_scope = q["scope"];
      seen_token_service = q["service"];
      seen_token_auth = req.Header("authorization");
      return TestResponse{200, {}, R"({"token":"tok123","expires_in":300})"};
    }
    if (req.Header("authorization") != "Bearer tok123") {
      return Unauthorized(
          absl::StrCat(R"(Bearer realm=")", server->url(),
                       R"(/token",service="test-registry",scope="repository:org/app:pull")"));
    }
    if (req.Path() == "/v2/org/app/manifests/v1") return ManifestResponse(TinyManifest());
    return TestResponse{404, {}, ""};
  });
  RegistryClient client;
  Reference ref = Ref(server->host() + "/org/app:v1");
  auto r = client.Resolve(ref, {});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->repo_digest, Sha256Of(TinyManifest()).String());
  EXPECT_EQ(token_requests.load(), 1);
  {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_EQ(seen_token_query_scope, "repository:org/app:pull");
    EXPECT_EQ(seen_token_service, "test-registry");
    EXPECT_EQ(seen_token_auth, "");  // anonymous
  }
  // The token is cached for the next call.
  r = client.Resolve(ref, {});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(token_requests.load(), 1);

  // With credentials: the token server gets them as Basic; a different cache entry.
  RegistryAuth auth;
  auth.username = "alice";
  auth.password = "s3cret";
  r = client.Resolve(ref, auth);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(token_requests.load(), 2);
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(seen_token_auth, "Basic " + absl::Base64Escape("alice:s3cret"));
}

TEST(RegistryAuthTest, BearerRefusedIsUnauthenticated) {
  std::unique_ptr<TestHttpServer> server;
  server = std::make_unique<TestHttpServer>([&](const TestRequest& req) {
    if (req.Path() == "/token") return TestResponse{200, {}, R"({"access_token":"useless"})"};
    return Unauthorized(absl::StrCat(R"(Bearer realm=")", server->url(), R"(/token")"));
  });
  RegistryClient client;
  auto r = client.Resolve(Ref(server->host() + "/org/app:v1"), {});
  ASSERT_EQ(r.status().code(), absl::StatusCode::kUnauthenticated) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("UNAUTHORIZED: authentication required"));

  // A token server that refuses the credentials.
  TestHttpServer refusing([&](const TestRequest& req) {
    if (req.Path() == "/token") {
      return TestResponse{401, {}, R"({"errors":[{"code":"DENIED","message":"bad password"}]})"};
    }
    return Unauthorized(R"(Bearer realm="http://)" + req.Header("host") + R"(/token")");
  });
  RegistryAuth auth = Creds("alice", "wrong");
  r = client.Resolve(Ref(refusing.host() + "/org/app:v1"), auth);
  ASSERT_EQ(r.status().code(), absl::StatusCode::kUnauthenticated) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("bad password"));
  EXPECT_THAT(r.status().message(), Not(HasSubstr("wrong")));
}

TEST(RegistryAuthTest, IdentityTokenIsExchangedWithPost) {
  std::mutex mu;
  std::map<std::string, std::string> form;
  std::string method, content_type;
  std::unique_ptr<TestHttpServer> server;
  server = std::make_unique<TestHttpServer>([&](const TestRequest& req) {
    if (req.Path() == "/oauth/token") {
      std::lock_guard<std::mutex> lock(mu);
      method = req.method;
      content_type = req.Header("content-type");
      form = TestRequest::Form(req.body);
      return TestResponse{200, {}, R"({"access_token":"acc","expires_in":60})"};
    }
    if (req.Header("authorization") != "Bearer acc") {
      return Unauthorized(
          absl::StrCat(R"(Bearer realm=")", server->url(), R"(/oauth/token",service="svc")"));
    }
    return ManifestResponse(TinyManifest());
  });
  RegistryClient client;
  RegistryAuth auth;
  auth.identity_token = "refresh-me";
  auto r = client.Resolve(Ref(server->host() + "/org/app:v1"), auth);
  ASSERT_TRUE(r.ok()) << r.status();
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(method, "POST");
  EXPECT_EQ(content_type, "application/x-www-form-urlencoded");
  EXPECT_EQ(form["grant_type"], "refresh_token");
  EXPECT_EQ(form["refresh_token"], "refresh-me");
  EXPECT_EQ(form["service"], "svc");
  EXPECT_EQ(form["scope"], "repository:org/app:pull");
  EXPECT_FALSE(form["client_id"].empty());
}

TEST(RegistryAuthTest, RegistryTokenIsSentDirectly) {
  std::atomic<int> unauthorized{0};
  TestHttpServer server([&](const TestRequest& req) {
    if (req.Header("authorization") != "Bearer given-token") {
      ++unauthorized;
      return Unauthorized(R"(Bearer realm="http://127.0.0.1:1/token")");
    }
    return ManifestResponse(TinyManifest());
  });
  RegistryClient client;
  RegistryAuth auth;
  auth.registry_token = "given-token";
  auto r = client.Resolve(Ref(server.host() + "/org/app:v1"), auth);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(unauthorized.load(), 0);
}

TEST(RegistryAuthTest, BasicAuth) {
  const std::string expected = "Basic " + absl::Base64Escape("bob:pa:ss");
  TestHttpServer server([&](const TestRequest& req) {
    if (req.Header("authorization") != expected) {
      return Unauthorized(R"(Basic realm="Registry Realm")");
    }
    return ManifestResponse(TinyManifest());
  });
  RegistryClient client;
  Reference ref = Ref(server.host() + "/org/app:v1");
  // `auth` is base64(user:pass); the password may contain ':'.
  RegistryAuth auth;
  auth.auth = absl::Base64Escape("bob:pa:ss");
  auto r = client.Resolve(ref, auth);
  ASSERT_TRUE(r.ok()) << r.status();
  r = client.Resolve(ref, Creds("bob", "pa:ss"));
  ASSERT_TRUE(r.ok()) << r.status();

  r = client.Resolve(ref, {});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnauthenticated) << r.status();
  r = client.Resolve(ref, Creds("bob", "nope"));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnauthenticated) << r.status();
  EXPECT_THAT(r.status().message(), Not(HasSubstr("nope")));
  r = client.Resolve(ref, AuthField("!!!notbase64"));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
}

TEST(RegistryAuthTest, ForbiddenIsPermissionDeniedWithRegistryMessage) {
  TestHttpServer server([&](const TestRequest&) {
    return TestResponse{403,
                        {{"Content-Type", "application/json"}},
                        R"({"errors":[{"code":"DENIED","message":"requested access to the )"
                        R"(resource is denied"}]})"};
  });
  RegistryClient client;
  auto r = client.Resolve(Ref(server.host() + "/org/app:v1"), {});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied) << r.status();
  EXPECT_THAT(r.status().message(),
              HasSubstr("DENIED: requested access to the resource is denied"));
}

TEST(RegistryHttpTest, Schema1IsRefused) {
  TestHttpServer server([&](const TestRequest&) {
    return TestResponse{200,
                        {{"Content-Type", kMediaTypeDockerSchema1SignedManifest}},
                        R"({"schemaVersion":1,"name":"org/app","tag":"v1","fsLayers":[]})"};
  });
  RegistryClient client;
  auto r = client.Resolve(Ref(server.host() + "/org/app:v1"), {});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("schema 1"));
}

TEST(RegistryHttpTest, OversizedManifestIsRefused) {
  TestHttpServer server([&](const TestRequest&) {
    return ManifestResponse(std::string(5000, ' ') + TinyManifest());
  });
  RegistryClientOptions o;
  o.max_manifest_bytes = 4096;
  RegistryClient client(o);
  auto r = client.Resolve(Ref(server.host() + "/org/app:v1"), {});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("larger than 4096 bytes"));
}

TEST(RegistryHttpTest, WrongDigestFromServerIsDataLoss) {
  const std::string body = TinyManifest();
  const std::string wrong = "sha256:" + std::string(64, 'e');
  TestHttpServer server([&](const TestRequest&) {
    TestResponse r = ManifestResponse(body);
    r.headers.emplace_back("Docker-Content-Digest", wrong);
    return r;
  });
  RegistryClient client;
  auto r = client.Resolve(Ref(server.host() + "/org/app@" + wrong), {});
  ASSERT_EQ(r.status().code(), absl::StatusCode::kDataLoss) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr(wrong));
  EXPECT_THAT(r.status().message(), HasSubstr(Sha256Of(body).String()));
  r = client.Resolve(Ref(server.host() + "/org/app:v1"), {});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss) << r.status();
}

TEST(RegistryHttpTest, BlobRedirectDropsAuthorizationAcrossOrigins) {
  const std::string blob = RandomBytes(100000, 21);
  const std::string digest = Sha256Of(blob).String();
  std::mutex mu;
  std::vector<std::string> storage_auth;
  TestHttpServer storage([&](const TestRequest& req) {
    std::lock_guard<std::mutex> lock(mu);
    storage_auth.push_back(req.Header("authorization"));
    if (req.target != "/bucket/blob?signature=secret") return TestResponse{404, {}, ""};
    return TestResponse{200, {}, blob};
  });
  std::unique_ptr<TestHttpServer> registry;
  registry = std::make_unique<TestHttpServer>([&](const TestRequest& req) {
    if (req.Path() == "/token") return TestResponse{200, {}, R"({"token":"T"})"};
    if (req.Header("authorization") != "Bearer T") {
      return Unauthorized(absl::StrCat(R"(Bearer realm=")", registry->url(), R"(/token")"));
    }
    if (req.Path() == "/v2/org/app/blobs/" + digest) {
      // A same-origin hop first, then off to storage.
      return TestResponse{307, {{"Location", "/v2/org/app/hop"}}, ""};
    }
    if (req.Path() == "/v2/org/app/hop") {
      return TestResponse{302, {{"Location", storage.url() + "/bucket/blob?signature=secret"}}, ""};
    }
    return TestResponse{404, {}, ""};
  });
  RegistryClient client;
  Collector c;
  absl::Status s = client.FetchBlob(
      Ref(registry->host() + "/org/app:v1"),
      Descriptor{kMediaTypeOciLayerGzip, digest, static_cast<int64_t>(blob.size()), {}, {}, {}}, {},
      {}, c.Sink());
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_TRUE(c.data == blob);
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_THAT(storage_auth, ElementsAre(""));
}

TEST(RegistryHttpTest, TransientErrorIsRetriedOnce) {
  const std::string blob = "hello, blob";
  const std::string digest = Sha256Of(blob).String();
  std::atomic<int> calls{0};
  TestHttpServer server([&](const TestRequest&) {
    return ++calls == 1 ? TestResponse{503, {}, "busy"} : TestResponse{200, {}, blob};
  });
  RegistryClient client;
  Collector c;
  Descriptor d{kMediaTypeOciLayer, digest, static_cast<int64_t>(blob.size()), {}, {}, {}};
  absl::Status s = client.FetchBlob(Ref(server.host() + "/org/app:v1"), d, {}, {}, c.Sink());
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(c.data, blob);
  EXPECT_EQ(calls.load(), 2);

  // Two failures in a row: UNAVAILABLE after exactly two attempts.
  std::atomic<int> down_calls{0};
  TestHttpServer down([&](const TestRequest&) {
    ++down_calls;
    return TestResponse{502, {}, ""};
  });
  s = client.FetchBlob(Ref(down.host() + "/org/app:v1"), d, {}, {}, c.Sink());
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_EQ(down_calls.load(), 2);
}

TEST(RegistryHttpTest, NoRetryAfterBytesReachedTheSink) {
  const std::string blob = RandomBytes(200000, 31);
  const std::string digest = Sha256Of(blob).String();
  std::atomic<int> calls{0};
  TestHttpServer server([&](const TestRequest&) {
    ++calls;
    TestResponse r{200, {}, blob};
    r.truncate_after = 100000;
    return r;
  });
  RegistryClient client;
  Collector c;
  Descriptor d{kMediaTypeOciLayer, digest, static_cast<int64_t>(blob.size()), {}, {}, {}};
  absl::Status s = client.FetchBlob(Ref(server.host() + "/org/app:v1"), d, {}, {}, c.Sink());
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_EQ(calls.load(), 1);
  EXPECT_GT(c.data.size(), 0u);
}

TEST(RegistryHttpTest, DeadlineAgainstStalledServer) {
  TestHttpServer server([&](const TestRequest&) {
    TestResponse r;
    r.stall = true;
    return r;
  });
  RegistryClient client;
  Reference ref = Ref(server.host() + "/org/app:v1");
  absl::Time start = absl::Now();
  CallOptions call;
  call.deadline = absl::Now() + absl::Milliseconds(300);
  auto r = client.Resolve(ref, {}, call);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("manifest of \"" + ref.String() + "\""));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));

  Collector c;
  call.deadline = absl::Now() + absl::Milliseconds(300);
  absl::Status s =
      client.FetchBlob(ref, Descriptor{kMediaTypeOciLayer, Sha256Of("x").String(), 1, {}, {}, {}},
                       {}, call, c.Sink());
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
  EXPECT_THAT(s.message(), HasSubstr("blob " + Sha256Of("x").String()));

  // An already expired deadline sends nothing.
  int before = server.requests();
  call.deadline = absl::Now() - absl::Seconds(1);
  r = client.Resolve(ref, {}, call);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded) << r.status();
  EXPECT_EQ(server.requests(), before);
}

TEST(RegistryHttpTest, CancellationAgainstStalledServer) {
  TestHttpServer server([&](const TestRequest&) {
    TestResponse r;
    r.stall = true;
    return r;
  });
  RegistryClient client;
  std::atomic<bool> cancel{false};
  CallOptions call;
  call.cancelled = [&] { return cancel.load(); };
  std::thread canceller([&] {
    absl::SleepFor(absl::Milliseconds(300));
    cancel = true;
  });
  absl::Time start = absl::Now();
  Collector c;
  absl::Status s = client.FetchBlob(
      Ref(server.host() + "/org/app:v1"),
      Descriptor{kMediaTypeOciLayer, Sha256Of("x").String(), 1, {}, {}, {}}, {}, call, c.Sink());
  canceller.join();
  EXPECT_EQ(s.code(), absl::StatusCode::kCancelled) << s;
  EXPECT_THAT(s.message(), HasSubstr("blob "));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));

  auto r = client.Resolve(Ref(server.host() + "/org/app:v1"), {}, call);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kCancelled) << r.status();
}

TEST(RegistryHttpTest, StalledTransferHitsLowSpeedLimit) {
  TestHttpServer server([&](const TestRequest&) {
    TestResponse r;
    r.stall = true;
    return r;
  });
  RegistryClientOptions o;
  o.low_speed_time = absl::Seconds(1);
  RegistryClient client(o);
  auto r = client.Resolve(Ref(server.host() + "/org/app:v1"), {});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr(server.url() + "/v2/org/app/manifests/v1"));
}

}  // namespace
}  // namespace podshim::image
