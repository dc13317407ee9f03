#!/usr/bin/env python3
"""e2e_chroot: the full-path happy path of test_run.py with the binary run from inside a
minimal Debian chroot (scripts/test-chroots.sh makes them; docs/chroot-checks.md): the
world's wrapper hook (world.py) runs it as

    ip netns exec <instance> scripts/test-chroots.sh --enter CHROOT --bind <world dir>
        --copy <binary> /usr/local/bin/kasm-bootstrap --host-tools <this pid>
        -- /usr/local/bin/kasm-bootstrap run --root <R> ...

that is `chroot CHROOT /usr/local/bin/kasm-bootstrap` in a private mount namespace with the
chroot read-only, /proc, /sys, /dev, tmpfs /run and /tmp, and the world's directory (the
case roots, config files and the sd_notify socket) bound at the same path. The binary is
static, so the chroot's glibc (Debian 11's 2.31, 13's 2.41) must not matter. The fake
release's scripts run with the chroot's bash, coreutils, openssl and lsof; only `docker` and
`docker-compose` are the test host's (reached with nsenter), as in every other e2e suite.

Asserts what test_run.py's HappyPath asserts about the outcome (exit 0, the agent
registered with the fake manager's address and token in the agent configuration, status
complete with health green, the console summary line, READY=1, containers running, a re-run
is a no-op, secrets nowhere), and that the binary and the installer really ran inside the
chroot, and that nothing stays mounted in it afterwards.

  test_chroot.py --binary PATH --chroot DIR [unittest options]   exit 77 (skip) when the world cannot exist
"""
import argparse
import hashlib
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import world  # noqa: E402
from world import AWS_IP, INSTANCE_IP, SERVER_ID, TOKEN  # noqa: E402

W = None
CHROOT = None
IN_CHROOT = "/usr/local/bin/kasm-bootstrap"
ENTER = os.path.join(world.REPO, "scripts", "test-chroots.sh")
STEPS = ["preflight", "detect-address", "ensure-swap", "check-manager", "fetch-release", "wait-package-locks",
         "install-agent", "configure-agent", "install-certificates", "start-services", "block-metadata",
         "verify-health"]
# The run's PATH inside the chroot: the host-tool shims (--host-tools) first, then the chroot's.
CHROOT_PATH = "/run/kb-e2e/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def wrapper(w):
    return [ENTER, "--enter", CHROOT, "--bind", w.dir, "--copy", w.binary, IN_CHROOT, "--host-tools",
            str(os.getpid()), "--", IN_CHROOT]


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def mounts_under(path):
    prefix = os.path.realpath(path).rstrip("/") + "/"
    with open("/proc/self/mounts") as f:
        return [l.split()[1] for l in f if (l.split()[1] + "/").startswith(prefix)]


def processes_rooted_in(path):
    """Processes whose root directory is the chroot (readlink /proc/PID/root)."""
    real = os.path.realpath(path)
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.readlink(f"/proc/{pid}/root") == real:
                found.append(pid)
        except OSError:
            pass
    return found


class Watcher:
    """Case.run's signal_when predicate: every 50 ms while the run lasts, notes the root
    directory and executable of the case's processes (those whose environment names its
    root: the binary and the installer's tree). Never fires: the run goes to its end."""

    def __init__(self, case):
        self.case = case
        self.seen = {}  # "binary" / "installer" -> (root, exe sha256 or exe inode)

    def __call__(self, _case):
        for pid, cmdline in self.case.marked_processes().items():
            try:
                root = os.readlink(f"/proc/{pid}/root")
                if cmdline.startswith(IN_CHROOT + " run") and "binary" not in self.seen:
                    self.seen["binary"] = (root, sha256(f"/proc/{pid}/exe"), os.stat(f"/proc/{pid}/exe").st_ino)
                elif "install.sh" in cmdline and "installer" not in self.seen:
                    self.seen["installer"] = (root, None, os.stat(f"/proc/{pid}/exe").st_ino)
            except OSError:
                pass  # it ended meanwhile
        return False


class HappyPathInChroot(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.case = W.new_case("chroot")
        cls.case.env["PATH"] = CHROOT_PATH
        cls.requests_before = W.release_requests()
        cls.watch = Watcher(cls.case)
        cls.result = cls.case.run(signal_when=(cls.watch, lambda: None))
        cls.requests_after_first = W.release_requests()
        cls.status_first = cls.case.status()
        cls.mounts_after = mounts_under(CHROOT)
        cls.rooted_after = processes_rooted_in(CHROOT)
        cls.proxy_id = W.docker("inspect", "-f", "{{.Id}}", "kasm_proxy", check=False).stdout.strip()
        cls.rerun = cls.case.run()
        cls.containers = W.containers_report() if cls.result.rc != 0 or cls.rerun.rc != 0 else ""

    def test_run_succeeds(self):
        self.assertEqual(self.result.rc, 0, f"{self.result}\n--containers--\n{self.containers}")

    def test_the_binary_and_the_installer_ran_inside_the_chroot(self):
        chroot = os.path.realpath(CHROOT)
        self.assertIn("binary", self.watch.seen, "the binary was never seen running")
        root, digest, inode = self.watch.seen["binary"]
        self.assertEqual(root, chroot)
        self.assertEqual(digest, sha256(W.binary), "the chroot runs a copy of the binary under test")
        self.assertNotEqual(inode, os.stat(W.binary).st_ino, "a copy inside the chroot, not the host's file")
        self.assertIn("installer", self.watch.seen, "install.sh was never seen running")
        root, _, inode = self.watch.seen["installer"]
        self.assertEqual(root, chroot)
        self.assertEqual(inode, os.stat(os.path.join(CHROOT, "bin/bash")).st_ino, "the chroot's own bash")

    def test_agent_registered_with_the_fake_manager(self):
        config = self.case.agent_config()
        self.assertIsNotNone(config, self.result)
        self.assertEqual(config["agent"]["server_id"], SERVER_ID)
        self.assertEqual(config["agent"]["public_hostname"], INSTANCE_IP)
        self.assertEqual(config["agent"]["provider"], "aws")
        self.assertEqual(config["manager"]["hostnames"], [AWS_IP])
        self.assertEqual(config["manager"]["token"], TOKEN)
        self.assertEqual(os.stat(self.case.path(world.AGENT_CONFIG)).st_mode & 0o777, 0o600)
        self.assertEqual(self.case.read("/var/run/kasm-sidecar/api_hostname"), AWS_IP + ":443\n")

    def test_health_green_and_status_complete(self):
        st = self.status_first
        self.assertIsNotNone(st, self.result)
        self.assertEqual(st["result"], "success")
        self.assertEqual(st["exit_code"], 0)
        self.assertEqual([s["id"] for s in st["steps"]], STEPS)
        for s in st["steps"]:
            self.assertIn(s["outcome"], ("done", "satisfied"), s)
        health = st["steps"][-1]["outputs"]
        for check in ("kasm_agent", "kasm_proxy", "manager"):
            self.assertEqual(health.get("health." + check), "ok", health)
        self.assertEqual(W.container_state("kasm_agent"), "running")
        self.assertEqual(W.container_state("kasm_proxy"), "running")

    def test_console_line_says_success(self):
        self.assertRegex(self.case.console(), r"^kasm-bootstrap \S+: SUCCESS agent " + SERVER_ID + " ready")

    def test_sd_notify_ready(self):
        self.assertIn("READY=1", "\n".join(self.result.notify).split("\n"))

    def test_one_download_and_the_rerun_is_a_noop(self):
        self.assertEqual(self.requests_after_first - self.requests_before, 1)
        self.assertEqual(self.rerun.rc, 0, self.rerun)
        self.assertEqual(self.case.installer_runs(), 1, "installer not run again")
        self.assertEqual(W.release_requests(), self.requests_after_first, "no release request on a re-run")
        self.assertEqual(W.docker("inspect", "-f", "{{.Id}}", "kasm_proxy").stdout.strip(), self.proxy_id)

    def test_health_command_in_the_chroot(self):
        r = self.case.command("health")
        self.assertEqual(r.rc, 0, r)

    def test_secrets_nowhere_and_nothing_half_written(self):
        self.assertEqual(self.case.leaks(self.result), [])
        self.assertEqual(self.case.leaks(self.rerun), [])
        self.assertEqual(self.case.temp_files(), [])

    def test_nothing_mounted_in_the_chroot_and_nothing_running_in_it_afterwards(self):
        self.assertEqual(self.mounts_after, [])
        self.assertEqual(self.rooted_after, [])


def main():
    global CHROOT
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--chroot", required=True, help="a Debian tree (scripts/test-chroots.sh makes them)")
    ns, rest = ap.parse_known_args()
    if not os.path.isfile(os.path.join(ns.chroot, "bin/bash")):
        print(f"test_chroot.py: {ns.chroot} is not a Debian tree (no bin/bash)", file=sys.stderr)
        sys.exit(2)
    CHROOT = os.path.realpath(ns.chroot)

    def run_tests(w):
        global W
        W = w
        W.binary_argv = wrapper(w)
        prog = unittest.main(module=__name__, argv=[sys.argv[0]] + rest, exit=False, verbosity=2)
        return 0 if prog.result.wasSuccessful() else 1

    world.main_or_skip(ns.binary, run_tests)


if __name__ == "__main__":
    main()
