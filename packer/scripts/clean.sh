#!/bin/bash
# Runs as root on the Packer build instance, last: removes everything that identifies
# this build instance or would leak into every agent made from the image.
set -euo pipefail
log() { printf '==> clean: %s\n' "$*"; }
on_err() { printf '==> clean: FAILED (exit %s) at line %s\n' "$1" "$2" >&2; }
trap 'on_err $? $LINENO' ERR

log "apt caches and uploaded files"
apt-get -q clean
rm -f /tmp/kasm-bootstrap.deb
rm -rf /var/lib/apt/lists/*

# kasm-bootstrap state: a run during the build (there should be none) must not make
# every agent think it is already registered. Per-instance config lives in /run.
log "kasm-bootstrap state"
rm -rf /var/lib/kasm-bootstrap /run/kasm-bootstrap

# cloud-init: forget this instance so the next boot is a first boot (user-data runs).
log "cloud-init clean --logs --seed"
cloud-init clean --logs --seed

# The build user is the image's default user (ubuntu on Ubuntu, debian on the boot test's
# Debian image); cloud-init gives it the key of each instance at its first boot.
log "SSH host keys (regenerated on first boot) and authorized keys of the build user"
rm -f /etc/ssh/ssh_host_*
rm -f /home/*/.ssh/authorized_keys /root/.ssh/authorized_keys

log "machine-id (regenerated on first boot)"
truncate -s 0 /etc/machine-id
[ -L /var/lib/dbus/machine-id ] || rm -f /var/lib/dbus/machine-id

log "logs and shell history"
find /var/log -type f \( -name '*.gz' -o -name '*.[0-9]' -o -name '*.old' \) -delete
find /var/log -type f -exec truncate -s 0 {} +
journalctl --rotate >/dev/null 2>&1 || true
journalctl --vacuum-time=1s >/dev/null 2>&1 || true
rm -f /root/.bash_history /home/*/.bash_history
sync
log "done"
