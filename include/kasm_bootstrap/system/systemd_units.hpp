#pragma once
// Asking systemd to start a unit through its D-Bus API (sd-bus), and waiting for it to
// be active: no systemctl binary, and an error that says which state the unit ended in.

#include <chrono>
#include <optional>
#include <string>

namespace kb::sys {

class RootFs;

// systemd manages this machine: the root is "/" and /run/systemd/system exists.
bool systemd_in_charge(const RootFs& fs);

struct UnitStartOptions {
  // Empty: the system bus (sd_bus_open_system, which honours DBUS_SYSTEM_BUS_ADDRESS).
  // Tests give the address of a private bus with a fake org.freedesktop.systemd1.
  std::string bus_address;
  std::chrono::milliseconds timeout{std::chrono::seconds(120)};
  std::chrono::milliseconds poll_interval{100};
};

struct UnitStartResult {
  std::string job;          // object path of the start job
  std::string active_state; // "active"
  int polls = 0;
};

// Manager.StartUnit(unit, "replace"), then polls Unit.ActiveState until "active".
// Throws kb::Error(kDocker) when the bus or systemd refuses, the unit fails, or the
// deadline passes, naming the unit and its last state.
UnitStartResult start_unit_and_wait(const std::string& unit, const UnitStartOptions& options);

} // namespace kb::sys
