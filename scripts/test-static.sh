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
#   scripts/test-static.sh              x86_64: preset static, build/static
#   scripts/test-static.sh --arch arm64 aarch64: preset static-arm64, build/static-arm64, the
#                                       same steps cross-compiled, its tests under
#                                       qemu-aarch64 (CTest's emulator; binfmt_misc for the
#                                       binary the tests start, registered here), and the
#                                       arm64 .deb (cpack; Architecture and contents checked)
#
# Environment: KB_JOBS (default 2); KB_SKIP_CTEST=1 skips step 3; KB_CTEST_ARGS adds
# arguments to ctest (e.g. the subset CI runs for arm64); KB_STATIC_CMAKE_ARGS adds
# arguments to `cmake --preset static` for experiments (e.g. -DKB_WERROR=OFF while the
# tree has warnings). CI sets neither; the preset's values come back on the next plain run.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly repo
readonly jobs="${KB_JOBS:-2}"
t0=$(date +%s)
step() { printf '\n=== test-static [+%ss]: %s\n' "$(($(date +%s) - t0))" "$*" >&2; }
fail() { printf 'test-static: FAILED: %s\n' "$*" >&2; exit 1; }

arch=amd64
case "${1:-}" in
  "") ;;
  --arch) arch="${2:-}" ;;
  *) fail "unknown argument '$1' (--arch amd64|arm64)" ;;
esac
case "$arch" in
  amd64) readonly preset=static elf_machine="x86-64" ctest_exclude=() ;;
  # What qemu-user cannot run (docs/static-build.md, "arm64"): the metadata firewall's
  # NETLINK_NETFILTER socket, and a process's own /proc/self/stat start time. The e2e
  # entries of a cross build leave out the same (tests/CMakeLists.txt).
  arm64) readonly preset=static-arm64 elf_machine="ARM aarch64" ctest_exclude=(-E '^(metadata firewall: |status: a live run is running)') ;;
  *) fail "--arch '$arch' is not supported (amd64 or arm64)" ;;
esac
readonly bin="$repo/build/$preset/kasm-bootstrap"
readonly example="$repo/examples/agent.json"

[[ $(id -u) -eq 0 ]] || fail "must run as root (apt-get for the dependencies, chroot for the empty-root check)"
cd "$repo"

step "static dependencies (scripts/build-static-deps.sh --arch $arch)"
scripts/build-static-deps.sh --arch "$arch" || fail "scripts/build-static-deps.sh --arch $arch"

if [[ "$arch" == arm64 ]]; then
  # The tests start the aarch64 binary by path (KB_BINARY, the e2e worlds, this script's
  # chroot): the kernel hands it to qemu-aarch64 through binfmt_misc. Registered again on
  # every run: the F flag opens the emulator when it is registered, so an entry made
  # before an upgrade would keep running the old QEMU (7.2, without openat2).
  step "binfmt_misc: qemu-aarch64 for aarch64 ELF files"
  conf=/usr/lib/binfmt.d/qemu-aarch64.conf
  [[ -f "$conf" ]] || fail "$conf is missing (package qemu-user-static)"
  if [[ ! -e /proc/sys/fs/binfmt_misc/register ]]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || fail "cannot mount binfmt_misc"
  fi
  if [[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]]; then
    echo -1 >/proc/sys/fs/binfmt_misc/qemu-aarch64 || fail "cannot remove the old qemu-aarch64 binfmt entry"
  fi
  cat "$conf" >/proc/sys/fs/binfmt_misc/register || fail "cannot register $conf with binfmt_misc"
  printf '%s\n' "$(qemu-aarch64-static --version | head -n1)" >&2
fi

step "configure: cmake --preset $preset ${KB_STATIC_CMAKE_ARGS:-}"
# shellcheck disable=SC2086 # word splitting of the extra arguments is intended
cmake --preset "$preset" ${KB_STATIC_CMAKE_ARGS:-} || fail "cmake --preset $preset"

step "build: cmake --build --preset $preset -j$jobs"
cmake --build --preset "$preset" -j"$jobs" || fail "cmake --build --preset $preset (compile or static link)"
[[ -x "$bin" ]] || fail "$bin was not produced"

if [[ "${KB_SKIP_CTEST:-0}" != 1 ]]; then
  step "tests: ctest --preset $preset ${KB_CTEST_ARGS:-}"
  # shellcheck disable=SC2086 # word splitting of the extra arguments is intended
  ctest --preset "$preset" -j"$((jobs * 2))" "${ctest_exclude[@]}" ${KB_CTEST_ARGS:-} || fail "ctest --preset $preset"
fi

step "binary checks: file, ldd, size"
info="$(file -b "$bin")"
printf '%s\n' "$info" >&2
# A static PIE (CMakeLists.txt): `file` says "static-pie linked". Static means no program
# interpreter and no shared library needed, which is what readelf is asked.
[[ "$info" == *"static-pie linked"* || "$info" == *"statically linked"* ]] ||
  fail "file: $bin is not statically linked: $info"
[[ "$info" == *", stripped"* ]] || fail "file: $bin is not stripped: $info"
[[ "$info" == *"$elf_machine"* ]] || fail "file: $bin is not an $elf_machine executable: $info"
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

if [[ "$arch" != amd64 ]]; then
  # The .deb for this architecture (the x86_64 one is scripts/build-deb.sh's, with lintian
  # and the install test, which cannot install an arm64 package here).
  step "the $arch .deb: cpack -G DEB in build/$preset"
  rm -f "$repo/build/$preset"/kasm-bootstrap_*.deb
  (cd "$repo/build/$preset" && cpack -G DEB --config CPackConfig.cmake >cpack.log 2>&1) ||
    { tail -n 20 "$repo/build/$preset/cpack.log" >&2; fail "cpack -G DEB in build/$preset"; }
  debs=("$repo/build/$preset"/kasm-bootstrap_*_"$arch".deb)
  [[ -f "${debs[0]}" ]] || fail "cpack made no kasm-bootstrap_*_$arch.deb in build/$preset"
  cp -f "${debs[0]}" "$repo/build/$preset/kasm-bootstrap.deb"
  deb_arch="$(dpkg-deb -f "${debs[0]}" Architecture)"
  [[ "$deb_arch" == "$arch" ]] || fail "${debs[0]} says Architecture: $deb_arch, not $arch"
  unpacked="$(mktemp -d /tmp/kb-deb-$arch.XXXXXX)"
  dpkg-deb -x "${debs[0]}" "$unpacked"
  cmp -s "$unpacked/usr/bin/kasm-bootstrap" "$bin" || { rm -rf "$unpacked"; fail "${debs[0]}: usr/bin/kasm-bootstrap is not $bin"; }
  rm -rf "$unpacked"
  printf '%s: Architecture %s, %s bytes, usr/bin/kasm-bootstrap is the binary checked above\n' \
    "${debs[0]##*/}" "$deb_arch" "$(stat -c %s "${debs[0]}")" >&2
fi

step "OK: $bin, $elf_machine, statically linked, stripped, $size bytes; $(($(date +%s) - t0)) s"
