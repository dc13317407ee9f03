#!/usr/bin/env bash
# Boot-to-healthy of a real VM (docs/boot.md): the plain image (full install at boot) and
# the baked image (the fast path), booted one at a time from the images
# scripts/test-boot.sh built (or builds, when IMAGES has none), in the same run. For each
# boot: seconds from QEMU's start to the user-data fetch, to cloud-final, to our SUCCESS
# line on the serial console (printed after verify-health: the agent is healthy), the
# run's time (from that line), and kasm-bootstrap's own share: the run less the steps that
# wait for Kasm's programs (install-agent: install.sh; start-services: bin/start and
# compose), from the unit's "<step>: done in N ms" console lines. Needs root.
#
#   bench/boot.sh [IMAGES]     IMAGES: scripts/test-boot.sh's output (default build/boot)
#                              env: BOOT_BENCH_ROUNDS (1; each round boots both, ~6 min)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
images=${1:-$here/build/boot}
rounds=${BOOT_BENCH_ROUNDS:-1}
[[ $(id -u) -eq 0 ]] || { echo "boot bench: needs root" >&2; exit 2; }
if [[ ! -f "$images/plain/build.json" || ! -f "$images/baked/build.json" ]]; then
  echo "boot bench: no built images in $images: building them (scripts/test-boot.sh)" >&2
  KB_BOOT_OUT="$images" "$here/scripts/test-boot.sh" >&2
fi
marks=$(mktemp -d)
trap 'rm -rf "$marks"' EXIT
for ((r = 1; r <= rounds; r++)); do
  for kind in plain baked; do
    # One VM at a time: two at once would share the two cores and time each other.
    python3 "$here/tests/boot/boot_test.py" boot --image "$images/$kind" --marks "$marks/$kind.$r.json" \
      >"$marks/$kind.$r.log" 2>&1 || { tail -n 30 "$marks/$kind.$r.log" >&2; echo "boot bench: $kind boot failed" >&2; exit 1; }
  done
done
python3 - "$marks" "$rounds" <<'PY'
import json, os, statistics, sys
d, rounds = sys.argv[1], int(sys.argv[2])
CHILDREN = ("install-agent", "start-services")  # steps that wait for Kasm's own programs
rows = {}
for kind in ("plain", "baked"):
    runs = [json.load(open(os.path.join(d, f"{kind}.{r}.json"))) for r in range(1, rounds + 1)]
    def med(values):
        values = [v for v in values if v is not None]
        return statistics.median(values) if values else float("nan")
    rows[kind] = {
        "user-data": med(r["marks"].get("user-data") for r in runs),
        "cloud-final": med(r["marks"].get("cloud-final") for r in runs),
        "healthy": med(r["marks"].get("summary") for r in runs),
        "run": med(r["run_seconds"] for r in runs),
        "own": med(r["run_seconds"] - sum(r["steps_ms"].get(c, 0) for c in CHILDREN) / 1000 for r in runs),
    }
print(f"boot bench: {rounds} round(s), medians, seconds from QEMU's start (TCG, 2 vCPUs, 3 GiB, one VM at a time)")
print(f"  {'image':<6} {'user-data':>9} {'cloud-final':>11} {'healthy':>8} {'run':>6} {'own':>6} {'own/healthy':>11}")
for kind, v in rows.items():
    print(f"  {kind:<6} {v['user-data']:>9.0f} {v['cloud-final']:>11.0f} {v['healthy']:>8.0f} {v['run']:>6.1f} "
          f"{v['own']:>6.1f} {v['own'] / v['healthy']:>11.1%}")
p, b = rows["plain"], rows["baked"]
print(f"  baked/plain: healthy {b['healthy'] / p['healthy']:.2f}, run {b['run'] / p['run']:.2f}")
print("  run: kasm-bootstrap's run (its summary line); own: the run less install-agent and start-services")
PY
