#!/usr/bin/env python3
"""Tests for the startup-script templates in cloud-init/, one set per VM provider and Kasm generation.

Kasm renders the text an operator pastes into the VM Provider "Startup Script" field with
Python's str.format(**variables), and which variables it passes depends on the release
(up to 1.16 also nginx_cert_in and nginx_key_in, from 1.17 not) and, for KubeVirt/Harvester,
on the provider (also ssh_key). A template that names a variable its Kasm does not pass
fails to render (KeyError), so each provider and generation has its own templates
(cloud-init/kasm-1.15-1.16/ and cloud-init/kasm-1.17-1.18/ for AWS,
cloud-init/<provider>/<generation>/ for the others; written by cloud-init/generate.py from
cloud-init/*.in; docs/providers.md). For every template these tests:

  * check it is what cloud-init/generate.py writes from its source (not stale);
  * collect its field names with string.Formatter().parse and compare them with exactly
    the variables Kasm passes that provider in that generation (a missing name, an extra
    one such as nginx_cert_in in a 1.17 template or ssh_key outside KubeVirt, a repeated
    one, or a conversion/format spec is a failure), render it with exactly those
    variables, check that leaving any one out raises KeyError, and that a planted name
    Kasm does not pass makes the render fail;
  * render it exactly that way with hostile values (quotes, $HOME, $(id), backticks,
    backslashes, braces, multi-line PEM, "None"), then run what cloud-init would run and
    check that every value reaches kasm-bootstrap byte for byte, together with the
    provider's address_sources, and that the manager token never appears on a command line:
      - startup-script.sh: run with bash, with PATH reduced to logging wrappers around
        the few external commands it needs and a stub in place of kasm-bootstrap/systemctl;
      - startup-cloud-config.yaml: rendered with cloud-init's own Jinja renderer, checked
        with `cloud-init schema --config-file`, and its write_files applied with
        cloud-init's own module into a temp dir (skipped, with a message, when cloud-init
        is not installed); for KubeVirt also the guest agent and the admin user with the
        SSH key Kasm rendered;
  * check the rendered user-data fits the provider's user-data size limit;
  * when the dev build exists (build/dev/kasm-bootstrap, or KB_DEV_BINARY), feed the
    resulting config directory to `kasm-bootstrap plan --config DIR --root TMP --output json`.

Standard library only; cloud-init's modules are used through cloud-init's own Python
interpreter in a subprocess. Nothing outside temp dirs is touched, and nothing talks to
the network.

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

# Every variable Kasm may pass to str.format, and the config key each one feeds (ssh_key
# feeds none: it becomes the KubeVirt admin user's authorized key).
KEY_FOR_VARIABLE = {
    "server_id": "server_id",
    "manager_token": "manager_token",
    "upstream_auth_address": "manager_address",
    "provider_name": "provider",
    "server_hostname": "server_hostname",
    "server_external_fqdn": "external_fqdn",
    "nginx_cert_in": "nginx_cert",
    "nginx_key_in": "nginx_key",
    "ssh_key": None,
}

# Exactly the variables Kasm renders, per provider and generation (kasmtech/workspaces-
# autoscale-startup-scripts; docs/providers.md cites each file): the six of every
# docker_agents/ubuntu.sh and README.md (one script for every provider: "We attempt to have
# a single script that will work on any of the supported cloud providers", README.md),
# plus the Autoscale config's Nginx Cert/Key fields up to 1.16 ("In 1.17.0 the
# nginx_cert_in and nginx_key_in were removed"), plus ssh_key for KubeVirt/Harvester only
# (docker_agents/cloud-config.yaml, from 1.16.0/). Kept here, not taken from
# cloud-init/generate.py, so the test states Kasm's facts on its own.
COMMON_VARIABLES = frozenset({"server_hostname", "server_external_fqdn", "manager_token",
                              "upstream_auth_address", "server_id", "provider_name"})
CERT_VARIABLES = frozenset({"nginx_cert_in", "nginx_key_in"})
SSH_KEY = frozenset({"ssh_key"})
CLOUDS = ("aws", "azure", "gcp", "oci", "digitalocean")
KASM_VARIABLES = {
    **{(p, "kasm-1.15-1.16"): COMMON_VARIABLES | CERT_VARIABLES for p in CLOUDS},
    **{(p, "kasm-1.17-1.18"): COMMON_VARIABLES for p in CLOUDS},
    ("kubevirt", "kasm-1.16"): COMMON_VARIABLES | CERT_VARIABLES | SSH_KEY,
    ("kubevirt", "kasm-1.17-1.18"): COMMON_VARIABLES | SSH_KEY,
}
# Which Kasm versions each generation directory is for (its header must say so).
GENERATION_VERSIONS = {"kasm-1.15-1.16": "1.15 and 1.16", "kasm-1.16": "1.16", "kasm-1.17-1.18": "1.17 and 1.18"}
# Our choices per provider: where its copies live, the name its header gives, its variants
# and the address chain it hands kasm-bootstrap (keys that exist today, docs/configuration.md).
PROVIDER_DIRS = {"aws": "", "azure": "azure/", "gcp": "gcp/", "oci": "oci/", "digitalocean": "digitalocean/",
                 "kubevirt": "kubevirt/"}
PROVIDER_NAMES = {"aws": "AWS", "azure": "Azure", "gcp": "Google Cloud (GCP)", "oci": "Oracle Cloud (OCI)",
                  "digitalocean": "DigitalOcean", "kubevirt": "KubeVirt/Harvester"}
ADDRESS_SOURCES = {
    "aws": ["aws-imds", "route", "first-global"],
    "azure": ["azure", "route", "first-global"],
    "gcp": ["gcp", "route", "first-global"],
    "oci": ["oci", "route", "first-global"],
    "digitalocean": ["digitalocean", "route", "first-global"],
    "kubevirt": ["route", "first-global"],
}
# User-data size limits Kasm lists per platform (README.md, "Startup Script Size Limits");
# None = no fixed cap (KubeVirt: a Kubernetes Secret).
USERDATA_LIMIT = {"aws": 16384, "oci": 16384, "azure": 65536, "digitalocean": 65536, "gcp": 262144,
                  "kubevirt": None}
VARIANT_FILES = {"bash": "startup-script.sh", "cloud-config": "startup-cloud-config.yaml"}


def generations(provider: str) -> list[str]:
    """The provider's generations, older first."""
    return [g for p, g in KASM_VARIABLES if p == provider]


@dataclass(frozen=True)
class Template:
    provider: str
    generation: str
    variant: str  # "bash" | "cloud-config"

    @property
    def path(self) -> Path:
        return CLOUD_INIT / f"{PROVIDER_DIRS[self.provider]}{self.generation}" / VARIANT_FILES[self.variant]

    @property
    def variables(self) -> frozenset[str]:
        return KASM_VARIABLES[(self.provider, self.generation)]

    @property
    def name(self) -> str:
        return str(self.path.relative_to(CLOUD_INIT))


# KubeVirt has the cloud-config variant only (Kasm's own template for it is one).
TEMPLATES = [Template(p, g, v) for p, g in KASM_VARIABLES for v in VARIANT_FILES
             if not (p == "kubevirt" and v == "bash")]


def slug(*parts: str) -> str:
    return "_".join(re.sub(r"[^0-9A-Za-z]+", "_", p) for p in parts)


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
        problems.append(f"names {extra}, which this provider's Kasm of this generation does not pass (KeyError "
                        f"when Kasm renders it; double a literal brace)")
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
    "ssh_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5'\"$(id)`id`\\ {ssh_key} {{ }} # kasm: - !x &a *b |>",
}
# Kasm may hand PEM over as one line with literal \n sequences; blank = keep self-signed.
ONE_LINE_PEM = dict(NASTY, nginx_cert_in=FAKE_PEM_CERT.replace("\n", "\\n"), nginx_key_in="",
                    server_external_fqdn="agent-1.kasm.example.com",
                    ssh_key="  ssh-rsa AAAAB3NzaC1yc2E= first\nssh-ed25519 AAAAC3NzaC1 second\n\n")
EMPTY = {v: "" for v in KEY_FOR_VARIABLE}
TRAILING = dict(NASTY, server_id="ends-with-newline\n", provider_name="\n\nleading-newlines",
                server_hostname="tab\there", ssh_key="ssh-ed25519 AAAA tab\there\n")

VALUE_SETS = {"nasty": NASTY, "one_line_pem": ONE_LINE_PEM, "empty": EMPTY, "trailing": TRAILING}


def for_kasm(provider: str, generation: str, values: dict[str, str]) -> dict[str, str]:
    """The values, limited to exactly what that provider's Kasm of that generation passes."""
    return {k: v for k, v in values.items() if k in KASM_VARIABLES[(provider, generation)]}


# External commands startup-script.sh may run (everything else must be a bash builtin).
ALLOWED_COMMANDS = ["cat", "mkdir", "mktemp", "mv", "rm", "chmod", "dirname"]


def render(template: Template, values: dict[str, str]) -> str:
    """Exactly what Kasm does."""
    return template.path.read_text().format(**values)


def expected_files(provider: str, values: dict[str, str]) -> dict[str, str]:
    """Each key's file holds the value plus the one trailing newline kasm-bootstrap strips;
    address_sources is the provider's chain."""
    files = {KEY_FOR_VARIABLE[var]: value + "\n" for var, value in values.items() if KEY_FOR_VARIABLE[var]}
    files["address_sources"] = ",".join(ADDRESS_SOURCES[provider]) + "\n"
    return files


def write_exe(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o755)


class Generated(unittest.TestCase):
    """cloud-init/**/startup-* is what cloud-init/generate.py writes from cloud-init/*.in."""

    def test_generated_templates_are_current(self):
        outputs = load_generator().outputs()
        for path, text in outputs.items():
            with self.subTest(path=str(path.relative_to(REPO))):
                self.assertTrue(path.is_file(), f"{path} missing: run python3 cloud-init/generate.py")
                self.assertEqual(path.read_text(), text,
                                 f"{path.relative_to(REPO)} is stale or edited by hand: edit its "
                                 f"source in cloud-init/*.in, then run python3 cloud-init/generate.py")

    def test_every_template_is_tested_and_every_provider_generated(self):
        on_disk = sorted(p for p in CLOUD_INIT.rglob("*") if p.is_file() and p.parent != CLOUD_INIT)
        self.assertEqual(on_disk, sorted(t.path for t in TEMPLATES),
                         "every file under cloud-init/<provider>/<generation>/ must be in TEMPLATES (and so tested)")
        self.assertEqual(sorted(load_generator().outputs()), sorted(t.path for t in TEMPLATES),
                         "cloud-init/generate.py and this test must know the same providers and generations")
        self.assertEqual(len(TEMPLATES), 22, "5 clouds x 2 generations x 2 variants + KubeVirt's 2 cloud-configs")

    def test_aws_keeps_its_original_paths(self):
        # The .deb (cmake/Packaging.cmake, scripts/build-deb.sh) and the docs name them.
        for generation in ("kasm-1.15-1.16", "kasm-1.17-1.18"):
            for file in VARIANT_FILES.values():
                self.assertEqual(Template("aws", generation, "bash").path.parent / file,
                                 CLOUD_INIT / generation / file)
                self.assertTrue((CLOUD_INIT / generation / file).is_file())

    def test_generator_variables_agree_with_kasm_facts(self):
        # The generator says per provider which variables Kasm passes (its header paragraph
        # comes from that); it must match the facts stated here.
        gen = load_generator()
        for (provider, generation), expected in KASM_VARIABLES.items():
            with self.subTest(provider=provider, generation=generation):
                self.assertEqual(frozenset(gen.variables(provider, generation)), expected)

    def test_header_names_its_kasm_versions_provider_and_variables(self):
        for t in TEMPLATES:
            with self.subTest(template=t.name):
                header = t.path.read_text().split("\n\n", 1)[0]
                self.assertIn(f"For Kasm Workspaces {GENERATION_VERSIONS[t.generation]} (", header)
                self.assertIn(f"# VM provider: {PROVIDER_NAMES[t.provider]}.\n", header)
                flat = " ".join(line.lstrip("# ") for line in header.splitlines())
                self.assertIn(", ".join(n for n in ("server_hostname", "server_external_fqdn", "manager_token",
                                                    "upstream_auth_address", "server_id", "provider_name",
                                                    "nginx_cert_in", "nginx_key_in", "ssh_key")
                                        if n in t.variables) + ".", flat)
                if t.provider == "kubevirt":
                    self.assertIn("AWS's set plus ssh_key", flat)
                elif t.provider != "aws":
                    self.assertIn("the same set as AWS", flat)
                self.assertIn(f"address_sources below is {','.join(ADDRESS_SOURCES[t.provider])},", flat)

    def test_generator_refuses_bad_directives(self):
        gen = load_generator()
        tmp = Path(tempfile.mkdtemp(prefix="kb-generate-test-"))
        self.addCleanup(shutil.rmtree, tmp, ignore_errors=True)
        cases = {
            "unknown flag": "#% if nonsense\nx\n#% endif\n",
            "endif without if": "x\n#% endif\n",
            "if without endif": "#% if cert\nx\n",
            "unknown token": "@NO_SUCH_TOKEN@\n",
        }
        for name, text in cases.items():
            with self.subTest(case=name):
                (tmp / "t.in").write_text(text)
                with self.assertRaises(ValueError):
                    gen.render(str(Path(os.path.relpath(tmp, CLOUD_INIT)) / "t.in"), "aws", "kasm-1.17-1.18")
        (tmp / "t.in").write_text("#% if cert\n#% if not ssh_key\nA\n#% else\nB\n#% endif\n#% else\nC\n#% endif\n")
        rel = str(Path(os.path.relpath(tmp, CLOUD_INIT)) / "t.in")
        self.assertEqual(gen.render(rel, "aws", "kasm-1.15-1.16"), "A\n")
        self.assertEqual(gen.render(rel, "kubevirt", "kasm-1.16"), "B\n")
        self.assertEqual(gen.render(rel, "kubevirt", "kasm-1.17-1.18"), "C\n")


class TemplateVariables(unittest.TestCase):
    """Each template names exactly the variables its provider's Kasm of its generation passes."""

    def test_fields_are_exactly_kasms_variables_once_each(self):
        for t in TEMPLATES:
            with self.subTest(template=t.name):
                problems = variable_problems(t.path.read_text(), t.variables)
                self.assertEqual(problems, [], f"{t.name}: " + "; ".join(problems))

    def test_renders_with_exactly_kasms_variables(self):
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

    def test_a_variable_kasm_does_not_pass_fails_to_render(self):
        # What happens to a template that names one name too many: Kasm's render fails.
        for t in TEMPLATES:
            foreign = sorted(set(KEY_FOR_VARIABLE) - t.variables) + ["server_name"]  # 1.12's name
            for name in foreign:
                with self.subTest(template=t.name, planted=name):
                    planted = t.path.read_text() + "\n# {" + name + "}\n"
                    with self.assertRaises(KeyError) as caught:
                        planted.format(**{v: "X" for v in t.variables})
                    self.assertEqual(caught.exception.args, (name,))

    def test_older_template_fails_on_newer_kasm(self):
        # The failure the generations exist for: a 1.15-1.16 template on Kasm 1.17+.
        for t in TEMPLATES:
            order = generations(t.provider)
            for newer in order[order.index(t.generation) + 1:]:
                gone = t.variables - KASM_VARIABLES[(t.provider, newer)]
                self.assertTrue(gone)
                with self.subTest(template=t.name, kasm=newer):
                    with self.assertRaises(KeyError) as caught:
                        render(t, {v: "X" for v in KASM_VARIABLES[(t.provider, newer)]})
                    self.assertIn(caught.exception.args[0], gone)

    def test_newer_template_renders_on_older_kasm(self):
        # str.format ignores keyword arguments a template does not name: the header's
        # claim that a 1.17-1.18 file also renders on older Kasm (without their cert fields).
        for t in TEMPLATES:
            order = generations(t.provider)
            for older in order[:order.index(t.generation)]:
                with self.subTest(template=t.name, kasm=older):
                    self.assertEqual(render(t, {v: "X" for v in KASM_VARIABLES[(t.provider, older)]}),
                                     render(t, {v: "X" for v in t.variables}))

    def test_kubevirt_template_fails_elsewhere_and_others_render_on_kubevirt(self):
        # ssh_key is passed to KubeVirt only: its template cannot be pasted elsewhere, while
        # any cloud's template would render on KubeVirt (it just ignores ssh_key).
        for t in (t for t in TEMPLATES if t.provider == "kubevirt"):
            for cloud in CLOUDS:
                generation = "kasm-1.15-1.16" if t.generation == "kasm-1.16" else t.generation
                with self.subTest(template=t.name, provider=cloud):
                    with self.assertRaises(KeyError) as caught:
                        render(t, {v: "X" for v in KASM_VARIABLES[(cloud, generation)]})
                    self.assertEqual(caught.exception.args, ("ssh_key",))
        for t in (t for t in TEMPLATES if t.provider != "kubevirt"):
            kubevirt = "kasm-1.16" if t.generation == "kasm-1.15-1.16" else t.generation
            with self.subTest(template=t.name, provider="kubevirt"):
                render(t, {v: "X" for v in KASM_VARIABLES[("kubevirt", kubevirt)]})

    def test_checker_catches_planted_mistakes(self):
        # variable_problems itself, on the mistakes it exists for.
        for t in (Template("aws", "kasm-1.17-1.18", "bash"), Template("kubevirt", "kasm-1.17-1.18", "cloud-config")):
            text = t.path.read_text()
            cases = {
                "cert variable left in a 1.17 template": text + "\n{nginx_cert_in}\n",
                "variable dropped": text.replace("{server_id}", "server_id"),
                "variable twice": text + "\n{manager_token}\n",
                "format spec": text.replace("{server_id}", "{server_id!r}"),
                "single brace": text + "\n}\n",
                "positional field": text + "\n{}\n",
            }
            if t.provider == "kubevirt":
                cases["ssh_key dropped"] = text.replace("{ssh_key}", "ssh_key")
            else:
                cases["ssh_key named"] = text + "\n{ssh_key}\n"
            for name, planted in cases.items():
                with self.subTest(template=t.name, mistake=name):
                    self.assertNotEqual(variable_problems(planted, t.variables), [])


def realistic_values(t: Template) -> dict[str, str]:
    """Values of the size Kasm passes: a UUID, a 40-character token, an RSA-2048 pair's size."""
    cert = "-----BEGIN CERTIFICATE-----\n" + ("A" * 64 + "\n") * 19 + "-----END CERTIFICATE-----\n"
    key = "-----BEGIN PRIVATE KEY-----\n" + ("B" * 64 + "\n") * 26 + "-----END PRIVATE KEY-----\n"
    return for_kasm(t.provider, t.generation, {
        "server_id": "3fa2c6e4-9b1d-4f7e-8a55-0c6d2e1f9a10",
        "manager_token": "x" * 40,
        "upstream_auth_address": "kasm-manager.internal.example.com",
        "provider_name": t.provider,
        "server_hostname": "kasm-agent-" + "a" * 20,
        "server_external_fqdn": "kasm-agent-" + "a" * 20 + ".kasm.example.com",
        "nginx_cert_in": cert,
        "nginx_key_in": key,
        "ssh_key": "ssh-rsa " + "C" * 544 + " admin@example.com",
    })


class UserDataSize(unittest.TestCase):
    def test_rendered_template_fits_the_providers_user_data_limit(self):
        for t in TEMPLATES:
            limit = USERDATA_LIMIT[t.provider]
            if limit is None:
                continue
            with self.subTest(template=t.name, limit=limit):
                size = len(render(t, realistic_values(t)).encode())
                # Room left for a bigger certificate chain: at least 4 KiB below the limit.
                self.assertLess(size, limit - 4096, f"{t.name} renders to {size} bytes, limit {limit}")


class TemplateSyntax(unittest.TestCase):
    def test_rendered_bash_parses(self):
        for t in (t for t in TEMPLATES if t.variant == "bash"):
            for name, values in VALUE_SETS.items():
                with self.subTest(template=t.name, values=name):
                    proc = subprocess.run(["bash", "-n"], input=render(t, for_kasm(t.provider, t.generation, values)),
                                          text=True, capture_output=True)
                    self.assertEqual(proc.returncode, 0, proc.stderr)

    def test_rendered_bash_passes_shellcheck(self):
        if not shutil.which("shellcheck"):
            self.skipTest("shellcheck not installed (apt-get install shellcheck): skipping lint of the rendered script")
        for t in (t for t in TEMPLATES if t.variant == "bash"):
            with self.subTest(template=t.name):
                proc = subprocess.run(["shellcheck", "-s", "bash", "-"],
                                      input=render(t, for_kasm(t.provider, t.generation, NASTY)),
                                      text=True, capture_output=True)
                self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)


class BashChecks:
    """Runs the rendered bash script with stubs; nothing outside a temp dir is touched.

    Mixed into one TestCase per provider and generation (below); `provider` and
    `generation` name it."""

    provider: str
    generation: str

    @property
    def template(self) -> Template:
        return Template(self.provider, self.generation, "bash")

    def kasm(self, values: dict[str, str]) -> dict[str, str]:
        return for_kasm(self.provider, self.generation, values)

    def expected(self, values: dict[str, str]) -> dict[str, str]:
        return expected_files(self.provider, values)

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
                self.assertEqual(self.read_dir(self.capture), self.expected(values),
                                 "the stub did not receive the values intact")
                self.assertEqual(self.read_dir(config_dir), self.expected(values))
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
        return {name: self.kasm(v) for name, v in VALUE_SETS.items()}

    def test_service_mode_starts_unit_without_blocking(self):
        nasty = self.kasm(NASTY)
        config_dir, proc = self.run_script(nasty, mode="service")
        calls = [r[1:] for r in self.argv_records() if r[0].endswith(b"/systemctl")]
        self.assertEqual(calls, [[b"start", b"--no-block", b"kasm-bootstrap.service"]],
                         "must start the unit with --no-block (a blocking start deadlocks cloud-final)")
        self.assertFalse(self.capture.exists(), "service mode must not run the binary itself")
        self.assertEqual(self.read_dir(config_dir), self.expected(nasty))
        self.check_no_secret_on_argv(nasty)
        self.assertNotIn(nasty["manager_token"], proc.stdout + proc.stderr)

    def test_rerun_replaces_previous_values(self):
        self.run_script(self.kasm(NASTY), mode="service")
        second = self.kasm(ONE_LINE_PEM)
        config_dir, _ = self.run_script(second, mode="service")
        self.assertEqual(self.read_dir(config_dir), self.expected(second))

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
    """Mixed into one TestCase per provider and generation (below); `provider` and
    `generation` name it."""

    provider: str
    generation: str

    @property
    def template(self) -> Template:
        return Template(self.provider, self.generation, "cloud-config")

    def kasm(self, values: dict[str, str]) -> dict[str, str]:
        return for_kasm(self.provider, self.generation, values)

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
        out = self.apply(self.kasm(NASTY))
        proc = subprocess.run(["cloud-init", "schema", "--config-file", str(out / "rendered.yaml")],
                              capture_output=True, text=True)
        self.assertEqual(proc.returncode, 0, f"cloud-init schema rejected the rendered config:\n"
                                             f"{proc.stdout}{proc.stderr}")
        self.assertIn("Valid cloud-config", proc.stdout + proc.stderr)

    def test_values_arrive_byte_for_byte(self):
        for name, values in VALUE_SETS.items():
            values = self.kasm(values)
            with self.subTest(values=name):
                out = self.apply(values, name)
                d = out / "root" / "run" / "kasm-bootstrap" / "config.d"
                got = {p.name: p.read_bytes().decode() for p in sorted(d.iterdir())}
                self.assertEqual(got, expected_files(self.provider, values))
                for f in d.iterdir():
                    self.assertEqual(stat.S_IMODE(f.stat().st_mode), 0o600, f.name)
                other = json.loads((out / "other.json").read_text())
                start = [["systemctl", "start", "--no-block", "kasm-bootstrap.service"]]
                if self.provider == "kubevirt":
                    start = [["systemctl", "enable", "--now", "qemu-guest-agent.service"]] + start
                self.assertEqual(other["runcmd"], start)
                self.assertEqual(other["bootcmd"], [["install", "-d", "-m", "0700", "/run/kasm-bootstrap",
                                                     "/run/kasm-bootstrap/config.d"]])
                # No value on any command line (write_files never runs a command; users is
                # not a command either).
                commands = json.dumps([other.get("bootcmd"), other.get("runcmd")])
                for v in values.values():
                    if v.strip():
                        self.assertNotIn(json.dumps(v)[1:-1], commands)
                self.assertNotIn("manager_token", json.dumps(other.get("users", [])))
                if self.provider == "kubevirt":
                    self.check_kubevirt(other, values)
                else:
                    self.assertEqual(sorted(other), ["bootcmd", "runcmd"], "only kubevirt adds users or packages")

    def check_kubevirt(self, other, values):
        # Kasm's own Harvester/KubeVirt cloud-config: qemu-guest-agent and sudo installed,
        # user kasm-admin with the VM Provider config's SSH key.
        self.assertEqual(other["packages"], ["qemu-guest-agent", "sudo"])
        self.assertIs(other["package_update"], True)
        self.assertEqual(other["users"], [{
            "name": "kasm-admin", "shell": "/bin/bash", "lock_passwd": True, "sudo": "ALL=(ALL) NOPASSWD:ALL",
            "ssh_authorized_keys": [values["ssh_key"].rstrip("\n")],
        }], "the SSH key Kasm rendered, byte for byte but for trailing line breaks (|2-)")
        if values["manager_token"]:
            self.assertNotIn(values["manager_token"], json.dumps(other))

    def test_documented_limit_carriage_return(self):
        # Documented in the template: Jinja's indent filter splits lines on \r too.
        for var in ("server_hostname", "nginx_key_in"):
            if var not in KASM_VARIABLES[(self.provider, self.generation)]:
                continue
            with self.subTest(variable=var):
                out = self.apply(self.kasm(dict(NASTY, **{var: "a\r\nb"})), var)
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

    Mixed into one TestCase per provider and generation (below); `provider` and
    `generation` name it."""

    provider: str
    generation: str

    def setUp(self):
        if not (DEV_BINARY.is_file() and os.access(DEV_BINARY, os.X_OK)):
            # Where every suite must run (CI as root, scripts/test.sh), a missing binary is
            # a failure, as for the other suites (tests/support/test_support.hpp).
            if os.environ.get("KB_TEST_NO_SKIP") == "1":
                self.fail(f"{DEV_BINARY} does not exist and KB_TEST_NO_SKIP=1: the check against the real binary must run")
            self.skipTest(f"{DEV_BINARY} not built (cmake --preset dev && cmake --build --preset dev): "
                          f"skipping the end-to-end check against the real binary")
        self.tmp = Path(tempfile.mkdtemp(prefix="kb-template-real-"))
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.pem = make_test_pem(self.tmp)
        self.values = for_kasm(self.provider, self.generation, {
            "server_id": "3fa2c6e4-9b1d-4f7e-8a55-0c6d2e1f9a10",
            "manager_token": "tok'en\"$USER`id`\\x{}{{ }}%s-0123456789",
            "upstream_auth_address": "kasm-manager.example.com",
            "provider_name": "AWS",
            "server_hostname": "kasm-agent-1",
            "server_external_fqdn": "None",
            "nginx_cert_in": self.pem[0] if self.pem else "",
            "nginx_key_in": self.pem[1] if self.pem else "",
            "ssh_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG admin@example.com",
        })
        self.passes_cert = "nginx_cert_in" in self.values

    def config_dir_from(self, variant: str, values) -> tuple[Path, object]:
        """Runs the variant's template; returns the config directory and the helper to clean up."""
        if variant == "bash":
            helper = BASH_CLASSES[(self.provider, self.generation)]("test_service_mode_starts_unit_without_blocking")
            helper.setUp()
            return helper.run_script(values, mode="service")[0], helper
        helper = CLOUD_CONFIG_CLASSES[(self.provider, self.generation)]("test_schema_valid")
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
            if self.provider == "kubevirt" and variant == "bash":
                continue
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
            # Never a real metadata service: plan only describes the lookups, but be sure.
            "imds_endpoint": "http://127.0.0.1:9",
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
        # The provider's address chain, as the template wrote it, is what kasm-bootstrap uses.
        self.assertEqual(config.get("address_sources"), ADDRESS_SOURCES[self.provider])
        self.assertIn("find the agent address: first of " + ", ".join(ADDRESS_SOURCES[self.provider]) + " (",
                      proc.stdout, "plan does not describe the provider's address chain")
        if pem and self.passes_cert:  # the user-data's pair
            self.assertIn("-----BEGIN CERTIFICATE-----", config.get("nginx_cert") or "")
            self.assertEqual(config.get("nginx_key"), "****", "nginx_key not redacted")
        elif not image_pair:
            self.assertIn(config.get("nginx_cert"), ("", None),
                          f"{self.generation}: no certificate in the user-data, none expected")
        origins = doc.get("origins")
        if isinstance(origins, dict):  # each rendered value came from the directory
            for key in ("server_id", "manager_address", "provider", "address_sources"):
                self.assertIn(str(config_dir), str(origins.get(key)), f"origin of {key}")
        return doc


# One TestCase class per provider, generation and check family, named after them
# (BashVariant_azure_kasm_1_17_1_18 ...), so `-v` shows which template a failure is about.
BASH_CLASSES: dict[tuple[str, str], type] = {}
CLOUD_CONFIG_CLASSES: dict[tuple[str, str], type] = {}
for _provider, _generation in KASM_VARIABLES:
    for _family, _mixin, _registry in (("BashVariant", BashChecks, BASH_CLASSES),
                                       ("CloudConfigVariant", CloudConfigChecks, CLOUD_CONFIG_CLASSES),
                                       ("RealBinary", RealBinaryChecks, None)):
        if _provider == "kubevirt" and _mixin is BashChecks:
            continue
        _name = f"{_family}_{slug(_provider, _generation)}"
        _attrs = {"provider": _provider, "generation": _generation, "__module__": __name__}
        if _provider == "kubevirt" and _mixin is RealBinaryChecks:  # no bash variant to feed it
            _attrs["test_plan_sees_values_from_bash_variant"] = None
        _cls = type(_name, (_mixin, unittest.TestCase), _attrs)
        globals()[_name] = _cls
        if _registry is not None:
            _registry[(_provider, _generation)] = _cls
del _provider, _generation, _family, _mixin, _registry, _name, _attrs, _cls

if __name__ == "__main__":
    unittest.main(verbosity=2)
