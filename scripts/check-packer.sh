#!/usr/bin/env bash
# Offline checks of the Packer template in packer/ with Debian's packer (1.6.6, amazon-ebs
# built in): `packer fmt -check`, `packer validate` for the default and the baked variant,
# negative cases (a release_url that is not https://, a release_sha256 that is not 64 hex
# digits: validate must fail naming the variable), what `packer console` evaluates (image
# defaults with metrics_file, the tool and release versions of the tags), and `bash -n`
# and shellcheck of the provisioning scripts. Installs packer with apt-get if missing.
# Nothing talks to AWS: validate and console only parse and prepare the configuration.
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
readonly good_url="https://kasm-static-content.s3.amazonaws.com/kasm_release_1.16.1.tar.gz"
good_sha="$(printf '0%.0s' {1..64})"
readonly good_sha
base=(-var "deb_file=$deb")
common=("${base[@]}" -var "release_url=$good_url" -var "release_sha256=$good_sha")
log "packer validate packer/ (defaults)"
packer validate "${common[@]}" packer/ || fail "packer validate packer/ (defaults)"
log "packer validate packer/ (baked=true, prefetch_release=false, subnet_id set)"
packer validate "${common[@]}" -var baked=true -var prefetch_release=false -var subnet_id=subnet-0123456789abcdef0 \
  -var region=eu-west-1 packer/ || fail "packer validate packer/ (baked variant)"
log "packer validate packer/ (release_sha256 in upper case, release_version given)"
packer validate "${base[@]}" -var "release_url=$good_url" -var "release_sha256=$(printf 'ABCDEF0123456789%.0s' 1 2 3 4)" \
  -var release_version=1.16.1 packer/ || fail "packer validate packer/ (upper-case sha256)"

# Negative cases: validate must fail, and its message must name the variable.
refused() { # variable url sha256
  local name="$1" out
  if out="$(packer validate "${base[@]}" -var "release_url=$2" -var "release_sha256=$3" packer/ 2>&1)"; then
    fail "packer validate accepted release_url='$2' release_sha256='$3'"
  fi
  grep -q "The $name variable must" <<<"$out" || fail "packer validate failed without naming $name: $out"
  local value="$2"
  [[ "$name" == release_sha256 ]] && value="$3"
  log "  refused as it should: $name='$value': $(grep -m1 "The $name variable must" <<<"$out")"
}
log "packer validate packer/ with invalid values (each must fail naming the variable)"
refused release_url "http://kasm-static-content.s3.amazonaws.com/kasm_release_1.16.1.tar.gz" "$good_sha"
refused release_url "https://" "$good_sha"
refused release_url "" "$good_sha"
refused release_url "https://example.com/kasm release.tar.gz" "$good_sha"
refused release_sha256 "$good_url" nothex
refused release_sha256 "$good_url" "$(printf 'g%.0s' {1..64})"
refused release_sha256 "$good_url" "${good_sha:1}"
refused release_sha256 "$good_url" "${good_sha}0"
refused release_sha256 "$good_url" ""

# What the template computes: the image defaults, and the versions in the tags/manifest.
console() { printf '%s\n' "$1" | packer console "${common[@]}" packer/ 2>&1; }
want_version="$(sed -n 's/^project(kasm-bootstrap VERSION \([^ )]*\).*/\1/p' CMakeLists.txt)"
[[ -n "$want_version" ]] || fail "no project(kasm-bootstrap VERSION ...) in CMakeLists.txt"
got="$(console local.kasm_bootstrap_version)"
[[ "$got" == "$want_version" ]] || fail "local.kasm_bootstrap_version is '$got', CMakeLists.txt says $want_version"
got="$(console local.release_version)"
[[ "$got" == 1.16.1 ]] || fail "local.release_version is '$got' for $good_url, not 1.16.1"
defaults="$(console local.image_defaults)"
grep -qF '"metrics_file" = "/var/lib/prometheus/node-exporter/kasm_bootstrap.prom"' <<<"$defaults" ||
  fail "image_defaults has no metrics_file in node_exporter's textfile directory: $defaults"
tags="$(console local.image_tags)"
for want in '"kasm-bootstrap-version" = "'"$want_version"'"' '"kasm-release-version" = "1.16.1"' \
  '"kasm-release-sha256" = "'"$good_sha"'"' '"source-ami" = "{{ .SourceAMI }}"'; do
  grep -qF "$want" <<<"$tags" || fail "image_tags lacks $want: $tags"
done
log "packer console: kasm-bootstrap $want_version and Kasm 1.16.1 in the tags, metrics_file in the image defaults"

log "bash -n packer/scripts/*.sh"
for s in packer/scripts/*.sh; do
  bash -n "$s" || fail "syntax error in $s"
done
if command -v shellcheck >/dev/null; then
  shellcheck packer/scripts/*.sh || fail "shellcheck packer/scripts/*.sh"
fi
log "OK"
