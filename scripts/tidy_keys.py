#!/usr/bin/env python3
"""Content keys for the clang-tidy record (scripts/lint.sh --tidy).

A source file's key is a SHA-256 over everything that decides what clang-tidy says
about it:
  - the file itself and every project header it includes, transitively
    (#include "..." resolved against the file's folder, include/ and the build's
    generated/ folder);
  - .clang-tidy, and the clang-tidy version;
  - the file's compile command from the compilation database, with the checkout's path
    replaced by a placeholder (so a clone elsewhere gets the same key).
System and third-party headers are not hashed: they change only with the installed
packages, which the clang-tidy version and a full pass (--tidy-all) cover.

  tidy_keys.py DB_DIR FILE...     prints "KEY FILE" per file (FILE relative to the repo)
"""
import hashlib
import json
import os
import re
import subprocess
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"', re.M)


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    repo = os.path.realpath(os.path.join(os.path.dirname(__file__), ".."))
    db_dir = os.path.realpath(sys.argv[1])
    files = sys.argv[2:]

    with open(os.path.join(db_dir, "compile_commands.json"), encoding="utf-8") as f:
        commands = {os.path.realpath(e["file"]): e for e in json.load(f)}
    search = [os.path.join(repo, "include"), os.path.join(db_dir, "generated")]
    tidy_version = subprocess.run(["clang-tidy", "--version"], capture_output=True, text=True, check=True).stdout
    with open(os.path.join(repo, ".clang-tidy"), "rb") as f:
        config = f.read()

    headers_of: dict = {}

    def includes(path: str) -> list:
        if path not in headers_of:
            found = []
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
            for name in INCLUDE.findall(text):
                for base in [os.path.dirname(path)] + search:
                    candidate = os.path.realpath(os.path.join(base, name))
                    if os.path.isfile(candidate):
                        found.append(candidate)
                        break
                else:
                    found.append("unresolved:" + name)
            headers_of[path] = found
        return headers_of[path]

    for rel in files:
        path = os.path.realpath(os.path.join(repo, rel))
        entry = commands.get(path)
        if entry is None:
            print(f"tidy_keys: {rel} is not in {db_dir}/compile_commands.json", file=sys.stderr)
            return 2
        h = hashlib.sha256()
        h.update(tidy_version.encode())
        h.update(config)
        command = entry.get("command") or " ".join(entry.get("arguments", []))
        command = re.sub(r"\s-o\s+\S+", " ", command).replace(repo, "<repo>")
        h.update(command.encode())
        seen, todo = set(), [path]
        while todo:
            p = todo.pop()
            if p in seen:
                continue
            seen.add(p)
            if p.startswith("unresolved:"):
                continue
            todo.extend(includes(p))
        for p in sorted(seen):
            h.update(p.replace(repo, "<repo>").replace(db_dir, "<build>").encode() + b"\0")
            if not p.startswith("unresolved:"):
                with open(p, "rb") as f:
                    h.update(hashlib.sha256(f.read()).digest())
        print(h.hexdigest(), os.path.relpath(path, repo))
    return 0


if __name__ == "__main__":
    sys.exit(main())
