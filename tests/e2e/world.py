"""A fake AWS world for end-to-end tests of kasm-bootstrap (Python 3 standard library only).

The world is real networking, real TLS, real processes and a real Docker Engine; only the
services are fakes (tests/fakes/). Layout:

    netns "instance" 10.77.0.2/24 --veth-- 10.77.0.1/24 netns "aws"
      default route via 10.77.0.1          169.254.169.254:80   fake IMDS (IMDSv2 required)
      kasm-bootstrap runs here             10.77.0.1:<port>     HTTPS release server
      dockerd runs here too                10.77.0.1:443        fake Kasm manager (HTTPS)
    dockerd (tests/fakes/docker_world.sh --netns instance): a private unix socket, iptables
          on and the default bridge, as on a real agent (so Docker's DOCKER-USER chain is in
          the instance's nftables and `--network bridge` containers are forwarded by the
          instance); reached through <root>/var/run/docker.sock, a hard link to the real
          socket (the binary resolves paths inside its root: a symlink out is refused)

API (everything needs root, `ip netns`, `tc`, docker.io, busybox-static, openssl, iptables):

    with World(binary) as w:                 # or w = World(binary); w.start(); ...; w.stop()
        case = w.new_case("happy")           # fresh instance root + config; containers removed
        case.config["swap_size"] = "64M"     # edit before running (written at run time)
        r = case.run()                       # kasm-bootstrap run, in the instance namespace
        case.run(output=fd)                  # the same, its stdout+stderr to fd as it runs (a live view)
        r.rc, r.stdout, r.stderr, r.notify   # exit code, output, sd_notify datagrams
        case.status(), case.state()          # parsed status.json / state.json (None if absent)
        case.console(), case.log()           # console summary line(s), kasm-bootstrap.log
        case.installer_runs(), case.installer_argv()
        w.release_requests()                 # GETs the release server has seen so far
        w.restart_imds("--disabled"), w.restart_release("--fault", "drop"),
        w.restart_manager("--mode", "notok"), w.netem("loss 30%"), w.stop_docker(),
        w.start_docker(), w.slow_docker(case, "/exec/", 5)   # fault hooks
        case.command("health", "-o", "json")  # another subcommand with the case's root and config
        w.container_fetch(url), w.instance_fetch(url)   # a GET from a bridge container / the instance
        w.metadata_rules(), w.remove_metadata_block()   # the instance's DOCKER-USER chain
        case.leaks()                         # places where the token or nginx key appear

The binary can run through a wrapper: World(binary, wrapper=[...]) (or the environment
variable KB_E2E_BINARY_WRAPPER, shell words) is the command that replaces the binary's path
in every command world.py runs (case.run, case.command; w.binary_argv), so
`ip netns exec NS <binary> run ...` becomes `ip netns exec NS <wrapper...> run ...`, e.g.
wrapper=["strace", "-f", "-o", "/tmp/trace", binary]. The wrapper must end up running the
binary; `binary` still names the host file. A wrapper that needs the world's directory sets
w.binary_argv after w.start() (tests/e2e/test_chroot.py: the binary inside a chroot).

A run can be interrupted: case.run(signal_when=(predicate, signal.SIGKILL)) sends the
signal to the binary once predicate(case) is true. w.stop() (also run at exit and on
SIGTERM/SIGINT) removes servers, namespaces, dockerd, qdiscs, mounts and swap it made
(a swap file a run activated under a case root, KB_TEST_SWAPON_UNDER_ROOT=1, is swapped off
by case.cleanup(); swap_off_under(dir) does it for any directory).
"""

import atexit
import json
import os
import select
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
FAKES = os.path.join(os.path.dirname(HERE), "fakes")
REPO = os.path.dirname(os.path.dirname(HERE))

INSTANCE_IP = "10.77.0.2"
AWS_IP = "10.77.0.1"
IMDS_IP = "169.254.169.254"
TOKEN = "kbe2e-MANAGER-TOKEN-5f1c9a7d2b"
SERVER_ID = "3f6c2a4e-9b1d-4c57-a8e2-6d0f1b7c9e21"
# The Kasm release the world serves (tests/fakes/make_release.py --version): each layout
# generation runs the suites (tests/CMakeLists.txt sets KB_E2E_KASM_VERSION per ctest entry).
VERSION = os.environ.get("KB_E2E_KASM_VERSION", "1.18.0")
# Where that version keeps its agent configuration (docs/kasm-installer.md §5).
AGENT_CONFIG = ("/opt/kasm/current/conf/app/agent.app.config.yaml" if VERSION.startswith(("1.15.", "1.16."))
                else "/opt/kasm/current/conf/app/agent/agent.app.config.yaml")
# tests/fakes/bin/docker: `docker compose` as Debian's docker-compose 1.29, for bin/start.
FAKE_BIN = os.path.join(FAKES, "bin")
SKIP = 77  # ctest SKIP_RETURN_CODE
METADATA_RULE_COMMENT = "kasm-bootstrap: no metadata service for containers"  # net/metadata_firewall.hpp


def wait_exit(proc, timeout):
    """proc.wait(timeout), but woken by the exit itself: Popen.wait with a timeout polls with
    sleeps growing to 50 ms, which a benchmark of `run` (bench/fast_path.py) would count as
    the binary's time. A pidfd (os.pidfd_open, Linux 5.3) is readable when the process ends."""
    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        return proc.wait(timeout)
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        if not poller.poll(timeout * 1000):
            raise subprocess.TimeoutExpired(proc.args, timeout)
    finally:
        os.close(fd)
    return proc.wait()


class Unavailable(Exception):
    """The machine cannot host the world (not root, no netns, no dockerd...)."""


def sh(*cmd, check=True, timeout=60, **kw):
    r = subprocess.run(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()}")
    return r


def check_prerequisites():
    """Raises Unavailable with a reason when the world cannot be built here."""
    if os.geteuid() != 0:
        raise Unavailable("needs root (network namespaces, dockerd, mounts)")
    for tool in ("ip", "tc", "openssl", "dockerd", "docker", "busybox", "nsenter", "iptables-nft"):
        if not shutil.which(tool):
            raise Unavailable(f"'{tool}' is not installed")
    probe = f"kbe2eprobe{os.getpid()}"
    r = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if r.returncode != 0:
        raise Unavailable(f"cannot create a network namespace: {r.stderr.strip()}")
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)


class Server:
    """A fake from tests/fakes run in a namespace; stderr (its request log) goes to a file."""

    def __init__(self, netns, script, args, logfile):
        self.log_path = logfile
        self.log = open(logfile, "a")
        cmd = (["ip", "netns", "exec", netns] if netns else []) + [sys.executable, os.path.join(FAKES, script),
                                                                     "--port", "0"] + list(args)
        # The marker lets sweep_dead_worlds() find servers a SIGKILLed suite left running.
        env = dict(os.environ, KBE2E_WORLD=os.path.dirname(logfile))
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.log, text=True, start_new_session=True,
                                     env=env)
        line = self.proc.stdout.readline()
        if not line.startswith("READY "):
            self.stop()
            raise RuntimeError(f"{script} did not start: {slurp(logfile)[-2000:]}")
        self.port = int(line.split()[1])

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc.stdout.close()
        self.log.close()


class Result:
    def __init__(self, rc, stdout, stderr, notify, seconds):
        self.rc, self.stdout, self.stderr, self.notify, self.seconds = rc, stdout, stderr, notify, seconds

    def __repr__(self):
        return f"Result(rc={self.rc}, {self.seconds:.1f}s)\n--stdout--\n{self.stdout[-3000:]}\n--stderr--\n{self.stderr[-3000:]}"


class Case:
    """One fresh instance: a root dir laid out like a new EC2 Ubuntu VM and a config."""

    def __init__(self, world, name):
        self.world = world
        self.dir = tempfile.mkdtemp(prefix=name[:20] + ".", dir=world.dir)
        self.root = os.path.join(self.dir, "root")
        self.mounts = []
        r = self.root
        for d in ("etc/kb-e2e", "sys/class/dmi/id", "var/run", "var/lib", "dev", "tmp", "proc"):
            os.makedirs(os.path.join(r, d), exist_ok=True)
        self.write("/etc/passwd", "root:x:0:0:root:/root:/bin/bash\n")
        self.write("/etc/group", "root:x:0:\n")
        self.write("/etc/os-release", 'PRETTY_NAME="Ubuntu 22.04.4 LTS"\nNAME="Ubuntu"\nVERSION_ID="22.04"\nID=ubuntu\nVERSION_CODENAME=jammy\n')
        self.write("/etc/fstab", "LABEL=cloudimg-rootfs / ext4 discard,errors=remount-ro 0 1\n")
        self.write("/sys/class/dmi/id/sys_vendor", "Amazon EC2\n")
        self.write("/sys/class/dmi/id/product_name", "t3.medium\n")
        self.write("/sys/class/dmi/id/bios_vendor", "Amazon EC2\n")
        self.write("/dev/console", "")
        self.write("/etc/kb-e2e/ca.pem", slurp(world.ca_cert))
        self.link_docker_socket(world.docker_socket)
        self.config = {
            "server_id": SERVER_ID,
            "manager_address": AWS_IP,
            "manager_token": TOKEN,
            "provider": "aws",
            "server_hostname": "kasm-agent-e2e",
            "external_fqdn": "None",
            "release_url": world.release_url(),
            "release_sha256": world.release_sha256,
            "ca_bundle": "/etc/kb-e2e/ca.pem",
            "manager_ca": "/etc/kb-e2e/ca.pem",
            "swap_size": "off",
            "nginx_cert": world.nginx_cert_pem,
            "nginx_key": world.nginx_key_pem,
            "download_timeout_seconds": 60,
            "lock_timeout_seconds": 10,
            "install_timeout_seconds": 60,
            "health_timeout_seconds": 20,
        }
        # KB_E2E_NO_METADATA_BLOCK=1: the aarch64 suite under qemu-user, which cannot open
        # the NETLINK_NETFILTER socket the block-metadata step needs
        # (docs/static-build.md, "arm64"); the step then reports the block as disabled,
        # as for an operator's block_container_metadata=false.
        if os.environ.get("KB_E2E_NO_METADATA_BLOCK") == "1":
            self.config["block_container_metadata"] = False
        self.notes = []
        self.env = {}  # extra environment for the binary (and so for the fake installer)

    # --- files under the instance root -------------------------------------------------
    def path(self, machine_path):
        """The host path of a machine path, its symlinks resolved inside the root as the
        binary resolves them (install.sh links /opt/kasm/current -> /opt/kasm/<version>,
        an absolute target)."""
        parts = [p for p in machine_path.split("/") if p]
        done = []
        for _ in range(64):
            if not parts:
                break
            part = parts.pop(0)
            if part == "..":
                if done:
                    done.pop()
                continue
            candidate = os.path.join(self.root, *done, part)
            if os.path.islink(candidate):
                target = os.readlink(candidate)
                parts = [p for p in target.split("/") if p] + parts
                if target.startswith("/"):
                    done = []
                continue
            done.append(part)
        return os.path.join(self.root, *done, *parts)

    def agent_config(self):
        """The installed agent configuration, parsed (python3-yaml), or None."""
        import yaml
        text = self.read(AGENT_CONFIG)
        return None if text is None else yaml.safe_load(text)

    def link_docker_socket(self, socket_path):
        """<root>/var/run/docker.sock as a hard link to socket_path. Not a symlink: the
        binary resolves every path inside its root (openat2 RESOLVE_IN_ROOT), so a link out
        of the root is refused, as it must be. A dockerd restart makes a new socket inode:
        World.start_docker() relinks every case."""
        link = self.path("/var/run/docker.sock")
        os.makedirs(os.path.dirname(link), exist_ok=True)
        if os.path.lexists(link):
            os.unlink(link)
        os.link(socket_path, link)

    def write(self, machine_path, text):
        p = self.path(machine_path)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(text)

    def read(self, machine_path):
        try:
            with open(self.path(machine_path), errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def _json(self, machine_path):
        text = self.read(machine_path)
        return None if text is None else json.loads(text)

    def status(self):
        return self._json("/var/lib/kasm-bootstrap/status.json")

    def state(self):
        return self._json("/var/lib/kasm-bootstrap/state.json")

    def log(self):
        return self.read("/var/lib/kasm-bootstrap/kasm-bootstrap.log") or ""

    def console(self):
        return self.read("/dev/console") or ""

    def installer_runs(self):
        return int((self.read("/fake-installer/runs") or "0").strip())

    def installer_argv(self):
        text = self.read("/fake-installer/argv")
        return None if text is None else text.splitlines()

    def mount_tmpfs(self, machine_path, size):
        """A small filesystem under the root (for disk-full faults); unmounted by cleanup()."""
        p = self.path(machine_path)
        os.makedirs(p, exist_ok=True)
        sh("mount", "-t", "tmpfs", "-o", f"size={size}", "kbe2e", p)
        self.mounts.append(p)
        return p

    # --- running the binary ------------------------------------------------------------
    def command(self, subcommand, *extra, timeout=60):
        """Another subcommand (`health`, `protect-metadata`) with this case's root and
        configuration, in the instance namespace."""
        cfg = os.path.join(self.dir, "config.json")
        with open(cfg, "w") as f:
            json.dump(self.config, f)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KASM_BOOTSTRAP_", "KASM_FAKE_"))}
        start = time.monotonic()
        r = subprocess.run(["ip", "netns", "exec", self.world.instance, *self.world.binary_argv, subcommand, "--root",
                            self.root, "--config", cfg, *extra], capture_output=True, text=True, env=env,
                           timeout=timeout)
        return Result(r.returncode, r.stdout, r.stderr, [], time.monotonic() - start)

    def script_env(self):
        """The binary's environment, and so the release scripts': only this case's
        configuration (none of the caller's KASM_BOOTSTRAP_* settings), the fake release's
        root, the compose shim first in PATH, and the case's own extras."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KASM_BOOTSTRAP_", "KASM_FAKE_"))}
        env.update({
            "KASM_FAKE_ROOT": self.root,
            "PATH": FAKE_BIN + ":" + env.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        })
        env.update(self.env)
        return env

    def run(self, *extra, signal_when=None, timeout=240, config=True, name="run", keep_strays=False, output=None):
        """Runs `kasm-bootstrap run` in the instance namespace with a listening NOTIFY_SOCKET.

        signal_when=(predicate, signum[, then]) sends signum once predicate(case) is true
        (signum may instead be a callable: a fault hook to run at that moment); `then`
        (optional callable) runs right after. case.notes holds the sd_notify datagrams
        received so far, so a predicate can wait for "STATUS=... <step>: running".
        name: another name for a second run started while one runs (its own output files
        and notify socket). keep_strays: leave what a killed run left running, for a test
        of what the next run does about it (cleanup() still kills it).
        output: a file or descriptor that gets the binary's stdout and stderr as it runs (to
        show its progress); result.stdout and result.stderr are then empty.
        """
        cfg = os.path.join(self.dir, "config.json")
        with open(cfg, "w") as f:
            json.dump(self.config, f)
        suffix = "" if name == "run" else "." + name
        notify_path = os.path.join(self.dir, "notify.sock" + suffix)
        if os.path.exists(notify_path):
            os.unlink(notify_path)
        notify_sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify_sock.bind(notify_path)
        notify_sock.settimeout(0.2)
        notes, done = [], threading.Event()
        self.notes = notes

        def listen():
            while not done.is_set():
                try:
                    notes.append(notify_sock.recv(65536).decode(errors="replace"))
                except socket.timeout:
                    continue
                except OSError:
                    return

        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        env = self.script_env()
        env["NOTIFY_SOCKET"] = notify_path
        cmd = ["ip", "netns", "exec", self.world.instance, *self.world.binary_argv, "run", "--root", self.root]
        if config:
            cmd += ["--config", cfg]
        cmd += list(extra)
        out = open(os.path.join(self.dir, "stdout" + suffix), "w+")
        err = open(os.path.join(self.dir, "stderr" + suffix), "w+")
        start = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=out if output is None else output,
                                stderr=err if output is None else output, env=env, start_new_session=True)
        try:
            if signal_when:
                predicate, signum = signal_when[0], signal_when[1]
                while proc.poll() is None and not predicate(self):
                    if time.monotonic() - start > timeout:
                        break
                    time.sleep(0.05)
                if proc.poll() is None:
                    if callable(signum):
                        signum()
                    else:
                        proc.send_signal(signum)
                    if len(signal_when) > 2:
                        signal_when[2]()
            rc = wait_exit(proc, max(1, timeout - (time.monotonic() - start)))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        finally:
            seconds = time.monotonic() - start
            done.set()
            listener.join(2)
            notify_sock.setblocking(False)
            while True:  # whatever the listener had not read yet
                try:
                    notes.append(notify_sock.recv(65536).decode(errors="replace"))
                except OSError:
                    break
            notify_sock.close()
            strays = [] if keep_strays else self.kill_strays()
        out.seek(0)
        err.seek(0)
        result = Result(rc, out.read(), err.read(), notes, seconds)
        result.strays = strays
        out.close()
        err.close()
        return result

    def marked_processes(self):
        """{pid: command line} of the processes whose environment names this case's root:
        the installer and everything it started."""
        return marked_processes(("KASM_FAKE_ROOT=" + self.root).encode())

    def kill_strays(self):
        """Kills processes left behind by a killed run (the installer has its own process
        group): exactly those whose environment names this case's root. Returns their
        command lines."""
        return kill_marked(("KASM_FAKE_ROOT=" + self.root).encode())

    # --- checks ----------------------------------------------------------------------------
    def leaks(self, result=None):
        """Where the manager token or the nginx private key body appear: a list of names."""
        key_lines = [l for l in self.world.nginx_key_pem.splitlines() if l and not l.startswith("-----")]
        needles = [TOKEN] + key_lines
        texts = {"status.json": self.read("/var/lib/kasm-bootstrap/status.json") or "",
                 "state.json": self.read("/var/lib/kasm-bootstrap/state.json") or "",
                 "kasm-bootstrap.log": self.log(), "console": self.console()}
        if result is not None:
            texts.update({"stdout": result.stdout, "stderr": result.stderr, "notify": "\n".join(result.notify)})
        return [name for name, text in texts.items() if any(n in text for n in needles)]

    def temp_files(self):
        """Files that look like leftovers of an interrupted write."""
        found = []
        for d, _, files in os.walk(self.root):
            if "/fake-installer" in d or "/opt/kasm/" in d and "/certs" not in d:
                continue
            for f in files:
                if ".tmp" in f or f.endswith(".partial") or f.startswith(".kb-") or ".kbtmp" in f:
                    found.append(os.path.join(d, f))
        return found

    def cleanup(self):
        self.kill_strays()
        swap_off_under(self.dir)
        for m in reversed(self.mounts):
            subprocess.run(["umount", "-l", m], capture_output=True)
        self.mounts = []


class World:
    def __init__(self, binary, pad_bytes=2 << 20, wrapper=None):
        self.binary = os.path.abspath(binary)
        # What runs the binary (module docstring): the wrapper when one is given, else the binary.
        if wrapper is None:
            wrapper = shlex.split(os.environ.get("KB_E2E_BINARY_WRAPPER", ""))
        self.binary_argv = list(wrapper) or [self.binary]
        self.pad_bytes = pad_bytes
        self.tag = f"kbe2e{os.getpid() % 100000}"
        self.instance, self.aws = self.tag + "i", self.tag + "a"
        self.veth_i, self.veth_a = self.tag + "vi", self.tag + "va"
        self.dir = None
        self.servers = {}
        self.cases = []
        self.docker_dir = None
        self.started = False

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    # --- lifecycle -------------------------------------------------------------------------
    def start(self):
        check_prerequisites()
        if not os.path.exists(self.binary):
            raise RuntimeError(f"binary {self.binary} does not exist")
        sweep_dead_worlds()
        self.dir = tempfile.mkdtemp(prefix="kbe2e.", dir="/tmp")
        with open(os.path.join(self.dir, "owner.pid"), "w") as f:
            f.write(str(os.getpid()))
        atexit.register(self.stop)
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(s, self._on_signal)
        self.started = True
        self._network()
        self._pki()
        self._release()
        self.start_docker()
        self.restart_imds()
        self.restart_release()
        self.restart_manager()
        return self

    def _on_signal(self, signum, _frame):
        self.stop()
        sys.exit(128 + signum)

    def stop(self):
        if not self.started:
            return
        self.started = False
        for c in self.cases:
            c.cleanup()
        for s in self.servers.values():
            s.stop()
        self.servers = {}
        if self.docker_dir:
            subprocess.run([os.path.join(FAKES, "docker_world.sh"), "stop", self.docker_dir], capture_output=True)
        for ns in (self.instance, self.aws):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def _network(self):
        for ns in (self.instance, self.aws):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", self.instance, "link", "add", self.veth_i, "type", "veth", "peer", "name", self.veth_a,
           "netns", self.aws)
        sh("ip", "-n", self.instance, "addr", "add", INSTANCE_IP + "/24", "dev", self.veth_i)
        sh("ip", "-n", self.aws, "addr", "add", AWS_IP + "/24", "dev", self.veth_a)
        sh("ip", "-n", self.aws, "addr", "add", IMDS_IP + "/32", "dev", self.veth_a)
        sh("ip", "-n", self.instance, "link", "set", self.veth_i, "up")
        sh("ip", "-n", self.aws, "link", "set", self.veth_a, "up")
        sh("ip", "-n", self.instance, "route", "add", "default", "via", AWS_IP)

    def _pki(self):
        d = os.path.join(self.dir, "pki")
        os.makedirs(d)
        self.ca_cert, ca_key = os.path.join(d, "ca.crt"), os.path.join(d, "ca.key")
        self.server_cert, self.server_key = os.path.join(d, "server.crt"), os.path.join(d, "server.key")
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        sh("openssl", "req", "-x509", *ec, "-keyout", ca_key, "-out", self.ca_cert, "-days", "2",
           "-subj", "/CN=kb-e2e test CA", "-addext", "basicConstraints=critical,CA:TRUE",
           "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        csr = os.path.join(d, "server.csr")
        sh("openssl", "req", "-new", *ec, "-keyout", self.server_key, "-out", csr, "-subj", "/CN=" + AWS_IP)
        ext = os.path.join(d, "server.ext")
        with open(ext, "w") as f:
            f.write(f"subjectAltName=IP:{AWS_IP}\nextendedKeyUsage=serverAuth\n")
        sh("openssl", "x509", "-req", "-in", csr, "-CA", self.ca_cert, "-CAkey", ca_key, "-CAcreateserial",
           "-days", "2", "-out", self.server_cert, "-extfile", ext)
        # The operator's nginx pair handed to the binary through nginx_cert / nginx_key.
        ncert, nkey = os.path.join(d, "nginx.crt"), os.path.join(d, "nginx.key")
        sh("openssl", "req", "-x509", *ec, "-keyout", nkey, "-out", ncert, "-days", "30",
           "-subj", "/CN=" + INSTANCE_IP, "-addext", f"subjectAltName=IP:{INSTANCE_IP}")
        self.nginx_cert_pem, self.nginx_key_pem = slurp(ncert), slurp(nkey)
        self.nginx_fingerprint = fingerprint(ncert)

    def _release(self):
        # Named like Kasm's own tarballs, build suffix included; the binary reads the
        # version from the unpacked release, never from this name.
        self.release_file = os.path.join(self.dir, f"kasm_release_{VERSION}.e2e0a1.tar.gz")
        self.release_sha256 = self.make_release(self.release_file)

    def make_release(self, out, *extra):
        """Builds a fake release tarball (make_release.py options in extra); returns its SHA-256."""
        r = sh(sys.executable, os.path.join(FAKES, "make_release.py"), "--out", out, "--version", VERSION,
               "--pad", str(self.pad_bytes), *extra)
        return r.stdout.strip().split()[-1]

    # --- services and fault hooks ----------------------------------------------------------
    def _restart(self, name, netns, script, args):
        if name in self.servers:
            self.servers.pop(name).stop()
        self.servers[name] = Server(netns, script, args, os.path.join(self.dir, name + ".log"))
        return self.servers[name]

    def restart_imds(self, *args):
        """Fake IMDS (tests/fakes/imds.py options) at 169.254.169.254:80; local-ipv4 is the instance's."""
        return self._restart("imds", self.aws, "imds.py",
                             ["--local-ipv4", INSTANCE_IP, *args, "--bind", IMDS_IP, "--port", "80"])

    def stop_imds(self):
        if "imds" in self.servers:
            self.servers.pop("imds").stop()

    def serve_release(self, test, name, *extra):
        """Builds a release (make_release.py options in extra) as <dir>/<name>.tar.gz and
        serves it until `test` ends (then the world's own release again); its SHA-256."""
        path = os.path.join(self.dir, name + ".tar.gz")
        sha = self.make_release(path, *extra)
        self.restart_release(file=path)
        test.addCleanup(self.restart_release)
        return sha

    def restart_release(self, *args, file=None):
        """HTTPS release server (release_server.py options); resets the request count."""
        log = os.path.join(self.dir, "release.log")
        if os.path.exists(log):
            os.unlink(log)
        return self._restart("release", self.aws, "release_server.py",
                             ["--bind", AWS_IP, "--file", file or self.release_file, "--cert", self.server_cert,
                              "--key", self.server_key, *args])

    def restart_manager(self, *args, port=443):
        return self._restart("manager", self.aws, "fake_manager_health.py",
                             ["--cert", self.server_cert, "--key", self.server_key, *args,
                              "--bind", AWS_IP, "--port", str(port)])

    def slow_docker(self, case, match="/exec/", delay=5.0):
        """Points the case's /var/run/docker.sock at a proxy to the real engine that holds
        requests whose first line contains `match` for `delay` seconds (the fake installer
        still talks to the engine directly). Stopped with the world."""
        sock = os.path.join(case.dir, "slow-docker.sock")
        self._restart("slowdocker", None, "slow_docker_proxy.py",
                      ["--listen", sock, "--upstream", self.docker_socket, "--match", match, "--delay", str(delay)])
        case.link_docker_socket(sock)

    def release_url(self):
        return f"https://{AWS_IP}:{self.servers['release'].port}/kasm/kasm_release_{VERSION}.tar.gz"

    def release_requests(self):
        """GET requests the release server has finished (since its last restart)."""
        try:
            with open(self.servers["release"].log_path) as f:
                return sum(1 for l in f if l.startswith("GET "))
        except FileNotFoundError:
            return 0

    def release_log(self):
        with open(self.servers["release"].log_path) as f:
            return f.read()

    def netem(self, spec):
        """Impairs the aws end of the link: spec like "loss 15%" (tc netem); None removes it.
        Where the kernel has no netem qdisc (no sch_netem module, as in some containers), a
        "loss N%" spec falls back to iptables' statistic match dropping N % of the packets
        in both directions. Returns the method used ("netem" or "iptables")."""
        ns = ["ip", "netns", "exec", self.aws]
        subprocess.run(ns + ["tc", "qdisc", "del", "dev", self.veth_a, "root"], capture_output=True)
        subprocess.run(ns + ["iptables", "-F"], capture_output=True)
        if not spec:
            return None
        r = subprocess.run(ns + ["tc", "qdisc", "add", "dev", self.veth_a, "root", "netem", *spec.split()],
                           capture_output=True, text=True)
        if r.returncode == 0:
            return "netem"
        words = spec.split()
        if "unknown" not in r.stderr or len(words) != 2 or words[0] != "loss" or not shutil.which("iptables"):
            raise RuntimeError(f"tc netem {spec} failed: {r.stderr.strip()}")
        p = str(float(words[1].rstrip("%")) / 100)
        for chain, flag in (("INPUT", "-i"), ("OUTPUT", "-o")):
            sh(*ns, "iptables", "-A", chain, flag, self.veth_a, "-m", "statistic", "--mode", "random",
               "--probability", p, "-j", "DROP")
        return "iptables"

    def start_docker(self):
        if not self.docker_dir:
            self.docker_dir = os.path.join(self.dir, "docker")
        r = subprocess.run([os.path.join(FAKES, "docker_world.sh"), "start", self.docker_dir, "--netns", self.instance],
                           capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            raise Unavailable(f"the private dockerd did not start: {r.stderr.strip()[-1500:]}")
        info = dict(l.split(" ", 1) for l in r.stdout.splitlines() if " " in l)
        self.docker_socket, self.docker_image = info["SOCKET"], info["IMAGE"]
        for c in self.cases:
            if os.path.lexists(c.path("/var/run/docker.sock")):  # a test may have removed it
                c.link_docker_socket(self.docker_socket)

    def stop_docker(self):
        """Stops dockerd (containers and image stay on disk; start_docker brings it back)."""
        pidfile = os.path.join(self.docker_dir, "dockerd.pid")
        try:
            pid = int(slurp(pidfile).strip())
        except (OSError, ValueError):
            return
        os.kill(pid, signal.SIGTERM)
        for _ in range(200):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)

    def docker(self, *args, check=True, timeout=60):
        return sh("docker", "-H", "unix://" + self.docker_socket, *args, check=check, timeout=timeout)

    def metadata_rules(self):
        """`iptables-nft -S DOCKER-USER` in the instance (what Docker itself would list)."""
        r = sh("ip", "netns", "exec", self.instance, "iptables-nft", "-S", "DOCKER-USER", check=False)
        return [l for l in r.stdout.splitlines() if l.strip()]

    def remove_metadata_block(self):
        """Deletes kasm-bootstrap's DROP rule(s) from the instance's DOCKER-USER chain, as a
        fresh dockerd after a reboot would have it (the chain persists across cases)."""
        for _ in range(10):
            r = sh("ip", "netns", "exec", self.instance, "iptables-nft", "-D", "DOCKER-USER", "-d",
                   IMDS_IP + "/32", "-m", "comment", "--comment", METADATA_RULE_COMMENT, "-j", "DROP", check=False)
            if r.returncode != 0:
                return

    def container_fetch(self, url, seconds=4):
        """busybox wget of `url` from a fresh container on Docker's default bridge: its
        packets are forwarded by the instance namespace (through DOCKER-USER). Returns
        (wget's exit code, output); 143 when busybox `timeout` ended a wget that got no
        answer. Not wget's own -T: Debian 12's static busybox 1.35 wget crashes with it.
        Under `sh`, because busybox timeout signals the process it execs, which as the
        container's PID 1 would ignore SIGTERM."""
        script = f'timeout {int(seconds)} wget -q -O- "$0"; echo "wget-exit $?"'
        r = self.docker("run", "--rm", "--network", "bridge", self.docker_image, "sh", "-c", script, url, check=False,
                        timeout=60 + seconds)
        out = r.stdout + r.stderr
        words = [l.split()[1] for l in r.stdout.splitlines() if l.startswith("wget-exit ")]
        return (int(words[-1]) if words else -1), out

    def instance_fetch(self, url, seconds=3):
        """The same GET from the instance's own network stack (the host's traffic, OUTPUT):
        the HTTP status, or None when nothing answered."""
        code = ("import sys, urllib.request, urllib.error\n"
                "try:\n"
                f"    print(urllib.request.urlopen(sys.argv[1], timeout={seconds}).status)\n"
                "except urllib.error.HTTPError as e:\n"
                "    print(e.code)\n"
                "except Exception as e:\n"
                "    print('none', e)\n")
        r = sh("ip", "netns", "exec", self.instance, sys.executable, "-c", code, url, check=False, timeout=30)
        word = (r.stdout.split() or ["none"])[0]
        return int(word) if word.isdigit() else None

    def containers_report(self):
        """`docker ps -a` and the last lines each container logged: what a failed run's
        assertion message needs to say why a container is not running."""
        out = self.docker("ps", "-a", "--format", "{{.Names}}\t{{.Status}}", check=False).stdout
        for name in out.split():
            if name.startswith("kasm_"):
                logs = self.docker("logs", "--tail", "10", name, check=False)
                out += f"--- {name} logs ---\n{logs.stdout}{logs.stderr}"
        return out

    def remove_containers(self):
        ids = self.docker("ps", "-aq", check=False).stdout.split()
        if ids:
            self.docker("rm", "-f", *ids, check=False)

    def served_certificate_fingerprint(self, container="kasm_proxy"):
        """SHA-256 fingerprint of the certificate nginx in the container serves on 443 (via
        the container's own network namespace: it runs with --network none)."""
        pid = self.docker("inspect", "-f", "{{.State.Pid}}", container).stdout.strip()
        r = subprocess.run(["nsenter", "-t", pid, "-n", "openssl", "s_client", "-connect", "127.0.0.1:443"],
                           input="", capture_output=True, text=True, timeout=20)
        x = subprocess.run(["openssl", "x509", "-noout", "-fingerprint", "-sha256"], input=r.stdout,
                           capture_output=True, text=True, timeout=20)
        return x.stdout.strip().split("=", 1)[1] if x.returncode == 0 else None

    def execs(self, since, container="kasm_proxy"):
        """Commands exec'd in the container since the epoch time `since` (docker events)."""
        r = self.docker("events", "--since", f"{since:.3f}", "--until", f"{time.time():.3f}", "--filter",
                        f"container={container}", "--filter", "event=exec_start", "--format",
                        "{{.Action}}", check=False)
        return [l.split(":", 1)[1].strip() for l in r.stdout.splitlines() if ":" in l]

    def container_state(self, name):
        r = self.docker("inspect", "-f", "{{.State.Status}}", name, check=False)
        return r.stdout.strip() if r.returncode == 0 else None

    def new_case(self, name):
        """A fresh instance root and config; the previous cases' containers are removed."""
        self.remove_containers()
        case = Case(self, name)
        self.cases.append(case)
        return case


def pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def marked_processes(marker):
    """{pid: command line} of the processes (other than this one) whose environment holds
    exactly `marker` (b"NAME=value")."""
    found = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if marker not in f.read().split(b"\0"):
                    continue
            with open(f"/proc/{pid}/cmdline", "rb") as c:
                found[int(pid)] = c.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            pass
    return found


def kill_marked(marker):
    """SIGKILLs the processes whose environment holds exactly `marker` (b"NAME=value");
    returns their command lines."""
    killed = []
    for pid, cmdline in marked_processes(marker).items():
        try:
            os.kill(pid, signal.SIGKILL)
            killed.append(cmdline)
        except ProcessLookupError:
            pass
    return killed


def swap_off_under(directory):
    """Swaps off every active swap area (/proc/swaps) whose file is under directory: a run
    with KB_TEST_SWAPON_UNDER_ROOT=1 really activates its swap file. Must happen before the
    directory is deleted: an unlinked swap file can no longer be named to swapoff. Returns
    the areas it swapped off."""
    try:
        areas = [line.split()[0] for line in slurp("/proc/swaps").splitlines()[1:] if line.strip()]
    except OSError:
        return []
    done = []
    for area in areas:
        # /proc/swaps escapes blanks in names as \040; the world's paths have none.
        if area.startswith(directory.rstrip("/") + "/"):
            if subprocess.run(["swapoff", area], capture_output=True).returncode == 0:
                done.append(area)
    return done


def sweep_dead_worlds():
    """Removes what a SIGKILLed suite could not: its namespaces, dockerd, mounts and dir.
    Only worlds whose owner process is gone (owner.pid / the pid in the netns name)."""
    for d in [os.path.join("/tmp", e) for e in os.listdir("/tmp") if e.startswith("kbe2e.")]:
        try:
            owner = int(slurp(os.path.join(d, "owner.pid")).strip())
        except (OSError, ValueError):
            continue
        if pid_alive(owner):
            continue
        kill_marked(("KBE2E_WORLD=" + d).encode())
        swap_off_under(d)
        if os.path.isdir(os.path.join(d, "docker")):
            subprocess.run([os.path.join(FAKES, "docker_world.sh"), "stop", os.path.join(d, "docker")],
                           capture_output=True)
        for line in reversed(slurp("/proc/self/mounts").splitlines()):
            target = line.split()[1]
            if target.startswith(d + "/"):
                subprocess.run(["umount", "-l", target], capture_output=True)
        shutil.rmtree(d, ignore_errors=True)
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
    for name in names:
        digits = name[len("kbe2e"):-1]
        if name.startswith("kbe2e") and name[-1] in "ia" and digits.isdigit() and not pid_alive(int(digits)):
            subprocess.run(["ip", "netns", "del", name], capture_output=True)


def slurp(path):
    with open(path, errors="replace") as f:
        return f.read()


def fingerprint(pem_path):
    r = sh("openssl", "x509", "-in", pem_path, "-noout", "-fingerprint", "-sha256")
    return r.stdout.strip().split("=", 1)[1]


def main_or_skip(binary, run_tests):
    """Entry point for a suite: builds the world, runs run_tests(world) (returns an exit
    code) and tears the world down; exits SKIP (77) with the reason when the world cannot
    be built here (not root, no namespaces, no dockerd)."""
    w = World(binary)
    try:
        w.start()
    except Unavailable as e:
        w.stop()
        if os.environ.get("KB_TEST_NO_SKIP") == "1":
            # scripts/test.sh as root: the world's capabilities are required, so a skip
            # would hide a broken machine or a broken fake.
            print(f"FAILED: the e2e world cannot be built here, and KB_TEST_NO_SKIP=1 forbids a skip: {e}",
                  flush=True)
            sys.exit(1)
        print(f"SKIPPED: the e2e world cannot be built here: {e}", flush=True)
        sys.exit(SKIP)
    try:
        code = run_tests(w)
    finally:
        w.stop()
    sys.exit(code)


def run_suite(module_name):
    """The `__main__` of a test module: `--binary PATH` plus unittest's own arguments.
    Sets the module's global W to the world, runs its test cases, exits 0/1 (77 = skip)."""
    import argparse
    import unittest
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ns, rest = ap.parse_known_args()
    module = sys.modules[module_name]

    def run_tests(w):
        module.W = w
        prog = unittest.main(module=module, argv=[sys.argv[0]] + rest, exit=False, verbosity=2)
        return 0 if prog.result.wasSuccessful() else 1

    main_or_skip(ns.binary, run_tests)
