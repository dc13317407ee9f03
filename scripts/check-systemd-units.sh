#!/usr/bin/env bash
# Static checks of the units in systemd/ (no systemd needs to run as PID 1):
#   1. `systemd-analyze verify` of each unit, in a scratch root holding the distribution's
#      units, a stub /usr/bin/kasm-bootstrap and cloud-init's boot ordering;
#   2. a boot transaction for multi-user.target with kasm-bootstrap.service enabled must
#      have no ordering cycle (cloud-final.service is After=multi-user.target; docs/platform.md
#      "Boot ordering");
#   3. self-test: the same unit without After=multi-user.target MUST show the cycle, so
#      check 2 is known to detect one.
# Installs the `systemd` package if systemd-analyze is missing. Exit non-zero on failure.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly repo
readonly units=(kasm-bootstrap.service kasm-bootstrap-health.service kasm-bootstrap-health.timer
  kasm-bootstrap-metadata-firewall.service)
fail() { printf 'check-systemd-units: FAILED: %s\n' "$*" >&2; exit 1; }
log() { printf '[check-systemd-units] %s\n' "$*" >&2; }

if ! command -v systemd-analyze >/dev/null; then
  [[ $(id -u) -eq 0 ]] || fail "systemd-analyze missing and not root: apt-get install systemd"
  log "installing systemd (for systemd-analyze)"
  DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=600 update >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=600 install -y --no-install-recommends systemd >/dev/null ||
    fail "apt-get install systemd"
fi
log "$(systemd-analyze --version | head -n1)"

dist_units=""
for d in /usr/lib/systemd/system /lib/systemd/system; do
  [[ -f "$d/multi-user.target" ]] && { dist_units="$d"; break; }
done
[[ -n "$dist_units" ]] || fail "no distribution units (multi-user.target) found under /usr/lib/systemd/system"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# make_root DIR UNIT_FILE: a scratch root as an image would have it after
# `apt install kasm-bootstrap cloud-init`, with the units enabled.
make_root() {
  local root="$1" main_unit="$2"
  mkdir -p "$root/usr/lib/systemd" "$root/usr/bin" "$root/etc/systemd/system"
  cp -a "$dist_units" "$root/usr/lib/systemd/system"
  printf '#!/bin/sh\nexit 0\n' >"$root/usr/bin/kasm-bootstrap"
  chmod 0755 "$root/usr/bin/kasm-bootstrap"
  # cloud-init's ordering as shipped by Ubuntu 22.04 (and Debian 12): cloud-final runs
  # after multi-user.target. Used when cloud-init is not installed here.
  if [[ ! -f "$root/usr/lib/systemd/system/cloud-final.service" ]]; then
    cat >"$root/usr/lib/systemd/system/cloud-final.service" <<'EOF'
[Unit]
Description=Execute cloud user/final scripts (stand-in with cloud-init's ordering)
After=network-online.target
After=multi-user.target
Wants=network-online.target
[Service]
Type=oneshot
ExecStart=/bin/true
RemainAfterExit=yes
TimeoutSec=0
[Install]
WantedBy=cloud-init.target
EOF
    cat >"$root/usr/lib/systemd/system/cloud-init.target" <<'EOF'
[Unit]
Description=Cloud-init target (stand-in)
After=multi-user.target
EOF
  fi
  install -m 0644 "$main_unit" "$root/usr/lib/systemd/system/kasm-bootstrap.service"
  install -m 0644 "$repo/systemd/kasm-bootstrap-health.service" "$repo/systemd/kasm-bootstrap-health.timer" \
    "$repo/systemd/kasm-bootstrap-metadata-firewall.service" \
    "$root/usr/lib/systemd/system/"
  # Enabled: what cloud-init's generator and `systemctl enable` (postinst) create.
  mkdir -p "$root/etc/systemd/system/multi-user.target.wants" "$root/etc/systemd/system/cloud-init.target.wants" \
    "$root/etc/systemd/system/timers.target.wants"
  ln -sf /usr/lib/systemd/system/cloud-init.target "$root/etc/systemd/system/multi-user.target.wants/"
  ln -sf /usr/lib/systemd/system/cloud-final.service "$root/etc/systemd/system/cloud-init.target.wants/"
  ln -sf /usr/lib/systemd/system/kasm-bootstrap.service "$root/etc/systemd/system/multi-user.target.wants/"
  ln -sf /usr/lib/systemd/system/kasm-bootstrap-health.timer "$root/etc/systemd/system/timers.target.wants/"
}

# verify ROOT UNIT...: prints systemd-analyze's findings; returns its exit status.
verify() {
  local root="$1"
  shift
  SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --root="$root" "$@" 2>&1
}

make_root "$tmp/good" "$repo/systemd/kasm-bootstrap.service"

log "systemd-analyze verify ${units[*]}"
out="$(verify "$tmp/good" "${units[@]}")" || fail "systemd-analyze verify rejected the units:
$out"
[[ -z "$out" ]] || fail "systemd-analyze verify reported problems:
$out"

log "boot transaction (multi-user.target with kasm-bootstrap.service and cloud-final.service)"
out="$(verify "$tmp/good" multi-user.target)" || fail "verify multi-user.target:
$out"
if grep -qi 'ordering cycle' <<<"$out"; then
  fail "ordering cycle at boot (a unit After=cloud-final.service and WantedBy=multi-user.target needs After=multi-user.target):
$out"
fi
[[ -z "$out" ]] || fail "systemd-analyze verify multi-user.target reported problems:
$out"

log "self-test: without After=multi-user.target the cycle must be found"
sed -E '/^After=/ s/[[:space:]]+multi-user\.target//' "$repo/systemd/kasm-bootstrap.service" >"$tmp/bad.service"
grep -q '^After=.*multi-user.target' "$tmp/bad.service" && fail "self-test: could not remove After=multi-user.target"
make_root "$tmp/bad" "$tmp/bad.service"
out="$(verify "$tmp/bad" multi-user.target || true)"
grep -qi 'ordering cycle' <<<"$out" ||
  fail "self-test: systemd-analyze did not report the known ordering cycle, so the cycle check proves nothing:
$out"

# Content checks of what the boot ordering requires (docs/platform.md "Boot ordering").
u="$repo/systemd/kasm-bootstrap.service"
for want in '^Type=notify$' '^NotifyAccess=main$' '^TimeoutStartSec=' '^Wants=.*network-online\.target' \
  '^After=.*network-online\.target' '^After=.*cloud-final\.service' '^After=.*multi-user\.target' \
  '^WantedBy=multi-user\.target$' '^ExecStart=/usr/bin/kasm-bootstrap run --config /run/kasm-bootstrap/config\.d$'; do
  grep -Eq "$want" "$u" || fail "kasm-bootstrap.service lacks a line matching $want"
done
grep -Eq '^ExecStart=/usr/bin/kasm-bootstrap health$' "$repo/systemd/kasm-bootstrap-health.service" ||
  fail "kasm-bootstrap-health.service does not run 'kasm-bootstrap health'"
grep -Eq '^Unit=|^OnUnitActiveSec=' "$repo/systemd/kasm-bootstrap-health.timer" ||
  fail "kasm-bootstrap-health.timer has no period"
# Docker recreates DOCKER-USER empty at every start after a reboot: the metadata block
# must run after each start and restart of docker.service (docs/platform.md).
u="$repo/systemd/kasm-bootstrap-metadata-firewall.service"
for want in '^Type=oneshot$' '^RemainAfterExit=yes$' '^After=.*docker\.service' '^PartOf=docker\.service$' \
  '^WantedBy=docker\.service$' '^ExecStart=/usr/bin/kasm-bootstrap protect-metadata$' \
  '^CapabilityBoundingSet=CAP_NET_ADMIN$' '^RestrictAddressFamilies=.*AF_NETLINK'; do
  grep -Eq "$want" "$u" || fail "kasm-bootstrap-metadata-firewall.service lacks a line matching $want"
done
log "OK"
