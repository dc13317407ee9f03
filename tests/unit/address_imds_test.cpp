// AWS IMDSv2 (net/aws_imds.hpp) against tests/fakes/imds.py on loopback: the token
// protocol, every failure the service can produce, and what the chain makes of each.

#include "address_fixtures.hpp"
#include "test_support.hpp"

#include "kasm_bootstrap/error.hpp"
#include "kasm_bootstrap/net/aws_imds.hpp"
#include "kasm_bootstrap/net/source_error.hpp"

using namespace kb;
using namespace kb::test;
using std::chrono::milliseconds;

namespace {

struct Imds {
  net::HttpClient http;
  net::Budget budget;
  net::MetadataClient client;
  net::AwsImds imds;
  Imds(const FakeServer& server, milliseconds total = std::chrono::seconds(10))
      : budget(total), client(http, server.url(), budget), imds(client) {}
};

} // namespace

TEST_CASE("imds: with tokens required, the private address comes through a PUT token", "[address][imds]") {
  FakeServer server("imds.py", {"--tokens", "required", "--local-ipv4", "172.31.7.19"});
  Imds aws(server);
  CHECK(aws.imds.private_address() == "172.31.7.19");
  const auto log = server.log();
  INFO(log);
  CHECK(count_of(log, "PUT /latest/api/token ttl=21600 -> 200") == 1);
  CHECK(count_of(log, "GET /latest/meta-data/local-ipv4 token=yes -> 200") == 1);
  CHECK(count_of(log, "token=no") == 0);
}

TEST_CASE("imds: the fake refuses a tokenless GET with 401, as AWS does for the bash script's IMDSv1 call",
          "[address][imds][fake]") {
  FakeServer server("imds.py", {"--tokens", "required"});
  net::HttpClient http;
  net::HttpRequest plain;
  plain.url = server.url() + "/latest/meta-data/local-ipv4";
  const auto r = http.send(plain);
  CHECK(r.status == 401);
  CHECK(r.body.find("172.31") == std::string::npos);
}

TEST_CASE("imds: one token serves several items", "[address][imds]") {
  FakeServer server("imds.py", {"--public-ipv4", "198.51.100.9"});
  Imds aws(server);
  CHECK(aws.imds.private_address() == "172.31.7.19");
  CHECK(aws.imds.public_address() == "198.51.100.9");
  CHECK(count_of(server.log(), "PUT /latest/api/token") == 1);
}

TEST_CASE("imds: a refused (expired) token is replaced once and the GET repeated", "[address][imds]") {
  FakeServer server("imds.py", {"--token-uses", "1", "--public-ipv4", "198.51.100.9"});
  Imds aws(server);
  CHECK(aws.imds.private_address() == "172.31.7.19");
  CHECK(aws.imds.public_address() == "198.51.100.9"); // the first token is used up by now
  const auto log = server.log();
  INFO(log);
  CHECK(count_of(log, "PUT /latest/api/token ttl=21600 -> 200") == 2);
  CHECK(count_of(log, "token=bad -> 401") == 1);
}

TEST_CASE("imds: 403 means IMDS is disabled, and the error says so", "[address][imds]") {
  FakeServer server("imds.py", {"--disabled"});
  Imds aws(server);
  const auto message = source_error([&] { aws.imds.private_address(); });
  CHECK(message.find("403") != std::string::npos);
  CHECK(message.find("disabled") != std::string::npos);
  CHECK(count_of(server.log(), "->") == 1); // not retried: it will not change
}

TEST_CASE("imds: 404 is an absent item; public address falls back to the interface's IPv6", "[address][imds]") {
  SECTION("no public IPv4 and no IPv6: the error says the instance has no public address") {
    FakeServer server("imds.py", {});
    Imds aws(server);
    CHECK(aws.imds.get("public-ipv4") == std::nullopt);
    const auto message = source_error([&] { aws.imds.public_address(); });
    CHECK(message.find("no public IPv4") != std::string::npos);
  }
  SECTION("no public IPv4 but an IPv6 on the primary interface") {
    FakeServer server("imds.py", {"--mac-ipv6s", "2600:1f18:abcd::42\n2600:1f18:abcd::43"});
    Imds aws(server);
    CHECK(aws.imds.public_address() == "2600:1f18:abcd::42");
    CHECK(count_of(server.log(), "GET /latest/meta-data/network/interfaces/macs/0e:12:34:56:78:9a/ipv6s") == 1);
  }
  SECTION("an IPv6-only instance has no local-ipv4: the private address is its ipv6") {
    FakeServer server("imds.py", {"--local-ipv4", "", "--ipv6", "2600:1f18:abcd::7"});
    Imds aws(server);
    CHECK(aws.imds.private_address() == "2600:1f18:abcd::7");
  }
}

TEST_CASE("imds: throttling is retried with backoff until it clears", "[address][imds]") {
  SECTION("429") {
    FakeServer server("imds.py", {"--throttle", "2", "--throttle-status", "429"});
    Imds aws(server);
    CHECK(aws.imds.private_address() == "172.31.7.19");
    CHECK(count_of(server.log(), "(throttled) -> 429") == 2);
  }
  SECTION("503 with Retry-After") {
    FakeServer server("imds.py", {"--throttle", "1", "--throttle-status", "503", "--retry-after", "0"});
    Imds aws(server);
    CHECK(aws.imds.private_address() == "172.31.7.19");
    CHECK(count_of(server.log(), "(throttled) -> 503") == 1);
  }
}

TEST_CASE("imds: throttling that outlasts the retries fails with the status, bounded", "[address][imds]") {
  FakeServer server("imds.py", {"--throttle", "1000"});
  Imds aws(server);
  const auto message = source_error([&] { aws.imds.private_address(); });
  INFO(message);
  CHECK(message.find("HTTP 429") != std::string::npos);
  CHECK(message.find("3 tries") != std::string::npos);
  CHECK(count_of(server.log(), "-> 429") == 3);
}

TEST_CASE("imds: no answer to the token PUT says IMDS may be disabled or its hop limit too low", "[address][imds]") {
  FakeServer server("imds.py", {"--hang-token"});
  Imds aws(server);
  const auto message = source_error([&] { aws.imds.private_address(); });
  INFO(message);
  CHECK(message.find("no answer to the IMDSv2 token request") != std::string::npos);
  CHECK(message.find("IMDS may be disabled") != std::string::npos);
  CHECK(message.find("hop limit") != std::string::npos);
  CHECK(count_of(server.log(), "PUT /latest/api/token ttl=21600 -> (no answer)") == 3);
}

TEST_CASE("imds: a service that never answers anything is given up after the bounded retries", "[address][imds]") {
  FakeServer server("imds.py", {"--hang"});
  Imds aws(server);
  const auto message = source_error([&] { aws.imds.private_address(); });
  CHECK(message.find("timed out") != std::string::npos);
  CHECK(count_of(server.log(), "(no answer)") == 3);
}

TEST_CASE("imds: a slow answer within the response timeout is still taken", "[address][imds]") {
  FakeServer server("imds.py", {"--slow-ms", "200"});
  Imds aws(server);
  CHECK(aws.imds.private_address() == "172.31.7.19");
}

TEST_CASE("imds: an answer slower than the response timeout is a timeout, not a hang", "[address][imds]") {
  FakeServer server("imds.py", {"--slow-ms", "5000"});
  Imds aws(server);
  const auto message = source_error([&] { aws.imds.private_address(); });
  CHECK(message.find("timed out") != std::string::npos);
}

TEST_CASE("imds: the time budget ends the retries early", "[address][imds]") {
  FakeServer server("imds.py", {"--hang"});
  Imds aws(server, milliseconds(400));
  const auto message = source_error([&] { aws.imds.private_address(); });
  INFO(message);
  CHECK(message.find("budget") != std::string::npos);
  CHECK(count_of(server.log(), "(no answer)") == 1);
}

TEST_CASE("imds: garbage instead of a token or instead of HTTP is refused with the reason", "[address][imds]") {
  SECTION("a token with spaces and newlines") {
    FakeServer server("imds.py", {"--garbage", "token"});
    Imds aws(server);
    CHECK(source_error([&] { aws.imds.private_address(); }).find("not a token") != std::string::npos);
  }
  SECTION("bytes that are not HTTP") {
    FakeServer server("imds.py", {"--garbage", "http"});
    Imds aws(server);
    CHECK_FALSE(source_error([&] { aws.imds.private_address(); }).empty());
  }
  SECTION("a body far larger than any metadata item") {
    FakeServer server("imds.py", {"--garbage", "huge"});
    Imds aws(server);
    const auto message = source_error([&] { aws.imds.private_address(); });
    CHECK(message.find("larger than") != std::string::npos);
  }
}

TEST_CASE("imds: a service without IMDSv2 (PUT refused with 405) is asked without a token", "[address][imds]") {
  FakeServer server("imds.py", {"--tokens", "unsupported"});
  Imds aws(server);
  CHECK(aws.imds.private_address() == "172.31.7.19");
  CHECK(count_of(server.log(), "GET /latest/meta-data/local-ipv4 token=no -> 200") == 1);
}

TEST_CASE("imds: the IPv6 endpoint works the same way", "[address][imds]") {
  FakeServer server("imds.py", {"--bind", "::1"});
  net::HttpClient http;
  net::Budget budget(std::chrono::seconds(10));
  net::MetadataClient client(http, server.url("::1") + "/", budget);
  net::AwsImds imds(client);
  CHECK(imds.private_address() == "172.31.7.19");
}

TEST_CASE("imds chain: garbage bodies are not addresses; the chain says so and moves on", "[address][imds][chain]") {
  for (const char* mode : {"body", "binary"}) {
    FakeServer server("imds.py", {"--garbage", mode});
    AddressWorld world;
    world.dmi("Amazon EC2");
    world.use(server);
    world.config.address_sources = {"aws-imds", "interface:lo"};
    INFO(mode);
    try {
      world.detect();
      FAIL("a garbage body or a loopback interface was taken as the agent address");
    } catch (const Error& e) {
      const std::string message = e.what();
      INFO(message);
      CHECK(e.code() == ExitCode::kAddress);
      CHECK(message.find("aws-imds: answered, but '") != std::string::npos);
      CHECK(message.find("is not an IP address") != std::string::npos);
      CHECK(message.find("interface:lo: interface lo has no usable address (127.0.0.1 is a loopback address") !=
            std::string::npos);
    }
  }
}

TEST_CASE("imds chain: DMI says AWS and the token PUT gets no answer: the reason names hop limit and DMI",
          "[address][imds][chain]") {
  FakeServer server("imds.py", {"--hang-token"});
  AddressWorld world;
  world.dmi("Amazon EC2");
  world.use(server);
  world.config.address_sources = {"aws-imds"};
  try {
    world.detect();
    FAIL("detection succeeded without an address source that can answer");
  } catch (const Error& e) {
    const std::string message = e.what();
    INFO(message);
    CHECK(e.code() == ExitCode::kAddress);
    CHECK(message.find("hop limit") != std::string::npos);
    CHECK(message.find("DMI says this is aws") != std::string::npos);
    CHECK(message.find("Set agent_address") != std::string::npos);
  }
}
