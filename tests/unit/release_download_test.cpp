// The release downloader against a real HTTPS server on loopback (tests/fakes/
// release_server.py) with a CA made for the test: faults, retries, resume and the cache.

#include "release_fixture.hpp"
#include "test_support.hpp"

#include "kasm_bootstrap/error.hpp"
#include "kasm_bootstrap/kasm/release_download.hpp"
#include "kasm_bootstrap/util/sha256.hpp"

#include <netinet/in.h>
#include <sys/socket.h>

#include <fstream>

using namespace kb;
using namespace kb::test;
namespace fs = std::filesystem;

namespace {

struct Fixture {
  TestCa ca;
  TempDir work;
  fs::path source = work.path() / "served.tar.gz";
  std::string sha;
  fs::path cache = work.path() / "cache";
  net::HttpClient http;

  explicit Fixture(int pad = 2 << 20) {
    sha = make_release(source, {"--pad", std::to_string(pad)});
    fs::create_directories(cache);
  }
  std::uint64_t size() const { return fs::file_size(source); }
  kasm::DownloadRequest request(const ReleaseServer& server) const {
    kasm::DownloadRequest r;
    r.url = server.url();
    r.expected_sha256 = sha;
    r.target = cache / "release.tar.gz";
    r.ca_bundle = ca.ca_cert.string();
    r.initial_backoff = std::chrono::milliseconds(10);
    r.max_backoff = std::chrono::milliseconds(50);
    r.deadline = std::chrono::seconds(60);
    return r;
  }
  std::string error_of(const kasm::DownloadRequest& r) const {
    try {
      kasm::download_verified(http, r);
    } catch (const Error& e) {
      return e.what();
    }
    return "(no error)";
  }
};

bool cache_holds_only(const fs::path& dir, const std::vector<std::string>& names) {
  std::vector<std::string> found;
  for (const auto& e : fs::directory_iterator(dir))
    found.push_back(e.path().filename().string());
  std::sort(found.begin(), found.end());
  auto want = names;
  std::sort(want.begin(), want.end());
  return found == want;
}

std::string range_of(const std::string& get_line) {
  const auto p = get_line.find("range=");
  return get_line.substr(p + 6, get_line.find(' ', p) - p - 6);
}

} // namespace

TEST_CASE("release download: verified HTTPS download lands in the cache", "[release]") {
  Fixture f;
  ReleaseServer server(f.ca, f.source);
  const auto r = kasm::download_verified(f.http, f.request(server));
  CHECK_FALSE(r.from_cache);
  CHECK(r.sha256 == f.sha);
  CHECK(r.size == f.size());
  CHECK(r.fetched == f.size());
  CHECK(r.attempts == 1);
  CHECK(read_file(r.path) == read_file(f.source));
  CHECK(cache_holds_only(f.cache, {"release.tar.gz"}));
  REQUIRE(server.gets().size() == 1);
  CHECK(range_of(server.gets()[0]) == "-");
}

TEST_CASE("release download: a cached file with the right checksum needs no network", "[release]") {
  Fixture f;
  std::string url;
  kasm::DownloadRequest req;
  {
    ReleaseServer server(f.ca, f.source);
    req = f.request(server);
    kasm::download_verified(f.http, req);
  } // the server is gone: any network use now fails
  const auto r = kasm::download_verified(f.http, req);
  CHECK(r.from_cache);
  CHECK(r.fetched == 0);
  CHECK(r.sha256 == f.sha);
}

TEST_CASE("release download: a cached file with the wrong checksum is replaced", "[release]") {
  Fixture f;
  ReleaseServer server(f.ca, f.source);
  auto req = f.request(server);
  TempDir scratch;
  std::ofstream(req.target) << "stale content";
  const auto r = kasm::download_verified(f.http, req);
  CHECK_FALSE(r.from_cache);
  CHECK(util::sha256_hex(read_file(req.target)) == f.sha);
}

TEST_CASE("release download: checksum mismatch deletes the file and names both digests", "[release]") {
  Fixture f;
  ReleaseServer server(f.ca, f.source);
  auto req = f.request(server);
  req.expected_sha256 = std::string(64, 'a');
  const auto message = f.error_of(req);
  CHECK(message.find(std::string(64, 'a')) != std::string::npos);
  CHECK(message.find(f.sha) != std::string::npos);
  CHECK(cache_holds_only(f.cache, {}));
}

TEST_CASE("release download: wrong content from the server is caught by the checksum", "[release]") {
  Fixture f;
  ReleaseServer server(f.ca, f.source, {"--fault", "wrong"});
  const auto message = f.error_of(f.request(server));
  CHECK(message.find("checksum mismatch") != std::string::npos);
  CHECK(message.find(f.sha) != std::string::npos);
  CHECK(cache_holds_only(f.cache, {}));
}

TEST_CASE("release download: a dropped connection is resumed with Range for the rest only", "[release]") {
  Fixture f;
  const auto half = f.size() / 2;
  ReleaseServer server(f.ca, f.source, {"--fault", "drop", "--fault-times", "1"});
  const auto r = kasm::download_verified(f.http, f.request(server));
  CHECK(r.sha256 == f.sha);
  CHECK(r.attempts == 2);
  CHECK(r.fetched == f.size()); // half before the drop, the other half after: nothing twice
  const auto gets = server.gets();
  REQUIRE(gets.size() == 2);
  CHECK(gets[0].find("sent=" + std::to_string(half) + " fault=drop") != std::string::npos);
  CHECK(range_of(gets[1]) == "bytes=" + std::to_string(half) + "-");
  CHECK(gets[1].find("status=206 sent=" + std::to_string(f.size() - half)) != std::string::npos);
  CHECK(cache_holds_only(f.cache, {"release.tar.gz"}));
}

TEST_CASE("release download: a partial file from an earlier run is resumed, not refetched", "[release]") {
  Fixture f;
  const auto content = read_file(f.source);
  const std::size_t kept = 1000000;
  auto req = f.request(ReleaseServer(f.ca, f.source)); // only for the shape of the request
  std::ofstream(req.target.string() + ".partial", std::ios::binary) << content.substr(0, kept);
  ReleaseServer server(f.ca, f.source);
  req.url = server.url();
  const auto r = kasm::download_verified(f.http, req);
  CHECK(r.sha256 == f.sha);
  CHECK(r.resumed_from == kept);
  CHECK(r.fetched == content.size() - kept);
  REQUIRE(server.gets().size() == 1);
  CHECK(range_of(server.gets()[0]) == "bytes=" + std::to_string(kept) + "-");
}

TEST_CASE("release download: a server that ignores Range makes it start over cleanly", "[release]") {
  Fixture f;
  const auto content = read_file(f.source);
  ReleaseServer server(f.ca, f.source, {"--fault", "no-range"});
  auto req = f.request(server);
  std::ofstream(req.target.string() + ".partial", std::ios::binary) << content.substr(0, 12345);
  const auto r = kasm::download_verified(f.http, req);
  CHECK(r.sha256 == f.sha);
  CHECK(r.resumed_from == 0);
  CHECK(read_file(req.target) == content);
  const auto gets = server.gets();
  REQUIRE(gets.size() == 2);
  CHECK(range_of(gets[0]) == "bytes=12345-");
  CHECK(range_of(gets[1]) == "-");
}

TEST_CASE("release download: a stalled connection hits the low-speed limit and is resumed", "[release]") {
  Fixture f;
  ReleaseServer server(f.ca, f.source, {"--fault", "stall", "--fault-times", "1"});
  auto req = f.request(server);
  req.low_speed_bytes = 1000;
  req.low_speed_window = std::chrono::seconds(1);
  const auto r = kasm::download_verified(f.http, req);
  CHECK(r.sha256 == f.sha);
  CHECK(r.attempts == 2);
  const auto gets = server.gets();
  REQUIRE(gets.size() == 2);
  CHECK(range_of(gets[1]) == "bytes=" + std::to_string(f.size() / 2) + "-");
}

TEST_CASE("release download: 404 fails at once, naming the status and URL", "[release]") {
  Fixture f;
  ReleaseServer server(f.ca, f.source, {"--fault", "404"});
  const auto message = f.error_of(f.request(server));
  CHECK(message.find("HTTP 404") != std::string::npos);
  CHECK(message.find(server.url()) != std::string::npos);
  CHECK(server.gets().size() == 1);
  CHECK(cache_holds_only(f.cache, {"release.tar.gz.partial"})); // empty, kept for a later resume
  CHECK(fs::file_size(f.cache / "release.tar.gz.partial") == 0);
}

TEST_CASE("release download: 500 is retried with backoff until it succeeds", "[release]") {
  Fixture f;
  ReleaseServer server(f.ca, f.source, {"--fault", "500", "--fault-times", "2"});
  const auto r = kasm::download_verified(f.http, f.request(server));
  CHECK(r.attempts == 3);
  CHECK(r.sha256 == f.sha);
  CHECK(server.gets().size() == 3);
}

TEST_CASE("release download: a server that keeps failing is given up after max_attempts", "[release]") {
  Fixture f;
  ReleaseServer server(f.ca, f.source, {"--fault", "500"});
  auto req = f.request(server);
  req.max_attempts = 3;
  const auto message = f.error_of(req);
  CHECK(message.find("after 3 attempts") != std::string::npos);
  CHECK(message.find("HTTP 500") != std::string::npos);
  CHECK(server.gets().size() == 3);
}

TEST_CASE("release download: a slow trickle completes and logs progress with rate and ETA", "[release]") {
  Fixture f(100000);
  ReleaseServer server(f.ca, f.source, {"--fault", "trickle", "--trickle-rate", "60000"});
  auto req = f.request(server);
  req.progress_interval = std::chrono::milliseconds(300);
  LogCapture capture;
  const auto r = kasm::download_verified(f.http, req);
  CHECK(r.sha256 == f.sha);
  const auto log = capture.text();
  CHECK(log.find("release download: ") != std::string::npos);
  CHECK(log.find("/s, ETA ") != std::string::npos);
  CHECK(log.find("%)") != std::string::npos);
}

TEST_CASE("release download: the deadline stops a download that is too slow", "[release]") {
  Fixture f(300000);
  ReleaseServer server(f.ca, f.source, {"--fault", "trickle", "--trickle-rate", "20000"});
  auto req = f.request(server);
  req.deadline = std::chrono::seconds(1);
  const auto message = f.error_of(req);
  CHECK(message.find("did not finish within 1 s") != std::string::npos);
  CHECK_FALSE(fs::exists(req.target));
}

TEST_CASE("release download: plain http is refused unless allowed", "[release]") {
  Fixture f(0);
  FakeServer plain("release_server.py", {"--file", f.source.string()});
  auto req = f.request(ReleaseServer(f.ca, f.source));
  req.url = plain.url() + "/kasm_release.tar.gz";
  const auto message = f.error_of(req);
  CHECK(message.find("plain http") != std::string::npos);
  CHECK(plain.log().empty());
  req.allow_insecure_http = true;
  CHECK(kasm::download_verified(f.http, req).sha256 == f.sha);
}

TEST_CASE("release download: a certificate the CA bundle does not trust fails without retries", "[release]") {
  Fixture f(0);
  TestCa other;
  ReleaseServer server(f.ca, f.source);
  auto req = f.request(server);
  req.ca_bundle = other.ca_cert.string();
  const auto message = f.error_of(req);
  CHECK(message.find("TLS problem") != std::string::npos);
  CHECK(message.find(other.ca_cert.string()) != std::string::npos);
  CHECK(server.gets().empty());
}

TEST_CASE("release download: connection refused is retried, then reported", "[release]") {
  Fixture f(0);
  // A port that was just free: nothing listens there.
  const int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(s, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(s);
  auto req = f.request(ReleaseServer(f.ca, f.source));
  req.url = "https://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/kasm_release.tar.gz";
  req.max_attempts = 2;
  const auto message = f.error_of(req);
  CHECK(message.find("after 2 attempts") != std::string::npos);
  CHECK(message.find("connection failed") != std::string::npos);
}

// Parallel ranged GETs (kasm/ranged_download.hpp): 256 KiB pieces of a 2 MiB release over
// three connections, against the fake server's range faults.
namespace {

kasm::DownloadRequest ranged(const Fixture& f, const ReleaseServer& server) {
  auto r = f.request(server);
  r.connections = 3;
  r.piece_bytes = 256 * 1024;
  return r;
}

// "bytes=A-B" of every ranged GET, and whether each piece boundary was asked for.
std::vector<std::string> bounded_ranges(const std::vector<std::string>& gets) {
  std::vector<std::string> out;
  for (const auto& g : gets) {
    const auto r = range_of(g);
    if (r.size() > 6 && r.back() != '-') out.push_back(r);
  }
  return out;
}

} // namespace

TEST_CASE("ranged download: pieces over several connections, hashed in order", "[release][ranged]") {
  Fixture f;
  ReleaseServer server(f.ca, f.source);
  const auto req = ranged(f, server);
  const auto r = kasm::download_verified(f.http, req);
  CHECK(r.sha256 == f.sha);
  CHECK(r.connections == 3);
  CHECK(r.fetched == f.size());
  CHECK(read_file(req.target) == read_file(f.source));
  const auto pieces = (f.size() + req.piece_bytes - 1) / req.piece_bytes;
  const auto ranges = bounded_ranges(server.gets());
  CHECK(ranges.size() == pieces); // each piece asked for once: nothing fetched twice
  CHECK(std::find(ranges.begin(), ranges.end(), "bytes=0-" + std::to_string(req.piece_bytes - 1)) != ranges.end());
  CHECK(cache_holds_only(f.cache, {"release.tar.gz"})); // no .partial, no .frontier left
}

TEST_CASE("ranged download: a range dropped midway is resumed from its last byte", "[release][ranged]") {
  Fixture f;
  ReleaseServer server(f.ca, f.source, {"--fault", "range-drop", "--fault-times", "1"});
  const auto req = ranged(f, server);
  const auto r = kasm::download_verified(f.http, req);
  CHECK(r.sha256 == f.sha);
  CHECK(r.fetched == f.size()); // the dropped half is not fetched again
  const auto gets = server.gets();
  const auto dropped = std::find_if(
      gets.begin(), gets.end(), [](const std::string& g) { return g.find("fault=range-drop") != std::string::npos; });
  REQUIRE(dropped != gets.end());
  // The retry asks for the second half of that same range: "bytes=A+half-B".
  const auto range = range_of(*dropped).substr(6);
  const auto first = std::stoull(range.substr(0, range.find('-')));
  const auto last = std::stoull(range.substr(range.find('-') + 1));
  const auto resumed = "bytes=" + std::to_string(first + (last - first + 1) / 2) + "-" + std::to_string(last);
  const auto ranges = bounded_ranges(gets);
  CHECK(std::find(ranges.begin(), ranges.end(), resumed) != ranges.end());
  CHECK(cache_holds_only(f.cache, {"release.tar.gz"}));
}

TEST_CASE("ranged download: a range answered with the wrong length is refused and asked again", "[release][ranged]") {
  Fixture f;
  {
    ReleaseServer server(f.ca, f.source, {"--fault", "range-long", "--fault-times", "2"});
    const auto r = kasm::download_verified(f.http, ranged(f, server));
    CHECK(r.sha256 == f.sha); // the bad replies were discarded, not written into the release
  }
  fs::remove(f.cache / "release.tar.gz");
  // Always wrong: given up, naming the range and the reason; the file is not in place.
  ReleaseServer server(f.ca, f.source, {"--fault", "range-long"});
  auto req = ranged(f, server);
  req.max_attempts = 3;
  const auto message = f.error_of(req);
  CHECK(message.find("range bytes ") != std::string::npos);
  CHECK((message.find("more than the") != std::string::npos || message.find("Content-Range") != std::string::npos));
  CHECK_FALSE(fs::exists(req.target));
}

TEST_CASE("ranged download: a server that ignores Range falls back to one stream", "[release][ranged]") {
  Fixture f;
  ReleaseServer server(f.ca, f.source, {"--fault", "ignore-range"});
  const auto req = ranged(f, server);
  const auto r = kasm::download_verified(f.http, req);
  CHECK(r.sha256 == f.sha);
  CHECK(r.connections == 1);
  CHECK(read_file(req.target) == read_file(f.source));
  CHECK(cache_holds_only(f.cache, {"release.tar.gz"}));
}

TEST_CASE("ranged download: a checksum mismatch removes the file and names both digests", "[release][ranged]") {
  Fixture f;
  ReleaseServer server(f.ca, f.source);
  auto req = ranged(f, server);
  req.expected_sha256 = std::string(64, 'b');
  const auto message = f.error_of(req);
  CHECK(message.find(std::string(64, 'b')) != std::string::npos);
  CHECK(message.find(f.sha) != std::string::npos);
  CHECK(bounded_ranges(server.gets()).size() > 1); // it was the ranged path
  CHECK(cache_holds_only(f.cache, {}));
}

TEST_CASE("ranged download: a killed run's frontier record cuts the partial file back", "[release][ranged]") {
  Fixture f;
  const auto content = read_file(f.source);
  ReleaseServer server(f.ca, f.source);
  const auto req = ranged(f, server);
  // What a killed ranged run leaves: the first 300000 bytes hashed and recorded, garbage
  // (a piece further on, say) past them.
  const auto partial = req.target.string() + ".partial";
  std::ofstream(partial, std::ios::binary) << content.substr(0, 300000) << std::string(700000, 'x');
  std::ofstream(partial + ".frontier") << "300000\n";
  const auto r = kasm::download_verified(f.http, req);
  CHECK(r.sha256 == f.sha);
  CHECK(r.resumed_from == 300000);
  CHECK(read_file(req.target) == content);
  CHECK(cache_holds_only(f.cache, {"release.tar.gz"}));
}
