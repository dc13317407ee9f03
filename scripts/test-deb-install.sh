#!/usr/bin/env bash
# Installs the kasm-bootstrap .deb on this machine for real and checks the maintainer
# scripts (cmake/deb/) against deb-systemd-helper's conventions, then purges it and
# checks that the machine is as it was:
#
#   1. dpkg -i: the three units with an [Install] section are enabled (symlinks and
#      deb-systemd-helper state), nothing is started, /etc/logrotate.d/kasm-bootstrap is a
#      registered conffile;
#   2. as an administrator would: `systemctl disable kasm-bootstrap-health.timer` and an
#      edit of the conffile, then dpkg -i of the same .deb again (the upgrade path:
#      preinst upgrade, postinst configure <version>): the timer is still disabled, the
#      edit kept, the other two units still enabled;
#   3. `systemctl mask kasm-bootstrap-metadata-firewall.service`, dpkg -i again: still
#      masked (deb-systemd-helper unmasks only what it masked itself);
#   4. dpkg -r: the binary is gone, the conffile stays; dpkg -P: no file of the package,
#      no unit symlink, no deb-systemd-helper state left, /etc/systemd as before.
#
# A CI machine's check: needs root, refuses to run where kasm-bootstrap is installed or
# any file of the package exists, and purges the package on any failure. Runs without a
# running systemd (systemctl enable/disable/mask only edit symlinks then) as with one.
# One run at a time per machine (flock). Called by scripts/build-deb.sh.
#
#   scripts/test-deb-install.sh build/static/kasm-bootstrap_<version>_<arch>.deb
set -euo pipefail

readonly pkg=kasm-bootstrap
readonly units=(kasm-bootstrap.service kasm-bootstrap-health.timer kasm-bootstrap-metadata-firewall.service)
readonly conffile=/etc/logrotate.d/kasm-bootstrap
fail() { printf 'test-deb-install: FAILED: %s\n' "$*" >&2; exit 1; }
log() { printf '[test-deb-install] %s\n' "$*" >&2; }

(($# == 1)) || fail "usage: $0 PACKAGE.deb"
deb="$(realpath -e "$1")" || fail "no such file: $1"
[[ $(id -u) -eq 0 ]] || fail "must run as root (dpkg -i)"
for tool in dpkg dpkg-deb dpkg-query deb-systemd-helper systemctl flock; do
  command -v "$tool" >/dev/null || fail "$tool missing"
done

exec 9>/run/lock/kasm-bootstrap-test-deb-install.lock
flock -w 600 9 || fail "another test-deb-install holds /run/lock/kasm-bootstrap-test-deb-install.lock"

version="$(dpkg-deb -f "$deb" Version)"
# Every regular file and symlink the package ships, as absolute paths.
mapfile -t files < <(dpkg-deb --fsys-tarfile "$deb" | tar -t | sed -n 's|^\./|/|p' | grep -v '/$')
((${#files[@]} > 10)) || fail "dpkg-deb lists only ${#files[@]} files in $deb"

# dpkg waits for no lock: retry while another dpkg or apt holds it (a shared CI machine).
dpkg_() {
  local deadline=$((SECONDS + 600)) out rc
  while :; do
    rc=0
    out="$(dpkg "$@" 2>&1)" || rc=$?
    printf '%s\n' "$out" | sed 's/^/    dpkg: /' >&2
    if ((rc != 0)) && grep -qE 'frontend lock|database is locked|lock was locked' <<<"$out" && ((SECONDS < deadline)); then
      log "dpkg's lock is held by another process: waiting"
      sleep 5
      continue
    fi
    return "$rc"
  done
}

state() { dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true; }
# What the test must leave as it found: the directories under /etc/systemd/system and
# deb-systemd-helper's state (enable makes e.g. docker.service.wants/), and anything named
# after the package there. Not other packages' entries: another job on the machine may
# install one meanwhile.
snapshot() {
  { find /etc/systemd/system /var/lib/systemd/deb-systemd-helper-enabled /var/lib/systemd/deb-systemd-helper-masked \
    \( -type d -o -name 'kasm-bootstrap*' \) -printf '%p -> %l\n' 2>/dev/null || true; } | sort
}
our_links() { find /etc/systemd/system -name 'kasm-bootstrap*' 2>/dev/null || true; }
our_state() {
  find /var/lib/systemd/deb-systemd-helper-enabled /var/lib/systemd/deb-systemd-helper-masked \
    -name 'kasm-bootstrap*' 2>/dev/null || true
}
# The symlinks `enable` makes, from the unit's WantedBy= (all three units use only that).
wants_links() {
  local unit="$1" line target
  while IFS= read -r line; do
    for target in $line; do printf '/etc/systemd/system/%s.wants/%s\n' "$target" "$unit"; done
  done < <(sed -n 's/^WantedBy=//p' "/lib/systemd/system/$unit")
}
is_enabled() {
  local link
  for link in $(wants_links "$1"); do [[ -L "$link" ]] || return 1; done
  [[ "$(systemctl is-enabled "$1" 2>/dev/null || true)" == enabled ]]
}
is_disabled() {
  local link
  for link in $(wants_links "$1"); do [[ ! -e "$link" && ! -L "$link" ]] || return 1; done
  [[ "$(systemctl is-enabled "$1" 2>/dev/null || true)" == disabled ]]
}
is_masked() { [[ "$(readlink "/etc/systemd/system/$1" || true)" == /dev/null ]]; }

# --- preconditions: nothing of the package on this machine --------------------------------
case "$(state)" in
  "" | not-installed) ;;
  *) fail "$pkg is known to dpkg here (status '$(state)'): this test would replace and purge it; remove it first" ;;
esac
for f in "${files[@]}"; do
  if [[ -e "$f" || -L "$f" ]]; then fail "$f exists although $pkg is not installed: this test would delete it"; fi
done
[[ -z "$(our_links)$(our_state)" ]] ||
  fail "kasm-bootstrap unit symlinks or deb-systemd-helper state exist without the package: $(our_links) $(our_state)"
[[ ! -e /var/lib/kasm-bootstrap ]] || fail "/var/lib/kasm-bootstrap exists: not a clean machine for this test"
before="$(snapshot)"

installed=0
touched=0
cleanup() {
  local rc=$?
  if ((installed)); then
    log "cleaning up: dpkg --purge $pkg"
    for unit in "${units[@]}"; do
      if is_masked "$unit"; then systemctl unmask "$unit" >/dev/null 2>&1 || true; fi
    done
    dpkg_ --purge "$pkg" || log "dpkg --purge $pkg failed: the machine is NOT as it was"
  fi
  if ((touched && rc != 0)); then
    # A broken package may leave unit symlinks or state behind: there were none before.
    find /etc/systemd/system /var/lib/systemd/deb-systemd-helper-enabled /var/lib/systemd/deb-systemd-helper-masked \
      -name 'kasm-bootstrap*' \( -type l -o -type f \) -print -delete 2>/dev/null | sed 's/^/    removed leftover /' >&2 || true
    find /etc/systemd/system /var/lib/systemd/deb-systemd-helper-enabled /var/lib/systemd/deb-systemd-helper-masked \
      -mindepth 1 -type d -empty -print 2>/dev/null | while IFS= read -r d; do
      grep -qxF "$d -> " <<<"$before" || { rmdir "$d" && printf '    removed leftover %s\n' "$d" >&2; }
    done || true
  fi
  exit "$rc"
}
trap cleanup EXIT

# --- 1. first installation ----------------------------------------------------------------
log "1. dpkg -i $(basename "$deb") (first installation)"
installed=1
touched=1
dpkg_ -i "$deb" || fail "dpkg -i (first installation)"
[[ "$(state)" == installed ]] || fail "status after dpkg -i is '$(state)', not installed"
[[ "$(kasm-bootstrap --version)" == *"$version"* ]] || fail "kasm-bootstrap --version does not name $version"
for unit in "${units[@]}"; do
  is_enabled "$unit" || fail "$unit is not enabled after the first installation ($(wants_links "$unit"))"
  [[ -f "/var/lib/systemd/deb-systemd-helper-enabled/$unit.dsh-also" ]] ||
    fail "no deb-systemd-helper state for $unit: was it enabled by deb-systemd-helper?"
done
if [[ -d /run/systemd/system ]]; then
  for unit in "${units[@]}"; do
    [[ "$(systemctl is-active "$unit" 2>/dev/null || true)" != active ]] || fail "$unit was started by the installation"
  done
fi
dpkg-query -W -f='${Conffiles}\n' "$pkg" | grep -q "^ $conffile " || fail "$conffile is not a conffile of $pkg"
log "   ok: ${units[*]} enabled, none started; $conffile is a conffile"

# --- 2. the administrator disables a unit; the upgrade path ------------------------------
log "2. systemctl disable kasm-bootstrap-health.timer; edit $conffile; dpkg -i $(basename "$deb") again (upgrade path)"
systemctl disable kasm-bootstrap-health.timer 2>&1 | sed 's/^/    /' >&2
is_disabled kasm-bootstrap-health.timer || fail "systemctl disable did not disable kasm-bootstrap-health.timer"
printf '# edited by test-deb-install\n' >>"$conffile"
dpkg_ -i "$deb" || fail "dpkg -i (second time)"
is_disabled kasm-bootstrap-health.timer ||
  fail "the upgrade re-enabled kasm-bootstrap-health.timer, which the administrator had disabled"
is_enabled kasm-bootstrap.service || fail "kasm-bootstrap.service is no longer enabled after the upgrade"
is_enabled kasm-bootstrap-metadata-firewall.service ||
  fail "kasm-bootstrap-metadata-firewall.service is no longer enabled after the upgrade"
grep -q '^# edited by test-deb-install$' "$conffile" || fail "the upgrade overwrote the administrator's edit of $conffile"
log "   ok: the timer stays disabled, the other units enabled, the conffile edit kept"

# --- 3. the administrator masks a unit; the upgrade path again ----------------------------
log "3. systemctl mask kasm-bootstrap-metadata-firewall.service; dpkg -i $(basename "$deb") again"
systemctl mask kasm-bootstrap-metadata-firewall.service 2>&1 | sed 's/^/    /' >&2
is_masked kasm-bootstrap-metadata-firewall.service || fail "systemctl mask did not mask kasm-bootstrap-metadata-firewall.service"
dpkg_ -i "$deb" || fail "dpkg -i (third time)"
is_masked kasm-bootstrap-metadata-firewall.service ||
  fail "the upgrade unmasked kasm-bootstrap-metadata-firewall.service, which the administrator had masked"
is_disabled kasm-bootstrap-health.timer || fail "the second upgrade re-enabled kasm-bootstrap-health.timer"
log "   ok: the firewall unit stays masked, the timer disabled"
systemctl unmask kasm-bootstrap-metadata-firewall.service 2>&1 | sed 's/^/    /' >&2

# --- 4. remove, then purge ----------------------------------------------------------------
log "4. dpkg -r $pkg"
dpkg_ -r "$pkg" || fail "dpkg -r"
[[ "$(state)" == config-files ]] || fail "status after dpkg -r is '$(state)', not config-files"
[[ ! -e /usr/bin/kasm-bootstrap ]] || fail "/usr/bin/kasm-bootstrap is still there after dpkg -r"
[[ -f "$conffile" ]] || fail "dpkg -r removed the conffile $conffile (only purge may)"
log "   dpkg -P $pkg"
dpkg_ -P "$pkg" || fail "dpkg -P"
installed=0
case "$(state)" in
  "" | not-installed) ;;
  *) fail "status after dpkg -P is '$(state)'" ;;
esac
left=()
for f in "${files[@]}"; do
  if [[ -e "$f" || -L "$f" ]]; then left+=("$f"); fi
done
((${#left[@]} == 0)) || fail "files of the package left after purge: ${left[*]}"
[[ -z "$(our_links)$(our_state)" ]] || fail "left after purge: $(our_links) $(our_state)"
after="$(snapshot)"
[[ "$before" == "$after" ]] ||
  fail "/etc/systemd/system or deb-systemd-helper's state differ from before the test: $(diff <(printf '%s\n' "$before") <(printf '%s\n' "$after") || true)"
log "OK: enabled on installation, the administrator's disable and mask kept over an upgrade, nothing left after purge"
