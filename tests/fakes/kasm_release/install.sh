#!/usr/bin/env bash
# Fake Kasm Workspaces install.sh for tests. It accepts the real installer's flags, records
# how it was called, writes the files the real one writes (agent.app.config.yaml,
# self-signed nginx certs, the /opt/kasm/current link) and can fail the ways the real
# one fails.
#
# Environment (the tests set it; kasm-bootstrap passes its own environment on):
#   KASM_FAKE_ROOT   required: the test's root dir. Every file is written under it; without
#                    it the script refuses to run, so it can never touch a real machine.
#   KASM_FAKE_MODE   ok (default) | fail | hang | prompt | apt-lock | apt-lock-once
#                    (or the first line of $KASM_FAKE_ROOT/fake-installer/mode)
# Records, under $KASM_FAKE_ROOT/fake-installer/: runs (count), argv and env of the latest
# run (one item per line), argv.N / env.N for run N, and apt-config (a copy of $APT_CONFIG).
set -u

root="${KASM_FAKE_ROOT:-}"
if [[ -z "$root" || ! -d "$root" ]]; then
  echo "fake install.sh: KASM_FAKE_ROOT is not set to a directory; refusing to run" >&2
  exit 90
fi
here="$(cd "$(dirname "$0")" && pwd)"
version="$(cat "$here/VERSION" 2>/dev/null || echo 1.15.0)"
rec="$root/fake-installer"
mkdir -p "$rec"
run=$(( $(cat "$rec/runs" 2>/dev/null || echo 0) + 1 ))
echo "$run" > "$rec/runs"
printf '%s\n' "$@" > "$rec/argv.$run"
cp "$rec/argv.$run" "$rec/argv"
env > "$rec/env.$run"
cp "$rec/env.$run" "$rec/env"
[[ -n "${APT_CONFIG:-}" && -f "$APT_CONFIG" ]] && cp "$APT_CONFIG" "$rec/apt-config"

mode="${KASM_FAKE_MODE:-}"
[[ -z "$mode" && -f "$rec/mode" ]] && mode="$(head -n1 "$rec/mode")"
mode="${mode:-ok}"

accept_eula=0 role="" address="" manager="" token="" server_id="" provider="" skip_swap_check=0
while getopts "eS:p:m:M:i:r:L:HJ:bIDNs:w:" opt; do
  case "$opt" in
    e) accept_eula=1 ;;
    S) role="$OPTARG" ;;
    p) address="$OPTARG" ;;
    m) manager="$OPTARG" ;;
    M) token="$OPTARG" ;;
    i) server_id="$OPTARG" ;;
    r) provider="$OPTARG" ;;
    H) skip_swap_check=1 ;;
    L|J|s|w|b|I|D|N) ;;
    *) echo "Usage: install.sh [-e] [-S role] ... (unknown option)"; exit 1 ;;
  esac
done

echo "Kasm Workspaces $version installer (fake)"
echo "Role: $role, manager: $manager, token: $token"
if ((accept_eula == 0)); then
  echo "End User License Agreement not accepted (use -e)"
  exit 1
fi
if [[ "$role" != "agent" || -z "$address" || -z "$manager" || -z "$token" || -z "$server_id" ]]; then
  echo "Missing required arguments for the agent role"
  exit 1
fi

case "$mode" in
  fail)
    echo "Installing Docker..."
    echo "ERROR: docker installation failed"
    exit 3 ;;
  hang)
    echo "Pulling service images..."
    sleep 1000 &
    echo "$!" > "$rec/hang-child.pid"
    wait
    exit 0 ;;
  prompt)
    if ((skip_swap_check == 0)); then echo "Swap check skipped? no"; fi
    read -r -p "Do you want to continue? (y/n) " answer || { echo; echo "no answer on stdin"; exit 1; }
    [[ "$answer" == y ]] || exit 1 ;;
  apt-lock|apt-lock-once)
    if [[ "$mode" == apt-lock || "$run" == 1 ]]; then
      echo "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (apt-get)"
      echo "E: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend), is another process using it?"
      exit 100
    fi ;;
  ok) ;;
  *) echo "fake install.sh: unknown KASM_FAKE_MODE '$mode'"; exit 91 ;;
esac

dir="$root/opt/kasm/$version"
mkdir -p "$dir/conf/app" "$dir/certs"
cat > "$dir/conf/app/agent.app.config.yaml" <<YAML
agent:
  server_id: '$server_id'
  public_hostname: '$address'
  provider: '$provider'
manager:
  hostnames:
  - '$manager'
  token: '$token'
YAML
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
  -subj "/CN=$address" -keyout "$dir/certs/kasm_nginx.key" -out "$dir/certs/kasm_nginx.crt" 2>/dev/null
chmod 600 "$dir/certs/kasm_nginx.key" "$dir/certs/kasm_nginx.crt"
ln -sfn "$version" "$root/opt/kasm/current"
echo "Installation Complete"
