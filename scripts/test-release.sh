#!/usr/bin/env bash
# Release checks, one entry point (CI: root on a fresh Debian 12 machine):
#   scripts/test-static.sh            static deps, static build, ctest, file/ldd, empty chroot
#   scripts/check-systemd-units.sh    systemd-analyze verify + boot ordering-cycle check
#   scripts/check-packer.sh           packer fmt -check + validate (offline, packer 1.6.6)
#   tests/release/test_templates.py   the Kasm startup-script templates (every generation), rendered as Kasm does
#   scripts/build-deb.sh              the .deb from the static build
# Every check runs even when an earlier one fails; the summary names each failure and the
# exit status is non-zero if any failed.
#
# Installs the tools the checks need (python3, cloud-init for the cloud-config checks;
# the scripts install the rest). KB_RELEASE_NO_CLOUD_INIT=1 skips installing cloud-init
# (the cloud-config checks are then skipped, not failed).
set -uo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly repo
cd "$repo" || exit 1
t_all=$(date +%s)

if [[ $(id -u) -ne 0 ]]; then
  echo "test-release: FAILED: must run as root (apt-get, chroot)" >&2
  exit 1
fi

tools=(python3)
[[ "${KB_RELEASE_NO_CLOUD_INIT:-0}" == 1 ]] || tools+=(cloud-init)
missing=()
for p in "${tools[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "test-release: installing ${missing[*]}" >&2
  if ! { DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=600 update >/dev/null &&
    DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "${missing[@]}" >/dev/null; }; then
    echo "test-release: FAILED: apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi
# Debian's interpreter, whatever python3 comes first on PATH (cloud-init's modules live there).
py=/usr/bin/python3
[[ -x "$py" ]] || py=python3

names=()
results=()
times=()
run() {
  local name="$1"
  shift
  local t0 rc
  t0=$(date +%s)
  printf '\n########## test-release: %s\n' "$name" >&2
  "$@"
  rc=$?
  names+=("$name")
  results+=("$rc")
  times+=("$(($(date +%s) - t0))")
  if ((rc == 0)); then
    printf '########## test-release: %s: OK (%ss)\n' "$name" "${times[-1]}" >&2
  else
    printf '########## test-release: %s: FAILED (exit %s, %ss)\n' "$name" "$rc" "${times[-1]}" >&2
  fi
}

run "static build and tests (scripts/test-static.sh)" scripts/test-static.sh
run "systemd units (scripts/check-systemd-units.sh)" scripts/check-systemd-units.sh
run "packer template (scripts/check-packer.sh)" scripts/check-packer.sh
# The rendered templates go on into `kasm-bootstrap plan`: the static build's binary, the
# one that ships (the test's own default is the dev build, which CI does not make).
run "startup-script templates (tests/release/test_templates.py)" \
  env KB_DEV_BINARY="${KB_DEV_BINARY:-$repo/build/static/kasm-bootstrap}" "$py" tests/release/test_templates.py
run "debian package (scripts/build-deb.sh)" scripts/build-deb.sh

failed=0
printf '\n========== test-release summary (%ss total)\n' "$(($(date +%s) - t_all))" >&2
for i in "${!names[@]}"; do
  if ((results[i] == 0)); then
    printf '  ok      %4ss  %s\n' "${times[i]}" "${names[i]}" >&2
  else
    printf '  FAILED  %4ss  %s (exit %s)\n' "${times[i]}" "${names[i]}" "${results[i]}" >&2
    failed=1
  fi
done
exit "$failed"
