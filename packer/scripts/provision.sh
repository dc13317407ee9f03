#!/bin/bash
# Runs as root on the Packer build instance (Ubuntu 22.04 or 24.04, amd64 or arm64).
# Installs kasm-bootstrap, writes the image defaults, enables the units and pre-fetches
# the Kasm release.
# Inputs (environment, set by kasm-bootstrap.pkr.hcl): KB_DEB, KB_IMAGE_DEFAULTS (JSON),
# KB_RELEASE_URL, KB_RELEASE_SHA256, KB_CACHE_DIR, KB_PREFETCH (true|false),
# KB_TOOL_VERSION (the kasm-bootstrap version the AMI is tagged with), KB_METRICS_FILE
# (the image default metrics_file, empty = none).
set -euo pipefail
log() { printf '==> provision: %s\n' "$*"; }
die() { printf '==> provision: ERROR: %s\n' "$*" >&2; exit 1; }
on_err() { printf '==> provision: FAILED (exit %s) at line %s\n' "$1" "$2" >&2; }
trap 'on_err $? $LINENO' ERR

[ "$(id -u)" -eq 0 ] || die "must run as root (execute_command uses sudo)"
[ -f "${KB_DEB:-}" ] || die "kasm-bootstrap .deb not found at '${KB_DEB:-}' (file provisioner failed?)"
[[ "${KB_RELEASE_URL:-}" == https://* ]] || die "release_url must be an https:// URL, got '${KB_RELEASE_URL:-}'"
[[ "${KB_RELEASE_SHA256:-}" =~ ^[0-9a-f]{64}$ ]] || die "release_sha256 must be 64 hex digits"

# First boot of the build instance: cloud-init may still be running apt.
log "waiting for cloud-init to finish"
cloud-init status --wait >/dev/null 2>&1 || log "cloud-init status --wait returned non-zero (continuing)"

export DEBIAN_FRONTEND=noninteractive
apt_get() { apt-get -q -o DPkg::Lock::Timeout=600 "$@"; }

# The amd64 and the arm64 image each get their own .deb (deb_file, deb_file_arm64): refuse
# the other one by name rather than let dpkg fail on it halfway.
machine_arch="$(dpkg --print-architecture)"
deb_arch="$(dpkg-deb -f "$KB_DEB" Architecture 2>/dev/null)" || die "$KB_DEB is not a .deb (dpkg-deb cannot read it)"
[ "$deb_arch" = "$machine_arch" ] || [ "$deb_arch" = all ] ||
  die "$KB_DEB is for $deb_arch, this build instance is $machine_arch: set deb_file (amd64) or deb_file_arm64 (arm64) to the package of that architecture"

log "installing $KB_DEB ($deb_arch)"
apt_get install -y --no-install-recommends "$KB_DEB"
kasm-bootstrap --version
# The AMI's tags and the manifest name KB_TOOL_VERSION: it must be what was installed.
installed="$(dpkg-query -W -f='${Version}' kasm-bootstrap)"
[ "$installed" = "${KB_TOOL_VERSION:-}" ] ||
  die "the .deb is kasm-bootstrap $installed, but the AMI would be tagged '${KB_TOOL_VERSION:-}': rebuild it (scripts/build-deb.sh) or set -var kasm_bootstrap_version=$installed"

log "writing /etc/kasm-bootstrap/config.json (image defaults)"
install -d -m 0755 /etc/kasm-bootstrap
printf '%s\n' "$KB_IMAGE_DEFAULTS" >/etc/kasm-bootstrap/config.json.tmp
python3 -m json.tool /etc/kasm-bootstrap/config.json.tmp >/dev/null ||
  die "image defaults are not valid JSON: $KB_IMAGE_DEFAULTS"
chmod 0644 /etc/kasm-bootstrap/config.json.tmp
mv -f /etc/kasm-bootstrap/config.json.tmp /etc/kasm-bootstrap/config.json
cat /etc/kasm-bootstrap/config.json

# metrics_file: its directory must exist before the first run, since
# kasm-bootstrap-health.service sees /var read-only except its ReadWritePaths (which
# include /var/lib/prometheus/node-exporter, Debian/Ubuntu's node_exporter textfile
# directory). An existing directory (prometheus-node-exporter's own) is left as it is.
if [ -n "${KB_METRICS_FILE:-}" ]; then
  [[ "$KB_METRICS_FILE" == /* ]] || die "metrics_file must be an absolute path, got '$KB_METRICS_FILE'"
  metrics_dir="$(dirname "$KB_METRICS_FILE")"
  if [ ! -d "$metrics_dir" ]; then
    log "creating $metrics_dir (0755) for metrics_file"
    install -d -m 0755 "$metrics_dir"
  fi
fi

log "enabling kasm-bootstrap.service, kasm-bootstrap-health.timer and kasm-bootstrap-metadata-firewall.service"
# daemon-reload only where systemd runs (also lets this script run in a chroot).
if [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
systemctl enable kasm-bootstrap.service kasm-bootstrap-health.timer kasm-bootstrap-metadata-firewall.service

if [ "${KB_PREFETCH:-false}" = true ]; then
  # The name kasm-bootstrap looks for (src/kasm/release_cache.cpp): named after the
  # checksum, kasm-release-<first 16 hex digits of the SHA-256>.tar.gz. A verified file
  # there is used at boot without any network.
  name="kasm-release-${KB_RELEASE_SHA256:0:16}.tar.gz"
  install -d -m 0755 "$KB_CACHE_DIR"
  dest="$KB_CACHE_DIR/$name"
  if [ -f "$dest" ] && printf '%s  %s\n' "$KB_RELEASE_SHA256" "$dest" | sha256sum -c --status -; then
    log "release already cached and verified: $dest"
  else
    log "pre-fetching $KB_RELEASE_URL"
    curl -fsSL --proto '=https' --retry 5 --retry-delay 5 --connect-timeout 20 \
      -o "$dest.partial" "$KB_RELEASE_URL" || die "download of $KB_RELEASE_URL failed"
    printf '%s  %s\n' "$KB_RELEASE_SHA256" "$dest.partial" | sha256sum -c --strict - ||
      { rm -f "$dest.partial"; die "checksum mismatch for $KB_RELEASE_URL (expected $KB_RELEASE_SHA256)"; }
    sync "$dest.partial"
    mv -f "$dest.partial" "$dest"
    log "cached $dest ($(du -h "$dest" | cut -f1))"
  fi
else
  log "prefetch_release=false: agents download the release at boot"
fi
log "done"
