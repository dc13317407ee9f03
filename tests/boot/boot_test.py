#!/usr/bin/env python3
"""Boot suite: the image Packer builds, booted in a real VM with real cloud-init and systemd.

    tests/boot/boot_test.py build --kind plain|baked --out DIR [--timeout S] [--keep DIR]
    tests/boot/boot_test.py boot --image DIR [--reboot] [--marks FILE] [--timeout S] [--keep DIR]

`build` runs Packer's qemu.debian12 source (packer/kasm-bootstrap.pkr.hcl, every provisioner
the AMIs get: provision.sh, prebake when baked, clean.sh) from the source image
tests/boot/make-base-image.sh makes (a Debian 12 cloud image: the stand-in for Canonical's
Ubuntu 22.04 AMI) and writes DIR/kasm-bootstrap.qcow2. `plain` installs the .deb and
writes the image defaults (full install at boot); `baked` also pre-fetches the release
and runs `kasm-bootstrap prebake` (the fast path at boot, no download).

`boot` boots a copy-on-write overlay of a built image (never the image itself) and
asserts from outside the VM. With --reboot it then powers the VM off and boots the same
disk again: a second boot is a no-op for kasm-bootstrap.

Both run the VM in the fake AWS world of tests/e2e/world.py, with one namespace:

    netns "aws" (kbe2e<pid>a)
      tap0 10.77.0.1/24 + 169.254.169.254/32  <- the VM's virtio NIC (QEMU runs in the netns)
      dnsmasq on tap0: DHCP 10.77.0.2 for the VM's MAC, router 10.77.0.1, no DNS
      169.254.169.254:80  tests/boot/ec2_metadata.py in front of tests/fakes/imds.py (IMDSv2
                          required): meta-data, the launch key pair's public key, the
                          user-data (boot only), the identity document
      10.77.0.1:8443      HTTPS release server (tests/fakes/release_server.py) serving the
                          release whose SHA-256 the image defaults name
      10.77.0.1:443       fake Kasm manager (tests/fakes/fake_manager_health.py)
    a second disk (/dev/vdb, ext4 "kb-boot-test", made per VM): the world's test CA

The DMI says EC2 (-smbios type=1: manufacturer, and a uuid and serial starting "ec2", which
cloud-init's identify_aws requires), so cloud-init's Ec2 datasource does its ephemeral DHCP
in init-local, takes an IMDSv2 token, gives the launch key to the image's default user
(debian) and, at boot, reads the user-data: cloud-init/kasm-1.17-1.18/startup-script.sh
rendered exactly as Kasm renders it (tests/release/test_templates.py: render(),
str.format with Kasm 1.18's six variables, of realistic sizes, the manager token and the
provider name hostile but legal: BOOT_TOKEN, PROVIDER_NAME); cloud-final runs it, the script starts
kasm-bootstrap.service, whose summary line goes to the serial console.

Asserts of `boot`, from outside the VM:
  - the console shows "kasm-bootstrap <version>: SUCCESS" within the timeout, not the token
    (in any spelling: every token check looks for TOKEN_MARK, a part only the token has);
  - over SSH (the launch key): the unit succeeded, `kasm-bootstrap status` says done,
    the agent's containers run in the guest's dockerd, swap is on, and no process's argv
    holds the token (every /proc/*/cmdline is read, the search is done here);
  - the world's servers saw the guest: the IMDSv2 address lookup, the user-data, the
    manager's health check; plain: the release download; baked: no download at all;
  - after a clean power-off, read from the disk without mounting it (qemu-img convert +
    debugfs): no token in the journal (read with journalctl), cloud-init-output.log or
    any other file copied from /var/log and /var/lib/kasm-bootstrap; cloud-init-output.log
    shows the script starting the unit; baked: kasm-bootstrap's log says it took the fast
    path and the installer ran only at the image build;
  - --reboot: the second boot runs no kasm-bootstrap (the unit's condition is false: its
    per-boot configuration in /run is gone), no installer, no download; the containers
    come back (their restart policy), swap is on again from /etc/fstab, status still
    says done.

Exit 0 pass, 1 fail, 77 skip (not root, no QEMU, dnsmasq or packer). Removes the VMs,
namespace, servers and overlay on success, failure and Ctrl-C (World.stop, also at exit);
--keep DIR copies the consoles, server logs and the guest's logs there first. --marks FILE
writes the boot's timings (seconds from QEMU's start) as JSON, for bench/boot.sh.
Timings and the facts this relies on: docs/boot.md.
"""
import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))
sys.path.insert(0, os.path.join(REPO, "tests", "release"))
import world  # noqa: E402
from test_templates import Template, render, realistic_values  # noqa: E402

GUEST_IP = world.INSTANCE_IP
HOST_IP = world.AWS_IP
GUEST_USER = "debian"  # the default user of Debian's cloud-init (packer: ssh_username)
MAC = "0e:12:34:56:78:9a"  # imds.py's default --mac: the NIC's, so the metadata's interface matches
# An EC2 instance's DMI (cloud-init 22.4 identify_aws): product_uuid starts with "ec2" and the
# serial number equals it.
EC2_UUID = "ec2b0071-5e5a-1b2c-3d4e-5f60718293a4"
RELEASE_PORT = "8443"
SUMMARY = re.compile(r"kasm-bootstrap (\S+): (SUCCESS|FAILED)\b[^\r\n]*")  # src/report/console_observer.cpp
UNIT_REFUSED = re.compile(r"kasm-bootstrap\[\d+\]: \d+ problem\(s\) in the configuration[^\r\n]*"
                          r"|Failed to start [^\r\n]*kasm-bootstrap[^\r\n]*")
TEMPLATE = Template("aws", "kasm-1.17-1.18", "bash")
IMAGE_NAME = "kasm-bootstrap.qcow2"  # packer: vm_name
# The user-data's values: what Kasm 1.18 passes, hostile but legal. The manager token is an
# operator's string in Kasm (the Zone's Manager Token): quotes, $, backticks, braces,
# format and comment characters, a backslash; the provider name is the VM provider
# config's name, spaces and quotes included. The server id must be a UUID and the manager
# address must reach the world's manager, so those two are plain. TOKEN_MARK is a part of
# the token nothing else holds: a leak check finds the token in any spelling (escaped,
# quoted) by it, not only the raw token.
TOKEN_MARK = "kbboot7q"
BOOT_TOKEN = TOKEN_MARK + "'tok\"en $HOME `id` $(id) {x} {{y}} %s \\ #:-!&*|> 5f1c9a7d"
PROVIDER_NAME = 'AWS "agents" with  two  spaces '


def leaked(text):
    """Whether TEXT holds the manager token, in any spelling."""
    return BOOT_TOKEN in text or TOKEN_MARK in text


# What the test world needs in the image defaults (docs/boot.md "Fixtures"): its CA, on the
# second disk, and the Docker socket as the fake release needs it (under /kbroot).
TEST_DEFAULTS = {"ca_bundle": "/etc/kb-boot-test/ca.pem", "manager_ca": "/etc/kb-boot-test/ca.pem",
                 "docker_socket": "/kbroot/run/docker.sock"}


def log(msg):
    print(f"boot-test [{time.strftime('%H:%M:%S')}]: {msg}", flush=True)


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


class BootWorld(world.World):
    """world.World with a VM instead of the instance namespace: one namespace ("aws"), its
    tap device the VM's wire; the same servers, PKI and clean-up, plus dnsmasq, the launch
    key pair and the VM's processes."""

    def __init__(self, source_dir, user_data=None):
        self.source = source_dir
        # The world runs no binary on this host: the one under test is inside the image.
        super().__init__(os.path.join(source_dir, "source.qcow2"))
        self.procs = []
        self.user_data = user_data

    def start(self):
        super().start()
        self.key = os.path.join(self.dir, "id_ed25519")
        world.sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "kb-boot-test", "-f", self.key)
        self.restart_imds()
        self.spawn("dnsmasq", ["ip", "netns", "exec", self.aws, "dnsmasq", "--no-daemon", "--conf-file=/dev/null",
                               "--port=0", "--interface=tap0", "--bind-interfaces", "--user=root",
                               f"--dhcp-range={GUEST_IP},{GUEST_IP},255.255.255.0,12h",
                               f"--dhcp-host={MAC},{GUEST_IP}", f"--dhcp-option=option:router,{HOST_IP}",
                               f"--dhcp-leasefile={os.path.join(self.dir, 'dnsmasq.leases')}", "--log-dhcp"])
        return self

    def _network(self):
        ns = self.aws
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        world.sh("ip", "netns", "add", ns)
        world.sh("ip", "-n", ns, "link", "set", "lo", "up")
        world.sh("ip", "-n", ns, "tuntap", "add", "tap0", "mode", "tap")
        world.sh("ip", "-n", ns, "addr", "add", HOST_IP + "/24", "dev", "tap0")
        world.sh("ip", "-n", ns, "addr", "add", world.IMDS_IP + "/32", "dev", "tap0")
        world.sh("ip", "-n", ns, "link", "set", "tap0", "up")

    def _release(self):
        self.release_file = os.path.join(self.source, "release.tar.gz")
        with open(self.release_file, "rb") as f:
            self.release_sha256 = hashlib.sha256(f.read()).hexdigest()

    def release_url(self):
        return f"https://{HOST_IP}:{RELEASE_PORT}/kasm/kasm_release_{world.VERSION}.tar.gz"

    def start_docker(self):
        pass  # the agent's containers run in the VM's own dockerd

    def restart_imds(self, *args):
        if not getattr(self, "key", None):
            return None  # World.start calls this before the key exists; start() again after
        imds = self._restart("imds", self.aws, "imds.py",
                             ["--local-ipv4", GUEST_IP, "--mac", MAC, *args, "--bind", "127.0.0.1"])
        front = ["--upstream", f"127.0.0.1:{imds.port}", "--mac", MAC, "--local-ipv4", GUEST_IP,
                 "--public-key", self.key + ".pub", "--bind", world.IMDS_IP, "--port", "80"]
        if self.user_data is not None:
            ud = os.path.join(self.dir, "user-data")
            with open(ud, "w") as f:
                f.write(self.user_data)
            front += ["--user-data", ud]
        return self._restart("ec2md", self.aws, os.path.join("..", "boot", "ec2_metadata.py"), front)

    def restart_release(self, *args, file=None):
        return super().restart_release("--port", RELEASE_PORT, *args, file=file)

    def spawn(self, name, cmd, env=None):
        """A process of this world (killed by stop(), and by sweep_dead_worlds() through the
        KBE2E_WORLD marker if this process dies first)."""
        out = open(os.path.join(self.dir, name + ".log"), "w")
        env = dict(os.environ, **(env or {}), KBE2E_WORLD=self.dir)
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
                             cwd=self.dir)
        out.close()
        self.procs.append(p)
        return p

    def stop(self):
        if not self.started:
            return
        for p in reversed(self.procs):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                    p.wait(10)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    try:
                        os.killpg(p.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    p.wait()
        self.procs = []
        world.kill_marked(("KBE2E_WORLD=" + self.dir).encode())
        super().stop()

    # --- the VM ---------------------------------------------------------------------------
    def fixture_disk(self, name):
        """/dev/vdb: an ext4 file system labelled kb-boot-test holding the world's CA."""
        src = os.path.join(self.dir, name)
        os.makedirs(src)
        shutil.copy(self.ca_cert, os.path.join(src, "ca.pem"))
        img = os.path.join(self.dir, name + ".raw")
        with open(img, "wb") as f:
            f.truncate(8 << 20)
        world.sh("mkfs.ext4", "-q", "-F", "-L", "kb-boot-test", "-d", src, img)
        return img

    def qemu_args(self, disk, disk_format, fixture, console, monitor=None, packer=False):
        """The VM's QEMU options as [option, value] pairs (Packer's qemuargs form). For
        Packer, without the accelerator, memory and CPUs: it sets them itself (accelerator,
        memory, cpus; QEMU refuses -accel beside Packer's -machine accel=)."""
        args = [] if packer else [["-accel", "tcg"], ["-m", "3072"], ["-smp", "2"]]
        args += [["-kernel", os.path.join(self.source, "vmlinuz")], ["-initrd", os.path.join(self.source, "initrd.img")],
                ["-append", "root=/dev/vda rw console=ttyS0"],
                ["-drive", f"file={disk},format={disk_format},if=virtio,cache=writeback"],
                ["-drive", f"file={fixture},format=raw,if=virtio,readonly=on"],
                ["-netdev", "tap,id=n0,ifname=tap0,script=no,downscript=no"],
                ["-device", f"virtio-net-pci,netdev=n0,mac={MAC}"],
                # Entropy from the host, so nothing in an early TCG boot waits for the pool.
                ["-device", "virtio-rng-pci"],
                ["-smbios", f"type=1,manufacturer=Amazon EC2,product=t3.medium,uuid={EC2_UUID},serial={EC2_UUID}"],
                ["-serial", f"file:{console}"], ["-display", "none"]]
        if monitor:
            args += [["-monitor", f"unix:{monitor},server,nowait"], ["-no-reboot"]]
        return args

    def start_vm(self, name, disk, fixture):
        console = os.path.join(self.dir, name + "-console.log")
        monitor = os.path.join(self.dir, name + "-monitor.sock")
        argv = ["ip", "netns", "exec", self.aws, "qemu-system-x86_64"]
        for pair in self.qemu_args(disk, "qcow2", fixture, console, monitor):
            argv += pair
        vm = self.spawn(name, argv)
        return vm, console, monitor

    def ssh(self, command, timeout=60, check=True):
        """COMMAND (a shell line) on the guest as its default user, over the launch key."""
        r = subprocess.run(["ip", "netns", "exec", self.aws, "ssh", "-i", self.key, "-o", "BatchMode=yes",
                            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                            "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR", f"{GUEST_USER}@{GUEST_IP}", command],
                           capture_output=True, text=True, errors="replace", timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError(f"ssh {command!r} exited {r.returncode}: {r.stderr.strip()[-500:]}")
        return r

    def wait_ssh(self, vm, deadline):
        while time.monotonic() < deadline and vm.poll() is None:
            try:
                if self.ssh("true", timeout=30, check=False).returncode == 0:
                    return True
            except subprocess.TimeoutExpired:
                pass
            time.sleep(3)
        return False


def monitor_command(path, command):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect(path)
    s.sendall(command.encode() + b"\n")
    time.sleep(0.5)
    s.close()


def power_off(vm, monitor, failures, what):
    """A clean power-off (ACPI power button: systemd-logind), so the guest's files are on
    the disk."""
    if vm.poll() is not None:
        return
    monitor_command(monitor, "system_powerdown")
    try:
        vm.wait(300)
    except subprocess.TimeoutExpired:
        failures.append(f"{what}: the VM did not power off within 300 s")


def guest_files(w, disk, out_dir, paths):
    """Copies guest paths out of a powered-off VM's disk: qemu-img convert to a raw file,
    then debugfs rdump; never mounted."""
    raw = os.path.join(w.dir, "after.raw")
    world.sh("qemu-img", "convert", "-O", "raw", disk, raw, timeout=900)
    os.makedirs(out_dir, exist_ok=True)
    for p in paths:
        subprocess.run(["debugfs", "-R", f"rdump {p} {out_dir}", raw], capture_output=True, timeout=300)
    os.unlink(raw)


def grep_tree(root, needle):
    hits = []
    for d, _, files in os.walk(root):
        for f in files:
            path = os.path.join(d, f)
            try:
                with open(path, "rb") as fh:
                    if needle.encode() in fh.read():
                        hits.append(os.path.relpath(path, root))
            except OSError:
                pass
    return hits


def journal_text(directory):
    """The guest's journal files as text (journalctl --directory, every field), or None when
    there are none: journald may compress a long field, so the raw bytes are not enough to
    say a value is absent."""
    if not os.path.isdir(directory) or not shutil.which("journalctl"):
        return None
    r = subprocess.run(["journalctl", "--directory", directory, "-o", "export", "--no-pager"],
                       capture_output=True, timeout=120)
    text = r.stdout.decode(errors="replace")
    return text if r.returncode == 0 and text else None


def keep_logs(w, keep):
    """Copies the world's logs and the guest's files to KEEP (replacing an earlier copy);
    a failure to copy is reported, never the test's result."""
    if not keep:
        return
    try:
        shutil.rmtree(keep, ignore_errors=True)
        os.makedirs(keep)
        for f in os.listdir(w.dir):
            src = os.path.join(w.dir, f)
            if os.path.isfile(src) and (f.endswith((".log", ".leases")) or f == "user-data"):
                shutil.copy(src, keep)
        for d in ("guest", "guest-reboot"):
            if os.path.isdir(os.path.join(w.dir, d)):
                shutil.copytree(os.path.join(w.dir, d), os.path.join(keep, d), symlinks=True)
        log(f"kept logs in {keep}")
    except OSError as e:
        log(f"could not keep the logs in {keep}: {e}")


def source_image():
    """The cached source image (tests/boot/make-base-image.sh), its directory."""
    r = subprocess.run([os.path.join(HERE, "make-base-image.sh")], stdout=subprocess.PIPE, text=True)
    if r.returncode == 77:
        sys.exit(77)
    if r.returncode != 0:
        raise RuntimeError("make-base-image.sh failed")
    dirs = dict(line.split(" ", 1) for line in r.stdout.splitlines() if " " in line)
    return dirs["SOURCE"]


def report(failures, passed):
    for f in failures:
        print("FAILED: " + f, flush=True)
    if not failures:
        print(f"PASSED: {passed}", flush=True)
    return 1 if failures else 0


# --- build ------------------------------------------------------------------------------------
def cmd_build(a):
    deb = os.path.abspath(a.deb)
    if not os.path.isfile(deb):
        print(f"FAILED: the .deb {deb} does not exist (scripts/build-deb.sh makes it)", flush=True)
        return 1
    out = os.path.abspath(a.out)
    if os.path.exists(out):
        shutil.rmtree(out)
    partial = out + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    t0 = time.monotonic()
    source = source_image()
    log(f"source image ready in {time.monotonic() - t0:.0f} s: {source}")
    w = BootWorld(source)
    failures = []
    try:
        w.start()
        fixture = w.fixture_disk("fixture")
        console = os.path.join(w.dir, "build-console.log")
        baked = a.kind == "baked"
        qemu_args = w.qemu_args(os.path.join(partial, IMAGE_NAME), "qcow2", fixture, console, packer=True)
        defaults = dict(TEST_DEFAULTS)
        # The provisioners' environment (provisioner_environment): the fake release's root
        # for prebake's installer, and the test CA for provision.sh's curl (the pre-fetch).
        env = ["KASM_FAKE_ROOT=/kbroot", "CURL_CA_BUNDLE=/etc/kb-boot-test/ca.pem"]
        cmd = ["ip", "netns", "exec", w.aws, "packer", "build", "-color=false", "-only=qemu.debian12",
               "-var", f"qemu_source_image={os.path.join(source, 'source.qcow2')}",
               "-var", f"qemu_output_directory={partial}",
               "-var", f"qemu_ssh_private_key_file={w.key}", "-var", f"qemu_ssh_host={GUEST_IP}",
               "-var", "qemu_args=" + json.dumps(qemu_args),
               "-var", f"deb_file={deb}", "-var", f"release_url={w.release_url()}",
               "-var", f"release_sha256={w.release_sha256}", "-var", f"release_version={world.VERSION}",
               "-var", f"baked={'true' if baked else 'false'}",
               "-var", f"prefetch_release={'true' if baked else 'false'}",
               "-var", "extra_image_defaults=" + json.dumps(defaults),
               "-var", "provisioner_environment=" + json.dumps(env),
               os.path.join(REPO, "packer")]
        packer_env = {"CHECKPOINT_DISABLE": "1", "PACKER_CACHE_DIR": os.path.join(w.dir, "packer_cache"),
                      "PACKER_LOG": "1", "PACKER_LOG_PATH": os.path.join(w.dir, "packer-debug.log"),
                      "TMPDIR": w.dir}
        log(f"packer build -only=qemu.debian12 ({a.kind}); log {os.path.join(w.dir, 'packer.log')}")
        b0 = time.monotonic()
        packer = w.spawn("packer", cmd, env=packer_env)
        try:
            rc = packer.wait(a.timeout)
        except subprocess.TimeoutExpired:
            rc = None
            failures.append(f"packer build did not finish within {a.timeout} s")
        took = time.monotonic() - b0
        out_log = read(os.path.join(w.dir, "packer.log"))
        if rc is not None and rc != 0:
            failures.append(f"packer build exited {rc}")
        wanted = ["==> provision: done", "==> clean: done"]
        wanted.append("==> baked=true: kasm-bootstrap prebake" if baked else "==> baked=false: skipping")
        for want in wanted:
            if want not in out_log:
                failures.append(f"the build's output has no '{want}'")
        image = os.path.join(partial, IMAGE_NAME)
        if not failures and not os.path.isfile(image):
            failures.append(f"packer made no {image}")
        log(f"packer build ({a.kind}) took {took:.0f} s, exit {rc}")
        if failures:
            print("--- packer (last 60 lines) ---\n" + "\n".join(out_log.splitlines()[-60:]), flush=True)
        else:
            shutil.copy(os.path.join(w.dir, "packer.log"), os.path.join(partial, "packer.log"))
            with open(os.path.join(partial, "build.json"), "w") as f:
                json.dump({"kind": a.kind, "seconds": round(took, 1), "source": source,
                           "release_sha256": w.release_sha256}, f)
            os.rename(partial, out)
        keep_logs(w, a.keep)
    finally:
        w.stop()
        shutil.rmtree(partial, ignore_errors=True)
    return report(failures, f"{a.kind} image {os.path.join(out, IMAGE_NAME)}")


# --- boot -------------------------------------------------------------------------------------
def wait_summary(w, vm, console, t0, timeout, marks):
    """Waits for the summary line on the console, noting the boot's marks on the way;
    returns the line, or None (timeout or QEMU gone)."""
    md_log = w.servers["ec2md"].log_path
    patterns = (("kernel", "Linux version"), ("systemd", r"systemd\[1\]|Welcome to"), ("dhcp", None),
                ("user-data", None), ("cloud-final", "Cloud-init v. .* running 'modules:final'"))
    while time.monotonic() - t0 < timeout:
        text = read(console)
        now = time.monotonic() - t0
        for name, pattern in patterns:
            if name in marks:
                continue
            if name == "dhcp" and "DHCPACK" in read(os.path.join(w.dir, "dnsmasq.log")):
                marks[name] = now
            elif name == "user-data" and "/user-data -> 200" in read(md_log):
                marks[name] = now
            elif pattern and re.search(pattern, text):
                marks[name] = now
            if name in marks:
                log(f"+{marks[name]:.0f} s: {name}")
        m = SUMMARY.search(text)
        if m:
            marks["summary"] = now
            log(f"+{now:.0f} s: {m.group(0).strip()}")
            return m.group(0).strip()
        # A run refused before it starts (a configuration error) prints no summary; its
        # lines reach the console through the unit's StandardOutput=journal+console.
        refused = UNIT_REFUSED.search(text)
        if refused:
            log(f"+{now:.0f} s: {refused.group(0).strip()}")
            return refused.group(0).strip()
        if vm.poll() is not None:
            return None
        time.sleep(2)
    return None


# One SSH session (each costs seconds under TCG) for everything guest_state() reads, each
# part after a marker line. Every process's argv is read back and searched here, so the
# token is never on a command line of the guest's own.
GUEST_STATE = r"""
echo '@@unit'; systemctl show kasm-bootstrap.service -p ActiveState -p Result -p ConditionResult --no-pager
echo '@@status'; sudo -n kasm-bootstrap status 2>&1; echo "@@status_rc $?"
echo '@@containers'; sudo -n docker ps --format '{{.Names}} {{.Status}}'
echo '@@swaps'; cat /proc/swaps; grep -v '^#' /etc/fstab
echo '@@argv'; sudo -n sh -c 'for f in /proc/[0-9]*/cmdline; do tr "\0" " " < $f; echo; done' 2>/dev/null
"""


def guest_state(w):
    """What the guest says over SSH: the unit, status, containers, swap, every argv."""
    text = w.ssh(GUEST_STATE, timeout=120).stdout
    parts, key, rc = {}, None, -1
    for line in text.splitlines():
        if line.startswith("@@status_rc "):
            rc = int(line.split()[1])
        elif line.startswith("@@") and " " not in line:
            key = line[2:]
            parts[key] = []
        elif key:
            parts[key].append(line)
    part = {k: "\n".join(v) + "\n" for k, v in parts.items()}
    return {"unit": dict(line.split("=", 1) for line in part.get("unit", "").splitlines() if "=" in line),
            "status": part.get("status", ""), "status_rc": rc, "containers": part.get("containers", ""),
            "swaps": part.get("swaps", ""), "argv": part.get("argv", "")}


def check_running_agent(state, failures, what):
    names = {line.split()[0]: line for line in state["containers"].splitlines() if line.strip()}
    for c in ("kasm_agent", "kasm_proxy"):
        if c not in names or " Up " not in f" {names[c]} ":
            failures.append(f"{what}: container {c} is not running in the guest: {state['containers']!r}")
    # /proc/swaps: "Filename Type Size Used Priority" (whitespace-separated); the fstab entry
    # is what turns the same file on at the next boot.
    on = [f[0] for f in (line.split() for line in state["swaps"].splitlines()) if len(f) >= 5 and f[1] == "file"]
    in_fstab = [f[0] for f in (line.split() for line in state["swaps"].splitlines())
                if len(f) >= 3 and not f[0].startswith("/proc") and f[2] == "swap"]
    if not on:
        failures.append(f"{what}: no swap file is on in the guest: {state['swaps']!r}")
    elif not set(on) & set(in_fstab):
        failures.append(f"{what}: the swap file that is on ({on}) is not in /etc/fstab: {state['swaps']!r}")
    if leaked(state["argv"]):
        failures.append(f"{what}: the manager token is in a guest process's argv")
    if state["status_rc"] != 0 or not re.search(r"^status: done$", state["status"], re.M):
        failures.append(f"{what}: kasm-bootstrap status (exit {state['status_rc']}) does not say done: "
                        f"{state['status'][-600:]!r}")


def check_guest_files(w, out, failures, baked, what):
    output = read(os.path.join(out, "log", "cloud-init-output.log"))
    if not output:
        failures.append(f"{what}: no /var/log/cloud-init-output.log in the guest")
    elif "started kasm-bootstrap.service" not in output:
        failures.append(f"{what}: cloud-init-output.log does not show the startup script starting the unit")
    journal = journal_text(os.path.join(out, "log", "journal"))
    if journal is None:
        failures.append(f"{what}: no readable persistent journal in the guest's /var/log/journal")
    else:
        if leaked(journal):
            failures.append(f"{what}: the manager token is in the guest's journal")
        if "kasm-bootstrap: success" not in journal:
            failures.append(f"{what}: the journal has no 'kasm-bootstrap: success' line")
    hits = grep_tree(out, TOKEN_MARK)
    # The token's legitimate places: the agent configuration and the user-data cloud-init
    # keeps (/var/lib/cloud), neither copied out.
    if hits:
        failures.append(f"{what}: the manager token is in the guest's {hits}")
    runs = read(os.path.join(out, "fake-installer", "runs")).strip()
    kb_log = read(os.path.join(out, "kasm-bootstrap", "kasm-bootstrap.log"))
    if baked:
        if f"fast path: baked release {world.VERSION}" not in kb_log:
            failures.append(f"{what}: kasm-bootstrap's log does not say it took the fast path")
        if runs != "1":
            failures.append(f"{what}: the installer ran {runs or 'no'} times, not once (at the image build)")
    elif runs != "1":
        failures.append(f"{what}: the installer ran {runs or 'no'} times, not once")


def cmd_boot(a):
    image_dir = os.path.abspath(a.image)
    image = os.path.join(image_dir, IMAGE_NAME)
    try:
        with open(os.path.join(image_dir, "build.json")) as f:
            built = json.load(f)
    except (OSError, ValueError) as e:
        print(f"FAILED: {image_dir} holds no built image (boot_test.py build): {e}", flush=True)
        return 1
    baked = built["kind"] == "baked"
    what = f"{built['kind']} boot"
    w = BootWorld(built["source"])
    values = dict(realistic_values(TEMPLATE), manager_token=BOOT_TOKEN, server_id=world.SERVER_ID,
                  upstream_auth_address=HOST_IP, server_hostname="kasm-agent-boot", server_external_fqdn="None",
                  provider_name=PROVIDER_NAME)
    w.user_data = render(TEMPLATE, values)
    failures, marks, summary = [], {}, None
    try:
        w.start()
        if w.release_sha256 != built["release_sha256"]:
            failures.append("the source image's release changed since the image was built: build it again")
            return report(failures, "")
        overlay = os.path.join(w.dir, "overlay.qcow2")
        world.sh("qemu-img", "create", "-q", "-f", "qcow2", "-b", image, "-F", "qcow2", overlay)
        fixture = w.fixture_disk("fixture")
        t0 = time.monotonic()
        vm, console, monitor = w.start_vm("boot", overlay, fixture)
        log(f"{what}: VM started (console {console})")
        summary = wait_summary(w, vm, console, t0, a.timeout, marks)
        console_text = read(console)
        if summary is None:
            failures.append(f"{what}: no summary line on the console within {a.timeout} s"
                            + (f" (QEMU exited {vm.returncode}: {read(os.path.join(w.dir, 'boot.log'))[-800:]})"
                               if vm.poll() is not None else ""))
        elif ": SUCCESS" not in summary:
            failures.append(f"{what}: the run did not succeed: {summary}")
        if leaked(console_text):
            failures.append(f"{what}: the manager token is on the serial console")
        ok = summary is not None and ": SUCCESS" in summary
        if ok:
            if not w.wait_ssh(vm, time.monotonic() + 300):
                failures.append(f"{what}: no SSH to the guest within 300 s")
            else:
                marks["ssh"] = time.monotonic() - t0
                state = guest_state(w)
                unit = state["unit"]
                if unit.get("Result") != "success" or unit.get("ActiveState") not in ("active", "inactive"):
                    failures.append(f"{what}: kasm-bootstrap.service is {unit}")
                check_running_agent(state, failures, what)
            for server, line in (("imds", "GET /latest/meta-data/local-ipv4 token=yes -> 200"),
                                 ("ec2md", "/user-data -> 200"), ("manager", "GET /api/__healthcheck -> 200")):
                if line not in read(w.servers[server].log_path):
                    failures.append(f"{what}: the {server} server never answered '{line}'")
            downloads = read(w.servers["release"].log_path).count("status=200")
            if baked and downloads:
                failures.append(f"{what}: the baked image downloaded the release ({downloads} times)")
            if not baked and not downloads:
                failures.append(f"{what}: the release server never served the release")
        power_off(vm, monitor, failures, what)
        marks["powered-off"] = time.monotonic() - t0
        if vm.poll() is not None:
            out = os.path.join(w.dir, "guest")
            guest_files(w, overlay, out, ["/var/log", "/fake-installer", "/var/lib/kasm-bootstrap"])
            if ok:
                check_guest_files(w, out, failures, baked, what)
        if a.reboot and ok and not failures:
            reboot(w, overlay, fixture, failures, marks, a.timeout)
        log("timings: " + ", ".join(f"{k} +{v:.0f} s" for k, v in marks.items()))
        if a.marks:
            with open(a.marks, "w") as f:
                json.dump({"kind": built["kind"], "summary": summary, "marks": marks,
                       "run_seconds": run_seconds(summary), "steps_ms": step_times(console_text)}, f, indent=1)
        keep_logs(w, a.keep)
        if failures:
            print("--- console (last 60 lines) ---\n" + "\n".join(console_text.splitlines()[-60:]), flush=True)
    finally:
        w.stop()
    return report(failures, f"{what}: {summary}" + (" (and the reboot)" if a.reboot else ""))


def step_times(console_text):
    """Each step's time in ms, from the unit's console lines ("<step>: done in N ms")."""
    return {m.group(1): int(m.group(2))
            for m in re.finditer(r"kasm-bootstrap\[\d+\]: ([a-z-]+): done in (\d+) ms", console_text)}


def run_seconds(summary):
    m = re.search(r" in ([0-9.]+) s", summary or "")
    return float(m.group(1)) if m else None


def reboot(w, overlay, fixture, failures, marks, timeout):
    """The same disk booted again: nothing for kasm-bootstrap to do, the agent back."""
    what = "reboot"
    release_before = read(w.servers["release"].log_path).count("status=200")
    t0 = time.monotonic()
    vm, console, monitor = w.start_vm("reboot", overlay, fixture)
    log(f"{what}: VM started again (console {console})")
    if not w.wait_ssh(vm, t0 + timeout):
        failures.append(f"{what}: no SSH to the guest within {timeout} s")
        return
    # The agent's containers come back on their own (their restart policy) once dockerd is up.
    deadline, state = time.monotonic() + 300, None
    while time.monotonic() < deadline:
        w.ssh("systemctl is-system-running --wait", timeout=400, check=False)
        state = guest_state(w)
        if state["containers"].count(" Up ") >= 2:
            break
        time.sleep(5)
    marks["reboot-agent-up"] = time.monotonic() - t0
    log(f"+{marks['reboot-agent-up']:.0f} s after the reboot: {state['containers'].strip()!r}")
    unit = state["unit"]
    if unit.get("ConditionResult") != "no":
        failures.append(f"{what}: kasm-bootstrap.service's condition was not false on the second boot: {unit}")
    check_running_agent(state, failures, what)
    if SUMMARY.search(read(console)):
        failures.append(f"{what}: kasm-bootstrap printed a summary on the second boot")
    if read(w.servers["release"].log_path).count("status=200") != release_before:
        failures.append(f"{what}: the release was downloaded again")
    power_off(vm, monitor, failures, what)
    if vm.poll() is not None:
        out = os.path.join(w.dir, "guest-reboot")
        guest_files(w, overlay, out, ["/fake-installer"])
        before = read(os.path.join(w.dir, "guest", "fake-installer", "runs")).strip()
        after = read(os.path.join(out, "fake-installer", "runs")).strip()
        if after != before:
            failures.append(f"{what}: the installer ran again ({before} runs before, {after} after)")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build")
    b.add_argument("--kind", choices=["plain", "baked"], required=True)
    b.add_argument("--out", required=True)
    b.add_argument("--deb", default=os.path.join(REPO, "build", "static", "kasm-bootstrap.deb"))
    b.add_argument("--timeout", type=int, default=int(os.environ.get("KB_BOOT_TIMEOUT", "1800")))
    b.add_argument("--keep", default="")
    r = sub.add_parser("boot")
    r.add_argument("--image", required=True)
    r.add_argument("--reboot", action="store_true")
    r.add_argument("--marks", default="")
    r.add_argument("--timeout", type=int, default=int(os.environ.get("KB_BOOT_TIMEOUT", "1800")))
    r.add_argument("--keep", default="")
    a = ap.parse_args()
    missing = [t for t in ("qemu-system-x86_64", "qemu-img", "dnsmasq", "packer", "ssh", "debugfs")
               if not shutil.which(t)]
    if os.geteuid() != 0 or missing:
        print(f"SKIPPED: needs root and {', '.join(missing) or 'nothing else'}", flush=True)
        return 77
    return cmd_build(a) if a.command == "build" else cmd_boot(a)


if __name__ == "__main__":
    sys.exit(main())
