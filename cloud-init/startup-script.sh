#!/bin/bash
# kasm-bootstrap startup script (bash variant) for Kasm Workspaces autoscaling.
#
# Paste this whole file into the VM Provider config's "Startup Script" field. The AMI
# must carry kasm-bootstrap (see packer/README.md). Kasm renders this text with Python
# str.format(): the eight single-brace variables below are replaced by their values and
# every other brace must be written doubled (as in the shell expansions below). Do not
# add single braces when you edit it, not even in comments.
#
# What it does: writes each value Kasm rendered into its own file under
# /run/kasm-bootstrap/config.d (tmpfs, directory 0700, files 0600, never a command line),
# then asks systemd to start kasm-bootstrap.service without waiting for it (a blocking
# start from here, inside cloud-final, would deadlock the boot). The unit runs
# `kasm-bootstrap run --config /run/kasm-bootstrap/config.d`; follow it with
# `journalctl -u kasm-bootstrap -f`. Without systemd it runs the binary directly.
#
# Values go through quoted here-documents, so nothing in them is expanded: quotes, $,
# backticks, backslashes, braces and multi-line PEM arrive byte for byte (one trailing
# newline, added by the here-document, is stripped by kasm-bootstrap). The one value a
# here-document cannot carry is a line consisting of exactly its end marker.
#
# Test hooks (never set by cloud-init): KB_USERDATA_CONFIG_DIR, KB_USERDATA_BIN,
# KB_USERDATA_MODE (auto|service|direct).
set -euo pipefail
umask 077

config_dir="${{KB_USERDATA_CONFIG_DIR:-/run/kasm-bootstrap/config.d}}"
bin="${{KB_USERDATA_BIN:-/usr/bin/kasm-bootstrap}}"
mode="${{KB_USERDATA_MODE:-auto}}"
unset KB_USERDATA_CONFIG_DIR KB_USERDATA_BIN KB_USERDATA_MODE

say() {{ printf 'kasm-bootstrap startup script: %s\n' "$*"; }}

parent="$(dirname "$config_dir")"
mkdir -p "$parent"
chmod 0700 "$parent"
# Build the directory next to its final place, then swap it in, so the unit never sees
# half of it.
staging="$(mktemp -d "$parent/.config.XXXXXX")"
put() {{ cat >"$staging/$1"; }}

put server_id <<'KASM_BOOTSTRAP_VALUE_END_7F3A9C'
{server_id}
KASM_BOOTSTRAP_VALUE_END_7F3A9C
put manager_token <<'KASM_BOOTSTRAP_VALUE_END_7F3A9C'
{manager_token}
KASM_BOOTSTRAP_VALUE_END_7F3A9C
put manager_address <<'KASM_BOOTSTRAP_VALUE_END_7F3A9C'
{upstream_auth_address}
KASM_BOOTSTRAP_VALUE_END_7F3A9C
put provider <<'KASM_BOOTSTRAP_VALUE_END_7F3A9C'
{provider_name}
KASM_BOOTSTRAP_VALUE_END_7F3A9C
put server_hostname <<'KASM_BOOTSTRAP_VALUE_END_7F3A9C'
{server_hostname}
KASM_BOOTSTRAP_VALUE_END_7F3A9C
put external_fqdn <<'KASM_BOOTSTRAP_VALUE_END_7F3A9C'
{server_external_fqdn}
KASM_BOOTSTRAP_VALUE_END_7F3A9C
put nginx_cert <<'KASM_BOOTSTRAP_VALUE_END_7F3A9C'
{nginx_cert_in}
KASM_BOOTSTRAP_VALUE_END_7F3A9C
put nginx_key <<'KASM_BOOTSTRAP_VALUE_END_7F3A9C'
{nginx_key_in}
KASM_BOOTSTRAP_VALUE_END_7F3A9C

rm -rf "$config_dir"
mv "$staging" "$config_dir"
say "configuration written to $config_dir"

if [ "$mode" = auto ]; then
  if [ -d /run/systemd/system ] && systemctl cat kasm-bootstrap.service >/dev/null 2>&1; then
    mode=service
  else
    mode=direct
  fi
fi

case "$mode" in
  service)
    systemctl start --no-block kasm-bootstrap.service
    say "started kasm-bootstrap.service (journalctl -u kasm-bootstrap -f)"
    ;;
  direct)
    say "running $bin run --config $config_dir"
    exec "$bin" run --config "$config_dir"
    ;;
  *)
    say "unknown KB_USERDATA_MODE '$mode' (auto, service or direct)" >&2
    exit 2
    ;;
esac
