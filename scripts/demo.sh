#!/usr/bin/env bash
# README "Set up", command 1: install dependencies, build, and run the main job.
#
# As root where network namespaces and Docker work: installs the build's and the fake AWS
# world's packages (scripts/install-deps.sh --test), builds build/dev/kasm-bootstrap (that
# target only, not the test suites) and does a real `kasm-bootstrap run` in the fake AWS
# world of the e2e suites (tests/e2e/demo.py, tests/e2e/world.py: namespaces "instance" and
# "aws", IMDSv2, HTTPS release server, manager, a private dockerd, the fake Kasm release),
# showing the run's own progress, then `kasm-bootstrap status --long`. The world is removed
# afterwards, also on failure and Ctrl-C.
#
# Elsewhere (not root, no namespaces, no dockerd) it says why in one line, builds the same
# binary (not root: with the packages already installed) and shows `kasm-bootstrap plan` for
# this machine (--root /, examples/agent.json): plan only reads, it changes nothing.
#
#   CMAKE_BUILD_PARALLEL_LEVEL=N   build jobs (default: all cores)
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'demo: %s\n' "$*"; }
t0=$SECONDS
took() { printf '%d s' $((SECONDS - t0)); }

fallback=""
if [[ $(id -u) -ne 0 ]]; then
  fallback="not root (uid $(id -u)): the fake AWS world needs root (network namespaces, a private dockerd)"
  say "no full run here, plan only: $fallback"
  say "[1/4] dependencies: skipped, installing packages needs root; building with what is installed"
else
  say "[1/4] dependencies: scripts/install-deps.sh --test (the build's, and the fake AWS world's: iproute2, docker.io, openssl, iptables, ...)"
  if ! scripts/install-deps.sh --test; then
    fallback="scripts/install-deps.sh --test failed (above): the fake AWS world's packages are not available"
    say "no full run here, plan only: $fallback"
    scripts/install-deps.sh
  elif ! reason=$(python3 tests/e2e/demo.py --check 2>&1); then
    fallback="the fake AWS world cannot be built here: $reason"
    say "no full run here, plan only: $fallback"
  fi
fi

say "[2/4] configuring: cmake --preset dev (build/dev) [at $(took)]"
cmake --preset dev >/dev/null
jobs=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}
say "[3/4] building build/dev/kasm-bootstrap only, not the test suites (jobs: $jobs) [at $(took)]"
cmake --build --preset dev --target kasm-bootstrap -j"$jobs"

if [[ -z $fallback ]]; then
  say "[4/4] the main job for real: kasm-bootstrap run in the fake AWS world, then status --long [at $(took)]"
  rc=0
  python3 tests/e2e/demo.py --binary build/dev/kasm-bootstrap || rc=$?
  ((rc == 77)) || { say "finished, exit $rc [at $(took)]"; exit "$rc"; }
  fallback="the fake AWS world could not be built here (above)"
  say "no full run here, plan only: $fallback"
fi

say "[4/4] kasm-bootstrap plan --root / --config examples/agent.json: what a run would do on this machine (plan only reads; nothing is changed) [at $(took)]"
build/dev/kasm-bootstrap plan --root / --config examples/agent.json
