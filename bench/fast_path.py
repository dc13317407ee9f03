#!/usr/bin/env python3
"""Boot-to-healthy time of the pre-baked fast path against the full install, in the same
run, against the same fakes (tests/e2e/world.py: IMDS, HTTPS release server, manager,
real dockerd, fake installer). Prints numbers only; nothing here asserts a time.

For each round: a fresh root `run` on the full path (download, installer, certificates,
health), and a fresh root `prebake`d first, then `run` on the fast path. "Overhead" is
kasm-bootstrap's own time: the wall time of `run` minus the time spent waiting for
others — the fake installer (its own timing record) on the full path; dockerd starting
the containers (start-services) and the manager's health answer (verify-health) on both.
"""
import argparse
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "e2e"))
import world  # noqa: E402
import test_baked  # noqa: E402  (prebake helper)


def step_ms(status, step_id):
    for s in status["steps"]:
        if s["id"] == step_id:
            return float(s.get("duration_ms") or 0)
    return 0.0


def installer_seconds(case):
    text = case.read("/fake-installer/timing") or ""
    t = dict(line.split() for line in text.splitlines() if len(line.split()) == 2)
    return float(t["end"]) - float(t["start"]) if "start" in t and "end" in t else 0.0


def one(w, name, baked):
    c = w.new_case(name)
    del c.config["nginx_cert"]
    del c.config["nginx_key"]
    if baked:
        test_baked.W = w
        b = test_baked.prebake(c)
        if b.rc != 0:
            raise RuntimeError(f"prebake failed: {b}")
    r = c.run()
    if r.rc != 0:
        raise RuntimeError(f"run failed: {r}")
    st = c.status()
    waits = (step_ms(st, "start-services") + step_ms(st, "verify-health")) / 1000
    if not baked:
        waits += installer_seconds(c)
    steps = {s["id"]: float(s.get("duration_ms") or 0) for s in st["steps"]}
    return r.seconds, r.seconds - waits, steps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ns = ap.parse_args()
    rows = {"full": [], "fast": []}
    with world.World(ns.binary) as w:
        for i in range(ns.rounds):
            rows["full"].append(one(w, f"bench-full{i}", False))
            rows["fast"].append(one(w, f"bench-fast{i}", True))
    print(f"boot-to-healthy, {ns.rounds} rounds each (median, min..max), seconds")
    for path in ("full", "fast"):
        wall = [r[0] for r in rows[path]]
        own = [r[1] for r in rows[path]]
        print(f"  {path:<5} wall {statistics.median(wall):7.3f} ({min(wall):.3f}..{max(wall):.3f})"
              f"   overhead {statistics.median(own):7.3f} ({min(own):.3f}..{max(own):.3f})")
    for path in ("full", "fast"):
        ids = list(rows[path][0][2])
        print(f"  {path} steps (median ms): " + ", ".join(
            f"{i} {statistics.median(r[2].get(i, 0) for r in rows[path]):.0f}" for i in ids))
    full, fast = statistics.median(r[0] for r in rows["full"]), statistics.median(r[0] for r in rows["fast"])
    print(f"  full/fast wall ratio {full / fast:.2f} (the fake installer takes well under a second; Kasm's real "
          f"one takes minutes) -- goal: fast path overhead <= 0.05 s")


if __name__ == "__main__":
    try:
        main()
    except world.Unavailable as e:
        print(f"fast_path bench: skipped: {e}")
        sys.exit(77)
