#!/usr/bin/env bash
# Builds the kasm-bootstrap .deb from the static release build (cmake/Packaging.cmake):
#   build/static/kasm-bootstrap_<version>_<arch>.deb, and a copy at
#   build/static/kasm-bootstrap.deb (the default the Packer template uploads).
# Configures and builds the static preset first when needed (scripts/build-static-deps.sh
# for its libraries), prints `dpkg-deb --info` and `--contents`, and checks:
#   - the contents: binary, units, the startup-script templates of every provider and Kasm
#     generation (identical to cloud-init/[<provider>/]<generation>/, which must not be stale: cloud-init/generate.py
#     --check), copyright, changelog.gz and the man page (gzip -9n, reproducible), bash
#     completion, the logrotate conffile, the lintian overrides;
#   - the logrotate file: `logrotate -d`, and a real forced rotation of a copy pointed at a
#     temporary directory (copytruncate: the log keeps its inode and is emptied);
#   - lintian (installed with apt-get when missing): `--fail-on error,warning`, its output
#     and the overridden tags printed (packaging/lintian-overrides says why each one is);
#   - as root: scripts/test-deb-install.sh (install, an administrator's disable kept over an
#     upgrade, purge leaves nothing). Not as root it is reported as SKIPPED, never as passed;
#     KB_SKIP_DEB_INSTALL_TEST=1 skips it too (said so in the log).
# Environment: KB_JOBS (build jobs, default 2).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly repo
readonly build="$repo/build/static"
readonly jobs="${KB_JOBS:-2}"
t_start=$(date +%s)
fail() { printf 'build-deb: FAILED: %s\n' "$*" >&2; exit 1; }
log() { printf '[build-deb +%3ss] %s\n' "$(($(date +%s) - t_start))" "$*" >&2; }

# apt-get install when a tool is missing (root only); other jobs on a CI machine may hold
# the dpkg lock briefly: wait instead of failing. `update` only when the first try fails.
need_tool() {
  local tool="$1" package="$2" apt=(apt-get -q -o DPkg::Lock::Timeout=600)
  command -v "$tool" >/dev/null && return 0
  [[ $(id -u) -eq 0 ]] || fail "$tool missing and not root: apt-get install $package"
  log "installing $package (Debian package)"
  DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y --no-install-recommends "$package" >/dev/null ||
    { DEBIAN_FRONTEND=noninteractive "${apt[@]}" update >/dev/null &&
      DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y --no-install-recommends "$package" >/dev/null; } ||
    fail "apt-get install $package"
}

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
version="$(dpkg-deb -f "$deb" Version)"

# The startup-script templates, one directory per Kasm generation (cloud-init/<generation>/,
# written by cloud-init/generate.py), packaged as data: <file>.tmpl under templates/.
# One directory per provider and generation (docs/providers.md): AWS at the top, 2
# generations x 2 variants; azure, gcp, oci, digitalocean the same; kubevirt 2 cloud-configs.
templates=()
while IFS= read -r t; do templates+=("${t#cloud-init/}"); done < <(
  find cloud-init -mindepth 2 -type f \( -name startup-script.sh -o -name startup-cloud-config.yaml \) | sort)
((${#templates[@]} == 22)) ||
  fail "expected 22 templates under cloud-init/ (5 clouds x 2 generations x 2 variants + 2 KubeVirt), found ${#templates[@]}"
readonly tdir=usr/share/kasm-bootstrap/templates
readonly doc=usr/share/doc/kasm-bootstrap

wants=(./usr/bin/kasm-bootstrap
  ./lib/systemd/system/kasm-bootstrap.service
  ./lib/systemd/system/kasm-bootstrap-health.service
  ./lib/systemd/system/kasm-bootstrap-health.timer
  ./lib/systemd/system/kasm-bootstrap-metadata-firewall.service
  ./usr/share/kasm-bootstrap/examples/agent.json
  "./$doc/copyright"
  "./$doc/changelog.gz"
  ./usr/share/man/man1/kasm-bootstrap.1.gz
  ./usr/share/bash-completion/completions/kasm-bootstrap
  ./usr/share/lintian/overrides/kasm-bootstrap
  ./etc/logrotate.d/kasm-bootstrap)
[[ -f docs/configuration.md ]] && wants+=("./$doc/configuration.md")
for t in "${templates[@]}"; do wants+=("./$tdir/$t.tmpl"); done
for want in "${wants[@]}"; do
  grep -qE "[[:space:]]${want//./\\.}\$" <<<"$contents" || fail "$want missing from the package"
done
grep -qE '^-rwxr-xr-x root/root .* \./usr/bin/kasm-bootstrap$' <<<"$contents" ||
  fail "/usr/bin/kasm-bootstrap is not root-owned mode 0755"
if grep -E '\.sh$' <<<"$contents" | grep -q 'usr/share/kasm-bootstrap/'; then
  fail "a file named *.sh under /usr/share/kasm-bootstrap: the templates are shipped as .tmpl"
fi

x="$(mktemp -d)"
trap 'rm -rf "$x"' EXIT
mkdir "$x/root"
dpkg-deb -x "$deb" "$x/root" || fail "dpkg-deb -x"
dpkg-deb -e "$deb" "$x/control" || fail "dpkg-deb -e"
r="$x/root"

# The packaged binary runs and is the static one.
"$r/usr/bin/kasm-bootstrap" --version >/dev/null || fail "the packaged binary does not run"
kind="$(file -b "$r/usr/bin/kasm-bootstrap")"
dynamic="$(readelf -dW "$r/usr/bin/kasm-bootstrap")"
[[ "$kind" == *"static-pie linked"* || "$kind" == *"statically linked"* ]] || fail "the packaged binary is not static: $kind"
if [[ "$dynamic" == *"(NEEDED)"* ]]; then fail "the packaged binary needs shared libraries"; fi
for t in "${templates[@]}"; do
  cmp -s "$r/$tdir/$t.tmpl" "cloud-init/$t" || fail "packaged /$tdir/$t.tmpl differs from cloud-init/$t"
done

# changelog.gz and the man page: gzip -9n of their sources, byte for byte (no name, no time
# stamp: the same input always gives the same package contents).
gz_same() { # packaged.gz source
  cmp -s "$1" <(gzip -9n <"$2") || fail "/${1#"$r"/} is not \`gzip -9n\` of $2"
}
gz_same "$r/$doc/changelog.gz" packaging/changelog
gz_same "$r/usr/share/man/man1/kasm-bootstrap.1.gz" docs/reference/kasm-bootstrap.1
cmp -s "$r/usr/share/bash-completion/completions/kasm-bootstrap" docs/reference/kasm-bootstrap.bash-completion ||
  fail "the packaged bash completion differs from docs/reference/kasm-bootstrap.bash-completion"
cl_version="$(zcat "$r/$doc/changelog.gz" | dpkg-parsechangelog -l - -S Version)" || fail "dpkg-parsechangelog"
[[ "$cl_version" == "$version" ]] || fail "changelog's newest version $cl_version is not the package's $version"
grep -q '^Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/$' "$r/$doc/copyright" ||
  fail "copyright is not machine-readable (DEP-5 Format: line)"
grep -qx '/etc/logrotate.d/kasm-bootstrap' "$x/control/conffiles" || fail "/etc/logrotate.d/kasm-bootstrap is not a conffile"

# logrotate: the packaged file parses (-d: debug, changes nothing), and a copy pointed at a
# temporary log really rotates with copytruncate (same inode, emptied, old content in .1.gz).
need_tool logrotate logrotate
log "logrotate -d /etc/logrotate.d/kasm-bootstrap (packaged)"
lr_rc=0
logrotate -d -s "$x/logrotate.state" "$r/etc/logrotate.d/kasm-bootstrap" >"$x/logrotate.out" 2>&1 || lr_rc=$?
sed 's/^/    /' "$x/logrotate.out" >&2
if ((lr_rc != 0)) || grep -qiE '^error' "$x/logrotate.out"; then
  fail "logrotate -d reports an error in /etc/logrotate.d/kasm-bootstrap (exit $lr_rc)"
fi
mkdir -m 0700 "$x/state"
sed "s|/var/lib/kasm-bootstrap/|$x/state/|" "$r/etc/logrotate.d/kasm-bootstrap" >"$x/logrotate.conf"
grep -q "^$x/state/kasm-bootstrap.log {" "$x/logrotate.conf" || fail "the logrotate file does not name /var/lib/kasm-bootstrap/kasm-bootstrap.log"
printf 'line one\n' >"$x/state/kasm-bootstrap.log"
inode="$(stat -c %i "$x/state/kasm-bootstrap.log")"
logrotate -f -s "$x/logrotate.state" "$x/logrotate.conf" || fail "logrotate -f on a copy pointed at $x/state"
[[ -f "$x/state/kasm-bootstrap.log" && ! -s "$x/state/kasm-bootstrap.log" ]] || fail "rotation did not leave an empty log"
[[ "$(stat -c %i "$x/state/kasm-bootstrap.log")" == "$inode" ]] || fail "rotation replaced the log (copytruncate keeps its inode)"
[[ "$(zcat "$x/state/kasm-bootstrap.log.1.gz")" == "line one" ]] || fail "rotated log kasm-bootstrap.log.1.gz missing or wrong"
log "logrotate: forced rotation of a copy: log emptied in place, old lines in kasm-bootstrap.log.1.gz"

# lintian: errors and warnings fail; infos are shown. Overridden tags are listed by a second
# run (lintian 2.116 counts overridden tags for --fail-on when --show-overrides is given).
need_tool lintian lintian
log "lintian $(lintian --version | sed 's/^Lintian v//') --fail-on error,warning --display-info"
lintian_out="$x/lintian.out"
lintian_rc=0
lintian --fail-on error,warning --display-info "$deb" >"$lintian_out" 2>&1 || lintian_rc=$?
grep -v '^running with root privileges is not recommended!$' "$lintian_out" | sed 's/^/    /' >&2 || true
[[ -s "$lintian_out" ]] || printf '    (no tags)\n' >&2
log "lintian: overridden tags (packaging/lintian-overrides)"
lintian --show-overrides --fail-on none "$deb" 2>/dev/null | grep '^O:' | sed 's/^/    /' >&2 || true
((lintian_rc == 0)) || fail "lintian reports errors or warnings (exit $lintian_rc)"

# The maintainer scripts for real: install, upgrade with a disabled unit, purge.
if [[ "${KB_SKIP_DEB_INSTALL_TEST:-0}" == 1 ]]; then
  log "SKIPPED: scripts/test-deb-install.sh (KB_SKIP_DEB_INSTALL_TEST=1)"
elif [[ $(id -u) -ne 0 ]]; then
  log "SKIPPED: scripts/test-deb-install.sh (needs root: dpkg -i on this machine)"
else
  log "scripts/test-deb-install.sh $deb"
  scripts/test-deb-install.sh "$deb" || fail "scripts/test-deb-install.sh"
fi

log "OK: $deb ($(stat -c %s "$deb") bytes), copied to $build/kasm-bootstrap.deb ($(($(date +%s) - t_start)) s)"
