#!/usr/bin/env python3
"""Renders ubuntu.sh.template the way Kasm renders a startup script: Python str.format
with the autoscale variables. PEM values are put in with their newlines as literal "\\n"
(what the script's `echo -e` turns back into newlines).

  render.py --out FILE [--template T] --set KEY=VALUE ... [--set-file KEY=PATH ...]

Every variable the template names must be given; a missing one is an error naming it.
"""
import argparse
import os
import string
import sys

here = os.path.dirname(os.path.abspath(__file__))
parser = argparse.ArgumentParser()
parser.add_argument("--template", default=os.path.join(here, "ubuntu.sh.template"))
parser.add_argument("--out", required=True)
parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
parser.add_argument("--set-file", action="append", default=[], metavar="KEY=PATH")
args = parser.parse_args()

values = {}
for item in args.set:
    key, sep, value = item.partition("=")
    if not sep:
        sys.exit(f"render.py: --set {item!r}: expected KEY=VALUE")
    values[key] = value
for item in args.set_file:
    key, sep, path = item.partition("=")
    if not sep:
        sys.exit(f"render.py: --set-file {item!r}: expected KEY=PATH")
    try:
        with open(path, encoding="utf-8") as f:
            values[key] = f.read().strip("\n").replace("\n", "\\n")
    except OSError as e:
        sys.exit(f"render.py: --set-file {key}: cannot read {path}: {e.strerror}")

with open(args.template, encoding="utf-8") as f:
    template = f.read()
needed = {name for _, name, _, _ in string.Formatter().parse(template) if name}
missing = sorted(needed - values.keys())
if missing:
    sys.exit(f"render.py: no value for {', '.join(missing)} (give --set KEY=VALUE)")

tmp = args.out + ".tmp"
with open(tmp, "w", encoding="utf-8") as f:
    f.write(template.format(**values))
os.chmod(tmp, 0o755)
os.replace(tmp, args.out)
