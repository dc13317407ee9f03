#!/usr/bin/env bash
# Boot-to-healthy time: the pre-baked fast path against the full install, in the same
# run, against the same fakes (the e2e world: namespaces, IMDS, HTTPS release server,
# manager, a real dockerd). Prints numbers only. Needs root (see tests/e2e/world.py).
#
#   bench/fast_path.sh [BINARY]      env: FAST_PATH_BENCH_ROUNDS (3)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-${KB_BINARY:-}}
if [[ -z "$bin" ]]; then
  for c in "$here"/build/*/kasm-bootstrap; do [[ -x "$c" ]] && bin=$c && break; done
fi
[[ -x "${bin:-}" ]] || { echo "fast_path bench: no kasm-bootstrap binary (pass its path)" >&2; exit 2; }
exec python3 "$here/bench/fast_path.py" --binary "$bin" --rounds "${FAST_PATH_BENCH_ROUNDS:-3}"
