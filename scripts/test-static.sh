#!/usr/bin/env bash
# Builds and checks the fully static release binary:
#   1. scripts/build-static-deps.sh (libcurl, libsystemd.a; Debian packages);
#   2. cmake --preset static && cmake --build --preset static -j2;
#   3. ctest --preset static (the test suite against the static build);
#   4. `file` says static(-pie) and stripped, readelf finds no interpreter and no NEEDED;
#   5. in an empty chroot holding only the binary, a CA bundle and the example config:
#      `kasm-bootstrap --version` and `kasm-bootstrap plan --config ... --root ...`.
# Needs root (apt-get, chroot). Exit non-zero with a message naming the failed check.
#
# Environment: KB_JOBS (default 2); KB_SKIP_CTEST=1 skips step 3; KB_STATIC_CMAKE_ARGS adds
# arguments to `cmake --preset static` for experiments (e.g. -DKB_WERROR=OFF while the
# tree has warnings). CI sets neither; the preset's values come back on the next plain run.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly repo
readonly jobs="${KB_JOBS:-2}"
readonly bin="$repo/build/static/kasm-bootstrap"
readonly example="$repo/examples/agent.json"
t0=$(date +%s)
step() { printf '\n=== test-static [+%ss]: %s\n' "$(($(date +%s) - t0))" "$*" >&2; }
fail() { printf 'test-static: FAILED: %s\n' "$*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || fail "must run as root (apt-get for the dependencies, chroot for the empty-root check)"
cd "$repo"

step "static dependencies (scripts/build-static-deps.sh)"
scripts/build-static-deps.sh || fail "scripts/build-static-deps.sh"

step "configure: cmake --preset static ${KB_STATIC_CMAKE_ARGS:-}"
# shellcheck disable=SC2086 # word splitting of the extra arguments is intended
cmake --preset static ${KB_STATIC_CMAKE_ARGS:-} || fail "cmake --preset static"

step "build: cmake --build --preset static -j$jobs"
cmake --build --preset static -j"$jobs" || fail "cmake --build --preset static (compile or static link)"
[[ -x "$bin" ]] || fail "$bin was not produced"

if [[ "${KB_SKIP_CTEST:-0}" != 1 ]]; then
  step "tests: ctest --preset static"
  ctest --preset static -j"$jobs" || fail "ctest --preset static"
fi

step "binary checks: file, ldd, size"
info="$(file -b "$bin")"
printf '%s\n' "$info" >&2
# A static PIE (CMakeLists.txt): `file` says "static-pie linked". Static means no program
# interpreter and no shared library needed, which is what readelf is asked.
[[ "$info" == *"static-pie linked"* || "$info" == *"statically linked"* ]] ||
  fail "file: $bin is not statically linked: $info"
[[ "$info" == *", stripped"* ]] || fail "file: $bin is not stripped: $info"
# Captured first: `readelf | grep -q` under pipefail can fail on SIGPIPE and hide a match.
program_headers="$(readelf -lW "$bin")"
dynamic="$(readelf -dW "$bin")"
if [[ "$program_headers" == *INTERP* ]]; then fail "readelf: $bin asks for a program interpreter"; fi
if [[ "$dynamic" == *"(NEEDED)"* ]]; then fail "readelf: $bin needs shared libraries: $dynamic"; fi
size=$(stat -c %s "$bin")
printf 'size: %s bytes (%s MiB)\n' "$size" "$(awk -v s="$size" 'BEGIN { printf "%.1f", s / 1048576 }')" >&2

step "empty chroot: only the binary, a CA bundle and the example config"
[[ -f "$example" ]] || fail "$example is missing (the example configuration)"
ca=""
for c in /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt /etc/ssl/cert.pem; do
  [[ -f "$c" ]] && { ca="$c"; break; }
done
[[ -n "$ca" ]] || fail "no CA bundle on this machine (apt-get install ca-certificates)"
jail="$(mktemp -d /tmp/kb-static-chroot.XXXXXX)"
trap 'rm -rf "$jail"' EXIT
mkdir -p "$jail/etc/ssl/certs" "$jail/target"
install -m 0755 "$bin" "$jail/kasm-bootstrap"
install -m 0644 "$ca" "$jail/etc/ssl/certs/ca-certificates.crt"
install -m 0644 "$example" "$jail/agent.json"
printf 'chroot contents:\n' >&2
(cd "$jail" && find . -mindepth 1 | sort) >&2

chroot_bin="$(command -v chroot)" || fail "chroot not found"
in_jail() { env -i TERM=dumb "$chroot_bin" "$jail" /kasm-bootstrap "$@"; }

version="$(in_jail --version 2>&1)" || fail "kasm-bootstrap --version in the empty chroot: $version"
printf 'kasm-bootstrap --version: %s\n' "$version" >&2

set +e
plan_out="$(in_jail plan --config /agent.json --root /target --output json 2>"$jail/plan.err")"
rc=$?
set -e
if [[ $rc -ne 0 ]]; then
  printf '%s\n' "$plan_out" >&2
  cat "$jail/plan.err" >&2
  fail "kasm-bootstrap plan --config /agent.json --root /target in the empty chroot exited $rc"
fi
if command -v python3 >/dev/null; then
  printf '%s' "$plan_out" | python3 -c 'import json, sys; json.load(sys.stdin)' ||
    fail "plan --output json in the chroot did not print one JSON document"
fi
token="$(sed -n 's/.*"manager_token"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' "$example" | head -n1)"
if [[ -n "$token" ]] && grep -qF -- "$token" <<<"$plan_out$(cat "$jail/plan.err")"; then
  fail "the manager token from $example appears in the plan output"
fi
printf 'plan in the empty chroot: OK (%s bytes of JSON)\n' "${#plan_out}" >&2
in_jail plan --config /agent.json --root /target >/dev/null 2>&1 ||
  fail "kasm-bootstrap plan (text output) in the empty chroot"
# The chroot itself as the root: the CA bundle at /etc/ssl/certs is then the one found.
in_jail plan --config /agent.json --output json >/dev/null 2>"$jail/plan.err" ||
  { cat "$jail/plan.err" >&2; fail "kasm-bootstrap plan --root / in the empty chroot"; }

step "OK: $bin, statically linked, stripped, $size bytes; $(($(date +%s) - t0)) s"
