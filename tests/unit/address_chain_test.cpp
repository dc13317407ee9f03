// The address chain (net/address_chain.hpp) and the detect-address command: explicit
// values win without a lookup, "auto" follows DMI, every skipped source leaves its reason,
// the time budget bounds the metadata sources. Metadata requests go to loopback fakes.

#include "address_fixtures.hpp"
#include "test_support.hpp"

#include "kasm_bootstrap/error.hpp"
#include "kasm_bootstrap/net/agent_ip.hpp"
#include "kasm_bootstrap/net/local_address.hpp"
#include "kasm_bootstrap/net/source_error.hpp"

#include <nlohmann/json.hpp>

using namespace kb;
using namespace kb::test;

namespace {

std::string chain_error(const AddressWorld& world, ExitCode expected = ExitCode::kAddress) {
  try {
    world.detect();
  } catch (const Error& e) {
    CHECK(e.code() == expected);
    return e.what();
  }
  FAIL("detection succeeded where it should have failed");
  return {};
}

} // namespace

TEST_CASE("chain: external_fqdn wins without any lookup, even over agent_address", "[address][chain]") {
  FakeServer server("imds.py", {});
  AddressWorld world;
  world.dmi("Amazon EC2");
  world.use(server);
  world.config.external_fqdn = "agent-7.kasm.example.com";
  world.config.agent_address = "10.0.0.9";
  const auto found = world.detect();
  CHECK(found.address == "agent-7.kasm.example.com");
  CHECK(found.source == "external_fqdn");
  CHECK(server.log().empty());
}

TEST_CASE("chain: an explicit agent_address wins without any lookup, in canonical form", "[address][chain]") {
  FakeServer server("imds.py", {});
  AddressWorld world;
  world.dmi("Amazon EC2");
  world.use(server);
  world.config.agent_address = "2600:1F18::0042";
  const auto found = world.detect();
  CHECK(found.address == "2600:1f18::42");
  CHECK(found.source == "agent_address");
  CHECK(server.log().empty());
}

TEST_CASE("chain: auto expands to the detected cloud's service, then route, then first-global", "[address][chain]") {
  using V = std::vector<std::string>;
  CHECK(net::expand_address_sources({"auto"}, net::Cloud::kAws) == V{"aws-imds", "route", "first-global"});
  CHECK(net::expand_address_sources({"auto"}, net::Cloud::kOci) == V{"oci", "route", "first-global"});
  CHECK(net::expand_address_sources({"auto"}, net::Cloud::kUnknown) == V{"route", "first-global"});
  CHECK(net::expand_address_sources({"aws-imds-public", "auto"}, net::Cloud::kAws) ==
        V{"aws-imds-public", "aws-imds", "route", "first-global"});
  CHECK(net::expand_address_sources({"interface:ens5", "route", "auto"}, net::Cloud::kUnknown) ==
        V{"interface:ens5", "route", "first-global"});
  CHECK(net::expand_address_sources({"gcp"}, net::Cloud::kAws) == V{"gcp"});
}

TEST_CASE("chain: on AWS, auto asks IMDSv2 first", "[address][chain]") {
  FakeServer server("imds.py", {"--local-ipv4", "172.31.40.2"});
  AddressWorld world;
  world.dmi("Amazon EC2");
  world.use(server);
  const auto found = world.detect();
  CHECK(found.address == "172.31.40.2");
  CHECK(found.source == "aws-imds");
  CHECK(found.cloud.cloud == net::Cloud::kAws);
  REQUIRE(found.attempts.size() == 1);
  CHECK(found.attempts[0].succeeded);
}

TEST_CASE("chain: a metadata service not in the chain is never asked", "[address][chain]") {
  FakeServer server("imds.py", {});
  AddressWorld world; // no DMI: unknown cloud
  world.use(server);
  world.config.address_sources = {"auto", "interface:lo"};
  try {
    const auto found = world.detect();
    CHECK((found.source == "route" || found.source == "first-global"));
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("route:") != std::string::npos); // a host without any network
  }
  CHECK(server.log().empty());
}

TEST_CASE("chain: every failed source is named in order with its reason", "[address][chain]") {
  FakeServer server("imds.py", {"--disabled"});
  AddressWorld world;
  world.dmi("Amazon EC2");
  world.use(server);
  world.config.address_sources = {"aws-imds", "interface:kbnosuch0", "interface:lo"};
  const auto message = chain_error(world);
  INFO(message);
  const auto imds = message.find("aws-imds: ");
  const auto missing = message.find("interface:kbnosuch0: no interface named 'kbnosuch0' (interfaces: ");
  const auto lo = message.find("interface:lo: interface lo has no usable address");
  CHECK(imds != std::string::npos);
  CHECK(missing != std::string::npos);
  CHECK(lo != std::string::npos);
  CHECK(imds < missing);
  CHECK(missing < lo);
  CHECK(message.find("disabled") != std::string::npos);
}

TEST_CASE("chain: the time budget stops the metadata sources; local sources still run", "[address][chain]") {
  FakeServer server("imds.py", {"--hang"});
  AddressWorld world;
  world.use(server);
  world.config.address_timeout_seconds = 1;
  world.config.address_sources = {"aws-imds", "gcp", "interface:lo"};
  const auto message = chain_error(world);
  INFO(message);
  CHECK(message.find("gcp: not asked: the address_timeout_seconds budget (1 s) is used up") != std::string::npos);
  CHECK(message.find("interface:lo: interface lo has no usable address") != std::string::npos);
  CHECK(count_of(server.log(), "computeMetadata") == 0);
}

TEST_CASE("chain: a cancel (SIGTERM) stops detection with the interrupted class", "[address][chain]") {
  FakeServer server("imds.py", {"--hang"});
  AddressWorld world;
  world.use(server);
  std::atomic<bool> cancel{true};
  try {
    net::detect_agent_address(world.config, world.machine, &cancel);
    FAIL("detection ignored the cancel");
  } catch (const Error& e) {
    CHECK(e.code() == ExitCode::kInterrupted);
  }
  CHECK(server.log().empty());
}

TEST_CASE("local: the route source is the kernel's own choice for 1.1.1.1", "[address][local]") {
  // `ip route get` reads the same routing table the UDP connect consults.
  const auto r = run_process({"ip", "-4", "route", "get", "1.1.1.1"});
  const auto at = r.out.find(" src ");
  std::string expected;
  if (r.exit_code == 0 && at != std::string::npos) {
    expected = r.out.substr(at + 5);
    expected = expected.substr(0, expected.find(' '));
  }
  if (expected.empty() || !net::check_agent_address(expected).usable()) {
    WARN("this host has no usable IPv4 default route (" << r.out << r.err << "); checking the refusal instead");
    CHECK_THROWS_AS(net::route_source_address(), net::SourceError);
    return;
  }
  CHECK(net::route_source_address() == expected);
}

TEST_CASE("local: interface sources refuse loopback and unknown names with the reason", "[address][local]") {
  try {
    net::interface_address("lo");
    FAIL("loopback was accepted");
  } catch (const net::SourceError& e) {
    CHECK(std::string(e.what()).find("loopback") != std::string::npos);
  }
  try {
    net::interface_address("kbnosuch0");
    FAIL("a missing interface was accepted");
  } catch (const net::SourceError& e) {
    CHECK(std::string(e.what()).find("lo") != std::string::npos); // lists the interfaces there are
  }
}

TEST_CASE("detect-address: prints the address and its source, as text and as JSON", "[address][cli]") {
  FakeServer server("imds.py", {"--local-ipv4", "172.31.40.2"});
  TempDir root;
  root.write("sys/class/dmi/id/sys_vendor", "Amazon EC2\n");
  const std::vector<std::string> common{"detect-address", "--root", root.path().string(), "--imds-endpoint",
                                        server.url()};
  auto args = common;
  const auto text = run_binary(args);
  INFO(text.out << text.err);
  CHECK(text.exit_code == 0);
  CHECK(text.out == "agent_address: 172.31.40.2\naddress_source: aws-imds\n");

  args.insert(args.end(), {"--output", "json"});
  const auto json = run_binary(args);
  REQUIRE(json.exit_code == 0);
  const auto doc = nlohmann::json::parse(json.out);
  CHECK(doc["address"] == "172.31.40.2");
  CHECK(doc["source"] == "aws-imds");
  CHECK(doc["cloud"] == "aws");
  CHECK(doc["attempts"].size() == 1);
}

TEST_CASE("detect-address: skipped sources are logged with their reason, and reported in JSON", "[address][cli]") {
  FakeServer server("imds.py", {"--disabled"});
  TempDir root;
  const auto r = run_binary({"detect-address", "--root", root.path().string(), "--imds-endpoint", server.url(),
                             "--sources", "aws-imds,interface:lo", "--output", "json"});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 4);
  CHECK(r.err.find("address source aws-imds skipped after") != std::string::npos);
  CHECK(r.err.find("address source interface:lo skipped after") != std::string::npos);
  const auto doc = nlohmann::json::parse(r.out);
  CHECK(doc["result"] == "error");
  CHECK(doc["exit_code"] == 4);
  CHECK(doc["error"].get<std::string>().find("IMDS") != std::string::npos);
}

TEST_CASE("detect-address: an unknown source is a configuration error naming it", "[address][cli]") {
  TempDir root;
  const auto r = run_binary({"detect-address", "--root", root.path().string(), "--sources", "route,carrier-pigeon"});
  CHECK(r.exit_code == 3);
  CHECK(r.err.find("carrier-pigeon") != std::string::npos);
  CHECK(r.err.find("address_sources") != std::string::npos);
}
