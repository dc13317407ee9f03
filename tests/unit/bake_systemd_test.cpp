// Starting a unit through systemd's D-Bus API (sd-bus) against a fake
// org.freedesktop.systemd1 (tests/fakes/fake_systemd.py) on a private dbus-daemon: the
// real libsystemd client code, a real bus, no systemd needed.

#include "test_support.hpp"

#include "kasm_bootstrap/error.hpp"
#include "kasm_bootstrap/system/root_fs.hpp"
#include "kasm_bootstrap/system/systemd_units.hpp"

#include <unistd.h>

using namespace kb;
using namespace kb::test;

namespace {

bool fake_systemd_possible() {
  if (::access("/usr/bin/dbus-daemon", X_OK) != 0) return false;
  return run_process({"/usr/bin/python3", "-c", "import dbus, gi"}).exit_code == 0;
}

#define KB_REQUIRE_FAKE_SYSTEMD()                                                                                      \
  if (!fake_systemd_possible()) {                                                                                      \
    KB_SKIP("needs dbus-daemon, python3-dbus and python3-gi — see scripts/install-deps.sh --test");                    \
  }

struct FakeSystemd {
  TempDir dir;
  std::string socket = (dir.path() / "bus").string();
  FakeServer server;
  explicit FakeSystemd(const std::string& mode)
      : server("fake_systemd.py", {"--socket", socket, "--mode", mode, "--activating-polls", "3"}) {}
  sys::UnitStartOptions options(std::chrono::milliseconds timeout = std::chrono::seconds(20)) const {
    sys::UnitStartOptions o;
    o.bus_address = "unix:path=" + socket;
    o.timeout = timeout;
    o.poll_interval = std::chrono::milliseconds(20);
    return o;
  }
};

std::string error_of(const std::string& unit, const sys::UnitStartOptions& options) {
  try {
    sys::start_unit_and_wait(unit, options);
  } catch (const Error& e) {
    CHECK(e.code() == ExitCode::kDocker);
    return e.what();
  }
  return "(no error)";
}

} // namespace

TEST_CASE("systemd: StartUnit docker.service replace, then ActiveState until active", "[bake][systemd]") {
  KB_REQUIRE_FAKE_SYSTEMD();
  FakeSystemd fake("ok");
  const auto r = sys::start_unit_and_wait("docker.service", fake.options());
  CHECK(r.job == "/org/freedesktop/systemd1/job/42");
  CHECK(r.active_state == "active");
  CHECK(r.polls == 4); // three reads of "activating", then "active"
  const auto log = fake.server.log();
  CHECK(log.find("StartUnit docker.service replace") != std::string::npos);
  CHECK(log.find("GetUnit docker.service") != std::string::npos);
  CHECK(log.find("Get org.freedesktop.systemd1.Unit ActiveState") != std::string::npos);
}

TEST_CASE("systemd: a failed unit, a refused start, a start that never ends, no bus", "[bake][systemd]") {
  KB_REQUIRE_FAKE_SYSTEMD();
  SECTION("failed") {
    FakeSystemd fake("fail");
    const auto e = error_of("docker.service", fake.options());
    CHECK(e.find("docker.service failed to start (ActiveState=failed, SubState=failed)") != std::string::npos);
  }
  SECTION("refused") {
    FakeSystemd fake("refuse");
    const auto e = error_of("docker.service", fake.options());
    CHECK(e.find("systemd refused to start docker.service: org.freedesktop.systemd1.NoSuchUnit") != std::string::npos);
  }
  SECTION("deadline") {
    FakeSystemd fake("hang");
    const auto e = error_of("docker.service", fake.options(std::chrono::milliseconds(300)));
    CHECK(e.find("docker.service is still activating after 300 ms") != std::string::npos);
  }
  SECTION("no bus at the address") {
    TempDir dir;
    sys::UnitStartOptions o;
    o.bus_address = "unix:path=" + (dir.path() / "nobody-listens").string();
    CHECK(error_of("docker.service", o).find("cannot connect to D-Bus at unix:path=") != std::string::npos);
  }
}

TEST_CASE("systemd: in charge only on the real root with /run/systemd/system", "[bake][systemd]") {
  TempDir root;
  root.write("run/systemd/system/.keep", "");
  CHECK_FALSE(sys::systemd_in_charge(sys::RootFs(root.path())));
}
