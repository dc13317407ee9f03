#!/usr/bin/env python3
"""Builds a fake Kasm release tarball (kasm_release/ with the fake install.sh) for tests,
optionally with a hostile entry.

  make_release.py --out FILE.tar.gz [--version 1.15.0] [--pad BYTES] [--evil KIND] [--special]

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
Prints the SHA-256 of the tarball on stdout.
"""
import argparse
import hashlib
import io
import os
import random
import tarfile

HERE = os.path.dirname(os.path.abspath(__file__))


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
    a = p.parse_args()
    with tarfile.open(a.out, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        dirinfo = tarfile.TarInfo("kasm_release")
        dirinfo.type = tarfile.DIRTYPE
        dirinfo.mode = 0o755
        tar.addfile(dirinfo)
        with open(os.path.join(HERE, "kasm_release", "install.sh"), "rb") as f:
            script = f.read()
        # The version lives in install.sh's KASM_VERSION="..." line, as in Kasm's own.
        version_line = b'\nKASM_VERSION="1.15.0"\n'
        assert version_line in script, "the fake install.sh lost its KASM_VERSION line"
        script = script.replace(version_line, b'\nKASM_VERSION="' + a.version.encode() + b'"\n', 1)
        add_bytes(tar, "kasm_release/install.sh", script, 0o755)
        add_bytes(tar, "kasm_release/VERSION", (a.version + "\n").encode())
        add_bytes(tar, "kasm_release/conf/app/agent.app.config.yaml.template", b"agent: {}\n")
        # A legitimate relative symlink, as real releases may carry.
        add_link(tar, "kasm_release/RELEASE", "VERSION")
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
    with open(a.out, "rb") as f:
        print(hashlib.sha256(f.read()).hexdigest())


if __name__ == "__main__":
    main()
