#!/usr/bin/env python3
"""Builds a fake Kasm release tarball for tests, optionally with a hostile entry.

  make_release.py --out FILE.tar.gz [--version 1.15.0] [--pad BYTES] [--evil KIND] [--special]
                  [--service-images FILE]

The tarball holds kasm_release/ as tests/fakes/kasm_release/ has it, laid out and versioned
the way Kasm's release is (docs/kasm-installer.md §2, §3, §5): the version only in the
KASM_VERSION="V" lines of install.sh, bin/start, bin/stop, bin/utils/pull and in the compose
file (images kasmweb/agent:V, kasmweb/proxy:V, /opt/kasm/V paths); the agent configuration
template at conf/app/agent.app.config.yaml up to 1.16 and conf/app/agent/agent.app.config.yaml
from 1.17. Nothing else carries the version.

KIND: dotdot          an entry kasm_release/../../evil.txt
      abs-path        an entry named --abs-name (absolute)
      abs-symlink     a symlink kasm_release/etc -> /etc
      escape-symlink  a symlink kasm_release/up -> ../../..
      escape-one      a symlink kasm_release/up -> ../.. (one level above the top)
      hardlink-dotdot a hard link kasm_release/hl to kasm_release/../../evil.txt
      hardlink-abs    a hard link kasm_release/hl to --abs-name (absolute)
      through-symlink a symlink kasm_release/link -> conf, then kasm_release/link/evil.txt
--special adds entries a real release may carry and extraction must tame or keep:
  kasm_release/bin/suid (mode 04755), kasm_release/bin/sgid (mode 02755), a hard link
  kasm_release/bin/hard to kasm_release/install.sh, and a symlink kasm_release/conf/top
  -> ../.. (the top of the tree itself, not above it).
Every release has one legitimate relative symlink, kasm_release/LICENSE.txt ->
licenses/LICENSE.txt.
--service-images FILE also writes an offline service-images tarball for install.sh -s in
the layout load_service_images reads (service_images/images.txt naming kasmweb/agent:V and
kasmweb/proxy:V, service_images/kasmweb_agent_V.tar ...). The .tar files are placeholders,
not loadable images: use it with KASM_FAKE_DOCKER=none, or docker save real ones.
Prints the SHA-256 of the release tarball on stdout.
"""
import argparse
import hashlib
import io
import os
import random
import tarfile

HERE = os.path.dirname(os.path.abspath(__file__))


SCRIPTS = ("install.sh", "bin/start", "bin/stop", "bin/utils/pull")
VERSION_LINE = b'\nKASM_VERSION="1.15.0"\n'


def version_tuple(v):
    return tuple(int(x) if x.isdigit() else 0 for x in v.split(".")[:3])


def release_files(version):
    """(name under kasm_release/, bytes, mode) for every file of the fake release."""
    src = os.path.join(HERE, "kasm_release")
    out = []
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames.sort()
        for fn in sorted(filenames):
            path = os.path.join(dirpath, fn)
            name = os.path.relpath(path, src)
            with open(path, "rb") as f:
                data = f.read()
            mode = 0o644
            if name in SCRIPTS:
                # Kasm's scripts each hard-code KASM_VERSION="V" at the start of a line
                # (docs/kasm-installer.md §3, §5); the product reads install.sh's.
                assert VERSION_LINE in data, name + " lost its KASM_VERSION line"
                data = data.replace(VERSION_LINE, b'\nKASM_VERSION="' + version.encode() + b'"\n', 1)
                mode = 0o755
            data = data.replace(b"@KASM_VERSION@", version.encode())
            if name == "conf/app/agent.app.config.yaml" and version_tuple(version) >= (1, 17, 0):
                name = "conf/app/agent/agent.app.config.yaml"  # docs/kasm-installer.md §5
            out.append((name, data, mode))
    return out


def write_service_images(out, version):
    with tarfile.open(out, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        images = ["kasmweb/agent:" + version, "kasmweb/proxy:" + version]
        add_bytes(tar, "service_images/images.txt", ("\n".join(images) + "\n").encode())
        for image in images:
            fn = image.replace("/", "_").replace(":", "_") + ".tar"
            add_bytes(tar, "service_images/" + fn, b"placeholder, not an image\n")


def add_bytes(tar, name, data, mode=0o644):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = 1700000000
    tar.addfile(info, io.BytesIO(data))


def add_link(tar, name, target, kind=tarfile.SYMTYPE):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    info.mode = 0o777
    info.mtime = 1700000000
    tar.addfile(info)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--version", default="1.15.0")
    p.add_argument("--pad", type=int, default=0)
    p.add_argument("--evil", default="")
    p.add_argument("--abs-name", default="/tmp/kb-evil-abs.txt")
    p.add_argument("--special", action="store_true")
    p.add_argument("--service-images", default="")
    a = p.parse_args()
    with tarfile.open(a.out, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        dirinfo = tarfile.TarInfo("kasm_release")
        dirinfo.type = tarfile.DIRTYPE
        dirinfo.mode = 0o755
        tar.addfile(dirinfo)
        for name, data, mode in release_files(a.version):
            add_bytes(tar, "kasm_release/" + name, data, mode)
        # A legitimate relative symlink, as real releases may carry.
        add_link(tar, "kasm_release/LICENSE.txt", "licenses/LICENSE.txt")
        if a.pad:
            # Incompressible, so the archive really is about this big.
            rnd = random.Random(42)
            add_bytes(tar, "kasm_release/padding.bin", rnd.randbytes(a.pad))
        if a.special:
            add_bytes(tar, "kasm_release/bin/suid", b"#!/bin/sh\n", 0o4755)
            add_bytes(tar, "kasm_release/bin/sgid", b"#!/bin/sh\n", 0o2755)
            add_link(tar, "kasm_release/bin/hard", "kasm_release/install.sh", tarfile.LNKTYPE)
            add_link(tar, "kasm_release/conf/top", "../..")
        if a.evil == "dotdot":
            add_bytes(tar, "kasm_release/../../evil.txt", b"escaped\n")
        elif a.evil == "abs-path":
            add_bytes(tar, a.abs_name, b"escaped\n")
        elif a.evil == "abs-symlink":
            add_link(tar, "kasm_release/etc", "/etc")
        elif a.evil == "escape-symlink":
            add_link(tar, "kasm_release/up", "../../..")
        elif a.evil == "escape-one":
            add_link(tar, "kasm_release/up", "../..")
        elif a.evil == "hardlink-dotdot":
            add_link(tar, "kasm_release/hl", "kasm_release/../../evil.txt", tarfile.LNKTYPE)
        elif a.evil == "hardlink-abs":
            add_link(tar, "kasm_release/hl", a.abs_name, tarfile.LNKTYPE)
        elif a.evil == "through-symlink":
            add_link(tar, "kasm_release/link", "conf")
            add_bytes(tar, "kasm_release/link/evil.txt", b"through a symlink\n")
        elif a.evil:
            raise SystemExit("unknown --evil " + a.evil)
    if a.service_images:
        write_service_images(a.service_images, a.version)
    with open(a.out, "rb") as f:
        print(hashlib.sha256(f.read()).hexdigest())


if __name__ == "__main__":
    main()
