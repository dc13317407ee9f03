#!/usr/bin/env bash
# The one test command (README, .ci/run): installs everything, builds with warnings as
# errors, runs every suite. Suites that need root (network namespaces, swapon, a real
# dockerd) say so and skip when not root.
#   scripts/test.sh            everything: ci build + tests, ASan/UBSan build + tests,
#                              release engineering (static binary, packer, templates, .deb)
#                              and clang-tidy (scripts/lint.sh)
#   KB_TEST_QUICK=1 scripts/test.sh   only the format check, the ci build and its tests
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
start=$SECONDS
section() { printf '\n=== %s (%ds) ===\n' "$*" $((SECONDS - start)); }

section "dependencies"
scripts/install-deps.sh --test

section "lint: clang-format"
scripts/lint.sh --format

section "build: ci preset (warnings are errors)"
cmake --preset ci >/dev/null
cmake --build --preset ci -j"$jobs"

section "tests: ci preset"
ctest --preset ci -j"$jobs"

if [[ "${KB_TEST_QUICK:-0}" == 1 ]]; then
  section "quick mode: done"
  exit 0
fi

section "build: asan preset (AddressSanitizer + UBSan)"
cmake --preset asan >/dev/null
cmake --build --preset asan -j"$jobs"

section "tests: asan preset"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --preset asan -j"$jobs"

section "fuzz: libFuzzer targets, ${KB_FUZZ_SECONDS:-20} s each (clang, ASan + UBSan)"
scripts/fuzz.sh "${KB_FUZZ_SECONDS:-20}"

section "lint: clang-tidy over src/ (.clang-tidy)"
scripts/lint.sh --tidy

if [[ -x scripts/test-release.sh ]]; then
  section "release engineering: static binary, packer, cloud-init templates, .deb"
  scripts/test-release.sh
fi

section "all suites passed"
