#!/usr/bin/env python3
"""e2e_baked: the pre-baked fast path in the fake AWS world, for the Kasm version the
world serves (KB_E2E_KASM_VERSION). `kasm-bootstrap prebake` bakes an instance root with
the fake release (install.sh -D -N: installed, no container created, as Kasm's real
installer), then `run` with fresh registration values takes the fast path: the
registration keys written, a new key pair unlike the baked one served by nginx, the
containers created by compose (the release's bin/start), health green, and no request to
the release server. A bake that does not match the configured release falls back to the
full install.

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
FAST_STEPS = ["preflight", "detect-address", "ensure-swap", "ensure-docker", "check-manager", "configure-agent",
              "install-certificates", "start-services", "block-metadata", "verify-health"]
FULL_STEPS = ["preflight", "detect-address", "ensure-swap", "check-manager", "fetch-release", "wait-package-locks",
              "install-agent", "configure-agent", "install-certificates", "start-services", "block-metadata",
              "verify-health"]
YAML = world.AGENT_CONFIG
# Every key configure-agent writes, and its value for the world's case.
REGISTRATION = {("agent", "server_id"): SERVER_ID, ("agent", "public_hostname"): INSTANCE_IP,
                ("agent", "provider"): "aws", ("agent", "public_port"): 443, ("manager", "hostnames"): [AWS_IP],
                ("manager", "token"): TOKEN, ("manager", "public_port"): 443}


def prebake(case, *extra):
    """`kasm-bootstrap prebake` in the instance namespace, with only the image's keys."""
    cfg = os.path.join(case.dir, "bake-config.json")
    with open(cfg, "w") as f:
        json.dump({k: case.config[k] for k in ("release_url", "release_sha256", "ca_bundle", "swap_size",
                                              "download_timeout_seconds", "lock_timeout_seconds",
                                              "install_timeout_seconds")}, f)
    env = case.script_env()
    cmd = ["ip", "netns", "exec", W.instance, W.binary, "prebake", "--root", case.root, "--config", cfg] + list(extra)
    start = time.monotonic()
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, timeout=240)
    result = world.Result(r.returncode, r.stdout, r.stderr, [], time.monotonic() - start)
    result.strays = case.kill_strays()
    return result


class FastPath(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.case = c = W.new_case("baked")
        cls.baked = prebake(c)
        cls.manifest = json.loads(c.read("/etc/kasm-bootstrap/bake.json") or "{}")
        cls.baked_yaml = c.agent_config() or {}
        cls.baked_cert = world.fingerprint(c.path("/opt/kasm/current/certs/kasm_nginx.crt"))
        cls.states_after_bake = (W.container_state("kasm_agent"), W.container_state("kasm_proxy"))
        cls.start_runs_after_bake = int(c.read("/fake-installer/start.runs") or "0")
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
        self.assertIn("-N", argv)
        self.assertEqual(argv[argv.index("-i") + 1], "00000000-0000-0000-0000-000000000000")
        # install.sh -D creates no container (Kasm's real installer; docs/kasm-installer.md §2).
        self.assertEqual(self.states_after_bake, (None, None))
        self.assertEqual(self.start_runs_after_bake, 0, "bin/start did not run at bake time")
        self.assertEqual(self.manifest["release_sha256"], W.release_sha256)
        self.assertEqual(self.manifest["release_version"], world.VERSION)
        self.assertTrue(self.manifest["nginx_key_removed"])

    def test_run_takes_the_fast_path(self):
        self.assertEqual(self.result.rc, 0, self.result)
        self.assertEqual([s["id"] for s in self.status["steps"]], FAST_STEPS)
        for s in self.status["steps"]:
            self.assertIn(s["outcome"], ("done", "satisfied"), s)
        self.assertIn("fast path: baked release " + world.VERSION, self.case.log())

    def test_exactly_the_registration_keys_rewritten(self):
        import yaml
        after = yaml.safe_load(self.yaml_text)
        expected = json.loads(json.dumps(self.baked_yaml))
        for (section, key), value in REGISTRATION.items():
            expected[section][key] = value
        self.assertEqual(after, expected)
        self.assertNotEqual(self.baked_yaml["manager"]["token"], TOKEN)
        st = os.stat(self.case.path(YAML))
        self.assertEqual(st.st_mode & 0o777, 0o600)
        self.assertEqual(self.case.read("/var/run/kasm-sidecar/api_hostname"), AWS_IP + ":443\n")

    def test_new_key_pair_unlike_the_baked_one_is_served(self):
        crt = self.case.path("/opt/kasm/current/certs/kasm_nginx.crt")
        key = self.case.path("/opt/kasm/current/certs/kasm_nginx.key")
        now = world.fingerprint(crt)
        self.assertNotEqual(now, self.baked_cert)
        self.assertEqual(self.served, now, "nginx in kasm_proxy serves this instance's pair")
        st = os.stat(key)
        self.assertEqual(st.st_mode & 0o777, 0o600)
        kasm = [l.split(":") for l in self.case.read("/etc/passwd").splitlines() if l.startswith("kasm:")][0]
        self.assertEqual((st.st_uid, st.st_gid), (int(kasm[2]), int(kasm[3])))

    def test_services_started_by_compose_and_health_green(self):
        self.assertEqual(W.container_state("kasm_agent"), "running")
        self.assertEqual(W.container_state("kasm_proxy"), "running")
        for name in ("kasm_agent", "kasm_proxy"):
            labels = W.docker("inspect", "-f", "{{json .Config.Labels}}", name).stdout
            self.assertEqual(json.loads(labels).get("com.docker.compose.project"), "docker", labels)
            image = W.docker("inspect", "-f", "{{.Config.Image}}", name).stdout.strip()
            self.assertTrue(image.endswith(":" + world.VERSION), image)
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
        self.assertEqual(W.container_state("kasm_proxy"), "running")
        self.assertEqual(W.release_requests() - before, 0, "the release cached by prebake is reused")
        self.assertEqual(c.leaks(r), [])


if __name__ == "__main__":
    world.run_suite(__name__)
