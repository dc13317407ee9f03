#include "kasm_bootstrap/system/systemd_units.hpp"

#include "kasm_bootstrap/error.hpp"
#include "kasm_bootstrap/system/root_fs.hpp"
#include "kasm_bootstrap/util/errno_text.hpp"
#include "kasm_bootstrap/util/log.hpp"

#include <systemd/sd-bus.h>

#include <fmt/format.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>

namespace kb::sys {
namespace {

constexpr const char* kService = "org.freedesktop.systemd1";
constexpr const char* kManagerPath = "/org/freedesktop/systemd1";
constexpr const char* kManagerInterface = "org.freedesktop.systemd1.Manager";
constexpr const char* kUnitInterface = "org.freedesktop.systemd1.Unit";

struct BusUnref {
  void operator()(sd_bus* b) const { sd_bus_flush_close_unref(b); }
};
struct MessageUnref {
  void operator()(sd_bus_message* m) const { sd_bus_message_unref(m); }
};
using Bus = std::unique_ptr<sd_bus, BusUnref>;
using Message = std::unique_ptr<sd_bus_message, MessageUnref>;

// sd_bus_error owns strings it may allocate; free them whatever happens.
struct BusError {
  sd_bus_error e{}; // SD_BUS_ERROR_NULL is a C compound literal (clang -Wc99-extensions)
  ~BusError() { sd_bus_error_free(&e); }
  std::string describe(int r) const {
    if (sd_bus_error_is_set(&e)) return fmt::format("{}: {}", e.name, e.message ? e.message : "");
    return util::errno_text(-r);
  }
};

[[noreturn]] void fail(const std::string& what) { throw Error(ExitCode::kDocker, what); }

Bus open_bus(const std::string& address) {
  sd_bus* raw = nullptr;
  int r = 0;
  if (address.empty()) {
    r = sd_bus_open_system(&raw);
    if (r < 0) fail(fmt::format("cannot connect to the system D-Bus to reach systemd: {}", util::errno_text(-r)));
    return Bus(raw);
  }
  r = sd_bus_new(&raw);
  if (r < 0) fail(fmt::format("sd_bus_new: {}", util::errno_text(-r)));
  Bus bus(raw);
  if ((r = sd_bus_set_address(bus.get(), address.c_str())) < 0 || (r = sd_bus_set_bus_client(bus.get(), 1)) < 0 ||
      (r = sd_bus_start(bus.get())) < 0)
    fail(fmt::format("cannot connect to D-Bus at {}: {}", address, util::errno_text(-r)));
  return bus;
}

std::string unit_path(sd_bus* bus, const std::string& unit) {
  BusError error;
  sd_bus_message* raw = nullptr;
  const int r =
      sd_bus_call_method(bus, kService, kManagerPath, kManagerInterface, "GetUnit", &error.e, &raw, "s", unit.c_str());
  Message reply(raw);
  if (r < 0) fail(fmt::format("systemd GetUnit {}: {}", unit, error.describe(r)));
  const char* path = nullptr;
  if (sd_bus_message_read(reply.get(), "o", &path) < 0 || !path)
    fail("systemd answered GetUnit " + unit + " without an object path");
  return path;
}

std::string property(sd_bus* bus, const std::string& path, const char* name) {
  BusError error;
  char* value = nullptr;
  const int r = sd_bus_get_property_string(bus, kService, path.c_str(), kUnitInterface, name, &error.e, &value);
  if (r < 0) fail(fmt::format("systemd {} of {}: {}", name, path, error.describe(r)));
  // sd-bus returns the string from malloc(); the documented way to release it is free().
  const std::unique_ptr<char, decltype(&::free)> owned(value, &::free);
  return value ? value : "";
}

} // namespace

bool systemd_in_charge(const RootFs& fs) { return fs.is_real_root() && fs.exists("/run/systemd/system"); }

UnitStartResult start_unit_and_wait(const std::string& unit, const UnitStartOptions& options) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + options.timeout;
  Bus bus = open_bus(options.bus_address);
  UnitStartResult result;
  {
    BusError error;
    sd_bus_message* raw = nullptr;
    const int r = sd_bus_call_method(bus.get(), kService, kManagerPath, kManagerInterface, "StartUnit", &error.e, &raw,
                                     "ss", unit.c_str(), "replace");
    Message reply(raw);
    if (r < 0) fail(fmt::format("systemd refused to start {}: {}", unit, error.describe(r)));
    const char* job = nullptr;
    if (sd_bus_message_read(reply.get(), "o", &job) < 0 || !job)
      fail("systemd answered StartUnit " + unit + " without a job path");
    result.job = job;
  }
  log::info("systemd: start job {} for {}", result.job, unit);
  // Polling ActiveState rather than waiting for JobRemoved: a job that finished before
  // we could subscribe would otherwise be missed, and the state is what we need anyway.
  const auto path = unit_path(bus.get(), unit);
  for (;;) {
    ++result.polls;
    result.active_state = property(bus.get(), path, "ActiveState");
    if (result.active_state == "active") return result;
    if (result.active_state == "failed")
      fail(fmt::format("{} failed to start (ActiveState=failed, SubState={}); see journalctl -u {}", unit,
                       property(bus.get(), path, "SubState"), unit));
    if (Clock::now() + options.poll_interval > deadline)
      fail(fmt::format("{} is still {} after {} ms; systemd's start job {} did not finish in time", unit,
                       result.active_state, options.timeout.count(), result.job));
    std::this_thread::sleep_for(options.poll_interval);
  }
}

} // namespace kb::sys
