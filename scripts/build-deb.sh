#!/usr/bin/env bash
# Builds the kasm-bootstrap .deb from the static release build (cmake/Packaging.cmake):
#   build/static/kasm-bootstrap_<version>_<arch>.deb, and a copy at
#   build/static/kasm-bootstrap.deb (the default the Packer template uploads).
# Configures and builds the static preset first when needed (scripts/build-static-deps.sh
# for its libraries), prints `dpkg-deb --info` and `--contents`, and checks the contents
# (among them the startup-script templates of every Kasm generation, identical to
# cloud-init/<generation>/, which must not be stale: cloud-init/generate.py --check).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly repo
readonly build="$repo/build/static"
readonly jobs="${KB_JOBS:-2}"
fail() { printf 'build-deb: FAILED: %s\n' "$*" >&2; exit 1; }
log() { printf '[build-deb] %s\n' "$*" >&2; }

cd "$repo"
# The packaged templates are generated (cloud-init/generate.py): never package a stale copy.
python3 cloud-init/generate.py --check || fail "cloud-init templates stale: run python3 cloud-init/generate.py"
if [[ ! -f "$build/CPackConfig.cmake" || ! -f "$build/build.ninja" ]]; then
  log "no configured static build: building its dependencies and configuring"
  scripts/build-static-deps.sh || fail "scripts/build-static-deps.sh"
  cmake --preset static || fail "cmake --preset static"
fi
log "cmake --build --preset static -j$jobs (up to date is fine)"
cmake --build --preset static -j"$jobs" || fail "cmake --build --preset static"
[[ -x "$build/kasm-bootstrap" ]] || fail "$build/kasm-bootstrap missing"

log "cpack -G DEB"
rm -f "$build"/kasm-bootstrap_*.deb "$build/kasm-bootstrap.deb"
(cd "$build" && cpack -G DEB --config CPackConfig.cmake) || fail "cpack -G DEB (log: $build/_CPack_Packages/)"
shopt -s nullglob
debs=("$build"/kasm-bootstrap_*.deb)
((${#debs[@]} == 1)) || fail "expected one kasm-bootstrap_*.deb in $build, found ${#debs[@]}"
deb="${debs[0]}"
cp -f "$deb" "$build/kasm-bootstrap.deb"

printf '\n--- dpkg-deb --info %s\n' "$deb"
dpkg-deb --info "$deb" || fail "dpkg-deb --info"
printf '\n--- dpkg-deb --contents %s\n' "$deb"
contents="$(dpkg-deb --contents "$deb")" || fail "dpkg-deb --contents"
printf '%s\n' "$contents"

# The startup-script templates, one directory per Kasm generation (cloud-init/<generation>/,
# written by cloud-init/generate.py; cmake/Packaging.cmake installs them).
templates=()
for t in cloud-init/kasm-*/*; do
  [[ -f "$t" ]] && templates+=("${t#cloud-init/}")
done
((${#templates[@]} == 4)) ||
  fail "expected 4 templates under cloud-init/kasm-*/ (2 generations x 2 variants), found ${#templates[@]}"

wants=(./usr/bin/kasm-bootstrap
  ./lib/systemd/system/kasm-bootstrap.service
  ./lib/systemd/system/kasm-bootstrap-health.service
  ./lib/systemd/system/kasm-bootstrap-health.timer
  ./lib/systemd/system/kasm-bootstrap-metadata-firewall.service
  ./usr/share/kasm-bootstrap/examples/agent.json)
for t in "${templates[@]}"; do wants+=("./usr/share/kasm-bootstrap/$t"); done
for want in "${wants[@]}"; do
  grep -qE "[[:space:]]${want//./\\.}\$" <<<"$contents" || fail "$want missing from the package"
done
grep -qE '^-rwxr-xr-x root/root .* \./usr/bin/kasm-bootstrap$' <<<"$contents" ||
  fail "/usr/bin/kasm-bootstrap is not root-owned mode 0755"

# The packaged binary runs and is the static one.
x="$(mktemp -d)"
trap 'rm -rf "$x"' EXIT
dpkg-deb -x "$deb" "$x" || fail "dpkg-deb -x"
"$x/usr/bin/kasm-bootstrap" --version >/dev/null || fail "the packaged binary does not run"
file -b "$x/usr/bin/kasm-bootstrap" | grep -q 'statically linked' || fail "the packaged binary is not static"
for t in "${templates[@]}"; do
  cmp -s "$x/usr/share/kasm-bootstrap/$t" "cloud-init/$t" ||
    fail "packaged /usr/share/kasm-bootstrap/$t differs from cloud-init/$t"
done

log "OK: $deb ($(stat -c %s "$deb") bytes), copied to $build/kasm-bootstrap.deb"
