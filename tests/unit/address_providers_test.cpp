// The address sources added for the stock Kasm scripts' other choices (issue 20): GCP's
// external IP (gcp-public), Azure's public IP (azure-public), OpenStack's EC2-compatible
// fixed and floating addresses (openstack, openstack-public); and DMI detection of
// OpenStack and KubeVirt. Every request goes over real HTTP to tests/fakes/imds.py, which
// answers as each real service does (docs/platform.md, "Cloud metadata services").

#include "address_fixtures.hpp"
#include "test_support.hpp"

#include "kasm_bootstrap/error.hpp"
#include "kasm_bootstrap/net/cloud.hpp"
#include "kasm_bootstrap/net/metadata_services.hpp"
#include "kasm_bootstrap/net/source_error.hpp"

#include <nlohmann/json.hpp>

#include <chrono>

using namespace kb;
using namespace kb::test;

namespace {

struct Provider {
  net::HttpClient http;
  net::Budget budget{std::chrono::seconds(10)};
  net::MetadataClient client;
  explicit Provider(const FakeServer& server) : client(http, server.url(), budget) {}
};

// The chain's error for a world whose only source fails; fails the test when it succeeds.
std::string provider_chain_error(const AddressWorld& world) {
  try {
    const auto found = world.detect();
    FAIL("detection succeeded with " << found.address << " from " << found.source);
  } catch (const Error& e) {
    CHECK(e.code() == ExitCode::kAddress);
    return e.what();
  }
  return {};
}

// What a source needs from the fake: its cloud and the options that give it an address.
struct PublicSource {
  const char* source;
  std::vector<std::string> fake_args;
  const char* dmi_vendor;
};

std::vector<PublicSource> new_sources() {
  return {
      {"gcp-public", {"--cloud", "gcp", "--public-ip", "198.51.100.7"}, "Google"},
      {"azure-public", {"--cloud", "azure", "--public-ip", "198.51.100.7"}, "Microsoft Corporation"},
      {"openstack", {"--cloud", "openstack", "--private-ip", "198.51.100.7"}, "OpenStack Foundation"},
      {"openstack-public", {"--cloud", "openstack", "--public-ip", "198.51.100.7"}, "OpenStack Foundation"},
  };
}

std::vector<std::string> plus_args(std::vector<std::string> args, std::initializer_list<std::string> more) {
  args.insert(args.end(), more);
  return args;
}

} // namespace

// ---------------------------------------------------------------- GCP external IP

TEST_CASE("address gcp-public: nic0's access-config NAT address, asked with Metadata-Flavor: Google",
          "[address][providers][gcp]") {
  FakeServer server("imds.py", {"--cloud", "gcp", "--public-ip", "34.118.7.9"});
  Provider gcp(server);
  CHECK(net::gcp_public_address(gcp.client) == "34.118.7.9");
  CHECK(count_of(server.log(),
                 "GET /computeMetadata/v1/instance/network-interfaces/0/access-configs/0/external-ip flavor=yes -> "
                 "200") == 1);
}

TEST_CASE("address gcp-public: the fake refuses the external-ip request without the header, as GCP does (403)",
          "[address][providers][gcp][fake]") {
  FakeServer server("imds.py", {"--cloud", "gcp", "--public-ip", "34.118.7.9"});
  net::HttpClient http;
  net::HttpRequest bare;
  bare.url = server.url() + "/computeMetadata/v1/instance/network-interfaces/0/access-configs/0/external-ip";
  const auto r = http.send(bare);
  CHECK(r.status == 403);
  CHECK(r.body.find("34.118") == std::string::npos);
}

TEST_CASE("address gcp-public: an instance without an external IP is said so, not taken for a broken service",
          "[address][providers][gcp]") {
  FakeServer server("imds.py", {"--cloud", "gcp", "--public-ip", ""});
  Provider gcp(server);
  const auto message = source_error([&] { net::gcp_public_address(gcp.client); });
  INFO(message);
  CHECK(message.find("HTTP 404") != std::string::npos);
  CHECK(message.find("no external IP") != std::string::npos);
  CHECK(message.find("use gcp") != std::string::npos);
  CHECK(count_of(server.log(), "-> 404") == 1); // an absent item is not retried
}

TEST_CASE("address gcp-public: an answer without Metadata-Flavor is not GCP's", "[address][providers][gcp]") {
  FakeServer server("imds.py", {"--cloud", "gcp", "--public-ip", "34.118.7.9", "--no-flavor-header"});
  Provider gcp(server);
  CHECK(source_error([&] { net::gcp_public_address(gcp.client); }).find("not the GCP metadata server") !=
        std::string::npos);
}

// ---------------------------------------------------------------- Azure public IP

TEST_CASE("address azure-public: interface 0's publicIpAddress, with Metadata: true, api-version and format=text",
          "[address][providers][azure]") {
  FakeServer server("imds.py", {"--cloud", "azure", "--public-ip", "20.61.8.3"});
  Provider azure(server);
  CHECK(net::azure_public_address(azure.client) == "20.61.8.3");
  const auto log = server.log();
  INFO(log);
  CHECK(count_of(log, "GET /metadata/instance/network/interface/0/ipv4/ipAddress/0/publicIpAddress"
                      "?api-version=2021-02-01&format=text metadata-header=yes -> 200") == 1);
  CHECK(count_of(log, "/metadata/loadbalancer") == 0);
}

TEST_CASE("address azure-public: the fake refuses what the real IMDS refuses (so the test above proves what we send)",
          "[address][providers][azure][fake]") {
  FakeServer server("imds.py", {"--cloud", "azure", "--public-ip", "20.61.8.3"});
  net::HttpClient http;
  const std::string leaf = server.url() + "/metadata/instance/network/interface/0/ipv4/ipAddress/0/publicIpAddress";
  auto get = [&](const std::string& query, bool header) {
    net::HttpRequest r;
    r.url = leaf + query;
    if (header) r.headers = {"Metadata: true"};
    return http.send(r);
  };
  CHECK(get("?api-version=2021-02-01&format=text", false).status == 400); // no Metadata: true
  const auto bad_version = get("?api-version=2016-01-01&format=text", true);
  CHECK(bad_version.status == 400);
  CHECK(bad_version.body.find("api-version is invalid") != std::string::npos);
  CHECK(get("?format=text", true).status == 400);            // no api-version
  CHECK(get("?api-version=2021-02-01", true).status == 400); // a leaf without format=text
  CHECK(get("?api-version=2021-02-01&format=text", true).body == "20.61.8.3");
}

TEST_CASE("address azure-public: an empty publicIpAddress falls back to the Standard-SKU address of the load balancer "
          "metadata",
          "[address][providers][azure]") {
  FakeServer server("imds.py", {"--cloud", "azure", "--public-ip", "", "--azure-lb-public-ip", "51.0.0.1"});
  Provider azure(server);
  CHECK(net::azure_public_address(azure.client) == "51.0.0.1");
  CHECK(count_of(server.log(), "GET /metadata/loadbalancer?api-version=2020-10-01 metadata-header=yes -> 200") == 1);
}

TEST_CASE("address azure-public: no public IP at all (empty leaf, no load balancer metadata) is said plainly",
          "[address][providers][azure]") {
  FakeServer server("imds.py", {"--cloud", "azure", "--public-ip", ""});
  Provider azure(server);
  const auto message = source_error([&] { net::azure_public_address(azure.client); });
  INFO(message);
  CHECK(message.find("empty publicIpAddress") != std::string::npos);
  CHECK(message.find("Basic-SKU") != std::string::npos);
  CHECK(message.find("HTTP 404") != std::string::npos);
  CHECK(message.find("use azure for its private address") != std::string::npos);
}

TEST_CASE(
    "address azure-public: load balancer bodies that hold no instance-level IPv4 address are refused with the reason",
    "[address][providers][azure]") {
  const std::string what = "GET http://169.254.169.254/metadata/loadbalancer";
  CHECK(net::azure_lb_public_ip(R"({"loadbalancer":{"publicIpAddresses":[{"frontendIpAddress":"2603:10e1::1"},)"
                                R"({"frontendIpAddress":"51.0.0.9","privateIpAddress":"10.1.0.4"}]}})",
                                what) == "51.0.0.9");
  auto refused = [&](const std::string& body) { return source_error([&] { net::azure_lb_public_ip(body, what); }); };
  CHECK(refused("<html>login</html>").find("not JSON") != std::string::npos);
  CHECK(refused(R"({"loadbalancer":{}})").find("without loadbalancer.publicIpAddresses") != std::string::npos);
  CHECK(refused(R"({"loadbalancer":{"publicIpAddresses":[]}})").find("no IPv4 frontendIpAddress") != std::string::npos);
  CHECK(refused(std::string(100, '[') + std::string(100, ']')).find("nested deeper") != std::string::npos);
}

// ---------------------------------------------------------------- OpenStack

TEST_CASE("address openstack: the fixed address from Nova's EC2-compatible local-ipv4, without any token request",
          "[address][providers][openstack]") {
  FakeServer server("imds.py", {"--cloud", "openstack", "--private-ip", "192.168.17.5"});
  Provider openstack(server);
  CHECK(net::openstack_address(openstack.client) == "192.168.17.5");
  const auto log = server.log();
  INFO(log);
  CHECK(count_of(log, "GET /latest/meta-data/local-ipv4 -> 200") == 1);
  CHECK(count_of(log, "PUT") == 0);
}

TEST_CASE("address openstack: the fake answers as Nova does: no IP in meta_data.json, no IMDSv2 token",
          "[address][providers][openstack][fake]") {
  FakeServer server("imds.py", {"--cloud", "openstack", "--private-ip", "192.168.17.5"});
  net::HttpClient http;
  net::HttpRequest md;
  md.url = server.url() + "/openstack/latest/meta_data.json";
  const auto r = http.send(md);
  REQUIRE(r.status == 200);
  const auto doc = nlohmann::json::parse(r.body);
  CHECK(doc.contains("uuid"));
  CHECK(r.body.find("192.168.17.5") == std::string::npos);
  net::HttpRequest token;
  token.method = "PUT";
  token.url = server.url() + "/latest/api/token";
  token.headers = {"X-aws-ec2-metadata-token-ttl-seconds: 21600"};
  CHECK(http.send(token).status == 404);
}

TEST_CASE("address openstack-public: the floating IP, and none (Nova's empty public-ipv4) said so",
          "[address][providers][openstack]") {
  SECTION("a floating IP") {
    FakeServer server("imds.py", {"--cloud", "openstack", "--public-ip", "203.0.113.77"});
    Provider openstack(server);
    CHECK(net::openstack_public_address(openstack.client) == "203.0.113.77");
  }
  SECTION("none") {
    FakeServer server("imds.py", {"--cloud", "openstack", "--public-ip", ""});
    Provider openstack(server);
    const auto message = source_error([&] { net::openstack_public_address(openstack.client); });
    INFO(message);
    CHECK(message.find("empty body") != std::string::npos);
    CHECK(message.find("no floating IP") != std::string::npos);
    CHECK(count_of(server.log(), "GET /latest/meta-data/public-ipv4 -> 200") == 1);
  }
}

TEST_CASE("address openstack: an EC2-style service that wants IMDSv2 tokens (401) is pointed to aws-imds",
          "[address][providers][openstack]") {
  FakeServer server("imds.py", {"--cloud", "aws", "--tokens", "required"});
  Provider ec2(server);
  const auto message = source_error([&] { net::openstack_address(ec2.client); });
  INFO(message);
  CHECK(message.find("HTTP 401") != std::string::npos);
  CHECK(message.find("use aws-imds") != std::string::npos);
}

TEST_CASE("address openstack: a service without EC2-compatible meta-data is not OpenStack's",
          "[address][providers][openstack]") {
  FakeServer server("imds.py", {"--cloud", "gcp"}); // 403 without the GCP header
  Provider other(server);
  CHECK(source_error([&] { net::openstack_address(other.client); }).find("HTTP 403") != std::string::npos);
  FakeServer droplet("imds.py", {"--cloud", "digitalocean"}); // no /latest/meta-data/: 404
  Provider digitalocean(droplet);
  CHECK(source_error([&] { net::openstack_address(digitalocean.client); }).find("not an OpenStack metadata service") !=
        std::string::npos);
}

// ---------------------------------------------------------------- garbage, through the chain

TEST_CASE("address providers chain: garbage answers give an error naming the source and the reason, never a hang",
          "[address][providers][chain]") {
  struct Garbage {
    std::vector<std::string> args;
    const char* reason;
  };
  const std::vector<Garbage> answers = {
      {{"--garbage", "body"}, "not an IPv4 address: '<html>"},
      {{"--garbage", "ipv6"}, "'2001:db8::42', an IPv6 address"},
      {{"--garbage", "empty"}, "empty"},
      {{"--garbage", "huge"}, "larger than"},
      {{"--garbage", "http"}, ""}, // curl's own words; the source name is what matters
  };
  for (const auto& s : new_sources()) {
    for (const auto& g : answers) {
      auto args = s.fake_args;
      args.insert(args.end(), g.args.begin(), g.args.end());
      FakeServer server("imds.py", args);
      AddressWorld world;
      world.dmi(s.dmi_vendor);
      world.use(server);
      world.config.address_sources = {s.source};
      const auto started = std::chrono::steady_clock::now();
      const auto message = provider_chain_error(world);
      const auto took = std::chrono::steady_clock::now() - started;
      INFO(s.source << " with " << g.args.back() << ": " << message);
      CHECK(message.find(std::string(s.source) + ": ") != std::string::npos);
      CHECK(message.find(g.reason) != std::string::npos);
      CHECK(message.find("[DMI says this is") != std::string::npos);
      CHECK(took < std::chrono::seconds(5));
    }
  }
}

TEST_CASE("address providers chain: a server slower than the response timeout is given up within the budget",
          "[address][providers][chain]") {
  for (const auto& s : new_sources()) {
    FakeServer server("imds.py", plus_args(s.fake_args, {"--slow-ms", "5000"}));
    AddressWorld world;
    world.use(server);
    world.config.address_timeout_seconds = 2;
    world.config.address_sources = {s.source};
    const auto started = std::chrono::steady_clock::now();
    const auto message = provider_chain_error(world);
    const auto took = std::chrono::steady_clock::now() - started;
    INFO(s.source << ": " << message);
    CHECK(message.find(std::string(s.source) + ": ") != std::string::npos);
    CHECK((message.find("timed out") != std::string::npos || message.find("budget") != std::string::npos));
    CHECK(took < std::chrono::milliseconds(3500));
  }
}

TEST_CASE("address providers chain: a slow answer inside the response timeout is still taken",
          "[address][providers][chain]") {
  for (const auto& s : new_sources()) {
    FakeServer server("imds.py", plus_args(s.fake_args, {"--slow-ms", "300"}));
    AddressWorld world;
    world.use(server);
    world.config.address_sources = {s.source};
    const auto found = world.detect();
    INFO(s.source);
    CHECK(found.address == "198.51.100.7");
    CHECK(found.source == s.source);
  }
}

TEST_CASE("address providers chain: a public source that finds none falls through to the next source",
          "[address][providers][chain]") {
  FakeServer server("imds.py", {"--cloud", "openstack", "--public-ip", "", "--private-ip", "10.0.0.12"});
  AddressWorld world;
  world.dmi("OpenStack Foundation");
  world.use(server);
  world.config.address_sources = {"openstack-public", "auto"};
  const auto found = world.detect();
  CHECK(found.address == "10.0.0.12");
  CHECK(found.source == "openstack");
  REQUIRE(found.attempts.size() == 2);
  CHECK(found.attempts[0].detail.find("no floating IP") != std::string::npos);
}

// ---------------------------------------------------------------- DMI: OpenStack and KubeVirt

TEST_CASE("cloud: OpenStack by the DMI strings cloud-init's ds-identify accepts", "[address][cloud][providers]") {
  struct Case {
    const char* file;
    const char* value;
  };
  for (const auto& c : {Case{"product_name", "OpenStack Nova\n"}, Case{"product_name", "OpenStack Compute\n"},
                        Case{"chassis_asset_tag", "OpenTelekomCloud\n"}, Case{"chassis_asset_tag", "SAP CCloud VM\n"},
                        Case{"chassis_asset_tag", "HUAWEICLOUD\n"}, Case{"chassis_asset_tag", "OpenStack Nova\n"},
                        Case{"sys_vendor", "OpenStack Foundation\n"}}) {
    TempDir root;
    root.write(std::string("sys/class/dmi/id/") + c.file, c.value);
    const auto detection = net::detect_cloud(sys::RootFs(root.path()));
    INFO(c.file << " = " << c.value << " -> " << detection.evidence);
    CHECK(detection.cloud == net::Cloud::kOpenStack);
    CHECK(detection.evidence.find(c.file) != std::string::npos);
  }
}

TEST_CASE("cloud: KubeVirt by its SMBIOS defaults, and a plain QEMU guest is no cloud", "[address][cloud][providers]") {
  SECTION("KubeVirt's defaults: manufacturer and family KubeVirt, product None") {
    TempDir root;
    root.write("sys/class/dmi/id/sys_vendor", "KubeVirt\n");
    root.write("sys/class/dmi/id/product_name", "None\n");
    root.write("sys/class/dmi/id/product_family", "KubeVirt\n");
    const auto detection = net::detect_cloud(sys::RootFs(root.path()));
    CHECK(detection.cloud == net::Cloud::kKubeVirt);
    CHECK(detection.evidence.find("sys_vendor is 'KubeVirt'") != std::string::npos);
  }
  SECTION("a manufacturer changed in the KubeVirt resource; the family still says KubeVirt") {
    TempDir root;
    root.write("sys/class/dmi/id/sys_vendor", "Example Corp\n");
    root.write("sys/class/dmi/id/product_family", "KubeVirt\n");
    CHECK(net::detect_cloud(sys::RootFs(root.path())).cloud == net::Cloud::kKubeVirt);
  }
  SECTION("QEMU's own strings, and a product 'None' alone, are nothing") {
    TempDir root;
    root.write("sys/class/dmi/id/sys_vendor", "QEMU\n");
    root.write("sys/class/dmi/id/product_name", "None\n");
    root.write("sys/class/dmi/id/product_family", "\n");
    const auto detection = net::detect_cloud(sys::RootFs(root.path()));
    CHECK(detection.cloud == net::Cloud::kUnknown);
    CHECK(detection.evidence.find("QEMU") != std::string::npos);
  }
}

TEST_CASE("cloud: auto on OpenStack asks its metadata service, on KubeVirt only the local sources",
          "[address][cloud][providers][chain]") {
  using V = std::vector<std::string>;
  CHECK(net::cloud_name(net::Cloud::kOpenStack) == "openstack");
  CHECK(net::cloud_name(net::Cloud::kKubeVirt) == "kubevirt");
  CHECK(net::cloud_metadata_source(net::Cloud::kOpenStack) == "openstack");
  CHECK(net::cloud_metadata_source(net::Cloud::kKubeVirt).empty());
  CHECK(net::expand_address_sources({"auto"}, net::Cloud::kOpenStack) == V{"openstack", "route", "first-global"});
  CHECK(net::expand_address_sources({"auto"}, net::Cloud::kKubeVirt) == V{"route", "first-global"});
  CHECK(net::is_metadata_source("gcp-public"));
  CHECK(net::is_metadata_source("azure-public"));
  CHECK(net::is_metadata_source("openstack-public"));

  SECTION("OpenStack: the fake answers and the address is its local-ipv4") {
    FakeServer server("imds.py", {"--cloud", "openstack", "--private-ip", "10.0.0.12"});
    AddressWorld world;
    world.root.write("sys/class/dmi/id/product_name", "OpenStack Nova\n");
    world.use(server);
    const auto found = world.detect();
    CHECK(found.cloud.cloud == net::Cloud::kOpenStack);
    CHECK(found.source == "openstack");
    CHECK(found.address == "10.0.0.12");
  }
  SECTION("KubeVirt: no metadata service is asked") {
    FakeServer server("imds.py", {"--cloud", "openstack"});
    AddressWorld world;
    world.dmi("KubeVirt");
    world.use(server);
    try {
      const auto found = world.detect();
      CHECK((found.source == "route" || found.source == "first-global"));
      CHECK(found.cloud.cloud == net::Cloud::kKubeVirt);
    } catch (const Error& e) {
      CHECK(std::string(e.what()).find("route:") != std::string::npos); // a host without any network
    }
    CHECK(server.log().empty());
  }
}

// ---------------------------------------------------------------- the command

TEST_CASE("detect-address: each new source can be chosen by name and is reported as the source",
          "[address][providers][cli]") {
  for (const auto& s : new_sources()) {
    FakeServer server("imds.py", s.fake_args);
    TempDir root;
    root.write("sys/class/dmi/id/sys_vendor", std::string(s.dmi_vendor) + "\n");
    const auto r = run_binary({"detect-address", "--root", root.path().string(), "--imds-endpoint", server.url(),
                               "--sources", s.source, "--output", "json"});
    INFO(s.source << ": " << r.out << r.err);
    REQUIRE(r.exit_code == 0);
    const auto doc = nlohmann::json::parse(r.out);
    CHECK(doc["address"] == "198.51.100.7");
    CHECK(doc["source"] == s.source);
  }
}
