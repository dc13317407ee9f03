#!/usr/bin/env python3
"""The full run of scripts/demo.sh (README "Set up", command 1): one fake AWS world, built by
world.py exactly as the e2e suites build it, one `kasm-bootstrap run` in it with the run's
own output shown as it goes, then `kasm-bootstrap status --long` for that root. Everything
the demo made (namespaces, dockerd, servers, swap, temporary directories) is removed at the
end, on success, on failure and on Ctrl-C, and the removal is checked.

  demo.py --check            exit 0 when the world can be built here; otherwise one line
                             saying why, exit 77
  demo.py --binary PATH      the demo: exit 0 when the run succeeded, status says done and
                             nothing is left; 77 (after the reason) when the world turns out
                             not to be buildable here; else the run's exit code or 1

The manager token and the operator's nginx key are the world's test values; the binary
masks them, and each line shown is checked for them (masked here too, and the demo fails).
"""
import argparse
import os
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import world  # noqa: E402

SWAP_SIZE = "128M"  # small: the demo shows the step, it does not need the memory


def say(text):
    print(f"demo: {text}", flush=True)


class Interrupted(Exception):
    pass


def on_signal(signum, _frame):
    raise Interrupted(signum)


class Shown:
    """Copies lines from a pipe to stdout as they come, with the world's secrets masked."""

    def __init__(self, secrets):
        self.secrets = [s for s in secrets if s]
        self.leaked = False
        self.rfd, self.wfd = os.pipe()
        self.thread = threading.Thread(target=self._copy, daemon=True)
        self.thread.start()

    def _copy(self):
        with os.fdopen(self.rfd, errors="replace") as pipe:
            for line in pipe:
                self.show(line)

    def show(self, text):
        for s in self.secrets:
            if s in text:
                self.leaked = True
                text = text.replace(s, "****")
        sys.stdout.write(text if text.endswith("\n") or not text else text + "\n")
        sys.stdout.flush()

    def close(self):
        """After the writer is gone: waits for the last lines."""
        if self.wfd is not None:
            os.close(self.wfd)
            self.wfd = None
        self.thread.join(10)


def swapon_permitted(directory):
    """Can this machine swapon a file in directory? (Containers usually cannot.)"""
    probe = os.path.join(directory, "probe.swap")
    try:
        with open(probe, "wb") as f:
            os.posix_fallocate(f.fileno(), 0, 1 << 20)  # no holes: swapon refuses a sparse file
        os.chmod(probe, 0o600)
        if subprocess.run(["mkswap", "-q", probe], capture_output=True).returncode != 0:
            return False
        if subprocess.run(["swapon", probe], capture_output=True).returncode != 0:
            return False
        subprocess.run(["swapoff", probe], capture_output=True)
        return True
    except OSError:
        return False
    finally:
        if os.path.exists(probe):
            os.unlink(probe)


def leftovers(w, dockerd_pid):
    """What of the world is still there after w.stop(): a list of descriptions."""
    left = []
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
    left += [f"network namespace {n}" for n in (w.instance, w.aws) if n in names]
    if dockerd_pid and world.pid_alive(dockerd_pid):
        left.append(f"dockerd pid {dockerd_pid}")
    if w.dir:
        marker = ("KBE2E_WORLD=" + w.dir).encode()
        left += [f"process {pid}: {cmd}" for pid, cmd in world.marked_processes(marker).items()]
        left += [f"swap {line.split()[0]}" for line in world.slurp("/proc/swaps").splitlines()[1:]
                 if line.startswith(w.dir + "/")]
        left += [f"mount {line.split()[1]}" for line in world.slurp("/proc/self/mounts").splitlines()
                 if line.split()[1].startswith(w.dir + "/")]
        if os.path.exists(w.dir):
            left.append(f"directory {w.dir}")
    return left


def demo(w, binary_label):
    say(f"starting the fake AWS world (world.py, as the e2e suites): network namespaces {w.instance} "
        f"(the instance, {world.INSTANCE_IP}) and {w.aws} (IMDSv2 at {world.IMDS_IP}, HTTPS release server and "
        f"manager at {world.AWS_IP}), a test CA, the fake Kasm {world.VERSION} release, a private dockerd in "
        f"the instance")
    start = time.monotonic()
    w.start()
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)  # world.start() set its own; ours lets main() check the clean-up
    say(f"world up in {time.monotonic() - start:.1f} s ({w.dir})")

    case = w.new_case("demo")
    # What the binary reads under the root to decide about swap: this machine's memory, no
    # swap active yet (as bench/startup.py prepares it).
    case.write("/proc/meminfo", world.slurp("/proc/meminfo"))
    case.write("/proc/swaps", "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n")
    case.config["swap_size"] = SWAP_SIZE
    if swapon_permitted(case.dir):
        # Lets swapon(2) enable the file made under the temporary root; swapped off at the end.
        case.env["KB_TEST_SWAPON_UNDER_ROOT"] = "1"
        swap_note = f"a {SWAP_SIZE} swap file, really swapped on (and off at the end)"
    else:
        swap_note = f"a {SWAP_SIZE} swap file (swapon is not permitted on this machine: file and fstab line only)"
    say(f"instance root {case.root}; configuration: the e2e world's (manager token and nginx key masked), "
        f"{swap_note}")
    say(f"running: ip netns exec {w.instance} {binary_label} run --root <instance root> --config <config.json>")
    print(flush=True)

    key_lines = [line for line in w.nginx_key_pem.splitlines() if line and not line.startswith("-----")]
    shown = Shown([world.TOKEN] + key_lines)
    try:
        result = case.run(output=shown.wfd)
    finally:
        shown.close()
    print(flush=True)
    say(f"run exited {result.rc} in {result.seconds:.1f} s")
    active = [line.split()[:3] for line in world.slurp("/proc/swaps").splitlines()[1:]
              if line.startswith(case.dir + "/")]
    for name, _kind, kib in active:
        say(f"swap active on this machine: {name} ({round(int(kib) / 1024)} MiB), swapped off at the clean-up")
    if result.rc != 0:
        say("the world's containers:")
        shown.show(w.containers_report() or "(none)")

    if result.rc == 0:
        say(f"ip netns exec {w.instance} {binary_label} health --root <instance root>")
        health = case.command("health")
        shown.show(health.stdout + health.stderr)
        say(f"health exited {health.rc} ({'healthy' if health.rc == 0 else 'not healthy'})")
        ps = w.docker("ps", "--format", "{{.Names}}: {{.Image}}, {{.Status}}", check=False).stdout.split("\n")
        say("containers on the instance's dockerd: " + "; ".join(line for line in ps if line))
    say(f"ip netns exec {w.instance} {binary_label} status --long --root <instance root>")
    print(flush=True)
    status = case.command("status", "--long")
    shown.show(status.stdout + status.stderr)
    print(flush=True)
    say(f"status exited {status.rc} ({'done' if status.rc == 0 else 'not done'})")
    if shown.leaked:
        say("FAILED: the manager token or the nginx key appeared in the output above (masked here)")
        return 1
    if result.rc != 0:
        return result.rc
    return 0 if status.rc == 0 else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary")
    ap.add_argument("--check", action="store_true")
    ns = ap.parse_args()
    if ns.check:
        try:
            world.check_prerequisites()
        except world.Unavailable as e:
            print(e, flush=True)
            sys.exit(world.SKIP)
        sys.exit(0)
    if not ns.binary:
        ap.error("--binary is required")

    w = world.World(ns.binary)
    dockerd_pid = None
    code = 1
    # Ours until world.start() sets its own (which stop the world and exit), and again after.
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)
    try:
        code = demo(w, os.path.relpath(w.binary))
    except world.Unavailable as e:
        say(f"the fake AWS world cannot be built here: {e}")
        code = world.SKIP
    except Interrupted as e:
        print(flush=True)
        say(f"interrupted ({signal.Signals(e.args[0]).name})")
        code = 128 + e.args[0]
    except SystemExit as e:  # world's own signal handler, while the world was starting
        print(flush=True)
        say("interrupted while the world was starting")
        code = e.code if isinstance(e.code, int) else 1
    finally:
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)  # a second Ctrl-C must not stop the clean-up half-way
        if w.docker_dir:
            try:
                dockerd_pid = int(world.slurp(os.path.join(w.docker_dir, "dockerd.pid")).strip())
            except (OSError, ValueError):
                pass
        say("cleaning up: servers, dockerd, namespaces, swap, temporary directories")
        start = time.monotonic()
        w.stop()
        left = leftovers(w, dockerd_pid)
        if left:
            say("NOT cleaned up: " + "; ".join(left))
            code = code or 1
        elif w.dir:
            say(f"cleaned up in {time.monotonic() - start:.1f} s: nothing of the world is left (namespaces "
                f"{w.instance} and {w.aws}, dockerd{f' pid {dockerd_pid}' if dockerd_pid else ''}, servers, swap, "
                f"{w.dir})")
    sys.exit(code)


if __name__ == "__main__":
    main()
