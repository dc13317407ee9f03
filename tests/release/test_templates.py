#!/usr/bin/env python3
"""Tests for the startup-script templates in cloud-init/, one pair per Kasm generation.

Kasm renders the text an operator pastes into the VM Provider "Startup Script" field with
Python's str.format(**variables), and which variables it passes depends on the release:
up to 1.16 also nginx_cert_in and nginx_key_in, from 1.17 not. A template that names a
variable its Kasm does not pass fails to render (KeyError), so each generation has its
own templates (cloud-init/kasm-1.15-1.16/, cloud-init/kasm-1.17-1.18/, written by
cloud-init/generate.py from cloud-init/*.in). For every template these tests:

  * check it is what cloud-init/generate.py writes from its source (not stale);
  * collect its field names with string.Formatter().parse and compare them with exactly
    its generation's variables (a missing name, an extra one such as nginx_cert_in in a
    1.17 template, a repeated one, or a conversion/format spec is a failure), render it
    with exactly those variables, and check that leaving any one out raises KeyError;
  * render it exactly that way with hostile values (quotes, $HOME, backticks,
    backslashes, braces, multi-line PEM, "None"), then run what cloud-init would run and
    check that every value reaches kasm-bootstrap byte for byte and that the manager
    token never appears on a command line:
      - startup-script.sh: run with bash, with PATH reduced to logging wrappers around
        the few external commands it needs and a stub in place of kasm-bootstrap/systemctl;
      - startup-cloud-config.yaml: rendered with cloud-init's own Jinja renderer, checked
        with `cloud-init schema --config-file`, and its write_files applied with
        cloud-init's own module into a temp dir (skipped, with a message, when cloud-init
        is not installed);
  * when the dev build exists (build/dev/kasm-bootstrap), feed the resulting config
    directory to `kasm-bootstrap plan --config DIR --root TMP --output json`.

Standard library only; cloud-init's modules are used through cloud-init's own Python
interpreter in a subprocess. Nothing outside temp dirs is touched.

    python3 tests/release/test_templates.py [-v]
"""

from __future__ import annotations

import importlib.util
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
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CLOUD_INIT = REPO / "cloud-init"
DEV_BINARY = Path(os.environ.get("KB_DEV_BINARY", REPO / "build" / "dev" / "kasm-bootstrap"))

# Every variable Kasm may pass to str.format, and the config key each one feeds.
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

# Exactly the variables each Kasm generation renders (kasmtech/workspaces-autoscale-startup-
# scripts, docker_agents/ubuntu.sh and README.md per version folder; docs/kasm-installer.md
# section 5): six in every generation, plus the Autoscale config's Nginx Cert/Key fields up
# to 1.16 ("In 1.17.0 the nginx_cert_in and nginx_key_in were removed"). Kept here, not
# taken from cloud-init/generate.py, so the test states Kasm's facts on its own. ssh_key
# (only in Kasm's Harvester/KubeVirt cloud-config.yaml) is in no set: a template that
# named it would fail to render on the other providers.
COMMON_VARIABLES = frozenset({"server_hostname", "server_external_fqdn", "manager_token",
                              "upstream_auth_address", "server_id", "provider_name"})
CERT_VARIABLES = frozenset({"nginx_cert_in", "nginx_key_in"})
GENERATION_VARIABLES = {
    "kasm-1.15-1.16": COMMON_VARIABLES | CERT_VARIABLES,
    "kasm-1.17-1.18": COMMON_VARIABLES,
}
OLDER_TO_NEWER = ["kasm-1.15-1.16", "kasm-1.17-1.18"]
VARIANT_FILES = {"bash": "startup-script.sh", "cloud-config": "startup-cloud-config.yaml"}


@dataclass(frozen=True)
class Template:
    generation: str
    variant: str  # "bash" | "cloud-config"

    @property
    def path(self) -> Path:
        return CLOUD_INIT / self.generation / VARIANT_FILES[self.variant]

    @property
    def variables(self) -> frozenset[str]:
        return GENERATION_VARIABLES[self.generation]

    @property
    def name(self) -> str:
        return f"{self.generation}/{self.path.name}"


TEMPLATES = [Template(g, v) for g in GENERATION_VARIABLES for v in VARIANT_FILES]


def slug(generation: str) -> str:
    return re.sub(r"[^0-9A-Za-z]+", "_", generation)


def load_generator():
    spec = importlib.util.spec_from_file_location("kb_cloud_init_generate", CLOUD_INIT / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def variable_problems(text: str, expected: frozenset[str]) -> list[str]:
    """What is wrong with the str.format fields of `text`, for a Kasm passing `expected`."""
    try:
        fields = [(name, conv, spec) for _, name, spec, conv in string.Formatter().parse(text)
                  if name is not None]
    except ValueError as e:  # a single brace str.format cannot parse
        return [f"str.format cannot parse it: {e}"]
    names = [name for name, _, _ in fields]
    problems = []
    if missing := sorted(expected - set(names)):
        problems.append(f"missing {missing} (every value Kasm passes must reach kasm-bootstrap)")
    if extra := sorted(set(names) - expected):
        problems.append(f"names {extra}, which this generation's Kasm does not pass (KeyError when "
                        f"Kasm renders it; double a literal brace)")
    if repeated := sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"names {repeated} more than once")
    if odd := [f for f in fields if f[1] is not None or f[2]]:
        problems.append(f"fields with a conversion or format spec: {odd}")
    return problems


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


def for_generation(generation: str, values: dict[str, str]) -> dict[str, str]:
    """The values, limited to exactly what that generation's Kasm passes."""
    return {k: v for k, v in values.items() if k in GENERATION_VARIABLES[generation]}


# External commands startup-script.sh may run (everything else must be a bash builtin).
ALLOWED_COMMANDS = ["cat", "mkdir", "mktemp", "mv", "rm", "chmod", "dirname"]


def render(template: Template, values: dict[str, str]) -> str:
    """Exactly what Kasm does."""
    return template.path.read_text().format(**values)


def expected_files(values: dict[str, str]) -> dict[str, str]:
    """Each key's file holds the value plus the one trailing newline kasm-bootstrap strips."""
    return {KEY_FOR_VARIABLE[var]: value + "\n" for var, value in values.items()}


def write_exe(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o755)


class Generated(unittest.TestCase):
    """cloud-init/<generation>/* is what cloud-init/generate.py writes from cloud-init/*.in."""

    def test_generated_templates_are_current(self):
        outputs = load_generator().outputs()
        for path, text in outputs.items():
            with self.subTest(path=str(path.relative_to(REPO))):
                self.assertTrue(path.is_file(), f"{path} missing: run python3 cloud-init/generate.py")
                self.assertEqual(path.read_text(), text,
                                 f"{path.relative_to(REPO)} is stale or edited by hand: edit its "
                                 f"source in cloud-init/*.in, then run python3 cloud-init/generate.py")

    def test_every_template_is_tested_and_every_generation_generated(self):
        on_disk = sorted(p for p in CLOUD_INIT.glob("kasm-*/*") if p.is_file())
        self.assertEqual(on_disk, sorted(t.path for t in TEMPLATES),
                         "every file under cloud-init/<generation>/ must be in TEMPLATES (and so tested)")
        self.assertEqual(sorted(load_generator().outputs()), sorted(t.path for t in TEMPLATES),
                         "cloud-init/generate.py and this test must know the same generations")

    def test_header_names_its_kasm_versions(self):
        for t in TEMPLATES:
            with self.subTest(template=t.name):
                first, last = re.fullmatch(r"kasm-(\d+\.\d+)-(\d+\.\d+)", t.generation).groups()
                header = t.path.read_text().split("\n\n", 1)[0]
                self.assertIn(f"For Kasm Workspaces {first} and {last}", header)


class TemplateVariables(unittest.TestCase):
    """Each template names exactly the variables its generation's Kasm passes."""

    def test_fields_are_exactly_the_generations_variables_once_each(self):
        for t in TEMPLATES:
            with self.subTest(template=t.name):
                problems = variable_problems(t.path.read_text(), t.variables)
                self.assertEqual(problems, [], f"{t.name}: " + "; ".join(problems))

    def test_renders_with_exactly_the_generations_variables(self):
        for t in TEMPLATES:
            with self.subTest(template=t.name):
                rendered = render(t, {v: f"<{v}>" for v in t.variables})
                for v in KEY_FOR_VARIABLE:
                    self.assertNotIn("{" + v + "}", rendered)
                for v in t.variables:
                    self.assertEqual(rendered.count(f"<{v}>"), 1, v)

    def test_each_variable_left_out_raises_key_error(self):
        for t in TEMPLATES:
            for missing in sorted(t.variables):
                with self.subTest(template=t.name, missing=missing):
                    values = {v: "X" for v in t.variables - {missing}}
                    with self.assertRaises(KeyError) as caught:
                        render(t, values)
                    self.assertEqual(caught.exception.args, (missing,))

    def test_older_template_fails_on_newer_kasm(self):
        # The failure the generations exist for: a 1.15-1.16 template on Kasm 1.17+.
        for t in TEMPLATES:
            for newer in OLDER_TO_NEWER[OLDER_TO_NEWER.index(t.generation) + 1:]:
                gone = t.variables - GENERATION_VARIABLES[newer]
                if not gone:
                    continue
                with self.subTest(template=t.name, kasm=newer):
                    with self.assertRaises(KeyError) as caught:
                        render(t, {v: "X" for v in GENERATION_VARIABLES[newer]})
                    self.assertIn(caught.exception.args[0], gone)

    def test_newer_template_renders_on_older_kasm(self):
        # str.format ignores keyword arguments a template does not name: the header's
        # claim that a 1.17-1.18 file also renders on 1.15/1.16 (without their cert fields).
        for t in TEMPLATES:
            for older in OLDER_TO_NEWER[:OLDER_TO_NEWER.index(t.generation)]:
                with self.subTest(template=t.name, kasm=older):
                    self.assertEqual(render(t, {v: "X" for v in GENERATION_VARIABLES[older]}),
                                     render(t, {v: "X" for v in t.variables}))

    def test_checker_catches_planted_mistakes(self):
        # variable_problems itself, on the mistakes it exists for.
        t = Template("kasm-1.17-1.18", "bash")
        text = t.path.read_text()
        cases = {
            "cert variable left in a 1.17 template": text + "\n{nginx_cert_in}\n",
            "ssh_key named": text + "\n{ssh_key}\n",
            "variable dropped": text.replace("{server_id}", "server_id"),
            "variable twice": text + "\n{manager_token}\n",
            "format spec": text.replace("{server_id}", "{server_id!r}"),
            "single brace": text + "\n}\n",
            "positional field": text + "\n{}\n",
        }
        for name, planted in cases.items():
            with self.subTest(mistake=name):
                self.assertNotEqual(variable_problems(planted, t.variables), [])


class TemplateSyntax(unittest.TestCase):
    def test_rendered_bash_parses(self):
        for t in (t for t in TEMPLATES if t.variant == "bash"):
            for name, values in VALUE_SETS.items():
                with self.subTest(template=t.name, values=name):
                    proc = subprocess.run(["bash", "-n"], input=render(t, for_generation(t.generation, values)),
                                          text=True, capture_output=True)
                    self.assertEqual(proc.returncode, 0, proc.stderr)

    def test_rendered_bash_passes_shellcheck(self):
        if not shutil.which("shellcheck"):
            self.skipTest("shellcheck not installed (apt-get install shellcheck): skipping lint of the rendered script")
        for t in (t for t in TEMPLATES if t.variant == "bash"):
            with self.subTest(template=t.name):
                proc = subprocess.run(["shellcheck", "-s", "bash", "-"],
                                      input=render(t, for_generation(t.generation, NASTY)),
                                      text=True, capture_output=True)
                self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)


class BashChecks:
    """Runs the rendered bash script with stubs; nothing outside a temp dir is touched.

    Mixed into one TestCase per generation (below); `generation` names it."""

    generation: str

    @property
    def template(self) -> Template:
        return Template(self.generation, "bash")

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
        script.write_text(render(self.template, values))
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
        secrets += [line.encode() for line in values.get("nginx_key_in", "").splitlines()
                    if len(line.strip()) >= 8]
        records = self.argv_records()
        self.assertTrue(records, "no command was logged: the wrappers did not run")
        for rec in records:
            joined = b"\0".join(rec)
            for secret in secrets:
                if secret.strip():
                    self.assertNotIn(secret, joined, f"secret on a command line: {rec!r}")

    def test_values_arrive_byte_for_byte_direct(self):
        for name, values in self.value_sets().items():
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

    def value_sets(self) -> dict[str, dict[str, str]]:
        return {name: for_generation(self.generation, v) for name, v in VALUE_SETS.items()}

    def test_service_mode_starts_unit_without_blocking(self):
        nasty = for_generation(self.generation, NASTY)
        config_dir, proc = self.run_script(nasty, mode="service")
        calls = [r[1:] for r in self.argv_records() if r[0].endswith(b"/systemctl")]
        self.assertEqual(calls, [[b"start", b"--no-block", b"kasm-bootstrap.service"]],
                         "must start the unit with --no-block (a blocking start deadlocks cloud-final)")
        self.assertFalse(self.capture.exists(), "service mode must not run the binary itself")
        self.assertEqual(self.read_dir(config_dir), expected_files(nasty))
        self.check_no_secret_on_argv(nasty)
        self.assertNotIn(nasty["manager_token"], proc.stdout + proc.stderr)

    def test_rerun_replaces_previous_values(self):
        self.run_script(for_generation(self.generation, NASTY), mode="service")
        second = for_generation(self.generation, ONE_LINE_PEM)
        config_dir, _ = self.run_script(second, mode="service")
        self.assertEqual(self.read_dir(config_dir), expected_files(second))

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


class CloudConfigChecks:
    """Mixed into one TestCase per generation (below); `generation` names it."""

    generation: str

    @property
    def template(self) -> Template:
        return Template(self.generation, "cloud-config")

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
        src.write_text(render(self.template, values))
        helper = self.tmp / "helper.py"
        helper.write_text(CLOUD_INIT_HELPER)
        proc = subprocess.run([self.python, str(helper), str(src), str(out)], capture_output=True, text=True)
        self.assertEqual(proc.returncode, 0, f"cloud-init processing failed:\n{proc.stderr}")
        return out

    def test_schema_valid(self):
        out = self.apply(for_generation(self.generation, NASTY))
        proc = subprocess.run(["cloud-init", "schema", "--config-file", str(out / "rendered.yaml")],
                              capture_output=True, text=True)
        self.assertEqual(proc.returncode, 0, f"cloud-init schema rejected the rendered config:\n"
                                             f"{proc.stdout}{proc.stderr}")
        self.assertIn("Valid cloud-config", proc.stdout + proc.stderr)

    def test_values_arrive_byte_for_byte(self):
        for name, values in VALUE_SETS.items():
            values = for_generation(self.generation, values)
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
        for var in ("server_hostname", "nginx_key_in"):
            if var not in GENERATION_VARIABLES[self.generation]:
                continue
            with self.subTest(variable=var):
                out = self.apply(for_generation(self.generation, dict(NASTY, **{var: "a\r\nb"})), var)
                got = (out / "root" / "run" / "kasm-bootstrap" / "config.d" / KEY_FOR_VARIABLE[var]).read_text()
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


class RealBinaryChecks:
    """The rendered values, through each template, into the real `kasm-bootstrap plan`.

    Mixed into one TestCase per generation (below); `generation` names it."""

    generation: str

    def setUp(self):
        if not (DEV_BINARY.is_file() and os.access(DEV_BINARY, os.X_OK)):
            self.skipTest(f"{DEV_BINARY} not built (cmake --preset dev && cmake --build --preset dev): "
                          f"skipping the end-to-end check against the real binary")
        self.tmp = Path(tempfile.mkdtemp(prefix="kb-template-real-"))
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.pem = make_test_pem(self.tmp)
        self.values = for_generation(self.generation, {
            "server_id": "3fa2c6e4-9b1d-4f7e-8a55-0c6d2e1f9a10",
            "manager_token": "tok'en\"$USER`id`\\x{}{{ }}%s-0123456789",
            "upstream_auth_address": "kasm-manager.example.com",
            "provider_name": "AWS",
            "server_hostname": "kasm-agent-1",
            "server_external_fqdn": "None",
            "nginx_cert_in": self.pem[0] if self.pem else "",
            "nginx_key_in": self.pem[1] if self.pem else "",
        })
        self.passes_cert = "nginx_cert_in" in self.values

    def config_dir_from(self, variant: str, values) -> tuple[Path, object]:
        """Runs the variant's template; returns the config directory and the helper to clean up."""
        if variant == "bash":
            helper = BASH_CLASSES[self.generation]("test_service_mode_starts_unit_without_blocking")
            helper.setUp()
            return helper.run_script(values, mode="service")[0], helper
        helper = CLOUD_CONFIG_CLASSES[self.generation]("test_schema_valid")
        helper.setUp()  # skips without cloud-init
        return helper.apply(values) / "root" / "run" / "kasm-bootstrap" / "config.d", helper

    def test_plan_sees_values_from_bash_variant(self):
        config_dir, helper = self.config_dir_from("bash", self.values)
        try:
            self.check_plan(config_dir)
        finally:
            helper.doCleanups()

    def test_plan_sees_values_from_cloud_config_variant(self):
        config_dir, helper = self.config_dir_from("cloud-config", self.values)
        try:
            self.check_plan(config_dir)
        finally:
            helper.doCleanups()

    def test_certificate_pair_in_the_image_defaults(self):
        # Where the user-data carries no pair (1.17+: Kasm passes none), a pair in the image
        # defaults is the agent's certificate, as the template's header says; where it does
        # (up to 1.16), the pair Kasm rendered wins over the image's, key by key.
        image_dir = self.tmp / "image-pem"
        image_dir.mkdir()
        image_pem = make_test_pem(image_dir)
        if not (self.pem and image_pem):
            self.skipTest("openssl not available to make test certificates")
        for variant in VARIANT_FILES:
            with self.subTest(variant=variant):
                config_dir, helper = self.config_dir_from(variant, self.values)
                try:
                    doc = self.check_plan(config_dir, image_pair=image_pem)
                    config, origins = doc["config"], doc.get("origins") or {}
                    want, origin = (self.pem, str(config_dir)) if self.passes_cert else \
                        (image_pem, "/etc/kasm-bootstrap/config.json")
                    self.assertEqual((config.get("nginx_cert") or "").strip(), want[0].strip())
                    self.assertEqual(config.get("nginx_key"), "****", "nginx_key not redacted")
                    if isinstance(origins, dict):
                        for key in ("nginx_cert", "nginx_key"):
                            self.assertIn(origin, str(origins.get(key)), f"origin of {key}")
                finally:
                    helper.doCleanups()

    def check_plan(self, config_dir: Path, image_pair: tuple[str, str] | None = None):
        values, pem = self.values, self.pem
        # The image defaults the AMI build writes (packer/), read under --root.
        root = self.tmp / "root"
        shutil.rmtree(root, ignore_errors=True)
        (root / "etc" / "kasm-bootstrap").mkdir(parents=True)
        defaults = {
            "release_url": "https://kasm-static-content.s3.amazonaws.com/kasm_release_1.16.1.tar.gz",
            "release_sha256": "0" * 64,
            "cache_dir": "/var/cache/kasm-bootstrap",
            "swap_size": "auto",
        }
        if image_pair:
            defaults.update(nginx_cert=image_pair[0], nginx_key=image_pair[1])
        (root / "etc" / "kasm-bootstrap" / "config.json").write_text(json.dumps(defaults))
        env = {k: v for k, v in os.environ.items() if not k.startswith("KASM_BOOTSTRAP_")}
        proc = subprocess.run([str(DEV_BINARY), "plan", "--config", str(config_dir), "--root", str(root),
                               "--output", "json"], capture_output=True, text=True, env=env, timeout=120)
        out = proc.stdout + proc.stderr
        self.assertNotIn(values["manager_token"], out, "manager token printed by kasm-bootstrap plan")
        for key_pem in (pem, image_pair):
            if key_pem:
                self.assertNotIn(key_pem[1].splitlines()[1], out, "private key printed by kasm-bootstrap plan")
        try:
            doc = json.loads(proc.stdout)
        except json.JSONDecodeError as e:
            self.fail(f"plan --output json did not print one JSON document (exit {proc.returncode}): {e}\n{out}")
        self.assertEqual(proc.returncode, 0, f"kasm-bootstrap plan failed:\n{out}")
        config = doc.get("config") if isinstance(doc.get("config"), dict) else None
        if config is None:  # no "config" object: look for the keys anywhere
            config = {k: next(iter(find_key(doc, k)), None) for k in KEY_FOR_VARIABLE.values()}
            doc = dict(doc, config=config)
        self.assertEqual(config.get("manager_token"), "****", f"manager_token not redacted:\n{proc.stdout}")
        self.assertEqual(config.get("server_id"), values["server_id"])
        self.assertEqual(config.get("manager_address"), values["upstream_auth_address"])
        self.assertEqual(config.get("provider"), values["provider_name"])
        self.assertEqual(config.get("server_hostname"), values["server_hostname"])
        self.assertIn(config.get("external_fqdn"), ("", None), "external_fqdn 'None' must mean unset")
        if pem and self.passes_cert:  # the user-data's pair
            self.assertIn("-----BEGIN CERTIFICATE-----", config.get("nginx_cert") or "")
            self.assertEqual(config.get("nginx_key"), "****", "nginx_key not redacted")
        elif not image_pair:
            self.assertIn(config.get("nginx_cert"), ("", None),
                          f"{self.generation}: no certificate in the user-data, none expected")
        origins = doc.get("origins")
        if isinstance(origins, dict):  # each rendered value came from the directory
            for key in ("server_id", "manager_address", "provider"):
                self.assertIn(str(config_dir), str(origins.get(key)), f"origin of {key}")
        return doc


# One TestCase class per generation and check family, named after the generation
# (BashVariant_kasm_1_17_1_18 ...), so `-v` shows which template a failure is about.
BASH_CLASSES: dict[str, type] = {}
CLOUD_CONFIG_CLASSES: dict[str, type] = {}
for _generation in GENERATION_VARIABLES:
    for _family, _mixin, _registry in (("BashVariant", BashChecks, BASH_CLASSES),
                                       ("CloudConfigVariant", CloudConfigChecks, CLOUD_CONFIG_CLASSES),
                                       ("RealBinary", RealBinaryChecks, None)):
        _name = f"{_family}_{slug(_generation)}"
        _cls = type(_name, (_mixin, unittest.TestCase), {"generation": _generation, "__module__": __name__})
        globals()[_name] = _cls
        if _registry is not None:
            _registry[_generation] = _cls
del _generation, _family, _mixin, _registry, _name, _cls

if __name__ == "__main__":
    unittest.main(verbosity=2)
