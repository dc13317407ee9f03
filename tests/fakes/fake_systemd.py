#!/usr/bin/env python3
"""A fake org.freedesktop.systemd1 on a private D-Bus daemon, for the sd-bus test.

Starts its own dbus-daemon listening on --socket (killed with this process group),
owns org.freedesktop.systemd1 there and answers Manager.StartUnit / Manager.GetUnit
and Properties.Get of the unit's ActiveState/SubState. Modes:
  ok      the unit is "activating" for --activating-polls reads of ActiveState, then "active"
  fail    ... then "failed" (SubState "failed")
  hang    "activating" forever
  refuse  StartUnit raises org.freedesktop.systemd1.NoSuchUnit
Prints "READY 0" once the name is owned; logs each call to stderr.
Needs python3-dbus and python3-gi (Debian); re-runs itself with /usr/bin/python3 when
the python3 on PATH lacks them.
"""
import argparse
import os
import signal
import subprocess
import sys
import tempfile

try:
    import dbus
    import dbus.mainloop.glib
    import dbus.service
    from gi.repository import GLib
except ImportError:
    system_python = "/usr/bin/python3"
    if os.path.exists(system_python) and os.path.realpath(sys.executable) != os.path.realpath(system_python):
        os.execv(system_python, [system_python] + sys.argv)
    raise

MANAGER_IFACE = "org.freedesktop.systemd1.Manager"
UNIT_IFACE = "org.freedesktop.systemd1.Unit"
PROPS_IFACE = "org.freedesktop.DBus.Properties"
JOB_PATH = "/org/freedesktop/systemd1/job/42"


def log(message):
    print(message, file=sys.stderr, flush=True)


class NoSuchUnit(dbus.DBusException):
    _dbus_error_name = "org.freedesktop.systemd1.NoSuchUnit"


def unit_path(name):
    escaped = "".join(c if c.isalnum() else "_%02x" % ord(c) for c in name)
    return "/org/freedesktop/systemd1/unit/" + escaped


class Unit(dbus.service.Object):
    def __init__(self, bus, name, mode, activating_polls):
        super().__init__(bus, unit_path(name))
        self.name, self.mode, self.left = name, mode, activating_polls
        self.active, self.sub = "inactive", "dead"

    def start(self):
        self.active, self.sub = "activating", "start"

    def state(self):
        if self.active == "activating" and self.mode != "hang":
            if self.left <= 0:
                if self.mode == "fail":
                    self.active, self.sub = "failed", "failed"
                else:
                    self.active, self.sub = "active", "running"
            self.left -= 1
        return self.active

    @dbus.service.method(PROPS_IFACE, in_signature="ss", out_signature="v")
    def Get(self, interface, prop):
        log(f"Get {interface} {prop}")
        if interface != UNIT_IFACE:
            raise dbus.DBusException("org.freedesktop.DBus.Error.UnknownInterface")
        if prop == "ActiveState":
            return dbus.String(self.state())
        if prop == "SubState":
            return dbus.String(self.sub)
        raise dbus.DBusException("org.freedesktop.DBus.Error.UnknownProperty")


class Manager(dbus.service.Object):
    def __init__(self, bus, mode, activating_polls):
        super().__init__(bus, "/org/freedesktop/systemd1")
        self.bus, self.mode, self.polls = bus, mode, activating_polls
        self.units = {}

    def unit(self, name):
        if name not in self.units:
            self.units[name] = Unit(self.bus, name, self.mode, self.polls)
        return self.units[name]

    @dbus.service.method(MANAGER_IFACE, in_signature="ss", out_signature="o")
    def StartUnit(self, name, mode):
        log(f"StartUnit {name} {mode}")
        if self.mode == "refuse":
            raise NoSuchUnit(f"Unit {name} not found.")
        self.unit(name).start()
        return dbus.ObjectPath(JOB_PATH)

    @dbus.service.method(MANAGER_IFACE, in_signature="s", out_signature="o")
    def GetUnit(self, name):
        log(f"GetUnit {name}")
        if name not in self.units:
            raise NoSuchUnit(f"Unit {name} not loaded.")
        return dbus.ObjectPath(unit_path(name))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)  # FakeServer convention; unused
    p.add_argument("--socket", required=True)
    p.add_argument("--mode", default="ok", choices=["ok", "fail", "hang", "refuse"])
    p.add_argument("--activating-polls", type=int, default=3)
    args = p.parse_args()

    conf = tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False)
    conf.write(f"""<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <listen>unix:path={args.socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
""")
    conf.close()
    daemon = subprocess.Popen(["dbus-daemon", "--config-file=" + conf.name, "--nofork", "--print-address=1"],
                              stdout=subprocess.PIPE, text=True)
    address = daemon.stdout.readline().strip()
    os.unlink(conf.name)
    if not address:
        log("dbus-daemon did not start")
        sys.exit(1)
    log(f"bus {address}")
    # FakeServer stops the whole process group; a plain SIGTERM must not orphan the daemon.
    signal.signal(signal.SIGTERM, lambda *_: (daemon.terminate(), sys.exit(0)))

    dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
    bus = dbus.bus.BusConnection(address)
    bus.request_name("org.freedesktop.systemd1")
    manager = Manager(bus, args.mode, args.activating_polls)  # noqa: F841 (exported while it lives)
    print("READY 0", flush=True)
    try:
        GLib.MainLoop().run()
    finally:
        daemon.terminate()


if __name__ == "__main__":
    main()
