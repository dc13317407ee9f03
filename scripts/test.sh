#!/usr/bin/env bash
# The one test command (README, .ci/run): installs everything, builds with warnings as
# errors, runs every suite, and ends with a table of stages, wall times and counts.
# Suites that need root (network namespaces, swapon, a real dockerd) say so and skip when
# not root.
#
#   scripts/test.sh                   every stage below
#   KB_TEST_QUICK=1 scripts/test.sh   only the format check, the static build and its tests
#   KB_TIDY_ALL=1 scripts/test.sh     clang-tidy over every file, not only the changed ones
#   KB_FUZZ_SECONDS=N                 seconds per fuzz target (default 20)
#   KB_TEST_MUTANTS=1 scripts/test.sh  also the mutation tests (scripts/mutants.sh) at the end
#
# Stages, in order (each builds from the clean tree; the budget is 25 min on 2 cores):
#   dependencies   scripts/install-deps.sh --test (apt-get, waits for dpkg's lock)
#   format         clang-format check of every tracked C++ file
#   static deps    OpenSSL (lean), libcurl.a, libsystemd.a from Debian's source packages
#   static build   the release binary and the unit tests (preset static: -Werror, unity)
#   static tests   every ctest entry, unit and e2e, against the static binary, the
#                  artifact that ships
#   asan build     preset asan: ASan + UBSan, -Werror, unity
#   asan tests     every ctest entry, unit and e2e, against the ASan/UBSan binary
#   fuzz           the libFuzzer targets, two at a time (one per core)
#   clang-tidy     every src/ file changed since scripts/tidy-record.txt (KB_TIDY_ALL=1: all)
#   release        binary checks and empty chroot, systemd units, packer, templates, .deb
#   arm64          scripts/test-static.sh --arch arm64: the aarch64 cross build, its suites
#                  under qemu-aarch64, binary checks, the arm64 .deb
#   chroots        scripts/test-chroots.sh: both binaries in Debian 11, 12, 13 chroots
#   boot           scripts/test-boot.sh: Packer's qemu.debian12 builds the plain and the
#                  baked image; each boots in a QEMU VM with real cloud-init and systemd,
#                  and the plain one reboots (docs/boot.md)
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
start=$SECONDS
logs=$(mktemp -d "${TMPDIR:-/tmp}/kb-test.XXXXXX")
trap 'rm -rf "$logs"' EXIT

stage_names=()
stage_times=()
stage_counts=()
total_passed=0
total_failed=0
total_skipped=0

print_table() {
  printf '\n=== stages (%d s in all) ===\n' $((SECONDS - start))
  printf '  %-14s %7s  %s\n' stage seconds count
  local i
  for i in "${!stage_names[@]}"; do
    printf '  %-14s %7s  %s\n' "${stage_names[i]}" "${stage_times[i]}" "${stage_counts[i]}"
  done
}

# What a stage counted, read back from its log into $counted: ctest's summary line (whose
# numbers also go into the totals), the fuzz summary, the lint and release lines. Every
# grep here may find nothing, which under set -e -o pipefail must not end the script.
count_of() {
  local log=$1 line
  counted=""
  if line=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests failed out of [0-9]+' "$log" | tail -n1); then
    local failed total skipped
    failed=$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\1/' <<<"$line")
    total=$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\2/' <<<"$line")
    skipped=$(grep -cE '\*\*\*Skipped|Not Run' "$log" || true)
    total_passed=$((total_passed + total - failed - skipped))
    total_failed=$((total_failed + failed))
    total_skipped=$((total_skipped + skipped))
    counted="$total tests, $failed failed, $skipped skipped"
  elif line=$(grep -E '^fuzz.sh: [0-9]+ s per target' "$log" | tail -n1); then
    counted="$(grep -cE '^  [a-z_]+ +[0-9?]+ execs' "$log" || true) targets x ${line#fuzz.sh: }"
  elif line=$(grep -E '^mutants.sh: score' "$log" | tail -n1); then
    counted=${line#mutants.sh: }
  else
    counted=$({ grep -hoE '(clang-format: [0-9]+ files formatted|clang-tidy: [0-9]+ of [0-9]+ files changed|clang-tidy: [0-9]+ files clean)' "$log" || true; } |
      tr '\n' ';' | sed 's/;$//; s/;/; /g')
    if [[ -z $counted ]] && line=$(grep -E '^boot: [0-9]+ passed, [0-9]+ failed' "$log" | tail -n1); then
      counted=${line#boot: }
    fi
    # test-release.sh's summary: one "ok" or "FAILED" line per check.
    if [[ -z $counted ]] && grep -q '^========== test-release summary' "$log"; then
      counted="$(grep -cE '^  ok ' "$log" || true) checks ok, $(grep -cE '^  FAILED ' "$log" || true) failed"
    fi
  fi
}

# stage NAME COMMAND...: runs the command with its output shown and kept, records its
# wall time and count; on failure prints the table so far and exits with its status.
stage() {
  local name=$1
  shift
  local log="$logs/${#stage_names[@]}.log" t0=$SECONDS rc=0
  printf '\n=== %s (at %d s) ===\n' "$name" $((SECONDS - start))
  "$@" 2>&1 | tee "$log" || rc=${PIPESTATUS[0]}
  stage_names+=("$name")
  stage_times+=($((SECONDS - t0)))
  count_of "$log"
  stage_counts+=("$counted")
  if ((rc != 0)); then
    stage_counts[-1]+="${stage_counts[-1]:+; }FAILED (exit $rc)"
    print_table
    printf '\n%s: FAILED (exit %d)\n' "$name" "$rc" >&2
    exit "$rc"
  fi
}

# As root, everything the suites need is installed by the first stage, so a test that
# would skip (not root, no namespaces, no dockerd, no loop devices) fails instead
# (tests/support/test_support.hpp, tests/e2e/world.py). Not root: skips are reported.
if [[ $(id -u) -eq 0 ]]; then
  export KB_TEST_NO_SKIP="${KB_TEST_NO_SKIP:-1}"
fi

# What a clean clone can take from the machine (the "cache on the machine" of the CI
# budget), under $KB_CACHE_DIR; each cache checks what it holds, so it can only save
# time, never change what is built or tested. A clean machine fills them.
#   static-deps*  the static libraries, reached through build/static-deps* links;
#                 scripts/build-static-deps.sh checks each library's stamp (source
#                 version + options) and rebuilds what differs;
#   ccache        compiled objects (ccache hashes the preprocessed source and the
#                 command line; CCACHE_BASEDIR makes paths inside the clone relative, so
#                 another clone's objects match); its statistics end the run;
#   chroots       scripts/test-chroots.sh's Debian 11, 12 and 13 trees (their stamps
#                 hold the debootstrap arguments; rebuilt after 14 days).
# An empty KB_CACHE_DIR (or not root) caches nothing and builds everything in build/.
cache_dir="${KB_CACHE_DIR-/var/cache/kasm-bootstrap}"
if [[ -n "$cache_dir" && $(id -u) -eq 0 ]]; then
  mkdir -p build
  for d in static-deps static-deps-arm64; do
    if [[ ! -e "build/$d" ]]; then
      mkdir -p "$cache_dir/$d"
      ln -s "$cache_dir/$d" "build/$d"
    fi
  done
  export KB_CACHE_DIR="$cache_dir"
  export CCACHE_DIR="$cache_dir/ccache" CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1 CCACHE_MAXSIZE=5G
  # Read by CMake at each build directory's first configure (CMake 3.17+).
  export CMAKE_C_COMPILER_LAUNCHER=ccache CMAKE_CXX_COMPILER_LAUNCHER=ccache
fi

sanitizer_env=(env ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1)
# ctest: the tests mostly wait (servers, timeouts, dockerd), so 2 per core; the e2e suites
# hold one lock among themselves (tests/CMakeLists.txt) and are started first.
ctest_jobs=$((jobs * 2))

stage "dependencies" scripts/install-deps.sh --test
[[ -n "${CCACHE_DIR:-}" ]] && ccache --zero-stats >/dev/null
stage "format" scripts/lint.sh --format
stage "static deps" scripts/build-static-deps.sh
stage "static build" bash -c 'cmake --preset static >/dev/null && cmake --build --preset static -j"$1"' _ "$jobs"
stage "static tests" ctest --preset static -j"$ctest_jobs"

if [[ "${KB_TEST_QUICK:-0}" != 1 ]]; then
  stage "asan build" bash -c 'cmake --preset asan >/dev/null && cmake --build --preset asan -j"$1"' _ "$jobs"
  stage "asan tests" "${sanitizer_env[@]}" ctest --preset asan -j"$ctest_jobs"
  stage "fuzz" env KB_FUZZ_PARALLEL="$jobs" scripts/fuzz.sh "${KB_FUZZ_SECONDS:-20}"
  if [[ "${KB_TIDY_ALL:-0}" == 1 ]]; then
    stage "clang-tidy" scripts/lint.sh --tidy-all
  else
    stage "clang-tidy" scripts/lint.sh --tidy
  fi
  # The static binary and its tests ran above; the release checks use that build as it is.
  stage "release" env KB_SKIP_CTEST=1 scripts/test-release.sh
  # The aarch64 binary: cross build, its suites under qemu-aarch64 (what emulation cannot
  # run is left out, docs/static-build.md "arm64"), binary checks, the arm64 .deb.
  stage "arm64" scripts/test-static.sh --arch arm64
  # Both static binaries in Debian 11, 12 and 13 chroots (docs/chroot-checks.md).
  stage "chroots" env KB_CHROOT_CACHE="${KB_CACHE_DIR:+$KB_CACHE_DIR/chroots}" scripts/test-chroots.sh
  # The images Packer builds from this checkout's .deb (made by the release stage), booted
  # under QEMU TCG with real cloud-init and systemd, the plain one rebooted (docs/boot.md).
  stage "boot" scripts/test-boot.sh
  # Mutation testing (scripts/mutants.sh) only when asked: about 10 min.
  if [[ "${KB_TEST_MUTANTS:-0}" == 1 ]]; then
    stage "mutants" scripts/mutants.sh
  fi
fi

print_table
if [[ -n "${CCACHE_DIR:-}" ]] && command -v ccache >/dev/null; then
  echo "ccache ($CCACHE_DIR), this run:"
  ccache --print-stats 2>/dev/null | grep -E '^(direct_cache_hit|preprocessed_cache_hit|cache_miss)\s' | sed 's/^/  /' || true
fi
echo "all stages passed; ctest entries over all stages:"
printf 'total: %d passed, %d failed, %d skipped\n' "$total_passed" "$total_failed" "$total_skipped"
