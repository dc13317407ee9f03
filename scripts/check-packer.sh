#!/usr/bin/env bash
# Offline checks of the Packer template in packer/ with Debian's packer (1.6.6, amazon-ebs
# built in): `packer fmt -check`, `packer validate` for the default and the baked variant,
# and `bash -n` of the provisioning scripts. Installs packer with apt-get if missing.
# Nothing talks to AWS: validate only parses and prepares the configuration.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly repo
fail() { printf 'check-packer: FAILED: %s\n' "$*" >&2; exit 1; }
log() { printf '[check-packer] %s\n' "$*" >&2; }

export PACKER_CHECKPOINT_DISABLE=1 # no version check over the network
export CHECKPOINT_DISABLE=1

if ! command -v packer >/dev/null; then
  [[ $(id -u) -eq 0 ]] || fail "packer missing and not root: apt-get install packer"
  log "installing packer (Debian package)"
  DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=600 update >/dev/null || fail "apt-get update"
  DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=600 install -y --no-install-recommends packer >/dev/null ||
    fail "apt-get install packer"
fi
log "$(packer version | head -n1)"

cd "$repo"
grep -rlq 'required_plugins' packer/*.pkr.hcl &&
  fail "a required_plugins block in packer/*.pkr.hcl: packer 1.6.6 rejects it; keep it in packer/plugins/"

log "packer fmt -check packer/ packer/plugins/"
for d in packer packer/plugins; do
  packer fmt -check -diff "$d" || fail "packer fmt -check $d (run: packer fmt $d)"
done

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# validate checks that the file provisioner's source exists: use the real package when
# scripts/build-deb.sh has made it, else a placeholder.
deb="$repo/build/static/kasm-bootstrap.deb"
if [[ ! -f "$deb" ]]; then
  deb="$tmp/kasm-bootstrap.deb"
  : >"$deb"
fi
common=(
  -var "release_url=https://kasm-static-content.s3.amazonaws.com/kasm_release_1.16.1.tar.gz"
  -var "release_sha256=$(printf '0%.0s' {1..64})"
  -var "deb_file=$deb"
)
log "packer validate packer/ (defaults)"
packer validate "${common[@]}" packer/ || fail "packer validate packer/ (defaults)"
log "packer validate packer/ (baked=true, prefetch_release=false, subnet_id set)"
packer validate "${common[@]}" -var baked=true -var prefetch_release=false -var subnet_id=subnet-0123456789abcdef0 \
  -var region=eu-west-1 packer/ || fail "packer validate packer/ (baked variant)"

log "bash -n packer/scripts/*.sh"
for s in packer/scripts/*.sh; do
  bash -n "$s" || fail "syntax error in $s"
done
if command -v shellcheck >/dev/null; then
  shellcheck packer/scripts/*.sh || fail "shellcheck packer/scripts/*.sh"
fi
log "OK"
