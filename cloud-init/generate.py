#!/usr/bin/env python3
"""Writes the startup-script templates of every VM provider and Kasm generation from their one source.

Kasm renders the "Startup Script" field of a VM Provider config with str.format(**variables),
and a template naming a variable Kasm does not pass fails to render (KeyError). Which
variables Kasm passes depends on the Kasm release and, for one provider, on the provider
(docs/providers.md says where each fact comes from):

  - every provider, every release: server_hostname, server_external_fqdn, manager_token,
    upstream_auth_address, server_id, provider_name;
  - up to 1.16 also nginx_cert_in and nginx_key_in, from 1.17 not;
  - KubeVirt/Harvester also ssh_key (Kasm's own template for it is a cloud-config that
    installs qemu-guest-agent and creates an admin user with that key); Kasm's scripts
    name KubeVirt from 1.16 on, so its oldest generation is 1.16 alone.

What else differs per provider is ours: the address_sources chain handed to kasm-bootstrap
(the provider's metadata service first, then the default route), the header, and for
KubeVirt the guest agent and the admin user. So each variant has one source here and this
script writes one copy per provider and generation (rather than twenty hand-kept files
that share all but a dozen lines; a fix to the quoting or the start logic must reach
every one of them):

    cloud-init/startup-script.sh.in         -> cloud-init/<provider dir><generation>/startup-script.sh
    cloud-init/startup-cloud-config.yaml.in -> cloud-init/<provider dir><generation>/startup-cloud-config.yaml

AWS keeps its original directories (cloud-init/kasm-1.15-1.16/, cloud-init/kasm-1.17-1.18/:
the .deb, the Packer docs and operators' links name them); every other provider has its own
(cloud-init/azure/kasm-1.17-1.18/ ...). KubeVirt has the cloud-config variant only.

Source syntax (line based, nothing else is touched, so Kasm's doubled braces pass through):
  - a line `#% if FLAG` or `#% if not FLAG`, `#% else`, `#% endif` (leading spaces
    allowed, nesting allowed) keeps the lines between only where FLAG holds (or does not);
    FLAG is `cert` (Kasm passes nginx_cert_in and nginx_key_in), `ssh_key` (Kasm passes
    ssh_key: KubeVirt), `bash` (this provider also has the bash variant) or `aws`; the
    directive lines themselves are dropped;
  - @KASM_VERSIONS@, @VARIABLE_COUNT@, @GENERATION@, @PROVIDER@, @PASTE_FIELD@,
    @ADDRESS_SOURCES@, @DIR@ (this copy's directory, cloud-init/...), @NEWER_DIR@,
    @OLDER_DIR@ and @OLDER_KASM@ (the provider's other generation) are replaced; a line that is exactly `# @GENERATED_NOTE@`
    becomes the note that names this script, `# @VARIABLES_NOTE@` the paragraph naming
    the variables Kasm passes (and how they differ from AWS's), `# @ADDRESS_NOTE@` the one
    on the address chain.

    python3 cloud-init/generate.py          # write the generated files
    python3 cloud-init/generate.py --check  # exit 1 and name the stale ones

tests/release/test_templates.py runs the same check (and then tests every generated file).
Standard library only.
"""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

HERE = Path(__file__).resolve().parent
BASH, CLOUD_CONFIG = "startup-script.sh.in", "startup-cloud-config.yaml.in"
SOURCES = (BASH, CLOUD_CONFIG)

COMMON_VARIABLES = ("server_hostname", "server_external_fqdn", "manager_token", "upstream_auth_address",
                    "server_id", "provider_name")
CERT_VARIABLES = ("nginx_cert_in", "nginx_key_in")

# Directory name -> what differs. `cert`: Kasm passes nginx_cert_in and nginx_key_in.
GENERATIONS = {
    "kasm-1.15-1.16": {
        "cert": True,
        "versions": "1.15 and 1.16 (Kasm passes nginx_cert_in and nginx_key_in)",
        "short": "1.15 and 1.16",
    },
    "kasm-1.16": {
        "cert": True,
        "versions": "1.16 (Kasm passes nginx_cert_in and nginx_key_in)",
        "short": "1.16",
    },
    "kasm-1.17-1.18": {
        "cert": False,
        "versions": "1.17 and 1.18 (Kasm no longer passes nginx_cert_in or nginx_key_in)",
        "short": "1.17 and 1.18",
    },
}

# Provider key -> what differs. `dir`: where its copies live under cloud-init/ ("" = the
# original AWS directories); `address_sources`: the chain written to config.d (the keys
# kasm-bootstrap knows today, docs/configuration.md); `ssh_key`: Kasm passes ssh_key.
PROVIDERS = {
    "aws": {
        "name": "AWS",
        "dir": "",
        "paste": "the VM Provider config's \"AWS: EC2 Startup Script\" field",
        "generations": ("kasm-1.15-1.16", "kasm-1.17-1.18"),
        "sources": SOURCES,
        "ssh_key": False,
        "address_sources": "aws-imds,route,first-global",
        "address_note": "the private IPv4 from the EC2 metadata service (IMDSv2), else the default route's source",
    },
    "azure": {
        "name": "Azure",
        "dir": "azure/",
        "paste": "the Azure VM Provider config's Startup Script field",
        "generations": ("kasm-1.15-1.16", "kasm-1.17-1.18"),
        "sources": SOURCES,
        "ssh_key": False,
        "address_sources": "azure,route,first-global",
        "address_note": "the private IPv4 from Azure's instance metadata service, else the default route's source",
    },
    "gcp": {
        "name": "Google Cloud (GCP)",
        "dir": "gcp/",
        "paste": "the Google Cloud VM Provider config's Startup Script field",
        "generations": ("kasm-1.15-1.16", "kasm-1.17-1.18"),
        "sources": SOURCES,
        "ssh_key": False,
        "address_sources": "gcp,route,first-global",
        "address_note": "the internal IPv4 from GCP's metadata server, else the default route's source",
    },
    "oci": {
        "name": "Oracle Cloud (OCI)",
        "dir": "oci/",
        "paste": "the Oracle Cloud VM Provider config's Startup Script field",
        "generations": ("kasm-1.15-1.16", "kasm-1.17-1.18"),
        "sources": SOURCES,
        "ssh_key": False,
        "address_sources": "oci,route,first-global",
        "address_note": "the first VNIC's private IPv4 from OCI's instance metadata service, else the default route's source",
    },
    "digitalocean": {
        "name": "DigitalOcean",
        "dir": "digitalocean/",
        "paste": "the Digital Ocean VM Provider config's Startup Script field",
        "generations": ("kasm-1.15-1.16", "kasm-1.17-1.18"),
        "sources": SOURCES,
        "ssh_key": False,
        "address_sources": "digitalocean,route,first-global",
        "address_note": "the Droplet's VPC (private) IPv4 from its metadata service, its public one without a VPC, "
                        "else the default route's source",
    },
    "kubevirt": {
        "name": "KubeVirt/Harvester",
        "dir": "kubevirt/",
        "paste": "the KubeVirt VM Provider config's Startup Script field",
        "generations": ("kasm-1.16", "kasm-1.17-1.18"),
        "sources": (CLOUD_CONFIG,),
        "ssh_key": True,
        "address_sources": "route,first-global",
        "address_note": "the default route's source address (KubeVirt has no metadata service kasm-bootstrap speaks)",
    },
}

NUMBERS = {6: "six", 7: "seven", 8: "eight", 9: "nine"}


def variables(provider: str, generation: str) -> tuple[str, ...]:
    """Exactly the names Kasm passes this provider in this generation, in template order."""
    names = COMMON_VARIABLES + (CERT_VARIABLES if GENERATIONS[generation]["cert"] else ())
    return names + (("ssh_key",) if PROVIDERS[provider]["ssh_key"] else ())


def directory(provider: str, generation: str) -> str:
    return f"cloud-init/{PROVIDERS[provider]['dir']}{generation}"


def vs_aws(provider: str, generation: str) -> str:
    if provider == "aws":
        return "the set every provider gets"
    extra = sorted(set(variables(provider, generation)) - set(COMMON_VARIABLES + CERT_VARIABLES))
    if extra:
        return f"AWS's set plus {', '.join(extra)}, which Kasm passes only to this provider"
    return "the same set as AWS: Kasm's stock script serves every provider"


def comment(text: str) -> list[str]:
    return textwrap.wrap(text, width=90, initial_indent="# ", subsequent_indent="# ", break_on_hyphens=False)


def note(source: str) -> list[str]:
    return [
        f"# Generated by cloud-init/generate.py from cloud-init/{source},",
        "# one copy per VM provider and Kasm generation: edit the source, then run",
        "# `python3 cloud-init/generate.py` (tests/release/test_templates.py fails while a",
        "# copy is stale).",
    ]


def render(source: str, provider: str, generation: str) -> str:
    gen, prov = GENERATIONS[generation], PROVIDERS[provider]
    flags = {"cert": gen["cert"], "ssh_key": prov["ssh_key"], "bash": BASH in prov["sources"],
             "aws": provider == "aws"}
    names = variables(provider, generation)
    older, newer = prov["generations"][0], prov["generations"][-1]
    tokens = {
        "@KASM_VERSIONS@": gen["versions"],
        "@VARIABLE_COUNT@": NUMBERS[len(names)],
        "@GENERATION@": generation,
        "@PROVIDER@": prov["name"],
        "@PASTE_FIELD@": prov["paste"],
        "@ADDRESS_SOURCES@": prov["address_sources"],
        "@DIR@": directory(provider, generation),
        "@NEWER_DIR@": directory(provider, newer),
        "@OLDER_DIR@": directory(provider, older),
        "@OLDER_KASM@": GENERATIONS[older]["short"],
    }
    paragraphs = {
        "# @GENERATED_NOTE@": note(source),
        "# @VARIABLES_NOTE@": comment(
            f"Kasm passes this provider {NUMBERS[len(names)]} variables in this generation "
            f"({vs_aws(provider, generation)}): {', '.join(names)}. docs/providers.md says where each "
            f"comes from."),
        "# @ADDRESS_NOTE@": comment(
            f"The agent address: address_sources below is {prov['address_sources']}, that is "
            f"{prov['address_note']}; external_fqdn wins when Kasm sets it. Edit that one line (it is "
            f"ours, not a Kasm variable) for another chain (docs/configuration.md, address_sources); "
            f"it wins over the image defaults."),
    }
    out: list[str] = []
    stack: list[tuple[bool, bool]] = []  # (kept before this block, condition of this block)
    keep = True
    for number, line in enumerate((HERE / source).read_text().splitlines(keepends=True), 1):
        directive = line.strip()
        where = f"{source}:{number}"
        if directive.startswith("#%"):
            words = directive[2:].split()
            if words[:1] == ["if"] and len(words) in (2, 3) and (len(words) == 2 or words[1] == "not"):
                flag = words[-1]
                if flag not in flags:
                    raise ValueError(f"{where}: unknown flag {flag!r}")
                cond = flags[flag] != (len(words) == 3)
                stack.append((keep, cond))
                keep = keep and cond
            elif words == ["else"]:
                if not stack:
                    raise ValueError(f"{where}: #% else outside #% if")
                outer, cond = stack[-1]
                keep = outer and not cond
            elif words == ["endif"]:
                if not stack:
                    raise ValueError(f"{where}: #% endif outside #% if")
                keep = stack.pop()[0]
            else:
                raise ValueError(f"{where}: unknown directive {directive!r}")
            continue
        if not keep:
            continue
        if line.rstrip("\n") in paragraphs:
            out.extend(n + "\n" for n in paragraphs[line.rstrip("\n")])
            continue
        for token, value in tokens.items():
            line = line.replace(token, value)
        if re.search(r"@[A-Z_]+@", line):
            raise ValueError(f"{where}: unknown @...@ token")
        out.append(line)
    if stack:
        raise ValueError(f"{source}: #% if without #% endif")
    return "".join(out)


def outputs() -> dict[Path, str]:
    """Every generated file and the text it must hold."""
    return {HERE.parent / directory(provider, generation) / source.removesuffix(".in"):
            render(source, provider, generation)
            for provider, prov in PROVIDERS.items() for generation in prov["generations"]
            for source in prov["sources"]}


def main(argv: list[str]) -> int:
    check = argv[1:] == ["--check"]
    if argv[1:] and not check:
        print("usage: generate.py [--check]", file=sys.stderr)
        return 2
    stale = []
    for path, text in outputs().items():
        current = path.read_text() if path.is_file() else None
        if current == text:
            continue
        rel = path.relative_to(HERE.parent)
        if check:
            stale.append(str(rel))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {rel}")
    if stale:
        print("stale (run python3 cloud-init/generate.py): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
