// End to end in network namespaces the tests create: the real binary, with its DEFAULT
// imds_endpoint, in an "instance" namespace whose default gateway is an "imds" namespace
// that owns 169.254.169.254 and runs tests/fakes/imds.py on port 80 — the real address,
// reachable only inside these namespaces. Local sources are checked against interfaces
// made for the test. Namespaces (and the veths in them) go away with each test.

#include "address_fixtures.hpp"
#include "test_support.hpp"

#include <nlohmann/json.hpp>

#include <atomic>
#include <unistd.h>

using namespace kb;
using namespace kb::test;

namespace {

constexpr const char* kNoNamespaces = "network namespaces cannot be created here (needs root and `ip netns`)";
#define KB_REQUIRE_NAMESPACES()                                                                                        \
  if (!network_namespaces_available()) KB_SKIP(kNoNamespaces)

std::string unique_link(const std::string& prefix) {
  static std::atomic<int> n{0};
  return prefix + std::to_string(::getpid() % 100000) + "x" + std::to_string(n++); // IFNAMSIZ: 15 chars
}

// instance (10.213.0.2/24, default via .1) <-veth-> imds (10.213.0.1/24, and
// 169.254.169.254/32 unless `with_imds_address` is false, in which case packets to it are
// dropped at the gateway like on a cloud without that service).
struct CloudNetwork {
  NetNamespace instance{"kbai"};
  NetNamespace imds{"kbam"};

  explicit CloudNetwork(bool with_imds_address = true) {
    const auto a = unique_link("kbi"), b = unique_link("kbm");
    must_run({"ip", "-n", instance.name(), "link", "add", a, "type", "veth", "peer", "name", b, "netns", imds.name()});
    instance.exec({"ip", "addr", "add", "10.213.0.2/24", "dev", a});
    instance.exec({"ip", "link", "set", a, "up"});
    instance.exec({"ip", "route", "add", "default", "via", "10.213.0.1"});
    imds.exec({"ip", "addr", "add", "10.213.0.1/24", "dev", b});
    imds.exec({"ip", "link", "set", b, "up"});
    imds.exec({"sysctl", "-q", "-w", "net.ipv4.ip_forward=0"});
    if (with_imds_address) imds.exec({"ip", "addr", "add", "169.254.169.254/32", "dev", "lo"});
  }

  RunResult detect(const TempDir& root, const std::vector<std::string>& extra = {}) const {
    std::vector<std::string> argv{
        "ip",       "netns", "exec", instance.name(), binary_path(), "detect-address", "--root", root.path().string(),
        "--output", "json"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return run_process(argv);
  }
};

struct AwsRoot : TempDir {
  AwsRoot() {
    write("sys/class/dmi/id/sys_vendor", "Amazon EC2\n");
    write("sys/class/dmi/id/product_name", "m6i.large\n");
  }
};

} // namespace

TEST_CASE("netns: on an IMDSv2-only 'EC2 instance' the binary finds the private address with its defaults",
          "[address][netns]") {
  KB_REQUIRE_NAMESPACES();
  CloudNetwork net;
  FakeServer imds("imds.py",
                  {"--bind", "169.254.169.254", "--port", "80", "--tokens", "required", "--local-ipv4", "172.31.77.5"},
                  net.imds.name());
  REQUIRE(imds.port() == 80);
  const AwsRoot root;
  const auto r = net.detect(root);
  INFO(r.out << r.err << "\nfake log:\n" << imds.log());
  REQUIRE(r.exit_code == 0);
  const auto doc = nlohmann::json::parse(r.out);
  CHECK(doc["address"] == "172.31.77.5");
  CHECK(doc["source"] == "aws-imds");
  CHECK(doc["cloud"] == "aws");
  const auto log = imds.log();
  CHECK(count_of(log, "PUT /latest/api/token ttl=21600 -> 200") == 1);
  CHECK(count_of(log, "GET /latest/meta-data/local-ipv4 token=yes -> 200") == 1);
}

TEST_CASE("netns: the bash script's IMDSv1 curl gets 401 from the same service (why it lost the address)",
          "[address][netns][fake]") {
  KB_REQUIRE_NAMESPACES();
  CloudNetwork net;
  FakeServer imds("imds.py", {"--bind", "169.254.169.254", "--port", "80", "--tokens", "required"}, net.imds.name());
  const auto r = run_process({"ip", "netns", "exec", net.instance.name(), "curl", "-s", "-o", "/dev/null", "-w",
                              "%{http_code}", "http://169.254.169.254/latest/meta-data/local-ipv4"});
  CHECK(r.out == "401");
}

TEST_CASE("netns: no answer to the token PUT (hop limit) falls back to the route address and says why",
          "[address][netns]") {
  KB_REQUIRE_NAMESPACES();
  CloudNetwork net;
  FakeServer imds("imds.py", {"--bind", "169.254.169.254", "--port", "80", "--hang-token"}, net.imds.name());
  const AwsRoot root;
  const auto r = net.detect(root);
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const auto doc = nlohmann::json::parse(r.out);
  CHECK(doc["address"] == "10.213.0.2");
  CHECK(doc["source"] == "route");
  const auto reason = doc["attempts"][0]["detail"].get<std::string>();
  CHECK(reason.find("IMDS may be disabled") != std::string::npos);
  CHECK(reason.find("hop limit") != std::string::npos);
  CHECK(r.err.find("address source aws-imds skipped") != std::string::npos);
}

TEST_CASE("netns: where nothing answers at 169.254.169.254, the route address follows the bounded retries",
          "[address][netns]") {
  KB_REQUIRE_NAMESPACES();
  CloudNetwork net(false);
  const AwsRoot root;
  const auto r = net.detect(root);
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const auto doc = nlohmann::json::parse(r.out);
  CHECK(doc["address"] == "10.213.0.2");
  CHECK(doc["source"] == "route");
  CHECK(doc["attempts"][0]["detail"].get<std::string>().find("3 tries") != std::string::npos);
}

TEST_CASE("netns: local sources: route, a named interface, first-global past a docker bridge", "[address][netns]") {
  KB_REQUIRE_NAMESPACES();
  NetNamespace host("kbal");
  const auto a = unique_link("kbe"), b = unique_link("kbf"), ll = unique_link("kbl");
  host.exec({"ip", "link", "add", "docker0", "type", "bridge"}); // first, so it comes first in the list
  host.exec({"ip", "addr", "add", "172.17.0.1/16", "dev", "docker0"});
  host.exec({"ip", "link", "set", "docker0", "up"});
  host.exec({"ip", "link", "add", a, "type", "veth", "peer", "name", b});
  host.exec({"ip", "addr", "add", "10.99.1.5/24", "dev", a});
  host.exec({"ip", "link", "set", a, "up"});
  host.exec({"ip", "link", "set", b, "up"});
  host.exec({"ip", "link", "add", ll, "type", "veth", "peer", "name", ll + "p"});
  host.exec({"ip", "addr", "add", "169.254.5.5/16", "dev", ll});
  host.exec({"ip", "link", "set", ll, "up"});
  TempDir root;
  auto detect = [&](const std::string& sources) {
    return run_process({"ip", "netns", "exec", host.name(), binary_path(), "detect-address", "--root",
                        root.path().string(), "--sources", sources});
  };

  SECTION("no default route: route says so, first-global skips docker0") {
    const auto r = detect("route,first-global");
    INFO(r.out << r.err);
    CHECK(r.exit_code == 0);
    CHECK(r.out == "agent_address: 10.99.1.5\naddress_source: first-global\n");
    CHECK(r.err.find("no default route") != std::string::npos);
  }
  SECTION("a named interface, and one with only a link-local address") {
    auto r = detect("interface:" + a);
    CHECK(r.out == "agent_address: 10.99.1.5\naddress_source: interface:" + a + "\n");
    r = detect("interface:" + ll);
    INFO(r.err);
    CHECK(r.exit_code == 4);
    CHECK(r.err.find("169.254.5.5 is a link-local address") != std::string::npos);
  }
  SECTION("with a default route, route gives its source address") {
    host.exec({"ip", "route", "add", "default", "via", "10.99.1.1"});
    const auto r = detect("route");
    CHECK(r.out == "agent_address: 10.99.1.5\naddress_source: route\n");
  }
  SECTION("a down interface is named as down") {
    host.exec({"ip", "link", "set", a, "down"});
    const auto r = detect("interface:" + a);
    CHECK(r.exit_code == 4);
    CHECK(r.err.find("is down") != std::string::npos);
  }
}
