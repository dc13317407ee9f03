#!/usr/bin/env python3
"""Checks the fake Kasm release (tests/fakes/make_release.py, kasm_release/) against what
Kasm's real 1.16.0 installer does (docs/kasm-installer.md §1-§3), with a private dockerd
(docker_world.sh) in a network namespace this test makes, so 443 is free there.

Needs root, dockerd, docker-compose (Debian's 1.29), nsenter, ip, openssl, curl; exits 77
(skipped) without them. Everything it makes (containers, networks, the namespace, dockerd,
temporary directories) is removed at exit, also on failure.
"""
import atexit
import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SHIM_BIN = os.path.join(HERE, "bin")
SKIP = 77

WORLD = {}


def sh(*argv, check=True, env=None, cwd=None, timeout=120):
    r = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"{argv} failed ({r.returncode}): {r.stdout}{r.stderr}")
    return r


def unavailable():
    if os.geteuid() != 0:
        return "needs root"
    for tool in ("dockerd", "docker-compose", "nsenter", "ip", "openssl", "curl", "busybox"):
        if not shutil.which(tool):
            return f"{tool} is not installed"
    if not os.path.exists("/usr/bin/docker"):
        return "Debian's /usr/bin/docker is not installed"
    return None


def teardown_world():
    if WORLD.get("docker_dir"):
        subprocess.run([os.path.join(HERE, "docker_world.sh"), "stop", WORLD["docker_dir"]], capture_output=True)
    if WORLD.get("netns"):
        subprocess.run(["ip", "netns", "del", WORLD["netns"]], capture_output=True)
    if WORLD.get("tmp"):
        shutil.rmtree(WORLD["tmp"], ignore_errors=True)


def setup_world():
    WORLD["tmp"] = tempfile.mkdtemp(prefix="kb-fake-release-")
    ns = f"kbfr{os.getpid()}"
    sh("ip", "netns", "add", ns)
    WORLD["netns"] = ns
    sh("ip", "-n", ns, "link", "set", "lo", "up")
    WORLD["docker_dir"] = os.path.join(WORLD["tmp"], "docker")
    r = sh(os.path.join(HERE, "docker_world.sh"), "start", WORLD["docker_dir"], "--netns", ns, timeout=300)
    info = {}
    for line in r.stdout.splitlines():
        key, _, value = line.partition(" ")
        info.setdefault(key, []).append(value)
    WORLD["socket"] = info["SOCKET"][0]
    WORLD["kasm_images"] = info.get("KASM_IMAGE", [])
    WORLD["releases"] = {}
    for v in ("1.16.0", "1.17.0"):
        out = os.path.join(WORLD["tmp"], f"kasm_release_{v}.tar.gz")
        sh(sys.executable, os.path.join(HERE, "make_release.py"), "--out", out, "--version", v)
        d = os.path.join(WORLD["tmp"], "release-" + v)
        os.makedirs(d)
        sh("tar", "-xzf", out, "-C", d)
        WORLD["releases"][v] = os.path.join(d, "kasm_release")


def docker(*args, check=True):
    return sh("/usr/bin/docker", "-H", "unix://" + WORLD["socket"], *args, check=check)


def reset_docker():
    """No Kasm containers or networks left from an earlier test."""
    ids = docker("ps", "-aq").stdout.split()
    if ids:
        docker("rm", "-f", *ids)
    for net in ("kasm_default_network", "kasm_sidecar_network"):
        docker("network", "rm", net, check=False)


def sha256_of_cert_pem(pem):
    der = subprocess.run(["openssl", "x509", "-outform", "DER"], input=pem.encode(), capture_output=True).stdout
    return hashlib.sha256(der).hexdigest() if der else None


def slurp(path):
    with open(path) as f:
        return f.read()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Case:
    """One machine: a root dir (KASM_FAKE_ROOT) with its docker.sock hard link, a working dir."""

    def __init__(self, test, version="1.16.0", docker=True):
        self.version = version
        self.root = tempfile.mkdtemp(prefix="root-", dir=WORLD["tmp"])
        self.cwd = tempfile.mkdtemp(prefix="cwd-", dir=WORLD["tmp"])
        test.addCleanup(shutil.rmtree, self.root, True)
        test.addCleanup(shutil.rmtree, self.cwd, True)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("KASM_FAKE_", "DOCKER_"))}
        self.env["PATH"] = SHIM_BIN + ":" + self.env.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        self.env["KASM_FAKE_ROOT"] = self.root
        if docker:
            os.makedirs(self.path("/var/run"))
            os.link(WORLD["socket"], self.path("/var/run/docker.sock"))
            self.env["DOCKER_HOST"] = "unix://" + self.path("/var/run/docker.sock")
        else:
            self.env["KASM_FAKE_DOCKER"] = "none"
        self.release = WORLD["releases"][version]

    def path(self, p):
        return self.root + p

    def base(self, p=""):
        return self.path(f"/opt/kasm/{self.version}{p}")

    def install(self, *args, **env):
        e = dict(self.env, **env)
        return subprocess.run(["bash", os.path.join(self.release, "install.sh"), *args], capture_output=True,
                              text=True, env=e, cwd=self.cwd, stdin=subprocess.DEVNULL, timeout=120)

    def script(self, rel):
        return subprocess.run([self.base(rel)], capture_output=True, text=True, env=self.env, cwd=self.cwd,
                              stdin=subprocess.DEVNULL, timeout=120)

    def read(self, p):
        with open(self.path(p)) as f:
            return f.read()

    def logs(self):
        return [f for f in os.listdir(self.cwd) if re.fullmatch(r"kasm_install_\d+\.log", f)]


AGENT_ARGS = ["-e", "-S", "agent", "-p", "10.9.8.7", "-m", "mgr.example.test", "-M", "tok-SECRET-1",
              "-i", "0b6a4c0e-1111-2222-3333-444455556666", "-H"]


def containers():
    out = docker("ps", "-a", "--format", "{{.Names}}").stdout.split()
    return sorted(out)


def wait_for(pred, timeout=15.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def served_cert_sha(port):
    r = subprocess.run(["nsenter", f"--net=/run/netns/{WORLD['netns']}", "openssl", "s_client", "-connect",
                        f"127.0.0.1:{port}", "-servername", "kasm"], capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, timeout=10)
    m = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", r.stdout, re.S)
    return sha256_of_cert_pem(m.group(0)) if m else None


class FakeRelease(unittest.TestCase):
    def setUp(self):
        reset_docker()

    def check_agent_config(self, case, port=443):
        if case.version.startswith(("1.15.", "1.16.")):
            rel = "/conf/app/agent.app.config.yaml"
        else:
            rel = "/conf/app/agent/agent.app.config.yaml"
            self.assertFalse(os.path.exists(case.base("/conf/app/agent.app.config.yaml")))
        text = case.read(f"/opt/kasm/{case.version}{rel}")
        # As install.sh 1.16.0's sed lines write them (docs/kasm-installer.md §2).
        self.assertRegex(text, r"(?m)^agent:\n(  .*\n)+manager:\n")
        self.assertRegex(text, r"(?m)^  public_hostname: 10\.9\.8\.7$")
        self.assertRegex(text, r"(?m)^  hostnames: \['mgr\.example\.test'\]$")
        self.assertRegex(text, r'(?m)^  token: "tok-SECRET-1"$')
        self.assertRegex(text, r"(?m)^  server_id: 0b6a4c0e-1111-2222-3333-444455556666$")
        self.assertRegex(text, r"(?m)^  provider: hardware$")  # template value kept without -r
        self.assertEqual(re.findall(r"(?m)^  public_port: (\d+)$", text), [str(port), str(port)])
        for key in ("port: 4444", "type: host", "heartbeat_path: /manager_api/api/v1/heartbeat",
                    "images_path: /manager_api/api/v1/images", "scheme: https"):
            self.assertIn("  " + key + "\n", text)
        props = case.read(f"/opt/kasm/{case.version}/conf/database/seed_data/default_properties.yaml")
        self.assertIn('value: "tok-SECRET-1"', props)
        agents = case.read(f"/opt/kasm/{case.version}/conf/database/seed_data/default_agents.yaml")
        self.assertIn("0b6a4c0e-1111-2222-3333-444455556666", agents)

    def test_no_start_then_bin_start(self):
        case = Case(self)
        since = str(int(time.time()) - 1)
        r = case.install(*AGENT_ARGS, "-N", "-D")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("Setting Default Manager Token as tok-SECRET-1", r.stdout)
        self.assertIn("Not starting Kasm Services", r.stdout)
        self.assertEqual(case.logs(), [], "the log is removed on success")
        self.assertEqual(containers(), [], "-D creates no container")
        events = docker("events", "--since", since, "--until", str(int(time.time()) + 1), "--filter", "type=image",
                        "--format", "{{.Action}}").stdout.split()
        self.assertNotIn("pull", events)
        nets = docker("network", "ls", "--format", "{{.Name}}").stdout.split()
        self.assertIn("kasm_default_network", nets)
        self.assertIn("kasm_sidecar_network", nets)
        self.check_agent_config(case)
        self.assertEqual(os.readlink(case.path("/opt/kasm/current")), "/opt/kasm/1.16.0")
        self.assertEqual(os.readlink(case.path("/opt/kasm/bin")), "/opt/kasm/current/bin")
        self.assertEqual(case.read("/fake-installer/cwd").strip(), case.cwd)
        self.assertEqual(case.read("/var/run/kasm-sidecar/api_hostname"), "mgr.example.test:443\n")
        self.assertRegex(case.read("/etc/passwd"), r"(?m)^kasm:x:1\d\d\d:1\d\d\d:")
        crt = case.base("/certs/kasm_nginx.crt")
        self.assertEqual(os.stat(crt).st_mode & 0o777, 0o600)
        subj = sh("openssl", "x509", "-in", crt, "-noout", "-subject", "-dates").stdout
        self.assertIn("OU = DoFu", subj)
        self.assertIn("emailAddress = none@none.none", subj)

        r = case.script("/bin/start")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("Skipping Pull of Kasm Service Images", r.stdout)
        self.assertEqual(containers(), ["kasm_agent", "kasm_proxy"])
        for name, image in (("kasm_agent", "kasmweb/agent:1.16.0"), ("kasm_proxy", "kasmweb/proxy:1.16.0")):
            fmt = '{{index .Config.Labels "com.docker.compose.project"}} {{.Config.Image}} {{.HostConfig.RestartPolicy.Name}}'
            self.assertEqual(docker("inspect", "-f", fmt, name).stdout.split(), ["docker", image, "always"])
        mounts = docker("inspect", "-f", "{{range .Mounts}}{{.Source}}={{.Destination}}\n{{end}}",
                        "kasm_proxy").stdout.split()
        self.assertIn(crt + "=/etc/ssl/certs/kasm_nginx.crt", mounts)
        self.assertIn(case.base("/certs/kasm_nginx.key") + "=/etc/ssl/private/kasm_nginx.key", mounts)
        want = sha256_of_cert_pem(slurp(crt))
        got = wait_for(lambda: served_cert_sha(443), what="kasm_proxy serving on 443")
        self.assertEqual(got, want, "the proxy serves the installed certificate")
        wait_for(lambda: docker("inspect", "-f", "{{.State.Running}}", "kasm_agent").stdout.strip() == "true",
                 what="kasm_agent running")
        self.assertEqual(case.read("/fake-installer/start.runs").strip(), "1")

        r = case.script("/bin/stop")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(docker("inspect", "-f", "{{.State.Running}}", "kasm_proxy").stdout.strip(), "false")

    def test_1_17_port_8443_starts_services(self):
        case = Case(self, "1.17.0")
        r = case.install(*AGENT_ARGS, "-N", "--proxy-port", "8443", KASM_FAKE_EXITING="kasm_agent")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.check_agent_config(case, 8443)
        self.assertIn("listen 8443 ssl ;", case.read("/opt/kasm/1.17.0/conf/nginx/orchestrator.conf"))
        for f in ("/docker/docker-compose.yaml", "/docker/.conf/docker-compose-agent.yaml"):
            text = case.read("/opt/kasm/1.17.0" + f)
            self.assertIn('- "8443:8443"', text)
            self.assertNotIn('- "443:443"', text)
        crt = case.base("/certs/kasm_nginx.crt")
        got = wait_for(lambda: served_cert_sha(8443), what="kasm_proxy serving on 8443")
        self.assertEqual(got, sha256_of_cert_pem(slurp(crt)))
        # KASM_FAKE_EXITING: kasm_agent exits at once and restart: always restarts it.
        wait_for(lambda: int(docker("inspect", "-f", "{{.RestartCount}}", "kasm_agent").stdout) >= 1,
                 what="kasm_agent restarted")

    def test_fail_keeps_log_with_token(self):
        case = Case(self)
        r = case.install(*AGENT_ARGS, "-N", "-D", KASM_FAKE_MODE="fail")
        self.assertNotEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"An error has occurred please review the log at \./kasm_install_\d+\.log")
        logs = case.logs()
        self.assertEqual(len(logs), 1)
        with open(os.path.join(case.cwd, logs[0])) as f:
            self.assertIn("Setting Default Manager Token as tok-SECRET-1", f.read())

    def test_dead_manager_fails_after_its_tries(self):
        case = Case(self)
        port = str(free_port())
        r = case.install(*AGENT_ARGS, "-B", "-L", port, "-m", "127.0.0.1", KASM_FAKE_CONNECT_TRIES="3",
                         KASM_FAKE_CONNECT_PAUSE="0.1")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertEqual(len(re.findall(r"healthcheck attempt:\d", r.stdout)), 3)
        self.assertIn("Installation will not continue", r.stdout)
        self.assertEqual(case.logs(), [], "a failed connection test removes the log")
        self.assertFalse(os.path.lexists(case.path("/opt/kasm/current")), "exit before the links")
        self.assertTrue(os.path.exists(case.base("/docker/docker-compose.yaml")))
        self.assertEqual(containers(), [])

    def test_parsing_like_the_real_loop(self):
        case = Case(self, docker=False)
        r = case.install("-eH", "-S", "agent")
        self.assertEqual((r.returncode, "Unknown option -eH" in r.stdout), (1, True), r.stdout)
        r = case.install("-e", "-S", "agent", "-M", "-tok")
        self.assertEqual((r.returncode, "Unknown option -tok" in r.stdout), (1, True), r.stdout)
        r = case.install("-e", "-s", "/nonexistent.tar.gz", "-S", "agent")
        self.assertEqual(r.returncode, 1)
        self.assertIn("FATAL: Service image tarfile does not exist: /nonexistent.tar.gz", r.stdout)
        self.assertEqual(case.logs(), [])
        # a missing -M prompts; EOF on stdin ends it under set -e, log kept
        r = case.install("-e", "-S", "agent", "-p", "a", "-m", "b", "-H", "-N")
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(len(case.logs()), 1)
        for log in case.logs():
            os.unlink(os.path.join(case.cwd, log))
        # long options, no -i (a random uuid), --skip-egress, KASM_FAKE_DOCKER=none
        r = case.install("--accept-eula", "--role", "agent", "--public-hostname", "10.9.8.7", "--manager-hostname",
                         "mgr.example.test", "--manager-token", "tok-SECRET-1", "--no-swap-check",
                         "--skip-connection-test", "--skip-egress", "--agent-provider", "aws")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        text = case.read("/opt/kasm/1.16.0/conf/app/agent.app.config.yaml")
        self.assertRegex(text, r"(?m)^  server_id: [0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
        self.assertRegex(text, r"(?m)^  provider: aws$")
        compose = case.read("/opt/kasm/1.16.0/docker/docker-compose.yaml")
        self.assertNotIn("kasm_sidecar_network", compose)
        self.assertIn("kasm_default_network", compose)
        self.assertFalse(os.path.exists(case.path("/var/run/kasm-sidecar")))
        self.assertTrue(os.path.exists(case.base("/certs/kasm_nginx.key")))
        self.assertEqual(os.readlink(case.path("/opt/kasm/current")), "/opt/kasm/1.16.0")

    def test_docker_host_outside_the_root_is_refused(self):
        case = Case(self)
        r = case.install(*AGENT_ARGS, "-N", "-D", DOCKER_HOST="unix://" + WORLD["socket"])
        self.assertEqual(r.returncode, 92, r.stdout + r.stderr)
        r = case.install(*AGENT_ARGS, "-N", "-D", DOCKER_HOST="tcp://127.0.0.1:2375")
        self.assertEqual(r.returncode, 92)


def main():
    reason = unavailable()
    if reason:
        print(f"SKIP: {reason}")
        return SKIP
    atexit.register(teardown_world)
    try:
        setup_world()
    except Exception as e:  # noqa: BLE001 - the machine cannot host it
        print(f"SKIP: the private dockerd did not start: {e}")
        return SKIP
    started = time.monotonic()
    prog = unittest.main(exit=False, verbosity=2)
    print(f"test_fake_release: {time.monotonic() - started:.1f} s of tests")
    return 0 if prog.result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
