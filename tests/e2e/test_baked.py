#!/usr/bin/env python3
"""e2e_baked: the pre-baked fast path in the fake AWS world. `kasm-bootstrap prebake`
bakes an instance root with the fake release (install.sh -D: containers created, not
started), then `run` with fresh registration values takes the fast path: the five YAML
keys rewritten, a new key pair unlike the baked one served by nginx, the services
started through the Docker API, health green, and no request to the release server.
A bake that does not match the configured release falls back to the full install.

  test_baked.py --binary PATH [unittest options]     exit 77 (skip) when the world cannot exist
"""
import json
import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import world  # noqa: E402
from world import AWS_IP, INSTANCE_IP, SERVER_ID, TOKEN  # noqa: E402

W = None
FAST_STEPS = ["preflight", "detect-address", "ensure-swap", "ensure-docker", "configure-agent",
              "install-certificates", "start-services", "block-metadata", "verify-health"]
FULL_STEPS = ["preflight", "detect-address", "ensure-swap", "fetch-release", "wait-package-locks", "install-agent",
              "install-certificates", "block-metadata", "verify-health"]
YAML = "/opt/kasm/current/conf/app/agent.app.config.yaml"


def prebake(case, *extra):
    """`kasm-bootstrap prebake` in the instance namespace, with only the image's keys."""
    cfg = os.path.join(case.dir, "bake-config.json")
    with open(cfg, "w") as f:
        json.dump({k: case.config[k] for k in ("release_url", "release_sha256", "ca_bundle", "swap_size",
                                              "download_timeout_seconds", "lock_timeout_seconds",
                                              "install_timeout_seconds")}, f)
    env = dict(os.environ)
    env.update({"KASM_FAKE_ROOT": case.root, "KASM_FAKE_DOCKER_HOST": "unix://" + W.docker_socket,
                "KASM_FAKE_IMAGE": W.docker_image})
    cmd = ["ip", "netns", "exec", W.instance, W.binary, "prebake", "--root", case.root, "--config", cfg] + list(extra)
    start = time.monotonic()
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, timeout=240)
    result = world.Result(r.returncode, r.stdout, r.stderr, [], time.monotonic() - start)
    result.strays = case.kill_strays()
    return result


def flat_yaml(text):
    """The two-level block YAML of agent.app.config.yaml as {"agent.server_id": value,
    "manager.hostnames": [..]} (the standard library has no YAML parser; this reads the
    block style both the fake installer and yaml-cpp's emitter write)."""
    out, section, key = {}, None, None

    def scalar(v):
        v = v.strip()
        if len(v) >= 2 and v[0] == v[-1] and v[0] in "'\"":
            v = v[1:-1]
        return v

    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        indent = len(line) - len(line.lstrip())
        body = line.strip()
        if indent == 0:
            section, key = body.rstrip(":"), None
        elif body.startswith("- "):
            out.setdefault(f"{section}.{key}", []).append(scalar(body[2:]))
        else:
            k, _, v = body.partition(":")
            key = k.strip()
            if v.strip():
                out[f"{section}.{key}"] = scalar(v)
            else:
                out[f"{section}.{key}"] = []
    return out


class FastPath(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.case = c = W.new_case("baked")
        cls.baked = prebake(c)
        cls.manifest = json.loads(c.read("/etc/kasm-bootstrap/bake.json") or "{}")
        cls.baked_yaml = flat_yaml(c.read(YAML) or "")
        cls.baked_cert = world.fingerprint(c.path("/opt/kasm/current/certs/kasm_nginx.crt"))
        cls.states_after_bake = (W.container_state("kasm_agent"), W.container_state("kasm_proxy"))
        cls.requests_before = W.release_requests()
        # No configured pair: the instance must make its own, never serve the baked one.
        del c.config["nginx_cert"]
        del c.config["nginx_key"]
        cls.result = c.run()
        cls.requests_after = W.release_requests()
        cls.status = c.status()
        cls.served = W.served_certificate_fingerprint()
        cls.yaml_text = c.read(YAML)
        cls.proxy_id = W.docker("inspect", "-f", "{{.Id}}", "kasm_proxy").stdout.strip()
        cls.rerun = c.run()

    def test_prebake_installed_without_starting(self):
        self.assertEqual(self.baked.rc, 0, self.baked)
        argv = self.case.installer_argv()
        self.assertIn("-D", argv)
        self.assertEqual(argv[argv.index("-i") + 1], "00000000-0000-0000-0000-000000000000")
        self.assertEqual(self.states_after_bake, ("created", "created"))
        self.assertEqual(self.manifest["release_sha256"], W.release_sha256)
        self.assertEqual(self.manifest["release_version"], world.VERSION)
        self.assertTrue(self.manifest["nginx_key_removed"])

    def test_run_takes_the_fast_path(self):
        self.assertEqual(self.result.rc, 0, self.result)
        self.assertEqual([s["id"] for s in self.status["steps"]], FAST_STEPS)
        for s in self.status["steps"]:
            self.assertIn(s["outcome"], ("done", "satisfied"), s)
        self.assertIn("fast path: baked release " + world.VERSION, self.case.log())

    def test_exactly_the_five_keys_rewritten(self):
        after = flat_yaml(self.yaml_text)
        expected = dict(self.baked_yaml)
        expected.update({"agent.server_id": SERVER_ID, "agent.public_hostname": INSTANCE_IP, "agent.provider": "aws",
                         "manager.hostnames": [AWS_IP], "manager.token": TOKEN})
        self.assertEqual(after, expected)
        self.assertNotEqual(self.baked_yaml["manager.token"], TOKEN)

    def test_new_key_pair_unlike_the_baked_one_is_served(self):
        crt = self.case.path("/opt/kasm/current/certs/kasm_nginx.crt")
        key = self.case.path("/opt/kasm/current/certs/kasm_nginx.key")
        now = world.fingerprint(crt)
        self.assertNotEqual(now, self.baked_cert)
        self.assertEqual(self.served, now, "nginx in kasm_proxy serves this instance's pair")
        st = os.stat(key)
        self.assertEqual(st.st_mode & 0o777, 0o600)
        self.assertEqual((st.st_uid, st.st_gid), (1000, 1000))

    def test_services_started_and_health_green(self):
        self.assertEqual(W.container_state("kasm_agent"), "running")
        self.assertEqual(W.container_state("kasm_proxy"), "running")
        health = self.status["steps"][-1]["outputs"]
        for check in ("kasm_agent", "kasm_proxy", "manager"):
            self.assertEqual(health.get("health." + check), "ok", health)
        self.assertIn("READY=1", "\n".join(self.result.notify).split("\n"))

    def test_no_download_no_installer_no_leaks(self):
        self.assertEqual(self.requests_after, self.requests_before, "the release server saw no request")
        self.assertEqual(self.case.installer_runs(), 1, "only prebake ran install.sh")
        self.assertEqual(self.case.leaks(self.result), [])
        self.assertEqual(self.case.temp_files(), [])

    def test_rerun_is_a_noop(self):
        self.assertEqual(self.rerun.rc, 0, self.rerun)
        self.assertEqual(self.case.read(YAML), self.yaml_text)
        self.assertEqual(W.docker("inspect", "-f", "{{.Id}}", "kasm_proxy").stdout.strip(), self.proxy_id)
        self.assertEqual(W.release_requests(), self.requests_after)
        self.assertEqual(self.case.leaks(self.rerun), [])


class Fallback(unittest.TestCase):
    def test_bake_of_another_release_falls_back_to_the_full_install(self):
        c = W.new_case("bake-mismatch")
        self.assertEqual(prebake(c).rc, 0)
        manifest = json.loads(c.read("/etc/kasm-bootstrap/bake.json"))
        manifest["release_sha256"] = "0" * 64
        c.write("/etc/kasm-bootstrap/bake.json", json.dumps(manifest))
        before = W.release_requests()
        r = c.run()
        self.assertEqual(r.rc, 0, r)
        self.assertIn("falling back to the full install", r.stderr)
        self.assertEqual([s["id"] for s in c.status()["steps"]], FULL_STEPS)
        self.assertEqual(c.installer_runs(), 2)
        self.assertEqual(W.release_requests() - before, 0, "the release cached by prebake is reused")
        self.assertEqual(c.leaks(r), [])


if __name__ == "__main__":
    world.run_suite(__name__)
