#!/usr/bin/env python3
"""e2e_run: a full `kasm-bootstrap run` in the fake AWS world, for the Kasm version the
world serves (KB_E2E_KASM_VERSION), registers the agent: install.sh with placeholders and
-D -N, the registration written into the agent configuration, bin/start (compose) creating
the containers; the token on no command line and in no environment of the install's or the
start's process trees; a re-run is a no-op; a run killed midway (SIGKILL, SIGTERM) resumes
without a second download.

  test_run.py --binary PATH [unittest options]     exit 77 (skip) when the world cannot exist
"""
import json
import os
import shlex
import subprocess
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import world  # noqa: E402
from world import AWS_IP, INSTANCE_IP, SERVER_ID, TOKEN  # noqa: E402

W = None
STEPS = ["preflight", "detect-address", "ensure-swap", "check-manager", "fetch-release", "wait-package-locks",
         "install-agent", "configure-agent", "install-certificates", "start-services", "block-metadata",
         "verify-health"]
METADATA_URL = f"http://{world.IMDS_IP}/latest/meta-data/local-ipv4"




def installer_sleeping(case):
    return os.path.exists(case.path("/fake-installer/sleep-child.pid"))


class HappyPath(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.case = W.new_case("happy")
        cls.requests_before = W.release_requests()
        cls.since = time.time()
        cls.result = cls.case.run()
        cls.requests_after_first = W.release_requests()
        cls.status_first = cls.case.status()
        cls.execs = W.execs(cls.since)
        cls.served = W.served_certificate_fingerprint()
        cls.proxy_id = W.docker("inspect", "-f", "{{.Id}}", "kasm_proxy").stdout.strip()
        cls.rerun = cls.case.run()
        cls.containers = W.containers_report() if cls.result.rc != 0 or cls.rerun.rc != 0 else ""

    def test_run_succeeds(self):
        self.assertEqual(self.result.rc, 0, f"{self.result}\n--containers--\n{self.containers}")

    def test_installer_gets_placeholders_and_no_token(self):
        argv = self.case.installer_argv()
        self.assertEqual(argv[:10], ["-e", "-S", "agent", "-p", "placeholder.kasm-bootstrap.invalid", "-m",
                                     "placeholder-manager.kasm-bootstrap.invalid", "-i",
                                     "00000000-0000-0000-0000-000000000000", "-M"])
        self.assertTrue(argv[10].startswith("placeholder-"), argv)
        self.assertEqual(argv[11:], ["-H", "-D", "-N", "-L", "443"])
        for record in ("argv", "env", "start.argv", "start.env"):
            text = self.case.read("/fake-installer/" + record)
            self.assertIsNotNone(text, record)
            self.assertNotIn(TOKEN, text, record)
        env = self.case.read("/fake-installer/env")
        self.assertIn("DEBIAN_FRONTEND=noninteractive", env)
        self.assertIn("DPkg::Lock::Timeout", self.case.read("/fake-installer/apt-config") or "")
        # Both scripts ran in the private working directory, which holds nothing afterwards.
        work = "/var/lib/kasm-bootstrap/work"
        self.assertEqual((self.case.read("/fake-installer/cwd") or "").strip(), self.case.path(work))
        self.assertEqual((self.case.read("/fake-installer/start.cwd") or "").strip(), self.case.path(work))
        self.assertEqual(os.stat(self.case.path(work)).st_mode & 0o777, 0o700)
        self.assertEqual(os.listdir(self.case.path(work)), [])

    def test_agent_config_holds_every_registration_key(self):
        config = self.case.agent_config()
        self.assertIsNotNone(config)
        self.assertEqual(config["agent"]["server_id"], SERVER_ID)
        self.assertEqual(config["agent"]["public_hostname"], INSTANCE_IP)
        self.assertEqual(config["agent"]["provider"], "aws")
        self.assertEqual(config["agent"]["public_port"], 443)
        self.assertEqual(config["manager"]["hostnames"], [AWS_IP])
        self.assertEqual(config["manager"]["token"], TOKEN)
        self.assertEqual(config["manager"]["public_port"], 443)
        self.assertEqual(os.stat(self.case.path(world.AGENT_CONFIG)).st_mode & 0o777, 0o600)
        self.assertEqual(self.case.read("/var/run/kasm-sidecar/api_hostname"), AWS_IP + ":443\n")

    def test_no_file_but_the_agent_config_holds_the_token(self):
        config = os.path.realpath(self.case.path(world.AGENT_CONFIG))
        holders = []
        for d, _, files in os.walk(self.case.root):
            for f in files:
                p = os.path.join(d, f)
                if os.path.islink(p) or not os.path.isfile(p) or os.path.realpath(p) == config:
                    continue
                with open(p, "rb") as fh:
                    if TOKEN.encode() in fh.read():
                        holders.append(p)
        self.assertEqual(holders, [])

    def test_containers_created_by_compose_from_the_release(self):
        for name in ("kasm_agent", "kasm_proxy"):
            labels = json.loads(W.docker("inspect", "-f", "{{json .Config.Labels}}", name).stdout)
            self.assertEqual(labels.get("com.docker.compose.project"), "docker", labels)
            image = W.docker("inspect", "-f", "{{.Config.Image}}", name).stdout.strip()
            self.assertEqual(image, ("kasmweb/agent:" if name == "kasm_agent" else "kasmweb/proxy:") + world.VERSION)
        self.assertEqual((self.case.read("/fake-installer/start.runs") or "").strip(), "1")

    def test_configured_certificate_installed_and_served(self):
        crt = self.case.path("/opt/kasm/current/certs/kasm_nginx.crt")
        key = self.case.path("/opt/kasm/current/certs/kasm_nginx.key")
        self.assertEqual(world.fingerprint(crt), W.nginx_fingerprint)
        self.assertEqual(world.slurp(key), W.nginx_key_pem)
        st = os.stat(key)
        self.assertEqual(st.st_mode & 0o777, 0o600)
        kasm = [l.split(":") for l in self.case.read("/etc/passwd").splitlines() if l.startswith("kasm:")][0]
        self.assertEqual((st.st_uid, st.st_gid), (int(kasm[2]), int(kasm[3])), "owner is the installer's kasm user")
        self.assertEqual(self.served, W.nginx_fingerprint, "nginx in kasm_proxy serves the configured pair")

    def test_the_pair_was_in_place_before_the_proxy_existed(self):
        # install-certificates runs before start-services: nothing to reload.
        self.assertNotIn("nginx -s reload", self.execs)

    def test_health_green_and_status_complete(self):
        st = self.status_first
        self.assertEqual(st["result"], "success")
        self.assertEqual(st["exit_code"], 0)
        self.assertEqual([s["id"] for s in st["steps"]], STEPS)
        for s in st["steps"]:
            self.assertIn(s["outcome"], ("done", "satisfied"), s)
            self.assertIsInstance(s["duration_ms"], (int, float), s)
        health = st["steps"][-1]["outputs"]
        for check in ("kasm_agent", "kasm_proxy", "manager"):
            self.assertEqual(health.get("health." + check), "ok", health)
        self.assertEqual(W.container_state("kasm_agent"), "running")
        self.assertEqual(W.container_state("kasm_proxy"), "running")

    def test_health_unit_and_status_work_after_the_user_data_config_is_gone(self):
        """The health timer's unit runs `health` with no --config, and the firewall unit
        `protect-metadata`; on an image the user-data's config.d is in /run, gone after a
        reboot. The unit's ExecStart word for word (plus --root) must still find the
        manager: a successful run left its configuration, secrets left out."""
        unit = os.path.join(world.REPO, "systemd", "kasm-bootstrap-health.service")
        exec_start = [l.split("=", 1)[1] for l in world.slurp(unit).splitlines() if l.startswith("ExecStart=")]
        self.assertEqual(len(exec_start), 1, exec_start)
        argv = shlex.split(exec_start[0])
        self.assertEqual(argv[0], "/usr/bin/kasm-bootstrap")
        effective = self.case.path("/etc/kasm-bootstrap/effective.json")
        self.assertEqual(os.stat(effective).st_mode & 0o777, 0o644)
        text = world.slurp(effective)
        self.assertNotIn(TOKEN, text)
        saved = json.loads(text)
        self.assertNotIn("manager_token", saved)
        self.assertEqual(saved["manager_address"], AWS_IP)
        os.remove(os.path.join(self.case.dir, "config.json"))  # the user-data's copy is gone
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KASM_BOOTSTRAP_", "KASM_FAKE_"))}
        for args in (argv[1:], ["status", "--long"]):
            r = subprocess.run(["ip", "netns", "exec", W.instance, W.binary, *args, "--root", self.case.root],
                               capture_output=True, text=True, env=env, timeout=60)
            self.assertEqual(r.returncode, 0, f"{args}: {r.stdout}{r.stderr}")
            self.assertNotIn(TOKEN, r.stdout + r.stderr)
        self.assertIn("status: done", r.stdout)

    def test_sd_notify_ready(self):
        self.assertIn("READY=1", "\n".join(self.result.notify).split("\n"))

    def test_console_line_says_success(self):
        self.assertRegex(self.case.console(), r"^kasm-bootstrap \S+: SUCCESS agent " + SERVER_ID + " ready")

    def test_secrets_nowhere_and_nothing_half_written(self):
        self.assertEqual(self.case.leaks(self.result), [])
        self.assertEqual(self.case.leaks(self.rerun), [])
        self.assertEqual(self.case.temp_files(), [])

    def test_one_download(self):
        self.assertEqual(self.requests_after_first - self.requests_before, 1)

    def test_rerun_is_a_noop(self):
        self.assertEqual(self.rerun.rc, 0, self.rerun)
        self.assertEqual(self.case.installer_runs(), 1, "installer not run again")
        self.assertEqual(W.release_requests(), self.requests_after_first, "no release request on a re-run")
        self.assertEqual(W.docker("inspect", "-f", "{{.Id}}", "kasm_proxy").stdout.strip(), self.proxy_id)
        self.assertIn("READY=1", "\n".join(self.rerun.notify).split("\n"))


class MetadataService(unittest.TestCase):
    """EC2 user-data (the manager token) is served at 169.254.169.254: after `run`, a
    container on the agent's Docker cannot reach it, while the instance itself still can.
    First without the block (block_container_metadata=false), to show the container CAN
    reach the fake IMDS there, so the blocked case is not blocked by something else."""

    def imds_gets(self):
        return world.slurp(W.servers["imds"].log_path).count("GET /latest/meta-data/local-ipv4 token=no -> 401")

    def test_containers_cannot_reach_the_metadata_service_the_instance_can(self):
        W.remove_metadata_block()
        off = W.new_case("fwoff")
        off.config["block_container_metadata"] = False
        r = off.run()
        self.assertEqual(r.rc, 0, r)
        step = {s["id"]: s for s in off.status()["steps"]}["block-metadata"]
        self.assertEqual(step["outputs"]["metadata_block"], "disabled", step)
        self.assertFalse(any(world.METADATA_RULE_COMMENT in l for l in W.metadata_rules()), W.metadata_rules())
        before = self.imds_gets()
        rc, out = W.container_fetch(METADATA_URL)
        # The fake IMDS answered (401: IMDSv2 required, and wget sent no token).
        self.assertIn("401", out, f"a container could not reach the fake IMDS even without the block: {rc} {out}")
        self.assertEqual(self.imds_gets(), before + 1)

        on = W.new_case("fwon")
        r = on.run()
        self.assertEqual(r.rc, 0, r)
        step = {s["id"]: s for s in on.status()["steps"]}["block-metadata"]
        self.assertEqual(step["outcome"], "done", step)
        self.assertEqual(step["outputs"]["metadata_block.ip"], "present", step)
        rules = W.metadata_rules()
        ours = [l for l in rules if world.METADATA_RULE_COMMENT in l]
        self.assertEqual(len(ours), 1, rules)
        self.assertEqual(rules[1], ours[0], f"our rule must come first in DOCKER-USER: {rules}")
        # Debian 12's dockerd (20.10) ends the chain with RETURN (docs/platform.md).
        self.assertEqual(rules[-1], "-A DOCKER-USER -j RETURN", rules)
        self.assertIn(f"-d {world.IMDS_IP}/32", ours[0])
        self.assertTrue(ours[0].endswith("-j DROP"), ours[0])

        before = self.imds_gets()
        rc, out = W.container_fetch(METADATA_URL)
        self.assertEqual(rc, 143, f"expected the GET to hang until `timeout` ended it: {rc} {out}")
        self.assertNotIn("401", out)
        self.assertEqual(self.imds_gets(), before, "the container's request reached the fake IMDS")
        # The instance's own traffic (OUTPUT, not FORWARD) is untouched.
        self.assertEqual(W.instance_fetch(METADATA_URL), 401)
        self.assertEqual(self.imds_gets(), before + 1)

        health = on.command("health", "-o", "json")
        doc = json.loads(health.stdout)
        checks = {c["name"]: c for c in doc["checks"]}
        self.assertTrue(checks["metadata_fw"]["ok"], health)
        self.assertEqual(health.rc, 0, health)

        # Docker restarts: it keeps DOCKER-USER as it is, so the rule stays (the unit
        # re-applies it anyway; applying is idempotent).
        W.stop_docker()
        W.start_docker()
        rules = W.metadata_rules()
        self.assertEqual(len([l for l in rules if world.METADATA_RULE_COMMENT in l]), 1, rules)
        dry = on.command("protect-metadata", "--dry-run", "-o", "json")
        self.assertEqual(dry.rc, 0, dry)
        self.assertEqual(json.loads(dry.stdout)["result"], "protected", dry)
        health = on.command("health", "-o", "json")
        checks = {c["name"]: c for c in json.loads(health.stdout)["checks"]}
        self.assertTrue(checks["metadata_fw"]["ok"], health)

        # After a reboot Docker recreates the chain empty; the unit runs protect-metadata.
        W.remove_metadata_block()
        health = on.command("health", "-o", "json")
        checks = {c["name"]: c for c in json.loads(health.stdout)["checks"]}
        self.assertFalse(checks["metadata_fw"]["ok"], health)
        self.assertEqual(health.rc, 10, health)
        applied = on.command("protect-metadata", "-o", "json")
        self.assertEqual(applied.rc, 0, applied)
        self.assertTrue(json.loads(applied.stdout)["ip"]["added"], applied)
        again = on.command("protect-metadata", "-o", "json")
        self.assertFalse(json.loads(again.stdout)["ip"]["added"], again)
        self.assertEqual(len([l for l in W.metadata_rules() if world.METADATA_RULE_COMMENT in l]), 1)
        rc, out = W.container_fetch(METADATA_URL)
        self.assertEqual(rc, 143, out)
        self.assertNotIn("401", out)


class Interrupted(unittest.TestCase):
    def interrupted_then_resumed(self, signum):
        case = W.new_case("kill%d" % signum)
        case.env["KASM_FAKE_SLEEP"] = "60"
        before = W.release_requests()
        first = case.run(signal_when=(installer_sleeping, signum))
        self.assertEqual(W.release_requests() - before, 1)
        state = case.state()
        self.assertIsNotNone(state, "state.json survives the interruption")
        del case.env["KASM_FAKE_SLEEP"]
        second = case.run()
        self.assertEqual(second.rc, 0, second)
        self.assertEqual(W.release_requests() - before, 1, "the resumed run does not download again")
        self.assertEqual(case.installer_runs(), 2)
        self.assertEqual(case.status()["result"], "success")
        self.assertIn("SUCCESS", case.console().splitlines()[-1])
        self.assertEqual(W.container_state("kasm_proxy"), "running")
        for r in (first, second):
            self.assertEqual(case.leaks(r), [])
        self.assertEqual(case.temp_files(), [])
        return case, first

    def test_sigkill_during_install_then_rerun_resumes(self):
        case, first = self.interrupted_then_resumed(signal.SIGKILL)
        self.assertEqual(first.rc, -signal.SIGKILL)

    def test_sigterm_during_install_exits_12_then_rerun_resumes(self):
        case = W.new_case("term-check")
        case.env["KASM_FAKE_SLEEP"] = "60"
        first = case.run(signal_when=(installer_sleeping, signal.SIGTERM))
        self.assertEqual(first.rc, 12, first)
        self.assertEqual(first.strays, [], "SIGTERM stops the installer's whole process group")
        st = case.status()
        self.assertEqual(st["exit_code"], 12)
        failed = [s["id"] for s in st["steps"] if s["outcome"] not in ("done", "satisfied", "pending", "skipped")]
        self.assertIn("install-agent", failed, st)
        self.assertIn("FAILED at step install-agent", case.console())
        self.assertEqual(case.leaks(first), [])
        case2, first2 = self.interrupted_then_resumed(signal.SIGTERM)
        self.assertEqual(first2.rc, 12)


class Layout(unittest.TestCase):
    """The world's release (each ctest entry serves one Kasm version): plan names the version
    read from the release's install.sh and the layout found in its tree; a release of an
    unknown generation, or one whose tree disagrees with its version, is refused by name."""

    def test_plan_names_the_detected_version_and_layout(self):
        case = W.new_case("layout")
        config_path = world.AGENT_CONFIG[len("/opt/kasm/current/"):]
        before = case.run("--dry-run")
        self.assertEqual(before.rc, 0, before)
        self.assertIn("KASM_VERSION names a Kasm release whose layout is known", before.stdout)
        r = case.run()
        self.assertEqual(r.rc, 0, r)
        self.assertIn(f"fetch-release: Kasm {world.VERSION} (agent configuration {config_path})", case.log())
        self.assertEqual(case.agent_config()["agent"]["server_id"], SERVER_ID)
        plan = case.run("--dry-run")
        self.assertEqual(plan.rc, 0, plan)
        self.assertIn(f"Kasm {world.VERSION} (agent configuration {config_path})", plan.stdout)

    def test_an_unknown_generation_is_refused_by_name(self):
        sha = W.serve_release(self, "layout-1.19.0", "--version", "1.19.0")
        case = W.new_case("layout119")
        case.config["release_sha256"] = sha
        r = case.run()
        self.assertEqual(r.rc, 6, r)
        self.assertIn("the release is Kasm 1.19.0 (KASM_VERSION in ", r.stdout + r.stderr)
        self.assertIn("knows the layouts of Kasm 1.15 to 1.18 only", r.stdout + r.stderr)
        self.assertEqual(case.installer_runs(), 0, "nothing installed from an unknown layout")


class ProcessTrees(unittest.TestCase):
    """While install.sh and bin/start run (the fake sleeping in each), every process of
    their trees is read through /proc: cmdline and environ as root, and everything
    readable as an unprivileged uid. The token, given to the binary through its
    environment here, is in none of them; after the run no file but the agent
    configuration holds it."""

    # Runs as uid 65534. The token comes on stdin (never on its own command line); stdin's
    # end-of-file says stop.
    SCANNER = r"""
import os, select, sys
token = sys.stdin.readline().strip().encode()
found, read = set(), 0
while not select.select([sys.stdin], [], [], 0.02)[0]:
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        for item in ("cmdline", "environ"):
            try:
                with open(f"/proc/{pid}/{item}", "rb") as f:
                    data = f.read()
            except OSError:
                continue
            read += 1
            if token in data:
                found.add(f"{pid}/{item}")
print(read, " ".join(sorted(found)))
"""

    def test_no_token_in_any_cmdline_or_environ_of_the_install_and_start_trees(self):
        case = W.new_case("proctree")
        del case.config["manager_token"]
        case.env["KASM_BOOTSTRAP_MANAGER_TOKEN"] = TOKEN  # the binary's own environ holds it
        case.env["KASM_FAKE_SLEEP"] = "2"
        case.env["KASM_FAKE_START_SLEEP"] = "2"
        # Debian's interpreter: a uid without a home cannot run one installed under /root.
        scanner = subprocess.Popen(["/usr/bin/python3", "-c", self.SCANNER], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, text=True, user=65534, group=65534, cwd="/")
        self.addCleanup(lambda: scanner.poll() is None and scanner.kill())
        scanner.stdin.write(TOKEN + "\n")
        scanner.stdin.flush()
        seen, hits = {}, []

        def sample(c):
            for pid, cmd in c.marked_processes().items():
                if f" run --root {c.root} " in cmd:
                    continue  # the binary itself (`ip netns exec` execs it), which was given the token
                seen.setdefault(pid, cmd)
                for item in ("cmdline", "environ"):
                    try:
                        with open(f"/proc/{pid}/{item}", "rb") as f:
                            if TOKEN.encode() in f.read():
                                hits.append(f"{cmd} ({item})")
                    except OSError:
                        pass
            return False

        try:
            r = case.run(signal_when=(sample, signal.SIGTERM))
        finally:
            out, _ = scanner.communicate(timeout=30)  # closes its stdin: the scan ends
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(hits, [])
        self.assertTrue(any("install.sh" in c for c in seen.values()), seen)
        self.assertTrue(any("start" in c and "install.sh" not in c for c in seen.values()), seen)
        read, _, found = out.strip().partition(" ")
        self.assertGreater(int(read), 0, "the unprivileged scanner read /proc")
        # The binary's own environ is root's and unreadable to uid 65534; its cmdline has no token.
        self.assertEqual(found, "", "an unprivileged user read the token in " + found)
        self.assertEqual(case.leaks(r), [])


class FailedInstall(unittest.TestCase):
    def test_after_a_failed_install_no_file_holds_the_token_and_no_log_is_left(self):
        case = W.new_case("failtoken")
        case.env["KASM_FAKE_MODE"] = "fail"
        r = case.run()
        self.assertEqual(r.rc, 8, r)
        self.assertIn("install.sh left ", case.log())
        holders = []
        for d, _, files in os.walk(case.root):
            for f in files:
                p = os.path.join(d, f)
                if not os.path.islink(p) and os.path.isfile(p):
                    with open(p, "rb") as fh:
                        if TOKEN.encode() in fh.read():
                            holders.append(p)
        # The config file the test hands the binary sits beside the root, not in it.
        self.assertEqual(holders, [])
        self.assertEqual(os.listdir(case.path("/var/lib/kasm-bootstrap/work")), [])
        self.assertEqual(case.leaks(r), [])


class Ports(unittest.TestCase):
    """A manager on 8443 and kasm_proxy on 8444 (install.sh -L) end to end."""

    def test_manager_on_8443_and_proxy_port_8444(self):
        W.restart_manager(port=8443)
        self.addCleanup(W.restart_manager)
        case = W.new_case("ports")
        case.config["manager_port"] = 8443
        case.config["proxy_port"] = 8444
        r = case.run()
        self.assertEqual(r.rc, 0, f"{r}\n{W.containers_report()}")
        argv = case.installer_argv()
        self.assertEqual(argv[argv.index("-L") + 1], "8444")
        config = case.agent_config()
        self.assertEqual(config["agent"]["public_port"], 8444)
        self.assertEqual(config["manager"]["public_port"], 8443)
        self.assertEqual(case.read("/var/run/kasm-sidecar/api_hostname"), AWS_IP + ":8443\n")
        ports = W.docker("port", "kasm_proxy").stdout
        self.assertIn("8444/tcp", ports)
        checked = [s for s in case.status()["steps"] if s["id"] == "check-manager"][0]["outputs"]
        self.assertEqual(checked["manager"], f"ok from https://{AWS_IP}:8443/api/__healthcheck")

    def test_a_wrong_manager_port_fails_at_check_manager_before_anything_is_installed(self):
        case = W.new_case("badport")
        case.config["manager_port"] = 9
        r = case.run()
        self.assertEqual(r.rc, 10, r)
        # Failed at check-manager (its 3 tries), before fetch-release's install could start.
        self.assertEqual([s["id"] for s in case.status()["steps"] if s["outcome"] == "failed"], ["check-manager"])
        self.assertIn(f"the manager at https://{AWS_IP}:9/api/__healthcheck did not answer", r.stderr)
        self.assertEqual(case.installer_runs(), 0)


class OneAtATime(unittest.TestCase):
    def installer_intervals(self, case):
        """(start, end) of each installer run, end None for one that never finished."""
        out = []
        for n in range(1, case.installer_runs() + 1):
            marks = dict(line.split() for line in (case.read(f"/fake-installer/timing.{n}") or "").splitlines())
            out.append((float(marks["start"]), float(marks["end"]) if "end" in marks else None))
        return out

    def test_a_second_run_while_one_installs_exits_15_naming_the_holder(self):
        case = W.new_case("twice")
        case.env["KASM_FAKE_SLEEP"] = "3"
        second = {}
        first = case.run(signal_when=(installer_sleeping, lambda: second.update(r=case.run(name="second", keep_strays=True))))
        self.assertEqual(first.rc, 0, first)
        r = second["r"]
        self.assertEqual(r.rc, 15, r)
        self.assertRegex(r.stderr, r"another kasm-bootstrap is running here \(pid \d+ run since \S+Z, lock ")
        self.assertIn("nothing was changed", r.stderr)
        self.assertEqual(case.installer_runs(), 1)
        self.assertEqual(case.status()["result"], "success")
        self.assertEqual(case.leaks(r), [])

    def test_wait_lock_waits_for_the_first_run_then_finds_it_done(self):
        case = W.new_case("waitlock")
        case.env["KASM_FAKE_SLEEP"] = "2"
        second = {}
        first = case.run(signal_when=(installer_sleeping,
                                      lambda: second.update(r=case.run("--wait-lock", name="second", keep_strays=True))))
        self.assertEqual(first.rc, 0, first)
        r = second["r"]
        self.assertEqual(r.rc, 0, r)
        self.assertIn("waiting for the run lock", r.stderr)
        self.assertEqual(case.installer_runs(), 1, "the waiting run found the install done")

    def test_sigkill_mid_install_then_rerun_ends_the_old_installer_first(self):
        case = W.new_case("killrerun")
        case.env["KASM_FAKE_SLEEP"] = "60"
        first = case.run(signal_when=(installer_sleeping, signal.SIGKILL), keep_strays=True)
        self.assertEqual(first.rc, -signal.SIGKILL)
        self.assertEqual(case.status()["result"], "running", "what SIGKILL leaves: nobody could say otherwise")
        # The parent-death signal ends the installer itself at once; what it started
        # (the fake's sleep) is still running in its process group.
        deadline = time.time() + 5
        while time.time() < deadline and any("install.sh" in c for c in case.marked_processes().values()):
            time.sleep(0.05)
        left = case.marked_processes()
        self.assertFalse([c for c in left.values() if "install.sh" in c], left)
        self.assertTrue(left, "the installer's child is still running before the re-run")
        del case.env["KASM_FAKE_SLEEP"]
        second = case.run()
        self.assertEqual(second.rc, 0, second)
        self.assertRegex(case.log(), r"ended process group \d+ \(.*\) that an earlier run left running")
        self.assertRegex(case.log(), r"the previous run \(pid \d+, started \S+\) ended without finishing")
        for pid in left:
            self.assertFalse(os.path.exists(f"/proc/{pid}"), f"{left[pid]} still running after the re-run")
        # Never two installers at once: the re-run ended the old group (end_recorded_group
        # returns once the group is gone) before it started its own installer.
        (_, old_end), _ = self.installer_intervals(case)
        self.assertIsNone(old_end, "the first installer never finished")
        log = case.log()
        self.assertLess(log.index("ended process group"), log.rindex("install-agent: attempt 1:"))
        self.assertEqual(case.status()["result"], "success")
        self.assertFalse(os.path.exists(case.path("/var/lib/kasm-bootstrap/installer.group")))
        self.assertEqual(case.leaks(first), [])
        self.assertEqual(case.leaks(second), [])


if __name__ == "__main__":
    world.run_suite(__name__)
