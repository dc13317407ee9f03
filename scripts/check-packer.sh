#!/usr/bin/env bash
# Offline checks of the Packer template in packer/ with Debian's packer (1.6.6, amazon-ebs
# built in): `packer fmt -check`, `packer validate` for the default (both sources, amd64
# and arm64), the baked variant, base_os=ubuntu-24.04 and each source alone (`-only`: an
# arm64-only build needs no amd64 .deb and the other way round), negative cases (a
# release_url that is not https://, a release_sha256 that is not 64 hex digits, a base_os
# other than ubuntu-22.04/24.04: validate must fail naming the variable), what `packer
# console` evaluates (image defaults with metrics_file, the tool and release versions of
# the tags, the Canonical AMI filter, name and tags per base_os and architecture), and
# `bash -n` and shellcheck of the provisioning scripts. Installs packer with apt-get if missing.
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
# validate checks that the file provisioners' sources exist: use the real packages when
# they have been built, else placeholders.
deb="$repo/build/static/kasm-bootstrap.deb"
if [[ ! -f "$deb" ]]; then
  deb="$tmp/kasm-bootstrap.deb"
  : >"$deb"
fi
deb_arm64="$repo/build/static-arm64/kasm-bootstrap.deb"
if [[ ! -f "$deb_arm64" ]]; then
  deb_arm64="$tmp/kasm-bootstrap-arm64.deb"
  : >"$deb_arm64"
fi
readonly good_url="https://kasm-static-content.s3.amazonaws.com/kasm_release_1.16.1.tar.gz"
good_sha="$(printf '0%.0s' {1..64})"
readonly good_sha
base=(-var "deb_file=$deb" -var "deb_file_arm64=$deb_arm64")
common=("${base[@]}" -var "release_url=$good_url" -var "release_sha256=$good_sha")
log "packer validate packer/ (defaults: ubuntu-22.04, amd64 and arm64)"
packer validate "${common[@]}" packer/ || fail "packer validate packer/ (defaults)"
log "packer validate packer/ (base_os=ubuntu-24.04)"
packer validate "${common[@]}" -var base_os=ubuntu-24.04 packer/ || fail "packer validate packer/ (base_os=ubuntu-24.04)"
# One source alone: the other architecture's .deb does not exist, and must not be needed.
missing="$tmp/no-such.deb"
only_common=(-var "release_url=$good_url" -var "release_sha256=$good_sha")
log "packer validate -only=amazon-ebs.ubuntu_arm64 (base_os=ubuntu-24.04, instance_type_arm64=m7g.large, no amd64 .deb)"
packer validate -only=amazon-ebs.ubuntu_arm64 "${only_common[@]}" -var "deb_file=$missing" -var "deb_file_arm64=$deb_arm64" \
  -var base_os=ubuntu-24.04 -var instance_type_arm64=m7g.large packer/ || fail "packer validate -only=amazon-ebs.ubuntu_arm64"
log "packer validate -only=amazon-ebs.ubuntu_amd64 (no arm64 .deb)"
packer validate -only=amazon-ebs.ubuntu_amd64 "${only_common[@]}" -var "deb_file=$deb" -var "deb_file_arm64=$missing" \
  packer/ || fail "packer validate -only=amazon-ebs.ubuntu_amd64"
# ... while a build of both needs both.
if out="$(packer validate "${only_common[@]}" -var "deb_file=$deb" -var "deb_file_arm64=$missing" packer/ 2>&1)"; then
  fail "packer validate accepted a build of both sources without the arm64 .deb"
fi
grep -qF "$missing" <<<"$out" || fail "packer validate failed without naming the missing arm64 .deb: $out"
log "  refused as it should: both sources, no arm64 .deb"
# The boot suite's source (docs/boot.md) alone, with what tests/boot/boot_test.py passes.
log "packer validate -only=qemu.debian12 (qemu_* variables, extra_image_defaults, provisioner_environment)"
packer validate -only=qemu.debian12 "${only_common[@]}" -var "deb_file=$deb" -var "deb_file_arm64=$missing" \
  -var qemu_source_image=/nonexistent/source.qcow2 -var qemu_ssh_host=10.77.0.2 \
  -var 'qemu_args=[["-smbios", "type=1,manufacturer=Amazon EC2"]]' -var baked=true \
  -var 'extra_image_defaults={"ca_bundle": "/etc/kb-boot-test/ca.pem"}' \
  -var 'provisioner_environment=["KASM_FAKE_ROOT=/kbroot"]' packer/ || fail "packer validate -only=qemu.debian12"
got="$(printf 'local.image_defaults\n' | packer console "${common[@]}" -var 'extra_image_defaults={"ca_bundle": "/x.pem", "swap_size": "off"}' packer/ 2>&1)"
grep -qF '"ca_bundle" = "/x.pem"' <<<"$got" && grep -qF '"swap_size" = "off"' <<<"$got" ||
  fail "extra_image_defaults did not reach local.image_defaults (or did not win over swap_size): $got"
log "  extra_image_defaults reach the image defaults and win over the variables"
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
for bad in ubuntu-20.04 ubuntu-24.10 jammy ""; do
  if out="$(packer validate "${common[@]}" -var "base_os=$bad" packer/ 2>&1)"; then
    fail "packer validate accepted base_os='$bad'"
  fi
  grep -q "The base_os variable must" <<<"$out" || fail "packer validate failed without naming base_os: $out"
  log "  refused as it should: base_os='$bad'"
done

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

# The Canonical AMI filter, the AMI name and the tags per base_os and architecture.
console_os() { printf '%s\n' "$2" | packer console "${common[@]}" -var "base_os=$1" packer/ 2>&1; }
expect() { # base_os expression wanted
  local got
  got="$(console_os "$1" "$2")"
  [[ "$got" == "$3" ]] || fail "base_os=$1: $2 is '$got', not '$3'"
}
expect ubuntu-22.04 local.source_ami_name_filter "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-*"
expect ubuntu-22.04 local.source_ami_name_filter_arm64 "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-arm64-server-*"
expect ubuntu-24.04 local.source_ami_name_filter "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*"
expect ubuntu-24.04 local.source_ami_name_filter_arm64 "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-arm64-server-*"
expect ubuntu-24.04 local.ami_name_prefix "kasm-bootstrap-agent-ubuntu-24.04"
expect ubuntu-22.04 local.ami_name_prefix "kasm-bootstrap-agent-ubuntu-22.04"
got="$(printf '%s\n' local.source_ami_name_filter | packer console "${common[@]}" -var base_os=ubuntu-24.04 \
  -var 'source_ami_name_filter=my/own-*' packer/ 2>&1)"
[[ "$got" == "my/own-*" ]] || fail "source_ami_name_filter given is not used: '$got'"
for os in ubuntu-22.04 ubuntu-24.04; do
  tags="$(console_os "$os" local.image_tags)"
  tags_arm64="$(console_os "$os" local.image_tags_arm64)"
  grep -qF '"base-os" = "'"$os"'"' <<<"$tags" || fail "base_os=$os: image_tags lack base-os $os: $tags"
  grep -qF '"base-os" = "'"$os"'"' <<<"$tags_arm64" || fail "base_os=$os: image_tags_arm64 lack base-os $os: $tags_arm64"
  grep -qF '"architecture" = "x86_64"' <<<"$tags" || fail "image_tags lack architecture x86_64: $tags"
  grep -qF '"architecture" = "arm64"' <<<"$tags_arm64" || fail "image_tags_arm64 lack architecture arm64: $tags_arm64"
  grep -qE '"Name" = "kasm-bootstrap-agent-'"$os"'-arm64-[0-9]+"' <<<"$tags_arm64" ||
    fail "image_tags_arm64 Name is not kasm-bootstrap-agent-$os-arm64-<timestamp>: $tags_arm64"
  grep -qF '"kasm-release-version" = "1.16.1"' <<<"$tags_arm64" || fail "image_tags_arm64 lost the shared tags: $tags_arm64"
done
grep -q 'architecture *= "arm64"' packer/kasm-bootstrap.pkr.hcl || fail "no arm64 architecture filter in the arm64 source"
log "packer console: AMI filters, names and tags for ubuntu-22.04 and ubuntu-24.04, amd64 and arm64"

log "bash -n packer/scripts/*.sh"
for s in packer/scripts/*.sh; do
  bash -n "$s" || fail "syntax error in $s"
done
if command -v shellcheck >/dev/null; then
  shellcheck packer/scripts/*.sh || fail "shellcheck packer/scripts/*.sh"
fi
log "OK"
