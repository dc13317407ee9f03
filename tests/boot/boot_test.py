#!/usr/bin/env python3
"""Boot test: a real Debian 12 VM (QEMU TCG) becomes a Kasm agent from EC2-style user-data.

GROUNDWORK for issue 16, not yet run by CI (scripts/test.sh has no stage for it): the
image comes from provision.sh in a chroot, not from Packer's qemu builder; there is no
baked image, no reboot check and no bench yet (docs/boot.md, "What remains for issue 16").

    tests/boot/boot_test.py [--timeout SECONDS] [--keep DIR]

The image is tests/boot/make-base-image.sh's "plain" image (our .deb installed and the
image defaults written by packer/scripts/provision.sh, cached); this test never changes it:
the VM boots a copy-on-write overlay (qemu-img create -f qcow2 -b plain.raw -F raw). The
fake AWS world is tests/e2e/world.py's, with one namespace instead of two:

    netns "aws" (kbe2e<pid>a)
      tap0 10.77.0.1/24 + 169.254.169.254/32  <- the VM's virtio NIC (QEMU runs in the netns)
      dnsmasq on tap0: DHCP 10.77.0.2 for the VM's MAC, router 10.77.0.1, no DNS
      169.254.169.254:80  tests/boot/ec2_metadata.py in front of tests/fakes/imds.py (IMDSv2
                          required): meta-data, the user-data, the identity document
      10.77.0.1:8443      HTTPS release server (tests/fakes/release_server.py) serving the
                          release whose SHA-256 the image defaults name
      10.77.0.1:443       fake Kasm manager (tests/fakes/fake_manager_health.py)
    a second disk (/dev/vdb, ext4 "kb-boot-test", made per boot): the world's test CA

The user-data is cloud-init/kasm-1.17-1.18/startup-script.sh rendered exactly as Kasm
renders it (tests/release/test_templates.py: render(), str.format with Kasm 1.18's six
variables). The DMI says EC2 (-smbios type=1: manufacturer, and a uuid and serial starting
"ec2", which cloud-init's identify_aws requires), so cloud-init's Ec2 datasource does its
ephemeral DHCP in init-local, takes an IMDSv2 token, reads the user-data, and cloud-final
runs it; the script starts kasm-bootstrap.service, whose summary line goes to the serial
console (StandardOutput=journal+console).

Asserts, from outside the VM: the console shows "kasm-bootstrap <version>: SUCCESS" within
the timeout; the token is not on the console; after a clean power-off, not in the journal,
/var/log/cloud-init-output.log, the installer's recorded argv (read from the overlay with
qemu-img convert + debugfs, never mounting it).

Exit 0 pass, 1 fail, 77 skip (not root, no QEMU). Removes the VM, namespace, servers and
overlay on success, failure and Ctrl-C (World.stop, also at exit); --keep DIR copies the
console log, server logs and the guest's logs there first. Timings: docs/boot.md.
"""
import argparse
import hashlib
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
MAC = "0e:12:34:56:78:9a"  # imds.py's default --mac: the NIC's, so the metadata's interface matches
# An EC2 instance's DMI (cloud-init 22.4 identify_aws): product_uuid starts with "ec2" and the
# serial number equals it.
EC2_UUID = "ec2b0071-5e5a-1b2c-3d4e-5f60718293a4"
RELEASE_PORT = "8443"  # make-base-image.sh's release_url
SUMMARY = re.compile(r"kasm-bootstrap (\S+): (SUCCESS|FAILED)\b[^\r\n]*")  # src/report/console_observer.cpp
TEMPLATE = Template("aws", "kasm-1.17-1.18", "bash")


def log(msg):
    print(f"boot-test [{time.strftime('%H:%M:%S')}]: {msg}", flush=True)


class BootWorld(world.World):
    """world.World with the VM instead of the instance namespace: one namespace ("aws"),
    its tap device the VM's wire; the same servers, PKI and clean-up."""

    def __init__(self, plain_dir):
        self.plain = plain_dir
        # The world runs no binary on this host: the one under test is inside the image.
        super().__init__(os.path.join(plain_dir, "plain.raw"))
        self.procs = []
        self.user_data = None

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
        self.release_file = os.path.join(self.plain, "release.tar.gz")
        with open(self.release_file, "rb") as f:
            self.release_sha256 = hashlib.sha256(f.read()).hexdigest()

    def start_docker(self):
        pass  # the agent's containers run in the VM's own dockerd

    def restart_imds(self, *args):
        imds = self._restart("imds", self.aws, "imds.py",
                             ["--local-ipv4", GUEST_IP, "--mac", MAC, *args, "--bind", "127.0.0.1"])
        ud = os.path.join(self.dir, "user-data")
        with open(ud, "w") as f:
            f.write(self.user_data or "")
        return self._restart("ec2md", self.aws, os.path.join("..", "boot", "ec2_metadata.py"),
                             ["--upstream", f"127.0.0.1:{imds.port}", "--user-data", ud, "--mac", MAC,
                              "--local-ipv4", GUEST_IP, "--bind", world.IMDS_IP, "--port", "80"])

    def restart_release(self, *args, file=None):
        return super().restart_release("--port", RELEASE_PORT, *args, file=file)

    def spawn(self, name, cmd):
        """A process of this world (killed by stop(), and by sweep_dead_worlds() through the
        KBE2E_WORLD marker if this process dies first)."""
        out = open(os.path.join(self.dir, name + ".log"), "w")
        env = dict(os.environ, KBE2E_WORLD=self.dir)
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
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


def make_images():
    r = subprocess.run([os.path.join(HERE, "make-base-image.sh")], stdout=subprocess.PIPE, text=True)
    if r.returncode == 77:
        sys.exit(77)
    if r.returncode != 0:
        raise RuntimeError("make-base-image.sh failed")
    dirs = dict(line.split(" ", 1) for line in r.stdout.splitlines() if " " in line)
    return dirs["PLAIN"]


def fixture_disk(w):
    """/dev/vdb: an ext4 file system labelled kb-boot-test holding the world's CA."""
    src = os.path.join(w.dir, "fixture")
    os.makedirs(src)
    shutil.copy(w.ca_cert, os.path.join(src, "ca.pem"))
    img = os.path.join(w.dir, "fixture.raw")
    with open(img, "wb") as f:
        f.truncate(8 << 20)
    world.sh("mkfs.ext4", "-q", "-F", "-L", "kb-boot-test", "-d", src, img)
    return img


def qemu_command(w, overlay, fixture, console, monitor):
    return ["ip", "netns", "exec", w.aws, "qemu-system-x86_64", "-accel", "tcg", "-m", "3072", "-smp", "2",
            "-kernel", os.path.join(w.plain, "vmlinuz"), "-initrd", os.path.join(w.plain, "initrd.img"),
            "-append", "root=/dev/vda rw console=ttyS0",
            "-drive", f"file={overlay},format=qcow2,if=virtio",
            "-drive", f"file={fixture},format=raw,if=virtio,readonly=on",
            "-netdev", "tap,id=n0,ifname=tap0,script=no,downscript=no",
            "-device", f"virtio-net-pci,netdev=n0,mac={MAC}",
            # Entropy from the host, so nothing in an early TCG boot waits for the pool.
            "-device", "virtio-rng-pci",
            "-smbios", f"type=1,manufacturer=Amazon EC2,product=t3.medium,uuid={EC2_UUID},serial={EC2_UUID}",
            "-serial", f"file:{console}", "-monitor", f"unix:{monitor},server,nowait",
            "-display", "none", "-no-reboot"]


def monitor_command(path, command):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect(path)
    s.sendall(command.encode() + b"\n")
    time.sleep(0.5)
    s.close()


def guest_files(w, overlay, out_dir, paths):
    """Copies guest paths out of the powered-off VM's disk (overlay over the image):
    qemu-img convert to a raw file, then debugfs rdump; never mounted."""
    raw = os.path.join(w.dir, "after.raw")
    world.sh("qemu-img", "convert", "-O", "raw", overlay, raw, timeout=900)
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
    """The guest's journal files as text (journalctl --directory, every field's message),
    or None when there are none: journald may compress a long field, so the raw bytes are
    not enough to say a value is absent."""
    if not os.path.isdir(directory) or not shutil.which("journalctl"):
        return None
    r = subprocess.run(["journalctl", "--directory", directory, "-o", "export", "--no-pager"],
                       capture_output=True, timeout=120)
    text = r.stdout.decode(errors="replace")
    return text if r.returncode == 0 and text else None


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--timeout", type=int, default=int(os.environ.get("KB_BOOT_TIMEOUT", "1800")))
    ap.add_argument("--keep", default=os.environ.get("KB_BOOT_KEEP", ""))
    a = ap.parse_args()
    if os.geteuid() != 0 or not shutil.which("qemu-system-x86_64") or not shutil.which("dnsmasq"):
        print("SKIPPED: needs root, qemu-system-x86_64, qemu-img and dnsmasq", flush=True)
        return 77
    t0 = time.monotonic()
    plain = make_images()
    log(f"images ready in {time.monotonic() - t0:.0f} s: {plain}")
    w = BootWorld(plain)
    values = dict(realistic_values(TEMPLATE), manager_token=world.TOKEN, server_id=world.SERVER_ID,
                  upstream_auth_address=HOST_IP, server_hostname="kasm-agent-boot", server_external_fqdn="None",
                  provider_name="aws")
    w.user_data = render(TEMPLATE, values)
    failures = []
    try:
        w.start()
        leases = os.path.join(w.dir, "dnsmasq.leases")
        w.spawn("dnsmasq", ["ip", "netns", "exec", w.aws, "dnsmasq", "--no-daemon", "--conf-file=/dev/null",
                            "--port=0", "--interface=tap0", "--bind-interfaces", "--user=root",
                            f"--dhcp-range={GUEST_IP},{GUEST_IP},255.255.255.0,12h",
                            f"--dhcp-host={MAC},{GUEST_IP}", f"--dhcp-option=option:router,{HOST_IP}",
                            f"--dhcp-leasefile={leases}", "--log-dhcp"])
        overlay = os.path.join(w.dir, "overlay.qcow2")
        world.sh("qemu-img", "create", "-q", "-f", "qcow2", "-b", os.path.join(plain, "plain.raw"), "-F", "raw",
                 overlay)
        fixture = fixture_disk(w)
        console = os.path.join(w.dir, "console.log")
        monitor = os.path.join(w.dir, "monitor.sock")
        boot0 = time.monotonic()
        vm = w.spawn("qemu", qemu_command(w, overlay, fixture, console, monitor))
        log(f"VM started (console {console})")
        marks = {}
        summary = None
        md_log = w.servers["ec2md"].log_path
        while time.monotonic() - boot0 < a.timeout:
            text = read(console)
            now = time.monotonic() - boot0
            for name, pattern in (("kernel", "Linux version"), ("systemd", r"systemd\[1\]|Welcome to"),
                                  ("dhcp", None), ("user-data", None), ("cloud-final", "Cloud-init v. .* running 'modules:final'")):
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
                summary = m.group(0).strip()
                marks["summary"] = now
                log(f"+{now:.0f} s: {summary}")
                break
            if vm.poll() is not None:
                failures.append(f"QEMU exited ({vm.returncode}) before the summary line: "
                                f"{read(os.path.join(w.dir, 'qemu.log'))[-1500:]}")
                break
            time.sleep(2)
        console_text = read(console)
        if summary is None and not failures:
            failures.append(f"no summary line on the console within {a.timeout} s")
        elif summary and ": SUCCESS" not in summary:
            failures.append(f"the run did not succeed: {summary}")
        if world.TOKEN in console_text:
            failures.append("the manager token is on the serial console")
        if vm.poll() is None:
            # A clean power-off (ACPI power button: systemd-logind), so the guest's files are
            # on the disk; then read them from outside.
            monitor_command(monitor, "system_powerdown")
            try:
                vm.wait(300)
                marks["powered-off"] = time.monotonic() - boot0
                log(f"+{marks['powered-off']:.0f} s: powered off")
            except subprocess.TimeoutExpired:
                failures.append("the VM did not power off within 300 s")
        if vm.poll() is not None:
            out = os.path.join(w.dir, "guest")
            guest_files(w, overlay, out, ["/var/log", "/fake-installer", "/var/lib/kasm-bootstrap"])
            if not os.path.exists(os.path.join(out, "log", "cloud-init-output.log")):
                failures.append("no /var/log/cloud-init-output.log in the guest")
            if summary and ": SUCCESS" in summary and not os.path.exists(os.path.join(out, "fake-installer", "argv")):
                failures.append("no recorded installer argv (/fake-installer/argv) in the guest")
            output = read(os.path.join(out, "log", "cloud-init-output.log"))
            if "started kasm-bootstrap.service" not in output:
                failures.append("cloud-init-output.log does not show the startup script starting the unit")
            journal = journal_text(os.path.join(out, "log", "journal"))
            if journal is None:
                failures.append("no readable persistent journal in the guest's /var/log/journal")
            else:
                if world.TOKEN in journal:
                    failures.append("the manager token is in the guest's journal")
                if summary and ": SUCCESS" in summary and "kasm-bootstrap: success" not in journal:
                    failures.append("the journal has no 'kasm-bootstrap: success' line")
            hits = grep_tree(out, world.TOKEN)
            # The token's one legitimate place: the agent configuration (never in these logs),
            # and the user-data cloud-init keeps (/var/lib/cloud, not copied).
            if hits:
                failures.append(f"the manager token is in the guest's {hits}")
        # What the guest did, seen by the world's servers.
        if summary and ": SUCCESS" in summary:
            for server, line in (("imds", "GET /latest/meta-data/local-ipv4 token=yes -> 200"),
                                 ("ec2md", "/user-data -> 200"), ("manager", "GET /api/__healthcheck -> 200")):
                if line not in read(w.servers[server].log_path):
                    failures.append(f"the {server} server never answered '{line}'")
            if "status=200" not in read(w.servers["release"].log_path):
                failures.append("the release server never served the release")
        log("timings: " + ", ".join(f"{k} +{v:.0f} s" for k, v in marks.items()))
        if a.keep:
            os.makedirs(a.keep, exist_ok=True)
            for f in os.listdir(w.dir):
                src = os.path.join(w.dir, f)
                if f.endswith((".log", ".leases")) or f in ("user-data",):
                    shutil.copy(src, a.keep)
            if os.path.isdir(os.path.join(w.dir, "guest")):
                shutil.copytree(os.path.join(w.dir, "guest"), os.path.join(a.keep, "guest"), dirs_exist_ok=True,
                                symlinks=True)
            log(f"kept logs in {a.keep}")
        if failures:
            print("--- console (last 60 lines) ---\n" + "\n".join(console_text.splitlines()[-60:]), flush=True)
    finally:
        w.stop()
    for f in failures:
        print("FAILED: " + f, flush=True)
    if not failures:
        print(f"PASSED: {summary}", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
