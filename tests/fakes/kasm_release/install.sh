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
#   KASM_FAKE_SLEEP  seconds to sleep before installing (or fake-installer/sleep), so a test
#                    can kill or signal the run while the installer is busy
#   KASM_FAKE_DOCKER_HOST, KASM_FAKE_IMAGE   both set: (re)create real containers kasm_agent
#                    (a long sleep) and kasm_proxy (nginx serving the installed certs on 443)
#                    with the docker CLI on that Engine, and start them unless -D was given
#   KASM_FAKE_EXITING  kasm_agent or kasm_proxy: that container exits right after it starts
# Records, under $KASM_FAKE_ROOT/fake-installer/: runs (count), argv and env of the latest
# run (one item per line), argv.N / env.N for run N, apt-config (a copy of $APT_CONFIG),
# service-images (the -s FILE path), timing.N / timing ("start S" and "end S" lines,
# `date +%s.%N`, so a benchmark can subtract the installer's own time).
set -u

root="${KASM_FAKE_ROOT:-}"
if [[ -z "$root" || ! -d "$root" ]]; then
  echo "fake install.sh: KASM_FAKE_ROOT is not set to a directory; refusing to run" >&2
  exit 90
fi
here="$(cd "$(dirname "$0")" && pwd)"
# Kasm's install.sh names its own version in this assignment at the start of a line
# (install.sh 1.16.0: KASM_VERSION="1.16.0"; docs/kasm-installer.md); make_release.py
# writes the version it is asked for into it.
KASM_VERSION="1.15.0"
version="$KASM_VERSION"
rec="$root/fake-installer"
mkdir -p "$rec"
run=$(( $(cat "$rec/runs" 2>/dev/null || echo 0) + 1 ))
echo "$run" > "$rec/runs"
echo "start $(date +%s.%N)" > "$rec/timing.$run"
cp "$rec/timing.$run" "$rec/timing"
record_end() { echo "end $(date +%s.%N)" >> "$rec/timing.$run"; cp "$rec/timing.$run" "$rec/timing"; }
trap record_end EXIT
printf '%s\n' "$@" > "$rec/argv.$run"
cp "$rec/argv.$run" "$rec/argv"
env > "$rec/env.$run"
cp "$rec/env.$run" "$rec/env"
[[ -n "${APT_CONFIG:-}" && -f "$APT_CONFIG" ]] && cp "$APT_CONFIG" "$rec/apt-config"

mode="${KASM_FAKE_MODE:-}"
[[ -z "$mode" && -f "$rec/mode" ]] && mode="$(head -n1 "$rec/mode")"
mode="${mode:-ok}"

accept_eula=0 role="" address="" manager="" token="" server_id="" provider="" skip_swap_check=0
no_start=0 service_images=""
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
    D) no_start=1 ;;
    s) service_images="$OPTARG" ;;
    L|J|w|b|I|N) ;;
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

if [[ -n "$service_images" ]]; then
  echo "$service_images" > "$rec/service-images"
  if [[ ! -f "$service_images" ]]; then
    echo "ERROR: offline service images file $service_images does not exist"
    exit 1
  fi
fi

sleep_for="${KASM_FAKE_SLEEP:-}"
[[ -z "$sleep_for" && -f "$rec/sleep" ]] && sleep_for="$(head -n1 "$rec/sleep")"
if [[ -n "$sleep_for" && "$sleep_for" != 0 ]]; then
  echo "Pulling service images (slow)..."
  sleep "$sleep_for" &
  echo "$!" > "$rec/sleep-child.pid"
  wait
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
# Up to 1.16 the agent configuration is conf/app/agent.app.config.yaml; from 1.17.0 it
# is conf/app/agent/agent.app.config.yaml (docs/kasm-installer.md).
case "$version" in
  1.15.* | 1.16.*) agent_conf="$dir/conf/app/agent.app.config.yaml" ;;
  *) agent_conf="$dir/conf/app/agent/agent.app.config.yaml" ;;
esac
mkdir -p "$(dirname "$agent_conf")" "$dir/certs"
cat > "$agent_conf" <<YAML
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

# The real installer creates the kasm user; certificate ownership is looked up from it.
mkdir -p "$root/etc"
touch "$root/etc/passwd" "$root/etc/group"
grep -q '^kasm:' "$root/etc/group" || echo 'kasm:x:1000:' >> "$root/etc/group"
grep -q '^kasm:' "$root/etc/passwd" || echo 'kasm:x:1000:1000:Kasm:/opt/kasm:/usr/sbin/nologin' >> "$root/etc/passwd"

if [[ -n "${KASM_FAKE_DOCKER_HOST:-}" && -n "${KASM_FAKE_IMAGE:-}" ]]; then
  dk=(docker -H "$KASM_FAKE_DOCKER_HOST")
  # nginx must really load the installed pair, so `nginx -t` after a certificate change
  # tests the new files; the certs directory is mounted whole, as a directory.
  mkdir -p "$dir/conf/nginx"
  cat > "$dir/conf/nginx/kasm.conf" <<'NGINX'
server {
  listen 443 ssl default_server;
  ssl_certificate /opt/kasm/current/certs/kasm_nginx.crt;
  ssl_certificate_key /opt/kasm/current/certs/kasm_nginx.key;
  location / { return 200 "kasm_proxy\n"; }
}
NGINX
  "${dk[@]}" rm -f kasm_agent kasm_proxy >/dev/null 2>&1 || true
  agent_cmd=(/bin/sleep 1000000)
  proxy_cmd=(/usr/sbin/nginx -g "daemon off;")
  [[ "${KASM_FAKE_EXITING:-}" == kasm_agent ]] && agent_cmd=(/bin/false)
  [[ "${KASM_FAKE_EXITING:-}" == kasm_proxy ]] && proxy_cmd=(/bin/false)
  # Kasm's docker/docker-compose-agent.yaml gives both services `restart: always`
  # (docs/kasm-installer.md): a proxy that exits is started again by the engine.
  verb=run; opt=(-d --restart always)
  ((no_start)) && { verb=create; opt=(--restart always); }
  if ! "${dk[@]}" "$verb" "${opt[@]}" --name kasm_agent --network none "$KASM_FAKE_IMAGE" "${agent_cmd[@]}" >/dev/null ||
     ! "${dk[@]}" "$verb" "${opt[@]}" --name kasm_proxy --network none \
         -v "$dir/certs:/opt/kasm/current/certs:ro" -v "$dir/conf/nginx:/etc/nginx/sites-enabled:ro" \
         "$KASM_FAKE_IMAGE" "${proxy_cmd[@]}" >/dev/null; then
    echo "ERROR: could not start the Kasm service containers (Docker Engine at $KASM_FAKE_DOCKER_HOST)"
    exit 4
  fi
  ((no_start)) && echo "Services installed but not started (-D)" || echo "Starting Kasm services... done"
fi
echo "Installation Complete"
