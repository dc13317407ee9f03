// GCP, Azure, Oracle Cloud and DigitalOcean metadata services (net/metadata_services.hpp)
// against tests/fakes/imds.py, which refuses requests without each service's header just
// as the real one does.

#include "address_fixtures.hpp"
#include "test_support.hpp"

#include "kasm_bootstrap/net/metadata_services.hpp"
#include "kasm_bootstrap/net/source_error.hpp"

using namespace kb;
using namespace kb::test;

namespace {

struct Service {
  net::HttpClient http;
  net::Budget budget{std::chrono::seconds(10)};
  net::MetadataClient client;
  explicit Service(const FakeServer& server) : client(http, server.url(), budget) {}
};

} // namespace

TEST_CASE("gcp: the address comes with Metadata-Flavor: Google both ways", "[address][services]") {
  FakeServer server("imds.py", {"--cloud", "gcp", "--private-ip", "10.128.0.7"});
  Service gcp(server);
  CHECK(net::gcp_address(gcp.client) == "10.128.0.7");
  CHECK(count_of(server.log(), "GET /computeMetadata/v1/instance/network-interfaces/0/ip flavor=yes -> 200") == 1);
}

TEST_CASE("gcp: an answer without the Metadata-Flavor header is not from GCP and is refused", "[address][services]") {
  FakeServer server("imds.py", {"--cloud", "gcp", "--no-flavor-header"});
  Service gcp(server);
  CHECK(source_error([&] { net::gcp_address(gcp.client); }).find("not the GCP metadata server") != std::string::npos);
}

TEST_CASE("gcp: the fake refuses a request without the header (so the passing test above proves we send it)",
          "[address][services][fake]") {
  FakeServer server("imds.py", {"--cloud", "gcp"});
  net::HttpClient http;
  net::HttpRequest bare;
  bare.url = server.url() + "/computeMetadata/v1/instance/network-interfaces/0/ip";
  CHECK(http.send(bare).status == 403);
}

TEST_CASE("azure: the private address with Metadata: true, api-version and format=text", "[address][services]") {
  FakeServer server("imds.py", {"--cloud", "azure", "--private-ip", "10.1.0.4"});
  Service azure(server);
  CHECK(net::azure_address(azure.client) == "10.1.0.4");
  CHECK(count_of(server.log(), "metadata-header=yes -> 200") == 1);
}

TEST_CASE("azure: a refusal is reported with its status and body", "[address][services]") {
  FakeServer server("imds.py", {"--cloud", "azure", "--disabled"});
  Service azure(server);
  const auto message = source_error([&] { net::azure_address(azure.client); });
  CHECK(message.find("HTTP 403") != std::string::npos);
  CHECK(message.find("privateIpAddress") != std::string::npos);
}

TEST_CASE("oci: the first VNIC's privateIp, asked with Authorization: Bearer Oracle", "[address][services]") {
  FakeServer server("imds.py", {"--cloud", "oci", "--private-ip", "10.0.0.23"});
  Service oci(server);
  CHECK(net::oci_address(oci.client) == "10.0.0.23");
  CHECK(count_of(server.log(), "GET /opc/v2/vnics/ auth=yes -> 200") == 1);
}

TEST_CASE("oci: bodies that are not a VNIC list are refused with the reason", "[address][services]") {
  SECTION("not JSON") {
    FakeServer server("imds.py", {"--cloud", "oci", "--garbage", "json"});
    Service oci(server);
    CHECK(source_error([&] { net::oci_address(oci.client); }).find("not JSON") != std::string::npos);
  }
  SECTION("an empty list") {
    FakeServer server("imds.py", {"--cloud", "oci", "--oci-body", "[]"});
    Service oci(server);
    CHECK(source_error([&] { net::oci_address(oci.client); }).find("without any VNIC") != std::string::npos);
  }
  SECTION("a VNIC without privateIp") {
    FakeServer server("imds.py", {"--cloud", "oci", "--oci-body", R"([{"vnicId":"x","privateIp":7}])"});
    Service oci(server);
    CHECK(source_error([&] { net::oci_address(oci.client); }).find("no privateIp") != std::string::npos);
  }
}

TEST_CASE("digitalocean: the private interface first, the public one when there is no VPC interface",
          "[address][services]") {
  SECTION("private") {
    FakeServer server("imds.py", {"--cloud", "digitalocean", "--private-ip", "10.116.0.2"});
    Service doc(server);
    CHECK(net::digitalocean_address(doc.client) == "10.116.0.2");
  }
  SECTION("public") {
    FakeServer server("imds.py", {"--cloud", "digitalocean", "--no-private", "--public-ip", "203.0.113.40"});
    Service doc(server);
    CHECK(net::digitalocean_address(doc.client) == "203.0.113.40");
    CHECK(count_of(server.log(), "private/0/ipv4/address -> 404") == 1);
  }
}

TEST_CASE("services chain: each cloud's DMI picks its own service under auto", "[address][services][chain]") {
  struct Case {
    const char* vendor;
    const char* cloud;
    const char* source;
  };
  for (const auto& c : {Case{"Google", "gcp", "gcp"}, Case{"Microsoft Corporation", "azure", "azure"},
                        Case{"DigitalOcean", "digitalocean", "digitalocean"}}) {
    FakeServer server("imds.py", {"--cloud", c.cloud, "--private-ip", "10.20.30.40"});
    AddressWorld world;
    world.dmi(c.vendor);
    world.use(server);
    const auto found = world.detect();
    INFO(c.vendor);
    CHECK(found.source == c.source);
    CHECK(found.address == "10.20.30.40");
    CHECK(found.attempts.size() == 1);
  }
  FakeServer server("imds.py", {"--cloud", "oci", "--private-ip", "10.20.30.41"});
  AddressWorld world;
  world.root.write("sys/class/dmi/id/chassis_asset_tag", "OracleCloud.com\n");
  world.use(server);
  CHECK(world.detect().source == "oci");
}
