#!/usr/bin/env bash
# Builds the libFuzzer targets (preset "fuzz": clang, ASan + UBSan) and runs each one for
# a bounded time on a temporary copy of its seed corpus (tests/fuzz/corpus/<target>/;
# the repository is never written). Exits non-zero on any crash, leak, timeout or
# violated invariant; the reproducing input is kept under build/fuzz/crashes/.
#   scripts/fuzz.sh [SECONDS_PER_TARGET]      default 30
#   FUZZ_TARGETS="pem fstab" scripts/fuzz.sh  only some targets
#   KB_FUZZ_PARALLEL=2 scripts/fuzz.sh        run two targets at a time (default 1); each
#                                             fuzzer is one process on one core, so with
#                                             one target per core each gets the same time
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-30}
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || ((seconds < 1)); then
  echo "fuzz.sh: SECONDS_PER_TARGET must be a whole number of seconds, got '$seconds'" >&2
  exit 2
fi
read -r -a targets <<<"${FUZZ_TARGETS:-config config_dir metadata pem fstab}"

build_start=$SECONDS
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j"$(nproc)"
echo "fuzz.sh: build took $((SECONDS - build_start)) s"

work=$(mktemp -d "${TMPDIR:-/tmp}/kb-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
crashes=build/fuzz/crashes

parallel=${KB_FUZZ_PARALLEL:-1}
if ! [[ "$parallel" =~ ^[0-9]+$ ]] || ((parallel < 1)); then
  echo "fuzz.sh: KB_FUZZ_PARALLEL must be a whole number of targets, got '$parallel'" >&2
  exit 2
fi

for t in "${targets[@]}"; do
  if [[ ! -x build/fuzz/tests/fuzz/${t}_fuzz || ! -d tests/fuzz/corpus/$t ]]; then
    echo "fuzz.sh: unknown target '$t' (no build/fuzz/tests/fuzz/${t}_fuzz or no tests/fuzz/corpus/$t)" >&2
    exit 2
  fi
done

# One target for $seconds; its exit code goes to $work/$t/rc.
fuzz_one() {
  local t=$1 bin=build/fuzz/tests/fuzz/${1}_fuzz seeds=tests/fuzz/corpus/$1 rc=0
  mkdir -p "$work/$t/corpus" "$work/$t/artifacts" "$work/$t/tmp"
  cp -R "$seeds/." "$work/$t/corpus/"
  echo "fuzz.sh: $t for ${seconds} s ($(find "$seeds" -type f | wc -l) seeds)"
  # libFuzzer reports leaks (detect_leaks), timeouts (-timeout) and memory blow-ups
  # (-rss_limit_mb) as failures with a non-zero exit code, like crashes.
  # TMPDIR: config_dir_fuzz writes its files there, and a crash skips its own cleanup.
  TMPDIR="$work/$t/tmp" ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$work/$t/artifacts/" "$work/$t/corpus" >"$work/$t/log" 2>&1 || rc=$?
  echo "$rc" >"$work/$t/rc"
}

running=0
for t in "${targets[@]}"; do
  fuzz_one "$t" &
  running=$((running + 1))
  if ((running >= parallel)); then
    wait -n || true
    running=$((running - 1))
  fi
done
wait

failed=()
summary=()
for t in "${targets[@]}"; do
  bin=build/fuzz/tests/fuzz/${t}_fuzz
  rc=$(cat "$work/$t/rc" 2>/dev/null || echo "?")
  execs=$(awk '/stat::number_of_executed_units/ {print $2}' "$work/$t/log")
  corpus=$(find "$work/$t/corpus" -type f | wc -l)
  line=$(printf '%-11s %10s execs  corpus %5s  exit %s' "$t" "${execs:-?}" "$corpus" "$rc")
  summary+=("$line")
  if [[ "$rc" != 0 ]]; then
    failed+=("$t")
    echo "fuzz.sh: $t FAILED (exit $rc); last lines of its log:" >&2
    tail -n 60 "$work/$t/log" >&2
    mkdir -p "$crashes/$t"
    cp -R "$work/$t/artifacts/." "$crashes/$t/" 2>/dev/null || true
    echo "fuzz.sh: reproduce with: $bin $crashes/$t/<file>" >&2
  fi
done

echo
echo "fuzz.sh: ${seconds} s per target"
printf '  %s\n' "${summary[@]}"
if ((${#failed[@]})); then
  echo "fuzz.sh: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz.sh: all targets clean"
