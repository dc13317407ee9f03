#!/usr/bin/env bash
# Installs what the build needs, builds the dev preset and shows the main job on the
# bundled example configuration: `kasm-bootstrap plan` (= run --dry-run) against an
# empty temporary root, so it needs no cloud and changes nothing on this machine.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cmake --preset dev >/dev/null
# Only what the demo runs: the binary, not the test suites.
cmake --build --preset dev --target kasm-bootstrap -j"$(nproc)"

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
build/dev/kasm-bootstrap plan --config examples/agent.json --root "$root"
