#!/usr/bin/env python3
"""Tests for the startup-script templates in cloud-init/.

Kasm renders the text an operator pastes into the VM Provider "Startup Script" field with
Python's str.format(**variables). These tests render both templates exactly that way with
hostile values (quotes, $HOME, backticks, backslashes, braces, multi-line PEM, "None"),
then run what cloud-init would run and check that every value reaches kasm-bootstrap
byte for byte and that the manager token never appears on a command line:

  * startup-script.sh: run with bash, with PATH reduced to logging wrappers around the
    few external commands it needs and a stub in place of kasm-bootstrap/systemctl;
  * startup-cloud-config.yaml: rendered with cloud-init's own Jinja renderer, checked with
    `cloud-init schema --config-file`, and its write_files applied with cloud-init's own
    module into a temp dir (skipped, with a message, when cloud-init is not installed);
  * when the dev build exists (build/dev/kasm-bootstrap), the resulting config directory
    is fed to `kasm-bootstrap plan --config DIR --root TMP --output json`.

Standard library only; cloud-init's modules are used through cloud-init's own Python
interpreter in a subprocess. Nothing outside temp dirs is touched.

    python3 tests/release/test_templates.py [-v]
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import string
import subprocess
import sys
import tempfile
import textwrap
import unittest
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BASH_TEMPLATE = REPO / "cloud-init" / "startup-script.sh"
CLOUD_CONFIG_TEMPLATE = REPO / "cloud-init" / "startup-cloud-config.yaml"
DEV_BINARY = Path(os.environ.get("KB_DEV_BINARY", REPO / "build" / "dev" / "kasm-bootstrap"))

# The variables Kasm passes to str.format, and the config key each one feeds.
KEY_FOR_VARIABLE = {
    "server_id": "server_id",
    "manager_token": "manager_token",
    "upstream_auth_address": "manager_address",
    "provider_name": "provider",
    "server_hostname": "server_hostname",
    "server_external_fqdn": "external_fqdn",
    "nginx_cert_in": "nginx_cert",
    "nginx_key_in": "nginx_key",
}

FAKE_PEM_CERT = (
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBszCCAVmgAwIBAgIUQ+x/y=z$HOME`id`'\"\\n{server_id}\n"
    "  an indented line, then an empty one\n"
    "\n"
    "-----END CERTIFICATE-----\n"
)
FAKE_PEM_KEY = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI$(id)+/=\n-----END PRIVATE KEY-----"

# Values chosen to break naive templates: every shell and YAML metacharacter, braces
# (str.format does not re-render values, Jinja must not either), multi-line PEM.
NASTY = {
    "server_id": "3fa2c6e4-'quote'-\"dq\"-$HOME-`id`-$(id)-\\-\\n-{server_id}-{{x}}-%s",
    "manager_token": "tok'en\"$USER`whoami`\\\\ {} {{ }} {%raw%} # : - !x &a *b |>",
    "upstream_auth_address": "kasm.example.com",
    "provider_name": "AWS \"provider\" with  two  spaces ",
    "server_hostname": "  leading-spaces-host",
    "server_external_fqdn": "None",
    "nginx_cert_in": FAKE_PEM_CERT,
    "nginx_key_in": FAKE_PEM_KEY,
}
# Kasm may hand PEM over as one line with literal \n sequences; blank = keep self-signed.
ONE_LINE_PEM = dict(NASTY, nginx_cert_in=FAKE_PEM_CERT.replace("\n", "\\n"), nginx_key_in="",
                    server_external_fqdn="agent-1.kasm.example.com")
EMPTY = {v: "" for v in KEY_FOR_VARIABLE}
TRAILING = dict(NASTY, server_id="ends-with-newline\n", provider_name="\n\nleading-newlines",
                server_hostname="tab\there")

VALUE_SETS = {"nasty": NASTY, "one_line_pem": ONE_LINE_PEM, "empty": EMPTY, "trailing": TRAILING}

# External commands startup-script.sh may run (everything else must be a bash builtin).
ALLOWED_COMMANDS = ["cat", "mkdir", "mktemp", "mv", "rm", "chmod", "dirname"]


def render(template_path: Path, values: dict[str, str]) -> str:
    """Exactly what Kasm does."""
    return template_path.read_text().format(**values)


def expected_files(values: dict[str, str]) -> dict[str, str]:
    """Each key's file holds the value plus the one trailing newline kasm-bootstrap strips."""
    return {KEY_FOR_VARIABLE[var]: value + "\n" for var, value in values.items()}


def write_exe(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o755)


class TemplateSyntax(unittest.TestCase):
    def test_only_the_eight_variables_and_each_exactly_once(self):
        for template in (BASH_TEMPLATE, CLOUD_CONFIG_TEMPLATE):
            with self.subTest(template=template.name):
                fields = [f for _, f, _, _ in string.Formatter().parse(template.read_text()) if f is not None]
                self.assertEqual(sorted(fields), sorted(KEY_FOR_VARIABLE),
                                 f"{template.name}: single-brace fields must be exactly Kasm's eight "
                                 f"variables, once each (double every literal brace)")

    def test_renders_without_leftover_placeholders(self):
        for template in (BASH_TEMPLATE, CLOUD_CONFIG_TEMPLATE):
            with self.subTest(template=template.name):
                rendered = render(template, {v: "X" for v in KEY_FOR_VARIABLE})
                for var in KEY_FOR_VARIABLE:
                    self.assertNotIn("{" + var + "}", rendered)

    def test_rendered_bash_parses(self):
        for name, values in VALUE_SETS.items():
            with self.subTest(values=name):
                proc = subprocess.run(["bash", "-n"], input=render(BASH_TEMPLATE, values),
                                      text=True, capture_output=True)
                self.assertEqual(proc.returncode, 0, proc.stderr)

    def test_rendered_bash_passes_shellcheck(self):
        if not shutil.which("shellcheck"):
            self.skipTest("shellcheck not installed (apt-get install shellcheck): skipping lint of the rendered script")
        proc = subprocess.run(["shellcheck", "-s", "bash", "-"], input=render(BASH_TEMPLATE, NASTY),
                              text=True, capture_output=True)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)


class BashVariant(unittest.TestCase):
    """Runs the rendered bash script with stubs; nothing outside a temp dir is touched."""

    def setUp(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="kb-template-test-"))
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.wrappers = self.tmp / "bin"
        self.wrappers.mkdir()
        self.argv_log = self.tmp / "argv.log"
        self.capture = self.tmp / "captured"
        # Every external command is a wrapper that logs its argv (NUL separated, one
        # record per exec) and runs the real one: a token on any command line shows up.
        for cmd in ALLOWED_COMMANDS:
            real = shutil.which(cmd, path="/usr/bin:/bin")
            self.assertIsNotNone(real, f"{cmd} not found")
            write_exe(self.wrappers / cmd, textwrap.dedent(f"""\
                #!/bin/bash
                printf '%s\\0' "$0" "$@" >>'{self.argv_log}'; printf '\\n' >>'{self.argv_log}'
                exec '{real}' "$@"
                """))
        # Stub of kasm-bootstrap: logs argv and environment, copies the config directory.
        self.stub = self.tmp / "kasm-bootstrap"
        write_exe(self.stub, textwrap.dedent(f"""\
            #!/bin/bash
            printf '%s\\0' "$0" "$@" >>'{self.argv_log}'; printf '\\n' >>'{self.argv_log}'
            [ "$1" = run ] && [ "$2" = --config ] || {{ echo "stub: unexpected argv: $*" >&2; exit 3; }}
            /bin/cp -a "$3" '{self.capture}'
            /usr/bin/env -0 >'{self.tmp}/stub.env'
            """))
        write_exe(self.wrappers / "systemctl", textwrap.dedent(f"""\
            #!/bin/bash
            printf '%s\\0' "$0" "$@" >>'{self.argv_log}'; printf '\\n' >>'{self.argv_log}'
            """))

    def run_script(self, values, mode="direct"):
        script = self.tmp / "part-001"
        script.write_text(render(BASH_TEMPLATE, values))
        script.chmod(0o700)
        config_dir = self.tmp / "run" / "kasm-bootstrap" / "config.d"
        env = {
            "PATH": str(self.wrappers),
            "HOME": "/nonexistent-home",
            "KB_USERDATA_CONFIG_DIR": str(config_dir),
            "KB_USERDATA_BIN": str(self.stub),
            "KB_USERDATA_MODE": mode,
        }
        proc = subprocess.run(["/bin/bash", str(script)], env=env, capture_output=True, text=True,
                              timeout=60)
        self.assertEqual(proc.returncode, 0, f"rendered script failed:\n{proc.stdout}\n{proc.stderr}")
        return config_dir, proc

    def argv_records(self):
        if not self.argv_log.exists():
            return []
        raw = self.argv_log.read_bytes()
        return [rec.rstrip(b"\0").split(b"\0") for rec in raw.split(b"\0\n") if rec]

    def read_dir(self, d: Path) -> dict[str, str]:
        return {p.name: p.read_bytes().decode() for p in sorted(d.iterdir())}

    def check_no_secret_on_argv(self, values):
        secrets = [values["manager_token"].encode()]
        # Every substantial line of the private key, too.
        secrets += [line.encode() for line in values["nginx_key_in"].splitlines() if len(line.strip()) >= 8]
        records = self.argv_records()
        self.assertTrue(records, "no command was logged: the wrappers did not run")
        for rec in records:
            joined = b"\0".join(rec)
            for secret in secrets:
                if secret.strip():
                    self.assertNotIn(secret, joined, f"secret on a command line: {rec!r}")

    def test_values_arrive_byte_for_byte_direct(self):
        for name, values in VALUE_SETS.items():
            with self.subTest(values=name):
                self.setUp_clean()
                config_dir, _ = self.run_script(values, mode="direct")
                self.assertEqual(self.read_dir(self.capture), expected_files(values),
                                 "the stub did not receive the values intact")
                self.assertEqual(self.read_dir(config_dir), expected_files(values))
                # Private: directory 0700 (and its parent), files 0600, nothing else in it.
                self.assertEqual(stat.S_IMODE(config_dir.stat().st_mode), 0o700)
                self.assertEqual(stat.S_IMODE(config_dir.parent.stat().st_mode), 0o700)
                for f in config_dir.iterdir():
                    self.assertTrue(f.is_file() and not f.is_symlink())
                    self.assertEqual(stat.S_IMODE(f.stat().st_mode), 0o600, f.name)
                self.assertEqual([p.name for p in config_dir.parent.iterdir()], ["config.d"],
                                 "staging directory left behind")
                # The binary is called with the directory only.
                stub_calls = [r for r in self.argv_records() if r[0] == str(self.stub).encode()]
                self.assertEqual(stub_calls, [[str(self.stub).encode(), b"run", b"--config",
                                               str(config_dir).encode()]])
                self.check_no_secret_on_argv(values)
                env = (self.tmp / "stub.env").read_bytes()
                if values["manager_token"]:
                    self.assertNotIn(values["manager_token"].encode(), env, "token in the environment")
                self.assertNotIn(b"KB_USERDATA_", env, "test hooks leaked into kasm-bootstrap's environment")

    def test_service_mode_starts_unit_without_blocking(self):
        config_dir, proc = self.run_script(NASTY, mode="service")
        calls = [r[1:] for r in self.argv_records() if r[0].endswith(b"/systemctl")]
        self.assertEqual(calls, [[b"start", b"--no-block", b"kasm-bootstrap.service"]],
                         "must start the unit with --no-block (a blocking start deadlocks cloud-final)")
        self.assertFalse(self.capture.exists(), "service mode must not run the binary itself")
        self.assertEqual(self.read_dir(config_dir), expected_files(NASTY))
        self.check_no_secret_on_argv(NASTY)
        self.assertNotIn(NASTY["manager_token"], proc.stdout + proc.stderr)

    def test_rerun_replaces_previous_values(self):
        self.run_script(NASTY, mode="service")
        config_dir, _ = self.run_script(ONE_LINE_PEM, mode="service")
        self.assertEqual(self.read_dir(config_dir), expected_files(ONE_LINE_PEM))

    def setUp_clean(self):
        for p in (self.capture, self.tmp / "run", self.argv_log):
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()


def cloud_init_python() -> str | None:
    """The interpreter cloud-init runs under (its modules are not on every python3's path)."""
    exe = shutil.which("cloud-init")
    if not exe:
        return None
    first = Path(exe).read_text(errors="replace").splitlines()[0]
    interp = first[2:].strip().split()[0] if first.startswith("#!") else sys.executable
    probe = subprocess.run([interp, "-c", "import cloudinit, yaml, jinja2"], capture_output=True)
    return interp if probe.returncode == 0 else None


# Runs inside cloud-init's interpreter: the same code paths cloud-init uses on first boot.
CLOUD_INIT_HELPER = r'''
import json, os, sys, yaml
from cloudinit import handlers
from cloudinit.handlers import jinja_template
from cloudinit.config import cc_write_files

rendered_by_kasm, outdir = open(sys.argv[1]).read(), sys.argv[2]
# UserDataProcessor sees "## template: jinja" and hands the part to the Jinja handler,
# which renders it (dropping the header line) with the instance data.
ctype = handlers.type_from_starts_with(rendered_by_kasm)
assert ctype == "text/jinja2", "expected a Jinja-templated part, got %r" % ctype
cfg_text = jinja_template.render_jinja_payload(rendered_by_kasm, "part-001", {"v1": {}}, debug=False)
assert handlers.type_from_starts_with(cfg_text) == "text/cloud-config", cfg_text[:80]
open(os.path.join(outdir, "rendered.yaml"), "w").write(cfg_text)
cfg = yaml.safe_load(cfg_text)
files = []
for f in cfg["write_files"]:
    f = dict(f)
    f["path"] = outdir + "/root" + f["path"]
    files.append(f)
cc_write_files.write_files("write_files", files, "root:root")
json.dump({k: cfg[k] for k in cfg if k != "write_files"}, open(os.path.join(outdir, "other.json"), "w"))
'''


class CloudConfigVariant(unittest.TestCase):
    def setUp(self):
        self.python = cloud_init_python()
        if not self.python:
            self.skipTest("cloud-init (with its Python modules) is not installed: "
                          "apt-get install cloud-init to run the cloud-config checks")
        self.tmp = Path(tempfile.mkdtemp(prefix="kb-cloud-config-test-"))
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)

    def apply(self, values, name="x"):
        out = self.tmp / name
        out.mkdir()
        src = out / "user-data.txt"
        src.write_text(render(CLOUD_CONFIG_TEMPLATE, values))
        helper = self.tmp / "helper.py"
        helper.write_text(CLOUD_INIT_HELPER)
        proc = subprocess.run([self.python, str(helper), str(src), str(out)], capture_output=True, text=True)
        self.assertEqual(proc.returncode, 0, f"cloud-init processing failed:\n{proc.stderr}")
        return out

    def test_schema_valid(self):
        out = self.apply(NASTY)
        proc = subprocess.run(["cloud-init", "schema", "--config-file", str(out / "rendered.yaml")],
                              capture_output=True, text=True)
        self.assertEqual(proc.returncode, 0, f"cloud-init schema rejected the rendered config:\n"
                                             f"{proc.stdout}{proc.stderr}")
        self.assertIn("Valid cloud-config", proc.stdout + proc.stderr)

    def test_values_arrive_byte_for_byte(self):
        for name, values in VALUE_SETS.items():
            with self.subTest(values=name):
                out = self.apply(values, name)
                d = out / "root" / "run" / "kasm-bootstrap" / "config.d"
                got = {p.name: p.read_bytes().decode() for p in sorted(d.iterdir())}
                self.assertEqual(got, expected_files(values))
                for f in d.iterdir():
                    self.assertEqual(stat.S_IMODE(f.stat().st_mode), 0o600, f.name)
                other = json.loads((out / "other.json").read_text())
                self.assertEqual(other["runcmd"], [["systemctl", "start", "--no-block", "kasm-bootstrap.service"]])
                self.assertEqual(other["bootcmd"], [["install", "-d", "-m", "0700", "/run/kasm-bootstrap",
                                                     "/run/kasm-bootstrap/config.d"]])
                # No value on any command line (write_files never runs a command).
                commands = json.dumps(other)
                for v in values.values():
                    if v.strip():
                        self.assertNotIn(json.dumps(v)[1:-1], commands)

    def test_documented_limit_carriage_return(self):
        # Documented in the template: Jinja's indent filter splits lines on \r too.
        out = self.apply(dict(NASTY, nginx_key_in="a\r\nb"))
        got = (out / "root" / "run" / "kasm-bootstrap" / "config.d" / "nginx_key").read_text()
        self.assertEqual(got, "a\nb\n")


def make_test_pem(tmp: Path) -> tuple[str, str] | None:
    if not shutil.which("openssl"):
        return None
    key, crt = tmp / "k.pem", tmp / "c.pem"
    proc = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
                           "-subj", "/CN=agent-1.kasm.example.com", "-keyout", str(key), "-out", str(crt)],
                          capture_output=True)
    if proc.returncode != 0:
        return None
    return crt.read_text(), key.read_text()


def find_key(doc, key):
    """Values of `key` anywhere in a JSON document."""
    if isinstance(doc, dict):
        for k, v in doc.items():
            if k == key:
                yield v
            yield from find_key(v, key)
    elif isinstance(doc, list):
        for v in doc:
            yield from find_key(v, key)


class RealBinary(unittest.TestCase):
    """The rendered values, through each template, into the real `kasm-bootstrap plan`."""

    def setUp(self):
        if not (DEV_BINARY.is_file() and os.access(DEV_BINARY, os.X_OK)):
            self.skipTest(f"{DEV_BINARY} not built (cmake --preset dev && cmake --build --preset dev): "
                          f"skipping the end-to-end check against the real binary")
        self.tmp = Path(tempfile.mkdtemp(prefix="kb-template-real-"))
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.pem = make_test_pem(self.tmp)
        self.values = {
            "server_id": "3fa2c6e4-9b1d-4f7e-8a55-0c6d2e1f9a10",
            "manager_token": "tok'en\"$USER`id`\\x{}{{ }}%s-0123456789",
            "upstream_auth_address": "kasm-manager.example.com",
            "provider_name": "AWS",
            "server_hostname": "kasm-agent-1",
            "server_external_fqdn": "None",
            "nginx_cert_in": self.pem[0] if self.pem else "",
            "nginx_key_in": self.pem[1] if self.pem else "",
        }

    def test_plan_sees_values_from_bash_variant(self):
        bash = BashVariant("test_service_mode_starts_unit_without_blocking")
        bash.setUp()
        try:
            config_dir, _ = bash.run_script(self.values, mode="service")
            self.check_plan(config_dir)
        finally:
            bash.doCleanups()

    def test_plan_sees_values_from_cloud_config_variant(self):
        cc = CloudConfigVariant("test_schema_valid")
        cc.setUp()  # skips without cloud-init
        try:
            out = cc.apply(self.values)
            self.check_plan(out / "root" / "run" / "kasm-bootstrap" / "config.d")
        finally:
            cc.doCleanups()

    def check_plan(self, config_dir: Path):
        values, pem = self.values, self.pem
        # The image defaults the AMI build writes (packer/), read under --root.
        root = self.tmp / "root"
        shutil.rmtree(root, ignore_errors=True)
        (root / "etc" / "kasm-bootstrap").mkdir(parents=True)
        (root / "etc" / "kasm-bootstrap" / "config.json").write_text(json.dumps({
            "release_url": "https://kasm-static-content.s3.amazonaws.com/kasm_release_1.16.1.tar.gz",
            "release_sha256": "0" * 64,
            "cache_dir": "/var/cache/kasm-bootstrap",
            "swap_size": "auto",
        }))
        env = {k: v for k, v in os.environ.items() if not k.startswith("KASM_BOOTSTRAP_")}
        proc = subprocess.run([str(DEV_BINARY), "plan", "--config", str(config_dir), "--root", str(root),
                               "--output", "json"], capture_output=True, text=True, env=env, timeout=120)
        out = proc.stdout + proc.stderr
        self.assertNotIn(values["manager_token"], out, "manager token printed by kasm-bootstrap plan")
        if pem:
            self.assertNotIn(pem[1].splitlines()[1], out, "private key printed by kasm-bootstrap plan")
        try:
            doc = json.loads(proc.stdout)
        except json.JSONDecodeError as e:
            self.fail(f"plan --output json did not print one JSON document (exit {proc.returncode}): {e}\n{out}")
        self.assertEqual(proc.returncode, 0, f"kasm-bootstrap plan failed:\n{out}")
        config = doc.get("config") if isinstance(doc.get("config"), dict) else None
        if config is None:  # no "config" object: look for the keys anywhere
            config = {k: next(iter(find_key(doc, k)), None) for k in KEY_FOR_VARIABLE.values()}
        self.assertEqual(config.get("manager_token"), "****", f"manager_token not redacted:\n{proc.stdout}")
        self.assertEqual(config.get("server_id"), values["server_id"])
        self.assertEqual(config.get("manager_address"), values["upstream_auth_address"])
        self.assertEqual(config.get("provider"), values["provider_name"])
        self.assertEqual(config.get("server_hostname"), values["server_hostname"])
        self.assertIn(config.get("external_fqdn"), ("", None), "external_fqdn 'None' must mean unset")
        if pem:
            self.assertIn("-----BEGIN CERTIFICATE-----", config.get("nginx_cert") or "")
            self.assertEqual(config.get("nginx_key"), "****", "nginx_key not redacted")
        origins = doc.get("origins")
        if isinstance(origins, dict):  # each rendered value came from the directory
            for key in ("server_id", "manager_address", "provider"):
                self.assertIn(str(config_dir), str(origins.get(key)), f"origin of {key}")

if __name__ == "__main__":
    unittest.main(verbosity=2)
